/* The api's HTTP policy over a real socket: fixed routes, 404/405 texts,
 * JSON errors for bad bodies, CORS and the DNS-rebinding Host check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <strings.h>

#include "api_fixture.h"

static void test_root_and_version(void **state)
{
    fx_t *f = *state;
    resp_t r;
    char h[256];
    fx_request(f, "GET", "/", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "Ollama is running");
    assert_string_equal(resp_header(&r, "Content-Type", h, sizeof h), "text/plain; charset=utf-8");
    resp_free(&r);

    fx_request(f, "HEAD", "/", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "");
    resp_free(&r);

    fx_request(f, "GET", "/api/version", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"version\":\"" OX_VERSION "\"}");
    assert_string_equal(resp_header(&r, "Content-Type", h, sizeof h),
                        "application/json; charset=utf-8");
    resp_free(&r);
}

static void test_not_found_and_method(void **state)
{
    fx_t *f = *state;
    resp_t r;
    fx_request(f, "GET", "/nope", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body.data, "404 page not found");
    resp_free(&r);

    fx_request(f, "GET", "/api/show", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.body.data, "405 method not allowed");
    resp_free(&r);

    fx_request(f, "POST", "/api/tags", "{}", 2, NULL, &r);
    assert_int_equal(r.status, 405);
    resp_free(&r);

    fx_request(f, "POST", "/api/delete", "{}", 2, NULL, &r);
    assert_int_equal(r.status, 405);
    resp_free(&r);

    fx_request(f, "DELETE", "/v2/library/x/manifests/latest", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 405);
    resp_free(&r);
}

static void test_empty_store(void **state)
{
    fx_t *f = *state;
    resp_t r;
    fx_request(f, "GET", "/api/tags", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"models\":[]}");
    resp_free(&r);

    fx_request(f, "HEAD", "/api/tags", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    fx_request(f, "GET", "/api/ps", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"models\":[]}");
    resp_free(&r);

    fx_json(f, "POST", "/api/show", "{\"model\":\"nothere\"}", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body.data, "{\"error\":\"model 'nothere' not found\"}");
    resp_free(&r);

    fx_json(f, "DELETE", "/api/delete", "{\"name\":\"nothere:tag\"}", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body.data, "{\"error\":\"model 'nothere:tag' not found\"}");
    resp_free(&r);

    fx_json(f, "POST", "/api/copy", "{\"source\":\"a\",\"destination\":\"b\"}", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body.data, "{\"error\":\"model \\\"a\\\" not found\"}");
    resp_free(&r);
}

static void test_bad_bodies(void **state)
{
    fx_t *f = *state;
    resp_t r;
    fx_request(f, "POST", "/api/show", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body.data, "{\"error\":\"missing request body\"}");
    resp_free(&r);

    fx_json(f, "POST", "/api/show", "{\"model\": ", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "\"error\":\"invalid JSON"));
    resp_free(&r);

    fx_json(f, "POST", "/api/show", "[1,2]", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "cannot unmarshal array"));
    resp_free(&r);

    fx_json(f, "POST", "/api/show", "{}", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body.data, "{\"error\":\"model is required\"}");
    resp_free(&r);

    const char *bad_names[] = {"{\"model\":\"a//b\"}", "{\"model\":\"bad name\"}",
                               "{\"model\":\"-x\"}"};
    for (size_t i = 0; i < 3; i++) {
        fx_json(f, "POST", "/api/show", bad_names[i], &r);
        assert_int_equal(r.status, 400);
        assert_string_equal(r.body.data, "{\"error\":\"invalid model name\"}");
        resp_free(&r);
    }
    fx_json(f, "DELETE", "/api/delete", "{\"model\":\"x y\"}", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body.data, "{\"error\":\"invalid model name\"}");
    resp_free(&r);
    fx_json(f, "POST", "/api/create", "{\"model\":\"ok\"}", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body.data, "{\"error\":\"neither 'from' or 'files' was specified\"}");
    resp_free(&r);
}

static void test_cors(void **state)
{
    fx_t *f = *state;
    resp_t r;
    char h[1024];
    const char *pre[] = {"Origin: http://localhost:3000", "Access-Control-Request-Method: POST",
                         NULL};
    fx_request(f, "OPTIONS", "/api/chat", NULL, 0, pre, &r);
    assert_int_equal(r.status, 204);
    assert_string_equal(resp_header(&r, "Access-Control-Allow-Origin", h, sizeof h),
                        "http://localhost:3000");
    assert_non_null(strstr(resp_header(&r, "Access-Control-Allow-Methods", h, sizeof h), "POST"));
    assert_non_null(
        strstr(resp_header(&r, "Access-Control-Allow-Headers", h, sizeof h), "Content-Type"));
    resp_free(&r);

    const char *ok[] = {"Origin: app://obsidian.md", NULL};
    fx_request(f, "GET", "/api/version", NULL, 0, ok, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Access-Control-Allow-Origin", h, sizeof h),
                        "app://obsidian.md");
    resp_free(&r);

    const char *evil[] = {"Origin: https://evil.example", NULL};
    fx_request(f, "GET", "/api/version", NULL, 0, evil, &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(resp_header(&r, "Access-Control-Allow-Origin", h, sizeof h), "");
    resp_free(&r);

    /* no Origin: not a CORS request */
    fx_request(f, "GET", "/api/version", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Access-Control-Allow-Origin", h, sizeof h), "");
    resp_free(&r);
}

