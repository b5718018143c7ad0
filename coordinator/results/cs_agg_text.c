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
#include <stdint.h>
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

/* Appends the finite x as printf's "%.*f" (with sign "%+.*f") writes it, dec 0..3. printf rounds
 * x's exact value to nearest: the digits here come from x * 10^dec rounded in double arithmetic,
 * which decides the same except within its error of a tie (.5), where printf itself writes them
 * (tests/unit/agg_test.c compares the two). */
static void put_fixed(cs_buf *b, double x, int dec, bool sign)
{
    static const double scale[] = {1.0, 10.0, 100.0, 1000.0};
    double q = fabs(x) * scale[dec], r = floor(q), f = q - r;
    if (!(q < 1e9) || fabs(f - 0.5) < 1e-6) {
        cs_buf_printf(b, sign ? "%+.*f" : "%.*f", dec, x);
        return;
    }
    uint64_t d = (uint64_t)r + (f > 0.5);
    char t[32], *p = t + sizeof(t);
    for (int i = 0; i < dec; i++) {
        *--p = (char)('0' + d % 10);
        d /= 10;
    }
    if (dec > 0) {
        *--p = '.';
    }
    do {
        *--p = (char)('0' + d % 10);
        d /= 10;
    } while (d > 0);
    if (signbit(x) || sign) {
        *--p = signbit(x) ? '-' : '+';
    }
    cs_buf_append(b, p, (size_t)(t + sizeof(t) - p));
}

/* Appends x scaled (percent for accuracies) or "-" when null. */
static void put_val(cs_buf *b, double x, bool pct, bool sign)
{
    if (!isfinite(x)) {
        cs_buf_puts(b, "-");
    } else if (pct) {
        put_fixed(b, 100.0 * x, 1, sign);
    } else {
        put_fixed(b, x, 3, sign);
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

/* The rows as the labels read them, looked up once (a walk of the tree per row and axis is what
 * made the table slow: every lookup chases the row's members through memory). */
typedef struct rowset {
    const cJSON **row; /* [n]: the rows */
    bool *base;        /* [n]: "baseline" is true */
    const cJSON **val; /* [n_by][n]: the row's value on by[a], NULL when null or absent */
    size_t n, n_by;
} rowset;

static void rowset_fini(rowset *rs)
{
    cs_free_each((void *const[]){rs->row, rs->base, rs->val}, 3);
}

/* A value, NULL when null or absent. */
static const cJSON *not_null(const cJSON *v)
{
    return v != NULL && !cJSON_IsNull(v) ? v : NULL;
}

/* rs of rows and their values on the by axes (by[a] NULL: none). CS_ENOMEM. */
static cs_rc rowset_init(rowset *rs, const cJSON *rows, const char *const *by, size_t n_by)
{
    memset(rs, 0, sizeof(*rs));
    rs->n = (size_t)cJSON_GetArraySize(rows);
    rs->n_by = n_by;
    rs->row = cs_calloc_array(rs->n + 1, sizeof(*rs->row));
    rs->base = cs_calloc_array(rs->n + 1, sizeof(*rs->base));
    rs->val = cs_calloc_array(rs->n * n_by + 1, sizeof(*rs->val));
    if (rs->row == NULL || rs->base == NULL || rs->val == NULL) {
        return CS_ENOMEM;
    }
    size_t i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(row, "values");
        rs->row[i] = row;
        rs->base[i] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "baseline"));
        for (size_t a = 0; a < n_by; a++) {
            rs->val[a * rs->n + i] =
                    by[a] != NULL ? not_null(cJSON_GetObjectItemCaseSensitive(values, by[a]))
                                  : NULL;
        }
        i++;
    }
    return CS_OK;
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

/* Marks in keys the members of v and rep whose values differ (absent counts as a value). Objects
 * whose members have the same names in the same order (the canonical axes' sorted keys) compare
 * pairwise; others by name, each way. */
