/* select_bench.c - time of each calibration-data selector, split into forward passes (or
 * generation, or embedding means) and the selection itself, as the selectors report them in their
 * diagnostics (forward_s, select_s).
 *
 * Usage: select_bench [THREADS] [POOL] [SEQ] [N] [GEN_N] [GEN_M] [MODEL] [SUBSET] [DIR]
 *   defaults 2, 1000, 512, 128, 8, 32, tb-llama, 16, /tmp. The pool is POOL random windows of SEQ
 *   tokens over the four testbed corpora (prose, arith, code, facts; even quotas; tb-llama's
 *   tokenizer); random, zipcal (one source: prose alone; four sources: with the k-center step),
 *   ppl, cola, acdm (reference: the arith_mc and facts_mc train splits) and covercal pick N of it.
 *   MODEL tb-llama: every selector on the full pool, each cold (no cache, its own forward pass),
 *   then cola, acdm, covercal and ppl in a row sharing one cache (one pass for the first three).
 *   The generating selectors run smaller: self_calibration makes GEN_N sequences of SEQ tokens;
 * self_gen generates GEN_M continuations of up to SEQ tokens and keeps GEN_N. MODEL qwen05: the
 * random-weight Qwen2.5-0.5B-shaped model of bench_qwen05.h (DIR/cs-bench- qwen05, written when
 * missing and kept). Its forward pass over POOL x SEQ tokens would take hours on two cores, so it
 * is timed on the first SUBSET candidates (one pass for the hook statistics, one for the NLL) and
 * extrapolated linearly to POOL, and the reference items are forwarded in full; the selection part
 * runs on the full POOL, on the statistics of a pool of POOL windows of 8 tokens (the statistics
 * have the same size whatever the length), read from a cache. The generating selectors run GEN_N
 * sequences (self_calibration) and GEN_M generations keeping GEN_N (self_gen) of up to SEQ tokens,
 * one sequence at a time, so their cost is linear in the count; GEN_N 0 skips them. Prints "bench:
 * selector forward_s select_s total_s note" lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_qwen05.h"
#include "cs_alloc.h"
#include "cs_cache.h"
#include "cs_calib.h"
#include "cs_model.h"
#include "cs_opt.h"
#include "cs_pstat.h"
#include "cs_select.h"
#include "cs_source.h"
#include "cs_time.h"
#include "cs_tok.h"

static char *src_path(const char *rel)
{
    const char *root = getenv("CS_SOURCE_DIR");
    cs_buf b;
    cs_buf_init(&b);
    if (cs_buf_printf(&b, "%s/%s", root ? root : ".", rel) != CS_OK) {
        return NULL;
    }
    return cs_buf_take(&b);
}

static size_t arg(int argc, char **argv, int i, size_t def)
{
    int64_t v;
    if (argc > i && cs_parse_i64(argv[i], 1, 1 << 24, &v, "argument", NULL) == CS_OK) {
        return (size_t)v;
    }
    return def;
}

static double now_s(void)
{
    return (double)cs_time_mono_ns() * 1e-9;
}

static double diag_num(const cs_calib_selection *s, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(s->diag, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static double stats_num(const cs_calib_selection *s, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(s->diag, "stats"), key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static int run(const char *label, const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
               const cs_tok *tok, const cs_select_env *env, const char *note)
{
    cs_calib_selection s;
    cs_err err = {0};
    double t0 = now_s();
    if (cs_select_run_env(p, pool, m, tok, env, NULL, NULL, &s, &err) != CS_OK) {
        fprintf(stderr, "select_bench: %s: %s\n", label, err.msg);
        return 1;
    }
    double total = now_s() - t0;
    char extra[96] = "";
    if (cJSON_GetObjectItem(s.diag, "stats")) {
        snprintf(extra, sizeof extra, " [forwarded %.0f items, %.0f cache hits]",
                 stats_num(&s, "items_forwarded"), stats_num(&s, "cache_hits"));
    }
    printf("bench: %-20s forward_s %9.3f select_s %8.4f total_s %9.3f  %s%s\n", label,
           diag_num(&s, "forward_s"), diag_num(&s, "select_s"), total, note, extra);
    fflush(stdout);
    cs_calib_selection_fini(&s);
    return 0;
}

/* A fresh cache folder (removed by drop_cache). */
static cs_rc open_cache(char *dir, size_t cap, const char *model_dir, cs_pstat_ctx *ctx,
                        char id[CS_CACHE_KEY_LEN + 1], cs_err *err)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, cap, "%s/select_bench_XXXXXX", t && t[0] ? t : "/tmp");
    if (!mkdtemp(dir)) {
        return cs_err_set(err, CS_EIO, 0, "mkdtemp %s failed", dir);
    }
    memset(ctx, 0, sizeof(*ctx));
    cs_rc rc = cs_cache_open(dir, &ctx->cache, err);
    if (rc == CS_OK) {
        rc = cs_cache_model_id(model_dir, id, err);
    }
    ctx->model_id = id;
    return rc;
}

