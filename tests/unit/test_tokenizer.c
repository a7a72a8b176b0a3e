/* Tokenizer unit tests with small hand-made vocabularies. The real Llama 3 /
 * Qwen3 vocabularies are compared against reference encoders in
 * tests/integration/test_tokenizer_ref.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "inference/gguf.h"
#include "inference/tokenizer.h"
#include "inference/unicode.h"

/* ---- a tiny SentencePiece vocabulary ---- */

#define SP "\xE2\x96\x81" /* U+2581 */

static const char *spm_tokens[] = {
    "<unk>", "<s>", "</s>", SP, "h", "e", "l", "o", "w", "r", "d",
    "he", "ll", "llo", "hello", SP "hello", SP "w", "or", "orld", SP "world", "<|eot|>", "orl",
};
/* byte tokens appended after these */

static tok_t *make_spm(void)
{
    enum { NB = sizeof(spm_tokens) / sizeof(spm_tokens[0]) };
    static char bytes[256][8];
    const char *toks[NB + 256];
    float scores[NB + 256];
    int32_t types[NB + 256];
    for (int i = 0; i < NB; i++) {
        toks[i] = spm_tokens[i];
        scores[i] = (float)strlen(spm_tokens[i]); /* longer merges win */
        types[i] = TOK_T_NORMAL;
    }
    types[0] = TOK_T_UNKNOWN;
    types[1] = types[2] = types[20] = TOK_T_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof(bytes[b]), "<0x%02X>", b);
        toks[NB + b] = bytes[b];
        scores[NB + b] = 0;
        types[NB + b] = TOK_T_BYTE;
    }
    tok_desc_t d = {.kind = TOK_SPM, .n_tokens = NB + 256, .tokens = toks, .scores = scores,
                    .types = types, .bos = 1, .eos = 2, .eot = -1, .unk = 0, .pad = -1,
                    .add_bos = -1, .add_eos = -1, .add_space_prefix = -1};
    tok_t *t = NULL;
    char err[128];
    assert_int_equal(tok_load_desc(&d, &t, err, sizeof(err)), 0);
    return t;
}

static int32_t spm_byte(int b)
{
    return (int32_t)(sizeof(spm_tokens) / sizeof(spm_tokens[0])) + b;
}

static void assert_ids(const int32_t *got, size_t n, const int32_t *want, size_t wn)
{
    if (n != wn) {
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %d", got[i]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(n, wn);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], want[i]);
}

static void test_spm_encode(void **state)
{
    (void)state;
    tok_t *t = make_spm();
    int32_t *ids;
    size_t n;
    /* " hello world" with the space prefix: highest-score merges win. */
    assert_int_equal(tok_encode(t, "hello world", 11, true, true, &ids, &n), 0);
    int32_t want[] = {1, 15, 19};
    assert_ids(ids, n, want, 3);
    ox_buf_t b = OX_BUF_INIT;
    assert_int_equal(tok_decode(t, ids, n, false, &b), 0);
    assert_string_equal(b.data, " hello world");
    free(ids);
    ox_buf_free(&b);

    /* Unknown characters fall back to UTF-8 bytes. */
    assert_int_equal(tok_encode(t, "h\xC3\xA9", 3, false, true, &ids, &n), 0);
    int32_t want2[] = {3, 4, spm_byte(0xC3), spm_byte(0xA9)};
    assert_ids(ids, n, want2, 4);
    assert_int_equal(tok_decode(t, ids, n, false, &b), 0);
    assert_string_equal(b.data, " h\xC3\xA9");
    free(ids);
    ox_buf_free(&b);

    /* Special tokens are cut out first; text after one gets its own prefix. */
    assert_int_equal(tok_encode(t, "hello<|eot|>world", 17, false, true, &ids, &n), 0);
    int32_t want3[] = {15, 20, 19};
    assert_ids(ids, n, want3, 3);
    free(ids);
    /* ... unless special parsing is off. */
    assert_int_equal(tok_encode(t, "<|eot|>", 7, false, false, &ids, &n), 0);
    assert_true(n > 1);
    for (size_t i = 0; i < n; i++)
        assert_int_not_equal(ids[i], 20);
    free(ids);

    /* Empty input: only BOS. */
    assert_int_equal(tok_encode(t, "", 0, true, true, &ids, &n), 0);
    int32_t want4[] = {1};
    assert_ids(ids, n, want4, 1);
    free(ids);
    assert_true(tok_is_eog(t, 2));
    assert_false(tok_is_eog(t, 1));
    tok_free(t);
}

/* ---- a tiny byte-level BPE vocabulary ---- */

/* GPT-2 byte-to-unicode text of byte b. */
static void byte_char(int b, char *out)
{
    int n = 0, cp = b;
    bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    if (!keep) {
        cp = 256;
        for (int x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255)))
                cp++;
    }
    n = (int)ux_encode((uint32_t)cp, out);
    out[n] = 0;
}

