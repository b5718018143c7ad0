/* cs_agg_out.c - the aggregate document of cs_agg_run: one JSON object whose field names are the
 * stable interface of `calsweep results --json` and the RESULTS message (docs/results.md lists
 * every field). Numbers that cannot be computed are null, never NaN.
 *
 * With opts.slim the rows leave out what grows with the jobs and metrics and the text table does
 * not read (docs/results.md "Slim form"): the same builders, each skipping those members, so the
 * slim document is the full one minus members and cs_agg_print_text renders both alike.
 *
 * cs_agg_print_json writes a document as cJSON_PrintUnformatted would (`--json`), streamed. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_agg.h"
#include "cs_agg_int.h"
#include "cs_alloc.h"
#include "cs_canon.h"

/* A number, or null when it is not finite. */
static cJSON *num(double x)
{
    return isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull();
}

static void add_num(cJSON *o, const char *k, double x)
{
    cJSON_AddItemToObjectCS(o, k, num(x)); /* k is a literal */
}

/* mean, population std and standard error (sample std / sqrt(n); 0 for n 1) of v[0..n). */
static void moments(const double *v, size_t n, double *mean, double *std, double *se)
{
    double s = 0.0, q = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += v[i];
    }
    *mean = n ? s / (double)n : NAN;
    for (size_t i = 0; i < n; i++) {
        q += (v[i] - *mean) * (v[i] - *mean);
    }
    *std = n ? sqrt(q / (double)n) : NAN;
    *se = n > 1 ? sqrt(q / ((double)n * (double)(n - 1))) : (n == 1 ? 0.0 : NAN);
}

static cJSON *stats_obj(const double *v, size_t n)
{
    double mean, std, se;
    moments(v, n, &mean, &std, &se);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "n", cJSON_CreateNumber((double)n));
    add_num(o, "mean", mean);
    add_num(o, "std", std);
    add_num(o, "se", se);
    return o;
}

/* One task of a row: the headline, its value, the seeds and items, and every metric's moments
 * (slim: the headline and its value). */
static cJSON *task_obj(const ag *a, const ag_row *r, size_t t, double *scratch)
{
    const ag_task *k = &a->tasks[t];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "headline", cJSON_CreateString(k->headline));
    add_num(o, "value", r->head[t]);
    if (a->o.slim) {
        return o;
    }
    cJSON *items = cJSON_CreateArray(), *ms = cJSON_CreateObject();
    size_t seeds = 0;
    for (size_t i = 0; i < r->n_jobs; i++) {
        const cs_agg_job *j = &a->jobs[r->jobs[i]];
        const cs_agg_metric *m = ag_is_done(j) ? ag_metric(j, k->name, k->headline) : NULL;
        if (m != NULL) {
            seeds++;
            cJSON_AddItemToArray(items, cJSON_CreateNumber((double)m->n));
        }
    }
    cJSON_AddItemToObjectCS(o, "n_seeds", cJSON_CreateNumber((double)seeds));
    cJSON_AddItemToObjectCS(o, "items", items);
    for (size_t mi = 0; mi < k->n_metrics; mi++) {
        size_t n = 0;
        for (size_t i = 0; i < r->n_jobs; i++) {
            const cs_agg_job *j = &a->jobs[r->jobs[i]];
            const cs_agg_metric *m = ag_is_done(j) ? ag_metric(j, k->name, k->metrics[mi]) : NULL;
            if (m != NULL) {
                scratch[n++] = m->value;
            }
        }
        if (n > 0) {
            cJSON_AddItemToObject(ms, k->metrics[mi], stats_obj(scratch, n));
        }
    }
    cJSON_AddItemToObjectCS(o, "metrics", ms);
    return o;
}

/* M4 per job (the jobs with every average task), then its moments across them (slim: M4 and
 * the std of the per-job values, which `calsweep watch`'s best rows show). */
