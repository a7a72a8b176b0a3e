/* Quant formats and kernels: every type of the traits table, every ISA the
 * CPU has, against the scalar kernel and against dequantize + float dot; f16
 * conversion; attention helpers; the thread pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inference/quant.h"
#include "inference/threadpool.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static float frand(void) /* roughly N(0,1) */
{
    float s = 0;
    for (int i = 0; i < 4; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        s += (float)((rng_state >> 11) * (1.0 / 9007199254740992.0)) - 0.5f;
    }
    return s * 1.7320508f;
}

/* round-trip error bound (relative RMS) per type */
static double roundtrip_tol(int t)
{
    switch (t) {
    case GGML_T_F32: return 1e-7;
    case GGML_T_F16: return 1e-3;
    case GGML_T_BF16: return 5e-3;
    case GGML_T_Q8_0: return 0.01;
    case GGML_T_Q6_K: return 0.04;
    case GGML_T_Q5_0: return 0.06;
    default: return 0.12; /* 4-bit */
    }
}

static void test_traits_table(void **state)
{
    (void)state;
    static const int want[] = {GGML_T_F32, GGML_T_F16, GGML_T_BF16, GGML_T_Q8_0,
                               GGML_T_Q4_0, GGML_T_Q5_0, GGML_T_Q4_K, GGML_T_Q6_K};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const q_traits_t *tr = q_traits(want[i]);
        assert_non_null(tr);
        assert_non_null(tr->vec_dot);
        /* agree with the GGUF reader's table */
        assert_string_equal(tr->name, gguf_ttype_name(want[i]));
        assert_int_equal((uint64_t)tr->blck, gguf_ttype_block(want[i]));
        assert_int_equal((uint64_t)tr->type_size, gguf_ttype_block_bytes(want[i]));
    }
    assert_null(q_traits(GGML_T_Q2_K));
    assert_null(q_traits(GGML_T_Q4_1));
    assert_null(q_traits(-1));
    assert_null(q_traits(GGML_T_COUNT));
    assert_int_equal(q_row_size(GGML_T_Q4_K, 512), 288);
    print_message("  best kernels: %s\n", q_isa_name(q_isa_best()));
}

