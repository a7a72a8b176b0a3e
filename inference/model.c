/* Model loading: hyper-parameters from GGUF metadata, tensors bound straight
 * from the mapping with shape and type checks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/err.h"
#include "inference/infer_int.h"

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* <arch>.<suffix> as u64; *out untouched when absent and !required */
static int get_hp(const gguf_t *g, const char *arch, const char *suffix, int required,
                  uint64_t *out, char *err, size_t errlen)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int rc = gguf_get_u64(g, key, out);
    if (rc == OX_ENOTFOUND && !required)
        return 0;
    if (rc == OX_ENOTFOUND)
        return fail(err, errlen, OX_EFORMAT, "missing metadata key %s", key);
    if (rc < 0)
        return fail(err, errlen, OX_EFORMAT, "metadata key %s has the wrong type", key);
    return 0;
}

static int get_hp_f(const gguf_t *g, const char *arch, const char *suffix, float *out,
                    char *err, size_t errlen)
{
    char key[128];
    double d;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int rc = gguf_get_f64(g, key, &d);
    if (rc == OX_ENOTFOUND)
        return 0;
    if (rc < 0)
        return fail(err, errlen, OX_EFORMAT, "metadata key %s has the wrong type", key);
    *out = (float)d;
    return 0;
}

enum { BIND_MATRIX = 1, BIND_F32 = 2, BIND_ROWS = 4, BIND_OPTIONAL = 8 };

/* Binds tensor name with ne = {ne0, ne1} (ne1 == 0: a vector). BIND_MATRIX
 * needs a dot kernel, BIND_ROWS a dequantizer, BIND_F32 exactly F32. */
