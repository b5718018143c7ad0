/* kmeans_test.c - worker/calib/cs_kmeans against a naive twin written from the header's rules
 * (double loops, no BLAS; docs/style.md R11), recovery of well-separated synthetic clusters, the
 * degenerate cases (k > n, k == 0, duplicate points, k == n), determinism for a seed and change
 * with it, and the nearest member of each cluster against brute force. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cs_kmeans.h"
#include "cs_rng.h"
#include "cs_test.h"

/* ---- the naive twin: the header's algorithm, literally ---- */

static double nsq(const double *a, const double *b, size_t dim)
{
    double s = 0;
    for (size_t j = 0; j < dim; j++) {
        s += (a[j] - b[j]) * (a[j] - b[j]);
    }
    return s;
}

typedef struct naive_out {
    size_t *label;
    double *centers;
    double inertia;
    size_t best;
    double rin[16];
    size_t rit[16];
} naive_out;

static void naive_fit(const float *xf, size_t n, size_t dim, const cs_km_params *p, naive_out *o)
{
    const size_t k = p->k;
    double *x = calloc(n * dim, sizeof(double)), *c = calloc(k * dim, sizeof(double));
    double *d = calloc(n, sizeof(double));
    size_t *lab = calloc(n, sizeof(size_t)), *prev = calloc(n, sizeof(size_t));
    size_t *size = calloc(k, sizeof(size_t));
    o->label = calloc(n, sizeof(size_t));
    o->centers = calloc(k * dim, sizeof(double));
    for (size_t i = 0; i < n * dim; i++) {
        x[i] = xf[i];
    }
    double var = 0;
    for (size_t j = 0; j < dim; j++) {
        double m = 0, ss = 0;
        for (size_t i = 0; i < n; i++) {
            m += x[i * dim + j] / (double)n;
        }
        for (size_t i = 0; i < n; i++) {
            ss += (x[i * dim + j] - m) * (x[i * dim + j] - m);
        }
        var += ss / (double)n / (double)dim;
    }
    cs_rng rng;
    cs_rng_seed(&rng, p->seed);
    o->inertia = INFINITY;
    for (size_t r = 0; r < p->n_init; r++) {
        /* k-means++ */
        size_t f = (size_t)cs_rng_below(&rng, n);
        memcpy(c, x + f * dim, dim * sizeof(double));
        for (size_t j = 1; j < k; j++) {
            double sum = 0;
            size_t lastpos = 0;
            for (size_t i = 0; i < n; i++) {
                double best = INFINITY;
                for (size_t q = 0; q < j; q++) {
                    double e = nsq(x + i * dim, c + q * dim, dim);
                    best = e < best ? e : best;
                }
                d[i] = best;
                sum += best;
                if (best > 0) {
                    lastpos = i;
                }
            }
            size_t pick;
            if (sum > 0) {
                double u = cs_rng_uniform(&rng) * sum, run = 0;
                pick = lastpos;
                for (size_t i = 0; i < n; i++) {
                    run += d[i];
                    if (run > u) {
                        pick = i;
                        break;
                    }
                }
            } else {
                pick = (size_t)cs_rng_below(&rng, n);
            }
            memcpy(c + j * dim, x + pick * dim, dim * sizeof(double));
        }
        size_t it;
        for (it = 0; it < p->max_iter; it++) {
            memset(size, 0, k * sizeof(size_t));
            for (size_t i = 0; i < n; i++) {
                size_t b = 0;
                for (size_t q = 1; q < k; q++) {
                    if (nsq(x + i * dim, c + q * dim, dim) < nsq(x + i * dim, c + b * dim, dim)) {
                        b = q;
                    }
                }
                lab[i] = b;
                d[i] = nsq(x + i * dim, c + b * dim, dim);
                size[b]++;
            }
            for (size_t q = 0; q < k; q++) {
                if (size[q] == 0) {
                    size_t far = SIZE_MAX;
                    for (size_t i = 0; i < n; i++) {
                        if (size[lab[i]] > 1 && (far == SIZE_MAX || d[i] > d[far])) {
                            far = i;
                        }
                    }
                    size[lab[far]]--;
                    lab[far] = q;
                    size[q] = 1;
                    d[far] = 0;
                }
            }
            int changed = it == 0 || memcmp(lab, prev, n * sizeof(size_t)) != 0;
            double shift = 0;
            for (size_t q = 0; q < k; q++) {
                for (size_t j = 0; j < dim; j++) {
                    double m = 0;
                    for (size_t i = 0; i < n; i++) {
                        if (lab[i] == q) {
                            m += x[i * dim + j];
                        }
                    }
                    m /= (double)size[q];
                    shift += (m - c[q * dim + j]) * (m - c[q * dim + j]);
                    c[q * dim + j] = m;
                }
            }
            memcpy(prev, lab, n * sizeof(size_t));
            if (!changed || shift <= p->tol * var) {
                it++;
                break;
            }
        }
        double in = 0;
        for (size_t i = 0; i < n; i++) {
            in += nsq(x + i * dim, c + lab[i] * dim, dim);
        }
        o->rin[r] = in;
        o->rit[r] = it;
        if (in < o->inertia) {
            o->inertia = in;
            o->best = r;
            memcpy(o->label, lab, n * sizeof(size_t));
            memcpy(o->centers, c, k * dim * sizeof(double));
        }
    }
    free(x);
    free(c);
    free(d);
    free(lab);
    free(prev);
    free(size);
}

