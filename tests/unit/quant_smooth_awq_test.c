/* quant_smooth_awq_test.c - SmoothQuant scales and folding, W8A8 fake quantization, and AWQ's
 * forward-free parts with a linear layer as the module (docs/specs/ptq-algorithms.md sections 3,
 * 4). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_awq.h"
#include "cs_hessian.h"
#include "cs_smooth.h"
#include "cs_test.h"

/* y (t x r) = x (t x c) w^T (w r x c), double accumulation */
static void linear(double *y, const float *x, const float *w, size_t t, size_t c, size_t r)
{
    for (size_t i = 0; i < t; i++) {
        for (size_t o = 0; o < r; o++) {
            double a = 0.0;
            for (size_t j = 0; j < c; j++) {
                a += (double)x[i * c + j] * w[o * c + j];
            }
            y[i * r + o] = a;
        }
    }
}

static float *outlier_x(size_t t, size_t c, float factor, uint64_t seed)
{
    float *x = malloc(t * c * sizeof(float));
    assert_non_null(x);
    cs_fill_normal(x, t * c, 1.0f, seed);
    for (size_t i = 0; i < t; i++) {
        for (size_t j = 5; j < c; j += 29) {
            x[i * c + j] *= factor;
        }
    }
    return x;
}

/* FP invariance: norm gain g folded, two linears scaled; the float outputs are unchanged. */
static void test_smooth_fold_invariance(void **state)
{
    (void)state;
    enum { T = 40, C = 64, R1 = 24, R2 = 16 };
    float *n = outlier_x(T, C, 30.0f, 1); /* normalized hidden states before the gain */
    float g[C], w1[R1 * C], w2[R2 * C], x[T * C];
    cs_fill_uniform(g, C, 0.5f, 1.5f, 2);
    cs_fill_normal(w1, R1 * C, 0.1f, 3);
    cs_fill_normal(w2, R2 * C, 0.1f, 4);
    for (size_t i = 0; i < T * C; i++) {
        x[i] = n[i] * g[i % C];
    }
    double y1[T * R1], y2[T * R2], z1[T * R1], z2[T * R2];
    linear(y1, x, w1, T, C, R1);
    linear(y2, x, w2, T, C, R2);
    cs_actstats st;
    assert_int_equal(cs_actstats_init(&st, C, NULL), CS_OK);
    assert_int_equal(cs_actstats_add(&st, x, T, NULL), CS_OK);
    const float *ws[2] = {w1, w2};
    const size_t rows[2] = {R1, R2};
    float s[C];
    cs_smooth_params p;
    cs_smooth_params_default(&p);
    p.alpha = 0.5;
    assert_int_equal(cs_smooth_scales(s, C, st.absmax, ws, rows, 2, &p, NULL), CS_OK);
    float wmax[C];
    for (size_t j = 0; j < C; j++) {
        wmax[j] = 0.0f;
        for (size_t r = 0; r < R1; r++) {
            wmax[j] = fmaxf(wmax[j], fabsf(w1[r * C + j]));
        }
        for (size_t r = 0; r < R2; r++) {
            wmax[j] = fmaxf(wmax[j], fabsf(w2[r * C + j]));
        }
    }
    cs_smooth_fold_norm(g, NULL, s, C);
    cs_smooth_scale_cols(w1, R1, C, s);
    cs_smooth_scale_cols(w2, R2, C, s);
    for (size_t i = 0; i < T * C; i++) {
        x[i] = n[i] * g[i % C];
    }
    linear(z1, x, w1, T, C, R1);
    linear(z2, x, w2, T, C, R2);
    cs_assert_close_d(z1, y1, T * R1, 1e-6, 1e-5);
    cs_assert_close_d(z2, y2, T * R2, 1e-6, 1e-5);
    /* alpha 0.5: max_t |x^_j| = max_r |W^[r][j]| = sqrt(a_j w_j) */
    cs_actstats st2;
    assert_int_equal(cs_actstats_init(&st2, C, NULL), CS_OK);
    assert_int_equal(cs_actstats_add(&st2, x, T, NULL), CS_OK);
    for (size_t j = 0; j < C; j++) {
        float wm = 0.0f;
        for (size_t r = 0; r < R1; r++) {
            wm = fmaxf(wm, fabsf(w1[r * C + j]));
        }
        for (size_t r = 0; r < R2; r++) {
            wm = fmaxf(wm, fabsf(w2[r * C + j]));
        }
        const double want = sqrt((double)st.absmax[j] * wmax[j]);
        assert_true(fabs(st2.absmax[j] - want) <= 1e-5 * want);
        assert_true(fabs(wm - want) <= 1e-5 * want);
    }
    /* the range variant: s = range^a / (2 wmax)^(1-a) */
    float range[C], s2[C];
    for (size_t j = 0; j < C; j++) {
        range[j] = st.max[j] - st.min[j];
    }
    p.variant = CS_SMOOTH_RANGE;
    p.alpha = 0.8;
    assert_int_equal(cs_smooth_scales(s2, C, range, ws, rows, 2, &p, NULL), CS_OK);
    for (size_t j = 0; j < C; j++) {
        float wm = 0.0f;
        for (size_t r = 0; r < R1; r++) {
            wm = fmaxf(wm, fabsf(w1[r * C + j]));
        }
        for (size_t r = 0; r < R2; r++) {
            wm = fmaxf(wm, fabsf(w2[r * C + j]));
        }
        const double want = pow(range[j], 0.8) / pow(2.0 * wm, 0.2);
        assert_true(fabs(s2[j] - want) <= 1e-6 * want);
    }
    cs_err err = {0};
    p.alpha = 1.5;
    assert_int_equal(cs_smooth_scales(s2, C, range, ws, rows, 2, &p, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "alpha"));
    cs_actstats_fini(&st);
    cs_actstats_fini(&st2);
    free(n);
}

