#include "common/curluv.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/curlfn.h"
#include "common/err.h"
#include "common/log.h"

/* Requests move QUEUED -> RUNNING -> (freed). Only the kick timer and the
 * completion scan touch the multi handle, never a callback that runs inside
 * curl, which libcurl forbids. */
enum { REQ_QUEUED, REQ_RUNNING };

/* Every curl call goes through the table of the dlopened libcurl (see
 * common/curlfn.h); curluv_new loaded it, so it is never NULL here. */
#define CF ox_curl()

struct curluv_req {
    curluv_t *cu;
    struct curluv_req *prev, *next;
    int state;
    int canceled;
    int abort_code;          /* from on_data, 0 = none */
    CURL *easy;
    struct curl_slist *hdrs;
    ox_buf_t resp_hdrs;      /* raw header lines of the last response */
    char *hdr_val;           /* last value handed out by curluv_req_header */
    char errbuf[CURL_ERROR_SIZE];
    curluv_data_cb on_data;
    curluv_progress_cb on_progress;
    curluv_done_cb on_done;
    void *ud;
};

typedef struct sock {
    uv_poll_t poll;
    curluv_t *cu;
    curl_socket_t fd;
    struct sock *prev, *next;
} sock_t;

struct curluv {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;        /* curl's own timeout */
    uv_timer_t kick;         /* deferred adds and cancels */
    curluv_req_t *reqs;      /* every live request */
    sock_t *socks;           /* polls not yet closing */
    size_t n_reqs;
    int closing;
    int depth;               /* >0 while dispatching a loop callback */
    int close_pending;       /* curluv_close called from inside a callback */
    int open_handles;        /* handles whose close callback is pending */
    void (*close_cb)(void *);
    void *close_ud;
};

static void list_unlink_req(curluv_req_t *r)
{
    curluv_t *cu = r->cu;
    if (r->prev)
        r->prev->next = r->next;
    else
        cu->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
    cu->n_reqs--;
}

static void on_handle_closed(uv_handle_t *h)
{
    curluv_t *cu = h->data;
    if (h->type == UV_POLL)
        free(h);  /* sock_t starts with its poll handle */
    if (--cu->open_handles == 0) {
        void (*cb)(void *) = cu->close_cb;
        void *ud = cu->close_ud;
        free(cu);
        if (cb)
            cb(ud);
    }
}

