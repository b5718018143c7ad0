/* calib: pool statistics through the forward hooks, cached (cs_pstat.h). */
#include "cs_pstat.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_kernels.h"
#include "cs_log.h"
#include "cs_version.h"

/* Bump a statistic's version when its definition changes: old cache entries then never match. */
static const struct {
    const char *name;
    unsigned version;
} stat_defs[CS_PSTAT_COUNT] = {
        {"mlp_mean", 1}, {"in_mean", 1}, {"in_absmean", 1}, {"in_absmax", 1}, {"nll", 1},
};

#define PAYLOAD_HDR 32
#define HEAD_FLOATS ((size_t)1 << 24) /* logits per chunk of the output layer (64 MiB) */

const char *cs_pstat_name(cs_pstat_kind k)
{
    return (size_t)k < CS_PSTAT_COUNT ? stat_defs[k].name : "?";
}

void cs_pstats_fini(cs_pstats *s)
{
    if (!s) {
        return;
    }
    for (size_t k = 0; k < CS_PSTAT_NLL; k++) {
        free(s->v[k]);
    }
    free(s->nll);
    memset(s, 0, sizeof(*s));
}

/* ---- keys ---- */

/* hex = SHA-256 of the pool's items: for each, its length (u64) and ids (i32), little-endian. */
static cs_rc pool_hash(const cs_calib_pool *pool, char hex[CS_SHA256_HEX_LEN + 1], cs_err *err)
{
    size_t total = 8;
    for (size_t i = 0; i < pool->n; i++) {
        total += 8 + 4 * pool->items[i].n_tokens;
    }
    uint8_t *buf = cs_alloc_array(total, 1), *p = buf;
    if (!buf) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cs_put_le64(p, (uint64_t)pool->n);
    p += 8;
    for (size_t i = 0; i < pool->n; i++) {
        const cs_calib_item *it = &pool->items[i];
        cs_put_le64(p, (uint64_t)it->n_tokens);
        p += 8;
        for (size_t t = 0; t < it->n_tokens; t++) {
            uint32_t v = (uint32_t)it->tokens[t];
            p[0] = (uint8_t)v;
            p[1] = (uint8_t)(v >> 8);
            p[2] = (uint8_t)(v >> 16);
            p[3] = (uint8_t)(v >> 24);
            p += 4;
        }
    }
    cs_rc rc = cs_sha256_hex(buf, total, hex, err);
    free(buf);
    return rc;
}

static cs_rc key_of(const char *model_id, const char *phash, size_t seq_len, cs_pstat_kind k,
                    char key[CS_CACHE_KEY_LEN + 1], cs_err *err)
{
    char text[512];
    int w = snprintf(text, sizeof text,
                     "calsweep pool statistic v1\nengine %s\nstat %s %u\nmodel %s\nseq_len %zu\n"
                     "pool %s\n",
                     CS_ENGINE_VERSION, stat_defs[k].name, stat_defs[k].version, model_id, seq_len,
                     phash);
    if (w < 0 || (size_t)w >= sizeof text) {
        return cs_err_set(err, CS_ERANGE, 0, "pool statistic key: model identity too long");
    }
    return cs_sha256_hex(text, (size_t)w, key, err);
}

cs_rc cs_pstat_key(const char *model_id, const cs_calib_pool *pool, cs_pstat_kind k,
                   char key[CS_CACHE_KEY_LEN + 1], cs_err *err)
{
    char ph[CS_SHA256_HEX_LEN + 1];
    cs_rc rc = pool_hash(pool, ph, err);
    return rc == CS_OK ? key_of(model_id, ph, pool->seq_len, k, key, err) : rc;
}

/* ---- the forward pass ---- */

typedef struct hook_ctx {
    cs_pstats *s;       /* arrays being filled (NULL entries are not computed) */
    size_t b0, B, T;    /* items b0..b0+B-1 of this batch, padded to T tokens */
    const size_t *lens; /* [B] */
    double *acc;        /* [3][hidden] scratch */
    float *last;        /* [B*T][hidden]: the last block's output (nll), or NULL */
    size_t last_layer;
} hook_ctx;

