/* Template engine tests: Go text/template features, Ollama's llama3.x and
 * qwen2.5 templates (with tools) against prompts worked out by hand, the
 * legacy prompt/response mode, and hostile templates. */
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
#include "inference/template.h"

/* Renders src over data (JSON text); returns the output (static buffer) or
 * the error message prefixed with "ERR:". */
static char *render(const char *src, const char *data_json)
{
    static char result[65536];
    char err[256] = "";
    tmpl_t *t = NULL;
    int rc = tmpl_parse(src, strlen(src), &t, err, sizeof(err));
    if (rc) {
        snprintf(result, sizeof(result), "ERR:%s", err);
        return result;
    }
    json_error_t je;
    json_t *data = data_json ? json_loads(data_json, 0, &je) : json_object();
    assert_non_null(data);
    ox_buf_t out = OX_BUF_INIT;
    rc = tmpl_render(t, data, &out, err, sizeof(err));
    if (rc)
        snprintf(result, sizeof(result), "ERR:%s", err);
    else
        snprintf(result, sizeof(result), "%s", out.data ? out.data : "");
    ox_buf_free(&out);
    json_decref(data);
    tmpl_free(t);
    return result;
}

static void test_basics(void **state)
{
    (void)state;
    assert_string_equal(render("Hello {{ .Name }}!", "{\"Name\":\"World\"}"), "Hello World!");
    assert_string_equal(render("a  {{- 1 -}}  b", NULL), "a1b");
    assert_string_equal(render("a \n{{- \"x\" }} \n b", NULL), "ax \n b");
    assert_string_equal(render("{{3}}{{-3}}", NULL), "3-3");
    const char *ifs = "{{ if eq .X 1 }}one{{ else if eq .X 2 }}two{{ else }}many{{ end }}";
    assert_string_equal(render(ifs, "{\"X\":1}"), "one");
    assert_string_equal(render(ifs, "{\"X\":2}"), "two");
    assert_string_equal(render(ifs, "{\"X\":3}"), "many");
    const char *rng = "{{ range $i, $v := .L }}{{ $i }}={{ $v }};{{ else }}empty{{ end }}";
    assert_string_equal(render(rng, "{\"L\":[\"a\",\"b\"]}"), "0=a;1=b;");
    assert_string_equal(render(rng, "{\"L\":[]}"), "empty");
    assert_string_equal(render(rng, "{}"), "empty");
    assert_string_equal(render("{{ range $k, $v := .M }}{{ $k }}{{ $v }}{{ end }}",
                               "{\"M\":{\"b\":1,\"a\":2}}"), "a2b1");
    assert_string_equal(render("{{ range .L }}[{{ . }}]{{ end }}", "{\"L\":[1,2.5,true]}"),
                        "[1][2.5][true]");
    assert_string_equal(render("{{ with .O }}{{ .Name }}{{ else }}none{{ end }}",
                               "{\"O\":{\"Name\":\"n\"}}"), "n");
    assert_string_equal(render("{{ with .O }}{{ .Name }}{{ else }}none{{ end }}", "{}"), "none");
    assert_string_equal(render("{{ $x := \"v\" }}{{ range .L }}{{ $x }}{{ $.Top }}{{ end }}",
                               "{\"L\":[1,2],\"Top\":\"T\"}"), "vTvT");
    assert_string_equal(render("{{ $n := 0 }}{{ range .L }}{{ $n = . }}{{ end }}{{ $n }}",
                               "{\"L\":[4,5,6]}"), "6");
    /* Go field names fall back to the snake_case JSON keys. */
    assert_string_equal(render("{{ .ToolCalls }}|{{ .Function.Name }}",
                               "{\"tool_calls\":\"tc\",\"function\":{\"name\":\"f\"}}"), "tc|f");
    assert_string_equal(render("{{/* comment */}}a {{- /* c */ -}} b", NULL), "ab");
    assert_string_equal(render("{{ range .L }}{{ if eq . 3 }}{{ break }}{{ end }}"
                               "{{ if eq . 1 }}{{ continue }}{{ end }}{{ . }}{{ end }}",
                               "{\"L\":[1,2,3,4]}"), "2");
    assert_string_equal(render("{{ .Missing }}|{{ .A.B.C }}", "{\"A\":{}}"), "|");
    assert_string_equal(render("{{ range 3 }}{{ . }}{{ end }}", NULL), "012");
}

