/* cs_watch.c - see cs_watch.h. The document's members and how each is computed: docs/watch.md. */
#include "cs_watch.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cs_agg.h"
#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_json.h"
#include "cs_log.h"
#include "cs_time.h"

/* A worker heard from within this long and not gone counts as idle (else lost); the same
 * window as STATUS.workers and WORKERS[].active (cs_control.c). */
#define W_ALIVE_MS ((int64_t)120000)
/* Workers seen within this long are listed. */
#define W_LIST_MS ((int64_t)24 * 3600 * 1000)
/* The rate's window. */
#define W_RATE_MS ((int64_t)600000)
/* The aggregate of a sweep is computed at most once per max(W_BEST_GAP_MS, W_COST_X x its last
 * computing time); the ETA at most once per W_COST_X x its last computing time. */
#define W_BEST_GAP_MS ((int64_t)10000)
/* How long a request waits for the first ETA, and again for the first best rows, of a sweep
 * (first_wait): twice this stays below the view's request timeout. */
#define W_FIRST_WAIT_MS ((int64_t)600)
/* A sweep's job counts are read again when the last read is older than this (the view asks
 * once a second; ten views cost one count, an index scan of the sweep's jobs). */
#define W_COUNTS_MS ((int64_t)1000)
#define W_COST_X    50 /* so they cost at most 2 % of a core */
/* The most best rows kept per sweep (WATCH.top is at most this). */
#define W_BEST_KEEP 100
#define W_ERROR_MAX 200 /* bytes of a problem's error line */
#define W_LINE_MAX  300 /* bytes of one log line */
#define W_LOG_LINES 5
#define W_LOG_MARK  "\n--- log tail ---\n" /* what calsweepd puts between FAIL's reason and tail */

/* When a cached value was computed, from which counts, and whether a thread is at it now or
 * the background thread is asked to. */
typedef struct slot {
    bool valid, busy, want;
    cs_store_counts counts;      /* the counts it was computed for */
    int64_t at;                  /* wall ms (the request's now) of the computation */
    int64_t cost_ms;             /* how long it took */
    cs_store_counts want_counts; /* want: the counts of the request that asked */
    int64_t want_now;            /* want: that request's now */
} slot;

typedef struct wentry {
    int64_t sweep_id;
    slot eta;
    bool has_avg, has_eta;
    double avg_s, eta_s;
    slot best;
    cJSON *rows;         /* ranked best rows (at most W_BEST_KEEP); NULL before the first */
    int64_t best_jobs;   /* done + cached jobs when they were computed */
    int64_t computed_ms; /* wall ms of that computation */
    /* The rate: the times of the sweep's finishing events read so far that may still be in the
     * window, oldest first (fin[fin_head..fin_n)), and the id of the newest event read. Each
     * request reads only the events after it (rate_busy: one request at a time; the others
     * count what is there). */
    int64_t *fin;
    size_t fin_head, fin_n, fin_cap;
    /* The job counts of the last request that read them (one read a second serves them all). */
    cs_store_counts counts;
    int64_t counts_at;
    bool counts_valid;
    int64_t rate_last_id, rate_now;
    bool rate_busy;
} wentry;

struct cs_watch {
    pthread_mutex_t mu;     /* guards everything below */
    pthread_cond_t cv;      /* the background thread waits on it for work (pending) or stop */
    pthread_cond_t done_cv; /* broadcast when a computation ends (first_wait); monotonic clock */
    pthread_t th;
    bool th_started, stop, pending;
    char *db; /* the database the background thread reads; NULL: no background thread */
    int64_t lease_ms;
    wentry *v;
    size_t n, cap;
    cs_watch_stats stats;
};

static void *bg_main(void *arg);

cs_rc cs_watch_create(int64_t lease_ms, const char *db, cs_watch **out, cs_err *err)
{
    *out = NULL;
    if (lease_ms < 1) {
        return cs_err_set(err, CS_EINVAL, 0, "watch: lease_ms must be >= 1, got %lld",
                          (long long)lease_ms);
    }
    cs_watch *w = calloc(1, sizeof *w);
    if (w == NULL || (db != NULL && (w->db = cs_strdup(db)) == NULL)) {
        free(w);
        return cs_err_set(err, CS_ENOMEM, 0, "watch cache");
    }
    pthread_condattr_t ca;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    w->lease_ms = lease_ms;
    if (db != NULL) {
        int rv = pthread_create(&w->th, NULL, bg_main, w);
        if (rv != 0) {
            cs_watch_destroy(w);
            return cs_err_set(err, CS_ENOMEM, rv, "watch: cannot start its thread");
        }
        w->th_started = true;
    }
    *out = w;
    return CS_OK;
}

