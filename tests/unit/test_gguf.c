/* GGUF reader tests: files are built byte by byte here (so each malformation
 * is exact), plus one file written by tests/tools/mkgguf.py. Every malformed
 * input is opened from an exactly-sized heap copy so ASan catches any read
 * past its end. */
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
#include "inference/gguf.h"

/* ---- builder -------------------------------------------------------------- */

typedef struct bld {
    ox_buf_t b;
} bld_t;

static void b_bytes(bld_t *b, const void *p, size_t n) { assert_int_equal(ox_buf_append(&b->b, p, n), 0); }
static void b_u8(bld_t *b, uint8_t v) { b_bytes(b, &v, 1); }
static void b_u16(bld_t *b, uint16_t v) { uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; b_bytes(b, x, 2); }
static void b_u32(bld_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b_u8(b, (uint8_t)(v >> (8 * i)));
}
static void b_u64(bld_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        b_u8(b, (uint8_t)(v >> (8 * i)));
}
static void b_f32(bld_t *b, float f) { uint32_t u; memcpy(&u, &f, 4); b_u32(b, u); }
static void b_f64(bld_t *b, double f) { uint64_t u; memcpy(&u, &f, 8); b_u64(b, u); }
static void b_str(bld_t *b, const char *s) { b_u64(b, strlen(s)); b_bytes(b, s, strlen(s)); }
static void b_header(bld_t *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    b_bytes(b, "GGUF", 4);
    b_u32(b, version);
    b_u64(b, n_tensors);
    b_u64(b, n_kv);
}
static void b_key(bld_t *b, const char *key, uint32_t type) { b_str(b, key); b_u32(b, type); }
static void b_kv_u32(bld_t *b, const char *key, uint32_t v) { b_key(b, key, GGUF_T_UINT32); b_u32(b, v); }
static void b_kv_str(bld_t *b, const char *key, const char *v) { b_key(b, key, GGUF_T_STRING); b_str(b, v); }
static void b_tensor(bld_t *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                     uint64_t off)
{
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++)
        b_u64(b, ne[i]);
    b_u32(b, type);
    b_u64(b, off);
}
static void b_pad(bld_t *b, size_t align)
{
    while (b->b.len % align)
        b_u8(b, 0);
}
static void b_fill(bld_t *b, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        b_u8(b, (uint8_t)(seed + i * 7));
}

/* Opens an exactly-sized heap copy; the copy is returned in *copy. */
static int open_copy(const bld_t *b, size_t len, gguf_t **g, char *err, size_t cap, void **copy)
{
    *copy = malloc(len ? len : 1);
    assert_non_null(*copy);
    if (len)
        memcpy(*copy, b->b.data, len);
    return gguf_open_buffer(*copy, len, g, err, cap);
}

static void expect_fail(bld_t *b, const char *needle)
{
    char err[512];
    gguf_t *g = (gguf_t *)1;
    void *copy;
    int rc = open_copy(b, b->b.len, &g, err, sizeof err, &copy);
    if (rc != OX_EFORMAT || !strstr(err, needle))
        fail_msg("want OX_EFORMAT with '%s', got %d: %s", needle, rc, err);
    assert_null(g);
    assert_true(strncmp(err, "gguf: ", 6) == 0);
    free(copy);
    ox_buf_free(&b->b);
}

/* ---- a valid file with every value type ------------------------------------ */

/* Metadata: one key per type, arrays of u8, strings, f32 and nested arrays.
 * Tensors: F32 {4}, F16 {8,2}, Q8_0 {32,2}. The file ends with tensor data. */
