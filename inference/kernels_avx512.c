/* AVX-512 (F, BW, VL, DQ) + VNNI kernel bodies, two 32-value blocks per
 * 512-bit register; types without a body here fall back to AVX2. The x4
 * variants decode a weight block once and use it for four activation rows,
 * which is what makes batched prompt processing faster than decode. */
#include "inference/quant.h"

#include <string.h>

/* How many rows ahead the multi-row kernels prefetch weights (0: off);
 * 4, 8 and 16 measured the same within the noise of the shared machine. */
#ifndef Q_PREFETCH_ROWS
#define Q_PREFETCH_ROWS 8
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")
#include <immintrin.h>

static inline float f16(uint16_t h)
{
    return _cvtsh_ss(h);
}

static inline __m512i load2(const void *a, const void *b)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* lower 8 lanes a, upper 8 lanes b */
static inline __m512 splat2(float a, float b)
{
    return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

/* f16 scales at a and b, one conversion for both, spread as idx says */
static inline __m512 splat2_f16(const void *a, const void *b, __m512i idx)
{
    uint16_t h0, h1;
    memcpy(&h0, a, 2);
    memcpy(&h1, b, 2);
    __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)(h0 | (uint32_t)h1 << 16)));
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

/* Nibbles of two Q4_0 blocks a, b as 128-bit lanes [a lo, b lo, a hi, b hi]
 * (fewer shuffles than block order; the activations are permuted to match) */
static inline __m512i nibbles64_il(const uint8_t *qa, const uint8_t *qb)
{
    __m256i t = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)qa)),
                                        _mm_loadu_si128((const __m128i *)qb), 1);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(t), _mm256_srli_epi16(t, 4), 1);
    return _mm512_and_si512(z, _mm512_set1_epi8(15));
}

/* 16 bytes of nibbles -> 32 bytes (low nibbles, then high), as a 256 half */
static inline __m256i nibbles32(const uint8_t *qs)
{
    __m128i t = _mm_loadu_si128((const __m128i *)qs);
    __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(15));
}

static inline __m512i nibbles64(const uint8_t *qa, const uint8_t *qb)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(nibbles32(qa)), nibbles32(qb), 1);
}

/* signed x signed: |x| (unsigned) times y with x's sign, summed in 4s */
static inline __m512i dot_s8(__m512i x, __m512i y)
{
    __m512i ax = _mm512_abs_epi8(x);
    __m512i sy = _mm512_mask_sub_epi8(y, _mm512_movepi8_mask(x), _mm512_setzero_si512(), y);
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), ax, sy);
}

static inline __m256i dot_s8_256(__m256i x, __m256i y)
{
    __m256i ax = _mm256_abs_epi8(x);
    __m256i sy = _mm256_mask_sub_epi8(y, _mm256_movepi8_mask(x), _mm256_setzero_si256(), y);
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy);
}

static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static float dot_q8_0_q8_0(int n, const void *w, const void *a)
{
    const blk_q8_0 *x = w, *y = a;
    int nb = n / QK8_0, i = 0;
    __m512 acc = _mm512_setzero_ps();
    for (; i + 1 < nb; i += 2) {
        __m512i p = dot_s8(load2(x[i].qs, x[i + 1].qs), load2(y[i].qs, y[i + 1].qs));
        __m512 d = splat2(f16(x[i].d) * f16(y[i].d), f16(x[i + 1].d) * f16(y[i + 1].d));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < nb) {
        __m256i p = dot_s8_256(_mm256_loadu_si256((const __m256i *)x[i].qs),
                               _mm256_loadu_si256((const __m256i *)y[i].qs));
        s += hsum256(_mm256_cvtepi32_ps(p)) * f16(x[i].d) * f16(y[i].d);
    }
    return s;
}

