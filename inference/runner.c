/* The loop-thread side of the runner: the list of loaded models, their load
 * in the work pool, the job queue limits, the keep-alive timers, the event
 * queue the workers fill, and an orderly close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "inference/runner_int.h"

static void maybe_finish_close(runner_t *r);
static void model_idle(rmodel_t *m);

/* ---- events from the workers ------------------------------------------------- */

void runner_post(runner_t *r, ev_kind_t kind, runner_job_t *job, rmodel_t *m, const char *text,
                 size_t len)
{
    rev_t *e = malloc(sizeof *e + len + 1);
    if (!e) {
        if (kind == EV_TEXT)
            return;
        /* a done event must arrive: retry until memory frees up */
        while (!(e = malloc(sizeof *e + 1)))
            uv_sleep(10);
        len = 0;
    }
    e->next = NULL;
    e->kind = kind;
    e->job = job;
    e->model = m;
    e->len = len;
    if (len)
        memcpy(e->text, text, len);
    e->text[len] = 0;
    uv_mutex_lock(&r->mu);
    if (r->ev_tail)
        r->ev_tail->next = e;
    else
        r->ev_head = e;
    r->ev_tail = e;
    uv_mutex_unlock(&r->mu);
    uv_async_send(&r->async);
}

static void job_free(runner_job_t *j)
{
    json_decref(j->q.body);
    json_decref(j->q.options);
    free(j->res.context);
    free(j->res.embeddings);
    free(j);
}

static void job_finish(runner_job_t *j)
{
    rmodel_t *m = j->model;
    if (j->rc == OX_ECANCELED)
        OX_INFO("request on %s cancelled after %d tokens", m ? m->name : "?", j->res.eval_count);
    if (j->cb.on_done)
        j->cb.on_done(j->ud, j->rc, j->err, j->rc == 0 ? &j->res : NULL);
    job_free(j);
    if (m) {
        m->n_jobs--;
        model_idle(m);
    }
}

static void on_async(uv_async_t *h)
{
    runner_t *r = h->data;
    uv_mutex_lock(&r->mu);
    rev_t *e = r->ev_head;
    r->ev_head = r->ev_tail = NULL;
    uv_mutex_unlock(&r->mu);
    while (e) {
        rev_t *next = e->next;
        if (e->kind == EV_TEXT) {
            if (e->job->cb.on_text && e->len)
                e->job->cb.on_text(e->job->ud, e->text, e->len);
        } else if (e->kind == EV_DONE) {
            job_finish(e->job);
        }
        free(e);
        e = next;
    }
    maybe_finish_close(r);
}

/* ---- models ----------------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
    rmodel_t *m = h->data;
    runner_t *r = m->runner;
    uv_cond_destroy(&m->cond);
    free(m->name);
    free(m->path);
    free(m->template_text);
    free(m->system);
    json_decref(m->messages);
    json_decref(m->details);
    free(m->slots);
    free(m);
    r->n_timers_closing--;
    maybe_finish_close(r);
}

static void model_unlink(rmodel_t *m)
{
    runner_t *r = m->runner;
    for (rmodel_t **pp = &r->models; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
}

/* Stops the slots (idle by now), frees the model and closes its timer. */
static void model_destroy(rmodel_t *m)
{
    runner_t *r = m->runner;
    model_unlink(m);
    uv_mutex_lock(&r->mu);
    m->exiting = 1;
    uv_cond_broadcast(&m->cond);
    uv_mutex_unlock(&r->mu);
    for (int i = 0; i < m->n_slots; i++)
        if (m->slots[i].started)
            uv_thread_join(&m->slots[i].thread);
    runner_model_unload(m);
    OX_INFO("unloaded model %s", m->name);
    uv_timer_stop(&m->timer);
    r->n_timers_closing++;
    uv_close((uv_handle_t *)&m->timer, on_timer_closed);
}

static void on_expire(uv_timer_t *t)
{
    rmodel_t *m = t->data;
    if (m->n_jobs == 0 && m->state == M_READY)
        model_destroy(m);
}

