/* POST /api/generate, /api/chat, /api/embed, /api/embeddings and GET /api/ps,
 * plus the call machinery the OpenAI routes share (routes_infer.h).
 *
 * A request is validated on the loop, its model read from the store in the
 * work pool (api_model_load), then queued on the node's runner. Answers are
 * streamed as NDJSON (or gathered into one object with "stream": false);
 * the stream starts with the first piece of text, so load errors still get
 * a real status, and an error after that is a final {"error"} line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/routes.h"
#include "api/routes_infer.h"
#include "common/err.h"
#include "common/timeutil.h"

/* ---- helpers ------------------------------------------------------------------ */

void api_infer_now_rfc3339(char *out, size_t cap)
{
    ox_time_rfc3339(ox_time_now_ns(), out, cap);
}

json_t *api_infer_json_f32(float v)
{
    /* shortest decimal that reads back as this float32; the double of that
     * decimal prints back the same way through api_go_float */
    char s[48];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, (double)v);
        if (strtof(s, NULL) == v)
            break;
    }
    return json_real(strtod(s, NULL));
}

int api_infer_status_for(int rc)
{
    switch (rc) {
    case OX_EINVAL:
        return 400;
    case OX_EBUSY:
        return 503;
    case OX_ENOTFOUND:
        return 404;
    default:
        return 500;
    }
}

json_t *api_infer_options_merge(const json_t *params, const json_t *req_options)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (json_is_object(params))
        json_object_update(o, (json_t *)params);
    if (json_is_object(req_options))
        json_object_update(o, (json_t *)req_options);
    return o;
}

api_infer_call_t *api_infer_call_new(node_t *node, http_req_t *req)
{
    api_infer_call_t *c = calloc(1, sizeof *c);
    if (!c) {
        api_error(req, 500, "out of memory");
        return NULL;
    }
    c->node = node;
    c->req = req;
    c->q.start_ns = ox_time_mono_ns();
    c->stream = 1;
    return c;
}

void api_infer_call_free(api_infer_call_t *c)
{
    if (!c)
        return;
    json_decref(c->q.body);
    json_decref(c->q.options);
    ox_buf_free(&c->acc);
    free(c);
}

/* ---- the call ------------------------------------------------------------------ */

typedef struct load_ud {
    api_infer_call_t *c;
    api_model_t m;
    int have;
} load_ud_t;

static void call_fail(api_infer_call_t *c, int rc, int status, const char *msg)
{
    c->sink.on_done(c, rc, status, msg, NULL);
}

static void on_req_close(http_req_t *r, void *ud)
{
    (void)r;
    api_infer_call_t *c = ud;
    c->closed = 1;
    runner_job_cancel(c->job);
}

static void on_runner_text(void *ud, const char *text, size_t len)
{
    api_infer_call_t *c = ud;
    if (!c->closed)
        c->sink.on_text(c, text, len);
}

static void on_runner_done(void *ud, int rc, const char *err, const runner_result_t *res)
{
    api_infer_call_t *c = ud;
    node_t *node = c->node;
    c->job = NULL;
    c->sink.on_done(c, rc, rc ? api_infer_status_for(rc) : 200, err, res);
    api_release(node);
}

static void run_load(api_job_t *job)
{
    load_ud_t *u = job->ud;
    cas_name_t name;
    if (cas_name_parse(u->c->model, &name) != 0) {
        /* what Ollama answers for a name that cannot parse */
        if (u->c->chat && !u->c->openai)
            api_job_set_err(job, 400, "model is required");
        else if (u->c->notfound_style == API_INFER_NF_LEGACY)
            api_job_set_err(job, 404, "model \"%s\" not found, try pulling it first",
                            u->c->model);
        else
            api_job_set_err(job, 404, "model '%s' not found", u->c->model);
        return;
    }
    char err[512] = "";
    int rc = api_model_load(job->node->cas, &name, &u->m, err, sizeof err);
    u->have = 1;
    if (rc == OX_ENOTFOUND) {
        if (u->c->notfound_style == API_INFER_NF_LEGACY)
            api_job_set_err(job, 404, "model \"%s\" not found, try pulling it first", u->c->model);
        else
            api_job_set_err(job, 404, "model '%s' not found", u->c->model);
    } else if (rc != 0) {
        api_job_set_err(job, 500, "%s", err[0] ? err : ox_strerror(rc));
    } else if (!u->m.model_path[0]) {
        api_job_set_err(job, 400, "'%s' has no model layer", u->c->model);
    } else if (u->m.n_adapters) {
        /* answering without the adapter would look right and be wrong */
        api_job_set_err(job, 400,
                        "'%s' has an adapter (LoRA) layer, which the built-in engine does not "
                        "apply yet", u->c->model);
    }
}

