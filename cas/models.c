/* Manifests in the store: read, write, delete, copy, list.
 *
 * Every operation starts from a walk of manifests/ (cas__manifests_scan),
 * which refreshes the index entries whose files changed, so a manifest a
 * user added or removed by hand is seen at once. The walk is a readdir and a
 * stat per manifest; only changed manifests are read and parsed.
 *
 * Lock rules (see store.c): the manifest bytes are written and fsynced to a
 * dot-named temp file beside the target before the store lock is taken, and
 * a manifest is read after it is released; under the lock only the walk,
 * the rename or unlink and the index update happen. Directory fsyncs follow
 * the unlock. */
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

#define CAS_MANIFEST_MAX (4u << 20)

/* A name built by hand (not by cas_name_parse) must still never escape
 * manifests/. */
static int name_ok(const cas_name_t *n)
{
    return n && cas__valid_part(n->host, strnlen(n->host, sizeof n->host), CAS_PART_HOST) &&
           cas__valid_part(n->ns, strnlen(n->ns, sizeof n->ns), CAS_PART_NS) &&
           cas__valid_part(n->model, strnlen(n->model, sizeof n->model), CAS_PART_MODEL) &&
           cas__valid_part(n->tag, strnlen(n->tag, sizeof n->tag), CAS_PART_TAG);
}

/* Index of the manifest named n (case-insensitive; an exact-case match wins
 * when several differ only in case), or -1. */
static long find_rec(const cas_mrec_t *v, size_t n, const cas_name_t *name)
{
    long hit = -1;
    for (size_t i = 0; i < n; i++) {
        if (!cas_name_equal(&v[i].name, name))
            continue;
        if (strcmp(v[i].name.host, name->host) == 0 && strcmp(v[i].name.ns, name->ns) == 0 &&
            strcmp(v[i].name.model, name->model) == 0 && strcmp(v[i].name.tag, name->tag) == 0)
            return (long)i;
        if (hit < 0)
            hit = (long)i;
    }
    return hit;
}

int cas_manifest_read(cas_t *c, const cas_name_t *name, char **json, size_t *len,
                      char digest_hex[65], int64_t *mtime_ns, cas_name_t *found_name)
{
    if (!c || !name_ok(name) || !json)
        return OX_EINVAL;
    cas_mrec_t *recs = NULL;
    size_t nr = 0;
    char path[CAS_PATH_MAX];
    cas_name_t stored;
    pthread_mutex_lock(&c->mu);
    int rc = cas__manifests_scan(c, &recs, &nr);
    long i = rc ? -1 : find_rec(recs, nr, name);
    if (!rc && i < 0)
        rc = OX_ENOTFOUND;
    if (!rc && ox_fs_join(path, sizeof path, c->manifests, recs[i].rel))
        rc = OX_ETOOBIG;
    if (!rc)
        stored = recs[i].name;
    pthread_mutex_unlock(&c->mu);
    cas__mrecs_free(recs, nr);
    /* The read needs no lock: a manifest is replaced by rename, so this sees
     * the old bytes or the new ones (or ENOTFOUND after a delete). */
    size_t l = 0;
    char *data = NULL;
    if (!rc)
        rc = ox_fs_read_all(path, CAS_MANIFEST_MAX, &data, &l);
    if (rc)
        return rc;
    /* Hash the bytes read, not the cached record: they may differ if the
     * file changed between the walk and the read. */
    if (digest_hex)
        ox_sha256_hex(data, l, digest_hex);
    if (mtime_ns)
        ox_fs_stat(path, NULL, mtime_ns);
    if (found_name)
        *found_name = stored;
    *json = data;
    if (len)
        *len = l;
    return 0;
}

/* Removes manifest rec (file, empty dirs, index record). mu held; the
 * caller fsyncs the parent dir of path (its out) after the unlock. */
static int unlink_rec(cas_t *c, const cas_mrec_t *r, char path[CAS_PATH_MAX])
{
    if (ox_fs_join(path, CAS_PATH_MAX, c->manifests, r->rel))
        return OX_ETOOBIG;
    if (unlink(path) != 0 && errno != ENOENT)
        return OX_EIO;
    ox_fs_prune_empty_dirs(path, c->manifests);
    return cas__index_manifest_del(c, r->rel);
}

/* fsync of the dir that held path, or of the nearest one left when empty
 * dirs were pruned: the unlink or rename is then durable. */
