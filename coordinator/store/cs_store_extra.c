/* cs_store_extra.c - store operations the daemon needs beyond cs_store.h (see cs_store_extra.h).
 * Each is one statement (after a read), so it is atomic without a savepoint of its own. */
#include "cs_store_extra.h"

#include <sqlite3.h>

/* Prepares sql on s's connection; CS_EDB naming what on failure. */
static cs_rc prepare(cs_store *s, const char *sql, sqlite3_stmt **st, const char *what, cs_err *err)
{
    sqlite3 *db = cs_store_db(s);
    int rv = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (rv != SQLITE_OK)
        return cs_err_set(err, CS_EDB, rv, "%s: %s", what, sqlite3_errmsg(db));
    return CS_OK;
}

/* Steps a write statement to its end; CS_ENOSPC or CS_EDB naming what on failure. */
static cs_rc finish(cs_store *s, sqlite3_stmt *st, const char *what, cs_err *err)
{
    int rv = sqlite3_step(st);
    if (rv != SQLITE_DONE)
        return cs_err_set(err, rv == SQLITE_FULL ? CS_ENOSPC : CS_EDB, rv, "%s: %s", what,
                          sqlite3_errmsg(cs_store_db(s)));
    return CS_OK;
}

cs_rc cs_store_release(cs_store *s, int64_t job_id, int attempt, const char *worker,
                       const char *token, int64_t now, bool *released, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc;
    if (released != NULL)
        *released = false;
    rc = cs_store_lease_check(s, job_id, attempt, worker, token, "release", err);
    if (rc == CS_ENOENT)
        return CS_OK; /* no such attempt: nothing to hand back */
    if (rc != CS_OK)
        return rc;
    rc = prepare(s,
                 "UPDATE job_row SET lease_until = ?3 WHERE id = ?1 AND attempt = ?2"
                 " AND state = 'running' AND lease_until > ?3",
                 &st, "release job", err);
    if (rc == CS_OK) {
        sqlite3_bind_int64(st, 1, job_id);
        sqlite3_bind_int64(st, 2, attempt);
        sqlite3_bind_int64(st, 3, now);
        rc = finish(s, st, "release job", err);
    }
    if (rc == CS_OK && released != NULL)
        *released = sqlite3_changes(cs_store_db(s)) > 0;
    sqlite3_finalize(st);
    return rc;
}

cs_rc cs_store_worker_bye(cs_store *s, const char *worker, const char *instance, int64_t now,
                          bool *marked, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc;
    if (marked != NULL)
        *marked = false;
    rc = prepare(s,
                 "UPDATE worker SET bye_at = ?3, last_seen = max(last_seen, ?3) WHERE id = ?1"
                 " AND (instance IS NULL OR ?2 IS NULL OR instance = ?2)",
                 &st, "record bye", err);
    if (rc == CS_OK) {
        sqlite3_bind_text(st, 1, worker, -1, SQLITE_STATIC);
        if (instance != NULL)
            sqlite3_bind_text(st, 2, instance, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
        rc = finish(s, st, "record bye", err);
    }
    if (rc == CS_OK && marked != NULL)
        *marked = sqlite3_changes(cs_store_db(s)) > 0;
    sqlite3_finalize(st);
    return rc;
}

cs_rc cs_store_worker_prune(cs_store *s, int64_t now, int64_t idle_ms, size_t *n, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc;
    if (n != NULL)
        *n = 0;
    rc = prepare(s,
                 "DELETE FROM worker WHERE last_seen < ?1 AND NOT EXISTS (SELECT 1 FROM job_row j"
                 " WHERE j.worker = worker.id AND j.state = 'running')",
                 &st, "prune workers", err);
    if (rc == CS_OK) {
        sqlite3_bind_int64(st, 1, now - idle_ms);
        rc = finish(s, st, "prune workers", err);
    }
    if (rc == CS_OK && n != NULL)
        *n = (size_t)sqlite3_changes(cs_store_db(s));
    sqlite3_finalize(st);
    return rc;
}
