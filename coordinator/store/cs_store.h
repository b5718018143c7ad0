/* cs_store.h - the durable job store of the coordinator (SQLite).
 *
 * One file holds sweeps, jobs, attempts, results, metrics (long form), job events, workers and the
 * result cache; the schema is schemas/migrations/ (compiled in, applied under PRAGMA user_version).
 * Since version 2 a job's config and axes are stored as lists of shared fragments (table job_row,
 * see 0002_fragments.sql); the view `job` and every accessor here give back the exact text that
 * was submitted. Since version 4 a result's per-item outcomes are rows of table item_outcome (raw
 * bytes per result, task and outcome), not part of the stored result json; cs_store_agg_load
 * reads a sweep for the aggregator (cs_store_results.c).
 * Only the coordinator writes (cs_store_open); the CLI, TUI and exporters read
 * (cs_store_open_ro). Connections use WAL, synchronous=FULL, foreign_keys=ON and a busy timeout;
 * every write is a BEGIN IMMEDIATE transaction.
 *
 * Job states (docs/architecture.md): queued -> running -> done | retry_wait -> queued | failed |
 * lost | cancelled, plus cached. Every change of state writes a job_event row (a trigger on
 * job.state). A running job holds a lease (worker, lease_until) and an attempt number; each attempt
 * has a lease token, a secret drawn when it is handed out (schema version 3). Heartbeat, result,
 * fail and release name the attempt, the worker and the token, and are refused with CS_ESTALE when
 * a newer attempt exists or when the worker or token is not the attempt's (fencing): only the lease
 * holder can renew, report or hand back a job.
 *
 * Time: every operation takes `now` (ms since the Unix epoch), so tests control the clock and
 * the daemon passes cs_time_wall_ms(). Durations are ms.
 *
 * Group commit: cs_store_begin() opens one write transaction; the operations called until
 * cs_store_commit() join it, each still atomic on its own: an operation that fails leaves no
 * trace and the batch goes on. Most do it with a savepoint; the worker operations (claim,
 * heartbeat, result, fail, worker seen) check everything before they write instead, and if one
 * of them fails after a write (I/O, memory) cs_store_commit rolls the whole batch back and
 * returns an error. Nothing done inside a batch is durable before cs_store_commit() returns
 * CS_OK, so the daemon must not acknowledge any of them before that (and must answer all of
 * them with an error if the commit fails). Outside a batch each operation is its own
 * transaction.
 *
 * Threads: a cs_store is used by one thread at a time (the coordinator's loop thread).
 *
 * The store owns all SQL: the daemon, the control handlers and the CLI ask these functions and
 * never see the connection (only the store's tests do, through cs_store_testing.h).
 */
#ifndef CS_COORDINATOR_STORE_CS_STORE_H
#define CS_COORDINATOR_STORE_CS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_plan.h"

typedef struct cs_store cs_store;
struct cJSON;
struct cs_agg_job;

typedef enum cs_job_state {
    CS_JOB_QUEUED = 0,
    CS_JOB_RUNNING,
    CS_JOB_RETRY_WAIT,
    CS_JOB_DONE,
    CS_JOB_FAILED,
    CS_JOB_LOST,
    CS_JOB_CANCELLED,
    CS_JOB_CACHED,
} cs_job_state;
#define CS_JOB_NSTATES  8
#define CS_JOB_MASK(st) (1u << (unsigned)(st))

typedef enum cs_sweep_state {
    CS_SWEEP_ACTIVE = 0,
    CS_SWEEP_PAUSED,
    CS_SWEEP_CANCELLED,
    CS_SWEEP_DONE,
} cs_sweep_state;

/* "queued", "retry_wait", ...; "?" outside the enum. */
const char *cs_job_state_name(cs_job_state st);
/* CS_OK and *out for a state name; CS_EINVAL naming the text otherwise. */
cs_rc cs_job_state_parse(const char *name, cs_job_state *out, cs_err *err);
const char *cs_sweep_state_name(cs_sweep_state st);

/* ---- open and close ---------------------------------------------------------------------- */

/* Opens (creating if needed) the database at path for writing and brings its schema up to date
 * (all pending migrations in one transaction). Refuses with CS_EVERSION a database whose
 * user_version is newer than this binary knows, CS_EIO naming the file for a database file (or
 * folder) it may not write (SQLite would open it read-only and fail every write later),
 * CS_EDB/CS_EIO/CS_EBUSY for SQLite failures.
 * *out is owned (cs_store_close); NULL on error. */
cs_rc cs_store_open(const char *path, cs_store **out, cs_err *err);

/* Opens an existing database read-only (CLI, TUI, exporters). CS_ENOENT when the file does not
 * exist, CS_EVERSION when its schema is older or newer than this binary's (it never migrates).
 * Write operations on it return CS_ENOTSUP. */
