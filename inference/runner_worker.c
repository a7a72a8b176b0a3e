/* The worker side of the runner: loading a model in the work pool, and the
 * slot threads that turn a request into a prompt, evaluate it (reusing the
 * slot's cached prefix), sample tokens and post text back to the loop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "inference/runner_int.h"

#define N_CTX_DEFAULT 4096

/* ---- load / unload ------------------------------------------------------------ */

void runner_model_load_work(uv_work_t *w)
{
    rmodel_t *m = w->data;
    int64_t t0 = ox_time_mono_ns();
    char err[384] = "";
    int rc = infer_model_load(m->path, &m->im, err, sizeof err);
    if (rc != 0) {
        m->load_rc = rc;
        snprintf(m->load_err, sizeof m->load_err, "unable to load model: %s", err);
        return;
    }
    const gguf_t *g = infer_model_gguf(m->im);
    const infer_model_info_t *info = infer_model_info(m->im);
    snprintf(m->arch, sizeof m->arch, "%s", info->arch);
    m->n_ctx_default = N_CTX_DEFAULT;
    if (info->n_ctx_train > 0 && info->n_ctx_train < m->n_ctx_default)
        m->n_ctx_default = info->n_ctx_train;
    rc = tok_load(g, &m->tok, err, sizeof err);
    if (rc != 0) {
        m->load_rc = rc;
        snprintf(m->load_err, sizeof m->load_err, "unable to load tokenizer: %s", err);
        return;
    }
    const char *src = m->template_text;
    char *hf = NULL;
    if (!src) {
        const gguf_kv_t *kv = gguf_find(g, "tokenizer.chat_template");
        if (kv && kv->val.type == GGUF_T_STRING)
            hf = strndup(kv->val.v.s.p, (size_t)kv->val.v.s.len);
        src = tmpl_builtin(tmpl_builtin_for(info->arch, hf));
        free(hf);
        if (!src)
            src = "{{ .Prompt }}";
    }
    rc = tmpl_parse(src, strlen(src), &m->tmpl, err, sizeof err);
    if (rc != 0) {
        m->load_rc = rc;
        snprintf(m->load_err, sizeof m->load_err, "%s", err);
        return;
    }
    m->load_ns = ox_time_mono_ns() - t0;
}

void runner_model_unload(rmodel_t *m)
{
    for (int i = 0; m->slots && i < m->n_slots; i++) {
        infer_ctx_free(m->slots[i].ctx);
        free(m->slots[i].cached);
        m->slots[i].ctx = NULL;
        m->slots[i].cached = NULL;
    }
    tmpl_free(m->tmpl);
    tok_free(m->tok);
    infer_model_free(m->im);
    m->tmpl = NULL;
    m->tok = NULL;
    m->im = NULL;
}

/* ---- helpers ------------------------------------------------------------------- */

static int fail(runner_job_t *j, int rc, const char *fmt, const char *arg)
{
    j->rc = rc;
    snprintf(j->err, sizeof j->err, fmt, arg ? arg : ox_strerror(rc));
    return rc;
}

static int slot_prepare(rslot_t *s, runner_job_t *j)
{
    rmodel_t *m = s->model;
    long n_ctx = (long)ropt_num(j->q.options, "num_ctx", 0);
    if (n_ctx <= 0)
        n_ctx = m->n_ctx_default;
    if (n_ctx < 16)
        n_ctx = 16;
    if (n_ctx > 1 << 20)
        n_ctx = 1 << 20;
    int n_thread = (int)ropt_num(j->q.options, "num_thread", 0);
    if (s->ctx && infer_ctx_n_ctx(s->ctx) != (uint32_t)n_ctx) {
        infer_ctx_free(s->ctx);
        s->ctx = NULL;
        s->n_cached = 0;
    }
    if (!s->ctx) {
        infer_ctx_params_t p = {.n_ctx = (uint32_t)n_ctx, .n_batch = 0, .n_threads = n_thread};
        int rc = infer_ctx_create(m->im, &p, &s->ctx);
        if (rc != 0)
            return fail(j, rc, "cannot create context: %s", NULL);
        s->n_cached = 0;
    } else if (n_thread > 0 && infer_ctx_threads(s->ctx) != n_thread) {
        infer_ctx_set_threads(s->ctx, n_thread);
    }
    return 0;
}

