/* The per-blob torrent recipe. Everything that enters the info dict is a
 * function of the content, so every holder derives the same info-hash. */
#include "swarm/torrent.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/sha256.h"
#include "swarm/bencode.h"

static int file_name(const char *digest, char name[72])
{
    char canon[72];
    int rc = cas_digest_parse(digest, canon);
    if (rc)
        return rc;
    memcpy(name, canon, sizeof canon);
    name[6] = '-'; /* "sha256:<hex>" -> "sha256-<hex>", Ollama's file name */
    return 0;
}

int swarm__torrent_build(const char *digest, uint64_t size, uint64_t piece_len,
                         const uint8_t root[32], const uint8_t *layer, size_t n_layer,
                         ox_buf_t *torrent, uint8_t ih[32])
{
    char name[72];
    int rc = file_name(digest, name);
    if (rc)
        return rc;
    if (size == 0 || size > INT64_MAX)
        return OX_EINVAL;
    ox_buf_t info = OX_BUF_INIT;
    /* keys in byte order, as bencode requires: file tree, meta version, name,
     * piece length. No creation date, creator, comment or attributes. */
    rc = bencode_tag(&info, 'd');
    rc = rc ? rc : bencode_str(&info, "file tree");
    rc = rc ? rc : bencode_tag(&info, 'd');
    rc = rc ? rc : bencode_str(&info, name);
    rc = rc ? rc : bencode_tag(&info, 'd');
    rc = rc ? rc : bencode_str(&info, "");
    rc = rc ? rc : bencode_tag(&info, 'd');
    rc = rc ? rc : bencode_str(&info, "length");
    rc = rc ? rc : bencode_int(&info, (int64_t)size);
    rc = rc ? rc : bencode_str(&info, "pieces root");
    rc = rc ? rc : bencode_bytes(&info, root, 32);
    rc = rc ? rc : ox_buf_puts(&info, "eee");
    rc = rc ? rc : bencode_str(&info, "meta version");
    rc = rc ? rc : bencode_int(&info, 2);
    rc = rc ? rc : bencode_str(&info, "name");
    rc = rc ? rc : bencode_str(&info, name);
    rc = rc ? rc : bencode_str(&info, "piece length");
    rc = rc ? rc : bencode_int(&info, (int64_t)piece_len);
    rc = rc ? rc : bencode_tag(&info, 'e');
    if (rc)
        goto out;
    ox_sha256_raw(info.data, info.len, ih);
    rc = bencode_tag(torrent, 'd');
    rc = rc ? rc : bencode_str(torrent, "info");
    rc = rc ? rc : ox_buf_append(torrent, info.data, info.len);
    rc = rc ? rc : bencode_str(torrent, "piece layers");
    rc = rc ? rc : bencode_tag(torrent, 'd');
    if (!rc && n_layer) {
        rc = bencode_bytes(torrent, root, 32);
        rc = rc ? rc : bencode_bytes(torrent, layer, n_layer * 32);
    }
    rc = rc ? rc : ox_buf_puts(torrent, "ee");
out:
    ox_buf_free(&info);
    return rc;
}

int swarm__torrent_from_merkle(const char *digest, merkle_t *m, ox_buf_t *rec)
{
    uint8_t root[32], ih[32], *layer = NULL;
    size_t n_layer = 0;
    uint64_t size = m->size, pl = merkle_piece_length(size);
    int rc = merkle_finish(m, pl, root, &layer, &n_layer);
    if (rc)
        return rc;
    size_t at = rec->len;
    rc = ox_buf_append(rec, SWARM_REC_MAGIC, 4);
    rc = rc ? rc : ox_buf_append(rec, ih, 32); /* placeholder, patched below */
    rc = rc ? rc : swarm__torrent_build(digest, size, pl, root, layer, n_layer, rec, ih);
    if (!rc)
        memcpy(rec->data + at + 4, ih, 32);
    free(layer);
    return rc;
}

int swarm__records_store(cas_t *c, const char *digest, merkle_t *m, ox_buf_t *rec_out,
                         uint8_t **leaves_out, size_t *n_out)
{
    ox_buf_t rec = OX_BUF_INIT;
    uint8_t *leaves = NULL;
    size_t n = 0;
    int rc = swarm__torrent_from_merkle(digest, m, &rec);
    if (!rc)
        rc = merkle_take_leaves(m, &leaves, &n);
    /* the tree first: a torrent record without one is seeded after a check */
    if (!rc && !leaves_out)
        rc = cas_meta_put(c, SWARM_META_TREE, digest, leaves, n * 32);
    if (!rc)
        rc = cas_meta_put(c, SWARM_META_KIND, digest, rec.data, rec.len);
    if (!rc && rec_out)
        rc = ox_buf_append(rec_out, rec.data, rec.len);
    if (!rc && leaves_out) {
        *leaves_out = leaves;
        *n_out = n;
        leaves = NULL;
    }
    free(leaves);
    ox_buf_free(&rec);
    return rc;
}

int swarm__rec_parse(const void *rec, size_t len, uint8_t ih[32], const void **torrent,
                     size_t *tlen)
{
    const uint8_t *p = rec;
    if (len <= SWARM_REC_HDR || memcmp(p, SWARM_REC_MAGIC, 4) != 0 || p[SWARM_REC_HDR] != 'd')
        return OX_EFORMAT;
    memcpy(ih, p + 4, 32);
    *torrent = p + SWARM_REC_HDR;
    *tlen = len - SWARM_REC_HDR;
    return 0;
}

int swarm__torrent_of_file(cas_t *c, const char *digest, ox_buf_t *rec_out)
{
    char path[4096];
    int rc = cas_blob_path(c, digest, path, sizeof path);
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return OX_ENOTFOUND;
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    merkle_t *m = malloc(sizeof *m);
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    if (!m || !buf) {
        rc = OX_ENOMEM;
        goto out;
    }
    merkle_init(m);
    merkle_keep_leaves(m);
    for (;;) {
        ssize_t n = read(fd, buf, cap);
        if (n < 0) {
            rc = OX_EIO;
            goto out_m;
        }
        if (n == 0)
            break;
        if ((rc = merkle_feed(m, buf, (size_t)n)))
            goto out_m;
    }
    rc = swarm__records_store(c, digest, m, rec_out, NULL, NULL);
out_m:
    merkle_free(m);
out:
    close(fd);
    free(m);
    free(buf);
    return rc;
}
