/* Response helpers and a JSON writer that produces the bytes Go's
 * encoding/json would: compact, keys in insertion order, <, >, & and U+2028/9
 * escaped as \u003c etc., floats in their shortest round-trip form. Clients
 * compare some of these bytes (digests of config blobs written by create), so
 * jansson's own dumper ("%.17g" reals, no HTML escaping) is not used. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/routes.h"
#include "common/buf.h"
#include "common/err.h"

#define CT_JSON "application/json; charset=utf-8"

/* ---- Go-compatible encoding ---------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n, unsigned *cp)
{
    unsigned c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    unsigned v, min;
    if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static int put_string(ox_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    int rc = ox_buf_append(b, "\"", 1);
    size_t i = 0, start = 0;
    while (i < n && rc == 0) {
        unsigned c = p[i];
        const char *esc = NULL;
        char tmp[8];
        size_t adv = 1;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            unsigned cp;
            adv = utf8_len(p + i, n - i, &cp);
            if (adv == 0) {
                esc = "\\ufffd";
                adv = 1;
            } else if (cp == 0x2028 || cp == 0x2029) {
                snprintf(tmp, sizeof tmp, "\\u%04x", cp);
                esc = tmp;
            } else {
                i += adv;
                continue;
            }
        } else if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c == '\b') {
            esc = "\\b";
        } else if (c == '\f') {
            esc = "\\f";
        } else {
            tmp[0] = '\\', tmp[1] = 'u', tmp[2] = '0', tmp[3] = '0';
            tmp[4] = hex[c >> 4], tmp[5] = hex[c & 15], tmp[6] = 0;
            esc = tmp;
        }
        rc = ox_buf_append(b, s + start, i - start);
        if (rc == 0)
            rc = ox_buf_puts(b, esc);
        i += adv;
        start = i;
    }
    if (rc == 0)
        rc = ox_buf_append(b, s + start, n - start);
    if (rc == 0)
        rc = ox_buf_append(b, "\"", 1);
    return rc;
}

void api_go_float(double v, char *out, size_t cap)
{
    if (!isfinite(v)) {
        snprintf(out, cap, "null");
        return;
    }
    if (v == 0) {
        snprintf(out, cap, signbit(v) ? "-0" : "0");
        return;
    }
    /* Shortest decimal that reads back as the same double. */
    char e[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e is "[-]d[.ddd]e[+-]XX": split into sign, digits and exponent. */
    const char *q = e;
    int neg = 0;
    if (*q == '-')
        neg = 1, q++;
    char digits[24];
    size_t nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q != '.' && nd < sizeof digits - 1)
            digits[nd++] = *q;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;
    int exp = atoi(q + 1);
    double a = fabs(v);
    char res[64];
    size_t r = 0;
    if (neg)
        res[r++] = '-';
    if (a < 1e-6 || a >= 1e21) {
        res[r++] = digits[0];
        if (nd > 1) {
            res[r++] = '.';
            memcpy(res + r, digits + 1, nd - 1);
            r += nd - 1;
        }
        /* Go writes at least two exponent digits, then drops the zero of
         * "e-0X". */
        int ae = exp < 0 ? -exp : exp;
        if (exp < 0 && ae < 10)
            r += (size_t)snprintf(res + r, sizeof res - r, "e-%d", ae);
        else
            r += (size_t)snprintf(res + r, sizeof res - r, "e%c%02d", exp < 0 ? '-' : '+', ae);
    } else if (exp < 0) {
        res[r++] = '0';
        res[r++] = '.';
        for (int i = 0; i < -exp - 1; i++)
            res[r++] = '0';
        memcpy(res + r, digits, nd);
        r += nd;
    } else {
        for (int i = 0; i <= exp; i++)
            res[r++] = (size_t)i < nd ? digits[i] : '0';
        if (nd > (size_t)exp + 1) {
            res[r++] = '.';
            memcpy(res + r, digits + exp + 1, nd - (size_t)exp - 1);
            r += nd - (size_t)exp - 1;
        }
    }
    res[r] = 0;
    snprintf(out, cap, "%s", res);
}

