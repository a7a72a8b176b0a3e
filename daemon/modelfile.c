#include "daemon/modelfile.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/err.h"

enum { P_INT, P_FLOAT, P_BOOL, P_STRLIST };

/* Ollama's option types (api.Options and api.Runner). */
static const struct param_type {
    const char *key;
    int type;
} param_types[] = {
    {"num_keep", P_INT},          {"seed", P_INT},
    {"num_predict", P_INT},       {"top_k", P_INT},
    {"top_p", P_FLOAT},           {"min_p", P_FLOAT},
    {"typical_p", P_FLOAT},       {"repeat_last_n", P_INT},
    {"temperature", P_FLOAT},     {"repeat_penalty", P_FLOAT},
    {"presence_penalty", P_FLOAT},{"frequency_penalty", P_FLOAT},
    {"tfs_z", P_FLOAT},           {"mirostat", P_INT},
    {"mirostat_tau", P_FLOAT},    {"mirostat_eta", P_FLOAT},
    {"penalize_newline", P_BOOL}, {"stop", P_STRLIST},
    {"num_ctx", P_INT},           {"num_batch", P_INT},
    {"num_gpu", P_INT},           {"main_gpu", P_INT},
    {"low_vram", P_BOOL},         {"f16_kv", P_BOOL},
    {"logits_all", P_BOOL},       {"vocab_only", P_BOOL},
    {"use_mmap", P_BOOL},         {"use_mlock", P_BOOL},
    {"num_thread", P_INT},        {"numa", P_BOOL},
};

json_t *modelfile_param_value(const char *key, const char *val, int *is_list, char *err,
                              size_t errlen)
{
    *is_list = 0;
    for (size_t i = 0; i < sizeof(param_types) / sizeof(param_types[0]); i++) {
        if (strcasecmp(param_types[i].key, key) != 0)
            continue;
        char *end = NULL;
        errno = 0;
        switch (param_types[i].type) {
        case P_INT: {
            long long v = strtoll(val, &end, 10);
            if (!*val || *end || errno) {
                snprintf(err, errlen, "invalid int value for %s: \"%s\"", key, val);
                return NULL;
            }
            return json_integer(v);
        }
        case P_FLOAT: {
            double v = strtod(val, &end);
            if (!*val || *end || errno || !isfinite(v)) {
                snprintf(err, errlen, "invalid float value for %s: \"%s\"", key, val);
                return NULL;
            }
            return json_real(v);
        }
        case P_BOOL: {
            static const char *t[] = {"1", "t", "T", "TRUE", "true", "True"};
            static const char *f[] = {"0", "f", "F", "FALSE", "false", "False"};
            for (size_t k = 0; k < 6; k++) {
                if (strcmp(val, t[k]) == 0)
                    return json_true();
                if (strcmp(val, f[k]) == 0)
                    return json_false();
            }
            snprintf(err, errlen, "invalid bool value for %s: \"%s\"", key, val);
            return NULL;
        }
        default:
            *is_list = 1;
            return json_string(val);
        }
    }
    snprintf(err, errlen, "unknown parameter '%s'", key);
    return NULL;
}

typedef struct lexer {
    const char *p, *end;
    int line;
    char *err;
    size_t errlen;
} lexer_t;

static int lex_fail(lexer_t *lx, int line, const char *fmt, const char *arg)
{
    char msg[256];
    snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
    snprintf(lx->err, lx->errlen, "line %d: %s", line, msg);
    return OX_EFORMAT;
}

static void skip_blanks(lexer_t *lx)
{
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t'))
        lx->p++;
}

/* Moves past the end of the current line. */
static void skip_line(lexer_t *lx)
{
    while (lx->p < lx->end && *lx->p != '\n')
        lx->p++;
    if (lx->p < lx->end) {
        lx->p++;
        lx->line++;
    }
}

