/* daemon_test.c - the real calsweepd binary on ipc:// sockets in a temp folder, driven by a REQ
 * client: the work protocol (claim, resent claim, heartbeat, result, duplicate, stale), the long
 * poll, the reaper, SIGTERM and kill -9 with restart. Every wait is bounded. */
#include <cjson/cJSON.h>
#include <pthread.h>

#include "cs_expand.h"
#include "cs_path.h"
#include "cs_sweep.h"
#include "cs_test.h"
#include "integration/daemon_util.h"

static const char *const fast[] = {"--claim-hold-ms", "300", "--reap-ms", "100",
                                   "--lease-s",       "1",   NULL};

typedef struct fixture {
    dt_env e;
    nng_socket w;
    bool dialed;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    dt_env_init(&f->e);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->dialed) {
        nng_close(f->w);
    }
    dt_kill(&f->e);
    dt_env_fini(&f->e);
    free(f);
    return 0;
}

static void start(fixture *f, const char *const *extra)
{
    dt_start(&f->e, extra);
    if (!f->dialed) {
        f->w = dt_dial(f->e.work, NULL);
        f->dialed = true;
    }
    assert_true(dt_ready(f->w, NULL, 10000));
}

static cs_msg claim_job(nng_socket w, const char *worker)
{
    cs_msg rep;
    assert_int_equal(dt_claim(w, worker, NULL, 5000, &rep), CS_OK);
    if (rep.type != CS_MSG_JOB) {
        fail_msg("CLAIM by %s: got %s", worker, cs_msg_type_name(rep.type));
    }
    return rep;
}

static void expect_error(const cs_msg *rep, cs_rc code)
{
    if (rep->type != CS_MSG_ERROR) {
        fail_msg("expected ERROR %s, got %s", cs_rc_name(code), cs_msg_type_name(rep->type));
    }
    if (rep->error.code != code) {
        fail_msg("expected %s, got %s: %s", cs_rc_name(code), cs_rc_name(rep->error.code),
                 rep->error.message);
    }
}

static void test_work_protocol(void **state)
{
    fixture *f = *state;
    dt_submit(f->e.db, "s", 0, 3, 3);
    start(f, fast);

    cs_msg hello;
    assert_int_equal(dt_hello(f->w, "w1", NULL, 5000, &hello), CS_OK);
    assert_int_equal(hello.type, CS_MSG_OK);
    cs_msg_fini(&hello);
    cs_msg j1 = claim_job(f->w, "w1");
    assert_int_equal(j1.job.attempt, 1);
    /* The attempt records the host the worker named in its HELLO. */
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM attempt WHERE worker = 'w1'"
                                         " AND host = 'localhost'"),
                     1);
    assert_int_equal(j1.job.lease_s, 1);
    assert_non_null(strstr(j1.job.config, "models/testbed"));
    /* The worker resends its CLAIM: the same job, not a second one. */
    cs_msg again = claim_job(f->w, "w1");
    assert_int_equal(again.job.job_id, j1.job.job_id);
    assert_int_equal(again.job.attempt, 1);
    assert_string_equal(again.job.lease_token, j1.job.lease_token);
    cs_msg_fini(&again);

    cs_msg m, rep;
    assert_int_equal(dt_heartbeat(f->w, "w1", j1.job.lease_token, j1.job.job_id, 1, 5000, &rep),
                     CS_OK);
    assert_int_equal(rep.type, CS_MSG_ACK);
    assert_false(rep.ack.cancel);
    cs_msg_fini(&rep);
    /* an attempt that is not running */
    assert_int_equal(dt_heartbeat(f->w, "w1", j1.job.lease_token, j1.job.job_id, 2, 5000, &rep),
                     CS_OK);
    expect_error(&rep, CS_ESTALE);
    cs_msg_fini(&rep);

    /* RESULT, then the same RESULT again (a resend): ACK both, stored once. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
                dt_result(f->w, "w1", j1.job.lease_token, j1.job.job_id, 1, NULL, 5000, &rep),
                CS_OK);
        assert_int_equal(rep.type, CS_MSG_ACK);
        cs_msg_fini(&rep);
    }
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM result WHERE job_id = %lld",
             (long long)j1.job.job_id);
    assert_int_equal(dt_sql_int(f->e.db, sql), 1);
    snprintf(
            sql, sizeof sql,
            "SELECT count(*) FROM job WHERE id = %lld AND state = 'done' AND result_id IS NOT NULL",
            (long long)j1.job.job_id);
    assert_int_equal(dt_sql_int(f->e.db, sql), 1);
    assert_true(dt_sql_int(f->e.db, "SELECT count(*) FROM metric") >= 1);

    /* Wrong message types on the work endpoint: an ERROR, and the daemon goes on. */
    cs_msg_init(&m, CS_MSG_STATUS);
    assert_int_equal(dt_call(f->w, &m, &rep, 5000), CS_OK);
    expect_error(&rep, CS_EPROTO);
    cs_msg_fini(&rep);

    /* FAIL of another job: ACK, and the job waits for its retry. */
    cs_msg j2 = claim_job(f->w, "w2");
    assert_int_not_equal(j2.job.job_id, j1.job.job_id);
    assert_int_equal(
            dt_fail(f->w, "w2", j2.job.lease_token, j2.job.job_id, j2.job.attempt, 5000, &rep),
            CS_OK);
    assert_int_equal(rep.type, CS_MSG_ACK);
    cs_msg_fini(&rep);
    cs_msg_fini(&j2);
    cs_msg_fini(&j1);
}

/* Protocol v2: a claim riding on a RESULT or FAIL. One round trip stores the report and hands
 * out the worker's next job; a resend gets that job again; a stale report claims nothing; with
 * nothing left the reply is NO_WORK at once (no long poll). */
