/* e2e_test.c - end to end with real processes on loopback (ipc://): calsweepd, several
 * calsweep-worker processes, and the TEST runner calsweep-testrun (tests only). Sweeps come from
 * tests/data/sweeps-e2e/ and are submitted into the database before the daemon starts (through
 * the same cs_sweep/cs_expand/cs_store path the daemon uses); results are checked in SQLite.
 * Every wait is bounded; sized for two CPU cores (jobs sleep 10..1500 ms). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cs_expand.h"
#include "cs_sweep.h"
#include "cs_test.h"
#include "integration/daemon_util.h"

#define MAX_WORKERS 8

typedef struct e2e {
    dt_env env;
    pid_t workers[MAX_WORKERS];
    size_t n_workers;
    char src[512], build[512];
} e2e;

static void paths(e2e *t)
{
    const char *s = getenv("CS_SOURCE_DIR"), *b = getenv("CS_BUILD_DIR");
    snprintf(t->src, sizeof t->src, "%s", s ? s : ".");
    snprintf(t->build, sizeof t->build, "%s", b ? b : "build");
}

/* Expands tests/data/sweeps-e2e/<file> into the database; returns the number of jobs. */
static int64_t submit(e2e *t, const char *file)
{
    char path[700];
    cs_sweep *sw = NULL;
    cs_expander *ex = NULL;
    cs_store *s = NULL;
    cs_err err = {0};
    cs_sweep_meta meta;
    cs_store_submit_counts c = {0};
    snprintf(path, sizeof path, "%s/tests/data/sweeps-e2e/%s", t->src, file);
    if (cs_sweep_load(path, &sw, NULL, &err) != CS_OK ||
        cs_expand_create(sw, NULL, &ex, &err) != CS_OK ||
        cs_store_open(t->env.db, &s, &err) != CS_OK) {
        fail_msg("submit %s: %s", file, err.msg);
    }
    cs_sweep_get_meta(sw, &meta);
    if (cs_store_submit(s, &meta, cs_expand_next, ex, false, cs_time_wall_ms(), &c, &err) !=
        CS_OK) {
        fail_msg("submit %s: %s", file, err.msg);
    }
    cs_store_close(s);
    cs_expand_destroy(ex);
    cs_sweep_destroy(sw);
    return (int64_t)c.queued;
}

static pid_t start_daemon(e2e *t, const char *lease_s)
{
    const char *extra[] = {"--lease-s",   lease_s,     "--claim-hold-ms",
                           "300",         "--reap-ms", "200",
                           "--log-level", "warn",      NULL};
    return dt_start(&t->env, extra);
}

/* Starts a worker named name (with --token-file token_file unless NULL); its stderr goes to
 * <dir>/<name>.log. */
static pid_t start_worker_args(e2e *t, const char *name, const char *const *more)
{
    char bin[700], runner[700], work[600], log[600];
    snprintf(bin, sizeof bin, "%s/worker/calsweep-worker", t->build);
    snprintf(runner, sizeof runner, "%s/tests/calsweep-testrun", t->build);
    snprintf(work, sizeof work, "%s/work-%s", t->env.dir, name);
    snprintf(log, sizeof log, "%s/%s.log", t->env.dir, name);
    char *argv[] = {bin,
                    dt_mut("--coordinator"),
                    t->env.work,
                    dt_mut("--name"),
                    dt_mut(name),
                    dt_mut("--model-root"),
                    dt_mut("tests/data/e2e-models"),
                    dt_mut("--runner"),
                    runner,
                    dt_mut("--work-dir"),
                    work,
                    dt_mut("--heartbeat-ms"),
                    dt_mut("300"),
                    dt_mut("--kill-grace-ms"),
                    dt_mut("500"),
                    dt_mut("--threads"),
                    dt_mut("1"),
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL};
    size_t k = 0;
    while (argv[k] != NULL) {
        k++;
    }
    for (size_t i = 0; more != NULL && more[i] != NULL && k + 1 < sizeof argv / sizeof argv[0];
         i++) {
        argv[k++] = dt_mut(more[i]);
    }
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        if (chdir(t->src) != 0) {
            _exit(126);
        }
        execv(bin, argv);
        _exit(127);
    }
    assert_true(pid > 0);
    assert_true(t->n_workers < MAX_WORKERS);
    t->workers[t->n_workers++] = pid;
    return pid;
}

/* Prints the tail of every log of the test folder (on failure). */
static void dump_logs(const e2e *t)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "for f in '%s'/*.log; do echo \"== $f\"; tail -n 15 \"$f\"; done >&2",
             t->env.dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not show the logs of %s\n", t->env.dir);
    }
}