static int put_value(ox_buf_t *b, const json_t *v, int depth)
{
    if (depth > 200)
        return OX_ETOOBIG;
    char num[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1, rc = ox_buf_append(b, "{", 1);
        json_object_foreach((json_t *)v, k, x)
        {
            if (rc == 0 && !first)
                rc = ox_buf_append(b, ",", 1);
            first = 0;
            if (rc == 0)
                rc = put_string(b, k, strlen(k));
            if (rc == 0)
                rc = ox_buf_append(b, ":", 1);
            if (rc == 0)
                rc = put_value(b, x, depth + 1);
        }
        return rc ? rc : ox_buf_append(b, "}", 1);
    }
    case JSON_ARRAY: {
        int rc = ox_buf_append(b, "[", 1);
        for (size_t i = 0; rc == 0 && i < json_array_size(v); i++) {
            if (i)
                rc = ox_buf_append(b, ",", 1);
            if (rc == 0)
                rc = put_value(b, json_array_get(v, i), depth + 1);
        }
        return rc ? rc : ox_buf_append(b, "]", 1);
    }
    case JSON_STRING:
        return put_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        return ox_buf_puts(b, num);
    case JSON_REAL:
        api_go_float(json_real_value(v), num, sizeof num);
        return ox_buf_puts(b, num);
    case JSON_TRUE:
        return ox_buf_puts(b, "true");
    case JSON_FALSE:
        return ox_buf_puts(b, "false");
    default:
        return ox_buf_puts(b, "null");
    }
}

/* api_json_dumps with the reason of a failure (OX_ETOOBIG: nested deeper
 * than the writer goes). */
static int json_dumps_rc(const json_t *obj, char **out)
{
    ox_buf_t b = OX_BUF_INIT;
    int rc = obj ? put_value(&b, obj, 0) : OX_EINVAL;
    if (rc == 0 && !b.data)
        rc = OX_ENOMEM;
    if (rc != 0) {
        ox_buf_free(&b);
        *out = NULL;
        return rc;
    }
    *out = ox_buf_steal(&b);
    return 0;
}

char *api_json_dumps(const json_t *obj)
{
    char *s;
    return json_dumps_rc(obj, &s) == 0 ? s : NULL;
}

void api_go_quote(const char *s, char *out, size_t cap)
{
    /* strconv.Quote: printable UTF-8 kept, the rest escaped Go-style. */
    ox_buf_t b = OX_BUF_INIT;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    int rc = ox_buf_append(&b, "\"", 1);
    while (rc == 0 && i < n) {
        unsigned c = p[i], cp;
        char tmp[12];
        if (c >= 0x80) {
            size_t l = utf8_len(p + i, n - i, &cp);
            if (l == 0) {
                snprintf(tmp, sizeof tmp, "\\x%02x", c);
                rc = ox_buf_puts(&b, tmp);
                i++;
            } else {
                rc = ox_buf_append(&b, s + i, l);
                i += l;
            }
            continue;
        }
        switch (c) {
        case '"': rc = ox_buf_puts(&b, "\\\""); break;
        case '\\': rc = ox_buf_puts(&b, "\\\\"); break;
        case '\n': rc = ox_buf_puts(&b, "\\n"); break;
        case '\r': rc = ox_buf_puts(&b, "\\r"); break;
        case '\t': rc = ox_buf_puts(&b, "\\t"); break;
        case '\a': rc = ox_buf_puts(&b, "\\a"); break;
        case '\b': rc = ox_buf_puts(&b, "\\b"); break;
        case '\f': rc = ox_buf_puts(&b, "\\f"); break;
        case '\v': rc = ox_buf_puts(&b, "\\v"); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(tmp, sizeof tmp, "\\x%02x", c);
                rc = ox_buf_puts(&b, tmp);
            } else {
                rc = ox_buf_append(&b, s + i, 1);
            }
        }
        i++;
    }
    if (rc == 0)
        rc = ox_buf_append(&b, "\"", 1);
    snprintf(out, cap, "%s", rc == 0 && b.data ? b.data : "\"\"");
    ox_buf_free(&b);
}