static void test_report_claims_next(void **state)
{
    fixture *f = *state;
    char sql[200];
    cs_msg rep, m;
    dt_submit(f->e.db, "s", 0, 3, 3);
    start(f, (const char *const[]){"--claim-hold-ms", "2000", NULL});

    cs_msg j1 = claim_job(f->w, "w1");
    char lease2[CS_PROTO_TOKEN_LEN + 1], lease3[CS_PROTO_TOKEN_LEN + 1];
    assert_int_equal(dt_result_claim(f->w, j1.job.job_id, 1, "w1", j1.job.lease_token, 5000, &rep),
                     CS_OK);
    if (rep.type != CS_MSG_JOB) {
        fail_msg("RESULT with claim: got %s", cs_msg_type_name(rep.type));
    }
    int64_t j2 = rep.job.job_id;
    snprintf(lease2, sizeof lease2, "%s", rep.job.lease_token);
    assert_int_not_equal(j2, j1.job.job_id);
    assert_int_equal(rep.job.attempt, 1);
    assert_non_null(strstr(rep.job.config, "models/testbed"));
    cs_msg_fini(&rep);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM job WHERE id = %lld AND state = 'done'",
             (long long)j1.job.job_id);
    assert_int_equal(dt_sql_int(f->e.db, sql), 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM job WHERE id = %lld AND state = 'running' AND worker = 'w1'",
             (long long)j2);
    assert_int_equal(dt_sql_int(f->e.db, sql), 1);
    /* The reply was lost and the worker resends: the result is stored once, the same job (and
     * attempt) comes back, no new attempt starts. */
    assert_int_equal(dt_result_claim(f->w, j1.job.job_id, 1, "w1", j1.job.lease_token, 5000, &rep),
                     CS_OK);
    assert_int_equal(rep.type, CS_MSG_JOB);
    assert_int_equal(rep.job.job_id, j2);
    assert_int_equal(rep.job.attempt, 1);
    assert_string_equal(rep.job.lease_token, lease2);
    cs_msg_fini(&rep);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM result WHERE job_id = %lld",
             (long long)j1.job.job_id);
    assert_int_equal(dt_sql_int(f->e.db, sql), 1);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM attempt"), 2);
    /* A stale report (attempt 2 never ran) is refused and claims nothing. */
    assert_int_equal(dt_result_claim(f->w, j2, 2, "w2", lease2, 5000, &rep), CS_OK);
    expect_error(&rep, CS_ESTALE);
    cs_msg_fini(&rep);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM job WHERE worker = 'w2'"), 0);
    /* FAIL with a claim: the failure is recorded, the last job comes back. */
    cs_msg_init(&m, CS_MSG_FAIL);
    m.fail.worker = dt_mut("w1");
    m.fail.lease_token = lease2;
    m.fail.job_id = j2;
    m.fail.attempt = 1;
    m.fail.kind = CS_FAIL_INTERNAL;
    m.fail.reason = (char *)"boom";
    m.fail.exit_status = 1;
    m.fail.log_tail = (char *)"";
    m.fail.claim.worker = (char *)"w1";
    m.fail.claim.instance = dt_mut(DT_INSTANCE);
    dt_caps(&m.fail.claim.caps);
    assert_int_equal(dt_call(f->w, &m, &rep, 5000), CS_OK);
    assert_int_equal(rep.type, CS_MSG_JOB);
    int64_t j3 = rep.job.job_id;
    snprintf(lease3, sizeof lease3, "%s", rep.job.lease_token);
    assert_true(j3 != j1.job.job_id && j3 != j2);
    cs_msg_fini(&rep);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM job WHERE id = %lld AND state = 'retry_wait'",
             (long long)j2);
    assert_int_equal(dt_sql_int(f->e.db, sql), 1);
    /* Nothing left to run (j2 waits for its backoff): NO_WORK, answered at once although
     * claims are held for 2 s. */
    int64_t t0 = cs_time_mono_ms();
    assert_int_equal(dt_result_claim(f->w, j3, 1, "w1", lease3, 5000, &rep), CS_OK);
    assert_int_equal(rep.type, CS_MSG_NO_WORK);
    assert_true(cs_time_mono_ms() - t0 < 1500);
    cs_msg_fini(&rep);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM job WHERE state = 'done'"), 2);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM job WHERE state = 'running'"), 0);
    cs_msg_fini(&j1);
}

static void test_no_work_within_hold(void **state)
{
    fixture *f = *state;
    dt_submit(f->e.db, "s", 0, 1, 3);
    start(f, fast);
    cs_msg j = claim_job(f->w, "w1");
    cs_msg_fini(&j);
    cs_msg rep;
    int64_t t0 = cs_time_mono_ms();
    assert_int_equal(dt_claim(f->w, "w2", NULL, 5000, &rep), CS_OK);
    int64_t took = cs_time_mono_ms() - t0;
    assert_int_equal(rep.type, CS_MSG_NO_WORK);
    cs_msg_fini(&rep);
    if (took < 250 || took > 1500) {
        fail_msg("NO_WORK after %lld ms, want about the 300 ms hold", (long long)took);
    }
}

/* A job whose JOB message cannot be encoded (a policy.timeout_s beyond the protocol's, as an older
 * database may hold) fails once, for good, with the reason; the claim goes on to the next job, so
 * neither the worker nor the other sweeps wait, and nothing is logged again. */
static void test_unsendable_job_fails_once(void **state)
{
    fixture *f = *state;
    cs_store *st = NULL;
    cs_err err = {0};
    cs_synth g;
    cs_store_submit_counts c;
    cs_sweep_meta m = cs_synth_meta("old");
    m.policy.timeout_s = (int64_t)CS_LIMIT_TIMEOUT_S + 86400;
    cs_synth_init(&g, 0, 2);
    assert_int_equal(cs_store_open(f->e.db, &st, &err), CS_OK);
    assert_int_equal(cs_store_submit(st, &m, cs_synth_next, &g, false, cs_time_wall_ms(), &c, &err),
                     CS_OK);
    cs_store_close(st);
    dt_submit(f->e.db, "good", 10, 1, 3);
    start(f, fast);

    cs_msg j = claim_job(f->w, "w1"); /* the good sweep's job, after both old ones failed */
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE j.id = %lld"
             " AND s.name = 'good'",
             (long long)j.job.job_id);
    assert_int_equal(dt_sql_int(f->e.db, sql), 1);
    cs_msg_fini(&j);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM job j JOIN sweep s ON s.id ="
                                         " j.sweep_id WHERE s.name = 'old' AND j.state = 'failed'"
                                         " AND j.attempt = 1"),
                     2);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM attempt WHERE error LIKE"
                                         " '%cannot send this job%timeout_s%'"),
                     2);
    /* Later claims: nothing more to hand out, the failed jobs stay failed, no new log lines. */
    cs_msg rep;
    assert_int_equal(dt_claim(f->w, "w2", NULL, 5000, &rep), CS_OK);
    assert_int_equal(rep.type, CS_MSG_NO_WORK);
    cs_msg_fini(&rep);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM attempt a JOIN job j ON j.id ="
                                         " a.job_id JOIN sweep s ON s.id = j.sweep_id"
                                         " WHERE s.name = 'old'"),
                     2);
    char *log = NULL;
    assert_int_equal(cs_path_read_file(f->e.log, 0, &log, NULL, &err), CS_OK);
    size_t lines = 0;
    for (const char *p = log; (p = strstr(p, "cannot send this job")) != NULL; p++) {
        lines++;
    }
    free(log);
    assert_int_equal(lines, 2);
}

