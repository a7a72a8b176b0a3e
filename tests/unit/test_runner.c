/* Runner tests: keep_alive parsing, the JSON completer, option helpers, and
 * the runner itself on a real loop with a tiny model from mkgguf.py (load,
 * generate, prefix reuse, embed, context shift, keep_alive 0, queue limit,
 * cancel, load failure, two slots generating at once, and a close that
 * leaves no handle behind). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "inference/runner.h"
#include "inference/runner_int.h"

/* ---- pure helpers ------------------------------------------------------------- */

static void test_keep_alive_parse(void **state)
{
    (void)state;
    int64_t ns;
    json_t *v = json_integer(300);
    assert_int_equal(runner_keep_alive_parse(v, &ns), 0);
    assert_true(ns == 300LL * 1000000000);
    json_decref(v);
    v = json_string("1h30m");
    assert_int_equal(runner_keep_alive_parse(v, &ns), 0);
    assert_true(ns == 5400LL * 1000000000);
    json_decref(v);
    v = json_string("-1");
    assert_int_equal(runner_keep_alive_parse(v, &ns), 0);
    assert_true(ns < 0);
    json_decref(v);
    v = json_real(1.5);
    assert_int_equal(runner_keep_alive_parse(v, &ns), 0);
    assert_true(ns == 1500000000LL);
    json_decref(v);
    v = json_integer(0);
    assert_int_equal(runner_keep_alive_parse(v, &ns), 0);
    assert_true(ns == 0);
    json_decref(v);
    v = json_string("soon");
    assert_int_equal(runner_keep_alive_parse(v, &ns), OX_EINVAL);
    json_decref(v);
    v = json_true();
    assert_int_equal(runner_keep_alive_parse(v, &ns), OX_EINVAL);
    json_decref(v);
}

/* Every prefix of a valid object is accepted and completes into JSON that
 * parses; broken text is refused. */
static void test_json_completer(void **state)
{
    (void)state;
    static const char *docs[] = {
        "{\"a\": [1, -2.5e+3, true, null, {\"b\": \"x\\u00e9\\n\"}], \"c\": false}",
        "{}",
        "{\"k\":\"v\"}",
        "{\"n\":0,\"m\":[[],{}]}",
    };
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        size_t n = strlen(docs[d]);
        for (size_t cut = 0; cut <= n; cut++) {
            rjson_t j;
            rjson_init(&j);
            assert_int_equal(rjson_feed(&j, docs[d], cut), 0);
            ox_buf_t b = OX_BUF_INIT;
            ox_buf_append(&b, docs[d], cut);
            assert_int_equal(rjson_close(&j, &b), 0);
            json_error_t je;
            json_t *v = json_loads(b.data, 0, &je);
            if (!v)
                fail_msg("prefix %zu of %s completed into unparseable %s", cut, docs[d], b.data);
            assert_true(json_is_object(v));
            json_decref(v);
            ox_buf_free(&b);
            if (cut == n)
                assert_true(rjson_done(&j));
        }
    }
    static const char *bad[] = {"[1]", "{\"a\" 1}", "{a}", "{\"a\":tru }", "{}x", "{\"a\":01}",
                                "{\"a\":\"\x01\"}", "{\"a\":1,}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rjson_t j;
        rjson_init(&j);
        if (rjson_feed(&j, bad[i], strlen(bad[i])) == 0)
            fail_msg("accepted %s", bad[i]);
    }
}

static void test_options(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:f,s:i,s:i,s:[s,s,i]}", "temperature", 0.25, "top_k", 7, "seed", 42,
                          "stop", "a", "bc", 3);
    smp_params_t p;
    ropt_sampler(o, 1, &p);
    assert_true(fabsf(p.temperature - 0.25f) < 1e-6f);
    assert_int_equal(p.top_k, 7);
    assert_true(p.seed == 42);
    assert_true(p.json);
    assert_true(fabsf(p.top_p - 0.9f) < 1e-6f); /* Ollama's default kept */
    size_t n;
    const char **st = ropt_stops(o, &n);
    assert_int_equal(n, 2);
    assert_string_equal(st[0], "a");
    assert_string_equal(st[1], "bc");
    free(st);
    json_decref(o);
    assert_true(ropt_num(NULL, "num_ctx", 4096) == 4096);
}

