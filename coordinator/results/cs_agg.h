/* cs_agg.h - the results of a sweep: aggregation over seeds, cross-task balance (M5), average
 * accuracy (M4) and paired significance against a reference row (issue 19).
 *
 * Why one module: the CLI (`calsweep results`), calsweepd (the RESULTS message), the exports and
 * the tests must print the same numbers, so they all hand the sweep's jobs to cs_agg_run and render
 * its JSON. The module needs only common/ (no SQLite, no nng): the caller loads the jobs (the store
 * for the CLI and the daemon, fixtures in tests) and borrows them to cs_agg_run.
 *
 * What it computes (docs/results.md defines every field of the output):
 *   - rows: the jobs grouped by every axis except "seed" (or by opts->by); baseline jobs
 *     (algorithm none) form their own rows. Per row and task: the seeds present, and per metric
 *     the mean, population std and standard error across seeds, and the items per seed;
 *   - the average accuracy (M4, unweighted mean of the tasks' headline metrics; perplexity tasks
 *     are left out) and the cross-task balance against the baseline of the same model and eval
 *     suite (M5: std_ret, worst_drop, min_ret, std_acc), retention and delta against it;
 *   - with opts->ref_axis: the delta of every row against its reference row, per task and for the
 *     average, with a paired bootstrap over items (and seeds) giving a 95 % percentile interval
 *     and a two-sided p-value, Holm-Bonferroni adjusted across the comparisons of the table;
 *   - flags: missing seeds, failed/lost/cancelled jobs, unfinished jobs (partial), results
 *     without items (version 1), unpaired samples. A flagged comparison is never tested.
 *
 * Threads: cs_agg_run may use 2 threads for the bootstrap; it is reentrant (no global state).
 */
#ifndef CS_COORDINATOR_RESULTS_CS_AGG_H
#define CS_COORDINATOR_RESULTS_CS_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "cs_err.h"

/* One metric value of a job's result: metrics.TASK.METRIC, its standard error (the result's
 * METRIC_stderr, 0 when absent) and n (the task's items scored). */
typedef struct cs_agg_metric {
    const char *task, *metric;
    double value, stderr_;
    int64_t n;
} cs_agg_metric;

/* The per-item outcomes of one task and metric (result.json v2 "items"): bits for a binary metric
 * (acc, acc_norm, acc_bytes, exact_match, exact_match_flex: ceil(n/8) bytes, item i is bit (i & 7)
 * of byte i >> 3), values for a real one (margin, window_loss: n floats). Exactly one is non-NULL.
 * sample: the hex SHA-256 of the ordered item sample; two outcomes pair item by item iff their
 * samples are equal. */
typedef struct cs_agg_outcome {
    const char *task, *metric, *sample;
    size_t n;
    const uint8_t *bits;
    const float *values;
} cs_agg_outcome;

/* One job of the sweep. Everything is borrowed for the duration of cs_agg_run. */
typedef struct cs_agg_job {
    int64_t job_id;
    const char *state; /* "pending", "leased", "running", "done", "failed", "lost", "cancelled" */
    bool baseline;     /* the automatic baseline job (algorithm none) of its model and eval */
    const char *axes;  /* canonical JSON object of the cell's axis values (with members NULL) */
    /* Optional, instead of axes: the axes object's members in its order, each the canonical text
     * '"name":value' (as the store's fragment table holds it). Jobs that share a member should
     * share the pointer (the aggregator parses each distinct pointer once). NULL: axes is read. */
    const char *const *members;
    size_t n_members;
    const char *model, *eval; /* model and eval-suite names (baseline matching, M5) */
    int result_version;       /* 0 no result, 1 no items, 2 with items */
    const cs_agg_metric *metrics;
    size_t n_metrics;
    const cs_agg_outcome *outcomes;
    size_t n_outcomes;
} cs_agg_job;

/* The default number of bootstrap resamples. */
#define CS_AGG_RESAMPLES 10000u

