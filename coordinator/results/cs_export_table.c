/* cs_export_table.c - the exports' table (cs_export_table.h): rows selected by --where, the axes
 * shared by every row set aside, then one label column per varying grouping axis and the value
 * columns: with --cols tasks, seeds, each task's headline, the average (M4), std_ret (M5) and the
 * average's delta against the reference; with --cols AXIS, the average of each value of AXIS. */
#include "cs_export_table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_agg.h"
#include "cs_alloc.h"

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* A count from the JSON; 0 for null, negative or not a number. */
static int64_t to_i64(double d)
{
    return isfinite(d) && d > 0 && d < 9e18 ? (int64_t)d : 0;
}

static bool has_axis(const cJSON *by, const char *axis)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, by)
    {
        if (cJSON_IsString(a) && strcmp(a->valuestring, axis) == 0) {
            return true;
        }
    }
    return false;
}

/* "a, b, c" of the strings of an array. */
static void list_of(cs_buf *b, const cJSON *arr)
{
    const cJSON *a;
    bool first = true;
    cJSON_ArrayForEach(a, arr)
    {
        cs_buf_printf(b, "%s%s", first ? "" : ", ", cJSON_IsString(a) ? a->valuestring : "?");
        first = false;
    }
}

/* The distinct display forms of axis over rows, "a, b, c" (seen: "\x1fa\x1fb\x1f"). */
static void values_of(cs_buf *b, const cJSON *rows, const char *axis)
{
    cs_buf seen = {0};
    const cJSON *r;
    cs_buf_putc(&seen, '\x1f');
    cJSON_ArrayForEach(r, rows)
    {
        cs_buf one = {0};
        const cJSON *v = get(get(r, "values"), axis);
        cs_buf_putc(&one, '\x1f');
        if (v && !cJSON_IsNull(v) && cs_export_value_text(&one, v) == CS_OK &&
            cs_buf_putc(&one, '\x1f') == CS_OK && seen.data && !strstr(seen.data, one.data)) {
            cs_buf_printf(b, "%s%.*s", seen.len > 1 ? ", " : "", (int)(one.len - 2), one.data + 1);
            cs_buf_append(&seen, one.data + 1, one.len - 1);
        }
        cs_buf_fini(&one);
    }
    cs_buf_fini(&seen);
}

static cs_rc check_agg(const cJSON *agg, cs_err *err)
{
    if (!cJSON_IsObject(agg) || !cJSON_IsArray(get(agg, "rows")) ||
        !cJSON_IsArray(get(agg, "by")) || !cJSON_IsArray(get(agg, "tasks"))) {
        return cs_err_set(err, CS_EINVAL, 0, "export: not an aggregate (docs/results.md)");
    }
    return CS_OK;
}

/* An axis of --where or --cols that the aggregate does not group by. */
static cs_rc no_axis(const cJSON *agg, const char *what, const char *axis, const char *value,
                     cs_err *err)
{
    cs_buf b = {0};
    list_of(&b, get(agg, "by"));
    cs_rc rc = cs_err_set(err, CS_EINVAL, 0, "%s %s%s%s: no such axis; axes: %s", what, axis,
                          value ? "=" : "", value ? value : "", b.data ? b.data : "");
    cs_buf_fini(&b);
    return rc;
}

static bool row_kept(const cJSON *row, const cs_export_opts *o)
{
    for (size_t w = 0; w < o->n_where; w++) {
        if (!cs_export_value_matches(get(get(row, "values"), o->where[w].axis),
                                     o->where[w].value)) {
            return false;
        }
    }
    return true;
}

/* A --where value that matches no row at all: the axis's values. */
static cs_rc check_where(const cJSON *agg, const cs_export_opts *o, cs_err *err)
{
    const cJSON *rows = get(agg, "rows");
    for (size_t w = 0; w < o->n_where; w++) {
        const cs_export_where *wh = &o->where[w];
        const cJSON *r;
        bool any = false;
        if (!has_axis(get(agg, "by"), wh->axis)) {
            return no_axis(agg, "--where", wh->axis, wh->value, err);
        }
        cJSON_ArrayForEach(r, rows)
        {
            any = any || cs_export_value_matches(get(get(r, "values"), wh->axis), wh->value);
        }
        if (!any) {
            cs_buf b = {0};
            values_of(&b, rows, wh->axis);
            cs_rc rc = cs_err_set(err, CS_ENOENT, 0, "--where %s=%s: no row has it; values: %s",
                                  wh->axis, wh->value, b.data ? b.data : "(none)");
            cs_buf_fini(&b);
            return rc;
        }
    }
    return CS_OK;
}

