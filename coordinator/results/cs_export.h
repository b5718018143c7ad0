/* cs_export.h - tables for papers and notes from a sweep's aggregate (`calsweep export`, issue 21).
 *
 * Why a module of its own: the numbers of a paper's table must be those of `calsweep results`, so
 * the exports render the aggregate of cs_agg_run (docs/results.md) and compute nothing but the
 * layout: which rows (--where), which columns (the tasks, or the values of one axis), how many
 * decimals, percent or fractions. The long CSV is the exception: it is one row per job, task and
 * metric, so it renders the jobs that cs_agg_run read (cs_agg_job), not the aggregate.
 *
 * Every export starts with the reproducibility note (as a comment of its format; a member "export"
 * in JSON): the sweep's name and database id, the engine version, the number of jobs used and the
 * command that made it. Renderers write to a cs_buf, never to a file: the CLI writes the buffer to
 * a temporary file and renames it, so a failed export leaves no file behind.
 *
 * Threads: reentrant, no global state. Layout and fields: docs/results.md "Exports".
 */
#ifndef CS_COORDINATOR_RESULTS_CS_EXPORT_H
#define CS_COORDINATOR_RESULTS_CS_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cs_agg.h"
#include "cs_alloc.h"
#include "cs_err.h"

typedef enum cs_export_format {
    CS_EXPORT_MARKDOWN,
    CS_EXPORT_CSV,      /* wide: the table as shown, one line per row */
    CS_EXPORT_CSV_LONG, /* long: one line per job x task x metric (cs_export_render_long) */
    CS_EXPORT_JSON,     /* the aggregate, its rows filtered by where, plus "export" */
    CS_EXPORT_LATEX,    /* a booktabs table (cs_export_latex.c) */
} cs_export_format;

/* One --where AXIS=VALUE (both borrowed). */
typedef struct cs_export_where {
    const char *axis, *value;
} cs_export_where;

typedef struct cs_export_opts {
    cs_export_format format;
    const char *cols; /* NULL or "tasks": a column per task; else an axis: a column per value */
    /* The row-label columns that come first, in this order (when they vary among the rows);
     * the other varying grouping axes follow in the aggregate's "by" order. */
    const char *const *lead;
    size_t n_lead;
    const cs_export_where *where; /* rows kept: those whose value matches on every axis */
    size_t n_where;
    int digits;      /* decimals of markdown numbers; < 0: 1 with percent, 3 without */
    bool percent;    /* accuracies (and their deltas) times 100 */
    bool standalone; /* latex: a whole document around the table (else a fragment for \input) */
    /* The reproducibility note (borrowed): */
    const char *sweep;          /* the sweep as named on the command line */
    int64_t sweep_id;           /* its id in the database, 0 when unknown (from calsweepd) */
    const char *engine_version; /* CS_ENGINE_VERSION */
    const char *command;        /* the command line that made the export */
} cs_export_opts;

/* Zero-fills o and sets digits = -1 and format = markdown. */
void cs_export_opts_init(cs_export_opts *o);

/* Appends the export of agg (a full aggregate of cs_agg_run, docs/results.md) in o->format
 * (markdown, csv or json) to out. CS_EINVAL naming the option and listing the valid choices for a
 * --where or --cols axis the aggregate does not group by ("--where selectr=random: no such axis;
 * axes: algorithm, selector"), a --cols axis that is also the only row axis, or a document that is
 * not an aggregate; CS_ENOENT for an empty selection (no row matches the --where values, naming
 * them and the values the axis has; or an aggregate without rows); CS_ENOMEM. out is unchanged on
 * error except for CS_ENOMEM. */
cs_rc cs_export_render(const cJSON *agg, const cs_export_opts *o, cs_buf *out, cs_err *err);

/* cs_export_render once per combination of values of the split axes (first-seen order among the
 * rows where every split axis has a value), each with those values added to o->where: the presets'
 * "one table per model" (markdown: each after a heading "### model=tb"; LaTeX: one table
 * environment each, in one document with o->standalone). Combinations whose selection is empty
 * (CS_ENOENT: e.g. the baseline in a pivot over seq_len) are left out; CS_ENOENT when every one
 * is. CSV and JSON are one table: split is ignored. Other errors as cs_export_render's. */
cs_rc cs_export_render_split(const cJSON *agg, const cs_export_opts *o, const char *const *split,
                             size_t n_split, cs_buf *out, cs_err *err);

/* Appends the long CSV of the n jobs (as cs_store_agg_load gives them) to out: a header, then one
 * line per done job, task and metric: job_id, baseline, every axis flattened (an object's members
 * as axis.member, one column each, the union over the jobs in sorted order), then, when configs
 * is not NULL, every member of the jobs' configs (configs[i] the config text of jobs[i], or NULL)
 * flattened at every depth (config.calibration.selector.name; an array as its JSON text, null and
 * absent members empty), then task, metric, value, n. Jobs are filtered by o->where as rows are.
 * CS_EINVAL for a where axis no job has (listing those it has) or axes or a config that are not
 * JSON objects, CS_ENOENT when no done job is left, CS_ENOMEM. */
cs_rc cs_export_render_long(const cs_agg_job *jobs, size_t n, const char *const *configs,
                            const cs_export_opts *o, cs_buf *out, cs_err *err);

/* Whether a value of an axis (a JSON value from an aggregate's row "values" or a job's axes)
 * matches text as --where matches (docs/results.md "Exports"): its name, its display form
 * ("gptq(act_order=true,bits=4,...)"), a short label as the tables show it (the name and some
 * members: "gptq(bits=4)"), its canonical JSON, or the same value parsed as JSON. */
bool cs_export_value_matches(const cJSON *v, const char *text);

/* Appends the display form of an axis value to b: a string as is, an object with a "name" as the
 * name followed by its other members in parentheses ("gptq(bits=4,group_size=128)", strings
 * unquoted), other values as JSON, null as nothing. CS_ENOMEM. */
cs_rc cs_export_value_text(cs_buf *b, const cJSON *v);

#endif
