/* cmd_plan.c - `calsweep plan FILE`: validate and expand a sweep without a daemon, write nothing,
 * and print the total, the counts per axis value, how many jobs are already cached (with --db)
 * and a few example cells. --json gives the same as one JSON object for scripts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sys/stat.h>

#include "cs_cli.h"
#include "cs_expand.h"
#include "cs_json.h"
#include "cs_opt.h"
#include "cs_plan_report.h"
#include "cs_store.h"
#include "cs_sweep.h"

enum { OPT_HELP, OPT_JSON, OPT_LIMIT, OPT_DB, OPT_EXAMPLES };

static const cs_opt plan_options[] = {
        {"help", 'h', CS_OPT_NONE, OPT_HELP, NULL, "show this help and exit"},
        {"json", 0, CS_OPT_NONE, OPT_JSON, NULL, "print one JSON object instead of text"},
        {"limit", 0, CS_OPT_VALUE, OPT_LIMIT, "N",
         "refuse sweeps that may give more than N jobs (1000000)"},
        {"db", 0, CS_OPT_VALUE, OPT_DB, "PATH", "count jobs already cached in this database"},
        {"examples", 0, CS_OPT_VALUE, OPT_EXAMPLES, "N", "example cells to show (5)"},
};

#define N_PLAN_OPTIONS (sizeof(plan_options) / sizeof(plan_options[0]))

static void plan_usage(FILE *out)
{
    fprintf(out,
            "usage: calsweep plan [OPTIONS] FILE\n\n"
            "Validates the sweep FILE and expands it into jobs exactly as submit would, without\n"
            "a daemon and without writing anything. Prints the number of jobs, the count per\n"
            "axis value, how many are cached (with --db) and a few example cells.\n"
            "\noptions:\n");
    cs_opt_print_help(out, plan_options, N_PLAN_OPTIONS);
}

typedef struct plan_opts {
    const char *file;
    const char *db;
    bool json;
    size_t limit;
    size_t n_examples;
} plan_opts;

/* ---- output ------------------------------------------------------------------------------ */

static size_t count_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? (size_t)v->valuedouble : 0;
}

static const char *text_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) || cJSON_IsRaw(v) ? v->valuestring : "null";
}

/* The report (cs_plan_report.h) for people. */
static void print_text(const plan_opts *o, const cs_sweep *s, const cJSON *r)
{
    const cJSON *axes = cJSON_GetObjectItemCaseSensitive(r, "axes"), *v;
    size_t jobs = count_of(r, "jobs"), baselines = count_of(r, "baselines");

    printf("sweep %s: %zu jobs (%zu cells + %zu baselines)\n", s->name, jobs, jobs - baselines,
           baselines);
    printf("  grid: %zu cells, %zu excluded, %zu included, %zu duplicates removed\n",
           count_of(r, "grid_cells"), count_of(r, "excluded"), count_of(r, "included"),
           count_of(r, "duplicates"));
    if (!o->db) {
        printf("  cached: not checked (no --db)\n");
    } else {
        printf("  cached: %zu of %zu (in %s)\n", count_of(r, "cached"), jobs, o->db);
    }
    printf("  policy: max_attempts %d, backoff %gs..%gs, timeout %llds, priority %d, "
           "max_running %d, on_failure %s\n",
           s->policy.max_attempts, s->policy.backoff_base_s, s->policy.backoff_max_s,
           (long long)s->policy.timeout_s, s->policy.priority, s->policy.max_running,
           s->policy.stop_on_failure ? "stop" : "continue");
    for (size_t g = 0; g < s->n_grids; g++) {
        const cJSON *gr = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(r, "grids"), s->grid_names[g]);
        printf("  grids.%s: %zu jobs (%zu more shared with an earlier sub-grid); %zu cells, %zu "
               "excluded, %zu included, %zu duplicates removed\n",
               s->grid_names[g], count_of(gr, "jobs"), count_of(gr, "shared"),
               count_of(gr, "grid_cells"), count_of(gr, "excluded"), count_of(gr, "included"),
               count_of(gr, "duplicates"));
    }
    printf("\njobs per axis value:\n");
    const cs_sweep *first = s->n_grids ? s->grids[0] : s;
    for (const cJSON *ax = axes ? axes->child : NULL; ax; ax = ax->next) {
        bool implicit = false;
        for (size_t a = 0; a < first->n_axes; a++) {
            implicit = implicit ||
                       (first->axes[a].implicit && strcmp(first->axes[a].name, ax->string) == 0);
        }
        printf("  %s%s\n", ax->string, implicit && !s->n_grids ? " (default)" : "");
        cJSON_ArrayForEach(v, ax)
        {
            bool na = cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(v, "value"));
            printf("    %-40s %zu\n", na ? "(does not apply)" : text_of(v, "text"),
                   count_of(v, "jobs"));
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(r, "examples");
    if (cJSON_GetArraySize(v) > 0) {
        printf("\nexample cells:\n");
    }
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(r, "examples"))
    {
        printf("  %.12s%s %s\n", text_of(v, "key"),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "baseline")) ? " baseline" : "",
               text_of(v, "axes"));
    }
}