cs_rc ex_select_rows(const cJSON *agg, const cs_export_opts *o, cJSON **out, cs_err *err)
{
    const cJSON *r;
    cJSON *sel = NULL;
    cs_rc rc = check_agg(agg, err);
    *out = NULL;
    if (rc == CS_OK) {
        rc = check_where(agg, o, err);
    }
    if (rc != CS_OK) {
        return rc;
    }
    sel = cJSON_CreateArray();
    if (!sel) {
        return cs_err_set(err, CS_ENOMEM, 0, "export: out of memory");
    }
    cJSON_ArrayForEach(r, get(agg, "rows"))
    {
        if (row_kept(r, o) && !cJSON_AddItemToArray(sel, cJSON_CreateObjectReference(r->child))) {
            cJSON_Delete(sel);
            return cs_err_set(err, CS_ENOMEM, 0, "export: out of memory");
        }
    }
    if (cJSON_GetArraySize(sel) == 0) {
        cJSON_Delete(sel);
        return cs_err_set(err, CS_ENOENT, 0,
                          o->n_where ? "no row matches every --where" : "the sweep has no rows");
    }
    *out = sel;
    return CS_OK;
}

void ex_table_fini(ex_table *t)
{
    if (!t) {
        return;
    }
    for (size_t c = 0; c < t->n_cols; c++) {
        free(t->cols[c].name);
    }
    for (size_t i = 0; i < t->n_rows * t->n_cols; i++) {
        free(t->cells[i].text);
    }
    free(t->cols);
    free(t->cells);
    free(t->common);
    free(t->reference);
    cJSON_Delete(t->diffs);
    memset(t, 0, sizeof(*t));
}

/* Appends a column; name is copied. */
static cs_rc add_col(ex_table *t, ex_kind kind, const char *name, const char *axis, int dir,
                     bool scale)
{
    if (t->n_cols == t->cap_cols) {
        size_t cap = t->cap_cols ? 2 * t->cap_cols : 8;
        ex_col *v = cs_realloc_array(t->cols, cap, sizeof(*v));
        if (!v) {
            return CS_ENOMEM;
        }
        t->cols = v;
        t->cap_cols = cap;
    }
    char *copy = cs_strdup(name);
    if (!copy) {
        return CS_ENOMEM;
    }
    t->cols[t->n_cols++] =
            (ex_col){.kind = kind, .name = copy, .axis = axis, .dir = dir, .scale = scale};
    return CS_OK;
}

/* Appends a row of empty cells (NaN numbers); *r its index. Columns are fixed by then. */
static cs_rc add_row(ex_table *t, size_t *r)
{
    if (t->n_rows == t->cap_rows) {
        size_t cap = t->cap_rows ? 2 * t->cap_rows : 8;
        ex_cell *v = cs_realloc_array(t->cells, cap * t->n_cols, sizeof(*v));
        if (!v && t->n_cols > 0) {
            return CS_ENOMEM;
        }
        t->cells = v;
        t->cap_rows = cap;
    }
    for (size_t c = 0; c < t->n_cols; c++) {
        t->cells[t->n_rows * t->n_cols + c] =
                (ex_cell){.mean = NAN, .std = NAN, .p = NAN, .mark = ""};
    }
    *r = t->n_rows++;
    return CS_OK;
}

static ex_cell *cell(ex_table *t, size_t r, size_t c)
{
    return &t->cells[r * t->n_cols + c];
}

/* Appends v, a value of axis, in its short form among the selected rows (nothing for null), with
 * the members of ex_value_diffs over them (found once per axis). CS_ENOMEM. */
