/* The store object: open/close, paths, blob queries, verification, meta
 * records, blob removal and its hook (gc itself is in gc.c).
 *
 * Lock rules (c->mu, one per store, in cas_int.h):
 * - mu guards the index and every change to blobs/ and manifests/ (a rename
 *   or unlink and the index records that go with it), and the small fields
 *   of the store (tap, ingest_seq, remove hook, list of removed blobs).
 * - No fsync and no whole-file read or write under mu in this file, gc.c,
 *   models.c and index.c: data goes to a temp file that is written and
 *   fsynced before mu is taken; under mu only the rename and the index
 *   update happen; the fsync of the directory after a rename or unlink runs
 *   once mu is released (cas__unlock, models.c). Loop-thread callers that
 *   take mu (cas_ingest_begin, cas_meta_get) then never wait for a disk flush
 *   made by these files (registry look-ups walk manifests/ and now run in
 *   the work pool).
 * - Index writes are not synced: RocksDB's WAL reaches the page cache on
 *   every write, so a kill -9 loses nothing, and after a power loss the
 *   reconcile at open repairs the index from the files, which are the truth
 *   (a lost torrent record is recomputed by the swarm).
 * - Still under mu, as they must be consistent with the index: the walk of
 *   manifests/ (a readdir and a stat per manifest; a manifest file is read
 *   only when its mtime or size changed, i.e. it was edited by hand), the
 *   readdir and stats of blobs/ in gc (cas_blob_list takes no lock), and the
 *   stats of the blobs a manifest being written names.
 * - Not in these files: cas__blob_commit_file (ingest.c) renames, fsyncs
 *   blobs/ and indexes under mu; its cross-device copy is avoided because
 *   cas_open puts the staging dir on the file system of blobs/.
 * - The remove hook is called after mu is released, never under it; the tap's
 *   open runs under it (ingest.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas/gc_int.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/sha256.h"

static void seterr(char *err, size_t errlen, const char *fmt, const char *a)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a);
}

/* Ingest temp files never resume (an upload restarts from byte 0), so they
 * are dropped at open; partial downloads are kept for resume. */
static void tmp_clean_ingests(cas_t *c)
{
    DIR *d = opendir(c->tmp);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "ingest-", 7) != 0)
            continue;
        char path[CAS_PATH_MAX];
        if (!ox_fs_join(path, sizeof path, c->tmp, de->d_name))
            unlink(path);
    }
    closedir(d);
}

/* A commit renames from the staging dir into blobs/; across file systems
 * that becomes a copy of the whole blob (ingest.c). When OLLAMAX_MODELS is
 * on another file system than the state dir, stage in models/.ollamax-tmp:
 * beside blobs/ (never inside it, where Ollama would see the files), hidden
 * by its dot from Ollama and from our own walks. */
static void tmp_pick_same_fs(cas_t *c)
{
    struct stat b, t, a;
    if (stat(c->blobs, &b) != 0 || stat(c->tmp, &t) != 0 || b.st_dev == t.st_dev)
        return;
    char alt[CAS_PATH_MAX];
    if (ox_fs_join(alt, sizeof alt, c->models, ".ollamax-tmp") || ox_fs_mkdir_p(alt, 0755) ||
        stat(alt, &a) != 0 || a.st_dev != b.st_dev) {
        OX_WARN("cas: %s is on another file system than %s; commits will copy", c->tmp,
                c->blobs);
        return;
    }
    OX_INFO("cas: %s is on another file system than %s; staging in %s", c->tmp, c->blobs, alt);
    memcpy(c->tmp, alt, sizeof alt);
}

