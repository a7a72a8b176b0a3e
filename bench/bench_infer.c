/* `ollamax bench infer`: prompt and decode speed of the CPU engine.
 *
 * With --synthetic it first writes a llama3.2-1B-shaped model with random
 * weights (the shape llama.cpp's reference figures in spec/gguf.md were taken
 * on), quantized by the engine's own quantizers. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/bench.h"
#include "common/err.h"
#include "common/timeutil.h"
#include "inference/inference.h"

/* llama3.2:1b */
enum {
    SYN_EMBD = 2048, SYN_LAYERS = 16, SYN_HEADS = 32, SYN_KV_HEADS = 8, SYN_FF = 8192,
    SYN_VOCAB = 128256, SYN_HEAD_DIM = 64
};

typedef struct syn_tensor {
    char name[64];
    int type;
    int64_t ne0, ne1;
    float scale; /* values uniform in [-scale, scale]; 0: constant 1 (norms) */
    uint64_t offset, size;
} syn_tensor_t;

/* ---------------------------------------------------------- GGUF writing */
static int put(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? 0 : OX_EIO;
}

static int put_u32(FILE *f, uint32_t v) { return put(f, &v, 4); }
static int put_u64(FILE *f, uint64_t v) { return put(f, &v, 8); }

static int put_str(FILE *f, const char *s)
{
    uint64_t n = strlen(s);
    return put_u64(f, n) || put(f, s, n) ? OX_EIO : 0;
}

static int kv_str(FILE *f, const char *k, const char *v)
{
    return put_str(f, k) || put_u32(f, 8) || put_str(f, v) ? OX_EIO : 0;
}

static int kv_u32(FILE *f, const char *k, uint32_t v)
{
    return put_str(f, k) || put_u32(f, 4) || put_u32(f, v) ? OX_EIO : 0;
}

