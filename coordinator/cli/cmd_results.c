/* cmd_results.c - `calsweep results SWEEP`: the sweep's jobs grouped over seeds, the average
 * accuracy and cross-task balance against the unquantized baseline, and paired significance
 * against a reference row (coordinator/results/cs_agg.h; fields in docs/results.md).
 *
 * With --db the database is read directly (opened read-only, no daemon needed, as `plan --db`);
 * otherwise calsweepd answers a RESULTS message with the same aggregate (cs_store_results on both
 * sides). Text output is cs_agg_print_text's table, rendered from the slim aggregate (only the
 * members the table reads; docs/results.md "Slim form"); --json prints the full aggregate as one
 * line (cs_agg_print_json: cJSON_PrintUnformatted's text, streamed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cs_agg.h"
#include "cs_cli.h"
#include "cs_store.h"

enum { OPT_DB, OPT_BY, OPT_METRIC, OPT_REFERENCE, OPT_TASK, OPT_JSON, OPT_RESAMPLES, OPT_SEED };

#define MAX_LIST CS_PROTO_MAX_RESULTS_LIST

typedef struct res_args {
    const char *sweep, *db, *metric, *reference;
    char by_text[CS_LIMIT_NAME_BYTES * 4];
    const char *by[MAX_LIST];
    size_t n_by;
    const char *tasks[MAX_LIST];
    size_t n_tasks;
    int64_t resamples, seed;
    bool json;
} res_args;

/* --by AXES: comma-separated axis names (copied: the list points into by_text). */
static int take_by(res_args *a, const char *arg)
{
    if (strlen(arg) >= sizeof(a->by_text)) {
        fprintf(stderr, "calsweep results: --by: too long\n");
        return CS_EXIT_USAGE;
    }
    snprintf(a->by_text, sizeof(a->by_text), "%s", arg);
    a->n_by = 0;
    for (char *p = a->by_text, *next; p; p = next) {
        next = strchr(p, ',');
        if (next) {
            *next++ = '\0';
        }
        if (*p == '\0' || a->n_by == MAX_LIST) {
            fprintf(stderr,
                    "calsweep results: --by %s: expected 1..%d axis names separated by "
                    "commas, e.g. algorithm,selector\n",
                    arg, MAX_LIST);
            return CS_EXIT_USAGE;
        }
        a->by[a->n_by++] = p;
    }
    return CS_EXIT_OK;
}

static int res_opt(void *ctx, int id, const char *arg)
{
    res_args *a = ctx;
    cs_err err = {0};
    cs_rc rc = CS_OK;
    switch (id) {
    case OPT_DB:
        a->db = arg;
        break;
    case OPT_BY:
        return take_by(a, arg);
    case OPT_METRIC:
        a->metric = arg;
        break;
    case OPT_REFERENCE:
        a->reference = arg;
        break;
    case OPT_TASK:
        rc = cs_opt_append(a->tasks, &a->n_tasks, MAX_LIST, arg, "--task", &err);
        break;
    case OPT_JSON:
        a->json = true;
        break;
    case OPT_RESAMPLES:
        rc = cs_parse_i64(arg, 0, CS_LIMIT_RESAMPLES, &a->resamples, "--resamples", &err);
        break;
    case OPT_SEED:
        rc = cs_parse_i64(arg, 0, CS_LIMIT_SEED, &a->seed, "--seed", &err);
        break;
    default:
        if (a->sweep) {
            fprintf(stderr, "calsweep results: expected one sweep, got '%s' and '%s'\n", a->sweep,
                    arg);
            return CS_EXIT_USAGE;
        }
        a->sweep = arg;
        break;
    }
    if (rc != CS_OK) {
        fprintf(stderr, "calsweep results: %s\n", err.msg);
        return CS_EXIT_USAGE;
    }
    return CS_EXIT_OK;
}

/* The aggregate from the database at path (read-only). */
static int from_db(const res_args *a, cJSON **agg)
{
    struct stat st;
    cs_store *s = NULL;
    cs_err err = {0};
    cs_store_results_req q = {.by = a->by,
                              .n_by = a->n_by,
                              .metric = a->metric,
                              .reference = a->reference,
                              .tasks = a->tasks,
                              .n_tasks = a->n_tasks,
                              .resamples = (size_t)a->resamples,
                              .seed = (uint64_t)a->seed,
                              .slim = !a->json};
    if (stat(a->db, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "calsweep results: --db %s: no database there\n", a->db);
        return CS_EXIT_FAIL;
    }
    cs_rc rc = cs_store_open_ro(a->db, &s, &err);
    if (rc == CS_OK) {
        rc = cs_store_results(s, a->sweep, &q, agg, &err);
    }
    cs_store_close(s);
    if (rc != CS_OK) {
        fprintf(stderr, "calsweep results: %s\n", err.msg);
        return CS_EXIT_FAIL;
    }
    return CS_EXIT_OK;
}

