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

#endif
