/* Sampler: penalties, JSON masking, greedy / top_k / temperature / top_p /
 * min_p, seeded RNG. */
#include "inference/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"

struct smp {
    smp_params_t p;
    const tok_t *tok;
    uint64_t rng[4];
    int32_t *hist;     /* ring of recent tokens */
    size_t hist_cap, hist_n, hist_pos;
    /* JSON constraint */
    smp_json_t js;
    char *tok_bytes;   /* decoded bytes of every token, back to back */
    uint32_t *tok_off; /* n_vocab + 1 offsets */
    uint8_t *tok_kind; /* 0 normal, 1 end-of-generation, 2 never allowed */
    uint8_t *tok_plain; /* 1: bytes are whole UTF-8 chars with no '"', '\\' or
                           control characters: valid inside any JSON string */
    size_t n_vocab;
    /* scratch */
    int32_t *idx;
    float *prob;
    size_t scratch_n;
    uint32_t *counts;  /* per-token occurrence counts, kept zeroed */
    size_t counts_n;
};

void smp_params_default(smp_params_t *p)
{
    *p = (smp_params_t){.temperature = 0.8f, .top_k = 40, .top_p = 0.9f, .min_p = 0.0f,
                        .repeat_penalty = 1.1f, .repeat_last_n = 64, .seed = -1};
}

/* ---- xoshiro256** seeded through splitmix64 ---- */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t *s)
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static int build_json_tables(smp_t *s, char *err, size_t errlen)
{
    size_t n = tok_n_vocab(s->tok);
    s->n_vocab = n;
    s->tok_off = malloc((n + 1) * sizeof(*s->tok_off));
    s->tok_kind = calloc(n, 1);
    s->tok_plain = calloc(n, 1);
    ox_buf_t b = OX_BUF_INIT;
    if (!s->tok_off || !s->tok_kind || !s->tok_plain)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        s->tok_off[i] = (uint32_t)b.len;
        int32_t id = (int32_t)i;
        if (tok_is_eog(s->tok, id)) {
            s->tok_kind[i] = 1;
            continue;
        }
        int type = tok_type(s->tok, id);
        if (type == TOK_T_CONTROL || type == TOK_T_UNKNOWN || type == TOK_T_UNUSED) {
            s->tok_kind[i] = 2;
            continue;
        }
        size_t before = b.len;
        if (tok_decode_token(s->tok, id, false, &b))
            goto oom;
        if (b.len == before)
            s->tok_kind[i] = 2; /* empty tokens would let the model stall */
        /* Plain string content: a JSON string accepts it in any position. */
        smp_json_t j;
        smp_json_init(&j);
        s->tok_plain[i] = b.len > before && smp_json_feed(&j, "{\"", 2) &&
                          smp_json_feed(&j, b.data + before, b.len - before) &&
                          smp_json_feed(&j, "\"", 1) && memchr(b.data + before, '"', b.len - before) == NULL &&
                          memchr(b.data + before, '\\', b.len - before) == NULL;
        if (b.len > UINT32_MAX / 2) {
            snprintf(err, errlen, "vocabulary too large for the JSON constraint");
            ox_buf_free(&b);
            return OX_EINVAL;
        }
    }
    s->tok_off[n] = (uint32_t)b.len;
    s->tok_bytes = b.data ? ox_buf_steal(&b) : NULL;
    return 0;
oom:
    ox_buf_free(&b);
    snprintf(err, errlen, "out of memory");
    return OX_ENOMEM;
}

