/* Forward pass of llama / qwen2 over a batch of tokens.
 *
 * One step (up to n_batch tokens) is one tp_run: every thread walks the same
 * sequence of ops and takes its share of each (tokens for norms and
 * activation quantization, weight rows for matmuls, (token, head) pairs for
 * attention), with a barrier wherever an op reads what others wrote. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "inference/infer_int.h"
#include "inference/threadpool.h"

/* Counter of matmul k (0..5) of layer il, or of the output (il = n_layer) */
#define W_SLOT(il, k) ((int)(il) * 6 + (k))

/* Rows of its share a thread has taken in one matmul; a cache line each so
 * the owners' counters do not bounce between cores. */
typedef struct work_ctr {
    _Alignas(64) atomic_long next;
} work_ctr_t;

/* activation buffers per vec_dot_type */
enum { ACT_Q8_0 = 0, ACT_Q8_K = 1, ACT_N = 2 };

struct infer_ctx {
    const infer_model_t *m;
    uint32_t n_ctx, n_batch;
    int n_past;
    tp_t *tp;
    const q_attn_ops_t *attn;
    q_from_float_fn quant[ACT_N];
    size_t kv_dim;
    uint16_t *kcache, *vcache; /* [layer][pos][kv_dim] F16 */
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2; /* [n_batch][...] */
    float *rope_cos, *rope_sin;                 /* [n_batch][n_rot/2] */
    float *inv_freq;                            /* [n_rot/2] */
    float *scores;                              /* [n_threads][n_ctx] */
    float *rowbuf;                              /* [n_threads][widest] */
    int scores_threads;
    int f32_act;
    size_t widest;
    q_vec_dot_fn dot_f32;
    void *act[ACT_N];
    size_t act_row[ACT_N]; /* bytes per row, sized for the widest input */
    work_ctr_t *work;      /* [n_work][work_threads] chunk counters of a step */
    size_t n_work;
    int work_threads;
    float *logits;         /* [logits_cap][n_vocab] */
    size_t logits_cap;
    int logits_n, logits_all;
};

/* One forward step, shared by all threads of the pool. */
typedef struct step {
    infer_ctx_t *c;
    const int32_t *tokens;
    int n, pos0;
    int out_from, out_n; /* tokens whose logits (or normed states) are wanted */
    float *logits;       /* out_n rows, NULL: stop after the final norm */
} step_t;

static int act_slot(int type)
{
    return type == GGML_T_Q8_0 ? ACT_Q8_0 : type == GGML_T_Q8_K ? ACT_Q8_K : -1;
}

/* Quantizes rows [0, n) of in (ncols floats each, stride ld) for every
 * activation format the given weights want. Split by rows; caller barriers. */
static void act_prepare(const step_t *s, int ith, int nth, const float *in, int ncols, int ld,
                        int n, const infer_weight_t *const *ws, int nw)
{
    infer_ctx_t *c = s->c;
    int done[ACT_N] = {0};
    long lo, hi;
    tp_split(n, ith, nth, &lo, &hi);
    for (int i = 0; i < nw && !c->f32_act; i++) {
        int slot = act_slot(ws[i]->tr->vec_dot_type);
        if (slot < 0 || done[slot])
            continue;
        done[slot] = 1;
        for (long t = lo; t < hi; t++)
            c->quant[slot](in + t * ld, (char *)c->act[slot] + t * c->act_row[slot], ncols);
    }
}

/* y[t][r] (+)= dot(w row r, x_t) for t < n and rows [lo, hi). With f32
 * activations (testing) each weight row is dequantized first. */
