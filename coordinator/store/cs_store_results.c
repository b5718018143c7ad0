/* cs_store_results.c - what the aggregator (coordinator/results/cs_agg.h) reads of one sweep:
 * its jobs, their metrics and per-item outcomes (table item_outcome, schema version 4) and the
 * headline metrics its eval suites name. Three streaming queries ordered by job id; task, metric
 * and sample names are interned (a sweep of 100,000 jobs has few distinct ones). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cs_agg.h"
#include "cs_alloc.h"
#include "cs_limits.h"
#include "cs_result.h"
#include "cs_store.h"
#include "cs_store_int.h"

/* One fragment (an axes member) of the sweep's jobs. */
typedef struct agg_frag {
    int64_t id;
    const char *text;         /* interned: '"name":value' */
    const char *model, *eval; /* interned: the value of a "model" or "eval" member, else NULL */
} agg_frag;

/* The last distinct values of one column, interned (the rows of a sweep repeat a few task,
 * metric and sample names: a hit costs a strcmp or two, no hash). */
typedef struct agg_recent {
    const char *v[8];
    unsigned n, next;
} agg_recent;

enum { R_MT, R_MM, R_OT, R_OM, R_OS, R_N }; /* metric task, metric name; outcome task, ... */

struct cs_store_agg_mem {
    char **slot; /* the interned strings: an open-addressing set */
    size_t cap, n_slot;
    agg_recent recent[R_N];
    uint8_t **chunk; /* the outcomes' bits and values, in chunks of at least 1 MiB */
    size_t n_chunk, chunk_used, chunk_cap;
    cs_agg_metric *metrics;
    size_t n_metrics, cap_metrics;
    cs_agg_outcome *outcomes;
    size_t n_outcomes, cap_outcomes;
    size_t *metric_job, *outcome_job; /* index into jobs of each metric and outcome */
    char **axes;                      /* per job, owned: axes_raw, else NULL */
    size_t *moff;                     /* per job: its first member in members (SIZE_MAX: none) */
    const char **members;             /* the jobs' axes members (fragment texts, interned) */
    size_t n_members, cap_members;
    agg_frag *frag; /* the fragments read, by id through fslot (open addressing) */
    size_t n_frag, *fslot, fcap;
};

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

/* The interned copy of text (NULL when out of memory). */
static const char *intern(struct cs_store_agg_mem *m, const char *text)
{
    if (m->n_slot * 2 >= m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        char **slot = cs_calloc_array(cap, sizeof(*slot));
        if (!slot) {
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (m->slot[i]) {
                size_t k = str_hash(m->slot[i]) & (cap - 1);
                while (slot[k]) {
                    k = (k + 1) & (cap - 1);
                }
                slot[k] = m->slot[i];
            }
        }
        free(m->slot);
        m->slot = slot;
        m->cap = cap;
    }
    size_t k = str_hash(text) & (m->cap - 1);
    while (m->slot[k]) {
        if (strcmp(m->slot[k], text) == 0) {
            return m->slot[k];
        }
        k = (k + 1) & (m->cap - 1);
    }
    m->slot[k] = strdup(text);
    if (m->slot[k]) {
        m->n_slot++;
    }
    return m->slot[k];
}

static const char *col_intern(struct cs_store_agg_mem *m, sqlite3_stmt *st, int i, bool *oom)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    const char *r = intern(m, t ? (const char *)t : "");
    if (!r) {
        *oom = true;
    }
    return r;
}

/* col_intern through the column's recent values. */
static const char *col_recent(struct cs_store_agg_mem *m, int which, sqlite3_stmt *st, int i,
                              bool *oom)
{
    agg_recent *r = &m->recent[which];
    const unsigned char *t = sqlite3_column_text(st, i);
    const char *text = t ? (const char *)t : "";
    for (unsigned k = 0; k < r->n; k++) {
        if (strcmp(r->v[k], text) == 0) {
            return r->v[k];
        }
    }
    const char *v = intern(m, text);
    if (!v) {
        *oom = true;
        return NULL;
    }
    r->v[r->next] = v;
    r->next = (r->next + 1) % 8;
    r->n += r->n < 8;
    return v;
}

/* bytes (> 0) of the outcomes' chunks, 8-byte aligned; NULL when out of memory. */
static void *chunk_alloc(struct cs_store_agg_mem *m, size_t bytes)
{
    bytes = (bytes + 7) & ~(size_t)7;
    if (m->n_chunk == 0 || m->chunk_cap - m->chunk_used < bytes) {
        size_t cap = bytes > ((size_t)1 << 20) ? bytes : (size_t)1 << 20;
        uint8_t **c = cs_realloc_array(m->chunk, m->n_chunk + 1, sizeof(*c));
        if (!c) {
            return NULL;
        }
        m->chunk = c;
        c[m->n_chunk] = malloc(cap);
        if (!c[m->n_chunk]) {
            return NULL;
        }
        m->n_chunk++;
        m->chunk_used = 0;
        m->chunk_cap = cap;
    }
    void *p = m->chunk[m->n_chunk - 1] + m->chunk_used;
    m->chunk_used += bytes;
    return p;
}

