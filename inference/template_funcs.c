/* Template values: Go-style printing, JSON encoding, truth, field look-up and
 * the builtin functions. */
#include "inference/template_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "inference/unicode.h"

bool tval_truth(json_t *v)
{
    if (!v)
        return false;
    switch (json_typeof(v)) {
    case JSON_NULL: return false;
    case JSON_FALSE: return false;
    case JSON_TRUE: return true;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0.0;
    case JSON_STRING: return json_string_length(v) != 0;
    case JSON_ARRAY: return json_array_size(v) != 0;
    case JSON_OBJECT: return json_object_size(v) != 0;
    }
    return false;
}

json_t *tval_field(json_t *obj, const char *name)
{
    if (!json_is_object(obj))
        return NULL;
    json_t *v = json_object_get(obj, name);
    if (v)
        return v;
    /* Go field names of Ollama's structs are the JSON keys in CamelCase. */
    char snake[128];
    size_t o = 0;
    for (size_t i = 0; name[i] && o + 2 < sizeof(snake); i++) {
        unsigned char c = (unsigned char)name[i];
        if (isupper(c)) {
            if (i > 0 && !isupper((unsigned char)name[i - 1]))
                snake[o++] = '_';
            snake[o++] = (char)tolower(c);
        } else {
            snake[o++] = (char)c;
        }
    }
    snake[o] = 0;
    return json_object_get(obj, snake);
}

/* Shortest text that reads back as the same double. JSON follows Go's
 * encoding/json (plain decimals for 1e-6 <= |d| < 1e21, else exponent form
 * with the exponent's leading zero dropped); printing follows fmt's %v, i.e.
 * shortest %g with exponent form below 1e-4 and from 1e6 ("1e+06"). */
static int print_float(ox_buf_t *out, double d, bool json)
{
    if (isnan(d) || isinf(d))
        return ox_buf_puts(out, json ? "null" : isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf");
    char buf[64];
    double a = fabs(d);
    bool plain = a == 0 || (json ? (a >= 1e-6 && a < 1e21) : (a >= 1e-4 && a < 1e6));
    for (int prec = 0; prec <= 17; prec++) {
        if (plain)
            snprintf(buf, sizeof(buf), "%.*f", prec, d);
        else
            snprintf(buf, sizeof(buf), "%.*e", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (!plain) {
        char *e = strchr(buf, 'e');
        if (json && e && (e[1] == '-' || e[1] == '+') && e[2] == '0' && e[3])
            memmove(e + 2, e + 3, strlen(e + 3) + 1);
    }
    return ox_buf_puts(out, buf);
}

static int json_str(ox_buf_t *out, const char *s, size_t n)
{
    int rc = ox_buf_append(out, "\"", 1);
    for (size_t i = 0; i < n && rc == 0;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t l = ux_decode(s + i, n - i, &cp);
        if (c == '"')
            rc = ox_buf_puts(out, "\\\"");
        else if (c == '\\')
            rc = ox_buf_puts(out, "\\\\");
        else if (c == '\n')
            rc = ox_buf_puts(out, "\\n");
        else if (c == '\r')
            rc = ox_buf_puts(out, "\\r");
        else if (c == '\t')
            rc = ox_buf_puts(out, "\\t");
        else if (c < 0x20 || c == '<' || c == '>' || c == '&')
            rc = ox_buf_printf(out, "\\u%04x", c); /* Go escapes HTML characters */
        else if (cp == 0x2028 || cp == 0x2029)
            rc = ox_buf_printf(out, "\\u%04x", cp);
        else if (cp == 0xFFFD && l == 1)
            rc = ox_buf_puts(out, "\\ufffd");
        else
            rc = ox_buf_append(out, s + i, l);
        i += l;
    }
    return rc ? rc : ox_buf_append(out, "\"", 1);
}

int tval_json(ox_buf_t *out, json_t *v)
{
    if (!v)
        return ox_buf_puts(out, "null");
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_NULL: return ox_buf_puts(out, "null");
    case JSON_TRUE: return ox_buf_puts(out, "true");
    case JSON_FALSE: return ox_buf_puts(out, "false");
    case JSON_INTEGER: return ox_buf_printf(out, "%lld", (long long)json_integer_value(v));
    case JSON_REAL: return print_float(out, json_real_value(v), true);
    case JSON_STRING: return json_str(out, json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        rc = ox_buf_puts(out, "[");
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (rc == 0 && i)
                rc = ox_buf_puts(out, ",");
            if (rc == 0)
                rc = tval_json(out, e);
        }
        return rc ? rc : ox_buf_puts(out, "]");
    }
    case JSON_OBJECT: {
        /* Insertion order: the chat layer inserts struct fields in Go's
         * declaration order and map keys sorted, as encoding/json emits. */
        rc = ox_buf_puts(out, "{");
        const char *k;
        json_t *e;
        bool first = true;
        json_object_foreach(v, k, e) {
            if (rc == 0 && !first)
                rc = ox_buf_puts(out, ",");
            first = false;
            if (rc == 0)
                rc = json_str(out, k, strlen(k));
            if (rc == 0)
                rc = ox_buf_puts(out, ":");
            if (rc == 0)
                rc = tval_json(out, e);
        }
        return rc ? rc : ox_buf_puts(out, "}");
    }
    }
    return 0;
}

int tval_print(ox_buf_t *out, json_t *v)
{
    if (!v)
        return 0;
    switch (json_typeof(v)) {
    case JSON_NULL: return 0;
    case JSON_TRUE: return ox_buf_puts(out, "true");
    case JSON_FALSE: return ox_buf_puts(out, "false");
    case JSON_INTEGER: return ox_buf_printf(out, "%lld", (long long)json_integer_value(v));
    case JSON_REAL: return print_float(out, json_real_value(v), false);
    case JSON_STRING: return ox_buf_append(out, json_string_value(v), json_string_length(v));
    case JSON_OBJECT: return tval_json(out, v);
    case JSON_ARRAY: {
        /* Ollama's slice types with objects (api.Tools) print as JSON
         * through their String methods. */
        bool objs = json_array_size(v) > 0;
        for (size_t k = 0; k < json_array_size(v); k++)
            objs = objs && json_is_object(json_array_get(v, k));
        if (objs)
            return tval_json(out, v);
        int rc = ox_buf_puts(out, "[");
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (rc == 0 && i)
                rc = ox_buf_puts(out, " ");
            if (rc == 0)
                rc = tval_print(out, e);
        }
        return rc ? rc : ox_buf_puts(out, "]");
    }
    }
    return 0;
}