static cs_rc short_text(ex_table *t, cs_buf *b, const char *axis, const cJSON *v)
{
    const cJSON *d;
    if (!v || cJSON_IsNull(v)) {
        return CS_OK;
    }
    if (!t->diffs && !(t->diffs = cJSON_CreateObject())) {
        return CS_ENOMEM;
    }
    d = get(t->diffs, axis);
    if (!d) {
        size_t n = 0, cap = (size_t)cJSON_GetArraySize(t->rows);
        const cJSON **col = cs_alloc_array(cap + 1, sizeof(*col));
        const cJSON *r;
        cJSON *nd;
        if (!col) {
            return CS_ENOMEM;
        }
        cJSON_ArrayForEach(r, t->rows)
        {
            const cJSON *x = get(get(r, "values"), axis);
            if (x && !cJSON_IsNull(x) && n < cap) {
                col[n++] = x;
            }
        }
        nd = ex_value_diffs(col, n);
        free(col);
        if (!nd || !cJSON_AddItemToObject(t->diffs, axis, nd)) {
            cJSON_Delete(nd);
            return CS_ENOMEM;
        }
        d = nd;
    }
    return cs_agg_value_short(b, v, d);
}

/* The label axes: the grouping axes (but skip) whose non-null values differ among rows, lead's
 * first (in its order), then the others in `by` order, into axes (n_by entries at most); the
 * ones with a single value go to t->common. */
static cs_rc split_axes(ex_table *t, const cJSON *agg, const cJSON *rows, const char *skip,
                        const cs_export_opts *o, const char **axes, size_t *n_axes)
{
    cs_buf common = {0};
    const cJSON *a;
    cs_rc rc = CS_OK;
    size_t n_lead = 0;
    *n_axes = 0;
    cJSON_ArrayForEach(a, get(agg, "by"))
    {
        const cJSON *first = NULL, *r;
        bool varies = false;
        if (!cJSON_IsString(a) || (skip && strcmp(a->valuestring, skip) == 0)) {
            continue;
        }
        cJSON_ArrayForEach(r, rows)
        {
            const cJSON *v = get(get(r, "values"), a->valuestring);
            if (!v || cJSON_IsNull(v)) {
                continue;
            }
            varies = varies || (first && !cJSON_Compare(first, v, true));
            first = first ? first : v;
        }
        if (varies) {
            axes[(*n_axes)++] = a->valuestring;
        } else if (first) {
            rc = cs_buf_printf(&common, "%s%s=", common.len ? " " : "", a->valuestring);
            rc = rc == CS_OK ? short_text(t, &common, a->valuestring, first) : rc;
        }
        if (rc != CS_OK) {
            break;
        }
    }
    /* lead's axes to the front, in lead's order; the others keep theirs */
    for (size_t l = 0; l < o->n_lead; l++) {
        for (size_t i = n_lead; i < *n_axes; i++) {
            if (strcmp(axes[i], o->lead[l]) == 0) {
                const char *x = axes[i];
                memmove(&axes[n_lead + 1], &axes[n_lead], (i - n_lead) * sizeof(*axes));
                axes[n_lead++] = x;
                break;
            }
        }
    }
    t->common = rc == CS_OK ? cs_buf_take(&common) : NULL;
    cs_buf_fini(&common);
    return rc;
}

/* Label columns and the row's cells in them. */
static cs_rc add_label_cols(ex_table *t, const char *const *axes, size_t n)
{
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        rc = add_col(t, EX_AXIS, axes[i], axes[i], 0, false);
    }
    return rc;
}

static cs_rc fill_labels(ex_table *t, size_t r, const cJSON *row, size_t n_axes)
{
    for (size_t c = 0; c < n_axes; c++) {
        cs_buf b = {0};
        const cJSON *v = get(get(row, "values"), t->cols[c].axis);
        if (short_text(t, &b, t->cols[c].axis, v) != CS_OK) {
            cs_buf_fini(&b);
            return CS_ENOMEM;
        }
        cell(t, r, c)->text = cs_buf_take(&b);
        cs_buf_fini(&b);
    }
    t->jobs += to_i64(num(get(row, "jobs"), "done"));
    return CS_OK;
}

/* Whether a headline metric is better lower. */
static bool lower_better(const char *metric)
{
    return strcmp(metric, "ppl") == 0 || strcmp(metric, "window_loss") == 0 ||
           strcmp(metric, "bpb") == 0 || strcmp(metric, "std_ret") == 0;
}

