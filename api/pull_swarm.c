/* The swarm step of a pull: before a blob is downloaded over HTTP, ask the
 * peers that may hold it (the registry host when it is a plain-HTTP peer, and
 * OLLAMAX_PEERS) for its torrent; when any holder answers, fetch the blob
 * through the swarm from every holder at once. No holder, no swarm, or a
 * failed swarm fetch falls back to the registry download (pull_blob_locate).
 *
 * Holders answer GET /api/swarm/torrents/<digest> with the torrent bytes and
 * their swarm endpoint in X-Ollamax-Swarm, so one round of requests tells both
 * who holds the blob and where to connect. Peers with a swarm that lack the
 * blob answer 404 with their endpoint as well: they are the candidates
 * fetching it at the same moment (in a fan-out every receiver probes every
 * other), connected directly and striped with (DESIGN 6, swarm_stripe_assign).
 * Every receiver that shares OLLAMAX_PEERS derives the same stripe list; a
 * candidate that is not really fetching only costs priority, never
 * completion. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/pull_int.h"
#include "common/err.h"
#include "common/log.h"
#include "swarm/swarm.h"

#define PROBE_MAX 32
#define PULL_SWARM_MIN_SIZE (1u << 20)

typedef struct probe {
    struct pull_swarm *ps;
    ox_buf_t body;
    char api[360];                  /* the peer's API address */
} probe_t;

typedef struct pull_swarm {
    pull_t *pl;
    char digest[72];
    size_t pending;                 /* probes in flight */
    probe_t probes[PROBE_MAX];
    void *torrent;                  /* first torrent received (owned) */
    size_t torrent_len;
    char holders[PROBE_MAX][128];   /* swarm endpoints of holders */
    const char *holder_apis[PROBE_MAX]; /* their API addresses (in probes) */
    size_t n_holders;
    char lacking[PROBE_MAX][128];   /* swarm endpoints of peers without it */
    size_t n_lacking;
    size_t n_busy;                  /* holders still preparing its torrent (503) */
} pull_swarm_t;

/* A holder answers 503 while it hashes a blob it has just taken in (an
 * adopted Ollama store, a fresh upload): ask again, up to this many rounds a
 * second apart, before the registry is the only way left. */
#define PROBE_BUSY_ROUNDS 10

static void swarm_ctx_free(pull_swarm_t *ps)
{
    for (size_t i = 0; i < PROBE_MAX; i++)
        ox_buf_free(&ps->probes[i].body);
    free(ps->torrent);
    free(ps);
}

static int swarm_disabled(void)
{
    const char *e = getenv("OLLAMAX_PULL_SWARM");
    return e && (strcmp(e, "0") == 0 || strcasecmp(e, "false") == 0);
}

size_t pull_peer_apis(const node_t *node, char out[][360], size_t n, size_t cap)
{
    const char *p = node->cfg.peers;
    while (p && *p && n < cap) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t len = strcspn(p, ", ");
        if (len && len < 360) {
            char one[360];
            memcpy(one, p, len);
            one[len] = 0;
            const char *h = strstr(one, "://") ? strstr(one, "://") + 3 : one;
            int dup = 0;
            for (size_t i = 0; i < n; i++)
                dup |= strcasecmp(out[i], h) == 0;
            if (!dup)
                snprintf(out[n++], 360, "%s", h);
        }
        p += len;
    }
    return n;
}

/* Candidate peers' API addresses: the registry host of a plain-HTTP pull (an
 * ollamax peer serving /v2) and every configured peer, without duplicates. */
static size_t candidates(pull_t *pl, char out[][360], size_t cap)
{
    size_t n = 0;
    if (pl->insecure && n < cap)
        snprintf(out[n++], 360, "%s", pl->name.host);
    return pull_peer_apis(pl->node, out, n, cap);
}

