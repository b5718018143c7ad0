/* results_bench.c - `calsweep results` on a 100,000-job synthetic database (issue 19,
 * BENCHMARKS.md "## Results").
 *
 * (a) Builds the database through the store's normal path, as calsweepd does: the sweep below
 *     parsed and expanded by the real compiler and submitted (cs_store_submit), then every job
 *     claimed (cs_store_claim_job) and completed (cs_store_result_items) with a version-2
 *     result in batches of 256 claims + 256 results per transaction (the daemon's group commit).
 *     Each result has 5 multiple-choice tasks x 1,000 items: acc, acc_norm and acc_bytes bitsets
 *     and float32 margins (result.json v2 "items", stored as item_outcome rows), and metrics that
 *     agree with the bits. The stored text is cs_result_encode's of the document without "items"
 *     (as calsweepd stores it) and the metrics are the daemon's long form (cs_daemon.c).
 * (b) Runs the real CLI, `calsweep results SWEEP --db DB`, as a child process: with
 *     --resamples 0, with the defaults (text and --json), and with a reference row
 *     (--reference selector=random(stratified=false): the bootstrap only runs for the Delta
 *     against a reference) at 100 and 1,000 resamples (10,000 with --full); wall time (min and
 *     median), CPU time and peak RSS of the child (wait4's rusage).
 * (c) Where the time goes, in this process: cs_store_agg_load (without the margins), then
 *     cs_agg_run on the loaded jobs and the rendering as the CLI does them (the slim aggregate
 *     and the text table; the full one and --json's line): the table without a reference, with
 *     one and no bootstrap, and with one and 100 resamples, then --json without a reference.
 *
 * Synthetic outcomes (seeded, so the database is the same on every run): every job scores the
 * same 1,000 items per task (the eval suite's fixed-seed sample), so all jobs pair item by item.
 * The unquantized model m has a fixed margin per item, m0[m][t][i] = ability(m) + offset(t) -
 * difficulty(t, i) + logistic noise; a quantized job's margin is m0 + effect(job) + noise of
 * scale 0.25 + |drop|, where effect = the algorithm's drop (bits, group size) + the selector's
 * gain (larger at low bits) + a small n_samples and seq_len term + seed noise. acc = margin > 0;
 * acc_norm and acc_bytes shift the margin by fixed per-item offsets. So methods differ by a few
 * points, seeds by well under one, and the items of two jobs are strongly correlated, as on the
 * testbed: the paired bootstrap has effects to find and noise to reject.
 *
 * Usage: results_bench [--dir DIR] [--db PATH] [--runs N] [--timeout S] [--build-only] [--no-cli]
 *                      [--full]
 *   --dir DIR   where the scratch database goes (default /tmp); removed at the end
 *   --db PATH   use (or build, if missing) the database at PATH and keep it
 *   --runs N    runs of each CLI measurement (default 3)
 *   --timeout S a CLI run that takes longer is killed and reported as such (default 300)
 *   --build-only, --no-cli  stop after (a); skip (b)
 *   --full      also the reference bootstrap with the default 10,000 resamples (about a minute:
 *               100 and 1,000 resamples show its fixed part and its slope)
 * The CLI is CS_BUILD_DIR/coordinator/calsweep (CS_BUILD_DIR defaults to "build"). Prints one
 * "bench: key value unit" line per measurement.
 */
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cs_agg.h"
#include "cs_expand.h"
#include "cs_prefetch.h"
#include "cs_result.h"
#include "cs_rng.h"
#include "cs_store.h"
#include "cs_sweep.h"
#include "cs_time.h"

#define N_TASKS  5
#define N_ITEMS  1000
#define N_MODELS 3
#define BATCH    256
#define SWEEP    "bench-results"
#ifndef RESULT_VERSION
#define RESULT_VERSION 2 /* result.json with "items" (stored without them) */
#endif

/* 3 models x 10 algorithms x 10 selectors x 4 sources x 7 n_samples x 4 seq_len x 3 seeds =
 * 100,800 jobs + 3 baselines (one per model). */
