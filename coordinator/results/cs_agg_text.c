/* cs_agg_text.c - cs_agg_print_text: the aggregate of cs_agg_run as an aligned text table.
 *
 * Rows are the groups, columns: seeds, each task's headline (accuracies in percent, perplexity as
 * is; with a reference, the delta and its Holm mark follow: "71.3 +1.2**"), the average (M4), its
 * delta against the baseline, the balance (std_ret, worst_drop in points, min_ret), the average's
 * delta against the reference with its 95 % interval and mark, and the row's flags. It reads only
 * the JSON (docs/results.md), so a document that came from calsweepd prints the same.
 *
 * Row labels are short (docs/results.md "Text table"): the axes whose value is the same in every
 * row that has one are printed once above the table ("all rows: eval=default seq_len=128"); a row
 * is labelled by the axes that vary, an object value by its name and only the members that differ
 * among the rows with that name on that axis ("gptq(bits=4)").
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_agg.h"
#include "cs_alloc.h"
#include "cs_canon.h"

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

/* A row's value on axis ax, NULL when null or absent. */
static const cJSON *row_val(const cJSON *row, const char *ax)
{
    const cJSON *v =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(row, "values"), ax);
    return v != NULL && !cJSON_IsNull(v) ? v : NULL;
}

static const char *obj_name(const cJSON *v)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(v, "name");
    return cJSON_IsObject(v) && cJSON_IsString(n) ? n->valuestring : NULL;
}

static void mark_key(cJSON *keys, const char *k)
{
    if (strcmp(k, "name") != 0 && cJSON_GetObjectItemCaseSensitive(keys, k) == NULL) {
        cJSON_AddTrueToObject(keys, k);
    }
}

/* For axis ax: {name: {member: true}} with, per object name, the members (name aside) whose values
 * differ among the rows having that name (absent counts as a value). Each row is compared with
 * the first row of its name. NULL on no memory. */
static cJSON *name_diffs(const cJSON *rows, const char *ax)
{
    cJSON *reps = cJSON_CreateObject(), *diffs = cJSON_CreateObject();
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        const cJSON *v = row_val(row, ax);
        const char *name = obj_name(v);
        if (name == NULL || reps == NULL || diffs == NULL) {
            continue;
        }
        const cJSON *rep = cJSON_GetObjectItemCaseSensitive(reps, name);
        cJSON *keys = cJSON_GetObjectItemCaseSensitive(diffs, name);
        if (rep == NULL) {
            cJSON_AddItemToObject(reps, name, cJSON_CreateObjectReference(v->child));
            cJSON_AddItemToObject(diffs, name, cJSON_CreateObject());
            continue;
        }
        for (const cJSON *m = v->child; m != NULL; m = m->next) {
            if (!cJSON_Compare(m, cJSON_GetObjectItemCaseSensitive(rep, m->string), true)) {
                mark_key(keys, m->string);
            }
        }
        for (const cJSON *m = rep->child; m != NULL; m = m->next) {
            if (cJSON_GetObjectItemCaseSensitive(v, m->string) == NULL) {
                mark_key(keys, m->string);
            }
        }
    }
    cJSON_Delete(reps);
    return diffs;
}

/* A scalar as labels show it: a string as is, anything else as canonical JSON. */
static void put_plain(cs_buf *b, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        cs_buf_puts(b, v->valuestring);
    } else if (cs_canon_append(v, b, NULL) != CS_OK) {
        cs_buf_puts(b, "?");
    }
}

/* An axis value: an object with a name as name(member=value,...) with the members of diffs[name];
 * anything else plainly. */
static void put_short(cs_buf *b, const cJSON *v, const cJSON *diffs)
{
    const char *name = obj_name(v);
    if (name == NULL) {
        put_plain(b, v);
        return;
    }
    cs_buf_puts(b, name);
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(diffs, name);
    size_t k = 0;
    for (const cJSON *m = v->child; m != NULL; m = m->next) {
        if (cJSON_GetObjectItemCaseSensitive(keys, m->string) != NULL) {
            cs_buf_printf(b, "%s%s=", k++ ? "," : "(", m->string);
            put_plain(b, m);
        }
    }
    if (k > 0) {
        cs_buf_putc(b, ')');
    }
}

enum { AX_NULL, AX_COMMON, AX_VARIES };

