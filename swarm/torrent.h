/* torrent: the fixed recipe that turns a blob into its v2 torrent, and the
 * record the swarm keeps per blob in the store's index (meta kind "torrent").
 * Internal to swarm/. Pure functions except swarm__torrent_of_file (reads the
 * blob) and swarm__torrent_store (writes the index); all thread-safe. */
#ifndef OX_SWARM_TORRENT_H
#define OX_SWARM_TORRENT_H

#include <stddef.h>
#include <stdint.h>

#include "cas/cas.h"
#include "common/buf.h"
#include "swarm/merkle.h"

#define SWARM_META_KIND "torrent"
#define SWARM_META_TREE "merkle" /* the 16 KiB leaves, 32 bytes each */
#define SWARM_REC_MAGIC "oxt1"
#define SWARM_REC_HDR 36 /* magic + 32-byte v2 info-hash */

/* Builds the .torrent bytes (into torrent, appended) and the v2 info-hash for
 * a blob: single file "sha256-<hex>", v2 only, fields limited to file tree,
 * meta version, name, piece length (+ piece layers outside info). digest is
 * canonical "sha256:<hex>". layer may be NULL when n_layer is 0. */
int swarm__torrent_build(const char *digest, uint64_t size, uint64_t piece_len,
                         const uint8_t root[32], const uint8_t *layer, size_t n_layer,
                         ox_buf_t *torrent, uint8_t ih[32]);

/* Finishes m (fed with the whole blob) with the recipe's piece length and
 * appends the record (magic, info-hash, torrent bytes) to rec. */
int swarm__torrent_from_merkle(const char *digest, merkle_t *m, ox_buf_t *rec);

/* Finishes m (fed with the whole blob, leaves kept) and stores both records
 * of the blob: its leaves, then its torrent. rec (may be NULL) receives a
 * copy of the torrent record. With leaves_out, the leaves are not stored but
 * handed over (*n_out of 32 bytes, malloc'd, the caller's) for the caller to
 * store as SWARM_META_TREE; until it does, the blob is seeded after a check.
 * Thread-safe; writes the index. */
int swarm__records_store(cas_t *c, const char *digest, merkle_t *m, ox_buf_t *rec,
                         uint8_t **leaves_out, size_t *n_out);

/* Splits a record. *torrent points into rec. OX_EFORMAT if malformed. */
int swarm__rec_parse(const void *rec, size_t len, uint8_t ih[32], const void **torrent,
                     size_t *tlen);

/* Reads the blob once, builds its record and stores it with cas_meta_put.
 * Blocking: run in the work pool. rec (may be NULL) receives a copy. */
int swarm__torrent_of_file(cas_t *c, const char *digest, ox_buf_t *rec);

#endif
