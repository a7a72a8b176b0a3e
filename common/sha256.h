/* Streaming SHA-256 over OpenSSL's EVP (SHA-NI where the CPU has it).
 *
 * A context is init'ed once, fed any number of times and finalised once;
 * ox_sha256_free releases it at any point (also after final). */
#ifndef OX_SHA256_H
#define OX_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct ox_sha256 {
    void *ctx; /* EVP_MD_CTX */
} ox_sha256_t;

int ox_sha256_init(ox_sha256_t *s);
int ox_sha256_update(ox_sha256_t *s, const void *p, size_t n);
/* Writes 32 raw bytes to out. The context cannot be fed after this. */
int ox_sha256_final(ox_sha256_t *s, uint8_t out[32]);
void ox_sha256_free(ox_sha256_t *s);

/* One-shot helpers. hex gets 64 lowercase hex digits and a NUL. */
void ox_sha256_raw(const void *p, size_t n, uint8_t out[32]);
void ox_sha256_hex(const void *p, size_t n, char hex[65]);
void ox_hex_encode(const uint8_t *in, size_t n, char *out /* 2n+1 */);
/* Hashes a whole file in one sequential read. */
int ox_sha256_file(const char *path, uint8_t out[32], uint64_t *size);

/* A blob's whole-content SHA-256 and, in the same pass, the SHA-256 of each
 * 16 KiB leaf (BitTorrent v2: the last leaf covers what is left). On CPUs with
 * the SHA extensions both chains run side by side over one message schedule
 * (about the cost of one hash); elsewhere OpenSSL hashes the bytes twice.
 * on_leaf (may be NULL: no leaves) is called on the feeding thread, in order,
 * with each leaf digest and the bytes it covers. init, any number of updates,
 * final once; free releases it at any point and is safe after a failed init. */
#define OX_LEAF_SIZE 16384u
typedef void (*ox_leaf_fn)(void *ud, const uint8_t leaf[32], uint32_t len);
typedef struct ox_blobhash {
    uint32_t whole[8], leaf[8]; /* SHA-NI chains */
    uint64_t total;
    uint32_t leaf_done;         /* bytes of the current leaf already in leaf[] */
    uint32_t tail_len;
    uint8_t tail[64];           /* bytes short of a block */
    int ni;
    ox_sha256_t evp_whole, evp_leaf; /* without SHA-NI */
    ox_leaf_fn on_leaf;
    void *ud;
} ox_blobhash_t;
int ox_blobhash_init(ox_blobhash_t *h, ox_leaf_fn on_leaf, void *ud);
int ox_blobhash_update(ox_blobhash_t *h, const void *p, size_t n);
/* Emits the last partial leaf (if any), then writes the whole digest. */
int ox_blobhash_final(ox_blobhash_t *h, uint8_t digest[32]);
void ox_blobhash_free(ox_blobhash_t *h);

#endif
