/* cs_imatrix.c - llama.cpp's Q4_0 / Q5_0 / Q4_K quantization with and without an importance
 * matrix (cs_imatrix.h). Each kernel follows ggml-quants.c's float operations in their order:
 * `a*b*c` is (a*b)*c, sums run left to right in float, integers convert to float where ggml's
 * C does. */
#include "cs_imatrix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_half.h"

#define QK        32  /* Q4_0, Q5_0 block; Q4_K sub-block */
#define QK_K      256 /* Q4_K super-block */
#define N_SUB     (QK_K / QK)
#define GROUP_EPS 1e-15f /* ggml's GROUP_MAX_EPS: a block whose max |x| is below is all zero */

const char *cs_imatrix_type_name(cs_imx_type t)
{
    switch (t) {
    case CS_IMX_Q4_0:
        return "q4_0";
    case CS_IMX_Q5_0:
        return "q5_0";
    case CS_IMX_Q4_K:
        return "q4_k";
    }
    return "?";
}

size_t cs_imatrix_block_size(cs_imx_type t)
{
    switch (t) {
    case CS_IMX_Q4_0:
    case CS_IMX_Q5_0:
        return QK;
    case CS_IMX_Q4_K:
        return QK_K;
    }
    return 0;
}

/* ---- collection ---------------------------------------------------------------------------- */

cs_rc cs_imatrix_acc_init(cs_imatrix_acc *a, size_t cols, cs_err *err)
{
    memset(a, 0, sizeof(*a));
    if (cols == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "imatrix: a layer with no input columns");
    }
    if (!(a->sum2 = cs_calloc_array(cols, sizeof(double)))) {
        return cs_err_set(err, CS_ENOMEM, 0, "imatrix: out of memory (%zu columns)", cols);
    }
    a->cols = cols;
    return CS_OK;
}

void cs_imatrix_acc_fini(cs_imatrix_acc *a)
{
    if (a) {
        free(a->sum2);
        memset(a, 0, sizeof(*a));
    }
}

cs_rc cs_imatrix_acc_add(cs_imatrix_acc *a, const float *x, size_t rows, const uint8_t *valid,
                         cs_err *err)
{
    const size_t c = a->cols;
    for (size_t r = 0; r < rows; r++) {
        if (valid && !valid[r]) {
            continue;
        }
        for (size_t j = 0; j < c; j++) {
            if (!isfinite(x[r * c + j])) {
                return cs_err_set(err, CS_EINVAL, 0, "imatrix: input[%zu][%zu] is not finite", r,
                                  j);
            }
        }
    }
    for (size_t r = 0; r < rows; r++) {
        if (valid && !valid[r]) {
            continue;
        }
        const float *row = x + r * c;
        for (size_t j = 0; j < c; j++) {
            a->sum2[j] += (double)row[j] * (double)row[j];
        }
        a->count++;
    }
    return CS_OK;
}

cs_rc cs_imatrix_acc_get(const cs_imatrix_acc *a, float *imp, cs_err *err)
{
    if (a->count == 0) {
        return cs_err_set(err, CS_ESTATE, 0, "imatrix: no token was collected");
    }
    for (size_t j = 0; j < a->cols; j++) {
        imp[j] = (float)(a->sum2[j] / (double)a->count);
    }
    return CS_OK;
}

/* ---- helpers --------------------------------------------------------------------------------- */

/* ggml's nearest_int, the same bit trick: v + 1.5 * 2^23 rounds v to an integer, half to even,
 * for |v| <= 2^22 (ggml asserts that range); outside it, and for NaN, the same integer arithmetic
 * gives the same (meaningless) value as ggml, never undefined behaviour. */
