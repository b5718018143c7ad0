/* calib_act_test.c - the activation-based selectors and what they stand on:
 * - pool statistics (cs_pstat) against per-item forward passes with a hook of the test's own
 *   (masked means, |x| means and maxima, NLL against cs_model_logprobs), independent of batching;
 * - the content-addressed cache (cs_cache): round trip, corrupt, truncated and foreign entries
 *   ignored and recomputed, model identity, and forward passes counted so a second selection on
 *   the same model and pool is seen to cost none (and COLA, ACDM, CoverCal share one pass);
 * - COLA: features against a naive twin, one pick per planted cluster, determinism and seeds;
 * - ACDM: distances against a naive twin, picks nearest the task centroids on a constructed case,
 *   quota and minimax against brute force, the reference sample, refusals;
 * - CoverCal: greedy cover with resets against a naive twin and on a constructed case.
 * Nothing here depends on the exact testbed weights: model-based checks compare the engine with
 * itself (batched vs one item, cache vs recomputation) or check invariants. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_cache.h"
#include "cs_calib.h"
#include "cs_kmeans.h"
#include "cs_model.h"
#include "cs_pstat.h"
#include "cs_select.h"
#include "cs_select_act.h"
#include "cs_source.h"
#include "cs_test.h"
#include "cs_tok.h"

typedef struct fixture {
    cs_model *m;
    cs_tok *tok;
    char *model_dir;
    char dir[64];
} fixture;

static char *src_path(const char *rel)
{
    const char *root = getenv("CS_SOURCE_DIR");
    cs_buf b;
    cs_buf_init(&b);
    assert_int_equal(cs_buf_printf(&b, "%s/%s", root ? root : ".", rel), CS_OK);
    return cs_buf_take(&b);
}

static char *tmp_path(const fixture *f, const char *name)
{
    cs_buf b;
    cs_buf_init(&b);
    assert_int_equal(cs_buf_printf(&b, "%s/%s", f->dir, name), CS_OK);
    return cs_buf_take(&b);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    cs_err err = {0};
    f->model_dir = src_path("sweeps/testbed/models/tb-llama");
    char *tp = src_path("sweeps/testbed/models/tb-llama/tokenizer.json");
    cs_rc rc = cs_model_load(&f->m, f->model_dir, 2, &err);
    if (rc == CS_OK) {
        rc = cs_tok_load(&f->tok, tp, &err);
    }
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    free(tp);
    snprintf(f->dir, sizeof f->dir, "/tmp/calib_act_test_XXXXXX");
    if (rc != CS_OK || !mkdtemp(f->dir)) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) {
        print_error("could not remove %s\n", f->dir);
    }
    cs_model_destroy(f->m);
    cs_tok_destroy(f->tok);
    free(f->model_dir);
    free(f);
    return 0;
}

static cs_calib_source corpus(const char *name, char **hold)
{
    char rel[128];
    snprintf(rel, sizeof rel, "sweeps/testbed/data/corpus/%s.jsonl", name);
    *hold = src_path(rel);
    return (cs_calib_source){.kind = "jsonl", .path = *hold, .name = name};
}

static cs_calib_source task(const char *file, const char *name, char **hold)
{
    char rel[128];
    snprintf(rel, sizeof rel, "sweeps/testbed/data/tasks/%s.jsonl", file);
    *hold = src_path(rel);
    return (cs_calib_source){.kind = "task", .path = *hold, .name = name};
}

/* n windows of L tokens over prose and code (half each), seeded. */
static void build(const fixture *f, size_t n, size_t L, uint64_t seed, cs_calib_pool *pool)
{
    char *h[2];
    cs_calib_source s[2] = {corpus("prose", &h[0]), corpus("code", &h[1])};
    cs_calib_compose_opts o;
    cs_err err = {0};
    cs_calib_compose_opts_default(&o);
    o.n = n;
    o.seq_len = L;
    o.seed = seed;
    cs_rc rc = cs_calib_pool_build(s, 2, f->tok, &o, pool, &err);
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    free(h[0]);
    free(h[1]);
}

/* The reference items of arith_mc and facts_mc (train split), cut to L tokens. */
static void build_ref(const fixture *f, size_t L, cs_calib_pool *ref)
{
    char *h[2];
    cs_calib_source s[2] = {task("arith_mc.train", "arith", &h[0]),
                            task("facts_mc.train", "facts", &h[1])};
    cs_err err = {0};
    cs_rc rc = cs_calib_ref_pool_build(s, 2, f->tok, L, true, ref, &err);
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    free(h[0]);
    free(h[1]);
}

/* ---- pool statistics ---- */

typedef struct ref_hook {
    size_t L, H, len;
    double *mlp, *mean, *absmean, *absmax; /* [L][H] of the one item */
} ref_hook;

static cs_rc ref_fn(void *ctx, const cs_hook_event *ev, cs_err *err)
{
    (void)err;
    ref_hook *r = ctx;
    bool in = ev->kind == CS_HOOK_LINEAR_IN && ev->lin == CS_LIN_Q;
    if (!in && ev->kind != CS_HOOK_MLP_OUT) {
        return CS_OK;
    }
    for (size_t h = 0; h < r->H; h++) {
        double s = 0, a = 0, mx = 0;
        for (size_t t = 0; t < r->len; t++) {
            double v = ev->x[t * r->H + h];
            s += v;
            a += fabs(v);
            mx = fabs(v) > mx ? fabs(v) : mx;
        }
        size_t o = ev->layer * r->H + h;
        if (in) {
            r->mean[o] = s / (double)r->len;
            r->absmean[o] = a / (double)r->len;
            r->absmax[o] = mx;
        } else {
            r->mlp[o] = s / (double)r->len;
        }
    }
    return CS_OK;
}