static void naive_free(naive_out *o)
{
    free(o->label);
    free(o->centers);
}

/* ---- data ---- */

/* n points around n_c centers spread `sep` apart (one coordinate each) with N(0, sigma^2) noise;
 * truth[i] = the center of point i (points are interleaved: point i belongs to i % n_c). */
static float *blobs(size_t n, size_t dim, size_t n_c, double sep, double sigma, uint64_t seed,
                    size_t *truth)
{
    float *x = calloc(n * dim, sizeof(float));
    cs_rng r;
    cs_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        size_t c = i % n_c;
        truth[i] = c;
        for (size_t j = 0; j < dim; j++) {
            double ctr = (j == c % dim) ? sep * (double)(1 + c / dim) : 0.0;
            x[i * dim + j] = (float)(ctr + sigma * cs_rng_normal(&r));
        }
    }
    return x;
}

static void fit_ok(const float *x, size_t n, size_t dim, const cs_km_params *p, cs_km_result *r)
{
    cs_err err = {0};
    cs_rc rc = cs_km_fit(x, n, dim, p, r, &err);
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    size_t total = 0;
    for (size_t c = 0; c < r->k; c++) {
        total += r->size[c];
    }
    assert_int_equal(total, n);
}

/* ---- tests ---- */

static void test_twin(void **state)
{
    (void)state;
    const size_t cases[][3] = {{300, 6, 7}, {120, 3, 12}, {64, 16, 5}, {50, 2, 50}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        size_t n = cases[t][0], dim = cases[t][1], k = cases[t][2];
        size_t *truth = calloc(n, sizeof(size_t));
        float *x = blobs(n, dim, 9, 3.0, 1.0, 100 + t, truth);
        cs_km_params p;
        cs_km_params_default(&p);
        p.k = k;
        p.n_init = 4;
        p.seed = 7 + t;
        p.max_iter = t == 2 ? 3 : 300; /* one case stops at max_iter */
        cs_km_result r;
        naive_out o = {0};
        fit_ok(x, n, dim, &p, &r);
        naive_fit(x, n, dim, &p, &o);
        assert_int_equal(r.best, o.best);
        assert_memory_equal(r.label, o.label, n * sizeof(size_t));
        cs_assert_close_d(r.centers, o.centers, k * dim, 1e-9, 1e-9);
        cs_assert_close_d(&r.inertia, &o.inertia, 1, 1e-9, 1e-9);
        cs_assert_close_d(r.restart_inertia, o.rin, p.n_init, 1e-9, 1e-9);
        assert_memory_equal(r.restart_iter, o.rit, p.n_init * sizeof(size_t));
        for (size_t q = 0; q < p.n_init; q++) {
            assert_true(r.restart_iter[q] >= 1 && r.restart_iter[q] <= p.max_iter);
            assert_true(r.inertia <= r.restart_inertia[q]);
        }
        if (k == n) {
            assert_float_equal(r.inertia, 0.0, 1e-12); /* one point per cluster */
        }
        cs_km_result_fini(&r);
        naive_free(&o);
        free(x);
        free(truth);
    }
}

static void test_separated(void **state)
{
    (void)state;
    /* 6 clusters of 40 points, 60 sigma apart in 10 dimensions: recovered exactly */
    const size_t n = 240, dim = 10, nc = 6;
    size_t truth[240];
    float *x = blobs(n, dim, nc, 60.0, 1.0, 42, truth);
    cs_km_params p;
    cs_km_params_default(&p);
    p.k = nc;
    for (uint64_t seed = 0; seed < 5; seed++) {
        p.seed = seed;
        cs_km_result r;
        fit_ok(x, n, dim, &p, &r);
        size_t map[6];
        for (size_t c = 0; c < nc; c++) {
            map[c] = SIZE_MAX;
        }
        for (size_t i = 0; i < n; i++) {
            if (map[truth[i]] == SIZE_MAX) {
                map[truth[i]] = r.label[i];
            }
            assert_int_equal(r.label[i], map[truth[i]]); /* same true cluster, same label */
        }
        for (size_t a = 0; a < nc; a++) {
            assert_int_equal(r.size[map[a]], n / nc);
            for (size_t b = a + 1; b < nc; b++) {
                assert_int_not_equal(map[a], map[b]); /* different clusters, different labels */
            }
        }
        /* inertia ~ n * dim * sigma^2 */
        assert_true(r.inertia > 0.7 * (double)(n * dim) && r.inertia < 1.3 * (double)(n * dim));
        /* the nearest member of each cluster, against brute force */
        size_t mem[6];
        double md[6];
        cs_km_nearest_members(x, &r, mem, md);
        for (size_t c = 0; c < nc; c++) {
            size_t want = SIZE_MAX;
            double wd = INFINITY;
            for (size_t i = 0; i < n; i++) {
                double s = 0;
                for (size_t j = 0; j < dim; j++) {
                    double e = (double)x[i * dim + j] - r.centers[c * dim + j];
                    s += e * e;
                }
                if (r.label[i] == c && s < wd) {
                    wd = s;
                    want = i;
                }
            }
            assert_int_equal(mem[c], want);
            assert_float_equal(md[c], wd, 1e-9);
        }
        cs_km_result_fini(&r);
    }
    free(x);
}

