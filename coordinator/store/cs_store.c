/* cs_store.c - the SQLite job store (see cs_store.h for the contract).
 *
 * Every statement is prepared once per connection and kept in s->st[] (the claim path runs
 * thousands of times a second). Each write operation runs inside op_begin/op_end: BEGIN IMMEDIATE
 * ... COMMIT on its own, or SAVEPOINT ... RELEASE inside a batch, so an operation that fails leaves
 * no trace either way. State changes are logged by the triggers of the schema (job_state_event,
 * sweep_state_event): every UPDATE that changes job.state also sets state_at and state_why, every
 * one that changes sweep.state also sets updated and state_why.
 *
 * Workload: one writer (the coordinator's loop thread); sweeps up to ~10^6 jobs; a few sweeps
 * active at a time, so the claim scans active sweeps and takes each one's best job through the
 * job_claim index (sweep_id, state, priority DESC, id), then picks among them.
 */
#include "cs_store.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_frag.h"
#include "cs_keyset.h"
#include "cs_migrations.h"
#include "cs_proto.h"
#include "cs_store_testing.h"

_Static_assert(CS_STORE_TOKEN_LEN == CS_PROTO_TOKEN_LEN, "lease tokens travel in JOB.lease_token");

/* ---- statements ---------------------------------------------------------------------------- */

/* Whether sweep SID (an SQL expression) has a job that may still run. Three probes of job_claim
 * rather than state IN (...): SQLite builds a small table for an IN list of more than two values
 * every time it runs the statement, and these run after every result. */
#define ACTIVE_JOB(sid)                                                                 \
    "(EXISTS (SELECT 1 FROM job_row WHERE sweep_id = " sid " AND state = 'queued') OR"  \
    " EXISTS (SELECT 1 FROM job_row WHERE sweep_id = " sid " AND state = 'running') OR" \
    " EXISTS (SELECT 1 FROM job_row WHERE sweep_id = " sid " AND state = 'retry_wait'))"
/* Bit index of job.state, for masks bound as integers. */
#define STATE_BIT                                                                         \
    "(CASE state WHEN 'queued' THEN 0 WHEN 'running' THEN 1 WHEN 'retry_wait' THEN 2 "    \
    "WHEN 'done' THEN 3 WHEN 'failed' THEN 4 WHEN 'lost' THEN 5 WHEN 'cancelled' THEN 6 " \
    "ELSE 7 END)"
#define FILTER "(?1 = 0 OR sweep_id = ?1) AND (?2 = 0 OR id = ?2) AND ((?3 >> " STATE_BIT ") & 1)"
/* A worker counts as active: seen at or after ?1 and no BYE since (cs_store_worker_list). */
#define WORKER_ACTIVE "(last_seen >= ?1 AND bye_at IS NULL)"
/* The jobs that cs_store_job_list selects: one sweep (?1, 0 = any), one state (?2, NULL = any). */
#define JOBS_WHERE " FROM job WHERE (?1 = 0 OR sweep_id = ?1) AND (?2 IS NULL OR state = ?2)"

#define STMT_LIST(X)                                                                               \
    X(BEGIN, "BEGIN IMMEDIATE")                                                                    \
    X(COMMIT, "COMMIT")                                                                            \
    X(ROLLBACK, "ROLLBACK")                                                                        \
    X(SAVEPOINT, "SAVEPOINT cs_op")                                                                \
    X(RELEASE, "RELEASE cs_op")                                                                    \
    X(ROLLBACK_TO, "ROLLBACK TO cs_op")                                                            \
    X(SWEEP_LIVE, "SELECT id FROM sweep WHERE name = ?1 AND state <> 'cancelled'")                 \
    X(SWEEP_INSERT,                                                                                \
      "INSERT INTO sweep (name, spec, spec_hash, max_attempts, backoff_base_ms, backoff_max_ms,"   \
      " timeout_ms, priority, max_running, on_failure, state, state_why, created, updated)"        \
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'active', 'submitted', ?11, ?11)")        \
    X(SWEEP_EVENT, "INSERT INTO job_event (time, sweep_id, from_state, to_state, why)"             \
                   " VALUES (?1, ?2, NULL, ?3, ?4)")                                               \
    X(SWEEP_BASICS, "SELECT state, priority, max_attempts FROM sweep WHERE id = ?1")               \
    X(SWEEP_SPEC, "UPDATE sweep SET spec = ?2, spec_hash = ?3, updated = ?4 WHERE id = ?1")        \
    X(SWEEP_SET_STATE, "UPDATE sweep SET state = ?2, state_why = ?3, updated = ?4"                 \
                       " WHERE id = ?1 AND state = ?5")                                            \
    X(SWEEP_SETTLE_ONE,                                                                            \
      "UPDATE sweep SET state = 'done', state_why = 'no job left to run', updated = ?2"            \
      " WHERE id = ?1 AND state = 'active' AND NOT " ACTIVE_JOB("?1"))                             \
    X(SWEEP_SETTLE_ALL,                                                                            \
      "UPDATE sweep SET state = 'done', state_why = 'no job left to run', updated = ?1"            \
      " WHERE state = 'active' AND NOT " ACTIVE_JOB("sweep.id"))                                   \
    X(SWEEP_REOPEN,                                                                                \
      "UPDATE sweep SET state = 'active', state_why = ?2, updated = ?1 WHERE state = 'done'"       \
      " AND " ACTIVE_JOB("sweep.id"))                                                              \
    X(SWEEP_POLICY, "SELECT backoff_base_ms, backoff_max_ms, on_failure FROM sweep WHERE id = ?1") \
    X(SWEEP_STATE, "SELECT state FROM sweep WHERE id = ?1")                                        \
    X(SWEEP_GET,                                                                                   \
      "SELECT id, name, spec_hash, state, max_attempts, backoff_base_ms, backoff_max_ms,"          \
      " timeout_ms, priority, max_running, on_failure, created FROM sweep WHERE id = ?1")          \
    X(SWEEP_LIST,                                                                                  \
      "SELECT id, name, spec_hash, state, max_attempts, backoff_base_ms, backoff_max_ms,"          \
      " timeout_ms, priority, max_running, on_failure, created FROM sweep ORDER BY id")            \
    X(CACHE_GET, "SELECT result_id FROM result_cache WHERE key = ?1")                              \
    X(CACHE_PUT, "INSERT INTO result_cache (key, result_id, updated) VALUES (?1, ?2, ?3)"          \
                 " ON CONFLICT (key) DO UPDATE SET result_id = excluded.result_id,"                \
                 " updated = excluded.updated")                                                    \
    X(JOB_INSERT,                                                                                  \
      "INSERT OR FAIL INTO job_row (sweep_id, key, cfg, axs, config_raw, axes_raw, baseline,"      \
      " state, state_at, state_why, priority, max_attempts, result_id, req_model, req_backend,"    \
      " req_mem_mb, req_gpus, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"      \
      " ?12, ?13, ?14, ?15, ?16, ?17, ?9)")                                                        \
    X(REQ_OF_CONFIG,                                                                               \
      "SELECT json_extract(?1, '$.model.folder'), CASE json_type(?1, '$.model.backend')"           \
      " WHEN 'text' THEN json_extract(?1, '$.model.backend') WHEN 'object' THEN 'exec'"            \
      " ELSE 'native' END, coalesce(json_extract(?1, '$.model.requires.mem_mb'), 0),"              \
      " coalesce(json_extract(?1, '$.model.requires.gpus'), 0)")                                   \
    X(JSON_VALID, "SELECT json_valid(?1)")                                                         \
    X(FRAG_FIND, "SELECT id FROM fragment WHERE text = ?1")                                        \
    X(FRAG_INSERT, "INSERT INTO fragment (text) SELECT ?1 WHERE json_valid('{' || ?1 || '}')")     \
    X(FRAG_GET, "SELECT text FROM fragment WHERE id = ?1")                                         \
    X(KEY_OF, "SELECT key FROM job_row WHERE id = ?1")                                             \
    X(SWEEP_KEYS, "SELECT id, key FROM job_row WHERE sweep_id = ?1")                               \
    X(CACHE_ANY, "SELECT EXISTS (SELECT 1 FROM result_cache)")                                     \
    X(REQ_OF_MODEL,                                                                                \
      "SELECT json_extract(?1, '$.folder'), CASE json_type(?1, '$.backend') WHEN 'text' THEN"      \
      " json_extract(?1, '$.backend') WHEN 'object' THEN 'exec' ELSE 'native' END,"                \
      " coalesce(json_extract(?1, '$.requires.mem_mb'), 0),"                                       \
      " coalesce(json_extract(?1, '$.requires.gpus'), 0)")                                         \
    X(CLAIM_HELD,                                                                                  \
      "SELECT j.id, a.instance, a.lease_token FROM job_row j JOIN attempt a ON a.job_id = j.id"    \
      " AND a.n = j.attempt WHERE j.worker = ?1 AND j.state = 'running'"                           \
      " AND j.lease_until >= ?2 ORDER BY j.id")                                                    \
    X(CLAIM_RENEW,                                                                                 \
      "UPDATE job_row SET lease_until = max(lease_until, ?2), heartbeat_at = ?3"                   \
      " WHERE id = ?1 RETURNING id, sweep_id, attempt, lease_until, key, cfg, config_raw")         \
    X(CLAIM,                                                                                       \
      "UPDATE job_row SET state = 'running', state_at = ?2, state_why = 'claimed', worker = ?1,"   \
      " attempt = attempt + 1, lease_until = ?3, heartbeat_at = ?2, not_before = NULL,"            \
      " cancel_requested = 0 WHERE id = ("                                                         \
      " SELECT b.jid FROM (SELECT s.max_running AS maxr,"                                          \
      " (SELECT count(*) FROM job_row r WHERE r.sweep_id = s.id AND r.state = 'running') AS nrun," \
      " (SELECT j.id FROM job_row j WHERE j.sweep_id = s.id AND j.state = 'queued'"                \
      " AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(?4) WHERE value = j.req_model))"        \
      " AND (CASE j.req_backend WHEN 'native' THEN ?5 WHEN 'exec' THEN ?6 ELSE 0 END)"             \
      " AND (?7 IS NULL OR j.req_mem_mb <= ?7) AND j.req_gpus <= ?8"                               \
      " ORDER BY j.priority DESC, j.id LIMIT 1) AS jid"                                            \
      " FROM sweep s WHERE s.state = 'active') b JOIN job_row k ON k.id = b.jid"                   \
      " WHERE b.maxr = 0 OR b.nrun < b.maxr ORDER BY k.priority DESC, b.nrun, b.jid LIMIT 1)"      \
      " RETURNING id, sweep_id, attempt, lease_until, key, cfg, config_raw")                       \
    X(SWEEP_TIMEOUT, "SELECT timeout_ms FROM sweep WHERE id = ?1")                                 \
    X(ATTEMPT_INSERT, "INSERT INTO attempt (job_id, n, worker, host, started, lease_token,"        \
                      " instance) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")                            \
    X(LEASE_GET, "SELECT worker, lease_token FROM attempt WHERE job_id = ?1 AND n = ?2")           \
    X(ATTEMPT_END, "UPDATE attempt SET ended = ?3, exit_status = ?4, signal = ?5,"                 \
                   " log_path = coalesce(?6, log_path), outcome = ?7, error = ?8"                  \
                   " WHERE job_id = ?1 AND n = ?2")                                                \
    X(ATTEMPT_OUTCOME, "SELECT outcome FROM attempt WHERE job_id = ?1 AND n = ?2")                 \
    X(HEARTBEAT, "UPDATE job_row SET lease_until = ?4, heartbeat_at = ?3,"                         \
                 " progress = coalesce(?5, progress)"                                              \
                 " WHERE id = ?1 AND attempt = ?2 AND state = 'running'"                           \
                 " RETURNING cancel_requested")                                                    \
    X(JOB_BRIEF, "SELECT state, attempt, key, sweep_id, cancel_requested, max_attempts"            \
                 " FROM job_row WHERE id = ?1")                                                    \
    X(RESULT_FIND, "SELECT id FROM result WHERE job_id = ?1 AND attempt = ?2")                     \
    X(RESULT_INSERT, "INSERT INTO result (job_id, attempt, json, created)"                         \
                     " VALUES (?1, ?2, ?3, ?4)")                                                   \
    X(METRIC_INSERT, "INSERT INTO metric (result_id, job_id, task, metric, value, stderr, n)"      \
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")                                       \
    X(JOB_DONE,                                                                                    \
      "UPDATE job_row SET state = 'done', state_at = ?2, state_why = ?3, result_id = ?4,"          \
      " lease_until = NULL, not_before = NULL WHERE id = ?1")                                      \
    X(JOB_FAIL, "UPDATE job_row SET state = ?2, state_at = ?3, state_why = ?4, last_error = ?4,"   \
                " not_before = ?5, lease_until = NULL,"                                            \
                " worker = CASE WHEN ?2 = 'retry_wait' THEN NULL ELSE worker END WHERE id = ?1")   \
    X(REAP_ATTEMPTS, "UPDATE attempt SET ended = ?1, outcome = 'expired', error = 'lease expired'" \
                     " WHERE ended IS NULL AND (job_id, n) IN (SELECT id, attempt FROM job_row"    \
                     " WHERE state = 'running' AND lease_until < ?1)")                             \
    X(REAP_LEASES,                                                                                 \
      "UPDATE job_row SET state = CASE WHEN cancel_requested THEN 'cancelled'"                     \
      " WHEN attempt >= max_attempts THEN 'lost' ELSE 'queued' END, state_at = ?1,"                \
      " state_why = CASE WHEN cancel_requested THEN 'lease expired with a cancel pending'"         \
      " WHEN attempt >= max_attempts THEN 'lease expired, no attempts left'"                       \
      " ELSE 'lease expired' END, last_error = 'lease expired',"                                   \
      " worker = CASE WHEN cancel_requested OR attempt >= max_attempts THEN worker ELSE NULL END," \
      " lease_until = NULL WHERE state = 'running' AND lease_until < ?1 RETURNING state")          \
    X(REAP_RETRY, "UPDATE job_row SET state = 'queued', state_at = ?1,"                            \
                  " state_why = 'retry backoff elapsed', not_before = NULL"                        \
                  " WHERE state = 'retry_wait' AND not_before <= ?1")                              \
    X(WORKER_SEEN,                                                                                 \
      "INSERT INTO worker (id, host, capabilities, first_seen, last_seen)"                         \
      " VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (id) DO UPDATE SET"                                \
      " host = coalesce(excluded.host, host),"                                                     \
      " capabilities = coalesce(excluded.capabilities, capabilities), last_seen = ?4,"             \
      " bye_at = NULL")                                                                            \
    X(WORKER_TOUCH,                                                                                \
      "INSERT INTO worker (id, instance, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)"           \
      " ON CONFLICT (id) DO UPDATE SET last_seen = max(last_seen, ?3), bye_at = NULL,"             \
      " instance = coalesce(?2, instance) WHERE last_seen < ?3 - 1000 OR bye_at IS NOT NULL"       \
      " OR (?2 IS NOT NULL AND instance IS NOT ?2)")                                               \
    X(JOB_EXISTS, "SELECT 1 FROM job_row WHERE id = ?1")                                           \
    X(CANCEL_WAITING,                                                                              \
      "UPDATE job_row SET state = 'cancelled', state_at = ?4, state_why = ?5, not_before = NULL"   \
      " WHERE " FILTER " AND state IN ('queued', 'retry_wait')")                                   \
    X(CANCEL_RUNNING, "UPDATE job_row SET cancel_requested = 1, last_error = ?5"                   \
                      " WHERE " FILTER " AND state = 'running' AND cancel_requested = 0")          \
    X(RETRY, "UPDATE job_row SET state = 'queued', state_at = ?4, state_why = 'retry requested',"  \
             " max_attempts = attempt + (SELECT max_attempts FROM sweep WHERE sweep.id = "         \
             "job_row.sweep_id),"                                                                  \
             " not_before = NULL, cancel_requested = 0, worker = NULL"                             \
             " WHERE " FILTER " AND state IN ('failed', 'lost')"                                   \
             " AND sweep_id NOT IN (SELECT id FROM sweep WHERE state = 'cancelled')")              \
    X(COUNT_SWEEP, "SELECT state, count(*) FROM job_row WHERE sweep_id = ?1 GROUP BY state")       \
    X(COUNT_ALL, /* per sweep first: a scan of job_claim in order, no sort of every job */         \
      "SELECT state, sum(n) FROM (SELECT sweep_id, state, count(*) AS n FROM job_row"              \
      " GROUP BY sweep_id, state) GROUP BY state")                                                 \
    X(JOB_GET,                                                                                     \
      "SELECT id, sweep_id, key, state, priority, attempt, max_attempts, lease_until, not_before," \
      " result_id, cancel_requested, baseline, cfg, config_raw, axs, axes_raw, worker, last_error" \
      " FROM job_row WHERE id = ?1")                                                               \
    X(RELEASE_LEASE, "UPDATE job_row SET lease_until = ?3 WHERE id = ?1 AND attempt = ?2"          \
                     " AND state = 'running' AND lease_until > ?3")                                \
    X(WORKER_BYE, "UPDATE worker SET bye_at = ?3, last_seen = max(last_seen, ?3) WHERE id = ?1"    \
                  " AND (instance IS NULL OR ?2 IS NULL OR instance = ?2)")                        \
    X(WORKER_PRUNE, "DELETE FROM worker WHERE last_seen < ?1 AND NOT EXISTS (SELECT 1 FROM"        \
                    " job_row j WHERE j.worker = worker.id AND j.state = 'running')")              \
    X(WORKERS_ACTIVE, "SELECT count(*) FROM worker WHERE " WORKER_ACTIVE)                          \
    X(WORKER_LIST,                                                                                 \
      "SELECT w.id, w.host, w.last_seen, w.capabilities, (SELECT j.id FROM job j WHERE"            \
      " j.worker = w.id AND j.state = 'running' ORDER BY j.id LIMIT 1), " WORKER_ACTIVE            \
      " FROM worker w ORDER BY w.id")                                                              \
    X(JOB_COUNT, "SELECT count(*)" JOBS_WHERE)                                                     \
    X(JOB_LIST, "SELECT id, sweep_id, state, attempt, key, worker, state_at, axes,"                \
                " substr(last_error, 1, ?5)" JOBS_WHERE " ORDER BY id LIMIT ?3 OFFSET ?4")         \
    X(JOB_LOG, "SELECT j.attempt, j.progress, j.last_error, a.log_path, a.error, a.n FROM job j"   \
               " LEFT JOIN attempt a ON a.job_id = j.id AND a.n = (CASE WHEN ?2 > 0 THEN ?2 ELSE"  \
               " j.attempt END) WHERE j.id = ?1")                                                  \
    X(LAST_LOG_PATH, "SELECT log_path FROM attempt WHERE job_id = ?1 AND log_path IS NOT NULL"     \
                     " ORDER BY n DESC LIMIT 1")

