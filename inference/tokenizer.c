/* Tokenizer core: vocabulary tables, special-token splitting, decoding and
 * the streaming detokenizer. The two encoders live in tokenizer_bpe.c and
 * tokenizer_spm.c, GGUF loading in tokenizer_gguf.c. */
#include "inference/tokenizer_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "inference/unicode.h"

#define TOK_MAX_INPUT ((size_t)256 << 20)
#define TOK_MAX_VOCAB ((size_t)1 << 24)

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

int32_t tok_find(const tok_t *t, const char *text, size_t len)
{
    size_t i = (size_t)hash_bytes(text, len) & t->hash_mask;
    for (;;) {
        int32_t id = t->hash[i];
        if (id < 0)
            return -1;
        const tok_entry_t *e = &t->tokens[id];
        if (e->len == len && memcmp(t->text + e->off, text, len) == 0)
            return id;
        i = (i + 1) & t->hash_mask;
    }
}

int32_t tok_merge_find(const tok_t *t, int32_t left, int32_t right, int32_t *result)
{
    if (!t->merges)
        return -1;
    uint64_t key = (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1;
    size_t i = (size_t)hash_u64(key) & t->merge_mask;
    for (;;) {
        const tok_merge_slot_t *s = &t->merges[i];
        if (s->key == 0)
            return -1;
        if (s->key == key) {
            *result = s->result;
            return s->rank;
        }
        i = (i + 1) & t->merge_mask;
    }
}

int tok_ids_push(tok_ids_t *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof(*v));
        if (!v)
            return OX_ENOMEM;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

/* ---- binary heap (smallest prio first, ties by left position) ---- */

static bool heap_less(const tok_heap_item_t *a, const tok_heap_item_t *b)
{
    if (a->prio != b->prio)
        return a->prio < b->prio;
    return a->left < b->left;
}

int tok_heap_push(tok_heap_t *h, tok_heap_item_t it)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        tok_heap_item_t *v = realloc(h->v, cap * sizeof(*v));
        if (!v)
            return OX_ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&it, &h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = it;
    return 0;
}

bool tok_heap_pop(tok_heap_t *h, tok_heap_item_t *out)
{
    if (h->n == 0)
        return false;
    *out = h->v[0];
    tok_heap_item_t last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && heap_less(&h->v[c + 1], &h->v[c]))
            c++;
        if (!heap_less(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return true;
}

/* ---- loading ---- */

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static int cmp_special_len(const void *a, const void *b, void *ctx)
{
    const tok_t *t = ctx;
    uint32_t la = t->tokens[*(const int32_t *)a].len, lb = t->tokens[*(const int32_t *)b].len;
    if (la != lb)
        return la > lb ? -1 : 1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

static const char *const eog_texts[] = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|endoftext|>", "<|end_of_text|>",
    "</s>", "<end_of_turn>", "<|end|>", "<|return|>", "<|call|>",
};

static void init_byte_map(tok_t *t)
{
    /* GPT-2 byte-to-unicode: printable Latin-1 bytes map to themselves, the
     * rest to U+0100 upwards, in byte order. */
    int next = 256;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        t->byte_to_cp[b] = (uint16_t)(keep ? b : next++);
    }
    for (int i = 0; i < 512; i++)
        t->cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++)
        t->cp_to_byte[t->byte_to_cp[b]] = (int16_t)b;
}

static int build_merges(tok_t *t, const tok_desc_t *d, char *err, size_t errlen)
{
    size_t cap = 16;
    while (cap < d->n_merges * 2)
        cap <<= 1;
    t->merges = calloc(cap, sizeof(*t->merges));
    if (!t->merges)
        return OX_ENOMEM;
    t->merge_mask = cap - 1;
    char buf[1024];
    for (size_t r = 0; r < d->n_merges; r++) {
        const char *m = d->merges[r];
        const char *sp = strchr(m, ' ');
        /* A token may itself start with a space only in non-byte-level
         * vocabularies; split at the first space that is not at position 0. */
        if (sp == m)
            sp = strchr(m + 1, ' ');
        if (!sp) {
            set_err(err, errlen, "tokenizer merge without a space separator");
            return OX_EFORMAT;
        }
        size_t ll = (size_t)(sp - m), rl = strlen(sp + 1);
        if (ll + rl >= sizeof(buf))
            continue;
        int32_t a = tok_find(t, m, ll), b = tok_find(t, sp + 1, rl);
        memcpy(buf, m, ll);
        memcpy(buf + ll, sp + 1, rl);
        int32_t res = tok_find(t, buf, ll + rl);
        if (a < 0 || b < 0 || res < 0)
            continue; /* merges into tokens the vocab lacks can never apply */
        uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
        size_t i = (size_t)hash_u64(key) & t->merge_mask;
        while (t->merges[i].key != 0 && t->merges[i].key != key)
            i = (i + 1) & t->merge_mask;
        if (t->merges[i].key == key)
            continue; /* duplicate: the first (lowest rank) wins */
        t->merges[i].key = key;
        t->merges[i].rank = (int32_t)r;
        t->merges[i].result = res;
    }
    return 0;
}

