/* cmd_plot.c - `calsweep plot SWEEP`: a figure of the sweep's aggregate (cs_plot.h) as SVG, PDF
 * or PNG. The aggregate comes as for `calsweep results`: with --db from the database opened
 * read-only (no daemon), otherwise from calsweepd's RESULTS message; always the full form (the
 * error bars read the per-job averages' moments). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cs_agg.h"
#include "cs_cli.h"
#include "cs_plot.h"
#include "cs_store.h"

enum {
    OPT_DB,
    OPT_FIGURE,
    OPT_SERIES,
    OPT_METRIC,
    OPT_WHERE,
    OPT_OUTPUT,
    OPT_FORMAT,
    OPT_WIDTH,
    OPT_DPI,
    OPT_FORCE
};

#define MAX_WHERE 16

typedef struct plot_args {
    const char *sweep, *db, *output;
    const char *where[MAX_WHERE];
    cs_plot_opts o;
} plot_args;

static int plot_opt(void *ctx, int id, const char *arg)
{
    plot_args *a = ctx;
    cs_err err = {0};
    cs_rc rc = CS_OK;
    switch (id) {
    case OPT_DB:
        a->db = arg;
        break;
    case OPT_FIGURE:
        rc = cs_plot_kind_parse(arg, &a->o.kind, &err);
        break;
    case OPT_SERIES:
        a->o.series = arg;
        break;
    case OPT_METRIC:
        a->o.metric = arg;
        break;
    case OPT_WHERE:
        rc = cs_opt_append(a->where, &a->o.n_where, MAX_WHERE, arg, "--where", &err);
        break;
    case OPT_OUTPUT:
        a->output = arg;
        break;
    case OPT_FORMAT:
        rc = cs_plot_format_parse(arg, &a->o.format, &err);
        break;
    case OPT_WIDTH:
        rc = cs_parse_double(arg, &a->o.width_in, "--width", &err);
        if (rc == CS_OK && !(a->o.width_in >= 1.0 && a->o.width_in <= 20.0)) {
            rc = cs_err_set(&err, CS_ERANGE, 0,
                            "--width %s: expected inches in 1..20 (3.3 one column, 6.8 two)", arg);
        }
        break;
    case OPT_DPI:
        rc = cs_parse_double(arg, &a->o.dpi, "--dpi", &err);
        if (rc == CS_OK && !(a->o.dpi >= 36.0 && a->o.dpi <= 1200.0)) {
            rc = cs_err_set(&err, CS_ERANGE, 0, "--dpi %s: expected 36..1200", arg);
        }
        break;
    case OPT_FORCE:
        a->o.force = true;
        break;
    default:
        if (a->sweep) {
            fprintf(stderr, "calsweep plot: expected one sweep, got '%s' and '%s'\n", a->sweep,
                    arg);
            return CS_EXIT_USAGE;
        }
        a->sweep = arg;
        break;
    }
    if (rc != CS_OK) {
        fprintf(stderr, "calsweep plot: %s\n", err.msg);
        return CS_EXIT_USAGE;
    }
    return CS_EXIT_OK;
}

/* The nsamples figure's error bars of one-seed points are a bootstrap over items
 * (average.item_ci); no other figure reads one. */
static size_t item_resamples(const plot_args *a)
{
    return a->o.kind == CS_PLOT_NSAMPLES ? CS_AGG_RESAMPLES : 0;
}

/* The full aggregate from the database at path (read-only). */
static int from_db(const plot_args *a, cJSON **agg)
{
    struct stat st;
    cs_store *s = NULL;
    cs_err err = {0};
    cs_store_results_req q = {.resamples = 0, .item_resamples = item_resamples(a)};
    if (stat(a->db, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "calsweep plot: --db %s: no database there\n", a->db);
        return CS_EXIT_FAIL;
    }
    cs_rc rc = cs_store_open_ro(a->db, &s, &err);
    if (rc == CS_OK) {
        rc = cs_store_results(s, a->sweep, &q, agg, &err);
    }
    cs_store_close(s);
    if (rc != CS_OK) {
        fprintf(stderr, "calsweep plot: %s\n", err.msg);
        return CS_EXIT_FAIL;
    }
    return CS_EXIT_OK;
}

