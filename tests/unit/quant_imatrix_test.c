/* quant_imatrix_test.c - llama.cpp's importance-matrix quantization (cs_imatrix.h, cs_half.h,
 * the "imatrix" algorithm of cs_pipeline.h):
 *   - fp16: every half round-trips, the conversion equals a naive nearest-half search (ties to
 *     even) and numpy's float16 on the committed cases, and cs_half_to_f32 equals the loader's
 *     cs_f16_to_f32;
 *   - the dequantized Q4_0, Q5_0 and Q4_K weights, with and without an importance matrix, equal
 *     tests/ref/make_imatrix_refs.py's bit for bit (tests/data/imatrix);
 *   - the spec's test: with the imatrix, the weighted error of Q4_0 is at most RTN's (d = max/-8)
 *     up to the fp16 rounding of d, block by block; and without an imatrix Q4_0 is that RTN bit
 *     for bit (an all-ones importance is not: its weights are sqrt(sigma2 + x^2));
 *   - every value lies on its block's grid; all-zero blocks give zeros, never NaN; bad widths,
 *     importances and weights are refused with clear messages;
 *   - the accumulator equals a naive sum of squares and skips padding rows;
 *   - on tb-qwen the pipeline's collection equals a naive twin that runs every chunk alone
 *     through cs_model_forward, the quantized model equals cs_imatrix_quantize of the original
 *     weights with the collected importances (FP trajectory; Q4_K falls back to Q5_0 on the
 *     192-wide layers), every linear's imatrix-weighted error is below llama.cpp's Q4_0 without
 *     an imatrix, and the parameters parse and print as documented. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_half.h"
#include "cs_imatrix.h"
#include "cs_json.h"
#include "cs_model.h"
#include "cs_path.h"
#include "cs_pipeline.h"
#include "cs_safetensors.h"
#include "cs_source.h"
#include "cs_test.h"
#include "cs_tok.h"

static char *src_path(const char *rel)
{
    const char *root = getenv("CS_SOURCE_DIR");
    cs_buf b;
    cs_buf_init(&b);
    assert_int_equal(cs_buf_printf(&b, "%s/%s", root ? root : ".", rel), CS_OK);
    return cs_buf_take(&b);
}

static void check_rc(cs_rc rc, const cs_err *err)
{
    if (rc != CS_OK) {
        print_error("%s\n", err->msg);
    }
    assert_int_equal(rc, CS_OK);
}

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* ---- fp16 ------------------------------------------------------------------------------------ */

/* Naive twin: the nearest finite half by binary search over all of them in double (exact), ties
 * to the even significand; beyond 65504 + half an ulp, infinity. */
static uint16_t naive_half(float f, const double *pos)
{
    const double a = fabs((double)f);
    const uint16_t sign = signbit(f) ? 0x8000 : 0;
    if (a >= 65520.0) {
        return sign | 0x7c00;
    }
    size_t lo = 0, hi = 0x7bff; /* pos[lo] <= a < pos[hi] or a == pos[hi] */
    if (a >= pos[hi]) {
        return sign | 0x7bff;
    }
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (pos[mid] <= a) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    const double dl = a - pos[lo], dh = pos[hi] - a;
    size_t pick = dl < dh ? lo : dh < dl ? hi : (lo % 2 == 0 ? lo : hi);
    return (uint16_t)(sign | pick);
}

static void test_half(void **state)
{
    (void)state;
    double *pos = malloc(0x7c00 * sizeof(double));
    for (uint32_t h = 0; h < 0x7c00; h++) {
        pos[h] = (double)cs_half_to_f32((uint16_t)h);
        assert_true(h == 0 || pos[h] > pos[h - 1]); /* increasing: the search twin needs it */
    }
    assert_true(pos[1] == ldexp(1.0, -24) && pos[0x400] == ldexp(1.0, -14) &&
                pos[0x7bff] == 65504.0);
    size_t nan_ok = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        const float f = cs_half_to_f32((uint16_t)h);
        const float g = cs_f16_to_f32((uint16_t)h);
        if (isnan(f)) {
            assert_true(isnan(g) && isnan(cs_half_round(f)));
            nan_ok++;
            continue;
        }
        assert_int_equal(bits_of(f), bits_of(g));
        assert_int_equal(cs_half_from_f32(f), h); /* every half round-trips, -0 included */
    }
    assert_int_equal(nan_ok, 2 * 1023);
    /* ties to even, at both ends of the normal range and in the subnormals */
    assert_int_equal(cs_half_from_f32(1.0f + 0x1p-11f), 0x3c00);     /* tie, even below */
    assert_int_equal(cs_half_from_f32(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie, even above */
    assert_int_equal(cs_half_from_f32(0x1p-25f), 0x0000);            /* tie to 0 */
    assert_int_equal(cs_half_from_f32(nextafterf(0x1p-25f, 1.0f)), 0x0001);
    assert_int_equal(cs_half_from_f32(3 * 0x1p-25f), 0x0002); /* 1.5 units: even 2 */
    assert_int_equal(cs_half_from_f32(65519.996f), 0x7bff);
    assert_int_equal(cs_half_from_f32(65520.0f), 0x7c00);
    assert_int_equal(cs_half_from_f32(-INFINITY), 0xfc00);
    assert_true(isnan(cs_half_round(NAN)));
    /* random bit patterns and values near halves against the naive twin */
    cs_rng r;
    cs_rng_seed(&r, 16);
    size_t n = 0;
    for (int i = 0; i < 400000; i++) {
        float f = i % 2 ? from_bits((uint32_t)cs_rng_u64(&r))
                        : (float)((cs_rng_uniform(&r) - 0.5) *
                                  ldexp(1.0, (int)cs_rng_below(&r, 44) - 27));
        if (isnan(f) || isinf(f)) {
            continue;
        }
        uint16_t got = cs_half_from_f32(f), want = naive_half(f, pos);
        if (got != want) {
            fail_msg("half of %.9g (0x%08x): got 0x%04x, want 0x%04x", (double)f, bits_of(f), got,
                     want);
        }
        n++;
    }
    assert_true(n > 300000);
    free(pos);
}

/* ---- the references ---------------------------------------------------------------------- */

typedef struct refs {
    char dir[1024];
    cJSON *index;
} refs;

static void *load(const refs *r, const char *name, const char *dtype, size_t count)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(r->index, "arrays"), name);
    assert_non_null(a);
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(a, "file");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(a, "dtype");
    assert_true(cJSON_IsString(file) && cJSON_IsString(dt));
    assert_string_equal(dt->valuestring, dtype);
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", r->dir, file->valuestring);
    char *data = NULL;
    size_t len = 0;
    cs_err err = {0};
    check_rc(cs_path_read_file(path, 0, &data, &len, &err), &err);
    const size_t esz = strcmp(dtype, "u16") == 0 ? 2 : 4;
    if (count) {
        assert_int_equal(len, count * esz);
    }
    return data; /* little-endian, as the supported hosts */
}

