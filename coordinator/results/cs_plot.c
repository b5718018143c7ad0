/* cs_plot.c - the rows and numbers of a figure (cs_plot.h), the output file (temporary file and
 * rename) and the cairo surfaces; the drawing itself is cs_plot_draw.c. */
#include "cs_plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_path.h"
#include "cs_plot_int.h"

static const char *const KINDS[] = {"heatmap", "nsamples", "tasks"};
static const char *const FORMATS[] = {"svg", "pdf", "png"};

cs_rc cs_plot_kind_parse(const char *s, cs_plot_kind *out, cs_err *err)
{
    for (size_t i = 0; i < sizeof(KINDS) / sizeof(*KINDS); i++) {
        if (strcmp(s, KINDS[i]) == 0) {
            *out = (cs_plot_kind)i;
            return CS_OK;
        }
    }
    return cs_err_set(err, CS_EINVAL, 0, "--figure %s: unknown; figures: heatmap, nsamples, tasks",
                      s);
}

cs_rc cs_plot_format_parse(const char *s, cs_plot_format *out, cs_err *err)
{
    for (size_t i = 0; i < sizeof(FORMATS) / sizeof(*FORMATS); i++) {
        if (strcmp(s, FORMATS[i]) == 0) {
            *out = (cs_plot_format)(i + 1);
            return CS_OK;
        }
    }
    return cs_err_set(err, CS_EINVAL, 0, "--format %s: unknown; formats: svg, pdf, png", s);
}

/* The row's value on axis: its values member, or for the pseudo-axis "model" (when the sweep has
 * no such axis) the row's model name. NULL for null or absent. */
static const cJSON *row_axis(const cJSON *row, const char *axis)
{
    const cJSON *v =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(row, "values"), axis);
    if (!v && strcmp(axis, "model") == 0) {
        v = cJSON_GetObjectItemCaseSensitive(row, "model");
    }
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* A value's short name: a string itself, a number as %g, an object's "name" (with " wBITS" when
 * it has bits), else its JSON. */
static void value_name(const cJSON *v, char *out, size_t n)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
    const cJSON *bits = cJSON_GetObjectItemCaseSensitive(v, "bits");
    char *text;
    if (cJSON_IsString(v)) {
        snprintf(out, n, "%s", v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        snprintf(out, n, "%g", v->valuedouble);
    } else if (cJSON_IsString(name) && cJSON_IsNumber(bits)) {
        snprintf(out, n, "%s w%g", name->valuestring, bits->valuedouble);
    } else if (cJSON_IsString(name)) {
        snprintf(out, n, "%s", name->valuestring);
    } else {
        text = cJSON_PrintUnformatted(v);
        snprintf(out, n, "%s", text ? text : "?");
        cJSON_free(text);
    }
}

/* Whether two values are the same JSON. */
static bool same(const cJSON *a, const cJSON *b)
{
    return (!a && !b) || (a && b && cJSON_Compare(a, b, true));
}

/* Whether the text VALUE of --where names v: its short name, its "name" member, its JSON text, or
 * a number equal to it. */
static bool matches(const cJSON *v, const char *value)
{
    char name[CS_PLOT_LABEL];
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(v, "name");
    cJSON *parsed = NULL;
    bool ok;
    value_name(v, name, sizeof(name));
    if (strcmp(name, value) == 0 || (cJSON_IsString(nm) && strcmp(nm->valuestring, value) == 0)) {
        return true;
    }
    parsed = cJSON_Parse(value);
    ok = parsed && cJSON_Compare(parsed, v, true);
    if (!ok && parsed && cJSON_IsNumber(parsed) && cJSON_IsNumber(v)) {
        ok = parsed->valuedouble == v->valuedouble;
    }
    cJSON_Delete(parsed);
    return ok;
}

/* Appends the distinct short names of axis over rows (non-baseline, non-null) to b, ", "-joined. */
static void list_values(const cJSON *rows, const char *axis, cs_buf *b)
{
    const cJSON *row, *prev;
    char name[CS_PLOT_LABEL];
    size_t k = 0;
    cJSON_ArrayForEach(row, rows)
    {
        const cJSON *v = row_axis(row, axis);
        bool seen = false;
        if (!v) {
            continue;
        }
        cJSON_ArrayForEach(prev, rows)
        {
            if (prev == row) {
                break;
            }
            seen = seen || same(row_axis(prev, axis), v);
        }
        if (!seen) {
            value_name(v, name, sizeof(name));
            cs_buf_printf(b, "%s%s", k++ ? ", " : "", name);
        }
    }
}

