/* cs_store_int.h - inside the job store: its statements, its struct and the helpers its files
 * share (cs_store.c: open, migrate, transactions; cs_store_insert.c: submit and extend;
 * cs_store_lease.c: claim, heartbeat, result, fail, reaper, workers; cs_store_query.c: control
 * and queries). No file outside coordinator/store/ includes it.
 */
#ifndef CS_COORDINATOR_STORE_CS_STORE_INT_H
#define CS_COORDINATOR_STORE_CS_STORE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "cs_alloc.h"
#include "cs_frag.h"
#include "cs_store.h"

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
/* A job's progress JSON without its log tail (the JOBS and WORKERS rows); NULL when none. */
#define PROGRESS_SLIM(col) \
    "CASE WHEN json_valid(" col ") THEN json_remove(" col ", '$.log_tail') END"

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
    X(OUTCOME_INSERT,                                                                              \
      "INSERT INTO item_outcome (result_id, job_id, task, metric, sample, n, data)"                \
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")                                                      \
    X(VALUE_INSERT, "INSERT INTO item_value (result_id, job_id, task, metric, sample, n, data)"    \
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")                                        \
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
    /* BYE.release_job: the job queued again at once, its attempt given back (0006_released). */   \
    X(RELEASE_ATTEMPT, "UPDATE attempt SET ended = ?3, outcome = 'released',"                      \
                       " error = 'handed back by its worker (not counted)'"                        \
                       " WHERE job_id = ?1 AND n = ?2 AND ended IS NULL")                          \
    X(RELEASE_LEASE,                                                                               \
      "UPDATE job_row SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,"  \
      " state_at = ?3, state_why = CASE WHEN cancel_requested"                                     \
      " THEN 'handed back by its worker with a cancel pending' ELSE 'handed back by its worker'"   \
      " END, max_attempts = max_attempts + 1, lease_until = NULL,"                                 \
      " worker = CASE WHEN cancel_requested THEN worker ELSE NULL END"                             \
      " WHERE id = ?1 AND attempt = ?2 AND state = 'running' RETURNING state")                     \
    X(WORKER_BYE, "UPDATE worker SET bye_at = ?3, last_seen = max(last_seen, ?3) WHERE id = ?1"    \
                  " AND (instance IS NULL OR ?2 IS NULL OR instance = ?2)")                        \
    X(WORKER_PRUNE, "DELETE FROM worker WHERE last_seen < ?1 AND NOT EXISTS (SELECT 1 FROM"        \
                    " job_row j WHERE j.worker = worker.id AND j.state = 'running')")              \
    X(WORKERS_ACTIVE, "SELECT count(*) FROM worker WHERE " WORKER_ACTIVE)                          \
    /* A worker's running job with the lowest id, its progress (PROGRESS_SLIM) and heartbeat. */   \
    X(WORKER_LIST,                                                                                 \
      "SELECT w.id, w.host, w.last_seen, w.capabilities, j.id, " WORKER_ACTIVE ", " PROGRESS_SLIM( \
              "j.progress") ", j.heartbeat_at FROM worker w LEFT JOIN job_row j ON j.id ="         \
                            " (SELECT r.id FROM job_row r WHERE r.worker = w.id AND r.state = "    \
                            "'running' ORDER BY r.id"                                              \
                            " LIMIT 1) ORDER BY w.id")                                             \
    X(JOB_COUNT, "SELECT count(*)" JOBS_WHERE)                                                     \
    X(JOB_LIST,                                                                                    \
      "SELECT id, sweep_id, state, attempt, key, worker, state_at, axes,"                          \
      " substr(last_error, 1, ?5), CASE WHEN state = 'running' THEN " PROGRESS_SLIM(               \
              "progress") " END, heartbeat_at" JOBS_WHERE " ORDER BY id LIMIT ?3 OFFSET ?4")       \
    X(JOB_LOG, "SELECT j.attempt, j.progress, j.last_error, a.log_path, a.error, a.n FROM job j"   \
               " LEFT JOIN attempt a ON a.job_id = j.id AND a.n = (CASE WHEN ?2 > 0 THEN ?2 ELSE"  \
               " j.attempt END) WHERE j.id = ?1")                                                  \
    X(LAST_LOG_PATH, "SELECT log_path FROM attempt WHERE job_id = ?1 AND log_path IS NOT NULL"     \
                     " ORDER BY n DESC LIMIT 1")                                                   \
    X(AGG_SPEC, "SELECT spec FROM sweep WHERE id = ?1")                                            \
    /* The result's version: 2 when it has item outcomes (bitsets or values). The first probes     \
     * (indexes item_outcome_job, item_value_job: small) find those of a job's own result; the     \
     * others (the tables' keys) those of a cached job's. */                                       \
    X(AGG_JOBS, "SELECT j.id, j.state, j.baseline, j.axs, j.axes_raw, CASE WHEN j.result_id"       \
                " IS NULL THEN 0 WHEN EXISTS (SELECT 1 FROM item_outcome o WHERE o.job_id = j.id"  \
                " AND o.result_id = j.result_id) THEN 2 WHEN EXISTS (SELECT 1 FROM item_value o"   \
                " WHERE o.job_id = j.id AND o.result_id = j.result_id) THEN 2 WHEN EXISTS"         \
                " (SELECT 1 FROM item_outcome o WHERE o.result_id = j.result_id) THEN 2 WHEN"      \
                " EXISTS (SELECT 1 FROM item_value o WHERE o.result_id = j.result_id) THEN 2"      \
                " ELSE 1 END FROM job_row j WHERE j.sweep_id = ?1 ORDER BY j.id")                  \
    X(AGG_FRAGMENT, "SELECT text FROM fragment WHERE id = ?1")                                     \
    X(AGG_CONFIGS, "SELECT id, cfg, config_raw FROM job_row WHERE sweep_id = ?1"                   \
                   " AND state IN ('cached', 'done') ORDER BY id")                                 \
    X(AGG_METRICS, "SELECT j.id, m.task, m.metric, m.value, m.stderr, m.n FROM job_row j"          \
                   " JOIN metric m ON m.result_id = j.result_id WHERE j.sweep_id = ?1"             \
                   " AND j.state IN ('cached', 'done') ORDER BY j.state, j.priority DESC, j.id")   \
    X(AGG_OUTCOMES, "SELECT j.id, o.task, o.metric, o.sample, o.n, o.data FROM job_row j"          \
                    " JOIN item_outcome o ON o.result_id = j.result_id WHERE j.sweep_id = ?1"      \
                    " AND j.state IN ('cached', 'done') ORDER BY j.state, j.priority DESC, j.id")  \
    /* ?2: with the margins (else only window_loss) */                                             \
    X(AGG_VALUES, "SELECT j.id, o.task, o.metric, o.sample, o.n, o.data FROM job_row j"            \
                  " JOIN item_value o ON o.result_id = j.result_id WHERE j.sweep_id = ?1"          \
                  " AND j.state IN ('cached', 'done') AND (?2 OR o.metric <> 'margin')"            \
                  " ORDER BY j.state, j.priority DESC, j.id")                                      \
    /* ?2: {"TASK":"METRIC",...}: one primary-key lookup per job and task (CROSS JOIN: in this     \
     * order, so the rows come in index job_claim's order, without a sort). */                     \
    X(AGG_OUTCOMES_OF, "SELECT j.id, o.task, o.metric, o.sample, o.n, o.data FROM job_row j"       \
                       " CROSS JOIN json_each(?2) h CROSS JOIN item_outcome o"                     \
                       " ON o.result_id = j.result_id AND o.task = h.key AND o.metric = h.value"   \
                       " WHERE j.sweep_id = ?1 AND j.state IN ('cached', 'done')"                  \
                       " ORDER BY j.state, j.priority DESC, j.id")                                 \
    X(AGG_VALUES_OF, "SELECT j.id, o.task, o.metric, o.sample, o.n, o.data FROM job_row j"         \
                     " CROSS JOIN json_each(?2) h CROSS JOIN item_value o"                         \
                     " ON o.result_id = j.result_id AND o.task = h.key AND o.metric = h.value"     \
                     " WHERE j.sweep_id = ?1 AND j.state IN ('cached', 'done')"                    \
                     " ORDER BY j.state, j.priority DESC, j.id")

