/* cs_wanda.c - Wanda: |W| * ||X_j|| per row, stable ordering, no weight update. */
#include "cs_wanda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"

typedef struct metric_idx {
    float s;
    size_t j;
} metric_idx;

static int cmp_metric(const void *pa, const void *pb)
{
    const metric_idx *a = pa, *b = pb;
    if (a->s != b->s) {
        return a->s < b->s ? -1 : 1;
    }
    return (a->j > b->j) - (a->j < b->j);
}

cs_rc cs_wanda_prune(float *w, size_t rows, size_t cols, const double *sumsq, double sparsity,
                     size_t prune_n, size_t prune_m, uint8_t *mask, cs_err *err)
{
    if (!w || !sumsq || rows == 0 || cols == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "wanda: empty layer (%zu x %zu)", rows, cols);
    }
    if (prune_n == 0 && !(sparsity >= 0.0 && sparsity < 1.0)) {
        return cs_err_set(err, CS_EINVAL, 0, "wanda.sparsity: expected [0, 1), got %g", sparsity);
    }
    if (prune_n != 0 &&
        (prune_m == 0 || prune_m > 64 || prune_n >= prune_m || cols % prune_m != 0)) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "wanda.prune_n:prune_m: %zu:%zu needs N < M <= 64 and cols %zu %% M == 0",
                          prune_n, prune_m, cols);
    }
    for (size_t j = 0; j < cols; j++) {
        if (!(sumsq[j] >= 0.0) || !isfinite(sumsq[j])) {
            return cs_err_set(err, CS_EINVAL, 0, "wanda: sumsq[%zu] = %g is not a finite n_j >= 0",
                              j, sumsq[j]);
        }
    }
    float *norm = cs_alloc_array(cols, sizeof(float));
    metric_idx *m = cs_alloc_array(cols, sizeof(metric_idx));
    if (!norm || !m) {
        free(norm);
        free(m);
        return cs_err_set(err, CS_ENOMEM, 0, "wanda: out of memory");
    }
    for (size_t j = 0; j < cols; j++) {
        norm[j] = sqrtf((float)sumsq[j]);
    }
    const size_t k = (size_t)((double)cols * sparsity);
    for (size_t r = 0; r < rows; r++) {
        float *row = w + r * cols;
        uint8_t *mrow = mask ? mask + r * cols : NULL;
        if (mrow) {
            memset(mrow, 0, cols);
        }
        for (size_t j = 0; j < cols; j++) {
            m[j] = (metric_idx){.s = fabsf(row[j]) * norm[j], .j = j};
        }
        if (prune_n == 0) {
            qsort(m, cols, sizeof(*m), cmp_metric);
            for (size_t i = 0; i < k; i++) {
                row[m[i].j] = 0.0f;
                if (mrow) {
                    mrow[m[i].j] = 1;
                }
            }
        } else {
            for (size_t j0 = 0; j0 < cols; j0 += prune_m) {
                qsort(m + j0, prune_m, sizeof(*m), cmp_metric);
                for (size_t i = 0; i < prune_n; i++) {
                    row[m[j0 + i].j] = 0.0f;
                    if (mrow) {
                        mrow[m[j0 + i].j] = 1;
                    }
                }
            }
        }
    }
    free(norm);
    free(m);
    return CS_OK;
}
