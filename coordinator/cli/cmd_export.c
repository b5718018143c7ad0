/* cmd_export.c - `calsweep export SWEEP`: a sweep's results as a table for a paper or a note
 * (markdown, wide or long CSV, JSON), rendered by coordinator/results/cs_export.h from the
 * aggregate that `calsweep results` prints, so the numbers are the same (issue 21).
 *
 * With --db the database is read directly (read-only, no daemon), as `calsweep results --db`;
 * otherwise calsweepd answers a RESULTS message (the long CSV needs --db: it lists jobs, which
 * the aggregate does not carry). The export is rendered whole in memory before anything is
 * written: an error leaves no file. With -o FILE it goes to a temporary file in FILE's folder that
 * is renamed over FILE at the end; an existing FILE needs --force. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "cs_agg.h"
#include "cs_cli.h"
#include "cs_export.h"
#include "cs_path.h"
#include "cs_store.h"
#include "cs_version.h"

enum {
    OPT_DB,
    OPT_FORMAT,
    OPT_ROWS,
    OPT_COLS,
    OPT_METRIC,
    OPT_WHERE,
    OPT_REFERENCE,
    OPT_DIGITS,
    OPT_PERCENT,
    OPT_OUTPUT,
    OPT_FORCE,
    OPT_RESAMPLES,
    OPT_SEED,
    OPT_FRAGMENT,
    OPT_STANDALONE,
    OPT_PRESET
};

/* The presets (issue 21): the label columns that lead, the columns, one table per value of the
 * split axes, and the axes the sweep must have. The rows are grouped by every axis but seed (the
 * default of `calsweep results`), so a row never pools jobs that differ in something other than
 * the seed: an axis the layout does not name that the sweep varies (source, n_samples) becomes a
 * label column after the lead ones. */
typedef struct exp_preset {
    const char *name;
    const char *lead[2];
    size_t n_lead;
    const char *cols;
    const char *split[2];
    size_t n_split;
    const char *need[5];
    size_t n_need;
} exp_preset;

static const exp_preset PRESETS[] = {
        /* rows algorithm x selector; columns the tasks, average, std_ret; a table per model */
        {"selectors",
         {"algorithm", "selector"},
         2,
         "tasks",
         {"model"},
         1,
         {"algorithm", "selector", "model"},
         3},
        /* rows n_samples, columns seq_len, cells the average; a table per algorithm and model */
        {"sensitivity",
         {"n_samples"},
         1,
         "seq_len",
         {"algorithm", "model"},
         2,
         {"algorithm", "model", "n_samples", "seq_len"},
         4},
};

#define MAX_LIST CS_PROTO_MAX_RESULTS_LIST

typedef struct exp_args {
    const char *sweep, *db, *metric, *reference, *output, *cols;
    char rows_text[CS_LIMIT_NAME_BYTES * 4];
    const char *by[MAX_LIST + 1]; /* --rows, then the --cols axis */
    size_t n_by;
    char where_text[MAX_LIST][CS_LIMIT_NAME_BYTES * 2];
    cs_export_where where[MAX_LIST];
    size_t n_where;
    int64_t resamples, seed, digits;
    bool force;
    const exp_preset *preset;
    cs_export_opts o;
} exp_args;

static const struct {
    const char *name;
    cs_export_format format;
} FORMATS[] = {{"markdown", CS_EXPORT_MARKDOWN},
               {"csv", CS_EXPORT_CSV},
               {"csv-long", CS_EXPORT_CSV_LONG},
               {"json", CS_EXPORT_JSON},
               {"latex", CS_EXPORT_LATEX}};

static int take_format(exp_args *a, const char *arg)
{
    for (size_t i = 0; i < sizeof(FORMATS) / sizeof(*FORMATS); i++) {
        if (strcmp(arg, FORMATS[i].name) == 0) {
            a->o.format = FORMATS[i].format;
            return CS_EXIT_OK;
        }
    }
    fprintf(stderr,
            "calsweep export: --format %s: unknown; formats: markdown, csv, csv-long, "
            "json, latex\n",
            arg);
    return CS_EXIT_USAGE;
}

static int take_preset(exp_args *a, const char *arg)
{
    for (size_t i = 0; i < sizeof(PRESETS) / sizeof(*PRESETS); i++) {
        if (strcmp(arg, PRESETS[i].name) == 0) {
            a->preset = &PRESETS[i];
            return CS_EXIT_OK;
        }
    }
    fprintf(stderr, "calsweep export: --preset %s: unknown; presets: selectors, sensitivity\n",
            arg);
    return CS_EXIT_USAGE;
}