/* 256 byte tokens, then extra tokens and merges given by the test. */
static tok_t *make_bpe(tok_pre_t pre, const char **extra, size_t nextra, const char **merges,
                       size_t nmerges)
{
    static char bytes[256][8];
    const char *toks[300];
    int32_t types[300];
    for (int b = 0; b < 256; b++) {
        byte_char(b, bytes[b]);
        toks[b] = bytes[b];
        types[b] = TOK_T_NORMAL;
    }
    for (size_t i = 0; i < nextra; i++) {
        toks[256 + i] = extra[i];
        types[256 + i] = extra[i][0] == '<' ? TOK_T_CONTROL : TOK_T_NORMAL;
    }
    tok_desc_t d = {.kind = TOK_BPE, .pre = pre, .n_tokens = 256 + nextra, .tokens = toks,
                    .types = types, .n_merges = nmerges, .merges = merges, .bos = -1,
                    .eos = -1, .eot = -1, .unk = -1, .pad = -1, .add_bos = -1, .add_eos = -1,
                    .add_space_prefix = -1};
    tok_t *t = NULL;
    char err[128];
    assert_int_equal(tok_load_desc(&d, &t, err, sizeof(err)), 0);
    return t;
}

static void test_bpe_merge_order(void **state)
{
    (void)state;
    const char *extra[] = {"ab", "bc", "abc"};
    const char *m1[] = {"a b", "b c", "ab c"};
    tok_t *t = make_bpe(TOK_PRE_QWEN2, extra, 3, m1, 3);
    int32_t *ids;
    size_t n;
    assert_int_equal(tok_encode(t, "abc", 3, true, true, &ids, &n), 0);
    int32_t w1[] = {258}; /* a+b first (rank 0), then ab+c */
    assert_ids(ids, n, w1, 1);
    free(ids);
    tok_free(t);

    const char *m2[] = {"b c", "a b"};
    t = make_bpe(TOK_PRE_QWEN2, extra, 3, m2, 2);
    assert_int_equal(tok_encode(t, "abc", 3, true, true, &ids, &n), 0);
    int32_t w2[] = {'a', 257}; /* b+c wins; "a bc" has no merge */
    assert_ids(ids, n, w2, 2);
    free(ids);
    tok_free(t);

    /* llama-bpe takes a pre-token found whole in the vocab even without a
     * merge path to it. */
    t = make_bpe(TOK_PRE_LLAMA3, extra, 3, m2, 2);
    assert_int_equal(tok_encode(t, "abc", 3, false, true, &ids, &n), 0);
    int32_t w3[] = {258};
    assert_ids(ids, n, w3, 1);
    free(ids);
    tok_free(t);
}

/* Control tokens are matched only with parse_special; user-defined ones
 * always (llama.cpp semantics). */
