/* Connections: accepting, reading, parsing with http-parser, timeouts and
 * closing. One request at a time per connection: after a message is complete
 * the parser stays paused until that request is finished, so pipelined
 * requests are answered strictly in order; their bytes wait in rbuf. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/http_int.h"
#include "common/err.h"

static void on_conn_closed(uv_handle_t *h);
static void server_handle_gone(http_server_t *s);
static void conn_arm_timer(http_conn_t *c);

/* ---- request objects -------------------------------------------------- */

static http_req_t *req_new(http_conn_t *c)
{
    http_req_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->conn = c;
    r->conn_ref = 1;
    r->content_length = -1;
    r->cb = c->srv->cb;
    memcpy(r->peer, c->peer, sizeof(r->peer));
    memcpy(r->local_ip, c->local_ip, sizeof(r->local_ip));
    return r;
}

static void req_free(http_req_t *r)
{
    ox_buf_free(&r->url);
    ox_buf_free(&r->hbuf);
    ox_buf_free(&r->body);
    ox_buf_free(&r->resp_hdrs);
    free(r->hoff);
    free(r->raw_path);
    free(r->path);
    free(r->query);
    free(r);
}

void http_req_release(http_req_t *r)
{
    if (!r->conn_ref && !r->handler_ref)
        req_free(r);
}

/* The client is gone (or the connection failed) before r was finished:
 * detach it, tell the handler, and free it unless the handler holds it. */
static void req_abandon(http_conn_t *c, http_req_t *r)
{
    /* conn_ref stays set until the end: it keeps r alive while the
     * callbacks below may finish it. */
    c->cur = NULL;
    r->conn = NULL;
    if (!r->finished) {
        r->closed = 1;
        if (r->close_cb) {
            void (*cb)(http_req_t *, void *) = r->close_cb;
            r->close_cb = NULL;
            cb(r, r->close_ud);
        }
        /* A sink handler holds the request but may never learn the body
         * ended: give it its on_request (after it resumes, so never while
         * its own async write is in flight). */
        if (r->handler_ref && !r->dispatched && !r->finished) {
            if (r->paused) {
                r->dispatch_on_resume = 1;
            } else {
                r->dispatched = 1;
                if (r->cb.on_request)
                    r->cb.on_request(r, r->cb.ud);
            }
        }
    }
    r->conn_ref = 0;
    http_req_release(r);
}

/* ---- parser callbacks ------------------------------------------------- */

static int parse_fail(http_conn_t *c, int status, const char *msg)
{
    c->err_status = status;
    c->err_msg = msg;
    return -1;
}

static int head_add(http_conn_t *c, size_t n)
{
    c->head_bytes += n;
    if (c->head_bytes > c->srv->lim.max_header_bytes)
        return parse_fail(c, 431, "request header fields too large");
    return 0;
}

