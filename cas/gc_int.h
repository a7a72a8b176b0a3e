/* Store internals of blob removal, the remove hook and gc; included by
 * cas/store.c, cas/gc.c and cas/models.c only.
 *
 * cas_open allocates a cas_full_t whose first member is the struct cas every
 * other file sees, so these fields live beside it without changing
 * cas_int.h. */
#ifndef OX_CAS_GC_INT_H
#define OX_CAS_GC_INT_H

#include "cas/cas_int.h"

typedef struct cas_full {
    struct cas c;            /* first: a cas_t * points at its cas_full_t */
    cas_remove_fn remove_fn; /* under c.mu */
    void *remove_ud;
    /* Blobs removed under c.mu and not yet reported (fsync of blobs/, the
     * hook): cas__unlock hands them over once the lock is released. */
    char (*removed)[65];
    size_t n_removed, cap_removed;
} cas_full_t;

static inline cas_full_t *cas__full(cas_t *c) { return (cas_full_t *)c; }

/* Notes that blob hex was unlinked (mu held). */
void cas__removed_note(cas_t *c, const char *hex);
/* Releases mu, then, when blobs were removed under it, fsyncs blobs/ once
 * and calls the remove hook for each (on this thread, outside the lock).
 * Every path that may remove a blob unlocks with this. */
void cas__unlock(cas_t *c);

/* gc.c: removes tmp/ leftovers of finished work (see cas_gc). Takes no
 * lock: only stats blobs. */
void cas__tmp_clean_finished(cas_t *c);

#endif
