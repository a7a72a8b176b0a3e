/* Shared fixture of the test_api_*.c tests: a real node (store + api on an
 * ephemeral port over a temp home) whose loop runs on a second thread, and a
 * libcurl client on the test thread. Teardown stops the node through an
 * uv_async, joins the loop thread and asserts uv_loop_close() == 0, so a
 * leaked handle fails the test. */
#ifndef OX_TEST_API_FIXTURE_H
#define OX_TEST_API_FIXTURE_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "common/buf.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "daemon/serve.h"

typedef struct fx {
    uv_loop_t loop;
    node_t node;
    uv_async_t stop;
    pthread_t thread;
    char home[64];
    int port;
    int stopped;
} fx_t;

typedef struct resp {
    long status;
    ox_buf_t body;
    ox_buf_t hdrs;
} resp_t;

static inline void fx_on_stopped(void *ud)
{
    fx_t *f = ud;
    f->stopped = 1;
    uv_close((uv_handle_t *)&f->stop, NULL);
}

static inline void fx_on_stop(uv_async_t *a)
{
    fx_t *f = a->data;
    node_stop(&f->node, fx_on_stopped, f);
}

static void *fx_loop_main(void *arg)
{
    fx_t *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Starts a node. extra_env may set OLLAMA_ORIGINS etc. before the config is
 * filled by hand. */
static inline int fx_start_host(void **state, const char *host, const char *origins)
{
    fx_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    /* these tests are about the HTTP api: no BitTorrent swarm per test */
    setenv("OLLAMAX_SWARM", "0", 0);
    snprintf(f->home, sizeof f->home, "/tmp/oxapiXXXXXX");
    if (!mkdtemp(f->home))
        return -1;
    if (uv_loop_init(&f->loop) != 0)
        return -1;
    f->node.loop = &f->loop;
    snprintf(f->node.cfg.home, sizeof f->node.cfg.home, "%s", f->home);
    snprintf(f->node.cfg.models, sizeof f->node.cfg.models, "%s/models", f->home);
    snprintf(f->node.cfg.host, sizeof f->node.cfg.host, "%s", host);
    snprintf(f->node.cfg.origins, sizeof f->node.cfg.origins, "%s", origins ? origins : "");
    f->node.cfg.port = 0;
    char err[512] = "";
    if (node_start(&f->node, err, sizeof err) != 0) {
        fprintf(stderr, "node_start: %s\n", err);
        return -1;
    }
    f->port = api_port(&f->node);
    uv_async_init(&f->loop, &f->stop, fx_on_stop);
    f->stop.data = f;
    if (pthread_create(&f->thread, NULL, fx_loop_main, f) != 0)
        return -1;
    *state = f;
    return 0;
}

static inline int fx_setup(void **state)
{
    return fx_start_host(state, "127.0.0.1", NULL);
}

static inline int fx_teardown(void **state)
{
    fx_t *f = *state;
    uv_async_send(&f->stop);
    pthread_join(f->thread, NULL);
    int rc = uv_loop_close(&f->loop);
    if (rc != 0)
        fprintf(stderr, "uv_loop_close: %s\n", uv_strerror(rc));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->home);
    if (system(cmd) != 0)
        rc = -1;
    int stopped = f->stopped;
    free(f);
    return rc == 0 && stopped ? 0 : -1;
}

static inline size_t fx_write_cb(char *p, size_t sz, size_t n, void *ud)
{
    ox_buf_append(ud, p, sz * n);
    return sz * n;
}

/* Performs one request. headers: NULL-terminated "Name: value" list. body may
 * be NULL (no body) and blen is its length. */
static inline void fx_request(fx_t *f, const char *method, const char *path, const void *body,
                       size_t blen, const char **headers, resp_t *r)
{
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    char url[1024];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", f->port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    }
    struct curl_slist *hl = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fx_write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, fx_write_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->hdrs);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK)
        r->status = -1;
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->body.data)
        ox_buf_append(&r->body, "", 0);
    if (!r->hdrs.data)
        ox_buf_append(&r->hdrs, "", 0);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
}