static void build_full(bld_t *b, uint32_t version, size_t n_kv_wanted)
{
    b_header(b, version, 3, n_kv_wanted);
    size_t n = 0;
#define KV(stmt) do { if (n++ < n_kv_wanted) { stmt; } } while (0)
    KV((b_key(b, "t.u8", GGUF_T_UINT8), b_u8(b, 200)));
    KV((b_key(b, "t.i8", GGUF_T_INT8), b_u8(b, (uint8_t)-5)));
    KV((b_key(b, "t.u16", GGUF_T_UINT16), b_u16(b, 60000)));
    KV((b_key(b, "t.i16", GGUF_T_INT16), b_u16(b, (uint16_t)-32000)));
    KV(b_kv_u32(b, "t.u32", 4000000000u));
    KV((b_key(b, "t.i32", GGUF_T_INT32), b_u32(b, (uint32_t)-2000000000)));
    KV((b_key(b, "t.f32", GGUF_T_FLOAT32), b_f32(b, 1.5f)));
    KV((b_key(b, "t.bool", GGUF_T_BOOL), b_u8(b, 1)));
    KV(b_kv_str(b, "t.str", "hello gguf"));
    KV((b_key(b, "t.u64", GGUF_T_UINT64), b_u64(b, 0xfedcba9876543210ull)));
    KV((b_key(b, "t.i64", GGUF_T_INT64), b_u64(b, (uint64_t)-1234567890123ll)));
    KV((b_key(b, "t.f64", GGUF_T_FLOAT64), b_f64(b, -2.25)));
    KV((b_key(b, "t.arr_u8", GGUF_T_ARRAY), b_u32(b, GGUF_T_UINT8), b_u64(b, 3), b_u8(b, 1),
        b_u8(b, 2), b_u8(b, 3)));
    KV((b_key(b, "t.arr_str", GGUF_T_ARRAY), b_u32(b, GGUF_T_STRING), b_u64(b, 3), b_str(b, "a"),
        b_str(b, ""), b_str(b, "ccc")));
    KV((b_key(b, "t.arr_f32", GGUF_T_ARRAY), b_u32(b, GGUF_T_FLOAT32), b_u64(b, 2),
        b_f32(b, 0.5f), b_f32(b, -1.0f)));
    /* [[7], [8, 9]] as int32 */
    KV((b_key(b, "t.nested", GGUF_T_ARRAY), b_u32(b, GGUF_T_ARRAY), b_u64(b, 2),
        b_u32(b, GGUF_T_INT32), b_u64(b, 1), b_u32(b, 7), b_u32(b, GGUF_T_INT32), b_u64(b, 2),
        b_u32(b, 8), b_u32(b, 9)));
#undef KV
    b_tensor(b, "f32", 1, (uint64_t[]){4}, GGML_T_F32, 0);
    b_tensor(b, "f16", 2, (uint64_t[]){8, 2}, GGML_T_F16, 32);
    b_tensor(b, "q8", 2, (uint64_t[]){32, 2}, GGML_T_Q8_0, 64);
    b_pad(b, 32);
    b_fill(b, 16, 1);
    b_pad(b, 32);
    b_fill(b, 32, 2);
    b_fill(b, 68, 3);
}
#define FULL_KV 16

static void check_full(const gguf_t *g, const uint8_t *base, uint32_t version)
{
    uint64_t u;
    int64_t i;
    double f;
    char s[64];
    assert_int_equal(g->version, version);
    assert_int_equal(g->n_kv, FULL_KV);
    assert_int_equal(g->n_tensors, 3);
    assert_int_equal(g->alignment, 32);
    assert_int_equal(g->data_offset % 32, 0);

    assert_int_equal(gguf_get_u64(g, "t.u8", &u), 0);
    assert_int_equal(u, 200);
    assert_int_equal(gguf_get_i64(g, "t.u8", &i), 0); /* widening across signedness */
    assert_int_equal(i, 200);
    assert_int_equal(gguf_get_i64(g, "t.i8", &i), 0);
    assert_int_equal(i, -5);
    assert_int_equal(gguf_get_u64(g, "t.i8", &u), OX_EFORMAT); /* negative: does not fit */
    assert_int_equal(gguf_get_u64(g, "t.u16", &u), 0);
    assert_int_equal(u, 60000);
    assert_int_equal(gguf_get_i64(g, "t.i16", &i), 0);
    assert_int_equal(i, -32000);
    assert_int_equal(gguf_get_u64(g, "t.u32", &u), 0);
    assert_int_equal(u, 4000000000u);
    assert_int_equal(gguf_get_i64(g, "t.i32", &i), 0);
    assert_int_equal(i, -2000000000);
    assert_int_equal(gguf_get_f64(g, "t.f32", &f), 0);
    assert_true(f == 1.5);
    assert_int_equal(gguf_get_u64(g, "t.f32", &u), OX_EFORMAT);
    assert_int_equal(gguf_get_u64(g, "t.bool", &u), 0);
    assert_int_equal(u, 1);
    assert_int_equal(gguf_find(g, "t.bool")->val.type, GGUF_T_BOOL);
    assert_int_equal(gguf_get_str(g, "t.str", s, sizeof s), 0);
    assert_string_equal(s, "hello gguf");
    assert_int_equal(gguf_get_str(g, "t.str", s, 6), 0); /* truncated copy */
    assert_string_equal(s, "hello");
    assert_int_equal(gguf_get_str(g, "t.u32", s, sizeof s), OX_EFORMAT);
    assert_int_equal(gguf_get_u64(g, "t.u64", &u), 0);
    assert_true(u == 0xfedcba9876543210ull);
    assert_int_equal(gguf_get_i64(g, "t.u64", &i), OX_EFORMAT); /* > INT64_MAX */
    assert_int_equal(gguf_get_i64(g, "t.i64", &i), 0);
    assert_true(i == -1234567890123ll);
    assert_int_equal(gguf_get_f64(g, "t.f64", &f), 0);
    assert_true(f == -2.25);
    assert_int_equal(gguf_get_f64(g, "t.u32", &f), 0); /* ints convert to double */
    assert_true(f == 4000000000.0);
    assert_int_equal(gguf_get_u64(g, "missing", &u), OX_ENOTFOUND);
    assert_null(gguf_find(g, "t.u"));  /* exact match, not prefix */
    assert_null(gguf_find(g, "t.u80"));

    const gguf_kv_t *kv = gguf_find(g, "t.arr_u8");
    assert_non_null(kv);
    assert_int_equal(kv->val.type, GGUF_T_ARRAY);
    assert_int_equal(kv->val.v.arr.type, GGUF_T_UINT8);
    assert_int_equal(kv->val.v.arr.n, 3);
    assert_memory_equal(kv->val.v.arr.data, "\1\2\3", 3);
    gguf_str_t e;
    assert_int_equal(gguf_arr_str(kv, 0, &e), OX_EFORMAT); /* not strings */

    kv = gguf_find(g, "t.arr_str");
    assert_int_equal(kv->val.v.arr.n, 3);
    const char *want[] = {"a", "", "ccc"};
    for (int k = 2; k >= 0; k--) { /* non-sequential order on purpose */
        assert_int_equal(gguf_arr_str(kv, (uint64_t)k, &e), 0);
        assert_int_equal(e.len, strlen(want[k]));
        assert_memory_equal(e.p, want[k], e.len);
    }
    assert_int_equal(gguf_arr_str(kv, 3, &e), OX_ENOTFOUND);

    kv = gguf_find(g, "t.arr_f32");
    float fl[2];
    memcpy(fl, kv->val.v.arr.data, sizeof fl);
    assert_true(fl[0] == 0.5f && fl[1] == -1.0f);

    kv = gguf_find(g, "t.nested");
    assert_int_equal(kv->val.v.arr.type, GGUF_T_ARRAY);
    assert_int_equal(kv->val.v.arr.n, 2);
    const uint8_t *p = kv->val.v.arr.data; /* first inner array header */
    assert_int_equal(p[0], GGUF_T_INT32);
    assert_int_equal(p[4], 1);
    assert_int_equal(p[12], 7);

    static const struct { const char *name; uint32_t nd; uint64_t ne0, ne1, size; int type; } tw[] = {
        {"f32", 1, 4, 1, 16, GGML_T_F32},
        {"f16", 2, 8, 2, 32, GGML_T_F16},
        {"q8", 2, 32, 2, 68, GGML_T_Q8_0},
    };
    for (int k = 0; k < 3; k++) {
        const gguf_tensor_t *t = gguf_tensor(g, tw[k].name);
        assert_non_null(t);
        assert_int_equal(t->n_dims, tw[k].nd);
        assert_int_equal(t->ne[0], tw[k].ne0);
        assert_int_equal(t->ne[1], tw[k].ne1);
        assert_int_equal(t->ne[2], 1);
        assert_int_equal(t->type, tw[k].type);
        assert_int_equal(t->size, tw[k].size);
        assert_ptr_equal(t->data, base + g->data_offset + t->offset);
        for (uint64_t j = 0; j < t->size; j++)
            assert_int_equal(((const uint8_t *)t->data)[j], (uint8_t)(k + 1 + j * 7));
    }
    assert_null(gguf_tensor(g, "f3"));
    assert_int_equal(gguf_param_count(g), 4 + 16 + 64);
}

