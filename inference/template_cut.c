/* tmpl_cut_after: mirror of Ollama's deleteNode walk (server/template.go),
 * which keeps the template up to and including the first field node named
 * Response and drops every node visited after it. Conditions of if/with/range
 * are not visited, as in Ollama. */
#include "inference/template_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

typedef struct cutter {
    tmpl_t *dst;
    const char *field;
    bool cut;
    int rc;
} cutter_t;

static void *dup_mem(cutter_t *c, const void *p, size_t n)
{
    void *d = tarena_alloc(c->dst, n ? n : 1);
    if (!d)
        c->rc = OX_ENOMEM;
    else if (n)
        memcpy(d, p, n);
    return d;
}

static tpipe_t *cut_pipe(cutter_t *c, const tpipe_t *p);

/* Returns false when the argument is deleted. */
static bool cut_arg(cutter_t *c, targ_t *a)
{
    if (c->cut)
        return false;
    for (size_t i = 0; i < a->n_fields; i++)
        if (a->kind == TA_FIELD && strcmp(a->fields[i], c->field) == 0)
            c->cut = true; /* this node stays; everything after goes */
    if (a->kind == TA_PIPE && !c->cut) {
        tpipe_t *p = cut_pipe(c, a->pipe);
        if (!p)
            return false;
        a->pipe = p;
    }
    return true;
}

static tpipe_t *cut_pipe(cutter_t *c, const tpipe_t *p)
{
    if (c->cut)
        return NULL;
    tpipe_t *np = dup_mem(c, p, sizeof(*p));
    tcmd_t *cmds = np ? dup_mem(c, p->cmds, p->n * sizeof(*cmds)) : NULL;
    if (!cmds)
        return NULL;
    for (size_t i = 0; i < p->n; i++) {
        targ_t *args = dup_mem(c, p->cmds[i].args, p->cmds[i].n * sizeof(*args));
        if (!args)
            return NULL;
        size_t k = 0;
        for (size_t j = 0; j < p->cmds[i].n; j++) {
            args[k] = p->cmds[i].args[j];
            if (cut_arg(c, &args[k]))
                k++;
        }
        if (k == 0)
            return NULL; /* a command lost all its arguments: Ollama drops the pipe */
        cmds[i].args = args;
        cmds[i].n = k;
    }
    np->cmds = cmds;
    return np;
}

static tnode_t *cut_node(cutter_t *c, const tnode_t *n)
{
    if (c->cut || c->rc)
        return NULL;
    tnode_t *d = dup_mem(c, n, sizeof(*n));
    if (!d)
        return NULL;
    switch (n->kind) {
    case TN_LIST: {
        d->items = dup_mem(c, n->items, n->n * sizeof(*d->items));
        if (!d->items)
            return NULL;
        size_t k = 0;
        for (size_t i = 0; i < n->n; i++) {
            tnode_t *x = cut_node(c, n->items[i]);
            if (x)
                d->items[k++] = x;
        }
        d->n = k;
        return d;
    }
    case TN_IF:
    case TN_WITH:
    case TN_RANGE: {
        tnode_t *body = n->body ? cut_node(c, n->body) : NULL;
        if (c->rc)
            return NULL;
        d->body = body;
        d->else_body = n->else_body ? cut_node(c, n->else_body) : NULL;
        return c->rc ? NULL : d;
    }
    case TN_ACTION:
        d->pipe = cut_pipe(c, n->pipe);
        return d->pipe ? d : NULL;
    default:
        return d;
    }
}

int tmpl_cut_after(const tmpl_t *t, const char *field, tmpl_t **out)
{
    *out = NULL;
    tmpl_t *d = calloc(1, sizeof(*d));
    if (!d)
        return OX_ENOMEM;
    cutter_t c = {.dst = d, .field = field};
    d->root = cut_node(&c, t->root);
    if (c.rc || !d->root) {
        tmpl_free(d);
        return c.rc ? c.rc : OX_ENOMEM;
    }
    *out = d;
    return 0;
}
