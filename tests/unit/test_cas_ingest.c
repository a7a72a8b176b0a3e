/* cas blob intake: streaming ingest, adopt, taps, verify, temp files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "test_cas_util.h"

static void test_ingest_match(void **state)
{
    fx_t *f = *state;
    rec_tap_t t = {0};
    cas_tap_t tap = {on_tap_open, on_tap_feed, on_tap_close, &t};
    cas_set_tap(f->c, &tap);

    size_t n = 20 * 1024 * 1024 + 17; /* several staging buffers and a tail */
    unsigned char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 131 + (i >> 9));
    char want[72], got[72], err[256] = "";
    digest_of(data, n, want);

    char upper[72];
    snprintf(upper, sizeof upper, "sha256-%s", want + 7);
    for (char *p = upper + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    cas_ingest_t *in;
    assert_int_equal(cas_ingest_begin(f->c, upper, 0, &in), 0);
    /* Uneven chunks, including empty writes. */
    size_t off = 0, step = 1;
    while (off < n) {
        size_t k = step < n - off ? step : n - off;
        assert_int_equal(cas_ingest_write(in, data + off, k), 0);
        assert_int_equal(cas_ingest_write(in, data, 0), 0);
        off += k;
        step = step * 3 + 1;
    }
    /* Not visible before commit. */
    assert_int_equal(cas_blob_stat(f->c, want, NULL), OX_ENOTFOUND);
    int existed = -1;
    assert_int_equal(cas_ingest_commit(in, got, &existed, err, sizeof err), 0);
    assert_string_equal(got, want);
    assert_int_equal(existed, 0);
    uint64_t size = 0;
    assert_int_equal(cas_blob_stat(f->c, want, &size), 0);
    assert_int_equal(size, n);
    char path[4096];
    assert_int_equal(cas_blob_path(f->c, want, path, sizeof path), 0);
    char *back = NULL;
    size_t blen = 0;
    assert_int_equal(ox_fs_read_all(path, n + 1, &back, &blen), 0);
    assert_int_equal(blen, n);
    assert_memory_equal(back, data, n);
    free(back);
    assert_int_equal(count_dir(cas_tmp_dir(f->c)), 0);

    /* The tap saw every byte once, in order, and was closed once. */
    assert_int_equal(t.opens, 1);
    assert_int_equal(t.closes, 1);
    assert_int_equal(t.size_hint, 0);
    assert_int_equal(t.fed, n);
    assert_int_equal(t.last_ok, 1);
    char lh[65];
    leaves_hex(data, n, lh);
    assert_string_equal(t.hex, lh);
    assert_string_equal(t.digest, want);

    /* The same bytes again: already present, still one blob. */
    assert_int_equal(cas_ingest_begin(f->c, want, n, &in), 0);
    assert_int_equal(cas_ingest_write(in, data, n), 0);
    assert_int_equal(cas_ingest_commit(in, got, &existed, err, sizeof err), 0);
    assert_int_equal(existed, 1);
    assert_int_equal(count_dir(cas_blobs_dir(f->c)), 1);
    assert_int_equal(count_dir(cas_tmp_dir(f->c)), 0);
    assert_int_equal(cas_blob_verify(f->c, want), 0);
    cas_set_tap(f->c, NULL);
    free(data);
}

static void test_ingest_mismatch(void **state)
{
    fx_t *f = *state;
    rec_tap_t t = {0};
    cas_tap_t tap = {on_tap_open, on_tap_feed, on_tap_close, &t};
    cas_set_tap(f->c, &tap);
    char expect[72], actual[72], err[256] = "";
    digest_of("other", 5, expect);
    digest_of("hello", 5, actual);
    cas_ingest_t *in;
    assert_int_equal(cas_ingest_begin(f->c, expect, 5, &in), 0);
    assert_int_equal(cas_ingest_write(in, "hello", 5), 0);
    assert_int_equal(cas_ingest_commit(in, NULL, NULL, err, sizeof err), OX_EDIGEST);
    char want[300];
    snprintf(want, sizeof want, "digest mismatch, expected \"%s\", got \"%s\"", expect, actual);
    assert_string_equal(err, want);
    assert_int_equal(count_dir(cas_blobs_dir(f->c)), 0);
    assert_int_equal(count_dir(cas_tmp_dir(f->c)), 0);
    assert_int_equal(cas_blob_stat(f->c, actual, NULL), OX_ENOTFOUND);
    assert_int_equal(t.closes, 1);
    assert_int_equal(t.last_ok, 0);
    cas_set_tap(f->c, NULL);

    /* Invalid expected digests are refused up front. */
    assert_int_equal(cas_ingest_begin(f->c, "sha256:1234", 0, &in), OX_EINVAL);
    assert_int_equal(cas_ingest_begin(f->c, "sha256:../../../../etc/passwd", 0, &in), OX_EINVAL);
}