static void test_pstat_values(void **state)
{
    fixture *f = *state;
    cs_calib_pool pool, ref;
    cs_err err = {0};
    build(f, 6, 20, 3, &pool);
    build_ref(f, 20, &ref); /* items of different lengths: batches get padded */
    assert_true(ref.n > 100);
    const size_t L = f->m->cfg.n_layers, H = f->m->cfg.hidden;
    const unsigned all = CS_PSTAT_HOOKED | CS_PSTAT_BIT(CS_PSTAT_NLL);
    const cs_calib_pool *pools[2] = {&pool, &ref};
    for (size_t pi = 0; pi < 2; pi++) {
        const cs_calib_pool *p = pools[pi];
        size_t n = pi == 0 ? p->n : 7; /* the first 7 reference items */
        cs_calib_pool sub = *p;
        sub.n = n;
        cs_pstats s3, s1;
        assert_int_equal(cs_pstat_get(NULL, f->m, &sub, all, 3, NULL, NULL, &s3, &err), CS_OK);
        assert_int_equal(cs_pstat_get(NULL, f->m, &sub, CS_PSTAT_BIT(CS_PSTAT_IN_MEAN), 1, NULL,
                                      NULL, &s1, &err),
                         CS_OK);
        assert_null(s1.v[CS_PSTAT_MLP_MEAN]); /* without a cache only what was asked */
        assert_null(s1.nll);
        cs_assert_close(s3.v[CS_PSTAT_IN_MEAN], s1.v[CS_PSTAT_IN_MEAN], n * L * H, 1e-5, 1e-4);
        ref_hook r = {
                L, H, 0, calloc(L * H, 8), calloc(L * H, 8), calloc(L * H, 8), calloc(L * H, 8)};
        float *want[4];
        for (size_t k = 0; k < 4; k++) {
            want[k] = calloc(L * H, sizeof(float));
        }
        for (size_t i = 0; i < n; i++) {
            const cs_calib_item *it = &sub.items[i];
            cs_hooks hk = {.fn = ref_fn, .ctx = &r};
            r.len = it->n_tokens;
            assert_int_equal(cs_model_forward(f->m, it->tokens, 1, it->n_tokens, NULL, NULL, &hk,
                                              NULL, &err),
                             CS_OK);
            for (size_t j = 0; j < L * H; j++) {
                want[CS_PSTAT_MLP_MEAN][j] = (float)r.mlp[j];
                want[CS_PSTAT_IN_MEAN][j] = (float)r.mean[j];
                want[CS_PSTAT_IN_ABSMEAN][j] = (float)r.absmean[j];
                want[CS_PSTAT_IN_ABSMAX][j] = (float)r.absmax[j];
            }
            for (size_t k = 0; k < 4; k++) {
                cs_assert_close(s3.v[k] + i * L * H, want[k], L * H, 1e-5, 1e-4);
            }
            double lp[32], nll = 0;
            assert_int_equal(cs_model_logprobs(f->m, it->tokens, 1, it->n_tokens, NULL, lp, &err),
                             CS_OK);
            for (size_t t = 0; t + 1 < it->n_tokens; t++) {
                nll -= lp[t] / (double)(it->n_tokens - 1);
            }
            cs_assert_close_d(&s3.nll[i], &nll, 1, 1e-4, 1e-4);
        }
        for (size_t k = 0; k < 4; k++) {
            free(want[k]);
        }
        free(r.mlp);
        free(r.mean);
        free(r.absmean);
        free(r.absmax);
        cs_pstats_fini(&s3);
        cs_pstats_fini(&s1);
    }
    /* bad requests */
    cs_pstats s;
    assert_int_equal(cs_pstat_get(NULL, f->m, &pool, 0, 3, NULL, NULL, &s, &err), CS_EINVAL);
    pool.items[2].n_tokens = 0;
    assert_int_equal(cs_pstat_get(NULL, f->m, &pool, CS_PSTAT_HOOKED, 3, NULL, NULL, &s, &err),
                     CS_EINVAL);
    assert_non_null(strstr(err.msg, pool.items[2].id));
    pool.items[2].n_tokens = 20;
    cs_calib_pool_fini(&pool);
    cs_calib_pool_fini(&ref);
}

/* ---- the cache ---- */

static void corrupt(const char *path, long at, int truncate_to)
{
    if (truncate_to >= 0) {
        assert_int_equal(truncate(path, truncate_to), 0);
        return;
    }
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, at, at < 0 ? SEEK_END : SEEK_SET), 0);
    int c = fgetc(fp);
    assert_int_equal(fseek(fp, at, at < 0 ? SEEK_END : SEEK_SET), 0);
    fputc(c ^ 0x5a, fp);
    fclose(fp);
}

static void test_cache_store(void **state)
{
    fixture *f = *state;
    cs_err err = {0};
    cs_cache *c = NULL;
    char *dir = tmp_path(f, "store/sub");
    assert_int_equal(cs_cache_open(dir, &c, &err), CS_OK);
    const char *k1 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const char *k2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    void *d = NULL;
    size_t n = 0;
    assert_int_equal(cs_cache_get(c, k1, &d, &n, &err), CS_ENOENT);
    assert_false(cs_cache_has(c, k1));
    const char payload[] = "some statistics";
    assert_int_equal(cs_cache_put(c, k1, payload, sizeof payload, &err), CS_OK);
    assert_true(cs_cache_has(c, k1));
    assert_int_equal(cs_cache_get(c, k1, &d, &n, &err), CS_OK);
    assert_int_equal(n, sizeof payload);
    assert_memory_equal(d, payload, n);
    free(d);
    /* an empty payload is fine too */
    assert_int_equal(cs_cache_put(c, k2, "", 0, &err), CS_OK);
    assert_int_equal(cs_cache_get(c, k2, &d, &n, &err), CS_OK);
    assert_int_equal(n, 0);
    free(d);
    /* no temporary file is left next to the entries */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) = 2", dir);
    assert_int_equal(system(cmd), 0);
    /* a flipped payload byte, a truncated file, another key's file, a foreign file: rejected */
    char *p1 = cs_cache_path(c, k1), *p2 = cs_cache_path(c, k2);
    corrupt(p1, -1, -1);
    assert_int_equal(cs_cache_get(c, k1, &d, &n, &err), CS_ENOENT);
    assert_non_null(strstr(err.msg, "checksum"));
    assert_null(d);
    assert_int_equal(cs_cache_put(c, k1, payload, sizeof payload, &err), CS_OK);
    corrupt(p1, 0, 100);
    assert_int_equal(cs_cache_get(c, k1, &d, &n, &err), CS_ENOENT);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_int_equal(cs_cache_put(c, k1, payload, sizeof payload, &err), CS_OK);
    corrupt(p1, 0, 115);
    assert_int_equal(cs_cache_get(c, k1, &d, &n, &err), CS_ENOENT);
    assert_non_null(strstr(err.msg, "length"));
    assert_int_equal(rename(p2, p1), 0);
    assert_int_equal(cs_cache_get(c, k1, &d, &n, &err), CS_ENOENT);
    assert_non_null(strstr(err.msg, "another key"));
    FILE *fp = fopen(p1, "w");
    fputs("not a cache entry at all, but long enough to have a header of 112 bytes .............."
          "................................................",
          fp);
    fclose(fp);
    assert_int_equal(cs_cache_get(c, k1, &d, &n, &err), CS_ENOENT);
    assert_non_null(strstr(err.msg, "magic"));
    cs_cache_stats st;
    cs_cache_get_stats(c, &st);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.rejected, 5);
    assert_int_equal(st.misses, 6);
    assert_int_equal(st.writes, 4);
    assert_int_equal(cs_cache_get(c, "xyz", &d, &n, &err), CS_EINVAL);
    assert_int_equal(cs_cache_put(c, "../../etc/passwd", "x", 1, &err), CS_EINVAL);
    free(p1);
    free(p2);
    cs_cache_close(c);
    cs_cache_close(NULL);
    /* a folder that cannot be made names itself */
    char *file = tmp_path(f, "plainfile");
    fp = fopen(file, "w");
    fclose(fp);
    char *below = tmp_path(f, "plainfile/cache");
    assert_int_not_equal(cs_cache_open(below, &c, &err), CS_OK);
    assert_non_null(strstr(err.msg, "plainfile"));
    free(file);
    free(below);
    free(dir);
}

