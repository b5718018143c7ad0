/* cs_awq.h - the forward-free parts of AWQ (docs/specs/ptq-algorithms.md section 3): the Q-AWQ
 * quantization of scaled weights, the activation and weight means, the scale formula, the grid
 * search over a caller-supplied loss callback, and the clip search on cached inputs.
 *
 * The block forward is not here: the caller (the engine) passes a callback that, for candidate
 * scales s, temporarily sets W_L = Q-AWQ(W_L diag(s)) diag(s)^-1 for the linears of one scaling
 * group (cs_awq_quant_scaled), runs the module on the cached input, restores the weights and
 * returns the mean squared difference to the unmodified output. Folding uses cs_smooth.h.
 */
#ifndef CS_WORKER_QUANT_CS_AWQ_H
#define CS_WORKER_QUANT_CS_AWQ_H

#include <stdbool.h>
#include <stddef.h>

#include "cs_err.h"
#include "cs_hessian.h"
#include "cs_quantizer.h"

typedef struct cs_awq_params {
    cs_qspec q;         /* Q-AWQ, 4 bits, asym (zero_point on) */
    size_t group_size;  /* 128 (0 = per row) */
    bool duo_scaling;   /* true (AutoAWQ); llm-awq: false */
    size_t n_grid;      /* 20: ratios 0, 1/20, ..., 19/20 (1.0 is never tried) */
    size_t clip_grid;   /* 20, with max_shrink 0.5: 10 candidates m0 (1 - i/20) */
    size_t clip_tokens; /* 512: the clip search uses X[::max(1, T / 512)] */
} cs_awq_params;

void cs_awq_params_default(cs_awq_params *p);

/* x_mean[j] = sum_t |x_tj| / n from statistics (float). CS_ESTATE if no token was seen. */
cs_rc cs_awq_x_mean(float *x_mean, const cs_actstats *st, cs_err *err);

/* w_mean[cols] for duo scaling: the rows of the n_lin linears (each rows[l] x cols) stacked; each
 * group of `group` columns of a row divided by its max|w| + 1e-6; averaged over all rows.
 * group == 0 means the whole row. CS_EINVAL if cols % group != 0 or no row. */
cs_rc cs_awq_w_mean(float *w_mean, size_t cols, const float *const *w, const size_t *rows,
                    size_t n_lin, size_t group, cs_err *err);

/* s[cols] for one ratio r: duo: max(x_mean^r / (w_mean^(1-r) + 1e-4), 1e-4), else
 * max(x_mean^r, 1e-4); then s /= sqrt(max(s) min(s)); infinite or NaN entries become 1. float
 * arithmetic as the reference. w_mean is ignored (may be NULL) without duo. */
void cs_awq_scales_for_ratio(float *s, const float *x_mean, const float *w_mean, size_t cols,
                             double ratio, bool duo);

/* w (rows x cols) in place: w = Q-AWQ(w diag(s)) diag(s)^-1 with groups of `group` columns. */
cs_rc cs_awq_quant_scaled(float *w, size_t rows, size_t cols, const float *s, const cs_qspec *q,
                          size_t group, cs_err *err);

/* Evaluates candidate scales s[cols]: *loss = mean squared output error of the module with its
 * linears quantized under s (the weights must be restored before returning). A NaN or infinite
 * loss is allowed (counts as +inf). Return CS_OK, or an error that aborts the search. */
typedef cs_rc (*cs_awq_loss_fn)(void *ctx, const float *s, double *loss, cs_err *err);

typedef struct cs_awq_search_result {
    double best_ratio; /* -1 if every loss was NaN/inf (then s = 1) */
    double best_loss;
    double loss_r0; /* the loss at ratio 0 */
    bool fallback;  /* every loss was NaN/inf: s = 1 and a warning was logged */
} cs_awq_search_result;

/* Grid search: for r = i / n_grid, i = 0..n_grid-1, keeps s with the strictly smallest loss.
 * best_s[cols] receives it. Callback errors are returned as they are. res may be NULL. */
cs_rc cs_awq_search_scale(float *best_s, const float *x_mean, const float *w_mean, size_t cols,
                          const cs_awq_params *p, cs_awq_loss_fn fn, void *ctx,
                          cs_awq_search_result *res, cs_err *err);

/* Clip search for one linear: w (rows x cols) borrowed, x (tokens x cols, the linear's cached
 * input, already divided by the AWQ scales) borrowed. max_val (rows x ceil(cols / group)) receives,
 * per (row, group), the clip m = m0 (1 - i / clip_grid), i < clip_grid / 2, with m0 = max|W[r, g]|,
 * minimising mean_t (sum_{j in g} x_tj Q(clamp(w, +-m))_j - sum_{j in g} x_tj w_j)^2 (strictly;
 * start 1e9). The sums are float products through sgemm (X_g Q_g^T for every row of a candidate
 * at once), as the reference's float (x * w).sum(-1); the mean is accumulated in double.
 * CS_EINVAL for bad sizes, CS_ENOMEM. */
cs_rc cs_awq_clip_search(float *max_val, const float *w, size_t rows, size_t cols, const float *x,
                         size_t tokens, const cs_awq_params *p, cs_err *err);

/* w[r][j] = clamp(w[r][j], -max_val[r][g], +max_val[r][g]) for j in group g. */
void cs_awq_apply_clip(float *w, size_t rows, size_t cols, const float *max_val, size_t group);

#endif