int cas_open(const char *models_dir, const char *state_dir, cas_t **out, char *err,
             size_t errlen)
{
    if (!models_dir || !state_dir || !out || !models_dir[0] || !state_dir[0]) {
        seterr(err, errlen, "%s", "cas_open: missing directory");
        return OX_EINVAL;
    }
    if (strlen(models_dir) > 3000 || strlen(state_dir) > 3000) {
        seterr(err, errlen, "%s", "cas_open: directory path too long");
        return OX_ETOOBIG;
    }
    cas_full_t *full = calloc(1, sizeof *full);
    if (!full)
        return OX_ENOMEM;
    cas_t *c = &full->c;
    snprintf(c->models, sizeof c->models, "%s", models_dir);
    snprintf(c->state, sizeof c->state, "%s", state_dir);
    ox_fs_join(c->blobs, sizeof c->blobs, models_dir, "blobs");
    ox_fs_join(c->manifests, sizeof c->manifests, models_dir, "manifests");
    ox_fs_join(c->tmp, sizeof c->tmp, state_dir, "tmp");
    ox_fs_join(c->index, sizeof c->index, state_dir, "index");
    const char *dirs[] = {c->blobs, c->manifests, c->tmp, c->index};
    for (size_t i = 0; i < 4; i++) {
        if (ox_fs_mkdir_p(dirs[i], 0755)) {
            seterr(err, errlen, "cannot create directory %s", dirs[i]);
            free(full);
            return OX_EIO;
        }
    }
    tmp_pick_same_fs(c);
    pthread_mutex_init(&c->mu, NULL);
    tmp_clean_ingests(c);
    int rc = cas__index_open(c, err, errlen);
    if (!rc) {
        rc = cas__index_reconcile(c);
        if (rc)
            seterr(err, errlen, "cannot rebuild the index from %s", models_dir);
    }
    if (rc) {
        cas_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void cas_close(cas_t *c)
{
    if (!c)
        return;
    cas__index_close(c);
    pthread_mutex_destroy(&c->mu);
    cas_full_t *full = cas__full(c);
    free(full->removed);
    free(full);
}

const char *cas_models_dir(const cas_t *c) { return c->models; }
const char *cas_blobs_dir(const cas_t *c) { return c->blobs; }
const char *cas_tmp_dir(const cas_t *c) { return c->tmp; }

void cas_set_tap(cas_t *c, const cas_tap_t *tap)
{
    pthread_mutex_lock(&c->mu);
    c->tap = tap;
    pthread_mutex_unlock(&c->mu);
}

int cas_blob_path(const cas_t *c, const char *digest, char *out, size_t cap)
{
    char hex[65], name[80];
    if (cas__digest_hex(digest, hex))
        return OX_EINVAL;
    snprintf(name, sizeof name, "sha256-%s", hex);
    return ox_fs_join(out, cap, c->blobs, name);
}

int cas_partial_path(const cas_t *c, const char *digest, char *out, size_t cap)
{
    char hex[65], name[96];
    if (cas__digest_hex(digest, hex))
        return OX_EINVAL;
    snprintf(name, sizeof name, "sha256-%s-partial", hex);
    return ox_fs_join(out, cap, c->tmp, name);
}

/* The file is the truth: a stat, not an index look-up, so a blob removed by
 * hand is reported missing at once. */
int cas_blob_stat(cas_t *c, const char *digest, uint64_t *size)
{
    char path[CAS_PATH_MAX];
    int rc = cas_blob_path(c, digest, path, sizeof path);
    if (rc)
        return rc;
    return ox_fs_stat(path, size, NULL);
}

void cas_set_remove_hook(cas_t *c, cas_remove_fn fn, void *ud)
{
    cas_full_t *f = cas__full(c);
    pthread_mutex_lock(&c->mu);
    f->remove_fn = fn;
    f->remove_ud = ud;
    pthread_mutex_unlock(&c->mu);
}

void cas__removed_note(cas_t *c, const char *hex)
{
    cas_full_t *f = cas__full(c);
    if (f->n_removed == f->cap_removed) {
        size_t cap = f->cap_removed ? f->cap_removed * 2 : 8;
        char(*v)[65] = realloc(f->removed, cap * sizeof *v);
        if (!v) {
            OX_WARN("cas: out of memory; removal of sha256:%s not reported", hex);
            return;
        }
        f->removed = v;
        f->cap_removed = cap;
    }
    memcpy(f->removed[f->n_removed++], hex, 65);
}

void cas__unlock(cas_t *c)
{
    cas_full_t *f = cas__full(c);
    char(*v)[65] = f->removed;
    size_t n = f->n_removed;
    cas_remove_fn fn = f->remove_fn;
    void *ud = f->remove_ud;
    f->removed = NULL;
    f->n_removed = f->cap_removed = 0;
    pthread_mutex_unlock(&c->mu);
    /* An unlink lost in a crash only brings an unused blob back, which the
     * next gc removes: one directory fsync for all, outside the lock. */
    if (n)
        ox_fs_fsync_dir(c->blobs);
    for (size_t i = 0; fn && i < n; i++) {
        char dig[72];
        snprintf(dig, sizeof dig, "sha256:%s", v[i]);
        fn(ud, dig);
    }
    free(v);
}

int cas__blob_remove(cas_t *c, const char *hex)
{
    char path[CAS_PATH_MAX], name[80];
    snprintf(name, sizeof name, "sha256-%s", hex);
    if (ox_fs_join(path, sizeof path, c->blobs, name))
        return OX_ETOOBIG;
    int gone = unlink(path) == 0;
    if (!gone && errno != ENOENT)
        return OX_EIO;
    int rc = cas__index_blob_del(c, hex);
    if (gone)
        cas__removed_note(c, hex);
    return rc;
}

int cas_blob_verify(cas_t *c, const char *digest)
{
    char path[CAS_PATH_MAX], hex[65], got[65];
    if (cas__digest_hex(digest, hex))
        return OX_EINVAL;
    cas_blob_path(c, digest, path, sizeof path);
    uint8_t raw[32];
    uint64_t size;
    int rc = ox_sha256_file(path, raw, &size);
    if (rc)
        return rc;
    ox_hex_encode(raw, 32, got);
    if (strcmp(got, hex) == 0)
        return 0;
    OX_WARN("cas: blob sha256:%s is corrupt (hashes to %s); removed", hex, got);
    pthread_mutex_lock(&c->mu);
    cas__blob_remove(c, hex);
    cas__unlock(c);
    return OX_EDIGEST;
}

int cas_blob_list(cas_t *c, char (**digests)[72], size_t *n)
{
    char(*hexes)[65] = NULL;
    uint64_t *sizes = NULL;
    size_t cnt = 0;
    /* A readdir and a stat per blob: no lock, the index is not involved and
     * a blob is renamed in or unlinked atomically. */
    int rc = cas__blobs_list_disk(c, &hexes, &sizes, &cnt);
    if (rc)
        return rc;
    free(sizes);
    char(*v)[72] = malloc((cnt ? cnt : 1) * sizeof *v);
    if (!v) {
        free(hexes);
        return OX_ENOMEM;
    }
    for (size_t i = 0; i < cnt; i++)
        snprintf(v[i], 72, "sha256:%s", hexes[i]);
    free(hexes);
    *digests = v;
    *n = cnt;
    return 0;
}

static int meta_key(const char *kind, const char *digest, char *key, size_t cap, size_t *klen)
{
    char hex[65];
    if (!kind || !kind[0] || strlen(kind) > 64 || strchr(kind, '/') || cas__digest_hex(digest, hex))
        return OX_EINVAL;
    int n = snprintf(key, cap, "%s/%s", hex, kind);
    *klen = (size_t)n;
    return 0;
}

int cas_meta_put(cas_t *c, const char *kind, const char *digest, const void *val, size_t len)
{
    char key[160];
    size_t kl;
    if (meta_key(kind, digest, key, sizeof key, &kl) || (!val && len))
        return OX_EINVAL;
    pthread_mutex_lock(&c->mu);
    int rc = cas__index_meta_put(c, key, kl, val ? val : "", len);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int cas_meta_get(cas_t *c, const char *kind, const char *digest, void **val, size_t *len)
{
    char key[160];
    size_t kl;
    if (meta_key(kind, digest, key, sizeof key, &kl) || !val || !len)
        return OX_EINVAL;
    pthread_mutex_lock(&c->mu);
    int rc = cas__index_meta_get(c, key, kl, val, len);
    pthread_mutex_unlock(&c->mu);
    return rc;
}
