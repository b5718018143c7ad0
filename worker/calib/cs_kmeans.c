/* calib: k-means (cs_kmeans.h). */
#include "cs_kmeans.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cs_alloc.h"
#include "cs_rng.h"

void cs_km_params_default(cs_km_params *p)
{
    memset(p, 0, sizeof(*p));
    p->k = 128;
    p->n_init = 10;
    p->max_iter = 300;
    p->tol = 1e-4;
}

void cs_km_result_fini(cs_km_result *r)
{
    if (!r) {
        return;
    }
    free(r->centers);
    free(r->label);
    free(r->size);
    free(r->restart_inertia);
    free(r->restart_iter);
    memset(r, 0, sizeof(*r));
}

/* Scratch of one fit; every array owned. */
typedef struct km_ws {
    double *x;    /* [n][dim] the points in double */
    double *xx;   /* [n] |x|^2 */
    double *c;    /* [k][dim] centers */
    double *cn;   /* [k][dim] next centers */
    double *cc;   /* [k] |c|^2 */
    double *g;    /* [n][k] x . c */
    double *d;    /* [n] squared distance to the assigned center */
    size_t *lab;  /* [n] */
    size_t *prev; /* [n] the previous assignment */
    size_t *size; /* [k] */
} km_ws;

static void ws_free(km_ws *w)
{
    void *const bufs[] = {w->x, w->xx, w->c, w->cn, w->cc, w->g, w->d, w->lab, w->prev, w->size};
    cs_free_each(bufs, sizeof(bufs) / sizeof(bufs[0]));
}

static double sqdist(const double *a, const double *b, size_t dim)
{
    double s = 0.0;
    for (size_t j = 0; j < dim; j++) {
        double e = a[j] - b[j];
        s += e * e;
    }
    return s;
}

/* k-means++ seeding of w->c; w->d is scratch (distance to the nearest chosen center). */
static void seed_centers(km_ws *w, size_t n, size_t dim, size_t k, cs_rng *rng)
{
    size_t first = (size_t)cs_rng_below(rng, (uint64_t)n);
    memcpy(w->c, w->x + first * dim, dim * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        w->d[i] = sqdist(w->x + i * dim, w->c, dim);
    }
    for (size_t j = 1; j < k; j++) {
        double sum = 0.0;
        size_t last_pos = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            sum += w->d[i];
            if (w->d[i] > 0.0) {
                last_pos = i;
            }
        }
        size_t pick;
        if (sum > 0.0) {
            double u = cs_rng_uniform(rng) * sum, run = 0.0;
            pick = last_pos; /* rounding can leave run <= u at the end */
            for (size_t i = 0; i < n; i++) {
                run += w->d[i];
                if (run > u) {
                    pick = i;
                    break;
                }
            }
        } else {
            pick = (size_t)cs_rng_below(rng, (uint64_t)n);
        }
        double *cj = w->c + j * dim;
        memcpy(cj, w->x + pick * dim, dim * sizeof(double));
        for (size_t i = 0; i < n; i++) {
            double e = sqdist(w->x + i * dim, cj, dim);
            w->d[i] = e < w->d[i] ? e : w->d[i];
        }
    }
}

/* Nearest center of every point (w->lab, w->d), then the empty-cluster rule. */
static void assign(km_ws *w, size_t n, size_t dim, size_t k)
{
    for (size_t c = 0; c < k; c++) {
        double s = 0.0;
        for (size_t j = 0; j < dim; j++) {
            s += w->c[c * dim + j] * w->c[c * dim + j];
        }
        w->cc[c] = s;
    }
    /* g[n][k] = x[n][dim] c[k][dim]^T */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)k, (int)dim, 1.0, w->x,
                (int)dim, w->c, (int)dim, 0.0, w->g, (int)k);
    memset(w->size, 0, k * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        const double *gi = w->g + i * k;
        size_t best = 0;
        double bd = w->xx[i] - 2.0 * gi[0] + w->cc[0];
        for (size_t c = 1; c < k; c++) {
            double e = w->xx[i] - 2.0 * gi[c] + w->cc[c];
            if (e < bd) {
                bd = e;
                best = c;
            }
        }
        w->lab[i] = best;
        w->d[i] = bd > 0.0 ? bd : 0.0;
        w->size[best]++;
    }
    for (size_t c = 0; c < k; c++) {
        if (w->size[c] != 0) {
            continue;
        }
        size_t far = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
            if (w->size[w->lab[i]] > 1 && (far == SIZE_MAX || w->d[i] > w->d[far])) {
                far = i;
            }
        }
        if (far == SIZE_MAX) {
            break; /* n < k: refused before we get here */
        }
        w->size[w->lab[far]]--;
        w->lab[far] = c;
        w->size[c] = 1;
        w->d[far] = 0.0;
    }
}

/* Centers = means of the members into w->cn; returns the squared shift from w->c, then swaps. */
static double update(km_ws *w, size_t n, size_t dim, size_t k)
{
    memset(w->cn, 0, k * dim * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        double *c = w->cn + w->lab[i] * dim;
        const double *xi = w->x + i * dim;
        for (size_t j = 0; j < dim; j++) {
            c[j] += xi[j];
        }
    }
    double shift = 0.0;
    for (size_t c = 0; c < k; c++) {
        double *cn = w->cn + c * dim;
        if (w->size[c] == 0) {
            memcpy(cn, w->c + c * dim, dim * sizeof(double));
            continue;
        }
        for (size_t j = 0; j < dim; j++) {
            cn[j] /= (double)w->size[c];
            double e = cn[j] - w->c[c * dim + j];
            shift += e * e;
        }
    }
    double *t = w->c;
    w->c = w->cn;
    w->cn = t;
    return shift;
}

