/* Manifest JSON: strict parsing into cas_manifest_t and serialisation in the
 * byte layout Go's encoding/json gives Ollama's manifest struct (field order
 * schemaVersion, mediaType, config, layers; compact; "from" omitted when
 * empty; <, >, & escaped as Go does). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cas/cas.h"
#include "common/buf.h"
#include "common/err.h"

static int fail(char *err, size_t errlen, const char *msg, const char *what)
{
    if (err && errlen)
        snprintf(err, errlen, "%s%s%s", msg, what ? ": " : "", what ? what : "");
    return OX_EFORMAT;
}

static int get_str(json_t *o, const char *key, char *out, size_t cap, int required)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        out[0] = 0;
        return required ? -1 : 0;
    }
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return -1;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    if (strlen(out) != json_string_length(v))
        return -1; /* embedded NUL */
    return 0;
}

static int parse_layer(json_t *o, cas_layer_t *l, char *err, size_t errlen, const char *where)
{
    if (!json_is_object(o))
        return fail(err, errlen, "manifest: not an object", where);
    memset(l, 0, sizeof *l);
    char dig[128];
    if (get_str(o, "mediaType", l->media_type, sizeof l->media_type, 0))
        return fail(err, errlen, "manifest: bad mediaType", where);
    if (get_str(o, "digest", dig, sizeof dig, 1) || cas_digest_parse(dig, l->digest))
        return fail(err, errlen, "manifest: invalid digest", where);
    json_t *sz = json_object_get(o, "size");
    if (!json_is_integer(sz) || json_integer_value(sz) < 0)
        return fail(err, errlen, "manifest: bad size", where);
    l->size = (uint64_t)json_integer_value(sz);
    if (get_str(o, "from", l->from, sizeof l->from, 0))
        return fail(err, errlen, "manifest: bad from", where);
    return 0;
}

int cas_manifest_parse(const char *json, size_t len, cas_manifest_t *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root) {
        if (err && errlen)
            snprintf(err, errlen, "manifest: %s (line %d, column %d)", je.text, je.line,
                     je.column);
        return OX_EFORMAT;
    }
    int rc = 0;
    if (!json_is_object(root)) {
        rc = fail(err, errlen, "manifest: not an object", NULL);
        goto out;
    }
    json_t *sv = json_object_get(root, "schemaVersion");
    if (sv && !json_is_integer(sv)) {
        rc = fail(err, errlen, "manifest: bad schemaVersion", NULL);
        goto out;
    }
    out->schema_version = sv ? (int)json_integer_value(sv) : 0;
    if (get_str(root, "mediaType", out->media_type, sizeof out->media_type, 0)) {
        rc = fail(err, errlen, "manifest: bad mediaType", NULL);
        goto out;
    }
    json_t *cfg = json_object_get(root, "config");
    if (!cfg) {
        rc = fail(err, errlen, "manifest: missing config", NULL);
        goto out;
    }
    if ((rc = parse_layer(cfg, &out->config, err, errlen, "config")))
        goto out;
    json_t *layers = json_object_get(root, "layers");
    if (layers && !json_is_null(layers)) {
        if (!json_is_array(layers)) {
            rc = fail(err, errlen, "manifest: layers is not an array", NULL);
            goto out;
        }
        size_t n = json_array_size(layers);
        if (n) {
            out->layers = calloc(n, sizeof *out->layers);
            if (!out->layers) {
                rc = OX_ENOMEM;
                goto out;
            }
        }
        for (size_t i = 0; i < n; i++) {
            char where[32];
            snprintf(where, sizeof where, "layer %zu", i);
            if ((rc = parse_layer(json_array_get(layers, i), &out->layers[i], err, errlen,
                                  where)))
                goto out;
            out->n_layers = i + 1;
        }
    }
out:
    json_decref(root);
    if (rc)
        cas_manifest_free(out);
    return rc;
}

void cas_manifest_free(cas_manifest_t *m)
{
    if (!m)
        return;
    free(m->layers);
    m->layers = NULL;
    m->n_layers = 0;
}

/* Go's encoding/json string escaping (HTMLEscape on, as json.Marshal does). */
static int put_str(ox_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    int rc = ox_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p && !rc; p++) {
        unsigned ch = *p;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            rc = ox_buf_append(b, e, 2);
        } else if (ch == '\n') {
            rc = ox_buf_append(b, "\\n", 2);
        } else if (ch == '\r') {
            rc = ox_buf_append(b, "\\r", 2);
        } else if (ch == '\t') {
            rc = ox_buf_append(b, "\\t", 2);
        } else if (ch < 0x20 || ch == '<' || ch == '>' || ch == '&') {
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            rc = ox_buf_append(b, e, 6);
        } else if (ch == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            rc = ox_buf_puts(b, p[2] == 0xa8 ? "\\u2028" : "\\u2029");
            p += 2;
        } else {
            rc = ox_buf_append(b, p, 1);
        }
    }
    return rc ? rc : ox_buf_append(b, "\"", 1);
}

static int put_layer(ox_buf_t *b, const cas_layer_t *l)
{
    int rc = ox_buf_puts(b, "{\"mediaType\":");
    rc = rc ? rc : put_str(b, l->media_type);
    rc = rc ? rc : ox_buf_puts(b, ",\"digest\":");
    rc = rc ? rc : put_str(b, l->digest);
    rc = rc ? rc : ox_buf_printf(b, ",\"size\":%llu", (unsigned long long)l->size);
    if (!rc && l->from[0]) {
        rc = ox_buf_puts(b, ",\"from\":");
        rc = rc ? rc : put_str(b, l->from);
    }
    return rc ? rc : ox_buf_puts(b, "}");
}

char *cas_manifest_serialize(const cas_manifest_t *m, size_t *len)
{
    ox_buf_t b = OX_BUF_INIT;
    int rc = ox_buf_printf(&b, "{\"schemaVersion\":%d,\"mediaType\":", m->schema_version);
    rc = rc ? rc : put_str(&b, m->media_type);
    rc = rc ? rc : ox_buf_puts(&b, ",\"config\":");
    rc = rc ? rc : put_layer(&b, &m->config);
    rc = rc ? rc : ox_buf_puts(&b, ",\"layers\":[");
    for (size_t i = 0; i < m->n_layers && !rc; i++) {
        if (i)
            rc = ox_buf_puts(&b, ",");
        rc = rc ? rc : put_layer(&b, &m->layers[i]);
    }
    rc = rc ? rc : ox_buf_puts(&b, "]}");
    if (rc) {
        ox_buf_free(&b);
        return NULL;
    }
    if (len)
        *len = b.len;
    return ox_buf_steal(&b);
}
