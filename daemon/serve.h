/* `ollamax serve`: the daemon's foreground entry point, and the node
 * lifecycle it is built from (also used by tests that want a whole node).
 *
 * node_start prepares the directories under cfg.home, opens the store and
 * starts the api on node->loop; node_stop closes them in reverse order and
 * runs cb once every handle of the node is closed, so the loop can then be
 * closed with uv_loop_close() == 0. Loop thread only. */
#ifndef OX_DAEMON_SERVE_H
#define OX_DAEMON_SERVE_H

#include "daemon/node.h"

/* Loads the configuration, starts a node on a fresh loop and runs it until
 * SIGINT or SIGTERM; then closes everything. Returns the process exit code
 * (0 on a clean stop, 1 when it could not start; the reason is logged). */
int node_serve(void);

/* node->loop and node->cfg must be set; every other field is filled here.
 * On failure writes a message to err and leaves nothing open. */
int node_start(node_t *node, char *err, size_t errlen);
/* Stops the api, then closes the store; cb (may be NULL) runs when done. */
void node_stop(node_t *node, void (*cb)(void *ud), void *ud);

#endif