cs_rc cs_store_open_ro(const char *path, cs_store **out, cs_err *err);

/* Closes; an open batch is rolled back. NULL-safe. */
void cs_store_close(cs_store *s);

/* The schema version this binary writes (the number of compiled-in migrations). */
int cs_store_schema_version(void);

/* ---- group commit ------------------------------------------------------------------------ */

/* Opens a write transaction (BEGIN IMMEDIATE); CS_ESTATE if one is already open. */
cs_rc cs_store_begin(cs_store *s, cs_err *err);
/* Commits it. On error the whole batch is rolled back and nothing in it happened. */
cs_rc cs_store_commit(cs_store *s, cs_err *err);
/* Rolls back the open batch (no-op without one). */
void cs_store_rollback(cs_store *s);
bool cs_store_in_batch(const cs_store *s);

/* ---- submit and extend --------------------------------------------------------------------- */

typedef struct cs_store_submit_counts {
    int64_t sweep_id;
    size_t cells;     /* cells read from the stream */
    size_t inserted;  /* new jobs (queued + cached) */
    size_t queued;    /* new jobs to run */
    size_t cached;    /* new jobs that reuse a good result (never with force) */
    size_t baselines; /* new baseline jobs */
    size_t existing;  /* cells whose key the sweep already had (extend; duplicates in a stream) */
} cs_store_submit_counts;

/* Inserts a sweep and every cell of the stream in ONE transaction: the whole sweep or nothing.
 * A cell whose key has a good result (result_cache) becomes cached and points at that result,
 * unless force. A key that the stream repeats is stored once (counted in existing); cells marked
 * unique (cs_cell.unique) are trusted not to repeat one. A config or axes text that is not valid
 * JSON is refused (CS_EINVAL, "malformed JSON", naming the cell). CS_EEXIST when a sweep of that
 * name is live (not cancelled; use extend), errors of the stream are passed on (and nothing is
 * stored). Inside a batch it joins the batch. */
cs_rc cs_store_submit(cs_store *s, const cs_sweep_meta *meta, cs_cell_next_fn next, void *ctx,
                      bool force, int64_t now, cs_store_submit_counts *counts, cs_err *err);

/* Adds the cells of the stream that the sweep does not have yet (existing keys stay untouched,
 * counted in existing), with the same cache rule; spec and spec_hash of meta replace the stored
 * ones when meta is not NULL (its policy is ignored). A done sweep becomes active again.
 * CS_ENOENT for an unknown sweep, CS_ESTATE for a cancelled one. One transaction. */
cs_rc cs_store_extend(cs_store *s, int64_t sweep_id, const cs_sweep_meta *meta,
                      cs_cell_next_fn next, void *ctx, bool force, int64_t now,
                      cs_store_submit_counts *counts, cs_err *err);

/* ---- the worker protocol ------------------------------------------------------------------- */

/* What a worker can run. */
typedef struct cs_store_caps {
    const char *worker;   /* worker id, required */
    const char *instance; /* the worker process's secret id (CLAIM.instance); NULL = none */
    const char *host;     /* recorded on the attempt; may be NULL */
    const char *models;   /* JSON array of model folders it can load; NULL = any */
    bool native;          /* runs the native engine */
    bool exec;            /* runs exec-backend jobs */
    int64_t mem_mb;       /* memory it offers; < 0 = no limit */
    int64_t gpus;         /* GPUs it offers */
} cs_store_caps;

/* Length of a lease token: lowercase hex digits (128 random bits). */
#define CS_STORE_TOKEN_LEN 32

/* A job handed to a worker. Fini with cs_store_claim_fini. */
typedef struct cs_store_claim {
    int64_t job_id;
    int64_t sweep_id;
    int attempt;                              /* the attempt number to send back */
    char lease_token[CS_STORE_TOKEN_LEN + 1]; /* the lease's secret to send back */
    int64_t lease_until;                      /* ms */
    int64_t timeout_ms;                       /* per-attempt wall-clock limit, 0 = none */
    char key[65];
    char *config; /* owned: canonical JSON of the job */
    bool again;   /* the worker already held this lease (a resent CLAIM) */
} cs_store_claim;

void cs_store_claim_fini(cs_store_claim *c); /* NULL-safe; leaves c zeroed */

/* Moves the best queued job that caps can run to running (attempt+1, lease until now+lease_ms,
 * a fresh lease token stored with the attempt): highest job priority first; among equal
 * priorities the active sweep with the fewest running jobs, then the oldest job. Skips paused,
 * cancelled and done sweeps and sweeps at max_running. A worker process (worker and instance)
 * that already holds a live lease receives that job again with its token (again = true, lease
 * renewed), so a resent CLAIM never takes a second job; a claim under the same worker name with
 * another instance (or none) never sees that lease. CS_ENOENT (err untouched) when there is
 * nothing to do. *out is filled on CS_OK only. */