static void on_loaded(api_job_t *job)
{
    load_ud_t *u = job->ud;
    api_infer_call_t *c = u->c;
    node_t *node = job->node;
    if (job->err[0]) {
        call_fail(c, OX_EINVAL, job->status, job->err);
        goto out;
    }
    if (!node->runner) {
        call_fail(c, OX_ESTATE, 500, "inference is not available");
        goto out;
    }
    api_model_t *m = &u->m;
    snprintf(c->model_digest, sizeof c->model_digest, "%s", m->digest);
    char display[512];
    cas_name_display(&m->name, display, sizeof display);
    uint64_t size = 0;
    for (size_t i = 0; i < m->m.n_layers; i++)
        size += m->m.layers[i].size;
    json_t *details = api_model_details(m->config, m->parent);
    runner_model_desc_t d = {
        .digest = m->digest,
        .name = display,
        .path = m->model_path,
        .template_text = m->template_text,
        .system = m->system,
        .messages = m->messages,
        .details = details,
        .size = size,
    };
    json_t *merged = api_infer_options_merge(m->params, c->q.options);
    json_decref(c->q.options);
    c->q.options = merged;
    if (c->q.kind == RUNNER_LOAD && c->q.has_keep_alive && c->q.keep_alive_ns == 0) {
        /* "unload": nothing to load; drop it if it is loaded */
        runner_unload(node->runner, m->digest);
        json_decref(details);
        runner_result_t res;
        memset(&res, 0, sizeof res);
        snprintf(res.done_reason, sizeof res.done_reason, "unload");
        c->sink.on_done(c, 0, 200, NULL, &res);
        goto out;
    }
    runner_request_t q = c->q;
    c->q.body = NULL;
    c->q.options = NULL;
    runner_callbacks_t cb = {on_runner_text, on_runner_done};
    api_hold(node);
    int rc = runner_submit(node->runner, &d, &q, &cb, c, &c->job);
    json_decref(details);
    if (rc != 0) {
        api_release(node);
        if (rc == OX_EBUSY)
            call_fail(c, rc, 503, "server busy, please try again.  maximum pending requests exceeded");
        else
            call_fail(c, rc, 500, ox_strerror(rc));
        goto out;
    }
    http_req_on_close(c->req, on_req_close, c);
    if (http_req_is_closed(c->req))
        on_req_close(c->req, c); /* went away while the model was read */
out:
    if (u->have)
        api_model_free(&u->m);
    free(u);
}

void api_infer_call_start(api_infer_call_t *c)
{
    load_ud_t *u = calloc(1, sizeof *u);
    if (!u) {
        call_fail(c, OX_ENOMEM, 500, "out of memory");
        return;
    }
    u->c = c;
    api_job_submit(c->node, c->req, NULL, run_load, on_loaded, u);
}

/* ---- Ollama responses ------------------------------------------------------------- */

static void put_metrics(json_t *o, const runner_result_t *res, int gen)
{
    if (gen && res->n_context) {
        json_t *a = json_array();
        for (size_t i = 0; i < res->n_context; i++)
            json_array_append_new(a, json_integer(res->context[i]));
        json_object_set_new(o, "context", a);
    }
#define PUT(k, v)                                        \
    do {                                                 \
        if ((v) != 0)                                    \
            json_object_set_new(o, k, json_integer(v));  \
    } while (0)
    PUT("total_duration", res->total_ns);
    PUT("load_duration", res->load_ns);
    PUT("prompt_eval_count", res->prompt_eval_count);
    PUT("prompt_eval_duration", res->prompt_eval_ns);
    PUT("eval_count", res->eval_count);
    PUT("eval_duration", res->eval_ns);
#undef PUT
}

