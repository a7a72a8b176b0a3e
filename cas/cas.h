/* cas: the content-addressed model store.
 *
 * Owns $OLLAMAX_MODELS (Ollama's layout: manifests/<host>/<ns>/<model>/<tag>,
 * blobs/sha256-<hex>), the staging dir $OLLAMAX_HOME/tmp and the RocksDB index
 * $OLLAMAX_HOME/index. The files are the truth; the index is a cache that is
 * rebuilt from disk when missing or stale.
 *
 * Promises:
 * - a blob file is visible under blobs/ only once its sha256 matches its name
 *   (written in tmp/, hashed while written, fsync, rename, fsync dir);
 * - a manifest is written atomically and only when every blob it names exists;
 * - deleting a manifest removes every blob no remaining manifest uses.
 *
 * Threads: a cas_t may be used from several threads at once (the loop and the
 * uv work pool); a cas_ingest_t from one thread at a time. Calls that fsync or
 * hash whole files block: callers on the loop thread run them in uv_queue_work.
 *
 * Digests are accepted as "sha256:<hex>" or "sha256-<hex>" (64 hex digits, any
 * case) and always produced as "sha256:<64 lowercase hex>". */
#ifndef OX_CAS_H
#define OX_CAS_H

#include <stddef.h>
#include <stdint.h>

/* ---- model names (pure functions, no store needed) --------------------- */

#define CAS_DEFAULT_HOST "registry.ollama.ai"
#define CAS_DEFAULT_NS "library"
#define CAS_DEFAULT_TAG "latest"

typedef struct cas_name {
    char scheme[8]; /* "https" unless the name said "http://" */
    char host[351];
    char ns[81];
    char model[81];
    char tag[81];
} cas_name_t;

/* Parses "[scheme://][host/][ns/]model[:tag]" with the defaults above and the
 * character rules of the Ollama spec. Returns OX_EINVAL for anything invalid
 * (the API then answers 400 "invalid model name"). */
int cas_name_parse(const char *s, cas_name_t *out);
/* Shortest display form: drops the default host and namespace
 * (case-insensitively): "llama3.2:latest", "user/m:tag", "host/ns/m:tag". */
void cas_name_display(const cas_name_t *n, char *out, size_t cap);
/* Full form "host/ns/model:tag". */
void cas_name_full(const cas_name_t *n, char *out, size_t cap);
/* Case-insensitive equality of host, ns, model and tag. */
int cas_name_equal(const cas_name_t *a, const cas_name_t *b);

/* ---- digests ----------------------------------------------------------- */

/* Validates "sha256[:-]<64 hex>" and writes the canonical "sha256:<lower hex>"
 * (72 bytes with NUL). Returns OX_EINVAL when malformed. */
int cas_digest_parse(const char *in, char out[72]);

/* ---- manifests (pure) --------------------------------------------------- */

typedef struct cas_layer {
    char media_type[128];
    char digest[72]; /* canonical */
    uint64_t size;
    char from[128];  /* optional "from" field of Ollama layers, "" if none */
} cas_layer_t;

typedef struct cas_manifest {
    int schema_version;
    char media_type[128];
    cas_layer_t config;
    cas_layer_t *layers; /* owned; cas_manifest_free releases */
    size_t n_layers;
} cas_manifest_t;

/* Parses manifest JSON. Fails with OX_EFORMAT and a message in err for
 * anything malformed (bad JSON, missing fields, bad digests). On success the
 * caller owns *out and calls cas_manifest_free. */
int cas_manifest_parse(const char *json, size_t len, cas_manifest_t *out, char *err,
                       size_t errlen);
void cas_manifest_free(cas_manifest_t *m);
/* Serialises m in the byte layout Ollama writes (schemaVersion, mediaType,
 * config, layers; compact). Returns a malloc'd NUL-terminated string the caller
 * frees, or NULL on OOM. */
char *cas_manifest_serialize(const cas_manifest_t *m, size_t *len);

/* ---- the store ---------------------------------------------------------- */

typedef struct cas cas_t;

/* Opens (creating as needed) the store. models_dir holds manifests/ and
 * blobs/; state_dir holds tmp/ and index/. When state_dir/tmp is on another
 * file system than blobs/, the staging dir is models_dir/.ollamax-tmp instead
 * (so a commit is a rename, never a copy); cas_tmp_dir says which. Stale
 * files in tmp/ older than a restart are kept for resume (see partials),
 * except ingest temp files (an upload restarts). Rebuilds the index when it is
 * missing or disagrees with the files. *out is owned by the caller
 * (cas_close). On failure a message is written to err. */
int cas_open(const char *models_dir, const char *state_dir, cas_t **out, char *err,
             size_t errlen);
void cas_close(cas_t *c);

const char *cas_models_dir(const cas_t *c);
const char *cas_blobs_dir(const cas_t *c);
const char *cas_tmp_dir(const cas_t *c);