static size_t array_len(const refs *r, const char *name)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(r->index, "arrays"), name);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(a, "shape"), *d;
    size_t n = 1;
    cJSON_ArrayForEach(d, shape)
    {
        n *= (size_t)d->valuedouble;
    }
    return n;
}

static size_t array_dim(const refs *r, const char *name, int k)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(r->index, "arrays"), name);
    return (size_t)cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(a, "shape"), k)->valuedouble;
}

static int setup(void **state)
{
    refs *r = calloc(1, sizeof(*r));
    const char *src = getenv("CS_SOURCE_DIR");
    snprintf(r->dir, sizeof(r->dir), "%s/tests/data/imatrix", src ? src : ".");
    char path[1100];
    snprintf(path, sizeof(path), "%s/index.json", r->dir);
    cs_err err = {0};
    if (cs_json_parse_file(path, 0, &r->index, &err) != CS_OK) {
        print_error("%s\n", err.msg);
        free(r);
        return -1;
    }
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    refs *r = *state;
    cJSON_Delete(r->index);
    free(r);
    return 0;
}

static void test_half_matches_numpy(void **state)
{
    refs *r = *state;
    size_t n = array_len(r, "half_in");
    uint32_t *in = load(r, "half_in", "u32", n);
    uint16_t *out = load(r, "half_out", "u16", n);
    for (size_t i = 0; i < n; i++) {
        uint16_t got = cs_half_from_f32(from_bits(in[i]));
        if (got != out[i]) {
            fail_msg("float 0x%08x: half 0x%04x, numpy 0x%04x", in[i], got, out[i]);
        }
    }
    print_message("# %zu float -> half conversions equal numpy's\n", n);
    free(in);
    free(out);
}

static void test_refs_match(void **state)
{
    refs *r = *state;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(r->index, "cases"), *c;
    size_t n_cases = 0;
    cJSON_ArrayForEach(c, cases)
    {
        const char *type = cJSON_GetObjectItemCaseSensitive(c, "type")->valuestring;
        const char *wname = cJSON_GetObjectItemCaseSensitive(c, "weights")->valuestring;
        const cJSON *iname = cJSON_GetObjectItemCaseSensitive(c, "importance");
        const char *out = cJSON_GetObjectItemCaseSensitive(c, "output")->valuestring;
        const size_t rows = array_dim(r, wname, 0), cols = array_dim(r, wname, 1);
        cs_imx_type t = strcmp(type, "q4_0") == 0   ? CS_IMX_Q4_0
                        : strcmp(type, "q5_0") == 0 ? CS_IMX_Q5_0
                                                    : CS_IMX_Q4_K;
        assert_string_equal(cs_imatrix_type_name(t), type);
        float *w = load(r, wname, "f32", rows * cols);
        float *imp = cJSON_IsString(iname) ? load(r, iname->valuestring, "f32", cols) : NULL;
        float *want = load(r, out, "f32", rows * cols);
        cs_err err = {0};
        check_rc(cs_imatrix_quantize(w, rows, cols, t, imp, &err), &err);
        size_t diff = 0;
        for (size_t i = 0; i < rows * cols; i++) {
            diff += bits_of(w[i]) != bits_of(want[i]);
        }
        print_message("# %-22s %zu x %zu: %zu values differ from the reference\n", out, rows, cols,
                      diff);
        assert_int_equal(diff, 0); /* no float tie differs on these inputs (bit for bit) */
        free(w);
        free(imp);
        free(want);
        n_cases++;
    }
    assert_int_equal(n_cases, 8);
}

/* ---- properties ------------------------------------------------------------------------------ */

/* Rows of normal weights with a few outliers, importances with outlier channels. */
static void fill_case(float *w, float *imp, size_t rows, size_t cols, uint64_t seed)
{
    cs_fill_normal(w, rows * cols, 0.04f, seed);
    cs_rng r;
    cs_rng_seed(&r, seed + 1);
    for (size_t i = 0; i < rows * cols / 97; i++) {
        w[cs_rng_below(&r, rows * cols)] *= 6.0f;
    }
    for (size_t j = 0; j < cols; j++) {
        double u = cs_rng_uniform(&r);
        imp[j] = (float)(u * u * 2.0 + 1e-3);
        if (cs_rng_below(&r, 40) == 0) {
            imp[j] *= 50.0f;
        }
    }
}

