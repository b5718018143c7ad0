/* cs_forward.c - the forward pass; see cs_model.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <stdatomic.h>

#include "cs_alloc.h"
#include "cs_kernels.h"
#include "cs_model.h"

/* Queries per attention product: a block sees the keys up to its last query. */
#define ATT_ROWS 64

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

cs_rc cs_kvcache_copy(const cs_kvcache *src, size_t sb, size_t n, cs_kvcache *dst, size_t db,
                      cs_err *err)
{
    if (src->n_layers != dst->n_layers || src->kv_dim != dst->kv_dim || sb >= src->batch ||
        db >= dst->batch || n > src->cap || n > dst->cap) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "cannot copy %zu positions of sequence %zu of a key/value cache of %zu x "
                          "%zu into sequence %zu of one of %zu x %zu",
                          n, sb, src->batch, src->cap, db, dst->batch, dst->cap);
    }
    const size_t row = n * src->kv_dim;
    for (size_t l = 0; l < src->n_layers && row > 0; l++) {
        size_t so = ((l * src->batch + sb) * src->cap) * src->kv_dim;
        size_t d = ((l * dst->batch + db) * dst->cap) * dst->kv_dim;
        memcpy(dst->k + d, src->k + so, row * sizeof(float));
        memcpy(dst->v + d, src->v + so, row * sizeof(float));
    }
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

/* Slots of attention scores: one per thread of attention (att_range), each ATT_ROWS x L. */
static size_t att_slots(const cs_model *m)
{
    return m->n_threads < 1                ? 1
           : m->n_threads > CS_MAX_THREADS ? CS_MAX_THREADS
                                           : (size_t)m->n_threads;
}

typedef struct block_ws {
    float *h, *q, *k, *v, *att, *o, *g, *u, *scores;
    int32_t *pos;
    uint8_t *valid;
    size_t rows, n_scores; /* capacity: rows, and floats of scores */
    bool busy;             /* a pass is using it (a hook that runs a pass gets its own) */
    bool kept;             /* the model's (cs_model.fwd_ws), not the pass's own */
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
    w->scores = cs_alloc_array(att_slots(m) * (T < ATT_ROWS ? T : ATT_ROWS), L * sizeof(float));
    w->pos = cs_alloc_array(rows, sizeof(int32_t));
    w->valid = cs_alloc_array(rows, 1);
    if (!w->h || !w->q || !w->k || !w->v || !w->att || !w->o || !w->g || !w->u || !w->scores ||
        !w->pos || !w->valid) {
        ws_free(w);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory for the forward pass (%zu rows)", rows);
    }
    w->rows = rows;
    w->n_scores = att_slots(m) * (T < ATT_ROWS ? T : ATT_ROWS) * L;
    return CS_OK;
}

/* The model's workspace for a pass of `rows` rows and T x L attention scores: the one kept from
 * earlier passes when it is big enough, else a new one (the old one freed first). Passes over the
 * same calibration batch, block after block, so reuse the same buffers, whose pages stay mapped,
 * instead of mapping and faulting in gigabytes on every pass. */
static cs_rc ws_get(cs_model *m, size_t rows, size_t T, size_t L, block_ws **out, cs_err *err)
{
    block_ws *w = m->fwd_ws;
    bool kept = !w || !w->busy;
    *out = NULL;
    if (kept && w && w->rows >= rows &&
        w->n_scores >= att_slots(m) * (T < ATT_ROWS ? T : ATT_ROWS) * L) {
        w->busy = true;
        *out = w;
        return CS_OK;
    }
    if (!kept) {
        w = NULL;
    }
    if (!w && !(w = calloc(1, sizeof(*w)))) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    ws_free(w);
    if (kept) {
        m->fwd_ws = w;
    }
    cs_rc rc = ws_alloc(w, m, rows, T, L, err);
    if (rc != CS_OK && !kept) {
        free(w);
        return rc;
    }
    w->busy = rc == CS_OK;
    w->kept = kept;
    *out = rc == CS_OK ? w : NULL;
    return rc;
}

/* Ends a pass's use of w (NULL-safe). */
static void ws_put(block_ws *w)
{
    if (w && w->kept) {
        w->busy = false;
    } else if (w) {
        ws_free(w);
        free(w);
    }
}

void cs_model_release_workspace(cs_model *m)
{
    if (m && m->fwd_ws) {
        ws_free(m->fwd_ws);
        free(m->fwd_ws);
        m->fwd_ws = NULL;
    }
}

typedef struct att_ctx {
    const cs_hfconfig *c;
    const float *q, *K, *V;
    float *att, *scores;
    size_t T, ldkv_b, slot_floats;
    const size_t *past;
    atomic_size_t next_slot;
} att_ctx;

