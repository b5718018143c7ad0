/* cs_export.c - cs_export_render: the exports' table (cs_export_table.c) written as markdown or
 * wide CSV, and the aggregate as JSON, each after the reproducibility note.
 *
 * Markdown is for READMEs and notes: accuracies with --digits decimals (in percent with
 * --percent), "mean ± std" where a row has several seeds, arrows for the better direction.
 * The wide CSV is for spreadsheets and other tools: the same table with the numbers unrounded
 * (%.10g; times 100 with --percent), a std column after each mean, and p_holm and the mark after
 * the delta against the reference. */
#include "cs_export.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_export_table.h"

void cs_export_opts_init(cs_export_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->format = CS_EXPORT_MARKDOWN;
    o->digits = -1;
}

/* The reproducibility note, without comment markers: "calsweep export: sweep fixture (id 1),
 * engine calsweep-engine/0.1.0, 9 jobs; command: calsweep export ...". */
static cs_rc put_note(cs_buf *b, const cs_export_opts *o, int64_t jobs)
{
    return cs_buf_printf(b,
                         "calsweep export: sweep %s (id %lld), engine %s, %lld jobs; command: %s",
                         o->sweep ? o->sweep : "?", (long long)o->sweep_id,
                         o->engine_version ? o->engine_version : "?", (long long)jobs,
                         o->command ? o->command : "?");
}

static double scaled(const ex_col *c, const cs_export_opts *o, double x)
{
    return o->percent && c->scale ? 100.0 * x : x;
}

/* ---- markdown ------------------------------------------------------------------------------ */

/* Appends s with '|' escaped (a markdown table cell). */
static cs_rc md_text(cs_buf *b, const char *s)
{
    cs_rc rc = CS_OK;
    for (; s && *s && rc == CS_OK; s++) {
        rc = *s == '|' ? cs_buf_puts(b, "\\|") : cs_buf_putc(b, *s);
    }
    return rc;
}

/* An HTML comment line; "-->" inside the text is written "--&gt;" so it cannot end it. */
static cs_rc md_comment(cs_buf *b, const char *text)
{
    cs_rc rc = cs_buf_puts(b, "<!-- ");
    for (const char *s = text; *s && rc == CS_OK; s++) {
        rc = strncmp(s, "-->", 3) == 0 ? cs_buf_puts(b, "--&gt;") : cs_buf_putc(b, *s);
        s += strncmp(s, "-->", 3) == 0 ? 2 : 0;
    }
    return rc == CS_OK ? cs_buf_puts(b, " -->\n") : rc;
}

static cs_rc md_cell(cs_buf *b, const ex_col *c, const ex_cell *x, const cs_export_opts *o)
{
    int d = ex_digits(o, c);
    switch (c->kind) {
    case EX_AXIS:
        return md_text(b, x->text && *x->text ? x->text : "-");
    case EX_SEEDS:
        return cs_buf_printf(b, "%lld", (long long)x->n);
    case EX_NUM:
        break;
    }
    if (isnan(x->mean)) {
        return cs_buf_putc(b, '-');
    }
    if (c->delta) {
        return cs_buf_printf(b, "%+.*f%s", d, scaled(c, o, x->mean), x->mark);
    }
    if (x->n > 1 && isfinite(x->std)) {
        return cs_buf_printf(b, "%.*f ± %.*f", d, scaled(c, o, x->mean), d, scaled(c, o, x->std));
    }
    return cs_buf_printf(b, "%.*f", d, scaled(c, o, x->mean));
}