static void test_special_kinds(void **state)
{
    (void)state;
    static char bytes[256][8];
    const char *toks[258];
    int32_t types[258];
    for (int b = 0; b < 256; b++) {
        byte_char(b, bytes[b]);
        toks[b] = bytes[b];
        types[b] = TOK_T_NORMAL;
    }
    toks[256] = "<ctl>";
    types[256] = TOK_T_CONTROL;
    toks[257] = "<usr>";
    types[257] = TOK_T_USER;
    tok_desc_t d = {.kind = TOK_BPE, .pre = TOK_PRE_QWEN2, .n_tokens = 258, .tokens = toks,
                    .types = types, .bos = -1, .eos = -1, .eot = -1, .unk = -1, .pad = -1,
                    .add_bos = -1, .add_eos = -1, .add_space_prefix = -1};
    tok_t *t = NULL;
    char err[64];
    assert_int_equal(tok_load_desc(&d, &t, err, sizeof(err)), 0);
    int32_t *ids;
    size_t n;
    assert_int_equal(tok_encode(t, "<ctl><usr>", 10, false, true, &ids, &n), 0);
    int32_t w1[] = {256, 257};
    assert_ids(ids, n, w1, 2);
    free(ids);
    assert_int_equal(tok_encode(t, "<ctl><usr>", 10, false, false, &ids, &n), 0);
    assert_int_equal(n, 6); /* "<", "ctl", ">" ... as bytes, then <usr> */
    assert_int_equal(ids[n - 1], 257);
    for (size_t i = 0; i + 1 < n; i++)
        assert_true(ids[i] < 256);
    ox_buf_t b = OX_BUF_INIT;
    int32_t both[] = {256, 257};
    assert_int_equal(tok_decode(t, both, 2, false, &b), 0);
    assert_string_equal(b.data, "<usr>"); /* control tokens render only on request */
    ox_buf_reset(&b);
    assert_int_equal(tok_decode(t, both, 2, true, &b), 0);
    assert_string_equal(b.data, "<ctl><usr>");
    ox_buf_free(&b);
    free(ids);
    tok_free(t);
}

/* Pre-token boundaries are visible with a bytes-only vocabulary plus one
 * merge per pair: merges never cross a pre-token, so the ids show the split. */
static void test_bpe_pretokenize(void **state)
{
    (void)state;
    const char *extra[] = {"12", "123", "Ġ1"};
    const char *merges[] = {"1 2", "12 3", "Ġ 1"};
    tok_t *t = make_bpe(TOK_PRE_LLAMA3, extra, 3, merges, 3);
    int32_t *ids;
    size_t n;
    /* llama3: digits in groups of three: "123" "123" "1" */
    assert_int_equal(tok_encode(t, "1231231", 7, false, true, &ids, &n), 0);
    int32_t w1[] = {257, 257, '1'};
    assert_ids(ids, n, w1, 3);
    free(ids);
    /* " 1": the space is its own pre-token (not a letter run), so no Ġ1. */
    assert_int_equal(tok_encode(t, " 1", 2, false, true, &ids, &n), 0);
    char sp[8];
    byte_char(' ', sp);
    assert_int_equal(n, 2);
    free(ids);
    tok_free(t);

    t = make_bpe(TOK_PRE_QWEN2, extra, 3, merges, 3);
    assert_int_equal(tok_encode(t, "123", 3, false, true, &ids, &n), 0);
    int32_t w2[] = {'1', '2', '3'}; /* qwen2: one digit per pre-token */
    assert_ids(ids, n, w2, 3);
    free(ids);
    tok_free(t);
}

static void test_bpe_roundtrip_bytes(void **state)
{
    (void)state;
    tok_t *t = make_bpe(TOK_PRE_LLAMA3, NULL, 0, NULL, 0);
    const char *s = "It's  \t\r\n caf\xC3\xA9 \xF0\x9F\x98\x80 42!!\n";
    int32_t *ids;
    size_t n;
    assert_int_equal(tok_encode(t, s, strlen(s), true, true, &ids, &n), 0);
    assert_int_equal(n, strlen(s)); /* one token per byte, no BOS id */
    ox_buf_t b = OX_BUF_INIT;
    assert_int_equal(tok_decode(t, ids, n, false, &b), 0);
    assert_int_equal(b.len, strlen(s));
    assert_memory_equal(b.data, s, b.len);
    ox_buf_free(&b);
    free(ids);
    assert_int_equal(tok_decode_token(t, 99999, false, &b), OX_EINVAL);
    assert_int_equal(tok_decode_token(t, -1, false, &b), OX_EINVAL);
    ox_buf_free(&b);
    tok_free(t);
}

