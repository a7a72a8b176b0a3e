/* `ollamax create NAME [-f Modelfile] [-q QUANT]`: parses the Modelfile,
 * uploads a local GGUF as a blob when the daemon lacks it, then POSTs
 * /api/create and shows its progress. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "common/curlfn.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "common/timeutil.h"
#include "daemon/cli.h"
#include "daemon/modelfile.h"

typedef struct upload {
    cli_progress_t *prog;
    char label[128];
    uint64_t size;
    int64_t last_ns;
} upload_t;

static int on_upload_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                              curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    upload_t *u = ud;
    int64_t now = ox_time_mono_ns();
    if (now - u->last_ns >= 100000000LL || (uint64_t)ulnow == u->size) {
        u->last_ns = now;
        cli_progress_bar(u->prog, u->label, (uint64_t)ulnow, u->size);
    }
    return 0;
}

static size_t on_discard(char *p, size_t size, size_t n, void *ud)
{
    return ox_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

/* Makes sure the daemon holds path's bytes as a blob; digest gets
 * "sha256:<hex>". Returns 0 or the exit status. */
static int ensure_blob(const char *path, char digest[72], cli_progress_t *prog)
{
    uint8_t raw[32];
    uint64_t size;
    char hex[65];
    int rc = ox_sha256_file(path, raw, &size);
    if (rc)
        return cli_error("reading %s: %s", path, strerror(errno ? errno : EIO));
    ox_hex_encode(raw, 32, hex);
    snprintf(digest, 72, "sha256:%s", hex);
    char api_path[128];
    snprintf(api_path, sizeof(api_path), "/api/blobs/%s", digest);
    cli_resp_t r;
    if (cli_request("HEAD", api_path, NULL, &r) != 0)
        return 1;
    ox_buf_free(&r.body);
    if (r.status == 200)
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return cli_error("open %s: %s", path, strerror(errno));
    const ox_curl_api_t *C = ox_curl();  /* loaded by cli_request above */
    if (!C) {
        fclose(f);
        return cli_error("%s", ox_curl_load_error());
    }
    CURL *e = C->easy_init();
    if (!e) {
        fclose(f);
        return cli_error("out of memory");
    }
    upload_t u = {.prog = prog, .size = size};
    snprintf(u.label, sizeof(u.label), "copying file %s", digest);
    char url[1024], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof(url), "%s%s", cli_base_url(), api_path);
    ox_buf_t body = OX_BUF_INIT;
    struct curl_slist *hdrs = C->slist_append(NULL, "Content-Type: application/octet-stream");
    hdrs = C->slist_append(hdrs, "Expect:");
    C->easy_setopt(e, CURLOPT_URL, url);
    C->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    C->easy_setopt(e, CURLOPT_POST, 1L);
    C->easy_setopt(e, CURLOPT_READDATA, f);
    C->easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
    C->easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    C->easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    C->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_discard);
    C->easy_setopt(e, CURLOPT_WRITEDATA, &body);
    C->easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    C->easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_upload_progress);
    C->easy_setopt(e, CURLOPT_XFERINFODATA, &u);
    CURLcode cc = C->easy_perform(e);
    long status = 0;
    C->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    cli_progress_end(prog);
    rc = 0;
    if (cc == CURLE_COULDNT_CONNECT)
        rc = cli_error("could not connect to ollamax server at %s: is it running?", cli_base_url());
    else if (cc != CURLE_OK)
        rc = cli_error("uploading %s: %s", path, errbuf[0] ? errbuf : C->easy_strerror(cc));
    else if (status / 100 != 2) {
        cli_resp_t er = {.status = status, .body = body};
        char msg[1024];
        rc = cli_error("uploading %s: %s", path, cli_resp_error(&er, msg, sizeof(msg)));
    }
    ox_buf_free(&body);
    C->slist_free_all(hdrs);
    C->easy_cleanup(e);
    fclose(f);
    return rc;
}

/* FROM/ADAPTER value -> a local file path in out (1), a model name (0), or
 * an error (-1, printed). Relative paths are relative to the Modelfile. */
