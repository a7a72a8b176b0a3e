/* swarm internals shared by the files of the module; never included outside
 * swarm/. Loop-thread state except struct swarm_hub, which the store's tap
 * reaches from other threads under its mutex. */
#ifndef OX_SWARM_INT_H
#define OX_SWARM_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "common/curluv.h"
#include "swarm/engine.h"
#include "swarm/swarm.h"

/* The tap's link to a swarm. Outlives the swarm while a blob commit that
 * started before swarm_close still runs (refs). */
typedef struct swarm_inbox_item {
    char digest[72];
    uint8_t *leaves; /* the tree's leaves, not stored yet (malloc'd), or NULL */
    size_t n_leaves;
} swarm_inbox_item_t;

typedef struct swarm_hub {
    pthread_mutex_t mu;
    cas_tap_t tap;           /* what the store holds */
    cas_t *cas;
    uv_async_t *wake;        /* NULL once detached */
    swarm_inbox_item_t *inbox; /* committed blobs waiting to be seeded */
    size_t n_inbox, cap_inbox;
    int refs;                /* swarm + open tap states */
    uint64_t bytes_fed;      /* every byte the tap saw */
} swarm_hub_t;

int swarm__hub_new(cas_t *cas, uv_async_t *wake, swarm_hub_t **out);
/* Takes the inbox (malloc'd array, caller frees it and the leaves). */
void swarm__hub_drain(swarm_hub_t *h, swarm_inbox_item_t **out, size_t *n);
uint64_t swarm__hub_bytes_fed(swarm_hub_t *h);
/* Stops waking the loop and drops the swarm's reference. */
void swarm__hub_detach(swarm_hub_t *h);

/* Torrents in the engine. */
enum tor_state { TOR_PREPARING /* record computed in the work pool */, TOR_ADDING, TOR_ACTIVE,
                 TOR_REMOVING };
enum tor_role { TOR_SEED, TOR_FETCH };

typedef struct swarm_tor {
    struct swarm_tor *next;
    uint8_t ih[32];
    char digest[72];
    int role;
    int state;
    swarm_tstat_t st;
    uint64_t hash_failures;
    swarm_fetch_t *fetch;    /* role FETCH while the fetch runs */
    int adopted;             /* a fetch's torrent that became the seed */
    int reseed;              /* seed the blob afresh once it left the engine */
} swarm_tor_t;

/* Fetch lifecycle; moves are checked against a table in swarm.c. */
enum fetch_state {
    FETCH_ADDING,     /* engine add requested */
    FETCH_RUNNING,    /* downloading */
    FETCH_ADOPTING,   /* whole-file sha256 + commit in the work pool; the
                       * torrent stays in the engine, serving the file */
    FETCH_DONE,       /* done callback queued */
    FETCH_STATE_COUNT
};

struct swarm_fetch {
    struct swarm_fetch *next;
    swarm_t *s;
    swarm_tor_t *tor;        /* NULL once it left the engine */
    int state;
    int status;              /* result for done */
    char msg[256];
    char digest[72];
    char stage_dir[3800];
    char stage_file[4096];
    char resume_path[4096];
    uint64_t size;
    uint64_t last_done;
    int progressed;           /* progress reported at least once */
    char (*peers)[80];        /* holders */
    size_t n_peers;
    char (*cofetchers)[80];   /* swarm endpoints fetching the same blob */
    size_t n_cofetchers;
    /* striping (DESIGN 6): own share = pieces p with p % count == index */
    int stripe_index, stripe_count;
    size_t share_total, share_done; /* pieces of the own share */
    int blocking;             /* holders blocked: own share complete */
    int focused;              /* own share lags: co-fetchers throttled */
    uint64_t focus_cap;       /* their cap meanwhile, bytes/s */
    int block_over;           /* lifted for good (stall or done) */
    int64_t last_progress_ns; /* a piece or a byte count moved */
    int64_t last_connect_ns;  /* peers (re)connected */
    int64_t started_ns;
    int64_t traced_ns;        /* last timeline line in the debug log */
    /* milestones of the end of a fetch (0 = not reached), for the log */
    int64_t finished_ns;      /* every piece in */
    int64_t sync_ns;          /* adopt work: staged data flushed */
    int64_t adopted_ns;       /* adopt work: committed */
    int flushing;             /* a write-back request is in the work pool */
    int resume_busy;          /* resume data being written in the work pool */
    uint64_t flush_mark;      /* verified bytes when the last one was queued */
    /* behind.c: the staged file hashed while it downloads */
    cas_adopt_t *adopt;       /* hashed so far; NULL while a feed holds it */
    struct swarm_behind_req *behind; /* the feed in the work pool */
    uint8_t *have;            /* bit per piece that passed in this run */
    uint32_t n_pieces, prefix; /* pieces 0..prefix-1 have all passed */
    uint32_t pieces_in;       /* bits set in have */
    int64_t piece_report_ns;  /* fetch.c: last progress from pieces */
    uint64_t piece_len;
    int behind_off;           /* a feed failed: the commit reads it all */
    int behind_commit;        /* the commit waits for the feed in flight */
    /* rescue.c: helping a share that never left the holders */
    struct swarm_rescue_req *rescue_req; /* availability query in flight */
    uint8_t *rescued;         /* bit per piece asked for in a rescue */
    size_t *orphans;          /* per share, scratch of the last look */
    int rescuing;             /* holders drawn from again for it */
    int64_t rescue_ns;        /* last query */
    /* rescue_get.c: rescued pieces fetched by ranged GETs from holders */
    char (*holder_apis)[360]; /* holders' API addresses */
    size_t n_holder_apis;
    struct swarm_rescue_get *gets; /* in flight */
    size_t n_gets;
    int *get_queue;           /* pieces waiting for a GET */
    size_t n_queue;
    unsigned gets_sent;       /* spreads them over the holders */
    int get_failures;
    int gets_off;             /* too many failed: the holders are unblocked */
    uint8_t *handed;          /* bit per piece handed to the engine, unchecked */
    int *avail;               /* the last look's piece availability, or NULL */
    int avail_seeds;
    swarm_progress_cb progress;
    swarm_done_cb done;
    void *ud;
};

