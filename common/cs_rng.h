/* cs_rng.h - explicit-state pseudo-random numbers (docs/style.md R11): xoshiro256** seeded through
 * splitmix64. Every random choice in calsweep (k-means seeding, selectors, sampling, test fills)
 * takes a cs_rng so that a run replays from the seed stored with its job, never from the C
 * library's generator.
 */
#ifndef CS_COMMON_CS_RNG_H
#define CS_COMMON_CS_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct cs_rng {
    uint64_t s[4];
} cs_rng;

/* Any seed, 0 included, gives a valid state. */
void cs_rng_seed(cs_rng *r, uint64_t seed);

/* The next 64 bits of the stream. Inline: the paired bootstrap draws ~10^9 of them per table
 * (docs/results.md), and a call per draw was a fifth of its time. */
static inline uint64_t cs_rng_u64(cs_rng *r)
{
    uint64_t *s = r->s, x = s[1] * 5;
    uint64_t result = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}
/* Uniform in [0, 1) with 53 random bits. */
double cs_rng_uniform(cs_rng *r);
/* Uniform integer in [0, n); n == 0 returns 0. Unbiased (rejection). */
uint64_t cs_rng_below(cs_rng *r, uint64_t n);
/* Standard normal (Box-Muller, no cached second value, so the state alone defines the stream). */
double cs_rng_normal(cs_rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void cs_rng_shuffle(cs_rng *r, size_t *idx, size_t n);

#endif
