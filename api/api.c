/* The api of a node: the HTTP server, routing, CORS and the Host check.
 *
 * Policy runs in on_headers, before any body is read, in the order Ollama's
 * middleware applies it: CORS (a disallowed Origin gets 403, a preflight gets
 * 204), then the DNS-rebinding Host check, then routing (404/405 as plain
 * text). Only then is a body buffered or, for blob uploads, streamed. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api.h"
#include "api/api_int.h"
#include "common/err.h"
#include "common/log.h"

#define CT_TEXT "text/plain; charset=utf-8"

/* ---- routes ---------------------------------------------------------------- */

static void on_root(node_t *node, http_req_t *req)
{
    (void)node;
    static const char msg[] = "Ollama is running";
    http_respond(req, 200, CT_TEXT, msg, sizeof msg - 1);
}

static void on_version(node_t *node, http_req_t *req)
{
    (void)node;
    json_t *o = json_object();
    json_object_set_new(o, "version", json_string(OX_VERSION));
    api_json(req, 200, o);
}

typedef struct route {
    const char *method;
    const char *path;
    int param; /* path is a prefix followed by one non-empty segment */
    api_handler_fn fn;
} route_t;

/* POST /api/blobs/: is dispatched by on_headers/on_request itself (streamed
 * body); its entry only makes the path and method known. */
static const route_t routes[] = {
    {"GET", "/", 0, on_root},
    {"HEAD", "/", 0, on_root},
    {"GET", "/api/version", 0, on_version},
    {"HEAD", "/api/version", 0, on_version},
    {"POST", "/api/pull", 0, api_route_pull},
    {"GET", "/api/tags", 0, api_route_tags},
    {"HEAD", "/api/tags", 0, api_route_tags},
    {"POST", "/api/show", 0, api_route_show},
    {"POST", "/api/create", 0, api_route_create},
    {"POST", "/api/blobs/", 1, NULL},
    {"HEAD", "/api/blobs/", 1, api_route_blob_head},
    {"POST", "/api/copy", 0, api_route_copy},
    {"DELETE", "/api/delete", 0, api_route_delete},
    {"POST", "/api/verify", 0, api_route_verify},
    {"GET", "/api/ps", 0, api_route_ps},
    {"POST", "/api/generate", 0, api_route_generate},
    {"POST", "/api/chat", 0, api_route_chat},
    {"POST", "/api/embed", 0, api_route_embed},
    {"POST", "/api/embeddings", 0, api_route_embeddings},
    {"POST", "/v1/chat/completions", 0, api_route_oai_chat},
    {"POST", "/v1/completions", 0, api_route_oai_completions},
    {"POST", "/v1/embeddings", 0, api_route_oai_embeddings},
    {"GET", "/v1/models", 0, api_route_oai_models},
    {"GET", "/v1/models/", 1, api_route_oai_model},
    {"GET", "/api/swarm/status", 0, api_route_swarm_status},
    {"GET", "/api/swarm/torrents/", 1, api_route_swarm_torrent},
};

static int path_matches(const route_t *r, const char *path)
{
    if (!r->param)
        return strcmp(path, r->path) == 0;
    size_t n = strlen(r->path);
    if (strncmp(path, r->path, n) != 0)
        return 0;
    const char *rest = path + n;
    return *rest && !strchr(rest, '/');
}

/* 0 and *out when method+path is a route; 404 when the path is unknown; 405
 * when the path is known under other methods. */
static int route_find(const char *method, const char *path, const route_t **out)
{
    int known = 0;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!path_matches(&routes[i], path))
            continue;
        known = 1;
        if (strcmp(routes[i].method, method) == 0) {
            *out = &routes[i];
            return 0;
        }
    }
    if (strncmp(path, "/v2/", 4) == 0 || strcmp(path, "/v2") == 0)
        return (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) ? 1 : 405;
    return known ? 405 : 404;
}

/* ---- CORS ------------------------------------------------------------------ */

