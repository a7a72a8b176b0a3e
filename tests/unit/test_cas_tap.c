/* cas taps under threading: the tap's leaf digests come from the stage's
 * hash thread. These check that it still sees every 16 KiB leaf's digest
 * once, in order, with close strictly after the last feed, across chunk
 * sizes that straddle the staging buffers; that aborts and slow taps neither
 * hang nor leak nor feed after close; and that adopt, in one go or in steps
 * on its caller's thread, taps the same way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "test_cas_util.h"

/* The byte at offset i of every test blob: a cheap, position-dependent
 * pattern so that a reordered, repeated or skipped range shows. */
static unsigned char pat(uint64_t i) { return (unsigned char)((i * 2654435761u) >> 13 ^ (i >> 20)); }

static unsigned char *pattern(size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        p[i] = pat(i);
    return p;
}

/* A tap that checks order and content as it goes and records the threads
 * its callbacks ran on. All fields are written by the feeding thread and
 * read by the test after the commit/abort returned (which joins it). */
typedef struct chk_tap {
    int opens, closes, last_ok;
    atomic_int in_feed;    /* feeds running now (must never exceed 1) */
    int overlap;           /* two feeds at once seen */
    int feed_after_close;
    int bad_order;         /* a fed byte differed from pat(offset) */
    int null_feed;         /* feed got a NULL state */
    uint64_t fed, feeds, close_size;
    unsigned sleep_us;     /* per feed: a slow tap */
    pthread_t feed_thread;
    int feed_threads_differ; /* feeds ran on more than one thread */
    char digest[72];
    int ret_null;          /* open returns NULL ("not interested") */
} chk_tap_t;

static void *on_chk_open(void *ud, uint64_t hint)
{
    (void)hint;
    chk_tap_t *t = ud;
    t->opens++;
    return t->ret_null ? NULL : t;
}

static void on_chk_feed(void *st, const uint8_t leaf[32], uint32_t n)
{
    chk_tap_t *t = st;
    if (!t)
        abort(); /* a NULL state means "not interested": never fed */
    if (atomic_fetch_add(&t->in_feed, 1) != 0)
        t->overlap = 1;
    if (t->closes)
        t->feed_after_close = 1;
    if (t->feeds == 0)
        t->feed_thread = pthread_self();
    else if (!pthread_equal(t->feed_thread, pthread_self()))
        t->feed_threads_differ = 1;
    /* the leaf must be the sha256 of the next 16 KiB of the pattern, and
     * only the last leaf may be short */
    if (n == 0 || n > OX_LEAF_SIZE || t->fed % OX_LEAF_SIZE)
        t->bad_order = 1;
    unsigned char want_src[OX_LEAF_SIZE];
    uint8_t want[32];
    for (uint32_t i = 0; i < n && i < OX_LEAF_SIZE; i++)
        want_src[i] = pat(t->fed + i);
    ox_sha256_raw(want_src, n <= OX_LEAF_SIZE ? n : 0, want);
    if (memcmp(want, leaf, 32) != 0)
        t->bad_order = 1;
    t->fed += n;
    t->feeds++;
    if (t->sleep_us && t->feeds % 64 == 1) { /* slow: a pause per MiB */
        struct timespec ts = {0, (long)t->sleep_us * 1000};
        nanosleep(&ts, NULL);
    }
    if (t->closes)
        t->feed_after_close = 1;
    atomic_fetch_sub(&t->in_feed, 1);
}

static void on_chk_close(void *st, int ok, const char *digest, uint64_t size)
{
    chk_tap_t *t = st;
    if (!t)
        return;
    if (atomic_load(&t->in_feed))
        t->feed_after_close = 1; /* closed while a feed still runs */
    t->closes++;
    t->last_ok = ok;
    t->close_size = size;
    snprintf(t->digest, sizeof t->digest, "%s", digest ? digest : "");
}

/* Ingests n pattern bytes in chunks of `chunk` (0: a growing mix) and
 * checks the blob and what the tap saw. */
