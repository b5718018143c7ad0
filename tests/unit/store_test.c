/* store_test.c - the SQLite job store: migrations, submit, claim, leases, fencing, retries,
 * control operations, cache reuse, scheduling order and group commit. Each test works on its
 * own database file in a fresh temporary directory, and drives the clock through `now`. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_store.h"
#include "cs_store_testing.h"
#include "cs_test.h"
#include "store_synth.h"

#define T0     1700000000000LL /* a fixed "now" in ms */
#define LEASE  60000LL
#define WORKER "w1"

typedef struct fixture {
    char dir[64];
    char path[96];
    cs_store *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    cs_err err = {0};
    if (!f) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/cs_store_test.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/db.sqlite", f->dir);
    if (cs_store_open(f->path, &f->s, &err) != CS_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static void remove_db(const char *path)
{
    char p[256];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static int teardown(void **state)
{
    fixture *f = *state;
    cs_store_close(f->s);
    remove_db(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Runs a query returning one integer. */
static int64_t q_int(cs_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(cs_store_test_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(cs_store_test_db(s)));
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

static int64_t submit_n(cs_store *s, const char *name, size_t first, size_t n, cs_policy *pol,
                        bool force, cs_store_submit_counts *c)
{
    cs_synth g;
    cs_sweep_meta m = cs_synth_meta(name);
    cs_store_submit_counts local;
    cs_err err = {0};
    cs_synth_init(&g, first, n);
    if (pol) {
        m.policy = *pol;
    }
    if (!c) {
        c = &local;
    }
    if (cs_store_submit(s, &m, cs_synth_next, &g, force, T0, c, &err) != CS_OK) {
        fail_msg("submit %s: %s", name, err.msg);
    }
    return c->sweep_id;
}

/* Every test worker runs as one process (instance); claims differ by the worker name. */
#define INSTANCE "00112233445566778899aabbccddeeff"

static cs_store_caps caps_of(const char *worker)
{
    cs_store_caps c = {
            .worker = worker, .instance = INSTANCE, .host = "host-a", .native = true, .mem_mb = -1};
    return c;
}

static cs_store_claim claim_ok(cs_store *s, const char *worker, int64_t now)
{
    cs_store_caps caps = caps_of(worker);
    cs_store_claim c = {0};
    cs_err err = {0};
    cs_rc rc = cs_store_claim_job(s, &caps, LEASE, now, &c, &err);
    if (rc != CS_OK) {
        fail_msg("claim by %s: %s (%s)", worker, cs_rc_name(rc), err.msg);
    }
    return c;
}

static cs_rc claim_rc(cs_store *s, const char *worker, int64_t now, cs_store_claim *c)
{
    cs_store_caps caps = caps_of(worker);
    cs_err err = {0};
    return cs_store_claim_job(s, &caps, LEASE, now, c, &err);
}

static void job_state_is(cs_store *s, int64_t id, cs_job_state want)
{
    cs_store_job j;
    cs_err err = {0};
    assert_int_equal(cs_store_job_get(s, id, &j, &err), CS_OK);
    if (j.state != want) {
        fail_msg("job %lld is %s, want %s", (long long)id, cs_job_state_name(j.state),
                 cs_job_state_name(want));
    }
    cs_store_job_fini(&j);
}

/* The RESULT of claim c by its holder worker. */
static void complete(cs_store *s, const char *worker, const cs_store_claim *c, int64_t now)
{
    cs_store_metric m[2] = {{"arith", "acc", 0.5, 0.01, 200},
                            {"ppl:general", "ppl", 12.5, NAN, -1}};
    cs_err err = {0};
    bool dup = true;
    assert_int_equal(cs_store_result(s, c->job_id, c->attempt, worker, c->lease_token,
                                     "{\"ok\":true}", m, 2, NULL, now, &dup, &err),
                     CS_OK);
    assert_false(dup);
}

/* ---- migrations ------------------------------------------------------------------------------ */

static void test_migrate_and_reopen(void **state)
{
    fixture *f = *state;
    cs_store *ro = NULL;
    cs_err err = {0};
    bool dummy = false;
    assert_true(cs_store_schema_version() >= 1);
    assert_int_equal(q_int(f->s, "PRAGMA user_version"), cs_store_schema_version());
    assert_int_equal(q_int(f->s, "PRAGMA foreign_keys"), 1);
    assert_int_equal(q_int(f->s, "PRAGMA synchronous"), 2); /* FULL */
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sqlite_master WHERE name IN ('sweep', "
                                 "'job', 'attempt', 'result', 'metric', 'job_event', 'worker', "
                                 "'result_cache')"),
                     8);
    /* Reopening an up-to-date database applies nothing and keeps the data. */
    submit_n(f->s, "a", 0, 5, NULL, false, NULL);
    cs_store_close(f->s);
    f->s = NULL;
    assert_int_equal(cs_store_open(f->path, &f->s, &err), CS_OK);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job"), 5);
    /* Read-only: reads work, writes are refused. */
    assert_int_equal(cs_store_open_ro(f->path, &ro, &err), CS_OK);
    assert_int_equal(q_int(ro, "SELECT count(*) FROM job"), 5);
    assert_int_equal(cs_store_pause(ro, 1, T0, &err), CS_ENOTSUP);
    assert_int_equal(cs_store_key_cached(ro, "00", &dummy, &err), CS_OK);
    assert_false(dummy);
    cs_store_close(ro);
    assert_int_equal(cs_store_open_ro("/nonexistent/db.sqlite", &ro, &err), CS_ENOENT);
    assert_null(ro);
}

static void test_refuse_newer_db(void **state)
{
    fixture *f = *state;
    cs_store *s2 = NULL;
    cs_err err = {0};
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", cs_store_schema_version() + 1);
    assert_int_equal(sqlite3_exec(cs_store_test_db(f->s), sql, NULL, NULL, NULL), SQLITE_OK);
    cs_store_close(f->s);
    f->s = NULL;
    assert_int_equal(cs_store_open(f->path, &s2, &err), CS_EVERSION);
    assert_null(s2);
    assert_non_null(strstr(err.msg, "newer"));
    assert_non_null(strstr(err.msg, f->path));
    assert_int_equal(cs_store_open_ro(f->path, &s2, &err), CS_EVERSION);
    /* The file was not touched: still the newer version. */
    {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), cs_store_schema_version() + 1);
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
    /* Setting it back makes it usable again. */
    {
        sqlite3 *db = NULL;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", cs_store_schema_version());
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }
    assert_int_equal(cs_store_open(f->path, &f->s, &err), CS_OK);
}

static void test_ro_refuses_unmigrated(void **state)
{
    fixture *f = *state;
    cs_store *ro = NULL;
    cs_err err = {0};
    char path[128];
    sqlite3 *db = NULL;
    snprintf(path, sizeof(path), "%s/empty.sqlite", f->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE x(a)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(cs_store_open_ro(path, &ro, &err), CS_EVERSION);
    assert_non_null(strstr(err.msg, "not a calsweep database"));
    remove_db(path);
}

/* ---- submit ---------------------------------------------------------------------------------- */

static void test_submit_counts(void **state)
{
    fixture *f = *state;
    cs_store_submit_counts c;
    cs_store_sweep_info info;
    cs_sweep_meta m = cs_synth_meta("dups");
    cs_synth g;
    cs_err err = {0};
    int64_t id = submit_n(f->s, "s1", 0, 100, NULL, false, &c);
    int64_t found = 0;

    assert_int_equal(c.cells, 100);
    assert_int_equal(c.inserted, 100);
    assert_int_equal(c.queued, 100);
    assert_int_equal(c.cached, 0);
    assert_int_equal(c.baselines, 2); /* indices 0 and 97 */
    assert_int_equal(cs_store_sweep_get(f->s, id, &info, &err), CS_OK);
    assert_string_equal(info.name, "s1");
    assert_int_equal(info.state, CS_SWEEP_ACTIVE);
    assert_int_equal(info.counts.n[CS_JOB_QUEUED], 100);
    assert_int_equal(info.policy.max_attempts, 3);
    assert_true(info.policy.backoff_base_s == 30.0);
    assert_int_equal(cs_store_sweep_find(f->s, "s1", &found, &err), CS_OK);
    assert_int_equal(found, id);
    assert_int_equal(cs_store_sweep_find(f->s, "nope", &found, &err), CS_ENOENT);
    /* Requirements were read out of the config. */
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE req_model = 'models/testbed' "
                                 "AND req_backend = 'native'"),
                     100);

    /* The same name again is refused, and nothing is added. */
    cs_synth_init(&g, 0, 10);
    m.name = "s1";
    assert_int_equal(cs_store_submit(f->s, &m, cs_synth_next, &g, false, T0, &c, &err), CS_EEXIST);
    assert_non_null(strstr(err.msg, "extend"));
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job"), 100);

    /* Duplicate keys inside one stream: stored once, counted as existing. */
    cs_synth_init(&g, 1000, 30);
    g.dup_every = 10;
    m.name = "dups";
    assert_int_equal(cs_store_submit(f->s, &m, cs_synth_next, &g, false, T0, &c, &err), CS_OK);
    assert_int_equal(c.cells, 30);
    assert_int_equal(c.existing, 2);
    assert_int_equal(c.inserted, 28);
}

static void test_submit_is_atomic(void **state)
{
    fixture *f = *state;
    cs_store_submit_counts c;
    cs_sweep_meta m = cs_synth_meta("broken");
    cs_synth g;
    cs_err err = {0};

    cs_synth_init(&g, 0, 500);
    g.fail_at = 400;
    assert_int_equal(cs_store_submit(f->s, &m, cs_synth_next, &g, false, T0, &c, &err), CS_EIO);
    assert_non_null(strstr(err.msg, "cell 400"));
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sweep"), 0);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job"), 0);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job_event"), 0);
    /* The name is free afterwards. */
    submit_n(f->s, "broken", 0, 10, NULL, false, NULL);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job"), 10);
}

/* ---- claim, fencing, heartbeats ----------------------------------------------------------------
 */

static void test_claim_and_fencing(void **state)
{
    fixture *f = *state;
    cs_store_claim c, c2 = {0};
    cs_err err = {0};
    bool cancel = true, dup = false;
    cs_job_state next;

    submit_n(f->s, "s", 0, 3, NULL, false, NULL);
    c = claim_ok(f->s, WORKER, T0);
    assert_int_equal(c.attempt, 1);
    assert_int_equal(c.lease_until, T0 + LEASE);
    assert_false(c.again);
    assert_non_null(strstr(c.config, "\"seed\":0"));
    assert_int_equal(strlen(c.key), 64);
    job_state_is(f->s, c.job_id, CS_JOB_RUNNING);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM attempt WHERE n = 1 AND worker = 'w1' "
                                 "AND host = 'host-a' AND started = 1700000000000"),
                     1);

    assert_int_equal(cs_store_heartbeat(f->s, c.job_id, 1, WORKER, c.lease_token, LEASE,
                                        "{\"stage\":\"quantize\"}", T0 + 5000, &cancel, &err),
                     CS_OK);
    assert_false(cancel);
    assert_int_equal(q_int(f->s, "SELECT lease_until FROM job WHERE state = 'running'"),
                     T0 + 5000 + LEASE);
    /* Wrong attempts are stale, an unknown job is not found. */
    assert_int_equal(cs_store_heartbeat(f->s, c.job_id, 2, WORKER, c.lease_token, LEASE, NULL, T0,
                                        &cancel, &err),
                     CS_ESTALE);
    assert_non_null(strstr(err.msg, "running at attempt 1"));
    assert_int_equal(cs_store_heartbeat(f->s, c.job_id, 0, WORKER, c.lease_token, LEASE, NULL, T0,
                                        &cancel, &err),
                     CS_ESTALE);
    assert_int_equal(
            cs_store_heartbeat(f->s, 999, 1, WORKER, c.lease_token, LEASE, NULL, T0, &cancel, &err),
            CS_ENOENT);
    assert_int_equal(cs_store_result(f->s, c.job_id, 2, WORKER, c.lease_token, "{}", NULL, 0, NULL,
                                     T0, &dup, &err),
                     CS_ESTALE);
    assert_int_equal(
            cs_store_fail(f->s, c.job_id, 2, WORKER, c.lease_token, "boom", NULL, T0, &next, &err),
            CS_ESTALE);
    job_state_is(f->s, c.job_id, CS_JOB_RUNNING);

    /* A resent CLAIM from the same worker returns the same job; another worker is handed another.
     */
    c2 = claim_ok(f->s, WORKER, T0 + 10000);
    assert_true(c2.again);
    assert_int_equal(c2.job_id, c.job_id);
    assert_int_equal(c2.attempt, 1);
    assert_int_equal(c2.lease_until, T0 + 10000 + LEASE);
    cs_store_claim_fini(&c2);
    c2 = claim_ok(f->s, "w2", T0);
    assert_int_not_equal(c2.job_id, c.job_id);
    assert_false(c2.again);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM attempt"), 2);
    cs_store_claim_fini(&c2);
    cs_store_claim_fini(&c);
}

