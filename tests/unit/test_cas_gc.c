/* cas: the remove hook, gc of the staging dir, listing many models, no
 * fsync under the store lock, staging on the file system of blobs/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>

#include "cas/cas_int.h"
#include "test_cas_util.h"

/* ---- fsync interposed: counts flushes made while the store lock is held --- */

static cas_t *g_watch;      /* store whose lock each fsync checks, NULL: off */
static pthread_t g_watcher; /* only calls of this thread are judged */
static int g_fsyncs, g_fsyncs_locked;

/* The gate parks every fsync of one thread until the test lets it go. */
static struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t who;
    int on, parked, go, done;
} g_gate = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void gate_park(void)
{
    if (!__atomic_load_n(&g_gate.on, __ATOMIC_ACQUIRE) || !pthread_equal(pthread_self(), g_gate.who))
        return;
    pthread_mutex_lock(&g_gate.mu);
    g_gate.parked = 1;
    pthread_cond_broadcast(&g_gate.cv);
    while (!g_gate.go && __atomic_load_n(&g_gate.on, __ATOMIC_ACQUIRE))
        pthread_cond_wait(&g_gate.cv, &g_gate.mu);
    g_gate.go = 0;
    g_gate.parked = 0;
    pthread_mutex_unlock(&g_gate.mu);
}

static void fsync_seen(void)
{
    gate_park();
    if (!g_watch || !pthread_equal(pthread_self(), g_watcher))
        return;
    g_fsyncs++;
    /* A default mutex held by this very thread reports EBUSY. */
    if (pthread_mutex_trylock(&g_watch->mu) == 0)
        pthread_mutex_unlock(&g_watch->mu);
    else
        g_fsyncs_locked++;
}

int fsync(int fd)
{
    fsync_seen();
    return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd)
{
    fsync_seen();
    return (int)syscall(SYS_fdatasync, fd);
}

static void watch(cas_t *c)
{
    g_watch = c;
    g_watcher = pthread_self();
    g_fsyncs = g_fsyncs_locked = 0;
}

/* ---- the remove hook ------------------------------------------------------ */

typedef struct hookrec {
    cas_t *c;
    int n, under_lock, file_present, stat_present;
    char dig[16][72];
} hookrec_t;

static void on_removed(void *ud, const char *digest)
{
    hookrec_t *h = ud;
    if (pthread_mutex_trylock(&h->c->mu) == 0)
        pthread_mutex_unlock(&h->c->mu);
    else
        h->under_lock++;
    char path[4096];
    assert_int_equal(cas_blob_path(h->c, digest, path, sizeof path), 0);
    if (access(path, F_OK) == 0)
        h->file_present++;
    /* calling back into the store is allowed (and would deadlock under mu) */
    char(*all)[72] = NULL;
    size_t n = 0;
    assert_int_equal(cas_blob_list(h->c, &all, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i], digest) == 0)
            h->stat_present++;
    free(all);
    if (h->n < 16)
        snprintf(h->dig[h->n], 72, "%s", digest);
    h->n++;
}