static void ingest_check(fx_t *f, size_t n, size_t chunk, uint64_t hint, unsigned sleep_us)
{
    chk_tap_t t = {0};
    t.sleep_us = sleep_us;
    cas_tap_t tap = {on_chk_open, on_chk_feed, on_chk_close, &t};
    cas_set_tap(f->c, &tap);
    unsigned char *data = pattern(n);
    char want[72], got[72], err[256] = "";
    digest_of(data, n, want);
    cas_ingest_t *in;
    assert_int_equal(cas_ingest_begin(f->c, want, hint, &in), 0);
    size_t off = 0, step = 1;
    while (off < n) {
        size_t k = chunk ? chunk : step;
        if (k > n - off)
            k = n - off;
        assert_int_equal(cas_ingest_write(in, data + off, k), 0);
        off += k;
        step = step * 5 + 3;
        if (step > (12u << 20))
            step = 1;
    }
    assert_int_equal(cas_ingest_commit(in, got, NULL, err, sizeof err), 0);
    assert_string_equal(got, want);
    assert_int_equal(t.opens, 1);
    assert_int_equal(t.closes, 1);
    assert_int_equal(t.last_ok, 1);
    assert_int_equal(t.fed, n);
    assert_int_equal(t.close_size, n);
    assert_int_equal(t.bad_order, 0);
    assert_int_equal(t.overlap, 0);
    assert_int_equal(t.feed_after_close, 0);
    assert_string_equal(t.digest, want);
    /* the blob on disk is the same bytes */
    assert_int_equal(cas_blob_verify(f->c, want), 0);
    uint64_t size = 0;
    assert_int_equal(cas_blob_stat(f->c, want, &size), 0);
    assert_int_equal(size, n);
    assert_int_equal(count_dir(cas_tmp_dir(f->c)), 0);
    cas_set_tap(f->c, NULL);
    free(data);
}

static void test_tap_every_byte_in_order(void **state)
{
    fx_t *f = *state;
    const size_t MiB = 1u << 20;
    /* Chunk sizes around the 8 MiB staging buffers, the 256 KiB hash step
     * and the 4 KiB O_DIRECT block; blob sizes with and without a tail. */
    static const size_t chunks[] = {4096, 65536 + 3, 256 * 1024 + 1, 2 * 1024 * 1024,
                                    8 * 1024 * 1024 - 1, 8 * 1024 * 1024,
                                    8 * 1024 * 1024 + 1, 13 * 1024 * 1024, 0};
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++) {
        ingest_check(f, 17 * MiB + 12345, chunks[i], 0, 0);
        /* each blob is removed again so the next round ingests anew */
        char path[4096], d[72];
        unsigned char *data = pattern(17 * MiB + 12345);
        digest_of(data, 17 * MiB + 12345, d);
        free(data);
        cas_blob_path(f->c, d, path, sizeof path);
        unlink(path);
        fx_reopen(f);
    }
    /* Byte-sized writes, an exact multiple of the buffer, a size hint that
     * takes the inline path and one that takes the staged path. */
    ingest_check(f, 300 * 1024 + 7, 1, 0, 0);
    ingest_check(f, 16 * MiB, 0, 16 * MiB, 0);
    ingest_check(f, 3 * MiB + 5, 100000, 3 * MiB + 5, 0);
    ingest_check(f, 5 * MiB + 5, 3 * MiB, 5 * MiB + 5, 0);
}

/* The tap's feed of a large upload runs off the caller's thread (the point
 * of the change: the two hashes overlap). */
