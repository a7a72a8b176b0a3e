/* Tokenizers of the inference engine: SentencePiece-style (GGUF
 * tokenizer.ggml.model = "llama") and byte-level BPE ("gpt2") with the
 * llama-bpe (Llama 3) and qwen2 pre-tokenizers.
 *
 * A tok_t is immutable after load and safe to share between threads. It copies
 * everything it needs out of the GGUF, so the gguf_t may be closed afterwards.
 *
 * Token ids are int32_t; -1 means "none". */
#ifndef OX_TOKENIZER_H
#define OX_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "inference/gguf.h"

typedef struct tok tok_t;

typedef enum tok_kind { TOK_SPM = 1, TOK_BPE = 2 } tok_kind_t;

/* Pre-tokenizer of a BPE vocabulary (tokenizer.ggml.pre). */
typedef enum tok_pre {
    TOK_PRE_LLAMA3 = 0, /* "llama-bpe", "llama3", "default", "smaug-bpe", ... */
    TOK_PRE_QWEN2 = 1,  /* "qwen2": like llama3 but single digits */
} tok_pre_t;

/* GGUF token types (tokenizer.ggml.token_type). */
enum {
    TOK_T_NORMAL = 1, TOK_T_UNKNOWN = 2, TOK_T_CONTROL = 3, TOK_T_USER = 4,
    TOK_T_UNUSED = 5, TOK_T_BYTE = 6,
};

/* A vocabulary described by plain arrays, for tok_load_desc (tests, or callers
 * that are not reading a GGUF). All arrays are read during the call only. */
typedef struct tok_desc {
    tok_kind_t kind;
    tok_pre_t pre;              /* BPE only */
    size_t n_tokens;
    const char *const *tokens;  /* n_tokens strings */
    const size_t *token_lens;   /* NULL: tokens are NUL-terminated */
    const float *scores;        /* NULL: all 0 (SPM needs them) */
    const int32_t *types;       /* NULL: all TOK_T_NORMAL */
    size_t n_merges;            /* BPE: "left right" strings, rank = index */
    const char *const *merges;
    int32_t bos, eos, eot, unk, pad; /* -1 when absent */
    int add_bos;                /* -1: default for the kind/pre-tokenizer */
    int add_eos;                /* -1: default (no) */
    int add_space_prefix;       /* SPM; -1: default (yes) */
} tok_desc_t;

/* Builds a tokenizer from a GGUF's tokenizer.* keys. Returns 0, OX_EFORMAT or
 * OX_EUNSUPPORTED (message in err), or OX_ENOMEM. *out is owned by the caller
 * (tok_free); nothing of g is kept. */
int tok_load(const gguf_t *g, tok_t **out, char *err, size_t errlen);

/* Same from plain arrays (see tok_desc_t). */
int tok_load_desc(const tok_desc_t *d, tok_t **out, char *err, size_t errlen);

void tok_free(tok_t *t);

/* Encodes text[0..len). add_special: prepend BOS (and append EOS) as the
 * vocabulary asks. parse_special: control token texts in the input (e.g.
 * "<|eot_id|>") become those tokens; otherwise they are encoded as plain
 * text. User-defined tokens (type 4, e.g. "<tool_call>") are always matched,
 * as llama.cpp does. On success *ids (malloc'ed, caller frees; may be NULL when *n is 0) and
 * *n are set. Returns 0 or OX_ENOMEM / OX_ETOOBIG (input over 256 MiB). */
int tok_encode(const tok_t *t, const char *text, size_t len, bool add_special,
               bool parse_special, int32_t **ids, size_t *n);

/* Appends the bytes token id stands for to out (byte-level mapping undone,
 * "<0xXX>" turned into its byte, U+2581 into a space). Control tokens append
 * their text only when special is true. Returns 0, OX_EINVAL for an id out of
 * range, or OX_ENOMEM. The bytes may be partial UTF-8. */
int tok_decode_token(const tok_t *t, int32_t id, bool special, ox_buf_t *out);

/* Decodes a whole sequence into out (appends); invalid UTF-8 is kept as is. */
int tok_decode(const tok_t *t, const int32_t *ids, size_t n, bool special, ox_buf_t *out);

/* Raw vocabulary text of a token (as stored, e.g. "Ġhello" or "▁the"); NULL
 * for an id out of range. *len gets its length. Points into t. */
const char *tok_piece(const tok_t *t, int32_t id, size_t *len);

/* Vocabulary look-up of an exact token text; -1 when absent. */
int32_t tok_find(const tok_t *t, const char *text, size_t len);

size_t tok_n_vocab(const tok_t *t);
tok_kind_t tok_kind(const tok_t *t);
int32_t tok_bos(const tok_t *t);
int32_t tok_eos(const tok_t *t);
/* Token type (TOK_T_*) of id; 0 when out of range. */
int tok_type(const tok_t *t, int32_t id);
/* True for tokens that end generation: eos, eot and known end-of-turn tokens
 * present in the vocabulary (<|eot_id|>, <|eom_id|>, <|im_end|>,
 * <|endoftext|>, <|end_of_text|>, </s>, <end_of_turn>, <|end|>). */
bool tok_is_eog(const tok_t *t, int32_t id);
bool tok_add_bos(const tok_t *t);

/* Streaming detokenizer: turns generated tokens into text chunks that are
 * always whole UTF-8 characters; bytes of a character split across tokens are
 * held back until it completes. Invalid sequences become U+FFFD, so every
 * chunk is valid UTF-8 (safe to put in JSON). Caller-allocated, no heap use
 * besides pend; tok_stream_free releases it. */
typedef struct tok_stream {
    const tok_t *t;
    ox_buf_t pend; /* decoded bytes not yet emitted */
} tok_stream_t;

void tok_stream_init(tok_stream_t *s, const tok_t *t);
/* Decodes id (control tokens render as nothing) and appends the text that is
 * complete so far to out. Returns 0, OX_EINVAL or OX_ENOMEM. */
int tok_stream_push(tok_stream_t *s, int32_t id, ox_buf_t *out);
/* Appends whatever is still held back (incomplete characters as U+FFFD). */
int tok_stream_flush(tok_stream_t *s, ox_buf_t *out);
void tok_stream_free(tok_stream_t *s);

/* Appends s[0..n) to out with every invalid UTF-8 sequence replaced by
 * U+FFFD. */
int tok_utf8_sanitize(const char *s, size_t n, ox_buf_t *out);

#endif
