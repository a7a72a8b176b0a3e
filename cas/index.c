/* The RocksDB index: a cache of what blobs/ and manifests/ hold, plus the
 * small per-blob meta records of other modules.
 *
 * Column families: "default" (format version), "blobs" (hex -> size, 8 bytes
 * LE), "manifests" ("host/ns/model/tag" as stored -> text record), "meta"
 * ("<hex>/<kind>" -> opaque bytes). Writes are batches that reach the WAL
 * but are not fsynced: they survive a kill -9, and a power loss that drops
 * the last few is repaired as below, so no fsync of the index ever runs
 * under the store lock. The files stay the truth: at open the index is
 * reconciled with a directory walk (a readdir of blobs/ with stat sizes and
 * a walk of manifests/ comparing mtime and size), so a kill -9 between a rename and the index write, or a file
 * added or removed by hand, is repaired without re-hashing any blob. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cas/cas_int.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/sha256.h"

#define CAS_MANIFEST_MAX (4u << 20)

static const char *const cf_names[CAS_CF_COUNT] = {"default", "blobs", "manifests", "meta"};

static int db_err(char *e, const char *what)
{
    if (e) {
        OX_ERROR("cas: index %s: %s", what, e);
        rocksdb_free(e);
        return OX_EDB;
    }
    return 0;
}

int cas__index_open(cas_t *c, char *err, size_t errlen)
{
    rocksdb_options_t *opt = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(opt, 1);
    rocksdb_options_set_create_missing_column_families(opt, 1);
    rocksdb_options_set_keep_log_file_num(opt, 2);
    rocksdb_options_set_max_open_files(opt, 64);
    const rocksdb_options_t *cfo[CAS_CF_COUNT] = {opt, opt, opt, opt};
    char *e = NULL;
    c->db = rocksdb_open_column_families(opt, c->index, CAS_CF_COUNT, cf_names, cfo, c->cf, &e);
    rocksdb_options_destroy(opt);
    if (e || !c->db) {
        if (err && errlen)
            snprintf(err, errlen, "cannot open index %s: %s", c->index, e ? e : "?");
        rocksdb_free(e);
        c->db = NULL;
        return OX_EDB;
    }
    c->wo = rocksdb_writeoptions_create();
    /* Not synced: a cache of the files (see the lock rules in store.c). */
    rocksdb_writeoptions_set_sync(c->wo, 0);
    c->ro = rocksdb_readoptions_create();
    rocksdb_put_cf(c->db, c->wo, c->cf[CAS_CF_DEFAULT], "format", 6, "1", 1, &e);
    return db_err(e, "put format");
}

void cas__index_close(cas_t *c)
{
    if (!c->db)
        return;
    for (int i = 0; i < CAS_CF_COUNT; i++)
        if (c->cf[i])
            rocksdb_column_family_handle_destroy(c->cf[i]);
    rocksdb_close(c->db);
    rocksdb_writeoptions_destroy(c->wo);
    rocksdb_readoptions_destroy(c->ro);
    c->db = NULL;
}

/* Adds deletes of every meta record "<hex>/..." to wb. */
static void meta_del_prefix(cas_t *c, rocksdb_writebatch_t *wb, const char *hex)
{
    char prefix[66];
    snprintf(prefix, sizeof prefix, "%s/", hex);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(c->db, c->ro, c->cf[CAS_CF_META]);
    for (rocksdb_iter_seek(it, prefix, 65); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < 65 || memcmp(k, prefix, 65) != 0)
            break;
        rocksdb_writebatch_delete_cf(wb, c->cf[CAS_CF_META], k, kl);
    }
    rocksdb_iter_destroy(it);
}

static int batch_write(cas_t *c, rocksdb_writebatch_t *wb)
{
    char *e = NULL;
    rocksdb_write(c->db, c->wo, wb, &e);
    rocksdb_writebatch_destroy(wb);
    return db_err(e, "write");
}