static cs_rc plan_cached(void *ctx, const char *key, bool *hit, cs_err *err)
{
    return cs_store_key_cached(ctx, key, hit, err);
}

/* ---- the command ------------------------------------------------------------------------- */

/* The sweep file, checked and loaded; diagnostics printed. NULL on failure. */
static cs_sweep *load_sweep(const char *file)
{
    cs_diags diags;
    cs_err err = {0};
    cs_sweep *s = NULL;
    cs_rc rc;

    cs_diags_init(&diags);
    rc = cs_sweep_load(file, &s, &diags, &err);
    if (rc == CS_OK) {
        cs_sweep_check_files(s, &diags);
    }
    cs_diags_print(&diags, NULL, file, stderr);
    if (rc != CS_OK) {
        if (diags.len == 0) {
            fprintf(stderr, "calsweep plan: %s\n", err.msg);
        } else {
            fprintf(stderr, "calsweep plan: %s: %zu error%s\n", file, diags.n_errors,
                    diags.n_errors == 1 ? "" : "s");
        }
    }
    cs_diags_fini(&diags);
    return rc == CS_OK ? s : NULL;
}

/* The database of --db, opened read-only (cs_store_open_ro never creates or migrates a file).
 * NULL on failure, after a message. */
static cs_store *open_cache(const char *db)
{
    struct stat st;
    cs_store *store = NULL;
    cs_err err = {0};
    if (stat(db, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "calsweep plan: --db %s: no database there (plan never creates one)\n", db);
        return NULL;
    }
    if (cs_store_open_ro(db, &store, &err) != CS_OK) {
        fprintf(stderr, "calsweep plan: --db %s: %s\n", db, err.msg);
        return NULL;
    }
    return store;
}

static int run_plan(const plan_opts *o)
{
    cs_err err = {0};
    cs_sweep *s = NULL;
    cs_expander *e = NULL;
    cs_expand_opts eo = {.max_jobs = o->limit};
    cs_plan_report_opts ro = {.n_examples = o->n_examples, .raw_texts = true};
    cs_store *store = NULL;
    cJSON *report = NULL;
    char *text = NULL;
    int code = CS_EXIT_FAIL;

    s = load_sweep(o->file);
    if (!s) {
        goto out;
    }
    if (cs_expand_create(s, &eo, &e, &err) != CS_OK) {
        fprintf(stderr, "calsweep plan: %s: %s\n", o->file, err.msg);
        goto out;
    }
    if (o->db) {
        store = open_cache(o->db);
        if (!store) {
            goto out;
        }
        ro.cached = plan_cached;
        ro.cached_ctx = store;
    }
    if (cs_plan_report_build(s, e, &ro, &report, &err) != CS_OK) {
        fprintf(stderr, "calsweep plan: %s: %s\n", o->file, err.msg);
        goto out;
    }
    if (!o->json) {
        print_text(o, s, report);
        code = CS_EXIT_OK;
    } else if ((text = cJSON_PrintUnformatted(report)) == NULL) {
        fprintf(stderr, "calsweep plan: out of memory\n");
    } else {
        printf("%s\n", text);
        code = CS_EXIT_OK;
    }
out:
    free(text);
    cJSON_Delete(report);
    cs_store_close(store);
    cs_expand_destroy(e);
    cs_sweep_destroy(s);
    return code;
}

int cs_cmd_plan(const cs_client *base, int argc, char **argv)
{
    plan_opts o = {.limit = 0, .n_examples = 5};
    cs_opt_parser p;
    cs_err err = {0};
    int id;
    const char *arg;
    int64_t v;
    cs_rc rc;

    (void)base; /* plan works without calsweepd */
    cs_opt_init(&p, argc, argv, 1);
    while ((rc = cs_opt_next(&p, plan_options, N_PLAN_OPTIONS, &id, &arg, &err)) == CS_OK) {
        switch (id) {
        case OPT_HELP:
            plan_usage(stdout);
            return CS_EXIT_OK;
        case OPT_JSON:
            o.json = true;
            break;
        case OPT_LIMIT:
            if (cs_parse_i64(arg, 1, INT64_C(1000000000), &v, "--limit", &err) != CS_OK) {
                fprintf(stderr, "calsweep plan: %s\n", err.msg);
                return CS_EXIT_USAGE;
            }
            o.limit = (size_t)v;
            break;
        case OPT_EXAMPLES:
            if (cs_parse_i64(arg, 0, 1000, &v, "--examples", &err) != CS_OK) {
                fprintf(stderr, "calsweep plan: %s\n", err.msg);
                return CS_EXIT_USAGE;
            }
            o.n_examples = (size_t)v;
            break;
        case OPT_DB:
            o.db = arg;
            break;
        case CS_OPT_POSITIONAL:
            if (o.file) {
                fprintf(stderr, "calsweep plan: expected one sweep file, got '%s' and '%s'\n",
                        o.file, arg);
                return CS_EXIT_USAGE;
            }
            o.file = arg;
            break;
        default:
            return CS_EXIT_USAGE;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep plan: %s (see calsweep plan --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    if (!o.file) {
        fprintf(stderr, "calsweep plan: expected a sweep file (see calsweep plan --help)\n");
        return CS_EXIT_USAGE;
    }
    return run_plan(&o);
}
