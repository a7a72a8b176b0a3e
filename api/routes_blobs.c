/* HEAD|POST /api/blobs/:digest.
 *
 * An upload streams. Large ones (the store stages them: size unknown or
 * >= 4 MiB) go straight from the socket's buffer into the store's staging
 * buffers with cas_ingest_write_some, which never blocks; the store hashes
 * and writes them on its own threads. When its buffers are all busy the
 * rest waits in `fill`, the socket is paused, and the store's wake-up
 * (uv_async) resumes it. Small ones: the body sink copies into the filling
 * buffer while the other buffer is written by cas_ingest_write in the work
 * pool; only one write is in flight (bytes must stay in order); past
 * UPLOAD_HIGH the socket is paused until the write returns. The commit
 * (fsync, rename, index) runs in the work pool. The request is always
 * answered from on_request (the http core dispatches it also when the client
 * goes away), or later once the last write is back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/timeutil.h"

#define UPLOAD_CHUNK (2u << 20) /* hand off to the pool from this size */
#define UPLOAD_HIGH (8u << 20)  /* pause reading beyond this much buffered */
#define UPLOAD_MAGIC 0x75706c64u

typedef struct upload {
    unsigned magic;
    node_t *node;
    http_req_t *req;
    cas_ingest_t *in;
    char digest[80];      /* as given in the path */
    ox_buf_t fill;        /* receiving */
    ox_buf_t wbuf;        /* being written by the pool */
    uv_work_t work;
    uv_async_t wake;      /* direct: the store has room again */
    int direct;           /* large: cas_ingest_write_some from the loop */
    int inflight, committing, ended, paused;
    int failed;           /* first error; rest of the body is dropped */
    int write_rc;         /* last write's result: set in the pool, read after it */
    int existed;
    int commit_rc;
    char out_digest[72];
    char err[512];
    uint64_t bytes;
    unsigned writes, pauses;
    int64_t t_begin, t_ended, t_commit; /* mono ns, for the debug log */
} upload_t;

static const char *path_digest(http_req_t *req)
{
    return http_req_path(req) + strlen("/api/blobs/");
}

void api_route_blob_head(node_t *node, http_req_t *req)
{
    const char *d = path_digest(req);
    char canon[72];
    if (cas_digest_parse(d, canon) != 0) {
        api_error(req, 400, "invalid digest format");
        return;
    }
    uint64_t size;
    if (cas_blob_stat(node->cas, canon, &size) != 0) {
        char q[200];
        api_go_quote(d, q, sizeof q);
        api_errorf(req, 404, "blob %s not found", q);
        return;
    }
    http_respond(req, 200, NULL, NULL, 0);
}

int api_blob_upload_owns(http_req_t *req)
{
    upload_t *u = http_req_data(req);
    return u && u->magic == UPLOAD_MAGIC;
}

static void on_wake_closed(uv_handle_t *h)
{
    free(h->data);
}

static void upload_free(upload_t *u)
{
    node_t *node = u->node;
    if (u->in)
        cas_ingest_abort(u->in); /* joins the store's threads: no wake after */
    ox_buf_free(&u->fill);
    ox_buf_free(&u->wbuf);
    u->magic = 0;
    if (u->direct)
        uv_close((uv_handle_t *)&u->wake, on_wake_closed);
    else
        free(u);
    api_release(node);
}

static void upload_finish(upload_t *u, int status, const char *err)
{
    http_req_t *req = u->req;
    int64_t now = ox_time_mono_ns();
    OX_DEBUG("blob upload %s: %d, %llu bytes in %u writes, %u pauses, body %.3f s, drain %.3f s, "
             "commit %.3f s",
             u->digest, status, (unsigned long long)u->bytes, u->writes, u->pauses,
             (double)(u->t_ended - u->t_begin) / 1e9,
             u->t_commit ? (double)(u->t_commit - u->t_ended) / 1e9 : 0.0,
             u->t_commit ? (double)(now - u->t_commit) / 1e9 : 0.0);
    http_req_set_data(req, NULL);
    if (err)
        api_error(req, status, err);
    else
        http_respond(req, status, NULL, NULL, 0);
    upload_free(u);
}

static void pump(upload_t *u);

static void on_write(uv_work_t *w)
{
    upload_t *u = w->data;
    /* Only write_rc is touched here: failed and err belong to the loop. */
    u->write_rc = cas_ingest_write(u->in, u->wbuf.data, u->wbuf.len);
}