cs_rc cs_store_claim_job(cs_store *s, const cs_store_caps *caps, int64_t lease_ms, int64_t now,
                         cs_store_claim *out, cs_err *err);

/* Whether worker holds the lease of (job, attempt) under token (constant-time comparison of the
 * token). CS_OK when it does; CS_ESTALE when the attempt exists but another worker holds it or
 * the token differs (the message names the job, the attempt and the claimed worker: a refused
 * report, maybe forged); CS_ENOENT (err untouched) when the job has no such attempt. Read-only;
 * what (e.g. "result") names the operation in the message. The operations below check it first. */
cs_rc cs_store_lease_check(cs_store *s, int64_t job_id, int attempt, const char *worker,
                           const char *token, const char *what, cs_err *err);

/* Renews the lease of (job, attempt) held by worker under token to now+lease_ms and stores
 * progress (JSON, may be NULL). *cancel tells whether a cancel is pending (the ACK carries it).
 * CS_ESTALE when the job is not running under that attempt (the worker must stop) or worker and
 * token are not its lease's (cs_store_lease_check), CS_ENOENT for an unknown job. */
cs_rc cs_store_heartbeat(cs_store *s, int64_t job_id, int attempt, const char *worker,
                         const char *token, int64_t lease_ms, const char *progress, int64_t now,
                         bool *cancel, cs_err *err);

/* One metric in long form. */
typedef struct cs_store_metric {
    const char *task;   /* "arith", "ppl:general", ... */
    const char *metric; /* "acc", "acc_norm", "ppl", ... */
    double value;
    double stderr_; /* NaN = unknown */
    int64_t n;      /* items; < 0 = unknown */
} cs_store_metric;

/* How an attempt ended, as the worker saw it. All fields optional (zeroed = unknown). */
typedef struct cs_store_exit {
    bool has_status;
    int exit_status;
    int signal;           /* 0 = none */
    const char *log_path; /* the attempt's log file */
    bool permanent;       /* fail only: do not retry (bad_input, model_missing) */
} cs_store_exit;

/* The outcomes of one (task, metric) of a result's per-item record (result.json version 2),
 * stored in table item_outcome. data is the raw bytes: a bitset of ceil(n/8) bytes (acc,
 * acc_norm, acc_bytes, exact_match, exact_match_flex: item i is bit (i & 7) of byte i >> 3) or n
 * little-endian float32 (margin, window_loss). */
typedef struct cs_store_outcome {
    const char *task;   /* "arith_mc", "ppl:general", ... */
    const char *metric; /* "acc", "margin", "window_loss", ... */
    const char *sample; /* hex SHA-256 of the ordered item sample */
    int64_t n;          /* items (windows for perplexity) */
    const void *data;
    size_t bytes;
} cs_store_outcome;

/* Stores the result of (job, attempt) and its metrics, moves the job to done and makes the result
 * the cached one for the job's key. Only from the lease holder: worker and token must be the
 * attempt's (cs_store_lease_check), else CS_ESTALE and nothing is stored or cached. Idempotent:
 * the same (job, attempt) again stores nothing and returns CS_OK with *duplicate = true
 * (duplicate may be NULL). A late result of the newest attempt is accepted while no newer attempt
 * started (job queued, retry_wait or lost after its lease expired); CS_ESTALE otherwise (an older
 * attempt, or the job done/failed/cancelled by another attempt), CS_ENOENT for an unknown job,
 * CS_EINVAL for an empty json. */
cs_rc cs_store_result(cs_store *s, int64_t job_id, int attempt, const char *worker,
                      const char *token, const char *json, const cs_store_metric *metrics,
                      size_t n_metrics, const cs_store_exit *ex, int64_t now, bool *duplicate,
                      cs_err *err);

/* The item outcomes of a decoded result (version 2 "items"), one per (task, metric) that is
 * present, ready for cs_store_result_items: bitsets borrowed from r, float arrays converted to
 * little endian into o->floats. Valid while r lives; fini with cs_store_outcomes_fini. */
typedef struct cs_store_outcomes {
    cs_store_outcome *v;
    size_t n;
    uint8_t *floats; /* owned */
} cs_store_outcomes;
struct cs_result;
cs_rc cs_store_outcomes_of(const struct cs_result *r, cs_store_outcomes *o, cs_err *err);
void cs_store_outcomes_fini(cs_store_outcomes *o); /* NULL-safe; leaves o zeroed */

/* cs_store_result that also stores the result's per-item outcomes (n_outcomes rows of
 * item_outcome under the new result id; outcomes may be NULL when n_outcomes is 0), in the same
 * transaction. The json should not carry them again (the daemon stores the document without
 * "items"). An outcome without task, metric or sample, or a (task, metric) given twice: CS_EINVAL
 * and nothing is stored. */
