/* Route handlers and response helpers shared by the files of api/ (internal).
 *
 * Every handler has the same shape: it is called on the loop thread once the
 * request body is complete, and it must finish the request (http_respond*,
 * http_stream_end, or one of the api_* helpers below), now or later. */
#ifndef OX_API_ROUTES_H
#define OX_API_ROUTES_H

#include <jansson.h>

#include "api/http.h"
#include "daemon/node.h"

typedef void (*api_handler_fn)(node_t *node, http_req_t *req);

/* ---- responses (api/respond.c) ------------------------------------------ */
/* {"error":"<msg>"} with status, Content-Type application/json; charset=utf-8. */
void api_error(http_req_t *req, int status, const char *msg);
void api_errorf(http_req_t *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Serialises obj compactly (as Go's encoding/json would: no spaces) and
 * responds. Steals the reference to obj. */
void api_json(http_req_t *req, int status, json_t *obj);
/* Parses the buffered body as a JSON object. On failure it has already sent
 * the 400 ("missing request body" or the parser's message) and returns
 * non-zero; on success *out is a new reference the caller must json_decref. */
int api_body_json(http_req_t *req, json_t **out);
/* "stream" field: missing or true means streaming. */
int api_want_stream(const json_t *body);
/* Streaming NDJSON: begin (200, application/x-ndjson), one object per line
 * (steals obj; returns OX_ECANCELED once the client is gone), end. */
int api_ndjson_begin(http_req_t *req);
int api_ndjson_line(http_req_t *req, json_t *obj);
void api_ndjson_end(http_req_t *req);
/* Compact JSON text as api_json writes it; malloc'd, caller frees. */
char *api_json_dumps(const json_t *obj);

/* ---- handlers ----------------------------------------------------------- */
void api_route_pull(node_t *node, http_req_t *req); /* api/pull.c */
/* api/routes_infer.c (GET /api/ps is api_route_ps, declared in api_int.h) */
void api_route_generate(node_t *node, http_req_t *req);
void api_route_chat(node_t *node, http_req_t *req);
void api_route_embed(node_t *node, http_req_t *req);
void api_route_embeddings(node_t *node, http_req_t *req);
/* api/routes_openai.c */
void api_route_oai_chat(node_t *node, http_req_t *req);
void api_route_oai_completions(node_t *node, http_req_t *req);
void api_route_oai_embeddings(node_t *node, http_req_t *req);
void api_route_oai_models(node_t *node, http_req_t *req);
void api_route_oai_model(node_t *node, http_req_t *req);
/* api/routes_swarm.c */
void api_route_swarm_torrent(node_t *node, http_req_t *req);
void api_route_swarm_status(node_t *node, http_req_t *req);
/* This node's swarm endpoint "ip:port" as reached through local_ip.
 * OX_ESTATE without a swarm, OX_EBUSY before it listens. */
int api_swarm_endpoint(node_t *node, const char *local_ip, char *out, size_t cap);

#endif
