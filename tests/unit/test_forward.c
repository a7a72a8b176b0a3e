/* Forward pass against the independent numpy reference (tests/tools/
 * ref_forward.py) on tiny random models of every supported type, for llama
 * and qwen2; plus loader errors. Needs OX_SOURCE_DIR (set by ctest) and
 * Debian's /usr/bin/python3 with numpy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "inference/inference.h"

#define PY "/usr/bin/python3"
#define N_TOK 12

static char tmpdir[256];

static const char *src_dir(void)
{
    const char *s = getenv("OX_SOURCE_DIR");
    return s ? s : ".";
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ox_test_forward_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void make_model(const char *path, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, PY " '%s/tests/tools/quant.py' model '%s' %s", src_dir(), path, args);
    assert_int_equal(system(cmd), 0);
}

static float *ref_logits(const char *model, const int32_t *tok, int n, int n_vocab, int act_q8)
{
    char cmd[2048], list[512] = "", out[300];
    for (int i = 0; i < n; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? "," : "", tok[i]);
    snprintf(out, sizeof out, "%s/ref.f32", tmpdir);
    snprintf(cmd, sizeof cmd, PY " '%s/tests/tools/ref_forward.py' '%s' --f16-kv %s--tokens %s --out '%s'",
             src_dir(), model, act_q8 ? "--act-q8 " : "", list, out);
    assert_int_equal(system(cmd), 0);
    float *r = malloc(sizeof(float) * (size_t)n * n_vocab);
    assert_non_null(r);
    FILE *f = fopen(out, "rb");
    assert_non_null(f);
    assert_int_equal(fread(r, sizeof(float), (size_t)n * n_vocab, f), (size_t)n * n_vocab);
    fclose(f);
    return r;
}

/* worst over positions of max|c - r| / std(r) */
static double compare(const float *c, const float *r, int n_vocab)
{
    double mean = 0, var = 0, maxd = 0;
    for (int i = 0; i < n_vocab; i++)
        mean += r[i];
    mean /= n_vocab;
    for (int i = 0; i < n_vocab; i++) {
        var += (r[i] - mean) * (r[i] - mean);
        double d = fabs((double)c[i] - r[i]);
        if (!(d <= maxd)) /* NaN counts as worst */
            maxd = isnan(d) ? INFINITY : d;
    }
    return maxd / sqrt(var / n_vocab);
}

/* Tolerances relative to the logit std. With f32 activations the engine
 * computes what the reference computes (weights dequantized, K/V rounded to
 * f16) and must agree closely. With its real 8-bit activations it also
 * carries their rounding error (coarser for the K-quants: one scale per 256
 * values). Emulating that rounding in the reference does not give a tighter
 * test: with random weights a 1e-6 change of an activation can flip a
 * rounding that moves the logits by 3%. A wrong RoPE pairing, GQA mapping or
 * cache position gives errors of order 1. */
#define TOL_FLOAT 0.01
#define TOL_Q8 0.06
#define TOL_Q4 0.12
#define TOL_EXACT 0.002

/* Evaluates the sequence in pieces (a batch split by n_batch, single tokens,
 * another batch, a re-evaluation from an earlier position) so chunking, the
 * KV cache across calls, RoPE at many positions and GQA all matter, with the
 * real kernels (tolerance tol) and with f32 activations (TOL_EXACT). */
