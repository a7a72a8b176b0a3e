/* engine: the BitTorrent engine behind a table of function pointers (in the
 * manner of curl's TLS backends). swarm.c holds every policy decision; an
 * engine only translates. The one engine today is libtorrent (lt_shim.cpp).
 *
 * Threads: every entry is called on the loop thread, except `notify`, which
 * the engine calls from its own threads and which must only wake the loop.
 * Torrents are named by their 32-byte v2 info-hash. Internal to swarm/. */
#ifndef OX_SWARM_ENGINE_H
#define OX_SWARM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

typedef struct swarm_engine_cfg {
    const char *bind_ip;      /* listen and outgoing address, e.g. "127.0.0.2" */
    int port;                 /* TCP + DHT (UDP) port; 0 = any */
    uint64_t max_upload;      /* bytes/s, 0 = unlimited */
    uint64_t max_download;
    int dht;                  /* run the (private) DHT */
} swarm_engine_cfg_t;

enum swarm_ev_type {
    SWARM_EV_LISTEN,       /* port */
    SWARM_EV_LISTEN_FAILED,/* msg */
    SWARM_EV_ADDED,        /* ih, piece = the torrent's number of pieces,
                            * len = its piece length, st.size its file's */
    SWARM_EV_ADD_FAILED,   /* ih, msg */
    SWARM_EV_CHECKED,      /* ih: files checked (resume / verify) */
    SWARM_EV_FINISHED,     /* ih: every wanted piece passed its hash */
    SWARM_EV_REMOVED,      /* ih */
    SWARM_EV_HASH_FAILED,  /* ih, piece */
    SWARM_EV_PEER_BANNED,  /* ih, peer */
    SWARM_EV_RESUME_DATA,  /* ih, data/len (valid during the callback) */
    SWARM_EV_ERROR,        /* ih, msg */
    SWARM_EV_STATE,        /* ih, st */
    SWARM_EV_PIECE,        /* ih, piece: a downloaded piece passed its hash */
    SWARM_EV_TOTALS,       /* st.uploaded, st.downloaded: payload bytes of the
                            * whole session, counted as they pass (a
                            * torrent's own counts trail by up to a second
                            * and lose the last of a closed connection) */
};

typedef struct swarm_tstat {
    uint64_t done;          /* verified bytes of the file */
    uint64_t size;          /* file size */
    uint64_t uploaded;      /* payload bytes, since added */
    uint64_t downloaded;
    uint64_t up_rate, down_rate; /* payload bytes/s */
    int peers, seeds;
    int seeding;
    int checking;
} swarm_tstat_t;

typedef struct swarm_ev {
    int type;
    uint8_t ih[32];
    int port;
    int piece;
    char peer[64];         /* "ip:port" */
    const void *data;
    size_t len;
    swarm_tstat_t st;
    char msg[256];
} swarm_ev_t;

typedef void (*swarm_ev_cb)(void *ud, const swarm_ev_t *ev);

enum {
    SWARM_ADD_SEED = 1,     /* the file is complete (the store checked it) */
    SWARM_ADD_VERIFY = 2,   /* with SEED: hash the file before seeding */
    SWARM_ADD_INORDER = 4,  /* download pieces in file order (priorities first) */
    SWARM_ADD_FRESH = 8,    /* not SEED: the file was just made and holds
                             * nothing, so the engine need not look at it */
};

/* A striped fetcher's priority (1..7) for piece p of np, its share being
 * the pieces p % count == index: its own share first, by quarters (7 down to
 * 4: within one priority the engine picks at random among equally rare
 * pieces, so the owner works on one quarter at a time and helpers rescuing
 * a lagging share from its back (rescue.c) meet it late); the rest in three
 * bands, 3 to 1 from the front, so the file fills from the front and its
 * sha256 can be taken while it downloads (behind.c: the fan-out bench's
 * commits waited 0.5 s for it, then 0.05-0.25 s). The engine weighs
 * priority against rarity, so pieces still come rarest first within a band.
 * Policy, kept here so that the engine only applies it at the add. */
static inline int swarm_stripe_prio(int p, int np, int index, int count)
{
    if (p % count == index) {
        int own = (np - index + count - 1) / count;
        return 7 - 4 * (p / count) / own;
    }
    return 1 + 3 * (np - 1 - p) / np;
}

typedef struct swarm_add {
    const void *torrent;      /* .torrent bytes */
    size_t len;
    const char *save_path;    /* directory holding (or to hold) the file */
    unsigned flags;           /* SWARM_ADD_* */
    const void *resume;       /* engine resume data from RESUME_DATA, or NULL */
    size_t rlen;
    const uint8_t *prio;      /* one priority 0..7 per piece, or NULL */
    size_t n_prio;
    int stripe_index;         /* with stripe_count > 1 and no prio: pieces p */
    int stripe_count;         /* with p % count == index first, the rest later */
    const uint8_t *tree;      /* SEED: the file's whole merkle tree
                               * (merkle_tree_build), or NULL */
    size_t n_tree;            /* nodes */
} swarm_add_t;