static int resolve_path(const char *val, const char *mf_dir, char *out, size_t cap)
{
    char p[4096];
    if (val[0] == '~' && (val[1] == '/' || val[1] == '\0')) {
        const char *home = getenv("HOME");
        snprintf(p, sizeof(p), "%s%s", home ? home : "", val + 1);
    } else if (val[0] == '/') {
        snprintf(p, sizeof(p), "%s", val);
    } else {
        snprintf(p, sizeof(p), "%s/%s", mf_dir, val);
    }
    struct stat st;
    int looks_like_path = val[0] == '/' || val[0] == '.' || val[0] == '~' ||
                          (strlen(val) > 5 && strcasecmp(val + strlen(val) - 5, ".gguf") == 0);
    if (stat(p, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            cli_error("%s is a directory: only GGUF files can be imported", val);
            return -1;
        }
        if (!S_ISREG(st.st_mode)) {
            /* a device or FIFO (/dev/zero, a pipe) would be hashed forever */
            cli_error("%s is not a regular file: only GGUF files can be imported", val);
            return -1;
        }
        snprintf(out, cap, "%s", p);
        return 1;
    }
    if (looks_like_path) {
        cli_error("%s: no such file", p);
        return -1;
    }
    return 0;
}

static int on_create_line(json_t *obj, void *ud)
{
    cli_progress_update(ud, obj);
    return 0;
}

int cli_cmd_create(int argc, char **argv)
{
    const char *name = NULL, *file = NULL, *quant = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0) {
            if (++i >= argc)
                return cli_error("flag needs an argument: %s", a);
            file = argv[i];
        } else if (strncmp(a, "--file=", 7) == 0) {
            file = a + 7;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quantize") == 0) {
            if (++i >= argc)
                return cli_error("flag needs an argument: %s", a);
            quant = argv[i];
        } else if (a[0] == '-') {
            return cli_error("unknown flag: %s", a);
        } else if (!name) {
            name = a;
        } else {
            return cli_error("accepts 1 arg, received 2");
        }
    }
    if (!name)
        return cli_error("accepts 1 arg, received 0");
    if (!file)
        file = "Modelfile";
    char *text = NULL;
    size_t len = 0;
    int rc = ox_fs_read_all(file, 16u << 20, &text, &len);
    if (rc)
        return cli_error("%s: %s", file,
                         rc == OX_ENOTFOUND ? "no such file (pass one with -f)" : strerror(errno ? errno : EIO));
    modelfile_t mf;
    char err[512];
    rc = modelfile_parse(text, len, &mf, err, sizeof(err));
    free(text);
    if (rc)
        return cli_error("%s: %s", file, err);

    char dirbuf[4096];
    snprintf(dirbuf, sizeof(dirbuf), "%s", file);
    const char *mf_dir = dirname(dirbuf);
    cli_progress_t prog;
    cli_progress_init(&prog);
    json_t *req = json_pack("{s:s,s:b}", "model", name, "stream", 1);
    char path[4096], digest[72];
    int kind = resolve_path(mf.from, mf_dir, path, sizeof(path));
    if (kind < 0)
        goto fail;
    if (kind == 1) {
        json_t *st = json_pack("{s:s}", "status", "gathering model components");
        cli_progress_update(&prog, st);
        json_decref(st);
        if (ensure_blob(path, digest, &prog) != 0)
            goto fail;
        char base[4096];
        snprintf(base, sizeof(base), "%s", path);
        json_object_set_new(req, "files", json_pack("{s:s}", basename(base), digest));
    } else {
        json_object_set_new(req, "from", json_string(mf.from));
    }
    if (mf.adapter) {
        kind = resolve_path(mf.adapter, mf_dir, path, sizeof(path));
        if (kind != 1) {
            if (kind == 0)
                cli_error("ADAPTER %s: no such file", mf.adapter);
            goto fail;
        }
        if (ensure_blob(path, digest, &prog) != 0)
            goto fail;
        char base[4096];
        snprintf(base, sizeof(base), "%s", path);
        json_object_set_new(req, "adapters", json_pack("{s:s}", basename(base), digest));
    }
    if (mf.tmpl)
        json_object_set_new(req, "template", json_string(mf.tmpl));
    if (mf.system)
        json_object_set_new(req, "system", json_string(mf.system));
    if (json_object_size(mf.params) > 0)
        json_object_set(req, "parameters", mf.params);
    if (json_array_size(mf.license) == 1)
        json_object_set(req, "license", json_array_get(mf.license, 0));
    else if (json_array_size(mf.license) > 1)
        json_object_set(req, "license", mf.license);
    if (json_array_size(mf.messages) > 0)
        json_object_set(req, "messages", mf.messages);
    if (quant)
        json_object_set_new(req, "quantize", json_string(quant));
    rc = cli_stream("/api/create", req, on_create_line, &prog);
    cli_progress_end(&prog);
    json_decref(req);
    modelfile_free(&mf);
    return rc;
fail:
    cli_progress_end(&prog);
    json_decref(req);
    modelfile_free(&mf);
    return 1;
}
