/* daemon_util.h - helpers of the daemon integration tests and the dispatch benchmark: a temp
 * folder, a database with synthetic jobs, the real calsweepd binary as a child process, and a
 * REQ client speaking the work protocol. Everything is bounded in time. */
#ifndef CS_TESTS_DAEMON_UTIL_H
#define CS_TESTS_DAEMON_UTIL_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cs_net.h"
#include "cs_proto.h"
#include "cs_store.h"
#include "cs_time.h"
#include "unit/store_synth.h"

/* A TCP port of 127.0.0.1 that nothing holds now, for a test's listener. Ports are taken below
 * Linux's ephemeral range (32768..60999): there the outgoing connections of every concurrent test
 * draw their local ports, and one of them could hold the port between this check and the
 * daemon's bind. The search starts at a place derived from the pid (concurrent tests start apart)
 * and moves on from call to call; a port counts as free when a socket binds it. */
static inline int dt_free_port(void)
{
    static int next;
    if (next == 0) {
        next = (int)(getpid() % 2200) * 10;
    }
    for (int tries = 0; tries < 22000; tries++) {
        int port = 10000 + next++ % 22000, fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0) {
            close(fd);
        }
        if (ok) {
            return port;
        }
    }
    return 0;
}

/* A borrowed string for a cs_msg field (cs_msg_encode only reads it). */
static inline char *dt_mut(const char *s)
{
    union {
        const char *c;
        char *m;
    } u = {.c = s};
    return u.m;
}

typedef struct dt_env {
    char dir[256];
    char db[300];
    char work[320];
    char control[320];
    char log[300];
    pid_t pid;
} dt_env;

static inline void dt_env_init(dt_env *e)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/csd-XXXXXX");
    if (mkdtemp(e->dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(e->db, sizeof e->db, "%s/cs.db", e->dir);
    snprintf(e->work, sizeof e->work, "ipc://%s/work.sock", e->dir);
    snprintf(e->control, sizeof e->control, "ipc://%s/control.sock", e->dir);
    snprintf(e->log, sizeof e->log, "%s/daemon.log", e->dir);
}

static inline void dt_env_fini(dt_env *e)
{
    char cmd[400];
    if (getenv("DT_KEEP") != NULL) {
        return;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", e->dir);
    }
}

/* Adds a sweep of n synthetic jobs (store_synth.h) to the database; returns the sweep id. */
static inline int64_t dt_submit(const char *db, const char *name, size_t first, size_t n,
                                int max_attempts)
{
    cs_store *s = NULL;
    cs_err err = {0};
    cs_synth g;
    cs_sweep_meta m = cs_synth_meta(name);
    cs_store_submit_counts c;
    m.policy.max_attempts = max_attempts;
    m.policy.backoff_base_s = 0.01;
    m.policy.backoff_max_s = 0.01;
    cs_synth_init(&g, first, n);
    if (cs_store_open(db, &s, &err) != CS_OK ||
        cs_store_submit(s, &m, cs_synth_next, &g, false, cs_time_wall_ms(), &c, &err) != CS_OK) {
        fprintf(stderr, "submit: %s\n", err.msg);
        abort();
    }
    cs_store_close(s);
    return c.sweep_id;
}

/* Path of the calsweepd binary (CS_BUILD_DIR/coordinator/calsweepd, or $CALSWEEPD). */
static inline void dt_daemon_path(char *buf, size_t n)
{
    const char *p = getenv("CALSWEEPD");
    if (p != NULL) {
        snprintf(buf, n, "%s", p);
        return;
    }
    const char *b = getenv("CS_BUILD_DIR");
    snprintf(buf, n, "%s/coordinator/calsweepd", b != NULL ? b : "build");
}

/* Starts calsweepd with --db, --work, --control and the extra arguments (NULL-terminated);
 * its stderr goes to e->log. */
static inline pid_t dt_start(dt_env *e, const char *const *extra)
{
    char bin[512];
    char *argv[40];
    size_t k = 0;
    dt_daemon_path(bin, sizeof bin);
    argv[k++] = bin;
    argv[k++] = dt_mut("--db");
    argv[k++] = e->db;
    argv[k++] = dt_mut("--work");
    argv[k++] = e->work;
    argv[k++] = dt_mut("--control");
    argv[k++] = e->control;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && k < 38; i++) {
        argv[k++] = dt_mut(extra[i]);
    }
    argv[k] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(e->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        execv(bin, argv);
        _exit(127);
    }
    e->pid = pid;
    return pid;
}

