/* cs_export_long.c - cs_export_render_long: the long CSV, one line per done job, task and metric
 * with the job's axes flattened into columns (an object axis as axis.member columns) and, when
 * given, its whole config flattened too (config.a.b.c, at every depth), for tools that want every
 * number (`calsweep export --format csv-long`). The jobs are those cs_agg_run reads
 * (cs_store_agg_load); their axes come as text or as the fragment members, their configs from
 * cs_store_agg_configs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_export.h"

typedef struct long_ctx {
    cJSON **axes;  /* per job: its axes object, NULL for jobs not written */
    cJSON **cfgs;  /* per job: its config flattened ({"config.a.b": value}), NULL when none */
    cJSON *keys;   /* the flattened column names, as an object used as a set */
    char **sorted; /* borrowed from keys, sorted */
    size_t n_keys;
    int64_t jobs; /* jobs written */
} long_ctx;

/* The axes' columns by name, then the config's (config.*) by name. */
static int cmp_col(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    int cx = strncmp(x, "config.", 7) == 0, cy = strncmp(y, "config.", 7) == 0;
    return cx != cy ? cx - cy : strcmp(x, y);
}

/* A job's axes as one object: its text, or its members joined. */
static cJSON *job_axes(const cs_agg_job *j)
{
    cs_buf b = {0};
    cJSON *o;
    if (!j->members) {
        return cJSON_Parse(j->axes ? j->axes : "{}");
    }
    cs_buf_putc(&b, '{');
    for (size_t m = 0; m < j->n_members; m++) {
        cs_buf_printf(&b, "%s%s", m ? "," : "", j->members[m]);
    }
    cs_buf_putc(&b, '}');
    o = b.data ? cJSON_Parse(b.data) : NULL;
    cs_buf_fini(&b);
    return o;
}

/* Adds the flattened column names of one axes object to the set. */
static cs_rc add_keys(long_ctx *x, const cJSON *axes)
{
    const cJSON *a, *m;
    cJSON_ArrayForEach(a, axes)
    {
        if (!cJSON_IsObject(a)) {
            if (!cJSON_GetObjectItemCaseSensitive(x->keys, a->string) &&
                !cJSON_AddTrueToObject(x->keys, a->string)) {
                return CS_ENOMEM;
            }
            continue;
        }
        cJSON_ArrayForEach(m, a)
        {
            cs_buf k = {0};
            cs_rc rc = cs_buf_printf(&k, "%s.%s", a->string, m->string);
            if (rc == CS_OK && !cJSON_GetObjectItemCaseSensitive(x->keys, k.data) &&
                !cJSON_AddTrueToObject(x->keys, k.data)) {
                rc = CS_ENOMEM;
            }
            cs_buf_fini(&k);
            if (rc != CS_OK) {
                return rc;
            }
        }
    }
    return CS_OK;
}

/* Adds the members of config under prefix to flat ({"prefix.name.sub": value}, every depth; an
 * array is one column, its JSON text; null leaves no column) and their names to the set of columns.
 */
static cs_rc flatten(long_ctx *x, const cJSON *config, const char *prefix, cJSON *flat)
{
    const cJSON *m;
    cs_rc rc = CS_OK;
    cJSON_ArrayForEach(m, config)
    {
        cs_buf k = {0};
        rc = cs_buf_printf(&k, "%s.%s", prefix, m->string);
        if (rc == CS_OK && cJSON_IsObject(m)) {
            rc = flatten(x, m, k.data, flat);
        } else if (rc == CS_OK && !cJSON_IsNull(m)) { /* null: an empty field, no column */
            cJSON *v = cJSON_Duplicate(m, true);
            if (!v || !cJSON_AddItemToObject(flat, k.data, v) ||
                (!cJSON_GetObjectItemCaseSensitive(x->keys, k.data) &&
                 !cJSON_AddTrueToObject(x->keys, k.data))) {
                rc = CS_ENOMEM;
            }
        }
        cs_buf_fini(&k);
        if (rc != CS_OK) {
            return rc;
        }
    }
    return rc;
}

