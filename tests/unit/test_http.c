/* HTTP server core: a server runs on a loop in the test thread; a client
 * thread speaks raw bytes to it and records what came back; the test thread
 * asserts after the loop has closed every handle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "api/http.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/sha256.h"

/* ---- client side (runs in its own thread) ------------------------------ */

typedef struct cli {
    int fd;
    char buf[1 << 16];
    size_t len;
} cli_t;

typedef struct resp {
    int status;
    char head[8192];
    ox_buf_t body;
    int chunked;
    int64_t clen;
} resp_t;

static int cli_connect(cli_t *c, int port)
{
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return connect(c->fd, (struct sockaddr *)&a, sizeof(a));
}

static int cli_send(cli_t *c, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static int cli_sends(cli_t *c, const char *s) { return cli_send(c, s, strlen(s)); }

/* Fills the buffer with at least one more byte; 0 on EOF, -1 on error. */
static int cli_fill(cli_t *c)
{
    if (c->len == sizeof(c->buf))
        return -1;
    ssize_t k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (k <= 0)
        return k == 0 ? 0 : -1;
    c->len += (size_t)k;
    return 1;
}

static void cli_take(cli_t *c, void *out, size_t n)
{
    if (out)
        memcpy(out, c->buf, n);
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Reads until the buffer holds a line ending at CRLF; returns its length
 * including CRLF or -1. */
static ssize_t cli_line(cli_t *c)
{
    for (;;) {
        char *e = memmem(c->buf, c->len, "\r\n", 2);
        if (e)
            return e - c->buf + 2;
        if (cli_fill(c) <= 0)
            return -1;
    }
}

static const char *resp_header(const resp_t *r, const char *name)
{
    static __thread char val[512];
    size_t nl = strlen(name);
    const char *p = strstr(r->head, "\r\n");
    while (p && p[2]) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            const char *e = strstr(v, "\r\n");
            snprintf(val, sizeof(val), "%.*s", (int)(e - v), v);
            return val;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

/* Reads one response; no_body for HEAD. Decodes chunked framing. 0 or -1. */
static int cli_response(cli_t *c, resp_t *r, int no_body)
{
    ox_buf_free(&r->body);
    memset(r, 0, sizeof(*r));
    char *e;
    while (!(e = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (cli_fill(c) <= 0)
            return -1;
    size_t hl = (size_t)(e - c->buf) + 4;
    if (hl >= sizeof(r->head))
        return -1;
    cli_take(c, r->head, hl);
    r->head[hl] = 0;
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    const char *cl = resp_header(r, "Content-Length");
    r->clen = cl ? atoll(cl) : -1;
    const char *te = resp_header(r, "Transfer-Encoding");
    r->chunked = te && strcasecmp(te, "chunked") == 0;
    if (no_body || r->status == 100 || r->status == 204)
        return 0;
    if (r->chunked) {
        for (;;) {
            ssize_t ll = cli_line(c);
            if (ll < 0)
                return -1;
            char line[64];
            snprintf(line, sizeof(line), "%.*s", (int)ll, c->buf);
            cli_take(c, NULL, (size_t)ll);
            size_t n = strtoul(line, NULL, 16);
            while (c->len < n + 2)
                if (cli_fill(c) <= 0)
                    return -1;
            ox_buf_append(&r->body, c->buf, n);
            if (memcmp(c->buf + n, "\r\n", 2) != 0)
                return -1;
            cli_take(c, NULL, n + 2);
            if (n == 0)
                return 0;
        }
    }
    if (r->clen >= 0) {
        while (r->body.len < (size_t)r->clen) {
            if (c->len == 0 && cli_fill(c) <= 0)
                return -1;
            size_t n = c->len < (size_t)r->clen - r->body.len ? c->len : (size_t)r->clen - r->body.len;
            ox_buf_append(&r->body, c->buf, n);
            cli_take(c, NULL, n);
        }
        ox_buf_append(&r->body, "", 0);
        return 0;
    }
    return -1;
}

/* 1 when the server closed the connection (EOF or reset) within the
 * receive timeout. */
static int cli_sees_close(cli_t *c)
{
    char b[4096];
    for (;;) {
        ssize_t k = recv(c->fd, b, sizeof(b), 0);
        if (k == 0)
            return 1;
        if (k < 0)
            return errno == ECONNRESET;
    }
}

static void resp_free(resp_t *r) { ox_buf_free(&r->body); }

/* ---- fixture ------------------------------------------------------------ */

typedef struct fx fx_t;
typedef void (*client_fn)(fx_t *f);

struct fx {
    uv_loop_t loop;
    http_server_t *srv;
    uv_async_t done;
    pthread_t th;
    int port;
    client_fn client;
    int server_closed;
    /* what the client thread saw, checked by the test thread */
    int fails;
    char fail_msg[256];
    /* what the server side saw */
    int on_close_calls;
    int write_after_close;
    int late_done;
    int late_rc;
    int late_calls;
    int requests;
    char last_sink_hash[65];
    uint64_t sink_bytes;
    int sink_pauses;
    uint64_t room_direct; /* /roomsink: bytes read straight into the room */
    int room_bad_ptr;
    char file_path[64];
    int keep_fd;
    int pending_ok;
};

static fx_t *g_fx;

#define CHECK(f, cond)                                                                 \
    do {                                                                               \
        if (!(cond) && !(f)->fails++)                                                  \
            snprintf((f)->fail_msg, sizeof((f)->fail_msg), "%s:%d: %s", __FILE__, __LINE__, \
                     #cond);                                                           \
    } while (0)

static void *client_main(void *arg)
{
    fx_t *f = arg;
    f->client(f);
    uv_async_send(&f->done);
    return NULL;
}

static void on_server_closed(void *ud) { ((fx_t *)ud)->server_closed = 1; }

static void on_client_done(uv_async_t *a)
{
    fx_t *f = a->data;
    http_server_close(f->srv, on_server_closed, f);
    uv_close((uv_handle_t *)a, NULL);
}

static void on_headers(http_req_t *r, void *ud);
static void on_request(http_req_t *r, void *ud);

static void fx_run(fx_t *f, const http_limits_t *lim, client_fn client)
{
    g_fx = f;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    http_callbacks_t cb = {on_headers, on_request, f};
    assert_int_equal(http_server_new(&f->loop, lim, &cb, &f->srv), 0);
    assert_int_equal(http_server_listen(f->srv, "127.0.0.1", 0), 0);
    f->port = http_server_port(f->srv);
    assert_true(f->port > 0);
    uv_async_init(&f->loop, &f->done, on_client_done);
    f->done.data = f;
    f->client = client;
    assert_int_equal(pthread_create(&f->th, NULL, client_main, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(f->th, NULL);
    assert_true(f->server_closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    if (f->fails)
        fail_msg("client: %s (%d failures)", f->fail_msg, f->fails);
}

/* ---- server-side handlers ---------------------------------------------- */

typedef struct sink_state {
    ox_sha256_t h;
    uint64_t n;
    uv_timer_t t;
    http_req_t *req;
    int pauses;
    char *room, *offered; /* /roomsink: the memory offered for direct reads */
    int offers, bad_ptr;
    uint64_t direct_bytes;
} sink_state_t;

static void on_sink_timer(uv_timer_t *t)
{
    sink_state_t *s = t->data;
    http_req_resume(s->req);
}

static int on_sink_data(http_req_t *r, const void *p, size_t n, void *ud)
{
    sink_state_t *s = ud;
    if (s->room && (const char *)p >= s->room && (const char *)p < s->room + (1u << 20)) {
        /* a direct read: exactly where it was offered, within the room */
        if (p != s->offered || n > (1u << 20))
            s->bad_ptr = 1;
        s->direct_bytes += n;
    }
    ox_sha256_update(&s->h, p, n);
    uint64_t before = s->n;
    s->n += n;
    /* pause at every MiB boundary and resume from a timer, as an upload
     * handler does while its write runs in the work pool */
    if (before / (1 << 20) != s->n / (1 << 20)) {
        s->pauses++;
        http_req_pause(r);
        uv_timer_start(&s->t, on_sink_timer, 1, 0);
    }
    return 0;
}

static void on_sink_timer_closed(uv_handle_t *h)
{
    sink_state_t *s = h->data;
    free(s->room);
    free(s);
}

/* Room for a zero-copy read: sizes that vary (under and over the server's
 * floor) and none at all every fourth time. */
static void *on_sink_room(http_req_t *r, size_t *len, void *ud)
{
    (void)r;
    sink_state_t *s = ud;
    static const size_t sizes[] = {300000, 65536 + 7, 0, 1u << 20, 1000};
    size_t want = sizes[s->offers++ % 5];
    if (!want)
        return NULL;
    *len = want;
    s->offered = s->room;
    return s->room;
}

static void on_headers(http_req_t *r, void *ud)
{
    fx_t *f = ud;
    const char *p = http_req_path(r);
    if (strcmp(p, "/sink") == 0 || strcmp(p, "/roomsink") == 0) {
        sink_state_t *s = calloc(1, sizeof(*s));
        ox_sha256_init(&s->h);
        s->req = r;
        uv_timer_init(&f->loop, &s->t);
        s->t.data = s;
        http_req_set_data(r, s);
        http_req_set_body_sink(r, on_sink_data, s);
        if (strcmp(p, "/roomsink") == 0) {
            s->room = malloc(1u << 20);
            http_req_set_body_room(r, on_sink_room);
        }
    } else if (strcmp(p, "/early") == 0) {
        http_respond(r, 403, "text/plain", "no", 2);
    }
}

static void on_late_timer(uv_timer_t *t)
{
    http_req_t *r = t->data;
    g_fx->late_rc = http_respond(r, 200, "text/plain", "late", 4);
    g_fx->late_done = g_fx->late_rc == 0;
    g_fx->late_calls++;
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

typedef struct stream_state {
    uv_timer_t t;
    http_req_t *req;
    int i, n;
} stream_state_t;

static void on_stream_closed(http_req_t *r, void *ud)
{
    (void)r;
    (void)ud;
    g_fx->on_close_calls++;
}

static void on_stream_timer(uv_timer_t *t)
{
    stream_state_t *s = t->data;
    char line[64];
    int n = snprintf(line, sizeof(line), "{\"i\":%d}\n", s->i);
    size_t before = http_stream_pending(s->req);
    int rc = http_stream_write(s->req, line, (size_t)n);
    if (rc == 0 && http_stream_pending(s->req) == before + (size_t)n)
        g_fx->pending_ok++;
    s->i++;
    if (rc == OX_ECANCELED) {
        /* the client left: later writes must keep failing, end releases */
        g_fx->write_after_close = http_stream_write(s->req, "x", 1) == OX_ECANCELED &&
                                  http_req_is_closed(s->req) && g_fx->on_close_calls == 1;
        http_stream_end(s->req);
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
        return;
    }
    if (s->n > 0 && s->i >= s->n) {
        http_stream_end(s->req);
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
    }
}

static void on_request(http_req_t *r, void *ud)
{
    fx_t *f = ud;
    f->requests++;
    const char *p = http_req_path(r);
    char out[2048];
    if (strcmp(p, "/hello") == 0) {
        http_respond(r, 200, "text/plain", "hello world", 11);
    } else if (strncmp(p, "/info", 5) == 0) {
        const char *x = http_req_header(r, "x-test");
        int n = snprintf(out, sizeof(out), "%s|%s|%s|%s|%s", http_req_method(r), p,
                         http_req_raw_path(r), http_req_query(r), x ? x : "-");
        http_respond(r, 200, "text/plain", out, (size_t)n);
    } else if (strcmp(p, "/echo") == 0) {
        size_t n;
        const char *b = http_req_body(r, &n);
        http_resp_header(r, "X-Len", n ? "some" : "none");
        http_respond(r, 200, "application/octet-stream", b, n);
    } else if (strcmp(p, "/sink") == 0 || strcmp(p, "/roomsink") == 0) {
        sink_state_t *s = http_req_data(r);
        if (s->room) {
            f->room_direct = s->direct_bytes;
            f->room_bad_ptr = s->bad_ptr;
        }
        uint8_t d[32];
        char hex[65];
        ox_sha256_final(&s->h, d);
        ox_sha256_free(&s->h);
        ox_hex_encode(d, 32, hex);
        f->sink_bytes = s->n;
        f->sink_pauses = s->pauses;
        memcpy(f->last_sink_hash, hex, 65);
        uv_close((uv_handle_t *)&s->t, on_sink_timer_closed);
        http_respond(r, 200, "text/plain", hex, 64);
    } else if (strcmp(p, "/late") == 0) {
        uv_timer_t *t = malloc(sizeof(*t));
        uv_timer_init(&f->loop, t);
        t->data = r;
        const char *q = http_req_query(r);
        uint64_t ms = strncmp(q, "ms=", 3) == 0 ? strtoull(q + 3, NULL, 10) : 50;
        uv_timer_start(t, on_late_timer, ms, 0);
    } else if (strcmp(p, "/stream") == 0 || strcmp(p, "/forever") == 0) {
        stream_state_t *s = calloc(1, sizeof(*s));
        s->req = r;
        s->n = strcmp(p, "/stream") == 0 ? 5 : 0;
        http_req_on_close(r, on_stream_closed, f);
        http_stream_begin(r, 200, "application/x-ndjson");
        uv_timer_init(&f->loop, &s->t);
        s->t.data = s;
        uv_timer_start(&s->t, on_stream_timer, 2, 5);
    } else if (strcmp(p, "/blobhead") == 0) {
        http_respond_head(r, 200, "application/octet-stream", 123456789);
    } else if (strcmp(p, "/file") == 0) {
        int fd = open(f->file_path, O_RDONLY);
        http_respond_file(r, 206, "application/octet-stream", fd, 1000, 300000);
    } else {
        http_respond(r, 404, "application/json; charset=utf-8", "{\"error\":\"not found\"}", 21);
    }
}

/* ---- tests -------------------------------------------------------------- */

static void cl_simple(fx_t *f)
{
    cli_t *c = calloc(1, sizeof(*c));
    resp_t r = {0};
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200);
    CHECK(f, strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(f, resp_header(&r, "Date") != NULL);
    CHECK(f, r.clen == 11 && r.body.len == 11 && memcmp(r.body.data, "hello world", 11) == 0);
    /* HEAD: same length, no body; the next response must follow directly */
    cli_sends(c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(f, cli_response(c, &r, 1) == 0);
    CHECK(f, r.status == 200 && r.clen == 11 && c->len == 0);
    cli_sends(c, "GET /info/a%20b?x=1&y=%41 HTTP/1.1\r\nHost: x\r\nX-Test:  v1  \r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.body.data && strcmp(r.body.data, "GET|/info/a b|/info/a%20b|x=1&y=%41|v1") == 0);
    cli_sends(c, "GET /info?x=1&y=%41 HTTP/1.1\r\nHost: x\r\nX-Test:  v1  \r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.body.data && strcmp(r.body.data, "GET|/info|/info|x=1&y=%41|v1") == 0);
    cli_sends(c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0 && r.status == 404);
    resp_free(&r);
    close(c->fd);
    free(c);
}

static void test_simple_head_keepalive(void **state)
{
    (void)state;
    fx_t f = {0};
    fx_run(&f, NULL, cl_simple);
    assert_int_equal(f.requests, 5);
}

static void cl_pipeline(fx_t *f)
{
    cli_t *c = calloc(1, sizeof(*c));
    resp_t r = {0};
    CHECK(f, cli_connect(c, f->port) == 0);
    /* the slow request first: its answer must still come first */
    cli_sends(c, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n"
                 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde"
                 "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200 && r.body.len == 4 && memcmp(r.body.data, "late", 4) == 0);
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200 && r.body.len == 5 && memcmp(r.body.data, "abcde", 5) == 0);
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200 && r.body.len == 11);
    CHECK(f, resp_header(&r, "Connection") && strcmp(resp_header(&r, "Connection"), "close") == 0);
    CHECK(f, cli_sees_close(c));
    resp_free(&r);
    close(c->fd);
    free(c);
}

static void test_pipeline_in_order(void **state)
{
    (void)state;
    fx_t f = {0};
    fx_run(&f, NULL, cl_pipeline);
    assert_int_equal(f.requests, 3);
    assert_true(f.late_done);
}

static void cl_chunked_and_expect(fx_t *f)
{
    cli_t *c = calloc(1, sizeof(*c));
    resp_t r = {0};
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200 && r.body.len == 11 && memcmp(r.body.data, "hello world", 11) == 0);
    /* Expect: the server must answer 100 before we send the body */
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 100);
    cli_sends(c, "xyz");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200 && r.body.len == 3 && memcmp(r.body.data, "xyz", 3) == 0);
    /* refused in on_headers: no 100, a final answer, then close */
    cli_sends(c, "POST /early HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 403);
    CHECK(f, cli_sees_close(c));
    resp_free(&r);
    close(c->fd);
    free(c);
}

static void test_chunked_body_and_expect(void **state)
{
    (void)state;
    fx_t f = {0};
    fx_run(&f, NULL, cl_chunked_and_expect);
}

#define SINK_BYTES (24u * 1024 * 1024 + 12345)

/* The body the sink tests send (malloc'd) and its sha256 in hex. */
static char *sink_body(char want[65])
{
    char *data = malloc(SINK_BYTES);
    for (size_t i = 0; i < SINK_BYTES; i++)
        data[i] = (char)(i * 2654435761u >> 13);
    ox_sha256_hex(data, SINK_BYTES, want);
    return data;
}

/* Appends data as chunks of 300000 bytes and the last chunk. */
static void put_chunks(ox_buf_t *b, const char *data, size_t n)
{
    for (size_t off = 0; off < n; off += 300000) {
        size_t k = n - off < 300000 ? n - off : 300000;
        ox_buf_printf(b, "%zx\r\n", k);
        ox_buf_append(b, data + off, k);
        ox_buf_puts(b, "\r\n");
    }
    ox_buf_puts(b, "0\r\n\r\n");
}

static void cl_sink(fx_t *f)
{
    cli_t *c = calloc(1, sizeof(*c));
    resp_t r = {0};
    char want[65];
    char *data = sink_body(want);
    CHECK(f, cli_connect(c, f->port) == 0);
    char head[256];
    snprintf(head, sizeof(head), "PUT /sink HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n",
             SINK_BYTES);
    /* head and the first body bytes in one write, as real clients do */
    char *first = malloc(strlen(head) + 1000);
    memcpy(first, head, strlen(head));
    memcpy(first + strlen(head), data, 1000);
    cli_send(c, first, strlen(head) + 1000);
    free(first);
    cli_send(c, data + 1000, SINK_BYTES - 1000);
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200 && r.body.len == 64 && memcmp(r.body.data, want, 64) == 0);
    /* chunked upload through the sink, and a pipelined request behind it */
    ox_buf_t b = OX_BUF_INIT;
    ox_buf_puts(&b, "PUT /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    put_chunks(&b, data, SINK_BYTES);
    ox_buf_puts(&b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    cli_send(c, b.data, b.len);
    ox_buf_free(&b);
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200 && r.body.len == 64 && memcmp(r.body.data, want, 64) == 0);
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200 && r.body.len == 11);
    free(data);
    resp_free(&r);
    close(c->fd);
    free(c);
}

static void test_body_sink_pause_resume(void **state)
{
    (void)state;
    fx_t f = {0};
    fx_run(&f, NULL, cl_sink);
    assert_int_equal(f.sink_bytes, SINK_BYTES);
    assert_true(f.sink_pauses >= 24);
}

/* Zero-copy reads into the sink's room: the body arrives intact and in
 * order (through the room and through the connection's buffer, as the room
 * comes and goes, with pauses), reads never run past the body, so a request
 * pipelined right behind it is served; a chunked body never uses the room. */
static void cl_roomsink(fx_t *f)
{
    cli_t *c = calloc(1, sizeof(*c));
    resp_t r = {0};
    char want[65];
    char *data = sink_body(want);
    CHECK(f, cli_connect(c, f->port) == 0);
    ox_buf_t b = OX_BUF_INIT;
    ox_buf_printf(&b, "PUT /roomsink HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n",
                  SINK_BYTES);
    ox_buf_append(&b, data, SINK_BYTES);
    ox_buf_puts(&b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    cli_send(c, b.data, b.len);
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200 && r.body.len == 64 && memcmp(r.body.data, want, 64) == 0);
    CHECK(f, f->room_direct > SINK_BYTES / 4);
    CHECK(f, f->room_bad_ptr == 0);
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200 && r.body.len == 11 && memcmp(r.body.data, "hello world", 11) == 0);
    /* chunked: the room is never used (the parser must see the framing) */
    ox_buf_reset(&b);
    ox_buf_puts(&b, "PUT /roomsink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    put_chunks(&b, data, SINK_BYTES);
    cli_send(c, b.data, b.len);
    ox_buf_free(&b);
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200 && r.body.len == 64 && memcmp(r.body.data, want, 64) == 0);
    CHECK(f, f->room_direct == 0);
    free(data);
    resp_free(&r);
    close(c->fd);
    free(c);
}

static void test_body_sink_room(void **state)
{
    (void)state;
    fx_t f = {0};
    fx_run(&f, NULL, cl_roomsink);
    assert_int_equal(f.sink_bytes, SINK_BYTES);
    assert_true(f.sink_pauses >= 24);
}

static void cl_limits(fx_t *f)
{
    cli_t *c = calloc(1, sizeof(*c));
    resp_t r = {0};
    /* head over 4 KiB */
    CHECK(f, cli_connect(c, f->port) == 0);
    char big[6000];
    memset(big, 'a', sizeof(big));
    cli_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    cli_send(c, big, sizeof(big));
    cli_sends(c, "\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 431);
    CHECK(f, r.body.data && strcmp(r.body.data, "{\"error\":\"request header fields too large\"}") == 0);
    CHECK(f, strcmp(resp_header(&r, "Content-Type"), "application/json; charset=utf-8") == 0);
    CHECK(f, cli_sees_close(c));
    close(c->fd);
    /* declared body over 64 KiB */
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 413);
    CHECK(f, r.body.data && strcmp(r.body.data, "{\"error\":\"request body too large\"}") == 0);
    CHECK(f, cli_sees_close(c));
    close(c->fd);
    /* chunked body growing over the limit */
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[40000];
    memset(chunk, 'b', sizeof(chunk));
    for (int i = 0; i < 2; i++) {
        char h[32];
        snprintf(h, sizeof(h), "%zx\r\n", sizeof(chunk));
        cli_sends(c, h);
        cli_send(c, chunk, sizeof(chunk));
        cli_sends(c, "\r\n");
    }
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 413);
    close(c->fd);
    /* malformed request line, then the server still serves */
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "GARBAGE\x01 / HTTP/9\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 400);
    CHECK(f, r.body.data && strstr(r.body.data, "{\"error\":\"") == r.body.data);
    CHECK(f, cli_sees_close(c));
    close(c->fd);
    /* bad percent escapes and an encoded NUL */
    const char *bad[] = {"/a%zz", "/a%4", "/a%00b", "/%"};
    for (int i = 0; i < 4; i++) {
        CHECK(f, cli_connect(c, f->port) == 0);
        char req[128];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", bad[i]);
        cli_sends(c, req);
        CHECK(f, cli_response(c, &r, 0) == 0);
        CHECK(f, r.status == 400);
        close(c->fd);
    }
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200);
    close(c->fd);
    resp_free(&r);
    free(c);
}

static void test_limits_and_bad_requests(void **state)
{
    (void)state;
    fx_t f = {0};
    http_limits_t lim = {.max_header_bytes = 4096, .max_body_bytes = 65536};
    fx_run(&f, &lim, cl_limits);
    assert_int_equal(f.requests, 1);
}

static void cl_stream(fx_t *f)
{
    cli_t *c = calloc(1, sizeof(*c));
    resp_t r = {0};
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 200 && r.chunked && r.clen == -1);
    CHECK(f, r.body.len > 0 &&
                 strcmp(r.body.data, "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n{\"i\":3}\n{\"i\":4}\n") == 0);
    close(c->fd);
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "GET /forever HTTP/1.1\r\nHost: x\r\n\r\n");
    /* read a few chunks, then vanish */
    while (c->len < 200)
        if (cli_fill(c) <= 0)
            break;
    CHECK(f, memmem(c->buf, c->len, "{\"i\":1}", 7) != NULL);
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(c->fd);
    resp_free(&r);
    free(c);
    /* give the server time to notice */
    usleep(300 * 1000);
}

static void test_stream_and_disconnect(void **state)
{
    (void)state;
    fx_t f = {0};
    fx_run(&f, NULL, cl_stream);
    assert_int_equal(f.on_close_calls, 1);
    assert_true(f.write_after_close);
    assert_true(f.pending_ok >= 5);
}

static void cl_idle(fx_t *f)
{
    cli_t *c = calloc(1, sizeof(*c));
    resp_t r = {0};
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0 && r.status == 200);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK(f, cli_sees_close(c));
    clock_gettime(CLOCK_MONOTONIC, &b);
    double dt = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    CHECK(f, dt > 0.1 && dt < 3.0);
    close(c->fd);
    /* a head that never completes hits the header timeout */
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "GET /hello HTTP/1.1\r\nHo");
    CHECK(f, cli_sees_close(c));
    close(c->fd);
    resp_free(&r);
    free(c);
}

static void test_idle_timeout(void **state)
{
    (void)state;
    fx_t f = {0};
    http_limits_t lim = {.idle_timeout_ms = 200, .header_timeout_ms = 300};
    fx_run(&f, &lim, cl_idle);
}

#define NCONC 200

static void cl_concurrent(fx_t *f)
{
    cli_t *cs = calloc(NCONC, sizeof(*cs));
    resp_t r = {0};
    for (int i = 0; i < NCONC; i++)
        CHECK(f, cli_connect(&cs[i], f->port) == 0);
    for (int i = 0; i < NCONC; i++) {
        char req[128];
        snprintf(req, sizeof(req), "GET /info?n=%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        cli_sends(&cs[i], req);
    }
    int ok = 0;
    for (int i = NCONC - 1; i >= 0; i--) {
        char want[64];
        snprintf(want, sizeof(want), "GET|/info|/info|n=%d|-", i);
        if (cli_response(&cs[i], &r, 0) == 0 && r.body.data && strcmp(r.body.data, want) == 0)
            ok++;
    }
    CHECK(f, ok == NCONC);
    for (int i = 0; i < NCONC; i++)
        close(cs[i].fd);
    resp_free(&r);
    free(cs);
}

static void test_concurrent_connections(void **state)
{
    (void)state;
    fx_t f = {0};
    fx_run(&f, NULL, cl_concurrent);
    assert_int_equal(f.requests, NCONC);
}

static void cl_file(fx_t *f)
{
    cli_t *c = calloc(1, sizeof(*c));
    resp_t r = {0};
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\nHEAD /file HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0);
    CHECK(f, r.status == 206 && r.clen == 300000 && r.body.len == 300000);
    int ok = 1;
    for (size_t i = 0; i < r.body.len && ok; i++)
        ok = (unsigned char)r.body.data[i] == (unsigned char)((i + 1000) % 251);
    CHECK(f, ok);
    CHECK(f, cli_response(c, &r, 1) == 0);
    CHECK(f, r.status == 206 && r.clen == 300000);
    cli_sends(c, "HEAD /blobhead HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(f, cli_response(c, &r, 1) == 0 && r.status == 200 && r.clen == 123456789);
    cli_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0 && r.status == 200 && r.body.len == 11);
    close(c->fd);
    resp_free(&r);
    free(c);
}

static void test_respond_file_range(void **state)
{
    (void)state;
    fx_t f = {0};
    snprintf(f.file_path, sizeof(f.file_path), "/tmp/ox_http_test_XXXXXX");
    int fd = mkstemp(f.file_path);
    assert_true(fd >= 0);
    unsigned char *d = malloc(400000);
    for (size_t i = 0; i < 400000; i++)
        d[i] = (unsigned char)(i % 251);
    assert_int_equal(write(fd, d, 400000), 400000);
    close(fd);
    free(d);
    fx_run(&f, NULL, cl_file);
    unlink(f.file_path);
}

static void cl_http10_and_gone(fx_t *f)
{
    cli_t *c = calloc(1, sizeof(*c));
    resp_t r = {0};
    /* HTTP/1.0 closes by default... */
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "GET /hello HTTP/1.0\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0 && r.status == 200 && r.body.len == 11);
    CHECK(f, resp_header(&r, "Connection") && strcmp(resp_header(&r, "Connection"), "close") == 0);
    CHECK(f, cli_sees_close(c));
    close(c->fd);
    /* ...and keeps the connection when asked */
    CHECK(f, cli_connect(c, f->port) == 0);
    for (int i = 0; i < 3; i++) {
        cli_sends(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        CHECK(f, cli_response(c, &r, 0) == 0 && r.status == 200 && r.body.len == 11);
        const char *conn = resp_header(&r, "Connection");
        CHECK(f, conn && strcasecmp(conn, "keep-alive") == 0);
    }
    close(c->fd);
    /* a client that leaves while its handler still works: the late answer
     * must be refused, not crash */
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "GET /late?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(10 * 1000);
    close(c->fd);
    usleep(600 * 1000);
    resp_free(&r);
    free(c);
}

static void test_http10_and_late_after_disconnect(void **state)
{
    (void)state;
    fx_t f = {0};
    fx_run(&f, NULL, cl_http10_and_gone);
    assert_int_equal(f.late_calls, 1);
    assert_int_equal(f.late_rc, OX_ECANCELED);
}

static void cl_bad_table(fx_t *f)
{
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"GET / HTTP/1.1\r\nNoColonHere\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        {"GET /a b c HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nHost\x01: y\r\n\r\n", 400},
    };
    cli_t *c = calloc(1, sizeof(*c));
    resp_t r = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK(f, cli_connect(c, f->port) == 0);
        cli_sends(c, cases[i].req);
        int ok = cli_response(c, &r, 0) == 0 && r.status == cases[i].status;
        if (!ok && !f->fails++)
            snprintf(f->fail_msg, sizeof(f->fail_msg), "case %zu: status %d", i, r.status);
        CHECK(f, cli_sees_close(c));
        close(c->fd);
    }
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(f, cli_response(c, &r, 0) == 0 && r.status == 200);
    close(c->fd);
    resp_free(&r);
    free(c);
}

static void test_malformed_table(void **state)
{
    (void)state;
    fx_t f = {0};
    fx_run(&f, NULL, cl_bad_table);
    assert_int_equal(f.requests, 1);
}

static void cl_close_in_flight(fx_t *f)
{
    cli_t *c = calloc(1, sizeof(*c));
    CHECK(f, cli_connect(c, f->port) == 0);
    cli_sends(c, "GET /late?ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(200 * 1000);
    /* the server closes now, with the handler still holding the request */
    f->keep_fd = c->fd;
    free(c);
}

static void test_server_close_with_handler_in_flight(void **state)
{
    (void)state;
    fx_t f = {0};
    fx_run(&f, NULL, cl_close_in_flight);
    close(f.keep_fd);
    assert_int_equal(f.late_calls, 1);
    assert_int_equal(f.late_rc, OX_ECANCELED);
}

static void cl_maxconn(fx_t *f)
{
    cli_t *c = calloc(3, sizeof(*c));
    resp_t r = {0};
    for (int i = 0; i < 2; i++) {
        CHECK(f, cli_connect(&c[i], f->port) == 0);
        cli_sends(&c[i], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(f, cli_response(&c[i], &r, 0) == 0 && r.status == 200);
    }
    /* the third is accepted and closed at once */
    CHECK(f, cli_connect(&c[2], f->port) == 0);
    CHECK(f, cli_sees_close(&c[2]));
    close(c[2].fd);
    /* a slot frees up when one goes away */
    close(c[0].fd);
    usleep(100 * 1000);
    CHECK(f, cli_connect(&c[2], f->port) == 0);
    cli_sends(&c[2], "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(f, cli_response(&c[2], &r, 0) == 0 && r.status == 200);
    close(c[1].fd);
    close(c[2].fd);
    resp_free(&r);
    free(c);
}

static void test_max_connections(void **state)
{
    (void)state;
    fx_t f = {0};
    http_limits_t lim = {.max_connections = 2};
    fx_run(&f, &lim, cl_maxconn);
    assert_int_equal(f.requests, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_head_keepalive),
        cmocka_unit_test(test_pipeline_in_order),
        cmocka_unit_test(test_chunked_body_and_expect),
        cmocka_unit_test(test_body_sink_pause_resume),
        cmocka_unit_test(test_body_sink_room),
        cmocka_unit_test(test_limits_and_bad_requests),
        cmocka_unit_test(test_stream_and_disconnect),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_concurrent_connections),
        cmocka_unit_test(test_respond_file_range),
        cmocka_unit_test(test_http10_and_late_after_disconnect),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_server_close_with_handler_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