static void dot_q8_0_q8_0_x4(int n, const void *w, const void *a, size_t st, float *out)
{
    const blk_q8_0 *x = w;
    const blk_q8_0 *y[4];
    for (int k = 0; k < 4; k++)
        y[k] = (const blk_q8_0 *)((const char *)a + (size_t)k * st);
    int nb = n / QK8_0, i = 0;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (; i + 1 < nb; i += 2) {
        __m512i xq = load2(x[i].qs, x[i + 1].qs);
        __m512i ax = _mm512_abs_epi8(xq);
        __mmask64 neg = _mm512_movepi8_mask(xq);
        float d0 = f16(x[i].d), d1 = f16(x[i + 1].d);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            __m512i yq = load2(y[k][i].qs, y[k][i + 1].qs);
            __m512i sy = _mm512_mask_sub_epi8(yq, neg, _mm512_setzero_si512(), yq);
            __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ax, sy);
            __m512 d = splat2(d0 * f16(y[k][i].d), d1 * f16(y[k][i + 1].d));
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), d, acc[k]);
        }
    }
    for (int k = 0; k < 4; k++) {
        out[k] = _mm512_reduce_add_ps(acc[k]);
        if (i < nb) {
            __m256i p = dot_s8_256(_mm256_loadu_si256((const __m256i *)x[i].qs),
                                   _mm256_loadu_si256((const __m256i *)y[k][i].qs));
            out[k] += hsum256(_mm256_cvtepi32_ps(p)) * f16(x[i].d) * f16(y[k][i].d);
        }
    }
}

/* Q4_0: unsigned nibbles times y, minus 8 * sum(y) (both with VNNI) */
static float dot_q4_0_q8_0(int n, const void *w, const void *a)
{
    const blk_q4_0 *x = w;
    const blk_q8_0 *y = a;
    int nb = n / QK4_0, i = 0;
    const __m512i eight = _mm512_set1_epi8(8);
    __m512 acc = _mm512_setzero_ps();
    for (; i + 1 < nb; i += 2) {
        __m512i q = nibbles64(x[i].qs, x[i + 1].qs);
        __m512i yq = load2(y[i].qs, y[i + 1].qs);
        __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, yq);
        __m512i o = _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, yq);
        __m512 d = splat2(f16(x[i].d) * f16(y[i].d), f16(x[i + 1].d) * f16(y[i + 1].d));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(p, o)), d, acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < nb) {
        __m256i q = _mm256_sub_epi8(nibbles32(x[i].qs), _mm256_set1_epi8(8));
        __m256i p = dot_s8_256(q, _mm256_loadu_si256((const __m256i *)y[i].qs));
        s += hsum256(_mm256_cvtepi32_ps(p)) * f16(x[i].d) * f16(y[i].d);
    }
    return s;
}

static void dot_q4_0_q8_0_x4(int n, const void *w, const void *a, size_t st, float *out)
{
    const blk_q4_0 *x = w;
    const blk_q8_0 *y[4];
    for (int k = 0; k < 4; k++)
        y[k] = (const blk_q8_0 *)((const char *)a + (size_t)k * st);
    int nb = n / QK4_0, i = 0;
    const __m512i eight = _mm512_set1_epi8(8);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    for (; i + 1 < nb; i += 2) {
        __m512i q = nibbles64(x[i].qs, x[i + 1].qs);
        float d0 = f16(x[i].d), d1 = f16(x[i + 1].d);
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) {
            __m512i yq = load2(y[k][i].qs, y[k][i + 1].qs);
            __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, yq);
            __m512i o = _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, yq);
            __m512 d = splat2(d0 * f16(y[k][i].d), d1 * f16(y[k][i + 1].d));
            acc[k] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(p, o)), d, acc[k]);
        }
    }
    for (int k = 0; k < 4; k++) {
        out[k] = _mm512_reduce_add_ps(acc[k]);
        if (i < nb) {
            __m256i q = _mm256_sub_epi8(nibbles32(x[i].qs), _mm256_set1_epi8(8));
            __m256i p = dot_s8_256(q, _mm256_loadu_si256((const __m256i *)y[k][i].qs));
            out[k] += hsum256(_mm256_cvtepi32_ps(p)) * f16(x[i].d) * f16(y[k][i].d);
        }
    }
}

/* Q4_K: a 64-value chunk is 32 bytes of nibbles (low = sub-block 2c, high =
 * 2c+1), which lines up with 64 contiguous activation bytes: one VNNI dot
 * gives 8 lanes per sub-block, scaled in float. */
