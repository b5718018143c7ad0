/* cs_store_watch.c - the live view's reads (WATCH and JOB_INFO, see cs_store.h "the live view").
 *
 * Every function here is a query (ST_READ): it works on read-only handles, and calsweepd runs the
 * WATCH ones on libuv's thread pool with a read-only connection of their own. Their statements
 * are prepared per call (sqlite3_prepare_v2) and finalized before returning, not kept in the
 * shared statement table: such a connection lives for one request, and a statement prepared on
 * it would not outlive it anyway.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_store_int.h"

/* The states of the problems list (cs_store_watch_problems). */
#define PROBLEM_STATES "('failed', 'lost', 'retry_wait')"
#define PROBLEM_SWEEPS "j.sweep_id IN (SELECT id FROM sweep WHERE ?1 = 0 OR id = ?1)"

static const char SQL_SWEEPS[] = "SELECT id, name, state, priority, created, updated FROM sweep"
                                 " WHERE ?1 = 0 OR id = ?1 ORDER BY id";
/* Newest first through index job_event_sweep (sweep_id, id): the caller stops at the window. */
static const char SQL_EVENTS[] = "SELECT time, to_state, job_id, id FROM job_event"
                                 " WHERE sweep_id = ?1 AND id > ?2 ORDER BY id DESC";
/* Per (algorithm, model) of a sweep: jobs left to run, and the count and summed duration of the
 * done attempts. The algorithm is the config's "algorithm" fragment (0002_fragments.sql), or the
 * member of config_raw for a job stored whole. */
static const char SQL_GROUPS[] =
        "WITH alg AS (SELECT id, text FROM fragment WHERE text LIKE '\"algorithm\":%'),"
        " g AS (SELECT j.id, j.state, coalesce(j.req_model, '') AS model,"
        " CASE WHEN j.config_raw IS NOT NULL THEN"
        " '\"algorithm\":' || coalesce(json_quote(json_extract(j.config_raw, '$.algorithm')), '')"
        " ELSE coalesce((SELECT a.text FROM json_each(j.cfg) e JOIN alg a ON a.id = e.value),"
        " '') END AS alg FROM job_row j WHERE j.sweep_id = ?1"
        " AND j.state IN ('queued', 'running', 'retry_wait', 'done'))"
        " SELECT g.alg, g.model, sum(g.state <> 'done'), count(t.ms), coalesce(sum(t.ms), 0)"
        " FROM g LEFT JOIN (SELECT job_id, ended - started AS ms FROM attempt"
        " WHERE outcome = 'done' AND ended IS NOT NULL) t ON t.job_id = g.id"
        " GROUP BY g.alg, g.model ORDER BY g.alg, g.model";
static const char SQL_WORKERS[] =
        "SELECT w.id, w.host, w.capabilities, w.last_seen, w.bye_at, j.id, j.sweep_id, s.name,"
        " j.key, j.attempt, j.axes, a.started, j.heartbeat_at, j.progress FROM worker w"
        " LEFT JOIN job j ON j.id = (SELECT min(r.id) FROM job_row r WHERE r.worker = w.id"
        " AND r.state = 'running') LEFT JOIN sweep s ON s.id = j.sweep_id"
        " LEFT JOIN attempt a ON a.job_id = j.id AND a.n = j.attempt"
        " WHERE w.last_seen >= ?1 OR j.id IS NOT NULL ORDER BY j.id IS NULL, w.id";
static const char SQL_PROBLEMS_TOTAL[] =
        "SELECT count(*) FROM job_row j WHERE " PROBLEM_SWEEPS " AND j.state IN " PROBLEM_STATES;
static const char SQL_PROBLEMS[] =
        "SELECT j.id, j.sweep_id, s.name, j.key, j.state, j.attempt, j.max_attempts, j.axes,"
        " j.last_error, j.progress, j.state_at FROM job j JOIN sweep s ON s.id = j.sweep_id"
        " WHERE " PROBLEM_SWEEPS " AND j.state IN " PROBLEM_STATES
        " ORDER BY j.state_at DESC, j.id DESC LIMIT ?2";