static const char sweep_text[] =
        "{\"name\":\"" SWEEP "\","
        "\"models\":{\"small\":{\"folder\":\"sweeps/testbed/models/tb-llama\"},"
        "\"mid\":{\"folder\":\"sweeps/testbed/models/tb-qwen\"},"
        "\"large\":{\"folder\":\"sweeps/testbed/models/tb-large\"}},"
        "\"data\":{\"sources\":{\"web\":{\"kind\":\"jsonl\",\"path\":\"web.jsonl\"},"
        "\"code\":{\"kind\":\"jsonl\",\"path\":\"code.jsonl\"},"
        "\"wiki\":{\"kind\":\"jsonl\",\"path\":\"wiki.jsonl\"},"
        "\"books\":{\"kind\":\"jsonl\",\"path\":\"books.jsonl\"},"
        "\"arc_train\":{\"kind\":\"task\",\"path\":\"arc.train.jsonl\"},"
        "\"piqa_train\":{\"kind\":\"task\",\"path\":\"piqa.train.jsonl\"}},"
        "\"eval\":{\"default\":{\"tasks\":{"
        "\"arc\":{\"path\":\"arc.jsonl\"},\"hellaswag\":{\"path\":\"hellaswag.jsonl\"},"
        "\"piqa\":{\"path\":\"piqa.jsonl\"},\"winogrande\":{\"path\":\"winogrande.jsonl\"},"
        "\"mmlu\":{\"path\":\"mmlu.jsonl\"}},\"limit\":1000}}},"
        "\"grid\":{\"algorithm\":["
        "{\"name\":\"gptq\",\"bits\":2,\"group_size\":32},{\"name\":\"gptq\",\"bits\":2,\"group_"
        "size\":128},"
        "{\"name\":\"gptq\",\"bits\":3,\"group_size\":32},{\"name\":\"gptq\",\"bits\":3,\"group_"
        "size\":128},"
        "{\"name\":\"gptq\",\"bits\":4,\"group_size\":32},{\"name\":\"gptq\",\"bits\":4,\"group_"
        "size\":128},"
        "{\"name\":\"awq\",\"bits\":3,\"group_size\":32},{\"name\":\"awq\",\"bits\":3,\"group_"
        "size\":128},"
        "{\"name\":\"awq\",\"bits\":4,\"group_size\":32},{\"name\":\"awq\",\"bits\":4,\"group_"
        "size\":128}],"
        "\"selector\":[\"random\",{\"name\":\"random\",\"stratified\":true},\"self_gen\","
        "\"zipcal\","
        "{\"name\":\"zipcal\",\"search_limit\":500},{\"name\":\"cola\",\"proj_dim\":16},"
        "{\"name\":\"cola\",\"proj_dim\":32},\"cola\","
        "{\"name\":\"acdm\",\"reference\":[\"arc_train\",\"piqa_train\"]},"
        "{\"name\":\"ppl_rank\",\"mode\":\"low\"}],"
        "\"source\":[\"web\",\"code\",\"wiki\",\"books\"],"
        "\"n_samples\":{\"range\":[8,512],\"scale\":\"log2\"},"
        "\"seq_len\":[256,512,1024,2048],\"seed\":[0,1,2]}}";

static const char *const task_names[N_TASKS] = {"arc", "hellaswag", "mmlu", "piqa", "winogrande"};
static const double task_offset[N_TASKS] = {0.4, 0.9, -0.3, 1.2, 0.6};
static const char *const model_folders[N_MODELS] = {"tb-llama", "tb-qwen", "tb-large"};
static const double model_ability[N_MODELS] = {-0.2, 0.3, 0.8};

/* The synthetic world: per model, task and item the unquantized model's margin, and per task and
 * item the offsets of acc_norm and acc_bytes. */
typedef struct world {
    float m0[N_MODELS][N_TASKS][N_ITEMS];
    float norm_off[N_TASKS][N_ITEMS], bytes_off[N_TASKS][N_ITEMS];
    char sample[N_TASKS][65]; /* cs_result_sample of the task's item ids */
} world;

/* One job's result under construction: the decoded struct the daemon would store and its
 * per-item outcomes, with every buffer owned here (never passed to cs_result_fini). */
typedef struct job_result {
    cs_result r;
    cs_result_task tasks[N_TASKS];
    cs_result_value values[N_TASKS][5];
    cs_store_outcome outcomes[N_TASKS * 4];
    uint8_t bits[N_TASKS][3][(N_ITEMS + 7) / 8];
    float margin[N_TASKS][N_ITEMS];
    cs_store_metric metrics[N_TASKS * 3];
    char key[65];
} job_result;

static int fail(const char *what, const cs_err *err)
{
    fprintf(stderr, "results_bench: %s: %s\n", what, err->msg);
    return 1;
}

