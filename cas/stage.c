/* The ingest stage: a ring of aligned buffers that the caller fills in order
 * and that up to two threads consume in the same order: a writer (the temp
 * file) and a hash thread (the blob's sha256 and its 16 KiB leaves).
 *
 * Why a writer: on the disks we run on, write(2) through the page cache moves
 * about 0.5 GB/s while SHA-NI hashes about 1.4 GB/s, so a write-then-hash loop
 * on one thread runs at a third of `openssl dgst`. The caller copies each
 * buffer into 4096-aligned staging buffers (a memcpy, ~10 GB/s) and returns
 * to hashing; the writer writes full buffers with O_DIRECT when the file
 * system allows it (no page-cache copy), falling back to plain writes
 * otherwise, and flushes as it goes so the commit's fsync has little left.
 *
 * Why a hash thread: hashing (ox_blobhash: sha256 and leaves, ~1.4 GB/s) is
 * the longest stage; on its own thread it overlaps the caller's copy (and the
 * socket reads before it) instead of adding to them. It is separate from the
 * writer so that a slow disk and the hash overlap instead of adding up.
 *
 * A buffer is free again once every consumer is done with it. Consumers skip
 * their work after the first error (or an abort), but still release buffers,
 * so neither the caller nor a join can wait forever. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cas/cas_int.h"
#include "common/err.h"
#include "common/log.h"
#include "common/timeutil.h"

/* A 128 MiB ring per large ingest (address space; pages are touched as it
 * fills and unmapped at the end). Why that deep: the disk's write speed and
 * the flushes below come in bursts, and with 32 MiB the socket was paused
 * while the hash thread sat idle; bench ingest went from 0.66-0.67x to
 * 0.81-0.85x of openssl with 128 MiB (64 MiB: 0.72-0.86x). */
#define STAGE_BUFS 16
#define STAGE_SIZE (8u << 20)
#define STAGE_ALIGN 4096u
#define HUGE_ALIGN (2u << 20)
/* The writer flushes to the device every this many bytes. Why: the commit's
 * fsync otherwise flushes the whole blob at once on the critical path (0.6 s
 * per GiB measured here, even after O_DIRECT writes: the device's own cache);
 * flushed as we go, that time overlaps the hashing and the final fsync has
 * almost nothing left. */
#define STAGE_SYNC_EVERY (128ull << 20)

enum { BUF_FREE, BUF_FILLING, BUF_FULL };
enum { C_WRITE, C_HASH, C_COUNT };

struct cas_stage {
    int fd;       /* -1: no writer */
    int direct;   /* writer thread only */
    uint64_t off; /* writer thread only */
    uint64_t synced; /* writer thread only: off at the last fdatasync */
    ox_blobhash_t *bh; /* NULL: no hash thread */
    pthread_t th[C_COUNT];
    int running[C_COUNT]; /* th[i] started and not yet joined */
    unsigned want;        /* bit per consumer that runs */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *mem; /* cas__bigbuf_alloc(STAGE_BUFS * STAGE_SIZE), lazily */
    char *buf[STAGE_BUFS];
    size_t len[STAGE_BUFS];
    int state[STAGE_BUFS];
    unsigned pend[STAGE_BUFS]; /* consumers not yet done with a FULL buffer */
    int head[C_COUNT];         /* next buffer each consumer takes */
    int fill;                  /* buffer the caller fills */
    int stop;
    int err;
    char *cur; /* caller: buf[fill] while FILLING, else NULL */
    size_t cur_len;
    /* non-blocking callers: wake(wake_ud) once a buffer frees after a
     * try_next found none (armed) */
    void (*wake)(void *ud);
    void *wake_ud;
    int armed;
    /* for the debug log: where the time went (ns) */
    int64_t t_open, t_wait, t_busy[C_COUNT], t_cpu[C_COUNT];
    uint64_t bytes;
};

