/* Byte-level BPE: the llama-bpe / qwen2 pre-tokenizers as hand-written
 * matchers of their regexes, then lowest-rank-first merging with a heap. */
#include "inference/tokenizer_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "inference/unicode.h"

/* One decoded code point with its byte offset and class bits. */
typedef struct cpinfo {
    uint32_t cp;
    uint32_t off;
    uint8_t fl;
} cpinfo_t;

#define IS_L(c) ((c).fl & UX_LETTER)
#define IS_N(c) ((c).fl & UX_NUMBER)
#define IS_S(c) ((c).fl & UX_SPACE)
#define IS_CRLF(c) ((c).cp == '\r' || (c).cp == '\n')

static uint32_t lower_ascii(uint32_t c)
{
    return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* Length (in code points) of the pre-token starting at index i of cps[0..n),
 * following, alternative by alternative, the regex
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,3}
 *   | ?[^\s\p{L}\p{N}]+[\r\n]* | \s*[\r\n]+ | \s+(?!\S) | \s+
 * (qwen2: \p{N} instead of \p{N}{1,3}). Always >= 1. */
static size_t pretok_len(const cpinfo_t *c, size_t n, size_t i, size_t max_digits)
{
    /* contractions */
    if (c[i].cp == '\'' && i + 1 < n) {
        uint32_t a = lower_ascii(c[i + 1].cp);
        if (a == 's' || a == 't' || a == 'm' || a == 'd')
            return 2;
        if (i + 2 < n) {
            uint32_t b = lower_ascii(c[i + 2].cp);
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
                return 3;
        }
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    {
        size_t j = i;
        if (!IS_L(c[j]) && !IS_N(c[j]) && !IS_CRLF(c[j]) && j + 1 < n && IS_L(c[j + 1]))
            j++;
        if (IS_L(c[j])) {
            while (j < n && IS_L(c[j]))
                j++;
            return j - i;
        }
    }
    /* \p{N}{1,max} */
    if (IS_N(c[i])) {
        size_t j = i;
        while (j < n && j - i < max_digits && IS_N(c[j]))
            j++;
        return j - i;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    {
        size_t j = i;
        if (c[j].cp == ' ' && j + 1 < n)
            j++;
#define IS_P(x) (!IS_S(x) && !IS_L(x) && !IS_N(x))
        if (IS_P(c[j])) {
            while (j < n && IS_P(c[j]))
                j++;
            while (j < n && IS_CRLF(c[j]))
                j++;
            return j - i;
        }
#undef IS_P
    }
    if (IS_S(c[i])) {
        size_t j = i;
        while (j < n && IS_S(c[j]))
            j++;
        /* \s*[\r\n]+ : up to and including the last CR/LF of the run */
        for (size_t k = j; k > i; k--)
            if (IS_CRLF(c[k - 1]))
                return k - i;
        /* \s+(?!\S) : the run, minus its last char when a non-space follows */
        if (j == n)
            return j - i;
        if (j - i >= 2)
            return j - 1 - i;
        /* \s+ */
        return j - i;
    }
    return 1;
}

/* Merges the bytes of one pre-token into tokens. */
static int bpe_word(const tok_t *t, const char *w, size_t n, tok_ids_t *ids)
{
    int rc = 0;
    if (t->ignore_merges && n <= 256) {
        /* llama-bpe: a pre-token that is a whole vocab entry is taken as is. */
        char mapped[256 * 2];
        size_t ml = 0;
        for (size_t i = 0; i < n; i++)
            ml += ux_encode(t->byte_to_cp[(unsigned char)w[i]], mapped + ml);
        int32_t id = tok_find(t, mapped, ml);
        if (id >= 0)
            return tok_ids_push(ids, id);
    }
    if (n == 1) {
        int32_t id = t->byte_tok[(unsigned char)w[0]];
        return id >= 0 ? tok_ids_push(ids, id) : (t->unk >= 0 ? tok_ids_push(ids, t->unk) : 0);
    }
    int32_t *sym = malloc(n * sizeof(*sym));
    int32_t *prev = malloc(n * sizeof(*prev));
    int32_t *next = malloc(n * sizeof(*next));
    tok_heap_t heap = {0};
    if (!sym || !prev || !next) {
        rc = OX_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        sym[i] = t->byte_tok[(unsigned char)w[i]];
        prev[i] = (int32_t)i - 1;
        next[i] = (size_t)i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t res, rank = tok_merge_find(t, sym[i], sym[i + 1], &res);
        if (rank >= 0 && (rc = tok_heap_push(&heap, (tok_heap_item_t){rank, (int32_t)i,
                                                                      (int32_t)i + 1, 0})))
            goto out;
    }
    tok_heap_item_t it;
    while (tok_heap_pop(&heap, &it)) {
        int32_t l = it.left, r = it.right;
        /* Stale entries: a side was merged away or changed since the push. */
        if (sym[l] < 0 || sym[r] < 0 || next[l] != r)
            continue;
        int32_t res, rank = tok_merge_find(t, sym[l], sym[r], &res);
        if (rank < 0 || (double)rank != it.prio)
            continue;
        sym[l] = res;
        sym[r] = -1;
        next[l] = next[r];
        if (next[r] >= 0)
            prev[next[r]] = l;
        if (prev[l] >= 0) {
            int32_t p = prev[l], rr = tok_merge_find(t, sym[p], sym[l], &res);
            if (rr >= 0 && (rc = tok_heap_push(&heap, (tok_heap_item_t){rr, p, l, 0})))
                goto out;
        }
        if (next[l] >= 0) {
            int32_t q = next[l], rr = tok_merge_find(t, sym[l], sym[q], &res);
            if (rr >= 0 && (rc = tok_heap_push(&heap, (tok_heap_item_t){rr, l, q, 0})))
                goto out;
        }
    }
    for (int32_t i = 0; i >= 0; i = next[i]) {
        int32_t id = sym[i] >= 0 ? sym[i] : t->unk;
        if (id >= 0 && (rc = tok_ids_push(ids, id)))
            goto out;
    }
out:
    free(sym);
    free(prev);
    free(next);
    free(heap.v);
    return rc;
}

int tok_bpe_encode_fragment(const tok_t *t, const char *s, size_t n, tok_ids_t *ids)
{
    cpinfo_t *c = malloc(n * sizeof(*c));
    if (!c)
        return OX_ENOMEM;
    size_t nc = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = ux_decode(s + i, n - i, &cp);
        c[nc].cp = cp;
        c[nc].off = (uint32_t)i;
        c[nc].fl = (uint8_t)ux_flags(cp);
        nc++;
        i += l;
    }
    size_t max_digits = t->pre == TOK_PRE_QWEN2 ? 1 : 3;
    int rc = 0;
    for (size_t i = 0; i < nc;) {
        size_t k = pretok_len(c, nc, i, max_digits);
        size_t b0 = c[i].off, b1 = i + k < nc ? c[i + k].off : n;
        if ((rc = bpe_word(t, s + b0, b1 - b0, ids)))
            break;
        i += k;
    }
    free(c);
    return rc;
}
