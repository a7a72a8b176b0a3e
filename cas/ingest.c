/* Blobs entering the store: streaming ingest (HTTP uploads) and adoption of
 * finished files (pulls, swarm fetches).
 *
 * The data is never read back from disk: ingest copies the caller's bytes
 * into staging buffers (stage.c); the stage's writer thread writes them and
 * its hash thread computes the sha256 and the 16 KiB leaf digests the tap
 * wants in one pass (ox_blobhash). Adopt reads the file once, into staging
 * buffers, for the hash thread. Nothing is visible in blobs/ before the
 * sha256 matches and the data is fsynced. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas/cas_int.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/timeutil.h"

#define COPY_CHUNK (4u << 20)
#define CAS_STAGE_MIN (4u << 20)

void cas__tap_leaf(void *ud, const uint8_t leaf[32], uint32_t len)
{
    const cas_tap_feed_t *f = ud;
    f->tap->leaf(f->st, leaf, len);
}

struct cas_ingest {
    cas_t *c;
    int fd;
    int failed; /* first write error; commit reports it */
    cas_stage_t *stage; /* NULL for small blobs: plain writes */
    ox_blobhash_t bh;
    uint64_t size;
    char expect[65]; /* "" when not given */
    const cas_tap_t *tap;
    void *tap_st;
    cas_tap_feed_t feed;
    char path[CAS_PATH_MAX];
};

