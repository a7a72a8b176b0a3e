/* POST /api/create: builds a manifest from uploaded GGUF blobs (`files`) or an
 * existing model (`from`), plus an uploaded GGUF adapter (`adapters`), with
 * template/system/params/license/messages layers, a config blob like Ollama's
 * ConfigV2 and the manifest.
 *
 * Everything runs in one work-pool job. Problems found while validating the
 * request (names, missing blobs, files or adapters that are not GGUF, unknown
 * base model) are answered with a real status before any byte is streamed;
 * the status lines (`parsing GGUF`, `using existing layer ...`, `creating new
 * layer ...`, `writing manifest`, `success`) are sent once the job is back,
 * followed by an error line if the job failed after validation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "common/buf.h"
#include "common/err.h"
#include "inference/gguf.h"

#define MT "application/vnd.ollama.image."
#define MT_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define CREATE_MAX_DEPTH 64 /* JSON levels allowed in parameters and messages */

typedef struct create {
    cas_layer_t *layers;
    char (*status)[160]; /* per layer: the line Ollama prints for it */
    size_t n, cap;
    json_t *config;
    int validated; /* past validation: errors are streamed */
} create_t;

static void add_status(api_job_t *job, const char *fmt, const char *arg)
{
    char s[256];
    snprintf(s, sizeof s, fmt, arg);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(s));
    json_array_append_new(job->lines, o);
}

static int layer_push(create_t *c, const char *mt, const char *digest, uint64_t size,
                      const char *from, int existed)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8;
        cas_layer_t *v = realloc(c->layers, nc * sizeof *v);
        if (!v)
            return OX_ENOMEM;
        c->layers = v;
        char(*st)[160] = realloc(c->status, nc * sizeof *st);
        if (!st)
            return OX_ENOMEM;
        c->status = st;
        c->cap = nc;
    }
    snprintf(c->status[c->n], sizeof c->status[c->n], "%s %s",
             existed ? "using existing layer" : "creating new layer", digest);
    cas_layer_t *l = &c->layers[c->n++];
    memset(l, 0, sizeof *l);
    snprintf(l->media_type, sizeof l->media_type, "%s", mt);
    snprintf(l->digest, sizeof l->digest, "%s", digest);
    l->size = size;
    snprintf(l->from, sizeof l->from, "%s", from ? from : "");
    return 0;
}

static void layers_remove(create_t *c, const char *mt)
{
    size_t j = 0;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->layers[i].media_type, mt) != 0) {
            memmove(c->status[j], c->status[i], sizeof c->status[i]);
            c->layers[j++] = c->layers[i];
        }
    c->n = j;
}

/* Stores bytes as a blob; *existed tells which status line Ollama prints. */
static int ingest_bytes(cas_t *cas, const void *p, size_t n, char digest[72], int *existed,
                        char *err, size_t errlen)
{
    cas_ingest_t *in;
    int rc = cas_ingest_begin(cas, NULL, n, &in);
    if (rc != 0) {
        snprintf(err, errlen, "store layer: %s", ox_strerror(rc));
        return rc;
    }
    rc = cas_ingest_write(in, p, n);
    if (rc != 0) {
        cas_ingest_abort(in);
        snprintf(err, errlen, "store layer: %s", ox_strerror(rc));
        return rc;
    }
    return cas_ingest_commit(in, digest, existed, err, errlen);
}

/* Adds a small layer (text or JSON + "\n") with its status line. */
static int add_small_layer(api_job_t *job, create_t *c, const char *kind, const char *data,
                           size_t n)
{
    char digest[72], mt[128];
    int existed = 0;
    int rc = ingest_bytes(job->node->cas, data, n, digest, &existed, job->err, sizeof job->err);
    if (rc != 0) {
        job->status = 500;
        return rc;
    }
    snprintf(mt, sizeof mt, MT "%s", kind);
    if (layer_push(c, mt, digest, n, NULL, existed) != 0)
        return OX_ENOMEM;
    return 0;
}

static int add_json_layer(api_job_t *job, create_t *c, const char *kind, const json_t *v)
{
    char *s = api_json_dumps(v);
    if (!s)
        return OX_ENOMEM;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return OX_ENOMEM;
    }
    t[n] = '\n'; /* json.Encoder.Encode ends with a newline */
    t[n + 1] = 0;
    int rc = add_small_layer(job, c, kind, t, n + 1);
    free(t);
    return rc;
}

/* Fills the config's model fields from a GGUF (first model layer wins, as
 * Ollama's cmp.Or does; families accumulate). */