/* W8A8 (per-row Q-SQ weights, per-token dynamic activations): smoothing lowers the output error
 * on inputs with outlier channels. */
static void test_w8a8_smoothing_helps(void **state)
{
    (void)state;
    enum { T = 64, C = 128, R = 32 };
    float *x = outlier_x(T, C, 60.0f, 7);
    float w[R * C], wq[R * C], xq[T * C];
    cs_fill_normal(w, R * C, 0.05f, 8);
    double y[T * R], z[T * R];
    linear(y, x, w, T, C, R);
    const cs_qspec q8 = {.family = CS_QF_SQ, .bits = 8, .sym = true};
    double err_plain = 0.0, err_smooth = 0.0;
    for (int smooth = 0; smooth < 2; smooth++) {
        memcpy(wq, w, sizeof(w));
        memcpy(xq, x, sizeof(xq));
        if (smooth) {
            cs_actstats st;
            assert_int_equal(cs_actstats_init(&st, C, NULL), CS_OK);
            assert_int_equal(cs_actstats_add(&st, x, T, NULL), CS_OK);
            float s[C];
            const float *ws[1] = {w};
            const size_t rows[1] = {R};
            cs_smooth_params p;
            cs_smooth_params_default(&p);
            assert_int_equal(cs_smooth_scales(s, C, st.absmax, ws, rows, 1, &p, NULL), CS_OK);
            cs_smooth_scale_cols(wq, R, C, s);
            cs_smooth_scale_inputs(xq, T, C, s);
            cs_actstats_fini(&st);
        }
        assert_int_equal(cs_quant_rtn(wq, R, C, &q8, 0, NULL), CS_OK);
        assert_int_equal(cs_quant_act_per_token(xq, T, C, &q8, NULL), CS_OK);
        linear(z, xq, wq, T, C, R);
        double e = 0.0;
        for (size_t i = 0; i < T * R; i++) {
            e += (z[i] - y[i]) * (z[i] - y[i]);
        }
        *(smooth ? &err_smooth : &err_plain) = e;
    }
    print_message("# W8A8 output error: plain %.4g smoothed %.4g\n", err_plain, err_smooth);
    assert_true(err_smooth < err_plain);
    free(x);
}

/* The AWQ loss callback of a single linear: mean squared output error under scales s. */
typedef struct lin_ctx {
    const float *x, *w;
    const double *y;
    size_t t, c, r;
    const cs_awq_params *p;
    float *scratch;
    double *out;
    size_t calls;
} lin_ctx;

