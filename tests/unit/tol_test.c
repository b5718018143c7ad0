/* tol_test.c - the tolerance logic of tests/cs_tol.h, without depending on which BLAS kernels this
 * machine runs: the same quantity is recomputed here in the summation orders that different
 * kernels use (forward, reverse, pairwise, SIMD-like lanes, GEMM-like panels, FMA, double
 * accumulation), and the bounds must accept every order's result and reject a genuinely wrong
 * one. For GPTQ, a float GPTQ written here with each of those orders (and cs_gptq_quantize, which
 * uses this machine's sgemm) must pass cs_tol_gptq_judge; a one-step change away from a rounding
 * boundary, or a value off by more than the scale's bound, must fail it; a different choice at
 * an exact tie, followed consistently, must pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_gptq.h"
#include "cs_hessian.h"
#include "cs_test.h"
#include "cs_tol.h"

enum order { FORWARD, REVERSE, PAIRWISE, LANES8, PANEL64, FMA, DOUBLE, N_ORDERS };
static const char *order_name[N_ORDERS] = {"forward",      "reverse", "pairwise", "8 lanes",
                                           "panels of 64", "fma",     "double"};

static float pairwise(const float *a, const float *b, size_t n)
{
    if (n <= 2) {
        float s = 0.0f;
        for (size_t i = 0; i < n; i++) {
            s += a[i] * b[i];
        }
        return s;
    }
    const size_t h = n / 2;
    return pairwise(a, b, h) + pairwise(a + h, b + h, n - h);
}

/* sum a[i] b[i] in float in the given order */
static float dot(const float *a, const float *b, size_t n, enum order o)
{
    float s = 0.0f;
    switch (o) {
    case FORWARD:
        for (size_t i = 0; i < n; i++) {
            s += a[i] * b[i];
        }
        return s;
    case REVERSE:
        for (size_t i = n; i-- > 0;) {
            s += a[i] * b[i];
        }
        return s;
    case PAIRWISE:
        return pairwise(a, b, n);
    case LANES8: {
        float lane[8] = {0};
        for (size_t i = 0; i < n; i++) {
            lane[i % 8] += a[i] * b[i];
        }
        return ((lane[0] + lane[4]) + (lane[2] + lane[6])) +
               ((lane[1] + lane[5]) + (lane[3] + lane[7]));
    }
    case PANEL64:
        for (size_t i0 = 0; i0 < n; i0 += 64) {
            float p = 0.0f;
            for (size_t i = i0; i < n && i < i0 + 64; i++) {
                p = fmaf(a[i], b[i], p);
            }
            s += p;
        }
        return s;
    case FMA:
        for (size_t i = 0; i < n; i++) {
            s = fmaf(a[i], b[i], s);
        }
        return s;
    case DOUBLE:
    default: {
        double d = 0.0;
        for (size_t i = 0; i < n; i++) {
            d += (double)a[i] * (double)b[i];
        }
        return (float)d;
    }
    }
}

