/* cs_export_latex.c - the exports' table as LaTeX (`calsweep export --format latex`): booktabs
 * rules and no vertical ones, the first label column grouped with \multirow, arrows for the
 * better direction in the header, mean $\pm$ std, the best value of each column in bold and the
 * second underlined (among rows with every seed done, equal values alike: ex_table_ranks), the
 * delta against the reference with its significance mark, and a caption that states the seeds and
 * names the test. Every name is escaped. --standalone wraps it in a document that pdflatex
 * compiles with texlive's booktabs and multirow (and T1 fonts); the default is a table
 * environment for \input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_export_table.h"

/* Appends s with LaTeX's specials escaped. */
static cs_rc tex_text(cs_buf *b, const char *s)
{
    cs_rc rc = CS_OK;
    for (; s && *s && rc == CS_OK; s++) {
        switch (*s) {
        case '_':
        case '%':
        case '&':
        case '#':
        case '$':
        case '{':
        case '}':
            rc = cs_buf_printf(b, "\\%c", *s);
            break;
        case '~':
            rc = cs_buf_puts(b, "\\textasciitilde{}");
            break;
        case '^':
            rc = cs_buf_puts(b, "\\textasciicircum{}");
            break;
        case '\\':
            rc = cs_buf_puts(b, "\\textbackslash{}");
            break;
        default:
            rc = cs_buf_putc(b, *s);
            break;
        }
    }
    return rc;
}

static double scaled(const ex_col *c, const cs_export_opts *o, double x)
{
    return o->percent && c->scale ? 100.0 * x : x;
}

/* One number cell: rank 1 bold, 2 underlined. */
static cs_rc tex_num(cs_buf *b, const ex_col *c, const ex_cell *x, const cs_export_opts *o,
                     int rank)
{
    int d = ex_digits(o, c);
    cs_buf v = {0};
    cs_rc rc;
    if (isnan(x->mean)) {
        return cs_buf_puts(b, "--");
    }
    if (c->delta) {
        return cs_buf_printf(b, "$%+.*f$%s%s%s", d, scaled(c, o, x->mean), *x->mark ? "$^{" : "",
                             x->mark, *x->mark ? "}$" : "");
    }
    rc = cs_buf_printf(&v, "%.*f", d, scaled(c, o, x->mean));
    if (rc == CS_OK && x->n > 1 && isfinite(x->std)) {
        rc = cs_buf_printf(&v, "$\\pm$%.*f", d, scaled(c, o, x->std));
    }
    if (rc == CS_OK) {
        rc = cs_buf_printf(b,
                           rank == 1   ? "\\textbf{%s}"
                           : rank == 2 ? "\\underline{%s}"
                                       : "%s",
                           v.data);
    }
    cs_buf_fini(&v);
    return rc;
}

static cs_rc tex_header(cs_buf *b, const ex_table *t)
{
    cs_rc rc = cs_buf_puts(b, "\\begin{tabular}{");
    for (size_t c = 0; c < t->n_cols && rc == CS_OK; c++) {
        rc = cs_buf_putc(b, t->cols[c].kind == EX_AXIS ? 'l' : 'r');
    }
    rc = rc == CS_OK ? cs_buf_puts(b, "}\n\\toprule\n") : rc;
    for (size_t c = 0; c < t->n_cols && rc == CS_OK; c++) {
        const ex_col *col = &t->cols[c];
        rc = c ? cs_buf_puts(b, " & ") : CS_OK;
        if (rc == CS_OK && col->kind == EX_NUM && col->axis) {
            rc = tex_text(b, col->axis);
            rc = rc == CS_OK ? cs_buf_putc(b, '=') : rc;
        }
        if (rc == CS_OK) {
            rc = col->delta ? cs_buf_puts(b, "$\\Delta$ average") : tex_text(b, col->name);
        }
        if (rc == CS_OK && col->dir) {
            rc = cs_buf_puts(b, col->dir > 0 ? " $\\uparrow$" : " $\\downarrow$");
        }
    }
    return rc == CS_OK ? cs_buf_puts(b, " \\\\\n\\midrule\n") : rc;
}

/* Rows sharing the first label column's text with the rows before them. */
static size_t run_length(const ex_table *t, size_t r)
{
    size_t n = 1;
    while (t->n_cols && t->cols[0].kind == EX_AXIS && r + n < t->n_rows &&
           strcmp(t->cells[(r + n) * t->n_cols].text, t->cells[r * t->n_cols].text) == 0) {
        n++;
    }
    return n;
}