static void test_ingest_abort(void **state)
{
    fx_t *f = *state;
    rec_tap_t t = {0};
    cas_tap_t tap = {on_tap_open, on_tap_feed, on_tap_close, &t};
    cas_set_tap(f->c, &tap);
    cas_ingest_t *in;
    assert_int_equal(cas_ingest_begin(f->c, NULL, 0, &in), 0);
    assert_int_equal(count_dir(cas_tmp_dir(f->c)), 1);
    assert_int_equal(cas_ingest_write(in, "partial data", 12), 0);
    cas_ingest_abort(in);
    assert_int_equal(count_dir(cas_tmp_dir(f->c)), 0);
    assert_int_equal(count_dir(cas_blobs_dir(f->c)), 0);
    assert_int_equal(t.opens, 1);
    assert_int_equal(t.closes, 1);
    assert_int_equal(t.last_ok, 0);
    /* Bytes still staged when an ingest is aborted need not reach the tap
     * (its blob is dropped anyway); what it saw is a prefix. */
    assert_true(t.fed <= 12);
    cas_set_tap(f->c, NULL);
}

static void test_ingest_empty_blob(void **state)
{
    fx_t *f = *state;
    char got[72], err[256];
    cas_ingest_t *in;
    assert_int_equal(cas_ingest_begin(f->c, NULL, 0, &in), 0);
    assert_int_equal(cas_ingest_commit(in, got, NULL, err, sizeof err), 0);
    assert_string_equal(got,
                        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    uint64_t size = 1;
    assert_int_equal(cas_blob_stat(f->c, got, &size), 0);
    assert_int_equal(size, 0);
}

static void test_adopt(void **state)
{
    fx_t *f = *state;
    rec_tap_t t = {0};
    cas_tap_t tap = {on_tap_open, on_tap_feed, on_tap_close, &t};
    cas_set_tap(f->c, &tap);
    size_t n = 9 * 1024 * 1024 + 5; /* more than one read chunk */
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i % 251);
    char d[72], src[4096], err[256] = "";
    digest_of(data, n, d);
    assert_int_equal(cas_partial_path(f->c, d, src, sizeof src), 0);
    assert_non_null(strstr(src, "/tmp/sha256-"));
    assert_non_null(strstr(src, "-partial"));
    write_file(src, data, n);
    assert_int_equal(cas_blob_adopt(f->c, src, d, err, sizeof err), 0);
    assert_int_equal(access(src, F_OK), -1);
    uint64_t size;
    assert_int_equal(cas_blob_stat(f->c, d, &size), 0);
    assert_int_equal(size, n);
    assert_int_equal(t.fed, n);
    assert_int_equal(t.closes, 1);
    assert_int_equal(t.last_ok, 1);
    char lh[65];
    leaves_hex(data, n, lh);
    assert_string_equal(t.hex, lh);
    assert_string_equal(t.digest, d);

    /* Mismatch: the source is removed, nothing enters blobs/. */
    char other[72];
    digest_of("x", 1, other);
    snprintf(src, sizeof src, "%s/fetched", cas_tmp_dir(f->c));
    write_file(src, "not x", 5);
    assert_int_equal(cas_blob_adopt(f->c, src, other, err, sizeof err), OX_EDIGEST);
    assert_non_null(strstr(err, "digest mismatch, expected \"sha256:"));
    assert_int_equal(access(src, F_OK), -1);
    assert_int_equal(cas_blob_stat(f->c, other, NULL), OX_ENOTFOUND);
    assert_int_equal(t.last_ok, 0);
    assert_int_equal(count_dir(cas_blobs_dir(f->c)), 1);

    /* No expectation: the digest is learnt; an existing blob is fine. */
    write_file(src, data, n);
    assert_int_equal(cas_blob_adopt(f->c, src, NULL, err, sizeof err), 0);
    assert_int_equal(access(src, F_OK), -1);
    assert_int_equal(count_dir(cas_blobs_dir(f->c)), 1);
    assert_int_equal(cas_blob_adopt(f->c, src, NULL, err, sizeof err), OX_ENOTFOUND);
    cas_set_tap(f->c, NULL);
    free(data);
}