/* Whether an item outcome is real-valued (n float32: table item_value) rather than a bitset
 * (table item_outcome), by its metric name (schemas/migrations/0005_item_values.sql). */
static inline bool st_outcome_real(const char *metric)
{
    return strcmp(metric, "margin") == 0 || strcmp(metric, "window_loss") == 0;
}

enum {
#define STMT_ENUM(name, sql) S_##name,
    STMT_LIST(STMT_ENUM)
#undef STMT_ENUM
            S_COUNT
};

/* The SQL of each statement, by its S_ id. */
extern const char *const st_sql[S_COUNT];

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

/* ---- errors and statements (cs_store.c) ---------------------------------------------------- */

/* The one place where an SQLite result code becomes a cs_rc (busy, memory, disk full, I/O,
 * constraint, read-only; CS_EDB otherwise) and a message "store: <what>: <SQLite's message>"
 * (db's, else the code's text). cause = the SQLite code. Returns the cs_rc. */
cs_rc st_err(sqlite3 *db, int src, const char *what, cs_err *err);

/* The cached statement id, reset and with cleared bindings (prepared on first use). */
cs_rc st_stmt(cs_store *s, int id, sqlite3_stmt **out, cs_err *err);
/* Resets a statement (NULL-safe): releases its read lock and bound text. */
void st_rel(sqlite3_stmt *st);
/* Binds text, or NULL for a NULL pointer. The text must outlive the step. */
void st_bind_text(sqlite3_stmt *st, int i, const char *text);
/* Runs a statement that returns no rows to its end, then resets it. */
cs_rc st_run(cs_store *s, sqlite3_stmt *st, const char *what, cs_err *err);
/* Runs a cached statement that takes no parameters. */
cs_rc st_run_id(cs_store *s, int id, const char *what, cs_err *err);
/* Steps a bound statement that returns at most one row, then resets it: *found says whether
 * there was a row, and *out is its first column (left alone without one). */