static void test_tap_runs_beside_the_hash(void **state)
{
    fx_t *f = *state;
    chk_tap_t t = {0};
    cas_tap_t tap = {on_chk_open, on_chk_feed, on_chk_close, &t};
    cas_set_tap(f->c, &tap);
    size_t n = 9u << 20;
    unsigned char *data = pattern(n);
    cas_ingest_t *in;
    char got[72], err[256];
    assert_int_equal(cas_ingest_begin(f->c, NULL, n, &in), 0);
    assert_int_equal(cas_ingest_write(in, data, n), 0);
    assert_int_equal(cas_ingest_commit(in, got, NULL, err, sizeof err), 0);
    assert_int_equal(t.fed, n);
    assert_true(t.feeds >= 2);
    assert_int_equal(t.feed_threads_differ, 0);
    assert_false(pthread_equal(t.feed_thread, pthread_self()));
    cas_set_tap(f->c, NULL);
    free(data);
}

/* A slow tap: the commit waits for every feed, and close comes last. */
static void test_tap_slow_commit(void **state)
{
    ingest_check(*state, (21u << 20) + 99, 1u << 20, 0, 20000);
}

/* Aborts at several points, with a slow tap so feeds are in flight: no hang,
 * close(ok=0) once after the last feed, what was fed is an in-order prefix,
 * nothing left in tmp/ or blobs/. */
static void test_tap_abort_midway(void **state)
{
    fx_t *f = *state;
    size_t n = 40u << 20;
    unsigned char *data = pattern(n);
    static const size_t stops[] = {0, 1, 4096, 8u << 20, (8u << 20) + 1, 30u << 20, 40u << 20};
    for (size_t i = 0; i < sizeof stops / sizeof *stops; i++) {
        chk_tap_t t = {0};
        t.sleep_us = 15000;
        cas_tap_t tap = {on_chk_open, on_chk_feed, on_chk_close, &t};
        cas_set_tap(f->c, &tap);
        cas_ingest_t *in;
        assert_int_equal(cas_ingest_begin(f->c, NULL, i % 2 ? n : 0, &in), 0);
        for (size_t off = 0; off < stops[i];) {
            size_t k = stops[i] - off < (3u << 20) ? stops[i] - off : (3u << 20);
            assert_int_equal(cas_ingest_write(in, data + off, k), 0);
            off += k;
        }
        cas_ingest_abort(in);
        assert_int_equal(t.opens, 1);
        assert_int_equal(t.closes, 1);
        assert_int_equal(t.last_ok, 0);
        assert_string_equal(t.digest, "");
        assert_true(t.fed <= stops[i]);
        assert_int_equal(t.bad_order, 0);
        assert_int_equal(t.overlap, 0);
        assert_int_equal(t.feed_after_close, 0);
        assert_int_equal(count_dir(cas_tmp_dir(f->c)), 0);
        assert_int_equal(count_dir(cas_blobs_dir(f->c)), 0);
        cas_set_tap(f->c, NULL);
    }
    free(data);
}

/* A digest mismatch after a staged upload: every byte was fed, the tap is
 * closed with ok=0 after the last feed and nothing is kept. */
static void test_tap_mismatch_staged(void **state)
{
    fx_t *f = *state;
    chk_tap_t t = {0};
    t.sleep_us = 5000;
    cas_tap_t tap = {on_chk_open, on_chk_feed, on_chk_close, &t};
    cas_set_tap(f->c, &tap);
    size_t n = (10u << 20) + 3;
    unsigned char *data = pattern(n);
    char other[72], err[256] = "";
    digest_of("something else", 14, other);
    cas_ingest_t *in;
    assert_int_equal(cas_ingest_begin(f->c, other, 0, &in), 0);
    assert_int_equal(cas_ingest_write(in, data, n), 0);
    assert_int_equal(cas_ingest_commit(in, NULL, NULL, err, sizeof err), OX_EDIGEST);
    assert_non_null(strstr(err, "digest mismatch"));
    assert_int_equal(t.closes, 1);
    assert_int_equal(t.last_ok, 0);
    assert_int_equal(t.fed, n);
    assert_int_equal(t.feed_after_close, 0);
    assert_int_equal(count_dir(cas_tmp_dir(f->c)), 0);
    assert_int_equal(count_dir(cas_blobs_dir(f->c)), 0);
    cas_set_tap(f->c, NULL);
    free(data);
}