static cJSON *average_obj(const ag *a, const ag_row *r, double *scratch)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_jobs && a->n_avg > 0; i++) {
        const cs_agg_job *j = &a->jobs[r->jobs[i]];
        double s = 0.0;
        size_t have = 0;
        for (size_t t = 0; t < a->n_tasks && ag_is_done(j); t++) {
            const cs_agg_metric *m = a->tasks[t].in_avg
                                             ? ag_metric(j, a->tasks[t].name, a->tasks[t].headline)
                                             : NULL;
            if (m != NULL) {
                s += m->value;
                have++;
            }
        }
        if (have == a->n_avg) {
            scratch[n++] = s / (double)have;
        }
    }
    cJSON *o = stats_obj(scratch, n);
    add_num(o, "value", r->avg);
    if (a->o.item_resamples > 0 && !a->o.slim) {
        cJSON *ci = isnan(r->item_lo) ? cJSON_CreateNull() : cJSON_CreateArray();
        if (ci != NULL && !isnan(r->item_lo)) {
            cJSON_AddItemToArray(ci, num(r->item_lo));
            cJSON_AddItemToArray(ci, num(r->item_hi));
        }
        cJSON_AddItemToObjectCS(o, "item_ci", ci);
    }
    if (a->o.slim) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "n");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "mean");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "se");
    }
    return o;
}

/* Delta and retention against the baseline row, and M5 (slim: without the tasks). */
static cJSON *vs_baseline(const ag *a, const ag_row *r)
{
    const ag_row *b = &a->rows[r->base];
    cJSON *o = cJSON_CreateObject(), *tasks = a->o.slim ? NULL : cJSON_CreateObject();
    double worst = -INFINITY, min_ret = INFINITY;
    double *rets = cs_alloc_array(a->n_tasks + 1, sizeof(*rets));
    double *qs = cs_alloc_array(a->n_tasks + 1, sizeof(*qs));
    size_t n = 0;
    for (size_t t = 0; t < a->n_tasks; t++) {
        double q = r->head[t], f = b->head[t], ret = f != 0.0 ? q / f : NAN;
        if (tasks != NULL) {
            cJSON *to = cJSON_CreateObject();
            add_num(to, "delta", q - f);
            add_num(to, "retention", ret);
            cJSON_AddItemToObject(tasks, a->tasks[t].name, to);
        }
        if (a->tasks[t].in_avg && isfinite(ret) && rets != NULL && qs != NULL) {
            rets[n] = ret;
            qs[n] = q;
            worst = f - q > worst ? f - q : worst;
            min_ret = ret < min_ret ? ret : min_ret;
            n++;
        }
    }
    if (tasks != NULL) {
        cJSON_AddItemToObjectCS(o, "tasks", tasks);
    }
    cJSON *avg = cJSON_CreateObject();
    add_num(avg, "delta", r->avg - b->avg);
    add_num(avg, "retention", b->avg != 0.0 ? r->avg / b->avg : NAN);
    cJSON_AddItemToObjectCS(o, "average", avg);
    if (n != a->n_avg || n == 0) {
        cJSON_AddItemToObjectCS(o, "balance", cJSON_CreateNull());
        cs_free_each((void *const[]){rets, qs}, 2);
        return o;
    }
    double mean, std_ret, std_acc, se;
    moments(rets, n, &mean, &std_ret, &se);
    moments(qs, n, &mean, &std_acc, &se);
    cs_free_each((void *const[]){rets, qs}, 2);
    cJSON *bal = cJSON_CreateObject();
    add_num(bal, "std_ret", std_ret);
    add_num(bal, "worst_drop", worst);
    add_num(bal, "min_ret", min_ret);
    add_num(bal, "std_acc", std_acc);
    cJSON_AddItemToObjectCS(o, "balance", bal);
    return o;
}

static const char *mark(double p)
{
    return p < 0.001 ? "***" : p < 0.01 ? "**" : p < 0.05 ? "*" : "";
}

static cJSON *cmp_obj(const ag_cmp *c)
{
    cJSON *o = cJSON_CreateObject();
    add_num(o, "delta", c->delta);
    cJSON_AddItemToObjectCS(o, "tested", cJSON_CreateBool(c->reason == NULL));
    if (c->reason != NULL) {
        cJSON_AddItemToObjectCS(o, "reason", cJSON_CreateString(c->reason));
        cJSON_AddItemToObjectCS(o, "ci", cJSON_CreateNull());
        cJSON_AddItemToObjectCS(o, "p", cJSON_CreateNull());
        cJSON_AddItemToObjectCS(o, "p_holm", cJSON_CreateNull());
        cJSON_AddItemToObjectCS(o, "mark", cJSON_CreateString(""));
        return o;
    }
    cJSON_AddItemToObjectCS(o, "reason", cJSON_CreateNull());
    double ci[2] = {c->ci.lo, c->ci.hi};
    cJSON_AddItemToObjectCS(o, "ci", cJSON_CreateDoubleArray(ci, 2));
    add_num(o, "p", c->ci.p);
    add_num(o, "p_holm", c->p_holm);
    cJSON_AddItemToObjectCS(o, "mark", cJSON_CreateString(mark(c->p_holm)));
    return o;
}