void cas__digest_mismatch(char *err, size_t errlen, const char *expect, const char *got)
{
    if (err && errlen)
        snprintf(err, errlen, "digest mismatch, expected \"sha256:%s\", got \"sha256:%s\"",
                 expect, got);
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *q = p;
    while (n) {
        ssize_t w = write(fd, q, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return errno == ENOSPC ? OX_ETOOBIG : OX_EIO;
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Cross-file-system fallback: copy into a dot-named temp in blobs/, then
 * rename there. Costs a second read, but only when tmp/ and blobs/ live on
 * different file systems. */
static int copy_into(const char *src, const char *dir, const char *dst, const char *hex)
{
    char tmp[CAS_PATH_MAX], name[96];
    snprintf(name, sizeof name, ".sha256-%s.copy-%ld", hex, (long)getpid());
    if (ox_fs_join(tmp, sizeof tmp, dir, name))
        return OX_ETOOBIG;
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = in < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    char *buf = cas__bigbuf_alloc(COPY_CHUNK);
    int rc = (in < 0 || out < 0) ? OX_EIO : buf ? 0 : OX_ENOMEM;
    while (!rc) {
        ssize_t r = read(in, buf, COPY_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = OX_EIO;
        if (r <= 0)
            break;
        rc = write_all(out, buf, (size_t)r);
    }
    if (!rc && fsync(out) != 0)
        rc = OX_EIO;
    cas__bigbuf_free(buf, COPY_CHUNK);
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        rc = rc ? rc : OX_EIO;
    if (!rc && rename(tmp, dst) != 0)
        rc = OX_EIO;
    if (rc)
        unlink(tmp);
    else
        unlink(src);
    return rc;
}

int cas__blob_commit_file(cas_t *c, const char *src, const char *hex, uint64_t size,
                          int *existed)
{
    char dst[CAS_PATH_MAX], name[80];
    snprintf(name, sizeof name, "sha256-%s", hex);
    if (ox_fs_join(dst, sizeof dst, c->blobs, name))
        return OX_ETOOBIG;
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    uint64_t have;
    if (ox_fs_stat(dst, &have, NULL) == 0 && have == size) {
        unlink(src);
        *existed = 1;
    } else {
        *existed = 0;
        /* EXDEV only when staging could not be put beside blobs/ */
        if (rename(src, dst) != 0)
            rc = errno == EXDEV ? copy_into(src, c->blobs, dst, hex) : OX_EIO;
    }
    if (!rc)
        rc = cas__index_blob_put(c, hex, size);
    pthread_mutex_unlock(&c->mu);
    /* The directory flush runs outside the lock (readers need not wait for
     * the disk); the caller hears of the blob only after it. The index is
     * checked against the files at open, so a rename lost to a power cut
     * cannot leave a blob that is listed but absent. */
    if (!rc && !*existed)
        rc = ox_fs_fsync_dir(c->blobs);
    return rc;
}

int cas_ingest_begin(cas_t *c, const char *expect, uint64_t size_hint, cas_ingest_t **out)
{
    char hex[65] = "";
    if (!c || !out || (expect && cas__digest_hex(expect, hex)))
        return OX_EINVAL;
    cas_ingest_t *in = calloc(1, sizeof *in);
    if (!in)
        return OX_ENOMEM;
    in->c = c;
    memcpy(in->expect, hex, sizeof hex);
    /* The tap is opened under the lock: once cas_set_tap(c, NULL) returns,
     * no new open can reach a tap that is being torn down. */
    pthread_mutex_lock(&c->mu);
    unsigned long long seq = ++c->ingest_seq;
    in->tap = c->tap;
    if (in->tap && in->tap->open)
        in->tap_st = in->tap->open(in->tap->ud, size_hint);
    pthread_mutex_unlock(&c->mu);
    char name[64];
    snprintf(name, sizeof name, "ingest-%ld-%llu", (long)getpid(), seq);
    int rc = ox_fs_join(in->path, sizeof in->path, c->tmp, name);
    /* Small known sizes (configs, templates) are written inline; anything
     * large or of unknown size goes through the writer thread. */
    int staged = size_hint == 0 || size_hint >= CAS_STAGE_MIN;
    int direct = staged;
    in->fd = -1;
    if (!rc && direct) {
        in->fd = open(in->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
        direct = in->fd >= 0;
    }
    if (!rc && in->fd < 0)
        in->fd = open(in->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!rc && in->fd < 0)
        rc = OX_EIO;
    if (!rc && size_hint)
        fallocate(in->fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)size_hint); /* best effort */
    in->feed.tap = in->tap;
    in->feed.st = in->tap_st;
    int leaves = in->tap && in->tap->leaf && in->tap_st;
    if (!rc)
        rc = ox_blobhash_init(&in->bh, leaves ? cas__tap_leaf : NULL, &in->feed);
    if (!rc && staged)
        rc = cas__stage_open(in->fd, direct, &in->bh, &in->stage);
    if (rc) {
        if (in->tap && in->tap->close)
            in->tap->close(in->tap_st, 0, "", 0);
        if (in->fd >= 0) {
            close(in->fd);
            unlink(in->path);
        }
        ox_blobhash_free(&in->bh);
        free(in);
        return rc;
    }
    *out = in;
    return 0;
}

/* The hot path of uploads: one copy into the stage; hashing and writing run
 * on the stage's threads meanwhile; no locks beyond the hand-over of full
 * 8 MiB buffers. Small blobs: one write(2) and the hash inline. */
int cas_ingest_write(cas_ingest_t *in, const void *p, size_t n)
{
    if (in->failed)
        return in->failed;
    if (!n)
        return 0;
    int rc;
    if (in->stage) {
        rc = cas__stage_write(in->stage, p, n);
    } else {
        rc = write_all(in->fd, p, n);
        if (!rc)
            rc = ox_blobhash_update(&in->bh, p, n);
    }
    if (rc) {
        in->failed = rc;
        return rc;
    }
    in->size += n;
    return 0;
}

int cas_ingest_nonblocking(const cas_ingest_t *in)
{
    return in->stage != NULL;
}

void cas_ingest_set_wake(cas_ingest_t *in, void (*wake)(void *ud), void *ud)
{
    if (in->stage)
        cas__stage_set_wake(in->stage, wake, ud);
}

int cas_ingest_write_some(cas_ingest_t *in, const void *p, size_t n, size_t *taken)
{
    *taken = 0;
    if (in->failed)
        return in->failed;
    if (!in->stage)
        return OX_ESTATE;
    int rc = cas__stage_write_some(in->stage, p, n, taken);
    in->size += *taken;
    if (rc)
        in->failed = rc;
    return rc;
}

void *cas_ingest_room(cas_ingest_t *in, size_t *room)
{
    if (!in || !room || in->failed || !in->stage)
        return NULL;
    return cas__stage_room(in->stage, room);
}

static void ingest_free(cas_ingest_t *in, int ok, const char *hex)
{
    char digest[72] = "";
    if (hex && hex[0])
        snprintf(digest, sizeof digest, "sha256:%s", hex);
    cas__stage_free(in->stage); /* joins the hash thread: no leaf after close */
    if (in->tap && in->tap->close)
        in->tap->close(in->tap_st, ok, digest, in->size);
    if (in->fd >= 0)
        close(in->fd);
    if (!ok)
        unlink(in->path);
    ox_blobhash_free(&in->bh);
    free(in);
}

void cas_ingest_abort(cas_ingest_t *in)
{
    if (in)
        ingest_free(in, 0, NULL);
}

int cas_ingest_commit(cas_ingest_t *in, char digest_out[72], int *existed, char *err,
                      size_t errlen)
{
    uint8_t raw[32];
    char hex[65] = "";
    int rc = in->failed, said = 0;
    int64_t t0 = ox_time_mono_ns();
    if (!rc && in->stage)
        rc = cas__stage_finish(in->stage);
    int64_t t1 = ox_time_mono_ns();
    if (!rc)
        rc = ox_blobhash_final(&in->bh, raw);
    if (!rc) {
        ox_hex_encode(raw, 32, hex);
        if (in->expect[0] && strcmp(in->expect, hex) != 0) {
            cas__digest_mismatch(err, errlen, in->expect, hex);
            rc = OX_EDIGEST;
            said = 1;
        }
    } else if (err && errlen) {
        snprintf(err, errlen, "writing blob: %s", ox_strerror(rc));
        said = 1;
    }
    if (!rc && fsync(in->fd) != 0)
        rc = OX_EIO;
    int64_t t2 = ox_time_mono_ns();
    int fd = in->fd;
    in->fd = -1;
    if (close(fd) != 0 && !rc)
        rc = OX_EIO;
    int ex = 0;
    if (!rc)
        rc = cas__blob_commit_file(in->c, in->path, hex, in->size, &ex);
    int64_t t3 = ox_time_mono_ns();
    if (rc && !said && err && errlen)
        snprintf(err, errlen, "committing blob: %s", ox_strerror(rc));
    if (!rc) {
        if (digest_out)
            snprintf(digest_out, 72, "sha256:%s", hex);
        if (existed)
            *existed = ex;
    }
    uint64_t size = in->size;
    ingest_free(in, rc == 0, hex);
    OX_DEBUG("cas ingest commit of %llu bytes: %d; drain %.3f s, fsync %.3f s, rename+index "
             "%.3f s, tap close %.3f s",
             (unsigned long long)size, rc, (double)(t1 - t0) / 1e9, (double)(t2 - t1) / 1e9,
             (double)(t3 - t2) / 1e9, (double)(ox_time_mono_ns() - t3) / 1e9);
    return rc;
}
