/* cs_hessian.c - SYRK accumulation of S = X^T X in double, and per-column activation statistics. */
#include "cs_hessian.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cs_alloc.h"

#define BATCH_ROWS CS_HESSIAN_BATCH_ROWS /* rows converted to double per SYRK call */

struct cs_hessian {
    size_t cols;
    size_t n;
    double *s;  /* [cols x cols], upper triangle valid */
    double *xd; /* [BATCH_ROWS x cols] scratch */
};

cs_rc cs_hessian_create(cs_hessian **out, size_t cols, cs_err *err)
{
    *out = NULL;
    if (cols == 0 || cols > (size_t)1 << 20) {
        return cs_err_set(err, CS_EINVAL, 0, "hessian: cols %zu out of range", cols);
    }
    size_t cc;
    if (!cs_mul_ok(cols, cols, &cc)) {
        return cs_err_set(err, CS_ENOMEM, 0, "hessian: %zu^2 overflows", cols);
    }
    cs_hessian *h = calloc(1, sizeof(*h));
    if (!h) {
        return cs_err_set(err, CS_ENOMEM, 0, "hessian: out of memory");
    }
    h->cols = cols;
    h->s = cs_calloc_array(cc, sizeof(double));
    h->xd = cs_alloc_array((size_t)BATCH_ROWS * cols, sizeof(double));
    if (!h->s || !h->xd) {
        cs_hessian_destroy(h);
        return cs_err_set(err, CS_ENOMEM, 0, "hessian: out of memory for %zu x %zu", cols, cols);
    }
    *out = h;
    return CS_OK;
}

void cs_hessian_destroy(cs_hessian *h)
{
    if (!h) {
        return;
    }
    free(h->s);
    free(h->xd);
    free(h);
}

cs_rc cs_hessian_add(cs_hessian *h, const float *x, size_t rows, cs_err *err)
{
    const size_t c = h->cols;
    for (size_t i = 0; i < rows * c; i++) {
        if (!isfinite(x[i])) {
            return cs_err_set(err, CS_EINVAL, 0, "hessian: X[%zu][%zu] is not finite", i / c,
                              i % c);
        }
    }
    for (size_t r0 = 0; r0 < rows; r0 += BATCH_ROWS) {
        const size_t nb = rows - r0 < BATCH_ROWS ? rows - r0 : BATCH_ROWS;
        for (size_t i = 0; i < nb * c; i++) {
            h->xd[i] = (double)x[r0 * c + i];
        }
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)c, (int)nb, 1.0, h->xd, (int)c, 1.0,
                    h->s, (int)c);
    }
    h->n += rows;
    return CS_OK;
}

size_t cs_hessian_cols(const cs_hessian *h)
{
    return h->cols;
}

size_t cs_hessian_count(const cs_hessian *h)
{
    return h->n;
}

cs_rc cs_hessian_get(const cs_hessian *h, float *out, cs_err *err)
{
    if (h->n == 0) {
        return cs_err_set(err, CS_ESTATE, 0, "hessian: no calibration token was added");
    }
    const size_t c = h->cols;
    const double f = 2.0 / (double)h->n;
    for (size_t i = 0; i < c; i++) {
        for (size_t j = i; j < c; j++) {
            const float v = (float)(f * h->s[i * c + j]);
            out[i * c + j] = v;
            out[j * c + i] = v;
        }
    }
    return CS_OK;
}

void cs_hessian_diag(const cs_hessian *h, double *out)
{
    for (size_t j = 0; j < h->cols; j++) {
        out[j] = h->s[j * h->cols + j];
    }
}

cs_rc cs_actstats_init(cs_actstats *s, size_t cols, cs_err *err)
{
    memset(s, 0, sizeof(*s));
    if (cols == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "actstats: cols must be > 0");
    }
    s->cols = cols;
    s->absmax = cs_calloc_array(cols, sizeof(float));
    s->min = cs_alloc_array(cols, sizeof(float));
    s->max = cs_alloc_array(cols, sizeof(float));
    s->sum_abs = cs_calloc_array(cols, sizeof(double));
    s->sum_sq = cs_calloc_array(cols, sizeof(double));
    if (!s->absmax || !s->min || !s->max || !s->sum_abs || !s->sum_sq) {
        cs_actstats_fini(s);
        return cs_err_set(err, CS_ENOMEM, 0, "actstats: out of memory");
    }
    for (size_t j = 0; j < cols; j++) {
        s->min[j] = INFINITY;
        s->max[j] = -INFINITY;
    }
    return CS_OK;
}

void cs_actstats_fini(cs_actstats *s)
{
    if (!s) {
        return;
    }
    free(s->absmax);
    free(s->min);
    free(s->max);
    free(s->sum_abs);
    free(s->sum_sq);
    memset(s, 0, sizeof(*s));
}

cs_rc cs_actstats_add(cs_actstats *s, const float *x, size_t rows, cs_err *err)
{
    const size_t c = s->cols;
    for (size_t t = 0; t < rows; t++) {
        const float *xr = x + t * c;
        for (size_t j = 0; j < c; j++) {
            const float v = xr[j];
            if (!isfinite(v)) {
                return cs_err_set(err, CS_EINVAL, 0, "actstats: X[%zu][%zu] is not finite", t, j);
            }
            const float a = fabsf(v);
            s->absmax[j] = a > s->absmax[j] ? a : s->absmax[j];
            s->min[j] = v < s->min[j] ? v : s->min[j];
            s->max[j] = v > s->max[j] ? v : s->max[j];
            s->sum_abs[j] += a;
            s->sum_sq[j] += (double)v * v;
        }
        s->n++;
    }
    return CS_OK;
}