int cas__index_blob_put(cas_t *c, const char *hex, uint64_t size)
{
    unsigned char v[8];
    for (int i = 0; i < 8; i++)
        v[i] = (unsigned char)(size >> (8 * i));
    char *e = NULL;
    rocksdb_put_cf(c->db, c->wo, c->cf[CAS_CF_BLOBS], hex, 64, (const char *)v, 8, &e);
    return db_err(e, "put blob");
}

int cas__index_blob_del(cas_t *c, const char *hex)
{
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_cf(wb, c->cf[CAS_CF_BLOBS], hex, 64);
    meta_del_prefix(c, wb, hex);
    return batch_write(c, wb);
}

int cas__index_meta_put(cas_t *c, const char *key, size_t klen, const void *v, size_t vlen)
{
    char *e = NULL;
    rocksdb_put_cf(c->db, c->wo, c->cf[CAS_CF_META], key, klen, v, vlen, &e);
    return db_err(e, "put meta");
}

int cas__index_meta_get(cas_t *c, const char *key, size_t klen, void **v, size_t *vlen)
{
    char *e = NULL;
    size_t n = 0;
    char *val = rocksdb_get_cf(c->db, c->ro, c->cf[CAS_CF_META], key, klen, &n, &e);
    if (e)
        return db_err(e, "get meta");
    if (!val)
        return OX_ENOTFOUND;
    void *copy = malloc(n ? n : 1);
    if (!copy) {
        rocksdb_free(val);
        return OX_ENOMEM;
    }
    memcpy(copy, val, n);
    rocksdb_free(val);
    *v = copy;
    *vlen = n;
    return 0;
}

/* ---- manifest records ---- */

void cas__mrecs_free(cas_mrec_t *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].refs);
    free(v);
}

int cas__mrec_fill(cas_mrec_t *r, const char *json, size_t len, int64_t mtime_ns)
{
    cas_manifest_t m;
    r->mtime_ns = mtime_ns;
    r->file_size = len;
    ox_sha256_hex(json, len, r->hex);
    free(r->refs);
    r->refs = NULL;
    r->n_refs = 0;
    r->total = 0;
    r->bad = 0;
    if (cas_manifest_parse(json, len, &m, NULL, 0) != 0) {
        r->bad = 1;
        return 0;
    }
    r->refs = malloc((m.n_layers + 1) * sizeof *r->refs);
    if (!r->refs) {
        cas_manifest_free(&m);
        return OX_ENOMEM;
    }
    memcpy(r->refs[0], m.config.digest + 7, 65);
    r->total = m.config.size;
    for (size_t i = 0; i < m.n_layers; i++) {
        memcpy(r->refs[i + 1], m.layers[i].digest + 7, 65);
        r->total += m.layers[i].size;
    }
    r->n_refs = m.n_layers + 1;
    cas_manifest_free(&m);
    return 0;
}

/* Encodes r as "<mtime> <size> <total> <hex> <bad> <n>\n" + n lines of hex;
 * malloc'd, caller frees. */
static char *mrec_encode(const cas_mrec_t *r, size_t *len)
{
    size_t cap = 128 + r->n_refs * 65;
    char *v = malloc(cap);
    if (!v)
        return NULL;
    int n = snprintf(v, cap, "%" PRId64 " %" PRIu64 " %" PRIu64 " %s %d %zu\n", r->mtime_ns,
                     r->file_size, r->total, r->hex, r->bad, r->n_refs);
    for (size_t i = 0; i < r->n_refs; i++) {
        memcpy(v + n, r->refs[i], 64);
        v[n + 64] = '\n';
        n += 65;
    }
    *len = (size_t)n;
    return v;
}

int cas__index_manifest_put(cas_t *c, const cas_mrec_t *r)
{
    size_t n;
    char *v = mrec_encode(r, &n);
    if (!v)
        return OX_ENOMEM;
    char *e = NULL;
    rocksdb_put_cf(c->db, c->wo, c->cf[CAS_CF_MANIFESTS], r->rel, strlen(r->rel), v, n, &e);
    free(v);
    return db_err(e, "put manifest");
}