/* Path of the blob file for digest (whether or not it exists). */
int cas_blob_path(const cas_t *c, const char *digest, char *out, size_t cap);
/* 0 and *size when the blob is present, OX_ENOTFOUND otherwise. */
int cas_blob_stat(cas_t *c, const char *digest, uint64_t *size);
/* Re-hashes the blob file; OX_EDIGEST if it no longer matches (the file is
 * then removed from blobs/ and the index so it can be fetched again). */
int cas_blob_verify(cas_t *c, const char *digest);

/* Taps see every blob entering the store as the SHA-256 of each 16 KiB leaf
 * (BitTorrent v2 leaves), computed in the same pass as the blob's sha256
 * (ox_blobhash: about the cost of one hash; the swarm builds its merkle tree
 * from them). open returns per-blob state (NULL is allowed and means "not
 * interested"); leaf gets each leaf digest in order with the bytes it covers
 * (16 KiB, the last one may be shorter); close is called once with ok=1 and
 * the canonical digest when the blob was committed, or ok=0 when it was not.
 * open, leaf and close run on whatever thread begins, writes and commits (or
 * aborts) the blob, so they may run on different threads for one blob but
 * never overlap for it (close comes after the last leaf returned); calls for
 * different blobs may run at the same time. When a blob is not committed
 * (abort, write error) the tap may have seen only a prefix of its leaves
 * before close(ok=0). A NULL state from open is never fed. One tap per store;
 * the pointer must outlive the store. */
typedef struct cas_tap {
    void *(*open)(void *ud, uint64_t size_hint /* 0 = unknown */);
    void (*leaf)(void *st, const uint8_t leaf[32], uint32_t len);
    void (*close)(void *st, int ok, const char *digest, uint64_t size);
    void *ud;
} cas_tap_t;
void cas_set_tap(cas_t *c, const cas_tap_t *tap);

/* Streaming ingest: bytes are hashed while written to tmp/. expect may be
 * NULL (digest learnt at commit) or a digest that must match. size_hint may
 * be 0. On success *out is owned by the caller until commit or abort. */
typedef struct cas_ingest cas_ingest_t;
int cas_ingest_begin(cas_t *c, const char *expect, uint64_t size_hint, cas_ingest_t **out);
int cas_ingest_write(cas_ingest_t *in, const void *p, size_t n);
/* Verifies, fsyncs, renames into blobs/, fsyncs the dir, indexes. Always
 * consumes in (also on failure). digest_out (may be NULL) gets the canonical
 * digest; *existed (may be NULL) is set when the blob was already present.
 * OX_EDIGEST when expect was given and does not match (nothing is kept; err
 * gets 'digest mismatch, expected "<expect>", got "<actual>"'). */
int cas_ingest_commit(cas_ingest_t *in, char digest_out[72], int *existed, char *err,
                      size_t errlen);
void cas_ingest_abort(cas_ingest_t *in);
/* For an event loop thread, which must never block: large ingests (size
 * unknown or >= 4 MiB: cas_ingest_nonblocking says 1) take bytes with
 * cas_ingest_write_some, which copies what fits into the store's staging
 * buffers now and sets *taken (0..n). When *taken < n, wake(ud) (set with
 * cas_ingest_set_wake before the first write_some) runs once, on a store
 * thread, as soon as more fits: it must only signal the loop
 * (uv_async_send). It may still run until commit or abort returned. Returns
 * the first write error so far. Other ingests use cas_ingest_write from a
 * worker thread. Do not mix the two on one ingest. */
int cas_ingest_nonblocking(const cas_ingest_t *in);
void cas_ingest_set_wake(cas_ingest_t *in, void (*wake)(void *ud), void *ud);
int cas_ingest_write_some(cas_ingest_t *in, const void *p, size_t n, size_t *taken);
/* Zero-copy for the same callers: the address (owned by the ingest) where
 * the next bytes go and how many fit (*room). Receive into it, then pass
 * that address to cas_ingest_write_some, which takes those bytes without a
 * copy. NULL when nothing fits now (the wake-up is armed, as for a short
 * write_some). Valid until the next call on in. */
void *cas_ingest_room(cas_ingest_t *in, size_t *room);

/* Adopts a complete file written elsewhere under tmp/ (a finished pull or
 * swarm fetch): hashes it in one read (feeding the tap), checks it against
 * expect, fsyncs, renames into blobs/ and indexes it. The source file is gone
 * afterwards when the blob was committed (or already present) or its bytes did
 * not match (OX_EDIGEST); after any other failure it is kept for another try. */
int cas_blob_adopt(cas_t *c, const char *path, const char *expect, char *err, size_t errlen);

/* Adoption in steps, for a file still being written in place by someone who
 * knows which prefix is final (a swarm fetch: its verified pieces), so that
 * hashing overlaps the download and the commit has little left to read.
 * begin opens path (err gets words) and *out is the caller's until commit or
 * abort. feed hashes the bytes [cas_adopt_hashed, upto), which must be final
 * (a no-op when upto is not past them). commit hashes the rest of the file
 * and then does what cas_blob_adopt does; it always consumes a. abort frees
 * a and leaves the file. Each call blocks (a worker thread); one call at a
 * time per a. */