static void matmul_rows(const step_t *s, int ith, const infer_weight_t *w, const float *in,
                        int ld_in, int n, float *out, int ld_out, int accumulate, long lo,
                        long hi)
{
    infer_ctx_t *c = s->c;
    int slot = c->f32_act ? -1 : act_slot(w->tr->vec_dot_type);
    const char *a = slot >= 0 ? (const char *)c->act[slot] : (const char *)in;
    size_t a_row = slot >= 0 ? c->act_row[slot] : (size_t)ld_in * sizeof(float);
    q_vec_dot_fn dot = w->tr->vec_dot;
    q_vec_dot_x4_fn dot4 = w->tr->vec_dot_x4;
    q_vec_dot_4x4_fn dot44 = w->tr->vec_dot_4x4;
    q_vec_dot_4x1_fn dot41 = w->tr->vec_dot_4x1;
    const char *wd = w->data;
    int ne0 = (int)w->ne0;
    float *rowbuf = c->f32_act ? c->rowbuf + (size_t)ith * c->widest : NULL;
    if (rowbuf) {
        a = (const char *)in;
        a_row = (size_t)ld_in * sizeof(float);
        dot = c->dot_f32;
    }
    /* Rows in blocks that stay in L2 while every group of 4 tokens passes
     * over them: weights come from memory once, activations from cache. */
    long rblk = (long)(96 * 1024 / (w->row_bytes ? w->row_bytes : 1));
    rblk = rblk < 4 ? 4 : rblk > 64 ? 64 : rblk & ~3L;
    for (long r0 = lo; r0 < hi; r0 += rblk) {
        long r1 = r0 + rblk < hi ? r0 + rblk : hi;
        int t = 0;
        for (; !rowbuf && t + 4 <= n; t += 4) {
            long r = r0;
            for (; dot44 && r + 4 <= r1; r += 4) {
                float v[16];
                dot44(ne0, wd + (size_t)r * w->row_bytes, w->row_bytes, a + (size_t)t * a_row,
                      a_row, v);
                for (int i = 0; i < 4; i++)
                    for (int k = 0; k < 4; k++) {
                        float *o = &out[(size_t)(t + k) * ld_out + r + i];
                        *o = accumulate ? *o + v[4 * i + k] : v[4 * i + k];
                    }
            }
            for (; r < r1; r++) {
                float v[4];
                dot4(ne0, wd + (size_t)r * w->row_bytes, a + (size_t)t * a_row, a_row, v);
                for (int k = 0; k < 4; k++) {
                    if (accumulate)
                        out[(size_t)(t + k) * ld_out + r] += v[k];
                    else
                        out[(size_t)(t + k) * ld_out + r] = v[k];
                }
            }
        }
        long r = r0;
        for (; dot41 && !rowbuf && t < n && r + 4 <= r1; r += 4) {
            for (int tt = t; tt < n; tt++) {
                float v[4];
                dot41(ne0, wd + (size_t)r * w->row_bytes, w->row_bytes, a + (size_t)tt * a_row, v);
                for (int i = 0; i < 4; i++) {
                    float *o = &out[(size_t)tt * ld_out + r + i];
                    *o = accumulate ? *o + v[i] : v[i];
                }
            }
        }
        for (; r < r1; r++) {
            const void *row = wd + (size_t)r * w->row_bytes;
            if (rowbuf) {
                w->tr->to_float(row, rowbuf, ne0);
                row = rowbuf;
            }
            for (int tt = t; tt < n; tt++) {
                float v = dot(ne0, row, a + (size_t)tt * a_row);
                if (accumulate)
                    out[(size_t)tt * ld_out + r] += v;
                else
                    out[(size_t)tt * ld_out + r] = v;
            }
        }
    }
}

/* Rows of a matmul: each thread owns a contiguous share (one long stream of
 * weights, which the prefetchers follow best) and takes it in chunks from
 * its own counter; a thread that runs out then takes the remaining chunks
 * of the others. On a shared machine one thread is often descheduled for a
 * while: the other then finishes its share instead of waiting at the next
 * barrier. Shares and chunks are multiples of 4 rows, so the 4-row kernels
 * cover every row. */
#define CHUNK_ROWS 64

typedef struct chunk_iter {
    long rows;
    int victim, tried; /* share being taken, shares visited so far */
} chunk_iter_t;

