/* cs_awq.c - AWQ's scale formula, grid search over a loss callback, and clip search. */
#include "cs_awq.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cs_alloc.h"
#include "cs_log.h"

void cs_awq_params_default(cs_awq_params *p)
{
    *p = (cs_awq_params){
            .q = {.family = CS_QF_AWQ, .bits = 4, .sym = false},
            .group_size = 128,
            .duo_scaling = true,
            .n_grid = 20,
            .clip_grid = 20,
            .clip_tokens = 512,
    };
}

cs_rc cs_awq_x_mean(float *x_mean, const cs_actstats *st, cs_err *err)
{
    if (st->n == 0) {
        return cs_err_set(err, CS_ESTATE, 0, "awq: no calibration token was seen");
    }
    for (size_t j = 0; j < st->cols; j++) {
        x_mean[j] = (float)(st->sum_abs[j] / (double)st->n);
    }
    return CS_OK;
}

cs_rc cs_awq_w_mean(float *w_mean, size_t cols, const float *const *w, const size_t *rows,
                    size_t n_lin, size_t group, cs_err *err)
{
    const size_t g = group == 0 ? cols : group;
    if (cols == 0 || cols % g != 0) {
        return cs_err_set(err, CS_EINVAL, 0, "awq.group_size: %zu does not divide cols %zu", g,
                          cols);
    }
    double *acc = cs_calloc_array(cols, sizeof(double));
    if (!acc) {
        return cs_err_set(err, CS_ENOMEM, 0, "awq: out of memory");
    }
    size_t total = 0;
    for (size_t l = 0; l < n_lin; l++) {
        for (size_t r = 0; r < rows[l]; r++) {
            const float *row = w[l] + r * cols;
            for (size_t c0 = 0; c0 < cols; c0 += g) {
                float m = 0.0f;
                for (size_t j = 0; j < g; j++) {
                    m = fmaxf(m, fabsf(row[c0 + j]));
                }
                const float den = m + 1e-6f;
                for (size_t j = 0; j < g; j++) {
                    acc[c0 + j] += (double)(fabsf(row[c0 + j]) / den);
                }
            }
            total++;
        }
    }
    if (total == 0) {
        free(acc);
        return cs_err_set(err, CS_EINVAL, 0, "awq: no weight row for w_mean");
    }
    for (size_t j = 0; j < cols; j++) {
        w_mean[j] = (float)(acc[j] / (double)total);
    }
    free(acc);
    return CS_OK;
}

void cs_awq_scales_for_ratio(float *s, const float *x_mean, const float *w_mean, size_t cols,
                             double ratio, bool duo)
{
    const float r = (float)ratio, r1 = (float)(1.0 - ratio); /* python-side doubles, as torch */
    float mx = -INFINITY, mn = INFINITY;
    bool nan = false;
    for (size_t j = 0; j < cols; j++) {
        float v;
        if (duo) {
            v = powf(x_mean[j], r) / (powf(w_mean[j], r1) + 1e-4f);
        } else {
            v = powf(x_mean[j], r);
        }
        v = v < 1e-4f ? 1e-4f : v; /* clamp(min=1e-4); NaN stays NaN as in torch */
        s[j] = v;
        nan = nan || isnan(v);
        mx = fmaxf(mx, v);
        mn = fminf(mn, v);
    }
    const float norm = nan ? NAN : sqrtf(mx * mn); /* torch's max/min propagate NaN */
    for (size_t j = 0; j < cols; j++) {
        const float v = s[j] / norm;
        s[j] = isfinite(v) ? v : 1.0f;
    }
}

cs_rc cs_awq_quant_scaled(float *w, size_t rows, size_t cols, const float *s, const cs_qspec *q,
                          size_t group, cs_err *err)
{
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < cols; j++) {
            w[r * cols + j] *= s[j];
        }
    }
    cs_rc rc = cs_quant_rtn(w, rows, cols, q, group, err);
    if (rc != CS_OK) {
        return rc;
    }
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < cols; j++) {
            w[r * cols + j] /= s[j];
        }
    }
    return CS_OK;
}

cs_rc cs_awq_search_scale(float *best_s, const float *x_mean, const float *w_mean, size_t cols,
                          const cs_awq_params *p, cs_awq_loss_fn fn, void *ctx,
                          cs_awq_search_result *res, cs_err *err)
{
    cs_awq_search_result lr = {.best_ratio = -1.0, .best_loss = INFINITY, .loss_r0 = INFINITY};
    if (cols == 0 || p->n_grid == 0 || !fn || (p->duo_scaling && !w_mean)) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "awq search: needs cols > 0, n_grid > 0, a loss callback and w_mean "
                          "with duo scaling");
    }
    float *s = cs_alloc_array(cols, sizeof(float));
    if (!s) {
        return cs_err_set(err, CS_ENOMEM, 0, "awq: out of memory");
    }
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < p->n_grid; i++) {
        const double ratio = (double)i / (double)p->n_grid;
        cs_awq_scales_for_ratio(s, x_mean, w_mean, cols, ratio, p->duo_scaling);
        double loss = INFINITY;
        rc = fn(ctx, s, &loss, err);
        if (rc != CS_OK) {
            goto out;
        }
        if (!isfinite(loss)) {
            loss = INFINITY;
        }
        if (i == 0) {
            lr.loss_r0 = loss;
        }
        if (loss < lr.best_loss) {
            lr.best_loss = loss;
            lr.best_ratio = ratio;
            memcpy(best_s, s, cols * sizeof(float));
        }
    }
    if (lr.best_ratio < 0.0) {
        lr.fallback = true;
        for (size_t j = 0; j < cols; j++) {
            best_s[j] = 1.0f;
        }
        cs_log(CS_LOG_WARN, "awq: every loss of the scale search was NaN or infinite; s = 1");
    }
