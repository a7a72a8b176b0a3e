/* BEP 52 merkle tree and the torrent recipe, checked against libtorrent's own
 * create_torrent (v2_only) on the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "swarm/engine.h"
#include "swarm/merkle.h"
#include "swarm/torrent.h"

static uint8_t *random_bytes(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

static void digest_of(const uint8_t *p, size_t n, char digest[72])
{
    char hex[65];
    ox_sha256_hex(p, n, hex);
    snprintf(digest, 72, "sha256:%s", hex);
}

/* Our torrent for (data, piece_len) against libtorrent's for the same file. */
static void check_against_libtorrent(const uint8_t *data, size_t n, uint64_t piece_len,
                                     size_t feed_step)
{
    char digest[72], dir[] = "/tmp/test_merkle_XXXXXX", path[256];
    digest_of(data, n, digest);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/sha256-%s", dir, digest + 7);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);

    merkle_t *m = malloc(sizeof *m);
    assert_non_null(m);
    merkle_init(m);
    for (size_t off = 0; off < n; off += feed_step)
        assert_int_equal(merkle_feed(m, data + off, off + feed_step > n ? n - off : feed_step), 0);
    uint8_t root[32], ih[32], lt_ih[32], *layer = NULL;
    size_t n_layer = 0;
    assert_int_equal(merkle_finish(m, piece_len, root, &layer, &n_layer), 0);
    assert_int_equal(n_layer, n > piece_len ? (n + piece_len - 1) / piece_len : 0);
    ox_buf_t tor = OX_BUF_INIT;
    assert_int_equal(swarm__torrent_build(digest, n, piece_len, root, layer, n_layer, &tor, ih), 0);

    void *lt_bytes = NULL;
    size_t lt_len = 0;
    assert_int_equal(swarm_engine_libtorrent.make_torrent(path, piece_len, &lt_bytes, &lt_len, lt_ih), 0);
    assert_memory_equal(ih, lt_ih, 32);

    /* libtorrent accepts ours, with the same info-hash, name and size */
    uint8_t parsed_ih[32];
    char name[128], err[256] = "";
    uint64_t size = 0;
    int irc = swarm_engine_libtorrent.inspect(tor.data, tor.len, parsed_ih, name, sizeof name, &size, err, sizeof err);
    if (irc) fail_msg("inspect: %s", err);
    assert_int_equal(swarm_engine_libtorrent.inspect(tor.data, tor.len, parsed_ih, name, sizeof name,
                                                     &size, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_memory_equal(parsed_ih, ih, 32);
    assert_int_equal(size, n);
    assert_string_equal(name, path + strlen(dir) + 1);

    free(lt_bytes);
    free(layer);
    ox_buf_free(&tor);
    merkle_free(m);
    free(m);
    unlink(path);
    rmdir(dir);
}

static void test_against_libtorrent_small(void **state)
{
    (void)state;
    static const size_t sizes[] = {1,          100,         16383,          16384,
                                   16385,      3 * 16384 + 5, 16 * 16384,   16 * 16384 + 1,
                                   33 * 16384, 64 * 16384,  64 * 16384 + 1, (5u << 20) / 2,
                                   (5u << 20) + 123};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        uint8_t *d = random_bytes(sizes[i], (unsigned)i + 1);
        check_against_libtorrent(d, sizes[i], MERKLE_PIECE_MIN, 65536);
        free(d);
    }
}

static void test_against_libtorrent_piece_lengths(void **state)
{
    (void)state;
    size_t n = (9u << 20) + 4097;
    uint8_t *d = random_bytes(n, 77);
    check_against_libtorrent(d, n, 256u << 10, 4099);
    check_against_libtorrent(d, n, 512u << 10, 65536);
    check_against_libtorrent(d, n, 1u << 20, 16384);
    check_against_libtorrent(d, n, 2u << 20, 1000003); /* odd feed sizes */
    check_against_libtorrent(d, n, 4u << 20, 7);
    check_against_libtorrent(d, n, 16u << 20, 1 << 20);
    free(d);
}

static void test_chunking_does_not_matter(void **state)
{
    (void)state;
    size_t n = (3u << 20) + 999;
    uint8_t *d = random_bytes(n, 5);
    uint8_t r1[32], r2[32], *l1, *l2;
    size_t n1, n2;
    merkle_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    merkle_init(a);
    merkle_init(b);
    assert_int_equal(merkle_feed(a, d, n), 0);
    for (size_t off = 0; off < n;) {
        size_t step = 1 + (off * 7919) % 40000;
        if (step > n - off)
            step = n - off;
        assert_int_equal(merkle_feed(b, d + off, step), 0);
        off += step;
    }
    assert_int_equal(merkle_finish(a, 1 << 20, r1, &l1, &n1), 0);
    assert_int_equal(merkle_finish(b, 1 << 20, r2, &l2, &n2), 0);
    assert_memory_equal(r1, r2, 32);
    assert_int_equal(n1, 4);
    assert_int_equal(n2, 4);
    assert_memory_equal(l1, l2, 4 * 32);
    /* one changed byte changes the root */
    d[n / 2] ^= 1;
    merkle_t *c = malloc(sizeof *c);
    merkle_init(c);
    uint8_t r3[32], *l3;
    size_t n3;
    assert_int_equal(merkle_feed(c, d, n), 0);
    assert_int_equal(merkle_finish(c, 1 << 20, r3, &l3, &n3), 0);
    assert_memory_not_equal(r1, r3, 32);
    free(l1), free(l2), free(l3);
    merkle_free(a), merkle_free(b), merkle_free(c);
    free(a), free(b), free(c), free(d);
}

/* The whole tree handed to seeders: root first, same root as the stream,
 * leaves where the engine expects them. */
typedef struct leaf_sink {
    merkle_t *m;
    int rc;
} leaf_sink_t;

static void on_leaf(void *ud, const uint8_t leaf[32], uint32_t len)
{
    leaf_sink_t *k = ud;
    if (!k->rc)
        k->rc = merkle_feed_leaf(k->m, leaf, len);
}

/* Leaves from ox_blobhash (the store's one-pass hash) build the same tree,
 * piece layer and kept leaves as the bytes themselves. */
static void test_feed_leaves_equals_bytes(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 16384, 16385, (1u << 20) + 5, (5u << 20) + 16384};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        uint8_t *d = random_bytes(n, 11 + (unsigned)i);
        merkle_t *a = malloc(sizeof *a), *b = malloc(sizeof *b);
        merkle_init(a);
        merkle_init(b);
        merkle_keep_leaves(a);
        merkle_keep_leaves(b);
        assert_int_equal(merkle_feed(a, d, n), 0);
        leaf_sink_t k = {b, 0};
        ox_blobhash_t h;
        uint8_t whole[32], want[32];
        assert_int_equal(ox_blobhash_init(&h, on_leaf, &k), 0);
        assert_int_equal(ox_blobhash_update(&h, d, n), 0);
        assert_int_equal(ox_blobhash_final(&h, whole), 0);
        ox_blobhash_free(&h);
        assert_int_equal(k.rc, 0);
        ox_sha256_raw(d, n, want);
        assert_memory_equal(whole, want, 32);
        uint64_t pl = merkle_piece_length(n);
        uint8_t r1[32], r2[32], *l1, *l2, *v1, *v2;
        size_t n1, n2, m1, m2;
        assert_int_equal(merkle_finish(a, pl, r1, &l1, &n1), 0);
        assert_int_equal(merkle_finish(b, pl, r2, &l2, &n2), 0);
        assert_memory_equal(r1, r2, 32);
        assert_int_equal(n1, n2);
        if (n1)
            assert_memory_equal(l1, l2, n1 * 32);
        assert_int_equal(merkle_take_leaves(a, &v1, &m1), 0);
        assert_int_equal(merkle_take_leaves(b, &v2, &m2), 0);
        assert_int_equal(m1, m2);
        assert_memory_equal(v1, v2, m1 * 32);
        free(l1), free(l2), free(v1), free(v2);
        merkle_free(a), merkle_free(b);
        free(a), free(b), free(d);
    }
    /* only the last leaf may be short */
    merkle_t m;
    uint8_t z[32] = {0};
    merkle_init(&m);
    assert_int_equal(merkle_feed_leaf(&m, z, 100), 0);
    assert_int_equal(merkle_feed_leaf(&m, z, MERKLE_BLOCK), OX_EINVAL);
    assert_int_equal(merkle_feed_leaf(&m, z, 0), OX_EINVAL);
    merkle_free(&m);
}