cs_rc cs_store_result_items(cs_store *s, int64_t job_id, int attempt, const char *worker,
                            const char *token, const char *json, const cs_store_metric *metrics,
                            size_t n_metrics, const cs_store_outcome *outcomes, size_t n_outcomes,
                            const cs_store_exit *ex, int64_t now, bool *duplicate, cs_err *err);

/* Records the failure of (job, attempt): with a cancel pending the job becomes cancelled; with
 * attempts left (and not ex->permanent) retry_wait until now + min(base * 2^(attempt-1), max);
 * otherwise failed, and a sweep with on_failure=stop is paused. *next_state (may be NULL) says
 * which. A repeated FAIL of the same attempt is CS_OK with no change. CS_ESTALE when the job is
 * not running under that attempt or worker and token are not its lease's, CS_ENOENT for an
 * unknown job. */
cs_rc cs_store_fail(cs_store *s, int64_t job_id, int attempt, const char *worker, const char *token,
                    const char *reason, const cs_store_exit *ex, int64_t now,
                    cs_job_state *next_state, cs_err *err);

typedef struct cs_store_reap_counts {
    size_t requeued;  /* running with an expired lease -> queued */
    size_t lost;      /* running with an expired lease and no attempts left -> lost */
    size_t cancelled; /* expired while a cancel was pending -> cancelled */
    size_t retried;   /* retry_wait whose not_before passed -> queued */
} cs_store_reap_counts;

/* The reaper: expired leases go back to queued, or to lost when their attempts are used up (or
 * cancelled when a cancel was pending); retry_wait jobs whose time came go back to queued; sweeps
 * with nothing left to run become done. Run at startup and on a timer. counts may be NULL. */
cs_rc cs_store_reap(cs_store *s, int64_t now, cs_store_reap_counts *counts, cs_err *err);

/* Records that a worker said hello (upsert): last_seen = now, host and capabilities (JSON) when
 * not NULL, and clears its BYE. */
cs_rc cs_store_worker_seen(cs_store *s, const char *worker, const char *host,
                           const char *capabilities, int64_t now, cs_err *err);

/* Records that a worker was heard from (CLAIM, HEARTBEAT, RESULT, FAIL): creates its row if
 * needed, moves last_seen to now (writing only when it is a second or more behind, so a busy
 * worker costs no write per message), clears its BYE, and records instance when not NULL. */
cs_rc cs_store_worker_touch(cs_store *s, const char *worker, const char *instance, int64_t now,
                            cs_err *err);

/* A worker hands back the job it holds (BYE.release_job; it was asked to stop): the job is queued
 * again at once (cancelled when a cancel is pending), its attempt ends as "released" and is given
 * back (max_attempts + 1), so stopping a worker costs the job no attempt. Only
 * the lease holder may: CS_ESTALE when worker and token are not the attempt's
 * (cs_store_lease_check) and nothing changes; CS_OK and nothing changes when the job has no such
 * attempt. *released (may be NULL) says whether a running lease of that attempt existed. */
cs_rc cs_store_release(cs_store *s, int64_t job_id, int attempt, const char *worker,
                       const char *token, int64_t now, bool *released, cs_err *err);

/* A worker said BYE: marks it gone (bye_at = now) unless its row records another instance (a newer
 * process of the same name). *marked (may be NULL) says whether a row changed. */
cs_rc cs_store_worker_bye(cs_store *s, const char *worker, const char *instance, int64_t now,
                          bool *marked, cs_err *err);

/* Deletes the workers not seen since now - idle_ms that run no job (their rows only; attempts
 * keep the names). *n (may be NULL) = rows deleted. */
cs_rc cs_store_worker_prune(cs_store *s, int64_t now, int64_t idle_ms, size_t *n, cs_err *err);

/* ---- control --------------------------------------------------------------------------------- */

/* Selects jobs: every field that is set must match. */
typedef struct cs_store_filter {
    int64_t sweep_id; /* 0 = any sweep */
    int64_t job_id;   /* 0 = any job */
    unsigned states;  /* CS_JOB_MASK bits; 0 = the operation's default set */
} cs_store_filter;

typedef struct cs_store_cancel_counts {
    size_t cancelled; /* queued/retry_wait jobs moved to cancelled */
    size_t signalled; /* running jobs whose next heartbeat ACK says cancel */
} cs_store_cancel_counts;

/* Cancels the jobs of the filter (default states: queued, retry_wait, running; other states are
 * never touched). A filter naming only a sweep (job_id 0, states 0) also marks the sweep cancelled
 * so it hands out nothing more. CS_ENOENT when the named sweep or job does not exist. */
cs_rc cs_store_cancel(cs_store *s, const cs_store_filter *f, const char *why, int64_t now,
                      cs_store_cancel_counts *counts, cs_err *err);

