/* Template evaluation: walks the parse tree over JSON data. Values are json_t
 * references (NULL = nil); every function returns a new reference the caller
 * drops. */
#include "inference/template_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

typedef struct tvar {
    const char *name;
    json_t *val; /* owned */
} tvar_t;

typedef enum ctl { CTL_NONE, CTL_BREAK, CTL_CONTINUE } ctl_t;

typedef struct exec {
    ox_buf_t *out;
    size_t out_start;
    tvar_t *vars;
    size_t nvars, capvars;
    long steps;
    int depth;
    ctl_t ctl;
    char *err;
    size_t errlen;
} exec_t;

static int xfail(exec_t *x, int line, int rc, const char *fmt, const char *arg)
{
    char msg[256];
    snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
    snprintf(x->err, x->errlen, "template: line %d: %s", line, msg);
    return rc;
}

static int var_push(exec_t *x, const char *name, json_t *val)
{
    if (x->nvars == x->capvars) {
        size_t cap = x->capvars ? x->capvars * 2 : 16;
        tvar_t *v = realloc(x->vars, cap * sizeof(*v));
        if (!v) {
            json_decref(val);
            return OX_ENOMEM;
        }
        x->vars = v;
        x->capvars = cap;
    }
    x->vars[x->nvars++] = (tvar_t){name, val};
    return 0;
}

static void var_pop(exec_t *x, size_t mark)
{
    while (x->nvars > mark) {
        x->nvars--;
        json_decref(x->vars[x->nvars].val);
    }
}

static tvar_t *var_find(exec_t *x, const char *name)
{
    for (size_t i = x->nvars; i > 0; i--)
        if (strcmp(x->vars[i - 1].name, name) == 0)
            return &x->vars[i - 1];
    return NULL;
}

static json_t *ref(json_t *v) { return v ? json_incref(v) : NULL; }

static int eval_pipe(exec_t *x, tpipe_t *p, json_t *dot, json_t **res);

/* Applies a field chain to v (borrowed); result borrowed from v's tree. */
static int apply_fields(exec_t *x, int line, json_t *v, const char **fields, size_t n,
                        json_t **res)
{
    for (size_t i = 0; i < n; i++) {
        if (v && !json_is_object(v) && !json_is_null(v))
            return xfail(x, line, OX_EINVAL, "can't evaluate field %s in a non-object value",
                         fields[i]);
        v = tval_field(v, fields[i]);
    }
    *res = v;
    return 0;
}

static int eval_arg(exec_t *x, int line, targ_t *a, json_t *dot, json_t **res)
{
    *res = NULL;
    json_t *base = NULL, *owned = NULL;
    int rc = 0;
    switch (a->kind) {
    case TA_FIELD:
    case TA_DOT:
        base = dot;
        break;
    case TA_VAR: {
        tvar_t *v = var_find(x, a->name);
        if (!v)
            return xfail(x, line, OX_EINVAL, "undefined variable: %s", a->name);
        base = v->val;
        break;
    }
    case TA_PIPE:
        if (++x->depth > TMPL_MAX_DEPTH)
            return xfail(x, line, OX_ETOOBIG, "expression nested too deeply", NULL);
        rc = eval_pipe(x, a->pipe, dot, &owned);
        x->depth--;
        if (rc)
            return rc;
        base = owned;
        break;
    case TA_STRING:
        *res = json_stringn_nocheck(a->name, a->name_len);
        return *res ? 0 : OX_ENOMEM;
    case TA_INT:
        *res = json_integer(a->i);
        return *res ? 0 : OX_ENOMEM;
    case TA_FLOAT:
        *res = json_real(a->f);
        return *res ? 0 : OX_ENOMEM;
    case TA_BOOL:
        *res = json_boolean(a->b);
        return 0;
    case TA_NIL:
        return 0;
    case TA_FUNC:
        return xfail(x, line, OX_EINVAL, "function %s used as a value", a->name);
    }
    json_t *v;
    rc = apply_fields(x, line, base, a->fields, a->n_fields, &v);
    if (rc == 0)
        *res = ref(v);
    json_decref(owned);
    return rc;
}

/* One command; prev (borrowed, may be NULL) is the previous pipeline stage's
 * value, passed as the final argument of a function. */