static cs_rc md_header(cs_buf *b, const ex_table *t)
{
    cs_rc rc = CS_OK;
    for (size_t c = 0; c < t->n_cols && rc == CS_OK; c++) {
        const ex_col *col = &t->cols[c];
        rc = cs_buf_puts(b, c ? " | " : "| ");
        if (rc == CS_OK && col->kind == EX_NUM && col->axis) {
            rc = cs_buf_printf(b, "%s=", col->axis);
        }
        rc = rc == CS_OK ? md_text(b, col->name) : rc;
        if (rc == CS_OK && col->dir) {
            rc = cs_buf_puts(b, col->dir > 0 ? " ↑" : " ↓");
        }
    }
    rc = rc == CS_OK ? cs_buf_puts(b, " |\n") : rc;
    for (size_t c = 0; c < t->n_cols && rc == CS_OK; c++) {
        rc = cs_buf_puts(b, t->cols[c].kind == EX_AXIS ? "|---" : "|---:");
    }
    return rc == CS_OK ? cs_buf_puts(b, "|\n") : rc;
}

static cs_rc write_markdown(cs_buf *b, const ex_table *t, const cs_export_opts *o)
{
    cs_buf note = {0};
    cs_rc rc = put_note(&note, o, t->jobs);
    rc = rc == CS_OK ? md_comment(b, note.data) : rc;
    cs_buf_fini(&note);
    if (rc == CS_OK && t->common && *t->common) {
        rc = cs_buf_printf(&note, "all rows: %s", t->common);
        rc = rc == CS_OK ? md_comment(b, note.data) : rc;
        cs_buf_fini(&note);
    }
    if (rc == CS_OK) {
        rc = md_comment(b, o->percent ? "cells: mean ± std across seeds; accuracies in percent"
                                      : "cells: mean ± std across seeds; accuracies as fractions");
    }
    if (rc == CS_OK && t->reference) {
        rc = md_comment(b, t->reference);
    }
    rc = rc == CS_OK ? md_header(b, t) : rc;
    for (size_t r = 0; r < t->n_rows && rc == CS_OK; r++) {
        for (size_t c = 0; c < t->n_cols && rc == CS_OK; c++) {
            rc = cs_buf_puts(b, c ? " | " : "| ");
            rc = rc == CS_OK ? md_cell(b, &t->cols[c], &t->cells[r * t->n_cols + c], o) : rc;
        }
        rc = rc == CS_OK ? cs_buf_puts(b, " |\n") : rc;
    }
    return rc;
}

/* ---- CSV (wide) ---------------------------------------------------------------------------- */

/* Appends one CSV field (RFC 4180: quoted when it holds a comma, quote or line break). */
static cs_rc csv_field(cs_buf *b, const char *s, bool first)
{
    cs_rc rc = first ? CS_OK : cs_buf_putc(b, ',');
    if (rc != CS_OK || !s || !strpbrk(s, ",\"\r\n")) {
        return rc == CS_OK && s ? cs_buf_puts(b, s) : rc;
    }
    rc = cs_buf_putc(b, '"');
    for (; *s && rc == CS_OK; s++) {
        rc = *s == '"' ? cs_buf_puts(b, "\"\"") : cs_buf_putc(b, *s);
    }
    return rc == CS_OK ? cs_buf_putc(b, '"') : rc;
}

static cs_rc csv_num(cs_buf *b, double x)
{
    cs_rc rc = cs_buf_putc(b, ',');
    return rc == CS_OK && isfinite(x) ? cs_buf_printf(b, "%.10g", x) : rc;
}

static cs_rc csv_header(cs_buf *b, const ex_table *t)
{
    cs_rc rc = CS_OK;
    for (size_t c = 0; c < t->n_cols && rc == CS_OK; c++) {
        const ex_col *col = &t->cols[c];
        cs_buf h = {0};
        rc = col->kind == EX_NUM && col->axis ? cs_buf_printf(&h, "%s=", col->axis) : CS_OK;
        for (const char *s = col->name; *s && rc == CS_OK; s++) {
            rc = cs_buf_putc(&h, *s == ' ' ? '.' : *s);
        }
        rc = rc == CS_OK ? csv_field(b, h.data, c == 0) : rc;
        if (rc == CS_OK && col->kind == EX_NUM) {
            rc = col->delta    ? cs_buf_printf(b, ",%s.p_holm,%s.mark", h.data, h.data)
                 : col->single ? CS_OK
                               : cs_buf_printf(b, ",%s.std", h.data);
        }
        cs_buf_fini(&h);
    }
    return rc == CS_OK ? cs_buf_putc(b, '\n') : rc;
}

