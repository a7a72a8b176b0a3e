/* Garbage collection: blobs no manifest names, and leftovers in the staging
 * dir of work that finished (the blob is committed) or of a process that is
 * gone. What could still be resumed (a partial download, swarm staging of a
 * blob not yet committed) is never touched. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas/gc_int.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"

static int cmp_hex(const void *a, const void *b) { return strcmp(a, b); }

/* Every hex that recs reference, sorted (malloc'd, caller frees). */
static int refs_sorted(const cas_mrec_t *recs, size_t n, char (**out)[65], size_t *cnt)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += recs[i].n_refs;
    char(*v)[65] = malloc((total ? total : 1) * sizeof *v);
    if (!v)
        return OX_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < recs[i].n_refs; j++)
            memcpy(v[k++], recs[i].refs[j], 65);
    if (k)
        qsort(v, k, sizeof *v, cmp_hex);
    *out = v;
    *cnt = k;
    return 0;
}

int cas__blobs_remove_unused(cas_t *c, char (*cand)[65], size_t n_cand, const cas_mrec_t *recs,
                             size_t n_recs)
{
    /* A manifest that cannot be read or parsed may still name any blob:
     * while one exists, nothing is removed (the disk is the truth). */
    for (size_t i = 0; i < n_recs; i++) {
        if (recs[i].bad) {
            OX_WARN("cas: not removing unused blobs while manifest %s is unreadable",
                    recs[i].rel);
            return 0;
        }
    }
    char(*refs)[65] = NULL;
    size_t n_refs = 0;
    int rc = refs_sorted(recs, n_recs, &refs, &n_refs);
    if (rc)
        return rc;
    int removed = 0;
    for (size_t i = 0; i < n_cand; i++) {
        if (n_refs && bsearch(cand[i], refs, n_refs, sizeof *refs, cmp_hex))
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
    free(refs);
    return removed;
}

/* 1 when name starts with "sha256-<64 lowercase hex>" (as the pull and the
 * swarm name their files) and that blob is committed; hex gets the digits. */
static int blob_done(cas_t *c, const char *name, size_t hexoff)
{
    char hex[65], dig[72];
    if (strlen(name) < hexoff + 64)
        return 0;
    memcpy(hex, name + hexoff, 64);
    hex[64] = 0;
    if (!cas__is_hex64(hex))
        return 0;
    for (int i = 0; i < 64; i++)
        if (hex[i] >= 'A' && hex[i] <= 'F')
            return 0;
    snprintf(dig, sizeof dig, "sha256:%s", hex);
    return cas_blob_stat(c, dig, NULL) == 0;
}

/* "...tmp-<pid>" written by ox_fs_write_atomic of a process that is gone
 * (a crash between write and rename). Ours may be in use. */
static int stale_atomic_tmp(const char *name)
{
    const char *t = strstr(name, ".tmp-");
    if (!t)
        return 0;
    const char *end = NULL;
    for (const char *p = t; (p = strstr(p, ".tmp-")); p++)
        end = p;
    char *e;
    errno = 0;
    long pid = strtol(end + 5, &e, 10);
    return !errno && e != end + 5 && !*e && pid > 0 && pid != (long)getpid();
}

static int on_rm(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    if (remove(p) != 0 && errno != ENOENT)
        OX_WARN("cas: gc cannot remove %s: %s", p, strerror(errno));
    return 0;
}

static void unlink_in(const char *dir, const char *name, int recursive)
{
    char path[CAS_PATH_MAX];
    if (ox_fs_join(path, sizeof path, dir, name))
        return;
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        if (recursive)
            nftw(path, on_rm, 8, FTW_DEPTH | FTW_PHYS);
        return;
    }
    if (unlink(path) != 0 && errno != ENOENT)
        OX_WARN("cas: gc cannot remove %s: %s", path, strerror(errno));
}

/* tmp/swarm: <hex>/ (the engine's staging) and <hex>.resume[.tmp] (its
 * resume data) go once blob <hex> is committed; otherwise the resume data
 * still refers to the staging and a restarted fetch picks it up. */
static void clean_swarm(cas_t *c)
{
    char dir[CAS_PATH_MAX];
    if (ox_fs_join(dir, sizeof dir, c->tmp, "swarm"))
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && blob_done(c, de->d_name, 0))
            unlink_in(dir, de->d_name, 1);
    closedir(d);
}

void cas__tmp_clean_finished(cas_t *c)
{
    DIR *d = opendir(c->tmp);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        /* sha256-<hex>-partial, its sidecar .parts and the sidecar's temp */
        int partial = strncmp(n, "sha256-", 7) == 0 && strlen(n) >= 79 &&
                      strncmp(n + 71, "-partial", 8) == 0;
        if ((partial && blob_done(c, n, 7)) || stale_atomic_tmp(n))
            unlink_in(c->tmp, n, 0);
    }
    closedir(d);
    clean_swarm(c);
}

/* Unreferenced blobs include ones uploaded for a create that has not written
 * its manifest yet; callers run gc at start-up, before requests, as Ollama
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
    cas__unlock(c);
    cas__mrecs_free(recs, nr);
    free(hexes);
    free(sizes);
    if (rc >= 0)
        cas__tmp_clean_finished(c);
    return rc;
}