static void diff_members(cJSON *keys, const cJSON *v, const cJSON *rep)
{
    const cJSON *m = v->child, *r = rep->child;
    while (m != NULL && r != NULL && strcmp(m->string, r->string) == 0) {
        m = m->next;
        r = r->next;
    }
    if (m == NULL && r == NULL) {
        for (m = v->child, r = rep->child; m != NULL; m = m->next, r = r->next) {
            if (!cJSON_Compare(m, r, true)) {
                mark_key(keys, m->string);
            }
        }
        return;
    }
    for (m = v->child; m != NULL; m = m->next) {
        if (!cJSON_Compare(m, cJSON_GetObjectItemCaseSensitive(rep, m->string), true)) {
            mark_key(keys, m->string);
        }
    }
    for (r = rep->child; r != NULL; r = r->next) {
        if (cJSON_GetObjectItemCaseSensitive(v, r->string) == NULL) {
            mark_key(keys, r->string);
        }
    }
}

/* cs_agg_value_diffs: {name: {member: true}} with, per object name, the members (name aside)
 * whose values differ among the values having that name. Each value is compared with the first
 * of its name. */
cJSON *cs_agg_value_diffs(const cJSON *const *col, size_t n)
{
    cJSON *reps = cJSON_CreateObject(), *diffs = cJSON_CreateObject();
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = col[i];
        const char *name = obj_name(v);
        if (name == NULL || reps == NULL || diffs == NULL) {
            continue;
        }
        const cJSON *rep = cJSON_GetObjectItemCaseSensitive(reps, name);
        if (rep == NULL) {
            cJSON_AddItemToObject(reps, name, cJSON_CreateObjectReference(v->child));
            cJSON_AddItemToObject(diffs, name, cJSON_CreateObject());
            continue;
        }
        diff_members(cJSON_GetObjectItemCaseSensitive(diffs, name), v, rep);
    }
    if (reps == NULL) {
        cJSON_Delete(diffs);
        diffs = NULL;
    }
    cJSON_Delete(reps);
    return diffs;
}

/* A scalar as labels show it: a string as is, anything else as canonical JSON. */
static cs_rc put_plain(cs_buf *b, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        return cs_buf_puts(b, v->valuestring);
    }
    return cs_canon_append(v, b, NULL) == CS_OK ? CS_OK : cs_buf_puts(b, "?");
}

/* An axis value: an object with a name as name(member=value,...) with the members of diffs[name];
 * anything else plainly. */
static void put_short(cs_buf *b, const cJSON *v, const cJSON *diffs)
{
    (void)cs_agg_value_short(b, v, diffs); /* out of memory: the label is cut short */
}

cs_rc cs_agg_value_short(cs_buf *b, const cJSON *v, const cJSON *diffs)
{
    const char *name = obj_name(v);
    bool bad = false;
    if (name == NULL) {
        return put_plain(b, v);
    }
    bad = cs_buf_puts(b, name) != CS_OK;
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(diffs, name);
    size_t k = 0;
    for (const cJSON *m = v->child; m != NULL && keys != NULL && keys->child != NULL; m = m->next) {
        if (cJSON_GetObjectItemCaseSensitive(keys, m->string) != NULL) {
            bad = bad || cs_buf_puts(b, k++ ? "," : "(") != CS_OK ||
                  cs_buf_puts(b, m->string) != CS_OK || cs_buf_putc(b, '=') != CS_OK ||
                  put_plain(b, m) != CS_OK;
        }
    }
    if (k > 0) {
        bad = bad || cs_buf_putc(b, ')') != CS_OK;
    }
    return bad ? CS_ENOMEM : CS_OK;
}

enum { AX_NULL, AX_COMMON, AX_VARIES };

/* Whether the values col[0..n) are all null, the same wherever not null, or vary; *first: the
 * first value. */