/* --preset sets the grouping and the columns: --rows and --cols may not be given with it. */
static int apply_preset(exp_args *a)
{
    if (!a->preset) {
        return CS_EXIT_OK;
    }
    if (a->n_by > 0 || a->cols) {
        fprintf(stderr,
                "calsweep export: --preset %s sets the rows and columns: give it without "
                "--rows and --cols\n",
                a->preset->name);
        return CS_EXIT_USAGE;
    }
    a->o.lead = a->preset->lead;
    a->o.n_lead = a->preset->n_lead;
    a->cols = a->preset->cols;
    return CS_EXIT_OK;
}

/* --rows AXES: comma-separated axis names (copied: the list points into rows_text). */
static int take_rows(exp_args *a, const char *arg)
{
    if (strlen(arg) >= sizeof(a->rows_text)) {
        fprintf(stderr, "calsweep export: --rows: too long\n");
        return CS_EXIT_USAGE;
    }
    snprintf(a->rows_text, sizeof(a->rows_text), "%s", arg);
    a->n_by = 0;
    for (char *p = a->rows_text, *next; p; p = next) {
        next = strchr(p, ',');
        if (next) {
            *next++ = '\0';
        }
        if (*p == '\0' || a->n_by == MAX_LIST) {
            fprintf(stderr,
                    "calsweep export: --rows %s: expected 1..%d axis names separated by commas, "
                    "e.g. algorithm,selector\n",
                    arg, MAX_LIST);
            return CS_EXIT_USAGE;
        }
        a->by[a->n_by++] = p;
    }
    return CS_EXIT_OK;
}

/* --where AXIS=VALUE (repeatable; copied). */
static int take_where(exp_args *a, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || a->n_where == MAX_LIST || strlen(arg) >= sizeof(a->where_text[0])) {
        fprintf(stderr,
                "calsweep export: --where %s: expected AXIS=VALUE (at most %d, each under %zu "
                "bytes)\n",
                arg, MAX_LIST, sizeof(a->where_text[0]));
        return CS_EXIT_USAGE;
    }
    char *t = a->where_text[a->n_where];
    snprintf(t, sizeof(a->where_text[0]), "%s", arg);
    t[eq - arg] = '\0';
    a->where[a->n_where++] = (cs_export_where){t, t + (eq - arg) + 1};
    return CS_EXIT_OK;
}

static int exp_opt(void *ctx, int id, const char *arg)
{
    exp_args *a = ctx;
    cs_err err = {0};
    cs_rc rc = CS_OK;
    switch (id) {
    case OPT_DB:
        a->db = arg;
        break;
    case OPT_FORMAT:
        return take_format(a, arg);
    case OPT_ROWS:
        return take_rows(a, arg);
    case OPT_COLS:
        a->cols = arg;
        break;
    case OPT_METRIC:
        a->metric = arg;
        break;
    case OPT_WHERE:
        return take_where(a, arg);
    case OPT_REFERENCE:
        a->reference = arg;
        break;
    case OPT_DIGITS:
        rc = cs_parse_i64(arg, 0, 9, &a->digits, "--digits", &err);
        break;
    case OPT_PERCENT:
        a->o.percent = true;
        break;
    case OPT_OUTPUT:
        a->output = arg;
        break;
    case OPT_FORCE:
        a->force = true;
        break;
    case OPT_PRESET:
        return take_preset(a, arg);
    case OPT_FRAGMENT:
    case OPT_STANDALONE:
        a->o.standalone = id == OPT_STANDALONE;
        break;
    case OPT_RESAMPLES:
        rc = cs_parse_i64(arg, 0, CS_LIMIT_RESAMPLES, &a->resamples, "--resamples", &err);
        break;
    case OPT_SEED:
        rc = cs_parse_i64(arg, 0, CS_LIMIT_SEED, &a->seed, "--seed", &err);
        break;
    default:
        if (a->sweep) {
            fprintf(stderr, "calsweep export: expected one sweep, got '%s' and '%s'\n", a->sweep,
                    arg);
            return CS_EXIT_USAGE;
        }
        a->sweep = arg;
        break;
    }
    if (rc != CS_OK) {
        fprintf(stderr, "calsweep export: %s\n", err.msg);
        return CS_EXIT_USAGE;
    }
    return CS_EXIT_OK;
}