static void test_kernels_all_types(void **state)
{
    (void)state;
    enum { N = 1024 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    float *xd = malloc(N * sizeof(float)), *yd = malloc(N * sizeof(float));
    void *wq = malloc(N * 4), *aq = malloc(N * 4 + 1024);
    char *a4 = malloc(4 * (N * 4 + 1024));
    assert_true(x && y && xd && yd && wq && aq && a4);
    int tested = 0;
    for (int t = 0; t < GGML_T_COUNT; t++) {
        const q_traits_t *ref = q_traits_isa(t, Q_ISA_SCALAR);
        if (!ref || !ref->vec_dot)
            continue;
        tested++;
        const q_traits_t *at = q_traits_isa(ref->vec_dot_type, Q_ISA_SCALAR);
        assert_non_null(at);
        for (int trial = 0; trial < 20; trial++) {
            float xs = trial % 3 == 0 ? 1e-3f : 1.0f; /* small values too */
            for (int i = 0; i < N; i++) {
                x[i] = frand() * xs + (trial % 5 == 1 ? 0.5f : 0.0f); /* offset: Q4_K mins */
                y[i] = frand();
            }
            ref->from_float(x, wq, N);
            at->from_float(y, aq, N);
            ref->to_float(wq, xd, N);
            at->to_float(aq, yd, N);
            double exact = 0, deq = 0, mag = 0, err2 = 0, nx2 = 0;
            for (int i = 0; i < N; i++) {
                exact += (double)x[i] * y[i];
                deq += (double)xd[i] * yd[i];
                mag += fabs((double)x[i] * y[i]);
                err2 += (double)(xd[i] - x[i]) * (xd[i] - x[i]);
                nx2 += (double)x[i] * x[i];
            }
            if (sqrt(err2 / nx2) > roundtrip_tol(t))
                fail_msg("%s round trip error %g", ref->name, sqrt(err2 / nx2));
            /* the scalar kernel is exactly dequantize + dot, up to float sums */
            double s = ref->vec_dot(N, wq, aq);
            if (fabs(s - deq) > 1e-5 * mag + 1e-6)
                fail_msg("%s scalar dot %g vs dequantized %g", ref->name, s, deq);
            /* and close to the float dot within the quantization error */
            if (fabs(s - exact) > 4 * (roundtrip_tol(t) + 0.01) * mag / sqrt(N) * 4 + 1e-6 * mag)
                fail_msg("%s dot %g vs exact %g", ref->name, s, exact);
            /* four activation rows for the x4 kernels */
            size_t ast = q_row_size(ref->vec_dot_type, N) + 64;
            for (int k = 0; k < 4; k++) {
                for (int i = 0; i < N; i++)
                    yd[i] = frand();
                at->from_float(yd, a4 + k * ast, N);
            }
            for (int isa = Q_ISA_SCALAR; isa < Q_ISA_COUNT; isa++) {
                const q_traits_t *tr = q_traits_isa(t, isa);
                if (!tr)
                    continue;
                assert_non_null(tr->vec_dot_x4);
                for (int n = tr->blck; n <= N; n = n == N ? N + 1 : n * 4 > N ? N : n * 4) {
                    float o[4];
                    tr->vec_dot_x4(n, wq, a4, ast, o);
                    for (int k = 0; k < 4; k++) {
                        double want = ref->vec_dot(n, wq, a4 + k * ast);
                        if (fabs(o[k] - want) > 1e-4 * (fabs(want) + sqrt(n)))
                            fail_msg("%s %s x4 n=%d row %d: %g vs %g", tr->name, q_isa_name(isa),
                                     n, k, o[k], want);
                    }
                }
                /* 4-row kernels on the four quarters of the quantized row, with
                 * an even and an odd number of blocks */
                size_t st = q_row_size(t, N / 4);
                for (int m = N / 4; m >= N / 4 - tr->blck && m > 0; m -= tr->blck) {
                    float o[16];
                    if (tr->vec_dot_4x4)
                        tr->vec_dot_4x4(m, wq, st, a4, ast, o);
                    for (int r = 0; tr->vec_dot_4x4 && r < 4; r++)
                        for (int k = 0; k < 4; k++) {
                            double want = ref->vec_dot(m, (const char *)wq + r * st, a4 + k * ast);
                            if (fabs(o[4 * r + k] - want) > 1e-4 * (fabs(want) + sqrt(N)))
                                fail_msg("%s %s 4x4 m=%d [%d][%d]: %g vs %g", tr->name,
                                         q_isa_name(isa), m, r, k, o[4 * r + k], want);
                        }
                    if (tr->vec_dot_4x1)
                        tr->vec_dot_4x1(m, wq, st, a4 + ast, o);
                    for (int r = 0; tr->vec_dot_4x1 && r < 4; r++) {
                        double want = ref->vec_dot(m, (const char *)wq + r * st, a4 + ast);
                        if (fabs(o[r] - want) > 1e-4 * (fabs(want) + sqrt(N)))
                            fail_msg("%s %s 4x1 m=%d [%d]: %g vs %g", tr->name, q_isa_name(isa),
                                     m, r, o[r], want);
                    }
                }
                if (isa == Q_ISA_SCALAR)
                    continue;
                assert_int_equal(tr->vec_dot_type, ref->vec_dot_type);
                double v = tr->vec_dot(N, wq, aq);
                if (fabs(v - s) > 1e-5 * mag + 1e-6)
                    fail_msg("%s %s dot %.9g vs scalar %.9g", tr->name, q_isa_name(isa), v, s);
                /* shorter rows: one block, and an odd count of blocks */
                for (int n = tr->blck; n <= 3 * tr->blck; n += 2 * tr->blck) {
                    double a = tr->vec_dot(n, wq, aq), b = ref->vec_dot(n, wq, aq);
                    if (fabs(a - b) > 1e-4 * (fabs(b) + 1))
                        fail_msg("%s %s n=%d: %g vs %g", tr->name, q_isa_name(isa), n, a, b);
                }
            }
        }
    }
    assert_int_equal(tested, 8);
    /* activation quantizers of every ISA give the scalar bytes */
    for (int i = 0; i < N; i++)
        y[i] = frand() * 3;
    for (int at = 0; at < 2; at++) {
        int type = at ? GGML_T_Q8_K : GGML_T_Q8_0;
        const q_traits_t *s = q_traits_isa(type, Q_ISA_SCALAR);
        s->from_float(y, wq, N);
        for (int isa = Q_ISA_AVX2; isa < Q_ISA_COUNT; isa++) {
            const q_traits_t *tr = q_traits_isa(type, isa);
            if (!tr)
                continue;
            memset(aq, 0xAA, N * 2);
            tr->from_float(y, aq, N);
            assert_memory_equal(wq, aq, q_row_size(type, N));
        }
    }
    free(x);
    free(y);
    free(xd);
    free(yd);
    free(wq);
    free(aq);
    free(a4);
}

static void test_f16(void **state)
{
    (void)state;
    /* every half converts to float and back unchanged (NaNs stay NaN) */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = q_f16_to_f32((uint16_t)h);
        if (isnan(f))
            assert_true(isnan(q_f16_to_f32(q_f32_to_f16(f))));
        else
            assert_int_equal(q_f32_to_f16(f), h);
    }
    assert_true(q_f16_to_f32(0x3c00) == 1.0f);
    assert_true(q_f16_to_f32(0xc000) == -2.0f);
    assert_true(q_f16_to_f32(0x0001) == ldexpf(1, -24));
    assert_int_equal(q_f32_to_f16(65520.0f), 0x7c00); /* rounds to inf */
    assert_int_equal(q_f32_to_f16(65519.0f), 0x7bff);
    assert_int_equal(q_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);  /* tie to even */
    assert_int_equal(q_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
    assert_int_equal(q_f32_to_bf16(1.0f), 0x3f80);
    assert_true(q_bf16_to_f32(0x4049) == 3.140625f);
    /* the F16C conversions of the AVX2 attention ops round the same way */
    for (int isa = Q_ISA_AVX2; isa < Q_ISA_COUNT; isa++) {
        if (!q_traits_isa(GGML_T_F16, isa))
            continue;
        const q_attn_ops_t *ops = q_attn_ops(isa);
        float v[67];
        uint16_t a[67];
        for (int i = 0; i < 67; i++)
            v[i] = frand() * (i % 2 ? 1e-5f : 100.0f);
        ops->f32_to_f16(67, v, a);
        for (int i = 0; i < 67; i++)
            assert_int_equal(a[i], q_f32_to_f16(v[i]));
    }
}

static void test_attn_ops(void **state)
{
    (void)state;
    enum { N = 77 };
    float q[N], y0[N], y1[N];
    uint16_t k[N];
    for (int i = 0; i < N; i++) {
        q[i] = frand();
        k[i] = q_f32_to_f16(frand());
        y0[i] = y1[i] = frand();
    }
    const q_attn_ops_t *s = q_attn_ops(Q_ISA_SCALAR);
    double want = 0;
    for (int i = 0; i < N; i++)
        want += (double)q_f16_to_f32(k[i]) * q[i];
    assert_true(fabs(s->dot_f16(N, k, q) - want) < 1e-4);
    s->axpy_f16(N, 0.5f, k, y0);
    for (int isa = Q_ISA_AVX2; isa < Q_ISA_COUNT; isa++) {
        const q_attn_ops_t *o = q_attn_ops(isa);
        assert_true(fabs(o->dot_f16(N, k, q) - want) < 1e-4);
        float y2[N];
        memcpy(y2, y1, sizeof y2);
        o->axpy_f16(N, 0.5f, k, y2);
        for (int i = 0; i < N; i++)
            assert_true(fabsf(y2[i] - y0[i]) < 1e-5f);
    }
}

typedef struct pool_job {
    tp_t *tp;
    long *data;
    long n;
    atomic_long total;
    int rounds;
} pool_job_t;

/* Each round: every thread fills its share, barrier, every thread sums the
 * whole array (so a missing barrier shows up as a wrong sum). */
static void on_pool_job(void *arg, int ith, int nth)
{
    pool_job_t *j = arg;
    for (int r = 0; r < j->rounds; r++) {
        long lo, hi;
        tp_split(j->n, ith, nth, &lo, &hi);
        for (long i = lo; i < hi; i++)
            j->data[i] = i + r;
        tp_barrier(j->tp);
        long s = 0;
        for (long i = 0; i < j->n; i++)
            s += j->data[i];
        atomic_fetch_add(&j->total, s);
        tp_barrier(j->tp);
    }
}

static void test_threadpool(void **state)
{
    (void)state;
    tp_t *tp = NULL;
    assert_int_equal(tp_create(0, &tp), -3);
    for (int n = 1; n <= 4; n++) {
        assert_int_equal(tp_create(n, &tp), 0);
        assert_int_equal(tp_size(tp), n);
        long data[1000];
        for (int run = 0; run < 50; run++) {
            pool_job_t j = {.tp = tp, .data = data, .n = 1000, .rounds = 3};
            atomic_init(&j.total, 0);
            tp_run(tp, on_pool_job, &j);
            long want = 0;
            for (int r = 0; r < 3; r++)
                want += (999L * 1000 / 2 + 1000L * r) * n;
            assert_int_equal(atomic_load(&j.total), want);
        }
        tp_free(tp);
    }
    long lo, hi, covered = 0;
    for (int i = 0; i < 3; i++) {
        tp_split(10, i, 3, &lo, &hi);
        assert_int_equal(lo, covered);
        covered = hi;
    }
    assert_int_equal(covered, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traits_table),
        cmocka_unit_test(test_kernels_all_types),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_attn_ops),
        cmocka_unit_test(test_threadpool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
