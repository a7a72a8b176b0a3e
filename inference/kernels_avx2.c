/* AVX2 + FMA + F16C kernel bodies. The target is set for this file's
 * functions only (pragma = target attribute on each function), so the rest of
 * the build stays baseline x86-64 and q_traits() picks these at run time. */
#include "inference/quant.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>

static inline float hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float f16(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* signed int8 x signed int8 -> 8 float partial sums. maddubs wants one
 * unsigned operand: move x's sign onto y. */
static inline __m256 dot_i8_ps(__m256i x, __m256i y)
{
    __m256i ax = _mm256_sign_epi8(x, x);
    __m256i sy = _mm256_sign_epi8(y, x);
    __m256i p16 = _mm256_maddubs_epi16(ax, sy);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* 16 bytes of nibbles -> 32 bytes: low nibbles first, then high nibbles */
static inline __m256i nibbles32(const uint8_t *qs)
{
    __m128i t = _mm_loadu_si128((const __m128i *)qs);
    __m256i b = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(15));
}

static float dot_q8_0_q8_0(int n, const void *w, const void *a)
{
    const blk_q8_0 *x = w, *y = a;
    int nb = n / QK8_0, i = 0;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (; i + 1 < nb; i += 2) {
        __m256 d0 = _mm256_set1_ps(f16(x[i].d) * f16(y[i].d));
        __m256 d1 = _mm256_set1_ps(f16(x[i + 1].d) * f16(y[i + 1].d));
        __m256 p0 = dot_i8_ps(_mm256_loadu_si256((const __m256i *)x[i].qs),
                              _mm256_loadu_si256((const __m256i *)y[i].qs));
        __m256 p1 = dot_i8_ps(_mm256_loadu_si256((const __m256i *)x[i + 1].qs),
                              _mm256_loadu_si256((const __m256i *)y[i + 1].qs));
        acc0 = _mm256_fmadd_ps(d0, p0, acc0);
        acc1 = _mm256_fmadd_ps(d1, p1, acc1);
    }
    for (; i < nb; i++) {
        __m256 d0 = _mm256_set1_ps(f16(x[i].d) * f16(y[i].d));
        __m256 p0 = dot_i8_ps(_mm256_loadu_si256((const __m256i *)x[i].qs),
                              _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc0 = _mm256_fmadd_ps(d0, p0, acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

static float dot_q4_0_q8_0(int n, const void *w, const void *a)
{
    const blk_q4_0 *x = w;
    const blk_q8_0 *y = a;
    int nb = n / QK4_0;
    __m256 acc = _mm256_setzero_ps();
    const __m256i eight = _mm256_set1_epi8(8);
    for (int i = 0; i < nb; i++) {
        __m256 d = _mm256_set1_ps(f16(x[i].d) * f16(y[i].d));
        __m256i qx = _mm256_sub_epi8(nibbles32(x[i].qs), eight);
        __m256 p = dot_i8_ps(qx, _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc = _mm256_fmadd_ps(d, p, acc);
    }
    return hsum_ps(acc);
}

/* 32 bits -> 32 bytes, 0xFF where the bit is set */
static inline __m256i bits32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303LL, 0x0202020202020202LL,
                                             0x0101010101010101LL, 0);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), spread);
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(b, sel), sel);
}

static float dot_q5_0_q8_0(int n, const void *w, const void *a)
{
    const blk_q5_0 *x = w;
    const blk_q8_0 *y = a;
    int nb = n / QK5_0;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++) {
        __m256 d = _mm256_set1_ps(f16(x[i].d) * f16(y[i].d));
        __m256i hi = _mm256_and_si256(bits32(x[i].qh), _mm256_set1_epi8(16));
        __m256i qx = _mm256_sub_epi8(_mm256_or_si256(nibbles32(x[i].qs), hi), _mm256_set1_epi8(16));
        __m256 p = dot_i8_ps(qx, _mm256_loadu_si256((const __m256i *)y[i].qs));
        acc = _mm256_fmadd_ps(d, p, acc);
    }
    return hsum_ps(acc);
}

/* 8 scales and 8 mins (6 bits each) of a Q4_K block, as bytes */
static inline void q4k_unpack(const uint8_t *s, uint8_t *sc, uint8_t *m)
{
    uint32_t u[3], a[2], b[2];
    memcpy(u, s, 12);
    a[0] = u[0] & 0x3f3f3f3f;
    a[1] = (u[2] & 0x0f0f0f0f) | ((u[0] >> 6) & 0x03030303) << 4;
    b[0] = u[1] & 0x3f3f3f3f;
    b[1] = ((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] >> 6) & 0x03030303) << 4;
    memcpy(sc, a, 8);
    memcpy(m, b, 8);
}