static int64_t cpu_ms_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* VmHWM of this process, MB; -1 if unreadable. */
static double proc_hwm_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double mb = -1;
    while (f != NULL && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            mb = strtod(line + 6, NULL) / 1024.0;
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return mb;
}

static double logistic(cs_rng *g)
{
    double u = (cs_rng_uniform(g) * 0.999998) + 0.000001;
    return log(u / (1.0 - u));
}

static int world_init(world *w)
{
    cs_rng g;
    cs_err err = {0};
    char(*ids)[32] = malloc((size_t)N_ITEMS * sizeof(*ids));
    const char **idp = malloc((size_t)N_ITEMS * sizeof(*idp));
    int rc = 0;
    if (ids == NULL || idp == NULL) {
        free(ids);
        free(idp);
        return 1;
    }
    cs_rng_seed(&g, 20261207);
    for (size_t t = 0; t < N_TASKS && rc == 0; t++) {
        for (size_t i = 0; i < N_ITEMS; i++) {
            double d = 1.5 * cs_rng_normal(&g);
            w->norm_off[t][i] = (float)(0.15 + 0.6 * cs_rng_normal(&g));
            w->bytes_off[t][i] = (float)(0.05 + 0.6 * cs_rng_normal(&g));
            for (size_t m = 0; m < N_MODELS; m++) {
                w->m0[m][t][i] =
                        (float)(model_ability[m] + task_offset[t] - d + 0.8 * logistic(&g));
            }
            snprintf(ids[i], sizeof(ids[i]), "%s-%zu", task_names[t], i * 7 + 3);
            idp[i] = ids[i];
        }
        /* The same item ids in every job: all jobs pair item by item. */
        if (cs_result_sample(idp, N_ITEMS, w->sample[t], &err) != CS_OK) {
            rc = fail("sample", &err);
        }
    }
    free(ids);
    free(idp);
    return rc;
}

/* The method effect of a job config (logit units) and its per-item noise scale; the baseline
 * (algorithm "none") has neither. */
static void job_effect(const cJSON *cfg, size_t *model, double *effect, double *noise,
                       uint64_t *seed_out)
{
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(cfg, "algorithm");
    const cJSON *cal = cJSON_GetObjectItemCaseSensitive(cfg, "calibration");
    const cJSON *sel =
            cJSON_IsObject(cal) ? cJSON_GetObjectItemCaseSensitive(cal, "selector") : NULL;
    const cJSON *mod = cJSON_GetObjectItemCaseSensitive(cfg, "model");
    const cJSON *folder = cJSON_GetObjectItemCaseSensitive(mod, "folder");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(cfg, "seed");
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(cfg, "n_samples");
    const cJSON *sl = cJSON_GetObjectItemCaseSensitive(cfg, "seq_len");
    double drop = 0, gain = 0;

    *model = 0;
    for (size_t m = 0; m < N_MODELS; m++) {
        if (cJSON_IsString(folder) && strstr(folder->valuestring, model_folders[m]) != NULL) {
            *model = m;
        }
    }
    *seed_out = cJSON_IsNumber(seed) ? (uint64_t)seed->valuedouble : 0;
    const cJSON *an = cJSON_GetObjectItemCaseSensitive(alg, "name");
    if (!cJSON_IsString(an) || strcmp(an->valuestring, "none") == 0) { /* the baseline */
        *effect = 0;
        *noise = 0;
        return;
    }
    const cJSON *bits = cJSON_GetObjectItemCaseSensitive(alg, "bits");
    const cJSON *gs = cJSON_GetObjectItemCaseSensitive(alg, "group_size");
    int b = cJSON_IsNumber(bits) ? bits->valueint : 4;
    drop = b == 2 ? -1.1 : b == 3 ? -0.35 : -0.08;
    if (cJSON_IsNumber(gs) && gs->valueint >= 128) {
        drop *= 1.25;
    }
    if (cJSON_IsString(an) && strcmp(an->valuestring, "awq") == 0) {
        drop *= 0.9;
    }
    if (sel != NULL) {
        const cJSON *sn = cJSON_IsString(sel) ? sel : cJSON_GetObjectItemCaseSensitive(sel, "name");
        const char *name = cJSON_IsString(sn) ? sn->valuestring : "random";
        static const char *const names[] = {"random", "self_gen", "zipcal",
                                            "cola",   "acdm",     "ppl_rank"};
        static const double gains[] = {0.0, 0.04, 0.06, 0.08, 0.12, -0.05};
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            if (strcmp(name, names[k]) == 0) {
                gain = gains[k];
            }
        }
        if (cJSON_IsObject(sel) && cJSON_GetObjectItemCaseSensitive(sel, "proj_dim") != NULL) {
            gain *= 0.8;
        }
        gain *= 1.0 + fabs(drop) * 2.0;
    }
    if (cJSON_IsNumber(ns)) {
        gain += 0.02 * log2(ns->valuedouble / 8.0) / 6.0;
    }
    if (cJSON_IsNumber(sl)) {
        gain += 0.01 * log2(sl->valuedouble / 256.0) / 3.0;
    }
    *effect = drop + gain;
    *noise = 0.25 + fabs(drop);
}