static cs_rc on_hook(void *ctx, const cs_hook_event *ev, cs_err *err)
{
    (void)err;
    hook_ctx *h = ctx;
    cs_pstats *s = h->s;
    const size_t H = s->hidden, L = s->n_layers;
    if (ev->kind == CS_HOOK_BLOCK_OUT) {
        if (h->last && ev->layer == h->last_layer) {
            memcpy(h->last, ev->x, ev->rows * H * sizeof(float));
        }
        return CS_OK;
    }
    bool in = ev->kind == CS_HOOK_LINEAR_IN && ev->lin == CS_LIN_Q;
    bool mlp = ev->kind == CS_HOOK_MLP_OUT;
    if ((!in && !mlp) || ev->cols != H || ev->layer >= L) {
        return CS_OK;
    }
    float *mean = in ? s->v[CS_PSTAT_IN_MEAN] : s->v[CS_PSTAT_MLP_MEAN];
    float *absmean = in ? s->v[CS_PSTAT_IN_ABSMEAN] : NULL;
    float *absmax = in ? s->v[CS_PSTAT_IN_ABSMAX] : NULL;
    if (!mean && !absmean && !absmax) {
        return CS_OK;
    }
    double *sum = h->acc, *asum = h->acc + H, *amax = h->acc + 2 * H;
    for (size_t b = 0; b < h->B; b++) {
        const size_t len = h->lens[b];
        memset(h->acc, 0, 3 * H * sizeof(double));
        for (size_t t = 0; t < len; t++) {
            const float *x = ev->x + (b * h->T + t) * H;
            for (size_t j = 0; j < H; j++) {
                double v = (double)x[j], a = fabs(v);
                sum[j] += v;
                asum[j] += a;
                amax[j] = a > amax[j] ? a : amax[j];
            }
        }
        const size_t off = ((h->b0 + b) * L + ev->layer) * H;
        for (size_t j = 0; j < H; j++) {
            if (mean) {
                mean[off + j] = (float)(sum[j] / (double)len);
            }
            if (absmean) {
                absmean[off + j] = (float)(asum[j] / (double)len);
            }
            if (absmax) {
                absmax[off + j] = (float)amax[j];
            }
        }
    }
    return CS_OK;
}

/* One pass over the pool filling the arrays of `todo` (allocated here into s). */
static cs_rc forward_pool(cs_model *m, const cs_calib_pool *pool, unsigned todo, size_t batch,
                          cs_pstat_progress progress, void *pctx, cs_pstats *s,
                          cs_pstat_counters *cnt, cs_err *err)
{
    const size_t H = m->cfg.hidden, L = m->cfg.n_layers, V = m->cfg.vocab, n = pool->n;
    size_t T = 0;
    int32_t *tok = NULL;
    size_t *lens = NULL;
    double *acc = NULL;
    float *last = NULL, *logits = NULL;
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < n; i++) {
        T = pool->items[i].n_tokens > T ? pool->items[i].n_tokens : T;
    }
    if (batch == 0) {
        batch = 1;
    }
    batch = batch < n ? batch : n;
    bool nll = todo & CS_PSTAT_BIT(CS_PSTAT_NLL);
    size_t head_rows = V ? HEAD_FLOATS / V : 1;
    head_rows = head_rows ? head_rows : 1;
    tok = cs_alloc_array(batch, T * sizeof(int32_t));
    lens = cs_alloc_array(batch, sizeof(size_t));
    acc = cs_alloc_array(3 * H, sizeof(double));
    if (nll) {
        last = cs_alloc_array(batch * T, H * sizeof(float));
        logits = cs_alloc_array(head_rows, V * sizeof(float));
    }
    for (size_t k = 0; k < CS_PSTAT_NLL; k++) {
        if (todo & CS_PSTAT_BIT(k)) {
            s->v[k] = cs_alloc_array(n, L * H * sizeof(float));
            if (!s->v[k]) {
                rc = CS_ENOMEM;
            }
        }
    }
    if (nll && !(s->nll = cs_calloc_array(n, sizeof(double)))) {
        rc = CS_ENOMEM;
    }
    if (rc != CS_OK || !tok || !lens || !acc || (nll && (!last || !logits))) {
        rc = cs_err_set(err, CS_ENOMEM, 0,
                        "out of memory for the statistics of %zu items x %zu layers x %zu", n, L,
                        H);
        goto cleanup;
    }
    hook_ctx hc = {.s = s, .acc = acc, .last = last, .last_layer = L - 1};
    cs_hooks hooks = {.fn = on_hook,
                      .ctx = &hc,
                      .mask = (1u << CS_HOOK_LINEAR_IN) | (1u << CS_HOOK_MLP_OUT) |
                              (nll ? (1u << CS_HOOK_BLOCK_OUT) : 0)};
    for (size_t b0 = 0; b0 < n; b0 += batch) {
        const size_t B = n - b0 < batch ? n - b0 : batch;
        size_t Tb = 0;
        for (size_t b = 0; b < B; b++) {
            Tb = pool->items[b0 + b].n_tokens > Tb ? pool->items[b0 + b].n_tokens : Tb;
        }
        for (size_t b = 0; b < B; b++) {
            const cs_calib_item *it = &pool->items[b0 + b];
            memcpy(tok + b * Tb, it->tokens, it->n_tokens * sizeof(int32_t));
            for (size_t t = it->n_tokens; t < Tb; t++) {
                tok[b * Tb + t] = it->tokens[0]; /* right padding, never attended to */
            }
            lens[b] = it->n_tokens;
        }
        hc.b0 = b0;
        hc.B = B;
        hc.T = Tb;
        hc.lens = lens;
        if ((rc = cs_model_forward(m, tok, B, Tb, lens, NULL, &hooks, NULL, err)) != CS_OK) {
            goto cleanup;
        }
        for (size_t r0 = 0; nll && r0 < B * Tb; r0 += head_rows) {
            const size_t nr = B * Tb - r0 < head_rows ? B * Tb - r0 : head_rows;
            if ((rc = cs_model_head(m, last + r0 * H, nr, logits, err)) != CS_OK) {
                goto cleanup;
            }
            for (size_t r = r0; r < r0 + nr; r++) {
                const size_t b = r / Tb, t = r % Tb;
                if (t + 1 < lens[b]) {
                    s->nll[b0 + b] -= cs_log_softmax_at(logits + (r - r0) * V, V,
                                                        (size_t)tok[b * Tb + t + 1]);
                }
            }
        }
        for (size_t b = 0; nll && b < B; b++) {
            s->nll[b0 + b] = lens[b] > 1 ? s->nll[b0 + b] / (double)(lens[b] - 1) : 0.0;
        }
        cnt->passes++;
        cnt->items += B;
        for (size_t b = 0; b < B; b++) {
            cnt->tokens += lens[b];
        }
        if (progress) {
            progress(pctx, "forward", b0 + B, n);
        }
    }