static cs_rc tex_body(cs_buf *b, const ex_table *t, const cs_export_opts *o, const uint8_t *rank)
{
    cs_rc rc = CS_OK;
    size_t run = 0, prev = 0;
    for (size_t r = 0; r < t->n_rows && rc == CS_OK; r++) {
        bool head = run == 0; /* the first row of a group */
        if (head) {
            run = run_length(t, r);
            if (r > 0 && t->cols[0].kind == EX_AXIS && (run > 1 || prev > 1)) {
                rc = cs_buf_puts(b, "\\addlinespace\n");
            }
            prev = run;
        }
        for (size_t c = 0; c < t->n_cols && rc == CS_OK; c++) {
            const ex_col *col = &t->cols[c];
            const ex_cell *x = &t->cells[r * t->n_cols + c];
            rc = c ? cs_buf_puts(b, " & ") : CS_OK;
            if (rc != CS_OK) {
                break;
            }
            if (col->kind == EX_SEEDS) {
                rc = cs_buf_printf(b, "%lld", (long long)x->n);
            } else if (col->kind == EX_NUM) {
                rc = tex_num(b, col, x, o, rank[r * t->n_cols + c]);
            } else if (c == 0 && head && run > 1) {
                rc = cs_buf_printf(b, "\\multirow{%zu}{*}{", run);
                rc = rc == CS_OK ? tex_text(b, *x->text ? x->text : "--") : rc;
                rc = rc == CS_OK ? cs_buf_putc(b, '}') : rc;
            } else if (c > 0 || head) {
                rc = tex_text(b, *x->text ? x->text : "--");
            }
        }
        rc = rc == CS_OK ? cs_buf_puts(b, " \\\\\n") : rc;
        run--;
    }
    return rc;
}

/* The caption: what the cells are, the seeds, the marks, the test. */
static cs_rc tex_caption(cs_buf *b, const ex_table *t, const cs_export_opts *o)
{
    cs_rc rc = cs_buf_printf(b,
                             "\\caption{Mean $\\pm$ std across seeds (%lld seed%s; rows with "
                             "one job show its value)%s. Best value per column in bold, second "
                             "underlined, among quantized rows with every seed done.",
                             (long long)t->max_seeds, t->max_seeds == 1 ? "" : "s",
                             o->percent ? ", accuracies in percent" : "");
    if (rc == CS_OK && t->common && *t->common) {
        rc = cs_buf_puts(b, " All rows: ");
        rc = rc == CS_OK ? tex_text(b, t->common) : rc;
        rc = rc == CS_OK ? cs_buf_putc(b, '.') : rc;
    }
    if (rc == CS_OK && t->ref_axis) {
        rc = cs_buf_puts(b, " $\\Delta$: the average against the row with ");
        rc = rc == CS_OK ? tex_text(b, t->ref_axis) : rc;
        rc = rc == CS_OK ? cs_buf_putc(b, '=') : rc;
        rc = rc == CS_OK ? tex_text(b, t->ref_value) : rc;
        rc = rc == CS_OK ? cs_buf_printf(b,
                                         "; paired bootstrap over items and seeds (%lld "
                                         "resamples), Holm--Bonferroni adjusted: $^{*}$ $p<0.05$, "
                                         "$^{**}$ $p<0.01$, $^{***}$ $p<0.001$.",
                                         (long long)t->resamples)
                         : rc;
    }
    return rc == CS_OK ? cs_buf_puts(b, "}\n") : rc;
}

cs_rc ex_latex_document(cs_buf *b, bool begin)
{
    return cs_buf_puts(b, begin ? "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n"
                                  "\\usepackage{booktabs}\n\\usepackage{multirow}\n"
                                  "\\usepackage[margin=1cm,landscape]{geometry}\n"
                                  "\\begin{document}\n"
                                : "\\end{document}\n");
}

cs_rc ex_write_latex(cs_buf *b, const ex_table *t, const cs_export_opts *o, const char *note)
{
    uint8_t *rank = NULL;
    cs_rc rc = ex_table_ranks(t,
                              o->digits >= 0 ? o->digits
                              : o->percent   ? 1
                                             : 3,
                              o->percent, &rank);
    rc = rc == CS_OK ? cs_buf_puts(b, "% ") : rc;
    for (const char *s = note; rc == CS_OK && *s; s++) {
        rc = *s == '\n' ? cs_buf_puts(b, "\n% ") : cs_buf_putc(b, *s);
    }
    rc = rc == CS_OK ? cs_buf_putc(b, '\n') : rc;
    if (rc == CS_OK && o->standalone) {
        rc = ex_latex_document(b, true);
    } else if (rc == CS_OK) {
        rc = cs_buf_puts(b, "% needs \\usepackage{booktabs} and \\usepackage{multirow}\n");
    }
    rc = rc == CS_OK ? cs_buf_puts(b, "\\begin{table}[t]\n\\centering\n\\small\n") : rc;
    rc = rc == CS_OK ? tex_caption(b, t, o) : rc;
    rc = rc == CS_OK ? tex_header(b, t) : rc;
    rc = rc == CS_OK ? tex_body(b, t, o, rank) : rc;
    rc = rc == CS_OK ? cs_buf_puts(b, "\\bottomrule\n\\end{tabular}\n\\end{table}\n") : rc;
    if (rc == CS_OK && o->standalone) {
        rc = ex_latex_document(b, false);
    }
    free(rank);
    return rc;
}
