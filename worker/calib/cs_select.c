/* calib: the selectors' parameters and dispatch, and random, self_calibration, self_gen, zipcal and
 * ppl_rank (cs_select.h); cola, acdm and covercal are in cs_select_act.c. */
#include "cs_select.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_generate.h"
#include "cs_json.h"
#include "cs_rng.h"
#include "cs_time.h"

static const char *const ppl_modes[] = {"low", "high", "mid"}; /* cs_ppl_mode's order */

const char *cs_select_name(cs_sel_kind k)
{
    const cs_method *md = cs_method_of_kind(CS_MF_SELECTOR, (int)k);
    return md ? md->name : "?";
}

void cs_select_params_default(cs_select_params *p, cs_sel_kind kind)
{
    memset(p, 0, sizeof(*p));
    p->n = 128;
    p->seq_len = 2048;
    /* every selector's defaults, then the kind's own (parameters shared by name agree) */
    for (int k = CS_SEL_COUNT - 1; k >= 0; k--) {
        cs_method_defaults(cs_method_of_kind(CS_MF_SELECTOR, k), p);
    }
    cs_method_defaults(cs_method_of_kind(CS_MF_SELECTOR, (int)kind), p);
    p->batch = 8;
    p->kind = kind;
}

/* ---- parameters: the table of common/cs_methods.h ---- */

cs_rc cs_select_params_parse(const cJSON *obj, const char *path, bool engine, cs_select_params *p,
                             cs_err *err)
{
    cs_select_params keep = *p;
    cs_mresolve r = {.engine = engine, .dst = p};
    cs_rc rc = cs_method_check(obj, CS_MF_SELECTOR, path ? path : "selector", &r, err);
    if (rc != CS_OK) {
        *p = keep;
    }
    return rc;
}