static int axis_kind(const cJSON *const *col, size_t n, const cJSON **first)
{
    *first = NULL;
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = col[i];
        if (v != NULL && *first == NULL) {
            *first = v;
        } else if (v != NULL && !cJSON_Compare(v, *first, true)) {
            return AX_VARIES;
        }
    }
    return *first != NULL ? AX_COMMON : AX_NULL;
}

/* Whether the axis of the values col marks the baseline rows (algorithm=none): every baseline row
 * has one value there that no other row has. Baseline rows leave such an axis out of their
 * label. */
static bool baseline_marker(const rowset *rs, const cJSON *const *col)
{
    const cJSON *mark = NULL;
    for (size_t i = 0; i < rs->n; i++) {
        if (rs->base[i]) {
            const cJSON *v = col[i];
            if (v == NULL || (mark != NULL && !cJSON_Compare(v, mark, true))) {
                return false;
            }
            mark = v;
        }
    }
    for (size_t i = 0; i < rs->n; i++) {
        if (!rs->base[i] && col[i] != NULL && cJSON_Compare(col[i], mark, true)) {
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

/* Appends axis a (named ax) to the common line or to every row's label lb[i]. */
static void label_axis(const rowset *rs, size_t a, const char *ax, cs_buf *common, cs_buf *lb)
{
    const cJSON *const *col = rs->val + a * rs->n;
    const cJSON *first;
    int kind = axis_kind(col, rs->n, &first);
    if (kind == AX_NULL) {
        return;
    }
    cJSON *diffs = cs_agg_value_diffs(col, rs->n);
    if (kind == AX_COMMON) {
        cs_buf_printf(common, "%s%s=", common->len ? " " : "", ax);
        put_short(common, first, diffs);
        cJSON_Delete(diffs);
        return;
    }
    bool marker = baseline_marker(rs, col);
    for (size_t i = 0; i < rs->n; i++) {
        if (col[i] != NULL && !(rs->base[i] && marker)) {
            cs_buf_puts(&lb[i], lb[i].len ? " " : "");
            cs_buf_puts(&lb[i], ax);
            cs_buf_putc(&lb[i], '=');
            put_short(&lb[i], col[i], diffs);
        }
    }
    cJSON_Delete(diffs);
}

/* The names of the by axes (NULL for an item that is not a string); *n their count. */
static const char **by_names(const cJSON *by, size_t *n)
{
    *n = (size_t)cJSON_GetArraySize(by);
    const char **names = cs_calloc_array(*n + 1, sizeof(*names));
    size_t i = 0;
    const cJSON *ax;
    cJSON_ArrayForEach(ax, by)
    {
        if (names != NULL) {
            names[i++] = cJSON_IsString(ax) ? ax->valuestring : NULL;
        }
    }
    return names;
}

static cs_rc make_labels(const rowset *rs, const char *const *by, labels *l)
{
    memset(l, 0, sizeof(*l));
    l->n = rs->n;
    l->label = cs_calloc_array(l->n + 1, sizeof(*l->label));
    cs_buf *lb = cs_calloc_array(l->n + 1, sizeof(*lb));
    cs_buf common = {0};
    bool ok = l->label != NULL && lb != NULL;
    for (size_t i = 0; ok && i < l->n; i++) {
        ok = !rs->base[i] || cs_buf_puts(&lb[i], "baseline") == CS_OK;
    }
    for (size_t a = 0; ok && a < rs->n_by; a++) {
        if (by[a] != NULL) {
            label_axis(rs, a, by[a], &common, lb);
        }
    }
    for (size_t i = 0; ok && i < l->n; i++) {
        ok = (l->label[i] = cs_buf_take(&lb[i])) != NULL;
    }
    l->common = common.len > 0 ? cs_buf_take(&common) : NULL;
    cs_buf_fini(&common);
    for (size_t i = 0; lb != NULL && i <= l->n; i++) {
        cs_buf_fini(&lb[i]);
    }
    free(lb);
    return ok ? CS_OK : CS_ENOMEM;
}

/* The table's cells in one buffer, written in order (row 0 is the header): cell k = r * cols + c
 * is text.data + off[k], NUL-terminated, of length off[k + 1] - off[k] - 1. */
typedef struct grid {
    cs_buf text;
    size_t *off; /* [rows * cols + 1] */
    size_t rows, cols, k;
    bool failed; /* an append ran out of memory */
} grid;

/* Ends the cell being written at the end of g->text. */
static void end_cell(grid *g)
{
    g->failed = g->failed || cs_buf_putc(&g->text, '\0') != CS_OK || g->k >= g->rows * g->cols;
    if (!g->failed) {
        g->off[++g->k] = g->text.len;
    }
}

/* The tasks of the aggregate as the cells read them: name and percent (not perplexity). */
typedef struct task_col {
    const char *name;
    bool pct;
} task_col;

static void header(grid *g, const cJSON *tasks, task_col *tc)
{
    cs_buf *b = &g->text;
    const char *fixed[] = {"row", "seeds"};
    for (size_t i = 0; i < 2; i++) {
        cs_buf_puts(b, fixed[i]);
        end_cell(g);
    }
    size_t i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tasks)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        const cJSON *head = cJSON_GetObjectItemCaseSensitive(t, "headline");
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(t, "kind");
        cs_buf_printf(b, "%s:%s", cJSON_IsString(name) ? name->valuestring : "?",
                      cJSON_IsString(head) ? head->valuestring : "?");
        end_cell(g);
        tc[i].name = cJSON_IsString(name) ? name->valuestring : "";
        tc[i].pct = !(cJSON_IsString(kind) && strcmp(kind->valuestring, "perplexity") == 0);
        i++;
    }
    const char *rest[] = {
            "avg", "d_base", "std_ret", "worst_drop", "min_ret", "d_ref avg [95% CI]", "flags"};
    for (size_t r = 0; r < sizeof(rest) / sizeof(*rest); r++) {
        cs_buf_puts(b, rest[r]);
        end_cell(g);
    }
}

static void row_cells(grid *g, const cJSON *row, const task_col *tc, size_t n_tasks,
                      const char *label)
{
    cs_buf *b = &g->text;
    cs_buf_puts(b, label != NULL && label[0] != '\0' ? label : "-");
    end_cell(g);
    double seeds = get_num(row, "n_seeds");
    if (isfinite(seeds)) {
        put_fixed(b, seeds, 0, false);
    } else {
        cs_buf_printf(b, "%.0f", seeds);
    }
    end_cell(g);
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(row, "tasks");
    const cJSON *vr = cJSON_GetObjectItemCaseSensitive(row, "vs_reference");
    const cJSON *vrt = cJSON_GetObjectItemCaseSensitive(vr, "tasks");
    for (size_t t = 0; t < n_tasks; t++) {
        put_val(b, get_num(cJSON_GetObjectItemCaseSensitive(rt, tc[t].name), "value"), tc[t].pct,
                false);
        if (cJSON_IsObject(vr)) {
            cs_buf_putc(b, ' ');
            put_cmp(b, cJSON_GetObjectItemCaseSensitive(vrt, tc[t].name), tc[t].pct, false);
        }
        end_cell(g);
    }
    put_val(b, get_num(cJSON_GetObjectItemCaseSensitive(row, "average"), "value"), true, false);
    end_cell(g);
    const cJSON *vb = cJSON_GetObjectItemCaseSensitive(row, "vs_baseline");
    const cJSON *bal = cJSON_GetObjectItemCaseSensitive(vb, "balance");
    put_val(b, get_num(cJSON_GetObjectItemCaseSensitive(vb, "average"), "delta"), true, true);
    end_cell(g);
    put_val(b, get_num(bal, "std_ret"), false, false);
    end_cell(g);
    put_val(b, get_num(bal, "worst_drop"), true, false);
    end_cell(g);
    put_val(b, get_num(bal, "min_ret"), false, false);
    end_cell(g);
    put_cmp(b, cJSON_GetObjectItemCaseSensitive(vr, "average"), true, true);
    end_cell(g);
    size_t start = b->len;
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(row, "flags"))
    {
        cs_buf_printf(b, "%s%s", b->len > start ? "," : "",
                      cJSON_IsString(f) ? f->valuestring : "?");
    }
    if (b->len == start) {
        cs_buf_puts(b, "-");
    }
    end_cell(g);
}

