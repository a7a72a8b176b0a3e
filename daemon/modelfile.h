/* Modelfile parsing (the `ollamax create -f` input).
 *
 * Commands (case-insensitive): FROM, ADAPTER, TEMPLATE, SYSTEM, PARAMETER,
 * LICENSE, MESSAGE; `#` starts a comment line. A value is the rest of the
 * line (trimmed), a "quoted string" with backslash escapes, or a """triple
 * quoted""" string that may span lines and is kept verbatim. PARAMETER values
 * are typed as Ollama's options are (ints, floats, bools; `stop` and other
 * repeatable keys accumulate into an array). Errors name the line. */
#ifndef OX_DAEMON_MODELFILE_H
#define OX_DAEMON_MODELFILE_H

#include <jansson.h>
#include <stddef.h>

typedef struct modelfile {
    char *from;         /* FROM value, NULL when absent */
    int from_line;
    char *adapter;      /* ADAPTER value or NULL */
    char *tmpl;         /* TEMPLATE or NULL */
    char *system;       /* SYSTEM or NULL */
    json_t *license;    /* array of strings (may be empty) */
    json_t *params;     /* object of typed values (may be empty) */
    json_t *messages;   /* array of {role, content} (may be empty) */
} modelfile_t;

/* Parses text (len bytes, need not be NUL-terminated). On success *out holds
 * malloc'd members the caller releases with modelfile_free. On failure
 * (OX_EFORMAT, OX_ENOMEM) err gets "line N: ..." (or "no FROM line") and *out
 * is left empty. */
int modelfile_parse(const char *text, size_t len, modelfile_t *out, char *err, size_t errlen);
void modelfile_free(modelfile_t *mf);

/* Converts one PARAMETER value to its JSON type for key. Returns a new
 * reference, or NULL with a message in err for an unknown key or a value of
 * the wrong type. *is_list is set for keys that accumulate (stop). */
json_t *modelfile_param_value(const char *key, const char *val, int *is_list, char *err,
                              size_t errlen);

#endif
