/* Internals of the runner (inference/runner*.c only).
 *
 * Threads: runner.c runs on the loop thread and owns the model list, the
 * timers and the job lifecycle; runner_worker.c runs on the slot threads of
 * a model. They share the job queues and the event queue, both under
 * runner.mu. A loaded model (tok, tmpl, model) is immutable once ready, so
 * workers read it without the lock. */
#ifndef OX_INFERENCE_RUNNER_INT_H
#define OX_INFERENCE_RUNNER_INT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "common/buf.h"
#include "inference/inference.h"
#include "inference/runner.h"
#include "inference/sampler.h"
#include "inference/template.h"
#include "inference/tokenizer.h"

struct rmodel;

typedef enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state_t;

struct runner_job {
    struct runner_job *next; /* in the model's queue */
    struct rmodel *model;
    runner_request_t q;      /* body and options owned */
    runner_callbacks_t cb;
    void *ud;
    atomic_int cancel;
    job_state_t state;       /* under runner.mu */
    int64_t submit_ns;       /* monotonic, for load_duration */
    /* filled by the worker, read by the loop after the done event */
    int rc;
    char err[512];
    runner_result_t res;
};

typedef enum ev_kind { EV_TEXT, EV_DONE } ev_kind_t;

typedef struct rev {
    struct rev *next;
    ev_kind_t kind;
    runner_job_t *job;       /* EV_TEXT, EV_DONE */
    struct rmodel *model;    /* EV_DONE: the job's model */
    size_t len;
    char text[];             /* EV_TEXT */
} rev_t;

/* One KV cache and the tokens it holds (for prefix reuse). */
typedef struct rslot {
    struct rmodel *model;
    uv_thread_t thread;
    int started;
    runner_job_t *cur;       /* running job (under runner.mu) */
    infer_ctx_t *ctx;
    int32_t *cached;         /* tokens whose keys/values are in ctx */
    size_t n_cached, cap_cached;
} rslot_t;

typedef enum model_state { M_LOADING, M_READY, M_FAILED } model_state_t;

typedef struct rmodel {
    struct rmodel *next;     /* runner.models */
    struct runner *runner;
    char digest[65];
    char *name, *path, *template_text, *system;
    json_t *messages, *details;
    uint64_t size;
    model_state_t state;     /* loop thread */
    int load_rc;
    char load_err[512];
    int64_t load_ns;         /* how long loading took */
    uv_work_t load_work;
    uv_timer_t timer;        /* keep-alive expiry */
    int timer_closing;
    int64_t keep_alive_ns;   /* of the last request */
    int64_t expires_ns;      /* wall clock; INT64_MAX: forever */
    int unload_when_idle;
    unsigned n_jobs;         /* queued + running (loop thread) */
    /* ready state, immutable while workers run */
    infer_model_t *im;
    tok_t *tok;
    tmpl_t *tmpl;
    char arch[32];
    uint32_t n_ctx_default;
    /* shared with the workers under runner.mu */
    runner_job_t *qhead, *qtail;
    uv_cond_t cond;
    int exiting;
    int n_slots;
    rslot_t *slots;
} rmodel_t;

struct runner {
    uv_loop_t *loop;
    runner_config_t cfg;
    uv_mutex_t mu;
    uv_async_t async;
    rev_t *ev_head, *ev_tail;   /* under mu */
    rmodel_t *models;           /* loop thread */
    unsigned n_waiting;         /* jobs not yet taken by a slot (under mu) */
    unsigned n_loading;         /* load works in flight */
    unsigned n_timers_closing;
    int closing;
    void (*close_cb)(void *ud);
    void *close_ud;
};

/* ---- worker side (runner_worker.c) ------------------------------------- */
/* Work-pool function: loads m->path, tokenizer and template into m. */
void runner_model_load_work(uv_work_t *w);
/* Frees what runner_model_load_work built (slots must be stopped). */
void runner_model_unload(rmodel_t *m);
/* Slot thread entry (arg: rslot_t *). */
void runner_slot_main(void *arg);
/* Posts an event (any thread); OOM drops a text event, never a done one. */
void runner_post(struct runner *r, ev_kind_t kind, runner_job_t *job, rmodel_t *m,
                 const char *text, size_t len);

/* ---- options (runner_opts.c) ------------------------------------------------ */
/* Sampler parameters from a merged options object (temperature, top_k,
 * top_p, min_p, repeat_penalty, repeat_last_n, presence_penalty,
 * frequency_penalty, seed); Ollama's defaults for what is absent. */
void ropt_sampler(const json_t *options, int json, smp_params_t *p);
/* Stop strings of an options object ("stop": string or array): a malloc'd
 * array of borrowed pointers into options (caller frees the array only). */
const char **ropt_stops(const json_t *options, size_t *n);

/* ---- completing JSON output (runner_json.c) ------------------------------- */
/* The sampler (sampler.h) keeps format:"json" output valid; this tracks the
 * same text to append the shortest completion when the token budget ends
 * mid-object, so the answer always parses. */
typedef struct rjson {
    int state;
    int depth;
    char stack[128];            /* '{' or '[' */
    int lit_pos;
    const char *lit;
    int hex_left;
    int in_key;
} rjson_t;
void rjson_init(rjson_t *j);
/* Feeds bytes; returns 0 if the output is still a valid prefix of a JSON
 * object (root must be an object), -1 if not.
 * On -1, j is left in an undefined state: feed a copy to test. */
int rjson_feed(rjson_t *j, const char *s, size_t n);
int rjson_done(const rjson_t *j);
/* Appends the shortest text that completes the value. */
int rjson_close(const rjson_t *j, ox_buf_t *out);

/* ---- option helpers (runner_sample.c) ------------------------------------ */
double ropt_num(const json_t *o, const char *key, double def);

#endif
