/* cs_half.h - IEEE 754 binary16 ("fp16", ggml_half) conversions, bit exact.
 *
 * llama.cpp stores the block scales of Q4_0, Q5_0 and Q4_K as fp16 (GGML_FP32_TO_FP16: F16C's
 * _cvtss_sh with round to nearest even, or the equivalent bit trick), so simulated llama.cpp
 * quantization rounds them the same way. cs_half_from_f32 rounds to nearest, ties to even, with
 * subnormal halves, overflow to infinity (|f| >= 65520) and NaN kept a NaN; cs_half_to_f32 is
 * exact. Pure functions: no allocation, no globals.
 */
#ifndef CS_WORKER_QUANT_CS_HALF_H
#define CS_WORKER_QUANT_CS_HALF_H

#include <stdint.h>

/* The binary16 nearest to f (ties to the even significand). */
uint16_t cs_half_from_f32(float f);

/* The value of the binary16 h, exactly. */
float cs_half_to_f32(uint16_t h);

/* cs_half_to_f32(cs_half_from_f32(f)): f rounded to the nearest binary16 value. */
float cs_half_round(float f);

#endif
