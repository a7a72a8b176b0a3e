/* Work-pool jobs of the API handlers: run blocking store work off the loop,
 * finish the request on the loop. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api_int.h"
#include "common/err.h"

void api_hold(node_t *node)
{
    if (node->api)
        node->api->jobs++;
}

void api_release(node_t *node)
{
    struct api *a = node->api;
    if (!a)
        return;
    if (a->jobs > 0)
        a->jobs--;
    /* api_stop defers the free until the last job is back (api.c). */
    if (a->stopping)
        api__maybe_finish_stop(a);
}

void api_job_set_err(api_job_t *job, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(job->err, sizeof job->err, fmt, ap);
    va_end(ap);
    job->status = status;
}

void api_job_respond(api_job_t *job)
{
    if (job->err[0]) {
        api_error(job->req, job->status ? job->status : 500, job->err);
    } else if (job->resp) {
        json_t *r = job->resp;
        job->resp = NULL;
        api_json(job->req, job->status ? job->status : 200, r);
    } else {
        http_respond(job->req, job->status ? job->status : 200, NULL, NULL, 0);
    }
}

static void on_work(uv_work_t *w)
{
    api_job_t *job = w->data;
    job->run(job);
}

static void on_after_work(uv_work_t *w, int status)
{
    api_job_t *job = w->data;
    node_t *node = job->node;
    if (status == UV_ECANCELED && !job->err[0])
        api_job_set_err(job, 500, "request canceled");
    if (job->done)
        job->done(job);
    else
        api_job_respond(job);
    json_decref(job->body);
    json_decref(job->resp);
    json_decref(job->lines);
    free(job);
    api_release(node);
}

void api_job_submit(node_t *node, http_req_t *req, json_t *body, api_job_fn run,
                    api_job_fn done, void *ud)
{
    api_job_t *job = calloc(1, sizeof *job);
    if (!job) {
        json_decref(body);
        api_error(req, 500, "out of memory");
        return;
    }
    job->node = node;
    job->req = req;
    job->body = body;
    job->run = run;
    job->done = done;
    job->ud = ud;
    job->work.data = job;
    api_hold(node);
    int rc = uv_queue_work(node->loop, &job->work, on_work, on_after_work);
    if (rc != 0) {
        json_decref(body);
        free(job);
        api_release(node);
        api_errorf(req, 500, "queue work: %s", uv_strerror(rc));
    }
}
