/* swarm: pieces of a rescue fetched by ranged GETs from a holder's registry
 * endpoint and handed to the engine (rescue_get.c). A fetcher with no
 * engine peer at all completes from GETs alone; a holder answering with bad
 * bytes costs hash failures, never a bad blob, and after a few failed GETs
 * the fetch stops using them; so does a holder that has no such blob.
 * The holder's HTTP side is a small server here (the project's HTTP module)
 * on 127.0.0.24; the fetcher is 127.0.0.25. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api/http.h"
#include "cas/cas.h"
#include "common/err.h"
#include "swarm/swarm.h"
#include "swarm/swarm_int.h"
#include "swarm_fixture.h"

enum { SERVE_OK, SERVE_BAD_BYTES, SERVE_404 };

typedef struct holder {
    http_server_t *srv;
    const uint8_t *data;
    size_t size;
    int mode;
    int gets;       /* range requests answered */
    int closed;
} holder_t;

static void on_holder_request(http_req_t *req, void *ud)
{
    holder_t *h = ud;
    const char *range = http_req_header(req, "Range");
    unsigned long long a, b;
    if (h->mode == SERVE_404 || !strstr(http_req_path(req), "/blobs/sha256:")) {
        http_respond(req, 404, "text/plain", "no", 2);
        return;
    }
    if (!range || sscanf(range, "bytes=%llu-%llu", &a, &b) != 2 || a > b || b >= h->size) {
        http_respond(req, 416, "text/plain", "bad range", 9);
        return;
    }
    h->gets++;
    size_t n = (size_t)(b - a + 1);
    uint8_t *p = malloc(n);
    assert_non_null(p);
    memcpy(p, h->data + a, n);
    if (h->mode == SERVE_BAD_BYTES)
        p[n / 2] ^= 0x5a;
    char cr[96];
    snprintf(cr, sizeof cr, "bytes %llu-%llu/%zu", a, b, h->size);
    http_resp_header(req, "Content-Range", cr);
    http_respond(req, 206, "application/octet-stream", p, n);
    free(p);
}

static void on_holder_closed(void *ud)
{
    ((holder_t *)ud)->closed = 1;
}

typedef struct rig {
    uv_loop_t loop;
    node_t nodes[2]; /* 0: holds the blob (its engine is never asked), 1: fetches */
    holder_t holder;
    uint8_t *data;
    size_t size;
    char digest[72];
    char api[64];
    void *tor;
    size_t tor_len;
    swarm_fetch_t *f;
    fetch_ctx_t fc;
} rig_t;

static int seeding_now(void *ud)
{
    rig_t *r = ud;
    void *t;
    size_t len;
    if (swarm_torrent_get(r->nodes[0].sw, r->digest, &t, &len) != 0)
        return 0;
    free(t);
    return 1;
}

static int fetch_running(void *ud)
{
    swarm_fetch_t *f = ud;
    return f->state == FETCH_RUNNING && f->piece_len > 0 && f->n_pieces > 0;
}

/* The blob in node 0's store, its HTTP side serving mode, and node 1
 * fetching it with no engine peer and node 0's HTTP side as holder API. */
static void rig_open(rig_t *r, int mode)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(uv_loop_init(&r->loop), 0);
    swx_node_open(&r->loop, &r->nodes[0], "127.0.0.24", NULL, NULL);
    swx_node_open(&r->loop, &r->nodes[1], "127.0.0.25", NULL, NULL);
    r->size = (3u << 20) + 12345; /* pieces of 256 KiB and a short last one */
    r->data = random_bytes(r->size, 77);
    cas_ingest_t *in;
    char err[256] = "";
    assert_int_equal(cas_ingest_begin(r->nodes[0].cas, NULL, r->size, &in), 0);
    assert_int_equal(cas_ingest_write(in, r->data, r->size), 0);
    if (cas_ingest_commit(in, r->digest, NULL, err, sizeof err))
        fail_msg("commit: %s", err);
    assert_true(run_until(&r->loop, seeding_now, r, 20));
    assert_int_equal(swarm_torrent_get(r->nodes[0].sw, r->digest, &r->tor, &r->tor_len), 0);

    r->holder.data = r->data;
    r->holder.size = r->size;
    r->holder.mode = mode;
    http_callbacks_t cb = {.on_request = on_holder_request, .ud = &r->holder};
    assert_int_equal(http_server_new(&r->loop, NULL, &cb, &r->holder.srv), 0);
    assert_int_equal(http_server_listen(r->holder.srv, "127.0.0.24", 0), 0);
    snprintf(r->api, sizeof r->api, "127.0.0.24:%d", http_server_port(r->holder.srv));

    const char *apis[1] = {r->api};
    swarm_fetch_opts_t opts = {.holder_apis = apis, .n_holder_apis = 1};
    assert_int_equal(swarm_fetch_start(r->nodes[1].sw, r->digest, r->tor, r->tor_len, NULL, 0,
                                       &opts, NULL, on_done, &r->fc, &r->f),
                     0);
    assert_true(run_until(&r->loop, fetch_running, r->f, 20));
}

