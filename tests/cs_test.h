/* cs_test.h - what every cmocka test includes: cmocka itself, float comparison with
 * atol + rtol*|ref| that reports the worst element, and seeded fills (docs/style.md R11, R19). */
#ifndef CS_TESTS_CS_TEST_H
#define CS_TESTS_CS_TEST_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "cs_rng.h"

/* Compares got[0..n) with ref[0..n) as |got-ref| <= atol + rtol*|ref|; on failure prints the index,
 * both values and the max difference, then fails the test. NaN never passes. */
static inline void cs_assert_close_at(const float *got, const float *ref, size_t n, double atol,
                                      double rtol, const char *file, int line)
{
    size_t worst = 0, bad = 0;
    double maxdiff = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d <= atol + rtol * fabs((double)ref[i]))) {
            if (bad == 0 || d > maxdiff || isnan(d)) {
                worst = i;
            }
            bad++;
        }
        if (d > maxdiff) {
            maxdiff = d;
        }
    }
    if (bad) {
        print_error("%zu of %zu values differ (atol %g, rtol %g); worst [%zu] got %.9g want %.9g;"
                    " max |diff| %.3g\n",
                    bad, n, atol, rtol, worst, (double)got[worst], (double)ref[worst], maxdiff);
        _fail(file, line);
    }
}
#define cs_assert_close(got, ref, n, atol, rtol) \
    cs_assert_close_at((got), (ref), (n), (atol), (rtol), __FILE__, __LINE__)

static inline void cs_assert_close_d_at(const double *got, const double *ref, size_t n, double atol,
                                        double rtol, const char *file, int line)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - ref[i]);
        if (!(d <= atol + rtol * fabs(ref[i]))) {
            print_error("[%zu] got %.17g want %.17g (|diff| %.3g, atol %g, rtol %g)\n", i, got[i],
                        ref[i], d, atol, rtol);
            _fail(file, line);
        }
    }
}
#define cs_assert_close_d(got, ref, n, atol, rtol) \
    cs_assert_close_d_at((got), (ref), (n), (atol), (rtol), __FILE__, __LINE__)

/* Fills x[0..n) with uniform values in [lo, hi) from seed. */
static inline void cs_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    cs_rng r;
    cs_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        x[i] = lo + (hi - lo) * (float)cs_rng_uniform(&r);
    }
}

/* Fills x[0..n) with N(0, std^2) values from seed. */
static inline void cs_fill_normal(float *x, size_t n, float std, uint64_t seed)
{
    cs_rng r;
    cs_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        x[i] = std * (float)cs_rng_normal(&r);
    }
}

/* Runs the group with TAP output; use as `return CS_RUN_TESTS(tests);` in main. */
#define CS_RUN_TESTS(tests) cmocka_run_group_tests(tests, NULL, NULL)

#endif
