/* cs_store.c - the SQLite job store (see cs_store.h for the contract): its statements, the SQLite
 * error boundary (st_err), the guard of every operation (st_enter/st_leave), group commit, open,
 * migrate and close. The operations live in cs_store_insert.c, cs_store_lease.c and
 * cs_store_query.c (cs_store_int.h).
 *
 * Every statement is prepared once per connection and kept in s->st[] (the claim path runs
 * thousands of times a second). Each write operation runs inside st_enter/st_leave: BEGIN IMMEDIATE
 * ... COMMIT on its own, or SAVEPOINT ... RELEASE inside a batch, so an operation that fails leaves
 * no trace either way. State changes are logged by the triggers of the schema (job_state_event,
 * sweep_state_event): every UPDATE that changes job.state also sets state_at and state_why, every
 * one that changes sweep.state also sets updated and state_why; the C side asserts the job state
 * machine's edges where it knows both ends (st_job_transition).
 *
 * Workload: one writer (the coordinator's loop thread); sweeps up to ~10^6 jobs; a few sweeps
 * active at a time, so the claim scans active sweeps and takes each one's best job through the
 * job_claim index (sweep_id, state, priority DESC, id), then picks among them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cs_migrations.h"
#include "cs_store_int.h"
#include "cs_store_testing.h"

const char *const st_sql[S_COUNT] = {
#define STMT_SQL(name, sql) sql,
        STMT_LIST(STMT_SQL)
#undef STMT_SQL
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

cs_sweep_state st_sweep_state_of(const char *name)
{
    for (unsigned i = 0; i < sizeof(sweep_state_names) / sizeof(sweep_state_names[0]); i++) {
        if (name && strcmp(name, sweep_state_names[i]) == 0) {
            return (cs_sweep_state)i;
        }
    }
    return CS_SWEEP_CANCELLED;
}

cs_job_state st_job_state_of(const char *name)
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
cs_rc st_err(sqlite3 *db, int src, const char *what, cs_err *err)
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
cs_rc st_stmt(cs_store *s, int id, sqlite3_stmt **out, cs_err *err)
{
    int src;
    if (!s->st[id]) {
        src = sqlite3_prepare_v3(s->db, st_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->st[id],
                                 NULL);
        if (src != SQLITE_OK) {
            *out = NULL;
            return st_err(s->db, src, "prepare", err);
        }
    } else {
        sqlite3_reset(s->st[id]);
        sqlite3_clear_bindings(s->st[id]);
    }
    *out = s->st[id];
    return CS_OK;
}

void st_rel(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
    }
}

void st_bind_text(sqlite3_stmt *st, int i, const char *text)
{
    if (text) {
        sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, i);
    }
}

/* Runs a statement that returns no rows to its end. */
cs_rc st_run(cs_store *s, sqlite3_stmt *st, const char *what, cs_err *err)
{
    int src = sqlite3_step(st);
    while (src == SQLITE_ROW) {
        src = sqlite3_step(st);
    }
    if (src != SQLITE_DONE) {
        cs_rc rc = st_err(s->db, src, what, err);
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);
    return CS_OK;
}

/* Steps a bound statement that returns at most one row, then releases it: *found says whether
 * there was a row, and *out is its first column (left alone without one). */
cs_rc st_step_int64(cs_store *s, sqlite3_stmt *st, int64_t *out, bool *found, const char *what,
                    cs_err *err)
{
    int src = sqlite3_step(st);
    cs_rc rc = CS_OK;
    *found = src == SQLITE_ROW;
    if (*found) {
        *out = sqlite3_column_int64(st, 0);
    } else if (src != SQLITE_DONE) {
        rc = st_err(s->db, src, what, err);
    }
    st_rel(st);
    return rc;
}

/* Runs a cached statement that takes no parameters. */
cs_rc st_run_id(cs_store *s, int id, const char *what, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_stmt(s, id, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    return st_run(s, st, what, err);
}

void st_copy_text(char *dst, size_t n, const unsigned char *src)
{
    snprintf(dst, n, "%s", src ? (const char *)src : "");
}

char *st_dup_col(sqlite3_stmt *st, int i, bool *oom)
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

/* The edges of the job state machine (cs_store.h): bit `to` of edges[from]. A new job starts
 * queued or cached (submit, extend). */
static const unsigned job_edges[CS_JOB_NSTATES] = {
        [CS_JOB_QUEUED] = CS_JOB_MASK(CS_JOB_RUNNING) | CS_JOB_MASK(CS_JOB_CANCELLED) |
                          CS_JOB_MASK(CS_JOB_DONE), /* a late result */
        [CS_JOB_RUNNING] = CS_JOB_MASK(CS_JOB_DONE) | CS_JOB_MASK(CS_JOB_RETRY_WAIT) |
                           CS_JOB_MASK(CS_JOB_FAILED) | CS_JOB_MASK(CS_JOB_CANCELLED) |
                           CS_JOB_MASK(CS_JOB_QUEUED) | CS_JOB_MASK(CS_JOB_LOST),
        [CS_JOB_RETRY_WAIT] = CS_JOB_MASK(CS_JOB_QUEUED) | CS_JOB_MASK(CS_JOB_CANCELLED) |
                              CS_JOB_MASK(CS_JOB_DONE),
        [CS_JOB_FAILED] = CS_JOB_MASK(CS_JOB_QUEUED),
        [CS_JOB_LOST] = CS_JOB_MASK(CS_JOB_QUEUED) | CS_JOB_MASK(CS_JOB_DONE),
};

void st_job_transition(cs_job_state from, cs_job_state to)
{
    if ((unsigned)from >= CS_JOB_NSTATES || (unsigned)to >= CS_JOB_NSTATES ||
        !(job_edges[from] & CS_JOB_MASK(to))) {
        char why[96];
        snprintf(why, sizeof(why), "store: job state %s -> %s is not an edge of the machine",
                 cs_job_state_name(from), cs_job_state_name(to));
        CS_PANIC(why);
    }
}

/* ---- transactions ---------------------------------------------------------------------------- */

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
        st_run_id(s, S_ROLLBACK, "rollback", NULL);
    }
    rolled_back(s);
    return rc;
}

