/* The node's swarm: started between the store and the api, stopped between
 * them, seeded with every blob of the store, and introduced to the peers of
 * OLLAMAX_PEERS (each peer's swarm endpoint is learnt from its API, so only
 * API addresses are configured). A swarm that cannot start is not fatal: the
 * node serves and pulls over HTTP without it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/curluv.h"
#include "common/err.h"
#include "common/log.h"
#include "daemon/node_swarm.h"
#include "swarm/swarm.h"

#define PEERS_MAX 64
#define INTRO_PERIOD_MS 3000
#define INTRO_ROUNDS 40

typedef struct intro {
    node_t *node;
    curluv_t *cu;
    uv_timer_t timer;
    char api[PEERS_MAX][256];
    int learnt[PEERS_MAX];
    size_t n;
    int rounds;
    size_t pending;
    int closing;
    void (*stop_cb)(void *ud);
    void *stop_ud;
} intro_t;

static void host_to_bind(const char *host, char *out, size_t cap)
{
    if (!host[0] || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        out[0] = 0;
    else if (strcasecmp(host, "localhost") == 0)
        snprintf(out, cap, "127.0.0.1");
    else if (strlen(host) < cap)
        memcpy(out, host, strlen(host) + 1);
    else
        out[0] = 0;
}

typedef struct probe {
    intro_t *in;
    size_t idx;
} probe_t;

static void on_status_done(curluv_req_t *r, int result, void *ud)
{
    probe_t *p = ud;
    intro_t *in = p->in;
    const char *ep = result == 0 && curluv_req_status(r) == 200
                         ? curluv_req_header(r, "X-Ollamax-Swarm")
                         : NULL;
    if (ep && *ep && !in->closing && in->node->swarm) {
        if (swarm_add_peer(in->node->swarm, ep) == 0) {
            in->learnt[p->idx] = 1;
            OX_INFO("swarm: peer %s has swarm endpoint %s", in->api[p->idx], ep);
        }
    }
    in->pending--;
    free(p);
}

static void on_intro_timer(uv_timer_t *t)
{
    intro_t *in = t->data;
    int left = 0;
    for (size_t i = 0; i < in->n; i++) {
        if (in->learnt[i])
            continue;
        left = 1;
        probe_t *p = malloc(sizeof *p);
        if (!p)
            continue;
        p->in = in;
        p->idx = i;
        char url[400];
        snprintf(url, sizeof url, "http://%s/api/swarm/status", in->api[i]);
        curluv_opts_t o = {.url = url, .connect_timeout_ms = 1000, .timeout_ms = 3000,
                           .on_done = on_status_done, .ud = p};
        in->pending++;
        if (curluv_start(in->cu, &o, NULL) != 0) {
            in->pending--;
            free(p);
        }
    }
    if (!left || ++in->rounds >= INTRO_ROUNDS)
        uv_timer_stop(&in->timer);
}

static void on_intro_closed(void *ud)
{
    intro_t *in = ud;
    void (*cb)(void *) = in->stop_cb;
    void *cud = in->stop_ud;
    free(in);
    if (cb)
        cb(cud);
}

static void on_intro_timer_closed(uv_handle_t *h)
{
    intro_t *in = h->data;
    curluv_close(in->cu, on_intro_closed, in);
}

static void intro_start(node_t *node)
{
    intro_t *in = calloc(1, sizeof *in);
    if (!in)
        return;
    in->node = node;
    const char *p = node->cfg.peers;
    while (*p && in->n < PEERS_MAX) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t len = strcspn(p, ", ");
        if (len && len < sizeof in->api[0]) {
            const char *h = p;
            if (len > 7 && strncmp(p, "http://", 7) == 0)
                h += 7, len -= 7;
            memcpy(in->api[in->n], h, len);
            in->api[in->n][len] = 0;
            in->n++;
        }
        p += strcspn(p, ", ");
    }
    if (!in->n || curluv_new(node->loop, &in->cu) != 0) {
        free(in);
        return;
    }
    uv_timer_init(node->loop, &in->timer);
    in->timer.data = in;
    uv_timer_start(&in->timer, on_intro_timer, 200, INTRO_PERIOD_MS);
    node->swarm_intro = in;
}

int node_swarm_start(node_t *node)
{
    const char *off = getenv("OLLAMAX_SWARM");
    if (off && strcmp(off, "0") == 0)
        return 0;
    swarm_config_t sc;
    swarm_config_init(&sc);
    host_to_bind(node->cfg.host, sc.bind_ip, sizeof sc.bind_ip);
    sc.port = node->cfg.swarm_port;
    sc.max_upload = node->cfg.max_upload;
    sc.max_download = node->cfg.max_download;
    char err[512] = "";
    int rc = swarm_new(node->loop, node->cas, &sc, (swarm_t **)&node->swarm, err, sizeof err);
    if (rc != 0) {
        OX_WARN("swarm: not started (%s): serving and pulling over HTTP only",
                err[0] ? err : ox_strerror(rc));
        node->swarm = NULL;
        return 0;
    }
    int n = swarm_seed_all(node->swarm);
    if (n > 0)
        OX_INFO("swarm: seeding %d blob(s)", n);
    intro_start(node);
    return 0;
}

typedef struct stop_ctx {
    node_t *node;
    void (*cb)(void *ud);
    void *ud;
} stop_ctx_t;

static void on_swarm_closed(swarm_t *s, void *ud)
{
    (void)s;
    stop_ctx_t *sc = ud;
    void (*cb)(void *) = sc->cb;
    void *cud = sc->ud;
    free(sc);
    if (cb)
        cb(cud);
}

static void close_swarm(void *ud)
{
    stop_ctx_t *sc = ud;
    swarm_t *s = sc->node->swarm;
    sc->node->swarm = NULL;
    if (s)
        swarm_close(s, on_swarm_closed, sc);
    else
        on_swarm_closed(NULL, sc);
}

void node_swarm_stop(node_t *node, void (*cb)(void *ud), void *ud)
{
    stop_ctx_t *sc = malloc(sizeof *sc);
    if (!sc) {
        OX_ERROR("node_swarm_stop: out of memory");
        if (cb)
            cb(ud);
        return;
    }
    sc->node = node;
    sc->cb = cb;
    sc->ud = ud;
    intro_t *in = node->swarm_intro;
    node->swarm_intro = NULL;
    if (in) {
        in->closing = 1;
        in->stop_cb = close_swarm;
        in->stop_ud = sc;
        uv_timer_stop(&in->timer);
        uv_close((uv_handle_t *)&in->timer, on_intro_timer_closed);
    } else {
        close_swarm(sc);
    }
}
