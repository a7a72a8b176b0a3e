/* libFuzzer harness for the GGUF reader (not built by default).
 *
 * Build and run from the repository root (clang with libFuzzer, e.g. Debian's
 * clang-14):
 *
 *   clang -std=gnu11 -g -O1 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined \
 *       tests/fuzz/fuzz_gguf.c inference/gguf.c inference/gguf_types.c common/err.c \
 *       -o /tmp/fuzz_gguf
 *   mkdir -p /tmp/gguf_corpus
 *   /usr/bin/python3 tests/tools/mkgguf.py /tmp/gguf_corpus/seed.gguf --vocab 320 --dim 32 --layers 1
 *   /tmp/fuzz_gguf -max_len=65536 -max_total_time=300 /tmp/gguf_corpus
 *
 * Any small valid GGUF makes a good seed (mkgguf.py output, or the files the
 * unit test builds). The harness opens the input from an exactly-sized heap
 * copy, so ASan reports any read past its end, then exercises every look-up
 * on success to touch all indexed data. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "inference/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    gguf_t *g = NULL;
    char err[256];
    int rc = gguf_open_buffer(copy, size, &g, err, sizeof err);
    if (rc == 0) {
        volatile uint64_t sink = 0;
        for (uint64_t i = 0; i < g->n_kv; i++) {
            const gguf_kv_t *kv = &g->kv[i];
            char key[128], s[64];
            size_t n = kv->key.len < sizeof key - 1 ? (size_t)kv->key.len : sizeof key - 1;
            memcpy(key, kv->key.p, n);
            key[n] = 0;
            uint64_t u;
            int64_t v;
            double f;
            gguf_get_u64(g, key, &u);
            gguf_get_i64(g, key, &v);
            gguf_get_f64(g, key, &f);
            gguf_get_str(g, key, s, sizeof s);
            if (kv->val.type == GGUF_T_ARRAY && kv->val.v.arr.type == GGUF_T_STRING) {
                gguf_str_t e;
                for (uint64_t j = 0; j < kv->val.v.arr.n; j++)
                    if (gguf_arr_str(kv, j, &e) == 0 && e.len)
                        sink += (uint8_t)e.p[e.len - 1];
            }
        }
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const gguf_tensor_t *t = &g->tensors[i];
            if (t->size)
                sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->size - 1];
        }
        char ps[32];
        gguf_param_size_str(gguf_param_count(g), ps, sizeof ps);
        (void)sink;
        gguf_close(g);
    } else if (rc != OX_EFORMAT && rc != OX_ENOMEM) {
        abort(); /* a buffer open can only fail on format or memory */
    } else if (strncmp(err, "gguf: ", 6) != 0) {
        abort(); /* every failure explains itself */
    }
    free(copy);
    return 0;
}