/* t->reference from the aggregate's reference and resamples. */
static cs_rc note_reference(ex_table *t, const cJSON *agg)
{
    const cJSON *ax = get(get(agg, "reference"), "axis"),
                *val = get(get(agg, "reference"), "value");
    cs_buf b = {0};
    cs_rc rc = cs_buf_printf(&b,
                             "delta average: against %s=%s, paired bootstrap (%lld resamples), "
                             "Holm-adjusted: * p<0.05, ** p<0.01, *** p<0.001",
                             cJSON_IsString(ax) ? ax->valuestring : "?",
                             cJSON_IsString(val) ? val->valuestring : "?",
                             (long long)to_i64(num(agg, "resamples")));
    t->reference = rc == CS_OK ? cs_buf_take(&b) : NULL;
    cs_buf_fini(&b);
    return rc;
}

/* --cols tasks: seeds, each task's headline, average, std_ret, delta vs the reference. */
static cs_rc task_cols(ex_table *t, const cJSON *agg, const cJSON *rows)
{
    const cJSON *task, *r;
    bool any_avg = false, any_bal = false;
    cs_rc rc = add_col(t, EX_SEEDS, "seeds", NULL, 0, false);
    cJSON_ArrayForEach(task, get(agg, "tasks"))
    {
        const cJSON *name = get(task, "name"), *head = get(task, "headline");
        cs_buf b = {0};
        if (!cJSON_IsString(name) || !cJSON_IsString(head)) {
            return CS_EINVAL;
        }
        any_avg = any_avg || cJSON_IsTrue(get(task, "in_average"));
        rc = rc == CS_OK ? cs_buf_printf(&b, "%s %s", name->valuestring, head->valuestring) : rc;
        rc = rc == CS_OK
                     ? add_col(t, EX_NUM, b.data, NULL, lower_better(head->valuestring) ? -1 : 1,
                               cJSON_IsTrue(get(task, "in_average")))
                     : rc;
        cs_buf_fini(&b);
    }
    cJSON_ArrayForEach(r, rows)
    {
        any_bal = any_bal || cJSON_IsObject(get(get(r, "vs_baseline"), "balance"));
    }
    rc = rc == CS_OK && any_avg ? add_col(t, EX_NUM, "average", NULL, 1, true) : rc;
    if (rc == CS_OK && any_bal) {
        rc = add_col(t, EX_NUM, "std_ret", NULL, -1, false);
        t->cols[t->n_cols - 1].single = rc == CS_OK;
    }
    if (rc == CS_OK && cJSON_IsObject(get(agg, "reference"))) {
        rc = add_col(t, EX_NUM, "delta average", NULL, 0, true);
        t->cols[t->n_cols - 1].delta = true;
        rc = rc == CS_OK ? note_reference(t, agg) : rc;
    }
    return rc;
}

/* Whether an aggregate row may hold a best value (ex_cell.rankable). */
static bool row_rankable(const cJSON *row)
{
    static const char *const bad[] = {"missing_seeds",  "failed_jobs", "lost_jobs",
                                      "cancelled_jobs", "partial",     "no_result"};
    const cJSON *f;
    if (cJSON_IsTrue(get(row, "baseline"))) {
        return false;
    }
    cJSON_ArrayForEach(f, get(row, "flags"))
    {
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
            if (cJSON_IsString(f) && strcmp(f->valuestring, bad[i]) == 0) {
                return false;
            }
        }
    }
    return true;
}

static void set_moments(ex_cell *c, const cJSON *m, double value)
{
    c->mean = value;
    c->std = num(m, "std");
    c->n = to_i64(num(m, "n"));
}