void cs_store_agg_fini(cs_store_agg *a)
{
    struct cs_store_agg_mem *m = a ? a->mem : NULL;
    if (!a) {
        return;
    }
    if (m) {
        for (size_t i = 0; i < m->n_chunk; i++) {
            free(m->chunk[i]);
        }
        free(m->chunk);
        for (size_t i = 0; m->axes && i < a->n_jobs; i++) {
            free(m->axes[i]);
        }
        for (size_t i = 0; i < m->cap; i++) {
            free(m->slot[i]);
        }
        free(m->slot);
        free(m->metrics);
        free(m->outcomes);
        free(m->metric_job);
        free(m->outcome_job);
        free(m->axes);
        free(m->moff);
        free(m->members);
        free(m->frag);
        free(m->fslot);
        free(m);
    }
    free(a->jobs);
    free(a->headline_task);
    free(a->headline_metric);
    memset(a, 0, sizeof(*a));
}

/* The aggregator's name of a store state. */
static const char *agg_state(const char *state)
{
    if (strcmp(state, "queued") == 0 || strcmp(state, "retry_wait") == 0) {
        return "pending";
    }
    if (strcmp(state, "cached") == 0 || strcmp(state, "done") == 0) {
        return "done";
    }
    if (strcmp(state, "running") == 0) {
        return "running";
    }
    if (strcmp(state, "failed") == 0) {
        return "failed";
    }
    return strcmp(state, "lost") == 0 ? "lost" : "cancelled";
}

/* The model or eval value of an axes object as an interned string: a string as is, anything else
 * as JSON. */
static const char *axis_value(struct cs_store_agg_mem *m, const cJSON *v, bool *oom)
{
    const char *r;
    if (cJSON_IsString(v)) {
        r = intern(m, v->valuestring);
    } else if (v) {
        char *t = cJSON_PrintUnformatted(v);
        r = t ? intern(m, t) : NULL;
        free(t);
    } else {
        r = intern(m, "");
    }
    if (!r) {
        *oom = true;
    }
    return r;
}

/* The axes' value of name (axis_value). */
static const char *axis_name(struct cs_store_agg_mem *m, const cJSON *axes, const char *name,
                             bool *oom)
{
    return axis_value(m, cJSON_GetObjectItemCaseSensitive(axes, name), oom);
}

/* Fragment id from the cache, else read (its text interned, and parsed once for a "model" or
 * "eval" member's value). *f NULL with CS_OK when out of memory (*oom). */
static cs_rc frag_get(cs_store *s, struct cs_store_agg_mem *m, int64_t id, int64_t job_id,
                      const agg_frag **f, bool *oom, cs_err *err)
{
    if (2 * (m->n_frag + 1) > m->fcap) {
        size_t nc = m->fcap ? 2 * m->fcap : 256;
        size_t *slot = cs_alloc_array(nc, sizeof(*slot));
        agg_frag *fr = slot ? cs_realloc_array(m->frag, nc / 2, sizeof(*fr)) : NULL;
        if (!fr) {
            free(slot);
            *oom = true;
            *f = NULL;
            return CS_OK;
        }
        m->frag = fr;
        for (size_t i = 0; i < nc; i++) {
            slot[i] = SIZE_MAX;
        }
        for (size_t i = 0; i < m->n_frag; i++) {
            size_t k = (size_t)((uint64_t)m->frag[i].id * 0x9e3779b97f4a7c15ull >> 20) & (nc - 1);
            while (slot[k] != SIZE_MAX) {
                k = (k + 1) & (nc - 1);
            }
            slot[k] = i;
        }
        free(m->fslot);
        m->fslot = slot;
        m->fcap = nc;
    }
    size_t k = (size_t)((uint64_t)id * 0x9e3779b97f4a7c15ull >> 20) & (m->fcap - 1);
    while (m->fslot[k] != SIZE_MAX && m->frag[m->fslot[k]].id != id) {
        k = (k + 1) & (m->fcap - 1);
    }
    if (m->fslot[k] != SIZE_MAX) {
        *f = &m->frag[m->fslot[k]];
        return CS_OK;
    }
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_stmt(s, S_AGG_FRAGMENT, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    int src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = src == SQLITE_DONE ? cs_err_set(err, CS_EDB, 0,
                                             "store: results: job %lld: axes fragment %lld is "
                                             "missing",
                                             (long long)job_id, (long long)id)
                                : st_err(s->db, src, "read fragments", err);
        st_rel(st);
        return rc;
    }
    agg_frag *x = &m->frag[m->n_frag];
    memset(x, 0, sizeof(*x));
    x->id = id;
    x->text = col_intern(m, st, 0, oom);
    st_rel(st);
    size_t len = x->text ? strlen(x->text) + 3 : 0;
    char *obj = len ? malloc(len) : NULL;
    if (obj) {
        snprintf(obj, len, "{%s}", x->text);
        cJSON *o = cJSON_Parse(obj);
        const cJSON *c = cJSON_IsObject(o) ? o->child : NULL;
        if (c && strcmp(c->string, "model") == 0) {
            x->model = axis_value(m, c, oom);
        } else if (c && strcmp(c->string, "eval") == 0) {
            x->eval = axis_value(m, c, oom);
        }
        cJSON_Delete(o);
    }
    *oom = *oom || !obj;
    free(obj);
    m->fslot[k] = m->n_frag++;
    *f = x;
    return CS_OK;
}

