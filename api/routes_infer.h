/* Shared machinery of the inference routes (api/routes_infer.c and
 * api/routes_openai.c; internal to api/).
 *
 * An api_infer_call_t is one HTTP inference request on its way through the
 * runner: the route fills the request fields and a sink, then
 * api_infer_call_start reads the model from the store (work pool), submits it to
 * the node's runner and forwards the runner's callbacks to the sink on the
 * loop thread. The sink answers the HTTP request and calls api_infer_call_free. */
#ifndef OX_API_ROUTES_INFER_H
#define OX_API_ROUTES_INFER_H

#include <jansson.h>

#include "api/http.h"
#include "common/buf.h"
#include "daemon/node.h"
#include "inference/runner.h"

typedef struct api_infer_call api_infer_call_t;

typedef struct api_infer_sink {
    void (*on_text)(api_infer_call_t *c, const char *text, size_t len);
    /* rc 0: res filled. Else status (400, 404, 500, 503) and msg. */
    void (*on_done)(api_infer_call_t *c, int rc, int status, const char *msg,
                    const runner_result_t *res);
} api_infer_sink_t;

enum { API_INFER_NF_QUOTE = 0, API_INFER_NF_LEGACY = 1 };

struct api_infer_call {
    node_t *node;
    http_req_t *req;
    runner_request_t q;     /* body/options owned until submitted */
    api_infer_sink_t sink;
    int notfound_style;     /* API_INFER_NF_* */
    int stream;
    int started;            /* response head sent */
    int closed;             /* client went away */
    int finished;
    char model[512];        /* as sent */
    char model_digest[65];
    runner_job_t *job;
    ox_buf_t acc;           /* accumulated text (non-streamed answers) */
    int64_t created_s;      /* openai */
    char id[40];            /* openai */
    int include_usage;      /* openai: stream_options.include_usage */
    int base64;             /* openai: embeddings as base64 float32 */
    int chat;               /* chat shape: /api/chat, chat.completion */
    int openai;             /* a /v1 route */
    int tools;              /* /api/chat offered tools: answers may be tool calls */
    int tool_mode;          /* streaming with tools: 0 undecided, 1 text, 2 holding a call */
};

/* New call for req (caller owns it until api_infer_call_start; then the sink
 * frees it with api_infer_call_free once it has answered). NULL on OOM, with
 * the 500 already sent. */
api_infer_call_t *api_infer_call_new(node_t *node, http_req_t *req);
/* Resolves c->model and submits. Takes c->q.body and c->q.options. On any
 * error the sink's on_done runs (maybe synchronously). */
void api_infer_call_start(api_infer_call_t *c);
/* Frees the call; the HTTP request must have been finished. */
void api_infer_call_free(api_infer_call_t *c);

/* Merges the model's params (NULL ok) and the request's options (NULL ok)
 * into a new object; request values win. */
json_t *api_infer_options_merge(const json_t *params, const json_t *req_options);
/* A JSON number that api_json prints as Go prints a float32 (the shortest
 * decimal that reads back as v). New reference. */
json_t *api_infer_json_f32(float v);
/* RFC3339Nano UTC now. out needs 40 bytes. */
void api_infer_now_rfc3339(char *out, size_t cap);
/* Status for a runner error code. */
int api_infer_status_for(int rc);

#endif
