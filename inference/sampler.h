/* Token sampling for the inference engine: repetition penalties, a JSON
 * grammar constraint (format:"json"), greedy at temperature 0, else top_k ->
 * temperature -> softmax -> top_p -> min_p -> a draw from a seeded RNG (the
 * order Ollama's sampler uses). Also the stop-string matcher that holds back
 * text which may be the start of a stop string.
 *
 * A smp_t belongs to one generation (one thread); it keeps the recent token
 * history, the RNG and the grammar state. */
#ifndef OX_SAMPLER_H
#define OX_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "inference/tokenizer.h"

typedef struct smp_params {
    float temperature;       /* <= 0: greedy */
    int top_k;               /* <= 0: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off */
    int repeat_last_n;       /* tokens looked back; 0: off, -1: whole history */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    int64_t seed;            /* -1: random */
    bool json;               /* constrain output to one JSON object */
} smp_params_t;

/* Ollama's defaults: temperature 0.8, top_k 40, top_p 0.9, min_p 0,
 * repeat_penalty 1.1, repeat_last_n 64, seed -1. */
void smp_params_default(smp_params_t *p);

typedef struct smp smp_t;

/* Creates a sampler. tok (borrowed, must outlive the sampler) is needed for
 * the JSON constraint and end-of-generation tokens; it may be NULL when
 * p->json is false. Returns 0, OX_EINVAL (message in err) or OX_ENOMEM. */
int smp_new(const smp_params_t *p, const tok_t *tok, smp_t **out, char *err, size_t errlen);
void smp_free(smp_t *s);

/* Picks the next token from logits[0..n) (modified in place: penalties,
 * masking, scaling). Does not record it: call smp_accept with the token that
 * is actually used. Returns the id, or OX_ESTATE when the JSON constraint
 * leaves no allowed token (cannot happen with a sane vocabulary). */
int32_t smp_sample(smp_t *s, float *logits, size_t n);

/* Records a token in the history (for penalties) and advances the grammar.
 * Prompt tokens may be accepted too, so penalties see them (as llama.cpp
 * does for the last repeat_last_n tokens); use smp_accept_prompt for those,
 * which does not touch the grammar. */
void smp_accept(smp_t *s, int32_t id);
void smp_accept_prompt(smp_t *s, const int32_t *ids, size_t n);

/* True once the JSON constraint has seen a complete object (generation
 * should end); always false without the constraint. */
bool smp_json_done(const smp_t *s);

/* ---- JSON byte state machine (exposed for tests) ---- */

typedef struct smp_json {
    uint8_t st;          /* internal state */
    uint8_t sub;         /* literal index / hex count / number phase */
    uint8_t lit;         /* which literal */
    uint8_t utf8_left;   /* continuation bytes still expected in a string */
    uint8_t u8lo, u8hi;  /* allowed range of the next continuation byte */
    uint8_t in_key;
    uint8_t ws;          /* consecutive whitespace bytes */
    uint16_t depth;
    uint64_t stack[2];   /* bit i: 1 = object, 0 = array at depth i */
} smp_json_t;

#define SMP_JSON_MAX_DEPTH 128
#define SMP_JSON_MAX_WS 20

void smp_json_init(smp_json_t *j);
/* Feeds bytes; false (state unspecified) as soon as they cannot continue a
 * valid JSON object (top level must be an object, as in Ollama's grammar). */
bool smp_json_feed(smp_json_t *j, const char *p, size_t n);
/* True inside a string between whole characters (not after a backslash). */
bool smp_json_in_string(const smp_json_t *j);
/* True when a complete top-level object has been read. */
bool smp_json_complete(const smp_json_t *j);

/* ---- stop strings ---- */

typedef struct smp_stop {
    char **stops;
    size_t n;
    size_t maxlen;
    ox_buf_t held;
} smp_stop_t;

/* Copies the n stop strings (empty ones are ignored). Returns 0 or
 * OX_ENOMEM. Release with smp_stop_free. */
int smp_stop_init(smp_stop_t *st, const char *const *stops, size_t n);
/* Adds generated text. Appends to out the text that can no longer be part of
 * a stop string; text that may be the start of one is held back. When a stop
 * string completes, out gets the text before it, the rest is dropped and
 * *hit is set (generation should end). Returns 0 or OX_ENOMEM. */
int smp_stop_feed(smp_stop_t *st, const char *text, size_t len, ox_buf_t *out, bool *hit);
/* End of generation without a stop: releases held text to out. */
int smp_stop_flush(smp_stop_t *st, ox_buf_t *out);
void smp_stop_free(smp_stop_t *st);

#endif