enum {
#define STMT_ENUM(name, sql) S_##name,
    STMT_LIST(STMT_ENUM)
#undef STMT_ENUM
            S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
#define STMT_SQL(name, sql) sql,
        STMT_LIST(STMT_SQL)
#undef STMT_SQL
};

/* The scheduling requirements of the last model object seen by the insert path: consecutive cells
 * of a sweep share their model, so its JSON is evaluated once per distinct model, not per job. */
typedef struct req_cache {
    char *model; /* the JSON text the values come from (NULL: empty) */
    size_t len;
    bool whole;              /* model is a whole config (REQ_OF_CONFIG), not a model object */
    sqlite3_value *value[4]; /* req_model, req_backend, req_mem_mb, req_gpus */
} req_cache;

struct cs_store {
    sqlite3 *db;
    bool readonly;
    bool batch;
    sqlite3_stmt *st[S_COUNT];
    sqlite3_stmt *bulk; /* the multi-row job insert (bulk_stmt) */
    req_cache req;
    cs_frag_map frags; /* fragment text <-> id, a cache of the fragment table */
    bool frags_fresh;  /* fragment rows inserted since the last commit: a rollback forgets frags */
    bool poisoned;     /* an operation of the batch failed after it wrote: commit rolls back */
    char poison[160];  /* its message */
    cs_buf text;       /* scratch: a rebuilt config or axes text */
    bool defer_ckpt;   /* the next commit skips its automatic checkpoint (a bulk insert) */
    bool ckpt_owed;    /* a skipped checkpoint that cs_store_checkpoint() has not done yet */
};

static const char *const job_state_names[CS_JOB_NSTATES] = {
        "queued", "running", "retry_wait", "done", "failed", "lost", "cancelled", "cached",
};
static const char *const sweep_state_names[] = {"active", "paused", "cancelled", "done"};

const char *cs_job_state_name(cs_job_state st)
{
    if ((unsigned)st >= CS_JOB_NSTATES) {
        return "?";
    }
    return job_state_names[st];
}

cs_rc cs_job_state_parse(const char *name, cs_job_state *out, cs_err *err)
{
    for (unsigned i = 0; i < CS_JOB_NSTATES; i++) {
        if (name && strcmp(name, job_state_names[i]) == 0) {
            *out = (cs_job_state)i;
            return CS_OK;
        }
    }
    return cs_err_set(err, CS_EINVAL, 0,
                      "unknown job state '%s' (expected queued, running, retry_wait, done, "
                      "failed, lost, cancelled or cached)",
                      name ? name : "(null)");
}

const char *cs_sweep_state_name(cs_sweep_state st)
{
    if ((unsigned)st >= sizeof(sweep_state_names) / sizeof(sweep_state_names[0])) {
        return "?";
    }
    return sweep_state_names[st];
}

static cs_sweep_state sweep_state_of(const char *name)
{
    for (unsigned i = 0; i < sizeof(sweep_state_names) / sizeof(sweep_state_names[0]); i++) {
        if (name && strcmp(name, sweep_state_names[i]) == 0) {
            return (cs_sweep_state)i;
        }
    }
    return CS_SWEEP_CANCELLED;
}

static cs_job_state job_state_of(const char *name)
{
    for (unsigned i = 0; i < CS_JOB_NSTATES; i++) {
        if (name && strcmp(name, job_state_names[i]) == 0) {
            return (cs_job_state)i;
        }
    }
    return CS_JOB_CANCELLED;
}

int cs_store_schema_version(void)
{
    return (int)cs_store_n_migrations;
}

/* ---- errors and statement helpers ------------------------------------------------------------ */

/* Translates an SQLite failure at the boundary: the message is copied now. */
static cs_rc db_err(cs_err *err, sqlite3 *db, int src, const char *what)
{
    cs_rc rc = CS_EDB;
    int prim = src & 0xff;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED) {
        rc = CS_EBUSY;
    } else if (prim == SQLITE_NOMEM) {
        rc = CS_ENOMEM;
    } else if (prim == SQLITE_FULL) {
        rc = CS_ENOSPC;
    } else if (prim == SQLITE_IOERR || prim == SQLITE_CANTOPEN) {
        rc = CS_EIO;
    } else if (prim == SQLITE_CONSTRAINT) {
        rc = CS_EEXIST;
    } else if (prim == SQLITE_READONLY) {
        rc = CS_ENOTSUP;
    }
    return cs_err_set(err, rc, src, "store: %s: %s", what,
                      db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
}

/* Returns the cached statement, reset and with cleared bindings. */
static cs_rc stmt(cs_store *s, int id, sqlite3_stmt **out, cs_err *err)
{
    int src;
    if (!s->st[id]) {
        src = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->st[id],
                                 NULL);
        if (src != SQLITE_OK) {
            *out = NULL;
            return db_err(err, s->db, src, "prepare");
        }
    } else {
        sqlite3_reset(s->st[id]);
        sqlite3_clear_bindings(s->st[id]);
    }
    *out = s->st[id];
    return CS_OK;
}

static void rel(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
    }
}

static void bind_text(sqlite3_stmt *st, int i, const char *text)
{
    if (text) {
        sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, i);
    }
}

/* Runs a statement that returns no rows to its end. */
static cs_rc run(cs_store *s, sqlite3_stmt *st, const char *what, cs_err *err)
{
    int src = sqlite3_step(st);
    while (src == SQLITE_ROW) {
        src = sqlite3_step(st);
    }
    if (src != SQLITE_DONE) {
        cs_rc rc = db_err(err, s->db, src, what);
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);
    return CS_OK;
}

/* Steps a bound statement that returns at most one row, then releases it: *found says whether
 * there was a row, and *out is its first column (left alone without one). */
static cs_rc step_int64(cs_store *s, sqlite3_stmt *st, int64_t *out, bool *found, const char *what,
                        cs_err *err)
{
    int src = sqlite3_step(st);
    cs_rc rc = CS_OK;
    *found = src == SQLITE_ROW;
    if (*found) {
        *out = sqlite3_column_int64(st, 0);
    } else if (src != SQLITE_DONE) {
        rc = db_err(err, s->db, src, what);
    }
    rel(st);
    return rc;
}