/* open returning NULL means "not interested": never fed, still closed. */
static void test_tap_not_interested(void **state)
{
    fx_t *f = *state;
    chk_tap_t t = {0};
    t.ret_null = 1;
    cas_tap_t tap = {on_chk_open, on_chk_feed, on_chk_close, &t};
    cas_set_tap(f->c, &tap);
    size_t n = 9u << 20;
    unsigned char *data = pattern(n);
    char want[72], got[72], err[256];
    digest_of(data, n, want);
    for (int staged = 0; staged < 2; staged++) {
        cas_ingest_t *in;
        assert_int_equal(cas_ingest_begin(f->c, NULL, staged ? 0 : 100, &in), 0);
        assert_int_equal(cas_ingest_write(in, data, staged ? n : 100), 0);
        assert_int_equal(cas_ingest_commit(in, got, NULL, err, sizeof err), 0);
    }
    assert_int_equal(t.opens, 2);
    assert_int_equal(t.feeds, 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/fetched", cas_tmp_dir(f->c));
    write_file(path, data, n);
    char bp[4096];
    cas_blob_path(f->c, want, bp, sizeof bp);
    unlink(bp);
    assert_int_equal(cas_blob_adopt(f->c, path, want, err, sizeof err), 0);
    assert_int_equal(t.opens, 3);
    assert_int_equal(t.feeds, 0);
    cas_set_tap(f->c, NULL);
    free(data);
}

/* Adopt feeds the tap on the calling thread (the file is in the page cache:
 * no hash thread): every byte once, in order, close last, also with a slow
 * tap and on a mismatch. */
static void test_tap_adopt(void **state)
{
    fx_t *f = *state;
    size_t n = (19u << 20) + 4097;
    unsigned char *data = pattern(n);
    char want[72], other[72], err[256] = "", path[4096];
    digest_of(data, n, want);
    digest_of("nope", 4, other);
    snprintf(path, sizeof path, "%s/fetched", cas_tmp_dir(f->c));
    for (int round = 0; round < 3; round++) {
        chk_tap_t t = {0};
        t.sleep_us = round == 1 ? 20000 : 0;
        cas_tap_t tap = {on_chk_open, on_chk_feed, on_chk_close, &t};
        cas_set_tap(f->c, &tap);
        write_file(path, data, n);
        int mismatch = round == 2;
        int rc = cas_blob_adopt(f->c, path, mismatch ? other : want, err, sizeof err);
        assert_int_equal(rc, mismatch ? OX_EDIGEST : 0);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(t.closes, 1);
        assert_int_equal(t.last_ok, !mismatch);
        assert_int_equal(t.fed, n);
        assert_int_equal(t.close_size, n);
        assert_int_equal(t.bad_order, 0);
        assert_int_equal(t.overlap, 0);
        assert_int_equal(t.feed_after_close, 0);
        assert_true(pthread_equal(t.feed_thread, pthread_self()));
        assert_int_equal(t.feed_threads_differ, 0);
        assert_string_equal(t.digest, mismatch ? "" : want);
        cas_set_tap(f->c, NULL);
        if (!mismatch) {
            assert_int_equal(cas_blob_verify(f->c, want), 0);
            char bp[4096];
            cas_blob_path(f->c, want, bp, sizeof bp);
            unlink(bp);
            fx_reopen(f);
        }
    }
    free(data);
}

/* Adoption in steps, as a download hashes its final prefix while the rest
 * is still being written: the file grows between feeds, feeds land on odd
 * offsets (mid-leaf, mid-block), repeat or go backwards (no-ops), and the
 * commit hashes only what is left. Same blob, same leaves, same digest as
 * one pass; the file moved into blobs/. */
static void test_adopt_in_steps(void **state)
{
    fx_t *f = *state;
    size_t n = (9u << 20) + 12345;
    unsigned char *data = pattern(n);
    char want[72], err[256] = "", path[4096];
    digest_of(data, n, want);
    snprintf(path, sizeof path, "%s/growing", cas_tmp_dir(f->c));
    chk_tap_t t = {0};
    cas_tap_t tap = {on_chk_open, on_chk_feed, on_chk_close, &t};
    cas_set_tap(f->c, &tap);
    write_file(path, data, 100); /* the download has barely started */
    cas_adopt_t *a;
    assert_int_equal(cas_adopt_begin(f->c, path, &a, err, sizeof err), 0);
    assert_int_equal(cas_adopt_feed(a, 0), 0);
    assert_int_equal(cas_adopt_feed(a, 77), 0);
    assert_int_equal(cas_adopt_hashed(a), 77);
    size_t marks[] = {16384, 16385, 16385, 1000, (1u << 20) + 1, (5u << 20) + 63, 8u << 20};
    size_t written = 100;
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        size_t m = marks[i];
        if (m > written) { /* more of the file is final now */
            int fd = open(path, O_WRONLY);
            assert_true(fd >= 0);
            assert_int_equal(pwrite(fd, data + written, m - written, (off_t)written),
                             (ssize_t)(m - written));
            close(fd);
            written = m;
        }
        assert_int_equal(cas_adopt_feed(a, m), 0);
        assert_true(cas_adopt_hashed(a) >= m);
    }
    assert_int_equal(cas_adopt_hashed(a), 8u << 20);
    { /* the rest arrives */
        int fd = open(path, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, data + written, n - written, (off_t)written),
                         (ssize_t)(n - written));
        close(fd);
    }
    assert_int_equal(cas_adopt_commit(a, want, err, sizeof err), 0);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(cas_blob_verify(f->c, want), 0);
    assert_int_equal(t.opens, 1);
    assert_int_equal(t.closes, 1);
    assert_int_equal(t.last_ok, 1);
    assert_int_equal(t.fed, n);
    assert_int_equal(t.close_size, n);
    assert_int_equal(t.bad_order, 0);
    assert_string_equal(t.digest, want);
    cas_set_tap(f->c, NULL);
    free(data);
}