void cs_watch_destroy(cs_watch *w)
{
    if (w == NULL) {
        return;
    }
    if (w->th_started) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
    }
    for (size_t i = 0; i < w->n; i++) {
        cJSON_Delete(w->v[i].rows);
        free(w->v[i].fin);
    }
    free(w->v);
    free(w->db);
    pthread_cond_destroy(&w->cv);
    pthread_cond_destroy(&w->done_cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

void cs_watch_stats_get(cs_watch *w, cs_watch_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}

/* The entry of sweep_id, created when missing (under w->mu); NULL when out of memory. */
static wentry *entry_of(cs_watch *w, int64_t sweep_id)
{
    for (size_t i = 0; i < w->n; i++) {
        if (w->v[i].sweep_id == sweep_id) {
            return &w->v[i];
        }
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        wentry *v = cs_realloc_array(w->v, cap, sizeof *v);
        if (v == NULL) {
            return NULL;
        }
        w->v = v;
        w->cap = cap;
    }
    wentry *e = &w->v[w->n++];
    memset(e, 0, sizeof *e);
    e->sweep_id = sweep_id;
    return e;
}

/* Whether the value of sl should be computed again for counts c at now (under w->mu). */
static bool slot_due(const slot *sl, const cs_store_counts *c, int64_t now, int64_t min_gap)
{
    if (sl->busy || sl->want) {
        return false;
    }
    if (!sl->valid) {
        return true;
    }
    if (memcmp(&sl->counts, c, sizeof *c) == 0) {
        return false;
    }
    int64_t gap = W_COST_X * sl->cost_ms;
    return now - sl->at >= (gap > min_gap ? gap : min_gap);
}

/* What a request does about slot sl (under w->mu): true when it computes the value itself (only
 * without a background thread: sl is then busy and runs counted); false when it answers from the
 * cache: the value is fresh, a thread is at it, or the background thread is asked to compute it
 * now (sl wanted; a request that finds no value yet waits a little for it: first_wait). */
static bool slot_take(cs_watch *w, slot *sl, const cs_store_counts *c, int64_t now, int64_t min_gap,
                      uint64_t *runs)
{
    if (!slot_due(sl, c, now, min_gap)) {
        return false;
    }
    if (w->th_started) {
        sl->want = true;
        sl->want_counts = *c;
        sl->want_now = now;
        w->pending = true;
        pthread_cond_signal(&w->cv);
        return false;
    }
    sl->busy = true;
    (*runs)++;
    return true;
}

/* With the background thread, a request that finds no value of sweep_id's ETA (best false) or
 * best rows yet waits for the thread's first computation, at most W_FIRST_WAIT_MS (under w->mu,
 * which it releases while it waits). Returns the entry again (the table may have moved), NULL
 * when out of memory. A small sweep's first value is there in milliseconds, so one `calsweep
 * watch --once` shows every pane; a big one's comes with a later request. */
static wentry *first_wait(cs_watch *w, int64_t sweep_id, bool best)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_nsec += (long)(W_FIRST_WAIT_MS % 1000) * 1000000L;
    dl.tv_sec += (time_t)(W_FIRST_WAIT_MS / 1000) + dl.tv_nsec / 1000000000L;
    dl.tv_nsec %= 1000000000L;
    for (;;) {
        wentry *e = entry_of(w, sweep_id);
        const slot *sl = e == NULL ? NULL : best ? &e->best : &e->eta;
        if (sl == NULL || sl->valid || (!sl->busy && !sl->want) || w->stop ||
            pthread_cond_timedwait(&w->done_cv, &w->mu, &dl) == ETIMEDOUT) {
            return entry_of(w, sweep_id);
        }
    }
}

static void slot_done(slot *sl, const cs_store_counts *c, int64_t now, int64_t t0)
{
    sl->busy = false;
    sl->valid = true;
    sl->counts = *c;
    sl->at = now;
    sl->cost_ms = cs_time_mono_ms() - t0;
}

/* Stores a computed ETA into sweep_id's entry (under w->mu), or only ends the computation when it
 * failed (rc). */
static void eta_store(cs_watch *w, int64_t sweep_id, cs_rc rc, const wentry *fresh,
                      const cs_store_counts *c, int64_t now, int64_t t0)
{
    wentry *e = entry_of(w, sweep_id);
    pthread_cond_broadcast(&w->done_cv);
    if (e == NULL) {
        return;
    }
    e->eta.busy = false;
    if (rc == CS_OK) {
        slot_done(&e->eta, c, now, t0);
        e->has_avg = fresh->has_avg;
        e->has_eta = fresh->has_eta;
        e->avg_s = fresh->avg_s;
        e->eta_s = fresh->eta_s;
    }
}

/* The same for the best rows (taken: *rows is NULL afterwards when they were stored). */
static void best_store(cs_watch *w, int64_t sweep_id, cs_rc rc, cJSON **rows,
                       const cs_store_counts *c, int64_t now, int64_t t0)
{
    wentry *e = entry_of(w, sweep_id);
    pthread_cond_broadcast(&w->done_cv);
    if (e == NULL) {
        return;
    }
    e->best.busy = false;
    if (rc == CS_OK) {
        slot_done(&e->best, c, now, t0);
        cJSON_Delete(e->rows);
        e->rows = *rows;
        e->best_jobs = (int64_t)(c->n[CS_JOB_DONE] + c->n[CS_JOB_CACHED]);
        e->computed_ms = now;
        *rows = NULL;
    }
}

/* ---- ETA and average duration ---------------------------------------------------------------- */

typedef struct eta_acc {
    double known_ms; /* sum of remaining x the group's mean, over groups with done attempts */
    double unknown;  /* remaining jobs of groups without */
    double done_ms;  /* summed durations of every done attempt */
    double n_done;   /* done attempts */
} eta_acc;

static cs_rc eta_group(void *ctx, const cs_store_watch_group *g, cs_err *err)
{
    eta_acc *a = ctx;
    (void)err;
    if (g->n_done > 0) {
        a->known_ms += (double)g->remaining * (g->sum_ms / (double)g->n_done);
    } else {
        a->unknown += (double)g->remaining;
    }
    a->done_ms += g->sum_ms;
    a->n_done += (double)g->n_done;
    return CS_OK;
}

/* The sweep's average duration and ETA (docs/watch.md "ETA"), running = its running jobs. */
static cs_rc eta_compute(cs_store *s, int64_t sweep_id, size_t running, wentry *out, cs_err *err)
{
    eta_acc a = {0};
    cs_rc rc = cs_store_watch_groups(s, sweep_id, eta_group, &a, err);
    out->has_avg = out->has_eta = false;
    if (rc != CS_OK || a.n_done <= 0) {
        return rc;
    }
    double mean_ms = a.done_ms / a.n_done;
    out->has_avg = out->has_eta = true;
    out->avg_s = mean_ms / 1000.0;
    out->eta_s = (a.known_ms + a.unknown * mean_ms) / 1000.0 / (double)(running > 0 ? running : 1);
    return CS_OK;
}