static void drop_cache(const char *dir, cs_pstat_ctx *ctx)
{
    char cmd[512];
    cs_cache_close(ctx->cache);
    ctx->cache = NULL;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "select_bench: could not remove %s\n", dir);
    }
}

static void params(cs_select_params *p, cs_sel_kind k, size_t n)
{
    cs_select_params_default(p, k);
    p->n = n;
}

/* The activation selectors and ppl cold (no cache), then in a row on one cache. */
static int act_selectors(const cs_calib_pool *pool, const cs_calib_pool *ref, cs_model *m,
                         const cs_tok *tok, const char *model_dir, size_t n)
{
    cs_select_params p;
    cs_select_env env = {.reference = ref};
    int code = 0;
    params(&p, CS_SEL_COLA, n);
    code |= run("cola", &p, pool, m, tok, &env, "cold: mlp_mean pass; proj 64, 10 restarts");
    params(&p, CS_SEL_ACDM, n);
    code |= run("acdm", &p, pool, m, tok, &env, "cold: in_mean pass + reference items, quota");
    params(&p, CS_SEL_COVERCAL, n);
    code |= run("covercal", &p, pool, m, tok, &env, "cold: in_absmax pass");
    char dir[256], id[CS_CACHE_KEY_LEN + 1];
    cs_pstat_ctx ctx;
    cs_err err = {0};
    if (open_cache(dir, sizeof dir, model_dir, &ctx, id, &err) != CS_OK) {
        fprintf(stderr, "select_bench: %s\n", err.msg);
        return 1;
    }
    env.stats = &ctx;
    params(&p, CS_SEL_COLA, n);
    code |= run("cached: cola", &p, pool, m, tok, &env, "one pass: all 4 hook statistics");
    params(&p, CS_SEL_ACDM, n);
    code |= run("cached: acdm", &p, pool, m, tok, &env, "pool from the cache, reference pass");
    p.acdm_mode = CS_ACDM_MINIMAX;
    code |= run("cached: acdm-minimax", &p, pool, m, tok, &env, "from the cache");
    params(&p, CS_SEL_COVERCAL, n);
    code |= run("cached: covercal", &p, pool, m, tok, &env, "from the cache");
    params(&p, CS_SEL_PPL_RANK, n);
    code |= run("cached: ppl", &p, pool, m, tok, &env, "nll pass (output layer)");
    code |= run("cached: ppl again", &p, pool, m, tok, &env, "from the cache");
    drop_cache(dir, &ctx);
    return code;
}

/* self_calibration (gen_n sequences of L tokens, one at a time) and self_gen (gen_m generations of
 * up to L tokens, keep gen_n; prefixes from pool). */