/* sum_j m[j] * (bsums[2j] + bsums[2j+1]) */
static inline __m128i q4k_mins(const uint8_t *m, const int16_t *bsums)
{
    __m128i b0 = _mm_loadu_si128((const __m128i *)bsums);
    __m128i b1 = _mm_loadu_si128((const __m128i *)(bsums + 8));
    __m128i pairs = _mm_hadd_epi16(b0, b1);
    __m128i mv = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)m));
    return _mm_madd_epi16(pairs, mv);
}

static float dot_q4_k_q8_k(int n, const void *w, const void *a)
{
    const blk_q4_k *x = w;
    const blk_q8_k *y = a;
    int nb = n / QK_K;
    __m256 acc = _mm256_setzero_ps();
    __m128 accm = _mm_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(15);
    for (int i = 0; i < nb; i++) {
        uint8_t sc[8], m[8];
        q4k_unpack(x[i].scales, sc, m);
        accm = _mm_fmadd_ps(_mm_set1_ps(y[i].d * f16(x[i].dmin)),
                            _mm_cvtepi32_ps(q4k_mins(m, y[i].bsums)), accm);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i q4 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * c));
            __m256i lo = _mm256_and_si256(q4, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), m4);
            __m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c)));
            __m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(y[i].qs + 64 * c + 32)));
            pl = _mm256_madd_epi16(pl, _mm256_set1_epi16(sc[2 * c]));
            ph = _mm256_madd_epi16(ph, _mm256_set1_epi16(sc[2 * c + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(y[i].d * f16(x[i].d)), _mm256_cvtepi32_ps(sumi), acc);
    }
    __m128 mm = _mm_add_ps(accm, _mm_movehl_ps(accm, accm));
    mm = _mm_add_ss(mm, _mm_movehdup_ps(mm));
    return hsum_ps(acc) - _mm_cvtss_f32(mm);
}

static float dot_q6_k_q8_k(int n, const void *w, const void *a)
{
    const blk_q6_k *x = w;
    const blk_q8_k *y = a;
    int nb = n / QK_K;
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    for (int i = 0; i < nb; i++) {
        float d = f16(x[i].d) * y[i].d;
        int off = 0;
        for (int g = 0; g < 16; g++)
            off += x[i].scales[g] * y[i].bsums[g];
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[i].ql + 64 * h, *qh = x[i].qh + 32 * h;
            const int8_t *q8 = y[i].qs + 128 * h, *sc = x[i].scales + 8 * h;
            __m256i b1 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i b2 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i bh = _mm256_loadu_si256((const __m256i *)qh);
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(b1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(bh, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(b2, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 6), m2), 4));
            for (int k = 0; k < 4; k++) {
                __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(q8 + 32 * k)));
                __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        acc = _mm256_add_ps(acc, _mm256_setr_ps(-32.0f * d * (float)off, 0, 0, 0, 0, 0, 0, 0));
    }
    return hsum_ps(acc);
}

static float dot_f32_f32(int n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
    }
    float s = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static float dot_f16_f32(int n, const void *w, const void *a)
{
    const uint16_t *x = w;
    const float *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8)));
        acc0 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(y + i), acc0);
        acc1 = _mm256_fmadd_ps(x1, _mm256_loadu_ps(y + i + 8), acc1);
    }
    float s = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++)
        s += f16(x[i]) * y[i];
    return s;
}

static float dot_bf16_f32(int n, const void *w, const void *a)
{
    const uint16_t *x = w;
    const float *y = a;
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
        __m256 xf = _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
        acc = _mm256_fmadd_ps(xf, _mm256_loadu_ps(y + i), acc);
    }
    float s = hsum_ps(acc);
    for (; i < n; i++)
        s += q_bf16_to_f32(x[i]) * y[i];
    return s;
}

static float attn_dot_f16(int n, const uint16_t *k, const float *q)
{
    return dot_f16_f32(n, k, q);
}

static void attn_axpy_f16(int n, float a, const uint16_t *v, float *y)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, vv, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++)
        y[i] += a * f16(v[i]);
}

static void attn_f32_to_f16(int n, const float *x, uint16_t *y)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++)
        y[i] = q_f32_to_f16(x[i]);
}

#pragma GCC pop_options

const q_kernels_t q_kernels_avx2 = {
    .vec_dot = {
        [GGML_T_F32] = dot_f32_f32,
        [GGML_T_F16] = dot_f16_f32,
        [GGML_T_BF16] = dot_bf16_f32,
        [GGML_T_Q8_0] = dot_q8_0_q8_0,
        [GGML_T_Q4_0] = dot_q4_0_q8_0,
        [GGML_T_Q5_0] = dot_q5_0_q8_0,
        [GGML_T_Q4_K] = dot_q4_k_q8_k,
        [GGML_T_Q6_K] = dot_q6_k_q8_k,
    },
    .attn = {attn_dot_f16, attn_axpy_f16, attn_f32_to_f16},
};
#else
const q_kernels_t q_kernels_avx2 = {.vec_dot = {0}};
#endif
