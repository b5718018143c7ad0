/* cs_quantizer.h - the fake-quantizer families of the PTQ references, RTN, and per-token dynamic
 * activation quantization (docs/specs/ptq-algorithms.md sections 0, 1 and 4).
 *
 * Every function returns the DEQUANTIZED value (simulated quantization). Rounding is round half
 * to even (rintf under the default FE_TONEAREST), as torch.round, and x/scale is a division, so
 * results match the references bit for bit. Families:
 *   CS_QF_GPTQ  IST-DASLab quant.py: range forced to contain 0; sym: zero = (maxq+1)/2, levels
 *               0..maxq; an all-zero slice uses the range [-1, 1].
 *   CS_QF_AWQ   pseudo_quantize_tensor: asym (zero_point, default): range min..max not forced to
 *               contain 0, scale = max(mx-mn, 1e-5)/maxq; sym: scale =
 * max(absmax,1e-5)/(2^(b-1)-1), levels -2^(b-1)..2^(b-1)-1. CS_QF_SQ    smoothquant fake_quant.py:
 * symmetric only, scale = max(absmax,1e-5)/(2^(b-1)-1). CS_QF_CT    compressed-tensors: range
 * contains 0, signed levels -2^(b-1)..2^(b-1)-1; sym: scale = absmax/((qmax-qmin)/2) (127.5 at 8
 * bits); asym: scale = (max-min)/(qmax-qmin), zp = clamp(qmin - round(min/scale)); a zero scale
 * becomes FLT_EPSILON. Pure functions: no allocation, no globals, no I/O.
 */
#ifndef CS_WORKER_QUANT_CS_QUANTIZER_H
#define CS_WORKER_QUANT_CS_QUANTIZER_H

#include <stdbool.h>
#include <stddef.h>

#include "cs_err.h"

typedef enum cs_qfamily {
    CS_QF_GPTQ = 0,
    CS_QF_AWQ = 1,
    CS_QF_SQ = 2,
    CS_QF_CT = 3,
} cs_qfamily;

/* What to quantize to: family, bits (2..8) and symmetry (CS_QF_SQ requires sym). */
typedef struct cs_qspec {
    cs_qfamily family;
    int bits;
    bool sym;
} cs_qspec;

/* The parameters of one slice (a row or a group of a row). Dequantized value:
 * (clamp(round(x/scale) + zero, qmin, qmax) - zero) * scale (CS_QF_CT: round(x/scale + zero)). */
typedef struct cs_qparam {
    float scale;
    float zero;
    float qmin;
    float qmax;
    cs_qfamily family;
} cs_qparam;

/* CS_OK if q is valid (known family, 2 <= bits <= 8, SQ symmetric); else CS_EINVAL naming it. */
cs_rc cs_qspec_check(const cs_qspec *q, cs_err *err);

/* Parameters of the slice x[0..n) (n >= 1) under q. Pure; cannot fail for a checked q. */
void cs_qparam_find(cs_qparam *out, const cs_qspec *q, const float *x, size_t n);

/* Integer level of x (already clamped to [qmin, qmax]), as a float. */
float cs_qparam_level(const cs_qparam *p, float x);

/* Dequantized value of x. */
float cs_qparam_apply(const cs_qparam *p, float x);

/* Round to nearest: w (rows x cols, row-major) in place, parameters per row (group == 0) or per
 * group of `group` consecutive columns of a row (the last group may be shorter).
 * CS_EINVAL for a bad spec or empty matrix. */
cs_rc cs_quant_rtn(float *w, size_t rows, size_t cols, const cs_qspec *q, size_t group,
                   cs_err *err);

/* The named RTN baselines of section 1: "gptq-nearest" (Q-GPTQ, asym, per row; bits from the
 * caller) and "awq-g128" (Q-AWQ asym, group 128). Fills *q (keeping q->bits if already 2..8,
 * else 4) and *group; CS_EINVAL for an unknown name. */
cs_rc cs_quant_rtn_preset(const char *name, cs_qspec *q, size_t *group, cs_err *err);

/* Dynamic per-token activation fake-quantization (W8A8's "A8"): each row of x (tokens x cols) has
 * its own parameters from its own values, every call. Use CS_QF_SQ (smoothquant, /127) or
 * CS_QF_CT (llm-compressor, /127.5). CS_EINVAL for a bad spec. */
cs_rc cs_quant_act_per_token(float *x, size_t tokens, size_t cols, const cs_qspec *q, cs_err *err);

#endif