static void on_fetch_progress(swarm_fetch_t *f, uint64_t done, uint64_t total, void *ud)
{
    pull_t *pl = ud;
    if (pl->finished) {
        swarm_fetch_cancel(f);
        return;
    }
    pull_progress_line(pl, total, done);
}

/* The blob is in the store: the HTTP partial we locked stayed empty, drop it
 * with the lock and go on with the next blob. */
static void blob_committed(pull_t *pl)
{
    const cas_layer_t *b = &pl->blobs[pl->cur];
    pull_progress_line(pl, b->size, b->size);
    unlink(pl->sidecar);
    unlink(pl->partial);
    pull_blob_release(pl);
    pull_next_blob(pl);
}

static void on_fetch_done(swarm_fetch_t *f, int status, const char *msg, void *ud)
{
    (void)f;
    pull_t *pl = ud;
    pl->swarm_fetch = NULL; /* f is freed when this returns */
    if (!pl->finished) {
        if (status == 0) {
            blob_committed(pl);
        } else {
            OX_WARN("pull: swarm fetch of %.19s failed (%s), using the registry",
                    pl->blobs[pl->cur].digest, msg && *msg ? msg : ox_strerror(status));
            pull_blob_locate(pl);
        }
    }
    pull_unref(pl);
}

static void on_reprobe(uv_timer_t *t) { pull_swarm_start(t->data); }

static void probes_done(pull_swarm_t *ps)
{
    pull_t *pl = ps->pl;
    if (!pl->finished && ps->n_holders == 0 && ps->n_busy && pl->node->swarm &&
        pl->probe_rounds < PROBE_BUSY_ROUNDS) {
        pl->probe_rounds++;
        uv_timer_start(&pl->wait, on_reprobe, 1000, 0);
        swarm_ctx_free(ps);
        pull_unref(pl);
        return;
    }
    pl->probe_rounds = 0;
    if (pl->finished || !ps->torrent || ps->n_holders == 0 || !pl->node->swarm) {
        if (!pl->finished)
            pull_blob_locate(pl);
        swarm_ctx_free(ps);
        pull_unref(pl);
        return;
    }
    const char *peers[PROBE_MAX], *co[PROBE_MAX];
    for (size_t i = 0; i < ps->n_holders; i++) {
        peers[i] = ps->holders[i];
        swarm_add_peer(pl->node->swarm, ps->holders[i]);
    }
    /* co-fetchers: the peers without the blob, self excepted (our own probe
     * answers when OLLAMAX_PEERS names us) */
    char self[128];
    int have_self = swarm_self_endpoint(pl->node->swarm, self, sizeof self) == 0;
    size_t n_co = 0;
    for (size_t i = 0; i < ps->n_lacking; i++)
        if (!have_self || strcmp(ps->lacking[i], self) != 0)
            co[n_co++] = ps->lacking[i];
    swarm_fetch_opts_t opts = {.cofetchers = co, .n_cofetchers = n_co,
                               .holder_apis = ps->holder_apis, .n_holder_apis = ps->n_holders,
                               .size = pl->blobs[pl->cur].size};
    const char *e = getenv("OLLAMAX_SWARM_STRIPE"); /* "0": connect, do not stripe */
    int stripe = !(e && strcmp(e, "0") == 0);
    if (!stripe || !have_self ||
        swarm_stripe_assign(self, co, n_co, &opts.stripe_index, &opts.stripe_count))
        opts.stripe_count = opts.stripe_index = 0;
    pull_ref(pl);
    int rc = swarm_fetch_start(pl->node->swarm, ps->digest, ps->torrent, ps->torrent_len, peers,
                               ps->n_holders, &opts, on_fetch_progress, on_fetch_done, pl,
                               &pl->swarm_fetch);
    if (rc == OX_EEXIST) {
        pull_unref(pl);
        blob_committed(pl);
    } else if (rc == OX_ETOOBIG) {
        pull_unref(pl);
        pull_fail(pl, "pull model blob %.19s: no space left on device for %" PRIu64 " bytes",
                  ps->digest, pl->blobs[pl->cur].size);
    } else if (rc != 0) {
        pull_unref(pl);
        OX_WARN("pull: cannot start a swarm fetch of %.19s: %s", ps->digest, ox_strerror(rc));
        pull_blob_locate(pl);
    } else {
        OX_INFO("pull: fetching %.19s through the swarm from %zu holder(s), %zu co-fetcher(s), "
                "stripe %d of %d", ps->digest, ps->n_holders, n_co, opts.stripe_index,
                opts.stripe_count);
    }
    swarm_ctx_free(ps);
    pull_unref(pl);
}