/* Waits at most timeout_ms for pid; returns its wait status, or -1 after killing it. */
static inline int dt_wait(pid_t pid, int64_t timeout_ms)
{
    int64_t end = cs_time_mono_ms() + timeout_ms;
    int st = 0;
    while (cs_time_mono_ms() < end) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return st;
        }
        cs_time_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

static inline void dt_kill(dt_env *e)
{
    if (e->pid > 0) {
        kill(e->pid, SIGKILL);
        waitpid(e->pid, NULL, 0);
        e->pid = 0;
    }
}

/* A REQ socket on url (resend off: the tests resend themselves). */
static inline nng_socket dt_dial(const char *url, const cs_net_tls *tls)
{
    nng_socket s;
    cs_err err = {0};
    if (cs_net_dial(&s, url, tls, 0, &err) != CS_OK) {
        fprintf(stderr, "dial %s: %s\n", url, err.msg);
        abort();
    }
    nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    return s;
}

/* The instance of every test worker process (CLAIM.instance, BYE.instance); workers differ by name.
 */
#define DT_INSTANCE "d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7"
/* A well-formed lease token that no lease has (2^-128 to collide with a drawn one). */
#define DT_NO_LEASE "00000000000000000000000000000000"

static char dt_model0[] = "models/testbed";
static char dt_backend0[] = "native";
static char *dt_models[] = {dt_model0};
static char *dt_backends[] = {dt_backend0};

static inline void dt_caps(cs_caps *c)
{
    memset(c, 0, sizeof *c);
    c->backends = dt_backends;
    c->n_backends = 1;
    c->models = dt_models;
    c->n_models = 1;
    c->threads = 1;
    c->mem_mb = 1024;
}

/* One call; rep must be fini'd. Returns cs_net_call's code. */
static inline cs_rc dt_call(nng_socket s, const cs_msg *req, cs_msg *rep, int timeout_ms)
{
    cs_err err = {0};
    return cs_net_call(s, req, rep, timeout_ms, &err);
}

static inline cs_rc dt_hello(nng_socket s, const char *worker, const char *token, int timeout_ms,
                             cs_msg *rep)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_HELLO);
    m.token = dt_mut(token);
    m.hello.worker = dt_mut(worker);
    m.hello.host = (char *)"localhost";
    dt_caps(&m.hello.caps);
    return dt_call(s, &m, rep, timeout_ms);
}

/* Waits (at most timeout_ms) until the daemon answers a HELLO. */
static inline bool dt_ready(nng_socket s, const char *token, int64_t timeout_ms)
{
    int64_t end = cs_time_mono_ms() + timeout_ms;
    while (cs_time_mono_ms() < end) {
        cs_msg rep;
        cs_rc rc = dt_hello(s, "probe", token, 500, &rep);
        cs_msg_fini(&rep);
        if (rc == CS_OK) {
            return true;
        }
    }
    return false;
}

static inline cs_rc dt_claim(nng_socket s, const char *worker, const char *token, int timeout_ms,
                             cs_msg *rep)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_CLAIM);
    m.token = dt_mut(token);
    m.claim.worker = dt_mut(worker);
    m.claim.instance = dt_mut(DT_INSTANCE);
    dt_caps(&m.claim.caps);
    return dt_call(s, &m, rep, timeout_ms);
}

/* The result every test RESULT carries: {"host":"localhost","log_path":"/tmp/x.log","metrics":
 * {"arith":{"acc":0.5,"acc_stderr":0.01,"n":100}}} (static storage: never fini'd). */
static inline void dt_fill_result(cs_result *r)
{
    static cs_result_value arith[] = {{"acc", 0.5}, {"acc_stderr", 0.01}};
    static cs_result_task tasks[] = {{"arith", true, 100, arith, 2}};
    memset(r, 0, sizeof *r);
    r->tasks = tasks;
    r->n_tasks = 1;
    r->host = dt_mut("localhost");
    r->log_path = dt_mut("/tmp/x.log");
}