static void test_verify_corrupt(void **state)
{
    fx_t *f = *state;
    char d[72], path[4096];
    put_blob(f->c, "some blob content", d);
    assert_int_equal(cas_meta_put(f->c, "torrent", d, "info", 4), 0);
    assert_int_equal(cas_blob_verify(f->c, d), 0);
    cas_blob_path(f->c, d, path, sizeof path);
    write_file(path, "some blob c0ntent", 17); /* same size, one byte off */
    assert_int_equal(cas_blob_verify(f->c, d), OX_EDIGEST);
    assert_int_equal(cas_blob_stat(f->c, d, NULL), OX_ENOTFOUND);
    void *v;
    size_t vl;
    assert_int_equal(cas_meta_get(f->c, "torrent", d, &v, &vl), OX_ENOTFOUND);
    assert_int_equal(cas_blob_verify(f->c, d), OX_ENOTFOUND);
    assert_int_equal(cas_blob_verify(f->c, "sha256:zz"), OX_EINVAL);
}

static void test_open_cleans_tmp(void **state)
{
    fx_t *f = *state;
    cas_ingest_t *in;
    assert_int_equal(cas_ingest_begin(f->c, NULL, 0, &in), 0);
    assert_int_equal(cas_ingest_write(in, "abc", 3), 0);
    char d[72], partial[4096];
    digest_of("resume me", 9, d);
    cas_partial_path(f->c, d, partial, sizeof partial);
    write_file(partial, "resume", 6);
    char part1[4200];
    snprintf(part1, sizeof part1, "%s-1", partial);
    write_file(part1, "me", 2);
    assert_int_equal(count_dir(cas_tmp_dir(f->c)), 3);
    /* A restart: the ingest temp file goes, the partials stay. */
    cas_t *old = f->c;
    f->c = NULL;
    cas_ingest_abort(in);
    cas_close(old);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/tmp/ingest-1-1", f->state);
    write_file(tmp, "stale upload", 12);
    fx_reopen(f);
    assert_int_equal(count_dir(cas_tmp_dir(f->c)), 2);
    assert_int_equal(access(partial, F_OK), 0);
    assert_int_equal(access(part1, F_OK), 0);
    assert_int_equal(access(tmp, F_OK), -1);
}

/* tmpfs (before Linux 6.6) refuses O_DIRECT: the writer falls back to plain
 * writes, and the bytes must come out the same either way. */
static void test_ingest_no_direct_fs(void **state)
{
    (void)state;
    fx_t f = {0};
    snprintf(f.root, sizeof f.root, "/dev/shm/ox-cas-test-XXXXXX");
    if (!mkdtemp(f.root))
        skip();
    snprintf(f.models, sizeof f.models, "%s/models", f.root);
    snprintf(f.state, sizeof f.state, "%s/state", f.root);
    fx_reopen(&f);
    size_t n = 17 * 1024 * 1024 + 4097;
    char *data = malloc(n), want[72], got[72], err[256], path[4096];
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 7 + 3);
    digest_of(data, n, want);
    cas_ingest_t *in;
    assert_int_equal(cas_ingest_begin(f.c, want, 0, &in), 0);
    for (size_t off = 0; off < n; off += 1000000)
        assert_int_equal(cas_ingest_write(in, data + off, n - off < 1000000 ? n - off : 1000000),
                         0);
    assert_int_equal(cas_ingest_commit(in, got, NULL, err, sizeof err), 0);
    assert_string_equal(got, want);
    cas_blob_path(f.c, want, path, sizeof path);
    char *back;
    size_t blen;
    assert_int_equal(ox_fs_read_all(path, n, &back, &blen), 0);
    assert_int_equal(blen, n);
    assert_memory_equal(back, data, n);
    free(back);
    free(data);
    cas_close(f.c);
    rm_rf(f.root);
}

typedef struct worker {
    cas_t *c;
    int id;
    int rc;
} worker_t;

static void *on_worker(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < 20 && !w->rc; i++) {
        char data[64], d[72], err[256];
        snprintf(data, sizeof data, "worker %d blob %d", w->id, i);
        cas_ingest_t *in;
        w->rc = cas_ingest_begin(w->c, NULL, 0, &in);
        if (w->rc)
            break;
        cas_ingest_write(in, data, strlen(data));
        w->rc = cas_ingest_commit(in, d, NULL, err, sizeof err);
        cas_model_info_t *v = NULL;
        size_t n = 0;
        if (!w->rc)
            w->rc = cas_model_list(w->c, &v, &n);
        free(v);
    }
    return NULL;
}

