/* Request options as the runner reads them (merged model params and request
 * options, a JSON object). */
#include <stdlib.h>

#include "inference/runner_int.h"

double ropt_num(const json_t *o, const char *key, double def)
{
    json_t *v = o ? json_object_get(o, key) : NULL;
    if (json_is_number(v))
        return json_number_value(v);
    if (json_is_boolean(v))
        return json_is_true(v) ? 1 : 0;
    return def;
}

void ropt_sampler(const json_t *o, int json, smp_params_t *p)
{
    smp_params_default(p);
    p->temperature = (float)ropt_num(o, "temperature", p->temperature);
    p->top_k = (int)ropt_num(o, "top_k", p->top_k);
    p->top_p = (float)ropt_num(o, "top_p", p->top_p);
    p->min_p = (float)ropt_num(o, "min_p", p->min_p);
    p->repeat_penalty = (float)ropt_num(o, "repeat_penalty", p->repeat_penalty);
    p->repeat_last_n = (int)ropt_num(o, "repeat_last_n", p->repeat_last_n);
    p->presence_penalty = (float)ropt_num(o, "presence_penalty", p->presence_penalty);
    p->frequency_penalty = (float)ropt_num(o, "frequency_penalty", p->frequency_penalty);
    p->seed = (int64_t)ropt_num(o, "seed", (double)p->seed);
    p->json = json != 0;
}

const char **ropt_stops(const json_t *o, size_t *n)
{
    json_t *st = o ? json_object_get(o, "stop") : NULL;
    *n = 0;
    if (json_is_string(st)) {
        const char **v = malloc(sizeof *v);
        if (v) {
            v[0] = json_string_value(st);
            *n = 1;
        }
        return v;
    }
    if (!json_is_array(st) || json_array_size(st) == 0)
        return NULL;
    const char **v = calloc(json_array_size(st), sizeof *v);
    if (!v)
        return NULL;
    size_t i;
    json_t *s;
    json_array_foreach(st, i, s) {
        if (json_is_string(s))
            v[(*n)++] = json_string_value(s);
    }
    return v;
}