static void test_lease_expiry(void **state)
{
    fixture *f = *state;
    cs_store_claim c, c2;
    cs_store_reap_counts rc;
    cs_err err = {0};
    bool cancel;

    submit_n(f->s, "s", 0, 1, NULL, false, NULL);
    c = claim_ok(f->s, WORKER, T0);
    /* Not yet expired at the lease's last millisecond. */
    assert_int_equal(cs_store_reap(f->s, T0 + LEASE, &rc, &err), CS_OK);
    assert_int_equal(rc.requeued, 0);
    job_state_is(f->s, c.job_id, CS_JOB_RUNNING);
    assert_int_equal(cs_store_reap(f->s, T0 + LEASE + 1, &rc, &err), CS_OK);
    assert_int_equal(rc.requeued, 1);
    assert_int_equal(rc.lost, 0);
    job_state_is(f->s, c.job_id, CS_JOB_QUEUED);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM attempt WHERE outcome = 'expired'"), 1);
    /* The old worker is fenced off; the next claim is attempt 2 and its own lease. */
    assert_int_equal(cs_store_heartbeat(f->s, c.job_id, 1, WORKER, c.lease_token, LEASE, NULL,
                                        T0 + LEASE + 2, &cancel, &err),
                     CS_ESTALE);
    c2 = claim_ok(f->s, "w2", T0 + LEASE + 3);
    assert_int_equal(c2.job_id, c.job_id);
    assert_int_equal(c2.attempt, 2);
    assert_int_equal(cs_store_heartbeat(f->s, c.job_id, 1, WORKER, c.lease_token, LEASE, NULL,
                                        T0 + LEASE + 4, &cancel, &err),
                     CS_ESTALE);
    assert_int_equal(cs_store_result(f->s, c.job_id, 1, WORKER, c.lease_token, "{}", NULL, 0, NULL,
                                     T0, NULL, &err),
                     CS_ESTALE);
    /* The event log holds the whole story with the worker of each step. */
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job_event WHERE job_id IS NOT NULL"), 3);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job_event WHERE from_state = 'running' "
                                 "AND to_state = 'queued' AND worker = 'w1' AND attempt = 1 AND "
                                 "why = 'lease expired'"),
                     1);
    cs_store_claim_fini(&c);
    cs_store_claim_fini(&c2);
}

static void test_lost_vs_failed(void **state)
{
    fixture *f = *state;
    cs_policy pol = cs_synth_meta("x").policy;
    cs_store_counts counts;
    cs_store_reap_counts rc;
    cs_err err = {0};
    cs_job_state next;
    int64_t sid, t = T0;

    pol.max_attempts = 2;
    pol.backoff_base_s = 1;
    sid = submit_n(f->s, "s", 0, 2, &pol, false, NULL);
    /* Job A: its worker dies twice -> lost. Job B fails twice -> failed. */
    for (int round = 1; round <= 2; round++) {
        cs_store_claim a = claim_ok(f->s, "wa", t);
        cs_store_claim b = claim_ok(f->s, "wb", t);
        assert_int_equal(a.attempt, round);
        assert_int_equal(b.attempt, round);
        assert_int_equal(cs_store_fail(f->s, b.job_id, b.attempt, "wb", b.lease_token, "exit 1",
                                       NULL, t, &next, &err),
                         CS_OK);
        assert_int_equal(next, round == 1 ? CS_JOB_RETRY_WAIT : CS_JOB_FAILED);
        t += LEASE + 1;
        assert_int_equal(cs_store_reap(f->s, t, &rc, &err), CS_OK);
        assert_int_equal(rc.requeued, round == 1 ? 1 : 0);
        assert_int_equal(rc.lost, round == 1 ? 0 : 1);
        assert_int_equal(rc.retried, round == 1 ? 1 : 0);
        cs_store_claim_fini(&a);
        cs_store_claim_fini(&b);
    }
    assert_int_equal(cs_store_count(f->s, sid, &counts, &err), CS_OK);
    assert_int_equal(counts.n[CS_JOB_LOST], 1);
    assert_int_equal(counts.n[CS_JOB_FAILED], 1);
    assert_int_equal(counts.total, 2);
    assert_int_equal(q_int(f->s, "SELECT state FROM sweep") == -1, 0);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sweep WHERE state = 'done'"), 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE state = 'failed' AND "
                                 "last_error = 'exit 1'"),
                     1);
}

