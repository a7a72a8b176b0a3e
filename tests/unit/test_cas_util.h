/* Shared fixtures of the cas tests: a temp store under /tmp, blob and
 * manifest builders, a recording tap. Header-only (each test is one file). */
#ifndef OX_TEST_CAS_UTIL_H
#define OX_TEST_CAS_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas/cas.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/sha256.h"

typedef struct fx {
    char root[256];
    char models[300];
    char state[300];
    cas_t *c;
} fx_t;

__attribute__((unused)) static int on_rm(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

__attribute__((unused)) static void rm_rf(const char *p) { nftw(p, on_rm, 16, FTW_DEPTH | FTW_PHYS); }

__attribute__((unused)) static void fx_reopen(fx_t *f)
{
    char err[512] = "";
    if (f->c)
        cas_close(f->c);
    f->c = NULL;
    int rc = cas_open(f->models, f->state, &f->c, err, sizeof err);
    if (rc)
        fail_msg("cas_open: %d %s", rc, err);
}

__attribute__((unused)) static int fx_setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/ox-cas-test-XXXXXX");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->models, sizeof f->models, "%s/models", f->root);
    snprintf(f->state, sizeof f->state, "%s/state", f->root);
    fx_reopen(f);
    *state = f;
    return 0;
}

__attribute__((unused)) static int fx_teardown(void **state)
{
    fx_t *f = *state;
    cas_close(f->c);
    rm_rf(f->root);
    free(f);
    return 0;
}

/* Number of entries (other than . and ..) in dir. */
__attribute__((unused)) static int count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

__attribute__((unused)) static void digest_of(const void *p, size_t n, char out[72])
{
    char hex[65];
    ox_sha256_hex(p, n, hex);
    snprintf(out, 72, "sha256:%s", hex);
}

/* Ingests a NUL-terminated string as a blob; returns its digest in out. */
__attribute__((unused)) static void put_blob(cas_t *c, const char *data, char out[72])
{
    cas_ingest_t *in;
    char err[256] = "";
    assert_int_equal(cas_ingest_begin(c, NULL, 0, &in), 0);
    assert_int_equal(cas_ingest_write(in, data, strlen(data)), 0);
    assert_int_equal(cas_ingest_commit(in, out, NULL, err, sizeof err), 0);
}

/* Manifest naming config cfg and the given layers (digest, size pairs). */
__attribute__((unused)) static char *make_manifest(const char *cfg, uint64_t cfg_size, const char **layers,
                           const uint64_t *sizes, int n)
{
    char *s = malloc(8192);
    int o = snprintf(s, 8192,
                     "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution."
                     "manifest.v2+json\",\"config\":{\"mediaType\":\"application/vnd.docker."
                     "container.image.v1+json\",\"digest\":\"%s\",\"size\":%llu},\"layers\":[",
                     cfg, (unsigned long long)cfg_size);
    for (int i = 0; i < n; i++)
        o += snprintf(s + o, 8192 - (size_t)o,
                      "%s{\"mediaType\":\"application/vnd.ollama.image.model\",\"digest\":\"%s\","
                      "\"size\":%llu}",
                      i ? "," : "", layers[i], (unsigned long long)sizes[i]);
    snprintf(s + o, 8192 - (size_t)o, "]}");
    return s;
}

__attribute__((unused)) static cas_name_t name_of(const char *s)
{
    cas_name_t n;
    assert_int_equal(cas_name_parse(s, &n), 0);
    return n;
}

__attribute__((unused)) static void write_file(const char *path, const void *data, size_t len)
{
    assert_int_equal(ox_fs_write_atomic(path, data, len), 0);
}

/* Tap that records what it saw. */
typedef struct rec_tap {
    int opens, closes, last_ok;
    uint64_t fed, size_hint, close_size;
    ox_sha256_t sha;
    char hex[65];
    char digest[72];
} rec_tap_t;

__attribute__((unused)) static void *on_tap_open(void *ud, uint64_t hint)
{
    rec_tap_t *t = ud;
    t->opens++;
    t->size_hint = hint;
    t->fed = 0;
    ox_sha256_init(&t->sha);
    return t;
}

/* Records the leaves as the sha256 of their concatenation (see leaves_hex). */
__attribute__((unused)) static void on_tap_feed(void *st, const uint8_t leaf[32], uint32_t n)
{
    rec_tap_t *t = st;
    t->fed += n;
    ox_sha256_update(&t->sha, leaf, 32);
}

/* What a tap fed this blob must record: the sha256 over the digests of its
 * 16 KiB leaves, computed the slow, obvious way. */
__attribute__((unused)) static void leaves_hex(const void *data, size_t n, char hex[65])
{
    const unsigned char *p = data;
    ox_sha256_t s;
    ox_sha256_init(&s);
    for (size_t off = 0; off < n; off += OX_LEAF_SIZE) {
        uint8_t d[32];
        ox_sha256_raw(p + off, n - off < OX_LEAF_SIZE ? n - off : OX_LEAF_SIZE, d);
        ox_sha256_update(&s, d, 32);
    }
    uint8_t raw[32];
    ox_sha256_final(&s, raw);
    ox_sha256_free(&s);
    ox_hex_encode(raw, 32, hex);
}

__attribute__((unused)) static void on_tap_close(void *st, int ok, const char *digest, uint64_t size)
{
    rec_tap_t *t = st;
    uint8_t raw[32];
    t->closes++;
    t->last_ok = ok;
    t->close_size = size;
    snprintf(t->digest, sizeof t->digest, "%s", digest ? digest : "");
    ox_sha256_final(&t->sha, raw);
    ox_sha256_free(&t->sha);
    ox_hex_encode(raw, 32, t->hex);
}

#endif