/* A word up to whitespace; malloc'd into *out ("" when none). */
static int lex_word(lexer_t *lx, char **out)
{
    const char *s = lx->p;
    while (lx->p < lx->end && !isspace((unsigned char)*lx->p))
        lx->p++;
    *out = strndup(s, (size_t)(lx->p - s));
    return *out ? 0 : OX_ENOMEM;
}

/* The value of a command: """multi-line""", "quoted", or the rest of the
 * line, trimmed. Leaves lx at the start of the next line. */
static int lex_value(lexer_t *lx, const char *what, char **out)
{
    int line = lx->line;
    ox_buf_t b = OX_BUF_INIT;
    int rc = 0;
    skip_blanks(lx);
    size_t left = (size_t)(lx->end - lx->p);
    if (left >= 3 && memcmp(lx->p, "\"\"\"", 3) == 0) {
        lx->p += 3;
        const char *s = lx->p;
        for (;;) {
            if (lx->p + 3 > lx->end)
                return lex_fail(lx, line, "unterminated \"\"\" in %s", what);
            if (memcmp(lx->p, "\"\"\"", 3) == 0)
                break;
            if (*lx->p == '\n')
                lx->line++;
            lx->p++;
        }
        rc = ox_buf_append(&b, s, (size_t)(lx->p - s));
        lx->p += 3;
    } else if (left >= 1 && *lx->p == '"') {
        lx->p++;
        for (;;) {
            /* a quoted string may span lines, as `show --modelfile` writes
             * multi-line values without a quote inside */
            if (lx->p >= lx->end) {
                ox_buf_free(&b);
                return lex_fail(lx, line, "unterminated quoted string in %s", what);
            }
            if (*lx->p == '"')
                break;
            if (*lx->p == '\n')
                lx->line++;
            if (*lx->p == '\\' && lx->p + 1 < lx->end && lx->p[1] != '\n') {
                lx->p++;
                char c = *lx->p == 'n' ? '\n' : *lx->p == 't' ? '\t' : *lx->p;
                rc = rc ? rc : ox_buf_append(&b, &c, 1);
            } else {
                rc = rc ? rc : ox_buf_append(&b, lx->p, 1);
            }
            lx->p++;
        }
        lx->p++;
    } else {
        const char *s = lx->p;
        while (lx->p < lx->end && *lx->p != '\n')
            lx->p++;
        const char *e = lx->p;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (e == s)
            return lex_fail(lx, line, "missing value for %s", what);
        rc = ox_buf_append(&b, s, (size_t)(e - s));
    }
    if (rc) {
        ox_buf_free(&b);
        return rc;
    }
    /* after a quoted value only blanks may follow on that line */
    skip_blanks(lx);
    if (lx->p < lx->end && *lx->p == '\r')
        lx->p++;
    if (lx->p < lx->end && *lx->p != '\n') {
        ox_buf_free(&b);
        return lex_fail(lx, lx->line, "unexpected text after the closing quote of %s", what);
    }
    skip_line(lx);
    *out = b.data ? ox_buf_steal(&b) : strdup("");
    return *out ? 0 : OX_ENOMEM;
}

static int set_once(char **slot, char *v)
{
    free(*slot);  /* a later command of the same kind wins, as in Ollama */
    *slot = v;
    return 0;
}