/* Appends a job's axes members (the fragments of its axs list) to m->members, and sets its model
 * and eval from them. CS_EDB for a list that is not a JSON array of ids. */
static cs_rc job_frags(cs_store *s, struct cs_store_agg_mem *m, cs_agg_job *j, const char *axs,
                       bool *oom, cs_err *err)
{
    const char *p = axs ? axs + strspn(axs, " \t\r\n") : "";
    bool ok = *p == '[';
    p = ok ? p + 1 + strspn(p + 1, " \t\r\n") : p;
    bool more = ok && *p != ']';
    while (more && !*oom) {
        char *end;
        const agg_frag *f = NULL;
        ok = *p >= '0' && *p <= '9';
        if (!ok) {
            break;
        }
        cs_rc rc = frag_get(s, m, strtoll(p, &end, 10), j->job_id, &f, oom, err);
        if (rc != CS_OK || !f) {
            return rc; /* !f: out of memory */
        }
        if (m->n_members == m->cap_members) {
            size_t nc = m->cap_members ? 2 * m->cap_members : 1024;
            const char **mb = cs_realloc_array(m->members, nc, sizeof(*mb));
            if (!mb) {
                *oom = true;
                return CS_OK;
            }
            m->members = mb;
            m->cap_members = nc;
        }
        m->members[m->n_members++] = f->text;
        j->n_members++;
        j->model = !j->model && f->model ? f->model : j->model;
        j->eval = !j->eval && f->eval ? f->eval : j->eval;
        p = end + strspn(end, " \t\r\n");
        ok = *p == ']' || *p == ',';
        more = *p == ',';
        p = more ? p + 1 + strspn(p + 1, " \t\r\n") : p;
    }
    if (!ok) {
        return cs_err_set(err, CS_EDB, 0,
                          "store: results: job %lld: axes list %.40s is not an "
                          "array of fragment ids",
                          (long long)j->job_id, axs ? axs : "(null)");
    }
    j->model = j->model ? j->model : intern(m, "");
    j->eval = j->eval ? j->eval : intern(m, "");
    *oom = *oom || !j->model || !j->eval;
    return CS_OK;
}

/* One job row into j: its axes as fragment members, or axes_raw's text when set. */
static cs_rc job_row(cs_store *s, struct cs_store_agg_mem *m, sqlite3_stmt *st, cs_agg_job *j,
                     size_t i, bool *oom, cs_err *err)
{
    memset(j, 0, sizeof(*j));
    j->job_id = sqlite3_column_int64(st, 0);
    j->state = agg_state((const char *)sqlite3_column_text(st, 1));
    j->baseline = sqlite3_column_int(st, 2) != 0;
    j->result_version = sqlite3_column_int(st, 5);
    m->axes[i] = NULL;
    m->moff[i] = SIZE_MAX;
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
        m->axes[i] = st_dup_col(st, 4, oom);
        j->axes = m->axes[i] ? m->axes[i] : "{}";
        cJSON *ax = cJSON_Parse(j->axes);
        j->model = axis_name(m, ax, "model", oom);
        j->eval = axis_name(m, ax, "eval", oom);
        cJSON_Delete(ax);
        return CS_OK;
    }
    m->moff[i] = m->n_members;
    return job_frags(s, m, j, (const char *)sqlite3_column_text(st, 3), oom, err);
}

static cs_rc load_jobs(cs_store *s, int64_t sweep_id, cs_store_agg *a, cs_err *err)
{
    struct cs_store_agg_mem *m = a->mem;
    sqlite3_stmt *st = NULL;
    size_t cap = 0;
    bool oom = false;
    int src = SQLITE_DONE;
    cs_rc rc = st_query(s, S_AGG_JOBS, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    while (rc == CS_OK && !oom && (src = sqlite3_step(st)) == SQLITE_ROW) {
        if (a->n_jobs == cap) {
            size_t nc = cap ? cap * 2 : 256;
            cs_agg_job *j = cs_realloc_array(a->jobs, nc, sizeof(*j));
            char **ax = j ? cs_realloc_array(m->axes, nc, sizeof(*ax)) : NULL;
            size_t *mo = ax ? cs_realloc_array(m->moff, nc, sizeof(*mo)) : NULL;
            a->jobs = j ? j : a->jobs;
            m->axes = ax ? ax : m->axes;
            if (!mo) {
                oom = true;
                break;
            }
            m->moff = mo;
            cap = nc;
        }
        rc = job_row(s, m, st, &a->jobs[a->n_jobs], a->n_jobs, &oom, err);
        a->n_jobs++;
    }
    if (rc == CS_OK && oom) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "store: results: out of memory");
    } else if (rc == CS_OK && src != SQLITE_DONE) {
        rc = st_err(s->db, src, "read jobs", err);
    }
    st_rel(st);
    for (size_t i = 0; rc == CS_OK && i < a->n_jobs; i++) {
        if (m->moff[i] != SIZE_MAX && m->members) { /* the array has stopped moving */
            a->jobs[i].members = m->members + m->moff[i];
        }
    }
    return rc;
}

