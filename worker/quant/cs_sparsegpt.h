/* cs_sparsegpt.h - SparseGPT pruning of one linear layer (docs/specs/ptq-algorithms.md section 5).
 *
 * Uses GPTQ's Hessian, dead-column handling, damping, U (cs_gptq_hinv) and blocks. Unstructured:
 * per block of `blocksize` columns, score = W1^2 / diag(U_block)^2 over all rows x block entries
 * (W1 as of the block start); thr = sorted(score)[floor(numel * sparsity)]; prune score <= thr, so
 * each block loses floor(numel * p) + 1 entries (more on exact ties). N:M: at every M-th column
 * of a block, the N smallest scores of the next M columns of each row (W1 as updated so far) are
 * pruned; ties go to the lowest index. Pruned weights are set to 0 and their error is propagated as
 * in GPTQ. Optionally the kept weights are quantized with per-row Q-GPTQ (quant.bits > 0).
 */
#ifndef CS_WORKER_QUANT_CS_SPARSEGPT_H
#define CS_WORKER_QUANT_CS_SPARSEGPT_H

#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_gptq.h"
#include "cs_quantizer.h"

typedef struct cs_sparsegpt_params {
    double sparsity;  /* 0.5; unused by N:M */
    size_t prune_n;   /* N of N:M (0 = unstructured) */
    size_t prune_m;   /* M of N:M; blocksize % M == 0 */
    size_t blocksize; /* 128 */
    double percdamp;  /* 0.01 */
    double damp_step; /* 0.01, as GPTQ */
    double damp_max;  /* 0.2 */
    cs_qspec quant;   /* bits == 0: prune only (default) */
} cs_sparsegpt_params;

void cs_sparsegpt_params_default(cs_sparsegpt_params *p);

/* Prunes w (rows x cols) in place with the Hessian h (cols x cols, borrowed). mask (rows x cols,
 * may be NULL) receives 1 for pruned entries. res (may be NULL): loss, damping, dead columns,
 * RTN-style fallback (U = I: plain block-threshold magnitude pruning) when H never becomes
 * positive definite. Errors: CS_EINVAL (bad parameters or H, naming them), CS_ENOMEM. */
cs_rc cs_sparsegpt_prune(float *w, size_t rows, size_t cols, const float *h,
                         const cs_sparsegpt_params *p, uint8_t *mask, cs_gptq_result *res,
                         cs_err *err);

#endif
