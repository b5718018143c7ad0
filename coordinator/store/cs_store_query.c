/* cs_store_query.c - control (cancel, pause, resume, retry) and the queries of the store: counts,
 * sweeps, jobs, the cache, and the control socket's reads (see cs_store.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_store_int.h"

/* ---- control -----------------------------------------------------------------------------------
 */

/* CS_ENOENT when the filter names a sweep or a job that does not exist. */
static cs_rc check_filter(cs_store *s, const cs_store_filter *f, cs_sweep_state *sweep_st,
                          cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = CS_OK;
    int src;
    if (f->sweep_id) {
        rc = st_sweep_state(s, f->sweep_id, sweep_st, err);
    }
    if (rc == CS_OK && f->job_id) {
        rc = st_stmt(s, S_JOB_EXISTS, &st, err);
        if (rc != CS_OK) {
            return rc;
        }
        sqlite3_bind_int64(st, 1, f->job_id);
        src = sqlite3_step(st);
        if (src == SQLITE_DONE) {
            rc = cs_err_set(err, CS_ENOENT, 0, "store: no job %lld", (long long)f->job_id);
        } else if (src != SQLITE_ROW) {
            rc = st_err(s->db, src, "read job", err);
        }
        st_rel(st);
    }
    return rc;
}

static void bind_filter(sqlite3_stmt *st, const cs_store_filter *f, unsigned mask)
{
    sqlite3_bind_int64(st, 1, f->sweep_id);
    sqlite3_bind_int64(st, 2, f->job_id);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)mask);
}

