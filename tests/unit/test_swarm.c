/* swarm: settings, the one-pass tap, and real transfers between three swarm
 * instances in one process on one loop, bound to 127.0.0.2/.3/.4 with
 * separate temporary stores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cas/cas.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "common/timeutil.h"
#include "swarm/engine.h"
#include "swarm/merkle.h"
#include "swarm/swarm.h"
#include "swarm_fixture.h"
#include "swarm/torrent.h"

/* ---- fixtures ----------------------------------------------------------- */

static uv_thread_t main_thread;
static int off_loop_callbacks;

static void check_on_loop(void)
{
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &main_thread))
        off_loop_callbacks++;
}

static int idle_timeout_ms; /* 0 = the default; set by the timeout test */

typedef struct node_opts {
    uint64_t max_up;
    int verify_seeds;
} node_opts_t;

static void tune_node(swarm_config_t *cfg, void *ud)
{
    const node_opts_t *o = ud;
    cfg->max_upload = o->max_up;
    cfg->verify_seeds = o->verify_seeds;
    if (idle_timeout_ms)
        cfg->idle_timeout_ms = idle_timeout_ms;
}

static void node_open(uv_loop_t *loop, node_t *n, const char *ip, uint64_t max_up,
                      int verify_seeds)
{
    node_opts_t o = {max_up, verify_seeds};
    swx_hook = check_on_loop;
    swx_node_open(loop, n, ip, tune_node, &o);
}

static void ingest(cas_t *c, const uint8_t *p, size_t n, char digest[72])
{
    cas_ingest_t *in;
    char err[256] = "";
    assert_int_equal(cas_ingest_begin(c, NULL, n, &in), 0);
    for (size_t off = 0; off < n;) {
        size_t step = 1 + (off * 31 + 12345) % 300000; /* uneven writes */
        if (step > n - off)
            step = n - off;
        assert_int_equal(cas_ingest_write(in, p + off, step), 0);
        off += step;
    }
    int rc = cas_ingest_commit(in, digest, NULL, err, sizeof err);
    if (rc)
        fail_msg("commit: %s", err);
}

static json_t *status_of(swarm_t *s)
{
    char *text = swarm_status(s);
    assert_non_null(text);
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    free(text);
    assert_non_null(o);
    return o;
}

static json_int_t status_int(swarm_t *s, const char *key)
{
    json_t *o = status_of(s);
    json_int_t v = json_integer_value(json_object_get(o, key));
    json_decref(o);
    return v;
}

/* state of the torrent of digest in s's status, "" if none */
static void torrent_state(swarm_t *s, const char *digest, char *out, size_t cap,
                          json_int_t *uploaded)
{
    json_t *o = status_of(s), *t;
    size_t i;
    snprintf(out, cap, "%s", "");
    json_array_foreach(json_object_get(o, "torrents"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "digest")), digest) == 0) {
            snprintf(out, cap, "%s", json_string_value(json_object_get(t, "state")));
            if (uploaded)
                *uploaded = json_integer_value(json_object_get(t, "uploaded"));
        }
    }
    json_decref(o);
}

typedef struct seeding_wait {
    node_t *nodes;
    size_t n;
    const char *digest;
} seeding_wait_t;

static int all_seeding_and_listening(void *ud)
{
    seeding_wait_t *w = ud;
    for (size_t i = 0; i < w->n; i++) {
        char st[32];
        torrent_state(w->nodes[i].sw, w->digest, st, sizeof st, NULL);
        if (strcmp(st, "seeding") || !swarm_listen_port(w->nodes[i].sw))
            return 0;
    }
    return 1;
}

static void endpoint_of(node_t *n, const char *ip, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%d", ip, swarm_listen_port(n->sw));
}


/* ---- tests --------------------------------------------------------------- */