/* Whether axis ax is null in every row, has the same value in every row that has one, or varies;
 * *first: the first value. */
static int axis_kind(const cJSON *rows, const char *ax, const cJSON **first)
{
    *first = NULL;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        const cJSON *v = row_val(row, ax);
        if (v != NULL && *first == NULL) {
            *first = v;
        } else if (v != NULL && !cJSON_Compare(v, *first, true)) {
            return AX_VARIES;
        }
    }
    return *first != NULL ? AX_COMMON : AX_NULL;
}

/* Whether axis ax marks the baseline rows (algorithm=none): every baseline row has one value
 * there that no other row has. Baseline rows leave such an axis out of their label. */
static bool baseline_marker(const cJSON *rows, const char *ax)
{
    const cJSON *mark = NULL, *row;
    cJSON_ArrayForEach(row, rows)
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "baseline"))) {
            const cJSON *v = row_val(row, ax);
            if (v == NULL || (mark != NULL && !cJSON_Compare(v, mark, true))) {
                return false;
            }
            mark = v;
        }
    }
    cJSON_ArrayForEach(row, rows)
    {
        const cJSON *v = row_val(row, ax);
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "baseline")) && v != NULL &&
            cJSON_Compare(v, mark, true)) {
            return false;
        }
    }
    return mark != NULL;
}

/* The short labels: common = "eval=default seq_len=128" (NULL when none), label[i] of row i. */
typedef struct labels {
    char *common;
    char **label;
    size_t n;
} labels;

static void labels_fini(labels *l)
{
    free(l->common);
    cs_free_each((void *const *)l->label, l->label != NULL ? l->n : 0);
    free(l->label);
}

/* Appends axis ax to the common line or to every row's label. */
static void label_axis(labels *l, const cJSON *rows, const char *ax, cs_buf *common, cs_buf *lb)
{
    const cJSON *first;
    int kind = axis_kind(rows, ax, &first);
    if (kind == AX_NULL) {
        return;
    }
    cJSON *diffs = name_diffs(rows, ax);
    if (kind == AX_COMMON) {
        cs_buf_printf(common, "%s%s=", common->len ? " " : "", ax);
        put_short(common, first, diffs);
        cJSON_Delete(diffs);
        return;
    }
    bool marker = baseline_marker(rows, ax);
    size_t i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        const cJSON *v = row_val(row, ax);
        bool base = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "baseline"));
        if (v != NULL && !(base && marker)) {
            lb[i].len = 0;
            cs_buf_puts(&lb[i], l->label[i]);
            cs_buf_printf(&lb[i], "%s%s=", lb[i].len ? " " : "", ax);
            put_short(&lb[i], v, diffs);
            free(l->label[i]);
            l->label[i] = cs_buf_take(&lb[i]);
        }
        i++;
    }
    cJSON_Delete(diffs);
}

static cs_rc make_labels(const cJSON *agg, labels *l)
{
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(agg, "rows");
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(agg, "by");
    memset(l, 0, sizeof(*l));
    l->n = (size_t)cJSON_GetArraySize(rows);
    l->label = cs_calloc_array(l->n + 1, sizeof(*l->label));
    cs_buf *lb = cs_calloc_array(l->n + 1, sizeof(*lb));
    cs_buf common = {0};
    bool ok = l->label != NULL && lb != NULL;
    size_t i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        bool base = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "baseline"));
        ok = ok && (l->label[i++] = cs_strdup(base ? "baseline" : "")) != NULL;
    }
    const cJSON *ax;
    cJSON_ArrayForEach(ax, by)
    {
        if (ok && cJSON_IsString(ax)) {
            label_axis(l, rows, ax->valuestring, &common, lb);
        }
    }
    for (i = 0; ok && i < l->n; i++) {
        ok = l->label[i] != NULL;
    }
    l->common = common.len > 0 ? cs_buf_take(&common) : NULL;
    cs_buf_fini(&common);
    for (i = 0; lb != NULL && i <= l->n; i++) {
        cs_buf_fini(&lb[i]);
    }
    free(lb);
    return ok ? CS_OK : CS_ENOMEM;
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

