/* cs_agg_text.c - cs_agg_print_text: the aggregate of cs_agg_run as an aligned text table.
 *
 * Rows are the groups, columns: seeds, each task's headline (accuracies in percent, perplexity as
 * is; with a reference, the delta and its Holm mark follow: "71.3 +1.2**"), the average (M4), its
 * delta against the baseline, the balance (std_ret, worst_drop in points, min_ret), the average's
 * delta against the reference with its 95 % interval and mark, and the row's flags. It reads only
 * the JSON (docs/results.md), so a document that came from calsweepd prints the same.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_agg.h"
#include "cs_alloc.h"

static double get_num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Appends x scaled (percent for accuracies) or "-" when null. */
static void put_val(cs_buf *b, double x, bool pct, bool sign)
{
    if (!isfinite(x)) {
        cs_buf_puts(b, "-");
    } else if (pct) {
        cs_buf_printf(b, sign ? "%+.1f" : "%.1f", 100.0 * x);
    } else {
        cs_buf_printf(b, sign ? "%+.3f" : "%.3f", x);
    }
}

/* "+1.2**" or "+1.2 (untested: flagged)" of a comparison object. */
static void put_cmp(cs_buf *b, const cJSON *c, bool pct, bool with_ci)
{
    if (!cJSON_IsObject(c)) {
        cs_buf_puts(b, "-");
        return;
    }
    put_val(b, get_num(c, "delta"), pct, true);
    const cJSON *ci = cJSON_GetObjectItemCaseSensitive(c, "ci");
    if (with_ci && cJSON_GetArraySize(ci) == 2) {
        cs_buf_puts(b, " [");
        put_val(b, cJSON_GetArrayItem(ci, 0)->valuedouble, pct, true);
        cs_buf_puts(b, ", ");
        put_val(b, cJSON_GetArrayItem(ci, 1)->valuedouble, pct, true);
        cs_buf_puts(b, "]");
    }
    const cJSON *mark = cJSON_GetObjectItemCaseSensitive(c, "mark");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(c, "reason");
    if (cJSON_IsString(reason)) {
        cs_buf_printf(b, " (%s)", reason->valuestring);
    } else if (cJSON_IsString(mark)) {
        cs_buf_puts(b, mark->valuestring);
    }
}

typedef struct grid {
    char **cell; /* [rows][cols] */
    size_t rows, cols;
} grid;

static void set_cell(grid *g, size_t r, size_t c, cs_buf *b)
{
    g->cell[r * g->cols + c] = cs_buf_take(b);
}

static void header(grid *g, const cJSON *tasks, cs_buf *b)
{
    size_t c = 0;
    const char *fixed[] = {"row", "seeds"};
    for (size_t i = 0; i < 2; i++) {
        cs_buf_puts(b, fixed[i]);
        set_cell(g, 0, c++, b);
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, tasks)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        const cJSON *head = cJSON_GetObjectItemCaseSensitive(t, "headline");
        cs_buf_printf(b, "%s:%s", cJSON_IsString(name) ? name->valuestring : "?",
                      cJSON_IsString(head) ? head->valuestring : "?");
        set_cell(g, 0, c++, b);
    }
    const char *rest[] = {
            "avg", "d_base", "std_ret", "worst_drop", "min_ret", "d_ref avg [95% CI]", "flags"};
    for (size_t i = 0; i < sizeof(rest) / sizeof(*rest); i++) {
        cs_buf_puts(b, rest[i]);
        set_cell(g, 0, c++, b);
    }
}

