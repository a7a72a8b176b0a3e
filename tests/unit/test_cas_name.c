/* cas pure functions: model names, digests, manifest JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cas/cas.h"
#include "common/err.h"

static const char *H64 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

static void expect_name(const char *in, const char *scheme, const char *host, const char *ns,
                        const char *model, const char *tag, const char *display)
{
    cas_name_t n;
    int rc = cas_name_parse(in, &n);
    if (rc)
        fail_msg("cas_name_parse(\"%s\") = %d, want 0", in, rc);
    assert_string_equal(n.scheme, scheme);
    assert_string_equal(n.host, host);
    assert_string_equal(n.ns, ns);
    assert_string_equal(n.model, model);
    assert_string_equal(n.tag, tag);
    char d[600];
    cas_name_display(&n, d, sizeof d);
    assert_string_equal(d, display);
}

static void test_name_valid(void **state)
{
    (void)state;
    expect_name("llama3.2", "https", "registry.ollama.ai", "library", "llama3.2", "latest",
                "llama3.2:latest");
    expect_name("llama3.2:1b", "https", "registry.ollama.ai", "library", "llama3.2", "1b",
                "llama3.2:1b");
    expect_name("user/m:tag", "https", "registry.ollama.ai", "user", "m", "tag", "user/m:tag");
    expect_name("host/ns/m:tag", "https", "host", "ns", "m", "tag", "host/ns/m:tag");
    expect_name("localhost:5000/ns/m", "https", "localhost:5000", "ns", "m", "latest",
                "localhost:5000/ns/m:latest");
    expect_name("localhost:5000/ns/m:v1.2", "https", "localhost:5000", "ns", "m", "v1.2",
                "localhost:5000/ns/m:v1.2");
    expect_name("http://10.0.0.5:11434/library/qwen2:0.5b", "http", "10.0.0.5:11434", "library",
                "qwen2", "0.5b", "10.0.0.5:11434/library/qwen2:0.5b");
    expect_name("https://registry.ollama.ai/library/m", "https", "registry.ollama.ai", "library",
                "m", "latest", "m:latest");
    /* Case kept as written; default host/ns dropped case-insensitively. */
    expect_name("Registry.Ollama.AI/Library/Llama3:Latest", "https", "Registry.Ollama.AI",
                "Library", "Llama3", "Latest", "Llama3:Latest");
    expect_name("registry.ollama.ai/user/m", "https", "registry.ollama.ai", "user", "m",
                "latest", "user/m:latest");
    expect_name("_a/_b/_c:_d", "https", "_a", "_b", "_c", "_d", "_a/_b/_c:_d");
    expect_name("a-b.c/ns-x/m_o.d-e:t.a-g_", "https", "a-b.c", "ns-x", "m_o.d-e", "t.a-g_",
                "a-b.c/ns-x/m_o.d-e:t.a-g_");
    /* '..' inside a part is harmless (not a whole path segment). */
    expect_name("a..b", "https", "registry.ollama.ai", "library", "a..b", "latest",
                "a..b:latest");
    char longm[81];
    memset(longm, 'm', 80);
    longm[80] = 0;
    cas_name_t n;
    assert_int_equal(cas_name_parse(longm, &n), 0);
    char longh[400];
    memset(longh, 'h', 350);
    strcpy(longh + 350, "/n/m");
    assert_int_equal(cas_name_parse(longh, &n), 0);
    assert_int_equal(strlen(n.host), 350);
}

static void test_name_invalid(void **state)
{
    (void)state;
    static const char *bad[] = {
        "", ":", "m:", ":tag", "/m", "m/", "a//b", "a/b/", "//m", "a/b/c/d", "a/b/c/d:e",
        "..", "../m", "ns/..", "../../etc/passwd", "./m", "m/.", "host/ns/..:tag", ".m",
        "-m", "m:-t", "m:.t", "m:t/x", "ns.x/m/y/z", "m!", "m m", "m:t:u", "a/b:c/d",
        "ftp://h/n/m", "https://", "https:///m", "h/n.s/m", "h/n:s/m", "m\n", "mé",
        "host/ns/m:" , "ns/m:t t", "\\m", "m\\x", "-h/n/m", ".h/n/m", "h/-n/m",
        NULL};
    for (int i = 0; bad[i]; i++) {
        cas_name_t n;
        if (cas_name_parse(bad[i], &n) != OX_EINVAL)
            fail_msg("cas_name_parse(\"%s\") accepted an invalid name", bad[i]);
    }
    char longm[82];
    memset(longm, 'm', 81);
    longm[81] = 0;
    cas_name_t n;
    assert_int_equal(cas_name_parse(longm, &n), OX_EINVAL);
    char tag[90] = "m:";
    memset(tag + 2, 't', 81);
    tag[83] = 0;
    assert_int_equal(cas_name_parse(tag, &n), OX_EINVAL);
    char ns[90];
    memset(ns, 'n', 81);
    strcpy(ns + 81, "/m");
    assert_int_equal(cas_name_parse(ns, &n), OX_EINVAL);
    char longh[400];
    memset(longh, 'h', 351);
    strcpy(longh + 351, "/n/m");
    assert_int_equal(cas_name_parse(longh, &n), OX_EINVAL);
    assert_int_equal(cas_name_parse(NULL, &n), OX_EINVAL);
}

