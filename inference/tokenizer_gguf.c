/* tok_load: reads the tokenizer.* keys of a GGUF into a tok_desc_t. */
#include "inference/tokenizer_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"

static int32_t get_id(const gguf_t *g, const char *key)
{
    uint64_t v;
    return gguf_get_u64(g, key, &v) == 0 && v < INT32_MAX ? (int32_t)v : -1;
}

static int get_flag(const gguf_t *g, const char *key)
{
    uint64_t v;
    return gguf_get_u64(g, key, &v) == 0 ? (v != 0) : -1;
}

static bool is_array_of(const gguf_kv_t *kv, gguf_vtype_t t)
{
    return kv && kv->val.type == GGUF_T_ARRAY && kv->val.v.arr.type == t;
}

int tok_load(const gguf_t *g, tok_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    char model[64] = "", pre[64] = "";
    if (gguf_get_str(g, "tokenizer.ggml.model", model, sizeof(model)) != 0) {
        snprintf(err, errlen, "GGUF has no tokenizer.ggml.model");
        return OX_EFORMAT;
    }
    gguf_get_str(g, "tokenizer.ggml.pre", pre, sizeof(pre));
    tok_desc_t d = {0};
    if (strcmp(model, "llama") == 0) {
        d.kind = TOK_SPM;
    } else if (strcmp(model, "gpt2") == 0) {
        d.kind = TOK_BPE;
        if (strcmp(pre, "qwen2") == 0 || strcmp(pre, "deepseek-r1-qwen") == 0) {
            d.pre = TOK_PRE_QWEN2;
        } else {
            d.pre = TOK_PRE_LLAMA3;
            if (pre[0] && strcmp(pre, "llama-bpe") && strcmp(pre, "llama3") &&
                strcmp(pre, "default") && strcmp(pre, "smaug-bpe"))
                OX_WARN("tokenizer: pre-tokenizer '%s' not known, using llama-bpe", pre);
        }
    } else {
        snprintf(err, errlen, "unsupported tokenizer model '%s'", model);
        return OX_EUNSUPPORTED;
    }
    const gguf_kv_t *ktok = gguf_find(g, "tokenizer.ggml.tokens");
    if (!is_array_of(ktok, GGUF_T_STRING) || ktok->val.v.arr.n == 0 ||
        ktok->val.v.arr.n > (1u << 24)) {
        snprintf(err, errlen, "GGUF tokenizer.ggml.tokens missing, empty or not strings");
        return OX_EFORMAT;
    }
    size_t n = (size_t)ktok->val.v.arr.n;
    const gguf_kv_t *kscore = gguf_find(g, "tokenizer.ggml.scores");
    const gguf_kv_t *ktype = gguf_find(g, "tokenizer.ggml.token_type");
    const gguf_kv_t *kmerge = gguf_find(g, "tokenizer.ggml.merges");
    if (kscore && (!is_array_of(kscore, GGUF_T_FLOAT32) || kscore->val.v.arr.n != n))
        kscore = NULL;
    if (ktype && (!is_array_of(ktype, GGUF_T_INT32) || ktype->val.v.arr.n != n))
        ktype = NULL;
    if (kmerge && !is_array_of(kmerge, GGUF_T_STRING))
        kmerge = NULL;
    if (d.kind == TOK_BPE && !kmerge) {
        snprintf(err, errlen, "GGUF BPE tokenizer has no tokenizer.ggml.merges");
        return OX_EFORMAT;
    }
    size_t nm = kmerge ? (size_t)kmerge->val.v.arr.n : 0;

    int rc = OX_ENOMEM;
    const char **toks = malloc(n * sizeof(*toks));
    size_t *lens = malloc(n * sizeof(*lens));
    float *scores = kscore ? malloc(n * sizeof(*scores)) : NULL;
    int32_t *types = ktype ? malloc(n * sizeof(*types)) : NULL;
    char **merges = nm ? calloc(nm, sizeof(*merges)) : NULL;
    if (!toks || !lens || (kscore && !scores) || (ktype && !types) || (nm && !merges))
        goto out;
    for (size_t i = 0; i < n; i++) {
        gguf_str_t s;
        if (gguf_arr_str(ktok, i, &s) != 0 || s.len > 65535) {
            snprintf(err, errlen, "GGUF token %zu unreadable or too long", i);
            rc = OX_EFORMAT;
            goto out;
        }
        toks[i] = s.p;
        lens[i] = (size_t)s.len;
    }
    if (kscore)
        memcpy(scores, kscore->val.v.arr.data, n * sizeof(float));
    if (ktype)
        memcpy(types, ktype->val.v.arr.data, n * sizeof(int32_t));
    for (size_t i = 0; i < nm; i++) {
        gguf_str_t s;
        if (gguf_arr_str(kmerge, i, &s) != 0 || s.len > 4096) {
            snprintf(err, errlen, "GGUF merge %zu unreadable or too long", i);
            rc = OX_EFORMAT;
            goto out;
        }
        if (!(merges[i] = malloc((size_t)s.len + 1)))
            goto out;
        memcpy(merges[i], s.p, (size_t)s.len);
        merges[i][s.len] = 0;
    }
    d.n_tokens = n;
    d.tokens = toks;
    d.token_lens = lens;
    d.scores = scores;
    d.types = types;
    d.n_merges = nm;
    d.merges = (const char *const *)merges;
    d.bos = get_id(g, "tokenizer.ggml.bos_token_id");
    d.eos = get_id(g, "tokenizer.ggml.eos_token_id");
    d.eot = get_id(g, "tokenizer.ggml.eot_token_id");
    d.unk = get_id(g, "tokenizer.ggml.unknown_token_id");
    d.pad = get_id(g, "tokenizer.ggml.padding_token_id");
    d.add_bos = get_flag(g, "tokenizer.ggml.add_bos_token");
    d.add_eos = get_flag(g, "tokenizer.ggml.add_eos_token");
    d.add_space_prefix = get_flag(g, "tokenizer.ggml.add_space_prefix");
    rc = tok_load_desc(&d, out, err, errlen);
out:
    if (rc == OX_ENOMEM && err && errlen && !err[0])
        snprintf(err, errlen, "out of memory loading the tokenizer");
    for (size_t i = 0; merges && i < nm; i++)
        free(merges[i]);
    free(merges);
    free(toks);
    free(lens);
    free(scores);
    free(types);
    return rc;
}