static int eval_cmd(exec_t *x, int line, tcmd_t *c, json_t *dot, json_t *prev, bool has_prev,
                    json_t **res)
{
    *res = NULL;
    targ_t *a0 = &c->args[0];
    if (a0->kind != TA_FUNC) {
        if (c->n > 1 || has_prev)
            return xfail(x, line, OX_EINVAL, "can't give argument to non-function", NULL);
        return eval_arg(x, line, a0, dot, res);
    }
    size_t n = c->n - 1 + (has_prev ? 1 : 0);
    bool is_and = strcmp(a0->name, "and") == 0, is_or = strcmp(a0->name, "or") == 0;
    if (is_and || is_or) {
        /* Short-circuit: the first falsy (and) / truthy (or) operand, else
         * the last one. */
        if (n == 0)
            return xfail(x, line, OX_EINVAL, "wrong number of args for %s", a0->name);
        for (size_t i = 0; i < n; i++) {
            json_t *v = NULL;
            int rc = (i + 1 < c->n) ? eval_arg(x, line, &c->args[i + 1], dot, &v) : 0;
            if (rc)
                return rc;
            if (i + 1 >= c->n)
                v = ref(prev);
            if (i + 1 == n || tval_truth(v) != is_and) {
                *res = v;
                return 0;
            }
            json_decref(v);
        }
        return 0;
    }
    json_t *stack[16];
    json_t **args = n <= 16 ? stack : calloc(n, sizeof(*args));
    if (!args)
        return OX_ENOMEM;
    size_t got = 0;
    int rc = 0;
    for (size_t i = 1; i < c->n && rc == 0; i++, got++)
        rc = eval_arg(x, line, &c->args[i], dot, &args[got]);
    if (rc == 0 && has_prev)
        args[got++] = ref(prev);
    if (rc == 0) {
        char ferr[200] = "";
        rc = tfunc_call(a0->name, args, got, res, ferr, sizeof(ferr));
        if (rc)
            xfail(x, line, rc == OX_ENOTFOUND ? OX_EINVAL : rc, "%s", ferr);
        if (rc == OX_ENOTFOUND)
            rc = OX_EINVAL;
        /* Charge copies (slice, json, print) to the step budget so quadratic
         * templates over huge inputs stop too. */
        if (rc == 0 && *res)
            x->steps += (long)(json_is_array(*res) ? json_array_size(*res)
                                                   : json_is_string(*res) ? json_string_length(*res) / 64
                                                                          : 0);
    }
    for (size_t i = 0; i < got; i++)
        json_decref(args[i]);
    if (args != stack)
        free(args);
    return rc;
}

static int eval_pipe(exec_t *x, tpipe_t *p, json_t *dot, json_t **res)
{
    json_t *v = NULL;
    *res = NULL;
    for (size_t i = 0; i < p->n; i++) {
        json_t *nv = NULL;
        int rc = eval_cmd(x, p->line, &p->cmds[i], dot, v, i > 0, &nv);
        json_decref(v);
        if (rc)
            return rc;
        v = nv;
    }
    *res = v;
    return 0;
}

/* Declares or assigns the pipeline's variable (one-variable form). */
static int bind_decl(exec_t *x, tpipe_t *p, json_t *v)
{
    if (p->n_decl == 0)
        return 0;
    if (p->assign) {
        tvar_t *t = var_find(x, p->decl[0]);
        if (!t)
            return xfail(x, p->line, OX_EINVAL, "undefined variable: %s", p->decl[0]);
        json_decref(t->val);
        t->val = ref(v);
        return 0;
    }
    return var_push(x, p->decl[0], ref(v));
}

static int exec_node(exec_t *x, tnode_t *n, json_t *dot);

static int exec_list(exec_t *x, tnode_t *l, json_t *dot)
{
    if (!l)
        return 0;
    size_t mark = x->nvars;
    int rc = 0;
    for (size_t i = 0; i < l->n && rc == 0 && x->ctl == CTL_NONE; i++)
        rc = exec_node(x, l->items[i], dot);
    var_pop(x, mark);
    return rc;
}