/* Fills copy's ETA fields from the cache, computing them first when due (see slot_take). */
static cs_rc eta_get(cs_watch *w, cs_store *s, int64_t sweep_id, const cs_store_counts *c,
                     int64_t now, wentry *copy, cs_err *err)
{
    size_t running = c->n[CS_JOB_RUNNING];
    if (w == NULL) {
        return eta_compute(s, sweep_id, running, copy, err);
    }
    pthread_mutex_lock(&w->mu);
    wentry *e = entry_of(w, sweep_id);
    bool here = e != NULL && slot_take(w, &e->eta, c, now, 0, &w->stats.eta_runs);
    if (e != NULL && !here && !e->eta.valid && w->th_started) {
        e = first_wait(w, sweep_id, false);
    }
    if (e != NULL && !here) {
        *copy = *e;
        copy->fin = NULL; /* the copy is for the ETA only */
        copy->rows = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    if (e == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "watch cache");
    }
    if (!here) {
        return CS_OK;
    }
    int64_t t0 = cs_time_mono_ms();
    wentry fresh = {0};
    cs_rc rc = eta_compute(s, sweep_id, running, &fresh, err);
    pthread_mutex_lock(&w->mu);
    eta_store(w, sweep_id, rc, &fresh, c, now, t0);
    *copy = fresh;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---- best so far ----------------------------------------------------------------------------- */

static double num_or_nan(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int row_cmp(const void *a, const void *b)
{
    double x = num_or_nan(*(const cJSON *const *)a, "mean");
    double y = num_or_nan(*(const cJSON *const *)b, "mean");
    return x < y ? 1 : x > y ? -1 : 0;
}

/* One best row of an aggregate row labelled label (the results table's short label), or NULL
 * (a baseline row, no average accuracy, out of memory: *oom says which). The std over seeds is
 * null below two seeds. */
static cJSON *best_row(const cJSON *row, const char *label, bool *oom)
{
    const cJSON *avg = cJSON_GetObjectItemCaseSensitive(row, "average");
    const cJSON *flags = cJSON_GetObjectItemCaseSensitive(row, "flags"), *f;
    double mean = num_or_nan(avg, "value"), sd = num_or_nan(avg, "std");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(row, "baseline")) || !isfinite(mean)) {
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    double n = num_or_nan(row, "n_seeds");
    bool complete = true; /* every job of the row done: none unfinished, failed, lost, cancelled */
    cJSON_ArrayForEach(f, flags)
    {
        complete =
                complete && !(cJSON_IsString(f) && (strcmp(f->valuestring, "partial") == 0 ||
                                                    strcmp(f->valuestring, "failed_jobs") == 0 ||
                                                    strcmp(f->valuestring, "lost_jobs") == 0 ||
                                                    strcmp(f->valuestring, "cancelled_jobs") == 0));
    }
    if (!(n >= 2)) {
        sd = NAN;
    }
    if (o == NULL || !cJSON_AddStringToObject(o, "label", label != NULL ? label : "") ||
        !cJSON_AddNumberToObject(o, "mean", mean) ||
        !(isfinite(sd) ? cJSON_AddNumberToObject(o, "std", sd) : cJSON_AddNullToObject(o, "std")) ||
        !cJSON_AddNumberToObject(o, "n", isfinite(n) ? n : 0) ||
        !cJSON_AddBoolToObject(o, "complete", complete)) {
        cJSON_Delete(o);
        *oom = true;
        return NULL;
    }
    return o;
}

/* The ranked best rows of sweep_id (at most W_BEST_KEEP) into *out (owned). An aggregate that
 * cannot be computed (no accuracy task, ...) gives no rows and a warning. */
static cs_rc best_compute(cs_store *s, int64_t sweep_id, cJSON **out, cs_err *err)
{
    char ref[32];
    cs_store_results_req q = {.resamples = 0, .slim = true}; /* slim: a third of the memory */
    cJSON *agg = NULL, **v = NULL;
    cs_err e = {0};
    bool oom = false;
    size_t n = 0;
    snprintf(ref, sizeof ref, "%lld", (long long)sweep_id);
    *out = cJSON_CreateArray();
    if (*out == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "watch: best rows");
    }
    cs_rc rc = cs_store_results(s, ref, &q, &agg, &e);
    if (rc == CS_ENOMEM) {
        return cs_err_set(err, rc, 0, "watch: sweep %lld: %s", (long long)sweep_id, e.msg);
    }
    if (rc != CS_OK) {
        cs_log(CS_LOG_WARN, "watch: sweep %lld: no best rows: %s", (long long)sweep_id, e.msg);
        return CS_OK;
    }
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(agg, "rows");
    size_t cap = (size_t)cJSON_GetArraySize(rows), n_labels = 0, i = 0;
    char *common = NULL, **labels = NULL;
    v = cap ? cs_calloc_array(cap, sizeof *v) : NULL;
    oom = agg == NULL || (cap > 0 && v == NULL) ||
          cs_agg_short_labels(agg, &common, &labels, &n_labels, &e) != CS_OK;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        cJSON *b = oom ? NULL : best_row(row, i < n_labels ? labels[i] : NULL, &oom);
        if (b != NULL) {
            v[n++] = b;
        }
        i++;
    }
    cs_agg_labels_fini(common, labels, n_labels);
    qsort(v, n, sizeof *v, row_cmp);
    for (size_t k = 0; k < n; k++) {
        if (oom || k >= W_BEST_KEEP || !cJSON_AddItemToArray(*out, v[k])) {
            cJSON_Delete(v[k]);
            oom = oom || k < W_BEST_KEEP;
        }
    }
    free(v);
    cJSON_Delete(agg);
    return oom ? cs_err_set(err, CS_ENOMEM, 0, "watch: best rows") : CS_OK;
}

/* The best object of a sweep for the document (owned), from the cache, computing it first when
 * due (see slot_take); NULL in *out while no computation has finished (another thread's first). */
