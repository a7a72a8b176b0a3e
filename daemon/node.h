/* The node: one running ollamax daemon.
 *
 * Owns the libuv loop's modules and their configuration: the store, the HTTP
 * API, the swarm, the inference runner. There is no global mutable state;
 * everything a handler needs hangs off the node. Loop-thread only. */
#ifndef OX_DAEMON_NODE_H
#define OX_DAEMON_NODE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cas/cas.h"

typedef struct node_config {
    char home[1024];        /* OLLAMAX_HOME, default ~/.ollamax */
    char models[1024];      /* OLLAMAX_MODELS | OLLAMA_MODELS, default home/models */
    char host[256];         /* listen address from OLLAMAX_HOST | OLLAMA_HOST */
    int port;               /* default 11434 */
    char origins[1024];     /* OLLAMA_ORIGINS, comma-separated extra CORS origins */
    char peers[4096];       /* OLLAMAX_PEERS, comma-separated API addresses */
    char registry[512];     /* OLLAMAX_REGISTRY: "scheme://host[:port]" standing in
                             * for https://registry.ollama.ai (a mirror); "" = it */
    uint64_t max_upload;    /* bytes/s, 0 = unlimited (OLLAMAX_MAX_UPLOAD) */
    uint64_t max_download;  /* bytes/s, 0 = unlimited (OLLAMAX_MAX_DOWNLOAD) */
    int64_t keep_alive_ns;  /* OLLAMA_KEEP_ALIVE, default 5m */
    int num_parallel;       /* OLLAMA_NUM_PARALLEL, default 1 */
    int max_queue;          /* OLLAMA_MAX_QUEUE, default 512 */
    int swarm_port;         /* OLLAMAX_SWARM_PORT, 0 = any free port */
} node_config_t;

/* Fills cfg from the environment (and $OLLAMAX_HOME/config when present).
 * Returns OX_EINVAL with a message in err for a malformed setting. */
int node_config_load(node_config_t *cfg, char *err, size_t errlen);
/* Parses an OLLAMA_HOST-style value: "host", "host:port", ":port",
 * "scheme://host[:port]", "[v6]:port". Missing parts keep what host/port hold. */
int node_host_parse(const char *s, char *host, size_t hostcap, int *port, char *scheme,
                    size_t schemecap);

struct api;
struct swarm;
struct runner;

typedef struct node {
    uv_loop_t *loop;
    node_config_t cfg;
    cas_t *cas;
    struct api *api;
    struct swarm *swarm;
    void *swarm_intro;      /* daemon/node_swarm.c: peer introductions */
    struct runner *runner;
    int64_t started_ns;
    /* Random at each start, sent with the manifests this node serves
     * (X-Ollamax-Node): a "peer" that answers with it is this node under
     * another address (one OLLAMAX_PEERS list shared by every node). */
    char id[33];
} node_t;

#endif
