/* cs_tol.h - tolerances derived from the computation, for results that pass through BLAS/LAPACK
 * (whose kernels, and so summation orders, differ between CPUs and OpenBLAS core types).
 *
 * Summation bound. Any float evaluation of s = sum_{i<n} a_i b_i (any order, blocked, pairwise,
 * SIMD lanes, FMA or not) satisfies |fl(s) - s| <= gamma_n * sum |a_i||b_i|, gamma_n = n u / (1 -
 * n u), u = 2^-24 (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., eq. 3.5). Two
 * such evaluations (two CPUs) differ by at most twice that. Inputs that were themselves rounded
 * once (a float cast of a double, one division) add u |a_i||b_i| each: a few more terms in n.
 * cs_tol_sum_bound(n, S, k) is k gamma_n S; tests use k = 2 for these extra roundings.
 *
 * Quantization. A quantized value is a step function of its pre-rounding value x: two
 * computations whose x differ by at most delta may pick different levels only where [x - delta,
 * x + delta] contains a rounding boundary, and then only the levels of that interval
 * (cs_tol_level_range). With parameters that are exact (taken from the input, as RTN and GPTQ
 * per row or static groups), the dequantized values of equal levels are bit-equal; parameters
 * taken from computed values (GPTQ groups) have a scale known to dscale, and a level L then
 * dequantizes to within |L - zero| dscale (cs_tol_dequant_ok).
 *
 * GPTQ (cs_tol_gptq_judge). Row by row, the pre-rounding value of column c (processing order) is
 * x_c = w_c - sum_{k<c} e_k U[k][c], e_k = (x_k - q_k) / U[k][k]. The judge replays it in double
 * with the decisions q_k of the output under test. The float computation adds at column c a fresh
 * error |f_c| <= 2 gamma_{c+4} (|w_c| + sum_{k<c} |e_k||U[k][c]|) (the sum; "+4" and the factor
 * 2 cover the roundings of e_k, of the float U and U's double error, which with percdamp 0.01 is
 * ~ cols * 1e-16 * cond(H) <= cols * 1e-16 * 100 cols, far below one float rounding). With the
 * decisions fixed, x is affine in f: (I + A) x = w + A q + f with A[c][k] = U[k][c] / U[k][k], and
 * I + A = U^T D^-1 (D = diag U), so the error of x is G f with G = D U^-T, and
 *   delta_c = sum_{k<=c} |G[c][k]| |f_k|   (first order; summing |A| step by step instead would
 * grow exponentially with the column and accept anything). Every output value must then be a level
 * of [x_c - delta_c, x_c + delta_c]; so two outputs (ours and the PyTorch reference, or two core
 * types) agree exactly up to the first column of a row where x lies within delta of a boundary, and
 * each continues as a valid GPTQ trajectory of its own choice there. Group parameters (non-static
 * groups) are taken from W as
 * updated by the earlier blocks (the reference's rule); their min/max carry the same kind of bound,
 * which gives dscale and, for asymmetric grids, a zero that may be one off when -min/scale lies
 * within that bound of a half-integer. */
#ifndef CS_TESTS_CS_TOL_H
#define CS_TESTS_CS_TOL_H

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cs_gptq.h"
#include "cs_quantizer.h"

#define CS_TOL_U ((double)FLT_EPSILON / 2.0) /* unit roundoff of float, 2^-24 */

/* gamma_n = n u / (1 - n u) for float. */
static inline double cs_tol_gamma(size_t n)
{
    const double nu = (double)n * CS_TOL_U;
    return nu < 0.5 ? nu / (1.0 - nu) : INFINITY;
}

/* k gamma_n sum_abs: the bound on |fl(s) - s| of an n-term float sum whose terms' absolute values
 * add up to sum_abs (see the header comment). */
static inline double cs_tol_sum_bound(size_t n, double sum_abs, double k)
{
    return k * cs_tol_gamma(n) * sum_abs;
}