int tok_load_desc(const tok_desc_t *d, tok_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (d->kind != TOK_SPM && d->kind != TOK_BPE) {
        set_err(err, errlen, "unsupported tokenizer kind");
        return OX_EUNSUPPORTED;
    }
    if (d->n_tokens == 0 || d->n_tokens > TOK_MAX_VOCAB) {
        set_err(err, errlen, "tokenizer vocabulary is empty or too large");
        return OX_EFORMAT;
    }
    int rc = OX_ENOMEM;
    tok_t *t = calloc(1, sizeof(*t));
    if (!t)
        return OX_ENOMEM;
    t->kind = d->kind;
    t->pre = d->pre;
    t->n = d->n_tokens;
    size_t total = 0;
    for (size_t i = 0; i < d->n_tokens; i++) {
        size_t l = d->token_lens ? d->token_lens[i] : strlen(d->tokens[i]);
        if (l > 65535) {
            set_err(err, errlen, "tokenizer token longer than 65535 bytes");
            rc = OX_EFORMAT;
            goto fail;
        }
        total += l + 1;
    }
    t->tokens = calloc(d->n_tokens, sizeof(*t->tokens));
    t->text = malloc(total ? total : 1);
    t->eog = calloc(d->n_tokens, 1);
    size_t hcap = 16;
    while (hcap < d->n_tokens * 2)
        hcap <<= 1;
    t->hash = malloc(hcap * sizeof(*t->hash));
    if (!t->tokens || !t->text || !t->eog || !t->hash)
        goto fail;
    t->hash_mask = hcap - 1;
    memset(t->hash, 0xff, hcap * sizeof(*t->hash));
    size_t off = 0;
    for (size_t i = 0; i < d->n_tokens; i++) {
        size_t l = d->token_lens ? d->token_lens[i] : strlen(d->tokens[i]);
        memcpy(t->text + off, d->tokens[i], l);
        t->text[off + l] = 0;
        t->tokens[i].off = (uint32_t)off;
        t->tokens[i].len = (uint32_t)l;
        t->tokens[i].score = d->scores ? d->scores[i] : 0.0f;
        t->tokens[i].type = d->types ? d->types[i] : TOK_T_NORMAL;
        off += l + 1;
        /* Insert unless a token with the same text exists (first id wins). */
        size_t h = (size_t)hash_bytes(d->tokens[i], l) & t->hash_mask;
        bool dup = false;
        while (t->hash[h] >= 0) {
            const tok_entry_t *e = &t->tokens[t->hash[h]];
            if (e->len == l && memcmp(t->text + e->off, d->tokens[i], l) == 0) {
                dup = true;
                break;
            }
            h = (h + 1) & t->hash_mask;
        }
        if (!dup)
            t->hash[h] = (int32_t)i;
    }

    int32_t n = (int32_t)d->n_tokens;
#define ID_OK(x) ((x) >= 0 && (x) < n ? (x) : -1)
    t->bos = ID_OK(d->bos);
    t->eos = ID_OK(d->eos);
    t->eot = ID_OK(d->eot);
    t->unk = ID_OK(d->unk);
    t->pad = ID_OK(d->pad);
#undef ID_OK
    if (d->kind == TOK_SPM) {
        t->add_bos = d->add_bos < 0 ? true : d->add_bos != 0;
        t->add_space_prefix = d->add_space_prefix < 0 ? true : d->add_space_prefix != 0;
        char name[8];
        for (int b = 0; b < 256; b++) {
            snprintf(name, sizeof(name), "<0x%02X>", b);
            t->byte_tok[b] = tok_find(t, name, 6);
        }
        if (t->unk < 0)
            t->unk = tok_find(t, "<unk>", 5);
    } else {
        t->add_bos = d->add_bos < 0 ? d->pre != TOK_PRE_QWEN2 : d->add_bos != 0;
        t->ignore_merges = d->pre == TOK_PRE_LLAMA3;
        init_byte_map(t);
        for (int b = 0; b < 256; b++) {
            char u[4];
            size_t l = ux_encode(t->byte_to_cp[b], u);
            t->byte_tok[b] = tok_find(t, u, l);
        }
        rc = build_merges(t, d, err, errlen);
        if (rc)
            goto fail;
    }
    t->add_eos = d->add_eos > 0;

    /* Special tokens that the input may contain literally, longest first. */
    size_t ns = 0;
    for (size_t i = 0; i < t->n; i++)
        if ((t->tokens[i].type == TOK_T_CONTROL || t->tokens[i].type == TOK_T_USER) &&
            t->tokens[i].len > 0)
            ns++;
    t->special = malloc((ns ? ns : 1) * sizeof(*t->special));
    if (!t->special) {
        rc = OX_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < t->n; i++)
        if ((t->tokens[i].type == TOK_T_CONTROL || t->tokens[i].type == TOK_T_USER) &&
            t->tokens[i].len > 0) {
            t->special[t->n_special++] = (int32_t)i;
            t->n_user += t->tokens[i].type == TOK_T_USER;
            unsigned char c = (unsigned char)t->text[t->tokens[i].off];
            t->special_first[c >> 3] |= (uint8_t)(1u << (c & 7));
        }
    qsort_r(t->special, t->n_special, sizeof(*t->special), cmp_special_len, t);

    if (t->eos >= 0)
        t->eog[t->eos] = 1;
    if (t->eot >= 0)
        t->eog[t->eot] = 1;
    for (size_t i = 0; i < sizeof(eog_texts) / sizeof(eog_texts[0]); i++) {
        int32_t id = tok_find(t, eog_texts[i], strlen(eog_texts[i]));
        if (id >= 0 && t->tokens[id].type == TOK_T_CONTROL)
            t->eog[id] = 1;
        else if (id >= 0 && t->kind == TOK_SPM && id == t->eos)
            t->eog[id] = 1;
    }
    *out = t;
    return 0;
fail:
    if (rc == OX_ENOMEM)
        set_err(err, errlen, "out of memory loading the tokenizer");
    tok_free(t);
    return rc;
}