static void test_model_id(void **state)
{
    fixture *f = *state;
    cs_err err = {0};
    char a[CS_CACHE_KEY_LEN + 1], b[CS_CACHE_KEY_LEN + 1], c[CS_CACHE_KEY_LEN + 1];
    assert_int_equal(cs_cache_model_id(f->model_dir, a, &err), CS_OK);
    assert_int_equal(cs_cache_model_id(f->model_dir, b, &err), CS_OK);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 64);
    /* a copy with another modification time is another model */
    char *copy = tmp_path(f, "model-copy");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s' && touch -d '2001-02-03 04:05:06' '%s'/*",
             f->model_dir, copy, copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(cs_cache_model_id(copy, b, &err), CS_OK);
    assert_string_not_equal(a, b);
    /* same bytes and times, another config: another model */
    snprintf(cmd, sizeof cmd,
             "sed -i 's/1e-05/1e-06/' '%s/config.json' && touch -d '2001-02-03 "
             "04:05:06' '%s/config.json'",
             copy, copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(cs_cache_model_id(copy, c, &err), CS_OK);
    assert_string_not_equal(b, c);
    char *none = tmp_path(f, "no-model");
    assert_int_equal(cs_cache_model_id(none, c, &err), CS_ENOENT);
    assert_non_null(strstr(err.msg, "no-model"));
    free(none);
    free(copy);
}

/* A context on a fresh cache folder under the test folder. */
static cs_pstat_ctx open_ctx(const fixture *f, const char *name, char id[CS_CACHE_KEY_LEN + 1])
{
    cs_err err = {0};
    cs_pstat_ctx ctx = {0};
    char *dir = tmp_path(f, name);
    assert_int_equal(cs_cache_open(dir, &ctx.cache, &err), CS_OK);
    assert_int_equal(cs_cache_model_id(f->model_dir, id, &err), CS_OK);
    ctx.model_id = id;
    free(dir);
    return ctx;
}

static void test_pstat_cache(void **state)
{
    fixture *f = *state;
    cs_err err = {0};
    char id[CS_CACHE_KEY_LEN + 1];
    cs_pstat_ctx ctx = open_ctx(f, "cache-a", id);
    cs_calib_pool pool, other;
    build(f, 10, 16, 1, &pool);
    build(f, 10, 16, 2, &other);
    cs_pstats a, b;
    const size_t LH = f->m->cfg.n_layers * f->m->cfg.hidden;
    /* first: one pass computes all four hook statistics and writes them */
    assert_int_equal(cs_pstat_get(&ctx, f->m, &pool, CS_PSTAT_BIT(CS_PSTAT_MLP_MEAN), 4, NULL, NULL,
                                  &a, &err),
                     CS_OK);
    assert_int_equal(ctx.count.items, 10);
    assert_int_equal(ctx.count.passes, 3);
    assert_int_equal(ctx.count.tokens, 160);
    assert_int_equal(ctx.count.computed, 4);
    assert_int_equal(ctx.count.written, 4);
    assert_null(a.v[CS_PSTAT_IN_MEAN]); /* computed and cached, but not asked for */
    /* again, and the other hook statistics: no forward pass */
    assert_int_equal(cs_pstat_get(&ctx, f->m, &pool, CS_PSTAT_HOOKED, 4, NULL, NULL, &b, &err),
                     CS_OK);
    assert_int_equal(ctx.count.items, 10);
    assert_int_equal(ctx.count.hits, 4);
    assert_memory_equal(a.v[CS_PSTAT_MLP_MEAN], b.v[CS_PSTAT_MLP_MEAN], 10 * LH * sizeof(float));
    cs_pstats_fini(&b);
    /* nll is not a hook statistic: a pass for it alone */
    assert_int_equal(
            cs_pstat_get(&ctx, f->m, &pool, CS_PSTAT_BIT(CS_PSTAT_NLL), 4, NULL, NULL, &b, &err),
            CS_OK);
    assert_int_equal(ctx.count.items, 20);
    assert_int_equal(ctx.count.computed, 5);
    cs_pstats_fini(&b);
    /* another pool is another key */
    assert_int_equal(cs_pstat_get(&ctx, f->m, &other, CS_PSTAT_BIT(CS_PSTAT_MLP_MEAN), 4, NULL,
                                  NULL, &b, &err),
                     CS_OK);
    assert_int_equal(ctx.count.items, 30);
    cs_pstats_fini(&b);
    /* a corrupt entry is ignored with a warning, recomputed (same values) and rewritten */
    char key[CS_CACHE_KEY_LEN + 1];
    assert_int_equal(cs_pstat_key(id, &pool, CS_PSTAT_MLP_MEAN, key, &err), CS_OK);
    char *path = cs_cache_path(ctx.cache, key);
    corrupt(path, 200, -1);
    assert_int_equal(cs_pstat_get(&ctx, f->m, &pool, CS_PSTAT_BIT(CS_PSTAT_MLP_MEAN), 4, NULL, NULL,
                                  &b, &err),
                     CS_OK);
    assert_int_equal(ctx.count.items, 40);
    cs_assert_close(b.v[CS_PSTAT_MLP_MEAN], a.v[CS_PSTAT_MLP_MEAN], 10 * LH, 1e-6, 1e-5);
    cs_pstats_fini(&b);
    corrupt(path, 0, 150); /* truncated */
    assert_int_equal(cs_pstat_get(&ctx, f->m, &pool, CS_PSTAT_BIT(CS_PSTAT_MLP_MEAN), 4, NULL, NULL,
                                  &b, &err),
                     CS_OK);
    assert_int_equal(ctx.count.items, 50);
    cs_pstats_fini(&b);
    assert_int_equal(cs_pstat_get(&ctx, f->m, &pool, CS_PSTAT_BIT(CS_PSTAT_MLP_MEAN), 4, NULL, NULL,
                                  &b, &err),
                     CS_OK);
    assert_int_equal(ctx.count.items, 50); /* rewritten: a hit again */
    cs_pstats_fini(&b);
    /* the key depends on the model, the pool's tokens and seq_len, and the statistic */
    char k2[CS_CACHE_KEY_LEN + 1];
    assert_int_equal(cs_pstat_key(id, &pool, CS_PSTAT_IN_MEAN, k2, &err), CS_OK);
    assert_string_not_equal(key, k2);
    assert_int_equal(cs_pstat_key("another-model", &pool, CS_PSTAT_MLP_MEAN, k2, &err), CS_OK);
    assert_string_not_equal(key, k2);
    pool.items[9].tokens[3] ^= 1;
    assert_int_equal(cs_pstat_key(id, &pool, CS_PSTAT_MLP_MEAN, k2, &err), CS_OK);
    assert_string_not_equal(key, k2);
    pool.items[9].tokens[3] ^= 1;
    pool.seq_len++;
    assert_int_equal(cs_pstat_key(id, &pool, CS_PSTAT_MLP_MEAN, k2, &err), CS_OK);
    assert_string_not_equal(key, k2);
    pool.seq_len--;
    free(path);
    cs_pstats_fini(&a);
    cs_cache_close(ctx.cache);
    cs_calib_pool_fini(&pool);
    cs_calib_pool_fini(&other);
}