int smp_new(const smp_params_t *p, const tok_t *tok, smp_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (p->json && !tok) {
        snprintf(err, errlen, "the JSON constraint needs a tokenizer");
        return OX_EINVAL;
    }
    if (!(p->temperature >= 0.0f || p->temperature < 0.0f) || !(p->top_p == p->top_p) ||
        !(p->min_p == p->min_p) || !(p->repeat_penalty == p->repeat_penalty)) {
        snprintf(err, errlen, "sampling options must be numbers");
        return OX_EINVAL;
    }
    smp_t *s = calloc(1, sizeof(*s));
    if (!s)
        return OX_ENOMEM;
    s->p = *p;
    s->tok = tok;
    uint64_t seed = p->seed >= 0 ? (uint64_t)p->seed : 0;
    if (p->seed < 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)s;
    }
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix(&seed);
    s->hist_cap = p->repeat_last_n > 0 ? (size_t)p->repeat_last_n : p->repeat_last_n < 0 ? 4096 : 0;
    if (s->hist_cap && !(s->hist = malloc(s->hist_cap * sizeof(*s->hist)))) {
        smp_free(s);
        return OX_ENOMEM;
    }
    smp_json_init(&s->js);
    if (p->json) {
        int rc = build_json_tables(s, err, errlen);
        if (rc) {
            smp_free(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

void smp_free(smp_t *s)
{
    if (!s)
        return;
    free(s->hist);
    free(s->tok_bytes);
    free(s->tok_off);
    free(s->tok_kind);
    free(s->tok_plain);
    free(s->idx);
    free(s->prob);
    free(s->counts);
    free(s);
}

static void hist_push(smp_t *s, int32_t id)
{
    if (!s->hist_cap)
        return;
    s->hist[s->hist_pos] = id;
    s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
    if (s->hist_n < s->hist_cap)
        s->hist_n++;
}

void smp_accept(smp_t *s, int32_t id)
{
    hist_push(s, id);
    if (s->p.json && id >= 0 && (size_t)id < s->n_vocab && s->tok_kind[id] == 0)
        smp_json_feed(&s->js, s->tok_bytes + s->tok_off[id], s->tok_off[id + 1] - s->tok_off[id]);
}

void smp_accept_prompt(smp_t *s, const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hist_push(s, ids[i]);
}

bool smp_json_done(const smp_t *s)
{
    return s->p.json && smp_json_complete(&s->js);
}

static int ensure_scratch(smp_t *s, size_t n)
{
    if (s->scratch_n >= n)
        return 0;
    int32_t *idx = realloc(s->idx, n * sizeof(*idx));
    if (!idx)
        return OX_ENOMEM;
    s->idx = idx;
    float *prob = realloc(s->prob, n * sizeof(*prob));
    if (!prob)
        return OX_ENOMEM;
    s->prob = prob;
    s->scratch_n = n;
    return 0;
}

static void apply_penalties(smp_t *s, float *logits, size_t n)
{
    const smp_params_t *p = &s->p;
    bool rep = p->repeat_penalty != 1.0f && p->repeat_penalty > 0.0f;
    bool fp = p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f;
    if (!s->hist_n || (!rep && !fp))
        return;
    if (s->counts_n < n) {
        uint32_t *c = realloc(s->counts, n * sizeof(*c));
        if (!c)
            return; /* out of memory: sample without penalties */
        memset(c, 0, n * sizeof(*c));
        s->counts = c;
        s->counts_n = n;
    }
    /* Each distinct token in the window is penalised once by repeat_penalty
     * (llama.cpp semantics); frequency scales with its count. */
    for (size_t k = 0; k < s->hist_n; k++)
        if (s->hist[k] >= 0 && (size_t)s->hist[k] < n)
            s->counts[s->hist[k]]++;
    for (size_t k = 0; k < s->hist_n; k++) {
        int32_t id = s->hist[k];
        if (id < 0 || (size_t)id >= n || s->counts[id] == 0)
            continue;
        if (rep)
            logits[id] = logits[id] > 0 ? logits[id] / p->repeat_penalty
                                        : logits[id] * p->repeat_penalty;
        if (fp)
            logits[id] -= (float)s->counts[id] * p->frequency_penalty + p->presence_penalty;
        s->counts[id] = 0; /* leaves the array zeroed for the next call */
    }
}

/* Masks tokens whose bytes cannot continue valid JSON; end-of-generation
 * tokens only once the object is complete. Cheap checks first: inside a
 * string (between characters) plain tokens are always valid, and elsewhere a
 * 256-entry table of acceptable first bytes rejects most of the vocabulary
 * without simulating it. */
static void apply_json(smp_t *s, float *logits, size_t n)
{
    bool done = smp_json_complete(&s->js);
    bool in_str = smp_json_in_string(&s->js);
    /* first_ok: bytes the state accepts next; space_ok: bytes accepted after
     * one space (most vocabulary entries start with a space). */
    uint8_t first_ok[256], space_ok[256];
    smp_json_t after_space = s->js;
    bool space_fed = smp_json_feed(&after_space, " ", 1);
    for (int c = 0; c < 256; c++) {
        smp_json_t j = s->js;
        char b = (char)c;
        first_ok[c] = smp_json_feed(&j, &b, 1);
        j = after_space;
        space_ok[c] = space_fed && smp_json_feed(&j, &b, 1);
    }
    for (size_t i = 0; i < n; i++) {
        if (i >= s->n_vocab) {
            logits[i] = -INFINITY;
            continue;
        }
        if (s->tok_kind[i] == 1) {
            if (!done)
                logits[i] = -INFINITY;
            continue;
        }
        if (s->tok_kind[i] == 2 || done) {
            logits[i] = -INFINITY;
            continue;
        }
        if (logits[i] == -INFINITY || (in_str && s->tok_plain[i]))
            continue;
        const char *p = s->tok_bytes + s->tok_off[i];
        size_t len = s->tok_off[i + 1] - s->tok_off[i];
        if (!first_ok[(unsigned char)p[0]] ||
            (p[0] == ' ' && len > 1 && !space_ok[(unsigned char)p[1]])) {
            logits[i] = -INFINITY;
            continue;
        }
        smp_json_t j = s->js;
        if (!smp_json_feed(&j, p, len))
            logits[i] = -INFINITY;
    }
}

static int cmp_desc(const void *a, const void *b, void *ctx)
{
    const float *l = ctx;
    float x = l[*(const int32_t *)a], y = l[*(const int32_t *)b];
    if (x != y)
        return x > y ? -1 : 1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

int32_t smp_sample(smp_t *s, float *logits, size_t n)
{
    if (n == 0)
        return OX_ESTATE;
    apply_penalties(s, logits, n);
    if (s->p.json)
        apply_json(s, logits, n);
    /* Greedy: arg-max, lowest id on ties. */
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    if (logits[best] == -INFINITY || isnan(logits[best]))
        return OX_ESTATE;
    if (s->p.temperature <= 0.0f)
        return (int32_t)best;
    if (ensure_scratch(s, n))
        return (int32_t)best; /* out of memory: degrade to greedy */
    /* Candidates: finite logits, sorted descending, cut to top_k. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (logits[i] != -INFINITY && !isnan(logits[i]))
            s->idx[m++] = (int32_t)i;
    size_t k = (s->p.top_k > 0 && (size_t)s->p.top_k < m) ? (size_t)s->p.top_k : m;
    if (k < m) {
        /* top_k: keep the k best in a min-heap (O(n log k)), then sort them. */
        int32_t *h = s->idx;
        size_t hn = 0;
        for (size_t i = 0; i < m; i++) {
            int32_t id = s->idx[i];
            if (hn == k) {
                if (cmp_desc(&id, &h[0], logits) >= 0)
                    continue; /* not better than the worst kept */
                h[0] = id;
            } else {
                h[hn++] = id;
                /* sift up (heap root = worst candidate) */
                for (size_t c = hn - 1; c > 0;) {
                    size_t pa = (c - 1) / 2;
                    if (cmp_desc(&h[c], &h[pa], logits) <= 0)
                        break;
                    int32_t t = h[c];
                    h[c] = h[pa];
                    h[pa] = t;
                    c = pa;
                }
                continue;
            }
            for (size_t c = 0;;) {
                size_t l = 2 * c + 1, w = c;
                if (l < hn && cmp_desc(&h[l], &h[w], logits) > 0)
                    w = l;
                if (l + 1 < hn && cmp_desc(&h[l + 1], &h[w], logits) > 0)
                    w = l + 1;
                if (w == c)
                    break;
                int32_t t = h[c];
                h[c] = h[w];
                h[w] = t;
                c = w;
            }
        }
        m = k;
    }
    qsort_r(s->idx, m, sizeof(*s->idx), cmp_desc, logits);
    /* Temperature and softmax (in double for the sum). */
    double maxl = logits[s->idx[0]] / s->p.temperature, sum = 0;
    for (size_t i = 0; i < m; i++) {
        double e = exp(logits[s->idx[i]] / s->p.temperature - maxl);
        s->prob[i] = (float)e;
        sum += e;
    }
    for (size_t i = 0; i < m; i++)
        s->prob[i] = (float)(s->prob[i] / sum);
    /* top_p: smallest prefix whose mass exceeds top_p (as Ollama cuts). */
    if (s->p.top_p > 0.0f && s->p.top_p < 1.0f) {
        double acc = 0;
        for (size_t i = 0; i < m; i++) {
            acc += s->prob[i];
            if (acc > s->p.top_p) {
                m = i + 1;
                break;
            }
        }
    }
    /* min_p: drop tokens below min_p times the best probability. */
    if (s->p.min_p > 0.0f) {
        float lim = s->prob[0] * s->p.min_p;
        size_t keep = 1;
        while (keep < m && s->prob[keep] >= lim)
            keep++;
        m = keep;
    }
    double total = 0;
    for (size_t i = 0; i < m; i++)
        total += s->prob[i];
    double r = rng_unit(s->rng) * total, acc = 0;
    for (size_t i = 0; i < m; i++) {
        acc += s->prob[i];
        if (r < acc)
            return s->idx[i];
    }
    return s->idx[m - 1];
}

/* ---- stop strings ---- */

int smp_stop_init(smp_stop_t *st, const char *const *stops, size_t n)
{
    memset(st, 0, sizeof(*st));
    st->stops = calloc(n ? n : 1, sizeof(*st->stops));
    if (!st->stops)
        return OX_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!stops[i] || !stops[i][0])
            continue;
        if (!(st->stops[st->n] = strdup(stops[i]))) {
            smp_stop_free(st);
            return OX_ENOMEM;
        }
        size_t l = strlen(stops[i]);
        if (l > st->maxlen)
            st->maxlen = l;
        st->n++;
    }
    return 0;
}

int smp_stop_feed(smp_stop_t *st, const char *text, size_t len, ox_buf_t *out, bool *hit)
{
    *hit = false;
    if (st->n == 0)
        return ox_buf_append(out, text, len);
    int rc = ox_buf_append(&st->held, text, len);
    if (rc)
        return rc;
    const char *h = st->held.data;
    size_t hl = st->held.len;
    /* Earliest complete stop string. */
    size_t first = hl;
    for (size_t i = 0; i < st->n; i++) {
        const char *p = memmem(h, hl, st->stops[i], strlen(st->stops[i]));
        if (p && (size_t)(p - h) < first)
            first = (size_t)(p - h);
    }
    if (first < hl) {
        rc = ox_buf_append(out, h, first);
        ox_buf_reset(&st->held);
        *hit = true;
        return rc;
    }
    /* Longest suffix that is a proper prefix of some stop string. */
    size_t keep = 0;
    for (size_t i = 0; i < st->n; i++) {
        size_t sl = strlen(st->stops[i]);
        for (size_t k = (sl - 1 < hl ? sl - 1 : hl); k > keep; k--) {
            if (memcmp(h + hl - k, st->stops[i], k) == 0) {
                keep = k;
                break;
            }
        }
    }
    rc = ox_buf_append(out, h, hl - keep);
    if (rc == 0)
        ox_buf_consume(&st->held, hl - keep);
    return rc;
}

int smp_stop_flush(smp_stop_t *st, ox_buf_t *out)
{
    int rc = st->held.len ? ox_buf_append(out, st->held.data, st->held.len) : 0;
    ox_buf_reset(&st->held);
    return rc;
}

void smp_stop_free(smp_stop_t *st)
{
    for (size_t i = 0; i < st->n; i++)
        free(st->stops[i]);
    free(st->stops);
    ox_buf_free(&st->held);
    memset(st, 0, sizeof(*st));
}
