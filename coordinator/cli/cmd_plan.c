/* cmd_plan.c - `calsweep plan FILE`: validate and expand a sweep without a daemon, write nothing,
 * and print the total, the counts per axis value, how many jobs are already cached (with --db)
 * and a few example cells. --json gives the same as one JSON object for scripts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sys/stat.h>

#include "cs_alloc.h"
#include "cs_cli.h"
#include "cs_expand.h"
#include "cs_json.h"
#include "cs_opt.h"
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

/* ---- cache lookups: the store's read-only API ------------------------------------------- */

/* "Which of these job keys already have a good result?" against the database at a path, opened
 * read-only (cs_store_open_ro never creates or migrates a file), one lookup per key. */
typedef cs_store plan_cache;

static cs_rc plan_cache_open(const char *db_path, plan_cache **out, cs_err *err)
{
    return cs_store_open_ro(db_path, out, err);
}

static cs_rc plan_cache_has(plan_cache *pc, const char *key, bool *hit, cs_err *err)
{
    return cs_store_key_cached(pc, key, hit, err);
}

static void plan_cache_close(plan_cache *pc)
{
    cs_store_close(pc);
}

/* ---- counting per axis value ------------------------------------------------------------- */

typedef struct value_count {
    const cs_axis_value *val; /* NULL: the axis does not apply to the job */
    size_t count;
} value_count;

/* One slot of an axis's label table: where the value with that label is counted. */
typedef struct label_slot {
    const char *label; /* borrowed from the sweep or the expander's include values; NULL = free */
    size_t at;         /* < n_grid: grid[at]; else other[at - n_grid] */
} label_slot;

typedef struct axis_counts {
    value_count *grid; /* one per grid value, in order */
    size_t n_grid;
    value_count *other; /* include-only values and n/a, in first-seen order */
    size_t n_other, cap_other;
    size_t na;         /* index in other of "does not apply", SIZE_MAX until seen */
    label_slot *table; /* open addressing by label: a value is found in O(1), not by a scan
                          (100,000 include cells took minutes) */
    size_t cap, used;  /* table slots (a power of two), slots in use */
} axis_counts;

static size_t label_hash(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h = (h ^ *p) * 1099511628211u;
    }
    return (size_t)h;
}

/* The slot of label, or the free slot where it goes. */
static label_slot *label_find(const axis_counts *ac, const char *label)
{
    size_t i = label_hash(label) & (ac->cap - 1);
    while (ac->table[i].label && strcmp(ac->table[i].label, label) != 0) {
        i = (i + 1) & (ac->cap - 1);
    }
    return &ac->table[i];
}

/* Records that label is counted at `at` (the first value with a label keeps it). */
static cs_rc label_put(axis_counts *ac, const char *label, size_t at)
{
    label_slot *sl;
    if (2 * (ac->used + 1) > ac->cap) {
        size_t cap = ac->cap ? 2 * ac->cap : 64;
        label_slot *old = ac->table, *grown = cs_calloc_array(cap, sizeof(*grown));
        size_t old_cap = ac->cap;
        if (!grown) {
            return CS_ENOMEM;
        }
        ac->table = grown;
        ac->cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].label) {
                *label_find(ac, old[i].label) = old[i];
            }
        }
        free(old);
    }
    sl = label_find(ac, label);
    if (!sl->label) {
        sl->label = label;
        sl->at = at;
        ac->used++;
    }
    return CS_OK;
}