static void test_name_equal_full(void **state)
{
    (void)state;
    cas_name_t a, b, c;
    assert_int_equal(cas_name_parse("Llama3.2:Latest", &a), 0);
    assert_int_equal(cas_name_parse("REGISTRY.ollama.ai/LIBRARY/llama3.2", &b), 0);
    assert_int_equal(cas_name_parse("llama3.2:1b", &c), 0);
    assert_true(cas_name_equal(&a, &b));
    assert_false(cas_name_equal(&a, &c));
    char full[600];
    cas_name_full(&a, full, sizeof full);
    assert_string_equal(full, "registry.ollama.ai/library/Llama3.2:Latest");
    cas_name_t d;
    assert_int_equal(cas_name_parse("localhost:5000/ns/m", &d), 0);
    cas_name_full(&d, full, sizeof full);
    assert_string_equal(full, "localhost:5000/ns/m:latest");
    /* Display round-trips through parse. */
    char disp[600];
    cas_name_display(&d, disp, sizeof disp);
    cas_name_t e;
    assert_int_equal(cas_name_parse(disp, &e), 0);
    assert_true(cas_name_equal(&d, &e));
}

static void test_digest(void **state)
{
    (void)state;
    char out[72], in[80];
    snprintf(in, sizeof in, "sha256:%s", H64);
    assert_int_equal(cas_digest_parse(in, out), 0);
    assert_string_equal(out, in);
    snprintf(in, sizeof in, "sha256-%s", "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789");
    assert_int_equal(cas_digest_parse(in, out), 0);
    assert_string_equal(out,
                        "sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
    static const char *bad[] = {
        "", "sha256:", "sha256:abc",
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaag",
        "sha256_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "SHA256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "sha512:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "sha256:../../aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        NULL};
    for (int i = 0; bad[i]; i++)
        if (cas_digest_parse(bad[i], out) != OX_EINVAL)
            fail_msg("cas_digest_parse accepted \"%s\"", bad[i]);
    assert_int_equal(cas_digest_parse(NULL, out), OX_EINVAL);
}

#define MT "application/vnd.docker.distribution.manifest.v2+json"
#define CT "application/vnd.docker.container.image.v1+json"

static void test_manifest_roundtrip(void **state)
{
    (void)state;
    char json[2048];
    snprintf(json, sizeof json,
             "{\"schemaVersion\":2,\"mediaType\":\"" MT "\",\"config\":{\"mediaType\":\"" CT
             "\",\"digest\":\"sha256:%s\",\"size\":485},\"layers\":[{\"mediaType\":"
             "\"application/vnd.ollama.image.model\",\"digest\":\"sha256:%s\",\"size\":"
             "1321082688,\"from\":\"/x/y\"},{\"mediaType\":\"application/vnd.ollama.image."
             "template\",\"digest\":\"sha256:%s\",\"size\":1429}]}",
             H64, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
             "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
    cas_manifest_t m;
    char err[256];
    assert_int_equal(cas_manifest_parse(json, strlen(json), &m, err, sizeof err), 0);
    assert_int_equal(m.schema_version, 2);
    assert_string_equal(m.media_type, MT);
    assert_int_equal(m.config.size, 485);
    assert_int_equal(m.n_layers, 2);
    assert_int_equal(m.layers[0].size, 1321082688ULL);
    assert_string_equal(m.layers[0].from, "/x/y");
    assert_string_equal(m.layers[1].from, "");
    size_t len;
    char *out = cas_manifest_serialize(&m, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(json));
    assert_string_equal(out, json);
    free(out);
    cas_manifest_free(&m);

    /* Go-style escaping and pretty input re-serialised compactly. */
    snprintf(json, sizeof json,
             "{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"a<b>&c\",\n  \"config\": "
             "{\"digest\": \"sha256-%s\", \"size\": 0, \"mediaType\": \"x\"},\n  \"layers\": []}",
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_int_equal(cas_manifest_parse(json, strlen(json), &m, err, sizeof err), 0);
    out = cas_manifest_serialize(&m, &len);
    char want[512];
    snprintf(want, sizeof want,
             "{\"schemaVersion\":2,\"mediaType\":\"a\\u003cb\\u003e\\u0026c\",\"config\":"
             "{\"mediaType\":\"x\",\"digest\":\"sha256:%s\",\"size\":0},\"layers\":[]}",
             H64);
    assert_string_equal(out, want);
    free(out);
    cas_manifest_free(&m);
}

static void test_manifest_errors(void **state)
{
    (void)state;
    char err[256];
    cas_manifest_t m;
    static const char *bad[] = {
        "", "{", "[]", "null", "{\"schemaVersion\":2}",
        "{\"config\":{\"digest\":\"sha256:abc\",\"size\":1}}",
        "{\"config\":{\"digest\":\"sha256:../../../etc/passwd\",\"size\":1}}",
        "{\"config\":{\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
        "\"size\":-1}}",
        "{\"config\":{\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
        "\"size\":\"1\"}}",
        "{\"config\":{\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
        "\"size\":1},\"layers\":{}}",
        "{\"config\":{\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
        "\"size\":1},\"layers\":[{\"digest\":\"md5:00\",\"size\":1}]}",
        "{\"config\":{\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
        "\"size\":1},\"layers\":[7]}",
        "{\"schemaVersion\":\"2\",\"config\":{\"digest\":\"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
        "\"size\":1}}",
        NULL};
    for (int i = 0; bad[i]; i++) {
        err[0] = 0;
        if (cas_manifest_parse(bad[i], strlen(bad[i]), &m, err, sizeof err) != OX_EFORMAT)
            fail_msg("manifest %d accepted: %s", i, bad[i]);
        assert_true(err[0] != 0);
        assert_null(m.layers);
    }
    assert_int_equal(cas_manifest_parse("{", 1, &m, err, sizeof err), OX_EFORMAT);
    assert_non_null(strstr(err, "line"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_valid),      cmocka_unit_test(test_name_invalid),
        cmocka_unit_test(test_name_equal_full), cmocka_unit_test(test_digest),
        cmocka_unit_test(test_manifest_roundtrip), cmocka_unit_test(test_manifest_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
