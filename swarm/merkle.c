/* BEP 52 merkle tree, streamed. See merkle.h for the layout we keep. */
#include "swarm/merkle.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/sha256.h"

static void hash_pair(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
    uint8_t two[64];
    memcpy(two, l, 32);
    memcpy(two + 32, r, 32);
    ox_sha256_raw(two, sizeof two, out);
}

static uint64_t next_pow2(uint64_t v)
{
    uint64_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

uint64_t merkle_piece_length(uint64_t size)
{
    uint64_t pl = MERKLE_PIECE_MIN;
    while (pl < MERKLE_PIECE_MAX && pl * 512 < size)
        pl <<= 1;
    return pl;
}

void merkle_pad(unsigned level, uint8_t out[32])
{
    memset(out, 0, 32);
    for (unsigned i = 0; i < level; i++)
        hash_pair(out, out, out);
}

int merkle_root(const uint8_t (*nodes)[32], size_t n, size_t width, const uint8_t pad_in[32],
                uint8_t out[32])
{
    uint8_t pad[32];
    memcpy(pad, pad_in, 32);
    if (n == 0) {
        for (size_t w = width; w > 1; w >>= 1)
            hash_pair(pad, pad, pad);
        memcpy(out, pad, 32);
        return 0;
    }
    uint8_t (*buf)[32] = malloc(n * 32);
    if (!buf)
        return OX_ENOMEM;
    memcpy(buf, nodes, n * 32);
    size_t cnt = n;
    for (size_t w = width; w > 1; w >>= 1) {
        size_t next = (cnt + 1) / 2;
        for (size_t i = 0; i < next; i++)
            hash_pair(buf[2 * i], 2 * i + 1 < cnt ? buf[2 * i + 1] : pad, buf[i]);
        cnt = next;
        hash_pair(pad, pad, pad);
    }
    memcpy(out, buf[0], 32);
    free(buf);
    return 0;
}

void merkle_init(merkle_t *m)
{
    m->size = 0;
    m->block_len = 0;
    m->cur_n = 0;
    m->chunks = NULL;
    m->n_chunks = m->cap_chunks = 0;
    m->leaves = NULL;
    m->n_leaves = m->cap_leaves = 0;
    m->keep_leaves = 0;
    m->oom = 0;
}

void merkle_keep_leaves(merkle_t *m)
{
    m->keep_leaves = 1;
}

int merkle_take_leaves(merkle_t *m, uint8_t **leaves, size_t *n)
{
    if (m->oom || !m->keep_leaves)
        return m->oom ? OX_ENOMEM : OX_ESTATE;
    *leaves = (uint8_t *)m->leaves;
    *n = m->n_leaves;
    m->leaves = NULL;
    m->n_leaves = m->cap_leaves = 0;
    return 0;
}

int merkle_tree_build(const uint8_t *leaves, size_t n, uint8_t **out, size_t *n_out)
{
    if (n == 0)
        return OX_EINVAL;
    size_t w = (size_t)next_pow2(n), total = 2 * w - 1;
    uint8_t *t = calloc(total, 32);
    if (!t)
        return OX_ENOMEM;
    memcpy(t + (w - 1) * 32, leaves, n * 32); /* pad leaves stay zero */
    for (size_t i = w - 1; i-- > 0;)
        hash_pair(t + (2 * i + 1) * 32, t + (2 * i + 2) * 32, t + i * 32);
    *out = t;
    *n_out = total;
    return 0;
}

static int chunk_push(merkle_t *m, const uint8_t root[32])
{
    if (m->n_chunks == m->cap_chunks) {
        size_t cap = m->cap_chunks ? m->cap_chunks * 2 : 64;
        void *p = realloc(m->chunks, cap * 32);
        if (!p) {
            m->oom = 1;
            return OX_ENOMEM;
        }
        m->chunks = p;
        m->cap_chunks = cap;
    }
    memcpy(m->chunks[m->n_chunks++], root, 32);
    return 0;
}

static int keep_leaf(merkle_t *m, const uint8_t leaf[32])
{
    if (m->n_leaves == m->cap_leaves) {
        size_t cap = m->cap_leaves ? m->cap_leaves * 2 : 1024;
        void *p = realloc(m->leaves, cap * 32);
        if (!p) {
            m->oom = 1;
            return OX_ENOMEM;
        }
        m->leaves = p;
        m->cap_leaves = cap;
    }
    memcpy(m->leaves[m->n_leaves++], leaf, 32);
    return 0;
}

static int leaf_add(merkle_t *m, const uint8_t leaf[32])
{
    memcpy(m->cur[m->cur_n], leaf, 32);
    if (m->keep_leaves && keep_leaf(m, m->cur[m->cur_n]))
        return OX_ENOMEM;
    m->cur_n++;
    if (m->cur_n < MERKLE_CHUNK_LEAVES)
        return 0;
    if (m->n_chunks == 0)
        memcpy(m->first, m->cur, sizeof m->first);
    uint8_t zero[32] = {0}, root[32];
    int rc = merkle_root((const uint8_t(*)[32])m->cur, m->cur_n, MERKLE_CHUNK_LEAVES, zero, root);
    m->cur_n = 0;
    return rc ? rc : chunk_push(m, root);
}

static int leaf_push(merkle_t *m, const uint8_t *p, size_t n)
{
    uint8_t leaf[32];
    ox_sha256_raw(p, n, leaf);
    return leaf_add(m, leaf);
}

int merkle_feed_leaf(merkle_t *m, const uint8_t leaf[32], uint32_t len)
{
    if (m->oom)
        return OX_ENOMEM;
    /* leaves must tile the file: only the last may be short */
    if (m->block_len || (m->size % MERKLE_BLOCK) || len == 0 || len > MERKLE_BLOCK)
        return OX_EINVAL;
    m->size += len;
    return leaf_add(m, leaf);
}

int merkle_feed(merkle_t *m, const void *data, size_t n)
{
    const uint8_t *p = data;
    if (m->oom)
        return OX_ENOMEM;
    m->size += n;
    if (m->block_len) {
        size_t take = MERKLE_BLOCK - m->block_len;
        if (take > n)
            take = n;
        memcpy(m->block + m->block_len, p, take);
        m->block_len += take;
        p += take;
        n -= take;
        if (m->block_len < MERKLE_BLOCK)
            return 0;
        m->block_len = 0;
        if (leaf_push(m, m->block, MERKLE_BLOCK))
            return OX_ENOMEM;
    }
    /* whole blocks straight from the caller's buffer: no copy */
    while (n >= MERKLE_BLOCK) {
        if (leaf_push(m, p, MERKLE_BLOCK))
            return OX_ENOMEM;
        p += MERKLE_BLOCK;
        n -= MERKLE_BLOCK;
    }
    memcpy(m->block, p, n);
    m->block_len = n;
    return 0;
}

int merkle_finish(merkle_t *m, uint64_t piece_len, uint8_t root[32], uint8_t **layer,
                  size_t *n_layer)
{
    *layer = NULL;
    *n_layer = 0;
    if (m->oom)
        return OX_ENOMEM;
    if (m->size == 0 || piece_len < MERKLE_PIECE_MIN || (piece_len & (piece_len - 1)))
        return OX_EINVAL;
    if (m->block_len) {
        size_t len = m->block_len;
        m->block_len = 0;
        if (leaf_push(m, m->block, len))
            return OX_ENOMEM;
    }
    uint64_t nblocks = (m->size + MERKLE_BLOCK - 1) / MERKLE_BLOCK;
    uint8_t zero[32] = {0}, padc[32];
    if (nblocks <= MERKLE_CHUNK_LEAVES) {
        /* one chunk: the tree is as wide as the file's own leaves */
        const uint8_t(*leaves)[32] =
            (const uint8_t(*)[32])(m->n_chunks ? m->first : m->cur);
        return merkle_root(leaves, (size_t)nblocks, (size_t)next_pow2(nblocks), zero, root);
    }
    if (m->cur_n) {
        uint8_t r[32];
        int rc = merkle_root((const uint8_t(*)[32])m->cur, m->cur_n, MERKLE_CHUNK_LEAVES, zero, r);
        m->cur_n = 0;
        if (rc || chunk_push(m, r))
            return OX_ENOMEM;
    }
    merkle_pad(MERKLE_CHUNK_LEVEL, padc); /* a chunk of zero leaves */
    size_t width = (size_t)(next_pow2(nblocks) / MERKLE_CHUNK_LEAVES);
    int rc = merkle_root((const uint8_t(*)[32])m->chunks, m->n_chunks, width, padc, root);
    if (rc || m->size <= piece_len)
        return rc;
    size_t per = (size_t)(piece_len / MERKLE_CHUNK);
    size_t np = (size_t)((m->size + piece_len - 1) / piece_len);
    uint8_t *out = malloc(np * 32);
    if (!out)
        return OX_ENOMEM;
    for (size_t i = 0; i < np; i++) {
        size_t first = i * per, cnt = m->n_chunks - first < per ? m->n_chunks - first : per;
        rc = merkle_root((const uint8_t(*)[32])m->chunks + first, cnt, per, padc, out + 32 * i);
        if (rc) {
            free(out);
            return rc;
        }
    }
    *layer = out;
    *n_layer = np;
    return 0;
}

void merkle_free(merkle_t *m)
{
    free(m->chunks);
    m->chunks = NULL;
    m->n_chunks = m->cap_chunks = 0;
    free(m->leaves);
    m->leaves = NULL;
    m->n_leaves = m->cap_leaves = 0;
}