static int on_message_begin(http_parser *p)
{
    http_conn_t *c = p->data;
    c->cur = req_new(c);
    if (!c->cur)
        return parse_fail(c, 500, "out of memory");
    c->head_bytes = 0;
    c->last_hdr_cb = 0;
    c->in_head = 1;
    conn_arm_timer(c);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    if (head_add(c, n))
        return -1;
    return ox_buf_append(&c->cur->url, at, n) ? parse_fail(c, 500, "out of memory") : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    http_req_t *r = c->cur;
    if (head_add(c, n + (c->last_hdr_cb != 1 ? 4 : 0)))
        return -1;
    if (c->last_hdr_cb != 1) {
        if (c->last_hdr_cb == 2 && ox_buf_append(&r->hbuf, "", 1))
            return parse_fail(c, 500, "out of memory");
        if (r->nhdr == r->hcap) {
            size_t cap = r->hcap ? r->hcap * 2 : 16;
            size_t *o = realloc(r->hoff, cap * 2 * sizeof(size_t));
            if (!o)
                return parse_fail(c, 500, "out of memory");
            r->hoff = o;
            r->hcap = cap;
        }
        r->hoff[2 * r->nhdr] = r->hbuf.len;
        r->hoff[2 * r->nhdr + 1] = 0;
        r->nhdr++;
        c->last_hdr_cb = 1;
    }
    return ox_buf_append(&r->hbuf, at, n) ? parse_fail(c, 500, "out of memory") : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    http_req_t *r = c->cur;
    if (head_add(c, n))
        return -1;
    if (c->last_hdr_cb != 2) {
        if (ox_buf_append(&r->hbuf, "", 1))
            return parse_fail(c, 500, "out of memory");
        r->hoff[2 * (r->nhdr - 1) + 1] = r->hbuf.len;
        c->last_hdr_cb = 2;
    }
    return ox_buf_append(&r->hbuf, at, n) ? parse_fail(c, 500, "out of memory") : 0;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Splits the request target into raw path, decoded path and query. */
static int req_split_url(http_req_t *r)
{
    const char *u = r->url.data ? r->url.data : "";
    size_t plen, qoff = 0, qlen = 0;
    if (strcmp(u, "*") == 0) {
        plen = 1;
    } else {
        struct http_parser_url pu;
        http_parser_url_init(&pu);
        if (http_parser_parse_url(u, r->url.len, 0, &pu) != 0)
            return -1;
        if (pu.field_set & (1 << UF_PATH)) {
            u += pu.field_data[UF_PATH].off;
            plen = pu.field_data[UF_PATH].len;
        } else {
            u = "/";
            plen = 1;
        }
        if (pu.field_set & (1 << UF_QUERY)) {
            qoff = pu.field_data[UF_QUERY].off;
            qlen = pu.field_data[UF_QUERY].len;
        }
    }
    r->raw_path = strndup(u, plen);
    r->query = strndup(r->url.data ? r->url.data + qoff : "", qlen);
    r->path = malloc(plen + 1);
    if (!r->raw_path || !r->query || !r->path)
        return -2;
    size_t j = 0;
    for (size_t i = 0; i < plen; i++) {
        char ch = u[i];
        if (ch == '%') {
            int hi = i + 2 < plen ? hexval((unsigned char)u[i + 1]) : -1;
            int lo = i + 2 < plen ? hexval((unsigned char)u[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == 0) {
            return -1;
        }
        r->path[j++] = ch;
    }
    r->path[j] = 0;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    http_req_t *r = c->cur;
    http_server_t *s = c->srv;
    c->in_head = 0;
    c->timer_kind = 0;
    if (c->last_hdr_cb == 2 && ox_buf_append(&r->hbuf, "", 1))
        return parse_fail(c, 500, "out of memory");
    for (size_t i = 0; i < r->nhdr; i++) {
        if (!r->hoff[2 * i + 1]) /* field without value */
            return parse_fail(c, 400, "malformed HTTP request");
        char *v = r->hbuf.data + r->hoff[2 * i + 1];
        size_t n = strlen(v);
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            v[--n] = 0;
    }
    snprintf(r->method, sizeof(r->method), "%s", http_method_str(p->method));
    int rc = req_split_url(r);
    if (rc == -2)
        return parse_fail(c, 500, "out of memory");
    if (rc)
        return parse_fail(c, 400, "malformed request path");
    r->is_head = p->method == HTTP_HEAD;
    r->http10 = p->http_major == 1 && p->http_minor == 0;
    r->keepalive = http_should_keep_alive(p) && !p->upgrade && !s->closing;
    if (p->flags & F_CONTENTLENGTH)
        r->content_length = (int64_t)p->content_length;
    int has_body = (p->flags & F_CHUNKED) || (r->content_length > 0);
    const char *exp = http_req_header(r, "expect");
    r->expect_continue = exp && strcasecmp(exp, "100-continue") == 0 && has_body;
    uv_timer_stop(&c->timer);

    if (s->cb.on_headers)
        s->cb.on_headers(r, s->cb.ud);
    if (c->closing || c->cur != r)
        return parse_fail(c, 0, NULL); /* connection went away inside the callback */
    if (r->finished || r->started) {
        r->discard_body = 1;
        /* The client may hold the body back waiting for 100 Continue: a
         * final answer means it never sends it, so the connection cannot
         * carry another request reliably. */
        if (r->expect_continue) {
            r->keepalive = 0;
            r->msg_done = 1;
            c->stop_parsing = 1;
            http_parser_pause(p, 1);
            if (r->finished)
                http_conn_req_done(c); /* frees r */
            return 0;
        }
    } else if (!r->sink && r->content_length > 0 &&
               (uint64_t)r->content_length > s->lim.max_body_bytes) {
        return parse_fail(c, 413, "request body too large");
    } else if (r->expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (http_conn_write(c, cont, sizeof(cont) - 1, NULL, 0, NULL, 0))
            return parse_fail(c, 0, NULL);
    }
    if (has_body && (r->sink || r->content_length > (int64_t)HTTP_RBUF_SMALL ||
                     (p->flags & F_CHUNKED)))
        c->want_rcap = HTTP_RBUF_BIG;
    if (r->paused)
        http_parser_pause(p, 1);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    http_req_t *r = c->cur;
    if (r->discard_body)
        return 0;
    if (r->sink) {
        if (r->closed)
            return 0;
        int rc = r->sink(r, at, n, r->sink_ud);
        if (c->closing || c->cur != r)
            return parse_fail(c, 0, NULL);
        if (rc) {
            /* The handler refuses the body: it answers, the rest is dropped. */
            r->discard_body = 1;
            r->sink = NULL;
        }
        if (r->paused)
            http_parser_pause(p, 1);
        return 0;
    }
    if (r->body.len + n > c->srv->lim.max_body_bytes)
        return parse_fail(c, 413, "request body too large");
    return ox_buf_append(&r->body, at, n) ? parse_fail(c, 500, "out of memory") : 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    http_req_t *r = c->cur;
    r->msg_done = 1;
    /* Stop after this message whatever the handler does: the next request
     * waits until this one is finished. */
    http_parser_pause(p, 1);
    if (r->finished) {
        http_conn_req_done(c);
        return 0;
    }
    if (!r->dispatched) {
        r->dispatched = 1;
        r->handler_ref = 1;
        if (r->cb.on_request)
            r->cb.on_request(r, r->cb.ud);
        else
            http_respond(r, 404, "application/json; charset=utf-8",
                         "{\"error\":\"not found\"}", 21);
    }
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- reading ---------------------------------------------------------- */

static int conn_can_parse(const http_conn_t *c)
{
    if (c->closing || c->want_close || c->stop_parsing || c->job)
        return 0;
    if (c->cur && (c->cur->paused || (c->cur->msg_done)))
        return 0;
    return 1;
}

void http_conn_process(http_conn_t *c)
{
    if (c->in_process)
        return;
    c->in_process = 1;
    while (c->roff < c->rlen && conn_can_parse(c)) {
        size_t avail = c->rlen - c->roff;
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->rbuf + c->roff, avail);
        c->roff += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            continue;
        }
        if (e != HPE_OK) {
            if (c->closing)
                break;
            if (c->err_status == 0 && c->err_msg == NULL && e >= HPE_CB_message_begin &&
                e <= HPE_CB_chunk_complete) {
                http_conn_close(c); /* callback saw the connection go away */
                break;
            }
            int st = c->err_status ? c->err_status : (e == HPE_HEADER_OVERFLOW ? 431 : 400);
            const char *msg = c->err_msg ? c->err_msg
                              : st == 431 ? "request header fields too large"
                                          : "malformed HTTP request";
            http_conn_fail(c, st, msg);
            break;
        }
        if (n < avail) /* upgrade: the rest is not HTTP */
            c->stop_parsing = 1;
    }
    if (c->roff == c->rlen)
        c->roff = c->rlen = 0;
    c->in_process = 0;
    if (c->closing)
        return;
    if (c->eof && c->roff == c->rlen) {
        if (c->cur && !c->cur->finished && c->cur->dispatched) {
            /* Like Go's net/http: EOF while a handler runs cancels it. */
            http_conn_close(c);
            return;
        }
        if (!c->cur || c->cur->finished) {
            c->want_close = 1;
            if (c->cur && !c->cur->msg_done) {
                /* answered early; the rest of its body will never come */
                c->cur->msg_done = 1;
                http_conn_req_done(c);
                return;
            }
            if (!c->cur && c->nwrites == 0)
                http_conn_close(c);
            return;
        }
        if (!c->cur->dispatched) { /* request cut short */
            http_conn_close(c);
            return;
        }
    }
    http_conn_update_reading(c);
    conn_arm_timer(c);
}

/* Large reads of a sink's body go straight into the sink's memory (an
 * upload's staging buffers), which saves a copy of every byte on the loop
 * thread: 1 GiB uploads spent as long in that memcpy as in recv. Only for a
 * body of known length with nothing buffered before it, and never past its
 * end, so the parser sees nothing but body bytes there. */
#define DIRECT_MIN (64u * 1024u)

static char *direct_room(http_conn_t *c, size_t *len)
{
    http_req_t *r = c->cur;
    if (!r || !r->sink || !r->room || r->paused || r->msg_done || r->closed ||
        r->discard_body || c->in_head || c->roff != c->rlen || c->lingering || c->closing ||
        (c->parser.flags & F_CHUNKED) || c->parser.content_length < DIRECT_MIN ||
        c->parser.content_length == ULLONG_MAX)
        return NULL;
    size_t room = 0;
    char *p = r->room(r, &room, r->sink_ud);
    if (!p || room < DIRECT_MIN)
        return NULL;
    *len = room < c->parser.content_length ? room : (size_t)c->parser.content_length;
    if (*len > UINT_MAX)
        *len = UINT_MAX;
    return p;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    http_conn_t *c = h->data;
    size_t dlen = 0;
    c->direct = direct_room(c, &dlen);
    if (c->direct) {
        *buf = uv_buf_init(c->direct, (unsigned)dlen);
        return;
    }
    if (c->roff > 0 && c->roff == c->rlen)
        c->roff = c->rlen = 0;
    if (c->roff > 0 && c->rcap - c->rlen < c->rcap / 4) {
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    if (c->want_rcap && c->want_rcap < c->rcap && c->rlen - c->roff <= c->want_rcap / 2) {
        /* body done: an idle keep-alive connection keeps only a small buffer */
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
        char *nb = realloc(c->rbuf, c->want_rcap);
        if (nb) {
            c->rbuf = nb;
            c->rcap = c->want_rcap;
        }
    } else if (c->want_rcap > c->rcap) {
        char *nb = realloc(c->rbuf, c->want_rcap);
        if (nb) {
            c->rbuf = nb;
            c->rcap = c->want_rcap;
        }
    }
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

/* Body bytes read into the sink's room: parsed in place, so the sink gets
 * the same pointer. Whatever the parser leaves (the sink paused it) moves
 * into rbuf, where the usual path takes it up. */
static void conn_parse_direct(http_conn_t *c, char *p, size_t n)
{
    size_t done = 0;
    if (conn_can_parse(c)) {
        c->in_process = 1;
        done = http_parser_execute(&c->parser, &parser_settings, p, n);
        c->in_process = 0;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
        } else if (e != HPE_OK) {
            if (!c->closing)
                http_conn_fail(c, c->err_status ? c->err_status : 400,
                               c->err_msg ? c->err_msg : "malformed HTTP request");
            return;
        }
        if (c->closing)
            return;
    }
    if (done < n) {
        if (c->rcap - c->rlen < n - done) {
            char *nb = realloc(c->rbuf, c->rlen + (n - done));
            if (!nb) {
                http_conn_close(c);
                return;
            }
            c->rbuf = nb;
            c->rcap = c->rlen + (n - done);
        }
        memcpy(c->rbuf + c->rlen, p + done, n - done);
        c->rlen += n - done;
    }
    http_conn_process(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    http_conn_t *c = st->data;
    if (nread == 0 || nread == UV_ENOBUFS) {
        if (nread == UV_ENOBUFS)
            http_conn_update_reading(c);
        return;
    }
    if (nread < 0) {
        if (c->lingering || nread != UV_EOF) {
            http_conn_close(c);
            return;
        }
        c->eof = 1;
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
        http_conn_process(c);
        return;
    }
    if (c->lingering)
        return;
    if (c->direct && buf->base == c->direct) {
        c->direct = NULL;
        conn_parse_direct(c, buf->base, (size_t)nread);
        return;
    }
    c->rlen += (size_t)nread;
    http_conn_process(c);
}

void http_conn_update_reading(http_conn_t *c)
{
    int want;
    if (c->closing || c->eof || c->shut)
        want = c->lingering && !c->closing;
    else if (c->cur && c->cur->paused)
        want = 0;
    else
        want = c->rlen < c->rcap || c->roff > 0 || c->want_rcap > c->rcap;
    if (c->lingering)
        c->roff = c->rlen = 0;
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = 1;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

/* ---- timers ----------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    http_conn_t *c = t->data;
    if (!c->lingering && c->in_head && c->cur) {
        http_conn_fail(c, 408, "request timeout");
        return;
    }
    http_conn_close(c);
}

/* Header timeout while a head is arriving, idle timeout while waiting for
 * a request or for body bytes, none while a handler works. */
static void conn_arm_timer(http_conn_t *c)
{
    if (c->closing || c->lingering)
        return;
    uint64_t ms = 0;
    int kind = 1;
    if (!c->cur && c->rlen > c->roff)
        kind = 2;
    else if (!c->cur)
        ms = c->rlen > c->roff ? c->srv->lim.header_timeout_ms : c->srv->lim.idle_timeout_ms;
    else if (c->in_head)
        kind = 2;
    else if (!c->cur->msg_done && !c->cur->paused)
        ms = c->srv->lim.idle_timeout_ms;
    if (kind == 2) {
        /* The head timeout runs from its first byte: trickling bytes must
         * not extend it. */
        if (c->timer_kind != 2 || !uv_is_active((uv_handle_t *)&c->timer))
            uv_timer_start(&c->timer, on_timer, c->srv->lim.header_timeout_ms, 0);
    } else if (ms) {
        uv_timer_start(&c->timer, on_timer, ms, 0);
    } else {
        kind = 0;
        uv_timer_stop(&c->timer);
    }
    c->timer_kind = kind;
}

/* ---- lifecycle -------------------------------------------------------- */

void http_conn_req_done(http_conn_t *c)
{
    if (c->job)
        return; /* on_file_done comes back here once the range is sent */
    http_req_t *r = c->cur;
    c->cur = NULL;
    int keep = r->keepalive;
    r->conn = NULL;
    r->conn_ref = 0;
    http_req_release(r);
    c->err_status = 0;
    c->err_msg = NULL;
    if (c->rcap > HTTP_RBUF_SMALL)
        c->want_rcap = HTTP_RBUF_SMALL;
    if (!keep || c->srv->closing) {
        c->want_close = 1;
        if (c->nwrites == 0)
            http_conn_close(c);
        else
            http_conn_update_reading(c);
        return;
    }
    if (!c->in_process)
        http_conn_process(c);
}

void http_conn_fail(http_conn_t *c, int status, const char *msg)
{
    http_req_t *r = c->cur;
    int started = r && r->started && !r->finished;
    if (r)
        req_abandon(c, r);
    if (c->closing)
        return;
    if (started) {
        http_conn_close(c);
        return;
    }
    http_conn_write_error(c, status, msg, 1);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    http_conn_t *c = req->data;
    free(req);
    if (status < 0 || c->closing) {
        http_conn_close(c);
        return;
    }
    /* Read and drop what the client still sends, so close(2) does not
     * reset the connection before it has read our answer. */
    c->lingering = 1;
    uv_timer_start(&c->timer, on_timer, HTTP_LINGER_MS, 0);
    c->eof = 0;
    http_conn_update_reading(c);
}

/* Called when the last write is done and the connection must end. */
void http_conn_close(http_conn_t *c)
{
    if (c->closing)
        return;
    if (c->want_close && !c->shut && c->nwrites == 0 && !c->job && !c->eof && !c->srv->closing &&
        (!c->cur || c->cur->finished)) {
        uv_shutdown_t *sr = malloc(sizeof(*sr));
        if (sr) {
            sr->data = c;
            c->shut = 1;
            if (c->reading) {
                uv_read_stop((uv_stream_t *)&c->tcp);
                c->reading = 0;
            }
            uv_timer_stop(&c->timer);
            if (uv_shutdown(sr, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
                return;
            free(sr);
        }
    }
    c->closing = 1;
    if (c->cur)
        req_abandon(c, c->cur);
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    if (c->job && !c->job->queued) {
        close(c->job->fd);
        free(c->job);
        c->job = NULL;
    }
    if (c->job) {
        /* The worker still uses the socket: close once it returns. */
        atomic_store(&c->job->cancel, 1);
        return;
    }
    http_conn_close_handles(c);
}

void http_conn_close_handles(http_conn_t *c)
{
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}


static void on_conn_closed(uv_handle_t *h)
{
    http_conn_t *c = h->data;
    if (--c->handles > 0)
        return;
    http_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    free(c->rbuf);
    free(c);
    server_handle_gone(s);
}

static void on_anchor_closed(uv_handle_t *h)
{
    server_handle_gone(h->data);
}

static void server_handle_gone(http_server_t *s)
{
    if (--s->open_handles > 0)
        return;
    void (*cb)(void *) = s->close_cb;
    void *ud = s->close_ud;
    free(s);
    if (cb)
        cb(ud);
}

static void on_listener_closed(uv_handle_t *h)
{
    http_server_t *s = h->data;
    free(h);
    server_handle_gone(s);
}

void http_server_anchor_close(http_server_t *s)
{
    for (int i = 0; i < s->nlisteners; i++)
        uv_close((uv_handle_t *)s->listeners[i], on_listener_closed);
    s->nlisteners = 0;
    uv_close((uv_handle_t *)&s->anchor, on_anchor_closed);
}


static void on_reject_closed(uv_handle_t *h) { free(h); }

static void addr_str(const struct sockaddr_storage *ss, char *out, size_t cap, int with_port)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    }
    if (!with_port)
        snprintf(out, cap, "%s", ip);
    else if (ss->ss_family == AF_INET6)
        snprintf(out, cap, "[%s]:%d", ip, port);
    else
        snprintf(out, cap, "%s:%d", ip, port);
}

void http_conn_accept(http_server_t *s, uv_stream_t *listener)
{
    if (s->nconns >= s->lim.max_connections) {
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t)
            return;
        uv_tcp_init(s->loop, t);
        uv_accept(listener, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, on_reject_closed);
        return;
    }
    http_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->rbuf = malloc(HTTP_RBUF_SMALL);
    if (!c->rbuf) {
        free(c);
        return;
    }
    c->rcap = HTTP_RBUF_SMALL;
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    s->open_handles++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        uv_close((uv_handle_t *)&c->timer, on_conn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        addr_str(&ss, c->peer, sizeof(c->peer), 1);
    len = sizeof(ss);
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        addr_str(&ss, c->local_ip, sizeof(c->local_ip), 0);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    http_conn_update_reading(c);
    conn_arm_timer(c);
}