int cas__index_manifest_del(cas_t *c, const char *rel)
{
    char *e = NULL;
    rocksdb_delete_cf(c->db, c->wo, c->cf[CAS_CF_MANIFESTS], rel, strlen(rel), &e);
    return db_err(e, "delete manifest");
}

/* Decodes a record; 0 when it is well-formed and matches mtime/size. */
static int mrec_decode(cas_mrec_t *r, const char *v, size_t vlen)
{
    char head[256];
    const char *nl = memchr(v, '\n', vlen);
    if (!nl || (size_t)(nl - v) >= sizeof head)
        return -1;
    memcpy(head, v, (size_t)(nl - v));
    head[nl - v] = 0;
    int64_t mt;
    uint64_t fs, total;
    int bad;
    size_t nrefs;
    char hex[65];
    if (sscanf(head, "%" SCNd64 " %" SCNu64 " %" SCNu64 " %64s %d %zu", &mt, &fs, &total, hex,
               &bad, &nrefs) != 6)
        return -1;
    if (mt != r->mtime_ns || fs != r->file_size || !cas__is_hex64(hex))
        return -1;
    size_t off = (size_t)(nl - v) + 1;
    if (nrefs > (vlen - off) / 65 || off + nrefs * 65 != vlen)
        return -1;
    r->refs = nrefs ? malloc(nrefs * sizeof *r->refs) : NULL;
    if (nrefs && !r->refs)
        return -1;
    for (size_t i = 0; i < nrefs; i++) {
        memcpy(r->refs[i], v + off + i * 65, 64);
        r->refs[i][64] = 0;
    }
    r->n_refs = nrefs;
    r->total = total;
    r->bad = bad;
    memcpy(r->hex, hex, 65);
    return 0;
}

typedef struct mvec {
    cas_mrec_t *v;
    size_t n, cap;
    rocksdb_writebatch_t *wb; /* records refreshed by the walk, written once */
    int dirty;
} mvec_t;

static int on_manifest_file(cas_t *c, mvec_t *mv, const char *parts[4])
{
    if (mv->n == mv->cap) {
        size_t cap = mv->cap ? mv->cap * 2 : 16;
        cas_mrec_t *nv = realloc(mv->v, cap * sizeof *nv);
        if (!nv)
            return OX_ENOMEM;
        mv->v = nv;
        mv->cap = cap;
    }
    cas_mrec_t *r = &mv->v[mv->n];
    memset(r, 0, sizeof *r);
    snprintf(r->rel, sizeof r->rel, "%s/%s/%s/%s", parts[0], parts[1], parts[2], parts[3]);
    strcpy(r->name.scheme, "https");
    snprintf(r->name.host, sizeof r->name.host, "%s", parts[0]);
    snprintf(r->name.ns, sizeof r->name.ns, "%s", parts[1]);
    snprintf(r->name.model, sizeof r->name.model, "%s", parts[2]);
    snprintf(r->name.tag, sizeof r->name.tag, "%s", parts[3]);
    char path[CAS_PATH_MAX];
    if (ox_fs_join(path, sizeof path, c->manifests, r->rel))
        return 0;
    if (ox_fs_stat(path, &r->file_size, &r->mtime_ns))
        return 0; /* vanished or not a regular file */
    mv->n++;
    char *e = NULL;
    size_t vl = 0;
    char *v = rocksdb_get_cf(c->db, c->ro, c->cf[CAS_CF_MANIFESTS], r->rel, strlen(r->rel), &vl,
                             &e);
    if (e)
        rocksdb_free(e);
    int fresh = v && mrec_decode(r, v, vl) == 0;
    rocksdb_free(v);
    if (fresh)
        return 0;
    char *json = NULL;
    size_t len = 0;
    int rc = ox_fs_read_all(path, CAS_MANIFEST_MAX, &json, &len);
    if (rc == OX_ENOMEM)
        return rc;
    if (rc) {
        r->bad = 1;
    } else {
        rc = cas__mrec_fill(r, json, len, r->mtime_ns);
        free(json);
        if (rc)
            return rc;
    }
    if (r->bad)
        OX_WARN("cas: manifest %s is unreadable or malformed; ignored", r->rel);
    /* A read error may be passing (EIO, EMFILE): look again next time
     * rather than remember the file as malformed. */
    if (rc)
        return 0;
    size_t vl2;
    char *enc = mrec_encode(r, &vl2);
    if (!enc)
        return OX_ENOMEM;
    rocksdb_writebatch_put_cf(mv->wb, c->cf[CAS_CF_MANIFESTS], r->rel, strlen(r->rel), enc, vl2);
    free(enc);
    mv->dirty = 1;
    return 0;
}

