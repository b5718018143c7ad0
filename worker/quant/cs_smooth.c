/* cs_smooth.c - SmoothQuant scales and weight folding. */
#include "cs_smooth.h"

#include <math.h>

void cs_smooth_params_default(cs_smooth_params *p)
{
    *p = (cs_smooth_params){.alpha = 0.5, .variant = CS_SMOOTH_ABSMAX};
}

cs_rc cs_smooth_scales(float *s, size_t cols, const float *act, const float *const *w,
                       const size_t *rows, size_t n_lin, const cs_smooth_params *p, cs_err *err)
{
    if (!(p->alpha >= 0.0 && p->alpha <= 1.0)) {
        return cs_err_set(err, CS_EINVAL, 0, "smoothquant.alpha: expected [0, 1], got %g",
                          p->alpha);
    }
    if (n_lin == 0 || cols == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "smoothquant: no linear to balance");
    }
    for (size_t j = 0; j < cols; j++) {
        if (!(act[j] >= 0.0f) || !isfinite(act[j])) {
            return cs_err_set(err, CS_EINVAL, 0,
                              "smoothquant: activation statistic [%zu] = %g is not finite >= 0", j,
                              (double)act[j]);
        }
        s[j] = 0.0f; /* w_max accumulates here first */
    }
    for (size_t l = 0; l < n_lin; l++) {
        for (size_t r = 0; r < rows[l]; r++) {
            const float *row = w[l] + r * cols;
            for (size_t j = 0; j < cols; j++) {
                const float a = fabsf(row[j]);
                s[j] = a > s[j] ? a : s[j];
            }
        }
    }
    const double al = p->alpha;
    for (size_t j = 0; j < cols; j++) {
        const double a = act[j];
        double v;
        if (p->variant == CS_SMOOTH_RANGE) {
            const double wm = s[j];
            v = wm == 0.0 ? a : pow(a, al) / pow(2.0 * wm, 1.0 - al);
        } else {
            const double wm = fmax((double)s[j], (double)1e-5f);
            v = pow(a, al) / pow(wm, 1.0 - al);
        }
        s[j] = fmaxf((float)v, 1e-5f);
    }
    return CS_OK;
}

void cs_smooth_fold_norm(float *norm_w, float *norm_b, const float *s, size_t cols)
{
    for (size_t j = 0; j < cols; j++) {
        norm_w[j] /= s[j];
        if (norm_b) {
            norm_b[j] /= s[j];
        }
    }
}

void cs_smooth_scale_cols(float *w, size_t rows, size_t cols, const float *s)
{
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < cols; j++) {
            w[r * cols + j] *= s[j];
        }
    }
}

void cs_smooth_scale_inputs(float *x, size_t tokens, size_t cols, const float *s)
{
    for (size_t t = 0; t < tokens; t++) {
        for (size_t j = 0; j < cols; j++) {
            x[t * cols + j] /= s[j];
        }
    }
}

void cs_smooth_fold_prev_linear(float *prev_w, float *prev_b, size_t s_len, size_t prev_cols,
                                const float *s)
{
    for (size_t j = 0; j < s_len; j++) {
        for (size_t k = 0; k < prev_cols; k++) {
            prev_w[j * prev_cols + k] /= s[j];
        }
        if (prev_b) {
            prev_b[j] /= s[j];
        }
    }
}