static void check_calls(const char *text, const char *want)
{
    json_t *c = runner_tool_calls_parse(text, strlen(text));
    if (!want) {
        if (c)
            fail_msg("parsed tool calls from %s", text);
        return;
    }
    if (!c)
        fail_msg("no tool calls in %s", text);
    json_t *w = json_loads(want, 0, NULL);
    assert_non_null(w);
    if (!json_equal(c, w))
        fail_msg("%s: got %s", text, json_dumps(c, JSON_COMPACT));
    json_decref(w);
    json_decref(c);
}

static void test_tool_calls(void **state)
{
    (void)state;
    const char *one = "[{\"function\":{\"name\":\"get\",\"arguments\":{\"city\":\"Paris\"}}}]";
    check_calls("{\"name\": \"get\", \"arguments\": {\"city\": \"Paris\"}}", one);
    check_calls("  <tool_call>\n{\"name\":\"get\",\"arguments\":{\"city\":\"Paris\"}}\n</tool_call>", one);
    check_calls("[TOOL_CALLS] [{\"name\":\"get\",\"parameters\":{\"city\":\"Paris\"}}]", one);
    check_calls("{\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}", one);
    check_calls("{\"name\":\"a\",\"arguments\":{}}\n{\"name\":\"b\",\"arguments\":{\"x\":1}}",
                "[{\"function\":{\"name\":\"a\",\"arguments\":{}}},"
                "{\"function\":{\"name\":\"b\",\"arguments\":{\"x\":1}}}]");
    check_calls("The weather is nice.", NULL);
    check_calls("{\"city\": \"Paris\"}", NULL);
    check_calls("{\"name\":\"get\",\"arguments\":{}} and then some text", NULL);
    /* an answer cut before its closing tag still counts */
    check_calls("<tool_call>{\"name\":\"get\",\"arguments\":{}}",
                "[{\"function\":{\"name\":\"get\",\"arguments\":{}}}]");
    check_calls("", NULL);
    assert_int_equal(runner_tool_prefix("  ", 2), -1);
    assert_int_equal(runner_tool_prefix("<tool", 5), -1);
    assert_int_equal(runner_tool_prefix(" <tool_call>{", 13), 1);
    assert_int_equal(runner_tool_prefix("{\"", 2), 1);
    assert_int_equal(runner_tool_prefix("Hello", 5), 0);
    assert_int_equal(runner_tool_prefix("<b>", 3), 0);
}

/* ---- the runner on a loop ----------------------------------------------------------- */

typedef struct fixture {
    char dir[64];
    char model[128];
    char bad[128];
} fixture_t;

static int setup(void **state)
{
    const char *src = getenv("OX_SOURCE_DIR");
    if (!src || access("/usr/bin/python3", X_OK) != 0)
        return 0;
    fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_runner_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->model, sizeof f->model, "%s/m.gguf", f->dir);
    snprintf(f->bad, sizeof f->bad, "%s/bad.gguf", f->dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/tools/mkgguf.py' '%s' --seed 4 >/dev/null",
             src, f->model);
    if (system(cmd) != 0)
        return -1;
    FILE *b = fopen(f->bad, "w");
    fputs("not a gguf", b);
    fclose(b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f) {
        unlink(f->model);
        unlink(f->bad);
        rmdir(f->dir);
        free(f);
    }
    return 0;
}

typedef struct result {
    int done;
    int rc;
    char err[512];
    ox_buf_t text;
    runner_result_t res;
    size_t n_emb;
    float emb0;
} result_t;

static void on_text(void *ud, const char *t, size_t n)
{
    result_t *r = ud;
    ox_buf_append(&r->text, t, n);
}