static void test_remove_hook(void **state)
{
    fx_t *f = *state;
    hookrec_t h = {.c = f->c};
    cas_set_remove_hook(f->c, on_removed, &h);
    char cfg[72], shared[72], only1[72], only2[72], loose[72];
    put_blob(f->c, "{\"model_format\":\"gguf\"}", cfg);
    put_blob(f->c, "shared layer bytes", shared);
    put_blob(f->c, "layer only in m1", only1);
    put_blob(f->c, "layer only in m2!", only2);
    const char *l1[] = {shared, only1}, *l2[] = {shared, only2};
    uint64_t z1[] = {18, 16}, z2[] = {18, 17};
    char *m1 = make_manifest(cfg, 23, l1, z1, 2), *m2 = make_manifest(cfg, 23, l2, z2, 2);
    cas_name_t a = name_of("alpha"), b = name_of("beta");
    assert_int_equal(cas_manifest_write(f->c, &a, m1, strlen(m1), NULL, NULL, 0), 0);
    assert_int_equal(cas_manifest_write(f->c, &b, m2, strlen(m2), NULL, NULL, 0), 0);
    assert_int_equal(h.n, 0);

    /* delete: only the blob no other manifest uses */
    assert_int_equal(cas_manifest_delete(f->c, &a), 0);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.dig[0], only1);

    /* a replaced manifest */
    put_blob(f->c, "layer only in m1", only1);
    int removed = 0;
    assert_int_equal(cas_manifest_write(f->c, &b, m1, strlen(m1), &removed, NULL, 0), 0);
    assert_int_equal(removed, 1);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.dig[1], only2);

    /* gc */
    put_blob(f->c, "uploaded but never used", loose);
    assert_int_equal(cas_gc(f->c), 1);
    assert_int_equal(h.n, 3);
    assert_string_equal(h.dig[2], loose);

    /* a blob that fails verification */
    char path[4096];
    cas_blob_path(f->c, only1, path, sizeof path);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fputc('X', fp);
    fclose(fp);
    assert_int_equal(cas_blob_verify(f->c, only1), OX_EDIGEST);
    assert_int_equal(h.n, 4);
    assert_string_equal(h.dig[3], only1);
    assert_int_equal(cas_blob_verify(f->c, shared), 0);
    assert_int_equal(h.n, 4);

    /* every call: after the unlink and the index update, outside the lock */
    assert_int_equal(h.under_lock, 0);
    assert_int_equal(h.file_present, 0);
    assert_int_equal(h.stat_present, 0);

    /* removed hook: no more calls */
    cas_set_remove_hook(f->c, NULL, NULL);
    assert_int_equal(cas_manifest_delete(f->c, &b), 0);
    assert_int_equal(count_dir(cas_blobs_dir(f->c)), 0);
    assert_int_equal(h.n, 4);
    free(m1);
    free(m2);
}

/* ---- gc of the staging dir ---------------------------------------------- */

static void touch(const char *dir, const char *name)
{
    char p[8192];
    assert_int_equal(ox_fs_join(p, sizeof p, dir, name), 0);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    fputs("x", fp);
    fclose(fp);
}

static int exists(const char *dir, const char *name)
{
    char p[8192];
    assert_int_equal(ox_fs_join(p, sizeof p, dir, name), 0);
    return access(p, F_OK) == 0;
}

static void test_gc_tmp_leftovers(void **state)
{
    fx_t *f = *state;
    char done[72], absent[72];
    put_blob(f->c, "{\"done\":1}", done);
    char *m = make_manifest(done, 10, NULL, NULL, 0);
    cas_name_t n = name_of("keeper");
    assert_int_equal(cas_manifest_write(f->c, &n, m, strlen(m), NULL, NULL, 0), 0);
    free(m);
    digest_of("still downloading", 17, absent);
    const char *X = done + 7, *Y = absent + 7;
    const char *tmp = cas_tmp_dir(f->c);
    char name[256], swarm[4096], sub[8192];

    /* a partial (+ sidecar, + sidecar temp) of the committed blob: finished */
    snprintf(name, sizeof name, "sha256-%s-partial", X);
    touch(tmp, name);
    snprintf(name, sizeof name, "sha256-%s-partial.parts", X);
    touch(tmp, name);
    /* of the absent blob: resumable, kept */
    snprintf(name, sizeof name, "sha256-%s-partial", Y);
    touch(tmp, name);
    snprintf(name, sizeof name, "sha256-%s-partial.parts", Y);
    touch(tmp, name);
    /* sidecar temps: another (gone) process's is stale, ours is in use */
    snprintf(name, sizeof name, "sha256-%s-partial.parts.tmp-1", Y);
    touch(tmp, name);
    snprintf(name, sizeof name, "sha256-%s-partial.parts.tmp-%ld", Y, (long)getpid());
    touch(tmp, name);
    touch(tmp, "ingest-1-7"); /* an upload in flight (gc may run while serving) */
    touch(tmp, "notes.txt");  /* unknown: not ours to judge */
    /* swarm staging: engine dir + resume data */
    snprintf(swarm, sizeof swarm, "%s/swarm", tmp);
    snprintf(sub, sizeof sub, "%s/%s", swarm, X);
    assert_int_equal(ox_fs_mkdir_p(sub, 0755), 0);
    snprintf(name, sizeof name, "sha256-%s", X);
    touch(sub, name);
    snprintf(name, sizeof name, "%s.resume", X);
    touch(swarm, name);
    snprintf(name, sizeof name, "%s.resume.tmp", X);
    touch(swarm, name);
    snprintf(sub, sizeof sub, "%s/%s", swarm, Y);
    assert_int_equal(ox_fs_mkdir_p(sub, 0755), 0);
    snprintf(name, sizeof name, "sha256-%s", Y);
    touch(sub, name);
    snprintf(name, sizeof name, "%s.resume", Y);
    touch(swarm, name);

    assert_int_equal(cas_gc(f->c), 0);
    assert_int_equal(cas_blob_stat(f->c, done, NULL), 0);

    snprintf(name, sizeof name, "sha256-%s-partial", X);
    assert_false(exists(tmp, name));
    snprintf(name, sizeof name, "sha256-%s-partial.parts", X);
    assert_false(exists(tmp, name));
    snprintf(name, sizeof name, "sha256-%s-partial", Y);
    assert_true(exists(tmp, name));
    snprintf(name, sizeof name, "sha256-%s-partial.parts", Y);
    assert_true(exists(tmp, name));
    snprintf(name, sizeof name, "sha256-%s-partial.parts.tmp-1", Y);
    assert_false(exists(tmp, name));
    snprintf(name, sizeof name, "sha256-%s-partial.parts.tmp-%ld", Y, (long)getpid());
    assert_true(exists(tmp, name));
    assert_true(exists(tmp, "ingest-1-7"));
    assert_true(exists(tmp, "notes.txt"));
    assert_false(exists(swarm, X));
    snprintf(name, sizeof name, "%s.resume", X);
    assert_false(exists(swarm, name));
    snprintf(name, sizeof name, "%s.resume.tmp", X);
    assert_false(exists(swarm, name));
    snprintf(name, sizeof name, "%s/sha256-%s", Y, Y);
    assert_true(exists(swarm, name));
    snprintf(name, sizeof name, "%s.resume", Y);
    assert_true(exists(swarm, name));
}

