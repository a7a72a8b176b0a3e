/* create / show / tags / copy / delete over a real socket, with a tiny GGUF
 * built by the fixture, and the registry view of the created manifest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <strings.h>

#include "api_fixture.h"

/* The config blob a manifest names, read from the store (caller frees). */
static char *read_config(fx_t *f, json_t *man, size_t *len)
{
    const char *cdig = json_string_value(json_object_get(json_object_get(man, "config"), "digest"));
    assert_non_null(cdig);
    char cpath[256];
    snprintf(cpath, sizeof cpath, "%s/models/blobs/sha256-%s", f->home, cdig + 7);
    char *cfg = NULL;
    assert_int_equal(ox_fs_read_all(cpath, 1 << 20, &cfg, len), 0);
    return cfg;
}

/* Uploads the bytes in g as a blob (201) and frees them; d gets the digest,
 * the result is their size. */
static size_t put_buf(fx_t *f, ox_buf_t *g, char d[80])
{
    fx_digest(g->data, g->len, d);
    char path[256];
    snprintf(path, sizeof path, "/api/blobs/%s", d);
    resp_t r;
    fx_request(f, "POST", path, g->data, g->len, NULL, &r);
    assert_int_equal(r.status, 201);
    resp_free(&r);
    size_t n = g->len;
    ox_buf_free(g);
    return n;
}

/* Uploads a GGUF and returns its digest. */
static void put_gguf(fx_t *f, int embedding, char d[80])
{
    ox_buf_t g = OX_BUF_INIT;
    fx_make_gguf(&g, embedding);
    put_buf(f, &g, d);
}

/* A LoRA adapter GGUF as llama.cpp's convert_lora_to_gguf.py writes one
 * (general.type "adapter"), with one F32 tensor of 4x2. */
static void make_adapter(ox_buf_t *b)
{
    ox_buf_append(b, "GGUF", 4);
    gg_u32(b, 3);
    gg_u64(b, 1); /* tensors */
    gg_u64(b, 3); /* kv */
    gg_kv_str(b, "general.architecture", "llama");
    gg_kv_str(b, "general.type", "adapter");
    gg_kv_str(b, "adapter.type", "lora");
    gg_str(b, "blk.0.attn_q.weight.lora_a");
    gg_u32(b, 2);
    gg_u64(b, 4);
    gg_u64(b, 2);
    gg_u32(b, 0); /* F32 */
    gg_u64(b, 0);
    while (b->len % 32)
        ox_buf_append(b, "", 1);
    for (int i = 0; i < 8; i++) {
        float v = (float)i / 8.0f;
        ox_buf_append(b, &v, 4);
    }
}

/* Uploads the adapter; returns its digest and size. */
static size_t put_adapter(fx_t *f, char d[80])
{
    ox_buf_t g = OX_BUF_INIT;
    make_adapter(&g);
    return put_buf(f, &g, d);
}

/* Files in the store's blobs/ directory. */
static int count_blobs(fx_t *f)
{
    char path[256];
    snprintf(path, sizeof path, "%s/models/blobs", f->home);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, "sha256-", 7) == 0;
    closedir(d);
    return n;
}

static void read_manifest(fx_t *f, const char *model, char **bytes, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/models/manifests/registry.ollama.ai/library/%s/latest",
             f->home, model);
    assert_int_equal(ox_fs_read_all(path, 1 << 20, bytes, len), 0);
}

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("bad JSON %s: %s", s, e.text);
    return j;
}

