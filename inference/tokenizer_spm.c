/* SentencePiece-style BPE (GGUF "llama" tokenizers): spaces become U+2581,
 * the text is split into characters, and the adjacent pair whose concatenation
 * is the vocab token with the highest score is merged first. Characters left
 * without a token fall back to <0xXX> byte tokens. */
#include "inference/tokenizer_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "inference/unicode.h"

typedef struct spm_sym {
    uint32_t off, len; /* in the escaped text */
    int32_t prev, next;
} spm_sym_t;

static int try_pair(const tok_t *t, const char *txt, const spm_sym_t *sym, int32_t l,
                    int32_t r, tok_heap_t *heap)
{
    if (l < 0 || r < 0)
        return 0;
    uint32_t len = sym[l].len + sym[r].len;
    int32_t id = tok_find(t, txt + sym[l].off, len);
    if (id < 0)
        return 0;
    /* Highest score first: the heap pops the smallest prio. */
    return tok_heap_push(heap, (tok_heap_item_t){-(double)t->tokens[id].score, l, r, len});
}

static int emit_symbol(const tok_t *t, const char *p, size_t len, tok_ids_t *ids)
{
    int32_t id = tok_find(t, p, len);
    if (id >= 0)
        return tok_ids_push(ids, id);
    for (size_t i = 0; i < len; i++) {
        int32_t b = t->byte_tok[(unsigned char)p[i]];
        if (b < 0)
            b = t->unk;
        if (b < 0)
            continue;
        int rc = tok_ids_push(ids, b);
        if (rc)
            return rc;
        if (b == t->unk && t->byte_tok[(unsigned char)p[i]] < 0)
            break; /* one <unk> per character, not per byte */
    }
    return 0;
}

int tok_spm_encode_fragment(const tok_t *t, const char *s, size_t n, tok_ids_t *ids)
{
    int rc = 0;
    /* Escape spaces as U+2581 (3 bytes each). */
    size_t cap = n * 3 + 1;
    char *txt = malloc(cap);
    spm_sym_t *sym = malloc((n ? n : 1) * sizeof(*sym));
    tok_heap_t heap = {0};
    if (!txt || !sym) {
        rc = OX_ENOMEM;
        goto out;
    }
    size_t tl = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(txt + tl, "\xE2\x96\x81", 3);
            tl += 3;
        } else {
            txt[tl++] = s[i];
        }
    }
    int32_t ns = 0;
    for (size_t i = 0; i < tl;) {
        uint32_t cp;
        size_t l = ux_decode(txt + i, tl - i, &cp);
        sym[ns].off = (uint32_t)i;
        sym[ns].len = (uint32_t)l;
        sym[ns].prev = ns - 1;
        sym[ns].next = i + l < tl ? ns + 1 : -1;
        ns++;
        i += l;
    }
    for (int32_t i = 0; i + 1 < ns; i++)
        if ((rc = try_pair(t, txt, sym, i, i + 1, &heap)))
            goto out;
    tok_heap_item_t it;
    while (tok_heap_pop(&heap, &it)) {
        int32_t l = it.left, r = it.right;
        /* Stale: either side changed since this pair was queued. */
        if (sym[l].len == 0 || sym[r].len == 0 || sym[l].next != r ||
            sym[l].len + sym[r].len != it.len)
            continue;
        sym[l].len += sym[r].len;
        sym[r].len = 0;
        sym[l].next = sym[r].next;
        if (sym[r].next >= 0)
            sym[sym[r].next].prev = l;
        if ((rc = try_pair(t, txt, sym, sym[l].prev, l, &heap)) ||
            (rc = try_pair(t, txt, sym, l, sym[l].next, &heap)))
            goto out;
    }
    for (int32_t i = ns ? 0 : -1; i >= 0; i = sym[i].next)
        if ((rc = emit_symbol(t, txt + sym[i].off, sym[i].len, ids)))
            goto out;
out:
    free(txt);
    free(sym);
    free(heap.v);
    return rc;
}