/* Called whenever a model may have become idle. */
static void model_idle(rmodel_t *m)
{
    if (m->n_jobs > 0 || m->state == M_LOADING)
        return;
    runner_t *r = m->runner;
    if (m->state == M_FAILED || r->closing || m->unload_when_idle || m->keep_alive_ns == 0) {
        model_destroy(m);
        return;
    }
    if (m->keep_alive_ns < 0)
        return;
    uint64_t ms = (uint64_t)(m->keep_alive_ns / 1000000);
    uv_timer_start(&m->timer, on_expire, ms ? ms : 1, 0);
}

static void fail_queued(rmodel_t *m, int rc, const char *err)
{
    runner_t *r = m->runner;
    uv_mutex_lock(&r->mu);
    runner_job_t *j = m->qhead;
    m->qhead = m->qtail = NULL;
    for (runner_job_t *k = j; k; k = k->next)
        r->n_waiting--;
    uv_mutex_unlock(&r->mu);
    while (j) {
        runner_job_t *next = j->next;
        j->rc = rc;
        snprintf(j->err, sizeof j->err, "%s", err);
        job_finish(j);
        j = next;
    }
}

static void on_loaded(uv_work_t *w, int status)
{
    rmodel_t *m = w->data;
    runner_t *r = m->runner;
    r->n_loading--;
    if (status != 0 && m->load_rc == 0) {
        m->load_rc = OX_ECANCELED;
        snprintf(m->load_err, sizeof m->load_err, "model load cancelled");
    }
    if (m->load_rc != 0) {
        m->state = M_FAILED;
        OX_WARN("loading %s failed: %s", m->name, m->load_err);
        m->n_jobs++; /* keep m alive while its jobs fail */
        fail_queued(m, m->load_rc, m->load_err);
        m->n_jobs--;
        model_idle(m);
        maybe_finish_close(r);
        return;
    }
    OX_INFO("loaded model %s (%.1f ms)", m->name, (double)m->load_ns / 1e6);
    m->state = M_READY;
    m->n_slots = r->cfg.num_parallel;
    m->slots = calloc((size_t)m->n_slots, sizeof *m->slots);
    if (!m->slots)
        m->n_slots = 0; /* model_destroy walks n_slots entries */
    int started = 0;
    for (int i = 0; m->slots && i < m->n_slots; i++) {
        m->slots[i].model = m;
        if (uv_thread_create(&m->slots[i].thread, runner_slot_main, &m->slots[i]) == 0) {
            m->slots[i].started = 1;
            started++;
        }
    }
    if (started == 0) {
        m->state = M_FAILED;
        m->n_jobs++;
        fail_queued(m, OX_ENOMEM, "cannot start inference threads");
        m->n_jobs--;
    }
    model_idle(m);
    maybe_finish_close(r);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static rmodel_t *model_new(runner_t *r, const runner_model_desc_t *d)
{
    rmodel_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->runner = r;
    snprintf(m->digest, sizeof m->digest, "%s", d->digest ? d->digest : "");
    m->name = strdup(d->name ? d->name : "");
    m->path = strdup(d->path ? d->path : "");
    m->template_text = dup_or_null(d->template_text);
    m->system = dup_or_null(d->system);
    m->messages = d->messages ? json_deep_copy(d->messages) : NULL;
    m->details = d->details ? json_deep_copy(d->details) : json_object();
    m->size = d->size;
    if (!m->name || !m->path || (d->template_text && !m->template_text) ||
        (d->system && !m->system) || !m->details || uv_cond_init(&m->cond) != 0) {
        free(m->name);
        free(m->path);
        free(m->template_text);
        free(m->system);
        json_decref(m->messages);
        json_decref(m->details);
        free(m);
        return NULL;
    }
    uv_timer_init(r->loop, &m->timer);
    m->timer.data = m;
    m->state = M_LOADING;
    m->load_work.data = m;
    if (uv_queue_work(r->loop, &m->load_work, runner_model_load_work, on_loaded) != 0) {
        m->state = M_FAILED;
        r->n_timers_closing++;
        uv_close((uv_handle_t *)&m->timer, on_timer_closed);
        return NULL;
    }
    r->n_loading++;
    m->next = r->models;
    r->models = m;
    return m;
}

static rmodel_t *model_find(runner_t *r, const char *digest)
{
    for (rmodel_t *m = r->models; m; m = m->next)
        if (m->state != M_FAILED && strcmp(m->digest, digest) == 0)
            return m;
    return NULL;
}

/* ---- public ------------------------------------------------------------------------ */

int runner_new(uv_loop_t *loop, const runner_config_t *cfg, runner_t **out)
{
    runner_t *r = calloc(1, sizeof *r);
    if (!r)
        return OX_ENOMEM;
    r->loop = loop;
    r->cfg = *cfg;
    if (r->cfg.num_parallel <= 0)
        r->cfg.num_parallel = 1;
    if (r->cfg.max_queue <= 0)
        r->cfg.max_queue = 512;
    if (uv_mutex_init(&r->mu) != 0) {
        free(r);
        return OX_ENOMEM;
    }
    if (uv_async_init(loop, &r->async, on_async) != 0) {
        uv_mutex_destroy(&r->mu);
        free(r);
        return OX_ENOMEM;
    }
    r->async.data = r;
    *out = r;
    return 0;
}

int runner_submit(runner_t *r, const runner_model_desc_t *d, const runner_request_t *q,
                  const runner_callbacks_t *cb, void *ud, runner_job_t **jobp)
{
    if (jobp)
        *jobp = NULL;
    int rc = 0;
    runner_job_t *j = NULL;
    if (r->closing) {
        rc = OX_ESTATE;
        goto fail;
    }
    /* Counted on the loop (not from what the workers have dequeued yet), so
     * the limit does not depend on thread timing: a job waits when its model
     * already has num_parallel jobs; at most max_queue jobs wait. */
    rmodel_t *m = model_find(r, d->digest ? d->digest : "");
    unsigned par = (unsigned)r->cfg.num_parallel, waiting = 0;
    for (rmodel_t *k = r->models; k; k = k->next)
        if (k->n_jobs > par)
            waiting += k->n_jobs - par;
    if (m && m->n_jobs >= par && waiting >= (unsigned)r->cfg.max_queue) {
        rc = OX_EBUSY;
        goto fail;
    }
    j = calloc(1, sizeof *j);
    if (!j) {
        rc = OX_ENOMEM;
        goto fail;
    }
    if (!m && !(m = model_new(r, d))) {
        rc = OX_ENOMEM;
        goto fail;
    }
    j->model = m;
    j->q = *q;
    j->cb = *cb;
    j->ud = ud;
    j->submit_ns = ox_time_mono_ns();
    atomic_init(&j->cancel, 0);
    m->keep_alive_ns = q->has_keep_alive ? q->keep_alive_ns : r->cfg.keep_alive_ns;
    m->unload_when_idle = 0;
    int64_t now = ox_time_now_ns();
    m->expires_ns = m->keep_alive_ns < 0 || m->keep_alive_ns > INT64_MAX - now
                        ? INT64_MAX
                        : now + m->keep_alive_ns;
    uv_timer_stop(&m->timer);
    m->n_jobs++;
    uv_mutex_lock(&r->mu);
    j->state = JOB_QUEUED;
    if (m->qtail)
        m->qtail->next = j;
    else
        m->qhead = j;
    m->qtail = j;
    r->n_waiting++;
    uv_cond_signal(&m->cond);
    uv_mutex_unlock(&r->mu);
    if (jobp)
        *jobp = j;
    return 0;
fail:
    json_decref(q->body);
    json_decref(q->options);
    free(j);
    return rc;
}

void runner_job_cancel(runner_job_t *job)
{
    if (job)
        atomic_store(&job->cancel, 1);
}

void runner_unload(runner_t *r, const char *digest)
{
    rmodel_t *m = model_find(r, digest);
    if (!m)
        return;
    m->unload_when_idle = 1;
    m->keep_alive_ns = 0;
    model_idle(m);
}

int runner_is_loaded(runner_t *r, const char *digest)
{
    return model_find(r, digest) != NULL;
}

static int ps_cmp(const void *a, const void *b)
{
    const rmodel_t *x = *(rmodel_t *const *)a, *y = *(rmodel_t *const *)b;
    return x->expires_ns > y->expires_ns ? -1 : x->expires_ns < y->expires_ns;
}

json_t *runner_ps(runner_t *r)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    size_t n = 0;
    for (rmodel_t *m = r->models; m; m = m->next)
        n++;
    rmodel_t **v = n ? calloc(n, sizeof *v) : NULL;
    if (n && !v)
        return arr;
    size_t k = 0;
    for (rmodel_t *m = r->models; m; m = m->next)
        if (m->state != M_FAILED)
            v[k++] = m;
    if (k > 1)
        qsort(v, k, sizeof *v, ps_cmp);
    for (size_t i = 0; i < k; i++) {
        rmodel_t *m = v[i];
        char exp[48];
        ox_time_rfc3339_local(m->expires_ns, exp, sizeof exp);
        uint32_t n_ctx = m->n_ctx_default;
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(m->name));
        json_object_set_new(o, "model", json_string(m->name));
        json_object_set_new(o, "size", json_integer((json_int_t)m->size));
        json_object_set_new(o, "digest", json_string(m->digest));
        json_object_set(o, "details", m->details);
        json_object_set_new(o, "expires_at", json_string(exp));
        json_object_set_new(o, "size_vram", json_integer(0));
        json_object_set_new(o, "context_length", json_integer(n_ctx ? n_ctx : 4096));
        json_array_append_new(arr, o);
    }
    free(v);
    return arr;
}