static void test_backoff(void **state)
{
    fixture *f = *state;
    cs_policy pol = cs_synth_meta("x").policy;
    cs_store_exit ex = {.has_status = true, .exit_status = 3, .log_path = "logs/s/1-a1.log"};
    cs_store_reap_counts rc;
    cs_store_job j;
    cs_err err = {0};
    cs_job_state next;
    const int64_t want[4] = {10000, 20000, 25000, 25000}; /* base 10 s, doubling, cap 25 s */
    int64_t t = T0;

    pol.max_attempts = 5;
    pol.backoff_base_s = 10;
    pol.backoff_max_s = 25;
    submit_n(f->s, "s", 0, 1, &pol, false, NULL);
    for (int a = 1; a <= 4; a++) {
        cs_store_claim c = claim_ok(f->s, WORKER, t);
        assert_int_equal(c.attempt, a);
        assert_int_equal(
                cs_store_fail(f->s, c.job_id, a, WORKER, c.lease_token, "oom", &ex, t, &next, &err),
                CS_OK);
        assert_int_equal(next, CS_JOB_RETRY_WAIT);
        /* A resent FAIL is accepted and changes nothing. */
        assert_int_equal(cs_store_fail(f->s, c.job_id, a, WORKER, c.lease_token, "oom", &ex, t + 1,
                                       &next, &err),
                         CS_OK);
        assert_int_equal(next, CS_JOB_RETRY_WAIT);
        assert_int_equal(cs_store_job_get(f->s, c.job_id, &j, &err), CS_OK);
        assert_int_equal(j.not_before - t, want[a - 1]);
        assert_string_equal(j.last_error, "oom");
        cs_store_job_fini(&j);
        /* Nobody receives it before its time. */
        assert_int_equal(cs_store_reap(f->s, t + want[a - 1] - 1, &rc, &err), CS_OK);
        assert_int_equal(rc.retried, 0);
        assert_int_equal(claim_rc(f->s, WORKER, t + want[a - 1] - 1, &c), CS_ENOENT);
        t += want[a - 1];
        assert_int_equal(cs_store_reap(f->s, t, &rc, &err), CS_OK);
        assert_int_equal(rc.retried, 1);
        cs_store_claim_fini(&c);
    }
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM attempt WHERE exit_status = 3 AND "
                                 "outcome = 'failed' AND log_path = 'logs/s/1-a1.log'"),
                     4);
    /* A permanent failure is not retried. */
    {
        cs_store_claim c = claim_ok(f->s, WORKER, t);
        ex.permanent = true;
        assert_int_equal(cs_store_fail(f->s, c.job_id, c.attempt, WORKER, c.lease_token,
                                       "bad_input", &ex, t, &next, &err),
                         CS_OK);
        assert_int_equal(next, CS_JOB_FAILED);
        cs_store_claim_fini(&c);
    }
}

/* ---- results and the cache ---------------------------------------------------------------------
 */

static void test_result_idempotent(void **state)
{
    fixture *f = *state;
    cs_store_metric m[2] = {{"arith", "acc", 0.75, 0.02, 200}, {"facts", "acc", 0.5, NAN, -1}};
    cs_store_claim c, c2;
    cs_store_reap_counts rc;
    cs_store_job j;
    cs_err err = {0};
    bool dup = false;

    submit_n(f->s, "s", 0, 2, NULL, false, NULL);
    c = claim_ok(f->s, WORKER, T0);
    assert_int_equal(cs_store_result(f->s, c.job_id, c.attempt, WORKER, c.lease_token, "{\"r\":1}",
                                     m, 2, NULL, T0 + 1, &dup, &err),
                     CS_OK);
    assert_false(dup);
    assert_int_equal(cs_store_result(f->s, c.job_id, c.attempt, WORKER, c.lease_token, "{\"r\":1}",
                                     m, 2, NULL, T0 + 2, &dup, &err),
                     CS_OK);
    assert_true(dup);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM result"), 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM metric"), 2);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM metric WHERE task = 'facts' AND stderr IS "
                                 "NULL AND n IS NULL"),
                     1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM result_cache"), 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM attempt WHERE outcome = 'done'"), 1);
    assert_int_equal(cs_store_job_get(f->s, c.job_id, &j, &err), CS_OK);
    assert_int_equal(j.state, CS_JOB_DONE);
    assert_int_equal(j.result_id, q_int(f->s, "SELECT id FROM result"));
    cs_store_job_fini(&j);
    /* A result for a done job under another attempt is stale. */
    assert_int_equal(cs_store_result(f->s, c.job_id, 2, WORKER, c.lease_token, "{}", NULL, 0, NULL,
                                     T0, &dup, &err),
                     CS_ESTALE);
    /* A duplicate metric name fails the whole result, which leaves no trace. */
    c2 = claim_ok(f->s, WORKER, T0 + 3);
    m[1].task = "arith";
    assert_int_equal(cs_store_result(f->s, c2.job_id, c2.attempt, WORKER, c2.lease_token, "{}", m,
                                     2, NULL, T0, &dup, &err),
                     CS_EINVAL);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM result"), 1);
    job_state_is(f->s, c2.job_id, CS_JOB_RUNNING);
    /* A late result of the newest attempt after the lease expired is still taken. */
    assert_int_equal(cs_store_reap(f->s, T0 + 3 + LEASE + 1, &rc, &err), CS_OK);
    assert_int_equal(rc.requeued, 1);
    assert_int_equal(cs_store_result(f->s, c2.job_id, c2.attempt, WORKER, c2.lease_token,
                                     "{\"late\":1}", NULL, 0, NULL, T0 + 2 * LEASE, &dup, &err),
                     CS_OK);
    job_state_is(f->s, c2.job_id, CS_JOB_DONE);
    assert_int_equal(cs_store_result(f->s, c2.job_id, c2.attempt, WORKER, c2.lease_token, "", NULL,
                                     0, NULL, T0, &dup, &err),
                     CS_EINVAL);
    cs_store_claim_fini(&c);
    cs_store_claim_fini(&c2);
}

static void test_cached_reuse_and_force(void **state)
{
    fixture *f = *state;
    cs_store_submit_counts c;
    cs_store_claim cl;
    cs_store *ro = NULL;
    cs_synth g;
    cs_err err = {0};
    size_t total = 0, cached = 0;
    bool is_cached = false;
    int64_t a, b;

    a = submit_n(f->s, "a", 0, 4, NULL, false, NULL);
    for (int i = 0; i < 3; i++) {
        cl = claim_ok(f->s, WORKER, T0 + i);
        complete(f->s, WORKER, &cl, T0 + i);
        cs_store_claim_fini(&cl);
    }
    /* Cells 0..2 have results now; b overlaps on 0..3 and adds 4..5. */
    cs_synth_init(&g, 0, 6);
    assert_int_equal(cs_store_open_ro(f->path, &ro, &err), CS_OK);
    assert_int_equal(cs_store_count_cached(ro, cs_synth_next, &g, &total, &cached, &err), CS_OK);
    assert_int_equal(total, 6);
    assert_int_equal(cached, 3);
    assert_int_equal(cs_store_key_cached(ro, g.key, &is_cached, &err), CS_OK);
    assert_false(is_cached); /* the last cell (5) */
    cs_store_close(ro);

    b = submit_n(f->s, "b", 0, 6, NULL, false, &c);
    assert_int_equal(c.cached, 3);
    assert_int_equal(c.queued, 3);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job j JOIN job k ON j.key = k.key "
                                 "WHERE j.sweep_id = 2 AND k.sweep_id = 1 AND j.state = 'cached' "
                                 "AND j.result_id = k.result_id"),
                     3);
    /* With force nothing is cached. */
    submit_n(f->s, "c", 0, 6, NULL, true, &c);
    assert_int_equal(c.cached, 0);
    assert_int_equal(c.queued, 6);
    /* A sweep whose cells are all cached is done at once. */
    submit_n(f->s, "d", 0, 3, NULL, false, &c);
    assert_int_equal(c.cached, 3);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sweep WHERE name = 'd' AND state = "
                                 "'done'"),
                     1);
    (void)a;
    (void)b;
}

/* ---- control --------------------------------------------------------------------------------- */

static void test_cancel(void **state)
{
    fixture *f = *state;
    cs_store_cancel_counts cc;
    cs_store_filter flt = {0};
    cs_store_claim c;
    cs_store_counts counts;
    cs_err err = {0};
    cs_job_state next;
    bool cancel = false;
    int64_t sid, sid2;

    sid = submit_n(f->s, "s", 0, 5, NULL, false, NULL);
    c = claim_ok(f->s, WORKER, T0);
    flt.sweep_id = sid;
    assert_int_equal(cs_store_cancel(f->s, &flt, "user", T0 + 1, &cc, &err), CS_OK);
    assert_int_equal(cc.cancelled, 4);
    assert_int_equal(cc.signalled, 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sweep WHERE state = 'cancelled'"), 1);
    /* The running job hears about it in its heartbeat, then reports and ends cancelled. */
    assert_int_equal(cs_store_heartbeat(f->s, c.job_id, c.attempt, WORKER, c.lease_token, LEASE,
                                        NULL, T0 + 2, &cancel, &err),
                     CS_OK);
    assert_true(cancel);
    assert_int_equal(cs_store_fail(f->s, c.job_id, c.attempt, WORKER, c.lease_token, "SIGTERM",
                                   NULL, T0 + 3, &next, &err),
                     CS_OK);
    assert_int_equal(next, CS_JOB_CANCELLED);
    assert_int_equal(cs_store_count(f->s, sid, &counts, &err), CS_OK);
    assert_int_equal(counts.n[CS_JOB_CANCELLED], 5);
    assert_int_equal(claim_rc(f->s, WORKER, T0 + 4, &c), CS_ENOENT);
    cs_store_claim_fini(&c);

    /* One job; then a state filter (only retry_wait jobs). */
    sid2 = submit_n(f->s, "s2", 100, 4, NULL, false, NULL);
    flt.sweep_id = 0;
    flt.job_id = q_int(f->s, "SELECT min(id) FROM job WHERE sweep_id = 2");
    assert_int_equal(cs_store_cancel(f->s, &flt, "one", T0, &cc, &err), CS_OK);
    assert_int_equal(cc.cancelled, 1);
    job_state_is(f->s, flt.job_id, CS_JOB_CANCELLED);
    c = claim_ok(f->s, WORKER, T0);
    assert_int_equal(cs_store_fail(f->s, c.job_id, c.attempt, WORKER, c.lease_token, "x", NULL, T0,
                                   &next, &err),
                     CS_OK);
    assert_int_equal(next, CS_JOB_RETRY_WAIT);
    flt.job_id = 0;
    flt.sweep_id = sid2;
    flt.states = CS_JOB_MASK(CS_JOB_RETRY_WAIT);
    assert_int_equal(cs_store_cancel(f->s, &flt, "filter", T0, &cc, &err), CS_OK);
    assert_int_equal(cc.cancelled, 1);
    assert_int_equal(cs_store_count(f->s, sid2, &counts, &err), CS_OK);
    assert_int_equal(counts.n[CS_JOB_QUEUED], 2);
    assert_int_equal(counts.n[CS_JOB_CANCELLED], 2);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sweep WHERE id = 2 AND state = 'active'"),
                     1);
    flt.sweep_id = 77;
    assert_int_equal(cs_store_cancel(f->s, &flt, "x", T0, &cc, &err), CS_ENOENT);
    cs_store_claim_fini(&c);
}