/* Causal attention of the (sequence, head) pairs [b, e): each pair's queries by blocks of
 * ATT_ROWS against the keys up to the block's last query (half the products of the full square,
 * and half its exponentials), in a slot of scores of its own. */
static void att_range(void *ctx, size_t b, size_t e)
{
    att_ctx *a = ctx;
    const cs_hfconfig *c = a->c;
    const size_t hd = c->head_dim, nh = c->n_heads, qd = nh * hd, kvd = c->n_kv_heads * hd;
    const size_t group = nh / c->n_kv_heads, T = a->T;
    const float scale = 1.0f / sqrtf((float)hd);
    float *scores = a->scores + atomic_fetch_add(&a->next_slot, 1) * a->slot_floats;
    for (size_t task = b; task < e; task++) {
        const size_t s = task / nh, h = task % nh, pos0 = a->past ? a->past[s] : 0;
        const float *Qh = a->q + s * T * qd + h * hd;
        const float *Kh = a->K + s * a->ldkv_b + (h / group) * hd;
        const float *Vh = a->V + s * a->ldkv_b + (h / group) * hd;
        for (size_t i0 = 0; i0 < T; i0 += ATT_ROWS) {
            const size_t i1 = i0 + ATT_ROWS < T ? i0 + ATT_ROWS : T, Lb = pos0 + i1;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(i1 - i0), (int)Lb, (int)hd,
                        scale, Qh + i0 * qd, (int)qd, Kh, (int)kvd, 0.0f, scores, (int)Lb);
            cs_softmax_causal(1, scores, i1 - i0, Lb, pos0 + i0 + 1);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(i1 - i0), (int)hd, (int)Lb,
                        1.0f, scores, (int)Lb, Vh, (int)kvd, 0.0f,
                        a->att + (s * T + i0) * qd + h * hd, (int)qd);
        }
    }
}

/* Attention of B sequences of T queries (w->q) over K/V (ldkv_b floats between sequences) into
 * w->att. The (sequence, head) pairs are spread over the model's threads, each running its
 * products on OpenBLAS single-threaded. One product (an inner dimension of head_dim) is too small
 * to be worth OpenBLAS's hand-off to its own threads, which a pass would pay thousands of times;
 * and between products OpenBLAS's threads spin, where the pool's workers sleep, so the softmax
 * between the two products of a block no longer competes with them for the cores. The BLAS
 * thread count is process-wide: nothing else runs BLAS during a forward pass (hooks run between
 * blocks' steps, with the count restored). */
static void attention(const cs_model *m, block_ws *w, size_t B, size_t T, const size_t *past,
                      const float *K, const float *V, size_t ldkv_b)
{
    att_ctx a = {.c = &m->cfg,
                 .q = w->q,
                 .K = K,
                 .V = V,
                 .att = w->att,
                 .scores = w->scores,
                 .T = T,
                 .ldkv_b = ldkv_b,
                 .slot_floats = w->n_scores / att_slots(m),
                 .past = past};
    atomic_init(&a.next_slot, 0);
    const int ob = openblas_get_num_threads();
    if (ob > 1 && m->n_threads > 1) {
        openblas_set_num_threads(1);
    }
    cs_par_for(m->n_threads, B * m->cfg.n_heads, 1, att_range, &a);
    if (ob > 1 && m->n_threads > 1) {
        openblas_set_num_threads(ob);
    }
}

/* One block on x[B*T][H], sequence b's tokens at positions past[b]..past[b]+T-1 (past NULL: 0).
 * kc/vc: this layer's cache [B][cap][kvd] (cap >= past[b]+T) holding past[b] earlier entries of
 * sequence b, or NULL (then past is NULL and k/v of the workspace are used directly). */
static cs_rc block_fwd(cs_model *m, size_t layer, float *x, size_t B, size_t T, const size_t *past,
                       float *kc, float *vc, size_t cap, block_ws *w, const cs_hooks *hooks,
                       cs_err *err)
{
    const cs_hfconfig *c = &m->cfg;
    cs_layer *Ly = &m->layers[layer];
    const size_t H = c->hidden, hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads;
    const size_t qd = nh * hd, kvd = nkv * hd, rows = B * T, ni = c->intermediate;
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
            size_t p0 = past ? past[b] : 0;
            memcpy(kc + (b * cap + p0) * kvd, w->k + b * T * kvd, T * kvd * sizeof(float));
            memcpy(vc + (b * cap + p0) * kvd, w->v + b * T * kvd, T * kvd * sizeof(float));
        }
        K = kc;
        V = vc;
        ldkv_b = cap * kvd;
    }
    attention(m, w, B, T, past, K, V, ldkv_b);
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