static void set_value(cs_result_value *v, const char *name, double value)
{
    v->name = (char *)(uintptr_t)name; /* borrowed: this struct never meets cs_result_fini */
    v->value = value;
}

/* Fills jr for one claimed job: bits, margins, metrics (as calsweep-run writes them). */
static void job_fill(job_result *jr, const world *w, const cs_store_claim *c)
{
    cJSON *cfg = cJSON_Parse(c->config);
    size_t m;
    double effect, noise;
    uint64_t seed;
    cs_rng g;

    job_effect(cfg, &m, &effect, &noise, &seed);
    cJSON_Delete(cfg);
    cs_rng_seed(&g, (uint64_t)c->job_id * 0x9E3779B97F4A7C15ULL);
    memcpy(jr->key, c->key, sizeof(jr->key));
    for (size_t t = 0; t < N_TASKS; t++) {
        double shift = effect + (noise > 0 ? 0.03 * cs_rng_normal(&g) : 0);
        size_t k[3] = {0, 0, 0};
        memset(jr->bits[t], 0, sizeof(jr->bits[t]));
        for (size_t i = 0; i < N_ITEMS; i++) {
            /* Triangular noise from one draw: cheap, symmetric, variance noise^2 / 6 * 4. */
            uint64_t u = cs_rng_u64(&g);
            double e = ((double)(u >> 40) + (double)(u & 0xFFFFFF)) / 16777216.0 - 1.0;
            float mg = (float)(w->m0[m][t][i] + shift + noise * 2.0 * e);
            float mv[3] = {mg, mg + w->norm_off[t][i], mg + w->bytes_off[t][i]};
            jr->margin[t][i] = mg;
            for (size_t b = 0; b < 3; b++) {
                if (mv[b] > 0) {
                    jr->bits[t][b][i >> 3] |= (uint8_t)(1u << (i & 7));
                    k[b]++;
                }
            }
        }
        double acc = (double)k[0] / N_ITEMS, an = (double)k[1] / N_ITEMS;
        double ab = (double)k[2] / N_ITEMS;
        cs_result_value *v = jr->values[t];
        /* Sorted by name, as the decoder keeps them. */
        set_value(&v[0], "acc", acc);
        set_value(&v[1], "acc_bytes", ab);
        set_value(&v[2], "acc_norm", an);
        set_value(&v[3], "acc_norm_stderr", sqrt(an * (1 - an) / (N_ITEMS - 1)));
        set_value(&v[4], "acc_stderr", sqrt(acc * (1 - acc) / (N_ITEMS - 1)));
        jr->metrics[t * 3 + 0] = (cs_store_metric){task_names[t], "acc", acc, v[4].value, N_ITEMS};
        jr->metrics[t * 3 + 1] = (cs_store_metric){task_names[t], "acc_bytes", ab, NAN, N_ITEMS};
        jr->metrics[t * 3 + 2] =
                (cs_store_metric){task_names[t], "acc_norm", an, v[3].value, N_ITEMS};
    }
}