static void test_cancel_on_expiry(void **state)
{
    fixture *f = *state;
    cs_store_filter flt = {0};
    cs_store_reap_counts rc;
    cs_store_claim c;
    cs_err err = {0};

    submit_n(f->s, "s", 0, 1, NULL, false, NULL);
    c = claim_ok(f->s, WORKER, T0);
    flt.job_id = c.job_id;
    assert_int_equal(cs_store_cancel(f->s, &flt, "stop it", T0, NULL, &err), CS_OK);
    assert_int_equal(cs_store_reap(f->s, T0 + LEASE + 1, &rc, &err), CS_OK);
    assert_int_equal(rc.cancelled, 1);
    job_state_is(f->s, c.job_id, CS_JOB_CANCELLED);
    cs_store_claim_fini(&c);
}

static void test_pause_resume(void **state)
{
    fixture *f = *state;
    cs_store_claim c;
    cs_store_filter flt = {0};
    cs_err err = {0};
    int64_t sid = submit_n(f->s, "s", 0, 3, NULL, false, NULL);

    assert_int_equal(cs_store_pause(f->s, sid, T0, &err), CS_OK);
    assert_int_equal(cs_store_pause(f->s, sid, T0, &err), CS_OK);
    assert_int_equal(claim_rc(f->s, WORKER, T0, &c), CS_ENOENT);
    assert_int_equal(cs_store_resume(f->s, sid, T0 + 1, &err), CS_OK);
    assert_int_equal(cs_store_resume(f->s, sid, T0 + 1, &err), CS_ESTATE);
    c = claim_ok(f->s, WORKER, T0 + 2);
    cs_store_claim_fini(&c);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job_event WHERE job_id IS NULL AND "
                                 "to_state = 'paused' AND from_state = 'active'"),
                     1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job_event WHERE job_id IS NULL AND "
                                 "to_state = 'active' AND from_state = 'paused'"),
                     1);
    assert_int_equal(cs_store_pause(f->s, 42, T0, &err), CS_ENOENT);
    flt.sweep_id = sid;
    assert_int_equal(cs_store_cancel(f->s, &flt, "x", T0, NULL, &err), CS_OK);
    assert_int_equal(cs_store_pause(f->s, sid, T0, &err), CS_ESTATE);
    assert_non_null(strstr(err.msg, "cancelled"));
}

static void test_retry(void **state)
{
    fixture *f = *state;
    cs_policy pol = cs_synth_meta("x").policy;
    cs_store_filter flt = {0};
    cs_store_claim a, b, c;
    cs_store_job j;
    cs_err err = {0};
    cs_job_state next;
    size_t n = 0;
    int64_t sid;

    pol.max_attempts = 1;
    sid = submit_n(f->s, "s", 0, 2, &pol, false, NULL);
    a = claim_ok(f->s, "wa", T0);
    b = claim_ok(f->s, "wb", T0);
    assert_int_equal(
            cs_store_fail(f->s, a.job_id, 1, "wa", a.lease_token, "x", NULL, T0, &next, &err),
            CS_OK);
    assert_int_equal(next, CS_JOB_FAILED);
    assert_int_equal(cs_store_reap(f->s, T0 + LEASE + 1, NULL, &err), CS_OK);
    job_state_is(f->s, b.job_id, CS_JOB_LOST);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sweep WHERE state = 'done'"), 1);

    flt.sweep_id = sid;
    flt.states = CS_JOB_MASK(CS_JOB_DONE);
    assert_int_equal(cs_store_retry(f->s, &flt, T0, &n, &err), CS_EINVAL);
    flt.states = CS_JOB_MASK(CS_JOB_FAILED);
    assert_int_equal(cs_store_retry(f->s, &flt, T0 + LEASE + 2, &n, &err), CS_OK);
    assert_int_equal(n, 1);
    job_state_is(f->s, a.job_id, CS_JOB_QUEUED);
    job_state_is(f->s, b.job_id, CS_JOB_LOST);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sweep WHERE state = 'active'"), 1);
    flt.states = CS_JOB_MASK(CS_JOB_LOST);
    assert_int_equal(cs_store_retry(f->s, &flt, T0 + LEASE + 2, &n, &err), CS_OK);
    assert_int_equal(n, 1);
    /* Fresh attempts: attempt numbers keep growing, the budget is renewed. */
    c = claim_ok(f->s, WORKER, T0 + LEASE + 3);
    assert_int_equal(c.attempt, 2);
    assert_int_equal(cs_store_job_get(f->s, c.job_id, &j, &err), CS_OK);
    assert_int_equal(j.max_attempts, 2);
    cs_store_job_fini(&j);
    cs_store_claim_fini(&a);
    cs_store_claim_fini(&b);
    cs_store_claim_fini(&c);
}

static void test_extend(void **state)
{
    fixture *f = *state;
    cs_store_submit_counts c;
    cs_store_claim cl;
    cs_sweep_meta m = cs_synth_meta("s");
    cs_synth g;
    cs_err err = {0};
    int64_t sid = submit_n(f->s, "s", 0, 2, NULL, false, NULL);

    cl = claim_ok(f->s, WORKER, T0);
    complete(f->s, WORKER, &cl, T0);
    cs_store_claim_fini(&cl);
    cl = claim_ok(f->s, WORKER, T0);
    complete(f->s, WORKER, &cl, T0);
    cs_store_claim_fini(&cl);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sweep WHERE state = 'done'"), 1);

    /* 0..1 exist (done), 2..4 are new. */
    cs_synth_init(&g, 0, 5);
    m.spec = "{\"synthetic\":2}";
    assert_int_equal(cs_store_extend(f->s, sid, &m, cs_synth_next, &g, false, T0 + 5, &c, &err),
                     CS_OK);
    assert_int_equal(c.existing, 2);
    assert_int_equal(c.inserted, 3);
    assert_int_equal(c.queued, 3);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE state = 'done' AND attempt = 1"),
                     2);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sweep WHERE state = 'active' AND spec = "
                                 "'{\"synthetic\":2}'"),
                     1);
    assert_int_equal(cs_store_extend(f->s, 99, NULL, cs_synth_next, &g, false, T0, &c, &err),
                     CS_ENOENT);
}

static void test_on_failure_stop(void **state)
{
    fixture *f = *state;
    cs_policy pol = cs_synth_meta("x").policy;
    cs_store_claim c;
    cs_err err = {0};
    cs_job_state next;

    pol.max_attempts = 2;
    pol.stop_on_failure = true;
    submit_n(f->s, "s", 0, 3, &pol, false, NULL);
    c = claim_ok(f->s, WORKER, T0);
    /* A retryable failure does not stop the sweep; the final one does. */
    assert_int_equal(
            cs_store_fail(f->s, c.job_id, 1, WORKER, c.lease_token, "x", NULL, T0, &next, &err),
            CS_OK);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sweep WHERE state = 'active'"), 1);
    cs_store_claim_fini(&c);
    assert_int_equal(cs_store_reap(f->s, T0 + 3600 * 1000, NULL, &err), CS_OK);
    c = claim_ok(f->s, WORKER, T0 + 3600 * 1000);
    assert_int_equal(c.attempt, 2);
    assert_int_equal(
            cs_store_fail(f->s, c.job_id, 2, WORKER, c.lease_token, "x", NULL, T0, &next, &err),
            CS_OK);
    assert_int_equal(next, CS_JOB_FAILED);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sweep WHERE state = 'paused'"), 1);
    cs_store_claim_fini(&c);
    assert_int_equal(claim_rc(f->s, WORKER, T0 + 3600 * 1000, &c), CS_ENOENT);
}

/* ---- scheduling -------------------------------------------------------------------------------
 */

static void test_max_running(void **state)
{
    fixture *f = *state;
    cs_policy pol = cs_synth_meta("x").policy;
    cs_store_claim c[3];
    char w[8];

    pol.max_running = 2;
    submit_n(f->s, "s", 0, 5, &pol, false, NULL);
    for (int i = 0; i < 2; i++) {
        snprintf(w, sizeof(w), "w%d", i);
        c[i] = claim_ok(f->s, w, T0);
    }
    assert_int_equal(claim_rc(f->s, "w2", T0, &c[2]), CS_ENOENT);
    complete(f->s, "w0", &c[0], T0);
    c[2] = claim_ok(f->s, "w2", T0);
    for (int i = 0; i < 3; i++) {
        cs_store_claim_fini(&c[i]);
    }
}

