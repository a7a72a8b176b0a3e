/* swarm: the end of a fetch. The fetch's torrent keeps serving while the
 * store commits the blob and then goes on as the blob's seed from blobs/
 * (no remove and re-add), having hashed the blob while it came in. A blob
 * the store removes stops being seeded.
 * Real transfers between swarm instances in one process on one loop, bound
 * to 127.0.0.21-23 (apart from test_swarm's addresses). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cas/cas.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/timeutil.h"
#include "swarm/swarm.h"
#include "common/buf.h"
#include "common/sha256.h"
#include "swarm/swarm_int.h"
#include "swarm/torrent.h"
#include "swarm_fixture.h"

static void node_open(uv_loop_t *loop, node_t *n, const char *ip)
{
    swx_node_open(loop, n, ip, NULL, NULL);
}

static void ingest_random(cas_t *c, size_t n, unsigned seed, char digest[72])
{
    uint8_t *p = random_bytes(n, seed);
    cas_ingest_t *in;
    char err[256] = "";
    assert_int_equal(cas_ingest_begin(c, NULL, n, &in), 0);
    assert_int_equal(cas_ingest_write(in, p, n), 0);
    if (cas_ingest_commit(in, digest, NULL, err, sizeof err))
        fail_msg("commit: %s", err);
    free(p);
}

/* The torrent of digest in s's status (a new reference), or NULL. */
static json_t *torrent_of(swarm_t *s, const char *digest)
{
    char *text = swarm_status(s);
    assert_non_null(text);
    json_t *o = json_loads(text, 0, NULL), *t, *found = NULL;
    free(text);
    assert_non_null(o);
    size_t i;
    json_array_foreach(json_object_get(o, "torrents"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "digest")), digest) == 0)
            found = json_incref(t);
    }
    json_decref(o);
    return found;
}

typedef struct tor_wait {
    node_t *n;
    const char *digest;
    json_int_t min_up; /* and at least this many bytes uploaded */
} tor_wait_t;

static int seeding(void *ud)
{
    tor_wait_t *w = ud;
    json_t *t = torrent_of(w->n->sw, w->digest);
    int ok = t && strcmp(json_string_value(json_object_get(t, "state")), "seeding") == 0 &&
             json_integer_value(json_object_get(t, "uploaded")) >= w->min_up &&
             swarm_listen_port(w->n->sw) > 0;
    json_decref(t);
    return ok;
}


static void endpoint_of(node_t *n, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%d", n->ip, swarm_listen_port(n->sw));
}

static void fetch_from(uv_loop_t *loop, node_t *to, const char *digest, const void *tor,
                       size_t len, const char *const *peers, size_t n_peers)
{
    fetch_ctx_t fc = {0};
    assert_int_equal(swarm_fetch_start(to->sw, digest, tor, len, peers, n_peers, NULL, NULL,
                                       on_done, &fc, NULL), 0);
    assert_true(run_until(loop, fetch_done, &fc, 90));
    if (fc.status)
        fail_msg("fetch failed: %s", fc.msg);
    assert_int_equal(cas_blob_verify(to->cas, digest), 0);
}

/* Nodes A, B, C on 127.0.0.21-23; A holds a random blob of size bytes
 * (digest) and seeds it. */
static void three_nodes_one_seed(uv_loop_t *loop, node_t nodes[3], size_t size, unsigned seed,
                                 char digest[72])
{
    uv_loop_init(loop);
    node_open(loop, &nodes[0], "127.0.0.21");
    node_open(loop, &nodes[1], "127.0.0.22");
    node_open(loop, &nodes[2], "127.0.0.23");
    ingest_random(nodes[0].cas, size, seed, digest);
    tor_wait_t wa = {&nodes[0], digest, 0};
    assert_true(run_until(loop, seeding, &wa, 20));
}

/* B fetches from A; its torrent is not taken out of the engine for the
 * commit but goes on as the seed, reading the blob from blobs/ (the staged
 * file is gone). Then A is throttled to a trickle and C fetches from A and
 * B: B serves nearly all of it from that same torrent, which neither failed
 * nor was re-added (from_fetch stays true). */
