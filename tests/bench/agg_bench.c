/* agg_bench.c - the results module in memory (no database): a synthetic sweep of JOBS jobs
 * (default 100,000: 10 algorithms x 10 selectors x n_samples values x 3 seeds, plus the baseline),
 * TASKS tasks of ITEMS items each (default 5 x 1,000) with random per-item outcomes, aggregated
 * without a reference (no bootstrap) and then with --reference selector=random (RESAMPLES
 * resamples, default 10,000, on 2 threads). Prints the seconds of each run and the comparisons.
 *
 *   agg_bench [JOBS [TASKS [ITEMS [RESAMPLES]]]]
 *
 * BENCHMARKS.md's 100,000-job number with the database is H4's tests/bench; this one isolates
 * cs_agg_run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cs_agg.h"
#include "cs_alloc.h"
#include "cs_rng.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *const task_names[] = {"arc", "hellaswag", "winogrande", "boolq", "mmlu",
                                         "t6",  "t7",        "t8",         "t9",    "t10"};

int main(int argc, char **argv)
{
    size_t n_jobs = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    size_t n_tasks = argc > 2 ? strtoul(argv[2], NULL, 10) : 5;
    size_t n_items = argc > 3 ? strtoul(argv[3], NULL, 10) : 1000;
    size_t resamples = argc > 4 ? strtoul(argv[4], NULL, 10) : CS_AGG_RESAMPLES;
    n_tasks = n_tasks > 10 ? 10 : (n_tasks == 0 ? 1 : n_tasks);
    size_t bytes = (n_items + 7) / 8;
    cs_agg_job *jobs = cs_calloc_array(n_jobs, sizeof(*jobs));
    cs_agg_metric *metrics = cs_calloc_array(n_jobs * n_tasks, sizeof(*metrics));
    cs_agg_outcome *outs = cs_calloc_array(n_jobs * n_tasks, sizeof(*outs));
    uint8_t *bits = cs_alloc_array(n_jobs * n_tasks, bytes);
    char **axes = cs_calloc_array(n_jobs, sizeof(*axes));
    if (jobs == NULL || metrics == NULL || outs == NULL || bits == NULL || axes == NULL) {
        fprintf(stderr, "agg_bench: out of memory\n");
        return 1;
    }
    cs_rng r;
    cs_rng_seed(&r, 1);
    double t0 = now();
    for (size_t j = 0; j < n_jobs; j++) {
        size_t cell = j == 0 ? 0 : j - 1, seed = cell % 3, sel = (cell / 3) % 10;
        size_t alg = (cell / 30) % 10, ns = cell / 300;
        char buf[256];
        if (j == 0) {
            snprintf(buf, sizeof(buf),
                     "{\"algorithm\":{\"name\":\"none\"},\"n_samples\":null,"
                     "\"seed\":null,\"selector\":null}");
        } else if (sel == 0) {
            snprintf(buf, sizeof(buf),
                     "{\"algorithm\":{\"bits\":%zu,\"name\":\"gptq\"},\"n_samples\":%zu,"
                     "\"seed\":%zu,\"selector\":\"random\"}",
                     2 + alg, 16 * (ns + 1), seed);
        } else {
            snprintf(buf, sizeof(buf),
                     "{\"algorithm\":{\"bits\":%zu,\"name\":\"gptq\"},\"n_samples\":%zu,"
                     "\"seed\":%zu,\"selector\":\"%s%zu\"}",
                     2 + alg, 16 * (ns + 1), seed, "sel", sel);
        }
        axes[j] = cs_strdup(buf);
        double p = 0.5 + 0.02 * (double)sel;
        for (size_t t = 0; t < n_tasks; t++) {
            uint8_t *b = bits + (j * n_tasks + t) * bytes;
            memset(b, 0, bytes);
            size_t sum = 0;
            for (size_t i = 0; i < n_items; i++) {
                if (cs_rng_uniform(&r) < p) {
                    b[i >> 3] |= (uint8_t)(1u << (i & 7));
                    sum++;
                }
            }
            outs[j * n_tasks + t] = (cs_agg_outcome){task_names[t], "acc", "s", n_items, b, NULL};
            metrics[j * n_tasks + t] = (cs_agg_metric){
                    task_names[t], "acc", (double)sum / (double)n_items, 0.0, (int64_t)n_items};
        }
        jobs[j] = (cs_agg_job){.job_id = (int64_t)j + 1,
                               .state = "done",
                               .baseline = j == 0,
                               .axes = axes[j],
                               .model = "m",
                               .eval = "e",
                               .result_version = 2,
                               .metrics = &metrics[j * n_tasks],
                               .n_metrics = n_tasks,
                               .outcomes = &outs[j * n_tasks],
                               .n_outcomes = n_tasks};
    }
    printf("agg_bench: %zu jobs, %zu tasks x %zu items: built in %.2f s\n", n_jobs, n_tasks,
           n_items, now() - t0);
    cs_agg_opts o;
    cs_agg_opts_init(&o);
    cs_err err = {0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            o.ref_axis = "selector";
            o.ref_value = "random";
            o.resamples = resamples;
        }
        cJSON *doc = NULL;
        t0 = now();
        cs_rc rc = cs_agg_run(jobs, n_jobs, &o, &doc, &err);
        double dt = now() - t0;
        if (rc != CS_OK) {
            fprintf(stderr, "agg_bench: %s\n", err.msg);
            return 1;
        }
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, "comparisons");
        printf("agg_bench: %s: %.2f s, %d rows, %.0f comparisons tested (%zu resamples)\n",
               pass ? "--reference selector=random" : "no reference", dt,
               cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(doc, "rows")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "tested")),
               pass ? resamples : 0);
        cJSON_Delete(doc);
    }
    cs_free_each((void *const *)axes, n_jobs);
    cs_free_each((void *const[]){jobs, metrics, outs, bits, axes}, 5);
    return 0;
}