/* The loop's way in: write_some never blocks; when the staging buffers are
 * all busy it takes less than offered, and the wake-up comes once room
 * frees, from another thread. The blob still comes out whole and exact, and
 * an abort while the wake-up is armed neither hangs nor wakes afterwards.
 * A tap whose leaf callback waits at a gate holds the hash thread, so the
 * ring fills whatever the speed of this machine. */
typedef struct waker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wakes;
    int gate_open;
    pthread_t from;
} waker_t;

static void on_room(void *ud)
{
    waker_t *w = ud;
    pthread_mutex_lock(&w->mu);
    w->wakes++;
    w->from = pthread_self();
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void *on_gate_open(void *ud, uint64_t hint)
{
    (void)hint;
    return ud;
}

static void on_gate_leaf(void *st, const uint8_t leaf[32], uint32_t len)
{
    (void)leaf, (void)len;
    waker_t *w = st;
    pthread_mutex_lock(&w->mu);
    while (!w->gate_open)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void on_gate_close(void *st, int ok, const char *digest, uint64_t size)
{
    (void)st, (void)ok, (void)digest, (void)size;
}

static void gate_set(waker_t *w, int open)
{
    pthread_mutex_lock(&w->mu);
    w->gate_open = open;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void test_write_some_and_wake(void **state)
{
    fx_t *f = *state;
    size_t n = (300u << 20) + 333;
    unsigned char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 7 + (i >> 12));
    char want[72], got[72], err[256] = "";
    digest_of(data, n, want);
    for (int round = 0; round < 2; round++) {
        waker_t w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
        cas_tap_t tap = {on_gate_open, on_gate_leaf, on_gate_close, &w};
        cas_set_tap(f->c, &tap);
        cas_ingest_t *in;
        assert_int_equal(cas_ingest_begin(f->c, want, 0, &in), 0);
        assert_int_equal(cas_ingest_nonblocking(in), 1);
        cas_ingest_set_wake(in, on_room, &w);
        /* gate closed: the ring fills and write_some comes up short */
        size_t off = 0, t = 0;
        while (cas_ingest_write_some(in, data + off, 1u << 20, &t) == 0 && t == (1u << 20))
            off += t;
        off += t;
        assert_true(off >= (8u << 20) && off <= (200u << 20));
        if (round == 1) {
            gate_set(&w, 1);
            cas_ingest_abort(in); /* with the wake-up armed */
            pthread_mutex_lock(&w.mu);
            int after = w.wakes;
            pthread_mutex_unlock(&w.mu);
            usleep(50000);
            pthread_mutex_lock(&w.mu);
            assert_int_equal(w.wakes, after); /* none after abort returned */
            pthread_mutex_unlock(&w.mu);
        } else {
            assert_int_equal(w.wakes, 0);
            gate_set(&w, 1);
            while (off < n) {
                size_t k = n - off < (3u << 20) ? n - off : (3u << 20);
                pthread_mutex_lock(&w.mu);
                int before = w.wakes;
                pthread_mutex_unlock(&w.mu);
                assert_int_equal(cas_ingest_write_some(in, data + off, k, &t), 0);
                assert_true(t <= k);
                off += t;
                if (t < k) {
                    pthread_mutex_lock(&w.mu);
                    while (w.wakes == before)
                        pthread_cond_wait(&w.cv, &w.mu);
                    assert_false(pthread_equal(w.from, pthread_self()));
                    pthread_mutex_unlock(&w.mu);
                }
            }
            assert_true(w.wakes >= 1); /* the first short write was woken */
            assert_int_equal(cas_ingest_commit(in, got, NULL, err, sizeof err), 0);
            assert_string_equal(got, want);
            assert_int_equal(cas_blob_verify(f->c, want), 0);
        }
        cas_set_tap(f->c, NULL);
        pthread_cond_destroy(&w.cv);
        pthread_mutex_destroy(&w.mu);
    }
    /* small known sizes are not staged: write_some refuses them */
    cas_ingest_t *in;
    size_t t = 5;
    assert_int_equal(cas_ingest_begin(f->c, NULL, 10, &in), 0);
    assert_int_equal(cas_ingest_nonblocking(in), 0);
    assert_int_equal(cas_ingest_write_some(in, "0123456789", 10, &t), OX_ESTATE);
    assert_int_equal(t, 0);
    cas_ingest_abort(in);
    free(data);
}

/* Zero copy: bytes written where cas_ingest_room says, then handed to
 * write_some at that address, make the same blob (in pieces that do and do
 * not fill the room, mixed with plain write_some). With the hash thread
 * held, room runs out (NULL) instead of blocking, and a wake-up follows. */
static void test_room(void **state)
{
    fx_t *f = *state;
    size_t n = (150u << 20) + 4321; /* more than the staging ring holds */
    unsigned char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 13 + (i >> 9));
    char want[72], got[72], err[256] = "";
    digest_of(data, n, want);
    waker_t w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 1, 0};
    cas_tap_t tap = {on_gate_open, on_gate_leaf, on_gate_close, &w};
    cas_set_tap(f->c, &tap);
    cas_ingest_t *in;
    assert_int_equal(cas_ingest_begin(f->c, want, 0, &in), 0);
    cas_ingest_set_wake(in, on_room, &w);
    size_t off = 0, t, step = 0, direct = 0;
    while (off < n) {
        size_t room = 0, k;
        unsigned char *p = cas_ingest_room(in, &room);
        if (!p) { /* the ring is full for now: the consumers catch up */
            usleep(1000);
            continue;
        }
        assert_true(room > 0);
        k = step++ % 3 == 0 ? room : room / 3 + 1; /* all of it, or a part */
        if (k > n - off)
            k = n - off;
        if (step % 5 == 0) { /* now and then the plain way */
            assert_int_equal(cas_ingest_write_some(in, data + off, k, &t), 0);
        } else {
            memcpy(p, data + off, k);
            assert_int_equal(cas_ingest_write_some(in, p, k, &t), 0);
            direct += k;
        }
        assert_int_equal(t, k);
        off += k;
    }
    assert_true(direct > n / 2);
    assert_int_equal(cas_ingest_commit(in, got, NULL, err, sizeof err), 0);
    assert_string_equal(got, want);
    assert_int_equal(cas_blob_verify(f->c, want), 0);

    /* held hash thread: the room runs out, then comes back with a wake-up */
    char bp[4096];
    cas_blob_path(f->c, want, bp, sizeof bp);
    unlink(bp);
    fx_reopen(f);
    cas_set_tap(f->c, &tap);
    gate_set(&w, 0);
    assert_int_equal(cas_ingest_begin(f->c, want, 0, &in), 0);
    cas_ingest_set_wake(in, on_room, &w);
    off = 0;
    for (;;) {
        size_t room = 0;
        unsigned char *p = cas_ingest_room(in, &room);
        if (!p)
            break;
        size_t k = room < n - off ? room : n - off;
        memcpy(p, data + off, k);
        assert_int_equal(cas_ingest_write_some(in, p, k, &t), 0);
        off += t;
        assert_true(off < n);
    }
    assert_true(off >= (8u << 20));
    pthread_mutex_lock(&w.mu);
    int before = w.wakes;
    pthread_mutex_unlock(&w.mu);
    gate_set(&w, 1);
    pthread_mutex_lock(&w.mu);
    while (w.wakes == before)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    while (off < n) {
        size_t room = 0;
        unsigned char *p = cas_ingest_room(in, &room);
        if (!p) {
            usleep(1000);
            continue;
        }
        size_t k = room < n - off ? room : n - off;
        memcpy(p, data + off, k);
        assert_int_equal(cas_ingest_write_some(in, p, k, &t), 0);
        off += t;
    }
    assert_int_equal(cas_ingest_commit(in, got, NULL, err, sizeof err), 0);
    assert_string_equal(got, want);
    cas_set_tap(f->c, NULL);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    free(data);
}

static void test_threads(void **state)
{
    fx_t *f = *state;
    pthread_t th[4];
    worker_t w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){f->c, i, 0};
        pthread_create(&th[i], NULL, on_worker, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].rc, 0);
    }
    char(*v)[72] = NULL;
    size_t n = 0;
    assert_int_equal(cas_blob_list(f->c, &v, &n), 0);
    assert_int_equal(n, 80);
    free(v);
    assert_int_equal(count_dir(cas_tmp_dir(f->c)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ingest_match, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_mismatch, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_abort, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_some_and_wake, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_room, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_empty_blob, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_adopt, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_verify_corrupt, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_open_cleans_tmp, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_threads, fx_setup, fx_teardown),
        cmocka_unit_test(test_ingest_no_direct_fs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
