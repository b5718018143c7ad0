/* cs_imatrix.h - llama.cpp's importance-matrix quantization of one linear layer, simulated
 * (docs/specs/ptq-algorithms.md section 7; ggml-quants.c quantize_q4_0 / quantize_q5_0 /
 * quantize_q4_K with and without quant_weights, read for the facts, written for calsweep).
 *
 * The importance of input column j is imp[j] = sum_t x_tj^2 / count over the calibration tokens
 * (cs_imatrix_acc). Each weight row x (cols values) is quantized on its own:
 *   Q4_0 / Q5_0 (blocks of 32, nmax = 8 / 16): sigma2 = sum x^2 / cols over the whole row, weights
 *     w_i = imp[i] * sqrt(sigma2 + x_i^2); make_qx_quants: max = the signed element of largest
 *     |x|; the first candidate iscale = -nmax/max, then -(nmax + 0.1 k)/max for k = -9..9 (k != 0);
 *     each gives levels L = clamp(round(iscale x), -nmax, nmax-1) and the weighted least-squares
 *     scale sum w x L / sum w L^2; the candidate with the largest (sum w x L)^2 / sum w L^2 is
 *     kept. d is stored in fp16; value = fp16(d) * L.
 *   Q4_K (super-blocks of 256 = 8 sub-blocks of 32): sigma2 = 2 sum x^2 / 256 per super-block,
 *     the same weights; make_qkx3_quants(15 levels, rmin -0.9, step 0.05, 36 steps): a weighted
 *     least-squares fit of scale and min per sub-block; the 8 scales and the 8 mins are quantized
 *     to 6 bits by make_qp_quants, weighted by each sub-block's sum of weights; the super-block d
 *     and dmin are fp16; the levels are recomputed from the stored scales,
 *     L = clamp(round((x + dmin m_j) / (d sc_j)), 0, 15); value = (d sc_j) L - dmin m_j.
 *   Without an importance matrix (imp == NULL) llama.cpp's own paths: Q4_0 d = max / -8 and
 *     L = min(15, trunc(x/d + 8.5)) - 8 (x * (1/d), as ggml), Q5_0 likewise with 16, Q4_K the
 *     make_qkx2_quants fit (weights av_x + |x|, rmin -1, step 0.1, 20 steps) with 6-bit scales
 *     63 / max.
 * Every float operation is done in float, in ggml's order, rounding half to even (ggml's
 * nearest_int), so results equal llama.cpp's bit for bit on IEEE hosts without contraction
 * (tests/ref/make_imatrix_refs.py; ggml's nearest_int is the same bit trick, so even levels
 * beyond the +-2^22 that ggml asserts come out alike). Degenerate blocks follow ggml: an all-zero
 * block gives d = 0 and zeros; a block whose importances are all zero gets d = 0 and decodes to
 * zeros; without an imatrix, a block whose max |x| is below 2^-125 (1/d overflows in ggml's Q4_0
 * and Q5_0) decodes to zeros, whose sign may differ from ggml's.
 * (Also compared once, outside the tests, with ggml's own quantize_* / dequantize_row_* built
 * without FMA contraction: identical on random and testbed weights. A build that contracts
 * a*b + c into FMA, e.g. ggml with -march=native, picks other candidates on a few rows in a
 * hundred.) No globals, no I/O; only the accumulator and cs_imatrix_quantize allocate.
 */
#ifndef CS_WORKER_QUANT_CS_IMATRIX_H
#define CS_WORKER_QUANT_CS_IMATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

typedef enum cs_imx_type {
    CS_IMX_Q4_0 = 0,
    CS_IMX_Q5_0 = 1, /* llama.cpp's fallback of Q4_K for widths that are not a multiple of 256 */
    CS_IMX_Q4_K = 2,
} cs_imx_type;

/* "q4_0", "q5_0", "q4_k"; "?" for an unknown value. */
const char *cs_imatrix_type_name(cs_imx_type t);

/* Values per block: 32 (Q4_0, Q5_0) or 256 (Q4_K super-block); 0 for an unknown type. */
size_t cs_imatrix_block_size(cs_imx_type t);