static void fsync_parent_left(const char *path, const char *stop)
{
    char dir[CAS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    size_t slen = strlen(stop);
    for (char *slash; (slash = strrchr(dir, '/')) && (size_t)(slash - dir) >= slen;) {
        *slash = 0;
        if (ox_fs_fsync_dir(dir) == 0)
            return;
    }
}

/* Blobs that recs[skip] references and no other record does. mu held. */
static int drop_unused(cas_t *c, cas_mrec_t *recs, size_t nr, size_t skip)
{
    cas_mrec_t gone = recs[skip];
    recs[skip] = recs[nr - 1];
    recs[nr - 1] = gone;
    int n = cas__blobs_remove_unused(c, gone.refs, gone.n_refs, recs, nr - 1);
    recs[nr - 1] = recs[skip];
    recs[skip] = gone;
    return n;
}

/* Writes json to a new dot-named temp file in dir (which no walk mistakes
 * for a manifest) and fsyncs it; no lock held. tmp gets its path. */
static int stage_manifest(const char *dir, const char *tag, const char *json, size_t len,
                          char tmp[CAS_PATH_MAX])
{
    char name[128];
    snprintf(name, sizeof name, ".%s.tmp-XXXXXX", tag);
    if (ox_fs_join(tmp, CAS_PATH_MAX, dir, name))
        return OX_ETOOBIG;
    int fd = -1;
    /* A delete of the last tag of a model (or a failed write) may prune
     * empty dirs during the mkdir or between it and the create; once the
     * temp file is in dir, dir stays. */
    for (int tries = 0; fd < 0 && tries < 5; tries++) {
        if (ox_fs_mkdir_p(dir, 0755))
            continue;
        ox_fs_join(tmp, CAS_PATH_MAX, dir, name);
        fd = mkstemp(tmp);
        if (fd < 0 && errno != ENOENT)
            return OX_EIO;
    }
    if (fd < 0)
        return OX_EIO;
    fchmod(fd, 0644);
    const char *p = json;
    size_t left = len;
    int rc = 0;
    while (left && !rc) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = OX_EIO;
            break;
        }
        p += w;
        left -= (size_t)w;
    }
    if (!rc && fsync(fd) != 0)
        rc = OX_EIO;
    if (close(fd) != 0 && !rc)
        rc = OX_EIO;
    if (rc)
        unlink(tmp);
    return rc;
}

/* Under mu: checks the blobs, renames the staged file into place, indexes
 * it and drops what the replaced manifest alone used. *renamed tells the
 * caller whether tmp is gone; old_path gets the path of a replaced manifest
 * of another case ("" if none) for the fsync after the unlock. */
static int commit_locked(cas_t *c, const cas_name_t *name, cas_mrec_t *nw, const char *dir,
                         const char *tmp, int *renamed, char old_path[CAS_PATH_MAX],
                         int *removed_unused, char *err, size_t errlen)
{
    cas_mrec_t *recs = NULL;
    size_t nr = 0;
    int rc = cas__manifests_scan(c, &recs, &nr);
    if (rc)
        return rc;
    for (size_t i = 0; !rc && i < nw->n_refs; i++) {
        char dig[72];
        snprintf(dig, sizeof dig, "sha256:%s", nw->refs[i]);
        if (cas_blob_stat(c, dig, NULL) != 0) {
            if (err && errlen)
                snprintf(err, errlen, "%s", dig);
            rc = OX_ENOTFOUND;
        }
    }
    char path[CAS_PATH_MAX];
    snprintf(nw->rel, sizeof nw->rel, "%s/%s/%s/%s", name->host, name->ns, name->model,
             name->tag);
    if (!rc && ox_fs_join(path, sizeof path, dir, name->tag))
        rc = OX_ETOOBIG;
    if (!rc && rename(tmp, path) != 0)
        rc = OX_EIO;
    if (!rc) {
        *renamed = 1;
        nw->name = *name;
        ox_fs_stat(path, &nw->file_size, &nw->mtime_ns);
        rc = cas__index_manifest_put(c, nw);
    }
    long old = rc ? -1 : find_rec(recs, nr, name);
    int removed = 0;
    if (old >= 0 && strcmp(recs[old].rel, nw->rel) != 0)
        rc = unlink_rec(c, &recs[old], old_path); /* the same name in another case */
    if (!rc && old >= 0) {
        /* What stays: every other manifest plus the new one (shallow). */
        cas_mrec_t *rest = malloc(nr * sizeof *rest);
        if (!rest) {
            rc = OX_ENOMEM;
        } else {
            memcpy(rest, recs, nr * sizeof *rest);
            rest[old] = *nw;
            removed = cas__blobs_remove_unused(c, recs[old].refs, recs[old].n_refs, rest, nr);
            free(rest);
        }
    }
    if (removed_unused)
        *removed_unused = removed > 0;
    cas__mrecs_free(recs, nr);
    return rc;
}