static int nint(float v)
{
    const float val = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &val, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

static int nint_clamp(float v, int lo, int hi)
{
    const int l = nint(v);
    return l < lo ? lo : (l > hi ? hi : l);
}

static int imin(int a, int b)
{
    return a < b ? a : b;
}

/* ---- Q4_0 / Q5_0 ----------------------------------------------------------------------------- */

float cs_imatrix_qx0_search(int8_t *q, const float *x, const float *w, int nmax)
{
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < QK; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_EPS) {
        for (int i = 0; i < QK; i++) {
            q[i] = (int8_t)-nmax; /* ggml stores L = 0, i.e. level -nmax, with scale 0 */
        }
        return 0.0f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < QK; i++) {
        const int l = nint_clamp(iscale * x[i], -nmax, nmax - 1);
        q[i] = (int8_t)l;
        sumlx += w[i] * x[i] * (float)l;
        suml2 += w[i] * (float)l * (float)l;
    }
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) {
            continue;
        }
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < QK; i++) {
            const int l = nint_clamp(iscale * x[i], -nmax, nmax - 1);
            sumlx += w[i] * x[i] * (float)l;
            suml2 += w[i] * (float)l * (float)l;
        }
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < QK; i++) {
                q[i] = (int8_t)nint_clamp(iscale * x[i], -nmax, nmax - 1);
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* quantize_row_q4_0_ref / q5_0_ref: d = max / -nmax, levels min(2 nmax - 1, trunc(x/d + nmax +
 * 0.5)) - nmax with x/d computed as x * (1/d). */
static void qx0_plain(cs_imx_qx0 *b, const float *x, int nmax)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    const float d = max / (float)-nmax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = cs_half_from_f32(d);
    for (int j = 0; j < QK; j++) {
        /* x*id + nmax + 0.5 lies in [0.5, 2 nmax + 0.5]: the conversion truncates, as ggml's
         * (int8_t). Only when 1/d overflows (|max| < 2^-125, where fp16(d) is 0 and every value
         * decodes to zero anyway) is it NaN or infinite; level 0 then, never an undefined cast. */
        const float t = x[j] * id + ((float)nmax + 0.5f);
        const int l = t >= 0.0f && t < 64.0f ? (int)t : 0;
        b->q[j] = (int8_t)(imin(2 * nmax - 1, l) - nmax);
    }
}

static void qx0_row(cs_imx_qx0 *blocks, const float *x, size_t cols, const float *imp, int nmax)
{
    if (!imp) {
        for (size_t ib = 0; ib < cols / QK; ib++) {
            qx0_plain(&blocks[ib], x + ib * QK, nmax);
        }
        return;
    }
    float sum_x2 = 0.0f;
    for (size_t j = 0; j < cols; j++) {
        sum_x2 += x[j] * x[j];
    }
    const float sigma2 = sum_x2 / (float)cols;
    float weight[QK];
    for (size_t ib = 0; ib < cols / QK; ib++) {
        const float *xb = x + ib * QK, *qw = imp + ib * QK;
        for (int j = 0; j < QK; j++) {
            weight[j] = qw[j] * sqrtf(sigma2 + xb[j] * xb[j]);
        }
        blocks[ib].d = cs_half_from_f32(cs_imatrix_qx0_search(blocks[ib].q, xb, weight, nmax));
    }
}

/* ---- Q4_K ------------------------------------------------------------------------------------ */

