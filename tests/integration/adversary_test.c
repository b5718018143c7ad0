/* adversary_test.c - a real calsweepd and a real calsweep-worker (running the TEST runner
 * calsweep-testrun) work through a small sweep while an adversary connection on the same work
 * socket attacks the worker's running job. Every attack must be refused, nothing forged may be
 * stored or cached, and the sweep must end with the same results as a run without adversary.
 *
 * The attacks are a table (ATTACKS): each builds the raw bytes of one message against a target
 * (the real worker's running job: its id, attempt and worker name, but not its lease token, which
 * only the worker and calsweepd know) and says which ERROR code calsweepd must answer. The loop
 * sends every attack while a job of the worker runs, round after round until the sweep is done.
 * To add an adversary (a key flood, an oversize or deeply nested message, a hostile path, ...),
 * add a builder and a row; a row whose message nng itself may drop sets may_drop.
 *
 * Every wait is bounded; sized for two busy CPU cores (5 jobs of 0.7 s and a baseline). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_expand.h"
#include "cs_sweep.h"
#include "cs_test.h"
#include "integration/daemon_util.h"

#define SWEEP_FILE "e2e-adversary.json"
#define REAL       "real"    /* the honest worker */
#define MALLORY    "mallory" /* a name the adversary makes up */

/* ---- processes --------------------------------------------------------------------------- */

typedef struct run {
    dt_env env;
    pid_t worker;
    char src[512], build[512];
} run;

static void run_init(run *r)
{
    const char *s = getenv("CS_SOURCE_DIR"), *b = getenv("CS_BUILD_DIR");
    memset(r, 0, sizeof *r);
    snprintf(r->src, sizeof r->src, "%s", s ? s : ".");
    snprintf(r->build, sizeof r->build, "%s", b ? b : "build");
    dt_env_init(&r->env);
}

static void run_fini(run *r)
{
    if (r->worker > 0) {
        kill(r->worker, SIGKILL);
        waitpid(r->worker, NULL, 0);
        r->worker = 0;
    }
    dt_kill(&r->env);
    dt_env_fini(&r->env);
}

/* Expands tests/data/sweeps-e2e/SWEEP_FILE into the database (as the daemon would); returns the
 * number of jobs to run. */
static int64_t submit(run *r)
{
    char path[700];
    cs_sweep *sw = NULL;
    cs_expander *ex = NULL;
    cs_store *s = NULL;
    cs_err err = {0};
    cs_sweep_meta meta;
    cs_store_submit_counts c = {0};
    snprintf(path, sizeof path, "%s/tests/data/sweeps-e2e/%s", r->src, SWEEP_FILE);
    if (cs_sweep_load(path, &sw, NULL, &err) != CS_OK ||
        cs_expand_create(sw, NULL, &ex, &err) != CS_OK ||
        cs_store_open(r->env.db, &s, &err) != CS_OK)
        fail_msg("submit %s: %s", SWEEP_FILE, err.msg);
    cs_sweep_get_meta(sw, &meta);
    if (cs_store_submit(s, &meta, cs_expand_next, ex, false, cs_time_wall_ms(), &c, &err) != CS_OK)
        fail_msg("submit %s: %s", SWEEP_FILE, err.msg);
    cs_store_close(s);
    cs_expand_destroy(ex);
    cs_sweep_destroy(sw);
    return (int64_t)c.queued;
}

static void start_daemon(run *r)
{
    const char *extra[] = {"--lease-s",   "30",        "--claim-hold-ms",
                           "300",         "--reap-ms", "200",
                           "--log-level", "info",      NULL};
    dt_start(&r->env, extra);
}

/* calsweep-worker named REAL, in the source folder, its stderr in <dir>/real.log. */
static void start_worker(run *r)
{
    char bin[700], runner[700], work[600], log[600];
    snprintf(bin, sizeof bin, "%s/worker/calsweep-worker", r->build);
    snprintf(runner, sizeof runner, "%s/tests/calsweep-testrun", r->build);
    snprintf(work, sizeof work, "%s/work", r->env.dir);
    snprintf(log, sizeof log, "%s/%s.log", r->env.dir, REAL);
    char *argv[] = {bin,
                    dt_mut("--coordinator"),
                    r->env.work,
                    dt_mut("--name"),
                    dt_mut(REAL),
                    dt_mut("--model-root"),
                    dt_mut("tests/data/e2e-models"),
                    dt_mut("--runner"),
                    runner,
                    dt_mut("--work-dir"),
                    work,
                    dt_mut("--heartbeat-ms"),
                    dt_mut("200"),
                    dt_mut("--threads"),
                    dt_mut("1"),
                    NULL};
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        if (chdir(r->src) != 0)
            _exit(126);
        execv(bin, argv);
        _exit(127);
    }
    assert_true(pid > 0);
    r->worker = pid;
}