static cs_rc count_value(axis_counts *ac, const cs_axis *ax, const cs_axis_value *v)
{
    value_count *grown;
    label_slot *sl;
    if (v && v >= ax->values && v < ax->values + ax->n) {
        ac->grid[v - ax->values].count++;
        return CS_OK;
    }
    if (!v && ac->na != SIZE_MAX) {
        ac->other[ac->na].count++;
        return CS_OK;
    }
    if (v) { /* an include value equal to a grid value counts with it */
        sl = label_find(ac, v->label);
        if (sl->label) {
            if (sl->at < ac->n_grid) {
                ac->grid[sl->at].count++;
            } else {
                ac->other[sl->at - ac->n_grid].count++;
            }
            return CS_OK;
        }
    }
    if (ac->n_other == ac->cap_other) {
        size_t cap = ac->cap_other ? 2 * ac->cap_other : 4;
        grown = cs_realloc_array(ac->other, cap, sizeof(*grown));
        if (!grown) {
            return CS_ENOMEM;
        }
        ac->other = grown;
        ac->cap_other = cap;
    }
    ac->other[ac->n_other].val = v;
    ac->other[ac->n_other].count = 1;
    if (!v) {
        ac->na = ac->n_other;
    } else if (label_put(ac, v->label, ac->n_grid + ac->n_other) != CS_OK) {
        return CS_ENOMEM;
    }
    ac->n_other++;
    return CS_OK;
}

typedef struct example {
    char *key;
    char *axes;
    char *config;
    bool baseline;
} example;

typedef struct plan_opts {
    const char *file;
    const char *db;
    bool json;
    size_t limit;
    size_t n_examples;
} plan_opts;

/* ---- output ------------------------------------------------------------------------------ */

static void print_text(const plan_opts *o, const cs_sweep *s, const cs_expand_counts *c,
                       const axis_counts *ac, const example *ex, size_t n_ex, size_t cached)
{
    printf("sweep %s: %zu jobs (%zu cells + %zu baselines)\n", s->name, c->emitted,
           c->emitted - c->baselines, c->baselines);
    printf("  grid: %zu cells, %zu excluded, %zu included, %zu duplicates removed\n", c->product,
           c->excluded, c->included, c->duplicates);
    if (!o->db) {
        printf("  cached: not checked (no --db)\n");
    } else {
        printf("  cached: %zu of %zu (in %s)\n", cached, c->emitted, o->db);
    }
    printf("  policy: max_attempts %d, backoff %gs..%gs, timeout %llds, priority %d, "
           "max_running %d, on_failure %s\n",
           s->policy.max_attempts, s->policy.backoff_base_s, s->policy.backoff_max_s,
           (long long)s->policy.timeout_s, s->policy.priority, s->policy.max_running,
           s->policy.stop_on_failure ? "stop" : "continue");
    printf("\njobs per axis value:\n");
    for (size_t a = 0; a < s->n_axes; a++) {
        printf("  %s%s\n", s->axes[a].name, s->axes[a].implicit ? " (default)" : "");
        for (size_t i = 0; i < ac[a].n_grid; i++) {
            printf("    %-40s %zu\n", s->axes[a].values[i].text, ac[a].grid[i].count);
        }
        for (size_t i = 0; i < ac[a].n_other; i++) {
            const cs_axis_value *v = ac[a].other[i].val;
            printf("    %-40s %zu\n", v ? v->text : "(does not apply)", ac[a].other[i].count);
        }
    }
    if (n_ex > 0) {
        printf("\nexample cells:\n");
    }
    for (size_t i = 0; i < n_ex; i++) {
        printf("  %.12s%s %s\n", ex[i].key, ex[i].baseline ? " baseline" : "", ex[i].axes);
    }
}

static cJSON *raw_or_null(const char *json)
{
    return json ? cJSON_CreateRaw(json) : cJSON_CreateNull();
}

