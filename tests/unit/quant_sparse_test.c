/* quant_sparse_test.c - SparseGPT and Wanda (docs/specs/ptq-algorithms.md sections 5 and 6): exact
 * sparsity and N:M patterns, H = I is block-threshold magnitude pruning, equal input norms make
 * Wanda per-row magnitude pruning, and the output-error ranking on correlated inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_hessian.h"
#include "cs_sparsegpt.h"
#include "cs_test.h"
#include "cs_wanda.h"

/* Correlated X = Z A with a few 20x outlier channels: tokens x cols. */
static float *outlier_x(size_t t, size_t c, uint64_t seed)
{
    float *z = malloc(t * c * sizeof(float)), *a = malloc(c * c * sizeof(float));
    float *x = calloc(t * c, sizeof(float));
    assert_true(z && a && x);
    cs_fill_normal(z, t * c, 1.0f, seed);
    cs_fill_normal(a, c * c, 1.0f / sqrtf((float)c), seed + 1);
    for (size_t i = 0; i < c; i++) {
        a[i * c + i] += 0.5f;
    }
    for (size_t r = 0; r < t; r++) {
        for (size_t k = 0; k < c; k++) {
            for (size_t j = 0; j < c; j++) {
                x[r * c + j] += z[r * c + k] * a[k * c + j];
            }
        }
        for (size_t j = 3; j < c; j += 41) {
            x[r * c + j] *= 20.0f;
        }
    }
    free(z);
    free(a);
    return x;
}

static double out_err(const float *w, const float *q, const float *x, size_t r, size_t c, size_t t)
{
    double s = 0.0;
    for (size_t i = 0; i < r; i++) {
        for (size_t k = 0; k < t; k++) {
            double acc = 0.0;
            for (size_t j = 0; j < c; j++) {
                acc += ((double)w[i * c + j] - q[i * c + j]) * x[k * c + j];
            }
            s += acc * acc;
        }
    }
    return s;
}

static void stats_of(const float *x, size_t t, size_t c, float *h, double *sumsq)
{
    cs_hessian *hs = NULL;
    assert_int_equal(cs_hessian_create(&hs, c, NULL), CS_OK);
    assert_int_equal(cs_hessian_add(hs, x, t, NULL), CS_OK);
    assert_int_equal(cs_hessian_get(hs, h, NULL), CS_OK);
    cs_hessian_diag(hs, sumsq);
    cs_hessian_destroy(hs);
}