/* Runs a cached statement that takes no parameters. */
static cs_rc run_id(cs_store *s, int id, const char *what, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = stmt(s, id, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    return run(s, st, what, err);
}

static void copy_text(char *dst, size_t n, const unsigned char *src)
{
    snprintf(dst, n, "%s", src ? (const char *)src : "");
}

/* ---- transactions ---------------------------------------------------------------------------- */

static cs_rc op_begin(cs_store *s, cs_err *err)
{
    if (s->readonly) {
        return cs_err_set(err, CS_ENOTSUP, 0, "store: the database is open read-only");
    }
    return run_id(s, s->batch ? S_SAVEPOINT : S_BEGIN, "begin", err);
}

/* After a rollback: fragment ids inserted since the last commit may be gone, so the map forgets
 * everything (it is only a cache of the table). */
static void rolled_back(cs_store *s)
{
    if (s->frags_fresh) {
        cs_frag_map_clear(&s->frags);
        s->frags_fresh = false;
    }
}

static void committed(cs_store *s)
{
    s->frags_fresh = false;
}

/* After a transaction's COMMIT (rc = its outcome, or an earlier failure that skipped it): the
 * transaction is committed, or else rolled back. Returns rc. */
static cs_rc commit_or_roll_back(cs_store *s, cs_rc rc)
{
    if (rc == CS_OK) {
        committed(s);
        return CS_OK;
    }
    if (!sqlite3_get_autocommit(s->db)) {
        run_id(s, S_ROLLBACK, "rollback", NULL);
    }
    rolled_back(s);
    return rc;
}

/* Ends an operation: keeps its work when rc is CS_OK, undoes it otherwise; returns the outcome. */
static cs_rc op_end(cs_store *s, cs_rc rc, cs_err *err)
{
    if (s->batch) {
        if (rc == CS_OK) {
            return run_id(s, S_RELEASE, "release", err);
        }
        run_id(s, S_ROLLBACK_TO, "rollback", NULL);
        run_id(s, S_RELEASE, "release", NULL);
        rolled_back(s);
        return rc;
    }
    if (rc == CS_OK) {
        rc = run_id(s, S_COMMIT, "commit", err);
    }
    return commit_or_roll_back(s, rc);
}

/* The worker operations (claim, heartbeat, result, fail, worker seen) in a batch: no savepoint.
 * They check everything before they write, so what can fail after a write is I/O, memory or a
 * broken database; then the whole batch is rolled back at cs_store_commit instead. A savepoint
 * per operation made SQLite copy each page the operation changed into its sub-journal first
 * (~10% of a claimed and completed job's CPU time). Outside a batch: op_begin and op_end. */
static cs_rc op_begin_w(cs_store *s, int64_t *mark, cs_err *err)
{
    if (s->batch) {
        *mark = sqlite3_total_changes64(s->db);
        return CS_OK;
    }
    return op_begin(s, err);
}

static cs_rc op_end_w(cs_store *s, cs_rc rc, int64_t mark, cs_err *err)
{
    if (!s->batch) {
        return op_end(s, rc, err);
    }
    if (rc != CS_OK && sqlite3_total_changes64(s->db) != mark && !s->poisoned) {
        s->poisoned = true;
        snprintf(s->poison, sizeof(s->poison), "%s", err ? err->msg : cs_rc_str(rc));
    }
    return rc;
}

cs_rc cs_store_begin(cs_store *s, cs_err *err)
{
    cs_rc rc;
    if (s->readonly) {
        return cs_err_set(err, CS_ENOTSUP, 0, "store: the database is open read-only");
    }
    if (s->batch) {
        return cs_err_set(err, CS_ESTATE, 0, "store: a batch is already open");
    }
    rc = run_id(s, S_BEGIN, "begin batch", err);
    if (rc == CS_OK) {
        s->batch = true;
        s->poisoned = false;
    }
    return rc;
}

cs_rc cs_store_commit(cs_store *s, cs_err *err)
{
    cs_rc rc;
    if (!s->batch) {
        return cs_err_set(err, CS_ESTATE, 0, "store: no batch is open");
    }
    s->batch = false;
    if (s->poisoned) {
        s->poisoned = false;
        rc = cs_err_set(err, CS_EDB, 0,
                        "store: an operation of the batch failed after it wrote (%s): the batch "
                        "is rolled back",
                        s->poison);
    } else {
        rc = run_id(s, S_COMMIT, "commit batch", err);
    }
    return commit_or_roll_back(s, rc);
}

void cs_store_rollback(cs_store *s)
{
    if (s && s->batch) {
        s->batch = false;
        s->poisoned = false;
        if (!sqlite3_get_autocommit(s->db)) {
            run_id(s, S_ROLLBACK, "rollback", NULL);
        }
        rolled_back(s);
    }
}

bool cs_store_in_batch(const cs_store *s)
{
    return s->batch;
}

/* ---- open, migrate, close -------------------------------------------------------------------- */

static cs_rc exec_sql(sqlite3 *db, const char *sql, const char *what, cs_err *err)
{
    char *msg = NULL;
    int src = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (src != SQLITE_OK) {
        cs_rc rc = cs_err_set(err, src == SQLITE_BUSY ? CS_EBUSY : CS_EDB, src, "store: %s: %s",
                              what, msg ? msg : sqlite3_errstr(src));
        sqlite3_free(msg);
        return rc;
    }
    return CS_OK;
}

static cs_rc user_version(sqlite3 *db, int *out, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (src == SQLITE_OK) {
        src = sqlite3_step(st);
    }
    if (src != SQLITE_ROW) {
        cs_rc rc = db_err(err, db, src, "read user_version");
        sqlite3_finalize(st);
        return rc;
    }
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return CS_OK;
}

static cs_rc refuse_newer(const char *path, int v, cs_err *err)
{
    return cs_err_set(err, CS_EVERSION, 0,
                      "store: %s: schema version %d is newer than this calsweep knows (%d); "
                      "use the calsweep that wrote it, or a newer one",
                      path, v, (int)cs_store_n_migrations);
}

/* CS_OK when PRAGMA foreign_key_check finds nothing; CS_EDB naming the first violation. */
static cs_rc check_foreign_keys(sqlite3 *db, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = CS_OK;
    int src = sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL);
    if (src == SQLITE_OK) {
        src = sqlite3_step(st);
    }
    if (src == SQLITE_ROW) {
        rc = cs_err_set(
                err, CS_EDB, 0, "store: migration left a dangling reference: %s row %lld -> %s",
                (const char *)sqlite3_column_text(st, 0), (long long)sqlite3_column_int64(st, 1),
                (const char *)sqlite3_column_text(st, 2));
    } else if (src != SQLITE_DONE) {
        rc = db_err(err, db, src, "foreign_key_check");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Applies every pending migration in one transaction. Foreign keys are off while it runs (the
 * caller's pragma; a migration may rebuild a referenced table) and checked before the commit. */
static cs_rc migrate(sqlite3 *db, const char *path, cs_err *err)
{
    char pragma[64];
    int v = 0;
    cs_rc rc = exec_sql(db, "BEGIN IMMEDIATE", "begin migration", err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = user_version(db, &v, err);
    if (rc == CS_OK && v > (int)cs_store_n_migrations) {
        rc = refuse_newer(path, v, err);
    }
    for (size_t i = (size_t)(v < 0 ? 0 : v); rc == CS_OK && i < cs_store_n_migrations; i++) {
        rc = exec_sql(db, cs_store_migrations[i], cs_store_migration_names[i], err);
    }
    if (rc == CS_OK && v < (int)cs_store_n_migrations) {
        rc = check_foreign_keys(db, err);
    }
    if (rc == CS_OK && v < (int)cs_store_n_migrations) {
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", (int)cs_store_n_migrations);
        rc = exec_sql(db, pragma, "set user_version", err);
    }
    if (rc == CS_OK) {
        rc = exec_sql(db, "COMMIT", "commit migration", err);
    }
    if (rc != CS_OK && !sqlite3_get_autocommit(db)) {
        exec_sql(db, "ROLLBACK", "rollback migration", NULL);
    }
    return rc;
}

/* Replaces SQLite's automatic checkpoint (same threshold, 1000 pages): the commit of a bulk insert
 * skips it, leaving the copy to cs_store_checkpoint() or the next commit. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    cs_store *s = arg;
    if (s->defer_ckpt) {
        s->defer_ckpt = false;
        s->ckpt_owed = true;
        return SQLITE_OK;
    }
    if (pages >= 1000 &&
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) == SQLITE_OK) {
        s->ckpt_owed = false;
    }
    return SQLITE_OK;
}

cs_rc cs_store_checkpoint(cs_store *s, cs_err *err)
{
    int src;
    if (s->readonly) {
        return cs_err_set(err, CS_ENOTSUP, 0, "store: the database is open read-only");
    }
    if (s->batch) {
        return cs_err_set(err, CS_ESTATE, 0, "store: checkpoint inside a batch");
    }
    src = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (src != SQLITE_OK) {
        return db_err(err, s->db, src, "checkpoint");
    }
    s->defer_ckpt = false;
    s->ckpt_owed = false;
    return CS_OK;
}

bool cs_store_checkpoint_owed(const cs_store *s)
{
    return s->ckpt_owed;
}

/* SQLite opens a file it may not write read-only without a word, and every write would fail
 * later: refuse at open, naming the file (or its folder, where the -wal and -shm files go). */
static cs_rc check_writable(sqlite3 *db, const char *path, cs_err *err)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;

    if (sqlite3_db_readonly(db, "main") == 1) {
        return cs_err_set(err, CS_EIO, 0,
                          "store: %s: the database file is read-only (calsweepd must write it: "
                          "check its owner and permissions)",
                          path);
    }
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else {
        snprintf(dir, sizeof(dir), "%.*s", (int)(n ? n : 1), path);
    }
    if (access(dir, W_OK | X_OK) != 0) {
        return cs_err_set(err, CS_EIO, errno,
                          "store: %s: its folder %s is not writable (calsweepd keeps the "
                          "write-ahead log next to the database)",
                          path, dir);
    }
    return CS_OK;
}

static cs_rc open_common(const char *path, bool readonly, cs_store **out, cs_err *err)
{
    cs_store *s = NULL;
    int v = 0, src;
    cs_rc rc = CS_OK;

    *out = NULL;
    if (!path || !*path) {
        return cs_err_set(err, CS_EINVAL, 0, "store: no database path");
    }
    if (readonly && access(path, F_OK) != 0) {
        return cs_err_set(err, CS_ENOENT, 0, "store: %s: no such database", path);
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        return cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    s->readonly = readonly;
    /* NOMUTEX: a cs_store is used by one thread at a time (cs_store.h), so the connection needs
     * no lock of its own around every call (SQLite's global locks stay). */
    src = sqlite3_open_v2(
            path, &s->db,
            SQLITE_OPEN_NOMUTEX |
                    (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE),
            NULL);
    if (src != SQLITE_OK) {
        rc = cs_err_set(err, CS_EIO, src, "store: %s: cannot open: %s", path,
                        s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src));
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 5000);
    if (!readonly) {
        rc = check_writable(s->db, path, err);
        if (rc != CS_OK) {
            goto fail;
        }
    }
    rc = user_version(s->db, &v, err);
    if (rc != CS_OK) {
        cs_err_prefix(err, "%s", path);
        goto fail;
    }
    if (v > (int)cs_store_n_migrations) {
        rc = refuse_newer(path, v, err);
        goto fail;
    }
    if (readonly) {
        if (v < (int)cs_store_n_migrations) {
            rc = cs_err_set(err, CS_EVERSION, 0,
                            v == 0 ? "store: %s: not a calsweep database (schema version %d)"
                                   : "store: %s: schema version %d is older than this calsweep's; "
                                     "start calsweepd on it once to migrate",
                            path, v);
            goto fail;
        }
        rc = exec_sql(s->db, "PRAGMA foreign_keys = ON", "pragmas", err);
        if (rc != CS_OK) {
            goto fail;
        }
    } else {
        /* temp_store = MEMORY keeps the sub-journal of each operation's savepoint in memory: a
         * batch of the daemon runs every operation in a savepoint, and SQLite saves each page
         * the operation changes there first; past 64 KiB it wrote them to a temporary file, ~40
         * writes per claimed and completed job. No query of the store sorts or builds large
         * temporary tables (the big counts walk job_claim in order). */
        rc = exec_sql(s->db,
                      "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                      " PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = OFF;"
                      " PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;",
                      "pragmas", err);
        if (rc == CS_OK) {
            rc = migrate(s->db, path, err);
        }
        if (rc == CS_OK) {
            rc = exec_sql(s->db, "PRAGMA foreign_keys = ON", "pragmas", err);
        }
        if (rc != CS_OK) {
            goto fail;
        }
        sqlite3_wal_hook(s->db, wal_hook, s);
    }
    *out = s;
    return CS_OK;
fail:
    cs_store_close(s);
    return rc;
}

cs_rc cs_store_open(const char *path, cs_store **out, cs_err *err)
{
    return open_common(path, false, out, err);
}

cs_rc cs_store_open_ro(const char *path, cs_store **out, cs_err *err)
{
    return open_common(path, true, out, err);
}

static void req_cache_clear(req_cache *rc)
{
    free(rc->model);
    rc->model = NULL;
    rc->len = 0;
    rc->whole = false;
    for (size_t i = 0; i < 4; i++) {
        sqlite3_value_free(rc->value[i]);
        rc->value[i] = NULL;
    }
}

void cs_store_close(cs_store *s)
{
    if (!s) {
        return;
    }
    cs_store_rollback(s);
    req_cache_clear(&s->req);
    cs_frag_map_fini(&s->frags);
    cs_buf_fini(&s->text);
    for (int i = 0; i < S_COUNT; i++) {
        sqlite3_finalize(s->st[i]);
    }
    sqlite3_finalize(s->bulk);
    sqlite3_close(s->db);
    free(s);
}

struct sqlite3 *cs_store_test_db(cs_store *s)
{
    return s->db;
}

/* ---- sweeps: small helpers ------------------------------------------------------------------- */

/* Reads sweep.state: CS_ENOENT naming the sweep if there is none. */
static cs_rc sweep_state(cs_store *s, int64_t sweep_id, cs_sweep_state *out, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = stmt(s, S_SWEEP_STATE, &st, err);
    int src;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *out = sweep_state_of((const char *)sqlite3_column_text(st, 0));
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: no sweep %lld", (long long)sweep_id);
    } else {
        rc = db_err(err, s->db, src, "read sweep");
    }
    rel(st);
    return rc;
}

/* Moves a sweep from `from` to `to`; *changed tells whether it was in `from`. */
static cs_rc sweep_set_state(cs_store *s, int64_t sweep_id, const char *from, const char *to,
                             const char *why, int64_t now, bool *changed, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = stmt(s, S_SWEEP_SET_STATE, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    bind_text(st, 2, to);
    bind_text(st, 3, why);
    sqlite3_bind_int64(st, 4, now);
    bind_text(st, 5, from);
    rc = run(s, st, "set sweep state", err);
    if (changed) {
        *changed = rc == CS_OK && sqlite3_changes(s->db) > 0;
    }
    return rc;
}

static cs_rc settle_one(cs_store *s, int64_t sweep_id, int64_t now, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = stmt(s, S_SWEEP_SETTLE_ONE, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    sqlite3_bind_int64(st, 2, now);
    return run(s, st, "settle sweep", err);
}

static cs_rc settle_all(cs_store *s, int64_t now, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = stmt(s, S_SWEEP_SETTLE_ALL, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, now);
    return run(s, st, "settle sweeps", err);
}

static cs_rc reopen_sweeps(cs_store *s, const char *why, int64_t now, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = stmt(s, S_SWEEP_REOPEN, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, now);
    bind_text(st, 2, why);
    return run(s, st, "reopen sweeps", err);
}

/* ---- submit and extend ----------------------------------------------------------------------- */

typedef struct insert_ctx {
    int64_t sweep_id;
    int priority;
    int max_attempts;
    bool force;
    bool extend; /* the sweep may have jobs already: load their keys first */
    int64_t now;
} insert_ctx;

/* Lowercase hex digits (a table: this runs once per cell of a 10^6-cell insert). */
static const unsigned char hex_digit[256] = {
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
        ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
};

static bool key_ok(const char *key)
{
    unsigned bad = 0;
    if (!key) {
        return false;
    }
    for (size_t n = 0; n < 64; n++) {
        if (!key[n]) {
            return false;
        }
        bad |= hex_digit[(unsigned char)key[n]] ^ 1u;
    }
    return bad == 0 && key[64] == '\0';
}

static cs_rc lookup_cache(cs_store *s, const char *key, int64_t *result_id, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = stmt(s, S_CACHE_GET, &st, err);
    bool found;
    *result_id = 0;
    if (rc != CS_OK) {
        return rc;
    }
    bind_text(st, 1, key);
    return step_int64(s, st, result_id, &found, "look up result cache", err);
}

/* Runs a one-column, one-row query with one text parameter; *out = its integer. */
static cs_rc query_int_text(cs_store *s, int id, const char *text, size_t len, int64_t *out,
                            bool *found, const char *what, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = stmt(s, id, &st, err);
    *found = false;
    if (rc != CS_OK) {
        return rc;
    }
    if (text) {
        sqlite3_bind_text(st, 1, text, (int)len, SQLITE_STATIC);
    }
    return step_int64(s, st, out, found, what, err);
}

/* ---- fragments ----------------------------------------------------------------------------- */

/* The fragment id of member text[0..len): the map, else the table, else a new row. A new member
 * must be valid JSON as the only member of an object: CS_EINVAL "malformed JSON" otherwise. */
static cs_rc frag_id(cs_store *s, const char *text, size_t len, int64_t *id, cs_err *err)
{
    uint64_t h = cs_frag_hash(text, len);
    sqlite3_stmt *st = NULL;
    bool found = false;
    cs_rc rc;

    *id = cs_frag_map_find_text(&s->frags, text, len, h);
    if (*id > 0) {
        return CS_OK;
    }
    if (len > INT_MAX) {
        return cs_err_set(err, CS_ETOOBIG, 0, "member of %zu bytes", len);
    }
    rc = query_int_text(s, S_FRAG_FIND, text, len, id, &found, "find fragment", err);
    if (rc == CS_OK && !found) {
        rc = stmt(s, S_FRAG_INSERT, &st, err);
        if (rc == CS_OK) {
            sqlite3_bind_text(st, 1, text, (int)len, SQLITE_STATIC);
            rc = run(s, st, "insert fragment", err);
        }
        if (rc == CS_OK && sqlite3_changes(s->db) == 0) {
            return cs_err_set(err, CS_EINVAL, 0, "malformed JSON in the member '%.*s'",
                              (int)(len < 60 ? len : 60), text);
        }
        if (rc == CS_OK) {
            *id = sqlite3_last_insert_rowid(s->db);
            s->frags_fresh = true;
        }
    }
    if (rc == CS_OK) {
        rc = cs_frag_map_add(&s->frags, *id, text, len, h, err);
    }
    return rc;
}

/* The text of fragment id: the map, else the table. Returns borrowed, valid until the next
 * fragment lookup. */
static cs_rc frag_text(cs_store *s, int64_t id, const char **text, size_t *len, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc;
    int src;

    *text = cs_frag_map_find_id(&s->frags, id, len);
    if (*text) {
        return CS_OK;
    }
    rc = stmt(s, S_FRAG_GET, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        rc = cs_frag_map_add(&s->frags, id, t ? t : "", t ? n : 0, cs_frag_hash(t ? t : "", n),
                             err);
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_EDB, 0, "store: fragment %lld is missing", (long long)id);
    } else {
        rc = db_err(err, s->db, src, "read fragment");
    }
    rel(st);
    if (rc == CS_OK) {
        *text = cs_frag_map_find_id(&s->frags, id, len);
    }
    return rc;
}

/* Rebuilds a config or axes text into s->text: raw when not NULL, else '{' + the texts of the
 * fragments of the id list + '}'. Returns an owned copy in *out (free()). */
static cs_rc rebuild(cs_store *s, const char *ids, const char *raw, char **out, cs_err *err)
{
    int64_t id[CS_FRAG_MAX_MEMBERS];
    size_t n = 0;
    cs_rc rc = CS_OK;

    *out = NULL;
    if (raw) {
        *out = cs_strdup(raw);
        return *out ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    if (!cs_frag_parse_ids(ids, id, CS_FRAG_MAX_MEMBERS, &n)) {
        return cs_err_set(err, CS_EDB, 0, "store: bad fragment list '%.40s'", ids ? ids : "");
    }
    s->text.len = 0;
    rc = cs_buf_putc(&s->text, '{');
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        const char *t = NULL;
        size_t len = 0;
        rc = frag_text(s, id[i], &t, &len, err);
        if (rc == CS_OK && i > 0) {
            rc = cs_buf_putc(&s->text, ',');
        }
        if (rc == CS_OK) {
            rc = cs_buf_append(&s->text, t, len);
        }
    }
    if (rc == CS_OK) {
        rc = cs_buf_putc(&s->text, '}');
    }
    if (rc == CS_OK) {
        *out = cs_strndup(s->text.data, s->text.len);
        if (!*out) {
            rc = CS_ENOMEM;
        }
    }
    if (rc == CS_ENOMEM) {
        cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    return rc;
}

/* The members of the previous cell's config (or axes) and their ids: consecutive cells share
 * most members, which are then found with one memcmp instead of a hash lookup. */
typedef struct member_memo {
    cs_buf text;
    cs_frag_span span[CS_FRAG_MAX_MEMBERS];
    int64_t id[CS_FRAG_MAX_MEMBERS];
    size_t n;
} member_memo;

/* An object text as stored: the id list in ids, or *raw = true when the text is kept whole
 * (it is not an object that cs_frag_split can cut; then it must still be valid JSON). spans/n
 * receive the members (n = 0 when raw). The members before the first byte in which text differs
 * from the previous cell's (memo) are that cell's: only the rest is split and looked up. */
static cs_rc encode_object(cs_store *s, member_memo *memo, const char *text, size_t len,
                           cs_buf *ids, bool *raw, cs_frag_span *spans, size_t *n, const char *what,
                           cs_err *err)
{
    int64_t id[CS_FRAG_MAX_MEMBERS];
    size_t keep = 0, rest = 0;
    bool ok;
    cs_rc rc = CS_OK;

    ids->len = 0;
    *raw = false;
    if (memo->n > 0) {
        /* Member k is the memo's when its bytes and the separator after it are common. */
        size_t common = cs_frag_common_prefix(text, len, memo->text.data, memo->text.len);
        while (keep < memo->n && memo->span[keep].off + memo->span[keep].len < common) {
            keep++;
        }
    }
    if (keep > 0) {
        memcpy(spans, memo->span, keep * sizeof(*spans));
        memcpy(id, memo->id, keep * sizeof(*id));
        ok = cs_frag_split_from(text, len, memo->span[keep - 1].off + memo->span[keep - 1].len + 1,
                                spans + keep, CS_FRAG_MAX_MEMBERS - keep, &rest);
        *n = keep + rest;
    } else {
        ok = cs_frag_split(text, len, spans, CS_FRAG_MAX_MEMBERS, n);
    }
    if (!ok) {
        int64_t valid = 0;
        bool found = false;
        *n = 0;
        *raw = true;
        memo->n = 0;
        if (len > INT_MAX) {
            return cs_err_set(err, CS_ETOOBIG, 0, "%s of %zu bytes", what, len);
        }
        rc = query_int_text(s, S_JSON_VALID, text, len, &valid, &found, "check JSON", err);
        if (rc == CS_OK && !valid) {
            rc = cs_err_set(err, CS_EINVAL, 0, "%s: malformed JSON", what);
        }
        return rc;
    }
    for (size_t i = keep; i < *n && rc == CS_OK; i++) {
        const char *m = text + spans[i].off;
        /* After the member that changed, the others are often the memo's again. */
        if (i < memo->n && memo->span[i].len == spans[i].len &&
            memcmp(memo->text.data + memo->span[i].off, m, spans[i].len) == 0) {
            id[i] = memo->id[i];
            continue;
        }
        rc = frag_id(s, m, spans[i].len, &id[i], err);
        if (rc != CS_OK) {
            cs_err_prefix(err, "%s", what);
        }
    }
    if (rc == CS_OK) {
        rc = cs_frag_format_ids(ids, id, *n);
        if (rc != CS_OK) {
            return cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
        }
    }
    memo->text.len = 0;
    memo->n = 0;
    if (rc == CS_OK && cs_buf_append(&memo->text, text, len) == CS_OK) {
        memcpy(memo->span, spans, *n * sizeof(*spans));
        memcpy(memo->id, id, *n * sizeof(*id));
        memo->n = *n;
    }
    return rc;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* When member m[0..len) is "model": value (the key written plainly, as canonical JSON always
 * does), the value's span without surrounding whitespace. */
static bool model_member(const char *m, size_t len, const char **v, size_t *vlen)
{
    size_t i = 0, end = len;
    while (i < len && is_ws(m[i])) {
        i++;
    }
    if (len - i < 7 || memcmp(m + i, "\"model\"", 7) != 0) {
        return false;
    }
    i += 7;
    while (i < len && is_ws(m[i])) {
        i++;
    }
    if (i >= len || m[i] != ':') {
        return false;
    }
    i++;
    while (i < len && is_ws(m[i])) {
        i++;
    }
    while (end > i && is_ws(m[end - 1])) {
        end--;
    }
    *v = m + i;
    *vlen = end - i;
    return true;
}

/* Fills s->req with the requirements of json[0..len) - a model object (whole = false) or a whole
 * config (whole = true) - unless they are cached. A malformed text fails with SQLite's
 * "malformed JSON". */
static cs_rc reqs_of(cs_store *s, const char *json, size_t len, bool whole, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    req_cache *c = &s->req;
    cs_rc rc;
    int src;

    if (c->model && c->whole == whole && c->len == len && memcmp(c->model, json, len) == 0) {
        return CS_OK;
    }
    req_cache_clear(c);
    if (len > INT_MAX) {
        return cs_err_set(err, CS_ETOOBIG, 0, "store: config of %zu bytes", len);
    }
    rc = stmt(s, whole ? S_REQ_OF_CONFIG : S_REQ_OF_MODEL, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_text(st, 1, json, (int)len, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = db_err(err, s->db, src, "read the model's requirements");
        rel(st);
        return rc;
    }
    for (int i = 0; i < 4; i++) {
        c->value[i] = sqlite3_value_dup(sqlite3_column_value(st, i));
        if (!c->value[i]) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
        }
    }
    rel(st);
    c->model = rc == CS_OK ? malloc(len ? len : 1) : NULL;
    if (rc == CS_OK && !c->model) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    if (rc != CS_OK) {
        req_cache_clear(c);
        return rc;
    }
    memcpy(c->model, json, len);
    c->len = len;
    c->whole = whole;
    return CS_OK;
}

/* The requirement columns of a config: from its "model" member, evaluated once per distinct
 * model (consecutive cells share it), else from the whole text (the model key escaped, no model,
 * or a config kept raw). */
static cs_rc config_reqs(cs_store *s, const char *config, size_t len, const cs_frag_span *spans,
                         size_t n, cs_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = NULL;
        size_t vlen = 0;
        if (model_member(config + spans[i].off, spans[i].len, &v, &vlen)) {
            return reqs_of(s, v, vlen, false, err);
        }
    }
    return reqs_of(s, config, len, true, err);
}

/* ---- the insert path ------------------------------------------------------------------------ */

/* One of the 17 values per row of JOB_INSERT that the requirement cache provides, copied out of
 * it (the cache may hold another model's by the time the row is written). */
typedef struct req_val {
    int type; /* SQLITE_NULL, _INTEGER, _FLOAT, _TEXT */
    int64_t i;
    double d;
    cs_buf text;
} req_val;

/* A job waiting in the insert batch: its own copies of everything it binds. */
typedef struct pending_row {
    char key[65];
    cs_buf cfg, axes; /* id lists, or the whole texts when raw */
    bool cfg_raw, axes_raw;
    bool baseline;
    int64_t result_id; /* 0: queued */
    req_val req[4];
} pending_row;

/* Rows per multi-row INSERT: one statement per job cost as much again as the row itself. The
 * insert is OR FAIL and job_row's references are deferred (0002_fragments.sql): no constraint can
 * then make SQLite undo part of a statement, so it keeps no statement journal (a copy of every
 * page the statement touches); on an error the operation's transaction or savepoint is undone
 * whole anyway. */
#define INSERT_ROWS 32

/* Per-insert state: the sweep's keys, the previous cell's members, the batch of rows. */
typedef struct inserter {
    cs_keyset keys; /* the sweep's stored keys, once keys_on */
    bool keys_on;   /* keys holds every stored job of the sweep (extend, or a cell not unique) */
    member_memo cfg_memo, axes_memo;
    cs_frag_span spans[CS_FRAG_MAX_MEMBERS];
    pending_row rows[INSERT_ROWS];
    size_t n_rows;
} inserter;

static void inserter_fini(inserter *in)
{
    cs_keyset_fini(&in->keys);
    cs_buf_fini(&in->cfg_memo.text);
    cs_buf_fini(&in->axes_memo.text);
    for (size_t r = 0; r < INSERT_ROWS; r++) {
        cs_buf_fini(&in->rows[r].cfg);
        cs_buf_fini(&in->rows[r].axes);
        for (int i = 0; i < 4; i++) {
            cs_buf_fini(&in->rows[r].req[i].text);
        }
    }
}

/* Puts the keys of the sweep's stored jobs into in->keys. */
static cs_rc load_keys(cs_store *s, inserter *in, int64_t sweep_id, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = stmt(s, S_SWEEP_KEYS, &st, err);
    int src;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 1);
        if (!key_ok(key)) {
            rc = cs_err_set(err, CS_EDB, 0, "store: job %lld has a bad key",
                            (long long)sqlite3_column_int64(st, 0));
            break;
        }
        rc = cs_keyset_add(&in->keys, cs_keyset_fingerprint(key), sqlite3_column_int64(st, 0), err);
        if (rc != CS_OK) {
            break;
        }
    }
    if (rc == CS_OK && src != SQLITE_DONE) {
        rc = db_err(err, s->db, src, "read the sweep's keys");
    }
    rel(st);
    return rc;
}

/* Whether the sweep has a job with key (fingerprint fp) already: stored, or in the batch. */
static cs_rc key_known(cs_store *s, const inserter *in, const char *key, uint64_t fp, bool *known,
                       cs_err *err)
{
    *known = false;
    for (size_t r = 0; r < in->n_rows; r++) {
        if (memcmp(in->rows[r].key, key, 64) == 0) {
            *known = true;
            return CS_OK;
        }
    }
    for (size_t i = cs_keyset_first(&in->keys, fp); i != CS_KEYSET_END;
         i = cs_keyset_next(&in->keys, fp, i)) {
        sqlite3_stmt *st = NULL;
        cs_rc rc = stmt(s, S_KEY_OF, &st, err);
        int src;
        if (rc != CS_OK) {
            return rc;
        }
        sqlite3_bind_int64(st, 1, cs_keyset_id(&in->keys, i));
        src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            const char *k = (const char *)sqlite3_column_text(st, 0);
            *known = k && strcmp(k, key) == 0;
        } else if (src != SQLITE_DONE) {
            rc = db_err(err, s->db, src, "read a job's key");
        }
        rel(st);
        if (rc != CS_OK || *known) {
            return rc;
        }
    }
    return CS_OK;
}

static cs_rc copy_req(req_val *v, sqlite3_value *src)
{
    v->type = sqlite3_value_type(src);
    if (v->type == SQLITE_INTEGER) {
        v->i = sqlite3_value_int64(src);
    } else if (v->type == SQLITE_FLOAT) {
        v->d = sqlite3_value_double(src);
    } else if (v->type == SQLITE_TEXT) {
        const char *t = (const char *)sqlite3_value_text(src);
        v->text.len = 0;
        return cs_buf_append(&v->text, t ? t : "", (size_t)sqlite3_value_bytes(src));
    } else {
        v->type = SQLITE_NULL;
    }
    return CS_OK;
}

/* Encodes a cell that the sweep does not have into the next row of the batch. */
static cs_rc add_row(cs_store *s, inserter *in, const cs_cell *cell, int64_t result_id, cs_err *err)
{
    pending_row *row = &in->rows[in->n_rows];
    cs_frag_span axes_spans[CS_FRAG_MAX_MEMBERS];
    size_t n = 0, n_axes = 0;
    size_t cfg_len = cell->config_len ? cell->config_len : strlen(cell->config);
    size_t axes_len = cell->axes_len ? cell->axes_len : strlen(cell->axes);
    cs_rc rc;

    rc = encode_object(s, &in->cfg_memo, cell->config, cfg_len, &row->cfg, &row->cfg_raw, in->spans,
                       &n, "config", err);
    if (rc == CS_OK) {
        rc = config_reqs(s, cell->config, cfg_len, in->spans, n, err);
    }
    if (rc == CS_OK) {
        rc = encode_object(s, &in->axes_memo, cell->axes, axes_len, &row->axes, &row->axes_raw,
                           axes_spans, &n_axes, "axes", err);
    }
    if (rc != CS_OK) {
        return rc;
    }
    if (row->cfg_raw) {
        row->cfg.len = 0;
        rc = cs_buf_append(&row->cfg, cell->config, cfg_len);
    }
    if (rc == CS_OK && row->axes_raw) {
        row->axes.len = 0;
        rc = cs_buf_append(&row->axes, cell->axes, axes_len);
    }
    for (int i = 0; i < 4 && rc == CS_OK; i++) {
        rc = copy_req(&row->req[i], s->req.value[i]);
    }
    if (rc != CS_OK) {
        return cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    memcpy(row->key, cell->key, 65);
    row->baseline = cell->baseline;
    row->result_id = result_id;
    in->n_rows++;
    return CS_OK;
}

static void bind_row(sqlite3_stmt *st, int b, const insert_ctx *ic, const pending_row *row)
{
    sqlite3_bind_int64(st, b + 1, ic->sweep_id);
    sqlite3_bind_text(st, b + 2, row->key, 64, SQLITE_STATIC);
    if (row->cfg_raw) {
        sqlite3_bind_text(st, b + 3, "[]", 2, SQLITE_STATIC);
        sqlite3_bind_text(st, b + 5, row->cfg.data, (int)row->cfg.len, SQLITE_STATIC);
    } else {
        sqlite3_bind_text(st, b + 3, row->cfg.data, (int)row->cfg.len, SQLITE_STATIC);
        sqlite3_bind_null(st, b + 5);
    }
    if (row->axes_raw) {
        sqlite3_bind_text(st, b + 4, "[]", 2, SQLITE_STATIC);
        sqlite3_bind_text(st, b + 6, row->axes.data, (int)row->axes.len, SQLITE_STATIC);
    } else {
        sqlite3_bind_text(st, b + 4, row->axes.data, (int)row->axes.len, SQLITE_STATIC);
        sqlite3_bind_null(st, b + 6);
    }
    sqlite3_bind_int(st, b + 7, row->baseline ? 1 : 0);
    sqlite3_bind_text(st, b + 8, row->result_id ? "cached" : "queued", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, b + 9, ic->now);
    sqlite3_bind_text(st, b + 10, row->result_id ? "result cached" : "submitted", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, b + 11, ic->priority);
    sqlite3_bind_int(st, b + 12, ic->max_attempts);
    if (row->result_id) {
        sqlite3_bind_int64(st, b + 13, row->result_id);
    } else {
        sqlite3_bind_null(st, b + 13);
    }
    for (int i = 0; i < 4; i++) {
        const req_val *v = &row->req[i];
        if (v->type == SQLITE_INTEGER) {
            sqlite3_bind_int64(st, b + 14 + i, v->i);
        } else if (v->type == SQLITE_FLOAT) {
            sqlite3_bind_double(st, b + 14 + i, v->d);
        } else if (v->type == SQLITE_TEXT) {
            sqlite3_bind_text(st, b + 14 + i, v->text.data ? v->text.data : "", (int)v->text.len,
                              SQLITE_STATIC);
        } else {
            sqlite3_bind_null(st, b + 14 + i);
        }
    }
}

/* The multi-row insert (INSERT_ROWS rows), prepared on first use. */
static cs_rc bulk_stmt(cs_store *s, sqlite3_stmt **out, cs_err *err)
{
    cs_buf sql = {0};
    int src;
    cs_rc rc = CS_OK;

    if (s->bulk) {
        sqlite3_reset(s->bulk);
        *out = s->bulk;
        return CS_OK;
    }
    /* JOB_INSERT's column list, then its values once per row with the parameters shifted. */
    rc = cs_buf_puts(&sql, stmt_sql[S_JOB_INSERT]);
    if (rc == CS_OK) {
        char *values = strstr(sql.data, " VALUES ");
        sql.len = (size_t)(values - sql.data) + 8;
        for (int r = 0; r < INSERT_ROWS && rc == CS_OK; r++) {
            int b = 17 * r;
            rc = cs_buf_printf(&sql, "%s(", r ? "," : "");
            for (int i = 1; i <= 17 && rc == CS_OK; i++) {
                rc = cs_buf_printf(&sql, "?%d,", b + i);
            }
            if (rc == CS_OK) {
                rc = cs_buf_printf(&sql, "?%d)", b + 9); /* created = state_at */
            }
        }
    }
    if (rc != CS_OK) {
        cs_buf_fini(&sql);
        return cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    src = sqlite3_prepare_v3(s->db, sql.data, -1, SQLITE_PREPARE_PERSISTENT, &s->bulk, NULL);
    cs_buf_fini(&sql);
    if (src != SQLITE_OK) {
        return db_err(err, s->db, src, "prepare the bulk insert");
    }
    *out = s->bulk;
    return CS_OK;
}

/* Writes the batch: one multi-row INSERT when it is full, else one INSERT per row. With keys_on
 * the new jobs' keys join in->keys (rowids of one INSERT are consecutive: the table only grows at
 * its end; checked on the first and last row). */
static cs_rc flush_rows(cs_store *s, inserter *in, const insert_ctx *ic, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    int64_t last = 0;
    cs_rc rc = CS_OK;

    if (in->n_rows == INSERT_ROWS) {
        rc = bulk_stmt(s, &st, err);
        for (size_t r = 0; r < in->n_rows && rc == CS_OK; r++) {
            bind_row(st, 17 * (int)r, ic, &in->rows[r]);
        }
        if (rc == CS_OK) {
            rc = run(s, st, "insert jobs", err);
        }
        if (rc == CS_OK && sqlite3_changes(s->db) != INSERT_ROWS) {
            rc = cs_err_set(err, CS_EINTERNAL, 0, "store: the bulk insert stored %d rows",
                            sqlite3_changes(s->db));
        }
    } else {
        for (size_t r = 0; r < in->n_rows && rc == CS_OK; r++) {
            rc = stmt(s, S_JOB_INSERT, &st, err);
            if (rc == CS_OK) {
                bind_row(st, 0, ic, &in->rows[r]);
                rc = run(s, st, "insert job", err);
            }
        }
    }
    last = sqlite3_last_insert_rowid(s->db);
    if (rc == CS_OK && in->keys_on && in->n_rows > 0) {
        int64_t first = last - (int64_t)in->n_rows + 1;
        for (int k = 0; k < 2 && rc == CS_OK; k++) {
            sqlite3_stmt *q = NULL;
            const pending_row *row = &in->rows[k ? in->n_rows - 1 : 0];
            rc = stmt(s, S_KEY_OF, &q, err);
            if (rc == CS_OK) {
                sqlite3_bind_int64(q, 1, k ? last : first);
                if (sqlite3_step(q) != SQLITE_ROW || !sqlite3_column_text(q, 0) ||
                    strcmp((const char *)sqlite3_column_text(q, 0), row->key) != 0) {
                    rc = cs_err_set(err, CS_EINTERNAL, 0,
                                    "store: the batch's job ids are not consecutive");
                }
                rel(q);
            }
        }
        for (size_t r = 0; r < in->n_rows && rc == CS_OK; r++) {
            rc = cs_keyset_add(&in->keys, cs_keyset_fingerprint(in->rows[r].key),
                               first + (int64_t)r, err);
        }
    }
    in->n_rows = 0;
    return rc;
}

/* Reads every cell of the stream into the sweep. */
static cs_rc insert_cells(cs_store *s, const insert_ctx *ic, cs_cell_next_fn next, void *ctx,
                          cs_store_submit_counts *c, cs_err *err)
{
    inserter *in = calloc(1, sizeof(*in));
    bool probe_cache = false, found = false;
    int64_t any = 0;
    size_t flushed = 0; /* cells up to the first one in the batch */
    cs_cell cell;
    cs_rc rc = CS_OK;

    if (!in) {
        return cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    if (!ic->force) {
        /* An empty cache (a new database) needs no probe per cell. */
        rc = query_int_text(s, S_CACHE_ANY, NULL, 0, &any, &found, "probe result cache", err);
        probe_cache = any != 0;
    }
    if (rc == CS_OK && ic->extend) {
        rc = load_keys(s, in, ic->sweep_id, err);
        in->keys_on = true;
    }
    while (rc == CS_OK) {
        int64_t result_id = 0;
        bool known = false;
        memset(&cell, 0, sizeof(cell));
        rc = next(ctx, &cell, err);
        if (rc == CS_ENOENT) {
            cs_err_clear(err);
            rc = CS_OK;
            break;
        }
        if (rc != CS_OK) {
            cs_err_prefix(err, "store: cell %zu", c->cells + 1);
            break;
        }
        c->cells++;
        if (!key_ok(cell.key) || !cell.config || !cell.axes) {
            rc = cs_err_set(err, CS_EINVAL, 0, "store: cell %zu: %s", c->cells,
                            !key_ok(cell.key) ? "key is not 64 lowercase hex digits"
                                              : "config or axes missing");
            break;
        }
        if (!cell.unique && !in->keys_on) {
            /* The cells so far needed no check; this one is checked against them all. */
            rc = flush_rows(s, in, ic, err);
            if (rc == CS_OK) {
                rc = load_keys(s, in, ic->sweep_id, err);
            }
            in->keys_on = true;
        }
        if (rc == CS_OK && in->keys_on) {
            rc = key_known(s, in, cell.key, cs_keyset_fingerprint(cell.key), &known, err);
        }
        if (rc != CS_OK) {
            break;
        }
        if (known) {
            c->existing++;
            continue;
        }
        if (probe_cache) {
            rc = lookup_cache(s, cell.key, &result_id, err);
            if (rc != CS_OK) {
                break;
            }
        }
        if (in->n_rows == 0) {
            flushed = c->cells - 1;
        }
        rc = add_row(s, in, &cell, result_id, err);
        if (rc != CS_OK) {
            cs_err_prefix(err, "store: cell %zu (key %.12s)", c->cells, cell.key);
            break;
        }
        if (in->n_rows == INSERT_ROWS) {
            rc = flush_rows(s, in, ic, err);
            if (rc != CS_OK) {
                cs_err_prefix(err, "store: cells %zu..%zu", flushed + 1, c->cells);
                break;
            }
        }
        c->inserted++;
        if (result_id) {
            c->cached++;
        } else {
            c->queued++;
        }
        if (cell.baseline) {
            c->baselines++;
        }
    }
    if (rc == CS_OK && in->n_rows > 0) {
        rc = flush_rows(s, in, ic, err);
        if (rc != CS_OK) {
            cs_err_prefix(err, "store: cells %zu..%zu", flushed + 1, c->cells);
        }
    }
    inserter_fini(in);
    free(in);
    return rc;
}

static int64_t secs_to_ms(double sec)
{
    if (!(sec > 0)) {
        return 0;
    }
    if (sec > (double)(INT64_MAX / 1000)) {
        return INT64_MAX / 1000 * 1000;
    }
    return (int64_t)llround(sec * 1000.0);
}

cs_rc cs_store_submit(cs_store *s, const cs_sweep_meta *meta, cs_cell_next_fn next, void *ctx,
                      bool force, int64_t now, cs_store_submit_counts *counts, cs_err *err)
{
    cs_store_submit_counts c = {0};
    sqlite3_stmt *st = NULL;
    insert_ctx ic = {0};
    const cs_policy *p = meta ? &meta->policy : NULL;
    cs_rc rc;
    int src;

    if (counts) {
        memset(counts, 0, sizeof(*counts));
    }
    if (!meta || !meta->name || !meta->spec || !meta->spec_hash || !next) {
        return cs_err_set(err, CS_EINVAL, 0, "store: submit: name, spec, hash and cells needed");
    }
    if (p->max_attempts < 1 || p->max_running < 0) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "store: submit %s: max_attempts %d must be >= 1, max_running %d >= 0",
                          meta->name, p->max_attempts, p->max_running);
    }
    rc = op_begin(s, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = stmt(s, S_SWEEP_LIVE, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    bind_text(st, 1, meta->name);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        rc = cs_err_set(err, CS_EEXIST, 0,
                        "store: sweep '%s' already exists (id %lld); extend it to add cells, "
                        "or cancel it first",
                        meta->name, (long long)sqlite3_column_int64(st, 0));
    } else if (src != SQLITE_DONE) {
        rc = db_err(err, s->db, src, "look up sweep");
    }
    rel(st);
    if (rc != CS_OK) {
        goto out;
    }
    rc = stmt(s, S_SWEEP_INSERT, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    bind_text(st, 1, meta->name);
    bind_text(st, 2, meta->spec);
    bind_text(st, 3, meta->spec_hash);
    sqlite3_bind_int(st, 4, p->max_attempts);
    sqlite3_bind_int64(st, 5, secs_to_ms(p->backoff_base_s));
    sqlite3_bind_int64(st, 6, secs_to_ms(p->backoff_max_s));
    sqlite3_bind_int64(st, 7, p->timeout_s > 0 ? p->timeout_s * 1000 : 0);
    sqlite3_bind_int(st, 8, p->priority);
    sqlite3_bind_int(st, 9, p->max_running);
    bind_text(st, 10, p->stop_on_failure ? "stop" : "continue");
    sqlite3_bind_int64(st, 11, now);
    rc = run(s, st, "insert sweep", err);
    if (rc != CS_OK) {
        goto out;
    }
    c.sweep_id = sqlite3_last_insert_rowid(s->db);
    rc = stmt(s, S_SWEEP_EVENT, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, c.sweep_id);
    bind_text(st, 3, "active");
    bind_text(st, 4, "submitted");
    rc = run(s, st, "log sweep", err);
    if (rc != CS_OK) {
        goto out;
    }
    ic.sweep_id = c.sweep_id;
    ic.priority = p->priority;
    ic.max_attempts = p->max_attempts;
    ic.force = force;
    ic.now = now;
    rc = insert_cells(s, &ic, next, ctx, &c, err);
    if (rc == CS_OK && c.inserted == 0) {
        rc = cs_err_set(err, CS_EINVAL, 0, "store: sweep '%s' has no cells", meta->name);
    }
    if (rc == CS_OK) {
        rc = settle_one(s, c.sweep_id, now, err);
    }
    if (rc == CS_OK && c.inserted >= CS_STORE_BULK_JOBS) {
        s->defer_ckpt = true;
    }
out:
    rc = op_end(s, rc, err);
    if (rc == CS_OK && counts) {
        *counts = c;
    }
    return rc;
}

cs_rc cs_store_extend(cs_store *s, int64_t sweep_id, const cs_sweep_meta *meta,
                      cs_cell_next_fn next, void *ctx, bool force, int64_t now,
                      cs_store_submit_counts *counts, cs_err *err)
{
    cs_store_submit_counts c = {0};
    sqlite3_stmt *st = NULL;
    insert_ctx ic = {0};
    cs_sweep_state state = CS_SWEEP_ACTIVE;
    cs_rc rc;
    int src;

    if (counts) {
        memset(counts, 0, sizeof(*counts));
    }
    if (!next) {
        return cs_err_set(err, CS_EINVAL, 0, "store: extend: no cells");
    }
    rc = op_begin(s, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = stmt(s, S_SWEEP_BASICS, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        state = sweep_state_of((const char *)sqlite3_column_text(st, 0));
        ic.priority = sqlite3_column_int(st, 1);
        ic.max_attempts = sqlite3_column_int(st, 2);
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: extend: no sweep %lld", (long long)sweep_id);
    } else {
        rc = db_err(err, s->db, src, "read sweep");
    }
    rel(st);
    if (rc == CS_OK && state == CS_SWEEP_CANCELLED) {
        rc = cs_err_set(err, CS_ESTATE, 0, "store: extend: sweep %lld is cancelled",
                        (long long)sweep_id);
    }
    if (rc != CS_OK) {
        goto out;
    }
    if (meta && meta->spec && meta->spec_hash) {
        rc = stmt(s, S_SWEEP_SPEC, &st, err);
        if (rc != CS_OK) {
            goto out;
        }
        sqlite3_bind_int64(st, 1, sweep_id);
        bind_text(st, 2, meta->spec);
        bind_text(st, 3, meta->spec_hash);
        sqlite3_bind_int64(st, 4, now);
        rc = run(s, st, "update sweep spec", err);
        if (rc != CS_OK) {
            goto out;
        }
    }
    c.sweep_id = sweep_id;
    ic.sweep_id = sweep_id;
    ic.force = force;
    ic.extend = true;
    ic.now = now;
    rc = insert_cells(s, &ic, next, ctx, &c, err);
    if (rc == CS_OK && state == CS_SWEEP_DONE && c.queued > 0) {
        rc = sweep_set_state(s, sweep_id, "done", "active", "extended", now, NULL, err);
    }
    if (rc == CS_OK && c.inserted >= CS_STORE_BULK_JOBS) {
        s->defer_ckpt = true;
    }
out:
    rc = op_end(s, rc, err);
    if (rc == CS_OK && counts) {
        *counts = c;
    }
    return rc;
}

/* ---- claim ----------------------------------------------------------------------------------- */

void cs_store_claim_fini(cs_store_claim *c)
{
    if (c) {
        free(c->config);
        memset(c, 0, sizeof(*c));
    }
}

/* Fills out from a RETURNING row: id, sweep_id, attempt, lease_until, key, cfg, config_raw. The
 * config is the raw text, or, when *ids is set (owned), still to be rebuilt from that fragment
 * list by finish_claim once the statement is reset. */
static cs_rc claim_from_row(sqlite3_stmt *st, cs_store_claim *out, char **ids, cs_err *err)
{
    const char *raw = (const char *)sqlite3_column_text(st, 6);
    out->job_id = sqlite3_column_int64(st, 0);
    out->sweep_id = sqlite3_column_int64(st, 1);
    out->attempt = sqlite3_column_int(st, 2);
    out->lease_until = sqlite3_column_int64(st, 3);
    copy_text(out->key, sizeof(out->key), sqlite3_column_text(st, 4));
    if (raw) {
        out->config = cs_strdup(raw);
    } else {
        *ids = cs_strdup((const char *)sqlite3_column_text(st, 5));
    }
    if (!out->config && !*ids) {
        return cs_err_set(err, CS_ENOMEM, 0, "store: claim: out of memory");
    }
    return CS_OK;
}

/* Rebuilds the config of a claim from its fragment list (claim_from_row); frees ids. */
static cs_rc finish_claim(cs_store *s, cs_store_claim *out, char *ids, cs_err *err)
{
    cs_rc rc = CS_OK;
    if (ids) {
        rc = rebuild(s, ids, NULL, &out->config, err);
        free(ids);
    }
    return rc;
}

/* The live lease of caps' worker process (worker and instance), renewed to lease_until: *found
 * and out filled (again = true) when there is one. A claim without an instance, or with another
 * one, never sees a lease (and so never its token). */
static cs_rc claim_held(cs_store *s, const cs_store_caps *caps, int64_t lease_until, int64_t now,
                        cs_store_claim *out, bool *found, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    char *ids = NULL;
    char token[CS_STORE_TOKEN_LEN + 1] = "";
    int64_t id = 0;
    int src;
    cs_rc rc;
    *found = false;
    if (!caps->instance) {
        return CS_OK;
    }
    rc = stmt(s, S_CLAIM_HELD, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    bind_text(st, 1, caps->worker);
    sqlite3_bind_int64(st, 2, now);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *inst = (const char *)sqlite3_column_text(st, 1);
        const char *tok = (const char *)sqlite3_column_text(st, 2);
        if (cs_proto_token_eq(inst, caps->instance) && cs_proto_token_ok(tok)) {
            id = sqlite3_column_int64(st, 0);
            copy_text(token, sizeof(token), (const unsigned char *)tok);
            break;
        }
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = db_err(err, s->db, src, "look up held lease");
    }
    rel(st);
    if (rc != CS_OK || id == 0) {
        return rc;
    }
    rc = stmt(s, S_CLAIM_RENEW, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, lease_until);
    sqlite3_bind_int64(st, 3, now);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        rc = claim_from_row(st, out, &ids, err);
        out->again = true;
        memcpy(out->lease_token, token, sizeof(token));
    } else {
        rc = db_err(err, s->db, src, "renew held lease");
    }
    rel(st);
    if (rc == CS_OK) {
        rc = finish_claim(s, out, ids, err);
        ids = NULL;
    }
    free(ids);
    *found = rc == CS_OK;
    return rc;
}

cs_rc cs_store_claim_job(cs_store *s, const cs_store_caps *caps, int64_t lease_ms, int64_t now,
                         cs_store_claim *out, cs_err *err)
{
    int64_t mark = 0;
    cs_store_claim c = {0};
    sqlite3_stmt *st = NULL;
    char *ids = NULL;
    bool found = false;
    int src;
    cs_rc rc;

    if (!caps || !caps->worker || !*caps->worker || lease_ms <= 0) {
        return cs_err_set(err, CS_EINVAL, 0, "store: claim: a worker id and a lease are needed");
    }
    if (caps->instance && !cs_proto_token_ok(caps->instance)) {
        return cs_err_set(err, CS_EINVAL, 0, "store: claim: malformed instance");
    }
    rc = op_begin_w(s, &mark, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = claim_held(s, caps, now + lease_ms, now, &c, &found, err);
    if (rc != CS_OK || found) {
        goto timeout;
    }
    rc = stmt(s, S_CLAIM, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    bind_text(st, 1, caps->worker);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, now + lease_ms);
    bind_text(st, 4, caps->models);
    sqlite3_bind_int(st, 5, caps->native ? 1 : 0);
    sqlite3_bind_int(st, 6, caps->exec ? 1 : 0);
    if (caps->mem_mb >= 0) {
        sqlite3_bind_int64(st, 7, caps->mem_mb);
    }
    sqlite3_bind_int64(st, 8, caps->gpus);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        rc = claim_from_row(st, &c, &ids, err);
    } else if (src == SQLITE_DONE) {
        rc = CS_ENOENT; /* nothing to do: not an error worth a message */
    } else {
        rc = db_err(err, s->db, src, "claim");
    }
    rel(st);
    if (rc == CS_OK) {
        rc = finish_claim(s, &c, ids, err);
        ids = NULL;
    }
    if (rc == CS_OK) {
        rc = cs_proto_new_token(c.lease_token, err);
    }
    if (rc != CS_OK) {
        goto out;
    }
    rc = stmt(s, S_ATTEMPT_INSERT, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, c.job_id);
    sqlite3_bind_int(st, 2, c.attempt);
    bind_text(st, 3, caps->worker);
    bind_text(st, 4, caps->host);
    sqlite3_bind_int64(st, 5, now);
    bind_text(st, 6, c.lease_token);
    bind_text(st, 7, caps->instance);
    rc = run(s, st, "record attempt", err);
timeout:
    if (rc == CS_OK) {
        rc = stmt(s, S_SWEEP_TIMEOUT, &st, err);
        if (rc == CS_OK) {
            sqlite3_bind_int64(st, 1, c.sweep_id);
            src = sqlite3_step(st);
            if (src == SQLITE_ROW) {
                c.timeout_ms = sqlite3_column_int64(st, 0);
            } else {
                rc = db_err(err, s->db, src, "read timeout");
            }
            rel(st);
        }
    }
out:
    free(ids);
    rc = op_end_w(s, rc, mark, err);
    if (rc == CS_OK) {
        *out = c;
    } else {
        cs_store_claim_fini(&c);
    }
    return rc;
}

/* ---- heartbeat, result, fail ------------------------------------------------------------------
 */

typedef struct job_brief {
    cs_job_state state;
    int attempt;
    char key[65];
    int64_t sweep_id;
    bool cancel_requested;
    int max_attempts;
} job_brief;

static cs_rc read_brief(cs_store *s, int64_t job_id, job_brief *b, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = stmt(s, S_JOB_BRIEF, &st, err);
    int src;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, job_id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        b->state = job_state_of((const char *)sqlite3_column_text(st, 0));
        b->attempt = sqlite3_column_int(st, 1);
        copy_text(b->key, sizeof(b->key), sqlite3_column_text(st, 2));
        b->sweep_id = sqlite3_column_int64(st, 3);
        b->cancel_requested = sqlite3_column_int(st, 4) != 0;
        b->max_attempts = sqlite3_column_int(st, 5);
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: no job %lld", (long long)job_id);
    } else {
        rc = db_err(err, s->db, src, "read job");
    }
    rel(st);
    return rc;
}

static cs_rc stale(cs_err *err, const char *what, int64_t job_id, int attempt, const job_brief *b)
{
    return cs_err_set(err, CS_ESTALE, 0,
                      "store: %s of job %lld attempt %d refused: the job is %s "
                      "at attempt %d",
                      what, (long long)job_id, attempt, cs_job_state_name(b->state), b->attempt);
}

cs_rc cs_store_lease_check(cs_store *s, int64_t job_id, int attempt, const char *worker,
                           const char *token, const char *what, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    bool holder = false;
    int src;
    cs_rc rc = stmt(s, S_LEASE_GET, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, attempt);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        const char *w = (const char *)sqlite3_column_text(st, 0);
        /* The token comparison takes the same time wherever a guess goes wrong. */
        bool token_ok = cs_proto_token_eq((const char *)sqlite3_column_text(st, 1), token);
        holder = token_ok && w && worker && strcmp(w, worker) == 0;
        if (!holder) {
            rc = cs_err_set(err, CS_ESTALE, 0,
                            "store: %s of job %lld attempt %d refused: worker \"%.64s\" does not "
                            "hold its lease (wrong worker or lease token)",
                            what, (long long)job_id, attempt, worker ? worker : "");
        }
    } else if (src == SQLITE_DONE) {
        rc = CS_ENOENT;
    } else {
        rc = db_err(err, s->db, src, "read lease");
    }
    rel(st);
    return rc;
}

/* cs_store_lease_check inside an operation: CS_OK when worker holds the lease; CS_ESTALE when it
 * does not; for an attempt that does not exist, the job's own state decides (CS_ENOENT for an
 * unknown job, CS_ESTALE naming its state otherwise). */
static cs_rc lease_holder(cs_store *s, int64_t job_id, int attempt, const char *worker,
                          const char *token, const char *what, cs_err *err)
{
    job_brief b = {0};
    cs_rc rc = cs_store_lease_check(s, job_id, attempt, worker, token, what, err);
    if (rc != CS_ENOENT) {
        return rc;
    }
    rc = read_brief(s, job_id, &b, err);
    return rc == CS_OK ? stale(err, what, job_id, attempt, &b) : rc;
}

cs_rc cs_store_heartbeat(cs_store *s, int64_t job_id, int attempt, const char *worker,
                         const char *token, int64_t lease_ms, const char *progress, int64_t now,
                         bool *cancel, cs_err *err)
{
    int64_t mark = 0;
    sqlite3_stmt *st = NULL;
    job_brief b = {0};
    bool found = false, cancel_pending = false;
    int src;
    cs_rc rc = op_begin_w(s, &mark, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = lease_holder(s, job_id, attempt, worker, token, "heartbeat", err);
    if (rc != CS_OK) {
        goto out;
    }
    rc = stmt(s, S_HEARTBEAT, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, attempt);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now + (lease_ms > 0 ? lease_ms : 0));
    bind_text(st, 5, progress);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        found = true;
        cancel_pending = sqlite3_column_int(st, 0) != 0;
    } else if (src != SQLITE_DONE) {
        rc = db_err(err, s->db, src, "heartbeat");
    }
    rel(st);
    if (rc == CS_OK && !found) {
        rc = read_brief(s, job_id, &b, err);
        if (rc == CS_OK) {
            rc = stale(err, "heartbeat", job_id, attempt, &b);
        }
    }
out:
    rc = op_end_w(s, rc, mark, err);
    if (rc == CS_OK && cancel) {
        *cancel = cancel_pending;
    }
    return rc;
}

static cs_rc end_attempt(cs_store *s, int64_t job_id, int attempt, const cs_store_exit *ex,
                         const char *outcome, const char *error, int64_t now, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = stmt(s, S_ATTEMPT_END, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, attempt);
    sqlite3_bind_int64(st, 3, now);
    if (ex && ex->has_status) {
        sqlite3_bind_int(st, 4, ex->exit_status);
    }
    if (ex && ex->signal) {
        sqlite3_bind_int(st, 5, ex->signal);
    }
    bind_text(st, 6, ex ? ex->log_path : NULL);
    bind_text(st, 7, outcome);
    bind_text(st, 8, error);
    return run(s, st, "end attempt", err);
}

static cs_rc find_result(cs_store *s, int64_t job_id, int attempt, int64_t *id, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = stmt(s, S_RESULT_FIND, &st, err);
    bool found;
    *id = 0;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, attempt);
    return step_int64(s, st, id, &found, "find result", err);
}

