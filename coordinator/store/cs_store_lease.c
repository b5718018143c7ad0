/* cs_store_lease.c - the worker protocol's side of the store: claim, lease check, heartbeat,
 * result, fail, release, the reaper and the worker rows (see cs_store.h).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_proto.h"
#include "cs_store_int.h"

_Static_assert(CS_STORE_TOKEN_LEN == CS_PROTO_TOKEN_LEN, "lease tokens travel in JOB.lease_token");

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
    st_copy_text(out->key, sizeof(out->key), sqlite3_column_text(st, 4));
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
        rc = st_rebuild(s, ids, NULL, &out->config, err);
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
    rc = st_stmt(s, S_CLAIM_HELD, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    st_bind_text(st, 1, caps->worker);
    sqlite3_bind_int64(st, 2, now);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *inst = (const char *)sqlite3_column_text(st, 1);
        const char *tok = (const char *)sqlite3_column_text(st, 2);
        if (cs_proto_token_eq(inst, caps->instance) && cs_proto_token_ok(tok)) {
            id = sqlite3_column_int64(st, 0);
            st_copy_text(token, sizeof(token), (const unsigned char *)tok);
            break;
        }
    }
    if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = st_err(s->db, src, "look up held lease", err);
    }
    st_rel(st);
    if (rc != CS_OK || id == 0) {
        return rc;
    }
    rc = st_stmt(s, S_CLAIM_RENEW, &st, err);
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
        rc = st_err(s->db, src, "renew held lease", err);
    }
    st_rel(st);
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
    st_op op;
    cs_store_claim c = {0};
    sqlite3_stmt *st = NULL;
    char *ids = NULL;
    bool found = false;
    int src;
    cs_rc rc;

    rc = st_enter(&op, s, ST_WORKER,
                  !caps || !caps->worker || !*caps->worker || lease_ms <= 0
                          ? "claim: a worker id and a lease are needed"
                  : caps->instance && !cs_proto_token_ok(caps->instance)
                          ? "claim: malformed instance"
                          : NULL,
                  err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = claim_held(s, caps, now + lease_ms, now, &c, &found, err);
    if (rc != CS_OK || found) {
        goto timeout;
    }
    rc = st_stmt(s, S_CLAIM, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    st_bind_text(st, 1, caps->worker);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, now + lease_ms);
    st_bind_text(st, 4, caps->models);
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
        rc = st_err(s->db, src, "claim", err);
    }
    st_rel(st);
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
    rc = st_stmt(s, S_ATTEMPT_INSERT, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, c.job_id);
    sqlite3_bind_int(st, 2, c.attempt);
    st_bind_text(st, 3, caps->worker);
    st_bind_text(st, 4, caps->host);
    sqlite3_bind_int64(st, 5, now);
    st_bind_text(st, 6, c.lease_token);
    st_bind_text(st, 7, caps->instance);
    rc = st_run(s, st, "record attempt", err);
timeout:
    if (rc == CS_OK) {
        rc = st_stmt(s, S_SWEEP_TIMEOUT, &st, err);
        if (rc == CS_OK) {
            sqlite3_bind_int64(st, 1, c.sweep_id);
            src = sqlite3_step(st);
            if (src == SQLITE_ROW) {
                c.timeout_ms = sqlite3_column_int64(st, 0);
            } else {
                rc = st_err(s->db, src, "read timeout", err);
            }
            st_rel(st);
        }
    }
out:
    free(ids);
    rc = st_leave(&op, rc, err);
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
    cs_rc rc = st_stmt(s, S_JOB_BRIEF, &st, err);
    int src;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, job_id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        b->state = st_job_state_of((const char *)sqlite3_column_text(st, 0));
        b->attempt = sqlite3_column_int(st, 1);
        st_copy_text(b->key, sizeof(b->key), sqlite3_column_text(st, 2));
        b->sweep_id = sqlite3_column_int64(st, 3);
        b->cancel_requested = sqlite3_column_int(st, 4) != 0;
        b->max_attempts = sqlite3_column_int(st, 5);
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: no job %lld", (long long)job_id);
    } else {
        rc = st_err(s->db, src, "read job", err);
    }
    st_rel(st);
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
    cs_rc rc = st_query(s, S_LEASE_GET, &st, err);
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
        rc = st_err(s->db, src, "read lease", err);
    }
    st_rel(st);
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
    st_op op;
    sqlite3_stmt *st = NULL;
    job_brief b = {0};
    bool found = false, cancel_pending = false;
    int src;
    cs_rc rc = st_enter(&op, s, ST_WORKER, NULL, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = lease_holder(s, job_id, attempt, worker, token, "heartbeat", err);
    if (rc != CS_OK) {
        goto out;
    }
    rc = st_stmt(s, S_HEARTBEAT, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, attempt);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now + (lease_ms > 0 ? lease_ms : 0));
    st_bind_text(st, 5, progress);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        found = true;
        cancel_pending = sqlite3_column_int(st, 0) != 0;
    } else if (src != SQLITE_DONE) {
        rc = st_err(s->db, src, "heartbeat", err);
    }
    st_rel(st);
    if (rc == CS_OK && !found) {
        rc = read_brief(s, job_id, &b, err);
        if (rc == CS_OK) {
            rc = stale(err, "heartbeat", job_id, attempt, &b);
        }
    }
out:
    rc = st_leave(&op, rc, err);
    if (rc == CS_OK && cancel) {
        *cancel = cancel_pending;
    }
    return rc;
}

static cs_rc end_attempt(cs_store *s, int64_t job_id, int attempt, const cs_store_exit *ex,
                         const char *outcome, const char *error, int64_t now, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_stmt(s, S_ATTEMPT_END, &st, err);
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
    st_bind_text(st, 6, ex ? ex->log_path : NULL);
    st_bind_text(st, 7, outcome);
    st_bind_text(st, 8, error);
    return st_run(s, st, "end attempt", err);
}

static cs_rc find_result(cs_store *s, int64_t job_id, int attempt, int64_t *id, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_stmt(s, S_RESULT_FIND, &st, err);
    bool found;
    *id = 0;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, attempt);
    return st_step_int64(s, st, id, &found, "find result", err);
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
        rc = st_stmt(s, S_METRIC_INSERT, &st, err);
        if (rc != CS_OK) {
            break;
        }
        sqlite3_bind_int64(st, 1, result_id);
        sqlite3_bind_int64(st, 2, job_id);
        st_bind_text(st, 3, m[i].task);
        st_bind_text(st, 4, m[i].metric);
        if (isfinite(m[i].value)) {
            sqlite3_bind_double(st, 5, m[i].value);
        }
        if (isfinite(m[i].stderr_)) {
            sqlite3_bind_double(st, 6, m[i].stderr_);
        }
        if (m[i].n >= 0) {
            sqlite3_bind_int64(st, 7, m[i].n);
        }
        rc = st_run(s, st, "insert metric", err);
        if (rc == CS_EEXIST) {
            rc = cs_err_set(err, CS_EINVAL, 0, "store: result: metric %s/%s given twice", m[i].task,
                            m[i].metric);
        }
    }
    return rc;
}

static cs_rc insert_outcomes(cs_store *s, int64_t result_id, int64_t job_id,
                             const cs_store_outcome *o, size_t n, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        rc = st_stmt(s, st_outcome_real(o[i].metric) ? S_VALUE_INSERT : S_OUTCOME_INSERT, &st, err);
        if (rc != CS_OK) {
            break;
        }
        sqlite3_bind_int64(st, 1, result_id);
        sqlite3_bind_int64(st, 2, job_id);
        st_bind_text(st, 3, o[i].task);
        st_bind_text(st, 4, o[i].metric);
        st_bind_text(st, 5, o[i].sample);
        sqlite3_bind_int64(st, 6, o[i].n);
        sqlite3_bind_blob(st, 7, o[i].bytes > 0 ? o[i].data : "", (int)o[i].bytes, SQLITE_STATIC);
        rc = st_run(s, st, "insert item outcome", err);
        if (rc == CS_EEXIST) {
            rc = cs_err_set(err, CS_EINVAL, 0, "store: result: item outcome %s/%s given twice",
                            o[i].task, o[i].metric);
        }
    }
    return rc;
}

/* A (task, metric) name pair of a metric or an item outcome, for the uniqueness check. */
typedef struct name_pair {
    const char *task, *metric;
} name_pair;