static void test_priority_and_fair_share(void **state)
{
    fixture *f = *state;
    cs_policy pol = cs_synth_meta("x").policy;
    int64_t lo, hi, a, b;
    char w[16];
    int from_a = 0, from_b = 0;

    lo = submit_n(f->s, "lo", 0, 3, &pol, false, NULL);
    pol.priority = 5;
    hi = submit_n(f->s, "hi", 100, 3, &pol, false, NULL);
    for (int i = 0; i < 3; i++) {
        cs_store_claim c;
        snprintf(w, sizeof(w), "p%d", i);
        c = claim_ok(f->s, w, T0);
        assert_int_equal(c.sweep_id, hi);
        cs_store_claim_fini(&c);
    }
    {
        cs_store_claim c = claim_ok(f->s, "p9", T0);
        assert_int_equal(c.sweep_id, lo);
        cs_store_claim_fini(&c);
    }
    /* Two sweeps of equal priority share the workers: the one with fewer running goes first. */
    pol.priority = 10;
    a = submit_n(f->s, "a", 200, 20, &pol, false, NULL);
    b = submit_n(f->s, "b", 300, 20, &pol, false, NULL);
    for (int i = 0; i < 10; i++) {
        cs_store_claim c;
        snprintf(w, sizeof(w), "f%d", i);
        c = claim_ok(f->s, w, T0);
        from_a += c.sweep_id == a;
        from_b += c.sweep_id == b;
        cs_store_claim_fini(&c);
        assert_true(abs(from_a - from_b) <= 1);
    }
    assert_int_equal(from_a, 5);
    assert_int_equal(from_b, 5);
    /* Inside a sweep: FIFO. */
    assert_int_equal(q_int(f->s, "SELECT max(id) FROM job WHERE sweep_id = 3 AND state = "
                                 "'running'") < q_int(f->s, "SELECT min(id) FROM job WHERE "
                                                            "sweep_id = 3 AND state = 'queued'"),
                     1);
}

static void test_caps_matching(void **state)
{
    fixture *f = *state;
    cs_sweep_meta m = cs_synth_meta("big");
    cs_store_caps caps = caps_of("w");
    cs_store_claim c = {0};
    cs_synth g;
    cs_err err = {0};

    cs_synth_init(&g, 0, 1);
    g.model = "models/big";
    g.mem_mb = 8000;
    assert_int_equal(cs_store_submit(f->s, &m, cs_synth_next, &g, false, T0, NULL, &err), CS_OK);
    cs_synth_init(&g, 10, 1);
    g.exec = true;
    m.name = "exec";
    assert_int_equal(cs_store_submit(f->s, &m, cs_synth_next, &g, false, T0, NULL, &err), CS_OK);

    caps.mem_mb = 4000;
    assert_int_equal(cs_store_claim_job(f->s, &caps, LEASE, T0, &c, &err), CS_ENOENT);
    caps.mem_mb = 16000;
    caps.models = "[\"models/small\"]";
    assert_int_equal(cs_store_claim_job(f->s, &caps, LEASE, T0, &c, &err), CS_ENOENT);
    caps.models = "[\"models/small\",\"models/big\"]";
    assert_int_equal(cs_store_claim_job(f->s, &caps, LEASE, T0, &c, &err), CS_OK);
    assert_non_null(strstr(c.config, "models/big"));
    cs_store_claim_fini(&c);
    /* The exec job needs an exec-capable worker. */
    caps.worker = "w2";
    caps.models = NULL;
    assert_int_equal(cs_store_claim_job(f->s, &caps, LEASE, T0, &c, &err), CS_ENOENT);
    caps.exec = true;
    assert_int_equal(cs_store_claim_job(f->s, &caps, LEASE, T0, &c, &err), CS_OK);
    assert_non_null(strstr(c.config, "\"exec\""));
    cs_store_claim_fini(&c);
    /* A backend that is neither native nor exec goes to no worker, not to an exec one. */
    cs_synth_init(&g, 20, 1);
    g.backend = "\"docker\"";
    m.name = "docker";
    assert_int_equal(cs_store_submit(f->s, &m, cs_synth_next, &g, false, T0, NULL, &err), CS_OK);
    caps.worker = "w3";
    caps.native = true;
    assert_int_equal(cs_store_claim_job(f->s, &caps, LEASE, T0, &c, &err), CS_ENOENT);
    caps.worker = NULL;
    assert_int_equal(cs_store_claim_job(f->s, &caps, LEASE, T0, &c, &err), CS_EINVAL);
}

/* ---- the insert path: requirement columns and the deferred checkpoint --------------------------
 */

/* Cells from a list of hand-written configs (key: the index in hex), or, with pad > 0, n cells of
 * ~pad bytes each, distinct from cell `first` on (so that they share no fragment). */
typedef struct cell_list {
    const char *const *configs;
    size_t n, i, pad, first;
    char key[65];
    char *buf;
} cell_list;

static cs_rc cell_list_next(void *ctx, cs_cell *out, cs_err *err)
{
    cell_list *l = ctx;
    (void)err;
    if (l->i >= l->n) {
        return CS_ENOENT;
    }
    snprintf(l->key, sizeof(l->key), "%064zx", l->i + 1);
    out->key = l->key;
    if (l->pad) {
        snprintf(l->buf, l->pad + 200,
                 "{\"extra\":{\"pad\":\"%0*zu\"},\"model\":{\"backend\":\"native\","
                 "\"folder\":\"m\"},\"seed\":%zu}",
                 (int)l->pad, l->first + l->i, l->i);
        out->config = l->buf;
    } else {
        out->config = l->configs[l->i];
    }
    out->axes = "{}";
    out->baseline = false;
    l->i++;
    return CS_OK;
}

static void test_requirement_columns(void **state)
{
    /* Consecutive repeats (the cache), a nested "model" key before the top-level one, strings
     * with braces, quotes and escapes, whitespace, no model, exec backends, requirements. */
    static const char *const configs[] = {
            "{\"model\":{\"backend\":\"native\",\"folder\":\"a\"},\"seed\":1}",
            "{\"model\":{\"backend\":\"native\",\"folder\":\"a\"},\"seed\":2}",
            "{\"model\":{\"folder\":\"b\",\"requires\":{\"gpus\":2,\"mem_mb\":8000}}}",
            "{\"a\":{\"model\":{\"folder\":\"wrong\"}},\"b\":\"}\\\"{\",\"model\":{\"folder\":"
            "\"c\"}}",
            "{\"x\":[1,{\"model\":2},\"]\"], \"model\" : "
            "{\"folder\":\"d}\\\"\",\"backend\":{\"exec\":\"run {x}\"}}}",
            "{\"model\":{\"backend\":\"exec\",\"folder\":\"e\",\"requires\":{\"mem_mb\":512.5}}}",
            "{\"seed\":3}",
            "{\"model\":null}",
            "{\"model\":\"flat\"}",
            "{\"model\":{\"backend\":\"native\",\"folder\":\"a\"},\"seed\":4}",
    };
    fixture *f = *state;
    cell_list l = {.configs = configs, .n = sizeof(configs) / sizeof(configs[0])};
    cs_sweep_meta m = cs_synth_meta("reqs");
    cs_store_submit_counts c;
    cs_err err = {0};

    assert_int_equal(cs_store_submit(f->s, &m, cell_list_next, &l, false, T0, &c, &err), CS_OK);
    assert_int_equal(c.inserted, l.n);
    /* Every row holds what json_extract on its whole config gives (the former insert). */
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE"
                                 " req_model IS NOT json_extract(config, '$.model.folder')"
                                 " OR req_backend IS NOT (CASE json_type(config, '$.model.backend')"
                                 " WHEN 'text' THEN json_extract(config, '$.model.backend')"
                                 " WHEN 'object' THEN 'exec' ELSE 'native' END)"
                                 " OR req_mem_mb IS NOT coalesce(json_extract(config,"
                                 " '$.model.requires.mem_mb'), 0)"
                                 " OR req_gpus IS NOT coalesce(json_extract(config,"
                                 " '$.model.requires.gpus'), 0)"),
                     0);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE req_model = 'a'"), 3);
    assert_int_equal(q_int(f->s, "SELECT req_gpus * 100000 + req_mem_mb FROM job"
                                 " WHERE req_model = 'b'"),
                     208000);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE req_model = 'c'"), 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE req_model = 'd}\"'"
                                 " AND req_backend = 'exec'"),
                     1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE req_model IS NULL"), 3);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE req_model = 'wrong'"), 0);
}

/* A config that is not JSON is refused, whether the fault is in its model object or elsewhere,
 * and the sweep leaves no trace. */
