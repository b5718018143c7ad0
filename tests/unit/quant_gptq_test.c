/* quant_gptq_test.c - GPTQ and the Hessian accumulator (docs/specs/ptq-algorithms.md section 2,
 * tests 1-5 and the non-positive-definite policy). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_gptq.h"
#include "cs_hessian.h"
#include "cs_test.h"

/* X = Z A + near-collinear columns: tokens x cols, correlated inputs. */
static float *correlated_x(size_t t, size_t c, uint64_t seed)
{
    float *z = malloc(t * c * sizeof(float)), *a = malloc(c * c * sizeof(float));
    float *x = calloc(t * c, sizeof(float));
    assert_non_null(z);
    assert_non_null(a);
    assert_non_null(x);
    cs_fill_normal(z, t * c, 1.0f, seed);
    cs_fill_normal(a, c * c, 1.0f / sqrtf((float)c), seed + 1);
    for (size_t i = 0; i < c; i++) {
        a[i * c + i] += 0.3f;
    }
    for (size_t r = 0; r < t; r++) {
        for (size_t k = 0; k < c; k++) {
            const float zk = z[r * c + k];
            for (size_t j = 0; j < c; j++) {
                x[r * c + j] += zk * a[k * c + j];
            }
        }
        for (size_t j = 1; j < c; j += 7) { /* near-collinear pairs */
            x[r * c + j] = x[r * c + j - 1] * 0.98f + 0.02f * x[r * c + j];
        }
    }
    free(z);
    free(a);
    return x;
}

static float *hessian_of(const float *x, size_t t, size_t c)
{
    cs_hessian *h = NULL;
    float *out = malloc(c * c * sizeof(float));
    assert_non_null(out);
    assert_int_equal(cs_hessian_create(&h, c, NULL), CS_OK);
    assert_int_equal(cs_hessian_add(h, x, t, NULL), CS_OK);
    assert_int_equal(cs_hessian_get(h, out, NULL), CS_OK);
    cs_hessian_destroy(h);
    return out;
}

/* ||(W - Q) X^T||^2 in double */
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

static void test_hessian_accumulator(void **state)
{
    (void)state;
    enum { T = 300, C = 17 };
    float x[T * C], h[C * C];
    cs_fill_normal(x, T * C, 1.0f, 3);
    cs_hessian *hs = NULL;
    cs_err err = {0};
    assert_int_equal(cs_hessian_create(&hs, C, NULL), CS_OK);
    assert_int_equal(cs_hessian_get(hs, h, &err), CS_ESTATE);
    /* split into uneven batches: same sums */
    assert_int_equal(cs_hessian_add(hs, x, 1, NULL), CS_OK);
    assert_int_equal(cs_hessian_add(hs, x + C, 260, NULL), CS_OK);
    assert_int_equal(cs_hessian_add(hs, x + 261 * C, T - 261, NULL), CS_OK);
    assert_int_equal(cs_hessian_count(hs), T);
    assert_int_equal(cs_hessian_get(hs, h, NULL), CS_OK);
    double diag[C];
    cs_hessian_diag(hs, diag);
    for (size_t i = 0; i < C; i++) {
        for (size_t j = 0; j < C; j++) {
            double s = 0.0;
            for (size_t t = 0; t < T; t++) {
                s += (double)x[t * C + i] * x[t * C + j];
            }
            assert_true(fabs(h[i * C + j] - 2.0 * s / T) <= 1e-6 * (1.0 + fabs(2.0 * s / T)));
            if (i == j) {
                assert_true(fabs(diag[i] - s) <= 1e-9 * (1.0 + s));
            }
        }
    }
    float bad[C];
    memcpy(bad, x, sizeof(bad));
    bad[4] = NAN;
    assert_int_equal(cs_hessian_add(hs, bad, 1, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "X[0][4]"));
    assert_int_equal(cs_hessian_count(hs), T);
    cs_hessian_destroy(hs);
    assert_int_equal(cs_hessian_create(&hs, 0, &err), CS_EINVAL);
}