/* ---- selectors on the testbed ---- */

static void run_sel(const fixture *f, const cs_select_params *p, const cs_calib_pool *pool,
                    const cs_select_env *env, cs_calib_selection *s)
{
    cs_err err = {0};
    cs_rc rc = cs_select_run_env(p, pool, f->m, f->tok, env, NULL, NULL, s, &err);
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    assert_int_equal(s->n, p->n);
    assert_string_equal(cJSON_GetObjectItem(s->diag, "selector")->valuestring,
                        cs_select_name(p->kind));
    assert_non_null(cJSON_GetObjectItem(s->diag, "forward_s"));
    assert_non_null(cJSON_GetObjectItem(s->diag, "select_s"));
    assert_non_null(cJSON_GetObjectItem(s->diag, "stats"));
    for (size_t i = 0; i < s->n; i++) {
        assert_true(s->index[i] < pool->n);
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(s->index[i], s->index[j]);
        }
    }
}

static double stat_num(const cs_calib_selection *s, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(s->diag, "stats"), key);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static bool same_idx(const cs_calib_selection *a, const cs_calib_selection *b)
{
    return a->n == b->n && memcmp(a->index, b->index, a->n * sizeof(size_t)) == 0;
}

/* Same seed, same choice; some other seed (of up to three), another one. */
static void check_seeds(const fixture *f, cs_select_params *p, const cs_calib_pool *pool,
                        const cs_select_env *env)
{
    cs_calib_selection a, b, c;
    run_sel(f, p, pool, env, &a);
    run_sel(f, p, pool, env, &b);
    assert_true(same_idx(&a, &b));
    bool differs = false;
    uint64_t s0 = p->seed;
    for (uint64_t d = 1; d <= 3 && !differs; d++) {
        p->seed = s0 + d;
        run_sel(f, p, pool, env, &c);
        differs = !same_idx(&a, &c);
        cs_calib_selection_fini(&c);
    }
    p->seed = s0;
    assert_true(differs);
    cs_calib_selection_fini(&a);
    cs_calib_selection_fini(&b);
}

static void test_cola(void **state)
{
    fixture *f = *state;
    cs_err err = {0};
    cs_calib_pool pool;
    build(f, 40, 24, 0, &pool);
    cs_select_params p;
    cs_select_params_default(&p, CS_SEL_COLA);
    p.n = 8;
    p.proj_dim = 16;
    check_seeds(f, &p, &pool, NULL);
    /* the pipeline by hand: statistics, features, k-means, nearest members */
    cs_calib_selection s;
    run_sel(f, &p, &pool, NULL, &s);
    assert_int_equal(stat_num(&s, "items_forwarded"), 40);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(s.diag, "stats"), "cache")));
    cs_pstats st;
    assert_int_equal(cs_pstat_get(NULL, f->m, &pool, CS_PSTAT_BIT(CS_PSTAT_MLP_MEAN), 8, NULL, NULL,
                                  &st, &err),
                     CS_OK);
    float *z = calloc(40 * 16, sizeof(float));
    assert_int_equal(cs_cola_features(st.v[CS_PSTAT_MLP_MEAN], 40, st.n_layers, st.hidden, 16,
                                      p.seed, z, &err),
                     CS_OK);
    cs_km_params kp = {.k = 8, .n_init = 10, .max_iter = 300, .tol = 1e-4, .seed = p.seed};
    cs_km_result km;
    assert_int_equal(cs_km_fit(z, 40, 16, &kp, &km, &err), CS_OK);
    size_t mem[8];
    double md[8];
    cs_km_nearest_members(z, &km, mem, md);
    assert_memory_equal(s.index, mem, sizeof mem);
    const cJSON *sizes = cJSON_GetObjectItem(s.diag, "cluster_sizes");
    size_t total = 0;
    for (size_t c = 0; c < 8; c++) {
        assert_int_equal(cJSON_GetArrayItem(sizes, (int)c)->valueint, km.size[c]);
        total += km.size[c];
    }
    assert_int_equal(total, 40);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(s.diag, "restart_inertia")), 10);
    assert_float_equal(cJSON_GetObjectItem(s.diag, "inertia")->valuedouble, km.inertia, 1e-9);
    cs_km_result_fini(&km);
    free(z);
    cs_pstats_fini(&st);
    cs_calib_selection_fini(&s);
    /* n > pool, k-means parameters out of range */
    p.n = 41;
    assert_int_equal(cs_select_run(&p, &pool, f->m, f->tok, NULL, NULL, &s, &err), CS_EINVAL);
    assert_int_equal(cs_select_params_parse_str("{\"name\":\"cola\",\"proj_dim\":0}", &p, &err),
                     CS_ESCHEMA);
    assert_non_null(strstr(err.msg, "selector.proj_dim"));
    cs_calib_pool_fini(&pool);
}