static void on_write_done(uv_work_t *w, int status)
{
    upload_t *u = w->data;
    u->inflight = 0;
    ox_buf_reset(&u->wbuf);
    if (u->write_rc != 0 && !u->failed) {
        u->failed = u->write_rc;
        snprintf(u->err, sizeof u->err, "write blob: %s", ox_strerror(u->write_rc));
    }
    if (status != 0 && !u->failed) {
        u->failed = OX_ECANCELED;
        snprintf(u->err, sizeof u->err, "write blob: canceled");
    }
    /* While paused the body cannot have ended, so pump cannot free u here;
     * resuming last may dispatch on_request (client gone) which may. */
    int resume = u->paused;
    u->paused = 0;
    http_req_t *req = u->req;
    pump(u);
    if (resume)
        http_req_resume(req);
}

static void on_commit(uv_work_t *w)
{
    upload_t *u = w->data;
    cas_ingest_t *in = u->in;
    u->in = NULL; /* consumed, also on failure */
    u->commit_rc = cas_ingest_commit(in, u->out_digest, &u->existed, u->err, sizeof u->err);
}

static void on_commit_done(uv_work_t *w, int status)
{
    upload_t *u = w->data;
    u->committing = 0;
    if (status != 0 && u->commit_rc == 0) {
        upload_finish(u, 500, "commit canceled");
        return;
    }
    if (u->commit_rc == OX_EDIGEST)
        upload_finish(u, 400, u->err);
    else if (u->commit_rc != 0)
        upload_finish(u, 500, u->err[0] ? u->err : ox_strerror(u->commit_rc));
    else
        upload_finish(u, u->existed ? 200 : 201, NULL);
}

static int submit(upload_t *u, uv_work_cb work, uv_after_work_cb after)
{
    u->work.data = u;
    int rc = uv_queue_work(u->node->loop, &u->work, work, after);
    if (rc != 0) {
        u->failed = OX_EIO;
        snprintf(u->err, sizeof u->err, "queue work: %s", uv_strerror(rc));
    }
    return rc;
}

static void start_write(upload_t *u)
{
    ox_buf_t t = u->wbuf;
    u->wbuf = u->fill;
    u->fill = t;
    ox_buf_reset(&u->fill);
    if (submit(u, on_write, on_write_done) == 0) {
        u->inflight = 1;
        u->writes++;
    }
}

/* Moves the upload on: next write, commit, or the final answer. */
static void pump(upload_t *u)
{
    if (u->inflight || u->committing)
        return;
    if (u->failed || http_req_is_closed(u->req)) {
        if (u->ended)
            upload_finish(u, u->failed == OX_EDIGEST ? 400 : 500,
                          u->err[0] ? u->err : "upload canceled");
        return;
    }
    if (u->direct) {
        if (u->fill.len > 0)
            return; /* waits for the store's wake-up */
    } else if (u->fill.len >= UPLOAD_CHUNK || (u->ended && u->fill.len > 0)) {
        start_write(u);
        if (u->inflight || !u->ended)
            return;
        pump(u);
        return;
    }
    if (u->ended) {
        u->t_commit = ox_time_mono_ns();
        if (submit(u, on_commit, on_commit_done) == 0)
            u->committing = 1;
        else
            upload_finish(u, 500, u->err);
    }
}

static void set_failed(upload_t *u, int rc)
{
    if (!u->failed) {
        u->failed = rc;
        snprintf(u->err, sizeof u->err, "write blob: %s", ox_strerror(rc));
    }
}

/* Direct: offers the backlog, then p, to the store; keeps what it cannot
 * take yet in fill (in order) and pauses the socket until the wake-up. */
static int direct_feed(upload_t *u, const void *p, size_t n)
{
    size_t t = 0;
    int rc = 0;
    if (u->fill.len) {
        rc = cas_ingest_write_some(u->in, u->fill.data, u->fill.len, &t);
        ox_buf_consume(&u->fill, t);
    }
    if (!rc && !u->fill.len && n) {
        rc = cas_ingest_write_some(u->in, p, n, &t);
        p = (const char *)p + t;
        n -= t;
    }
    if (!rc && n && ox_buf_append(&u->fill, p, n) != 0)
        rc = OX_ENOMEM;
    if (rc)
        set_failed(u, rc);
    if (!rc && u->fill.len && !u->paused) {
        u->paused = 1;
        u->pauses++;
        http_req_pause(u->req);
    }
    return rc;
}