static cs_rc csv_row(cs_buf *b, const ex_table *t, size_t r, const cs_export_opts *o)
{
    cs_rc rc = CS_OK;
    for (size_t c = 0; c < t->n_cols && rc == CS_OK; c++) {
        const ex_col *col = &t->cols[c];
        const ex_cell *x = &t->cells[r * t->n_cols + c];
        if (col->kind == EX_AXIS) {
            rc = csv_field(b, x->text, c == 0);
        } else if (col->kind == EX_SEEDS) {
            rc = cs_buf_printf(b, "%s%lld", c ? "," : "", (long long)x->n);
        } else if (col->delta) {
            rc = csv_num(b, scaled(col, o, x->mean));
            rc = rc == CS_OK ? csv_num(b, x->p) : rc;
            rc = rc == CS_OK ? csv_field(b, x->mark, false) : rc;
        } else {
            rc = csv_num(b, scaled(col, o, x->mean));
            if (rc == CS_OK && !col->single) {
                rc = csv_num(b, x->n > 1 ? scaled(col, o, x->std) : NAN);
            }
        }
    }
    return rc == CS_OK ? cs_buf_putc(b, '\n') : rc;
}

static cs_rc write_csv(cs_buf *b, const ex_table *t, const cs_export_opts *o)
{
    cs_rc rc = cs_buf_puts(b, "# ");
    rc = rc == CS_OK ? put_note(b, o, t->jobs) : rc;
    rc = rc == CS_OK ? cs_buf_putc(b, '\n') : rc;
    if (rc == CS_OK && t->common && *t->common) {
        rc = cs_buf_printf(b, "# all rows: %s\n", t->common);
    }
    if (rc == CS_OK && t->reference) {
        rc = cs_buf_printf(b, "# %s\n", t->reference);
    }
    rc = rc == CS_OK ? csv_header(b, t) : rc;
    for (size_t r = 0; r < t->n_rows && rc == CS_OK; r++) {
        rc = csv_row(b, t, r, o);
    }
    return rc;
}

/* ---- JSON ---------------------------------------------------------------------------------- */

/* The aggregate with the rows that --where keeps and an "export" member (the note's fields). */
static cs_rc write_json(cs_buf *b, const cJSON *agg, const cs_export_opts *o, cs_err *err)
{
    cJSON *kept = NULL, *doc = NULL, *note = NULL, *r, *next;
    char *text = NULL;
    int64_t jobs = 0;
    cs_rc rc = ex_select_rows(agg, o, &kept, err);
    if (rc != CS_OK) {
        return rc;
    }
    doc = cJSON_Duplicate(agg, true);
    note = cJSON_CreateObject();
    if (!doc || !note) {
        goto nomem;
    }
    for (r = cJSON_GetObjectItemCaseSensitive(doc, "rows")->child; r; r = next) {
        const cJSON *k;
        bool keep = false;
        next = r->next;
        cJSON_ArrayForEach(k, kept)
        {
            keep = keep || cJSON_Compare(cJSON_GetObjectItemCaseSensitive(k, "id"),
                                         cJSON_GetObjectItemCaseSensitive(r, "id"), true);
        }
        if (!keep) {
            cJSON_Delete(
                    cJSON_DetachItemViaPointer(cJSON_GetObjectItemCaseSensitive(doc, "rows"), r));
            continue;
        }
        const cJSON *done = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(r, "jobs"), "done");
        jobs += cJSON_IsNumber(done) ? (int64_t)done->valueint : 0;
    }
    if (!cJSON_AddStringToObject(note, "sweep", o->sweep ? o->sweep : "") ||
        !cJSON_AddNumberToObject(note, "sweep_id", (double)o->sweep_id) ||
        !cJSON_AddStringToObject(note, "engine_version",
                                 o->engine_version ? o->engine_version : "") ||
        !cJSON_AddNumberToObject(note, "jobs", (double)jobs) ||
        !cJSON_AddStringToObject(note, "command", o->command ? o->command : "")) {
        goto nomem;
    }
    cJSON_AddItemToObject(doc, "export", note);
    note = NULL;
    text = cJSON_PrintUnformatted(doc);
    if (!text || cs_buf_puts(b, text) != CS_OK || cs_buf_putc(b, '\n') != CS_OK) {
        goto nomem;
    }
    cJSON_free(text);
    cJSON_Delete(doc);
    cJSON_Delete(kept);
    return CS_OK;
