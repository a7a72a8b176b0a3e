/* Sampler tests: greedy, seeded determinism, top_k/top_p/min_p, penalties,
 * the JSON byte machine and constraint, stop strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "inference/sampler.h"
#include "inference/tokenizer.h"
#include "inference/unicode.h"

static smp_t *mk(float temp, int top_k, float top_p, float min_p, float rep, int64_t seed)
{
    smp_params_t p;
    smp_params_default(&p);
    p.temperature = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = rep;
    p.seed = seed;
    smp_t *s = NULL;
    char err[128];
    assert_int_equal(smp_new(&p, NULL, &s, err, sizeof(err)), 0);
    return s;
}

static void test_greedy(void **state)
{
    (void)state;
    smp_t *s = mk(0, 40, 0.9f, 0, 1.0f, 1);
    float l[5] = {0.1f, 3.0f, -1.0f, 3.0f, 2.0f};
    assert_int_equal(smp_sample(s, l, 5), 1); /* ties: lowest id */
    float l2[3] = {-INFINITY, -5.0f, -INFINITY};
    assert_int_equal(smp_sample(s, l2, 3), 1);
    smp_free(s);
    /* top_k 1 is greedy at any temperature. */
    s = mk(1.5f, 1, 1.0f, 0, 1.0f, 7);
    for (int i = 0; i < 50; i++) {
        float l3[4] = {1.0f, 1.2f, 0.3f, 1.19f};
        assert_int_equal(smp_sample(s, l3, 4), 1);
    }
    smp_free(s);
}

static void draw(smp_t *s, const float *logits, size_t n, int *counts, int rounds)
{
    float *l = malloc(n * sizeof(*l));
    for (int r = 0; r < rounds; r++) {
        memcpy(l, logits, n * sizeof(*l));
        int32_t id = smp_sample(s, l, n);
        assert_true(id >= 0 && (size_t)id < n);
        counts[id]++;
    }
    free(l);
}