static int job_cmp(const void *key, const void *elem)
{
    int64_t id = *(const int64_t *)key, jid = ((const cs_agg_job *)elem)->job_id;
    return id < jid ? -1 : id > jid;
}

/* The index in a->jobs of job id (jobs are by id); SIZE_MAX when absent. */
static size_t job_index(const cs_store_agg *a, int64_t id)
{
    const cs_agg_job *j = bsearch(&id, a->jobs, a->n_jobs, sizeof(*a->jobs), job_cmp);
    return j ? (size_t)(j - a->jobs) : SIZE_MAX;
}

/* job_index, trying first the job after *hint (the rows of a query come by job; equal ids
 * are one job); *hint = the index found. */
static size_t job_next(const cs_store_agg *a, int64_t id, size_t *hint)
{
    size_t h = *hint;
    if (h < a->n_jobs && a->jobs[h].job_id == id) {
        return h;
    }
    if (h + 1 < a->n_jobs && a->jobs[h + 1].job_id == id) {
        return *hint = h + 1;
    }
    size_t k = job_index(a, id);
    *hint = k != SIZE_MAX ? k : *hint;
    return k;
}

/* Grows an array of rows and its job-index array together to hold one more. */
static bool grow(void **rows, size_t **idx, size_t n, size_t *cap, size_t size)
{
    if (n < *cap) {
        return true;
    }
    size_t nc = *cap ? *cap * 2 : 1024;
    void *r = cs_realloc_array(*rows, nc, size);
    if (!r) {
        return false;
    }
    *rows = r;
    size_t *x = cs_realloc_array(*idx, nc, sizeof(*x));
    if (!x) {
        return false;
    }
    *idx = x;
    *cap = nc;
    return true;
}

static cs_rc load_metrics(cs_store *s, int64_t sweep_id, cs_store_agg *a, cs_err *err)
{
    struct cs_store_agg_mem *m = a->mem;
    sqlite3_stmt *st = NULL;
    bool oom = false;
    int src;
    size_t hint = 0;
    cs_rc rc = st_query(s, S_AGG_METRICS, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        size_t k = job_next(a, sqlite3_column_int64(st, 0), &hint);
        if (k == SIZE_MAX) {
            continue;
        }
        if (!grow((void **)&m->metrics, &m->metric_job, m->n_metrics, &m->cap_metrics,
                  sizeof(*m->metrics))) {
            oom = true;
            break;
        }
        cs_agg_metric *x = &m->metrics[m->n_metrics];
        x->task = col_recent(m, R_MT, st, 1, &oom);
        x->metric = col_recent(m, R_MM, st, 2, &oom);
        x->value = sqlite3_column_type(st, 3) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 3);
        x->stderr_ = sqlite3_column_type(st, 4) == SQLITE_NULL ? 0 : sqlite3_column_double(st, 4);
        x->n = sqlite3_column_type(st, 5) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 5);
        m->metric_job[m->n_metrics++] = k;
        if (oom) {
            break;
        }
    }
    if (oom) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "store: results: out of memory");
    } else if (src != SQLITE_DONE) {
        rc = st_err(s->db, src, "read metrics", err);
    }
    st_rel(st);
    return rc;
}

/* One item_outcome row into x: bits copied as they are, floats decoded from little endian.
 * CS_EDB naming the job and task for a blob of the wrong length. */
static cs_rc outcome_row(struct cs_store_agg_mem *m, sqlite3_stmt *st, cs_agg_outcome *x,
                         cs_err *err)
{
    bool oom = false;
    int64_t n = sqlite3_column_int64(st, 4);
    const unsigned char *d = sqlite3_column_blob(st, 5);
    size_t bytes = (size_t)sqlite3_column_bytes(st, 5);
    memset(x, 0, sizeof(*x));
    x->task = col_recent(m, R_OT, st, 1, &oom);
    x->metric = col_recent(m, R_OM, st, 2, &oom);
    x->sample = col_recent(m, R_OS, st, 3, &oom);
    if (oom) {
        return cs_err_set(err, CS_ENOMEM, 0, "store: results: out of memory");
    }
    bool real = st_outcome_real(x->metric);
    if (n < 0 || (size_t)n > CS_LIMIT_RESULT_ITEMS ||
        bytes != (real ? (size_t)n * 4 : ((size_t)n + 7) / 8)) {
        return cs_err_set(err, CS_EDB, 0,
                          "store: results: job %lld: item outcome %s/%s has %zu bytes for %lld "
                          "items",
                          (long long)sqlite3_column_int64(st, 0), x->task, x->metric, bytes,
                          (long long)n);
    }
    x->n = (size_t)n;
    if (real) {
        float *v = chunk_alloc(m, n > 0 ? (size_t)n * sizeof(*v) : 1);
        for (size_t i = 0; v && i < (size_t)n; i++) {
            uint32_t u = (uint32_t)d[4 * i] | (uint32_t)d[4 * i + 1] << 8 |
                         (uint32_t)d[4 * i + 2] << 16 | (uint32_t)d[4 * i + 3] << 24;
            memcpy(&v[i], &u, sizeof(u));
        }
        x->values = v;
    } else {
        uint8_t *b = chunk_alloc(m, bytes > 0 ? bytes : 1);
        if (b && bytes > 0) {
            memcpy(b, d, bytes);
        }
        x->bits = b;
    }
    return x->values || x->bits ? CS_OK
                                : cs_err_set(err, CS_ENOMEM, 0, "store: results: out of memory");
}