nomem:
    cJSON_free(text);
    cJSON_Delete(note);
    cJSON_Delete(doc);
    cJSON_Delete(kept);
    return cs_err_set(err, CS_ENOMEM, 0, "export: out of memory");
}

cs_rc cs_export_render(const cJSON *agg, const cs_export_opts *o, cs_buf *out, cs_err *err)
{
    ex_table t;
    cs_rc rc;
    if (o->format == CS_EXPORT_JSON) {
        return write_json(out, agg, o, err);
    }
    if (o->format != CS_EXPORT_MARKDOWN && o->format != CS_EXPORT_CSV &&
        o->format != CS_EXPORT_LATEX) {
        return cs_err_set(err, CS_EINVAL, 0, "export: format %d is not a table of the aggregate",
                          (int)o->format);
    }
    rc = ex_table_build(&t, agg, o, err);
    if (rc != CS_OK) {
        return rc;
    }
    if (o->format == CS_EXPORT_LATEX) {
        cs_buf note = {0};
        rc = put_note(&note, o, t.jobs);
        rc = rc == CS_OK ? ex_write_latex(out, &t, o, note.data) : rc;
        cs_buf_fini(&note);
    } else {
        rc = o->format == CS_EXPORT_MARKDOWN ? write_markdown(out, &t, o) : write_csv(out, &t, o);
    }
    ex_table_fini(&t);
    return rc == CS_OK ? CS_OK : cs_err_set(err, rc, 0, "export: out of memory");
}

/* ---- one table per combination of the split axes ------------------------------------------ */

/* The distinct combinations of the split axes' values among agg's rows (all non-null), each as
 * a JSON array of the values, in first-seen order (owned, cJSON_Delete). */
static cJSON *split_combos(const cJSON *agg, const char *const *split, size_t n_split)
{
    cJSON *combos = cJSON_CreateArray();
    const cJSON *row, *c;
    cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(agg, "rows"))
    {
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(row, "values");
        cJSON *combo = cJSON_CreateArray();
        bool seen = false, whole = true;
        for (size_t i = 0; i < n_split && combo; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(values, split[i]);
            whole = whole && v && !cJSON_IsNull(v);
            if (whole) {
                cJSON_AddItemToArray(combo, cJSON_Duplicate(v, true));
            }
        }
        cJSON_ArrayForEach(c, combos)
        {
            seen = seen || cJSON_Compare(c, combo, true);
        }
        if (!combos || !combo || !whole || seen) {
            cJSON_Delete(combo);
        } else {
            cJSON_AddItemToArray(combos, combo);
        }
    }
    return combos;
}

/* Per split axis, the members that tell its values apart among the combinations (an array of
 * cs_agg_value_diffs, owned), so that headings are short ("algorithm=gptq(bits=4)"). */
static cJSON *split_diffs(const cJSON *combos, size_t n_split)
{
    size_t n = (size_t)cJSON_GetArraySize(combos), k;
    const cJSON **col = cs_alloc_array(n + 1, sizeof(*col));
    cJSON *all = col ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; i < n_split && all; i++) {
        const cJSON *c;
        k = 0;
        cJSON_ArrayForEach(c, combos)
        {
            col[k++] = cJSON_GetArrayItem(c, (int)i);
        }
        cJSON *d = ex_value_diffs(col, k);
        if (!d || !cJSON_AddItemToArray(all, d)) {
            cJSON_Delete(d);
            cJSON_Delete(all);
            all = NULL;
        }
    }
    free(col);
    return all;
}

