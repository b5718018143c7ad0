/* cs_wanda.h - Wanda pruning of one linear layer (docs/specs/ptq-algorithms.md section 6).
 *
 * Metric S[r][j] = |W[r][j]| * sqrt(n_j) in float, with n_j = sum_t x_tj^2 (cs_hessian_diag or
 * cs_actstats.sum_sq; the reference's 1/n factor does not change the ranking, and n_j is rounded
 * to float before the square root, as the reference's fp32 scaler_row). Compared within each
 * output row. Unstructured: stable ascending sort per row, the first floor(cols * sparsity) are
 * zeroed. N:M: in each run of M consecutive columns of a row, the N smallest are zeroed, ties to
 * the lowest index. No weight update.
 */
#ifndef CS_WORKER_QUANT_CS_WANDA_H
#define CS_WORKER_QUANT_CS_WANDA_H

#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

/* Prunes w (rows x cols) in place. sumsq[cols] is borrowed. prune_n == 0: unstructured with
 * sparsity in [0, 1); else N:M (cols % M == 0, N < M <= 64). mask (rows x cols, may be NULL)
 * receives 1 for pruned entries. CS_EINVAL names a bad argument (negative or non-finite n_j),
 * CS_ENOMEM. */
cs_rc cs_wanda_prune(float *w, size_t rows, size_t cols, const double *sumsq, double sparsity,
                     size_t prune_n, size_t prune_m, uint8_t *mask, cs_err *err);

#endif