void cs_imatrix_q4k_scale_min(const cs_imx_q4k *b, int j, uint8_t *sc, uint8_t *m)
{
    const uint8_t *q = b->scales;
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* make_qkx2_quants / make_qkx3_quants with use_mad = false (they differ only in the test of a
 * constant block, max == min against max <= min, which agree since max >= min): the weighted
 * least-squares fit of x ~ scale * L + min over n values, L in 0..nmax, min <= 0, searched over
 * iscale = (rmin + rdelta k + nmax) / (max - min) for k = 0..nstep. Returns the scale, *the_min =
 * -min (>= 0). */
static float qkx_fit(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                     float rmin, float rdelta, int nstep)
{
    uint8_t laux[QK];
    float min = x[0], max = x[0];
    float sum_w = w[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) {
            min = x[i];
        }
        if (x[i] > max) {
            max = x[i];
        }
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0.0f) {
        min = 0.0f;
    }
    if (max <= min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1.0f / iscale;
    float best = 0.0f;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)nint_clamp(iscale * (x[i] - min), 0, nmax);
        float diff = scale * (float)L[i] + min - x[i];
        diff = diff * diff;
        best += w[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = nint_clamp(iscale * (x[i] - min), 0, nmax);
            laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0.0f) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0.0f) {
                this_min = 0.0f;
                this_scale = sum_xl / sum_l2;
            }
            float mad = 0.0f;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * (float)laux[i] + this_min - x[i];
                diff = diff * diff;
                mad += w[i] * diff;
            }
            if (mad < best) {
                memcpy(L, laux, (size_t)n);
                best = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* make_qp_quants(n, nmax, x, L, qw): quantizes the non-negative x[n] to levels 0..nmax of one
 * scale, weighted by qw: candidates (0.1 k + nmax) / max for k = -4..4, then up to five passes of
 * coordinate descent on the levels. Returns the scale (sum qw x L / sum qw L^2). L is uint8_t as in
 * ggml (a negative level, impossible for x >= 0, would wrap the same way). */
static float qp_quants(int n, int nmax, const float *x, uint8_t *L, const float *qw)
{
    float max = 0.0f;
    for (int i = 0; i < n; i++) {
        max = max > x[i] ? max : x[i];
    }
    if (max < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = (float)nmax / max;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)nint(iscale * x[i]);
    }
    const float scale = 1.0f / iscale;
    float best_mse = 0.0f;
    for (int i = 0; i < n; i++) {
        const float diff = x[i] - scale * (float)L[i];
        best_mse += qw[i] * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) {
            continue;
        }
        const float iscale_is = (0.1f * (float)is + (float)nmax) / max;
        const float scale_is = 1.0f / iscale_is;
        float mse = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = imin(nmax, nint(iscale_is * x[i]));
            const float diff = x[i] - scale_is * (float)l;
            mse += qw[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = imin(nmax, nint(iscale * x[i]));
        L[i] = (uint8_t)l;
        sumlx += qw[i] * x[i] * (float)l;
        suml2 += qw[i] * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = qw[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            if (slx > 0.0f && sl2 > 0.0f) {
                const int new_l = imin(nmax, nint(x[i] * sl2 / slx));
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) {
            break;
        }
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* ggml's packing of 8 six-bit scales ls[] and mins lm[] into 12 bytes. */
static void pack_scales(uint8_t *s, const uint8_t *ls, const uint8_t *lm)
{
    memset(s, 0, 12);
    for (int j = 0; j < N_SUB; j++) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j - 0] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* The levels from the stored scales (both quantize_row_q4_K paths end so); a sub-block whose
 * scale is zero keeps the levels of its fit, as in ggml. */
static void q4k_levels(cs_imx_q4k *b, const float *x)
{
    const float d_all = cs_half_to_f32(b->d), dmin_all = cs_half_to_f32(b->dmin);
    for (int j = 0; j < N_SUB; j++) {
        uint8_t sc, m;
        cs_imatrix_q4k_scale_min(b, j, &sc, &m);
        const float d = d_all * (float)sc;
        if (d == 0.0f) {
            continue;
        }
        const float dm = dmin_all * (float)m;
        for (int ii = 0; ii < QK; ii++) {
            b->q[QK * j + ii] = (uint8_t)nint_clamp((x[QK * j + ii] + dm) / d, 0, 15);
        }
    }
}

/* quantize_row_q4_K_impl: one super-block with importance qw[256]. */
static void q4k_block_imatrix(cs_imx_q4k *b, const float *x, const float *qw)
{
    float weights[QK], sw[N_SUB], mins[N_SUB], scales[N_SUB];
    uint8_t ls[N_SUB], lm[N_SUB];
    float sum_x2 = 0.0f;
    for (int l = 0; l < QK_K; l++) {
        sum_x2 += x[l] * x[l];
    }
    const float sigma2 = 2.0f * sum_x2 / (float)QK_K;
    for (int j = 0; j < N_SUB; j++) {
        for (int l = 0; l < QK; l++) {
            weights[l] = qw[QK * j + l] * sqrtf(sigma2 + x[QK * j + l] * x[QK * j + l]);
        }
        float sumw = 0.0f;
        for (int l = 0; l < QK; l++) {
            sumw += weights[l];
        }
        sw[j] = sumw;
        scales[j] = qkx_fit(QK, 15, x + QK * j, weights, b->q + QK * j, &mins[j], -0.9f, 0.05f, 36);
    }
    const float d_block = qp_quants(N_SUB, 63, scales, ls, sw);
    const float m_block = qp_quants(N_SUB, 63, mins, lm, sw);
    pack_scales(b->scales, ls, lm);
    b->d = cs_half_from_f32(d_block);
    b->dmin = cs_half_from_f32(m_block);
    q4k_levels(b, x);
}

/* quantize_row_q4_K_ref: one super-block without an imatrix. */
static void q4k_block_plain(cs_imx_q4k *b, const float *x)
{
    float weights[QK], mins[N_SUB], scales[N_SUB];
    uint8_t ls[N_SUB], lm[N_SUB];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < N_SUB; j++) {
        float sum_x2 = 0.0f;
        for (int l = 0; l < QK; l++) {
            sum_x2 += x[QK * j + l] * x[QK * j + l];
        }
        const float av_x = sqrtf(sum_x2 / (float)QK);
        for (int l = 0; l < QK; l++) {
            weights[l] = av_x + fabsf(x[QK * j + l]);
        }
        scales[j] = qkx_fit(QK, 15, x + QK * j, weights, b->q + QK * j, &mins[j], -1.0f, 0.1f, 20);
        if (scales[j] > max_scale) {
            max_scale = scales[j];
        }
        if (mins[j] > max_min) {
            max_min = mins[j];
        }
    }
    const float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    for (int j = 0; j < N_SUB; j++) {
        /* ggml: uint8_t ls = nearest_int(...), then MIN(63, ls) */
        const uint8_t s = (uint8_t)nint(inv_scale * scales[j]);
        const uint8_t m = (uint8_t)nint(inv_min * mins[j]);
        ls[j] = s < 63 ? s : 63;
        lm[j] = m < 63 ? m : 63;
    }
    pack_scales(b->scales, ls, lm);
    b->d = cs_half_from_f32(max_scale / 63.0f);
    b->dmin = cs_half_from_f32(max_min / 63.0f);
    q4k_levels(b, x);
}

/* ---- rows ------------------------------------------------------------------------------------ */

static cs_rc check_row(size_t cols, cs_imx_type t, const float *imp, cs_err *err)
{
    const size_t bs = cs_imatrix_block_size(t);
    if (bs == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "imatrix: unknown type %d", (int)t);
    }
    if (cols == 0 || cols % bs != 0) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "imatrix: %s needs a row width that is a multiple of %zu, got %zu",
                          cs_imatrix_type_name(t), bs, cols);
    }
    for (size_t j = 0; imp && j < cols; j++) {
        if (!(imp[j] >= 0.0f) || !isfinite(imp[j])) {
            return cs_err_set(err, CS_EINVAL, 0,
                              "imatrix: importance[%zu] = %g is not a finite value >= 0", j,
                              (double)imp[j]);
        }
    }
    return CS_OK;
}