/* The outcomes the comparisons read, as S_AGG_OUTCOMES_OF takes them: {"TASK":"METRIC",...}, the
 * headline metric of each task of the loaded metrics and of the headline table, as cs_agg_run
 * chooses it (cs_agg_headline). Owned; NULL when out of memory. */
static char *headline_filter(const cs_store_agg *a, const char *metric, bool *real)
{
    struct cs_store_agg_mem *m = a->mem;
    const char *acc = intern(m, "acc"), *em = intern(m, "exact_match");
    size_t n = 0, last = 0, cap = m->n_metrics + a->n_headline;
    struct {
        const char *task;
        bool acc, em;
    } *t = cs_calloc_array(cap ? cap : 1, sizeof(*t));
    cJSON *f = t && acc && em ? cJSON_CreateObject() : NULL;
    for (size_t i = 0; f && i < cap; i++) { /* task names are interned: compared by address */
        const char *task =
                i < m->n_metrics ? m->metrics[i].task : a->headline_task[i - m->n_metrics];
        if (n == 0 || t[last].task != task) {
            for (last = 0; last < n && t[last].task != task; last++) {
            }
            n += last == n;
            t[last].task = task;
        }
        t[last].acc = t[last].acc || (i < m->n_metrics && m->metrics[i].metric == acc);
        t[last].em = t[last].em || (i < m->n_metrics && m->metrics[i].metric == em);
    }
    cs_agg_opts o;
    cs_agg_opts_init(&o);
    o.metric = metric;
    o.headline_task = a->headline_task;
    o.headline_metric = a->headline_metric;
    o.n_headline = a->n_headline;
    bool ok = f != NULL;
    *real = false;
    for (size_t i = 0; ok && i < n; i++) {
        const char *h = cs_agg_headline(&o, t[i].task, t[i].acc, t[i].em);
        *real = *real || st_outcome_real(h);
        ok = cJSON_AddStringToObject(f, t[i].task, h) != NULL;
    }
    char *text = ok ? cJSON_PrintUnformatted(f) : NULL;
    cJSON_Delete(f);
    free(t);
    return text;
}

/* The rows of statement st (bound): job id, task, metric, sample, n, data. */
static cs_rc outcome_rows(cs_store *s, sqlite3_stmt *st, cs_store_agg *a, cs_err *err)
{
    struct cs_store_agg_mem *m = a->mem;
    int src = SQLITE_DONE;
    size_t hint = 0;
    cs_rc rc = CS_OK;
    while (rc == CS_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        size_t k = job_next(a, sqlite3_column_int64(st, 0), &hint);
        if (k == SIZE_MAX) {
            continue;
        }
        if (!grow((void **)&m->outcomes, &m->outcome_job, m->n_outcomes, &m->cap_outcomes,
                  sizeof(*m->outcomes))) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "store: results: out of memory");
            break;
        }
        rc = outcome_row(m, st, &m->outcomes[m->n_outcomes], err);
        m->outcome_job[m->n_outcomes++] = k; /* its buffers are freed with the rest */
    }
    if (rc == CS_OK && src != SQLITE_DONE) {
        rc = st_err(s->db, src, "read item outcomes", err);
    }
    return rc;
}

typedef struct by_job {
    size_t job, at;
} by_job;

static int by_job_cmp(const void *x, const void *y)
{
    const by_job *a = x, *b = y;
    if (a->job != b->job) {
        return a->job < b->job ? -1 : 1;
    }
    return (a->at > b->at) - (a->at < b->at);
}

/* Orders the outcomes by job (stable), so each job's come together for attach() after the
 * bitsets and the values were read by two queries. */