/* Walks exactly four levels below manifests/, skipping every entry that is
 * not a valid name part (dot-named temp files included). */
static int walk(cas_t *c, mvec_t *mv, const char *dir, int level, const char *parts[4])
{
    static const int kinds[] = {CAS_PART_HOST, CAS_PART_NS, CAS_PART_MODEL, CAS_PART_TAG};
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : OX_EIO;
    int rc = 0;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (!cas__valid_part(de->d_name, strlen(de->d_name), kinds[level]))
            continue;
        parts[level] = de->d_name;
        if (level == 3) {
            rc = on_manifest_file(c, mv, parts);
            continue;
        }
        char sub[CAS_PATH_MAX];
        if (ox_fs_join(sub, sizeof sub, dir, de->d_name))
            continue;
        rc = walk(c, mv, sub, level + 1, parts);
    }
    closedir(d);
    return rc;
}

static int cmp_rel(const void *a, const void *b)
{
    return strcmp(((const cas_mrec_t *)a)->rel, ((const cas_mrec_t *)b)->rel);
}

int cas__manifests_scan(cas_t *c, cas_mrec_t **out, size_t *n)
{
    mvec_t mv = {0};
    const char *parts[4];
    mv.wb = rocksdb_writebatch_create();
    int rc = walk(c, &mv, c->manifests, 0, parts);
    if (rc) {
        rocksdb_writebatch_destroy(mv.wb);
        cas__mrecs_free(mv.v, mv.n);
        return rc;
    }
    if (mv.n)
        qsort(mv.v, mv.n, sizeof *mv.v, cmp_rel);
    /* Drop records of manifests that are gone. */
    rocksdb_writebatch_t *wb = mv.wb;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(c->db, c->ro, c->cf[CAS_CF_MANIFESTS]);
    int dirty = mv.dirty;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        const char *k = rocksdb_iter_key(it, &kl);
        cas_mrec_t key;
        if (kl >= sizeof key.rel)
            goto drop;
        memcpy(key.rel, k, kl);
        key.rel[kl] = 0;
        if (mv.n && bsearch(&key, mv.v, mv.n, sizeof *mv.v, cmp_rel))
            continue;
    drop:
        rocksdb_writebatch_delete_cf(wb, c->cf[CAS_CF_MANIFESTS], k, kl);
        dirty = 1;
    }
    rocksdb_iter_destroy(it);
    rc = dirty ? batch_write(c, wb) : (rocksdb_writebatch_destroy(wb), 0);
    if (rc) {
        cas__mrecs_free(mv.v, mv.n);
        return rc;
    }
    *out = mv.v;
    *n = mv.n;
    return 0;
}

/* ---- blobs ---- */

typedef struct bent {
    char hex[65];
    uint64_t size;
    int seen;
} bent_t;

static int cmp_bent(const void *a, const void *b)
{
    return strcmp(((const bent_t *)a)->hex, ((const bent_t *)b)->hex);
}

