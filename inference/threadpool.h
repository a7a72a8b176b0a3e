/* Persistent worker pool for the forward pass (internal to inference/).
 *
 * tp_run runs one function on every thread at once (the caller is thread 0)
 * and returns when all are done; inside it, tp_barrier separates the steps of
 * a computation, so a whole forward pass is one tp_run with barriers between
 * ops instead of one wake-up per op. Workers spin briefly for the next job
 * (decode issues jobs back to back), then sleep on a condition variable.
 *
 * A pool is driven by one thread at a time (the context that owns it). */
#ifndef OX_INFER_THREADPOOL_H
#define OX_INFER_THREADPOOL_H

typedef struct tp tp_t;
typedef void (*tp_fn)(void *arg, int ith, int nth);

/* n_threads >= 1 counts the caller. *out is owned by the caller (tp_free).
 * Returns 0, OX_EINVAL or OX_ENOMEM (no thread left running). */
int tp_create(int n_threads, tp_t **out);
/* Joins the workers and frees the pool; NULL is a no-op. */
void tp_free(tp_t *p);
int tp_size(const tp_t *p);
void tp_run(tp_t *p, tp_fn fn, void *arg);
/* Every thread of the running job must call it the same number of times. */
void tp_barrier(tp_t *p);

/* Split n items among nth threads: [*lo, *hi) for thread ith. */
static inline void tp_split(long n, int ith, int nth, long *lo, long *hi)
{
    long per = n / nth, rem = n % nth;
    *lo = ith * per + (ith < rem ? ith : rem);
    *hi = *lo + per + (ith < rem ? 1 : 0);
}

#endif