static void test_dot_orders(void **state)
{
    (void)state;
    const size_t sizes[] = {7, 256, 4096};
    for (size_t si = 0; si < 3; si++) {
        const size_t n = sizes[si];
        for (uint64_t seed = 1; seed <= 8; seed++) {
            float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
            cs_fill_normal(a, n, 1.0f, seed);
            cs_fill_uniform(b, n, -3.0f, 3.0f, seed + 100);
            a[n / 2] *= 1000.0f; /* magnitudes that cancel */
            b[n / 2] = 1.0f;
            long double exact = 0.0L;
            double sabs = 0.0, big = 0.0;
            for (size_t i = 0; i < n; i++) {
                exact += (long double)a[i] * (long double)b[i]; /* products are exact in double */
                sabs += fabs((double)a[i] * (double)b[i]);
                big = fmax(big, fabs((double)a[i] * (double)b[i]));
            }
            const double bound = cs_tol_sum_bound(n, sabs, 1.0);
            assert_true(bound < (double)n * 1.2e-7 * sabs); /* not vacuous */
            float r[N_ORDERS];
            size_t distinct = 0;
            for (int o = 0; o < N_ORDERS; o++) {
                r[o] = dot(a, b, n, (enum order)o);
                if (!cs_tol_within(r[o], (double)exact, bound)) {
                    fail_msg(
                            "n %zu seed %llu: %s sum %.9g is %.3g from the exact %.9Lg, bound %.3g",
                            n, (unsigned long long)seed, order_name[o], (double)r[o],
                            fabs((double)r[o] - (double)exact), exact, bound);
                }
                bool seen = false;
                for (int k = 0; k < o; k++) {
                    seen = seen || r[k] == r[o];
                    assert_true(cs_tol_within(r[o], r[k], 2.0 * bound)); /* any two machines */
                }
                distinct += !seen;
            }
            if (n >= 256) {
                assert_true(distinct >= 2); /* the orders really differ: the test has teeth */
            }
            /* a wrong result: the largest term dropped, or the exact value moved past the bound */
            assert_false(cs_tol_within((double)exact - big, (double)exact, bound));
            assert_false(cs_tol_within((double)exact + 1.01 * bound, (double)exact, bound));
            free(a);
            free(b);
        }
    }
}

/* A float GPTQ with the pre-rounding values summed in `o`: every x_c recomputed from W, U and the
 * earlier errors; blocks of bs columns; group parameters from the block-start values; per-row
 * parameters from the original W. At (flip_r, processing column flip_c) it takes the other level
 * of an exact tie and follows that choice. scale[i]: the scale used for value i. */
typedef struct mini {
    size_t R, C;
    const float *w, *wz, *u; /* W, W with dead columns zeroed, U (processing order) */
    const size_t *perm;
    const cs_gptq_params *p;
} mini;

static void mini_gptq(const mini *m, enum order o, float *out, float *scale, float *xs,
                      size_t flip_r, size_t flip_c)
{
    const size_t R = m->R, C = m->C, gs = m->p->group_size > 0 ? (size_t)m->p->group_size : 0;
    const size_t bs = m->p->blocksize;
    float *e = malloc(C * sizeof(float)), *col = malloc(C * sizeof(float));
    float *wr = malloc(C * sizeof(float)), *vg = malloc(C * sizeof(float));
    for (size_t r = 0; r < R; r++) {
        cs_qparam cur;
        if (!gs) {
            cs_qparam_find(&cur, &m->p->q, m->w + r * C, C);
        }
        for (size_t c = 0; c < C; c++) {
            wr[c] = m->wz[r * C + m->perm[c]];
        }
        for (size_t c = 0; c < C; c++) {
            if (gs && c % gs == 0) {
                const size_t b0 = c / bs * bs, n = C - c < gs ? C - c : gs;
                for (size_t j = c; j < c + n; j++) {
                    for (size_t k = 0; k < b0; k++) {
                        col[k] = m->u[k * C + j];
                    }
                    vg[j - c] = wr[j] - dot(e, col, b0, o);
                }
                cs_qparam_find(&cur, &m->p->q, vg, n);
            }
            for (size_t k = 0; k < c; k++) {
                col[k] = m->u[k * C + c];
            }
            const float x = wr[c] - dot(e, col, c, o);
            float q = cs_qparam_apply(&cur, x);
            if (r == flip_r && c == flip_c) {
                const float t = x / cur.scale, lv = cs_qparam_level(&cur, x);
                assert_true(t - floorf(t) == 0.5f); /* an exact tie */
                const float other = rintf(t) == floorf(t) ? lv + 1.0f : lv - 1.0f;
                q = cur.scale * (other - cur.zero);
            }
            out[r * C + m->perm[c]] = q;
            scale[r * C + m->perm[c]] = cur.scale;
            xs[r * C + m->perm[c]] = x;
            e[c] = (x - q) / m->u[c * C + c];
        }
    }
    free(e);
    free(col);
    free(wr);
    free(vg);
}

typedef struct gcase {
    long group;
    bool act_order, sym;
    int bits;
} gcase;

