/* quant_quantizer_test.c - the quantizer families, RTN and per-token activation quantization
 * (docs/specs/ptq-algorithms.md sections 0, 1, 4): round half to even, all-zero groups, levels in
 * range, error bound, group boundaries, the references' quirks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_quantizer.h"
#include "cs_test.h"

static const cs_qfamily families[] = {CS_QF_GPTQ, CS_QF_AWQ, CS_QF_SQ, CS_QF_CT};

static void test_half_to_even(void **state)
{
    (void)state;
    /* Q-AWQ asym on [0, 15] at 4 bits: scale 1, zero 0; 2.5 -> 2 and 3.5 -> 4 (roundf: 3, 4). */
    const float x[] = {0.0f, 15.0f, 2.5f, 3.5f, 6.5f, 0.5f};
    const cs_qspec q = {.family = CS_QF_AWQ, .bits = 4, .sym = false};
    cs_qparam p;
    cs_qparam_find(&p, &q, x, 6);
    assert_true(p.scale == 1.0f && p.zero == 0.0f);
    assert_true(cs_qparam_apply(&p, 2.5f) == 2.0f);
    assert_true(cs_qparam_apply(&p, 3.5f) == 4.0f);
    assert_true(cs_qparam_apply(&p, 6.5f) == 6.0f);
    assert_true(cs_qparam_apply(&p, 0.5f) == 0.0f);
    /* Q-GPTQ asym, 2 bits on [-2.5, 0.5]: scale 1, zero = round(2.5) = 2 (roundf: 3) */
    const float y[] = {-2.5f, 0.5f};
    const cs_qspec g = {.family = CS_QF_GPTQ, .bits = 2, .sym = false};
    cs_qparam_find(&p, &g, y, 2);
    assert_true(p.scale == 1.0f && p.zero == 2.0f);
}

static void test_gptq_sym_quirks(void **state)
{
    (void)state;
    const cs_qspec q = {.family = CS_QF_GPTQ, .bits = 4, .sym = true};
    cs_qparam p;
    /* +absmax lands on 7.5, rounds to 8, clamps to 7: levels -8..7 x scale, scale = 2 absmax/15 */
    const float x[] = {-7.5f, 0.25f, 7.5f};
    cs_qparam_find(&p, &q, x, 3);
    assert_true(p.scale == 1.0f && p.zero == 8.0f);
    assert_true(cs_qparam_apply(&p, 7.5f) == 7.0f);
    assert_true(cs_qparam_apply(&p, -7.5f) == -8.0f);
    /* no negative value: xmin stays 0, zero = 8, values above 7/15 xmax are clipped */
    const float y[] = {0.0f, 0.3f, 0.9f, 1.5f};
    cs_qparam_find(&p, &q, y, 4);
    assert_true(p.scale == 1.5f / 15.0f && p.zero == 8.0f);
    assert_true(cs_qparam_apply(&p, 1.5f) == p.scale * 7.0f);
    assert_true(cs_qparam_apply(&p, 0.9f) == p.scale * 7.0f);
}

static void test_all_zero_group(void **state)
{
    (void)state;
    const float z[8] = {0};
    for (size_t f = 0; f < 4; f++) {
        for (int s = 0; s < 2; s++) {
            const cs_qspec q = {.family = families[f], .bits = 4, .sym = s || f == CS_QF_SQ};
            cs_qparam p;
            cs_qparam_find(&p, &q, z, 8);
            assert_true(p.scale > 0.0f && isfinite(p.scale));
            assert_true(cs_qparam_apply(&p, 0.0f) == 0.0f);
            float w[16] = {0};
            w[8] = 1.0f; /* second row has one value */
            assert_int_equal(cs_quant_rtn(w, 2, 8, &q, 4, NULL), CS_OK);
            for (size_t i = 0; i < 8; i++) {
                assert_true(w[i] == 0.0f);
            }
            assert_true(w[12] == 0.0f && w[15] == 0.0f); /* the all-zero second group */
        }
    }
}

static void test_levels_and_error_bound(void **state)
{
    (void)state;
    float x[64];
    for (uint64_t seed = 1; seed <= 20; seed++) {
        cs_fill_normal(x, 64, 1.0f + (float)seed, seed);
        if (seed % 3 == 0) {
            for (size_t i = 0; i < 64; i++) {
                x[i] = fabsf(x[i]); /* one-signed slices */
            }
        }
        for (size_t f = 0; f < 4; f++) {
            for (int bits = 2; bits <= 8; bits++) {
                for (int s = 0; s < 2; s++) {
                    const cs_qspec q = {.family = families[f], .bits = bits, .sym = s || f == 2};
                    assert_int_equal(cs_qspec_check(&q, NULL), CS_OK);
                    cs_qparam p;
                    cs_qparam_find(&p, &q, x, 64);
                    /* the representable range */
                    const float lo = (p.qmin - p.zero) * p.scale, hi = (p.qmax - p.zero) * p.scale;
                    for (size_t i = 0; i < 64; i++) {
                        const float lv = cs_qparam_level(&p, x[i]);
                        assert_true(lv == floorf(lv) && lv >= p.qmin && lv <= p.qmax);
                        const float dq = cs_qparam_apply(&p, x[i]);
                        if (x[i] >= lo && x[i] <= hi) {
                            assert_true(fabsf(dq - x[i]) <= p.scale * 0.5f * (1.0f + 1e-5f));
                        }
                    }
                }
            }
        }
    }
}

