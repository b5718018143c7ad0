/* cs_quantizer.c - quantizer families, RTN and per-token activation quantization. The float
 * operations follow the references' fp32 torch code step by step (see cs_quantizer.h). */
#include "cs_quantizer.h"

#include <float.h>
#include <math.h>
#include <string.h>

cs_rc cs_qspec_check(const cs_qspec *q, cs_err *err)
{
    if (!q) {
        return cs_err_set(err, CS_EINVAL, 0, "quantizer: no spec");
    }
    if (q->family < CS_QF_GPTQ || q->family > CS_QF_CT) {
        return cs_err_set(err, CS_EINVAL, 0, "quantizer.family: unknown family %d", (int)q->family);
    }
    if (q->bits < 2 || q->bits > 8) {
        return cs_err_set(err, CS_EINVAL, 0, "quantizer.bits: expected 2..8, got %d", q->bits);
    }
    if (q->family == CS_QF_SQ && !q->sym) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "quantizer.sym: the SmoothQuant quantizer is symmetric");
    }
    return CS_OK;
}

static void minmax(const float *x, size_t n, float *mn, float *mx)
{
    float lo = x[0], hi = x[0];
    for (size_t i = 1; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    *mn = lo;
    *mx = hi;
}

void cs_qparam_find(cs_qparam *out, const cs_qspec *q, const float *x, size_t n)
{
    float mn, mx;
    minmax(x, n, &mn, &mx);
    const float half = (float)(1 << (q->bits - 1));
    out->family = q->family;
    switch (q->family) {
    case CS_QF_GPTQ: {
        const float maxq = (float)((1 << q->bits) - 1);
        float xmin = fminf(mn, 0.0f), xmax = fmaxf(mx, 0.0f);
        if (q->sym) {
            xmax = fmaxf(fabsf(xmin), xmax);
            if (xmin < 0.0f) {
                xmin = -xmax;
            }
        }
        if (xmin == 0.0f && xmax == 0.0f) {
            xmin = -1.0f;
            xmax = 1.0f;
        }
        out->scale = (xmax - xmin) / maxq;
        out->zero = q->sym ? (maxq + 1.0f) / 2.0f : rintf(-xmin / out->scale);
        out->qmin = 0.0f;
        out->qmax = maxq;
        break;
    }
    case CS_QF_AWQ:
        if (q->sym) {
            const float amax = fmaxf(fmaxf(fabsf(mn), fabsf(mx)), 1e-5f);
            out->scale = amax / (half - 1.0f);
            out->zero = 0.0f;
            out->qmin = -half;
            out->qmax = half - 1.0f;
        } else {
            const float maxq = (float)((1 << q->bits) - 1);
            out->scale = fmaxf(mx - mn, 1e-5f) / maxq;
            float z = -rintf(mn / out->scale);
            out->zero = z < 0.0f ? 0.0f : (z > maxq ? maxq : z);
            out->qmin = 0.0f;
            out->qmax = maxq;
        }
        break;
    case CS_QF_SQ: {
        const float amax = fmaxf(fabsf(mn), fabsf(mx));
        out->scale = fmaxf(amax, 1e-5f) / (half - 1.0f);
        out->zero = 0.0f;
        out->qmin = -half;
        out->qmax = half - 1.0f;
        break;
    }
    case CS_QF_CT:
    default: {
        const float qmin = -half, qmax = half - 1.0f;
        const float lo = fminf(mn, 0.0f), hi = fmaxf(mx, 0.0f);
        out->qmin = qmin;
        out->qmax = qmax;
        if (q->sym) {
            const float amax = fmaxf(fabsf(lo), fabsf(hi));
            out->scale = amax / ((qmax - qmin) / 2.0f);
            out->zero = 0.0f;
        } else {
            out->scale = (hi - lo) / (qmax - qmin);
        }
        if (out->scale == 0.0f) {
            out->scale = FLT_EPSILON;
        }
        if (!q->sym) {
            float z = qmin - rintf(lo / out->scale);
            out->zero = z < qmin ? qmin : (z > qmax ? qmax : z);
        }
        break;
    }
    }
}

float cs_qparam_level(const cs_qparam *p, float x)
{
    float v = p->family == CS_QF_CT ? rintf(x / p->scale + p->zero) : rintf(x / p->scale) + p->zero;
    return v < p->qmin ? p->qmin : (v > p->qmax ? p->qmax : v);
}

float cs_qparam_apply(const cs_qparam *p, float x)
{
    const float lv = cs_qparam_level(p, x);
    if (p->family == CS_QF_GPTQ) {
        return p->scale * (lv - p->zero); /* quant.py: scale * (q - zero) */
    }
    return (lv - p->zero) * p->scale;
}

cs_rc cs_quant_rtn(float *w, size_t rows, size_t cols, const cs_qspec *q, size_t group, cs_err *err)
{
    cs_rc rc = cs_qspec_check(q, err);
    if (rc != CS_OK) {
        return rc;
    }
    if (!w || rows == 0 || cols == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "rtn: empty matrix (%zu x %zu)", rows, cols);
    }
    const size_t g = group == 0 ? cols : group;
    for (size_t r = 0; r < rows; r++) {
        float *row = w + r * cols;
        for (size_t c0 = 0; c0 < cols; c0 += g) {
            const size_t n = cols - c0 < g ? cols - c0 : g;
            cs_qparam p;
            cs_qparam_find(&p, q, row + c0, n);
            for (size_t j = 0; j < n; j++) {
                row[c0 + j] = cs_qparam_apply(&p, row[c0 + j]);
            }
        }
    }
    return CS_OK;
}

cs_rc cs_quant_rtn_preset(const char *name, cs_qspec *q, size_t *group, cs_err *err)
{
    const int bits = q->bits >= 2 && q->bits <= 8 ? q->bits : 4;
    if (name && strcmp(name, "gptq-nearest") == 0) {
        *q = (cs_qspec){.family = CS_QF_GPTQ, .bits = bits, .sym = false};
        *group = 0;
        return CS_OK;
    }
    if (name && strcmp(name, "awq-g128") == 0) {
        *q = (cs_qspec){.family = CS_QF_AWQ, .bits = bits, .sym = false};
        *group = 128;
        return CS_OK;
    }
    return cs_err_set(err, CS_EINVAL, 0,
                      "rtn preset: unknown name \"%s\" (expected gptq-nearest or awq-g128)",
                      name ? name : "(null)");
}

cs_rc cs_quant_act_per_token(float *x, size_t tokens, size_t cols, const cs_qspec *q, cs_err *err)
{
    return cs_quant_rtn(x, tokens, cols, q, 0, err);
}
