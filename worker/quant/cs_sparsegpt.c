/* cs_sparsegpt.c - SparseGPT fasterprune: GPTQ's column sweep with a mask instead of a grid. */
#include "cs_sparsegpt.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cs_alloc.h"
#include "cs_log.h"

void cs_sparsegpt_params_default(cs_sparsegpt_params *p)
{
    *p = (cs_sparsegpt_params){
            .sparsity = 0.5,
            .prune_n = 0,
            .prune_m = 0,
            .blocksize = 128,
            .percdamp = 0.01,
            .damp_step = 0.01,
            .damp_max = 0.2,
            .quant = {.family = CS_QF_GPTQ, .bits = 0, .sym = false},
    };
}

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static cs_rc check(const cs_sparsegpt_params *p, cs_err *err)
{
    if (p->prune_n == 0 && !(p->sparsity >= 0.0 && p->sparsity < 1.0)) {
        return cs_err_set(err, CS_EINVAL, 0, "sparsegpt.sparsity: expected [0, 1), got %g",
                          p->sparsity);
    }
    if (p->prune_n != 0 && (p->prune_m == 0 || p->prune_m > 64 || p->prune_n >= p->prune_m ||
                            p->blocksize % p->prune_m != 0)) {
        return cs_err_set(
                err, CS_EINVAL, 0,
                "sparsegpt.prune_n:prune_m: %zu:%zu needs N < M <= 64 and blocksize %zu %% M "
                "== 0",
                p->prune_n, p->prune_m, p->blocksize);
    }
    if (p->blocksize == 0 || !(p->percdamp > 0.0 && p->percdamp <= 1.0)) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "sparsegpt: blocksize must be >= 1, percdamp in (0, 1]");
    }
    if (p->quant.bits != 0) {
        return cs_qspec_check(&p->quant, err);
    }
    return CS_OK;
}