static void test_tree_build(void **state)
{
    (void)state;
    static const size_t sizes[] = {1, 16384 * 3 + 1, (3u << 20) + 17};
    for (size_t k = 0; k < 3; k++) {
        size_t n = sizes[k];
        uint8_t *d = random_bytes(n, 40 + (unsigned)k), root[32], *layer, *leaves, *tree;
        size_t nl, n_leaves, n_nodes;
        merkle_t *m = malloc(sizeof *m);
        merkle_init(m);
        merkle_keep_leaves(m);
        assert_int_equal(merkle_feed(m, d, n), 0);
        assert_int_equal(merkle_finish(m, 1 << 20, root, &layer, &nl), 0);
        assert_int_equal(merkle_take_leaves(m, &leaves, &n_leaves), 0);
        assert_int_equal(n_leaves, (n + 16383) / 16384);
        uint8_t first[32];
        ox_sha256_raw(d, n < 16384 ? n : 16384, first);
        assert_memory_equal(leaves, first, 32);
        assert_int_equal(merkle_tree_build(leaves, n_leaves, &tree, &n_nodes), 0);
        size_t w = 1;
        while (w < n_leaves)
            w <<= 1;
        assert_int_equal(n_nodes, 2 * w - 1);
        assert_memory_equal(tree, root, 32);
        assert_memory_equal(tree + (w - 1) * 32, leaves, 32);
        if (nl) /* piece layer = the level whose nodes span 1 MiB (64 leaves) */
            assert_memory_equal(tree + (w / 64 - 1) * 32, layer, 32 * nl);
        free(tree), free(leaves), free(layer), free(d);
        merkle_free(m);
        free(m);
    }
    assert_int_equal(merkle_tree_build(NULL, 0, NULL, NULL), OX_EINVAL);
}

