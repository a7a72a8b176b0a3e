/* Node lifecycle (start/stop of the modules the node owns) and the parsing of
 * OLLAMA_HOST-style addresses. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "api/api.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/timeutil.h"
#include "daemon/node_swarm.h"
#include "daemon/serve.h"
#include "inference/runner.h"

static int parse_port(const char *s, size_t n, int *port)
{
    if (n == 0 || n > 5)
        return OX_EINVAL;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return OX_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    if (v > 65535)
        return OX_EINVAL;
    *port = v;
    return 0;
}

int node_host_parse(const char *s, char *host, size_t hostcap, int *port, char *scheme,
                    size_t schemecap)
{
    if (!s)
        return OX_EINVAL;
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    const char *sep = strstr(s, "://");
    const char *hp = s;
    if (sep && sep < s + len) {
        size_t sl = (size_t)(sep - s);
        if (sl == 0 || sl > 16)
            return OX_EINVAL;
        for (size_t i = 0; i < sl; i++)
            if (!isalpha((unsigned char)s[i]))
                return OX_EINVAL;
        if (scheme && schemecap) {
            size_t c = sl < schemecap - 1 ? sl : schemecap - 1;
            for (size_t i = 0; i < c; i++)
                scheme[i] = (char)tolower((unsigned char)s[i]);
            scheme[c] = 0;
        }
        hp = sep + 3;
    }
    /* drop any path */
    const char *end = s + len;
    const char *slash = memchr(hp, '/', (size_t)(end - hp));
    if (slash)
        end = slash;
    size_t n = (size_t)(end - hp);
    const char *h = hp;
    size_t hn = n;
    int p = *port;
    if (n && hp[0] == '[') {
        const char *rb = memchr(hp, ']', n);
        if (!rb)
            return OX_EINVAL;
        h = hp + 1;
        hn = (size_t)(rb - h);
        const char *after = rb + 1;
        if (after < end) {
            if (*after != ':' || parse_port(after + 1, (size_t)(end - after - 1), &p) != 0)
                return OX_EINVAL;
        }
    } else {
        const char *colon = memchr(hp, ':', n);
        const char *colon2 = colon ? memchr(colon + 1, ':', (size_t)(end - colon - 1)) : NULL;
        if (colon && !colon2) {
            hn = (size_t)(colon - hp);
            if (parse_port(colon + 1, (size_t)(end - colon - 1), &p) != 0)
                return OX_EINVAL;
        }
        /* several ':' and no brackets: a bare IPv6 address */
    }
    for (size_t i = 0; i < hn; i++)
        if (isspace((unsigned char)h[i]) || h[i] == '@')
            return OX_EINVAL;
    if (hn) {
        if (hn >= hostcap)
            return OX_EINVAL;
        memcpy(host, h, hn);
        host[hn] = 0;
    }
    *port = p;
    return 0;
}

/* OLLAMAX_NOPRUNE, else OLLAMA_NOPRUNE, read as Ollama reads it: unset or
 * empty is off, Go's ParseBool false values are off, anything else is on. */
static int noprune(void)
{
    const char *v = getenv("OLLAMAX_NOPRUNE");
    if (!v || !*v)
        v = getenv("OLLAMA_NOPRUNE");
    if (!v || !*v)
        return 0;
    static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (strcmp(v, no[i]) == 0)
            return 0;
    return 1;
}

/* Ollama prunes unused blobs at start-up; so do we, here on the loop thread
 * before the server listens and the swarm starts: no upload or create can
 * race it (a blob uploaded for a create whose manifest is not written yet
 * would go), no fetch stages into tmp/ meanwhile, and the swarm never
 * announces a blob that is about to go. It costs one walk of manifests/ (the
 * index caches their contents) and one readdir of blobs/. */
