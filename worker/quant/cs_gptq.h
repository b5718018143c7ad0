/* cs_gptq.h - GPTQ on one linear layer (docs/specs/ptq-algorithms.md section 2), fake-quantized.
 *
 * Given W (rows x cols, f32, the PyTorch layout) and H (cols x cols, f32, e.g. 2 X^T X / n from
 * cs_hessian), quantizes W in place exactly as IST-DASLab fasterquant: per-row parameters taken
 * before dead-column zeroing; dead columns (H[j][j] == 0) get H[j][j] = 1 and W[:, j] = 0; static
 * groups from the pre-GPTQ weights; act_order = stable descending argsort of diag(H); damping
 * percdamp * mean(diag(H)); U = upper Cholesky factor of H^-1 (LAPACK, in double); blocks of
 * `blocksize` columns with the lazy batch update (BLAS sgemm); groups that start inside a block
 * take their parameters from W, not from the in-block updated copy.
 *
 * Not positive definite: damping is raised by damp_step while it stays <= damp_max; after that the
 * layer falls back to RTN (U = I, the llm-compressor behaviour), result.rtn_fallback is set and a
 * warning is logged. Precision: H is promoted to double before damping, Cholesky and inverse; U is
 * then rounded to float and the sweep runs in float as the reference does.
 */
#ifndef CS_WORKER_QUANT_CS_GPTQ_H
#define CS_WORKER_QUANT_CS_GPTQ_H

#include <stdbool.h>
#include <stddef.h>

#include "cs_err.h"
#include "cs_quantizer.h"

/* How U (the upper Cholesky factor of H^-1) is computed, both in double with LAPACK:
 * CS_GPTQ_HINV_REF: the reference's three calls, cholesky -> cholesky_inverse -> cholesky(upper)
 *   (4/3 C^3 flops); U matches torch's to float rounding, and the weights too, except where a
 *   value lies within the float error of a rounding boundary (BLAS kernels differ between CPUs;
 *   tests/cs_tol.h bounds it, tests/data/quant).
 * CS_GPTQ_HINV_UL: H = V V^T with V upper (the Cholesky factor of the reversed H, reversed back),
 *   then U = V^-1 (trtri): the same U in exact arithmetic with half the flops (2/3 C^3); agrees
 *   with the reference to float rounding, so rare float ties may round the other way. */
typedef enum cs_gptq_hinv_method {
    CS_GPTQ_HINV_REF = 0,
    CS_GPTQ_HINV_UL = 1,
} cs_gptq_hinv_method;

/* Parameters; cs_gptq_params_default gives the IST/AutoGPTQ values named below. */
typedef struct cs_gptq_params {
    cs_qspec q;               /* default Q-GPTQ, 4 bits, asym (IST; AutoGPTQ: sym) */
    long group_size;          /* -1 = one set per row (IST default); 128 is the usual choice */
    double percdamp;          /* 0.01 */
    size_t blocksize;         /* 128 */
    bool act_order;           /* false (AutoGPTQ desc_act: true) */
    bool static_groups;       /* false (llm-compressor actorder="static": true) */
    double damp_step;         /* 0.01: added to percdamp on each Cholesky failure */
    double damp_max;          /* 0.2: last percdamp tried before the RTN fallback */
    size_t threads;           /* threads of the column sweep; 0 = as many as OpenBLAS uses */
    cs_gptq_hinv_method hinv; /* CS_GPTQ_HINV_REF */
} cs_gptq_params;

typedef struct cs_gptq_result {
    double loss;       /* sum over rows and columns of (w-q)^2 / U[c][c]^2 / 2 */
    double percdamp;   /* the percdamp that succeeded (or the last tried on fallback) */
    double damp;       /* absolute value added to the diagonal: percdamp * mean(diag(H)) */
    size_t n_dead;     /* columns with H[j][j] == 0 */
    int retries;       /* Cholesky failures before success or fallback */
    bool rtn_fallback; /* true if the layer was quantized by RTN (U = I) */
    double t_prep;     /* seconds: copies, dead columns, parameters, permutation */
    double t_hinv;     /* seconds: damping, Cholesky, inverse, Cholesky (LAPACK, double) */
    double t_sweep;    /* seconds: the in-block column sweep (quantize + rank-1 updates) */
    double t_update;   /* seconds: the lazy batch updates (sgemm) */
} cs_gptq_result;

void cs_gptq_params_default(cs_gptq_params *p);

/* CS_OK if p is usable for cols columns, else CS_EINVAL naming the field. */
cs_rc cs_gptq_params_check(const cs_gptq_params *p, size_t cols, cs_err *err);

/* Quantizes w (rows x cols, row-major) in place. h (cols x cols, row-major, symmetric) is
 * borrowed and not modified. res may be NULL. Errors: CS_EINVAL (bad parameters, empty matrix,
 * non-finite H, naming the element), CS_ENOMEM. A non-positive-definite H is not an error (see
 * above). */
cs_rc cs_gptq_quantize(float *w, size_t rows, size_t cols, const float *h, const cs_gptq_params *p,
                       cs_gptq_result *res, cs_err *err);

/* The shared preparation of GPTQ and SparseGPT: u (cols x cols, f32) = upper Cholesky factor of
 * (hd + damp I)^-1 computed by `method`, damp = percdamp * mean(diag(hd)), retrying with percdamp
 * += damp_step up to damp_max. hd (cols x cols double, dead columns already fixed) is borrowed.
 * Fills res->percdamp, damp, retries. Returns CS_ENUMERIC when every damping failed (u is then the
 * identity), CS_ENOMEM. */
cs_rc cs_gptq_hinv(float *u, const double *hd, size_t cols, double percdamp, double damp_step,
                   double damp_max, cs_gptq_hinv_method method, cs_gptq_result *res, cs_err *err);

#endif
