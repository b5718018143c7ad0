/* cs_gptq.c - GPTQ fasterquant in C: LAPACK for the inverse Hessian factor, BLAS for the lazy
 * batch update, and a column sweep that reproduces the reference's fp32 arithmetic. */
#include "cs_gptq.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <lapacke.h>
#include <pthread.h>

#include "cs_alloc.h"
#include "cs_log.h"
#include "cs_time.h"

#define ROW_TILE    128 /* rows per tile of the in-block sweep */
#define MAX_THREADS 16  /* threads of the in-block sweep */

void cs_gptq_params_default(cs_gptq_params *p)
{
    *p = (cs_gptq_params){
            .q = {.family = CS_QF_GPTQ, .bits = 4, .sym = false},
            .group_size = -1,
            .percdamp = 0.01,
            .blocksize = 128,
            .act_order = false,
            .static_groups = false,
            .damp_step = 0.01,
            .damp_max = 0.2,
    };
}

cs_rc cs_gptq_params_check(const cs_gptq_params *p, size_t cols, cs_err *err)
{
    cs_rc rc = cs_qspec_check(&p->q, err);
    if (rc != CS_OK) {
        return rc;
    }
    if (p->group_size != -1 && (p->group_size < 1 || (size_t)p->group_size > cols)) {
        return cs_err_set(err, CS_EINVAL, 0, "gptq.group_size: expected -1 or 1..%zu, got %ld",
                          cols, p->group_size);
    }
    if (!(p->percdamp > 0.0) || !(p->percdamp <= 1.0)) {
        return cs_err_set(err, CS_EINVAL, 0, "gptq.percdamp: expected (0, 1], got %g", p->percdamp);
    }
    if (p->blocksize < 1) {
        return cs_err_set(err, CS_EINVAL, 0, "gptq.blocksize: must be >= 1");
    }
    if (p->static_groups && p->group_size == -1) {
        return cs_err_set(err, CS_EINVAL, 0, "gptq.static_groups: needs a group_size");
    }
    if (p->hinv != CS_GPTQ_HINV_REF && p->hinv != CS_GPTQ_HINV_UL) {
        return cs_err_set(err, CS_EINVAL, 0, "gptq.hinv: unknown method %d", (int)p->hinv);
    }
    if (!(p->damp_step >= 0.0) || !(p->damp_max >= 0.0)) {
        return cs_err_set(err, CS_EINVAL, 0, "gptq.damp_step/damp_max: must be >= 0");
    }
    return CS_OK;
}

/* One factorization attempt: a = hd + damp I; then the reference's three LAPACK calls, in the
 * same column-major form torch issues them (cholesky 'L', cholesky_inverse = potri 'L', cholesky
 * upper = potrf 'U'). H and H^-1 are symmetric, so the row-major buffer is already their
 * column-major copy and no transposition is needed; that also makes U bit-identical to torch's.
 * On success the column-major upper factor is left in a (row-major view: its lower triangle holds
 * U transposed). 0 on success. */
static int hinv_try(double *a, const double *hd, size_t c, double damp)
{
    memcpy(a, hd, c * c * sizeof(double));
    for (size_t j = 0; j < c; j++) {
        a[j * c + j] += damp;
    }
    const lapack_int n = (lapack_int)c;
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, a, n);
    if (info != 0) {
        return 1;
    }
    info = LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', n, a, n);
    if (info != 0) {
        return 1;
    }
    /* column-major lower = row-major upper is valid: mirror it to the row-major lower, blocked */
    const size_t bk = 64;
    for (size_t i0 = 0; i0 < c; i0 += bk) {
        for (size_t j0 = i0; j0 < c; j0 += bk) {
            const size_t i1 = i0 + bk < c ? i0 + bk : c, j1 = j0 + bk < c ? j0 + bk : c;
            for (size_t i = i0; i < i1; i++) {
                for (size_t j = j0 > i + 1 ? j0 : i + 1; j < j1; j++) {
                    a[j * c + i] = a[i * c + j];
                }
            }
        }
    }
    info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', n, a, n);
    return info != 0;
}

