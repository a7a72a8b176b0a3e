/* Responses: status line and headers, complete bodies, chunked streams and
 * file ranges sent with sendfile(2) from the work pool. Every write is one
 * allocation holding the uv_write_t and the bytes, freed in its callback. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

#include "api/http_int.h"
#include "common/err.h"
#include "common/log.h"

typedef struct http_write {
    uv_write_t req;
    http_conn_t *conn;
    size_t body_n;
    int starts_file;
    char data[];
} http_write_t;

static void conn_start_file(http_conn_t *c);

static void on_write(uv_write_t *wr, int status)
{
    http_write_t *w = (http_write_t *)wr;
    http_conn_t *c = w->conn;
    int starts_file = w->starts_file;
    c->nwrites--;
    c->pending -= w->body_n;
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        http_conn_close(c);
        return;
    }
    if (starts_file && c->job) {
        conn_start_file(c);
        return;
    }
    if (c->want_close && c->nwrites == 0 && !c->job && (!c->cur || c->cur->finished))
        http_conn_close(c);
}

static int conn_write_ex(http_conn_t *c, const void *head, size_t head_n, const void *body,
                         size_t body_n, const void *tail, size_t tail_n, int starts_file)
{
    if (!c || c->closing)
        return OX_ECANCELED;
    size_t n = head_n + body_n + tail_n;
    http_write_t *w = malloc(sizeof(*w) + n);
    if (!w)
        return OX_ENOMEM;
    w->conn = c;
    w->body_n = body_n;
    w->starts_file = starts_file;
    if (head_n)
        memcpy(w->data, head, head_n);
    if (body_n)
        memcpy(w->data + head_n, body, body_n);
    if (tail_n)
        memcpy(w->data + head_n + body_n, tail, tail_n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(w);
        http_conn_close(c);
        return OX_ECANCELED;
    }
    c->nwrites++;
    c->pending += body_n;
    return 0;
}

int http_conn_write(http_conn_t *c, const void *head, size_t head_n, const void *body,
                    size_t body_n, const void *tail, size_t tail_n)
{
    return conn_write_ex(c, head, head_n, body, body_n, tail, tail_n, 0);
}

static const char *http_date(void)
{
    static _Thread_local char buf[40];
    static _Thread_local time_t last;
    time_t now = time(NULL);
    if (now != last) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        last = now;
    }
    return buf;
}

/* Status line and headers. clen < 0: no Content-Length. */
static int head_build(ox_buf_t *b, int status, const char *ctype, int64_t clen, int chunked,
                      int keepalive, int http10, const ox_buf_t *extra)
{
    int rc = ox_buf_printf(b, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, http_status_text(status),
                           http_date());
    if (!rc && ctype)
        rc = ox_buf_printf(b, "Content-Type: %s\r\n", ctype);
    if (!rc && clen >= 0)
        rc = ox_buf_printf(b, "Content-Length: %" PRId64 "\r\n", clen);
    if (!rc && chunked)
        rc = ox_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    if (!rc && !keepalive)
        rc = ox_buf_puts(b, "Connection: close\r\n");
    else if (!rc && http10)
        rc = ox_buf_puts(b, "Connection: keep-alive\r\n");
    if (!rc && extra && extra->len)
        rc = ox_buf_append(b, extra->data, extra->len);
    if (!rc)
        rc = ox_buf_puts(b, "\r\n");
    return rc;
}

void http_conn_write_error(http_conn_t *c, int status, const char *msg, int close)
{
    ox_buf_t body = OX_BUF_INIT, head = OX_BUF_INIT;
    if (close)
        c->want_close = 1;
    int rc = ox_buf_printf(&body, "{\"error\":\"%s\"}", msg);
    if (!rc)
        rc = head_build(&head, status, "application/json; charset=utf-8", (int64_t)body.len, 0,
                        !close, 0, NULL);
    if (rc || http_conn_write(c, head.data, head.len, body.data, body.len, NULL, 0))
        http_conn_close(c);
    ox_buf_free(&body);
    ox_buf_free(&head);
    if (!c->closing)
        http_conn_update_reading(c);
}

/* The handler is done with r: the connection moves on once r's body has
 * been read and any file range is sent. */
