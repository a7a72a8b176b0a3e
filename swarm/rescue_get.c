/* Rescued pieces by ranged GETs (rescue.c says why pieces are rescued).
 *
 * A helper that drew a rescued piece through the engine had to unblock the
 * holders, and the engine then asked them for other pieces too (keeping
 * those requests off altogether took the origin of the fan-out bench from
 * 1.09-1.16 copies to 1.04-1.08, but stalled the helper). A GET of the
 * piece's bytes from a holder's registry endpoint takes exactly the piece;
 * the engine checks it like one from a peer (add_piece), so a holder that
 * serves bad bytes costs a hash failure, never a bad blob. With the GETs
 * (and the owner taking its share by quarters) the bench's eight receivers
 * were done in 13.4-13.9 s where they had taken 14.0-14.3 s the same hour.
 *
 * At most RESCUE_GETS per fetch in flight, spread over the holders; after
 * RESCUE_GET_FAILURES failed GETs the fetch goes back to unblocking the
 * holders for its rescues. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "swarm/swarm_int.h"

#define RESCUE_GETS 4
#define RESCUE_GET_FAILURES 3

struct swarm_rescue_get {
    struct swarm_rescue_get *next;
    swarm_fetch_t *f; /* NULL once the fetch dropped it */
    curluv_req_t *req;
    int piece;
    uint8_t *buf;
    size_t len, got;
};

int swarm__rescue_get_usable(const swarm_fetch_t *f)
{
    return f->n_holder_apis && !f->gets_off && f->piece_len && f->s->ops->add_piece &&
           !f->s->closing;
}

static void unmark(swarm_fetch_t *f, int piece)
{
    if (f->rescued)
        f->rescued[piece / 8] &= (uint8_t)~(1u << (piece % 8));
}

static void get_pump(swarm_fetch_t *f);

/* As far as the last look tells: a piece waits in the queue for a second
 * or more (a few GETs in flight, a few tenths of a second each), and one
 * its owner got meanwhile was fetched twice from the holder in the fan-out
 * bench. */
static int still_orphan(const swarm_fetch_t *f, int piece)
{
    if (f->have && (f->have[piece / 8] >> (piece % 8) & 1))
        return 0;
    return !f->avail || (uint32_t)piece >= f->n_pieces || f->avail[piece] <= f->avail_seeds;
}

/* No more GETs for f: what waits for one is up for the engine's way. */
static void gets_stop(swarm_fetch_t *f, const char *why)
{
    if (!f->gets_off)
        OX_INFO("swarm: %.19s: %s; unblocking the holders for rescues instead", f->digest, why);
    f->gets_off = 1;
    while (f->n_queue)
        unmark(f, f->get_queue[--f->n_queue]);
}

static void get_failed(swarm_fetch_t *f, int piece, const char *why)
{
    OX_DEBUG("swarm: %.19s: rescue GET of piece %d failed: %s", f->digest, piece, why);
    unmark(f, piece);
    if (++f->get_failures >= RESCUE_GET_FAILURES)
        gets_stop(f, "rescue GETs keep failing");
}

void swarm__rescue_get_checked(swarm_fetch_t *f, int piece, int ok)
{
    if (!f->handed || piece < 0 || (uint32_t)piece >= f->n_pieces ||
        !(f->handed[piece / 8] >> (piece % 8) & 1))
        return;
    f->handed[piece / 8] &= (uint8_t)~(1u << (piece % 8));
    if (!ok)
        get_failed(f, piece, "bad data (piece hash)");
}

static int on_get_data(curluv_req_t *r, const void *p, size_t n, void *ud)
{
    struct swarm_rescue_get *g = ud;
    if (curluv_req_status(r) != 206 || n > g->len - g->got)
        return OX_EFORMAT; /* not the range asked for */
    memcpy(g->buf + g->got, p, n);
    g->got += n;
    return 0;
}