static cs_rc lin_loss(void *vctx, const float *s, double *loss, cs_err *err)
{
    lin_ctx *k = vctx;
    memcpy(k->scratch, k->w, k->r * k->c * sizeof(float));
    cs_rc rc = cs_awq_quant_scaled(k->scratch, k->r, k->c, s, &k->p->q, k->p->group_size, err);
    if (rc != CS_OK) {
        return rc;
    }
    linear(k->out, k->x, k->scratch, k->t, k->c, k->r);
    double e = 0.0;
    for (size_t i = 0; i < k->t * k->r; i++) {
        e += (k->out[i] - k->y[i]) * (k->out[i] - k->y[i]);
    }
    *loss = e / (double)(k->t * k->r);
    k->calls++;
    return CS_OK;
}

static void test_awq_search_and_clip(void **state)
{
    (void)state;
    enum { T = 96, C = 256, R = 32 };
    float *x = outlier_x(T, C, 50.0f, 11);
    float *w = malloc(R * C * sizeof(float)), *scr = malloc(R * C * sizeof(float));
    double *y = malloc(T * R * sizeof(double)), *out = malloc(T * R * sizeof(double));
    cs_fill_normal(w, R * C, 0.05f, 12);
    linear(y, x, w, T, C, R);
    cs_awq_params p;
    cs_awq_params_default(&p);
    cs_actstats st;
    assert_int_equal(cs_actstats_init(&st, C, NULL), CS_OK);
    assert_int_equal(cs_actstats_add(&st, x, T, NULL), CS_OK);
    float xm[C], wm[C], s[C];
    assert_int_equal(cs_awq_x_mean(xm, &st, NULL), CS_OK);
    const float *ws[1] = {w};
    const size_t rows[1] = {R};
    assert_int_equal(cs_awq_w_mean(wm, C, ws, rows, 1, p.group_size, NULL), CS_OK);
    lin_ctx k = {
            .x = x, .w = w, .y = y, .t = T, .c = C, .r = R, .p = &p, .scratch = scr, .out = out};
    cs_awq_search_result res;
    assert_int_equal(cs_awq_search_scale(s, xm, wm, C, &p, lin_loss, &k, &res, NULL), CS_OK);
    assert_int_equal(k.calls, 20);
    assert_true(res.best_loss <= res.loss_r0);
    assert_true(res.best_ratio > 0.0); /* outliers: some scaling helps */
    /* RTN g128 on the same layer */
    float ones[C];
    for (size_t j = 0; j < C; j++) {
        ones[j] = 1.0f;
    }
    double loss_rtn, loss_awq;
    assert_int_equal(lin_loss(&k, ones, &loss_rtn, NULL), CS_OK);
    /* apply the scales (fold into the weights, divide X), then clip, then quantize */
    float *ws_ = malloc(R * C * sizeof(float)), *xs = malloc(T * C * sizeof(float));
    memcpy(ws_, w, R * C * sizeof(float));
    memcpy(xs, x, T * C * sizeof(float));
    cs_smooth_scale_cols(ws_, R, C, s);
    cs_smooth_scale_inputs(xs, T, C, s);
    float maxv[R * (C / 128)];
    assert_int_equal(cs_awq_clip_search(maxv, ws_, R, C, xs, T, &p, NULL), CS_OK);
    /* clip error <= unclipped error for every (row, group), and m within [0.55 m0, m0] */
    for (size_t r = 0; r < R; r++) {
        for (size_t gi = 0; gi < C / 128; gi++) {
            float g0[128], g1[128], m0 = 0.0f;
            for (size_t j = 0; j < 128; j++) {
                g0[j] = g1[j] = ws_[r * C + gi * 128 + j];
                m0 = fmaxf(m0, fabsf(g0[j]));
            }
            const float m = maxv[r * (C / 128) + gi];
            assert_true(m <= m0 && m >= 0.55f * m0 * (1.0f - 1e-6f));
            for (size_t j = 0; j < 128; j++) {
                g1[j] = fminf(fmaxf(g1[j], -m), m);
            }
            cs_quant_rtn(g0, 1, 128, &p.q, 0, NULL);
            cs_quant_rtn(g1, 1, 128, &p.q, 0, NULL);
            double e0 = 0.0, e1 = 0.0;
            for (size_t t = 0; t < T; t++) {
                double a0 = 0.0, a1 = 0.0, rf = 0.0;
                for (size_t j = 0; j < 128; j++) {
                    const double xv = xs[t * C + gi * 128 + j];
                    rf += xv * ws_[r * C + gi * 128 + j];
                    a0 += xv * g0[j];
                    a1 += xv * g1[j];
                }
                e0 += (a0 - rf) * (a0 - rf);
                e1 += (a1 - rf) * (a1 - rf);
            }
            assert_true(e1 <= e0 * (1.0 + 1e-9));
        }
    }
    cs_awq_apply_clip(ws_, R, C, maxv, p.group_size);
    assert_int_equal(cs_quant_rtn(ws_, R, C, &p.q, p.group_size, NULL), CS_OK);
    linear(out, xs, ws_, T, C, R);
    loss_awq = 0.0;
    for (size_t i = 0; i < T * R; i++) {
        loss_awq += (out[i] - y[i]) * (out[i] - y[i]);
    }
    loss_awq /= (double)(T * R);
    print_message("# output MSE: rtn g128 %.4g awq %.4g (ratio %.2f)\n", loss_rtn, loss_awq,
                  res.best_ratio);
    assert_true(loss_awq < loss_rtn);
    cs_actstats_fini(&st);
    free(x);
    free(w);
    free(scr);
    free(y);
    free(out);
    free(ws_);
    free(xs);
}