static const char SQL_JOB_INFO[] =
        "SELECT j.id, j.sweep_id, s.name, j.key, j.state, j.attempt, j.max_attempts, j.axes,"
        " j.config, j.progress, j.last_error, j.created, j.state_at FROM job j"
        " JOIN sweep s ON s.id = j.sweep_id WHERE j.id = ?1";
static const char SQL_ATTEMPTS[] =
        "SELECT n, worker, host, started, ended, outcome, exit_status, signal, error, log_path"
        " FROM attempt WHERE job_id = ?1 ORDER BY n";

/* Prepares sql on s (a query: read-only handles too). *out is finalized by the caller. */
static cs_rc prepare(cs_store *s, const char *sql, const char *what, sqlite3_stmt **out,
                     cs_err *err)
{
    st_op op;
    cs_rc rc = st_enter(&op, s, ST_READ, NULL, err);
    *out = NULL;
    if (rc != CS_OK) {
        return rc;
    }
    int src = sqlite3_prepare_v2(s->db, sql, -1, out, NULL);
    if (src != SQLITE_OK) {
        sqlite3_finalize(*out);
        *out = NULL;
        return st_err(s->db, src, what, err);
    }
    return CS_OK;
}

/* Calls row for each row of st, stopping at a non-OK return (returned); finalizes st. */
typedef cs_rc (*row_fn)(sqlite3_stmt *st, void *ctx, cs_err *err);
static cs_rc each_row(cs_store *s, sqlite3_stmt *st, row_fn row, void *ctx, const char *what,
                      cs_err *err)
{
    cs_rc rc = CS_OK;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        rc = row(st, ctx, err);
        if (rc != CS_OK) {
            break;
        }
    }
    if (rc == CS_OK && src != SQLITE_DONE) {
        rc = st_err(s->db, src, what, err);
    }
    sqlite3_finalize(st);
    return rc;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* ---- sweeps, rates, groups --------------------------------------------------------------------
 */

typedef struct sweep_cb {
    cs_store_watch_sweep_fn fn;
    void *ctx;
} sweep_cb;

static cs_rc sweep_row(sqlite3_stmt *st, void *ctx, cs_err *err)
{
    const sweep_cb *cb = ctx;
    cs_store_watch_sweep w = {
            .id = sqlite3_column_int64(st, 0),
            .name = col_text(st, 1),
            .state = st_sweep_state_of(col_text(st, 2)),
            .priority = sqlite3_column_int64(st, 3),
            .created = sqlite3_column_int64(st, 4),
            .updated = sqlite3_column_int64(st, 5),
    };
    if (w.name == NULL) {
        w.name = "";
    }
    return cb->fn(cb->ctx, &w, err);
}