/* What goes wrong on the way: a "final" prefix past the end of the file is
 * an I/O error that the commit reports and that keeps the file (a download
 * is not thrown away for it); an abort keeps the file and closes the tap as
 * failed; a wrong digest deletes the file; a missing file is ENOTFOUND. */
static void test_adopt_steps_fail(void **state)
{
    fx_t *f = *state;
    size_t n = (2u << 20) + 5;
    unsigned char *data = pattern(n);
    char want[72], other[72], err[256] = "", path[4096], missing[4096];
    digest_of(data, n, want);
    digest_of("nope", 4, other);
    snprintf(path, sizeof path, "%s/partial", cas_tmp_dir(f->c));
    snprintf(missing, sizeof missing, "%s/none", cas_tmp_dir(f->c));
    chk_tap_t t = {0};
    cas_tap_t tap = {on_chk_open, on_chk_feed, on_chk_close, &t};
    cas_set_tap(f->c, &tap);
    cas_adopt_t *a;
    assert_int_equal(cas_adopt_begin(f->c, missing, &a, err, sizeof err), OX_ENOTFOUND);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(cas_adopt_begin(f->c, cas_tmp_dir(f->c), &a, err, sizeof err), OX_EINVAL);

    write_file(path, data, n);
    assert_int_equal(cas_adopt_begin(f->c, path, &a, err, sizeof err), 0);
    assert_int_equal(cas_adopt_feed(a, n + 1), OX_EIO);
    assert_int_equal(cas_adopt_commit(a, want, err, sizeof err), OX_EIO);
    assert_non_null(strstr(err, "input/output error"));
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(t.last_ok, 0);
    assert_int_equal(t.closes, 1);
    assert_int_equal(cas_blob_verify(f->c, want), OX_ENOTFOUND);

    t = (chk_tap_t){0};
    assert_int_equal(cas_adopt_begin(f->c, path, &a, err, sizeof err), 0);
    assert_int_equal(cas_adopt_feed(a, 3 * 16384 + 100), 0);
    cas_adopt_abort(a);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(t.last_ok, 0);
    assert_int_equal(t.closes, 1);
    assert_int_equal(t.fed, 3 * 16384); /* whole leaves only */

    t = (chk_tap_t){0};

    assert_int_equal(cas_adopt_begin(f->c, path, &a, err, sizeof err), 0);
    assert_int_equal(cas_adopt_feed(a, n / 2), 0);
    assert_int_equal(cas_adopt_commit(a, other, err, sizeof err), OX_EDIGEST);
    assert_non_null(strstr(err, "digest mismatch"));
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(t.opens, 1);
    assert_int_equal(t.closes, 1);
    assert_int_equal(t.last_ok, 0);
    assert_int_equal(t.fed, n);
    assert_int_equal(t.bad_order, 0);
    assert_int_equal(t.feed_after_close, 0);
    cas_set_tap(f->c, NULL);
    free(data);
}

