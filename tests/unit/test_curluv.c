/* curluv against a tiny HTTP/1.1 server running in a thread (raw sockets,
 * one thread per connection, Connection: close). Every test ends by closing
 * the loop, which fails if a handle was leaked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/curluv.h"
#include "common/err.h"

#define BIG_LEN (3u * 1024 * 1024 + 17)

static int srv_port;

static char big_byte(size_t i) { return (char)('a' + (i * 7 + i / 1000) % 26); }

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, int status, const char *extra, const void *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", status,
                     len, extra ? extra : "");
    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

static void *on_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char req[4096];
    size_t got = 0;
    while (got < sizeof(req) - 1) {
        ssize_t r = recv(fd, req + got, sizeof(req) - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[got] = '\0';
    char method[16] = "", path[256] = "";
    sscanf(req, "%15s %255s", method, path);
    if (strcmp(path, "/hello") == 0) {
        respond(fd, 200, "X-Test: yes\r\n", "hello world", 11);
    } else if (strcmp(path, "/redirect") == 0) {
        respond(fd, 307, "Location: /hello\r\n", "", 0);
    } else if (strcmp(path, "/echo-header") == 0) {
        const char *h = strcasestr(req, "\r\nX-Echo: ");
        char val[64] = "";
        if (h)
            sscanf(h + 10, "%63[^\r]", val);
        respond(fd, 200, NULL, val, strlen(val));
    } else if (strcmp(path, "/big") == 0 || strcmp(path, "/range") == 0) {
        size_t a = 0, b = BIG_LEN - 1;
        const char *rg = strcasestr(req, "\r\nRange: bytes=");
        int partial = path[1] == 'r' && rg && sscanf(rg + 15, "%zu-%zu", &a, &b) == 2;
        char *body = malloc(BIG_LEN);
        for (size_t i = 0; i < BIG_LEN; i++)
            body[i] = big_byte(i);
        respond(fd, partial ? 206 : 200, NULL, body + a, b - a + 1);
        free(body);
    } else if (strcmp(path, "/slow") == 0) {
        sleep(3);
        respond(fd, 200, NULL, "late", 4);
    } else {
        respond(fd, 404, NULL, "nope", 4);
    }
    close(fd);
    return NULL;
}

static void *on_accept_loop(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_t t;
        pthread_create(&t, NULL, on_conn, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
    return NULL;
}

static int group_setup(void **state)
{
    (void)state;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 64) != 0)
        return -1;
    socklen_t al = sizeof(a);
    getsockname(lfd, (struct sockaddr *)&a, &al);
    srv_port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, on_accept_loop, (void *)(intptr_t)lfd);
    pthread_detach(t);
    return 0;
}

typedef struct result {
    ox_buf_t body;
    int done;
    int rc;
    long status;
    char hdr[64];
    char url[256];
    int abort_after;  /* on_data returns OX_EFORMAT after this many bytes (0 = never) */
    int progress_calls;
} result_t;

static int on_data(curluv_req_t *r, const void *p, size_t n, void *ud)
{
    (void)r;
    result_t *res = ud;
    if (res->abort_after && res->body.len + n >= (size_t)res->abort_after)
        return OX_EFORMAT;
    return ox_buf_append(&res->body, p, n);
}

static void on_progress(curluv_req_t *r, uint64_t total, uint64_t now, void *ud)
{
    (void)r;
    (void)total;
    (void)now;
    ((result_t *)ud)->progress_calls++;
}

static void on_done(curluv_req_t *r, int rc, void *ud)
{
    result_t *res = ud;
    res->done++;
    res->rc = rc;
    res->status = curluv_req_status(r);
    const char *h = curluv_req_header(r, "x-test");
    snprintf(res->hdr, sizeof(res->hdr), "%s", h ? h : "");
    snprintf(res->url, sizeof(res->url), "%s", curluv_req_url(r));
}

static void url_of(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", srv_port, path);
}

static void start(curluv_t *cu, result_t *res, const char *path, const char *range,
                  const char *const *hdrs, int follow, curluv_req_t **out)
{
    char url[256];
    url_of(url, sizeof(url), path);
    curluv_opts_t o = {.url = url,
                       .range = range,
                       .headers = hdrs,
                       .follow_redirects = follow,
                       .on_data = on_data,
                       .on_progress = on_progress,
                       .on_done = on_done,
                       .ud = res};
    assert_int_equal(curluv_start(cu, &o, out), 0);
}

static void close_and_check(uv_loop_t *loop, curluv_t *cu)
{
    curluv_close(cu, NULL, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);  /* no handle left behind */
}