/* True if |got - want| <= bound (NaN never passes). */
static inline bool cs_tol_within(double got, double want, double bound)
{
    return fabs(got - want) <= bound;
}

/* The levels that any value of [x - delta, x + delta] can take under p when the scale is only known
 * to +-dscale: [*lo, *hi] (clamped). Rounding is monotone, so the ends of the interval give all. */
static inline void cs_tol_level_range(const cs_qparam *p, double x, double delta, double dscale,
                                      float *lo, float *hi)
{
    const double s_lo = (double)p->scale - dscale, s_hi = (double)p->scale + dscale;
    double t[4] = {(x - delta) / s_lo, (x - delta) / s_hi, (x + delta) / s_lo, (x + delta) / s_hi};
    double tmin = t[0], tmax = t[0];
    for (int i = 1; i < 4; i++) {
        tmin = fmin(tmin, t[i]);
        tmax = fmax(tmax, t[i]);
    }
    const double z = p->family == CS_QF_CT ? (double)p->zero : 0.0;
    const double add = p->family == CS_QF_CT ? 0.0 : (double)p->zero;
    double l = rint(tmin + z) + add, h = rint(tmax + z) + add;
    l = fmax((double)p->qmin, fmin((double)p->qmax, l));
    h = fmax((double)p->qmin, fmin((double)p->qmax, h));
    *lo = (float)l;
    *hi = (float)h;
}

/* True if got is the dequantized value of a level in [lo, hi] under p, to within |L - zero| dscale
 * plus one rounding of the product (dscale == 0: bit-equal to cs_qparam_apply's value). */
static inline bool cs_tol_dequant_ok(const cs_qparam *p, double dscale, float lo, float hi,
                                     float got)
{
    for (float l = lo; l <= hi; l += 1.0f) {
        const float want =
                p->family == CS_QF_GPTQ ? p->scale * (l - p->zero) : (l - p->zero) * p->scale;
        if (dscale == 0.0 ? got == want
                          : fabs((double)got - (double)want) <=
                                    fabs((double)l - (double)p->zero) * dscale +
                                            2.0 * CS_TOL_U * fabs((double)want)) {
            return true;
        }
    }
    return false;
}

/* What cs_tol_gptq_judge found. */
typedef struct cs_tol_gptq_report {
    size_t checked;   /* values judged */
    size_t bad;       /* values that are no level of their interval (0 = valid output) */
    size_t near_ties; /* values whose interval holds more than one level */
    size_t bad_row;   /* the first bad value: row, column (original order) */
    size_t bad_col;
    double got, want;  /* ... its value and the exact replay's rounding */
    double *x, *delta; /* set by the caller, NULL for none (zero-initialize the report): rows x
                          cols arrays (original order) that get each pre-rounding value of the
                          exact replay and its bound */
    double max_delta;  /* largest delta_c / scale seen: how close to a tie a value must be */
} cs_tol_gptq_report;

/* Parameters of the slice v[0..n) (exact values, as double) when each is known to +-delta: the
 * parameters of the float values, dscale, and the zeros to try (1 or 3). */
static inline void cs_tol_qparam_bounded(cs_qparam *p, double *dscale, float *zeros, int *nz,
                                         const cs_qspec *q, const double *v, size_t n, double delta)
{
    float *f = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        f[i] = (float)v[i];
    }
    cs_qparam_find(p, q, f, n);
    free(f);
    const double maxq = (double)p->qmax - (double)p->qmin;
    const double d = delta + CS_TOL_U * (double)p->scale * maxq; /* plus the cast of v to float */
    *dscale = delta > 0.0 ? (2.0 * d / maxq + 4.0 * CS_TOL_U * (double)p->scale) : 0.0;
    zeros[0] = p->zero;
    *nz = 1;
    if (delta > 0.0 && !q->sym && q->family == CS_QF_GPTQ) {
        /* zero = rint(-xmin / scale): may round the other way near a half-integer */
        const double xmin = -(double)p->zero * (double)p->scale;
        const double t = fabs(xmin) / (double)p->scale, fr = t - floor(t);
        const double slack = d / (double)p->scale + t * (*dscale / (double)p->scale);
        if (fabs(fr - 0.5) <= slack) {
            zeros[1] = p->zero - 1.0f;
            zeros[2] = p->zero + 1.0f;
            *nz = 3;
        }
    }
}