static int kv_f32(FILE *f, const char *k, float v)
{
    return put_str(f, k) || put_u32(f, 6) || put(f, &v, 4) ? OX_EIO : 0;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

typedef struct gen_job {
    const syn_tensor_t *t;
    int64_t row0, nrows;
    uint8_t *out;
    float *tmp;
} gen_job_t;

static void *on_gen_rows(void *arg)
{
    gen_job_t *j = arg;
    size_t rb = infer_row_size(j->t->type, j->t->ne0);
    for (int64_t r = 0; r < j->nrows; r++) {
        uint64_t s = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(j->row0 + r) * 0xBF58476D1CE4E5B9ULL ^
                     (uint64_t)j->t->ne0 * 0x94D049BB133111EBULL ^ (uint64_t)j->t->offset;
        for (int64_t i = 0; i < j->t->ne0; i++) {
            float u = (float)(rng_next(&s) >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
            j->tmp[i] = j->t->scale > 0 ? u * j->t->scale : 1.0f + 0.05f * u;
        }
        infer_quantize_row(j->t->type, j->tmp, j->out + (size_t)r * rb, j->t->ne0);
    }
    return NULL;
}

/* Quantizes a tensor in slabs of rows on n_threads threads, appending it. */
static int write_tensor_data(FILE *f, const syn_tensor_t *t, int n_threads)
{
    size_t rb = infer_row_size(t->type, t->ne0);
    int64_t slab = 256;
    uint8_t *buf = malloc(rb * (size_t)slab);
    float *tmp = malloc(sizeof(float) * (size_t)t->ne0 * (size_t)n_threads);
    int rc = buf && tmp ? 0 : OX_ENOMEM;
    for (int64_t r = 0; rc == 0 && r < t->ne1; r += slab) {
        int64_t n = t->ne1 - r < slab ? t->ne1 - r : slab;
        pthread_t th[64];
        gen_job_t jobs[64];
        int nt = n_threads > 64 ? 64 : n_threads, started = 0;
        for (int i = 0; i < nt; i++) {
            int64_t lo = n * i / nt, hi = n * (i + 1) / nt;
            jobs[i] = (gen_job_t){t, r + lo, hi - lo, buf + (size_t)lo * rb, tmp + (size_t)i * t->ne0};
            if (i == 0 || pthread_create(&th[i], NULL, on_gen_rows, &jobs[i]) != 0)
                continue;
            started |= 1 << (i & 31);
        }
        on_gen_rows(&jobs[0]);
        for (int i = 1; i < nt; i++) {
            if (started & (1 << (i & 31)))
                pthread_join(th[i], NULL);
            else
                on_gen_rows(&jobs[i]);
        }
        rc = put(f, buf, rb * (size_t)n);
    }
    free(buf);
    free(tmp);
    return rc;
}

static int parse_kind(const char *kind, int *base, int *ftype)
{
    if (!strcmp(kind, "q8_0")) {
        *base = GGML_T_Q8_0;
        *ftype = 7;
    } else if (!strcmp(kind, "q4_0")) {
        *base = GGML_T_Q4_0;
        *ftype = 2;
    } else if (!strcmp(kind, "q4_k_m")) {
        *base = GGML_T_Q4_K;
        *ftype = 15;
    } else {
        return OX_EINVAL;
    }
    return 0;
}

/* Writes the synthetic model. Q4_K_M mixes like llama.cpp: Q6_K for the
 * (tied) embedding, attn_v and ffn_down in half the layers; Q4_0 keeps a Q6_K
 * embedding/output like real Q4_0 files. */
static int write_synthetic(const char *path, const char *kind, int n_threads)
{
    int base, ftype;
    if (parse_kind(kind, &base, &ftype) < 0)
        return OX_EINVAL;
    int mix = base == GGML_T_Q4_K;
    syn_tensor_t *ts = calloc(2 + 9 * SYN_LAYERS + 1, sizeof *ts);
    if (!ts)
        return OX_ENOMEM;
    int n = 0;
    const int QD = SYN_HEADS * SYN_HEAD_DIM, KD = SYN_KV_HEADS * SYN_HEAD_DIM;
#define T(nm, ty, a, b, sc) \
    (snprintf(ts[n].name, sizeof ts[n].name, "%s", nm), ts[n].type = (ty), ts[n].ne0 = (a), \
     ts[n].ne1 = (b), ts[n].scale = (sc), n++)
    T("token_embd.weight", base == GGML_T_Q8_0 ? GGML_T_Q8_0 : GGML_T_Q6_K, SYN_EMBD, SYN_VOCAB, 0.05f);
    T("rope_freqs.weight", GGML_T_F32, SYN_HEAD_DIM / 2, 1, 0.0f);
    for (int l = 0; l < SYN_LAYERS; l++) {
        char nm[64];
        float se = 1.7f / 45.25f, sf = 1.7f / 90.5f; /* ~N(0, 1/n_in) */
#define L(suffix, ty, a, b, sc) (snprintf(nm, sizeof nm, "blk.%d.%s", l, suffix), T(nm, ty, a, b, sc))
        L("attn_norm.weight", GGML_T_F32, SYN_EMBD, 1, 0.0f);
        L("attn_q.weight", base, SYN_EMBD, QD, se);
        L("attn_k.weight", base, SYN_EMBD, KD, se);
        L("attn_v.weight", mix ? GGML_T_Q6_K : base, SYN_EMBD, KD, se);
        L("attn_output.weight", base, QD, SYN_EMBD, se);
        L("ffn_norm.weight", GGML_T_F32, SYN_EMBD, 1, 0.0f);
        L("ffn_gate.weight", base, SYN_EMBD, SYN_FF, se);
        L("ffn_up.weight", base, SYN_EMBD, SYN_FF, se);
        L("ffn_down.weight", mix && l % 2 == 0 ? GGML_T_Q6_K : base, SYN_FF, SYN_EMBD, sf);
#undef L
    }
    T("output_norm.weight", GGML_T_F32, SYN_EMBD, 1, 0.0f);
#undef T
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        ts[i].offset = off;
        ts[i].size = infer_row_size(ts[i].type, ts[i].ne0) * (uint64_t)ts[i].ne1;
        off += (ts[i].size + 31) / 32 * 32;
    }
    FILE *f = fopen(path, "wb");
    int rc = f ? 0 : OX_EIO;
    if (rc == 0) {
        rc |= put(f, "GGUF", 4) | put_u32(f, 3) | put_u64(f, (uint64_t)n) | put_u64(f, 14);
        rc |= kv_str(f, "general.architecture", "llama");
        rc |= kv_str(f, "general.name", "synthetic-llama3.2-1b");
        rc |= kv_u32(f, "general.file_type", (uint32_t)ftype);
        rc |= kv_u32(f, "llama.context_length", 131072);
        rc |= kv_u32(f, "llama.embedding_length", SYN_EMBD);
        rc |= kv_u32(f, "llama.block_count", SYN_LAYERS);
        rc |= kv_u32(f, "llama.feed_forward_length", SYN_FF);
        rc |= kv_u32(f, "llama.attention.head_count", SYN_HEADS);
        rc |= kv_u32(f, "llama.attention.head_count_kv", SYN_KV_HEADS);
        rc |= kv_u32(f, "llama.attention.key_length", SYN_HEAD_DIM);
        rc |= kv_u32(f, "llama.rope.dimension_count", SYN_HEAD_DIM);
        rc |= kv_f32(f, "llama.rope.freq_base", 500000.0f);
        rc |= kv_f32(f, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
        rc |= kv_u32(f, "general.alignment", 32);
        for (int i = 0; i < n; i++) {
            int vec = ts[i].ne1 == 1;
            rc |= put_str(f, ts[i].name) | put_u32(f, vec ? 1 : 2) | put_u64(f, (uint64_t)ts[i].ne0);
            if (!vec)
                rc |= put_u64(f, (uint64_t)ts[i].ne1);
            rc |= put_u32(f, (uint32_t)ts[i].type) | put_u64(f, ts[i].offset);
        }
        long pos = ftell(f);
        static const char zeros[32];
        rc |= put(f, zeros, (size_t)((32 - pos % 32) % 32));
        for (int i = 0; i < n && rc == 0; i++) {
            rc = write_tensor_data(f, &ts[i], n_threads);
            if (rc == 0 && i + 1 < n)
                rc = put(f, zeros, (size_t)((32 - ts[i].size % 32) % 32));
        }
        if (fclose(f) != 0 && rc == 0)
            rc = OX_EIO;
    }
    free(ts);
    return rc < 0 ? rc : rc ? OX_EIO : 0;
}

/* ------------------------------------------------------------- benchmark */
static void usage(void)
{
    fprintf(stderr, "usage: ollamax bench infer MODEL|--synthetic q8_0|q4_0|q4_k_m "
                    "[--threads N] [--prompt N] [--gen N] [--keep PATH]\n");
}

/* CPU seconds of the process: with wall time it shows how much of the
 * requested cores the benchmark really got on a shared machine. */
static double cpu_secs(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double secs_since(int64_t t0)
{
    return (double)(ox_time_mono_ns() - t0) / 1e9;
}

int bench_infer_main(int argc, char **argv)
{
    const char *model = NULL, *synthetic = NULL, *keep = NULL;
    int threads = 0, n_prompt = 128, n_gen = 32;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--synthetic") && v) {
            synthetic = v;
            i++;
        } else if (!strcmp(a, "--threads") && v) {
            threads = atoi(v);
            i++;
        } else if (!strcmp(a, "--prompt") && v) {
            n_prompt = atoi(v);
            i++;
        } else if (!strcmp(a, "--gen") && v) {
            n_gen = atoi(v);
            i++;
        } else if (!strcmp(a, "--keep") && v) {
            keep = v;
            i++;
        } else if (a[0] != '-' && !model) {
            model = a;
        } else {
            usage();
            return 2;
        }
    }
    int base, ft;
    if ((!model == !synthetic) || n_prompt < 1 || n_gen < 0 || threads < 0 ||
        (synthetic && parse_kind(synthetic, &base, &ft) < 0)) {
        usage();
        return 2;
    }
    if (threads == 0)
        threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    char tmp[512] = "";
    if (synthetic) {
        if (keep) {
            snprintf(tmp, sizeof tmp, "%s", keep);
        } else {
            const char *dir = getenv("TMPDIR");
            snprintf(tmp, sizeof tmp, "%s/ollamax-bench-%s-XXXXXX", dir ? dir : "/tmp", synthetic);
            int fd = mkstemp(tmp);
            if (fd < 0) {
                fprintf(stderr, "bench infer: cannot create a temp file: %s\n", strerror(errno));
                return 1;
            }
            close(fd);
        }
        fprintf(stderr, "writing synthetic %s model to %s ...\n", synthetic, tmp);
        int64_t t0 = ox_time_mono_ns();
        int rc = write_synthetic(tmp, synthetic, threads);
        if (rc < 0) {
            fprintf(stderr, "bench infer: writing %s failed: %s\n", tmp, ox_strerror(rc));
            unlink(tmp);
            return 1;
        }
        fprintf(stderr, "written in %.1f s\n", secs_since(t0));
        model = tmp;
    }
    int status = 1;
    infer_model_t *m = NULL;
    infer_ctx_t *c = NULL;
    int32_t *tok = NULL;
    int64_t *tok_ns = NULL;
    char err[256] = "";
    int64_t t0 = ox_time_mono_ns();
    int rc = infer_model_load(model, &m, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "bench infer: %s: %s\n", model, err);
        goto out;
    }
    const infer_model_info_t *info = infer_model_info(m);
    infer_ctx_params_t p = {.n_ctx = (uint32_t)(n_prompt + n_gen + 16),
                            .n_batch = (uint32_t)(n_prompt < 512 ? n_prompt : 512),
                            .n_threads = threads};
    if ((rc = infer_ctx_create(m, &p, &c)) < 0) {
        fprintf(stderr, "bench infer: context: %s\n", ox_strerror(rc));
        goto out;
    }
    double load_s = secs_since(t0);
    tok = malloc(sizeof(int32_t) * (size_t)(n_prompt + n_gen));
    if (!tok)
        goto out;
    uint64_t s = 12345;
    for (int i = 0; i < n_prompt + n_gen; i++)
        tok[i] = (int32_t)(rng_next(&s) % info->n_vocab);
    /* warm-up: page the weights in so the figures are of weights in RAM */
    if ((rc = infer_eval(c, tok, 1, 0, 0)) < 0)
        goto fail_eval;
    t0 = ox_time_mono_ns();
    double c0 = cpu_secs();
    if ((rc = infer_eval(c, tok, n_prompt, 0, 0)) < 0)
        goto fail_eval;
    double prompt_s = secs_since(t0), prompt_cpu = cpu_secs() - c0;
    /* per-token times: on a shared machine the median and the best token
     * show the engine's speed better than the mean, which any burst of
     * load from other processes drags down */
    tok_ns = malloc(sizeof(int64_t) * (size_t)(n_gen ? n_gen : 1));
    if (!tok_ns)
        goto out;
    t0 = ox_time_mono_ns();
    c0 = cpu_secs();
    for (int i = 0; i < n_gen; i++) {
        int64_t t1 = ox_time_mono_ns();
        if ((rc = infer_eval(c, tok + n_prompt + i, 1, n_prompt + i, 0)) < 0)
            goto fail_eval;
        tok_ns[i] = ox_time_mono_ns() - t1;
    }
    double gen_s = secs_since(t0), gen_cpu = cpu_secs() - c0;
    qsort(tok_ns, (size_t)n_gen, sizeof *tok_ns, cmp_i64);
    double med_tg = n_gen ? 1e9 / (double)tok_ns[n_gen / 2] : 0;
    double best_tg = n_gen ? 1e9 / (double)tok_ns[0] : 0;
    int nth = infer_ctx_threads(c);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = (double)ru.ru_maxrss / 1024.0;
    double pp = n_prompt / prompt_s, tg = n_gen ? n_gen / gen_s : 0;
    char ps[32];
    gguf_param_size_str(info->n_params, ps, sizeof ps);
    printf("model      %s (%s, %s params, %.2f GiB, kernels %s)\n", synthetic ? synthetic : model,
           info->arch, ps, (double)info->weight_bytes / (1 << 30), infer_kernels_name());
    printf("threads    %d\n", infer_ctx_threads(c));
    printf("load       %.3f s\n", load_s);
    printf("prompt     %d tokens in %.3f s: %.1f tok/s (cpu %.0f%% of %d threads)\n", n_prompt,
           prompt_s, pp, 100 * prompt_cpu / (prompt_s * nth), nth);
    printf("decode     %d tokens in %.3f s: %.1f tok/s (cpu %.0f%% of %d threads)\n", n_gen, gen_s,
           tg, gen_s > 0 ? 100 * gen_cpu / (gen_s * nth) : 0.0, nth);
    printf("decode/tok median %.1f tok/s, best %.1f tok/s\n", med_tg, best_tg);
    printf("peak RSS   %.0f MiB\n", rss_mb);
    printf("{\"model\":\"%s\",\"params\":%llu,\"weight_bytes\":%llu,\"kernels\":\"%s\","
           "\"threads\":%d,\"load_s\":%.3f,\"prompt_tokens\":%d,\"prompt_tok_s\":%.2f,"
           "\"gen_tokens\":%d,\"decode_tok_s\":%.2f,\"decode_median_tok_s\":%.2f,"
           "\"decode_best_tok_s\":%.2f,\"peak_rss_mib\":%.0f,"
           "\"prompt_cpu_s\":%.3f,\"decode_cpu_s\":%.3f}\n",
           synthetic ? synthetic : model, (unsigned long long)info->n_params,
           (unsigned long long)info->weight_bytes, infer_kernels_name(), infer_ctx_threads(c),
           load_s, n_prompt, pp, n_gen, tg, med_tg, best_tg, rss_mb, prompt_cpu, gen_cpu);
    status = 0;
    goto out;
fail_eval:
    fprintf(stderr, "bench infer: eval failed: %s\n", ox_strerror(rc));
out:
    free(tok_ns);
    free(tok);
    infer_ctx_free(c);
    infer_model_free(m);
    if (synthetic && !keep)
        unlink(tmp);
    return status;
}
