/* engine_testbed_test.c - the engine reproduces the testbed's PyTorch references: logits of
 * sweeps/testbed/ref/<model>.logits.bin within 1e-4, and the held-out perplexity of
 * ref/<model>.metrics.json within 1e-3 relative (window means within 1e-4). */
#include <stdlib.h>
#include <string.h>

#include "cs_json.h"
#include "cs_model.h"
#include "cs_path.h"
#include "cs_test.h"

static char *src_path(const char *rel)
{
    const char *root = getenv("CS_SOURCE_DIR");
    cs_buf b;
    cs_buf_init(&b);
    assert_int_equal(cs_buf_printf(&b, "%s/%s", root ? root : ".", rel), CS_OK);
    return cs_buf_take(&b);
}

static cJSON *load_json(const char *rel)
{
    char *p = src_path(rel);
    cJSON *j = NULL;
    cs_err err = {0};
    cs_rc rc = cs_json_parse_file(p, 0, &j, &err);
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    free(p);
    return j;
}

static int32_t *ids_of(const cJSON *arr, size_t *n)
{
    *n = (size_t)cJSON_GetArraySize(arr);
    int32_t *ids = calloc(*n ? *n : 1, sizeof(*ids));
    size_t i = 0;
    for (const cJSON *e = arr->child; e; e = e->next) {
        ids[i++] = (int32_t)e->valuedouble;
    }
    return ids;
}

static cs_model *load_model(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "sweeps/testbed/models/%s", name);
    char *dir = src_path(rel);
    cs_model *m = NULL;
    cs_err err = {0};
    cs_rc rc = cs_model_load(&m, dir, 2, &err);
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    free(dir);
    return m;
}

static void check_logits(const char *name)
{
    char rel[128];
    cs_model *m = load_model(name);
    snprintf(rel, sizeof(rel), "sweeps/testbed/ref/%s.logits.json", name);
    cJSON *j = load_json(rel);
    snprintf(rel, sizeof(rel), "sweeps/testbed/ref/%s.logits.bin", name);
    char *bin_path = src_path(rel);
    char *bin = NULL;
    size_t bin_len = 0;
    cs_err err = {0};
    assert_int_equal(cs_path_read_file(bin_path, 0, &bin, &bin_len, &err), CS_OK);
    const size_t V = m->cfg.vocab;
    size_t off = 0;
    const cJSON *seqs = cJSON_GetObjectItemCaseSensitive(j, "sequences");
    assert_true(cJSON_GetArraySize(seqs) >= 1);
    for (const cJSON *s = seqs->child; s; s = s->next) {
        size_t T;
        int32_t *ids = ids_of(cJSON_GetObjectItemCaseSensitive(s, "ids"), &T);
        float *logits = calloc(T * V, sizeof(float));
        float *ref = calloc(T * V, sizeof(float));
        assert_true(off + T * V * 4 <= bin_len);
        memcpy(ref, bin + off, T * V * 4);
        off += T * V * 4;
        assert_int_equal(cs_model_forward(m, ids, 1, T, NULL, NULL, NULL, logits, &err), CS_OK);
        cs_assert_close(logits, ref, T * V, 1e-4, 0.0);
        free(logits);
        free(ref);
        free(ids);
    }
    assert_int_equal(off, bin_len);
    free(bin);
    free(bin_path);
    cJSON_Delete(j);
    cs_model_destroy(m);
}

static void check_ppl(const char *name)
{
    char rel[128];
    cs_model *m = load_model(name);
    snprintf(rel, sizeof(rel), "sweeps/testbed/ref/%s.heldout.json", name);
    cJSON *h = load_json(rel);
    snprintf(rel, sizeof(rel), "sweeps/testbed/ref/%s.metrics.json", name);
    cJSON *mj = load_json(rel);
    const cJSON *ho = cJSON_GetObjectItemCaseSensitive(mj, "heldout");
    double want = cJSON_GetObjectItemCaseSensitive(ho, "ppl")->valuedouble;
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(ho, "window_mean_nll");
    size_t window = (size_t)cJSON_GetObjectItemCaseSensitive(h, "window")->valuedouble;
    size_t n;
    int32_t *ids = ids_of(cJSON_GetObjectItemCaseSensitive(h, "ids"), &n);
    double nll[64], ppl = 0;
    size_t nw = 0;
    cs_err err = {0};
    assert_int_equal(cs_model_ppl(m, ids, n, window, 4, nll, &nw, &ppl, &err), CS_OK);
    assert_int_equal(nw, (size_t)cJSON_GetArraySize(wm));
    size_t i = 0;
    for (const cJSON *e = wm->child; e; e = e->next, i++) {
        cs_assert_close_d(&nll[i], &e->valuedouble, 1, 1e-4, 0.0);
    }
    cs_assert_close_d(&ppl, &want, 1, 0.0, 1e-3);
    free(ids);
    cJSON_Delete(h);
    cJSON_Delete(mj);
    cs_model_destroy(m);
}

static void test_llama_logits(void **state)
{
    (void)state;
    check_logits("tb-llama");
}

static void test_qwen_logits(void **state)
{
    (void)state;
    check_logits("tb-qwen");
}

static void test_llama_ppl(void **state)
{
    (void)state;
    check_ppl("tb-llama");
}

static void test_qwen_ppl(void **state)
{
    (void)state;
    check_ppl("tb-qwen");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_llama_logits),
            cmocka_unit_test(test_qwen_logits),
            cmocka_unit_test(test_llama_ppl),
            cmocka_unit_test(test_qwen_ppl),
    };
    return cmocka_run_group_tests_name("engine_testbed", tests, NULL, NULL);
}
