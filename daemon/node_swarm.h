/* The node's swarm lifecycle (daemon/node_swarm.c). Loop thread only. */
#ifndef OX_DAEMON_NODE_SWARM_H
#define OX_DAEMON_NODE_SWARM_H

#include "daemon/node.h"

/* Starts node->swarm on the node's address (OLLAMAX_SWARM=0 disables it),
 * seeds the store and introduces the configured peers. A swarm that cannot
 * start is logged and left NULL; returns 0. */
int node_swarm_start(node_t *node);
/* Closes the swarm (and the peer introductions); cb runs when all is freed.
 * The store must stay open until then. */
void node_swarm_stop(node_t *node, void (*cb)(void *ud), void *ud);

#endif
