/* The store's tap: builds each committed blob's merkle tree and torrent record
 * from the leaf digests the store computes beside the blob's sha256, so a new
 * blob is ready to seed without a second read. Runs on the store's threads;
 * shares only the hub.
 *
 * The commit stores the torrent record; the leaves (2 MiB for 1 GiB) go with
 * the blob to the loop's inbox and are stored in the work pool when the blob
 * is seeded. Why: that index write took 22 ms on the commit's path, which
 * an upload's reply waits for. A crash in between costs a check of the file
 * when it is next seeded, never a wrong record. */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "swarm/merkle.h"
#include "swarm/swarm_int.h"
#include "swarm/torrent.h"

typedef struct tap_blob {
    swarm_hub_t *hub;
    merkle_t m;
} tap_blob_t;

static void hub_unref(swarm_hub_t *h)
{
    pthread_mutex_lock(&h->mu);
    int last = --h->refs == 0;
    pthread_mutex_unlock(&h->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&h->mu);
    for (size_t i = 0; i < h->n_inbox; i++)
        free(h->inbox[i].leaves);
    free(h->inbox);
    free(h);
}

static void *on_tap_open(void *ud, uint64_t size_hint)
{
    (void)size_hint;
    swarm_hub_t *h = ud;
    tap_blob_t *b = malloc(sizeof *b);
    if (!b)
        return NULL; /* the blob is then recorded lazily */
    merkle_init(&b->m);
    merkle_keep_leaves(&b->m);
    b->hub = h;
    pthread_mutex_lock(&h->mu);
    h->refs++;
    pthread_mutex_unlock(&h->mu);
    return b;
}

static void on_tap_leaf(void *st, const uint8_t leaf[32], uint32_t n)
{
    tap_blob_t *b = st;
    if (!b)
        return;
    merkle_feed_leaf(&b->m, leaf, n);
    pthread_mutex_lock(&b->hub->mu);
    b->hub->bytes_fed += n;
    pthread_mutex_unlock(&b->hub->mu);
}

/* Hands digest (and its leaves, taken on success) to the loop; 0 when the
 * swarm is gone or out of memory. */
static int inbox_push(swarm_hub_t *h, const char *digest, uint8_t *leaves, size_t n_leaves)
{
    int pushed = 0;
    pthread_mutex_lock(&h->mu);
    if (h->wake && h->n_inbox == h->cap_inbox) {
        size_t cap = h->cap_inbox ? h->cap_inbox * 2 : 16;
        void *p = realloc(h->inbox, cap * sizeof *h->inbox);
        if (p) {
            h->inbox = p;
            h->cap_inbox = cap;
        }
    }
    if (h->wake && h->n_inbox < h->cap_inbox) {
        swarm_inbox_item_t *it = &h->inbox[h->n_inbox++];
        snprintf(it->digest, sizeof it->digest, "%s", digest);
        it->leaves = leaves;
        it->n_leaves = n_leaves;
        uv_async_send(h->wake);
        pushed = 1;
    }
    pthread_mutex_unlock(&h->mu);
    return pushed;
}

static void on_tap_close(void *st, int ok, const char *digest, uint64_t size)
{
    tap_blob_t *b = st;
    if (!b)
        return;
    swarm_hub_t *h = b->hub;
    if (ok && size > 0 && b->m.size == size) {
        uint8_t *leaves = NULL;
        size_t n = 0;
        int rc = swarm__records_store(h->cas, digest, &b->m, NULL, &leaves, &n);
        if (!rc && !inbox_push(h, digest, leaves, n)) {
            /* no loop to seed it: the tree is stored now */
            rc = cas_meta_put(h->cas, SWARM_META_TREE, digest, leaves, n * 32);
            free(leaves);
        }
        if (rc)
            OX_WARN("swarm: no torrent record for %s: %s", digest, ox_strerror(rc));
    }
    merkle_free(&b->m);
    free(b);
    hub_unref(h);
}

int swarm__hub_new(cas_t *cas, uv_async_t *wake, swarm_hub_t **out)
{
    swarm_hub_t *h = calloc(1, sizeof *h);
    if (!h)
        return OX_ENOMEM;
    if (pthread_mutex_init(&h->mu, NULL) != 0) {
        free(h);
        return OX_ENOMEM;
    }
    h->cas = cas;
    h->wake = wake;
    h->refs = 1;
    h->tap.open = on_tap_open;
    h->tap.leaf = on_tap_leaf;
    h->tap.close = on_tap_close;
    h->tap.ud = h;
    *out = h;
    return 0;
}

void swarm__hub_drain(swarm_hub_t *h, swarm_inbox_item_t **out, size_t *n)
{
    pthread_mutex_lock(&h->mu);
    *out = h->inbox;
    *n = h->n_inbox;
    h->inbox = NULL;
    h->n_inbox = h->cap_inbox = 0;
    pthread_mutex_unlock(&h->mu);
}

uint64_t swarm__hub_bytes_fed(swarm_hub_t *h)
{
    pthread_mutex_lock(&h->mu);
    uint64_t v = h->bytes_fed;
    pthread_mutex_unlock(&h->mu);
    return v;
}

void swarm__hub_detach(swarm_hub_t *h)
{
    pthread_mutex_lock(&h->mu);
    h->wake = NULL;
    swarm_inbox_item_t *in = h->inbox;
    size_t n = h->n_inbox;
    h->inbox = NULL;
    h->n_inbox = h->cap_inbox = 0;
    pthread_mutex_unlock(&h->mu);
    /* blobs committed since the loop last looked: their trees are stored
     * now, as no seeding will */
    for (size_t i = 0; i < n; i++) {
        cas_meta_put(h->cas, SWARM_META_TREE, in[i].digest, in[i].leaves, in[i].n_leaves * 32);
        free(in[i].leaves);
    }
    free(in);
    hub_unref(h);
}