static cJSON *flags_arr(unsigned flags)
{
    cJSON *f = cJSON_CreateArray();
    for (unsigned k = 0; k < AG_N_FLAGS; k++) {
        if (flags & (1u << k)) {
            cJSON_AddItemToArray(f, cJSON_CreateString(ag_flag_names[k]));
        }
    }
    return f;
}

/* A seed's canonical JSON text as an item: cJSON_Parse's, read directly when it is a small
 * integer (the usual seed; a parse per job was a tenth of the document's time). */
static cJSON *seed_item(const char *s)
{
    size_t len = strlen(s), neg = s[0] == '-';
    bool digits = len > neg && len - neg <= 15 && (s[neg] != '0' || len == neg + 1);
    for (size_t i = neg; digits && i < len; i++) {
        digits = s[i] >= '0' && s[i] <= '9';
    }
    return digits ? cJSON_CreateNumber(strtod(s, NULL)) : cJSON_Parse(s);
}

static cJSON *jobs_obj(const ag *a, const ag_row *r)
{
    cJSON *o = cJSON_CreateObject(), *ids = cJSON_CreateArray(), *seeds = cJSON_CreateArray();
    cJSON_AddItemToObjectCS(o, "total", cJSON_CreateNumber((double)r->n_jobs));
    cJSON_AddItemToObjectCS(o, "done", cJSON_CreateNumber((double)r->n_done));
    cJSON_AddItemToObjectCS(o, "failed", cJSON_CreateNumber((double)r->n_failed));
    cJSON_AddItemToObjectCS(o, "lost", cJSON_CreateNumber((double)r->n_lost));
    cJSON_AddItemToObjectCS(o, "cancelled", cJSON_CreateNumber((double)r->n_cancelled));
    cJSON_AddItemToObjectCS(o, "unfinished", cJSON_CreateNumber((double)r->n_unfinished));
    cJSON_AddItemToObjectCS(o, "no_result", cJSON_CreateNumber((double)r->n_noresult));
    cJSON_AddItemToObjectCS(o, "no_items", cJSON_CreateNumber((double)r->n_v1));
    for (size_t i = 0; i < r->n_jobs; i++) {
        const cs_agg_job *j = &a->jobs[r->jobs[i]];
        cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)j->job_id));
        const char *s = a->seed[r->jobs[i]]; /* canonical JSON of the seed, or NULL */
        cJSON *v = s != NULL ? seed_item(s) : NULL;
        cJSON_AddItemToArray(seeds, v != NULL ? v : cJSON_CreateNull());
    }
    cJSON_AddItemToObjectCS(o, "ids", ids);
    cJSON_AddItemToObjectCS(o, "seeds", seeds);
    return o;
}

/* Why row r has no reference row: {"reason", "message", "candidates": [row ids]}, or null. */
static cJSON *no_ref_obj(const ag *a, const ag_row *r)
{
    if (r->no_ref == NULL) {
        return cJSON_CreateNull();
    }
    cJSON *o = cJSON_CreateObject(), *ids = cJSON_CreateArray();
    cs_buf b = {0};
    if (r->n_no_ref_cand == 0) {
        cs_buf_printf(&b, "no row with %s=%s has this row's values on the other axes",
                      a->o.ref_axis, a->o.ref_value);
    } else {
        cs_buf_printf(&b, "several rows match %s=%s: ", a->o.ref_axis, a->o.ref_value);
    }
    for (size_t i = 0; i < r->n_no_ref_cand; i++) {
        size_t c = r->no_ref_cand[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(a->rows[c].axes, a->o.ref_axis);
        cs_buf_puts(&b, i > 0 ? ", " : "");
        ag_value_text(v, &b);
        cs_buf_printf(&b, " (row %zu)", c);
        cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)c));
    }
    cJSON_AddItemToObjectCS(o, "reason", cJSON_CreateString(r->no_ref));
    cJSON_AddItemToObjectCS(o, "message", cJSON_CreateString(b.data != NULL ? b.data : ""));
    cJSON_AddItemToObjectCS(o, "candidates", ids);
    cs_buf_fini(&b);
    return o;
}

