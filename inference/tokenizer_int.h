/* Internals shared by the tokenizer files; not part of the module interface. */
#ifndef OX_TOKENIZER_INT_H
#define OX_TOKENIZER_INT_H

#include "inference/tokenizer.h"

typedef struct tok_entry {
    uint32_t off, len; /* text in tok->text */
    float score;
    int32_t type;
} tok_entry_t;

typedef struct tok_merge_slot {
    uint64_t key;      /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank;
    int32_t result;
} tok_merge_slot_t;

struct tok {
    tok_kind_t kind;
    tok_pre_t pre;
    bool ignore_merges;     /* llama-bpe: a pre-token found whole in the vocab wins */
    bool add_bos, add_eos, add_space_prefix;
    int32_t bos, eos, eot, unk, pad;
    size_t n;
    tok_entry_t *tokens;
    char *text;             /* all token texts, back to back */
    int32_t *hash;          /* open addressing, -1 empty, hash_mask + 1 slots */
    size_t hash_mask;
    tok_merge_slot_t *merges;
    size_t merge_mask;
    int32_t byte_tok[256];  /* token of each raw byte (BPE mapped char / SPM <0xXX>) */
    uint16_t byte_to_cp[256];   /* BPE byte-level map */
    int16_t cp_to_byte[512];    /* inverse, -1 when not a mapped char */
    int32_t *special;       /* control/user tokens, longest first */
    size_t n_special;
    size_t n_user;          /* user-defined tokens among them */
    uint8_t special_first[32]; /* bitmap of first bytes of special tokens */
    uint8_t *eog;           /* n flags */
};

/* Encoders of one fragment of plain text (no special tokens inside);
 * append to the id vector. */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids_t;

int tok_ids_push(tok_ids_t *ids, int32_t id);
int tok_bpe_encode_fragment(const tok_t *t, const char *s, size_t n, tok_ids_t *ids);
int tok_spm_encode_fragment(const tok_t *t, const char *s, size_t n, tok_ids_t *ids);
/* Merge look-up: rank (or -1) and result token of merging left+right. */
int32_t tok_merge_find(const tok_t *t, int32_t left, int32_t right, int32_t *result);

/* Binary heap of candidate merges shared by both encoders. */
typedef struct tok_heap_item {
    double prio;   /* smaller first */
    int32_t left;  /* symbol index */
    int32_t right;
    uint32_t len;  /* combined length at push time (SPM validity check) */
} tok_heap_item_t;

typedef struct tok_heap {
    tok_heap_item_t *v;
    size_t n, cap;
} tok_heap_t;

int tok_heap_push(tok_heap_t *h, tok_heap_item_t it);
bool tok_heap_pop(tok_heap_t *h, tok_heap_item_t *out);

#endif