static cs_rc best_get(cs_watch *w, cs_store *s, int64_t sweep_id, const char *name,
                      const cs_store_counts *c, int64_t now, int top, cJSON **out, cs_err *err)
{
    cJSON *rows = NULL;
    int64_t jobs = (int64_t)(c->n[CS_JOB_DONE] + c->n[CS_JOB_CACHED]), at = now;
    cs_rc rc = CS_OK;
    *out = NULL;
    if (w == NULL) {
        rc = best_compute(s, sweep_id, &rows, err);
    } else {
        pthread_mutex_lock(&w->mu);
        wentry *e = entry_of(w, sweep_id);
        bool here = e != NULL && slot_take(w, &e->best, c, now, W_BEST_GAP_MS, &w->stats.best_runs);
        if (e != NULL && !here && !e->best.valid && w->th_started) {
            e = first_wait(w, sweep_id, true);
        }
        pthread_mutex_unlock(&w->mu);
        if (e == NULL) {
            return cs_err_set(err, CS_ENOMEM, 0, "watch cache");
        }
        int64_t t0 = cs_time_mono_ms();
        cJSON *fresh = NULL;
        if (here) {
            rc = best_compute(s, sweep_id, &fresh, err);
        }
        pthread_mutex_lock(&w->mu);
        if (here) {
            best_store(w, sweep_id, rc, &fresh, c, now, t0);
        }
        e = entry_of(w, sweep_id);
        if (e != NULL && e->rows != NULL) {
            rows = cJSON_Duplicate(e->rows, true);
            jobs = e->best_jobs;
            at = e->computed_ms;
            if (rows == NULL && rc == CS_OK) {
                rc = cs_err_set(err, CS_ENOMEM, 0, "watch: best rows");
            }
        }
        pthread_mutex_unlock(&w->mu);
        cJSON_Delete(fresh);
    }
    if (rc != CS_OK || rows == NULL) {
        cJSON_Delete(rows);
        return rc;
    }
    while (cJSON_GetArraySize(rows) > top) {
        cJSON_DeleteItemFromArray(rows, cJSON_GetArraySize(rows) - 1);
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddNumberToObject(o, "sweep_id", (double)sweep_id) ||
        !cJSON_AddStringToObject(o, "sweep", name) ||
        !cJSON_AddStringToObject(o, "source", "results") ||
        !cJSON_AddStringToObject(o, "metric", "average accuracy") ||
        !cJSON_AddNumberToObject(o, "computed_ms", (double)at) ||
        !cJSON_AddNumberToObject(o, "jobs", (double)jobs) ||
        !cJSON_AddItemToObject(o, "rows", rows)) {
        cJSON_Delete(o);
        cJSON_Delete(rows);
        return cs_err_set(err, CS_ENOMEM, 0, "watch: best rows");
    }
    *out = o;
    return CS_OK;
}

/* ---- the background thread: recomputations ----------------------------------------------------
 */

/* Takes the next wanted slot (under w->mu): its sweep, kind (false ETA, true best), counts and
 * the asking request's now; marks it busy. False when nothing is wanted. */
static bool bg_next(cs_watch *w, int64_t *id, bool *best, cs_store_counts *c, int64_t *now)
{
    for (size_t i = 0; i < w->n; i++) {
        slot *sl = w->v[i].eta.want ? &w->v[i].eta : w->v[i].best.want ? &w->v[i].best : NULL;
        if (sl == NULL) {
            continue;
        }
        *id = w->v[i].sweep_id;
        *best = sl == &w->v[i].best;
        *c = sl->want_counts;
        *now = sl->want_now;
        sl->want = false;
        sl->busy = true;
        if (*best) {
            w->stats.best_runs++;
        } else {
            w->stats.eta_runs++;
        }
        return true;
    }
    return false;
}

/* Computes every wanted slot with a read-only connection of its own. */
static void bg_round(cs_watch *w)
{
    cs_store *s = NULL;
    cs_err err = {0};
    int64_t id, now;
    bool best;
    cs_store_counts c;
    if (cs_store_open_ro(w->db, &s, &err) != CS_OK) {
        cs_log(CS_LOG_WARN, "watch: cannot read the database: %s", err.msg);
        pthread_mutex_lock(&w->mu);
        for (size_t i = 0; i < w->n; i++) {
            w->v[i].eta.want = w->v[i].best.want = false; /* asked again by the next request */
        }
        pthread_cond_broadcast(&w->done_cv);
        pthread_mutex_unlock(&w->mu);
        return;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->stop && bg_next(w, &id, &best, &c, &now)) {
        pthread_mutex_unlock(&w->mu);
        int64_t t0 = cs_time_mono_ms();
        wentry fresh = {0};
        cJSON *rows = NULL;
        cs_err e = {0};
        cs_rc rc = best ? best_compute(s, id, &rows, &e)
                        : eta_compute(s, id, c.n[CS_JOB_RUNNING], &fresh, &e);
        if (rc != CS_OK) {
            cs_log(CS_LOG_WARN, "watch: sweep %lld: %s", (long long)id, e.msg);
        }
        pthread_mutex_lock(&w->mu);
        if (best) {
            best_store(w, id, rc, &rows, &c, now, t0);
        } else {
            eta_store(w, id, rc, &fresh, &c, now, t0);
        }
        cJSON_Delete(rows);
    }
    pthread_mutex_unlock(&w->mu);
    cs_store_close(s);
}

static void *bg_main(void *arg)
{
    cs_watch *w = arg;
    /* The recomputations are for a display: they yield to calsweepd's dispatch (nice 19 on this
     * thread alone, Linux's per-thread nice), so a loaded coordinator hands out work first and
     * shows the best rows later. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) != 0) {
        cs_log(CS_LOG_DEBUG, "watch: cannot lower the cache thread's priority: %s",
               strerror(errno));
    }
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && !w->pending) {
            pthread_cond_wait(&w->cv, &w->mu);
        }
        if (w->stop) {
            break;
        }
        w->pending = false;
        pthread_mutex_unlock(&w->mu);
        bg_round(w);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- small JSON helpers ---------------------------------------------------------------------- */

static bool add_num(cJSON *o, const char *key, double v)
{
    return cJSON_AddNumberToObject(o, key, v) != NULL;
}

/* A string item of the first len bytes of text, cut before the first byte that is not valid
 * UTF-8 and then before max bytes without splitting a character; NULL when out of memory. */
static cJSON *cut_string(const char *text, size_t len, size_t max)
{
    size_t bad = len;
    if (!cs_utf8_valid(text, len, &bad)) {
        len = bad;
    }
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)text[len] & 0xC0u) == 0x80u) {
            len--;
        }
    }
    char *s = cs_strndup(text, len);
    cJSON *v = s ? cJSON_CreateString(s) : NULL;
    free(s);
    return v;
}

static bool add_cut(cJSON *o, const char *key, const char *text, size_t len, size_t max)
{
    cJSON *v = cut_string(text, len, max);
    if (v == NULL || !cJSON_AddItemToObject(o, key, v)) {
        cJSON_Delete(v);
        return false;
    }
    return true;
}

