/* ox_tokdump: encodes a JSON array of strings with the C tokenizer of a GGUF,
 * for tests/integration/test_tokenizer_ref.py.
 *
 * Usage: ox_tokdump GGUF CASES_JSON [--bench]
 * Prints {"add_bos": bool, "bos": id, "cases": [{"ids": [...], "ids_bos": [...],
 * "ids_plain": [...], "text": "decoded", "stream": "streamed"}...]}:
 * ids = encode(parse_special), ids_bos = the same with add_special,
 * ids_plain = special texts treated as plain text, text = decode(ids) with
 * special tokens rendered, stream = the streaming detokenizer's output of ids
 * (special tokens dropped). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "inference/gguf.h"
#include "inference/tokenizer.h"

static json_t *ids_json(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    return a;
}

int main(int argc, char **argv)
{
    bool bench = argc == 4 && strcmp(argv[3], "--bench") == 0;
    if (argc != 3 && !bench) {
        fprintf(stderr, "usage: ox_tokdump GGUF CASES_JSON [--bench]\n");
        return 2;
    }
    char err[256] = "";
    gguf_t *g = NULL;
    tok_t *t = NULL;
    int rc = gguf_open(argv[1], &g, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "ox_tokdump: %s: %s\n", argv[1], err);
        return 1;
    }
    rc = tok_load(g, &t, err, sizeof(err));
    gguf_close(g);
    if (rc) {
        fprintf(stderr, "ox_tokdump: tokenizer: %s (%s)\n", err, ox_strerror(rc));
        return 1;
    }
    json_error_t jerr;
    json_t *cases = json_load_file(argv[2], 0, &jerr);
    if (!json_is_array(cases)) {
        fprintf(stderr, "ox_tokdump: %s: %s\n", argv[2], jerr.text);
        tok_free(t);
        return 1;
    }
    json_t *res = json_object(), *arr = json_array();
    json_object_set_new(res, "add_bos", json_boolean(tok_add_bos(t)));
    json_object_set_new(res, "bos", json_integer(tok_bos(t)));
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *s = json_string_value(c);
        size_t len = json_string_length(c);
        int32_t *ids = NULL, *ids_bos = NULL, *ids_plain = NULL;
        size_t n = 0, nb = 0, np = 0;
        if (!s || tok_encode(t, s, len, false, true, &ids, &n) ||
            tok_encode(t, s, len, true, true, &ids_bos, &nb) ||
            tok_encode(t, s, len, false, false, &ids_plain, &np)) {
            fprintf(stderr, "ox_tokdump: case %zu failed\n", i);
            return 1;
        }
        ox_buf_t dec = OX_BUF_INIT, clean = OX_BUF_INIT, st = OX_BUF_INIT;
        tok_decode(t, ids, n, true, &dec);
        tok_utf8_sanitize(dec.data ? dec.data : "", dec.len, &clean);
        tok_stream_t ts;
        tok_stream_init(&ts, t);
        for (size_t k = 0; k < n; k++)
            tok_stream_push(&ts, ids[k], &st);
        tok_stream_flush(&ts, &st);
        tok_stream_free(&ts);
        json_t *o = json_object();
        json_object_set_new(o, "ids", ids_json(ids, n));
        json_object_set_new(o, "ids_bos", ids_json(ids_bos, nb));
        json_object_set_new(o, "ids_plain", ids_json(ids_plain, np));
        json_object_set_new(o, "text", json_stringn(clean.data ? clean.data : "", clean.len));
        json_object_set_new(o, "stream", json_stringn(st.data ? st.data : "", st.len));
        json_array_append_new(arr, o);
        ox_buf_free(&dec);
        ox_buf_free(&clean);
        ox_buf_free(&st);
        free(ids);
        free(ids_bos);
        free(ids_plain);
    }
    json_object_set_new(res, "cases", arr);
    if (bench) {
        /* Encoding speed on the corpus repeated to about 4 MiB (stderr). */
        ox_buf_t big = OX_BUF_INIT;
        while (big.len < (4u << 20))
            json_array_foreach(cases, i, c) {
                ox_buf_append(&big, json_string_value(c), json_string_length(c));
                ox_buf_puts(&big, " ");
            }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int32_t *ids = NULL;
        size_t n = 0;
        tok_encode(t, big.data, big.len, true, true, &ids, &n);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        fprintf(stderr, "encoded %zu bytes into %zu tokens in %.3f s (%.1f MB/s, %.0f tokens/s)\n",
                big.len, n, s, (double)big.len / s / 1e6, (double)n / s);
        free(ids);
        ox_buf_free(&big);
    }
    char *out = json_dumps(res, JSON_COMPACT);
    puts(out);
    free(out);
    json_decref(res);
    json_decref(cases);
    tok_free(t);
    return 0;
}
