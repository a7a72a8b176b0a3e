/* Fetch lifecycle: engine download into <tmp>/swarm/<hex>/, then out of the
 * engine, then cas_blob_adopt (whole-file sha256) in the work pool, then
 * seeding from blobs/. Moves are checked against fetch_moves. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "swarm/swarm_int.h"

static const unsigned char fetch_moves[FETCH_STATE_COUNT][FETCH_STATE_COUNT] = {
    [FETCH_ADDING] = {[FETCH_RUNNING] = 1, [FETCH_DONE] = 1},
    [FETCH_RUNNING] = {[FETCH_RELEASING] = 1, [FETCH_DONE] = 1},
    [FETCH_RELEASING] = {[FETCH_ADOPTING] = 1, [FETCH_DONE] = 1},
    [FETCH_ADOPTING] = {[FETCH_DONE] = 1},
    [FETCH_DONE] = {0},
};

static const char *const fetch_state_names[FETCH_STATE_COUNT] = {
    "adding", "downloading", "releasing", "verifying", "done",
};

const char *swarm__fetch_state_name(int st)
{
    return st >= 0 && st < FETCH_STATE_COUNT ? fetch_state_names[st] : "?";
}

static int fetch_move(swarm_fetch_t *f, int to)
{
    if (!fetch_moves[f->state][to]) {
        OX_ERROR("swarm: fetch %s: bad move %s -> %s", f->digest,
                 swarm__fetch_state_name(f->state), swarm__fetch_state_name(to));
        return OX_ESTATE;
    }
    f->state = to;
    return 0;
}

static void fetch_unlink(swarm_t *s, swarm_fetch_t *f)
{
    for (swarm_fetch_t **pp = &s->fetches; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            return;
        }
    }
}

/* Ends a fetch with status; the done callback runs on the next wake so that
 * it never runs inside the caller's own call (libuv's rule). */
static void fetch_finish(swarm_fetch_t *f, int status, const char *msg)
{
    swarm_t *s = f->s;
    if (f->state == FETCH_DONE || fetch_move(f, FETCH_DONE))
        return;
    swarm__fetch_unblock(f);
    if (f->tor) {
        f->tor->fetch = NULL;
        swarm__tor_remove(s, f->tor);
        f->tor = NULL;
    }
    f->status = status;
    snprintf(f->msg, sizeof f->msg, "%s", msg ? msg : (status ? ox_strerror(status) : ""));
    fetch_unlink(s, f);
    f->next = s->finished;
    s->finished = f;
    uv_async_send(&s->wake);
}

void swarm__fetch_fail(swarm_fetch_t *f, int status, const char *msg)
{
    fetch_finish(f, status, msg);
}

void swarm__fetch_run_finished(swarm_t *s)
{
    while (s->finished) {
        /* oldest first */
        swarm_fetch_t **pp = &s->finished;
        while ((*pp)->next)
            pp = &(*pp)->next;
        swarm_fetch_t *f = *pp;
        *pp = NULL;
        if (f->done)
            f->done(f, f->status, f->msg, f->ud);
        free(f->peers);
        free(f->cofetchers);
        free(f);
    }
}

void swarm__fetch_connect(swarm_fetch_t *f, const char *endpoint)
{
    char ip[64];
    int port;
    if (!f->tor || f->tor->state != TOR_ACTIVE || swarm_endpoint_parse(endpoint, ip, sizeof ip, &port))
        return;
    f->s->ops->connect_peer(f->s->eng, f->tor->ih, ip, port);
}

void swarm__fetch_on_added(swarm_fetch_t *f)
{
    swarm_t *s = f->s;
    if (fetch_move(f, FETCH_RUNNING))
        return;
    f->last_progress_ns = f->last_connect_ns = ox_time_mono_ns();
    for (size_t i = 0; i < f->n_cofetchers; i++)
        swarm__fetch_connect(f, f->cofetchers[i]);
    for (size_t i = 0; i < f->n_peers; i++)
        swarm__fetch_connect(f, f->peers[i]);
    for (size_t i = 0; i < s->n_peers; i++)
        swarm__fetch_connect(f, s->peers[i]);
}

void swarm__fetch_on_state(swarm_fetch_t *f, const swarm_tstat_t *st)
{
    if (f->state != FETCH_RUNNING)
        return;
    if (st->checking) {
        /* the count means nothing yet while staged data is checked, and
         * that local work must not count as peers going silent */
        f->last_progress_ns = ox_time_mono_ns();
        return;
    }
    uint64_t done = st->done > f->size ? f->size : st->done;
    if (f->progressed && done == f->last_done)
        return;
    f->last_progress_ns = ox_time_mono_ns();
    f->progressed = 1;
    f->last_done = done;
    if (f->progress)
        f->progress(f, done, f->size, f->ud);
}