bool cs_watch_add_progress(cJSON *o, const char *key, const char *json)
{
    cJSON *p = json ? cJSON_Parse(json) : NULL;
    const cJSON *stage = cJSON_GetObjectItemCaseSensitive(p, "stage");
    const cJSON *detail = cJSON_GetObjectItemCaseSensitive(p, "detail");
    double stage_ms = num_or_nan(p, "stage_ms"), done = num_or_nan(p, "done");
    double total = num_or_nan(p, "total");
    bool ok;
    if (!cJSON_IsString(stage)) {
        cJSON_Delete(p);
        return cJSON_AddNullToObject(o, key) != NULL;
    }
    cJSON *v = cJSON_AddObjectToObject(o, key);
    ok = v != NULL && cJSON_AddStringToObject(v, "stage", stage->valuestring) &&
         cs_json_add_str_or_null(v, "detail",
                                 cJSON_IsString(detail) ? detail->valuestring : NULL) &&
         add_num(v, "done", isfinite(done) ? done : 0) &&
         add_num(v, "total", isfinite(total) ? total : 0) &&
         (isfinite(stage_ms) && stage_ms >= 1 ? add_num(v, "stage_ms", stage_ms)
                                              : cJSON_AddNullToObject(v, "stage_ms") != NULL);
    cJSON_Delete(p);
    return ok;
}

/* ---- sweeps ---------------------------------------------------------------------------------- */

typedef struct doc {
    cs_watch *w;
    cs_store *s;
    const cs_msg_watch *m;
    int64_t now;
    int top;
    cJSON *sweeps, *workers, *problems, *best;
} doc;

static cs_rc sweep_row(void *ctx, const cs_store_watch_sweep *sw, cs_err *err)
{
    doc *d = ctx;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToArray(d->sweeps, o) || !add_num(o, "id", (double)sw->id) ||
        !cJSON_AddStringToObject(o, "name", sw->name) ||
        !cJSON_AddStringToObject(o, "state", cs_sweep_state_name(sw->state)) ||
        !add_num(o, "priority", (double)sw->priority) ||
        !add_num(o, "created_ms", (double)sw->created) ||
        !add_num(o, "updated_ms", (double)sw->updated)) {
        return cs_err_set(err, CS_ENOMEM, 0, "watch: sweeps");
    }
    return CS_OK;
}

/* ---- the rate ---------------------------------------------------------------------------------
 */

/* At most this many finishing events are kept per sweep (8 MB): a sweep that finishes more jobs
 * in W_RATE_MS (1,700 a second for 10 minutes) shows a rate this long a window cannot hold. */
#define W_RATE_KEEP ((size_t)1 << 20)

/* The new events of one read, newest first. */
typedef struct fin_read {
    int64_t *t;
    size_t n, cap;
    int64_t last_id; /* the newest event's id (the first one read) */
} fin_read;

static cs_rc fin_add(void *ctx, int64_t id, int64_t time, cs_err *err)
{
    fin_read *r = ctx;
    if (r->n == 0) {
        r->last_id = id;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        int64_t *t = cap <= W_RATE_KEEP ? cs_realloc_array(r->t, cap, sizeof *t) : NULL;
        if (t == NULL) {
            return r->n >= W_RATE_KEEP ? CS_ECANCELED
                                       : cs_err_set(err, CS_ENOMEM, 0, "watch: the rate");
        }
        r->t = t;
        r->cap = cap;
    }
    r->t[r->n++] = time;
    return CS_OK;
}

/* The number of fin[] times at or after since (fin is in time order). */
static size_t fin_count(const wentry *e, int64_t since)
{
    size_t lo = e->fin_head, hi = e->fin_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e->fin[mid] < since) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return e->fin_n - lo;
}

/* Appends r's times (newest first) to e's, oldest first, and forgets those before the window
 * of the latest request (under w->mu). false: out of memory (e unchanged). */
static bool fin_merge(wentry *e, const fin_read *r, int64_t now)
{
    if (now > e->rate_now) {
        e->rate_now = now;
    }
    while (e->fin_head < e->fin_n && e->fin[e->fin_head] < e->rate_now - W_RATE_MS) {
        e->fin_head++;
    }
    if (e->fin_head > 0 && (e->fin_head * 2 >= e->fin_n || e->fin_n + r->n > e->fin_cap)) {
        memmove(e->fin, e->fin + e->fin_head, (e->fin_n - e->fin_head) * sizeof *e->fin);
        e->fin_n -= e->fin_head;
        e->fin_head = 0;
    }
    size_t keep = r->n < W_RATE_KEEP ? r->n : W_RATE_KEEP;
    if (e->fin_n + keep > W_RATE_KEEP) { /* the oldest go */
        size_t drop = e->fin_n + keep - W_RATE_KEEP;
        drop = drop < e->fin_n ? drop : e->fin_n;
        memmove(e->fin, e->fin + drop, (e->fin_n - drop) * sizeof *e->fin);
        e->fin_n -= drop;
    }
    if (e->fin_n + keep > e->fin_cap) {
        size_t cap = e->fin_cap ? e->fin_cap : 64;
        while (cap < e->fin_n + keep) {
            cap *= 2;
        }
        int64_t *f = cs_realloc_array(e->fin, cap, sizeof *f);
        if (f == NULL) {
            return false;
        }
        e->fin = f;
        e->fin_cap = cap;
    }
    for (size_t i = 0; i < keep; i++) {
        e->fin[e->fin_n++] = r->t[keep - 1 - i];
    }
    return true;
}

/* *n = the jobs of sweep_id that finished (done, failed, lost) in the window before now. With a
 * cache only the events after the last read are read (one request at a time; a request that
 * finds another reading counts what the cache holds); without one, the window's events. */
static cs_rc rate_get(cs_watch *w, cs_store *s, int64_t sweep_id, int64_t now, size_t *n,
                      cs_err *err)
{
    fin_read r = {0};
    int64_t after = 0;
    bool reader = true;
    cs_rc rc;
    *n = 0;
    if (w != NULL) {
        pthread_mutex_lock(&w->mu);
        wentry *e = entry_of(w, sweep_id);
        if (e != NULL) {
            reader = !e->rate_busy;
            e->rate_busy = true;
            after = e->rate_last_id;
            *n = reader ? 0 : fin_count(e, now - W_RATE_MS);
        }
        pthread_mutex_unlock(&w->mu);
        if (e == NULL) {
            return cs_err_set(err, CS_ENOMEM, 0, "watch cache");
        }
        if (!reader) {
            return CS_OK;
        }
    }
    rc = cs_store_watch_finishes(s, sweep_id, after, now - W_RATE_MS, fin_add, &r, err);
    if (rc == CS_ECANCELED) { /* more than the cache keeps: those read are the newest */
        rc = CS_OK;
    }
    if (w == NULL) {
        *n = r.n;
        free(r.t);
        return rc;
    }
    pthread_mutex_lock(&w->mu);
    wentry *e = entry_of(w, sweep_id); /* the table may have moved meanwhile */
    if (rc == CS_OK && e != NULL && !fin_merge(e, &r, now)) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "watch: the rate");
    }
    if (e != NULL) {
        if (rc == CS_OK && r.n > 0) {
            e->rate_last_id = r.last_id;
        }
        e->rate_busy = false;
        *n = fin_count(e, now - W_RATE_MS);
    }
    pthread_mutex_unlock(&w->mu);
    free(r.t);
    return rc;
}