/* Whether the aggregate has axis (the pseudo-axis "model" always exists). */
static bool has_axis(const cJSON *agg, const char *axis)
{
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(agg, "axes"))
    {
        if (cJSON_IsString(a) && strcmp(a->valuestring, axis) == 0) {
            return true;
        }
    }
    return strcmp(axis, "model") == 0;
}

static cs_rc no_axis(const cJSON *agg, const char *what, const char *axis, cs_err *err)
{
    cs_buf b;
    const cJSON *a;
    cs_rc rc;
    cs_buf_init(&b);
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(agg, "axes"))
    {
        if (cJSON_IsString(a)) {
            cs_buf_printf(&b, "%s, ", a->valuestring);
        }
    }
    cs_buf_printf(&b, "model");
    rc = cs_err_set(err, CS_EINVAL, 0, "%s: the sweep has no axis %s; axes: %s", what, axis,
                    b.data ? b.data : "");
    cs_buf_fini(&b);
    return rc;
}

/* One --where filter, split at its first '='. */
typedef struct where {
    char axis[CS_PLOT_LABEL];
    const char *value;
} where;

/* Splits and checks the --where filters: each axis must exist and each value must match some
 * row. */
static cs_rc check_where(const cJSON *agg, const cs_plot_opts *o, where *w, cs_err *err)
{
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(agg, "rows");
    for (size_t i = 0; i < o->n_where; i++) {
        const char *eq = strchr(o->where[i], '=');
        const cJSON *row;
        bool any = false;
        cs_buf b;
        cs_rc rc;
        if (!eq || eq == o->where[i] || (size_t)(eq - o->where[i]) >= sizeof(w[i].axis)) {
            return cs_err_set(err, CS_EINVAL, 0, "--where %s: expected AXIS=VALUE", o->where[i]);
        }
        snprintf(w[i].axis, sizeof(w[i].axis), "%.*s", (int)(eq - o->where[i]), o->where[i]);
        w[i].value = eq + 1;
        if (!has_axis(agg, w[i].axis)) {
            return no_axis(agg, "--where", w[i].axis, err);
        }
        cJSON_ArrayForEach(row, rows)
        {
            const cJSON *v = row_axis(row, w[i].axis);
            any = any || (v && matches(v, w[i].value));
        }
        if (!any) {
            cs_buf_init(&b);
            list_values(rows, w[i].axis, &b);
            rc = cs_err_set(err, CS_EINVAL, 0, "--where %s: no row has %s=%s; values: %s",
                            o->where[i], w[i].axis, w[i].value, b.data ? b.data : "(none)");
            cs_buf_fini(&b);
            return rc;
        }
    }
    return CS_OK;
}

/* The axes figure o->kind reads from its rows into out[0..4), NULL-terminated: the heatmap's
 * panels and cells, the others' series (o->series, "selector" by default) and x axis. */
static void figure_axes(const cs_plot_opts *o, const char *out[4])
{
    const char *series = o->series ? o->series : "selector";
    memset(out, 0, 4 * sizeof(*out));
    if (o->kind == CS_PLOT_HEATMAP) {
        out[0] = "algorithm";
        out[1] = "n_samples";
        out[2] = "seq_len";
    } else {
        out[0] = series;
        out[1] = o->kind == CS_PLOT_NSAMPLES ? "n_samples" : NULL;
    }
}

static bool in_list(const char *const *list, const char *s)
{
    for (; *list; list++) {
        if (strcmp(*list, s) == 0) {
            return true;
        }
    }
    return false;
}

/* Whether row is plotted: not a baseline; on each filtered axis, one of its filters holds (so
 * --where algorithm=gptq --where algorithm=awq keeps both), or the row has no value there (the
 * axis does not apply to it: RTN under --where selector=random); every figure axis has a value. */
static bool selected(const cJSON *row, const where *w, size_t n_where, const char *const *shown)
{
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "baseline"))) {
        return false;
    }
    for (size_t i = 0; i < n_where; i++) {
        const cJSON *v = row_axis(row, w[i].axis);
        bool seen = false, ok = !v;
        for (size_t j = 0; j < i; j++) {
            seen = seen || strcmp(w[j].axis, w[i].axis) == 0;
        }
        for (size_t j = i; j < n_where && !seen && !ok; j++) {
            ok = strcmp(w[j].axis, w[i].axis) == 0 && matches(v, w[j].value);
        }
        if (!seen && !ok) {
            return false;
        }
    }
    for (const char *const *a = shown; *a; a++) {
        if (!row_axis(row, *a)) {
            return false;
        }
    }
    return true;
}