static int blobs_disk(cas_t *c, bent_t **out, size_t *n)
{
    DIR *d = opendir(c->blobs);
    if (!d)
        return OX_EIO;
    bent_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "sha256-", 7) != 0 || strlen(de->d_name) != 71)
            continue;
        char hex[72];
        if (cas__digest_hex(de->d_name, hex) || strcmp(hex, de->d_name + 7) != 0)
            continue; /* only the canonical lowercase name is a blob */
        char path[CAS_PATH_MAX];
        uint64_t size;
        if (ox_fs_join(path, sizeof path, c->blobs, de->d_name) || ox_fs_stat(path, &size, NULL))
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            bent_t *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = OX_ENOMEM;
                break;
            }
            v = nv;
        }
        memcpy(v[cnt].hex, hex, 65);
        v[cnt].size = size;
        v[cnt].seen = 0;
        cnt++;
    }
    closedir(d);
    if (rc) {
        free(v);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_bent);
    *out = v;
    *n = cnt;
    return 0;
}

int cas__index_reconcile(cas_t *c)
{
    bent_t *disk = NULL;
    size_t nd = 0;
    int rc = blobs_disk(c, &disk, &nd);
    if (rc)
        return rc;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    size_t changes = 0;
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(c->db, c->ro, c->cf[CAS_CF_BLOBS]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const unsigned char *v = (const unsigned char *)rocksdb_iter_value(it, &vl);
        bent_t key = {{0}, 0, 0};
        bent_t *hit = NULL;
        if (kl == 64) {
            memcpy(key.hex, k, 64);
            hit = nd ? bsearch(&key, disk, nd, sizeof *disk, cmp_bent) : NULL;
        }
        if (!hit) {
            rocksdb_writebatch_delete_cf(wb, c->cf[CAS_CF_BLOBS], k, kl);
            if (kl == 64)
                meta_del_prefix(c, wb, key.hex);
            changes++;
            continue;
        }
        hit->seen = 1;
        uint64_t size = 0;
        for (int i = 0; vl == 8 && i < 8; i++)
            size |= (uint64_t)v[i] << (8 * i);
        if (vl != 8 || size != hit->size)
            hit->seen = 0; /* rewritten below */
    }
    rocksdb_iter_destroy(it);
    for (size_t i = 0; i < nd; i++) {
        if (disk[i].seen)
            continue;
        unsigned char v[8];
        for (int b = 0; b < 8; b++)
            v[b] = (unsigned char)(disk[i].size >> (8 * b));
        rocksdb_writebatch_put_cf(wb, c->cf[CAS_CF_BLOBS], disk[i].hex, 64, (const char *)v, 8);
        changes++;
    }
    free(disk);
    if (changes)
        OX_INFO("cas: index had %zu stale blob records; rebuilt from disk", changes);
    rc = changes ? batch_write(c, wb) : (rocksdb_writebatch_destroy(wb), 0);
    if (rc)
        return rc;
    cas_mrec_t *recs = NULL;
    size_t nr = 0;
    rc = cas__manifests_scan(c, &recs, &nr);
    cas__mrecs_free(recs, nr);
    return rc;
}

int cas__blobs_list_disk(cas_t *c, char (**hexes)[65], uint64_t **sizes, size_t *n)
{
    bent_t *disk = NULL;
    size_t nd = 0;
    int rc = blobs_disk(c, &disk, &nd);
    if (rc)
        return rc;
    *hexes = malloc((nd ? nd : 1) * sizeof **hexes);
    *sizes = malloc((nd ? nd : 1) * sizeof **sizes);
    if (!*hexes || !*sizes) {
        free(*hexes);
        free(*sizes);
        free(disk);
        return OX_ENOMEM;
    }
    for (size_t i = 0; i < nd; i++) {
        memcpy((*hexes)[i], disk[i].hex, 65);
        (*sizes)[i] = disk[i].size;
    }
    free(disk);
    *n = nd;
    return 0;
}