/* One aggregate row's cells from column first on (--cols tasks). */
static void task_cells(ex_table *t, size_t r, const cJSON *row, size_t first)
{
    size_t c = first;
    const cJSON *tasks = get(row, "tasks"), *ref = get(get(row, "vs_reference"), "average");
    cell(t, r, c++)->n = to_i64(num(row, "n_seeds"));
    for (; c < t->n_cols && t->cols[c].kind == EX_NUM; c++) {
        const char *name = t->cols[c].name;
        ex_cell *x = cell(t, r, c);
        x->rankable = row_rankable(row);
        if (strcmp(name, "average") == 0) {
            const cJSON *avg = get(row, "average");
            set_moments(x, avg, num(avg, "value"));
        } else if (strcmp(name, "std_ret") == 0) {
            x->mean = num(get(get(row, "vs_baseline"), "balance"), "std_ret");
            x->n = 1;
        } else if (t->cols[c].delta) {
            const cJSON *mark = get(ref, "mark");
            x->mean = num(ref, "delta");
            x->p = num(ref, "p_holm");
            x->mark = cJSON_IsString(mark) ? mark->valuestring : "";
        } else {
            size_t sp = strcspn(name, " ");
            const cJSON *tk = NULL, *it;
            cJSON_ArrayForEach(it, tasks)
            {
                tk = strlen(it->string) == sp && strncmp(it->string, name, sp) == 0 ? it : tk;
            }
            set_moments(x, get(get(tk, "metrics"), name + sp + 1), num(tk, "value"));
        }
    }
}

/* --cols tasks: one table row per aggregate row. */
static cs_rc build_tasks(ex_table *t, const cJSON *agg, const cJSON *rows, const cs_export_opts *o,
                         const char **axes)
{
    size_t n_axes = 0, r;
    const cJSON *row;
    cs_rc rc = split_axes(t, agg, rows, NULL, o, axes, &n_axes);
    rc = rc == CS_OK ? add_label_cols(t, axes, n_axes) : rc;
    rc = rc == CS_OK ? task_cols(t, agg, rows) : rc;
    cJSON_ArrayForEach(row, rows)
    {
        rc = rc == CS_OK ? add_row(t, &r) : rc;
        rc = rc == CS_OK ? fill_labels(t, r, row, n_axes) : rc;
        if (rc == CS_OK) {
            task_cells(t, r, row, n_axes);
        }
    }
    return rc;
}

/* The table row whose label cells equal row's (first n_axes columns); SIZE_MAX when none. */
static size_t find_row(ex_table *t, const cJSON *row, size_t n_axes)
{
    for (size_t r = 0; r < t->n_rows; r++) {
        bool same = true;
        for (size_t c = 0; c < n_axes && same; c++) {
            cs_buf b = {0};
            same = short_text(t, &b, t->cols[c].axis, get(get(row, "values"), t->cols[c].axis)) ==
                           CS_OK &&
                   strcmp(b.data ? b.data : "", cell(t, r, c)->text) == 0;
            cs_buf_fini(&b);
        }
        if (same) {
            return r;
        }
    }
    return SIZE_MAX;
}

/* --cols AXIS: a column per value of AXIS (first-seen order), the rows' averages in them. */
static cs_rc build_pivot(ex_table *t, const cJSON *agg, const cJSON *rows, const char *axis,
                         const cs_export_opts *o, const char **axes)
{
    size_t n_axes = 0;
    const cJSON *row;
    cs_rc rc = split_axes(t, agg, rows, axis, o, axes, &n_axes);
    rc = rc == CS_OK ? add_label_cols(t, axes, n_axes) : rc;
    cJSON_ArrayForEach(row, rows)
    {
        cs_buf b = {0};
        const cJSON *v = get(get(row, "values"), axis);
        bool seen = false;
        if (rc == CS_OK && v && !cJSON_IsNull(v)) {
            rc = short_text(t, &b, axis, v);
            for (size_t c = n_axes; c < t->n_cols && rc == CS_OK; c++) {
                seen = seen || strcmp(t->cols[c].name, b.data) == 0;
            }
            rc = rc == CS_OK && !seen ? add_col(t, EX_NUM, b.data, axis, 1, true) : rc;
        }
        cs_buf_fini(&b);
    }
    if (rc == CS_OK && t->n_cols == n_axes) {
        return CS_ENOENT;
    }
    cJSON_ArrayForEach(row, rows)
    {
        const cJSON *v = get(get(row, "values"), axis);
        size_t r, c = n_axes;
        cs_buf b = {0};
        if (rc != CS_OK || !v || cJSON_IsNull(v)) {
            continue;
        }
        r = find_row(t, row, n_axes);
        if (r == SIZE_MAX) {
            rc = add_row(t, &r);
            rc = rc == CS_OK ? fill_labels(t, r, row, n_axes) : rc;
        } else {
            t->jobs += to_i64(num(get(row, "jobs"), "done"));
        }
        rc = rc == CS_OK ? short_text(t, &b, axis, v) : rc;
        while (rc == CS_OK && c < t->n_cols && strcmp(t->cols[c].name, b.data) != 0) {
            c++;
        }
        if (rc == CS_OK && c < t->n_cols) {
            const cJSON *avg = get(row, "average");
            set_moments(cell(t, r, c), avg, num(avg, "value"));
            cell(t, r, c)->rankable = row_rankable(row);
        }
        cs_buf_fini(&b);
    }
    return rc;
}

