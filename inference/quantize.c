/* Reference quantizers (float rows to block bytes). Used for activations by
 * the scalar path, for the synthetic benchmark model and by tests. Simple
 * max-abs / min-max rounding: good enough for activations and random weights;
 * converting real checkpoints is not a goal. */
#include "inference/quant.h"

#include <math.h>
#include <string.h>


static int nearest(float f)
{
    return (int)lrintf(f);
}

void q_quantize_row_q8_0(const float *x, void *y, int64_t n)
{
    blk_q8_0 *b = y;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float amax = 0;
        for (int j = 0; j < QK8_0; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        b[i].d = q_f32_to_f16(d);
        for (int j = 0; j < QK8_0; j++)
            b[i].qs[j] = (int8_t)nearest(x[j] * id);
    }
}

/* signed max-magnitude value of a block: maps to the most negative code so
 * the full code range is used */
static float signed_max(const float *x, int n)
{
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}

void q_quantize_row_q4_0(const float *x, void *y, int64_t n)
{
    blk_q4_0 *b = y;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        float d = signed_max(x, QK4_0) / -8.0f, id = d ? 1.0f / d : 0.0f;
        b[i].d = q_f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            int lo = (int)fminf(15.0f, fmaxf(0.0f, floorf(x[j] * id + 8.5f)));
            int hi = (int)fminf(15.0f, fmaxf(0.0f, floorf(x[j + 16] * id + 8.5f)));
            b[i].qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}

void q_quantize_row_q5_0(const float *x, void *y, int64_t n)
{
    blk_q5_0 *b = y;
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        float d = signed_max(x, QK5_0) / -16.0f, id = d ? 1.0f / d : 0.0f;
        b[i].d = q_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            int lo = (int)fminf(31.0f, fmaxf(0.0f, floorf(x[j] * id + 16.5f)));
            int hi = (int)fminf(31.0f, fmaxf(0.0f, floorf(x[j + 16] * id + 16.5f)));
            b[i].qs[j] = (uint8_t)((lo & 15) | (hi & 15) << 4);
            qh |= (uint32_t)(lo >> 4) << j | (uint32_t)(hi >> 4) << (j + 16);
        }
        for (int k = 0; k < 4; k++)
            b[i].qh[k] = (uint8_t)(qh >> (8 * k));
    }
}

void q_quantize_row_q4_k(const float *x, void *y, int64_t n)
{
    blk_q4_k *b = y;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float scale[8], minv[8], max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            float lo = 0, hi = -INFINITY; /* min clamped to <= 0: m stays >= 0 */
            for (int l = 0; l < 32; l++) {
                lo = fminf(lo, x[32 * j + l]);
                hi = fmaxf(hi, x[32 * j + l]);
            }
            scale[j] = (hi - lo) / 15.0f;
            minv[j] = -lo;
            max_scale = fmaxf(max_scale, scale[j]);
            max_min = fmaxf(max_min, minv[j]);
        }
        float d = max_scale / 63.0f, dmin = max_min / 63.0f;
        uint8_t ls[8], lm[8];
        for (int j = 0; j < 8; j++) {
            ls[j] = (uint8_t)(d ? fminf(63.0f, (float)nearest(scale[j] / d)) : 0);
            lm[j] = (uint8_t)(dmin ? fminf(63.0f, (float)nearest(minv[j] / dmin)) : 0);
        }
        memset(b[i].scales, 0, sizeof b[i].scales);
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                b[i].scales[j] = ls[j];
                b[i].scales[j + 4] = lm[j];
            } else {
                b[i].scales[j + 4] = (uint8_t)((ls[j] & 15) | (lm[j] & 15) << 4);
                b[i].scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
                b[i].scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
            }
        }
        b[i].d = q_f32_to_f16(d);
        b[i].dmin = q_f32_to_f16(dmin);
        /* quantize against the scales as stored (rounded to f16) */
        float df = q_f16_to_f32(b[i].d), dminf = q_f16_to_f32(b[i].dmin);
        uint8_t q[QK_K];
        for (int j = 0; j < 8; j++) {
            float s = df * ls[j], m = dminf * lm[j];
            for (int l = 0; l < 32; l++) {
                int v = s ? nearest((x[32 * j + l] + m) / s) : 0;
                q[32 * j + l] = (uint8_t)(v < 0 ? 0 : v > 15 ? 15 : v);
            }
        }
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                b[i].qs[32 * c + l] = (uint8_t)(q[64 * c + l] | q[64 * c + 32 + l] << 4);
    }
}

void q_quantize_row_q6_k(const float *x, void *y, int64_t n)
{
    blk_q6_k *b = y;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float scale[16], max_scale = 0;
        for (int g = 0; g < 16; g++) {
            float amax = 0;
            for (int l = 0; l < 16; l++)
                amax = fmaxf(amax, fabsf(x[16 * g + l]));
            scale[g] = amax / 31.0f;
            max_scale = fmaxf(max_scale, scale[g]);
        }
        float d = max_scale / 127.0f;
        b[i].d = q_f32_to_f16(d);
        float df = q_f16_to_f32(b[i].d);
        uint8_t q[QK_K];
        for (int g = 0; g < 16; g++) {
            int ls = df ? nearest(scale[g] / df) : 0;
            if (ls > 127)
                ls = 127;
            b[i].scales[g] = (int8_t)ls;
            float s = df * ls;
            for (int l = 0; l < 16; l++) {
                int v = s ? nearest(x[16 * g + l] / s) : 0;
                v = v < -32 ? -32 : v > 31 ? 31 : v;
                q[16 * g + l] = (uint8_t)(v + 32);
            }
        }
        for (int h = 0; h < 2; h++) {
            const uint8_t *L = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                int q1 = L[l], q2 = L[l + 32], q3 = L[l + 64], q4 = L[l + 96];
                b[i].ql[64 * h + l] = (uint8_t)((q1 & 15) | (q3 & 15) << 4);
                b[i].ql[64 * h + l + 32] = (uint8_t)((q2 & 15) | (q4 & 15) << 4);
                b[i].qh[32 * h + l] =
                    (uint8_t)((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
            }
        }
    }
}

void q_quantize_row_q8_k(const float *x, void *y, int64_t n)
{
    blk_q8_k *b = y;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax = 0;
        for (int j = 0; j < QK_K; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        b[i].d = d;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) {
                int v = nearest(x[16 * g + l] * id);
                b[i].qs[16 * g + l] = (int8_t)v;
                s += v;
            }
            b[i].bsums[g] = (int16_t)s;
        }
    }
}

void q_quantize_row_f16(const float *x, void *y, int64_t n)
{
    uint16_t *h = y;
    for (int64_t i = 0; i < n; i++)
        h[i] = q_f32_to_f16(x[i]);
}

void q_quantize_row_bf16(const float *x, void *y, int64_t n)
{
    uint16_t *h = y;
    for (int64_t i = 0; i < n; i++)
        h[i] = q_f32_to_bf16(x[i]);
}