static void rig_close(rig_t *r)
{
    http_server_close(r->holder.srv, on_holder_closed, &r->holder);
    nodes_close(&r->loop, r->nodes, 2);
    assert_true(r->holder.closed);
    assert_int_equal(uv_loop_close(&r->loop), 0);
    free(r->tor);
    free(r->data);
}

/* Every piece, as a rescue would ask (its rescued bit set first). */
static int rescue_all(rig_t *r)
{
    swarm_fetch_t *f = r->f;
    if (!f->rescued)
        f->rescued = calloc(((size_t)f->n_pieces + 7) / 8, 1);
    assert_non_null(f->rescued);
    int *all = malloc(f->n_pieces * sizeof *all);
    assert_non_null(all);
    for (uint32_t i = 0; i < f->n_pieces; i++) {
        all[i] = (int)i;
        f->rescued[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    int rc = swarm__rescue_get(f, all, f->n_pieces);
    free(all);
    return rc;
}

static json_int_t status_int(swarm_t *s, const char *key)
{
    char *text = swarm_status(s);
    assert_non_null(text);
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(o);
    json_int_t v = json_integer_value(json_object_get(o, key));
    json_decref(o);
    return v;
}

static void test_rescue_by_get(void **state)
{
    (void)state;
    rig_t r;
    rig_open(&r, SERVE_OK);
    uint32_t n = r.f->n_pieces;
    assert_true(n >= 13);
    assert_int_equal(rescue_all(&r), 0);
    assert_true(run_until(&r.loop, fetch_done, &r.fc, 60));
    if (r.fc.status)
        fail_msg("fetch failed: %s", r.fc.msg);
    assert_int_equal(cas_blob_verify(r.nodes[1].cas, r.digest), 0);
    /* one GET per piece, nothing through the engine from the holder */
    assert_int_equal(r.holder.gets, (int)n);
    assert_int_equal(status_int(r.nodes[0].sw, "bytes_up"), 0);
    assert_int_equal(status_int(r.nodes[1].sw, "hash_failures"), 0);
    rig_close(&r);
}

static int failures_seen(void *ud)
{
    rig_t *r = ud;
    return !swarm__rescue_get_usable(r->f) && r->f->n_gets == 0;
}

static void bad_holder(int mode)
{
    rig_t r;
    rig_open(&r, mode);
    assert_int_equal(rescue_all(&r), 0);
    assert_true(run_until(&r.loop, failures_seen, &r, 30));
    /* given up on GETs: the next rescue unblocks the holders instead */
    assert_int_equal(swarm__rescue_get(r.f, (int[]){0}, 1), OX_EUNSUPPORTED);
    assert_true(r.f->gets_off);
    if (mode == SERVE_BAD_BYTES) {
        assert_true(r.holder.gets >= 3);
        assert_true(status_int(r.nodes[1].sw, "hash_failures") >= 3);
    } else {
        assert_int_equal(r.holder.gets, 0);
    }
    /* the failed pieces are up for a rescue again */
    size_t marked = 0;
    for (uint32_t i = 0; i < r.f->n_pieces; i++)
        marked += r.f->rescued[i / 8] >> (i % 8) & 1;
    assert_true(marked < r.f->n_pieces);
    assert_int_equal(r.fc.done, 0);
    swarm_fetch_cancel(r.f);
    assert_true(run_until(&r.loop, fetch_done, &r.fc, 10));
    assert_int_equal(r.fc.status, OX_ECANCELED);
    assert_int_not_equal(cas_blob_verify(r.nodes[1].cas, r.digest), 0);
    rig_close(&r);
}

static void test_rescue_get_bad_bytes(void **state)
{
    (void)state;
    bad_holder(SERVE_BAD_BYTES);
}

static void test_rescue_get_no_blob(void **state)
{
    (void)state;
    bad_holder(SERVE_404);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rescue_by_get),
        cmocka_unit_test(test_rescue_get_bad_bytes),
        cmocka_unit_test(test_rescue_get_no_blob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