cs_rc cs_store_watch_sweeps(cs_store *s, int64_t sweep_id, cs_store_watch_sweep_fn fn, void *ctx,
                            cs_err *err)
{
    sqlite3_stmt *st = NULL;
    sweep_cb cb = {fn, ctx};
    cs_rc rc = prepare(s, SQL_SWEEPS, "watch: list sweeps", &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    return each_row(s, st, sweep_row, &cb, "watch: list sweeps", err);
}

cs_rc cs_store_watch_finishes(cs_store *s, int64_t sweep_id, int64_t after_id, int64_t since,
                              cs_store_watch_finish_fn fn, void *ctx, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    int src;
    cs_rc rc = prepare(s, SQL_EVENTS, "watch: read job events", &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    sqlite3_bind_int64(st, 2, after_id);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(st, 0);
        if (t < since) {
            src = SQLITE_DONE; /* events are in time order: the window is over */
            break;
        }
        const char *to = col_text(st, 1);
        if (sqlite3_column_type(st, 2) != SQLITE_NULL && to != NULL &&
            (strcmp(to, "done") == 0 || strcmp(to, "failed") == 0 || strcmp(to, "lost") == 0)) {
            rc = fn(ctx, sqlite3_column_int64(st, 3), t, err);
            if (rc != CS_OK) {
                break;
            }
        }
    }
    if (rc == CS_OK && src != SQLITE_DONE) {
        rc = st_err(s->db, src, "watch: read job events", err);
    }
    sqlite3_finalize(st);
    return rc;
}

typedef struct group_cb {
    cs_store_watch_group_fn fn;
    void *ctx;
} group_cb;

static cs_rc group_row(sqlite3_stmt *st, void *ctx, cs_err *err)
{
    const group_cb *cb = ctx;
    const char *alg = col_text(st, 0);
    const char *prefix = "\"algorithm\":";
    if (alg == NULL) {
        alg = "";
    } else if (strncmp(alg, prefix, strlen(prefix)) == 0) {
        alg += strlen(prefix);
    }
    cs_store_watch_group g = {
            .algorithm = alg,
            .model = col_text(st, 1) ? col_text(st, 1) : "",
            .remaining = (size_t)sqlite3_column_int64(st, 2),
            .n_done = (size_t)sqlite3_column_int64(st, 3),
            .sum_ms = sqlite3_column_double(st, 4),
    };
    return cb->fn(cb->ctx, &g, err);
}

cs_rc cs_store_watch_groups(cs_store *s, int64_t sweep_id, cs_store_watch_group_fn fn, void *ctx,
                            cs_err *err)
{
    sqlite3_stmt *st = NULL;
    group_cb cb = {fn, ctx};
    cs_rc rc = prepare(s, SQL_GROUPS, "watch: job groups", &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    return each_row(s, st, group_row, &cb, "watch: job groups", err);
}

/* ---- workers and problems ---------------------------------------------------------------------
 */

typedef struct worker_cb {
    cs_store_watch_worker_fn fn;
    void *ctx;
} worker_cb;

static cs_rc worker_row(sqlite3_stmt *st, void *ctx, cs_err *err)
{
    const worker_cb *cb = ctx;
    cs_store_watch_worker w = {
            .name = col_text(st, 0) ? col_text(st, 0) : "",
            .host = col_text(st, 1),
            .capabilities = col_text(st, 2),
            .last_seen = sqlite3_column_int64(st, 3),
            .bye_at = sqlite3_column_int64(st, 4),
            .job_id = sqlite3_column_int64(st, 5),
            .sweep_id = sqlite3_column_int64(st, 6),
            .sweep = col_text(st, 7),
            .key = col_text(st, 8),
            .attempt = sqlite3_column_int64(st, 9),
            .axes = col_text(st, 10),
            .started = sqlite3_column_int64(st, 11),
            .heartbeat_at = sqlite3_column_int64(st, 12),
            .progress = col_text(st, 13),
    };
    return cb->fn(cb->ctx, &w, err);
}

cs_rc cs_store_watch_workers(cs_store *s, int64_t seen_since, cs_store_watch_worker_fn fn,
                             void *ctx, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    worker_cb cb = {fn, ctx};
    cs_rc rc = prepare(s, SQL_WORKERS, "watch: list workers", &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, seen_since);
    return each_row(s, st, worker_row, &cb, "watch: list workers", err);
}

typedef struct problem_cb {
    cs_store_watch_problem_fn fn;
    void *ctx;
} problem_cb;

static cs_rc problem_row(sqlite3_stmt *st, void *ctx, cs_err *err)
{
    const problem_cb *cb = ctx;
    cs_store_watch_problem p = {
            .id = sqlite3_column_int64(st, 0),
            .sweep_id = sqlite3_column_int64(st, 1),
            .sweep = col_text(st, 2) ? col_text(st, 2) : "",
            .key = col_text(st, 3) ? col_text(st, 3) : "",
            .state = col_text(st, 4) ? col_text(st, 4) : "",
            .attempt = sqlite3_column_int64(st, 5),
            .max_attempts = sqlite3_column_int64(st, 6),
            .axes = col_text(st, 7),
            .last_error = col_text(st, 8),
            .progress = col_text(st, 9),
            .updated = sqlite3_column_int64(st, 10),
    };
    return cb->fn(cb->ctx, &p, err);
}

cs_rc cs_store_watch_problems(cs_store *s, int64_t sweep_id, int64_t limit, int64_t *total,
                              cs_store_watch_problem_fn fn, void *ctx, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    problem_cb cb = {fn, ctx};
    bool found = false;
    cs_rc rc = prepare(s, SQL_PROBLEMS_TOTAL, "watch: count problems", &st, err);
    *total = 0;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *total = sqlite3_column_int64(st, 0);
        found = true;
    }
    sqlite3_finalize(st);
    if (!found) {
        return st_err(s->db, src, "watch: count problems", err);
    }
    rc = prepare(s, SQL_PROBLEMS, "watch: list problems", &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    sqlite3_bind_int64(st, 2, limit);
    return each_row(s, st, problem_row, &cb, "watch: list problems", err);
}

/* ---- JOB_INFO ---------------------------------------------------------------------------------
 */

void cs_store_job_info_fini(cs_store_job_info *j)
{
    if (j) {
        free(j->sweep);
        free(j->state);
        free(j->axes);
        free(j->config);
        free(j->progress);
        free(j->last_error);
        memset(j, 0, sizeof(*j));
    }
}

cs_rc cs_store_job_info_get(cs_store *s, int64_t id, cs_store_job_info *out, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    bool oom = false;
    memset(out, 0, sizeof(*out));
    cs_rc rc = prepare(s, SQL_JOB_INFO, "job info: read job", &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        out->sweep_id = sqlite3_column_int64(st, 1);
        out->sweep = st_dup_col(st, 2, &oom);
        st_copy_text(out->key, sizeof(out->key), sqlite3_column_text(st, 3));
        out->state = st_dup_col(st, 4, &oom);
        out->attempt = sqlite3_column_int64(st, 5);
        out->max_attempts = sqlite3_column_int64(st, 6);
        out->axes = st_dup_col(st, 7, &oom);
        out->config = st_dup_col(st, 8, &oom);
        out->progress = st_dup_col(st, 9, &oom);
        out->last_error = st_dup_col(st, 10, &oom);
        out->created = sqlite3_column_int64(st, 11);
        out->updated = sqlite3_column_int64(st, 12);
        if (oom) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "store: job %lld: out of memory", (long long)id);
        }
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "no job %lld", (long long)id);
    } else {
        rc = st_err(s->db, src, "job info: read job", err);
    }
    sqlite3_finalize(st);
    if (rc != CS_OK) {
        cs_store_job_info_fini(out);
    }
    return rc;
}