static cJSON *row_obj(const ag *a, size_t ri, const ag_cmp *cmps, double *scratch)
{
    const ag_row *r = &a->rows[ri];
    cJSON *o = cJSON_CreateObject(), *vals = cJSON_CreateObject(), *tasks = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(o, "id", cJSON_CreateNumber((double)ri));
    cJSON_AddItemToObjectCS(o, "label", cJSON_CreateString(r->label));
    cJSON_AddItemToObjectCS(o, "baseline", cJSON_CreateBool(r->baseline));
    for (size_t i = 0; i < a->n_gax; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->axes, a->axes[a->gax[i]]);
        cJSON_AddItemToObject(vals, a->axes[a->gax[i]],
                              v != NULL ? cJSON_Duplicate(v, true) : cJSON_CreateNull());
    }
    cJSON_AddItemToObjectCS(o, "values", vals);
    cJSON_AddItemToObjectCS(o, "model",
                            r->model ? cJSON_CreateString(r->model) : cJSON_CreateNull());
    cJSON_AddItemToObjectCS(o, "eval", r->eval ? cJSON_CreateString(r->eval) : cJSON_CreateNull());
    if (!a->o.slim) {
        cJSON_AddItemToObjectCS(o, "jobs", jobs_obj(a, r));
    }
    cJSON_AddItemToObjectCS(o, "n_seeds", cJSON_CreateNumber((double)r->n_seeds_ok));
    for (size_t t = 0; t < a->n_tasks; t++) {
        cJSON_AddItemToObject(tasks, a->tasks[t].name, task_obj(a, r, t, scratch));
    }
    cJSON_AddItemToObjectCS(o, "tasks", tasks);
    cJSON_AddItemToObjectCS(o, "average", average_obj(a, r, scratch));
    cJSON_AddItemToObjectCS(o, "baseline_row",
                            r->base != AG_NONE ? cJSON_CreateNumber((double)r->base)
                                               : cJSON_CreateNull());
    cJSON_AddItemToObjectCS(o, "vs_baseline",
                            r->base != AG_NONE ? vs_baseline(a, r) : cJSON_CreateNull());
    cJSON_AddItemToObjectCS(o, "reference_row",
                            r->ref != AG_NONE ? cJSON_CreateNumber((double)r->ref)
                                              : cJSON_CreateNull());
    cJSON_AddItemToObjectCS(o, "no_reference", no_ref_obj(a, r));
    if (cmps == NULL) {
        cJSON_AddItemToObjectCS(o, "vs_reference", cJSON_CreateNull());
    } else {
        cJSON *vr = cJSON_CreateObject(), *vt = cJSON_CreateObject();
        for (size_t t = 0; t < a->n_tasks; t++) {
            cJSON_AddItemToObject(vt, a->tasks[t].name, cmp_obj(&cmps[t]));
        }
        cJSON_AddItemToObjectCS(vr, "tasks", vt);
        cJSON_AddItemToObjectCS(vr, "average",
                                a->n_avg > 0 ? cmp_obj(&cmps[a->n_tasks]) : cJSON_CreateNull());
        cJSON_AddItemToObjectCS(o, "vs_reference", vr);
    }
    cJSON_AddItemToObjectCS(o, "flags", flags_arr(r->flags));
    return o;
}