cs_rc cs_store_cancel(cs_store *s, const cs_store_filter *f, const char *why, int64_t now,
                      cs_store_cancel_counts *counts, cs_err *err)
{
    st_op op;
    cs_store_cancel_counts c = {0};
    cs_sweep_state sst = CS_SWEEP_ACTIVE;
    sqlite3_stmt *st = NULL;
    const unsigned dflt = CS_JOB_MASK(CS_JOB_QUEUED) | CS_JOB_MASK(CS_JOB_RETRY_WAIT) |
                          CS_JOB_MASK(CS_JOB_RUNNING);
    unsigned mask;
    const char *reason = why && *why ? why : "cancelled";
    cs_rc rc;

    mask = f && f->states ? f->states : dflt;
    rc = st_enter(&op, s, ST_WRITE, !f ? "cancel: no filter" : NULL, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = check_filter(s, f, &sst, err);
    if (rc == CS_OK) {
        rc = st_stmt(s, S_CANCEL_WAITING, &st, err);
    }
    if (rc == CS_OK) {
        bind_filter(st, f, mask);
        sqlite3_bind_int64(st, 4, now);
        st_bind_text(st, 5, reason);
        rc = st_run(s, st, "cancel jobs", err);
        c.cancelled = rc == CS_OK ? (size_t)sqlite3_changes(s->db) : 0;
    }
    if (rc == CS_OK) {
        rc = st_stmt(s, S_CANCEL_RUNNING, &st, err);
    }
    if (rc == CS_OK) {
        bind_filter(st, f, mask);
        st_bind_text(st, 5, reason);
        rc = st_run(s, st, "signal running jobs", err);
        c.signalled = rc == CS_OK ? (size_t)sqlite3_changes(s->db) : 0;
    }
    if (rc == CS_OK && f->sweep_id && !f->job_id && !f->states && sst != CS_SWEEP_CANCELLED) {
        rc = st_sweep_set_state(s, f->sweep_id, cs_sweep_state_name(sst), "cancelled", reason, now,
                                NULL, err);
    }
    if (rc == CS_OK) {
        rc = st_settle_all(s, now, err);
    }
    rc = st_leave(&op, rc, err);
    if (rc == CS_OK && counts) {
        *counts = c;
    }
    return rc;
}

cs_rc cs_store_pause(cs_store *s, int64_t sweep_id, int64_t now, cs_err *err)
{
    st_op op;
    cs_sweep_state st = CS_SWEEP_ACTIVE;
    cs_rc rc = st_enter(&op, s, ST_WRITE, NULL, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = st_sweep_state(s, sweep_id, &st, err);
    if (rc == CS_OK && (st == CS_SWEEP_CANCELLED || st == CS_SWEEP_DONE)) {
        rc = cs_err_set(err, CS_ESTATE, 0, "store: cannot pause sweep %lld: it is %s",
                        (long long)sweep_id, cs_sweep_state_name(st));
    }
    if (rc == CS_OK && st == CS_SWEEP_ACTIVE) {
        rc = st_sweep_set_state(s, sweep_id, "active", "paused", "paused", now, NULL, err);
    }
    return st_leave(&op, rc, err);
}

cs_rc cs_store_resume(cs_store *s, int64_t sweep_id, int64_t now, cs_err *err)
{
    st_op op;
    cs_sweep_state st = CS_SWEEP_ACTIVE;
    cs_rc rc = st_enter(&op, s, ST_WRITE, NULL, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = st_sweep_state(s, sweep_id, &st, err);
    if (rc == CS_OK && st != CS_SWEEP_PAUSED) {
        rc = cs_err_set(err, CS_ESTATE, 0, "store: cannot resume sweep %lld: it is %s",
                        (long long)sweep_id, cs_sweep_state_name(st));
    }
    if (rc == CS_OK) {
        rc = st_sweep_set_state(s, sweep_id, "paused", "active", "resumed", now, NULL, err);
    }
    if (rc == CS_OK) {
        rc = st_settle_one(s, sweep_id, now, err);
    }
    return st_leave(&op, rc, err);
}

cs_rc cs_store_retry(cs_store *s, const cs_store_filter *f, int64_t now, size_t *n, cs_err *err)
{
    st_op op;
    const unsigned allowed = CS_JOB_MASK(CS_JOB_FAILED) | CS_JOB_MASK(CS_JOB_LOST);
    cs_sweep_state sst = CS_SWEEP_ACTIVE;
    sqlite3_stmt *st = NULL;
    size_t moved = 0;
    unsigned mask;
    cs_rc rc;

    mask = f && f->states ? f->states : allowed;
    rc = st_enter(&op, s, ST_WRITE,
                  !f                ? "retry: no filter"
                  : mask & ~allowed ? "retry: only failed and lost jobs can be retried"
                                    : NULL,
                  err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = check_filter(s, f, &sst, err);
    if (rc == CS_OK) {
        rc = st_stmt(s, S_RETRY, &st, err);
    }
    if (rc == CS_OK) {
        bind_filter(st, f, mask);
        sqlite3_bind_int64(st, 4, now);
        rc = st_run(s, st, "retry jobs", err);
        moved = rc == CS_OK ? (size_t)sqlite3_changes(s->db) : 0;
    }
    if (rc == CS_OK && moved > 0) {
        rc = st_reopen_sweeps(s, "retry", now, err);
    }
    rc = st_leave(&op, rc, err);
    if (rc == CS_OK && n) {
        *n = moved;
    }
    return rc;
}

/* ---- queries ------------------------------------------------------------------------------------
 */

cs_rc cs_store_count(cs_store *s, int64_t sweep_id, cs_store_counts *out, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    int src;
    cs_rc rc = st_query(s, sweep_id ? S_COUNT_SWEEP : S_COUNT_ALL, &st, err);
    memset(out, 0, sizeof(*out));
    if (rc != CS_OK) {
        return rc;
    }
    if (sweep_id) {
        sqlite3_bind_int64(st, 1, sweep_id);
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        size_t k = (size_t)sqlite3_column_int64(st, 1);
        for (unsigned i = 0; i < CS_JOB_NSTATES; i++) {
            if (name && strcmp(name, cs_job_state_name((cs_job_state)i)) == 0) {
                out->n[i] += k;
            }
        }
        out->total += k;
    }
    if (src != SQLITE_DONE) {
        rc = st_err(s->db, src, "count jobs", err);
    }
    st_rel(st);
    return rc;
}

cs_rc cs_store_sweep_find(cs_store *s, const char *name, int64_t *id, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    int src;
    cs_rc rc = st_query(s, S_SWEEP_LIVE, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    st_bind_text(st, 1, name);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: no live sweep named '%s'",
                        name ? name : "(null)");
    } else {
        rc = st_err(s->db, src, "find sweep", err);
    }
    st_rel(st);
    return rc;
}

static void sweep_info_from_row(sqlite3_stmt *st, cs_store_sweep_info *o)
{
    memset(o, 0, sizeof(*o));
    o->id = sqlite3_column_int64(st, 0);
    st_copy_text(o->name, sizeof(o->name), sqlite3_column_text(st, 1));
    st_copy_text(o->spec_hash, sizeof(o->spec_hash), sqlite3_column_text(st, 2));
    o->state = st_sweep_state_of((const char *)sqlite3_column_text(st, 3));
    o->policy.max_attempts = sqlite3_column_int(st, 4);
    o->policy.backoff_base_s = (double)sqlite3_column_int64(st, 5) / 1000.0;
    o->policy.backoff_max_s = (double)sqlite3_column_int64(st, 6) / 1000.0;
    o->policy.timeout_s = sqlite3_column_int64(st, 7) / 1000;
    o->policy.priority = sqlite3_column_int(st, 8);
    o->policy.max_running = sqlite3_column_int(st, 9);
    o->policy.stop_on_failure = sqlite3_column_text(st, 10) &&
                                strcmp((const char *)sqlite3_column_text(st, 10), "stop") == 0;
    o->created = sqlite3_column_int64(st, 11);
}

cs_rc cs_store_sweep_get(cs_store *s, int64_t id, cs_store_sweep_info *out, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    int src;
    cs_rc rc = st_query(s, S_SWEEP_GET, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        sweep_info_from_row(st, out);
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: no sweep %lld", (long long)id);
    } else {
        rc = st_err(s->db, src, "read sweep", err);
    }
    st_rel(st);
    if (rc == CS_OK) {
        rc = cs_store_count(s, id, &out->counts, err);
    }
    return rc;
}

/* Calls row for every row of the bound statement st, stopping at a non-OK return (which it
 * returns), then resets st. what names the query in an SQLite error. */
typedef cs_rc (*row_fn)(cs_store *s, sqlite3_stmt *st, void *ctx, cs_err *err);
static cs_rc each_row(cs_store *s, sqlite3_stmt *st, row_fn row, void *ctx, const char *what,
                      cs_err *err)
{
    cs_rc rc = CS_OK;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        rc = row(s, st, ctx, err);
        if (rc != CS_OK) {
            break;
        }
    }
    if (rc == CS_OK && src != SQLITE_DONE) {
        rc = st_err(s->db, src, what, err);
    }
    st_rel(st);
    return rc;
}

typedef struct sweep_cb {
    cs_store_sweep_fn fn;
    void *ctx;
} sweep_cb;

static cs_rc sweep_row(cs_store *s, sqlite3_stmt *st, void *ctx, cs_err *err)
{
    const sweep_cb *cb = ctx;
    cs_store_sweep_info info;
    cs_rc rc;
    sweep_info_from_row(st, &info);
    rc = cs_store_count(s, info.id, &info.counts, err);
    return rc == CS_OK ? cb->fn(cb->ctx, &info, err) : rc;
}

cs_rc cs_store_sweep_list(cs_store *s, cs_store_sweep_fn fn, void *ctx, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    sweep_cb cb = {fn, ctx};
    cs_rc rc = st_query(s, S_SWEEP_LIST, &st, err);
    return rc == CS_OK ? each_row(s, st, sweep_row, &cb, "list sweeps", err) : rc;
}

void cs_store_job_fini(cs_store_job *j)
{
    if (j) {
        free(j->config);
        free(j->axes);
        free(j->worker);
        free(j->last_error);
        memset(j, 0, sizeof(*j));
    }
}

cs_rc cs_store_job_get(cs_store *s, int64_t id, cs_store_job *out, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    char *cfg = NULL, *cfg_raw = NULL, *axs = NULL, *axes_raw = NULL;
    bool oom = false;
    int src;
    cs_rc rc = st_query(s, S_JOB_GET, &st, err);
    memset(out, 0, sizeof(*out));
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        out->sweep_id = sqlite3_column_int64(st, 1);
        st_copy_text(out->key, sizeof(out->key), sqlite3_column_text(st, 2));
        out->state = st_job_state_of((const char *)sqlite3_column_text(st, 3));
        out->priority = sqlite3_column_int(st, 4);
        out->attempt = sqlite3_column_int(st, 5);
        out->max_attempts = sqlite3_column_int(st, 6);
        out->lease_until = sqlite3_column_int64(st, 7);
        out->not_before = sqlite3_column_int64(st, 8);
        out->result_id = sqlite3_column_int64(st, 9);
        out->cancel_requested = sqlite3_column_int(st, 10) != 0;
        out->baseline = sqlite3_column_int(st, 11) != 0;
        cfg = st_dup_col(st, 12, &oom);
        cfg_raw = st_dup_col(st, 13, &oom);
        axs = st_dup_col(st, 14, &oom);
        axes_raw = st_dup_col(st, 15, &oom);
        out->worker = st_dup_col(st, 16, &oom);
        out->last_error = st_dup_col(st, 17, &oom);
        if (oom) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "store: job %lld: out of memory", (long long)id);
        }
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: no job %lld", (long long)id);
    } else {
        rc = st_err(s->db, src, "read job", err);
    }
    st_rel(st);
    if (rc == CS_OK) {
        rc = st_rebuild(s, cfg, cfg_raw, &out->config, err);
        if (rc == CS_OK) {
            rc = st_rebuild(s, axs, axes_raw, &out->axes, err);
        }
        if (rc != CS_OK) {
            cs_err_prefix(err, "job %lld", (long long)id);
        }
    }
    if (rc != CS_OK) {
        cs_store_job_fini(out);
    }
    free(cfg);
    free(cfg_raw);
    free(axs);
    free(axes_raw);
    return rc;
}