static void test_create_and_show(void **state)
{
    fx_t *f = *state;
    char d[80], body[2048];
    put_gguf(f, 0, d);
    snprintf(body, sizeof body,
             "{\"model\":\"tiny\",\"files\":{\"tiny.gguf\":\"%s\"},"
             "\"template\":\"{{ if .System }}{{ .System }}{{ end }}{{ .Prompt }} {{ .Tools }}\","
             "\"system\":\"Be <brief> & kind\","
             "\"parameters\":{\"temperature\":0.7,\"stop\":[\"<s>\",\"</s>\"],\"num_ctx\":4096},"
             "\"license\":\"MIT\"}",
             d);
    resp_t r;
    char h[256];
    fx_json(f, "POST", "/api/create", body, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(resp_header(&r, "Content-Type", h, sizeof h), "application/x-ndjson");
    /* status lines in Ollama's order */
    const char *p = r.body.data;
    const char *want[] = {"{\"status\":\"parsing GGUF\"}", "using existing layer", "creating new layer",
                          "creating new layer", "creating new layer", "creating new layer",
                          "{\"status\":\"writing manifest\"}", "{\"status\":\"success\"}"};
    for (size_t i = 0; i < 8; i++) {
        const char *e = strchr(p, '\n');
        assert_non_null(e);
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(e - p), p);
        if (!strstr(line, want[i]))
            fail_msg("line %zu: %s (want %s)", i, line, want[i]);
        p = e + 1;
    }
    assert_string_equal(p, "");
    char first_layer[200];
    snprintf(first_layer, sizeof first_layer, "{\"status\":\"using existing layer %s\"}", d);
    assert_non_null(strstr(r.body.data, first_layer));
    resp_free(&r);

    /* again, not streamed: every layer exists now */
    char body2[2100];
    snprintf(body2, sizeof body2, "%.*s,\"stream\":false}", (int)strlen(body) - 1, body);
    fx_json(f, "POST", "/api/create", body2, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"status\":\"success\"}");
    resp_free(&r);

    fx_json(f, "POST", "/api/show", "{\"model\":\"tiny\"}", &r);
    assert_int_equal(r.status, 200);
    json_t *s = parse(r.body.data);
    assert_string_equal(json_string_value(json_object_get(s, "license")), "MIT");
    assert_string_equal(json_string_value(json_object_get(s, "system")), "Be <brief> & kind");
    assert_non_null(strstr(r.body.data, "Be \\u003cbrief\\u003e \\u0026 kind"));
    assert_string_equal(json_string_value(json_object_get(s, "template")),
                        "{{ if .System }}{{ .System }}{{ end }}{{ .Prompt }} {{ .Tools }}");
    const char *params = json_string_value(json_object_get(s, "parameters"));
    assert_non_null(params);
    assert_string_equal(params, "num_ctx                        4096\n"
                                "stop                           \"<s>\"\n"
                                "stop                           \"</s>\"\n"
                                "temperature                    0.7");
    const char *mf = json_string_value(json_object_get(s, "modelfile"));
    assert_non_null(strstr(mf, "# Modelfile generated by \"ollama show\"\n"));
    assert_non_null(strstr(mf, "# FROM tiny:latest\n\nFROM "));
    assert_non_null(strstr(mf, "/blobs/sha256-"));
    assert_non_null(strstr(mf, "\nPARAMETER stop <s>\n"));
    assert_non_null(strstr(mf, "\nPARAMETER temperature 0.7\n"));
    assert_non_null(strstr(mf, "\nSYSTEM Be <brief> & kind\n"));
    assert_non_null(strstr(mf, "\nLICENSE MIT\n"));
    json_t *det = json_object_get(s, "details");
    assert_string_equal(json_string_value(json_object_get(det, "format")), "gguf");
    assert_string_equal(json_string_value(json_object_get(det, "family")), "llama");
    assert_string_equal(json_string_value(json_array_get(json_object_get(det, "families"), 0)),
                        "llama");
    assert_string_equal(json_string_value(json_object_get(det, "parameter_size")), "64");
    assert_string_equal(json_string_value(json_object_get(det, "quantization_level")), "F16");
    json_t *mi = json_object_get(s, "model_info");
    assert_string_equal(json_string_value(json_object_get(mi, "general.architecture")), "llama");
    assert_null(json_object_get(mi, "general.name"));
    assert_int_equal(json_integer_value(json_object_get(mi, "general.parameter_count")), 64);
    assert_int_equal(json_integer_value(json_object_get(mi, "llama.context_length")), 128);
    assert_int_equal(json_array_size(json_object_get(mi, "tokenizer.ggml.tokens")), 0);
    assert_int_equal(json_array_size(json_object_get(mi, "general.tags")), 2);
    /* float32 printed as Go does, keys sorted */
    assert_non_null(strstr(r.body.data, "\"llama.attention.layer_norm_rms_epsilon\":0.00001,"));
    assert_true(strstr(r.body.data, "\"general.architecture\"") <
                strstr(r.body.data, "\"tokenizer.ggml.tokens\""));
    json_t *caps = json_object_get(s, "capabilities");
    assert_int_equal(json_array_size(caps), 2);
    assert_string_equal(json_string_value(json_array_get(caps, 0)), "completion");
    assert_string_equal(json_string_value(json_array_get(caps, 1)), "tools");
    assert_non_null(json_string_value(json_object_get(s, "modified_at")));
    assert_null(json_object_get(s, "tensors"));
    json_decref(s);
    resp_free(&r);

    fx_json(f, "POST", "/api/show", "{\"model\":\"tiny\",\"verbose\":true}", &r);
    assert_int_equal(r.status, 200);
    s = parse(r.body.data);
    json_t *toks = json_object_get(json_object_get(s, "model_info"), "tokenizer.ggml.tokens");
    assert_int_equal(json_array_size(toks), 8);
    assert_string_equal(json_string_value(json_array_get(toks, 5)), "<tag>");
    json_t *t0 = json_array_get(json_object_get(s, "tensors"), 0);
    assert_string_equal(json_string_value(json_object_get(t0, "name")), "token_embd.weight");
    assert_string_equal(json_string_value(json_object_get(t0, "type")), "F32");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(t0, "shape"), 1)), 8);
    json_decref(s);
    resp_free(&r);

    /* tags: one model, the display name, digest of the manifest bytes */
    fx_request(f, "GET", "/api/tags", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    s = parse(r.body.data);
    json_t *models = json_object_get(s, "models");
    assert_int_equal(json_array_size(models), 1);
    json_t *m0 = json_array_get(models, 0);
    assert_string_equal(json_string_value(json_object_get(m0, "name")), "tiny:latest");
    assert_string_equal(json_string_value(json_object_get(m0, "model")), "tiny:latest");
    char mpath[256];
    snprintf(mpath, sizeof mpath, "%s/models/manifests/registry.ollama.ai/library/tiny/latest",
             f->home);
    char *mbytes;
    size_t mlen;
    assert_int_equal(ox_fs_read_all(mpath, 1 << 20, &mbytes, &mlen), 0);
    char mhex[65];
    ox_sha256_hex(mbytes, mlen, mhex);
    assert_string_equal(json_string_value(json_object_get(m0, "digest")), mhex);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(m0, "details"), "family")), "llama");
    assert_true(json_integer_value(json_object_get(m0, "size")) > 300);
    assert_true(strncmp(r.body.data, "{\"models\":[{\"name\":\"tiny:latest\",\"model\":\"tiny:latest\","
                                     "\"modified_at\":\"",
                        strlen("{\"models\":[{\"name\":\"tiny:latest\",\"model\":\"tiny:latest\","
                               "\"modified_at\":\"")) == 0);
    json_decref(s);
    resp_free(&r);

    /* the config blob is Ollama's ConfigV2 */
    json_t *man = parse(mbytes);
    size_t clen;
    char *cfg = read_config(f, man, &clen);
    const char *cfg_want = "{\"model_format\":\"gguf\",\"model_family\":\"llama\","
                           "\"model_families\":[\"llama\"],\"model_type\":\"64\","
                           "\"file_type\":\"F16\",\"architecture\":\"amd64\",\"os\":\"linux\","
                           "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"";
    if (strncmp(cfg, cfg_want, strlen(cfg_want)) != 0)
        fail_msg("config blob: %s", cfg);
    assert_int_equal(cfg[clen - 1], '\n');
    free(cfg);

    /* registry view: byte-exact manifest with its digest */
    fx_request(f, "GET", "/v2/library/tiny/manifests/latest", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, mlen);
    assert_memory_equal(r.body.data, mbytes, mlen);
    assert_string_equal(resp_header(&r, "Content-Type", h, sizeof h),
                        "application/vnd.docker.distribution.manifest.v2+json");
    char want_dig[80];
    snprintf(want_dig, sizeof want_dig, "sha256:%s", mhex);
    assert_string_equal(resp_header(&r, "Docker-Content-Digest", h, sizeof h), want_dig);
    resp_free(&r);
    fx_request(f, "HEAD", "/v2/library/tiny/manifests/latest", NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    json_decref(man);
    free(mbytes);
}