/* The judge's permutation (stable descending diag, dead = 1), W with dead columns zeroed, and U. */
static void prepare(const float *w, const float *h, size_t R, size_t C, const cs_gptq_params *p,
                    size_t *perm, float *wz, float *u)
{
    double *hd = malloc(C * C * sizeof(double)), *dg = malloc(C * sizeof(double));
    memcpy(wz, w, R * C * sizeof(float));
    for (size_t j = 0; j < C; j++) {
        perm[j] = j;
        dg[j] = h[j * C + j] == 0.0f ? 1.0 : (double)h[j * C + j];
        for (size_t r = 0; r < R && h[j * C + j] == 0.0f; r++) {
            wz[r * C + j] = 0.0f;
        }
    }
    for (size_t i = 1; p->act_order && i < C; i++) {
        const size_t v = perm[i];
        size_t k = i;
        while (k > 0 && dg[perm[k - 1]] < dg[v]) {
            perm[k] = perm[k - 1];
            k--;
        }
        perm[k] = v;
    }
    for (size_t i = 0; i < C; i++) {
        for (size_t j = 0; j < C; j++) {
            hd[i * C + j] = (double)h[perm[i] * C + perm[j]];
        }
        hd[i * C + i] = hd[i * C + i] == 0.0 ? 1.0 : hd[i * C + i];
    }
    assert_int_equal(cs_gptq_hinv(u, hd, C, p->percdamp, 0.0, 0.0, p->hinv, NULL, NULL), CS_OK);
    free(hd);
    free(dg);
}

