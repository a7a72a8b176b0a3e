/* Coordinated striping (DESIGN 6): when K nodes fetch one blob at once and
 * know each other, fetcher k takes first the pieces p with p % K == k (the
 * engine's piece priorities), and once that share is in it blocks the
 * holders, so the holders' upload goes to fetchers still missing their share
 * and the origin sends about one copy. The rest comes from the co-fetchers,
 * which are connected directly (and again until they are peers: one whose
 * torrent is not added yet refuses the first try).
 *
 * The block is per engine (libtorrent 2.0 filters addresses for the whole
 * session), so an address is blocked only while every running fetch that
 * draws from it is past its share; it is lifted for good when the fetch
 * ends or stalls for SWARM_STALL_MS, so a fetch can never hang on it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "swarm/swarm_int.h"

#define RECONNECT_MS 1000

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int swarm_stripe_assign(const char *self, const char *const *cofetchers, size_t n, int *index,
                        int *count)
{
    if (!self || !*self || !index || !count || (n && !cofetchers))
        return OX_EINVAL;
    const char **all = malloc((n + 1) * sizeof *all);
    if (!all)
        return OX_ENOMEM;
    all[0] = self;
    for (size_t i = 0; i < n; i++) {
        if (!cofetchers[i]) {
            free(all);
            return OX_EINVAL;
        }
        all[i + 1] = cofetchers[i];
    }
    qsort(all, n + 1, sizeof *all, cmp_str);
    size_t k = 0, rank = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i && strcmp(all[i], all[i - 1]) == 0)
            continue; /* a node named twice (self in the list, a repeat) */
        if (strcmp(all[i], self) == 0)
            rank = k;
        k++;
    }
    free(all);
    *count = k >= 2 ? (int)k : 0;
    *index = k >= 2 ? (int)rank : 0;
    return 0;
}

int swarm_self_endpoint(const swarm_t *s, char *out, size_t cap)
{
    const char *ip = s->cfg.bind_ip;
    if (!ip[0] || strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0 || s->listen_port <= 0)
        return OX_ESTATE;
    int n = snprintf(out, cap, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, s->listen_port);
    return n < 0 || (size_t)n >= cap ? OX_ETOOBIG : 0;
}

static int fetch_live(const swarm_fetch_t *f)
{
    return f->state == FETCH_ADDING || f->state == FETCH_RUNNING;
}

static int fetch_uses(const swarm_fetch_t *f, const char *ip)
{
    char h[64];
    int port;
    for (size_t i = 0; i < f->n_peers; i++)
        if (swarm_endpoint_parse(f->peers[i], h, sizeof h, &port) == 0 && strcmp(h, ip) == 0)
            return 1;
    return 0;
}

/* The engine's block list: holders of blocking fetches that no other live
 * fetch still draws from. */
static void blocks_apply(swarm_t *s)
{
    const char *ips[256];
    char store[256][64];
    size_t n = 0;
    for (swarm_fetch_t *f = s->fetches; f; f = f->next) {
        if (!f->blocking || !fetch_live(f))
            continue;
        for (size_t i = 0; i < f->n_peers && n < 256; i++) {
            int port, needed = 0, dup = 0;
            if (swarm_endpoint_parse(f->peers[i], store[n], sizeof store[n], &port))
                continue;
            for (swarm_fetch_t *g = s->fetches; g && !needed; g = g->next)
                needed = fetch_live(g) && !g->blocking && fetch_uses(g, store[n]);
            for (size_t j = 0; j < n && !dup; j++)
                dup = strcmp(ips[j], store[n]) == 0;
            if (!needed && !dup) {
                ips[n] = store[n];
                n++;
            }
        }
    }
    if (s->eng && s->ops->set_blocked)
        s->ops->set_blocked(s->eng, ips, n);
}

