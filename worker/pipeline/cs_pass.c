/* cs_pass.c - see cs_pass.h. */
#include "cs_pass.h"

#include <string.h>

#include "cs_hessian.h"

/* Rows a block pass runs at a time (about; whole sequences, see cs_pass_seqs). */
#define PASS_ROWS 4096

static size_t gcd(size_t a, size_t b)
{
    while (b) {
        size_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

size_t cs_pass_seqs(size_t n, size_t T)
{
    size_t k = CS_HESSIAN_BATCH_ROWS /
               gcd(T, CS_HESSIAN_BATCH_ROWS); /* k sequences: a multiple of 256 rows */
    size_t per = PASS_ROWS / (k * T);
    per = (per ? per : 1) * k;
    return per < n ? per : n;
}

cs_rc cs_pass_block(cs_model *m, size_t layer, float *x, float *scratch, size_t n, size_t T,
                    const size_t *lens, const cs_hooks *hooks, const bool *stopped, cs_err *err)
{
    const size_t H = m->cfg.hidden, per = cs_pass_seqs(n, T);
    for (size_t s0 = 0; s0 < n; s0 += per) {
        size_t nb = n - s0 < per ? n - s0 : per;
        float *xc = x + s0 * T * H;
        if (scratch) {
            memcpy(scratch, xc, nb * T * H * sizeof(float));
            xc = scratch;
        }
        cs_rc rc = cs_model_block(m, layer, xc, nb, T, lens ? lens + s0 : NULL, hooks, err);
        if (rc == CS_ECANCELED && stopped && *stopped) {
            rc = CS_OK;
        }
        if (rc != CS_OK) {
            return rc;
        }
    }
    return CS_OK;
}