static void test_gptq_orders(void **state)
{
    (void)state;
    enum { R = 12, C = 96, T = 240 };
    const gcase cases[] = {{-1, false, false, 4},
                           {32, false, false, 4},
                           {24, true, false, 3},
                           {32, true, true, 4},
                           {-1, true, true, 2}};
    float *x = malloc(T * C * sizeof(float)), *h = malloc(C * C * sizeof(float));
    float *w = malloc(R * C * sizeof(float)), *u = malloc(C * C * sizeof(float));
    float *wz = malloc(R * C * sizeof(float)), *out = malloc(R * C * sizeof(float));
    float *ref = malloc(R * C * sizeof(float)), *sc = malloc(R * C * sizeof(float));
    float *xf = malloc(R * C * sizeof(float));
    double *xe = malloc(R * C * sizeof(double)), *de = malloc(R * C * sizeof(double));
    size_t beyond_one = 0; /* realized errors above one rounding of x: the sum bound is needed */
    size_t *perm = malloc(C * sizeof(size_t));
    cs_fill_normal(x, T * C, 1.0f, 7);
    for (size_t t = 0; t < T; t++) {
        x[t * C + 5] = 0.0f;                /* a dead column */
        x[t * C + 9] = 0.9f * x[t * C + 8]; /* correlated inputs: U far from diagonal */
        x[t * C + 40] *= 6.0f;              /* an outlier channel */
    }
    cs_hessian *hs = NULL;
    assert_int_equal(cs_hessian_create(&hs, C, NULL), CS_OK);
    assert_int_equal(cs_hessian_add(hs, x, T, NULL), CS_OK);
    assert_int_equal(cs_hessian_get(hs, h, NULL), CS_OK);
    cs_hessian_destroy(hs);
    for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
        cs_gptq_params p;
        cs_gptq_params_default(&p);
        p.group_size = cases[ci].group;
        p.act_order = cases[ci].act_order;
        p.q.sym = cases[ci].sym;
        p.q.bits = cases[ci].bits;
        p.blocksize = 32;
        cs_fill_normal(w, R * C, 0.05f, 8 + ci);
        prepare(w, h, R, C, &p, perm, wz, u);
        /* an exact tie at row 0's first processed column: x / scale = k + 1/2 (no error yet) */
        const size_t c0 = perm[0];
        cs_qparam p0;
        if (p.group_size < 0) {
            cs_qparam_find(&p0, &p.q, w, C);
        } else {
            float g[96];
            for (size_t j = 0; j < (size_t)p.group_size; j++) {
                g[j] = w[perm[j]];
            }
            cs_qparam_find(&p0, &p.q, g, (size_t)p.group_size);
        }
        float tie = p0.scale * 0.5f;
        while (tie / p0.scale != 0.5f) {
            tie = nextafterf(tie, 1.0f);
        }
        w[c0] = wz[c0] = tie; /* inside the range: the parameters stay as they were */
        mini m = {.R = R, .C = C, .w = w, .wz = wz, .u = u, .perm = perm, .p = &p};
        cs_tol_gptq_report rep = {.x = xe, .delta = de};
        size_t apart = 0;
        double worst = 0.0;
        for (int o = 0; o < N_ORDERS; o++) {
            mini_gptq(&m, (enum order)o, out, sc, xf, SIZE_MAX, SIZE_MAX);
            if (!cs_tol_gptq_judge(w, h, R, C, &p, out, &rep)) {
                fail_msg("case %zu, %s order: [%zu][%zu] = %.9g, replay %.9g", ci, order_name[o],
                         rep.bad_row, rep.bad_col, rep.got, rep.want);
            }
            /* the bound holds for the error each order really makes */
            for (size_t i = 0; i < R * C; i++) {
                const double err = fabs((double)xf[i] - xe[i]);
                if (!(err <= de[i])) {
                    fail_msg("case %zu, %s order: x[%zu] = %.9g is %.3g from the exact %.9g,"
                             " above its bound %.3g",
                             ci, order_name[o], i, (double)xf[i], err, xe[i], de[i]);
                }
                worst = fmax(worst, err / de[i]);
                beyond_one += err > 2.0 * CS_TOL_U * fabs(xe[i]);
            }
            if (o == 0) {
                memcpy(ref, out, R * C * sizeof(float));
            } else {
                apart += memcmp(ref, out, R * C * sizeof(float)) != 0;
            }
        }
        /* the library's GPTQ (this machine's sgemm) passes too */
        memcpy(out, w, R * C * sizeof(float));
        assert_int_equal(cs_gptq_quantize(out, R, C, h, &p, NULL, NULL), CS_OK);
        assert_true(cs_tol_gptq_judge(w, h, R, C, &p, out, &rep));
        print_message("# case %zu: %zu of %d other orders give other weights; %zu near ties,"
                      " max delta/scale %.2g, largest error / bound %.2g\n",
                      ci, apart, N_ORDERS - 1, rep.near_ties, rep.max_delta, worst);
        assert_true(rep.max_delta < 1e-3);
        assert_true(rep.near_ties >= 1); /* the tie planted above */
        /* accepted: the other level at the exact tie, followed consistently */
        mini_gptq(&m, FORWARD, out, sc, xf, 0, 0);
        assert_true(out[c0] != ref[c0]);
        assert_true(cs_tol_gptq_judge(w, h, R, C, &p, out, &rep));
        /* rejected: one step off at the last processed column, which is no tie */
        mini_gptq(&m, FORWARD, ref, sc, xf, SIZE_MAX, SIZE_MAX);
        const size_t bad_i = 3 * C + perm[C - 1];
        memcpy(out, ref, R * C * sizeof(float));
        out[bad_i] += out[bad_i] > 0.0f ? -sc[bad_i] : sc[bad_i];
        assert_false(cs_tol_gptq_judge(w, h, R, C, &p, out, &rep));
        assert_int_equal(rep.bad, 1);
        assert_int_equal(rep.bad_row, 3);
        /* rejected: a value moved by 1e-3 of itself (far above the scale's bound) */
        memcpy(out, ref, R * C * sizeof(float));
        size_t nz = 0;
        while (ref[nz] == 0.0f) {
            nz++;
        }
        out[nz] *= 1.001f;
        assert_false(cs_tol_gptq_judge(w, h, R, C, &p, out, &rep));
    }
    print_message("# %zu pre-rounding values off by more than one rounding\n", beyond_one);
    assert_true(beyond_one > 0);
    free(xf);
    free(xe);
    free(de);
    free(x);
    free(h);
    free(w);
    free(u);
    free(wz);
    free(out);
    free(ref);
    free(sc);
    free(perm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_dot_orders),
            cmocka_unit_test(test_gptq_orders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
