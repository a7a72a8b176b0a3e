/* cas internals shared by the files of the module; never included outside
 * cas/. One mutex guards the index and every change to blobs/ and manifests/;
 * hashing and bulk writes happen outside it. */
#ifndef OX_CAS_INT_H
#define OX_CAS_INT_H

#include <pthread.h>
#include <rocksdb/c.h>
#include <stddef.h>
#include <stdint.h>

#include "cas/cas.h"
#include "common/sha256.h"

#define CAS_PATH_MAX 4096

enum { CAS_CF_DEFAULT, CAS_CF_BLOBS, CAS_CF_MANIFESTS, CAS_CF_META, CAS_CF_COUNT };

struct cas {
    char models[CAS_PATH_MAX];
    char blobs[CAS_PATH_MAX];
    char manifests[CAS_PATH_MAX];
    char state[CAS_PATH_MAX];
    char tmp[CAS_PATH_MAX];
    char index[CAS_PATH_MAX];
    pthread_mutex_t mu;
    const cas_tap_t *tap; /* not owned */
    uint64_t ingest_seq;  /* names of ingest temp files; under mu */
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[CAS_CF_COUNT];
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
};

/* One manifest on disk as the index knows it. rel is "host/ns/model/tag" with
 * the case as stored. refs holds the canonical hex of config + layers. */
typedef struct cas_mrec {
    char rel[CAS_PATH_MAX];
    cas_name_t name;
    int64_t mtime_ns;
    uint64_t file_size;
    uint64_t total;  /* layers + config */
    char hex[65];    /* sha256 of the manifest bytes */
    char (*refs)[65];
    size_t n_refs;
    int bad;         /* unreadable or unparsable: listed nowhere, refs nothing */
} cas_mrec_t;

void cas__mrecs_free(cas_mrec_t *v, size_t n);

/* ---- index.c (all with mu held) ---- */
int cas__index_open(cas_t *c, char *err, size_t errlen);
void cas__index_close(cas_t *c);
/* Makes the index agree with blobs/ and manifests/ (adds, drops, re-parses
 * changed manifests; drops meta of blobs that vanished). */
int cas__index_reconcile(cas_t *c);
/* Walks manifests/, refreshing index records whose file changed. *out is
 * malloc'd (cas__mrecs_free). */
int cas__manifests_scan(cas_t *c, cas_mrec_t **out, size_t *n);
int cas__index_blob_put(cas_t *c, const char *hex, uint64_t size);
/* Drops the blob record and every meta record of the blob. */
int cas__index_blob_del(cas_t *c, const char *hex);
int cas__index_manifest_put(cas_t *c, const cas_mrec_t *r);
int cas__index_manifest_del(cas_t *c, const char *rel);
int cas__index_meta_put(cas_t *c, const char *key, size_t klen, const void *v, size_t vlen);
int cas__index_meta_get(cas_t *c, const char *key, size_t klen, void **v, size_t *vlen);
/* readdir of blobs/: canonical blob files and their sizes, sorted; both
 * arrays malloc'd. */
int cas__blobs_list_disk(cas_t *c, char (**hexes)[65], uint64_t **sizes, size_t *n);
/* Fills r (mtime, sizes, hex, refs) from the manifest bytes. */
int cas__mrec_fill(cas_mrec_t *r, const char *json, size_t len, int64_t mtime_ns);

/* ---- stage.c: the ingest writer and hash threads ---- */
typedef struct cas_stage cas_stage_t;
/* Starts the consumers of a ring of staging buffers: a writer for fd when
 * fd >= 0 (opened with O_DIRECT when direct is set; the writer drops
 * O_DIRECT itself when the file system refuses it) and, when bh is non-NULL,
 * a hash thread that feeds every byte to ox_blobhash_update(bh) (which calls
 * its leaf callback on that thread). Both see every submitted byte once, in
 * order, in buffers of up to 8 MiB. bh is borrowed: the caller finalises it
 * only after cas__stage_finish returned 0, and frees it after
 * cas__stage_finish or cas__stage_free returned. */
int cas__stage_open(int fd, int direct, ox_blobhash_t *bh, cas_stage_t **out);
/* Copies p into staging buffers (blocks while all are busy). Returns the
 * first error seen so far (write error, OOM). */
int cas__stage_write(cas_stage_t *s, const void *p, size_t n);
/* Zero-copy filling: *p gets room (> 0) bytes of the filling buffer to
 * write into; cas__stage_put(s, n <= room) then accounts n of them (handing
 * the buffer over once full). Returns the first error seen so far. */
int cas__stage_next(cas_stage_t *s, char **p, size_t *room);
void cas__stage_put(cas_stage_t *s, size_t n);
/* Never blocks: copies what fits into free buffers, *taken of n. When that
 * is short of n, the wake-up is armed: wake(ud) runs once, on a consumer
 * thread, as soon as a buffer frees. Returns the first error seen so far. */
int cas__stage_write_some(cas_stage_t *s, const void *p, size_t n, size_t *taken);
/* Non-blocking: where the next bytes go (*room of them), so a caller can
 * receive them there and pass that very pointer to write_some, which then
 * copies nothing; NULL when no buffer is free (the wake-up is armed). */
void *cas__stage_room(cas_stage_t *s, size_t *room);
/* wake must not block nor call back into the stage (e.g. uv_async_send). */
void cas__stage_set_wake(cas_stage_t *s, void (*wake)(void *ud), void *ud);
/* Large buffers (mmap, 2 MiB-aligned, huge pages where allowed) for data
 * that streams through: cheap to first-touch. Freed with the same n. */
void *cas__bigbuf_alloc(size_t n);
void cas__bigbuf_free(void *p, size_t n);
/* Hands over what is left, waits for every consumer and joins them; returns
 * the first error. */
int cas__stage_finish(cas_stage_t *s);
/* If still running, stops the consumers (they skip unprocessed data) and
 * joins them; frees. NULL is fine. */
void cas__stage_free(cas_stage_t *s);

/* ---- name.c ---- */
int cas__valid_part(const char *s, size_t len, int kind);
enum { CAS_PART_HOST, CAS_PART_NS, CAS_PART_MODEL, CAS_PART_TAG };
int cas__is_hex64(const char *s);

/* ---- store.c ---- */
/* Removes the blob file and its index records (mu held). */
int cas__blob_remove(cas_t *c, const char *hex);
/* Removes the blobs in cand (hex) that no manifest in recs references
 * (mu held). Returns the count removed. */
int cas__blobs_remove_unused(cas_t *c, char (*cand)[65], size_t n_cand,
                             const cas_mrec_t *recs, size_t n_recs);
/* Moves the verified file src into blobs/sha256-<hex> (rename, or a copy
 * when tmp/ is on another file system), fsyncs blobs/ and indexes it. If the
 * blob is already there src is removed and *existed set. Takes mu. */
int cas__blob_commit_file(cas_t *c, const char *src, const char *hex, uint64_t size,
                          int *existed);
/* Resolves "sha256:<hex>" to the 64 lowercase hex digits. */
int cas__digest_hex(const char *digest, char hex[65]);

/* The tap's view of a blob being hashed: cas__tap_leaf (an ox_leaf_fn with
 * ud = the feed) hands it each leaf digest. ingest.c. */
typedef struct cas_tap_feed {
    const cas_tap_t *tap;
    void *st;
} cas_tap_feed_t;
void cas__tap_leaf(void *ud, const uint8_t leaf[32], uint32_t len);
/* err gets 'digest mismatch, expected "sha256:<expect>", got "sha256:<got>"'. */
void cas__digest_mismatch(char *err, size_t errlen, const char *expect, const char *got);

#endif