cs_rc cs_select_params_parse_str(const char *s, cs_select_params *p, cs_err *err)
{
    cJSON *o = NULL;
    cs_rc rc;
    if (s[0] != '{') {
        o = cJSON_CreateString(s);
        if (!o) {
            return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
    } else if ((rc = cs_json_parse(s, strlen(s), "--selector", &o, err)) != CS_OK) {
        return rc;
    }
    cs_select_params_default(p, CS_SEL_RANDOM);
    rc = cs_select_params_parse(o, "selector", true, p, err);
    cJSON_Delete(o);
    return rc;
}

cJSON *cs_select_params_json(const cs_select_params *p)
{
    const cs_method *md = cs_method_of_kind(CS_MF_SELECTOR, (int)p->kind);
    return md ? cs_method_to_json(md, p, true) : NULL;
}

/* ---- helpers ---- */

static double secs_since(uint64_t t0)
{
    return (double)(cs_time_mono_ns() - t0) * 1e-9;
}

static cs_rc oom(cs_err *err)
{
    return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
}

static cs_rc diag_init(const cs_select_params *p, cs_calib_selection *out, cs_err *err)
{
    out->diag = cJSON_CreateObject();
    if (!out->diag || !cJSON_AddStringToObject(out->diag, "selector", cs_select_name(p->kind)) ||
        !cs_json_add(out->diag, "params", cs_select_params_json(p))) {
        return oom(err);
    }
    return CS_OK;
}

static cs_rc diag_times(cs_calib_selection *out, double fwd, double sel, cs_err *err)
{
    if (!cJSON_AddNumberToObject(out->diag, "forward_s", fwd) ||
        !cJSON_AddNumberToObject(out->diag, "select_s", sel)) {
        return oom(err);
    }
    return CS_OK;
}

static int32_t model_bos(const cs_model *m, const cs_tok *tok)
{
    if (m && m->cfg.bos >= 0) {
        return m->cfg.bos;
    }
    return tok ? cs_tok_bos(tok) : -1;
}

/* ---- S1 random ---- */

static cs_rc sel_random(const cs_select_params *p, const cs_calib_pool *pool,
                        cs_calib_selection *out, cs_err *err)
{
    uint64_t t0 = cs_time_mono_ns();
    cs_rng rng;
    size_t ns = p->stratified ? pool->n_sources : 1;
    size_t *idx = cs_calloc_array(pool->n ? pool->n : 1, sizeof(size_t));
    size_t *per = cs_calloc_array(ns ? ns : 1, sizeof(size_t));
    cs_rc rc = CS_OK;
    out->index = cs_calloc_array(p->n, sizeof(size_t));
    if (!idx || !per || !out->index) {
        rc = oom(err);
        goto cleanup;
    }
    cs_rng_seed(&rng, p->seed);
    for (size_t s = 0; s < ns; s++) {
        size_t want = p->stratified ? p->n / ns + (s < p->n % ns ? 1 : 0) : p->n, k = 0;
        for (size_t i = 0; i < pool->n; i++) {
            if (!p->stratified || pool->items[i].source == s) {
                idx[k++] = i;
            }
        }
        if (k < want) {
            rc = cs_err_set(err, CS_EINVAL, 0,
                            "random: %s%s has %zu items, fewer than the %zu to select",
                            p->stratified ? "source " : "the pool",
                            p->stratified ? pool->sources[s] : "", k, want);
            goto cleanup;
        }
        cs_rng_shuffle(&rng, idx, k);
        memcpy(out->index + out->n, idx, want * sizeof(size_t));
        out->n += want;
        per[s] = want;
    }
    if (!cs_json_add(out->diag, "per_source", cs_json_size_array(per, ns))) {
        rc = oom(err);
        goto cleanup;
    }
    rc = diag_times(out, 0.0, secs_since(t0), err);
cleanup:
    free(idx);
    free(per);
    return rc;
}

/* ---- S2 self-calibration ---- */

static double sched_t(const cs_select_params *p, size_t i)
{
    if (p->n_sched == 0 || i >= p->n_sched) {
        return p->t_final;
    }
    return p->t_init + ((double)i / (double)p->n_sched) * (p->t_final - p->t_init);
}

static bool is_eos(const cs_model *m, const cs_tok *tok, int32_t t)
{
    for (size_t i = 0; i < m->cfg.n_eos; i++) {
        if (m->cfg.eos[i] == t) {
            return true;
        }
    }
    return tok && cs_tok_eos(tok) >= 0 && cs_tok_eos(tok) == t;
}

static cs_rc sel_self_calibration(const cs_select_params *p, cs_model *m, const cs_tok *tok,
                                  cs_select_progress progress, void *pctx, cs_calib_selection *out,
                                  cs_err *err)
{
    const size_t V = m->cfg.vocab, L = p->seq_len;
    int32_t bos = model_bos(m, tok);
    cs_kvcache kv = {0};
    cs_rng rng;
    float *logits = cs_calloc_array(V, sizeof(float));
    size_t *restarts = cs_calloc_array(p->n, sizeof(size_t));
    cs_gen_params gp;
    cs_rc rc = CS_OK;
    uint64_t t0 = cs_time_mono_ns();
    if (bos < 0) {
        rc = cs_err_set(err, CS_EINVAL, 0, "self_calibration: the model has no BOS token");
        goto cleanup;
    }
    out->generated = cs_calloc_array(p->n, sizeof(cs_calib_item));
    if (!logits || !restarts || !out->generated) {
        rc = oom(err);
        goto cleanup;
    }
    if ((rc = cs_kvcache_init(&kv, m, 1, L, err)) != CS_OK) {
        goto cleanup;
    }
    cs_gen_params_default(&gp);
    cs_rng_seed(&rng, p->seed);
    for (size_t k = 0; k < p->n; k++) {
        char id[32];
        snprintf(id, sizeof id, "gen:%zu", k);
        cs_calib_item *it = &out->generated[k];
        it->id = malloc(strlen(id) + 1);
        it->tokens = cs_calloc_array(L, sizeof(int32_t));
        if (!it->id || !it->tokens) {
            rc = oom(err);
            goto cleanup;
        }
        memcpy(it->id, id, strlen(id) + 1);
        out->n = k + 1;
        it->tokens[0] = bos;
        it->n_tokens = 1;
        kv.pos = 0;
        size_t step = 0, start = 0; /* start: where the current generation's BOS is */
        while (it->n_tokens < L) {
            int32_t last = it->tokens[it->n_tokens - 1];
            if ((rc = cs_model_forward(m, &last, 1, 1, NULL, &kv, NULL, logits, err)) != CS_OK) {
                goto cleanup;
            }
            gp.temperature = sched_t(p, step++);
            int32_t t = cs_gen_pick(logits, V, it->tokens + start, it->n_tokens - start, &gp, &rng);
            if (t < 0) {
                rc = oom(err);
                goto cleanup;
            }
            it->tokens[it->n_tokens++] = t;
            if (is_eos(m, tok, t) && it->n_tokens < L) {
                it->tokens[it->n_tokens++] = bos;
                start = it->n_tokens - 1;
                kv.pos = 0;
                step = 0;
                restarts[k]++;
            }
        }
        if (progress) {
            progress(pctx, "generate", k + 1, p->n);
        }
    }
    if (!cs_json_add(out->diag, "eos_restarts", cs_json_size_array(restarts, p->n))) {
        rc = oom(err);
        goto cleanup;
    }
    rc = diag_times(out, secs_since(t0), 0.0, err);
cleanup:
    cs_kvcache_fini(&kv);
    free(logits);
    free(restarts);
    return rc;
}

/* ---- forward-pass scoring: mean next-token NLL of each sequence ---- */

static cs_rc score_nll(cs_model *m, const cs_calib_item *items, const size_t *which, size_t n,
                       size_t batch, cs_select_progress progress, void *pctx, const char *stage,
                       double *nll, cs_err *err)
{
    size_t T = 0;
    for (size_t i = 0; i < n; i++) {
        const cs_calib_item *it = &items[which ? which[i] : i];
        T = it->n_tokens > T ? it->n_tokens : T;
    }
    if (T < 2) {
        return cs_err_set(err, CS_EINVAL, 0, "%s: sequences need at least 2 tokens", stage);
    }
    int32_t *tok = cs_calloc_array(batch * T, sizeof(int32_t));
    size_t *lens = cs_calloc_array(batch, sizeof(size_t));
    double *lp = cs_calloc_array(batch * T, sizeof(double));
    cs_rc rc = CS_OK;
    if (!tok || !lens || !lp) {
        rc = oom(err);
        goto cleanup;
    }
    for (size_t b0 = 0; rc == CS_OK && b0 < n; b0 += batch) {
        size_t B = n - b0 < batch ? n - b0 : batch, Tb = 0;
        for (size_t b = 0; b < B; b++) {
            const cs_calib_item *it = &items[which ? which[b0 + b] : b0 + b];
            Tb = it->n_tokens > Tb ? it->n_tokens : Tb;
        }
        for (size_t b = 0; b < B; b++) {
            const cs_calib_item *it = &items[which ? which[b0 + b] : b0 + b];
            memcpy(tok + b * Tb, it->tokens, it->n_tokens * sizeof(int32_t));
            for (size_t t = it->n_tokens; t < Tb; t++) {
                tok[b * Tb + t] = it->tokens[0];
            }
            lens[b] = it->n_tokens;
        }
        rc = cs_model_logprobs(m, tok, B, Tb, lens, lp, err);
        for (size_t b = 0; rc == CS_OK && b < B; b++) {
            double s = 0.0;
            for (size_t t = 0; t + 1 < lens[b]; t++) {
                s -= lp[b * Tb + t];
            }
            nll[b0 + b] = lens[b] > 1 ? s / (double)(lens[b] - 1) : 0.0;
        }
        if (progress) {
            progress(pctx, stage, b0 + B, n);
        }
    }
cleanup:
    free(tok);
    free(lens);
    free(lp);
    return rc;
}

/* ---- S7 perplexity rank ---- */

int cs_ranked_cmp(const void *a, const void *b)
{
    const cs_ranked *x = a, *y = b;
    if (x->key != y->key) {
        return x->key < y->key ? -1 : 1;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static double median_of(const double *v, size_t n)
{
    double *s = cs_calloc_array(n, sizeof(double));
    cs_ranked *r = cs_calloc_array(n, sizeof(cs_ranked));
    double med = NAN;
    if (s && r && n > 0) {
        for (size_t i = 0; i < n; i++) {
            r[i] = (cs_ranked){v[i], i};
        }
        qsort(r, n, sizeof(*r), cs_ranked_cmp);
        med = n % 2 ? r[n / 2].key : 0.5 * (r[n / 2 - 1].key + r[n / 2].key);
    }
    free(s);
    free(r);
    return med;
}

static cs_rc sel_ppl(const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
                     cs_pstat_ctx *sc, cs_select_progress progress, void *pctx,
                     cs_calib_selection *out, cs_err *err)
{
    cs_pstats st = {0};
    double *nll = NULL, *chosen = NULL;
    cs_ranked *r = cs_calloc_array(pool->n, sizeof(cs_ranked));
    cs_rc rc = CS_OK;
    out->index = cs_calloc_array(p->n, sizeof(size_t));
    chosen = cs_calloc_array(p->n, sizeof(double));
    if (!r || !out->index || !chosen) {
        rc = oom(err);
        goto cleanup;
    }
    uint64_t t0 = cs_time_mono_ns();
    if ((rc = cs_pstat_get(sc, m, pool, CS_PSTAT_BIT(CS_PSTAT_NLL), p->batch, progress, pctx, &st,
                           err)) != CS_OK) {
        goto cleanup;
    }
    nll = st.nll;
    double fwd = secs_since(t0);
    t0 = cs_time_mono_ns();
    double med = median_of(nll, pool->n);
    for (size_t i = 0; i < pool->n; i++) {
        r[i].idx = i;
        r[i].key = p->mode == CS_PPL_LOW    ? nll[i]
                   : p->mode == CS_PPL_HIGH ? -nll[i]
                                            : fabs(nll[i] - med);
    }
    qsort(r, pool->n, sizeof(*r), cs_ranked_cmp);
    for (size_t i = 0; i < p->n; i++) {
        out->index[i] = r[i].idx;
        chosen[i] = nll[r[i].idx];
    }
    out->n = p->n;
    double sel = secs_since(t0);
    if (!cJSON_AddStringToObject(out->diag, "mode", ppl_modes[p->mode]) ||
        !cJSON_AddNumberToObject(out->diag, "median_nll", med) ||
        !cs_json_add(out->diag, "nll", cs_json_double_array(chosen, p->n))) {
        rc = oom(err);
        goto cleanup;
    }
    rc = diag_times(out, fwd, sel, err);
cleanup:
    cs_pstats_fini(&st);
    free(r);
    free(chosen);
    return rc;
}

/* ---- S3 Self-Gen ---- */

/* numpy.percentile's default (linear interpolation) of v[0..n) at q in [0, 1]. */
static double quantile(const double *v, size_t n, double q)
{
    cs_ranked *r = cs_calloc_array(n, sizeof(cs_ranked));
    double out = NAN;
    if (r && n > 0) {
        for (size_t i = 0; i < n; i++) {
            r[i] = (cs_ranked){v[i], i};
        }
        qsort(r, n, sizeof(*r), cs_ranked_cmp);
        double pos = q * (double)(n - 1);
        size_t lo = (size_t)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
        out = r[lo].key + (pos - (double)lo) * (r[hi].key - r[lo].key);
    }
    free(r);
    return out;
}

/* Generates one continuation of a prefix of src (its first prefix_len tokens after BOS) into *it:
 * prompt and generation, of source src->source. j numbers the generation (its seed). */
static cs_rc self_gen_one(const cs_select_params *p, cs_model *m, const cs_calib_item *src,
                          int32_t bos, const int32_t *stop, size_t n_stop, size_t j,
                          cs_calib_item *it, cs_err *err)
{
    size_t s0 = (bos >= 0 && src->n_tokens > 0 && src->tokens[0] == bos) ? 1 : 0;
    size_t np = src->n_tokens - s0 < p->prefix_tokens ? src->n_tokens - s0 : p->prefix_tokens;
    size_t head = bos >= 0 ? 1 : 0, plen = head + np;
    int32_t *prompt = cs_calloc_array(plen ? plen : 1, sizeof(int32_t)), *g = NULL;
    size_t n_g = 0;
    cs_rc rc;
    if (!prompt) {
        return oom(err);
    }
    if (head) {
        prompt[0] = bos;
    }
    memcpy(prompt + head, src->tokens + s0, np * sizeof(int32_t));
    if (plen == 0 || plen >= p->seq_len) {
        free(prompt);
        return cs_err_set(err, CS_EINVAL, 0,
                          "self_gen: prefix of %zu tokens leaves nothing to generate within "
                          "seq_len %zu",
                          plen, p->seq_len);
    }
    cs_gen_params gp;
    cs_gen_params_default(&gp);
    gp.max_new = p->seq_len - plen;
    gp.temperature = p->temperature;
    gp.top_k = p->top_k;
    gp.top_p = p->top_p;
    gp.rep_penalty = p->repetition_penalty;
    gp.seed = p->seed ^ (UINT64_C(0x9e3779b97f4a7c15) * (j + 1));
    gp.stop = stop;
    gp.n_stop = n_stop;
    rc = cs_generate(m, prompt, plen, &gp, &g, &n_g, err);
    it->tokens = rc == CS_OK ? cs_calloc_array(plen + n_g, sizeof(int32_t)) : NULL;
    if (rc == CS_OK && !it->tokens) {
        rc = oom(err);
    }
    if (rc == CS_OK) {
        memcpy(it->tokens, prompt, plen * sizeof(int32_t));
        memcpy(it->tokens + plen, g, n_g * sizeof(int32_t));
        it->n_tokens = plen + n_g;
        it->source = src->source;
    }
    free(prompt);
    free(g);
    return rc;
}

/* Moves the first p->n survivors surv[] of gen[] into out->generated ("gen:K") and records the
 * diagnostics: the prefix each came from, its perplexity, the threshold and the counts. */
static cs_rc self_gen_output(const cs_select_params *p, cs_calib_item *gen, size_t n_gen,
                             const size_t *surv, size_t n_surv, const double *ppl, double thr,
                             const cJSON *prefix_ids, cs_calib_selection *out, cs_err *err)
{
    cs_rc rc = CS_OK;
    out->generated = cs_calloc_array(p->n, sizeof(cs_calib_item));
    cJSON *src_ids = cJSON_CreateArray();
    double *chosen_ppl = cs_calloc_array(p->n, sizeof(double));
    if (!out->generated || !src_ids || !chosen_ppl) {
        cJSON_Delete(src_ids);
        free(chosen_ppl);
        return oom(err);
    }
    for (size_t k = 0; k < p->n; k++) {
        char id[32];
        snprintf(id, sizeof id, "gen:%zu", k);
        cs_calib_item *it = &out->generated[k];
        *it = gen[surv[k]];
        gen[surv[k]].tokens = NULL;
        it->id = malloc(strlen(id) + 1);
        out->n = k + 1;
        chosen_ppl[k] = ppl[surv[k]];
        cJSON *s = cJSON_CreateString(cJSON_GetArrayItem(prefix_ids, (int)surv[k])->valuestring);
        if (!it->id || !s || !cJSON_AddItemToArray(src_ids, s)) {
            cJSON_Delete(s);
            rc = oom(err);
            break;
        }
        memcpy(it->id, id, strlen(id) + 1);
    }
    if (rc == CS_OK && (!cs_json_add(out->diag, "prefix_of", src_ids) ||
                        !cs_json_add(out->diag, "ppl", cs_json_double_array(chosen_ppl, p->n)) ||
                        !cJSON_AddNumberToObject(out->diag, "ppl_threshold", thr) ||
                        !cJSON_AddNumberToObject(out->diag, "generated", (double)n_gen) ||
                        !cJSON_AddNumberToObject(out->diag, "survivors", (double)n_surv))) {
        rc = oom(err);
    } else if (rc != CS_OK) {
        cJSON_Delete(src_ids);
    }
    free(chosen_ppl);
    return rc;
}

static cs_rc sel_self_gen(const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
                          const cs_tok *tok, cs_select_progress progress, void *pctx,
                          cs_calib_selection *out, cs_err *err)
{
    const size_t M = p->prefix_texts < pool->n ? p->prefix_texts : pool->n;
    int32_t bos = model_bos(m, tok);
    size_t *order = cs_calloc_array(pool->n, sizeof(size_t));
    size_t *surv = cs_calloc_array(M, sizeof(size_t));
    cs_calib_item *gen = cs_calloc_array(M, sizeof(cs_calib_item));
    double *ppl = cs_calloc_array(M, sizeof(double)), *nll = cs_calloc_array(M, sizeof(double));
    int32_t stop[CS_HF_MAX_EOS + 1];
    size_t n_stop = 0, n_gen = 0, n_surv = 0;
    cs_rng rng;
    cs_rc rc = CS_OK;
    cJSON *prefix_ids = cJSON_CreateArray();
    if (!order || !surv || !gen || !ppl || !nll || !prefix_ids) {
        rc = oom(err);
        goto cleanup;
    }
    for (size_t i = 0; i < m->cfg.n_eos; i++) {
        stop[n_stop++] = m->cfg.eos[i];
    }
    if (tok && cs_tok_eos(tok) >= 0) {
        stop[n_stop++] = cs_tok_eos(tok);
    }
    cs_rng_seed(&rng, p->seed);
    for (size_t i = 0; i < pool->n; i++) {
        order[i] = i;
    }
    cs_rng_shuffle(&rng, order, pool->n);
    uint64_t t0 = cs_time_mono_ns();
    for (size_t j = 0; j < M; j++) {
        const cs_calib_item *src = &pool->items[order[j]];
        rc = self_gen_one(p, m, src, bos, stop, n_stop, j, &gen[n_gen], err);
        if (rc == CS_OK) {
            n_gen++;
            cJSON *s = cJSON_CreateString(src->id);
            if (!s || !cJSON_AddItemToArray(prefix_ids, s)) {
                cJSON_Delete(s);
                rc = oom(err);
            }
        }
        if (rc != CS_OK) {
            goto cleanup;
        }
        if (progress) {
            progress(pctx, "generate", j + 1, M);
        }
    }
    rc = score_nll(m, gen, NULL, n_gen, p->batch, progress, pctx, "score", nll, err);
    if (rc != CS_OK) {
        goto cleanup;
    }
    double fwd = secs_since(t0);
    t0 = cs_time_mono_ns();
    for (size_t j = 0; j < n_gen; j++) {
        ppl[j] = exp(nll[j]);
    }
    double thr = quantile(ppl, n_gen, p->ppl_quantile);
    for (size_t j = 0; j < n_gen; j++) {
        if (ppl[j] < thr) {
            surv[n_surv++] = j;
        }
    }
    if (n_surv < p->n) {
        rc = cs_err_set(err, CS_EINVAL, 0,
                        "self_gen: %zu of %zu generations are below the perplexity threshold "
                        "%.4g, fewer than n = %zu (raise m)",
                        n_surv, n_gen, thr, p->n);
        goto cleanup;
    }
    cs_rng_shuffle(&rng, surv, n_surv);
    rc = self_gen_output(p, gen, n_gen, surv, n_surv, ppl, thr, prefix_ids, out, err);
    if (rc == CS_OK) {
        rc = diag_times(out, fwd, secs_since(t0), err);
    }
cleanup:
    for (size_t j = 0; gen && j < n_gen; j++) {
        free(gen[j].tokens);
    }
    free(gen);
    free(order);
    free(surv);
    free(ppl);
    free(nll);
    cJSON_Delete(prefix_ids);
    return rc;
}

/* ---- S4 ZipCal ---- */

cs_rc cs_zipcal_greedy(const uint32_t *const *sets, const size_t *set_n, size_t n_items,
                       size_t n_classes, size_t n, size_t cap, uint64_t seed, size_t *out,
                       size_t *gain, cs_err *err)
{
    if (n > n_items || cap == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "zipcal: %zu items, cannot select %zu (cap %zu)",
                          n_items, n, cap);
    }
    uint8_t *covered = cs_calloc_array(n_classes ? n_classes : 1, 1);
    size_t *rem = cs_calloc_array(n_items ? n_items : 1, sizeof(size_t));
    size_t *search = cs_calloc_array(n_items ? n_items : 1, sizeof(size_t));
    cs_rng rng;
    if (!covered || !rem || !search) {
        free(covered);
        free(rem);
        free(search);
        return oom(err);
    }
    cs_rng_seed(&rng, seed);
    for (size_t i = 0; i < n_items; i++) {
        rem[i] = i;
    }
    size_t n_rem = n_items;
    for (size_t step = 0; step < n; step++) {
        size_t n_search = n_rem;
        const size_t *cand = rem;
        if (n_rem > cap) {
            memcpy(search, rem, n_rem * sizeof(size_t));
            cs_rng_shuffle(&rng, search, n_rem);
            n_search = cap;
            cand = search;
        }
        size_t best = SIZE_MAX, best_gain = 0;
        for (size_t c = 0; c < n_search; c++) {
            size_t i = cand[c], g = 0;
            for (size_t k = 0; k < set_n[i]; k++) {
                g += !covered[sets[i][k]];
            }
            if (best == SIZE_MAX || g > best_gain ||
                (g == best_gain &&
                 (set_n[i] > set_n[best] || (set_n[i] == set_n[best] && i < best)))) {
                best = i;
                best_gain = g;
            }
        }
        out[step] = best;
        if (gain) {
            gain[step] = best_gain;
        }
        for (size_t k = 0; k < set_n[best]; k++) {
            covered[sets[best][k]] = 1;
        }
        size_t w = 0;
        for (size_t r = 0; r < n_rem; r++) {
            if (rem[r] != best) {
                rem[w++] = rem[r];
            }
        }
        n_rem = w;
    }
    free(covered);
    free(rem);
    free(search);
    return CS_OK;
}

cs_rc cs_kcenter_greedy(const float *x, size_t n_rows, size_t dim, size_t k, size_t *out,
                        cs_err *err)
{
    if (k > n_rows || k == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "k-center: cannot pick %zu of %zu rows", k, n_rows);
    }
    double *mind = cs_calloc_array(n_rows, sizeof(double));
    uint8_t *taken = cs_calloc_array(n_rows, 1);
    if (!mind || !taken) {
        free(mind);
        free(taken);
        return oom(err);
    }
    size_t c = 0;
    for (size_t i = 0; i < n_rows; i++) {
        mind[i] = INFINITY;
    }
    for (size_t s = 0; s < k; s++) {
        out[s] = c;
        taken[c] = 1;
        size_t next = SIZE_MAX;
        for (size_t i = 0; i < n_rows; i++) {
            double d = 0.0;
            for (size_t j = 0; j < dim; j++) {
                double e = (double)x[i * dim + j] - (double)x[c * dim + j];
                d += e * e;
            }
            mind[i] = d < mind[i] ? d : mind[i];
            if (!taken[i] && (next == SIZE_MAX || mind[i] > mind[next])) {
                next = i;
            }
        }
        c = next;
    }
    free(mind);
    free(taken);
    return CS_OK;
}

typedef struct norm_tok {
    char *s;
    int32_t id;
} norm_tok;

static int norm_tok_cmp(const void *a, const void *b)
{
    return strcmp(((const norm_tok *)a)->s, ((const norm_tok *)b)->s);
}

/* cls[id] = class of token id's normalized string, or UINT32_MAX when skipped. */
static cs_rc zipcal_classes(const cs_tok *tok, uint32_t **cls_out, size_t *V_out, size_t *n_classes,
                            cs_err *err)
{
    size_t V = cs_tok_vocab_size(tok), nn = 0;
    uint32_t *cls = cs_calloc_array(V ? V : 1, sizeof(uint32_t));
    norm_tok *nt = cs_calloc_array(V ? V : 1, sizeof(norm_tok));
    cs_rc rc = CS_OK;
    if (!cls || !nt) {
        rc = oom(err);
        goto cleanup;
    }
    for (size_t id = 0; id < V; id++) {
        size_t len = 0;
        cls[id] = UINT32_MAX;
        const char *pc =
                cs_tok_is_special(tok, (int32_t)id) ? NULL : cs_tok_piece(tok, (int32_t)id, &len);
        if (!pc) {
            continue;
        }
        char *s = malloc(len + 1);
        size_t o = 0;
        if (!s) {
            rc = oom(err);
            goto cleanup;
        }
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)pc[i];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                continue;
            }
            /* BPE space marks: U+0120 'Ġ' (C4 A0) and U+2581 '▁' (E2 96 81) */
            if (c == 0xC4 && i + 1 < len && (unsigned char)pc[i + 1] == 0xA0) {
                i++;
                continue;
            }
            if (c == 0xE2 && i + 2 < len && (unsigned char)pc[i + 1] == 0x96 &&
                (unsigned char)pc[i + 2] == 0x81) {
                i += 2;
                continue;
            }
            s[o++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        }
        s[o] = '\0';
        if (o == 0) {
            free(s);
            continue;
        }
        nt[nn++] = (norm_tok){s, (int32_t)id};
    }
    qsort(nt, nn, sizeof(*nt), norm_tok_cmp);
    uint32_t c = 0;
    for (size_t i = 0; i < nn; i++) {
        if (i > 0 && strcmp(nt[i].s, nt[i - 1].s) != 0) {
            c++;
        }
        cls[nt[i].id] = c;
    }
    *n_classes = nn ? (size_t)c + 1 : 0;