/* CS_EINVAL when the selected rows sel[0..n) have two values on axis (one the figure does not
 * show). A row without a value there (null: the axis does not apply to it, as the selector to
 * RTN) agrees with any. */
static cs_rc one_value(const cJSON *rows, const cJSON **sel, size_t n, const char *axis,
                       cs_err *err)
{
    const cJSON *first = NULL;
    cs_buf b;
    cs_rc rc;
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = row_axis(sel[i], axis);
        first = first ? first : v;
        if (v && !same(v, first)) {
            cs_buf_init(&b);
            list_values(rows, axis, &b);
            rc = cs_err_set(err, CS_EINVAL, 0,
                            "the rows to plot differ in %s (values: %s); choose one with --where "
                            "%s=VALUE",
                            axis, b.data ? b.data : "", axis);
            cs_buf_fini(&b);
            return rc;
        }
    }
    return CS_OK;
}

/* The selected rows (borrowed from agg) into sel[0..*n); checks that every grouping axis the
 * figure does not show (and the model) has one value among them. */
static cs_rc select_rows(const cJSON *agg, const cs_plot_opts *o, const where *w, const cJSON **sel,
                         size_t *n, size_t max, cs_err *err)
{
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(agg, "rows");
    const cJSON *row, *axis;
    const char *shown[4];
    cs_rc rc = CS_OK;
    figure_axes(o, shown);
    *n = 0;
    cJSON_ArrayForEach(row, rows)
    {
        if (!selected(row, w, o->n_where, shown)) {
            continue;
        }
        if (*n == max) {
            return cs_err_set(err, CS_ETOOBIG, 0, "more than %zu rows to plot; narrow with --where",
                              max);
        }
        sel[(*n)++] = row;
    }
    if (*n == 0) {
        return cs_err_set(err, CS_ENOENT, 0,
                          "no rows to plot: no row %shas a value on %s%s%s%s%s (check --where)",
                          o->n_where ? "that matches every --where " : "", shown[0],
                          shown[1] ? ", " : "", shown[1] ? shown[1] : "", shown[2] ? ", " : "",
                          shown[2] ? shown[2] : "");
    }
    cJSON_ArrayForEach(axis, cJSON_GetObjectItemCaseSensitive(agg, "by"))
    {
        if (rc == CS_OK && cJSON_IsString(axis) && strcmp(axis->valuestring, "seed") != 0 &&
            !in_list(shown, axis->valuestring) &&
            !(o->kind == CS_PLOT_HEATMAP && strcmp(axis->valuestring, "model") == 0)) {
            rc = one_value(rows, sel, *n, axis->valuestring, err);
        }
    }
    if (rc == CS_OK && o->kind != CS_PLOT_HEATMAP && !in_list(shown, "model")) {
        rc = one_value(rows, sel, *n, "model", err);
    }
    return rc;
}

/* The index of v in the ascending list a[0..*n), inserting it; CS_ETOOBIG past CS_PLOT_MAX. */
static cs_rc num_slot(double *a, size_t *n, double v, const char *axis, cs_err *err)
{
    size_t i = 0;
    while (i < *n && a[i] < v) {
        i++;
    }
    if (i < *n && a[i] == v) {
        return CS_OK;
    }
    if (*n == CS_PLOT_MAX) {
        return cs_err_set(err, CS_ETOOBIG, 0, "%s: more than %d values; narrow with --where", axis,
                          CS_PLOT_MAX);
    }
    memmove(a + i + 1, a + i, (*n - i) * sizeof(*a));
    a[i] = v;
    (*n)++;
    return CS_OK;
}

static size_t num_index(const double *a, size_t n, double v)
{
    size_t i = 0;
    while (i + 1 < n && a[i] != v) {
        i++;
    }
    return i;
}

/* The index of the label of a category (one value, or two joined) among lab[0..*n), adding it;
 * keys[] holds the values that identify it (compared as JSON). CS_ETOOBIG past CS_PLOT_MAX. */
