/* The OpenAI-compatible endpoints: /v1/chat/completions, /v1/completions,
 * /v1/embeddings, /v1/models and /v1/models/:model.
 *
 * Requests are translated into the Ollama request objects the runner takes
 * (as Ollama's openai middleware does: max_tokens -> num_predict,
 * temperature and top_p default to 1.0, response_format -> format) and the
 * answers translated back. Errors use OpenAI's shape
 * {"error":{"message","type","param":null,"code":null}}; streams are SSE
 * (`data: <json>\n\n`, ending with `data: [DONE]\n\n`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/routes.h"
#include "api/routes_infer.h"
#include "common/err.h"
#include "common/timeutil.h"

#define CT_SSE "text/event-stream"

static json_t *oai_error_obj(int status, const char *msg)
{
    const char *type = status == 400   ? "invalid_request_error"
                       : status == 404 ? "not_found_error"
                                       : "api_error";
    json_t *e = json_object();
    json_object_set_new(e, "message", json_string(msg));
    json_object_set_new(e, "type", json_string(type));
    json_object_set_new(e, "param", json_null());
    json_object_set_new(e, "code", json_null());
    json_t *o = json_object();
    json_object_set_new(o, "error", e);
    return o;
}

static void oai_error(http_req_t *req, int status, const char *msg)
{
    api_json(req, status, oai_error_obj(status, msg));
}

/* Parses the body; answers 400 in OpenAI's shape on failure. */
static int oai_body(http_req_t *req, json_t **out)
{
    size_t len = 0;
    const char *b = http_req_body(req, &len);
    *out = NULL;
    if (!b || len == 0) {
        oai_error(req, 400, "missing request body");
        return -1;
    }
    json_error_t je;
    json_t *j = json_loadb(b, len, 0, &je);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        oai_error(req, 400, j ? "request body must be a JSON object" : je.text);
        return -1;
    }
    *out = j;
    return 0;
}

static void sse_write(api_infer_call_t *c, json_t *o)
{
    char *s = api_json_dumps(o);
    json_decref(o);
    if (!s)
        return;
    ox_buf_t b = OX_BUF_INIT;
    if (ox_buf_printf(&b, "data: %s\n\n", s) == 0)
        http_stream_write(c->req, b.data, b.len);
    ox_buf_free(&b);
    free(s);
}

static void sse_begin(api_infer_call_t *c)
{
    if (!c->started) {
        c->started = 1;
        http_stream_begin(c->req, 200, CT_SSE);
    }
}

static json_t *oai_base(api_infer_call_t *c, const char *object)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(c->id));
    json_object_set_new(o, "object", json_string(object));
    json_object_set_new(o, "created", json_integer(c->created_s));
    json_object_set_new(o, "model", json_string(c->model));
    json_object_set_new(o, "system_fingerprint", json_string("fp_ollama"));
    return o;
}

static json_t *usage_obj(const runner_result_t *res)
{
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(res->prompt_eval_count));
    json_object_set_new(u, "completion_tokens", json_integer(res->eval_count));
    json_object_set_new(u, "total_tokens",
                        json_integer(res->prompt_eval_count + res->eval_count));
    return u;
}

/* One choice; text NULL with finish set: the finishing chunk. */
static json_t *choice(api_infer_call_t *c, const char *text, size_t len, const char *finish,
                      int streaming)
{
    json_t *ch = json_object();
    json_object_set_new(ch, "index", json_integer(0));
    if (c->chat) {
        json_t *m = json_object();
        json_object_set_new(m, "role", json_string("assistant"));
        json_object_set_new(m, "content", json_stringn(text ? text : "", text ? len : 0));
        json_object_set_new(ch, streaming ? "delta" : "message", m);
    } else {
        json_object_set_new(ch, "text", json_stringn(text ? text : "", text ? len : 0));
    }
    json_object_set_new(ch, "finish_reason", finish ? json_string(finish) : json_null());
    return ch;
}

static const char *obj_name(api_infer_call_t *c, int streaming)
{
    if (c->chat)
        return streaming ? "chat.completion.chunk" : "chat.completion";
    return "text_completion";
}

static void oai_text(api_infer_call_t *c, const char *text, size_t len)
{
    if (!c->stream) {
        ox_buf_append(&c->acc, text, len);
        return;
    }
    sse_begin(c);
    json_t *o = oai_base(c, obj_name(c, 1));
    json_t *a = json_array();
    json_array_append_new(a, choice(c, text, len, NULL, 1));
    json_object_set_new(o, "choices", a);
    sse_write(c, o);
}