cleanup:
    for (size_t i = 0; nt && i < nn; i++) {
        free(nt[i].s);
    }
    free(nt);
    if (rc != CS_OK) {
        free(cls);
        cls = NULL;
    }
    *cls_out = cls;
    *V_out = V;
    return rc;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* sets[i] = the sorted distinct classes (cls, of V tokens) of the tokens of item i; set_n[i] how
 * many. */
static cs_rc zipcal_sets(const cs_calib_pool *pool, const uint32_t *cls, size_t V, uint32_t **sets,
                         size_t *set_n, cs_err *err)
{
    for (size_t i = 0; i < pool->n; i++) {
        const cs_calib_item *it = &pool->items[i];
        sets[i] = cs_calloc_array(it->n_tokens ? it->n_tokens : 1, sizeof(uint32_t));
        if (!sets[i]) {
            return oom(err);
        }
        size_t k = 0;
        for (size_t t = 0; t < it->n_tokens; t++) {
            int32_t id = it->tokens[t];
            if (id >= 0 && (size_t)id < V && cls[id] != UINT32_MAX) {
                sets[i][k++] = cls[id];
            }
        }
        qsort(sets[i], k, sizeof(uint32_t), u32_cmp);
        size_t w = 0;
        for (size_t r = 0; r < k; r++) {
            if (w == 0 || sets[i][w - 1] != sets[i][r]) {
                sets[i][w++] = sets[i][r];
            }
        }
        set_n[i] = w;
    }
    return CS_OK;
}