out:
    if (res) {
        *res = lr;
    }
    free(s);
    return rc;
}

cs_rc cs_awq_clip_search(float *max_val, const float *w, size_t rows, size_t cols, const float *x,
                         size_t tokens, const cs_awq_params *p, cs_err *err)
{
    const size_t g = p->group_size == 0 ? cols : p->group_size;
    if (rows == 0 || cols == 0 || tokens == 0 || cols % g != 0 || rows > INT_MAX ||
        cols > INT_MAX) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "awq clip: bad sizes (rows %zu, cols %zu, tokens %zu, group %zu)", rows,
                          cols, tokens, g);
    }
    cs_rc rc = cs_qspec_check(&p->q, err);
    if (rc != CS_OK) {
        return rc;
    }
    const size_t per = p->clip_tokens ? p->clip_tokens : 1;
    const size_t step = tokens / per > 0 ? tokens / per : 1;
    const size_t ns = (tokens + step - 1) / step, ng = cols / g;
    const size_t n_try = p->clip_grid / 2;                 /* max_shrink 0.5 */
    float *xs = cs_alloc_array(ns * cols, sizeof(float));  /* the sampled tokens */
    float *cand = cs_alloc_array(rows * g, sizeof(float)); /* one candidate's group of every row */
    float *ref = cs_alloc_array(ns * rows, sizeof(float)); /* X_g W_g^T */
    float *out = cs_alloc_array(ns * rows, sizeof(float)); /* X_g Q_g^T */
    float *m0 = cs_alloc_array(rows, sizeof(float));
    double *best = cs_alloc_array(rows, sizeof(double));
    double *e = cs_alloc_array(rows, sizeof(double));
    if (!xs || !cand || !ref || !out || !m0 || !best || !e) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "awq clip: out of memory");
        goto out;
    }
    for (size_t t = 0; t < ns; t++) {
        memcpy(xs + t * cols, x + t * step * cols, cols * sizeof(float));
    }
    for (size_t gi = 0; gi < ng; gi++) {
        const float *wg = w + gi * g, *xg = xs + gi * g; /* leading dimension cols */
        for (size_t r = 0; r < rows; r++) {
            float m = 0.0f;
            for (size_t j = 0; j < g; j++) {
                m = fmaxf(m, fabsf(wg[r * cols + j]));
            }
            m0[r] = m;
            best[r] = 1e9;
            max_val[r * ng + gi] = m;
        }
        /* ref[t][r] = sum_{j in g} x_tj w_rj, float as the reference's (x * w).sum(-1) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ns, (int)rows, (int)g, 1.0f, xg,
                    (int)cols, wg, (int)cols, 0.0f, ref, (int)rows);
        for (size_t i = 0; i < n_try; i++) {
            for (size_t r = 0; r < rows; r++) {
                /* torch: f32 * f64 scalar */
                const float m = m0[r] * (float)(1.0 - (double)i / (double)p->clip_grid);
                float *c = cand + r * g;
                for (size_t j = 0; j < g; j++) {
                    c[j] = fminf(fmaxf(wg[r * cols + j], -m), m);
                }
                cs_qparam qp;
                cs_qparam_find(&qp, &p->q, c, g);
                for (size_t j = 0; j < g; j++) {
                    c[j] = cs_qparam_apply(&qp, c[j]);
                }
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)ns, (int)rows, (int)g, 1.0f,
                        xg, (int)cols, cand, (int)g, 0.0f, out, (int)rows);
            memset(e, 0, rows * sizeof(double));
            for (size_t t = 0; t < ns; t++) {
                const float *o = out + t * rows, *f = ref + t * rows;
                for (size_t r = 0; r < rows; r++) {
                    const double d = (double)o[r] - (double)f[r];
                    e[r] += d * d;
                }
            }
            for (size_t r = 0; r < rows; r++) {
                const double er = e[r] / (double)ns;
                if (er < best[r]) {
                    best[r] = er;
                    max_val[r * ng + gi] = m0[r] * (float)(1.0 - (double)i / (double)p->clip_grid);
                }
            }
        }
    }
out:
    free(xs);
    free(cand);
    free(ref);
    free(out);
    free(m0);
    free(best);
    free(e);
    return rc;
}

void cs_awq_apply_clip(float *w, size_t rows, size_t cols, const float *max_val, size_t group)
{
    const size_t g = group == 0 ? cols : group, ng = cols / g;
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < cols; j++) {
            const float m = max_val[r * ng + j / g];
            float *v = w + r * cols + j;
            *v = fminf(fmaxf(*v, -m), m);
        }
    }
}