/* One combination's table, appended to out after its heading; out unchanged on error (and for
 * an empty selection, CS_ENOENT). */
static cs_rc split_one(const cJSON *agg, const cs_export_opts *o, const char *const *split,
                       const cJSON *combo, const cJSON *diffs, cs_buf *out, cs_err *err)
{
    size_t n = (size_t)cJSON_GetArraySize(combo);
    cs_export_where *w = cs_calloc_array(o->n_where + n + 1, sizeof(*w));
    char **texts = cs_calloc_array(n + 1, sizeof(*texts));
    cs_export_opts one = *o;
    cs_buf head = {0}, part = {0};
    cs_rc rc = w && texts ? CS_OK : CS_ENOMEM;
    for (size_t i = 0; i < o->n_where && rc == CS_OK; i++) {
        w[i] = o->where[i];
    }
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        const cJSON *v = cJSON_GetArrayItem(combo, (int)i);
        texts[i] = cJSON_PrintUnformatted(v);
        rc = texts[i] ? cs_buf_printf(&head, "%s%s=", i ? " " : "", split[i]) : CS_ENOMEM;
        rc = rc == CS_OK ? cs_agg_value_short(&head, v, cJSON_GetArrayItem(diffs, (int)i)) : rc;
        w[o->n_where + i] = (cs_export_where){split[i], texts[i]};
    }
    one.where = w;
    one.n_where = o->n_where + n;
    one.standalone = false;
    rc = rc == CS_OK ? cs_export_render(agg, &one, &part, err)
                     : cs_err_set(err, rc, 0, "export: out of memory");
    if (rc == CS_OK && o->format == CS_EXPORT_MARKDOWN) {
        rc = cs_buf_printf(out, "%s### %s\n\n", out->len ? "\n" : "", head.data);
    } else if (rc == CS_OK && out->len) {
        rc = cs_buf_putc(out, '\n');
    }
    rc = rc == CS_OK ? cs_buf_append(out, part.data, part.len) : rc;
    for (size_t i = 0; texts && i < n; i++) {
        cJSON_free(texts[i]);
    }
    free(texts);
    free(w);
    cs_buf_fini(&head);
    cs_buf_fini(&part);
    return rc;
}

cs_rc cs_export_render_split(const cJSON *agg, const cs_export_opts *o, const char *const *split,
                             size_t n_split, cs_buf *out, cs_err *err)
{
    cJSON *combos, *diffs;
    const cJSON *c;
    cs_rc rc = CS_OK;
    size_t made = 0;
    if (n_split == 0 || (o->format != CS_EXPORT_MARKDOWN && o->format != CS_EXPORT_LATEX)) {
        return cs_export_render(agg, o, out, err);
    }
    combos = split_combos(agg, split, n_split);
    diffs = combos ? split_diffs(combos, n_split) : NULL;
    if (!diffs) {
        cJSON_Delete(combos);
        return cs_err_set(err, CS_ENOMEM, 0, "export: out of memory");
    }
    if (o->standalone && o->format == CS_EXPORT_LATEX) {
        rc = ex_latex_document(out, true);
    }
    cJSON_ArrayForEach(c, combos)
    {
        if (rc == CS_OK || rc == CS_ENOENT) {
            rc = split_one(agg, o, split, c, diffs, out, err);
            made += rc == CS_OK;
        }
    }
    cJSON_Delete(combos);
    cJSON_Delete(diffs);
    if (rc == CS_ENOENT && made > 0) {
        rc = CS_OK;
    }
    if (rc == CS_OK && made == 0) {
        rc = cs_err_set(err, CS_ENOENT, 0, "no table has a row (the sweep has no rows to show)");
    }
    if (rc == CS_OK && o->standalone && o->format == CS_EXPORT_LATEX) {
        rc = ex_latex_document(out, false);
    }
    return rc;
}