static long count_tokens(void *ud, const char *text, size_t len)
{
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = tok_encode(ud, text, len, true, true, &ids, &n);
    free(ids);
    return rc == 0 ? (long)n : rc;
}

/* Builds the prompt text of a generate or chat job into out. */
static int build_prompt(rslot_t *s, runner_job_t *j, ox_buf_t *out, long n_ctx)
{
    rmodel_t *m = s->model;
    json_t *b = j->q.body;
    char err[512] = "";
    int rc = 0;
    if (j->q.kind == RUNNER_CHAT) {
        json_t *msgs = tmpl_chat_messages(json_object_get(b, "messages"), m->system, m->messages);
        if (!msgs)
            return fail(j, OX_EINVAL, "invalid messages", NULL);
        json_t *tools = json_object_get(b, "tools");
        rc = tmpl_render_messages_fit(m->tmpl, msgs, json_is_array(tools) ? tools : NULL, n_ctx,
                                      count_tokens, m->tok, out, err, sizeof err);
        json_decref(msgs);
        if (rc != 0)
            return fail(j, rc == OX_ENOMEM ? rc : OX_EINVAL, "%s", err);
        return 0;
    }
    const char *prompt = json_string_value(json_object_get(b, "prompt"));
    if (!prompt)
        prompt = "";
    if (json_is_true(json_object_get(b, "raw")))
        return ox_buf_puts(out, prompt);
    const char *ttext = json_string_value(json_object_get(b, "template"));
    tmpl_t *own = NULL, *t = m->tmpl;
    if (ttext && *ttext) {
        rc = tmpl_parse(ttext, strlen(ttext), &own, err, sizeof err);
        if (rc != 0)
            return fail(j, OX_EINVAL, "%s", err);
        t = own;
    }
    const char *suffix = json_string_value(json_object_get(b, "suffix"));
    if (suffix && *suffix && !tmpl_uses_field(t, "Suffix")) {
        /* Ollama's answer for a model without fill-in-the-middle */
        const char *as_sent = json_string_value(json_object_get(b, "model"));
        snprintf(err, sizeof err, "\"%s\" does not support insert", as_sent ? as_sent : m->name);
        tmpl_free(own);
        return fail(j, OX_EINVAL, "%s", err);
    }
    if (suffix && *suffix) {
        rc = tmpl_render_suffix(t, prompt, suffix, out, err, sizeof err);
    } else {
        const char *sys = json_string_value(json_object_get(b, "system"));
        json_t *ctx = json_object_get(b, "context");
        int has_ctx = json_is_array(ctx) && json_array_size(ctx) > 0;
        json_t *msgs = tmpl_generate_messages(prompt, sys, m->system, m->messages, has_ctx);
        if (!msgs) {
            tmpl_free(own);
            return fail(j, OX_ENOMEM, "%s", NULL);
        }
        rc = tmpl_render_messages(t, msgs, NULL, out, err, sizeof err);
        json_decref(msgs);
    }
    tmpl_free(own);
    if (rc != 0)
        return fail(j, rc == OX_ENOMEM ? rc : OX_EINVAL, "%s", err);
    return 0;
}