/* The weights of the Q4_0 search for row x: imp_j * sqrt(sigma2 + x_j^2), sigma2 = mean x^2. */
static void q40_weights(double *wt, const float *x, const float *imp, size_t cols)
{
    double s = 0.0;
    for (size_t j = 0; j < cols; j++) {
        s += (double)x[j] * x[j];
    }
    for (size_t j = 0; j < cols; j++) {
        wt[j] = (double)imp[j] * sqrt(s / (double)cols + (double)x[j] * x[j]);
    }
}

/* The spec's definition of Q4_0 without an imatrix: d = max/-8 (max: the signed element of
 * largest |x|, the first one), L = min(15, trunc(x * (1/d) + 8.5)) - 8, value = fp16(d) * L. */
static void rtn_q40_block(float *out, const float *x)
{
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < 32; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    const float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f, dh = cs_half_round(d);
    for (int i = 0; i < 32; i++) {
        int l = (int)(x[i] * id + 8.5f);
        out[i] = (float)((l > 15 ? 15 : l) - 8) * dh;
    }
}

static void test_q40_weighted_error_vs_rtn(void **state)
{
    (void)state;
    enum { R = 64, C = 512 };
    float *w = malloc(R * C * sizeof(float)), *imp = malloc(C * sizeof(float));
    float *qi = malloc(R * C * sizeof(float)), *qp = malloc(R * C * sizeof(float));
    float *ones = malloc(C * sizeof(float)), *q1 = malloc(R * C * sizeof(float));
    double *wt = malloc(C * sizeof(double)), *wt1 = malloc(C * sizeof(double));
    cs_err err = {0};
    fill_case(w, imp, R, C, 40);
    for (size_t j = 0; j < C; j++) {
        ones[j] = 1.0f;
    }
    memcpy(qi, w, R * C * sizeof(float));
    memcpy(qp, w, R * C * sizeof(float));
    memcpy(q1, w, R * C * sizeof(float));
    check_rc(cs_imatrix_quantize(qi, R, C, CS_IMX_Q4_0, imp, &err), &err);
    check_rc(cs_imatrix_quantize(qp, R, C, CS_IMX_Q4_0, NULL, &err), &err);
    check_rc(cs_imatrix_quantize(q1, R, C, CS_IMX_Q4_0, ones, &err), &err);
    double e_im = 0, e_rtn = 0, e_one = 0, e_one_rtn = 0;
    size_t blocks = 0, strictly = 0, ones_differ = 0;
    float rtn[32];
    for (size_t r = 0; r < R; r++) {
        const float *x = w + r * C;
        q40_weights(wt, x, imp, C);
        q40_weights(wt1, x, ones, C);
        for (size_t b = 0; b < C / 32; b++) {
            const size_t o = r * C + b * 32;
            rtn_q40_block(rtn, x + b * 32);
            /* without an imatrix: the RTN of the spec, bit for bit */
            for (int i = 0; i < 32; i++) {
                assert_int_equal(bits_of(qp[o + i]), bits_of(rtn[i]));
            }
            /* fp16 rounding of d moves a value v = d L by at most |L| |d| 2^-11 <= |v| 2^-10;
             * a term w (x - v)^2 then moves by at most w (2 |x - v| dv + dv^2) */
            double ei = 0, er = 0, slack = 0, e1 = 0, er1 = 0, slack1 = 0, swx2 = 0, swx2_1 = 0;
            for (int i = 0; i < 32; i++) {
                const size_t j = b * 32 + (size_t)i;
                const double xi = x[j];
                const double a = xi - qi[o + i], c = xi - rtn[i], a1 = xi - q1[o + i];
                const double dvi = fabs((double)qi[o + i]) * 0x1p-10;
                const double dvr = fabs((double)rtn[i]) * 0x1p-10;
                const double dv1 = fabs((double)q1[o + i]) * 0x1p-10;
                ei += wt[j] * a * a;
                er += wt[j] * c * c;
                e1 += wt1[j] * a1 * a1;
                er1 += wt1[j] * c * c;
                slack += wt[j] * (2 * fabs(a) * dvi + dvi * dvi + 2 * fabs(c) * dvr + dvr * dvr);
                slack1 += wt1[j] * (2 * fabs(a1) * dv1 + dv1 * dv1 + 2 * fabs(c) * dvr + dvr * dvr);
                swx2 += wt[j] * xi * xi;
                swx2_1 += wt1[j] * xi * xi;
                ones_differ += qp[o + i] != q1[o + i];
            }
            /* the search compares float scores: allow 1e-6 of sum w x^2 for their rounding */
            if (!(ei <= er + slack + 1e-6 * swx2)) {
                fail_msg("row %zu block %zu: weighted error %.9g > RTN's %.9g + fp16 slack %.3g", r,
                         b, ei, er, slack);
            }
            assert_true(e1 <= er1 + slack1 + 1e-6 * swx2_1); /* all-ones importance: the same */
            strictly += ei < er;
            e_im += ei;
            e_rtn += er;
            e_one += e1;
            e_one_rtn += er1;
            blocks++;
        }
    }
    print_message("# Q4_0 weighted error: imatrix %.6g, RTN %.6g (%.1f%%; %zu of %zu blocks "
                  "strictly lower); all-ones importance %.6g vs RTN %.6g, %zu values differ\n",
                  e_im, e_rtn, 100.0 * e_im / e_rtn, strictly, blocks, e_one, e_one_rtn,
                  ones_differ);
    assert_true(e_im < 0.9 * e_rtn);
    assert_true(strictly * 2 > blocks);
    assert_true(ones_differ > 0); /* an all-ones importance is not RTN (see the file comment) */
    free(w);
    free(imp);
    free(qi);
    free(qp);
    free(ones);
    free(q1);
    free(wt);
    free(wt1);
}