/* COLA's features: a naive twin, and one pick per planted cluster. */
static void test_cola_constructed(void **state)
{
    (void)state;
    cs_err err = {0};
    const size_t n = 60, L = 3, H = 12, P = 8, G = 5;
    float *v = calloc(n * L * H, sizeof(float)), *z = calloc(n * P, sizeof(float));
    cs_rng g;
    cs_rng_seed(&g, 9);
    for (size_t i = 0; i < n; i++) {
        for (size_t l = 0; l < L; l++) {
            for (size_t h = 0; h < H; h++) {
                /* group i % G points along channel (i % G + l) of every layer; the scale differs
                 * per item (normalization removes it) */
                double base = h == (i % G + l) % H ? 5.0 * (1.0 + (double)(i % 7)) : 0.0;
                v[(i * L + l) * H + h] = (float)(base + 0.05 * cs_rng_normal(&g));
            }
        }
    }
    assert_int_equal(cs_cola_features(v, n, L, H, P, 42, z, &err), CS_OK);
    /* twin: normalize per layer, concatenate, R from the same stream, project */
    cs_rng r;
    cs_rng_seed(&r, 42 ^ CS_COLA_R_SALT);
    double *R = calloc(L * H * P, sizeof(double));
    for (size_t j = 0; j < L * H * P; j++) {
        R[j] = cs_rng_normal(&r) / sqrt((double)P);
    }
    float *zt = calloc(n * P, sizeof(float));
    for (size_t i = 0; i < n; i++) {
        for (size_t q = 0; q < P; q++) {
            double acc = 0;
            for (size_t l = 0; l < L; l++) {
                double ss = 0;
                for (size_t h = 0; h < H; h++) {
                    ss += (double)v[(i * L + l) * H + h] * v[(i * L + l) * H + h];
                }
                for (size_t h = 0; h < H; h++) {
                    acc += v[(i * L + l) * H + h] / (sqrt(ss) + 1e-8) * R[(l * H + h) * P + q];
                }
            }
            zt[i * P + q] = (float)acc;
        }
    }
    cs_assert_close(z, zt, n * P, 1e-5, 1e-4);
    /* k-means with k = G on z: one pick per group, the member nearest its group's mean */
    cs_km_params kp = {.k = G, .n_init = 10, .max_iter = 300, .tol = 1e-4, .seed = 1};
    cs_km_result km;
    assert_int_equal(cs_km_fit(z, n, P, &kp, &km, &err), CS_OK);
    size_t mem[5];
    double md[5];
    cs_km_nearest_members(z, &km, mem, md);
    bool seen[5] = {false};
    for (size_t c = 0; c < G; c++) {
        size_t grp = mem[c] % G;
        assert_false(seen[grp]);
        seen[grp] = true;
        double mean[8] = {0}, best = INFINITY;
        size_t want = 0;
        for (size_t i = grp; i < n; i += G) {
            for (size_t q = 0; q < P; q++) {
                mean[q] += z[i * P + q] / (double)(n / G);
            }
        }
        for (size_t i = grp; i < n; i += G) {
            double d = 0;
            for (size_t q = 0; q < P; q++) {
                d += (z[i * P + q] - mean[q]) * (z[i * P + q] - mean[q]);
            }
            if (d < best) {
                best = d;
                want = i;
            }
        }
        assert_int_equal(mem[c], want);
        assert_int_equal(km.size[c], n / G);
    }
    assert_int_equal(cs_cola_features(v, n, L, H, 0, 42, z, &err), CS_EINVAL);
    cs_km_result_fini(&km);
    free(v);
    free(z);
    free(zt);
    free(R);
}

/* ACDM distances against a naive twin; quota and minimax against brute force. */
static void test_acdm_constructed(void **state)
{
    (void)state;
    cs_err err = {0};
    /* items on the unit circle of channels 0/1 in both layers; task 0 points at angle 0, task 1 at
     * 90 degrees: the items nearest each task are the ones with the smallest angle to it */
    const size_t n = 10, L = 2, H = 3, T = 2;
    const double ang[10] = {5, 80, 40, 10, 89, 30, 60, 2, 70, 45}; /* degrees */
    float s[60], mu[12] = {0};
    for (size_t i = 0; i < n; i++) {
        for (size_t l = 0; l < L; l++) {
            double a = ang[i] * 3.14159265358979 / 180.0;
            double r = 1.0 + (double)i; /* cosine ignores the scale */
            s[(i * L + l) * H + 0] = (float)(r * cos(a));
            s[(i * L + l) * H + 1] = (float)(r * sin(a));
            s[(i * L + l) * H + 2] = 0.0f;
        }
    }
    for (size_t l = 0; l < L; l++) {
        mu[(0 * L + l) * H + 0] = 2.0f;
        mu[(1 * L + l) * H + 1] = 3.0f;
    }
    double d[20];
    cs_acdm_distances(s, n, mu, T, L, H, d);
    for (size_t i = 0; i < n; i++) {
        double a = ang[i] * 3.14159265358979 / 180.0;
        double want[2] = {1.0 - cos(a), 1.0 - sin(a)};
        cs_assert_close_d(d + i * T, want, 2, 1e-6, 1e-6);
    }
    size_t out[10], task[10];
    double score[10];
    /* quota, n = 5: task 0 gets 3 (angles 2, 5, 10 = items 7, 0, 3), task 1 gets 2 (89, 80) */
    assert_int_equal(cs_acdm_choose(d, n, T, 5, CS_ACDM_QUOTA, out, task, score, &err), CS_OK);
    const size_t want_out[5] = {7, 4, 0, 1, 3}, want_task[5] = {0, 1, 0, 1, 0};
    assert_memory_equal(out, want_out, sizeof want_out);
    assert_memory_equal(task, want_task, sizeof want_task);
    assert_float_equal(score[0], d[7 * T + 0], 1e-12);
    /* random matrices: quota against a brute-force replay of the rule, minimax against sorting */
    cs_rng g;
    cs_rng_seed(&g, 3);
    for (size_t trial = 0; trial < 20; trial++) {
        const size_t nn = 30, TT = 1 + trial % 4, k = 1 + trial % 17;
        double dd[120];
        for (size_t i = 0; i < nn * TT; i++) {
            dd[i] = cs_rng_uniform(&g);
        }
        size_t o[30], tk[30], cnt[4] = {0};
        assert_int_equal(cs_acdm_choose(dd, nn, TT, k, CS_ACDM_QUOTA, o, tk, NULL, &err), CS_OK);
        bool taken[30] = {false};
        size_t left[4], step = 0;
        for (size_t t = 0; t < TT; t++) {
            left[t] = k / TT + (t < k % TT);
        }
        while (step < k) {
            for (size_t t = 0; t < TT && step < k; t++) {
                if (!left[t]) {
                    continue;
                }
                size_t best = 0;
                double bd = INFINITY;
                for (size_t i = 0; i < nn; i++) {
                    if (!taken[i] && dd[i * TT + t] < bd) {
                        bd = dd[i * TT + t];
                        best = i;
                    }
                }
                taken[best] = true;
                left[t]--;
                assert_int_equal(o[step], best);
                assert_int_equal(tk[step], t);
                step++;
            }
        }
        for (size_t q = 0; q < k; q++) {
            cnt[tk[q]]++;
        }
        for (size_t t = 0; t < TT; t++) {
            assert_int_equal(cnt[t], k / TT + (t < k % TT)); /* the quotas hold */
        }
        /* minimax: the k smallest max_t z_t */
        double z[30], mean[4] = {0}, sd[4] = {0};
        for (size_t t = 0; t < TT; t++) {
            for (size_t i = 0; i < nn; i++) {
                mean[t] += dd[i * TT + t] / (double)nn;
            }
            for (size_t i = 0; i < nn; i++) {
                sd[t] += (dd[i * TT + t] - mean[t]) * (dd[i * TT + t] - mean[t]) / (double)nn;
            }
            sd[t] = sqrt(sd[t]);
        }
        for (size_t i = 0; i < nn; i++) {
            z[i] = -INFINITY;
            for (size_t t = 0; t < TT; t++) {
                double v = (dd[i * TT + t] - mean[t]) / sd[t];
                z[i] = v > z[i] ? v : z[i];
            }
        }
        double sc[30];
        assert_int_equal(cs_acdm_choose(dd, nn, TT, k, CS_ACDM_MINIMAX, o, tk, sc, &err), CS_OK);
        for (size_t q = 0; q < k; q++) {
            assert_float_equal(sc[q], z[o[q]], 1e-9);
            if (q > 0) {
                assert_true(sc[q - 1] <= sc[q]);
            }
            for (size_t i = 0; i < nn; i++) {
                bool chosen = false;
                for (size_t r = 0; r < k; r++) {
                    chosen = chosen || o[r] == i;
                }
                if (!chosen) {
                    assert_true(z[i] >= sc[q] - 1e-12);
                }
            }
            size_t near = 0;
            for (size_t t = 1; t < TT; t++) {
                near = dd[o[q] * TT + t] < dd[o[q] * TT + near] ? t : near;
            }
            assert_int_equal(tk[q], near);
        }
    }
    assert_int_equal(cs_acdm_choose(d, n, T, 11, CS_ACDM_QUOTA, out, task, NULL, &err), CS_EINVAL);
    assert_int_equal(cs_acdm_choose(d, n, 0, 2, CS_ACDM_QUOTA, out, task, NULL, &err), CS_EINVAL);
}

