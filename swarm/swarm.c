/* The swarm's policy: what to seed, how a fetch moves from the engine into
 * the store, when progress and resume data are asked for, and the lifecycle
 * of the engine on the loop. The engine (engine.h) only translates. */
#include "swarm/swarm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "swarm/merkle.h"
#include "swarm/swarm_int.h"
#include "swarm/torrent.h"

void swarm__check_thread(swarm_t *s)
{
    if (!uv_thread_equal(&s->loop_thread, &(uv_thread_t){uv_thread_self()}))
        s->thread_violations++;
}

/* ---- torrents ----------------------------------------------------------- */

swarm_tor_t *swarm__tor_by_ih(swarm_t *s, const uint8_t ih[32])
{
    for (swarm_tor_t *t = s->tors; t; t = t->next)
        if (t->state != TOR_PREPARING && memcmp(t->ih, ih, 32) == 0)
            return t;
    return NULL;
}

swarm_tor_t *swarm__tor_by_digest(swarm_t *s, const char *digest)
{
    for (swarm_tor_t *t = s->tors; t; t = t->next)
        if (strcmp(t->digest, digest) == 0)
            return t;
    return NULL;
}

swarm_tor_t *swarm__tor_new(swarm_t *s, const char *digest, int role, int state)
{
    swarm_tor_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    snprintf(t->digest, sizeof t->digest, "%s", digest);
    t->role = role;
    t->state = state;
    t->next = s->tors;
    s->tors = t;
    return t;
}