static void test_functions(void **state)
{
    (void)state;
    const char *d = "{\"L\":[\"a\",\"b\",\"c\"],\"S\":\"hello\",\"E\":\"\",\"N\":5,"
                    "\"M\":{\"k\":\"v\"}}";
    assert_string_equal(render("{{ len .L }} {{ len .S }} {{ len .M }} {{ len .E }}", d), "3 5 1 0");
    assert_string_equal(render("{{ slice .L 1 }} {{ slice .L 1 2 }} {{ slice .S 1 3 }}", d),
                        "[b c] [b] el");
    assert_string_equal(render("{{ index .L 2 }}{{ index .M \"k\" }}", d), "cv");
    assert_string_equal(render("{{ not .E }} {{ not .S }}", d), "true false");
    assert_string_equal(render("{{ or .E .Missing \"dflt\" }}|{{ and .S .N }}|{{ and .E .S }}", d),
                        "dflt|5|");
    /* and/or short-circuit: the failing index is never evaluated. */
    assert_string_equal(render("{{ or .S (index .L 99) }}", d), "hello");
    assert_string_equal(render("{{ print 1 2 \"a\" 3 }}|{{ println \"x\" 1 }}|", d), "1 2a3|x 1\n|");
    assert_string_equal(render("{{ printf \"%s-%d-%v%%\" .S .N .L }}", d), "hello-5-[a b c]%");
    assert_string_equal(render("{{ \"x\" | printf \"%s!\" }}{{ .L | len }}", d), "x!3");
    assert_string_equal(render("{{ json .M }} {{ json \"<a&b>\\n\" }} {{ json .L }}", d),
                        "{\"k\":\"v\"} \"\\u003ca\\u0026b\\u003e\\n\" [\"a\",\"b\",\"c\"]");
    assert_string_equal(render("{{ if lt .N 10 }}lt{{ end }}{{ if ge .N 5 }}ge{{ end }}"
                               "{{ if gt \"b\" \"a\" }}gt{{ end }}{{ if ne .S \"x\" }}ne{{ end }}"
                               "{{ if eq .S \"a\" \"hello\" }}eq{{ end }}", d), "ltgegtneeq");
    assert_string_equal(render("{{ (index .L 0) }}{{ (slice .L 1).Foo }}", d),
                        "ERR:template: line 1: can't evaluate field Foo in a non-object value");
    assert_string_equal(render("{{ eq (len (slice .L 2)) 1 }}", d), "true");
    assert_string_equal(render("{{ html \"<b>\" }} {{ urlquery \"a b&c\" }}", d),
                        "&lt;b&gt; a+b%26c");
    assert_string_equal(render("{{ len (currentDate) }}", d), "10");
    assert_string_equal(render("{{ .F }} {{ .G }} {{ .H }} {{ .I }} {{ .J }}",
                               "{\"F\":0.1,\"G\":1e300,\"H\":1000000.0,\"I\":2.5e-5,\"J\":-3.0}"),
                        "0.1 1e+300 1e+06 2.5e-05 -3");
    assert_string_equal(render("{{ json .F }} {{ json .H }} {{ json .I }} {{ json .K }}",
                               "{\"F\":0.1,\"H\":1000000.0,\"I\":2.5e-7,\"K\":1e21}"),
                        "0.1 1000000 2.5e-7 1e+21");
}