static cs_rc check_finite(const float *x, size_t n, size_t cols, cs_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            return cs_err_set(err, CS_EINVAL, 0, "imatrix: weight[%zu][%zu] is not finite",
                              i / cols, i % cols);
        }
    }
    return CS_OK;
}

static void encode(void *blocks, const float *x, size_t cols, cs_imx_type t, const float *imp)
{
    if (t == CS_IMX_Q4_K) {
        cs_imx_q4k *b = blocks;
        for (size_t i = 0; i < cols / QK_K; i++) {
            if (imp) {
                q4k_block_imatrix(&b[i], x + i * QK_K, imp + i * QK_K);
            } else {
                q4k_block_plain(&b[i], x + i * QK_K);
            }
        }
    } else {
        qx0_row(blocks, x, cols, imp, t == CS_IMX_Q4_0 ? 8 : 16);
    }
}

cs_rc cs_imatrix_encode_row(void *blocks, const float *x, size_t cols, cs_imx_type t,
                            const float *imp, cs_err *err)
{
    cs_rc rc = check_row(cols, t, imp, err);
    if (rc == CS_OK) {
        rc = check_finite(x, cols, cols, err);
    }
    if (rc == CS_OK) {
        encode(blocks, x, cols, t, imp);
    }
    return rc;
}