static void test_copy_delete_from(void **state)
{
    fx_t *f = *state;
    char d[80], body[1024];
    put_gguf(f, 1, d);
    snprintf(body, sizeof body,
             "{\"name\":\"emb\",\"files\":{\"e.gguf\":\"%s\"},\"stream\":false}", d);
    resp_t r;
    fx_json(f, "POST", "/api/create", body, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    fx_json(f, "POST", "/api/show", "{\"name\":\"emb\"}", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "\"capabilities\":[\"embedding\"]"));
    assert_non_null(strstr(r.body.data, "\"template\":\"{{ .Prompt }}\""));
    resp_free(&r);

    /* a model built from another one keeps its layers and adds a system */
    fx_json(f, "POST", "/api/create",
            "{\"model\":\"user/emb2:v1\",\"from\":\"emb\",\"system\":\"hi\",\"stream\":false}", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fx_json(f, "POST", "/api/show", "{\"model\":\"user/emb2:v1\"}", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.data, "\"system\":\"hi\""));
    assert_non_null(strstr(r.body.data, "\"parent_model\":\"emb:latest\""));
    resp_free(&r);

    fx_json(f, "POST", "/api/create", "{\"model\":\"x\",\"from\":\"absent\"}", &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);

    fx_json(f, "POST", "/api/copy", "{\"source\":\"emb\",\"destination\":\"emb-copy:2\"}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "");
    resp_free(&r);
    fx_json(f, "POST", "/api/copy", "{\"source\":\"emb\",\"destination\":\"bad//name\"}", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);

    fx_request(f, "GET", "/api/tags", NULL, 0, NULL, &r);
    json_t *s = parse(r.body.data);
    assert_int_equal(json_array_size(json_object_get(s, "models")), 3);
    json_decref(s);
    resp_free(&r);

    fx_json(f, "DELETE", "/api/delete", "{\"model\":\"emb\"}", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fx_json(f, "DELETE", "/api/delete", "{\"model\":\"emb\"}", &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    /* the GGUF is still used by the copies */
    char path[256];
    snprintf(path, sizeof path, "/api/blobs/%s", d);
    fx_request(f, "HEAD", path, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fx_json(f, "DELETE", "/api/delete", "{\"model\":\"emb-copy:2\"}", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fx_json(f, "DELETE", "/api/delete", "{\"model\":\"user/emb2:v1\"}", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    fx_request(f, "HEAD", path, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    fx_request(f, "GET", "/api/tags", NULL, 0, NULL, &r);
    assert_string_equal(r.body.data, "{\"models\":[]}");
    resp_free(&r);
}

static void test_create_errors(void **state)
{
    fx_t *f = *state;
    resp_t r;
    char d[80], body[1024];
    fx_digest("never uploaded", 14, d);
    snprintf(body, sizeof body, "{\"model\":\"m\",\"files\":{\"m.gguf\":\"%s\"}}", d);
    fx_json(f, "POST", "/api/create", body, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "blob not found for m.gguf"));
    resp_free(&r);

    /* a blob that is not a GGUF */
    const char junk[] = "this is not a gguf file at all";
    fx_digest(junk, sizeof junk - 1, d);
    snprintf(body, sizeof body, "/api/blobs/%s", d);
    fx_request(f, "POST", body, junk, sizeof junk - 1, NULL, &r);
    assert_int_equal(r.status, 201);
    resp_free(&r);
    snprintf(body, sizeof body, "{\"model\":\"m\",\"files\":{\"m.gguf\":\"%s\"}}", d);
    fx_json(f, "POST", "/api/create", body, &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body.data, "{\"error\":\"supplied file was not in GGUF format: m.gguf\"}");
    resp_free(&r);

    /* a truncated GGUF */
    ox_buf_t g = OX_BUF_INIT;
    fx_make_gguf(&g, 0);
    g.len = 60;
    fx_digest(g.data, g.len, d);
    snprintf(body, sizeof body, "/api/blobs/%s", d);
    fx_request(f, "POST", body, g.data, g.len, NULL, &r);
    assert_int_equal(r.status, 201);
    resp_free(&r);
    ox_buf_free(&g);
    snprintf(body, sizeof body, "{\"model\":\"m\",\"files\":{\"m.gguf\":\"%s\"}}", d);
    fx_json(f, "POST", "/api/create", body, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "invalid GGUF file m.gguf"));
    resp_free(&r);

    fx_json(f, "POST", "/api/create", "{\"model\":\"m\",\"files\":{\"m.gguf\":\"sha256:12\"}}", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    fx_json(f, "POST", "/api/create", "{\"model\":\"bad name\",\"from\":\"x\"}", &r);
    assert_int_equal(r.status, 400);
    assert_string_equal(r.body.data, "{\"error\":\"invalid model name\"}");
    resp_free(&r);

    fx_request(f, "GET", "/api/tags", NULL, 0, NULL, &r);
    assert_string_equal(r.body.data, "{\"models\":[]}");
    resp_free(&r);
}

static void assert_layer(const json_t *layers, size_t i, const char *kind, const char *digest)
{
    const json_t *l = json_array_get(layers, i);
    char mt[128];
    snprintf(mt, sizeof mt, "application/vnd.ollama.image.%s", kind);
    assert_string_equal(json_string_value(json_object_get(l, "mediaType")), mt);
    if (digest)
        assert_string_equal(json_string_value(json_object_get(l, "digest")), digest);
}

static void test_create_adapter(void **state)
{
    fx_t *f = *state;
    char d[80], a[80], body[1024];
    put_gguf(f, 0, d);
    size_t asize = put_adapter(f, a);
    snprintf(body, sizeof body,
             "{\"model\":\"lora\",\"files\":{\"tiny.gguf\":\"%s\"},"
             "\"adapters\":{\"lora.gguf\":\"%s\"},\"system\":\"be brief\"}",
             d, a);
    resp_t r;
    fx_json(f, "POST", "/api/create", body, &r);
    assert_int_equal(r.status, 200);
    /* one "parsing GGUF" per GGUF, then the layers in manifest order */
    char want[1024];
    snprintf(want, sizeof want,
             "{\"status\":\"parsing GGUF\"}\n{\"status\":\"parsing GGUF\"}\n"
             "{\"status\":\"using existing layer %s\"}\n"
             "{\"status\":\"using existing layer %s\"}\n"
             "{\"status\":\"creating new layer sha256:",
             d, a);
    if (strncmp(r.body.data, want, strlen(want)) != 0)
        fail_msg("statuses: %s", r.body.data);
    assert_non_null(strstr(r.body.data, "\n{\"status\":\"writing manifest\"}\n"
                                        "{\"status\":\"success\"}\n"));
    resp_free(&r);

    /* the adapter is a layer right after the model, also in the config */
    char *m1;
    size_t m1len;
    read_manifest(f, "lora", &m1, &m1len);
    json_t *man = parse(m1);
    json_t *layers = json_object_get(man, "layers");
    assert_int_equal(json_array_size(layers), 3);
    assert_layer(layers, 0, "model", d);
    assert_layer(layers, 1, "adapter", a);
    assert_layer(layers, 2, "system", NULL);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(layers, 1), "size")),
                     asize);
    size_t clen;
    char *cfg = read_config(f, man, &clen);
    json_t *cj = parse(cfg);
    json_t *ids = json_object_get(json_object_get(cj, "rootfs"), "diff_ids");
    assert_int_equal(json_array_size(ids), 3);
    assert_string_equal(json_string_value(json_array_get(ids, 1)), a);
    /* the config describes the base model */
    assert_int_equal(json_array_size(json_object_get(cj, "model_families")), 1);
    json_decref(cj);
    free(cfg);
    json_decref(man);

    /* the same request again gives the same manifest bytes */
    snprintf(body, sizeof body,
             "{\"model\":\"lora\",\"files\":{\"tiny.gguf\":\"%s\"},"
             "\"adapters\":{\"lora.gguf\":\"%s\"},\"system\":\"be brief\",\"stream\":false}",
             d, a);
    fx_json(f, "POST", "/api/create", body, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data, "{\"status\":\"success\"}");
    resp_free(&r);
    char *m2;
    size_t m2len;
    read_manifest(f, "lora", &m2, &m2len);
    assert_int_equal(m1len, m2len);
    assert_memory_equal(m1, m2, m1len);
    free(m1);
    free(m2);

    /* show prints ADAPTER with the blob path right after FROM */
    fx_json(f, "POST", "/api/show", "{\"model\":\"lora\"}", &r);
    assert_int_equal(r.status, 200);
    json_t *s = parse(r.body.data);
    const char *mf = json_string_value(json_object_get(s, "modelfile"));
    char lines[1024];
    snprintf(lines, sizeof lines,
             "\nFROM %s/models/blobs/sha256-%s\nADAPTER %s/models/blobs/sha256-%s\nTEMPLATE ",
             f->home, d + 7, f->home, a + 7);
    if (!strstr(mf, lines))
        fail_msg("modelfile: %s", mf);
    json_decref(s);
    resp_free(&r);

    /* with `from`: the base's layers, then the adapter, then new layers */
    snprintf(body, sizeof body,
             "{\"model\":\"plain\",\"files\":{\"tiny.gguf\":\"%s\"},"
             "\"system\":\"base\",\"stream\":false}",
             d);
    fx_json(f, "POST", "/api/create", body, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    snprintf(body, sizeof body,
             "{\"model\":\"fromlora\",\"from\":\"plain\",\"adapters\":{\"x\":\"%s\"},"
             "\"template\":\"{{ .Prompt }}!\"}",
             a);
    fx_json(f, "POST", "/api/create", body, &r);
    assert_int_equal(r.status, 200);
    snprintf(want, sizeof want,
             "{\"status\":\"parsing GGUF\"}\n{\"status\":\"using existing layer %s\"}\n", d);
    if (strncmp(r.body.data, want, strlen(want)) != 0)
        fail_msg("statuses: %s", r.body.data);
    resp_free(&r);
    read_manifest(f, "fromlora", &m1, &m1len);
    man = parse(m1);
    layers = json_object_get(man, "layers");
    assert_int_equal(json_array_size(layers), 4);
    assert_layer(layers, 0, "model", d);
    assert_layer(layers, 1, "system", NULL);
    assert_layer(layers, 2, "adapter", a);
    assert_layer(layers, 3, "template", NULL);
    json_decref(man);
    free(m1);
    fx_json(f, "POST", "/api/show", "{\"model\":\"fromlora\"}", &r);
    assert_int_equal(r.status, 200);
    s = parse(r.body.data);
    mf = json_string_value(json_object_get(s, "modelfile"));
    snprintf(lines, sizeof lines, "\nADAPTER %s/models/blobs/sha256-%s\n", f->home, a + 7);
    assert_non_null(strstr(mf, lines));
    json_decref(s);
    resp_free(&r);

    /* a model without adapter layers prints no ADAPTER */
    fx_json(f, "POST", "/api/show", "{\"model\":\"plain\"}", &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body.data, "ADAPTER"));
    resp_free(&r);
}

/* POSTs a create with the given adapters value and expects a 400 with err. */
static void create_bad_adapter(fx_t *f, const char *base, const char *adapters,
                               const char *err)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"model\":\"bad\",%s,\"adapters\":%s,\"template\":\"never stored\"}", base,
             adapters);
    resp_t r;
    fx_json(f, "POST", "/api/create", body, &r);
    if (r.status != 400 || strcmp(r.body.data, err) != 0)
        fail_msg("%s: %ld %s (want %s)", adapters, r.status, r.body.data, err);
    resp_free(&r);
}

static void test_create_adapter_errors(void **state)
{
    fx_t *f = *state;
    char d[80], a[80], base[256], adapters[512], err[512];
    put_gguf(f, 0, d);
    snprintf(base, sizeof base, "\"files\":{\"tiny.gguf\":\"%s\"}", d);

    /* a blob never uploaded: refused before anything is stored */
    fx_digest("never uploaded", 14, a);
    snprintf(adapters, sizeof adapters, "{\"a.gguf\":\"%s\"}", a);
    snprintf(err, sizeof err,
             "{\"error\":\"blob not found for a.gguf (digest %s): upload it first with POST "
             "/api/blobs/%s\"}",
             a, a);
    create_bad_adapter(f, base, adapters, err);
    assert_int_equal(count_blobs(f), 1);

    create_bad_adapter(f, base, "{\"a.gguf\":\"sha256:12\"}",
                       "{\"error\":\"invalid digest for a.gguf: invalid digest format\"}");
    create_bad_adapter(f, base, "{\"a.gguf\":42}",
                       "{\"error\":\"invalid digest for a.gguf: invalid digest format\"}");
    create_bad_adapter(f, base, "{}", "{\"error\":\"no files provided to convert\"}");
    create_bad_adapter(f, base, "\"a.gguf\"",
                       "{\"error\":\"adapters must map file names to digests\"}");

    /* a blob that is not a GGUF */
    const char junk[] = "this is not a gguf adapter";
    char path[256];
    fx_digest(junk, sizeof junk - 1, a);
    snprintf(path, sizeof path, "/api/blobs/%s", a);
    resp_t r;
    fx_request(f, "POST", path, junk, sizeof junk - 1, NULL, &r);
    assert_int_equal(r.status, 201);
    resp_free(&r);
    snprintf(adapters, sizeof adapters, "{\"a.gguf\":\"%s\"}", a);
    create_bad_adapter(f, base, adapters,
                       "{\"error\":\"supplied file was not in GGUF format: a.gguf\"}");

    /* Ollama takes one adapter */
    char good[80];
    put_adapter(f, good);
    snprintf(adapters, sizeof adapters, "{\"a.gguf\":\"%s\",\"b.gguf\":\"%s\"}", good, good);
    create_bad_adapter(f, base, adapters,
                       "{\"error\":\"only one adapter is currently supported\"}");
    assert_int_equal(count_blobs(f), 3);
    fx_request(f, "GET", "/api/tags", NULL, 0, NULL, &r);
    assert_string_equal(r.body.data, "{\"models\":[]}");
    resp_free(&r);

    /* with `from`, a missing adapter leaves the store as it was too */
    char body[1024];
    snprintf(body, sizeof body, "{\"model\":\"base\",%s,\"stream\":false}", base);
    fx_json(f, "POST", "/api/create", body, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    int blobs = count_blobs(f);
    fx_digest("never uploaded", 14, a);
    snprintf(adapters, sizeof adapters, "{\"a.gguf\":\"%s\"}", a);
    snprintf(err, sizeof err,
             "{\"error\":\"blob not found for a.gguf (digest %s): upload it first with POST "
             "/api/blobs/%s\"}",
             a, a);
    create_bad_adapter(f, "\"from\":\"base\"", adapters, err);
    create_bad_adapter(f, "\"from\":\"base\"", "{\"a.gguf\":\"sha256-xyz\"}",
                       "{\"error\":\"invalid digest for a.gguf: invalid digest format\"}");
    assert_int_equal(count_blobs(f), blobs);
    fx_request(f, "GET", "/api/tags", NULL, 0, NULL, &r);
    json_t *s = parse(r.body.data);
    assert_int_equal(json_array_size(json_object_get(s, "models")), 1);
    json_decref(s);
    resp_free(&r);

    /* null is no adapter, as in Go */
    snprintf(body, sizeof body, "{\"model\":\"nul\",%s,\"adapters\":null,\"stream\":false}",
             base);
    fx_json(f, "POST", "/api/create", body, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_show, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_copy_delete_from, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_create_errors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_create_adapter, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_create_adapter_errors, fx_setup, fx_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
