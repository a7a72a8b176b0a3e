/* Growable byte buffer.
 *
 * data is always NUL-terminated (not counted in len) so text can be used
 * directly. The buffer owns data; ox_buf_free releases it and leaves an empty
 * buffer that may be reused. ox_buf_steal hands data to the caller (free()). */
#ifndef OX_BUF_H
#define OX_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct ox_buf {
    char *data;
    size_t len;
    size_t cap;
} ox_buf_t;

#define OX_BUF_INIT {NULL, 0, 0}

int ox_buf_reserve(ox_buf_t *b, size_t extra);
int ox_buf_append(ox_buf_t *b, const void *p, size_t n);
int ox_buf_puts(ox_buf_t *b, const char *s);
int ox_buf_printf(ox_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ox_buf_vprintf(ox_buf_t *b, const char *fmt, va_list ap);
/* Drops the first n bytes (n <= len). */
void ox_buf_consume(ox_buf_t *b, size_t n);
void ox_buf_reset(ox_buf_t *b);
void ox_buf_free(ox_buf_t *b);
/* Returns data (caller frees with free()) and leaves b empty; never NULL unless OOM. */
char *ox_buf_steal(ox_buf_t *b);

#endif
