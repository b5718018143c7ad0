/* export_fixture.c - writes the export tests' fixture database (tests/cli/export_*.sh) from known
 * numbers, through the store API as a worker would report them.
 *
 * Usage: export_fixture DB. The sweep "grid" (fx_fill_grid) serves the presets. The sweep "fixture"
 * (model tb, eval suite default) has 10 jobs:
 *   - the baseline (algorithm none): arc_e 0.80, hella_swag 0.60, ppl:wiki 10.0;
 *   - gptq(bits=4) x selector {random, k_means} x n_samples {16, 32} x seed {0, 1}:
 *     arc_e = 0.70 + 0.04 s + 0.02 n + 0.01 seed, hella_swag = 0.50 + 0.02 s + 0.04 n - 0.02 seed,
 *     ppl:wiki = 12.0 - 0.5 s - 0.25 n (s, n: the selector's and n_samples' index);
 *   - rtn(bits=4) (calibration-free: no selector, n_samples or seed): arc_e 0.66,
 *     hella_swag 0.46, ppl:wiki 14.0.
 * Accuracy tasks have 100 items whose first round(100 acc) outcomes are 1, all on one item sample,
 * so the item-level comparisons pair. The database must not exist yet. Exit 0 on success. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_canon.h"
#include "cs_store.h"
#include "store_synth.h"

#define T0        1700000000000LL
#define WORKER    "fixture"
#define INSTANCE  "00112233445566778899aabbccddeeff"
#define SAMPLE    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
#define N_FIXTURE 10 /* cells of sweep "fixture"; then those of sweep "grid" */
#define N_CELLS   (N_FIXTURE + 36)
#define N_ITEMS   100

typedef struct fx_cell {
    const char *algorithm; /* canonical JSON */
    const char *selector;  /* NULL: calibration-free */
    int n_samples, seed;
    bool baseline;
    double arc_e, hella, ppl;
    int seq_len;       /* 0: no seq_len axis (sweep "fixture") */
    const char *model; /* NULL: "tb" */
} fx_cell;

typedef struct fx_gen {
    fx_cell cells[N_CELLS];
    size_t i, end; /* the cells [i, end) are streamed */
    char key[CS_SHA256_HEX_LEN + 1];
    char config[512];
    char axes[256];
} fx_gen;

/* Sweep "grid" from cell c on: per model m (tb, tb2) the baseline, rtn(bits=4), and gptq(bits=4)
 * x n_samples {16, 32} x seq_len {64, 128} x selector {random, k_means} x seed {0, 1}:
 * arc_e = 0.70 + 0.02 n + 0.01 q + 0.01 s + 0.01 seed - 0.05 m, hella_swag = 0.50 + 0.04 n +
 * 0.02 q + 0.01 s - 0.02 seed - 0.05 m (n, q, s: the n_samples', seq_len's and selector's index);
 * baselines 0.80/0.60 - 0.05 m, rtn 0.66/0.46 - 0.05 m; ppl:wiki 11 + m - 0.5 n (gptq). */
static void fx_fill_grid(fx_gen *g, size_t c)
{
    static const char *const sel[2] = {"random", "k_means"}, *const model[2] = {"tb", "tb2"};
    for (int m = 0; m < 2; m++) {
        g->cells[c++] =
                (fx_cell){"{\"name\":\"none\"}", NULL,     0, 0,       true, 0.80 - 0.05 * m,
                          0.60 - 0.05 * m,       10.0 + m, 0, model[m]};
        g->cells[c++] = (fx_cell){"{\"bits\":4,\"name\":\"rtn\"}",
                                  NULL,
                                  0,
                                  0,
                                  false,
                                  0.66 - 0.05 * m,
                                  0.46 - 0.05 * m,
                                  14.0 + m,
                                  0,
                                  model[m]};
        for (int n = 0; n < 2; n++) {
            for (int q = 0; q < 2; q++) {
                for (int s = 0; s < 2; s++) {
                    for (int seed = 0; seed < 2; seed++) {
                        g->cells[c++] = (fx_cell){
                                "{\"bits\":4,\"name\":\"gptq\"}",
                                sel[s],
                                16 << n,
                                seed,
                                false,
                                0.70 + 0.02 * n + 0.01 * q + 0.01 * s + 0.01 * seed - 0.05 * m,
                                0.50 + 0.04 * n + 0.02 * q + 0.01 * s - 0.02 * seed - 0.05 * m,
                                11.0 + m - 0.5 * n,
                                64 << q,
                                model[m]};
                    }
                }
            }
        }
    }
}