cleanup:
    free(tok);
    free(lens);
    free(acc);
    free(last);
    free(logits);
    return rc;
}

/* ---- cache payloads ---- */

static size_t stat_bytes(const cs_pstats *s, cs_pstat_kind k)
{
    return k == CS_PSTAT_NLL ? s->n * sizeof(double)
                             : s->n * s->n_layers * s->hidden * sizeof(float);
}

static void *stat_data(cs_pstats *s, cs_pstat_kind k)
{
    return k == CS_PSTAT_NLL ? (void *)s->nll : (void *)s->v[k];
}

/* Reads statistic k into s from the cache; true on a verified hit of the right shape. */
static bool cache_read(cs_cache *c, const char *key, cs_pstat_kind k, cs_pstats *s)
{
    void *data = NULL;
    size_t len = 0;
    cs_err e = {0};
    if (cs_cache_get(c, key, &data, &len, &e) != CS_OK) {
        return false;
    }
    const uint8_t *p = data;
    size_t want = stat_bytes(s, k);
    bool ok = len == PAYLOAD_HDR + want && memcmp(p, "CSPS", 4) == 0 &&
              cs_get_le64(p + 8) == (uint64_t)k && cs_get_le64(p + 16) == (uint64_t)s->n &&
              cs_get_le64(p + 24) == (uint64_t)(k == CS_PSTAT_NLL ? 1 : s->n_layers * s->hidden);
    if (!ok) {
        cs_log(CS_LOG_WARN, "cache: ignoring %s/%s.bin: not the %s of this pool (recomputing)",
               cs_cache_dir(c), key, stat_defs[k].name);
        free(data);
        return false;
    }
    void *arr = cs_alloc_array(want ? want : 1, 1);
    if (!arr) {
        free(data);
        return false;
    }
    memcpy(arr, p + PAYLOAD_HDR, want);
    free(data);
    if (k == CS_PSTAT_NLL) {
        s->nll = arr;
    } else {
        s->v[k] = arr;
    }
    return true;
}