/* The command line as a shell would take it back: "calsweep export ...", words with characters
 * outside [A-Za-z0-9_./=:,+@%-] in single quotes. */
static char *command_line(int argc, char **argv)
{
    cs_buf b = {0};
    cs_buf_puts(&b, "calsweep");
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        bool plain = *w != '\0';
        for (const char *p = w; *p && plain; p++) {
            plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                           "_./=:,+@%-",
                           *p) != NULL;
        }
        cs_buf_putc(&b, ' ');
        if (plain) {
            cs_buf_puts(&b, w);
            continue;
        }
        cs_buf_putc(&b, '\'');
        for (const char *p = w; *p; p++) {
            cs_buf_puts(&b, *p == '\'' ? "'\\''" : (char[2]){*p, '\0'});
        }
        cs_buf_putc(&b, '\'');
    }
    return cs_buf_take(&b);
}

/* An error of the results layer, whose option --by is export's --rows (or the preset's axes). */
static void print_error(const exp_args *a, const cs_err *err)
{
    bool by = strncmp(err->msg, "--by ", 5) == 0;
    const char *msg = err->msg + (by ? 5 : 0);
    if (a->preset) {
        fprintf(stderr, "calsweep export: --preset %s: %s%s\n", a->preset->name, by ? "axis " : "",
                msg);
    } else {
        fprintf(stderr, "calsweep export: %s%s\n", by ? "--rows " : "", msg);
    }
}

/* CS_EINVAL when the aggregate lacks an axis the preset needs, listing the axes it has. */
static cs_rc preset_axes(const exp_preset *p, const cJSON *agg, cs_err *err)
{
    const cJSON *axes = cJSON_GetObjectItemCaseSensitive(agg, "axes"), *x;
    for (size_t i = 0; i < p->n_need; i++) {
        bool found = false;
        cJSON_ArrayForEach(x, axes)
        {
            found = found || (cJSON_IsString(x) && strcmp(x->valuestring, p->need[i]) == 0);
        }
        if (!found) {
            cs_buf b = {0};
            cJSON_ArrayForEach(x, axes)
            {
                cs_buf_printf(&b, "%s%s", b.len ? ", " : "",
                              cJSON_IsString(x) ? x->valuestring : "?");
            }
            cs_rc rc = cs_err_set(err, CS_EINVAL, 0, "--by %s: no such axis; axes: %s", p->need[i],
                                  b.data ? b.data : "");
            cs_buf_fini(&b);
            return rc;
        }
    }
    return CS_OK;
}

/* The export of the aggregate: one table, or the preset's one per split value. */
static cs_rc render_agg(const exp_args *a, const cJSON *agg, cs_buf *out, cs_err *err)
{
    if (!a->preset) {
        return cs_export_render(agg, &a->o, out, err);
    }
    cs_rc rc = preset_axes(a->preset, agg, err);
    return rc == CS_OK ? cs_export_render_split(agg, &a->o, a->preset->split, a->preset->n_split,
                                                out, err)
                       : rc;
}

/* The aggregate (or for csv-long the jobs) from the database at a->db, read-only. */
static int render_db(exp_args *a, cs_buf *out)
{
    struct stat st;
    cs_store *s = NULL;
    cs_store_agg jobs = {0};
    char **configs = NULL;
    cJSON *agg = NULL;
    cs_err err = {0};
    cs_store_results_req q = {.by = a->by,
                              .n_by = a->n_by,
                              .metric = a->metric,
                              .reference = a->reference,
                              .resamples = (size_t)a->resamples,
                              .seed = (uint64_t)a->seed};
    if (stat(a->db, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "calsweep export: --db %s: no database there\n", a->db);
        return CS_EXIT_FAIL;
    }
    cs_rc rc = cs_store_open_ro(a->db, &s, &err);
    rc = rc == CS_OK ? cs_store_sweep_resolve(s, a->sweep, &a->o.sweep_id, &err) : rc;
    if (rc == CS_OK && a->o.format == CS_EXPORT_CSV_LONG) {
        rc = cs_store_agg_load(s, a->o.sweep_id, false, &jobs, &err);
        configs = rc == CS_OK ? cs_calloc_array(jobs.n_jobs + 1, sizeof(*configs)) : NULL;
        if (rc == CS_OK && !configs) {
            rc = cs_err_set(&err, CS_ENOMEM, 0, "export: out of memory");
        }
        rc = rc == CS_OK ? cs_store_agg_configs(s, a->o.sweep_id, &jobs, configs, &err) : rc;
        rc = rc == CS_OK ? cs_export_render_long(jobs.jobs, jobs.n_jobs,
                                                 (const char *const *)configs, &a->o, out, &err)
                         : rc;
    } else if (rc == CS_OK) {
        rc = cs_store_results(s, a->sweep, &q, &agg, &err);
        rc = rc == CS_OK ? render_agg(a, agg, out, &err) : rc;
    }
    for (size_t i = 0; configs && i < jobs.n_jobs; i++) {
        free(configs[i]);
    }
    free(configs);
    cs_store_agg_fini(&jobs);
    cJSON_Delete(agg);
    cs_store_close(s);
    if (rc != CS_OK) {
        print_error(a, &err);
        return CS_EXIT_FAIL;
    }
    return CS_EXIT_OK;
}