cs_rc cs_km_fit(const float *x, size_t n, size_t dim, const cs_km_params *p, cs_km_result *out,
                cs_err *err)
{
    km_ws w = {0};
    cs_rng rng;
    cs_rc rc = CS_OK;
    memset(out, 0, sizeof(*out));
    if (p->k == 0 || dim == 0 || p->n_init == 0 || p->max_iter == 0) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "k-means: k = %zu, dim = %zu, n_init = %zu, max_iter = %zu (each must "
                          "be positive)",
                          p->k, dim, p->n_init, p->max_iter);
    }
    if (p->k > n) {
        return cs_err_set(err, CS_EINVAL, 0, "k-means: %zu clusters for %zu points (k > n)", p->k,
                          n);
    }
    if (n > (size_t)INT32_MAX || dim > (size_t)INT32_MAX || p->k > (size_t)INT32_MAX) {
        return cs_err_set(err, CS_ERANGE, 0, "k-means: %zu x %zu points are too many for BLAS", n,
                          dim);
    }
    const size_t k = p->k;
    w.x = cs_alloc_array(n, dim * sizeof(double));
    w.xx = cs_alloc_array(n, sizeof(double));
    w.c = cs_alloc_array(k, dim * sizeof(double));
    w.cn = cs_alloc_array(k, dim * sizeof(double));
    w.cc = cs_alloc_array(k, sizeof(double));
    w.g = cs_alloc_array(n, k * sizeof(double));
    w.d = cs_alloc_array(n, sizeof(double));
    w.lab = cs_alloc_array(n, sizeof(size_t));
    w.prev = cs_alloc_array(n, sizeof(size_t));
    w.size = cs_alloc_array(k, sizeof(size_t));
    out->centers = cs_alloc_array(k, dim * sizeof(double));
    out->label = cs_alloc_array(n, sizeof(size_t));
    out->size = cs_alloc_array(k, sizeof(size_t));
    out->restart_inertia = cs_alloc_array(p->n_init, sizeof(double));
    out->restart_iter = cs_alloc_array(p->n_init, sizeof(size_t));
    if (!w.x || !w.xx || !w.c || !w.cn || !w.cc || !w.g || !w.d || !w.lab || !w.prev || !w.size ||
        !out->centers || !out->label || !out->size || !out->restart_inertia || !out->restart_iter) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "k-means: out of memory for %zu x %zu points", n, dim);
        goto cleanup;
    }
    out->n = n;
    out->dim = dim;
    out->k = k;
    out->n_init = p->n_init;
    /* tolerance: tol x mean per-dimension (population) variance */
    double var_sum = 0.0;
    for (size_t j = 0; j < dim; j++) {
        double mean = 0.0, ss = 0.0;
        for (size_t i = 0; i < n; i++) {
            mean += (double)x[i * dim + j];
        }
        mean /= (double)n;
        for (size_t i = 0; i < n; i++) {
            double e = (double)x[i * dim + j] - mean;
            ss += e * e;
        }
        var_sum += ss / (double)n;
    }
    const double tol_abs = p->tol * var_sum / (double)dim;
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t j = 0; j < dim; j++) {
            w.x[i * dim + j] = (double)x[i * dim + j];
            s += w.x[i * dim + j] * w.x[i * dim + j];
        }
        w.xx[i] = s;
    }
    cs_rng_seed(&rng, p->seed);
    out->inertia = INFINITY;
    for (size_t r = 0; r < p->n_init; r++) {
        size_t it = 0;
        seed_centers(&w, n, dim, k, &rng);
        for (it = 0; it < p->max_iter; it++) {
            assign(&w, n, dim, k);
            bool changed = it == 0 || memcmp(w.lab, w.prev, n * sizeof(size_t)) != 0;
            double shift = update(&w, n, dim, k);
            memcpy(w.prev, w.lab, n * sizeof(size_t));
            if (!changed || shift <= tol_abs) {
                it++;
                break;
            }
        }
        double inertia = 0.0;
        for (size_t i = 0; i < n; i++) {
            inertia += sqdist(w.x + i * dim, w.c + w.lab[i] * dim, dim);
        }
        out->restart_inertia[r] = inertia;
        out->restart_iter[r] = it;
        if (inertia < out->inertia) {
            out->inertia = inertia;
            out->best = r;
            memcpy(out->centers, w.c, k * dim * sizeof(double));
            memcpy(out->label, w.lab, n * sizeof(size_t));
            memcpy(out->size, w.size, k * sizeof(size_t));
        }
    }
cleanup:
    ws_free(&w);
    if (rc != CS_OK) {
        cs_km_result_fini(out);
    }
    return rc;
}

void cs_km_nearest_members(const float *x, const cs_km_result *r, size_t *member, double *dist)
{
    const size_t dim = r->dim;
    for (size_t c = 0; c < r->k; c++) {
        member[c] = SIZE_MAX;
        dist[c] = INFINITY;
    }
    for (size_t i = 0; i < r->n; i++) {
        size_t c = r->label[i];
        const double *ctr = r->centers + c * dim;
        double s = 0.0;
        for (size_t j = 0; j < dim; j++) {
            double e = (double)x[i * dim + j] - ctr[j];
            s += e * e;
        }
        if (member[c] == SIZE_MAX || s < dist[c]) {
            member[c] = i;
            dist[c] = s;
        }
    }
}
