/* The runner: loaded models, their keep-alive, and the queue of inference
 * requests (generate, chat, embed) of one node.
 *
 * A model is loaded on first use (GGUF mapping, tokenizer, chat template) in
 * the uv work pool, then served by num_parallel worker threads, each with its
 * own KV cache (infer_ctx_t) that remembers the tokens it holds so the next
 * request on the same slot re-evaluates only what differs from that prefix.
 * Text goes back to the loop thread through a mutex-protected event queue and
 * a uv_async_t; every callback of this API runs on the loop thread.
 *
 * Keep-alive: after its last request a model stays loaded for the request's
 * keep_alive (else the node's default); negative keeps it forever, 0 unloads
 * it as soon as it is idle. A uv_timer unloads expired models.
 *
 * Queue: at most num_parallel requests per model run at once; at most
 * max_queue requests wait (over all models), further ones get OX_EBUSY.
 *
 * Loop-thread only, except where a comment says otherwise. */
#ifndef OX_INFERENCE_RUNNER_H
#define OX_INFERENCE_RUNNER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct runner runner_t;
typedef struct runner_job runner_job_t;

typedef struct runner_config {
    int64_t keep_alive_ns; /* default keep-alive; negative = forever */
    int num_parallel;      /* <= 0: 1 */
    int max_queue;         /* <= 0: 512 */
} runner_config_t;

/* Creates the runner on loop. *out is owned by the caller (runner_close). */
int runner_new(uv_loop_t *loop, const runner_config_t *cfg, runner_t **out);
/* Cancels every job, stops the workers, frees every model and closes the
 * handles; cb (may be NULL) runs on the loop once all is released. Jobs still
 * in flight get on_done with OX_ECANCELED before cb. */
void runner_close(runner_t *r, void (*cb)(void *ud), void *ud);

/* What identifies and describes a stored model. Every field is copied. */
typedef struct runner_model_desc {
    const char *digest;        /* manifest sha256 hex: identity of a loaded model */
    const char *name;          /* display name ("tiny:latest") */
    const char *path;          /* GGUF file of the model layer */
    const char *template_text; /* template layer, NULL: built-in for the family */
    const char *system;        /* system layer, may be NULL */
    json_t *messages;          /* messages layer (array), may be NULL; borrowed */
    json_t *details;           /* /api/ps details object, may be NULL; borrowed */
    uint64_t size;             /* bytes reported by /api/ps */
} runner_model_desc_t;

typedef enum runner_kind {
    RUNNER_LOAD = 0,     /* load only (empty prompt / messages) */
    RUNNER_GENERATE = 1, /* body: /api/generate fields (prompt, suffix, system, template, context, raw) */
    RUNNER_CHAT = 2,     /* body: messages, tools */
    RUNNER_EMBED = 3,    /* body: input (string or array), truncate, dimensions */
} runner_kind_t;

enum { RUNNER_FORMAT_NONE = 0, RUNNER_FORMAT_JSON = 1 };

typedef struct runner_request {
    runner_kind_t kind;
    json_t *body;          /* the request object; the runner takes this reference */
    json_t *options;       /* merged options (model params then request options);
                              the runner takes this reference; may be NULL */
    int format;            /* RUNNER_FORMAT_* */
    int has_keep_alive;
    int64_t keep_alive_ns; /* when has_keep_alive */
    int64_t start_ns;      /* monotonic time the HTTP request arrived (total_duration) */
} runner_request_t;

typedef struct runner_result {
    char done_reason[16];  /* "stop", "length", "load", "unload" */
    int64_t total_ns, load_ns, prompt_eval_ns, eval_ns;
    int prompt_eval_count, eval_count;
    int prompt_cached;     /* prompt tokens reused from the slot's cache (not evaluated) */
    int32_t *context;      /* generate: prompt + output tokens */
    size_t n_context;
    float *embeddings;     /* embed: n_embeddings rows of dim floats */
    size_t n_embeddings, dim;
} runner_result_t;

typedef struct runner_callbacks {
    /* A piece of generated text (whole UTF-8 characters, stop strings cut
     * out). Borrowed for the call. May be NULL. */
    void (*on_text)(void *ud, const char *text, size_t len);
    /* Exactly once per submitted job. rc 0: res is filled (borrowed for the
     * call). Otherwise err says why: OX_ENOTFOUND/OX_EFORMAT/OX_EUNSUPPORTED
     * (model cannot be loaded), OX_EINVAL (bad request: status 400),
     * OX_ECANCELED (cancelled), others (500). The job is freed after it. */
    void (*on_done)(void *ud, int rc, const char *err, const runner_result_t *res);
} runner_callbacks_t;

/* Queues a request for model m. Returns 0 and *job (valid until on_done
 * returns; may be NULL if not wanted), or OX_EBUSY when the queue is full,
 * OX_ENOMEM, OX_ESTATE while closing: then no callback runs, and the runner
 * has still taken q->body and q->options. */
int runner_submit(runner_t *r, const runner_model_desc_t *m, const runner_request_t *q,
                  const runner_callbacks_t *cb, void *ud, runner_job_t **job);
/* Asks the job to stop (client went away): a waiting job never starts, a
 * running one stops at the next token. on_done still runs (OX_ECANCELED). */
void runner_job_cancel(runner_job_t *job);

/* Unloads the model with this manifest digest once it is idle (keep_alive 0
 * semantics). No-op when it is not loaded. */
void runner_unload(runner_t *r, const char *digest);

/* /api/ps: array of {name, model, size, digest, details, expires_at,
 * size_vram, context_length}, expires_at descending. New reference. */
json_t *runner_ps(runner_t *r);
/* Whether a model with this digest is loaded (or loading). */
int runner_is_loaded(runner_t *r, const char *digest);

/* Tool calls (runner_tools.c; pure, any thread). runner_tool_prefix tells
 * whether text[0..len) (the start of an answer) begins like a tool call: 1
 * yes, 0 no, -1 not known yet (empty or a prefix of a marker).
 * runner_tool_calls_parse turns a whole answer into Ollama's tool_calls
 * array [{"function":{"name","arguments"}}] (new reference), or NULL when
 * the text is not entirely tool calls. */
int runner_tool_prefix(const char *text, size_t len);
json_t *runner_tool_calls_parse(const char *text, size_t len);

/* Parses an Ollama keep_alive value (number of seconds, or a Go duration
 * string). Returns 0 and *ns, or OX_EINVAL. Pure; any thread. */
int runner_keep_alive_parse(const json_t *v, int64_t *ns);

#endif
