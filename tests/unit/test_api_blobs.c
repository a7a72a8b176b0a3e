/* Blob uploads (POST/HEAD /api/blobs/:digest) and the registry endpoints
 * (/v2/...) over a real socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

#include "api_fixture.h"

static void upload(fx_t *f, const char *digest, const void *p, size_t n, resp_t *r)
{
    char path[256];
    snprintf(path, sizeof path, "/api/blobs/%s", digest);
    const char *h[] = {"Content-Type: application/octet-stream", NULL};
    fx_request(f, "POST", path, p, n, h, r);
}

static void test_upload_small(void **state)
{
    fx_t *f = *state;
    resp_t r;
    const char data[] = "hello blob";
    char d[80], path[256];
    fx_digest(data, sizeof data - 1, d);
    snprintf(path, sizeof path, "/api/blobs/%s", d);

    fx_request(f, "HEAD", path, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);

    upload(f, d, data, sizeof data - 1, &r);
    assert_int_equal(r.status, 201);
    assert_string_equal(r.body.data, "");
    resp_free(&r);

    fx_request(f, "HEAD", path, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* again: already present */
    upload(f, d, data, sizeof data - 1, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* the file is in Ollama's layout */
    char file[256];
    snprintf(file, sizeof file, "%s/models/blobs/sha256-%s", f->home, d + 7);
    char *got;
    size_t len;
    assert_int_equal(ox_fs_read_all(file, 1024, &got, &len), 0);
    assert_int_equal(len, sizeof data - 1);
    assert_memory_equal(got, data, len);
    free(got);

    /* dash form of the digest is accepted too */
    char dash[80];
    snprintf(dash, sizeof dash, "sha256-%s", d + 7);
    snprintf(path, sizeof path, "/api/blobs/%s", dash);
    fx_request(f, "HEAD", path, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_upload_errors(void **state)
{
    fx_t *f = *state;
    resp_t r;
    upload(f, "sha256:1234", "x", 1, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body.data, "{\"error\":\"invalid digest format\"}");
    resp_free(&r);

    fx_request(f, "HEAD", "/api/blobs/md5:abc", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);

    char d[80], want[300], actual[80];
    fx_digest("other", 5, d);
    fx_digest("data!", 5, actual);
    upload(f, d, "data!", 5, &r);
    assert_int_equal(r.status, 400);
    snprintf(want, sizeof want, "{\"error\":\"digest mismatch, expected \\\"%s\\\", got \\\"%s\\\"\"}",
             d, actual);
    assert_string_equal(r.body.data, want);
    resp_free(&r);

    /* nothing was kept under either name */
    char path[256];
    snprintf(path, sizeof path, "/api/blobs/%s", actual);
    fx_request(f, "HEAD", path, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body.data, "") );
    resp_free(&r);
    snprintf(path, sizeof path, "/api/blobs/%s", d);
    fx_request(f, "HEAD", path, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
}

static void test_upload_large(void **state)
{
    fx_t *f = *state;
    /* larger than several buffers so writes overlap receiving and the socket
     * gets paused */
    size_t n = 40u << 20;
    unsigned char *p = malloc(n);
    assert_non_null(p);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (unsigned char)(x >> 24);
    }
    char d[80];
    fx_digest(p, n, d);
    resp_t r;
    upload(f, d, p, n, &r);
    assert_int_equal(r.status, 201);
    resp_free(&r);
    /* the stored bytes hash to the digest */
    char file[256];
    snprintf(file, sizeof file, "%s/models/blobs/sha256-%s", f->home, d + 7);
    uint8_t raw[32];
    uint64_t size;
    assert_int_equal(ox_sha256_file(file, raw, &size), 0);
    assert_int_equal(size, n);
    char hex[65];
    ox_hex_encode(raw, 32, hex);
    assert_string_equal(hex, d + 7);

    /* a wrong digest on a large body is refused and leaves nothing */
    p[0] ^= 1;
    upload(f, d + 0 /* same expected digest, different bytes */, p, n, &r);
    assert_int_equal(r.status, 200); /* already present: body not read */
    resp_free(&r);
    char d2[80];
    fx_digest("nope", 4, d2);
    upload(f, d2, p, n, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "digest mismatch"));
    resp_free(&r);
    free(p);
}

