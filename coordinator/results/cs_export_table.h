/* cs_export_table.h - private to coordinator/results/cs_export*.c: the table that the exports
 * lay out from an aggregate before any format writes it (rows selected by --where, row-label
 * columns, one value column per task or per value of the --cols axis). Axis values are shown
 * short, as `calsweep results` labels them: an object by its name and the members that differ
 * among the selected rows' values of that name ("gptq(bits=4)", cs_agg_value_short). Each format
 * (markdown and CSV in cs_export.c) walks the same table, so they show the same numbers. */
#ifndef CS_COORDINATOR_RESULTS_CS_EXPORT_TABLE_H
#define CS_COORDINATOR_RESULTS_CS_EXPORT_TABLE_H

#include "cs_export.h"

typedef enum ex_kind {
    EX_AXIS,  /* a row-label column: the row's value on one grouping axis */
    EX_SEEDS, /* the row's number of seeds */
    EX_NUM,   /* a number: mean (and std across seeds), or a delta with its mark */
} ex_kind;

typedef struct ex_col {
    ex_kind kind;
    char *name;       /* owned: the header without arrow ("arc_e acc", "average", "16") */
    const char *axis; /* EX_AXIS: the axis (borrowed from the aggregate) */
    int dir;          /* +1 higher is better, -1 lower is better, 0 neither */
    bool scale;       /* an accuracy or its delta: times 100 with --percent */
    bool delta;       /* a delta against the reference: signed, with p_holm and mark */
    bool single;      /* one number per row, no std (std_ret) */
} ex_col;

typedef struct ex_cell {
    char *text;       /* EX_AXIS: the display form (owned; NULL for null) */
    double mean, std; /* NaN where absent (std also for one seed) */
    double p;         /* delta: p_holm, NaN when not tested */
    int64_t n;        /* seeds behind mean; EX_SEEDS: the number */
    const char *mark; /* delta: "", "*", "**", "***" (borrowed from the aggregate) */
    bool rankable;    /* may be best or second: not a baseline, every seed done, no job failed,
                         lost, cancelled, unfinished or without result (docs/results.md Flags) */
} ex_cell;

typedef struct ex_table {
    ex_col *cols;
    size_t n_cols, cap_cols;
    ex_cell *cells; /* n_rows x n_cols, row-major */
    size_t n_rows, cap_rows;
    char *common;    /* owned: "eval=default model=tb", the axes every row shares; NULL if none */
    char *reference; /* owned: what the delta column compares with, NULL without one:
                        "delta average: against selector=random, paired bootstrap (B
                        resamples), Holm-adjusted: * p<0.05, ** p<0.01, *** p<0.001" */
    int64_t jobs;    /* done jobs of the aggregate rows used */
    int64_t max_seeds, resamples;     /* the aggregate's */
    const char *ref_axis, *ref_value; /* the aggregate's reference (borrowed), or NULL */
    /* While building: the selected rows (borrowed), and per axis the members that tell its
     * values apart among them ({axis: cs_agg_value_diffs}, owned), for the short labels. */
    const cJSON *rows;
    cJSON *diffs;
} ex_table;

/* The members shown of an axis's values (values[0..n), non-null): cs_agg_value_diffs, plus a
 * method's bits always ("gptq(bits=4)" even when every gptq row has 4 bits: a paper's reader needs
 * the width). Owned (cJSON_Delete); NULL when memory runs out. */
cJSON *ex_value_diffs(const cJSON *const *values, size_t n);

/* Lays out agg under o (cs_export_render's errors). *t zeroed first; free with ex_table_fini. */
cs_rc ex_table_build(ex_table *t, const cJSON *agg, const cs_export_opts *o, cs_err *err);
void ex_table_fini(ex_table *t); /* NULL-safe; leaves t zeroed */

/* Per cell (row-major, owned, free()): 1 the best value of its column, 2 the second best, else
 * 0, over the rankable cells of the columns with a direction, compared as shown (rounded to
 * digits_scaled decimals for accuracies, 3 otherwise, times 100 with percent): equal values get
 * the same mark. CS_ENOMEM. */
cs_rc ex_table_ranks(const ex_table *t, int digits_scaled, bool percent, uint8_t **out);

/* Decimals of a column's numbers in markdown and LaTeX: --digits for accuracies (default 1 with
 * --percent, else 3), 3 for the others (perplexity, std_ret). */
static inline int ex_digits(const cs_export_opts *o, const ex_col *c)
{
    return !c->scale ? 3 : o->digits >= 0 ? o->digits : o->percent ? 1 : 3;
}

/* Writes t as a LaTeX table (cs_export_latex.c) after the note; CS_ENOMEM. */
cs_rc ex_write_latex(cs_buf *b, const ex_table *t, const cs_export_opts *o, const char *note);

/* The start (begin) or end of the standalone LaTeX document around the tables; CS_ENOMEM. */
cs_rc ex_latex_document(cs_buf *b, bool begin);

/* The rows of agg that o->where keeps, in order, as a cJSON array of references (owned,
 * cJSON_Delete; the rows stay agg's). Errors as cs_export_render's. */
cs_rc ex_select_rows(const cJSON *agg, const cs_export_opts *o, cJSON **out, cs_err *err);

#endif