/* Uniform x_mean without duo: every loss is equal, so r = 0 wins and s = 1. All-NaN: s = 1. */
static cs_rc nan_loss(void *ctx, const float *s, double *loss, cs_err *err)
{
    (void)ctx;
    (void)s;
    (void)err;
    *loss = NAN;
    return CS_OK;
}

static void test_awq_uniform_and_nan(void **state)
{
    (void)state;
    enum { T = 16, C = 128, R = 8 };
    float x[T * C], w[R * C], scr[R * C], s[C], xm[C];
    double y[T * R], out[T * R];
    cs_fill_normal(x, T * C, 1.0f, 31);
    cs_fill_normal(w, R * C, 1.0f, 32);
    linear(y, x, w, T, C, R);
    for (size_t j = 0; j < C; j++) {
        xm[j] = 0.7f;
    }
    cs_awq_params p;
    cs_awq_params_default(&p);
    p.duo_scaling = false;
    lin_ctx k = {
            .x = x, .w = w, .y = y, .t = T, .c = C, .r = R, .p = &p, .scratch = scr, .out = out};
    cs_awq_search_result res;
    assert_int_equal(cs_awq_search_scale(s, xm, NULL, C, &p, lin_loss, &k, &res, NULL), CS_OK);
    assert_true(res.best_ratio == 0.0);
    for (size_t j = 0; j < C; j++) {
        assert_true(fabsf(s[j] - 1.0f) <= 1e-6f);
    }
    assert_int_equal(cs_awq_search_scale(s, xm, NULL, C, &p, nan_loss, NULL, &res, NULL), CS_OK);
    assert_true(res.fallback && res.best_ratio < 0.0);
    for (size_t j = 0; j < C; j++) {
        assert_true(s[j] == 1.0f);
    }
    /* fold linear -> linear (v -> o with a v bias): the composition is unchanged */
    enum { D = 12, H = 8 };
    float v[H * D], vb[H], o[D * H], xin[D], sv[H];
    cs_fill_normal(v, H * D, 1.0f, 33);
    cs_fill_normal(vb, H, 1.0f, 34);
    cs_fill_normal(o, D * H, 1.0f, 35);
    cs_fill_normal(xin, D, 1.0f, 36);
    cs_fill_uniform(sv, H, 0.2f, 5.0f, 37);
    double before[D], after[D];
    for (int pass = 0; pass < 2; pass++) {
        float hv[H];
        for (size_t i = 0; i < H; i++) {
            double a = vb[i];
            for (size_t j = 0; j < D; j++) {
                a += (double)v[i * D + j] * xin[j];
            }
            hv[i] = (float)a;
        }
        double *dst = pass ? after : before;
        for (size_t i = 0; i < D; i++) {
            double a = 0.0;
            for (size_t j = 0; j < H; j++) {
                a += (double)o[i * H + j] * hv[j];
            }
            dst[i] = a;
        }
        if (!pass) {
            cs_smooth_fold_prev_linear(v, vb, H, D, sv);
            cs_smooth_scale_cols(o, D, H, sv);
        }
    }
    cs_assert_close_d(after, before, D, 1e-5, 1e-5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_smooth_fold_invariance),
            cmocka_unit_test(test_w8a8_smoothing_helps),
            cmocka_unit_test(test_awq_search_and_clip),
            cmocka_unit_test(test_awq_uniform_and_nan),
    };
    return CS_RUN_TESTS(tests);
}