static cs_rc cat_slot(const cJSON *k1, const cJSON *k2, const cJSON *(*keys)[2],
                      char (*lab)[CS_PLOT_LABEL], size_t *n, size_t *at, const char *what,
                      cs_err *err)
{
    char a[CS_PLOT_LABEL], b[CS_PLOT_LABEL] = "";
    for (size_t i = 0; i < *n; i++) {
        if (same(keys[i][0], k1) && same(keys[i][1], k2)) {
            *at = i;
            return CS_OK;
        }
    }
    if (*n == CS_PLOT_MAX) {
        return cs_err_set(err, CS_ETOOBIG, 0, "more than %d %s; narrow with --where", CS_PLOT_MAX,
                          what);
    }
    value_name(k1, a, sizeof(a));
    if (k2) {
        value_name(k2, b, sizeof(b));
    }
    snprintf(lab[*n], CS_PLOT_LABEL, "%s%s%s", a, k2 ? ", " : "", b);
    keys[*n][0] = k1;
    keys[*n][1] = k2;
    *at = (*n)++;
    return CS_OK;
}

/* Appends to b the members of v (an object; "name" and "bits" aside, which its short name
 * shows) whose values differ in some peer (or that a peer lacks), as " (k=v,...)". */
static void differing_members(const cJSON *v, const cJSON *const *peers, size_t n_peers, cs_buf *b)
{
    const cJSON *c;
    char item[CS_PLOT_LABEL];
    size_t k = 0;
    cJSON_ArrayForEach(c, v)
    {
        bool differs = false;
        if (strcmp(c->string, "name") == 0 || strcmp(c->string, "bits") == 0) {
            continue;
        }
        for (size_t j = 0; j < n_peers; j++) {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(peers[j], c->string);
            differs = differs || !o || !cJSON_Compare(o, c, true);
        }
        if (differs) {
            value_name(c, item, sizeof(item));
            cs_buf_printf(b, "%s%s=%s", k++ ? "," : " (", c->string,
                          cJSON_IsBool(c) ? (cJSON_IsTrue(c) ? "true" : "false") : item);
        }
    }
    if (k) {
        cs_buf_printf(b, ")");
    }
}

/* Gives the categories lab[0..n) whose short labels collide (RTN at 4 bits on GPTQ's grid and on
 * AWQ's) the members that tell them apart: "rtn w4 (grid=gptq,group_size=-1)", as the results
 * table shortens its labels (docs/results.md "Text table"). */
static void unique_labels(const cJSON *(*keys)[2], char (*lab)[CS_PLOT_LABEL], size_t n)
{
    char orig[CS_PLOT_MAX][CS_PLOT_LABEL], name[CS_PLOT_LABEL], model[CS_PLOT_LABEL] = "";
    const cJSON *peers[CS_PLOT_MAX];
    memcpy(orig, lab, n * sizeof(*orig));
    for (size_t i = 0; i < n; i++) {
        size_t n_peers = 0;
        cs_buf b;
        for (size_t j = 0; j < n; j++) {
            if (j != i && strcmp(orig[i], orig[j]) == 0) {
                peers[n_peers++] = keys[j][0];
            }
        }
        if (n_peers == 0 || !cJSON_IsObject(keys[i][0])) {
            continue;
        }
        cs_buf_init(&b);
        value_name(keys[i][0], name, sizeof(name));
        cs_buf_printf(&b, "%s", name);
        differing_members(keys[i][0], peers, n_peers, &b);
        if (keys[i][1]) {
            value_name(keys[i][1], model, sizeof(model));
            cs_buf_printf(&b, ", %s", model);
        }
        snprintf(lab[i], CS_PLOT_LABEL, "%s", b.data ? b.data : orig[i]);
        cs_buf_fini(&b);
    }
}

/* A number member (nested by names), NAN when absent or null. */
static double num(const cJSON *o, const char *a, const char *b, const char *c)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
    v = b ? cJSON_GetObjectItemCaseSensitive(v, b) : v;
    v = c ? cJSON_GetObjectItemCaseSensitive(v, c) : v;
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static cs_rc axis_num(const cJSON *row, const char *axis, double *out, cs_err *err)
{
    const cJSON *v = row_axis(row, axis);
    if (!cJSON_IsNumber(v)) {
        return cs_err_set(err, CS_EINVAL, 0, "%s: expected numbers to plot against", axis);
    }
    *out = v->valuedouble;
    return CS_OK;
}