static int range_body(exec_t *x, tnode_t *n, json_t *key, json_t *elem, bool *stop)
{
    size_t mark = x->nvars;
    tpipe_t *p = n->pipe;
    int rc = 0;
    if (p->n_decl == 1)
        rc = var_push(x, p->decl[0], ref(elem));
    else if (p->n_decl == 2) {
        rc = var_push(x, p->decl[0], ref(key));
        if (rc == 0)
            rc = var_push(x, p->decl[1], ref(elem));
    }
    if (rc == 0)
        rc = exec_list(x, n->body, elem);
    var_pop(x, mark);
    if (x->ctl == CTL_BREAK)
        *stop = true;
    x->ctl = CTL_NONE;
    return rc;
}

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int exec_range(exec_t *x, tnode_t *n, json_t *dot)
{
    json_t *v = NULL;
    int rc = eval_pipe(x, n->pipe, dot, &v);
    if (rc)
        return rc;
    if (n->pipe->assign) {
        json_decref(v);
        return xfail(x, n->line, OX_EINVAL, "range can't assign variables", NULL);
    }
    bool stop = false, any = false;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v) && rc == 0 && !stop; i++) {
            json_t *k = json_integer((json_int_t)i);
            any = true;
            rc = range_body(x, n, k, json_array_get(v, i), &stop);
            json_decref(k);
        }
    } else if (json_is_object(v)) {
        /* Go ranges over maps in sorted key order. */
        size_t nk = json_object_size(v), i = 0;
        const char **keys = malloc((nk ? nk : 1) * sizeof(*keys));
        if (!keys) {
            json_decref(v);
            return OX_ENOMEM;
        }
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) keys[i++] = k;
        qsort(keys, nk, sizeof(*keys), cmp_keys);
        for (i = 0; i < nk && rc == 0 && !stop; i++) {
            json_t *ks = json_string(keys[i]);
            any = true;
            rc = range_body(x, n, ks, json_object_get(v, keys[i]), &stop);
            json_decref(ks);
        }
        free(keys);
    } else if (json_is_integer(v)) {
        for (json_int_t i = 0; i < json_integer_value(v) && rc == 0 && !stop; i++) {
            json_t *k = json_integer(i);
            any = true;
            rc = range_body(x, n, k, k, &stop);
            json_decref(k);
        }
    } else if (v && !json_is_null(v)) {
        json_decref(v);
        return xfail(x, n->line, OX_EINVAL, "range can't iterate over this value", NULL);
    }
    json_decref(v);
    if (rc == 0 && !any)
        rc = exec_list(x, n->else_body, dot);
    return rc;
}

static int exec_node(exec_t *x, tnode_t *n, json_t *dot)
{
    if (++x->steps > TMPL_MAX_STEPS)
        return xfail(x, n->line, OX_ETOOBIG, "template execution exceeded %s steps", "5000000");
    if (x->out->len - x->out_start > TMPL_MAX_OUTPUT)
        return xfail(x, n->line, OX_ETOOBIG, "template output exceeds %s", "32 MiB");
    int rc = 0;
    json_t *v = NULL;
    switch (n->kind) {
    case TN_LIST:
        return exec_list(x, n, dot);
    case TN_TEXT:
        return ox_buf_append(x->out, n->text, n->len);
    case TN_ACTION:
        if ((rc = eval_pipe(x, n->pipe, dot, &v)))
            return rc;
        /* A declaration/assignment prints nothing. */
        if (n->pipe->n_decl)
            rc = bind_decl(x, n->pipe, v);
        else
            rc = tval_print(x->out, v);
        json_decref(v);
        return rc;
    case TN_IF:
    case TN_WITH: {
        if (++x->depth > TMPL_MAX_DEPTH)
            return xfail(x, n->line, OX_ETOOBIG, "blocks nested too deeply", NULL);
        size_t mark = x->nvars;
        if ((rc = eval_pipe(x, n->pipe, dot, &v)) == 0 && (rc = bind_decl(x, n->pipe, v)) == 0) {
            if (tval_truth(v))
                rc = exec_list(x, n->body, n->kind == TN_WITH ? v : dot);
            else
                rc = exec_list(x, n->else_body, dot);
        }
        var_pop(x, mark);
        json_decref(v);
        x->depth--;
        return rc;
    }
    case TN_RANGE: {
        if (++x->depth > TMPL_MAX_DEPTH)
            return xfail(x, n->line, OX_ETOOBIG, "blocks nested too deeply", NULL);
        rc = exec_range(x, n, dot);
        x->depth--;
        return rc;
    }
    case TN_BREAK:
        x->ctl = CTL_BREAK;
        return 0;
    case TN_CONTINUE:
        x->ctl = CTL_CONTINUE;
        return 0;
    }
    return 0;
}

int tmpl_render(const tmpl_t *t, json_t *data, ox_buf_t *out, char *err, size_t errlen)
{
    exec_t x = {.out = out, .out_start = out->len, .err = err, .errlen = errlen};
    int rc = var_push(&x, "$", ref(data));
    if (rc == 0)
        rc = exec_list(&x, t->root, data);
    var_pop(&x, 0);
    free(x.vars);
    if (rc == OX_ENOMEM)
        snprintf(err, errlen, "template: out of memory");
    return rc;
}
