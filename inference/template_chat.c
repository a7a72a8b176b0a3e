/* From an Ollama chat/generate request to a prompt: message lists, collation,
 * the messages vs. legacy prompt/response modes, truncation to the context
 * window, and tool normalisation to Ollama's JSON field order. */
#include "inference/template_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

/* ---- normalisation to Go encoding/json order ---- */

static json_t *norm_sorted(json_t *v);

/* map[string]any: keys sorted, values recursively. */
static json_t *norm_map(json_t *obj)
{
    size_t n = json_object_size(obj), i = 0;
    const char **keys = malloc((n ? n : 1) * sizeof(*keys));
    json_t *r = json_object();
    if (!keys || !r) {
        free(keys);
        json_decref(r);
        return NULL;
    }
    const char *k;
    json_t *e;
    json_object_foreach(obj, k, e) keys[i++] = k;
    for (size_t a = 1; a < n; a++) /* insertion sort: maps here are small */
        for (size_t b = a; b > 0 && strcmp(keys[b - 1], keys[b]) > 0; b--) {
            const char *t = keys[b];
            keys[b] = keys[b - 1];
            keys[b - 1] = t;
        }
    for (i = 0; i < n; i++)
        json_object_set_new(r, keys[i], norm_sorted(json_object_get(obj, keys[i])));
    free(keys);
    return r;
}

static json_t *norm_sorted(json_t *v)
{
    if (json_is_object(v))
        return norm_map(v);
    if (json_is_array(v)) {
        json_t *r = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) json_array_append_new(r, norm_sorted(e));
        return r;
    }
    return json_incref(v);
}

enum { NO_DEFAULT, EMPTY_STRING, NULL_VALUE };

/* Copies key from src into dst if present, else the Go zero value dflt
 * (fields without omitempty are always emitted). */
static void put_field(json_t *dst, json_t *src, const char *key, json_t *(*norm)(json_t *),
                      int dflt)
{
    json_t *v = json_object_get(src, key);
    if (v && !json_is_null(v))
        json_object_set_new(dst, key, norm ? norm(v) : json_incref(v));
    else if (dflt == EMPTY_STRING)
        json_object_set_new(dst, key, json_string(""));
    else if (dflt == NULL_VALUE)
        json_object_set_new(dst, key, json_null());
}

/* api.ToolProperty {anyOf, type, items, description, enum} (all omitempty);
 * PropertyType marshals a one-element list as a plain string. */
static json_t *norm_property(json_t *p)
{
    if (!json_is_object(p))
        return norm_sorted(p);
    json_t *r = json_object();
    json_t *any = json_object_get(p, "anyOf");
    if (json_is_array(any) && json_array_size(any)) {
        json_t *a = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(any, i, e) json_array_append_new(a, norm_property(e));
        json_object_set_new(r, "anyOf", a);
    }
    json_t *type = json_object_get(p, "type");
    if (json_is_array(type) && json_array_size(type) == 1)
        json_object_set(r, "type", json_array_get(type, 0));
    else if ((json_is_array(type) && json_array_size(type)) || json_is_string(type))
        json_object_set(r, "type", type);
    put_field(r, p, "items", norm_sorted, NO_DEFAULT);
    json_t *d = json_object_get(p, "description");
    if (json_is_string(d) && json_string_length(d))
        json_object_set(r, "description", d);
    json_t *en = json_object_get(p, "enum");
    if (json_is_array(en) && json_array_size(en))
        json_object_set_new(r, "enum", norm_sorted(en));
    return r;
}

static json_t *norm_properties(json_t *props)
{
    json_t *sorted = norm_map(props), *r = json_object();
    const char *k;
    json_t *e;
    json_object_foreach(sorted, k, e) json_object_set_new(r, k, norm_property(json_object_get(props, k)));
    json_decref(sorted);
    return r;
}

/* api.Tool {type, items?, function{name, description, parameters{type,
 * $defs?, items?, required, properties}}}. */
static json_t *norm_tool(json_t *t)
{
    if (!json_is_object(t))
        return norm_sorted(t);
    json_t *r = json_object(), *fn = json_object_get(t, "function");
    put_field(r, t, "type", NULL, EMPTY_STRING);
    put_field(r, t, "items", norm_sorted, NO_DEFAULT);
    json_t *f = json_object();
    put_field(f, fn, "name", NULL, EMPTY_STRING);
    put_field(f, fn, "description", NULL, EMPTY_STRING);
    json_t *params = json_object_get(fn, "parameters"), *p = json_object();
    put_field(p, params, "type", NULL, EMPTY_STRING);
    put_field(p, params, "$defs", norm_sorted, NO_DEFAULT);
    put_field(p, params, "items", norm_sorted, NO_DEFAULT);
    put_field(p, params, "required", norm_sorted, NULL_VALUE);
    json_t *props = json_object_get(params, "properties");
    json_object_set_new(p, "properties", json_is_object(props) ? norm_properties(props) : json_null());
    json_object_set_new(f, "parameters", p);
    json_object_set_new(r, "function", f);
    return r;
}

