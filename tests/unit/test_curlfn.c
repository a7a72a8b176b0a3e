/* curlfn: libcurl loaded with dlopen on first use. The load is once per
 * process, so each scenario that needs a fresh process (a missing library, a
 * library without curl's symbols, concurrent first loads) runs in a forked
 * child that reports through its exit status. The last tests check the
 * built binary: it must not link libcurl, and its CLI must explain a
 * missing libcurl instead of crashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "common/curlfn.h"
#include "common/curluv.h"
#include "common/err.h"

/* Runs fn in a child process; returns its exit status (or 100 + signal). */
static int in_child(int (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn());
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static int child_missing_lib(void)
{
    setenv("OLLAMAX_LIBCURL", "/nonexistent/libcurl.so.4", 1);
    if (ox_curl_load() != OX_EUNSUPPORTED)
        return 1;
    if (ox_curl() != NULL)
        return 2;
    const char *e = ox_curl_load_error();
    if (!strstr(e, "/nonexistent/libcurl.so.4") || !strstr(e, "libcurl4"))
        return 3;
    /* the result sticks: no second attempt, same answer */
    if (ox_curl_load() != OX_EUNSUPPORTED)
        return 4;
    /* curluv reports it instead of crashing */
    uv_loop_t loop;
    uv_loop_init(&loop);
    curluv_t *cu = NULL;
    if (curluv_new(&loop, &cu) != OX_EUNSUPPORTED || cu != NULL)
        return 5;
    uv_loop_close(&loop);
    return 0;
}

static void test_missing_library(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_missing_lib), 0);
}

static int child_wrong_lib(void)
{
    /* a real shared library without curl's symbols */
    setenv("OLLAMAX_LIBCURL", "libz.so.1", 1);
    if (ox_curl_load() != OX_EUNSUPPORTED)
        return 1;
    if (!strstr(ox_curl_load_error(), "has no curl_global_init"))
        return 2;
    return ox_curl() == NULL ? 0 : 3;
}

static void test_library_without_symbols(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_wrong_lib), 0);
}

static void *on_load_thread(void *ud)
{
    (void)ud;
    return ox_curl_load() == 0 ? (void *)ox_curl() : NULL;
}

static int child_concurrent_first_load(void)
{
    enum { N = 8 };
    pthread_t t[N];
    void *got[N];
    for (int i = 0; i < N; i++)
        if (pthread_create(&t[i], NULL, on_load_thread, NULL) != 0)
            return 1;
    for (int i = 0; i < N; i++)
        pthread_join(t[i], &got[i]);
    for (int i = 0; i < N; i++)
        if (!got[i] || got[i] != got[0])
            return 2;
    return 0;
}

static void test_concurrent_first_load(void **state)
{
    (void)state;
    assert_int_equal(in_child(child_concurrent_first_load), 0);
}

static void test_table_works(void **state)
{
    (void)state;
    assert_int_equal(ox_curl_load(), 0);
    const ox_curl_api_t *C = ox_curl();
    assert_non_null(C);
    assert_string_equal(ox_curl_load_error(), "");
    /* every entry resolved */
    void *const *fp = (void *const *)C;
    for (size_t i = 0; i < sizeof(*C) / sizeof(void *); i++)
        assert_non_null(fp[i]);
    assert_ptr_equal(ox_curl(), C);

    CURL *e = C->easy_init();
    assert_non_null(e);
    assert_int_equal(C->easy_setopt(e, CURLOPT_URL, "http://127.0.0.1:1/x"), CURLE_OK);
    assert_int_equal(C->easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 2000L), CURLE_OK);
    assert_int_equal(C->easy_setopt(e, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
    /* port 1 on loopback refuses: a real transfer through the table */
    CURLcode cc = C->easy_perform(e);
    assert_int_equal(cc, CURLE_COULDNT_CONNECT);
    assert_non_null(strstr(C->easy_strerror(cc), "connect"));
    long code = -1;
    assert_int_equal(C->easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
    assert_int_equal(code, 0);
    C->easy_cleanup(e);

    struct curl_slist *l = C->slist_append(NULL, "A: 1");
    l = C->slist_append(l, "B: 2");
    assert_string_equal(l->next->data, "B: 2");
    C->slist_free_all(l);

    CURLM *m = C->multi_init();
    assert_non_null(m);
    int left = -1;
    assert_null(C->multi_info_read(m, &left));
    assert_int_equal(C->multi_cleanup(m), CURLM_OK);
}

static const char *ollamax_bin(char *buf, size_t cap)
{
    const char *dir = getenv("OX_BUILD_DIR");
    snprintf(buf, cap, "%s/ollamax", dir ? dir : ".");
    return access(buf, X_OK) == 0 ? buf : NULL;
}

/* Reads all of a command's stdout. Returns its exit status. */
static int run_capture(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_binary_does_not_link_curl(void **state)
{
    (void)state;
    char bin[4096], cmd[4200];
    if (!ollamax_bin(bin, sizeof bin))
        skip();
    static char out[1 << 16];
    snprintf(cmd, sizeof cmd, "readelf -d '%s'", bin);
    assert_int_equal(run_capture(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "(NEEDED)"));  /* we read the right table */
    assert_non_null(strstr(out, "libuv"));
    assert_null(strstr(out, "libcurl"));
#ifdef OX_ROCKSDB_LINKED_STATIC
    assert_null(strstr(out, "librocksdb")); /* linked statically */
#endif
}

static void test_cli_explains_missing_curl(void **state)
{
    (void)state;
    char bin[4096], cmd[4400];
    if (!ollamax_bin(bin, sizeof bin))
        skip();
    static char out[8192];
    /* a port nothing listens on: the error must be about libcurl, which is
     * needed before any connection is tried */
    snprintf(cmd, sizeof cmd,
             "OLLAMAX_LIBCURL=/nonexistent/libcurl.so.4 OLLAMAX_HOST=127.0.0.1:1 '%s' list 2>&1",
             bin);
    assert_int_equal(run_capture(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "Error: cannot load /nonexistent/libcurl.so.4"));
    /* and with libcurl present the same command gets as far as connecting */
    snprintf(cmd, sizeof cmd, "OLLAMAX_HOST=127.0.0.1:1 '%s' list 2>&1", bin);
    assert_int_equal(run_capture(cmd, out, sizeof out), 1);
    assert_non_null(strstr(out, "could not connect"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_library),
        cmocka_unit_test(test_library_without_symbols),
        cmocka_unit_test(test_concurrent_first_load),
        cmocka_unit_test(test_table_works),
        cmocka_unit_test(test_binary_does_not_link_curl),
        cmocka_unit_test(test_cli_explains_missing_curl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