static void test_malformed_config(void **state)
{
    static const char *const bad[] = {
            "{\"model\":{\"folder\":\"a\"},\"seed\":}",
            "{\"model\":{\"folder\":},\"seed\":1}",
            "{\"model\":{\"folder\":\"a\"}",
            "not json",
    };
    fixture *f = *state;
    cs_err err = {0};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *configs[2] = {"{\"model\":{\"folder\":\"a\"},\"seed\":0}", bad[i]};
        cell_list l = {.configs = configs, .n = 2};
        cs_sweep_meta m = cs_synth_meta("bad");
        cs_err_clear(&err);
        assert_int_not_equal(cs_store_submit(f->s, &m, cell_list_next, &l, false, T0, NULL, &err),
                             CS_OK);
        if (!strstr(err.msg, "malformed JSON")) {
            fail_msg("config %zu: %s", i, err.msg);
        }
    }
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job"), 0);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sweep"), 0);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void test_bulk_checkpoint(void **state)
{
    fixture *f = *state;
    cell_list l = {.n = CS_STORE_BULK_JOBS, .pad = 1500};
    cs_sweep_meta m = cs_synth_meta("bulk");
    cs_store_claim c;
    cs_store_counts counts;
    cs_err err = {0};
    int64_t before, after;

    l.buf = malloc(l.pad + 200);
    assert_non_null(l.buf);
    before = file_size(f->path);
    assert_int_equal(cs_store_submit(f->s, &m, cell_list_next, &l, false, T0, NULL, &err), CS_OK);
    free(l.buf);
    /* The ~7 MB commit is in the WAL only; the database file did not grow. */
    assert_true(file_size(f->path) - before < 1000000);
    assert_int_equal(cs_store_begin(f->s, &err), CS_OK);
    assert_int_equal(cs_store_checkpoint(f->s, &err), CS_ESTATE);
    cs_store_rollback(f->s);
    assert_int_equal(cs_store_checkpoint(f->s, &err), CS_OK);
    after = file_size(f->path);
    assert_true(after - before > 6000000);
    /* Cheap when there is nothing to copy; the jobs are all there. */
    assert_int_equal(cs_store_checkpoint(f->s, &err), CS_OK);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE state = 'queued'"),
                     CS_STORE_BULK_JOBS);

    /* Without cs_store_checkpoint the next commit copies the WAL, as SQLite does by default. */
    l.i = 0;
    l.first = CS_STORE_BULK_JOBS;
    l.buf = malloc(l.pad + 200);
    assert_non_null(l.buf);
    m.name = "bulk2";
    assert_int_equal(cs_store_submit(f->s, &m, cell_list_next, &l, false, T0, NULL, &err), CS_OK);
    free(l.buf);
    assert_true(file_size(f->path) - after < 1000000);
    c = claim_ok(f->s, "w", T0);
    cs_store_claim_fini(&c);
    assert_true(file_size(f->path) - after > 6000000);
    /* Counts over every sweep (summed per sweep, then per state). */
    assert_int_equal(cs_store_count(f->s, 0, &counts, &err), CS_OK);
    assert_int_equal(counts.total, 2 * CS_STORE_BULK_JOBS);
    assert_int_equal(counts.n[CS_JOB_QUEUED], 2 * CS_STORE_BULK_JOBS - 1);
    assert_int_equal(counts.n[CS_JOB_RUNNING], 1);
}

/* ---- group commit and events -------------------------------------------------------------------
 */

static void test_group_commit(void **state)
{
    fixture *f = *state;
    cs_store_claim c[10];
    cs_store *ro = NULL;
    cs_err err = {0};
    bool cancel;
    char w[8];

    submit_n(f->s, "s", 0, 20, NULL, false, NULL);
    assert_int_equal(cs_store_open_ro(f->path, &ro, &err), CS_OK);
    assert_int_equal(cs_store_begin(f->s, &err), CS_OK);
    assert_true(cs_store_in_batch(f->s));
    assert_int_equal(cs_store_begin(f->s, &err), CS_ESTATE);
    for (int i = 0; i < 10; i++) {
        snprintf(w, sizeof(w), "w%d", i);
        c[i] = claim_ok(f->s, w, T0);
    }
    /* An operation that fails inside the batch leaves the rest alone. */
    assert_int_equal(cs_store_heartbeat(f->s, c[0].job_id, 9, "w0", c[0].lease_token, LEASE, NULL,
                                        T0, &cancel, &err),
                     CS_ESTALE);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE state = 'running'"), 10);
    /* Nothing is visible to a reader before the commit. */
    assert_int_equal(q_int(ro, "SELECT count(*) FROM job WHERE state = 'running'"), 0);
    cs_store_rollback(f->s);
    assert_false(cs_store_in_batch(f->s));
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE state = 'running'"), 0);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM attempt"), 0);
    for (int i = 0; i < 10; i++) {
        cs_store_claim_fini(&c[i]);
    }

    assert_int_equal(cs_store_begin(f->s, &err), CS_OK);
    for (int i = 0; i < 10; i++) {
        snprintf(w, sizeof(w), "w%d", i);
        c[i] = claim_ok(f->s, w, T0);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(w, sizeof(w), "w%d", i);
        complete(f->s, w, &c[i], T0 + 1);
    }
    assert_int_equal(cs_store_commit(f->s, &err), CS_OK);
    assert_int_equal(cs_store_commit(f->s, &err), CS_ESTATE);
    assert_int_equal(q_int(ro, "SELECT count(*) FROM job WHERE state = 'running'"), 5);
    assert_int_equal(q_int(ro, "SELECT count(*) FROM job WHERE state = 'done'"), 5);
    for (int i = 0; i < 10; i++) {
        cs_store_claim_fini(&c[i]);
    }
    cs_store_close(ro);
}

/* The worker operations of a batch use no savepoint: a refusal before any write (stale, a metric
 * given twice, nothing to claim) leaves the batch going on; a failure after a write (here a
 * trigger of the test's making refuses the attempt row of one claim) rolls the whole batch back
 * at the commit, which says so, and the store goes on afterwards. */
static void test_batch_without_savepoints(void **state)
{
    fixture *f = *state;
    cs_store_metric twice[2] = {{"arith", "acc", 0.5, 0.01, 10}, {"arith", "acc", 0.6, 0.01, 10}};
    cs_store_claim a, b, c;
    cs_err err = {0};
    bool cancel;

    submit_n(f->s, "s", 0, 5, NULL, false, NULL);
    assert_int_equal(cs_store_begin(f->s, &err), CS_OK);
    a = claim_ok(f->s, "w1", T0);
    assert_int_equal(cs_store_heartbeat(f->s, a.job_id, 7, WORKER, a.lease_token, LEASE, NULL, T0,
                                        &cancel, &err),
                     CS_ESTALE);
    assert_int_equal(cs_store_result(f->s, a.job_id, a.attempt, WORKER, a.lease_token, "{}", twice,
                                     2, NULL, T0, NULL, &err),
                     CS_EINVAL);
    assert_non_null(strstr(err.msg, "given twice"));
    complete(f->s, "w1", &a, T0);
    assert_int_equal(cs_store_commit(f->s, &err), CS_OK);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE state = 'done'"), 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM metric"), 2);

    assert_int_equal(sqlite3_exec(cs_store_test_db(f->s),
                                  "CREATE TEMP TRIGGER boom BEFORE INSERT ON attempt"
                                  " WHEN new.worker = 'boom' BEGIN"
                                  " SELECT RAISE(FAIL, 'attempt refused'); END",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(cs_store_begin(f->s, &err), CS_OK);
    b = claim_ok(f->s, "w2", T0 + 1);
    assert_int_not_equal(claim_rc(f->s, "boom", T0 + 1, &c), CS_OK);
    assert_int_equal(cs_store_commit(f->s, &err), CS_EDB);
    assert_non_null(strstr(err.msg, "rolled back"));
    assert_non_null(strstr(err.msg, "attempt refused"));
    assert_false(cs_store_in_batch(f->s));
    /* Nothing of that batch stayed: w2's claim is gone too. */
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE state = 'running'"), 0);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM attempt"), 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job_event WHERE to_state = 'running'"), 1);
    assert_int_equal(
            sqlite3_exec(cs_store_test_db(f->s), "DROP TRIGGER temp.boom", NULL, NULL, NULL),
            SQLITE_OK);
    /* Outside a batch the same failure undoes only its own operation. */
    cs_store_claim_fini(&b);
    b = claim_ok(f->s, "w2", T0 + 2);
    complete(f->s, "w2", &b, T0 + 2);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE state = 'done'"), 2);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    cs_store_claim_fini(&a);
    cs_store_claim_fini(&b);
}

static void test_every_transition_logged(void **state)
{
    fixture *f = *state;
    cs_policy pol = cs_synth_meta("x").policy;
    cs_store_claim c;
    cs_err err = {0};
    cs_job_state next;

    pol.backoff_base_s = 1;
    submit_n(f->s, "s", 0, 1, &pol, false, NULL);
    c = claim_ok(f->s, WORKER, T0);
    assert_int_equal(cs_store_fail(f->s, c.job_id, 1, WORKER, c.lease_token, "x", NULL, T0 + 10,
                                   &next, &err),
                     CS_OK);
    assert_int_equal(cs_store_reap(f->s, T0 + 2000, NULL, &err), CS_OK);
    cs_store_claim_fini(&c);
    c = claim_ok(f->s, WORKER, T0 + 2001);
    complete(f->s, WORKER, &c, T0 + 3000);
    cs_store_claim_fini(&c);
    /* queued->running, running->retry_wait, retry_wait->queued, queued->running, running->done */
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job_event WHERE job_id = 1"), 5);
    assert_int_equal(q_int(f->s, "SELECT group_concat(to_state, ',') = "
                                 "'running,retry_wait,queued,running,done' FROM "
                                 "(SELECT to_state FROM job_event WHERE job_id = 1 ORDER BY id)"),
                     1);
    assert_int_equal(q_int(f->s, "SELECT time FROM job_event WHERE job_id = 1 AND to_state = "
                                 "'done'"),
                     T0 + 3000);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job_event WHERE job_id IS NULL AND "
                                 "to_state = 'done'"),
                     1);
    assert_int_equal(cs_store_worker_seen(f->s, WORKER, "h", "{\"gpus\":1}", T0, &err), CS_OK);
    assert_int_equal(cs_store_worker_seen(f->s, WORKER, NULL, NULL, T0 + 5, &err), CS_OK);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM worker WHERE host = 'h' AND last_seen = "
                                 "1700000000005 AND first_seen = 1700000000000"),
                     1);
    assert_int_equal(q_int(f->s, "PRAGMA integrity_check") == -1, 0);
}