static cs_rc insert_metrics(cs_store *s, int64_t result_id, int64_t job_id,
                            const cs_store_metric *m, size_t n, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        if (!m[i].task || !m[i].metric) {
            return cs_err_set(err, CS_EINVAL, 0, "store: result: metric %zu has no task or name",
                              i);
        }
        rc = stmt(s, S_METRIC_INSERT, &st, err);
        if (rc != CS_OK) {
            break;
        }
        sqlite3_bind_int64(st, 1, result_id);
        sqlite3_bind_int64(st, 2, job_id);
        bind_text(st, 3, m[i].task);
        bind_text(st, 4, m[i].metric);
        if (isfinite(m[i].value)) {
            sqlite3_bind_double(st, 5, m[i].value);
        }
        if (isfinite(m[i].stderr_)) {
            sqlite3_bind_double(st, 6, m[i].stderr_);
        }
        if (m[i].n >= 0) {
            sqlite3_bind_int64(st, 7, m[i].n);
        }
        rc = run(s, st, "insert metric", err);
        if (rc == CS_EEXIST) {
            rc = cs_err_set(err, CS_EINVAL, 0, "store: result: metric %s/%s given twice", m[i].task,
                            m[i].metric);
        }
    }
    return rc;
}

static int metric_cmp(const void *a, const void *b)
{
    const cs_store_metric *x = *(const cs_store_metric *const *)a;
    const cs_store_metric *y = *(const cs_store_metric *const *)b;
    int c = strcmp(x->task, y->task);
    return c != 0 ? c : strcmp(x->metric, y->metric);
}

