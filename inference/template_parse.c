/* Template lexer and parser: Go text/template syntax into a tnode_t tree. */
#include "inference/template_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define TMPL_MAX_SRC ((size_t)4 << 20)

/* ---- arena ---- */

void *tarena_alloc(tmpl_t *t, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    tarena_chunk_t *c = t->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = t->arena;
        t->arena = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void tarena_free(tmpl_t *t)
{
    while (t->arena) {
        tarena_chunk_t *n = t->arena->next;
        free(t->arena);
        t->arena = n;
    }
}

/* ---- lexer ---- */

typedef enum tk {
    TK_EOF, TK_TEXT, TK_LEFT, TK_RIGHT, TK_IDENT, TK_FIELD, TK_DOT, TK_VAR, TK_STRING,
    TK_NUMBER, TK_CHAR, TK_LPAREN, TK_RPAREN, TK_PIPE, TK_DECLARE, TK_ASSIGN, TK_COMMA,
} tk_t;

typedef struct token {
    tk_t kind;
    const char *p; /* into src (strings: the raw literal incl. quotes) */
    size_t len;
    int line;
    bool space_before; /* whitespace separated it from the previous token */
} token_t;

typedef struct parser {
    tmpl_t *t;
    const char *src;
    size_t len;
    token_t *toks;
    size_t n, cap, pos;
    int depth;
    char *err;
    size_t errlen;
    int rc;
} parser_t;

static int fail(parser_t *ps, int line, const char *fmt, const char *arg)
{
    if (ps->rc == 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
        snprintf(ps->err, ps->errlen, "template: line %d: %s", line, msg);
        ps->rc = OX_EFORMAT;
    }
    return ps->rc;
}

static int push_tok(parser_t *ps, tk_t kind, const char *p, size_t len, int line, bool sp)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 256;
        token_t *v = realloc(ps->toks, cap * sizeof(*v));
        if (!v)
            return ps->rc = OX_ENOMEM;
        ps->toks = v;
        ps->cap = cap;
    }
    ps->toks[ps->n++] = (token_t){kind, p, len, line, sp};
    return 0;
}

static int count_lines(const char *p, size_t n)
{
    int l = 0;
    for (size_t i = 0; i < n; i++)
        l += p[i] == '\n';
    return l;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Lexes the inside of one action starting at *ip; stops after "}}" or "-}}". */
static int lex_action(parser_t *ps, size_t *ip, int *line, bool *trim_next)
{
    const char *s = ps->src;
    size_t i = *ip, n = ps->len;
    int start_line = *line;
    bool sp = true;
    for (;;) {
        if (i >= n)
            return fail(ps, start_line, "unclosed action", NULL);
        char c = s[i];
        if (is_space(c)) {
            /* " -}}" closes with right trim */
            if (i + 3 < n && s[i + 1] == '-' && s[i + 2] == '}' && s[i + 3] == '}') {
                *line += count_lines(s + i, 1);
                *trim_next = true;
                *ip = i + 4;
                return push_tok(ps, TK_RIGHT, s + i, 4, *line, true);
            }
            if (c == '\n')
                (*line)++;
            i++;
            sp = true;
            continue;
        }
        if (c == '}' && i + 1 < n && s[i + 1] == '}') {
            *ip = i + 2;
            return push_tok(ps, TK_RIGHT, s + i, 2, *line, sp);
        }
        size_t st = i;
        tk_t kind;
        if (c == '"' || c == '`' || c == '\'') {
            i++;
            while (i < n && s[i] != c) {
                if (c != '`' && s[i] == '\\')
                    i++;
                else if (c != '`' && s[i] == '\n')
                    return fail(ps, *line, "unterminated quoted string", NULL);
                i++;
            }
            if (i >= n)
                return fail(ps, *line, "unterminated quoted string", NULL);
            i++;
            kind = c == '\'' ? TK_CHAR : TK_STRING;
        } else if (c == '.' && !(i + 1 < n && isdigit((unsigned char)s[i + 1]))) {
            i++;
            while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_'))
                i++;
            kind = i - st == 1 ? TK_DOT : TK_FIELD;
        } else if (c == '$') {
            i++;
            while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_'))
                i++;
            kind = TK_VAR;
        } else if (isdigit((unsigned char)c) || ((c == '-' || c == '+' || c == '.') && i + 1 < n &&
                                                  (isdigit((unsigned char)s[i + 1]) || s[i + 1] == '.'))) {
            i++;
            while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '_' ||
                             ((s[i] == '-' || s[i] == '+') && (s[i - 1] == 'e' || s[i - 1] == 'E'))))
                i++;
            kind = TK_NUMBER;
        } else if (isalpha((unsigned char)c) || c == '_') {
            while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_'))
                i++;
            kind = TK_IDENT;
        } else if (c == '(') {
            i++;
            kind = TK_LPAREN;
        } else if (c == ')') {
            i++;
            kind = TK_RPAREN;
        } else if (c == '|') {
            i++;
            kind = TK_PIPE;
        } else if (c == ',') {
            i++;
            kind = TK_COMMA;
        } else if (c == ':' && i + 1 < n && s[i + 1] == '=') {
            i += 2;
            kind = TK_DECLARE;
        } else if (c == '=') {
            i++;
            kind = TK_ASSIGN;
        } else {
            char bad[2] = {c, 0};
            return fail(ps, *line, "unexpected character '%s' in action", bad);
        }
        if (push_tok(ps, kind, s + st, i - st, *line, sp))
            return ps->rc;
        sp = false;
    }
}