static int bind(infer_model_t *m, const char *name, int64_t ne0, int64_t ne1, int flags,
                infer_weight_t *w, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    const gguf_tensor_t *t = gguf_tensor(m->g, name);
    if (!t) {
        if (flags & BIND_OPTIONAL)
            return 0;
        return fail(err, errlen, OX_EFORMAT, "missing tensor %s", name);
    }
    uint64_t want1 = ne1 ? (uint64_t)ne1 : 1;
    int dims_ok = (uint64_t)t->ne[0] == (uint64_t)ne0 && t->ne[1] == want1 &&
                  (t->n_dims < 3 || (t->ne[2] == 1 && (t->n_dims < 4 || t->ne[3] == 1)));
    if (!dims_ok)
        return fail(err, errlen, OX_EFORMAT,
                    "tensor %s has shape [%llu, %llu], expected [%lld, %lld]", name,
                    (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (long long)ne0,
                    (long long)want1);
    const q_traits_t *tr = q_traits((int)t->type);
    const char *tname = gguf_ttype_name((int)t->type);
    if (!tname)
        tname = "unknown";
    if ((flags & BIND_F32) && t->type != GGML_T_F32)
        return fail(err, errlen, OX_EUNSUPPORTED, "unsupported tensor type %s for %s (F32 needed)",
                    tname, name);
    if (!tr || ((flags & BIND_MATRIX) && !tr->vec_dot) || t->type == GGML_T_Q8_K)
        return fail(err, errlen, OX_EUNSUPPORTED, "unsupported tensor type %s for %s", tname, name);
    w->data = t->data;
    w->type = (int)t->type;
    w->ne0 = ne0;
    w->ne1 = (int64_t)want1;
    w->row_bytes = q_row_size(w->type, ne0);
    w->tr = tr;
    return 0;
}

static int bind_layer(infer_model_t *m, uint32_t il, char *err, size_t errlen)
{
    const infer_model_info_t *hp = &m->info;
    infer_layer_t *L = &m->layers[il];
    int64_t E = hp->n_embd, QD = (int64_t)hp->n_head * hp->head_dim;
    int64_t KD = (int64_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    int qwen = strcmp(hp->arch, "qwen2") == 0;
    struct {
        const char *suffix;
        int64_t ne0, ne1;
        int flags;
        infer_weight_t *w;
    } spec[] = {
        {"attn_norm.weight", E, 0, BIND_F32, &L->attn_norm},
        {"attn_q.weight", E, QD, BIND_MATRIX, &L->wq},
        {"attn_k.weight", E, KD, BIND_MATRIX, &L->wk},
        {"attn_v.weight", E, KD, BIND_MATRIX, &L->wv},
        {"attn_output.weight", QD, E, BIND_MATRIX, &L->wo},
        {"attn_q.bias", QD, 0, BIND_F32 | (qwen ? 0 : BIND_OPTIONAL), &L->bq},
        {"attn_k.bias", KD, 0, BIND_F32 | (qwen ? 0 : BIND_OPTIONAL), &L->bk},
        {"attn_v.bias", KD, 0, BIND_F32 | (qwen ? 0 : BIND_OPTIONAL), &L->bv},
        {"ffn_norm.weight", E, 0, BIND_F32, &L->ffn_norm},
        {"ffn_gate.weight", E, F, BIND_MATRIX, &L->w_gate},
        {"ffn_up.weight", E, F, BIND_MATRIX, &L->w_up},
        {"ffn_down.weight", F, E, BIND_MATRIX, &L->w_down},
    };
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
        char name[96];
        snprintf(name, sizeof name, "blk.%u.%s", il, spec[i].suffix);
        int rc = bind(m, name, spec[i].ne0, spec[i].ne1, spec[i].flags, spec[i].w, err, errlen);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int read_hparams(infer_model_t *m, char *err, size_t errlen)
{
    infer_model_info_t *hp = &m->info;
    int rc = gguf_get_str(m->g, "general.architecture", hp->arch, sizeof hp->arch);
    if (rc == OX_ENOTFOUND)
        return fail(err, errlen, OX_EFORMAT, "missing metadata key general.architecture");
    if (rc < 0)
        return fail(err, errlen, OX_EFORMAT, "general.architecture is not a string");
    if (strcmp(hp->arch, "llama") && strcmp(hp->arch, "mistral") && strcmp(hp->arch, "qwen2"))
        return fail(err, errlen, OX_EUNSUPPORTED, "unsupported architecture '%s'", hp->arch);
    const char *a = hp->arch;
    uint64_t ctx = 0, embd = 0, nl = 0, ff = 0, nh = 0, nkv = 0, kl = 0, rot = 0, ft = 0;
    if ((rc = get_hp(m->g, a, "context_length", 0, &ctx, err, errlen)) < 0 ||
        (rc = get_hp(m->g, a, "embedding_length", 1, &embd, err, errlen)) < 0 ||
        (rc = get_hp(m->g, a, "block_count", 1, &nl, err, errlen)) < 0 ||
        (rc = get_hp(m->g, a, "feed_forward_length", 1, &ff, err, errlen)) < 0 ||
        (rc = get_hp(m->g, a, "attention.head_count", 1, &nh, err, errlen)) < 0 ||
        (rc = get_hp(m->g, a, "attention.head_count_kv", 0, &nkv, err, errlen)) < 0 ||
        (rc = get_hp(m->g, a, "attention.key_length", 0, &kl, err, errlen)) < 0 ||
        (rc = get_hp(m->g, a, "rope.dimension_count", 0, &rot, err, errlen)) < 0)
        return rc;
    if (gguf_get_u64(m->g, "general.file_type", &ft) == 0)
        hp->file_type = (uint32_t)ft;
    if (!nkv)
        nkv = nh;
    if (embd == 0 || embd > 65536 || nl == 0 || nl > 1024 || ff == 0 || ff > 1 << 20 ||
        nh == 0 || nh > 1024 || nkv == 0 || nh % nkv)
        return fail(err, errlen, OX_EFORMAT,
                    "bad hyper-parameters: n_embd %llu, n_layer %llu, n_ff %llu, n_head %llu, "
                    "n_head_kv %llu", (unsigned long long)embd, (unsigned long long)nl,
                    (unsigned long long)ff, (unsigned long long)nh, (unsigned long long)nkv);
    if (!kl) {
        if (embd % nh)
            return fail(err, errlen, OX_EFORMAT, "n_embd %llu not divisible by n_head %llu",
                        (unsigned long long)embd, (unsigned long long)nh);
        kl = embd / nh;
    }
    if (!rot)
        rot = kl;
    if (kl % 2 || kl > 1024 || rot % 2 || rot > kl)
        return fail(err, errlen, OX_EFORMAT, "bad head size %llu / rope dimensions %llu",
                    (unsigned long long)kl, (unsigned long long)rot);
    hp->n_ctx_train = (uint32_t)(ctx ? (ctx > UINT32_MAX ? UINT32_MAX : ctx) : 2048);
    hp->n_embd = (uint32_t)embd;
    hp->n_layer = (uint32_t)nl;
    hp->n_ff = (uint32_t)ff;
    hp->n_head = (uint32_t)nh;
    hp->n_head_kv = (uint32_t)nkv;
    hp->head_dim = (uint32_t)kl;
    hp->n_rot = (uint32_t)rot;
    hp->rope_base = 10000.0f;
    hp->norm_eps = 1e-5f;
    hp->rope_neox = strcmp(a, "qwen2") == 0;
    if ((rc = get_hp_f(m->g, a, "rope.freq_base", &hp->rope_base, err, errlen)) < 0 ||
        (rc = get_hp_f(m->g, a, "attention.layer_norm_rms_epsilon", &hp->norm_eps, err, errlen)) < 0)
        return rc;
    if (!(hp->rope_base > 0) || !(hp->norm_eps >= 0))
        return fail(err, errlen, OX_EFORMAT, "bad rope base or norm epsilon");
    return 0;
}

int infer_model_load_gguf(gguf_t *g, infer_model_t **out, char *err, size_t errlen)
{
    infer_model_t *m = calloc(1, sizeof *m);
    if (!m)
        return fail(err, errlen, OX_ENOMEM, "out of memory");
    m->g = g;
    int rc = read_hparams(m, err, errlen);
    if (rc < 0)
        goto out;
    infer_model_info_t *hp = &m->info;
    const gguf_tensor_t *te = gguf_tensor(g, "token_embd.weight");
    if (!te) {
        rc = fail(err, errlen, OX_EFORMAT, "missing tensor token_embd.weight");
        goto out;
    }
    if (te->ne[1] == 0 || te->ne[1] > (1u << 24)) {
        rc = fail(err, errlen, OX_EFORMAT, "bad vocabulary size %llu",
                  (unsigned long long)te->ne[1]);
        goto out;
    }
    hp->n_vocab = (uint32_t)te->ne[1];
    hp->tied_output = gguf_tensor(g, "output.weight") == NULL;
    int64_t E = hp->n_embd, V = hp->n_vocab;
    if ((rc = bind(m, "token_embd.weight", E, V, BIND_ROWS | (hp->tied_output ? BIND_MATRIX : 0),
                   &m->tok_embd, err, errlen)) < 0 ||
        (rc = bind(m, "output_norm.weight", E, 0, BIND_F32, &m->output_norm, err, errlen)) < 0 ||
        (rc = bind(m, "rope_freqs.weight", hp->n_rot / 2, 0, BIND_F32 | BIND_OPTIONAL,
                   &m->rope_freqs, err, errlen)) < 0)
        goto out;
    if (hp->tied_output)
        m->output = m->tok_embd;
    else if ((rc = bind(m, "output.weight", E, V, BIND_MATRIX, &m->output, err, errlen)) < 0)
        goto out;
    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        rc = fail(err, errlen, OX_ENOMEM, "out of memory");
        goto out;
    }
    for (uint32_t il = 0; il < hp->n_layer; il++)
        if ((rc = bind_layer(m, il, err, errlen)) < 0)
            goto out;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor_t *t = &g->tensors[i];
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims; d++)
            n *= t->ne[d];
        hp->n_params += n;
        hp->weight_bytes += t->size;
    }
    rc = 0;
out:
    if (rc < 0) {
        free(m->layers);
        free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* Hint on the file mapping of the weights (never a copy): start reading the
 * file in now, in the background, rather than page by page on the first
 * eval. Advice only: a kernel that ignores it changes nothing. (MADV_HUGEPAGE
 * on the mapping was tried too and made no measurable difference here.) */
static void model_map_advise(const gguf_t *g)
{
    long pg = sysconf(_SC_PAGESIZE);
    if (!g->map || g->file_size == 0 || pg <= 0 || (uintptr_t)g->map % (uintptr_t)pg)
        return;
    void *p = (void *)(uintptr_t)g->map;
    (void)madvise(p, g->file_size, MADV_WILLNEED);
}

int infer_model_load(const char *path, infer_model_t **out, char *err, size_t errlen)
{
    gguf_t *g = NULL;
    int rc = gguf_open(path, &g, err, errlen);
    if (rc < 0)
        return rc;
    model_map_advise(g);
    rc = infer_model_load_gguf(g, out, err, errlen);
    if (rc < 0)
        gguf_close(g);
    return rc;
}

void infer_model_free(infer_model_t *m)
{
    if (!m)
        return;
    gguf_close(m->g);
    free(m->layers);
    free(m);
}

const infer_model_info_t *infer_model_info(const infer_model_t *m)
{
    return &m->info;
}

const gguf_t *infer_model_gguf(const infer_model_t *m)
{
    return m->g;
}

const char *infer_kernels_name(void)
{
    return q_isa_name(q_isa_best());
}