/* Pause: the sweep's queued jobs are not handed out (running ones go on). Resume undoes it.
 * CS_ENOENT for an unknown sweep, CS_ESTATE for a cancelled or done sweep (pause) or one that is
 * not paused (resume). Pausing a paused sweep is CS_OK. */
cs_rc cs_store_pause(cs_store *s, int64_t sweep_id, int64_t now, cs_err *err);
cs_rc cs_store_resume(cs_store *s, int64_t sweep_id, int64_t now, cs_err *err);

/* Puts the failed and/or lost (f->states, default both; only those two are allowed) jobs of the
 * filter back to queued with a fresh set of attempts (max_attempts = attempt + the sweep's
 * max_attempts); a done sweep becomes active. *n = jobs moved (may be NULL). CS_EINVAL for other
 * states in the mask. */
cs_rc cs_store_retry(cs_store *s, const cs_store_filter *f, int64_t now, size_t *n, cs_err *err);

/* ---- queries (read-only handles too) --------------------------------------------------------- */

typedef struct cs_store_counts {
    size_t n[CS_JOB_NSTATES]; /* jobs per state */
    size_t total;
} cs_store_counts;

/* Jobs per state of one sweep (sweep_id > 0) or of all sweeps (0). */
cs_rc cs_store_count(cs_store *s, int64_t sweep_id, cs_store_counts *out, cs_err *err);

typedef struct cs_store_sweep_info {
    int64_t id;
    char name[128]; /* truncated if longer */
    char spec_hash[65];
    cs_sweep_state state;
    cs_policy policy;
    int64_t created;
    cs_store_counts counts;
} cs_store_sweep_info;

/* The live (not cancelled) sweep of that name: CS_ENOENT if none. */
cs_rc cs_store_sweep_find(cs_store *s, const char *name, int64_t *id, cs_err *err);
/* One sweep with its counts: CS_ENOENT if none. */
cs_rc cs_store_sweep_get(cs_store *s, int64_t id, cs_store_sweep_info *out, cs_err *err);
/* Calls fn for every sweep, oldest first; a non-OK return of fn stops and is returned. */
typedef cs_rc (*cs_store_sweep_fn)(void *ctx, const cs_store_sweep_info *info, cs_err *err);
cs_rc cs_store_sweep_list(cs_store *s, cs_store_sweep_fn fn, void *ctx, cs_err *err);

/* One job. Strings owned: fini with cs_store_job_fini. */
typedef struct cs_store_job {
    int64_t id;
    int64_t sweep_id;
    char key[65];
    cs_job_state state;
    int priority;
    int attempt;
    int max_attempts;
    int64_t lease_until; /* 0 when none */
    int64_t not_before;  /* 0 when none */
    int64_t result_id;   /* 0 when none */
    bool cancel_requested;
    bool baseline;
    char *config;
    char *axes;
    char *worker;     /* NULL when none */
    char *last_error; /* NULL when none */
} cs_store_job;

cs_rc cs_store_job_get(cs_store *s, int64_t id, cs_store_job *out, cs_err *err);
void cs_store_job_fini(cs_store_job *j); /* NULL-safe; leaves j zeroed */

/* True when key has a good result in any sweep. */
cs_rc cs_store_key_cached(cs_store *s, const char *key, bool *cached, cs_err *err);

/* For `calsweep plan --db`: reads the whole stream and counts its cells (*total) and those whose
 * key has a good result (*cached). Writes nothing; works on a read-only handle. */
cs_rc cs_store_count_cached(cs_store *s, cs_cell_next_fn next, void *ctx, size_t *total,
                            size_t *cached, cs_err *err);

/* ---- the control socket's reads (STATUS, JOBS, WORKERS, LOGS) -------------------------------- */

/* A worker counts as active when it was seen at or after active_since and has not said BYE since.
 * *n = the number of active workers. */
cs_rc cs_store_worker_count_active(cs_store *s, int64_t active_since, size_t *n, cs_err *err);

/* One worker row. Strings borrowed: valid until the callback returns. */
typedef struct cs_store_worker_row {
    const char *name;
    const char *host;         /* NULL when unknown */
    int64_t last_seen;        /* ms */
    const char *capabilities; /* JSON text as the worker sent it; NULL when none */
    int64_t job_id;           /* its running job with the lowest id; 0 when none */
    bool active;              /* see cs_store_worker_count_active */
    const char *progress;     /* that job's last heartbeat progress (JSON, without log_tail);
                                 NULL when none */
    int64_t heartbeat_at;     /* ms: that job's last heartbeat; 0 when none */
} cs_store_worker_row;
typedef cs_rc (*cs_store_worker_fn)(void *ctx, const cs_store_worker_row *w, cs_err *err);

/* Calls fn for every worker, by name; a non-OK return of fn stops and is returned. */
cs_rc cs_store_worker_list(cs_store *s, int64_t active_since, cs_store_worker_fn fn, void *ctx,
                           cs_err *err);

