/* cs_half.c - binary16 conversions by integer arithmetic on the bit patterns (cs_half.h). */
#include "cs_half.h"

#include <string.h>

uint16_t cs_half_from_f32(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    const uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;

    if (ax >= 0x7f800000u) { /* infinity, or NaN (quiet, top payload bits kept) */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0));
    }
    if (ax >= 0x477ff000u) { /* >= 65520 = 65504 + half an ulp: the tie goes to even, infinity */
        return (uint16_t)(sign | 0x7c00u);
    }
    if (ax < 0x38800000u) { /* below 2^-14: a subnormal half (units of 2^-24) or zero */
        if (ax <= 0x33000000u) {
            return sign; /* <= 2^-25, half a unit: rounds to zero (the tie to even 0) */
        }
        const uint32_t e = ax >> 23; /* 102..112 */
        const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - e; /* m * 2^(e-150) = (m >> shift) units of 2^-24 */
        const uint32_t half = 1u << (shift - 1u), rem = m & ((1u << shift) - 1u);
        uint32_t q = m >> shift;
        if (rem > half || (rem == half && (q & 1u))) {
            q++; /* may become 0x400, the smallest normal half: still the right encoding */
        }
        return (uint16_t)(sign | q);
    }
    /* normal: rebias the exponent (127 -> 15), keep 10 significand bits, round on the other 13 */
    uint32_t h = (ax >> 13) - ((127u - 15u) << 10);
    const uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) {
        h++; /* a carry into the exponent is the right result (below 65520: never infinity) */
    }
    return (uint16_t)(sign | h);
}

float cs_half_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t x;
    float f;
    if (e == 0x1fu) {
        x = sign | 0x7f800000u | (m << 13);
    } else if (e != 0) {
        x = sign | ((e + 112u) << 23) | (m << 13);
    } else if (m == 0) {
        x = sign;
    } else {
        f = (float)m * 0x1p-24f; /* subnormal: exact in float */
        return sign ? -f : f;
    }
    memcpy(&f, &x, sizeof(f));
    return f;
}

float cs_half_round(float f)
{
    return cs_half_to_f32(cs_half_from_f32(f));
}