static void test_host_check(void **state)
{
    fx_t *f = *state;
    resp_t r;
    const char *ok[] = {"Host: localhost:11434", "Host: 127.0.0.1", "Host: 10.1.2.3:80",
                        "Host: 192.168.0.4", "Host: foo.localhost", "Host: box.local",
                        "Host: svc.internal:8080", "Host: [::1]:11434", "Host: 0.0.0.0"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *hd[] = {ok[i], NULL};
        fx_request(f, "GET", "/api/version", NULL, 0, hd, &r);
        if (r.status != 200)
            fail_msg("%s -> %ld", ok[i], r.status);
        resp_free(&r);
    }
    const char *bad[] = {"Host: evil.example", "Host: 8.8.8.8:11434", "Host: attacker.com:80",
                         "Host: localhost.evil.com"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *hd[] = {bad[i], NULL};
        fx_request(f, "GET", "/api/version", NULL, 0, hd, &r);
        if (r.status != 403)
            fail_msg("%s -> %ld", bad[i], r.status);
        resp_free(&r);
    }
}

static int setup_origins(void **state)
{
    return fx_start_host(state, "127.0.0.1", " https://my.app , http://*.corp.example");
}

static void test_custom_origins(void **state)
{
    fx_t *f = *state;
    resp_t r;
    const char *a[] = {"Origin: https://my.app", NULL};
    fx_request(f, "GET", "/api/tags", NULL, 0, a, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    const char *b[] = {"Origin: http://x.corp.example", NULL};
    fx_request(f, "GET", "/api/tags", NULL, 0, b, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    const char *c[] = {"Origin: http://x.corp.example.evil", NULL};
    fx_request(f, "GET", "/api/tags", NULL, 0, c, &r);
    assert_int_equal(r.status, 403);
    resp_free(&r);
}

static int setup_any_host(void **state)
{
    return fx_start_host(state, "0.0.0.0", NULL);
}

static void test_no_host_check_when_public(void **state)
{
    fx_t *f = *state;
    resp_t r;
    const char *hd[] = {"Host: evil.example", NULL};
    fx_request(f, "GET", "/api/version", NULL, 0, hd, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_root_and_version, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_not_found_and_method, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_empty_store, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_bodies, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_cors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_host_check, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_custom_origins, setup_origins, fx_teardown),
        cmocka_unit_test_setup_teardown(test_no_host_check_when_public, setup_any_host,
                                        fx_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
