/* cas manifests and the index: write/read/list/copy/delete, GC, case
 * handling, rebuild of the index from disk, hostile names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <rocksdb/c.h>
#include <time.h>

#include "test_cas_util.h"

/* Three blobs and two manifests sharing the config and layer "shared". */
typedef struct scene {
    char cfg[72], shared[72], only1[72], only2[72];
    char *m1, *m2;
} scene_t;

static void scene_make(cas_t *c, scene_t *s)
{
    put_blob(c, "{\"model_format\":\"gguf\"}", s->cfg);
    put_blob(c, "shared layer bytes", s->shared);
    put_blob(c, "layer only in m1", s->only1);
    put_blob(c, "layer only in m2!", s->only2);
    const char *l1[] = {s->shared, s->only1};
    const char *l2[] = {s->shared, s->only2};
    uint64_t z1[] = {18, 16}, z2[] = {18, 17};
    s->m1 = make_manifest(s->cfg, 23, l1, z1, 2);
    s->m2 = make_manifest(s->cfg, 23, l2, z2, 2);
}

static void scene_free(scene_t *s)
{
    free(s->m1);
    free(s->m2);
}

static void test_manifest_write_read(void **state)
{
    fx_t *f = *state;
    scene_t s;
    scene_make(f->c, &s);
    cas_name_t n = name_of("Llama3.2:1B");
    char err[256] = "";
    int removed = -1;
    assert_int_equal(cas_manifest_write(f->c, &n, s.m1, strlen(s.m1), &removed, err, sizeof err),
                     0);
    assert_int_equal(removed, 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifests/registry.ollama.ai/library/Llama3.2/1B", f->models);
    char *disk = NULL;
    size_t dlen = 0;
    assert_int_equal(ox_fs_read_all(path, 1 << 20, &disk, &dlen), 0);
    assert_string_equal(disk, s.m1); /* bytes exactly as given */
    free(disk);

    /* Case-insensitive read returns the stored case and the bytes' hash. */
    cas_name_t q = name_of("REGISTRY.OLLAMA.AI/LIBRARY/llama3.2:1b"), found;
    char *json = NULL, hex[65];
    size_t len = 0;
    int64_t mt = 0;
    assert_int_equal(cas_manifest_read(f->c, &q, &json, &len, hex, &mt, &found), 0);
    assert_int_equal(len, strlen(s.m1));
    assert_memory_equal(json, s.m1, len);
    char want[65];
    ox_sha256_hex(s.m1, strlen(s.m1), want);
    assert_string_equal(hex, want);
    assert_string_equal(found.model, "Llama3.2");
    assert_string_equal(found.tag, "1B");
    assert_true(mt > 0);
    free(json);

    cas_name_t other = name_of("llama3.2:2b");
    assert_int_equal(cas_manifest_read(f->c, &other, &json, &len, NULL, NULL, NULL),
                     OX_ENOTFOUND);
    scene_free(&s);
}

static void test_manifest_missing_blob(void **state)
{
    fx_t *f = *state;
    char cfg[72], ghost[72], err[256] = "";
    put_blob(f->c, "cfg", cfg);
    digest_of("never stored", 12, ghost);
    const char *l[] = {ghost};
    uint64_t z[] = {12};
    char *m = make_manifest(cfg, 3, l, z, 1);
    cas_name_t n = name_of("m");
    assert_int_equal(cas_manifest_write(f->c, &n, m, strlen(m), NULL, err, sizeof err),
                     OX_ENOTFOUND);
    assert_non_null(strstr(err, ghost));
    assert_int_equal(count_dir(f->models), 2); /* blobs, manifests */
    char mdir[400];
    snprintf(mdir, sizeof mdir, "%s/manifests", f->models);
    assert_int_equal(count_dir(mdir), 0);
    /* Malformed manifests and invalid digests never reach the disk. */
    const char *bad = "{\"config\":{\"digest\":\"sha256:../../x\",\"size\":1}}";
    assert_int_equal(cas_manifest_write(f->c, &n, bad, strlen(bad), NULL, err, sizeof err),
                     OX_EFORMAT);
    assert_int_equal(cas_manifest_write(f->c, &n, "{", 1, NULL, err, sizeof err), OX_EFORMAT);
    assert_int_equal(count_dir(mdir), 0);
    free(m);
}

static void test_hostile_names(void **state)
{
    fx_t *f = *state;
    char cfg[72];
    put_blob(f->c, "cfg", cfg);
    char *m = make_manifest(cfg, 3, NULL, NULL, 0);
    cas_name_t n = name_of("m");
    /* Hand-built names bypassing cas_name_parse are still checked. */
    const char *evil[] = {"..", ".", "", "a/b", "../../../tmp", ".hidden"};
    for (size_t i = 0; i < sizeof evil / sizeof *evil; i++) {
        cas_name_t e = n;
        snprintf(e.model, sizeof e.model, "%s", evil[i]);
        assert_int_equal(cas_manifest_write(f->c, &e, m, strlen(m), NULL, NULL, 0), OX_EINVAL);
        assert_int_equal(cas_manifest_delete(f->c, &e), OX_EINVAL);
        char *j;
        assert_int_equal(cas_manifest_read(f->c, &e, &j, NULL, NULL, NULL, NULL), OX_EINVAL);
        e = n;
        snprintf(e.host, sizeof e.host, "%s", evil[i]);
        assert_int_equal(cas_manifest_write(f->c, &e, m, strlen(m), NULL, NULL, 0), OX_EINVAL);
        e = n;
        snprintf(e.tag, sizeof e.tag, "%s", evil[i]);
        assert_int_equal(cas_manifest_copy(f->c, &n, &e), OX_EINVAL);
    }
    char mdir[400];
    snprintf(mdir, sizeof mdir, "%s/manifests", f->models);
    assert_int_equal(count_dir(mdir), 0);
    assert_int_equal(cas_meta_put(f->c, "a/b", cfg, "x", 1), OX_EINVAL);
    assert_int_equal(cas_meta_put(f->c, "torrent", "sha256:../x", "x", 1), OX_EINVAL);
    char path[64];
    assert_int_equal(cas_blob_path(f->c, "../../etc/passwd", path, sizeof path), OX_EINVAL);
    free(m);
}

static void test_delete_gc_shared(void **state)
{
    fx_t *f = *state;
    scene_t s;
    scene_make(f->c, &s);
    cas_name_t a = name_of("user/alpha:v1"), b = name_of("beta");
    assert_int_equal(cas_manifest_write(f->c, &a, s.m1, strlen(s.m1), NULL, NULL, 0), 0);
    assert_int_equal(cas_manifest_write(f->c, &b, s.m2, strlen(s.m2), NULL, NULL, 0), 0);
    assert_int_equal(cas_meta_put(f->c, "torrent", s.only1, "t1", 2), 0);
    assert_int_equal(cas_meta_put(f->c, "torrent", s.shared, "ts", 2), 0);

    cas_name_t a_ci = name_of("USER/Alpha:V1");
    assert_int_equal(cas_manifest_delete(f->c, &a_ci), 0);
    assert_int_equal(cas_manifest_delete(f->c, &a_ci), OX_ENOTFOUND);
    /* only1 went with its meta; shared and cfg survive for beta. */
    assert_int_equal(cas_blob_stat(f->c, s.only1, NULL), OX_ENOTFOUND);
    void *v = NULL;
    size_t vl;
    assert_int_equal(cas_meta_get(f->c, "torrent", s.only1, &v, &vl), OX_ENOTFOUND);
    assert_int_equal(cas_blob_stat(f->c, s.shared, NULL), 0);
    assert_int_equal(cas_blob_stat(f->c, s.cfg, NULL), 0);
    assert_int_equal(cas_blob_stat(f->c, s.only2, NULL), 0);
    assert_int_equal(cas_meta_get(f->c, "torrent", s.shared, &v, &vl), 0);
    assert_int_equal(vl, 2);
    assert_memory_equal(v, "ts", 2);
    free(v);
    /* Empty directories pruned up to manifests/. */
    char dir[400];
    snprintf(dir, sizeof dir, "%s/manifests/registry.ollama.ai/user", f->models);
    assert_int_equal(access(dir, F_OK), -1);
    snprintf(dir, sizeof dir, "%s/manifests/registry.ollama.ai/library/beta", f->models);
    assert_int_equal(access(dir, F_OK), 0);

    assert_int_equal(cas_manifest_delete(f->c, &b), 0);
    assert_int_equal(count_dir(cas_blobs_dir(f->c)), 0);
    snprintf(dir, sizeof dir, "%s/manifests", f->models);
    assert_int_equal(count_dir(dir), 0);
    assert_int_equal(cas_meta_get(f->c, "torrent", s.shared, &v, &vl), OX_ENOTFOUND);
    scene_free(&s);
}

static void test_gc(void **state)
{
    fx_t *f = *state;
    scene_t s;
    scene_make(f->c, &s);
    cas_name_t a = name_of("alpha");
    assert_int_equal(cas_manifest_write(f->c, &a, s.m1, strlen(s.m1), NULL, NULL, 0), 0);
    char loose[72], partial[4096], keep[4096];
    put_blob(f->c, "uploaded but never used", loose);
    cas_partial_path(f->c, s.shared, partial, sizeof partial); /* finished work */
    write_file(partial, "x", 1);
    char absent[72];
    digest_of("still downloading", 17, absent);
    cas_partial_path(f->c, absent, keep, sizeof keep);
    write_file(keep, "y", 1);
    /* only2 and loose are unreferenced. */
    assert_int_equal(cas_gc(f->c), 2);
    assert_int_equal(cas_blob_stat(f->c, loose, NULL), OX_ENOTFOUND);
    assert_int_equal(cas_blob_stat(f->c, s.only2, NULL), OX_ENOTFOUND);
    assert_int_equal(cas_blob_stat(f->c, s.only1, NULL), 0);
    assert_int_equal(access(partial, F_OK), -1);
    assert_int_equal(access(keep, F_OK), 0);
    assert_int_equal(cas_gc(f->c), 0);
    scene_free(&s);
}

static void test_replace_copy(void **state)
{
    fx_t *f = *state;
    scene_t s;
    scene_make(f->c, &s);
    cas_name_t a = name_of("alpha");
    int removed = -1;
    assert_int_equal(cas_manifest_write(f->c, &a, s.m1, strlen(s.m1), &removed, NULL, 0), 0);
    cas_name_t b = name_of("h.example:8080/team/beta:x");
    assert_int_equal(cas_manifest_copy(f->c, &a, &b), 0);
    char *j1, *j2;
    size_t l1, l2;
    assert_int_equal(cas_manifest_read(f->c, &a, &j1, &l1, NULL, NULL, NULL), 0);
    assert_int_equal(cas_manifest_read(f->c, &b, &j2, &l2, NULL, NULL, NULL), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(j1, j2, l1);
    free(j1);
    free(j2);
    cas_name_t nope = name_of("nope");
    assert_int_equal(cas_manifest_copy(f->c, &nope, &b), OX_ENOTFOUND);

    /* Replacing alpha with m2 keeps only1 (beta still uses it). */
    assert_int_equal(cas_manifest_write(f->c, &a, s.m2, strlen(s.m2), &removed, NULL, 0), 0);
    assert_int_equal(removed, 0);
    assert_int_equal(cas_blob_stat(f->c, s.only1, NULL), 0);
    /* Replacing beta (written in another case) with m2 drops only1. */
    cas_name_t b_ci = name_of("H.EXAMPLE:8080/Team/Beta:X");
    assert_int_equal(cas_manifest_write(f->c, &b_ci, s.m2, strlen(s.m2), &removed, NULL, 0), 0);
    assert_int_equal(removed, 1);
    assert_int_equal(cas_blob_stat(f->c, s.only1, NULL), OX_ENOTFOUND);
    cas_model_info_t *v;
    size_t n;
    assert_int_equal(cas_model_list(f->c, &v, &n), 0);
    assert_int_equal(n, 2); /* the old-case beta is gone */
    int seen_new_case = 0;
    for (size_t i = 0; i < n; i++)
        seen_new_case |= strcmp(v[i].name.model, "Beta") == 0;
    assert_true(seen_new_case);
    free(v);
    scene_free(&s);
}

static void set_mtime(fx_t *f, const char *rel, time_t sec)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/manifests/%s", f->models, rel);
    struct timespec ts[2] = {{sec, 0}, {sec, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_list_order(void **state)
{
    fx_t *f = *state;
    scene_t s;
    scene_make(f->c, &s);
    const char *names[] = {"old", "newest", "middle"};
    for (int i = 0; i < 3; i++) {
        cas_name_t n = name_of(names[i]);
        const char *m = i == 1 ? s.m2 : s.m1;
        assert_int_equal(cas_manifest_write(f->c, &n, m, strlen(m), NULL, NULL, 0), 0);
    }
    set_mtime(f, "registry.ollama.ai/library/old/latest", 1000000);
    set_mtime(f, "registry.ollama.ai/library/newest/latest", 3000000);
    set_mtime(f, "registry.ollama.ai/library/middle/latest", 2000000);
    /* A stray temp file and a junk manifest are not models. */
    char junk[4096];
    snprintf(junk, sizeof junk, "%s/manifests/registry.ollama.ai/library/old/.latest.tmp-1",
             f->models);
    write_file(junk, "{", 1);
    snprintf(junk, sizeof junk, "%s/manifests/registry.ollama.ai/library/broken/latest",
             f->models);
    write_file(junk, "not json", 8);
    cas_model_info_t *v;
    size_t n;
    assert_int_equal(cas_model_list(f->c, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].name.model, "newest");
    assert_string_equal(v[1].name.model, "middle");
    assert_string_equal(v[2].name.model, "old");
    assert_int_equal(v[0].size, 23 + 18 + 17);
    assert_int_equal(v[1].size, 23 + 18 + 16);
    assert_int_equal(v[0].mtime_ns, 3000000LL * 1000000000LL);
    char want[65];
    ox_sha256_hex(s.m2, strlen(s.m2), want);
    assert_string_equal(v[0].digest, want);
    free(v);
    scene_free(&s);
}

/* Keys of one column family of the index (1 blobs, 2 manifests), read
 * straight from RocksDB (store closed); blob keys are copied to keys. */
static size_t index_keys(fx_t *f, int cf, char keys[][65], size_t cap)
{
    char path[400], *e = NULL;
    snprintf(path, sizeof path, "%s/index", f->state);
    rocksdb_options_t *o = rocksdb_options_create();
    const char *names[] = {"default", "blobs", "manifests", "meta"};
    const rocksdb_options_t *co[] = {o, o, o, o};
    rocksdb_column_family_handle_t *h[4];
    rocksdb_t *db = rocksdb_open_for_read_only_column_families(o, path, 4, names, co, h, 0, &e);
    assert_null(e);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, h[cf]);
    size_t n = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (cf != 1) {
            n++;
            continue;
        }
        assert_int_equal(kl, 64);
        if (n < cap) {
            memcpy(keys[n], k, 64);
            keys[n][64] = 0;
        }
        n++;
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    for (int i = 0; i < 4; i++)
        rocksdb_column_family_handle_destroy(h[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
    return n;
}

static int has_key(char keys[][65], size_t n, const char *digest)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], digest + 7) == 0)
            return 1;
    return 0;
}

static void test_index_rebuild(void **state)
{
    fx_t *f = *state;
    scene_t s;
    scene_make(f->c, &s);
    cas_name_t a = name_of("alpha");
    assert_int_equal(cas_manifest_write(f->c, &a, s.m1, strlen(s.m1), NULL, NULL, 0), 0);
    assert_int_equal(cas_meta_put(f->c, "torrent", s.only2, "t2", 2), 0);
    assert_int_equal(cas_meta_put(f->c, "torrent", s.cfg, "tc", 2), 0);
    cas_close(f->c);
    f->c = NULL;

    /* By hand, store closed: add a blob (as a kill -9 after the rename would
     * leave it), remove one, add a manifest. */
    char added[72], path[4096];
    const char *bytes = "dropped in by hand";
    digest_of(bytes, strlen(bytes), added);
    snprintf(path, sizeof path, "%s/blobs/sha256-%s", f->models, added + 7);
    write_file(path, bytes, strlen(bytes));
    snprintf(path, sizeof path, "%s/blobs/sha256-%s", f->models, s.only2 + 7);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof path, "%s/manifests/registry.ollama.ai/library/byhand/latest",
             f->models);
    write_file(path, s.m1, strlen(s.m1));

    fx_reopen(f);
    char(*v)[72];
    size_t n;
    assert_int_equal(cas_blob_list(f->c, &v, &n), 0);
    assert_int_equal(n, 4); /* cfg, shared, only1, added */
    free(v);
    assert_int_equal(cas_blob_stat(f->c, added, NULL), 0);
    assert_int_equal(cas_blob_stat(f->c, s.only2, NULL), OX_ENOTFOUND);
    void *mv;
    size_t ml;
    assert_int_equal(cas_meta_get(f->c, "torrent", s.only2, &mv, &ml), OX_ENOTFOUND);
    assert_int_equal(cas_meta_get(f->c, "torrent", s.cfg, &mv, &ml), 0);
    free(mv);
    cas_model_info_t *mi;
    assert_int_equal(cas_model_list(f->c, &mi, &n), 0);
    assert_int_equal(n, 2);
    free(mi);
    cas_close(f->c);
    f->c = NULL;
    char keys[16][65];
    size_t nk = index_keys(f, 1, keys, 16);
    assert_int_equal(nk, 4);
    assert_int_equal(index_keys(f, 2, NULL, 0), 2); /* alpha, byhand */
    assert_true(has_key(keys, nk, added));
    assert_false(has_key(keys, nk, s.only2));

    /* Without any index at all: rebuilt from the files. */
    snprintf(path, sizeof path, "%s/index", f->state);
    rm_rf(path);
    fx_reopen(f);
    cas_close(f->c);
    f->c = NULL;
    nk = index_keys(f, 1, keys, 16);
    assert_int_equal(nk, 4);
    assert_int_equal(index_keys(f, 2, NULL, 0), 2);
    assert_true(has_key(keys, nk, s.cfg));
    assert_true(has_key(keys, nk, added));
    fx_reopen(f);
    assert_int_equal(cas_model_list(f->c, &mi, &n), 0);
    assert_int_equal(n, 2);
    free(mi);
    /* Deleting the hand-written manifest GCs only what nothing else uses. */
    cas_name_t h = name_of("byhand");
    assert_int_equal(cas_manifest_delete(f->c, &h), 0);
    assert_int_equal(cas_blob_stat(f->c, s.only1, NULL), 0);
    scene_free(&s);
}

