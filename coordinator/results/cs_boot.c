/* cs_boot.c - the paired bootstrap, the p-value and Holm-Bonferroni of the results module
 * (cs_agg.h; definitions in docs/results.md). */
#include <stdlib.h>

#include "cs_agg.h"
#include "cs_alloc.h"

double cs_agg_pvalue(size_t le, size_t ge, size_t b)
{
    size_t k = le < ge ? le : ge;
    double p = 2.0 * ((double)k + 1.0) / ((double)b + 1.0);
    return p < 1.0 ? p : 1.0;
}

typedef struct holm_key {
    double p;
    size_t i;
} holm_key;

static int holm_cmp(const void *a, const void *b)
{
    const holm_key *x = a, *y = b;
    if (x->p != y->p) {
        return x->p < y->p ? -1 : 1;
    }
    return x->i < y->i ? -1 : (x->i > y->i);
}

cs_rc cs_agg_holm(const double *p, size_t n, double *adj, cs_err *err)
{
    holm_key *k = cs_alloc_array(n, sizeof(*k));
    if (k == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "results: Holm adjustment of %zu p-values", n);
    }
    for (size_t i = 0; i < n; i++) {
        k[i] = (holm_key){p[i], i};
    }
    qsort(k, n, sizeof(*k), holm_cmp);
    double run = 0.0;
    for (size_t r = 0; r < n; r++) {
        double v = (double)(n - r) * k[r].p;
        run = v > run ? v : run;
        adj[k[r].i] = run < 1.0 ? run : 1.0;
    }
    free(k);
    return CS_OK;
}
