/* cs_store_extra.c - store operations the daemon needs beyond cs_store.h (see cs_store_extra.h). */
#include "cs_store_extra.h"

#include <sqlite3.h>

cs_rc cs_store_release(cs_store *s, int64_t job_id, int attempt, int64_t now, bool *released,
                       cs_err *err)
{
    sqlite3 *db = cs_store_db(s);
    sqlite3_stmt *st = NULL;
    cs_rc rc = CS_OK;
    if (released != NULL)
        *released = false;
    int rv = sqlite3_prepare_v2(db,
                                "UPDATE job_row SET lease_until = ?3 WHERE id = ?1 AND attempt = ?2"
                                " AND state = 'running' AND lease_until > ?3",
                                -1, &st, NULL);
    if (rv != SQLITE_OK) {
        rc = cs_err_set(err, CS_EDB, rv, "release job %lld: %s", (long long)job_id,
                        sqlite3_errmsg(db));
        goto cleanup;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_int64(st, 3, now);
    rv = sqlite3_step(st);
    if (rv != SQLITE_DONE) {
        rc = cs_err_set(err, rv == SQLITE_FULL ? CS_ENOSPC : CS_EDB, rv, "release job %lld: %s",
                        (long long)job_id, sqlite3_errmsg(db));
        goto cleanup;
    }
    if (released != NULL)
        *released = sqlite3_changes(db) > 0;
cleanup:
    sqlite3_finalize(st);
    return rc;
}