/* The search alone (before fp16): its weighted error is at most that of the first candidate's
 * levels at RTN's d = max/-8, the grid RTN uses away from ties. */
static void test_qx0_search_beats_its_first_candidate(void **state)
{
    (void)state;
    float x[32], w[32];
    int8_t q[32];
    cs_rng r;
    cs_rng_seed(&r, 77);
    for (int trial = 0; trial < 4000; trial++) {
        const int nmax = trial % 2 ? 16 : 8;
        for (int i = 0; i < 32; i++) {
            x[i] = (float)cs_rng_normal(&r) * (trial % 3 == 0 ? 1e-3f : 0.05f);
            w[i] = (float)(cs_rng_uniform(&r) * (cs_rng_below(&r, 10) == 0 ? 30.0 : 1.0));
        }
        const float d = cs_imatrix_qx0_search(q, x, w, nmax);
        float amax = 0, max = 0;
        for (int i = 0; i < 32; i++) {
            if (fabsf(x[i]) > amax) {
                amax = fabsf(x[i]);
                max = x[i];
            }
        }
        const float iscale = (float)-nmax / max, drtn = max / (float)-nmax;
        double e = 0, e0 = 0, sw = 0;
        for (int i = 0; i < 32; i++) {
            assert_true(q[i] >= -nmax && q[i] <= nmax - 1);
            float l0 = rintf(iscale * x[i]);
            l0 = l0 < -nmax ? (float)-nmax : l0 > nmax - 1 ? (float)(nmax - 1) : l0;
            e += w[i] * pow((double)x[i] - (double)d * q[i], 2);
            e0 += w[i] * pow((double)x[i] - (double)drtn * l0, 2);
            sw += w[i] * (double)x[i] * x[i];
        }
        if (!(e <= e0 + 1e-5 * sw)) {
            fail_msg("trial %d: search error %.9g > first candidate at d=max/-%d: %.9g", trial, e,
                     nmax, e0);
        }
    }
}

static void test_grids(void **state)
{
    (void)state;
    enum { C = 512 };
    float x[C], imp[C], out[C];
    cs_imx_qx0 b0[C / 32];
    cs_imx_q4k bk[C / 256];
    cs_err err = {0};
    for (int trial = 0; trial < 40; trial++) {
        fill_case(x, imp, 1, C, 100 + (uint64_t)trial);
        if (trial % 4 == 1) {
            memset(x + 32, 0, 64 * sizeof(float)); /* zero blocks */
        }
        const float *ip = trial % 2 ? imp : NULL;
        for (int t = 0; t < 2; t++) {
            const cs_imx_type ty = t ? CS_IMX_Q5_0 : CS_IMX_Q4_0;
            const int nmax = t ? 16 : 8;
            check_rc(cs_imatrix_encode_row(b0, x, C, ty, ip, &err), &err);
            cs_imatrix_decode_row(out, b0, C, ty);
            float row[C];
            memcpy(row, x, sizeof(row));
            check_rc(cs_imatrix_quantize(row, 1, C, ty, ip, &err), &err);
            for (size_t i = 0; i < C; i++) {
                const cs_imx_qx0 *b = &b0[i / 32];
                const int8_t q = b->q[i % 32];
                assert_true(q >= -nmax && q <= nmax - 1);
                assert_int_equal(bits_of(out[i]), bits_of((float)q * cs_half_to_f32(b->d)));
                assert_int_equal(bits_of(row[i]), bits_of(out[i]));
                assert_true(isfinite(out[i]));
            }
        }
        check_rc(cs_imatrix_encode_row(bk, x, C, CS_IMX_Q4_K, ip, &err), &err);
        cs_imatrix_decode_row(out, bk, C, CS_IMX_Q4_K);
        for (size_t s = 0; s < C / 256; s++) {
            const float d = cs_half_to_f32(bk[s].d), dmin = cs_half_to_f32(bk[s].dmin);
            assert_true(d >= 0.0f && dmin >= 0.0f);
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                cs_imatrix_q4k_scale_min(&bk[s], j, &sc, &m);
                assert_true(sc <= 63 && m <= 63);
                for (int l = 0; l < 32; l++) {
                    const size_t i = s * 256 + (size_t)j * 32 + (size_t)l;
                    const uint8_t q = bk[s].q[j * 32 + l];
                    assert_true(q <= 15);
                    const float v = (d * (float)sc) * (float)q - dmin * (float)m;
                    assert_int_equal(bits_of(out[i]), bits_of(v));
                }
            }
        }
    }
}