/* A sweep whose grid, models and task sources are not written in sorted order, with an ACDM
 * selector (its reference list names task sources). */
static const char order_sweep[] =
        "{\n  \"name\": \"order\",\n"
        "  \"models\": {\"zz\": {\"folder\": \"models/testbed\", \"arch\": \"qwen2\"},\n"
        "             \"aa\": {\"folder\": \"models/testbed\", \"arch\": \"llama\"}},\n"
        "  \"data\": {\"sources\": {\"prose\": {\"kind\": \"jsonl\", \"path\": \"p.jsonl\"},\n"
        "                         \"zt\": {\"kind\": \"task\", \"path\": \"z.train.jsonl\"},\n"
        "                         \"at\": {\"kind\": \"task\", \"path\": \"a.train.jsonl\"}},\n"
        "           \"eval\": {\"default\": {\"perplexity\": {\"g\": {\"path\": \"h.txt\"}}}}},\n"
        "  \"grid\": {\"seq_len\": [256, 128], \"algorithm\": [\"gptq\", \"awq\"],\n"
        "           \"selector\": [{\"name\": \"acdm\", \"reference\": [\"zt\", \"at\"]}],\n"
        "           \"source\": [\"prose\"]}\n}\n";

/* plan and calsweepd resolve a sweep the same way: the jobs calsweepd stores from a SUBMIT (sent
 * as calsweep submit sends it) have plan's keys, and at equal priority CLAIMs hand them out in
 * plan's order, the written order (grid axes and models as written). */
static void test_dispatch_follows_plan(void **state)
{
    fixture *f = *state;
    cs_sweep *sw = NULL;
    cs_expander *ex = NULL;
    cs_err err = {0};
    cs_cell cell;
    char *keys[32], *configs[32];
    size_t n = 0;
    assert_int_equal(cs_sweep_parse(order_sweep, strlen(order_sweep), "order", &sw, NULL, &err),
                     CS_OK);
    assert_int_equal(cs_expand_create(sw, NULL, &ex, &err), CS_OK);
    while (cs_expand_next(ex, &cell, &err) == CS_OK) {
        assert_true(n < 32);
        keys[n] = cs_strdup(cell.key);
        configs[n] = cs_strdup(cell.config);
        n++;
    }
    assert_int_equal(n, 10);
    cs_expand_destroy(ex);
    cs_sweep_destroy(sw);

    start(f, fast);
    nng_socket ctl = dt_dial(f->e.control, NULL);
    cs_msg m, rep;
    cs_msg_init(&m, CS_MSG_SUBMIT);
    m.submit.sweep = dt_mut(order_sweep);
    assert_int_equal(dt_call(ctl, &m, &rep, 20000), CS_OK);
    if (rep.type != CS_MSG_OK) {
        fail_msg("SUBMIT: %s", rep.error.message);
    }
    cs_msg_fini(&rep);
    nng_close(ctl);

    for (size_t i = 0; i < n; i++) {
        char sql[200], worker[16];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM job WHERE id = %zu AND key = '%s'", i + 1,
                 keys[i]);
        if (dt_sql_int(f->e.db, sql) != 1) {
            fail_msg("stored job %zu does not have plan's key %.12s", i + 1, keys[i]);
        }
        snprintf(worker, sizeof worker, "w%zu", i);
        cs_msg j = claim_job(f->w, worker);
        if (strcmp(j.job.config, configs[i]) != 0) {
            fail_msg("claim %zu got job %lld, not plan's job %zu:\n  %s\n  %s", i,
                     (long long)j.job.job_id, i, j.job.config, configs[i]);
        }
        cs_msg_fini(&j);
        free(keys[i]);
        free(configs[i]);
    }
}

/* The lease of a silent worker expires; the reaper requeues the job and wakes the claim held
 * for another worker, which receives attempt 2; the old attempt's RESULT is refused as stale. */
static void test_reap_and_stale(void **state)
{
    fixture *f = *state;
    dt_submit(f->e.db, "s", 0, 1, 3);
    start(f, fast);
    cs_msg j = claim_job(f->w, "w1");
    int64_t id = j.job.job_id;
    char lease1[CS_PROTO_TOKEN_LEN + 1], lease2[CS_PROTO_TOKEN_LEN + 1] = "";
    snprintf(lease1, sizeof lease1, "%s", j.job.lease_token);
    cs_msg_fini(&j);
    cs_msg rep;
    int64_t end = cs_time_mono_ms() + 8000;
    bool got = false;
    while (!got && cs_time_mono_ms() < end) {
        assert_int_equal(dt_claim(f->w, "w2", NULL, 5000, &rep), CS_OK);
        if (rep.type == CS_MSG_JOB) {
            assert_int_equal(rep.job.job_id, id);
            assert_int_equal(rep.job.attempt, 2);
            snprintf(lease2, sizeof lease2, "%s", rep.job.lease_token);
            got = true;
        } else {
            assert_int_equal(rep.type, CS_MSG_NO_WORK);
        }
        cs_msg_fini(&rep);
    }
    assert_true(got);
    assert_int_equal(dt_result(f->w, "w1", lease1, id, 1, NULL, 5000, &rep), CS_OK);
    expect_error(&rep, CS_ESTALE);
    cs_msg_fini(&rep);
    assert_int_equal(dt_result(f->w, "w2", lease2, id, 2, NULL, 5000, &rep), CS_OK);
    assert_int_equal(rep.type, CS_MSG_ACK);
    cs_msg_fini(&rep);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM result"), 1);
}