static cs_rc model_heatmap(const cJSON **sel, size_t n, cs_plot_model *m, cs_err *err)
{
    const cJSON *keys[CS_PLOT_MAX][2];
    size_t p;
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        double x = 0, y = 0;
        rc = axis_num(sel[i], "seq_len", &x, err);
        rc = rc == CS_OK ? axis_num(sel[i], "n_samples", &y, err) : rc;
        rc = rc == CS_OK ? num_slot(m->x, &m->n_x, x, "seq_len", err) : rc;
        rc = rc == CS_OK ? num_slot(m->y, &m->n_y, y, "n_samples", err) : rc;
        rc = rc == CS_OK ? cat_slot(row_axis(sel[i], "algorithm"), row_axis(sel[i], "model"), keys,
                                    m->panel, &m->n_panels, &p, "panels", err)
                         : rc;
    }
    for (size_t a = 0; a < CS_PLOT_MAX; a++) {
        for (size_t b = 0; b < CS_PLOT_MAX; b++) {
            for (size_t c = 0; c < CS_PLOT_MAX; c++) {
                m->cell[a][b][c] = NAN;
            }
        }
    }
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        double x = 0, y = 0;
        size_t ix, iy;
        axis_num(sel[i], "seq_len", &x, NULL);
        axis_num(sel[i], "n_samples", &y, NULL);
        cat_slot(row_axis(sel[i], "algorithm"), row_axis(sel[i], "model"), keys, m->panel,
                 &m->n_panels, &p, "panels", NULL);
        ix = num_index(m->x, m->n_x, x);
        iy = num_index(m->y, m->n_y, y);
        if (!isnan(m->cell[p][iy][ix])) {
            return cs_err_set(err, CS_EINVAL, 0,
                              "two rows have %s, n_samples=%g, seq_len=%g; narrow with --where",
                              m->panel[p], y, x);
        }
        m->cell[p][iy][ix] = m->std_ret ? num(sel[i], "vs_baseline", "balance", "std_ret")
                                        : num(sel[i], "average", "value", NULL);
    }
    if (rc == CS_OK) {
        unique_labels(keys, m->panel, m->n_panels);
    }
    return rc;
}

static cs_rc model_lines(const cJSON **sel, size_t n, const char *series, cs_plot_model *m,
                         cs_err *err)
{
    const cJSON *keys[CS_PLOT_MAX][2];
    size_t s;
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        double x = 0;
        rc = axis_num(sel[i], "n_samples", &x, err);
        rc = rc == CS_OK ? num_slot(m->x, &m->n_x, x, "n_samples", err) : rc;
        rc = rc == CS_OK ? cat_slot(row_axis(sel[i], series), NULL, keys, m->series, &m->n_series,
                                    &s, "series", err)
                         : rc;
    }
    for (size_t a = 0; a < CS_PLOT_MAX; a++) {
        for (size_t b = 0; b < CS_PLOT_MAX; b++) {
            m->mean[a][b] = NAN;
            m->elo[a][b] = m->ehi[a][b] = NAN;
        }
    }
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        double x = 0, k = num(sel[i], "average", "n", NULL),
               se = num(sel[i], "average", "se", NULL);
        size_t ix;
        axis_num(sel[i], "n_samples", &x, NULL);
        cat_slot(row_axis(sel[i], series), NULL, keys, m->series, &m->n_series, &s, "selectors",
                 NULL);
        ix = num_index(m->x, m->n_x, x);
        if (!isnan(m->mean[s][ix])) {
            return cs_err_set(err, CS_EINVAL, 0,
                              "two rows have %s %s and n_samples=%g; narrow with --where", series,
                              m->series[s], x);
        }
        m->mean[s][ix] = num(sel[i], "average", "mean", NULL);
        const cJSON *ci = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(sel[i], "average"), "item_ci");
        if (k >= 2 && !isnan(se)) {
            double half = cs_plot_t975((size_t)k - 1) * se;
            m->elo[s][ix] = m->mean[s][ix] - half;
            m->ehi[s][ix] = m->mean[s][ix] + half;
        } else if (k == 1 && cJSON_GetArraySize(ci) == 2 &&
                   cJSON_IsNumber(cJSON_GetArrayItem(ci, 0)) &&
                   cJSON_IsNumber(cJSON_GetArrayItem(ci, 1))) {
            m->elo[s][ix] = cJSON_GetArrayItem(ci, 0)->valuedouble;
            m->ehi[s][ix] = cJSON_GetArrayItem(ci, 1)->valuedouble;
            m->item_interval[s] = true;
        } else if (!isnan(m->mean[s][ix])) {
            m->no_interval[s] = true;
        }
    }
    if (rc == CS_OK) {
        unique_labels(keys, m->series, m->n_series);
    }
    return rc;
}