struct swarm {
    uv_loop_t *loop;
    cas_t *cas;
    swarm_config_t cfg;
    const swarm_engine_ops_t *ops;
    void *eng;
    uv_thread_t loop_thread;
    _Atomic int wake_ready;   /* read by engine threads in notify */
    uv_async_t wake;
    uv_timer_t timer;
    swarm_hub_t *hub;
    swarm_tor_t *tors;
    swarm_fetch_t *fetches;   /* running fetches */
    swarm_fetch_t *finished;  /* done callbacks to run on the next wake */
    char (*peers)[80];
    size_t n_peers, cap_peers;
    int listen_port;
    int pending_work;         /* uv_queue_work requests in flight */
    curluv_t *cu;             /* rescue_get.c: made at the first GET */
    int closing;
    int handles_open;
    int64_t last_resume_ns;
    uint64_t retired_up, retired_down; /* from torrents no longer in the engine */
    uint64_t total_up, total_down;     /* the session's own counts (TOTALS) */
    int have_totals;
    uint64_t hash_failures;
    char (*banned)[64];
    size_t n_banned;
    uint64_t thread_violations;        /* loop state touched off the loop thread */
    uint64_t stripe_blocks, stripe_stalls; /* stripe.c */
    uint64_t stripe_focus;             /* stripe.c: times a share lagged */
    uint64_t hashed_behind;            /* behind.c: bytes hashed while downloading */
    uint64_t stripe_rescued;           /* rescue.c: pieces taken for a starved share */
    uint64_t throttle_cap;             /* stripe.c: the engine's cap now */
    /* forget.c: blobs the store removed, queued by its hook (guarded by a
     * lock of forget.c, not the loop) */
    struct swarm *forget_next;
    char (*forget)[72];
    size_t n_forget, cap_forget;
    uint64_t forgotten;               /* seeds taken out for that (loop) */
    swarm_close_cb close_cb;
    void *close_ud;
    void *reap_token;
};

swarm_tor_t *swarm__tor_by_ih(swarm_t *s, const uint8_t ih[32]);
swarm_tor_t *swarm__tor_by_digest(swarm_t *s, const char *digest);
swarm_tor_t *swarm__tor_new(swarm_t *s, const char *digest, int role, int state);
/* Unlinks and frees t, keeping its byte counts in the totals. */
void swarm__tor_free(swarm_t *s, swarm_tor_t *t);
/* Takes t out of the engine (freed once the engine confirms). */
void swarm__tor_remove(swarm_t *s, swarm_tor_t *t);
/* Finishes swarm_close once no work is in flight. */
void swarm__maybe_finish_close(swarm_t *s);

/* fetch.c: engine events of a torrent that belongs to a fetch */
void swarm__fetch_on_added(swarm_fetch_t *f);
void swarm__fetch_on_finished(swarm_fetch_t *f);
void swarm__fetch_on_removed(swarm_fetch_t *f);
/* The engine reports an error for f's torrent: fails a running fetch; during
 * the commit only takes the torrent out. */
void swarm__fetch_on_error(swarm_fetch_t *f, const char *msg);
void swarm__fetch_on_state(swarm_fetch_t *f, const swarm_tstat_t *st);
/* After a PIECE (and behind.c's count of it): a progress report from the
 * pieces in, at most every 60 ms. May run the progress callback. */
void swarm__fetch_on_piece_progress(swarm_fetch_t *f);
void swarm__fetch_on_resume(swarm_fetch_t *f, const void *data, size_t len);
void swarm__fetch_fail(swarm_fetch_t *f, int status, const char *msg);
/* Starts write-back of what running fetches staged since the last call, so
 * the commit's fsync does not wait for the whole file (from the timer). */
