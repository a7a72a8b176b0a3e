/* Server object, listeners, request accessors and body-sink control. The
 * connection machinery is in http_conn.c, responses in http_resp.c. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/http_int.h"
#include "common/err.h"
#include "common/log.h"

int http_server_new(uv_loop_t *loop, const http_limits_t *limits, const http_callbacks_t *cb,
                    http_server_t **out)
{
    http_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return OX_ENOMEM;
    s->loop = loop;
    s->lim = (http_limits_t){64 * 1024, 32u * 1024 * 1024, 30000, 120000, 4096};
    if (limits) {
        if (limits->max_header_bytes)
            s->lim.max_header_bytes = limits->max_header_bytes;
        if (limits->max_body_bytes)
            s->lim.max_body_bytes = limits->max_body_bytes;
        if (limits->header_timeout_ms)
            s->lim.header_timeout_ms = limits->header_timeout_ms;
        if (limits->idle_timeout_ms)
            s->lim.idle_timeout_ms = limits->idle_timeout_ms;
        if (limits->max_connections)
            s->lim.max_connections = limits->max_connections;
    }
    if (cb)
        s->cb = *cb;
    uv_timer_init(loop, &s->anchor);
    s->anchor.data = s;
    s->open_handles = 1;
    /* A peer that resets mid-write must give us EPIPE, not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    *out = s;
    return 0;
}

static void on_connection(uv_stream_t *l, int status)
{
    http_server_t *s = l->data;
    if (status < 0 || s->closing) {
        OX_WARN("http: accept failed: %s", uv_strerror(status));
        return;
    }
    http_conn_accept(s, l);
}

int http_server_listen(http_server_t *s, const char *host, int port)
{
    if (s->closing || s->nlisteners >= HTTP_MAX_LISTENERS || port < 0 || port > 65535)
        return OX_EINVAL;
    struct sockaddr_storage ss;
    char h[INET6_ADDRSTRLEN + 2];
    size_t hl = strlen(host);
    int rc;
    if (hl >= sizeof(h))
        return OX_EINVAL;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memcpy(h, host + 1, hl - 2);
        h[hl - 2] = 0;
        rc = uv_ip6_addr(h, port, (struct sockaddr_in6 *)&ss);
    } else if (strchr(host, ':')) {
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    } else {
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    }
    if (rc)
        return OX_EINVAL;
    uv_tcp_t *t = malloc(sizeof(*t));
    if (!t)
        return OX_ENOMEM;
    uv_tcp_init(s->loop, t);
    t->data = s;
    rc = uv_tcp_bind(t, (struct sockaddr *)&ss, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)t, 511, on_connection);
    s->listeners[s->nlisteners++] = t;
    s->open_handles++;
    if (rc) {
        OX_ERROR("http: cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
        return rc == UV_EADDRINUSE ? OX_EBUSY : OX_ENET;
    }
    if (s->nlisteners == 1 || !s->port) {
        int len = sizeof(ss);
        if (uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len) == 0)
            s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);
    }
    return 0;
}

int http_server_port(const http_server_t *s) { return s->port; }

uint64_t http_server_file_bytes(const http_server_t *s) { return s->file_bytes; }

void http_server_close(http_server_t *s, void (*cb)(void *ud), void *ud)
{
    if (s->closing)
        return;
    s->closing = 1;
    s->close_cb = cb;
    s->close_ud = ud;
    for (http_conn_t *c = s->conns; c; c = c->next)
        http_conn_close(c);
    /* Listeners and the anchor; the server is freed by whichever handle
     * closes last (file jobs may delay a connection). */
    http_server_anchor_close(s);
}

/* ---- accessors ---------------------------------------------------------- */

const char *http_req_method(const http_req_t *r) { return r->method; }
const char *http_req_path(const http_req_t *r) { return r->path ? r->path : ""; }
const char *http_req_raw_path(const http_req_t *r) { return r->raw_path ? r->raw_path : ""; }
const char *http_req_query(const http_req_t *r) { return r->query ? r->query : ""; }

const char *http_req_header(const http_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->nhdr; i++) {
        if (!r->hoff[2 * i + 1])
            continue;
        if (strcasecmp(r->hbuf.data + r->hoff[2 * i], name) == 0)
            return r->hbuf.data + r->hoff[2 * i + 1];
    }
    return NULL;
}

const char *http_req_body(const http_req_t *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    return r->body.len ? r->body.data : NULL;
}

int64_t http_req_content_length(const http_req_t *r) { return r->content_length; }
int http_req_is_head(const http_req_t *r) { return r->is_head; }
const char *http_req_peer(const http_req_t *r) { return r->peer; }
const char *http_req_local_ip(const http_req_t *r) { return r->local_ip; }
void http_req_set_data(http_req_t *r, void *data) { r->data = data; }
void *http_req_data(const http_req_t *r) { return r->data; }

void http_req_on_close(http_req_t *r, void (*cb)(http_req_t *r, void *ud), void *ud)
{
    r->close_cb = cb;
    r->close_ud = ud;
}

int http_req_is_closed(const http_req_t *r) { return r->closed; }

void http_req_set_body_room(http_req_t *r, http_body_room_cb room)
{
    if (r->sink)
        r->room = room;
}

void http_req_set_body_sink(http_req_t *r, http_body_data_cb on_data, void *ud)
{
    if (r->msg_done || r->started || r->finished)
        return;
    r->sink = on_data;
    r->sink_ud = ud;
    /* The sink may hand the request to async work: from now on the
     * handler holds it until it finishes it. */
    r->handler_ref = 1;
}

void http_req_pause(http_req_t *r)
{
    if (r->paused || r->finished)
        return;
    r->paused = 1;
    http_conn_t *c = r->conn;
    if (!c)
        return;
    if (c->in_process)
        http_parser_pause(&c->parser, 1);
    http_conn_update_reading(c);
    uv_timer_stop(&c->timer);
}

void http_req_resume(http_req_t *r)
{
    if (!r->paused)
        return;
    r->paused = 0;
    if (r->closed) {
        if (r->dispatch_on_resume && !r->dispatched) {
            r->dispatch_on_resume = 0;
            r->dispatched = 1;
            if (r->cb.on_request)
                r->cb.on_request(r, r->cb.ud);
        }
        return;
    }
    http_conn_t *c = r->conn;
    if (c && !c->in_process && !c->closing)
        http_conn_process(c);
}

const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Requested Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 507: return "Insufficient Storage";
    default: return status < 200 ? "Informational" : status < 300 ? "Success"
                    : status < 400 ? "Redirection" : status < 500 ? "Client Error"
                    : "Server Error";
    }
}
