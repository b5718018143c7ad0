/* cs_agg.c - the results module's driver: reads the jobs, groups them into rows, computes the
 * per-row statistics, M4 and the link to each row's baseline (cs_agg.h; docs/results.md). The
 * reference rows and the significance tests are in cs_agg_cmp.c, the JSON in cs_agg_out.c.
 *
 * Grouping: a job's key is the canonical JSON of its value on each grouping axis (null where the
 * axis is absent or null), with the baseline jobs kept apart, so a row holds the jobs that differ
 * only in the seed (by default). The rows keep the order of their first job id.
 */
#include "cs_agg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_agg_int.h"
#include "cs_alloc.h"
#include "cs_canon.h"

const char *const ag_flag_names[AG_N_FLAGS] = {
        "missing_seeds", "failed_jobs", "lost_jobs",   "cancelled_jobs", "partial",     "no_items",
        "no_result",     "mixed_model", "no_baseline", "unpaired",       "no_reference"};

void cs_agg_opts_init(cs_agg_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->resamples = CS_AGG_RESAMPLES;
}

const cs_agg_metric *ag_metric(const cs_agg_job *j, const char *task, const char *metric)
{
    for (size_t i = 0; i < j->n_metrics; i++) {
        const cs_agg_metric *m = &j->metrics[i];
        if (strcmp(m->task, task) == 0 && strcmp(m->metric, metric) == 0) {
            return isfinite(m->value) ? m : NULL; /* a NaN (a null in the store) is missing */
        }
    }
    return NULL;
}

const cs_agg_outcome *ag_outcome(const cs_agg_job *j, const char *task, const char *metric)
{
    for (size_t i = 0; i < j->n_outcomes; i++) {
        const cs_agg_outcome *m = &j->outcomes[i];
        if (strcmp(m->task, task) == 0 && strcmp(m->metric, metric) == 0) {
            return m;
        }
    }
    return NULL;
}