static void test_sigterm_clean(void **state)
{
    fixture *f = *state;
    dt_submit(f->e.db, "s", 0, 2, 3);
    start(f, fast);
    cs_msg j = claim_job(f->w, "w1");
    cs_msg rep;
    assert_int_equal(
            dt_result(f->w, "w1", j.job.lease_token, j.job.job_id, j.job.attempt, NULL, 5000, &rep),
            CS_OK);
    cs_msg_fini(&rep);
    cs_msg_fini(&j);
    assert_int_equal(kill(f->e.pid, SIGTERM), 0);
    int st = dt_wait(f->e.pid, 10000);
    f->e.pid = 0;
    assert_true(st != -1 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(dt_integrity_ok(f->e.db));
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM result"), 1);
}

static void test_kill9_restart(void **state)
{
    fixture *f = *state;
    dt_submit(f->e.db, "s", 0, 1, 3);
    start(f, fast);
    cs_msg j = claim_job(f->w, "w1");
    int64_t id = j.job.job_id;
    cs_msg_fini(&j);
    dt_kill(&f->e);
    start(f, fast);
    cs_msg rep;
    int64_t end = cs_time_mono_ms() + 8000;
    bool got = false;
    while (!got && cs_time_mono_ms() < end) {
        assert_int_equal(dt_claim(f->w, "w2", NULL, 5000, &rep), CS_OK);
        if (rep.type == CS_MSG_JOB) {
            assert_int_equal(rep.job.job_id, id);
            assert_int_equal(rep.job.attempt, 2);
            got = true;
        }
        cs_msg_fini(&rep);
    }
    assert_true(got);
    assert_true(dt_integrity_ok(f->e.db));
}

/* Options from --config FILE (flags override it), --log-json, and a bad config refused. */
static void test_config_file(void **state)
{
    fixture *f = *state;
    char cfg[400], bad[400], cmd[600];
    snprintf(cfg, sizeof cfg, "%s/calsweepd.json", f->e.dir);
    snprintf(bad, sizeof bad, "%s/bad.json", f->e.dir);
    FILE *c = fopen(cfg, "w");
    assert_non_null(c);
    fputs("{\"claim-hold-ms\": 300, \"lease-s\": 1, \"reap-ms\": 100, \"log-json\": true,"
          " \"insecure\": false}\n",
          c);
    fclose(c);
    c = fopen(bad, "w");
    assert_non_null(c);
    fputs("{\"claim-hold-msec\": 300}\n", c);
    fclose(c);
    const char *bad_args[] = {"--config", bad, NULL};
    dt_start(&f->e, bad_args);
    int st = dt_wait(f->e.pid, 10000);
    f->e.pid = 0;
    assert_true(st != -1 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 2);
    snprintf(cmd, sizeof cmd, "grep -q 'claim-hold-msec: unknown option' '%s'", f->e.log);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(unlink(f->e.log), 0);

    dt_submit(f->e.db, "s", 0, 1, 3);
    const char *args[] = {"--config", cfg, "--lease-s", "7", NULL};
    start(f, args);
    cs_msg j = claim_job(f->w, "w1");
    assert_int_equal(j.job.lease_s, 7); /* the flag overrides the file */
    cs_msg_fini(&j);
    cs_msg rep;
    int64_t t0 = cs_time_mono_ms();
    assert_int_equal(dt_claim(f->w, "w2", NULL, 5000, &rep), CS_OK);
    int64_t took = cs_time_mono_ms() - t0;
    assert_int_equal(rep.type, CS_MSG_NO_WORK);
    cs_msg_fini(&rep);
    if (took < 250 || took > 1500) {
        fail_msg("NO_WORK after %lld ms, want the 300 ms hold of the config file", (long long)took);
    }
    snprintf(cmd, sizeof cmd, "head -n 1 '%s' | grep -q '^{'", f->e.log);
    assert_int_equal(system(cmd), 0);
}

typedef struct claimer {
    const char *url;
    cs_msg rep;
    cs_rc rc;
    int64_t took_ms;
} claimer;

static void *claim_thread(void *arg)
{
    claimer *c = arg;
    nng_socket s = dt_dial(c->url, NULL);
    int64_t t0 = cs_time_mono_ms();
    c->rc = dt_claim(s, "sleeper", NULL, 8000, &c->rep);
    c->took_ms = cs_time_mono_ms() - t0;
    nng_close(s);
    return NULL;
}

/* A CLAIM held by the long poll (5 s) receives a job as soon as a SUBMIT on the control
 * endpoint creates one, not at the end of the hold. */
static void test_submit_wakes_held_claim(void **state)
{
    fixture *f = *state;
    const char *args[] = {"--claim-hold-ms", "5000", NULL};
    start(f, args);
    claimer c = {.url = f->e.work};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, claim_thread, &c), 0);
    cs_time_sleep_ms(300);
    nng_socket ctl = dt_dial(f->e.control, NULL);
    cs_msg m, rep;
    cs_msg_init(&m, CS_MSG_SUBMIT);
    m.submit.sweep =
            dt_mut("{\"name\":\"wake\",\"models\":{\"m\":{\"folder\":\"models/testbed\"}},"
                   "\"data\":{\"sources\":{\"c4\":{\"kind\":\"jsonl\",\"path\":\"c4.jsonl\"}},"
                   "\"eval\":{\"default\":{\"tasks\":{\"arc\":{\"path\":\"arc.jsonl\"}}}}},"
                   "\"grid\":{\"algorithm\":[\"rtn\"],\"seed\":[0,1]}}");
    assert_int_equal(dt_call(ctl, &m, &rep, 5000), CS_OK);
    if (rep.type != CS_MSG_OK) {
        fail_msg("SUBMIT: %s %s", cs_msg_type_name(rep.type),
                 rep.type == CS_MSG_ERROR ? rep.error.message : "");
    }
    cs_msg_fini(&rep);
    nng_close(ctl);
    pthread_join(th, NULL);
    assert_int_equal(c.rc, CS_OK);
    if (c.rep.type != CS_MSG_JOB) {
        fail_msg("held CLAIM: got %s", cs_msg_type_name(c.rep.type));
    }
    if (c.took_ms > 2500) {
        fail_msg("the held CLAIM was answered after %lld ms, not woken by the SUBMIT",
                 (long long)c.took_ms);
    }
    cs_msg_fini(&c.rep);
}