/* ---- builtins ---- */

static int errf(char *err, size_t errlen, const char *fn, const char *msg)
{
    snprintf(err, errlen, "error calling %s: %s", fn, msg);
    return OX_EINVAL;
}

static bool is_num(json_t *v) { return json_is_integer(v) || json_is_real(v); }
static double num(json_t *v) { return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v); }

/* Basic-kind comparison for eq/lt/...: *cmp gets <0, 0, >0. A nil operand
 * compares as the zero value of the other side's kind. */
static int compare(const char *fn, json_t *a, json_t *b, int *cmp, char *err, size_t errlen)
{
    bool an = !a || json_is_null(a), bn = !b || json_is_null(b);
    if (an && bn) {
        *cmp = 0;
        return 0;
    }
    if (an || bn) {
        json_t *o = an ? b : a;
        if (json_is_array(o) || json_is_object(o))
            return errf(err, errlen, fn, "incompatible types for comparison");
        bool zero = !tval_truth(o);
        *cmp = zero ? 0 : (an ? -1 : 1);
        if (json_is_integer(o) || json_is_real(o))
            *cmp = (num(o) == 0) ? 0 : ((an ? 0 - num(o) : num(o)) < 0 ? -1 : 1);
        return 0;
    }
    if (is_num(a) && is_num(b)) {
        if (json_is_integer(a) && json_is_integer(b)) {
            json_int_t x = json_integer_value(a), y = json_integer_value(b);
            *cmp = x < y ? -1 : x > y;
        } else {
            double x = num(a), y = num(b);
            *cmp = x < y ? -1 : x > y;
        }
        return 0;
    }
    if (json_is_string(a) && json_is_string(b)) {
        size_t la = json_string_length(a), lb = json_string_length(b);
        int c = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
        *cmp = c ? (c < 0 ? -1 : 1) : (la < lb ? -1 : la > lb);
        return 0;
    }
    if (json_is_boolean(a) && json_is_boolean(b)) {
        *cmp = json_is_true(a) == json_is_true(b) ? 0 : (json_is_true(a) ? 1 : -1);
        return 0;
    }
    return errf(err, errlen, fn, "incompatible types for comparison");
}