/* ---- listing many models: one walk, every model, right fields --------- */

#define MANY 300

static void test_list_many(void **state)
{
    fx_t *f = *state;
    char layer[72];
    put_blob(f->c, "one shared weights layer", layer);
    static char cfgs[MANY][72], hexes[MANY][65];
    for (int i = 0; i < MANY; i++) {
        char cfg_text[64];
        snprintf(cfg_text, sizeof cfg_text, "{\"model_family\":\"fam%d\"}", i);
        put_blob(f->c, cfg_text, cfgs[i]);
        const char *l[] = {layer};
        uint64_t z[] = {24};
        char *m = make_manifest(cfgs[i], strlen(cfg_text), l, z, 1);
        char nm[64];
        snprintf(nm, sizeof nm, "team%d/model-%03d:v%d", i % 3, i, i % 7);
        cas_name_t n = name_of(nm);
        assert_int_equal(cas_manifest_write(f->c, &n, m, strlen(m), NULL, NULL, 0), 0);
        ox_sha256_hex(m, strlen(m), hexes[i]);
        free(m);
    }
    for (int round = 0; round < 2; round++) {
        cas_model_info_t *v = NULL;
        size_t n = 0;
        assert_int_equal(cas_model_list(f->c, &v, &n), 0);
        int want = round == 0 ? MANY : MANY - MANY / 3;
        assert_int_equal(n, want);
        static int seen[MANY];
        memset(seen, 0, sizeof seen);
        for (size_t k = 0; k < n; k++) {
            int i = -1, ns = -1, tag = -1;
            assert_int_equal(sscanf(v[k].name.ns, "team%d", &ns), 1);
            assert_int_equal(sscanf(v[k].name.model, "model-%d", &i), 1);
            assert_int_equal(sscanf(v[k].name.tag, "v%d", &tag), 1);
            assert_true(i >= 0 && i < MANY);
            assert_int_equal(ns, i % 3);
            assert_int_equal(tag, i % 7);
            assert_int_equal(seen[i]++, 0);
            assert_string_equal(v[k].config, cfgs[i]);
            assert_string_equal(v[k].digest, hexes[i]);
            char cfg_text[64];
            assert_int_equal(v[k].size, 24 + (uint64_t)snprintf(cfg_text, sizeof cfg_text,
                                                                  "{\"model_family\":\"fam%d\"}",
                                                                  i));
            if (k)
                assert_true(v[k - 1].mtime_ns >= v[k].mtime_ns);
            if (round == 1)
                assert_true(i % 3 != 0);
        }
        free(v);
        if (round == 0) {
            for (int i = 0; i < MANY; i += 3) {
                char nm[64];
                snprintf(nm, sizeof nm, "team%d/model-%03d:v%d", i % 3, i, i % 7);
                cas_name_t q = name_of(nm);
                assert_int_equal(cas_manifest_delete(f->c, &q), 0);
            }
        }
    }
}