/* A fake calsweepd on the control socket: answers the CLI's first request (its liveness check)
 * with OK, takes the SUBMIT and dies without answering. */
static void *answer_then_die(void *arg)
{
    nng_socket *s = arg;
    void *in = NULL;
    size_t n = 0;
    char *out = NULL;
    size_t len = 0;
    cs_msg rep;
    if (nng_recv(*s, &in, &n, NNG_FLAG_ALLOC) == 0) {
        nng_free(in, n);
        cs_msg_init(&rep, CS_MSG_OK);
        rep.ok.data = dt_mut("{\"workers\":[]}");
        if (cs_msg_encode(&rep, &out, &len, NULL) == CS_OK) {
            nng_send(*s, out, len, 0);
        }
        free(out);
        if (nng_recv(*s, &in, &n, NNG_FLAG_ALLOC) == 0) {
            nng_free(in, n);
        }
    }
    nng_close(*s);
    return NULL;
}

static void test_cli_submit_daemon_dies(void **state)
{
    fixture *f = *state;
    nng_socket s;
    pthread_t th;
    cs_err err = {0};
    char cmd[2048];
    const char *b = getenv("CS_BUILD_DIR"), *src = getenv("CS_SOURCE_DIR");
    assert_int_equal(cs_net_listen(&s, f->e.control, NULL, &err), CS_OK);
    assert_int_equal(pthread_create(&th, NULL, answer_then_die, &s), 0);
    snprintf(cmd, sizeof cmd,
             "timeout 60 '%s/coordinator/calsweep' --control '%s' --timeout-ms 1000 submit "
             "'%s/tests/data/sweeps/product.json' >/dev/null 2>'%s/cli.err'",
             b ? b : "build", f->e.control, src ? src : ".", f->e.dir);
    int64_t t0 = cs_time_mono_ms();
    int st = system(cmd);
    int64_t took = cs_time_mono_ms() - t0;
    pthread_join(th, NULL);
    /* Exit 3 (unreachable) within a few --timeout-ms, not after the 600 s a big submit may take. */
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 3);
    assert_true(took < 15000);
    snprintf(cmd, sizeof cmd, "grep -q 'went away while handling the request' '%s/cli.err'",
             f->e.dir);
    assert_int_equal(system(cmd), 0);
}

/* Issue 17: reports are bound to the lease. Another connection that knows the running job's id
 * and attempt but not its lease token (or names another worker) is refused: nothing is stored,
 * cached, renewed, failed or handed back, and each refusal is logged with the claimed worker. */
static void test_forged_reports_refused(void **state)
{
    fixture *f = *state;
    char sql[300];
    cs_msg rep;
    dt_submit(f->e.db, "s", 0, 3, 3);
    start(f, (const char *const[]){"--claim-hold-ms", "300", "--lease-s", "30", NULL});
    cs_msg j = claim_job(f->w, "w1");
    int64_t id = j.job.job_id, at = j.job.attempt;
    snprintf(sql, sizeof sql, "SELECT lease_until FROM job WHERE id = %lld", (long long)id);
    int64_t lease_until = dt_sql_int(f->e.db, sql);
    nng_socket adv = dt_dial(f->e.work, NULL);

    static const struct {
        const char *worker, *lease;
    } forgeries[] = {{"w1", DT_NO_LEASE}, {"evil", DT_NO_LEASE}, {"evil", NULL}};
    for (size_t i = 0; i < sizeof forgeries / sizeof forgeries[0]; i++) {
        /* the right token under another name, too */
        const char *lease = forgeries[i].lease ? forgeries[i].lease : j.job.lease_token;
        const char *w = forgeries[i].worker;
        assert_int_equal(dt_result(adv, w, lease, id, at, NULL, 5000, &rep), CS_OK);
        expect_error(&rep, CS_ESTALE);
        assert_non_null(strstr(rep.error.message, "does not hold its lease"));
        cs_msg_fini(&rep);
        assert_int_equal(dt_heartbeat(adv, w, lease, id, at, 5000, &rep), CS_OK);
        expect_error(&rep, CS_ESTALE);
        cs_msg_fini(&rep);
        assert_int_equal(dt_fail(adv, w, lease, id, at, 5000, &rep), CS_OK);
        expect_error(&rep, CS_ESTALE);
        cs_msg_fini(&rep);
        assert_int_equal(dt_bye(adv, w, id, at, lease, 5000, &rep), CS_OK);
        expect_error(&rep, CS_ESTALE);
        cs_msg_fini(&rep);
    }
    /* A report without a lease token is not even a version-3 message. */
    {
        char raw[400];
        void *in = NULL;
        size_t n = 0;
        int len = snprintf(raw, sizeof raw,
                           "{\"v\":4,\"type\":\"RESULT\",\"worker\":\"w1\",\"job_id\":%lld,"
                           "\"attempt\":%lld,\"result\":{\"metrics\":{}}}",
                           (long long)id, (long long)at);
        nng_socket_set_ms(adv, NNG_OPT_RECVTIMEO, 5000);
        assert_int_equal(nng_send(adv, raw, (size_t)len, 0), 0);
        assert_int_equal(nng_recv(adv, &in, &n, NNG_FLAG_ALLOC), 0);
        assert_int_equal(cs_msg_decode(in, n, &rep, NULL), CS_OK);
        nng_free(in, n);
        expect_error(&rep, CS_EPROTO);
        assert_non_null(strstr(rep.error.message, "lease_token"));
        cs_msg_fini(&rep);
    }
    /* A CLAIM under the holder's name from another process never sees its lease. */
    {
        cs_msg m;
        cs_msg_init(&m, CS_MSG_CLAIM);
        m.claim.worker = dt_mut("w1");
        m.claim.instance = dt_mut("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
        dt_caps(&m.claim.caps);
        assert_int_equal(dt_call(adv, &m, &rep, 5000), CS_OK);
        assert_int_equal(rep.type, CS_MSG_JOB);
        assert_int_not_equal(rep.job.job_id, id);
        assert_string_not_equal(rep.job.lease_token, j.job.lease_token);
        cs_msg_fini(&rep);
    }
    nng_close(adv);
    /* Nothing forged left a trace. */
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM result"), 0);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM result_cache"), 0);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM job WHERE id = %lld AND state = 'running' AND lease_until = %lld"
             " AND progress IS NULL",
             (long long)id, (long long)lease_until);
    assert_int_equal(dt_sql_int(f->e.db, sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM attempt WHERE job_id = %lld AND ended IS NULL",
             (long long)id);
    assert_int_equal(dt_sql_int(f->e.db, sql), 1);
    /* Logged with the name the peer claimed. */
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "grep -q 'RESULT from worker \"evil\" refused: store: result of job %lld attempt "
             "%lld refused' '%s'",
             (long long)id, (long long)at, f->e.log);
    assert_int_equal(system(cmd), 0);
    /* The holder's result is stored and cached. */
    assert_int_equal(dt_result(f->w, "w1", j.job.lease_token, id, at, NULL, 5000, &rep), CS_OK);
    assert_int_equal(rep.type, CS_MSG_ACK);
    cs_msg_fini(&rep);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM result"), 1);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM result_cache"), 1);
    cs_msg_fini(&j);
}