static int origin_pattern_match(const char *pat, const char *origin)
{
    const char *star = strchr(pat, '*');
    if (!star)
        return strcmp(pat, origin) == 0;
    size_t pre = (size_t)(star - pat), post = strlen(star + 1), n = strlen(origin);
    return n >= pre + post && strncmp(origin, pat, pre) == 0 &&
           strcmp(origin + n - post, star + 1) == 0;
}

static int origin_allowed(const struct api *a, const char *origin)
{
    if (a->allow_all_origins)
        return 1;
    static const char *ext[] = {"chrome-extension://", "safari-extension://", "moz-extension://",
                                "ms-browser-extension://"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (strncmp(origin, ext[i], strlen(ext[i])) == 0)
            return 1;
    for (size_t i = 0; i < a->n_origins; i++)
        if (origin_pattern_match(a->origins[i], origin))
            return 1;
    return 0;
}

static int add_origin(struct api *a, const char *o, size_t n)
{
    while (n && isspace((unsigned char)*o))
        o++, n--;
    while (n && isspace((unsigned char)o[n - 1]))
        n--;
    if (n == 0)
        return 0;
    if (n == 1 && *o == '*') {
        a->allow_all_origins = 1;
        return 0;
    }
    if (a->n_origins == API_ORIGINS_MAX)
        return 0;
    char *s = strndup(o, n);
    if (!s)
        return OX_ENOMEM;
    a->origins[a->n_origins++] = s;
    return 0;
}

static int origins_init(struct api *a, const char *extra)
{
    const char *p = extra;
    while (p && *p) {
        const char *c = strchr(p, ',');
        size_t n = c ? (size_t)(c - p) : strlen(p);
        if (add_origin(a, p, n) != 0)
            return OX_ENOMEM;
        p = c ? c + 1 : NULL;
    }
    static const char *hosts[] = {"localhost", "127.0.0.1", "0.0.0.0"};
    for (size_t i = 0; i < 3; i++) {
        char buf[64];
        const char *fmts[] = {"http://%s", "https://%s", "http://%s:*", "https://%s:*"};
        for (size_t f = 0; f < 4; f++) {
            snprintf(buf, sizeof buf, fmts[f], hosts[i]);
            if (add_origin(a, buf, strlen(buf)) != 0)
                return OX_ENOMEM;
        }
    }
    static const char *schemes[] = {"app://*", "file://*", "tauri://*", "vscode-webview://*",
                                    "vscode-file://*"};
    for (size_t i = 0; i < 5; i++)
        if (add_origin(a, schemes[i], strlen(schemes[i])) != 0)
            return OX_ENOMEM;
    return 0;
}

static const char cors_headers[] =
    "Authorization,Content-Type,User-Agent,Accept,X-Requested-With,OpenAI-Beta,"
    "x-stainless-arch,x-stainless-async,x-stainless-custom-poll-interval,"
    "x-stainless-helper-method,x-stainless-lang,x-stainless-os,x-stainless-package-version,"
    "x-stainless-poll-helper,x-stainless-retry-count,x-stainless-runtime,"
    "x-stainless-runtime-version,x-stainless-timeout";

/* Returns 1 when it answered the request (403 or preflight 204). */
static int apply_cors(struct api *a, http_req_t *req)
{
    const char *origin = http_req_header(req, "Origin");
    if (!origin || !*origin)
        return 0;
    const char *host = http_req_header(req, "Host");
    if (host) {
        /* same-origin fetches carry Origin but are not CORS requests */
        if ((strncmp(origin, "http://", 7) == 0 && strcmp(origin + 7, host) == 0) ||
            (strncmp(origin, "https://", 8) == 0 && strcmp(origin + 8, host) == 0))
            return 0;
    }
    if (!origin_allowed(a, origin)) {
        http_respond(req, 403, NULL, NULL, 0);
        return 1;
    }
    http_resp_header(req, "Access-Control-Allow-Origin", a->allow_all_origins ? "*" : origin);
    if (!a->allow_all_origins)
        http_resp_header(req, "Vary", "Origin");
    if (strcmp(http_req_method(req), "OPTIONS") == 0) {
        http_resp_header(req, "Access-Control-Allow-Methods",
                         "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS");
        http_resp_header(req, "Access-Control-Allow-Headers", cors_headers);
        http_resp_header(req, "Access-Control-Max-Age", "43200");
        http_respond(req, 204, NULL, NULL, 0);
        return 1;
    }
    return 0;
}

/* ---- Host check (DNS rebinding) --------------------------------------------- */

static int ip_is_local(const char *host)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, host, b) == 1) {
        if (b[0] == 127 || b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) ||
            (b[0] == 192 && b[1] == 168) || (b[0] | b[1] | b[2] | b[3]) == 0)
            return 1;
    } else if (inet_pton(AF_INET6, host, b) == 1) {
        static const unsigned char lo[16] = {[15] = 1}, any[16] = {0};
        if (memcmp(b, lo, 16) == 0 || memcmp(b, any, 16) == 0 || (b[0] & 0xFE) == 0xFC)
            return 1;
        /* IPv4-mapped: judge the IPv4 address */
        static const unsigned char mapped[12] = {[10] = 0xFF, [11] = 0xFF};
        if (memcmp(b, mapped, 12) == 0) {
            char v4[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, b + 12, v4, sizeof v4);
            return ip_is_local(v4);
        }
    } else {
        return -1; /* not an IP */
    }
    /* an address of one of this machine's interfaces */
    uv_interface_address_t *ifs;
    int n;
    int found = 0;
    if (uv_interface_addresses(&ifs, &n) == 0) {
        for (int i = 0; i < n && !found; i++) {
            char s[INET6_ADDRSTRLEN] = "";
            if (ifs[i].address.address4.sin_family == AF_INET)
                uv_ip4_name(&ifs[i].address.address4, s, sizeof s);
            else
                uv_ip6_name(&ifs[i].address.address6, s, sizeof s);
            found = strcasecmp(s, host) == 0;
        }
        uv_free_interface_addresses(ifs, n);
    }
    return found;
}

