/* `ollamax list | ps | rm | cp`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "daemon/cli.h"

/* GET path and parse {models:[...]}; 0 or the exit status. */
static int get_models(const char *path, json_t **out)
{
    json_t *o;
    if (cli_call_json("GET", path, NULL, &o) != 0)
        return 1;
    if (!json_is_array(json_object_get(o, "models"))) {
        json_decref(o);
        return cli_error("unexpected answer from %s%s", cli_base_url(), path);
    }
    *out = o;
    return 0;
}

static void short_id(const char *digest, char out[13])
{
    const char *d = digest ? digest : "";
    if (strncmp(d, "sha256:", 7) == 0)
        d += 7;
    snprintf(out, 13, "%.12s", d);
}

int cli_cmd_list(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cli_error("accepts 0 args, received %d", argc - 1);
    json_t *o;
    if (get_models("/api/tags", &o) != 0)
        return 1;
    json_t *models = json_object_get(o, "models");
    size_t n = json_array_size(models);
    char(*cells)[4][256] = calloc(n + 1, sizeof(*cells));
    const char **ptrs = calloc((n + 1) * 4, sizeof(*ptrs));
    if (!cells || !ptrs) {
        free(cells);
        free(ptrs);
        json_decref(o);
        return cli_error("out of memory");
    }
    snprintf(cells[0][0], 256, "NAME");
    snprintf(cells[0][1], 256, "ID");
    snprintf(cells[0][2], 256, "SIZE");
    snprintf(cells[0][3], 256, "MODIFIED");
    int64_t now = ox_time_now_ns();
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(models, i);
        const char *name = json_string_value(json_object_get(m, "name"));
        snprintf(cells[i + 1][0], 256, "%s", name ? name : "");
        short_id(json_string_value(json_object_get(m, "digest")), cells[i + 1][1]);
        cli_human_bytes((uint64_t)json_integer_value(json_object_get(m, "size")), cells[i + 1][2],
                        256);
        int64_t t = cli_parse_time(json_string_value(json_object_get(m, "modified_at")));
        if (t)
            cli_human_time(t, now, cells[i + 1][3], 256);
    }
    for (size_t i = 0; i < (n + 1) * 4; i++)
        ptrs[i] = cells[i / 4][i % 4];
    cli_table(ptrs, n + 1, 4);
    free(ptrs);
    free(cells);
    json_decref(o);
    return 0;
}

int cli_cmd_ps(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cli_error("accepts 0 args, received %d", argc - 1);
    json_t *o;
    if (get_models("/api/ps", &o) != 0)
        return 1;
    json_t *models = json_object_get(o, "models");
    size_t n = json_array_size(models);
    enum { C = 6 };
    char(*cells)[C][128] = calloc(n + 1, sizeof(*cells));
    const char **ptrs = calloc((n + 1) * C, sizeof(*ptrs));
    if (!cells || !ptrs) {
        free(cells);
        free(ptrs);
        json_decref(o);
        return cli_error("out of memory");
    }
    const char *head[C] = {"NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"};
    for (int c = 0; c < C; c++)
        snprintf(cells[0][c], 128, "%s", head[c]);
    int64_t now = ox_time_now_ns();
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(models, i);
        const char *name = json_string_value(json_object_get(m, "name"));
        snprintf(cells[i + 1][0], 128, "%s", name ? name : "");
        short_id(json_string_value(json_object_get(m, "digest")), cells[i + 1][1]);
        uint64_t size = (uint64_t)json_integer_value(json_object_get(m, "size"));
        uint64_t vram = (uint64_t)json_integer_value(json_object_get(m, "size_vram"));
        cli_human_bytes(size, cells[i + 1][2], 128);
        if (vram == 0 || size == 0)
            snprintf(cells[i + 1][3], 128, "100%% CPU");
        else if (vram >= size)
            snprintf(cells[i + 1][3], 128, "100%% GPU");
        else
            snprintf(cells[i + 1][3], 128, "%d%%/%d%% CPU/GPU",
                     (int)((size - vram) * 100 / size), (int)(vram * 100 / size));
        json_int_t ctx = json_integer_value(json_object_get(m, "context_length"));
        if (ctx > 0)
            snprintf(cells[i + 1][4], 128, "%lld", (long long)ctx);
        const char *exp = json_string_value(json_object_get(m, "expires_at"));
        int64_t t = cli_parse_time(exp);
        if (!t)
            snprintf(cells[i + 1][5], 128, "%s", "");
        else if (t - now > 100LL * 365 * 86400 * 1000000000LL)
            snprintf(cells[i + 1][5], 128, "Forever");
        else if (t <= now)
            snprintf(cells[i + 1][5], 128, "Stopping...");
        else
            cli_human_time(t, now, cells[i + 1][5], 128);
    }
    for (size_t i = 0; i < (n + 1) * C; i++)
        ptrs[i] = cells[i / C][i % C];
    cli_table(ptrs, n + 1, C);
    free(ptrs);
    free(cells);
    json_decref(o);
    return 0;
}

/* A request whose success has an empty body; 0 or the exit status. */
static int simple_call(const char *method, const char *path, json_t *body)
{
    cli_resp_t r;
    int rc = cli_request(method, path, body, &r);
    json_decref(body);
    if (rc)
        return 1;
    char msg[1024];
    if (r.status / 100 != 2)
        rc = cli_error("%s", cli_resp_error(&r, msg, sizeof(msg)));
    ox_buf_free(&r.body);
    return rc;
}

int cli_cmd_rm(int argc, char **argv)
{
    if (argc < 2)
        return cli_error("requires at least 1 arg(s), only received 0");
    for (int i = 1; i < argc; i++) {
        if (simple_call("DELETE", "/api/delete", json_pack("{s:s}", "model", argv[i])) != 0)
            return 1;
        printf("deleted '%s'\n", argv[i]);
    }
    return 0;
}

int cli_cmd_cp(int argc, char **argv)
{
    if (argc != 3)
        return cli_error("accepts 2 arg(s), received %d", argc - 1);
    if (simple_call("POST", "/api/copy",
                    json_pack("{s:s,s:s}", "source", argv[1], "destination", argv[2])) != 0)
        return 1;
    printf("copied '%s' to '%s'\n", argv[1], argv[2]);
    return 0;
}

/* Exit 1 when a blob was bad (removed, so the next pull fetches it again) or
 * missing, as a check of the store should. */
int cli_cmd_verify(int argc, char **argv)
{
    if (argc > 2)
        return cli_error("accepts at most 1 arg(s), received %d", argc - 1);
    json_t *body = argc == 2 ? json_pack("{s:s}", "model", argv[1]) : json_object();
    json_t *o;
    int rc = cli_call_json("POST", "/api/verify", body, &o);
    json_decref(body);
    if (rc)
        return rc;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(o, "removed"), i, v)
        printf("removed %s: its bytes no longer match its digest\n", json_string_value(v));
    json_array_foreach(json_object_get(o, "missing"), i, v)
        printf("missing %s\n", json_string_value(v));
    size_t bad = json_array_size(json_object_get(o, "removed")) +
                 json_array_size(json_object_get(o, "missing"));
    printf("verified %lld blob(s)%s\n", (long long)json_integer_value(json_object_get(o, "verified")),
           bad ? "; pull the model again to fetch what is gone" : "");
    json_decref(o);
    return bad ? 1 : 0;
}