/* Test 1: H = c I makes U diagonal, so GPTQ equals RTN bit for bit. */
static void test_identity_h_equals_rtn(void **state)
{
    (void)state;
    enum { R = 24, C = 320 };
    float *w = malloc(R * C * sizeof(float)), *q = malloc(R * C * sizeof(float));
    float *h = calloc(C * C, sizeof(float)), *ref = malloc(R * C * sizeof(float));
    cs_fill_normal(w, R * C, 0.7f, 21);
    for (size_t j = 0; j < C; j++) {
        h[j * C + j] = 3.25f;
    }
    const long groups[] = {-1, 128, 32, 48, 320};
    /* llm-compressor's W8A8 GPTQ: Q-CT int8 symmetric per channel */
    {
        cs_gptq_params p;
        cs_gptq_params_default(&p);
        p.q = (cs_qspec){.family = CS_QF_CT, .bits = 8, .sym = true};
        memcpy(q, w, R * C * sizeof(float));
        memcpy(ref, w, R * C * sizeof(float));
        assert_int_equal(cs_gptq_quantize(q, R, C, h, &p, NULL, NULL), CS_OK);
        assert_int_equal(cs_quant_rtn(ref, R, C, &p.q, 0, NULL), CS_OK);
        assert_memory_equal(q, ref, R * C * sizeof(float));
    }
    for (size_t gi = 0; gi < 5; gi++) {
        for (int sym = 0; sym < 2; sym++) {
            for (int ao = 0; ao < 2; ao++) {
                cs_gptq_params p;
                cs_gptq_params_default(&p);
                p.q.sym = sym;
                p.q.bits = 3 + sym;
                p.group_size = groups[gi];
                p.act_order = ao;
                memcpy(q, w, R * C * sizeof(float));
                memcpy(ref, w, R * C * sizeof(float));
                cs_gptq_result res;
                assert_int_equal(cs_gptq_quantize(q, R, C, h, &p, &res, NULL), CS_OK);
                assert_false(res.rtn_fallback);
                assert_int_equal(cs_quant_rtn(ref, R, C, &p.q,
                                              groups[gi] > 0 ? (size_t)groups[gi] : 0, NULL),
                                 CS_OK);
                assert_memory_equal(q, ref, R * C * sizeof(float));
            }
        }
    }
    free(w);
    free(q);
    free(h);
    free(ref);
}

/* Test 2 (+4): sum loss = 1/2 tr(dW H_damped dW^T), dW = W_after_dead_fix - Q; a dead column
 * gives Q[:, j] = 0 and no NaN. */
static void test_loss_identity_and_dead_column(void **state)
{
    (void)state;
    enum { R = 16, C = 160, T = 600, DEAD = 5 };
    float *x = correlated_x(T, C, 31);
    for (size_t t = 0; t < T; t++) {
        x[t * C + DEAD] = 0.0f;
    }
    float *h = hessian_of(x, T, C);
    float *w = malloc(R * C * sizeof(float)), *q = malloc(R * C * sizeof(float));
    cs_fill_normal(w, R * C, 1.0f, 32);
    for (int ao = 0; ao < 2; ao++) {
        cs_gptq_params p;
        cs_gptq_params_default(&p);
        p.group_size = ao ? 32 : -1;
        p.act_order = ao;
        memcpy(q, w, R * C * sizeof(float));
        cs_gptq_result res;
        assert_int_equal(cs_gptq_quantize(q, R, C, h, &p, &res, NULL), CS_OK);
        assert_int_equal(res.n_dead, 1);
        assert_int_equal(res.retries, 0);
        double tr = 0.0;
        for (size_t r = 0; r < R; r++) {
            assert_true(q[r * C + DEAD] == 0.0f);
            for (size_t i = 0; i < C; i++) {
                assert_true(isfinite(q[r * C + i]));
                const double di = (i == DEAD ? 0.0 : w[r * C + i]) - (double)q[r * C + i];
                for (size_t j = 0; j < C; j++) {
                    const double dj = (j == DEAD ? 0.0 : w[r * C + j]) - (double)q[r * C + j];
                    double hij = i == DEAD && j == DEAD ? 1.0 : (double)h[i * C + j];
                    if (i == j) {
                        hij += res.damp;
                    }
                    tr += di * hij * dj;
                }
            }
        }
        tr *= 0.5;
        print_message("# act_order %d: loss %.9g, 1/2 tr %.9g\n", ao, res.loss, tr);
        assert_true(fabs(res.loss - tr) <= 2e-4 * fabs(tr));
    }
    free(x);
    free(h);
    free(w);
    free(q);
}

/* Test 3: on correlated X, GPTQ's output error is below RTN's. */
static void test_beats_rtn(void **state)
{
    (void)state;
    enum { R = 32, C = 256, T = 1024 };
    float *x = correlated_x(T, C, 41);
    float *h = hessian_of(x, T, C);
    float *w = malloc(R * C * sizeof(float)), *q = malloc(R * C * sizeof(float));
    float *rq = malloc(R * C * sizeof(float));
    cs_fill_normal(w, R * C, 1.0f, 42);
    for (int sym = 0; sym < 2; sym++) {
        for (int g = 0; g < 2; g++) {
            for (int ao = 0; ao < 2; ao++) {
                cs_gptq_params p;
                cs_gptq_params_default(&p);
                p.q.sym = sym;
                p.group_size = g ? 128 : -1;
                p.act_order = ao;
                memcpy(q, w, R * C * sizeof(float));
                memcpy(rq, w, R * C * sizeof(float));
                assert_int_equal(cs_gptq_quantize(q, R, C, h, &p, NULL, NULL), CS_OK);
                assert_int_equal(cs_quant_rtn(rq, R, C, &p.q, g ? 128 : 0, NULL), CS_OK);
                const double eg = out_err(w, q, x, R, C, T), er = out_err(w, rq, x, R, C, T);
                print_message("# sym %d g %d act_order %d: gptq %.4g rtn %.4g\n", sym, g, ao, eg,
                              er);
                assert_true(eg < er);
            }
        }
    }
    free(x);
    free(h);
    free(w);
    free(q);
    free(rq);
}