static int lex(parser_t *ps)
{
    const char *s = ps->src;
    size_t n = ps->len, i = 0;
    int line = 1;
    bool trim_next = false;
    while (i < n) {
        const char *open = memmem(s + i, n - i, "{{", 2);
        size_t end = open ? (size_t)(open - s) : n;
        size_t ts = i, te = end;
        if (trim_next)
            while (ts < te && is_space(s[ts]))
                ts++;
        trim_next = false;
        bool trim_left = open && end + 3 < n && s[end + 2] == '-' && is_space(s[end + 3]);
        if (trim_left)
            while (te > ts && is_space(s[te - 1]))
                te--;
        if (te > ts && push_tok(ps, TK_TEXT, s + ts, te - ts, line, false))
            return ps->rc;
        line += count_lines(s + i, end - i);
        if (!open)
            break;
        i = end + 2 + (trim_left ? 2 : 0);
        /* a comment action: "{{" slash-star ... star-slash "}}" */
        size_t j = i;
        if (j + 1 < n && s[j] == '/' && s[j + 1] == '*') {
            const char *close = memmem(s + j + 2, n - j - 2, "*/", 2);
            if (!close)
                return fail(ps, line, "unclosed comment", NULL);
            size_t k = (size_t)(close - s) + 2;
            line += count_lines(s + j, k - j);
            if (k + 3 < n && is_space(s[k]) && s[k + 1] == '-' && s[k + 2] == '}' &&
                s[k + 3] == '}') {
                trim_next = true;
                i = k + 4;
            } else if (k + 1 < n && s[k] == '}' && s[k + 1] == '}') {
                i = k + 2;
            } else {
                return fail(ps, line, "comment ends before closing delimiter", NULL);
            }
            continue;
        }
        if (push_tok(ps, TK_LEFT, s + end, 2, line, false))
            return ps->rc;
        if (lex_action(ps, &i, &line, &trim_next))
            return ps->rc;
    }
    return push_tok(ps, TK_EOF, s + n, 0, line, true);
}

/* ---- parser ---- */

static token_t *peek(parser_t *ps) { return &ps->toks[ps->pos]; }
static token_t *next(parser_t *ps)
{
    token_t *t = &ps->toks[ps->pos];
    if (t->kind != TK_EOF)
        ps->pos++;
    return t;
}

static bool tok_is(token_t *t, tk_t k, const char *word)
{
    return t->kind == k && (!word || (t->len == strlen(word) && memcmp(t->p, word, t->len) == 0));
}

static char *dupn(parser_t *ps, const char *p, size_t n)
{
    char *d = tarena_alloc(ps->t, n + 1);
    if (!d) {
        ps->rc = OX_ENOMEM;
        return NULL;
    }
    memcpy(d, p, n);
    d[n] = 0;
    return d;
}