static cs_rc outcomes_by_job(cs_store_agg *a, cs_err *err)
{
    struct cs_store_agg_mem *m = a->mem;
    if (m->n_outcomes == 0) {
        return CS_OK; /* m->outcomes is NULL then */
    }
    by_job *k = cs_alloc_array(m->n_outcomes + 1, sizeof(*k));
    cs_agg_outcome *o = cs_alloc_array(m->n_outcomes + 1, sizeof(*o));
    if (k == NULL || o == NULL) {
        cs_free_each((void *const[]){k, o}, 2);
        return cs_err_set(err, CS_ENOMEM, 0, "store: results: out of memory");
    }
    for (size_t i = 0; i < m->n_outcomes; i++) {
        k[i] = (by_job){m->outcome_job[i], i};
    }
    qsort(k, m->n_outcomes, sizeof(*k), by_job_cmp);
    for (size_t i = 0; i < m->n_outcomes; i++) {
        o[i] = m->outcomes[k[i].at];
        m->outcome_job[i] = k[i].job;
    }
    memcpy(m->outcomes, o, m->n_outcomes * sizeof(*o));
    cs_free_each((void *const[]){k, o}, 2);
    return CS_OK;
}

/* Runs statement which (?1 the sweep, ?2 filter or with_margin) and reads its rows. */
static cs_rc outcome_query(cs_store *s, int which, int64_t sweep_id, const char *filter,
                           bool with_margin, cs_store_agg *a, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_query(s, which, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    if (filter) {
        st_bind_text(st, 2, filter);
    } else {
        sqlite3_bind_int(st, 2, with_margin ? 1 : 0);
    }
    rc = outcome_rows(s, st, a, err);
    st_rel(st);
    return rc;
}

/* The outcomes of the done and cached jobs: filter NULL: all (the bitsets, then the values: the
 * margins with with_margin), else those it names (headline_filter; real: it names a real-valued
 * one, so item_value is read too: its lookups are costly, each may read a float array). */
static cs_rc load_outcomes(cs_store *s, int64_t sweep_id, bool with_margin, const char *filter,
                           bool real, cs_store_agg *a, cs_err *err)
{
    cs_rc rc = outcome_query(s, filter ? S_AGG_OUTCOMES_OF : S_AGG_OUTCOMES, sweep_id, filter,
                             with_margin, a, err);
    if (rc == CS_OK && (filter == NULL || real)) {
        rc = outcome_query(s, filter ? S_AGG_VALUES_OF : S_AGG_VALUES, sweep_id, filter,
                           with_margin, a, err);
        rc = rc == CS_OK ? outcomes_by_job(a, err) : rc;
    }
    return rc;
}

/* Points each job at its run of metrics and outcomes. The rows of one job come together; the
 * queries order them as index job_claim does (state, priority, id), so SQLite needs no sort (a
 * temporary B-tree of every row, blobs included, with ORDER BY j.id alone). */
static void attach(cs_store_agg *a)
{
    struct cs_store_agg_mem *m = a->mem;
    for (size_t i = 0; i < m->n_metrics; i++) {
        cs_agg_job *j = &a->jobs[m->metric_job[i]];
        if (j->n_metrics++ == 0) {
            j->metrics = &m->metrics[i];
        }
    }
    for (size_t i = 0; i < m->n_outcomes; i++) {
        cs_agg_job *j = &a->jobs[m->outcome_job[i]];
        if (j->n_outcomes++ == 0) {
            j->outcomes = &m->outcomes[i];
        }
    }
}

/* The "headline" of every task of the sweep document's eval suites (the first suite naming a
 * task wins). */
static cs_rc load_headlines(cs_store *s, int64_t sweep_id, cs_store_agg *a, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    bool oom = false;
    cJSON *doc = NULL, *suite, *task;
    cs_rc rc = st_query(s, S_AGG_SPEC, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        doc = cJSON_Parse((const char *)sqlite3_column_text(st, 0));
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: results: no sweep %lld", (long long)sweep_id);
    } else {
        rc = st_err(s->db, src, "read sweep", err);
    }
    st_rel(st);
    const cJSON *evals =
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "data"), "eval");
    size_t cap = 0;
    cJSON_ArrayForEach(suite, evals)
    {
        cJSON_ArrayForEach(task, cJSON_GetObjectItemCaseSensitive(suite, "tasks"))
        {
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(task, "headline");
            bool seen = false;
            for (size_t i = 0; i < a->n_headline && !seen; i++) {
                seen = strcmp(a->headline_task[i], task->string) == 0;
            }
            if (!cJSON_IsString(h) || seen || oom) {
                continue;
            }
            if (a->n_headline == cap) {
                cap = cap ? cap * 2 : 8;
                const char **t = cs_realloc_array(a->headline_task, cap, sizeof(*t));
                a->headline_task = t ? t : a->headline_task;
                const char **mm = cs_realloc_array(a->headline_metric, cap, sizeof(*mm));
                a->headline_metric = mm ? mm : a->headline_metric;
                oom = !t || !mm;
            }
            if (!oom) {
                a->headline_task[a->n_headline] = intern(a->mem, task->string);
                a->headline_metric[a->n_headline] = intern(a->mem, h->valuestring);
                oom = !a->headline_task[a->n_headline] || !a->headline_metric[a->n_headline];
                a->n_headline++;
            }
        }
    }
    cJSON_Delete(doc);
    return rc == CS_OK && oom ? cs_err_set(err, CS_ENOMEM, 0, "store: results: out of memory") : rc;
}

