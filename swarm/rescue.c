/* Rescue of a starved share (striping, DESIGN 6). Each fetcher takes its
 * own share of the pieces from the holders, which assumes the holders'
 * upload splits evenly among the fetchers. On shared links it does not:
 * TCP flows through one queue are unfair, and in the fan-out bench one
 * fetcher in most runs got almost none of its share for 8-10 s while the
 * other seven completed theirs; everyone then waited for that share, first
 * from the holder, then relayed by its owner alone (the tail took 4-6 s).
 *
 * So once its own share is in, a fetcher looks at what its peers have
 * (engine piece availability, in the work pool, every 0.4 s). A piece that
 * no connected peer but the seeds has is an orphan: it has not left the
 * holders yet. The fetchers that are done help at once: a share's orphans
 * but its first few are dealt round-robin over the other fetchers (helpers
 * never take the same piece); each fetches its own with ranged GETs from a
 * holder (rescue_get.c), or, where it cannot, takes them at top priority and
 * draws from the holders again until they are in. The owner takes its share
 * a quarter at a time from the front, so it meets the helpers late if at
 * all; a piece both asked for leaves the holder twice, which costs less than
 * the wait. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "swarm/swarm_int.h"

#define RESCUE_EVERY_MS 400
/* The front of a lagging share left to its owner: about what it has asked
 * the holder for already (64 blocks in flight per peer: 4 pieces of 256
 * KiB). A helper takes the rest of the share's orphans, from the back. Why
 * not wait for the share to stall, or take less: the owner's link is full of
 * its co-fetchers' traffic, so the holder's flow to it gets about an eighth
 * of that link however idle the holder is; only more flows from the holder
 * (the helpers') put the holder's upload to use. */
#define RESCUE_RESERVE 4

struct swarm_rescue_req {
    uv_work_t w;
    swarm_t *s;
    swarm_fetch_t *f; /* NULL once the fetch ended */
    void *eng;
    uint8_t ih[32];
    int *avail;
    size_t n;
    int seeds, got;
};

int swarm__rescue_helper(int piece, int count)
{
    if (count < 2 || piece < 0)
        return -1;
    int owner = piece % count;
    int r = (piece / count) % (count - 1);
    return r < owner ? r : r + 1;
}

static int has_piece(const swarm_fetch_t *f, size_t p)
{
    return f->have && (f->have[p / 8] >> (p % 8) & 1);
}

void swarm__rescue_plan(swarm_fetch_t *f, const int *avail, size_t n, int seeds, size_t *orphans,
                        int *out, size_t *n_out)
{
    *n_out = 0;
    int k = f->stripe_count;
    if (k < 2 || !f->have || n != f->n_pieces)
        return;
    memset(orphans, 0, (size_t)k * sizeof *orphans);
    for (size_t p = 0; p < n; p++)
        if (avail[p] <= seeds && !has_piece(f, p))
            orphans[p % (size_t)k]++;
    for (int owner = 0; owner < k; owner++) {
        if (owner == f->stripe_index || orphans[owner] <= RESCUE_RESERVE)
            continue;
        /* the share's orphans but its first few, walked from its end: the
         * owner takes its share front first (prio 7 then 6) */
        size_t take = orphans[owner] - RESCUE_RESERVE, seen = 0;
        size_t cnt = (n - (size_t)owner + (size_t)k - 1) / (size_t)k;
        for (size_t j = cnt; j-- > 0 && seen < take;) {
            size_t p = (size_t)owner + j * (size_t)k;
            if (avail[p] > seeds || has_piece(f, p))
                continue;
            seen++;
            if (swarm__rescue_helper((int)p, k) == f->stripe_index)
                out[(*n_out)++] = (int)p;
        }
    }
}

/* Holders drawn from (on) or blocked again (off) for a rescue. */
static void rescue_holders(swarm_fetch_t *f, int on)
{
    if (on == f->rescuing)
        return;
    f->rescuing = on;
    swarm__fetch_set_blocking(f, !on);
}