void swarm__tor_free(swarm_t *s, swarm_tor_t *t)
{
    for (swarm_tor_t **pp = &s->tors; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    s->retired_up += t->st.uploaded;
    s->retired_down += t->st.downloaded;
    free(t);
}

/* Frees t once out of the engine, and seeds its blob afresh when asked. */
static void tor_retire(swarm_t *s, swarm_tor_t *t)
{
    char digest[72];
    int reseed = t->reseed && !s->closing;
    snprintf(digest, sizeof digest, "%s", t->digest);
    swarm__tor_free(s, t);
    if (reseed)
        swarm_seed_blob(s, digest);
}

void swarm__tor_remove(swarm_t *s, swarm_tor_t *t)
{
    if (t->state == TOR_REMOVING)
        return;
    /* never reached the engine, or already gone (or the engine cannot take
     * it out): no REMOVED event will come, so finish here what it would */
    int rc = t->state == TOR_ACTIVE ? s->ops->remove(s->eng, t->ih) : 0;
    if (t->state == TOR_PREPARING || rc == OX_ENOTFOUND || rc == OX_ESTATE) {
        if (rc == OX_ESTATE)
            OX_WARN("swarm: engine could not remove %s", t->digest);
        swarm_fetch_t *f = t->fetch;
        t->fetch = NULL;
        tor_retire(s, t);
        if (f) {
            f->tor = NULL;
            swarm__fetch_on_removed(f);
        }
        return;
    }
    /* from ADDING the engine is asked once ADDED arrives */
    t->state = TOR_REMOVING;
}

/* tree: the whole merkle tree for the engine (n_tree nodes), or NULL to
 * have the engine check the file first. */
static int tor_add_seed(swarm_t *s, swarm_tor_t *t, const void *rec, size_t len,
                        const uint8_t *tree, size_t n_tree)
{
    swarm_add_t a = {.save_path = cas_blobs_dir(s->cas), .flags = SWARM_ADD_SEED};
    char err[256] = "";
    int rc = swarm__rec_parse(rec, len, t->ih, &a.torrent, &a.len);
    if (!rc && (s->cfg.verify_seeds || !tree))
        a.flags |= SWARM_ADD_VERIFY;
    else if (!rc) {
        a.tree = tree;
        a.n_tree = n_tree;
    }
    if (!rc)
        rc = s->ops->add(s->eng, &a, err, sizeof err);
    if (rc) {
        OX_WARN("swarm: cannot seed %s: %s %s", t->digest, ox_strerror(rc), err);
        swarm__tor_free(s, t);
        return rc;
    }
    t->state = TOR_ADDING;
    return 0;
}

/* ---- a seed's record and tree, read (or computed) in the work pool -------
 *
 * Why not on the loop: the tree of a 1 GiB blob is 2 MiB of leaves to read
 * from the index and 64 Ki hashes to build, 65-70 ms measured; run on the
 * loop right after an upload's commit, it held back that upload's reply. A
 * blob without a record (an adopted Ollama dir) is hashed here too. */

typedef struct record_req {
    uv_work_t w;
    swarm_t *s;
    char digest[72];
    int verify;
    int seed;         /* 0: only store the leaves */
    uint8_t *leaves;  /* from the commit, not stored yet; or NULL */
    size_t n_leaves;  /* leaves, 32 bytes each */
    ox_buf_t rec;
    uint8_t *tree;
    size_t n_tree;
    int rc;
} record_req_t;

static void on_record_work(uv_work_t *w)
{
    record_req_t *r = w->data;
    cas_t *c = r->s->cas;
    void *rec = NULL, *stored = NULL;
    size_t len = 0, n_stored = 0;
    int have_leaves = r->leaves != NULL;
    if (have_leaves &&
        cas_meta_put(c, SWARM_META_TREE, r->digest, r->leaves, r->n_leaves * 32) != 0)
        have_leaves = 0; /* the engine checks the file instead */
    if (!r->seed)
        return;
    r->rc = cas_meta_get(c, SWARM_META_KIND, r->digest, &rec, &len);
    if (r->rc == 0)
        r->rc = ox_buf_append(&r->rec, rec, len);
    else if (r->rc == OX_ENOTFOUND)
        r->rc = swarm__torrent_of_file(c, r->digest, &r->rec);
    free(rec);
    if (r->rc || r->verify)
        return;
    const uint8_t *leaves = r->leaves;
    size_t n = r->n_leaves;
    if (!have_leaves) {
        /* no tree (or a bad one): the engine checks the file instead */
        if (cas_meta_get(c, SWARM_META_TREE, r->digest, &stored, &n_stored) != 0 ||
            n_stored % 32) {
            free(stored);
            return;
        }
        leaves = stored;
        n = n_stored / 32;
    }
    if (merkle_tree_build(leaves, n, &r->tree, &r->n_tree) != 0)
        r->tree = NULL;
    free(stored);
}

static void on_record_done(uv_work_t *w, int status)
{
    record_req_t *r = w->data;
    swarm_t *s = r->s;
    s->pending_work--;
    swarm_tor_t *t = r->seed ? swarm__tor_by_digest(s, r->digest) : NULL;
    if (t && t->state == TOR_PREPARING) {
        if (status || r->rc || s->closing) {
            if (!s->closing)
                OX_WARN("swarm: no torrent for %s: %s", r->digest, ox_strerror(r->rc));
            swarm__tor_free(s, t);
        } else {
            tor_add_seed(s, t, r->rec.data, r->rec.len, r->tree, r->n_tree);
        }
    }
    ox_buf_free(&r->rec);
    free(r->tree);
    free(r->leaves);
    free(r);
    swarm__maybe_finish_close(s);
}

/* Seeds digest (parsed) unless it is seeded already; leaves (n_leaves of 32
 * bytes, taken in every case) are the tree from its commit, still to be
 * stored. */
static int seed_queue(swarm_t *s, const char *digest, uint8_t *leaves, size_t n_leaves)
{
    uint64_t size;
    int rc = 0, seed = !s->closing;
    swarm_tor_t *t = seed ? swarm__tor_by_digest(s, digest) : NULL;
    if (s->closing)
        rc = OX_ESTATE;
    else if (t && t->state != TOR_REMOVING)
        seed = 0;
    else if ((rc = cas_blob_stat(s->cas, digest, &size)) != 0 || size == 0)
        seed = 0; /* v2 has no torrent for an empty file; nothing to share */
    if (rc && !s->closing) {
        free(leaves); /* the blob is gone already */
        return rc;
    }
    if (!seed && !leaves)
        return rc;
    if (!seed && s->closing) {
        /* no more work queued: stored here */
        cas_meta_put(s->cas, SWARM_META_TREE, digest, leaves, n_leaves * 32);
        free(leaves);
        return rc;
    }
    t = NULL;
    if (seed && !(t = swarm__tor_new(s, digest, TOR_SEED, TOR_PREPARING))) {
        free(leaves);
        return OX_ENOMEM;
    }
    record_req_t *r = calloc(1, sizeof *r);
    if (!r) {
        if (t)
            swarm__tor_free(s, t);
        free(leaves);
        return OX_ENOMEM;
    }
    r->s = s;
    r->w.data = r;
    r->seed = seed;
    r->verify = s->cfg.verify_seeds != 0;
    r->leaves = leaves;
    r->n_leaves = n_leaves;
    snprintf(r->digest, sizeof r->digest, "%s", digest);
    if (uv_queue_work(s->loop, &r->w, on_record_work, on_record_done) != 0) {
        free(r->leaves);
        free(r);
        if (t)
            swarm__tor_free(s, t);
        return OX_EIO;
    }
    s->pending_work++;
    return rc;
}

int swarm_seed_blob(swarm_t *s, const char *digest_in)
{
    swarm__check_thread(s);
    char digest[72];
    if (s->closing)
        return OX_ESTATE;
    if (cas_digest_parse(digest_in, digest))
        return OX_EINVAL;
    return seed_queue(s, digest, NULL, 0);
}

int swarm_seed_all(swarm_t *s)
{
    swarm__check_thread(s);
    char (*d)[72] = NULL;
    size_t n = 0;
    int rc = cas_blob_list(s->cas, &d, &n);
    if (rc)
        return rc;
    int queued = 0;
    for (size_t i = 0; i < n; i++)
        if (swarm_seed_blob(s, d[i]) == 0)
            queued++;
    free(d);
    return queued;
}

int swarm_torrent_get(swarm_t *s, const char *digest_in, void **bytes, size_t *len)
{
    swarm__check_thread(s);
    char digest[72];
    if (cas_digest_parse(digest_in, digest))
        return OX_EINVAL;
    void *rec = NULL;
    size_t rlen = 0;
    int rc = cas_meta_get(s->cas, SWARM_META_KIND, digest, &rec, &rlen);
    if (rc == OX_ENOTFOUND) {
        uint64_t size;
        if (cas_blob_stat(s->cas, digest, &size) != 0)
            return OX_ENOTFOUND;
        swarm_seed_blob(s, digest); /* computes the record in the work pool */
        return size ? OX_EBUSY : OX_ENOTFOUND;
    }
    if (rc)
        return rc;
    uint8_t ih[32];
    const void *t;
    size_t tlen;
    rc = swarm__rec_parse(rec, rlen, ih, &t, &tlen);
    if (!rc && !(*bytes = malloc(tlen)))
        rc = OX_ENOMEM;
    if (!rc) {
        memcpy(*bytes, t, tlen);
        *len = tlen;
    }
    free(rec);
    return rc;
}

/* ---- engine events (loop thread) --------------------------------------- */

static void note_ban(swarm_t *s, const char *peer)
{
    for (size_t i = 0; i < s->n_banned; i++)
        if (strcmp(s->banned[i], peer) == 0)
            return;
    void *p = realloc(s->banned, (s->n_banned + 1) * sizeof *s->banned);
    if (!p)
        return;
    s->banned = p;
    snprintf(s->banned[s->n_banned++], sizeof *s->banned, "%s", peer);
}

static void on_engine_event(void *ud, const swarm_ev_t *ev)
{
    swarm_t *s = ud;
    swarm__check_thread(s);
    if (ev->type == SWARM_EV_LISTEN) {
        s->listen_port = ev->port;
        return;
    }
    if (ev->type == SWARM_EV_TOTALS) {
        s->total_up = ev->st.uploaded;
        s->total_down = ev->st.downloaded;
        s->have_totals = 1;
        return;
    }
    if (ev->type == SWARM_EV_LISTEN_FAILED) {
        OX_WARN("swarm: listen failed: %s", ev->msg);
        return;
    }
    swarm_tor_t *t = swarm__tor_by_ih(s, ev->ih);
    if (!t)
        return;
    swarm_fetch_t *f = t->fetch;
    switch (ev->type) {
    case SWARM_EV_ADDED:
        if (t->state == TOR_REMOVING) { /* removal asked while it was being added */
            if (s->ops->remove(s->eng, t->ih) == OX_ENOTFOUND)
                swarm__tor_free(s, t);
            return;
        }
        t->state = TOR_ACTIVE;
        if (ev->st.size)
            t->st.size = ev->st.size;
        if (f) {
            if (f->stripe_count > 1 && ev->piece > f->stripe_index)
                f->share_total = (size_t)(ev->piece - f->stripe_index - 1) /
                                     (size_t)f->stripe_count + 1;
            swarm__behind_on_added(f, ev->piece, (uint64_t)ev->len);
            swarm__fetch_on_added(f);
        } else {
            OX_DEBUG("swarm: seeding %s", t->digest);
            if (s->cfg.dht)
                s->ops->announce(s->eng, t->ih); /* found by fetchers now, not in 15 min */
        }
        break;
    case SWARM_EV_ADD_FAILED:
        OX_WARN("swarm: engine refused %s: %s", t->digest, ev->msg);
        if (f) {
            t->fetch = NULL;
            f->tor = NULL;
            swarm__fetch_fail(f, OX_EINVAL, ev->msg);
        }
        swarm__tor_free(s, t);
        break;
    case SWARM_EV_FINISHED:
        /* the event carries no counts: fresh ones (and the session's) land
         * before the commit's fsync and rename are through */
        s->ops->post_updates(s->eng);
        if (f && t->state == TOR_ACTIVE)
            swarm__fetch_on_finished(f);
        break;
    case SWARM_EV_REMOVED:
        if (t->state != TOR_REMOVING)
            return;
        if (f) {
            t->fetch = NULL;
            swarm__fetch_on_removed(f);
        }
        tor_retire(s, t);
        break;
    case SWARM_EV_HASH_FAILED:
        t->hash_failures++;
        s->hash_failures++;
        if (f)
            swarm__rescue_get_checked(f, ev->piece, 0);
        break;
    case SWARM_EV_PEER_BANNED:
        OX_WARN("swarm: banned %s (bad data for %s)", ev->peer, t->digest);
        note_ban(s, ev->peer);
        break;
    case SWARM_EV_RESUME_DATA:
        if (f)
            swarm__fetch_on_resume(f, ev->data, ev->len);
        break;
    case SWARM_EV_ERROR:
        OX_WARN("swarm: %s: %s", t->digest, ev->msg);
        if (f) {
            swarm__fetch_on_error(f, ev->msg);
        } else if (t->role == TOR_SEED) {
            /* the blob went away or is unreadable; a fetch's torrent that
             * became the seed may only have lost its file in the move to
             * blobs/: seeded once more from the store, as any blob */
            t->reseed = t->adopted;
            swarm__tor_remove(s, t);
        }
        break;
    case SWARM_EV_PIECE:
        if (f) {
            swarm__fetch_on_piece(f, ev->piece);
            swarm__behind_on_piece(f, ev->piece);
            swarm__rescue_get_checked(f, ev->piece, 1);
            swarm__fetch_on_piece_progress(f); /* last: its callback may cancel */
        }
        break;
    case SWARM_EV_STATE: {
        uint64_t size = t->st.size; /* updates carry no torrent file, so no size */
        t->st = ev->st;
        if (!t->st.size)
            t->st.size = size;
        if (t->st.size && t->st.done > t->st.size) /* v2 counts a tail pad */
            t->st.done = t->st.size;
        if (f)
            swarm__fetch_on_state(f, &t->st);
        break;
    }
    default:
        break;
    }
}

/* Engine threads: only wake the loop. */
static void on_engine_notify(void *ud)
{
    swarm_t *s = ud;
    if (atomic_load(&s->wake_ready))
        uv_async_send(&s->wake);
}

static void on_wake(uv_async_t *a)
{
    swarm_t *s = a->data;
    swarm__check_thread(s);
    if (s->eng)
        s->ops->poll(s->eng, on_engine_event, s);
    swarm_inbox_item_t *inbox = NULL;
    size_t n = 0;
    if (s->hub) {
        swarm__hub_drain(s->hub, &inbox, &n);
        for (size_t i = 0; i < n; i++) {
            char d[72];
            if (cas_digest_parse(inbox[i].digest, d) == 0)
                seed_queue(s, d, inbox[i].leaves, inbox[i].n_leaves);
            else
                free(inbox[i].leaves);
        }
        free(inbox);
    }
    swarm__forget_drain(s);
    swarm__fetch_run_finished(s);
}

static void on_timer(uv_timer_t *tm)
{
    swarm_t *s = tm->data;
    if (!s->eng || s->closing)
        return;
    s->ops->post_updates(s->eng);
    int64_t now = ox_time_mono_ns();
    swarm__fetch_tick(s, now);
    swarm__fetch_flush_behind(s);
    if (now - s->last_resume_ns >= (int64_t)s->cfg.resume_ms * 1000000) {
        s->last_resume_ns = now;
        for (swarm_fetch_t *f = s->fetches; f; f = f->next)
            if (f->state == FETCH_RUNNING && f->tor)
                s->ops->save_resume(s->eng, f->tor->ih);
    }
}

/* ---- peers --------------------------------------------------------------- */

int swarm_add_peer(swarm_t *s, const char *endpoint)
{
    swarm__check_thread(s);
    char ip[64];
    int port;
    if (swarm_endpoint_parse(endpoint, ip, sizeof ip, &port))
        return OX_EINVAL;
    for (size_t i = 0; i < s->n_peers; i++)
        if (strcmp(s->peers[i], endpoint) == 0)
            return 0;
    if (s->n_peers == s->cap_peers) {
        size_t cap = s->cap_peers ? s->cap_peers * 2 : 8;
        void *p = realloc(s->peers, cap * sizeof *s->peers);
        if (!p)
            return OX_ENOMEM;
        s->peers = p;
        s->cap_peers = cap;
    }
    snprintf(s->peers[s->n_peers++], sizeof *s->peers, "%s", endpoint);
    if (s->cfg.dht)
        s->ops->add_dht_node(s->eng, ip, port);
    for (swarm_fetch_t *f = s->fetches; f; f = f->next)
        swarm__fetch_connect(f, endpoint);
    return 0;
}

int swarm_set_rates(swarm_t *s, uint64_t max_upload, uint64_t max_download)
{
    swarm__check_thread(s);
    if (!s->eng)
        return OX_ESTATE;
    int rc = s->ops->set_rates(s->eng, max_upload, max_download);
    if (!rc) {
        s->cfg.max_upload = max_upload;
        s->cfg.max_download = max_download;
    }
    return rc;
}

int swarm_listen_port(const swarm_t *s)
{
    return s->listen_port;
}

char *swarm_status(swarm_t *s)
{
    swarm__check_thread(s);
    return swarm__status_json(s);
}

/* ---- lifecycle -------------------------------------------------------------- */

int swarm_new(uv_loop_t *loop, cas_t *cas, const swarm_config_t *cfg, swarm_t **out, char *err,
              size_t errlen)
{
    swarm_t *s = calloc(1, sizeof *s);
    if (!s)
        return OX_ENOMEM;
    s->loop = loop;
    s->cas = cas;
    if (cfg)
        s->cfg = *cfg;
    else
        swarm_config_init(&s->cfg);
    if (s->cfg.update_ms <= 0)
        s->cfg.update_ms = 500;
    if (s->cfg.resume_ms <= 0)
        s->cfg.resume_ms = 3000;
    if (s->cfg.idle_timeout_ms <= 0)
        s->cfg.idle_timeout_ms = SWARM_IDLE_TIMEOUT_MS;
    s->ops = &swarm_engine_libtorrent;
    s->loop_thread = uv_thread_self();
    atomic_init(&s->wake_ready, 0);
    swarm_engine_cfg_t ec = {
        .bind_ip = s->cfg.bind_ip,
        .port = s->cfg.port,
        .max_upload = s->cfg.max_upload,
        .max_download = s->cfg.max_download,
        .dht = s->cfg.dht,
    };
    /* the engine may notify at once: on_engine_notify waits for wake_ready */
    int rc = s->ops->open(&ec, on_engine_notify, s, &s->eng, err, errlen);
    if (rc) {
        free(s);
        return rc;
    }
    if (swarm__hub_new(cas, &s->wake, &s->hub) != 0 ||
        uv_async_init(loop, &s->wake, on_wake) != 0) {
        s->ops->reap(s->ops->shutdown(s->eng)); /* blocks: failure path only */
        if (s->hub)
            swarm__hub_detach(s->hub);
        free(s);
        if (err && errlen)
            snprintf(err, errlen, "swarm: cannot set up the loop wake-up");
        return OX_ENOMEM;
    }
    s->wake.data = s;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    s->handles_open = 2;
    atomic_store(&s->wake_ready, 1);
    uv_async_send(&s->wake); /* events that came before wake_ready */
    uv_timer_start(&s->timer, on_timer, (uint64_t)s->cfg.update_ms, (uint64_t)s->cfg.update_ms);
    s->last_resume_ns = ox_time_mono_ns();
    cas_set_tap(cas, &s->hub->tap);
    swarm__forget_attach(s);
    *out = s;
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    swarm_t *s = h->data;
    if (--s->handles_open > 0)
        return;
    swarm_close_cb cb = s->close_cb;
    void *ud = s->close_ud;
    swarm_tor_t *t = s->tors;
    while (t) {
        swarm_tor_t *next = t->next;
        free(t);
        t = next;
    }
    free(s->peers);
    free(s->banned);
    if (cb)
        cb(s, ud);
    free(s);
}

typedef struct reap_req {
    uv_work_t w;
    swarm_t *s;
    void *token;
} reap_req_t;

static void on_reap_work(uv_work_t *w)
{
    reap_req_t *r = w->data;
    r->s->ops->reap(r->token); /* joins the engine's threads */
}

static void on_reap_done(uv_work_t *w, int status)
{
    (void)status;
    reap_req_t *r = w->data;
    swarm_t *s = r->s;
    free(r);
    swarm__fetch_run_finished(s);
    uv_close((uv_handle_t *)&s->wake, on_handle_closed);
    uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}

void swarm__maybe_finish_close(swarm_t *s)
{
    if (!s->closing || !s->eng || s->pending_work > 0 || s->fetches)
        return;
    reap_req_t *r = calloc(1, sizeof *r);
    void *token = s->ops->shutdown(s->eng); /* no notify after this */
    s->eng = NULL;
    atomic_store(&s->wake_ready, 0);
    if (r) {
        r->s = s;
        r->token = token;
        r->w.data = r;
    }
    if (!r || uv_queue_work(s->loop, &r->w, on_reap_work, on_reap_done) != 0) {
        s->ops->reap(token); /* blocks the loop: only when memory is out */
        free(r);
        swarm__fetch_run_finished(s);
        uv_close((uv_handle_t *)&s->wake, on_handle_closed);
        uv_close((uv_handle_t *)&s->timer, on_handle_closed);
        return;
    }
}

void swarm_close(swarm_t *s, swarm_close_cb cb, void *ud)
{
    swarm__check_thread(s);
    if (s->closing)
        return;
    s->closing = 1;
    s->close_cb = cb;
    s->close_ud = ud;
    cas_set_tap(s->cas, NULL);
    swarm__forget_detach(s);
    swarm__hub_detach(s->hub);
    s->hub = NULL;
    uv_timer_stop(&s->timer);
    swarm_fetch_t *f = s->fetches;
    while (f) {
        swarm_fetch_t *next = f->next;
        swarm_fetch_cancel(f); /* adopting ones finish through their work */
        f = next;
    }
    swarm__rescue_get_close(s);
    swarm__maybe_finish_close(s);
}
