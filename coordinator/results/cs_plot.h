/* cs_plot.h - figures of a sweep's aggregate for papers (issue 21, `calsweep plot`): SVG, PDF and
 * PNG drawn with cairo, no Python or gnuplot at run time.
 *
 * The figures read the aggregate of cs_agg_run (docs/results.md; the full form, not the slim one):
 *   - heatmap: n_samples x seq_len cells of the average accuracy (M4) or of std_ret (M5), one
 *     panel per algorithm and model, the value written in each cell, and a colour bar;
 *   - nsamples: the average accuracy against n_samples, one line per selector (or per value of
 *     o->series), with 95 % error bars across seeds (mean +- t(0.975, k - 1) x SE over the k
 *     per-job averages); a series with one seed has no interval and says so in the legend;
 *   - tasks: per task, one bar per selector (or o->series), and the unquantized model (the
 *     baseline row of the rows' model and eval suite) as a horizontal line across the bars.
 * Rows are the aggregate's non-baseline rows that match every --where and have a value on each
 * axis the figure uses; every other grouping axis must then have one value among the rows that
 * have one (else the error names the axis and its values, so the user adds a --where; a row
 * without a value there, e.g. RTN's selector, goes with any). The pseudo-axis "model" is the
 * row's model. Colours: Okabe and Ito's colour-blind-safe palette for series, viridis for the
 * heatmap. Sizes are in points, for a figure --width inches wide (3.3 one column, 6.8 two);
 * cairo's PDF surface embeds the subset of the font it uses.
 *
 * The output is written to a temporary file beside the target and renamed over it, so a failed
 * run leaves no partial file; an existing target is refused unless force is set. Reentrant. */
#ifndef CS_COORDINATOR_RESULTS_CS_PLOT_H
#define CS_COORDINATOR_RESULTS_CS_PLOT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "cs_err.h"

typedef enum cs_plot_kind {
    CS_PLOT_HEATMAP = 0,
    CS_PLOT_NSAMPLES,
    CS_PLOT_TASKS,
} cs_plot_kind;

typedef enum cs_plot_format {
    CS_PLOT_AUTO = 0, /* by the output's extension */
    CS_PLOT_SVG,
    CS_PLOT_PDF,
    CS_PLOT_PNG,
} cs_plot_format;

typedef struct cs_plot_opts {
    cs_plot_kind kind;
    cs_plot_format format;
    const char *series;       /* nsamples, tasks: the axis of the series; NULL = "selector" */
    const char *metric;       /* heatmap: "accuracy" (NULL) or "std_ret"; others: "accuracy" */
    const char *const *where; /* "AXIS=VALUE" filters, all must hold (borrowed) */
    size_t n_where;
    double width_in; /* figure width in inches; 0 = 3.3 */
    double dpi;      /* PNG resolution; 0 = 300 */
    bool force;      /* overwrite an existing output */
} cs_plot_opts;

/* The figure kind, format or metric named by s ("heatmap", "nsamples", "tasks"; "svg", "pdf",
 * "png"). CS_EINVAL naming the option and listing the valid names. */
cs_rc cs_plot_kind_parse(const char *s, cs_plot_kind *out, cs_err *err);
cs_rc cs_plot_format_parse(const char *s, cs_plot_format *out, cs_err *err);

/* Draws figure o->kind of the aggregate agg (borrowed) into the file at path. CS_OK when the file
 * is written. Errors (err names the option or the file): CS_EINVAL for a document that is not an
 * aggregate, an unknown axis, metric, format or --where value (the message lists the valid ones),
 * rows that differ on an axis the figure does not show; CS_ENOENT when no row is left to plot (no
 * file is written); CS_EEXIST when path exists and o->force is not set; CS_EIO (with errno) when
 * the file cannot be written; CS_ENOMEM. */
cs_rc cs_plot_write(const cJSON *agg, const cs_plot_opts *o, const char *path, cs_err *err);

#endif
