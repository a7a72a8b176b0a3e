/* The CLI's HTTP client: blocking libcurl easy calls to the daemon. libcurl
 * is loaded on the first request (common/curlfn.h), so commands that never
 * talk HTTP, `serve` above all, do not map it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/curlfn.h"
#include "daemon/cli.h"

int cli_error(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "Error: %s\n", msg);
    return 1;
}

/* OLLAMA_HOST forms: "host", "host:port", ":port", "scheme://host[:port]",
 * "[v6]:port"; a path after the host is dropped. */
const char *cli_base_url(void)
{
    static char url[512];
    if (url[0])
        return url;
    const char *v = getenv("OLLAMAX_HOST");
    if (!v || !*v)
        v = getenv("OLLAMA_HOST");
    if (!v || !*v)
        v = "";
    char scheme[16] = "http";
    const char *sep = strstr(v, "://");
    if (sep) {
        snprintf(scheme, sizeof(scheme), "%.*s", (int)(sep - v), v);
        v = sep + 3;
    }
    char hostport[300];
    snprintf(hostport, sizeof(hostport), "%s", v);
    char *slash = strchr(hostport, '/');
    if (slash)
        *slash = '\0';
    char host[300] = "127.0.0.1";
    char port[16] = "11434";
    if (strcmp(scheme, "https") == 0)
        snprintf(port, sizeof(port), "443");
    char *h = hostport;
    if (*h == '[') {
        char *end = strchr(h, ']');
        if (end) {
            snprintf(host, sizeof(host), "%.*s", (int)(end - h + 1), h);
            if (end[1] == ':' && end[2])
                snprintf(port, sizeof(port), "%s", end + 2);
        }
    } else {
        char *colon = strrchr(h, ':');
        if (colon) {
            *colon = '\0';
            if (colon[1])
                snprintf(port, sizeof(port), "%s", colon + 1);
        }
        if (*h)
            snprintf(host, sizeof(host), "%s", h);
    }
    /* 0.0.0.0 is a bind address; clients reach it through loopback */
    if (strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    snprintf(url, sizeof(url), "%s://%s:%s", scheme, host, port);
    return url;
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
    return ox_buf_append(ud, p, size * n) == 0 ? size * n : 0;
}

static int transport_error(CURLcode cc, const char *errbuf, int quiet)
{
    if (quiet)
        return 1;
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST)
        return cli_error("could not connect to ollamax server at %s: is it running?",
                         cli_base_url());
    return cli_error("%s: %s", cli_base_url(),
                     errbuf[0] ? errbuf : ox_curl()->easy_strerror(cc));
}

static int do_request(const char *method, const char *path, const json_t *body, cli_resp_t *out,
                      int quiet)
{
    memset(out, 0, sizeof(*out));
    const ox_curl_api_t *C = ox_curl();
    if (!C)
        return quiet ? 1 : cli_error("%s", ox_curl_load_error());
    CURL *e = C->easy_init();
    if (!e)
        return quiet ? 1 : cli_error("out of memory");
    char url[1024], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof(url), "%s%s", cli_base_url(), path);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct curl_slist *hdrs = C->slist_append(NULL, "Content-Type: application/json");
    C->easy_setopt(e, CURLOPT_URL, url);
    C->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    C->easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    C->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    C->easy_setopt(e, CURLOPT_WRITEDATA, &out->body);
    C->easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    C->easy_setopt(e, CURLOPT_USERAGENT, "ollamax/" OX_VERSION);
    if (strcmp(method, "HEAD") == 0)
        C->easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        C->easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (text) {
        C->easy_setopt(e, CURLOPT_POSTFIELDS, text);
        C->easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
    }
    CURLcode cc = C->easy_perform(e);
    int rc = 0;
    if (cc != CURLE_OK) {
        rc = transport_error(cc, errbuf, quiet);
        ox_buf_free(&out->body);
    } else {
        C->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
    }
    C->slist_free_all(hdrs);
    C->easy_cleanup(e);
    free(text);
    return rc;
}

int cli_request(const char *method, const char *path, const json_t *body, cli_resp_t *out)
{
    return do_request(method, path, body, out, 0);
}

int cli_request_quiet(const char *method, const char *path, const json_t *body, cli_resp_t *out)
{
    return do_request(method, path, body, out, 1);
}

int cli_call_json(const char *method, const char *path, const json_t *body, json_t **out)
{
    *out = NULL;
    cli_resp_t r;
    if (cli_request(method, path, body, &r) != 0)
        return 1;
    char msg[1024];
    if (r.status / 100 != 2) {
        int rc = cli_error("%s", cli_resp_error(&r, msg, sizeof(msg)));
        ox_buf_free(&r.body);
        return rc;
    }
    json_t *o = json_loadb(r.body.data ? r.body.data : "", r.body.len, 0, NULL);
    ox_buf_free(&r.body);
    if (!json_is_object(o)) {
        json_decref(o);
        return cli_error("unexpected answer from %s%s", cli_base_url(), path);
    }
    *out = o;
    return 0;
}

