/* Internals shared by api.c and the api/routes_*.c files (never included
 * outside api/).
 *
 * struct api is the per-node state of the HTTP side: the server, the policy
 * inputs (loopback bind, hostname, CORS origins) and the count of work items
 * in flight, which api_stop waits for before it frees anything. Blocking work
 * (reading manifests and GGUF headers, ingesting blobs, fsync) runs in the uv
 * work pool through api_job_submit; the handler finishes the request from the
 * loop thread once the job is done. */
#ifndef OX_API_INT_H
#define OX_API_INT_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "api/http.h"
#include "api/routes.h"
#include "daemon/node.h"

#define API_ORIGINS_MAX 64

struct api {
    node_t *node;
    http_server_t *srv;
    int port;
    int loopback;            /* bound to a loopback address: Host check on */
    char hostname[256];      /* lowercase, for the Host check */
    char *origins[API_ORIGINS_MAX]; /* owned; allowed CORS origin patterns */
    size_t n_origins;
    int allow_all_origins;   /* OLLAMA_ORIGINS contained "*" */
    unsigned jobs;           /* work items and uploads in flight */
    int stopping;
    int server_closed;
    void (*stop_cb)(void *ud);
    void *stop_ud;
};

/* ---- jobs (api/job.c) ------------------------------------------------------ */
typedef struct api_job api_job_t;
typedef void (*api_job_fn)(api_job_t *job);

struct api_job {
    uv_work_t work;
    node_t *node;
    http_req_t *req;
    json_t *body;      /* request body (owned by the job), may be NULL */
    int status;        /* HTTP status for the default completion */
    json_t *resp;      /* response object (owned), NULL for an empty body */
    char err[1024];    /* non-empty: respond {"error": err} with status */
    json_t *lines;     /* streamed status objects (create), owned, may be NULL */
    int validated;     /* create: the request passed validation */
    void *ud;          /* handler data; freed by the handler's done */
    api_job_fn run;    /* work-pool thread: must not touch req */
    api_job_fn done;   /* loop thread; NULL: default completion */
};

/* Runs run(job) in the work pool, then done(job) (or, when done is NULL, the
 * default completion: err -> api_error, else resp or an empty body with
 * status) on the loop, and frees the job with body, resp and lines. Takes the
 * reference to body (may be NULL); ud stays the caller's (done frees it). On
 * failure to queue it answers 500 itself. */
void api_job_submit(node_t *node, http_req_t *req, json_t *body, api_job_fn run,
                    api_job_fn done, void *ud);
void api_job_set_err(api_job_t *job, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Default completion, usable from a custom done (frees nothing). */
void api_job_respond(api_job_t *job);

/* Work accounting for api_stop: an upload holds one unit from on_headers to
 * its final response. */
void api_hold(node_t *node);
void api_release(node_t *node);
/* api.c: frees the api once the server is closed and no job is left. */
void api__maybe_finish_stop(struct api *a);

/* ---- models (api/model.c): reading a stored model, any thread ------------- */
typedef struct api_model {
    cas_name_t name;         /* as stored */
    cas_manifest_t m;
    char digest[65];         /* sha256 of the manifest bytes */
    int64_t mtime_ns;
    json_t *config;          /* config blob object, or an empty object */
    char model_path[4096];   /* GGUF of the model layer, "" if none */
    char parent[128];        /* "from" of the model layer */
    char *template_text;     /* NULL if no template layer */
    char *system;            /* NULL if none */
    json_t *params;          /* object, NULL if none */
    json_t *license;         /* array of strings, NULL if none */
    json_t *messages;        /* array, NULL if none */
    size_t n_adapters;       /* adapter (LoRA) layers */
} api_model_t;

/* Loads name from the store. OX_ENOTFOUND when the manifest is absent, other
 * codes (message in err) when a layer cannot be read. Free with
 * api_model_free, also after an error. */
int api_model_load(cas_t *cas, const cas_name_t *name, api_model_t *out, char *err,
                   size_t errlen);
void api_model_free(api_model_t *m);
/* details object {parent_model, format, family, families, parameter_size,
 * quantization_level} from a config object (new reference). */
json_t *api_model_details(const json_t *config, const char *parent);
/* Reads a small blob whole (caller frees). */
int api_blob_read(cas_t *cas, const char *digest, size_t max, char **out, size_t *len);

/* ---- route handlers -------------------------------------------------------- */
void api_route_tags(node_t *node, http_req_t *req);
void api_route_show(node_t *node, http_req_t *req);
void api_route_copy(node_t *node, http_req_t *req);
void api_route_delete(node_t *node, http_req_t *req);
void api_route_verify(node_t *node, http_req_t *req);
void api_route_ps(node_t *node, http_req_t *req);
void api_route_create(node_t *node, http_req_t *req);
void api_route_blob_head(node_t *node, http_req_t *req);
/* POST /api/blobs/:digest is streamed: begin from on_headers (responds at once
 * for a bad digest or a present blob), finish from on_request. */
void api_blob_upload_begin(node_t *node, http_req_t *req);
void api_blob_upload_end(node_t *node, http_req_t *req);
int api_blob_upload_owns(http_req_t *req);
/* /v2 registry: returns 1 when the path is a registry path it handled. */
int api_registry_route(node_t *node, http_req_t *req);

/* Model name from a request body: "model", else the deprecated "name". */
const char *api_body_model(const json_t *body);
/* Go's %q of a string into out (quoted, escaped). */
void api_go_quote(const char *s, char *out, size_t cap);
/* Formats a double as Go's encoding/json does (shortest round trip, 'e' form
 * below 1e-6 and from 1e21). out needs 32 bytes. */
void api_go_float(double v, char *out, size_t cap);

#endif