typedef struct attempt_cb {
    cs_store_attempt_fn fn;
    void *ctx;
} attempt_cb;

static cs_rc attempt_row(sqlite3_stmt *st, void *ctx, cs_err *err)
{
    const attempt_cb *cb = ctx;
    cs_store_attempt_row a = {
            .n = sqlite3_column_int64(st, 0),
            .worker = col_text(st, 1) ? col_text(st, 1) : "",
            .host = col_text(st, 2),
            .started = sqlite3_column_int64(st, 3),
            .ended = sqlite3_column_int64(st, 4),
            .outcome = col_text(st, 5),
            .has_exit_status = sqlite3_column_type(st, 6) != SQLITE_NULL,
            .exit_status = sqlite3_column_int64(st, 6),
            .signal = sqlite3_column_int64(st, 7),
            .error = col_text(st, 8),
            .log_path = col_text(st, 9),
    };
    return cb->fn(cb->ctx, &a, err);
}

cs_rc cs_store_attempt_list(cs_store *s, int64_t job_id, cs_store_attempt_fn fn, void *ctx,
                            cs_err *err)
{
    sqlite3_stmt *st = NULL;
    attempt_cb cb = {fn, ctx};
    cs_rc rc = prepare(s, SQL_ATTEMPTS, "job info: list attempts", &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, job_id);
    return each_row(s, st, attempt_row, &cb, "job info: list attempts", err);
}
