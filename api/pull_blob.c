/* Pull: one blob's resumable, parallel, ranged download.
 *
 * The partial file is flock'ed for the whole download so that two pulls of
 * the same blob (in this daemon or another process) never write it at once;
 * the loser retries until the winner has adopted the blob. Checkpoints run in
 * the work pool: fdatasync the partial, then atomically replace the sidecar
 * with the per-part counts taken before the sync. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/pull_int.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"

#define CKPT_BYTES (4u * 1024 * 1024)  /* checkpoint after this many new bytes */
#define CKPT_MS 1000                    /* ... or this long after the last one */
#define TICK_MS 60
#define LOCK_RETRY_MS 250
#define PART_TRIES 6
#define RETRY_BASE_MS 250   /* doubles with each failed attempt */

static void start_parts(pull_t *pl);
static void finish_blob(pull_t *pl);
static void checkpoint(pull_t *pl);

static const cas_layer_t *cur_blob(pull_t *pl) { return &pl->blobs[pl->cur]; }

static uint64_t completed_bytes(const pull_t *pl)
{
    uint64_t s = 0;
    for (size_t i = 0; i < pl->n_parts; i++)
        s += pl->parts[i].done;
    return s;
}

static int all_parts_done(const pull_t *pl)
{
    for (size_t i = 0; i < pl->n_parts; i++)
        if (pl->parts[i].done < pl->parts[i].len)
            return 0;
    return 1;
}

void pull_blob_release(pull_t *pl)
{
    for (size_t i = 0; pl->xfers && i < pl->n_parts; i++)
        if (pl->xfers[i].req)
            curluv_req_cancel(pl->xfers[i].req);
    if (pl->fd >= 0)
        close(pl->fd);
    pl->fd = -1;
    uv_timer_stop(&pl->tick);
    uv_timer_stop(&pl->wait);
}

static void on_tick(uv_timer_t *t)
{
    pull_t *pl = t->data;
    if (pl->finished || !pl->parts)
        return;
    /* slow links still record their progress every second */
    if (pl->unsynced > 0 && uv_now(pl->node->loop) - pl->last_ckpt_ms >= CKPT_MS)
        checkpoint(pl);
    uint64_t c = completed_bytes(pl);
    if (c != pl->last_completed) {
        pl->last_completed = c;
        pull_progress_line(pl, cur_blob(pl)->size, c);
    }
}

/* ---- checkpoints ----------------------------------------------------------- */

typedef struct ckpt_job {
    uv_work_t work;
    pull_t *pl;
    int fd;            /* dup of the partial fd: keeps the flock while we run */
    char path[1100];
    char *text;
    size_t len;
    int rc;
} ckpt_job_t;

static void on_ckpt_work(uv_work_t *w)
{
    ckpt_job_t *j = w->data;
    /* Data first, then the record of it: the sidecar never claims bytes
     * that a crash could lose. */
    if (fdatasync(j->fd) != 0)
        j->rc = OX_EIO;
    else
        j->rc = ox_fs_write_atomic(j->path, j->text, j->len);
}

static void do_adopt(pull_t *pl);

static void on_ckpt_done(uv_work_t *w, int status)
{
    (void)status;
    ckpt_job_t *j = w->data;
    pull_t *pl = j->pl;
    close(j->fd);
    if (j->rc)
        OX_WARN("pull: checkpoint %s: %s", j->path, ox_strerror(j->rc));
    free(j->text);
    free(j);
    pl->ckpt_running = 0;
    if (!pl->finished) {
        if (pl->ckpt_again) {
            pl->ckpt_again = 0;
            checkpoint(pl);
        } else if (pl->finishing_blob) {
            do_adopt(pl);
        }
    }
    pull_unref(pl);
}