static int pwrite_all(int fd, const char *p, size_t n, uint64_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 && errno == EINVAL ? OX_EINVAL : errno == ENOSPC ? OX_ETOOBIG : OX_EIO;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

static void direct_off(cas_stage_t *s)
{
    int fl = fcntl(s->fd, F_GETFL);
    if (fl >= 0)
        fcntl(s->fd, F_SETFL, fl & ~O_DIRECT);
    s->direct = 0;
}

static int write_block(cas_stage_t *s, const char *p, size_t len)
{
    size_t head = s->direct ? len & ~(size_t)(STAGE_ALIGN - 1) : 0;
    int rc = 0;
    if (head) {
        rc = pwrite_all(s->fd, p, head, s->off);
        if (rc == OX_EINVAL) { /* the file system refuses O_DIRECT */
            direct_off(s);
            rc = 0;
            head = 0;
        }
        s->off += head;
    }
    if (!rc && len > head) {
        if (s->direct)
            direct_off(s); /* an unaligned tail: only the last buffer */
        rc = pwrite_all(s->fd, p + head, len - head, s->off);
        s->off += len - head;
    }
    if (!rc && s->off - s->synced >= STAGE_SYNC_EVERY) {
        if (fdatasync(s->fd) != 0 && errno != EINVAL && errno != EROFS)
            rc = OX_EIO;
        s->synced = s->off;
    }
    return rc;
}

/* Where this runs (a VM with shadow paging), first-touching a 4 KiB page
 * costs ~35 us: filling fresh 8 MiB buffers page by page took longer than
 * hashing them (260 ms per 32 MiB against 2 ms once warm). Transparent huge
 * pages cut that to a few ms, so big buffers are 2 MiB-aligned mappings with
 * MADV_HUGEPAGE (best effort: without THP they are plain anonymous pages). */
void *cas__bigbuf_alloc(size_t n)
{
    size_t span = n + HUGE_ALIGN;
    char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uintptr_t a = ((uintptr_t)m + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1);
    char *p = (char *)a;
    if (p > m)
        munmap(m, (size_t)(p - m));
    if (m + span > p + n)
        munmap(p + n, (size_t)(m + span - (p + n)));
#ifdef MADV_HUGEPAGE
    madvise(p, n, MADV_HUGEPAGE);
#endif
    return p;
}

void cas__bigbuf_free(void *p, size_t n)
{
    if (p)
        munmap(p, n);
}

/* One consumer's loop: takes the FULL buffers in ring order until stopped
 * with nothing left for it. */
static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void consume(cas_stage_t *s, int k)
{
    unsigned bit = 1u << k;
    int64_t cpu0 = thread_cpu_ns();
    pthread_mutex_lock(&s->mu);
    for (;;) {
        int h = s->head[k];
        while (!(s->state[h] == BUF_FULL && (s->pend[h] & bit)) && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!(s->state[h] == BUF_FULL && (s->pend[h] & bit)))
            break;
        int skip = s->err != 0;
        pthread_mutex_unlock(&s->mu);
        int rc = 0;
        int64_t t0 = ox_time_mono_ns();
        if (!skip && k == C_WRITE)
            rc = write_block(s, s->buf[h], s->len[h]);
        else if (!skip)
            rc = ox_blobhash_update(s->bh, s->buf[h], s->len[h]);
        int64_t dt = ox_time_mono_ns() - t0;
        pthread_mutex_lock(&s->mu);
        s->t_busy[k] += dt;
        if (rc && !s->err)
            s->err = rc;
        s->pend[h] &= ~bit;
        if (!s->pend[h]) {
            s->state[h] = BUF_FREE;
            if (s->armed && s->wake) {
                s->armed = 0;
                s->wake(s->wake_ud); /* must not block or take our lock */
            }
        }
        s->head[k] = (h + 1) % STAGE_BUFS;
        pthread_cond_broadcast(&s->cv);
    }
    s->t_cpu[k] = thread_cpu_ns() - cpu0;
    pthread_mutex_unlock(&s->mu);
}

static void *on_write_thread(void *arg)
{
    consume(arg, C_WRITE);
    return NULL;
}

static void *on_hash_thread(void *arg)
{
    consume(arg, C_HASH);
    return NULL;
}

/* Stops the consumers (after what was submitted) and joins them. */
static void stop_join(cas_stage_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int k = 0; k < C_COUNT; k++) {
        if (s->running[k])
            pthread_join(s->th[k], NULL);
        s->running[k] = 0;
    }
}

int cas__stage_open(int fd, int direct, ox_blobhash_t *bh, cas_stage_t **out)
{
    cas_stage_t *s = calloc(1, sizeof *s);
    if (!s)
        return OX_ENOMEM;
    s->fd = fd;
    s->direct = direct;
    s->t_open = ox_time_mono_ns();
    s->bh = bh;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    void *(*fn[C_COUNT])(void *) = {on_write_thread, on_hash_thread};
    int use[C_COUNT] = {fd >= 0, bh != NULL};
    for (int k = 0; k < C_COUNT; k++) {
        if (!use[k])
            continue;
        if (pthread_create(&s->th[k], NULL, fn[k], s) != 0) {
            cas__stage_free(s);
            return OX_ENOMEM;
        }
        s->running[k] = 1;
        s->want |= 1u << k;
    }
    *out = s;
    return 0;
}

/* Hands the filling buffer to the consumers. mu held. */
static void submit_locked(cas_stage_t *s)
{
    s->len[s->fill] = s->cur_len;
    s->pend[s->fill] = s->want;
    s->state[s->fill] = s->want ? BUF_FULL : BUF_FREE;
    s->fill = (s->fill + 1) % STAGE_BUFS;
    s->cur = NULL;
    s->cur_len = 0;
    pthread_cond_broadcast(&s->cv);
}