/* The job counts of sweep_id: from the cache when read less than W_COUNTS_MS before now. */
static cs_rc counts_get(cs_watch *w, cs_store *s, int64_t sweep_id, int64_t now, cs_store_counts *c,
                        cs_err *err)
{
    if (w != NULL) {
        pthread_mutex_lock(&w->mu);
        wentry *e = entry_of(w, sweep_id);
        bool fresh = e != NULL && e->counts_valid && now >= e->counts_at &&
                     now - e->counts_at < W_COUNTS_MS;
        if (fresh) {
            *c = e->counts;
        }
        pthread_mutex_unlock(&w->mu);
        if (fresh) {
            return CS_OK;
        }
    }
    cs_rc rc = cs_store_count(s, sweep_id, c, err);
    if (rc == CS_OK && w != NULL) {
        pthread_mutex_lock(&w->mu);
        wentry *e = entry_of(w, sweep_id);
        if (e != NULL) {
            e->counts = *c;
            e->counts_at = now;
            e->counts_valid = true;
        }
        pthread_mutex_unlock(&w->mu);
    }
    return rc;
}

/* Completes sweep object o: counts, rate, average and ETA; and its best object. */
static cs_rc sweep_fill(doc *d, cJSON *o, cs_err *err)
{
    int64_t id = (int64_t)num_or_nan(o, "id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    cs_store_counts c;
    size_t finished = 0;
    wentry eta = {0};
    cJSON *best = NULL;
    cs_rc rc = counts_get(d->w, d->s, id, d->now, &c, err);
    if (rc == CS_OK) {
        rc = rate_get(d->w, d->s, id, d->now, &finished, err);
    }
    if (rc == CS_OK) {
        rc = eta_get(d->w, d->s, id, &c, d->now, &eta, err);
    }
    if (rc == CS_OK && c.n[CS_JOB_DONE] + c.n[CS_JOB_CACHED] > 0) {
        rc = best_get(d->w, d->s, id, name->valuestring, &c, d->now, d->top, &best, err);
    }
    if (rc != CS_OK) {
        return rc;
    }
    if (best != NULL && !cJSON_AddItemToArray(d->best, best)) {
        cJSON_Delete(best);
        return cs_err_set(err, CS_ENOMEM, 0, "watch: best");
    }
    cJSON *counts = cJSON_AddObjectToObject(o, "counts");
    bool ok = counts != NULL && add_num(o, "total", (double)c.total) &&
              add_num(o, "rate_per_h", (double)finished * (3600000.0 / (double)W_RATE_MS)) &&
              add_num(o, "rate_window_s", (double)(W_RATE_MS / 1000)) &&
              (eta.has_avg ? add_num(o, "avg_job_s", eta.avg_s)
                           : cJSON_AddNullToObject(o, "avg_job_s") != NULL) &&
              (eta.has_eta ? add_num(o, "eta_s", eta.eta_s)
                           : cJSON_AddNullToObject(o, "eta_s") != NULL);
    for (int st = 0; ok && st < CS_JOB_NSTATES; st++) {
        ok = add_num(counts, cs_job_state_name((cs_job_state)st), (double)c.n[st]);
    }
    return ok ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "watch: sweeps");
}

/* ---- workers --------------------------------------------------------------------------------- */

/* "gpu0,gpu1" from the capabilities' gpus, "cpu" without GPUs; NULL without capabilities. */
static bool add_slot(cJSON *o, const char *caps)
{
    cJSON *c = caps ? cJSON_Parse(caps) : NULL;
    const cJSON *gpus = cJSON_GetObjectItemCaseSensitive(c, "gpus"), *g;
    char text[256] = "";
    size_t n = 0;
    cJSON_ArrayForEach(g, gpus)
    {
        double idx = num_or_nan(g, "index");
        if (isfinite(idx) && n < sizeof text) {
            int k = snprintf(text + n, sizeof text - n, "%sgpu%lld", n ? "," : "", (long long)idx);
            n += k > 0 ? (size_t)k : 0;
        }
    }
    bool ok = c == NULL ? cJSON_AddNullToObject(o, "slot") != NULL
                        : cJSON_AddStringToObject(o, "slot", n ? text : "cpu") != NULL;
    cJSON_Delete(c);
    return ok;
}

static bool add_worker_job(cJSON *o, const cs_store_watch_worker *r)
{
    if (r->job_id == 0) {
        return cJSON_AddNullToObject(o, "job") != NULL;
    }
    cJSON *j = cJSON_AddObjectToObject(o, "job");
    return j != NULL && add_num(j, "id", (double)r->job_id) &&
           add_num(j, "sweep_id", (double)r->sweep_id) &&
           cJSON_AddStringToObject(j, "sweep", r->sweep ? r->sweep : "") &&
           cJSON_AddStringToObject(j, "key", r->key ? r->key : "") &&
           add_num(j, "attempt", (double)r->attempt) && cs_json_add_parsed(j, "axes", r->axes) &&
           add_num(j, "started_ms", (double)r->started) &&
           add_num(j, "heartbeat_at_ms", (double)r->heartbeat_at) &&
           cs_watch_add_progress(j, "progress", r->progress);
}

static cs_rc worker_row(void *ctx, const cs_store_watch_worker *r, cs_err *err)
{
    doc *d = ctx;
    const char *state = r->job_id                             ? "busy"
                        : r->bye_at != 0                      ? "gone"
                        : r->last_seen >= d->now - W_ALIVE_MS ? "idle"
                                                              : "lost";
    int64_t since = r->job_id ? r->heartbeat_at : r->last_seen;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToArray(d->workers, o) ||
        !cJSON_AddStringToObject(o, "name", r->name) ||
        !cs_json_add_str_or_null(o, "host", r->host) || !add_slot(o, r->capabilities) ||
        !cJSON_AddStringToObject(o, "state", state) ||
        !add_num(o, "last_seen_ms", (double)r->last_seen) ||
        !add_num(o, "heartbeat_age_ms", (double)(d->now - since)) || !add_worker_job(o, r)) {
        return cs_err_set(err, CS_ENOMEM, 0, "watch: workers");
    }
    return CS_OK;
}

