/* cs_forward.c - the forward pass; see cs_model.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cs_alloc.h"
#include "cs_kernels.h"
#include "cs_model.h"

cs_rc cs_kvcache_init(cs_kvcache *c, const cs_model *m, size_t batch, size_t cap, cs_err *err)
{
    memset(c, 0, sizeof(*c));
    c->n_layers = m->cfg.n_layers;
    c->batch = batch;
    c->cap = cap;
    c->kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
    size_t n;
    if (!cs_mul_ok(c->n_layers * batch, cap, &n) || !cs_mul_ok(n, c->kv_dim, &n)) {
        return cs_err_set(err, CS_ERANGE, 0, "key/value cache size overflows");
    }
    c->k = cs_alloc_array(n ? n : 1, sizeof(float));
    c->v = cs_alloc_array(n ? n : 1, sizeof(float));
    if (!c->k || !c->v) {
        cs_kvcache_fini(c);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory for a key/value cache of %zu floats",
                          2 * n);
    }
    return CS_OK;
}

cs_rc cs_kvcache_fork(const cs_kvcache *src, cs_kvcache *dst, cs_err *err)
{
    if (src->n_layers != dst->n_layers || src->kv_dim != dst->kv_dim || src->batch == 0 ||
        src->pos > dst->cap) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "cannot fork a key/value cache of %zu positions into one of %zu",
                          src->pos, dst->cap);
    }
    size_t row = src->pos * src->kv_dim;
    for (size_t l = 0; l < src->n_layers && row > 0; l++) {
        const float *k = src->k + l * src->batch * src->cap * src->kv_dim;
        const float *v = src->v + l * src->batch * src->cap * src->kv_dim;
        for (size_t b = 0; b < dst->batch; b++) {
            size_t off = (l * dst->batch + b) * dst->cap * dst->kv_dim;
            memcpy(dst->k + off, k, row * sizeof(float));
            memcpy(dst->v + off, v, row * sizeof(float));
        }
    }
    dst->pos = src->pos;
    return CS_OK;
}

void cs_kvcache_fini(cs_kvcache *c)
{
    if (!c) {
        return;
    }
    free(c->k);
    free(c->v);
    memset(c, 0, sizeof(*c));
}

static cs_rc call_hook(const cs_hooks *hooks, cs_hook_kind kind, size_t layer, cs_lin lin, float *x,
                       size_t rows, size_t cols, const uint8_t *valid, cs_linear *linear,
                       cs_err *err)
{
    if (!hooks || !hooks->fn || (hooks->mask && !(hooks->mask & (1u << kind)))) {
        return CS_OK;
    }
    cs_hook_event ev = {kind, layer, lin, x, rows, cols, valid, linear};
    return hooks->fn(hooks->ctx, &ev, err);
}

/* y[rows][out] = x[rows][in] w^T + b */
static void linear_fwd(const cs_linear *l, const float *x, size_t rows, float *y)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)l->out, (int)l->in, 1.0f,
                x, (int)l->in, l->w, (int)l->in, 0.0f, y, (int)l->out);
    if (l->b) {
        for (size_t r = 0; r < rows; r++) {
            float *yr = y + r * l->out;
            for (size_t i = 0; i < l->out; i++) {
                yr[i] += l->b[i];
            }
        }
    }
}

/* Per-token symmetric fake quantization of x[rows][cols] in place (cs_model.act_bits). */
static void act_fake_quant(float *x, size_t rows, size_t cols, int bits)
{
    const float qmax = (float)((1 << (bits - 1)) - 1);
    for (size_t r = 0; r < rows; r++) {
        float *xr = x + r * cols, mx = 0.0f;
        for (size_t j = 0; j < cols; j++) {
            mx = fmaxf(mx, fabsf(xr[j]));
        }
        const float scale = fmaxf(mx, 1e-5f) / qmax;
        for (size_t j = 0; j < cols; j++) {
            xr[j] = rintf(xr[j] / scale) * scale;
        }
    }
}

typedef struct block_ws {
    float *h, *q, *k, *v, *att, *o, *g, *u, *scores;
    int32_t *pos;
    uint8_t *valid;
} block_ws;

static void ws_free(block_ws *w)
{
    void *const bufs[] = {w->h, w->q, w->k,      w->v,   w->att,  w->o,
                          w->g, w->u, w->scores, w->pos, w->valid};
    cs_free_each(bufs, sizeof(bufs) / sizeof(bufs[0]));
    memset(w, 0, sizeof(*w));
}