/* Wires the pointers once: tasks, metrics, outcomes, the fixed provenance members. */
static void job_result_init(job_result *jr, const world *w)
{
    memset(jr, 0, sizeof(*jr));
    jr->r.version = RESULT_VERSION;
    jr->r.job_key = jr->key;
    jr->r.tasks = jr->tasks;
    jr->r.n_tasks = N_TASKS;
    jr->r.calibration = (char *)(uintptr_t) "null";
    jr->r.engine_version = (char *)(uintptr_t) "calsweep-engine/0.1.0";
    jr->r.host = (char *)(uintptr_t) "bench";
    jr->r.threads = 2;
    for (size_t t = 0; t < N_TASKS; t++) {
        static const char *const names[4] = {"acc", "acc_norm", "acc_bytes", "margin"};
        jr->tasks[t].name = (char *)(uintptr_t)task_names[t];
        jr->tasks[t].has_n = true;
        jr->tasks[t].n = N_ITEMS;
        jr->tasks[t].metrics = jr->values[t];
        jr->tasks[t].n_metrics = 5;
        for (size_t k = 0; k < 4; k++) {
            jr->outcomes[t * 4 + k] = (cs_store_outcome){
                    .task = task_names[t],
                    .metric = names[k],
                    .sample = w->sample[t],
                    .n = N_ITEMS,
                    .data = k < 3 ? (const void *)jr->bits[t][k] : (const void *)jr->margin[t],
                    .bytes = k < 3 ? sizeof(jr->bits[t][k]) : sizeof(jr->margin[t])};
        }
    }
}

/* One batch: up to BATCH claims, then their results, in one transaction. *n_done counts the
 * results stored; CS_ENOENT from the claim ends the loop (*more = false). */
static int fill_batch(cs_store *s, const world *w, job_result *jr, int64_t now, size_t *n_done,
                      bool *more, int64_t *encode_ms)
{
    cs_store_claim held[BATCH];
    cs_store_caps caps = {.worker = "bench-w", .host = "bench", .native = true, .mem_mb = -1};
    cs_err err = {0};
    size_t k = 0;
    cs_rc rc = CS_OK;

    memset(held, 0, sizeof(held));
    if (cs_store_begin(s, &err) != CS_OK) {
        return fail("begin", &err);
    }
    for (; k < BATCH; k++) {
        char worker[32];
        snprintf(worker, sizeof(worker), "bench-%zu", k);
        caps.worker = worker;
        rc = cs_store_claim_job(s, &caps, 600000, now, &held[k], &err);
        if (rc == CS_ENOENT) {
            *more = false;
            break;
        }
        if (rc != CS_OK) {
            return fail("claim", &err);
        }
    }
    for (size_t i = 0; i < k; i++) {
        char worker[32], *text = NULL;
        int64_t t0 = cs_time_mono_ms();
        snprintf(worker, sizeof(worker), "bench-%zu", i);
        job_fill(jr, w, &held[i]);
        if (cs_result_encode(&jr->r, &text, NULL, &err) != CS_OK) {
            return fail("encode", &err);
        }
        *encode_ms += cs_time_mono_ms() - t0;
        rc = cs_store_result_items(s, held[i].job_id, held[i].attempt, worker, held[i].lease_token,
                                   text, jr->metrics, N_TASKS * 3, jr->outcomes, N_TASKS * 4, NULL,
                                   now, NULL, &err);
        free(text);
        cs_store_claim_fini(&held[i]);
        if (rc != CS_OK) {
            return fail("result", &err);
        }
        (*n_done)++;
    }
    if (cs_store_commit(s, &err) != CS_OK) {
        return fail("commit", &err);
    }
    return 0;
}

static int submit(cs_store *s, size_t *n_jobs)
{
    cs_sweep *sw = NULL;
    cs_expander *e = NULL;
    cs_prefetch *pf = NULL;
    cs_expand_opts opts = {.max_jobs = 2000000};
    cs_store_submit_counts c;
    cs_sweep_meta meta;
    cs_err err = {0};
    int rc = 0;

    if (cs_sweep_parse(sweep_text, sizeof(sweep_text) - 1, "bench", &sw, NULL, &err) != CS_OK) {
        return fail("parse", &err);
    }
    if (cs_expand_create(sw, &opts, &e, &err) != CS_OK) {
        cs_sweep_destroy(sw);
        return fail("expand", &err);
    }
    meta.name = sw->name;
    meta.spec = sw->spec;
    meta.spec_hash = sw->spec_hash;
    meta.policy = sw->policy;
    if (cs_prefetch_start(cs_expand_next, e, &pf, &err) != CS_OK ||
        cs_store_submit(s, &meta, cs_prefetch_next, pf, false, cs_time_wall_ms(), &c, &err) !=
                CS_OK) {
        rc = fail("submit", &err);
    } else {
        *n_jobs = c.inserted;
        printf("bench: jobs %zu (%zu baselines)\n", c.inserted, c.baselines);
    }
    cs_prefetch_destroy(pf);
    cs_expand_destroy(e);
    cs_sweep_destroy(sw);
    return rc;
}