static void config_from_gguf(json_t *cfg, const gguf_t *g)
{
    char arch[128] = "";
    gguf_get_str(g, "general.architecture", arch, sizeof arch);
    if (!json_object_get(cfg, "model_format"))
        json_object_set_new(cfg, "model_format", json_string("gguf"));
    if (!json_object_get(cfg, "model_family"))
        json_object_set_new(cfg, "model_family", json_stringn_nocheck(arch, strlen(arch)));
    json_t *fams = json_object_get(cfg, "model_families");
    if (!fams) {
        fams = json_array();
        json_object_set_new(cfg, "model_families", fams);
    }
    json_array_append_new(fams, json_stringn_nocheck(arch, strlen(arch)));
    if (!json_object_get(cfg, "model_type")) {
        char ps[32];
        gguf_param_size_str(gguf_param_count(g), ps, sizeof ps);
        json_object_set_new(cfg, "model_type", json_string(ps));
    }
    if (!json_object_get(cfg, "file_type")) {
        uint64_t ft = 0;
        gguf_get_u64(g, "general.file_type", &ft);
        json_object_set_new(cfg, "file_type", json_string(gguf_file_type_name((uint32_t)ft)));
    }
}

static const char *gguf_media_type(const gguf_t *g)
{
    char type[64] = "";
    gguf_get_str(g, "general.type", type, sizeof type);
    if (strcmp(type, "adapter") == 0)
        return MT "adapter";
    if (strcmp(type, "projector") == 0 || strcmp(type, "mmproj") == 0)
        return MT "projector";
    return MT "model";
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks one entry of `files` or `adapters` (file name -> digest string): the
 * digest is well formed, its blob is in the store and is a GGUF. On success
 * fills canon, *size and *out (caller closes it with gguf_close) and adds the
 * "parsing GGUF" line; otherwise sets a 400 on job and returns the code. */
static int blob_gguf_open(api_job_t *job, const char *file, const json_t *v, char canon[72],
                          uint64_t *size, gguf_t **out)
{
    const char *d = json_string_value(v);
    char path[4096], gerr[512];
    *out = NULL;
    if (!d || cas_digest_parse(d, canon) != 0) {
        api_job_set_err(job, 400, "invalid digest for %s: invalid digest format", file);
        return OX_EINVAL;
    }
    if (cas_blob_stat(job->node->cas, canon, size) != 0) {
        api_job_set_err(job, 400,
                        "blob not found for %s (digest %s): upload it first with POST "
                        "/api/blobs/%s",
                        file, canon, canon);
        return OX_ENOTFOUND;
    }
    cas_blob_path(job->node->cas, canon, path, sizeof path);
    if (gguf_open(path, out, gerr, sizeof gerr) != 0) {
        FILE *f = fopen(path, "rb");
        char magic[4] = {0};
        size_t got = f ? fread(magic, 1, 4, f) : 0;
        if (f)
            fclose(f);
        if (got < 4 || memcmp(magic, "GGUF", 4) != 0)
            api_job_set_err(job, 400, "supplied file was not in GGUF format: %s", file);
        else
            api_job_set_err(job, 400, "invalid GGUF file %s: %s", file, gerr);
        *out = NULL;
        return OX_EFORMAT;
    }
    add_status(job, "%s", "parsing GGUF");
    return 0;
}

/* Validation of `files`: every blob present and a GGUF. */
static int from_files(api_job_t *job, create_t *c, const json_t *files)
{
    size_t n = json_object_size(files), i = 0;
    if (n == 0) {
        api_job_set_err(job, 400, "no files provided to convert");
        return OX_EINVAL;
    }
    const char **keys = calloc(n, sizeof *keys);
    if (!keys)
        return OX_ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)files, k, v) keys[i++] = k;
    qsort(keys, n, sizeof *keys, cmp_key);
    int rc = 0;
    for (i = 0; i < n && rc == 0; i++) {
        char canon[72];
        uint64_t size;
        gguf_t *g;
        rc = blob_gguf_open(job, keys[i], json_object_get(files, keys[i]), canon, &size, &g);
        if (rc != 0)
            break;
        const char *mt = gguf_media_type(g);
        if (strcmp(mt, MT "model") == 0)
            config_from_gguf(c->config, g);
        gguf_close(g);
        rc = layer_push(c, mt, canon, size, NULL, 1);
    }
    free(keys);
    return rc;
}