/* Next chunk [*lo, *hi) of counter slot k for thread ith; 0: none left. */
static int chunk_next(const step_t *s, int ith, int nth, int k, chunk_iter_t *it, long *lo,
                      long *hi)
{
    while (it->tried < nth) {
        int v = (ith + it->victim) % nth;
        long a, b;
        tp_split(it->rows / 4, v, nth, &a, &b);
        a *= 4;
        b = b * 4 + (v == nth - 1 ? it->rows % 4 : 0);
        work_ctr_t *w = &s->c->work[(size_t)k * (size_t)s->c->work_threads + (size_t)v];
        long r0 = a + (nth == 1 ? 0 : atomic_fetch_add_explicit(&w->next, CHUNK_ROWS,
                                                                  memory_order_relaxed));
        if (nth == 1) { /* one thread: its whole share at once, no atomics */
            it->tried = 1;
            *lo = a;
            *hi = b;
            return a < b;
        }
        if (r0 < b) {
            *lo = r0;
            *hi = r0 + CHUNK_ROWS < b ? r0 + CHUNK_ROWS : b;
            return 1;
        }
        it->victim++;
        it->tried++;
    }
    return 0;
}

/* matmul over all rows of w, shared among the threads through counter k */
static void matmul(const step_t *s, int ith, int nth, int k, const infer_weight_t *w,
                   const float *in, int ld_in, int n, float *out, int ld_out, int accumulate)
{
    chunk_iter_t it = {.rows = w->ne1};
    long lo, hi;
    while (chunk_next(s, ith, nth, k, &it, &lo, &hi))
        matmul_rows(s, ith, w, in, ld_in, n, out, ld_out, accumulate, lo, hi);
}

static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

static void norm_rows(const step_t *s, int ith, int nth, const infer_weight_t *w, int from, int n)
{
    infer_ctx_t *c = s->c;
    const infer_model_info_t *hp = &c->m->info;
    long lo, hi;
    tp_split(n, ith, nth, &lo, &hi);
    for (long t = lo; t < hi; t++)
        rmsnorm(c->xb + (size_t)t * hp->n_embd, c->x + (size_t)(from + t) * hp->n_embd,
                w->data, (int)hp->n_embd, hp->norm_eps);
}