typedef struct cs_agg_opts {
    const char *const *by; /* axes to group by; n_by 0 = every axis but seed */
    size_t n_by;
    const char *metric;               /* NULL: each task's headline metric */
    const char *ref_axis, *ref_value; /* --reference AXIS=VALUE, or both NULL */
    const char *const *tasks;         /* tasks to report; n_tasks 0 = all */
    size_t n_tasks;
    const char *const *headline_task;   /* headline metric per task (the sweep's eval suite); */
    const char *const *headline_metric; /* others: "acc" ("exact_match" without acc; "ppl") */
    size_t n_headline;
    size_t resamples; /* bootstrap resamples (CS_AGG_RESAMPLES); 0 = no bootstrap */
    /* resamples of the bootstrap over items of the average of each row of one done job
     * (average.item_ci, docs/results.md "Intervals over items"); 0 = none (the default) */
    size_t item_resamples;
    uint64_t seed;    /* bootstrap seed */
    unsigned threads; /* bootstrap threads: 0 = 2 (the default), 1 = none */
    bool slim;        /* the slim aggregate: only what cs_agg_print_text reads (docs/results.md
                         "Slim form"), a fraction of the full one's size and time */
} cs_agg_opts;

/* Zero-fills o and sets resamples = CS_AGG_RESAMPLES. */
void cs_agg_opts_init(cs_agg_opts *o);

/* Aggregates the n jobs of one sweep (any order; any states). o may be NULL (the defaults).
 * CS_OK with *out = the aggregate (returns owned, free with cJSON_Delete; docs/results.md).
 * CS_EINVAL for an unknown axis in opts->by or opts->ref_axis, an unknown task or metric, a
 * reference value that matches no row ("--reference selector=randm: no row has selector=randm;
 * values: random, kmeans"), with the value and the choices in err; CS_ENOMEM. A row without a
 * single reference row (none or several candidates) is flagged no_reference, not an error.
 * A sweep with no jobs gives an aggregate with no rows. */
cs_rc cs_agg_run(const cs_agg_job *jobs, size_t n, const cs_agg_opts *o, cJSON **out, cs_err *err);

/* The headline metric of task as cs_agg_run chooses it: o->metric when set; else the headline
 * table's (o->headline_task/metric); else "ppl" for a perplexity task ("ppl:NAME"),
 * "exact_match" for a task whose results have exact_match but no acc, and "acc" otherwise.
 * has_acc, has_exact_match: whether some job's metrics of the task have them. The string is o's
 * or a literal. The comparisons read the per-item outcomes of these metrics only. */
const char *cs_agg_headline(const cs_agg_opts *o, const char *task, bool has_acc,
                            bool has_exact_match);

/* Renders an aggregate of cs_agg_run (full or slim: the same table) as an aligned text table (rows
 * = groups, columns = tasks, average, balance, delta with CI and the Holm significance mark *, **,
 * ***, and the row's flags), after a line naming the reference. CS_EINVAL for a document that is
 * not an aggregate; CS_EIO when writing fails. */
cs_rc cs_agg_print_text(const cJSON *agg, FILE *out, cs_err *err);

/* The text table's short row labels of an aggregate (docs/results.md "Text table"): *common
 * (owned, NULL when no axis is the same in every row) the axes shared by all rows
 * ("eval=default seq_len=128"), and (*label)[i] (owned, free with cs_agg_labels_fini) the label of
 * row i ("algorithm=gptq(bits=4) source=prose", "baseline model=tb-llama"); *n the rows.
 * CS_EINVAL for a document that is not an aggregate, CS_ENOMEM. */
cs_rc cs_agg_short_labels(const cJSON *agg, char **common, char ***label, size_t *n, cs_err *err);
void cs_agg_labels_fini(char *common, char **label, size_t n);

/* The short form of one axis's values, as the text table's labels show them: diffs =
 * cs_agg_value_diffs(values, n) over every value of the axis that a table shows ({name: {member:
 * true}}: per object name, the members other than "name" whose values differ among the values of
 * that name; owned, cJSON_Delete; NULL when memory runs out), then cs_agg_value_short appends one
 * of them to b: a string as is, an object with a name as name(member=value,...) with only the
 * members of diffs[name] ("gptq(bits=4)", or "gptq" when every gptq value is alike), anything
 * else as its canonical JSON. Distinct objects of one name get distinct texts. CS_ENOMEM. */
struct cs_buf;
cJSON *cs_agg_value_diffs(const cJSON *const *values, size_t n);
cs_rc cs_agg_value_short(struct cs_buf *b, const cJSON *v, const cJSON *diffs);