/* A RESULT whose metric is null (a NaN or infinity a runner wrote) is refused, even from the
 * lease holder: a job is never done with a metric that is not a number (issue 17). */
static void test_null_metric_refused(void **state)
{
    fixture *f = *state;
    cs_msg m, rep;
    dt_submit(f->e.db, "s", 0, 1, 1);
    start(f, (const char *const[]){"--claim-hold-ms", "300", NULL});
    cs_msg j = claim_job(f->w, "w1");
    /* the encoder refuses a null metric: the message is written by hand */
    char raw[600];
    void *in = NULL;
    size_t n = 0;
    int len = snprintf(raw, sizeof raw,
                       "{\"v\":4,\"type\":\"RESULT\",\"worker\":\"w1\",\"lease_token\":\"%s\","
                       "\"job_id\":%lld,\"attempt\":%lld,\"result\":{\"host\":\"localhost\","
                       "\"metrics\":{\"wiki\":{\"ppl\":null},\"arith\":{\"acc\":0.5}}}}",
                       j.job.lease_token, (long long)j.job.job_id, (long long)j.job.attempt);
    (void)m;
    nng_socket_set_ms(f->w, NNG_OPT_RECVTIMEO, 5000);
    assert_int_equal(nng_send(f->w, raw, (size_t)len, 0), 0);
    assert_int_equal(nng_recv(f->w, &in, &n, NNG_FLAG_ALLOC), 0);
    assert_int_equal(cs_msg_decode(in, n, &rep, NULL), CS_OK);
    nng_free(in, n);
    expect_error(&rep, CS_EPROTO);
    assert_non_null(strstr(rep.error.message, "RESULT.result.metrics.wiki.ppl: not a finite"));
    cs_msg_fini(&rep);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM result"), 0);
    assert_int_equal(
            dt_result(f->w, "w1", j.job.lease_token, j.job.job_id, j.job.attempt, NULL, 5000, &rep),
            CS_OK);
    assert_int_equal(rep.type, CS_MSG_ACK);
    cs_msg_fini(&rep);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM result"), 1);
    cs_msg_fini(&j);
}

typedef struct holder {
    const char *url, *worker;
    cs_msg rep;
    cs_rc rc;
    int64_t took_ms;
} holder;

static void *hold_thread(void *arg)
{
    holder *h = arg;
    nng_socket s = dt_dial(h->url, NULL);
    int64_t t0 = cs_time_mono_ms();
    h->rc = dt_claim(s, h->worker, NULL, 9000, &h->rep);
    h->took_ms = cs_time_mono_ms() - t0;
    nng_close(s);
    return NULL;
}

static void submit_over_control(fixture *f, const char *name)
{
    char doc[600];
    nng_socket ctl = dt_dial(f->e.control, NULL);
    cs_msg m, rep;
    snprintf(doc, sizeof doc,
             "{\"name\":\"%s\",\"models\":{\"m\":{\"folder\":\"models/testbed\"}},"
             "\"data\":{\"sources\":{\"c4\":{\"kind\":\"jsonl\",\"path\":\"c4.jsonl\"}},"
             "\"eval\":{\"default\":{\"tasks\":{\"arc\":{\"path\":\"arc.jsonl\"}}}}},"
             "\"grid\":{\"algorithm\":[\"rtn\"],\"seed\":[0]}}",
             name);
    cs_msg_init(&m, CS_MSG_SUBMIT);
    m.submit.sweep = doc;
    assert_int_equal(dt_call(ctl, &m, &rep, 5000), CS_OK);
    if (rep.type != CS_MSG_OK) {
        fail_msg("SUBMIT: %s %s", cs_msg_type_name(rep.type),
                 rep.type == CS_MSG_ERROR ? rep.error.message : "");
    }
    cs_msg_fini(&rep);
    nng_close(ctl);
}

/* Issue 17: a worker that said BYE is never leased a job through the long-poll CLAIM it still
 * had pending: that claim is answered NO_WORK at once, and a job submitted later stays queued.
 * A BYE from another process of the same name (another instance) leaves the claim alone. */
