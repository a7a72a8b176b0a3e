/* ox_blobhash against OpenSSL: the whole digest and every 16 KiB leaf, for
 * sizes around block and leaf boundaries, fed in awkward chunkings, on the
 * SHA-NI path (when the CPU has it) and the portable one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"
#include "common/sha256_int.h"

typedef struct leaves {
    uint8_t (*d)[32];
    uint32_t *len;
    size_t n, cap;
} leaves_t;

static void on_leaf(void *ud, const uint8_t leaf[32], uint32_t len)
{
    leaves_t *l = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->d = realloc(l->d, l->cap * 32);
        l->len = realloc(l->len, l->cap * sizeof *l->len);
        assert_non_null(l->d);
        assert_non_null(l->len);
    }
    memcpy(l->d[l->n], leaf, 32);
    l->len[l->n++] = len;
}

static uint8_t *rand_bytes(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    uint64_t x = 0x9e3779b97f4a7c15ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
    return p;
}

/* Feeds data in chunks from the sequence and checks everything. */
static void check_one(const uint8_t *data, size_t n, const size_t *chunks, size_t nchunks,
                      int with_leaves)
{
    ox_blobhash_t h;
    leaves_t l = {0};
    assert_int_equal(ox_blobhash_init(&h, with_leaves ? on_leaf : NULL, &l), 0);
    size_t off = 0;
    for (size_t i = 0; off < n; i++) {
        size_t k = chunks[i % nchunks];
        if (k > n - off)
            k = n - off;
        assert_int_equal(ox_blobhash_update(&h, data + off, k), 0);
        off += k;
    }
    uint8_t got[32], want[32];
    assert_int_equal(ox_blobhash_final(&h, got), 0);
    ox_blobhash_free(&h);
    ox_sha256_raw(data, n, want);
    assert_memory_equal(got, want, 32);
    if (!with_leaves) {
        assert_int_equal(l.n, 0);
        return;
    }
    size_t expect_n = (n + OX_LEAF_SIZE - 1) / OX_LEAF_SIZE;
    assert_int_equal(l.n, expect_n);
    for (size_t i = 0; i < l.n; i++) {
        size_t len = n - i * OX_LEAF_SIZE < OX_LEAF_SIZE ? n - i * OX_LEAF_SIZE : OX_LEAF_SIZE;
        assert_int_equal(l.len[i], len);
        ox_sha256_raw(data + i * OX_LEAF_SIZE, len, want);
        assert_memory_equal(l.d[i], want, 32);
    }
    free(l.d);
    free(l.len);
}

static void run_all(void)
{
    static const size_t sizes[] = {0,     1,     55,    56,    63,    64,     65,    119,
                                   120,   128,   16383, 16384, 16385, 32768,  49151, 100000,
                                   65536 * 3 + 17, (1u << 20) + 7};
    static const size_t chunk_sets[][4] = {
        {1u << 30, 0, 0, 0}, {1, 0, 0, 0}, {63, 65, 1, 200}, {16384, 0, 0, 0}, {5000, 11, 64, 0}};
    static const size_t chunk_n[] = {1, 1, 4, 1, 3};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        uint8_t *d = rand_bytes(sizes[s], (unsigned)s);
        for (size_t c = 0; c < sizeof chunk_n / sizeof *chunk_n; c++) {
            if (c == 1 && sizes[s] > 200000)
                continue; /* byte-at-a-time of a MiB adds nothing but time */
            check_one(d, sizes[s], chunk_sets[c], chunk_n[c], 1);
            check_one(d, sizes[s], chunk_sets[c], chunk_n[c], 0);
        }
        free(d);
    }
}

static void test_default_path(void **state)
{
    (void)state;
    ox__blobhash_no_ni = 0;
    run_all();
}

static void test_portable_path(void **state)
{
    (void)state;
    ox__blobhash_no_ni = 1;
    run_all();
    ox__blobhash_no_ni = 0;
}

/* The NI kernels directly, single and paired, against OpenSSL over
 * the same blocks (skipped where the CPU lacks SHA-NI). */
static void test_ni_kernels(void **state)
{
    (void)state;
    if (!ox__sha256_ni_usable()) {
        skip();
        return;
    }
    uint8_t *d = rand_bytes(64 * 300, 7);
    static const uint32_t IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    uint32_t a[8], b[8], c[8];
    memcpy(a, IV, 32);
    memcpy(b, IV, 32);
    memcpy(c, IV, 32);
    ox__sha256_ni_blocks(a, d, 300);
    ox__sha256_ni_blocks2(b, c, d, 300);
    assert_memory_equal(a, b, 32);
    assert_memory_equal(a, c, 32);
    /* different starting states stay independent */
    uint32_t e[8];
    memcpy(e, a, 32);
    ox__sha256_ni_blocks2(e, b, d, 1);
    memcpy(c, a, 32);
    ox__sha256_ni_blocks(c, d, 1);
    assert_memory_equal(e, c, 32);
    assert_memory_equal(b, c, 32);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_path),
        cmocka_unit_test(test_portable_path),
        cmocka_unit_test(test_ni_kernels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