static void run_case(const char *name, const char *args, int threads, double tol)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, name);
    make_model(path, args);
    infer_model_t *m = NULL;
    char err[256] = "";
    int rc = infer_model_load(path, &m, err, sizeof err);
    if (rc < 0)
        fail_msg("%s: %s", name, err);
    const infer_model_info_t *info = infer_model_info(m);
    int V = (int)info->n_vocab;
    int32_t tok[N_TOK];
    for (int i = 0; i < N_TOK; i++)
        tok[i] = (int32_t)((i * 7919 + 13) % V);
    float *ref = ref_logits(path, tok, N_TOK, V, 0);
    double worst[2] = {0, 0};
    for (int exact = 0; exact < 2; exact++) {
    infer_ctx_params_t p = {.n_ctx = 64, .n_batch = 5, .n_threads = threads,
                            .f32_activations = exact};
    infer_ctx_t *c = NULL;
    assert_int_equal(infer_ctx_create(m, &p, &c), 0);
#define CHECK(logits, pos) \
    worst[exact] = fmax(worst[exact], compare((logits), ref + (size_t)(pos) * V, V))
    /* pieces: [0,7) all logits (steps of 5 and 2 tokens: the 4-token kernels
     * and the single ones), 7 one by one, [8,12) last logits only */
    assert_int_equal(infer_eval(c, tok, 7, 0, 1), 0);
    for (int i = 0; i < 7; i++)
        CHECK(infer_logits(c, i), i);
    for (int i = 7; i < 8; i++) {
        assert_int_equal(infer_eval(c, tok + i, 1, i, 0), 0);
        CHECK(infer_logits(c, -1), i);
    }
    assert_int_equal(infer_eval(c, tok + 8, 4, 8, 0), 0);
    assert_null(infer_logits(c, 1));
    CHECK(infer_logits(c, -1), 11);
    assert_int_equal(infer_ctx_n_past(c), N_TOK);
    /* re-evaluating from an earlier position overwrites the cache consistently */
    assert_int_equal(infer_eval(c, tok + 6, 2, 6, 1), 0);
    CHECK(infer_logits(c, 1), 7);
#undef CHECK
    infer_ctx_free(c);
    }
    print_message("  %-14s max|err|/std: %.4f (tol %.2f), f32 activations %.5f (tol %.3f) "
                  "[%s, %d threads]\n", name, worst[0], tol, worst[1], TOL_EXACT,
                  infer_kernels_name(), threads);
    infer_model_free(m);
    free(ref);
    assert_true(worst[0] < tol);
    assert_true(worst[1] < TOL_EXACT);
}

static void test_llama_types(void **state)
{
    (void)state;
    run_case("llama_f32", "--arch llama --type f32", 2, TOL_FLOAT);
    run_case("llama_f16", "--arch llama --type f16 --tied", 2, TOL_FLOAT);
    run_case("llama_bf16", "--arch llama --type bf16", 1, TOL_FLOAT);
    run_case("llama_q8_0", "--arch llama --type q8_0 --tied", 2, TOL_Q8);
    run_case("llama_q4_0", "--arch llama --type q4_0", 2, TOL_Q4);
    run_case("llama_q5_0", "--arch llama --type q5_0 --rope-freqs", 2, TOL_Q4);
    run_case("llama_q4_k", "--arch llama --type q4_k", 3, TOL_Q4);
    run_case("llama_q6_k", "--arch llama --type q6_k --tied", 2, TOL_Q4);
    run_case("llama_q4_k_m", "--arch llama --type q4_k_m --tied --rope-freqs", 2, TOL_Q4);
    /* a vocabulary that is not a multiple of 4 rows: the matmul chunks end
     * with rows the 4-row kernels cannot take */
    run_case("llama_q8_0_v323", "--arch llama --type q8_0 --tied --vocab 323", 3, TOL_Q8);
    run_case("llama_q4_0_v337", "--arch llama --type q4_0 --vocab 337", 2, TOL_Q4);
    /* more threads than cores: shares of a few rows, some threads descheduled
     * while others take over their chunks */
    run_case("llama_q4_0_7t", "--arch llama --type q4_0 --vocab 330", 7, TOL_Q4);
}

static void test_qwen2_types(void **state)
{
    (void)state;
    run_case("qwen2_f32", "--arch qwen2 --type f32 --heads 8 --kv-heads 2", 2, TOL_FLOAT);
    run_case("qwen2_f16", "--arch qwen2 --type f16", 2, TOL_FLOAT);
    run_case("qwen2_bf16", "--arch qwen2 --type bf16 --tied", 2, TOL_FLOAT);
    run_case("qwen2_q8_0", "--arch qwen2 --type q8_0 --tied", 1, TOL_Q8);
    run_case("qwen2_q4_0", "--arch qwen2 --type q4_0", 2, TOL_Q4);
    run_case("qwen2_q5_0", "--arch qwen2 --type q5_0 --tied", 2, TOL_Q4);
    run_case("qwen2_q4_k", "--arch qwen2 --type q4_k --tied", 2, TOL_Q4);
    run_case("qwen2_q6_k", "--arch qwen2 --type q6_k", 2, TOL_Q4);
    run_case("qwen2_q4_k_m", "--arch qwen2 --type q4_k_m", 2, TOL_Q4);
}