static void test_sparsegpt_exact_patterns(void **state)
{
    (void)state;
    enum { R = 16, C = 320, T = 800 };
    float *x = outlier_x(T, C, 5);
    float *h = malloc(C * C * sizeof(float));
    double sumsq[C];
    stats_of(x, T, C, h, sumsq);
    float *w = malloc(R * C * sizeof(float)), *q = malloc(R * C * sizeof(float));
    uint8_t *mask = malloc(R * C);
    cs_fill_normal(w, R * C, 1.0f, 6);
    cs_sparsegpt_params p;
    cs_sparsegpt_params_default(&p);
    memcpy(q, w, R * C * sizeof(float));
    cs_gptq_result res;
    assert_int_equal(cs_sparsegpt_prune(q, R, C, h, &p, mask, &res, NULL), CS_OK);
    /* each block loses floor(numel p) + 1 entries (no exact ties in random data) */
    for (size_t i1 = 0; i1 < C; i1 += 128) {
        const size_t nb = C - i1 < 128 ? C - i1 : 128;
        size_t zeros = 0, masked = 0;
        for (size_t r = 0; r < R; r++) {
            for (size_t k = 0; k < nb; k++) {
                zeros += q[r * C + i1 + k] == 0.0f;
                masked += mask[r * C + i1 + k];
                assert_true((q[r * C + i1 + k] == 0.0f) == (mask[r * C + i1 + k] == 1));
            }
        }
        assert_int_equal(zeros, (size_t)((double)(R * nb) * 0.5) + 1);
        assert_int_equal(masked, zeros);
    }
    /* N:M 2:4 and 4:8: exactly N zeros in every run of M of every row */
    const size_t nm[2][2] = {{2, 4}, {4, 8}};
    for (size_t v = 0; v < 2; v++) {
        p.prune_n = nm[v][0];
        p.prune_m = nm[v][1];
        memcpy(q, w, R * C * sizeof(float));
        assert_int_equal(cs_sparsegpt_prune(q, R, C, h, &p, mask, NULL, NULL), CS_OK);
        for (size_t r = 0; r < R; r++) {
            for (size_t j0 = 0; j0 < C; j0 += p.prune_m) {
                size_t z = 0;
                for (size_t k = 0; k < p.prune_m; k++) {
                    z += q[r * C + j0 + k] == 0.0f;
                }
                assert_int_equal(z, p.prune_n);
            }
        }
    }
    /* pruning + per-row Q-GPTQ: kept weights on the row's grid (taken from the original row) */
    p.prune_n = 2;
    p.prune_m = 4;
    p.quant = (cs_qspec){.family = CS_QF_GPTQ, .bits = 4, .sym = false};
    memcpy(q, w, R * C * sizeof(float));
    assert_int_equal(cs_sparsegpt_prune(q, R, C, h, &p, mask, NULL, NULL), CS_OK);
    for (size_t r = 0; r < R; r++) {
        cs_qparam qp;
        cs_qparam_find(&qp, &p.quant, w + r * C, C);
        size_t z = 0;
        for (size_t j = 0; j < C; j++) {
            assert_true(cs_qparam_apply(&qp, q[r * C + j]) == q[r * C + j]);
            z += mask[r * C + j];
            if (mask[r * C + j]) {
                assert_true(q[r * C + j] == 0.0f);
            }
        }
        assert_int_equal(z, C / 2);
    }
    p.quant.bits = 0;
    cs_err err = {0};
    p.prune_n = 3;
    p.prune_m = 3; /* 128 % 3 != 0 */
    assert_int_equal(cs_sparsegpt_prune(q, R, C, h, &p, NULL, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "prune_n"));
    free(x);
    free(h);
    free(w);
    free(q);
    free(mask);
}

/* H = I: block-threshold magnitude pruning with no weight updates. */
static void test_sparsegpt_identity_is_magnitude(void **state)
{
    (void)state;
    enum { R = 8, C = 256 };
    float *w = malloc(R * C * sizeof(float)), *q = malloc(R * C * sizeof(float));
    float *h = calloc(C * C, sizeof(float));
    cs_fill_normal(w, R * C, 1.0f, 9);
    for (size_t j = 0; j < C; j++) {
        h[j * C + j] = 1.0f;
    }
    cs_sparsegpt_params p;
    cs_sparsegpt_params_default(&p);
    memcpy(q, w, R * C * sizeof(float));
    assert_int_equal(cs_sparsegpt_prune(q, R, C, h, &p, NULL, NULL, NULL), CS_OK);
    for (size_t i1 = 0; i1 < C; i1 += 128) {
        float thr_kept = INFINITY, max_pruned = 0.0f;
        for (size_t r = 0; r < R; r++) {
            for (size_t k = 0; k < 128; k++) {
                const float v = w[r * C + i1 + k], got = q[r * C + i1 + k];
                if (got == 0.0f) {
                    max_pruned = fmaxf(max_pruned, fabsf(v));
                } else {
                    assert_true(got == v); /* kept weights are untouched */
                    thr_kept = fminf(thr_kept, fabsf(v));
                }
            }
        }
        assert_true(max_pruned < thr_kept);
    }
    free(w);
    free(q);
    free(h);
}