/* Appends s padded with spaces to width w, on the left (right-aligned) or on the right. */
static void put_pad(cs_buf *line, const char *s, size_t len, size_t w, bool left)
{
    size_t pad = w > len ? w - len : 0;
    if (cs_buf_reserve(line, pad + len) != CS_OK) {
        return;
    }
    if (!left) {
        memset(line->data + line->len, ' ', pad);
        line->len += pad;
    }
    memcpy(line->data + line->len, s, len);
    line->len += len;
    if (left) {
        memset(line->data + line->len, ' ', pad);
        line->len += pad;
    }
    line->data[line->len] = '\0';
}

/* Writes the grid: the label left-aligned, numbers right-aligned, the flags last without
 * padding, two spaces between columns. 0, or -1 when writing fails or memory runs out. */
static int print_grid(const grid *g, FILE *out)
{
    size_t *w = cs_calloc_array(g->cols, sizeof(*w));
    cs_buf line = {0};
    if (w == NULL) {
        return -1;
    }
    for (size_t k = 0; k < g->rows * g->cols; k++) {
        size_t len = g->off[k + 1] - g->off[k] - 1;
        w[k % g->cols] = len > w[k % g->cols] ? len : w[k % g->cols];
    }
    int rc = 0;
    for (size_t r = 0; r < g->rows && rc >= 0; r++) {
        line.len = 0;
        for (size_t c = 0; c < g->cols; c++) {
            size_t k = r * g->cols + c;
            const char *s = g->text.data + g->off[k];
            size_t len = g->off[k + 1] - g->off[k] - 1;
            if (c > 0) {
                cs_buf_puts(&line, "  ");
            }
            put_pad(&line, s, len, c + 1 == g->cols ? 0 : w[c], c == 0);
        }
        rc = cs_buf_putc(&line, '\n') != CS_OK || fwrite(line.data, 1, line.len, out) != line.len
                     ? -1
                     : 0;
    }
    cs_buf_fini(&line);
    free(w);
    return rc;
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
static int print_no_ref(const cJSON *agg, const rowset *rs, const labels *l, FILE *out)
{
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(agg, "reference");
    const cJSON *rax = cJSON_GetObjectItemCaseSensitive(ref, "axis");
    const cJSON *rval = cJSON_GetObjectItemCaseSensitive(ref, "value");
    if (!cJSON_IsString(rax) || !cJSON_IsString(rval)) {
        return 0;
    }
    rowset rr;
    const char *ax = rax->valuestring;
    if (rowset_init(&rr, cJSON_GetObjectItemCaseSensitive(agg, "rows"), &ax, 1) != CS_OK) {
        rowset_fini(&rr);
        return -1;
    }
    cJSON *diffs = cs_agg_value_diffs(rr.val, rr.n);
    cs_buf b = {0};
    int rc = 0;
    for (size_t i = 0; i < rs->n && rc >= 0; i++) {
        const cJSON *nr = cJSON_GetObjectItemCaseSensitive(rs->row[i], "no_reference");
        const cJSON *cand = cJSON_GetObjectItemCaseSensitive(nr, "candidates"), *c;
        const char *lab = l->label[i];
        if (!cJSON_IsObject(nr)) {
            continue;
        }
        b.len = 0;
        cs_buf_printf(&b, "no_reference [%s]: ", lab[0] != '\0' ? lab : "-");
        if (cJSON_GetArraySize(cand) == 0) {
            cs_buf_printf(&b, "no row with %s=%s has its other values", ax, rval->valuestring);
        } else {
            cs_buf_printf(&b, "several rows match %s=%s:", ax, rval->valuestring);
        }
        size_t k = 0;
        cJSON_ArrayForEach(c, cand)
        {
            /* cJSON_GetArrayItem's row, without its walk from the first row */
            int ci = cJSON_IsNumber(c) ? c->valueint : -1;
            const cJSON *v = ci >= 0 && (size_t)ci < rr.n ? rr.val[ci] : NULL;
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
    rowset_fini(&rr);
    return rc;
}

cs_rc cs_agg_print_text(const cJSON *agg, FILE *out, cs_err *err)
{
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(agg, "rows");
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(agg, "tasks");
    if (!cJSON_IsArray(rows) || !cJSON_IsArray(tasks)) {
        return cs_err_set(err, CS_EINVAL, 0, "results: not an aggregate (no rows or tasks)");
    }
    size_t n_by = 0, n_tasks = (size_t)cJSON_GetArraySize(tasks);
    const char **by = by_names(cJSON_GetObjectItemCaseSensitive(agg, "by"), &n_by);
    task_col *tc = cs_calloc_array(n_tasks + 1, sizeof(*tc));
    rowset rs = {0};
    labels l = {0};
    cs_rc rc = by != NULL && tc != NULL ? rowset_init(&rs, rows, by, n_by) : CS_ENOMEM;
    grid g = {.rows = rs.n + 1, .cols = n_tasks + 9};
    g.off = cs_calloc_array(g.rows * g.cols + 1, sizeof(*g.off));
    rc = rc == CS_OK ? make_labels(&rs, by, &l) : rc;
    int wr = 0;
    g.failed = rc != CS_OK || g.off == NULL;
    if (!g.failed) {
        header(&g, tasks, tc);
        for (size_t i = 0; i < rs.n; i++) {
            row_cells(&g, rs.row[i], tc, n_tasks, l.label[i]);
        }
    }
    if (!g.failed) {
        wr = print_head(agg, &l, out);
        wr = wr >= 0 ? print_grid(&g, out) : wr;
        wr = wr >= 0 ? print_no_ref(agg, &rs, &l, out) : wr;
    }
    labels_fini(&l);
    rowset_fini(&rs);
    cs_buf_fini(&g.text);
    cs_free_each((void *const[]){g.off, tc, by}, 3);
    if (g.failed) {
        return cs_err_set(err, CS_ENOMEM, 0, "results: a table of %zu rows", g.rows);
    }
    if (wr < 0) {
        return cs_err_errno(err, errno, "results: writing the table");
    }
    return CS_OK;
}

cs_rc cs_agg_short_labels(const cJSON *agg, char **common, char ***label, size_t *n, cs_err *err)
{
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(agg, "rows");
    size_t n_by = 0;
    rowset rs = {0};
    labels l = {0};
    *common = NULL;
    *label = NULL;
    *n = 0;
    if (!cJSON_IsArray(rows)) {
        return cs_err_set(err, CS_EINVAL, 0, "results: not an aggregate (no rows)");
    }
    const char **by = by_names(cJSON_GetObjectItemCaseSensitive(agg, "by"), &n_by);
    cs_rc rc = by != NULL ? rowset_init(&rs, rows, by, n_by) : CS_ENOMEM;
    rc = rc == CS_OK ? make_labels(&rs, by, &l) : rc;
    rowset_fini(&rs);
    free(by);
    if (rc != CS_OK) {
        labels_fini(&l);
        return cs_err_set(err, CS_ENOMEM, 0, "results: the labels of %zu rows", rs.n);
    }
    *common = l.common;
    *label = l.label;
    *n = l.n;
    return CS_OK;
}

void cs_agg_labels_fini(char *common, char **label, size_t n)
{
    labels l = {.common = common, .label = label, .n = n};
    labels_fini(&l);
}