enum { SWARM_CAP_DHT = 1, SWARM_CAP_RESUME = 2, SWARM_CAP_TEST = 4 };

typedef struct swarm_engine_ops {
    const char *name;
    unsigned caps;
    /* Starts a session. notify(ud) is called from engine threads when events
     * are pending (wake the loop, nothing else). *eng is owned by the caller
     * until shutdown. err gets words on failure. */
    int (*open)(const swarm_engine_cfg_t *cfg, void (*notify)(void *), void *ud, void **eng,
                char *err, size_t errlen);
    /* Stops notifications and starts an orderly stop; returns a token that
     * reap must be given (reap blocks until the engine's threads are gone:
     * call it in the work pool). eng is invalid afterwards. */
    void *(*shutdown)(void *eng);
    void (*reap)(void *token);
    /* Checks torrent bytes: v2 info-hash, file name and size. */
    int (*inspect)(const void *torrent, size_t len, uint8_t ih[32], char *name, size_t namecap,
                   uint64_t *size, char *err, size_t errlen);
    /* Adds a torrent (asynchronously: ADDED or ADD_FAILED follows). Copies
     * everything in a. */
    int (*add)(void *eng, const struct swarm_add *a, char *err, size_t errlen);
    /* Removes a torrent, never its files. REMOVED follows. */
    int (*remove)(void *eng, const uint8_t ih[32]);
    int (*connect_peer)(void *eng, const uint8_t ih[32], const char *ip, int port);
    int (*add_dht_node)(void *eng, const char *ip, int port);
    /* Replaces the set of addresses the engine neither connects to nor
     * accepts (every torrent; established connections to them are closed).
     * ips are borrowed for the call; n = 0 lifts every block. */
    int (*set_blocked)(void *eng, const char *const *ips, size_t n);
    int (*set_rates)(void *eng, uint64_t up, uint64_t down);
    /* Announces a torrent on the DHT now (not at the next interval). */
    int (*announce)(void *eng, const uint8_t ih[32]);
    /* Asks for STATE events of every torrent and a TOTALS event. */
    int (*post_updates)(void *eng);
    /* Asks for a RESUME_DATA event of one torrent. */
    int (*save_resume)(void *eng, const uint8_t ih[32]);
    /* Delivers every pending event to cb, on the calling thread. */
    void (*poll)(void *eng, swarm_ev_cb cb, void *ud);
    int (*listen_port)(void *eng);
    /* Test only (SWARM_CAP_TEST): torrent made by the engine itself for the
     * file at path with piece_len; *out is malloc'd (caller frees). */
    int (*make_torrent)(const char *path, uint64_t piece_len, void **out, size_t *len,
                        uint8_t ih[32]);
    /* Points a complete torrent at save_path, where the caller already moved
     * its file (nothing is copied; a source that is gone is fine). The
     * torrent stays in the engine with its peers. A later failure comes as
     * SWARM_EV_ERROR. NULL when the engine cannot. */
    int (*relocate)(void *eng, const uint8_t ih[32], const char *save_path);
    /* Peers at these addresses form the throttled class (connections made
     * from now on; ips borrowed for the call; n = 0 empties it), whose
     * download set_throttle caps. NULL when the engine cannot. */
    int (*set_throttled)(void *eng, const char *const *ips, size_t n);
    /* Caps the download from the throttled class, bytes/s; 0 lifts the cap. */
    int (*set_throttle)(void *eng, uint64_t down);
    /* How many connected peers have each piece (avail[0..n), seeds counted
     * in every entry) and how many of them are seeds. Blocking: call it in
     * the work pool, never on the loop. Returns the count filled. NULL when
     * the engine cannot. */
    int (*piece_avail)(void *eng, const uint8_t ih[32], int *avail, size_t n, int *seeds);
    /* Sets the priority (0..7) of the given pieces of a torrent. */
    int (*set_piece_prio)(void *eng, const uint8_t ih[32], const int *pieces, size_t n,
                          int prio);
    /* Hands the engine a piece got some other way (data copied). len must
     * be the torrent's piece length, the engine reads that many bytes: the
     * last piece is padded with zeros past the file's end. It is checked like a piece from a peer: PIECE or
     * HASH_FAILED follows; a piece the torrent has already is dropped.
     * Never blocks. NULL when the engine cannot. */
    int (*add_piece)(void *eng, const uint8_t ih[32], int piece, const void *data, size_t len);
} swarm_engine_ops_t;

extern const swarm_engine_ops_t swarm_engine_libtorrent;

#endif