/* Validation of `adapters`, after the base (`files` or `from`) so the adapter
 * layer follows the base's layers as in Ollama. Checked like `files`; Ollama
 * takes one GGUF adapter only. The layer is an adapter layer whatever the
 * GGUF's general.type (Ollama goes by general.type, which llama.cpp's LoRA
 * converter sets to "adapter"). Only model layers feed the config, as for
 * `files` (Ollama also appends the adapter's architecture to model_families). */
static int from_adapters(api_job_t *job, create_t *c, const json_t *adapters)
{
    if (!json_is_object(adapters)) {
        api_job_set_err(job, 400, "adapters must map file names to digests");
        return OX_EINVAL;
    }
    size_t n = json_object_size(adapters);
    if (n == 0) {
        api_job_set_err(job, 400, "no files provided to convert");
        return OX_EINVAL;
    }
    if (n > 1) {
        api_job_set_err(job, 400, "only one adapter is currently supported");
        return OX_EINVAL;
    }
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach((json_t *)adapters, k, v)
    {
        char canon[72];
        uint64_t size;
        gguf_t *g;
        rc = blob_gguf_open(job, k, v, canon, &size, &g);
        if (rc != 0)
            break;
        gguf_close(g);
        rc = layer_push(c, MT "adapter", canon, size, NULL, 1);
        if (rc != 0)
            break;
    }
    return rc;
}

/* Validation of `from`: the base model must be stored here. */
static int from_model(api_job_t *job, create_t *c, const char *from)
{
    cas_name_t n;
    if (cas_name_parse(from, &n) != 0) {
        api_job_set_err(job, 400, "invalid model name");
        return OX_EINVAL;
    }
    api_model_t base;
    char err[512];
    int rc = api_model_load(job->node->cas, &n, &base, err, sizeof err);
    if (rc != 0) {
        if (rc == OX_ENOTFOUND)
            api_job_set_err(job, 404, "model '%s' not found", from);
        else
            api_job_set_err(job, 500, "%s", err);
        api_model_free(&base);
        return rc;
    }
    char disp[700];
    cas_name_display(&base.name, disp, sizeof disp);
    for (size_t i = 0; i < base.m.n_layers && rc == 0; i++) {
        const cas_layer_t *l = &base.m.layers[i];
        if (strcmp(l->media_type, MT "model") == 0) {
            char path[4096];
            gguf_t *g = NULL;
            cas_blob_path(job->node->cas, l->digest, path, sizeof path);
            if (gguf_open(path, &g, err, sizeof err) == 0) {
                config_from_gguf(c->config, g);
                gguf_close(g);
            }
        }
        rc = layer_push(c, l->media_type, l->digest, l->size, strlen(disp) < 128 ? disp : "",
                        1);
    }
    api_model_free(&base);
    return rc;
}

/* Merges new parameters over the stored ones (new keys win). */
static json_t *merge_params(api_job_t *job, create_t *c, const json_t *newp)
{
    json_t *p = json_is_object(newp) ? json_deep_copy(newp) : json_object();
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->layers[i].media_type, MT "params") != 0)
            continue;
        char *text = NULL;
        size_t len;
        if (api_blob_read(job->node->cas, c->layers[i].digest, 1 << 20, &text, &len) != 0)
            continue;
        json_t *old = json_loadb(text, len, 0, NULL);
        free(text);
        const char *k;
        json_t *v;
        json_object_foreach(old, k, v) if (!json_object_get(p, k)) json_object_set(p, k, v);
        json_decref(old);
    }
    /* Go encodes a map with sorted keys */
    size_t n = json_object_size(p), i = 0;
    const char **keys = calloc(n ? n : 1, sizeof *keys);
    json_t *sorted = json_object();
    if (keys) {
        const char *k;
        json_t *v;
        json_object_foreach(p, k, v) keys[i++] = k;
        qsort(keys, n, sizeof *keys, cmp_key);
        for (i = 0; i < n; i++)
            json_object_set(sorted, keys[i], json_object_get(p, keys[i]));
        free(keys);
    }
    json_decref(p);
    return sorted;
}

static json_t *clean_messages(const json_t *msgs)
{
    static const char *keys[] = {"role", "content", "thinking", "images", "tool_calls",
                                 "tool_name"};
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        json_t *m = json_array_get(msgs, i), *o = json_object();
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            json_t *v = json_object_get(m, keys[k]);
            /* role and content are always written; _new with an incref
             * so a fresh "" is not leaked by json_object_set's own ref */
            if (v || k < 2)
                json_object_set_new(o, keys[k], v ? json_incref(v) : json_string(""));
        }
        json_array_append_new(out, o);
    }
    return out;
}