static void test_errors(void **state)
{
    (void)state;
    assert_string_equal(render("{{ if .X }}x", NULL),
                        "ERR:template: line 1: unexpected EOF: missing {{end}}");
    assert_string_equal(render("a\n{{ end }}", NULL), "ERR:template: line 2: unexpected {{end}}");
    assert_string_equal(render("{{ .X", NULL), "ERR:template: line 1: unclosed action");
    assert_string_equal(render("{{ foo 1 }}", NULL),
                        "ERR:template: line 1: function \"foo\" not defined");
    assert_string_equal(render("{{ \"abc }}", NULL),
                        "ERR:template: line 1: unterminated quoted string");
    assert_string_equal(render("{{ template \"x\" }}", NULL),
                        "ERR:template: line 1: {{template}} is not supported");
    assert_string_equal(render("{{ break }}", NULL),
                        "ERR:template: line 1: {{break}} outside {{range}}");
    assert_string_equal(render("{{ (1 }}", NULL),
                        "ERR:template: line 1: unexpected end of action (unclosed parenthesis)");
    assert_string_equal(render("{{ index .L 5 }}", "{\"L\":[1]}"),
                        "ERR:template: line 1: error calling index: index out of range");
    assert_string_equal(render("{{ $nope }}", NULL), "ERR:template: line 1: undefined variable: $nope");
    assert_string_equal(render("{{ eq .L 1 }}", "{\"L\":[1]}"),
                        "ERR:template: line 1: error calling eq: incompatible types for comparison");
    assert_string_equal(render("{{ 1 2 }}", NULL),
                        "ERR:template: line 1: can't give argument to non-function");
    assert_string_equal(render("{{ /* x }}", NULL), "ERR:template: line 1: unexpected character '/' in action");
}

static void test_hostile(void **state)
{
    (void)state;
    /* Deep nesting is refused at parse time. */
    ox_buf_t s = OX_BUF_INIT;
    for (int i = 0; i < 200; i++)
        ox_buf_puts(&s, "{{ if 1 }}");
    for (int i = 0; i < 200; i++)
        ox_buf_puts(&s, "{{ end }}");
    assert_non_null(strstr(render(s.data, NULL), "nested too deeply"));
    ox_buf_reset(&s);
    ox_buf_puts(&s, "{{ ");
    for (int i = 0; i < 500; i++)
        ox_buf_puts(&s, "(");
    ox_buf_puts(&s, "1 }}");
    assert_non_null(strstr(render(s.data, NULL), "ERR:"));
    ox_buf_free(&s);
    /* Blow-up through nested ranges stops at the step/output limits. */
    ox_buf_t d = OX_BUF_INIT;
    ox_buf_puts(&d, "{\"B\":[");
    for (int i = 0; i < 1000; i++)
        ox_buf_printf(&d, "%s%d", i ? "," : "", i);
    ox_buf_puts(&d, "]}");
    char *r = render("{{ range .B }}{{ range $.B }}{{ range $.B }}xxxxxxxxxxxxxxxx{{ end }}{{ end }}"
                     "{{ end }}", d.data);
    assert_true(strstr(r, "exceeded") || strstr(r, "exceeds"));
    ox_buf_free(&d);

    /* Random garbage built from template fragments never crashes. */
    static const char *frag[] = {"{{", "}}", "{{-", "-}}", " if ", " range ", " end ", " else ",
                                 ".X", "$", "$x", ":=", "=", "(", ")", "|", "\"s\"", "`r`", "1",
                                 "eq", "len", "slice", "index", " ", "text", ",", "$.L", "/*",
                                 "*/", "with", "'c'", "-", "break", "json", "printf", "\\"};
    unsigned seed = 12345;
    for (int it = 0; it < 3000; it++) {
        char buf[512];
        size_t o = 0;
        int n = 1 + (int)((seed = seed * 1103515245 + 12345) >> 16) % 20;
        for (int k = 0; k < n; k++) {
            const char *f = frag[((seed = seed * 1103515245 + 12345) >> 16) % (sizeof(frag) / sizeof(frag[0]))];
            size_t l = strlen(f);
            if (o + l >= sizeof(buf))
                break;
            memcpy(buf + o, f, l);
            o += l;
        }
        buf[o] = 0;
        render(buf, "{\"X\":[1,2],\"L\":[\"a\"]}");
    }
}

