/* select_bench.c - time of each calibration-data selector on the testbed model (tb-llama), split
 * into forward passes (or generation, or embedding means) and the selection itself, as the
 * selectors report them in their diagnostics (forward_s, select_s).
 *
 * Usage: select_bench [THREADS] [POOL] [SEQ] [N] [GEN_N] [GEN_M]
 *   defaults 2, 1000, 512, 128, 8, 32. The pool is POOL random windows of SEQ tokens over the four
 *   testbed corpora (prose, arith, code, facts; even quotas); random, zipcal (one source: prose
 *   alone; four sources: with the k-center step) and ppl pick N of it. The generating selectors run
 *   smaller (they decode token by token): selfcal makes GEN_N sequences of SEQ tokens; selfgen
 *   generates GEN_M continuations of SEQ tokens and keeps GEN_N.
 * Prints "bench: selector forward_s select_s total_s note" lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cs_alloc.h"
#include "cs_calib.h"
#include "cs_model.h"
#include "cs_opt.h"
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

static int run(const char *label, const cs_select_params *p, const cs_calib_pool *pool, cs_model *m,
               const cs_tok *tok, const char *note)
{
    cs_calib_selection s;
    cs_err err = {0};
    uint64_t t0 = cs_time_mono_ns();
    if (cs_select_run(p, pool, m, tok, NULL, NULL, &s, &err) != CS_OK) {
        fprintf(stderr, "select_bench: %s: %s\n", label, err.msg);
        return 1;
    }
    double total = (double)(cs_time_mono_ns() - t0) * 1e-9;
    printf("bench: %-16s forward_s %8.3f select_s %8.4f total_s %8.3f  %s\n", label,
           cJSON_GetObjectItem(s.diag, "forward_s")->valuedouble,
           cJSON_GetObjectItem(s.diag, "select_s")->valuedouble, total, note);
    fflush(stdout);
    cs_calib_selection_free(&s);
    return 0;
}

int main(int argc, char **argv)
{
    size_t threads = arg(argc, argv, 1, 2), n_pool = arg(argc, argv, 2, 1000);
    size_t L = arg(argc, argv, 3, 512), n = arg(argc, argv, 4, 128);
    size_t gen_n = arg(argc, argv, 5, 8), gen_m = arg(argc, argv, 6, 32);
    static const char *const names[] = {"prose", "arith", "code", "facts"};
    char *paths[4] = {0};
    char *mdir = src_path("sweeps/testbed/models/tb-llama");
    char *tpath = src_path("sweeps/testbed/models/tb-llama/tokenizer.json");
    cs_calib_source src[4];
    cs_calib_pool pool4 = {0}, pool1 = {0};
    cs_model *m = NULL;
    cs_tok *tok = NULL;
    cs_err err = {0};
    int code = 1;
    openblas_set_num_threads((int)threads);
    for (size_t i = 0; i < 4; i++) {
        char rel[96];
        snprintf(rel, sizeof rel, "sweeps/testbed/data/corpus/%s.jsonl", names[i]);
        paths[i] = src_path(rel);
        src[i] = (cs_calib_source){.kind = "jsonl", .path = paths[i], .name = names[i]};
    }
    if (cs_model_load(&m, mdir, (int)threads, &err) != CS_OK ||
        cs_tok_load(&tok, tpath, &err) != CS_OK) {
        fprintf(stderr, "select_bench: %s\n", err.msg);
        goto cleanup;
    }
    cs_calib_compose_opts o;
    cs_calib_compose_opts_default(&o);
    o.n = n_pool;
    o.seq_len = L;
    uint64_t t0 = cs_time_mono_ns();
    if (cs_calib_pool_build(src, 4, tok, &o, &pool4, &err) != CS_OK ||
        cs_calib_pool_build(src, 1, tok, &o, &pool1, &err) != CS_OK) {
        fprintf(stderr, "select_bench: %s\n", err.msg);
        goto cleanup;
    }
    printf("bench: model tb-llama threads %zu pool %zu x %zu tokens, n %zu (pools built in %.3f "
           "s)\n",
           threads, n_pool, L, n, (double)(cs_time_mono_ns() - t0) * 1e-9 / 2);
    cs_select_params p;
    char note[128];
    cs_select_params_default(&p, CS_SEL_RANDOM);
    p.n = n;
    code = run("random", &p, &pool4, m, tok, "");
    p.stratified = true;
    code |= run("random-strat", &p, &pool4, m, tok, "4 sources");
    cs_select_params_default(&p, CS_SEL_ZIPCAL);
    p.n = n;
    code |= run("zipcal-1src", &p, &pool1, m, tok, "prose only, cap 2000");
    code |= run("zipcal-4src", &p, &pool4, m, tok,
                "n per source + k-center (forward = embeddings)");
    cs_select_params_default(&p, CS_SEL_PPL);
    p.n = n;
    code |= run("ppl-low", &p, &pool4, m, tok, "batch 8");
    cs_select_params_default(&p, CS_SEL_SELFCAL);
    p.n = gen_n;
    p.seq_len = L;
    snprintf(note, sizeof note, "%zu sequences x %zu tokens", gen_n, L);
    code |= run("selfcal", &p, NULL, m, tok, note);
    cs_select_params_default(&p, CS_SEL_SELFGEN);
    p.n = gen_n;
    p.m = gen_m;
    p.seq_len = L;
    snprintf(note, sizeof note, "%zu generations of <= %zu tokens, keep %zu", gen_m, L, gen_n);
    code |= run("selfgen", &p, &pool4, m, tok, note);
cleanup:
    cs_calib_pool_free(&pool4);
    cs_calib_pool_free(&pool1);
    cs_model_free(m);
    cs_tok_destroy(tok);
    for (size_t i = 0; i < 4; i++) {
        free(paths[i]);
    }
    free(mdir);
    free(tpath);
    return code;
}