static void test_wanda_patterns_and_magnitude(void **state)
{
    (void)state;
    enum { R = 10, C = 96 };
    float w[R * C], q[R * C];
    double ones[C], sumsq[C];
    uint8_t mask[R * C];
    cs_fill_normal(w, R * C, 1.0f, 13);
    for (size_t j = 0; j < C; j++) {
        ones[j] = 4.0;
        sumsq[j] = 1.0 + (double)((j * 13) % 17);
    }
    /* equal norms: per-row magnitude pruning, exact counts */
    memcpy(q, w, sizeof(w));
    assert_int_equal(cs_wanda_prune(q, R, C, ones, 0.5, 0, 0, mask, NULL), CS_OK);
    for (size_t r = 0; r < R; r++) {
        size_t z = 0;
        float maxp = 0.0f, mink = INFINITY;
        for (size_t j = 0; j < C; j++) {
            if (mask[r * C + j]) {
                z++;
                assert_true(q[r * C + j] == 0.0f);
                maxp = fmaxf(maxp, fabsf(w[r * C + j]));
            } else {
                assert_true(q[r * C + j] == w[r * C + j]);
                mink = fminf(mink, fabsf(w[r * C + j]));
            }
        }
        assert_int_equal(z, C / 2);
        assert_true(maxp <= mink);
    }
    /* 0.3 of 96 = 28.8 -> 28 per row */
    memcpy(q, w, sizeof(w));
    assert_int_equal(cs_wanda_prune(q, R, C, sumsq, 0.3, 0, 0, mask, NULL), CS_OK);
    for (size_t r = 0; r < R; r++) {
        size_t z = 0;
        for (size_t j = 0; j < C; j++) {
            z += mask[r * C + j];
        }
        assert_int_equal(z, 28);
    }
    /* N:M with ties: lowest index first */
    float t[8] = {1, 1, 1, 1, -2, 2, 0.5f, 3};
    double n8[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    uint8_t m8[8];
    assert_int_equal(cs_wanda_prune(t, 1, 8, n8, 0.5, 2, 4, m8, NULL), CS_OK);
    const uint8_t want[8] = {1, 1, 0, 0, 1, 0, 1, 0};
    assert_memory_equal(m8, want, 8);
    memcpy(q, w, sizeof(w));
    assert_int_equal(cs_wanda_prune(q, R, C, sumsq, 0.5, 4, 8, NULL, NULL), CS_OK);
    for (size_t r = 0; r < R; r++) {
        for (size_t j0 = 0; j0 < C; j0 += 8) {
            size_t z = 0;
            for (size_t k = 0; k < 8; k++) {
                z += q[r * C + j0 + k] == 0.0f;
            }
            assert_int_equal(z, 4);
        }
    }
    cs_err err = {0};
    sumsq[7] = -1.0;
    assert_int_equal(cs_wanda_prune(q, R, C, sumsq, 0.5, 0, 0, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "sumsq[7]"));
    assert_int_equal(cs_wanda_prune(q, R, C, ones, 0.5, 2, 5, NULL, &err), CS_EINVAL);
}

/* Sanity ranking on correlated X with outlier channels: SparseGPT < Wanda < magnitude. */
static void test_error_ranking(void **state)
{
    (void)state;
    enum { R = 24, C = 128, T = 600 };
    float *x = outlier_x(T, C, 21);
    float *h = malloc(C * C * sizeof(float));
    double sumsq[C], ones[C];
    stats_of(x, T, C, h, sumsq);
    for (size_t j = 0; j < C; j++) {
        ones[j] = 1.0;
    }
    float *w = malloc(R * C * sizeof(float)), *q = malloc(R * C * sizeof(float));
    cs_fill_normal(w, R * C, 1.0f, 22);
    cs_sparsegpt_params p;
    cs_sparsegpt_params_default(&p);
    memcpy(q, w, R * C * sizeof(float));
    assert_int_equal(cs_sparsegpt_prune(q, R, C, h, &p, NULL, NULL, NULL), CS_OK);
    const double es = out_err(w, q, x, R, C, T);
    memcpy(q, w, R * C * sizeof(float));
    assert_int_equal(cs_wanda_prune(q, R, C, sumsq, 0.5, 0, 0, NULL, NULL), CS_OK);
    const double ew = out_err(w, q, x, R, C, T);
    memcpy(q, w, R * C * sizeof(float));
    assert_int_equal(cs_wanda_prune(q, R, C, ones, 0.5, 0, 0, NULL, NULL), CS_OK);
    const double em = out_err(w, q, x, R, C, T);
    print_message("# output error: sparsegpt %.4g wanda %.4g magnitude %.4g\n", es, ew, em);
    assert_true(es < ew && ew < em);
    free(x);
    free(h);
    free(w);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_sparsegpt_exact_patterns),
            cmocka_unit_test(test_sparsegpt_identity_is_magnitude),
            cmocka_unit_test(test_wanda_patterns_and_magnitude),
            cmocka_unit_test(test_error_ranking),
    };
    return CS_RUN_TESTS(tests);
}