/* Tokens of the prompt: the request's context (generate), then the text. */
static int prompt_tokens(rslot_t *s, runner_job_t *j, const ox_buf_t *text, int32_t **out,
                         size_t *n)
{
    rmodel_t *m = s->model;
    json_t *ctx = j->q.kind == RUNNER_GENERATE ? json_object_get(j->q.body, "context") : NULL;
    size_t nc = json_is_array(ctx) ? json_array_size(ctx) : 0;
    int32_t *ids = NULL;
    size_t ni = 0;
    int rc = tok_encode(m->tok, text->data ? text->data : "", text->len, nc == 0, true, &ids, &ni);
    if (rc != 0)
        return fail(j, rc, "tokenize: %s", NULL);
    int32_t *all = malloc((nc + ni + 1) * sizeof *all);
    if (!all) {
        free(ids);
        return fail(j, OX_ENOMEM, "%s", NULL);
    }
    size_t n_vocab = tok_n_vocab(m->tok);
    for (size_t i = 0; i < nc; i++) {
        json_int_t v = json_integer_value(json_array_get(ctx, i));
        if (!json_is_integer(json_array_get(ctx, i)) || v < 0 || (size_t)v >= n_vocab) {
            free(ids);
            free(all);
            return fail(j, OX_EINVAL, "invalid context token", NULL);
        }
        all[i] = (int32_t)v;
    }
    if (ni)
        memcpy(all + nc, ids, ni * sizeof *ids);
    free(ids);
    *out = all;
    *n = nc + ni;
    return 0;
}

static int cached_push(rslot_t *s, const int32_t *t, size_t n)
{
    if (s->n_cached + n > s->cap_cached) {
        size_t cap = s->cap_cached ? s->cap_cached * 2 : 256;
        while (cap < s->n_cached + n)
            cap *= 2;
        int32_t *p = realloc(s->cached, cap * sizeof *p);
        if (!p) {
            s->n_cached = 0;
            return OX_ENOMEM;
        }
        s->cached = p;
        s->cap_cached = cap;
    }
    memcpy(s->cached + s->n_cached, t, n * sizeof *t);
    s->n_cached += n;
    return 0;
}

/* Evaluates tokens[0..n) reusing the slot's cached prefix. */
static int eval_prompt(rslot_t *s, runner_job_t *j, const int32_t *tokens, size_t n)
{
    size_t p = 0;
    size_t lim = s->n_cached < n ? s->n_cached : n;
    if ((size_t)infer_ctx_n_past(s->ctx) < lim)
        lim = (size_t)infer_ctx_n_past(s->ctx);
    while (p < lim && s->cached[p] == tokens[p])
        p++;
    if (p == n)
        p = n - 1; /* the last token must be evaluated again for its logits */
    s->n_cached = p;
    j->res.prompt_cached = (int)p;
    /* in pieces, so a cancelled request stops between them */
    const size_t step = 512;
    for (size_t i = p; i < n; i += step) {
        if (atomic_load(&j->cancel))
            return fail(j, OX_ECANCELED, "%s", NULL);
        size_t k = n - i < step ? n - i : step;
        int rc = infer_eval(s->ctx, tokens + i, (int)k, (int)i, 0);
        if (rc != 0) {
            s->n_cached = 0;
            return fail(j, rc, "evaluate prompt: %s", NULL);
        }
        if (cached_push(s, tokens + i, k) != 0)
            return fail(j, OX_ENOMEM, "%s", NULL);
    }
    return 0;
}

/* The cache is full: keep BOS and the newer half of the rest, evaluated
 * again from BOS on (Ollama shifts the context the same way, so a long
 * answer goes on instead of stopping at num_ctx). */
static int shift_context(rslot_t *s, runner_job_t *j)
{
    size_t keep = s->n_cached > 0 && s->cached[0] == tok_bos(s->model->tok) ? 1 : 0;
    size_t discard = (s->n_cached - keep) / 2;
    if (discard == 0)
        return fail(j, OX_ETOOBIG, "context too small: %s", NULL);
    memmove(s->cached + keep, s->cached + keep + discard,
            (s->n_cached - keep - discard) * sizeof *s->cached);
    size_t n = s->n_cached - discard;
    s->n_cached = keep;
    for (size_t i = keep; i < n; i += 512) {
        if (atomic_load(&j->cancel))
            return fail(j, OX_ECANCELED, "%s", NULL);
        size_t k = n - i < 512 ? n - i : 512;
        int rc = infer_eval(s->ctx, s->cached + i, (int)k, (int)i, 0);
        if (rc != 0) {
            s->n_cached = 0;
            return fail(j, rc, "evaluate: %s", NULL);
        }
        s->n_cached = i + k;
    }
    return 0;
}