static void test_zero_and_degenerate(void **state)
{
    (void)state;
    enum { C = 256, R = 4 };
    float w[R * C], imp[C];
    cs_err err = {0};
    const cs_imx_type types[] = {CS_IMX_Q4_0, CS_IMX_Q5_0, CS_IMX_Q4_K};
    for (int t = 0; t < 3; t++) {
        for (int k = 0; k < 6; k++) {
            memset(w, 0, sizeof(w));
            for (size_t j = 0; j < C; j++) {
                imp[j] = k == 2 ? 0.0f : 1.0f + (float)j;
            }
            if (k == 1) { /* one row of tiny values, one constant row, one all-negative row */
                for (size_t j = 0; j < C; j++) {
                    w[C + j] = 1e-30f * (float)(j % 7);
                    w[2 * C + j] = 0.25f;
                    w[3 * C + j] = -0.01f * (float)(1 + j % 5);
                }
            }
            if (k == 3) {
                cs_fill_normal(w + C, C, 0.05f, 9);
            }
            if (k >= 4) { /* subnormal weights: ggml's 1/d overflows without an imatrix */
                for (size_t j = 0; j < C; j++) {
                    w[C + j] = 1e-40f * (float)((int)(j % 9) - 4);
                }
            }
            float before[R * C];
            memcpy(before, w, sizeof(w));
            check_rc(cs_imatrix_quantize(w, R, C, types[t], k == 0 || k == 4 ? NULL : imp, &err),
                     &err);
            for (size_t i = 0; i < R * C; i++) {
                assert_true(isfinite(w[i]));
                if ((before[i] == 0.0f && (k == 0 || i < C)) || k >= 4) {
                    assert_true(w[i] == 0.0f); /* an all-zero row stays zero (-0 allowed) */
                }
            }
            if (k == 2) {
                /* every importance 0: no fit has weight, the scales are 0 (as in ggml) */
                for (size_t i = 0; i < R * C; i++) {
                    assert_true(w[i] == 0.0f);
                }
            }
        }
    }
}

static void test_errors(void **state)
{
    (void)state;
    float w[2 * 192], imp[192];
    cs_err err = {0};
    cs_fill_normal(w, 2 * 192, 0.1f, 3);
    for (int j = 0; j < 192; j++) {
        imp[j] = 1.0f;
    }
    assert_int_equal(cs_imatrix_quantize(w, 1, 48, CS_IMX_Q4_0, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "q4_0 needs a row width that is a multiple of 32, got 48"));
    assert_int_equal(cs_imatrix_quantize(w, 2, 192, CS_IMX_Q4_K, imp, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "multiple of 256, got 192"));
    imp[3] = -1.0f;
    assert_int_equal(cs_imatrix_quantize(w, 2, 192, CS_IMX_Q4_0, imp, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "importance[3]"));
    imp[3] = NAN;
    assert_int_equal(cs_imatrix_quantize(w, 2, 192, CS_IMX_Q5_0, imp, &err), CS_EINVAL);
    imp[3] = 1.0f;
    float keep = w[192 + 5];
    w[192 + 5] = INFINITY;
    float copy[2 * 192];
    memcpy(copy, w, sizeof(copy));
    assert_int_equal(cs_imatrix_quantize(w, 2, 192, CS_IMX_Q4_0, imp, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "weight[1][5] is not finite"));
    assert_memory_equal(copy, w, sizeof(copy)); /* refused before any change */
    w[192 + 5] = keep;
    /* beyond the fp16 scales: llama.cpp would store an infinite d */
    w[192 + 7] = 1e6f;
    assert_int_equal(cs_imatrix_quantize(w, 2, 192, CS_IMX_Q4_0, NULL, &err), CS_ERANGE);
    assert_non_null(strstr(err.msg, "q4_0 of row 1 gives a non-finite value at column 0"));
    w[192 + 7] = 0.1f;
    assert_int_equal(cs_imatrix_quantize(w, 0, 192, CS_IMX_Q4_0, imp, &err), CS_EINVAL);
    assert_int_equal(cs_imatrix_quantize(w, 1, 192, (cs_imx_type)9, imp, &err), CS_EINVAL);
    assert_string_equal(cs_imatrix_type_name((cs_imx_type)9), "?");
}

static void test_accumulator(void **state)
{
    (void)state;
    enum { C = 40, N = 300 };
    float *x = malloc(N * C * sizeof(float));
    uint8_t valid[N];
    double naive[C] = {0};
    size_t cnt = 0;
    cs_fill_normal(x, N * C, 1.5f, 5);
    for (size_t r = 0; r < N; r++) {
        valid[r] = r % 7 != 3;
        if (valid[r]) {
            for (size_t j = 0; j < C; j++) {
                naive[j] += (double)x[r * C + j] * x[r * C + j];
            }
            cnt++;
        }
    }
    cs_imatrix_acc a;
    cs_err err = {0};
    float imp[C];
    check_rc(cs_imatrix_acc_init(&a, C, &err), &err);
    assert_int_equal(cs_imatrix_acc_get(&a, imp, &err), CS_ESTATE);
    check_rc(cs_imatrix_acc_add(&a, x, 100, valid, &err), &err);
    check_rc(cs_imatrix_acc_add(&a, x + 100 * C, N - 100, valid + 100, &err), &err);
    assert_int_equal(a.count, cnt);
    cs_assert_close_d(a.sum2, naive, C, 0, 1e-12);
    check_rc(cs_imatrix_acc_get(&a, imp, &err), &err);
    for (size_t j = 0; j < C; j++) {
        assert_true(imp[j] == (float)(naive[j] / (double)cnt));
    }
    x[7 * C + 2] = NAN;
    double before = a.sum2[0];
    assert_int_equal(cs_imatrix_acc_add(&a, x, N, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "input[7][2] is not finite"));
    assert_true(a.sum2[0] == before && a.count == cnt);
    cs_imatrix_acc_fini(&a);
    cs_imatrix_acc_fini(&a);
    assert_int_equal(cs_imatrix_acc_init(&a, 0, &err), CS_EINVAL);
    free(x);
}

