/* quant_ref_test.c - agreement with the PyTorch references of tests/ref/make_quant_refs.py on
 * fixed W, X and H (tests/data/quant): GPTQ weights with and without groups, act_order and static
 * groups (both outputs judged by tests/cs_tol.h: every value a rounding of its pre-rounding value
 * within the float error bound, so they can part only at a near tie), SparseGPT and Wanda masks
 * (identical), SmoothQuant scales and AWQ's means, scales and clip values. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_awq.h"
#include "cs_gptq.h"
#include "cs_hessian.h"
#include "cs_json.h"
#include "cs_path.h"
#include "cs_smooth.h"
#include "cs_sparsegpt.h"
#include "cs_test.h"
#include "cs_tol.h"
#include "cs_wanda.h"

typedef struct refs {
    char dir[1024];
    cJSON *index;
    size_t rows, cols, tokens;
    float *w, *x, *h;
} refs;

/* Reads array `name` (checks dtype and element count); returns owned memory (free). */
static void *load(const refs *r, const char *name, const char *dtype, size_t count)
{
    const cJSON *arrays = cJSON_GetObjectItemCaseSensitive(r->index, "arrays");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(arrays, name);
    assert_non_null(a);
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(a, "file");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(a, "dtype");
    assert_true(cJSON_IsString(file) && cJSON_IsString(dt));
    assert_string_equal(dt->valuestring, dtype);
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", r->dir, file->valuestring);
    char *data = NULL;
    size_t len = 0;
    cs_err err = {0};
    if (cs_path_read_file(path, 0, &data, &len, &err) != CS_OK) {
        fail_msg("%s", err.msg);
    }
    const size_t esz = strcmp(dtype, "f32") == 0 ? 4 : 1;
    assert_int_equal(len, count * esz);
    return data; /* little-endian f32 on the supported (x86-64, arm64) hosts */
}

static int setup(void **state)
{
    refs *r = calloc(1, sizeof(*r));
    const char *src = getenv("CS_SOURCE_DIR");
    snprintf(r->dir, sizeof(r->dir), "%s/tests/data/quant", src ? src : ".");
    char path[1100];
    snprintf(path, sizeof(path), "%s/index.json", r->dir);
    cs_err err = {0};
    if (cs_json_parse_file(path, 0, &r->index, &err) != CS_OK) {
        print_error("%s\n", err.msg);
        free(r);
        return -1;
    }
    r->rows = (size_t)cJSON_GetObjectItemCaseSensitive(r->index, "rows")->valuedouble;
    r->cols = (size_t)cJSON_GetObjectItemCaseSensitive(r->index, "cols")->valuedouble;
    r->tokens = (size_t)cJSON_GetObjectItemCaseSensitive(r->index, "tokens")->valuedouble;
    *state = r;
    r->w = load(r, "W", "f32", r->rows * r->cols);
    r->x = load(r, "X", "f32", r->tokens * r->cols);
    r->h = load(r, "H", "f32", r->cols * r->cols);
    return 0;
}

static int teardown(void **state)
{
    refs *r = *state;
    cJSON_Delete(r->index);
    free(r->w);
    free(r->x);
    free(r->h);
    free(r);
    return 0;
}

static double num(const cJSON *c, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static bool flag(const cJSON *c, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, k));
}

