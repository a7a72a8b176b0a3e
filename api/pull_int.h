/* Internals shared by pull.c (the request, manifest, auth, manifest write)
 * and pull_blob.c (one blob's resumable parallel download). Not part of the
 * api module's contract. Loop-thread only.
 *
 * A pull goes MANIFEST -> BLOBS (one blob at a time, parts in parallel) ->
 * WRITE -> done. It holds the HTTP request until it finishes it, then waits
 * for its handles and work items before freeing itself. */
#ifndef OX_API_PULL_INT_H
#define OX_API_PULL_INT_H

#include "api/pull.h"
#include "common/buf.h"
#include "common/curluv.h"

typedef struct pull pull_t;

typedef struct pull_xfer {
    pull_t *pl;
    size_t part;           /* index into pl->parts */
    curluv_req_t *req;     /* NULL when not running */
    int checked;           /* response status checked */
    int tries;             /* failed attempts in a row without progress */
    uint64_t done_at_start;/* part->done when this attempt began */
    int retry_pending;     /* waiting for retry_at (loop ms) */
    uint64_t retry_at;
} pull_xfer_t;

struct pull {
    node_t *node;
    http_req_t *req;        /* NULL once finished */
    int stream;
    int insecure;
    int finished;           /* the HTTP request has been answered */
    int refs;               /* handles being closed + work items in flight + 1 */
    cas_name_t name;
    char base[1024];        /* registry base URL ".../v2/ns/model/"; a peer's
                             * when the manifest came from one */
    /* peers asked for the manifest before the registry (pull.c) */
    char mf_peers[8][360];
    size_t n_mf_peers;
    size_t mf_try;          /* == n_mf_peers: the registry's turn */
    int mf_reg_first;       /* the tag is here: the registry first (an update) */
    int mf_reg_done;        /* ... and it could not give it (mf_err says why) */
    char mf_err[300];
    char *token;            /* bearer token or NULL */
    int auth_tried;
    curluv_t *cu;
    uv_timer_t tick;        /* progress lines */
    uv_timer_t wait;        /* lock retry, part retry */
    ox_buf_t body;          /* manifest / token response */
    char *manifest;
    size_t manifest_len;
    cas_manifest_t mf;
    int have_mf;
    /* blobs in pull order: layers, then the config */
    cas_layer_t *blobs;
    size_t n_blobs;
    size_t cur;
    /* the current blob's download */
    int fd;                 /* partial file, flock'ed; -1 when none */
    char partial[1024];
    char sidecar[1100];
    char blob_url[2048];
    int blob_url_same_host; /* send the token there */
    pull_part_t *parts;
    size_t n_parts;
    pull_xfer_t *xfers;     /* one per part */
    size_t running;
    uint64_t unsynced;      /* bytes written since the last checkpoint began */
    uint64_t last_ckpt_ms;  /* loop time of the last checkpoint */
    int ckpt_running;
    int ckpt_again;
    int finishing_blob;     /* all parts done, waiting for the checkpoint */
    uint64_t last_completed;
    int reported;
    int probe_rounds;       /* pull_swarm.c: rounds asked again for a busy holder */
    /* the current blob's swarm fetch (pull_swarm.c), NULL when none; cancelled
     * by pull_end, cleared by its done callback (which holds a pull_ref) */
    struct swarm_fetch *swarm_fetch;
};

/* Sends one status line (streaming only; ignored otherwise). obj is stolen. */
void pull_line(pull_t *pl, json_t *obj);
/* Progress line for the current blob. */
void pull_progress_line(pull_t *pl, uint64_t total, uint64_t completed);
/* Ends the pull with an error message (500 when not streaming). */
void pull_fail(pull_t *pl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Header list with the token (when send_token) and the user agent; the
 * strings live in hdrs until the next call. */
const char *const *pull_headers(pull_t *pl, int send_token, const char *extra);
/* Moves to the next blob, or to verifying and writing when all are here. */
void pull_next_blob(pull_t *pl);
/* Starts (or resumes) the download of pl->blobs[pl->cur] (pull_blob.c). */
void pull_blob_start(pull_t *pl);
/* Downloads the current blob from the registry over HTTP (pull_blob.c). */
void pull_blob_locate(pull_t *pl);
/* Fetches the current blob through the swarm when a peer holds it, else
 * falls back to pull_blob_locate (pull_swarm.c). */
void pull_swarm_start(pull_t *pl);
/* Drops the current blob's state (closes the partial fd, keeps the file). */
void pull_blob_release(pull_t *pl);
/* Runs the 401 dance: fetch a token for the challenge in r and then call
 * then(pl) (pull.c). Returns 0 when started; otherwise the caller fails. */
int pull_auth_start(pull_t *pl, curluv_req_t *r, void (*then)(pull_t *pl));
/* Reference counting for deferred frees (handles, uv_work). */
void pull_ref(pull_t *pl);
void pull_unref(pull_t *pl);
/* Appends the API addresses ("host:port") of the configured peers
 * (OLLAMAX_PEERS) to out[n..cap), in order, skipping any already there;
 * returns the new count (pull_swarm.c). */
size_t pull_peer_apis(const node_t *node, char out[][360], size_t n, size_t cap);
/* Part size bounds (OLLAMAX_PULL_PART_MIN overrides the minimum, for tests). */
uint64_t pull_part_min(void);

#endif