void swarm__fetch_flush_behind(swarm_t *s);
/* Runs the done callbacks queued by fetch_finish (loop turn after). */
void swarm__fetch_run_finished(swarm_t *s);
void swarm__fetch_connect(swarm_fetch_t *f, const char *endpoint);
/* fetch.c: queues the commit of f (state ADOPTING), with what behind.c
 * hashed so far. */
void swarm__fetch_commit_now(swarm_fetch_t *f);
/* behind.c: hashing a fetch's file while it downloads. on_added sizes the
 * piece map; on_piece records a passed piece and feeds the new prefix; kick
 * feeds when the prefix is a step ahead; wait says 1 when the commit must
 * wait for a feed in flight (which then calls swarm__fetch_commit_now); take
 * hands the adoption (or NULL) to the commit; end drops it all (fetch over). */
typedef struct swarm_behind_req swarm_behind_req_t;
void swarm__behind_on_added(swarm_fetch_t *f, int n_pieces, uint64_t piece_len);
void swarm__behind_on_piece(swarm_fetch_t *f, int piece);
void swarm__behind_kick(swarm_fetch_t *f);
int swarm__behind_wait(swarm_fetch_t *f);
cas_adopt_t *swarm__behind_take(swarm_fetch_t *f);
void swarm__behind_end(swarm_fetch_t *f);
/* stripe.c: a piece of f passed its hash. */
void swarm__fetch_on_piece(swarm_fetch_t *f, int piece);
/* stripe.c: stall check and reconnects of running fetches, from the timer. */
void swarm__fetch_tick(swarm_t *s, int64_t now_ns);
/* stripe.c: whether a striped fetch's own share (pieces from the holders)
 * lags its progress overall (mostly from co-fetchers) enough that its link
 * should go to the holders first; `was` gives the hysteresis. Pure. */
int swarm__stripe_lagging(size_t share_done, size_t share_total, uint64_t done, uint64_t size,
                          int was);
/* stripe.c: puts the co-fetchers of every running fetch and of extra (may be
 * NULL) in the engine's throttled class, before extra's torrent is added. */
void swarm__stripe_classify(swarm_t *s, const swarm_fetch_t *extra);
/* stripe.c: stops blocking f's holders (fetch done, failed or stalled). */
void swarm__fetch_unblock(swarm_fetch_t *f);
/* stripe.c: blocks (on) or unblocks f's holders for now, unless lifted for
 * good; unblocking reconnects them. */
void swarm__fetch_set_blocking(swarm_fetch_t *f, int on);
/* rescue.c: the helper assigned to a piece of another fetcher's share: the
 * share's pieces dealt round-robin over the other indexes; -1 when not
 * striped. Pure. */
int swarm__rescue_helper(int piece, int count);
/* rescue.c: the pieces f should rescue now, given each piece's availability
 * (n entries, seeds counted in each) and f's pieces: of each lagging share,
 * the back half of its orphans (pieces no peer but the seeds has), those
 * dealt to f. orphans (stripe_count entries) receives the orphans per
 * share; out has room for n. Pure apart from reading f. */
void swarm__rescue_plan(swarm_fetch_t *f, const int *avail, size_t n, int seeds, size_t *orphans,
                        int *out, size_t *n_out);
/* rescue.c: queues an availability query once f's share is in (timer);
 * end drops the query and the state (fetch over). */
typedef struct swarm_rescue_req swarm_rescue_req_t;
void swarm__rescue_tick(swarm_fetch_t *f, int64_t now_ns);
void swarm__rescue_end(swarm_fetch_t *f);
/* rescue_get.c: queues ranged GETs of pieces (their rescued bits set) from
 * f's holders; OX_EUNSUPPORTED when f cannot (no holder API, no engine
 * add_piece, or too many GETs failed): the caller unblocks the holders. A
 * piece whose GET fails has its rescued bit cleared (the next look takes
 * it again). */
int swarm__rescue_get(swarm_fetch_t *f, const int *pieces, size_t n);
int swarm__rescue_get_usable(const swarm_fetch_t *f);
/* rescue_get.c: the engine's check of a piece (ok or not): one handed over
 * from a GET that fails counts as a failed GET, and the piece is asked for
 * again. */
void swarm__rescue_get_checked(swarm_fetch_t *f, int piece, int ok);
/* rescue_get.c: drops f's queue and GETs in flight (they end canceled). */
void swarm__rescue_get_end(swarm_fetch_t *f);
/* rescue_get.c: at swarm_close: closes the HTTP client (pending_work held
 * until it is gone). */
void swarm__rescue_get_close(swarm_t *s);

/* forget.c: registers the store's remove hook (attach, after the wake
 * handle is ready), unregisters it (detach, before the handle closes), and
 * takes removed blobs' seeds out of the engine (drain, on the loop). */
void swarm__forget_attach(swarm_t *s);
void swarm__forget_detach(swarm_t *s);
void swarm__forget_drain(swarm_t *s);

/* Counts a call on a thread other than the loop's (must never happen). */
void swarm__check_thread(swarm_t *s);
const char *swarm__fetch_state_name(int st);
char *swarm__status_json(swarm_t *s);

#endif