static void on_done(void *ud, int rc, const char *err, const runner_result_t *res)
{
    result_t *r = ud;
    r->done++;
    r->rc = rc;
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
    if (res) {
        r->res = *res;
        r->res.context = NULL;
        r->res.embeddings = NULL;
        r->n_emb = res->n_embeddings;
        if (res->n_embeddings) {
            double ss = 0;
            for (size_t k = 0; k < res->dim; k++)
                ss += (double)res->embeddings[k] * res->embeddings[k];
            r->emb0 = (float)sqrt(ss);
        }
    }
}

static const runner_callbacks_t cbs = {on_text, on_done};

static int submit(runner_t *r, const char *path, runner_kind_t kind, json_t *body, json_t *opts,
                  int64_t keep_alive, result_t *res, runner_job_t **job)
{
    runner_model_desc_t d = {.digest = path, .name = "t:latest", .path = path,
                             .template_text = "{{ .Prompt }}", .size = 1};
    runner_request_t q = {.kind = kind, .body = body, .options = opts,
                          .has_keep_alive = keep_alive != INT64_MIN, .keep_alive_ns = keep_alive};
    return runner_submit(r, &d, &q, &cbs, res, job);
}

static void run_until(uv_loop_t *loop, const int *flag)
{
    while (!*flag)
        uv_run(loop, UV_RUN_ONCE);
}

static void on_closed(void *ud)
{
    *(int *)ud = 1;
}

static void close_runner(uv_loop_t *loop, runner_t *r)
{
    int closed = 0;
    runner_close(r, on_closed, &closed);
    run_until(loop, &closed);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_generate_embed_keep_alive(void **state)
{
    fixture_t *f = *state;
    if (!f)
        skip();
    uv_loop_t loop;
    uv_loop_init(&loop);
    runner_t *r;
    runner_config_t cfg = {.keep_alive_ns = 300LL * 1000000000, .num_parallel = 1, .max_queue = 8};
    assert_int_equal(runner_new(&loop, &cfg, &r), 0);

    result_t a = {0};
    assert_int_equal(submit(r, f->model, RUNNER_GENERATE, json_pack("{s:s}", "prompt", "hello"),
                            json_pack("{s:i,s:i}", "num_predict", 5, "temperature", 0), INT64_MIN,
                            &a, NULL),
                     0);
    run_until(&loop, &a.done);
    assert_int_equal(a.rc, 0);
    assert_int_equal(a.res.eval_count, 5);
    assert_string_equal(a.res.done_reason, "length");
    assert_true(a.res.prompt_eval_count > 1);
    assert_true(runner_is_loaded(r, f->model));
    json_t *ps = runner_ps(r);
    assert_int_equal(json_array_size(ps), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ps, 0), "name")),
                        "t:latest");
    json_decref(ps);

    /* same greedy request: same text (and the cached prefix is reused) */
    result_t b = {0};
    submit(r, f->model, RUNNER_GENERATE, json_pack("{s:s}", "prompt", "hello"),
           json_pack("{s:i,s:i}", "num_predict", 5, "temperature", 0), INT64_MIN, &b, NULL);
    run_until(&loop, &b.done);
    assert_int_equal(b.rc, 0);
    assert_int_equal(a.res.prompt_cached, 0);
    assert_int_equal(b.res.prompt_cached, b.res.prompt_eval_count - 1);
    assert_int_equal(a.text.len, b.text.len);
    assert_memory_equal(a.text.data, b.text.data, a.text.len);

    /* answers longer than num_ctx go on past a context shift */
    int longest = 0;
    for (int seed = 1; seed <= 10 && longest < 40; seed++) {
        result_t l = {0};
        submit(r, f->model, RUNNER_GENERATE, json_pack("{s:s}", "prompt", "hello"),
               json_pack("{s:i,s:i,s:i}", "num_predict", 40, "num_ctx", 16, "seed", seed),
               INT64_MIN, &l, NULL);
        run_until(&loop, &l.done);
        assert_int_equal(l.rc, 0);
        if (l.res.eval_count > longest)
            longest = l.res.eval_count;
        ox_buf_free(&l.text);
    }
    assert_int_equal(longest, 40);

    /* embeddings are unit vectors */
    result_t e = {0};
    submit(r, f->model, RUNNER_EMBED, json_pack("{s:[s,s]}", "input", "a cat", "a dog"), NULL,
           INT64_MIN, &e, NULL);
    run_until(&loop, &e.done);
    assert_int_equal(e.rc, 0);
    assert_int_equal(e.n_emb, 2);
    assert_true(fabsf(e.emb0 - 1.0f) < 1e-4f);

    /* keep_alive 0: unloaded once idle */
    result_t z = {0};
    submit(r, f->model, RUNNER_GENERATE, json_pack("{s:s}", "prompt", "x"),
           json_pack("{s:i}", "num_predict", 1), 0, &z, NULL);
    run_until(&loop, &z.done);
    assert_int_equal(z.rc, 0);
    assert_false(runner_is_loaded(r, f->model));
    ps = runner_ps(r);
    assert_int_equal(json_array_size(ps), 0);
    json_decref(ps);

    ox_buf_free(&a.text);
    ox_buf_free(&b.text);
    ox_buf_free(&e.text);
    ox_buf_free(&z.text);
    close_runner(&loop, r);
}