static cJSON *head_obj(const ag *a)
{
    cJSON *o = cJSON_CreateObject(), *axes = cJSON_CreateArray(), *by = cJSON_CreateArray();
    cJSON *tasks = cJSON_CreateArray();
    cJSON_AddItemToObjectCS(o, "format", cJSON_CreateString("calsweep-results/1"));
    for (size_t i = 0; i < a->n_axes; i++) {
        cJSON_AddItemToArray(axes, cJSON_CreateString(a->axes[i]));
    }
    for (size_t i = 0; i < a->n_gax; i++) {
        cJSON_AddItemToArray(by, cJSON_CreateString(a->axes[a->gax[i]]));
    }
    cJSON_AddItemToObjectCS(o, "axes", axes);
    cJSON_AddItemToObjectCS(o, "by", by);
    cJSON_AddItemToObjectCS(o, "metric",
                            a->o.metric ? cJSON_CreateString(a->o.metric) : cJSON_CreateNull());
    for (size_t t = 0; t < a->n_tasks; t++) {
        cJSON *k = cJSON_CreateObject();
        cJSON_AddItemToObjectCS(k, "name", cJSON_CreateString(a->tasks[t].name));
        cJSON_AddItemToObjectCS(k, "headline", cJSON_CreateString(a->tasks[t].headline));
        cJSON_AddItemToObjectCS(k, "kind",
                                cJSON_CreateString(a->tasks[t].ppl ? "perplexity" : "accuracy"));
        cJSON_AddItemToObjectCS(k, "in_average", cJSON_CreateBool(a->tasks[t].in_avg));
        cJSON_AddItemToArray(tasks, k);
    }
    cJSON_AddItemToObjectCS(o, "tasks", tasks);
    if (a->ref_axis == AG_NONE) {
        cJSON_AddItemToObjectCS(o, "reference", cJSON_CreateNull());
    } else {
        cJSON *ref = cJSON_CreateObject();
        cJSON_AddItemToObjectCS(ref, "axis", cJSON_CreateString(a->o.ref_axis));
        cJSON_AddItemToObjectCS(ref, "value", cJSON_CreateString(a->o.ref_value));
        cJSON_AddItemToObjectCS(o, "reference", ref);
    }
    cJSON_AddItemToObjectCS(o, "resamples", cJSON_CreateNumber((double)a->o.resamples));
    cJSON_AddItemToObjectCS(o, "seed", cJSON_CreateNumber((double)a->o.seed));
    cJSON_AddItemToObjectCS(o, "max_seeds", cJSON_CreateNumber((double)a->max_seeds));
    cJSON_AddItemToObjectCS(o, "jobs", cJSON_CreateNumber((double)a->n_jobs));
    return o;
}

cs_rc ag_output(const ag *a, cJSON **out)
{
    size_t most = 1;
    for (size_t r = 0; r < a->n_rows; r++) {
        most = a->rows[r].n_jobs > most ? a->rows[r].n_jobs : most;
    }
    double *scratch = cs_alloc_array(most, sizeof(*scratch));
    cJSON *doc = head_obj(a), *rows = cJSON_CreateArray(), *flags = cJSON_CreateObject();
    if (scratch == NULL || doc == NULL || rows == NULL || flags == NULL) {
        free(scratch);
        cJSON_Delete(doc);
        cJSON_Delete(rows);
        cJSON_Delete(flags);
        return cs_err_set(a->err, CS_ENOMEM, 0, "results: the aggregate document");
    }
    size_t ci = 0, tested = 0, counts[AG_N_FLAGS] = {0};
    for (size_t r = 0; r < a->n_rows; r++) {
        const ag_cmp *c = NULL;
        if (a->rows[r].ref != AG_NONE) {
            c = &a->cmps[ci];
            ci += a->n_tasks + (a->n_avg > 0);
        }
        cJSON_AddItemToArray(rows, row_obj(a, r, c, scratch));
        for (unsigned k = 0; k < AG_N_FLAGS; k++) {
            counts[k] += (a->rows[r].flags >> k) & 1u;
        }
    }
    for (size_t i = 0; i < a->n_cmps; i++) {
        tested += a->cmps[i].reason == NULL;
    }
    cJSON_AddItemToObjectCS(doc, "rows", rows);
    cJSON *cmp = cJSON_CreateObject();
    cJSON_AddItemToObjectCS(cmp, "total", cJSON_CreateNumber((double)a->n_cmps));
    cJSON_AddItemToObjectCS(cmp, "tested", cJSON_CreateNumber((double)tested));
    cJSON_AddItemToObjectCS(doc, "comparisons", cmp);
    for (unsigned k = 0; k < AG_N_FLAGS; k++) {
        cJSON_AddNumberToObject(flags, ag_flag_names[k], (double)counts[k]);
    }
    cJSON_AddItemToObjectCS(doc, "flags", flags);
    free(scratch);
    *out = doc;
    return CS_OK;
}

/* ---- cs_agg_print_json: cJSON_PrintUnformatted's text, streamed ------------------------------ */

/* The writer: text accumulates in b and goes to out in blocks. */
typedef struct jw {
    cs_buf b;
    FILE *out;
    bool bad;   /* an item cJSON cannot print */
    bool error; /* out of memory or a write failed */
} jw;

enum { JW_BLOCK = 1 << 16 };

static void jw_flush(jw *w)
{
    if (w->b.len > 0 && !w->error && fwrite(w->b.data, 1, w->b.len, w->out) != w->b.len) {
        w->error = true;
    }
    w->b.len = 0;
}

static void jw_put(jw *w, const char *s, size_t n)
{
    if (w->b.len + n > JW_BLOCK) {
        jw_flush(w);
    }
    w->error = w->error || cs_buf_append(&w->b, s, n) != CS_OK;
}