static void test_adopt_existing_dir(void **state)
{
    fx_t *f = *state;
    /* An Ollama models dir with an upper-case manifest path. */
    cas_close(f->c);
    f->c = NULL;
    char cfg[72], layer[72], path[4096];
    digest_of("c", 1, cfg);
    digest_of("l", 1, layer);
    snprintf(path, sizeof path, "%s/blobs/sha256-%s", f->models, cfg + 7);
    write_file(path, "c", 1);
    snprintf(path, sizeof path, "%s/blobs/sha256-%s", f->models, layer + 7);
    write_file(path, "l", 1);
    const char *l[] = {layer};
    uint64_t z[] = {1};
    char *m = make_manifest(cfg, 1, l, z, 1);
    snprintf(path, sizeof path, "%s/manifests/Registry.Ollama.AI/Library/MyModel/Q4", f->models);
    write_file(path, m, strlen(m));
    fx_reopen(f);
    cas_name_t q = name_of("mymodel:q4"), found;
    char *json;
    size_t len;
    assert_int_equal(cas_manifest_read(f->c, &q, &json, &len, NULL, NULL, &found), 0);
    free(json);
    char disp[600];
    cas_name_display(&found, disp, sizeof disp);
    assert_string_equal(disp, "MyModel:Q4");
    cas_model_info_t *v;
    size_t n;
    assert_int_equal(cas_model_list(f->c, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].size, 2);
    free(v);
    assert_int_equal(cas_manifest_delete(f->c, &q), 0);
    assert_int_equal(count_dir(cas_blobs_dir(f->c)), 0);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_manifest_write_read, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_manifest_missing_blob, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_names, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_delete_gc_shared, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_gc, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_replace_copy, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_list_order, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_index_rebuild, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_adopt_existing_dir, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