/* The UL route: a = J (hd + damp I) J (J reverses the order), lower Cholesky L (column-major),
 * then V = J L J is upper with hd + damp I = V V^T; reversing the whole buffer turns L into V,
 * and U = V^-1 (trtri) is the upper Cholesky factor of the inverse. Leaves U in column-major
 * upper form like hinv_try. 0 on success. */
static int hinv_try_ul(double *a, const double *hd, size_t c, double damp)
{
    const size_t nn = c * c;
    for (size_t k = 0; k < nn; k++) {
        a[k] = hd[nn - 1 - k];
    }
    for (size_t j = 0; j < c; j++) {
        a[j * c + j] += damp;
    }
    const lapack_int n = (lapack_int)c;
    lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, a, n);
    if (info != 0) {
        return 1;
    }
    for (size_t k = 0; k < nn / 2; k++) {
        const double t = a[k];
        a[k] = a[nn - 1 - k];
        a[nn - 1 - k] = t;
    }
    info = LAPACKE_dtrtri(LAPACK_COL_MAJOR, 'U', 'N', n, a, n);
    return info != 0;
}

cs_rc cs_gptq_hinv(float *u, const double *hd, size_t cols, double percdamp, double damp_step,
                   double damp_max, cs_gptq_hinv_method method, cs_gptq_result *res, cs_err *err)
{
    const size_t c = cols;
    double *a = cs_alloc_array(c * c, sizeof(double));
    if (!a) {
        return cs_err_set(err, CS_ENOMEM, 0, "gptq: out of memory for a %zu x %zu inverse", c, c);
    }
    double mean = 0.0;
    for (size_t j = 0; j < c; j++) {
        mean += hd[j * c + j];
    }
    mean /= (double)c;
    double pd = percdamp;
    int retries = 0;
    cs_rc rc = CS_OK;
    for (;;) {
        const int bad = method == CS_GPTQ_HINV_UL ? hinv_try_ul(a, hd, c, pd * mean)
                                                  : hinv_try(a, hd, c, pd * mean);
        if (!bad) {
            break;
        }
        retries++;
        if (damp_step <= 0.0 || pd + damp_step > damp_max + 1e-12) {
            rc = cs_err_set(err, CS_ENUMERIC, 0,
                            "gptq: H not positive definite even with percdamp %g (%d tries)", pd,
                            retries);
            break;
        }
        pd += damp_step;
    }
    if (res) {
        res->percdamp = pd;
        res->damp = pd * mean;
        res->retries = retries;
    }
    /* u (row-major upper) = the column-major upper factor: u[i][j] = a[j * c + i], blocked */
    const size_t bk = 64;
    for (size_t i0 = 0; i0 < c; i0 += bk) {
        for (size_t j0 = 0; j0 < c; j0 += bk) {
            const size_t i1 = i0 + bk < c ? i0 + bk : c, j1 = j0 + bk < c ? j0 + bk : c;
            for (size_t i = i0; i < i1; i++) {
                for (size_t j = j0; j < j1; j++) {
                    if (rc == CS_OK) {
                        u[i * c + j] = j >= i ? (float)a[j * c + i] : 0.0f;
                    } else {
                        u[i * c + j] = i == j ? 1.0f : 0.0f;
                    }
                }
            }
        }
    }
    free(a);
    return rc;
}

typedef struct diag_idx {
    double d;
    size_t i;
} diag_idx;

static int cmp_desc_stable(const void *pa, const void *pb)
{
    const diag_idx *a = pa, *b = pb;
    if (a->d != b->d) {
        return a->d > b->d ? -1 : 1;
    }
    return a->i < b->i ? -1 : (a->i > b->i);
}

/* The in-block sweep over rows [r_begin, r_end) of one block, in tiles of ROW_TILE rows: rows are
 * independent inside a block (their parameters are per row), and a tile's block (ROW_TILE x
 * blocksize floats) stays in cache during the rank-1 updates. Per element, the arithmetic is the
 * reference's. Parts of one block touch disjoint rows, so they run on separate threads. */