static void test_seeds(void **state)
{
    (void)state;
    /* uniform noise has many local optima: the seed matters */
    const size_t n = 200, dim = 4;
    float *x = calloc(n * dim, sizeof(float));
    cs_rng g;
    cs_rng_seed(&g, 5);
    for (size_t i = 0; i < n * dim; i++) {
        x[i] = (float)cs_rng_uniform(&g);
    }
    cs_km_params p;
    cs_km_params_default(&p);
    p.k = 12;
    p.n_init = 1;
    cs_km_result a, b;
    fit_ok(x, n, dim, &p, &a);
    fit_ok(x, n, dim, &p, &b);
    assert_memory_equal(a.label, b.label, n * sizeof(size_t));
    assert_memory_equal(a.centers, b.centers, p.k * dim * sizeof(double));
    bool differs = false;
    for (uint64_t s = 1; s <= 3 && !differs; s++) {
        cs_km_result c;
        p.seed = s;
        fit_ok(x, n, dim, &p, &c);
        differs = memcmp(a.label, c.label, n * sizeof(size_t)) != 0;
        cs_km_result_fini(&c);
    }
    assert_true(differs);
    /* more restarts never give a worse inertia than the first of them */
    p.seed = 0;
    p.n_init = 8;
    cs_km_result m;
    fit_ok(x, n, dim, &p, &m);
    assert_true(m.inertia <= a.inertia);
    assert_float_equal(m.restart_inertia[0], a.inertia, 1e-12); /* restart 0 is the same run */
    cs_km_result_fini(&m);
    cs_km_result_fini(&a);
    cs_km_result_fini(&b);
    free(x);
}

static void test_degenerate(void **state)
{
    (void)state;
    cs_km_params p;
    cs_km_result r;
    cs_err err = {0};
    float x[24] = {0};
    cs_km_params_default(&p);
    /* k > n */
    p.k = 5;
    assert_int_equal(cs_km_fit(x, 4, 2, &p, &r, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "5 clusters for 4 points"));
    assert_null(r.label);
    p.k = 0;
    assert_int_equal(cs_km_fit(x, 4, 2, &p, &r, &err), CS_EINVAL);
    p.k = 2;
    assert_int_equal(cs_km_fit(x, 4, 0, &p, &r, &err), CS_EINVAL);
    p.n_init = 0;
    assert_int_equal(cs_km_fit(x, 4, 2, &p, &r, &err), CS_EINVAL);
    /* duplicates: 12 points in 2-D, 9 of them the same, k = 6: no cluster stays empty */
    for (size_t i = 9; i < 12; i++) {
        x[2 * i] = (float)(i * 10);
        x[2 * i + 1] = 1.0f;
    }
    cs_km_params_default(&p);
    p.k = 6;
    p.n_init = 3;
    fit_ok(x, 12, 2, &p, &r);
    size_t mem[6];
    double md[6];
    cs_km_nearest_members(x, &r, mem, md);
    for (size_t c = 0; c < 6; c++) {
        assert_true(r.size[c] >= 1);
        assert_int_not_equal(mem[c], SIZE_MAX);
        for (size_t q = 0; q < c; q++) {
            assert_int_not_equal(mem[c], mem[q]); /* six distinct members */
        }
    }
    naive_out o = {0};
    naive_fit(x, 12, 2, &p, &o);
    assert_memory_equal(r.label, o.label, 12 * sizeof(size_t));
    naive_free(&o);
    cs_km_result_fini(&r);
    /* all points equal, k = n = 3: every D^2 is 0, seeding falls back to uniform picks */
    float same[6] = {1, 2, 1, 2, 1, 2};
    p.k = 3;
    fit_ok(same, 3, 2, &p, &r);
    assert_float_equal(r.inertia, 0.0, 0.0);
    for (size_t c = 0; c < 3; c++) {
        assert_int_equal(r.size[c], 1);
    }
    cs_km_result_fini(&r);
    cs_km_result_fini(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_twin),
            cmocka_unit_test(test_separated),
            cmocka_unit_test(test_seeds),
            cmocka_unit_test(test_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