/* Base object of a generate/chat answer, with text. */
static json_t *answer(api_infer_call_t *c, const char *text, size_t len, int done,
                      const char *reason)
{
    char ts[48];
    api_infer_now_rfc3339(ts, sizeof ts);
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(c->model));
    json_object_set_new(o, "created_at", json_string(ts));
    if (c->chat) {
        json_t *msg = json_object();
        json_object_set_new(msg, "role", json_string("assistant"));
        json_object_set_new(msg, "content", json_stringn(text, len));
        json_object_set_new(o, "message", msg);
        if (reason && *reason)
            json_object_set_new(o, "done_reason", json_string(reason));
        json_object_set_new(o, "done", json_boolean(done));
    } else {
        json_object_set_new(o, "response", json_stringn(text, len));
        json_object_set_new(o, "done", json_boolean(done));
        if (reason && *reason)
            json_object_set_new(o, "done_reason", json_string(reason));
    }
    return o;
}

/* Final or streamed chat object whose message carries tool calls (stolen). */
static json_t *answer_calls(api_infer_call_t *c, json_t *calls, int done, const char *reason)
{
    json_t *o = answer(c, "", 0, done, reason);
    json_object_set_new(json_object_get(o, "message"), "tool_calls", calls);
    return o;
}

static void gen_text(api_infer_call_t *c, const char *text, size_t len)
{
    if (c->tools && c->stream && c->tool_mode != 1) {
        /* hold the answer back while it may be a tool call */
        ox_buf_append(&c->acc, text, len);
        int p = c->tool_mode == 2 ? 1 : runner_tool_prefix(c->acc.data, c->acc.len);
        if (p == 1) {
            c->tool_mode = 2;
            return;
        }
        if (p < 0)
            return;
        c->tool_mode = 1;
        text = c->acc.data;
        len = c->acc.len;
        if (!c->started) {
            c->started = 1;
            api_ndjson_begin(c->req);
        }
        api_ndjson_line(c->req, answer(c, text, len, 0, NULL));
        ox_buf_reset(&c->acc);
        return;
    }
    if (!c->stream) {
        ox_buf_append(&c->acc, text, len);
        return;
    }
    if (!c->started) {
        c->started = 1;
        api_ndjson_begin(c->req);
    }
    api_ndjson_line(c->req, answer(c, text, len, 0, NULL));
}

static void gen_done(api_infer_call_t *c, int rc, int status, const char *msg,
                     const runner_result_t *res)
{
    if (rc != 0) {
        if (c->started) {
            json_t *e = json_object();
            json_object_set_new(e, "error", json_string(msg && *msg ? msg : ox_strerror(rc)));
            api_ndjson_line(c->req, e);
            api_ndjson_end(c->req);
        } else {
            api_error(c->req, status, msg && *msg ? msg : ox_strerror(rc));
        }
        api_infer_call_free(c);
        return;
    }
    int load = strcmp(res->done_reason, "load") == 0 || strcmp(res->done_reason, "unload") == 0;
    json_t *calls = c->tools && c->acc.len ? runner_tool_calls_parse(c->acc.data, c->acc.len) : NULL;
    json_t *o;
    if (c->stream && c->tools && c->acc.len) {
        /* what was held back: the calls, or text after all */
        if (!c->started) {
            c->started = 1;
            api_ndjson_begin(c->req);
        }
        api_ndjson_line(c->req, calls ? answer_calls(c, calls, 0, NULL)
                                      : answer(c, c->acc.data, c->acc.len, 0, NULL));
        calls = NULL;
    }
    if (calls && !c->stream) {
        o = answer_calls(c, calls, 1, res->done_reason);
        put_metrics(o, res, 0);
        api_json(c->req, 200, o);
        api_infer_call_free(c);
        return;
    }
    if (!c->stream || load) {
        o = answer(c, c->acc.data ? c->acc.data : "", c->acc.len, 1, res->done_reason);
        if (!load)
            put_metrics(o, res, c->q.kind == RUNNER_GENERATE);
        if (c->started) {
            api_ndjson_line(c->req, o);
            api_ndjson_end(c->req);
        } else {
            api_json(c->req, 200, o);
        }
    } else {
        o = answer(c, "", 0, 1, res->done_reason);
        put_metrics(o, res, c->q.kind == RUNNER_GENERATE);
        if (!c->started) {
            c->started = 1;
            api_ndjson_begin(c->req);
        }
        api_ndjson_line(c->req, o);
        api_ndjson_end(c->req);
    }
    api_infer_call_free(c);
}

/* ---- validation shared by the Ollama routes -------------------------------------- */

/* Fills model, stream, keep_alive, format and options. Returns 0, or sends a
 * 400 and returns -1. */