/* Parses job i's config and flattens it into x->cfgs[i]. */
static cs_rc add_config(long_ctx *x, size_t i, const cs_agg_job *j, const char *text, cs_err *err)
{
    cJSON *c = cJSON_Parse(text);
    cs_rc rc;
    if (!cJSON_IsObject(c)) {
        cJSON_Delete(c);
        return cs_err_set(err, CS_EINVAL, 0, "export: job %lld: config is not a JSON object",
                          (long long)j->job_id);
    }
    x->cfgs[i] = cJSON_CreateObject();
    rc = x->cfgs[i] ? flatten(x, c, "config", x->cfgs[i]) : CS_ENOMEM;
    cJSON_Delete(c);
    return rc;
}

static bool job_kept(const cJSON *axes, const cs_export_opts *o)
{
    for (size_t w = 0; w < o->n_where; w++) {
        if (!cs_export_value_matches(cJSON_GetObjectItemCaseSensitive(axes, o->where[w].axis),
                                     o->where[w].value)) {
            return false;
        }
    }
    return true;
}

/* Parses the done jobs' axes, checks the --where axes, collects and sorts the columns. */
static cs_rc long_prepare(long_ctx *x, const cs_agg_job *jobs, size_t n, const char *const *configs,
                          const cs_export_opts *o, cs_err *err)
{
    cJSON *all = cJSON_CreateObject(); /* every top-level axis, for the --where check */
    cs_rc rc = all ? CS_OK : CS_ENOMEM;
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        cJSON *a = job_axes(&jobs[i]);
        const cJSON *m;
        if (!cJSON_IsObject(a)) {
            cJSON_Delete(a);
            cJSON_Delete(all);
            return cs_err_set(err, CS_EINVAL, 0, "export: job %lld: axes are not a JSON object",
                              (long long)jobs[i].job_id);
        }
        cJSON_ArrayForEach(m, a)
        {
            if (!cJSON_GetObjectItemCaseSensitive(all, m->string)) {
                cJSON_AddTrueToObject(all, m->string);
            }
        }
        if (strcmp(jobs[i].state, "done") != 0 || jobs[i].n_metrics == 0 || !job_kept(a, o)) {
            cJSON_Delete(a);
            continue;
        }
        x->axes[i] = a;
        x->jobs++;
        rc = add_keys(x, a);
        if (rc == CS_OK && configs && configs[i]) {
            rc = add_config(x, i, &jobs[i], configs[i], err);
            if (rc == CS_EINVAL) {
                cJSON_Delete(all);
                return rc;
            }
        }
    }
    for (size_t w = 0; w < o->n_where && rc == CS_OK; w++) {
        if (!cJSON_GetObjectItemCaseSensitive(all, o->where[w].axis)) {
            cs_buf b = {0};
            const cJSON *m;
            cJSON_ArrayForEach(m, all)
            {
                cs_buf_printf(&b, "%s%s", b.len ? ", " : "", m->string);
            }
            rc = cs_err_set(err, CS_EINVAL, 0, "--where %s=%s: no such axis; axes: %s",
                            o->where[w].axis, o->where[w].value, b.data ? b.data : "");
            cs_buf_fini(&b);
        }
    }
    cJSON_Delete(all);
    if (rc == CS_OK && x->jobs == 0) {
        return cs_err_set(err, CS_ENOENT, 0,
                          o->n_where ? "no done job matches every --where" : "no done job");
    }
    x->n_keys = rc == CS_OK ? (size_t)cJSON_GetArraySize(x->keys) : 0;
    x->sorted = rc == CS_OK ? cs_alloc_array(x->n_keys, sizeof(*x->sorted)) : NULL;
    if (rc == CS_OK && !x->sorted) {
        rc = CS_ENOMEM;
    }
    if (rc == CS_ENOMEM) {
        return cs_err_set(err, rc, 0, "export: out of memory");
    }
    if (rc == CS_OK) {
        size_t k = 0;
        const cJSON *m;
        cJSON_ArrayForEach(m, x->keys)
        {
            x->sorted[k++] = m->string;
        }
        qsort(x->sorted, x->n_keys, sizeof(*x->sorted), cmp_col);
    }
    return rc;
}

/* Appends one CSV field (quoted when it holds a comma, quote or line break), after a comma. */
static cs_rc field(cs_buf *b, const char *s)
{
    cs_rc rc = cs_buf_putc(b, ',');
    if (rc != CS_OK || !strpbrk(s, ",\"\r\n")) {
        return rc == CS_OK ? cs_buf_puts(b, s) : rc;
    }
    rc = cs_buf_putc(b, '"');
    for (; *s && rc == CS_OK; s++) {
        rc = *s == '"' ? cs_buf_puts(b, "\"\"") : cs_buf_putc(b, *s);
    }
    return rc == CS_OK ? cs_buf_putc(b, '"') : rc;
}