void cas__stage_set_wake(cas_stage_t *s, void (*wake)(void *ud), void *ud)
{
    pthread_mutex_lock(&s->mu);
    s->wake = wake;
    s->wake_ud = ud;
    pthread_mutex_unlock(&s->mu);
}

/* Takes the next buffer for filling. With nowait, returns OX_EBUSY (and
 * arms the wake-up) instead of waiting for a consumer to free it. */
static int take_buffer(cas_stage_t *s, int nowait)
{
    pthread_mutex_lock(&s->mu);
    int err = s->err;
    if (!err && nowait && s->state[s->fill] != BUF_FREE) {
        s->armed = 1;
        pthread_mutex_unlock(&s->mu);
        return OX_EBUSY;
    }
    if (!err && s->state[s->fill] != BUF_FREE) {
        int64_t t0 = ox_time_mono_ns();
        while (s->state[s->fill] != BUF_FREE)
            pthread_cond_wait(&s->cv, &s->mu);
        s->t_wait += ox_time_mono_ns() - t0;
        err = s->err;
    }
    if (!err && !s->mem) { /* address space only: pages come as filled */
        s->mem = cas__bigbuf_alloc((size_t)STAGE_BUFS * STAGE_SIZE);
        if (!s->mem)
            err = s->err = OX_ENOMEM;
        for (int i = 0; s->mem && i < STAGE_BUFS; i++)
            s->buf[i] = s->mem + (size_t)i * STAGE_SIZE;
    }
    if (!err)
        s->state[s->fill] = BUF_FILLING;
    pthread_mutex_unlock(&s->mu);
    if (!err)
        s->cur = s->buf[s->fill];
    return err;
}

int cas__stage_next(cas_stage_t *s, char **p, size_t *room)
{
    int rc = s->cur ? 0 : take_buffer(s, 0);
    if (rc)
        return rc;
    *p = s->cur + s->cur_len;
    *room = STAGE_SIZE - s->cur_len;
    return 0;
}

void cas__stage_put(cas_stage_t *s, size_t n)
{
    s->cur_len += n;
    s->bytes += n;
    if (s->cur_len == STAGE_SIZE) {
        pthread_mutex_lock(&s->mu);
        submit_locked(s);
        pthread_mutex_unlock(&s->mu);
    }
}

int cas__stage_write(cas_stage_t *s, const void *p, size_t n)
{
    const char *q = p;
    while (n) {
        char *d;
        size_t k;
        int rc = cas__stage_next(s, &d, &k);
        if (rc)
            return rc;
        if (k > n)
            k = n;
        memcpy(d, q, k);
        cas__stage_put(s, k);
        q += k;
        n -= k;
    }
    return 0;
}

int cas__stage_write_some(cas_stage_t *s, const void *p, size_t n, size_t *taken)
{
    const char *q = p;
    size_t done = 0;
    int rc = 0;
    while (done < n) {
        if (!s->cur && (rc = take_buffer(s, 1)) != 0)
            break;
        size_t k = STAGE_SIZE - s->cur_len;
        if (k > n - done)
            k = n - done;
        if (q + done != s->cur + s->cur_len) /* else received in place (room) */
            memcpy(s->cur + s->cur_len, q + done, k);
        cas__stage_put(s, k);
        done += k;
    }
    *taken = done;
    return rc == OX_EBUSY ? 0 : rc;
}

void *cas__stage_room(cas_stage_t *s, size_t *room)
{
    if (!s->cur && take_buffer(s, 1) != 0)
        return NULL;
    *room = STAGE_SIZE - s->cur_len;
    return s->cur + s->cur_len;
}

int cas__stage_finish(cas_stage_t *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->cur && s->cur_len)
        submit_locked(s);
    pthread_mutex_unlock(&s->mu);
    stop_join(s);
    OX_DEBUG("cas stage: %llu bytes in %.3f s; caller waited %.3f s, writer busy %.3f s "
             "(cpu %.3f s), hash busy %.3f s (cpu %.3f s)",
             (unsigned long long)s->bytes, (double)(ox_time_mono_ns() - s->t_open) / 1e9,
             (double)s->t_wait / 1e9, (double)s->t_busy[C_WRITE] / 1e9,
             (double)s->t_cpu[C_WRITE] / 1e9, (double)s->t_busy[C_HASH] / 1e9,
             (double)s->t_cpu[C_HASH] / 1e9);
    return s->err;
}

void cas__stage_free(cas_stage_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    if (!s->stop && !s->err)
        s->err = OX_ECANCELED; /* abort: consumers skip what is pending */
    pthread_mutex_unlock(&s->mu);
    stop_join(s);
    cas__bigbuf_free(s->mem, (size_t)STAGE_BUFS * STAGE_SIZE);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