/* The aggregate from calsweepd (RESULTS). */
static int from_daemon(const cs_client *c, const res_args *a, cJSON **agg)
{
    cs_msg req;
    cs_msg_init(&req, CS_MSG_RESULTS);
    req.results.sweep = a->sweep;
    req.results.by = (char **)(uintptr_t)a->by; /* borrowed for sending (cs_client_borrow) */
    req.results.n_by = a->n_by;
    req.results.metric = a->metric;
    req.results.reference = a->reference;
    req.results.tasks = (char **)(uintptr_t)a->tasks;
    req.results.n_tasks = a->n_tasks;
    req.results.resamples = a->resamples;
    req.results.seed = a->seed;
    req.results.slim = !a->json;
    return cs_client_call_long(c, "results", &req, NULL, CS_CLIENT_LONG_MS, agg);
}

int cs_cmd_results(const cs_client *base, int argc, char **argv)
{
    static const char usage[] =
            "usage: calsweep results [OPTIONS] SWEEP\n\n"
            "Aggregates the done jobs of SWEEP (name or id) over seeds: per group of axis values\n"
            "and task the seeds, mean, std and standard error of each metric, the average\n"
            "accuracy of the tasks' headline metrics, retention and balance against the\n"
            "unquantized baseline (std_ret, worst_drop, min_ret, std_acc) and, with --reference,\n"
            "the delta of every row against its reference row with a paired bootstrap 95 % CI\n"
            "and Holm-adjusted p-value. Works while the sweep runs (partial groups are flagged).\n"
            "Reads the database directly with --db, else asks calsweepd. Fields: "
            "docs/results.md.\n";
    static const cs_opt own[] = {
            {"db", 0, CS_OPT_VALUE, OPT_DB, "PATH", "read this database (read-only, no daemon)"},
            {"by", 0, CS_OPT_VALUE, OPT_BY, "AXES",
             "group by these axes (comma-separated); default: every axis but seed"},
            {"metric", 0, CS_OPT_VALUE, OPT_METRIC, "M",
             "report M for every task (default: each "
             "task's headline metric)"},
            {"reference", 0, CS_OPT_VALUE, OPT_REFERENCE, "AXIS=VALUE",
             "compare every row with the row that has AXIS=VALUE and the same other axes"},
            {"task", 0, CS_OPT_VALUE, OPT_TASK, "T", "report only task T (repeatable)"},
            {"json", 0, CS_OPT_NONE, OPT_JSON, NULL, "print the aggregate as one JSON object"},
            {"resamples", 0, CS_OPT_VALUE, OPT_RESAMPLES, "N",
             "bootstrap resamples (default 10000; 0 = no bootstrap)"},
            {"seed", 0, CS_OPT_VALUE, OPT_SEED, "N", "bootstrap seed (default 0)"},
    };
    res_args a = {.resamples = CS_AGG_RESAMPLES};
    cs_client c;
    cJSON *agg = NULL;
    cs_err err = {0};
    bool done;
    int code = cs_cli_parse(base, &c, "results", usage, argc, argv, own, sizeof(own) / sizeof(*own),
                            res_opt, &a, &done);
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    if (!a.sweep) {
        fprintf(stderr, "calsweep results: expected a sweep (see calsweep results --help)\n");
        return CS_EXIT_USAGE;
    }
    code = a.db ? from_db(&a, &agg) : from_daemon(&c, &a, &agg);
    if (code != CS_EXIT_OK) {
        cJSON_Delete(agg);
        return code;
    }
    if (a.json ? cs_agg_print_json(agg, stdout, &err) != CS_OK
               : cs_agg_print_text(agg, stdout, &err) != CS_OK) {
        fprintf(stderr, "calsweep results: %s\n", err.msg);
        code = CS_EXIT_FAIL;
    }
    cJSON_Delete(agg);
    return code;
}