static void checkpoint(pull_t *pl)
{
    if (pl->fd < 0)
        return;
    if (pl->ckpt_running) {
        pl->ckpt_again = 1;
        return;
    }
    ckpt_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return;  /* a later checkpoint will cover these bytes */
    j->pl = pl;
    j->work.data = j;
    snprintf(j->path, sizeof(j->path), "%s", pl->sidecar);
    j->text = pull_sidecar_format(cur_blob(pl)->digest, cur_blob(pl)->size, pl->parts,
                                  pl->n_parts, &j->len);
    j->fd = dup(pl->fd);
    if (!j->text || j->fd < 0) {
        if (j->fd >= 0)
            close(j->fd);
        free(j->text);
        free(j);
        return;
    }
    pl->unsynced = 0;
    pl->last_ckpt_ms = uv_now(pl->node->loop);
    pl->ckpt_running = 1;
    pull_ref(pl);
    if (uv_queue_work(pl->node->loop, &j->work, on_ckpt_work, on_ckpt_done) != 0) {
        pl->ckpt_running = 0;
        close(j->fd);
        free(j->text);
        free(j);
        pull_unref(pl);
    }
}

/* ---- adopting the finished file -------------------------------------------- */

typedef struct adopt_job {
    uv_work_t work;
    pull_t *pl;
    cas_t *cas;
    int fd;            /* dup: the lock outlives a cancelled pull */
    char partial[1024];
    char sidecar[1100];
    char digest[72];
    int rc;
    char err[512];
} adopt_job_t;

static void on_adopt_work(uv_work_t *w)
{
    adopt_job_t *j = w->data;
    j->rc = cas_blob_adopt(j->cas, j->partial, j->digest, j->err, sizeof(j->err));
    if (j->rc == 0 || j->rc == OX_EDIGEST) {
        /* The partial is gone (adopted or rejected): its record goes too. */
        unlink(j->sidecar);
        if (j->rc == OX_EDIGEST)
            unlink(j->partial);
    }
}

static void on_adopt_done(uv_work_t *w, int status)
{
    adopt_job_t *j = w->data;
    pull_t *pl = j->pl;
    close(j->fd);
    if (!pl->finished) {
        if (status != 0) {
            pull_fail(pl, "verifying %s: cannot queue work", j->digest);
        } else if (j->rc == OX_EDIGEST) {
            pull_fail(pl, "%s", j->err[0] ? j->err : "digest mismatch");
        } else if (j->rc != 0) {
            pull_fail(pl, "verifying %s: %s", j->digest, j->err[0] ? j->err : ox_strerror(j->rc));
        } else {
            pull_blob_release(pl);
            pull_next_blob(pl);
        }
    }
    free(j);
    pull_unref(pl);
}

static void do_adopt(pull_t *pl)
{
    pl->finishing_blob = 0;
    adopt_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        pull_fail(pl, "%s", ox_strerror(OX_ENOMEM));
        return;
    }
    j->pl = pl;
    j->cas = pl->node->cas;
    j->work.data = j;
    j->fd = dup(pl->fd);
    snprintf(j->partial, sizeof(j->partial), "%s", pl->partial);
    snprintf(j->sidecar, sizeof(j->sidecar), "%s", pl->sidecar);
    snprintf(j->digest, sizeof(j->digest), "%s", cur_blob(pl)->digest);
    pull_ref(pl);
    if (uv_queue_work(pl->node->loop, &j->work, on_adopt_work, on_adopt_done) != 0) {
        if (j->fd >= 0)
            close(j->fd);
        free(j);
        pull_unref(pl);
        pull_fail(pl, "verifying: cannot queue work");
    }
}

static void finish_blob(pull_t *pl)
{
    uv_timer_stop(&pl->tick);
    uint64_t total = cur_blob(pl)->size;
    if (!pl->reported || pl->last_completed != total)
        pull_progress_line(pl, total, total);
    pl->reported = 1;
    pl->last_completed = total;
    if (pl->ckpt_running)
        pl->finishing_blob = 1;  /* a stale sidecar must not outlive the adopt */
    else
        do_adopt(pl);
}

/* ---- parts ----------------------------------------------------------------- */