static int parse_common(api_infer_call_t *c, json_t *body)
{
    json_t *mv = json_object_get(body, "model");
    const char *model = json_string_value(mv);
    if (!model || !*model) {
        api_error(c->req, 400, "model is required");
        return -1;
    }
    snprintf(c->model, sizeof c->model, "%s", model);
    c->stream = api_want_stream(body);
    json_t *ka = json_object_get(body, "keep_alive");
    if (ka && !json_is_null(ka)) {
        if (runner_keep_alive_parse(ka, &c->q.keep_alive_ns) != 0) {
            api_error(c->req, 400, "invalid keep_alive duration");
            return -1;
        }
        c->q.has_keep_alive = 1;
    }
    json_t *fmt = json_object_get(body, "format");
    if (json_is_string(fmt)) {
        const char *f = json_string_value(fmt);
        if (strcmp(f, "json") == 0) {
            c->q.format = RUNNER_FORMAT_JSON;
        } else if (*f) {
            api_error(c->req, 400, "invalid format: expected \"json\" or a valid JSON schema");
            return -1;
        }
    } else if (json_is_object(fmt)) {
        c->q.format = RUNNER_FORMAT_JSON; /* schemas: constrained to JSON objects */
    } else if (fmt && !json_is_null(fmt)) {
        api_error(c->req, 400, "invalid format: expected \"json\" or a valid JSON schema");
        return -1;
    }
    json_t *opts = json_object_get(body, "options");
    if (opts && !json_is_null(opts) && !json_is_object(opts)) {
        api_error(c->req, 400, "options must be an object");
        return -1;
    }
    c->q.options = json_is_object(opts) ? json_incref(opts) : NULL;
    return 0;
}

static api_infer_call_t *begin(node_t *node, http_req_t *req, json_t **body)
{
    if (api_body_json(req, body) != 0)
        return NULL;
    api_infer_call_t *c = api_infer_call_new(node, req);
    if (!c) {
        json_decref(*body);
        return NULL;
    }
    if (parse_common(c, *body) != 0) {
        json_decref(*body);
        api_infer_call_free(c);
        return NULL;
    }
    return c;
}

/* ---- POST /api/generate ---------------------------------------------------------------- */

void api_route_generate(node_t *node, http_req_t *req)
{
    json_t *body;
    api_infer_call_t *c = begin(node, req, &body);
    if (!c)
        return;
    if (json_is_true(json_object_get(body, "raw"))) {
        const char *t = json_string_value(json_object_get(body, "template"));
        const char *s = json_string_value(json_object_get(body, "system"));
        json_t *ctx = json_object_get(body, "context");
        if ((t && *t) || (s && *s) || (json_is_array(ctx) && json_array_size(ctx))) {
            api_error(req, 400, "raw mode does not support template, system, or context");
            goto bad;
        }
    }
    json_t *p = json_object_get(body, "prompt");
    if (p && !json_is_null(p) && !json_is_string(p)) {
        api_error(req, 400, "prompt must be a string");
        goto bad;
    }
    json_t *ctx = json_object_get(body, "context");
    if (ctx && !json_is_null(ctx) && !json_is_array(ctx)) {
        api_error(req, 400, "context must be an array of integers");
        goto bad;
    }
    const char *prompt = json_string_value(p);
    const char *suffix = json_string_value(json_object_get(body, "suffix"));
    c->q.kind = (!prompt || !*prompt) && (!suffix || !*suffix) ? RUNNER_LOAD : RUNNER_GENERATE;
    c->q.body = body;
    c->sink.on_text = gen_text;
    c->sink.on_done = gen_done;
    api_infer_call_start(c);
    return;
bad:
    json_decref(body);
    api_infer_call_free(c);
}

/* ---- POST /api/chat ----------------------------------------------------------------------- */

void api_route_chat(node_t *node, http_req_t *req)
{
    json_t *body;
    api_infer_call_t *c = begin(node, req, &body);
    if (!c)
        return;
    json_t *msgs = json_object_get(body, "messages");
    if (msgs && !json_is_null(msgs) && !json_is_array(msgs)) {
        api_error(req, 400, "messages must be an array");
        goto bad;
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m) || !json_is_string(json_object_get(m, "role"))) {
            api_error(req, 400, "invalid message: role is required");
            goto bad;
        }
        json_t *content = json_object_get(m, "content");
        if (content && !json_is_null(content) && !json_is_string(content)) {
            api_error(req, 400, "invalid message content: expected a string");
            goto bad;
        }
    }
    c->chat = 1;
    json_t *tools = json_object_get(body, "tools");
    if (tools && !json_is_null(tools) && !json_is_array(tools)) {
        api_error(req, 400, "tools must be an array");
        goto bad;
    }
    c->tools = json_array_size(tools) > 0;
    c->q.kind = json_array_size(msgs) == 0 ? RUNNER_LOAD : RUNNER_CHAT;
    c->q.body = body;
    c->sink.on_text = gen_text;
    c->sink.on_done = gen_done;
    api_infer_call_start(c);
    return;