/* Runs on a store thread: only signals the loop. */
static void on_store_room(void *ud)
{
    upload_t *u = ud;
    uv_async_send(&u->wake);
}

static void on_wake(uv_async_t *a)
{
    upload_t *u = a->data;
    if (!u->in || u->committing || u->magic != UPLOAD_MAGIC)
        return;
    if (!u->failed && u->fill.len)
        direct_feed(u, NULL, 0);
    if (u->fill.len && !u->failed)
        return; /* still waiting: the wake-up is armed again */
    int resume = u->paused;
    u->paused = 0;
    http_req_t *req = u->req;
    pump(u); /* may answer and free u only when the body has ended */
    if (resume)
        http_req_resume(req);
}

/* Direct uploads receive straight into the store's staging buffers, while
 * nothing waits in the backlog (bytes must reach the store in order). */
static void *on_room(http_req_t *req, size_t *len, void *ud)
{
    (void)req;
    upload_t *u = ud;
    if (!u->direct || u->failed || u->fill.len || u->committing)
        return NULL;
    return cas_ingest_room(u->in, len);
}

static int on_data(http_req_t *req, const void *p, size_t n, void *ud)
{
    (void)req;
    upload_t *u = ud;
    if (u->failed)
        return u->failed;
    u->bytes += n;
    if (u->direct) {
        u->writes++;
        return direct_feed(u, p, n);
    }
    if (ox_buf_append(&u->fill, p, n) != 0) {
        u->failed = OX_ENOMEM;
        snprintf(u->err, sizeof u->err, "out of memory");
        return u->failed;
    }
    if (!u->inflight && u->fill.len >= UPLOAD_CHUNK) {
        start_write(u);
    } else if (u->inflight && u->fill.len >= UPLOAD_HIGH && !u->paused) {
        u->paused = 1;
        u->pauses++;
        http_req_pause(u->req);
    }
    return u->failed;
}

void api_blob_upload_begin(node_t *node, http_req_t *req)
{
    const char *d = path_digest(req);
    char canon[72];
    if (cas_digest_parse(d, canon) != 0) {
        api_error(req, 400, "invalid digest format");
        return;
    }
    uint64_t size;
    if (cas_blob_stat(node->cas, canon, &size) == 0) {
        http_respond(req, 200, NULL, NULL, 0); /* the body is not read */
        return;
    }
    upload_t *u = calloc(1, sizeof *u);
    if (!u) {
        api_error(req, 500, "out of memory");
        return;
    }
    int64_t cl = http_req_content_length(req);
    int rc = cas_ingest_begin(node->cas, d, cl > 0 ? (uint64_t)cl : 0, &u->in);
    if (rc != 0) {
        free(u);
        api_errorf(req, 500, "store blob: %s", ox_strerror(rc));
        return;
    }
    u->magic = UPLOAD_MAGIC;
    u->t_begin = ox_time_mono_ns();
    u->node = node;
    u->req = req;
    snprintf(u->digest, sizeof u->digest, "%s", d);
    if (cas_ingest_nonblocking(u->in) && uv_async_init(node->loop, &u->wake, on_wake) == 0) {
        u->direct = 1;
        u->wake.data = u;
        cas_ingest_set_wake(u->in, on_store_room, u);
        api_hold(node);
        http_req_set_data(req, u);
        http_req_set_body_sink(req, on_data, u);
        http_req_set_body_room(req, on_room);
        return;
    }
    if (ox_buf_reserve(&u->fill, UPLOAD_CHUNK) != 0 || ox_buf_reserve(&u->wbuf, UPLOAD_CHUNK) != 0) {
        cas_ingest_abort(u->in);
        ox_buf_free(&u->fill);
        ox_buf_free(&u->wbuf);
        free(u);
        api_error(req, 500, "out of memory");
        return;
    }
    api_hold(node);
    http_req_set_data(req, u);
    http_req_set_body_sink(req, on_data, u);
}

void api_blob_upload_end(node_t *node, http_req_t *req)
{
    (void)node;
    upload_t *u = http_req_data(req);
    u->ended = 1;
    u->t_ended = ox_time_mono_ns();
    pump(u);
}
