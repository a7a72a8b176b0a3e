/* GET /api/tags over many models: every model listed with the details of its
 * own config, from one walk of manifests/ (not one walk per model). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <jansson.h>

#include "api_fixture.h"
#include "cas/cas.h"
#include "common/err.h"

/* ---- opendir interposed: counts the directories the daemon opens -------- */

static int g_opendirs;

DIR *opendir(const char *name)
{
    static DIR *(*real)(const char *);
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "opendir");
    __atomic_add_fetch(&g_opendirs, 1, __ATOMIC_RELAXED);
    return real(name);
}

#define MANY 300

static void put(cas_t *c, const char *data, char out[72])
{
    cas_ingest_t *in;
    char err[256] = "";
    assert_int_equal(cas_ingest_begin(c, NULL, 0, &in), 0);
    assert_int_equal(cas_ingest_write(in, data, strlen(data)), 0);
    assert_int_equal(cas_ingest_commit(in, out, NULL, err, sizeof err), 0);
}

static void name_of_model(int i, char *out, size_t cap)
{
    snprintf(out, cap, "team%d/model-%03d:v%d", i % 3, i, i % 7);
}

static void test_tags_many(void **state)
{
    fx_t *f = *state;
    cas_t *c = f->node.cas;
    char layer[72];
    put(c, "shared weights", layer);
    for (int i = 0; i < MANY; i++) {
        char cfg_text[128], cfg[72], man[1024], nm[64];
        int cl = snprintf(cfg_text, sizeof cfg_text,
                          "{\"model_format\":\"gguf\",\"model_family\":\"fam%d\"}", i);
        put(c, cfg_text, cfg);
        int ml = snprintf(man, sizeof man,
                          "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker."
                          "distribution.manifest.v2+json\",\"config\":{\"mediaType\":"
                          "\"application/vnd.docker.container.image.v1+json\",\"digest\":\"%s\","
                          "\"size\":%d},\"layers\":[{\"mediaType\":\"application/vnd.ollama."
                          "image.model\",\"digest\":\"%s\",\"size\":14}]}",
                          cfg, cl, layer);
        name_of_model(i, nm, sizeof nm);
        cas_name_t n;
        assert_int_equal(cas_name_parse(nm, &n), 0);
        assert_int_equal(cas_manifest_write(c, &n, man, (size_t)ml, NULL, NULL, 0), 0);
    }
    resp_t r;
    __atomic_store_n(&g_opendirs, 0, __ATOMIC_RELAXED);
    fx_request(f, "GET", "/api/tags", NULL, 0, NULL, &r);
    int dirs = __atomic_load_n(&g_opendirs, __ATOMIC_RELAXED);
    assert_int_equal(r.status, 200);
    json_t *root = json_loadb(r.body.data, r.body.len, 0, NULL);
    assert_non_null(root);
    json_t *models = json_object_get(root, "models");
    assert_int_equal(json_array_size(models), MANY);
    static int seen[MANY];
    for (size_t k = 0; k < json_array_size(models); k++) {
        json_t *m = json_array_get(models, k);
        const char *name = json_string_value(json_object_get(m, "name"));
        assert_non_null(name);
        int i = -1;
        assert_int_equal(sscanf(strchr(name, '/') + 1, "model-%d", &i), 1);
        assert_true(i >= 0 && i < MANY);
        char want[64], fam[32];
        name_of_model(i, want, sizeof want);
        assert_string_equal(name, want);
        assert_int_equal(seen[i]++, 0);
        /* the details come from this model's own config */
        json_t *d = json_object_get(m, "details");
        snprintf(fam, sizeof fam, "fam%d", i);
        assert_string_equal(json_string_value(json_object_get(d, "family")), fam);
        assert_string_equal(json_string_value(json_object_get(d, "format")), "gguf");
        char cfg_text[128];
        int cl = snprintf(cfg_text, sizeof cfg_text,
                          "{\"model_format\":\"gguf\",\"model_family\":\"fam%d\"}", i);
        assert_int_equal(json_integer_value(json_object_get(m, "size")), cl + 14);
    }
    json_decref(root);
    resp_free(&r);
    /* One walk opens manifests/, the host, 3 namespaces and 300 model dirs
     * (305); a walk per model would open about 300 times that. Allow a few
     * walks, never one per model. */
    print_message("/api/tags of %d models opened %d directories\n", MANY, dirs);
    assert_true(dirs >= 305);
    assert_true(dirs < 4 * 305);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tags_many, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