/* Test 5: act_order's permutation round-trips (diagonal H with distinct entries: no updates, so
 * the result is per-row RTN in the original column order), and static groups put every group of
 * Q on its P[g] grid. */
static void test_perm_and_static_groups(void **state)
{
    (void)state;
    enum { R = 12, C = 192, T = 500 };
    float *w = malloc(R * C * sizeof(float)), *q = malloc(R * C * sizeof(float));
    float *hd = calloc(C * C, sizeof(float));
    cs_fill_normal(w, R * C, 1.0f, 51);
    for (size_t j = 0; j < C; j++) {
        hd[j * C + j] = 1.0f + (float)((j * 37) % C);
    }
    cs_gptq_params p;
    cs_gptq_params_default(&p);
    p.act_order = true;
    memcpy(q, w, R * C * sizeof(float));
    assert_int_equal(cs_gptq_quantize(q, R, C, hd, &p, NULL, NULL), CS_OK);
    float *ref = malloc(R * C * sizeof(float));
    memcpy(ref, w, R * C * sizeof(float));
    assert_int_equal(cs_quant_rtn(ref, R, C, &p.q, 0, NULL), CS_OK);
    assert_memory_equal(q, ref, R * C * sizeof(float));

    float *x = correlated_x(T, C, 52);
    float *h = hessian_of(x, T, C);
    for (int ao = 0; ao < 2; ao++) {
        p.group_size = 64;
        p.static_groups = true;
        p.act_order = ao;
        memcpy(q, w, R * C * sizeof(float));
        assert_int_equal(cs_gptq_quantize(q, R, C, h, &p, NULL, NULL), CS_OK);
        size_t moved = 0;
        for (size_t r = 0; r < R; r++) {
            for (size_t g = 0; g < C / 64; g++) {
                cs_qparam pg;
                cs_qparam_find(&pg, &p.q, w + r * C + g * 64, 64);
                for (size_t j = 0; j < 64; j++) {
                    const float v = q[r * C + g * 64 + j];
                    assert_true(cs_qparam_apply(&pg, v) == v);
                    moved += v != cs_qparam_apply(&pg, w[r * C + g * 64 + j]);
                }
            }
        }
        assert_true(moved > 0); /* GPTQ did update weights, yet stayed on the grid */
    }
    free(w);
    free(q);
    free(hd);
    free(ref);
    free(x);
    free(h);
}

/* Both routes to U agree to float rounding on a well-conditioned and an ill-conditioned H. */
static void test_hinv_methods_agree(void **state)
{
    (void)state;
    enum { C = 150, T = 600 };
    float *x = correlated_x(T, C, 81);
    float *h = hessian_of(x, T, C);
    double *hd = malloc(C * C * sizeof(double));
    float *u1 = malloc(C * C * sizeof(float)), *u2 = malloc(C * C * sizeof(float));
    for (size_t i = 0; i < C * C; i++) {
        hd[i] = h[i];
    }
    cs_gptq_result r1, r2;
    assert_int_equal(cs_gptq_hinv(u1, hd, C, 0.01, 0.01, 0.2, CS_GPTQ_HINV_REF, &r1, NULL), CS_OK);
    assert_int_equal(cs_gptq_hinv(u2, hd, C, 0.01, 0.01, 0.2, CS_GPTQ_HINV_UL, &r2, NULL), CS_OK);
    float umax = 0.0f;
    for (size_t i = 0; i < C * C; i++) {
        umax = fmaxf(umax, fabsf(u1[i]));
    }
    cs_assert_close(u2, u1, C * C, 1e-6 * umax, 1e-5);
    for (size_t i = 0; i < C; i++) { /* upper triangular with a positive diagonal */
        assert_true(u2[i * C + i] > 0.0f);
        for (size_t j = 0; j < i; j++) {
            assert_true(u2[i * C + j] == 0.0f);
        }
    }
    /* not positive definite: both fail the same way and leave U = I */
    for (size_t i = 0; i < C * C; i++) {
        hd[i] = i % (C + 1) == 0 ? -1.0 : 0.0;
    }
    assert_int_equal(cs_gptq_hinv(u2, hd, C, 0.01, 0.01, 0.05, CS_GPTQ_HINV_UL, &r2, NULL),
                     CS_ENUMERIC);
    assert_int_equal(r2.retries, 5);
    assert_true(u2[0] == 1.0f && u2[1] == 0.0f && u2[C + 1] == 1.0f);
    free(x);
    free(h);
    free(hd);
    free(u1);
    free(u2);
}

