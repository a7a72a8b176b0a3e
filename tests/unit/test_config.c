/* node_config_load (environment, config file, precedence, errors) and
 * node_host_parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "daemon/node.h"

static const char *vars[] = {"OLLAMAX_HOME", "OLLAMAX_MODELS", "OLLAMA_MODELS", "OLLAMAX_HOST",
                             "OLLAMA_HOST", "OLLAMA_ORIGINS", "OLLAMAX_PEERS",
                             "OLLAMAX_MAX_UPLOAD", "OLLAMAX_MAX_DOWNLOAD", "OLLAMA_KEEP_ALIVE",
                             "OLLAMA_NUM_PARALLEL", "OLLAMA_MAX_QUEUE", "OLLAMAX_SWARM_PORT",
                             "OLLAMAX_REGISTRY"};
static char home[64];

static int setup(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    snprintf(home, sizeof home, "/tmp/oxcfgXXXXXX");
    if (!mkdtemp(home))
        return -1;
    setenv("OLLAMAX_HOME", home, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", home);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_config(const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/config", home);
    assert_int_equal(ox_fs_write_atomic(path, text, strlen(text)), 0);
}

static void unlink_config(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/config", home);
    unlink(path);
}

static void test_defaults(void **state)
{
    (void)state;
    node_config_t c;
    char err[256] = "";
    assert_int_equal(node_config_load(&c, err, sizeof err), 0);
    assert_string_equal(c.home, home);
    char models[128];
    snprintf(models, sizeof models, "%s/models", home);
    assert_string_equal(c.models, models);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 11434);
    assert_int_equal(c.keep_alive_ns, 300LL * 1000000000LL);
    assert_int_equal(c.num_parallel, 1);
    assert_int_equal(c.max_queue, 512);
    assert_int_equal(c.swarm_port, 0);
    assert_int_equal(c.max_upload, 0);
    assert_string_equal(c.origins, "");
}

static void test_default_home(void **state)
{
    (void)state;
    unsetenv("OLLAMAX_HOME");
    setenv("HOME", "/nonexistent-home-for-test", 1);
    node_config_t c;
    char err[256];
    assert_int_equal(node_config_load(&c, err, sizeof err), 0);
    assert_string_equal(c.home, "/nonexistent-home-for-test/.ollamax");
    assert_string_equal(c.models, "/nonexistent-home-for-test/.ollamax/models");
}

static void test_env(void **state)
{
    (void)state;
    setenv("OLLAMA_MODELS", "/m/ollama", 1);
    setenv("OLLAMA_HOST", "0.0.0.0:8080", 1);
    setenv("OLLAMA_ORIGINS", "http://a.example,https://b.example", 1);
    setenv("OLLAMAX_PEERS", "10.0.0.1:11434,10.0.0.2:11434", 1);
    setenv("OLLAMAX_MAX_UPLOAD", "10M", 1);
    setenv("OLLAMAX_MAX_DOWNLOAD", "100mbit", 1);
    setenv("OLLAMA_KEEP_ALIVE", "1h30m", 1);
    setenv("OLLAMA_NUM_PARALLEL", "4", 1);
    setenv("OLLAMA_MAX_QUEUE", "16", 1);
    setenv("OLLAMAX_SWARM_PORT", "6881", 1);
    node_config_t c;
    char err[256];
    assert_int_equal(node_config_load(&c, err, sizeof err), 0);
    assert_string_equal(c.models, "/m/ollama");
    assert_string_equal(c.host, "0.0.0.0");
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.origins, "http://a.example,https://b.example");
    assert_string_equal(c.peers, "10.0.0.1:11434,10.0.0.2:11434");
    assert_int_equal(c.max_upload, 10000000);
    assert_int_equal(c.max_download, 12500000);
    assert_int_equal(c.keep_alive_ns, 5400LL * 1000000000LL);
    assert_int_equal(c.num_parallel, 4);
    assert_int_equal(c.max_queue, 16);
    assert_int_equal(c.swarm_port, 6881);

    /* the OLLAMAX_ names win over the OLLAMA_ ones */
    setenv("OLLAMAX_MODELS", "/m/ollamax", 1);
    setenv("OLLAMAX_HOST", ":9000", 1);
    setenv("OLLAMA_KEEP_ALIVE", "-1", 1);
    setenv("OLLAMAX_MAX_UPLOAD", "512Ki", 1);
    assert_int_equal(node_config_load(&c, err, sizeof err), 0);
    assert_string_equal(c.models, "/m/ollamax");
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 9000);
    assert_true(c.keep_alive_ns < 0);
    assert_int_equal(c.max_upload, 512 * 1024);
}