static void emit(runner_job_t *j, smp_stop_t *st, const char *text, size_t len, int *stopped)
{
    ox_buf_t out = OX_BUF_INIT;
    bool hit = false;
    if (!*stopped) {
        smp_stop_feed(st, text, len, &out, &hit);
        if (hit)
            *stopped = 1;
    }
    if (out.len)
        runner_post(j->model->runner, EV_TEXT, j, NULL, out.data, out.len);
    ox_buf_free(&out);
}

/* ---- generate / chat ------------------------------------------------------------ */

static int run_generate(rslot_t *s, runner_job_t *j)
{
    rmodel_t *m = s->model;
    long n_ctx = (long)infer_ctx_n_ctx(s->ctx);
    ox_buf_t text = OX_BUF_INIT, piece = OX_BUF_INIT;
    int32_t *tokens = NULL, *outtok = NULL;
    float *lbuf = NULL;
    size_t n = 0, n_out = 0;
    size_t n_vocab = tok_n_vocab(m->tok);
    const infer_model_info_t *info = infer_model_info(m->im);
    size_t n_logits = info->n_vocab;
    smp_t *smp = NULL;
    smp_stop_t st;
    tok_stream_t ts;
    rjson_t js;
    int json = j->q.format == RUNNER_FORMAT_JSON;
    memset(&st, 0, sizeof st);
    tok_stream_init(&ts, m->tok);
    rjson_init(&js);
    int rc = build_prompt(s, j, &text, n_ctx);
    if (rc == 0)
        rc = prompt_tokens(s, j, &text, &tokens, &n);
    if (rc != 0)
        goto done;
    if (n == 0) {
        /* an empty prompt still needs one position to predict from */
        int32_t bos = tok_bos(m->tok);
        tokens[0] = bos >= 0 ? bos : 0;
        n = 1;
    }
    if ((long)n >= n_ctx) {
        /* keep BOS and the newest tokens, leaving room to answer */
        size_t keep = tok_add_bos(m->tok) && tokens[0] == tok_bos(m->tok) ? 1 : 0;
        size_t drop = n - (size_t)n_ctx / 2;
        memmove(tokens + keep, tokens + keep + drop, (n - keep - drop) * sizeof *tokens);
        n -= drop;
    }
    smp_params_t sp;
    ropt_sampler(j->q.options, json, &sp);
    char err[256] = "";
    if ((rc = smp_new(&sp, m->tok, &smp, err, sizeof err)) != 0) {
        fail(j, rc, "%s", err[0] ? err : NULL);
        goto done;
    }
    size_t n_stops = 0;
    const char **stops = ropt_stops(j->q.options, &n_stops);
    rc = smp_stop_init(&st, stops, n_stops);
    free(stops);
    long num_predict = (long)ropt_num(j->q.options, "num_predict", -1);
    /* "forever" is bounded as Ollama bounds it, so a model that never emits
     * an end token cannot hold a slot indefinitely */
    if (num_predict < 0 || num_predict > 10 * n_ctx)
        num_predict = 10 * n_ctx;
    size_t cap_out = 256;
    outtok = malloc(sizeof *outtok * cap_out);
    lbuf = malloc(n_logits * sizeof *lbuf);
    if (rc != 0 || !outtok || !lbuf) {
        rc = fail(j, OX_ENOMEM, "%s", NULL);
        goto done;
    }
    int64_t t0 = ox_time_mono_ns();
    if ((rc = eval_prompt(s, j, tokens, n)) != 0)
        goto done;
    int64_t t1 = ox_time_mono_ns();
    j->res.prompt_eval_count = (int)n;
    j->res.prompt_eval_ns = t1 - t0;
    smp_accept_prompt(smp, tokens, n);
    const char *reason = "stop";
    int stopped = 0;
    for (;;) {
        if (atomic_load(&j->cancel)) {
            rc = fail(j, OX_ECANCELED, "%s", NULL);
            break;
        }
        if (num_predict >= 0 && j->res.eval_count >= num_predict) {
            reason = "length";
            break;
        }
        if (smp_json_done(smp))
            break;
        const float *lg = infer_logits(s->ctx, -1);
        if (!lg)
            break;
        memcpy(lbuf, lg, n_logits * sizeof *lbuf);
        int32_t tok = smp_sample(smp, lbuf, n_logits < n_vocab ? n_logits : n_vocab);
        if (tok < 0 || tok_is_eog(m->tok, tok))
            break;
        smp_accept(smp, tok);
        j->res.eval_count++;
        outtok[n_out++] = tok;
        ox_buf_reset(&piece);
        tok_stream_push(&ts, tok, &piece);
        if (piece.len) {
            if (json)
                rjson_feed(&js, piece.data, piece.len);
            emit(j, &st, piece.data, piece.len, &stopped);
        }
        if (stopped)
            break;
        if (n_out == cap_out) {
            int32_t *p = realloc(outtok, 2 * cap_out * sizeof *outtok);
            if (!p) {
                rc = fail(j, OX_ENOMEM, "%s", NULL);
                break;
            }
            outtok = p;
            cap_out *= 2;
        }
        if ((long)(s->n_cached + 1) > n_ctx && (rc = shift_context(s, j)) != 0)
            break;
        int erc = infer_eval(s->ctx, &tok, 1, (int)s->n_cached, 0);
        if (erc != 0) {
            s->n_cached = 0;
            rc = fail(j, erc, "evaluate: %s", NULL);
            break;
        }
        cached_push(s, &tok, 1);
    }
    if (rc == 0 && !stopped) {
        ox_buf_reset(&piece);
        tok_stream_flush(&ts, &piece);
        if (piece.len) {
            if (json)
                rjson_feed(&js, piece.data, piece.len);
            emit(j, &st, piece.data, piece.len, &stopped);
        }
        if (!stopped) {
            ox_buf_reset(&piece);
            smp_stop_flush(&st, &piece);
            if (json && !rjson_done(&js))
                rjson_close(&js, &piece);
            if (piece.len)
                runner_post(m->runner, EV_TEXT, j, NULL, piece.data, piece.len);
        }
    }
    j->res.eval_ns = ox_time_mono_ns() - t1;
    if (rc == 0) {
        snprintf(j->res.done_reason, sizeof j->res.done_reason, "%s", reason);
        if (j->q.kind == RUNNER_GENERATE) {
            j->res.context = malloc((n + n_out + 1) * sizeof(int32_t));
            if (j->res.context) {
                memcpy(j->res.context, tokens, n * sizeof(int32_t));
                memcpy(j->res.context + n, outtok, n_out * sizeof(int32_t));
                j->res.n_context = n + n_out;
            }
        }
    }
done:
    ox_buf_free(&piece);
    free(lbuf);
    free(outtok);
    free(tokens);
    ox_buf_free(&text);
    smp_free(smp);
    smp_stop_free(&st);
    tok_stream_free(&ts);
    return rc;
}