static inline void fx_json(fx_t *f, const char *method, const char *path, const char *json,
                    resp_t *r)
{
    const char *h[] = {"Content-Type: application/json", NULL};
    fx_request(f, method, path, json, json ? strlen(json) : 0, h, r);
}

static inline void resp_free(resp_t *r)
{
    ox_buf_free(&r->body);
    ox_buf_free(&r->hdrs);
}

/* Value of a response header (case-insensitive name), "" if absent. */
static inline const char *resp_header(const resp_t *r, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    size_t n = strlen(name);
    for (const char *p = r->hdrs.data; p && *p;) {
        const char *e = strstr(p, "\r\n");
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            size_t vl = (size_t)(p + len - v);
            snprintf(out, cap, "%.*s", (int)vl, v);
        }
        if (!e)
            break;
        p = e + 2;
    }
    return out;
}

/* ---- a tiny valid GGUF v3 ---------------------------------------------------- */

static inline void gg_u32(ox_buf_t *b, uint32_t v) { ox_buf_append(b, &v, 4); }
static inline void gg_u64(ox_buf_t *b, uint64_t v) { ox_buf_append(b, &v, 8); }
static inline void gg_str(ox_buf_t *b, const char *s)
{
    gg_u64(b, strlen(s));
    ox_buf_append(b, s, strlen(s));
}
static inline void gg_kv_str(ox_buf_t *b, const char *k, const char *v)
{
    gg_str(b, k);
    gg_u32(b, 8);
    gg_str(b, v);
}
static inline void gg_kv_u32(ox_buf_t *b, const char *k, uint32_t v)
{
    gg_str(b, k);
    gg_u32(b, 4);
    gg_u32(b, v);
}

/* llama-architecture GGUF with two F32 tensors of 4x8 (64 parameters), a
 * vocabulary of 8 tokens, file_type 1 (F16). extra_kv adds "<arch>.pooling_type"
 * when embedding is set. Caller frees with ox_buf_free. */
static inline void fx_make_gguf(ox_buf_t *b, int embedding)
{
    uint64_t nkv = 7 + (embedding ? 1 : 0);
    ox_buf_append(b, "GGUF", 4);
    gg_u32(b, 3);
    gg_u64(b, 2);   /* tensors */
    gg_u64(b, nkv); /* kv */
    gg_kv_str(b, "general.architecture", "llama");
    gg_kv_str(b, "general.name", "tiny");
    gg_kv_u32(b, "general.file_type", 1);
    gg_kv_u32(b, "llama.context_length", 128);
    gg_str(b, "llama.attention.layer_norm_rms_epsilon");
    gg_u32(b, 6);
    float eps = 1e-5f;
    ox_buf_append(b, &eps, 4);
    gg_str(b, "tokenizer.ggml.tokens");
    gg_u32(b, 9);
    gg_u32(b, 8);
    gg_u64(b, 8);
    const char *toks[] = {"<s>", "</s>", "a", "b", "c", "<tag>", "e", "f"};
    for (int i = 0; i < 8; i++)
        gg_str(b, toks[i]);
    gg_str(b, "general.tags");
    gg_u32(b, 9);
    gg_u32(b, 8);
    gg_u64(b, 2);
    gg_str(b, "x");
    gg_str(b, "y");
    if (embedding)
        gg_kv_u32(b, "llama.pooling_type", 1);
    const char *names[] = {"token_embd.weight", "output.weight"};
    for (int t = 0; t < 2; t++) {
        gg_str(b, names[t]);
        gg_u32(b, 2);
        gg_u64(b, 4);
        gg_u64(b, 8);
        gg_u32(b, 0); /* F32 */
        gg_u64(b, (uint64_t)t * 128);
    }
    while (b->len % 32)
        ox_buf_append(b, "", 1);
    for (int i = 0; i < 64; i++) {
        float v = (float)i / 64.0f;
        ox_buf_append(b, &v, 4);
    }
}

static inline void fx_digest(const void *p, size_t n, char out[80])
{
    char hex[65];
    ox_sha256_hex(p, n, hex);
    snprintf(out, 80, "sha256:%s", hex);
}

#endif
