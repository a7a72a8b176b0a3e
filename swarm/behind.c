/* Hash-behind: a fetch hashes its staged file while it downloads, so that
 * its commit has only the tail left to read.
 *
 * The blob's sha256 runs over the file in order, and pieces arrive in any
 * order, so what can be hashed is the prefix of pieces that all passed
 * their piece hash: the engine's PIECE events of this run, which include
 * the pieces it finds on disk when a fetch resumes (so those are hashed
 * while the rest comes, not at the commit).
 * Whenever that prefix is a step ahead of what was hashed, one feed
 * (cas_adopt_feed) runs in the work pool; at most one per fetch, so the
 * commit waits for the one in flight and then runs cas_adopt_commit.
 *
 * Why: in the fan-out bench every receiver finishes within a second of the
 * others and then hashed the whole blob at once (0.5 s each with eight on
 * two cores); on loopback the commit of a 1 GiB fetch hashed for 0.9 s
 * after the last piece. A fetch with no co-fetchers downloads in order
 * (SWARM_ADD_INORDER) so its prefix is the whole of what it has.
 *
 * A feed holds the adoption while it runs (f->adopt is NULL meanwhile); a
 * fetch that ends during a feed leaves the adoption to the request, which
 * aborts it when done. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "swarm/swarm_int.h"

/* Less new prefix than this is not worth a work item. */
#define BEHIND_STEP (4u << 20)

struct swarm_behind_req {
    uv_work_t w;
    swarm_t *s;
    swarm_fetch_t *f; /* NULL once the fetch ended during the feed */
    cas_adopt_t *a;   /* NULL: begin it first */
    uint64_t from, upto; /* hashed before, and to be after */
    int rc;
    char path[4096];
    char err[256];
};

void swarm__behind_on_added(swarm_fetch_t *f, int n_pieces, uint64_t piece_len)
{
    if (n_pieces <= 0 || !piece_len || f->have)
        return;
    f->have = calloc(((size_t)n_pieces + 7) / 8, 1);
    if (!f->have)
        return; /* the commit then hashes everything */
    f->n_pieces = (uint32_t)n_pieces;
    f->piece_len = piece_len;
}

static void on_feed_work(uv_work_t *w)
{
    swarm_behind_req_t *r = w->data;
    if (!r->a)
        r->rc = cas_adopt_begin(r->s->cas, r->path, &r->a, r->err, sizeof r->err);
    if (!r->rc)
        r->rc = cas_adopt_feed(r->a, r->upto);
}

static void on_feed_done(uv_work_t *w, int status)
{
    swarm_behind_req_t *r = w->data;
    swarm_t *s = r->s;
    swarm_fetch_t *f = r->f;
    s->pending_work--;
    if (!f || status || r->rc) {
        /* ended meanwhile, or the file could not be read: the commit
         * (if any) starts over from the file */
        if (f && (status || r->rc))
            OX_DEBUG("swarm: %.19s: hashing behind stopped: %s", f->digest,
                     r->err[0] ? r->err : ox_strerror(status ? OX_EIO : r->rc));
        cas_adopt_abort(r->a);
        r->a = NULL;
        if (f) {
            f->behind_off = 1;
            f->behind = NULL;
        }
    } else {
        s->hashed_behind += cas_adopt_hashed(r->a) - r->from;
        f->adopt = r->a;
        f->behind = NULL;
    }
    free(r);
    if (f && f->behind_commit) {
        f->behind_commit = 0;
        swarm__fetch_commit_now(f);
    } else if (f) {
        swarm__behind_kick(f);
    }
    swarm__maybe_finish_close(s);
}

void swarm__behind_kick(swarm_fetch_t *f)
{
    if (!f->have || f->behind || f->behind_off || f->state != FETCH_RUNNING || f->s->closing)
        return;
    uint64_t upto = (uint64_t)f->prefix * f->piece_len;
    if (upto > f->size)
        upto = f->size;
    uint64_t hashed = f->adopt ? cas_adopt_hashed(f->adopt) : 0;
    if (upto <= hashed || upto - hashed < BEHIND_STEP)
        return;
    swarm_behind_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->w.data = r;
    r->s = f->s;
    r->f = f;
    r->a = f->adopt;
    r->from = hashed;
    r->upto = upto;
    snprintf(r->path, sizeof r->path, "%s", f->stage_file);
    if (uv_queue_work(f->s->loop, &r->w, on_feed_work, on_feed_done) != 0) {
        free(r);
        return;
    }
    f->adopt = NULL; /* the request's until it is done */
    f->behind = r;
    f->s->pending_work++;
}

void swarm__behind_on_piece(swarm_fetch_t *f, int piece)
{
    if (!f->have || piece < 0 || (uint32_t)piece >= f->n_pieces)
        return;
    uint8_t bit = (uint8_t)(1u << (piece % 8));
    if (!(f->have[piece / 8] & bit))
        f->pieces_in++;
    f->have[piece / 8] |= bit;
    while (f->prefix < f->n_pieces && (f->have[f->prefix / 8] >> (f->prefix % 8) & 1))
        f->prefix++;
    swarm__behind_kick(f);
}

int swarm__behind_wait(swarm_fetch_t *f)
{
    if (!f->behind)
        return 0;
    f->behind_commit = 1;
    return 1;
}

cas_adopt_t *swarm__behind_take(swarm_fetch_t *f)
{
    cas_adopt_t *a = f->adopt;
    f->adopt = NULL;
    return a;
}

void swarm__behind_end(swarm_fetch_t *f)
{
    if (f->behind) {
        f->behind->f = NULL; /* the request aborts the adoption */
        f->behind = NULL;
    }
    f->behind_commit = 0;
    if (f->adopt) {
        /* closes the file and the tap; a blocking call, but a short one:
         * nothing is read */
        cas_adopt_abort(f->adopt);
        f->adopt = NULL;
    }
    free(f->have);
    f->have = NULL;
}