typedef struct cas_adopt cas_adopt_t;
int cas_adopt_begin(cas_t *c, const char *path, cas_adopt_t **out, char *err, size_t errlen);
int cas_adopt_feed(cas_adopt_t *a, uint64_t upto);
uint64_t cas_adopt_hashed(const cas_adopt_t *a);
int cas_adopt_commit(cas_adopt_t *a, const char *expect, char *err, size_t errlen);
void cas_adopt_abort(cas_adopt_t *a);

/* Partial downloads live at tmp/sha256-<hex>-partial (never under blobs/);
 * this returns that path so pull and swarm resume from it. */
int cas_partial_path(const cas_t *c, const char *digest, char *out, size_t cap);

/* Reads the manifest for name (case-insensitive look-up). *json is malloc'd
 * (caller frees); digest_hex (may be NULL) gets the sha256 of the bytes;
 * mtime_ns (may be NULL) its mtime. *found_name (may be NULL) gets the name
 * with the case as stored. OX_ENOTFOUND if absent. */
int cas_manifest_read(cas_t *c, const cas_name_t *name, char **json, size_t *len,
                      char digest_hex[65], int64_t *mtime_ns, cas_name_t *found_name);
/* Writes the manifest bytes exactly as given, atomically, after checking that
 * they parse and that every blob they name is present (OX_ENOTFOUND and the
 * missing digest in err otherwise). Replaces an existing manifest of the same
 * name (case-insensitively). When removed_unused is non-NULL it is set to 1 if
 * replacing the old manifest left blobs unused (they are removed). */
int cas_manifest_write(cas_t *c, const cas_name_t *name, const char *json, size_t len,
                       int *removed_unused, char *err, size_t errlen);
/* Removes the manifest, prunes empty directories and deletes every blob no
 * remaining manifest uses. OX_ENOTFOUND if absent. */
int cas_manifest_delete(cas_t *c, const cas_name_t *name);
/* Copies the manifest bytes of src to dst. OX_ENOTFOUND if src is absent. */
int cas_manifest_copy(cas_t *c, const cas_name_t *src, const cas_name_t *dst);

typedef struct cas_model_info {
    cas_name_t name;     /* as stored */
    char digest[65];     /* sha256 hex of the manifest bytes */
    uint64_t size;       /* sum of layer sizes + config size */
    int64_t mtime_ns;    /* manifest mtime */
    char config[72];     /* canonical digest of the config blob */
} cas_model_info_t;

/* Lists every manifest, newest first, from one walk of manifests/ (the index
 * caches what each manifest names, so a listing reads no manifest file that
 * did not change). *out is a malloc'd array the caller frees with free(); *n
 * may be 0 (then *out may be NULL). */
int cas_model_list(cas_t *c, cas_model_info_t **out, size_t *n);

/* Deletes blobs no manifest references, as Ollama prunes at start-up: a blob
 * uploaded (POST /api/blobs) but not yet named by a manifest goes too. Also
 * removes tmp/ leftovers of finished work: partial downloads and their
 * sidecars (sha256-<hex>-partial*) and swarm staging (swarm/<hex>/,
 * swarm/<hex>.resume*) whose blob is committed, and temp files of an earlier
 * process (*.tmp-<pid>). Never touches a resumable partial or staging of a
 * blob that is absent, nor ingest-* files. Meant for start-up, before pulls
 * and the swarm run (a fetch of a blob that is committed meanwhile would lose
 * its staging). Blocks (walk, readdir, unlinks): not for the loop thread of a
 * running node. Returns the number of blobs removed or a negative code. */
int cas_gc(cas_t *c);

/* Called once for each blob the store removes (cas_manifest_delete, a
 * replaced manifest, cas_gc, a failed cas_blob_verify), after the file is
 * unlinked and its index records dropped, with "sha256:<hex>" (valid for the
 * call only). Runs on the thread that removed the blob (a work-pool thread,
 * or the loop at start-up gc), after the store lock is released: it may call
 * back into the store, but should be quick (hand the digest to the loop with
 * uv_async_send rather than touch loop state). The blob may have been added
 * again by the time it runs (check cas_blob_stat if that matters). fn NULL
 * removes the hook, but a call already under way may still finish: ud is
 * borrowed and must stay valid while any thread may still be removing blobs
 * (e.g. until the store is closed). */
typedef void (*cas_remove_fn)(void *ud, const char *digest /* "sha256:<hex>" */);
void cas_set_remove_hook(cas_t *c, cas_remove_fn fn, void *ud);

/* Small per-blob records other modules keep in the index (the swarm keeps its
 * torrent here). kind is a short ASCII tag ("torrent"); the value is copied.
 * get returns a malloc'd copy (caller frees) or OX_ENOTFOUND. Records of a
 * blob are deleted with the blob. */
int cas_meta_put(cas_t *c, const char *kind, const char *digest, const void *val, size_t len);
int cas_meta_get(cas_t *c, const char *kind, const char *digest, void **val, size_t *len);

/* Lists every blob present: malloc'd array of canonical digests (caller frees
 * the array). */
int cas_blob_list(cas_t *c, char (**digests)[72], size_t *n);

#endif
