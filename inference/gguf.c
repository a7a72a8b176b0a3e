/* GGUF reader (see gguf.h for the contract).
 *
 * The parser walks the file once with a bounds-checked cursor; every read
 * goes through rd_need(), so no path can touch a byte past the end. Sizes are
 * computed with overflow-checked multiplication because every count and shape
 * in the file is attacker-controlled. Look-ups go through two small hash
 * tables built at open, which also reject duplicate keys and tensor names. */
#include "inference/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"

#define GGUF_MAX_KV (1u << 20)
#define GGUF_MAX_TENSORS (1u << 20)
#define GGUF_MAX_STR (1ull << 30)
#define GGUF_MAX_DEPTH 4
#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGN 32

/* Size of a fixed-width value type; 0 for string, array and unknown. */
static uint64_t vtype_size(uint32_t t)
{
    switch (t) {
    case GGUF_T_UINT8: case GGUF_T_INT8: case GGUF_T_BOOL: return 1;
    case GGUF_T_UINT16: case GGUF_T_INT16: return 2;
    case GGUF_T_UINT32: case GGUF_T_INT32: case GGUF_T_FLOAT32: return 4;
    case GGUF_T_UINT64: case GGUF_T_INT64: case GGUF_T_FLOAT64: return 8;
    default: return 0;
    }
}

/* ---- private state ----------------------------------------------------- */

typedef struct gguf_impl {
    gguf_t pub; /* first: gguf_t* and gguf_impl* convert both ways */
    int mapped; /* pub.map came from mmap and must be unmapped */
    uint32_t *kv_hash, *t_hash; /* open addressing; slot = index + 1, 0 empty */
    uint64_t kv_mask, t_mask;
    uint64_t kv_cap; /* entries allocated in pub.kv (n_kv may be larger on error) */
} gguf_impl_t;