static void oai_done(api_infer_call_t *c, int rc, int status, const char *msg,
                     const runner_result_t *res)
{
    if (rc != 0) {
        const char *m = msg && *msg ? msg : ox_strerror(rc);
        if (c->started) {
            sse_write(c, oai_error_obj(status, m));
            http_stream_end(c->req);
        } else {
            oai_error(c->req, status, m);
        }
        api_infer_call_free(c);
        return;
    }
    const char *finish = strcmp(res->done_reason, "length") == 0 ? "length" : "stop";
    if (!c->stream) {
        json_t *o = oai_base(c, obj_name(c, 0));
        json_t *a = json_array();
        json_array_append_new(a, choice(c, c->acc.data ? c->acc.data : "", c->acc.len, finish, 0));
        json_object_set_new(o, "choices", a);
        json_object_set_new(o, "usage", usage_obj(res));
        api_json(c->req, 200, o);
        api_infer_call_free(c);
        return;
    }
    sse_begin(c);
    json_t *o = oai_base(c, obj_name(c, 1));
    json_t *a = json_array();
    json_array_append_new(a, choice(c, "", 0, finish, 1));
    json_object_set_new(o, "choices", a);
    sse_write(c, o);
    if (c->include_usage) {
        o = oai_base(c, obj_name(c, 1));
        json_object_set_new(o, "choices", json_array());
        json_object_set_new(o, "usage", usage_obj(res));
        sse_write(c, o);
    }
    static const char done[] = "data: [DONE]\n\n";
    http_stream_write(c->req, done, sizeof done - 1);
    http_stream_end(c->req);
    api_infer_call_free(c);
}

/* ---- request translation ------------------------------------------------------- */

static int set_num(json_t *opts, const char *key, json_t *v)
{
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return -1;
    json_object_set_new(opts, key, json_real(json_number_value(v)));
    return 0;
}

/* Shared fields of chat and completions. Returns a message for a 400 or NULL. */
static const char *oai_common(api_infer_call_t *c, json_t *body, json_t *opts)
{
    const char *model = json_string_value(json_object_get(body, "model"));
    if (!model || !*model)
        return "model is required";
    snprintf(c->model, sizeof c->model, "%s", model);
    c->stream = json_is_true(json_object_get(body, "stream"));
    json_t *so = json_object_get(body, "stream_options");
    c->include_usage = json_is_true(json_object_get(so, "include_usage"));
    c->created_s = ox_time_now_ns() / 1000000000;
    json_t *mt = json_object_get(body, "max_completion_tokens");
    if (!mt || json_is_null(mt))
        mt = json_object_get(body, "max_tokens");
    if (json_is_integer(mt))
        json_object_set_new(opts, "num_predict", json_integer(json_integer_value(mt)));
    else if (mt && !json_is_null(mt))
        return "max_tokens must be an integer";
    /* OpenAI's defaults, not Ollama's */
    json_t *t = json_object_get(body, "temperature");
    if (t && !json_is_null(t)) {
        if (set_num(opts, "temperature", t) != 0)
            return "temperature must be a number";
    } else {
        json_object_set_new(opts, "temperature", json_real(1.0));
    }
    json_t *tp = json_object_get(body, "top_p");
    if (tp && !json_is_null(tp)) {
        if (set_num(opts, "top_p", tp) != 0)
            return "top_p must be a number";
    } else {
        json_object_set_new(opts, "top_p", json_real(1.0));
    }
    if (set_num(opts, "frequency_penalty", json_object_get(body, "frequency_penalty")) != 0)
        return "frequency_penalty must be a number";
    if (set_num(opts, "presence_penalty", json_object_get(body, "presence_penalty")) != 0)
        return "presence_penalty must be a number";
    json_t *seed = json_object_get(body, "seed");
    if (json_is_integer(seed))
        json_object_set(opts, "seed", seed);
    else if (seed && !json_is_null(seed))
        return "seed must be an integer";
    json_t *stop = json_object_get(body, "stop");
    if (json_is_string(stop) || json_is_array(stop)) {
        json_t *a = json_is_string(stop) ? json_pack("[O]", stop) : json_incref(stop);
        json_object_set_new(opts, "stop", a);
    } else if (stop && !json_is_null(stop)) {
        return "stop must be a string or an array of strings";
    }
    json_t *rf = json_object_get(body, "response_format");
    const char *rft = json_string_value(json_object_get(rf, "type"));
    if (rft && (strcmp(rft, "json_object") == 0 || strcmp(rft, "json_schema") == 0))
        c->q.format = RUNNER_FORMAT_JSON;
    return NULL;
}