int cas_manifest_write(cas_t *c, const cas_name_t *name, const char *json, size_t len,
                       int *removed_unused, char *err, size_t errlen)
{
    if (removed_unused)
        *removed_unused = 0;
    if (!c || !name_ok(name) || !json)
        return OX_EINVAL;
    cas_manifest_t m;
    int rc = cas_manifest_parse(json, len, &m, err, errlen);
    if (rc)
        return rc;
    cas_manifest_free(&m);
    cas_mrec_t nw;
    memset(&nw, 0, sizeof nw);
    char rel[600], dir[CAS_PATH_MAX], tmp[CAS_PATH_MAX], old_path[CAS_PATH_MAX] = "";
    snprintf(rel, sizeof rel, "%s/%s/%s", name->host, name->ns, name->model);
    rc = cas__mrec_fill(&nw, json, len, 0);
    if (!rc && ox_fs_join(dir, sizeof dir, c->manifests, rel))
        rc = OX_ETOOBIG;
    if (!rc)
        rc = stage_manifest(dir, name->tag, json, len, tmp);
    if (rc) {
        free(nw.refs);
        return rc;
    }
    int renamed = 0;
    pthread_mutex_lock(&c->mu);
    rc = commit_locked(c, name, &nw, dir, tmp, &renamed, old_path, removed_unused, err, errlen);
    cas__unlock(c);
    free(nw.refs);
    if (!renamed) {
        /* and the dirs the staging made, as nothing was written (a writer
         * staging beside it retries its create, see stage_manifest) */
        unlink(tmp);
        ox_fs_prune_empty_dirs(tmp, c->manifests);
    }
    /* (a concurrent delete may have removed it and pruned dir since) */
    if (renamed && ox_fs_fsync_dir(dir) != 0 && access(dir, F_OK) == 0 && !rc)
        rc = OX_EIO;
    if (old_path[0])
        fsync_parent_left(old_path, c->manifests);
    return rc;
}

int cas_manifest_delete(cas_t *c, const cas_name_t *name)
{
    if (!c || !name_ok(name))
        return OX_EINVAL;
    cas_mrec_t *recs = NULL;
    size_t nr = 0;
    pthread_mutex_lock(&c->mu);
    int rc = cas__manifests_scan(c, &recs, &nr);
    long i = rc ? -1 : find_rec(recs, nr, name);
    if (!rc && i < 0)
        rc = OX_ENOTFOUND;
    char path[CAS_PATH_MAX] = "";
    if (!rc)
        rc = unlink_rec(c, &recs[i], path);
    if (!rc)
        drop_unused(c, recs, nr, (size_t)i);
    cas__unlock(c);
    cas__mrecs_free(recs, nr);
    if (path[0])
        fsync_parent_left(path, c->manifests);
    return rc;
}

int cas_manifest_copy(cas_t *c, const cas_name_t *src, const cas_name_t *dst)
{
    if (!c || !name_ok(src) || !name_ok(dst))
        return OX_EINVAL;
    char *json = NULL;
    size_t len = 0;
    int rc = cas_manifest_read(c, src, &json, &len, NULL, NULL, NULL);
    if (rc)
        return rc;
    rc = cas_manifest_write(c, dst, json, len, NULL, NULL, 0);
    free(json);
    return rc;
}

static int cmp_newest(const void *a, const void *b)
{
    const cas_model_info_t *x = a, *y = b;
    if (x->mtime_ns != y->mtime_ns)
        return x->mtime_ns > y->mtime_ns ? -1 : 1;
    char fx[600], fy[600];
    cas_name_full(&x->name, fx, sizeof fx);
    cas_name_full(&y->name, fy, sizeof fy);
    return strcmp(fx, fy);
}

int cas_model_list(cas_t *c, cas_model_info_t **out, size_t *n)
{
    if (!c || !out || !n)
        return OX_EINVAL;
    cas_mrec_t *recs = NULL;
    size_t nr = 0;
    pthread_mutex_lock(&c->mu);
    int rc = cas__manifests_scan(c, &recs, &nr);
    pthread_mutex_unlock(&c->mu);
    if (rc)
        return rc;
    cas_model_info_t *v = malloc((nr ? nr : 1) * sizeof *v);
    if (!v) {
        cas__mrecs_free(recs, nr);
        return OX_ENOMEM;
    }
    size_t cnt = 0;
    for (size_t i = 0; i < nr; i++) {
        if (recs[i].bad)
            continue;
        v[cnt].name = recs[i].name;
        memcpy(v[cnt].digest, recs[i].hex, 65);
        v[cnt].size = recs[i].total;
        v[cnt].mtime_ns = recs[i].mtime_ns;
        /* refs[0] is the config (cas__mrec_fill), so a listing needs no
         * second walk per model to find it. */
        v[cnt].config[0] = 0;
        if (recs[i].n_refs)
            snprintf(v[cnt].config, sizeof v[cnt].config, "sha256:%s", recs[i].refs[0]);
        cnt++;
    }
    cas__mrecs_free(recs, nr);
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_newest);
    *out = v;
    *n = cnt;
    return 0;
}