static int name_allowed(const struct api *a, const char *h)
{
    if (!*h || strcmp(h, "localhost") == 0 || (a->hostname[0] && strcmp(h, a->hostname) == 0))
        return 1;
    static const char *tlds[] = {".localhost", ".local", ".internal"};
    size_t n = strlen(h);
    for (size_t i = 0; i < 3; i++) {
        size_t t = strlen(tlds[i]);
        if (n > t && strcmp(h + n - t, tlds[i]) == 0)
            return 1;
    }
    return 0;
}

/* Returns 1 when it answered the request (403, or 204 for OPTIONS). */
static int apply_host_check(struct api *a, http_req_t *req)
{
    if (!a->loopback)
        return 0;
    const char *hv = http_req_header(req, "Host");
    char host[300];
    snprintf(host, sizeof host, "%s", hv ? hv : "");
    /* strip the port: "[v6]:p", "v4:p", "name:p"; a bare v6 has several ':' */
    if (host[0] == '[') {
        char *e = strchr(host, ']');
        if (e) {
            *e = 0;
            memmove(host, host + 1, strlen(host + 1) + 1);
        }
    } else {
        char *c = strchr(host, ':');
        if (c && !strchr(c + 1, ':'))
            *c = 0;
    }
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    int ip = ip_is_local(host);
    if (ip == 1)
        return 0;
    if (ip == -1 && name_allowed(a, host)) {
        if (strcmp(http_req_method(req), "OPTIONS") == 0) {
            http_respond(req, 204, NULL, NULL, 0);
            return 1;
        }
        return 0;
    }
    http_respond(req, 403, NULL, NULL, 0);
    return 1;
}

/* ---- server callbacks --------------------------------------------------------- */

static void respond_route_error(http_req_t *req, int code)
{
    if (code == 405) {
        static const char m[] = "405 method not allowed";
        http_respond(req, 405, "text/plain", m, sizeof m - 1);
    } else {
        static const char m[] = "404 page not found";
        http_respond(req, 404, "text/plain", m, sizeof m - 1);
    }
}