/* Issue 17: every report about a job is bound to its lease holder (worker and lease token). A
 * peer that knows the job id and attempt but not the token, or names another worker, renews
 * nothing, stores nothing, caches nothing and hands nothing back. */
static void test_lease_bound_reports(void **state)
{
    fixture *f = *state;
    static const char *const wrong[] = {"ffffffffffffffffffffffffffffffff", "short", NULL};
    cs_store_claim c, c2, other;
    cs_err err = {0};
    cs_job_state next = CS_JOB_QUEUED;
    bool cancel = false, dup = true, released = true;
    char right[CS_STORE_TOKEN_LEN + 1];

    submit_n(f->s, "s", 0, 3, NULL, false, NULL);
    c = claim_ok(f->s, WORKER, T0);
    assert_int_equal(strlen(c.lease_token), CS_STORE_TOKEN_LEN);
    assert_int_equal(strspn(c.lease_token, "0123456789abcdef"), CS_STORE_TOKEN_LEN);
    memcpy(right, c.lease_token, sizeof(right));
    /* The token is kept with the attempt, and each attempt draws its own. */
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM attempt WHERE length(lease_token) = 32"), 1);
    other = claim_ok(f->s, "w2", T0);
    assert_string_not_equal(other.lease_token, right);

    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        const char *tok = wrong[i];
        assert_int_equal(cs_store_heartbeat(f->s, c.job_id, 1, WORKER, tok, LEASE, "{\"x\":1}",
                                            T0 + 1000, &cancel, &err),
                         CS_ESTALE);
        assert_non_null(strstr(err.msg, "does not hold its lease"));
        assert_non_null(strstr(err.msg, "\"w1\""));
        assert_int_equal(cs_store_result(f->s, c.job_id, 1, WORKER, tok, "{\"forged\":1}", NULL, 0,
                                         NULL, T0 + 1000, &dup, &err),
                         CS_ESTALE);
        assert_int_equal(cs_store_fail(f->s, c.job_id, 1, WORKER, tok, "forged", NULL, T0 + 1000,
                                       &next, &err),
                         CS_ESTALE);
        assert_int_equal(
                cs_store_release(f->s, c.job_id, 1, WORKER, tok, T0 + 1000, &released, &err),
                CS_ESTALE);
        assert_false(released);
    }
    /* The right token under another worker's name is refused too; so is another lease's token. */
    assert_int_equal(cs_store_result(f->s, c.job_id, 1, "w2", right, "{\"forged\":1}", NULL, 0,
                                     NULL, T0 + 1000, &dup, &err),
                     CS_ESTALE);
    assert_non_null(strstr(err.msg, "worker \"w2\" does not hold its lease"));
    assert_int_equal(cs_store_heartbeat(f->s, c.job_id, 1, WORKER, other.lease_token, LEASE, NULL,
                                        T0 + 1000, &cancel, &err),
                     CS_ESTALE);
    assert_int_equal(cs_store_lease_check(f->s, c.job_id, 1, WORKER, right, "x", &err), CS_OK);
    assert_int_equal(cs_store_lease_check(f->s, c.job_id, 7, WORKER, right, "x", &err), CS_ENOENT);
    /* Nothing forged left a trace: no result, no cache entry, lease and progress untouched. */
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM result"), 0);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM result_cache"), 0);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM attempt WHERE ended IS NOT NULL"), 0);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE state = 'running' AND "
                                 "progress IS NULL AND lease_until = 1700000060000"),
                     2);

    /* A claim under the same name by another process (another instance, or none) never gets the
     * holder's lease or its token: it is handed another job. */
    {
        cs_store_caps caps = caps_of(WORKER);
        caps.instance = "99999999999999999999999999999999";
        assert_int_equal(cs_store_claim_job(f->s, &caps, LEASE, T0 + 2000, &c2, &err), CS_OK);
        assert_false(c2.again);
        assert_int_not_equal(c2.job_id, c.job_id);
        assert_string_not_equal(c2.lease_token, right);
        cs_store_claim_fini(&c2);
        caps.instance = NULL;
        assert_int_equal(cs_store_claim_job(f->s, &caps, LEASE, T0 + 2000, &c2, &err), CS_ENOENT);
        caps.instance = "not hex";
        assert_int_equal(cs_store_claim_job(f->s, &caps, LEASE, T0 + 2000, &c2, &err), CS_EINVAL);
    }
    /* Its own resent CLAIM gets the same lease back, token included. */
    c2 = claim_ok(f->s, WORKER, T0 + 3000);
    assert_true(c2.again);
    assert_int_equal(c2.job_id, c.job_id);
    assert_string_equal(c2.lease_token, right);
    cs_store_claim_fini(&c2);

    /* The holder's own reports are accepted, and only its result enters the cache. */
    assert_int_equal(cs_store_heartbeat(f->s, c.job_id, 1, WORKER, right, LEASE, NULL, T0 + 4000,
                                        &cancel, &err),
                     CS_OK);
    assert_int_equal(cs_store_result(f->s, c.job_id, 1, WORKER, right, "{\"real\":1}", NULL, 0,
                                     NULL, T0 + 5000, &dup, &err),
                     CS_OK);
    assert_false(dup);
    /* A resend of it is a duplicate; a forged one after it is still refused. */
    assert_int_equal(cs_store_result(f->s, c.job_id, 1, WORKER, right, "{\"real\":1}", NULL, 0,
                                     NULL, T0 + 5001, &dup, &err),
                     CS_OK);
    assert_true(dup);
    assert_int_equal(cs_store_result(f->s, c.job_id, 1, WORKER, wrong[0], "{\"forged\":1}", NULL, 0,
                                     NULL, T0 + 5002, &dup, &err),
                     CS_ESTALE);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM result WHERE json = '{\"real\":1}'"), 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM result_cache"), 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM result WHERE json LIKE '%forged%'"), 0);
    job_state_is(f->s, c.job_id, CS_JOB_DONE);
    /* The other lease is released by its holder only. */
    assert_int_equal(cs_store_release(f->s, other.job_id, other.attempt, "w2", other.lease_token,
                                      T0 + 6000, &released, &err),
                     CS_OK);
    assert_true(released);
    /* ... and is queued again at once, its attempt ended as released and given back */
    job_state_is(f->s, other.job_id, CS_JOB_QUEUED);
    {
        char sql[160];
        snprintf(sql, sizeof sql, "SELECT max_attempts - attempt FROM job_row WHERE id = %lld",
                 (long long)other.job_id);
        int left_before = 2; /* the fixture's max_attempts 3, one attempt started */
        assert_int_equal(q_int(f->s, sql), left_before + 1);
    }
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM attempt WHERE outcome = 'released'"), 1);
    cs_store_claim_fini(&c);
    cs_store_claim_fini(&other);
}

/* Issue 17: last_seen follows every message, BYE marks a worker gone until it speaks again, and
 * idle workers that run nothing are pruned. */
static void test_worker_liveness(void **state)
{
    fixture *f = *state;
    cs_store_claim c;
    cs_err err = {0};
    bool marked = false;
    size_t n = 99;

    assert_int_equal(cs_store_worker_seen(f->s, WORKER, "h", "{}", T0, &err), CS_OK);
    /* Touches move last_seen (at most one write a second) and record the instance. */
    assert_int_equal(cs_store_worker_touch(f->s, WORKER, INSTANCE, T0 + 500, &err), CS_OK);
    assert_int_equal(q_int(f->s, "SELECT last_seen - 1700000000000 FROM worker"), 500);
    assert_int_equal(cs_store_worker_touch(f->s, WORKER, NULL, T0 + 900, &err), CS_OK);
    assert_int_equal(q_int(f->s, "SELECT last_seen - 1700000000000 FROM worker"), 500);
    assert_int_equal(cs_store_worker_touch(f->s, WORKER, NULL, T0 + 120000, &err), CS_OK);
    assert_int_equal(q_int(f->s, "SELECT last_seen - 1700000000000 FROM worker"), 120000);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM worker WHERE instance = '" INSTANCE "'"), 1);
    /* A touch by an unknown name creates its row. */
    assert_int_equal(cs_store_worker_touch(f->s, "fresh", NULL, T0 + 120000, &err), CS_OK);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM worker"), 2);

    /* BYE of another process of the same name changes nothing; its own marks it gone; any later
     * message brings it back. */
    assert_int_equal(cs_store_worker_bye(f->s, WORKER, "99999999999999999999999999999999",
                                         T0 + 121000, &marked, &err),
                     CS_OK);
    assert_false(marked);
    assert_int_equal(cs_store_worker_bye(f->s, WORKER, INSTANCE, T0 + 122000, &marked, &err),
                     CS_OK);
    assert_true(marked);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM worker WHERE bye_at IS NOT NULL"), 1);
    assert_int_equal(cs_store_worker_touch(f->s, WORKER, NULL, T0 + 122100, &err), CS_OK);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM worker WHERE bye_at IS NOT NULL"), 0);
    assert_int_equal(cs_store_worker_bye(f->s, WORKER, INSTANCE, T0 + 122200, &marked, &err),
                     CS_OK);
    assert_int_equal(cs_store_worker_seen(f->s, WORKER, "h", NULL, T0 + 122300, &err), CS_OK);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM worker WHERE bye_at IS NOT NULL"), 0);

    /* Pruning: a worker that runs a job stays however old its last_seen; idle ones go. */
    submit_n(f->s, "s", 0, 1, NULL, false, NULL);
    c = claim_ok(f->s, "busy", T0);
    assert_int_equal(cs_store_worker_touch(f->s, "busy", NULL, T0, &err), CS_OK);
    for (int i = 0; i < 50; i++) {
        char w[32];
        snprintf(w, sizeof(w), "fake-%d", i);
        assert_int_equal(cs_store_worker_touch(f->s, w, NULL, T0 + i, &err), CS_OK);
    }
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM worker"), 53);
    assert_int_equal(cs_store_worker_prune(f->s, T0 + 3600000 + 30, 3600000, &n, &err), CS_OK);
    assert_int_equal(n, 30); /* fake-0 .. fake-29; busy runs a job */
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM worker WHERE id = 'busy'"), 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM worker WHERE id LIKE 'fake-%'"), 20);
    assert_int_equal(cs_store_worker_prune(f->s, T0 + 9000000, 3600000, &n, &err), CS_OK);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM worker"), 1); /* busy */
    cs_store_claim_fini(&c);
}