static void cache_write(cs_cache *c, const char *key, cs_pstat_kind k, cs_pstats *s,
                        cs_pstat_counters *cnt)
{
    size_t want = stat_bytes(s, k);
    uint8_t *buf = cs_alloc_array(PAYLOAD_HDR + want, 1);
    cs_err e = {0};
    if (!buf) {
        cs_log(CS_LOG_WARN, "cache: no memory to write the %s statistic", stat_defs[k].name);
        return;
    }
    memcpy(buf, "CSPS", 4);
    memset(buf + 4, 0, 4);
    cs_put_le64(buf + 8, (uint64_t)k);
    cs_put_le64(buf + 16, (uint64_t)s->n);
    cs_put_le64(buf + 24, (uint64_t)(k == CS_PSTAT_NLL ? 1 : s->n_layers * s->hidden));
    memcpy(buf + PAYLOAD_HDR, stat_data(s, k), want);
    if (cs_cache_put(c, key, buf, PAYLOAD_HDR + want, &e) != CS_OK) {
        cs_log(CS_LOG_WARN, "cache: could not write the %s statistic: %s", stat_defs[k].name,
               e.msg);
    } else {
        cnt->written++;
    }
    free(buf);
}

cs_rc cs_pstat_get(cs_pstat_ctx *ctx, cs_model *m, const cs_calib_pool *pool, unsigned want,
                   size_t batch, cs_pstat_progress progress, void *pctx, cs_pstats *out,
                   cs_err *err)
{
    const unsigned all = CS_PSTAT_HOOKED | CS_PSTAT_BIT(CS_PSTAT_NLL);
    cs_pstat_counters scratch = {0}, *cnt = ctx ? &ctx->count : &scratch;
    cs_cache *cache = ctx && ctx->model_id ? ctx->cache : NULL;
    char keys[CS_PSTAT_COUNT][CS_CACHE_KEY_LEN + 1];
    cs_pstats comp = {0};
    cs_rc rc = CS_OK;
    memset(out, 0, sizeof(*out));
    want &= all;
    if (!want) {
        return cs_err_set(err, CS_EINVAL, 0, "pool statistics: nothing asked for");
    }
    if (!pool || pool->n == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "pool statistics: the pool is empty");
    }
    for (size_t i = 0; i < pool->n; i++) {
        if (pool->items[i].n_tokens == 0) {
            return cs_err_set(err, CS_EINVAL, 0, "pool statistics: item %s has no tokens",
                              pool->items[i].id);
        }
    }
    out->n = comp.n = pool->n;
    out->n_layers = comp.n_layers = m->cfg.n_layers;
    out->hidden = comp.hidden = m->cfg.hidden;
    unsigned todo = want;
    if (cache) {
        char ph[CS_SHA256_HEX_LEN + 1];
        if ((rc = pool_hash(pool, ph, err)) != CS_OK) {
            goto fail;
        }
        for (size_t k = 0; k < CS_PSTAT_COUNT; k++) {
            if ((rc = key_of(ctx->model_id, ph, pool->seq_len, (cs_pstat_kind)k, keys[k], err)) !=
                CS_OK) {
                goto fail;
            }
        }
        for (size_t k = 0; k < CS_PSTAT_COUNT; k++) {
            if ((want & CS_PSTAT_BIT(k)) && cache_read(cache, keys[k], (cs_pstat_kind)k, out)) {
                todo &= ~CS_PSTAT_BIT(k);
                cnt->hits++;
            }
        }
        if (todo) {
            /* the pass runs anyway: add the hook statistics the cache lacks */
            for (size_t k = 0; k < CS_PSTAT_NLL; k++) {
                if (!(want & CS_PSTAT_BIT(k)) && !cs_cache_has(cache, keys[k])) {
                    todo |= CS_PSTAT_BIT(k);
                }
            }
        }
    }
    if (!todo) {
        return CS_OK;
    }
    if ((rc = forward_pool(m, pool, todo, batch, progress, pctx, &comp, cnt, err)) != CS_OK) {
        goto fail;
    }
    for (size_t k = 0; k < CS_PSTAT_COUNT; k++) {
        if (!(todo & CS_PSTAT_BIT(k))) {
            continue;
        }
        cnt->computed++;
        if (cache) {
            cache_write(cache, keys[k], (cs_pstat_kind)k, &comp, cnt);
        }
        if (want & CS_PSTAT_BIT(k)) {
            /* move into out */
            if (k == CS_PSTAT_NLL) {
                out->nll = comp.nll;
                comp.nll = NULL;
            } else {
                out->v[k] = comp.v[k];
                comp.v[k] = NULL;
            }
        }
    }
    cs_pstats_fini(&comp);
    return CS_OK;
fail:
    cs_pstats_fini(&comp);
    cs_pstats_fini(out);
    return rc;
}