static void test_all_types(void **state)
{
    (void)state;
    for (uint32_t v = 2; v <= 3; v++) {
        bld_t b = {OX_BUF_INIT};
        build_full(&b, v, FULL_KV);
        gguf_t *g = NULL;
        char err[256];
        int rc = gguf_open_buffer(b.b.data, b.b.len, &g, err, sizeof err);
        if (rc)
            fail_msg("open v%u: %s", v, err);
        assert_ptr_equal(g->map, b.b.data);
        check_full(g, (const uint8_t *)b.b.data, v);
        gguf_close(g);
        ox_buf_free(&b.b);
    }
}

/* Truncating the valid file at every byte must fail cleanly. */
static void test_truncation_everywhere(void **state)
{
    (void)state;
    bld_t b = {OX_BUF_INIT};
    build_full(&b, 3, FULL_KV);
    for (size_t len = 0; len < b.b.len; len++) {
        char err[256] = "";
        gguf_t *g = (gguf_t *)1;
        void *copy;
        int rc = open_copy(&b, len, &g, err, sizeof err, &copy);
        if (rc != OX_EFORMAT || g != NULL || strncmp(err, "gguf: ", 6) != 0)
            fail_msg("truncated at %zu: rc %d, err '%s'", len, rc, err);
        free(copy);
    }
    /* and the message names the place */
    char err[256];
    gguf_t *g;
    void *copy;
    assert_int_equal(open_copy(&b, 38, &g, err, sizeof err, &copy), OX_EFORMAT);
    if (!strstr(err, "gguf: truncated file reading metadata key 0 (t.u8) at offset 36"))
        fail_msg("%s", err);
    free(copy);
    ox_buf_free(&b.b);
}