static void sock_close(sock_t *s)
{
    curluv_t *cu = s->cu;
    if (s->prev)
        s->prev->next = s->next;
    else
        cu->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    s->poll.data = cu;
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static int map_result(curluv_req_t *r, CURLcode cc)
{
    if (r->abort_code)
        return r->abort_code;
    if (r->canceled)
        return OX_ECANCELED;
    switch (cc) {
    case CURLE_OK: return 0;
    case CURLE_OPERATION_TIMEDOUT: return OX_ETIMEOUT;
    case CURLE_OUT_OF_MEMORY: return OX_ENOMEM;
    default: return OX_ENET;
    }
}

/* Runs on_done and frees r. The multi handle no longer holds r->easy. */
static void req_finish(curluv_req_t *r, int result)
{
    list_unlink_req(r);
    if (r->on_done)
        r->on_done(r, result, r->ud);
    CF->easy_cleanup(r->easy);
    CF->slist_free_all(r->hdrs);
    ox_buf_free(&r->resp_hdrs);
    free(r->hdr_val);
    free(r);
}

static void close_now(curluv_t *cu);

/* Ends a loop callback; a close requested inside it happens now. */
static void dispatch_end(curluv_t *cu)
{
    if (--cu->depth == 0 && cu->close_pending) {
        cu->close_pending = 0;
        close_now(cu);
    }
}

static void check_done(curluv_t *cu)
{
    CURLMsg *msg;
    int left;
    while (!cu->closing && (msg = CF->multi_info_read(cu->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        curluv_req_t *r = NULL;
        CF->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode cc = msg->data.result;
        CF->multi_remove_handle(cu->multi, r->easy);
        req_finish(r, map_result(r, cc));
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_t *s = (sock_t *)p;
    curluv_t *cu = s->cu;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    int running;
    cu->depth++;
    CF->multi_socket_action(cu->multi, s->fd, flags, &running);
    check_done(cu);
    dispatch_end(cu);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    curluv_t *cu = userp;
    sock_t *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            CF->multi_assign(cu->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (!s) {
        if (cu->closing)
            return 0;
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->cu = cu;
        s->fd = fd;
        if (uv_poll_init_socket(cu->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        cu->open_handles++;
        s->next = cu->socks;
        if (cu->socks)
            cu->socks->prev = s;
        cu->socks = s;
        CF->multi_assign(cu->multi, fd, s);
    }
    int ev = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev |= UV_WRITABLE;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    curluv_t *cu = t->data;
    int running;
    cu->depth++;
    CF->multi_socket_action(cu->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(cu);
    dispatch_end(cu);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    curluv_t *cu = userp;
    if (cu->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&cu->timer);
    else
        uv_timer_start(&cu->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* Applies queued adds and cancels, one at a time because each on_done may
 * change the list. */
static void on_kick(uv_timer_t *t)
{
    curluv_t *cu = t->data;
    cu->depth++;
    while (!cu->closing) {
        curluv_req_t *r = cu->reqs;
        while (r && !(r->state == REQ_QUEUED || r->canceled))
            r = r->next;
        if (!r)
            break;
        if (r->canceled) {
            if (r->state == REQ_RUNNING)
                CF->multi_remove_handle(cu->multi, r->easy);
            req_finish(r, OX_ECANCELED);
        } else if (CF->multi_add_handle(cu->multi, r->easy) != CURLM_OK) {
            req_finish(r, OX_ENOMEM);
        } else {
            r->state = REQ_RUNNING;
        }
    }
    check_done(cu);
    dispatch_end(cu);
}

static void kick(curluv_t *cu)
{
    if (!cu->closing)
        uv_timer_start(&cu->kick, on_kick, 0, 0);
}

int curluv_new(uv_loop_t *loop, curluv_t **out)
{
    int lrc = ox_curl_load();
    if (lrc != 0) {
        OX_ERROR("HTTP client unavailable: %s", ox_curl_load_error());
        return lrc;
    }
    curluv_t *cu = calloc(1, sizeof(*cu));
    if (!cu)
        return OX_ENOMEM;
    cu->loop = loop;
    cu->multi = CF->multi_init();
    if (!cu->multi) {
        free(cu);
        return OX_ENOMEM;
    }
    CF->multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    CF->multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu);
    CF->multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    CF->multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu);
    uv_timer_init(loop, &cu->timer);
    uv_timer_init(loop, &cu->kick);
    cu->timer.data = cu;
    cu->kick.data = cu;
    cu->open_handles = 2;
    *out = cu;
    return 0;
}

void curluv_close(curluv_t *cu, void (*cb)(void *ud), void *ud)
{
    cu->close_cb = cb;
    cu->close_ud = ud;
    if (cu->depth > 0) {
        /* Inside one of our callbacks curl may still be on the stack: cancel
         * everything once it has returned. */
        cu->closing = 1;
        cu->close_pending = 1;
        return;
    }
    close_now(cu);
}

static void close_now(curluv_t *cu)
{
    cu->closing = 1;
    while (cu->reqs) {
        curluv_req_t *r = cu->reqs;
        if (r->state == REQ_RUNNING)
            CF->multi_remove_handle(cu->multi, r->easy);
        r->canceled = 1;
        req_finish(r, OX_ECANCELED);
    }
    CF->multi_cleanup(cu->multi);
    cu->multi = NULL;
    while (cu->socks)
        sock_close(cu->socks);
    uv_timer_stop(&cu->timer);
    uv_timer_stop(&cu->kick);
    uv_close((uv_handle_t *)&cu->timer, on_handle_closed);
    uv_close((uv_handle_t *)&cu->kick, on_handle_closed);
}

static size_t on_curl_write(char *p, size_t size, size_t n, void *ud)
{
    curluv_req_t *r = ud;
    size_t len = size * n;
    if (r->canceled)
        return 0;
    if (r->on_data) {
        int rc = r->on_data(r, p, len, r->ud);
        if (rc < 0) {
            r->abort_code = rc;
            return 0;
        }
    }
    return len;
}

static size_t on_curl_header(char *p, size_t size, size_t n, void *ud)
{
    curluv_req_t *r = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
        ox_buf_reset(&r->resp_hdrs);  /* a new response (redirect, 100) */
    if (ox_buf_append(&r->resp_hdrs, p, len) != 0)
        return 0;
    return len;
}

static int on_curl_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                            curl_off_t ulnow)
{
    (void)ultotal;
    (void)ulnow;
    curluv_req_t *r = ud;
    if (r->canceled)
        return 1;
    if (r->on_progress)
        r->on_progress(r, (uint64_t)dltotal, (uint64_t)dlnow, r->ud);
    return 0;
}

int curluv_start(curluv_t *cu, const curluv_opts_t *o, curluv_req_t **out)
{
    if (!o || !o->url)
        return OX_EINVAL;
    if (cu->closing)
        return OX_ESTATE;
    curluv_req_t *r = calloc(1, sizeof(*r));
    if (!r)
        return OX_ENOMEM;
    r->easy = CF->easy_init();
    if (!r->easy) {
        free(r);
        return OX_ENOMEM;
    }
    CURL *e = r->easy;
    int rc = 0;
    for (const char *const *h = o->headers; h && *h; h++) {
        struct curl_slist *n = CF->slist_append(r->hdrs, *h);
        if (!n) {
            rc = OX_ENOMEM;
            goto fail;
        }
        r->hdrs = n;
    }
    const char *method = o->method ? o->method : "GET";
    CF->easy_setopt(e, CURLOPT_URL, o->url);
    CF->easy_setopt(e, CURLOPT_PRIVATE, r);
    CF->easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    CF->easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    CF->easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write);
    CF->easy_setopt(e, CURLOPT_WRITEDATA, r);
    CF->easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header);
    CF->easy_setopt(e, CURLOPT_HEADERDATA, r);
    CF->easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_curl_progress);
    CF->easy_setopt(e, CURLOPT_XFERINFODATA, r);
    CF->easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    CF->easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    CF->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000L);
    if (o->timeout_ms > 0)
        CF->easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (o->stall_timeout_ms >= 0) {
        long secs = o->stall_timeout_ms > 0 ? (o->stall_timeout_ms + 999) / 1000 : 60;
        CF->easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        CF->easy_setopt(e, CURLOPT_LOW_SPEED_TIME, secs);
    }
    if (o->max_recv_bps > 0)
        CF->easy_setopt(e, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)o->max_recv_bps);
    /* Every URL here comes from a registry or a peer: never let one of
     * them (or a redirect) make curl read files or speak other protocols. */
    CF->easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    CF->easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (o->follow_redirects) {
        CF->easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        CF->easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    }
    if (o->range)
        CF->easy_setopt(e, CURLOPT_RANGE, o->range);
    if (strcmp(method, "HEAD") == 0) {
        CF->easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        CF->easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (o->body || strcmp(method, "POST") == 0) {
        CF->easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        CF->easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body ? (const char *)o->body : "");
        if (strcmp(method, "POST") != 0)
            CF->easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    r->cu = cu;
    r->state = REQ_QUEUED;
    r->on_data = o->on_data;
    r->on_progress = o->on_progress;
    r->on_done = o->on_done;
    r->ud = o->ud;
    r->next = cu->reqs;
    if (cu->reqs)
        cu->reqs->prev = r;
    cu->reqs = r;
    cu->n_reqs++;
    kick(cu);
    if (out)
        *out = r;
    return 0;
fail:
    CF->easy_cleanup(r->easy);
    CF->slist_free_all(r->hdrs);
    free(r);
    return rc;
}

void curluv_req_cancel(curluv_req_t *r)
{
    if (r->canceled)
        return;
    r->canceled = 1;
    kick(r->cu);
}

long curluv_req_status(const curluv_req_t *r)
{
    long code = 0;
    CF->easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

const char *curluv_req_header(curluv_req_t *r, const char *name)
{
    size_t nl = strlen(name);
    const char *p = r->resp_hdrs.data;
    const char *end = p ? p + r->resp_hdrs.len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            const char *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            char *copy = strndup(v, (size_t)(ve - v));
            if (!copy)
                return NULL;
            free(r->hdr_val);
            r->hdr_val = copy;
            return copy;
        }
        p = eol + 1;
    }
    return NULL;
}

const char *curluv_req_url(const curluv_req_t *r)
{
    char *u = NULL;
    CF->easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &u);
    return u ? u : "";
}

const char *curluv_req_error(const curluv_req_t *r) { return r->errbuf; }

size_t curluv_active(const curluv_t *cu) { return cu->n_reqs; }