/* ---- the pipeline on tb-qwen ---------------------------------------------------------------- */

#define N_CAL 6
#define T_CAL 100

static cs_model *load_qwen(void)
{
    char *dir = src_path("sweeps/testbed/models/tb-qwen");
    cs_model *m = NULL;
    cs_err err = {0};
    check_rc(cs_model_load(&m, dir, 2, &err), &err);
    free(dir);
    return m;
}

static int32_t *calib_tokens(void)
{
    char *tp = src_path("sweeps/testbed/models/tb-qwen/tokenizer.json");
    char *cp = src_path("sweeps/testbed/data/corpus/prose.jsonl");
    cs_tok *tok = NULL;
    cs_err err = {0};
    int32_t *stream = NULL, *out = NULL;
    size_t n = 0, *offs = NULL;
    check_rc(cs_tok_load(&tok, tp, &err), &err);
    cs_calib_source src = {.kind = "jsonl", .path = cp};
    check_rc(cs_calib_source_tokens(&src, tok, &stream, &n, &err), &err);
    check_rc(cs_calib_random_windows(stream, n, N_CAL, T_CAL, 1, &out, &offs, &err), &err);
    free(stream);
    free(offs);
    free(tp);
    free(cp);
    cs_tok_destroy(tok);
    return out;
}

typedef struct twin_ctx {
    size_t n_layers;
    double *sum2[64][CS_LIN_COUNT];
    size_t count;
} twin_ctx;

static cs_rc twin_hook(void *ctx, const cs_hook_event *ev, cs_err *err)
{
    (void)err;
    twin_ctx *c = ctx;
    if (ev->kind != CS_HOOK_LINEAR_IN) {
        return CS_OK;
    }
    for (size_t r = 0; r < ev->rows; r++) {
        for (size_t j = 0; j < ev->cols; j++) {
            c->sum2[ev->layer][ev->lin][j] +=
                    (double)ev->x[r * ev->cols + j] * ev->x[r * ev->cols + j];
        }
    }
    if (ev->layer == 0 && ev->lin == CS_LIN_Q) {
        c->count += ev->rows;
    }
    return CS_OK;
}

/* The twin: every chunk alone (B = 1, no padding) through the whole model's forward. */
static void twin_collect(cs_model *m, const int32_t *tok, size_t chunk, twin_ctx *c)
{
    cs_err err = {0};
    cs_hooks hooks = {.fn = twin_hook, .ctx = c, .mask = 1u << CS_HOOK_LINEAR_IN};
    memset(c, 0, sizeof(*c));
    c->n_layers = m->cfg.n_layers;
    assert_true(c->n_layers <= 64);
    for (size_t l = 0; l < c->n_layers; l++) {
        for (int k = 0; k < CS_LIN_COUNT; k++) {
            c->sum2[l][k] = calloc(m->layers[l].lin[k].in, sizeof(double));
        }
    }
    for (size_t s = 0; s < N_CAL; s++) {
        for (size_t t0 = 0; t0 < T_CAL; t0 += chunk) {
            size_t len = T_CAL - t0 < chunk ? T_CAL - t0 : chunk;
            if (len < 16) {
                continue;
            }
            check_rc(cs_model_forward(m, tok + s * T_CAL + t0, 1, len, NULL, NULL, &hooks, NULL,
                                      &err),
                     &err);
        }
    }
}

static void twin_free(twin_ctx *c)
{
    for (size_t l = 0; l < c->n_layers; l++) {
        for (int k = 0; k < CS_LIN_COUNT; k++) {
            free(c->sum2[l][k]);
        }
    }
}

static void test_collect_matches_twin(void **state)
{
    (void)state;
    cs_model *m = load_qwen();
    int32_t *tok = calib_tokens();
    cs_err err = {0};
    /* chunk 48: pieces 48, 48 and a 4-token tail (dropped); 40: 40, 40, 20 (kept); 512: whole */
    const size_t chunks[] = {48, 40, 512};
    const size_t want_count[] = {N_CAL * 96, N_CAL * 100, N_CAL * 100};
    for (int ci = 0; ci < 3; ci++) {
        float *imp = NULL;
        size_t n = 0, count = 0, off = 0;
        check_rc(cs_pipe_imatrix_collect(m, tok, N_CAL, T_CAL, chunks[ci], &imp, &n, &count, &err),
                 &err);
        assert_int_equal(count, want_count[ci]);
        twin_ctx tw;
        twin_collect(m, tok, chunks[ci], &tw);
        assert_int_equal(tw.count, count);
        double worst = 0;
        for (size_t l = 0; l < m->cfg.n_layers; l++) {
            const cs_layer *ly = &m->layers[l];
            const float *q = imp + off;
            for (int k = 0; k < CS_LIN_COUNT; k++) {
                const size_t in = ly->lin[k].in;
                const float *e = imp + off;
                for (size_t j = 0; j < in; j++) {
                    const double want = tw.sum2[l][k][j] / (double)tw.count;
                    const double d = fabs((double)e[j] - want);
                    worst = fmax(worst, d / (want + 1e-30));
                    if (!(d <= 1e-4 * want + 1e-12)) {
                        fail_msg("chunk %zu layers.%zu.%s[%zu]: %.9g, twin %.9g", chunks[ci], l,
                                 cs_lin_name((cs_lin)k), j, (double)e[j], want);
                    }
                }
                /* q, k, v share their input, as do gate and up: identical entries */
                if (k == CS_LIN_K || k == CS_LIN_V) {
                    assert_memory_equal(e, q, in * sizeof(float));
                }
                if (k == CS_LIN_UP) {
                    assert_memory_equal(e, e - ly->lin[CS_LIN_GATE].in, in * sizeof(float));
                }
                off += in;
            }
        }
        assert_int_equal(off, n);
        print_message("# chunk %zu: %zu tokens, max relative difference to the twin %.2g\n",
                      chunks[ci], count, worst);
        twin_free(&tw);
        free(imp);
    }
    /* no chunk of 16 tokens */
    float *imp = NULL;
    size_t n = 0, count = 0;
    assert_int_equal(cs_pipe_imatrix_collect(m, tok, N_CAL, 12, 512, &imp, &n, &count, &err),
                     CS_EINVAL);
    assert_non_null(strstr(err.msg, "no chunk of at least 16 tokens"));
    assert_null(imp);
    free(tok);
    cs_model_destroy(m);
}