static void test_bad_header(void **state)
{
    (void)state;
    bld_t b = {OX_BUF_INIT};
    b_bytes(&b, "GGUX", 4), b_u32(&b, 3), b_u64(&b, 0), b_u64(&b, 0);
    expect_fail(&b, "bad magic");
    b_header(&b, 1, 0, 0);
    expect_fail(&b, "unsupported version 1");
    b_header(&b, 4, 0, 0);
    expect_fail(&b, "unsupported version 4");
    b_header(&b, 0x03200000u, 0, 0);
    expect_fail(&b, "big-endian");
    b_header(&b, 3, 0, 1ull << 40);
    expect_fail(&b, "metadata count");
    b_header(&b, 3, 0, 5); /* small count, more than the file holds */
    expect_fail(&b, "truncated file reading metadata key 0 at offset 24");
    b_header(&b, 3, 1ull << 62, 0);
    expect_fail(&b, "tensor count");
    /* an empty file with no tensors is fine */
    b_header(&b, 3, 0, 0);
    gguf_t *g;
    char err[128];
    assert_int_equal(gguf_open_buffer(b.b.data, b.b.len, &g, err, sizeof err), 0);
    assert_int_equal(gguf_param_count(g), 0);
    gguf_close(g);
    ox_buf_free(&b.b);
}

static void test_bad_values(void **state)
{
    (void)state;
    bld_t b = {OX_BUF_INIT};
    b_header(&b, 3, 0, 1);
    b_u64(&b, 1ull << 62); /* key length */
    b_fill(&b, 16, 0);
    expect_fail(&b, "string length");
    b_header(&b, 3, 0, 1);
    b_key(&b, "k", GGUF_T_STRING);
    b_u64(&b, 1000);
    b_bytes(&b, "abcdefghijklmnopqrstuvwxyz", 26);
    expect_fail(&b, "truncated file reading metadata key 0 (k)");
    b_header(&b, 3, 0, 1);
    b_key(&b, "k", 13);
    b_u32(&b, 0), b_u32(&b, 0);
    expect_fail(&b, "unknown value type 13");
    b_header(&b, 3, 0, 1);
    b_key(&b, "k", GGUF_T_ARRAY);
    b_u32(&b, 99), b_u64(&b, 0);
    expect_fail(&b, "unknown array element type 99");
    b_header(&b, 3, 0, 1);
    b_key(&b, "k", GGUF_T_ARRAY);
    b_u32(&b, GGUF_T_UINT64), b_u64(&b, 1ull << 61); /* count * 8 overflows */
    b_u64(&b, 0);
    expect_fail(&b, "array count");
    b_header(&b, 3, 0, 1);
    b_key(&b, "k", GGUF_T_ARRAY);
    b_u32(&b, GGUF_T_STRING), b_u64(&b, 1ull << 40);
    b_u64(&b, 0), b_u64(&b, 0);
    expect_fail(&b, "array count");
    /* depth bomb: 1000 nested array headers */
    b_header(&b, 3, 0, 1);
    b_key(&b, "k", GGUF_T_ARRAY);
    for (int d = 0; d < 1000; d++)
        b_u32(&b, GGUF_T_ARRAY), b_u64(&b, 1);
    b_u32(&b, GGUF_T_UINT8), b_u64(&b, 0);
    expect_fail(&b, "nested deeper than 4");
    /* exactly 4 levels is allowed */
    b_header(&b, 3, 0, 1);
    b_key(&b, "k", GGUF_T_ARRAY);
    for (int d = 0; d < 3; d++)
        b_u32(&b, GGUF_T_ARRAY), b_u64(&b, 1);
    b_u32(&b, GGUF_T_UINT8), b_u64(&b, 1), b_u8(&b, 42);
    gguf_t *g;
    char err[128];
    assert_int_equal(gguf_open_buffer(b.b.data, b.b.len, &g, err, sizeof err), 0);
    gguf_close(g);
    ox_buf_free(&b.b);
    /* duplicate keys */
    b_header(&b, 3, 0, 3);
    b_kv_u32(&b, "a", 1), b_kv_u32(&b, "b", 2), b_kv_str(&b, "a", "x");
    expect_fail(&b, "duplicate metadata key 'a'");
}