static cs_rc model_bars(const cJSON *agg, const cJSON **sel, size_t n, const char *series,
                        cs_plot_model *m, cs_err *err)
{
    const cJSON *keys[CS_PLOT_MAX][2];
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(agg, "rows"), *t;
    size_t s;
    cs_rc rc = CS_OK;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(agg, "tasks"))
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(t, "kind");
        if (!cJSON_IsString(name) || !cJSON_IsString(kind) ||
            strcmp(kind->valuestring, "accuracy") != 0) {
            continue;
        }
        if (m->n_tasks == CS_PLOT_MAX) {
            return cs_err_set(err, CS_ETOOBIG, 0, "more than %d tasks", CS_PLOT_MAX);
        }
        m->base[m->n_tasks] = NAN;
        snprintf(m->task[m->n_tasks++], CS_PLOT_LABEL, "%s", name->valuestring);
    }
    if (m->n_tasks == 0) {
        return cs_err_set(err, CS_ENOENT, 0, "no rows to plot: the sweep has no accuracy task");
    }
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        double id = num(sel[i], "baseline_row", NULL, NULL);
        const cJSON *base = isnan(id) ? NULL : cJSON_GetArrayItem(rows, (int)id);
        size_t before = m->n_series;
        rc = cat_slot(row_axis(sel[i], series), NULL, keys, m->series, &m->n_series, &s, "series",
                      err);
        if (rc == CS_OK && m->n_series == before) {
            return cs_err_set(err, CS_EINVAL, 0,
                              "two rows have %s %s; narrow with --where (an axis that one of "
                              "them lacks)",
                              series, m->series[s]);
        }
        for (size_t k = 0; k < m->n_tasks && rc == CS_OK; k++) {
            m->mean[s][k] = num(cJSON_GetObjectItemCaseSensitive(sel[i], "tasks"), m->task[k],
                                "value", NULL);
            if (base && isnan(m->base[k])) {
                m->base[k] = num(cJSON_GetObjectItemCaseSensitive(base, "tasks"), m->task[k],
                                 "value", NULL);
            }
        }
    }
    if (rc == CS_OK) {
        unique_labels(keys, m->series, m->n_series);
    }
    return rc;
}

double cs_plot_t975(size_t df)
{
    static const double t[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                 2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                 2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                 2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
    const double z = 1.959964, v = (double)df;
    if (df >= 1 && df <= 30) {
        return t[df - 1];
    }
    return z + (z * z * z + z) / (4 * v) + (5 * pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * v * v);
}

cs_rc cs_plot_model_build(const cJSON *agg, const cs_plot_opts *o, cs_plot_model *m, cs_err *err)
{
    where w[16];
    const char *shown[4];
    const char *series = o->series ? o->series : "selector";
    const cJSON *sel[CS_PLOT_MAX * CS_PLOT_MAX];
    size_t n = 0;
    cs_rc rc;
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(agg, "rows")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(agg, "axes")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(agg, "by")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(agg, "tasks"))) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "the aggregate: expected rows, axes, by and tasks (docs/results.md)");
    }
    if (o->n_where > sizeof(w) / sizeof(*w)) {
        return cs_err_set(err, CS_ETOOBIG, 0, "--where: at most %zu", sizeof(w) / sizeof(*w));
    }
    m->kind = o->kind;
    m->std_ret = o->metric && strcmp(o->metric, "std_ret") == 0;
    if (o->metric && strcmp(o->metric, "accuracy") != 0 &&
        !(m->std_ret && o->kind == CS_PLOT_HEATMAP)) {
        return cs_err_set(err, CS_EINVAL, 0, "--metric %s: not for the %s figure; metrics: %s",
                          o->metric, KINDS[o->kind],
                          o->kind == CS_PLOT_HEATMAP ? "accuracy, std_ret" : "accuracy");
    }
    figure_axes(o, shown);
    for (const char *const *a = shown; *a; a++) {
        if (!has_axis(agg, *a)) {
            return no_axis(agg, KINDS[o->kind], *a, err);
        }
    }
    rc = check_where(agg, o, w, err);
    rc = rc == CS_OK ? select_rows(agg, o, w, sel, &n, sizeof(sel) / sizeof(*sel), err) : rc;
    if (rc != CS_OK) {
        return rc;
    }
    rc = o->kind == CS_PLOT_HEATMAP    ? model_heatmap(sel, n, m, err)
         : o->kind == CS_PLOT_NSAMPLES ? model_lines(sel, n, series, m, err)
                                       : model_bars(agg, sel, n, series, m, err);
    if (rc == CS_OK && m->n_series > CS_PLOT_COLOURS) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "%zu values of %s, more than the %d colours of the palette; choose "
                          "some with --where %s=VALUE (repeatable)",
                          m->n_series, series, CS_PLOT_COLOURS, series);
    }
    return rc;
}