/* ---- the control socket's reads and the guard ---------------------------------------------- */

typedef struct rows {
    size_t n;
    char text[1024];
} rows;

static cs_rc collect_job(void *ctx, const cs_store_job_row *j, cs_err *err)
{
    rows *r = ctx;
    size_t used = strlen(r->text);
    (void)err;
    snprintf(r->text + used, sizeof(r->text) - used, "%lld:%s:%lld:%s:%s;", (long long)j->id,
             j->state, (long long)j->attempt, j->worker ? j->worker : "-",
             j->last_error ? j->last_error : "-");
    r->n++;
    return CS_OK;
}

static cs_rc collect_worker(void *ctx, const cs_store_worker_row *w, cs_err *err)
{
    rows *r = ctx;
    size_t used = strlen(r->text);
    (void)err;
    snprintf(r->text + used, sizeof(r->text) - used, "%s:%s:%lld:%d;", w->name,
             w->host ? w->host : "-", (long long)w->job_id, w->active ? 1 : 0);
    r->n++;
    return CS_OK;
}

static void test_control_reads(void **state)
{
    fixture *f = *state;
    cs_store_job_query q = {.limit = 100, .error_chars = 4};
    cs_store_attempt_log l;
    cs_store_claim c;
    cs_err err = {0};
    rows r = {0};
    int64_t total = 0;
    size_t n = 99;
    char *path = NULL;
    cs_job_state next;

    submit_n(f->s, "s", 0, 3, NULL, false, NULL);
    c = claim_ok(f->s, WORKER, T0);
    assert_int_equal(cs_store_fail(f->s, c.job_id, c.attempt, WORKER, c.lease_token, "boom boom",
                                   NULL, T0 + 10, &next, &err),
                     CS_OK);
    cs_store_claim_fini(&c);
    c = claim_ok(f->s, "w2", T0 + 20);

    /* JOBS: every job with its total, a page, one state; last_error cut to error_chars. */
    assert_int_equal(cs_store_job_list(f->s, &q, &total, collect_job, &r, &err), CS_OK);
    assert_int_equal(total, 3);
    assert_string_equal(r.text, "1:retry_wait:1:-:boom;2:running:1:w2:-;3:queued:0:-:-;");
    memset(&r, 0, sizeof(r));
    q.limit = 1;
    q.offset = 1;
    assert_int_equal(cs_store_job_list(f->s, &q, &total, collect_job, &r, &err), CS_OK);
    assert_int_equal(total, 3);
    assert_string_equal(r.text, "2:running:1:w2:-;");
    memset(&r, 0, sizeof(r));
    q = (cs_store_job_query){.state = "queued", .limit = -1, .error_chars = 512};
    assert_int_equal(cs_store_job_list(f->s, &q, &total, collect_job, &r, &err), CS_OK);
    assert_int_equal(total, 1);
    assert_string_equal(r.text, "3:queued:0:-:-;");

    /* WORKERS: active = seen since the bound and no BYE; the running job of each. */
    assert_int_equal(cs_store_worker_seen(f->s, WORKER, "h1", NULL, T0, &err), CS_OK);
    assert_int_equal(cs_store_worker_seen(f->s, "w2", NULL, NULL, T0 + 20, &err), CS_OK);
    assert_int_equal(cs_store_worker_count_active(f->s, T0, &n, &err), CS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(cs_store_worker_count_active(f->s, T0 + 1, &n, &err), CS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cs_store_worker_bye(f->s, "w2", NULL, T0 + 30, NULL, &err), CS_OK);
    assert_int_equal(cs_store_worker_count_active(f->s, T0, &n, &err), CS_OK);
    assert_int_equal(n, 1);
    memset(&r, 0, sizeof(r));
    assert_int_equal(cs_store_worker_list(f->s, T0, collect_worker, &r, &err), CS_OK);
    assert_string_equal(r.text, "w1:h1:0:1;w2:-:2:0;");

    /* LOGS: the attempt's facts; an unknown job is CS_ENOENT. */
    assert_int_equal(cs_store_attempt_log_get(f->s, 1, 0, &l, &err), CS_OK);
    assert_int_equal(l.job_attempt, 1);
    assert_true(l.has_attempt);
    assert_string_equal(l.error, "boom boom");
    assert_null(l.log_path);
    cs_store_attempt_log_fini(&l);
    assert_int_equal(cs_store_attempt_log_get(f->s, 1, 2, &l, &err), CS_OK);
    assert_false(l.has_attempt);
    cs_store_attempt_log_fini(&l);
    assert_int_equal(cs_store_attempt_log_get(f->s, 99, 0, &l, &err), CS_ENOENT);
    assert_int_equal(cs_store_last_log_path(f->s, 1, &path, &err), CS_OK);
    assert_null(path);
    cs_store_claim_fini(&c);
}

/* The guard: no store, a bad argument, a write on a read-only handle (the operations that were
 * cs_store_extra's wrote through the connection and met SQLite's refusal, CS_EDB). */
static void test_guard(void **state)
{
    fixture *f = *state;
    cs_store *ro = NULL;
    cs_store_counts counts;
    cs_err err = {0};
    bool flag = true;
    size_t n = 99;

    assert_int_equal(cs_store_worker_bye(NULL, WORKER, NULL, T0, &flag, &err), CS_EINVAL);
    assert_false(flag);
    assert_int_equal(cs_store_count(NULL, 0, &counts, &err), CS_EINVAL);
    assert_int_equal(cs_store_worker_seen(f->s, "", NULL, NULL, T0, &err), CS_EINVAL);
    assert_string_equal(err.msg, "store: worker id missing");
    assert_int_equal(cs_store_open_ro(f->path, &ro, &err), CS_OK);
    assert_int_equal(cs_store_worker_bye(ro, WORKER, NULL, T0, &flag, &err), CS_ENOTSUP);
    assert_int_equal(cs_store_worker_prune(ro, T0, 1000, &n, &err), CS_ENOTSUP);
    assert_int_equal(n, 0);
    assert_int_equal(cs_store_worker_touch(ro, WORKER, NULL, T0, &err), CS_ENOTSUP);
    assert_int_equal(cs_store_count(ro, 0, &counts, &err), CS_OK);
    cs_store_close(ro);
}

static void test_state_names(void **state)
{
    cs_job_state st;
    cs_err err = {0};
    (void)state;
    for (int i = 0; i < CS_JOB_NSTATES; i++) {
        assert_int_equal(cs_job_state_parse(cs_job_state_name((cs_job_state)i), &st, &err), CS_OK);
        assert_int_equal(st, i);
    }
    assert_int_equal(cs_job_state_parse("zombie", &st, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "zombie"));
    assert_string_equal(cs_sweep_state_name(CS_SWEEP_PAUSED), "paused");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
            T(test_migrate_and_reopen),
            T(test_refuse_newer_db),
            T(test_ro_refuses_unmigrated),
            T(test_submit_counts),
            T(test_submit_is_atomic),
            T(test_claim_and_fencing),
            T(test_lease_bound_reports),
            T(test_worker_liveness),
            T(test_lease_expiry),
            T(test_lost_vs_failed),
            T(test_backoff),
            T(test_result_idempotent),
            T(test_cached_reuse_and_force),
            T(test_cancel),
            T(test_cancel_on_expiry),
            T(test_pause_resume),
            T(test_retry),
            T(test_extend),
            T(test_on_failure_stop),
            T(test_max_running),
            T(test_priority_and_fair_share),
            T(test_caps_matching),
            T(test_requirement_columns),
            T(test_malformed_config),
            T(test_bulk_checkpoint),
            T(test_group_commit),
            T(test_batch_without_savepoints),
            T(test_every_transition_logged),
            T(test_control_reads),
            T(test_guard),
            cmocka_unit_test(test_state_names),
    };
    return CS_RUN_TESTS(tests);
}