/* ---- no flush under the store lock ---------------------------------------- */

static void test_no_fsync_under_lock(void **state)
{
    fx_t *f = *state;
    char cfg[72], l1[72], l2[72], loose[72];
    put_blob(f->c, "{\"cfg\":true}", cfg);
    put_blob(f->c, "first layer", l1);
    put_blob(f->c, "second layer", l2);
    put_blob(f->c, "loose", loose);
    const char *a1[] = {l1}, *a2[] = {l2};
    uint64_t z1[] = {11}, z2[] = {12};
    char *m1 = make_manifest(cfg, 12, a1, z1, 1), *m2 = make_manifest(cfg, 12, a2, z2, 1);
    cas_name_t a = name_of("a"), b = name_of("B:x"), bl = name_of("b:X");
    char *json = NULL;
    size_t len;
    cas_model_info_t *v = NULL;
    size_t n;

    watch(f->c);
    assert_int_equal(cas_manifest_write(f->c, &a, m1, strlen(m1), NULL, NULL, 0), 0);
    assert_int_equal(cas_manifest_write(f->c, &b, m1, strlen(m1), NULL, NULL, 0), 0);
    assert_int_equal(cas_manifest_write(f->c, &bl, m2, strlen(m2), NULL, NULL, 0), 0);
    assert_int_equal(cas_manifest_write(f->c, &a, m2, strlen(m2), NULL, NULL, 0), 0);
    assert_int_equal(cas_manifest_copy(f->c, &a, &b), 0);
    assert_int_equal(cas_manifest_read(f->c, &a, &json, &len, NULL, NULL, NULL), 0);
    free(json);
    assert_int_equal(cas_model_list(f->c, &v, &n), 0);
    free(v);
    assert_int_equal(cas_meta_put(f->c, "torrent", cfg, "rec", 3), 0);
    assert_int_equal(cas_manifest_delete(f->c, &b), 0);
    assert_int_equal(cas_gc(f->c), 1); /* loose (l1 went with the replace of a) */
    assert_int_equal(cas_manifest_delete(f->c, &a), 0);
    int seen = g_fsyncs, locked = g_fsyncs_locked;
    g_watch = NULL;

    assert_true(seen >= 8); /* the interposer works: writes were flushed */
    assert_int_equal(locked, 0);
    assert_int_equal(count_dir(cas_blobs_dir(f->c)), 0);
    free(m1);
    free(m2);
}

/* ---- two threads: a flush of one never keeps the other out ------------- */

typedef struct probe {
    cas_t *c;
    cas_name_t other;
    int finished, rc;
} probe_t;

/* What loop-thread callers do: look-ups that take the store lock. */
static void *probe_main(void *arg)
{
    probe_t *p = arg;
    cas_model_info_t *v = NULL;
    size_t n = 0;
    char *json = NULL, *meta = NULL;
    size_t len = 0, ml = 0;
    int rc = cas_model_list(p->c, &v, &n);
    free(v);
    if (!rc)
        rc = cas_manifest_read(p->c, &p->other, &json, &len, NULL, NULL, NULL);
    free(json);
    if (!rc && cas_meta_get(p->c, "torrent", "sha256:" "0000000000000000000000000000000000000000"
                            "000000000000000000000000", (void **)&meta, &ml) != OX_ENOTFOUND)
        rc = -1;
    pthread_mutex_lock(&g_gate.mu);
    p->finished = 1;
    p->rc = rc;
    pthread_cond_broadcast(&g_gate.cv);
    pthread_mutex_unlock(&g_gate.mu);
    return NULL;
}