int runner_keep_alive_parse(const json_t *v, int64_t *ns)
{
    if (json_is_integer(v)) {
        json_int_t s = json_integer_value(v);
        if (s > INT64_MAX / 1000000000 || s < -INT64_MAX / 1000000000)
            *ns = s < 0 ? -1 : INT64_MAX;
        else
            *ns = (int64_t)s * 1000000000;
        return 0;
    }
    if (json_is_real(v)) {
        double s = json_real_value(v);
        if (s != s)
            return OX_EINVAL;
        *ns = s * 1e9 >= 9.2e18 ? INT64_MAX : s * 1e9 <= -9.2e18 ? -1 : (int64_t)(s * 1e9);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        /* a bare number in a string counts as seconds, as Ollama does */
        char *end;
        double d = strtod(s, &end);
        if (*s && *end == 0) {
            *ns = (int64_t)(d * 1e9);
            return 0;
        }
        return ox_duration_parse(s, ns);
    }
    return OX_EINVAL;
}

/* ---- close ---------------------------------------------------------------------------- */

static void on_async_closed(uv_handle_t *h)
{
    runner_t *r = h->data;
    void (*cb)(void *) = r->close_cb;
    void *ud = r->close_ud;
    uv_mutex_destroy(&r->mu);
    free(r);
    if (cb)
        cb(ud);
}

