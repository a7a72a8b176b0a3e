/* Quantized tensor formats and their CPU kernels (internal to inference/).
 *
 * Block structs mirror the file layout byte for byte (static asserts below),
 * so a weight row is used straight from the GGUF mapping.
 *
 * A traits table indexed by ggml type gives, for each supported type: name,
 * block size, bytes per block, a row dequantizer, the activation format its
 * dot kernel wants (vec_dot_type) and the dot kernel. A matmul converts the
 * activations once with the from_float of vec_dot_type, then calls vec_dot per
 * weight row: no switch on type in the hot loop.
 *
 * Kernels exist per ISA (scalar reference, AVX2, AVX-512); q_traits() picks the
 * best one the CPU supports at run time (OLLAMAX_KERNELS=scalar|avx2 caps it),
 * q_traits_isa() a given one (tests). */
#ifndef OX_INFER_QUANT_H
#define OX_INFER_QUANT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "inference/gguf.h"

#define QK8_0 32
#define QK4_0 32
#define QK5_0 32
#define QK_K 256

typedef struct { uint16_t d; int8_t qs[QK8_0]; } blk_q8_0;
static_assert(sizeof(blk_q8_0) == 34, "q8_0 block size");
typedef struct { uint16_t d; uint8_t qs[QK4_0 / 2]; } blk_q4_0;
static_assert(sizeof(blk_q4_0) == 18, "q4_0 block size");
/* qh is a little-endian u32 kept as bytes so the struct has no padding */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } blk_q5_0;
static_assert(sizeof(blk_q5_0) == 22, "q5_0 block size");
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } blk_q4_k;
static_assert(sizeof(blk_q4_k) == 144, "q4_k block size");
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } blk_q6_k;
static_assert(sizeof(blk_q6_k) == 210, "q6_k block size");
/* Activation format of the K-quant kernels: f32 scale, 256 int8, and sums of
 * each 16 quants (lets kernels fold the weight minimum/offset in cheaply). */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } blk_q8_k;
static_assert(sizeof(blk_q8_k) == 292, "q8_k block size");

enum { Q_ISA_SCALAR = 0, Q_ISA_AVX2 = 1, Q_ISA_AVX512 = 2, Q_ISA_COUNT = 3 };

/* n is always a multiple of the type's block size. */
typedef void (*q_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*q_from_float_fn)(const float *src, void *dst, int64_t n);
/* dot of n values: w is a weight row, a an activation row in vec_dot_type */
typedef float (*q_vec_dot_fn)(int n, const void *w, const void *a);
/* dots of one weight row with 4 activation rows a + k*a_stride bytes (k < 4)
 * into out[4]: decodes the weights once for 4 tokens (prompt processing) */
typedef void (*q_vec_dot_x4_fn)(int n, const void *w, const void *a, size_t a_stride, float *out);
/* 4 weight rows (w + r*w_stride) x 4 activation rows into out[4*r + t] */
typedef void (*q_vec_dot_4x4_fn)(int n, const void *w, size_t w_stride, const void *a,
                                 size_t a_stride, float *out);
/* 4 weight rows x 1 activation row into out[4] (decode) */
typedef void (*q_vec_dot_4x1_fn)(int n, const void *w, size_t w_stride, const void *a, float *out);

typedef struct q_traits {
    const char *name;
    int blck;            /* values per block */
    size_t type_size;    /* bytes per block */
    q_to_float_fn to_float;
    q_from_float_fn from_float; /* reference quantizer; NULL if none */
    int vec_dot_type;    /* GGML_T_* of the activations vec_dot reads */
    q_vec_dot_fn vec_dot; /* NULL: not usable as a matrix */
    q_vec_dot_x4_fn vec_dot_x4; /* never NULL when vec_dot is set */
    q_vec_dot_4x4_fn vec_dot_4x4; /* NULL: use vec_dot_x4 per row */
    q_vec_dot_4x1_fn vec_dot_4x1; /* NULL: use vec_dot per row */
} q_traits_t;

/* Traits of a type with the best kernels for this CPU; NULL if unsupported.
 * Static storage, thread-safe. */
const q_traits_t *q_traits(int type);
/* Same for a given ISA (NULL if the CPU lacks it or the type is unsupported). */
const q_traits_t *q_traits_isa(int type, int isa);
/* Best ISA the CPU supports, and its name ("avx512-vnni", "avx2", "scalar"). */
int q_isa_best(void);
const char *q_isa_name(int isa);
/* Bytes of a row of n values of type (n a multiple of the block size). */
size_t q_row_size(int type, int64_t n);

/* Helpers on f16/bf16 (scalar, exact round-to-nearest-even). */
float q_f16_to_f32(uint16_t h);
uint16_t q_f32_to_f16(float f);
float q_bf16_to_f32(uint16_t h);
uint16_t q_f32_to_bf16(float f);

/* Attention helpers on the F16 KV cache, per ISA like the dot kernels. */
typedef struct q_attn_ops {
    float (*dot_f16)(int n, const uint16_t *k, const float *q);      /* sum k[i]*q[i] */
    void (*axpy_f16)(int n, float a, const uint16_t *v, float *y);   /* y += a*v */
    void (*f32_to_f16)(int n, const float *x, uint16_t *y);
} q_attn_ops_t;
const q_attn_ops_t *q_attn_ops(int isa);

/* Per-ISA kernel sets (kernels_*.c). Entries are NULL where the ISA has no
 * specialised body; q_traits_isa then falls back to the next lower ISA. */
typedef struct q_kernels {
    q_vec_dot_fn vec_dot[GGML_T_COUNT];
    q_vec_dot_x4_fn vec_dot_x4[GGML_T_COUNT];
    q_vec_dot_4x4_fn vec_dot_4x4[GGML_T_COUNT];
    q_vec_dot_4x1_fn vec_dot_4x1[GGML_T_COUNT];
    q_from_float_fn quantize_q8_0;
    q_from_float_fn quantize_q8_k;
    q_attn_ops_t attn;
} q_kernels_t;
extern const q_kernels_t q_kernels_scalar;
extern const q_kernels_t q_kernels_avx2;
extern const q_kernels_t q_kernels_avx512;

/* Reference quantizers of one row (quantize.c); n a multiple of the block
 * size. q8_k is the activation format of the K-quant kernels. */
void q_quantize_row_q8_0(const float *x, void *y, int64_t n);
void q_quantize_row_q4_0(const float *x, void *y, int64_t n);
void q_quantize_row_q5_0(const float *x, void *y, int64_t n);
void q_quantize_row_q4_k(const float *x, void *y, int64_t n);
void q_quantize_row_q6_k(const float *x, void *y, int64_t n);
void q_quantize_row_q8_k(const float *x, void *y, int64_t n);
void q_quantize_row_f16(const float *x, void *y, int64_t n);
void q_quantize_row_bf16(const float *x, void *y, int64_t n);

/* Q4_K 6-bit scale/min unpacking shared by kernels. */
static inline void q4k_scale_min(int j, const uint8_t *s, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

#endif
