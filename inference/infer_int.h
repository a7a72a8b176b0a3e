/* Internal structures shared by model.c and forward.c. */
#ifndef OX_INFER_INT_H
#define OX_INFER_INT_H

#include "inference/inference.h"
#include "inference/quant.h"

/* A tensor bound from the mapping: rows of ne0 values, ne1 rows. */
typedef struct infer_weight {
    const void *data; /* NULL: absent (optional tensors) */
    int type;
    int64_t ne0, ne1;
    size_t row_bytes;
    const q_traits_t *tr;
} infer_weight_t;

typedef struct infer_layer {
    infer_weight_t attn_norm, wq, wk, wv, wo, bq, bk, bv;
    infer_weight_t ffn_norm, w_gate, w_up, w_down;
} infer_layer_t;

struct infer_model {
    gguf_t *g;
    infer_model_info_t info;
    infer_weight_t tok_embd, output_norm, output, rope_freqs;
    infer_layer_t *layers;
};

#endif