static void test_bad_alignment(void **state)
{
    (void)state;
    bld_t b = {OX_BUF_INIT};
    uint32_t bad[] = {0, 3, 48};
    for (int k = 0; k < 3; k++) {
        b_header(&b, 3, 0, 1);
        b_kv_u32(&b, "general.alignment", bad[k]);
        expect_fail(&b, "general.alignment");
    }
    b_header(&b, 3, 0, 1);
    b_kv_str(&b, "general.alignment", "32");
    expect_fail(&b, "general.alignment has type string");
    /* a custom alignment is honoured for data start and offsets */
    b_header(&b, 3, 2, 1);
    b_kv_u32(&b, "general.alignment", 64);
    b_tensor(&b, "a", 1, (uint64_t[]){2}, GGML_T_F32, 0);
    b_tensor(&b, "b", 1, (uint64_t[]){2}, GGML_T_F32, 64);
    b_pad(&b, 64);
    size_t data_at = b.b.len;
    b_fill(&b, 72, 0);
    gguf_t *g;
    char err[128];
    assert_int_equal(gguf_open_buffer(b.b.data, b.b.len, &g, err, sizeof err), 0);
    assert_int_equal(g->alignment, 64);
    assert_int_equal(g->data_offset, data_at);
    assert_ptr_equal(gguf_tensor(g, "b")->data, b.b.data + data_at + 64);
    gguf_close(g);
    ox_buf_free(&b.b);
    b_header(&b, 3, 2, 1);
    b_kv_u32(&b, "general.alignment", 64);
    b_tensor(&b, "a", 1, (uint64_t[]){2}, GGML_T_F32, 0);
    b_tensor(&b, "b", 1, (uint64_t[]){2}, GGML_T_F32, 32); /* 32-aligned only */
    b_pad(&b, 64);
    b_fill(&b, 72, 0);
    expect_fail(&b, "not a multiple of the alignment 64");
}

/* One tensor info followed by enough data for `data` bytes. */
static void one_tensor(bld_t *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off,
                       size_t data)
{
    b_header(b, 3, 1, 0);
    b_tensor(b, "w", n_dims, ne, type, off);
    b_pad(b, 32);
    b_fill(b, data, 0);
}

static void test_bad_tensors(void **state)
{
    (void)state;
    bld_t b = {OX_BUF_INIT};
    one_tensor(&b, 2, (uint64_t[]){4, 4}, 4, 0, 64); /* retired Q4_2 */
    expect_fail(&b, "unknown tensor type 4");
    one_tensor(&b, 2, (uint64_t[]){4, 4}, 77, 0, 64);
    expect_fail(&b, "unknown tensor type 77");
    one_tensor(&b, 2, (uint64_t[]){4, 4}, 0xffffffffu, 0, 64);
    expect_fail(&b, "unknown tensor type 4294967295");
    one_tensor(&b, 5, (uint64_t[]){1, 1, 1, 1, 4}, GGML_T_F32, 0, 16);
    expect_fail(&b, "5 dimensions");
    one_tensor(&b, 1, (uint64_t[]){4}, GGML_T_F32, 16, 64);
    expect_fail(&b, "offset 16 is not a multiple");
    one_tensor(&b, 1, (uint64_t[]){4}, GGML_T_F32, 0, 15);
    expect_fail(&b, "runs past the end of the file");
    one_tensor(&b, 1, (uint64_t[]){4}, GGML_T_F32, 1ull << 63, 16); /* offset wraps */
    expect_fail(&b, "runs past the end of the file");
    one_tensor(&b, 2, (uint64_t[]){48, 1}, GGML_T_Q8_0, 0, 64);
    expect_fail(&b, "ne[0] = 48 is not a multiple of the Q8_0 block size 32");
    one_tensor(&b, 1, (uint64_t[]){100}, GGML_T_Q4_K, 0, 64);
    expect_fail(&b, "block size 256");
    one_tensor(&b, 2, (uint64_t[]){1ull << 32, 1ull << 32}, GGML_T_F32, 0, 16);
    expect_fail(&b, "shape overflows");
    one_tensor(&b, 1, (uint64_t[]){1ull << 63}, GGML_T_F32, 0, 16);
    expect_fail(&b, "shape overflows");
    /* elements fit in int64 but the byte size does not */
    one_tensor(&b, 2, (uint64_t[]){1ull << 31, 1ull << 31}, GGML_T_F64, 0, 16);
    expect_fail(&b, "byte size overflows");

    /* overlapping data */
    b_header(&b, 3, 2, 0);
    b_tensor(&b, "a", 1, (uint64_t[]){16}, GGML_T_F32, 0);
    b_tensor(&b, "b", 1, (uint64_t[]){16}, GGML_T_F32, 32);
    b_pad(&b, 32);
    b_fill(&b, 128, 0);
    expect_fail(&b, "overlap");
    /* same offset twice */
    b_header(&b, 3, 2, 0);
    b_tensor(&b, "a", 1, (uint64_t[]){8}, GGML_T_F32, 0);
    b_tensor(&b, "b", 1, (uint64_t[]){8}, GGML_T_F32, 0);
    b_pad(&b, 32);
    b_fill(&b, 32, 0);
    expect_fail(&b, "overlap");
    /* duplicate names */
    b_header(&b, 3, 2, 0);
    b_tensor(&b, "a", 1, (uint64_t[]){8}, GGML_T_F32, 0);
    b_tensor(&b, "a", 1, (uint64_t[]){8}, GGML_T_F32, 32);
    b_pad(&b, 32);
    b_fill(&b, 64, 0);
    expect_fail(&b, "duplicate tensor name 'a'");
}