/* The aggregate from calsweepd (RESULTS). */
static int render_daemon(const cs_client *c, exp_args *a, cs_buf *out)
{
    cs_msg req;
    cJSON *agg = NULL;
    cs_err err = {0};
    if (a->o.format == CS_EXPORT_CSV_LONG) {
        fprintf(stderr, "calsweep export: --format csv-long reads the jobs: it needs --db PATH\n");
        return CS_EXIT_USAGE;
    }
    /* The sweep's database id for the reproducibility note: the aggregate does not carry it. */
    cJSON *st = NULL;
    cs_msg_init(&req, CS_MSG_STATUS);
    req.status.sweep = cs_client_borrow(a->sweep);
    int code = cs_client_call(c, "export", &req, NULL, &st);
    if (code != CS_EXIT_OK) {
        return code;
    }
    a->o.sweep_id = cs_client_int(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(st, "sweeps"), 0), "id");
    cJSON_Delete(st);
    cs_msg_init(&req, CS_MSG_RESULTS);
    req.results.sweep = a->sweep;
    req.results.by = (char **)(uintptr_t)a->by; /* borrowed for sending (cs_client_borrow) */
    req.results.n_by = a->n_by;
    req.results.metric = a->metric;
    req.results.reference = a->reference;
    req.results.resamples = a->resamples;
    req.results.seed = a->seed;
    code = cs_client_call_long(c, "export", &req, NULL, CS_CLIENT_LONG_MS, &agg);
    if (code == CS_EXIT_OK && render_agg(a, agg, out, &err) != CS_OK) {
        print_error(a, &err);
        code = CS_EXIT_FAIL;
    }
    cJSON_Delete(agg);
    return code;
}

/* Writes data to path (cs_path_write_atomic: a temporary file beside it, renamed over it), unless
 * path exists and force is not set. */
static int write_output(const char *path, const cs_buf *data, bool force)
{
    struct stat st;
    cs_err err = {0};
    if (!force && lstat(path, &st) == 0) {
        fprintf(stderr, "calsweep export: %s exists (use --force to overwrite it)\n", path);
        return CS_EXIT_FAIL;
    }
    if (cs_path_write_atomic(path, data->data, data->len, 0644, &err) != CS_OK) {
        fprintf(stderr, "calsweep export: %s\n", err.msg);
        return CS_EXIT_FAIL;
    }
    return CS_EXIT_OK;
}

static const char EXPORT_USAGE[] =
        "usage: calsweep export [OPTIONS] SWEEP\n\n"
        "Writes the results of SWEEP (name or id) as a table for a paper or a note: the numbers\n"
        "of `calsweep results` (mean and std across seeds, the average accuracy, std_ret, the\n"
        "delta against --reference with its Holm mark), laid out by --rows and --cols and\n"
        "filtered by --where. Every export starts with a comment naming the sweep, its id, the\n"
        "engine version, the jobs used and this command. Reads the database directly with --db,\n"
        "else asks calsweepd. Layout and fields: docs/results.md \"Exports\".\n";