static void test_fetched_torrent_goes_on_seeding(void **state)
{
    (void)state;
    uv_loop_t loop;
    node_t nodes[3];
    size_t size = (12u << 20) + 777;
    char digest[72];
    three_nodes_one_seed(&loop, nodes, size, 5, digest);
    json_t *ta = torrent_of(nodes[0].sw, digest);
    assert_false(json_is_true(json_object_get(ta, "from_fetch"))); /* ingested, not fetched */
    json_decref(ta);
    void *tor;
    size_t len;
    assert_int_equal(swarm_torrent_get(nodes[0].sw, digest, &tor, &len), 0);

    char ea[64], eb[64];
    endpoint_of(&nodes[0], ea, sizeof ea);
    const char *from_a[1] = {ea};
    fetch_from(&loop, &nodes[1], digest, tor, len, from_a, 1);

    tor_wait_t wb = {&nodes[1], digest, 0};
    assert_true(run_until(&loop, seeding, &wb, 20));
    json_t *tb = torrent_of(nodes[1].sw, digest);
    assert_true(json_is_true(json_object_get(tb, "from_fetch")));
    assert_string_equal(json_string_value(json_object_get(tb, "role")), "seed");
    json_decref(tb);
    char stage[512];
    snprintf(stage, sizeof stage, "%s/swarm/%s", cas_tmp_dir(nodes[1].cas), digest + 7);
    assert_int_not_equal(access(stage, F_OK), 0);

    /* A: 4 KiB/s, so C's bytes come from B's kept torrent */
    assert_int_equal(swarm_set_rates(nodes[0].sw, 4096, 0), 0);
    endpoint_of(&nodes[1], eb, sizeof eb);
    const char *from_ab[2] = {ea, eb};
    fetch_from(&loop, &nodes[2], digest, tor, len, from_ab, 2);
    tor_wait_t wb2 = {&nodes[1], digest, (json_int_t)(size * 9 / 10)};
    assert_true(run_until(&loop, seeding, &wb2, 20));
    tb = torrent_of(nodes[1].sw, digest);
    assert_true(json_is_true(json_object_get(tb, "from_fetch")));
    fprintf(stderr, "# B (kept torrent) uploaded %lld of %zu bytes\n",
            (long long)json_integer_value(json_object_get(tb, "uploaded")), size);
    json_decref(tb);
    free(tor);
    nodes_close(&loop, nodes, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static int gone(void *ud)
{
    tor_wait_t *w = ud;
    json_t *t = torrent_of(w->n->sw, w->digest);
    json_decref(t);
    return t == NULL;
}

static json_int_t status_int(swarm_t *s, const char *key)
{
    char *text = swarm_status(s);
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    json_int_t v = json_integer_value(json_object_get(o, key));
    json_decref(o);
    return v;
}

static json_int_t forgotten(swarm_t *s)
{
    return status_int(s, "forgotten");
}

/* The store drops blob X (it rotted on disk and failed its check): X's seed
 * leaves the engine through the store's remove hook; Y, untouched, stays. */
static void test_removed_blob_is_no_longer_seeded(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    node_t n;
    node_open(&loop, &n, "127.0.0.21");
    char x[72], y[72];
    ingest_random(n.cas, (2u << 20) + 3, 11, x);
    ingest_random(n.cas, (1u << 20) + 5, 12, y);
    tor_wait_t wx = {&n, x, 0}, wy = {&n, y, 0};
    assert_true(run_until(&loop, seeding, &wx, 20));
    assert_true(run_until(&loop, seeding, &wy, 20));
    assert_int_equal(forgotten(n.sw), 0);

    char path[512];
    assert_int_equal(cas_blob_path(n.cas, x, path, sizeof path), 0);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, 4096, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, 4096, SEEK_SET);
    fputc(c ^ 0x5a, fp);
    fclose(fp);
    assert_int_not_equal(cas_blob_verify(n.cas, x), 0); /* removes it */
    uint64_t size;
    assert_int_not_equal(cas_blob_stat(n.cas, x, &size), 0);

    assert_true(run_until(&loop, gone, &wx, 10));
    assert_int_equal(forgotten(n.sw), 1);
    assert_true(seeding(&wy));
    /* a torrent that is asked for now is refused: the store lacks it */
    void *tor;
    size_t len;
    assert_int_equal(swarm_torrent_get(n.sw, x, &tor, &len), OX_ENOTFOUND);
    nodes_close(&loop, &n, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
}

typedef struct behind_wait {
    node_t *n;
    json_int_t min;
} behind_wait_t;

typedef struct saved_wait {
    const char *path;
    int64_t after_ns; /* realtime */
} saved_wait_t;

/* The file was written after after_ns. */
static int saved_since(void *ud)
{
    saved_wait_t *w = ud;
    int64_t mtime;
    return ox_fs_stat(w->path, NULL, &mtime) == 0 && mtime > w->after_ns;
}

static int hashed_some(void *ud)
{
    behind_wait_t *w = ud;
    return status_int(w->n->sw, "hashed_behind") >= w->min;
}

/* Hash-behind (behind.c): B hashes the blob while it comes from A (held to
 * 6 MiB/s, so the download spans many feeds), and the commit has only the
 * tail left. A fetch cancelled while it hashes ends cleanly (the feed in
 * flight is dropped, nothing leaks) and keeps its staged data; the fetch
 * started again resumes from it: the pieces the engine finds there are
 * reported like downloaded ones, so they are hashed at once (while A sends
 * a trickle), not at the commit, and the right blob is committed. */
static void test_fetch_hashes_behind(void **state)
{
    (void)state;
    uv_loop_t loop;
    node_t nodes[3];
    size_t size = (24u << 20) + 4321;
    char digest[72];
    three_nodes_one_seed(&loop, nodes, size, 21, digest);
    void *tor;
    size_t len;
    assert_int_equal(swarm_torrent_get(nodes[0].sw, digest, &tor, &len), 0);
    assert_int_equal(swarm_set_rates(nodes[0].sw, 6u << 20, 0), 0);
    char ea[64];
    endpoint_of(&nodes[0], ea, sizeof ea);
    const char *from_a[1] = {ea};

    fetch_from(&loop, &nodes[1], digest, tor, len, from_a, 1);
    json_int_t behind = status_int(nodes[1].sw, "hashed_behind");
    fprintf(stderr, "# hashed during the download: %lld of %zu bytes\n", (long long)behind,
            size);
    assert_true(behind >= (json_int_t)(8u << 20));
    assert_true(behind <= (json_int_t)size);

    /* C: cancelled once it hashed 8 MiB and saved resume data, then
     * resumed; B (which C meets through A) serves only a trickle */
    assert_int_equal(swarm_set_rates(nodes[1].sw, 64u << 10, 0), 0);
    fetch_ctx_t fc = {0};
    swarm_fetch_t *f;
    assert_int_equal(swarm_fetch_start(nodes[2].sw, digest, tor, len, from_a, 1, NULL, NULL,
                                       on_done, &fc, &f), 0);
    behind_wait_t bw = {&nodes[2], 8u << 20};
    assert_true(run_until(&loop, hashed_some, &bw, 60));
    /* resume data written after that vouches for those 8 MiB at least */
    char resume[512];
    snprintf(resume, sizeof resume, "%s/swarm/%s.resume", cas_tmp_dir(nodes[2].cas), digest + 7);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    saved_wait_t sw = {resume, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec};
    assert_true(run_until(&loop, saved_since, &sw, 10));
    json_int_t staged = 8u << 20;
    assert_int_equal(fc.done, 0);
    swarm_fetch_cancel(f);
    assert_true(run_until(&loop, fetch_done, &fc, 10));
    assert_int_equal(fc.status, OX_ECANCELED);
    assert_int_not_equal(cas_blob_verify(nodes[2].cas, digest), 0);
    char stage[512];
    snprintf(stage, sizeof stage, "%s/swarm/%s/sha256-%s", cas_tmp_dir(nodes[2].cas),
             digest + 7, digest + 7);
    assert_int_equal(access(stage, F_OK), 0); /* kept for the resume */
    tor_wait_t wc = {&nodes[2], digest, 0};
    assert_true(run_until(&loop, gone, &wc, 10)); /* the engine let go of it */
    /* what is on disk (its front, nearly all of it: C fetched in order)
     * hashed long before A's trickle (under 1 MiB in the time allowed)
     * could have brought it */
    assert_int_equal(swarm_set_rates(nodes[0].sw, 64u << 10, 0), 0);
    fetch_ctx_t fc2 = {0};
    assert_int_equal(swarm_fetch_start(nodes[2].sw, digest, tor, len, from_a, 1, NULL, NULL,
                                       on_done, &fc2, &f), 0);
    bw.min = status_int(nodes[2].sw, "hashed_behind") + staged / 2;
    assert_true(run_until(&loop, hashed_some, &bw, 12));
    assert_int_equal(fc2.done, 0);
    assert_int_equal(swarm_set_rates(nodes[0].sw, 0, 0), 0);
    assert_true(run_until(&loop, fetch_done, &fc2, 60));
    if (fc2.status)
        fail_msg("resumed fetch failed: %s", fc2.msg);
    assert_int_equal(cas_blob_verify(nodes[2].cas, digest), 0);
    free(tor);
    nodes_close(&loop, nodes, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Striping: when a fetcher's own share (from the holders) lags its progress
 * overall, it throttles its co-fetchers, with hysteresis, and never once the
 * share is complete or before half of the blob is in. */
/* A seed whose tree record is bad is added for the engine to check the file
 * (its record and tree are read in the work pool); it still seeds, and a
 * peer gets the right blob from it. */
static void test_seed_checks_without_tree(void **state)
{
    (void)state;
    uv_loop_t loop;
    node_t n[2];
    uv_loop_init(&loop);
    node_open(&loop, &n[0], "127.0.0.21");
    node_open(&loop, &n[1], "127.0.0.22");
    size_t size = (3u << 20) + 5;
    uint8_t *p = random_bytes(size, 31);
    char digest[72], hex[65], tmp[512], err[256] = "";
    ox_sha256_hex(p, size, hex);
    snprintf(digest, sizeof digest, "sha256:%s", hex);
    cas_set_tap(n[0].cas, NULL); /* no record at the commit */
    snprintf(tmp, sizeof tmp, "%s/in", cas_tmp_dir(n[0].cas));
    assert_int_equal(ox_fs_write_atomic(tmp, p, size), 0);
    if (cas_blob_adopt(n[0].cas, tmp, digest, err, sizeof err))
        fail_msg("adopt: %s", err);
    ox_buf_t rec = OX_BUF_INIT;
    assert_int_equal(swarm__torrent_of_file(n[0].cas, digest, &rec), 0);
    assert_int_equal(cas_meta_put(n[0].cas, SWARM_META_TREE, digest, "short", 5), 0);
    assert_int_equal(swarm_seed_blob(n[0].sw, digest), 0);
    tor_wait_t wa = {&n[0], digest, 0};
    assert_true(run_until(&loop, seeding, &wa, 20));
    uint8_t ih[32];
    const void *tb;
    size_t tlen;
    assert_int_equal(swarm__rec_parse(rec.data, rec.len, ih, &tb, &tlen), 0);
    char ep[64];
    endpoint_of(&n[0], ep, sizeof ep);
    const char *peers[] = {ep};
    fetch_from(&loop, &n[1], digest, tb, tlen, peers, 1);
    ox_buf_free(&rec);
    free(p);
    nodes_close(&loop, n, 2);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_stripe_lagging(void **state)
{
    (void)state;
    uint64_t size = 1000;
    assert_false(swarm__stripe_lagging(0, 0, 500, size, 0));    /* not striped */
    assert_false(swarm__stripe_lagging(5, 100, 0, 0, 0));       /* size unknown */
    assert_false(swarm__stripe_lagging(0, 100, 150, size, 0));  /* too early */
    assert_false(swarm__stripe_lagging(10, 100, 450, size, 0)); /* still too early */
    assert_false(swarm__stripe_lagging(50, 100, 500, size, 0)); /* even */
    assert_false(swarm__stripe_lagging(90, 100, 500, size, 0)); /* ahead */
    assert_true(swarm__stripe_lagging(40, 100, 500, size, 0));  /* 10 points behind */
    assert_false(swarm__stripe_lagging(46, 100, 500, size, 0)); /* 4: not yet... */
    assert_true(swarm__stripe_lagging(46, 100, 500, size, 1));  /* ...but not caught up */
    assert_false(swarm__stripe_lagging(50, 100, 500, size, 1)); /* caught up */
    assert_false(swarm__stripe_lagging(100, 100, 900, size, 1)); /* share complete */
    assert_true(swarm__stripe_lagging(10, 100, 5000, size, 0)); /* done is clamped to size */
}

/* Rescue: every piece of a share has exactly one helper, never its owner,
 * and a share's pieces are spread over all the other fetchers. */
static void test_rescue_helper(void **state)
{
    (void)state;
    assert_int_equal(swarm__rescue_helper(5, 1), -1);
    assert_int_equal(swarm__rescue_helper(-1, 4), -1);
    for (int k = 2; k <= 9; k++) {
        int seen[9][9] = {{0}};
        for (int p = 0; p < 40 * k; p++) {
            int h = swarm__rescue_helper(p, k);
            assert_true(h >= 0 && h < k);
            assert_int_not_equal(h, p % k);
            seen[p % k][h]++;
        }
        for (int owner = 0; owner < k; owner++)
            for (int h = 0; h < k; h++)
                if (h != owner)
                    assert_true(seen[owner][h] > 0);
    }
}

/* Rescue plan: fetcher 1 of 4, its share in. Share 2 never left the holder
 * (only the seed has its pieces), share 3 is nearly everywhere: after two
 * looks with share 2 not moving, fetcher 1 takes exactly the orphans of
 * share 2 dealt to it, none it already has, none of share 3; nothing at a
 * first look, nothing while the share moves, nothing once too few orphans
 * are left. */
static void test_rescue_plan(void **state)
{
    (void)state;
    enum { N = 64, K = 4 };
    uint8_t have[N / 8] = {0};
    swarm_fetch_t f;
    memset(&f, 0, sizeof f);
    f.stripe_count = K;
    f.stripe_index = 1;
    f.have = have;
    f.n_pieces = N;
    int avail[N], out[N];
    size_t n_out, orphans[K];
    int seeds = 1; /* the holder */
    for (int p = 0; p < N; p++) {
        avail[p] = seeds + (p % K == 2 ? 0 : 3); /* share 2: the seed alone */
        if (p % K == 1)
            have[p / 8] |= (uint8_t)(1u << (p % 8)); /* own share: in */
    }
    avail[3] = seeds; /* one orphan of share 3: too few to rescue */
    have[18 / 8] |= 1u << (18 % 8); /* a piece of share 2 we already have */
    swarm__rescue_plan(&f, avail, N, seeds, orphans, out, &n_out);
    assert_int_equal(orphans[2], 15);
    assert_int_equal(orphans[3], 1);
    assert_int_equal(orphans[1], 0);
    /* share 2 lags: its orphans but the first four (11: pieces 22..62) are
     * dealt over the three helpers; each takes its own, none twice */
    int taken[N] = {0};
    for (int self = 0; self < K; self++) {
        if (self == 2)
            continue;
        f.stripe_index = self;
        swarm__rescue_plan(&f, avail, N, seeds, orphans, out, &n_out);
        for (size_t i = 0; i < n_out; i++) {
            assert_int_equal(out[i] % K, 2);
            assert_int_equal(swarm__rescue_helper(out[i], K), self);
            taken[out[i]]++;
        }
    }
    for (int p = 0; p < N; p++)
        assert_int_equal(taken[p], p % K == 2 && p >= 22 ? 1 : 0);
    /* share 2 now mostly relayed: 3 orphans left, its owner's to take */
    f.stripe_index = 1;
    for (int p = 0; p < N; p++)
        if (p % K == 2 && p > 12)
            avail[p] = seeds + 2;
    swarm__rescue_plan(&f, avail, N, seeds, orphans, out, &n_out);
    assert_int_equal(n_out, 0);
    assert_int_equal(orphans[2], 3);
    /* not striped: nothing */
    f.stripe_count = 1;
    swarm__rescue_plan(&f, avail, N, seeds, orphans, out, &n_out);
    assert_int_equal(n_out, 0);
}

/* Own share by quarters 7..4, front first; every other piece 1..3, front
 * first, and below every piece of the own share. */
static void test_stripe_prio(void **state)
{
    (void)state;
    int np = 512, k = 8, idx = 3, own_seen[8] = {0};
    for (int p = 0; p < np; p++) {
        int pr = swarm_stripe_prio(p, np, idx, k);
        if (p % k == idx) {
            int j = p / k; /* 0..63 */
            assert_int_equal(pr, 7 - j / 16);
            own_seen[pr]++;
        } else {
            assert_true(pr >= 1 && pr <= 3);
            if (p > 0 && (p - 1) % k != idx)
                assert_true(pr <= swarm_stripe_prio(p - 1, np, idx, k));
        }
    }
    for (int q = 4; q <= 7; q++)
        assert_int_equal(own_seen[q], 16);
    assert_int_equal(swarm_stripe_prio(0, np, idx, k), 3);
    assert_int_equal(swarm_stripe_prio(np - 1, np, idx, k), 1);
    /* a share of one piece, and more fetchers than pieces */
    assert_int_equal(swarm_stripe_prio(2, 3, 2, 3), 7);
    assert_int_equal(swarm_stripe_prio(1, 2, 1, 4), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fetched_torrent_goes_on_seeding),
        cmocka_unit_test(test_removed_blob_is_no_longer_seeded),
        cmocka_unit_test(test_fetch_hashes_behind),
        cmocka_unit_test(test_seed_checks_without_tree),
        cmocka_unit_test(test_stripe_lagging),
        cmocka_unit_test(test_rescue_helper),
        cmocka_unit_test(test_rescue_plan),
        cmocka_unit_test(test_stripe_prio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
