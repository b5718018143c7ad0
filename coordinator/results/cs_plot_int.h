/* cs_plot_int.h - what cs_plot.c (choosing the rows and numbers) hands to cs_plot_draw.c
 * (drawing them with cairo). Private to the two files and tests/unit/plot_test.c. */
#ifndef CS_COORDINATOR_RESULTS_CS_PLOT_INT_H
#define CS_COORDINATOR_RESULTS_CS_PLOT_INT_H

#include <cairo.h>

#include "cs_plot.h"

/* Most panels, series, x or y values and tasks of one figure. */
#define CS_PLOT_MAX   24
#define CS_PLOT_LABEL 96
/* The colours of the series (Okabe and Ito's palette): more series are refused, not repeated. */
#define CS_PLOT_COLOURS 8

/* The numbers of one figure; NAN where a value is missing. */
typedef struct cs_plot_model {
    cs_plot_kind kind;
    bool std_ret;          /* heatmap of std_ret instead of accuracy */
    size_t n_x, n_y;       /* heatmap: seq_len (x) and n_samples (y); nsamples: n_samples (x) */
    double x[CS_PLOT_MAX]; /* ascending */
    double y[CS_PLOT_MAX]; /* ascending */
    size_t n_panels;       /* heatmap: algorithm x model */
    char panel[CS_PLOT_MAX][CS_PLOT_LABEL];
    size_t n_series; /* nsamples, tasks: selectors */
    char series[CS_PLOT_MAX][CS_PLOT_LABEL];
    bool no_interval[CS_PLOT_MAX];   /* nsamples: a point of the series has one seed, no items */
    bool item_interval[CS_PLOT_MAX]; /* nsamples: a point's bar is the bootstrap over items */
    size_t n_tasks;                  /* tasks: the accuracy tasks */
    char task[CS_PLOT_MAX][CS_PLOT_LABEL];
    /* heatmap: cell[p][iy][ix] (fraction or std_ret); nsamples: mean[s][ix] and the 95 % interval
     * [elo, ehi][s][ix] (NAN without one), fractions; tasks: mean[s][t], base[t]. */
    double cell[CS_PLOT_MAX][CS_PLOT_MAX][CS_PLOT_MAX];
    double mean[CS_PLOT_MAX][CS_PLOT_MAX];
    double elo[CS_PLOT_MAX][CS_PLOT_MAX];
    double ehi[CS_PLOT_MAX][CS_PLOT_MAX];
    double base[CS_PLOT_MAX];
} cs_plot_model;

/* Fills the zeroed *m with figure o->kind of agg (both borrowed): the rows, checks and numbers
 * of cs_plot_write, which returns its errors. */
cs_rc cs_plot_model_build(const cJSON *agg, const cs_plot_opts *o, cs_plot_model *m, cs_err *err);

/* The figure's height in points for a width of w points. */
double cs_plot_height(const cs_plot_model *m, double w);

/* Draws m on cr, w x h points (cr's unit is the point). Cannot fail (cairo keeps its errors in
 * the surface's status). */
void cs_plot_draw(cairo_t *cr, const cs_plot_model *m, double w, double h);

/* The two-sided 95 % quantile of Student's t with df degrees of freedom (df >= 1): a table to 30,
 * the Cornish-Fisher expansion above (error below 1e-4). */
double cs_plot_t975(size_t df);

#endif