/* Which jobs cs_store_job_list gives. */
typedef struct cs_store_job_query {
    int64_t sweep_id;  /* 0 = any sweep */
    const char *state; /* a job state's name (cs_job_state_name); NULL = any */
    int64_t limit;     /* the most rows (< 0: no limit) */
    int64_t offset;    /* rows skipped first */
    int error_chars;   /* last_error is cut to its first error_chars characters */
} cs_store_job_query;

/* One job row. Strings borrowed: valid until the callback returns. */
typedef struct cs_store_job_row {
    int64_t id;
    int64_t sweep_id;
    const char *state; /* its name */
    int64_t attempt;
    const char *key;
    const char *worker;     /* NULL when none */
    int64_t state_at;       /* ms: when it entered its state */
    const char *axes;       /* JSON text */
    const char *last_error; /* NULL when none */
    const char *progress;   /* running: the last heartbeat's progress (JSON, without log_tail);
                               NULL when none or not running */
    int64_t heartbeat_at;   /* ms: the last heartbeat (or the claim) of its latest attempt; 0 when
                               none */
} cs_store_job_row;
typedef cs_rc (*cs_store_job_row_fn)(void *ctx, const cs_store_job_row *j, cs_err *err);

/* *total = the number of jobs that q selects; then calls fn for each of its page (by id, from
 * q->offset, at most q->limit); a non-OK return of fn stops and is returned. */
cs_rc cs_store_job_list(cs_store *s, const cs_store_job_query *q, int64_t *total,
                        cs_store_job_row_fn fn, void *ctx, cs_err *err);

/* What LOGS shows of one attempt of a job. Strings owned (cs_store_attempt_log_fini), NULL when
 * the column is. */
typedef struct cs_store_attempt_log {
    int64_t job_attempt; /* the job's newest attempt number (0: never claimed) */
    bool has_attempt;    /* the attempt asked for has a row */
    char *progress;      /* the job's last heartbeat progress (JSON) */
    char *last_error;    /* the job's last error */
    char *log_path;      /* the attempt's log file, as its worker reported it */
    char *error;         /* the attempt's failure text */
} cs_store_attempt_log;

/* The log facts of attempt (<= 0: the job's newest) of job_id. CS_ENOENT for an unknown job. */
cs_rc cs_store_attempt_log_get(cs_store *s, int64_t job_id, int64_t attempt,
                               cs_store_attempt_log *out, cs_err *err);
void cs_store_attempt_log_fini(cs_store_attempt_log *l); /* NULL-safe; leaves l zeroed */

/* The log path of the newest attempt of job_id that has one: *path owned, NULL when none. */
cs_rc cs_store_last_log_path(cs_store *s, int64_t job_id, char **path, cs_err *err);

/* ---- results (cs_store_results.c) ----------------------------------------------------------- */

/* What cs_agg_run needs of one sweep (`calsweep results`, the RESULTS message). Everything is
 * owned by the struct (cs_store_agg_fini). jobs are by id; state is the aggregator's name
 * ("pending" for queued and retry_wait, "running", "done" for done and cached, "failed", "lost",
 * "cancelled"); a job's axes are its members (the fragment texts, interned: jobs share the
 * pointers) with axes NULL, or, for a job with axes_raw, that text with members NULL; model and
 * eval are the axes' "model" and "eval" values ("" when absent); only done and cached jobs carry
 * metrics and outcomes (a cached job those of the result it reuses).
 * headline_* are the "headline" metrics that the sweep's eval suites name per task (the stored
 * sweep document; tasks without one are left out: the aggregator's default applies). */
typedef struct cs_store_agg {
    struct cs_agg_job *jobs;
    size_t n_jobs;
    const char **headline_task, **headline_metric;
    size_t n_headline;
    struct cs_store_agg_mem *mem; /* internal */
} cs_store_agg;

/* Loads sweep_id's jobs, their metrics and item outcomes in three streaming queries (plus the
 * sweep's document). with_margin: also the "margin" outcomes (n floats per task, the largest).
 * CS_ENOENT naming the sweep when it does not exist; CS_ENOMEM; SQLite errors. Works on
 * read-only handles. *out is zeroed on error. */
cs_rc cs_store_agg_load(cs_store *s, int64_t sweep_id, bool with_margin, cs_store_agg *out,
                        cs_err *err);
/* As cs_store_agg_load, with only the outcomes that cs_agg_run's comparisons read: those of each
 * task's headline metric (cs_agg_headline: metric when not NULL, else the sweep's headline or
 * the default), a third of them on a sweep with acc, acc_norm and acc_bytes. */
cs_rc cs_store_agg_load_headlines(cs_store *s, int64_t sweep_id, const char *metric,
                                  cs_store_agg *out, cs_err *err);