/* ---- focus: a lagging share takes the link ------------------------------------
 *
 * A fetcher's link is shared per TCP flow: with seven co-fetchers sending
 * and one holder, the holder's flow gets about an eighth of it. Once the
 * other fetchers have their shares and block the holder, the holder could
 * send the rest of a late share much faster, but that fetcher's link stays
 * full of co-fetcher traffic: in the fan-out bench two fetchers got their
 * share 4 s after the other six (13.4 s against 9.1 s), which set the end.
 * So a fetcher whose share lags caps what it takes from its co-fetchers
 * (engine peer class) at half its rate of the moment until the share has
 * caught up; what it did not take then comes at full speed afterwards.
 *
 * Off unless OLLAMAX_SWARM_FOCUS=1: in the one fan-out run with it on, on a
 * machine loaded by other work, the fetcher that focused still got its
 * share last (the holder's upload was still shared by all fetchers then),
 * and the run was slower overall; not yet shown to pay. */

#define FOCUS_ON 0.08   /* share fraction this far behind the whole's */
#define FOCUS_OFF 0.01
#define FOCUS_FROM 0.50 /* late: the holder has room once most shares are in */
#define FOCUS_MIN_CAP (64u << 10)

int swarm__stripe_lagging(size_t share_done, size_t share_total, uint64_t done, uint64_t size,
                          int was)
{
    if (!share_total || !size || share_done >= share_total)
        return 0;
    double whole = (double)(done > size ? size : done) / (double)size;
    double share = (double)share_done / (double)share_total;
    if (whole < FOCUS_FROM)
        return 0;
    return whole - share > (was ? FOCUS_OFF : FOCUS_ON);
}

static int focus_enabled(void)
{
    static int on = -1; /* read once; a setting for experiments */
    if (on < 0) {
        const char *e = getenv("OLLAMAX_SWARM_FOCUS");
        on = e && strcmp(e, "1") == 0;
    }
    return on;
}

static void focus_apply(swarm_t *s)
{
    uint64_t cap = 0;
    for (swarm_fetch_t *f = s->fetches; f; f = f->next)
        if (f->focused && (!cap || f->focus_cap < cap))
            cap = f->focus_cap;
    if (cap != s->throttle_cap && s->eng && s->ops->set_throttle &&
        s->ops->set_throttle(s->eng, cap) == 0)
        s->throttle_cap = cap;
}

static void focus_end(swarm_fetch_t *f)
{
    if (!f->focused)
        return;
    f->focused = 0;
    focus_apply(f->s);
}

static void focus_check(swarm_fetch_t *f)
{
    int live = focus_enabled() && f->stripe_count > 1 && f->n_peers && f->n_cofetchers &&
               !f->blocking && !f->block_over && f->tor;
    int lag = live && swarm__stripe_lagging(f->share_done, f->share_total, f->last_done, f->size,
                                            f->focused);
    if (lag == f->focused)
        return;
    if (!lag) {
        OX_INFO("swarm: %.19s: own share caught up (%zu of %zu pieces, %.1f of %.1f MB)",
                f->digest, f->share_done, f->share_total, (double)f->last_done / 1e6,
                (double)f->size / 1e6);
        focus_end(f);
        return;
    }
    uint64_t rate = f->tor->st.down_rate / 2;
    f->focus_cap = rate > FOCUS_MIN_CAP ? rate : FOCUS_MIN_CAP;
    f->focused = 1;
    f->s->stripe_focus++;
    OX_INFO("swarm: %.19s: own share lags (%zu of %zu pieces, %.1f of %.1f MB): co-fetchers "
            "capped at %.1f MB/s", f->digest, f->share_done, f->share_total,
            (double)f->last_done / 1e6, (double)f->size / 1e6, (double)f->focus_cap / 1e6);
    focus_apply(f->s);
}