/* Scratch of sel_zipcal, each of pool->n entries. */
typedef struct zipcal_ws {
    uint32_t **sets;
    size_t *set_n, *idx, *pick, *gain;
    size_t *uni; /* the items picked so far, source after source */
    size_t n_uni;
} zipcal_ws;

/* Greedy coverage within source s: picks min(n, its size) of its items into w->uni and appends
 * the source's record to per. */
static cs_rc zipcal_source(const cs_select_params *p, const cs_calib_pool *pool, size_t s,
                           size_t n_classes, zipcal_ws *w, cJSON *per, cs_err *err)
{
    size_t k = 0;
    cs_rc rc;
    for (size_t i = 0; i < pool->n; i++) {
        if (pool->items[i].source == s) {
            w->idx[k++] = i;
        }
    }
    size_t want = p->n < k ? p->n : k;
    if (want == 0) {
        return CS_OK;
    }
    const uint32_t **ss = cs_calloc_array(k, sizeof(uint32_t *));
    size_t *sn = cs_calloc_array(k, sizeof(size_t));
    if (!ss || !sn) {
        free(ss);
        free(sn);
        return oom(err);
    }
    for (size_t j = 0; j < k; j++) {
        ss[j] = w->sets[w->idx[j]];
        sn[j] = w->set_n[w->idx[j]];
    }
    rc = cs_zipcal_greedy(ss, sn, k, n_classes, want, p->search_limit,
                          p->seed ^ (UINT64_C(0x9e3779b97f4a7c15) * (s + 1)), w->pick, w->gain,
                          err);
    free(ss);
    free(sn);
    if (rc != CS_OK) {
        return rc;
    }
    size_t covered = 0;
    for (size_t j = 0; j < want; j++) {
        w->uni[w->n_uni++] = w->idx[w->pick[j]];
        covered += w->gain[j];
    }
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(per, o) ||
        !cJSON_AddStringToObject(o, "source", pool->sources[s]) ||
        !cJSON_AddNumberToObject(o, "candidates", (double)k) ||
        !cJSON_AddNumberToObject(o, "selected", (double)want) ||
        !cJSON_AddNumberToObject(o, "covered", (double)covered) ||
        !cs_json_add(o, "gains", cs_json_size_array(w->gain, want))) {
        return oom(err);
    }
    return CS_OK;
}