/* The metrics' names are set and each (task, metric) appears once: checked before anything is
 * written (op_begin_w). O(n log n): the metrics are sorted, not compared pairwise (a RESULT,
 * forged or not, may carry 150,000 of them). */
static cs_rc check_metrics(const cs_store_metric *m, size_t n, cs_err *err)
{
    const cs_store_metric **by_name = NULL;
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < n; i++) {
        if (!m[i].task || !m[i].metric) {
            return cs_err_set(err, CS_EINVAL, 0, "store: result: metric %zu has no task or name",
                              i);
        }
    }
    if (n < 2) {
        return CS_OK;
    }
    by_name = cs_alloc_array(n, sizeof(*by_name));
    if (!by_name) {
        return cs_err_set(err, CS_ENOMEM, 0, "store: result: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        by_name[i] = &m[i];
    }
    qsort(by_name, n, sizeof(*by_name), metric_cmp);
    for (size_t i = 1; i < n && rc == CS_OK; i++) {
        if (metric_cmp(&by_name[i - 1], &by_name[i]) == 0) {
            rc = cs_err_set(err, CS_EINVAL, 0, "store: result: metric %s/%s given twice",
                            by_name[i]->task, by_name[i]->metric);
        }
    }
    free(by_name);
    return rc;
}

cs_rc cs_store_result(cs_store *s, int64_t job_id, int attempt, const char *worker,
                      const char *token, const char *json, const cs_store_metric *metrics,
                      size_t n_metrics, const cs_store_exit *ex, int64_t now, bool *duplicate,
                      cs_err *err)
{
    int64_t mark = 0;
    sqlite3_stmt *st = NULL;
    job_brief b = {0};
    int64_t result_id = 0;
    bool dup = false;
    cs_rc rc;

    if (!json || !*json) {
        return cs_err_set(err, CS_EINVAL, 0, "store: result of job %lld: empty document",
                          (long long)job_id);
    }
    if (n_metrics > 0 && !metrics) {
        return cs_err_set(err, CS_EINVAL, 0, "store: result: metrics missing");
    }
    rc = check_metrics(metrics, n_metrics, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = op_begin_w(s, &mark, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = lease_holder(s, job_id, attempt, worker, token, "result", err);
    if (rc != CS_OK) {
        goto out;
    }
    rc = find_result(s, job_id, attempt, &result_id, err);
    if (rc != CS_OK) {
        goto out;
    }
    if (result_id) {
        dup = true;
        goto out;
    }
    rc = read_brief(s, job_id, &b, err);
    if (rc != CS_OK) {
        goto out;
    }
    if (b.attempt != attempt || attempt < 1 ||
        !(b.state == CS_JOB_RUNNING || b.state == CS_JOB_QUEUED || b.state == CS_JOB_RETRY_WAIT ||
          b.state == CS_JOB_LOST)) {
        rc = stale(err, "result", job_id, attempt, &b);
        goto out;
    }
    rc = stmt(s, S_RESULT_INSERT, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, attempt);
    bind_text(st, 3, json);
    sqlite3_bind_int64(st, 4, now);
    rc = run(s, st, "insert result", err);
    if (rc != CS_OK) {
        goto out;
    }
    result_id = sqlite3_last_insert_rowid(s->db);
    rc = insert_metrics(s, result_id, job_id, metrics, n_metrics, err);
    if (rc != CS_OK) {
        goto out;
    }
    rc = stmt(s, S_JOB_DONE, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, now);
    bind_text(st, 3, b.state == CS_JOB_RUNNING ? "result" : "late result");
    sqlite3_bind_int64(st, 4, result_id);
    rc = run(s, st, "mark done", err);
    if (rc == CS_OK) {
        rc = end_attempt(s, job_id, attempt, ex, "done", NULL, now, err);
    }
    if (rc == CS_OK) {
        rc = stmt(s, S_CACHE_PUT, &st, err);
    }
    if (rc == CS_OK) {
        bind_text(st, 1, b.key);
        sqlite3_bind_int64(st, 2, result_id);
        sqlite3_bind_int64(st, 3, now);
        rc = run(s, st, "cache result", err);
    }
    if (rc == CS_OK) {
        rc = settle_one(s, b.sweep_id, now, err);
    }
out:
    rc = op_end_w(s, rc, mark, err);
    if (rc == CS_OK && duplicate) {
        *duplicate = dup;
    }
    return rc;
}

/* base * 2^(attempt-1), capped at max, without overflow. */
static int64_t backoff_ms(int64_t base, int64_t max, int attempt)
{
    int64_t d = base;
    for (int i = 1; i < attempt && d < max; i++) {
        d = d > INT64_MAX / 2 ? INT64_MAX : d * 2;
    }
    return d < max ? d : max;
}

cs_rc cs_store_fail(cs_store *s, int64_t job_id, int attempt, const char *worker, const char *token,
                    const char *reason, const cs_store_exit *ex, int64_t now,
                    cs_job_state *next_state, cs_err *err)
{
    int64_t mark = 0;
    sqlite3_stmt *st = NULL;
    job_brief b = {0};
    cs_job_state to = CS_JOB_FAILED;
    int64_t base = 0, max = 0, not_before = 0;
    bool stop = false, repeated = false;
    const char *why = reason && *reason ? reason : "failed";
    int src;
    cs_rc rc = op_begin_w(s, &mark, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = lease_holder(s, job_id, attempt, worker, token, "failure", err);
    if (rc == CS_OK) {
        rc = read_brief(s, job_id, &b, err);
    }
    if (rc != CS_OK) {
        goto out;
    }
    if (b.state != CS_JOB_RUNNING || b.attempt != attempt) {
        /* A resent FAIL of an attempt already recorded as failed changes nothing. */
        if (b.attempt == attempt) {
            rc = stmt(s, S_ATTEMPT_OUTCOME, &st, err);
            if (rc != CS_OK) {
                goto out;
            }
            sqlite3_bind_int64(st, 1, job_id);
            sqlite3_bind_int(st, 2, attempt);
            src = sqlite3_step(st);
            repeated = src == SQLITE_ROW && sqlite3_column_text(st, 0) &&
                       strcmp((const char *)sqlite3_column_text(st, 0), "failed") == 0;
            rel(st);
        }
        to = b.state;
        if (!repeated) {
            rc = stale(err, "failure", job_id, attempt, &b);
        }
        goto out;
    }
    rc = stmt(s, S_SWEEP_POLICY, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, b.sweep_id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        base = sqlite3_column_int64(st, 0);
        max = sqlite3_column_int64(st, 1);
        stop = sqlite3_column_text(st, 2) &&
               strcmp((const char *)sqlite3_column_text(st, 2), "stop") == 0;
    } else {
        rc = db_err(err, s->db, src, "read sweep policy");
    }
    rel(st);
    if (rc != CS_OK) {
        goto out;
    }
    if (b.cancel_requested) {
        to = CS_JOB_CANCELLED;
    } else if (attempt < b.max_attempts && !(ex && ex->permanent)) {
        to = CS_JOB_RETRY_WAIT;
        not_before = now + backoff_ms(base, max, attempt);
    }
    rc = stmt(s, S_JOB_FAIL, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, job_id);
    bind_text(st, 2, cs_job_state_name(to));
    sqlite3_bind_int64(st, 3, now);
    bind_text(st, 4, why);
    if (to == CS_JOB_RETRY_WAIT) {
        sqlite3_bind_int64(st, 5, not_before);
    }
    rc = run(s, st, "record failure", err);
    if (rc == CS_OK) {
        rc = end_attempt(s, job_id, attempt, ex, to == CS_JOB_CANCELLED ? "cancelled" : "failed",
                         why, now, err);
    }
    if (rc == CS_OK && to == CS_JOB_FAILED && stop) {
        rc = sweep_set_state(s, b.sweep_id, "active", "paused", "on_failure=stop: a job failed",
                             now, NULL, err);
    }
    if (rc == CS_OK && to != CS_JOB_RETRY_WAIT) {
        rc = settle_one(s, b.sweep_id, now, err);
    }
out:
    rc = op_end_w(s, rc, mark, err);
    if (rc == CS_OK && next_state) {
        *next_state = to;
    }
    return rc;
}

/* ---- reaper, workers ---------------------------------------------------------------------------
 */

cs_rc cs_store_reap(cs_store *s, int64_t now, cs_store_reap_counts *counts, cs_err *err)
{
    cs_store_reap_counts c = {0};
    sqlite3_stmt *st = NULL;
    int src;
    cs_rc rc = op_begin(s, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = stmt(s, S_REAP_ATTEMPTS, &st, err);
    if (rc == CS_OK) {
        sqlite3_bind_int64(st, 1, now);
        rc = run(s, st, "reap attempts", err);
    }
    if (rc == CS_OK) {
        rc = stmt(s, S_REAP_LEASES, &st, err);
    }
    if (rc == CS_OK) {
        sqlite3_bind_int64(st, 1, now);
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            cs_job_state to = job_state_of((const char *)sqlite3_column_text(st, 0));
            if (to == CS_JOB_QUEUED) {
                c.requeued++;
            } else if (to == CS_JOB_LOST) {
                c.lost++;
            } else {
                c.cancelled++;
            }
        }
        if (src != SQLITE_DONE) {
            rc = db_err(err, s->db, src, "reap leases");
        }
        rel(st);
    }
    if (rc == CS_OK) {
        rc = stmt(s, S_REAP_RETRY, &st, err);
    }
    if (rc == CS_OK) {
        sqlite3_bind_int64(st, 1, now);
        rc = run(s, st, "requeue retries", err);
        c.retried = rc == CS_OK ? (size_t)sqlite3_changes(s->db) : 0;
    }
    if (rc == CS_OK) {
        rc = settle_all(s, now, err);
    }
    rc = op_end(s, rc, err);
    if (rc == CS_OK && counts) {
        *counts = c;
    }
    return rc;
}

cs_rc cs_store_worker_seen(cs_store *s, const char *worker, const char *host,
                           const char *capabilities, int64_t now, cs_err *err)
{
    int64_t mark = 0;
    sqlite3_stmt *st = NULL;
    cs_rc rc;
    if (!worker || !*worker) {
        return cs_err_set(err, CS_EINVAL, 0, "store: worker id missing");
    }
    rc = op_begin_w(s, &mark, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = stmt(s, S_WORKER_SEEN, &st, err);
    if (rc == CS_OK) {
        bind_text(st, 1, worker);
        bind_text(st, 2, host);
        bind_text(st, 3, capabilities);
        sqlite3_bind_int64(st, 4, now);
        rc = run(s, st, "record worker", err);
    }
    return op_end_w(s, rc, mark, err);
}

cs_rc cs_store_worker_touch(cs_store *s, const char *worker, const char *instance, int64_t now,
                            cs_err *err)
{
    int64_t mark = 0;
    sqlite3_stmt *st = NULL;
    cs_rc rc;
    if (!worker || !*worker) {
        return cs_err_set(err, CS_EINVAL, 0, "store: worker id missing");
    }
    rc = op_begin_w(s, &mark, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = stmt(s, S_WORKER_TOUCH, &st, err);
    if (rc == CS_OK) {
        bind_text(st, 1, worker);
        bind_text(st, 2, instance);
        sqlite3_bind_int64(st, 3, now);
        rc = run(s, st, "record worker", err);
    }
    return op_end_w(s, rc, mark, err);
}

cs_rc cs_store_release(cs_store *s, int64_t job_id, int attempt, const char *worker,
                       const char *token, int64_t now, bool *released, cs_err *err)
{
    int64_t mark = 0;
    sqlite3_stmt *st = NULL;
    cs_rc rc;
    if (released) {
        *released = false;
    }
    rc = cs_store_lease_check(s, job_id, attempt, worker, token, "release", err);
    if (rc == CS_ENOENT) {
        return CS_OK; /* no such attempt: nothing to hand back */
    }
    if (rc != CS_OK) {
        return rc;
    }
    rc = op_begin_w(s, &mark, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = stmt(s, S_RELEASE_LEASE, &st, err);
    if (rc == CS_OK) {
        sqlite3_bind_int64(st, 1, job_id);
        sqlite3_bind_int(st, 2, attempt);
        sqlite3_bind_int64(st, 3, now);
        rc = run(s, st, "release job", err);
    }
    if (rc == CS_OK && released) {
        *released = sqlite3_changes(s->db) > 0;
    }
    return op_end_w(s, rc, mark, err);
}

cs_rc cs_store_worker_bye(cs_store *s, const char *worker, const char *instance, int64_t now,
                          bool *marked, cs_err *err)
{
    int64_t mark = 0;
    sqlite3_stmt *st = NULL;
    cs_rc rc;
    if (marked) {
        *marked = false;
    }
    rc = op_begin_w(s, &mark, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = stmt(s, S_WORKER_BYE, &st, err);
    if (rc == CS_OK) {
        bind_text(st, 1, worker);
        bind_text(st, 2, instance);
        sqlite3_bind_int64(st, 3, now);
        rc = run(s, st, "record bye", err);
    }
    if (rc == CS_OK && marked) {
        *marked = sqlite3_changes(s->db) > 0;
    }
    return op_end_w(s, rc, mark, err);
}

cs_rc cs_store_worker_prune(cs_store *s, int64_t now, int64_t idle_ms, size_t *n, cs_err *err)
{
    int64_t mark = 0;
    sqlite3_stmt *st = NULL;
    cs_rc rc;
    if (n) {
        *n = 0;
    }
    rc = op_begin_w(s, &mark, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = stmt(s, S_WORKER_PRUNE, &st, err);
    if (rc == CS_OK) {
        sqlite3_bind_int64(st, 1, now - idle_ms);
        rc = run(s, st, "prune workers", err);
    }
    if (rc == CS_OK && n) {
        *n = (size_t)sqlite3_changes(s->db);
    }
    return op_end_w(s, rc, mark, err);
}

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
        rc = sweep_state(s, f->sweep_id, sweep_st, err);
    }
    if (rc == CS_OK && f->job_id) {
        rc = stmt(s, S_JOB_EXISTS, &st, err);
        if (rc != CS_OK) {
            return rc;
        }
        sqlite3_bind_int64(st, 1, f->job_id);
        src = sqlite3_step(st);
        if (src == SQLITE_DONE) {
            rc = cs_err_set(err, CS_ENOENT, 0, "store: no job %lld", (long long)f->job_id);
        } else if (src != SQLITE_ROW) {
            rc = db_err(err, s->db, src, "read job");
        }
        rel(st);
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
    cs_store_cancel_counts c = {0};
    cs_sweep_state sst = CS_SWEEP_ACTIVE;
    sqlite3_stmt *st = NULL;
    const unsigned dflt = CS_JOB_MASK(CS_JOB_QUEUED) | CS_JOB_MASK(CS_JOB_RETRY_WAIT) |
                          CS_JOB_MASK(CS_JOB_RUNNING);
    unsigned mask;
    const char *reason = why && *why ? why : "cancelled";
    cs_rc rc;

    if (!f) {
        return cs_err_set(err, CS_EINVAL, 0, "store: cancel: no filter");
    }
    mask = f->states ? f->states : dflt;
    rc = op_begin(s, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = check_filter(s, f, &sst, err);
    if (rc == CS_OK) {
        rc = stmt(s, S_CANCEL_WAITING, &st, err);
    }
    if (rc == CS_OK) {
        bind_filter(st, f, mask);
        sqlite3_bind_int64(st, 4, now);
        bind_text(st, 5, reason);
        rc = run(s, st, "cancel jobs", err);
        c.cancelled = rc == CS_OK ? (size_t)sqlite3_changes(s->db) : 0;
    }
    if (rc == CS_OK) {
        rc = stmt(s, S_CANCEL_RUNNING, &st, err);
    }
    if (rc == CS_OK) {
        bind_filter(st, f, mask);
        bind_text(st, 5, reason);
        rc = run(s, st, "signal running jobs", err);
        c.signalled = rc == CS_OK ? (size_t)sqlite3_changes(s->db) : 0;
    }
    if (rc == CS_OK && f->sweep_id && !f->job_id && !f->states && sst != CS_SWEEP_CANCELLED) {
        rc = sweep_set_state(s, f->sweep_id, cs_sweep_state_name(sst), "cancelled", reason, now,
                             NULL, err);
    }
    if (rc == CS_OK) {
        rc = settle_all(s, now, err);
    }
    rc = op_end(s, rc, err);
    if (rc == CS_OK && counts) {
        *counts = c;
    }
    return rc;
}

cs_rc cs_store_pause(cs_store *s, int64_t sweep_id, int64_t now, cs_err *err)
{
    cs_sweep_state st = CS_SWEEP_ACTIVE;
    cs_rc rc = op_begin(s, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = sweep_state(s, sweep_id, &st, err);
    if (rc == CS_OK && (st == CS_SWEEP_CANCELLED || st == CS_SWEEP_DONE)) {
        rc = cs_err_set(err, CS_ESTATE, 0, "store: cannot pause sweep %lld: it is %s",
                        (long long)sweep_id, cs_sweep_state_name(st));
    }
    if (rc == CS_OK && st == CS_SWEEP_ACTIVE) {
        rc = sweep_set_state(s, sweep_id, "active", "paused", "paused", now, NULL, err);
    }
    return op_end(s, rc, err);
}

cs_rc cs_store_resume(cs_store *s, int64_t sweep_id, int64_t now, cs_err *err)
{
    cs_sweep_state st = CS_SWEEP_ACTIVE;
    cs_rc rc = op_begin(s, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = sweep_state(s, sweep_id, &st, err);
    if (rc == CS_OK && st != CS_SWEEP_PAUSED) {
        rc = cs_err_set(err, CS_ESTATE, 0, "store: cannot resume sweep %lld: it is %s",
                        (long long)sweep_id, cs_sweep_state_name(st));
    }
    if (rc == CS_OK) {
        rc = sweep_set_state(s, sweep_id, "paused", "active", "resumed", now, NULL, err);
    }
    if (rc == CS_OK) {
        rc = settle_one(s, sweep_id, now, err);
    }
    return op_end(s, rc, err);
}

cs_rc cs_store_retry(cs_store *s, const cs_store_filter *f, int64_t now, size_t *n, cs_err *err)
{
    const unsigned allowed = CS_JOB_MASK(CS_JOB_FAILED) | CS_JOB_MASK(CS_JOB_LOST);
    cs_sweep_state sst = CS_SWEEP_ACTIVE;
    sqlite3_stmt *st = NULL;
    size_t moved = 0;
    unsigned mask;
    cs_rc rc;

    if (!f) {
        return cs_err_set(err, CS_EINVAL, 0, "store: retry: no filter");
    }
    mask = f->states ? f->states : allowed;
    if (mask & ~allowed) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "store: retry: only failed and lost jobs can be "
                          "retried");
    }
    rc = op_begin(s, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = check_filter(s, f, &sst, err);
    if (rc == CS_OK) {
        rc = stmt(s, S_RETRY, &st, err);
    }
    if (rc == CS_OK) {
        bind_filter(st, f, mask);
        sqlite3_bind_int64(st, 4, now);
        rc = run(s, st, "retry jobs", err);
        moved = rc == CS_OK ? (size_t)sqlite3_changes(s->db) : 0;
    }
    if (rc == CS_OK && moved > 0) {
        rc = reopen_sweeps(s, "retry", now, err);
    }
    rc = op_end(s, rc, err);
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
    cs_rc rc = stmt(s, sweep_id ? S_COUNT_SWEEP : S_COUNT_ALL, &st, err);
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
            if (name && strcmp(name, job_state_names[i]) == 0) {
                out->n[i] += k;
            }
        }
        out->total += k;
    }
    if (src != SQLITE_DONE) {
        rc = db_err(err, s->db, src, "count jobs");
    }
    rel(st);
    return rc;
}

cs_rc cs_store_sweep_find(cs_store *s, const char *name, int64_t *id, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    int src;
    cs_rc rc = stmt(s, S_SWEEP_LIVE, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    bind_text(st, 1, name);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: no live sweep named '%s'",
                        name ? name : "(null)");
    } else {
        rc = db_err(err, s->db, src, "find sweep");
    }
    rel(st);
    return rc;
}

static void sweep_info_from_row(sqlite3_stmt *st, cs_store_sweep_info *o)
{
    memset(o, 0, sizeof(*o));
    o->id = sqlite3_column_int64(st, 0);
    copy_text(o->name, sizeof(o->name), sqlite3_column_text(st, 1));
    copy_text(o->spec_hash, sizeof(o->spec_hash), sqlite3_column_text(st, 2));
    o->state = sweep_state_of((const char *)sqlite3_column_text(st, 3));
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
    cs_rc rc = stmt(s, S_SWEEP_GET, &st, err);
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
        rc = db_err(err, s->db, src, "read sweep");
    }
    rel(st);
    if (rc == CS_OK) {
        rc = cs_store_count(s, id, &out->counts, err);
    }
    return rc;
}

cs_rc cs_store_sweep_list(cs_store *s, cs_store_sweep_fn fn, void *ctx, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_store_sweep_info info;
    int src;
    cs_rc rc = stmt(s, S_SWEEP_LIST, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        sweep_info_from_row(st, &info);
        rc = cs_store_count(s, info.id, &info.counts, err);
        if (rc == CS_OK) {
            rc = fn(ctx, &info, err);
        }
        if (rc != CS_OK) {
            break;
        }
    }
    if (rc == CS_OK && src != SQLITE_DONE) {
        rc = db_err(err, s->db, src, "list sweeps");
    }
    rel(st);
    return rc;
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

static char *dup_col(sqlite3_stmt *st, int i, bool *oom)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    char *d;
    if (!t) {
        return NULL;
    }
    d = cs_strdup((const char *)t);
    if (!d) {
        *oom = true;
    }
    return d;
}

cs_rc cs_store_job_get(cs_store *s, int64_t id, cs_store_job *out, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    char *cfg = NULL, *cfg_raw = NULL, *axs = NULL, *axes_raw = NULL;
    bool oom = false;
    int src;
    cs_rc rc = stmt(s, S_JOB_GET, &st, err);
    memset(out, 0, sizeof(*out));
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        out->sweep_id = sqlite3_column_int64(st, 1);
        copy_text(out->key, sizeof(out->key), sqlite3_column_text(st, 2));
        out->state = job_state_of((const char *)sqlite3_column_text(st, 3));
        out->priority = sqlite3_column_int(st, 4);
        out->attempt = sqlite3_column_int(st, 5);
        out->max_attempts = sqlite3_column_int(st, 6);
        out->lease_until = sqlite3_column_int64(st, 7);
        out->not_before = sqlite3_column_int64(st, 8);
        out->result_id = sqlite3_column_int64(st, 9);
        out->cancel_requested = sqlite3_column_int(st, 10) != 0;
        out->baseline = sqlite3_column_int(st, 11) != 0;
        cfg = dup_col(st, 12, &oom);
        cfg_raw = dup_col(st, 13, &oom);
        axs = dup_col(st, 14, &oom);
        axes_raw = dup_col(st, 15, &oom);
        out->worker = dup_col(st, 16, &oom);
        out->last_error = dup_col(st, 17, &oom);
        if (oom) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "store: job %lld: out of memory", (long long)id);
        }
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: no job %lld", (long long)id);
    } else {
        rc = db_err(err, s->db, src, "read job");
    }
    rel(st);
    if (rc == CS_OK) {
        rc = rebuild(s, cfg, cfg_raw, &out->config, err);
        if (rc == CS_OK) {
            rc = rebuild(s, axs, axes_raw, &out->axes, err);
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
    cs_rc rc = lookup_cache(s, key, &id, err);
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
        rc = lookup_cache(s, cell.key, &id, err);
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
    cs_rc rc = stmt(s, S_WORKERS_ACTIVE, &st, err);
    *n = 0;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, active_since);
    rc = step_int64(s, st, &v, &found, "count workers", err);
    *n = rc == CS_OK ? (size_t)v : 0;
    return rc;
}

cs_rc cs_store_worker_list(cs_store *s, int64_t active_since, cs_store_worker_fn fn, void *ctx,
                           cs_err *err)
{
    sqlite3_stmt *st = NULL;
    int src;
    cs_rc rc = stmt(s, S_WORKER_LIST, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, active_since);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        cs_store_worker_row w = {
                .name = (const char *)sqlite3_column_text(st, 0),
                .host = (const char *)sqlite3_column_text(st, 1),
                .last_seen = sqlite3_column_int64(st, 2),
                .capabilities = (const char *)sqlite3_column_text(st, 3),
                .job_id = sqlite3_column_int64(st, 4),
                .active = sqlite3_column_int(st, 5) != 0,
        };
        rc = fn(ctx, &w, err);
        if (rc != CS_OK) {
            break;
        }
    }
    if (rc == CS_OK && src != SQLITE_DONE) {
        rc = db_err(err, s->db, src, "list workers");
    }
    rel(st);
    return rc;
}

cs_rc cs_store_job_list(cs_store *s, const cs_store_job_query *q, int64_t *total,
                        cs_store_job_row_fn fn, void *ctx, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    bool found = false;
    int src;
    cs_rc rc = stmt(s, S_JOB_COUNT, &st, err);
    *total = 0;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, q->sweep_id);
    bind_text(st, 2, q->state);
    rc = step_int64(s, st, total, &found, "count jobs", err);
    if (rc == CS_OK) {
        rc = stmt(s, S_JOB_LIST, &st, err);
    }
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, q->sweep_id);
    bind_text(st, 2, q->state);
    sqlite3_bind_int64(st, 3, q->limit);
    sqlite3_bind_int64(st, 4, q->offset);
    sqlite3_bind_int(st, 5, q->error_chars);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
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
        };
        rc = fn(ctx, &j, err);
        if (rc != CS_OK) {
            break;
        }
    }
    if (rc == CS_OK && src != SQLITE_DONE) {
        rc = db_err(err, s->db, src, "list jobs");
    }
    rel(st);
    return rc;
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
    cs_rc rc = stmt(s, S_JOB_LOG, &st, err);
    memset(out, 0, sizeof(*out));
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, attempt);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        out->job_attempt = sqlite3_column_int64(st, 0);
        out->progress = dup_col(st, 1, &oom);
        out->last_error = dup_col(st, 2, &oom);
        out->log_path = dup_col(st, 3, &oom);
        out->error = dup_col(st, 4, &oom);
        out->has_attempt = sqlite3_column_type(st, 5) != SQLITE_NULL;
        if (oom) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "store: job %lld: out of memory", (long long)job_id);
        }
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: no job %lld", (long long)job_id);
    } else {
        rc = db_err(err, s->db, src, "read job log");
    }
    rel(st);
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
    cs_rc rc = stmt(s, S_LAST_LOG_PATH, &st, err);
    *path = NULL;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, job_id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *path = dup_col(st, 0, &oom);
        if (oom) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
        }
    } else if (src != SQLITE_DONE) {
        rc = db_err(err, s->db, src, "read log path");
    }
    rel(st);
    return rc;
}