static int pair_cmp(const void *a, const void *b)
{
    const name_pair *x = a, *y = b;
    int c = strcmp(x->task, y->task);
    return c != 0 ? c : strcmp(x->metric, y->metric);
}

/* Each (task, metric) of p[0..n) appears once; what names them in the message ("metric", "item
 * outcome"). O(n log n): the pairs are sorted, not compared pairwise (a RESULT, forged or not,
 * may carry 150,000 of them). p is reordered. */
static cs_rc check_unique_pairs(name_pair *p, size_t n, const char *what, cs_err *err)
{
    qsort(p, n, sizeof(*p), pair_cmp);
    for (size_t i = 1; i < n; i++) {
        if (pair_cmp(&p[i - 1], &p[i]) == 0) {
            return cs_err_set(err, CS_EINVAL, 0, "store: result: %s %s/%s given twice", what,
                              p[i].task, p[i].metric);
        }
    }
    return CS_OK;
}

/* The metrics' names are set and each (task, metric) appears once: checked before anything is
 * written (st_enter). */
static cs_rc check_metrics(const cs_store_metric *m, size_t n, cs_err *err)
{
    name_pair *p = NULL;
    cs_rc rc;
    for (size_t i = 0; i < n; i++) {
        if (!m[i].task || !m[i].metric) {
            return cs_err_set(err, CS_EINVAL, 0, "store: result: metric %zu has no task or name",
                              i);
        }
    }
    if (n < 2) {
        return CS_OK;
    }
    p = cs_alloc_array(n, sizeof(*p));
    if (!p) {
        return cs_err_set(err, CS_ENOMEM, 0, "store: result: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        p[i] = (name_pair){m[i].task, m[i].metric};
    }
    rc = check_unique_pairs(p, n, "metric", err);
    free(p);
    return rc;
}

/* Every outcome is complete and each (task, metric) appears once: checked before anything is
 * written, like check_metrics (a worker operation must not fail after it wrote). */
static cs_rc check_outcomes(const cs_store_outcome *o, size_t n, cs_err *err)
{
    name_pair *p = NULL;
    cs_rc rc;
    if (n > 0 && !o) {
        return cs_err_set(err, CS_EINVAL, 0, "store: result: item outcomes missing");
    }
    for (size_t i = 0; i < n; i++) {
        if (!o[i].task || !o[i].metric || !o[i].sample || (o[i].bytes > 0 && !o[i].data) ||
            o[i].n < 0 || o[i].bytes > INT32_MAX) {
            return cs_err_set(err, CS_EINVAL, 0, "store: result: item outcome %zu is incomplete",
                              i);
        }
    }
    if (n < 2) {
        return CS_OK;
    }
    p = cs_alloc_array(n, sizeof(*p));
    if (!p) {
        return cs_err_set(err, CS_ENOMEM, 0, "store: result: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        p[i] = (name_pair){o[i].task, o[i].metric};
    }
    rc = check_unique_pairs(p, n, "item outcome", err);
    free(p);
    return rc;
}

cs_rc cs_store_result(cs_store *s, int64_t job_id, int attempt, const char *worker,
                      const char *token, const char *json, const cs_store_metric *metrics,
                      size_t n_metrics, const cs_store_exit *ex, int64_t now, bool *duplicate,
                      cs_err *err)
{
    return cs_store_result_items(s, job_id, attempt, worker, token, json, metrics, n_metrics, NULL,
                                 0, ex, now, duplicate, err);
}

cs_rc cs_store_result_items(cs_store *s, int64_t job_id, int attempt, const char *worker,
                            const char *token, const char *json, const cs_store_metric *metrics,
                            size_t n_metrics, const cs_store_outcome *outcomes, size_t n_outcomes,
                            const cs_store_exit *ex, int64_t now, bool *duplicate, cs_err *err)
{
    st_op op;
    sqlite3_stmt *st = NULL;
    job_brief b = {0};
    int64_t result_id = 0;
    bool dup = false;
    cs_rc rc;

    if (!json || !*json) {
        return cs_err_set(err, CS_EINVAL, 0, "store: result of job %lld: empty document",
                          (long long)job_id);
    }
    rc = n_metrics > 0 && !metrics ? CS_OK : check_metrics(metrics, n_metrics, err);
    if (rc == CS_OK) {
        rc = check_outcomes(outcomes, n_outcomes, err);
    }
    if (rc != CS_OK) {
        return rc;
    }
    rc = st_enter(&op, s, ST_WORKER, n_metrics > 0 && !metrics ? "result: metrics missing" : NULL,
                  err);
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
    rc = st_stmt(s, S_RESULT_INSERT, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int(st, 2, attempt);
    st_bind_text(st, 3, json);
    sqlite3_bind_int64(st, 4, now);
    rc = st_run(s, st, "insert result", err);
    if (rc != CS_OK) {
        goto out;
    }
    result_id = sqlite3_last_insert_rowid(s->db);
    rc = insert_metrics(s, result_id, job_id, metrics, n_metrics, err);
    if (rc == CS_OK) {
        rc = insert_outcomes(s, result_id, job_id, outcomes, n_outcomes, err);
    }
    if (rc != CS_OK) {
        goto out;
    }
    st_job_transition(b.state, CS_JOB_DONE);
    rc = st_stmt(s, S_JOB_DONE, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, job_id);
    sqlite3_bind_int64(st, 2, now);
    st_bind_text(st, 3, b.state == CS_JOB_RUNNING ? "result" : "late result");
    sqlite3_bind_int64(st, 4, result_id);
    rc = st_run(s, st, "mark done", err);
    if (rc == CS_OK) {
        rc = end_attempt(s, job_id, attempt, ex, "done", NULL, now, err);
    }
    if (rc == CS_OK) {
        rc = st_stmt(s, S_CACHE_PUT, &st, err);
    }
    if (rc == CS_OK) {
        st_bind_text(st, 1, b.key);
        sqlite3_bind_int64(st, 2, result_id);
        sqlite3_bind_int64(st, 3, now);
        rc = st_run(s, st, "cache result", err);
    }
    if (rc == CS_OK) {
        rc = st_settle_one(s, b.sweep_id, now, err);
    }
out:
    rc = st_leave(&op, rc, err);
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
    st_op op;
    sqlite3_stmt *st = NULL;
    job_brief b = {0};
    cs_job_state to = CS_JOB_FAILED;
    int64_t base = 0, max = 0, not_before = 0;
    bool stop = false, repeated = false;
    const char *why = reason && *reason ? reason : "failed";
    int src;
    cs_rc rc = st_enter(&op, s, ST_WORKER, NULL, err);
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
            rc = st_stmt(s, S_ATTEMPT_OUTCOME, &st, err);
            if (rc != CS_OK) {
                goto out;
            }
            sqlite3_bind_int64(st, 1, job_id);
            sqlite3_bind_int(st, 2, attempt);
            src = sqlite3_step(st);
            repeated = src == SQLITE_ROW && sqlite3_column_text(st, 0) &&
                       strcmp((const char *)sqlite3_column_text(st, 0), "failed") == 0;
            st_rel(st);
        }
        to = b.state;
        if (!repeated) {
            rc = stale(err, "failure", job_id, attempt, &b);
        }
        goto out;
    }
    rc = st_stmt(s, S_SWEEP_POLICY, &st, err);
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
        rc = st_err(s->db, src, "read sweep policy", err);
    }
    st_rel(st);
    if (rc != CS_OK) {
        goto out;
    }
    if (b.cancel_requested) {
        to = CS_JOB_CANCELLED;
    } else if (attempt < b.max_attempts && !(ex && ex->permanent)) {
        to = CS_JOB_RETRY_WAIT;
        not_before = now + backoff_ms(base, max, attempt);
    }
    st_job_transition(b.state, to);
    rc = st_stmt(s, S_JOB_FAIL, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, job_id);
    st_bind_text(st, 2, cs_job_state_name(to));
    sqlite3_bind_int64(st, 3, now);
    st_bind_text(st, 4, why);
    if (to == CS_JOB_RETRY_WAIT) {
        sqlite3_bind_int64(st, 5, not_before);
    }
    rc = st_run(s, st, "record failure", err);
    if (rc == CS_OK) {
        rc = end_attempt(s, job_id, attempt, ex, to == CS_JOB_CANCELLED ? "cancelled" : "failed",
                         why, now, err);
    }
    if (rc == CS_OK && to == CS_JOB_FAILED && stop) {
        rc = st_sweep_set_state(s, b.sweep_id, "active", "paused", "on_failure=stop: a job failed",
                                now, NULL, err);
    }
    if (rc == CS_OK && to != CS_JOB_RETRY_WAIT) {
        rc = st_settle_one(s, b.sweep_id, now, err);
    }
out:
    rc = st_leave(&op, rc, err);
    if (rc == CS_OK && next_state) {
        *next_state = to;
    }
    return rc;
}

