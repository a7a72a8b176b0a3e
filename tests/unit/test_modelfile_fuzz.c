/* Mutation fuzzing of the Modelfile parser: random edits of valid Modelfiles
 * (and pure noise) must parse or fail with a "line N" / "no FROM" message,
 * never crash, read past the input or leak (run under ASan+UBSan). The input
 * is copied into an exact-size heap buffer so any over-read is caught. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/err.h"
#include "daemon/modelfile.h"

static const char *seeds[] = {
    "FROM llama3\nPARAMETER temperature 0.7\nPARAMETER stop \"<|eot|>\"\nSYSTEM \"\"\"be\nnice\"\"\"\n",
    "from ./m.gguf\nTEMPLATE \"{{ .Prompt }}\"\nMESSAGE user hi\nMESSAGE assistant \"hello\\n\"\nLICENSE MIT\n",
    "# c\nFROM x\nADAPTER ./a.gguf\nPARAMETER num_ctx 4096\nPARAMETER mirostat true\n",
    "FROM x\nTEMPLATE \"\"\"\n{{ if .System }}{{ .System }}{{ end }}\"\"\"\n",
};

static const char *tokens[] = {"\"", "\"\"\"", "\\", "\n", "\r\n", " ", "\t", "#", "FROM ", "PARAMETER ",
                               "MESSAGE ", "stop ", "num_ctx ", "1e999", "-1", "\xff", "\0",
                               "TEMPLATE ", "99999999999999999999"};

static uint64_t rng = 88172645463325252ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void parse_exact(const char *buf, size_t n)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, buf, n);
    modelfile_t mf;
    char err[256] = "";
    int rc = modelfile_parse(copy, n, &mf, err, sizeof err);
    if (rc == 0) {
        modelfile_free(&mf);
    } else {
        assert_true(rc == OX_EFORMAT || rc == OX_ENOMEM);
        assert_true(err[0] != 0);
    }
    free(copy);
}

static void test_mutations(void **state)
{
    (void)state;
    char buf[4096];
    for (int iter = 0; iter < 20000; iter++) {
        const char *s = seeds[next() % (sizeof seeds / sizeof seeds[0])];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int edits = 1 + (int)(next() % 6);
        for (int e = 0; e < edits; e++) {
            size_t p = n ? next() % (n + 1) : 0;
            switch (next() % 4) {
            case 0: /* flip a byte */
                if (n)
                    buf[p % n] = (char)next();
                break;
            case 1: /* cut */
                n = p;
                break;
            case 2: { /* insert a token */
                const char *t = tokens[next() % (sizeof tokens / sizeof tokens[0])];
                size_t tl = *t ? strlen(t) : 1;
                if (n + tl < sizeof buf) {
                    memmove(buf + p + tl, buf + p, n - p);
                    memcpy(buf + p, t, tl);
                    n += tl;
                }
                break;
            }
            default: /* delete a run */
                if (p < n) {
                    size_t k = 1 + next() % 8;
                    if (k > n - p)
                        k = n - p;
                    memmove(buf + p, buf + p + k, n - p - k);
                    n -= k;
                }
            }
        }
        parse_exact(buf, n);
    }
}

static void test_noise_and_edges(void **state)
{
    (void)state;
    char buf[512];
    for (int iter = 0; iter < 5000; iter++) {
        size_t n = next() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)next();
        parse_exact(buf, n);
    }
    static const char *edge[] = {"", "FROM", "FROM ", "FROM \"", "FROM \"\"\"", "FROM x\nSYSTEM \"\"\"",
                                 "FROM x\nPARAMETER", "FROM x\nPARAMETER stop", "FROM x\nMESSAGE",
                                 "FROM x\nMESSAGE user", "FROM x\nTEMPLATE \"\\", "\"\"\"\"\"\""};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++)
        parse_exact(edge[i], strlen(edge[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_noise_and_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