/* ---- real templates ---- */

static char *render_messages(const char *builtin, const char *msgs_json, const char *tools_json)
{
    static char result[65536];
    char err[256] = "";
    tmpl_t *t = NULL;
    const char *src = tmpl_builtin(builtin);
    if (!src)
        src = builtin; /* template text given directly */
    assert_int_equal(tmpl_parse(src, strlen(src), &t, err, sizeof(err)), 0);
    json_error_t je;
    json_t *msgs = json_loads(msgs_json, 0, &je);
    json_t *tools = tools_json ? json_loads(tools_json, 0, &je) : NULL;
    assert_non_null(msgs);
    ox_buf_t out = OX_BUF_INIT;
    int rc = tmpl_render_messages(t, msgs, tools, &out, err, sizeof(err));
    if (rc)
        snprintf(result, sizeof(result), "ERR:%s", err);
    else
        snprintf(result, sizeof(result), "%s", out.data ? out.data : "");
    ox_buf_free(&out);
    json_decref(msgs);
    json_decref(tools);
    tmpl_free(t);
    return result;
}

#define TOOLS                                                                                   \
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Get "      \
    "weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"description\":"   \
    "\"City\",\"type\":\"string\"}},\"required\":[\"city\"]}}}]"
#define FUNC_JSON                                                                              \
    "{\"name\":\"get_weather\",\"description\":\"Get weather\",\"parameters\":{\"type\":"       \
    "\"object\",\"required\":[\"city\"],\"properties\":{\"city\":{\"type\":\"string\","          \
    "\"description\":\"City\"}}}}"
#define TOOL_JSON "{\"type\":\"function\",\"function\":" FUNC_JSON "}"
#define CALL_MSGS                                                                              \
    "[{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"                                  \
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":"         \
    "\"get_weather\",\"arguments\":{\"unit\":\"c\",\"city\":\"Paris\"}}}]},"                    \
    "{\"role\":\"tool\",\"content\":\"22C\"}]"