static void test_stream_utf8(void **state)
{
    (void)state;
    tok_t *t = make_spm();
    tok_stream_t s;
    tok_stream_init(&s, t);
    ox_buf_t out = OX_BUF_INIT;
    /* U+4F60 = E4 BD A0 arrives one byte token at a time. */
    assert_int_equal(tok_stream_push(&s, spm_byte(0xE4), &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(tok_stream_push(&s, spm_byte(0xBD), &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(tok_stream_push(&s, spm_byte(0xA0), &out), 0);
    assert_string_equal(out.data, "\xE4\xBD\xA0");
    assert_int_equal(tok_stream_push(&s, 14, &out), 0); /* "hello" */
    assert_int_equal(tok_stream_push(&s, 2, &out), 0);  /* </s>: renders nothing */
    assert_string_equal(out.data, "\xE4\xBD\xA0hello");
    /* An incomplete character at the end becomes U+FFFD on flush. */
    assert_int_equal(tok_stream_push(&s, spm_byte(0xF0), &out), 0);
    assert_int_equal(tok_stream_push(&s, spm_byte(0x9F), &out), 0);
    assert_string_equal(out.data, "\xE4\xBD\xA0hello");
    assert_int_equal(tok_stream_flush(&s, &out), 0);
    assert_string_equal(out.data, "\xE4\xBD\xA0hello\xEF\xBF\xBD\xEF\xBF\xBD");
    /* A stray continuation byte is replaced at once, not held. */
    ox_buf_reset(&out);
    assert_int_equal(tok_stream_push(&s, spm_byte(0x80), &out), 0);
    assert_string_equal(out.data, "\xEF\xBF\xBD");
    tok_stream_free(&s);
    ox_buf_free(&out);
    tok_free(t);
}

static void test_unicode_classes(void **state)
{
    (void)state;
    assert_int_equal(ux_flags('a'), UX_LETTER);
    assert_int_equal(ux_flags(0xE9), UX_LETTER);   /* é */
    assert_int_equal(ux_flags(0x4E2D), UX_LETTER); /* 中 */
    assert_int_equal(ux_flags(0x0663), UX_NUMBER); /* Arabic-Indic 3 */
    assert_int_equal(ux_flags(0x2460), UX_NUMBER); /* circled 1 (No) */
    assert_int_equal(ux_flags(0x3000), UX_SPACE);
    assert_int_equal(ux_flags(0x00A0), UX_SPACE);
    assert_int_equal(ux_flags(0x0085), UX_SPACE);
    assert_int_equal(ux_flags(0x200B), 0);         /* zero width space is Cf */
    assert_int_equal(ux_flags(0x1F600), 0);        /* emoji */
    assert_int_equal(ux_flags('!'), 0);
    uint32_t cp;
    assert_int_equal(ux_decode("\xF0\x9F\x98\x80", 4, &cp), 4);
    assert_int_equal(cp, 0x1F600);
    assert_int_equal(ux_decode("\xC0\x80", 2, &cp), 1); /* overlong */
    assert_int_equal(cp, 0xFFFD);
    assert_int_equal(ux_decode("\xED\xA0\x80", 3, &cp), 1); /* surrogate */
    assert_int_equal(ux_decode("\xE4\xBD", 2, &cp), 1);     /* truncated */
    assert_int_equal(ux_incomplete_tail("a\xE4\xBD", 3), 2);
    assert_int_equal(ux_incomplete_tail("a\xE4\xBD\xA0", 4), 0);
    assert_int_equal(ux_incomplete_tail("\xF0", 1), 1);
    assert_int_equal(ux_incomplete_tail("\x80\x80\x80\x80", 4), 0);
}

static void test_bad_vocab(void **state)
{
    (void)state;
    tok_t *t = NULL;
    char err[128] = "";
    tok_desc_t d = {.kind = TOK_BPE, .n_tokens = 0, .bos = -1, .eos = -1, .eot = -1,
                    .unk = -1, .pad = -1, .add_bos = -1, .add_eos = -1};
    assert_int_equal(tok_load_desc(&d, &t, err, sizeof(err)), OX_EFORMAT);
    assert_null(t);
    const char *toks[] = {"a", "b", "ab"};
    const char *merges[] = {"ab"};
    d.n_tokens = 3;
    d.tokens = toks;
    d.n_merges = 1;
    d.merges = merges;
    assert_int_equal(tok_load_desc(&d, &t, err, sizeof(err)), OX_EFORMAT);
    assert_non_null(strstr(err, "merge"));
    assert_null(t);
    d.kind = 7;
    assert_int_equal(tok_load_desc(&d, &t, err, sizeof(err)), OX_EUNSUPPORTED);
}

/* ---- GGUF loading: a minimal in-memory GGUF writer ---- */

static void put(ox_buf_t *b, const void *p, size_t n) { assert_int_equal(ox_buf_append(b, p, n), 0); }
static void put_u32(ox_buf_t *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(ox_buf_t *b, uint64_t v) { put(b, &v, 8); }
static void put_str(ox_buf_t *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }

static void kv_str(ox_buf_t *b, const char *k, const char *v)
{
    put_str(b, k);
    put_u32(b, GGUF_T_STRING);
    put_str(b, v);
}

static void kv_strs(ox_buf_t *b, const char *k, const char *const *v, size_t n)
{
    put_str(b, k);
    put_u32(b, GGUF_T_ARRAY);
    put_u32(b, GGUF_T_STRING);
    put_u64(b, n);
    for (size_t i = 0; i < n; i++)
        put_str(b, v[i]);
}

static void gguf_start(ox_buf_t *b, uint64_t n_kv)
{
    put(b, "GGUF", 4);
    put_u32(b, 3);
    put_u64(b, 0);
    put_u64(b, n_kv);
}

static void test_load_gguf(void **state)
{
    (void)state;
    const char *toks[] = {"<unk>", "<s>", "</s>", SP, "a", SP "a"};
    ox_buf_t b = OX_BUF_INIT;
    gguf_start(&b, 2);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    kv_strs(&b, "tokenizer.ggml.tokens", toks, 6);
    gguf_t *g = NULL;
    char err[256] = "";
    assert_int_equal(gguf_open_buffer(b.data, b.len, &g, err, sizeof(err)), 0);
    tok_t *t = NULL;
    assert_int_equal(tok_load(g, &t, err, sizeof(err)), 0);
    gguf_close(g);
    int32_t *ids;
    size_t n;
    assert_int_equal(tok_encode(t, "a", 1, false, true, &ids, &n), 0);
    int32_t want[] = {5};
    assert_ids(ids, n, want, 1);
    free(ids);
    tok_free(t);
    ox_buf_free(&b);

    /* Unknown tokenizer model: a clear error. */
    gguf_start(&b, 2);
    kv_str(&b, "tokenizer.ggml.model", "bert");
    kv_strs(&b, "tokenizer.ggml.tokens", toks, 6);
    assert_int_equal(gguf_open_buffer(b.data, b.len, &g, err, sizeof(err)), 0);
    assert_int_equal(tok_load(g, &t, err, sizeof(err)), OX_EUNSUPPORTED);
    assert_non_null(strstr(err, "bert"));
    gguf_close(g);
    ox_buf_free(&b);

    /* BPE without merges, and no tokens at all. */
    gguf_start(&b, 2);
    kv_str(&b, "tokenizer.ggml.model", "gpt2");
    kv_strs(&b, "tokenizer.ggml.tokens", toks, 6);
    assert_int_equal(gguf_open_buffer(b.data, b.len, &g, err, sizeof(err)), 0);
    assert_int_equal(tok_load(g, &t, err, sizeof(err)), OX_EFORMAT);
    assert_non_null(strstr(err, "merges"));
    gguf_close(g);
    ox_buf_free(&b);
    gguf_start(&b, 1);
    kv_str(&b, "tokenizer.ggml.model", "llama");
    assert_int_equal(gguf_open_buffer(b.data, b.len, &g, err, sizeof(err)), 0);
    assert_int_equal(tok_load(g, &t, err, sizeof(err)), OX_EFORMAT);
    assert_null(t);
    gguf_close(g);
    ox_buf_free(&b);
}

/* Encoding is near-linear: a long run with no merges must not go quadratic
 * (bounded by work, not time: 1 MiB of 'a' through the byte vocab). */
static void test_long_input(void **state)
{
    (void)state;
    const char *extra[] = {"aa"};
    const char *merges[] = {"a a"};
    tok_t *t = make_bpe(TOK_PRE_LLAMA3, extra, 1, merges, 1);
    size_t len = 1 << 20;
    char *s = malloc(len);
    memset(s, 'a', len);
    int32_t *ids;
    size_t n;
    assert_int_equal(tok_encode(t, s, len, false, true, &ids, &n), 0);
    assert_int_equal(n, len / 2);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], 256);
    free(ids);
    free(s);
    tok_free(t);
}

/* Random bytes (mostly invalid UTF-8) round-trip through both encoders, and
 * the streaming detokenizer yields the sanitised text. */
static void test_random_roundtrip(void **state)
{
    (void)state;
    const char *extra[] = {"ab", "Ġa"};
    const char *merges[] = {"a b", "Ġ a"};
    tok_t *bpe = make_bpe(TOK_PRE_LLAMA3, extra, 2, merges, 2);
    tok_t *spm = make_spm();
    unsigned seed = 99;
    for (int it = 0; it < 2000; it++) {
        char in[64];
        size_t n = (seed = seed * 1103515245u + 12345u) >> 16 & 63;
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 16;
            /* bias towards ASCII letters/spaces so merges happen too */
            in[i] = (r & 3) == 0 ? "ab hello "[r % 9] : (char)(r >> 3);
        }
        if (memmem(in, n, "\xE2\x96\x81", 3))
            continue; /* U+2581 is SentencePiece's space: not round-trippable */
        for (int k = 0; k < 2; k++) {
            tok_t *t = k ? spm : bpe;
            int32_t *ids;
            size_t ni;
            assert_int_equal(tok_encode(t, in, n, false, false, &ids, &ni), 0);
            ox_buf_t dec = OX_BUF_INIT, st = OX_BUF_INIT, want = OX_BUF_INIT;
            assert_int_equal(tok_decode(t, ids, ni, false, &dec), 0);
            if (k && n)
                ox_buf_puts(&want, " ");
            ox_buf_append(&want, in, n);
            assert_int_equal(dec.len, want.len);
            assert_memory_equal(dec.data ? dec.data : "", want.data ? want.data : "", dec.len);
            tok_stream_t ts;
            tok_stream_init(&ts, t);
            for (size_t i = 0; i < ni; i++)
                assert_int_equal(tok_stream_push(&ts, ids[i], &st), 0);
            assert_int_equal(tok_stream_flush(&ts, &st), 0);
            tok_stream_free(&ts);
            ox_buf_t clean = OX_BUF_INIT;
            tok_utf8_sanitize(want.data ? want.data : "", want.len, &clean);
            assert_int_equal(st.len, clean.len);
            assert_memory_equal(st.data ? st.data : "", clean.data ? clean.data : "", st.len);
            ox_buf_free(&clean);
            ox_buf_free(&dec);
            ox_buf_free(&st);
            ox_buf_free(&want);
            free(ids);
        }
    }
    tok_free(bpe);
    tok_free(spm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spm_encode),        cmocka_unit_test(test_bpe_merge_order),
        cmocka_unit_test(test_bpe_pretokenize),   cmocka_unit_test(test_bpe_roundtrip_bytes),
        cmocka_unit_test(test_stream_utf8),       cmocka_unit_test(test_unicode_classes),
        cmocka_unit_test(test_bad_vocab),         cmocka_unit_test(test_load_gguf),
        cmocka_unit_test(test_long_input),        cmocka_unit_test(test_random_roundtrip),
        cmocka_unit_test(test_special_kinds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
