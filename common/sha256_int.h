/* Internal to common/: the SHA-NI block functions behind ox_blobhash. */
#ifndef OX_COMMON_SHA256_INT_H
#define OX_COMMON_SHA256_INT_H

#include <stddef.h>
#include <stdint.h>

/* Tests set this to 1 to run ox_blobhash's portable path on any CPU. */
extern int ox__blobhash_no_ni;
/* 1 when the CPU has the SHA extensions (cached after the first call). */
int ox__sha256_ni_usable(void);
/* Compress nblocks 64-byte blocks into s (words a..h). */
void ox__sha256_ni_blocks(uint32_t s[8], const uint8_t *p, size_t nblocks);
/* The same blocks into two independent states at once. */
void ox__sha256_ni_blocks2(uint32_t s1[8], uint32_t s2[8], const uint8_t *p, size_t nblocks);

#endif