static void test_file_and_precedence(void **state)
{
    (void)state;
    write_config("# settings\n"
                 "OLLAMA_HOST=10.1.2.3:7000\n"
                 "\n"
                 "  OLLAMAX_PEERS = \"10.0.0.9:11434\"  \n"
                 "export OLLAMA_NUM_PARALLEL=3\n"
                 "OLLAMA_MAX_QUEUE=99\n"
                 "garbage line without equals\n");
    setenv("OLLAMA_MAX_QUEUE", "7", 1);
    node_config_t c;
    char err[256];
    assert_int_equal(node_config_load(&c, err, sizeof err), 0);
    assert_string_equal(c.host, "10.1.2.3");
    assert_int_equal(c.port, 7000);
    assert_string_equal(c.peers, "10.0.0.9:11434");
    assert_int_equal(c.num_parallel, 3);
    assert_int_equal(c.max_queue, 7); /* environment wins */
}

static void test_errors(void **state)
{
    (void)state;
    struct {
        const char *var, *val, *want;
    } bad[] = {
        {"OLLAMA_HOST", "127.0.0.1:99999", "OLLAMA_HOST"},
        {"OLLAMA_HOST", "host:port", "OLLAMA_HOST"},
        {"OLLAMAX_MAX_UPLOAD", "fast", "OLLAMAX_MAX_UPLOAD"},
        {"OLLAMAX_MAX_DOWNLOAD", "10Q", "OLLAMAX_MAX_DOWNLOAD"},
        {"OLLAMA_KEEP_ALIVE", "5 minutes", "OLLAMA_KEEP_ALIVE"},
        {"OLLAMA_NUM_PARALLEL", "0", "OLLAMA_NUM_PARALLEL"},
        {"OLLAMA_MAX_QUEUE", "12x", "OLLAMA_MAX_QUEUE"},
        {"OLLAMAX_SWARM_PORT", "70000", "OLLAMAX_SWARM_PORT"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv(bad[i].var, bad[i].val, 1);
        node_config_t c;
        char err[256] = "";
        assert_int_equal(node_config_load(&c, err, sizeof err), OX_EINVAL);
        assert_non_null(strstr(err, bad[i].want));
        unsetenv(bad[i].var);
    }
    /* a bad value in the file is reported too */
    write_config("OLLAMA_NUM_PARALLEL=lots\n");
    node_config_t c;
    char err[256] = "";
    assert_int_equal(node_config_load(&c, err, sizeof err), OX_EINVAL);
    assert_non_null(strstr(err, "OLLAMA_NUM_PARALLEL"));
}

/* OLLAMAX_MAX_UPLOAD / OLLAMAX_MAX_DOWNLOAD take swarm_rate_parse's syntax. */
static void test_rates(void **state)
{
    (void)state;
    struct {
        const char *val;
        uint64_t want;
    } ok[] = {
        {"unlimited", 0},         {"0", 0},     {"1T", 1000000000000ULL},
        {"1Ti", 1099511627776ULL}, {"10M", 10000000}, {"8Mbit/s", 1000000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        setenv("OLLAMAX_MAX_UPLOAD", ok[i].val, 1);
        setenv("OLLAMAX_MAX_DOWNLOAD", ok[i].val, 1);
        node_config_t c;
        char err[256] = "";
        if (node_config_load(&c, err, sizeof err) != 0)
            fail_msg("rate \"%s\" refused: %s", ok[i].val, err);
        assert_int_equal(c.max_upload, ok[i].want);
        assert_int_equal(c.max_download, ok[i].want);
    }
    unsetenv("OLLAMAX_MAX_UPLOAD");
    unsetenv("OLLAMAX_MAX_DOWNLOAD");

    /* an empty value is "not set": the file's value, or unlimited */
    setenv("OLLAMAX_MAX_UPLOAD", "", 1);
    node_config_t c;
    char err[256] = "";
    assert_int_equal(node_config_load(&c, err, sizeof err), 0);
    assert_int_equal(c.max_upload, 0);
    write_config("OLLAMAX_MAX_UPLOAD=2Ti\nOLLAMAX_MAX_DOWNLOAD=\"unlimited\"\n");
    assert_int_equal(node_config_load(&c, err, sizeof err), 0);
    assert_int_equal(c.max_upload, 2199023255552ULL);
    assert_int_equal(c.max_download, 0);
    unsetenv("OLLAMAX_MAX_UPLOAD");
    unlink_config();

    const char *bad[] = {"nan", "NaN", "inf", "-inf", "-5", "5X", "0x10", "1e400", "12M x",
                         "99999999999T", "0.4", "1bit"};
    const char *var[] = {"OLLAMAX_MAX_UPLOAD", "OLLAMAX_MAX_DOWNLOAD"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t j = 0; j < 2; j++) {
            setenv(var[j], bad[i], 1);
            char e[256] = "";
            if (node_config_load(&c, e, sizeof e) != OX_EINVAL)
                fail_msg("%s=\"%s\" accepted", var[j], bad[i]);
            assert_non_null(strstr(e, var[j]));
            assert_non_null(strstr(e, bad[i]));
            assert_null(strchr(e, '\n'));
            unsetenv(var[j]);
        }
    }
    /* the same refusal for a value from the file */
    write_config("OLLAMAX_MAX_DOWNLOAD=nan\n");
    err[0] = 0;
    assert_int_equal(node_config_load(&c, err, sizeof err), OX_EINVAL);
    assert_non_null(strstr(err, "OLLAMAX_MAX_DOWNLOAD"));
}

static void test_host_parse(void **state)
{
    (void)state;
    struct {
        const char *in, *host, *scheme;
        int port;
    } ok[] = {
        {"example.com", "example.com", "", 11434},
        {"example.com:80", "example.com", "", 80},
        {":8080", "127.0.0.1", "", 8080},
        {"0.0.0.0", "0.0.0.0", "", 11434},
        {"http://10.0.0.5:1234", "10.0.0.5", "http", 1234},
        {"HTTPS://h.local", "h.local", "https", 11434},
        {"http://h:1/some/path", "h", "http", 1},
        {"[::1]:9000", "::1", "", 9000},
        {"[::]", "::", "", 11434},
        {"::1", "::1", "", 11434},
        {"  10.0.0.1:5  ", "10.0.0.1", "", 5},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char host[64] = "127.0.0.1", scheme[16] = "";
        int port = 11434;
        assert_int_equal(node_host_parse(ok[i].in, host, sizeof host, &port, scheme, sizeof scheme),
                         0);
        assert_string_equal(host, ok[i].host);
        assert_int_equal(port, ok[i].port);
        assert_string_equal(scheme, ok[i].scheme);
    }
    const char *bad[] = {"h:", "h:abc", "h:65536", "[::1", "[::1]x", "://h", "h:-1", "a b:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char host[64] = "keep";
        int port = 1;
        assert_int_equal(node_host_parse(bad[i], host, sizeof host, &port, NULL, 0), OX_EINVAL);
        assert_int_equal(port, 1);
    }
    char tiny[4];
    int port = 1;
    assert_int_equal(node_host_parse("longhost:1", tiny, sizeof tiny, &port, NULL, 0), OX_EINVAL);
}

static void test_registry(void **state)
{
    (void)state;
    node_config_t c;
    char err[256];
    assert_int_equal(node_config_load(&c, err, sizeof err), 0);
    assert_string_equal(c.registry, ""); /* the default registry */
    static const char *ok[][2] = {{"http://10.0.0.5:5000", "http://10.0.0.5:5000"},
                                  {"https://mirror.example/", "https://mirror.example"}};
    for (size_t i = 0; i < 2; i++) {
        setenv("OLLAMAX_REGISTRY", ok[i][0], 1);
        assert_int_equal(node_config_load(&c, err, sizeof err), 0);
        assert_string_equal(c.registry, ok[i][1]);
    }
    static const char *bad[] = {"mirror.example", "ftp://m", "http://", "https://m/v2", "http:///"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv("OLLAMAX_REGISTRY", bad[i], 1);
        assert_int_equal(node_config_load(&c, err, sizeof err), OX_EINVAL);
        assert_non_null(strstr(err, "OLLAMAX_REGISTRY"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_home, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_and_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
        cmocka_unit_test(test_host_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