void http_finish(http_req_t *r)
{
    r->finished = 1;
    r->handler_ref = 0;
    http_conn_t *c = r->conn;
    if (!c) {
        http_req_release(r);
        return;
    }
    if (r->paused) {
        /* Nothing more to deliver to the handler: drop the rest of the body. */
        r->paused = 0;
        r->discard_body = 1;
    }
    if (c->job)
        return;
    if (r->msg_done)
        http_conn_req_done(c);
    else if (!c->in_process)
        http_conn_process(c);
}

/* Returns OX_ECANCELED (and releases r) when the client is gone. */
static int req_check(http_req_t *r, int finishing)
{
    if (r->finished)
        return OX_ESTATE;
    if (r->closed || !r->conn) {
        if (finishing) {
            r->finished = 1;
            r->handler_ref = 0;
            http_req_release(r);
        }
        return OX_ECANCELED;
    }
    return 0;
}

static int req_keepalive(http_req_t *r)
{
    if (r->conn->srv->closing || (!r->msg_done && r->expect_continue))
        r->keepalive = 0;
    return r->keepalive;
}

int http_resp_header(http_req_t *r, const char *name, const char *value)
{
    if (r->started || r->finished)
        return OX_ESTATE;
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return OX_EINVAL;
    return ox_buf_printf(&r->resp_hdrs, "%s: %s\r\n", name, value);
}

static int respond_common(http_req_t *r, int status, const char *ctype, const void *body,
                          size_t len, int send_body)
{
    int rc = req_check(r, 1);
    if (rc)
        return rc;
    int nobody = status < 200 || status == 204 || status == 304;
    /* A length without its body on a GET leaves the framing broken: end
     * the connection so the client sees a short body, not a hang. */
    if (!send_body && !r->is_head && len > 0)
        r->keepalive = 0;
    ox_buf_t head = OX_BUF_INIT;
    rc = head_build(&head, status, nobody ? NULL : ctype, nobody ? -1 : (int64_t)len, 0,
                    req_keepalive(r), r->http10, &r->resp_hdrs);
    r->started = 1;
    if (!rc) {
        int with = send_body && !r->is_head && !nobody;
        rc = http_conn_write(r->conn, head.data, head.len, with ? body : NULL, with ? len : 0,
                             NULL, 0);
    }
    ox_buf_free(&head);
    http_finish(r);
    return rc;
}

int http_respond(http_req_t *r, int status, const char *content_type, const void *body,
                 size_t len)
{
    return respond_common(r, status, content_type, body, len, 1);
}

int http_respond_head(http_req_t *r, int status, const char *content_type, uint64_t length)
{
    return respond_common(r, status, content_type, NULL, (size_t)length, 0);
}

/* ---- file ranges -------------------------------------------------------- */

static void on_file_work(uv_work_t *w)
{
    http_file_job_t *j = w->data;
    off_t off = (off_t)j->offset;
    uint64_t left = j->length;
    uint64_t stalled = 0;
    while (left > 0) {
        if (atomic_load(&j->cancel)) {
            j->err = -ECANCELED;
            return;
        }
        size_t want = left > (1u << 30) ? (1u << 30) : (size_t)left;
        ssize_t n = sendfile(j->sock, j->fd, &off, want);
        if (n > 0) {
            left -= (uint64_t)n;
            j->sent += (uint64_t)n;
            stalled = 0;
            continue;
        }
        if (n == 0) {
            j->err = -EIO; /* file shorter than promised */
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            j->err = -errno;
            return;
        }
        /* The socket is non-blocking (libuv owns it): wait for room, in
         * short slices so a closing server is not held up. */
        struct pollfd pfd = {.fd = j->sock, .events = POLLOUT};
        int pr = poll(&pfd, 1, 200);
        if (pr == 0) {
            stalled += 200;
            if (stalled >= j->stall_ms) {
                j->err = -ETIMEDOUT;
                return;
            }
        }
    }
}

static void on_file_done(uv_work_t *w, int status)
{
    http_file_job_t *j = w->data;
    http_conn_t *c = j->conn;
    int err = status < 0 ? status : j->err;
    c->srv->file_bytes += j->sent;
    close(j->fd);
    free(j);
    c->job = NULL;
    if (c->closing) {
        /* http_conn_close waited for us to give the socket back. */
        http_conn_close_handles(c);
        return;
    }
    if (err) {
        OX_DEBUG("http: file send to %s failed: %s", c->peer, uv_strerror(err));
        http_conn_close(c);
        return;
    }
    if (c->cur && c->cur->finished && c->cur->msg_done)
        http_conn_req_done(c);
    else if (c->cur && c->cur->finished)
        http_conn_process(c);
}