static void test_seed_and_distribution(void **state)
{
    (void)state;
    float lg[8];
    for (int i = 0; i < 8; i++)
        lg[i] = 0.1f * (float)i;
    smp_t *a = mk(1.0f, 0, 1.0f, 0, 1.0f, 42), *b = mk(1.0f, 0, 1.0f, 0, 1.0f, 42),
          *c = mk(1.0f, 0, 1.0f, 0, 1.0f, 43);
    int diff = 0;
    for (int i = 0; i < 100; i++) {
        float x[8], y[8], z[8];
        memcpy(x, lg, sizeof(x));
        memcpy(y, lg, sizeof(y));
        memcpy(z, lg, sizeof(z));
        int32_t ia = smp_sample(a, x, 8), ib = smp_sample(b, y, 8), ic = smp_sample(c, z, 8);
        assert_int_equal(ia, ib);
        diff += ia != ic;
    }
    assert_true(diff > 20);
    smp_free(a);
    smp_free(b);
    smp_free(c);

    /* Empirical frequencies follow softmax(logits / T). */
    float p3[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    int counts[3] = {0};
    smp_t *s = mk(1.0f, 0, 1.0f, 0, 1.0f, 5);
    draw(s, p3, 3, counts, 20000);
    assert_true(fabs(counts[0] / 20000.0 - 0.5) < 0.02);
    assert_true(fabs(counts[1] / 20000.0 - 0.3) < 0.02);
    assert_true(fabs(counts[2] / 20000.0 - 0.2) < 0.02);
    smp_free(s);
    /* Temperature 0.5 squares the odds: 25:9:4. */
    memset(counts, 0, sizeof(counts));
    s = mk(0.5f, 0, 1.0f, 0, 1.0f, 6);
    draw(s, p3, 3, counts, 20000);
    assert_true(fabs(counts[0] / 20000.0 - 25.0 / 38) < 0.02);
    smp_free(s);
    /* top_p 0.6: 0.5 alone is not enough, so tokens 0 and 1 remain. */
    memset(counts, 0, sizeof(counts));
    s = mk(1.0f, 0, 0.6f, 0, 1.0f, 8);
    draw(s, p3, 3, counts, 5000);
    assert_int_equal(counts[2], 0);
    assert_true(counts[1] > 1000);
    smp_free(s);
    /* min_p 0.5: p >= 0.25 survives. */
    memset(counts, 0, sizeof(counts));
    s = mk(1.0f, 0, 1.0f, 0.5f, 1.0f, 9);
    draw(s, p3, 3, counts, 5000);
    assert_int_equal(counts[2], 0);
    assert_true(counts[1] > 1000);
    smp_free(s);
    /* top_k 2 over a large vocabulary: only the two best appear. */
    size_t n = 50000;
    float *big = malloc(n * sizeof(*big));
    for (size_t i = 0; i < n; i++)
        big[i] = (float)((i * 7919) % 1000) / 1000.0f;
    big[123] = 5.0f;
    big[40000] = 5.1f;
    int *bc = calloc(n, sizeof(*bc));
    s = mk(1.0f, 2, 1.0f, 0, 1.0f, 10);
    draw(s, big, n, bc, 300);
    assert_int_equal(bc[123] + bc[40000], 300);
    assert_true(bc[123] > 50 && bc[40000] > 50);
    smp_free(s);
    free(bc);
    free(big);
}

static void test_penalties(void **state)
{
    (void)state;
    smp_t *s = mk(0, 40, 1.0f, 0, 1.1f, 1);
    float l[3] = {2.0f, 1.9f, 0.0f};
    assert_int_equal(smp_sample(s, l, 3), 0);
    smp_accept(s, 0);
    float l2[3] = {2.0f, 1.9f, 0.0f}; /* 2.0 / 1.1 = 1.82 < 1.9 */
    assert_int_equal(smp_sample(s, l2, 3), 1);
    float l3[3] = {-1.0f, -1.05f, -3.0f}; /* negative: -1.0 * 1.1 = -1.1 */
    assert_int_equal(smp_sample(s, l3, 3), 1);
    smp_free(s);
    /* repeat_last_n bounds the window. */
    smp_params_t p;
    smp_params_default(&p);
    p.temperature = 0;
    p.repeat_last_n = 2;
    char err[64];
    assert_int_equal(smp_new(&p, NULL, &s, err, sizeof(err)), 0);
    int32_t prompt[3] = {0, 2, 2};
    smp_accept_prompt(s, prompt, 3); /* token 0 fell out of the window */
    float l4[3] = {2.0f, 1.9f, 0.0f};
    assert_int_equal(smp_sample(s, l4, 3), 0);
    smp_free(s);
    /* JSON without a tokenizer is refused. */
    p.json = true;
    assert_int_equal(smp_new(&p, NULL, &s, err, sizeof(err)), OX_EINVAL);
}

static bool json_ok(const char *s)
{
    smp_json_t j;
    smp_json_init(&j);
    return smp_json_feed(&j, s, strlen(s)) && smp_json_complete(&j);
}

static bool json_prefix_ok(const char *s)
{
    smp_json_t j;
    smp_json_init(&j);
    return smp_json_feed(&j, s, strlen(s));
}

static void test_json_machine(void **state)
{
    (void)state;
    const char *good[] = {
        "{}", "{ }", "{\"a\":1}", "{\"a\" : [1, -2.5e3, 0, 0.5, 1E+2, true, false, null]}",
        "{\"k\":{\"b\":\"x\\u00e9\\n\\\"\"},\"z\":[]}\n", "{\"\xC3\xA9\xE4\xBD\xA0\":\"\xF0\x9F\x98\x80\"}",
        "{\"a\":[[[]],{}]}",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(json_ok(good[i]));
        /* Every prefix is accepted and only the whole is complete. */
        for (size_t k = 0; k < strlen(good[i]); k++) {
            char pre[256];
            memcpy(pre, good[i], k);
            pre[k] = 0;
            assert_true(json_prefix_ok(pre));
            smp_json_t j;
            smp_json_init(&j);
            smp_json_feed(&j, pre, k);
            if (k < strlen(good[i]) - (good[i][strlen(good[i]) - 1] == '\n'))
                assert_false(smp_json_complete(&j));
        }
        /* and an independent parser agrees */
        json_error_t je;
        json_t *v = json_loads(good[i], 0, &je);
        assert_non_null(v);
        json_decref(v);
    }
    const char *bad[] = {"[", " {", "{\"a\" 1}", "{\"a\":01}", "{,}", "{\"a\":tru}", "{\"a\":1,}",
                         "{\"a\":1]", "{\"a\":\"\n\"}", "{\"a\":\"\\x\"}", "{\"a\":-}", "{\"a\":1.}",
                         "{} {}", "{\"a\":\"\x80\"}", "{\"a\":\"\xF4\xB4\x8C\xB8\"}", "{\"a\":\"\xED\xA0\x80\"}",
                         "{\"a\":\"\xE0\x80\x80\"}", "{a:1}", "{\"a\":1e}", "{\"a\":\"\\u12g4\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(json_ok(bad[i]));
    assert_false(json_prefix_ok("{\"a\":1]"));
    /* Bounded whitespace and depth. */
    char ws[64] = "{";
    memset(ws + 1, ' ', 30);
    ws[31] = 0;
    assert_false(json_prefix_ok(ws));
    char deep[300] = "{\"a\":";
    size_t o = strlen(deep);
    for (int i = 0; i < 200; i++)
        deep[o++] = '[';
    deep[o] = 0;
    assert_false(json_prefix_ok(deep));
}

/* Byte vocabulary + a few multi-byte tokens + an EOS control token. */
static tok_t *make_vocab(void)
{
    static char bytes[256][8];
    const char *toks[270];
    int32_t types[270];
    int next = 256;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        size_t l = ux_encode((uint32_t)(keep ? b : next++), bytes[b]);
        bytes[b][l] = 0;
        toks[b] = bytes[b];
        types[b] = TOK_T_NORMAL;
    }
    const char *extra[] = {"{\"", "\":", "\"}", "Ġtrue", "hello", "<|eot|>", "<|ctl|>"};
    for (int i = 0; i < 7; i++) {
        toks[256 + i] = extra[i];
        types[256 + i] = i >= 5 ? TOK_T_CONTROL : TOK_T_NORMAL;
    }
    tok_desc_t d = {.kind = TOK_BPE, .pre = TOK_PRE_LLAMA3, .n_tokens = 263, .tokens = toks,
                    .types = types, .bos = -1, .eos = 261, .eot = -1, .unk = -1, .pad = -1,
                    .add_bos = -1, .add_eos = -1, .add_space_prefix = -1};
    tok_t *t = NULL;
    char err[128];
    assert_int_equal(tok_load_desc(&d, &t, err, sizeof(err)), 0);
    return t;
}

static void test_json_constraint(void **state)
{
    (void)state;
    tok_t *t = make_vocab();
    size_t n = tok_n_vocab(t);
    int completed = 0;
    for (int seed = 0; seed < 40; seed++) {
        smp_params_t p;
        smp_params_default(&p);
        p.temperature = 1.0f;
        p.top_k = 0;
        p.top_p = 1.0f;
        p.json = true;
        p.seed = seed;
        smp_t *s = NULL;
        char err[128];
        assert_int_equal(smp_new(&p, t, &s, err, sizeof(err)), 0);
        ox_buf_t out = OX_BUF_INIT;
        unsigned r = (unsigned)seed * 2654435761u;
        bool eos = false;
        float *l = malloc(n * sizeof(*l));
        for (int step = 0; step < 400 && !eos; step++) {
            for (size_t i = 0; i < n; i++) {
                r = r * 1103515245u + 12345u;
                l[i] = (float)(r >> 16) / 65536.0f;
            }
            /* Nudge towards closing so most runs finish. */
            l['}'] += 3;
            l[']'] += 2;
            l['"'] += 2;
            l['1'] += 2;
            l[261] += 6;
            l[262] += 100; /* a control token must never be picked */
            int32_t id = smp_sample(s, l, n);
            assert_true(id >= 0);
            assert_int_not_equal(id, 262);
            if (tok_is_eog(t, id)) {
                eos = true;
                break;
            }
            smp_accept(s, id);
            if (getenv("DBG"))
                fprintf(stderr, "id %d\n", id);
            tok_decode_token(t, id, false, &out);
        }
        free(l);
        if (eos) {
            /* EOS only once the object is complete; jansson must agree. */
            assert_true(smp_json_done(s));
            json_error_t je;
            json_t *v = json_loadb(out.data, out.len, 0, &je);
            if (!v)
            {
                fprintf(stderr, "not JSON (%s):", je.text);
                for (size_t q = 0; q < out.len; q++)
                    fprintf(stderr, " %02x", (unsigned char)out.data[q]);
                fprintf(stderr, "\n");
            }
            assert_non_null(v);
            assert_true(json_is_object(v));
            json_decref(v);
            completed++;
        } else {
            assert_true(json_prefix_ok(out.data));
        }
        ox_buf_free(&out);
        smp_free(s);
    }
    assert_true(completed > 20);
    tok_free(t);
}

static void test_stop_strings(void **state)
{
    (void)state;
    const char *stops[] = {"world", "\n\n", "", "<|user|>"};
    smp_stop_t st;
    assert_int_equal(smp_stop_init(&st, stops, 4), 0);
    ox_buf_t out = OX_BUF_INIT;
    bool hit;
    assert_int_equal(smp_stop_feed(&st, "Hello wor", 9, &out, &hit), 0);
    assert_false(hit);
    assert_string_equal(out.data, "Hello "); /* "wor" may start "world" */
    assert_int_equal(smp_stop_feed(&st, "m", 1, &out, &hit), 0);
    assert_false(hit);
    assert_string_equal(out.data, "Hello worm");
    assert_int_equal(smp_stop_feed(&st, " <|us", 5, &out, &hit), 0);
    assert_string_equal(out.data, "Hello worm ");
    assert_int_equal(smp_stop_feed(&st, "er|> tail", 9, &out, &hit), 0);
    assert_true(hit);
    assert_string_equal(out.data, "Hello worm ");
    smp_stop_free(&st);

    /* The earliest stop wins, even across pieces; flush releases held text. */
    assert_int_equal(smp_stop_init(&st, stops, 4), 0);
    ox_buf_reset(&out);
    assert_int_equal(smp_stop_feed(&st, "a\n", 2, &out, &hit), 0);
    assert_string_equal(out.data, "a");
    assert_int_equal(smp_stop_feed(&st, "\nworld", 6, &out, &hit), 0);
    assert_true(hit);
    assert_string_equal(out.data, "a");
    smp_stop_free(&st);
    assert_int_equal(smp_stop_init(&st, stops, 4), 0);
    ox_buf_reset(&out);
    assert_int_equal(smp_stop_feed(&st, "the end\n", 8, &out, &hit), 0);
    assert_string_equal(out.data, "the end");
    assert_int_equal(smp_stop_flush(&st, &out), 0);
    assert_string_equal(out.data, "the end\n");
    smp_stop_free(&st);
    /* No stops: text passes straight through. */
    assert_int_equal(smp_stop_init(&st, NULL, 0), 0);
    ox_buf_reset(&out);
    assert_int_equal(smp_stop_feed(&st, "wor", 3, &out, &hit), 0);
    assert_string_equal(out.data, "wor");
    smp_stop_free(&st);
    ox_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),         cmocka_unit_test(test_seed_and_distribution),
        cmocka_unit_test(test_penalties),      cmocka_unit_test(test_json_machine),
        cmocka_unit_test(test_json_constraint), cmocka_unit_test(test_stop_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