cs_rc st_enter(st_op *op, cs_store *s, st_kind kind, const char *bad, cs_err *err)
{
    cs_rc rc;
    op->s = s;
    op->kind = kind;
    op->mark = 0;
    op->open = false;
    if (!s) {
        return cs_err_set(err, CS_EINVAL, 0, "store: no store");
    }
    if (bad) {
        return cs_err_set(err, CS_EINVAL, 0, "store: %s", bad);
    }
    if (kind == ST_READ) {
        return CS_OK;
    }
    if (s->readonly) {
        return cs_err_set(err, CS_ENOTSUP, 0, "store: the database is open read-only");
    }
    if (kind == ST_WORKER && s->batch) {
        op->mark = sqlite3_total_changes64(s->db);
        op->open = true;
        return CS_OK;
    }
    rc = st_run_id(s, s->batch ? S_SAVEPOINT : S_BEGIN, "begin", err);
    op->open = rc == CS_OK;
    return rc;
}

cs_rc st_query(cs_store *s, int id, sqlite3_stmt **out, cs_err *err)
{
    st_op op;
    cs_rc rc = st_enter(&op, s, ST_READ, NULL, err);
    return rc == CS_OK ? st_stmt(s, id, out, err) : rc;
}

cs_rc st_leave(st_op *op, cs_rc rc, cs_err *err)
{
    cs_store *s = op->s;
    if (!op->open) {
        return rc;
    }
    op->open = false;
    if (op->kind == ST_WORKER && s->batch) {
        if (rc != CS_OK && sqlite3_total_changes64(s->db) != op->mark && !s->poisoned) {
            s->poisoned = true;
            snprintf(s->poison, sizeof(s->poison), "%s", err ? err->msg : cs_rc_str(rc));
        }
        return rc;
    }
    if (s->batch) {
        if (rc == CS_OK) {
            return st_run_id(s, S_RELEASE, "release", err);
        }
        st_run_id(s, S_ROLLBACK_TO, "rollback", NULL);
        st_run_id(s, S_RELEASE, "release", NULL);
        rolled_back(s);
        return rc;
    }
    if (rc == CS_OK) {
        rc = st_run_id(s, S_COMMIT, "commit", err);
    }
    return commit_or_roll_back(s, rc);
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
    rc = st_run_id(s, S_BEGIN, "begin batch", err);
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
        rc = st_run_id(s, S_COMMIT, "commit batch", err);
    }
    return commit_or_roll_back(s, rc);
}

void cs_store_rollback(cs_store *s)
{
    if (s && s->batch) {
        s->batch = false;
        s->poisoned = false;
        if (!sqlite3_get_autocommit(s->db)) {
            st_run_id(s, S_ROLLBACK, "rollback", NULL);
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
    int src = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return src == SQLITE_OK ? CS_OK : st_err(db, src, what, err);
}

static cs_rc user_version(sqlite3 *db, int *out, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    int src = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (src == SQLITE_OK) {
        src = sqlite3_step(st);
    }
    if (src != SQLITE_ROW) {
        cs_rc rc = st_err(db, src, "read user_version", err);
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
        rc = st_err(db, src, "foreign_key_check", err);
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
        return st_err(s->db, src, "checkpoint", err);
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
        char what[512];
        snprintf(what, sizeof(what), "%s: cannot open", path);
        rc = st_err(s->db, src, what, err);
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

void st_req_cache_clear(req_cache *rc)
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
    st_req_cache_clear(&s->req);
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
cs_rc st_sweep_state(cs_store *s, int64_t sweep_id, cs_sweep_state *out, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_stmt(s, S_SWEEP_STATE, &st, err);
    int src;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *out = st_sweep_state_of((const char *)sqlite3_column_text(st, 0));
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: no sweep %lld", (long long)sweep_id);
    } else {
        rc = st_err(s->db, src, "read sweep", err);
    }
    st_rel(st);
    return rc;
}

/* Moves a sweep from `from` to `to`; *changed tells whether it was in `from`. */
cs_rc st_sweep_set_state(cs_store *s, int64_t sweep_id, const char *from, const char *to,
                         const char *why, int64_t now, bool *changed, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_stmt(s, S_SWEEP_SET_STATE, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    st_bind_text(st, 2, to);
    st_bind_text(st, 3, why);
    sqlite3_bind_int64(st, 4, now);
    st_bind_text(st, 5, from);
    rc = st_run(s, st, "set sweep state", err);
    if (changed) {
        *changed = rc == CS_OK && sqlite3_changes(s->db) > 0;
    }
    return rc;
}

cs_rc st_settle_one(cs_store *s, int64_t sweep_id, int64_t now, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_stmt(s, S_SWEEP_SETTLE_ONE, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    sqlite3_bind_int64(st, 2, now);
    return st_run(s, st, "settle sweep", err);
}

cs_rc st_settle_all(cs_store *s, int64_t now, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_stmt(s, S_SWEEP_SETTLE_ALL, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, now);
    return st_run(s, st, "settle sweeps", err);
}

cs_rc st_reopen_sweeps(cs_store *s, const char *why, int64_t now, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_stmt(s, S_SWEEP_REOPEN, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, now);
    st_bind_text(st, 2, why);
    return st_run(s, st, "reopen sweeps", err);
}