static int fmt_printf(ox_buf_t *out, const char *fmt, size_t flen, json_t **args, size_t n)
{
    size_t ai = 0;
    int rc = 0;
    for (size_t i = 0; i < flen && rc == 0; i++) {
        if (fmt[i] != '%' || i + 1 >= flen) {
            rc = ox_buf_append(out, fmt + i, 1);
            continue;
        }
        char verb = fmt[++i];
        /* skip flags/width/precision: rendered without them */
        while (i + 1 < flen && strchr("+-# 0123456789.", verb))
            verb = fmt[++i];
        if (verb == '%') {
            rc = ox_buf_puts(out, "%");
            continue;
        }
        if (ai >= n) {
            rc = ox_buf_printf(out, "%%!%c(MISSING)", verb);
            continue;
        }
        json_t *a = args[ai++];
        if (verb == 'q') {
            rc = json_is_string(a) ? json_str(out, json_string_value(a), json_string_length(a))
                                   : tval_print(out, a);
        } else if (verb == 'd' && json_is_real(a)) {
            rc = ox_buf_printf(out, "%%!d(float64=%g)", json_real_value(a));
        } else {
            rc = tval_print(out, a);
        }
    }
    if (rc == 0 && ai < n)
        rc = ox_buf_puts(out, "%!(EXTRA)");
    return rc;
}

static const char *const funcs[] = {
    "and", "or", "not", "len", "index", "slice", "eq", "ne", "lt", "le", "gt", "ge",
    "print", "printf", "println", "json", "currentDate", "html", "urlquery", NULL,
};

bool tfunc_exists(const char *name)
{
    for (size_t i = 0; funcs[i]; i++)
        if (strcmp(funcs[i], name) == 0)
            return true;
    return false;
}

static json_t *str_result(ox_buf_t *b)
{
    json_t *r = json_stringn_nocheck(b->data ? b->data : "", b->len);
    ox_buf_free(b);
    return r;
}

static int int_arg(json_t *v, json_int_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v))) {
        *out = (json_int_t)json_real_value(v);
        return 0;
    }
    return -1;
}