static cs_rc ws_alloc(block_ws *w, const cs_model *m, size_t rows, size_t T, size_t L, cs_err *err)
{
    const cs_hfconfig *c = &m->cfg;
    size_t qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim;
    memset(w, 0, sizeof(*w));
    w->h = cs_alloc_array(rows, c->hidden * sizeof(float));
    w->q = cs_alloc_array(rows, qd * sizeof(float));
    w->k = cs_alloc_array(rows, kvd * sizeof(float));
    w->v = cs_alloc_array(rows, kvd * sizeof(float));
    w->att = cs_alloc_array(rows, qd * sizeof(float));
    w->o = cs_alloc_array(rows, c->hidden * sizeof(float));
    w->g = cs_alloc_array(rows, c->intermediate * sizeof(float));
    w->u = cs_alloc_array(rows, c->intermediate * sizeof(float));
    w->scores = cs_alloc_array(T, L * sizeof(float));
    w->pos = cs_alloc_array(rows, sizeof(int32_t));
    w->valid = cs_alloc_array(rows, 1);
    if (!w->h || !w->q || !w->k || !w->v || !w->att || !w->o || !w->g || !w->u || !w->scores ||
        !w->pos || !w->valid) {
        ws_free(w);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory for the forward pass (%zu rows)", rows);
    }
    return CS_OK;
}

/* One block on x[B*T][H], tokens at positions pos0..pos0+T-1. kc/vc: this layer's cache
 * [B][cap][kvd] (cap >= pos0+T) holding pos0 earlier entries, or NULL (then pos0 == 0 and k/v of
 * the workspace are used directly). */
static cs_rc block_fwd(cs_model *m, size_t layer, float *x, size_t B, size_t T, size_t pos0,
                       float *kc, float *vc, size_t cap, block_ws *w, const cs_hooks *hooks,
                       cs_err *err)
{
    const cs_hfconfig *c = &m->cfg;
    cs_layer *Ly = &m->layers[layer];
    const size_t H = c->hidden, hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads;
    const size_t qd = nh * hd, kvd = nkv * hd, rows = B * T, ni = c->intermediate;
    const size_t L = pos0 + T;
    const int nt = m->n_threads;
    cs_rc rc;

    cs_rmsnorm(nt, w->h, x, Ly->attn_norm, rows, H, (float)c->rms_eps);
    for (int k = CS_LIN_Q; k <= CS_LIN_V; k++) {
        rc = call_hook(hooks, CS_HOOK_LINEAR_IN, layer, (cs_lin)k, w->h, rows, H, w->valid,
                       &Ly->lin[k], err);
        if (rc != CS_OK) {
            return rc;
        }
    }
    if (m->act_bits) {
        act_fake_quant(w->h, rows, H, m->act_bits);
    }
    linear_fwd(&Ly->lin[CS_LIN_Q], w->h, rows, w->q);
    linear_fwd(&Ly->lin[CS_LIN_K], w->h, rows, w->k);
    linear_fwd(&Ly->lin[CS_LIN_V], w->h, rows, w->v);
    cs_rope(nt, w->q, rows, qd, nh, hd, w->pos, m->inv_freq);
    cs_rope(nt, w->k, rows, kvd, nkv, hd, w->pos, m->inv_freq);
    const float *K = w->k, *V = w->v;
    size_t ldkv_b = T * kvd; /* floats between sequences */
    if (kc) {
        for (size_t b = 0; b < B; b++) {
            memcpy(kc + (b * cap + pos0) * kvd, w->k + b * T * kvd, T * kvd * sizeof(float));
            memcpy(vc + (b * cap + pos0) * kvd, w->v + b * T * kvd, T * kvd * sizeof(float));
        }
        K = kc;
        V = vc;
        ldkv_b = cap * kvd;
    }
    const float scale = 1.0f / sqrtf((float)hd);
    const size_t group = nh / nkv;
    for (size_t b = 0; b < B; b++) {
        for (size_t h = 0; h < nh; h++) {
            const float *Qh = w->q + b * T * qd + h * hd;
            const float *Kh = K + b * ldkv_b + (h / group) * hd;
            const float *Vh = V + b * ldkv_b + (h / group) * hd;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)L, (int)hd, scale, Qh,
                        (int)qd, Kh, (int)kvd, 0.0f, w->scores, (int)L);
            for (size_t i = 0; i < T; i++) {
                float *s = w->scores + i * L;
                for (size_t j = pos0 + i + 1; j < L; j++) {
                    s[j] = -INFINITY;
                }
            }
            cs_softmax_rows(nt, w->scores, T, L, L);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)hd, (int)L, 1.0f,
                        w->scores, (int)L, Vh, (int)kvd, 0.0f, w->att + b * T * qd + h * hd,
                        (int)qd);
        }
    }
    rc = call_hook(hooks, CS_HOOK_LINEAR_IN, layer, CS_LIN_O, w->att, rows, qd, w->valid,
                   &Ly->lin[CS_LIN_O], err);
    if (rc != CS_OK) {
        return rc;
    }
    if (m->act_bits) {
        act_fake_quant(w->att, rows, qd, m->act_bits);
    }
    linear_fwd(&Ly->lin[CS_LIN_O], w->att, rows, w->o);
    cs_add(nt, x, w->o, rows * H);

    cs_rmsnorm(nt, w->h, x, Ly->mlp_norm, rows, H, (float)c->rms_eps);
    for (int k = CS_LIN_GATE; k <= CS_LIN_UP; k++) {
        rc = call_hook(hooks, CS_HOOK_LINEAR_IN, layer, (cs_lin)k, w->h, rows, H, w->valid,
                       &Ly->lin[k], err);
        if (rc != CS_OK) {
            return rc;
        }
    }
    if (m->act_bits) {
        act_fake_quant(w->h, rows, H, m->act_bits);
    }
    linear_fwd(&Ly->lin[CS_LIN_GATE], w->h, rows, w->g);
    linear_fwd(&Ly->lin[CS_LIN_UP], w->h, rows, w->u);
    cs_silu_mul(nt, w->g, w->u, rows * ni);
    rc = call_hook(hooks, CS_HOOK_LINEAR_IN, layer, CS_LIN_DOWN, w->g, rows, ni, w->valid,
                   &Ly->lin[CS_LIN_DOWN], err);
    if (rc != CS_OK) {
        return rc;
    }
    if (m->act_bits) {
        act_fake_quant(w->g, rows, ni, m->act_bits);
    }
    linear_fwd(&Ly->lin[CS_LIN_DOWN], w->g, rows, w->o);
    rc = call_hook(hooks, CS_HOOK_MLP_OUT, layer, CS_LIN_COUNT, w->o, rows, H, w->valid, NULL, err);
    if (rc != CS_OK) {
        return rc;
    }
    cs_add(nt, x, w->o, rows * H);
    return call_hook(hooks, CS_HOOK_BLOCK_OUT, layer, CS_LIN_COUNT, x, rows, H, w->valid, NULL,
                     err);
}

