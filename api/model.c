/* Reading a stored model (manifest, config blob and small layers) as the
 * handlers of show, create and tags need it. Runs on any thread: the store is
 * thread-safe and nothing here touches the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "common/err.h"
#include "common/fs.h"

#define MT_PREFIX "application/vnd.ollama.image."
#define SMALL_LAYER_MAX (64u << 20)

int api_blob_read(cas_t *cas, const char *digest, size_t max, char **out, size_t *len)
{
    char path[4096];
    int rc = cas_blob_path(cas, digest, path, sizeof path);
    if (rc != 0)
        return rc;
    return ox_fs_read_all(path, max, out, len);
}

void api_model_free(api_model_t *m)
{
    cas_manifest_free(&m->m);
    json_decref(m->config);
    json_decref(m->params);
    json_decref(m->license);
    json_decref(m->messages);
    free(m->template_text);
    free(m->system);
    memset(m, 0, sizeof *m);
}

static int read_text(cas_t *cas, const cas_layer_t *l, char **out, char *err, size_t errlen)
{
    size_t len;
    int rc = api_blob_read(cas, l->digest, SMALL_LAYER_MAX, out, &len);
    if (rc != 0)
        snprintf(err, errlen, "read layer %s: %s", l->digest, ox_strerror(rc));
    return rc;
}

static int read_json(cas_t *cas, const cas_layer_t *l, json_t **out, char *err, size_t errlen)
{
    char *text = NULL;
    int rc = read_text(cas, l, &text, err, errlen);
    if (rc != 0)
        return rc;
    json_error_t je;
    *out = json_loads(text, JSON_DECODE_ANY, &je);
    free(text);
    if (!*out) {
        snprintf(err, errlen, "layer %s: %s", l->digest, je.text);
        return OX_EFORMAT;
    }
    return 0;
}

int api_model_load(cas_t *cas, const cas_name_t *name, api_model_t *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *json = NULL;
    size_t len = 0;
    int rc = cas_manifest_read(cas, name, &json, &len, out->digest, &out->mtime_ns, &out->name);
    if (rc != 0) {
        snprintf(err, errlen, "%s", ox_strerror(rc));
        return rc;
    }
    rc = cas_manifest_parse(json, len, &out->m, err, errlen);
    free(json);
    if (rc != 0)
        return rc;
    if (out->m.config.digest[0]) {
        char *cfg = NULL;
        size_t clen;
        if (api_blob_read(cas, out->m.config.digest, SMALL_LAYER_MAX, &cfg, &clen) == 0) {
            out->config = json_loadb(cfg, clen, 0, NULL);
            free(cfg);
        }
    }
    if (!json_is_object(out->config)) {
        json_decref(out->config);
        out->config = json_object();
    }
    for (size_t i = 0; i < out->m.n_layers; i++) {
        const cas_layer_t *l = &out->m.layers[i];
        if (strncmp(l->media_type, MT_PREFIX, strlen(MT_PREFIX)) != 0)
            continue;
        const char *kind = l->media_type + strlen(MT_PREFIX);
        rc = 0;
        if (strcmp(kind, "model") == 0) {
            if (!out->model_path[0]) {
                cas_blob_path(cas, l->digest, out->model_path, sizeof out->model_path);
                snprintf(out->parent, sizeof out->parent, "%s", l->from);
            }
        } else if (strcmp(kind, "template") == 0) {
            free(out->template_text);
            out->template_text = NULL;
            rc = read_text(cas, l, &out->template_text, err, errlen);
        } else if (strcmp(kind, "system") == 0) {
            free(out->system);
            out->system = NULL;
            rc = read_text(cas, l, &out->system, err, errlen);
        } else if (strcmp(kind, "params") == 0) {
            json_decref(out->params);
            out->params = NULL;
            rc = read_json(cas, l, &out->params, err, errlen);
            if (rc == 0 && !json_is_object(out->params)) {
                json_decref(out->params);
                out->params = NULL;
            }
        } else if (strcmp(kind, "license") == 0) {
            char *t = NULL;
            rc = read_text(cas, l, &t, err, errlen);
            if (rc == 0) {
                if (!out->license)
                    out->license = json_array();
                /* nocheck: stored text need not be UTF-8 (see routes_show.c) */
                json_array_append_new(out->license, json_stringn_nocheck(t, strlen(t)));
                free(t);
            }
        } else if (strcmp(kind, "adapter") == 0) {
            out->n_adapters++;
        } else if (strcmp(kind, "messages") == 0) {
            json_decref(out->messages);
            out->messages = NULL;
            rc = read_json(cas, l, &out->messages, err, errlen);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

json_t *api_model_details(const json_t *config, const char *parent)
{
    json_t *d = json_object();
    const char *fmt = json_string_value(json_object_get(config, "model_format"));
    const char *fam = json_string_value(json_object_get(config, "model_family"));
    const char *typ = json_string_value(json_object_get(config, "model_type"));
    const char *ft = json_string_value(json_object_get(config, "file_type"));
    json_t *fams = json_object_get(config, "model_families");
    json_object_set_new(d, "parent_model", json_string(parent ? parent : ""));
    json_object_set_new(d, "format", json_string(fmt ? fmt : ""));
    json_object_set_new(d, "family", json_string(fam ? fam : ""));
    json_object_set_new(d, "families", json_is_array(fams) ? json_deep_copy(fams) : json_null());
    json_object_set_new(d, "parameter_size", json_string(typ ? typ : ""));
    json_object_set_new(d, "quantization_level", json_string(ft ? ft : ""));
    return d;
}
