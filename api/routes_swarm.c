/* Swarm endpoints: GET /api/swarm/torrents/<digest> lets a peer that knows a
 * digest join that blob's swarm; GET /api/swarm/status describes the engine.
 *
 * Every torrent answer carries X-Ollamax-Swarm: <ip>:<port>, the swarm
 * endpoint of this node as seen on the address the request came in on, so a
 * puller learns where to connect without a second request. A 404 (running
 * swarm, blob absent) carries it too: a puller probing every peer so learns
 * which nodes may be fetching the same blob at once, to stripe with them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/api_int.h"
#include "api/routes.h"
#include "cas/cas.h"
#include "common/err.h"
#include "swarm/swarm.h"

#define TORRENTS_PREFIX "/api/swarm/torrents/"

int api_swarm_endpoint(node_t *node, const char *local_ip, char *out, size_t cap)
{
    if (!node->swarm)
        return OX_ESTATE;
    int port = swarm_listen_port(node->swarm);
    if (port <= 0)
        return OX_EBUSY;
    const char *ip = local_ip && *local_ip ? local_ip : "127.0.0.1";
    int n = snprintf(out, cap, strchr(ip, ':') ? "[%s]:%d" : "%s:%d", ip, port);
    return (n < 0 || (size_t)n >= cap) ? OX_ETOOBIG : 0;
}

void api_route_swarm_torrent(node_t *node, http_req_t *req)
{
    const char *path = http_req_path(req);
    char digest[72];
    if (strncmp(path, TORRENTS_PREFIX, strlen(TORRENTS_PREFIX)) != 0 ||
        cas_digest_parse(path + strlen(TORRENTS_PREFIX), digest) != 0) {
        api_error(req, 400, "invalid digest format");
        return;
    }
    if (!node->swarm) {
        api_error(req, 503, "swarm is not running");
        return;
    }
    void *bytes = NULL;
    size_t len = 0;
    int rc = swarm_torrent_get(node->swarm, digest, &bytes, &len);
    char ep[128];
    if (rc == OX_ENOTFOUND) {
        if (api_swarm_endpoint(node, http_req_local_ip(req), ep, sizeof ep) == 0)
            http_resp_header(req, "X-Ollamax-Swarm", ep);
        api_errorf(req, 404, "blob %s not found", digest);
        return;
    }
    if (rc == OX_EBUSY) {
        http_resp_header(req, "Retry-After", "1");
        api_error(req, 503, "torrent is being prepared, try again");
        return;
    }
    if (rc != 0) {
        api_error(req, 500, ox_strerror(rc));
        return;
    }
    if (api_swarm_endpoint(node, http_req_local_ip(req), ep, sizeof ep) == 0)
        http_resp_header(req, "X-Ollamax-Swarm", ep);
    http_respond(req, 200, "application/x-bittorrent", bytes, len);
    free(bytes);
}

void api_route_swarm_status(node_t *node, http_req_t *req)
{
    if (!node->swarm) {
        api_error(req, 503, "swarm is not running");
        return;
    }
    char *text = swarm_status(node->swarm);
    /* the blob bytes this node served over HTTP too: peers' rescues and
     * registry pulls, so that what it sent in all is one sum */
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    text = NULL;
    if (o && json_object_set_new(o, "http_bytes_up",
                                 json_integer((json_int_t)(node->api && node->api->srv
                                                               ? http_server_file_bytes(node->api->srv)
                                                               : 0))) == 0)
        text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text) {
        api_error(req, 500, ox_strerror(OX_ENOMEM));
        return;
    }
    char ep[128];
    if (api_swarm_endpoint(node, http_req_local_ip(req), ep, sizeof ep) == 0)
        http_resp_header(req, "X-Ollamax-Swarm", ep);
    http_respond(req, 200, "application/json; charset=utf-8", text, strlen(text));
    free(text);
}