/* ---- embed ------------------------------------------------------------------------ */

static int run_embed(rslot_t *s, runner_job_t *j)
{
    rmodel_t *m = s->model;
    json_t *in = json_object_get(j->q.body, "input");
    if (!in)
        in = json_object_get(j->q.body, "prompt");
    size_t count = json_is_array(in) ? json_array_size(in) : 1;
    const infer_model_info_t *info = infer_model_info(m->im);
    size_t dim = info->n_embd;
    json_t *tr = json_object_get(j->q.body, "truncate");
    int truncate = tr ? json_is_true(tr) : 1;
    long dims = (long)ropt_num(j->q.body, "dimensions", 0);
    long n_ctx = (long)infer_ctx_n_ctx(s->ctx);
    int64_t pool = 1;
    char key[64];
    snprintf(key, sizeof key, "%s.pooling_type", m->arch);
    if (gguf_get_i64(infer_model_gguf(m->im), key, &pool) != 0)
        pool = 1;
    float *out = calloc(count ? count : 1, dim * sizeof(float));
    if (!out)
        return fail(j, OX_ENOMEM, "%s", NULL);
    s->n_cached = 0; /* infer_embed reuses the cache from position 0 */
    int64_t t0 = ox_time_mono_ns();
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        json_t *v = json_is_array(in) ? json_array_get(in, i) : in;
        const char *text = json_string_value(v);
        if (!text) {
            rc = fail(j, OX_EINVAL, "invalid input type", NULL);
            break;
        }
        if (atomic_load(&j->cancel)) {
            rc = fail(j, OX_ECANCELED, "%s", NULL);
            break;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        rc = tok_encode(m->tok, text, strlen(text), true, true, &ids, &n);
        if (rc != 0) {
            fail(j, rc, "tokenize: %s", NULL);
            break;
        }
        if ((long)n > n_ctx) {
            if (!truncate) {
                free(ids);
                rc = fail(j, OX_EINVAL, "input length exceeds maximum context length", NULL);
                break;
            }
            n = (size_t)n_ctx;
        }
        if (n == 0) {
            free(ids);
            rc = fail(j, OX_EINVAL, "input is empty", NULL);
            break;
        }
        float *row = out + i * dim;
        rc = infer_embed(s->ctx, ids, (int)n, pool == 3 ? INFER_POOL_LAST : INFER_POOL_MEAN, row);
        free(ids);
        if (rc != 0) {
            fail(j, rc, "embed: %s", NULL);
            break;
        }
        j->res.prompt_eval_count += (int)n;
    }
    if (rc != 0) {
        free(out);
        return rc;
    }
    if (dims > 0 && (size_t)dims < dim) {
        /* keep the first dims values, normalised again */
        for (size_t i = 0; i < count; i++) {
            float *src = out + i * dim, *dst = out + i * (size_t)dims;
            double ss = 0;
            for (long k = 0; k < dims; k++)
                ss += (double)src[k] * src[k];
            double sc = ss > 0 ? 1.0 / sqrt(ss) : 0;
            for (long k = 0; k < dims; k++)
                dst[k] = (float)(src[k] * sc);
        }
        dim = (size_t)dims;
    }
    j->res.embeddings = out;
    j->res.n_embeddings = count;
    j->res.dim = dim;
    j->res.prompt_eval_ns = ox_time_mono_ns() - t0;
    snprintf(j->res.done_reason, sizeof j->res.done_reason, "stop");
    return 0;
}