/* Decodes a quoted string literal into arena memory. */
static int unquote(parser_t *ps, token_t *tk, targ_t *a)
{
    const char *p = tk->p + 1;
    size_t n = tk->len - 2;
    char *d = tarena_alloc(ps->t, n + 1);
    if (!d)
        return ps->rc = OX_ENOMEM;
    size_t o = 0;
    if (tk->p[0] == '`') {
        memcpy(d, p, n);
        o = n;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (p[i] != '\\') {
                d[o++] = p[i];
                continue;
            }
            if (++i >= n)
                return fail(ps, tk->line, "bad escape in string", NULL);
            switch (p[i]) {
            case 'n': d[o++] = '\n'; break;
            case 't': d[o++] = '\t'; break;
            case 'r': d[o++] = '\r'; break;
            case '\\': d[o++] = '\\'; break;
            case '"': d[o++] = '"'; break;
            case '\'': d[o++] = '\''; break;
            case 'a': d[o++] = '\a'; break;
            case 'b': d[o++] = '\b'; break;
            case 'f': d[o++] = '\f'; break;
            case 'v': d[o++] = '\v'; break;
            case 'x':
            {
                if (i + 2 >= n)
                    return fail(ps, tk->line, "bad \\x escape in string", NULL);
                char h[3] = {p[i + 1], p[i + 2], 0};
                char *e;
                long v = strtol(h, &e, 16);
                if (e != h + 2)
                    return fail(ps, tk->line, "bad \\x escape in string", NULL);
                d[o++] = (char)v;
                i += 2;
                break;
            }
            case 'u': {
                if (i + 4 >= n)
                    return fail(ps, tk->line, "bad \\u escape in string", NULL);
                char h[5] = {p[i + 1], p[i + 2], p[i + 3], p[i + 4], 0};
                char *e;
                unsigned long v = strtoul(h, &e, 16);
                if (e != h + 4)
                    return fail(ps, tk->line, "bad \\u escape in string", NULL);
                if (v < 0x80) {
                    d[o++] = (char)v;
                } else if (v < 0x800) {
                    d[o++] = (char)(0xC0 | (v >> 6));
                    d[o++] = (char)(0x80 | (v & 0x3F));
                } else {
                    d[o++] = (char)(0xE0 | (v >> 12));
                    d[o++] = (char)(0x80 | ((v >> 6) & 0x3F));
                    d[o++] = (char)(0x80 | (v & 0x3F));
                }
                i += 4;
                break;
            }
            default:
                return fail(ps, tk->line, "unknown escape in string", NULL);
            }
        }
    }
    d[o] = 0;
    a->kind = TA_STRING;
    a->name = d;
    a->name_len = o;
    return 0;
}

static tpipe_t *parse_pipeline(parser_t *ps, bool allow_decl, tk_t end);

/* Field chain directly attached to the previous operand (no space). */
static int parse_chain(parser_t *ps, targ_t *a)
{
    size_t cap = 0;
    while (peek(ps)->kind == TK_FIELD && !peek(ps)->space_before) {
        token_t *f = next(ps);
        if (a->n_fields == cap) {
            size_t nc = cap ? cap * 2 : 4;
            const char **v = tarena_alloc(ps->t, nc * sizeof(*v));
            if (!v)
                return ps->rc = OX_ENOMEM;
            if (a->n_fields)
                memcpy(v, a->fields, a->n_fields * sizeof(*v));
            a->fields = v;
            cap = nc;
        }
        if (!(a->fields[a->n_fields++] = dupn(ps, f->p + 1, f->len - 1)))
            return ps->rc;
    }
    return 0;
}