static void row_cells(grid *g, size_t ri, const cJSON *row, const cJSON *tasks, const char *label,
                      cs_buf *b)
{
    size_t c = 0;
    cs_buf_puts(b, label != NULL && label[0] != '\0' ? label : "-");
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

/* The reference line and the axes common to every row, above the table. */
static int print_head(const cJSON *agg, const labels *l, FILE *out)
{
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(agg, "reference");
    const cJSON *cmp = cJSON_GetObjectItemCaseSensitive(agg, "comparisons");
    const cJSON *rax = cJSON_GetObjectItemCaseSensitive(ref, "axis");
    const cJSON *rval = cJSON_GetObjectItemCaseSensitive(ref, "value");
    int rc = 0;
    if (cJSON_IsString(rax) && cJSON_IsString(rval)) {
        rc = fprintf(out,
                     "reference %s=%s: paired bootstrap, %.0f resamples, seed %.0f; Holm over %.0f "
                     "tests (* p<0.05, ** p<0.01, *** p<0.001)\n",
                     rax->valuestring, rval->valuestring, get_num(agg, "resamples"),
                     get_num(agg, "seed"), get_num(cmp, "tested"));
    }
    if (rc >= 0 && l->common != NULL) {
        rc = fprintf(out, "all rows: %s\n", l->common);
    }
    return rc;
}

/* Below the table, per no_reference row: its candidates by their short value on the reference
 * axis ("several rows match algorithm=rtn: rtn(bits=4,group_size=-1), ..."). */
static int print_no_ref(const cJSON *agg, const labels *l, FILE *out)
{
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(agg, "rows"), *row;
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(agg, "reference");
    const cJSON *rax = cJSON_GetObjectItemCaseSensitive(ref, "axis");
    const cJSON *rval = cJSON_GetObjectItemCaseSensitive(ref, "value");
    if (!cJSON_IsString(rax) || !cJSON_IsString(rval)) {
        return 0;
    }
    cJSON *diffs = name_diffs(rows, rax->valuestring);
    cs_buf b = {0};
    int rc = 0;
    size_t i = 0;
    cJSON_ArrayForEach(row, rows)
    {
        const cJSON *nr = cJSON_GetObjectItemCaseSensitive(row, "no_reference");
        const cJSON *cand = cJSON_GetObjectItemCaseSensitive(nr, "candidates"), *c;
        const char *lab = l->label[i++];
        if (!cJSON_IsObject(nr) || rc < 0) {
            continue;
        }
        b.len = 0;
        cs_buf_printf(&b, "no_reference [%s]: ", lab[0] != '\0' ? lab : "-");
        if (cJSON_GetArraySize(cand) == 0) {
            cs_buf_printf(&b, "no row with %s=%s has its other values", rax->valuestring,
                          rval->valuestring);
        } else {
            cs_buf_printf(&b, "several rows match %s=%s:", rax->valuestring, rval->valuestring);
        }
        size_t k = 0;
        cJSON_ArrayForEach(c, cand)
        {
            const cJSON *cr = cJSON_IsNumber(c) ? cJSON_GetArrayItem(rows, c->valueint) : NULL;
            const cJSON *v = row_val(cr, rax->valuestring);
            cs_buf_puts(&b, k++ ? ", " : " ");
            if (v != NULL) {
                put_short(&b, v, diffs);
            } else {
                cs_buf_puts(&b, "-");
            }
        }
        rc = fprintf(out, "%s\n", b.data != NULL ? b.data : "");
    }
    cs_buf_fini(&b);
    cJSON_Delete(diffs);
    return rc;
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
    labels l;
    if (make_labels(agg, &l) != CS_OK || g.cell == NULL) {
        labels_fini(&l);
        free(g.cell);
        return cs_err_set(err, CS_ENOMEM, 0, "results: a table of %zu rows", g.rows);
    }
    cs_buf b = {0};
    header(&g, tasks, &b);
    size_t ri = 1;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        row_cells(&g, ri, row, tasks, l.label[ri - 1], &b);
        ri++;
    }
    cs_buf_fini(&b);
    int rc = print_head(agg, &l, out);
    rc = rc >= 0 ? print_grid(&g, out) : rc;
    rc = rc >= 0 ? print_no_ref(agg, &l, out) : rc;
    labels_fini(&l);
    cs_free_each((void *const *)g.cell, g.rows * g.cols);
    free(g.cell);
    if (rc < 0) {
        return cs_err_errno(err, errno, "results: writing the table");
    }
    return CS_OK;
}
