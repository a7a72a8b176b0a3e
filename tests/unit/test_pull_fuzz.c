/* Hostile registry text for the pull helpers: Location headers and token
 * realms on other schemes are refused (curl would read file:// or speak
 * gopher:// for a hostile registry), and mutated WWW-Authenticate headers and
 * resume sidecars parse or fail cleanly, never crash, over-read (exact-size
 * heap copies under ASan) or accept a part beyond its range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/pull.h"
#include "common/err.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_redirect_schemes(void **state)
{
    (void)state;
    char out[512];
    const char *base = "http://reg.example:5000/v2/lib/m/blobs/sha256:ab";
    static const char *bad[] = {"file:///etc/passwd", "gopher://127.0.0.1:6379/_SET", "ftp://x/y",
                                "dict://127.0.0.1:11211/", "FILE:///etc/passwd", "javascript://x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(pull_url_resolve(base, bad[i], out, sizeof out), OX_EINVAL);
    assert_int_equal(pull_url_resolve(base, "HTTPS://cdn.example/b", out, sizeof out), 0);
    assert_string_equal(out, "HTTPS://cdn.example/b");
    assert_int_equal(pull_url_resolve(base, "http://cdn.example/b", out, sizeof out), 0);
}

static void test_token_realm_scheme(void **state)
{
    (void)state;
    pull_auth_t a;
    char url[1024];
    assert_int_equal(pull_www_auth_parse("Bearer realm=\"file:///etc/passwd\",service=\"x\"", &a), 0);
    assert_int_equal(pull_token_url(&a, url, sizeof url), OX_EINVAL);
    assert_int_equal(pull_www_auth_parse("Bearer realm=\"gopher://h:70/x\"", &a), 0);
    assert_int_equal(pull_token_url(&a, url, sizeof url), OX_EINVAL);
    assert_int_equal(pull_www_auth_parse("Bearer realm=\"https://auth.example/token\"", &a), 0);
    assert_int_equal(pull_token_url(&a, url, sizeof url), 0);
}

static void test_www_auth_mutations(void **state)
{
    (void)state;
    static const char seed[] = "Bearer realm=\"https://auth.example/token\",service=\"registry\","
                               "scope=\"repository:lib/m:pull\"";
    static const char junk[] = "\",= \\\x01\xff";
    char buf[600];
    for (int it = 0; it < 20000; it++) {
        size_t n = sizeof seed - 1;
        memcpy(buf, seed, n);
        for (int e = 0, k = 1 + (int)(next() % 6); e < k; e++) {
            size_t p = next() % (n + 1);
            if (next() % 3 == 0) {
                n = p;
            } else if (n + 1 < sizeof buf - 1) {
                memmove(buf + p + 1, buf + p, n - p);
                buf[p] = junk[next() % (sizeof junk - 1)];
                n++;
            }
        }
        if (next() % 8 == 0) /* very long values must not overflow the fields */
            for (; n < sizeof buf - 2; n++)
                buf[n] = 'v';
        char *copy = malloc(n + 1);
        assert_non_null(copy);
        memcpy(copy, buf, n);
        copy[n] = 0;
        pull_auth_t a;
        char url[2048];
        if (pull_www_auth_parse(copy, &a) == 0) {
            assert_true(strlen(a.realm) < sizeof a.realm);
            assert_true(a.realm[0] != 0);
            int rc = pull_token_url(&a, url, sizeof url);
            assert_true(rc == 0 || rc == OX_EINVAL || rc == OX_ETOOBIG);
        }
        free(copy);
    }
}

static void test_sidecar_mutations(void **state)
{
    (void)state;
    const char *digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const uint64_t total = 10u << 20;
    pull_part_t *parts = NULL;
    size_t n = 0;
    assert_int_equal(pull_plan(total, 1u << 20, 4u << 20, &parts, &n), 0);
    for (size_t i = 0; i < n; i++)
        parts[i].done = parts[i].len / 2;
    size_t len = 0;
    char *text = pull_sidecar_format(digest, total, parts, n, &len);
    assert_non_null(text);
    char *buf = malloc(len + 64);
    assert_non_null(buf);
    for (int it = 0; it < 20000; it++) {
        size_t m = len;
        memcpy(buf, text, len);
        for (int e = 0, k = 1 + (int)(next() % 4); e < k; e++) {
            size_t p = next() % (m + 1);
            switch (next() % 3) {
            case 0:
                if (m)
                    buf[p % m] = "0123456789\n x-"[next() % 14];
                break;
            case 1:
                m = p;
                break;
            default:
                if (m < len + 63) {
                    memmove(buf + p + 1, buf + p, m - p);
                    buf[p] = (char)next();
                    m++;
                }
            }
        }
        char *copy = malloc(m ? m : 1);
        assert_non_null(copy);
        memcpy(copy, buf, m);
        for (size_t i = 0; i < n; i++)
            parts[i].done = 0;
        int rc = pull_sidecar_parse(copy, m, digest, total, total, parts, n);
        assert_true(rc == 0 || rc == OX_EFORMAT);
        for (size_t i = 0; i < n; i++)
            assert_true(parts[i].done <= parts[i].len);
        free(copy);
    }
    free(buf);
    free(text);
    free(parts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redirect_schemes),
        cmocka_unit_test(test_token_realm_scheme),
        cmocka_unit_test(test_www_auth_mutations),
        cmocka_unit_test(test_sidecar_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
