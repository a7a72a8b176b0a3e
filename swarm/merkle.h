/* merkle: the BitTorrent v2 (BEP 52) hash tree of one file, computed while
 * the bytes stream past once.
 *
 * Leaves are the SHA-256 of each 16 KiB block (the last one may be shorter);
 * leaves past the end of the file are 32 zero bytes; the tree is binary over
 * next_pow2(blocks) leaves. The piece layer is the level whose nodes cover one
 * piece; a file of one piece or less has none (BEP 52 omits it).
 *
 * Because the piece length may only be known at the end (size unknown while
 * streaming), the streamer keeps the first 16 leaves and one subtree root per
 * 256 KiB (the smallest piece length we use), so memory is 128 bytes per MiB
 * and every piece length >= 256 KiB can be derived at finish. Pure computation, no
 * I/O, no shared state: one merkle_t per thread at a time. */
#ifndef OX_SWARM_MERKLE_H
#define OX_SWARM_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MERKLE_BLOCK 16384u
/* kept subtree width: the smallest piece length, since the piece layer is
 * built from these roots */
#define MERKLE_CHUNK (1u << 18)
#define MERKLE_CHUNK_LEVEL 4u                            /* log2 of the leaves */
#define MERKLE_CHUNK_LEAVES (MERKLE_CHUNK / MERKLE_BLOCK) /* 16 */
/* 256 KiB: on shaped links fan-out (1 origin, 8 receivers) ran 1.8x the lower
 * bound with 256 KiB pieces against 2.4x with 4 MiB (spec/engines.md) */
#define MERKLE_PIECE_MIN MERKLE_CHUNK
#define MERKLE_PIECE_MAX (1u << 24)

typedef struct merkle {
    uint64_t size;                             /* bytes fed so far */
    uint8_t block[MERKLE_BLOCK];               /* partial block */
    size_t block_len;
    uint8_t first[MERKLE_CHUNK_LEAVES][32];    /* leaves of the first chunk */
    uint8_t cur[MERKLE_CHUNK_LEAVES][32];      /* leaves of the current chunk */
    size_t cur_n;
    uint8_t (*chunks)[32];                     /* owned: roots of full chunks */
    size_t n_chunks, cap_chunks;
    uint8_t (*leaves)[32];                     /* owned; only with keep_leaves */
    size_t n_leaves, cap_leaves;
    int keep_leaves;
    int oom;
} merkle_t;

/* Piece length of our fixed recipe: the smallest power of two >= size/512,
 * clamped to 256 KiB..16 MiB. A pure function of size (so is the info-hash). */
uint64_t merkle_piece_length(uint64_t size);

/* Root of 2^level zero leaves (level 0: 32 zero bytes). level <= 63. */
void merkle_pad(unsigned level, uint8_t out[32]);

/* Root over `width` nodes (a power of two >= n) of which the first n are
 * given and the rest are pad (the root of an all-zero subtree of the same
 * height as the given nodes). n may be 0 (root of pads). Does not allocate
 * beyond a scratch copy; returns OX_ENOMEM if that fails. */
int merkle_root(const uint8_t (*nodes)[32], size_t n, size_t width, const uint8_t pad[32],
                uint8_t out[32]);

void merkle_init(merkle_t *m);
/* Feeds bytes in any chunking; the result never depends on how the stream
 * was cut. Returns OX_ENOMEM (and stays failed) if memory runs out. */
int merkle_feed(merkle_t *m, const void *p, size_t n);
/* Feeds the digest of the next 16 KiB leaf (len bytes: MERKLE_BLOCK, or less
 * for the last one), computed elsewhere (ox_blobhash). Do not mix with
 * merkle_feed on one tree; OX_EINVAL for a leaf after a short one. */
int merkle_feed_leaf(merkle_t *m, const uint8_t leaf[32], uint32_t len);
/* Finishes the tree for piece_len (a power of two, >= MERKLE_PIECE_MIN).
 * Writes the pieces root; *layer gets a malloc'd array of piece hashes (the
 * caller frees) and *n_layer their count, or NULL/0 when size <= piece_len.
 * OX_EINVAL for an empty file (v2 gives it no root) or a bad piece length.
 * The merkle_t may not be fed after this; merkle_free it. */
int merkle_finish(merkle_t *m, uint64_t piece_len, uint8_t root[32], uint8_t **layer,
                  size_t *n_layer);
void merkle_free(merkle_t *m);

/* Also keep every leaf (32 bytes per 16 KiB) so a seeder can be given the
 * whole tree: call right after merkle_init. */
void merkle_keep_leaves(merkle_t *m);
/* After merkle_finish: hands over the leaves (malloc'd, caller frees). */
int merkle_take_leaves(merkle_t *m, uint8_t **leaves, size_t *n);

/* The whole tree over n leaves in the layout BitTorrent engines load: level
 * order, root first, children of node i at 2i+1 and 2i+2, next_pow2(n)
 * leaves with zero padding. *nodes is malloc'd (caller frees). */
int merkle_tree_build(const uint8_t *leaves, size_t n, uint8_t **nodes, size_t *n_nodes);

#endif