/* ---- collection ---------------------------------------------------------------------------- */

/* Plain value type: per-column sum of squares of one linear's input over the tokens seen, in
 * double (llama.cpp sums in float). Init with cs_imatrix_acc_init, free with cs_imatrix_acc_fini.
 * Not thread-safe. */
typedef struct cs_imatrix_acc {
    size_t cols;
    size_t count; /* tokens (rows) added */
    double *sum2; /* [cols] sum_t x_tj^2 */
} cs_imatrix_acc;

/* CS_EINVAL for cols == 0, CS_ENOMEM. */
cs_rc cs_imatrix_acc_init(cs_imatrix_acc *a, size_t cols, cs_err *err);
void cs_imatrix_acc_fini(cs_imatrix_acc *a); /* NULL-safe, leaves a zeroed */

/* Adds the rows r of x (rows x a->cols, borrowed) with valid == NULL or valid[r] != 0 (padding
 * rows are skipped). CS_EINVAL on a non-finite value (names the row and column; a is then
 * unchanged). */
cs_rc cs_imatrix_acc_add(cs_imatrix_acc *a, const float *x, size_t rows, const uint8_t *valid,
                         cs_err *err);

/* imp[j] = (float)(sum2[j] / count) for j < cols. CS_ESTATE if no token was added. */
cs_rc cs_imatrix_acc_get(const cs_imatrix_acc *a, float *imp, cs_err *err);

/* ---- blocks ---------------------------------------------------------------------------------- */

/* A Q4_0 or Q5_0 block: value i = cs_half_to_f32(d) * q[i], q in [-nmax, nmax-1]. */
typedef struct cs_imx_qx0 {
    uint16_t d; /* fp16 bits */
    int8_t q[32];
} cs_imx_qx0;

/* A Q4_K super-block as ggml stores it, except that the 4-bit levels are not packed. */
typedef struct cs_imx_q4k {
    uint16_t d, dmin;   /* fp16 bits */
    uint8_t scales[12]; /* 8 six-bit scales and 8 six-bit mins, ggml's packing */
    uint8_t q[256];     /* levels 0..15 */
} cs_imx_q4k;

/* The six-bit scale and min of sub-block j (0..7) of b (ggml's get_scale_min_k4). */
void cs_imatrix_q4k_scale_min(const cs_imx_q4k *b, int j, uint8_t *sc, uint8_t *m);

/* make_qx_quants(32, nmax, x, L, rmse_type 1, w): q[32] receives the signed levels (an all-zero
 * block: -nmax, with scale 0); returns the scale in float, before fp16 rounding. nmax is 8 or 16.
 * w == NULL is not allowed (the plain path does not search). */
float cs_imatrix_qx0_search(int8_t *q, const float *x, const float *w, int nmax);

/* Encodes one row x[cols] (cols % block == 0) as type t with importance imp[cols] (NULL: the
 * path without an imatrix) into blocks (cols / block of cs_imx_qx0 for Q4_0/Q5_0, cs_imx_q4k for
 * Q4_K). CS_EINVAL names a width that is not a multiple of the block, an unknown type, a
 * non-finite weight or an importance that is negative or not finite. */
cs_rc cs_imatrix_encode_row(void *blocks, const float *x, size_t cols, cs_imx_type t,
                            const float *imp, cs_err *err);

/* Decodes blocks of type t into out[cols], as ggml's dequantize_row_*. */
void cs_imatrix_decode_row(float *out, const void *blocks, size_t cols, cs_imx_type t);

/* Simulated quantization of w (rows x cols, row-major) in place: every row encoded as above and
 * decoded. imp[cols] (borrowed) or NULL. Allocates one row of blocks and one row of floats.
 * Errors: those of cs_imatrix_encode_row, checked before anything is written; CS_ERANGE for a row
 * that decodes to a non-finite value (llama.cpp would store infinite scales: weights of magnitude
 * beyond about 4.6e5 for Q4_0), with the rows before it already quantized; CS_ENOMEM. */
cs_rc cs_imatrix_quantize(float *w, size_t rows, size_t cols, cs_imx_type t, const float *imp,
                          cs_err *err);

#endif