static void set_pos(block_ws *w, size_t B, size_t T, size_t pos0, const size_t *lens)
{
    for (size_t b = 0; b < B; b++) {
        for (size_t t = 0; t < T; t++) {
            w->pos[b * T + t] = (int32_t)(pos0 + t);
            w->valid[b * T + t] = (uint8_t)(!lens || t < lens[b]);
        }
    }
}

static cs_rc check_lens(size_t B, size_t T, const size_t *lens, cs_err *err)
{
    if (B == 0 || T == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "empty batch (%zu sequences of %zu tokens)", B, T);
    }
    for (size_t b = 0; lens && b < B; b++) {
        if (lens[b] > T) {
            return cs_err_set(err, CS_EINVAL, 0, "lens[%zu] = %zu exceeds the padded length %zu", b,
                              lens[b], T);
        }
    }
    return CS_OK;
}

cs_rc cs_model_embed(const cs_model *m, const int32_t *tokens, size_t n, float *x, cs_err *err)
{
    const size_t H = m->cfg.hidden;
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || (size_t)tokens[i] >= m->cfg.vocab) {
            return cs_err_set(err, CS_ERANGE, 0,
                              "token %d at position %zu is outside the vocabulary of %zu",
                              tokens[i], i, m->cfg.vocab);
        }
        memcpy(x + i * H, m->embed + (size_t)tokens[i] * H, H * sizeof(float));
    }
    return CS_OK;
}

