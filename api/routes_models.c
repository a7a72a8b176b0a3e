/* GET /api/tags, POST /api/copy, DELETE /api/delete, GET /api/ps. Store work
 * runs in the work pool (api_job_submit); answers are shaped like Ollama's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "common/err.h"
#include "common/log.h"
#include "common/timeutil.h"

/* ---- GET|HEAD /api/tags ------------------------------------------------------ */

/* The config blob named by the listing itself: reading each manifest again
 * would walk manifests/ once per model (O(n^2) for n models). */
static json_t *read_config(cas_t *cas, const char *digest)
{
    char *c = NULL;
    size_t clen;
    json_t *cfg = NULL;
    if (digest[0] && api_blob_read(cas, digest, 1 << 20, &c, &clen) == 0) {
        cfg = json_loadb(c, clen, 0, NULL);
        free(c);
    }
    if (cfg && !json_is_object(cfg)) {
        json_decref(cfg);
        cfg = NULL;
    }
    return cfg;
}

static void run_tags(api_job_t *job)
{
    cas_model_info_t *v = NULL;
    size_t n = 0;
    int rc = cas_model_list(job->node->cas, &v, &n);
    if (rc != 0) {
        api_job_set_err(job, 500, "list models: %s", ox_strerror(rc));
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *cfg = read_config(job->node->cas, v[i].config);
        if (!cfg)
            cfg = json_object();
        char disp[700], when[64];
        cas_name_display(&v[i].name, disp, sizeof disp);
        ox_time_rfc3339_local(v[i].mtime_ns, when, sizeof when);
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(disp));
        json_object_set_new(e, "model", json_string(disp));
        json_object_set_new(e, "modified_at", json_string(when));
        json_object_set_new(e, "size", json_integer((json_int_t)v[i].size));
        json_object_set_new(e, "digest", json_string(v[i].digest));
        json_object_set_new(e, "details", api_model_details(cfg, ""));
        json_array_append_new(arr, e);
        json_decref(cfg);
    }
    free(v);
    job->resp = json_object();
    json_object_set_new(job->resp, "models", arr);
}

void api_route_tags(node_t *node, http_req_t *req)
{
    api_job_submit(node, req, NULL, run_tags, NULL, NULL);
}

/* ---- POST /api/copy ---------------------------------------------------------- */

/* cas_manifest_copy says OX_ENOTFOUND both when the source is absent and
 * when it names a missing blob. Returns 0 when the source manifest exists,
 * with *damaged set when one of its blobs is really gone (a concurrent
 * delete and re-create of the source also gives ENOTFOUND, for a moment). */
static int source_damaged(cas_t *cas, const cas_name_t *name, int *damaged)
{
    char *mj = NULL, err[256];
    size_t mlen;
    *damaged = 0;
    int rc = cas_manifest_read(cas, name, &mj, &mlen, NULL, NULL, NULL);
    if (rc != 0)
        return rc;
    cas_manifest_t m;
    rc = cas_manifest_parse(mj, mlen, &m, err, sizeof err);
    free(mj);
    if (rc != 0)
        return rc;
    uint64_t size;
    if (m.config.digest[0] && cas_blob_stat(cas, m.config.digest, &size) != 0)
        *damaged = 1;
    for (size_t i = 0; i < m.n_layers && !*damaged; i++)
        if (cas_blob_stat(cas, m.layers[i].digest, &size) != 0)
            *damaged = 1;
    cas_manifest_free(&m);
    return 0;
}

static void run_copy(api_job_t *job)
{
    const char *src = json_string_value(json_object_get(job->body, "source"));
    const char *dst = json_string_value(json_object_get(job->body, "destination"));
    cas_name_t s, d;
    if (!src || !dst || cas_name_parse(src, &s) != 0 || cas_name_parse(dst, &d) != 0) {
        api_job_set_err(job, 400, "invalid model name");
        return;
    }
    int rc = cas_manifest_copy(job->node->cas, &s, &d);
    int damaged = 0;
    if (rc == OX_ENOTFOUND && source_damaged(job->node->cas, &s, &damaged) == 0 && !damaged)
        rc = cas_manifest_copy(job->node->cas, &s, &d); /* it was being replaced: once more */
    if (damaged) {
        char q[600];
        api_go_quote(src, q, sizeof q);
        api_job_set_err(job, 500, "model %s is damaged: one of its layers is missing", q);
    } else if (rc == OX_ENOTFOUND) {
        char q[600];
        api_go_quote(src, q, sizeof q);
        api_job_set_err(job, 404, "model %s not found", q);
    } else if (rc != 0) {
        api_job_set_err(job, 500, "copy: %s", ox_strerror(rc));
    } else {
        job->status = 200;
    }
}