static void test_file_open(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_gguf_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/m.gguf", dir);
    gguf_t *g = (gguf_t *)1;
    assert_int_equal(gguf_open(path, &g, err, sizeof err), OX_ENOTFOUND);
    assert_null(g);
    assert_non_null(strstr(err, path));

    FILE *f = fopen(path, "wb");
    fclose(f);
    assert_int_equal(gguf_open(path, &g, err, sizeof err), OX_EFORMAT); /* empty */

    bld_t b = {OX_BUF_INIT};
    build_full(&b, 3, FULL_KV);
    f = fopen(path, "wb");
    assert_int_equal(fwrite(b.b.data, 1, b.b.len, f), b.b.len);
    fclose(f);
    int rc = gguf_open(path, &g, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    assert_int_equal(g->file_size, b.b.len);
    check_full(g, g->map, 3);
    gguf_close(g);
    gguf_close(NULL);
    ox_buf_free(&b.b);
    unlink(path);
    rmdir(dir);
}

static void test_traits_and_names(void **state)
{
    (void)state;
    static const struct { int t; const char *name; uint64_t block, bytes; } w[] = {
        {GGML_T_F32, "F32", 1, 4},     {GGML_T_F16, "F16", 1, 2},     {GGML_T_BF16, "BF16", 1, 2},
        {GGML_T_Q4_0, "Q4_0", 32, 18}, {GGML_T_Q4_1, "Q4_1", 32, 20}, {GGML_T_Q5_0, "Q5_0", 32, 22},
        {GGML_T_Q5_1, "Q5_1", 32, 24}, {GGML_T_Q8_0, "Q8_0", 32, 34}, {GGML_T_Q8_1, "Q8_1", 32, 36},
        {GGML_T_Q2_K, "Q2_K", 256, 84}, {GGML_T_Q3_K, "Q3_K", 256, 110},
        {GGML_T_Q4_K, "Q4_K", 256, 144}, {GGML_T_Q5_K, "Q5_K", 256, 176},
        {GGML_T_Q6_K, "Q6_K", 256, 210}, {GGML_T_Q8_K, "Q8_K", 256, 292},
        {GGML_T_I8, "I8", 1, 1},       {GGML_T_I16, "I16", 1, 2},     {GGML_T_I32, "I32", 1, 4},
        {GGML_T_I64, "I64", 1, 8},     {GGML_T_F64, "F64", 1, 8},
    };
    for (size_t k = 0; k < sizeof w / sizeof w[0]; k++) {
        assert_string_equal(gguf_ttype_name(w[k].t), w[k].name);
        assert_int_equal(gguf_ttype_block(w[k].t), w[k].block);
        assert_int_equal(gguf_ttype_block_bytes(w[k].t), w[k].bytes);
    }
    assert_null(gguf_ttype_name(4));
    assert_null(gguf_ttype_name(-1));
    assert_null(gguf_ttype_name(GGML_T_COUNT));
    assert_int_equal(gguf_ttype_block(5), 0);
    assert_string_equal(gguf_vtype_name(GGUF_T_STRING), "string");
    assert_string_equal(gguf_vtype_name(GGUF_T_UINT32), "uint32");
    assert_string_equal(gguf_vtype_name(GGUF_T_FLOAT64), "float64");
    assert_null(gguf_vtype_name(13));

    static const struct { uint32_t ft; const char *name; } f[] = {
        {0, "F32"}, {1, "F16"}, {2, "Q4_0"}, {3, "Q4_1"}, {7, "Q8_0"}, {8, "Q5_0"}, {9, "Q5_1"},
        {10, "Q2_K"}, {11, "Q3_K_S"}, {12, "Q3_K_M"}, {13, "Q3_K_L"}, {14, "Q4_K_S"},
        {15, "Q4_K_M"}, {16, "Q5_K_S"}, {17, "Q5_K_M"}, {18, "Q6_K"}, {32, "BF16"},
        {4, "unknown"}, {1000, "unknown"},
    };
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++)
        assert_string_equal(gguf_file_type_name(f[k].ft), f[k].name);
}

static void test_param_size_str(void **state)
{
    (void)state;
    static const struct { uint64_t n; const char *s; } w[] = {
        {1235814400ull, "1.2B"}, {494032768ull, "494.03M"}, {8030261248ull, "8.0B"},
        {7000000000ull, "7B"},   {3212749824ull, "3.2B"},   {2000000ull, "2M"},
        {1500ull, "2K"},         {999ull, "999"},           {0, "0"},
        {70553706496ull, "70.6B"},
    };
    char s[32];
    for (size_t k = 0; k < sizeof w / sizeof w[0]; k++) {
        gguf_param_size_str(w[k].n, s, sizeof s);
        assert_string_equal(s, w[k].s);
    }
}

