/* cs_smooth.h - SmoothQuant's migration scales and the folding of per-channel scales into weights
 * (docs/specs/ptq-algorithms.md section 4; the folds are shared with AWQ, section 3).
 *
 * Pure functions on arrays: the caller applies them to a block's RMSNorm weights and linears.
 * Smoothing a pair norm -> {linears}: s = cs_smooth_scales(...); cs_smooth_fold_norm(norm, s);
 * cs_smooth_scale_cols(W_L, s) for each linear L. The float function is then unchanged:
 * W diag(s) (x / s) = W x.
 */
#ifndef CS_WORKER_QUANT_CS_SMOOTH_H
#define CS_WORKER_QUANT_CS_SMOOTH_H

#include <stddef.h>

#include "cs_err.h"

typedef enum cs_smooth_variant {
    /* smoothquant smooth.py: w_max = max(max_{L,r}|W_L[r][j]|, 1e-5);
     * s = max(act_max^a / w_max^(1-a), 1e-5) with act_max[j] = max_t |x_tj| */
    CS_SMOOTH_ABSMAX = 0,
    /* llm-compressor: act = range (max - min of the norm output); s = range^a / (2 w_max)^(1-a),
     * s = range where w_max == 0; then s >= 1e-5 */
    CS_SMOOTH_RANGE = 1,
} cs_smooth_variant;

typedef struct cs_smooth_params {
    double alpha;              /* 0.5 in both references' code (README: Llama 0.85) */
    cs_smooth_variant variant; /* CS_SMOOTH_ABSMAX */
} cs_smooth_params;

void cs_smooth_params_default(cs_smooth_params *p);

/* s[cols] = the smoothing scales for the linears w[0..n_lin) (each rows[l] x cols, borrowed) that
 * read the same input, with act[cols] = act_max (ABSMAX) or range (RANGE). Computed in double and
 * rounded to float. CS_EINVAL for alpha outside [0, 1], no linear, or a negative / non-finite
 * act[j] (naming j). */
cs_rc cs_smooth_scales(float *s, size_t cols, const float *act, const float *const *w,
                       const size_t *rows, size_t n_lin, const cs_smooth_params *p, cs_err *err);

/* norm_w[j] /= s[j] and, if norm_b is not NULL, norm_b[j] /= s[j]. */
void cs_smooth_fold_norm(float *norm_w, float *norm_b, const float *s, size_t cols);

/* w[r][j] *= s[j] (w rows x cols): the linears after a folded norm or previous linear. */
void cs_smooth_scale_cols(float *w, size_t rows, size_t cols, const float *s);

/* x[t][j] /= s[j] (x tokens x cols): cached inputs of the scaled linears. */
void cs_smooth_scale_inputs(float *x, size_t tokens, size_t cols, const float *s);

/* Linear -> linear fold (AWQ's v -> o): prev.W[j][:] /= s[j] and prev.b[j] /= s[j] (prev_b may be
 * NULL), prev_w is s_len x prev_cols; the caller then scales the next linear's columns. */
void cs_smooth_fold_prev_linear(float *prev_w, float *prev_b, size_t s_len, size_t prev_cols,
                                const float *s);

#endif