static const cs_opt EXPORT_OPTS[] = {
        {"db", 0, CS_OPT_VALUE, OPT_DB, "PATH", "read this database (read-only, no daemon)"},
        {"format", 0, CS_OPT_VALUE, OPT_FORMAT, "F",
         "markdown (default), csv (wide), csv-long (a line per job, task and metric), json, "
         "latex"},
        {"preset", 0, CS_OPT_VALUE, OPT_PRESET, "P",
         "selectors (rows algorithm x selector, a table per model) or sensitivity (rows "
         "n_samples, columns seq_len, a table per algorithm and model)"},
        {"fragment", 0, CS_OPT_NONE, OPT_FRAGMENT, NULL,
         "latex: a table environment for \\input (the default)"},
        {"standalone", 0, CS_OPT_NONE, OPT_STANDALONE, NULL,
         "latex: a whole document (pdflatex with booktabs, multirow)"},
        {"rows", 0, CS_OPT_VALUE, OPT_ROWS, "AXES",
         "group rows by these axes (comma-separated); default: every axis but seed"},
        {"cols", 0, CS_OPT_VALUE, OPT_COLS, "tasks|AXIS",
         "columns: the tasks (default), or the values of AXIS with the average accuracy"},
        {"metric", 0, CS_OPT_VALUE, OPT_METRIC, "M", "report M for every task (default: headline)"},
        {"where", 0, CS_OPT_VALUE, OPT_WHERE, "AXIS=VALUE", "keep only these rows (repeatable)"},
        {"reference", 0, CS_OPT_VALUE, OPT_REFERENCE, "AXIS=VALUE",
         "add the delta of the average against the row with AXIS=VALUE"},
        {"digits", 0, CS_OPT_VALUE, OPT_DIGITS, "N", "decimals (default 1 with --percent, else 3)"},
        {"percent", 0, CS_OPT_NONE, OPT_PERCENT, NULL, "accuracies in percent"},
        {"output", 'o', CS_OPT_VALUE, OPT_OUTPUT, "FILE", "write to FILE (default: stdout)"},
        {"force", 0, CS_OPT_NONE, OPT_FORCE, NULL, "overwrite an existing FILE"},
        {"resamples", 0, CS_OPT_VALUE, OPT_RESAMPLES, "N",
         "bootstrap resamples with --reference (default 10000)"},
        {"seed", 0, CS_OPT_VALUE, OPT_SEED, "N", "bootstrap seed (default 0)"},
};

int cs_cmd_export(const cs_client *base, int argc, char **argv)
{
    exp_args *a = calloc(1, sizeof(*a));
    cs_client c;
    cs_buf out = {0};
    char *cmd = NULL;
    bool done = false;
    int code = CS_EXIT_FAIL;
    if (!a) {
        fprintf(stderr, "calsweep export: out of memory\n");
        return CS_EXIT_FAIL;
    }
    cs_export_opts_init(&a->o);
    a->resamples = CS_AGG_RESAMPLES;
    a->digits = -1;
    code = cs_cli_parse(base, &c, "export", EXPORT_USAGE, argc, argv, EXPORT_OPTS,
                        sizeof(EXPORT_OPTS) / sizeof(*EXPORT_OPTS), exp_opt, a, &done);
    if (code != CS_EXIT_OK || done) {
        goto out;
    }
    if (!a->sweep) {
        fprintf(stderr, "calsweep export: expected a sweep (see calsweep export --help)\n");
        code = CS_EXIT_USAGE;
        goto out;
    }
    code = apply_preset(a);
    if (code != CS_EXIT_OK) {
        goto out;
    }
    if (a->cols && strcmp(a->cols, "tasks") != 0 && a->n_by > 0) {
        bool listed = false;
        for (size_t i = 0; i < a->n_by; i++) {
            listed = listed || strcmp(a->by[i], a->cols) == 0;
        }
        if (!listed) {
            a->by[a->n_by++] = a->cols; /* the --cols axis groups the rows too */
        }
    }
    cmd = command_line(argc, argv);
    a->o.cols = a->cols;
    a->o.where = a->where;
    a->o.n_where = a->n_where;
    a->o.digits = (int)a->digits;
    a->o.sweep = a->sweep;
    a->o.engine_version = CS_ENGINE_VERSION;
    a->o.command = cmd;
    code = a->db ? render_db(a, &out) : render_daemon(&c, a, &out);
    if (code == CS_EXIT_OK && a->output) {
        code = write_output(a->output, &out, a->force);
    } else if (code == CS_EXIT_OK && fwrite(out.data, 1, out.len, stdout) != out.len) {
        fprintf(stderr, "calsweep export: stdout: %s\n", strerror(errno));
        code = CS_EXIT_FAIL;
    }
out:
    cs_buf_fini(&out);
    free(cmd);
    free(a);
    return code;
}
