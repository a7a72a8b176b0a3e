/* swarm: every blob of the store is a BitTorrent v2 torrent that this node
 * seeds, and a missing blob can be fetched from the peers that hold it.
 *
 * Owns: one BitTorrent engine session (libtorrent, behind engine.h), the
 * per-blob records in the store's index (meta kinds "torrent": info-hash +
 * .torrent bytes, and "merkle": the 16 KiB leaf hashes, 0.2% of the blob,
 * given to the engine so a seed answers hash requests without reading the
 * blob), the staging dir <tmp>/swarm/ of fetches and their resume data.
 *
 * Promises:
 * - the torrent of a blob is a pure function of its bytes (single file
 *   "sha256-<hex>", v2 only, piece length from the size, no dates/creator):
 *   every holder serves the same torrent and the same info-hash;
 * - the record is computed in the same read that computes the blob's sha256
 *   (a tap on the store), for blobs created, uploaded, pulled or fetched;
 *   blobs found without one (an adopted Ollama dir) get it lazily in the work
 *   pool;
 * - every blob that enters the store while the swarm runs is seeded;
 * - a fetched blob is committed only through cas_blob_adopt (whole-file
 *   sha256 check); every 16 KiB block is checked against the merkle tree on
 *   the way in, and a peer that sends bad data is banned.
 *
 * Threads: every function here is for the loop thread only, and every
 * callback runs on the loop thread. The engine's own threads only wake the
 * loop (uv_async); the store's tap runs on whichever thread commits a blob and
 * touches nothing but its own per-blob state and a locked inbox. */
#ifndef OX_SWARM_H
#define OX_SWARM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cas/cas.h"

typedef struct swarm swarm_t;
typedef struct swarm_fetch swarm_fetch_t;

typedef struct swarm_config {
    char bind_ip[64];       /* own address for listening AND outgoing
                             * connections ("127.0.0.2"); "" = all */
    int port;               /* TCP port, also the DHT's UDP port; 0 = any */
    uint64_t max_upload;    /* bytes/s, 0 = unlimited (LAN peers included) */
    uint64_t max_download;  /* bytes/s, 0 = unlimited */
    int dht;                /* 1 = private DHT (no public bootstrap) */
    int verify_seeds;       /* 1 = the engine hashes each blob before seeding
                             * it (one read per blob per start); 0 = trust the
                             * store's check and hand the engine the merkle
                             * tree kept at commit (no read at all) */
    int update_ms;          /* progress period, default 500 */
    int resume_ms;          /* resume data period for fetches, default 3000 */
    int idle_timeout_ms;    /* a fetch that gets no new verified byte for
                             * this long ends with OX_ETIMEOUT (every holder
                             * gone), default SWARM_IDLE_TIMEOUT_MS */
} swarm_config_t;

#define SWARM_IDLE_TIMEOUT_MS 30000

/* Defaults: all interfaces, any port, no caps, DHT on, seed mode. */
void swarm_config_init(swarm_config_t *cfg);

/* Parses a rate (the meaning of OLLAMAX_MAX_UPLOAD/DOWNLOAD): "0" / "" /
 * "unlimited" = 0; else a number of bytes/s (fractions allowed) with an
 * optional unit, case-insensitive, optionally followed by "/s": k M G T (also
 * kB MB ...) are powers of 1000, Ki Mi Gi Ti (KiB ...) powers of 1024, bit
 * kbit mbit gbit (also bps kbps mbps gbps) are bits/s in powers of 1000 as in
 * tc. "12M" = 12000000, "512Ki" = 524288, "100mbit" = 12500000.
 * OX_EINVAL on anything else (a sign, nan, inf, hex, overflow, a nonzero
 * rate under 1 byte/s, an unknown unit, trailing text). */
int swarm_rate_parse(const char *s, uint64_t *bytes_per_s);

/* Parses "ip:port" or "[v6]:port" into ip (NUL-terminated) and port. */
int swarm_endpoint_parse(const char *s, char *ip, size_t ipcap, int *port);

/* Starts the engine and installs the store's tap (cas_set_tap). loop and cas
 * are borrowed and must outlive the swarm; cfg is copied. Listening begins
 * asynchronously (swarm_listen_port is 0 until it has). On failure nothing is
 * left behind and err gets words. *out is closed with swarm_close. */
int swarm_new(uv_loop_t *loop, cas_t *cas, const swarm_config_t *cfg, swarm_t **out, char *err,
              size_t errlen);

typedef void (*swarm_close_cb)(swarm_t *s, void *ud);
/* Removes the tap, cancels fetches (their done callbacks run with
 * OX_ECANCELED; staged data and resume data stay for a later resume), stops
 * the engine without blocking the loop and frees s; cb (may be NULL) runs
 * when everything is released (s is freed after cb returns). The store must
 * not be closed before cb. */
void swarm_close(swarm_t *s, swarm_close_cb cb, void *ud);

/* Seeds every blob of the store (records computed in the work pool where
 * missing). Returns at once; the count of blobs queued, or a negative code. */
int swarm_seed_all(swarm_t *s);
/* Seeds one present blob (idempotent). OX_ENOTFOUND if it is absent. */
int swarm_seed_blob(swarm_t *s, const char *digest);