static int print_json(const plan_opts *o, const cs_sweep *s, const cs_expand_counts *c,
                      const axis_counts *ac, const example *ex, size_t n_ex, bool cache_known,
                      size_t cached)
{
    cJSON *root = cJSON_CreateObject(), *axes, *arr;
    char *text = NULL;
    int ok = root != NULL;

    ok = ok && cJSON_AddStringToObject(root, "sweep", s->name);
    ok = ok && cJSON_AddStringToObject(root, "spec_hash", s->spec_hash);
    ok = ok && cJSON_AddNumberToObject(root, "jobs", (double)c->emitted);
    ok = ok && cJSON_AddNumberToObject(root, "baselines", (double)c->baselines);
    ok = ok && cJSON_AddNumberToObject(root, "grid_cells", (double)c->product);
    ok = ok && cJSON_AddNumberToObject(root, "excluded", (double)c->excluded);
    ok = ok && cJSON_AddNumberToObject(root, "included", (double)c->included);
    ok = ok && cJSON_AddNumberToObject(root, "duplicates", (double)c->duplicates);
    if (ok && o->db && cache_known) {
        ok = cJSON_AddNumberToObject(root, "cached", (double)cached) != NULL;
    } else if (ok) {
        ok = cJSON_AddNullToObject(root, "cached") != NULL;
    }
    axes = ok ? cJSON_AddObjectToObject(root, "axes") : NULL;
    ok = axes != NULL;
    for (size_t a = 0; ok && a < s->n_axes; a++) {
        arr = cJSON_AddArrayToObject(axes, s->axes[a].name);
        ok = arr != NULL;
        for (size_t i = 0; ok && i < ac[a].n_grid + ac[a].n_other; i++) {
            const value_count *vc =
                    i < ac[a].n_grid ? &ac[a].grid[i] : &ac[a].other[i - ac[a].n_grid];
            cJSON *e = cJSON_CreateObject();
            ok = e && cJSON_AddItemToArray(arr, e);
            if (!ok) {
                cJSON_Delete(e);
                break;
            }
            ok = cJSON_AddItemToObject(e, "value", raw_or_null(vc->val ? vc->val->label : NULL));
            ok = ok && cJSON_AddStringToObject(e, "text", vc->val ? vc->val->text : "n/a");
            ok = ok && cJSON_AddNumberToObject(e, "jobs", (double)vc->count);
        }
    }
    arr = ok ? cJSON_AddArrayToObject(root, "examples") : NULL;
    ok = arr != NULL;
    for (size_t i = 0; ok && i < n_ex; i++) {
        cJSON *e = cJSON_CreateObject();
        ok = e && cJSON_AddItemToArray(arr, e);
        if (!ok) {
            cJSON_Delete(e);
            break;
        }
        ok = cJSON_AddStringToObject(e, "key", ex[i].key) &&
             cJSON_AddBoolToObject(e, "baseline", ex[i].baseline) &&
             cJSON_AddItemToObject(e, "axes", raw_or_null(ex[i].axes)) &&
             cJSON_AddItemToObject(e, "config", raw_or_null(ex[i].config));
    }
    text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "calsweep plan: out of memory\n");
        return CS_EXIT_FAIL;
    }
    printf("%s\n", text);
    free(text);
    return CS_EXIT_OK;
}

/* ---- the command ------------------------------------------------------------------------- */

