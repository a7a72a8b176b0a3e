/* Internals of the template engine: the parse tree shared by the parser,
 * the evaluator and the chat helpers. Not part of the module interface. */
#ifndef OX_TEMPLATE_INT_H
#define OX_TEMPLATE_INT_H

#include "inference/template.h"

#include <stdint.h>

typedef enum tn_kind {
    TN_LIST, TN_TEXT, TN_ACTION, TN_IF, TN_RANGE, TN_WITH, TN_BREAK, TN_CONTINUE,
} tn_kind_t;

typedef enum ta_kind {
    TA_FIELD, /* chain on dot: .A.B */
    TA_DOT,   /* . (fields may follow for (.).A forms) */
    TA_VAR,   /* $x.A.B */
    TA_FUNC,  /* identifier */
    TA_STRING, TA_INT, TA_FLOAT, TA_BOOL, TA_NIL,
    TA_PIPE,  /* (pipeline).A.B */
} ta_kind_t;

struct tpipe;

typedef struct targ {
    ta_kind_t kind;
    const char *name;  /* function / variable name; string literal bytes */
    size_t name_len;
    const char **fields; /* chain applied after the operand */
    size_t n_fields;
    int64_t i;
    double f;
    bool b;
    struct tpipe *pipe;
} targ_t;

typedef struct tcmd {
    targ_t *args;
    size_t n;
} tcmd_t;

typedef struct tpipe {
    const char *decl[2]; /* declared/assigned variables, NULL when unused */
    int n_decl;
    bool assign;         /* $x = ... instead of := */
    tcmd_t *cmds;
    size_t n;
    int line;
} tpipe_t;

typedef struct tnode {
    tn_kind_t kind;
    int line;
    const char *text; /* TN_TEXT */
    size_t len;
    tpipe_t *pipe;    /* ACTION, IF, RANGE, WITH */
    struct tnode *body, *else_body; /* TN_LIST or NULL */
    struct tnode **items;           /* TN_LIST */
    size_t n;
} tnode_t;

/* Bump allocator owning every node and string of one template. */
typedef struct tarena_chunk {
    struct tarena_chunk *next;
    size_t used, cap;
    max_align_t data[];
} tarena_chunk_t;

struct tmpl {
    tarena_chunk_t *arena;
    tnode_t *root;
    char *src;
};

void *tarena_alloc(tmpl_t *t, size_t n);
void tarena_free(tmpl_t *t);

/* Go-style rendering helpers (template_funcs.c). */
int tval_print(ox_buf_t *out, json_t *v);            /* fmt.Sprint of one value */
int tval_json(ox_buf_t *out, json_t *v);             /* encoding/json, HTML-escaped */
bool tval_truth(json_t *v);
/* Calls builtin name with evaluated args (borrowed). *res gets a new
 * reference (or NULL for nil). Returns 0, or OX_EINVAL with err set,
 * OX_ENOTFOUND for an unknown function. */
int tfunc_call(const char *name, json_t **args, size_t n, json_t **res, char *err,
               size_t errlen);
bool tfunc_exists(const char *name);

/* Field look-up with the Go-name -> snake_case fallback; borrowed or NULL. */
json_t *tval_field(json_t *obj, const char *name);

#endif

/* A copy of t's tree with everything after the first {{ .field }} removed,
 * the way Ollama's legacy prompt mode cuts at .Response. Shares strings with
 * t (which must outlive the copy); free with tmpl_free. */
int tmpl_cut_after(const tmpl_t *t, const char *field, tmpl_t **out);
