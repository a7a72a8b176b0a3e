/* Traits table of tensor types: dequantizers, activation formats and the
 * per-ISA choice of dot kernels. */
#include "inference/inference.h"
#include "inference/quant.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

float q_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | man << 13;
    } else {
        bits = sign | (exp + 112) << 23 | man << 13;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t q_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf / nan */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) { /* below the smallest normal: subnormal or zero */
        if (ax < 0x33000000u)
            return (uint16_t)sign;
        uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((ax >> 13) - (112u << 10));
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
        r++;
    return (uint16_t)(sign | r);
}

float q_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t q_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

static void to_float_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void to_float_f16(const void *src, float *dst, int64_t n)
{
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = q_f16_to_f32(s[i]);
}

static void to_float_bf16(const void *src, float *dst, int64_t n)
{
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = q_bf16_to_f32(s[i]);
}

static void to_float_q8_0(const void *src, float *dst, int64_t n)
{
    const blk_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        float d = q_f16_to_f32(b[i].d);
        for (int j = 0; j < QK8_0; j++)
            dst[i * QK8_0 + j] = d * b[i].qs[j];
    }
}

static void to_float_q4_0(const void *src, float *dst, int64_t n)
{
    const blk_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        float d = q_f16_to_f32(b[i].d);
        float *y = dst + i * QK4_0;
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = d * ((b[i].qs[j] & 15) - 8);
            y[j + 16] = d * ((b[i].qs[j] >> 4) - 8);
        }
    }
}

static void to_float_q5_0(const void *src, float *dst, int64_t n)
{
    const blk_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK5_0; i++) {
        float d = q_f16_to_f32(b[i].d);
        uint32_t qh = (uint32_t)b[i].qh[0] | (uint32_t)b[i].qh[1] << 8 |
                      (uint32_t)b[i].qh[2] << 16 | (uint32_t)b[i].qh[3] << 24;
        float *y = dst + i * QK5_0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            int lo = (b[i].qs[j] & 15) | (int)((qh >> j) & 1) << 4;
            int hi = (b[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = d * (lo - 16);
            y[j + 16] = d * (hi - 16);
        }
    }
}

static void to_float_q4_k(const void *src, float *dst, int64_t n)
{
    const blk_q4_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = q_f16_to_f32(b[i].d), dmin = q_f16_to_f32(b[i].dmin);
        const uint8_t *q = b[i].qs;
        float *y = dst + i * QK_K;
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            q4k_scale_min(2 * c, b[i].scales, &sc0, &m0);
            q4k_scale_min(2 * c + 1, b[i].scales, &sc1, &m1);
            for (int l = 0; l < 32; l++) {
                y[64 * c + l] = d * sc0 * (q[32 * c + l] & 15) - dmin * m0;
                y[64 * c + 32 + l] = d * sc1 * (q[32 * c + l] >> 4) - dmin * m1;
            }
        }
    }
}