static void test_acdm(void **state)
{
    fixture *f = *state;
    cs_err err = {0};
    cs_calib_pool pool, ref, pool2;
    build(f, 40, 24, 0, &pool);
    build(f, 40, 24, 5, &pool2);
    build_ref(f, 24, &ref);
    assert_int_equal(ref.n_sources, 2);
    assert_string_equal(ref.sources[1], "facts");
    char id[CS_CACHE_KEY_LEN + 1];
    cs_pstat_ctx ctx = open_ctx(f, "cache-acdm", id); /* the statistics once, not per run */
    cs_select_env env = {.reference = &ref, .stats = &ctx};
    cs_select_params p;
    cs_select_params_default(&p, CS_SEL_ACDM);
    p.n = 9;
    p.n_ref = 16;
    const cs_acdm_stat stats[2] = {CS_ACDM_MEAN, CS_ACDM_ABSMEAN};
    for (size_t si = 0; si < 2; si++) {
        p.acdm_stat = stats[si];
        p.acdm_mode = CS_ACDM_QUOTA;
        cs_calib_selection a, b, c;
        run_sel(f, &p, &pool, &env, &a);
        run_sel(f, &p, &pool, &env, &b);
        assert_true(same_idx(&a, &b));
        /* quotas: 9 over 2 tasks = 5 + 4 */
        const cJSON *per = cJSON_GetObjectItem(a.diag, "per_task");
        assert_int_equal(cJSON_GetArrayItem(per, 0)->valueint, 5);
        assert_int_equal(cJSON_GetArrayItem(per, 1)->valueint, 4);
        /* the distances of the diagnostics, recomputed from the reference ids it used */
        cs_pstat_kind k = si ? CS_PSTAT_IN_ABSMEAN : CS_PSTAT_IN_MEAN;
        cs_pstats sp, sr;
        assert_int_equal(cs_pstat_get(&ctx, f->m, &pool, CS_PSTAT_BIT(k), 8, NULL, NULL, &sp, &err),
                         CS_OK);
        assert_int_equal(cs_pstat_get(&ctx, f->m, &ref, CS_PSTAT_BIT(k), 8, NULL, NULL, &sr, &err),
                         CS_OK);
        const size_t LH = sp.n_layers * sp.hidden;
        float *mu = calloc(2 * LH, sizeof(float));
        const cJSON *refs = cJSON_GetObjectItem(a.diag, "reference");
        for (size_t t = 0; t < 2; t++) {
            const cJSON *used = cJSON_GetObjectItem(cJSON_GetArrayItem(refs, (int)t), "used");
            assert_int_equal(cJSON_GetArraySize(used), 16);
            const cJSON *u;
            cJSON_ArrayForEach(u, used)
            {
                size_t r = 0;
                while (r < ref.n && strcmp(ref.items[r].id, u->valuestring) != 0) {
                    r++;
                }
                assert_true(r < ref.n);
                assert_int_equal(ref.items[r].source, t);
                for (size_t j = 0; j < LH; j++) {
                    mu[t * LH + j] += sr.v[k][r * LH + j] / 16.0f;
                }
            }
        }
        double *d = calloc(pool.n * 2, sizeof(double));
        cs_acdm_distances(sp.v[k], pool.n, mu, 2, sp.n_layers, sp.hidden, d);
        const cJSON *dt = cJSON_GetObjectItem(a.diag, "d");
        for (size_t q = 0; q < a.n; q++) {
            const cJSON *row = cJSON_GetArrayItem(dt, (int)q);
            for (size_t t = 0; t < 2; t++) {
                assert_float_equal(cJSON_GetArrayItem(row, (int)t)->valuedouble,
                                   d[a.index[q] * 2 + t], 1e-4);
            }
        }
        /* each task's picks are at least as near to it as any item no task took */
        const cJSON *tof = cJSON_GetObjectItem(a.diag, "task_of");
        for (size_t q = 0; q < a.n; q++) {
            size_t t = (size_t)cJSON_GetArrayItem(tof, (int)q)->valueint;
            for (size_t i = 0; i < pool.n; i++) {
                bool chosen = false;
                for (size_t r = 0; r < a.n; r++) {
                    chosen = chosen || a.index[r] == i;
                }
                if (!chosen) {
                    assert_true(d[a.index[q] * 2 + t] <= d[i * 2 + t] + 1e-6);
                }
            }
        }
        /* another seed draws another reference sample */
        p.seed = 1;
        run_sel(f, &p, &pool, &env, &c);
        const cJSON *u0 = cJSON_GetObjectItem(cJSON_GetArrayItem(refs, 0), "used");
        const cJSON *u1 = cJSON_GetObjectItem(
                cJSON_GetArrayItem(cJSON_GetObjectItem(c.diag, "reference"), 0), "used");
        char *t0 = cJSON_PrintUnformatted(u0), *t1 = cJSON_PrintUnformatted(u1);
        assert_string_not_equal(t0, t1);
        free(t0);
        free(t1);
        cs_calib_selection_fini(&c);
        p.seed = 0;
        /* another pool (seed), another choice */
        run_sel(f, &p, &pool2, &env, &c);
        bool differ = false;
        for (size_t q = 0; q < a.n; q++) {
            differ = differ || strcmp(pool.items[a.index[q]].id, pool2.items[c.index[q]].id) != 0;
        }
        assert_true(differ);
        cs_calib_selection_fini(&c);
        /* minimax */
        p.acdm_mode = CS_ACDM_MINIMAX;
        run_sel(f, &p, &pool, &env, &c);
        const cJSON *sc = cJSON_GetObjectItem(c.diag, "score");
        for (size_t q = 1; q < c.n; q++) {
            assert_true(cJSON_GetArrayItem(sc, (int)q - 1)->valuedouble <=
                        cJSON_GetArrayItem(sc, (int)q)->valuedouble);
        }
        cs_calib_selection_fini(&c);
        free(mu);
        free(d);
        cs_pstats_fini(&sp);
        cs_pstats_fini(&sr);
        cs_calib_selection_fini(&a);
        cs_calib_selection_fini(&b);
    }
    /* refusals: no reference; a reference item that is a pool item */
    cs_calib_selection s;
    p.acdm_mode = CS_ACDM_QUOTA;
    assert_int_equal(cs_select_run(&p, &pool, f->m, f->tok, NULL, NULL, &s, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "reference"));
    cs_select_env same = {.reference = &pool};
    assert_int_equal(cs_select_run_env(&p, &pool, f->m, f->tok, &same, NULL, NULL, &s, &err),
                     CS_EINVAL);
    assert_non_null(strstr(err.msg, "disjoint from the pool"));
    assert_int_equal(cs_select_params_parse_str("{\"name\":\"acdm\",\"mode\":\"low\"}", &p, &err),
                     CS_ESCHEMA);
    assert_non_null(
            strstr(err.msg, "selector.mode: unknown value \"low\" (known: quota, minimax)"));
    cs_cache_close(ctx.cache);
    cs_calib_pool_fini(&pool);
    cs_calib_pool_fini(&pool2);
    cs_calib_pool_fini(&ref);
}

