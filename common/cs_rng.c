/* cs_rng.c - xoshiro256** (Blackman and Vigna) with splitmix64 seeding. */
#include "cs_rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void cs_rng_seed(cs_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&x);
    }
}

double cs_rng_uniform(cs_rng *r)
{
    return (double)(cs_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t cs_rng_below(cs_rng *r, uint64_t n)
{
    uint64_t limit, x;
    if (n == 0) {
        return 0;
    }
    limit = UINT64_MAX - (UINT64_MAX % n);
    do {
        x = cs_rng_u64(r);
    } while (x >= limit);
    return x % n;
}

double cs_rng_normal(cs_rng *r)
{
    double u1, u2;
    do {
        u1 = cs_rng_uniform(r);
    } while (u1 <= 0.0);
    u2 = cs_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

void cs_rng_shuffle(cs_rng *r, size_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)cs_rng_below(r, i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