static int build(api_job_t *job, create_t *c, const cas_name_t *name)
{
    const json_t *b = job->body;
    const char *tmpl = json_string_value(json_object_get(b, "template"));
    const char *sys = json_string_value(json_object_get(b, "system"));
    json_t *lic = json_object_get(b, "license");
    json_t *msgs = json_object_get(b, "messages");
    int rc = 0;
    if (tmpl && *tmpl) {
        layers_remove(c, MT "template");
        rc = add_small_layer(job, c, "template", tmpl, strlen(tmpl));
    }
    if (rc == 0 && sys && *sys) {
        layers_remove(c, MT "system");
        rc = add_small_layer(job, c, "system", sys, strlen(sys));
    }
    if (rc == 0 && json_is_string(lic) && json_string_length(lic)) {
        rc = add_small_layer(job, c, "license", json_string_value(lic), json_string_length(lic));
    } else if (rc == 0 && json_is_array(lic)) {
        for (size_t i = 0; i < json_array_size(lic) && rc == 0; i++) {
            json_t *s = json_array_get(lic, i);
            if (json_is_string(s))
                rc = add_small_layer(job, c, "license", json_string_value(s),
                                     json_string_length(s));
        }
    }
    if (rc == 0) {
        json_t *p = merge_params(job, c, json_object_get(b, "parameters"));
        if (json_object_size(p)) {
            layers_remove(c, MT "params");
            rc = add_json_layer(job, c, "params", p);
        }
        json_decref(p);
    }
    if (rc == 0 && json_is_array(msgs) && json_array_size(msgs)) {
        layers_remove(c, MT "messages");
        json_t *m = clean_messages(msgs);
        rc = add_json_layer(job, c, "messages", m);
        json_decref(m);
    }
    if (rc != 0)
        return rc;

    /* config blob: ConfigV2 field order, then the rootfs of the layers */
    json_t *cfg = json_object();
    static const char *fields[] = {"model_format", "model_family", "model_families",
                                   "model_type", "file_type"};
    for (size_t i = 0; i < 5; i++) {
        json_t *v = json_object_get(c->config, fields[i]);
        json_object_set_new(cfg, fields[i],
                            v ? json_incref(v) : (i == 2 ? json_null() : json_string("")));
    }
    json_object_set_new(cfg, "architecture", json_string("amd64"));
    json_object_set_new(cfg, "os", json_string("linux"));
    json_t *rootfs = json_object(), *ids = json_array();
    for (size_t i = 0; i < c->n; i++)
        json_array_append_new(ids, json_string(c->layers[i].digest));
    json_object_set_new(rootfs, "type", json_string("layers"));
    json_object_set_new(rootfs, "diff_ids", ids);
    json_object_set_new(cfg, "rootfs", rootfs);
    char *cs = api_json_dumps(cfg);
    json_decref(cfg);
    if (!cs)
        return OX_ENOMEM;
    size_t cn = strlen(cs);
    char *ct = realloc(cs, cn + 2);
    if (!ct) {
        free(cs);
        return OX_ENOMEM;
    }
    ct[cn++] = '\n';
    ct[cn] = 0;
    char cdig[72];
    int existed;
    rc = ingest_bytes(job->node->cas, ct, cn, cdig, &existed, job->err, sizeof job->err);
    free(ct);
    if (rc != 0) {
        job->status = 500;
        return rc;
    }

    /* status lines of the layers in their final order, as Ollama prints */
    for (size_t i = 0; i < c->n; i++)
        add_status(job, "%s", c->status[i]);
    cas_manifest_t m = {0};
    m.schema_version = 2;
    snprintf(m.media_type, sizeof m.media_type, "%s", MT_MANIFEST);
    snprintf(m.config.media_type, sizeof m.config.media_type, "%s", MT_CONFIG);
    snprintf(m.config.digest, sizeof m.config.digest, "%s", cdig);
    m.config.size = cn;
    m.layers = c->layers;
    m.n_layers = c->n;
    size_t mlen;
    char *mj = cas_manifest_serialize(&m, &mlen);
    if (!mj)
        return OX_ENOMEM;
    add_status(job, "%s", "writing manifest");
    rc = cas_manifest_write(job->node->cas, name, mj, mlen, NULL, job->err, sizeof job->err);
    free(mj);
    if (rc == OX_ENOTFOUND) {
        /* err holds only the digest: a layer of the base model is gone
         * (damaged store, or the base was deleted meanwhile) */
        char d[80];
        snprintf(d, sizeof d, "%.79s", job->err);
        api_job_set_err(job, 500, "layer %s is missing from the store", d);
        return rc;
    }
    if (rc != 0) {
        job->status = 500;
        return rc;
    }
    add_status(job, "%s", "success");
    return 0;
}