static void test_bye_ends_pending_claim(void **state)
{
    fixture *f = *state;
    start(f, (const char *const[]){"--claim-hold-ms", "6000", NULL});
    holder h = {.url = f->e.work, .worker = "leaver"};
    pthread_t th;
    cs_msg rep;
    assert_int_equal(pthread_create(&th, NULL, hold_thread, &h), 0);
    cs_time_sleep_ms(300);
    /* not its process: the claim stays held */
    assert_int_equal(
            dt_bye_as(f->w, "leaver", "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", 0, 0, NULL, 5000, &rep),
            CS_OK);
    assert_int_equal(rep.type, CS_MSG_OK);
    cs_msg_fini(&rep);
    cs_time_sleep_ms(200);
    assert_int_equal(dt_bye(f->w, "leaver", 0, 0, NULL, 5000, &rep), CS_OK);
    assert_int_equal(rep.type, CS_MSG_OK);
    cs_msg_fini(&rep);
    cs_time_sleep_ms(300);
    submit_over_control(f, "after-bye");
    pthread_join(th, NULL);
    assert_int_equal(h.rc, CS_OK);
    if (h.rep.type != CS_MSG_NO_WORK) {
        fail_msg("the pending CLAIM of a worker that said BYE got %s",
                 cs_msg_type_name(h.rep.type));
    }
    assert_true(h.took_ms < 3000); /* answered at the BYE, not at the end of the 6 s hold */
    cs_msg_fini(&h.rep);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM attempt"), 0);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM job WHERE state <> 'queued'"), 0);
    /* The same with a job that appears while the claim is held by a worker that stays. */
    holder h2 = {.url = f->e.work, .worker = "stayer"};
    assert_int_equal(pthread_create(&th, NULL, hold_thread, &h2), 0);
    cs_time_sleep_ms(300);
    assert_int_equal(
            dt_bye_as(f->w, "stayer", "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", 0, 0, NULL, 5000, &rep),
            CS_OK);
    cs_msg_fini(&rep);
    submit_over_control(f, "for-stayer");
    pthread_join(th, NULL);
    assert_int_equal(h2.rc, CS_OK);
    assert_int_equal(h2.rep.type, CS_MSG_JOB);
    cs_msg_fini(&h2.rep);
}

/* The data of a control request's OK reply (owned). */
static cJSON *control_data(fixture *f, cs_msg_type t)
{
    nng_socket ctl = dt_dial(f->e.control, NULL);
    cs_msg m, rep;
    cs_msg_init(&m, t);
    if (t == CS_MSG_JOBS) {
        m.jobs.limit = 100;
    }
    assert_int_equal(dt_call(ctl, &m, &rep, 5000), CS_OK);
    assert_int_equal(rep.type, CS_MSG_OK);
    cJSON *d = cJSON_Parse(rep.ok.data);
    assert_non_null(d);
    cs_msg_fini(&rep);
    nng_close(ctl);
    return d;
}

/* WORKERS[].active of worker (-1 when it is not listed). */
static int worker_active(fixture *f, const char *worker)
{
    cJSON *d = control_data(f, CS_MSG_WORKERS), *w;
    int active = -1;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(d, "workers"))
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(w, "name");
        if (cJSON_IsString(name) && strcmp(name->valuestring, worker) == 0) {
            active = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "active"));
        }
    }
    cJSON_Delete(d);
    return active;
}

static int64_t status_workers(fixture *f)
{
    cJSON *d = control_data(f, CS_MSG_STATUS);
    int64_t n = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(d, "workers"));
    cJSON_Delete(d);
    return n;
}

/* Issue 17: last_seen follows every message (a worker that only heartbeats is seen now, not at
 * its HELLO); a worker that said BYE is not active; idle workers are pruned after
 * --worker-prune-s, those running a job are kept. */
static void test_worker_liveness(void **state)
{
    fixture *f = *state;
    cs_msg rep;
    dt_submit(f->e.db, "s", 0, 2, 3);
    start(f, (const char *const[]){"--claim-hold-ms", "300", "--lease-s", "30", "--reap-ms", "100",
                                   "--worker-prune-s", "2", NULL});
    assert_int_equal(dt_hello(f->w, "busy", NULL, 5000, &rep), CS_OK);
    cs_msg_fini(&rep);
    int64_t hello_at = dt_sql_int(f->e.db, "SELECT last_seen FROM worker WHERE id = 'busy'");
    cs_msg j = claim_job(f->w, "busy");
    for (int i = 0; i < 4; i++) { /* 4 s of heartbeats, nothing else */
        cs_time_sleep_ms(1000);
        assert_int_equal(dt_heartbeat(f->w, "busy", j.job.lease_token, j.job.job_id, j.job.attempt,
                                      5000, &rep),
                         CS_OK);
        assert_int_equal(rep.type, CS_MSG_ACK);
        cs_msg_fini(&rep);
    }
    int64_t seen = dt_sql_int(f->e.db, "SELECT last_seen FROM worker WHERE id = 'busy'");
    if (seen - hello_at < 2500) {
        fail_msg("last_seen moved %lld ms in 4 s of heartbeats", (long long)(seen - hello_at));
    }
    /* ...and kept it from being pruned (it also runs a job). */
    assert_int_equal(worker_active(f, "busy"), 1);

    /* A worker that says BYE is no longer active, at once. */
    assert_int_equal(dt_hello(f->w, "leaver", NULL, 5000, &rep), CS_OK);
    cs_msg_fini(&rep);
    assert_int_equal(worker_active(f, "leaver"), 1);
    int64_t before = status_workers(f);
    assert_int_equal(dt_bye(f->w, "leaver", 0, 0, NULL, 5000, &rep), CS_OK);
    cs_msg_fini(&rep);
    assert_int_equal(worker_active(f, "leaver"), 0);
    assert_int_equal(status_workers(f), before - 1);

    /* Fake names are forgotten after --worker-prune-s (2 s); the busy worker stays. */
    for (int i = 0; i < 30; i++) {
        char name[32];
        snprintf(name, sizeof name, "fake-%d", i);
        assert_int_equal(dt_hello(f->w, name, NULL, 5000, &rep), CS_OK);
        cs_msg_fini(&rep);
    }
    assert_true(dt_sql_int(f->e.db, "SELECT count(*) FROM worker WHERE id LIKE 'fake-%'") == 30);
    int64_t end = cs_time_mono_ms() + 8000;
    while (cs_time_mono_ms() < end &&
           dt_sql_int(f->e.db, "SELECT count(*) FROM worker WHERE id LIKE 'fake-%'") > 0) {
        cs_time_sleep_ms(200);
        assert_int_equal(dt_heartbeat(f->w, "busy", j.job.lease_token, j.job.job_id, j.job.attempt,
                                      5000, &rep),
                         CS_OK);
        cs_msg_fini(&rep);
    }
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM worker WHERE id LIKE 'fake-%'"), 0);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM worker WHERE id = 'busy'"), 1);
    cs_msg_fini(&j);
}