cs_rc cs_model_block(cs_model *m, size_t layer, float *x, size_t B, size_t T, const size_t *lens,
                     const cs_hooks *hooks, cs_err *err)
{
    block_ws w;
    if (layer >= m->cfg.n_layers) {
        return cs_err_set(err, CS_ERANGE, 0, "layer %zu: the model has %zu layers", layer,
                          m->cfg.n_layers);
    }
    cs_rc rc = check_lens(B, T, lens, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = ws_alloc(&w, m, B * T, T, T, err);
    if (rc != CS_OK) {
        return rc;
    }
    set_pos(&w, B, T, 0, lens);
    rc = block_fwd(m, layer, x, B, T, 0, NULL, NULL, 0, &w, hooks, err);
    ws_free(&w);
    return rc;
}

cs_rc cs_model_head(cs_model *m, const float *x, size_t rows, float *logits, cs_err *err)
{
    const size_t H = m->cfg.hidden;
    float *h = cs_alloc_array(rows, H * sizeof(float));
    if (!h) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cs_rmsnorm(m->n_threads, h, x, m->final_norm, rows, H, (float)m->cfg.rms_eps);
    linear_fwd(&m->lm_head, h, rows, logits);
    free(h);
    return CS_OK;
}

cs_rc cs_model_forward(cs_model *m, const int32_t *tokens, size_t B, size_t T, const size_t *lens,
                       cs_kvcache *cache, const cs_hooks *hooks, float *logits, cs_err *err)
{
    block_ws w = {0};
    float *x = NULL;
    const size_t H = m->cfg.hidden, rows = B * T;
    size_t pos0 = 0;
    cs_rc rc = check_lens(B, T, lens, err);
    if (rc != CS_OK) {
        return rc;
    }
    if (cache) {
        if (lens) {
            return cs_err_set(err, CS_EINVAL, 0, "a forward pass with a cache takes no lens");
        }
        if (cache->batch != B || cache->n_layers != m->cfg.n_layers ||
            cache->pos + T > cache->cap) {
            return cs_err_set(err, CS_ERANGE, 0,
                              "key/value cache of %zu x %zu positions cannot take %zu x %zu more "
                              "after %zu",
                              cache->batch, cache->cap, B, T, cache->pos);
        }
        pos0 = cache->pos;
    }
    x = cs_alloc_array(rows, H * sizeof(float));
    if (!x) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    rc = cs_model_embed(m, tokens, rows, x, err);
    if (rc != CS_OK) {
        goto cleanup;
    }
    rc = ws_alloc(&w, m, rows, T, pos0 + T, err);
    if (rc != CS_OK) {
        goto cleanup;
    }
    set_pos(&w, B, T, pos0, lens);
    for (size_t l = 0; l < m->cfg.n_layers; l++) {
        float *kc = NULL, *vc = NULL;
        if (cache) {
            size_t off = l * cache->batch * cache->cap * cache->kv_dim;
            kc = cache->k + off;
            vc = cache->v + off;
        }
        rc = block_fwd(m, l, x, B, T, pos0, kc, vc, cache ? cache->cap : 0, &w, hooks, err);
        if (rc != CS_OK) {
            goto cleanup;
        }
    }
    if (cache) {
        cache->pos += T;
    }
    if (logits) {
        rc = cs_model_head(m, x, rows, logits, err);
    }
cleanup:
    ws_free(&w);
    free(x);
    return rc;
}

cs_rc cs_model_logprobs(cs_model *m, const int32_t *tokens, size_t B, size_t T, const size_t *lens,
                        double *out, cs_err *err)
{
    const size_t V = m->cfg.vocab;
    float *logits = cs_alloc_array(B * T, V * sizeof(float));
    if (!logits) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory for %zu x %zu logits", B * T, V);
    }
    cs_rc rc = cs_model_forward(m, tokens, B, T, lens, NULL, NULL, logits, err);
    if (rc == CS_OK) {
        for (size_t b = 0; b < B; b++) {
            size_t n = lens ? lens[b] : T;
            for (size_t t = 0; t < T; t++) {
                out[b * T + t] = t + 1 < n ? cs_log_softmax_at(logits + (b * T + t) * V, V,
                                                               (size_t)tokens[b * T + t + 1])
                                           : 0.0;
            }
        }
    }
    free(logits);
    return rc;
}

cs_rc cs_model_ppl(cs_model *m, const int32_t *ids, size_t n, size_t window, size_t batch,
                   double *window_nll, size_t *n_windows, double *ppl, cs_err *err)
{
    if (window < 2) {
        return cs_err_set(err, CS_EINVAL, 0, "perplexity window of %zu tokens (need at least 2)",
                          window);
    }
    size_t nw = n / window;
    if (nw == 0) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "%zu tokens are fewer than one window of %zu (no perplexity)", n, window);
    }
    if (batch == 0) {
        batch = 1;
    }
    double *lp = cs_alloc_array(batch * window, sizeof(double));
    if (!lp) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cs_rc rc = CS_OK;
    double sum = 0.0;
    for (size_t w0 = 0; w0 < nw; w0 += batch) {
        size_t B = nw - w0 < batch ? nw - w0 : batch;
        rc = cs_model_logprobs(m, ids + w0 * window, B, window, NULL, lp, err);
        if (rc != CS_OK) {
            goto cleanup;
        }
        for (size_t b = 0; b < B; b++) {
            double s = 0.0;
            for (size_t t = 0; t + 1 < window; t++) {
                s -= lp[b * window + t];
            }
            s /= (double)(window - 1);
            if (window_nll) {
                window_nll[w0 + b] = s;
            }
            sum += s;
        }
    }
    if (n_windows) {
        *n_windows = nw;
    }
    *ppl = exp(sum / (double)nw);
cleanup:
    free(lp);
    return rc;
}