/* The format of path by its extension. */
static cs_rc format_of(const char *path, cs_plot_format *out, cs_err *err)
{
    const char *dot = strrchr(path, '.');
    if (!dot || cs_plot_format_parse(dot + 1, out, NULL) != CS_OK) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "%s: cannot tell the format from the extension; use .svg, .pdf or "
                          ".png, or --format",
                          path);
    }
    return CS_OK;
}

static cairo_status_t to_file(void *closure, const unsigned char *data, unsigned int n)
{
    return fwrite(data, 1, n, closure) == n ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* Draws m into f as fmt, w x h points. CS_EIO naming path when cairo fails. */
static cs_rc render(const cs_plot_model *m, cs_plot_format fmt, double w, double h, double dpi,
                    FILE *f, const char *path, cs_err *err)
{
    cairo_surface_t *s;
    cairo_t *cr;
    cairo_status_t st;
    double k = fmt == CS_PLOT_PNG ? dpi / 72.0 : 1.0;
    if (fmt == CS_PLOT_SVG) {
        s = cairo_svg_surface_create_for_stream(to_file, f, w, h);
    } else if (fmt == CS_PLOT_PDF) {
        s = cairo_pdf_surface_create_for_stream(to_file, f, w, h);
    } else {
        s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)ceil(w * k), (int)ceil(h * k));
    }
    cr = cairo_create(s);
    cairo_scale(cr, k, k);
    cs_plot_draw(cr, m, w, h);
    cairo_show_page(cr);
    st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS && fmt == CS_PLOT_PNG) {
        st = cairo_surface_write_to_png_stream(s, to_file, f);
    }
    cairo_surface_finish(s);
    st = st == CAIRO_STATUS_SUCCESS ? cairo_surface_status(s) : st;
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) {
        return cs_err_set(err, CS_EIO, 0, "%s: cairo: %s", path, cairo_status_to_string(st));
    }
    return CS_OK;
}

cs_rc cs_plot_write(const cJSON *agg, const cs_plot_opts *o, const char *path, cs_err *err)
{
    cs_plot_model *m = NULL;
    cs_plot_format fmt = o->format;
    struct stat st;
    char *mem = NULL;
    size_t len = 0;
    FILE *f = NULL;
    double w = (o->width_in > 0 ? o->width_in : 3.3) * 72.0;
    cs_rc rc = fmt == CS_PLOT_AUTO ? format_of(path, &fmt, err) : CS_OK;
    if (rc != CS_OK) {
        return rc;
    }
    if (!o->force && stat(path, &st) == 0) {
        return cs_err_set(err, CS_EEXIST, 0, "%s: exists; --force overwrites it", path);
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        return cs_err_set(err, CS_ENOMEM, 0, "plot: out of memory");
    }
    rc = cs_plot_model_build(agg, o, m, err);
    if (rc != CS_OK) {
        goto done;
    }
    /* The figure is drawn in memory, then written whole (cs_path_write_atomic: a temporary file
     * beside path, renamed over it), so a failure leaves no file and no old one half replaced. */
    f = open_memstream(&mem, &len);
    if (!f) {
        rc = cs_err_errno(err, errno, "plot: out of memory");
        goto done;
    }
    rc = render(m, fmt, w, cs_plot_height(m, w), o->dpi > 0 ? o->dpi : 300.0, f, path, err);
    if (fclose(f) != 0 && rc == CS_OK) {
        rc = cs_err_errno(err, errno, "plot: out of memory");
    }
    if (rc == CS_OK) {
        rc = cs_path_write_atomic(path, mem, len, 0644, err);
    }
done:
    free(mem);
    free(m);
    return rc;
}