/* The threaded sweep (row tiles of 128 on several threads) gives the same bits as one thread. */
static void test_threads_same_bits(void **state)
{
    (void)state;
    enum { R = 300, C = 160, T = 400 };
    float *x = correlated_x(T, C, 71);
    float *h = hessian_of(x, T, C);
    float *w = malloc(R * C * sizeof(float)), *q1 = malloc(R * C * sizeof(float));
    float *qn = malloc(R * C * sizeof(float));
    cs_fill_normal(w, R * C, 1.0f, 72);
    cs_gptq_params p;
    cs_gptq_params_default(&p);
    p.group_size = 32;
    p.act_order = true;
    p.threads = 1;
    memcpy(q1, w, R * C * sizeof(float));
    cs_gptq_result r1, rn;
    assert_int_equal(cs_gptq_quantize(q1, R, C, h, &p, &r1, NULL), CS_OK);
    for (size_t t = 2; t <= 4; t++) {
        p.threads = t;
        memcpy(qn, w, R * C * sizeof(float));
        assert_int_equal(cs_gptq_quantize(qn, R, C, h, &p, &rn, NULL), CS_OK);
        assert_memory_equal(q1, qn, R * C * sizeof(float));
        assert_true(fabs(r1.loss - rn.loss) <= 1e-9 * r1.loss);
    }
    free(x);
    free(h);
    free(w);
    free(q1);
    free(qn);
}

/* Not positive definite: retries with more damping, then falls back to RTN. Bad input errors. */
static void test_not_pd_and_errors(void **state)
{
    (void)state;
    enum { R = 4, C = 8 };
    float w[R * C], q[R * C], ref[R * C], h[C * C] = {0};
    cs_fill_normal(w, R * C, 1.0f, 61);
    for (size_t j = 0; j < C; j++) {
        h[j * C + j] = 1.0f;
    }
    h[1] = h[C] = 1.015f; /* eigenvalue -0.015: needs percdamp 0.02 */
    cs_gptq_params p;
    cs_gptq_params_default(&p);
    cs_gptq_result res;
    memcpy(q, w, sizeof(w));
    assert_int_equal(cs_gptq_quantize(q, R, C, h, &p, &res, NULL), CS_OK);
    assert_int_equal(res.retries, 1);
    assert_true(fabs(res.percdamp - 0.02) < 1e-12);
    assert_false(res.rtn_fallback);

    for (size_t j = 0; j < C; j++) {
        h[j * C + j] = -1.0f; /* never positive definite */
    }
    memcpy(q, w, sizeof(w));
    memcpy(ref, w, sizeof(w));
    cs_err err = {0};
    assert_int_equal(cs_gptq_quantize(q, R, C, h, &p, &res, &err), CS_OK);
    assert_true(res.rtn_fallback);
    assert_int_equal(res.retries, 20);
    assert_int_equal(cs_quant_rtn(ref, R, C, &p.q, 0, NULL), CS_OK);
    assert_memory_equal(q, ref, sizeof(q));

    h[3] = INFINITY;
    assert_int_equal(cs_gptq_quantize(q, R, C, h, &p, &res, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "H[0][3]"));
    h[3] = 0.0f;
    p.group_size = 0;
    assert_int_equal(cs_gptq_quantize(q, R, C, h, &p, &res, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "group_size"));
    cs_gptq_params_default(&p);
    p.percdamp = 0.0;
    assert_int_equal(cs_gptq_quantize(q, R, C, h, &p, &res, &err), CS_EINVAL);
    cs_gptq_params_default(&p);
    p.static_groups = true;
    assert_int_equal(cs_gptq_quantize(q, R, C, h, &p, &res, &err), CS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_hessian_accumulator),
            cmocka_unit_test(test_identity_h_equals_rtn),
            cmocka_unit_test(test_loss_identity_and_dead_column),
            cmocka_unit_test(test_beats_rtn),
            cmocka_unit_test(test_perm_and_static_groups),
            cmocka_unit_test(test_hinv_methods_agree),
            cmocka_unit_test(test_threads_same_bits),
            cmocka_unit_test(test_not_pd_and_errors),
    };
    return CS_RUN_TESTS(tests);
}