/* ---- problems -------------------------------------------------------------------------------- */

/* The FAIL kind that begins last_error ("oom: ..."), "lost" for a lost job, else NULL. */
static const char *problem_kind(const cs_store_watch_problem *p)
{
    if (strcmp(p->state, "lost") == 0) {
        return "lost";
    }
    const char *colon = p->last_error ? strstr(p->last_error, ": ") : NULL;
    char name[32];
    if (colon == NULL || (size_t)(colon - p->last_error) >= sizeof name) {
        return NULL;
    }
    memcpy(name, p->last_error, (size_t)(colon - p->last_error));
    name[colon - p->last_error] = '\0';
    cs_fail_kind k = cs_fail_kind_from_name(name);
    return k == CS_FAIL_NONE ? NULL : cs_fail_kind_name(k);
}

/* The last W_LOG_LINES non-empty lines of the log tail: the part of last_error after the FAIL
 * marker, else the last heartbeat's log_tail. */
static bool add_log(cJSON *o, const cs_store_watch_problem *p)
{
    const char *mark = p->last_error ? strstr(p->last_error, W_LOG_MARK) : NULL;
    cJSON *prog = NULL, *log = cJSON_AddArrayToObject(o, "log");
    const char *tail = NULL;
    const char *ends[W_LOG_LINES], *begins[W_LOG_LINES];
    size_t n = 0;
    bool ok = log != NULL;
    if (mark != NULL) {
        tail = mark + strlen(W_LOG_MARK);
    } else if (p->progress != NULL) {
        prog = cJSON_Parse(p->progress);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(prog, "log_tail");
        tail = cJSON_IsString(t) ? t->valuestring : NULL;
    }
    /* Walk the lines backwards, keeping the last non-empty ones. */
    const char *end = tail ? tail + strlen(tail) : NULL;
    while (tail != NULL && end > tail && n < W_LOG_LINES) {
        const char *b = end;
        while (b > tail && b[-1] != '\n') {
            b--;
        }
        const char *e = end;
        while (e > b && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }
        if (e > b) {
            begins[n] = b;
            ends[n] = e;
            n++;
        }
        end = b > tail ? b - 1 : tail;
    }
    for (size_t i = n; ok && i-- > 0;) {
        cJSON *s = cut_string(begins[i], (size_t)(ends[i] - begins[i]), W_LINE_MAX);
        ok = s != NULL && cJSON_AddItemToArray(log, s);
        if (!ok) {
            cJSON_Delete(s);
        }
    }
    cJSON_Delete(prog);
    return ok;
}

static cs_rc problem_row(void *ctx, const cs_store_watch_problem *p, cs_err *err)
{
    doc *d = ctx;
    const char *e = p->last_error ? p->last_error : "";
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToArray(d->problems, o) || !add_num(o, "id", (double)p->id) ||
        !add_num(o, "sweep_id", (double)p->sweep_id) ||
        !cJSON_AddStringToObject(o, "sweep", p->sweep) ||
        !cJSON_AddStringToObject(o, "key", p->key) ||
        !cJSON_AddStringToObject(o, "state", p->state) ||
        !add_num(o, "attempt", (double)p->attempt) ||
        !add_num(o, "max_attempts", (double)p->max_attempts) ||
        !cs_json_add_parsed(o, "axes", p->axes) ||
        !cs_json_add_str_or_null(o, "kind", problem_kind(p)) ||
        !add_cut(o, "error", e, strcspn(e, "\n"), W_ERROR_MAX) || !add_log(o, p) ||
        !add_num(o, "updated_ms", (double)p->updated)) {
        return cs_err_set(err, CS_ENOMEM, 0, "watch: problems");
    }
    return CS_OK;
}

/* ---- WATCH ----------------------------------------------------------------------------------- */

/* Takes root (deleted here) and makes it the canonical data of an OK reply. */
static cs_rc reply_ok(cs_msg *rep, cJSON *root, const char *what, cs_err *err)
{
    char *text = NULL;
    size_t len = 0;
    cs_rc rc = cs_canon_string(root, &text, &len, err);
    cJSON_Delete(root);
    if (rc != CS_OK) {
        cs_err_prefix(err, "%s", what);
        return rc;
    }
    cs_msg_init(rep, CS_MSG_OK);
    rep->ok.data = text;
    return CS_OK;
}

static cs_rc reply_error(cs_msg *rep, cs_rc code, const char *message, cs_err *err)
{
    cs_msg_init(rep, CS_MSG_ERROR);
    rep->error.code = code;
    rep->error.message = cs_strndup(message, strnlen(message, CS_PROTO_MAX_TEXT - 1));
    return rep->error.message ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "watch: reply");
}

/* The document's parts, in order; each appends to d. */
static cs_rc watch_build(doc *d, int64_t sweep_id, cJSON *root, cs_err *err)
{
    int64_t total = 0;
    cs_rc rc = cs_store_watch_sweeps(d->s, sweep_id, sweep_row, d, err);
    cJSON *o;
    cJSON_ArrayForEach(o, d->sweeps)
    {
        if (rc == CS_OK) {
            rc = sweep_fill(d, o, err);
        }
    }
    if (rc == CS_OK) {
        rc = cs_store_watch_workers(d->s, d->now - W_LIST_MS, worker_row, d, err);
    }
    if (rc == CS_OK) {
        int64_t limit = d->m->problems > 0 ? d->m->problems : 20;
        rc = cs_store_watch_problems(d->s, sweep_id, limit, &total, problem_row, d, err);
    }
    if (rc == CS_OK && !add_num(root, "problems_total", (double)total)) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "watch: document");
    }
    return rc;
}