/* RESULT of (job, attempt) by worker under lease (JOB.lease_token); token: the shared token. */
static inline cs_rc dt_result(nng_socket s, const char *worker, const char *lease, int64_t job,
                              int64_t attempt, const char *token, int timeout_ms, cs_msg *rep)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_RESULT);
    m.token = dt_mut(token);
    m.result.worker = dt_mut(worker);
    m.result.lease_token = dt_mut(lease);
    m.result.job_id = job;
    m.result.attempt = attempt;
    dt_fill_result(&m.result.result);
    return dt_call(s, &m, rep, timeout_ms);
}

/* RESULT by worker under lease with a claim for its next job riding on it (protocol v2): JOB,
 * NO_WORK or ERROR. */
static inline cs_rc dt_result_claim(nng_socket s, int64_t job, int64_t attempt, const char *worker,
                                    const char *lease, int timeout_ms, cs_msg *rep)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_RESULT);
    m.result.worker = dt_mut(worker);
    m.result.lease_token = dt_mut(lease);
    m.result.job_id = job;
    m.result.attempt = attempt;
    dt_fill_result(&m.result.result);
    m.result.claim.worker = dt_mut(worker);
    m.result.claim.instance = dt_mut(DT_INSTANCE);
    dt_caps(&m.result.claim.caps);
    return dt_call(s, &m, rep, timeout_ms);
}

/* HEARTBEAT of (job, attempt) by worker under lease. */
static inline cs_rc dt_heartbeat(nng_socket s, const char *worker, const char *lease, int64_t job,
                                 int64_t attempt, int timeout_ms, cs_msg *rep)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_HEARTBEAT);
    m.heartbeat.worker = dt_mut(worker);
    m.heartbeat.lease_token = dt_mut(lease);
    m.heartbeat.job_id = job;
    m.heartbeat.attempt = attempt;
    m.heartbeat.stage = dt_mut("load");
    m.heartbeat.total = 10;
    m.heartbeat.log_tail = dt_mut("loading\n");
    return dt_call(s, &m, rep, timeout_ms);
}

/* FAIL (crash, exit 1) of (job, attempt) by worker under lease. */
static inline cs_rc dt_fail(nng_socket s, const char *worker, const char *lease, int64_t job,
                            int64_t attempt, int timeout_ms, cs_msg *rep)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_FAIL);
    m.fail.worker = dt_mut(worker);
    m.fail.lease_token = dt_mut(lease);
    m.fail.job_id = job;
    m.fail.attempt = attempt;
    m.fail.kind = CS_FAIL_CRASH;
    m.fail.reason = dt_mut("exit 1");
    m.fail.exit_status = 1;
    m.fail.log_tail = dt_mut("boom\n");
    return dt_call(s, &m, rep, timeout_ms);
}

/* BYE of worker process (worker, instance), handing back (job, attempt) under lease when job > 0.
 */
static inline cs_rc dt_bye_as(nng_socket s, const char *worker, const char *instance, int64_t job,
                              int64_t attempt, const char *lease, int timeout_ms, cs_msg *rep)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_BYE);
    m.bye.worker = dt_mut(worker);
    m.bye.instance = dt_mut(instance);
    if (job > 0) {
        m.bye.release_job_id = job;
        m.bye.release_attempt = attempt;
        m.bye.release_lease_token = dt_mut(lease);
    }
    return dt_call(s, &m, rep, timeout_ms);
}

/* BYE of worker (process DT_INSTANCE). */
static inline cs_rc dt_bye(nng_socket s, const char *worker, int64_t job, int64_t attempt,
                           const char *lease, int timeout_ms, cs_msg *rep)
{
    return dt_bye_as(s, worker, DT_INSTANCE, job, attempt, lease, timeout_ms, rep);
}

/* An integer from one SQL query on the database (read-only connection). */
static inline int64_t dt_sql_int(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    } else {
        fprintf(stderr, "sql %s: %s\n", sql, sqlite3_errmsg(h));
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

static inline bool dt_integrity_ok(const char *db)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    bool ok = false;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return ok;
}

#endif
