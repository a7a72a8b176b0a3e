/* Pull's pure parts: part planning, URLs, WWW-Authenticate, the sidecar and
 * the resume decisions it drives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/pull.h"
#include "common/err.h"
#include "common/fs.h"

#define MB (1000ull * 1000)
#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void check_cover(const pull_part_t *p, size_t n, uint64_t total)
{
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(p[i].start, at);
        assert_int_equal(p[i].done, 0);
        at += p[i].len;
    }
    assert_int_equal(at, total);
}

static void test_plan(void **state)
{
    (void)state;
    pull_part_t *p;
    size_t n;
    /* small blob: one part */
    assert_int_equal(pull_plan(5 * MB, PULL_PART_MIN, PULL_PART_MAX, &p, &n), 0);
    assert_int_equal(n, 1);
    check_cover(p, n, 5 * MB);
    free(p);
    /* 4 GB: total/16 = 250 MB */
    assert_int_equal(pull_plan(4000 * MB, PULL_PART_MIN, PULL_PART_MAX, &p, &n), 0);
    assert_int_equal(n, 16);
    assert_int_equal(p[0].len, 250 * MB);
    check_cover(p, n, 4000 * MB);
    free(p);
    /* 1 GB: total/16 < 100 MB, so 100 MB parts, last one shorter */
    assert_int_equal(pull_plan(1050 * MB, PULL_PART_MIN, PULL_PART_MAX, &p, &n), 0);
    assert_int_equal(n, 11);
    assert_int_equal(p[0].len, 100 * MB);
    assert_int_equal(p[10].len, 50 * MB);
    check_cover(p, n, 1050 * MB);
    free(p);
    /* 40 GB: clamped at 1000 MB */
    assert_int_equal(pull_plan(40000 * MB + 7, PULL_PART_MIN, PULL_PART_MAX, &p, &n), 0);
    assert_int_equal(n, 41);
    assert_int_equal(p[0].len, 1000 * MB);
    assert_int_equal(p[40].len, 7);
    check_cover(p, n, 40000 * MB + 7);
    free(p);
    /* empty blob: one empty part */
    assert_int_equal(pull_plan(0, PULL_PART_MIN, PULL_PART_MAX, &p, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(p[0].len, 0);
    free(p);
    /* small minimum (tests): several parts of a small blob */
    assert_int_equal(pull_plan(10000, 1000, PULL_PART_MAX, &p, &n), 0);
    assert_int_equal(n, 10);
    check_cover(p, n, 10000);
    free(p);
    assert_int_equal(pull_plan(10, 0, 10, &p, &n), OX_EINVAL);
    assert_int_equal(pull_plan(10, 20, 10, &p, &n), OX_EINVAL);
}

static void test_urls(void **state)
{
    (void)state;
    cas_name_t nm;
    char url[512];
    assert_int_equal(cas_name_parse("llama3.2", &nm), 0);
    assert_int_equal(pull_base_url(&nm, 0, url, sizeof(url)), 0);
    assert_string_equal(url, "https://registry.ollama.ai/v2/library/llama3.2/");
    assert_int_equal(cas_name_parse("127.0.0.2:4000/library/m:tag", &nm), 0);
    assert_int_equal(pull_base_url(&nm, 1, url, sizeof(url)), 0);
    assert_string_equal(url, "http://127.0.0.2:4000/v2/library/m/");
    assert_int_equal(pull_base_url(&nm, 0, url, sizeof(url)), 0);
    assert_string_equal(url, "https://127.0.0.2:4000/v2/library/m/");
    assert_int_equal(pull_base_url(&nm, 0, url, 10), OX_ETOOBIG);

    const char *base = "http://h:1/v2/library/m/blobs/sha256:ab";
    assert_int_equal(pull_url_resolve(base, "https://cdn.example/x?y=1", url, sizeof(url)), 0);
    assert_string_equal(url, "https://cdn.example/x?y=1");
    assert_int_equal(pull_url_resolve(base, "/v2/other", url, sizeof(url)), 0);
    assert_string_equal(url, "http://h:1/v2/other");
    assert_int_equal(pull_url_resolve(base, "//cdn/x", url, sizeof(url)), 0);
    assert_string_equal(url, "http://cdn/x");
    assert_int_equal(pull_url_resolve(base, "relative", url, sizeof(url)), OX_EINVAL);
}

static void test_www_auth(void **state)
{
    (void)state;
    pull_auth_t a;
    assert_int_equal(pull_www_auth_parse("Bearer realm=\"https://auth.example/token\","
                                         "service=\"registry.example\","
                                         "scope=\"repository:library/m:pull\"",
                                         &a),
                     0);
    assert_string_equal(a.realm, "https://auth.example/token");
    assert_string_equal(a.service, "registry.example");
    assert_string_equal(a.scope, "repository:library/m:pull");
    char url[1024];
    assert_int_equal(pull_token_url(&a, url, sizeof(url)), 0);
    assert_string_equal(url, "https://auth.example/token?service=registry.example"
                             "&scope=repository%3Alibrary%2Fm%3Apull");
    /* order, spacing, bare values, case of the scheme and keys */
    assert_int_equal(pull_www_auth_parse("bearer  scope=a:b , Realm=http://r/t?x=1 ,foo=\"b,ar\"",
                                         &a),
                     0);
    assert_string_equal(a.realm, "http://r/t?x=1");
    assert_string_equal(a.scope, "a:b");
    assert_string_equal(a.service, "");
    assert_int_equal(pull_token_url(&a, url, sizeof(url)), 0);
    assert_string_equal(url, "http://r/t?x=1&scope=a%3Ab");
    assert_int_equal(pull_token_url(&a, url, 8), OX_ETOOBIG);
    /* not bearer, no realm, broken quoting */
    assert_int_equal(pull_www_auth_parse("Basic realm=\"x\"", &a), OX_EINVAL);
    assert_int_equal(pull_www_auth_parse("Bearer service=\"x\"", &a), OX_EINVAL);
    assert_int_equal(pull_www_auth_parse("Bearer realm=\"unterminated", &a), OX_EINVAL);
    assert_int_equal(pull_www_auth_parse("Bearerish realm=x", &a), OX_EINVAL);
    assert_int_equal(pull_www_auth_parse("", &a), OX_EINVAL);
}

static void test_sidecar_roundtrip(void **state)
{
    (void)state;
    pull_part_t *p, *q;
    size_t n, m;
    assert_int_equal(pull_plan(10000, 1000, PULL_PART_MAX, &p, &n), 0);
    p[0].done = 1000;  /* complete */
    p[3].done = 17;    /* partial */
    p[9].done = 999;
    size_t len;
    char *text = pull_sidecar_format(D1, 10000, p, n, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);

    assert_int_equal(pull_plan(10000, 1000, PULL_PART_MAX, &q, &m), 0);
    assert_int_equal(pull_sidecar_parse(text, len, D1, 10000, 10000, q, m), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(q[i].done, p[i].done);
    free(q);
    free(text);
    free(p);
}

/* Every way a sidecar can be unusable leaves the plan at zero, which makes
 * the caller restart the blob. */
static void test_sidecar_reject(void **state)
{
    (void)state;
    pull_part_t *p, *q;
    size_t n, m;
    assert_int_equal(pull_plan(10000, 1000, PULL_PART_MAX, &p, &n), 0);
    for (size_t i = 0; i < n; i++)
        p[i].done = 100 + i;
    size_t len;
    char *text = pull_sidecar_format(D1, 10000, p, n, &len);
    assert_int_equal(pull_plan(10000, 1000, PULL_PART_MAX, &q, &m), 0);

    /* every truncation */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(pull_sidecar_parse(text, cut, D1, 10000, 10000, q, m), OX_EFORMAT);
    /* every single flipped digit breaks the checksum or the structure */
    for (size_t i = 0; i < len; i++) {
        char saved = text[i];
        if (saved < '0' || saved > '8')
            continue;
        text[i] = (char)(saved + 1);
        assert_int_equal(pull_sidecar_parse(text, len, D1, 10000, 10000, q, m), OX_EFORMAT);
        text[i] = saved;
    }
    /* another digest, another size, another plan */
    assert_int_equal(pull_sidecar_parse(text, len, D2, 10000, 10000, q, m), OX_EFORMAT);
    assert_int_equal(pull_sidecar_parse(text, len, D1, 10001, 10001, q, m), OX_EFORMAT);
    pull_part_t *r;
    size_t k;
    assert_int_equal(pull_plan(10000, 2000, PULL_PART_MAX, &r, &k), 0);
    assert_int_equal(pull_sidecar_parse(text, len, D1, 10000, 10000, r, k), OX_EFORMAT);
    free(r);
    /* claims bytes past the end of the partial file (part 9 ends at 9109) */
    assert_int_equal(pull_sidecar_parse(text, len, D1, 10000, 9108, q, m), OX_EFORMAT);
    assert_int_equal(pull_sidecar_parse(text, len, D1, 10000, 9109, q, m), 0);
    /* trailing garbage, empty text, NULL */
    char *more = malloc(len + 2);
    memcpy(more, text, len);
    memcpy(more + len, "x\n", 2);
    for (size_t i = 0; i < m; i++)
        q[i].done = 0;
    assert_int_equal(pull_sidecar_parse(more, len + 2, D1, 10000, 10000, q, m), OX_EFORMAT);
    assert_int_equal(pull_sidecar_parse("", 0, D1, 10000, 10000, q, m), OX_EFORMAT);
    assert_int_equal(pull_sidecar_parse(NULL, 0, D1, 10000, 10000, q, m), OX_EFORMAT);
    for (size_t i = 0; i < m; i++)
        assert_int_equal(q[i].done, 0);
    free(more);
    free(text);
    free(p);
    free(q);
}

/* A record where done exceeds its part (written by a buggy or hostile
 * hand) is refused even with a valid checksum. */
static void test_sidecar_overfull(void **state)
{
    (void)state;
    pull_part_t *p;
    size_t n;
    assert_int_equal(pull_plan(3000, 1000, PULL_PART_MAX, &p, &n), 0);
    p[1].done = 1001;
    size_t len;
    char *text = pull_sidecar_format(D1, 3000, p, n, &len);
    p[1].done = 0;
    assert_int_equal(pull_sidecar_parse(text, len, D1, 3000, 3000, p, n), OX_EFORMAT);
    free(text);
    free(p);
}

static off_t file_size(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return st.st_size;
}

/* The resume decision on real files: a good sidecar resumes, anything else
 * truncates the partial and removes the sidecar. */
static void test_resume_prepare(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_pull_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char partial[256], side[256];
    snprintf(partial, sizeof(partial), "%s/p", dir);
    snprintf(side, sizeof(side), "%s/p.parts", dir);
    int fd = open(partial, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    pull_part_t *p;
    size_t n;
    int restarted;

    /* fresh start: no sidecar, empty partial */
    assert_int_equal(pull_resume_prepare(fd, side, D1, 10000, 1000, &p, &n, &restarted), 0);
    assert_int_equal(n, 10);
    assert_int_equal(restarted, 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i].done, 0);

    /* 3 parts written and recorded, part 5 half */
    char buf[10000];
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(pwrite(fd, buf, 5500, 0), 5500);
    p[0].done = p[1].done = p[2].done = 1000;
    p[5].done = 500;
    size_t len;
    char *text = pull_sidecar_format(D1, 10000, p, n, &len);
    assert_int_equal(ox_fs_write_atomic(side, text, len), 0);
    free(p);
    assert_int_equal(pull_resume_prepare(fd, side, D1, 10000, 1000, &p, &n, &restarted), 0);
    assert_int_equal(restarted, 0);
    assert_int_equal(p[2].done, 1000);
    assert_int_equal(p[3].done, 0);
    assert_int_equal(p[5].done, 500);
    assert_int_equal(file_size(fd), 5500);
    free(p);

    /* another plan (the part size changed): restart */
    assert_int_equal(pull_resume_prepare(fd, side, D1, 10000, 2000, &p, &n, &restarted), 0);
    assert_int_equal(restarted, 1);
    assert_int_equal(file_size(fd), 0);
    assert_int_not_equal(access(side, F_OK), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i].done, 0);
    free(p);

    /* a truncated sidecar: restart */
    assert_int_equal(pwrite(fd, buf, 5500, 0), 5500);
    assert_int_equal(ox_fs_write_atomic(side, text, len - 10), 0);
    assert_int_equal(pull_resume_prepare(fd, side, D1, 10000, 1000, &p, &n, &restarted), 0);
    assert_int_equal(restarted, 1);
    assert_int_equal(file_size(fd), 0);
    assert_int_not_equal(access(side, F_OK), 0);
    free(p);

    /* a good sidecar whose partial lost its tail (claims unwritten bytes) */
    assert_int_equal(pwrite(fd, buf, 3000, 0), 3000);
    assert_int_equal(ox_fs_write_atomic(side, text, len), 0);
    assert_int_equal(pull_resume_prepare(fd, side, D1, 10000, 1000, &p, &n, &restarted), 0);
    assert_int_equal(restarted, 1);
    assert_int_equal(file_size(fd), 0);
    free(p);

    /* bytes in the partial but no sidecar at all: they cannot be trusted */
    assert_int_equal(pwrite(fd, buf, 100, 0), 100);
    assert_int_equal(pull_resume_prepare(fd, side, D1, 10000, 1000, &p, &n, &restarted), 0);
    assert_int_equal(restarted, 1);
    assert_int_equal(file_size(fd), 0);
    free(p);

    free(text);
    close(fd);
    unlink(partial);
    unlink(side);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_www_auth),
        cmocka_unit_test(test_sidecar_roundtrip),
        cmocka_unit_test(test_sidecar_reject),
        cmocka_unit_test(test_sidecar_overfull),
        cmocka_unit_test(test_resume_prepare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
