/* Internals shared by http.c (server, accessors), http_conn.c (reading and
 * parsing) and http_resp.c (writing). Not part of the api module's contract.
 *
 * Ownership of a request: the connection holds it while it is the
 * connection's current request (conn_ref); the handler holds it from
 * on_request, or from on_headers when it installs a body sink (handler_ref),
 * until it finishes it. The request is freed when neither holds it, so a
 * handler that finishes late (timer, work pool) never touches freed memory,
 * and a connection that goes away never frees a request a handler still
 * holds. */
#ifndef OX_API_HTTP_INT_H
#define OX_API_HTTP_INT_H

#include <http_parser.h>
#include <stdatomic.h>

#include "api/http.h"
#include "common/buf.h"

#define HTTP_RBUF_SMALL (16u * 1024u)   /* head-only traffic */
#define HTTP_RBUF_BIG (1024u * 1024u)   /* bodies: uploads run at memory speed */
#define HTTP_LINGER_MS 2000             /* drain the client's unread bytes before close */
#define HTTP_MAX_LISTENERS 8

typedef struct http_conn http_conn_t;

struct http_server {
    uv_loop_t *loop;
    http_limits_t lim;
    http_callbacks_t cb;
    uv_tcp_t *listeners[HTTP_MAX_LISTENERS];
    int nlisteners;
    int port;
    uv_timer_t anchor;      /* closed last, so close_cb never runs synchronously */
    http_conn_t *conns;     /* doubly linked list of live connections */
    size_t nconns;
    int open_handles;       /* listeners + connections + anchor still to close */
    uint64_t file_bytes;    /* sent by http_respond_file, for status */
    int closing;
    void (*close_cb)(void *ud);
    void *close_ud;
};

/* A file range being sent with sendfile(2) in the work pool. */
typedef struct http_file_job {
    uv_work_t work;
    http_conn_t *conn;
    int sock;
    int fd;
    uint64_t offset;
    uint64_t length;
    uint64_t sent;          /* by the worker */
    uint64_t stall_ms;
    atomic_int cancel;
    int queued;             /* in the work pool (else waiting for the head write) */
    int err;                /* 0 or negative errno from the worker */
} http_file_job_t;

struct http_req {
    http_conn_t *conn;      /* NULL once the client is gone or the request is done */
    unsigned conn_ref : 1, handler_ref : 1;
    unsigned closed : 1;        /* client went away before the request finished */
    unsigned finished : 1;      /* handler finished it (response complete or queued) */
    unsigned started : 1;       /* response head sent */
    unsigned msg_done : 1;      /* parser saw the end of the body */
    unsigned dispatched : 1;    /* on_request called */
    unsigned streaming : 1;     /* chunked (or close-delimited for HTTP/1.0) body */
    unsigned chunked_out : 1;
    unsigned is_head : 1;
    unsigned keepalive : 1;
    unsigned expect_continue : 1;
    unsigned discard_body : 1;  /* responded before the body ended */
    unsigned paused : 1;
    unsigned dispatch_on_resume : 1;
    unsigned http10 : 1;

    char method[24];
    ox_buf_t url;           /* request target as sent */
    char *raw_path;         /* own allocations below */
    char *path;
    char *query;
    ox_buf_t hbuf;          /* name\0value\0 ... */
    size_t *hoff;           /* pairs of offsets into hbuf */
    size_t nhdr, hcap;
    ox_buf_t body;
    int64_t content_length;

    http_body_data_cb sink;
    void *sink_ud;
    http_body_room_cb room; /* may be NULL */
    void (*close_cb)(http_req_t *r, void *ud);
    void *close_ud;
    void *data;
    ox_buf_t resp_hdrs;     /* extra response header lines */

    http_callbacks_t cb;    /* copied so the request outlives the server */
    char peer[64];
    char local_ip[48];
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    http_server_t *srv;
    http_conn_t *prev, *next;
    http_parser parser;
    char *rbuf;
    size_t rcap, roff, rlen;   /* unparsed bytes are rbuf[roff, rlen) */
    size_t want_rcap;
    char *direct;           /* a read lands in the body sink's room, not rbuf */
    http_req_t *cur;
    http_file_job_t *job;      /* sendfile in flight */
    size_t nwrites;            /* uv_write requests in flight */
    size_t pending;            /* body bytes queued and not yet written */
    size_t head_bytes;
    int timer_kind;            /* 0 none, 1 idle, 2 head */
    int last_hdr_cb;           /* 0 none, 1 field, 2 value */
    int err_status;            /* set by a parser callback that failed */
    const char *err_msg;
    int handles;               /* tcp + timer not yet closed */
    unsigned reading : 1, in_process : 1, closing : 1, want_close : 1, eof : 1;
    unsigned lingering : 1, shut : 1, stop_parsing : 1, in_head : 1;
    char peer[64];
    char local_ip[48];
};

/* http_conn.c */
void http_conn_accept(http_server_t *s, uv_stream_t *listener);
void http_conn_close(http_conn_t *c);
/* Closes tcp and timer; the connection is freed when both are closed. */
void http_conn_close_handles(http_conn_t *c);
/* Closes listeners and the anchor handle (http_server_close). */
void http_server_anchor_close(http_server_t *s);
void http_conn_process(http_conn_t *c);
void http_conn_update_reading(http_conn_t *c);
void http_conn_req_done(http_conn_t *c);
void http_conn_fail(http_conn_t *c, int status, const char *msg);
void http_req_release(http_req_t *r);

/* http_resp.c */
/* Queues n bytes (copied) on the connection; body_n of them count as pending
 * body bytes. Returns 0 or OX_ECANCELED/OX_ENOMEM. */
int http_conn_write(http_conn_t *c, const void *head, size_t head_n, const void *body,
                    size_t body_n, const void *tail, size_t tail_n);
/* Writes a complete JSON error response produced by the core itself. */
void http_conn_write_error(http_conn_t *c, int status, const char *msg, int close);
void http_finish(http_req_t *r);

#endif