/* A model written by tests/tools/mkgguf.py opens and is self-consistent. */
static void test_mkgguf_model(void **state)
{
    (void)state;
    const char *src = getenv("OX_SOURCE_DIR");
    if (!src || access("/usr/bin/python3", X_OK) != 0) {
        print_message("skipping: OX_SOURCE_DIR unset or no /usr/bin/python3\n");
        skip();
    }
    char dir[] = "/tmp/test_gguf_XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const char *const archs[] = {"llama", "qwen2"};
    for (int a = 0; a < 2; a++) {
        char cmd[1024], path[256], err[256], s[64];
        snprintf(path, sizeof path, "%s/%s.gguf", dir, archs[a]);
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 '%s/tests/tools/mkgguf.py' '%s' --arch %s --seed 7 "
                 "--vocab 320 --dim 32 --layers 3 --heads 4 --kv-heads 2 --ff 96 >/dev/null",
                 src, path, archs[a]);
        assert_int_equal(system(cmd), 0);
        gguf_t *g;
        int rc = gguf_open(path, &g, err, sizeof err);
        if (rc)
            fail_msg("%s", err);
        uint64_t u;
        assert_int_equal(gguf_get_str(g, "general.architecture", s, sizeof s), 0);
        assert_string_equal(s, archs[a]);
        char key[96];
        snprintf(key, sizeof key, "%s.block_count", archs[a]);
        assert_int_equal(gguf_get_u64(g, key, &u), 0);
        assert_int_equal(u, 3);
        snprintf(key, sizeof key, "%s.embedding_length", archs[a]);
        assert_int_equal(gguf_get_u64(g, key, &u), 0);
        assert_int_equal(u, 32);
        assert_int_equal(gguf_get_u64(g, "general.file_type", &u), 0);
        assert_string_equal(gguf_file_type_name((uint32_t)u), "F32");
        const gguf_kv_t *tok = gguf_find(g, "tokenizer.ggml.tokens");
        assert_non_null(tok);
        assert_int_equal(tok->val.v.arr.n, 320);
        gguf_str_t e;
        assert_int_equal(gguf_arr_str(tok, 299, &e), 0);
        assert_int_equal(gguf_find(g, "tokenizer.ggml.scores")->val.v.arr.n, 320);
        assert_int_equal(gguf_find(g, "tokenizer.ggml.token_type")->val.v.arr.n, 320);
        assert_int_equal(gguf_get_str(g, "tokenizer.ggml.model", s, sizeof s), 0);
        assert_string_equal(s, a == 0 ? "llama" : "gpt2");
        if (a == 1)
            assert_non_null(gguf_find(g, "tokenizer.ggml.merges"));
        uint64_t n_bias = a == 1 ? 3 : 0;
        assert_int_equal(g->n_tensors, 3 + 3 * (9 + n_bias));
        const gguf_tensor_t *t = gguf_tensor(g, "token_embd.weight");
        assert_non_null(t);
        assert_int_equal(t->ne[0], 32);
        assert_int_equal(t->ne[1], 320);
        t = gguf_tensor(g, "blk.2.attn_k.weight");
        assert_non_null(t);
        assert_int_equal(t->ne[0], 32);
        assert_int_equal(t->ne[1], 16); /* 2 kv heads * head dim 8 */
        t = gguf_tensor(g, "blk.0.ffn_down.weight");
        assert_int_equal(t->ne[0], 96);
        assert_int_equal(t->ne[1], 32);
        assert_int_equal(t->type, GGML_T_F32);
        if (a == 1)
            assert_int_equal(gguf_tensor(g, "blk.1.attn_q.bias")->ne[0], 32);
        uint64_t per_layer = 2 * 32 + 32 * 32 * 2 + 2 * 32 * 16 + 3 * 32 * 96 + n_bias * 0;
        if (a == 1)
            per_layer += 32 + 16 + 16;
        assert_int_equal(gguf_param_count(g), 2 * 320 * 32 + 32 + 3 * per_layer);
        gguf_close(g);
        unlink(path);
    }
    rmdir(dir);
}

/* gguf_writer.py encodes every value type, nested arrays, F16/BF16 and raw
 * tensors the way this reader decodes them. */