void api_route_copy(node_t *node, http_req_t *req)
{
    json_t *body;
    if (api_body_json(req, &body) != 0)
        return;
    api_job_submit(node, req, body, run_copy, NULL, NULL);
}

/* ---- DELETE /api/delete ------------------------------------------------------ */

static void run_delete(api_job_t *job)
{
    const char *m = api_body_model(job->body);
    cas_name_t n;
    if (cas_name_parse(m, &n) != 0) {
        api_job_set_err(job, 400, "invalid model name");
        return;
    }
    int rc = cas_manifest_delete(job->node->cas, &n);
    if (rc == OX_ENOTFOUND)
        api_job_set_err(job, 404, "model '%s' not found", m);
    else if (rc != 0)
        api_job_set_err(job, 500, "delete: %s", ox_strerror(rc));
    else
        job->status = 200;
}

void api_route_delete(node_t *node, http_req_t *req)
{
    json_t *body;
    if (api_body_json(req, &body) != 0)
        return;
    api_job_submit(node, req, body, run_delete, NULL, NULL);
}

/* ---- POST /api/verify (ollamax's own) ------------------------------------------ */

/* Re-hashes the blobs of one model ({"model": NAME}: its layers and config)
 * or of the whole store ({}). A blob whose bytes no longer match its digest
 * is removed (cas_blob_verify), so that the next pull fetches it again; the
 * answer names it: {"verified": N, "removed": [...], "missing": [...]}. */
static void run_verify(api_job_t *job)
{
    cas_t *cas = job->node->cas;
    const char *m = job->body ? api_body_model(job->body) : "";
    char (*d)[72] = NULL;
    size_t n = 0;
    if (*m) {
        cas_name_t name;
        if (cas_name_parse(m, &name) != 0) {
            api_job_set_err(job, 400, "invalid model name");
            return;
        }
        char *json = NULL, err[256];
        size_t len;
        cas_manifest_t mf;
        int rc = cas_manifest_read(cas, &name, &json, &len, NULL, NULL, NULL);
        if (rc == OX_ENOTFOUND) {
            api_job_set_err(job, 404, "model '%s' not found", m);
            return;
        }
        if (rc == 0 && (rc = cas_manifest_parse(json, len, &mf, err, sizeof err)) != 0) {
            free(json);
            api_job_set_err(job, 500, "verify: %s", err);
            return;
        }
        free(json);
        if (rc != 0) {
            api_job_set_err(job, 500, "verify: %s", ox_strerror(rc));
            return;
        }
        d = calloc(mf.n_layers + 1, sizeof *d);
        for (size_t i = 0; d && i <= mf.n_layers; i++) {
            const char *dig = i < mf.n_layers ? mf.layers[i].digest : mf.config.digest;
            if (*dig)
                snprintf(d[n++], sizeof *d, "%s", dig);
        }
        cas_manifest_free(&mf);
        if (!d) {
            api_job_set_err(job, 500, "%s", ox_strerror(OX_ENOMEM));
            return;
        }
    } else {
        int rc = cas_blob_list(cas, &d, &n);
        if (rc != 0) {
            api_job_set_err(job, 500, "verify: %s", ox_strerror(rc));
            return;
        }
    }
    json_t *removed = json_array(), *missing = json_array();
    json_int_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = cas_blob_verify(cas, d[i]);
        if (rc == 0)
            ok++;
        else if (rc == OX_EDIGEST)
            json_array_append_new(removed, json_string(d[i]));
        else if (rc == OX_ENOTFOUND)
            json_array_append_new(missing, json_string(d[i]));
        else
            OX_WARN("verify %s: %s", d[i], ox_strerror(rc));
    }
    free(d);
    job->resp = json_pack("{s:I,s:o,s:o}", "verified", ok, "removed", removed, "missing", missing);
    job->status = job->resp ? 200 : 500;
}

void api_route_verify(node_t *node, http_req_t *req)
{
    json_t *body = NULL;
    size_t len = 0;
    http_req_body(req, &len);
    if (len > 0 && api_body_json(req, &body) != 0) /* no body: the whole store */
        return;
    api_job_submit(node, req, body, run_verify, NULL, NULL);
}
