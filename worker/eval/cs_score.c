/* eval: scoring tasks (cs_score.h). */
#include "cs_score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_generate.h"
#include "cs_kernels.h"

#define SCORE_MAX_NEW        256
#define SCORE_BATCH_ROWS     1  /* one item per pass: on CPU less padding beats bigger batches */
#define SCORE_ITEMS_PER_PASS 16 /* MC, shared context: items per pair of passes */
/* MC, shared context: the most the key/value caches of a pair of passes may take; fewer items
 * run together when their contexts are long */
#define SCORE_CACHE_BYTES ((double)(256 << 20))

double cs_score_stderr(double p, size_t n)
{
    return n < 2 ? 0.0 : sqrt(p * (1.0 - p) / (double)(n - 1));
}

void cs_score_fini(cs_score *s)
{
    if (s) {
        free(s->ll);
        free(s->pred);
        free(s->ok_acc);
        free(s->ok_norm);
        free(s->ok_bytes);
        free(s->ok_strict);
        free(s->ok_flex);
        free(s->margin);
        memset(s, 0, sizeof(*s));
    }
}

static size_t code_points(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        n += (*p & 0xC0) != 0x80;
    }
    return n;
}

cs_rc cs_score_encode(const cs_tok *tok, const char *a, const char *b, int32_t **ids, size_t *n,
                      cs_err *err)
{
    cs_buf s;
    cs_buf_init(&s);
    cs_rc rc = b ? cs_buf_printf(&s, "%s %s", a, b) : cs_buf_printf(&s, "%s", a);
    if (rc != CS_OK) {
        cs_buf_fini(&s);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    rc = cs_tok_encode(tok, s.data, s.len, CS_TOK_ADD_SPECIAL, ids, n, err);
    cs_buf_fini(&s);
    return rc;
}

/* The ids of the context as the scorer reads it: encode(context without trailing whitespace), or
 * [stand_in] when those are none (an empty context, no BOS). Owned *ids, *n >= 1. */
static cs_rc context_ids(const cs_tok *tok, int32_t stand_in, const char *context, int32_t **ids,
                         size_t *n, cs_err *err)
{
    size_t keep = strlen(context);
    char *trimmed;
    cs_rc rc;
    *ids = NULL;
    *n = 0;
    while (keep > 0 && strchr(" \t\n\r", context[keep - 1])) {
        keep--;
    }
    if (!(trimmed = cs_strndup(context, keep))) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    rc = cs_score_encode(tok, trimmed, NULL, ids, n, err);
    free(trimmed);
    if (rc == CS_OK && *n == 0) {
        free(*ids);
        *ids = NULL;
        if (stand_in < 0) {
            return cs_err_set(
                    err, CS_EINVAL, 0,
                    "an empty context, and the model has neither BOS nor EOS to stand in");
        }
        if (!(*ids = cs_alloc_array(1, sizeof(int32_t)))) {
            return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
        (*ids)[0] = stand_in;
        *n = 1;
    }
    return rc;
}

cs_rc cs_score_split(const cs_tok *tok, int32_t stand_in, const char *context,
                     const char *continuation, int32_t **full, size_t *n_full, size_t *n_ctx,
                     cs_err *err)
{
    int32_t *ctx = NULL, *ids = NULL;
    size_t nc = 0, n = 0, keep = strlen(context);
    char *trimmed = NULL;
    cs_rc rc;

    *full = NULL;
    *n_full = *n_ctx = 0;
    while (keep > 0 && strchr(" \t\n\r", context[keep - 1])) {
        keep--;
    }
    if (!(trimmed = cs_alloc_array(keep + 1, 1))) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    memcpy(trimmed, context, keep);
    trimmed[keep] = '\0';
    if ((rc = cs_score_encode(tok, trimmed, NULL, &ctx, &nc, err)) != CS_OK ||
        (rc = cs_score_encode(tok, context, continuation, &ids, &n, err)) != CS_OK) {
        goto out;
    }
    if (nc == 0) { /* an empty context and no BOS: the stand-in token is the context */
        int32_t *with = stand_in >= 0 ? cs_alloc_array(n + 1, sizeof(int32_t)) : NULL;
        if (stand_in < 0) {
            rc = cs_err_set(err, CS_EINVAL, 0,
                            "an empty context, and the model has neither BOS nor EOS to stand in");
            goto out;
        }
        if (!with) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            goto out;
        }
        with[0] = stand_in;
        if (n > 0) {
            memcpy(with + 1, ids, n * sizeof(int32_t));
        }
        free(ids);
        ids = with;
        n++;
        nc = 1;
    }
    *full = ids;
    *n_full = n;
    *n_ctx = nc;
    ids = NULL;
out:
    free(trimmed);
    free(ctx);
    free(ids);
    return rc;
}

/* The E1 split of option j of item i of t (MC: the item's text is the context and the option the
 * continuation; multi-input: the other way round); an option that adds no token is CS_EINVAL
 * naming the item. */
static cs_rc split_option(const cs_tok *tok, int32_t stand_in, const cs_task *t, size_t i, size_t j,
                          int32_t **full, size_t *nfull, size_t *nctx, cs_err *err)
{
    const cs_task_item *it = &t->items[i];
    const char *c = t->kind == CS_TASK_MC ? it->text : it->options[j];
    const char *x = t->kind == CS_TASK_MC ? it->options[j] : it->text;
    cs_rc rc = cs_score_split(tok, stand_in, c, x, full, nfull, nctx, err);
    if (rc == CS_OK && *nfull <= *nctx) {
        rc = cs_err_set(err, CS_EINVAL, 0, "%s:%zu: item %s: option %zu adds no tokens", t->path,
                        it->line, it->id, j);
    }
    return rc;
}

/* Counts in s the work of n tokens at positions past..past+n-1, head of them through the head. */
static void work_add(cs_score *s, size_t past, size_t n, size_t head)
{
    s->work_tokens += (double)n;
    s->work_head_rows += (double)head;
    s->work_attn_pairs += (double)n * (double)past + (double)n * ((double)n + 1) / 2;
}

/* LL of every option of items [i0, i1) of t, in item order into ll, all in one batched forward
 * pass. MC: the context is it->text and option j the continuation; multi-input: option j is the
 * context and it->text the continuation. */
static cs_rc batch_ll(cs_model *m, const cs_tok *tok, const cs_task *t, size_t i0, size_t i1,
                      double *ll, cs_score *s, cs_err *err)
{
    size_t B = 0, T = 0, b = 0;
    int32_t **full = NULL, *tokens = NULL;
    int32_t stand_in = m->cfg.n_eos > 0 ? m->cfg.eos[0] : -1;
    size_t *nfull = NULL, *nctx = NULL;
    double *lp = NULL;
    cs_rc rc = CS_OK;

    for (size_t i = i0; i < i1; i++) {
        B += t->items[i].n_options;
    }
    full = cs_calloc_array(B, sizeof(int32_t *));
    nfull = cs_calloc_array(B, sizeof(size_t));
    nctx = cs_calloc_array(B, sizeof(size_t));
    if (!full || !nfull || !nctx) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    for (size_t i = i0; i < i1; i++) {
        const cs_task_item *it = &t->items[i];
        for (size_t j = 0; j < it->n_options; j++, b++) {
            if ((rc = split_option(tok, stand_in, t, i, j, &full[b], &nfull[b], &nctx[b], err)) !=
                CS_OK) {
                goto out;
            }
            T = nfull[b] > T ? nfull[b] : T;
            if (j == 0 || t->kind != CS_TASK_MC) { /* MC: the context once per item */
                work_add(s, 0, nctx[b] - 1, 0);
            }
            work_add(s, nctx[b] - 1, nfull[b] - nctx[b], nfull[b] - nctx[b]);
        }
    }
    tokens = cs_calloc_array(B * T, sizeof(int32_t));
    lp = cs_alloc_array(B * T, sizeof(double));
    if (!tokens || !lp) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    for (b = 0; b < B; b++) {
        memcpy(tokens + b * T, full[b], nfull[b] * sizeof(int32_t));
    }
    if ((rc = cs_model_logprobs(m, tokens, B, T, nfull, lp, err)) != CS_OK) {
        goto out;
    }
    for (b = 0; b < B; b++) {
        double sum = 0;
        for (size_t k = nctx[b] - 1; k + 1 < nfull[b]; k++) {
            sum += lp[b * T + k];
        }
        ll[b] = sum;
    }
out:
    for (size_t k = 0; full && k < B; k++) {
        free(full[k]);
    }
    free(full);
    free(nfull);
    free(nctx);
    free(tokens);
    free(lp);
    return rc;
}

static size_t argmax(const double *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return best;
}

/* ---- generation ------------------------------------------------------------------------------ */

/* Removes "," and "$" and a trailing "."; owned copy of s[0..n). */
static char *normalize_number(const char *s, size_t n)
{
    char *out = cs_alloc_array(n + 1, 1);
    size_t k = 0;
    if (!out) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ',' && s[i] != '$') {
            out[k++] = s[i];
        }
    }
    while (k > 0 && out[k - 1] == '.') {
        k--;
    }
    out[k] = '\0';
    return out;
}