bad:
    json_decref(body);
    api_infer_call_free(c);
}

/* ---- POST /api/embed, /api/embeddings ------------------------------------------------------- */

static json_t *vec_json(const float *v, size_t dim)
{
    json_t *a = json_array();
    for (size_t k = 0; k < dim; k++)
        json_array_append_new(a, api_infer_json_f32(v[k]));
    return a;
}

static void embed_text(api_infer_call_t *c, const char *text, size_t len)
{
    (void)c, (void)text, (void)len;
}

static void embed_done(api_infer_call_t *c, int rc, int status, const char *msg,
                       const runner_result_t *res)
{
    if (rc != 0) {
        api_error(c->req, status, msg && *msg ? msg : ox_strerror(rc));
        api_infer_call_free(c);
        return;
    }
    json_t *o = json_object();
    if (c->notfound_style == API_INFER_NF_LEGACY) {
        json_object_set_new(o, "embedding", res->n_embeddings
                                                ? vec_json(res->embeddings, res->dim)
                                                : json_array());
    } else {
        json_object_set_new(o, "model", json_string(c->model));
        json_t *a = json_array();
        for (size_t i = 0; i < res->n_embeddings; i++)
            json_array_append_new(a, vec_json(res->embeddings + i * res->dim, res->dim));
        json_object_set_new(o, "embeddings", a);
        if (res->total_ns)
            json_object_set_new(o, "total_duration", json_integer(res->total_ns));
        if (res->load_ns)
            json_object_set_new(o, "load_duration", json_integer(res->load_ns));
        if (res->prompt_eval_count)
            json_object_set_new(o, "prompt_eval_count", json_integer(res->prompt_eval_count));
    }
    api_json(c->req, 200, o);
    api_infer_call_free(c);
}

void api_route_embed(node_t *node, http_req_t *req)
{
    json_t *body;
    api_infer_call_t *c = begin(node, req, &body);
    if (!c)
        return;
    json_t *in = json_object_get(body, "input");
    int ok = !in || json_is_null(in) || json_is_string(in) || json_is_array(in);
    size_t i;
    json_t *v;
    if (json_is_array(in))
        json_array_foreach(in, i, v) if (!json_is_string(v)) ok = 0;
    if (!ok) {
        api_error(req, 400, "invalid input type");
        json_decref(body);
        api_infer_call_free(c);
        return;
    }
    if (!in || json_is_null(in) || (json_is_array(in) && json_array_size(in) == 0)) {
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(c->model));
        json_object_set_new(o, "embeddings", json_array());
        api_json(req, 200, o);
        json_decref(body);
        api_infer_call_free(c);
        return;
    }
    c->q.kind = RUNNER_EMBED;
    c->q.body = body;
    c->sink.on_text = embed_text;
    c->sink.on_done = embed_done;
    api_infer_call_start(c);
}

void api_route_embeddings(node_t *node, http_req_t *req)
{
    json_t *body;
    api_infer_call_t *c = begin(node, req, &body);
    if (!c)
        return;
    c->notfound_style = API_INFER_NF_LEGACY;
    json_t *p = json_object_get(body, "prompt");
    if (p && !json_is_null(p) && !json_is_string(p)) {
        api_error(req, 400, "prompt must be a string");
        json_decref(body);
        api_infer_call_free(c);
        return;
    }
    c->sink.on_text = embed_text;
    c->sink.on_done = embed_done;
    const char *s = json_string_value(p);
    c->q.kind = s && *s ? RUNNER_EMBED : RUNNER_LOAD;
    json_object_set_new(body, "input", p ? json_incref(p) : json_string(""));
    c->q.body = body;
    api_infer_call_start(c);
}

/* ---- GET /api/ps ------------------------------------------------------------------------------ */

void api_route_ps(node_t *node, http_req_t *req)
{
    json_t *o = json_object();
    json_t *arr = node->runner ? runner_ps(node->runner) : json_array();
    json_object_set_new(o, "models", arr ? arr : json_array());
    api_json(req, 200, o);
}