/* Several sources: k-center greedy on the mean input embeddings of the items in uni[0..n_uni),
 * picking p->n of them into index[]; *fwd = the seconds the embeddings took. pick is scratch of
 * n_uni entries. */
static cs_rc zipcal_kcenter(const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
                            const size_t *uni, size_t n_uni, size_t *pick, size_t *index,
                            double *fwd, cs_err *err)
{
    cs_rc rc = CS_OK;
    if (!m) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "zipcal with several sources needs the model (input embeddings)");
    }
    uint64_t t1 = cs_time_mono_ns();
    const size_t H = m->cfg.hidden;
    float *emb = cs_calloc_array(n_uni * H, sizeof(float));
    if (!emb) {
        return oom(err);
    }
    for (size_t u = 0; u < n_uni && rc == CS_OK; u++) {
        const cs_calib_item *it = &pool->items[uni[u]];
        for (size_t t = 0; t < it->n_tokens; t++) {
            int32_t id = it->tokens[t];
            if (id < 0 || (size_t)id >= m->cfg.vocab) {
                rc = cs_err_set(err, CS_ERANGE, 0, "zipcal: item %s: token %d out of range", it->id,
                                (int)id);
                break;
            }
            const float *e = m->embed + (size_t)id * H;
            for (size_t h = 0; h < H; h++) {
                emb[u * H + h] += e[h];
            }
        }
        for (size_t h = 0; rc == CS_OK && it->n_tokens && h < H; h++) {
            emb[u * H + h] /= (float)it->n_tokens;
        }
    }
    if (rc == CS_OK) {
        *fwd = secs_since(t1);
        rc = cs_kcenter_greedy(emb, n_uni, H, p->n, pick, err);
    }
    for (size_t k = 0; rc == CS_OK && k < p->n; k++) {
        index[k] = uni[pick[k]];
    }
    free(emb);
    return rc;
}

