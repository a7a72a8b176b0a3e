/* `ollamax show NAME [--modelfile|--template|--system|--parameters|--license|-v]`. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/cli.h"

static void section(const char *title) { printf("  %s\n", title); }

static void row(const char *key, const char *val)
{
    printf("    %-20s%s\n", key, val);
}

/* Indented text block, at most max lines (0 = all). */
static void text_block(const char *text, int max)
{
    int n = 0;
    const char *p = text;
    while (*p && (max == 0 || n < max)) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > 0 || (eol && eol[1]))
            printf("    %.*s\n", (int)len, p);
        n++;
        if (!eol)
            break;
        p = eol + 1;
    }
}

static void value_text(json_t *v, char *out, size_t cap)
{
    if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, cap, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_array(v))
        snprintf(out, cap, "[%zu items]", json_array_size(v));
    else
        snprintf(out, cap, "%s", "");
}

static void summary(json_t *o, int verbose)
{
    json_t *details = json_object_get(o, "details");
    json_t *info = json_object_get(o, "model_info");
    const char *arch = json_string_value(json_object_get(info, "general.architecture"));
    if (!arch)
        arch = json_string_value(json_object_get(details, "family"));
    char key[160], val[256];
    section("Model");
    if (arch)
        row("architecture", arch);
    const char *ps = json_string_value(json_object_get(details, "parameter_size"));
    if (ps && *ps)
        row("parameters", ps);
    if (arch) {
        snprintf(key, sizeof(key), "%s.context_length", arch);
        json_t *v = json_object_get(info, key);
        if (v) {
            value_text(v, val, sizeof(val));
            row("context length", val);
        }
        snprintf(key, sizeof(key), "%s.embedding_length", arch);
        v = json_object_get(info, key);
        if (v) {
            value_text(v, val, sizeof(val));
            row("embedding length", val);
        }
    }
    const char *q = json_string_value(json_object_get(details, "quantization_level"));
    if (q && *q)
        row("quantization", q);
    printf("\n");
    json_t *caps = json_object_get(o, "capabilities");
    if (json_array_size(caps) > 0) {
        section("Capabilities");
        size_t i;
        json_t *c;
        json_array_foreach(caps, i, c) printf("    %s\n", json_string_value(c));
        printf("\n");
    }
    const char *params = json_string_value(json_object_get(o, "parameters"));
    if (params && *params) {
        section("Parameters");
        text_block(params, 0);
        printf("\n");
    }
    const char *sys = json_string_value(json_object_get(o, "system"));
    if (sys && *sys) {
        section("System");
        text_block(sys, verbose ? 0 : 2);
        printf("\n");
    }
    const char *lic = json_string_value(json_object_get(o, "license"));
    if (lic && *lic) {
        section("License");
        text_block(lic, verbose ? 0 : 2);
        printf("\n");
    }
    if (verbose && json_object_size(info) > 0) {
        section("Metadata");
        const char *k;
        json_t *v;
        json_object_foreach(info, k, v)
        {
            value_text(v, val, sizeof(val));
            printf("    %-40s%s\n", k, val);
        }
        printf("\n");
    }
}

int cli_cmd_show(int argc, char **argv)
{
    const char *name = NULL, *field = NULL;
    int verbose = 0;
    static const char *fields[][2] = {{"--modelfile", "modelfile"}, {"--template", "template"},
                                      {"--system", "system"},       {"--parameters", "parameters"},
                                      {"--license", "license"}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int matched = 0;
        for (size_t k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
            if (strcmp(a, fields[k][0]) == 0) {
                if (field)
                    return cli_error("only one of '--license', '--modelfile', '--parameters', "
                                     "'--system', or '--template' can be specified");
                field = fields[k][1];
                matched = 1;
            }
        if (matched)
            continue;
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)
            verbose = 1;
        else if (a[0] == '-')
            return cli_error("unknown flag: %s", a);
        else if (!name)
            name = a;
        else
            return cli_error("accepts 1 arg, received 2");
    }
    if (!name)
        return cli_error("accepts 1 arg, received 0");
    json_t *body = json_pack("{s:s,s:b}", "model", name, "verbose", verbose);
    json_t *o;
    int rc = cli_call_json("POST", "/api/show", body, &o);
    json_decref(body);
    if (rc)
        return rc;
    if (field) {
        const char *v = json_string_value(json_object_get(o, field));
        if (!v || !*v) {
            printf("No %s was specified for this model.\n", field);
        } else {
            printf("%s", v);
            if (v[strlen(v) - 1] != '\n')
                printf("\n");
        }
    } else {
        summary(o, verbose);
    }
    json_decref(o);
    return 0;
}