static void test_python_writer(void **state)
{
    (void)state;
    const char *src = getenv("OX_SOURCE_DIR");
    if (!src || access("/usr/bin/python3", X_OK) != 0)
        skip();
    char dir[] = "/tmp/test_gguf_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char py[256], out[256], cmd[1024], err[256];
    snprintf(py, sizeof py, "%s/w.py", dir);
    snprintf(out, sizeof out, "%s/w.gguf", dir);
    FILE *f = fopen(py, "w");
    assert_non_null(f);
    fprintf(f,
            "import sys\nsys.path.insert(0, sys.argv[1] + '/tests/tools')\n"
            "import numpy as np\nfrom gguf_writer import *\n"
            "w = GGUFWriter(alignment=64)\n"
            "w.add_uint8('u8', 250); w.add_int8('i8', -100); w.add_uint16('u16', 65000)\n"
            "w.add_int16('i16', -32000); w.add_uint32('u32', 4000000000); w.add_int32('i32', -7)\n"
            "w.add_float32('f32', 0.25); w.add_bool('b', True); w.add_string('s', 'h\\u00e9')\n"
            "w.add_uint64('u64', 2**64 - 1); w.add_int64('i64', -2**63); w.add_float64('f64', 1e300)\n"
            "w.add_array('as', ['x', '', 'yz'], GGUF_STRING); w.add_array('ai', [1, 2, 3], GGUF_INT16)\n"
            "w.add_array('nest', [[1, 2], [3]], GGUF_ARRAY)\n"
            "w.add_tensor('t32', np.arange(6, dtype=np.float32).reshape(2, 3))\n"
            "w.add_tensor('t16', np.array([1.5, -2.0], np.float32), GGML_F16)\n"
            "w.add_tensor('tbf', np.array([1.0, -3.0], np.float32), GGML_BF16)\n"
            "w.add_raw_tensor('q', bytes(range(68)), GGML_Q8_0, (32, 2))\n"
            "w.write(sys.argv[2])\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' '%s'", py, src, out);
    assert_int_equal(system(cmd), 0);
    gguf_t *g;
    int rc = gguf_open(out, &g, err, sizeof err);
    if (rc)
        fail_msg("%s", err);
    uint64_t u;
    int64_t i;
    double d;
    char s[16];
    assert_int_equal(g->alignment, 64);
    assert_int_equal(g->data_offset % 64, 0);
    assert_int_equal(gguf_get_u64(g, "u8", &u), 0), assert_int_equal(u, 250);
    assert_int_equal(gguf_get_i64(g, "i8", &i), 0), assert_int_equal(i, -100);
    assert_int_equal(gguf_get_u64(g, "u16", &u), 0), assert_int_equal(u, 65000);
    assert_int_equal(gguf_get_i64(g, "i16", &i), 0), assert_int_equal(i, -32000);
    assert_int_equal(gguf_get_u64(g, "u32", &u), 0), assert_int_equal(u, 4000000000u);
    assert_int_equal(gguf_get_i64(g, "i32", &i), 0), assert_int_equal(i, -7);
    assert_int_equal(gguf_get_f64(g, "f32", &d), 0), assert_true(d == 0.25);
    assert_int_equal(gguf_find(g, "b")->val.type, GGUF_T_BOOL);
    assert_int_equal(gguf_get_str(g, "s", s, sizeof s), 0), assert_string_equal(s, "h\xc3\xa9");
    assert_int_equal(gguf_get_u64(g, "u64", &u), 0), assert_true(u == UINT64_MAX);
    assert_int_equal(gguf_get_i64(g, "i64", &i), 0), assert_true(i == INT64_MIN);
    assert_int_equal(gguf_get_f64(g, "f64", &d), 0), assert_true(d == 1e300);
    const gguf_kv_t *kv = gguf_find(g, "as");
    gguf_str_t e;
    assert_int_equal(gguf_arr_str(kv, 2, &e), 0);
    assert_int_equal(e.len, 2), assert_memory_equal(e.p, "yz", 2);
    kv = gguf_find(g, "ai");
    assert_int_equal(kv->val.v.arr.type, GGUF_T_INT16), assert_int_equal(kv->val.v.arr.n, 3);
    assert_int_equal(kv->val.v.arr.data[4], 3);
    kv = gguf_find(g, "nest");
    assert_int_equal(kv->val.v.arr.type, GGUF_T_ARRAY), assert_int_equal(kv->val.v.arr.n, 2);
    const gguf_tensor_t *t = gguf_tensor(g, "t32");
    assert_int_equal(t->ne[0], 3), assert_int_equal(t->ne[1], 2), assert_int_equal(t->size, 24);
    float fl[6];
    memcpy(fl, t->data, sizeof fl);
    for (int k = 0; k < 6; k++)
        assert_true(fl[k] == (float)k);
    t = gguf_tensor(g, "t16");
    assert_int_equal(t->type, GGML_T_F16);
    const uint8_t *h = t->data; /* 1.5 = 0x3e00, -2.0 = 0xc000 */
    assert_int_equal(h[0] | h[1] << 8, 0x3e00), assert_int_equal(h[2] | h[3] << 8, 0xc000);
    t = gguf_tensor(g, "tbf");
    h = t->data; /* 1.0 = 0x3f80, -3.0 = 0xc040 */
    assert_int_equal(h[0] | h[1] << 8, 0x3f80), assert_int_equal(h[2] | h[3] << 8, 0xc040);
    t = gguf_tensor(g, "q");
    assert_int_equal(t->size, 68), assert_int_equal(((const uint8_t *)t->data)[67], 67);
    for (uint64_t k = 0; k < g->n_tensors; k++)
        assert_int_equal(g->tensors[k].offset % 64, 0);
    gguf_close(g);
    unlink(py);
    unlink(out);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_types),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_alignment),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_file_open),
        cmocka_unit_test(test_traits_and_names),
        cmocka_unit_test(test_param_size_str),
        cmocka_unit_test(test_mkgguf_model),
        cmocka_unit_test(test_python_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