static void on_headers(http_req_t *req, void *ud)
{
    node_t *node = ud;
    struct api *a = node->api;
    if (apply_cors(a, req) || apply_host_check(a, req))
        return;
    const route_t *r = NULL;
    int rc = route_find(http_req_method(req), http_req_path(req), &r);
    if (rc > 1) {
        respond_route_error(req, rc);
        return;
    }
    if (rc == 0 && r->fn == NULL)
        api_blob_upload_begin(node, req);
}

static void on_request(http_req_t *req, void *ud)
{
    node_t *node = ud;
    if (api_blob_upload_owns(req)) {
        api_blob_upload_end(node, req);
        return;
    }
    const route_t *r = NULL;
    int rc = route_find(http_req_method(req), http_req_path(req), &r);
    if (rc == 1) {
        if (!api_registry_route(node, req))
            respond_route_error(req, 404);
        return;
    }
    if (rc != 0 || !r->fn) {
        respond_route_error(req, rc == 0 ? 404 : rc);
        return;
    }
    r->fn(node, req);
}

/* ---- lifecycle ------------------------------------------------------------------ */

static int host_is_loopback(const char *h)
{
    return strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0 || strcmp(h, "[::1]") == 0 ||
           strcasecmp(h, "localhost") == 0;
}

static void api_free(struct api *a)
{
    for (size_t i = 0; i < a->n_origins; i++)
        free(a->origins[i]);
    free(a);
}

int api_start(node_t *node, char *err, size_t errlen)
{
    struct api *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return OX_ENOMEM;
    }
    a->node = node;
    if (origins_init(a, node->cfg.origins) != 0) {
        api_free(a);
        snprintf(err, errlen, "out of memory");
        return OX_ENOMEM;
    }
    if (gethostname(a->hostname, sizeof a->hostname) != 0)
        a->hostname[0] = 0;
    a->hostname[sizeof a->hostname - 1] = 0;
    for (char *p = a->hostname; *p; p++)
        *p = (char)tolower((unsigned char)*p);

    char host[256];
    snprintf(host, sizeof host, "%s", node->cfg.host[0] ? node->cfg.host : "127.0.0.1");
    if (host[0] == '[') { /* "[::1]" -> "::1" */
        size_t n = strlen(host);
        if (n > 2 && host[n - 1] == ']') {
            host[n - 1] = 0;
            memmove(host, host + 1, n - 1);
        }
    }
    if (strcasecmp(host, "localhost") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    a->loopback = host_is_loopback(host);

    http_callbacks_t cb = {.on_headers = on_headers, .on_request = on_request, .ud = node};
    int rc = http_server_new(node->loop, NULL, &cb, &a->srv);
    if (rc != 0) {
        snprintf(err, errlen, "http server: %s", ox_strerror(rc));
        api_free(a);
        return rc;
    }
    node->api = a;
    rc = http_server_listen(a->srv, host, node->cfg.port);
    if (rc != 0) {
        snprintf(err, errlen, "listen on %s:%d: %s", host, node->cfg.port,
                 rc == OX_EBUSY ? "address already in use" : ox_strerror(rc));
        /* the server owns handles: close it and let the loop free it */
        http_server_close(a->srv, NULL, NULL);
        node->api = NULL;
        api_free(a);
        return rc;
    }
    a->port = http_server_port(a->srv);
    return 0;
}

int api_port(const node_t *node)
{
    return node->api ? node->api->port : -1;
}

void api__maybe_finish_stop(struct api *a)
{
    if (!a->stopping || !a->server_closed || a->jobs > 0)
        return;
    node_t *node = a->node;
    void (*cb)(void *) = a->stop_cb;
    void *ud = a->stop_ud;
    node->api = NULL;
    api_free(a);
    if (cb)
        cb(ud);
}

static void on_server_closed(void *ud)
{
    struct api *a = ud;
    a->server_closed = 1;
    api__maybe_finish_stop(a);
}

void api_stop(node_t *node, void (*cb)(void *ud), void *ud)
{
    struct api *a = node->api;
    if (!a || a->stopping) {
        if (!a && cb)
            cb(ud);
        return;
    }
    a->stopping = 1;
    a->stop_cb = cb;
    a->stop_ud = ud;
    http_server_close(a->srv, on_server_closed, a);
}