/* Kept whole (> 120 lines): it mirrors the reference loop, SparseGPT.fasterprune (IST-DASLab). */
cs_rc cs_sparsegpt_prune(float *w, size_t rows, size_t cols, const float *h,
                         const cs_sparsegpt_params *p, uint8_t *mask, cs_gptq_result *res,
                         cs_err *err)
{
    const size_t R = rows, C = cols;
    cs_gptq_result lres = {0};
    float *u = NULL, *w1t = NULL, *et = NULL, *sc = NULL;
    double *hd = NULL;
    uint8_t *m1 = NULL;
    cs_qparam *rowp = NULL;
    cs_rc rc;

    if (!w || !h || R == 0 || C == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "sparsegpt: empty layer (%zu x %zu)", R, C);
    }
    if (R > (size_t)INT_MAX || C > ((size_t)1 << 20)) {
        return cs_err_set(err, CS_ETOOBIG, 0, "sparsegpt: layer %zu x %zu is too large", R, C);
    }
    rc = check(p, err);
    if (rc != CS_OK) {
        return rc;
    }
    for (size_t i = 0; i < C * C; i++) {
        if (!isfinite(h[i])) {
            return cs_err_set(err, CS_EINVAL, 0, "sparsegpt: H[%zu][%zu] is not finite", i / C,
                              i % C);
        }
    }
    const size_t bs = p->blocksize < C ? p->blocksize : C;
    u = cs_alloc_array(C * C, sizeof(float));
    hd = cs_alloc_array(C * C, sizeof(double));
    w1t = cs_alloc_array(bs * R, sizeof(float));
    et = cs_alloc_array(bs * R, sizeof(float));
    sc = cs_alloc_array(bs * R, sizeof(float));
    m1 = cs_alloc_array(bs * R, 1);
    rowp = p->quant.bits ? cs_alloc_array(R, sizeof(cs_qparam)) : NULL;
    if (!u || !hd || !w1t || !et || !sc || !m1 || (p->quant.bits && !rowp)) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "sparsegpt: out of memory for a %zu x %zu layer", R, C);
        goto out;
    }
    if (rowp) {
        for (size_t r = 0; r < R; r++) {
            cs_qparam_find(&rowp[r], &p->quant, w + r * C, C);
        }
    }
    for (size_t i = 0; i < C * C; i++) {
        hd[i] = (double)h[i];
    }
    for (size_t j = 0; j < C; j++) {
        if (hd[j * C + j] == 0.0) {
            hd[j * C + j] = 1.0;
            lres.n_dead++;
            for (size_t r = 0; r < R; r++) {
                w[r * C + j] = 0.0f;
            }
        }
    }
    rc = cs_gptq_hinv(u, hd, C, p->percdamp, p->damp_step, p->damp_max, CS_GPTQ_HINV_REF, &lres,
                      err);
    if (rc == CS_ENUMERIC) {
        lres.rtn_fallback = true;
        cs_log(CS_LOG_WARN, "%s; this %zu x %zu layer is pruned by magnitude (U = I)",
               err ? err->msg : "H not positive definite", R, C);
        rc = CS_OK;
        if (err) {
            memset(err, 0, sizeof(*err));
        }
    } else if (rc != CS_OK) {
        goto out;
    }

    double loss = 0.0;
    for (size_t i1 = 0; i1 < C; i1 += bs) {
        const size_t i2 = i1 + bs < C ? i1 + bs : C, nb = i2 - i1;
        for (size_t r = 0; r < R; r++) {
            for (size_t k = 0; k < nb; k++) {
                w1t[k * R + r] = w[r * C + i1 + k];
            }
        }
        memset(m1, 0, nb * R);
        if (p->prune_n == 0) {
            for (size_t k = 0; k < nb; k++) {
                const float d = u[(i1 + k) * C + i1 + k], d2 = d * d;
                for (size_t r = 0; r < R; r++) {
                    const float v = w1t[k * R + r];
                    sc[k * R + r] = (v * v) / d2;
                }
            }
            float *sorted = et; /* et is free until the sweep: sort a copy of the scores there */
            memcpy(sorted, sc, nb * R * sizeof(float));
            qsort(sorted, nb * R, sizeof(float), cmp_float);
            size_t idx = (size_t)((double)(nb * R) * p->sparsity);
            idx = idx < nb * R ? idx : nb * R - 1;
            const float thr = sorted[idx];
            for (size_t i = 0; i < nb * R; i++) {
                m1[i] = sc[i] <= thr;
            }
        }
        for (size_t i = 0; i < nb; i++) {
            const size_t c = i1 + i;
            if (p->prune_n != 0 && i % p->prune_m == 0) {
                const size_t M = p->prune_m;
                for (size_t r = 0; r < R; r++) {
                    float s[64];
                    size_t ord[64];
                    const size_t mm = M;
                    for (size_t k = 0; k < mm; k++) {
                        const float d = u[(c + k) * C + c + k], v = w1t[(i + k) * R + r];
                        s[k] = (v * v) / (d * d);
                        ord[k] = k;
                    }
                    for (size_t k = 1; k < mm; k++) { /* insertion sort by (score, index) */
                        size_t t = ord[k], q = k;
                        while (q > 0 && s[ord[q - 1]] > s[t]) {
                            ord[q] = ord[q - 1];
                            q--;
                        }
                        ord[q] = t;
                    }
                    for (size_t k = 0; k < p->prune_n; k++) {
                        m1[(i + ord[k]) * R + r] = 1;
                    }
                }
            }
            const float d = u[c * C + c];
            float *wcol = w1t + i * R, *ecol = et + i * R;
            const uint8_t *mcol = m1 + i * R;
            for (size_t r = 0; r < R; r++) {
                const float wv = wcol[r];
                float qv = mcol[r] ? 0.0f : wv;
                if (rowp) {
                    qv = cs_qparam_apply(&rowp[r], qv);
                }
                const float diff = wv - qv;
                loss += (double)((diff * diff) / (d * d));
                ecol[r] = diff / d;
                wcol[r] = qv; /* column i is final: keep Q in place */
            }
            const float *urow = u + c * C + i1;
            for (size_t k = i + 1; k < nb; k++) {
                const float uk = urow[k];
                float *dst = w1t + k * R;
                for (size_t r = 0; r < R; r++) {
                    dst[r] -= ecol[r] * uk;
                }
            }
        }
        for (size_t r = 0; r < R; r++) {
            for (size_t k = 0; k < nb; k++) {
                w[r * C + i1 + k] = w1t[k * R + r];
                if (mask) {
                    mask[r * C + i1 + k] = m1[k * R + r];
                }
            }
        }
        if (i2 < C) {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)R, (int)(C - i2), (int)nb,
                        -1.0f, et, (int)R, u + i1 * C + i2, (int)C, 1.0f, w + i2, (int)C);
        }
    }
    lres.loss = loss / 2.0;

out:
    if (res) {
        *res = lres;
    }
    free(u);
    free(hd);
    free(w1t);
    free(et);
    free(sc);
    free(m1);
    free(rowp);
    return rc;
}