static void maybe_finish_close(runner_t *r)
{
    if (!r->closing || r->closing == 2)
        return;
    /* idle models go now; busy ones go when their last job is done */
    rmodel_t *m = r->models;
    while (m) {
        rmodel_t *next = m->next;
        if (m->n_jobs == 0 && m->state != M_LOADING)
            model_destroy(m);
        m = next;
    }
    if (r->models || r->n_loading || r->n_timers_closing)
        return;
    r->closing = 2;
    uv_close((uv_handle_t *)&r->async, on_async_closed);
}

void runner_close(runner_t *r, void (*cb)(void *ud), void *ud)
{
    if (!r) {
        if (cb)
            cb(ud);
        return;
    }
    if (r->closing)
        return;
    r->closing = 1;
    r->close_cb = cb;
    r->close_ud = ud;
    uv_mutex_lock(&r->mu);
    for (rmodel_t *m = r->models; m; m = m->next) {
        for (runner_job_t *j = m->qhead; j; j = j->next)
            atomic_store(&j->cancel, 1);
        for (int i = 0; m->slots && i < m->n_slots; i++)
            if (m->slots[i].cur)
                atomic_store(&m->slots[i].cur->cancel, 1);
    }
    uv_mutex_unlock(&r->mu);
    /* running jobs were cancelled by their HTTP requests closing; waiting
     * ones were just cancelled above; all come back through on_async */
    maybe_finish_close(r);
}