typedef struct writer {
    cas_t *c;
    const char *m1, *m2;
    int rc;
} writer_t;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    pthread_mutex_lock(&g_gate.mu); /* start once the gate knows this thread */
    while (!__atomic_load_n(&g_gate.on, __ATOMIC_ACQUIRE))
        pthread_cond_wait(&g_gate.cv, &g_gate.mu);
    pthread_mutex_unlock(&g_gate.mu);
    cas_name_t a = name_of("a");
    w->rc = cas_manifest_write(w->c, &a, w->m1, strlen(w->m1), NULL, NULL, 0);
    if (!w->rc)
        w->rc = cas_manifest_write(w->c, &a, w->m2, strlen(w->m2), NULL, NULL, 0);
    if (!w->rc)
        w->rc = cas_manifest_delete(w->c, &a);
    pthread_mutex_lock(&g_gate.mu);
    g_gate.done = 1;
    pthread_cond_broadcast(&g_gate.cv);
    pthread_mutex_unlock(&g_gate.mu);
    return NULL;
}

/* The writer is parked inside each of its fsyncs in turn; meanwhile another
 * thread must get through look-ups that take the store lock. With an fsync
 * under the lock the probe stays blocked until the writer is let go (seen
 * here after a 5 s wait, never a hang). */
static void test_flush_does_not_block_lookups(void **state)
{
    fx_t *f = *state;
    char cfg[72], l1[72], l2[72];
    put_blob(f->c, "{\"cfg\":2}", cfg);
    put_blob(f->c, "layer one", l1);
    put_blob(f->c, "layer two", l2);
    const char *a1[] = {l1}, *a2[] = {l2};
    uint64_t z1[] = {9}, z2[] = {9};
    char *m1 = make_manifest(cfg, 9, a1, z1, 1), *m2 = make_manifest(cfg, 9, a2, z2, 1);
    cas_name_t other = name_of("other");
    assert_int_equal(cas_manifest_write(f->c, &other, m2, strlen(m2), NULL, NULL, 0), 0);

    writer_t w = {.c = f->c, .m1 = m1, .m2 = m2};
    pthread_t wt;
    g_gate.parked = g_gate.go = g_gate.done = 0;
    assert_int_equal(pthread_create(&wt, NULL, writer_main, &w), 0);
    pthread_mutex_lock(&g_gate.mu);
    g_gate.who = wt;
    __atomic_store_n(&g_gate.on, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&g_gate.cv);
    pthread_mutex_unlock(&g_gate.mu);
    int parks = 0, blocked = 0;
    for (;;) {
        pthread_mutex_lock(&g_gate.mu);
        while (!g_gate.parked && !g_gate.done)
            pthread_cond_wait(&g_gate.cv, &g_gate.mu);
        int done = g_gate.done && !g_gate.parked;
        pthread_mutex_unlock(&g_gate.mu);
        if (done)
            break;
        parks++;
        probe_t p = {.c = f->c, .other = other};
        pthread_t pt;
        assert_int_equal(pthread_create(&pt, NULL, probe_main, &p), 0);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        pthread_mutex_lock(&g_gate.mu);
        while (!p.finished)
            if (pthread_cond_timedwait(&g_gate.cv, &g_gate.mu, &until) == ETIMEDOUT)
                break;
        int stuck = !p.finished;
        /* let the writer's fsync run; when the probe is stuck behind it,
         * open the gate for good (the writer would park again holding the
         * lock) */
        g_gate.go = 1;
        if (stuck)
            __atomic_store_n(&g_gate.on, 0, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&g_gate.cv);
        pthread_mutex_unlock(&g_gate.mu);
        pthread_join(pt, NULL);
        assert_int_equal(p.rc, 0);
        if (stuck) {
            blocked++;
            break;
        }
    }
    __atomic_store_n(&g_gate.on, 0, __ATOMIC_RELEASE);
    pthread_join(wt, NULL);
    assert_int_equal(w.rc, 0);
    print_message("writer parked in %d fsyncs, look-ups blocked in %d\n", parks, blocked);
    assert_int_equal(blocked, 0);
    assert_true(parks >= 4); /* two writes (file + dir each) and a delete */
    free(m1);
    free(m2);
}

/* Writers of two tags of one model and deleters racing: staging happens
 * outside the lock while a delete may prune the model's directory. */
typedef struct racer {
    cas_t *c;
    const char *name, *json;
    int fails;
} racer_t;