static void to_float_q6_k(const void *src, float *dst, int64_t n)
{
    const blk_q6_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        float d = q_f16_to_f32(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        float *y = dst + i * QK_K;
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

static void to_float_q8_k(const void *src, float *dst, int64_t n)
{
    const blk_q8_k *b = src;
    for (int64_t i = 0; i < n / QK_K; i++)
        for (int j = 0; j < QK_K; j++)
            dst[i * QK_K + j] = b[i].d * b[i].qs[j];
}

static void from_float_f32(const float *src, void *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}


static const q_traits_t base_traits[GGML_T_COUNT] = {
    [GGML_T_F32] = {"F32", 1, 4, to_float_f32, from_float_f32, GGML_T_F32, NULL},
    [GGML_T_F16] = {"F16", 1, 2, to_float_f16, q_quantize_row_f16, GGML_T_F32, NULL},
    [GGML_T_BF16] = {"BF16", 1, 2, to_float_bf16, q_quantize_row_bf16, GGML_T_F32, NULL},
    [GGML_T_Q8_0] = {"Q8_0", QK8_0, sizeof(blk_q8_0), to_float_q8_0, q_quantize_row_q8_0, GGML_T_Q8_0, NULL},
    [GGML_T_Q4_0] = {"Q4_0", QK4_0, sizeof(blk_q4_0), to_float_q4_0, q_quantize_row_q4_0, GGML_T_Q8_0, NULL},
    [GGML_T_Q5_0] = {"Q5_0", QK5_0, sizeof(blk_q5_0), to_float_q5_0, q_quantize_row_q5_0, GGML_T_Q8_0, NULL},
    [GGML_T_Q4_K] = {"Q4_K", QK_K, sizeof(blk_q4_k), to_float_q4_k, q_quantize_row_q4_k, GGML_T_Q8_K, NULL},
    [GGML_T_Q6_K] = {"Q6_K", QK_K, sizeof(blk_q6_k), to_float_q6_k, q_quantize_row_q6_k, GGML_T_Q8_K, NULL},
    [GGML_T_Q8_K] = {"Q8_K", QK_K, sizeof(blk_q8_k), to_float_q8_k, NULL, GGML_T_Q8_K, NULL},
};

static q_traits_t traits_isa[Q_ISA_COUNT][GGML_T_COUNT];

/* Generic x4: four calls of the single-row kernel. One instance per
 * (isa, type) so it knows which kernel to call without a lookup. */
#define GEN_X4(isa, t)                                                                   \
    static void gen_x4_##isa##_##t(int n, const void *w, const void *a, size_t st,        \
                                   float *out)                                            \
    {                                                                                    \
        q_vec_dot_fn f = traits_isa[isa][t].vec_dot;                                     \
        for (int k = 0; k < 4; k++)                                                      \
            out[k] = f(n, w, (const char *)a + (size_t)k * st);                          \
    }
#define GEN_X4_ISA(isa)                                                                  \
    GEN_X4(isa, 0) GEN_X4(isa, 1) GEN_X4(isa, 2) GEN_X4(isa, 6) GEN_X4(isa, 8)           \
    GEN_X4(isa, 12) GEN_X4(isa, 14) GEN_X4(isa, 30)
GEN_X4_ISA(0)
GEN_X4_ISA(1)
GEN_X4_ISA(2)
#define GEN_X4_ROW(isa)                                                                  \
    [0] = gen_x4_##isa##_0, [1] = gen_x4_##isa##_1, [2] = gen_x4_##isa##_2,               \
    [6] = gen_x4_##isa##_6, [8] = gen_x4_##isa##_8, [12] = gen_x4_##isa##_12,              \
    [14] = gen_x4_##isa##_14, [30] = gen_x4_##isa##_30
static const q_vec_dot_x4_fn generic_x4[Q_ISA_COUNT][GGML_T_COUNT] = {
    {GEN_X4_ROW(0)}, {GEN_X4_ROW(1)}, {GEN_X4_ROW(2)}};
static int isa_best = Q_ISA_SCALAR;
static int isa_have[Q_ISA_COUNT];
static pthread_once_t traits_once = PTHREAD_ONCE_INIT;

static const q_kernels_t *kernels_of(int isa)
{
    switch (isa) {
    case Q_ISA_AVX512: return &q_kernels_avx512;
    case Q_ISA_AVX2: return &q_kernels_avx2;
    default: return &q_kernels_scalar;
    }
}

static q_vec_dot_fn pick_dot(int isa, int type)
{
    for (int i = isa; i >= 0; i--)
        if (kernels_of(i)->vec_dot[type])
            return kernels_of(i)->vec_dot[type];
    return NULL;
}

/* x4 kernel of the same ISA as the chosen vec_dot, else a loop over it */
static q_vec_dot_x4_fn pick_dot_x4(int isa, int type)
{
    for (int i = isa; i >= 0; i--) {
        if (kernels_of(i)->vec_dot_x4[type])
            return kernels_of(i)->vec_dot_x4[type];
        if (kernels_of(i)->vec_dot[type])
            return NULL;
    }
    return NULL;
}

static q_from_float_fn pick_quant(int isa, int q8k)
{
    for (int i = isa; i >= 0; i--) {
        q_from_float_fn f = q8k ? kernels_of(i)->quantize_q8_k : kernels_of(i)->quantize_q8_0;
        if (f)
            return f;
    }
    return NULL;
}

static void on_traits_init(void)
{
    __builtin_cpu_init();
    isa_have[Q_ISA_SCALAR] = 1;
    isa_have[Q_ISA_AVX2] = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                           __builtin_cpu_supports("f16c");
    isa_have[Q_ISA_AVX512] = isa_have[Q_ISA_AVX2] && __builtin_cpu_supports("avx512f") &&
                             __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vl") &&
                             __builtin_cpu_supports("avx512dq") &&
                             __builtin_cpu_supports("avx512vnni");
    for (int isa = 0; isa < Q_ISA_COUNT; isa++) {
        if (isa_have[isa])
            isa_best = isa;
        for (int t = 0; t < GGML_T_COUNT; t++) {
            q_traits_t tr = base_traits[t];
            if (!tr.name)
                continue;
            tr.vec_dot = pick_dot(isa, t);
            tr.vec_dot_x4 = pick_dot_x4(isa, t);
            /* only from the ISA whose vec_dot was chosen */
            tr.vec_dot_4x4 = kernels_of(isa)->vec_dot[t] ? kernels_of(isa)->vec_dot_4x4[t] : NULL;
            tr.vec_dot_4x1 = kernels_of(isa)->vec_dot[t] ? kernels_of(isa)->vec_dot_4x1[t] : NULL;
            if (tr.vec_dot && !tr.vec_dot_x4)
                tr.vec_dot_x4 = generic_x4[isa][t];
            /* activation quantizers are per ISA too (they run once per matmul) */
            if (t == GGML_T_Q8_0 || t == GGML_T_Q8_K)
                tr.from_float = pick_quant(isa, t == GGML_T_Q8_K);
            traits_isa[isa][t] = tr;
        }
    }
    /* OLLAMAX_KERNELS=scalar|avx2 caps the choice (comparisons, debugging) */
    const char *cap = getenv("OLLAMAX_KERNELS");
    for (int isa = 0; cap && isa < isa_best; isa++)
        if (!strcmp(cap, q_isa_name(isa)))
            isa_best = isa;
}

const q_traits_t *q_traits_isa(int type, int isa)
{
    pthread_once(&traits_once, on_traits_init);
    if (type < 0 || type >= GGML_T_COUNT || isa < 0 || isa >= Q_ISA_COUNT || !isa_have[isa])
        return NULL;
    return traits_isa[isa][type].name ? &traits_isa[isa][type] : NULL;
}

const q_traits_t *q_traits(int type)
{
    pthread_once(&traits_once, on_traits_init);
    return q_traits_isa(type, isa_best);
}

int q_isa_best(void)
{
    pthread_once(&traits_once, on_traits_init);
    return isa_best;
}

const char *q_isa_name(int isa)
{
    switch (isa) {
    case Q_ISA_AVX512: return "avx512-vnni";
    case Q_ISA_AVX2: return "avx2";
    default: return "scalar";
    }
}

size_t q_row_size(int type, int64_t n)
{
    if (type < 0 || type >= GGML_T_COUNT || !base_traits[type].name)
        return 0;
    return (size_t)(n / base_traits[type].blck) * base_traits[type].type_size;
}

const q_attn_ops_t *q_attn_ops(int isa)
{
    pthread_once(&traits_once, on_traits_init);
    if (isa < 0 || isa >= Q_ISA_COUNT || !isa_have[isa])
        isa = Q_ISA_SCALAR;
    for (int i = isa; i >= 0; i--)
        if (kernels_of(i)->attn.dot_f16)
            return &kernels_of(i)->attn;
    return &q_kernels_scalar.attn;
}

size_t infer_row_size(int type, int64_t n)
{
    if (type < 0 || type >= GGML_T_COUNT || !base_traits[type].name || type == GGML_T_Q8_K ||
        n <= 0 || n % base_traits[type].blck)
        return 0;
    return q_row_size(type, n);
}

int infer_quantize_row(int type, const float *src, void *dst, int64_t n)
{
    if (!infer_row_size(type, n) || !base_traits[type].from_float)
        return OX_EINVAL;
    base_traits[type].from_float(src, dst, n);
    return 0;
}