/* (a) */
static int build_db(const char *path)
{
    world *w = malloc(sizeof(*w));
    job_result *jr = malloc(sizeof(*jr));
    cs_store *s = NULL;
    cs_err err = {0};
    size_t n_jobs = 0, n_done = 0;
    bool more = true;
    int64_t t0 = cs_time_mono_ms(), c0 = cpu_ms_self(), t_submit, t_fill, t_ckpt, enc_ms = 0;
    int64_t now = cs_time_wall_ms();
    struct stat st;
    int rc = 1;

    if (w == NULL || jr == NULL || world_init(w) != 0) {
        goto done;
    }
    job_result_init(jr, w);
    if (cs_store_open(path, &s, &err) != CS_OK) {
        fail("open", &err);
        goto done;
    }
    if (submit(s, &n_jobs) != 0) {
        goto done;
    }
    t_submit = cs_time_mono_ms() - t0;
    while (more) {
        if (fill_batch(s, w, jr, now, &n_done, &more, &enc_ms) != 0) {
            goto done;
        }
        now++;
    }
    t_fill = cs_time_mono_ms() - t0 - t_submit;
    int64_t tc = cs_time_mono_ms();
    if (cs_store_checkpoint(s, &err) != CS_OK) {
        fail("checkpoint", &err);
        goto done;
    }
    t_ckpt = cs_time_mono_ms() - tc;
    stat(path, &st);
    printf("bench: build_submit_ms %lld ms (parse + expand + insert %zu jobs)\n",
           (long long)t_submit, n_jobs);
    printf("bench: build_results_ms %lld ms (%zu claims + results, batches of %d; of which "
           "generating and encoding the results %lld ms)\n",
           (long long)t_fill, n_done, BATCH, (long long)enc_ms);
    printf("bench: build_rate %.0f results/s\n",
           (double)n_done * 1000.0 / (double)(t_fill > 0 ? t_fill : 1));
    printf("bench: build_checkpoint_ms %lld ms\n", (long long)t_ckpt);
    printf("bench: build_total_ms %lld ms (cpu %lld ms)\n", (long long)(cs_time_mono_ms() - t0),
           (long long)(cpu_ms_self() - c0));
    printf("bench: db_size %.1f MB\n", (double)st.st_size / 1e6);
    rc = n_done == n_jobs ? 0 : 1;
    if (rc != 0) {
        fprintf(stderr, "results_bench: %zu results for %zu jobs\n", n_done, n_jobs);
    }
done:
    cs_store_close(s);
    free(jr);
    free(w);
    return rc;
}

typedef struct run_stat {
    double wall_ms, cpu_ms, rss_mb;
    bool ok;
} run_stat;

/* Runs argv with stdout to out_path (stderr kept), waits at most timeout_s: wall, CPU and peak
 * RSS of the child from wait4. */