/* Flattens OpenAI content (string or parts) into a string; NULL if invalid. */
static json_t *content_text(json_t *content)
{
    if (!content || json_is_null(content))
        return json_string("");
    if (json_is_string(content))
        return json_incref(content);
    if (!json_is_array(content))
        return NULL;
    ox_buf_t b = OX_BUF_INIT;
    size_t i;
    json_t *p;
    json_array_foreach(content, i, p) {
        const char *type = json_string_value(json_object_get(p, "type"));
        if (!type)
            goto bad;
        if (strcmp(type, "text") == 0) {
            const char *t = json_string_value(json_object_get(p, "text"));
            if (!t)
                goto bad;
            if (b.len)
                ox_buf_puts(&b, "\n\n");
            ox_buf_puts(&b, t);
        } else if (strcmp(type, "image_url") != 0) {
            goto bad;
        }
    }
    json_t *s = json_stringn(b.data ? b.data : "", b.len);
    ox_buf_free(&b);
    return s;
bad:
    ox_buf_free(&b);
    return NULL;
}

static void start_completion(node_t *node, http_req_t *req, int chat)
{
    json_t *body;
    if (oai_body(req, &body) != 0)
        return;
    api_infer_call_t *c = api_infer_call_new(node, req);
    if (!c) {
        json_decref(body);
        return;
    }
    c->chat = chat;
    c->openai = 1;
    /* Ollama's ids are "chatcmpl-" and a number below 1000 */
    snprintf(c->id, sizeof c->id, "%s-%lld", chat ? "chatcmpl" : "cmpl",
             (long long)(ox_time_now_ns() / 1000 % 999));
    json_t *opts = json_object();
    json_t *q = json_object();
    const char *bad = oai_common(c, body, opts);
    if (!bad && chat) {
        json_t *msgs = json_object_get(body, "messages");
        if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
            bad = "[] is too short - 'messages'";
        } else {
            json_t *out = json_array();
            size_t i;
            json_t *m;
            json_array_foreach(msgs, i, m) {
                const char *role = json_string_value(json_object_get(m, "role"));
                json_t *text = content_text(json_object_get(m, "content"));
                if (!role || !text) {
                    json_decref(text);
                    bad = "invalid message format";
                    break;
                }
                json_array_append_new(out, json_pack("{s:s,s:o}", "role", role, "content", text));
            }
            json_object_set_new(q, "messages", out);
        }
    } else if (!bad) {
        json_t *p = json_object_get(body, "prompt");
        if (!json_is_string(p)) {
            bad = "prompt must be a string";
        } else {
            json_object_set(q, "prompt", p);
            json_t *sfx = json_object_get(body, "suffix");
            if (json_is_string(sfx))
                json_object_set(q, "suffix", sfx);
        }
    }
    json_decref(body);
    if (bad) {
        oai_error(req, 400, bad);
        json_decref(opts);
        json_decref(q);
        api_infer_call_free(c);
        return;
    }
    if (chat)
        c->q.kind = RUNNER_CHAT;
    else {
        const char *p = json_string_value(json_object_get(q, "prompt"));
        c->q.kind = *p ? RUNNER_GENERATE : RUNNER_LOAD;
    }
    c->q.body = q;
    c->q.options = opts;
    c->sink.on_text = oai_text;
    c->sink.on_done = oai_done;
    api_infer_call_start(c);
}

void api_route_oai_chat(node_t *node, http_req_t *req)
{
    start_completion(node, req, 1);
}

void api_route_oai_completions(node_t *node, http_req_t *req)
{
    start_completion(node, req, 0);
}

/* ---- /v1/embeddings ------------------------------------------------------------------ */

static void b64(const unsigned char *p, size_t n, ox_buf_t *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {t[(v >> 18) & 63], t[(v >> 12) & 63], i + 1 < n ? t[(v >> 6) & 63] : '=',
                     i + 2 < n ? t[v & 63] : '='};
        ox_buf_append(out, q, 4);
    }
}

static void oai_embed_text(api_infer_call_t *c, const char *t, size_t n)
{
    (void)c, (void)t, (void)n;
}

static void oai_embed_done(api_infer_call_t *c, int rc, int status, const char *msg,
                           const runner_result_t *res)
{
    if (rc != 0) {
        oai_error(c->req, status, msg && *msg ? msg : ox_strerror(rc));
        api_infer_call_free(c);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < res->n_embeddings; i++) {
        const float *v = res->embeddings + i * res->dim;
        json_t *e = json_object();
        json_object_set_new(e, "object", json_string("embedding"));
        if (c->base64) {
            ox_buf_t b = OX_BUF_INIT;
            b64((const unsigned char *)v, res->dim * sizeof(float), &b);
            json_object_set_new(e, "embedding", json_stringn(b.data ? b.data : "", b.len));
            ox_buf_free(&b);
        } else {
            json_t *a = json_array();
            for (size_t k = 0; k < res->dim; k++)
                json_array_append_new(a, api_infer_json_f32(v[k]));
            json_object_set_new(e, "embedding", a);
        }
        json_object_set_new(e, "index", json_integer((json_int_t)i));
        json_array_append_new(data, e);
    }
    json_t *o = json_object();
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    json_object_set_new(o, "model", json_string(c->model));
    json_t *u = json_object();
    json_object_set_new(u, "prompt_tokens", json_integer(res->prompt_eval_count));
    json_object_set_new(u, "total_tokens", json_integer(res->prompt_eval_count));
    json_object_set_new(o, "usage", u);
    api_json(c->req, 200, o);
    api_infer_call_free(c);
}

