/* Portable reference kernels: the definition every ISA body is tested
 * against. Integer sums are exact; only the final scaling is float. */
#include "inference/quant.h"

static float dot_q8_0_q8_0(int n, const void *w, const void *a)
{
    const blk_q8_0 *x = w, *y = a;
    float s = 0;
    for (int i = 0; i < n / QK8_0; i++) {
        int sum = 0;
        for (int j = 0; j < QK8_0; j++)
            sum += x[i].qs[j] * y[i].qs[j];
        s += (float)sum * q_f16_to_f32(x[i].d) * q_f16_to_f32(y[i].d);
    }
    return s;
}

static float dot_q4_0_q8_0(int n, const void *w, const void *a)
{
    const blk_q4_0 *x = w;
    const blk_q8_0 *y = a;
    float s = 0;
    for (int i = 0; i < n / QK4_0; i++) {
        int sum = 0;
        for (int j = 0; j < 16; j++)
            sum += ((x[i].qs[j] & 15) - 8) * y[i].qs[j] + ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + 16];
        s += (float)sum * q_f16_to_f32(x[i].d) * q_f16_to_f32(y[i].d);
    }
    return s;
}

static float dot_q5_0_q8_0(int n, const void *w, const void *a)
{
    const blk_q5_0 *x = w;
    const blk_q8_0 *y = a;
    float s = 0;
    for (int i = 0; i < n / QK5_0; i++) {
        uint32_t qh = (uint32_t)x[i].qh[0] | (uint32_t)x[i].qh[1] << 8 |
                      (uint32_t)x[i].qh[2] << 16 | (uint32_t)x[i].qh[3] << 24;
        int sum = 0;
        for (int j = 0; j < 16; j++) {
            int lo = ((x[i].qs[j] & 15) | (int)((qh >> j) & 1) << 4) - 16;
            int hi = ((x[i].qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4) - 16;
            sum += lo * y[i].qs[j] + hi * y[i].qs[j + 16];
        }
        s += (float)sum * q_f16_to_f32(x[i].d) * q_f16_to_f32(y[i].d);
    }
    return s;
}

static float dot_q4_k_q8_k(int n, const void *w, const void *a)
{
    const blk_q4_k *x = w;
    const blk_q8_k *y = a;
    float s = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++) {
            uint8_t sc0, m0, sc1, m1;
            q4k_scale_min(2 * c, x[i].scales, &sc0, &m0);
            q4k_scale_min(2 * c + 1, x[i].scales, &sc1, &m1);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += (x[i].qs[32 * c + l] & 15) * y[i].qs[64 * c + l];
                s1 += (x[i].qs[32 * c + l] >> 4) * y[i].qs[64 * c + 32 + l];
            }
            sumi += sc0 * s0 + sc1 * s1;
            summ += m0 * (y[i].bsums[4 * c] + y[i].bsums[4 * c + 1]) +
                    m1 * (y[i].bsums[4 * c + 2] + y[i].bsums[4 * c + 3]);
        }
        s += y[i].d * (q_f16_to_f32(x[i].d) * (float)sumi - q_f16_to_f32(x[i].dmin) * (float)summ);
    }
    return s;
}

static float dot_q6_k_q8_k(int n, const void *w, const void *a)
{
    const blk_q6_k *x = w;
    const blk_q8_k *y = a;
    float s = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *ql = x[i].ql, *qh = x[i].qh;
        const int8_t *q8 = y[i].qs;
        int sumi = 0;
        for (int h = 0; h < 2; h++) {
            const int8_t *sc = x[i].scales + 8 * h;
            int g[8] = {0};
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                g[is] += q1 * q8[l];
                g[is + 2] += q2 * q8[l + 32];
                g[is + 4] += q3 * q8[l + 64];
                g[is + 6] += q4 * q8[l + 96];
            }
            for (int k = 0; k < 8; k++)
                sumi += sc[k] * g[k];
            ql += 64;
            qh += 32;
            q8 += 128;
        }
        s += q_f16_to_f32(x[i].d) * y[i].d * (float)sumi;
    }
    return s;
}

static float dot_f32_f32(int n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    float s = 0;
    for (int i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static float dot_f16_f32(int n, const void *w, const void *a)
{
    const uint16_t *x = w;
    const float *y = a;
    float s = 0;
    for (int i = 0; i < n; i++)
        s += q_f16_to_f32(x[i]) * y[i];
    return s;
}

static float dot_bf16_f32(int n, const void *w, const void *a)
{
    const uint16_t *x = w;
    const float *y = a;
    float s = 0;
    for (int i = 0; i < n; i++)
        s += q_bf16_to_f32(x[i]) * y[i];
    return s;
}

static float attn_dot_f16(int n, const uint16_t *k, const float *q)
{
    return dot_f16_f32(n, k, q);
}

static void attn_axpy_f16(int n, float a, const uint16_t *v, float *y)
{
    for (int i = 0; i < n; i++)
        y[i] += a * q_f16_to_f32(v[i]);
}

static void attn_f32_to_f16(int n, const float *x, uint16_t *y)
{
    for (int i = 0; i < n; i++)
        y[i] = q_f32_to_f16(x[i]);
}

const q_kernels_t q_kernels_scalar = {
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
    .quantize_q8_0 = q_quantize_row_q8_0,
    .quantize_q8_k = q_quantize_row_q8_k,
    .attn = {attn_dot_f16, attn_axpy_f16, attn_f32_to_f16},
};