/* cs_store_agg_load; outcomes 0: none (no comparison will read them), 1: all but the margins,
 * 2: all, 3: those of the headline metrics (metric: --metric, or NULL). */
static cs_rc agg_load(cs_store *s, int64_t sweep_id, int outcomes, const char *metric,
                      cs_store_agg *out, cs_err *err)
{
    char *filter = NULL;
    bool real = false;
    cs_rc rc;
    memset(out, 0, sizeof(*out));
    out->mem = calloc(1, sizeof(*out->mem));
    if (!out->mem) {
        return cs_err_set(err, CS_ENOMEM, 0, "store: results: out of memory");
    }
    rc = load_headlines(s, sweep_id, out, err);
    if (rc == CS_OK) {
        rc = load_jobs(s, sweep_id, out, err);
    }
    if (rc == CS_OK) {
        rc = load_metrics(s, sweep_id, out, err);
    }
    if (rc == CS_OK && outcomes == 3) {
        filter = headline_filter(out, metric, &real);
        rc = filter ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "store: results: out of memory");
    }
    if (rc == CS_OK && outcomes > 0) {
        rc = load_outcomes(s, sweep_id, outcomes == 2, filter, real, out, err);
    }
    free(filter);
    if (rc != CS_OK) {
        cs_store_agg_fini(out);
        return rc;
    }
    attach(out);
    return CS_OK;
}

cs_rc cs_store_agg_load(cs_store *s, int64_t sweep_id, bool with_margin, cs_store_agg *out,
                        cs_err *err)
{
    return agg_load(s, sweep_id, with_margin ? 2 : 1, NULL, out, err);
}

cs_rc cs_store_agg_load_headlines(cs_store *s, int64_t sweep_id, const char *metric,
                                  cs_store_agg *out, cs_err *err)
{
    return agg_load(s, sweep_id, 3, metric, out, err);
}

cs_rc cs_store_agg_configs(cs_store *s, int64_t sweep_id, const cs_store_agg *a, char **configs,
                           cs_err *err)
{
    sqlite3_stmt *st = NULL;
    size_t hint = 0;
    int src = SQLITE_DONE;
    cs_rc rc = st_query(s, S_AGG_CONFIGS, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    while (rc == CS_OK && (src = sqlite3_step(st)) == SQLITE_ROW) {
        size_t k = job_next(a, sqlite3_column_int64(st, 0), &hint);
        bool oom = false;
        char *ids = st_dup_col(st, 1, &oom), *raw = st_dup_col(st, 2, &oom);
        if (oom) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "store: configs: out of memory");
        } else if (k != SIZE_MAX && !configs[k]) {
            rc = st_rebuild(s, ids, raw, &configs[k], err);
        }
        free(ids);
        free(raw);
    }
    if (rc == CS_OK && src != SQLITE_DONE) {
        rc = st_err(s->db, src, "read configs", err);
    }
    st_rel(st);
    return rc;
}

void cs_store_outcomes_fini(cs_store_outcomes *o)
{
    if (o) {
        free(o->v);
        free(o->floats);
        memset(o, 0, sizeof(*o));
    }
}

/* Appends one outcome; floats (n of them) are written little endian into o->floats at *used. */
static void put_outcome(cs_store_outcomes *o, const cs_result_items *it, const char *metric,
                        const uint8_t *bits, const float *vals, size_t *used)
{
    cs_store_outcome *x = &o->v[o->n++];
    x->task = it->task;
    x->metric = metric;
    x->sample = it->sample;
    x->n = (int64_t)it->n;
    if (bits) {
        x->data = bits;
        x->bytes = cs_result_bits_bytes(it->n);
        return;
    }
    uint8_t *d = o->floats + *used;
    for (size_t i = 0; i < it->n; i++) {
        uint32_t u;
        memcpy(&u, &vals[i], sizeof(u));
        d[4 * i] = (uint8_t)u;
        d[4 * i + 1] = (uint8_t)(u >> 8);
        d[4 * i + 2] = (uint8_t)(u >> 16);
        d[4 * i + 3] = (uint8_t)(u >> 24);
    }
    x->data = d;
    x->bytes = 4 * it->n;
    *used += 4 * it->n;
}