static void fx_fill(fx_gen *g)
{
    static const char *const sel[2] = {"random", "k_means"};
    size_t c = 0;
    g->cells[c++] = (fx_cell){"{\"name\":\"none\"}", NULL, 0, 0, true, 0.80, 0.60, 10.0, 0, NULL};
    for (int s = 0; s < 2; s++) {
        for (int n = 0; n < 2; n++) {
            for (int seed = 0; seed < 2; seed++) {
                g->cells[c++] = (fx_cell){"{\"bits\":4,\"name\":\"gptq\"}",
                                          sel[s],
                                          16 << n,
                                          seed,
                                          false,
                                          0.70 + 0.04 * s + 0.02 * n + 0.01 * seed,
                                          0.50 + 0.02 * s + 0.04 * n - 0.02 * seed,
                                          12.0 - 0.5 * s - 0.25 * n,
                                          0,
                                          NULL};
            }
        }
    }
    g->cells[c++] = (fx_cell){
            "{\"bits\":4,\"name\":\"rtn\"}", NULL, 0, 0, false, 0.66, 0.46, 14.0, 0, NULL};
    fx_fill_grid(g, c);
}

/* A cs_cell_next_fn over the fixture's cells. */
static cs_rc fx_next(void *ctx, cs_cell *out, cs_err *err)
{
    fx_gen *g = ctx;
    char calib[128] = "null", sel[32] = "null", ns[16] = "null", seed[16] = "null";
    char seq[32] = "", seq_v[16] = "null";
    if (g->i == g->end) {
        return CS_ENOENT;
    }
    const fx_cell *c = &g->cells[g->i];
    const char *model = c->model ? c->model : "tb";
    if (c->selector) {
        snprintf(sel, sizeof(sel), "\"%s\"", c->selector);
        snprintf(ns, sizeof(ns), "%d", c->n_samples);
        snprintf(seed, sizeof(seed), "%d", c->seed);
        if (c->seq_len) {
            snprintf(seq_v, sizeof(seq_v), "%d", c->seq_len);
        }
        snprintf(calib, sizeof(calib),
                 "{\"n_samples\":%s,\"selector\":{\"name\":%s},\"seq_len\":%s}", ns, sel, seq_v);
    }
    if (g->i >= N_FIXTURE) {
        snprintf(seq, sizeof(seq), ",\"seq_len\":%s", seq_v);
    }
    int w = snprintf(g->config, sizeof(g->config),
                     "{\"algorithm\":%s,\"calibration\":%s,\"cell\":%zu,\"eval\":{\"limit\":100},"
                     "\"model\":{\"arch\":\"llama\",\"backend\":\"native\",\"folder\":"
                     "\"models/%s\"},\"seed\":%s}",
                     c->algorithm, calib, g->i, model, seed);
    if (w < 0 || (size_t)w >= sizeof(g->config)) {
        return cs_err_set(err, CS_ETOOBIG, 0, "export_fixture: cell %zu: config too long", g->i);
    }
    snprintf(g->axes, sizeof(g->axes),
             "{\"algorithm\":%s,\"eval\":\"default\",\"model\":\"%s\",\"n_samples\":%s,"
             "\"selector\":%s,\"seed\":%s%s}",
             c->algorithm, model, ns, sel, seed, seq);
    if (cs_sha256_hex(g->config, (size_t)w, g->key, err) != CS_OK) {
        return CS_EINTERNAL;
    }
    out->key = g->key;
    out->config = g->config;
    out->axes = g->axes;
    out->baseline = c->baseline;
    g->i++;
    return CS_OK;
}