static void on_get_done(curluv_req_t *r, int result, void *ud)
{
    struct swarm_rescue_get *g = ud;
    swarm_fetch_t *f = g->f;
    if (f) {
        for (struct swarm_rescue_get **pp = &f->gets; *pp; pp = &(*pp)->next)
            if (*pp == g) {
                *pp = g->next;
                break;
            }
        f->n_gets--;
        swarm_t *s = f->s;
        int ok = result == 0 && curluv_req_status(r) == 206 && g->got == g->len && f->tor &&
                 s->eng &&
                 s->ops->add_piece(s->eng, f->tor->ih, g->piece, g->buf, (size_t)f->piece_len) == 0;
        if (ok && f->handed)
            f->handed[g->piece / 8] |= (uint8_t)(1u << (g->piece % 8));
        if (!ok)
            get_failed(f, g->piece, result ? ox_strerror(result) : "short or not a range");
        get_pump(f);
    }
    free(g->buf);
    free(g);
}

static void get_pump(swarm_fetch_t *f)
{
    swarm_t *s = f->s;
    while (f->n_queue && f->n_gets < RESCUE_GETS && swarm__rescue_get_usable(f)) {
        if (!s->cu && curluv_new(s->loop, &s->cu) != 0) {
            s->cu = NULL;
            gets_stop(f, "no HTTP client");
            break;
        }
        int piece = f->get_queue[0];
        memmove(f->get_queue, f->get_queue + 1, --f->n_queue * sizeof *f->get_queue);
        uint64_t off = (uint64_t)piece * f->piece_len;
        if (still_orphan(f, piece) == 0) {
            unmark(f, piece); /* a peer has it now, or we do; should it be
                               * an orphan again, a later look takes it */
            continue;
        }
        struct swarm_rescue_get *g = calloc(1, sizeof *g);
        if (off >= f->size || !g) {
            free(g);
            unmark(f, piece);
            continue;
        }
        g->f = f;
        g->piece = piece;
        g->len = (size_t)(f->size - off < f->piece_len ? f->size - off : f->piece_len);
        /* a whole piece: the engine reads that much, and the last piece's
         * tail past the file's end is zeros (padding) */
        g->buf = calloc(1, (size_t)f->piece_len);
        char url[600], range[64];
        snprintf(url, sizeof url, "http://%s/v2/ollamax/rescue/blobs/%s",
                 f->holder_apis[f->gets_sent++ % f->n_holder_apis], f->digest);
        snprintf(range, sizeof range, "%llu-%llu", (unsigned long long)off,
                 (unsigned long long)(off + g->len - 1));
        curluv_opts_t o = {.url = url,
                           .range = range,
                           .connect_timeout_ms = 2000,
                           .timeout_ms = 60000,
                           .stall_timeout_ms = 10000,
                           .on_data = on_get_data,
                           .on_done = on_get_done,
                           .ud = g};
        if (!g->buf || curluv_start(s->cu, &o, &g->req) != 0) {
            free(g->buf);
            free(g);
            unmark(f, piece);
            gets_stop(f, "out of memory for a GET"); /* the engine's way needs none */
            break;
        }
        g->next = f->gets;
        f->gets = g;
        f->n_gets++;
    }
}

int swarm__rescue_get(swarm_fetch_t *f, const int *pieces, size_t n)
{
    if (!swarm__rescue_get_usable(f))
        return OX_EUNSUPPORTED;
    if (!f->get_queue && !(f->get_queue = malloc((size_t)f->n_pieces * sizeof *f->get_queue)))
        return OX_EUNSUPPORTED;
    if (!f->handed && !(f->handed = calloc(((size_t)f->n_pieces + 7) / 8, 1)))
        return OX_EUNSUPPORTED;
    for (size_t i = 0; i < n && f->n_queue < f->n_pieces; i++)
        f->get_queue[f->n_queue++] = pieces[i];
    get_pump(f);
    return 0;
}

void swarm__rescue_get_end(swarm_fetch_t *f)
{
    for (struct swarm_rescue_get *g = f->gets; g; g = g->next) {
        g->f = NULL;
        curluv_req_cancel(g->req);
    }
    f->gets = NULL;
    f->n_gets = 0;
    free(f->get_queue);
    f->get_queue = NULL;
    f->n_queue = 0;
    free(f->handed);
    f->handed = NULL;
}

static void on_cu_closed(void *ud)
{
    swarm_t *s = ud;
    s->pending_work--;
    swarm__maybe_finish_close(s);
}

void swarm__rescue_get_close(swarm_t *s)
{
    if (!s->cu)
        return;
    curluv_t *cu = s->cu;
    s->cu = NULL;
    s->pending_work++;
    curluv_close(cu, on_cu_closed, s);
}
