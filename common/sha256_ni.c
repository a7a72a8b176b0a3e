/* SHA-256 block functions on the x86 SHA extensions (SHA-NI).
 *
 * Why our own: a blob's whole-file digest and its 16 KiB BitTorrent v2 leaves
 * hash the very same 64-byte blocks. One sha256rnds2 chain is bound by the
 * instruction's latency, so running the two chains side by side over one
 * message schedule costs little more than one chain: the store gets both
 * digests for about the price of one, in one read of the data. OpenSSL
 * hashes one stream at a time and cannot do this.
 *
 * State layout: the eight words a..h in the usual order (FIPS 180-4); the
 * kernels convert to the ABEF/CDGH register form the instructions use. The
 * functions here are compiled for SHA-NI only through target attributes and
 * must only be called when ox__sha256_ni_usable() says so. */
#include "common/sha256_int.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

static const uint32_t K256[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

int ox__sha256_ni_usable(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v >= 0)
        return v;
    unsigned a, b, c, d;
    v = 0;
    /* leaf 7 EBX bit 29: SHA; leaf 1 ECX bits 19 (SSE4.1) and 9 (SSSE3) */
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)) &&
        __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19)) && (c & (1u << 9)))
        v = 1;
    __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    return v;
}

#define NI __attribute__((target("sha,sse4.1,ssse3")))

/* a..h words <-> the two registers sha256rnds2 works on: ABEF holds
 * (lane 3..0) a,b,e,f and CDGH holds c,d,g,h */
NI static inline void state_load(const uint32_t s[8], __m128i *abef, __m128i *cdgh)
{
    __m128i t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)s), 0xB1);  /* b a d c */
    __m128i u = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(s + 4)), 0x1B); /* h g f e */
    *abef = _mm_alignr_epi8(t, u, 8);     /* f e b a */
    *cdgh = _mm_blend_epi16(u, t, 0xF0);  /* h g d c */
}

NI static inline void state_store(uint32_t s[8], __m128i abef, __m128i cdgh)
{
    __m128i t = _mm_shuffle_epi32(abef, 0x1B); /* a b e f */
    __m128i u = _mm_shuffle_epi32(cdgh, 0xB1); /* g h c d */
    _mm_storeu_si128((__m128i *)s, _mm_blend_epi16(t, u, 0xF0));   /* a b c d */
    _mm_storeu_si128((__m128i *)(s + 4), _mm_alignr_epi8(u, t, 8)); /* e f g h */
}

/* Message words W[4g..4g+3] for g >= 4 from the previous sixteen. */
#define SCHED(m, g)                                                                        \
    m[(g)&3] = _mm_sha256msg2_epu32(                                                       \
        _mm_add_epi32(_mm_sha256msg1_epu32(m[(g)&3], m[((g) + 1) & 3]),                    \
                      _mm_alignr_epi8(m[((g) + 3) & 3], m[((g) + 2) & 3], 4)),             \
        m[((g) + 3) & 3])

NI void ox__sha256_ni_blocks(uint32_t s[8], const uint8_t *p, size_t nblocks)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i abef, cdgh;
    state_load(s, &abef, &cdgh);
    for (; nblocks; nblocks--, p += 64) {
        __m128i a0 = abef, c0 = cdgh, m[4];
        for (int i = 0; i < 4; i++)
            m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            if (g >= 4)
                SCHED(m, g);
            __m128i wk = _mm_add_epi32(m[g & 3], _mm_load_si128((const __m128i *)&K256[4 * g]));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
        }
        abef = _mm_add_epi32(abef, a0);
        cdgh = _mm_add_epi32(cdgh, c0);
    }
    state_store(s, abef, cdgh);
}

/* Two chains over the same blocks: the second chain's rounds fill the
 * latency of the first's, and the schedule is computed once for both. */
NI void ox__sha256_ni_blocks2(uint32_t s1[8], uint32_t s2[8], const uint8_t *p, size_t nblocks)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i ab1, cd1, ab2, cd2;
    state_load(s1, &ab1, &cd1);
    state_load(s2, &ab2, &cd2);
    for (; nblocks; nblocks--, p += 64) {
        __m128i a1 = ab1, c1 = cd1, a2 = ab2, c2 = cd2, m[4];
        for (int i = 0; i < 4; i++)
            m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            if (g >= 4)
                SCHED(m, g);
            __m128i wk = _mm_add_epi32(m[g & 3], _mm_load_si128((const __m128i *)&K256[4 * g]));
            __m128i wh = _mm_shuffle_epi32(wk, 0x0E);
            cd1 = _mm_sha256rnds2_epu32(cd1, ab1, wk);
            cd2 = _mm_sha256rnds2_epu32(cd2, ab2, wk);
            ab1 = _mm_sha256rnds2_epu32(ab1, cd1, wh);
            ab2 = _mm_sha256rnds2_epu32(ab2, cd2, wh);
        }
        ab1 = _mm_add_epi32(ab1, a1);
        cd1 = _mm_add_epi32(cd1, c1);
        ab2 = _mm_add_epi32(ab2, a2);
        cd2 = _mm_add_epi32(cd2, c2);
    }
    state_store(s1, ab1, cd1);
    state_store(s2, ab2, cd2);
}

#else

int ox__sha256_ni_usable(void) { return 0; }
void ox__sha256_ni_blocks(uint32_t s[8], const uint8_t *p, size_t nblocks)
{
    (void)s, (void)p, (void)nblocks;
}
void ox__sha256_ni_blocks2(uint32_t s1[8], uint32_t s2[8], const uint8_t *p, size_t nblocks)
{
    (void)s1, (void)s2, (void)p, (void)nblocks;
}

#endif
