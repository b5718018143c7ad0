/* cs_generate.c - see cs_generate.h. */
#include "cs_generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"

void cs_gen_params_default(cs_gen_params *p)
{
    memset(p, 0, sizeof(*p));
    p->max_new = 32;
    p->top_p = 1.0;
    p->rep_penalty = 1.0;
}

typedef struct idx_val {
    float v;
    int32_t i;
} idx_val;

static int cmp_desc(const void *a, const void *b)
{
    const idx_val *x = a, *y = b;
    if (x->v != y->v) {
        return x->v < y->v ? 1 : -1;
    }
    return x->i < y->i ? -1 : (x->i > y->i);
}

int32_t cs_gen_pick(float *logits, size_t V, const int32_t *hist, size_t n_hist,
                    const cs_gen_params *p, cs_rng *rng)
{
    if (p->rep_penalty != 1.0) {
        const float pen = (float)p->rep_penalty;
        for (size_t i = 0; i < n_hist; i++) {
            int32_t t = hist[i];
            if (t < 0 || (size_t)t >= V) {
                continue;
            }
            /* each distinct token once: skip if seen earlier */
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++) {
                seen = hist[j] == t;
            }
            if (!seen) {
                logits[t] = logits[t] < 0 ? logits[t] * pen : logits[t] / pen;
            }
        }
    }
    if (p->temperature == 0.0) {
        size_t best = 0;
        for (size_t i = 1; i < V; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return (int32_t)best;
    }
    idx_val *iv = cs_alloc_array(V, sizeof(*iv));
    if (!iv) {
        return -1;
    }
    for (size_t i = 0; i < V; i++) {
        iv[i].v = (float)(logits[i] / p->temperature);
        iv[i].i = (int32_t)i;
    }
    qsort(iv, V, sizeof(*iv), cmp_desc);
    size_t n = V;
    if (p->top_k > 0 && p->top_k < n) {
        n = p->top_k;
    }
    double mx = iv[0].v, sum = 0.0;
    double *pr = cs_alloc_array(n, sizeof(double));
    if (!pr) {
        free(iv);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        pr[i] = exp((double)iv[i].v - mx);
        sum += pr[i];
    }
    if (p->top_p < 1.0) {
        double c = 0.0;
        size_t keep = n;
        for (size_t i = 0; i < n; i++) {
            c += pr[i] / sum;
            if (c >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = 0.0;
        for (size_t i = 0; i < n; i++) {
            sum += pr[i];
        }
    }
    double u = cs_rng_uniform(rng) * sum, c = 0.0;
    int32_t pick = iv[n - 1].i;
    for (size_t i = 0; i < n; i++) {
        c += pr[i];
        if (u < c) {
            pick = iv[i].i;
            break;
        }
    }
    free(pr);
    free(iv);
    return pick;
}

cs_rc cs_generate(cs_model *m, const int32_t *prompt, size_t n_prompt, const cs_gen_params *p,
                  int32_t **out, size_t *n_out, cs_err *err)
{
    *out = NULL;
    *n_out = 0;
    if (n_prompt == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "generation needs a prompt of at least one token");
    }
    if (!(p->temperature >= 0.0) || !(p->top_p > 0.0 && p->top_p <= 1.0) ||
        !(p->rep_penalty > 0.0)) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "generation parameters: temperature %g (>= 0), top_p %g (in (0, 1]), "
                          "repetition penalty %g (> 0)",
                          p->temperature, p->top_p, p->rep_penalty);
    }
    const size_t V = m->cfg.vocab;
    cs_kvcache kv = {0};
    cs_rng rng;
    cs_rng_seed(&rng, p->seed);
    int32_t *hist = cs_alloc_array(n_prompt + p->max_new + 1, sizeof(int32_t));
    float *logits = cs_alloc_array(n_prompt, V * sizeof(float));
    cs_rc rc = CS_OK;
    if (!hist || !logits) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto cleanup;
    }
    memcpy(hist, prompt, n_prompt * sizeof(int32_t));
    size_t n = n_prompt;
    rc = cs_kvcache_init(&kv, m, 1, n_prompt + p->max_new, err);
    if (rc != CS_OK) {
        goto cleanup;
    }
    const float *last = NULL;
    if (p->max_new > 0) {
        rc = cs_model_forward(m, prompt, 1, n_prompt, NULL, &kv, NULL, logits, err);
        if (rc != CS_OK) {
            goto cleanup;
        }
        last = logits + (n_prompt - 1) * V;
    }
    for (size_t step = 0; step < p->max_new; step++) {
        memmove(logits, last, V * sizeof(float));
        int32_t t = cs_gen_pick(logits, V, hist, n, p, &rng);
        if (t < 0) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory while sampling");
            goto cleanup;
        }
        hist[n++] = t;
        bool stop = false;
        for (size_t i = 0; i < p->n_stop; i++) {
            stop = stop || p->stop[i] == t;
        }
        if (!stop && p->until) {
            stop = p->until(p->until_ctx, hist + n_prompt, n - n_prompt);
        }
        if (stop || step + 1 == p->max_new) {
            break;
        }
        rc = cs_model_forward(m, &t, 1, 1, NULL, &kv, NULL, logits, err);
        if (rc != CS_OK) {
            goto cleanup;
        }
        last = logits;
    }
    *n_out = n - n_prompt;
    *out = cs_alloc_array(*n_out ? *n_out : 1, sizeof(int32_t));
    if (!*out) {
        *n_out = 0;
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto cleanup;
    }
    memcpy(*out, hist + n_prompt, *n_out * sizeof(int32_t));
cleanup:
    cs_kvcache_fini(&kv);
    free(hist);
    free(logits);
    return rc;
}