cs_rc cs_store_key_cached(cs_store *s, const char *key, bool *cached, cs_err *err)
{
    int64_t id = 0;
    cs_rc rc = st_lookup_cache(s, key, &id, err);
    *cached = rc == CS_OK && id != 0;
    return rc;
}

cs_rc cs_store_count_cached(cs_store *s, cs_cell_next_fn next, void *ctx, size_t *total,
                            size_t *cached, cs_err *err)
{
    size_t n = 0, hit = 0;
    cs_cell cell;
    cs_rc rc;
    for (;;) {
        int64_t id = 0;
        memset(&cell, 0, sizeof(cell));
        rc = next(ctx, &cell, err);
        if (rc == CS_ENOENT) {
            cs_err_clear(err);
            rc = CS_OK;
            break;
        }
        if (rc != CS_OK) {
            break;
        }
        n++;
        rc = st_lookup_cache(s, cell.key, &id, err);
        if (rc != CS_OK) {
            break;
        }
        hit += id != 0;
    }
    if (rc == CS_OK) {
        *total = n;
        *cached = hit;
    }
    return rc;
}

/* ---- the control socket's reads ---------------------------------------------------------------
 */

cs_rc cs_store_worker_count_active(cs_store *s, int64_t active_since, size_t *n, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    int64_t v = 0;
    bool found = false;
    cs_rc rc = st_query(s, S_WORKERS_ACTIVE, &st, err);
    *n = 0;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, active_since);
    rc = st_step_int64(s, st, &v, &found, "count workers", err);
    *n = rc == CS_OK ? (size_t)v : 0;
    return rc;
}