static float dot_q4_k_q8_k(int n, const void *w, const void *a)
{
    const blk_q4_k *x = w;
    const blk_q8_k *y = a;
    int nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(15);
    __m512 acc = _mm512_setzero_ps();
    float mins = 0;
    for (int i = 0; i < nb; i++) {
        uint32_t u[3], sv[2], mv[2];
        memcpy(u, x[i].scales, 12);
        sv[0] = u[0] & 0x3f3f3f3f;
        sv[1] = (u[2] & 0x0f0f0f0f) | ((u[0] >> 6) & 0x03030303) << 4;
        mv[0] = u[1] & 0x3f3f3f3f;
        mv[1] = ((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] >> 6) & 0x03030303) << 4;
        const uint8_t *sc = (const uint8_t *)sv, *m = (const uint8_t *)mv;
        __m128i b0 = _mm_loadu_si128((const __m128i *)y[i].bsums);
        __m128i b1 = _mm_loadu_si128((const __m128i *)(y[i].bsums + 8));
        __m128i pm = _mm_madd_epi16(_mm_hadd_epi16(b0, b1),
                                    _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)m)));
        pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, 0x4e));
        pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, 0xb1));
        float d = y[i].d * f16(x[i].d);
        mins += y[i].d * f16(x[i].dmin) * (float)_mm_cvtsi128_si32(pm);
        __m512i sumi = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            __m256i q4 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
            __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(q4, m4)),
                                           _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4), 1);
            __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q,
                                            _mm512_loadu_si512(y[i].qs + 64 * c));
            /* integer scales: exact, and one float conversion per block */
            __m512i s16 = _mm512_inserti64x4(_mm512_set1_epi32(sc[2 * c]),
                                             _mm256_set1_epi32(sc[2 * c + 1]), 1);
            sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(p, s16));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    return _mm512_reduce_add_ps(acc) - mins;
}

/* Q6_K: quarters (0,1) and (2,3) of each 128-value half line up with 64
 * contiguous activation bytes; each 4 int32 lanes of a VNNI dot are one
 * 16-value group with its own scale. The -32 offset comes from bsums. */
static float dot_q6_k_q8_k(int n, const void *w, const void *a)
{
    const blk_q6_k *x = w;
    const blk_q8_k *y = a;
    int nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    const __m512i idx0 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    __m512 acc = _mm512_setzero_ps();
    float offs = 0;
    for (int i = 0; i < nb; i++) {
        float d = f16(x[i].d) * y[i].d;
        __m128i s8 = _mm_loadu_si128((const __m128i *)x[i].scales);
        __m512i s32 = _mm512_cvtepi8_epi32(s8);
        __m256i bs = _mm256_loadu_si256((const __m256i *)y[i].bsums);
        __m256i po = _mm256_madd_epi16(bs, _mm256_cvtepi8_epi16(s8));
        __m128i o = _mm_add_epi32(_mm256_castsi256_si128(po), _mm256_extracti128_si256(po, 1));
        o = _mm_add_epi32(o, _mm_shuffle_epi32(o, 0x4e));
        o = _mm_add_epi32(o, _mm_shuffle_epi32(o, 0xb1));
        offs += d * 32.0f * (float)_mm_cvtsi128_si32(o);
        __m512i sumi = _mm512_setzero_si512();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            const int8_t *q8 = y[i].qs + 128 * h;
            __m256i b1 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i b2 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i bh = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q0 = _mm256_or_si256(_mm256_and_si256(b1, m4),
                                         _mm256_slli_epi16(_mm256_and_si256(bh, m2), 4));
            __m256i q1 = _mm256_or_si256(_mm256_and_si256(b2, m4),
                                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 2), m2), 4));
            __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m4),
                                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 4), m2), 4));
            __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m4),
                                         _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 6), m2), 4));
            __m512i qa = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
            __m512i qb = _mm512_inserti64x4(_mm512_castsi256_si512(q2), q3, 1);
            __m512i pa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qa, _mm512_loadu_si512(q8));
            __m512i pb = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qb, _mm512_loadu_si512(q8 + 64));
            /* groups 8h+0..3 for pa, 8h+4..7 for pb */
            __m512i sa = _mm512_permutexvar_epi32(_mm512_add_epi32(idx0, _mm512_set1_epi32(8 * h)), s32);
            __m512i sb = _mm512_permutexvar_epi32(_mm512_add_epi32(idx0, _mm512_set1_epi32(8 * h + 4)), s32);
            sumi = _mm512_add_epi32(sumi, _mm512_add_epi32(_mm512_mullo_epi32(pa, sa),
                                                           _mm512_mullo_epi32(pb, sb)));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
    }
    return _mm512_reduce_add_ps(acc) - offs;
}