/* ---- reaper, workers ---------------------------------------------------------------------------
 */

cs_rc cs_store_reap(cs_store *s, int64_t now, cs_store_reap_counts *counts, cs_err *err)
{
    st_op op;
    cs_store_reap_counts c = {0};
    sqlite3_stmt *st = NULL;
    int src;
    cs_rc rc = st_enter(&op, s, ST_WRITE, NULL, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = st_stmt(s, S_REAP_ATTEMPTS, &st, err);
    if (rc == CS_OK) {
        sqlite3_bind_int64(st, 1, now);
        rc = st_run(s, st, "reap attempts", err);
    }
    if (rc == CS_OK) {
        rc = st_stmt(s, S_REAP_LEASES, &st, err);
    }
    if (rc == CS_OK) {
        sqlite3_bind_int64(st, 1, now);
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            cs_job_state to = st_job_state_of((const char *)sqlite3_column_text(st, 0));
            st_job_transition(CS_JOB_RUNNING, to);
            if (to == CS_JOB_QUEUED) {
                c.requeued++;
            } else if (to == CS_JOB_LOST) {
                c.lost++;
            } else {
                c.cancelled++;
            }
        }
        if (src != SQLITE_DONE) {
            rc = st_err(s->db, src, "reap leases", err);
        }
        st_rel(st);
    }
    if (rc == CS_OK) {
        rc = st_stmt(s, S_REAP_RETRY, &st, err);
    }
    if (rc == CS_OK) {
        sqlite3_bind_int64(st, 1, now);
        rc = st_run(s, st, "requeue retries", err);
        c.retried = rc == CS_OK ? (size_t)sqlite3_changes(s->db) : 0;
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

/* A worker operation of one statement id: binds the texts t[0..n_text) to ?1.., then time, runs
 * it; *changed (may be NULL) = the rows it changed. bad: as st_enter. */
static cs_rc worker_write(cs_store *s, int id, const char *bad, const char *const *t, int n_text,
                          int64_t time, size_t *changed, const char *what, cs_err *err)
{
    st_op op;
    sqlite3_stmt *st = NULL;
    cs_rc rc;
    if (changed) {
        *changed = 0;
    }
    rc = st_enter(&op, s, ST_WORKER, bad, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = st_stmt(s, id, &st, err);
    if (rc == CS_OK) {
        for (int i = 0; i < n_text; i++) {
            st_bind_text(st, i + 1, t[i]);
        }
        sqlite3_bind_int64(st, n_text + 1, time);
        rc = st_run(s, st, what, err);
    }
    if (rc == CS_OK && changed) {
        *changed = (size_t)sqlite3_changes(s->db);
    }
    return st_leave(&op, rc, err);
}

cs_rc cs_store_worker_seen(cs_store *s, const char *worker, const char *host,
                           const char *capabilities, int64_t now, cs_err *err)
{
    const char *t[3] = {worker, host, capabilities};
    return worker_write(s, S_WORKER_SEEN, !worker || !*worker ? "worker id missing" : NULL, t, 3,
                        now, NULL, "record worker", err);
}

cs_rc cs_store_worker_touch(cs_store *s, const char *worker, const char *instance, int64_t now,
                            cs_err *err)
{
    const char *t[2] = {worker, instance};
    return worker_write(s, S_WORKER_TOUCH, !worker || !*worker ? "worker id missing" : NULL, t, 2,
                        now, NULL, "record worker", err);
}

cs_rc cs_store_release(cs_store *s, int64_t job_id, int attempt, const char *worker,
                       const char *token, int64_t now, bool *released, cs_err *err)
{
    st_op op;
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
    rc = st_enter(&op, s, ST_WORKER, NULL, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = st_stmt(s, S_RELEASE_ATTEMPT, &st, err);
    if (rc == CS_OK) {
        sqlite3_bind_int64(st, 1, job_id);
        sqlite3_bind_int(st, 2, attempt);
        sqlite3_bind_int64(st, 3, now);
        rc = st_run(s, st, "release attempt", err);
    }
    if (rc == CS_OK) {
        rc = st_stmt(s, S_RELEASE_LEASE, &st, err);
    }
    if (rc == CS_OK) {
        int src;
        sqlite3_bind_int64(st, 1, job_id);
        sqlite3_bind_int(st, 2, attempt);
        sqlite3_bind_int64(st, 3, now);
        while ((src = sqlite3_step(st)) == SQLITE_ROW) {
            st_job_transition(CS_JOB_RUNNING,
                              st_job_state_of((const char *)sqlite3_column_text(st, 0)));
            if (released) {
                *released = true;
            }
        }
        if (src != SQLITE_DONE) {
            rc = st_err(s->db, src, "release job", err);
        }
        st_rel(st);
    }
    if (rc == CS_OK) {
        rc = st_settle_all(s, now, err);
    }
    return st_leave(&op, rc, err);
}

cs_rc cs_store_worker_bye(cs_store *s, const char *worker, const char *instance, int64_t now,
                          bool *marked, cs_err *err)
{
    const char *t[2] = {worker, instance};
    size_t n = 0;
    cs_rc rc = worker_write(s, S_WORKER_BYE, NULL, t, 2, now, &n, "record bye", err);
    if (marked) {
        *marked = rc == CS_OK && n > 0;
    }
    return rc;
}

cs_rc cs_store_worker_prune(cs_store *s, int64_t now, int64_t idle_ms, size_t *n, cs_err *err)
{
    return worker_write(s, S_WORKER_PRUNE, NULL, NULL, 0, now - idle_ms, n, "prune workers", err);
}