typedef struct worker_cb {
    cs_store_worker_fn fn;
    void *ctx;
} worker_cb;

static cs_rc worker_row(cs_store *s, sqlite3_stmt *st, void *ctx, cs_err *err)
{
    const worker_cb *cb = ctx;
    cs_store_worker_row w = {
            .name = (const char *)sqlite3_column_text(st, 0),
            .host = (const char *)sqlite3_column_text(st, 1),
            .last_seen = sqlite3_column_int64(st, 2),
            .capabilities = (const char *)sqlite3_column_text(st, 3),
            .job_id = sqlite3_column_int64(st, 4),
            .active = sqlite3_column_int(st, 5) != 0,
            .progress = (const char *)sqlite3_column_text(st, 6),
            .heartbeat_at = sqlite3_column_int64(st, 7),
    };
    (void)s;
    return cb->fn(cb->ctx, &w, err);
}

cs_rc cs_store_worker_list(cs_store *s, int64_t active_since, cs_store_worker_fn fn, void *ctx,
                           cs_err *err)
{
    sqlite3_stmt *st = NULL;
    worker_cb cb = {fn, ctx};
    cs_rc rc = st_query(s, S_WORKER_LIST, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, active_since);
    return each_row(s, st, worker_row, &cb, "list workers", err);
}