static void conn_start_file(http_conn_t *c)
{
    http_file_job_t *j = c->job;
    uv_os_fd_t sock;
    int rc = uv_fileno((uv_handle_t *)&c->tcp, &sock);
    if (rc == 0) {
        j->sock = sock; /* before queueing: the worker may start at once */
        j->queued = 1;
        rc = uv_queue_work(c->srv->loop, &j->work, on_file_work, on_file_done);
    }
    if (rc != 0) {
        close(j->fd);
        free(j);
        c->job = NULL;
        http_conn_close(c);
    }
}

int http_respond_file(http_req_t *r, int status, const char *content_type, int fd,
                      uint64_t offset, uint64_t length)
{
    int rc = req_check(r, 1);
    if (rc) {
        close(fd);
        return rc;
    }
    ox_buf_t head = OX_BUF_INIT;
    rc = head_build(&head, status, content_type, (int64_t)length, 0, req_keepalive(r), r->http10,
                    &r->resp_hdrs);
    r->started = 1;
    http_conn_t *c = r->conn;
    http_file_job_t *j = NULL;
    if (!rc && length > 0 && !r->is_head) {
        j = calloc(1, sizeof(*j));
        if (!j) {
            rc = OX_ENOMEM;
        } else {
            j->work.data = j;
            j->conn = c;
            j->fd = fd;
            j->offset = offset;
            j->length = length;
            j->stall_ms = c->srv->lim.idle_timeout_ms ? c->srv->lim.idle_timeout_ms : 120000;
            atomic_init(&j->cancel, 0);
        }
    }
    if (!rc) {
        rc = conn_write_ex(c, head.data, head.len, NULL, 0, NULL, 0, j != NULL);
        if (!rc && j) {
            c->job = j; /* owns fd from here */
            j = NULL;
            fd = -1;
        }
    }
    free(j);
    if (fd >= 0)
        close(fd);
    ox_buf_free(&head);
    http_finish(r);
    return rc;
}

/* ---- chunked streams ---------------------------------------------------- */

int http_stream_begin(http_req_t *r, int status, const char *content_type)
{
    int rc = req_check(r, 0);
    if (rc)
        return rc;
    if (r->started)
        return OX_ESTATE;
    /* HTTP/1.0 has no chunked coding: the body ends when we close. */
    if (r->http10)
        r->keepalive = 0;
    r->chunked_out = !r->http10;
    ox_buf_t head = OX_BUF_INIT;
    rc = head_build(&head, status, content_type, -1, r->chunked_out, req_keepalive(r), r->http10,
                    &r->resp_hdrs);
    r->started = 1;
    r->streaming = 1;
    if (!rc)
        rc = http_conn_write(r->conn, head.data, head.len, NULL, 0, NULL, 0);
    ox_buf_free(&head);
    return rc;
}

int http_stream_write(http_req_t *r, const void *p, size_t n)
{
    int rc = req_check(r, 0);
    if (rc)
        return rc;
    if (!r->streaming)
        return OX_ESTATE;
    if (n == 0 || r->is_head)
        return 0;
    if (!r->chunked_out)
        return http_conn_write(r->conn, NULL, 0, p, n, NULL, 0);
    char hex[24];
    int hn = snprintf(hex, sizeof(hex), "%zx\r\n", n);
    return http_conn_write(r->conn, hex, (size_t)hn, p, n, "\r\n", 2);
}

size_t http_stream_pending(const http_req_t *r)
{
    return r->conn ? r->conn->pending : 0;
}

int http_stream_end(http_req_t *r)
{
    int rc = req_check(r, 1);
    if (rc)
        return rc;
    if (!r->streaming) {
        /* Never begun: answer something rather than leave the client waiting. */
        static const char msg[] = "{\"error\":\"stream ended before it began\"}";
        http_respond(r, 500, "application/json; charset=utf-8", msg, sizeof(msg) - 1);
        return OX_ESTATE;
    }
    if (r->chunked_out && !r->is_head)
        rc = http_conn_write(r->conn, "0\r\n\r\n", 5, NULL, 0, NULL, 0);
    http_finish(r);
    return rc;
}