static pid_t start_worker_tok(e2e *t, const char *name, const char *token_file)
{
    const char *more[] = {"--token-file", token_file, NULL};
    return start_worker_args(t, name, token_file != NULL ? more : NULL);
}

static pid_t start_worker(e2e *t, const char *name)
{
    return start_worker_args(t, name, NULL);
}

/* SIGTERM every worker (drain) and expect each to exit 0 within 30 s: an idle worker sends BYE
 * (answered within 5 s, or given up) and exits, but a loaded machine running the sanitized
 * build beside this one stretched that past 10 s twice in about 40 runs. */
static void stop_workers(e2e *t)
{
    for (size_t i = 0; i < t->n_workers; i++) {
        if (t->workers[i] > 0) {
            kill(t->workers[i], SIGTERM);
        }
    }
    for (size_t i = 0; i < t->n_workers; i++) {
        if (t->workers[i] <= 0) {
            continue;
        }
        int st = dt_wait(t->workers[i], 30000);
        t->workers[i] = 0;
        if (!(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            fprintf(stderr, "worker %zu: wait status %#x\n", i, (unsigned)st);
            dump_logs(t);
        }
        assert_true(st >= 0 && WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    t->n_workers = 0;
}

static int64_t sql(e2e *t, const char *q)
{
    for (int i = 0; i < 50; i++) {
        int64_t v = dt_sql_int(t->env.db, q);
        if (v >= 0) {
            return v;
        }
        cs_time_sleep_ms(20);
    }
    return -1;
}

/* Waits until want jobs are done (at most limit_ms). */
static bool wait_done(e2e *t, int64_t want, int64_t limit_ms)
{
    int64_t end = cs_time_mono_ms() + limit_ms;
    while (cs_time_mono_ms() < end) {
        if (sql(t, "SELECT count(*) FROM job WHERE state = 'done'") == want) {
            return true;
        }
        int st = 0;
        if (t->env.pid > 0 && waitpid(t->env.pid, &st, WNOHANG) == t->env.pid) {
            fprintf(stderr, "calsweepd ended unexpectedly (wait status %#x)\n", (unsigned)st);
            t->env.pid = 0;
            dump_logs(t);
            return false;
        }
        cs_time_sleep_ms(100);
    }
    fprintf(stderr, "done: %lld of %lld\n",
            (long long)sql(t, "SELECT count(*) FROM job WHERE state = 'done'"), (long long)want);
    dump_logs(t);
    return false;
}

/* Every job done with exactly one result, its own. */
static void check_one_result_each(e2e *t, int64_t jobs)
{
    assert_int_equal(sql(t, "SELECT count(*) FROM job"), jobs);
    assert_int_equal(sql(t, "SELECT count(*) FROM job WHERE state = 'done'"), jobs);
    assert_int_equal(sql(t, "SELECT count(*) FROM result"), jobs);
    assert_int_equal(sql(t, "SELECT count(DISTINCT job_id) FROM result"), jobs);
    assert_int_equal(sql(t, "SELECT count(*) FROM job j JOIN result r ON r.id = j.result_id "
                            "WHERE r.job_id = j.id AND r.attempt = j.attempt"),
                     jobs);
    /* the test runner's metric is the job id it ran: no result of another job */
    assert_int_equal(sql(t, "SELECT count(*) FROM metric m JOIN job j ON j.id = m.job_id "
                            "WHERE j.baseline = 0 AND m.metric = 'value' AND m.value <> j.id"),
                     0);
    assert_true(dt_integrity_ok(t->env.db));
}

static int setup(void **state)
{
    e2e *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return -1;
    }
    paths(t);
    dt_env_init(&t->env);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    e2e *t = *state;
    for (size_t i = 0; i < t->n_workers; i++) {
        if (t->workers[i] > 0) {
            kill(t->workers[i], SIGKILL);
            waitpid(t->workers[i], NULL, 0);
        }
    }
    dt_kill(&t->env);
    dt_env_fini(&t->env);
    free(t);
    return 0;
}

static void test_sweep_200_four_workers(void **state)
{
    e2e *t = *state;
    int64_t jobs = submit(t, "e2e-200.json");
    assert_int_equal(jobs, 200);
    start_daemon(t, "30");
    char name[32];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "w%d", i);
        start_worker(t, name);
    }
    assert_true(wait_done(t, jobs, 240000));
    stop_workers(t);
    check_one_result_each(t, jobs);
    /* every worker took part, and every attempt is recorded with its log path */
    assert_true(sql(t, "SELECT count(DISTINCT worker) FROM attempt") >= 2);
    assert_int_equal(sql(t, "SELECT count(*) FROM attempt WHERE outcome = 'done' AND log_path "
                            "LIKE '%/stderr.log'"),
                     jobs);
}

