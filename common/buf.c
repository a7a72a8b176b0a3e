#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int ox_buf_reserve(ox_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        if (cap > ((size_t)-1) / 2)
            return OX_ENOMEM;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return OX_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int ox_buf_append(ox_buf_t *b, const void *p, size_t n)
{
    int rc = ox_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int ox_buf_puts(ox_buf_t *b, const char *s) { return ox_buf_append(b, s, strlen(s)); }

int ox_buf_vprintf(ox_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return OX_EINVAL;
    int rc = ox_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int ox_buf_printf(ox_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ox_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void ox_buf_consume(ox_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data)
        b->data[b->len] = 0;
}

void ox_buf_reset(ox_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = 0;
}

void ox_buf_free(ox_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *ox_buf_steal(ox_buf_t *b)
{
    if (!b->data) {
        if (ox_buf_reserve(b, 0))
            return NULL;
        b->data[0] = 0;
    }
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