cs_rc cs_store_outcomes_of(const cs_result *r, cs_store_outcomes *o, cs_err *err)
{
    size_t floats = 0, used = 0;
    memset(o, 0, sizeof(*o));
    if (r->n_items == 0) {
        return CS_OK;
    }
    for (size_t i = 0; i < r->n_items; i++) {
        floats += (r->items[i].margin ? r->items[i].n : 0) +
                  (r->items[i].window_loss ? r->items[i].n : 0);
    }
    o->v = cs_calloc_array(r->n_items * 7, sizeof(*o->v));
    o->floats = malloc(floats > 0 ? floats * 4 : 1);
    if (!o->v || !o->floats) {
        cs_store_outcomes_fini(o);
        return cs_err_set(err, CS_ENOMEM, 0, "store: result items: out of memory");
    }
    for (size_t i = 0; i < r->n_items; i++) {
        const cs_result_items *it = &r->items[i];
        const uint8_t *bits[5] = {it->acc, it->acc_norm, it->acc_bytes, it->exact_match,
                                  it->exact_match_flex};
        static const char *const bit_names[5] = {"acc", "acc_norm", "acc_bytes", "exact_match",
                                                 "exact_match_flex"};
        for (size_t k = 0; k < 5; k++) {
            if (bits[k]) {
                put_outcome(o, it, bit_names[k], bits[k], NULL, &used);
            }
        }
        if (it->margin) {
            put_outcome(o, it, "margin", NULL, it->margin, &used);
        }
        if (it->window_loss) {
            put_outcome(o, it, "window_loss", NULL, it->window_loss, &used);
        }
    }
    return CS_OK;
}

typedef struct names_ctx {
    char *buf;
    size_t len, cap, n;
} names_ctx;

static cs_rc add_name(void *ctx, const cs_store_sweep_info *info, cs_err *err)
{
    names_ctx *c = ctx;
    (void)err;
    if (info->state == CS_SWEEP_CANCELLED || c->n >= 20) {
        c->n += info->state != CS_SWEEP_CANCELLED;
        return CS_OK;
    }
    int w = snprintf(c->buf + c->len, c->cap - c->len, "%s%s", c->n ? ", " : "", info->name);
    if (w > 0 && (size_t)w < c->cap - c->len) {
        c->len += (size_t)w;
    }
    c->n++;
    return CS_OK;
}

cs_rc cs_store_sweep_resolve(cs_store *s, const char *ref, int64_t *id, cs_err *err)
{
    cs_store_sweep_info info;
    cs_err e = {0};
    char names[1024] = "";
    names_ctx nc = {names, 0, sizeof(names), 0};
    bool digits = ref[0] != '\0' && strlen(ref) <= 15;
    for (const char *p = ref; digits && *p; p++) {
        digits = *p >= '0' && *p <= '9';
    }
    if (digits && cs_store_sweep_get(s, strtoll(ref, NULL, 10), &info, &e) == CS_OK) {
        *id = info.id;
        return CS_OK;
    }
    cs_rc rc = cs_store_sweep_find(s, ref, id, &e);
    if (rc != CS_ENOENT) {
        return rc == CS_OK ? CS_OK : cs_err_set(err, rc, 0, "%s", e.msg);
    }
    rc = cs_store_sweep_list(s, add_name, &nc, &e);
    if (rc != CS_OK || nc.n == 0) {
        return cs_err_set(err, CS_ENOENT, 0, "no sweep '%s' (there are no sweeps)", ref);
    }
    return cs_err_set(err, CS_ENOENT, 0, "no sweep '%s'; sweeps: %s%s", ref, names,
                      nc.n > 20 ? ", ..." : "");
}

cs_rc cs_store_results(cs_store *s, const char *sweep, const cs_store_results_req *q, cJSON **out,
                       cs_err *err)
{
    cs_agg_opts o;
    cs_store_agg a = {0};
    char axis[CS_LIMIT_NAME_BYTES + 1] = "";
    int64_t id = 0;
    cs_rc rc;
    *out = NULL;
    cs_agg_opts_init(&o);
    if (q->reference) {
        const char *eq = strchr(q->reference, '=');
        if (!eq || eq == q->reference || !eq[1] || (size_t)(eq - q->reference) >= sizeof(axis)) {
            return cs_err_set(err, CS_EINVAL, 0,
                              "--reference %s: expected AXIS=VALUE, e.g. algorithm=rtn",
                              q->reference);
        }
        memcpy(axis, q->reference, (size_t)(eq - q->reference));
        axis[eq - q->reference] = '\0';
        o.ref_axis = axis;
        o.ref_value = eq + 1;
    }
    rc = cs_store_sweep_resolve(s, sweep, &id, err);
    if (rc == CS_OK) {
        /* Only the comparisons with a reference row read per-item outcomes (pairing and the
         * bootstrap) and the intervals over items, and only those of the headline metrics:
         * without either, the 1.5M bitset rows
         * of a 100,000-job sweep stay unread, with one a third of them are read. */
        rc = agg_load(s, id, q->reference != NULL || q->item_resamples > 0 ? 3 : 0, q->metric, &a,
                      err);
    }
    if (rc != CS_OK) {
        return rc;
    }
    o.by = q->by;
    o.n_by = q->n_by;
    o.metric = q->metric;
    o.tasks = q->tasks;
    o.n_tasks = q->n_tasks;
    o.headline_task = a.headline_task;
    o.headline_metric = a.headline_metric;
    o.n_headline = a.n_headline;
    o.resamples = q->resamples;
    o.item_resamples = q->item_resamples;
    o.seed = q->seed;
    o.slim = q->slim;
    rc = cs_agg_run(a.jobs, a.n_jobs, &o, out, err);
    cs_store_agg_fini(&a);
    return rc;
}