static void test_worker_sigkilled(void **state)
{
    e2e *t = *state;
    int64_t jobs = submit(t, "e2e-kill.json");
    start_daemon(t, "2");
    pid_t a = start_worker(t, "doomed");
    /* wait until it runs a slow job (not the instant baseline) */
    int64_t end = cs_time_mono_ms() + 20000;
    while (cs_time_mono_ms() < end &&
           sql(t, "SELECT count(*) FROM job WHERE state = 'running' AND worker = 'doomed' AND "
                  "baseline = 0") < 1) {
        cs_time_sleep_ms(50);
    }
    int64_t victim = sql(t, "SELECT id FROM job WHERE state = 'running' AND worker = 'doomed' "
                            "AND baseline = 0");
    assert_true(victim > 0);
    kill(a, SIGKILL);
    waitpid(a, NULL, 0);
    t->workers[0] = 0;
    start_worker(t, "rescuer");
    assert_true(wait_done(t, jobs, 150000));
    stop_workers(t);
    check_one_result_each(t, jobs);
    char q[256];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM attempt WHERE job_id = %lld AND n = 1 AND "
             "worker = 'doomed' AND outcome = 'expired'",
             (long long)victim);
    assert_int_equal(sql(t, q), 1);
    snprintf(q, sizeof q,
             "SELECT count(*) FROM attempt WHERE job_id = %lld AND outcome = 'done' "
             "AND worker = 'rescuer'",
             (long long)victim);
    assert_int_equal(sql(t, q), 1);
}

static void test_coordinator_sigkilled_5_times(void **state)
{
    e2e *t = *state;
    int64_t jobs = submit(t, "e2e-restart.json");
    start_daemon(t, "30");
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "r%d", i);
        start_worker(t, name);
    }
    for (int k = 0; k < 5; k++) {
        cs_time_sleep_ms(400);
        dt_kill(&t->env);
        cs_time_sleep_ms(150);
        start_daemon(t, "30");
    }
    assert_true(sql(t, "SELECT count(*) FROM job WHERE state = 'done'") < jobs);
    assert_true(wait_done(t, jobs, 240000));
    /* the workers came back on their own: all still alive */
    for (size_t i = 0; i < t->n_workers; i++) {
        assert_int_equal(waitpid(t->workers[i], NULL, WNOHANG), 0);
    }
    stop_workers(t);
    check_one_result_each(t, jobs);
    assert_int_equal(sql(t, "SELECT count(*) FROM job WHERE state IN ('lost', 'failed')"), 0);
}

static void write_token(const char *path, const char *token)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, token, strlen(token)), (ssize_t)strlen(token));
    close(fd);
}

static void test_token_wrong_gets_nothing(void **state)
{
    e2e *t = *state;
    char good[400], bad[400];
    snprintf(good, sizeof good, "%s/token", t->env.dir);
    snprintf(bad, sizeof bad, "%s/bad-token", t->env.dir);
    write_token(good, "the-right-token-0123456789\n");
    write_token(bad, "a-wrong-token-0123456789\n");
    int64_t jobs = submit(t, "e2e-token.json");
    const char *extra[] = {"--claim-hold-ms", "300", "--reap-ms", "200",
                           "--token-file",    good,  NULL};
    dt_start(&t->env, extra);
    start_worker_tok(t, "intruder", bad);
    cs_time_sleep_ms(2000);
    assert_int_equal(sql(t, "SELECT count(*) FROM attempt"), 0);
    assert_int_equal(sql(t, "SELECT count(*) FROM job WHERE state = 'queued'"), jobs);
    start_worker_tok(t, "member", good);
    assert_true(wait_done(t, jobs, 90000));
    assert_int_equal(sql(t, "SELECT count(*) FROM attempt WHERE worker <> 'member'"), 0);
    /* The intruder was told why, once, naming the endpoint, and gave up with exit status 1
     * instead of retrying forever (issue 17). */
    int st = dt_wait(t->workers[0], 10000);
    t->workers[0] = 0;
    assert_true(st >= 0 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    char cmd[900];
    snprintf(cmd, sizeof cmd,
             "grep -q 'calsweepd at %s refused this worker (HELLO: authentication failed)' "
             "'%s/intruder.log'",
             t->env.work, t->env.dir);
    assert_int_equal(system(cmd), 0);
    stop_workers(t);
    check_one_result_each(t, jobs);
}

static void run_sh(const char *dir, const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "cd '%s' && { %s ; } >openssl.log 2>&1", dir, cmd);
    if (system(full) != 0) {
        fail_msg("openssl failed: %s (see %s/openssl.log)", cmd, dir);
    }
}