const char *cli_resp_error(const cli_resp_t *r, char *buf, size_t cap)
{
    json_t *o = r->body.data ? json_loads(r->body.data, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(o, "error"));
    if (!msg && json_is_object(json_object_get(o, "error")))  /* OpenAI shape */
        msg = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
    if (msg)
        snprintf(buf, cap, "%s", msg);
    else if (r->body.len > 0 && r->body.len < 200)
        snprintf(buf, cap, "%ld: %s", r->status, r->body.data);
    else
        snprintf(buf, cap, "server answered %ld", r->status);
    json_decref(o);
    return buf;
}

typedef struct stream_ctx {
    ox_buf_t line;
    ox_buf_t errbody;     /* body of a non-2xx answer */
    CURL *easy;
    long status;
    int (*on_line)(json_t *obj, void *ud);
    void *ud;
    int stop;             /* on_line asked to stop */
    char err[1024];       /* an {"error"} line */
} stream_ctx_t;

static int stream_line(stream_ctx_t *s, const char *p, size_t n)
{
    while (n && (p[n - 1] == '\r' || p[n - 1] == ' '))
        n--;
    if (n == 0)
        return 0;
    json_error_t je;
    json_t *o = json_loadb(p, n, JSON_ALLOW_NUL, &je);
    if (!o) {
        snprintf(s->err, sizeof(s->err), "bad response line: %s", je.text);
        return -1;
    }
    const char *e = json_string_value(json_object_get(o, "error"));
    int rc = 0;
    if (e) {
        snprintf(s->err, sizeof(s->err), "%s", e);
        rc = -1;
    } else if (s->on_line(o, s->ud) != 0) {
        s->stop = 1;
        rc = -1;
    }
    json_decref(o);
    return rc;
}

static size_t on_stream_write(char *p, size_t size, size_t n, void *ud)
{
    stream_ctx_t *s = ud;
    size_t len = size * n;
    if (!s->status)
        ox_curl()->easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status / 100 != 2)
        return ox_buf_append(&s->errbody, p, len) == 0 ? len : 0;
    if (ox_buf_append(&s->line, p, len) != 0)
        return 0;
    char *nl;
    while ((nl = memchr(s->line.data, '\n', s->line.len))) {
        size_t ln = (size_t)(nl - s->line.data);
        int rc = stream_line(s, s->line.data, ln);
        ox_buf_consume(&s->line, ln + 1);
        if (rc)
            return 0;
    }
    return len;
}

int cli_stream(const char *path, const json_t *body, int (*on_line)(json_t *obj, void *ud),
               void *ud)
{
    const ox_curl_api_t *C = ox_curl();
    if (!C)
        return cli_error("%s", ox_curl_load_error());
    CURL *e = C->easy_init();
    if (!e)
        return cli_error("out of memory");
    stream_ctx_t s = {.easy = e, .on_line = on_line, .ud = ud};
    char url[1024], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof(url), "%s%s", cli_base_url(), path);
    char *text = json_dumps(body, JSON_COMPACT);
    struct curl_slist *hdrs = C->slist_append(NULL, "Content-Type: application/json");
    C->easy_setopt(e, CURLOPT_URL, url);
    C->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    C->easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    C->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_stream_write);
    C->easy_setopt(e, CURLOPT_WRITEDATA, &s);
    C->easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
    C->easy_setopt(e, CURLOPT_USERAGENT, "ollamax/" OX_VERSION);
    C->easy_setopt(e, CURLOPT_POSTFIELDS, text ? text : "{}");
    CURLcode cc = C->easy_perform(e);
    C->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &s.status);
    int rc = 0;
    if (s.err[0]) {
        rc = cli_error("%s", s.err);
    } else if (s.stop) {
        rc = 0;
    } else if (cc != CURLE_OK) {
        rc = transport_error(cc, errbuf, 0);
    } else if (s.status / 100 != 2) {
        cli_resp_t r = {.status = s.status, .body = s.errbody};
        char msg[1024];
        rc = cli_error("%s", cli_resp_error(&r, msg, sizeof(msg)));
    } else if (s.line.len > 0 && stream_line(&s, s.line.data, s.line.len) != 0 && !s.stop) {
        rc = cli_error("%s", s.err);
    }
    ox_buf_free(&s.line);
    ox_buf_free(&s.errbody);
    C->slist_free_all(hdrs);
    C->easy_cleanup(e);
    free(text);
    return rc;
}
