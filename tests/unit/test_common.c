#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/sha256.h"
#include "common/timeutil.h"

static void test_err_names(void **state)
{
    (void)state;
    assert_string_equal(ox_strerror(OX_ENOTFOUND), "not found");
    assert_string_equal(ox_errname(OX_EDIGEST), "OX_EDIGEST");
    assert_string_equal(ox_strerror(-999), "unknown error");
}

static void test_buf(void **state)
{
    (void)state;
    ox_buf_t b = OX_BUF_INIT;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ox_buf_printf(&b, "%d,", i), 0);
    assert_true(strncmp(b.data, "0,1,2,", 6) == 0);
    assert_int_equal(b.data[b.len], 0);
    size_t before = b.len;
    ox_buf_consume(&b, 2);
    assert_int_equal(b.len, before - 2);
    assert_true(strncmp(b.data, "1,2,", 4) == 0);
    char *s = ox_buf_steal(&b);
    assert_null(b.data);
    free(s);
    ox_buf_free(&b);
}

static void test_sha256(void **state)
{
    (void)state;
    char hex[65];
    ox_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ox_sha256_t s = {0};
    assert_int_equal(ox_sha256_init(&s), 0);
    ox_sha256_update(&s, "a", 1);
    ox_sha256_update(&s, "bc", 2);
    uint8_t raw[32];
    ox_sha256_final(&s, raw);
    ox_sha256_free(&s);
    char hex2[65];
    ox_hex_encode(raw, 32, hex2);
    assert_string_equal(hex, hex2);
}

static void test_fs_atomic(void **state)
{
    (void)state;
    char dir[] = "/tmp/oxfsXXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/c.txt", dir);
    assert_int_equal(ox_fs_write_atomic(path, "hello", 5), 0);
    char *data;
    size_t len;
    assert_int_equal(ox_fs_read_all(path, 100, &data, &len), 0);
    assert_int_equal(len, 5);
    assert_string_equal(data, "hello");
    free(data);
    assert_int_equal(ox_fs_read_all(path, 2, &data, &len), OX_ETOOBIG);
    uint8_t raw[32];
    uint64_t size;
    assert_int_equal(ox_sha256_file(path, raw, &size), 0);
    assert_int_equal(size, 5);
    unlink(path);
    ox_fs_prune_empty_dirs(path, dir);
    char sub[256];
    snprintf(sub, sizeof sub, "%s/a", dir);
    assert_int_equal(access(sub, F_OK), -1);
    assert_int_equal(access(dir, F_OK), 0);
    rmdir(dir);
}

static void test_time(void **state)
{
    (void)state;
    char out[64];
    ox_time_rfc3339(1721681271147561000LL, out, sizeof out);
    assert_string_equal(out, "2024-07-22T20:47:51.147561Z");
    ox_time_rfc3339(1721681271000000000LL, out, sizeof out);
    assert_string_equal(out, "2024-07-22T20:47:51Z");
    int64_t ns;
    assert_int_equal(ox_duration_parse("5m", &ns), 0);
    assert_true(ns == 300000000000LL);
    assert_int_equal(ox_duration_parse("1h30m", &ns), 0);
    assert_true(ns == 5400000000000LL);
    assert_int_equal(ox_duration_parse("-1s", &ns), 0);
    assert_true(ns == -1000000000LL);
    assert_int_equal(ox_duration_parse("300ms", &ns), 0);
    assert_true(ns == 300000000LL);
    assert_int_equal(ox_duration_parse("0", &ns), 0);
    assert_true(ns == 0);
    assert_int_equal(ox_duration_parse("5", &ns), OX_EINVAL);
    assert_int_equal(ox_duration_parse("abc", &ns), OX_EINVAL);
    assert_int_equal(ox_duration_parse("", &ns), OX_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_names), cmocka_unit_test(test_buf),
        cmocka_unit_test(test_sha256),    cmocka_unit_test(test_fs_atomic),
        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