void swarm__stripe_classify(swarm_t *s, const swarm_fetch_t *extra)
{
    if (!focus_enabled() || !s->eng || !s->ops->set_throttled)
        return;
    const char *ips[256];
    char store[256][64];
    size_t n = 0;
    for (const swarm_fetch_t *f = s->fetches;; f = f->next) {
        if (!f) {
            f = extra;
            extra = NULL;
            if (!f)
                break;
        }
        for (size_t i = 0; i < f->n_cofetchers && n < 256; i++) {
            int port, dup = 0;
            if (swarm_endpoint_parse(f->cofetchers[i], store[n], sizeof store[n], &port))
                continue;
            for (size_t j = 0; j < n && !dup; j++)
                dup = strcmp(ips[j], store[n]) == 0;
            if (!dup) {
                ips[n] = store[n];
                n++;
            }
        }
    }
    s->ops->set_throttled(s->eng, ips, n);
}

void swarm__fetch_set_blocking(swarm_fetch_t *f, int on)
{
    if (f->block_over || !on == !f->blocking)
        return;
    f->blocking = on;
    blocks_apply(f->s);
    if (!on)
        for (size_t i = 0; i < f->n_peers; i++)
            swarm__fetch_connect(f, f->peers[i]);
}

void swarm__fetch_unblock(swarm_fetch_t *f)
{
    focus_end(f);
    f->block_over = 1;
    if (!f->blocking)
        return;
    f->blocking = 0;
    blocks_apply(f->s);
    /* the holders again, for what the co-fetchers could not give */
    for (size_t i = 0; i < f->n_peers; i++)
        swarm__fetch_connect(f, f->peers[i]);
}

void swarm__fetch_on_piece(swarm_fetch_t *f, int piece)
{
    f->last_progress_ns = ox_time_mono_ns();
    if (f->stripe_count < 2 || piece < 0 || piece % f->stripe_count != f->stripe_index)
        return;
    f->share_done++;
    if (f->share_total == 0 || f->share_done < f->share_total || f->blocking || f->block_over || f->n_peers == 0 ||
        f->n_cofetchers == 0 || f->state != FETCH_RUNNING || !f->tor)
        return;
    OX_INFO("swarm: %.19s: own share (%zu pieces) in after %.2f s with %.1f MB of %.1f, %d "
            "peers; holders blocked", f->digest, f->share_total,
            (double)(f->last_progress_ns - f->started_ns) / 1e9, (double)f->tor->st.done / 1e6,
            (double)f->size / 1e6, f->tor->st.peers);
    f->blocking = 1;
    f->s->stripe_blocks++;
    focus_end(f);
    blocks_apply(f->s);
    f->rescue_ns = 0; /* look for starved shares at the next tick */
}

void swarm__fetch_tick(swarm_t *s, int64_t now)
{
    for (swarm_fetch_t *f = s->fetches, *next; f; f = next) {
        next = f->next; /* a timed-out fetch leaves the list */
        if (f->state != FETCH_RUNNING || !f->tor)
            continue;
        if (now - f->last_progress_ns > (int64_t)s->cfg.idle_timeout_ms * 1000000) {
            /* every holder gone: end it so the caller can try elsewhere
             * (staged data stays for a later resume) */
            OX_WARN("swarm: %s: no progress for %d ms, giving up", f->digest,
                    s->cfg.idle_timeout_ms);
            swarm__fetch_fail(f, OX_ETIMEOUT, "no progress from any peer");
            continue;
        }
        focus_check(f);
        swarm__rescue_tick(f, now);
        if (f->blocking && now - f->last_progress_ns > (int64_t)SWARM_STALL_MS * 1000000) {
            OX_INFO("swarm: %s: no progress for %d ms with holders blocked, unblocking",
                    f->digest, SWARM_STALL_MS);
            s->stripe_stalls++;
            swarm__fetch_unblock(f);
        }
        size_t want = f->n_cofetchers + (f->blocking ? 0 : f->n_peers);
        if (f->tor->st.peers >= (int)want || now - f->last_connect_ns < (int64_t)RECONNECT_MS * 1000000)
            continue;
        f->last_connect_ns = now;
        for (size_t i = 0; i < f->n_cofetchers; i++)
            swarm__fetch_connect(f, f->cofetchers[i]);
        if (!f->blocking)
            for (size_t i = 0; i < f->n_peers; i++)
                swarm__fetch_connect(f, f->peers[i]);
    }
}