int tfunc_call(const char *name, json_t **a, size_t n, json_t **res, char *err, size_t errlen)
{
    *res = NULL;
    ox_buf_t b = OX_BUF_INIT;
    int rc = 0, cmp = 0;
    if (strcmp(name, "not") == 0) {
        if (n != 1)
            return errf(err, errlen, name, "wrong number of args: want 1");
        *res = json_boolean(!tval_truth(a[0]));
    } else if (strcmp(name, "len") == 0) {
        if (n != 1)
            return errf(err, errlen, name, "wrong number of args: want 1");
        json_t *v = a[0];
        size_t l = 0;
        if (json_is_string(v))
            l = json_string_length(v);
        else if (json_is_array(v))
            l = json_array_size(v);
        else if (json_is_object(v))
            l = json_object_size(v);
        else if (v && !json_is_null(v))
            return errf(err, errlen, name, "len of a value that has no length");
        *res = json_integer((json_int_t)l);
    } else if (strcmp(name, "index") == 0) {
        if (n < 1)
            return errf(err, errlen, name, "wrong number of args: want at least 1");
        json_t *v = a[0];
        for (size_t i = 1; i < n && v; i++) {
            json_int_t k;
            if (json_is_array(v)) {
                if (int_arg(a[i], &k))
                    return errf(err, errlen, name, "cannot index slice with a non-integer");
                if (k < 0 || (size_t)k >= json_array_size(v))
                    return errf(err, errlen, name, "index out of range");
                v = json_array_get(v, (size_t)k);
            } else if (json_is_object(v)) {
                if (!json_is_string(a[i]))
                    return errf(err, errlen, name, "map key must be a string");
                v = json_object_get(v, json_string_value(a[i]));
            } else if (json_is_null(v)) {
                v = NULL;
            } else {
                return errf(err, errlen, name, "can't index item of this type");
            }
        }
        *res = v ? json_incref(v) : NULL;
        return 0;
    } else if (strcmp(name, "slice") == 0) {
        if (n < 1 || n > 4)
            return errf(err, errlen, name, "wrong number of args");
        json_t *v = a[0];
        size_t len = json_is_string(v) ? json_string_length(v) : json_is_array(v) ? json_array_size(v) : 0;
        if (!json_is_string(v) && !json_is_array(v))
            return errf(err, errlen, name, "can't slice item of this type");
        json_int_t idx[3] = {0, (json_int_t)len, (json_int_t)len};
        for (size_t i = 1; i < n; i++)
            if (int_arg(a[i], &idx[i - 1]))
                return errf(err, errlen, name, "cannot index slice with a non-integer");
        if (n == 4 && json_is_string(v))
            return errf(err, errlen, name, "cannot 3-index slice a string");
        if (idx[0] < 0 || idx[1] < idx[0] || (size_t)idx[1] > len)
            return errf(err, errlen, name, "index out of range");
        if (json_is_string(v)) {
            *res = json_stringn_nocheck(json_string_value(v) + idx[0], (size_t)(idx[1] - idx[0]));
        } else {
            *res = json_array();
            for (json_int_t i = idx[0]; *res && i < idx[1]; i++)
                json_array_append(*res, json_array_get(v, (size_t)i));
        }
    } else if (strcmp(name, "eq") == 0) {
        if (n < 2)
            return errf(err, errlen, name, "missing argument for comparison");
        bool eq = false;
        for (size_t i = 1; i < n && !eq; i++) {
            if ((rc = compare(name, a[0], a[i], &cmp, err, errlen)))
                return rc;
            eq = cmp == 0;
        }
        *res = json_boolean(eq);
    } else if (!strcmp(name, "ne") || !strcmp(name, "lt") || !strcmp(name, "le") ||
               !strcmp(name, "gt") || !strcmp(name, "ge")) {
        if (n != 2)
            return errf(err, errlen, name, "wrong number of args: want 2");
        if ((rc = compare(name, a[0], a[1], &cmp, err, errlen)))
            return rc;
        if (name[0] != 'n' && (json_is_boolean(a[0]) || json_is_boolean(a[1])))
            return errf(err, errlen, name, "invalid type for comparison");
        bool r = name[0] == 'n' ? cmp != 0
               : name[0] == 'l' ? (name[1] == 't' ? cmp < 0 : cmp <= 0)
                                : (name[1] == 't' ? cmp > 0 : cmp >= 0);
        *res = json_boolean(r);
    } else if (strcmp(name, "print") == 0 || strcmp(name, "println") == 0) {
        bool ln = name[5] == 'l';
        for (size_t i = 0; i < n && rc == 0; i++) {
            /* Sprint puts spaces between operands when neither is a string. */
            if (i > 0 && (ln || (!json_is_string(a[i - 1]) && !json_is_string(a[i]))))
                rc = ox_buf_puts(&b, " ");
            if (rc == 0)
                rc = tval_print(&b, a[i]);
        }
        if (rc == 0 && ln)
            rc = ox_buf_puts(&b, "\n");
        if (rc)
            goto oom;
        *res = str_result(&b);
    } else if (strcmp(name, "printf") == 0) {
        if (n < 1 || !json_is_string(a[0]))
            return errf(err, errlen, name, "format must be a string");
        if (fmt_printf(&b, json_string_value(a[0]), json_string_length(a[0]), a + 1, n - 1))
            goto oom;
        *res = str_result(&b);
    } else if (strcmp(name, "json") == 0) {
        if (n != 1)
            return errf(err, errlen, name, "wrong number of args: want 1");
        if (tval_json(&b, a[0]))
            goto oom;
        *res = str_result(&b);
    } else if (strcmp(name, "currentDate") == 0) {
        char d[32];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(d, sizeof(d), "%Y-%m-%d", &tm);
        *res = json_string(d);
    } else if (strcmp(name, "html") == 0 || strcmp(name, "urlquery") == 0) {
        ox_buf_t s = OX_BUF_INIT;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = tval_print(&s, a[i]);
        bool html = name[0] == 'h';
        for (size_t i = 0; i < s.len && rc == 0; i++) {
            unsigned char c = (unsigned char)s.data[i];
            if (html) {
                const char *e = c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;"
                              : c == '"' ? "&#34;" : c == '\'' ? "&#39;" : NULL;
                rc = e ? ox_buf_puts(&b, e) : ox_buf_append(&b, &s.data[i], 1);
            } else if (isalnum(c) || strchr("-_.~", c)) {
                rc = ox_buf_append(&b, &s.data[i], 1);
            } else {
                rc = c == ' ' ? ox_buf_puts(&b, "+") : ox_buf_printf(&b, "%%%02X", c);
            }
        }
        ox_buf_free(&s);
        if (rc)
            goto oom;
        *res = str_result(&b);
    } else {
        snprintf(err, errlen, "function \"%s\" not defined", name);
        return OX_ENOTFOUND;
    }
    if (!*res)
        goto oom;
    return 0;
oom:
    ox_buf_free(&b);
    snprintf(err, errlen, "out of memory in %s", name);
    return OX_ENOMEM;
}