static void test_concurrent(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    curluv_t *cu;
    assert_int_equal(curluv_new(&loop, &cu), 0);
    enum { N = 8 };
    result_t res[N];
    memset(res, 0, sizeof(res));
    const char *echo[] = {"X-Echo: abc123", NULL};
    start(cu, &res[0], "/hello", NULL, NULL, 0, NULL);
    start(cu, &res[1], "/big", NULL, NULL, 0, NULL);
    start(cu, &res[2], "/range", "1000-1999", NULL, 0, NULL);
    start(cu, &res[3], "/redirect", NULL, NULL, 1, NULL);
    start(cu, &res[4], "/redirect", NULL, NULL, 0, NULL);
    start(cu, &res[5], "/missing", NULL, NULL, 0, NULL);
    start(cu, &res[6], "/echo-header", NULL, echo, 0, NULL);
    start(cu, &res[7], "/big", NULL, NULL, 0, NULL);
    assert_int_equal(curluv_active(cu), N);
    uv_run(&loop, UV_RUN_DEFAULT);  /* returns once curl has nothing left */
    assert_int_equal(curluv_active(cu), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(res[i].done, 1);
        assert_int_equal(res[i].rc, 0);
    }
    assert_int_equal(res[0].status, 200);
    assert_string_equal(res[0].body.data, "hello world");
    assert_string_equal(res[0].hdr, "yes");
    for (int k = 1; k < 8; k += 6) {
        assert_int_equal(res[k].status, 200);
        assert_int_equal(res[k].body.len, BIG_LEN);
        for (size_t i = 0; i < BIG_LEN; i += 4099)
            assert_int_equal(res[k].body.data[i], big_byte(i));
        assert_true(res[k].progress_calls > 0);
    }
    assert_int_equal(res[2].status, 206);
    assert_int_equal(res[2].body.len, 1000);
    assert_int_equal(res[2].body.data[0], big_byte(1000));
    assert_int_equal(res[2].body.data[999], big_byte(1999));
    assert_int_equal(res[3].status, 200);
    assert_string_equal(res[3].body.data, "hello world");
    assert_non_null(strstr(res[3].url, "/hello"));
    assert_int_equal(res[4].status, 307);
    assert_int_equal(res[5].status, 404);
    assert_string_equal(res[6].body.data, "abc123");
    for (int i = 0; i < N; i++)
        ox_buf_free(&res[i].body);
    close_and_check(&loop, cu);
}

static void on_cancel_timer(uv_timer_t *t)
{
    curluv_req_cancel(t->data);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    curluv_t *cu;
    assert_int_equal(curluv_new(&loop, &cu), 0);
    result_t slow = {0}, fast = {0}, queued = {0};
    curluv_req_t *r, *q;
    start(cu, &slow, "/slow", NULL, NULL, 0, &r);
    start(cu, &fast, "/hello", NULL, NULL, 0, NULL);
    /* cancelled before it ever reached curl */
    start(cu, &queued, "/hello", NULL, NULL, 0, &q);
    curluv_req_cancel(q);
    curluv_req_cancel(q);  /* idempotent */
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = r;
    uv_timer_start(&t, on_cancel_timer, 100, 0);
    uint64_t t0 = uv_now(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(uv_now(&loop) - t0 < 2500);  /* did not wait for the slow answer */
    assert_int_equal(slow.done, 1);
    assert_int_equal(slow.rc, OX_ECANCELED);
    assert_int_equal(queued.done, 1);
    assert_int_equal(queued.rc, OX_ECANCELED);
    assert_int_equal(fast.done, 1);
    assert_int_equal(fast.rc, 0);
    ox_buf_free(&fast.body);
    close_and_check(&loop, cu);
}

static void test_abort_and_errors(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    curluv_t *cu;
    assert_int_equal(curluv_new(&loop, &cu), 0);
    result_t ab = {0}, refused = {0};
    ab.abort_after = 5000;
    start(cu, &ab, "/big", NULL, NULL, 0, NULL);
    /* nothing listens on port 1 */
    curluv_opts_t o = {.url = "http://127.0.0.1:1/x", .on_done = on_done, .ud = &refused};
    assert_int_equal(curluv_start(cu, &o, NULL), 0);
    curluv_opts_t bad = {.url = NULL};
    assert_int_equal(curluv_start(cu, &bad, NULL), OX_EINVAL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ab.done, 1);
    assert_int_equal(ab.rc, OX_EFORMAT);
    assert_true(ab.body.len < 5000);
    assert_int_equal(refused.done, 1);
    assert_int_equal(refused.rc, OX_ENET);
    ox_buf_free(&ab.body);
    close_and_check(&loop, cu);
}

/* Closing with transfers in flight cancels them at once. */
static void test_close_in_flight(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    curluv_t *cu;
    assert_int_equal(curluv_new(&loop, &cu), 0);
    result_t a = {0}, b = {0};
    start(cu, &a, "/slow", NULL, NULL, 0, NULL);
    start(cu, &b, "/slow", NULL, NULL, 0, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);  /* let them reach curl and connect */
    uv_run(&loop, UV_RUN_NOWAIT);
    curluv_close(cu, NULL, NULL);
    assert_int_equal(a.done, 1);
    assert_int_equal(a.rc, OX_ECANCELED);
    assert_int_equal(b.done, 1);
    assert_int_equal(b.rc, OX_ECANCELED);
    uint64_t t0 = uv_now(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_true(uv_now(&loop) - t0 < 2000);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* on_done may close the driver (the pull does this when it fails). */
typedef struct closer {
    curluv_t *cu;
    int closed_cb;
    result_t other;
} closer_t;

static void on_closed(void *ud) { ((closer_t *)ud)->closed_cb++; }

static void on_done_close(curluv_req_t *r, int rc, void *ud)
{
    (void)r;
    (void)rc;
    closer_t *c = ud;
    curluv_close(c->cu, on_closed, c);
}

static void test_close_from_callback(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    closer_t c = {0};
    assert_int_equal(curluv_new(&loop, &c.cu), 0);
    char url[256];
    url_of(url, sizeof(url), "/hello");
    curluv_opts_t o = {.url = url, .on_done = on_done_close, .ud = &c};
    assert_int_equal(curluv_start(c.cu, &o, NULL), 0);
    start(c.cu, &c.other, "/slow", NULL, NULL, 0, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(c.closed_cb, 1);
    assert_int_equal(c.other.done, 1);
    assert_int_equal(c.other.rc, OX_ECANCELED);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_abort_and_errors),
        cmocka_unit_test(test_close_in_flight),
        cmocka_unit_test(test_close_from_callback),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
