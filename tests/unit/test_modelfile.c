/* The CLI's input and output text: Modelfile parsing (commands, quoting,
 * typed parameters, line-numbered errors) and the human sizes, times and
 * host resolution `ollamax list` and friends print. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "daemon/cli.h"
#include "daemon/modelfile.h"

static int parse(const char *s, modelfile_t *mf, char *err)
{
    return modelfile_parse(s, strlen(s), mf, err, 256);
}

static void test_full(void **state)
{
    (void)state;
    const char *text = "# a comment\n"
                       "FROM ./model.gguf\n"
                       "\n"
                       "template \"\"\"{{ if .System }}<|system|>\n"
                       "{{ .System }}{{ end }}\n"
                       "<|user|>{{ .Prompt }}\"\"\"\n"
                       "SYSTEM \"You are \\\"helpful\\\".\"\n"
                       "PARAMETER temperature 0.7\n"
                       "PARAMETER num_ctx 4096\n"
                       "PARAMETER stop <|user|>\n"
                       "PARAMETER stop \"<|end|>\"\n"
                       "PARAMETER use_mmap false\n"
                       "LICENSE \"\"\"MIT\nline two\"\"\"\n"
                       "MESSAGE user Hi there   \r\n"
                       "MESSAGE Assistant \"\"\"Hello!\"\"\"\n";
    modelfile_t mf;
    char err[256] = "";
    assert_int_equal(parse(text, &mf, err), 0);
    assert_string_equal(mf.from, "./model.gguf");
    assert_int_equal(mf.from_line, 2);
    assert_string_equal(mf.tmpl, "{{ if .System }}<|system|>\n{{ .System }}{{ end }}\n"
                                 "<|user|>{{ .Prompt }}");
    assert_string_equal(mf.system, "You are \"helpful\".");
    json_t *t = json_object_get(mf.params, "temperature");
    assert_true(json_is_real(t));
    assert_true(json_real_value(t) > 0.69 && json_real_value(t) < 0.71);
    assert_int_equal(json_integer_value(json_object_get(mf.params, "num_ctx")), 4096);
    assert_true(json_is_false(json_object_get(mf.params, "use_mmap")));
    json_t *stop = json_object_get(mf.params, "stop");
    assert_int_equal(json_array_size(stop), 2);
    assert_string_equal(json_string_value(json_array_get(stop, 0)), "<|user|>");
    assert_string_equal(json_string_value(json_array_get(stop, 1)), "<|end|>");
    assert_int_equal(json_array_size(mf.license), 1);
    assert_string_equal(json_string_value(json_array_get(mf.license, 0)), "MIT\nline two");
    assert_int_equal(json_array_size(mf.messages), 2);
    json_t *m0 = json_array_get(mf.messages, 0), *m1 = json_array_get(mf.messages, 1);
    assert_string_equal(json_string_value(json_object_get(m0, "role")), "user");
    assert_string_equal(json_string_value(json_object_get(m0, "content")), "Hi there");
    assert_string_equal(json_string_value(json_object_get(m1, "role")), "assistant");
    assert_string_equal(json_string_value(json_object_get(m1, "content")), "Hello!");
    assert_null(mf.adapter);
    modelfile_free(&mf);
    /* a quoted value over several lines (as `show --modelfile` writes) */
    assert_int_equal(parse("FROM x\nTEMPLATE \"a\nb\"\nSYSTEM s\nBAD\n", &mf, err), OX_EFORMAT);
    assert_non_null(strstr(err, "line 5:"));
    assert_int_equal(parse("FROM x\nTEMPLATE \"a\nb\"\n", &mf, err), 0);
    assert_string_equal(mf.tmpl, "a\nb");
    modelfile_free(&mf);
}

static void test_from_only(void **state)
{
    (void)state;
    modelfile_t mf;
    char err[256];
    assert_int_equal(parse("FROM llama3.2", &mf, err), 0);  /* no trailing newline */
    assert_string_equal(mf.from, "llama3.2");
    assert_int_equal(json_object_size(mf.params), 0);
    assert_null(mf.tmpl);
    modelfile_free(&mf);
}

