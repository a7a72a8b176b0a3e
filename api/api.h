/* api: every HTTP endpoint a node serves.
 *
 * Owns the HTTP server (api/http.h) and the routing policy on top of it: the
 * Ollama API under /api, the OpenAI API under /v1, the registry protocol under /v2,
 * served from the local store, swarm and cluster endpoints, CORS and the Host
 * check. Handlers reach the store and the other modules through the node. */
#ifndef OX_API_H
#define OX_API_H

#include "daemon/node.h"

/* Starts listening on node->cfg.host:port. On failure writes a message to err
 * and nothing is left running. The api is owned by the node (node->api). */
int api_start(node_t *node, char *err, size_t errlen);
/* Port actually bound (after port 0). */
int api_port(const node_t *node);
/* Closes the listener and every connection; cb runs once everything is
 * closed and node->api has been freed. */
void api_stop(node_t *node, void (*cb)(void *ud), void *ud);

#endif