static const char *str(const cJSON *c, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static void test_hessian_matches(void **state)
{
    refs *r = *state;
    const size_t C = r->cols;
    cs_hessian *hs = NULL;
    float *h = malloc(C * C * sizeof(float));
    assert_int_equal(cs_hessian_create(&hs, C, NULL), CS_OK);
    assert_int_equal(cs_hessian_add(hs, r->x, r->tokens, NULL), CS_OK);
    assert_int_equal(cs_hessian_get(hs, h, NULL), CS_OK);
    /* both sides sum T products in double (error <= gamma_T(double) * sum |x_i x_j| <= T eps
     * max diag(H) each, as |x_i x_j| <= (x_i^2 + x_j^2) / 2), then round once to float (half an
     * ulp each): derived, not tuned */
    double hmax = 0.0;
    for (size_t j = 0; j < C; j++) {
        hmax = fmax(hmax, (double)r->h[j * C + j]);
    }
    cs_assert_close(h, r->h, C * C, 2.0 * (double)r->tokens * DBL_EPSILON * hmax,
                    2.0 * CS_TOL_U * 1.001);
    cs_hessian_destroy(hs);
    free(h);
}

/* Fails naming the first value of `who`'s output that is no level of its pre-rounding interval. */
static void gptq_judged(const cs_tol_gptq_report *j, const char *who, bool ok)
{
    if (!ok) {
        fail_msg("%s: %zu of %zu values are no rounding of their pre-rounding value; first at"
                 " [%zu][%zu]: %.9g, the exact replay rounds to %.9g",
                 who, j->bad, j->checked, j->bad_row, j->bad_col, j->got, j->want);
    }
    /* a bound near one step would accept anything: it must stay far below (a near tie: < 2 %) */
    assert_true(j->max_delta < 0.01);
}

static void test_gptq_matches(void **state)
{
    refs *r = *state;
    const size_t R = r->rows, C = r->cols;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(r->index, "cases"), *c;
    float *q = malloc(R * C * sizeof(float));
    size_t n_cases = 0, total_diff = 0;
    cJSON_ArrayForEach(c, cases)
    {
        if (strcmp(str(c, "algo"), "gptq") != 0) {
            continue;
        }
        cs_gptq_params p;
        cs_gptq_params_default(&p);
        p.q.bits = (int)num(c, "bits");
        p.q.sym = flag(c, "sym");
        p.group_size = (long)num(c, "group_size");
        p.act_order = flag(c, "act_order");
        p.static_groups = flag(c, "static_groups");
        p.percdamp = num(c, "percdamp");
        p.blocksize = (size_t)num(c, "blocksize");
        float *want = load(r, str(c, "output"), "f32", R * C);
        memcpy(q, r->w, R * C * sizeof(float));
        cs_gptq_result res;
        assert_int_equal(cs_gptq_quantize(q, R, C, r->h, &p, &res, NULL), CS_OK);
        cs_tol_gptq_report jr = {0}, jq = {0};
        const bool ref_ok = cs_tol_gptq_judge(r->w, r->h, R, C, &p, want, &jr);
        const bool our_ok = cs_tol_gptq_judge(r->w, r->h, R, C, &p, q, &jq);
        size_t diff = 0, rows_apart = 0;
        double maxd = 0.0;
        for (size_t i = 0; i < R * C; i++) {
            if (q[i] != want[i]) {
                diff++;
                maxd = fmax(maxd, fabs((double)q[i] - want[i]));
            }
        }
        for (size_t i = 0; i < R; i++) {
            rows_apart += memcmp(q + i * C, want + i * C, C * sizeof(float)) != 0;
        }
        const double loss = num(c, "loss");
        print_message("# %-26s differing %zu / %zu in %zu rows (max |diff| %.3g), near ties %zu,"
                      " max delta/scale %.2g; loss %.7g vs %.7g\n",
                      str(c, "name"), diff, R * C, rows_apart, maxd, jq.near_ties, jq.max_delta,
                      res.loss, loss);
        gptq_judged(&jr, "the reference", ref_ok);
        gptq_judged(&jq, "calsweep", our_ok);
        assert_true(fabs(res.loss - loss) <= 1e-3 * loss);
        assert_int_equal(res.n_dead, 1);
        total_diff += diff;
        n_cases++;
        /* the UL route to U: the same U up to float rounding, judged the same way */
        p.hinv = CS_GPTQ_HINV_UL;
        memcpy(q, r->w, R * C * sizeof(float));
        assert_int_equal(cs_gptq_quantize(q, R, C, r->h, &p, &res, NULL), CS_OK);
        size_t diff_ul = 0;
        for (size_t i = 0; i < R * C; i++) {
            diff_ul += q[i] != want[i];
        }
        print_message("#   with hinv=ul: differing %zu / %zu, loss %.7g\n", diff_ul, R * C,
                      res.loss);
        gptq_judged(&jq, "calsweep (hinv=ul)", cs_tol_gptq_judge(r->w, r->h, R, C, &p, q, &jq));
        assert_true(fabs(res.loss - loss) <= 1e-3 * loss);
        free(want);
    }
    assert_int_equal(n_cases, 8);
    print_message("# gptq: %zu differing weights over %zu cases\n", total_diff, n_cases);
    free(q);
}

static void test_pruning_masks_match(void **state)
{
    refs *r = *state;
    const size_t R = r->rows, C = r->cols;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(r->index, "cases"), *c;
    float *q = malloc(R * C * sizeof(float));
    uint8_t *mask = malloc(R * C);
    double *sumsq = malloc(C * sizeof(double));
    cs_hessian *hs = NULL;
    assert_int_equal(cs_hessian_create(&hs, C, NULL), CS_OK);
    assert_int_equal(cs_hessian_add(hs, r->x, r->tokens, NULL), CS_OK);
    cs_hessian_diag(hs, sumsq);
    cs_hessian_destroy(hs);
    size_t n_cases = 0;
    cJSON_ArrayForEach(c, cases)
    {
        const char *algo = str(c, "algo");
        const bool sgpt = strcmp(algo, "sparsegpt") == 0;
        if (!sgpt && strcmp(algo, "wanda") != 0) {
            continue;
        }
        uint8_t *want = load(r, str(c, "mask"), "u8", R * C);
        memcpy(q, r->w, R * C * sizeof(float));
        if (sgpt) {
            cs_sparsegpt_params p;
            cs_sparsegpt_params_default(&p);
            p.sparsity = num(c, "sparsity");
            p.prune_n = (size_t)num(c, "prune_n");
            p.prune_m = (size_t)num(c, "prune_m");
            assert_int_equal(cs_sparsegpt_prune(q, R, C, r->h, &p, mask, NULL, NULL), CS_OK);
            float *wq = load(r, str(c, "output"), "f32", R * C);
            cs_assert_close(q, wq, R * C, 1e-5, 1e-4);
            free(wq);
        } else {
            assert_int_equal(cs_wanda_prune(q, R, C, sumsq, num(c, "sparsity"),
                                            (size_t)num(c, "prune_n"), (size_t)num(c, "prune_m"),
                                            mask, NULL),
                             CS_OK);
        }
        size_t diff = 0;
        for (size_t i = 0; i < R * C; i++) {
            diff += mask[i] != want[i];
        }
        print_message("# %-14s mask entries differing: %zu / %zu\n", str(c, "name"), diff, R * C);
        assert_int_equal(diff, 0);
        n_cases++;
        free(want);
    }
    assert_int_equal(n_cases, 5);
    free(q);
    free(mask);
    free(sumsq);
}

static void test_smooth_and_awq_match(void **state)
{
    refs *r = *state;
    const size_t R = r->rows, C = r->cols, T = r->tokens;
    cs_actstats st;
    assert_int_equal(cs_actstats_init(&st, C, NULL), CS_OK);
    assert_int_equal(cs_actstats_add(&st, r->x, T, NULL), CS_OK);
    float *w2 = malloc(16 * C * sizeof(float)), *s = malloc(C * sizeof(float));
    for (size_t i = 0; i < 16 * C; i++) {
        w2[i] = r->w[i] * 1.7f;
    }
    const float *ws[2] = {r->w, w2};
    const size_t rows[2] = {R, 16};
    float *xm = malloc(C * sizeof(float)), *wm = malloc(C * sizeof(float));
    assert_int_equal(cs_awq_x_mean(xm, &st, NULL), CS_OK);
    assert_int_equal(cs_awq_w_mean(wm, C, ws, rows, 2, 128, NULL), CS_OK);
    float *want = load(r, "awq_x_mean", "f32", C);
    cs_assert_close(xm, want, C, 0.0, 1e-6);
    free(want);
    want = load(r, "awq_w_mean", "f32", C);
    cs_assert_close(wm, want, C, 0.0, 1e-6);
    free(want);
    /* use the reference means so the scale formula is compared on its own */
    want = load(r, "awq_x_mean", "f32", C);
    memcpy(xm, want, C * sizeof(float));
    free(want);
    want = load(r, "awq_w_mean", "f32", C);
    memcpy(wm, want, C * sizeof(float));
    free(want);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(r->index, "cases"), *c;
    size_t n_cases = 0;
    cJSON_ArrayForEach(c, cases)
    {
        const char *algo = str(c, "algo");
        if (strcmp(algo, "smoothquant") == 0) {
            cs_smooth_params p;
            cs_smooth_params_default(&p);
            p.alpha = num(c, "alpha");
            assert_int_equal(cs_smooth_scales(s, C, st.absmax, ws, rows, 2, &p, NULL), CS_OK);
        } else if (strcmp(algo, "awq_scales") == 0) {
            cs_awq_scales_for_ratio(s, xm, wm, C, num(c, "ratio"), flag(c, "duo"));
        } else if (strcmp(algo, "awq_clip") == 0) {
            cs_awq_params p;
            cs_awq_params_default(&p);
            const size_t ng = C / p.group_size;
            float *mv = malloc(R * ng * sizeof(float));
            assert_int_equal(cs_awq_clip_search(mv, r->w, R, C, r->x, T, &p, NULL), CS_OK);
            want = load(r, str(c, "output"), "f32", R * ng);
            size_t diff = 0;
            for (size_t i = 0; i < R * ng; i++) {
                diff += mv[i] != want[i];
            }
            print_message("# awq clip values differing: %zu / %zu\n", diff, R * ng);
            assert_true(diff * 20 <= R * ng); /* near-equal errors may pick a neighbour */
            free(mv);
            free(want);
            n_cases++;
            continue;
        } else {
            continue;
        }
        want = load(r, str(c, "output"), "f32", C);
        cs_assert_close(s, want, C, 0.0, 2e-6);
        free(want);
        n_cases++;
    }
    assert_int_equal(n_cases, 9);
    cs_actstats_fini(&st);
    free(w2);
    free(s);
    free(xm);
    free(wm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_hessian_matches),
            cmocka_unit_test(test_gptq_matches),
            cmocka_unit_test(test_pruning_masks_match),
            cmocka_unit_test(test_smooth_and_awq_match),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