static void test_queue_cancel_and_failures(void **state)
{
    fixture_t *f = *state;
    if (!f)
        skip();
    uv_loop_t loop;
    uv_loop_init(&loop);
    runner_t *r;
    runner_config_t cfg = {.keep_alive_ns = -1, .num_parallel = 1, .max_queue = 1};
    assert_int_equal(runner_new(&loop, &cfg, &r), 0);

    /* one slot and one waiting place: the third job is refused, whatever the
     * workers have dequeued so far */
    result_t q[3] = {{0}};
    runner_job_t *j0 = NULL;
    assert_int_equal(submit(r, f->model, RUNNER_GENERATE, json_pack("{s:s}", "prompt", "long"),
                            json_pack("{s:i}", "num_predict", 100000), INT64_MIN, &q[0], &j0),
                     0);
    assert_int_equal(submit(r, f->model, RUNNER_GENERATE, json_pack("{s:s}", "prompt", "b"),
                            json_pack("{s:i}", "num_predict", 2), INT64_MIN, &q[1], NULL),
                     0);
    assert_int_equal(submit(r, f->model, RUNNER_GENERATE, json_pack("{s:s}", "prompt", "c"), NULL,
                            INT64_MIN, &q[2], NULL),
                     OX_EBUSY);
    /* cancelling the first lets the second run */
    runner_job_cancel(j0);
    run_until(&loop, &q[0].done);
    assert_int_equal(q[0].rc, OX_ECANCELED);
    run_until(&loop, &q[1].done);
    assert_int_equal(q[1].rc, 0);
    assert_int_equal(q[2].done, 0);

    /* a file that is not a model fails its job with a message */
    result_t bad = {0};
    assert_int_equal(submit(r, f->bad, RUNNER_GENERATE, json_pack("{s:s}", "prompt", "x"), NULL,
                            INT64_MIN, &bad, NULL),
                     0);
    run_until(&loop, &bad.done);
    assert_true(bad.rc < 0);
    assert_true(strstr(bad.err, "unable to load model") != NULL);
    assert_false(runner_is_loaded(r, f->bad));

    /* a bad template in the request is a 400-class error */
    result_t bt = {0};
    submit(r, f->model, RUNNER_GENERATE, json_pack("{s:s,s:s}", "prompt", "x", "template", "{{ .X"),
           NULL, INT64_MIN, &bt, NULL);
    run_until(&loop, &bt.done);
    assert_int_equal(bt.rc, OX_EINVAL);

    /* close while a job runs: it ends cancelled and nothing leaks */
    result_t last = {0};
    submit(r, f->model, RUNNER_GENERATE, json_pack("{s:s}", "prompt", "long"),
           json_pack("{s:i}", "num_predict", 100000), INT64_MIN, &last, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < 3; i++)
        ox_buf_free(&q[i].text);
    ox_buf_free(&bad.text);
    ox_buf_free(&bt.text);
    close_runner(&loop, r);
    assert_int_equal(last.done, 1);
    ox_buf_free(&last.text);
}