static void row_cells(grid *g, size_t ri, const cJSON *row, const cJSON *tasks, cs_buf *b)
{
    size_t c = 0;
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(row, "label");
    cs_buf_puts(b, cJSON_IsString(label) ? label->valuestring : "?");
    set_cell(g, ri, c++, b);
    cs_buf_printf(b, "%.0f", get_num(row, "n_seeds"));
    set_cell(g, ri, c++, b);
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(row, "tasks");
    const cJSON *vr = cJSON_GetObjectItemCaseSensitive(row, "vs_reference");
    const cJSON *t;
    cJSON_ArrayForEach(t, tasks)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(t, "kind");
        bool pct = !(cJSON_IsString(kind) && strcmp(kind->valuestring, "perplexity") == 0);
        const char *n = cJSON_IsString(name) ? name->valuestring : "";
        put_val(b, get_num(cJSON_GetObjectItemCaseSensitive(rt, n), "value"), pct, false);
        if (cJSON_IsObject(vr)) {
            cs_buf_putc(b, ' ');
            put_cmp(b,
                    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(vr, "tasks"),
                                                     n),
                    pct, false);
        }
        set_cell(g, ri, c++, b);
    }
    put_val(b, get_num(cJSON_GetObjectItemCaseSensitive(row, "average"), "value"), true, false);
    set_cell(g, ri, c++, b);
    const cJSON *vb = cJSON_GetObjectItemCaseSensitive(row, "vs_baseline");
    const cJSON *bal = cJSON_GetObjectItemCaseSensitive(vb, "balance");
    put_val(b, get_num(cJSON_GetObjectItemCaseSensitive(vb, "average"), "delta"), true, true);
    set_cell(g, ri, c++, b);
    put_val(b, get_num(bal, "std_ret"), false, false);
    set_cell(g, ri, c++, b);
    put_val(b, get_num(bal, "worst_drop"), true, false);
    set_cell(g, ri, c++, b);
    put_val(b, get_num(bal, "min_ret"), false, false);
    set_cell(g, ri, c++, b);
    put_cmp(b, cJSON_GetObjectItemCaseSensitive(vr, "average"), true, true);
    set_cell(g, ri, c++, b);
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(row, "flags"))
    {
        cs_buf_printf(b, "%s%s", b->len ? "," : "", cJSON_IsString(f) ? f->valuestring : "?");
    }
    if (b->len == 0) {
        cs_buf_puts(b, "-");
    }
    set_cell(g, ri, c++, b);
}

static int print_grid(const grid *g, FILE *out)
{
    size_t *w = cs_calloc_array(g->cols, sizeof(*w));
    if (w == NULL) {
        return -1;
    }
    for (size_t r = 0; r < g->rows; r++) {
        for (size_t c = 0; c < g->cols; c++) {
            const char *s = g->cell[r * g->cols + c];
            size_t len = s != NULL ? strlen(s) : 0;
            w[c] = len > w[c] ? len : w[c];
        }
    }
    int rc = 0;
    for (size_t r = 0; r < g->rows && rc >= 0; r++) {
        for (size_t c = 0; c < g->cols && rc >= 0; c++) {
            const char *s = g->cell[r * g->cols + c];
            bool last = c + 1 == g->cols;
            /* the label left-aligned, numbers right-aligned, the flags last without padding */
            if (c == 0) {
                rc = fprintf(out, "%-*s", (int)w[c], s != NULL ? s : "");
            } else if (last) {
                rc = fprintf(out, "  %s", s != NULL ? s : "");
            } else {
                rc = fprintf(out, "  %*s", (int)w[c], s != NULL ? s : "");
            }
        }
        rc = rc >= 0 ? fputc('\n', out) : rc;
    }
    free(w);
    return rc < 0 ? -1 : 0;
}

cs_rc cs_agg_print_text(const cJSON *agg, FILE *out, cs_err *err)
{
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(agg, "rows");
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(agg, "tasks");
    if (!cJSON_IsArray(rows) || !cJSON_IsArray(tasks)) {
        return cs_err_set(err, CS_EINVAL, 0, "results: not an aggregate (no rows or tasks)");
    }
    grid g = {.rows = (size_t)cJSON_GetArraySize(rows) + 1,
              .cols = (size_t)cJSON_GetArraySize(tasks) + 9};
    g.cell = cs_calloc_array(g.rows * g.cols, sizeof(*g.cell));
    if (g.cell == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "results: a table of %zu rows", g.rows);
    }
    cs_buf b = {0};
    header(&g, tasks, &b);
    size_t ri = 1;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        row_cells(&g, ri++, row, tasks, &b);
    }
    cs_buf_fini(&b);
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(agg, "reference");
    const cJSON *cmp = cJSON_GetObjectItemCaseSensitive(agg, "comparisons");
    int rc = 0;
    const cJSON *rax = cJSON_GetObjectItemCaseSensitive(ref, "axis");
    const cJSON *rval = cJSON_GetObjectItemCaseSensitive(ref, "value");
    if (cJSON_IsString(rax) && cJSON_IsString(rval)) {
        rc = fprintf(out,
                     "reference %s=%s: paired bootstrap, %.0f resamples, seed %.0f; Holm over %.0f "
                     "tests (* p<0.05, ** p<0.01, *** p<0.001)\n",
                     rax->valuestring, rval->valuestring, get_num(agg, "resamples"),
                     get_num(agg, "seed"), get_num(cmp, "tested"));
    }
    rc = rc >= 0 ? print_grid(&g, out) : rc;
    cs_free_each((void *const *)g.cell, g.rows * g.cols);
    free(g.cell);
    if (rc < 0) {
        return cs_err_errno(err, errno, "results: writing the table");
    }
    return CS_OK;
}
