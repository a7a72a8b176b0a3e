/* Modelfile parsing: commands, quoting, typed parameters, line-numbered
 * errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_from_only),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_param_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
