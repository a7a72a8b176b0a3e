/* ox_blobhash: whole-content SHA-256 plus 16 KiB leaf digests in one pass.
 *
 * Leaves start at multiples of 16 KiB, which are multiples of the 64-byte
 * block, so every block belongs to exactly one leaf and both chains consume
 * the same blocks: the SHA-NI path feeds them to ox__sha256_ni_blocks2 and
 * only the two paddings differ. */
#include <string.h>

#include "common/err.h"
#include "common/sha256.h"
#include "common/sha256_int.h"

static const uint32_t IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

int ox__blobhash_no_ni;

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Pads the message (len bytes in all, tail_len of them not yet compressed)
 * into s and writes the digest. s is consumed. */
static void ni_finish(uint32_t s[8], const uint8_t *tail, uint32_t tail_len, uint64_t len,
                      uint8_t out[32])
{
    uint8_t b[128] = {0};
    if (tail_len)
        memcpy(b, tail, tail_len);
    b[tail_len] = 0x80;
    size_t nb = tail_len + 9 <= 64 ? 1 : 2;
    uint64_t bits = len * 8;
    for (int i = 0; i < 8; i++)
        b[nb * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
    ox__sha256_ni_blocks(s, b, nb);
    for (int i = 0; i < 8; i++)
        put_be32(out + 4 * i, s[i]);
}

static void ni_leaf_emit(ox_blobhash_t *h, uint32_t len, const uint8_t *tail, uint32_t tail_len)
{
    uint8_t d[32];
    ni_finish(h->leaf, tail, tail_len, len, d);
    memcpy(h->leaf, IV, sizeof IV);
    h->leaf_done = 0;
    h->on_leaf(h->ud, d, len);
}

/* Whole blocks, never across a leaf boundary. */
static void ni_blocks(ox_blobhash_t *h, const uint8_t *p, size_t nb)
{
    while (nb) {
        size_t room = (OX_LEAF_SIZE - h->leaf_done) / 64, k = nb < room ? nb : room;
        ox__sha256_ni_blocks2(h->whole, h->leaf, p, k);
        h->leaf_done += (uint32_t)(k * 64);
        p += k * 64;
        nb -= k;
        if (h->leaf_done == OX_LEAF_SIZE)
            ni_leaf_emit(h, OX_LEAF_SIZE, NULL, 0);
    }
}

int ox_blobhash_init(ox_blobhash_t *h, ox_leaf_fn on_leaf, void *ud)
{
    memset(h, 0, sizeof *h);
    h->on_leaf = on_leaf;
    h->ud = ud;
    h->ni = on_leaf && !ox__blobhash_no_ni && ox__sha256_ni_usable();
    if (h->ni) {
        memcpy(h->whole, IV, sizeof IV);
        memcpy(h->leaf, IV, sizeof IV);
        return 0;
    }
    int rc = ox_sha256_init(&h->evp_whole);
    if (!rc && on_leaf)
        rc = ox_sha256_init(&h->evp_leaf);
    if (rc)
        ox_blobhash_free(h);
    return rc;
}

static int evp_update(ox_blobhash_t *h, const uint8_t *p, size_t n)
{
    int rc = ox_sha256_update(&h->evp_whole, p, n);
    while (!rc && h->on_leaf && n) {
        size_t room = OX_LEAF_SIZE - h->leaf_done, k = n < room ? n : room;
        rc = ox_sha256_update(&h->evp_leaf, p, k);
        h->leaf_done += (uint32_t)k;
        p += k;
        n -= k;
        if (!rc && h->leaf_done == OX_LEAF_SIZE) {
            uint8_t d[32];
            rc = ox_sha256_final(&h->evp_leaf, d);
            ox_sha256_free(&h->evp_leaf);
            if (!rc)
                rc = ox_sha256_init(&h->evp_leaf);
            h->leaf_done = 0;
            if (!rc)
                h->on_leaf(h->ud, d, OX_LEAF_SIZE);
        }
    }
    return rc;
}

int ox_blobhash_update(ox_blobhash_t *h, const void *data, size_t n)
{
    const uint8_t *p = data;
    h->total += n;
    if (!h->ni)
        return evp_update(h, p, n);
    if (h->tail_len) {
        size_t k = 64 - h->tail_len < n ? 64 - h->tail_len : n;
        memcpy(h->tail + h->tail_len, p, k);
        h->tail_len += (uint32_t)k;
        p += k;
        n -= k;
        if (h->tail_len < 64)
            return 0;
        ni_blocks(h, h->tail, 1);
        h->tail_len = 0;
    }
    ni_blocks(h, p, n / 64);
    p += n / 64 * 64;
    memcpy(h->tail, p, n % 64);
    h->tail_len = (uint32_t)(n % 64);
    return 0;
}

int ox_blobhash_final(ox_blobhash_t *h, uint8_t digest[32])
{
    if (!h->ni) {
        int rc = 0;
        if (h->on_leaf && h->leaf_done) {
            uint8_t d[32];
            rc = ox_sha256_final(&h->evp_leaf, d);
            if (!rc)
                h->on_leaf(h->ud, d, h->leaf_done);
        }
        return rc ? rc : ox_sha256_final(&h->evp_whole, digest);
    }
    if (h->leaf_done + h->tail_len)
        ni_leaf_emit(h, h->leaf_done + h->tail_len, h->tail, h->tail_len);
    ni_finish(h->whole, h->tail, h->tail_len, h->total, digest);
    return 0;
}

void ox_blobhash_free(ox_blobhash_t *h)
{
    ox_sha256_free(&h->evp_whole);
    ox_sha256_free(&h->evp_leaf);
}