typedef struct job_cb {
    cs_store_job_row_fn fn;
    void *ctx;
} job_cb;

static cs_rc job_row(cs_store *s, sqlite3_stmt *st, void *ctx, cs_err *err)
{
    const job_cb *cb = ctx;
    cs_store_job_row j = {
            .id = sqlite3_column_int64(st, 0),
            .sweep_id = sqlite3_column_int64(st, 1),
            .state = (const char *)sqlite3_column_text(st, 2),
            .attempt = sqlite3_column_int64(st, 3),
            .key = (const char *)sqlite3_column_text(st, 4),
            .worker = (const char *)sqlite3_column_text(st, 5),
            .state_at = sqlite3_column_int64(st, 6),
            .axes = (const char *)sqlite3_column_text(st, 7),
            .last_error = (const char *)sqlite3_column_text(st, 8),
            .progress = (const char *)sqlite3_column_text(st, 9),
            .heartbeat_at = sqlite3_column_int64(st, 10),
    };
    (void)s;
    return cb->fn(cb->ctx, &j, err);
}

cs_rc cs_store_job_list(cs_store *s, const cs_store_job_query *q, int64_t *total,
                        cs_store_job_row_fn fn, void *ctx, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    job_cb cb = {fn, ctx};
    bool found = false;
    cs_rc rc = st_query(s, S_JOB_COUNT, &st, err);
    *total = 0;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, q->sweep_id);
    st_bind_text(st, 2, q->state);
    rc = st_step_int64(s, st, total, &found, "count jobs", err);
    if (rc == CS_OK) {
        rc = st_stmt(s, S_JOB_LIST, &st, err);
    }
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, q->sweep_id);
    st_bind_text(st, 2, q->state);
    sqlite3_bind_int64(st, 3, q->limit);
    sqlite3_bind_int64(st, 4, q->offset);
    sqlite3_bind_int(st, 5, q->error_chars);
    return each_row(s, st, job_row, &cb, "list jobs", err);
}

void cs_store_attempt_log_fini(cs_store_attempt_log *l)
{
    if (l) {
        free(l->progress);
        free(l->last_error);
        free(l->log_path);
        free(l->error);
        memset(l, 0, sizeof(*l));
    }
}

cs_rc cs_store_attempt_log_get(cs_store *s, int64_t job_id, int64_t attempt,
                               cs_store_attempt_log *out, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    bool oom = false;
    int src;
    cs_rc rc = st_query(s, S_JOB_LOG, &st, err);
    memset(out, 0, sizeof(*out));
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, attempt);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        out->job_attempt = sqlite3_column_int64(st, 0);
        out->progress = st_dup_col(st, 1, &oom);
        out->last_error = st_dup_col(st, 2, &oom);
        out->log_path = st_dup_col(st, 3, &oom);
        out->error = st_dup_col(st, 4, &oom);
        out->has_attempt = sqlite3_column_type(st, 5) != SQLITE_NULL;
        if (oom) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "store: job %lld: out of memory", (long long)job_id);
        }
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: no job %lld", (long long)job_id);
    } else {
        rc = st_err(s->db, src, "read job log", err);
    }
    st_rel(st);
    if (rc != CS_OK) {
        cs_store_attempt_log_fini(out);
    }
    return rc;
}

cs_rc cs_store_last_log_path(cs_store *s, int64_t job_id, char **path, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    bool oom = false;
    int src;
    cs_rc rc = st_query(s, S_LAST_LOG_PATH, &st, err);
    *path = NULL;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, job_id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *path = st_dup_col(st, 0, &oom);
        if (oom) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
        }
    } else if (src != SQLITE_DONE) {
        rc = st_err(s->db, src, "read log path", err);
    }
    st_rel(st);
    return rc;
}