void cs_store_agg_fini(cs_store_agg *a); /* NULL-safe; leaves a zeroed */
/* The configs of a's done (and cached) jobs, as submitted: configs[i] (owned, free()) is the
 * config text of a->jobs[i], left NULL for the other jobs. configs has a->n_jobs entries, NULL on
 * entry; the long CSV of `calsweep export` flattens them into columns. */
cs_rc cs_store_agg_configs(cs_store *s, int64_t sweep_id, const cs_store_agg *a, char **configs,
                           cs_err *err);

/* A sweep reference, its name or decimal id: CS_ENOENT naming it and the live sweeps' names. */
cs_rc cs_store_sweep_resolve(cs_store *s, const char *ref, int64_t *id, cs_err *err);

/* What `calsweep results` and the RESULTS message ask (cs_agg_opts, before the headlines). */
typedef struct cs_store_results_req {
    const char *const *by;
    size_t n_by;
    const char *metric;    /* NULL: each task's headline */
    const char *reference; /* "AXIS=VALUE" or NULL */
    const char *const *tasks;
    size_t n_tasks;
    size_t resamples;
    size_t item_resamples; /* cs_agg_opts.item_resamples */
    uint64_t seed;
    bool slim; /* the slim aggregate (cs_agg_opts.slim) */
} cs_store_results_req;

/* The aggregate of sweep (a reference): cs_store_agg_load, the sweep's headline metrics, then
 * cs_agg_run. *out owned (cJSON_Delete). CS_ENOENT for an unknown sweep (cs_store_sweep_resolve),
 * CS_EINVAL for a malformed reference and what cs_agg_run refuses (unknown axis, task, metric, a
 * reference matching no or several rows), with the message naming the value and the choices. */
cs_rc cs_store_results(cs_store *s, const char *sweep, const cs_store_results_req *q,
                       struct cJSON **out, cs_err *err);

/* ---- WAL checkpoint ------------------------------------------------------------------------ */

/* A submit or extend that inserts at least this many jobs leaves the WAL checkpoint of its commit
 * (copying its pages into the database file, ~1 GB for 10^6 jobs) to cs_store_checkpoint() or,
 * if that is never called, to the next commit. Smaller commits checkpoint as SQLite does by
 * default (whenever the WAL exceeds 1000 pages). Durability does not change: a commit is durable
 * once it is in the WAL. */
#define CS_STORE_BULK_JOBS 4096

/* Copies the committed WAL pages into the database file (a PASSIVE checkpoint: it never waits for
 * readers). The daemon calls it from an idle timer; cheap when there is nothing to copy.
 * CS_ESTATE inside a batch, CS_ENOTSUP on a read-only store. */
cs_rc cs_store_checkpoint(cs_store *s, cs_err *err);

/* Whether a bulk commit skipped its checkpoint and cs_store_checkpoint() has not made up for it. */
bool cs_store_checkpoint_owed(const cs_store *s);

/* ---- the live view: WATCH and JOB_INFO (cs_store_watch.c) ------------------------------------ */

/* Queries only (read-only handles too); calsweepd runs the WATCH ones on its thread pool with a
 * connection of their own. Rows are borrowed: valid until the callback returns; a non-OK return
 * of a callback stops the walk and is returned. */

/* One sweep as the live view shows it (its counts: cs_store_count). */
typedef struct cs_store_watch_sweep {
    int64_t id;
    const char *name;
    cs_sweep_state state;
    int64_t priority;
    int64_t created; /* ms */
    int64_t updated; /* ms: the sweep's last change of state (or spec) */
} cs_store_watch_sweep;
typedef cs_rc (*cs_store_watch_sweep_fn)(void *ctx, const cs_store_watch_sweep *w, cs_err *err);

/* Every sweep (sweep_id 0) or that one, by id. */
cs_rc cs_store_watch_sweeps(cs_store *s, int64_t sweep_id, cs_store_watch_sweep_fn fn, void *ctx,
                            cs_err *err);

/* Calls fn(ctx, event id, time) for each event of sweep_id by which a job became done, failed or
 * lost, with an id above after_id and a time at or after since (ms), newest first. Reads the
 * sweep's job_event rows newest first and stops at after_id or at the first one older than
 * since: the cost is the window's new events, not the sweep's history. A non-OK return of fn
 * stops and is returned. */
typedef cs_rc (*cs_store_watch_finish_fn)(void *ctx, int64_t id, int64_t time, cs_err *err);
cs_rc cs_store_watch_finishes(cs_store *s, int64_t sweep_id, int64_t after_id, int64_t since,
                              cs_store_watch_finish_fn fn, void *ctx, cs_err *err);