static void rope(float *v, int n_heads, int head_dim, int n_rot, int neox, const float *cs,
                 const float *sn)
{
    int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *x = v + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
            float x0 = x[a], x1 = x[b];
            x[a] = x0 * cs[i] - x1 * sn[i];
            x[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

static void attention(const step_t *s, int ith, int nth, int il)
{
    infer_ctx_t *c = s->c;
    const infer_model_info_t *hp = &c->m->info;
    int hd = (int)hp->head_dim, nh = (int)hp->n_head, group = (int)(hp->n_head / hp->n_head_kv);
    size_t qd = (size_t)nh * hd;
    float scale = 1.0f / sqrtf((float)hd);
    const uint16_t *kc = c->kcache + (size_t)il * c->n_ctx * c->kv_dim;
    const uint16_t *vc = c->vcache + (size_t)il * c->n_ctx * c->kv_dim;
    float *sc = c->scores + (size_t)ith * c->n_ctx;
    long lo, hi;
    tp_split((long)s->n * nh, ith, nth, &lo, &hi);
    for (long it = lo; it < hi; it++) {
        int t = (int)(it / nh), h = (int)(it % nh), kvh = h / group;
        int pos = s->pos0 + t;
        const float *q = c->q + t * qd + (size_t)h * hd;
        float mx = -INFINITY;
        for (int p = 0; p <= pos; p++) {
            sc[p] = c->attn->dot_f16(hd, kc + (size_t)p * c->kv_dim + (size_t)kvh * hd, q) * scale;
            if (sc[p] > mx)
                mx = sc[p];
        }
        float sum = 0;
        for (int p = 0; p <= pos; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += sc[p];
        }
        float inv = 1.0f / sum;
        float *o = c->att + t * qd + (size_t)h * hd;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int p = 0; p <= pos; p++)
            c->attn->axpy_f16(hd, sc[p] * inv, vc + (size_t)p * c->kv_dim + (size_t)kvh * hd, o);
    }
}

static inline float silu(float x)
{
    return x / (1.0f + expf(-x));
}

static void on_step(void *arg, int ith, int nth)
{
    const step_t *s = arg;
    infer_ctx_t *c = s->c;
    const infer_model_t *m = c->m;
    const infer_model_info_t *hp = &m->info;
    int n = s->n, E = (int)hp->n_embd, F = (int)hp->n_ff, hd = (int)hp->head_dim;
    int QD = (int)hp->n_head * hd, KD = (int)c->kv_dim, half = (int)hp->n_rot / 2;
    long lo, hi;

    /* embeddings and this step's rope angles, split by token */
    tp_split(n, ith, nth, &lo, &hi);
    for (long t = lo; t < hi; t++) {
        const infer_weight_t *te = &m->tok_embd;
        te->tr->to_float((const char *)te->data + (size_t)s->tokens[t] * te->row_bytes,
                         c->x + (size_t)t * E, E);
        double pos = s->pos0 + t;
        for (int i = 0; i < half; i++) {
            double th = pos * c->inv_freq[i];
            c->rope_cos[t * half + i] = (float)cos(th);
            c->rope_sin[t * half + i] = (float)sin(th);
        }
    }
    tp_barrier(c->tp);

    for (int il = 0; il < (int)hp->n_layer; il++) {
        const infer_layer_t *L = &m->layers[il];
        /* norm and quantization split tokens the same way: no barrier */
        norm_rows(s, ith, nth, &L->attn_norm, 0, n);
        const infer_weight_t *qkv[3] = {&L->wq, &L->wk, &L->wv};
        act_prepare(s, ith, nth, c->xb, E, E, n, qkv, 3);
        tp_barrier(c->tp);
        matmul(s, ith, nth, W_SLOT(il, 0), &L->wq, c->xb, E, n, c->q, QD, 0);
        matmul(s, ith, nth, W_SLOT(il, 1), &L->wk, c->xb, E, n, c->k, KD, 0);
        matmul(s, ith, nth, W_SLOT(il, 2), &L->wv, c->xb, E, n, c->v, KD, 0);
        tp_barrier(c->tp);

        /* biases, rope, and K/V into the cache, split by token */
        tp_split(n, ith, nth, &lo, &hi);
        for (long t = lo; t < hi; t++) {
            float *q = c->q + t * QD, *k = c->k + t * KD, *v = c->v + t * KD;
            if (L->bq.data) {
                const float *bq = L->bq.data, *bk = L->bk.data, *bv = L->bv.data;
                for (int i = 0; i < QD; i++)
                    q[i] += bq[i];
                for (int i = 0; i < KD; i++) {
                    k[i] += bk[i];
                    v[i] += bv[i];
                }
            }
            const float *cs = c->rope_cos + t * half, *sn = c->rope_sin + t * half;
            rope(q, (int)hp->n_head, hd, (int)hp->n_rot, hp->rope_neox, cs, sn);
            rope(k, (int)hp->n_head_kv, hd, (int)hp->n_rot, hp->rope_neox, cs, sn);
            size_t off = ((size_t)il * c->n_ctx + (size_t)(s->pos0 + t)) * c->kv_dim;
            c->attn->f32_to_f16(KD, k, c->kcache + off);
            c->attn->f32_to_f16(KD, v, c->vcache + off);
        }
        tp_barrier(c->tp);
        attention(s, ith, nth, il);
        tp_barrier(c->tp);
        const infer_weight_t *wo[1] = {&L->wo};
        act_prepare(s, ith, nth, c->att, QD, QD, n, wo, 1);
        tp_barrier(c->tp);
        matmul(s, ith, nth, W_SLOT(il, 3), &L->wo, c->att, QD, n, c->x, E, 1);
        tp_barrier(c->tp);

        norm_rows(s, ith, nth, &L->ffn_norm, 0, n);
        const infer_weight_t *gu[2] = {&L->w_gate, &L->w_up};
        act_prepare(s, ith, nth, c->xb, E, E, n, gu, 2);
        tp_barrier(c->tp);
        /* gate and up take the same chunks, so each thread combines its rows */
        {
            chunk_iter_t it = {.rows = F};
            long r0, r1;
            while (chunk_next(s, ith, nth, W_SLOT(il, 4), &it, &r0, &r1)) {
                matmul_rows(s, ith, &L->w_gate, c->xb, E, n, c->hb, F, 0, r0, r1);
                matmul_rows(s, ith, &L->w_up, c->xb, E, n, c->hb2, F, 0, r0, r1);
                for (int t = 0; t < n; t++)
                    for (long r = r0; r < r1; r++)
                        c->hb[(size_t)t * F + r] =
                            silu(c->hb[(size_t)t * F + r]) * c->hb2[(size_t)t * F + r];
            }
        }
        tp_barrier(c->tp);
        const infer_weight_t *dn[1] = {&L->w_down};
        act_prepare(s, ith, nth, c->hb, F, F, n, dn, 1);
        tp_barrier(c->tp);
        matmul(s, ith, nth, W_SLOT(il, 5), &L->w_down, c->hb, F, n, c->x, E, 1);
        tp_barrier(c->tp);
    }

    if (s->out_n <= 0)
        return;
    norm_rows(s, ith, nth, &m->output_norm, s->out_from, s->out_n);
    if (!s->logits)
        return;
    const infer_weight_t *ow[1] = {&m->output};
    act_prepare(s, ith, nth, c->xb, E, E, s->out_n, ow, 1);
    tp_barrier(c->tp);
    matmul(s, ith, nth, W_SLOT(hp->n_layer, 0), &m->output, c->xb, E, s->out_n, s->logits,
           (int)hp->n_vocab, 0);
}

static void ctx_free_buffers(infer_ctx_t *c)
{
    free(c->kcache);
    free(c->vcache);
    free(c->x);
    free(c->xb);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->att);
    free(c->hb);
    free(c->hb2);
    free(c->rope_cos);
    free(c->rope_sin);
    free(c->inv_freq);
    free(c->scores);
    free(c->rowbuf);
    for (int i = 0; i < ACT_N; i++)
        free(c->act[i]);
    free(c->logits);
    free(c->work);
}