static run_stat run_child(char *const argv[], const char *out_path, int timeout_s)
{
    run_stat r = {0};
    struct rusage ru;
    int status = 0;
    int64_t t0 = cs_time_mono_ms();
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            close(fd);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    if (pid < 0) {
        return r;
    }
    for (;;) {
        pid_t got = wait4(pid, &status, WNOHANG, &ru);
        if (got == pid) {
            break;
        }
        if (cs_time_mono_ms() - t0 > (int64_t)timeout_s * 1000) {
            kill(pid, SIGKILL);
            wait4(pid, &status, 0, &ru);
            fprintf(stderr, "results_bench: killed after %d s\n", timeout_s);
            break;
        }
        usleep(2000);
    }
    r.wall_ms = (double)(cs_time_mono_ms() - t0);
    r.cpu_ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
    r.rss_mb = (double)ru.ru_maxrss / 1024.0;
    r.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* (b): one configuration, `runs` times. */
static int time_cli(const char *label, char *const argv[], size_t runs, int timeout_s)
{
    double wall[32], cpu[32], rss = 0;
    char out_path[512];
    struct stat st;
    bool ok = true;

    snprintf(out_path, sizeof(out_path), "/tmp/results_bench.%ld.out", (long)getpid());
    runs = runs > 32 ? 32 : runs;
    for (size_t i = 0; i < runs; i++) {
        run_stat r = run_child(argv, out_path, timeout_s);
        wall[i] = r.wall_ms;
        cpu[i] = r.cpu_ms;
        rss = r.rss_mb > rss ? r.rss_mb : rss;
        ok = ok && r.ok;
        if (!r.ok) {
            runs = i + 1;
            break;
        }
    }
    stat(out_path, &st);
    qsort(wall, runs, sizeof(double), cmp_double);
    qsort(cpu, runs, sizeof(double), cmp_double);
    printf("bench: %s_wall_ms min %.0f median %.0f (%zu runs%s)\n", label, wall[0], wall[runs / 2],
           runs, ok ? "" : ", FAILED");
    printf("bench: %s_cpu_ms min %.0f median %.0f\n", label, cpu[0], cpu[runs / 2]);
    printf("bench: %s_peak_rss %.1f MB\n", label, rss);
    printf("bench: %s_output %lld bytes\n", label, (long long)st.st_size);
    unlink(out_path);
    return ok ? 0 : 1;
}

/* One cs_agg_run on the loaded jobs as the CLI takes it, both parts timed: the slim aggregate
 * and the text table, or (json) the full aggregate and --json's one line, written to /dev/null;
 * then the document freed. */
static int agg_once(const cs_store_agg *a, const char *label, bool ref, size_t resamples, bool json)
{
    cs_agg_opts o;
    cJSON *out = NULL;
    cs_err err = {0};
    FILE *null = fopen("/dev/null", "w");
    int rc = 1;
    cs_agg_opts_init(&o);
    o.resamples = resamples;
    o.ref_axis = ref ? "selector" : NULL;
    o.ref_value = ref ? "{\"name\":\"random\",\"stratified\":false}" : NULL;
    o.headline_task = a->headline_task;
    o.headline_metric = a->headline_metric;
    o.n_headline = a->n_headline;
    o.slim = !json;
    int64_t c0 = cpu_ms_self(), t0 = cs_time_mono_ms(), t1, t2, t3;
    if (null == NULL || cs_agg_run(a->jobs, a->n_jobs, &o, &out, &err) != CS_OK) {
        fail("cs_agg_run", &err);
        goto done;
    }
    t1 = cs_time_mono_ms();
    if (json ? cs_agg_print_json(out, null, &err) != CS_OK
             : cs_agg_print_text(out, null, &err) != CS_OK) {
        fail(json ? "cs_agg_print_json" : "cs_agg_print_text", &err);
        goto done;
    }
    t2 = cs_time_mono_ms();
    cJSON_Delete(out);
    out = NULL;
    t3 = cs_time_mono_ms();
    printf("bench: agg_%s_%s_ms %lld ms (cpu %lld ms, all threads; cs_agg_run %lld ms on the "
           "loaded jobs, %s %lld ms, cJSON_Delete %lld ms; VmHWM %.0f MB)\n",
           label, json ? "json" : "text", (long long)(t3 - t0), (long long)(cpu_ms_self() - c0),
           (long long)(t1 - t0), json ? "cs_agg_print_json" : "cs_agg_print_text",
           (long long)(t2 - t1), (long long)(t3 - t2), proc_hwm_mb());
    rc = 0;
done:
    cJSON_Delete(out);
    if (null != NULL) {
        fclose(null);
    }
    return rc;
}

/* (c) In process, for the breakdown: cs_store_agg_load without the margins, then cs_agg_run on
 * what it loaded and its rendering, as the CLI does them (agg_once), each once. */
static int breakdown(const char *path)
{
    cs_store *s = NULL;
    cs_store_agg a = {0};
    cs_err err = {0};
    int64_t id = 0, t0;
    int rc = 1;

    if (cs_store_open_ro(path, &s, &err) != CS_OK ||
        cs_store_sweep_find(s, SWEEP, &id, &err) != CS_OK) {
        fail("open", &err);
        goto done;
    }
    {
        size_t n_out = 0;
        int64_t c0 = cpu_ms_self();
        t0 = cs_time_mono_ms();
        if (cs_store_agg_load(s, id, false, &a, &err) != CS_OK) {
            fail("cs_store_agg_load", &err);
            goto done;
        }
        for (size_t i = 0; i < a.n_jobs; i++) {
            n_out += a.jobs[i].n_outcomes;
        }
        printf("bench: store_load_ms %lld ms (cpu %lld ms; %zu jobs, %zu outcome rows without "
               "the margins; VmHWM %.0f MB)\n",
               (long long)(cs_time_mono_ms() - t0), (long long)(cpu_ms_self() - c0), a.n_jobs,
               n_out, proc_hwm_mb());
    }
    /* The text table without a reference (no comparison), with one and without the bootstrap
     * (pairing and deltas only), with one and 100 resamples (the bootstrap grows linearly with
     * them); then --json without a reference (last: the full document raises VmHWM). */
    if (agg_once(&a, "no_reference", false, 0, false) != 0 ||
        agg_once(&a, "reference_resamples0", true, 0, false) != 0 ||
        agg_once(&a, "reference_resamples100", true, 100, false) != 0 ||
        agg_once(&a, "no_reference", false, 0, true) != 0) {
        goto done;
    }
    rc = 0;
done:
    cs_store_agg_fini(&a);
    cs_store_close(s);
    return rc;
}

/* Runs fn(path) in a child process and returns its result: the build and the breakdown grow
 * this process's heap, and a child forked later would start with (and report) that RSS. */
static int in_child(int (*fn)(const char *), const char *path)
{
    int status = 0;
    pid_t pid;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int rc = fn(path);
        fflush(stdout);
        _exit(rc);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        return 1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static void remove_db(const char *path)
{
    char p[600];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static void print_machine(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    const char *ct = getenv("OPENBLAS_CORETYPE");
    while (f != NULL && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "model name", 10) == 0) {
            printf("bench: cpu %s", strchr(line, ':') != NULL ? strchr(line, ':') + 2 : line);
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    printf("bench: cores %ld, OPENBLAS_CORETYPE %s\n", sysconf(_SC_NPROCESSORS_ONLN),
           ct != NULL ? ct : "(unset)");
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp", *db = NULL, *bdir = getenv("CS_BUILD_DIR");
    char path[512], cli[512];
    size_t runs = 3;
    int timeout_s = 300, rc = 0;
    bool build_only = false, no_cli = false, full = false;
    struct stat st;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            db = argv[++i];
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout_s = (int)strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--build-only") == 0) {
            build_only = true;
        } else if (strcmp(argv[i], "--no-cli") == 0) {
            no_cli = true;
        } else if (strcmp(argv[i], "--full") == 0) {
            full = true;
        } else {
            fprintf(stderr, "usage: results_bench [--dir DIR] [--db PATH] [--runs N] "
                            "[--timeout S] [--build-only] [--no-cli] [--full]\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    print_machine();
    if (db != NULL) {
        snprintf(path, sizeof(path), "%s", db);
    } else {
        snprintf(path, sizeof(path), "%s/cs_results_bench.%ld.sqlite", dir, (long)getpid());
        remove_db(path);
    }
    if (stat(path, &st) != 0) {
        rc = in_child(build_db, path);
    } else {
        printf("bench: reusing %s (%.1f MB)\n", path, (double)st.st_size / 1e6);
    }
    snprintf(cli, sizeof(cli), "%s/coordinator/calsweep", bdir != NULL ? bdir : "build");
    if (rc == 0 && !build_only && !no_cli) {
        /* The bootstrap runs only for the Delta against a reference row (docs/results.md):
         * random(stratified=false) is every quantized row's reference, same everything else. */
        char ref[] = "selector={\"name\":\"random\",\"stratified\":false}";
        char *a0[] = {cli, "results", SWEEP, "--db", path, "--resamples", "0", NULL};
        char *a1[] = {cli, "results", SWEEP, "--db", path, NULL};
        char *a2[] = {cli, "results", SWEEP, "--db", path, "--json", NULL};
        char *a3[] = {cli,           "results", SWEEP,         "--db", path,
                      "--reference", ref,       "--resamples", "100",  NULL};
        char *a4[] = {cli,           "results", SWEEP,         "--db", path,
                      "--reference", ref,       "--resamples", "1000", NULL};
        char *a5[] = {cli, "results", SWEEP, "--db", path, "--reference", ref, NULL};
        rc |= time_cli("results_resamples0", a0, runs, timeout_s);
        rc |= time_cli("results_default", a1, runs, timeout_s);
        rc |= time_cli("results_default_json", a2, 1, timeout_s);
        rc |= time_cli("results_reference_resamples100", a3, runs, timeout_s);
        rc |= time_cli("results_reference_resamples1000", a4, 1, timeout_s);
        if (full) {
            rc |= time_cli("results_reference_resamples10000", a5, 1, timeout_s);
        }
    }
    if (rc == 0 && !build_only) {
        rc |= in_child(breakdown, path);
    }
    if (db == NULL) {
        remove_db(path);
    }
    return rc;
}
