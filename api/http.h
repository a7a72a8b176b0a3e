/* HTTP/1.1 server on a libuv loop (internal to api/).
 *
 * Owns listening sockets and connections: parsing (http-parser), keep-alive,
 * pipelined requests answered in order, chunked streaming responses, limits on
 * header size and buffered body size, idle and header timeouts, HEAD without a
 * body, `Expect: 100-continue`. Policy (routes, CORS, Host check, JSON errors)
 * lives in the callbacks the api module installs.
 *
 * Lifecycle of a request: the server calls on_headers once the head is
 * parsed; the callback either leaves the body to be buffered (default) or
 * installs a body sink (http_req_set_body_sink) to stream it. When the body is
 * complete the server calls on_request. From then on the handler owns the
 * request until it finishes it with http_respond* or http_stream_end; it may
 * do so later, from the loop thread, after async work. If the client goes away
 * first, the on_close callback (if any) runs, later writes return
 * OX_ECANCELED, and the handler must still finish the request so its memory is
 * released. All calls are loop-thread only. */
#ifndef OX_API_HTTP_H
#define OX_API_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct http_server http_server_t;
typedef struct http_req http_req_t;

typedef struct http_limits {
    size_t max_header_bytes;   /* whole head; 431 when exceeded (default 64 KiB) */
    size_t max_body_bytes;     /* buffered bodies; 413 when exceeded (default 32 MiB) */
    uint64_t header_timeout_ms;/* head must arrive within this (default 30 s) */
    uint64_t idle_timeout_ms;  /* keep-alive idle close (default 120 s) */
    size_t max_connections;    /* further accepts are closed at once (default 4096) */
} http_limits_t;

typedef struct http_callbacks {
    /* Head parsed; may install a body sink or respond at once (then the body is
     * discarded). */
    void (*on_headers)(http_req_t *req, void *ud);
    /* Body complete (buffered, or the sink saw its end). */
    void (*on_request)(http_req_t *req, void *ud);
    void *ud;
} http_callbacks_t;

/* Creates a server on loop. limits may be NULL (defaults). *out is owned by
 * the caller and released by http_server_close. */
int http_server_new(uv_loop_t *loop, const http_limits_t *limits, const http_callbacks_t *cb,
                    http_server_t **out);
/* Binds and listens on "host:port" (IPv4 or [IPv6]); port 0 picks one. May be
 * called several times. */
int http_server_listen(http_server_t *s, const char *host, int port);
/* Port actually bound by the first listener (after port 0). */
int http_server_port(const http_server_t *s);
/* Bytes of files sent so far (http_respond_file bodies, blobs mostly). */
uint64_t http_server_file_bytes(const http_server_t *s);
/* Stops accepting, closes every connection (in-flight handlers see their
 * requests cancelled) and frees the server once all handles are closed; cb
 * (may be NULL) runs then. */
void http_server_close(http_server_t *s, void (*cb)(void *ud), void *ud);

/* ---- request accessors (valid until the request is finished) ---------- */
const char *http_req_method(const http_req_t *r);    /* "GET", "POST", ... */
const char *http_req_path(const http_req_t *r);      /* percent-decoded, no query */
const char *http_req_raw_path(const http_req_t *r);  /* as sent, no query */
const char *http_req_query(const http_req_t *r);     /* raw query without '?', or "" */
/* Case-insensitive header look-up; first value or NULL. */
const char *http_req_header(const http_req_t *r, const char *name);
/* Buffered body (NUL-terminated, len excludes the NUL); NULL/0 when a sink was
 * used or there was no body. */
const char *http_req_body(const http_req_t *r, size_t *len);
/* -1 when the request had no Content-Length (chunked or none). */
int64_t http_req_content_length(const http_req_t *r);
int http_req_is_head(const http_req_t *r);
/* Peer address "ip:port" and the local address the request came in on. */
const char *http_req_peer(const http_req_t *r);
const char *http_req_local_ip(const http_req_t *r);
/* Per-request slot for the handler. */
void http_req_set_data(http_req_t *r, void *data);
void *http_req_data(const http_req_t *r);
/* Called once if the client disconnects before the request is finished. */
void http_req_on_close(http_req_t *r, void (*cb)(http_req_t *r, void *ud), void *ud);
int http_req_is_closed(const http_req_t *r);

/* ---- streamed request bodies (blob uploads) ----------------------------- */
/* on_data gets each piece of body in order (the bytes are only valid during
 * the call); return 0 to go on or a negative code to abort the request (the
 * handler must then still respond, from on_request or at once). Call from
 * on_headers only. */
typedef int (*http_body_data_cb)(http_req_t *r, const void *p, size_t n, void *ud);
void http_req_set_body_sink(http_req_t *r, http_body_data_cb on_data, void *ud);
/* Optional, after the sink: room(r, &len, ud) offers memory where the next
 * body bytes may be received directly (up to len); on_data then gets that
 * very pointer. NULL: read into the connection's own buffer as usual. */
typedef void *(*http_body_room_cb)(http_req_t *r, size_t *len, void *ud);
void http_req_set_body_room(http_req_t *r, http_body_room_cb room);
/* Backpressure: stop/resume reading the socket (e.g. while a write of the
 * previous chunk runs in the work pool). */
void http_req_pause(http_req_t *r);
void http_req_resume(http_req_t *r);

/* ---- responses ---------------------------------------------------------- */
/* Adds a response header (copied) before the response starts. */
int http_resp_header(http_req_t *r, const char *name, const char *value);
/* Complete response with body (copied). Finishes the request. For HEAD the
 * body is not sent but Content-Length is. */
int http_respond(http_req_t *r, int status, const char *content_type, const void *body,
                 size_t len);
/* Like http_respond but Content-Length is given and no body is sent (HEAD of
 * a large blob). */
int http_respond_head(http_req_t *r, int status, const char *content_type, uint64_t length);
/* Starts a response with a known length whose body comes from a file range
 * sent with zero copy (sendfile). Takes ownership of fd (closed when done). */
int http_respond_file(http_req_t *r, int status, const char *content_type, int fd,
                      uint64_t offset, uint64_t length);

/* Chunked streaming (NDJSON, SSE). begin sends the head; write queues a chunk
 * (copied) and returns OX_ECANCELED once the client is gone; end sends the
 * last chunk and finishes the request. write_pending tells how many bytes are
 * queued and not yet on the socket, for producers that want backpressure. */
int http_stream_begin(http_req_t *r, int status, const char *content_type);
int http_stream_write(http_req_t *r, const void *p, size_t n);
size_t http_stream_pending(const http_req_t *r);
int http_stream_end(http_req_t *r);

/* Reason phrase for a status ("Not Found"). */
const char *http_status_text(int status);

#endif
