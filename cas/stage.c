/* The ingest writer: a thread that writes an upload to its temp file while
 * the caller's thread hashes it.
 *
 * Why: on the disks we run on, write(2) through the page cache moves about
 * 0.5 GB/s while SHA-NI hashes about 1.4 GB/s, so a write-then-hash loop on
 * one thread runs at a third of `openssl dgst`. Here the caller copies each
 * buffer into 4096-aligned staging buffers (a memcpy, ~10 GB/s) and returns
 * to hashing; this thread writes full buffers with O_DIRECT when the file
 * system allows it (no page-cache copy, and the final fsync has little left
 * to flush), falling back to plain writes otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cas/cas_int.h"
#include "common/err.h"

#define STAGE_BUFS 4
#define STAGE_SIZE (8u << 20)
#define STAGE_ALIGN 4096u

enum { BUF_FREE, BUF_FILLING, BUF_FULL };

struct cas_stage {
    int fd;
    int direct; /* writer thread only */
    uint64_t off; /* writer thread only */
    pthread_t th;
    int running; /* th not yet joined */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *buf[STAGE_BUFS];
    size_t len[STAGE_BUFS];
    int state[STAGE_BUFS];
    int head;  /* next buffer the writer takes */
    int fill;  /* buffer the caller fills */
    int stop;
    int err;
    char *cur; /* caller: buf[fill] while FILLING, else NULL */
    size_t cur_len;
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
    return rc;
}

static void *on_stage_thread(void *arg)
{
    cas_stage_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (s->state[s->head] != BUF_FULL && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->state[s->head] != BUF_FULL)
            break;
        int h = s->head, skip = s->err != 0;
        pthread_mutex_unlock(&s->mu);
        int rc = skip ? 0 : write_block(s, s->buf[h], s->len[h]);
        pthread_mutex_lock(&s->mu);
        if (rc && !s->err)
            s->err = rc;
        s->state[h] = BUF_FREE;
        s->head = (h + 1) % STAGE_BUFS;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int cas__stage_open(int fd, int direct, cas_stage_t **out)
{
    cas_stage_t *s = calloc(1, sizeof *s);
    if (!s)
        return OX_ENOMEM;
    s->fd = fd;
    s->direct = direct;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->th, NULL, on_stage_thread, s) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return OX_ENOMEM;
    }
    s->running = 1;
    *out = s;
    return 0;
}

/* Hands the filling buffer to the writer. mu held. */
static void submit_locked(cas_stage_t *s)
{
    s->len[s->fill] = s->cur_len;
    s->state[s->fill] = BUF_FULL;
    s->fill = (s->fill + 1) % STAGE_BUFS;
    s->cur = NULL;
    s->cur_len = 0;
    pthread_cond_broadcast(&s->cv);
}

int cas__stage_write(cas_stage_t *s, const void *p, size_t n)
{
    const char *q = p;
    while (n) {
        if (!s->cur) {
            pthread_mutex_lock(&s->mu);
            while (s->state[s->fill] != BUF_FREE)
                pthread_cond_wait(&s->cv, &s->mu);
            int err = s->err;
            if (!err && !s->buf[s->fill]) {
                void *b = NULL;
                if (posix_memalign(&b, STAGE_ALIGN, STAGE_SIZE) != 0)
                    err = s->err = OX_ENOMEM;
                s->buf[s->fill] = b;
            }
            if (!err)
                s->state[s->fill] = BUF_FILLING;
            pthread_mutex_unlock(&s->mu);
            if (err)
                return err;
            s->cur = s->buf[s->fill];
        }
        size_t k = STAGE_SIZE - s->cur_len;
        if (k > n)
            k = n;
        memcpy(s->cur + s->cur_len, q, k);
        s->cur_len += k;
        q += k;
        n -= k;
        if (s->cur_len == STAGE_SIZE) {
            pthread_mutex_lock(&s->mu);
            submit_locked(s);
            pthread_mutex_unlock(&s->mu);
        }
    }
    return 0;
}

int cas__stage_finish(cas_stage_t *s)
{
    pthread_mutex_lock(&s->mu);
    if (s->cur && s->cur_len)
        submit_locked(s);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    s->running = 0;
    return s->err;
}

void cas__stage_free(cas_stage_t *s)
{
    if (!s)
        return;
    if (s->running) {
        pthread_mutex_lock(&s->mu);
        s->err = s->err ? s->err : OX_ECANCELED; /* abort: skip pending writes */
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
    }
    for (int i = 0; i < STAGE_BUFS; i++)
        free(s->buf[i]);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
