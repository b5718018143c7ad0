/* cs_hessian.h - streamed calibration statistics of one linear's input X (tokens x cols):
 * the GPTQ/SparseGPT Hessian S = sum x x^T accumulated in double with SYRK (H = 2S/n, section 2),
 * and per-column statistics (max|x|, sum|x|, sum x^2, min, max) for SmoothQuant, AWQ and Wanda.
 * Memory is bounded: cols^2 doubles plus a fixed batch buffer, whatever the number of tokens.
 * Not thread-safe: one accumulator per thread or a caller lock.
 */
#ifndef CS_WORKER_QUANT_CS_HESSIAN_H
#define CS_WORKER_QUANT_CS_HESSIAN_H

#include <stddef.h>

#include "cs_err.h"

typedef struct cs_hessian cs_hessian;

/* cs_hessian_add converts and adds its rows in batches of this many, in order: rows added in
 * calls of a multiple of it sum exactly as in one call. */
#define CS_HESSIAN_BATCH_ROWS 256

/* Returns CS_OK and an owned accumulator (free with cs_hessian_destroy); CS_EINVAL if cols == 0,
 * CS_ENOMEM. */
cs_rc cs_hessian_create(cs_hessian **out, size_t cols, cs_err *err);
void cs_hessian_destroy(cs_hessian *h); /* NULL-safe */

/* Adds the rows of x (rows x cols, row-major; borrowed) to S. Exclude padding tokens before the
 * call. CS_EINVAL if a value is not finite (names the row and column); S is then unchanged. */
cs_rc cs_hessian_add(cs_hessian *h, const float *x, size_t rows, cs_err *err);

size_t cs_hessian_cols(const cs_hessian *h);
size_t cs_hessian_count(const cs_hessian *h); /* tokens added so far */

/* out (cols x cols, full symmetric, row-major) = 2 S / n in float. CS_ESTATE if no token yet. */
cs_rc cs_hessian_get(const cs_hessian *h, float *out, cs_err *err);

/* sum_t x_tj^2 for each column j (the diagonal of S), into out[cols] (double). */
void cs_hessian_diag(const cs_hessian *h, double *out);

/* ---- per-column statistics ---------------------------------------------------------------- */

/* Plain value type; init with cs_actstats_init (allocates), free with cs_actstats_fini. */
typedef struct cs_actstats {
    size_t cols;
    size_t n;        /* tokens seen */
    float *absmax;   /* [cols] max_t |x_tj| (SmoothQuant act_max) */
    float *min;      /* [cols] min_t x_tj (llm-compressor range) */
    float *max;      /* [cols] max_t x_tj */
    double *sum_abs; /* [cols] sum_t |x_tj| (AWQ x_mean = sum_abs / n) */
    double *sum_sq;  /* [cols] sum_t x_tj^2 (Wanda n_j) */
} cs_actstats;

cs_rc cs_actstats_init(cs_actstats *s, size_t cols, cs_err *err);
void cs_actstats_fini(cs_actstats *s); /* NULL-safe, leaves s zeroed */
/* Adds rows x (rows x cols). CS_EINVAL on a non-finite value (stats then partly updated). */
cs_rc cs_actstats_add(cs_actstats *s, const float *x, size_t rows, cs_err *err);

#endif