static cs_rc sel_zipcal(const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
                        const cs_tok *tok, cs_select_progress progress, void *pctx,
                        cs_calib_selection *out, cs_err *err)
{
    uint64_t t0 = cs_time_mono_ns();
    uint32_t *cls = NULL;
    size_t V = 0, n_classes = 0;
    zipcal_ws w = {0};
    double fwd = 0.0;
    cs_rc rc;
    if (!tok) {
        return cs_err_set(err, CS_EINVAL, 0, "zipcal needs the tokenizer");
    }
    if ((rc = zipcal_classes(tok, &cls, &V, &n_classes, err)) != CS_OK) {
        return rc;
    }
    w.sets = cs_calloc_array(pool->n ? pool->n : 1, sizeof(uint32_t *));
    w.set_n = cs_calloc_array(pool->n ? pool->n : 1, sizeof(size_t));
    w.idx = cs_calloc_array(pool->n ? pool->n : 1, sizeof(size_t));
    w.pick = cs_calloc_array(pool->n ? pool->n : 1, sizeof(size_t));
    w.gain = cs_calloc_array(pool->n ? pool->n : 1, sizeof(size_t));
    w.uni = cs_calloc_array(pool->n ? pool->n : 1, sizeof(size_t));
    cJSON *per = cJSON_CreateArray();
    if (!w.sets || !w.set_n || !w.idx || !w.pick || !w.gain || !w.uni || !per ||
        !cJSON_AddItemToObject(out->diag, "per_source", per)) {
        cJSON_Delete(per);
        rc = oom(err);
        goto cleanup;
    }
    rc = zipcal_sets(pool, cls, V, w.sets, w.set_n, err);
    /* per source: n each (all of a smaller source) */
    for (size_t s = 0; rc == CS_OK && s < pool->n_sources; s++) {
        rc = zipcal_source(p, pool, s, n_classes, &w, per, err);
        if (rc == CS_OK && progress) {
            progress(pctx, "zipcal", s + 1, pool->n_sources);
        }
    }
    if (rc != CS_OK) {
        goto cleanup;
    }
    if (w.n_uni < p->n) {
        rc = cs_err_set(err, CS_EINVAL, 0, "zipcal: the pool has %zu items, fewer than n = %zu",
                        pool->n, p->n);
        goto cleanup;
    }
    out->index = cs_calloc_array(p->n, sizeof(size_t));
    if (!out->index) {
        rc = oom(err);
        goto cleanup;
    }
    if (w.n_uni == p->n) {
        memcpy(out->index, w.uni, p->n * sizeof(size_t));
    } else if ((rc = zipcal_kcenter(p, pool, m, w.uni, w.n_uni, w.pick, out->index, &fwd, err)) !=
               CS_OK) {
        goto cleanup;
    }
    out->n = p->n;
    if (!cJSON_AddNumberToObject(out->diag, "n_classes", (double)n_classes) ||
        !cJSON_AddStringToObject(out->diag, "routine", "unique_tokens") ||
        !cJSON_AddBoolToObject(out->diag, "kcenter", w.n_uni > p->n)) {
        rc = oom(err);
        goto cleanup;
    }
    rc = diag_times(out, fwd, secs_since(t0) - fwd, err);
cleanup:
    for (size_t i = 0; w.sets && i < pool->n; i++) {
        free(w.sets[i]);
    }
    free(w.sets);
    free(w.set_n);
    free(w.idx);
    free(w.pick);
    free(w.gain);
    free(w.uni);
    free(cls);
    return rc;
}