static void test_registry_blobs(void **state)
{
    fx_t *f = *state;
    resp_t r;
    char h[512];
    const char data[] = "0123456789abcdefghij";
    char d[80], path[256];
    fx_digest(data, 20, d);
    upload(f, d, data, 20, &r);
    assert_int_equal(r.status, 201);
    resp_free(&r);

    fx_request(f, "GET", "/v2/", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{}");
    resp_free(&r);

    snprintf(path, sizeof path, "/v2/library/anything/blobs/%s", d);
    fx_request(f, "HEAD", path, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Content-Length", h, sizeof h), "20");
    assert_string_equal(resp_header(&r, "Docker-Content-Digest", h, sizeof h), d);
    resp_free(&r);

    fx_request(f, "GET", path, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 20);
    assert_memory_equal(r.body.data, data, 20);
    assert_string_equal(resp_header(&r, "Location", h, sizeof h), path);
    assert_string_equal(resp_header(&r, "Accept-Ranges", h, sizeof h), "bytes");
    resp_free(&r);

    const char *rg[] = {"Range: bytes=5-9", NULL};
    fx_request(f, "GET", path, NULL, 0, rg, &r);
    assert_int_equal(r.status, 206);
    assert_string_equal(r.body.data, "56789");
    assert_string_equal(resp_header(&r, "Content-Range", h, sizeof h), "bytes 5-9/20");
    resp_free(&r);

    const char *open_end[] = {"Range: bytes=15-", NULL};
    fx_request(f, "GET", path, NULL, 0, open_end, &r);
    assert_int_equal(r.status, 206);
    assert_string_equal(r.body.data, "fghij");
    resp_free(&r);

    const char *suffix[] = {"Range: bytes=-3", NULL};
    fx_request(f, "GET", path, NULL, 0, suffix, &r);
    assert_int_equal(r.status, 206);
    assert_string_equal(r.body.data, "hij");
    resp_free(&r);

    const char *past[] = {"Range: bytes=10-100", NULL};
    fx_request(f, "GET", path, NULL, 0, past, &r);
    assert_int_equal(r.status, 206);
    assert_string_equal(r.body.data, "abcdefghij");
    resp_free(&r);

    const char *bad[] = {"Range: bytes=20-30", NULL};
    fx_request(f, "GET", path, NULL, 0, bad, &r);
    assert_int_equal(r.status, 416);
    assert_string_equal(resp_header(&r, "Content-Range", h, sizeof h), "bytes */20");
    resp_free(&r);

    const char *hr[] = {"Range: bytes=0-3", NULL};
    fx_request(f, "HEAD", path, NULL, 0, hr, &r);
    assert_int_equal(r.status, 206);
    assert_string_equal(resp_header(&r, "Content-Length", h, sizeof h), "4");
    resp_free(&r);

    char missing[80];
    fx_digest("missing", 7, missing);
    snprintf(path, sizeof path, "/v2/library/anything/blobs/%s", missing);
    fx_request(f, "GET", path, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body.data, "BLOB_UNKNOWN"));
    resp_free(&r);

    fx_request(f, "GET", "/v2/library/m/manifests/latest", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body.data, "MANIFEST_UNKNOWN"));
    resp_free(&r);

    fx_request(f, "GET", "/v2/library/m/other/latest", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body.data, "404 page not found");
    resp_free(&r);
}

/* Opens a raw connection and sends the head of an upload of total bytes and
 * the first sent of them. Returns the socket. */
static int raw_upload_start(fx_t *f, const char *digest, size_t total, size_t sent)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST /api/blobs/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n\r\n",
                     digest, total);
    assert_int_equal(write(fd, head, (size_t)n), n);
    char *buf = calloc(1, 1 << 16);
    for (size_t done = 0; done < sent;) {
        size_t k = sent - done < (1u << 16) ? sent - done : (1u << 16);
        ssize_t w = write(fd, buf, k);
        assert_true(w > 0);
        done += (size_t)w;
    }
    free(buf);
    return fd;
}

static void test_upload_client_gone(void **state)
{
    fx_t *f = *state;
    char d[80];
    fx_digest("whatever", 8, d);
    int fd = raw_upload_start(f, d, 30u << 20, 9u << 20);
    usleep(200 * 1000);
    close(fd);
    usleep(300 * 1000);
    resp_t r;
    char path[256];
    snprintf(path, sizeof path, "/api/blobs/%s", d);
    fx_request(f, "HEAD", path, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    /* the server still works, and tmp/ holds nothing of the abandoned upload */
    fx_request(f, "GET", "/api/tags", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    /* the abandoned upload's temp file goes away (poll: the server may be
     * slow to see the close on a loaded machine) */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s/tmp)\"", f->home);
    int empty = 0;
    for (int i = 0; i < 200 && !empty; i++) {
        empty = system(cmd) == 0;
        if (!empty)
            usleep(50 * 1000);
    }
    assert_true(empty);
}

static void test_stop_during_upload(void **state)
{
    fx_t *f = *state;
    char d[80];
    fx_digest("stop me", 7, d);
    int fd = raw_upload_start(f, d, 30u << 20, 5u << 20);
    usleep(200 * 1000);
    /* teardown stops the node with the upload in flight and checks that the
     * loop closes with nothing left */
    int rc = fx_teardown(state);
    close(fd);
    assert_int_equal(rc, 0);
    assert_int_equal(fx_setup(state), 0); /* for the group teardown */
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upload_small, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_upload_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_upload_large, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_registry_blobs, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_upload_client_gone, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stop_during_upload, fx_setup, fx_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