static cJSON *algo(const char *json)
{
    cJSON *a = cJSON_Parse(json);
    assert_non_null(a);
    return a;
}

static void test_pipeline_equals_layerwise(void **state)
{
    (void)state;
    cs_model *m0 = load_qwen();
    int32_t *tok = calib_tokens();
    cs_err err = {0};
    float *imp = NULL;
    size_t n = 0, count = 0;
    check_rc(cs_pipe_imatrix_collect(m0, tok, N_CAL, T_CAL, 64, &imp, &n, &count, &err), &err);
    const char *types[] = {"q4_0", "q4_k"};
    for (int ti = 0; ti < 2; ti++) {
        char js[128];
        snprintf(js, sizeof(js), "{\"name\":\"imatrix\",\"type\":\"%s\",\"chunk\":64}", types[ti]);
        cJSON *a = algo(js);
        cs_pipe_params p;
        check_rc(cs_pipe_params_from_json(&p, a, &err), &err);
        cJSON_Delete(a);
        assert_true(cs_pipe_needs_calib(&p) && p.fp_trajectory);
        cs_model *m = load_qwen();
        cs_pipe_report rep;
        check_rc(cs_pipe_quantize(m, tok, N_CAL, T_CAL, &p, NULL, NULL, &rep, &err), &err);
        assert_int_equal(cJSON_GetArraySize(rep.layers), (int)(m->cfg.n_layers * CS_LIN_COUNT));
        assert_true(rep.t.imatrix > 0 && rep.t.stats > 0 && rep.t.forward > 0);
        assert_true(rep.t.solve == 0 && rep.t.rtn == 0);
        size_t off = 0, n_fallback = 0, n_better = 0;
        const cJSON *rec = rep.layers->child;
        double loss_sum = 0, worst = 0;
        for (size_t l = 0; l < m->cfg.n_layers; l++) {
            for (int k = 0; k < CS_LIN_COUNT; k++, rec = rec->next) {
                const cs_linear *orig = &m0->layers[l].lin[k], *got = &m->layers[l].lin[k];
                const size_t sz = orig->out * orig->in;
                cs_imx_type t = ti == 0 ? CS_IMX_Q4_0 : CS_IMX_Q4_K;
                if (t == CS_IMX_Q4_K && orig->in % 256 != 0) {
                    t = CS_IMX_Q5_0;
                    n_fallback++;
                }
                float *want = malloc(sz * sizeof(float)), *plain = malloc(sz * sizeof(float));
                memcpy(want, orig->w, sz * sizeof(float));
                memcpy(plain, orig->w, sz * sizeof(float));
                check_rc(cs_imatrix_quantize(want, orig->out, orig->in, t, imp + off, &err), &err);
                check_rc(cs_imatrix_quantize(plain, orig->out, orig->in, t, NULL, &err), &err);
                /* the statistics came from the unmodified model: bit for bit */
                assert_memory_equal(got->w, want, sz * sizeof(float));
                /* the record */
                assert_int_equal((size_t)cJSON_GetObjectItem(rec, "layer")->valuedouble, l);
                assert_string_equal(cJSON_GetObjectItem(rec, "linear")->valuestring,
                                    cs_lin_name((cs_lin)k));
                assert_string_equal(cJSON_GetObjectItem(rec, "type")->valuestring,
                                    cs_imatrix_type_name(t));
                assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(rec, "fallback")),
                                 t != (ti == 0 ? CS_IMX_Q4_0 : CS_IMX_Q4_K));
                assert_int_equal((size_t)cJSON_GetObjectItem(rec, "tokens")->valuedouble, count);
                /* imatrix-weighted error against llama.cpp's quantization without an imatrix */
                double e_im = 0, e_plain = 0;
                for (size_t r = 0; r < orig->out; r++) {
                    for (size_t j = 0; j < orig->in; j++) {
                        double a1 = (double)orig->w[r * orig->in + j] - want[r * orig->in + j];
                        double a2 = (double)orig->w[r * orig->in + j] - plain[r * orig->in + j];
                        e_im += imp[off + j] * a1 * a1;
                        e_plain += imp[off + j] * a2 * a2;
                    }
                }
                assert_true(fabs(cJSON_GetObjectItem(rec, "loss")->valuedouble - e_im) <=
                            1e-9 * e_im);
                loss_sum += e_im;
                n_better += e_im < e_plain;
                worst = fmax(worst, e_im / e_plain);
                if (ti == 0 && !(e_im < e_plain)) {
                    fail_msg("layers.%zu.%s: imatrix-weighted error %.6g, not below plain Q4_0 "
                             "%.6g",
                             l, cs_lin_name((cs_lin)k), e_im, e_plain);
                }
                free(want);
                free(plain);
                off += orig->in;
            }
        }
        print_message("# %s: %zu of %zu linears with a lower imatrix-weighted error than without "
                      "the imatrix (worst ratio %.3f), %zu q5_0 fallbacks\n",
                      types[ti], n_better, m->cfg.n_layers * CS_LIN_COUNT, worst, n_fallback);
        assert_true(fabs(rep.loss - loss_sum) <= 1e-9 * loss_sum);
        /* tb-qwen: hidden 192 (q, k, v, o, gate, up) falls back, down (512 inputs) does not */
        assert_int_equal(n_fallback, ti == 0 ? 0 : m->cfg.n_layers * 6);
        assert_true(n_better * 4 >= m->cfg.n_layers * CS_LIN_COUNT * 3);
        cs_pipe_report_fini(&rep);
        cs_model_destroy(m);
    }
    /* calibration too short for one chunk */
    cJSON *a = algo("{\"name\":\"imatrix\"}");
    cs_pipe_params p;
    cs_pipe_report rep;
    check_rc(cs_pipe_params_from_json(&p, a, &err), &err);
    cJSON_Delete(a);
    assert_int_equal(cs_pipe_quantize(m0, tok, 8, 12, &p, NULL, NULL, &rep, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "no chunk of at least 16 tokens (seq_len 12, chunk 512)"));
    free(imp);
    free(tok);
    cs_model_destroy(m0);
}