/* The full aggregate from calsweepd (RESULTS, no comparisons: the figures draw none). */
static int from_daemon(const cs_client *c, const plot_args *a, cJSON **agg)
{
    cs_msg req;
    cs_msg_init(&req, CS_MSG_RESULTS);
    req.results.sweep = a->sweep;
    req.results.resamples = 0;
    req.results.item_resamples = (int64_t)item_resamples(a);
    return cs_client_call_long(c, "plot", &req, NULL, CS_CLIENT_LONG_MS, agg);
}

int cs_cmd_plot(const cs_client *base, int argc, char **argv)
{
    static const char usage[] =
            "usage: calsweep plot [OPTIONS] SWEEP -o FILE\n\n"
            "Draws a figure of SWEEP's aggregate (as `calsweep results --json`) with cairo:\n"
            "  heatmap   n_samples x seq_len cells of the average accuracy (or --metric std_ret),\n"
            "            one panel per algorithm and model\n"
            "  nsamples  average accuracy against n_samples per selector (--series), 95 % error\n"
            "            bars across seeds (mean +- t x SE)\n"
            "  tasks     per-task accuracy bars per selector (--series), the unquantized model\n"
            "            as a line\n"
            "The format is the output's extension (.svg, .pdf, .png) or --format. Rows that\n"
            "differ on an axis the figure does not show must be narrowed with --where.\n"
            "Reads the database directly with --db, else asks calsweepd. See docs/results.md.\n";
    static const cs_opt own[] = {
            {"db", 0, CS_OPT_VALUE, OPT_DB, "PATH", "read this database (read-only, no daemon)"},
            {"figure", 0, CS_OPT_VALUE, OPT_FIGURE, "F", "heatmap (default), nsamples or tasks"},
            {"series", 0, CS_OPT_VALUE, OPT_SERIES, "AXIS",
             "nsamples, tasks: one line or bar per value of AXIS (default selector)"},
            {"metric", 0, CS_OPT_VALUE, OPT_METRIC, "M",
             "accuracy (default) or, for the heatmap, std_ret"},
            {"where", 0, CS_OPT_VALUE, OPT_WHERE, "AXIS=VALUE",
             "plot only rows with this value (repeatable)"},
            {"output", 'o', CS_OPT_VALUE, OPT_OUTPUT, "FILE", "the figure's file (required)"},
            {"format", 0, CS_OPT_VALUE, OPT_FORMAT, "F", "svg, pdf or png (default: by extension)"},
            {"width", 0, CS_OPT_VALUE, OPT_WIDTH, "IN",
             "width in inches: 3.3 one column (default), 6.8 two"},
            {"dpi", 0, CS_OPT_VALUE, OPT_DPI, "N", "PNG resolution (default 300)"},
            {"force", 0, CS_OPT_NONE, OPT_FORCE, NULL, "overwrite an existing FILE"},
    };
    plot_args a = {0};
    cs_client c;
    cJSON *agg = NULL;
    cs_err err = {0};
    bool done;
    a.o.where = a.where;
    int code = cs_cli_parse(base, &c, "plot", usage, argc, argv, own, sizeof(own) / sizeof(*own),
                            plot_opt, &a, &done);
    if (code != CS_EXIT_OK || done) {
        return code;
    }
    if (!a.sweep || !a.output) {
        fprintf(stderr, "calsweep plot: expected a sweep and -o FILE (see calsweep plot --help)\n");
        return CS_EXIT_USAGE;
    }
    code = a.db ? from_db(&a, &agg) : from_daemon(&c, &a, &agg);
    if (code == CS_EXIT_OK && cs_plot_write(agg, &a.o, a.output, &err) != CS_OK) {
        fprintf(stderr, "calsweep plot: %s\n", err.msg);
        code = CS_EXIT_FAIL;
    }
    cJSON_Delete(agg);
    return code;
}