/* print_string_ptr of cJSON (cs_canon_put_string escapes the same way); NULL as "". */
static void jw_string(jw *w, const char *s)
{
    if (w->b.len > JW_BLOCK) {
        jw_flush(w);
    }
    w->error = w->error || cs_canon_put_string(&w->b, s != NULL ? s : "") != CS_OK;
}

/* print_number of cJSON 1.7.15: null for NaN and infinities, else "%1.15g" when it reads back
 * within cJSON's tolerance (|a - b| <= max(|a|, |b|) DBL_EPSILON; read with strtod where cJSON
 * uses sscanf, the same conversion), else "%1.17g"; the C locale's decimal point. An integer
 * below 1e15 in magnitude is written without printf: "%1.15g" writes its digits (and "-0" for
 * -0). Other versions of cJSON format numbers differently (1.7.16 and later print an int-valued
 * number with "%d"): with them each number is cJSON's own print of it. */
static void jw_number(jw *w, const cJSON *item)
{
    double d = item->valuedouble;
    char t[32];
    int n;
    if (isnan(d) || isinf(d)) {
        jw_put(w, "null", 4);
        return;
    }
#if CJSON_VERSION_MAJOR == 1 && CJSON_VERSION_MINOR == 7 && CJSON_VERSION_PATCH == 15
    if (d == floor(d) && fabs(d) < 1e15) {
        uint64_t u = (uint64_t)fabs(d);
        char *p = t + sizeof(t);
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u > 0);
        if (signbit(d)) {
            *--p = '-';
        }
        jw_put(w, p, (size_t)(t + sizeof(t) - p));
        return;
    }
    n = snprintf(t, sizeof(t), "%1.15g", d);
    double back = strtod(t, NULL), most = fabs(back) > fabs(d) ? fabs(back) : fabs(d);
    if (!(fabs(back - d) <= most * DBL_EPSILON)) {
        n = snprintf(t, sizeof(t), "%1.17g", d);
    }
#else
    n = cJSON_PrintPreallocated((cJSON *)(uintptr_t)item, t, (int)sizeof(t), false) ? (int)strlen(t)
                                                                                    : -1;
#endif
    if (n < 0 || (size_t)n >= sizeof(t)) {
        w->bad = true;
        return;
    }
    jw_put(w, t, (size_t)n);
}

static void jw_value(jw *w, const cJSON *item)
{
    switch (item->type & 0xFF) {
    case cJSON_NULL:
        jw_put(w, "null", 4);
        return;
    case cJSON_False:
        jw_put(w, "false", 5);
        return;
    case cJSON_True:
        jw_put(w, "true", 4);
        return;
    case cJSON_Number:
        jw_number(w, item);
        return;
    case cJSON_Raw:
        if (item->valuestring == NULL) {
            w->bad = true;
            return;
        }
        jw_put(w, item->valuestring, strlen(item->valuestring));
        return;
    case cJSON_String:
        jw_string(w, item->valuestring);
        return;
    case cJSON_Array:
    case cJSON_Object: {
        bool obj = (item->type & 0xFF) == cJSON_Object;
        jw_put(w, obj ? "{" : "[", 1);
        for (const cJSON *c = item->child; c != NULL && !w->bad; c = c->next) {
            if (obj) {
                jw_string(w, c->string);
                jw_put(w, ":", 1);
            }
            jw_value(w, c);
            if (c->next != NULL) {
                jw_put(w, ",", 1);
            }
        }
        jw_put(w, obj ? "}" : "]", 1);
        return;
    }
    default:
        w->bad = true;
        return;
    }
}

cs_rc cs_agg_print_json(const cJSON *agg, FILE *out, cs_err *err)
{
    jw w = {.out = out};
    if (agg == NULL) {
        return cs_err_set(err, CS_EINVAL, 0, "results: no aggregate to print");
    }
    w.error = cs_buf_reserve(&w.b, JW_BLOCK) != CS_OK;
    jw_value(&w, agg);
    jw_put(&w, "\n", 1);
    jw_flush(&w);
    cs_buf_fini(&w.b);
    if (w.bad) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "results: the aggregate has an item JSON cannot "
                          "write (invalid, or raw without text)");
    }
    if (w.error) {
        return cs_err_errno(err, errno, "results: writing the aggregate");
    }
    return CS_OK;
}