/* ---- slot thread --------------------------------------------------------------------- */

static void run_job(rslot_t *s, runner_job_t *j)
{
    int64_t start = ox_time_mono_ns();
    j->res.load_ns = start - j->submit_ns;
    if (j->res.load_ns < 0)
        j->res.load_ns = 0;
    if (atomic_load(&j->cancel)) {
        fail(j, OX_ECANCELED, "%s", NULL);
    } else if (j->q.kind == RUNNER_LOAD) {
        int unload = j->q.has_keep_alive && j->q.keep_alive_ns == 0;
        snprintf(j->res.done_reason, sizeof j->res.done_reason, "%s", unload ? "unload" : "load");
    } else if (slot_prepare(s, j) == 0) {
        if (j->q.kind == RUNNER_EMBED)
            run_embed(s, j);
        else
            run_generate(s, j);
    }
    j->res.total_ns = ox_time_mono_ns() - (j->q.start_ns ? j->q.start_ns : j->submit_ns);
}

void runner_slot_main(void *arg)
{
    rslot_t *s = arg;
    rmodel_t *m = s->model;
    runner_t *r = m->runner;
    for (;;) {
        uv_mutex_lock(&r->mu);
        while (!m->qhead && !m->exiting)
            uv_cond_wait(&m->cond, &r->mu);
        runner_job_t *j = m->qhead;
        if (!j) {
            uv_mutex_unlock(&r->mu);
            break;
        }
        m->qhead = j->next;
        if (!m->qhead)
            m->qtail = NULL;
        j->next = NULL;
        j->state = JOB_RUNNING;
        r->n_waiting--;
        s->cur = j;
        uv_mutex_unlock(&r->mu);
        run_job(s, j);
        uv_mutex_lock(&r->mu);
        s->cur = NULL;
        j->state = JOB_DONE;
        uv_mutex_unlock(&r->mu);
        runner_post(r, EV_DONE, j, m, NULL, 0);
    }
}