/* Marks for best and second per column: 1 best, 2 second, 0 neither (ex_table_ranks). */
cs_rc ex_table_ranks(const ex_table *t, int digits_scaled, bool percent, uint8_t **out)
{
    uint8_t *rank = cs_calloc_array(t->n_rows * t->n_cols + 1, 1);
    if (!rank) {
        return CS_ENOMEM;
    }
    for (size_t c = 0; c < t->n_cols; c++) {
        const ex_col *col = &t->cols[c];
        int d = col->scale ? digits_scaled : 3;
        double best = NAN, second = NAN, k;
        if (col->kind != EX_NUM || col->dir == 0) {
            continue;
        }
        /* Values as shown (rounded to d decimals) times the direction: larger is better. */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t r = 0; r < t->n_rows; r++) {
                const ex_cell *x = &t->cells[r * t->n_cols + c];
                if (!x->rankable || !isfinite(x->mean)) {
                    continue;
                }
                k = col->dir * round((percent && col->scale ? 100.0 : 1.0) * x->mean * pow(10, d));
                if (pass == 0) {
                    best = isnan(best) || k > best ? k : best;
                } else if (k < best && (isnan(second) || k > second)) {
                    second = k;
                }
            }
        }
        for (size_t r = 0; r < t->n_rows; r++) {
            const ex_cell *x = &t->cells[r * t->n_cols + c];
            if (x->rankable && isfinite(x->mean)) {
                k = col->dir * round((percent && col->scale ? 100.0 : 1.0) * x->mean * pow(10, d));
                rank[r * t->n_cols + c] = k == best ? 1 : k == second ? 2 : 0;
            }
        }
    }
    *out = rank;
    return CS_OK;
}

cs_rc ex_table_build(ex_table *t, const cJSON *agg, const cs_export_opts *o, cs_err *err)
{
    cJSON *rows = NULL;
    const char **axes = NULL;
    bool pivot = o->cols && strcmp(o->cols, "tasks") != 0;
    cs_rc rc;
    memset(t, 0, sizeof(*t));
    rc = ex_select_rows(agg, o, &rows, err);
    if (rc != CS_OK) {
        return rc;
    }
    if (pivot && !has_axis(get(agg, "by"), o->cols)) {
        cJSON_Delete(rows);
        return no_axis(agg, "--cols", o->cols, NULL, err);
    }
    t->max_seeds = to_i64(num(agg, "max_seeds"));
    t->resamples = to_i64(num(agg, "resamples"));
    if (cJSON_IsString(get(get(agg, "reference"), "axis")) &&
        cJSON_IsString(get(get(agg, "reference"), "value"))) {
        t->ref_axis = get(get(agg, "reference"), "axis")->valuestring;
        t->ref_value = get(get(agg, "reference"), "value")->valuestring;
    }
    t->rows = rows;
    axes = cs_alloc_array((size_t)cJSON_GetArraySize(get(agg, "by")) + 1, sizeof(*axes));
    rc = !axes   ? CS_ENOMEM
         : pivot ? build_pivot(t, agg, rows, o->cols, o, axes)
                 : build_tasks(t, agg, rows, o, axes);
    free(axes);
    cJSON_Delete(rows);
    t->rows = NULL;
    if (rc == CS_ENOENT) {
        ex_table_fini(t);
        return cs_err_set(err, rc, 0, "--cols %s: no selected row has a value of %s", o->cols,
                          o->cols);
    }
    if (rc != CS_OK) {
        ex_table_fini(t);
        return cs_err_set(err, rc, 0, "export: %s",
                          rc == CS_ENOMEM ? "out of memory" : "malformed aggregate (tasks)");
    }
    return CS_OK;
}