static int parse_operand(parser_t *ps, targ_t *a)
{
    token_t *tk = next(ps);
    switch (tk->kind) {
    case TK_FIELD:
        a->kind = TA_FIELD;
        ps->pos--; /* the first field is part of the chain */
        ps->toks[ps->pos].space_before = false;
        return parse_chain(ps, a);
    case TK_DOT:
        a->kind = TA_DOT;
        return parse_chain(ps, a);
    case TK_VAR:
        a->kind = TA_VAR;
        if (!(a->name = dupn(ps, tk->p, tk->len)))
            return ps->rc;
        return parse_chain(ps, a);
    case TK_IDENT:
        if (tok_is(tk, TK_IDENT, "true") || tok_is(tk, TK_IDENT, "false")) {
            a->kind = TA_BOOL;
            a->b = tk->p[0] == 't';
            return 0;
        }
        if (tok_is(tk, TK_IDENT, "nil")) {
            a->kind = TA_NIL;
            return 0;
        }
        if (!(a->name = dupn(ps, tk->p, tk->len)))
            return ps->rc;
        if (!tfunc_exists(a->name))
            return fail(ps, tk->line, "function \"%s\" not defined", a->name);
        a->kind = TA_FUNC;
        return 0;
    case TK_STRING:
        return unquote(ps, tk, a);
    case TK_CHAR: {
        targ_t tmp = {0};
        token_t q = *tk;
        if (unquote(ps, &q, &tmp))
            return ps->rc;
        unsigned char c0 = tmp.name_len ? (unsigned char)tmp.name[0] : 0;
        a->kind = TA_INT;
        a->i = c0; /* ASCII chars; multi-byte runes are not used by templates */
        return 0;
    }
    case TK_NUMBER: {
        char buf[64];
        if (tk->len >= sizeof(buf))
            return fail(ps, tk->line, "number too long", NULL);
        memcpy(buf, tk->p, tk->len);
        buf[tk->len] = 0;
        char *e;
        errno = 0;
        long long v = strtoll(buf, &e, 0);
        if (*e == 0 && errno == 0) {
            a->kind = TA_INT;
            a->i = v;
            return 0;
        }
        errno = 0;
        double d = strtod(buf, &e);
        if (*e != 0 || errno)
            return fail(ps, tk->line, "bad number syntax: %s", buf);
        a->kind = TA_FLOAT;
        a->f = d;
        return 0;
    }
    case TK_LPAREN:
        if (++ps->depth > TMPL_MAX_DEPTH)
            return fail(ps, tk->line, "expression nested too deeply", NULL);
        a->kind = TA_PIPE;
        if (!(a->pipe = parse_pipeline(ps, false, TK_RPAREN)))
            return ps->rc;
        ps->depth--;
        next(ps); /* ) */
        return parse_chain(ps, a);
    default:
        return fail(ps, tk->line, "unexpected token in operand", NULL);
    }
}

/* pipeline := [decl] command { '|' command }; stops before `end` token. */
static tpipe_t *parse_pipeline(parser_t *ps, bool allow_decl, tk_t end)
{
    tpipe_t *p = tarena_alloc(ps->t, sizeof(*p));
    if (!p) {
        ps->rc = OX_ENOMEM;
        return NULL;
    }
    p->line = peek(ps)->line;
    if (allow_decl && peek(ps)->kind == TK_VAR) {
        size_t save = ps->pos;
        token_t *v1 = next(ps);
        if (peek(ps)->kind == TK_DECLARE || peek(ps)->kind == TK_ASSIGN) {
            p->assign = next(ps)->kind == TK_ASSIGN;
            p->decl[0] = dupn(ps, v1->p, v1->len);
            p->n_decl = 1;
        } else if (peek(ps)->kind == TK_COMMA) {
            next(ps);
            token_t *v2 = next(ps);
            if (v2->kind != TK_VAR || (peek(ps)->kind != TK_DECLARE && peek(ps)->kind != TK_ASSIGN)) {
                fail(ps, v1->line, "bad variable declaration", NULL);
                return NULL;
            }
            p->assign = next(ps)->kind == TK_ASSIGN;
            p->decl[0] = dupn(ps, v1->p, v1->len);
            p->decl[1] = dupn(ps, v2->p, v2->len);
            p->n_decl = 2;
        } else {
            ps->pos = save;
        }
        if (ps->rc)
            return NULL;
    }
    size_t cmd_cap = 0;
    for (;;) {
        tcmd_t cmd = {0};
        size_t cap = 0;
        while (peek(ps)->kind != TK_PIPE && peek(ps)->kind != end) {
            if (peek(ps)->kind == TK_EOF || peek(ps)->kind == TK_RIGHT ||
                peek(ps)->kind == TK_RPAREN) {
                fail(ps, peek(ps)->line, "unexpected end of action%s",
                     end == TK_RPAREN ? " (unclosed parenthesis)" : "");
                return NULL;
            }
            if (cmd.n == cap) {
                size_t nc = cap ? cap * 2 : 4;
                targ_t *v = tarena_alloc(ps->t, nc * sizeof(*v));
                if (!v) {
                    ps->rc = OX_ENOMEM;
                    return NULL;
                }
                if (cmd.n)
                    memcpy(v, cmd.args, cmd.n * sizeof(*v));
                cmd.args = v;
                cap = nc;
            }
            if (parse_operand(ps, &cmd.args[cmd.n++]))
                return NULL;
        }
        if (cmd.n == 0) {
            fail(ps, peek(ps)->line, "missing value for command", NULL);
            return NULL;
        }
        if (p->n == cmd_cap) {
            size_t nc = cmd_cap ? cmd_cap * 2 : 2;
            tcmd_t *v = tarena_alloc(ps->t, nc * sizeof(*v));
            if (!v) {
                ps->rc = OX_ENOMEM;
                return NULL;
            }
            if (p->n)
                memcpy(v, p->cmds, p->n * sizeof(*v));
            p->cmds = v;
            cmd_cap = nc;
        }
        p->cmds[p->n++] = cmd;
        if (peek(ps)->kind != TK_PIPE)
            break;
        next(ps);
    }
    return p;
}

