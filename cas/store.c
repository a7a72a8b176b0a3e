/* The store object: open/close, paths, blob queries, verification, meta
 * records and garbage collection. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas/cas_int.h"
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
    cas_t *c = calloc(1, sizeof *c);
    if (!c)
        return OX_ENOMEM;
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
            free(c);
            return OX_EIO;
        }
    }
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
    free(c);
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

int cas__blob_remove(cas_t *c, const char *hex)
{
    char path[CAS_PATH_MAX], name[80];
    snprintf(name, sizeof name, "sha256-%s", hex);
    if (ox_fs_join(path, sizeof path, c->blobs, name))
        return OX_ETOOBIG;
    if (unlink(path) != 0 && errno != ENOENT)
        return OX_EIO;
    ox_fs_fsync_dir(c->blobs);
    return cas__index_blob_del(c, hex);
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
    pthread_mutex_unlock(&c->mu);
    return OX_EDIGEST;
}

int cas_blob_list(cas_t *c, char (**digests)[72], size_t *n)
{
    char(*hexes)[65] = NULL;
    uint64_t *sizes = NULL;
    size_t cnt = 0;
    pthread_mutex_lock(&c->mu);
    int rc = cas__blobs_list_disk(c, &hexes, &sizes, &cnt);
    pthread_mutex_unlock(&c->mu);
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

static int referenced(const char *hex, const cas_mrec_t *recs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < recs[i].n_refs; j++)
            if (strcmp(recs[i].refs[j], hex) == 0)
                return 1;
    return 0;
}

int cas__blobs_remove_unused(cas_t *c, char (*cand)[65], size_t n_cand, const cas_mrec_t *recs,
                             size_t n_recs)
{
    int removed = 0;
    /* A manifest that cannot be read or parsed may still name any blob:
     * while one exists, nothing is removed (the disk is the truth). */
    for (size_t i = 0; i < n_recs; i++) {
        if (recs[i].bad) {
            OX_WARN("cas: not removing unused blobs while manifest %s is unreadable",
                    recs[i].rel);
            return 0;
        }
    }
    for (size_t i = 0; i < n_cand; i++) {
        if (referenced(cand[i], recs, n_recs))
            continue;
        int dup = 0; /* a manifest may name a blob twice */
        for (size_t k = 0; k < i && !dup; k++)
            dup = strcmp(cand[k], cand[i]) == 0;
        if (dup)
            continue;
        char path[CAS_PATH_MAX], name[80];
        snprintf(name, sizeof name, "sha256-%s", cand[i]);
        if (ox_fs_join(path, sizeof path, c->blobs, name) || access(path, F_OK) != 0)
            continue;
        if (cas__blob_remove(c, cand[i]) == 0)
            removed++;
    }
    return removed;
}

/* Partials whose blob is already committed are finished work. */
static void tmp_clean_finished(cas_t *c)
{
    DIR *d = opendir(c->tmp);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "sha256-", 7) != 0 || strlen(de->d_name) < 79 ||
            strncmp(de->d_name + 71, "-partial", 8) != 0)
            continue;
        char dig[72], path[CAS_PATH_MAX];
        memcpy(dig, de->d_name, 71);
        dig[71] = 0;
        if (cas_blob_stat(c, dig, NULL) != 0)
            continue;
        if (!ox_fs_join(path, sizeof path, c->tmp, de->d_name))
            unlink(path);
    }
    closedir(d);
}

/* Unreferenced blobs include ones uploaded for a create that has not written
 * its manifest yet; callers run gc at start-up or on request, as Ollama
 * prunes at start-up. */
int cas_gc(cas_t *c)
{
    cas_mrec_t *recs = NULL;
    size_t nr = 0, nb = 0;
    char(*hexes)[65] = NULL;
    uint64_t *sizes = NULL;
    pthread_mutex_lock(&c->mu);
    int rc = cas__manifests_scan(c, &recs, &nr);
    if (!rc)
        rc = cas__blobs_list_disk(c, &hexes, &sizes, &nb);
    if (!rc)
        rc = cas__blobs_remove_unused(c, hexes, nb, recs, nr);
    if (rc >= 0)
        tmp_clean_finished(c);
    pthread_mutex_unlock(&c->mu);
    cas__mrecs_free(recs, nr);
    free(hexes);
    free(sizes);
    return rc;
}

int cas__write_atomic(cas_t *c, const char *dir, const char *name, const void *data, size_t len)
{
    char path[CAS_PATH_MAX], tmp[CAS_PATH_MAX], tname[300];
    snprintf(tname, sizeof tname, ".%s.tmp-%ld-%llu", name, (long)getpid(),
             (unsigned long long)++c->ingest_seq);
    if (ox_fs_join(path, sizeof path, dir, name) || ox_fs_join(tmp, sizeof tmp, dir, tname))
        return OX_ETOOBIG;
    if (ox_fs_mkdir_p(dir, 0755))
        return OX_EIO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return OX_EIO;
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return OX_EIO;
        }
        p += w;
        left -= (size_t)w;
    }
    int bad = fsync(fd) != 0;
    bad |= close(fd) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return OX_EIO;
    }
    return ox_fs_fsync_dir(dir);
}