void api_route_oai_embeddings(node_t *node, http_req_t *req)
{
    json_t *body;
    if (oai_body(req, &body) != 0)
        return;
    api_infer_call_t *c = api_infer_call_new(node, req);
    if (!c) {
        json_decref(body);
        return;
    }
    const char *model = json_string_value(json_object_get(body, "model"));
    json_t *in = json_object_get(body, "input");
    const char *bad = NULL;
    if (!model || !*model)
        bad = "model is required";
    else if (!in || (!json_is_string(in) && !json_is_array(in)))
        bad = "invalid input";
    else if (json_is_array(in)) {
        size_t i;
        json_t *v;
        if (json_array_size(in) == 0)
            bad = "invalid input";
        json_array_foreach(in, i, v) if (!json_is_string(v)) bad = "invalid input";
    }
    if (bad) {
        oai_error(req, 400, bad);
        json_decref(body);
        api_infer_call_free(c);
        return;
    }
    snprintf(c->model, sizeof c->model, "%s", model);
    c->openai = 1;
    const char *enc = json_string_value(json_object_get(body, "encoding_format"));
    c->base64 = enc && strcmp(enc, "base64") == 0;
    json_t *q = json_object();
    json_object_set(q, "input", in);
    json_t *dims = json_object_get(body, "dimensions");
    if (json_is_integer(dims))
        json_object_set(q, "dimensions", dims);
    json_decref(body);
    c->q.kind = RUNNER_EMBED;
    c->q.body = q;
    c->stream = 0;
    c->sink.on_text = oai_embed_text;
    c->sink.on_done = oai_embed_done;
    api_infer_call_start(c);
}

/* ---- /v1/models ---------------------------------------------------------------------------- */

static json_t *model_obj(const cas_name_t *n, int64_t mtime_ns)
{
    char disp[512];
    cas_name_display(n, disp, sizeof disp);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(disp));
    json_object_set_new(o, "object", json_string("model"));
    json_object_set_new(o, "created", json_integer(mtime_ns / 1000000000));
    json_object_set_new(o, "owned_by", json_string(n->ns));
    return o;
}

static void run_models(api_job_t *job)
{
    cas_model_info_t *v = NULL;
    size_t n = 0;
    if (cas_model_list(job->node->cas, &v, &n) != 0) {
        api_job_set_err(job, 500, "cannot list models");
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, model_obj(&v[i].name, v[i].mtime_ns));
    free(v);
    job->resp = json_object();
    json_object_set_new(job->resp, "object", json_string("list"));
    json_object_set_new(job->resp, "data", data);
}

static void oai_job_done(api_job_t *job)
{
    if (job->err[0]) {
        oai_error(job->req, job->status ? job->status : 500, job->err);
        return;
    }
    api_job_respond(job);
}

void api_route_oai_models(node_t *node, http_req_t *req)
{
    api_job_submit(node, req, NULL, run_models, oai_job_done, NULL);
}

static void run_model(api_job_t *job)
{
    const char *want = job->ud;
    cas_name_t name, found;
    if (cas_name_parse(want, &name) != 0) {
        api_job_set_err(job, 404, "model '%s' not found", want);
        return;
    }
    char *json = NULL;
    size_t len = 0;
    int64_t mtime = 0;
    int rc = cas_manifest_read(job->node->cas, &name, &json, &len, NULL, &mtime, &found);
    free(json);
    if (rc != 0) {
        api_job_set_err(job, rc == OX_ENOTFOUND ? 404 : 500, "model '%s' not found", want);
        return;
    }
    job->resp = model_obj(&found, mtime);
}

static void model_job_done(api_job_t *job)
{
    oai_job_done(job);
    free(job->ud);
}

void api_route_oai_model(node_t *node, http_req_t *req)
{
    const char *path = http_req_path(req);
    const char *name = path + strlen("/v1/models/");
    char *dup = strdup(name);
    if (!dup) {
        oai_error(req, 500, "out of memory");
        return;
    }
    api_job_submit(node, req, NULL, run_model, model_job_done, dup);
}