/* ---- dispatch ---- */

/* diag.stats: where the statistics came from and what this run's forward passes cost. */
static cs_rc diag_stats(cs_calib_selection *out, const cs_pstat_ctx *sc,
                        const cs_pstat_counters *before, cs_err *err)
{
    const cs_pstat_counters *a = &sc->count;
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddItemToObject(out->diag, "stats", o);
    if (!ok) {
        cJSON_Delete(o);
        return oom(err);
    }
    ok = (sc->cache && sc->model_id
                  ? cJSON_AddStringToObject(o, "cache", cs_cache_dir(sc->cache)) != NULL
                  : cJSON_AddNullToObject(o, "cache") != NULL) &&
         cJSON_AddNumberToObject(o, "forward_passes", (double)(a->passes - before->passes)) &&
         cJSON_AddNumberToObject(o, "items_forwarded", (double)(a->items - before->items)) &&
         cJSON_AddNumberToObject(o, "tokens_forwarded", (double)(a->tokens - before->tokens)) &&
         cJSON_AddNumberToObject(o, "cache_hits", (double)(a->hits - before->hits)) &&
         cJSON_AddNumberToObject(o, "computed", (double)(a->computed - before->computed)) &&
         cJSON_AddNumberToObject(o, "cache_writes", (double)(a->written - before->written));
    return ok ? CS_OK : oom(err);
}