/* CoverCal's greedy, the header's rule written out plainly. */
static void naive_cover(const float *a, size_t n, size_t L, size_t H, double of, double cf,
                        uint64_t seed, size_t k, size_t *out, double *gain, size_t *resets)
{
    const size_t C = L * H;
    double *M = calloc(C, sizeof(double)), *w = calloc(C, sizeof(double));
    bool *cov = calloc(C, 1), *taken = calloc(n, 1);
    size_t *ord = calloc(n, sizeof(size_t)), *prio = calloc(n, sizeof(size_t));
    for (size_t c = 0; c < C; c++) {
        for (size_t i = 0; i < n; i++) {
            M[c] = a[i * C + c] > M[c] ? a[i * C + c] : M[c];
        }
    }
    for (size_t l = 0; l < L; l++) {
        double *srt = calloc(H, sizeof(double));
        memcpy(srt, M + l * H, H * sizeof(double));
        for (size_t x = 0; x < H; x++) {
            for (size_t y = x + 1; y < H; y++) {
                if (srt[y] < srt[x]) {
                    double t = srt[x];
                    srt[x] = srt[y];
                    srt[y] = t;
                }
            }
        }
        double med = H % 2 ? srt[H / 2] : (srt[H / 2 - 1] + srt[H / 2]) / 2;
        for (size_t h = 0; h < H; h++) {
            if (med > 0 && M[l * H + h] > of * med) {
                w[l * H + h] = M[l * H + h] / med;
            }
        }
        free(srt);
    }
    cs_rng r;
    cs_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        ord[i] = i;
    }
    cs_rng_shuffle(&r, ord, n);
    for (size_t i = 0; i < n; i++) {
        prio[ord[i]] = i;
    }
    *resets = 0;
    for (size_t s = 0; s < k; s++) {
        size_t best = 0;
        double bg = -1;
        for (int again = 0; again < 2; again++) {
            bg = -1;
            for (size_t i = 0; i < n; i++) {
                if (taken[i]) {
                    continue;
                }
                double g = 0;
                for (size_t c = 0; c < C; c++) {
                    if (w[c] > 0 && !cov[c] && (double)a[i * C + c] >= cf * M[c]) {
                        g += w[c];
                    }
                }
                if (g > bg || (g == bg && prio[i] < prio[best])) {
                    bg = g;
                    best = i;
                }
            }
            bool any = false;
            for (size_t c = 0; c < C; c++) {
                any = any || cov[c];
            }
            if (bg > 0 || !any) {
                break;
            }
            memset(cov, 0, C);
            (*resets)++;
        }
        taken[best] = true;
        out[s] = best;
        gain[s] = bg;
        for (size_t c = 0; c < C; c++) {
            if (w[c] > 0 && (double)a[best * C + c] >= cf * M[c]) {
                cov[c] = true;
            }
        }
    }
    free(M);
    free(w);
    free(cov);
    free(taken);
    free(ord);
    free(prio);
}

static void test_covercal_constructed(void **state)
{
    (void)state;
    cs_err err = {0};
    /* one layer of 10 channels, all about 1, except outliers: channel 0 (weight 10) in item 2,
     * channel 1 (20) in items 2 and 4, channel 2 (8) in item 5; items 0, 1, 3 cover nothing */
    float a[6 * 10];
    for (size_t i = 0; i < 60; i++) {
        a[i] = 1.0f;
    }
    a[2 * 10 + 0] = 10.0f;
    a[2 * 10 + 1] = 20.0f;
    a[4 * 10 + 1] = 20.0f;
    a[5 * 10 + 2] = 8.0f;
    size_t out[6], resets, nout[1];
    double gain[6];
    assert_int_equal(
            cs_covercal_greedy(a, 6, 1, 10, 6.0, 0.5, 0, 4, out, gain, &resets, nout, &err), CS_OK);
    assert_int_equal(nout[0], 3); /* channel 2 at 8 > 6 x median 1 */
    assert_int_equal(out[0], 2);  /* 30 */
    assert_int_equal(out[1], 5);  /* 8 */
    assert_int_equal(out[2], 4);  /* everything covered: reset; then item 4 covers 20 */
    /* 4th: nothing adds weight, so a second reset; still nothing: the seeded order decides */
    assert_int_equal(resets, 2);
    assert_float_equal(gain[0], 30.0, 1e-9);
    assert_float_equal(gain[1], 8.0, 1e-9);
    assert_float_equal(gain[2], 20.0, 1e-9);
    assert_float_equal(gain[3], 0.0, 0.0);
    assert_true(out[3] == 0 || out[3] == 1 || out[3] == 3);
    /* against the twin on random data with planted outliers, several parameter settings */
    cs_rng g;
    cs_rng_seed(&g, 11);
    for (size_t trial = 0; trial < 12; trial++) {
        const size_t n = 40, L = 3, H = 16;
        float *x = calloc(n * L * H, sizeof(float));
        for (size_t i = 0; i < n * L * H; i++) {
            x[i] = (float)(0.5 + cs_rng_uniform(&g));
            if (cs_rng_uniform(&g) < 0.02) {
                x[i] *= (float)(5.0 + 20.0 * cs_rng_uniform(&g)); /* outlier activations */
            }
        }
        double of = 3.0 + (double)(trial % 3) * 2.0, cf = 0.3 + 0.2 * (double)(trial % 4);
        size_t k = 5 + trial * 3;
        size_t o1[41], o2[41], r1, r2;
        double g1[41], g2[41];
        assert_int_equal(cs_covercal_greedy(x, n, L, H, of, cf, trial, k, o1, g1, &r1, NULL, &err),
                         CS_OK);
        naive_cover(x, n, L, H, of, cf, trial, k, o2, g2, &r2);
        assert_memory_equal(o1, o2, k * sizeof(size_t));
        cs_assert_close_d(g1, g2, k, 1e-9, 1e-9);
        assert_int_equal(r1, r2);
        free(x);
    }
    assert_int_equal(
            cs_covercal_greedy(a, 6, 1, 10, 6.0, 1.5, 0, 4, out, gain, &resets, nout, &err),
            CS_EINVAL);
    assert_int_equal(
            cs_covercal_greedy(a, 6, 1, 10, 6.0, 0.5, 0, 7, out, gain, &resets, nout, &err),
            CS_EINVAL);
}