/* The outcome bitset of an accuracy: the first round(N_ITEMS acc) items right. */
static void fx_bits(double acc, uint8_t bits[(N_ITEMS + 7) / 8])
{
    long k = lround(acc * N_ITEMS);
    memset(bits, 0, (N_ITEMS + 7) / 8);
    for (long i = 0; i < k; i++) {
        bits[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
}

/* Claims the next job and reports its fixture numbers. */
static cs_rc fx_report(cs_store *s, const fx_gen *g, cs_err *err)
{
    cs_store_caps caps = {
            .worker = WORKER, .instance = INSTANCE, .host = "h", .native = true, .mem_mb = -1};
    cs_store_claim cl = {0};
    uint8_t arc[(N_ITEMS + 7) / 8], hella[(N_ITEMS + 7) / 8];
    bool dup = false;
    cs_rc rc = cs_store_claim_job(s, &caps, 60000, T0, &cl, err);
    if (rc != CS_OK) {
        return rc == CS_ENOENT ? cs_err_set(err, rc, 0, "export_fixture: no job to claim") : rc;
    }
    const char *p = strstr(cl.config, "\"cell\":");
    char *end = NULL;
    long idx = p ? strtol(p + 7, &end, 10) : -1;
    if (idx < 0 || idx >= N_CELLS) {
        cs_store_claim_fini(&cl);
        return cs_err_set(err, CS_EINTERNAL, 0, "export_fixture: job %lld: no cell index",
                          (long long)cl.job_id);
    }
    const fx_cell *c = &g->cells[idx];
    cs_store_metric m[3] = {{"arc_e", "acc", c->arc_e, NAN, N_ITEMS},
                            {"hella_swag", "acc", c->hella, NAN, N_ITEMS},
                            {"ppl:wiki", "ppl", c->ppl, NAN, 8}};
    fx_bits(c->arc_e, arc);
    fx_bits(c->hella, hella);
    cs_store_outcome o[2] = {{"arc_e", "acc", SAMPLE, N_ITEMS, arc, sizeof(arc)},
                             {"hella_swag", "acc", SAMPLE, N_ITEMS, hella, sizeof(hella)}};
    rc = cs_store_result_items(s, cl.job_id, cl.attempt, WORKER, cl.lease_token, "{\"version\":2}",
                               m, 3, o, 2, NULL, T0 + 1, &dup, err);
    cs_store_claim_fini(&cl);
    return rc;
}

int main(int argc, char **argv)
{
    fx_gen g = {0};
    cs_store *s = NULL;
    cs_err err = {0};
    cs_store_submit_counts counts;
    cs_sweep_meta meta = cs_synth_meta("fixture"), grid = cs_synth_meta("grid");
    FILE *f;

    if (argc != 2) {
        fprintf(stderr, "usage: export_fixture DB\n");
        return 2;
    }
    f = fopen(argv[1], "r");
    if (f) {
        fclose(f);
        fprintf(stderr, "export_fixture: %s exists\n", argv[1]);
        return 1;
    }
    fx_fill(&g);
    cs_rc rc = cs_store_open(argv[1], &s, &err);
    if (rc == CS_OK) {
        g.end = N_FIXTURE;
        rc = cs_store_submit(s, &meta, fx_next, &g, false, T0, &counts, &err);
    }
    if (rc == CS_OK) {
        g.end = N_CELLS;
        rc = cs_store_submit(s, &grid, fx_next, &g, false, T0, &counts, &err);
    }
    for (size_t i = 0; rc == CS_OK && i < N_CELLS; i++) {
        rc = fx_report(s, &g, &err);
    }
    cs_store_close(s);
    if (rc != CS_OK) {
        fprintf(stderr, "export_fixture: %s: %s\n", argv[1], err.msg);
        return 1;
    }
    return 0;
}