cs_rc cs_watch_handle(cs_watch *w, cs_store *s, const cs_msg_watch *m, int64_t now, cs_msg *rep,
                      cs_err *err)
{
    int64_t lease = w ? w->lease_ms : CS_WATCH_LEASE_MS, sweep_id = 0;
    cJSON *root = cJSON_CreateObject();
    doc d = {.w = w, .s = s, .m = m, .now = now, .top = m->top > 0 ? (int)m->top : 5};
    cs_err e = {0};
    cs_rc rc = CS_OK;
    memset(rep, 0, sizeof *rep);
    if (root == NULL || !add_num(root, "now_ms", (double)now) ||
        !add_num(root, "lease_ms", (double)lease) ||
        !add_num(root, "heartbeat_ms", (double)(lease / 3)) ||
        (d.sweeps = cJSON_AddArrayToObject(root, "sweeps")) == NULL ||
        (d.workers = cJSON_AddArrayToObject(root, "workers")) == NULL ||
        (d.problems = cJSON_AddArrayToObject(root, "problems")) == NULL ||
        (d.best = cJSON_AddArrayToObject(root, "best")) == NULL) {
        cJSON_Delete(root);
        return cs_err_set(err, CS_ENOMEM, 0, "watch: document");
    }
    if (m->sweep != NULL) {
        rc = cs_store_sweep_resolve(s, m->sweep, &sweep_id, &e);
        if (rc == CS_ENOENT) {
            cJSON_Delete(root);
            return reply_error(rep, rc, e.msg, err);
        }
    }
    if (rc == CS_OK) {
        rc = watch_build(&d, sweep_id, root, &e);
    }
    if (rc != CS_OK) {
        cJSON_Delete(root);
        return cs_err_set(err, rc, 0, "watch: %s", e.msg);
    }
    if (w != NULL) {
        pthread_mutex_lock(&w->mu);
        w->stats.requests++;
        pthread_mutex_unlock(&w->mu);
    }
    return reply_ok(rep, root, "watch", err);
}

/* ---- JOB_INFO -------------------------------------------------------------------------------- */

static cs_rc attempt_row(void *ctx, const cs_store_attempt_row *a, cs_err *err)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && cJSON_AddItemToArray(ctx, o);
    ok = ok && add_num(o, "n", (double)a->n) && cJSON_AddStringToObject(o, "worker", a->worker) &&
         cs_json_add_str_or_null(o, "host", a->host) &&
         add_num(o, "started_ms", (double)a->started) &&
         (a->ended ? add_num(o, "ended_ms", (double)a->ended)
                   : cJSON_AddNullToObject(o, "ended_ms") != NULL) &&
         cs_json_add_str_or_null(o, "outcome", a->outcome) &&
         (a->has_exit_status ? add_num(o, "exit_status", (double)a->exit_status)
                             : cJSON_AddNullToObject(o, "exit_status") != NULL) &&
         (a->signal ? add_num(o, "signal", (double)a->signal)
                    : cJSON_AddNullToObject(o, "signal") != NULL) &&
         cs_json_add_str_or_null(o, "error", a->error) &&
         cs_json_add_str_or_null(o, "log_path", a->log_path);
    return ok ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "job info: attempts");
}

/* The shell lines that write the job's config out and run it on one machine, typed in the folder
 * a worker would have been started in: the config's relative paths resolve against
 * CALSWEEP_BASE_DIR, which is that folder ($OLDPWD after the cd) unless it is set already. */
static cs_rc add_reproduce(cJSON *o, const cs_store_job_info *j, cs_err *err)
{
    cJSON *cfg = j->config ? cJSON_Parse(j->config) : NULL;
    char *pretty = cfg ? cJSON_Print(cfg) : NULL;
    cs_buf b;
    cs_buf_init(&b);
    cs_rc rc = cs_buf_printf(&b,
                             "mkdir job-%lld && cd job-%lld && cat > job.json <<'EOF' && "
                             "CALSWEEP_BASE_DIR=\"${CALSWEEP_BASE_DIR:-$OLDPWD}\" calsweep-run "
                             "job.json\n%s\nEOF\n",
                             (long long)j->id, (long long)j->id, pretty ? pretty : "{}");
    free(pretty);
    cJSON_Delete(cfg);
    if (rc == CS_OK && cJSON_AddStringToObject(o, "reproduce", b.data ? b.data : "") == NULL) {
        rc = CS_ENOMEM;
    }
    cs_buf_fini(&b);
    return rc == CS_OK ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "job info: reproduce");
}

cs_rc cs_watch_job_info(cs_store *s, const cs_msg_job_info *m, cs_msg *rep, cs_err *err)
{
    cs_store_job_info j;
    cs_err e = {0};
    cJSON *root = NULL, *attempts = NULL;
    memset(rep, 0, sizeof *rep);
    cs_rc rc = cs_store_job_info_get(s, m->job_id, &j, &e);
    if (rc == CS_ENOENT) {
        return reply_error(rep, rc, e.msg, err);
    }
    if (rc != CS_OK) {
        return cs_err_set(err, rc, 0, "job info: %s", e.msg);
    }
    root = cJSON_CreateObject();
    bool ok = root != NULL && add_num(root, "id", (double)j.id) &&
              add_num(root, "sweep_id", (double)j.sweep_id) &&
              cJSON_AddStringToObject(root, "sweep", j.sweep ? j.sweep : "") &&
              cJSON_AddStringToObject(root, "key", j.key) &&
              cJSON_AddStringToObject(root, "state", j.state ? j.state : "") &&
              add_num(root, "attempt", (double)j.attempt) &&
              add_num(root, "max_attempts", (double)j.max_attempts) &&
              cs_json_add_parsed(root, "axes", j.axes) &&
              cs_json_add_parsed(root, "config", j.config) &&
              cs_json_add_parsed(root, "progress", j.progress) &&
              cs_json_add_str_or_null(root, "last_error", j.last_error) &&
              add_num(root, "created_ms", (double)j.created) &&
              add_num(root, "updated_ms", (double)j.updated) &&
              (attempts = cJSON_AddArrayToObject(root, "attempts")) != NULL;
    rc = ok ? cs_store_attempt_list(s, j.id, attempt_row, attempts, &e)
            : cs_err_set(&e, CS_ENOMEM, 0, "job info: reply");
    if (rc == CS_OK) {
        rc = add_reproduce(root, &j, &e);
    }
    cs_store_job_info_fini(&j);
    if (rc != CS_OK) {
        cJSON_Delete(root);
        return cs_err_set(err, rc, 0, "job info %lld: %s", (long long)m->job_id, e.msg);
    }
    return reply_ok(rep, root, "job info", err);
}