static int gen_selectors(const cs_calib_pool *pool, cs_model *m, const cs_tok *tok, size_t gen_n,
                         size_t gen_m, size_t L)
{
    cs_select_params p;
    char note[128];
    params(&p, CS_SEL_SELF_CALIBRATION, gen_n);
    p.seq_len = L;
    snprintf(note, sizeof note, "%zu sequences x %zu tokens, one at a time", gen_n, L);
    int code = run("self_calibration", &p, NULL, m, tok, NULL, note);
    params(&p, CS_SEL_SELF_GEN, gen_n);
    p.prefix_texts = gen_m;
    p.seq_len = L;
    snprintf(note, sizeof note, "%zu generations of <= %zu tokens, keep %zu", gen_m, L, gen_n);
    code |= run("self_gen", &p, pool, m, tok, NULL, note);
    return code;
}

static int bench_qwen05(const cs_calib_source *src, size_t n_src, const cs_calib_pool *pool4,
                        const cs_calib_pool *pool1, const cs_calib_pool *ref, const cs_tok *tok,
                        size_t threads, size_t L, size_t n, size_t subset, size_t gen_n,
                        size_t gen_m, const char *base)
{
    char mdir[512], p[600];
    struct stat sb;
    cs_model *m = NULL;
    cs_err err = {0};
    cs_select_params sp;
    int code = 0;
    bench_model_dir(mdir, sizeof mdir, base);
    snprintf(p, sizeof p, "%s/model.safetensors", mdir);
    if (stat(p, &sb) != 0) {
        double t0 = now_s();
        if (write_model(mdir) != 0) {
            return 1;
        }
        printf("bench: wrote %s in %.1f s\n", mdir, now_s() - t0);
    }
    double t0 = now_s();
    if (cs_model_load(&m, mdir, (int)threads, &err) != CS_OK) {
        fprintf(stderr, "select_bench: %s\n", err.msg);
        return 1;
    }
    printf("bench: model qwen05 (random weights, %zu layers, hidden %zu, vocab %zu) loaded in "
           "%.1f s\n",
           m->cfg.n_layers, m->cfg.hidden, m->cfg.vocab, now_s() - t0);
    params(&sp, CS_SEL_RANDOM, n);
    code |= run("random", &sp, pool4, m, tok, NULL, "");
    params(&sp, CS_SEL_ZIPCAL, n);
    code |= run("zipcal-1src", &sp, pool1, m, tok, NULL, "prose only, cap 2000");
    code |= run("zipcal-4src", &sp, pool4, m, tok, NULL,
                "n per source + k-center (forward = embeddings)");
    /* forward passes: SUBSET candidates, extrapolated */
    cs_calib_pool sub = *pool4;
    sub.n = subset < pool4->n ? subset : pool4->n;
    cs_pstats st;
    t0 = now_s();
    if (cs_pstat_get(NULL, m, &sub, CS_PSTAT_HOOKED, 8, NULL, NULL, &st, &err) != CS_OK) {
        fprintf(stderr, "select_bench: %s\n", err.msg);
        cs_model_destroy(m);
        return 1;
    }
    double t_hook = now_s() - t0;
    cs_pstats_fini(&st);
    t0 = now_s();
    if (cs_pstat_get(NULL, m, &sub, CS_PSTAT_BIT(CS_PSTAT_NLL), 8, NULL, NULL, &st, &err) !=
        CS_OK) {
        fprintf(stderr, "select_bench: %s\n", err.msg);
        cs_model_destroy(m);
        return 1;
    }
    double t_nll = now_s() - t0;
    cs_pstats_fini(&st);
    double scale = (double)pool4->n / (double)sub.n;
    printf("bench: forward hook pass   %zu x %zu tokens in %.1f s (%.1f tok/s) -> %zu candidates: "
           "%.0f s (extrapolated)\n",
           sub.n, L, t_hook, (double)(sub.n * L) / t_hook, pool4->n, t_hook * scale);
    printf("bench: forward nll pass    %zu x %zu tokens in %.1f s (%.1f tok/s) -> %zu candidates: "
           "%.0f s (extrapolated)\n",
           sub.n, L, t_nll, (double)(sub.n * L) / t_nll, pool4->n, t_nll * scale);
    size_t ref_tok = 0;
    for (size_t i = 0; i < ref->n; i++) {
        ref_tok += ref->items[i].n_tokens;
    }
    t0 = now_s();
    if (cs_pstat_get(NULL, m, ref, CS_PSTAT_BIT(CS_PSTAT_IN_MEAN), 8, NULL, NULL, &st, &err) !=
        CS_OK) {
        fprintf(stderr, "select_bench: %s\n", err.msg);
        cs_model_destroy(m);
        return 1;
    }
    double t_ref = now_s() - t0;
    cs_pstats_fini(&st);
    printf("bench: forward reference   %zu items, %zu tokens in %.1f s (measured in full)\n",
           ref->n, ref_tok, t_ref);
    /* the selection part on the full pool: statistics of POOL windows of 8 tokens, cached */
    cs_calib_pool short_pool = {0}, short_ref = {0};
    cs_calib_compose_opts o;
    cs_calib_compose_opts_default(&o);
    o.n = pool4->n;
    o.seq_len = 8;
    char dir[256], id[CS_CACHE_KEY_LEN + 1];
    cs_pstat_ctx ctx;
    if (cs_calib_pool_build(src, n_src, tok, &o, &short_pool, &err) != CS_OK ||
        cs_calib_ref_pool_build(src + n_src, 2, tok, 8, true, &short_ref, &err) != CS_OK ||
        open_cache(dir, sizeof dir, mdir, &ctx, id, &err) != CS_OK) {
        fprintf(stderr, "select_bench: %s\n", err.msg);
        cs_model_destroy(m);
        return 1;
    }
    t0 = now_s();
    const unsigned all = CS_PSTAT_HOOKED | CS_PSTAT_BIT(CS_PSTAT_NLL);
    if (cs_pstat_get(&ctx, m, &short_pool, all, 8, NULL, NULL, &st, &err) != CS_OK) {
        fprintf(stderr, "select_bench: %s\n", err.msg);
        cs_model_destroy(m);
        return 1;
    }
    cs_pstats_fini(&st);
    if (cs_pstat_get(&ctx, m, &short_ref, CS_PSTAT_HOOKED, 8, NULL, NULL, &st, &err) != CS_OK) {
        fprintf(stderr, "select_bench: %s\n", err.msg);
        cs_model_destroy(m);
        return 1;
    }
    cs_pstats_fini(&st);
    printf("bench: statistics of %zu x 8 tokens (and the reference) for the selection part: "
           "%.1f s\n",
           short_pool.n, now_s() - t0);
    cs_select_env env = {.reference = &short_ref, .stats = &ctx};
    params(&sp, CS_SEL_COLA, n);
    code |= run("sel: cola", &sp, &short_pool, m, tok, &env,
                "selection part (forward = cache read)");
    params(&sp, CS_SEL_ACDM, n);
    code |= run("sel: acdm", &sp, &short_pool, m, tok, &env, "quota");
    sp.acdm_mode = CS_ACDM_MINIMAX;
    code |= run("sel: acdm-minimax", &sp, &short_pool, m, tok, &env, "");
    params(&sp, CS_SEL_COVERCAL, n);
    code |= run("sel: covercal", &sp, &short_pool, m, tok, &env, "");
    params(&sp, CS_SEL_PPL_RANK, n);
    code |= run("sel: ppl", &sp, &short_pool, m, tok, &env, "");
    drop_cache(dir, &ctx);
    if (gen_n > 0) {
        code |= gen_selectors(pool4, m, tok, gen_n, gen_m, L);
    }
    cs_calib_pool_fini(&short_pool);
    cs_calib_pool_fini(&short_ref);
    cs_model_destroy(m);
    return code;
}