static void test_covercal(void **state)
{
    fixture *f = *state;
    cs_calib_pool pool, pool2;
    build(f, 40, 24, 0, &pool);
    build(f, 40, 24, 7, &pool2);
    cs_select_params p;
    cs_select_params_default(&p, CS_SEL_COVERCAL);
    p.n = 12;
    p.outlier_factor = 3.0;
    cs_calib_selection a, b;
    run_sel(f, &p, &pool, NULL, &a);
    run_sel(f, &p, &pool, NULL, &b);
    assert_true(same_idx(&a, &b));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(a.diag, "outlier_channels")),
                     (int)f->m->cfg.n_layers);
    /* gains never grow between resets */
    cs_calib_selection_fini(&b);
    run_sel(f, &p, &pool2, NULL, &b);
    bool differ = false;
    for (size_t q = 0; q < a.n; q++) {
        differ = differ || strcmp(pool.items[a.index[q]].id, pool2.items[b.index[q]].id) != 0;
    }
    assert_true(differ);
    cs_calib_selection_fini(&a);
    cs_calib_selection_fini(&b);
    cs_calib_pool_fini(&pool);
    cs_calib_pool_fini(&pool2);
}

/* One pool, a cache: COLA computes the hook statistics once; ACDM and CoverCal then forward only
 * what the cache lacks (the reference items), and a second round forwards nothing. */
static void test_shared_cache(void **state)
{
    fixture *f = *state;
    char id[CS_CACHE_KEY_LEN + 1];
    cs_pstat_ctx ctx = open_ctx(f, "cache-b", id);
    cs_calib_pool pool, ref;
    build(f, 30, 16, 4, &pool);
    build_ref(f, 16, &ref);
    cs_select_env env = {.reference = &ref, .stats = &ctx};
    cs_select_params pc, pa, pv, pp;
    cs_select_params_default(&pc, CS_SEL_COLA);
    cs_select_params_default(&pa, CS_SEL_ACDM);
    cs_select_params_default(&pv, CS_SEL_COVERCAL);
    cs_select_params_default(&pp, CS_SEL_PPL_RANK);
    pc.n = pa.n = pv.n = pp.n = 6;
    pc.proj_dim = 8;
    cs_calib_selection s[2][4];
    for (size_t round = 0; round < 2; round++) {
        run_sel(f, &pc, &pool, &env, &s[round][0]);
        run_sel(f, &pa, &pool, &env, &s[round][1]);
        run_sel(f, &pv, &pool, &env, &s[round][2]);
        run_sel(f, &pp, &pool, &env, &s[round][3]);
    }
    assert_int_equal(stat_num(&s[0][0], "items_forwarded"), 30);
    assert_int_equal(stat_num(&s[0][1], "items_forwarded"), ref.n); /* the pool's are cached */
    assert_int_equal(stat_num(&s[0][1], "cache_hits"), 1);
    assert_int_equal(stat_num(&s[0][2], "items_forwarded"), 0);
    assert_int_equal(stat_num(&s[0][3], "items_forwarded"), 30); /* nll needs the output layer */
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(stat_num(&s[1][k], "items_forwarded"), 0);
        assert_int_equal(stat_num(&s[1][k], "forward_passes"), 0);
        assert_true(same_idx(&s[0][k], &s[1][k])); /* the cache gives the same choice */
        const cJSON *cdir =
                cJSON_GetObjectItem(cJSON_GetObjectItem(s[1][k].diag, "stats"), "cache");
        assert_true(cJSON_IsString(cdir));
        cs_calib_selection_fini(&s[0][k]);
        cs_calib_selection_fini(&s[1][k]);
    }
    cs_cache_close(ctx.cache);
    cs_calib_pool_fini(&pool);
    cs_calib_pool_fini(&ref);
}

static void test_ref_pool(void **state)
{
    fixture *f = *state;
    cs_err err = {0};
    cs_calib_pool a, b;
    char *h[2];
    /* the train split as task items and its .ref.jsonl rendering give the same token sequences */
    cs_calib_source tr = task("arith_mc.train", "arith", &h[0]);
    cs_calib_source rf = task("arith_mc.ref", "arith", &h[1]);
    assert_int_equal(cs_calib_ref_pool_build(&tr, 1, f->tok, 64, true, &a, &err), CS_OK);
    assert_int_equal(cs_calib_ref_pool_build(&rf, 1, f->tok, 64, true, &b, &err), CS_OK);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        assert_int_equal(a.items[i].n_tokens, b.items[i].n_tokens);
        assert_memory_equal(a.items[i].tokens, b.items[i].tokens, a.items[i].n_tokens * 4);
        assert_int_equal(a.items[i].tokens[0], cs_tok_bos(f->tok));
        assert_true(a.items[i].n_tokens <= 64);
    }
    assert_string_equal(a.items[0].id, "arith:arith_mc-train-0000");
    cs_calib_pool_fini(&a);
    cs_calib_pool_fini(&b);
    free(h[1]);
    /* the reference must be disjoint from the evaluation split and from the pool's sources */
    char *ev = src_path("sweeps/testbed/data/tasks/arith_mc.eval.jsonl");
    const char *evs[1] = {ev};
    assert_int_equal(cs_calib_check_disjoint(&tr, 1, evs, 1, "ACDM reference", "evaluation", &err),
                     CS_OK);
    cs_calib_source bad = task("arith_mc.eval", "arith", &h[1]);
    assert_int_equal(cs_calib_check_disjoint(&bad, 1, evs, 1, "ACDM reference", "evaluation", &err),
                     CS_EINVAL);
    assert_non_null(strstr(err.msg, "ACDM reference overlaps evaluation (same id)"));
    free(ev);
    free(h[0]);
    free(h[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_pstat_values),
            cmocka_unit_test(test_cache_store),
            cmocka_unit_test(test_model_id),
            cmocka_unit_test(test_pstat_cache),
            cmocka_unit_test(test_cola),
            cmocka_unit_test(test_cola_constructed),
            cmocka_unit_test(test_acdm_constructed),
            cmocka_unit_test(test_acdm),
            cmocka_unit_test(test_covercal_constructed),
            cmocka_unit_test(test_covercal),
            cmocka_unit_test(test_shared_cache),
            cmocka_unit_test(test_ref_pool),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