static void test_group_boundaries(void **state)
{
    (void)state;
    enum { R = 3, C = 10, G = 4 };
    float w[R * C], ref[R * C];
    cs_fill_normal(w, R * C, 1.0f, 7);
    for (size_t r = 0; r < R; r++) {
        w[r * C + 9] = 50.0f; /* an outlier only in the last (short) group */
    }
    memcpy(ref, w, sizeof(w));
    const cs_qspec q = {.family = CS_QF_GPTQ, .bits = 3, .sym = false};
    assert_int_equal(cs_quant_rtn(w, R, C, &q, G, NULL), CS_OK);
    for (size_t r = 0; r < R; r++) {
        for (size_t c0 = 0; c0 < C; c0 += G) {
            const size_t n = C - c0 < G ? C - c0 : G;
            cs_qparam p;
            cs_qparam_find(&p, &q, ref + r * C + c0, n);
            for (size_t j = 0; j < n; j++) {
                assert_true(w[r * C + c0 + j] == cs_qparam_apply(&p, ref[r * C + c0 + j]));
            }
        }
        /* the outlier does not leak into the first groups: their error stays small */
        assert_true(fabsf(w[r * C + 1] - ref[r * C + 1]) < 1.0f);
    }
}

static void test_sq_absmax_maps_to_127(void **state)
{
    (void)state;
    enum { T = 5, C = 33 };
    float x[T * C], y[T * C];
    cs_fill_normal(x, T * C, 3.0f, 11);
    memcpy(y, x, sizeof(x));
    const cs_qspec q = {.family = CS_QF_SQ, .bits = 8, .sym = true};
    assert_int_equal(cs_quant_act_per_token(y, T, C, &q, NULL), CS_OK);
    for (size_t t = 0; t < T; t++) {
        size_t jm = 0;
        for (size_t j = 1; j < C; j++) {
            jm = fabsf(x[t * C + j]) > fabsf(x[t * C + jm]) ? j : jm;
        }
        cs_qparam p;
        cs_qparam_find(&p, &q, x + t * C, C);
        assert_true(fabsf(cs_qparam_level(&p, x[t * C + jm])) == 127.0f);
        assert_true(fabsf(p.scale * 127.0f - fabsf(x[t * C + jm])) <= 1e-6f * fabsf(x[t * C + jm]));
        assert_true(y[t * C + jm] == cs_qparam_apply(&p, x[t * C + jm]));
    }
    /* compressed-tensors divides by 127.5 and keeps -128 */
    const cs_qspec ct = {.family = CS_QF_CT, .bits = 8, .sym = true};
    const float v[] = {-127.5f, 1.0f};
    cs_qparam p;
    cs_qparam_find(&p, &ct, v, 2);
    assert_true(p.scale == 1.0f);
    assert_true(cs_qparam_level(&p, -127.5f) == -128.0f);
    assert_true(cs_qparam_level(&p, 127.5f) == 127.0f);
}

static void test_presets_and_errors(void **state)
{
    (void)state;
    cs_qspec q = {.bits = 3};
    size_t g = 99;
    cs_err err = {0};
    assert_int_equal(cs_quant_rtn_preset("gptq-nearest", &q, &g, NULL), CS_OK);
    assert_true(q.family == CS_QF_GPTQ && !q.sym && q.bits == 3 && g == 0);
    assert_int_equal(cs_quant_rtn_preset("awq-g128", &q, &g, NULL), CS_OK);
    assert_true(q.family == CS_QF_AWQ && !q.sym && g == 128);
    assert_int_equal(cs_quant_rtn_preset("nope", &q, &g, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "nope"));
    q = (cs_qspec){.family = CS_QF_GPTQ, .bits = 9};
    assert_int_equal(cs_qspec_check(&q, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "bits"));
    q = (cs_qspec){.family = CS_QF_SQ, .bits = 8, .sym = false};
    assert_int_equal(cs_qspec_check(&q, &err), CS_EINVAL);
    float w[4] = {0};
    q = (cs_qspec){.family = CS_QF_GPTQ, .bits = 4};
    assert_int_equal(cs_quant_rtn(w, 0, 4, &q, 0, &err), CS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_half_to_even),
            cmocka_unit_test(test_gptq_sym_quirks),
            cmocka_unit_test(test_all_zero_group),
            cmocka_unit_test(test_levels_and_error_bound),
            cmocka_unit_test(test_group_boundaries),
            cmocka_unit_test(test_sq_absmax_maps_to_127),
            cmocka_unit_test(test_presets_and_errors),
    };
    return CS_RUN_TESTS(tests);
}