static void on_avail_work(uv_work_t *w)
{
    swarm_rescue_req_t *r = w->data;
    r->got = r->s->ops->piece_avail(r->eng, r->ih, r->avail, r->n, &r->seeds);
}

static void on_avail_done(uv_work_t *w, int status)
{
    swarm_rescue_req_t *r = w->data;
    swarm_t *s = r->s;
    swarm_fetch_t *f = r->f;
    s->pending_work--;
    if (f)
        f->rescue_req = NULL;
    int *want = NULL;
    size_t n_want = 0;
    if (f && !status && r->got == (int)r->n && f->state == FETCH_RUNNING && f->tor &&
        f->orphans && (want = malloc(r->n * sizeof *want)) != NULL) {
        swarm__rescue_plan(f, r->avail, r->n, r->seeds, f->orphans, want, &n_want);
    }
    if (f && f->state == FETCH_RUNNING && f->tor && f->rescued) {
        size_t fresh = 0;
        for (size_t i = 0; i < n_want; i++) {
            size_t p = (size_t)want[i];
            if (!(f->rescued[p / 8] >> (p % 8) & 1)) {
                f->rescued[p / 8] |= (uint8_t)(1u << (p % 8));
                want[fresh++] = want[i];
            }
        }
        if (fresh) {
            int got = swarm__rescue_get(f, want, fresh) == 0;
            if (!got)
                s->ops->set_piece_prio(s->eng, f->tor->ih, want, fresh, 7);
            s->stripe_rescued += fresh;
            OX_INFO("swarm: %.19s: rescuing %zu pieces of a starved share from the holders%s",
                    f->digest, fresh, got ? " by ranged GETs" : "");
        }
        /* kept for the GETs still queued: a piece a peer got meanwhile is
         * dropped from the queue */
        int *prev = f->avail;
        f->avail = r->avail;
        f->avail_seeds = r->seeds;
        r->avail = prev;
        /* without GETs, the holders stay open while an orphan of ours is
         * still missing */
        rescue_holders(f, n_want > 0 && !swarm__rescue_get_usable(f));
    }
    free(want);
    free(r->avail);
    free(r);
    swarm__maybe_finish_close(s);
}

void swarm__rescue_tick(swarm_fetch_t *f, int64_t now)
{
    swarm_t *s = f->s;
    if (f->stripe_count < 2 || f->state != FETCH_RUNNING || !f->tor || !f->have ||
        f->rescue_req || f->block_over || f->share_done < f->share_total || !f->n_peers ||
        !f->n_cofetchers || !s->ops->piece_avail || !s->ops->set_piece_prio || s->closing ||
        now - f->rescue_ns < (int64_t)RESCUE_EVERY_MS * 1000000)
        return;
    if (!f->rescued && !(f->rescued = calloc(((size_t)f->n_pieces + 7) / 8, 1)))
        return;
    if (!f->orphans && !(f->orphans = calloc((size_t)f->stripe_count, sizeof *f->orphans)))
        return;
    swarm_rescue_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->avail = malloc((size_t)f->n_pieces * sizeof *r->avail);
    if (!r->avail) {
        free(r);
        return;
    }
    r->w.data = r;
    r->s = s;
    r->f = f;
    r->eng = s->eng;
    memcpy(r->ih, f->tor->ih, 32);
    r->n = f->n_pieces;
    if (uv_queue_work(s->loop, &r->w, on_avail_work, on_avail_done) != 0) {
        free(r->avail);
        free(r);
        return;
    }
    f->rescue_ns = now;
    f->rescue_req = r;
    s->pending_work++;
}

void swarm__rescue_end(swarm_fetch_t *f)
{
    if (f->rescue_req) {
        f->rescue_req->f = NULL;
        f->rescue_req = NULL;
    }
    f->rescuing = 0;
    swarm__rescue_get_end(f);
    free(f->rescued);
    f->rescued = NULL;
    free(f->orphans);
    f->orphans = NULL;
    free(f->avail);
    f->avail = NULL;
}