void tok_free(tok_t *t)
{
    if (!t)
        return;
    free(t->tokens);
    free(t->text);
    free(t->hash);
    free(t->merges);
    free(t->special);
    free(t->eog);
    free(t);
}

/* ---- encoding ---- */

/* Longest special token starting at s[0..n), or -1; with user_only, control
 * tokens are not considered. */
static int32_t match_special(const tok_t *t, const char *s, size_t n, bool user_only)
{
    unsigned char c = (unsigned char)s[0];
    if (!(t->special_first[c >> 3] & (1u << (c & 7))))
        return -1;
    for (size_t k = 0; k < t->n_special; k++) {
        const tok_entry_t *e = &t->tokens[t->special[k]];
        if (e->len <= n && (unsigned char)t->text[e->off] == c &&
            (!user_only || e->type == TOK_T_USER) && memcmp(t->text + e->off, s, e->len) == 0)
            return t->special[k];
    }
    return -1;
}

static int encode_fragment(const tok_t *t, const char *s, size_t n, bool after_special,
                           tok_ids_t *ids)
{
    if (t->kind == TOK_BPE)
        return n ? tok_bpe_encode_fragment(t, s, n, ids) : 0;
    if (n == 0)
        return 0;
    if (!t->add_space_prefix || !after_special)
        return tok_spm_encode_fragment(t, s, n, ids);
    /* SentencePiece adds a space in front of text that starts the input or
     * follows a special token. */
    char *tmp = malloc(n + 1);
    if (!tmp)
        return OX_ENOMEM;
    tmp[0] = ' ';
    memcpy(tmp + 1, s, n);
    int rc = tok_spm_encode_fragment(t, tmp, n + 1, ids);
    free(tmp);
    return rc;
}

int tok_encode(const tok_t *t, const char *text, size_t len, bool add_special,
               bool parse_special, int32_t **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (len > TOK_MAX_INPUT)
        return OX_ETOOBIG;
    tok_ids_t ids = {0};
    int rc = 0;
    if (add_special && t->add_bos && t->bos >= 0 && (rc = tok_ids_push(&ids, t->bos)))
        goto fail;
    size_t start = 0;
    bool after_special = true;
    /* User-defined tokens (e.g. qwen2's <tool_call>) are always cut out, as
     * llama.cpp does; control tokens only when parse_special is set. */
    if (t->n_special && (parse_special || t->n_user)) {
        for (size_t i = 0; i < len;) {
            int32_t sp = match_special(t, text + i, len - i, !parse_special);
            if (sp < 0) {
                i++;
                continue;
            }
            if ((rc = encode_fragment(t, text + start, i - start, after_special, &ids)))
                goto fail;
            if ((rc = tok_ids_push(&ids, sp)))
                goto fail;
            i += t->tokens[sp].len;
            start = i;
            after_special = true; /* text after a special token starts afresh */
        }
    }
    if ((rc = encode_fragment(t, text + start, len - start, after_special, &ids)))
        goto fail;
    if (add_special && t->add_eos && t->eos >= 0 && (rc = tok_ids_push(&ids, t->eos)))
        goto fail;
    *out = ids.v;
    *nout = ids.n;
    return 0;
fail:
    free(ids.v);
    return rc;
}