/* Message with tool call arguments as sorted maps ({{ .Function.Arguments }}
 * prints them through encoding/json). Other fields are kept as they are. */
static json_t *norm_message(json_t *m)
{
    json_t *r = json_deep_copy(m);
    if (!r)
        return NULL;
    json_t *calls = json_object_get(r, "tool_calls");
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c) {
        json_t *fn = json_object_get(c, "function"), *args = json_object_get(fn, "arguments");
        if (json_is_object(args))
            json_object_set_new(fn, "arguments", norm_map(args));
    }
    if (!json_is_string(json_object_get(r, "content")))
        json_object_set_new(r, "content", json_string(""));
    if (!json_is_string(json_object_get(r, "role")))
        json_object_set_new(r, "role", json_string(""));
    return r;
}

/* ---- Ollama's Template.Execute ---- */

static const char *role_of(json_t *m)
{
    const char *r = json_string_value(json_object_get(m, "role"));
    return r ? r : "";
}

static const char *content_of(json_t *m)
{
    const char *c = json_string_value(json_object_get(m, "content"));
    return c ? c : "";
}

/* collate: consecutive messages of one role (not tool) merge with "\n\n";
 * system contents are also joined into *system. */
static json_t *collate(json_t *msgs, ox_buf_t *system)
{
    json_t *out = json_array();
    size_t i;
    json_t *m;
    bool first_sys = true;
    json_array_foreach(msgs, i, m) {
        if (!json_is_object(m))
            continue;
        if (strcmp(role_of(m), "system") == 0) {
            if (!first_sys)
                ox_buf_puts(system, "\n\n");
            ox_buf_puts(system, content_of(m));
            first_sys = false;
        }
        size_t n = json_array_size(out);
        json_t *last = n ? json_array_get(out, n - 1) : NULL;
        if (last && strcmp(role_of(last), role_of(m)) == 0 && strcmp(role_of(m), "tool") != 0) {
            ox_buf_t c = OX_BUF_INIT;
            ox_buf_printf(&c, "%s\n\n%s", content_of(last), content_of(m));
            json_object_set_new(last, "content", json_stringn_nocheck(c.data ? c.data : "", c.len));
            ox_buf_free(&c);
        } else {
            json_array_append_new(out, norm_message(m));
        }
    }
    return out;
}

static int render_legacy(const tmpl_t *t, json_t *msgs, ox_buf_t *out, char *err, size_t errlen)
{
    const char *system = "", *prompt = "", *response = "";
    int rc = 0;
    size_t i;
    json_t *m;
    json_t *data = NULL;
#define RUN(tp)                                                                      \
    do {                                                                             \
        data = json_pack("{s:s, s:s, s:s}", "System", system, "Prompt", prompt,       \
                         "Response", response);                                      \
        if (!data)                                                                   \
            return OX_ENOMEM;                                                        \
        rc = tmpl_render((tp), data, out, err, errlen);                              \
        json_decref(data);                                                           \
        if (rc)                                                                      \
            return rc;                                                               \
        system = prompt = response = "";                                             \
    } while (0)
    json_array_foreach(msgs, i, m) {
        const char *role = role_of(m);
        if (strcmp(role, "system") == 0) {
            if (*prompt || *response)
                RUN(t);
            system = content_of(m);
        } else if (strcmp(role, "user") == 0) {
            if (*response)
                RUN(t);
            prompt = content_of(m);
        } else if (strcmp(role, "assistant") == 0) {
            response = content_of(m);
        }
    }
    tmpl_t *cut = NULL;
    if ((rc = tmpl_cut_after(t, "Response", &cut)))
        return rc;
    data = json_pack("{s:s, s:s, s:s}", "System", system, "Prompt", prompt, "Response", response);
    rc = data ? tmpl_render(cut, data, out, err, errlen) : OX_ENOMEM;
    json_decref(data);
    tmpl_free(cut);
#undef RUN
    return rc;
}