cs_rc st_step_int64(cs_store *s, sqlite3_stmt *st, int64_t *out, bool *found, const char *what,
                    cs_err *err);
/* Copies a column's text (NULL: "") into dst[n], truncating. */
void st_copy_text(char *dst, size_t n, const unsigned char *src);
/* An owned copy of a column's text, NULL for NULL; sets *oom when the copy failed. */
char *st_dup_col(sqlite3_stmt *st, int i, bool *oom);
/* The enum values of state names as the schema writes them (unknown: cancelled). */
cs_job_state st_job_state_of(const char *name);
cs_sweep_state st_sweep_state_of(const char *name);
/* Asserts the job state machine (cs_store.h): panics when from -> to is not one of its edges. */
void st_job_transition(cs_job_state from, cs_job_state to);

/* ---- the guard of every public operation (cs_store.c) --------------------------------------- */

typedef enum st_kind {
    ST_READ,   /* a query: works on read-only handles, joins nothing */
    ST_WRITE,  /* its own transaction, or a savepoint inside a batch */
    ST_WORKER, /* the worker operations: inside a batch no savepoint, they check before they
                  write; one that fails after writing poisons the batch (cs_store_commit) */
} st_kind;

typedef struct st_op {
    cs_store *s;
    st_kind kind;
    int64_t mark; /* ST_WORKER in a batch: the connection's change count at the start */
    bool open;    /* st_leave has work to do */
} st_op;

/* Starts an operation: a store is given (CS_EINVAL), bad is NULL (else CS_EINVAL with the message
 * "store: <bad>": the operation's argument check), a write is not on a read-only handle
 * (CS_ENOTSUP), and a write opens its transaction or joins the batch. After CS_OK the operation
 * must end with st_leave. */
cs_rc st_enter(st_op *op, cs_store *s, st_kind kind, const char *bad, cs_err *err);
/* Ends it: keeps its work when rc is CS_OK, undoes it otherwise; returns the outcome. */
cs_rc st_leave(st_op *op, cs_rc rc, cs_err *err);
/* The guard of a query (ST_READ) and its first statement (st_stmt). */
cs_rc st_query(cs_store *s, int id, sqlite3_stmt **out, cs_err *err);

/* ---- sweeps (cs_store.c) ------------------------------------------------------------------- */

/* Reads sweep.state: CS_ENOENT naming the sweep if there is none. */
cs_rc st_sweep_state(cs_store *s, int64_t sweep_id, cs_sweep_state *out, cs_err *err);
/* Moves a sweep from `from` to `to`; *changed (may be NULL) tells whether it was in `from`. */
cs_rc st_sweep_set_state(cs_store *s, int64_t sweep_id, const char *from, const char *to,
                         const char *why, int64_t now, bool *changed, cs_err *err);
/* An active sweep with no job left to run becomes done (one sweep, or all of them). */
cs_rc st_settle_one(cs_store *s, int64_t sweep_id, int64_t now, cs_err *err);
cs_rc st_settle_all(cs_store *s, int64_t now, cs_err *err);
/* Done sweeps that have a job to run again become active. */
cs_rc st_reopen_sweeps(cs_store *s, const char *why, int64_t now, cs_err *err);
/* Frees the requirement cache of the insert path. */
void st_req_cache_clear(req_cache *rc);

/* ---- jobs' texts and the result cache (cs_store_insert.c) ----------------------------------- */

/* *result_id = the cached good result of key, 0 when none. */
cs_rc st_lookup_cache(cs_store *s, const char *key, int64_t *result_id, cs_err *err);
/* Rebuilds a config or axes text: raw when not NULL, else '{' + the texts of the fragments of the
 * id list + '}'. Returns an owned copy in *out (free()). */
cs_rc st_rebuild(cs_store *s, const char *ids, const char *raw, char **out, cs_err *err);

#endif