static void set_pos(block_ws *w, size_t B, size_t T, const size_t *past, const size_t *lens)
{
    for (size_t b = 0; b < B; b++) {
        for (size_t t = 0; t < T; t++) {
            w->pos[b * T + t] = (int32_t)((past ? past[b] : 0) + t);
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
    block_ws *w;
    if (layer >= m->cfg.n_layers) {
        return cs_err_set(err, CS_ERANGE, 0, "layer %zu: the model has %zu layers", layer,
                          m->cfg.n_layers);
    }
    cs_rc rc = check_lens(B, T, lens, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = ws_get(m, B * T, T, T, &w, err);
    if (rc != CS_OK) {
        return rc;
    }
    set_pos(w, B, T, NULL, lens);
    rc = block_fwd(m, layer, x, B, T, NULL, NULL, NULL, 0, w, hooks, err);
    ws_put(w);
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

/* The blocks of the model on tokens[B][T]: *xo = the final residual stream [B*T][hidden] (owned).
 * past: NULL (no cache, or every sequence at cache->pos) or each sequence's cached positions. */
static cs_rc run_blocks(cs_model *m, const int32_t *tokens, size_t B, size_t T, const size_t *lens,
                        const size_t *past, cs_kvcache *cache, const cs_hooks *hooks, float **xo,
                        cs_err *err)
{
    block_ws *w = NULL;
    const size_t H = m->cfg.hidden, rows = B * T;
    size_t *at = NULL, Lmax = T;
    float *x = cs_alloc_array(rows, H * sizeof(float));
    cs_rc rc = x ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    if (rc == CS_OK && cache && !past) { /* every sequence at cache->pos */
        at = cs_alloc_array(B, sizeof(size_t));
        rc = at ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        for (size_t b = 0; at && b < B; b++) {
            at[b] = cache->pos;
        }
        past = at;
    }
    for (size_t b = 0; past && b < B; b++) {
        Lmax = past[b] + T > Lmax ? past[b] + T : Lmax;
    }
    rc = rc == CS_OK ? cs_model_embed(m, tokens, rows, x, err) : rc;
    rc = rc == CS_OK ? ws_get(m, rows, T, Lmax, &w, err) : rc;
    if (rc == CS_OK) {
        set_pos(w, B, T, past, lens);
    }
    for (size_t l = 0; l < m->cfg.n_layers && rc == CS_OK; l++) {
        float *kc = NULL, *vc = NULL;
        if (cache) {
            size_t off = l * cache->batch * cache->cap * cache->kv_dim;
            kc = cache->k + off;
            vc = cache->v + off;
        }
        rc = block_fwd(m, l, x, B, T, past, kc, vc, cache ? cache->cap : 0, w, hooks, err);
    }
    ws_put(w);
    free(at);
    if (rc != CS_OK) {
        free(x);
        x = NULL;
    }
    *xo = x;
    return rc;
}

cs_rc cs_model_forward(cs_model *m, const int32_t *tokens, size_t B, size_t T, const size_t *lens,
                       cs_kvcache *cache, const cs_hooks *hooks, float *logits, cs_err *err)
{
    float *x = NULL;
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
    }
    rc = run_blocks(m, tokens, B, T, lens, NULL, cache, hooks, &x, err);
    if (rc == CS_OK && cache) {
        cache->pos += T;
    }
    if (rc == CS_OK && logits) {
        rc = cs_model_head(m, x, B * T, logits, err);
    }
    free(x);
    return rc;
}

cs_rc cs_model_forward_at(cs_model *m, const int32_t *tokens, size_t B, size_t T,
                          const size_t *lens, const size_t *past, cs_kvcache *cache, float *logits,
                          cs_err *err)
{
    const size_t H = m->cfg.hidden;
    float *x = NULL;
    cs_rc rc = check_lens(B, T, lens, err);
    if (rc != CS_OK) {
        return rc;
    }
    if (cache->batch < B || cache->n_layers != m->cfg.n_layers) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "key/value cache of %zu sequences and %zu layers for %zu sequences of a "
                          "model of %zu layers",
                          cache->batch, cache->n_layers, B, m->cfg.n_layers);
    }
    for (size_t b = 0; b < B; b++) {
        if (past[b] + T > cache->cap) {
            return cs_err_set(err, CS_ERANGE, 0,
                              "sequence %zu: key/value cache of %zu positions cannot take %zu "
                              "more after %zu",
                              b, cache->cap, T, past[b]);
        }
    }
    rc = run_blocks(m, tokens, B, T, lens, past, cache, NULL, &x, err);
    if (rc == CS_OK && logits) {
        size_t n = 0; /* the real rows, moved down over the padding (never past their source) */
        for (size_t b = 0; b < B; b++) {
            size_t nb = lens ? lens[b] : T;
            memmove(x + n * H, x + b * T * H, nb * H * sizeof(float));
            n += nb;
        }
        rc = n ? cs_model_head(m, x, n, logits, err) : CS_OK;
    }
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