typedef enum stop { STOP_EOF, STOP_END, STOP_ELSE } stop_t;

static tnode_t *new_node(parser_t *ps, tn_kind_t k, int line)
{
    tnode_t *n = tarena_alloc(ps->t, sizeof(*n));
    if (!n)
        ps->rc = OX_ENOMEM;
    else {
        n->kind = k;
        n->line = line;
    }
    return n;
}

static int list_add(parser_t *ps, tnode_t *list, tnode_t *item, size_t *cap)
{
    if (list->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        tnode_t **v = tarena_alloc(ps->t, nc * sizeof(*v));
        if (!v)
            return ps->rc = OX_ENOMEM;
        if (list->n)
            memcpy(v, list->items, list->n * sizeof(*v));
        list->items = v;
        *cap = nc;
    }
    list->items[list->n++] = item;
    return 0;
}

static int expect_right(parser_t *ps)
{
    token_t *t = next(ps);
    if (t->kind != TK_RIGHT)
        return fail(ps, t->line, "unexpected token in action, expected }}", NULL);
    return 0;
}

static tnode_t *parse_list(parser_t *ps, stop_t *stop, int in_range);

/* After the keyword of if/range/with: pipeline, }}, body, [else ...], end. */
static tnode_t *parse_block(parser_t *ps, tn_kind_t kind, int line, int in_range)
{
    if (++ps->depth > TMPL_MAX_DEPTH) {
        fail(ps, line, "blocks nested too deeply", NULL);
        return NULL;
    }
    tnode_t *n = new_node(ps, kind, line);
    if (!n || !(n->pipe = parse_pipeline(ps, true, TK_RIGHT)) || expect_right(ps))
        return NULL;
    stop_t stop;
    if (!(n->body = parse_list(ps, &stop, kind == TN_RANGE ? 1 : in_range)))
        return NULL;
    if (stop == STOP_EOF) {
        fail(ps, line, "unexpected EOF: missing {{end}}", NULL);
        return NULL;
    }
    if (stop == STOP_ELSE) {
        /* "else if" / "else with" chain into a nested block sharing our end. */
        token_t *t = peek(ps);
        if ((kind == TN_IF && tok_is(t, TK_IDENT, "if")) ||
            (kind == TN_WITH && tok_is(t, TK_IDENT, "with"))) {
            next(ps);
            tnode_t *inner = parse_block(ps, kind, t->line, in_range);
            if (!inner)
                return NULL;
            tnode_t *l = new_node(ps, TN_LIST, t->line);
            size_t cap = 0;
            if (!l || list_add(ps, l, inner, &cap))
                return NULL;
            n->else_body = l;
            ps->depth--;
            return n;
        }
        if (expect_right(ps))
            return NULL;
        if (!(n->else_body = parse_list(ps, &stop, in_range)))
            return NULL;
        if (stop != STOP_END) {
            fail(ps, line, stop == STOP_ELSE ? "expected {{end}}, found {{else}}"
                                             : "unexpected EOF: missing {{end}}", NULL);
            return NULL;
        }
    }
    ps->depth--;
    return n;
}