static int add_param(lexer_t *lx, modelfile_t *mf, int line, const char *key, const char *val)
{
    char msg[256];
    int is_list;
    json_t *v = modelfile_param_value(key, val, &is_list, msg, sizeof(msg));
    if (!v)
        return lex_fail(lx, line, "%s", msg);
    char lower[64];
    snprintf(lower, sizeof(lower), "%s", key);
    for (char *c = lower; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (is_list) {
        json_t *arr = json_object_get(mf->params, lower);
        if (!arr) {
            arr = json_array();
            json_object_set_new(mf->params, lower, arr);
        }
        json_array_append_new(arr, v);
    } else {
        json_object_set_new(mf->params, lower, v);
    }
    return 0;
}

int modelfile_parse(const char *text, size_t len, modelfile_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    modelfile_t mf = {0};
    mf.license = json_array();
    mf.params = json_object();
    mf.messages = json_array();
    if (!mf.license || !mf.params || !mf.messages) {
        modelfile_free(&mf);
        snprintf(err, errlen, "%s", ox_strerror(OX_ENOMEM));
        return OX_ENOMEM;
    }
    lexer_t lx = {.p = text, .end = text + len, .line = 1, .err = err, .errlen = errlen};
    int rc = 0;
    while (!rc && lx.p < lx.end) {
        while (lx.p < lx.end && (*lx.p == ' ' || *lx.p == '\t' || *lx.p == '\r'))
            lx.p++;
        if (lx.p >= lx.end)
            break;
        if (*lx.p == '\n' || *lx.p == '#') {
            skip_line(&lx);
            continue;
        }
        int line = lx.line;
        char *cmd = NULL, *arg = NULL, *val = NULL;
        rc = lex_word(&lx, &cmd);
        if (rc)
            break;
        for (char *c = cmd; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        int wants_arg = strcmp(cmd, "parameter") == 0 || strcmp(cmd, "message") == 0;
        int known = wants_arg || strcmp(cmd, "from") == 0 || strcmp(cmd, "adapter") == 0 ||
                    strcmp(cmd, "template") == 0 || strcmp(cmd, "system") == 0 ||
                    strcmp(cmd, "license") == 0;
        if (!known) {
            rc = lex_fail(&lx, line,
                          "unknown command \"%s\": command must be one of \"from\", \"license\", "
                          "\"template\", \"system\", \"adapter\", \"parameter\", or \"message\"",
                          cmd);
            free(cmd);
            break;
        }
        if (wants_arg) {
            skip_blanks(&lx);
            rc = lex_word(&lx, &arg);
            if (!rc && !*arg)
                rc = lex_fail(&lx, line, "missing name after %s", cmd);
        }
        if (!rc)
            rc = lex_value(&lx, cmd, &val);
        if (!rc) {
            if (strcmp(cmd, "from") == 0) {
                rc = set_once(&mf.from, val);
                mf.from_line = line;
                val = NULL;
            } else if (strcmp(cmd, "adapter") == 0) {
                rc = set_once(&mf.adapter, val);
                val = NULL;
            } else if (strcmp(cmd, "template") == 0) {
                rc = set_once(&mf.tmpl, val);
                val = NULL;
            } else if (strcmp(cmd, "system") == 0) {
                rc = set_once(&mf.system, val);
                val = NULL;
            } else if (strcmp(cmd, "license") == 0) {
                json_array_append_new(mf.license, json_string(val));
            } else if (strcmp(cmd, "parameter") == 0) {
                rc = add_param(&lx, &mf, line, arg, val);
            } else {
                for (char *c = arg; *c; c++)
                    *c = (char)tolower((unsigned char)*c);
                if (strcmp(arg, "system") != 0 && strcmp(arg, "user") != 0 &&
                    strcmp(arg, "assistant") != 0)
                    rc = lex_fail(&lx, line,
                                  "invalid message role \"%s\": role must be one of \"system\", "
                                  "\"user\", or \"assistant\"",
                                  arg);
                else
                    json_array_append_new(mf.messages,
                                          json_pack("{s:s,s:s}", "role", arg, "content", val));
            }
        }
        free(cmd);
        free(arg);
        free(val);
    }
    if (!rc && !mf.from) {
        snprintf(err, errlen, "no FROM line");
        rc = OX_EFORMAT;
    }
    if (rc) {
        if (rc == OX_ENOMEM)
            snprintf(err, errlen, "%s", ox_strerror(OX_ENOMEM));
        modelfile_free(&mf);
        return rc;
    }
    *out = mf;
    return 0;
}

void modelfile_free(modelfile_t *mf)
{
    free(mf->from);
    free(mf->adapter);
    free(mf->tmpl);
    free(mf->system);
    json_decref(mf->license);
    json_decref(mf->params);
    json_decref(mf->messages);
    memset(mf, 0, sizeof(*mf));
}