static void expect_load_error(const char *bad, int code, const char *msg)
{
    char path[300], args[64], err[256] = "";
    snprintf(path, sizeof path, "%s/bad_%s.gguf", tmpdir, bad);
    snprintf(args, sizeof args, "--type q8_0 --bad %s", bad);
    make_model(path, args);
    infer_model_t *m = NULL;
    assert_int_equal(infer_model_load(path, &m, err, sizeof err), code);
    assert_null(m);
    if (!strstr(err, msg))
        fail_msg("error '%s' lacks '%s'", err, msg);
}

static void test_load_errors(void **state)
{
    (void)state;
    expect_load_error("arch", OX_EUNSUPPORTED, "unsupported architecture 'phi3'");
    expect_load_error("q2_k", OX_EUNSUPPORTED, "unsupported tensor type Q2_K for blk.0.attn_q.weight");
    expect_load_error("shape", OX_EFORMAT, "blk.1.attn_q.weight has shape [256, 288]");
    expect_load_error("missing", OX_EFORMAT, "missing tensor blk.1.ffn_up.weight");
    infer_model_t *m = NULL;
    char err[256] = "";
    assert_true(infer_model_load("/nonexistent/x.gguf", &m, err, sizeof err) < 0);
}

static void test_eval_args_and_embed(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/embed.gguf", tmpdir);
    make_model(path, "--arch qwen2 --type q8_0");
    infer_model_t *m = NULL;
    char err[256];
    assert_int_equal(infer_model_load(path, &m, err, sizeof err), 0);
    const infer_model_info_t *info = infer_model_info(m);
    assert_string_equal(info->arch, "qwen2");
    assert_int_equal(info->n_embd, 256);
    assert_int_equal(info->n_vocab, 384);
    assert_int_equal(info->n_head_kv, 2);
    assert_true(info->rope_neox);
    infer_ctx_params_t p = {.n_ctx = 16, .n_batch = 4, .n_threads = 2};
    infer_ctx_t *c = NULL;
    assert_int_equal(infer_ctx_create(m, &p, &c), 0);
    int32_t tok[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
    int32_t bad[2] = {1, 384};
    assert_int_equal(infer_eval(c, bad, 2, 0, 0), OX_EINVAL);    /* token out of range */
    assert_int_equal(infer_eval(c, tok, 17, 0, 0), OX_EINVAL);   /* past n_ctx */
    assert_int_equal(infer_eval(c, tok, 2, 1, 0), OX_EINVAL);    /* gap in the cache */
    assert_int_equal(infer_eval(c, tok, 0, 0, 0), OX_EINVAL);
    assert_int_equal(infer_eval(c, tok, 16, 0, 0), 0);
    assert_int_equal(infer_ctx_n_past(c), 16);

    float e1[256], e2[256], e3[256];
    assert_int_equal(infer_embed(c, tok, 6, INFER_POOL_MEAN, e1), 0);
    double n2 = 0;
    for (int i = 0; i < 256; i++)
        n2 += (double)e1[i] * e1[i];
    assert_true(fabs(n2 - 1.0) < 1e-4);
    /* deterministic, and independent of what the cache held before */
    assert_int_equal(infer_eval(c, tok + 3, 5, 0, 0), 0);
    assert_int_equal(infer_embed(c, tok, 6, INFER_POOL_MEAN, e2), 0);
    assert_memory_equal(e1, e2, sizeof e1);
    assert_int_equal(infer_embed(c, tok, 6, INFER_POOL_LAST, e3), 0);
    assert_true(memcmp(e1, e3, sizeof e1) != 0);
    /* thread count change keeps results */
    assert_int_equal(infer_ctx_set_threads(c, 1), 0);
    assert_int_equal(infer_ctx_threads(c), 1);
    assert_int_equal(infer_embed(c, tok, 6, INFER_POOL_MEAN, e2), 0);
    for (int i = 0; i < 256; i++)
        assert_true(fabsf(e1[i] - e2[i]) < 1e-5f);
    infer_ctx_free(c);
    infer_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_eval_args_and_embed),
        cmocka_unit_test(test_llama_types),
        cmocka_unit_test(test_qwen2_types),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