/* 4 weight rows x nt tokens of Q8_0 or Q4_0 weights against Q8_0
 * activations. Weights go into VNNI as unsigned bytes (Q8_0 offset by 128,
 * Q4_0 nibbles are 0..15 with offset 8), so the activations are used
 * unchanged and shared by all four rows, and the offset is removed by
 * starting each dot at -offset * sum(y), also computed once per token. With
 * nt = 4 this is the prompt kernel; with nt = 1 the decode kernel (activation
 * work shared by 4 rows). out[nt * r + t]. */
static inline __attribute__((always_inline)) void rows4_q80(int n, const void *w, size_t ws,
                                                            const void *a, size_t as, int nt,
                                                            int q4, float *out)
{
    const size_t bs = q4 ? sizeof(blk_q4_0) : sizeof(blk_q8_0);
    const uint8_t *x[4];
    const blk_q8_0 *y[4];
    for (int k = 0; k < 4; k++) {
        x[k] = (const uint8_t *)w + (size_t)k * ws;
        y[k] = (const blk_q8_0 *)((const char *)a + (size_t)(k < nt ? k : 0) * as);
    }
    int nb = n / QK8_0, i = 0;
    const size_t pf = Q_PREFETCH_ROWS * ws;
    const __m512i off = _mm512_set1_epi8(q4 ? 8 : (char)0x80);
    /* With 4 tokens the kernel is compute-bound and Q4_0 pairs of blocks are
     * interleaved by lane (cheaper to unpack) with one f16 conversion per
     * pair; with 1 token it is bound by memory latency, and the plain
     * layout with separate scale loads measured faster (the weight loads
     * issue earlier). il: the interleaved layout. */
    const int il = q4 && nt == 4, packed = nt == 4;
    const __m512i sidx = il ? _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)
                            : _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++)
            acc[r][t] = _mm512_setzero_ps();
    for (; i + 1 < nb; i += 2) {
        __m512i yv[4], nys[4];
        __m512 da[4];
#pragma GCC unroll 4
        for (int t = 0; t < nt; t++) {
            yv[t] = load2(y[t][i].qs, y[t][i + 1].qs);
            if (il)
                yv[t] = _mm512_shuffle_i64x2(yv[t], yv[t], _MM_SHUFFLE(3, 1, 2, 0));
            nys[t] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                      _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, yv[t]));
            da[t] = packed ? splat2_f16(&y[t][i].d, &y[t][i + 1].d, sidx)
                           : splat2(f16(y[t][i].d), f16(y[t][i + 1].d));
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            const uint8_t *b0 = x[r] + (size_t)i * bs, *b1 = b0 + bs;
            /* Rows are short (1-2 KiB) and four are walked at once, so the
             * hardware prefetcher never gets going and each line costs a full
             * memory latency: fetch the same place Q_PREFETCH_ROWS rows on
             * (two groups of four: rows the caller asks for next) ahead of
             * time. Two touches per row because two blocks can span more
             * than a line. Without it decode was up to 2x slower. */
            if (Q_PREFETCH_ROWS > 0) {
                _mm_prefetch((const char *)b0 + pf, _MM_HINT_T0);
                _mm_prefetch((const char *)b1 + pf, _MM_HINT_T0);
            }
            __m512i xv = il   ? nibbles64_il(b0 + 2, b1 + 2)
                         : q4 ? nibbles64(b0 + 2, b1 + 2)
                              : _mm512_xor_si512(load2(b0 + 2, b1 + 2), off);
            __m512 dw;
            if (packed) {
                dw = splat2_f16(b0, b1, sidx);
            } else {
                uint16_t h0, h1;
                memcpy(&h0, b0, 2);
                memcpy(&h1, b1, 2);
                dw = splat2(f16(h0), f16(h1));
            }
#pragma GCC unroll 4
            for (int t = 0; t < nt; t++) {
                __m512i p = _mm512_dpbusd_epi32(nys[t], xv, yv[t]);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, da[t]),
                                            acc[r][t]);
            }
        }
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < nt; t++) {
            float s = _mm512_reduce_add_ps(acc[r][t]);
            if (i < nb) {
                const uint8_t *b = x[r] + (size_t)i * bs;
                uint16_t h;
                memcpy(&h, b, 2);
                __m256i xq = q4 ? _mm256_sub_epi8(nibbles32(b + 2), _mm256_set1_epi8(8))
                                : _mm256_loadu_si256((const __m256i *)(b + 2));
                __m256i p = dot_s8_256(xq, _mm256_loadu_si256((const __m256i *)y[t][i].qs));
                s += hsum256(_mm256_cvtepi32_ps(p)) * f16(h) * f16(y[t][i].d);
            }
            out[nt * r + t] = s;
        }
}