typedef struct sweep_ctx {
    const cs_gptq_params *p;
    size_t R, C, gs;
    const float *u;
    float *wp, *et;
    const size_t *perm;
    cs_qparam *rowp;
    const cs_qparam *statp;
} sweep_ctx;

typedef struct sweep_part {
    const sweep_ctx *x;
    size_t i1, nb, r_begin, r_end;
    float *w1t, *q1t; /* ROW_TILE x nb scratch each */
    double loss;
} sweep_part;

static void sweep_rows(sweep_part *sp)
{
    const sweep_ctx *x = sp->x;
    const size_t R = x->R, C = x->C, gs = x->gs, i1 = sp->i1, nb = sp->nb;
    const float *u = x->u;
    float *wp = x->wp, *w1t = sp->w1t, *q1t = sp->q1t;
    double loss = 0.0;
    for (size_t r0 = sp->r_begin; r0 < sp->r_end; r0 += ROW_TILE) {
        const size_t rt = sp->r_end - r0 < ROW_TILE ? sp->r_end - r0 : ROW_TILE;
        for (size_t rr = 0; rr < rt; rr++) {
            const float *src = wp + (r0 + rr) * C + i1;
            for (size_t k = 0; k < nb; k++) {
                w1t[k * rt + rr] = src[k];
            }
        }
        for (size_t i = 0; i < nb; i++) {
            const size_t c = i1 + i;
            const cs_qparam *curp = x->rowp;
            if (gs && x->statp) {
                curp = x->statp + ((x->p->act_order ? x->perm[c] : c) / gs) * R;
            } else if (gs && c % gs == 0) {
                const size_t n = C - c < gs ? C - c : gs;
                for (size_t rr = 0; rr < rt; rr++) {
                    cs_qparam_find(&x->rowp[r0 + rr], &x->p->q, wp + (r0 + rr) * C + c, n);
                }
            }
            const cs_qparam *cp = curp + r0;
            const float d = u[c * C + c];
            float *wcol = w1t + i * rt, *qcol = q1t + i * rt, *ecol = x->et + i * R + r0;
            for (size_t rr = 0; rr < rt; rr++) {
                const float wv = wcol[rr];
                const float qv = cs_qparam_apply(&cp[rr], wv);
                const float diff = wv - qv;
                qcol[rr] = qv;
                loss += (double)((diff * diff) / (d * d));
                ecol[rr] = diff / d;
            }
            const float *urow = u + c * C + i1;
            for (size_t k = i + 1; k < nb; k++) {
                const float uk = urow[k];
                float *dst = w1t + k * rt;
                for (size_t rr = 0; rr < rt; rr++) {
                    dst[rr] -= ecol[rr] * uk;
                }
            }
        }
        for (size_t rr = 0; rr < rt; rr++) {
            float *dst = wp + (r0 + rr) * C + i1;
            for (size_t k = 0; k < nb; k++) {
                dst[k] = q1t[k * rt + rr];
            }
        }
    }
    sp->loss = loss;
}

static void *sweep_thread(void *arg)
{
    sweep_rows(arg);
    return NULL;
}