/* The .torrent bytes of a blob (for GET /api/swarm/torrents/<digest>).
 * *bytes is malloc'd, the caller frees. OX_ENOTFOUND when the blob is absent;
 * OX_EBUSY when present but its record is still being computed (retry). */
int swarm_torrent_get(swarm_t *s, const char *digest, void **bytes, size_t *len);

/* Progress with real byte counts: done = bytes of the file verified so far. */
typedef void (*swarm_progress_cb)(swarm_fetch_t *f, uint64_t done, uint64_t total, void *ud);
/* Runs once per started fetch: status 0 when the blob is committed to the
 * store (and seeded), else a negative code and words in msg (OX_ETIMEOUT:
 * no progress from any peer for cfg.idle_timeout_ms). f is freed
 * when it returns. */
typedef void (*swarm_done_cb)(swarm_fetch_t *f, int status, const char *msg, void *ud);

typedef struct swarm_fetch_opts {
    /* Striping (DESIGN 6): when stripe_count > 1, this fetcher first takes
     * the pieces p with p % stripe_count == stripe_index, and once those are
     * all in it stops drawing from the holders (the `peers` of
     * swarm_fetch_start: their addresses are blocked for the whole engine)
     * so that their upload goes to fetchers still missing their share. The
     * block is lifted when the fetch ends, or when it makes no progress for
     * SWARM_STALL_MS (co-fetchers that are not really fetching cost time,
     * never completion). 0/0 = off (swarm_stripe_assign computes both). */
    int stripe_index, stripe_count;
    /* Swarm endpoints "ip:port" of nodes fetching the same blob at once
     * (borrowed for the call, copied): connected directly and reconnected
     * until they are peers, instead of waiting for peer exchange. */
    const char *const *cofetchers;
    size_t n_cofetchers;
    /* API addresses "host:port" of holders (borrowed, copied): a share that
     * never left them is rescued by ranged GETs of their registry endpoint
     * (/v2/.../blobs/<digest>), each piece handed to the engine, which
     * checks it; the holders stay blocked meanwhile. Without them, or after
     * failed GETs, the holders are unblocked for the rescue instead. */
    const char *const *holder_apis;
    size_t n_holder_apis;
    /* The blob's size as the manifest gives it; a torrent of another size
     * is refused (OX_EINVAL) before a byte is staged. 0 = not known. */
    uint64_t size;
} swarm_fetch_opts_t;

#define SWARM_STALL_MS 2000

/* The stripe of `self` among the nodes fetching one blob at once: K = the
 * distinct endpoints of cofetchers plus self, index = self's rank in their
 * byte-wise sorted order, so every fetcher that knows the same set derives
 * the same assignment. self may appear in cofetchers. *count = 0 and
 * *index = 0 (striping off) when K < 2. OX_EINVAL on a NULL or empty self
 * or a NULL entry. Pure; nothing is kept. */
int swarm_stripe_assign(const char *self, const char *const *cofetchers, size_t n, int *index,
                        int *count);

/* This node's swarm endpoint "ip:port" as peers see it: the bind address and
 * the listening port. OX_ESTATE when bound to every interface (no single
 * address to tell) or not listening yet. */
int swarm_self_endpoint(const swarm_t *s, char *out, size_t cap);

/* Fetches digest from the swarm. torrent (copied) is the bytes a holder
 * served from GET /api/swarm/torrents/<digest>; it must describe exactly
 * "sha256-<hex>" of digest. peers (copied, may be empty) are swarm endpoints
 * "ip:port" of holders, connected directly; known peers (swarm_add_peer) and
 * the DHT are used too. Data is staged under <tmp>/swarm/ and resumes from
 * what was already verified after a restart. opts and progress may be NULL.
 * Errors found now are returned (and done never runs): OX_EINVAL (bad
 * digest, torrent or peer), OX_EEXIST (blob present), OX_EBUSY (a fetch of it
 * runs). *out (may be NULL) is valid until done has returned. */
int swarm_fetch_start(swarm_t *s, const char *digest, const void *torrent, size_t len,
                      const char *const *peers, size_t n_peers, const swarm_fetch_opts_t *opts,
                      swarm_progress_cb progress, swarm_done_cb done, void *ud,
                      swarm_fetch_t **out);
/* Stops a fetch; done runs on a later loop turn with OX_ECANCELED unless it
 * already completed. Staged data is kept for a later resume. */
void swarm_fetch_cancel(swarm_fetch_t *f);
const char *swarm_fetch_digest(const swarm_fetch_t *f);

/* Adds a peer's swarm endpoint "ip:port": a DHT node and a direct
 * connection for every running fetch (and later ones). Copied. */
int swarm_add_peer(swarm_t *s, const char *endpoint);

/* Status for GET /api/swarm/status as a malloc'd JSON object text (caller
 * frees): state, engine, listen_port, bind, peers, bytes_up, bytes_down,
 * up_rate, down_rate, hash_failures, banned (peers), tap_bytes, and per
 * torrent: digest, info_hash, role (seed|fetch), state, size, done,
 * uploaded, downloaded, up_rate, down_rate, peers, hash_failures. */
char *swarm_status(swarm_t *s);

/* Changes the caps (bytes/s, 0 = unlimited) at run time. */
int swarm_set_rates(swarm_t *s, uint64_t max_upload, uint64_t max_download);

/* The TCP port the engine listens on, 0 until it listens. */
int swarm_listen_port(const swarm_t *s);

#endif