/* The value of column key (flattened) in axes as text: strings as is, null and absent empty. */
static cs_rc axis_field(cs_buf *b, const cJSON *axes, const char *key)
{
    const cJSON *v = axes ? cJSON_GetObjectItemCaseSensitive(axes, key) : NULL;
    const char *dot = strchr(key, '.');
    char *text = NULL;
    cs_rc rc;
    if (!v && dot && axes) {
        cs_buf top = {0};
        rc = cs_buf_append(&top, key, (size_t)(dot - key));
        v = rc == CS_OK ? cJSON_GetObjectItemCaseSensitive(
                                  cJSON_GetObjectItemCaseSensitive(axes, top.data), dot + 1)
                        : NULL;
        cs_buf_fini(&top);
    }
    if (!v || cJSON_IsNull(v) || cJSON_IsObject(v)) {
        return field(b, "");
    }
    if (cJSON_IsString(v)) {
        return field(b, v->valuestring);
    }
    text = cJSON_PrintUnformatted(v);
    rc = text ? field(b, text) : CS_ENOMEM;
    cJSON_free(text);
    return rc;
}

static cs_rc long_write(cs_buf *b, const long_ctx *x, const cs_agg_job *jobs, size_t n)
{
    cs_rc rc = cs_buf_puts(b, "job_id,baseline");
    for (size_t k = 0; k < x->n_keys && rc == CS_OK; k++) {
        rc = field(b, x->sorted[k]);
    }
    rc = rc == CS_OK ? cs_buf_puts(b, ",task,metric,value,n\n") : rc;
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        const cs_agg_job *j = &jobs[i];
        for (size_t m = 0; x->axes[i] && m < j->n_metrics && rc == CS_OK; m++) {
            rc = cs_buf_printf(b, "%lld,%d", (long long)j->job_id, j->baseline ? 1 : 0);
            for (size_t k = 0; k < x->n_keys && rc == CS_OK; k++) {
                bool cfg = strncmp(x->sorted[k], "config.", 7) == 0;
                rc = axis_field(b, cfg ? x->cfgs[i] : x->axes[i], x->sorted[k]);
            }
            rc = rc == CS_OK ? field(b, j->metrics[m].task) : rc;
            rc = rc == CS_OK ? field(b, j->metrics[m].metric) : rc;
            if (rc == CS_OK) {
                double v = j->metrics[m].value;
                rc = isfinite(v) ? cs_buf_printf(b, ",%.10g,%lld\n", v, (long long)j->metrics[m].n)
                                 : cs_buf_printf(b, ",,%lld\n", (long long)j->metrics[m].n);
            }
        }
    }
    return rc;
}

cs_rc cs_export_render_long(const cs_agg_job *jobs, size_t n, const char *const *configs,
                            const cs_export_opts *o, cs_buf *out, cs_err *err)
{
    long_ctx x = {0};
    cs_rc rc = CS_ENOMEM;
    x.axes = cs_calloc_array(n + 1, sizeof(*x.axes));
    x.cfgs = cs_calloc_array(n + 1, sizeof(*x.cfgs));
    x.keys = cJSON_CreateObject();
    if (x.axes && x.cfgs && x.keys) {
        rc = long_prepare(&x, jobs, n, configs, o, err);
    } else {
        cs_err_set(err, rc, 0, "export: out of memory");
    }
    if (rc == CS_OK) {
        rc = cs_buf_printf(out,
                           "# calsweep export: sweep %s (id %lld), engine %s, %lld jobs; "
                           "command: %s\n",
                           o->sweep ? o->sweep : "?", (long long)o->sweep_id,
                           o->engine_version ? o->engine_version : "?", (long long)x.jobs,
                           o->command ? o->command : "?");
        rc = rc == CS_OK ? long_write(out, &x, jobs, n) : rc;
        if (rc != CS_OK) {
            cs_err_set(err, rc, 0, "export: out of memory");
        }
    }
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(x.axes ? x.axes[i] : NULL);
        cJSON_Delete(x.cfgs ? x.cfgs[i] : NULL);
    }
    free(x.axes);
    free(x.cfgs);
    free(x.sorted);
    cJSON_Delete(x.keys);
    return rc;
}