static int on_part_data(curluv_req_t *r, const void *p, size_t n, void *ud)
{
    pull_xfer_t *x = ud;
    pull_t *pl = x->pl;
    pull_part_t *part = &pl->parts[x->part];
    if (pl->finished || pl->fd < 0)
        return OX_ECANCELED;
    if (!x->checked) {
        long st = curluv_req_status(r);
        int whole = part->start + part->done == 0 && part->len == cur_blob(pl)->size;
        if (!(st == 206 || (st == 200 && whole)))
            return OX_EFORMAT;
        x->checked = 1;
    }
    if (n > part->len - part->done)
        return OX_ETOOBIG;
    const char *c = p;
    size_t left = n;
    while (left > 0) {
        ssize_t w = pwrite(pl->fd, c, left, (off_t)(part->start + part->done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return OX_EIO;
        c += w;
        left -= (size_t)w;
        part->done += (uint64_t)w;
    }
    pl->unsynced += n;
    if (pl->unsynced >= CKPT_BYTES)
        checkpoint(pl);
    return 0;
}

static void start_part(pull_t *pl, size_t idx);
static void arm_retry(pull_t *pl);

/* Starts the parts whose retry time has come and re-arms for the rest. */
static void on_retry(uv_timer_t *t)
{
    pull_t *pl = t->data;
    if (pl->finished || pl->fd < 0)
        return;
    uint64_t now = uv_now(pl->node->loop);
    for (size_t i = 0; i < pl->n_parts && !pl->finished; i++) {
        pull_xfer_t *x = &pl->xfers[i];
        if (x->retry_pending && x->retry_at <= now) {
            x->retry_pending = 0;
            start_part(pl, i);
        }
    }
    if (!pl->finished)
        arm_retry(pl);
}

static void arm_retry(pull_t *pl)
{
    uint64_t next = 0;
    for (size_t i = 0; i < pl->n_parts; i++)
        if (pl->xfers[i].retry_pending && (!next || pl->xfers[i].retry_at < next))
            next = pl->xfers[i].retry_at;
    if (!next)
        return;
    uint64_t now = uv_now(pl->node->loop);
    uv_timer_start(&pl->wait, on_retry, next > now ? next - now : 0, 0);
}

static void on_part_done(curluv_req_t *r, int result, void *ud)
{
    pull_xfer_t *x = ud;
    pull_t *pl = x->pl;
    pull_part_t *part = &pl->parts[x->part];
    x->req = NULL;
    pl->running--;
    if (pl->finished || pl->fd < 0)
        return;
    long st = curluv_req_status(r);
    int server_busy = st >= 500 || st == 429;
    if (part->done == part->len) {
        checkpoint(pl);
    } else if (result == OX_ETOOBIG) {
        /* on_part_data refused bytes past the range: the blob is bigger
         * than the manifest says, and no retry can fix that */
        pull_fail(pl, "pull model blob %.19s: registry sent more than the %" PRIu64
                  " bytes the manifest lists",
                  cur_blob(pl)->digest, cur_blob(pl)->size);
        return;
    } else if (result == OX_EFORMAT && st / 100 == 2) {
        pull_fail(pl, "pull model blob %.19s: unexpected %ld %s answer to a range request "
                  "(the manifest lists %" PRIu64 " bytes)",
                  cur_blob(pl)->digest, st, http_status_text((int)st), cur_blob(pl)->size);
        return;
    } else if (!server_busy && (result == OX_EFORMAT || (result == 0 && st >= 400))) {
        pull_fail(pl, "pull model blob %.19s: %ld %s", cur_blob(pl)->digest, st,
                  http_status_text((int)st));
        return;
    } else if (result == OX_EIO) {
        pull_fail(pl, "writing %s: %s", pl->partial, ox_strerror(result));
        return;
    } else {
        /* transport error, short body or a busy server: try again later,
         * from where the part stopped */
        if (part->done > x->done_at_start)
            x->tries = 0;
        const char *why = server_busy ? http_status_text((int)st)
                          : *curluv_req_error(r) ? curluv_req_error(r)
                                                 : "short body";
        if (++x->tries >= PART_TRIES) {
            pull_fail(pl, "download %.19s: %s", cur_blob(pl)->digest, why);
            return;
        }
        OX_INFO("pull: part %zu of %.19s interrupted (%s), retrying", x->part,
                cur_blob(pl)->digest, why);
        x->retry_pending = 1;
        x->retry_at = uv_now(pl->node->loop) + ((uint64_t)RETRY_BASE_MS << (x->tries - 1));
        arm_retry(pl);
        return;
    }
    if (all_parts_done(pl)) {
        if (pl->running == 0)
            finish_blob(pl);
        return;
    }
    start_parts(pl);
}

static void start_part(pull_t *pl, size_t idx)
{
    pull_xfer_t *x = &pl->xfers[idx];
    pull_part_t *part = &pl->parts[idx];
    char range[64];
    snprintf(range, sizeof(range), "%" PRIu64 "-%" PRIu64, part->start + part->done,
             part->start + part->len - 1);
    x->pl = pl;
    x->part = idx;
    x->checked = 0;
    x->done_at_start = part->done;
    /* OLLAMAX_MAX_DOWNLOAD caps the pull as a whole: share it among the
     * parts that can run at once. */
    uint64_t cap = pl->node->cfg.max_download;
    if (cap > 0) {
        size_t left = 0;
        for (size_t i = 0; i < pl->n_parts; i++)
            left += pl->parts[i].done < pl->parts[i].len;
        if (left > PULL_MAX_PARALLEL)
            left = PULL_MAX_PARALLEL;
        cap /= left ? left : 1;
        if (cap == 0)
            cap = 1;
    }
    curluv_opts_t o = {.url = pl->blob_url,
                       .headers = pull_headers(pl, pl->blob_url_same_host, NULL),
                       .max_recv_bps = cap,
                       .range = range,
                       .follow_redirects = 1,
                       .on_data = on_part_data,
                       .on_done = on_part_done,
                       .ud = x};
    int rc = curluv_start(pl->cu, &o, &x->req);
    if (rc) {
        x->req = NULL;
        pull_fail(pl, "download: %s", ox_strerror(rc));
        return;
    }
    pl->running++;
}

static void start_parts(pull_t *pl)
{
    for (size_t i = 0; i < pl->n_parts && pl->running < PULL_MAX_PARALLEL && !pl->finished; i++)
        if (pl->parts[i].done < pl->parts[i].len && !pl->xfers[i].req &&
            !pl->xfers[i].retry_pending)
            start_part(pl, i);
}

/* ---- locating the blob ------------------------------------------------------ */

static int same_origin(const char *a, const char *b)
{
    const char *ea = strstr(a, "://"), *eb = strstr(b, "://");
    if (!ea || !eb)
        return 0;
    ea = strchr(ea + 3, '/');
    eb = strchr(eb + 3, '/');
    size_t la = ea ? (size_t)(ea - a) : strlen(a);
    size_t lb = eb ? (size_t)(eb - b) : strlen(b);
    return la == lb && strncasecmp(a, b, la) == 0;
}


static void begin_download(pull_t *pl)
{
    pl->blob_url_same_host = same_origin(pl->blob_url, pl->base);
    pl->last_completed = completed_bytes(pl);
    pull_progress_line(pl, cur_blob(pl)->size, pl->last_completed);
    pl->reported = 1;
    uv_timer_start(&pl->tick, on_tick, TICK_MS, TICK_MS);
    start_parts(pl);
}

static void on_head_done(curluv_req_t *r, int result, void *ud)
{
    pull_t *pl = ud;
    if (pl->finished)
        return;
    const cas_layer_t *b = cur_blob(pl);
    long st = curluv_req_status(r);
    char url[1400];
    snprintf(url, sizeof(url), "%sblobs/%s", pl->base, b->digest);
    if (result != 0) {
        pull_fail(pl, "pull model blob %.19s: %s", b->digest,
                  *curluv_req_error(r) ? curluv_req_error(r) : ox_strerror(result));
        return;
    }
    if (st == 401) {
        if (pull_auth_start(pl, r, pull_blob_locate) != 0)
            pull_fail(pl, "pull model blob %.19s: 401 Unauthorized", b->digest);
        return;
    }
    if (st == 404) {
        pull_fail(pl, "pull model blob %.19s: file does not exist", b->digest);
        return;
    }
    const char *loc = curluv_req_header(r, "Location");
    if (loc && *loc && (st / 100 == 3 || st / 100 == 2)) {
        if (pull_url_resolve(url, loc, pl->blob_url, sizeof(pl->blob_url)) != 0) {
            pull_fail(pl, "pull model blob %.19s: bad redirect", b->digest);
            return;
        }
    } else {
        /* No redirect to learn (or HEAD not allowed): range the blob URL
         * itself and let curl follow whatever comes. */
        snprintf(pl->blob_url, sizeof(pl->blob_url), "%s", url);
    }
    begin_download(pl);
}

void pull_blob_locate(pull_t *pl)
{
    char url[1400];
    snprintf(url, sizeof(url), "%sblobs/%s", pl->base, cur_blob(pl)->digest);
    curluv_opts_t o = {.method = "HEAD",
                       .url = url,
                       .headers = pull_headers(pl, 1, NULL),
                       .timeout_ms = 60000,
                       .on_done = on_head_done,
                       .ud = pl};
    int rc = curluv_start(pl->cu, &o, NULL);
    if (rc)
        pull_fail(pl, "pull model blob: %s", ox_strerror(rc));
}

/* ---- starting a blob -------------------------------------------------------- */

static void on_lock_retry(uv_timer_t *t) { pull_blob_start(t->data); }

/* Plans the current blob's parts and picks up what the sidecar says is
 * already on disk (pull_resume_prepare). */
static int load_progress(pull_t *pl)
{
    const cas_layer_t *b = cur_blob(pl);
    free(pl->parts);
    free(pl->xfers);
    pl->parts = NULL;
    pl->xfers = NULL;
    pl->n_parts = 0;
    int restarted = 0;
    int rc = pull_resume_prepare(pl->fd, pl->sidecar, b->digest, b->size, pull_part_min(),
                                 &pl->parts, &pl->n_parts, &restarted);
    if (rc)
        return rc;
    pl->xfers = calloc(pl->n_parts, sizeof(*pl->xfers));
    if (!pl->xfers)
        return OX_ENOMEM;
    if (restarted)
        OX_INFO("pull: %s: no usable progress record, restarting the blob", pl->sidecar);
    else if (completed_bytes(pl) > 0)
        OX_INFO("pull: resuming %.19s at %" PRIu64 " of %" PRIu64 " bytes", b->digest,
                completed_bytes(pl), b->size);
    pl->unsynced = 0;
    pl->ckpt_again = 0;
    pl->finishing_blob = 0;
    pl->reported = 0;
    pl->last_completed = 0;
    return 0;
}

void pull_blob_start(pull_t *pl)
{
    if (pl->finished)
        return;
    const cas_layer_t *b = cur_blob(pl);
    cas_t *cas = pl->node->cas;
    uint64_t size;
    if (cas_blob_stat(cas, b->digest, &size) == 0) {
        pull_progress_line(pl, b->size, b->size);
        pull_next_blob(pl);
        return;
    }
    if (cas_partial_path(cas, b->digest, pl->partial, sizeof(pl->partial)) != 0) {
        pull_fail(pl, "invalid digest %s", b->digest);
        return;
    }
    snprintf(pl->sidecar, sizeof(pl->sidecar), "%s.parts", pl->partial);
    int fd = open(pl->partial, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        pull_fail(pl, "open %s: %s", pl->partial, strerror(errno));
        return;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        /* Someone else is fetching this blob: wait for them to finish. */
        close(fd);
        uv_timer_start(&pl->wait, on_lock_retry, LOCK_RETRY_MS, 0);
        return;
    }
    struct stat a, p;
    if (fstat(fd, &a) != 0 || stat(pl->partial, &p) != 0 || a.st_ino != p.st_ino ||
        a.st_dev != p.st_dev) {
        /* Renamed into blobs/ between our open and our lock. */
        close(fd);
        uv_timer_start(&pl->wait, on_lock_retry, 0, 0);
        return;
    }
    if (cas_blob_stat(cas, b->digest, &size) == 0) {
        unlink(pl->partial);
        unlink(pl->sidecar);
        close(fd);
        pull_progress_line(pl, b->size, b->size);
        pull_next_blob(pl);
        return;
    }
    pl->fd = fd;
    int rc = load_progress(pl);
    if (rc) {
        pull_fail(pl, "preparing %s: %s", pl->partial, ox_strerror(rc));
        return;
    }
    if (all_parts_done(pl)) {
        finish_blob(pl);  /* killed after the download, before the adopt */
        return;
    }
    pull_swarm_start(pl);
}