static void run_create(api_job_t *job)
{
    create_t c = {0};
    job->lines = json_array();
    c.config = json_object();
    const char *model = api_body_model(job->body);
    const char *from = json_string_value(json_object_get(job->body, "from"));
    json_t *files = json_object_get(job->body, "files");
    const char *quant = json_string_value(json_object_get(job->body, "quantize"));
    cas_name_t name;
    int rc = 0;
    if (cas_name_parse(model, &name) != 0) {
        api_job_set_err(job, 400, "invalid model name");
    } else if (quant && *quant) {
        api_job_set_err(job, 400, "quantization during create is not supported; quantize the "
                                  "GGUF before importing it");
    } else if (from && *from) {
        rc = from_model(job, &c, from);
        c.validated = rc == 0;
    } else if (json_is_object(files)) {
        rc = from_files(job, &c, files);
        c.validated = rc == 0;
    } else {
        api_job_set_err(job, 400, "neither 'from' or 'files' was specified");
    }
    json_t *adapters = json_object_get(job->body, "adapters");
    if (c.validated && adapters && !json_is_null(adapters)) {
        rc = from_adapters(job, &c, adapters);
        c.validated = rc == 0;
    }
    if (!c.validated && rc != 0 && !job->err[0])
        api_job_set_err(job, 500, "%s", ox_strerror(rc)); /* out of memory */
    if (c.validated) {
        /* validation added one "parsing GGUF" per file and adapter; build
         * adds the layer lines in their final order */
        rc = build(job, &c, &name);
        if (rc != 0 && !job->err[0])
            api_job_set_err(job, 500, "%s", ox_strerror(rc));
        job->validated = 1;
    } else {
        json_array_clear(job->lines);
    }
    free(c.layers);
    free(c.status);
    json_decref(c.config);
}

static void done_create(api_job_t *job)
{
    int stream = api_want_stream(job->body);
    int validated = job->validated;
    if (!validated || !stream) {
        if (job->err[0]) {
            api_error(job->req, job->status ? job->status : 500, job->err);
        } else {
            json_t *o = json_object();
            json_object_set_new(o, "status", json_string("success"));
            api_json(job->req, 200, o);
        }
        return;
    }
    if (api_ndjson_begin(job->req) != 0) {
        http_stream_end(job->req);
        return;
    }
    for (size_t i = 0; i < json_array_size(job->lines); i++)
        if (api_ndjson_line(job->req, json_incref(json_array_get(job->lines, i))) != 0)
            break;
    if (job->err[0]) {
        json_t *o = json_object();
        json_object_set_new(o, "error", json_stringn_nocheck(job->err, strlen(job->err)));
        api_ndjson_line(job->req, o);
    }
    api_ndjson_end(job->req);
}

/* Nesting depth of v (a scalar is 0). */
static int json_depth(const json_t *v, int limit)
{
    if (limit < 0)
        return 1;
    int d = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            int c = json_depth(x, limit - 1);
            if (c > d)
                d = c;
        }
        return d + 1;
    }
    for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++) {
        int c = json_depth(json_array_get(v, i), limit - 1);
        if (c > d)
            d = c;
    }
    return d + json_is_array(v);
}

void api_route_create(node_t *node, http_req_t *req)
{
    json_t *body;
    if (api_body_json(req, &body) != 0)
        return;
    cas_name_t n;
    if (cas_name_parse(api_body_model(body), &n) != 0) {
        json_decref(body);
        api_error(req, 400, "invalid model name");
        return;
    }
    /* Layers are written by the Go-compatible writer, which stops at depth
     * 200: refuse deeper values here with a 400 instead of failing the
     * write later with a 500. */
    static const char *nested[] = {"parameters", "messages"};
    for (size_t i = 0; i < 2; i++) {
        if (json_depth(json_object_get(body, nested[i]), CREATE_MAX_DEPTH) > CREATE_MAX_DEPTH) {
            json_decref(body);
            api_errorf(req, 400, "%s nested too deeply (more than %d levels)", nested[i],
                       CREATE_MAX_DEPTH);
            return;
        }
    }
    api_job_submit(node, req, body, run_create, done_create, NULL);
}