static void *racer_main(void *arg)
{
    racer_t *r = arg;
    cas_name_t n = name_of(r->name);
    for (int i = 0; i < 150; i++) {
        if (cas_manifest_write(r->c, &n, r->json, strlen(r->json), NULL, NULL, 0) != 0)
            r->fails++;
        char *json = NULL;
        size_t len;
        if (cas_manifest_read(r->c, &n, &json, &len, NULL, NULL, NULL) != 0 ||
            len != strlen(r->json))
            r->fails++;
        free(json);
        if (cas_manifest_delete(r->c, &n) != 0)
            r->fails++;
    }
    return NULL;
}

static void test_write_delete_race(void **state)
{
    fx_t *f = *state;
    char cfg[72], keep[72];
    put_blob(f->c, "{\"race\":1}", cfg);
    put_blob(f->c, "kept by the anchor", keep);
    const char *l[] = {keep};
    uint64_t z[] = {18};
    char *m = make_manifest(cfg, 10, l, z, 1);
    /* an anchor elsewhere keeps the blobs alive across the deletes */
    cas_name_t anchor = name_of("anchor");
    assert_int_equal(cas_manifest_write(f->c, &anchor, m, strlen(m), NULL, NULL, 0), 0);
    racer_t r[3] = {{f->c, "u/m:t1", m, 0}, {f->c, "u/m:t2", m, 0}, {f->c, "u/n:t1", m, 0}};
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, racer_main, &r[i]), 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].fails, 0);
    }
    cas_model_info_t *v = NULL;
    size_t n = 0;
    assert_int_equal(cas_model_list(f->c, &v, &n), 0);
    assert_int_equal(n, 1);
    free(v);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/manifests/registry.ollama.ai", f->models);
    assert_int_equal(count_dir(dir), 1); /* library/anchor only: u/ pruned */
    assert_int_equal(count_dir(cas_blobs_dir(f->c)), 2);
    free(m);
}

/* ---- staging on the file system of blobs/ ------------------------------- */

static void test_staging_same_fs(void **state)
{
    (void)state;
    char mroot[] = "/dev/shm/ox-cas-gc-XXXXXX", sroot[] = "/tmp/ox-cas-gc-XXXXXX";
    if (!mkdtemp(mroot))
        skip();
    if (!mkdtemp(sroot)) {
        rm_rf(mroot);
        skip();
    }
    struct stat a, b;
    if (stat(mroot, &a) != 0 || stat(sroot, &b) != 0 || a.st_dev == b.st_dev) {
        rm_rf(mroot);
        rm_rf(sroot);
        skip();
    }
    char err[256] = "", want[4096], part[4096], dig[72];
    cas_t *c = NULL;
    assert_int_equal(cas_open(mroot, sroot, &c, err, sizeof err), 0);
    snprintf(want, sizeof want, "%s/.ollamax-tmp", mroot);
    assert_string_equal(cas_tmp_dir(c), want);
    digest_of("abc", 3, dig);
    assert_int_equal(cas_partial_path(c, dig, part, sizeof part), 0);
    assert_int_equal(strncmp(part, want, strlen(want)), 0);
    /* an upload stages there, beside blobs/ */
    cas_ingest_t *in;
    assert_int_equal(cas_ingest_begin(c, NULL, 0, &in), 0);
    assert_int_equal(cas_ingest_write(in, "staged bytes", 12), 0);
    assert_int_equal(count_dir(want), 1);
    char got[72];
    assert_int_equal(cas_ingest_commit(in, got, NULL, err, sizeof err), 0);
    assert_int_equal(count_dir(want), 0);
    assert_int_equal(cas_blob_stat(c, got, NULL), 0);
    /* nothing of it shows as a blob or a model */
    char(*all)[72] = NULL;
    size_t n = 0;
    assert_int_equal(cas_blob_list(c, &all, &n), 0);
    assert_int_equal(n, 1);
    free(all);
    cas_model_info_t *v = NULL;
    assert_int_equal(cas_model_list(c, &v, &n), 0);
    assert_int_equal(n, 0);
    free(v);
    cas_close(c);
    rm_rf(mroot);
    rm_rf(sroot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_remove_hook, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_gc_tmp_leftovers, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_list_many, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_no_fsync_under_lock, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_flush_does_not_block_lookups, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_delete_race, fx_setup, fx_teardown),
        cmocka_unit_test(test_staging_same_fs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