static uint64_t str_hash(const char *p, uint64_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (uint64_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int str_eq(gguf_str_t a, const char *p, uint64_t n)
{
    return a.len == n && (n == 0 || memcmp(a.p, p, n) == 0);
}

static uint32_t *hash_alloc(uint64_t n, uint64_t *mask)
{
    uint64_t cap = 16;
    while (cap < n * 2)
        cap <<= 1;
    *mask = cap - 1;
    return calloc(cap, sizeof(uint32_t));
}

/* ---- cursor ------------------------------------------------------------ */

typedef struct rd {
    const uint8_t *p;
    uint64_t n, off;
    char *err;
    size_t errlen;
    char ctx[160]; /* what is being read, for messages */
} rd_t;

static int rd_fail(rd_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rd_fail(rd_t *r, const char *fmt, ...)
{
    if (r->err && r->errlen) {
        int k = snprintf(r->err, r->errlen, "gguf: ");
        va_list ap;
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < r->errlen)
            vsnprintf(r->err + k, r->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return OX_EFORMAT;
}

static int rd_need(rd_t *r, uint64_t k)
{
    if (r->n - r->off < k)
        return rd_fail(r, "truncated file reading %s at offset %" PRIu64
                          " (need %" PRIu64 " bytes, %" PRIu64 " left)",
                       r->ctx, r->off, k, r->n - r->off);
    return 0;
}

static uint64_t le(const uint8_t *p, int k)
{
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int rd_u32(rd_t *r, uint32_t *v)
{
    int rc = rd_need(r, 4);
    if (rc)
        return rc;
    *v = (uint32_t)le(r->p + r->off, 4);
    r->off += 4;
    return 0;
}

static int rd_u64(rd_t *r, uint64_t *v)
{
    int rc = rd_need(r, 8);
    if (rc)
        return rc;
    *v = le(r->p + r->off, 8);
    r->off += 8;
    return 0;
}

static int rd_str(rd_t *r, gguf_str_t *s)
{
    uint64_t len;
    int rc = rd_u64(r, &len);
    if (rc)
        return rc;
    if (len > GGUF_MAX_STR)
        return rd_fail(r, "string length %" PRIu64 " too large reading %s at offset %" PRIu64,
                       len, r->ctx, r->off - 8);
    if ((rc = rd_need(r, len)))
        return rc;
    if (s) {
        s->p = (const char *)r->p + r->off;
        s->len = len;
    }
    r->off += len;
    return 0;
}

static int mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* ---- values -------------------------------------------------------------- */

/* Decodes a scalar of fixed-width type t at p. */
static void scalar_decode(uint32_t t, const uint8_t *p, gguf_value_t *v)
{
    v->type = (gguf_vtype_t)t;
    switch (t) {
    case GGUF_T_UINT8: case GGUF_T_UINT16: case GGUF_T_UINT32: case GGUF_T_UINT64:
        v->v.u = le(p, (int)vtype_size(t));
        break;
    case GGUF_T_BOOL:
        v->v.u = p[0] != 0;
        break;
    case GGUF_T_INT8: v->v.i = (int8_t)p[0]; break;
    case GGUF_T_INT16: v->v.i = (int16_t)le(p, 2); break;
    case GGUF_T_INT32: v->v.i = (int32_t)le(p, 4); break;
    case GGUF_T_INT64: v->v.i = (int64_t)le(p, 8); break;
    case GGUF_T_FLOAT32: {
        uint32_t b = (uint32_t)le(p, 4);
        float f;
        memcpy(&f, &b, 4);
        v->v.f = f;
        break;
    }
    case GGUF_T_FLOAT64: {
        uint64_t b = le(p, 8);
        memcpy(&v->v.f, &b, 8);
        break;
    }
    default: break;
    }
}

/* Parses one value of type t (out may be NULL when only skipping, e.g. the
 * elements of a nested array). depth counts enclosing arrays. */
static int parse_value(rd_t *r, uint32_t t, int depth, gguf_value_t *out)
{
    int rc;
    uint64_t sz = vtype_size(t);
    if (sz) {
        if ((rc = rd_need(r, sz)))
            return rc;
        if (out)
            scalar_decode(t, r->p + r->off, out);
        r->off += sz;
        return 0;
    }
    if (t == GGUF_T_STRING) {
        gguf_str_t s;
        if ((rc = rd_str(r, &s)))
            return rc;
        if (out) {
            out->type = GGUF_T_STRING;
            out->v.s = s;
        }
        return 0;
    }
    if (t != GGUF_T_ARRAY)
        return rd_fail(r, "unknown value type %" PRIu32 " in %s at offset %" PRIu64, t, r->ctx,
                       r->off - 4);
    if (depth >= GGUF_MAX_DEPTH)
        return rd_fail(r, "arrays nested deeper than %d in %s at offset %" PRIu64,
                       GGUF_MAX_DEPTH, r->ctx, r->off);
    uint32_t et;
    uint64_t n;
    uint64_t at = r->off;
    if ((rc = rd_u32(r, &et)) || (rc = rd_u64(r, &n)))
        return rc;
    if (et > GGUF_T_FLOAT64)
        return rd_fail(r, "unknown array element type %" PRIu32 " in %s at offset %" PRIu64, et,
                       r->ctx, at);
    /* Every element takes at least min bytes, so a count larger than the rest
     * of the file is rejected before any loop or allocation depends on it. */
    uint64_t min = vtype_size(et) ? vtype_size(et) : (et == GGUF_T_STRING ? 8 : 12);
    uint64_t total;
    if (!mul_ok(n, min, &total) || total > r->n - r->off)
        return rd_fail(r, "array count %" PRIu64 " runs past the end of the file in %s at offset %"
                          PRIu64, n, r->ctx, at);
    const uint8_t *data = r->p + r->off;
    if (vtype_size(et)) {
        r->off += total;
    } else {
        for (uint64_t i = 0; i < n; i++) {
            if (et == GGUF_T_STRING)
                rc = rd_str(r, NULL);
            else
                rc = parse_value(r, GGUF_T_ARRAY, depth + 1, NULL);
            if (rc)
                return rc;
        }
    }
    if (out) {
        out->type = GGUF_T_ARRAY;
        out->v.arr.type = (gguf_vtype_t)et;
        out->v.arr.n = n;
        out->v.arr.data = data;
    }
    return 0;
}

/* Offsets of each string of a top-level string array, relative to its data. */
static int index_strings(gguf_kv_t *kv)
{
    uint64_t n = kv->val.v.arr.n;
    uint64_t *off = malloc((n ? n : 1) * sizeof(uint64_t));
    if (!off)
        return OX_ENOMEM;
    uint64_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        off[i] = pos;
        pos += 8 + le(kv->val.v.arr.data + pos, 8); /* validated by parse_value */
    }
    kv->str_off = off;
    return 0;
}

/* ---- header, metadata, tensor infos --------------------------------------- */

static int parse_kvs(rd_t *r, gguf_impl_t *im)
{
    gguf_t *g = &im->pub;
    int rc;
    if (g->n_kv > GGUF_MAX_KV)
        return rd_fail(r, "metadata count %" PRIu64 " is over the limit of %u", g->n_kv,
                       GGUF_MAX_KV);
    /* Each key/value takes at least 13 bytes (key length, type, one byte), so
     * no more than cap of them can fit: a hostile count allocates no more than
     * the file could describe, and parsing stops with a precise truncation
     * message before cap is reached. */
    uint64_t cap = (r->n - r->off) / 13;
    cap = g->n_kv < cap ? g->n_kv : cap;
    g->kv = calloc(cap ? cap : 1, sizeof(gguf_kv_t));
    im->kv_cap = cap;
    im->kv_hash = hash_alloc(cap, &im->kv_mask);
    if (!g->kv || !im->kv_hash)
        return OX_ENOMEM;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv_t *kv = &g->kv[i];
        snprintf(r->ctx, sizeof r->ctx, "metadata key %" PRIu64, i);
        if (i >= cap) { /* fewer than 13 bytes left: rd_need fails */
            rc = rd_need(r, 13);
            return rc ? rc : rd_fail(r, "metadata index overflow at key %" PRIu64, i);
        }
        if ((rc = rd_str(r, &kv->key)))
            return rc;
        int shown = kv->key.len > 64 ? 64 : (int)kv->key.len;
        snprintf(r->ctx, sizeof r->ctx, "metadata key %" PRIu64 " (%.*s)", i, shown, kv->key.p);
        uint64_t h = str_hash(kv->key.p, kv->key.len) & im->kv_mask;
        while (im->kv_hash[h]) {
            const gguf_kv_t *o = &g->kv[im->kv_hash[h] - 1];
            if (str_eq(o->key, kv->key.p, kv->key.len))
                return rd_fail(r, "duplicate metadata key '%.*s' (entries %u and %" PRIu64 ")",
                               shown, kv->key.p, im->kv_hash[h] - 1, i);
            h = (h + 1) & im->kv_mask;
        }
        im->kv_hash[h] = (uint32_t)(i + 1);
        uint32_t t;
        if ((rc = rd_u32(r, &t)) || (rc = parse_value(r, t, 0, &kv->val)))
            return rc;
        if (t == GGUF_T_ARRAY && kv->val.v.arr.type == GGUF_T_STRING &&
            (rc = index_strings(kv)))
            return rc;
    }
    return 0;
}

static int parse_alignment(rd_t *r, gguf_t *g)
{
    g->alignment = GGUF_DEFAULT_ALIGN;
    const gguf_kv_t *kv = gguf_find(g, "general.alignment");
    if (!kv)
        return 0;
    uint64_t a;
    if (gguf_get_u64(g, "general.alignment", &a) || kv->val.type == GGUF_T_BOOL)
        return rd_fail(r, "general.alignment has type %s, want an unsigned integer",
                       gguf_vtype_name(kv->val.type));
    if (a == 0 || (a & (a - 1)) || a > (1u << 30))
        return rd_fail(r, "general.alignment %" PRIu64 " is not a power of two in 1..2^30", a);
    g->alignment = a;
    return 0;
}

static int parse_tensor_info(rd_t *r, gguf_impl_t *im, uint64_t i)
{
    gguf_t *g = &im->pub;
    gguf_tensor_t *t = &g->tensors[i];
    int rc;
    snprintf(r->ctx, sizeof r->ctx, "tensor info %" PRIu64, i);
    if ((rc = rd_str(r, &t->name)))
        return rc;
    int shown = t->name.len > 64 ? 64 : (int)t->name.len;
    snprintf(r->ctx, sizeof r->ctx, "tensor info %" PRIu64 " (%.*s)", i, shown, t->name.p);
    uint64_t h = str_hash(t->name.p, t->name.len) & im->t_mask;
    while (im->t_hash[h]) {
        if (str_eq(g->tensors[im->t_hash[h] - 1].name, t->name.p, t->name.len))
            return rd_fail(r, "duplicate tensor name '%.*s' (tensors %u and %" PRIu64 ")", shown,
                           t->name.p, im->t_hash[h] - 1, i);
        h = (h + 1) & im->t_mask;
    }
    im->t_hash[h] = (uint32_t)(i + 1);
    if ((rc = rd_u32(r, &t->n_dims)))
        return rc;
    if (t->n_dims > GGUF_MAX_DIMS)
        return rd_fail(r, "%s has %" PRIu32 " dimensions (at most %d)", r->ctx, t->n_dims,
                       GGUF_MAX_DIMS);
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    uint64_t nel = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if ((rc = rd_u64(r, &t->ne[d])))
            return rc;
        if (t->ne[d] > INT64_MAX || !mul_ok(nel, t->ne[d], &nel) || nel > INT64_MAX)
            return rd_fail(r, "%s: shape overflows (ne[%" PRIu32 "] = %" PRIu64 ")", r->ctx, d,
                           t->ne[d]);
    }
    uint32_t type;
    if ((rc = rd_u32(r, &type)) || (rc = rd_u64(r, &t->offset)))
        return rc;
    int ti = type < GGML_T_COUNT ? (int)type : -1;
    uint64_t block = gguf_ttype_block(ti), block_bytes = gguf_ttype_block_bytes(ti);
    if (!block)
        return rd_fail(r, "%s has unknown tensor type %" PRIu32, r->ctx, type);
    t->type = (gguf_ttype_t)type;
    if (t->ne[0] % block)
        return rd_fail(r, "%s: ne[0] = %" PRIu64 " is not a multiple of the %s block size %"
                          PRIu64, r->ctx, t->ne[0], gguf_ttype_name(ti), block);
    uint64_t size = t->ne[0] / block;
    if (!mul_ok(size, block_bytes, &size) || !mul_ok(size, t->ne[1], &size) ||
        !mul_ok(size, t->ne[2], &size) || !mul_ok(size, t->ne[3], &size))
        return rd_fail(r, "%s: byte size overflows", r->ctx);
    t->size = size;
    if (t->offset % g->alignment)
        return rd_fail(r, "%s: offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                       r->ctx, t->offset, g->alignment);
    return 0;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const gguf_tensor_t *x = *(const gguf_tensor_t *const *)a;
    const gguf_tensor_t *y = *(const gguf_tensor_t *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Places every tensor inside the file and rejects overlaps. */
static int check_tensor_data(rd_t *r, gguf_t *g)
{
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor_t *t = &g->tensors[i];
        int shown = t->name.len > 64 ? 64 : (int)t->name.len;
        uint64_t start, end;
        if (__builtin_add_overflow(g->data_offset, t->offset, &start) ||
            __builtin_add_overflow(start, t->size, &end) || end > g->file_size)
            return rd_fail(r, "tensor %" PRIu64 " (%.*s): data [%" PRIu64 ", +%" PRIu64
                              ") in the data section at file offset %" PRIu64
                              " runs past the end of the file (%" PRIu64 " bytes)",
                           i, shown, t->name.p, t->offset, t->size, g->data_offset, g->file_size);
        t->data = g->map + start;
    }
    if (g->n_tensors < 2)
        return 0;
    const gguf_tensor_t **v = malloc(g->n_tensors * sizeof *v);
    if (!v)
        return OX_ENOMEM;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        v[i] = &g->tensors[i];
    qsort(v, g->n_tensors, sizeof *v, cmp_by_offset);
    int rc = 0;
    for (uint64_t i = 1; i < g->n_tensors && !rc; i++) {
        const gguf_tensor_t *a = v[i - 1], *b = v[i];
        if (a->size && b->size && a->offset + a->size > b->offset)
            rc = rd_fail(r, "tensors '%.*s' [%" PRIu64 ", +%" PRIu64 ") and '%.*s' [%" PRIu64
                            ", +%" PRIu64 ") overlap",
                         a->name.len > 64 ? 64 : (int)a->name.len, a->name.p, a->offset, a->size,
                         b->name.len > 64 ? 64 : (int)b->name.len, b->name.p, b->offset, b->size);
    }
    free(v);
    return rc;
}

static int parse(rd_t *r, gguf_impl_t *im)
{
    gguf_t *g = &im->pub;
    int rc;
    uint32_t magic;
    snprintf(r->ctx, sizeof r->ctx, "header");
    if ((rc = rd_u32(r, &magic)))
        return rc;
    if (magic != 0x46554747u) /* "GGUF" little-endian */
        return rd_fail(r, "bad magic %02x %02x %02x %02x at offset 0 (want \"GGUF\")", r->p[0],
                       r->p[1], r->p[2], r->p[3]);
    if ((rc = rd_u32(r, &g->version)))
        return rc;
    if (g->version != 2 && g->version != 3)
        return rd_fail(r, "unsupported version %" PRIu32 "%s (only 2 and 3)", g->version,
                       (g->version & 0xffff) == 0 ? ", big-endian file?" : "");
    if ((rc = rd_u64(r, &g->n_tensors)) || (rc = rd_u64(r, &g->n_kv)))
        return rc;
    if ((rc = parse_kvs(r, im)) || (rc = parse_alignment(r, g)))
        return rc;
    if (g->n_tensors > GGUF_MAX_TENSORS)
        return rd_fail(r, "tensor count %" PRIu64 " is over the limit of %u", g->n_tensors,
                       GGUF_MAX_TENSORS);
    /* As for metadata: the smallest tensor info (empty name, 0 dims) takes
     * 24 bytes, which bounds how many can fit in the rest of the file. */
    uint64_t cap = (r->n - r->off) / 24;
    cap = g->n_tensors < cap ? g->n_tensors : cap;
    g->tensors = calloc(cap ? cap : 1, sizeof(gguf_tensor_t));
    im->t_hash = hash_alloc(cap, &im->t_mask);
    if (!g->tensors || !im->t_hash)
        return OX_ENOMEM;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if (i >= cap) {
            snprintf(r->ctx, sizeof r->ctx, "tensor info %" PRIu64, i);
            rc = rd_need(r, 24);
            return rc ? rc : rd_fail(r, "tensor index overflow at tensor %" PRIu64, i);
        }
        if ((rc = parse_tensor_info(r, im, i)))
            return rc;
    }
    /* r->off <= file size <= 2^63 here, so rounding up cannot wrap. */
    g->data_offset = (r->off + g->alignment - 1) & ~(g->alignment - 1);
    return check_tensor_data(r, g);
}

/* ---- open / close ----------------------------------------------------------- */

void gguf_close(gguf_t *g)
{
    if (!g)
        return;
    gguf_impl_t *im = (gguf_impl_t *)g;
    if (g->kv)
        for (uint64_t i = 0; i < im->kv_cap; i++)
            free((void *)g->kv[i].str_off);
    free(g->kv);
    free(g->tensors);
    free(im->kv_hash);
    free(im->t_hash);
    if (im->mapped)
        munmap((void *)g->map, g->file_size);
    free(im);
}

static int open_mem(const void *p, uint64_t n, int mapped, gguf_t **out, char *err,
                    size_t errlen)
{
    gguf_impl_t *im = calloc(1, sizeof *im);
    if (!im)
        return OX_ENOMEM;
    im->pub.map = p;
    im->pub.file_size = n;
    rd_t r = {.p = p, .n = n, .err = err, .errlen = errlen};
    int rc = parse(&r, im);
    if (rc) {
        if (rc == OX_ENOMEM && err && errlen)
            snprintf(err, errlen, "gguf: out of memory indexing %s", r.ctx);
        /* Keep the caller's mapping: on failure the caller unmaps it. */
        im->mapped = 0;
        gguf_close(&im->pub);
        return rc;
    }
    im->mapped = mapped;
    *out = &im->pub;
    return 0;
}

int gguf_open_buffer(const void *p, size_t n, gguf_t **out, char *err, size_t errlen)
{
    if (!out || (!p && n))
        return OX_EINVAL;
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    return open_mem(p, n, 0, out, err, errlen);
}

int gguf_open(const char *path, gguf_t **out, char *err, size_t errlen)
{
    if (!path || !out)
        return OX_EINVAL;
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (err && errlen)
            snprintf(err, errlen, "gguf: cannot open %s: %s", path, strerror(e));
        return e == ENOENT ? OX_ENOTFOUND : OX_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (err && errlen)
            snprintf(err, errlen, "gguf: %s is not a regular file", path);
        close(fd);
        return OX_EIO;
    }
    uint64_t n = (uint64_t)st.st_size;
    void *map = NULL;
    if (n > 0) {
        map = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            if (err && errlen)
                snprintf(err, errlen, "gguf: cannot map %s: %s", path, strerror(e));
            close(fd);
            return OX_EIO;
        }
    }
    close(fd); /* the mapping keeps the file alive */
    int rc = open_mem(map, n, n > 0, out, err, errlen);
    if (rc && n > 0)
        munmap(map, n);
    return rc;
}

/* ---- look-ups ------------------------------------------------------------- */

const gguf_kv_t *gguf_find(const gguf_t *g, const char *key)
{
    if (!g || !key)
        return NULL;
    const gguf_impl_t *im = (const gguf_impl_t *)g;
    uint64_t n = strlen(key);
    for (uint64_t h = str_hash(key, n) & im->kv_mask; im->kv_hash[h]; h = (h + 1) & im->kv_mask)
        if (str_eq(g->kv[im->kv_hash[h] - 1].key, key, n))
            return &g->kv[im->kv_hash[h] - 1];
    return NULL;
}

const gguf_tensor_t *gguf_tensor(const gguf_t *g, const char *name)
{
    if (!g || !name)
        return NULL;
    const gguf_impl_t *im = (const gguf_impl_t *)g;
    uint64_t n = strlen(name);
    for (uint64_t h = str_hash(name, n) & im->t_mask; im->t_hash[h]; h = (h + 1) & im->t_mask)
        if (str_eq(g->tensors[im->t_hash[h] - 1].name, name, n))
            return &g->tensors[im->t_hash[h] - 1];
    return NULL;
}

static int is_unsigned(gguf_vtype_t t)
{
    return t == GGUF_T_UINT8 || t == GGUF_T_UINT16 || t == GGUF_T_UINT32 ||
           t == GGUF_T_UINT64 || t == GGUF_T_BOOL;
}

static int is_signed(gguf_vtype_t t)
{
    return t == GGUF_T_INT8 || t == GGUF_T_INT16 || t == GGUF_T_INT32 || t == GGUF_T_INT64;
}

int gguf_get_u64(const gguf_t *g, const char *key, uint64_t *out)
{
    const gguf_kv_t *kv = gguf_find(g, key);
    if (!kv)
        return OX_ENOTFOUND;
    if (is_unsigned(kv->val.type)) {
        *out = kv->val.v.u;
        return 0;
    }
    if (is_signed(kv->val.type) && kv->val.v.i >= 0) {
        *out = (uint64_t)kv->val.v.i;
        return 0;
    }
    return OX_EFORMAT;
}

int gguf_get_i64(const gguf_t *g, const char *key, int64_t *out)
{
    const gguf_kv_t *kv = gguf_find(g, key);
    if (!kv)
        return OX_ENOTFOUND;
    if (is_signed(kv->val.type)) {
        *out = kv->val.v.i;
        return 0;
    }
    if (is_unsigned(kv->val.type) && kv->val.v.u <= INT64_MAX) {
        *out = (int64_t)kv->val.v.u;
        return 0;
    }
    return OX_EFORMAT;
}

int gguf_get_f64(const gguf_t *g, const char *key, double *out)
{
    const gguf_kv_t *kv = gguf_find(g, key);
    if (!kv)
        return OX_ENOTFOUND;
    switch (kv->val.type) {
    case GGUF_T_FLOAT32: case GGUF_T_FLOAT64: *out = kv->val.v.f; return 0;
    default: break;
    }
    /* Some converters store float hyper-parameters (rope.freq_base) as ints. */
    if (is_signed(kv->val.type) && kv->val.type != GGUF_T_BOOL) {
        *out = (double)kv->val.v.i;
        return 0;
    }
    if (is_unsigned(kv->val.type) && kv->val.type != GGUF_T_BOOL) {
        *out = (double)kv->val.v.u;
        return 0;
    }
    return OX_EFORMAT;
}

int gguf_get_str(const gguf_t *g, const char *key, char *out, size_t cap)
{
    const gguf_kv_t *kv = gguf_find(g, key);
    if (!kv)
        return OX_ENOTFOUND;
    if (kv->val.type != GGUF_T_STRING)
        return OX_EFORMAT;
    if (cap == 0)
        return 0;
    size_t n = kv->val.v.s.len < cap - 1 ? (size_t)kv->val.v.s.len : cap - 1;
    if (n)
        memcpy(out, kv->val.v.s.p, n);
    out[n] = 0;
    return 0;
}

int gguf_arr_str(const gguf_kv_t *kv, uint64_t i, gguf_str_t *out)
{
    if (!kv || kv->val.type != GGUF_T_ARRAY || kv->val.v.arr.type != GGUF_T_STRING ||
        !kv->str_off)
        return OX_EFORMAT;
    if (i >= kv->val.v.arr.n)
        return OX_ENOTFOUND;
    const uint8_t *p = kv->val.v.arr.data + kv->str_off[i];
    out->len = le(p, 8);
    out->p = (const char *)p + 8;
    return 0;
}

/* ---- summaries ---------------------------------------------------------- */

uint64_t gguf_param_count(const gguf_t *g)
{
    uint64_t n = 0;
    for (uint64_t i = 0; g && i < g->n_tensors; i++) {
        const gguf_tensor_t *t = &g->tensors[i];
        /* open checked the product of ne fits in int64; the sum saturates */
        if (__builtin_add_overflow(n, t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3], &n))
            return UINT64_MAX;
    }
    return n;
}