cs_rc cs_select_run_env(const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
                        const cs_tok *tok, const cs_select_env *env, cs_select_progress progress,
                        void *pctx, cs_calib_selection *out, cs_err *err)
{
    cs_pstat_ctx local = {0}, *sc = env && env->stats ? env->stats : &local;
    cs_pstat_counters before = sc->count;
    bool uses_stats = false;
    cs_rc rc;
    memset(out, 0, sizeof(*out));
    if (p->n == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "selector %s: n must be positive",
                          cs_select_name(p->kind));
    }
    bool generates = p->kind == CS_SEL_SELF_CALIBRATION;
    if (!generates && (!pool || pool->n < p->n)) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "selector %s: the pool has %zu items, fewer than n = %zu",
                          cs_select_name(p->kind), pool ? pool->n : 0, p->n);
    }
    if (p->kind != CS_SEL_RANDOM && p->kind != CS_SEL_ZIPCAL && !m) {
        return cs_err_set(err, CS_EINVAL, 0, "selector %s needs the model",
                          cs_select_name(p->kind));
    }
    if (p->kind == CS_SEL_ACDM && (!env || !env->reference || env->reference->n == 0)) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "selector acdm needs the reference items of its tasks (reference: task "
                          "sources with train-side items)");
    }
    if ((rc = diag_init(p, out, err)) != CS_OK) {
        cs_calib_selection_fini(out);
        return rc;
    }
    switch (p->kind) {
    case CS_SEL_RANDOM:
        rc = sel_random(p, pool, out, err);
        break;
    case CS_SEL_SELF_CALIBRATION:
        rc = sel_self_calibration(p, m, tok, progress, pctx, out, err);
        break;
    case CS_SEL_SELF_GEN:
        rc = sel_self_gen(p, pool, m, tok, progress, pctx, out, err);
        break;
    case CS_SEL_ZIPCAL:
        rc = sel_zipcal(p, pool, m, tok, progress, pctx, out, err);
        break;
    case CS_SEL_PPL_RANK:
        uses_stats = true;
        rc = sel_ppl(p, pool, m, sc, progress, pctx, out, err);
        break;
    case CS_SEL_COLA:
        uses_stats = true;
        rc = cs_select_cola(p, pool, m, sc, progress, pctx, out, err);
        break;
    case CS_SEL_ACDM:
        uses_stats = true;
        rc = cs_select_acdm(p, pool, env->reference, m, sc, progress, pctx, out, err);
        break;
    case CS_SEL_COVERCAL:
        uses_stats = true;
        rc = cs_select_covercal(p, pool, m, sc, progress, pctx, out, err);
        break;
    default:
        rc = cs_err_set(err, CS_EINVAL, 0, "unknown selector %d", (int)p->kind);
        break;
    }
    if (rc == CS_OK && uses_stats) {
        rc = diag_stats(out, sc, &before, err);
    }
    if (rc != CS_OK) {
        cs_calib_selection_fini(out);
    }
    return rc;
}

cs_rc cs_select_run(const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
                    const cs_tok *tok, cs_select_progress progress, void *pctx,
                    cs_calib_selection *out, cs_err *err)
{
    return cs_select_run_env(p, pool, m, tok, NULL, progress, pctx, out, err);
}