void cs_imatrix_decode_row(float *out, const void *blocks, size_t cols, cs_imx_type t)
{
    if (t == CS_IMX_Q4_K) {
        const cs_imx_q4k *b = blocks;
        for (size_t i = 0; i < cols / QK_K; i++) {
            const float d = cs_half_to_f32(b[i].d), dmin = cs_half_to_f32(b[i].dmin);
            for (int j = 0; j < N_SUB; j++) {
                uint8_t sc, m;
                cs_imatrix_q4k_scale_min(&b[i], j, &sc, &m);
                const float d1 = d * (float)sc, m1 = dmin * (float)m;
                for (int l = 0; l < QK; l++) {
                    out[i * QK_K + QK * j + l] = d1 * (float)b[i].q[QK * j + l] - m1;
                }
            }
        }
        return;
    }
    const cs_imx_qx0 *b = blocks;
    for (size_t i = 0; i < cols / QK; i++) {
        const float d = cs_half_to_f32(b[i].d);
        for (int j = 0; j < QK; j++) {
            out[i * QK + j] = (float)b[i].q[j] * d;
        }
    }
}

cs_rc cs_imatrix_quantize(float *w, size_t rows, size_t cols, cs_imx_type t, const float *imp,
                          cs_err *err)
{
    size_t n;
    cs_rc rc = check_row(cols, t, imp, err);
    if (rc != CS_OK) {
        return rc;
    }
    if (!w || rows == 0 || !cs_mul_ok(rows, cols, &n)) {
        return cs_err_set(err, CS_EINVAL, 0, "imatrix: empty or oversized matrix (%zu x %zu)", rows,
                          cols);
    }
    if ((rc = check_finite(w, n, cols, err)) != CS_OK) {
        return rc;
    }
    const size_t nb = cols / cs_imatrix_block_size(t);
    void *blocks = t == CS_IMX_Q4_K ? cs_alloc_array(nb, sizeof(cs_imx_q4k))
                                    : cs_alloc_array(nb, sizeof(cs_imx_qx0));
    float *row = cs_alloc_array(cols, sizeof(float));
    if (!blocks || !row) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "imatrix: out of memory");
        goto out;
    }
    for (size_t r = 0; r < rows && rc == CS_OK; r++) {
        encode(blocks, w + r * cols, cols, t, imp);
        cs_imatrix_decode_row(row, blocks, cols, t);
        for (size_t j = 0; j < cols; j++) {
            if (!isfinite(row[j])) {
                /* as in llama.cpp, a scale beyond fp16's 65504 (or a weighted sum beyond float)
                 * gives infinities; refused here rather than written */
                rc = cs_err_set(err, CS_ERANGE, 0,
                                "imatrix: %s of row %zu gives a non-finite value at column %zu "
                                "(its weights or importances exceed the range of the fp16 scales)",
                                cs_imatrix_type_name(t), r, j);
                break;
            }
        }
        if (rc == CS_OK) {
            memcpy(w + r * cols, row, cols * sizeof(float));
        }
    }
out:
    free(blocks);
    free(row);
    return rc;
}