static bool num_char(char c)
{
    return (c >= '0' && c <= '9') || c == '.' || c == ',' || c == '$';
}

/* The number starting at p (an optional '-', then digits, '.', ',' or '$' with a digit among
 * them); its length, or 0. */
static size_t number_at(const char *p)
{
    size_t i = p[0] == '-' ? 1 : 0, digits = 0;
    while (num_char(p[i])) {
        digits += p[i] >= '0' && p[i] <= '9';
        i++;
    }
    return digits > 0 ? i : 0;
}

cs_rc cs_score_extract(const char *text, char **strict, char **flex, cs_err *err)
{
    const char *h = strstr(text, "####");
    *strict = *flex = NULL;
    if (h) {
        const char *p = h + 4;
        while (*p == ' ') {
            p++;
        }
        size_t n = number_at(p);
        if (n > 0 && !(*strict = normalize_number(p, n))) {
            return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
    }
    const char *last = NULL;
    size_t last_n = 0;
    for (const char *p = text; *p;) {
        size_t n = (p == text || !num_char(p[-1])) ? number_at(p) : 0;
        if (n > 0) {
            last = p;
            last_n = n;
            p += n;
        } else {
            p++;
        }
    }
    if (last && !(*flex = normalize_number(last, last_n))) {
        free(*strict);
        *strict = NULL;
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    return CS_OK;
}

cs_rc cs_score_gold(const char *answer, char **want, cs_err *err)
{
    char *strict = NULL, *flex = NULL;
    cs_rc rc = cs_score_extract(answer, &strict, &flex, err);
    free(flex);
    *want = NULL;
    if (rc != CS_OK) {
        return rc;
    }
    *want = strict ? strict : normalize_number(answer, strlen(answer));
    return *want ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
}

static void cut_at(char *text, const char *stop)
{
    char *p = stop[0] ? strstr(text, stop) : NULL;
    if (p) {
        *p = '\0';
    }
}

/* Ends generation once the decoded text holds a stop string or a blank line. */
typedef struct gen_stop {
    const cs_tok *tok;
    const cs_task_item *it;
} gen_stop;

static bool has_stop(const char *text, const cs_task_item *it)
{
    for (size_t i = 0; i < it->n_options; i++) {
        if (it->options[i][0] && strstr(text, it->options[i])) {
            return true;
        }
    }
    return strstr(text, "\n\n") != NULL;
}

static bool gen_until(void *ctx, const int32_t *gen, size_t n_gen)
{
    const gen_stop *g = ctx;
    char *text = NULL;
    size_t len = 0;
    cs_err err = {0};
    if (cs_tok_decode(g->tok, gen, n_gen, true, &text, &len, &err) != CS_OK) {
        return false; /* decoded (and reported) again after generation */
    }
    bool stop = has_stop(text, g->it);
    free(text);
    return stop;
}

static cs_rc gen_item(cs_model *m, const cs_tok *tok, const cs_task_item *it, size_t max_new,
                      bool *strict_ok, bool *flex_ok, cs_score *s, cs_err *err)
{
    int32_t *prompt = NULL, *out = NULL;
    size_t n_prompt = 0, n_out = 0, len = 0;
    char *text = NULL, *strict = NULL, *flex = NULL, *want = NULL;
    cs_gen_params p;
    cs_rc rc;

    cs_gen_params_default(&p);
    p.max_new = max_new;
    p.stop = m->cfg.eos;
    p.n_stop = m->cfg.n_eos;
    gen_stop g = {tok, it};
    p.until = gen_until;
    p.until_ctx = &g;
    if ((rc = cs_score_encode(tok, it->text, NULL, &prompt, &n_prompt, err)) != CS_OK ||
        (rc = cs_generate(m, prompt, n_prompt, &p, &out, &n_out, err)) != CS_OK ||
        (rc = cs_tok_decode(tok, out, n_out, true, &text, &len, err)) != CS_OK) {
        goto done;
    }
    work_add(s, 0, n_prompt, 1);
    work_add(s, n_prompt, n_out, n_out);
    for (size_t i = 0; i < it->n_options; i++) {
        cut_at(text, it->options[i]);
    }
    cut_at(text, "\n\n");
    if ((rc = cs_score_extract(text, &strict, &flex, err)) != CS_OK) {
        goto done;
    }
    if ((rc = cs_score_gold(it->answer, &want, err)) != CS_OK) {
        goto done;
    }
    *strict_ok = strict && strcmp(strict, want) == 0;
    *flex_ok = flex && strcmp(flex, want) == 0;
done:
    free(prompt);
    free(out);
    free(text);
    free(strict);
    free(flex);
    free(want);
    return rc;
}

/* ---- tasks ----------------------------------------------------------------------------------- */

/* LL(gold) - max over the other options of LL; an item with one option has no rival: 0. */
static double gold_margin(const double *ll, size_t n, size_t gold)
{
    double best = -INFINITY;
    for (size_t j = 0; j < n; j++) {
        if (j != gold && ll[j] > best) {
            best = ll[j];
        }
    }
    return n > 1 ? ll[gold] - best : 0.0;
}

/* The per-item outcome arrays the kind of t has (zeroed, t->n each). */
static cs_rc alloc_outcomes(cs_score *s, const cs_task *t)
{
    size_t n = t->n ? t->n : 1;
    if (t->kind == CS_TASK_GEN) {
        s->ok_strict = cs_calloc_array(n, 1);
        s->ok_flex = cs_calloc_array(n, 1);
        return s->ok_strict && s->ok_flex ? CS_OK : CS_ENOMEM;
    }
    s->ok_acc = cs_calloc_array(n, 1);
    s->margin = cs_calloc_array(n, sizeof(double));
    if (t->kind == CS_TASK_MC) {
        s->ok_norm = cs_calloc_array(n, 1);
        s->ok_bytes = cs_calloc_array(n, 1);
        if (!s->ok_norm || !s->ok_bytes) {
            return CS_ENOMEM;
        }
    }
    return s->ok_acc && s->margin ? CS_OK : CS_ENOMEM;
}

/* The buffers of shared_ll, kept from pass to pass (grown when a pass needs more). */
typedef struct shared_ws {
    cs_kvcache ctx, opt; /* a sequence per item (its context); a sequence per option */
    int32_t *tokens;
    float *logits;
    size_t *lens, *past;
    size_t cap_tokens, cap_logits, cap_seqs;
} shared_ws;

static void shared_ws_fini(shared_ws *w)
{
    cs_kvcache_fini(&w->ctx);
    cs_kvcache_fini(&w->opt);
    cs_free_each((void *const[]){w->tokens, w->logits, w->lens, w->past}, 4);
    memset(w, 0, sizeof(*w));
}

/* Makes *c hold at least batch sequences of cap positions. */
static cs_rc shared_cache(cs_kvcache *c, const cs_model *m, size_t batch, size_t cap, cs_err *err)
{
    if (c->batch >= batch && c->cap >= cap) {
        return CS_OK;
    }
    size_t nb = batch > c->batch ? batch : c->batch, nc = cap > c->cap ? cap : c->cap;
    cs_kvcache_fini(c);
    return cs_kvcache_init(c, m, nb, nc < 64 ? 64 : nc * 2, err);
}

/* Grows w's token, length and logit buffers to n tokens, seqs sequences and nl logit rows. */
static cs_rc shared_bufs(shared_ws *w, size_t n, size_t seqs, size_t nl, size_t vocab, cs_err *err)
{
    if (n > w->cap_tokens) {
        free(w->tokens);
        w->cap_tokens = n * 2;
        w->tokens = cs_alloc_array(w->cap_tokens, sizeof(int32_t));
    }
    if (seqs > w->cap_seqs) {
        free(w->lens);
        free(w->past);
        w->cap_seqs = seqs * 2;
        w->lens = cs_alloc_array(w->cap_seqs, sizeof(size_t));
        w->past = cs_alloc_array(w->cap_seqs, sizeof(size_t));
    }
    if (nl > w->cap_logits) {
        free(w->logits);
        w->cap_logits = nl * 2;
        w->logits = cs_alloc_array(w->cap_logits, vocab * sizeof(float));
    }
    if (!w->tokens || !w->lens || !w->past || !w->logits) {
        shared_ws_fini(w);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory for %zu x %zu logits", nl, vocab);
    }
    return CS_OK;
}

/* The ids of one MC item: its context's and, per option, the E1 split (the continuation is
 * full[j][nctx[j]..nfull[j])). */
typedef struct item_ids {
    int32_t *ctx, **full;
    size_t nc, *nfull, *nctx;
} item_ids;

static void item_ids_fini(item_ids *d, size_t K)
{
    for (size_t j = 0; d->full && j < K; j++) {
        free(d->full[j]);
    }
    cs_free_each((void *const[]){d->ctx, d->full, d->nfull, d->nctx}, 4);
}

static cs_rc item_ids_get(const cs_tok *tok, int32_t stand_in, const cs_task *t, size_t i,
                          item_ids *d, cs_err *err)
{
    const cs_task_item *it = &t->items[i];
    const size_t K = it->n_options;
    memset(d, 0, sizeof(*d));
    d->full = cs_calloc_array(K, sizeof(int32_t *));
    d->nfull = cs_calloc_array(K, sizeof(size_t));
    d->nctx = cs_calloc_array(K, sizeof(size_t));
    cs_rc rc =
            d->full && d->nfull && d->nctx ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    rc = rc == CS_OK ? context_ids(tok, stand_in, it->text, &d->ctx, &d->nc, err) : rc;
    for (size_t j = 0; j < K && rc == CS_OK; j++) {
        rc = split_option(tok, stand_in, t, i, j, &d->full[j], &d->nfull[j], &d->nctx[j], err);
    }
    return rc;
}

/* LL of every option of the MC items [i0, i1), in item order into ll, each context computed
 * once: lm-eval's rule reads encode(context) followed by each option's continuation, so pass 1
 * runs every item's context but its last token, a sequence per item, into the key/value cache
 * w->ctx; each item's cached context is copied to one sequence per option of w->opt, and pass 2
 * runs every option of every item as one batch, sequence j = [the context's last token,
 * continuation j but its last token, padding] at its own item's position: the logits at its
 * rows give the log-probabilities of the continuation's tokens. Padding comes after the real
 * tokens, so causal attention keeps it out of them. Equal to batch_ll's LL up to float rounding
 * whenever encode(context + " " + option) starts with encode(context), which it almost always
 * does (where it does not, this is lm-eval's input and batch_ll's is not). */
static cs_rc shared_ll(cs_model *m, const cs_tok *tok, const cs_task *t, size_t i0, size_t i1,
                       double budget, shared_ws *w, double *ll, cs_score *s, cs_err *err)
{
    const size_t N = i1 - i0, V = m->cfg.vocab;
    const int32_t stand_in = m->cfg.n_eos > 0 ? m->cfg.eos[0] : -1;
    size_t T1 = 0, T2 = 0, S = 0, rows = 0, b = 0;
    item_ids *d = cs_calloc_array(N, sizeof(item_ids));
    cs_rc rc = d ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    for (size_t i = 0; i < N && rc == CS_OK; i++) {
        rc = item_ids_get(tok, stand_in, t, i0 + i, &d[i], err);
        if (rc != CS_OK) {
            break;
        }
        T1 = d[i].nc - 1 > T1 ? d[i].nc - 1 : T1;
        for (size_t j = 0; j < t->items[i0 + i].n_options; j++, S++) {
            size_t c = d[i].nfull[j] - d[i].nctx[j];
            T2 = c > T2 ? c : T2;
            rows += c;
        }
    }
    /* the two caches' bytes: more than budget (long contexts of a large model), and each half of
     * the items runs on its own */
    double bytes = ((double)S * (double)(T1 + T2) + (double)N * (double)T1) *
                   (double)(m->cfg.n_layers * m->cfg.n_kv_heads * m->cfg.head_dim) * 2.0 *
                   sizeof(float);
    if (rc == CS_OK && N > 1 && bytes > budget) {
        size_t mid = i0 + N / 2, off = 0;
        for (size_t i = i0; i < mid; i++) {
            off += t->items[i].n_options;
        }
        for (size_t i = 0; i < N; i++) {
            item_ids_fini(&d[i], t->items[i0 + i].n_options);
        }
        free(d);
        rc = shared_ll(m, tok, t, i0, mid, budget, w, ll, s, err);
        return rc == CS_OK ? shared_ll(m, tok, t, mid, i1, budget, w, ll + off, s, err) : rc;
    }
    for (size_t i = 0; i < N && rc == CS_OK; i++) {
        work_add(s, 0, d[i].nc - 1, 0);
        for (size_t j = 0; j < t->items[i0 + i].n_options; j++) {
            size_t c = d[i].nfull[j] - d[i].nctx[j];
            work_add(s, d[i].nc - 1, c, c);
        }
    }
    size_t need = (N * T1 > S * T2 ? N * T1 : S * T2);
    rc = rc == CS_OK ? shared_bufs(w, need, N > S ? N : S, rows, V, err) : rc;
    rc = rc == CS_OK ? shared_cache(&w->ctx, m, N, T1 ? T1 : 1, err) : rc;
    rc = rc == CS_OK ? shared_cache(&w->opt, m, S, T1 + T2, err) : rc;
    if (rc == CS_OK && T1 > 0) { /* pass 1: the contexts */
        memset(w->tokens, 0, N * T1 * sizeof(int32_t));
        for (size_t i = 0; i < N; i++) {
            memcpy(w->tokens + i * T1, d[i].ctx, (d[i].nc - 1) * sizeof(int32_t));
            w->lens[i] = d[i].nc - 1;
            w->past[i] = 0;
        }
        rc = cs_model_forward_at(m, w->tokens, N, T1, w->lens, w->past, &w->ctx, NULL, err);
    }
    if (rc == CS_OK) { /* pass 2: the options */
        memset(w->tokens, 0, S * T2 * sizeof(int32_t));
        for (size_t i = 0; i < N && rc == CS_OK; i++) {
            for (size_t j = 0; j < t->items[i0 + i].n_options && rc == CS_OK; j++, b++) {
                size_t c = d[i].nfull[j] - d[i].nctx[j];
                w->tokens[b * T2] = d[i].ctx[d[i].nc - 1];
                memcpy(w->tokens + b * T2 + 1, d[i].full[j] + d[i].nctx[j],
                       (c - 1) * sizeof(int32_t));
                w->lens[b] = c;
                w->past[b] = d[i].nc - 1;
                rc = cs_kvcache_copy(&w->ctx, i, d[i].nc - 1, &w->opt, b, err);
            }
        }
        rc = rc == CS_OK ? cs_model_forward_at(m, w->tokens, S, T2, w->lens, w->past, &w->opt,
                                               w->logits, err)
                         : rc;
    }
    b = 0;
    for (size_t i = 0, r = 0; i < N && rc == CS_OK; i++) {
        for (size_t j = 0; j < t->items[i0 + i].n_options; j++, b++) {
            const int32_t *cont = d[i].full[j] + d[i].nctx[j];
            double sum = 0;
            for (size_t p = 0; p < w->lens[b]; p++, r++) {
                sum += cs_log_softmax_at(w->logits + r * V, V, (size_t)cont[p]);
            }
            ll[b] = sum;
        }
    }
    for (size_t i = 0; d && i < N; i++) {
        item_ids_fini(&d[i], t->items[i0 + i].n_options);
    }
    free(d);
    return rc;
}

cs_rc cs_score_task(cs_model *m, const cs_tok *tok, const cs_task *t, const cs_score_opts *o,
                    cs_score *out, cs_err *err)
{
    shared_ws ws = {0};
    size_t max_opt = 0, hits = 0, hits_norm = 0, hits_bytes = 0, hits_flex = 0;
    double *norm = NULL, *bytes = NULL;
    cs_rc rc = CS_OK;

    memset(out, 0, sizeof(*out));
    if (t->kind == CS_TASK_REF) {
        return cs_err_set(err, CS_EINVAL, 0, "%s: a reference file cannot be scored", t->path);
    }
    for (size_t i = 0; i < t->n; i++) {
        out->n_ll += t->kind == CS_TASK_GEN ? 0 : t->items[i].n_options;
        max_opt = t->items[i].n_options > max_opt ? t->items[i].n_options : max_opt;
    }
    out->pred = cs_calloc_array(t->n ? t->n : 1, sizeof(int));
    out->ll = cs_calloc_array(out->n_ll ? out->n_ll : 1, sizeof(double));
    norm = cs_calloc_array(max_opt + 1, sizeof(double));
    bytes = cs_calloc_array(max_opt + 1, sizeof(double));
    if (!out->pred || !out->ll || !norm || !bytes || alloc_outcomes(out, t) != CS_OK) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto fail;
    }
    size_t rows = o && o->batch_rows ? o->batch_rows : SCORE_BATCH_ROWS;
    for (size_t i = 0, off = 0; i < t->n;) {
        size_t i1 = i + 1;
        if (t->kind == CS_TASK_GEN) {
            bool sm = false, f = false;
            if ((rc = gen_item(m, tok, &t->items[i], o && o->max_new ? o->max_new : SCORE_MAX_NEW,
                               &sm, &f, out, err)) != CS_OK) {
                goto fail;
            }
            out->pred[i] = sm;
            out->ok_strict[i] = sm;
            out->ok_flex[i] = f;
            hits += sm;
            hits_flex += f;
        } else {
            /* as many whole items as fit in `rows` sequences (at least one) */
            for (size_t r = t->items[i].n_options; i1 < t->n; i1++) {
                r += t->items[i1].n_options;
                if (r > rows) {
                    break;
                }
            }
            bool shared = t->kind == CS_TASK_MC && !(o && (o->batch_rows || o->unshared));
            if (shared) {
                size_t per = o && o->items_per_pass ? o->items_per_pass : SCORE_ITEMS_PER_PASS;
                i1 = i + per < t->n ? i + per : t->n;
                double budget = o && o->cache_bytes ? (double)o->cache_bytes : SCORE_CACHE_BYTES;
                rc = shared_ll(m, tok, t, i, i1, budget, &ws, out->ll + off, out, err);
            } else {
                rc = batch_ll(m, tok, t, i, i1, out->ll + off, out, err);
            }
            if (rc != CS_OK) {
                goto fail;
            }
            for (size_t k = i; k < i1; k++) {
                const cs_task_item *it = &t->items[k];
                const double *ll = out->ll + off;
                for (size_t j = 0; j < it->n_options; j++) {
                    size_t cp = code_points(it->options[j]), nb = strlen(it->options[j]);
                    norm[j] = ll[j] / (double)(cp ? cp : 1);
                    bytes[j] = ll[j] / (double)(nb ? nb : 1);
                }
                out->pred[k] = (int)argmax(ll, it->n_options);
                out->ok_acc[k] = out->pred[k] == it->gold;
                out->margin[k] = gold_margin(ll, it->n_options, (size_t)it->gold);
                hits += out->ok_acc[k];
                bool ok_norm = (int)argmax(norm, it->n_options) == it->gold;
                bool ok_bytes = (int)argmax(bytes, it->n_options) == it->gold;
                hits_norm += ok_norm;
                hits_bytes += ok_bytes;
                if (out->ok_norm) {
                    out->ok_norm[k] = ok_norm;
                    out->ok_bytes[k] = ok_bytes;
                }
                off += it->n_options;
            }
        }
        for (; i < i1; i++) {
            if (o && o->progress) {
                o->progress(o->progress_ctx, i + 1, t->n);
            }
        }
    }
    out->n = t->n;
    if (t->kind == CS_TASK_GEN) {
        out->exact_strict = (double)hits / (double)t->n;
        out->exact_flex = (double)hits_flex / (double)t->n;
    } else {
        out->acc = (double)hits / (double)t->n;
        out->acc_norm = (double)hits_norm / (double)t->n;
        out->acc_bytes = (double)hits_bytes / (double)t->n;
    }
    free(norm);
    free(bytes);
    shared_ws_fini(&ws);
    return CS_OK;
fail:
    free(norm);
    free(bytes);
    shared_ws_fini(&ws);
    cs_score_fini(out);
    return rc;
}

cs_rc cs_score_to_json(const cs_score *s, cs_task_kind kind, cJSON *obj, cs_err *err)
{
    struct {
        const char *key;
        double v;
        bool on;
    } rows[] = {
            {"n", (double)s->n, true},
            {"acc", s->acc, kind != CS_TASK_GEN},
            {"acc_stderr", cs_score_stderr(s->acc, s->n), kind != CS_TASK_GEN},
            {"acc_norm", s->acc_norm, kind == CS_TASK_MC},
            {"acc_norm_stderr", cs_score_stderr(s->acc_norm, s->n), kind == CS_TASK_MC},
            {"acc_bytes", s->acc_bytes, kind == CS_TASK_MC},
            {"exact_match", s->exact_strict, kind == CS_TASK_GEN},
            {"exact_match_stderr", cs_score_stderr(s->exact_strict, s->n), kind == CS_TASK_GEN},
            {"exact_match_flex", s->exact_flex, kind == CS_TASK_GEN},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (rows[i].on && !cJSON_AddNumberToObject(obj, rows[i].key, rows[i].v)) {
            return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
    }
    return CS_OK;
}