const char *ag_value_name(const cJSON *v, char *buf, size_t n)
{
    if (cJSON_IsString(v)) {
        return v->valuestring;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
    if (cJSON_IsObject(v) && cJSON_IsString(name)) {
        return name->valuestring;
    }
    if (v == NULL || cJSON_IsNull(v)) {
        return "null";
    }
    cs_buf b = {0};
    bool ok = cs_canon_append(v, &b, NULL) == CS_OK;
    snprintf(buf, n, "%s", ok ? b.data : "?");
    cs_buf_fini(&b);
    return buf;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds s to the sorted set (*v, *n) unless present. */
static cs_rc set_add(char ***v, size_t *n, const char *s)
{
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp((*v)[mid], s);
        if (c == 0) {
            return CS_OK;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    char **nv = cs_realloc_array(*v, *n + 1, sizeof(**v));
    if (nv == NULL) {
        return CS_ENOMEM;
    }
    *v = nv;
    char *copy = cs_strdup(s);
    if (copy == NULL) {
        return CS_ENOMEM;
    }
    memmove(&nv[lo + 1], &nv[lo], (*n - lo) * sizeof(*nv));
    nv[lo] = copy;
    (*n)++;
    return CS_OK;
}

static size_t set_find(char *const *v, size_t n, const char *s)
{
    if (n == 0) {
        return AG_NONE;
    }
    char *const *hit = bsearch(&s, v, n, sizeof(*v), str_cmp);
    return hit == NULL ? AG_NONE : (size_t)(hit - v);
}

/* "a, b, c" of a set, for messages (truncated by cs_err's buffer). */
static const char *join(char *const *v, size_t n, cs_buf *b)
{
    cs_buf_fini(b);
    for (size_t i = 0; i < n; i++) {
        cs_buf_printf(b, "%s%s", i ? ", " : "", v[i]);
    }
    return b->data != NULL ? b->data : "(none)";
}

static bool is_metric_name(const char *m)
{
    size_t len = strlen(m);
    return strcmp(m, "n") != 0 && !(len > 7 && strcmp(m + len - 7, "_stderr") == 0);
}

/* The tables of read_jobs: member pointers already parsed (open addressing by address) and the
 * value classes (by canonical text, borrowed from a->mem). */
typedef struct mread {
    const char **pkey;
    uint32_t *pval;
    size_t pcap, pn;
    const char **ckey;
    uint32_t *cval;
    size_t ccap, cn;
    size_t cap_mem, cap_jm, n_jm;
    cs_buf b;
} mread;

static size_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    return (size_t)(x ^ (x >> 33));
}

static uint64_t fnv(const char *s, uint64_t h)
{
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    }
    return h;
}

/* Doubles an open-addressing table of keys and values (hash: by address, else the text). */
static bool table_grow(const char ***key, uint32_t **val, size_t *cap, bool by_addr)
{
    size_t nc = *cap ? 2 * *cap : 64;
    const char **nk = cs_calloc_array(nc, sizeof(*nk));
    uint32_t *nv = cs_alloc_array(nc, sizeof(*nv));
    if (nk == NULL || nv == NULL) {
        free(nk);
        free(nv);
        return false;
    }
    for (size_t i = 0; i < *cap; i++) {
        if ((*key)[i] != NULL) {
            size_t h =
                    by_addr ? ptr_hash((*key)[i]) : (size_t)fnv((*key)[i], 0xcbf29ce484222325ull);
            size_t k = h & (nc - 1);
            while (nk[k] != NULL) {
                k = (k + 1) & (nc - 1);
            }
            nk[k] = (*key)[i];
            nv[k] = (*val)[i];
        }
    }
    free(*key);
    free(*val);
    *key = nk;
    *val = nv;
    *cap = nc;
    return true;
}

/* Appends a member (value owned from now on, its name in value->string) as *id; its canonical
 * text stays NULL when it has none (reported where it is needed). */
static cs_rc mem_add(ag *a, mread *r, cJSON *value, uint32_t *id)
{
    if (a->n_mem == r->cap_mem) {
        size_t nc = r->cap_mem ? 2 * r->cap_mem : 64;
        ag_member *nm = nc < UINT32_MAX ? cs_realloc_array(a->mem, nc, sizeof(*nm)) : NULL;
        if (nm == NULL) {
            cJSON_Delete(value);
            return CS_ENOMEM;
        }
        a->mem = nm;
        r->cap_mem = nc;
    }
    ag_member *m = &a->mem[a->n_mem];
    memset(m, 0, sizeof(*m));
    m->value = value;
    *id = (uint32_t)a->n_mem++;
    r->b.len = 0;
    if (cs_canon_append(value, &r->b, NULL) == CS_OK) {
        m->vtext = cs_strdup(r->b.data);
        if (m->vtext == NULL) {
            return CS_ENOMEM;
        }
    }
    return set_add(&a->axes, &a->n_axes, value->string);
}

static cs_rc jm_push(ag *a, mread *r, uint32_t id)
{
    if (r->n_jm == r->cap_jm) {
        size_t nc = r->cap_jm ? 2 * r->cap_jm : 1024;
        uint32_t *nj = cs_realloc_array(a->jm, nc, sizeof(*nj));
        if (nj == NULL) {
            return CS_ENOMEM;
        }
        a->jm = nj;
        r->cap_jm = nc;
    }
    a->jm[r->n_jm++] = id;
    return CS_OK;
}

/* The member of a job's member text: parsed the first time its pointer is seen. */
static cs_rc member_of(ag *a, mread *r, const cs_agg_job *job, const char *text, uint32_t *id)
{
    if (2 * (r->pn + 1) > r->pcap && !table_grow(&r->pkey, &r->pval, &r->pcap, true)) {
        return cs_err_set(a->err, CS_ENOMEM, 0, "results: axes members");
    }
    size_t k = ptr_hash(text) & (r->pcap - 1);
    while (r->pkey[k] != NULL && r->pkey[k] != text) {
        k = (k + 1) & (r->pcap - 1);
    }
    if (r->pkey[k] != NULL) {
        *id = r->pval[k];
        return CS_OK;
    }
    r->b.len = 0;
    cs_rc rc = cs_buf_printf(&r->b, "{%s}", text);
    cJSON *obj = rc == CS_OK ? cJSON_Parse(r->b.data) : NULL;
    cJSON *c = cJSON_IsObject(obj) ? obj->child : NULL;
    if (rc != CS_OK || c == NULL || c->next != NULL) {
        cJSON_Delete(obj);
        return rc != CS_OK ? cs_err_set(a->err, CS_ENOMEM, 0, "results: axes members")
                           : cs_err_set(a->err, CS_EINVAL, 0,
                                        "results: job %lld: axes member %.80s is not a "
                                        "\"name\":value member",
                                        (long long)job->job_id, text);
    }
    cJSON_DetachItemViaPointer(obj, c);
    cJSON_Delete(obj);
    if (mem_add(a, r, c, id) != CS_OK) {
        return cs_err_set(a->err, CS_ENOMEM, 0, "results: axes members");
    }
    r->pkey[k] = text;
    r->pval[k] = *id;
    r->pn++;
    return CS_OK;
}

/* Job j's members into a->jm: its member texts, else the members of its axes text. */
static cs_rc job_members(ag *a, mread *r, size_t j)
{
    const cs_agg_job *job = &a->jobs[j];
    uint32_t id = 0;
    a->jm_off[j] = r->n_jm;
    if (job->members != NULL) {
        for (size_t i = 0; i < job->n_members; i++) {
            cs_rc rc = member_of(a, r, job, job->members[i], &id);
            if (rc != CS_OK) {
                return rc;
            }
            if (jm_push(a, r, id) != CS_OK) {
                return cs_err_set(a->err, CS_ENOMEM, 0, "results: %zu jobs", a->n_jobs);
            }
        }
        return CS_OK;
    }
    cJSON *ax = cJSON_Parse(job->axes != NULL ? job->axes : "{}");
    if (!cJSON_IsObject(ax)) {
        cJSON_Delete(ax);
        return cs_err_set(a->err, CS_EINVAL, 0, "results: job %lld: axes are not a JSON object",
                          (long long)job->job_id);
    }
    cs_rc rc = CS_OK;
    while (rc == CS_OK && ax->child != NULL) {
        cJSON *c = cJSON_DetachItemViaPointer(ax, ax->child);
        rc = mem_add(a, r, c, &id);
        rc = rc == CS_OK ? jm_push(a, r, id) : rc;
    }
    cJSON_Delete(ax);
    return rc == CS_OK ? CS_OK : cs_err_set(a->err, CS_ENOMEM, 0, "results: axis names");
}

/* Each member's axis index and value class: equal canonical values share one. */
static cs_rc classify(ag *a, mread *r)
{
    uint32_t next = AG_NULL_CLS + 1;
    for (size_t i = 0; i < a->n_mem; i++) {
        ag_member *m = &a->mem[i];
        m->axis = set_find(a->axes, a->n_axes, m->value->string);
        if (cJSON_IsNull(m->value)) {
            m->cls = AG_NULL_CLS;
            continue;
        }
        if (m->vtext == NULL) {
            m->cls = next++;
            continue;
        }
        if (2 * (r->cn + 1) > r->ccap && !table_grow(&r->ckey, &r->cval, &r->ccap, false)) {
            return cs_err_set(a->err, CS_ENOMEM, 0, "results: axes members");
        }
        size_t k = (size_t)fnv(m->vtext, 0xcbf29ce484222325ull) & (r->ccap - 1);
        while (r->ckey[k] != NULL && strcmp(r->ckey[k], m->vtext) != 0) {
            k = (k + 1) & (r->ccap - 1);
        }
        if (r->ckey[k] == NULL) {
            r->ckey[k] = m->vtext;
            r->cval[k] = next++;
            r->cn++;
        }
        m->cls = r->cval[k];
    }
    return CS_OK;
}

/* The canonical text of a member's value; for one that has none, the error (as cs_canon says). */
static cs_rc member_text(const ag *a, const ag_member *m, const char **out)
{
    *out = m->vtext;
    if (m->vtext != NULL) {
        return CS_OK;
    }
    cs_buf b = {0};
    cs_rc rc = cs_canon_append(m->value, &b, a->err);
    cs_buf_fini(&b);
    return rc != CS_OK ? rc : cs_err_set(a->err, CS_ENOMEM, 0, "results: axes members");
}

/* Reads every job's axes members (each distinct member text parsed once), collects the axis
 * names and each job's seed. */
static cs_rc read_jobs(ag *a)
{
    mread r = {0};
    a->jm_off = cs_alloc_array(a->n_jobs + 1, sizeof(*a->jm_off));
    a->seed = cs_calloc_array(a->n_jobs, sizeof(*a->seed));
    if (a->jm_off == NULL || a->seed == NULL) {
        return cs_err_set(a->err, CS_ENOMEM, 0, "results: %zu jobs", a->n_jobs);
    }
    cs_rc rc = CS_OK;
    for (size_t j = 0; j < a->n_jobs && rc == CS_OK; j++) {
        rc = job_members(a, &r, j);
    }
    a->jm_off[a->n_jobs] = r.n_jm;
    rc = rc == CS_OK ? classify(a, &r) : rc;
    size_t seed = set_find(a->axes, a->n_axes, "seed");
    for (size_t j = 0; j < a->n_jobs && rc == CS_OK && seed != AG_NONE; j++) {
        for (size_t i = a->jm_off[j]; i < a->jm_off[j + 1]; i++) {
            const ag_member *m = &a->mem[a->jm[i]];
            if (m->axis == seed) {
                rc = cJSON_IsNull(m->value) ? CS_OK : member_text(a, m, &a->seed[j]);
                break;
            }
        }
    }
    free(r.pkey);
    free(r.pval);
    free(r.ckey);
    free(r.cval);
    cs_buf_fini(&r.b);
    return rc;
}

static cs_rc task_add(ag *a, const char *name, size_t *out)
{
    for (size_t t = 0; t < a->n_tasks; t++) {
        if (strcmp(a->tasks[t].name, name) == 0) {
            *out = t;
            return CS_OK;
        }
    }
    ag_task *nt = cs_realloc_array(a->tasks, a->n_tasks + 1, sizeof(*nt));
    if (nt == NULL) {
        return CS_ENOMEM;
    }
    a->tasks = nt;
    memset(&nt[a->n_tasks], 0, sizeof(*nt));
    nt[a->n_tasks].name = cs_strdup(name);
    if (nt[a->n_tasks].name == NULL) {
        return CS_ENOMEM;
    }
    nt[a->n_tasks].ppl = strncmp(name, "ppl:", 4) == 0;
    *out = a->n_tasks++;
    return CS_OK;
}

static int task_cmp(const void *x, const void *y)
{
    return strcmp(((const ag_task *)x)->name, ((const ag_task *)y)->name);
}

static void task_free(ag_task *t)
{
    free(t->name);
    cs_free_each((void *const *)t->metrics, t->n_metrics);
    free(t->metrics);
}

/* Every task of the results (and of the headline table), sorted, then narrowed to opts->tasks. */
static cs_rc collect_tasks(ag *a)
{
    size_t t = 0;
    for (size_t j = 0; j < a->n_jobs; j++) {
        for (size_t i = 0; i < a->jobs[j].n_metrics; i++) {
            const cs_agg_metric *m = &a->jobs[j].metrics[i];
            if (task_add(a, m->task, &t) != CS_OK ||
                (is_metric_name(m->metric) &&
                 set_add(&a->tasks[t].metrics, &a->tasks[t].n_metrics, m->metric) != CS_OK)) {
                return cs_err_set(a->err, CS_ENOMEM, 0, "results: task names");
            }
        }
    }
    for (size_t i = 0; i < a->o.n_headline; i++) {
        if (task_add(a, a->o.headline_task[i], &t) != CS_OK) {
            return cs_err_set(a->err, CS_ENOMEM, 0, "results: task names");
        }
    }
    if (a->n_tasks > 1) {
        qsort(a->tasks, a->n_tasks, sizeof(*a->tasks), task_cmp);
    }
    if (a->o.n_tasks == 0) {
        return CS_OK;
    }
    bool *keep = cs_calloc_array(a->n_tasks, sizeof(*keep));
    if (keep == NULL) {
        return cs_err_set(a->err, CS_ENOMEM, 0, "results: task names");
    }
    for (size_t i = 0; i < a->o.n_tasks; i++) {
        size_t hit = AG_NONE;
        for (size_t k = 0; k < a->n_tasks; k++) {
            hit = strcmp(a->tasks[k].name, a->o.tasks[i]) == 0 ? k : hit;
        }
        if (hit == AG_NONE) {
            cs_buf b = {0};
            for (size_t k = 0; k < a->n_tasks; k++) {
                cs_buf_printf(&b, "%s%s", k ? ", " : "", a->tasks[k].name);
            }
            cs_err_set(a->err, CS_EINVAL, 0, "--task %s: no such task; tasks: %s", a->o.tasks[i],
                       b.data != NULL ? b.data : "(none)");
            cs_buf_fini(&b);
            free(keep);
            return CS_EINVAL;
        }
        keep[hit] = true;
    }
    size_t w = 0;
    for (size_t k = 0; k < a->n_tasks; k++) {
        if (keep[k]) {
            a->tasks[w++] = a->tasks[k];
        } else {
            task_free(&a->tasks[k]);
        }
    }
    a->n_tasks = w;
    free(keep);
    return CS_OK;
}

const char *cs_agg_headline(const cs_agg_opts *o, const char *task, bool has_acc,
                            bool has_exact_match)
{
    if (o->metric != NULL) {
        return o->metric;
    }
    const char *h = NULL;
    for (size_t i = 0; i < o->n_headline; i++) {
        if (strcmp(o->headline_task[i], task) == 0) {
            h = o->headline_metric[i]; /* the last entry for task wins */
        }
    }
    if (h != NULL) {
        return h;
    }
    if (strncmp(task, "ppl:", 4) == 0) {
        return "ppl";
    }
    return !has_acc && has_exact_match ? "exact_match" : "acc";
}

/* The headline metric of each task: --metric, the sweep's choice, else acc (exact_match for a
 * task that has no acc, ppl for perplexity). --metric must be a metric of some task. */
static cs_rc choose_headlines(ag *a)
{
    bool known = a->o.metric == NULL || a->n_tasks == 0;
    for (size_t t = 0; t < a->n_tasks; t++) {
        ag_task *k = &a->tasks[t];
        if (a->o.metric != NULL) {
            k->headline = a->o.metric;
            known = known || set_find(k->metrics, k->n_metrics, a->o.metric) != AG_NONE;
            continue;
        }
        k->headline = cs_agg_headline(&a->o, k->name,
                                      set_find(k->metrics, k->n_metrics, "acc") != AG_NONE,
                                      set_find(k->metrics, k->n_metrics, "exact_match") != AG_NONE);
    }
    if (!known) {
        char **all = NULL;
        size_t n = 0;
        for (size_t t = 0; t < a->n_tasks; t++) {
            for (size_t i = 0; i < a->tasks[t].n_metrics; i++) {
                set_add(&all, &n, a->tasks[t].metrics[i]);
            }
        }
        cs_buf b = {0};
        cs_err_set(a->err, CS_EINVAL, 0, "--metric %s: no task has it; metrics: %s", a->o.metric,
                   join(all, n, &b));
        cs_buf_fini(&b);
        cs_free_each((void *const *)all, n);
        free(all);
        return CS_EINVAL;
    }
    for (size_t t = 0; t < a->n_tasks; t++) {
        a->tasks[t].in_avg = !a->tasks[t].ppl;
        a->n_avg += a->tasks[t].in_avg;
    }
    return CS_OK;
}

/* The grouping axes (--by, else every axis but seed) and the reference axis. */
static cs_rc choose_axes(ag *a)
{
    cs_buf b = {0};
    size_t cap = a->o.n_by > 0 ? a->o.n_by : a->n_axes;
    a->gax = cs_alloc_array(cap, sizeof(*a->gax));
    if (a->gax == NULL) {
        return cs_err_set(a->err, CS_ENOMEM, 0, "results: axes");
    }
    for (size_t i = 0; i < a->o.n_by; i++) {
        size_t k = set_find(a->axes, a->n_axes, a->o.by[i]);
        if (k == AG_NONE) {
            cs_err_set(a->err, CS_EINVAL, 0, "--by %s: no such axis; axes: %s", a->o.by[i],
                       join(a->axes, a->n_axes, &b));
            cs_buf_fini(&b);
            return CS_EINVAL;
        }
        a->gax[a->n_gax++] = k;
    }
    for (size_t k = 0; a->o.n_by == 0 && k < a->n_axes; k++) {
        if (strcmp(a->axes[k], "seed") != 0) {
            a->gax[a->n_gax++] = k;
        }
    }
    a->ref_axis = AG_NONE;
    if (a->o.ref_axis == NULL) {
        return CS_OK;
    }
    size_t k = set_find(a->axes, a->n_axes, a->o.ref_axis);
    if (k == AG_NONE) {
        cs_err_set(a->err, CS_EINVAL, 0, "--reference %s=%s: no such axis; axes: %s", a->o.ref_axis,
                   a->o.ref_value != NULL ? a->o.ref_value : "", join(a->axes, a->n_axes, &b));
        cs_buf_fini(&b);
        return CS_EINVAL;
    }
    for (size_t i = 0; i < a->n_gax; i++) {
        a->ref_axis = a->gax[i] == k ? k : a->ref_axis;
    }
    if (a->ref_axis == AG_NONE) {
        return cs_err_set(a->err, CS_EINVAL, 0,
                          "--reference %s=%s: the rows are not grouped by %s (add it to --by)",
                          a->o.ref_axis, a->o.ref_value != NULL ? a->o.ref_value : "",
                          a->o.ref_axis);
    }
    if (a->o.ref_value == NULL) {
        return cs_err_set(a->err, CS_EINVAL, 0, "--reference %s: expected AXIS=VALUE",
                          a->o.ref_axis);
    }
    return CS_OK;
}

/* The first member of job j on each axis into pos[axis] (pos is all AG_NONE on entry; job_clear
 * restores it). */
static void job_pos(const ag *a, size_t j, size_t *pos)
{
    for (size_t i = a->jm_off[j]; i < a->jm_off[j + 1]; i++) {
        size_t x = a->mem[a->jm[i]].axis;
        if (pos[x] == AG_NONE) {
            pos[x] = a->jm[i];
        }
    }
}

static void job_clear(const ag *a, size_t j, size_t *pos)
{
    for (size_t i = a->jm_off[j]; i < a->jm_off[j + 1]; i++) {
        pos[a->mem[a->jm[i]].axis] = AG_NONE;
    }
}

/* The grouping key of job j into key[0..n_gax]: baseline or not, then the value class of the
 * job's value on each grouping axis (null where the axis is absent or null). pos as job_pos. */
static cs_rc job_key(const ag *a, size_t j, size_t *pos, uint32_t *key)
{
    cs_rc rc = CS_OK;
    const char *text = NULL;
    job_pos(a, j, pos);
    key[0] = a->jobs[j].baseline ? 1u : 0u;
    for (size_t i = 0; i < a->n_gax && rc == CS_OK; i++) {
        size_t m = pos[a->gax[i]];
        key[i + 1] = m == AG_NONE ? AG_NULL_CLS : a->mem[m].cls;
        if (m != AG_NONE) {
            rc = member_text(a, &a->mem[m], &text);
        }
    }
    job_clear(a, j, pos);
    return rc;
}

/* A new row for job j, its first job: the key text (kept for the bootstrap's seeds) and the axes
 * object, from the job's members. */
static cs_rc row_new(ag *a, size_t j, size_t *pos, size_t *out)
{
    if ((a->n_rows & (a->n_rows - 1)) == 0) { /* capacity: the next power of two */
        ag_row *nr = cs_realloc_array(a->rows, a->n_rows ? 2 * a->n_rows : 1, sizeof(*nr));
        if (nr == NULL) {
            return CS_ENOMEM;
        }
        a->rows = nr;
    }
    ag_row *r = &a->rows[a->n_rows];
    memset(r, 0, sizeof(*r));
    *out = a->n_rows++;
    cs_buf b = {0};
    cs_rc rc = cs_buf_puts(&b, a->jobs[j].baseline ? "B" : "R");
    job_pos(a, j, pos);
    for (size_t i = 0; i < a->n_gax && rc == CS_OK; i++) {
        size_t m = pos[a->gax[i]];
        rc = cs_buf_putc(&b, '\x1f');
        rc = rc == CS_OK ? cs_buf_puts(&b, m == AG_NONE ? "null" : a->mem[m].vtext) : rc;
    }
    job_clear(a, j, pos);
    r->key = rc == CS_OK ? cs_buf_take(&b) : NULL;
    cs_buf_fini(&b);
    r->axes = cJSON_CreateObject();
    for (size_t i = a->jm_off[j]; i < a->jm_off[j + 1] && r->axes != NULL; i++) {
        cJSON *v = cJSON_Duplicate(a->mem[a->jm[i]].value, true); /* with its name */
        if (v == NULL) {
            cJSON_Delete(r->axes);
            r->axes = NULL;
        } else {
            cJSON_AddItemToArray(r->axes, v);
        }
    }
    r->head = cs_alloc_array(a->n_tasks + 1, sizeof(*r->head));
    r->baseline = a->jobs[j].baseline;
    r->base = r->ref = AG_NONE;
    r->model = a->jobs[j].model;
    r->eval = a->jobs[j].eval;
    return r->key == NULL || r->axes == NULL || r->head == NULL ? CS_ENOMEM : CS_OK;
}

static cs_rc row_push(ag_row *r, size_t j)
{
    if (r->n_jobs == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 4;
        size_t *nj = cs_realloc_array(r->jobs, cap, sizeof(*nj));
        if (nj == NULL) {
            return CS_ENOMEM;
        }
        r->jobs = nj;
        r->cap = cap;
    }
    r->jobs[r->n_jobs++] = j;
    return CS_OK;
}

typedef struct id_idx {
    int64_t id;
    size_t i;
} id_idx;

static int id_cmp(const void *x, const void *y)
{
    const id_idx *a = x, *b = y;
    return a->id < b->id ? -1 : (a->id > b->id);
}

static uint64_t key_hash(const uint32_t *key, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ key[i]) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

/* Groups the jobs, in job id order, into rows through an open-addressing table of the keys
 * (value classes, keys[row * nk]). */
static cs_rc group(ag *a)
{
    size_t cap = 16, nk = a->n_gax + 1;
    while (cap < 2 * a->n_jobs) {
        cap *= 2;
    }
    id_idx *order = cs_alloc_array(a->n_jobs, sizeof(*order));
    size_t *ht = cs_alloc_array(cap, sizeof(*ht));
    size_t *pos = cs_alloc_array(a->n_axes + 1, sizeof(*pos));
    uint32_t *keys = cs_alloc_array((a->n_jobs + 1) * nk, sizeof(*keys));
    cs_rc rc = order == NULL || ht == NULL || pos == NULL || keys == NULL ? CS_ENOMEM : CS_OK;
    for (size_t i = 0; rc == CS_OK && i < cap; i++) {
        ht[i] = AG_NONE;
    }
    for (size_t i = 0; rc == CS_OK && i <= a->n_axes; i++) {
        pos[i] = AG_NONE;
    }
    bool sorted = true; /* the store's jobs come by id */
    for (size_t j = 0; rc == CS_OK && j < a->n_jobs; j++) {
        order[j] = (id_idx){a->jobs[j].job_id, j};
        sorted = sorted && (j == 0 || order[j - 1].id < order[j].id);
    }
    if (rc == CS_OK && !sorted) {
        qsort(order, a->n_jobs, sizeof(*order), id_cmp);
    }
    for (size_t k = 0; rc == CS_OK && k < a->n_jobs; k++) {
        size_t j = order[k].i;
        uint32_t *key = &keys[a->n_rows * nk]; /* the next row's place */
        rc = job_key(a, j, pos, key);
        if (rc != CS_OK) {
            break;
        }
        size_t slot = (size_t)(key_hash(key, nk) & (cap - 1));
        while (ht[slot] != AG_NONE && memcmp(&keys[ht[slot] * nk], key, nk * sizeof(*key)) != 0) {
            slot = (slot + 1) & (cap - 1);
        }
        if (ht[slot] == AG_NONE) {
            rc = row_new(a, j, pos, &ht[slot]);
        }
        if (rc == CS_OK) {
            rc = row_push(&a->rows[ht[slot]], j);
        }
    }
    free(order);
    free(ht);
    free(pos);
    free(keys);
    if (rc == CS_ENOMEM) {
        return cs_err_set(a->err, CS_ENOMEM, 0, "results: grouping %zu jobs", a->n_jobs);
    }
    return rc;
}

static bool seed_eq(const char *x, const char *y)
{
    return (x == NULL && y == NULL) || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

static int seed_cmp(const void *x, const void *y)
{
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    if (a == NULL || b == NULL) {
        return (a != NULL) - (b != NULL);
    }
    return strcmp(a, b);
}

/* Distinct seeds among the row's jobs (ok: only done jobs with a result; a null seed counts as
 * one). scratch holds r->n_jobs pointers. */
static size_t count_seeds(const ag *a, const ag_row *r, bool ok, const char **scratch)
{
    size_t m = 0;
    for (size_t i = 0; i < r->n_jobs; i++) {
        const cs_agg_job *j = &a->jobs[r->jobs[i]];
        if (!ok || (ag_is_done(j) && j->result_version >= 1)) {
            scratch[m++] = a->seed[r->jobs[i]];
        }
    }
    qsort(scratch, m, sizeof(*scratch), seed_cmp);
    size_t n = 0;
    for (size_t i = 0; i < m; i++) {
        n += i == 0 || !seed_eq(scratch[i - 1], scratch[i]);
    }
    return n;
}

/* States, seeds and flags of a row. */
static cs_rc row_states(ag *a, ag_row *r)
{
    const char **scratch = cs_alloc_array(r->n_jobs, sizeof(*scratch));
    if (scratch == NULL) {
        return cs_err_set(a->err, CS_ENOMEM, 0, "results: a row of %zu jobs", r->n_jobs);
    }
    for (size_t i = 0; i < r->n_jobs; i++) {
        const cs_agg_job *j = &a->jobs[r->jobs[i]];
        const char *st = j->state != NULL ? j->state : "";
        r->seeded = r->seeded || a->seed[r->jobs[i]] != NULL;
        if (strcmp(st, "done") == 0) {
            r->n_done++;
            r->n_noresult += j->result_version < 1;
            r->n_v1 += j->result_version == 1;
        } else if (strcmp(st, "failed") == 0) {
            r->n_failed++;
        } else if (strcmp(st, "lost") == 0) {
            r->n_lost++;
        } else if (strcmp(st, "cancelled") == 0) {
            r->n_cancelled++;
        } else {
            r->n_unfinished++;
        }
        bool same = j->model != NULL && r->model != NULL && strcmp(j->model, r->model) == 0 &&
                    j->eval != NULL && r->eval != NULL && strcmp(j->eval, r->eval) == 0;
        if (!same) {
            r->flags |= AG_F_MIXED;
        }
    }
    if (r->flags & AG_F_MIXED) {
        r->model = r->eval = NULL;
    }
    r->n_seeds = count_seeds(a, r, false, scratch);
    r->n_seeds_ok = count_seeds(a, r, true, scratch);
    free(scratch);
    r->flags |= (r->n_failed ? AG_F_FAILED : 0u) | (r->n_lost ? AG_F_LOST : 0u) |
                (r->n_cancelled ? AG_F_CANCELLED : 0u) | (r->n_unfinished ? AG_F_PARTIAL : 0u) |
                (r->n_v1 ? AG_F_NO_ITEMS : 0u) | (r->n_noresult ? AG_F_NO_RESULT : 0u);
    return CS_OK;
}

/* Mean of the row's values of task.metric over its done jobs; n values found. */
static double row_mean(const ag *a, const ag_row *r, const char *task, const char *metric,
                       size_t *n)
{
    double s = 0.0;
    *n = 0;
    for (size_t i = 0; i < r->n_jobs; i++) {
        const cs_agg_job *j = &a->jobs[r->jobs[i]];
        const cs_agg_metric *m = ag_is_done(j) ? ag_metric(j, task, metric) : NULL;
        if (m != NULL) {
            s += m->value;
            (*n)++;
        }
    }
    return *n ? s / (double)*n : NAN;
}

cs_rc ag_value_text(const cJSON *val, cs_buf *b)
{
    char nb[256];
    cs_buf v = {0};
    cs_rc rc = cs_buf_puts(b, ag_value_name(val, nb, sizeof(nb)));
    if (!cJSON_IsObject(val) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(val, "name"))) {
        return rc;
    }
    size_t k = 0;
    for (const cJSON *m = val->child; m != NULL && rc == CS_OK; m = m->next) {
        if (strcmp(m->string, "name") == 0) {
            continue;
        }
        v.len = 0;
        rc = cs_canon_append(m, &v, NULL);
        if (rc == CS_OK) {
            rc = cs_buf_printf(b, "%s%s=%s", k++ ? "," : "(", m->string, v.data);
        }
    }
    if (rc == CS_OK && k > 0) {
        rc = cs_buf_putc(b, ')');
    }
    cs_buf_fini(&v);
    return rc;
}

/* "algorithm=gptq(bits=4) selector=random": the row's non-null grouping values; an object value is
 * its name and its other members. */
static cs_rc row_label(const ag *a, ag_row *r)
{
    cs_buf b = {0};
    cs_rc rc = r->baseline ? cs_buf_puts(&b, "baseline") : CS_OK;
    for (size_t i = 0; i < a->n_gax && rc == CS_OK; i++) {
        const char *ax = a->axes[a->gax[i]];
        const cJSON *val = cJSON_GetObjectItemCaseSensitive(r->axes, ax);
        if (val == NULL || cJSON_IsNull(val)) {
            continue;
        }
        rc = cs_buf_printf(&b, "%s%s=", b.len ? " " : "", ax);
        if (rc == CS_OK) {
            rc = ag_value_text(val, &b);
        }
    }
    r->label = rc == CS_OK ? cs_buf_take(&b) : NULL;
    if (r->label == NULL && rc == CS_OK) {
        r->label = cs_strdup("");
    }
    cs_buf_fini(&b);
    return r->label == NULL ? cs_err_set(a->err, CS_ENOMEM, 0, "results: row labels") : CS_OK;
}

/* Headline means, M4, flags that need every row (missing seeds), and the baseline of each row. */
static cs_rc row_stats(ag *a)
{
    size_t *bases = cs_alloc_array(a->n_rows, sizeof(*bases)), n_bases = 0;
    if (bases == NULL) {
        return cs_err_set(a->err, CS_ENOMEM, 0, "results: %zu rows", a->n_rows);
    }
    for (size_t r = 0; r < a->n_rows; r++) {
        if (row_states(a, &a->rows[r]) != CS_OK || row_label(a, &a->rows[r]) != CS_OK) {
            free(bases);
            return CS_ENOMEM;
        }
        if (a->rows[r].baseline) {
            bases[n_bases++] = r;
        }
        if (a->rows[r].seeded && a->rows[r].n_seeds > a->max_seeds) {
            a->max_seeds = a->rows[r].n_seeds;
        }
    }
    for (size_t r = 0; r < a->n_rows; r++) {
        ag_row *row = &a->rows[r];
        if (row->seeded && row->n_seeds_ok < a->max_seeds) {
            row->flags |= AG_F_MISSING_SEEDS;
        }
        double sum = 0.0;
        size_t have = 0, n = 0;
        for (size_t t = 0; t < a->n_tasks; t++) {
            row->head[t] = row_mean(a, row, a->tasks[t].name, a->tasks[t].headline, &n);
            if (a->tasks[t].in_avg && n > 0) {
                sum += row->head[t];
                have++;
            }
        }
        row->avg = have == a->n_avg && have > 0 ? sum / (double)have : NAN;
        for (size_t k = 0; !row->baseline && k < n_bases; k++) {
            const ag_row *b = &a->rows[bases[k]];
            if (row->model != NULL && b->model != NULL && strcmp(b->model, row->model) == 0 &&
                strcmp(b->eval, row->eval) == 0) {
                row->base = bases[k];
            }
        }
        if (!row->baseline && row->base == AG_NONE) {
            row->flags |= AG_F_NO_BASELINE;
        }
    }
    free(bases);
    return CS_OK;
}

static void ag_fini(ag *a)
{
    for (size_t i = 0; i < a->n_mem; i++) {
        cJSON_Delete(a->mem[i].value);
        free(a->mem[i].vtext);
    }
    free(a->mem);
    free(a->jm);
    free(a->jm_off);
    free(a->seed);
    cs_free_each((void *const *)a->axes, a->n_axes);
    free(a->axes);
    free(a->gax);
    for (size_t t = 0; t < a->n_tasks; t++) {
        task_free(&a->tasks[t]);
    }
    free(a->tasks);
    for (size_t r = 0; r < a->n_rows; r++) {
        free(a->rows[r].key);
        cJSON_Delete(a->rows[r].axes);
        free(a->rows[r].label);
        free(a->rows[r].no_ref_cand);
        free(a->rows[r].jobs);
        free(a->rows[r].head);
    }
    free(a->rows);
    ag_cmps_fini(a);
}

cs_rc cs_agg_run(const cs_agg_job *jobs, size_t n, const cs_agg_opts *o, cJSON **out, cs_err *err)
{
    ag a = {.jobs = jobs, .n_jobs = n, .err = err};
    *out = NULL;
    if (o != NULL) {
        a.o = *o;
    } else {
        cs_agg_opts_init(&a.o);
    }
    cs_rc rc = read_jobs(&a);
    if (rc == CS_OK) {
        rc = collect_tasks(&a);
    }
    if (rc == CS_OK) {
        rc = choose_headlines(&a);
    }
    if (rc == CS_OK) {
        rc = choose_axes(&a);
    }
    if (rc == CS_OK) {
        rc = group(&a);
    }
    if (rc == CS_OK) {
        rc = row_stats(&a);
    }
    if (rc == CS_OK) {
        rc = ag_find_refs(&a);
    }
    if (rc == CS_OK) {
        rc = ag_compare(&a);
    }
    if (rc == CS_OK) {
        rc = ag_item_cis(&a);
    }
    if (rc == CS_OK) {
        rc = ag_output(&a, out);
    }
    ag_fini(&a);
    return rc;
}