static void test_rate_parse(void **state)
{
    (void)state;
    struct {
        const char *in;
        int rc;
        uint64_t out;
    } cases[] = {
        {"100mbit", 0, 12500000},   {"12M", 0, 12000000},    {"12 M", 0, 12000000},
        {"12Mi", 0, 12582912},      {"1.5K", 0, 1500},       {"1.5Ki", 0, 1536},
        {"10MB", 0, 10000000},      {"10MiB", 0, 10485760},  {"8Mbit/s", 0, 1000000},
        {"1gbit", 0, 125000000},    {"800kbit", 0, 100000},  {"4096", 0, 4096},
        {"512KiB/s", 0, 524288},    {"0", 0, 0},             {"", 0, 0},
        {"unlimited", 0, 0},        {"-5", OX_EINVAL, 0},    {"12Q", OX_EINVAL, 0},
        {"abc", OX_EINVAL, 0},      {"1e400", OX_EINVAL, 0}, {"12M x", OX_EINVAL, 0},
        {"99999999999T", OX_EINVAL, 0}, {"5/s/s", OX_EINVAL, 0},
        {"1T", 0, 1000000000000},   {"1Ti", 0, 1099511627776}, {"2TiB/s", 0, 2199023255552},
        {"UNLIMITED", 0, 0},        {" 12M ", 0, 12000000},  {"0.6", 0, 1},
        {"1e19", 0, 10000000000000000000u}, {"10000000T", 0, 10000000000000000000u},
        {"nan", OX_EINVAL, 0},      {"NaN", OX_EINVAL, 0},   {"inf", OX_EINVAL, 0},
        {"infinity", OX_EINVAL, 0}, {"+5", OX_EINVAL, 0},    {"-0", OX_EINVAL, 0},
        {".", OX_EINVAL, 0},        {"5X", OX_EINVAL, 0},    {"0x10", OX_EINVAL, 0},
        {"0x1p4", OX_EINVAL, 0},    {"1e-400", OX_EINVAL, 0}, {"18446744073709551616", OX_EINVAL, 0},
        {"0.4", OX_EINVAL, 0},      {"1bit", OX_EINVAL, 0},  {"12M/s x", OX_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t v = 777;
        int rc = swarm_rate_parse(cases[i].in, &v);
        if (rc != cases[i].rc || (rc == 0 && v != cases[i].out))
            fail_msg("rate \"%s\": rc %d value %llu", cases[i].in, rc, (unsigned long long)v);
    }
    assert_int_equal(swarm_rate_parse(NULL, NULL), OX_EINVAL);

    char ip[64];
    int port;
    assert_int_equal(swarm_endpoint_parse("127.0.0.2:6881", ip, sizeof ip, &port), 0);
    assert_string_equal(ip, "127.0.0.2");
    assert_int_equal(port, 6881);
    assert_int_equal(swarm_endpoint_parse("[::1]:80", ip, sizeof ip, &port), 0);
    assert_string_equal(ip, "::1");
    assert_int_equal(swarm_endpoint_parse("example.com:80", ip, sizeof ip, &port), OX_EINVAL);
    assert_int_equal(swarm_endpoint_parse("1.2.3.4:0", ip, sizeof ip, &port), OX_EINVAL);
    assert_int_equal(swarm_endpoint_parse("1.2.3.4", ip, sizeof ip, &port), OX_EINVAL);
    assert_int_equal(swarm_endpoint_parse("1.2.3.4:99999", ip, sizeof ip, &port), OX_EINVAL);
    assert_int_equal(swarm_endpoint_parse("::1:80", ip, sizeof ip, &port), OX_EINVAL);
}

/* A blob committed to the store is hashed for its torrent in the same pass:
 * the tap sees each byte once, the record exists right at commit, equals what
 * libtorrent makes for the file, and the blob is then seeded. */
static void test_tap_one_pass(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node_t n;
    node_open(&loop, &n, "127.0.0.2", 0, 0);
    size_t size = (3u << 20) + 5;
    uint8_t *data = random_bytes(size, 11);
    char digest[72], path[512];
    ingest(n.cas, data, size, digest);
    assert_int_equal(status_int(n.sw, "tap_bytes"), (json_int_t)size);

    void *rec = NULL, *tor = NULL, *lt_tor = NULL;
    size_t rlen = 0, tlen = 0, lt_len = 0;
    assert_int_equal(cas_meta_get(n.cas, "torrent", digest, &rec, &rlen), 0);
    uint8_t ih[32], lt_ih[32];
    const void *t;
    size_t tl;
    assert_int_equal(swarm__rec_parse(rec, rlen, ih, &t, &tl), 0);
    assert_int_equal(cas_blob_path(n.cas, digest, path, sizeof path), 0);
    assert_int_equal(swarm_engine_libtorrent.make_torrent(path, merkle_piece_length(size), &lt_tor,
                                                          &lt_len, lt_ih), 0);
    assert_memory_equal(ih, lt_ih, 32);
    assert_int_equal(swarm_torrent_get(n.sw, digest, &tor, &tlen), 0);
    assert_int_equal(tlen, tl);
    assert_memory_equal(tor, t, tl);
    assert_int_equal(swarm_torrent_get(n.sw, "sha256:0123", &tor, &tlen), OX_EINVAL);
    char absent[72] = "sha256:";
    memset(absent + 7, 'a', 64);
    absent[71] = 0;
    assert_int_equal(swarm_torrent_get(n.sw, absent, &tor, &tlen), OX_ENOTFOUND);

    seeding_wait_t w = {&n, 1, digest};
    assert_true(run_until(&loop, all_seeding_and_listening, &w, 20));
    assert_int_equal(status_int(n.sw, "tap_bytes"), (json_int_t)size); /* no second pass */
    assert_int_equal(status_int(n.sw, "thread_violations"), 0);
    /* the leaves, stored when the blob was seeded: one sha256 per 16 KiB */
    void *tree = NULL;
    size_t tree_len = 0, n_leaves = (size + 16383) / 16384;
    assert_int_equal(cas_meta_get(n.cas, "merkle", digest, &tree, &tree_len), 0);
    assert_int_equal(tree_len, n_leaves * 32);
    for (size_t i = 0; i < n_leaves; i++) {
        uint8_t leaf[32];
        size_t off = i * 16384, len = size - off < 16384 ? size - off : 16384;
        ox_sha256_raw(data + off, len, leaf);
        assert_memory_equal((uint8_t *)tree + 32 * i, leaf, 32);
    }
    free(tree);
    assert_int_equal(swarm_set_rates(n.sw, 1000, 2000), 0);
    assert_int_equal(status_int(n.sw, "max_upload"), 1000);
    assert_int_equal(status_int(n.sw, "max_download"), 2000);
    free(rec);
    free(tor);
    free(lt_tor);
    free(data);
    nodes_close(&loop, &n, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A swarm closed before its loop saw a commit still stores that blob's
 * leaves (they wait in the inbox for the seeding otherwise). */
static void test_tree_stored_at_close(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node_t n;
    node_open(&loop, &n, "127.0.0.2", 0, 0);
    size_t size = (1u << 20) + 3;
    uint8_t *data = random_bytes(size, 13);
    char digest[72];
    ingest(n.cas, data, size, digest); /* the loop does not run in between */
    swarm_close(n.sw, swx_on_closed, &n);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_true(n.closed);
    n.sw = NULL;
    void *tree = NULL;
    size_t tree_len = 0;
    assert_int_equal(cas_meta_get(n.cas, "merkle", digest, &tree, &tree_len), 0);
    assert_int_equal(tree_len, (size + 16383) / 16384 * 32);
    free(tree);
    free(data);
    nodes_close(&loop, &n, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A blob that entered the store without the tap (e.g. an adopted Ollama
 * dir) gets its record lazily in the work pool and is seeded. */
static int record_ready(void *ud)
{
    void **a = ud;
    void *bytes = NULL;
    size_t len;
    int rc = swarm_torrent_get(a[0], a[1], &bytes, &len);
    free(bytes);
    return rc == 0;
}

static void test_lazy_record(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node_t n;
    node_open(&loop, &n, "127.0.0.2", 0, 0);
    size_t size = (2u << 20) + 77;
    uint8_t *data = random_bytes(size, 12);
    char digest[72], hex[65], path[512];
    ox_sha256_hex(data, size, hex);
    snprintf(digest, sizeof digest, "sha256:%s", hex);
    /* committed with the tap out of the way */
    swarm_t *sw = n.sw;
    cas_set_tap(n.cas, NULL);
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s/in", cas_tmp_dir(n.cas));
    assert_int_equal(ox_fs_write_atomic(tmp, data, size), 0);
    char err[256];
    assert_int_equal(cas_blob_adopt(n.cas, tmp, digest, err, sizeof err), 0);
    assert_int_equal(status_int(sw, "tap_bytes"), 0);

    void *bytes = NULL;
    size_t len = 0;
    assert_int_equal(swarm_torrent_get(sw, digest, &bytes, &len), OX_EBUSY);
    void *args[2] = {sw, digest};
    assert_true(run_until(&loop, record_ready, args, 20));
    assert_int_equal(swarm_seed_all(sw), 1);
    seeding_wait_t w = {&n, 1, digest};
    assert_true(run_until(&loop, all_seeding_and_listening, &w, 20));

    uint8_t ih[32], lt_ih[32];
    char name[128], e[128];
    uint64_t sz;
    void *lt_tor;
    size_t lt_len;
    assert_int_equal(swarm_torrent_get(sw, digest, &bytes, &len), 0);
    assert_int_equal(swarm_engine_libtorrent.inspect(bytes, len, ih, name, sizeof name, &sz, e, sizeof e), 0);
    assert_int_equal(cas_blob_path(n.cas, digest, path, sizeof path), 0);
    assert_int_equal(swarm_engine_libtorrent.make_torrent(path, merkle_piece_length(size), &lt_tor,
                                                          &lt_len, lt_ih), 0);
    assert_memory_equal(ih, lt_ih, 32);
    assert_int_equal(sz, size);
    free(lt_tor);
    free(bytes);
    free(data);
    nodes_close(&loop, &n, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

struct up_wait {
    void **nodes;
    size_t size;
};

static int uploads_seen(void *ud)
{
    struct up_wait *w = ud;
    node_t *a = w->nodes[0], *b = w->nodes[1];
    return status_int(a->sw, "bytes_up") + status_int(b->sw, "bytes_up") >= (json_int_t)w->size;
}

/* Holders A and B (upload capped so both contribute) serve C. */
static void test_fetch_from_two_seeders(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node_t nodes[3];
    const char *ips[3] = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};
    node_open(&loop, &nodes[0], ips[0], 8u << 20, 0);
    node_open(&loop, &nodes[1], ips[1], 8u << 20, 0);
    node_open(&loop, &nodes[2], ips[2], 0, 0);
    size_t size = (24u << 20) + 12345;
    uint8_t *data = random_bytes(size, 21);
    char digest[72], d2[72];
    ingest(nodes[0].cas, data, size, digest);
    ingest(nodes[1].cas, data, size, d2);
    assert_string_equal(digest, d2);
    seeding_wait_t w = {nodes, 2, digest};
    assert_true(run_until(&loop, all_seeding_and_listening, &w, 20));

    /* same content, same torrent on both holders */
    void *ta, *tb;
    size_t la, lb;
    assert_int_equal(swarm_torrent_get(nodes[0].sw, digest, &ta, &la), 0);
    assert_int_equal(swarm_torrent_get(nodes[1].sw, digest, &tb, &lb), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(ta, tb, la);

    char ea[64], eb[64];
    endpoint_of(&nodes[0], ips[0], ea, sizeof ea);
    endpoint_of(&nodes[1], ips[1], eb, sizeof eb);
    const char *peers[2] = {ea, eb};
    fetch_ctx_t fc = {0};
    swarm_fetch_t *f = NULL;

    /* refusals, before anything starts */
    char other[72] = "sha256:";
    memset(other + 7, 'b', 64);
    other[71] = 0;
    const char *bad_peer[1] = {"nowhere"};
    assert_int_equal(swarm_fetch_start(nodes[2].sw, other, ta, la, peers, 2, NULL, on_progress,
                                       on_done, &fc, &f), OX_EINVAL); /* torrent of other data */
    assert_int_equal(swarm_fetch_start(nodes[2].sw, digest, "d4:infoe", 8, peers, 2, NULL,
                                       on_progress, on_done, &fc, &f), OX_EINVAL);
    assert_int_equal(swarm_fetch_start(nodes[2].sw, digest, ta, la, bad_peer, 1, NULL,
                                       on_progress, on_done, &fc, &f), OX_EINVAL);
    assert_int_equal(swarm_fetch_start(nodes[0].sw, digest, ta, la, peers, 2, NULL, on_progress,
                                       on_done, &fc, &f), OX_EEXIST);
    /* no room for the blob (a file size limit stands in for a full disk):
     * refused before a byte is staged */
    struct rlimit rl0, rl;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl0), 0);
    rl = rl0;
    rl.rlim_cur = 1 << 20;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
    int full = swarm_fetch_start(nodes[2].sw, digest, ta, la, peers, 2, NULL, on_progress, on_done,
                                 &fc, &f);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl0), 0);
    assert_int_equal(full, OX_ETOOBIG);
    /* a torrent whose size is not the manifest's */
    swarm_fetch_opts_t wrong = {.size = 12345};
    assert_int_equal(swarm_fetch_start(nodes[2].sw, digest, ta, la, peers, 2, &wrong, on_progress,
                                       on_done, &fc, &f), OX_EINVAL);

    int64_t t0 = ox_time_mono_ns();
    assert_int_equal(swarm_fetch_start(nodes[2].sw, digest, ta, la, peers, 2, NULL, on_progress,
                                       on_done, &fc, &f), 0);
    assert_int_equal(swarm_fetch_start(nodes[2].sw, digest, ta, la, peers, 2, NULL, on_progress,
                                       on_done, &fc, NULL), OX_EBUSY);
    assert_string_equal(swarm_fetch_digest(f), digest);
    assert_true(run_until(&loop, fetch_done, &fc, 120));
    double secs = (double)(ox_time_mono_ns() - t0) / 1e9;
    if (fc.status)
        fail_msg("fetch failed: %s", fc.msg);
    assert_int_equal(fc.done, 1);
    assert_true(fc.progress_calls >= 2);
    assert_int_equal(fc.progress_backwards, 0);
    assert_int_equal(fc.last_done, size);
    assert_int_equal(fc.total, size);
    uint64_t got;
    assert_int_equal(cas_blob_stat(nodes[2].cas, digest, &got), 0);
    assert_int_equal(got, size);
    assert_int_equal(cas_blob_verify(nodes[2].cas, digest), 0);
    fprintf(stderr, "# fetched %zu bytes from two capped seeders in %.2f s\n", size, secs);

    /* the fetcher now seeds it, and both holders sent bytes */
    seeding_wait_t w3 = {nodes, 3, digest};
    assert_true(run_until(&loop, all_seeding_and_listening, &w3, 20));
    /* seeders' counters arrive with their next state updates */
    void *pair[2] = {&nodes[0], &nodes[1]};
    struct up_wait uw = {pair, size};
    run_until(&loop, uploads_seen, &uw, 10);
    json_int_t up_a = status_int(nodes[0].sw, "bytes_up"), up_b = status_int(nodes[1].sw, "bytes_up");
    fprintf(stderr, "# uploaded: A %lld, B %lld\n", (long long)up_a, (long long)up_b);
    assert_true(up_a > 0);
    assert_true(up_b > 0);
    assert_true(up_a + up_b >= (json_int_t)size);
    fprintf(stderr, "# downloaded: C %lld\n", (long long)status_int(nodes[2].sw, "bytes_down"));
    assert_true(status_int(nodes[2].sw, "bytes_down") >= (json_int_t)size);
    for (int i = 0; i < 3; i++)
        assert_int_equal(status_int(nodes[i].sw, "thread_violations"), 0);
    assert_int_equal(off_loop_callbacks, 0);
    /* nothing staged is left behind */
    char stage[512];
    snprintf(stage, sizeof stage, "%s/swarm/%s", cas_tmp_dir(nodes[2].cas), digest + 7);
    assert_int_not_equal(access(stage, F_OK), 0);
    free(ta);
    free(tb);
    free(data);
    nodes_close(&loop, nodes, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* B checks its blob, then its file rots on disk (bytes flipped under it).
 * C fetches from A and B: B's bad blocks fail their hashes, B is banned or at
 * least counted, and C completes from A with the right digest. */
static void test_corrupt_seeder(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node_t nodes[3];
    const char *ips[3] = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};
    node_open(&loop, &nodes[0], ips[0], 6u << 20, 0);
    node_open(&loop, &nodes[1], ips[1], 0, 1); /* verifies, then trusts what it checked */
    node_open(&loop, &nodes[2], ips[2], 0, 0);
    size_t size = (12u << 20) + 999;
    uint8_t *data = random_bytes(size, 31);
    char digest[72], path[512];
    ingest(nodes[0].cas, data, size, digest);
    ingest(nodes[1].cas, data, size, digest);
    seeding_wait_t w = {nodes, 2, digest};
    assert_true(run_until(&loop, all_seeding_and_listening, &w, 30));

    /* rot: one flipped byte in every piece of B's copy */
    assert_int_equal(cas_blob_path(nodes[1].cas, digest, path, sizeof path), 0);
    chmod(path, 0644);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    for (size_t off = 5000; off < size; off += 1u << 20) {
        uint8_t b = data[off] ^ 0x5a;
        assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    }
    close(fd);

    void *ta;
    size_t la;
    assert_int_equal(swarm_torrent_get(nodes[0].sw, digest, &ta, &la), 0);
    char ea[64], eb[64];
    endpoint_of(&nodes[0], ips[0], ea, sizeof ea);
    endpoint_of(&nodes[1], ips[1], eb, sizeof eb);
    const char *peers[2] = {eb, ea};
    fetch_ctx_t fc = {0};
    assert_int_equal(swarm_fetch_start(nodes[2].sw, digest, ta, la, peers, 2, NULL, on_progress,
                                       on_done, &fc, NULL), 0);
    assert_true(run_until(&loop, fetch_done, &fc, 120));
    if (fc.status)
        fail_msg("fetch failed: %s", fc.msg);
    assert_int_equal(cas_blob_verify(nodes[2].cas, digest), 0);
    json_t *st = status_of(nodes[2].sw);
    json_int_t fails = json_integer_value(json_object_get(st, "hash_failures"));
    size_t n_banned = json_array_size(json_object_get(st, "banned"));
    char *text = json_dumps(json_object_get(st, "banned"), 0);
    fprintf(stderr, "# hash failures %lld, banned %s\n", (long long)fails, text);
    free(text);
    assert_true(fails > 0);
    assert_true(n_banned >= 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(st, "banned"), 0)), eb);
    json_decref(st);
    assert_int_equal(off_loop_callbacks, 0);
    free(ta);
    free(data);
    nodes_close(&loop, nodes, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A fetch stopped midway (the node goes down without any final save, as on
 * kill -9) resumes on a fresh swarm over the reopened store from the pieces
 * it had verified, and completes. */
struct resume_wait {
    fetch_ctx_t *fc;
    const char *resume_path;
    uint64_t min_done;
    int64_t reached_ns; /* wall clock when min_done was seen */
};

/* min_done verified, and resume data written well after that, so asked for
 * after it and covering it */
static int partly_done(void *ud)
{
    struct resume_wait *w = ud;
    struct stat st;
    if (!w->reached_ns) {
        if (w->fc->last_done >= w->min_done)
            w->reached_ns = ox_time_now_ns();
        return 0;
    }
    if (stat(w->resume_path, &st) != 0)
        return 0;
    int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return mtime > w->reached_ns + 150000000; /* asked after reached_ns */
}

static void test_resume_after_restart(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node_t nodes[2];
    const char *ips[2] = {"127.0.0.2", "127.0.0.4"};
    node_open(&loop, &nodes[0], ips[0], 2u << 20, 0);
    node_open(&loop, &nodes[1], ips[1], 0, 0);
    size_t size = (16u << 20) + 4321;
    uint8_t *data = random_bytes(size, 41);
    char digest[72], ea[64], resume[512], models[256], st[256], err[256];
    ingest(nodes[0].cas, data, size, digest);
    seeding_wait_t w = {nodes, 1, digest};
    assert_true(run_until(&loop, all_seeding_and_listening, &w, 20));
    void *ta;
    size_t la;
    assert_int_equal(swarm_torrent_get(nodes[0].sw, digest, &ta, &la), 0);
    endpoint_of(&nodes[0], ips[0], ea, sizeof ea);
    const char *peers[1] = {ea};
    fetch_ctx_t fc = {0};
    assert_int_equal(swarm_fetch_start(nodes[1].sw, digest, ta, la, peers, 1, NULL, on_progress,
                                       on_done, &fc, NULL), 0);
    snprintf(resume, sizeof resume, "%s/swarm/%s.resume", cas_tmp_dir(nodes[1].cas), digest + 7);
    struct resume_wait rw = {&fc, resume, 6u << 20, 0};
    assert_true(run_until(&loop, partly_done, &rw, 60));
    assert_int_equal(fc.done, 0);

    /* down: the swarm goes (its fetch reports canceled), the store reopens */
    swarm_close(nodes[1].sw, swx_on_closed, &nodes[1]);
    while (!nodes[1].closed)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(fc.done, 1);
    assert_int_equal(fc.status, OX_ECANCELED);
    uint64_t had = fc.last_done;
    cas_close(nodes[1].cas);
    snprintf(models, sizeof models, "%s/models", nodes[1].dir);
    snprintf(st, sizeof st, "%s/state", nodes[1].dir);
    assert_int_equal(cas_open(models, st, &nodes[1].cas, err, sizeof err), 0);
    assert_int_equal(access(resume, F_OK), 0);
    swarm_config_t cfg;
    swarm_config_init(&cfg);
    snprintf(cfg.bind_ip, sizeof cfg.bind_ip, "%s", ips[1]);
    cfg.update_ms = 100;
    assert_int_equal(swarm_new(&loop, nodes[1].cas, &cfg, &nodes[1].sw, err, sizeof err), 0);
    nodes[1].closed = 0;

    fetch_ctx_t fc2 = {0};
    assert_int_equal(swarm_fetch_start(nodes[1].sw, digest, ta, la, peers, 1, NULL, on_progress,
                                       on_done, &fc2, NULL), 0);
    assert_true(run_until(&loop, fetch_done, &fc2, 60));
    if (fc2.status)
        fail_msg("resumed fetch failed: %s", fc2.msg);
    fprintf(stderr, "# verified before the restart %llu, first progress after %llu of %zu\n",
            (unsigned long long)had, (unsigned long long)fc2.first_done, size);
    assert_true(fc2.first_done >= (5u << 20)); /* continued from what was saved */
    assert_true(had >= (6u << 20));
    assert_int_equal(fc2.last_done, size);
    assert_int_equal(cas_blob_verify(nodes[1].cas, digest), 0);
    assert_int_not_equal(access(resume, F_OK), 0); /* cleaned after the commit */
    free(ta);
    free(data);
    nodes_close(&loop, nodes, 2);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Two fetchers stripe one blob from a capped origin and know each other:
 * both complete, and bad stripe options are refused. */
static int both_done(void *ud)
{
    fetch_ctx_t *f = ud;
    return f[0].done && f[1].done;
}

static void test_striped_fetchers(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node_t nodes[3];
    const char *ips[3] = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};
    node_open(&loop, &nodes[0], ips[0], 8u << 20, 0);
    node_open(&loop, &nodes[1], ips[1], 0, 0);
    node_open(&loop, &nodes[2], ips[2], 0, 0);
    size_t size = (12u << 20) + 1;
    uint8_t *data = random_bytes(size, 51);
    char digest[72], e[3][64];
    ingest(nodes[0].cas, data, size, digest);
    seeding_wait_t w = {nodes, 1, digest};
    assert_true(run_until(&loop, all_seeding_and_listening, &w, 20));
    while (!swarm_listen_port(nodes[1].sw) || !swarm_listen_port(nodes[2].sw))
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 3; i++)
        endpoint_of(&nodes[i], ips[i], e[i], sizeof e[i]);
    void *ta;
    size_t la;
    assert_int_equal(swarm_torrent_get(nodes[0].sw, digest, &ta, &la), 0);
    const char *origin[1] = {e[0]};
    fetch_ctx_t fc[2] = {{0}};
    swarm_fetch_opts_t bad = {.stripe_index = 2, .stripe_count = 2};
    assert_int_equal(swarm_fetch_start(nodes[1].sw, digest, ta, la, origin, 1, &bad, NULL,
                                       on_done, &fc[0], NULL), OX_EINVAL);
    for (int k = 0; k < 2; k++) {
        swarm_fetch_opts_t o = {.stripe_index = k, .stripe_count = 2};
        assert_int_equal(swarm_add_peer(nodes[1 + k].sw, e[2 - k]), 0); /* each other */
        assert_int_equal(swarm_add_peer(nodes[1 + k].sw, e[2 - k]), 0); /* idempotent */
        assert_int_equal(swarm_fetch_start(nodes[1 + k].sw, digest, ta, la, origin, 1, &o,
                                           on_progress, on_done, &fc[k], NULL), 0);
    }
    assert_int_equal(swarm_add_peer(nodes[1].sw, "not an endpoint"), OX_EINVAL);
    assert_true(run_until(&loop, both_done, fc, 120));
    for (int k = 0; k < 2; k++) {
        if (fc[k].status)
            fail_msg("striped fetch %d failed: %s", k, fc[k].msg);
        assert_int_equal(cas_blob_verify(nodes[1 + k].cas, digest), 0);
    }
    json_t *st = status_of(nodes[1].sw);
    assert_int_equal(json_array_size(json_object_get(st, "peers")), 1);
    json_decref(st);
    free(ta);
    free(data);
    nodes_close(&loop, nodes, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_stripe_assign(void **state)
{
    (void)state;
    int k = -1, n = -1;
    const char *three[] = {"10.0.0.3:7000", "10.0.0.12:7000", "10.0.0.2:7000"};
    /* byte-wise order: "10.0.0.12" < "10.0.0.2" < "10.0.0.3" < "10.0.0.4" */
    assert_int_equal(swarm_stripe_assign("10.0.0.4:7000", three, 3, &k, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(k, 3);
    assert_int_equal(swarm_stripe_assign("10.0.0.12:7000", three + 1, 2, &k, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(k, 0);
    /* self named in the list and repeats count once */
    const char *dup[] = {"b:1", "a:1", "b:1", "c:1", "a:1"};
    assert_int_equal(swarm_stripe_assign("b:1", dup, 5, &k, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(k, 1);
    /* every member of one set derives a distinct index, the same count */
    const char *set[] = {"10.77.1.11:5", "10.77.1.18:5", "10.77.1.13:5", "10.77.1.12:5",
                         "10.77.1.17:5", "10.77.1.14:5", "10.77.1.16:5", "10.77.1.15:5"};
    int seen[8] = {0};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(swarm_stripe_assign(set[i], set, 8, &k, &n), 0);
        assert_int_equal(n, 8);
        assert_true(k >= 0 && k < 8);
        seen[k]++;
    }
    for (int i = 0; i < 8; i++)
        assert_int_equal(seen[i], 1);
    /* alone: striping off */
    assert_int_equal(swarm_stripe_assign("a:1", NULL, 0, &k, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(k, 0);
    const char *self_only[] = {"a:1"};
    assert_int_equal(swarm_stripe_assign("a:1", self_only, 1, &k, &n), 0);
    assert_int_equal(n, 0);
    /* bad input */
    const char *with_null[] = {"a:1", NULL};
    assert_int_equal(swarm_stripe_assign("b:1", with_null, 2, &k, &n), OX_EINVAL);
    assert_int_equal(swarm_stripe_assign("", three, 3, &k, &n), OX_EINVAL);
    assert_int_equal(swarm_stripe_assign(NULL, three, 3, &k, &n), OX_EINVAL);
    assert_int_equal(swarm_stripe_assign("a:1", NULL, 2, &k, &n), OX_EINVAL);
}

struct origin_wait {
    node_t *origin;
    size_t size;
};

static int origin_sent(void *ud)
{
    struct origin_wait *w = ud;
    return status_int(w->origin->sw, "bytes_up") >= (json_int_t)w->size;
}

/* Two co-fetchers that know each other stripe and, once their share is in,
 * stop drawing from the origin: the origin sends about one copy, not two. */
static void test_striped_cofetchers_one_copy(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node_t nodes[3];
    const char *ips[3] = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};
    node_open(&loop, &nodes[0], ips[0], 8u << 20, 0);
    node_open(&loop, &nodes[1], ips[1], 0, 0);
    node_open(&loop, &nodes[2], ips[2], 0, 0);
    size_t size = (16u << 20) + 7;
    uint8_t *data = random_bytes(size, 61);
    char digest[72], e[3][64], self[64];
    ingest(nodes[0].cas, data, size, digest);
    seeding_wait_t w = {nodes, 1, digest};
    assert_true(run_until(&loop, all_seeding_and_listening, &w, 20));
    while (!swarm_listen_port(nodes[1].sw) || !swarm_listen_port(nodes[2].sw))
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 3; i++) {
        endpoint_of(&nodes[i], ips[i], e[i], sizeof e[i]);
        assert_int_equal(swarm_self_endpoint(nodes[i].sw, self, sizeof self), 0);
        assert_string_equal(self, e[i]);
    }
    void *ta;
    size_t la;
    assert_int_equal(swarm_torrent_get(nodes[0].sw, digest, &ta, &la), 0);
    const char *origin[1] = {e[0]};
    const char *bad_co[1] = {"not an endpoint"};
    fetch_ctx_t fc[2] = {{0}};
    swarm_fetch_opts_t bad = {.stripe_index = 0, .stripe_count = 2, .cofetchers = bad_co,
                              .n_cofetchers = 1};
    assert_int_equal(swarm_fetch_start(nodes[1].sw, digest, ta, la, origin, 1, &bad, NULL,
                                       on_done, &fc[0], NULL), OX_EINVAL);
    for (int k = 0; k < 2; k++) {
        /* what a pull derives from its probes: the other one, and a rank */
        const char *co[1] = {e[2 - k]};
        swarm_fetch_opts_t o = {.cofetchers = co, .n_cofetchers = 1};
        assert_int_equal(swarm_stripe_assign(e[1 + k], co, 1, &o.stripe_index, &o.stripe_count), 0);
        assert_int_equal(o.stripe_count, 2);
        assert_int_equal(o.stripe_index, k); /* "127.0.0.3" < "127.0.0.4" */
        assert_int_equal(swarm_fetch_start(nodes[1 + k].sw, digest, ta, la, origin, 1, &o,
                                           on_progress, on_done, &fc[k], NULL), 0);
    }
    assert_true(run_until(&loop, both_done, fc, 120));
    for (int k = 0; k < 2; k++) {
        if (fc[k].status)
            fail_msg("striped fetch %d failed: %s", k, fc[k].msg);
        assert_int_equal(cas_blob_verify(nodes[1 + k].cas, digest), 0);
    }
    struct origin_wait ow = {&nodes[0], size};
    assert_true(run_until(&loop, origin_sent, &ow, 10));
    json_int_t up = status_int(nodes[0].sw, "bytes_up");
    fprintf(stderr, "# origin sent %.2f copies to 2 striped fetchers\n", (double)up / (double)size);
    assert_true(up < (json_int_t)(size + size / 2));
    free(ta);
    free(data);
    nodes_close(&loop, nodes, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A co-fetcher that is not fetching (it lacks the blob and does nothing):
 * the fetcher completes its share and blocks the origin; the other share
 * never left the origin, so the fetcher rescues it (rescue.c: with two
 * fetchers, every piece of it is dealt to this one) and completes anyway.
 * The stall rule (lift the block after SWARM_STALL_MS without progress)
 * would have lifted it otherwise. */
static void test_stripe_stall_unblocks(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node_t nodes[3];
    const char *ips[3] = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};
    node_open(&loop, &nodes[0], ips[0], 1u << 20, 0); /* share in well before the rest */
    node_open(&loop, &nodes[1], ips[1], 0, 0);
    node_open(&loop, &nodes[2], ips[2], 0, 0);
    size_t size = (6u << 20) + 3;
    uint8_t *data = random_bytes(size, 71);
    char digest[72], e[3][64];
    ingest(nodes[0].cas, data, size, digest);
    seeding_wait_t w = {nodes, 1, digest};
    assert_true(run_until(&loop, all_seeding_and_listening, &w, 20));
    while (!swarm_listen_port(nodes[1].sw) || !swarm_listen_port(nodes[2].sw))
        uv_run(&loop, UV_RUN_ONCE);
    for (int i = 0; i < 3; i++)
        endpoint_of(&nodes[i], ips[i], e[i], sizeof e[i]);
    void *ta;
    size_t la;
    assert_int_equal(swarm_torrent_get(nodes[0].sw, digest, &ta, &la), 0);
    const char *origin[1] = {e[0]}, *co[1] = {e[2]};
    fetch_ctx_t fc = {0};
    swarm_fetch_opts_t o = {.stripe_index = 1, .stripe_count = 2, .cofetchers = co,
                            .n_cofetchers = 1};
    assert_int_equal(swarm_fetch_start(nodes[1].sw, digest, ta, la, origin, 1, &o, on_progress,
                                       on_done, &fc, NULL), 0);
    assert_true(run_until(&loop, fetch_done, &fc, 60));
    if (fc.status)
        fail_msg("fetch failed: %s", fc.msg);
    assert_int_equal(cas_blob_verify(nodes[1].cas, digest), 0);
    assert_int_equal(fc.last_done, size);
    /* it did block the origin after its share, then drew from it again for
     * the whole of the idle co-fetcher's share */
    assert_int_equal(status_int(nodes[1].sw, "stripe_blocks"), 1);
    json_int_t rescued = status_int(nodes[1].sw, "stripe_rescued");
    json_int_t stalls = status_int(nodes[1].sw, "stripe_stalls");
    fprintf(stderr, "# rescued %lld pieces, %lld stalls\n", (long long)rescued, (long long)stalls);
    assert_true(rescued > 0 || stalls == 1);
    free(ta);
    free(data);
    nodes_close(&loop, nodes, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A progress callback that cancels the fetch once it reports the whole blob
 * (a pull whose client went away): the fetch must end once, canceled, with
 * nothing committed, and no use of the torrent it already left. */
typedef struct cancel_ctx {
    fetch_ctx_t fc;
    int cancels;
} cancel_ctx_t;

static void on_progress_cancel_at_end(swarm_fetch_t *f, uint64_t done, uint64_t total, void *ud)
{
    cancel_ctx_t *c = ud;
    on_progress(f, done, total, &c->fc);
    if (done == total) {
        c->cancels++;
        swarm_fetch_cancel(f);
        swarm_fetch_cancel(f); /* twice: the second is a no-op */
    }
}

static void on_done_cancel(swarm_fetch_t *f, int status, const char *msg, void *ud)
{
    on_done(f, status, msg, &((cancel_ctx_t *)ud)->fc);
}

static int cancel_done(void *ud)
{
    return ((cancel_ctx_t *)ud)->fc.done > 0;
}

struct tor_gone {
    swarm_t *sw;
    const char *digest;
};

static int torrent_gone(void *ud)
{
    struct tor_gone *g = ud;
    char st[32];
    torrent_state(g->sw, g->digest, st, sizeof st, NULL);
    return st[0] == 0;
}

static void test_cancel_in_final_progress(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node_t nodes[2];
    const char *ips[2] = {"127.0.0.2", "127.0.0.4"};
    node_open(&loop, &nodes[0], ips[0], 0, 0);
    node_open(&loop, &nodes[1], ips[1], 0, 0);
    size_t size = (2u << 20) + 77;
    uint8_t *data = random_bytes(size, 91);
    char digest[72], ea[64];
    ingest(nodes[0].cas, data, size, digest);
    seeding_wait_t w = {nodes, 1, digest};
    assert_true(run_until(&loop, all_seeding_and_listening, &w, 20));
    void *ta;
    size_t la;
    assert_int_equal(swarm_torrent_get(nodes[0].sw, digest, &ta, &la), 0);
    endpoint_of(&nodes[0], ips[0], ea, sizeof ea);
    const char *peers[1] = {ea};
    cancel_ctx_t cc = {0};
    assert_int_equal(swarm_fetch_start(nodes[1].sw, digest, ta, la, peers, 1, NULL,
                                       on_progress_cancel_at_end, on_done_cancel, &cc, NULL), 0);
    assert_true(run_until(&loop, cancel_done, &cc, 60));
    for (int i = 0; i < 5; i++)
        uv_run(&loop, UV_RUN_NOWAIT); /* a second done would show here */
    assert_int_equal(cc.cancels, 1);
    assert_int_equal(cc.fc.done, 1);
    assert_int_equal(cc.fc.status, OX_ECANCELED);
    assert_int_equal(cc.fc.last_done, size);
    uint64_t have = 0;
    assert_int_not_equal(cas_blob_stat(nodes[1].cas, digest, &have), 0); /* not committed */
    /* the fetcher is still sound: once the engine let go of the canceled
     * torrent, a new fetch of the same blob completes */
    struct tor_gone tg = {nodes[1].sw, digest};
    assert_true(run_until(&loop, torrent_gone, &tg, 20));
    fetch_ctx_t fc = {0};
    assert_int_equal(swarm_fetch_start(nodes[1].sw, digest, ta, la, peers, 1, NULL, on_progress,
                                       on_done, &fc, NULL), 0);
    assert_true(run_until(&loop, fetch_done, &fc, 60));
    if (fc.status)
        fail_msg("second fetch failed: %s", fc.msg);
    assert_int_equal(cas_blob_verify(nodes[1].cas, digest), 0);
    free(ta);
    free(data);
    nodes_close(&loop, nodes, 2);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* The only holder goes away mid-fetch: the fetch must end with OX_ETIMEOUT
 * after the idle timeout instead of waiting forever. */
static int some_progress(void *ud)
{
    fetch_ctx_t *c = ud;
    return c->last_done >= (1u << 20) || c->done;
}

static void test_fetch_times_out_without_holders(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node_t nodes[2];
    const char *ips[2] = {"127.0.0.2", "127.0.0.4"};
    idle_timeout_ms = 4000; /* well above the start-up of a fetch under ASan */
    node_open(&loop, &nodes[0], ips[0], 1u << 20, 0); /* slow: still running when cut */
    node_open(&loop, &nodes[1], ips[1], 0, 0);
    idle_timeout_ms = 0;
    size_t size = (12u << 20) + 5;
    uint8_t *data = random_bytes(size, 93);
    char digest[72], ea[64];
    ingest(nodes[0].cas, data, size, digest);
    seeding_wait_t w = {nodes, 1, digest};
    assert_true(run_until(&loop, all_seeding_and_listening, &w, 20));
    void *ta;
    size_t la;
    assert_int_equal(swarm_torrent_get(nodes[0].sw, digest, &ta, &la), 0);
    endpoint_of(&nodes[0], ips[0], ea, sizeof ea);
    const char *peers[1] = {ea};
    fetch_ctx_t fc = {0};
    assert_int_equal(swarm_fetch_start(nodes[1].sw, digest, ta, la, peers, 1, NULL, on_progress,
                                       on_done, &fc, NULL), 0);
    assert_true(run_until(&loop, some_progress, &fc, 30));
    assert_int_equal(fc.done, 0);

    /* the holder stops */
    swarm_close(nodes[0].sw, swx_on_closed, &nodes[0]);
    while (!nodes[0].closed)
        uv_run(&loop, UV_RUN_ONCE);
    nodes[0].sw = NULL;
    int64_t cut = ox_time_mono_ns();
    assert_true(run_until(&loop, fetch_done, &fc, 30));
    double waited = (double)(ox_time_mono_ns() - cut) / 1e9;
    fprintf(stderr, "# ended after %.2f s: %s (%llu of %zu verified)\n", waited, fc.msg,
            (unsigned long long)fc.last_done, size);
    assert_int_equal(fc.status, OX_ETIMEOUT);
    assert_string_equal(fc.msg, "no progress from any peer");
    assert_true(fc.last_done < size);
    assert_true(waited >= 3.0 && waited < 20.0);
    uint64_t have = 0;
    assert_int_not_equal(cas_blob_stat(nodes[1].cas, digest, &have), 0);
    free(ta);
    free(data);
    nodes_close(&loop, nodes, 2);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    main_thread = uv_thread_self();
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_parse),
        cmocka_unit_test(test_tap_one_pass),
        cmocka_unit_test(test_tree_stored_at_close),
        cmocka_unit_test(test_lazy_record),
        cmocka_unit_test(test_fetch_from_two_seeders),
        cmocka_unit_test(test_corrupt_seeder),
        cmocka_unit_test(test_resume_after_restart),
        cmocka_unit_test(test_striped_fetchers),
        cmocka_unit_test(test_stripe_assign),
        cmocka_unit_test(test_striped_cofetchers_one_copy),
        cmocka_unit_test(test_stripe_stall_unblocks),
        cmocka_unit_test(test_cancel_in_final_progress),
        cmocka_unit_test(test_fetch_times_out_without_holders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