static void test_params(void **state)
{
    (void)state;
    cs_pipe_params p;
    cs_err err = {0};
    cJSON *a = algo("{\"name\":\"imatrix\"}");
    check_rc(cs_pipe_params_from_json(&p, a, &err), &err);
    cJSON_Delete(a);
    assert_int_equal(p.algo, CS_PIPE_IMATRIX);
    assert_int_equal(p.imx_type, CS_IMX_Q4_0);
    assert_int_equal(p.imx_chunk, 512);
    assert_string_equal(cs_pipe_algo_name(p.algo), "imatrix");
    a = algo("{\"name\":\"imatrix\",\"type\":\"q4_k\",\"chunk\":128}");
    check_rc(cs_pipe_params_from_json(&p, a, &err), &err);
    cJSON_Delete(a);
    assert_int_equal(p.imx_type, CS_IMX_Q4_K);
    assert_int_equal(p.imx_chunk, 128);
    cJSON *o = cs_pipe_params_to_json(&p);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "name")->valuestring, "imatrix");
    assert_string_equal(cJSON_GetObjectItem(o, "type")->valuestring, "q4_k");
    assert_int_equal((int)cJSON_GetObjectItem(o, "chunk")->valuedouble, 128);
    assert_string_equal(cJSON_GetObjectItem(o, "trajectory")->valuestring, "fp");
    assert_int_equal((int)cJSON_GetObjectItem(o, "min_chunk_tokens")->valuedouble, 16);
    assert_int_equal((int)cJSON_GetObjectItem(o, "super_block")->valuedouble, 256);
    assert_non_null(strstr(cJSON_GetObjectItem(o, "fallback")->valuestring, "q5_0"));
    cJSON_Delete(o);
    const struct {
        const char *json, *msg;
        cs_rc rc;
    } bad[] = {
            {"{\"name\":\"imatrix\",\"type\":\"q8_0\"}", "algorithm.type: unknown value \"q8_0\"",
             CS_ESCHEMA},
            {"{\"name\":\"imatrix\",\"type\":4}", "algorithm.type", CS_ESCHEMA},
            {"{\"name\":\"imatrix\",\"chunk\":8}", "algorithm.chunk", CS_ESCHEMA},
            {"{\"name\":\"imatrix\",\"chunk\":100000}", "algorithm.chunk", CS_ESCHEMA},
            {"{\"name\":\"imatrix\",\"bits\":4}", "algorithm.bits: unknown key", CS_ESCHEMA},
            {"{\"name\":\"imatrix\",\"trajectory\":\"fp\"}", "algorithm.trajectory", CS_ESCHEMA},
            {"{\"name\":\"imatrx\"}", "algorithm.name: unknown algorithm \"imatrx\"", CS_ESCHEMA},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = algo(bad[i].json);
        memset(&err, 0, sizeof(err));
        assert_int_equal(cs_pipe_params_from_json(&p, a, &err), bad[i].rc);
        if (!strstr(err.msg, bad[i].msg)) {
            fail_msg("%s: '%s' does not name %s", bad[i].json, err.msg, bad[i].msg);
        }
        cJSON_Delete(a);
    }
    cs_pipe_timing t = {.imatrix = 1.5};
    o = cs_pipe_timing_json(&t);
    assert_true(cJSON_GetObjectItem(o, "imatrix")->valuedouble == 1.5);
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_half),
            cmocka_unit_test(test_half_matches_numpy),
            cmocka_unit_test(test_refs_match),
            cmocka_unit_test(test_q40_weighted_error_vs_rtn),
            cmocka_unit_test(test_qx0_search_beats_its_first_candidate),
            cmocka_unit_test(test_grids),
            cmocka_unit_test(test_zero_and_degenerate),
            cmocka_unit_test(test_errors),
            cmocka_unit_test(test_accumulator),
            cmocka_unit_test(test_collect_matches_twin),
            cmocka_unit_test(test_pipeline_equals_layerwise),
            cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