int tmpl_render_messages(const tmpl_t *t, json_t *messages, json_t *tools, ox_buf_t *out,
                         char *err, size_t errlen)
{
    if (messages && !json_is_array(messages)) {
        snprintf(err, errlen, "messages must be an array");
        return OX_EINVAL;
    }
    ox_buf_t system = OX_BUF_INIT;
    json_t *msgs = collate(messages, &system);
    int rc = 0;
    if (!msgs) {
        ox_buf_free(&system);
        return OX_ENOMEM;
    }
    if (tmpl_uses_field(t, "Messages")) {
        json_t *tl = NULL;
        if (json_is_array(tools) && json_array_size(tools)) {
            tl = json_array();
            size_t i;
            json_t *e;
            json_array_foreach(tools, i, e) json_array_append_new(tl, norm_tool(e));
        }
        json_t *data = json_pack("{s:s%, s:O, s:o?, s:s, s:b, s:s, s:b}", "System",
                                 system.data ? system.data : "", system.len, "Messages", msgs,
                                 "Tools", tl, "Response", "", "Think", 0, "ThinkLevel", "",
                                 "IsThinkSet", 0);
        rc = data ? tmpl_render(t, data, out, err, errlen) : OX_ENOMEM;
        json_decref(data);
    } else {
        rc = render_legacy(t, msgs, out, err, errlen);
    }
    json_decref(msgs);
    ox_buf_free(&system);
    return rc;
}

int tmpl_render_suffix(const tmpl_t *t, const char *prompt, const char *suffix, ox_buf_t *out,
                       char *err, size_t errlen)
{
    json_t *data = json_pack("{s:s, s:s, s:s}", "Prompt", prompt ? prompt : "", "Suffix",
                             suffix ? suffix : "", "Response", "");
    if (!data)
        return OX_ENOMEM;
    int rc = tmpl_render(t, data, out, err, errlen);
    json_decref(data);
    return rc;
}

static json_t *message(const char *role, const char *content)
{
    return json_pack("{s:s, s:s}", "role", role, "content", content ? content : "");
}

json_t *tmpl_chat_messages(json_t *req_messages, const char *model_system,
                           json_t *model_messages)
{
    if (req_messages && !json_is_array(req_messages))
        return NULL;
    json_t *out = json_array();
    if (!out)
        return NULL;
    json_t *first = json_array_get(req_messages, 0);
    if (model_system && *model_system && (!first || strcmp(role_of(first), "system") != 0))
        json_array_append_new(out, message("system", model_system));
    if (json_is_array(model_messages))
        json_array_extend(out, model_messages);
    if (req_messages)
        json_array_extend(out, req_messages);
    return out;
}

json_t *tmpl_generate_messages(const char *prompt, const char *req_system,
                               const char *model_system, json_t *model_messages,
                               bool has_context)
{
    json_t *out = json_array();
    if (!out)
        return NULL;
    if (req_system && *req_system)
        json_array_append_new(out, message("system", req_system));
    else if (model_system && *model_system)
        json_array_append_new(out, message("system", model_system));
    if (!has_context && json_is_array(model_messages))
        json_array_extend(out, model_messages);
    json_array_append_new(out, message("user", prompt));
    return out;
}

int tmpl_render_messages_fit(const tmpl_t *t, json_t *messages, json_t *tools, long num_ctx,
                             tmpl_count_fn count, void *ctx, ox_buf_t *out, char *err,
                             size_t errlen)
{
    size_t n = json_array_size(messages);
    if (!count || n < 2)
        return tmpl_render_messages(t, messages, tools, out, err, errlen);
    /* Walk back from the last message while the prompt still fits; system
     * messages before the cut are always kept. */
    size_t keep = n - 1;
    int rc = 0;
    for (size_t i = n - 1; i-- > 0;) {
        json_t *sub = json_array();
        if (!sub)
            return OX_ENOMEM;
        for (size_t j = 0; j < i; j++)
            if (strcmp(role_of(json_array_get(messages, j)), "system") == 0)
                json_array_append(sub, json_array_get(messages, j));
        for (size_t j = i; j < n; j++)
            json_array_append(sub, json_array_get(messages, j));
        ox_buf_t p = OX_BUF_INIT;
        rc = tmpl_render_messages(t, sub, tools, &p, err, errlen);
        long c = rc ? 0 : count(ctx, p.data ? p.data : "", p.len);
        ox_buf_free(&p);
        json_decref(sub);
        if (rc)
            return rc;
        if (c < 0)
            return (int)c;
        if (c > num_ctx)
            break;
        keep = i;
    }
    json_t *sub = json_array();
    if (!sub)
        return OX_ENOMEM;
    for (size_t j = 0; j < keep; j++)
        if (strcmp(role_of(json_array_get(messages, j)), "system") == 0)
            json_array_append(sub, json_array_get(messages, j));
    for (size_t j = keep; j < n; j++)
        json_array_append(sub, json_array_get(messages, j));
    rc = tmpl_render_messages(t, sub, tools, out, err, errlen);
    json_decref(sub);
    return rc;
}