static tnode_t *parse_list(parser_t *ps, stop_t *stop, int in_range)
{
    tnode_t *list = new_node(ps, TN_LIST, peek(ps)->line);
    size_t cap = 0;
    if (!list)
        return NULL;
    for (;;) {
        token_t *t = next(ps);
        if (t->kind == TK_EOF) {
            *stop = STOP_EOF;
            return list;
        }
        if (t->kind == TK_TEXT) {
            tnode_t *n = new_node(ps, TN_TEXT, t->line);
            if (!n)
                return NULL;
            n->text = t->p;
            n->len = t->len;
            if (list_add(ps, list, n, &cap))
                return NULL;
            continue;
        }
        if (t->kind != TK_LEFT) {
            fail(ps, t->line, "internal: unexpected token", NULL);
            return NULL;
        }
        token_t *k = peek(ps);
        tnode_t *n = NULL;
        if (tok_is(k, TK_IDENT, "end") || tok_is(k, TK_IDENT, "else")) {
            next(ps);
            *stop = k->p[1] == 'n' ? STOP_END : STOP_ELSE;
            if (*stop == STOP_END && expect_right(ps))
                return NULL;
            return list;
        } else if (tok_is(k, TK_IDENT, "if")) {
            next(ps);
            n = parse_block(ps, TN_IF, k->line, in_range);
        } else if (tok_is(k, TK_IDENT, "range")) {
            next(ps);
            n = parse_block(ps, TN_RANGE, k->line, in_range);
        } else if (tok_is(k, TK_IDENT, "with")) {
            next(ps);
            n = parse_block(ps, TN_WITH, k->line, in_range);
        } else if (tok_is(k, TK_IDENT, "break") || tok_is(k, TK_IDENT, "continue")) {
            next(ps);
            if (!in_range) {
                fail(ps, k->line, "{{%s}} outside {{range}}", k->p[0] == 'b' ? "break" : "continue");
                return NULL;
            }
            n = new_node(ps, k->p[0] == 'b' ? TN_BREAK : TN_CONTINUE, k->line);
            if (n && expect_right(ps))
                return NULL;
        } else if (tok_is(k, TK_IDENT, "define") || tok_is(k, TK_IDENT, "template") ||
                   tok_is(k, TK_IDENT, "block")) {
            char w[16];
            snprintf(w, sizeof(w), "%.*s", (int)k->len, k->p);
            fail(ps, k->line, "{{%s}} is not supported", w);
            return NULL;
        } else {
            n = new_node(ps, TN_ACTION, k->line);
            if (n && (!(n->pipe = parse_pipeline(ps, true, TK_RIGHT)) || expect_right(ps)))
                return NULL;
        }
        if (!n || list_add(ps, list, n, &cap))
            return NULL;
    }
}

int tmpl_parse(const char *src, size_t len, tmpl_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (len > TMPL_MAX_SRC) {
        snprintf(err, errlen, "template: too large (%zu bytes)", len);
        return OX_EFORMAT;
    }
    tmpl_t *t = calloc(1, sizeof(*t));
    if (!t)
        return OX_ENOMEM;
    t->src = malloc(len + 1);
    if (!t->src) {
        free(t);
        return OX_ENOMEM;
    }
    memcpy(t->src, src, len);
    t->src[len] = 0;
    parser_t ps = {.t = t, .src = t->src, .len = len, .err = err, .errlen = errlen};
    if (lex(&ps) == 0) {
        stop_t stop;
        t->root = parse_list(&ps, &stop, 0);
        if (ps.rc == 0 && stop != STOP_EOF)
            fail(&ps, ps.toks[ps.pos ? ps.pos - 1 : 0].line,
                 stop == STOP_END ? "unexpected {{end}}" : "unexpected {{else}}", NULL);
    }
    free(ps.toks);
    if (ps.rc) {
        if (ps.rc == OX_ENOMEM)
            snprintf(err, errlen, "template: out of memory");
        tmpl_free(t);
        return ps.rc;
    }
    *out = t;
    return 0;
}

void tmpl_free(tmpl_t *t)
{
    if (!t)
        return;
    tarena_free(t);
    free(t->src);
    free(t);
}

static bool uses_field_arg(const targ_t *a, const char *name);

static bool uses_field_pipe(const tpipe_t *p, const char *name)
{
    for (size_t c = 0; p && c < p->n; c++)
        for (size_t i = 0; i < p->cmds[c].n; i++)
            if (uses_field_arg(&p->cmds[c].args[i], name))
                return true;
    return false;
}

static bool uses_field_arg(const targ_t *a, const char *name)
{
    for (size_t i = 0; i < a->n_fields; i++)
        if (strcasecmp(a->fields[i], name) == 0)
            return true;
    return a->kind == TA_PIPE && uses_field_pipe(a->pipe, name);
}

static bool uses_field_node(const tnode_t *n, const char *name)
{
    if (!n)
        return false;
    if (uses_field_pipe(n->pipe, name) || uses_field_node(n->body, name) ||
        uses_field_node(n->else_body, name))
        return true;
    for (size_t i = 0; i < n->n; i++)
        if (uses_field_node(n->items[i], name))
            return true;
    return false;
}

bool tmpl_uses_field(const tmpl_t *t, const char *name)
{
    return uses_field_node(t->root, name);
}