void swarm__fetch_on_resume(swarm_fetch_t *f, const void *data, size_t len)
{
    if (f->state != FETCH_RUNNING)
        return;
    /* small and periodic: written in place on the loop, without fsync (a
     * torn file only costs a re-check of the staged data on restart) */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->resume_path);
    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        return;
    int ok = fwrite(data, 1, len, fp) == len;
    ok = fclose(fp) == 0 && ok;
    if (!ok || rename(tmp, f->resume_path) != 0)
        unlink(tmp);
}

void swarm__fetch_on_finished(swarm_fetch_t *f)
{
    if (f->state != FETCH_RUNNING || fetch_move(f, FETCH_RELEASING))
        return;
    swarm__fetch_unblock(f);
    OX_INFO("swarm: %.19s: all pieces in after %.2f s", f->digest,
            (double)(ox_time_mono_ns() - f->started_ns) / 1e9);
    int report = f->last_done != f->size;
    f->last_done = f->size;
    if (f->progress && report)
        f->progress(f, f->size, f->size, f->ud);
    /* the callback may have cancelled the fetch (its client went away):
     * then fetch_finish already took the torrent out */
    if (f->state != FETCH_RELEASING || !f->tor)
        return;
    /* out of the engine first, so nothing writes the file while the store
     * hashes and renames it */
    swarm__tor_remove(f->s, f->tor);
}

typedef struct adopt_req {
    uv_work_t w;
    swarm_fetch_t *f;
    int rc;
    char err[256];
} adopt_req_t;

static void on_adopt_work(uv_work_t *w)
{
    adopt_req_t *r = w->data;
    swarm_fetch_t *f = r->f;
    /* the whole-file sha256 (and the tap's record) in one read */
    r->rc = cas_blob_adopt(f->s->cas, f->stage_file, f->digest, r->err, sizeof r->err);
}

static void on_adopt_done(uv_work_t *w, int status)
{
    adopt_req_t *r = w->data;
    swarm_fetch_t *f = r->f;
    swarm_t *s = f->s;
    s->pending_work--;
    int rc = status ? OX_EIO : r->rc;
    if (rc != OX_EIO) {
        /* committed, or rejected and deleted by the store: nothing to resume */
        unlink(f->resume_path);
        rmdir(f->stage_dir);
    }
    if (!rc && !s->closing)
        swarm_seed_blob(s, f->digest);
    if (rc)
        OX_WARN("swarm: %s not committed: %s", f->digest, r->err[0] ? r->err : ox_strerror(rc));
    fetch_finish(f, rc, rc ? (r->err[0] ? r->err : ox_strerror(rc)) : NULL);
    free(r);
    swarm__maybe_finish_close(s);
}

void swarm__fetch_on_removed(swarm_fetch_t *f)
{
    swarm_t *s = f->s;
    f->tor = NULL;
    if (f->state != FETCH_RELEASING)
        return;
    adopt_req_t *r = calloc(1, sizeof *r);
    if (!r) {
        fetch_finish(f, OX_ENOMEM, NULL);
        return;
    }
    r->f = f;
    r->w.data = r;
    if (fetch_move(f, FETCH_ADOPTING) || uv_queue_work(s->loop, &r->w, on_adopt_work, on_adopt_done)) {
        free(r);
        fetch_finish(f, OX_EIO, "cannot queue the commit");
        return;
    }
    s->pending_work++;
}

static void fetch_free(swarm_fetch_t *f)
{
    free(f->peers);
    free(f->cofetchers);
    free(f);
}