static void expect_error(const char *text, const char *msg)
{
    modelfile_t mf;
    char err[256] = "";
    assert_int_equal(parse(text, &mf, err), OX_EFORMAT);
    if (!strstr(err, msg)) {
        print_error("error \"%s\" lacks \"%s\"\n", err, msg);
        fail();
    }
    assert_null(mf.from);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("", "no FROM line");
    expect_error("# only a comment\nSYSTEM hi\n", "no FROM line");
    expect_error("FROM x\nBOGUS thing\n", "line 2: unknown command \"bogus\"");
    expect_error("FROM x\n\nPARAMETER num_ctx lots\n", "line 3: invalid int value for num_ctx");
    expect_error("FROM x\nPARAMETER temperature hot\n", "line 2: invalid float value");
    expect_error("FROM x\nPARAMETER use_mmap maybe\n", "line 2: invalid bool value");
    expect_error("FROM x\nPARAMETER wibble 1\n", "line 2: unknown parameter 'wibble'");
    expect_error("FROM x\nPARAMETER\n", "line 2: missing name after parameter");
    expect_error("FROM x\nPARAMETER seed\n", "line 2: missing value for parameter");
    expect_error("FROM\n", "line 1: missing value for from");
    expect_error("FROM x\nTEMPLATE \"\"\"never\nclosed\n", "line 2: unterminated \"\"\"");
    expect_error("FROM x\nSYSTEM \"open\nstill open\n", "line 2: unterminated quoted string");
    expect_error("FROM x\nSYSTEM \"a\" b\n", "line 2: unexpected text");
    expect_error("FROM x\nTEMPLATE \"\"\"a\nb\"\"\" tail\n", "line 3: unexpected text");
    expect_error("FROM x\nMESSAGE robot hi\n", "line 2: invalid message role \"robot\"");
    /* line numbers keep counting through multi-line values */
    expect_error("FROM x\nSYSTEM \"\"\"1\n2\n3\"\"\"\nNOPE\n", "line 5: unknown command");
}

static void test_param_types(void **state)
{
    (void)state;
    char err[128];
    int list;
    json_t *v = modelfile_param_value("top_k", "40", &list, err, sizeof(err));
    assert_true(json_is_integer(v) && json_integer_value(v) == 40 && !list);
    json_decref(v);
    v = modelfile_param_value("seed", "-1", &list, err, sizeof(err));
    assert_int_equal(json_integer_value(v), -1);
    json_decref(v);
    v = modelfile_param_value("numa", "TRUE", &list, err, sizeof(err));
    assert_true(json_is_true(v));
    json_decref(v);
    v = modelfile_param_value("stop", "x", &list, err, sizeof(err));
    assert_true(json_is_string(v) && list);
    json_decref(v);
    assert_null(modelfile_param_value("top_k", "4.5", &list, err, sizeof(err)));
    assert_null(modelfile_param_value("top_p", "", &list, err, sizeof(err)));
    assert_null(modelfile_param_value("top_p", "nan", &list, err, sizeof(err)));
}

static void test_human_bytes(void **state)
{
    (void)state;
    char b[32];
    struct {
        uint64_t n;
        const char *want;
    } cases[] = {{0, "0 B"},           {999, "999 B"},          {1000, "1 KB"},
                 {1500, "1.5 KB"},     {469024, "469 KB"},      {2019393189ull, "2.0 GB"},
                 {4920753328ull, "4.9 GB"}, {274302450, "274 MB"}, {12000000000ull, "12 GB"},
                 {3000000000000ull, "3 TB"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli_human_bytes(cases[i].n, b, sizeof(b));
        assert_string_equal(b, cases[i].want);
    }
}

static void test_human_time(void **state)
{
    (void)state;
    const int64_t s = 1000000000LL, now = 1700000000LL * s;
    char b[64];
    struct {
        int64_t ago;
        const char *want;
    } cases[] = {{0, "Less than a second ago"},
                 {1 * s, "1 second ago"},
                 {45 * s, "45 seconds ago"},
                 {90 * s, "About a minute ago"},
                 {5 * 60 * s, "5 minutes ago"},
                 {70 * 60 * s, "About an hour ago"},
                 {5 * 3600 * s, "5 hours ago"},
                 {3 * 86400 * s, "3 days ago"},
                 {21 * 86400 * s, "3 weeks ago"},
                 {100 * 86400 * s, "3 months ago"},
                 {3 * 365 * 86400 * s, "3 years ago"},
                 {-4 * 60 * s - s / 2, "4 minutes from now"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli_human_time(now - cases[i].ago, now, b, sizeof(b));
        assert_string_equal(b, cases[i].want);
    }
    /* RFC 3339 with fraction and offset, as modified_at comes */
    assert_int_equal(cli_parse_time("2024-07-22T20:47:51.147561Z"),
                     1721681271LL * s + 147561000);
    assert_int_equal(cli_parse_time("2024-07-22T13:47:51.5-07:00"), 1721681271LL * s + s / 2);
    assert_int_equal(cli_parse_time("yesterday"), 0);
    assert_int_equal(cli_parse_time(NULL), 0);
}

/* OLLAMAX_HOST wins over OLLAMA_HOST; a bind-all address is reached through
 * loopback. (The result is computed once per process.) */
static void test_base_url(void **state)
{
    (void)state;
    setenv("OLLAMA_HOST", "http://10.9.9.9:1", 1);
    setenv("OLLAMAX_HOST", "0.0.0.0:9999", 1);
    assert_string_equal(cli_base_url(), "http://127.0.0.1:9999");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_from_only),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_param_types),
        cmocka_unit_test(test_human_bytes),
        cmocka_unit_test(test_human_time),
        cmocka_unit_test(test_base_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
