/* Tool calls in a chat answer. When a request offers tools, a model answers
 * a call as JSON: {"name": ..., "arguments": {...}} (or "parameters"), one
 * object, a list of them, or several on their own lines, optionally inside
 * <tool_call>...</tool_call> tags or after a [TOOL_CALLS] marker, the forms
 * the common chat templates ask for. These helpers recognise the start of
 * such an answer (so a streamed reply can be held back) and turn the whole
 * answer into Ollama's message.tool_calls. */
#include <ctype.h>
#include <string.h>

#include "inference/runner.h"

static const char *const prefixes[] = {"<tool_call>", "[TOOL_CALLS]", "{", "["};

static const char *skip_ws(const char *s, const char *end)
{
    while (s < end && isspace((unsigned char)*s))
        s++;
    return s;
}

int runner_tool_prefix(const char *text, size_t len)
{
    const char *end = text + len;
    const char *s = skip_ws(text, end);
    size_t n = (size_t)(end - s);
    if (n == 0)
        return -1;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t pl = strlen(prefixes[i]);
        if (n >= pl && memcmp(s, prefixes[i], pl) == 0)
            return 1;
        if (n < pl && memcmp(s, prefixes[i], n) == 0)
            return -1;
    }
    return 0;
}

/* Appends {"function":{"name","arguments"}} for obj when it is a call. */
static int add_call(json_t *calls, json_t *obj)
{
    json_t *fn = json_object_get(obj, "function");
    if (json_is_object(fn) && json_is_string(json_object_get(fn, "name")))
        obj = fn;
    const char *name = json_string_value(json_object_get(obj, "name"));
    json_t *args = json_object_get(obj, "arguments");
    if (!args)
        args = json_object_get(obj, "parameters");
    if (json_is_string(args)) /* OpenAI style: arguments as JSON text */
        args = json_loads(json_string_value(args), 0, NULL);
    else
        args = json_incref(args);
    if (!name || !*name || !json_is_object(args)) {
        json_decref(args);
        return -1;
    }
    json_t *f = json_object();
    json_object_set_new(f, "name", json_string(name));
    json_object_set_new(f, "arguments", args);
    json_t *c = json_object();
    json_object_set_new(c, "function", f);
    json_array_append_new(calls, c);
    return 0;
}

static int add_value(json_t *calls, json_t *v)
{
    if (json_is_object(v))
        return add_call(calls, v);
    if (!json_is_array(v) || json_array_size(v) == 0)
        return -1;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) if (add_call(calls, e) != 0) return -1;
    return 0;
}

json_t *runner_tool_calls_parse(const char *text, size_t len)
{
    const char *end = text + len;
    const char *s = skip_ws(text, end);
    if ((size_t)(end - s) >= 12 && memcmp(s, "[TOOL_CALLS]", 12) == 0)
        s = skip_ws(s + 12, end);
    json_t *calls = json_array();
    if (!calls)
        return NULL;
    while (s < end) {
        int tagged = 0;
        if ((size_t)(end - s) >= 11 && memcmp(s, "<tool_call>", 11) == 0) {
            s = skip_ws(s + 11, end);
            tagged = 1;
        }
        json_error_t je;
        json_t *v = json_loadb(s, (size_t)(end - s), JSON_DISABLE_EOF_CHECK, &je);
        if (!v || add_value(calls, v) != 0) {
            json_decref(v);
            json_decref(calls);
            return NULL;
        }
        json_decref(v);
        s = skip_ws(s + je.position, end);
        if (tagged) {
            if ((size_t)(end - s) >= 12 && memcmp(s, "</tool_call>", 12) == 0)
                s = skip_ws(s + 12, end);
            else if (s < end) {
                json_decref(calls);
                return NULL;
            }
        }
    }
    if (json_array_size(calls) == 0) {
        json_decref(calls);
        return NULL;
    }
    return calls;
}