/* Mutual TLS on tls+tcp://localhost: a worker whose certificate another CA signed gets nothing;
 * one with a certificate of the daemon's CA runs the sweep. */
static void test_tls_worker(void **state)
{
    e2e *t = *state;
    const char *d = t->env.dir;
    char f[8][400];
    run_sh(d, "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca "
              "-keyout ca.key -out ca.crt && "
              "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=evil-ca "
              "-keyout evil.key -out evil.crt && "
              "printf 'subjectAltName=DNS:localhost\\n' > san.ext && "
              "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key "
              "-out server.csr && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
              "-CAcreateserial -days 2 -extfile san.ext -out server.crt && "
              "openssl req -newkey rsa:2048 -nodes -subj /CN=worker -keyout client.key "
              "-out client.csr && openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key "
              "-CAcreateserial -days 2 -out client.crt && "
              "openssl req -newkey rsa:2048 -nodes -subj /CN=worker -keyout bad.key "
              "-out bad.csr && openssl x509 -req -in bad.csr -CA evil.crt -CAkey evil.key "
              "-CAcreateserial -days 2 -out bad.crt");
    static const char *const names[] = {"server.crt", "server.key", "ca.crt", "client.crt",
                                        "client.key", "bad.crt",    "bad.key"};
    for (size_t i = 0; i < 7; i++) {
        snprintf(f[i], sizeof f[i], "%s/%s", d, names[i]);
    }
    snprintf(t->env.work, sizeof t->env.work, "tls+tcp://localhost:%d", dt_free_port());
    int64_t jobs = submit(t, "e2e-token.json");
    const char *extra[] = {"--claim-hold-ms", "300", "--reap-ms", "200", "--tls-cert", f[0],
                           "--tls-key",       f[1],  "--tls-ca",  f[2],  NULL};
    dt_start(&t->env, extra);
    const char *bad[] = {"--tls-cert", f[5], "--tls-key", f[6], "--tls-ca", f[2], NULL};
    start_worker_args(t, "outsider", bad);
    cs_time_sleep_ms(2500);
    assert_int_equal(sql(t, "SELECT count(*) FROM attempt"), 0);
    const char *good[] = {"--tls-cert", f[3], "--tls-key", f[4], "--tls-ca", f[2], NULL};
    start_worker_args(t, "insider", good);
    assert_true(wait_done(t, jobs, 90000));
    assert_int_equal(sql(t, "SELECT count(*) FROM attempt WHERE worker <> 'insider'"), 0);
    stop_workers(t);
    check_one_result_each(t, jobs);
}

static void test_retry_on_failure(void **state)
{
    e2e *t = *state;
    int64_t jobs = submit(t, "e2e-retry.json");
    start_daemon(t, "30");
    start_worker(t, "f0");
    start_worker(t, "f1");
    assert_true(wait_done(t, jobs, 150000));
    stop_workers(t);
    check_one_result_each(t, jobs);
    /* the 5 failing cells failed once (error.json's kind and message kept) and then succeeded */
    assert_int_equal(sql(t, "SELECT count(*) FROM attempt WHERE n = 1 AND outcome = 'failed' "
                            "AND exit_status = 1"),
                     jobs - 1);
    assert_int_equal(sql(t, "SELECT count(*) FROM job WHERE baseline = 0 AND attempt = 2"),
                     jobs - 1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_sweep_200_four_workers, setup, teardown),
            cmocka_unit_test_setup_teardown(test_worker_sigkilled, setup, teardown),
            cmocka_unit_test_setup_teardown(test_coordinator_sigkilled_5_times, setup, teardown),
            cmocka_unit_test_setup_teardown(test_retry_on_failure, setup, teardown),
            cmocka_unit_test_setup_teardown(test_token_wrong_gets_nothing, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tls_worker, setup, teardown),
    };
    const char *only = getenv("E2E_ONLY"); /* run one test by name while debugging */
    if (only != NULL) {
        cmocka_set_test_filter(only);
    }
    return cmocka_run_group_tests_name("e2e", tests, NULL, NULL);
}