/* Judges `out` (rows x cols, original column order), claimed to be cs_gptq_quantize(w, h, p) as
 * computed on some machine: every value must be a level of its pre-rounding interval (see the
 * header comment). U is recomputed with p->hinv. Returns true if every value passes. */
static inline bool cs_tol_gptq_judge(const float *w, const float *h, size_t R, size_t C,
                                     const cs_gptq_params *p, const float *out,
                                     cs_tol_gptq_report *rep)
{
    double *keep_x = rep->x, *keep_delta = rep->delta;
    memset(rep, 0, sizeof(*rep));
    rep->x = keep_x;
    rep->delta = keep_delta;
    const size_t gs = p->group_size > 0 ? (size_t)p->group_size : 0;
    const size_t bs = p->blocksize < C ? p->blocksize : C;
    size_t *perm = malloc(C * sizeof(size_t));
    double *hd = calloc(C * C, sizeof(double)), *dg = calloc(C, sizeof(double));
    float *u = malloc(C * C * sizeof(float)), *wz = malloc(R * C * sizeof(float));
    double *acc = malloc(C * sizeof(double)), *aabs = malloc(C * sizeof(double));
    double *adel = malloc(C * sizeof(double)), *bacc = malloc(C * sizeof(double));
    double *babs = malloc(C * sizeof(double)), *bdel = malloc(C * sizeof(double));
    double *x = malloc(C * sizeof(double)), *del = malloc(C * sizeof(double));
    double *vg = malloc(C * sizeof(double)), *f = malloc(C * sizeof(double));
    double *ginv = malloc(C * C * sizeof(double));
    /* the permutation: stable descending diag(H), a dead diagonal counting as 1 */
    for (size_t j = 0; j < C; j++) {
        perm[j] = j;
        dg[j] = h[j * C + j] == 0.0f ? 1.0 : (double)h[j * C + j];
    }
    if (p->act_order) {
        for (size_t i = 1; i < C; i++) { /* insertion sort: stable */
            const size_t v = perm[i];
            size_t k = i;
            while (k > 0 && dg[perm[k - 1]] < dg[v]) {
                perm[k] = perm[k - 1];
                k--;
            }
            perm[k] = v;
        }
    }
    for (size_t i = 0; i < C; i++) {
        for (size_t j = 0; j < C; j++) {
            hd[i * C + j] = (double)h[perm[i] * C + perm[j]];
        }
        if (hd[i * C + i] == 0.0) {
            hd[i * C + i] = 1.0;
        }
    }
    cs_gptq_hinv(u, hd, C, p->percdamp, p->damp_step, p->damp_max, p->hinv, NULL, NULL);
    /* ginv = U^-1 (upper; back substitution in double): G[c][k] = U[c][c] ginv[k][c] */
    memset(ginv, 0, C * C * sizeof(double));
    for (size_t j = 0; j < C; j++) {
        ginv[j * C + j] = 1.0 / (double)u[j * C + j];
        for (size_t i = j; i-- > 0;) {
            double t = 0.0;
            for (size_t k = i + 1; k <= j; k++) {
                t += (double)u[i * C + k] * ginv[k * C + j];
            }
            ginv[i * C + j] = -t / (double)u[i * C + i];
        }
    }
    memcpy(wz, w, R * C * sizeof(float));
    for (size_t j = 0; j < C; j++) {
        if (h[j * C + j] == 0.0f) {
            for (size_t r = 0; r < R; r++) {
                wz[r * C + j] = 0.0f;
            }
        }
    }
    for (size_t r = 0; r < R; r++) {
        cs_qparam rowp, cur;
        double dscale = 0.0;
        float zeros[3];
        int nz = 1;
        if (!gs) {
            cs_qparam_find(&rowp, &p->q, w + r * C, C); /* before dead-column zeroing */
            cur = rowp;
            zeros[0] = cur.zero;
        }
        for (size_t j = 0; j < C; j++) {
            acc[j] = aabs[j] = adel[j] = 0.0;
        }
        for (size_t c = 0; c < C; c++) {
            const double w0 = (double)wz[r * C + perm[c]];
            if (c % bs == 0) { /* the lazy update: W as the earlier blocks left it */
                memcpy(bacc, acc, C * sizeof(double));
                memcpy(babs, aabs, C * sizeof(double));
                memcpy(bdel, adel, C * sizeof(double));
            }
            if (gs && p->static_groups) {
                const size_t g0 = perm[c] / gs * gs, n = C - g0 < gs ? C - g0 : gs;
                cs_qparam_find(&cur, &p->q, wz + r * C + g0, n);
                dscale = 0.0;
                zeros[0] = cur.zero;
                nz = 1;
            } else if (gs && c % gs == 0) {
                const size_t n = C - c < gs ? C - c : gs;
                const size_t b0 = c / bs * bs;
                double dmax = 0.0;
                for (size_t j = c; j < c + n; j++) {
                    vg[j - c] = (double)wz[r * C + perm[j]] - bacc[j];
                    const double dj =
                            cs_tol_sum_bound(b0 + 4, fabs(vg[j - c] + bacc[j]) + babs[j], 2.0) +
                            bdel[j];
                    dmax = fmax(dmax, dj);
                }
                cs_tol_qparam_bounded(&cur, &dscale, zeros, &nz, &p->q, vg, n, dmax);
            }
            x[c] = w0 - acc[c];
            f[c] = cs_tol_sum_bound(c + 4, fabs(w0) + aabs[c], 2.0);
            double g = 0.0;
            for (size_t k = 0; k <= c; k++) {
                g += fabs((double)u[c * C + c] * ginv[k * C + c]) * f[k];
            }
            del[c] = g + 2.0 * CS_TOL_U * fabs(x[c]);
            rep->max_delta = fmax(rep->max_delta, del[c] / (double)cur.scale);
            if (rep->x && rep->delta) {
                rep->x[r * C + perm[c]] = x[c];
                rep->delta[r * C + perm[c]] = del[c];
            }
            const float got = out[r * C + perm[c]];
            bool ok = false;
            float want = 0.0f;
            for (int zi = 0; zi < nz && !ok; zi++) {
                cs_qparam pz = cur;
                pz.zero = zeros[zi];
                float lo, hi;
                cs_tol_level_range(&pz, x[c], del[c], dscale, &lo, &hi);
                if (zi == 0) {
                    want = cs_qparam_apply(&pz, (float)x[c]);
                    rep->near_ties += hi > lo;
                }
                ok = cs_tol_dequant_ok(&pz, dscale, lo, hi, got);
            }
            rep->checked++;
            if (!ok) {
                if (rep->bad++ == 0) {
                    rep->bad_row = r;
                    rep->bad_col = perm[c];
                    rep->got = got;
                    rep->want = want;
                }
                break;
            }
            /* follow this output's decision: e_c and its error bound */
            const double d = (double)u[c * C + c];
            const double e = (x[c] - (double)got) / d;
            const double de = del[c] / fabs(d);
            for (size_t j = c + 1; j < C; j++) {
                const double ucj = (double)u[c * C + j];
                acc[j] += e * ucj;
                aabs[j] += fabs(e * ucj);
                adel[j] += de * fabs(ucj);
            }
        }
    }
    free(perm);
    free(hd);
    free(dg);
    free(u);
    free(wz);
    free(acc);
    free(aabs);
    free(adel);
    free(bacc);
    free(babs);
    free(bdel);
    free(x);
    free(del);
    free(vg);
    free(f);
    free(ginv);
    return rep->bad == 0;
}

#endif
