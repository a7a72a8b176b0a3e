/* curluv: libcurl's multi interface driven by a libuv loop.
 *
 * A curluv_t owns one CURLM whose sockets are watched with uv_poll handles
 * and whose timeout is a uv_timer, so any number of HTTP transfers run on the
 * loop thread without blocking it. Domain-free: it knows nothing of
 * registries or models.
 *
 * Lifecycle of a request (libuv's request model): curluv_start copies what it
 * needs from the options and queues the transfer; it is added to curl on the
 * next loop tick. on_done runs exactly once, on the loop thread, with 0 when
 * an HTTP response was received completely (whatever its status: check
 * curluv_req_status) or a negative OX_E* code (OX_ENET for transport
 * failures, OX_ETIMEOUT, OX_ECANCELED after curluv_req_cancel or
 * curluv_close, or the code an on_data callback returned). The request is
 * freed right after on_done returns; the caller must drop its pointer then.
 *
 * Callbacks (on_data, on_progress, on_done) may start new requests and cancel
 * any request, including their own. All calls are loop-thread only. */
#ifndef OX_COMMON_CURLUV_H
#define OX_COMMON_CURLUV_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct curluv curluv_t;
typedef struct curluv_req curluv_req_t;

/* Body bytes in order, only valid during the call. Return 0 to go on, or a
 * negative OX_E* code to abort the transfer (on_done then gets that code). */
typedef int (*curluv_data_cb)(curluv_req_t *r, const void *p, size_t n, void *ud);
/* Download progress as curl reports it (dltotal 0 = unknown). */
typedef void (*curluv_progress_cb)(curluv_req_t *r, uint64_t dltotal, uint64_t dlnow, void *ud);
typedef void (*curluv_done_cb)(curluv_req_t *r, int result, void *ud);

typedef struct curluv_opts {
    const char *method;          /* "GET" (default when NULL), "HEAD", "POST", ... */
    const char *url;             /* required */
    const char *const *headers;  /* NULL-terminated "Name: value" lines, or NULL */
    const void *body;            /* request body (copied), may be NULL */
    size_t body_len;
    const char *range;           /* "a-b" for a Range request, or NULL */
    int follow_redirects;        /* follow 3xx Location (up to 10) */
    long connect_timeout_ms;     /* 0 = 10 s */
    long timeout_ms;             /* whole transfer, 0 = none */
    /* Abort when slower than 1 byte/s for this long (stalled peer), 0 = 60 s,
     * negative = never. */
    long stall_timeout_ms;
    /* Download cap in bytes/s for this transfer, 0 = none. Averaged over
     * time by curl: what already sits in socket buffers comes at once. */
    uint64_t max_recv_bps;
    curluv_data_cb on_data;      /* may be NULL: the body is discarded */
    curluv_progress_cb on_progress; /* may be NULL */
    curluv_done_cb on_done;      /* may be NULL */
    void *ud;
} curluv_opts_t;

/* Creates the driver on loop. *out is owned by the caller and released with
 * curluv_close. Returns OX_ENOMEM / OX_EIO, or OX_EUNSUPPORTED when libcurl
 * cannot be loaded (ox_curl_load_error says why). */
int curluv_new(uv_loop_t *loop, curluv_t **out);
/* Cancels every request (their on_done run with OX_ECANCELED: before this
 * returns, or, when called from inside a curluv callback, as soon as that
 * callback returns), closes all handles and frees cu once they are closed;
 * cb (may be NULL) runs then. cu must not be used after this call. */
void curluv_close(curluv_t *cu, void (*cb)(void *ud), void *ud);

/* Queues a transfer. On success *out (may be NULL) gets the request, valid
 * until its on_done returns. On failure (OX_EINVAL: no url; OX_ENOMEM)
 * on_done never runs. */
int curluv_start(curluv_t *cu, const curluv_opts_t *o, curluv_req_t **out);
/* Cancels r: its on_done runs with OX_ECANCELED on a later tick (or with its
 * real result if it had already finished in curl). Idempotent until on_done. */
void curluv_req_cancel(curluv_req_t *r);

/* ---- response accessors (valid from the first callback until on_done
 * returns) ---------------------------------------------------------------- */
/* HTTP status of the last response (after redirects), 0 if none yet. */
long curluv_req_status(const curluv_req_t *r);
/* Case-insensitive header of the last response; first value, trimmed, or
 * NULL. The string is valid until the next call on r or until r is freed. */
const char *curluv_req_header(curluv_req_t *r, const char *name);
/* URL the last response came from (after redirects); never NULL. */
const char *curluv_req_url(const curluv_req_t *r);
/* curl's words for a failed transfer ("" when none). */
const char *curluv_req_error(const curluv_req_t *r);
/* Number of requests started and not yet done (for leak checks). */
size_t curluv_active(const curluv_t *cu);

#endif
