/* Adoption of files written elsewhere under tmp/ (a finished pull, a swarm
 * fetch): one read that hashes (sha256 and the tap's leaves), then the
 * commit of ingest.c. The read may run ahead of the end in steps (feed), so
 * a download that knows its final prefix hashes while it downloads.
 *
 * Why the read and the hash share one thread and a small buffer: the file is
 * in the page cache (it was just written), so reading is a memcpy into a
 * buffer that stays in the core's cache, a tenth of the hash's time. The
 * staging ring of an upload (two threads, a deep ring of fresh pages) cost
 * twice the hash here in page faults alone, and eight adoptions at once on
 * two cores (the fan-out bench) took 1.5-1.8 s each instead of 0.5 s. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cas/cas_int.h"
#include "common/err.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/timeutil.h"

#define FEED_CHUNK (256u << 10)

struct cas_adopt {
    cas_t *c;
    int fd;
    int failed; /* first read error: commit reports it */
    uint64_t hashed;
    ox_blobhash_t bh;
    cas_tap_feed_t feed; /* tap NULL: none */
    int64_t busy_ns;     /* time spent hashing, for the log */
    char *buf;
    char path[CAS_PATH_MAX];
};

int cas_adopt_begin(cas_t *c, const char *path, cas_adopt_t **out, char *err, size_t errlen)
{
    if (!c || !path || !out || strlen(path) >= CAS_PATH_MAX)
        return OX_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (err && errlen)
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
        return e == ENOENT ? OX_ENOTFOUND : OX_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        if (err && errlen)
            snprintf(err, errlen, "%s is not a regular file", path);
        return OX_EINVAL;
    }
    cas_adopt_t *a = calloc(1, sizeof *a);
    if (!a || !(a->buf = malloc(FEED_CHUNK))) {
        free(a);
        close(fd);
        return OX_ENOMEM;
    }
    a->c = c;
    a->fd = fd;
    snprintf(a->path, sizeof a->path, "%s", path);
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    pthread_mutex_lock(&c->mu);
    const cas_tap_t *tap = c->tap;
    void *tst = tap && tap->open ? tap->open(tap->ud, (uint64_t)st.st_size) : NULL;
    pthread_mutex_unlock(&c->mu);
    a->feed.tap = tap;
    a->feed.st = tst;
    int leaves = tap && tap->leaf && tst;
    int rc = ox_blobhash_init(&a->bh, leaves ? cas__tap_leaf : NULL, &a->feed);
    if (rc) {
        if (tap && tap->close)
            tap->close(tst, 0, "", 0);
        close(fd);
        free(a->buf);
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* Hashes up to upto bytes, or to the end of the file when to_eof. */
static int feed_to(cas_adopt_t *a, uint64_t upto, int to_eof)
{
    int64_t t0 = ox_time_mono_ns();
    while (!a->failed && (to_eof || a->hashed < upto)) {
        size_t want = FEED_CHUNK;
        if (!to_eof && upto - a->hashed < want)
            want = (size_t)(upto - a->hashed);
        ssize_t r = pread(a->fd, a->buf, want, (off_t)a->hashed);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 && to_eof)
            break;
        if (r <= 0) { /* an error, or a "final" prefix past the end */
            a->failed = OX_EIO;
            break;
        }
        a->failed = ox_blobhash_update(&a->bh, a->buf, (size_t)r);
        a->hashed += (uint64_t)r;
    }
    a->busy_ns += ox_time_mono_ns() - t0;
    return a->failed;
}

int cas_adopt_feed(cas_adopt_t *a, uint64_t upto)
{
    if (!a)
        return OX_EINVAL;
    return feed_to(a, upto, 0);
}

uint64_t cas_adopt_hashed(const cas_adopt_t *a)
{
    return a ? a->hashed : 0;
}

static void adopt_free(cas_adopt_t *a, int ok, const char *hex)
{
    if (a->feed.tap && a->feed.tap->close) {
        char digest[72] = "";
        if (ok)
            snprintf(digest, sizeof digest, "sha256:%s", hex);
        a->feed.tap->close(a->feed.st, ok, digest, a->hashed);
    }
    ox_blobhash_free(&a->bh);
    if (a->fd >= 0)
        close(a->fd);
    free(a->buf);
    free(a);
}

void cas_adopt_abort(cas_adopt_t *a)
{
    if (a)
        adopt_free(a, 0, NULL);
}

int cas_adopt_commit(cas_adopt_t *a, const char *expect, char *err, size_t errlen)
{
    char want[65] = "", hex[65] = "";
    if (!a)
        return OX_EINVAL;
    if (expect && cas__digest_hex(expect, want)) {
        cas_adopt_abort(a);
        return OX_EINVAL;
    }
    uint64_t before = a->hashed;
    int64_t t0 = ox_time_mono_ns();
    int rc = feed_to(a, 0, 1);
    uint8_t raw[32];
    if (!rc)
        rc = ox_blobhash_final(&a->bh, raw);
    if (!rc) {
        ox_hex_encode(raw, 32, hex);
        if (want[0] && strcmp(want, hex) != 0) {
            cas__digest_mismatch(err, errlen, want, hex);
            rc = OX_EDIGEST;
        }
    }
    int64_t t1 = ox_time_mono_ns();
    if (!rc && fsync(a->fd) != 0)
        rc = OX_EIO;
    close(a->fd);
    a->fd = -1;
    int64_t t2 = ox_time_mono_ns();
    int existed = 0;
    if (!rc)
        rc = cas__blob_commit_file(a->c, a->path, hex, a->hashed, &existed);
    OX_DEBUG("cas adopt of %llu bytes: %d; %llu hashed ahead in %.3f s, then hash %.3f s, "
             "fsync %.3f s, rename+index %.3f s",
             (unsigned long long)a->hashed, rc, (unsigned long long)before,
             (double)(a->busy_ns - (t1 - t0)) / 1e9, (double)(t1 - t0) / 1e9,
             (double)(t2 - t1) / 1e9, (double)(ox_time_mono_ns() - t2) / 1e9);
    /* Only bytes proven wrong are thrown away: a passing failure (memory,
     * I/O) keeps a finished download for the next try. */
    if (rc == OX_EDIGEST)
        unlink(a->path);
    if (rc == OX_EIO && err && errlen)
        snprintf(err, errlen, "adopting %s: input/output error", a->path);
    adopt_free(a, rc == 0, hex);
    return rc;
}

int cas_blob_adopt(cas_t *c, const char *path, const char *expect, char *err, size_t errlen)
{
    char want[65];
    if (!c || !path || (expect && cas__digest_hex(expect, want)))
        return OX_EINVAL;
    cas_adopt_t *a;
    int rc = cas_adopt_begin(c, path, &a, err, errlen);
    return rc ? rc : cas_adopt_commit(a, expect, err, errlen);
}