/* ---- decoding ---- */

int tok_decode_token(const tok_t *t, int32_t id, bool special, ox_buf_t *out)
{
    if (id < 0 || (size_t)id >= t->n)
        return OX_EINVAL;
    const tok_entry_t *e = &t->tokens[id];
    const char *p = t->text + e->off;
    if (e->type == TOK_T_CONTROL || e->type == TOK_T_UNKNOWN || e->type == TOK_T_UNUSED)
        return special ? ox_buf_append(out, p, e->len) : 0;
    if (e->type == TOK_T_USER)
        return ox_buf_append(out, p, e->len);
    if (t->kind == TOK_SPM) {
        if (e->type == TOK_T_BYTE && e->len == 6 && p[0] == '<' && p[1] == '0' && p[2] == 'x') {
            char byte = (char)strtol(p + 3, NULL, 16);
            return ox_buf_append(out, &byte, 1);
        }
        /* U+2581 (E2 96 81) stands for a space. */
        int rc = ox_buf_reserve(out, e->len);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < e->len; i++) {
            if (i + 2 < e->len && (unsigned char)p[i] == 0xE2 && (unsigned char)p[i + 1] == 0x96 &&
                (unsigned char)p[i + 2] == 0x81) {
                out->data[out->len++] = ' ';
                i += 2;
            } else {
                out->data[out->len++] = p[i];
            }
        }
        out->data[out->len] = 0;
        return 0;
    }
    /* Byte-level BPE: every code point stands for one byte. */
    int rc = ox_buf_reserve(out, e->len);
    if (rc)
        return rc;
    for (size_t i = 0; i < e->len;) {
        uint32_t cp;
        size_t l = ux_decode(p + i, e->len - i, &cp);
        if (cp < 512 && t->cp_to_byte[cp] >= 0) {
            out->data[out->len++] = (char)t->cp_to_byte[cp];
        } else {
            /* Not a byte-level char (hand-added token): keep the text. */
            memcpy(out->data + out->len, p + i, l);
            out->len += l;
        }
        i += l;
    }
    out->data[out->len] = 0;
    return 0;
}

int tok_decode(const tok_t *t, const int32_t *ids, size_t n, bool special, ox_buf_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int rc = tok_decode_token(t, ids[i], special, out);
        if (rc)
            return rc;
    }
    return 0;
}

const char *tok_piece(const tok_t *t, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= t->n)
        return NULL;
    if (len)
        *len = t->tokens[id].len;
    return t->text + t->tokens[id].off;
}

size_t tok_n_vocab(const tok_t *t) { return t->n; }
tok_kind_t tok_kind(const tok_t *t) { return t->kind; }
int32_t tok_bos(const tok_t *t) { return t->bos; }
int32_t tok_eos(const tok_t *t) { return t->eos; }
bool tok_add_bos(const tok_t *t) { return t->add_bos; }

int tok_type(const tok_t *t, int32_t id)
{
    return (id < 0 || (size_t)id >= t->n) ? 0 : t->tokens[id].type;
}

bool tok_is_eog(const tok_t *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n && t->eog[id];
}

/* ---- streaming ---- */

int tok_utf8_sanitize(const char *s, size_t n, ox_buf_t *out)
{
    int rc = ox_buf_reserve(out, n);
    if (rc)
        return rc;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = ux_decode(s + i, n - i, &cp);
        if (cp == 0xFFFD && l == 1) {
            if ((rc = ox_buf_append(out, "\xEF\xBF\xBD", 3)))
                return rc;
        } else if ((rc = ox_buf_append(out, s + i, l))) {
            return rc;
        }
        i += l;
    }
    return 0;
}

void tok_stream_init(tok_stream_t *s, const tok_t *t)
{
    s->t = t;
    s->pend = (ox_buf_t)OX_BUF_INIT;
}

int tok_stream_push(tok_stream_t *s, int32_t id, ox_buf_t *out)
{
    int rc = tok_decode_token(s->t, id, false, &s->pend);
    if (rc)
        return rc;
    size_t hold = ux_incomplete_tail(s->pend.data, s->pend.len);
    size_t ready = s->pend.len - hold;
    if (ready == 0)
        return 0;
    if ((rc = tok_utf8_sanitize(s->pend.data, ready, out)))
        return rc;
    ox_buf_consume(&s->pend, ready);
    return 0;
}

int tok_stream_flush(tok_stream_t *s, ox_buf_t *out)
{
    int rc = 0;
    if (s->pend.len)
        rc = tok_utf8_sanitize(s->pend.data, s->pend.len, out);
    ox_buf_reset(&s->pend);
    return rc;
}

void tok_stream_free(tok_stream_t *s)
{
    ox_buf_free(&s->pend);
}
