/* CPU inference engine: transformer forward pass over a GGUF model.
 *
 * Architectures: llama (incl. Mistral-style), qwen2. Matrix types: F32, F16,
 * BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K. Weights are used straight from the GGUF
 * mapping (no copy); the KV cache is F16.
 *
 * Objects:
 * - infer_model_t: an opened, validated model. Immutable after load, so any
 *   number of contexts (and threads) may share it. Owns its gguf_t.
 * - infer_ctx_t: one sequence's state: KV cache of n_ctx positions, scratch
 *   buffers, logits of the last eval, a thread pool. Used by one thread at a
 *   time; it must be freed before its model.
 *
 * Tokenizers, chat templates and sampling live elsewhere (tokenizer.h,
 * template.h, sampler.h); they read metadata through infer_model_gguf(). */
#ifndef OX_INFERENCE_H
#define OX_INFERENCE_H

#include <stddef.h>
#include <stdint.h>

#include "inference/gguf.h"

typedef struct infer_model infer_model_t;
typedef struct infer_ctx infer_ctx_t;

typedef struct infer_model_info {
    char arch[32];          /* general.architecture: "llama", "qwen2" */
    uint32_t n_ctx_train;   /* <arch>.context_length */
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
    uint32_t head_dim;      /* key_length or n_embd / n_head */
    uint32_t n_rot;         /* rope.dimension_count or head_dim */
    float rope_base, norm_eps;
    int rope_neox;          /* 1: pairs (i, i + n_rot/2) (qwen2); 0: adjacent (llama) */
    int tied_output;        /* output matrix is token_embd */
    uint32_t file_type;     /* general.file_type, 0 when absent */
    uint64_t n_params;      /* elements of all tensors */
    uint64_t weight_bytes;  /* bytes of all tensors */
} infer_model_info_t;

/* Opens, maps and validates a GGUF model: architecture, hyper-parameters,
 * every tensor's presence, shape and type. On failure returns OX_EFORMAT /
 * OX_EUNSUPPORTED / OX_ENOTFOUND / OX_EIO / OX_ENOMEM with a message in err
 * (e.g. "unsupported tensor type Q2_K for blk.0.attn_q.weight",
 * "unsupported architecture 'phi3'") and nothing is left open. *out is owned
 * by the caller (infer_model_free). */
int infer_model_load(const char *path, infer_model_t **out, char *err, size_t errlen);
/* Same over an already opened gguf; on success the model takes ownership of g
 * (closed by infer_model_free); on failure g is left to the caller. */
int infer_model_load_gguf(gguf_t *g, infer_model_t **out, char *err, size_t errlen);
/* Frees the model and unmaps the file; all its contexts must be freed first.
 * NULL is a no-op. */
void infer_model_free(infer_model_t *m);
/* Borrowed pointers, valid until infer_model_free. */
const infer_model_info_t *infer_model_info(const infer_model_t *m);
const gguf_t *infer_model_gguf(const infer_model_t *m);

typedef struct infer_ctx_params {
    uint32_t n_ctx;    /* KV cache positions; 0: min(n_ctx_train, 4096) */
    uint32_t n_batch;  /* max tokens per internal forward step; 0: 256 */
    int n_threads;     /* 0: number of online CPUs */
    int f32_activations; /* testing: dequantize weight rows and keep activations
                            in f32 instead of 8-bit blocks (slow, exact) */
} infer_ctx_params_t;

/* Creates a context for m (kept, not copied: m must outlive it). Allocates
 * the KV cache (n_layer * n_ctx * n_head_kv * head_dim * 2 F16 values) and
 * starts n_threads - 1 workers. *out is owned by the caller (infer_ctx_free).
 * Returns 0, OX_EINVAL or OX_ENOMEM. */
int infer_ctx_create(const infer_model_t *m, const infer_ctx_params_t *p, infer_ctx_t **out);
/* Stops the workers and frees everything; NULL is a no-op. */
void infer_ctx_free(infer_ctx_t *c);
uint32_t infer_ctx_n_ctx(const infer_ctx_t *c);
int infer_ctx_threads(const infer_ctx_t *c);
/* Replaces the thread pool (n <= 0: number of CPUs). 0 or OX_ENOMEM (the old
 * pool is kept then). */
int infer_ctx_set_threads(infer_ctx_t *c, int n);

/* Evaluates n tokens at positions pos0 .. pos0+n-1, writing their keys and
 * values into the cache; attention sees cache positions 0 .. pos for each
 * token, so positions below pos0 must hold an earlier eval of the same
 * sequence (pos0 <= infer_ctx_n_past). Afterwards n_past = pos0 + n; any
 * cached positions beyond are forgotten. tokens is only read during the call.
 * all_logits: keep logits of every token (else only of the last one).
 * Returns 0; OX_EINVAL for a bad token id, pos0 > n_past, or pos0 + n > n_ctx
 * (the cache is then unchanged); OX_ENOMEM. */
int infer_eval(infer_ctx_t *c, const int32_t *tokens, int n, int pos0, int all_logits);
/* Logits (n_vocab floats) of token i of the last eval (i = -1: the last
 * token); NULL when not kept. Borrowed: valid until the next eval. */
const float *infer_logits(const infer_ctx_t *c, int i);
/* Number of positions in the cache that are valid. */
int infer_ctx_n_past(const infer_ctx_t *c);

enum { INFER_POOL_MEAN = 0, INFER_POOL_LAST = 1 };
/* Embedding of a token sequence: final-norm hidden states pooled (mean over
 * tokens or last token) and L2-normalised, into out[n_embd] (caller-owned).
 * Uses the cache from position 0 (n_past is reset; no logits computed).
 * Returns 0 or the codes of infer_eval. */
int infer_embed(infer_ctx_t *c, const int32_t *tokens, int n, int pooling, float *out);

/* Encodes n floats (n a multiple of the type's block size) as one row of a
 * GGML_T_* type (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K) into dst,
 * which holds infer_row_size(type, n) bytes (caller-owned). Plain max-abs /
 * min-max rounding, meant for synthetic and test models. 0 or OX_EINVAL. */
int infer_quantize_row(int type, const float *src, void *dst, int64_t n);
/* Bytes of such a row; 0 for an unsupported type or a bad n. */
size_t infer_row_size(int type, int64_t n);

/* Name of the kernels in use ("avx512-vnni", "avx2", "scalar"). */
const char *infer_kernels_name(void);

#endif