static int on_probe_data(curluv_req_t *r, const void *p, size_t n, void *ud)
{
    probe_t *pr = ud;
    if (curluv_req_status(r) != 200 || pr->body.len + n > (64u << 20))
        return 0;
    return ox_buf_append(&pr->body, p, n);
}

static void on_probe_done(curluv_req_t *r, int result, void *ud)
{
    probe_t *pr = ud;
    pull_swarm_t *ps = pr->ps;
    const char *ep = result == 0 ? curluv_req_header(r, "X-Ollamax-Swarm") : NULL;
    if (result == 0 && curluv_req_status(r) == 200 && pr->body.len > 0 && ep && *ep &&
        ps->n_holders < PROBE_MAX) {
        ps->holder_apis[ps->n_holders] = pr->api;
        snprintf(ps->holders[ps->n_holders++], sizeof ps->holders[0], "%s", ep);
        if (!ps->torrent) {
            ps->torrent_len = pr->body.len;
            ps->torrent = ox_buf_steal(&pr->body);
        }
    } else if (result == 0 && curluv_req_status(r) == 503 && curluv_req_header(r, "Retry-After")) {
        ps->n_busy++;
    } else if (result == 0 && curluv_req_status(r) == 404 && ep && *ep &&
               ps->n_lacking < PROBE_MAX) {
        int dup = 0;
        for (size_t i = 0; i < ps->n_lacking; i++)
            dup |= strcmp(ps->lacking[i], ep) == 0;
        if (!dup)
            snprintf(ps->lacking[ps->n_lacking++], sizeof ps->lacking[0], "%s", ep);
    }
    if (--ps->pending == 0)
        probes_done(ps);
}

void pull_swarm_start(pull_t *pl)
{
    /* a blob this small costs the swarm more in start-up (connections,
     * handshakes: 2-3 s measured on shaped links) than a direct download */
    if (!pl->node->swarm || swarm_disabled() || pl->blobs[pl->cur].size < PULL_SWARM_MIN_SIZE) {
        pull_blob_locate(pl);
        return;
    }
    char cand[PROBE_MAX][360];
    size_t n = candidates(pl, cand, PROBE_MAX);
    pull_swarm_t *ps = n ? calloc(1, sizeof *ps) : NULL;
    if (!ps) {
        pull_blob_locate(pl);
        return;
    }
    ps->pl = pl;
    snprintf(ps->digest, sizeof ps->digest, "%s", pl->blobs[pl->cur].digest);
    pull_ref(pl);
    ps->pending = 1; /* held until every probe is queued */
    for (size_t i = 0; i < n; i++) {
        char url[600];
        snprintf(url, sizeof url, "http://%.360s/api/swarm/torrents/%.72s", cand[i], ps->digest);
        probe_t *pr = &ps->probes[i];
        pr->ps = ps;
        memcpy(pr->api, cand[i], sizeof pr->api); /* same size */
        curluv_opts_t o = {.url = url,
                           .connect_timeout_ms = 2000,
                           .timeout_ms = 10000,
                           .on_data = on_probe_data,
                           .on_done = on_probe_done,
                           .ud = pr};
        ps->pending++;
        if (curluv_start(pl->cu, &o, NULL) != 0)
            ps->pending--;
    }
    if (--ps->pending == 0)
        probes_done(ps);
}