int swarm_fetch_start(swarm_t *s, const char *digest_in, const void *torrent, size_t len,
                      const char *const *peers, size_t n_peers, const swarm_fetch_opts_t *opts,
                      swarm_progress_cb progress, swarm_done_cb done, void *ud,
                      swarm_fetch_t **out)
{
    swarm__check_thread(s);
    char digest[72], ip[64], name[128], err[256] = "", want[80];
    uint8_t ih[32];
    uint64_t size = 0;
    int port, rc;
    if (s->closing)
        return OX_ESTATE;
    if (!torrent || !len || cas_digest_parse(digest_in, digest))
        return OX_EINVAL;
    if (cas_blob_stat(s->cas, digest, &size) == 0)
        return OX_EEXIST;
    if (swarm__tor_by_digest(s, digest))
        return OX_EBUSY;
    if (s->ops->inspect(torrent, len, ih, name, sizeof name, &size, err, sizeof err))
        return OX_EINVAL;
    snprintf(want, sizeof want, "sha256-%s", digest + 7);
    if (strcmp(name, want) != 0 || size == 0)
        return OX_EINVAL; /* a torrent of some other content */
    if (swarm__tor_by_ih(s, ih))
        return OX_EBUSY;
    for (size_t i = 0; i < n_peers; i++)
        if (!peers[i] || swarm_endpoint_parse(peers[i], ip, sizeof ip, &port))
            return OX_EINVAL;
    if (opts && opts->stripe_count > 1 &&
        (opts->stripe_index < 0 || opts->stripe_index >= opts->stripe_count))
        return OX_EINVAL;
    size_t n_co = opts && opts->cofetchers ? opts->n_cofetchers : 0;
    for (size_t i = 0; i < n_co; i++)
        if (!opts->cofetchers[i] ||
            swarm_endpoint_parse(opts->cofetchers[i], ip, sizeof ip, &port))
            return OX_EINVAL;

    swarm_fetch_t *f = calloc(1, sizeof *f);
    if (!f || (n_peers && !(f->peers = calloc(n_peers, sizeof *f->peers))) ||
        (n_co && !(f->cofetchers = calloc(n_co, sizeof *f->cofetchers)))) {
        if (f)
            fetch_free(f);
        return OX_ENOMEM;
    }
    for (size_t i = 0; i < n_peers; i++)
        snprintf(f->peers[i], sizeof f->peers[i], "%s", peers[i]);
    f->n_peers = n_peers;
    for (size_t i = 0; i < n_co; i++)
        snprintf(f->cofetchers[i], sizeof f->cofetchers[i], "%s", opts->cofetchers[i]);
    f->n_cofetchers = n_co;
    if (opts && opts->stripe_count > 1) {
        f->stripe_index = opts->stripe_index;
        f->stripe_count = opts->stripe_count;
    }
    f->s = s;
    f->size = size;
    f->progress = progress;
    f->done = done;
    f->ud = ud;
    f->state = FETCH_ADDING;
    f->started_ns = ox_time_mono_ns();
    snprintf(f->digest, sizeof f->digest, "%s", digest);
    if (snprintf(f->stage_dir, sizeof f->stage_dir, "%s/swarm/%s", cas_tmp_dir(s->cas),
                 digest + 7) >= (int)sizeof f->stage_dir) {
        fetch_free(f);
        return OX_ETOOBIG;
    }
    snprintf(f->stage_file, sizeof f->stage_file, "%s/%s", f->stage_dir, want);
    snprintf(f->resume_path, sizeof f->resume_path, "%s.resume", f->stage_dir);

    char *resume = NULL;
    size_t rlen = 0;
    rc = ox_fs_mkdir_p(f->stage_dir, 0755);
    if (!rc && ox_fs_read_all(f->resume_path, 16u << 20, &resume, &rlen) != 0)
        rlen = 0;
    swarm_tor_t *t = rc ? NULL : swarm__tor_new(s, digest, TOR_FETCH, TOR_ADDING);
    if (!rc && !t)
        rc = OX_ENOMEM;
    if (!rc)
    {
        swarm_add_t a = {.torrent = torrent, .len = len, .save_path = f->stage_dir,
                         .resume = resume, .rlen = rlen, .stripe_index = f->stripe_index,
                         .stripe_count = f->stripe_count};
        rc = s->ops->add(s->eng, &a, err, sizeof err);
    }
    free(resume);
    if (rc) {
        if (t)
            swarm__tor_free(s, t);
        fetch_free(f);
        return rc == OX_ENOMEM ? rc : OX_EINVAL;
    }
    memcpy(t->ih, ih, 32);
    t->fetch = f;
    t->st.size = size;
    f->tor = t;
    f->next = s->fetches;
    s->fetches = f;
    if (out)
        *out = f;
    return 0;
}

void swarm_fetch_cancel(swarm_fetch_t *f)
{
    if (!f || f->state == FETCH_DONE)
        return;
    swarm__check_thread(f->s);
    if (f->state == FETCH_ADOPTING)
        return; /* the commit is already running; its result is reported */
    fetch_finish(f, OX_ECANCELED, NULL);
}

const char *swarm_fetch_digest(const swarm_fetch_t *f)
{
    return f->digest;
}