/* Zeroes the row counters before a step; tp_run's start publishes them. */
static void work_reset(infer_ctx_t *c)
{
    for (size_t i = 0; i < c->n_work * (size_t)c->work_threads; i++)
        atomic_store_explicit(&c->work[i].next, 0, memory_order_relaxed);
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

int infer_ctx_set_threads(infer_ctx_t *c, int n)
{
    if (n <= 0)
        n = default_threads();
    if (n > 1024)
        return OX_EINVAL;
    float *scores = NULL, *rowbuf = NULL;
    work_ctr_t *work = NULL;
    if (n > c->scores_threads) {
        scores = calloc((size_t)n * c->n_ctx, sizeof(float));
        rowbuf = c->f32_act ? malloc((size_t)n * c->widest * sizeof(float)) : NULL;
        work = aligned_alloc(_Alignof(work_ctr_t), c->n_work * (size_t)n * sizeof *work);
        if (!scores || (c->f32_act && !rowbuf) || !work) {
            free(scores);
            free(rowbuf);
            free(work);
            return OX_ENOMEM;
        }
    }
    tp_t *tp = NULL;
    int rc = tp_create(n, &tp);
    if (rc < 0) {
        free(scores);
        free(rowbuf);
        free(work);
        return rc;
    }
    tp_free(c->tp);
    c->tp = tp;
    if (scores) {
        free(c->scores);
        free(c->rowbuf);
        free(c->work);
        c->scores = scores;
        c->rowbuf = rowbuf;
        c->work = work;
        c->work_threads = n;
        c->scores_threads = n;
    }
    return 0;
}

int infer_ctx_create(const infer_model_t *m, const infer_ctx_params_t *p, infer_ctx_t **out)
{
    const infer_model_info_t *hp = &m->info;
    infer_ctx_params_t d = {0};
    if (!p)
        p = &d;
    uint32_t n_ctx = p->n_ctx ? p->n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    uint32_t n_batch = p->n_batch ? p->n_batch : 256;
    if (n_ctx > (1u << 20) || n_batch > 4096)
        return OX_EINVAL;
    if (n_batch > n_ctx)
        n_batch = n_ctx;
    infer_ctx_t *c = calloc(1, sizeof *c);
    if (!c)
        return OX_ENOMEM;
    c->m = m;
    c->n_ctx = n_ctx;
    c->n_batch = n_batch;
    c->attn = q_attn_ops(q_isa_best());
    c->quant[ACT_Q8_0] = q_traits(GGML_T_Q8_0)->from_float;
    c->quant[ACT_Q8_K] = q_traits(GGML_T_Q8_K)->from_float;
    c->kv_dim = (size_t)hp->n_head_kv * hp->head_dim;
    size_t E = hp->n_embd, QD = (size_t)hp->n_head * hp->head_dim, F = hp->n_ff, B = n_batch;
    size_t kv = (size_t)hp->n_layer * n_ctx * c->kv_dim, half = hp->n_rot / 2;
    size_t widest = E > F ? E : F;
    if (QD > widest)
        widest = QD;
    widest = (widest + QK_K - 1) / QK_K * QK_K;
    c->widest = widest;
    c->f32_act = p->f32_activations != 0;
    c->dot_f32 = q_traits(GGML_T_F32)->vec_dot;
    c->act_row[ACT_Q8_0] = q_row_size(GGML_T_Q8_0, (int64_t)widest);
    c->act_row[ACT_Q8_K] = q_row_size(GGML_T_Q8_K, (int64_t)widest);
    c->kcache = malloc(kv * sizeof(uint16_t));
    c->vcache = malloc(kv * sizeof(uint16_t));
    c->x = malloc(B * E * sizeof(float));
    c->xb = malloc(B * E * sizeof(float));
    c->q = malloc(B * QD * sizeof(float));
    c->k = malloc(B * c->kv_dim * sizeof(float));
    c->v = malloc(B * c->kv_dim * sizeof(float));
    c->att = malloc(B * QD * sizeof(float));
    c->hb = malloc(B * F * sizeof(float));
    c->hb2 = malloc(B * F * sizeof(float));
    c->rope_cos = malloc(B * half * sizeof(float) + 1);
    c->rope_sin = malloc(B * half * sizeof(float) + 1);
    c->inv_freq = malloc(half * sizeof(float) + 1);
    for (int i = 0; i < ACT_N; i++)
        c->act[i] = malloc(B * c->act_row[i]);
    c->n_work = (size_t)W_SLOT(hp->n_layer + 1, 0);
    int rc = OX_ENOMEM;
    if (!c->kcache || !c->vcache || !c->x || !c->xb || !c->q || !c->k || !c->v || !c->att ||
        !c->hb || !c->hb2 || !c->rope_cos || !c->rope_sin || !c->inv_freq || !c->act[0] ||
        !c->act[1])
        goto fail;
    const float *ff = m->rope_freqs.data;
    for (size_t i = 0; i < half; i++) {
        double f = pow((double)hp->rope_base, -2.0 * (double)i / hp->n_rot);
        c->inv_freq[i] = (float)(ff ? f / ff[i] : f);
    }
    if ((rc = infer_ctx_set_threads(c, p->n_threads)) < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    ctx_free_buffers(c);
    free(c);
    return rc;
}

void infer_ctx_free(infer_ctx_t *c)
{
    if (!c)
        return;
    tp_free(c->tp);
    ctx_free_buffers(c);
    free(c);
}

uint32_t infer_ctx_n_ctx(const infer_ctx_t *c)
{
    return c->n_ctx;
}

int infer_ctx_threads(const infer_ctx_t *c)
{
    return tp_size(c->tp);
}

int infer_ctx_n_past(const infer_ctx_t *c)
{
    return c->n_past;
}

static int check_batch(const infer_ctx_t *c, const int32_t *tokens, int n, int pos0)
{
    if (n <= 0 || !tokens || pos0 < 0 || pos0 > c->n_past || (int64_t)pos0 + n > c->n_ctx)
        return OX_EINVAL;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= c->m->info.n_vocab)
            return OX_EINVAL;
    return 0;
}

int infer_eval(infer_ctx_t *c, const int32_t *tokens, int n, int pos0, int all_logits)
{
    int rc = check_batch(c, tokens, n, pos0);
    if (rc < 0)
        return rc;
    size_t V = c->m->info.n_vocab, need = all_logits ? (size_t)n : 1;
    if (need > c->logits_cap) {
        float *l = realloc(c->logits, need * V * sizeof(float));
        if (!l)
            return OX_ENOMEM;
        c->logits = l;
        c->logits_cap = need;
    }
    c->logits_n = 0;
    c->n_past = pos0; /* positions beyond are overwritten from here */
    for (int done = 0; done < n;) {
        int b = n - done < (int)c->n_batch ? n - done : (int)c->n_batch;
        int last = done + b == n;
        step_t s = {.c = c, .tokens = tokens + done, .n = b, .pos0 = pos0 + done};
        if (all_logits) {
            s.out_from = 0;
            s.out_n = b;
            s.logits = c->logits + (size_t)done * V;
        } else if (last) {
            s.out_from = b - 1;
            s.out_n = 1;
            s.logits = c->logits;
        }
        work_reset(c);
        tp_run(c->tp, on_step, &s);
        done += b;
        c->n_past = pos0 + done;
    }
    c->logits_n = (int)need;
    c->logits_all = all_logits;
    return 0;
}

const float *infer_logits(const infer_ctx_t *c, int i)
{
    if (c->logits_n == 0)
        return NULL;
    if (i < 0)
        i = c->logits_n - 1;
    if (i >= c->logits_n)
        return NULL;
    return c->logits + (size_t)i * c->m->info.n_vocab;
}

int infer_embed(infer_ctx_t *c, const int32_t *tokens, int n, int pooling, float *out)
{
    c->n_past = 0;
    c->logits_n = 0;
    int rc = check_batch(c, tokens, n, 0);
    if (rc < 0)
        return rc;
    size_t E = c->m->info.n_embd;
    double *acc = calloc(E, sizeof(double));
    if (!acc)
        return OX_ENOMEM;
    for (int done = 0; done < n;) {
        int b = n - done < (int)c->n_batch ? n - done : (int)c->n_batch;
        int last = done + b == n;
        step_t s = {.c = c, .tokens = tokens + done, .n = b, .pos0 = done};
        if (pooling == INFER_POOL_LAST) {
            s.out_from = last ? b - 1 : 0;
            s.out_n = last ? 1 : 0;
        } else {
            s.out_n = b;
        }
        work_reset(c);
        tp_run(c->tp, on_step, &s);
        for (int t = 0; t < s.out_n; t++)
            for (size_t i = 0; i < E; i++)
                acc[i] += c->xb[(size_t)t * E + i];
        done += b;
        c->n_past = done;
    }
    double norm = 0;
    for (size_t i = 0; i < E; i++)
        norm += acc[i] * acc[i];
    norm = sqrt(norm);
    for (size_t i = 0; i < E; i++)
        out[i] = norm > 0 ? (float)(acc[i] / norm) : 0.0f;
    free(acc);
    return 0;
}