static int run_plan(const plan_opts *o)
{
    cs_diags diags;
    cs_err err = {0};
    cs_sweep *s = NULL;
    cs_expander *e = NULL;
    cs_expand_opts eo = {.max_jobs = o->limit};
    cs_expand_counts counts;
    axis_counts *ac = NULL;
    example *ex = NULL;
    size_t n_ex = 0, cached = 0;
    plan_cache *pc = NULL;
    bool cache_known = false;
    struct stat st;
    cs_cell cell;
    int code = CS_EXIT_FAIL;
    cs_rc rc;

    cs_diags_init(&diags);
    rc = cs_sweep_load(o->file, &s, &diags, &err);
    cs_diags_print(&diags, NULL, o->file, stderr);
    if (rc != CS_OK) {
        if (diags.len == 0) {
            fprintf(stderr, "calsweep plan: %s\n", err.msg);
        } else {
            fprintf(stderr, "calsweep plan: %s: %zu error%s\n", o->file, diags.n_errors,
                    diags.n_errors == 1 ? "" : "s");
        }
        goto out;
    }
    rc = cs_expand_create(s, &eo, &e, &err);
    if (rc != CS_OK) {
        fprintf(stderr, "calsweep plan: %s: %s\n", o->file, err.msg);
        goto out;
    }
    if (o->db) {
        if (stat(o->db, &st) != 0 || !S_ISREG(st.st_mode)) {
            fprintf(stderr, "calsweep plan: --db %s: no database there (plan never creates one)\n",
                    o->db);
            goto out;
        }
        if (plan_cache_open(o->db, &pc, &err) != CS_OK) {
            fprintf(stderr, "calsweep plan: --db %s: %s\n", o->db, err.msg);
            goto out;
        }
        cache_known = true;
    }
    ac = cs_calloc_array(s->n_axes, sizeof(*ac));
    ex = cs_calloc_array(o->n_examples ? o->n_examples : 1, sizeof(*ex));
    if (!ac || !ex) {
        fprintf(stderr, "calsweep plan: out of memory\n");
        goto out;
    }
    for (size_t a = 0; a < s->n_axes; a++) {
        ac[a].n_grid = s->axes[a].n;
        ac[a].grid = cs_calloc_array(s->axes[a].n, sizeof(*ac[a].grid));
        if (!ac[a].grid) {
            fprintf(stderr, "calsweep plan: out of memory\n");
            goto out;
        }
        ac[a].na = SIZE_MAX;
        for (size_t i = 0; i < s->axes[a].n; i++) {
            ac[a].grid[i].val = &s->axes[a].values[i];
            if (label_put(&ac[a], s->axes[a].values[i].label, i) != CS_OK) {
                fprintf(stderr, "calsweep plan: out of memory\n");
                goto out;
            }
        }
    }
    while ((rc = cs_expand_next(e, &cell, &err)) == CS_OK) {
        const cs_axis_value *const *vals = cs_expand_cell_values(e);
        for (size_t a = 0; a < s->n_axes; a++) {
            if (count_value(&ac[a], &s->axes[a], vals[a]) != CS_OK) {
                rc = cs_err_set(&err, CS_ENOMEM, 0, "out of memory");
                break;
            }
        }
        if (rc != CS_OK) {
            break;
        }
        if (cache_known) {
            bool hit = false;
            rc = plan_cache_has(pc, cell.key, &hit, &err);
            if (rc != CS_OK) {
                break;
            }
            cached += hit;
        }
        if (n_ex < o->n_examples) {
            ex[n_ex].key = cs_strdup(cell.key);
            ex[n_ex].axes = cs_strdup(cell.axes);
            ex[n_ex].config = cs_strdup(cell.config);
            ex[n_ex].baseline = cell.baseline;
            n_ex++;
            if (!ex[n_ex - 1].key || !ex[n_ex - 1].axes || !ex[n_ex - 1].config) {
                rc = cs_err_set(&err, CS_ENOMEM, 0, "out of memory");
                break;
            }
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep plan: %s: %s\n", o->file, err.msg);
        goto out;
    }
    cs_expand_get_counts(e, &counts);
    if (o->json) {
        code = print_json(o, s, &counts, ac, ex, n_ex, cache_known, cached);
    } else {
        print_text(o, s, &counts, ac, ex, n_ex, cached);
        code = CS_EXIT_OK;
    }
out:
    for (size_t i = 0; i < n_ex; i++) {
        free(ex[i].key);
        free(ex[i].axes);
        free(ex[i].config);
    }
    free(ex);
    for (size_t a = 0; ac && a < s->n_axes; a++) {
        free(ac[a].grid);
        free(ac[a].other);
        free(ac[a].table);
    }
    free(ac);
    plan_cache_close(pc);
    cs_expand_destroy(e);
    cs_sweep_destroy(s);
    cs_diags_fini(&diags);
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
