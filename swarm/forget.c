/* Blobs the store removed stop being seeded: the store's remove hook (any
 * thread) queues the digest and wakes the loop, which takes the blob's seed
 * out of the engine, so peers are no longer told we hold it.
 *
 * The store may still be inside a hook call after the swarm unset the hook
 * and went away, so the hook never trusts its ud: it only names a swarm,
 * looked up under one process-wide lock in the list of swarms alive. A new
 * swarm at a reused address may get a stray digest; the loop checks the
 * store before removing anything, so that only costs a stat. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "swarm/swarm_int.h"

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static swarm_t *live; /* linked by forget_next */

static swarm_t *live_find(const void *ud)
{
    for (swarm_t *s = live; s; s = s->forget_next)
        if ((const void *)s == ud)
            return s;
    return NULL;
}

static void on_store_removed(void *ud, const char *digest)
{
    pthread_mutex_lock(&live_mu);
    swarm_t *s = live_find(ud);
    if (s && s->n_forget == s->cap_forget) {
        size_t cap = s->cap_forget ? s->cap_forget * 2 : 8;
        void *p = realloc(s->forget, cap * sizeof *s->forget);
        if (p) {
            s->forget = p;
            s->cap_forget = cap;
        }
    }
    if (s && s->n_forget < s->cap_forget) {
        snprintf(s->forget[s->n_forget++], sizeof *s->forget, "%s", digest);
        uv_async_send(&s->wake);
    } else if (s) {
        OX_WARN("swarm: out of memory; %s stays seeded until restart", digest);
    }
    pthread_mutex_unlock(&live_mu);
}

void swarm__forget_attach(swarm_t *s)
{
    pthread_mutex_lock(&live_mu);
    s->forget_next = live;
    live = s;
    pthread_mutex_unlock(&live_mu);
    cas_set_remove_hook(s->cas, on_store_removed, s);
}

void swarm__forget_detach(swarm_t *s)
{
    cas_set_remove_hook(s->cas, NULL, NULL);
    pthread_mutex_lock(&live_mu);
    for (swarm_t **pp = &live; *pp; pp = &(*pp)->forget_next) {
        if (*pp == s) {
            *pp = s->forget_next;
            break;
        }
    }
    free(s->forget);
    s->forget = NULL;
    s->n_forget = s->cap_forget = 0;
    pthread_mutex_unlock(&live_mu);
}

void swarm__forget_drain(swarm_t *s)
{
    pthread_mutex_lock(&live_mu);
    char (*d)[72] = s->forget;
    size_t n = s->n_forget;
    s->forget = NULL;
    s->n_forget = s->cap_forget = 0;
    pthread_mutex_unlock(&live_mu);
    for (size_t i = 0; i < n && !s->closing; i++) {
        uint64_t size;
        if (cas_blob_stat(s->cas, d[i], &size) == 0)
            continue; /* added again meanwhile (or a stray digest) */
        swarm_tor_t *t = swarm__tor_by_digest(s, d[i]);
        /* a fetch's torrent belongs to the fetch (its blob is not in the
         * store yet, whatever was removed) */
        if (!t || t->fetch || t->role != TOR_SEED)
            continue;
        OX_INFO("swarm: %s left the store; no longer seeded", d[i]);
        s->forgotten++;
        swarm__tor_remove(s, t);
    }
    free(d);
}