typedef struct par par_t;
typedef struct pjob {
    par_t *p;
    int texts, done, rc, eval_count;
} pjob_t;
struct par {
    pjob_t j[2];
    int overlap; /* both had produced text while neither was done */
};

static void on_text_par(void *ud, const char *t, size_t n)
{
    pjob_t *pj = ud;
    par_t *p = pj->p;
    (void)t, (void)n;
    pj->texts++;
    if (p->j[0].texts && p->j[1].texts && !p->j[0].done && !p->j[1].done)
        p->overlap = 1;
}

static void on_done_par(void *ud, int rc, const char *err, const runner_result_t *res)
{
    pjob_t *pj = ud;
    (void)err;
    pj->done = 1;
    pj->rc = rc;
    pj->eval_count = res ? res->eval_count : 0;
}

/* With num_parallel 2 two requests generate at the same time; with one slot
 * the second could not produce text before the first ended. */
static void test_parallel_slots(void **state)
{
    fixture_t *f = *state;
    if (!f)
        skip();
    uv_loop_t loop;
    uv_loop_init(&loop);
    runner_t *r;
    runner_config_t cfg = {.keep_alive_ns = -1, .num_parallel = 2, .max_queue = 8};
    assert_int_equal(runner_new(&loop, &cfg, &r), 0);
    /* the prompt with the longest greedy answer (no end token): the longer
     * the first job runs, the surer the second one starts meanwhile */
    static const char *prompts[] = {"hello", "the cat", "one two", "sky", "robot", "story"};
    const char *prompt = NULL;
    int best = 0;
    for (size_t i = 0; i < sizeof prompts / sizeof prompts[0] && best < 1000; i++) {
        result_t a = {0};
        submit(r, f->model, RUNNER_GENERATE, json_pack("{s:s}", "prompt", prompts[i]),
               json_pack("{s:i,s:i}", "num_predict", 1000, "temperature", 0), INT64_MIN, &a, NULL);
        run_until(&loop, &a.done);
        if (a.rc == 0 && a.res.eval_count > best) {
            best = a.res.eval_count;
            prompt = prompts[i];
        }
        ox_buf_free(&a.text);
    }
    assert_true(best >= 200);
    par_t p;
    memset(&p, 0, sizeof p);
    runner_callbacks_t cb = {on_text_par, on_done_par};
    for (int k = 0; k < 2; k++) {
        p.j[k].p = &p;
        runner_model_desc_t d = {.digest = f->model, .name = "t", .path = f->model,
                                 .template_text = "{{ .Prompt }}"};
        runner_request_t q = {
            .kind = RUNNER_GENERATE,
            .body = json_pack("{s:s}", "prompt", prompt),
            .options = json_pack("{s:i,s:i}", "num_predict", best, "temperature", 0)};
        assert_int_equal(runner_submit(r, &d, &q, &cb, &p.j[k], NULL), 0);
    }
    while (!(p.j[0].done && p.j[1].done))
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(p.j[0].rc, 0);
    assert_int_equal(p.j[1].rc, 0);
    assert_int_equal(p.j[0].eval_count, best);
    assert_int_equal(p.j[1].eval_count, best);
    assert_true(p.overlap);
    close_runner(&loop, r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keep_alive_parse),
        cmocka_unit_test(test_json_completer),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_tool_calls),
        cmocka_unit_test(test_generate_embed_keep_alive),
        cmocka_unit_test(test_queue_cancel_and_failures),
        cmocka_unit_test(test_parallel_slots),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