/* Writes an aggregate (any cJSON tree: the full document, slim, or one that came from calsweepd)
 * to out as cJSON_PrintUnformatted's text followed by a newline, byte for byte (`calsweep results
 * --json`), without holding the text in memory and with cheaper number formatting. CS_EINVAL for
 * NULL or an item cJSON would not print (invalid, raw without text); CS_EIO when writing fails.
 * On error part of the text may have been written. */
cs_rc cs_agg_print_json(const cJSON *agg, FILE *out, cs_err *err);

/* The building blocks, exported for tests and benchmarks (cs_boot.c). */

/* A bootstrap estimate of a paired difference: delta is the observed value, [lo, hi] the 95 %
 * percentile interval, p the two-sided p-value (docs/results.md "p-value"). */
typedef struct cs_agg_ci {
    double delta, lo, hi, p;
} cs_agg_ci;

/* One cell of a paired bootstrap: the item differences of one unit (a pair of seeds, or all the
 * jobs of both sides) on one task, as a histogram: count[c] of the n items have the difference
 * value[c] (for one job per side: -1, 0, +1). */
typedef struct cs_agg_hist {
    size_t n_cat;
    const uint32_t *count;
    const double *value;
} cs_agg_hist;

/* The paired bootstrap of docs/results.md. cells[u * n_tasks + t] is unit u, task t. The statistic
 * is the mean over tasks of the mean over units of the unit's mean item difference. A resample
 * draws n_units units with replacement (when n_units > 1; the same draw for every task), then for
 * each drawn unit and task a multinomial draw of n items over its categories with the observed
 * frequencies (equivalent to resampling item indices; cs_boot_law.c). It is cs_agg_boot_tasks
 * with the average over the tasks (streams derived from `seed`), so equal inputs give equal
 * results. out->delta is the observed statistic. CS_EINVAL for no cells, a cell with n 0 or
 * resamples 0; CS_ENOMEM. */
cs_rc cs_agg_boot(const cs_agg_hist *cells, size_t n_units, size_t n_tasks, size_t resamples,
                  uint64_t seed, cs_agg_ci *out, cs_err *err);

/* The per-thread state of the row bootstraps: a cache of the tabulated laws of cells (cells of
 * equal counts share one) and scratch. Not thread-safe: one per thread. NULL when memory runs
 * out. */
typedef struct cs_agg_boot_cache cs_agg_boot_cache;
cs_agg_boot_cache *cs_agg_boot_cache_new(void);
void cs_agg_boot_cache_destroy(cs_agg_boot_cache *c); /* NULL-safe */

/* The bootstraps of one row against its reference, every task at once: cells[t][u] is task t,
 * unit u. Each resample draws the units once (stream unit_seed, when n_units > 1) and then every
 * task's items with the task's own stream (task_seed[t]), so a task's result does not depend on
 * the other tasks; out[t] is task t's estimate (as cs_agg_boot of its cells alone), and with
 * with_avg out[n_tasks] is that of the mean over the tasks, from the same resamples. cache: the
 * calling thread's (required). Errors as cs_agg_boot. */
cs_rc cs_agg_boot_tasks(const cs_agg_hist *const *cells, size_t n_units, size_t n_tasks,
                        bool with_avg, size_t resamples, uint64_t unit_seed,
                        const uint64_t *task_seed, cs_agg_boot_cache *cache, cs_agg_ci *out,
                        cs_err *err);

/* Holm-Bonferroni: with the n p-values sorted ascending p_(1) <= ... <= p_(n) (ties in index
 * order), the adjusted value of p_(j) is min(1, max over k <= j of (n - k + 1) * p_(k)); written
 * to adj at the index of p_(j). p and adj may alias. CS_ENOMEM. */
cs_rc cs_agg_holm(const double *p, size_t n, double *adj, cs_err *err);

/* Two-sided p-value from a bootstrap distribution: with `le` resamples <= 0 and `ge` resamples
 * >= 0 out of b, p = min(1, 2 * min(le + 1, ge + 1) / (b + 1)). */
double cs_agg_pvalue(size_t le, size_t ge, size_t b);

#endif