/* The row of JOBS (state running) or WORKERS whose member key equals v (owned list d). */
static cJSON *row_by(cJSON *d, const char *list, const char *key, double v)
{
    cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(d, list))
    {
        if (cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r, key)) == v) {
            return r;
        }
    }
    fail_msg("%s: no row with %s %g", list, key, v);
    return NULL;
}

/* Checks a JOBS or WORKERS row's progress: stage, done, total, detail (NULL: null) and stage_ms
 * (0: null); no log_tail. */
static void check_progress(const cJSON *row, const char *stage, const char *detail, double done,
                           double total, double stage_ms)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(row, "progress");
    assert_true(cJSON_IsObject(p));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "stage")), stage);
    if (detail) {
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "detail")),
                            detail);
    } else {
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(p, "detail")));
    }
    if (stage_ms > 0) {
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(p, "stage_ms")) ==
                    stage_ms);
    } else {
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(p, "stage_ms")));
    }
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(p, "done")) == done);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(p, "total")) == total);
    assert_null(cJSON_GetObjectItemCaseSensitive(p, "log_tail"));
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, "heartbeat_at_ms")) >
                1e12);
}

/* Step 11: a HEARTBEAT's stage, detail, counts and stage_ms show in the JOBS and WORKERS replies
 * (the log tail does not); a heartbeat without detail and stage_ms shows them as null; a job that
 * is no longer running shows no progress. */
static void test_heartbeat_progress(void **state)
{
    fixture *f = *state;
    cs_msg m, rep;
    cJSON *d;
    dt_submit(f->e.db, "s", 0, 2, 3);
    start(f, (const char *const[]){"--claim-hold-ms", "300", "--lease-s", "30", NULL});
    assert_int_equal(dt_hello(f->w, "w1", NULL, 5000, &rep), CS_OK);
    cs_msg_fini(&rep);
    cs_msg j = claim_job(f->w, "w1");
    double id = (double)j.job.job_id;

    /* Before any heartbeat: no progress yet. */
    d = control_data(f, CS_MSG_JOBS);
    assert_true(cJSON_IsNull(
            cJSON_GetObjectItemCaseSensitive(row_by(d, "jobs", "id", id), "progress")));
    cJSON_Delete(d);

    cs_msg_init(&m, CS_MSG_HEARTBEAT);
    m.heartbeat.worker = dt_mut("w1");
    m.heartbeat.lease_token = j.job.lease_token;
    m.heartbeat.job_id = j.job.job_id;
    m.heartbeat.attempt = j.job.attempt;
    m.heartbeat.stage = dt_mut("evaluate");
    m.heartbeat.detail = dt_mut("arith_mc");
    m.heartbeat.done = 300;
    m.heartbeat.total = 1000;
    m.heartbeat.stage_ms = 41250;
    m.heartbeat.log_tail = dt_mut("item 300\n");
    assert_int_equal(dt_call(f->w, &m, &rep, 5000), CS_OK);
    assert_int_equal(rep.type, CS_MSG_ACK);
    cs_msg_fini(&rep);
    d = control_data(f, CS_MSG_JOBS);
    check_progress(row_by(d, "jobs", "id", id), "evaluate", "arith_mc", 300, 1000, 41250);
    cJSON_Delete(d);
    d = control_data(f, CS_MSG_WORKERS);
    check_progress(row_by(d, "workers", "job_id", id), "evaluate", "arith_mc", 300, 1000, 41250);
    cJSON_Delete(d);
    /* One UPDATE per heartbeat: the stored progress is the whole of it, log tail included. */
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM job_row WHERE progress LIKE"
                                         " '%\"stage_ms\":41250%' AND progress LIKE '%item 300%'"),
                     1);

    /* An older worker: no detail, no stage_ms. */
    assert_int_equal(
            dt_heartbeat(f->w, "w1", j.job.lease_token, j.job.job_id, j.job.attempt, 5000, &rep),
            CS_OK);
    assert_int_equal(rep.type, CS_MSG_ACK);
    cs_msg_fini(&rep);
    d = control_data(f, CS_MSG_WORKERS);
    check_progress(row_by(d, "workers", "job_id", id), "load", NULL, 0, 10, 0);
    cJSON_Delete(d);

    /* Done: the job row keeps no progress, the worker has no job. */
    assert_int_equal(
            dt_result(f->w, "w1", j.job.lease_token, j.job.job_id, j.job.attempt, NULL, 5000, &rep),
            CS_OK);
    assert_int_equal(rep.type, CS_MSG_ACK);
    cs_msg_fini(&rep);
    d = control_data(f, CS_MSG_JOBS);
    assert_true(cJSON_IsNull(
            cJSON_GetObjectItemCaseSensitive(row_by(d, "jobs", "id", id), "progress")));
    cJSON_Delete(d);
    d = control_data(f, CS_MSG_WORKERS);
    cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(d, "workers"))
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(w, "name")), "w1") == 0) {
            assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(w, "progress")));
            assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(w, "heartbeat_at_ms")));
        }
    }
    cJSON_Delete(d);
    cs_msg_fini(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_work_protocol, setup, teardown),
            cmocka_unit_test_setup_teardown(test_report_claims_next, setup, teardown),
            cmocka_unit_test_setup_teardown(test_no_work_within_hold, setup, teardown),
            cmocka_unit_test_setup_teardown(test_unsendable_job_fails_once, setup, teardown),
            cmocka_unit_test_setup_teardown(test_dispatch_follows_plan, setup, teardown),
            cmocka_unit_test_setup_teardown(test_reap_and_stale, setup, teardown),
            cmocka_unit_test_setup_teardown(test_sigterm_clean, setup, teardown),
            cmocka_unit_test_setup_teardown(test_kill9_restart, setup, teardown),
            cmocka_unit_test_setup_teardown(test_config_file, setup, teardown),
            cmocka_unit_test_setup_teardown(test_submit_wakes_held_claim, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cli_submit_daemon_dies, setup, teardown),
            cmocka_unit_test_setup_teardown(test_forged_reports_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_null_metric_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_bye_ends_pending_claim, setup, teardown),
            cmocka_unit_test_setup_teardown(test_worker_liveness, setup, teardown),
            cmocka_unit_test_setup_teardown(test_heartbeat_progress, setup, teardown),
    };
    return cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
}