static void test_small_file_root_is_sha256(void **state)
{
    (void)state;
    uint8_t *d = random_bytes(1000, 9), root[32], sha[32], *layer;
    size_t nl;
    merkle_t *m = malloc(sizeof *m);
    merkle_init(m);
    merkle_feed(m, d, 1000);
    assert_int_equal(merkle_finish(m, 1 << 20, root, &layer, &nl), 0);
    ox_sha256_raw(d, 1000, sha);
    assert_memory_equal(root, sha, 32); /* BEP 52: one block, the root is its hash */
    assert_null(layer);
    merkle_free(m);
    free(m);
    free(d);
}

static void test_bad_input(void **state)
{
    (void)state;
    merkle_t *m = malloc(sizeof *m);
    uint8_t root[32], *layer;
    size_t nl;
    merkle_init(m);
    assert_int_equal(merkle_finish(m, 1 << 20, root, &layer, &nl), OX_EINVAL); /* empty */
    merkle_feed(m, "x", 1);
    assert_int_equal(merkle_finish(m, 3 << 20, root, &layer, &nl), OX_EINVAL); /* not pow2 */
    merkle_free(m);
    free(m);
    ox_buf_t b = OX_BUF_INIT;
    uint8_t ih[32];
    assert_int_equal(swarm__torrent_build("sha256:xyz", 1, 1 << 20, root, NULL, 0, &b, ih), OX_EINVAL);
    uint8_t parsed[32];
    char err[128] = "";
    assert_int_not_equal(swarm_engine_libtorrent.inspect("d4:infod", 8, parsed, NULL, 0, NULL, err,
                                                         sizeof err), 0);
    assert_true(err[0] != 0);
    ox_buf_free(&b);
}

static void test_piece_length_recipe(void **state)
{
    (void)state;
    assert_int_equal(merkle_piece_length(1), 256 << 10);
    assert_int_equal(merkle_piece_length(128ull << 20), 256 << 10);
    assert_int_equal(merkle_piece_length((128ull << 20) + 1), 512 << 10);
    assert_int_equal(merkle_piece_length(256ull << 20), 512 << 10);
    assert_int_equal(merkle_piece_length(512ull << 20), 1 << 20);
    assert_int_equal(merkle_piece_length((512ull << 20) + 1), 2 << 20);
    assert_int_equal(merkle_piece_length(2ull << 30), 4 << 20);
    assert_int_equal(merkle_piece_length(100ull << 30), 16 << 20);
}

static void test_same_content_same_info_hash(void **state)
{
    (void)state;
    size_t n = (2u << 20) + 5;
    uint8_t *d = random_bytes(n, 3);
    char digest[72];
    digest_of(d, n, digest);
    ox_buf_t r1 = OX_BUF_INIT, r2 = OX_BUF_INIT;
    merkle_t *m = malloc(sizeof *m);
    for (int round = 0; round < 2; round++) {
        merkle_init(m);
        merkle_feed(m, d, round ? n : 100);
        if (!round)
            merkle_feed(m, d + 100, n - 100);
        assert_int_equal(swarm__torrent_from_merkle(digest, m, round ? &r2 : &r1), 0);
        merkle_free(m);
    }
    assert_int_equal(r1.len, r2.len);
    assert_memory_equal(r1.data, r2.data, r1.len); /* byte-identical torrents */
    uint8_t ih[32];
    const void *t;
    size_t tl;
    assert_int_equal(swarm__rec_parse(r1.data, r1.len, ih, &t, &tl), 0);
    assert_int_equal(swarm__rec_parse("junk", 4, ih, &t, &tl), OX_EFORMAT);
    free(m);
    free(d);
    ox_buf_free(&r1);
    ox_buf_free(&r2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_piece_length_recipe),
        cmocka_unit_test(test_small_file_root_is_sha256),
        cmocka_unit_test(test_tree_build),
        cmocka_unit_test(test_chunking_does_not_matter),
        cmocka_unit_test(test_feed_leaves_equals_bytes),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_same_content_same_info_hash),
        cmocka_unit_test(test_against_libtorrent_small),
        cmocka_unit_test(test_against_libtorrent_piece_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