/* ---- responses ----------------------------------------------------------- */

void api_error(http_req_t *req, int status, const char *msg)
{
    json_t *o = json_object();
    /* nocheck: messages quote names, GGUF keys and registry text that may
     * not be UTF-8 (or be cut mid-character); json_string() would return
     * NULL and the client would get "{}". put_string() writes such bytes
     * as U+FFFD, as Go does. */
    json_object_set_new(o, "error", json_stringn_nocheck(msg ? msg : "", msg ? strlen(msg) : 0));
    api_json(req, status, o);
}

void api_errorf(http_req_t *req, int status, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    api_error(req, status, msg);
}

void api_json(http_req_t *req, int status, json_t *obj)
{
    char *s;
    int rc = json_dumps_rc(obj, &s);
    json_decref(obj);
    if (rc != 0) {
        /* a stored layer (pulled messages, say) may nest deeper than the
         * writer goes: say so rather than blame memory */
        static const char oom[] = "{\"error\":\"out of memory\"}";
        static const char deep[] = "{\"error\":\"response nested too deeply\"}";
        if (rc == OX_ETOOBIG)
            http_respond(req, 500, CT_JSON, deep, sizeof deep - 1);
        else
            http_respond(req, 500, CT_JSON, oom, sizeof oom - 1);
        return;
    }
    http_respond(req, status, CT_JSON, s, strlen(s));
    free(s);
}

int api_body_json(http_req_t *req, json_t **out)
{
    *out = NULL;
    size_t len = 0;
    const char *body = http_req_body(req, &len);
    size_t i = 0;
    while (body && i < len && strchr(" \t\r\n", body[i]))
        i++;
    if (!body || i == len) {
        api_error(req, 400, "missing request body");
        return -1;
    }
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY, &je);
    if (!j) {
        api_errorf(req, 400, "invalid JSON: %s (line %d, column %d)", je.text, je.line,
                   je.column);
        return -1;
    }
    if (!json_is_object(j)) {
        const char *kind = json_is_array(j)    ? "array"
                           : json_is_string(j) ? "string"
                           : json_is_number(j) ? "number"
                           : json_is_boolean(j) ? "bool"
                                                : "null";
        json_decref(j);
        if (strcmp(kind, "null") == 0) {
            /* Go decodes null into a zero struct without complaint. */
            *out = json_object();
            return 0;
        }
        api_errorf(req, 400, "json: cannot unmarshal %s into Go value of type object", kind);
        return -1;
    }
    *out = j;
    return 0;
}

int api_want_stream(const json_t *body)
{
    json_t *s = body ? json_object_get(body, "stream") : NULL;
    return !(s && json_is_false(s));
}

int api_ndjson_begin(http_req_t *req)
{
    return http_stream_begin(req, 200, "application/x-ndjson");
}

int api_ndjson_line(http_req_t *req, json_t *obj)
{
    char *s = api_json_dumps(obj);
    json_decref(obj);
    if (!s)
        return OX_ENOMEM;
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return OX_ENOMEM;
    }
    line[n] = '\n';
    line[n + 1] = 0;
    int rc = http_stream_write(req, line, n + 1);
    free(line);
    return rc;
}

void api_ndjson_end(http_req_t *req)
{
    http_stream_end(req);
}

const char *api_body_model(const json_t *body)
{
    const char *m = json_string_value(json_object_get(body, "model"));
    if (m && *m)
        return m;
    const char *n = json_string_value(json_object_get(body, "name"));
    if (n && *n)
        return n;
    return m ? m : "";
}