static void dot_q8_0_q8_0_4x4(int n, const void *w, size_t ws, const void *a, size_t as,
                              float *out)
{
    rows4_q80(n, w, ws, a, as, 4, 0, out);
}

static void dot_q4_0_q8_0_4x4(int n, const void *w, size_t ws, const void *a, size_t as,
                              float *out)
{
    rows4_q80(n, w, ws, a, as, 4, 1, out);
}

static void dot_q8_0_q8_0_4x1(int n, const void *w, size_t ws, const void *a, float *out)
{
    rows4_q80(n, w, ws, a, 0, 1, 0, out);
}

static void dot_q4_0_q8_0_4x1(int n, const void *w, size_t ws, const void *a, float *out)
{
    rows4_q80(n, w, ws, a, 0, 1, 1, out);
}

/* Q4_K x 4 tokens: the row's nibbles and scales are unpacked once per block
 * and used for four activation rows (prompt processing). */
static void dot_q4_k_q8_k_x4(int n, const void *w, const void *a, size_t st, float *out)
{
    const blk_q4_k *x = w;
    const blk_q8_k *y[4];
    for (int k = 0; k < 4; k++)
        y[k] = (const blk_q8_k *)((const char *)a + (size_t)k * st);
    int nb = n / QK_K;
    const __m256i m4 = _mm256_set1_epi8(15);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                     _mm512_setzero_ps()};
    float mins[4] = {0, 0, 0, 0};
    for (int i = 0; i < nb; i++) {
        uint32_t u[3], sv[2], mv[2];
        memcpy(u, x[i].scales, 12);
        sv[0] = u[0] & 0x3f3f3f3f;
        sv[1] = (u[2] & 0x0f0f0f0f) | ((u[0] >> 6) & 0x03030303) << 4;
        mv[0] = u[1] & 0x3f3f3f3f;
        mv[1] = ((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] >> 6) & 0x03030303) << 4;
        const uint8_t *sc = (const uint8_t *)sv;
        __m128i mw = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mv));
        __m512i q[4];
        __m512 s[4];
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256i q4 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
            q[c] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(q4, m4)),
                                      _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4), 1);
            s[c] = splat2((float)sc[2 * c], (float)sc[2 * c + 1]);
        }
        float d = f16(x[i].d), dmin = f16(x[i].dmin);
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) {
            const blk_q8_k *b = &y[t][i];
            __m128i pm = _mm_madd_epi16(
                _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)b->bsums),
                               _mm_loadu_si128((const __m128i *)(b->bsums + 8))), mw);
            pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, 0x4e));
            pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, 0xb1));
            mins[t] += b->d * dmin * (float)_mm_cvtsi128_si32(pm);
            __m512 sum = _mm512_setzero_ps();
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[c],
                                                _mm512_loadu_si512(b->qs + 64 * c));
                sum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), s[c], sum);
            }
            acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(d * b->d), sum, acc[t]);
        }
    }
    for (int t = 0; t < 4; t++)
        out[t] = _mm512_reduce_add_ps(acc[t]) - mins[t];
}

#pragma GCC pop_options

const q_kernels_t q_kernels_avx512 = {
    .vec_dot = {
        [GGML_T_Q8_0] = dot_q8_0_q8_0,
        [GGML_T_Q4_0] = dot_q4_0_q8_0,
        [GGML_T_Q4_K] = dot_q4_k_q8_k,
        [GGML_T_Q6_K] = dot_q6_k_q8_k,
    },
    .vec_dot_4x1 = {
        [GGML_T_Q8_0] = dot_q8_0_q8_0_4x1,
        [GGML_T_Q4_0] = dot_q4_0_q8_0_4x1,
    },
    .vec_dot_4x4 = {
        [GGML_T_Q8_0] = dot_q8_0_q8_0_4x4,
        [GGML_T_Q4_0] = dot_q4_0_q8_0_4x4,
    },
    .vec_dot_x4 = {
        [GGML_T_Q4_K] = dot_q4_k_q8_k_x4,
        [GGML_T_Q8_0] = dot_q8_0_q8_0_x4,
        [GGML_T_Q4_0] = dot_q4_0_q8_0_x4,
    },
};
#else
const q_kernels_t q_kernels_avx512 = {.vec_dot = {0}};
#endif