static void stop_worker(run *r)
{
    kill(r->worker, SIGTERM);
    int st = dt_wait(r->worker, 10000);
    r->worker = 0;
    assert_true(st >= 0 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void dump_logs(const run *r)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "for f in '%s'/*.log; do echo \"== $f\"; tail -n 20 \"$f\"; done >&2",
             r->env.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not show the logs of %s\n", r->env.dir);
}

static int64_t sql(const run *r, const char *q)
{
    for (int i = 0; i < 50; i++) {
        int64_t v = dt_sql_int(r->env.db, q);
        if (v >= 0)
            return v;
        cs_time_sleep_ms(20);
    }
    return -1;
}

static int64_t n_done(const run *r)
{
    return sql(r, "SELECT count(*) FROM job WHERE state = 'done'");
}

/* ---- the attacks ------------------------------------------------------------------------- */

/* What an adversary knows about its target: the job the real worker runs now. */
typedef struct target {
    int64_t job_id, attempt;
    const char *worker; /* the holder's name: not a secret (calsweep jobs shows it) */
} target;

/* Builds the raw message of an attack (owned; free with free()), *len its length. */
typedef char *(*attack_build)(const target *t, size_t *len);

typedef struct attack {
    const char *name;
    attack_build build;
    cs_rc want;    /* the ERROR code calsweepd must answer */
    bool may_drop; /* nng may drop the message without a reply (oversize, ...) */
} attack;

/* A random, well-formed lease token: the adversary's guess. */
static void guess(char out[CS_PROTO_TOKEN_LEN + 1])
{
    assert_int_equal(cs_proto_new_token(out, NULL), CS_OK);
}

static char *encode(const cs_msg *m, size_t *len)
{
    char *text = NULL;
    cs_err err = {0};
    if (cs_msg_encode(m, &text, len, &err) != CS_OK)
        fail_msg("encode %s: %s", cs_msg_type_name(m->type), err.msg);
    return text;
}

static char *forged_result(const target *t, const char *worker, size_t *len)
{
    char tok[CS_PROTO_TOKEN_LEN + 1];
    cs_msg m;
    guess(tok);
    cs_msg_init(&m, CS_MSG_RESULT);
    m.result.worker = dt_mut(worker);
    m.result.lease_token = tok;
    m.result.job_id = t->job_id;
    m.result.attempt = t->attempt;
    m.result.metrics = dt_mut("{\"test\":{\"value\":-666,\"forged\":1}}");
    m.result.provenance = dt_mut("{\"host\":\"evil\",\"forged\":true}");
    return encode(&m, len);
}

static char *result_holder_name(const target *t, size_t *len)
{
    return forged_result(t, t->worker, len);
}

static char *result_other_name(const target *t, size_t *len)
{
    return forged_result(t, MALLORY, len);
}

/* A forged RESULT that also asks for the next job: refused, so nothing is claimed either. */
static char *result_with_claim(const target *t, size_t *len)
{
    char tok[CS_PROTO_TOKEN_LEN + 1], inst[CS_PROTO_TOKEN_LEN + 1];
    cs_msg m;
    guess(tok);
    guess(inst);
    cs_msg_init(&m, CS_MSG_RESULT);
    m.result.worker = dt_mut(t->worker);
    m.result.lease_token = tok;
    m.result.job_id = t->job_id;
    m.result.attempt = t->attempt;
    m.result.metrics = dt_mut("{\"test\":{\"value\":-666}}");
    m.result.provenance = dt_mut("{\"forged\":true}");
    m.result.claim.worker = dt_mut(t->worker);
    m.result.claim.instance = inst;
    dt_caps(&m.result.claim.caps);
    return encode(&m, len);
}

/* Raw JSON: what a protocol-2 forger would send (no worker, no lease token). */
static char *result_no_token(const target *t, size_t *len)
{
    cs_buf b = {0};
    assert_int_equal(cs_buf_printf(&b,
                                   "{\"v\":3,\"type\":\"RESULT\",\"worker\":\"%s\",\"job_id\":%lld,"
                                   "\"attempt\":%lld,\"metrics\":{\"test\":{\"value\":-666}},"
                                   "\"provenance\":{}}",
                                   t->worker, (long long)t->job_id, (long long)t->attempt),
                     CS_OK);
    *len = b.len;
    return cs_buf_take(&b);
}

static char *result_empty_token(const target *t, size_t *len)
{
    cs_buf b = {0};
    assert_int_equal(cs_buf_printf(&b,
                                   "{\"v\":3,\"type\":\"RESULT\",\"worker\":\"%s\","
                                   "\"lease_token\":\"\",\"job_id\":%lld,\"attempt\":%lld,"
                                   "\"metrics\":{\"test\":{\"value\":-666}},\"provenance\":{}}",
                                   t->worker, (long long)t->job_id, (long long)t->attempt),
                     CS_OK);
    *len = b.len;
    return cs_buf_take(&b);
}

/* A permanent failure (bad_input: no retry) would end the job failed. */
static char *fail_holder_name(const target *t, size_t *len)
{
    char tok[CS_PROTO_TOKEN_LEN + 1];
    cs_msg m;
    guess(tok);
    cs_msg_init(&m, CS_MSG_FAIL);
    m.fail.worker = dt_mut(t->worker);
    m.fail.lease_token = tok;
    m.fail.job_id = t->job_id;
    m.fail.attempt = t->attempt;
    m.fail.kind = CS_FAIL_BAD_INPUT;
    m.fail.reason = dt_mut("forged failure");
    m.fail.exit_status = 1;
    m.fail.log_tail = dt_mut("");
    return encode(&m, len);
}

/* A forged heartbeat would keep the lease alive (and could carry a forged log tail). */
static char *heartbeat_holder_name(const target *t, size_t *len)
{
    char tok[CS_PROTO_TOKEN_LEN + 1];
    cs_msg m;
    guess(tok);
    cs_msg_init(&m, CS_MSG_HEARTBEAT);
    m.heartbeat.worker = dt_mut(t->worker);
    m.heartbeat.lease_token = tok;
    m.heartbeat.job_id = t->job_id;
    m.heartbeat.attempt = t->attempt;
    m.heartbeat.stage = dt_mut("forged");
    m.heartbeat.log_tail = dt_mut("forged log tail\n");
    return encode(&m, len);
}

/* A forged BYE.release_job would requeue the job under the worker's feet. */
static char *bye_release_holder_name(const target *t, size_t *len)
{
    char tok[CS_PROTO_TOKEN_LEN + 1], inst[CS_PROTO_TOKEN_LEN + 1];
    cs_msg m;
    guess(tok);
    guess(inst);
    cs_msg_init(&m, CS_MSG_BYE);
    m.bye.worker = dt_mut(t->worker);
    m.bye.instance = inst;
    m.bye.release_job_id = t->job_id;
    m.bye.release_attempt = t->attempt;
    m.bye.release_lease_token = tok;
    return encode(&m, len);
}

static char *bye_release_no_token(const target *t, size_t *len)
{
    cs_buf b = {0};
    assert_int_equal(cs_buf_printf(&b,
                                   "{\"v\":3,\"type\":\"BYE\",\"worker\":\"%s\",\"instance\":"
                                   "\"" DT_INSTANCE "\",\"release_job\":{\"job_id\":%lld,"
                                   "\"attempt\":%lld}}",
                                   t->worker, (long long)t->job_id, (long long)t->attempt),
                     CS_OK);
    *len = b.len;
    return cs_buf_take(&b);
}

static const attack ATTACKS[] = {
        {"RESULT as the holder, guessed token", result_holder_name, CS_ESTALE, false},
        {"RESULT as another worker, guessed token", result_other_name, CS_ESTALE, false},
        {"RESULT with a claim riding on it", result_with_claim, CS_ESTALE, false},
        {"RESULT without lease_token", result_no_token, CS_EPROTO, false},
        {"RESULT with an empty lease_token", result_empty_token, CS_EPROTO, false},
        {"FAIL bad_input as the holder, guessed token", fail_holder_name, CS_ESTALE, false},
        {"HEARTBEAT as the holder, guessed token", heartbeat_holder_name, CS_ESTALE, false},
        {"BYE.release_job as the holder, guessed token", bye_release_holder_name, CS_ESTALE, false},
        {"BYE.release_job without lease_token", bye_release_no_token, CS_EPROTO, false},
};
#define N_ATTACKS (sizeof ATTACKS / sizeof ATTACKS[0])

typedef struct tally {
    size_t sent[N_ATTACKS], refused[N_ATTACKS], dropped[N_ATTACKS];
    size_t rounds;
} tally;

/* Sends attack a against t on s and checks the answer; false (and a message) when it was not
 * refused as it must be. */
static bool attack_once(nng_socket s, size_t i, const target *t, tally *ty)
{
    const attack *a = &ATTACKS[i];
    size_t len = 0, n = 0;
    void *in = NULL;
    cs_msg rep;
    char *msg = a->build(t, &len);
    int rv = nng_send(s, msg, len, 0);
    free(msg);
    ty->sent[i]++;
    if (rv == 0)
        rv = nng_recv(s, &in, &n, NNG_FLAG_ALLOC);
    if (rv != 0) {
        if (a->may_drop) {
            ty->dropped[i]++;
            return true;
        }
        fprintf(stderr, "attack \"%s\": no reply (%s)\n", a->name, nng_strerror(rv));
        return false;
    }
    cs_rc rc = cs_msg_decode(in, n, &rep, NULL);
    nng_free(in, n);
    if (rc != CS_OK || rep.type != CS_MSG_ERROR || rep.error.code != a->want) {
        fprintf(stderr, "attack \"%s\" on job %lld attempt %lld: got %s %s %s, want ERROR %s\n",
                a->name, (long long)t->job_id, (long long)t->attempt,
                rc == CS_OK ? cs_msg_type_name(rep.type) : "an unreadable reply",
                rc == CS_OK && rep.type == CS_MSG_ERROR ? cs_rc_name(rep.error.code) : "",
                rc == CS_OK && rep.type == CS_MSG_ERROR ? rep.error.message : "",
                cs_rc_name(a->want));
        cs_msg_fini(&rep);
        return false;
    }
    cs_msg_fini(&rep);
    ty->refused[i]++;
    return true;
}

/* The real worker's running job, if there is one now. */
static bool find_target(const run *r, target *t)
{
    t->worker = REAL;
    t->job_id = dt_sql_int(r->env.db, "SELECT coalesce(max(id), 0) FROM job WHERE state = "
                                      "'running' AND worker = '" REAL "'");
    if (t->job_id <= 0)
        return false;
    char q[200];
    snprintf(q, sizeof q, "SELECT attempt FROM job WHERE id = %lld", (long long)t->job_id);
    t->attempt = dt_sql_int(r->env.db, q);
    return t->attempt > 0;
}

/* ---- one run of the sweep ---------------------------------------------------------------- */

/* Runs the sweep with the real worker, attacking while it works when attacking is set. Returns the
 * number of jobs. */
static int64_t run_sweep(run *r, bool attacking, tally *ty)
{
    int64_t jobs = submit(r);
    assert_true(jobs >= 5);
    start_daemon(r);
    start_worker(r);
    nng_socket adv = dt_dial(r->env.work, NULL);
    nng_socket_set_ms(adv, NNG_OPT_RECVTIMEO, 10000);
    nng_socket_set_ms(adv, NNG_OPT_SENDTIMEO, 10000);
    assert_true(dt_ready(adv, NULL, 10000));
    int64_t end = cs_time_mono_ms() + 120000;
    bool ok = true;
    while (ok && n_done(r) < jobs && cs_time_mono_ms() < end) {
        target t;
        if (!attacking || !find_target(r, &t)) {
            cs_time_sleep_ms(20);
            continue;
        }
        for (size_t i = 0; ok && i < N_ATTACKS; i++)
            ok = attack_once(adv, i, &t, ty);
        ty->rounds++;
        cs_time_sleep_ms(5); /* leave the two CPUs of a CI machine to the worker now and then */
    }
    nng_close(adv);
    if (!ok || n_done(r) != jobs) {
        fprintf(stderr, "done %lld of %lld\n", (long long)n_done(r), (long long)jobs);
        dump_logs(r);
    }
    assert_true(ok);
    assert_int_equal(n_done(r), jobs);
    stop_worker(r);
    return jobs;
}

/* (key, the runner's metric) of every job, one per line, sorted: the sweep's results. */
static char *results_of(const run *r)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    cs_buf b = {0};
    assert_int_equal(sqlite3_open_v2(r->env.db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "SELECT j.key, m.task, m.metric, m.value FROM job j "
                                        "JOIN metric m ON m.result_id = j.result_id "
                                        "ORDER BY j.key, m.task, m.metric",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW)
        assert_int_equal(cs_buf_printf(&b, "%s %s %s %.17g\n", sqlite3_column_text(st, 0),
                                       sqlite3_column_text(st, 1), sqlite3_column_text(st, 2),
                                       sqlite3_column_double(st, 3)),
                         CS_OK);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return b.data ? cs_buf_take(&b) : cs_strdup("");
}

/* ---- the test ---------------------------------------------------------------------------- */

static void test_forged_reports_while_a_worker_runs(void **state)
{
    (void)state;
    run ref, adv;
    tally none = {0}, ty = {0};

    /* Without adversary: the results to compare with. */
    run_init(&ref);
    int64_t jobs = run_sweep(&ref, false, &none);
    char *want = results_of(&ref);
    run_fini(&ref);

    run_init(&adv);
    assert_int_equal(run_sweep(&adv, true, &ty), jobs);
    char *got = results_of(&adv);

    /* The attacks ran while jobs ran (several rounds), and each was refused every time. */
    fprintf(stderr, "%zu rounds of %zu attacks\n", ty.rounds, N_ATTACKS);
    assert_true(ty.rounds >= 3);
    for (size_t i = 0; i < N_ATTACKS; i++) {
        assert_int_equal(ty.sent[i], ty.rounds);
        assert_int_equal(ty.refused[i] + ty.dropped[i], ty.sent[i]);
    }
    /* The same results as without the adversary, each the real worker's, from its first attempt:
     * no forged result stored or cached, no forged failure, heartbeat or release took effect. */
    assert_string_equal(got, want);
    assert_int_equal(sql(&adv, "SELECT count(*) FROM result"), jobs);
    assert_int_equal(sql(&adv, "SELECT count(*) FROM result WHERE json LIKE '%forged%' OR json "
                               "LIKE '%evil%'"),
                     0);
    assert_int_equal(sql(&adv, "SELECT count(*) FROM result WHERE json_extract(json, '$.worker') "
                               "= '" REAL "'"),
                     jobs);
    assert_int_equal(sql(&adv, "SELECT count(*) FROM metric WHERE value < 0"), 0);
    assert_int_equal(sql(&adv, "SELECT count(*) FROM result_cache"), jobs);
    assert_int_equal(sql(&adv, "SELECT count(*) FROM result_cache c JOIN result r ON r.id = "
                               "c.result_id WHERE json_extract(r.json, '$.worker') = '" REAL "'"),
                     jobs);
    assert_int_equal(sql(&adv, "SELECT count(*) FROM attempt"), jobs);
    assert_int_equal(sql(&adv, "SELECT count(*) FROM attempt WHERE worker = '" REAL
                               "' AND n = 1 AND outcome = 'done'"),
                     jobs);
    assert_int_equal(sql(&adv, "SELECT count(*) FROM job WHERE progress LIKE '%forged%'"), 0);
    assert_int_equal(sql(&adv, "SELECT count(*) FROM job_event WHERE to_state IN ('failed', "
                               "'retry_wait', 'lost', 'cancelled') OR (to_state = 'queued' AND "
                               "from_state IS NOT NULL)"),
                     0);
    /* The refusals were logged with the names the adversary claimed. */
    char cmd[800];
    snprintf(cmd, sizeof cmd,
             "grep -q 'RESULT from worker \"" MALLORY "\" refused' '%s' && "
             "grep -q 'HEARTBEAT from worker \"" REAL "\" refused' '%s'",
             adv.env.log, adv.env.log);
    if (system(cmd) != 0) {
        dump_logs(&adv);
        fail_msg("the refusals are not in the daemon log");
    }
    assert_true(dt_integrity_ok(adv.env.db));
    free(want);
    free(got);
    run_fini(&adv);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_forged_reports_while_a_worker_runs),
    };
    return cmocka_run_group_tests_name("adversary", tests, NULL, NULL);
}