/* Several uploads at once, each with its own tap threads. */
typedef struct up_worker {
    cas_t *c;
    size_t n, chunk;
    int rc;
    char digest[72];
} up_worker_t;

static void *on_up_worker(void *arg)
{
    up_worker_t *w = arg;
    unsigned char *data = pattern(w->n);
    char err[256];
    cas_ingest_t *in;
    w->rc = cas_ingest_begin(w->c, NULL, 0, &in);
    for (size_t off = 0; !w->rc && off < w->n; off += w->chunk)
        w->rc = cas_ingest_write(in, data + off, w->n - off < w->chunk ? w->n - off : w->chunk);
    if (!w->rc)
        w->rc = cas_ingest_commit(in, w->digest, NULL, err, sizeof err);
    else
        cas_ingest_abort(in);
    free(data);
    return NULL;
}

typedef struct sum_tap {
    pthread_mutex_t mu;
    uint64_t fed;
    int opens, closes_ok;
} sum_tap_t;

static void *on_sum_open(void *ud, uint64_t hint)
{
    (void)hint;
    sum_tap_t *s = ud;
    pthread_mutex_lock(&s->mu);
    s->opens++;
    pthread_mutex_unlock(&s->mu);
    return s;
}

static void on_sum_feed(void *st, const uint8_t p[32], uint32_t n)
{
    (void)p;
    sum_tap_t *s = st;
    pthread_mutex_lock(&s->mu);
    s->fed += n;
    pthread_mutex_unlock(&s->mu);
}

static void on_sum_close(void *st, int ok, const char *digest, uint64_t size)
{
    (void)digest;
    (void)size;
    sum_tap_t *s = st;
    pthread_mutex_lock(&s->mu);
    s->closes_ok += ok;
    pthread_mutex_unlock(&s->mu);
}

static void test_tap_concurrent_uploads(void **state)
{
    fx_t *f = *state;
    sum_tap_t s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    cas_tap_t tap = {on_sum_open, on_sum_feed, on_sum_close, &s};
    cas_set_tap(f->c, &tap);
    pthread_t th[3];
    up_worker_t w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (up_worker_t){f->c, (size_t)(9 + 3 * i) << 20 | (size_t)i, (size_t)(1 + i) << 20, 0, ""};
        pthread_create(&th[i], NULL, on_up_worker, &w[i]);
    }
    uint64_t total = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].rc, 0);
        assert_int_equal(cas_blob_verify(f->c, w[i].digest), 0);
        total += w[i].n;
    }
    assert_int_equal(s.opens, 3);
    assert_int_equal(s.closes_ok, 3);
    assert_int_equal(s.fed, total);
    cas_set_tap(f->c, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tap_every_byte_in_order, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tap_runs_beside_the_hash, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tap_slow_commit, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tap_abort_midway, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tap_mismatch_staged, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tap_not_interested, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tap_adopt, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_adopt_in_steps, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_adopt_steps_fail, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tap_concurrent_uploads, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