static void test_llama3(void **state)
{
    (void)state;
    assert_string_equal(
        render_messages("llama3",
                        "[{\"role\":\"system\",\"content\":\"You are a bot.\"},"
                        "{\"role\":\"user\",\"content\":\"Hi\"},"
                        "{\"role\":\"assistant\",\"content\":\"Hello!\"},"
                        "{\"role\":\"user\",\"content\":\"How are you?\"}]", NULL),
        "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n\n"
        "You are a bot.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
    /* Tools go into the last user turn, as JSON in Ollama's field order. */
    assert_string_equal(
        render_messages("llama3", "[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}]", TOOLS),
        "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n\n"
        "When you receive a tool call response, use the output to format an answer to the orginal "
        "user question.\n\nYou are a helpful assistant with tool calling capabilities.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please "
        "respond with a JSON for a function call with its proper arguments that best answers the "
        "given prompt.\n\nRespond in the format {\"name\": function name, \"parameters\": "
        "dictionary of argument name and its value}. Do not use variables.\n\n" TOOL_JSON "\n\n"
        "Weather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    /* Tool call (arguments re-ordered like a Go map) and tool result. */
    const char *r = render_messages("llama3", CALL_MSGS, TOOLS);
    assert_non_null(strstr(r,
        "<|start_header_id|>user<|end_header_id|>\n\nWeather in Paris?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", "
        "\"parameters\": {\"city\":\"Paris\",\"unit\":\"c\"}}<|eot_id|>"
        "<|start_header_id|>ipython<|end_header_id|>\n\n22C<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"));
    /* A final assistant message is a prefill: no <|eot_id|> after it. */
    r = render_messages("llama3", "[{\"role\":\"user\",\"content\":\"Hi\"},"
                                  "{\"role\":\"assistant\",\"content\":\"Sure, \"}]", NULL);
    assert_string_equal(r, "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
                           "December 2023\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>"
                           "\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nSure, ");
}

static void test_qwen25(void **state)
{
    (void)state;
    assert_string_equal(
        render_messages("chatml", "[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                                  "{\"role\":\"user\",\"content\":\"Hi\"}]", TOOLS),
        "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist "
        "with the user query.\n\nYou are provided with function signatures within <tools></tools> "
        "XML tags:\n<tools>\n{\"type\": \"function\", \"function\": " FUNC_JSON "}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
        "\"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nHi"
        "<|im_end|>\n<|im_start|>assistant\n");
    assert_string_equal(render_messages("chatml", CALL_MSGS, NULL),
                        "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n"
                        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                        "{\"city\":\"Paris\",\"unit\":\"c\"}}\n</tool_call><|im_end|>\n"
                        "<|im_start|>user\n<tool_response>\n22C\n</tool_response><|im_end|>\n"
                        "<|im_start|>assistant\n");
    assert_string_equal(render_messages("chatml", "[{\"role\":\"user\",\"content\":\"Hi\"},"
                                                  "{\"role\":\"assistant\",\"content\":\"Hel\"}]",
                                        NULL),
                        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHel");
    /* Consecutive user messages are collated with a blank line. */
    assert_string_equal(render_messages("chatml", "[{\"role\":\"user\",\"content\":\"a\"},"
                                                  "{\"role\":\"user\",\"content\":\"b\"}]", NULL),
                        "<|im_start|>user\na\n\nb<|im_end|>\n<|im_start|>assistant\n");
}

static void test_legacy_mode(void **state)
{
    (void)state;
    const char *legacy = "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
                         "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
                         "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n";
    assert_string_equal(
        render_messages(legacy, "[{\"role\":\"system\",\"content\":\"S\"},"
                                "{\"role\":\"user\",\"content\":\"A\"},"
                                "{\"role\":\"assistant\",\"content\":\"B\"},"
                                "{\"role\":\"user\",\"content\":\"C\"}]", NULL),
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nA<|im_end|>\n<|im_start|>assistant\n"
        "B<|im_end|>\n<|im_start|>user\nC<|im_end|>\n<|im_start|>assistant\n");
    /* Prefill: the last assistant text stays, the rest after .Response goes. */
    assert_string_equal(render_messages(legacy, "[{\"role\":\"user\",\"content\":\"A\"},"
                                                "{\"role\":\"assistant\",\"content\":\"B\"}]", NULL),
                        "<|im_start|>user\nA<|im_end|>\n<|im_start|>assistant\nB");
    assert_string_equal(render_messages("raw", "[{\"role\":\"user\",\"content\":\"just text\"}]", NULL),
                        "just text");
}

static void test_request_messages(void **state)
{
    (void)state;
    json_t *m = tmpl_generate_messages("Why?", NULL, "model sys", NULL, false);
    char *s = json_dumps(m, JSON_COMPACT);
    assert_string_equal(s, "[{\"role\":\"system\",\"content\":\"model sys\"},"
                           "{\"role\":\"user\",\"content\":\"Why?\"}]");
    free(s);
    json_decref(m);
    m = tmpl_generate_messages("Why?", "req sys", "model sys", NULL, false);
    s = json_dumps(m, JSON_COMPACT);
    assert_non_null(strstr(s, "req sys"));
    assert_null(strstr(s, "model sys"));
    free(s);
    json_decref(m);

    json_t *req = json_loads("[{\"role\":\"user\",\"content\":\"q\"}]", 0, NULL);
    m = tmpl_chat_messages(req, "model sys", NULL);
    assert_int_equal(json_array_size(m), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "role")), "system");
    json_decref(m);
    json_decref(req);
    req = json_loads("[{\"role\":\"system\",\"content\":\"mine\"}]", 0, NULL);
    m = tmpl_chat_messages(req, "model sys", NULL);
    assert_int_equal(json_array_size(m), 1);
    json_decref(m);
    json_decref(req);
    json_t *bad = json_string("x");
    assert_null(tmpl_chat_messages(bad, NULL, NULL));
    json_decref(bad);
}

static long count_bytes(void *ctx, const char *text, size_t len)
{
    (void)ctx;
    (void)text;
    return (long)len;
}

static void test_fit(void **state)
{
    (void)state;
    const char *src = "{{ range .Messages }}[{{ .Role }}:{{ .Content }}]{{ end }}";
    tmpl_t *t = NULL;
    char err[200];
    assert_int_equal(tmpl_parse(src, strlen(src), &t, err, sizeof(err)), 0);
    json_t *msgs = json_loads("[{\"role\":\"system\",\"content\":\"S\"},"
                              "{\"role\":\"user\",\"content\":\"1111111111\"},"
                              "{\"role\":\"assistant\",\"content\":\"2222222222\"},"
                              "{\"role\":\"user\",\"content\":\"3333\"}]", 0, NULL);
    ox_buf_t out = OX_BUF_INIT;
    assert_int_equal(tmpl_render_messages_fit(t, msgs, NULL, 45, count_bytes, NULL, &out, err,
                                              sizeof(err)), 0);
    assert_string_equal(out.data, "[system:S][assistant:2222222222][user:3333]");
    ox_buf_reset(&out);
    assert_int_equal(tmpl_render_messages_fit(t, msgs, NULL, 1000, count_bytes, NULL, &out, err,
                                              sizeof(err)), 0);
    assert_string_equal(out.data, "[system:S][user:1111111111][assistant:2222222222][user:3333]");
    ox_buf_reset(&out);
    /* Even when nothing fits, the last message is kept. */
    assert_int_equal(tmpl_render_messages_fit(t, msgs, NULL, 1, count_bytes, NULL, &out, err,
                                              sizeof(err)), 0);
    assert_string_equal(out.data, "[system:S][user:3333]");
    ox_buf_free(&out);
    json_decref(msgs);
    tmpl_free(t);
}

static void test_builtins(void **state)
{
    (void)state;
    const char *names[] = {"llama3", "chatml", "mistral", "llama2", "raw"};
    for (size_t i = 0; i < 5; i++) {
        char *r = render_messages(names[i], "[{\"role\":\"system\",\"content\":\"S\"},"
                                            "{\"role\":\"user\",\"content\":\"Q\"}]", TOOLS);
        assert_null(strstr(r, "ERR:"));
        assert_non_null(strstr(r, "Q"));
    }
    assert_string_equal(render_messages("mistral", "[{\"role\":\"user\",\"content\":\"Q\"},"
                                                   "{\"role\":\"assistant\",\"content\":\"A\"},"
                                                   "{\"role\":\"user\",\"content\":\"R\"}]", NULL),
                        "[INST] Q[/INST] A</s>[INST] R[/INST]");
    assert_string_equal(tmpl_builtin_for("llama", "{% ... <|start_header_id|> %}"), "llama3");
    assert_string_equal(tmpl_builtin_for("qwen2", NULL), "chatml");
    assert_string_equal(tmpl_builtin_for("llama", "[INST] x"), "mistral");
    assert_string_equal(tmpl_builtin_for("llama", NULL), "raw");
    assert_null(tmpl_builtin("nope"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basics),    cmocka_unit_test(test_functions),
        cmocka_unit_test(test_errors),    cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_llama3),    cmocka_unit_test(test_qwen25),
        cmocka_unit_test(test_legacy_mode), cmocka_unit_test(test_request_messages),
        cmocka_unit_test(test_fit),       cmocka_unit_test(test_builtins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