/* One (algorithm, model) group of a sweep's jobs, for the ETA. */
typedef struct cs_store_watch_group {
    const char *algorithm; /* the config's "algorithm" value, JSON text ("" when absent) */
    const char *model;     /* the job's model folder (job_row.req_model; "" when none) */
    size_t remaining;      /* queued, running and retry_wait jobs */
    size_t n_done;         /* done attempts (outcome done, with an end time) */
    double sum_ms;         /* their summed durations (ended - started), ms */
} cs_store_watch_group;
typedef cs_rc (*cs_store_watch_group_fn)(void *ctx, const cs_store_watch_group *g, cs_err *err);

/* The groups of sweep_id that have a job left to run or a done job, by algorithm then model. One
 * query over the sweep's queued, running, retry_wait and done jobs. */
cs_rc cs_store_watch_groups(cs_store *s, int64_t sweep_id, cs_store_watch_group_fn fn, void *ctx,
                            cs_err *err);

/* One worker and the running job it holds (its lowest job id), if any. */
typedef struct cs_store_watch_worker {
    const char *name;
    const char *host;         /* NULL when unknown */
    const char *capabilities; /* JSON text as the worker sent it; NULL when none */
    int64_t last_seen;        /* ms */
    int64_t bye_at;           /* ms of its BYE; 0 when none since it was last heard */
    int64_t job_id;           /* 0 when it runs nothing; the fields below are then 0/NULL */
    int64_t sweep_id;
    const char *sweep; /* the job's sweep name */
    const char *key;
    int64_t attempt;
    const char *axes;     /* JSON text */
    int64_t started;      /* ms: the attempt's start */
    int64_t heartbeat_at; /* ms: the job's last heartbeat (or its claim) */
    const char *progress; /* the last heartbeat's progress JSON; NULL when none */
} cs_store_watch_worker;
typedef cs_rc (*cs_store_watch_worker_fn)(void *ctx, const cs_store_watch_worker *w, cs_err *err);

/* The workers seen at or after seen_since, and every worker that holds a running job: those with
 * a job first, then by name. */
cs_rc cs_store_watch_workers(cs_store *s, int64_t seen_since, cs_store_watch_worker_fn fn,
                             void *ctx, cs_err *err);

/* One failed, lost or retry_wait job. */
typedef struct cs_store_watch_problem {
    int64_t id;
    int64_t sweep_id;
    const char *sweep;
    const char *key;
    const char *state; /* "failed", "lost", "retry_wait" */
    int64_t attempt, max_attempts;
    const char *axes;       /* JSON text */
    const char *last_error; /* NULL when none; FAIL's "kind: reason\n--- log tail ---\n..." */
    const char *progress;   /* the last heartbeat's progress JSON (its log_tail); NULL when none */
    int64_t updated;        /* ms: when it entered its state */
} cs_store_watch_problem;
typedef cs_rc (*cs_store_watch_problem_fn)(void *ctx, const cs_store_watch_problem *p, cs_err *err);

/* *total = the failed, lost and retry_wait jobs of sweep_id (0: of every sweep); then calls fn for
 * the newest limit of them (latest change of state first). */
cs_rc cs_store_watch_problems(cs_store *s, int64_t sweep_id, int64_t limit, int64_t *total,
                              cs_store_watch_problem_fn fn, void *ctx, cs_err *err);

/* One job whole, for JOB_INFO. Strings owned (cs_store_job_info_fini), NULL when the column is. */
typedef struct cs_store_job_info {
    int64_t id;
    int64_t sweep_id;
    char *sweep; /* its name */
    char key[65];
    char *state; /* its name */
    int64_t attempt, max_attempts;
    char *axes, *config; /* JSON text, exactly as submitted */
    char *progress;      /* the last heartbeat's progress JSON */
    char *last_error;
    int64_t created; /* ms */
    int64_t updated; /* ms: its last change of state */
} cs_store_job_info;

/* CS_ENOENT "no job N" for an unknown id. *out zeroed on error. */
cs_rc cs_store_job_info_get(cs_store *s, int64_t id, cs_store_job_info *out, cs_err *err);
void cs_store_job_info_fini(cs_store_job_info *j); /* NULL-safe; leaves j zeroed */

/* One attempt of a job. */
typedef struct cs_store_attempt_row {
    int64_t n;
    const char *worker;
    const char *host;    /* NULL when unknown */
    int64_t started;     /* ms */
    int64_t ended;       /* ms; 0 while it runs */
    const char *outcome; /* "done", "failed", "expired", "cancelled"; NULL while it runs */
    bool has_exit_status;
    int64_t exit_status;
    int64_t signal; /* 0 = none */
    const char *error;
    const char *log_path;
} cs_store_attempt_row;
typedef cs_rc (*cs_store_attempt_fn)(void *ctx, const cs_store_attempt_row *a, cs_err *err);

/* The attempts of job_id, by number (none for an unknown job). */
cs_rc cs_store_attempt_list(cs_store *s, int64_t job_id, cs_store_attempt_fn fn, void *ctx,
                            cs_err *err);

#endif
