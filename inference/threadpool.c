/* Persistent workers with a generation counter and a spin/sleep wait. */
#include "inference/threadpool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/err.h"

/* Spins before a worker sleeps between jobs: under a millisecond, long
 * enough to cover the gap between two decode steps. */
#define TP_SPIN_IDLE 20000
/* Spins before a thread sleeps at a barrier (tens of microseconds). Sleeping
 * in the kernel rather than yielding matters when the machine is
 * oversubscribed: the thread we wait for may be queued behind us. */
#define TP_SPIN_BARRIER 3000

struct tp;
typedef struct tp_worker {
    struct tp *pool;
    int ith;
    pthread_t thread;
} tp_worker_t;

struct tp {
    int n;
    tp_worker_t *workers; /* n - 1 */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;
    atomic_int n_sleeping;
    atomic_int n_done;
    atomic_int stop;
    tp_fn fn;
    void *arg;
    atomic_int bar_count;
    atomic_uint bar_phase;
    atomic_int bar_sleepers;
    atomic_int done_sleepers;
};

static void futex_wait(void *addr, unsigned val)
{
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(void *addr)
{
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *on_worker(void *arg)
{
    tp_worker_t *w = arg;
    tp_t *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop)) {
            if (++spins < TP_SPIN_IDLE) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->n_sleeping, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->n_sleeping, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->stop))
            break;
        seen = g;
        p->fn(p->arg, w->ith, p->n);
        if (atomic_fetch_add(&p->n_done, 1) == p->n - 2 && atomic_load(&p->done_sleepers))
            futex_wake(&p->n_done);
    }
    return NULL;
}

int tp_create(int n_threads, tp_t **out)
{
    if (n_threads < 1 || n_threads > 1024)
        return OX_EINVAL;
    tp_t *p = calloc(1, sizeof *p);
    if (!p)
        return OX_ENOMEM;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->workers) {
        tp_free(p);
        return OX_ENOMEM;
    }
    for (int i = 1; i < n_threads; i++) {
        tp_worker_t *w = &p->workers[i - 1];
        w->pool = p;
        w->ith = i;
        if (pthread_create(&w->thread, NULL, on_worker, w) != 0) {
            p->n = i; /* join the ones started */
            tp_free(p);
            return OX_ENOMEM;
        }
    }
    *out = p;
    return 0;
}

void tp_free(tp_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (p->workers)
        for (int i = 1; i < p->n; i++)
            pthread_join(p->workers[i - 1].thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
}

int tp_size(const tp_t *p)
{
    return p->n;
}

void tp_run(tp_t *p, tp_fn fn, void *arg)
{
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->n_done, 0);
    atomic_store(&p->bar_count, 0);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: pairs with n_sleeping below */
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    int spins = 0, d;
    while ((d = atomic_load(&p->n_done)) != p->n - 1) {
        if (++spins < TP_SPIN_BARRIER) {
            cpu_relax();
            continue;
        }
        atomic_fetch_add(&p->done_sleepers, 1);
        futex_wait(&p->n_done, (unsigned)d);
        atomic_fetch_sub(&p->done_sleepers, 1);
    }
}

void tp_barrier(tp_t *p)
{
    if (p->n == 1)
        return;
    unsigned phase = atomic_load(&p->bar_phase);
    if (atomic_fetch_add(&p->bar_count, 1) == p->n - 1) {
        atomic_store(&p->bar_count, 0);
        atomic_fetch_add(&p->bar_phase, 1); /* seq_cst: pairs with bar_sleepers */
        if (atomic_load(&p->bar_sleepers))
            futex_wake(&p->bar_phase);
        return;
    }
    int spins = 0;
    while (atomic_load(&p->bar_phase) == phase) {
        if (++spins < TP_SPIN_BARRIER) {
            cpu_relax();
            continue;
        }
        /* returns at once if the phase moved after our check */
        atomic_fetch_add(&p->bar_sleepers, 1);
        futex_wait(&p->bar_phase, phase);
        atomic_fetch_sub(&p->bar_sleepers, 1);
    }
}