static void prune_at_start(node_t *node)
{
    if (noprune()) {
        OX_INFO("not pruning unused blobs (NOPRUNE is set)");
        return;
    }
    int64_t t0 = ox_time_mono_ns();
    int n = cas_gc(node->cas);
    if (n < 0)
        OX_WARN("pruning unused blobs: %s", ox_strerror(n));
    else
        OX_INFO("pruned %d unused blobs in %.3f s", n, (double)(ox_time_mono_ns() - t0) / 1e9);
}

int node_start(node_t *node, char *err, size_t errlen)
{
    node->cas = NULL;
    node->api = NULL;
    node->swarm = NULL;
    node->runner = NULL;
    node->started_ns = ox_time_now_ns();
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        uint64_t t = (uint64_t)node->started_ns ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (uint8_t)(t >> (8 * (i % 8))) ^ (uint8_t)i;
    }
    ox_hex_encode(rnd, sizeof rnd, node->id);
    char tmp[1100];
    int rc = ox_fs_mkdir_p(node->cfg.home, 0755);
    if (rc == 0)
        rc = ox_fs_mkdir_p(node->cfg.models, 0755);
    if (rc == 0 && ox_fs_join(tmp, sizeof tmp, node->cfg.home, "tmp") == 0)
        rc = ox_fs_mkdir_p(tmp, 0755);
    if (rc != 0) {
        snprintf(err, errlen, "create %s: %s", node->cfg.home, ox_strerror(rc));
        return rc;
    }
    rc = cas_open(node->cfg.models, node->cfg.home, &node->cas, err, errlen);
    if (rc != 0)
        return rc;
    prune_at_start(node);
    runner_config_t rcfg = {.keep_alive_ns = node->cfg.keep_alive_ns,
                            .num_parallel = node->cfg.num_parallel,
                            .max_queue = node->cfg.max_queue};
    rc = runner_new(node->loop, &rcfg, &node->runner);
    if (rc != 0) {
        snprintf(err, errlen, "runner: %s", ox_strerror(rc));
        cas_close(node->cas);
        node->cas = NULL;
        return rc;
    }
    rc = api_start(node, err, errlen);
    if (rc != 0) {
        runner_close(node->runner, NULL, NULL);
        node->runner = NULL;
        cas_close(node->cas);
        node->cas = NULL;
        return rc;
    }
    return node_swarm_start(node);
}

typedef struct stop_ctx {
    node_t *node;
    void (*cb)(void *ud);
    void *ud;
} stop_ctx_t;

static void on_swarm_stopped(void *ud)
{
    stop_ctx_t *s = ud;
    node_t *node = s->node;
    void (*cb)(void *) = s->cb;
    void *cud = s->ud;
    free(s);
    if (node->cas) {
        cas_close(node->cas);
        node->cas = NULL;
    }
    if (cb)
        cb(cud);
}

/* The swarm outlives the api (no handler can reach it afterwards) and goes
 * before the store it seeds from. */
static void on_runner_closed(void *ud);

/* The runner goes after the api (whose requests hold its jobs) and before
 * the store its models were read from. */
static void on_api_stopped(void *ud)
{
    stop_ctx_t *s = ud;
    if (s->node->runner) {
        runner_t *r = s->node->runner;
        s->node->runner = NULL;
        runner_close(r, on_runner_closed, s);
        return;
    }
    on_runner_closed(s);
}

static void on_runner_closed(void *ud)
{
    stop_ctx_t *s = ud;
    node_swarm_stop(s->node, on_swarm_stopped, s);
}

void node_stop(node_t *node, void (*cb)(void *ud), void *ud)
{
    stop_ctx_t *s = malloc(sizeof *s);
    if (!s) {
        /* cannot wait for the api without memory: close what we can */
        OX_ERROR("node_stop: out of memory");
        return;
    }
    s->node = node;
    s->cb = cb;
    s->ud = ud;
    if (node->api)
        api_stop(node, on_api_stopped, s);
    else
        on_api_stopped(s);
}