/* Kept whole (> 120 lines): it mirrors the reference loop, GPTQ.fasterquant (IST-DASLab). */
cs_rc cs_gptq_quantize(float *w, size_t rows, size_t cols, const float *h, const cs_gptq_params *p,
                       cs_gptq_result *res, cs_err *err)
{
    const size_t R = rows, C = cols;
    cs_gptq_result lres = {0};
    float *wp = NULL, *u = NULL, *w1t = NULL, *et = NULL, *q1t = NULL;
    double *hd = NULL;
    size_t *perm = NULL;
    diag_idx *di = NULL;
    cs_qparam *rowp = NULL, *statp = NULL;
    cs_rc rc = CS_OK;

    if (!w || !h || R == 0 || C == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "gptq: empty layer (%zu x %zu)", R, C);
    }
    if (R > (size_t)INT_MAX || C > ((size_t)1 << 20)) {
        return cs_err_set(err, CS_ETOOBIG, 0, "gptq: layer %zu x %zu is too large", R, C);
    }
    rc = cs_gptq_params_check(p, C, err);
    if (rc != CS_OK) {
        return rc;
    }
    for (size_t i = 0; i < C * C; i++) {
        if (!isfinite(h[i])) {
            return cs_err_set(err, CS_EINVAL, 0, "gptq: H[%zu][%zu] is not finite", i / C, i % C);
        }
    }
    uint64_t t0 = cs_time_mono_ns(), t1;
    const size_t bs = p->blocksize < C ? p->blocksize : C;
    const size_t gs = p->group_size > 0 ? (size_t)p->group_size : 0;
    const size_t ngroups = gs ? (C + gs - 1) / gs : 0;
    wp = cs_alloc_array(R * C, sizeof(float));
    u = cs_alloc_array(C * C, sizeof(float));
    hd = cs_alloc_array(C * C, sizeof(double));
    const size_t tile_rows = (R + ROW_TILE - 1) / ROW_TILE * ROW_TILE;
    w1t = cs_alloc_array(bs * tile_rows, sizeof(float));
    et = cs_alloc_array(bs * R, sizeof(float));
    q1t = cs_alloc_array(bs * tile_rows, sizeof(float));
    perm = cs_alloc_array(C, sizeof(size_t));
    di = cs_alloc_array(C, sizeof(diag_idx));
    rowp = cs_alloc_array(R, sizeof(cs_qparam));
    statp = gs && p->static_groups ? cs_alloc_array(ngroups * R, sizeof(cs_qparam)) : NULL;
    if (!wp || !u || !hd || !w1t || !et || !q1t || !perm || !di || !rowp ||
        (gs && p->static_groups && !statp)) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "gptq: out of memory for a %zu x %zu layer", R, C);
        goto out;
    }

    /* Per-row parameters from W before dead-column zeroing (quant.py find_params(W)). */
    if (!gs) {
        for (size_t r = 0; r < R; r++) {
            cs_qparam_find(&rowp[r], &p->q, w + r * C, C);
        }
    }
    memcpy(wp, w, R * C * sizeof(float));
    for (size_t j = 0; j < C; j++) {
        if (h[j * C + j] == 0.0f) {
            lres.n_dead++;
            for (size_t r = 0; r < R; r++) {
                wp[r * C + j] = 0.0f;
            }
        }
    }
    if (statp) { /* pre-GPTQ weights, original contiguous groups */
        for (size_t g = 0; g < ngroups; g++) {
            const size_t c0 = g * gs, n = C - c0 < gs ? C - c0 : gs;
            for (size_t r = 0; r < R; r++) {
                cs_qparam_find(&statp[g * R + r], &p->q, wp + r * C + c0, n);
            }
        }
    }
    for (size_t j = 0; j < C; j++) {
        const float d = h[j * C + j];
        di[j] = (diag_idx){.d = d == 0.0f ? 1.0 : (double)d, .i = j};
    }
    if (p->act_order) {
        qsort(di, C, sizeof(*di), cmp_desc_stable);
    }
    for (size_t j = 0; j < C; j++) {
        perm[j] = di[j].i;
    }
    /* Permuted double H (dead diagonal = 1) and permuted W. */
    for (size_t i = 0; i < C; i++) {
        for (size_t j = 0; j < C; j++) {
            hd[i * C + j] = (double)h[perm[i] * C + perm[j]];
        }
        if (hd[i * C + i] == 0.0) {
            hd[i * C + i] = 1.0;
        }
    }
    if (p->act_order) {
        for (size_t r = 0; r < R; r++) {
            float *row = wp + r * C;
            for (size_t j = 0; j < C; j++) {
                w[r * C + j] = row[perm[j]]; /* w is free until the end: use it as scratch */
            }
        }
        memcpy(wp, w, R * C * sizeof(float));
    }

    t1 = cs_time_mono_ns();
    lres.t_prep = (double)(t1 - t0) / 1e9;
    t0 = t1;
    rc = cs_gptq_hinv(u, hd, C, p->percdamp, p->damp_step, p->damp_max, p->hinv, &lres, err);
    t1 = cs_time_mono_ns();
    lres.t_hinv = (double)(t1 - t0) / 1e9;
    if (rc == CS_ENUMERIC) {
        lres.rtn_fallback = true;
        cs_log(CS_LOG_WARN, "%s; this %zu x %zu layer falls back to RTN",
               err ? err->msg : "H not positive definite", R, C);
        rc = CS_OK;
        if (err) {
            memset(err, 0, sizeof(*err));
        }
    } else if (rc != CS_OK) {
        goto out;
    }

    const size_t ntiles = (R + ROW_TILE - 1) / ROW_TILE;
    size_t threads = p->threads;
    if (threads == 0) {
        const int ob = openblas_get_num_threads();
        threads = ob > 0 ? (size_t)ob : 1;
    }
    threads = threads > MAX_THREADS ? MAX_THREADS : threads;
    sweep_ctx sx = {.p = p,
                    .R = R,
                    .C = C,
                    .gs = gs,
                    .u = u,
                    .wp = wp,
                    .et = et,
                    .perm = perm,
                    .rowp = rowp,
                    .statp = statp};
    sweep_part parts[MAX_THREADS];
    pthread_t tids[MAX_THREADS];
    double loss = 0.0;
    t0 = cs_time_mono_ns();
    for (size_t i1 = 0; i1 < C; i1 += bs) {
        const size_t i2 = i1 + bs < C ? i1 + bs : C, nb = i2 - i1;
        size_t nthr = 1;
        if (threads > 1) {
            nthr = threads < ntiles ? threads : ntiles;
        }
        for (size_t k = 0; k < nthr; k++) {
            const size_t t_lo = ntiles * k / nthr, t_hi = ntiles * (k + 1) / nthr;
            parts[k] = (sweep_part){.x = &sx,
                                    .i1 = i1,
                                    .nb = nb,
                                    .r_begin = t_lo * ROW_TILE,
                                    .r_end = t_hi * ROW_TILE < R ? t_hi * ROW_TILE : R,
                                    .w1t = w1t + k * ROW_TILE * bs,
                                    .q1t = q1t + k * ROW_TILE * bs,
                                    .loss = 0.0};
        }
        size_t started = 0;
        for (size_t k = 1; k < nthr; k++) {
            if (pthread_create(&tids[k], NULL, sweep_thread, &parts[k]) != 0) {
                break;
            }
            started = k;
        }
        sweep_rows(&parts[0]);
        for (size_t k = started + 1; k < nthr; k++) {
            sweep_rows(&parts[k]); /* a thread that could not start: run it here */
        }
        for (size_t k = 1; k <= started; k++) {
            pthread_join(tids[k], NULL);
        }
        for (size_t k = 0; k < nthr; k++) {
            loss += parts[k].loss;
        }
        t1 = cs_time_mono_ns();
        lres.t_sweep += (double)(t1 - t0) / 1e9;
        t0 = t1;
        if (i2 < C) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)R, (int)(C - i2), (int)nb,
                        -1.0f, et, (int)R, u + i1 * C + i2, (int)C, 1.0f, wp + i2, (int)C);
        }
        t1 = cs_time_mono_ns();
        lres.t_update += (double)(t1 - t0) / 1e9;
        t0 = t1;
    }
    lres.loss = loss / 2.0;
    for (size_t r = 0; r < R; r++) {
        for (size_t j = 0; j < C; j++) {
            w[r * C + perm[j]] = wp[r * C + j];
        }
    }

out:
    if (res) {
        *res = lres;
    }
    free(wp);
    free(u);
    free(hd);
    free(w1t);
    free(et);
    free(q1t);
    free(perm);
    free(di);
    free(rowp);
    free(statp);
    return rc;
}