int main(int argc, char **argv)
{
    size_t threads = arg(argc, argv, 1, 2), n_pool = arg(argc, argv, 2, 1000);
    size_t L = arg(argc, argv, 3, 512), n = arg(argc, argv, 4, 128);
    size_t gen_n = arg(argc, argv, 5, 8), gen_m = arg(argc, argv, 6, 32);
    const char *model = argc > 7 ? argv[7] : "tb-llama";
    size_t subset = arg(argc, argv, 8, 16);
    const char *base = argc > 9 ? argv[9] : "/tmp";
    static const char *const names[] = {"prose", "arith", "code", "facts"};
    static const char *const refs[] = {"arith_mc.train", "facts_mc.train"};
    char *paths[6] = {0};
    char *mdir = src_path("sweeps/testbed/models/tb-llama");
    char *tpath = src_path("sweeps/testbed/models/tb-llama/tokenizer.json");
    cs_calib_source src[6];
    cs_calib_pool pool4 = {0}, pool1 = {0}, ref = {0};
    cs_model *m = NULL;
    cs_tok *tok = NULL;
    cs_err err = {0};
    int code = 1;
    bool qwen = strcmp(model, "qwen05") == 0;
    if (!qwen && strcmp(model, "tb-llama") != 0) {
        fprintf(stderr, "select_bench: MODEL is tb-llama or qwen05, not '%s'\n", model);
        return 2;
    }
    openblas_set_num_threads((int)threads);
    for (size_t i = 0; i < 6; i++) {
        char rel[96];
        if (i < 4) {
            snprintf(rel, sizeof rel, "sweeps/testbed/data/corpus/%s.jsonl", names[i]);
        } else {
            snprintf(rel, sizeof rel, "sweeps/testbed/data/tasks/%s.jsonl", refs[i - 4]);
        }
        paths[i] = src_path(rel);
        src[i] = (cs_calib_source){.kind = i < 4 ? "jsonl" : "task",
                                   .path = paths[i],
                                   .name = i < 4 ? names[i] : refs[i - 4]};
    }
    if (cs_tok_load(&tok, tpath, &err) != CS_OK ||
        (!qwen && cs_model_load(&m, mdir, (int)threads, &err) != CS_OK)) {
        fprintf(stderr, "select_bench: %s\n", err.msg);
        goto cleanup;
    }
    cs_calib_compose_opts o;
    cs_calib_compose_opts_default(&o);
    o.n = n_pool;
    o.seq_len = L;
    double t0 = now_s();
    if (cs_calib_pool_build(src, 4, tok, &o, &pool4, &err) != CS_OK ||
        cs_calib_pool_build(src, 1, tok, &o, &pool1, &err) != CS_OK ||
        cs_calib_ref_pool_build(src + 4, 2, tok, L, true, &ref, &err) != CS_OK) {
        fprintf(stderr, "select_bench: %s\n", err.msg);
        goto cleanup;
    }
    printf("bench: model %s threads %zu pool %zu x %zu tokens, n %zu, %zu reference items (pools "
           "built in %.3f s)\n",
           model, threads, n_pool, L, n, ref.n, now_s() - t0);
    if (qwen) {
        code = bench_qwen05(src, 4, &pool4, &pool1, &ref, tok, threads, L, n, subset, gen_n, gen_m,
                            base);
        goto cleanup;
    }
    cs_select_params p;
    params(&p, CS_SEL_RANDOM, n);
    code = run("random", &p, &pool4, m, tok, NULL, "");
    p.stratified = true;
    code |= run("random-strat", &p, &pool4, m, tok, NULL, "4 sources");
    params(&p, CS_SEL_ZIPCAL, n);
    code |= run("zipcal-1src", &p, &pool1, m, tok, NULL, "prose only, cap 2000");
    code |= run("zipcal-4src", &p, &pool4, m, tok, NULL,
                "n per source + k-center (forward = embeddings)");
    params(&p, CS_SEL_PPL_RANK, n);
    code |= run("ppl-low", &p, &pool4, m, tok, NULL, "cold: nll pass, batch 8");
    code |= act_selectors(&pool4, &ref, m, tok, mdir, n);
    code |= gen_selectors(&pool4, m, tok, gen_n, gen_m, L);
cleanup:
    cs_calib_pool_fini(&pool4);
    cs_calib_pool_fini(&pool1);
    cs_calib_pool_fini(&ref);
    cs_model_destroy(m);
    cs_tok_destroy(tok);
    for (size_t i = 0; i < 6; i++) {
        free(paths[i]);
    }
    free(mdir);
    free(tpath);
    return code;
}
