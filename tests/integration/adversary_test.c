/* adversary_test.c - a real calsweepd (with a shared token) and a real calsweep-worker (running the
 * TEST runner calsweep-testrun) work through a small sweep while an adversary attacks the daemon
 * on both sockets. Every attack must get the answer its row says, nothing forged may be stored or
 * cached, the daemon must keep answering an ordinary authenticated STATUS within PROBE_MS after
 * each attack, and the sweep must end with the same results as a run without adversary.
 *
 * The attacks are a table (ATTACKS): each builds the raw bytes of one message, for the work or
 * the control socket, against a target (the real worker's running job: its id, attempt and
 * worker name, but not its lease token, which only the worker and calsweepd know), and says which
 * answer calsweepd must give. The loop sends every attack while a job of the worker runs, round
 * after round until the sweep is done. The rows:
 * - forged reports (RESULT, FAIL, HEARTBEAT, BYE.release_job) from an insider who has the shared
 *   token but not the lease: CS_ESTALE, or, without a lease token, a malformed message;
 * - key floods of FLOOD_KEYS (150,000) keys, about 2.3 MB, before authentication (no token or a
 *   wrong one) on both sockets, and after it (a RESULT's metrics, a SUBMIT's sweep);
 * - oversize messages: one byte over the protocol maximum (sockets take a little more, so the
 *   codec refuses it; were it dropped by nng, may_drop accepts that), one at the maximum but
 *   invalid, and a SUBMIT at the maximum whose sweep is over the sweep limit;
 * - JSON nested NEST_DEPTH (100,000) levels deep, bare and inside a document field;
 * - authenticated SUBMITs of sweeps with out-of-range policies (policy.timeout_s, n_samples,
 *   requires.mem_mb): refused naming the JSON path, nothing stored;
 * - authenticated SUBMITs of hostile sweeps naming /etc/passwd as a data file, absolute and
 *   through "..": accepted (paths are the worker's business), and a second worker that runs the
 *   real engine (calsweep-run) fails their jobs bad_input naming the path, without a byte of the
 *   file in any stored error.
 * A malformed message is refused as "authentication failed" (calsweepd tells a peer it cannot
 * authenticate nothing more); the row's decode is then what cs_msg_decode, the daemon's own
 * codec, says about the same bytes, and the daemon log names the reason.
 * To add an adversary, add a builder and a row.
 *
 * Every wait is bounded; sized for two busy CPU cores (16 jobs of 1.2 s, and a baseline run:
 * an ASan build on a busy machine still fits two rounds of attacks). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_expand.h"
#include "cs_limits.h"
#include "cs_sweep.h"
#include "cs_test.h"
#include "integration/daemon_util.h"

#define SWEEP_FILE "e2e-adversary.json"
#define HONEST     "e2e-adversary" /* the name of the sweep in SWEEP_FILE */
#define REAL       "real"          /* the honest worker */
#define RUNNER     "runner"        /* the honest worker that runs calsweep-run (hostile sweeps) */
#define MALLORY    "mallory"       /* a name the adversary makes up */
#define TOKEN      "adversary-test-shared-token"
#define FLOOD_KEYS 150000
#define NEST_DEPTH 100000
#define PROBE_MS   3000  /* the longest an authenticated STATUS may wait after an attack */
#define DROP_MS    1000  /* how long to wait for the reply to a message nng may drop */
#define REPLY_MS   10000 /* how long to wait for any other reply */

/* Jobs of the honest sweep only (the hostile sweeps have theirs). */
#define IN_HONEST "sweep_id = (SELECT id FROM sweep WHERE name = '" HONEST "')"
#define HOSTILE   "(SELECT id FROM sweep WHERE name IN ('adv-abs', 'adv-rel'))"

/* ---- processes --------------------------------------------------------------------------- */

typedef struct run {
    dt_env env;
    pid_t worker, runner;
    char src[512], build[512], token_file[400];
    bool live; /* between run_init and run_fini */
} run;

static void run_init(run *r)
{
    const char *s = getenv("CS_SOURCE_DIR"), *b = getenv("CS_BUILD_DIR");
    memset(r, 0, sizeof *r);
    snprintf(r->src, sizeof r->src, "%s", s ? s : ".");
    snprintf(r->build, sizeof r->build, "%s", b ? b : "build");
    dt_env_init(&r->env);
    r->live = true;
    snprintf(r->token_file, sizeof r->token_file, "%s/token", r->env.dir);
    FILE *f = fopen(r->token_file, "w");
    assert_non_null(f);
    fputs(TOKEN "\n", f);
    fclose(f);
    assert_int_equal(chmod(r->token_file, 0600), 0);
}

static void kill_child(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        *pid = 0;
    }
}

/* Ends whatever r still runs (also when a test failed half-way); no-op unless live. */
static void run_fini(run *r)
{
    if (!r->live) {
        return;
    }
    r->live = false;
    kill_child(&r->worker);
    kill_child(&r->runner);
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
        cs_store_open(r->env.db, &s, &err) != CS_OK) {
        fail_msg("submit %s: %s", SWEEP_FILE, err.msg);
    }
    cs_sweep_get_meta(sw, &meta);
    if (cs_store_submit(s, &meta, cs_expand_next, ex, false, cs_time_wall_ms(), &c, &err) !=
        CS_OK) {
        fail_msg("submit %s: %s", SWEEP_FILE, err.msg);
    }
    cs_store_close(s);
    cs_expand_destroy(ex);
    cs_sweep_destroy(sw);
    return (int64_t)c.queued;
}

static void start_daemon(run *r)
{
    const char *extra[] = {
            "--lease-s",   "30",   "--claim-hold-ms", "300",         "--reap-ms", "200",
            "--log-level", "info", "--token-file",    r->token_file, NULL};
    dt_start(&r->env, extra);
}

/* calsweep-worker named name, in the source folder, its stderr in <dir>/<name>.log; more: its
 * further options (NULL-terminated). */
static pid_t start_worker(run *r, const char *name, char *const *more)
{
    char bin[700], work[600], log[600];
    char *argv[32];
    size_t k = 0;
    snprintf(bin, sizeof bin, "%s/worker/calsweep-worker", r->build);
    snprintf(work, sizeof work, "%s/work-%s", r->env.dir, name);
    snprintf(log, sizeof log, "%s/%s.log", r->env.dir, name);
    char *const base[] = {bin,           dt_mut("--coordinator"),
                          r->env.work,   dt_mut("--name"),
                          dt_mut(name),  dt_mut("--token-file"),
                          r->token_file, dt_mut("--work-dir"),
                          work,          dt_mut("--heartbeat-ms"),
                          dt_mut("200"), dt_mut("--threads"),
                          dt_mut("1"),   NULL};
    for (size_t i = 0; base[i] != NULL; i++) {
        argv[k++] = base[i];
    }
    for (size_t i = 0; more[i] != NULL && k + 1 < sizeof argv / sizeof argv[0]; i++) {
        argv[k++] = more[i];
    }
    argv[k] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        if (chdir(r->src) != 0) {
            _exit(126);
        }
        execv(bin, argv);
        _exit(127);
    }
    assert_true(pid > 0);
    return pid;
}

/* The worker of the honest sweep: the TEST runner, models of tests/data/e2e-models only. */
static void start_real(run *r)
{
    char runner[700];
    snprintf(runner, sizeof runner, "%s/tests/calsweep-testrun", r->build);
    char *const more[] = {dt_mut("--model-root"), dt_mut("tests/data/e2e-models"),
                          dt_mut("--runner"), runner, NULL};
    r->worker = start_worker(r, REAL, more);
}

/* The worker of the hostile sweeps: the real engine (calsweep-run, next to calsweep-worker),
 * models of sweeps/testbed, data files only under sweeps/testbed/data. */
static void start_runner(run *r)
{
    char *const more[] = {dt_mut("--model-root"), dt_mut("sweeps/testbed/models"),
                          dt_mut("--data-root"),  dt_mut("sweeps/testbed/data"),
                          dt_mut("--no-cache"),   NULL};
    r->runner = start_worker(r, RUNNER, more);
}

static void stop_worker(pid_t *pid)
{
    kill(*pid, SIGTERM);
    int st = dt_wait(*pid, 10000);
    *pid = 0;
    assert_true(st >= 0 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* SIGTERM to calsweepd: it must still be there, and stop cleanly. */
static void stop_daemon(run *r)
{
    assert_int_equal(kill(r->env.pid, SIGTERM), 0);
    int st = dt_wait(r->env.pid, 10000);
    r->env.pid = 0;
    assert_true(st >= 0 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void dump_logs(const run *r)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "for f in '%s'/*.log; do echo \"== $f\"; tail -n 20 \"$f\"; done >&2",
             r->env.dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not show the logs of %s\n", r->env.dir);
    }
}

static int64_t sql(const run *r, const char *q)
{
    for (int i = 0; i < 50; i++) {
        int64_t v = dt_sql_int(r->env.db, q);
        if (v >= 0) {
            return v;
        }
        cs_time_sleep_ms(20);
    }
    return -1;
}

static int64_t n_done(const run *r)
{
    return sql(r, "SELECT count(*) FROM job WHERE state = 'done' AND " IN_HONEST);
}

/* ---- the attacks ------------------------------------------------------------------------- */

/* What an adversary knows about its target: the job the real worker runs now. */
typedef struct target {
    int64_t job_id, attempt;
    const char *worker; /* the holder's name: not a secret (calsweep jobs shows it) */
} target;

/* Builds the raw message of an attack (owned; free with free()), *len its length. */
typedef char *(*attack_build)(const target *t, size_t *len);

typedef enum to_socket { TO_WORK, TO_CONTROL } to_socket;

typedef struct attack {
    const char *name;
    attack_build build;
    to_socket to;
    cs_rc want;         /* the ERROR code calsweepd must answer; CS_OK: an OK reply */
    const char *says;   /* the ERROR message contains this (NULL: not checked) */
    const char *decode; /* cs_msg_decode's error on the bytes contains this (NULL: not checked) */
    bool may_drop;      /* nng may drop the message without a reply (oversize, ...) */
} attack;

#define AUTH_FAILED "authentication failed"

/* A random, well-formed lease token: the adversary's guess. */
static void guess(char out[CS_PROTO_TOKEN_LEN + 1])
{
    assert_int_equal(cs_proto_new_token(out, NULL), CS_OK);
}

static char *encode(cs_msg *m, size_t *len)
{
    char *text = NULL;
    cs_err err = {0};
    if (m->token == NULL) {
        m->token = dt_mut(TOKEN); /* an insider: the shared token, but no lease */
    }
    if (cs_msg_encode(m, &text, len, &err) != CS_OK) {
        fail_msg("encode %s: %s", cs_msg_type_name(m->type), err.msg);
    }
    return text;
}

static char *take(cs_buf *b, size_t *len)
{
    *len = b->len;
    return cs_buf_take(b);
}

/* A result of {"test":{"value":-666}} with others (static storage). */
static void forged_fill(cs_result *r, const char *others)
{
    static cs_result_value v[] = {{"value", -666}};
    static cs_result_task t[] = {{"test", false, 0, v, 1}};
    memset(r, 0, sizeof *r);
    r->tasks = t;
    r->n_tasks = 1;
    r->others = dt_mut(others);
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
    forged_fill(&m.result.result, "{\"forged\":true}");
    m.result.result.host = dt_mut("evil");
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
    forged_fill(&m.result.result, "{\"forged\":true}");
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
                                   "{\"v\":4,\"type\":\"RESULT\",\"token\":\"" TOKEN "\","
                                   "\"worker\":\"%s\",\"job_id\":%lld,\"attempt\":%lld,"
                                   "\"result\":{\"metrics\":{\"test\":{\"value\":-666}}}}",
                                   t->worker, (long long)t->job_id, (long long)t->attempt),
                     CS_OK);
    return take(&b, len);
}

static char *result_empty_token(const target *t, size_t *len)
{
    cs_buf b = {0};
    assert_int_equal(
            cs_buf_printf(&b,
                          "{\"v\":4,\"type\":\"RESULT\",\"token\":\"" TOKEN "\","
                          "\"worker\":\"%s\",\"lease_token\":\"\",\"job_id\":%lld,"
                          "\"attempt\":%lld,\"result\":{\"metrics\":{\"test\":{\"value\":-666}}}}",
                          t->worker, (long long)t->job_id, (long long)t->attempt),
            CS_OK);
    return take(&b, len);
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
                                   "{\"v\":4,\"type\":\"BYE\",\"token\":\"" TOKEN "\","
                                   "\"worker\":\"%s\",\"instance\":\"" DT_INSTANCE "\","
                                   "\"release_job\":{\"job_id\":%lld,\"attempt\":%lld}}",
                                   t->worker, (long long)t->job_id, (long long)t->attempt),
                     CS_OK);
    return take(&b, len);
}

/* head, then FLOOD_KEYS members "k000000":1 ..., then tail: about 2.3 MB. */
static char *flood(const char *head, const char *tail, size_t *len)
{
    cs_buf b = {0};
    assert_int_equal(cs_buf_reserve(&b, strlen(head) + 16 * (size_t)FLOOD_KEYS + strlen(tail)),
                     CS_OK);
    assert_int_equal(cs_buf_puts(&b, head), CS_OK);
    for (size_t i = 0; i < FLOOD_KEYS; i++) {
        assert_int_equal(cs_buf_printf(&b, "%s\"k%07zu\":%zu", i ? "," : "", i, i % 10), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, tail), CS_OK);
    return take(&b, len);
}

/* Pre-authentication floods: calsweepd reads the whole message before it can check the token. */
static char *claim_flood_no_token(const target *t, size_t *len)
{
    (void)t;
    return flood("{\"v\":4,\"type\":\"CLAIM\",\"worker\":\"" MALLORY "\",", "}", len);
}

static char *claim_flood_wrong_token(const target *t, size_t *len)
{
    (void)t;
    return flood("{\"v\":4,\"type\":\"CLAIM\",\"token\":\"wrong\",\"worker\":\"" MALLORY "\",", "}",
                 len);
}

static char *status_flood_no_token(const target *t, size_t *len)
{
    (void)t;
    return flood("{\"v\":4,\"type\":\"STATUS\",", "}", len);
}

/* Well-formed but for the token: a SUBMIT whose sweep document is the flood. */
static char *submit_flood_wrong_token(const target *t, size_t *len)
{
    (void)t;
    return flood("{\"v\":4,\"type\":\"SUBMIT\",\"token\":\"wrong\",\"force\":false,\"sweep\":{",
                 "}}", len);
}

/* After authentication: the flood in a document field, where the codec keeps it. */
static char *result_flood_metrics(const target *t, size_t *len)
{
    char tok[CS_PROTO_TOKEN_LEN + 1], head[600];
    guess(tok);
    snprintf(head, sizeof head,
             "{\"v\":4,\"type\":\"RESULT\",\"token\":\"" TOKEN "\",\"worker\":\"%s\","
             "\"lease_token\":\"%s\",\"job_id\":%lld,\"attempt\":%lld,"
             "\"result\":{\"metrics\":{\"test\":{",
             t->worker, tok, (long long)t->job_id, (long long)t->attempt);
    return flood(head, "}}}}", len);
}

static char *submit_flood_token(const target *t, size_t *len)
{
    (void)t;
    return flood("{\"v\":4,\"type\":\"SUBMIT\",\"token\":\"" TOKEN "\",\"force\":false,\"sweep\":{"
                 "\"name\":\"adv-flood\",",
                 "}}", len);
}

/* head, NEST_DEPTH '[' and as many ']', then tail. */
static char *nested(const char *head, const char *tail, size_t *len)
{
    cs_buf b = {0};
    assert_int_equal(cs_buf_reserve(&b, strlen(head) + 2 * (size_t)NEST_DEPTH + strlen(tail)),
                     CS_OK);
    assert_int_equal(cs_buf_puts(&b, head), CS_OK);
    for (size_t i = 0; i < NEST_DEPTH; i++) {
        assert_int_equal(cs_buf_putc(&b, '['), CS_OK);
    }
    for (size_t i = 0; i < NEST_DEPTH; i++) {
        assert_int_equal(cs_buf_putc(&b, ']'), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, tail), CS_OK);
    return take(&b, len);
}

static char *nested_bare(const target *t, size_t *len)
{
    (void)t;
    return nested("", "", len);
}

static char *nested_in_submit(const target *t, size_t *len)
{
    (void)t;
    return nested("{\"v\":4,\"type\":\"SUBMIT\",\"token\":\"" TOKEN "\",\"force\":false,\"sweep\":{"
                  "\"name\":\"adv-nested\",\"grid\":{\"x\":",
                  "}}}", len);
}

/* A HEARTBEAT as the holder whose log_tail pads it to exactly size bytes. */
static char *heartbeat_of_size(const target *t, size_t size, size_t *len)
{
    char tok[CS_PROTO_TOKEN_LEN + 1];
    cs_buf b = {0};
    guess(tok);
    assert_int_equal(cs_buf_printf(&b,
                                   "{\"v\":4,\"type\":\"HEARTBEAT\",\"token\":\"" TOKEN "\","
                                   "\"worker\":\"%s\",\"lease_token\":\"%s\",\"job_id\":%lld,"
                                   "\"attempt\":%lld,\"stage\":\"x\",\"done\":0,\"total\":0,"
                                   "\"log_tail\":\"",
                                   t->worker, tok, (long long)t->job_id, (long long)t->attempt),
                     CS_OK);
    assert_true(b.len + 2 < size);
    size_t pad = size - b.len - 2;
    assert_int_equal(cs_buf_reserve(&b, pad + 2), CS_OK);
    memset(b.data + b.len, 'x', pad);
    b.len += pad;
    b.data[b.len] = '\0';
    assert_int_equal(cs_buf_puts(&b, "\"}"), CS_OK);
    assert_int_equal(b.len, size);
    return take(&b, len);
}

/* One byte over the protocol's limit: nng takes it (sockets accept a little more), the codec
 * refuses it before parsing. */
static char *over_max(const target *t, size_t *len)
{
    return heartbeat_of_size(t, CS_PROTO_MAX_BYTES + 1, len);
}

/* Exactly the limit, well-formed JSON, but its log_tail is far over CS_PROTO_MAX_TEXT. */
static char *at_max_invalid(const target *t, size_t *len)
{
    return heartbeat_of_size(t, CS_PROTO_MAX_BYTES, len);
}

/* An authenticated SUBMIT of doc (a sweep document). */
static char *submit_doc(const char *doc, size_t *len)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_SUBMIT);
    m.submit.sweep = dt_mut(doc);
    return encode(&m, len);
}

/* A sweep for the test runner named name, with models and policy as given (JSON members). */
static char *submit_sweep(const char *name, const char *model_extra, const char *grid_extra,
                          const char *policy, size_t *len)
{
    cs_buf b = {0};
    assert_int_equal(cs_buf_printf(&b,
                                   "{\"name\":\"%s\",\"models\":{\"tiny\":{\"folder\":"
                                   "\"tests/data/e2e-models/tiny\"%s}},\"data\":{\"sources\":{"
                                   "\"c\":{\"kind\":\"jsonl\",\"path\":"
                                   "\"tests/data/e2e-models/none.jsonl\"}},\"eval\":{\"default\":{"
                                   "\"tasks\":{\"t\":{\"path\":"
                                   "\"tests/data/e2e-models/none.jsonl\"}}}}},\"grid\":{"
                                   "\"algorithm\":[\"rtn\"]%s},\"policy\":{%s}}",
                                   name, model_extra, grid_extra, policy),
                     CS_OK);
    char *msg = submit_doc(b.data, len);
    cs_buf_fini(&b);
    return msg;
}

static char *submit_big_timeout(const target *t, size_t *len)
{
    char policy[100];
    (void)t;
    snprintf(policy, sizeof policy, "\"timeout_s\":%lld", (long long)CS_LIMIT_TIMEOUT_S + 1);
    return submit_sweep("adv-timeout", "", "", policy, len);
}

static char *submit_big_samples(const target *t, size_t *len)
{
    char grid[100];
    (void)t;
    snprintf(grid, sizeof grid, ",\"n_samples\":[%lld]", (long long)CS_LIMIT_N_SAMPLES + 1);
    return submit_sweep("adv-samples", "", grid, "", len);
}

static char *submit_big_mem(const target *t, size_t *len)
{
    (void)t;
    return submit_sweep("adv-mem", ",\"requires\":{\"mem_mb\":1000000000000000}", "", "", len);
}

/* A SUBMIT of exactly the protocol's limit whose sweep is over CS_LIMIT_SWEEP_BYTES. */
static char *submit_at_max(const target *t, size_t *len)
{
    const char *head = "{\"v\":4,\"type\":\"SUBMIT\",\"token\":\"" TOKEN "\",\"force\":false,"
                       "\"sweep\":{\"name\":\"adv-big\",\"description\":\"";
    cs_buf b = {0};
    (void)t;
    assert_int_equal(cs_buf_reserve(&b, CS_PROTO_MAX_BYTES), CS_OK);
    assert_int_equal(cs_buf_puts(&b, head), CS_OK);
    size_t pad = CS_PROTO_MAX_BYTES - b.len - 3;
    memset(b.data + b.len, 'd', pad);
    b.len += pad;
    b.data[b.len] = '\0';
    assert_int_equal(cs_buf_puts(&b, "\"}}"), CS_OK);
    assert_int_equal(b.len, CS_PROTO_MAX_BYTES);
    return take(&b, len);
}

/* A sweep for the real engine on the testbed whose data files are /etc/passwd: every job reads
 * a data file (the baseline evaluates, gptq calibrates first). */
static char *submit_hostile(const char *name, const char *path, const char *algorithm, size_t *len)
{
    cs_buf b = {0};
    assert_int_equal(cs_buf_printf(&b,
                                   "{\"name\":\"%s\",\"models\":{\"m\":{\"folder\":"
                                   "\"sweeps/testbed/models/tb-llama\"}},\"data\":{\"sources\":{"
                                   "\"c\":{\"kind\":\"jsonl\",\"path\":\"%s\"}},\"eval\":{"
                                   "\"default\":{\"tasks\":{\"t\":{\"path\":\"%s\"}}}}},"
                                   "\"grid\":{\"algorithm\":[%s],\"n_samples\":[4],"
                                   "\"seq_len\":[32]},\"policy\":{\"max_attempts\":1}}",
                                   name, path, path, algorithm),
                     CS_OK);
    char *msg = submit_doc(b.data, len);
    cs_buf_fini(&b);
    return msg;
}

static char *submit_passwd_abs(const target *t, size_t *len)
{
    (void)t;
    return submit_hostile("adv-abs", "/etc/passwd", "\"none\"", len);
}

/* "../" enough times to climb from any source folder to the root. */
#define CLIMB                                                                                    \
    "../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../" \
    "../"                                                                                        \
    "../"
static char *submit_passwd_rel(const target *t, size_t *len)
{
    (void)t;
    return submit_hostile("adv-rel", CLIMB "etc/passwd",
                          "{\"name\":\"gptq\",\"bits\":4,\"group_size\":32}", len);
}

static const attack ATTACKS[] = {
        /* forged reports from an insider with the shared token, without the lease */
        {"RESULT as the holder, guessed token", result_holder_name, TO_WORK, CS_ESTALE, NULL, NULL,
         false},
        {"RESULT as another worker, guessed token", result_other_name, TO_WORK, CS_ESTALE, NULL,
         NULL, false},
        {"RESULT with a claim riding on it", result_with_claim, TO_WORK, CS_ESTALE, NULL, NULL,
         false},
        {"RESULT without lease_token", result_no_token, TO_WORK, CS_EAUTH, AUTH_FAILED,
         "lease_token", false},
        {"RESULT with an empty lease_token", result_empty_token, TO_WORK, CS_EAUTH, AUTH_FAILED,
         "lease_token", false},
        {"FAIL bad_input as the holder, guessed token", fail_holder_name, TO_WORK, CS_ESTALE, NULL,
         NULL, false},
        {"HEARTBEAT as the holder, guessed token", heartbeat_holder_name, TO_WORK, CS_ESTALE, NULL,
         NULL, false},
        {"BYE.release_job as the holder, guessed token", bye_release_holder_name, TO_WORK,
         CS_ESTALE, NULL, NULL, false},
        {"BYE.release_job without lease_token", bye_release_no_token, TO_WORK, CS_EAUTH,
         AUTH_FAILED, "lease_token", false},
        /* deep nesting and oversize messages (first: the daemon logs the first 5 malformed
         * messages of each second) */
        {"100,000 nested arrays", nested_bare, TO_WORK, CS_EAUTH, AUTH_FAILED,
         "nested deeper than 64 levels", false},
        {"one byte over the protocol's limit", over_max, TO_WORK, CS_EAUTH, AUTH_FAILED,
         "exceed the limit", true},
        {"at the protocol's limit, log_tail too long", at_max_invalid, TO_WORK, CS_EAUTH,
         AUTH_FAILED, "log_tail", false},
        {"SUBMIT with 100,000 nested arrays in its sweep", nested_in_submit, TO_CONTROL, CS_EAUTH,
         AUTH_FAILED, "nested deeper than 64 levels", false},
        {"SUBMIT at the protocol's limit, sweep too long", submit_at_max, TO_CONTROL, CS_ESCHEMA,
         "SUBMIT.sweep: 8388524 bytes, above the limit of 4194304 for a sweep", NULL, false},
        /* key floods, before and after authentication */
        {"CLAIM with 150,000 keys, no token", claim_flood_no_token, TO_WORK, CS_EAUTH, AUTH_FAILED,
         "unknown key", false},
        {"CLAIM with 150,000 keys, wrong token", claim_flood_wrong_token, TO_WORK, CS_EAUTH,
         AUTH_FAILED, "unknown key", false},
        {"STATUS with 150,000 keys, no token", status_flood_no_token, TO_CONTROL, CS_EAUTH,
         AUTH_FAILED, "unknown key", false},
        {"SUBMIT of a 150,000-key sweep, wrong token", submit_flood_wrong_token, TO_CONTROL,
         CS_EAUTH, AUTH_FAILED, NULL, false},
        /* over CS_LIMIT_RESULT_METRICS: the codec refuses it, and a malformed message gets no
         * more than CS_EAUTH where a token is set */
        {"RESULT with 150,000 metrics, guessed token", result_flood_metrics, TO_WORK, CS_EAUTH,
         AUTH_FAILED, NULL, false},
        {"SUBMIT of a 150,000-key sweep", submit_flood_token, TO_CONTROL, CS_ESCHEMA, "unknown key",
         NULL, false},
        /* out-of-range policies: refused naming the path, nothing stored */
        {"SUBMIT with policy.timeout_s over the limit", submit_big_timeout, TO_CONTROL, CS_ESCHEMA,
         "policy.timeout_s: expected an integer in 0..", NULL, false},
        {"SUBMIT with n_samples over the limit", submit_big_samples, TO_CONTROL, CS_ESCHEMA,
         "grid.n_samples[0]: expected an integer in 1..", NULL, false},
        {"SUBMIT with requires.mem_mb 10^15", submit_big_mem, TO_CONTROL, CS_ESCHEMA,
         "models.tiny.requires.mem_mb: expected an integer in 0..", NULL, false},
        /* hostile paths: stored (once), and left to the worker that would read them */
        {"SUBMIT of a sweep reading /etc/passwd", submit_passwd_abs, TO_CONTROL, CS_OK, NULL, NULL,
         false},
        {"SUBMIT of a sweep reading ../../etc/passwd", submit_passwd_rel, TO_CONTROL, CS_OK, NULL,
         NULL, false},
};
#define N_ATTACKS (sizeof ATTACKS / sizeof ATTACKS[0])

typedef struct tally {
    size_t sent[N_ATTACKS], answered[N_ATTACKS], dropped[N_ATTACKS];
    int64_t slowest[N_ATTACKS]; /* ms: the longest wait for the reply */
    int64_t slowest_probe;      /* ms: the longest STATUS after an attack */
    size_t rounds;
} tally;

/* The adversary's sockets and the honest CLI's. */
typedef struct sockets {
    nng_socket work, control, probe;
    const run *r;
} sockets;

static nng_socket dial_for(const run *r, to_socket to, int recv_ms)
{
    nng_socket s = dt_dial(to == TO_WORK ? r->env.work : r->env.control, NULL);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, recv_ms);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 10000);
    return s;
}

/* Whether cs_msg_decode's error on msg contains want (the reason calsweepd keeps to itself). */
static bool decode_says(const attack *a, const char *msg, size_t len)
{
    cs_msg m;
    cs_err err = {0};
    cs_rc rc = cs_msg_decode(msg, len, &m, &err);
    cs_msg_fini(&m);
    if (rc != CS_OK && strstr(err.msg, a->decode) != NULL) {
        return true;
    }
    fprintf(stderr, "attack \"%s\": the codec says %s \"%s\", want \"%s\"\n", a->name,
            cs_rc_name(rc), err.msg, a->decode);
    return false;
}

/* An authenticated STATUS of the honest sweep, as `calsweep status` sends it: must be answered
 * OK within PROBE_MS. */
static bool probe(sockets *ss, tally *ty, const char *after)
{
    cs_msg m, rep;
    cs_msg_init(&m, CS_MSG_STATUS);
    m.token = dt_mut(TOKEN);
    m.status.sweep = dt_mut(HONEST);
    int64_t t0 = cs_time_mono_ms();
    cs_rc rc = dt_call(ss->probe, &m, &rep, PROBE_MS);
    int64_t ms = cs_time_mono_ms() - t0;
    bool ok = rc == CS_OK && rep.type == CS_MSG_OK;
    cs_msg_fini(&rep);
    if (ms > ty->slowest_probe) {
        ty->slowest_probe = ms;
    }
    if (!ok) {
        fprintf(stderr, "STATUS after \"%s\": %s after %lld ms\n", after,
                rc == CS_OK ? "not OK" : cs_rc_name(rc), (long long)ms);
    }
    return ok;
}

/* Sends attack i against t and checks the answer, then that calsweepd still serves a STATUS;
 * false (and a message) when it was not answered as it must be. */
static bool attack_once(sockets *ss, size_t i, const target *t, tally *ty)
{
    const attack *a = &ATTACKS[i];
    size_t len = 0, n = 0;
    void *in = NULL;
    cs_msg rep;
    char *msg = a->build(t, &len);
    bool ok = true;
    if (ty->sent[i] == 0 && a->decode != NULL) {
        ok = decode_says(a, msg, len);
    }
    /* A message nng may drop gets a socket of its own: the pipe it came on may be closed. */
    nng_socket s = a->may_drop ? dial_for(ss->r, a->to, DROP_MS)
                               : (a->to == TO_WORK ? ss->work : ss->control);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, a->may_drop ? DROP_MS : REPLY_MS);
    int64_t t0 = cs_time_mono_ms();
    int rv = nng_send(s, msg, len, 0);
    free(msg);
    ty->sent[i]++;
    if (rv == 0) {
        rv = nng_recv(s, &in, &n, NNG_FLAG_ALLOC);
    }
    int64_t ms = cs_time_mono_ms() - t0;
    if (a->may_drop) {
        nng_close(s);
    }
    if (rv != 0) {
        if (a->may_drop) {
            ty->dropped[i]++;
            return probe(ss, ty, a->name) && ok;
        }
        fprintf(stderr, "attack \"%s\": no reply after %lld ms (%s)\n", a->name, (long long)ms,
                nng_strerror(rv));
        return false;
    }
    if (ms > ty->slowest[i]) {
        ty->slowest[i] = ms;
    }
    cs_rc rc = cs_msg_decode(in, n, &rep, NULL);
    nng_free(in, n);
    bool right = rc == CS_OK &&
                 (a->want == CS_OK ? rep.type == CS_MSG_OK
                                   : rep.type == CS_MSG_ERROR && rep.error.code == a->want &&
                                             (a->says == NULL ||
                                              strstr(rep.error.message, a->says) != NULL));
    if (!right) {
        fprintf(stderr,
                "attack \"%s\" on job %lld attempt %lld: got %s %s \"%s\", want %s %s \"%s\"\n",
                a->name, (long long)t->job_id, (long long)t->attempt,
                rc == CS_OK ? cs_msg_type_name(rep.type) : "an unreadable reply",
                rc == CS_OK && rep.type == CS_MSG_ERROR ? cs_rc_name(rep.error.code) : "",
                rc == CS_OK && rep.type == CS_MSG_ERROR ? rep.error.message : "",
                a->want == CS_OK ? "OK" : "ERROR", a->want == CS_OK ? "" : cs_rc_name(a->want),
                a->says ? a->says : "");
        cs_msg_fini(&rep);
        return false;
    }
    cs_msg_fini(&rep);
    ty->answered[i]++;
    return probe(ss, ty, a->name) && ok;
}

/* The real worker's running job, if there is one now. */
static bool find_target(const run *r, target *t)
{
    t->worker = REAL;
    t->job_id = dt_sql_int(r->env.db, "SELECT coalesce(max(id), 0) FROM job WHERE state = "
                                      "'running' AND worker = '" REAL "'");
    if (t->job_id <= 0) {
        return false;
    }
    char q[200];
    snprintf(q, sizeof q, "SELECT attempt FROM job WHERE id = %lld", (long long)t->job_id);
    t->attempt = dt_sql_int(r->env.db, q);
    return t->attempt > 0;
}

/* ---- one run of the sweep ---------------------------------------------------------------- */

/* Runs the sweep with the real worker, attacking while it works when attacking is set (and then
 * with the second worker for the hostile sweeps). Returns the number of jobs of the sweep. */
static int64_t run_sweep(run *r, bool attacking, tally *ty)
{
    int64_t jobs = submit(r);
    assert_true(jobs >= 5);
    start_daemon(r);
    start_real(r);
    if (attacking) {
        start_runner(r);
    }
    sockets ss = {.r = r};
    ss.work = dial_for(r, TO_WORK, REPLY_MS);
    ss.control = dial_for(r, TO_CONTROL, REPLY_MS);
    ss.probe = dial_for(r, TO_CONTROL, PROBE_MS);
    assert_true(dt_ready(ss.work, TOKEN, 10000));
    int64_t end = cs_time_mono_ms() + 120000;
    bool ok = true;
    while (ok && n_done(r) < jobs && cs_time_mono_ms() < end) {
        target t;
        if (!attacking || !find_target(r, &t)) {
            cs_time_sleep_ms(20);
            continue;
        }
        for (size_t i = 0; ok && i < N_ATTACKS; i++) {
            ok = attack_once(&ss, i, &t, ty);
        }
        ty->rounds++;
        cs_time_sleep_ms(5); /* leave the two CPUs of a CI machine to the worker now and then */
    }
    nng_close(ss.work);
    nng_close(ss.control);
    nng_close(ss.probe);
    if (!ok || n_done(r) != jobs) {
        fprintf(stderr, "done %lld of %lld\n", (long long)n_done(r), (long long)jobs);
        dump_logs(r);
    }
    assert_true(ok);
    assert_int_equal(n_done(r), jobs);
    stop_worker(&r->worker);
    return jobs;
}

/* (key, the runner's metric) of every job of the honest sweep, one per line, sorted: its
 * results. */
static char *results_of(const run *r)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    cs_buf b = {0};
    assert_int_equal(sqlite3_open_v2(r->env.db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
            sqlite3_prepare_v2(h,
                               "SELECT j.key, m.task, m.metric, m.value FROM job j "
                               "JOIN metric m ON m.result_id = j.result_id WHERE j." IN_HONEST
                               " ORDER BY j.key, m.task, m.metric",
                               -1, &st, NULL),
            SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        assert_int_equal(cs_buf_printf(&b, "%s %s %s %.17g\n", sqlite3_column_text(st, 0),
                                       sqlite3_column_text(st, 1), sqlite3_column_text(st, 2),
                                       sqlite3_column_double(st, 3)),
                         CS_OK);
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return b.data ? cs_buf_take(&b) : cs_strdup("");
}

/* Every stored text that could quote a data file: errors, progress, events, logs. */
static char *stored_texts(const run *r)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    cs_buf b = {0};
    assert_int_equal(sqlite3_open_v2(r->env.db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h,
                                        "SELECT coalesce(last_error, '') || coalesce(progress, '') "
                                        "|| coalesce(state_why, '') FROM job UNION ALL "
                                        "SELECT coalesce(error, '') || coalesce(log_path, '') "
                                        "FROM attempt UNION ALL SELECT coalesce(why, '') FROM "
                                        "job_event UNION ALL SELECT json FROM result",
                                        -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        assert_int_equal(cs_buf_printf(&b, "%s\n", sqlite3_column_text(st, 0)), CS_OK);
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return b.data ? cs_buf_take(&b) : cs_strdup("");
}

/* The hostile sweeps: stored once each, every job failed bad_input naming its path and the
 * roots, nothing of /etc/passwd stored anywhere. */
static void check_hostile(run *r)
{
    int64_t end = cs_time_mono_ms() + 60000;
    while (cs_time_mono_ms() < end &&
           sql(r, "SELECT count(*) FROM job WHERE sweep_id IN " HOSTILE
                  " AND state NOT IN ('failed', 'done', 'cancelled')") != 0) {
        cs_time_sleep_ms(50);
    }
    if (sql(r, "SELECT count(*) FROM job WHERE sweep_id IN " HOSTILE " AND (state != 'failed' OR "
               "last_error NOT LIKE 'bad_input: %is outside the allowed roots (%')") != 0) {
        dump_logs(r);
        fail_msg("a job of a hostile sweep did not fail bad_input naming the roots");
    }
    assert_int_equal(sql(r, "SELECT count(*) FROM sweep WHERE name IN ('adv-abs', 'adv-rel')"), 2);
    /* adv-abs: its baseline evaluates /etc/passwd; adv-rel: gptq calibrates from ../etc/passwd,
     * its baseline evaluates it. */
    assert_int_equal(sql(r, "SELECT count(*) FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE "
                            "s.name = 'adv-abs' AND j.last_error LIKE 'bad_input: "
                            "eval.tasks.t.path: /etc/passwd is outside%'"),
                     1);
    assert_int_equal(sql(r, "SELECT count(*) FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE "
                            "s.name = 'adv-rel' AND j.last_error LIKE 'bad_input: "
                            "calibration.source.path: %/../etc/passwd is outside%'"),
                     1);
    assert_int_equal(sql(r, "SELECT count(*) FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE "
                            "s.name = 'adv-rel' AND j.last_error LIKE 'bad_input: "
                            "eval.tasks.t.path: %/../etc/passwd is outside%'"),
                     1);
    assert_int_equal(sql(r, "SELECT count(*) FROM attempt WHERE job_id IN (SELECT id FROM job "
                            "WHERE sweep_id IN " HOSTILE ") AND worker != '" RUNNER "'"),
                     0);
    /* No text of /etc/passwd: its first line, and any "name:x:uid:" entry. */
    char line[64] = "", *texts = stored_texts(r);
    FILE *f = fopen("/etc/passwd", "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    assert_true(strlen(line) >= 8);
    if (strstr(texts, line) != NULL || strstr(texts, ":x:0:") != NULL) {
        fail_msg("text of /etc/passwd is stored:\n%s", texts);
    }
    free(texts);
}

/* With a quiet second behind it (the daemon logs 5 malformed messages a second), a nested and an
 * oversize message once more: the daemon log names why it refused each. */
static void check_logged_reasons(run *r)
{
    const target none = {.job_id = 1, .attempt = 1, .worker = MALLORY};
    const attack_build builds[] = {nested_bare, over_max};
    cs_time_sleep_ms(1100);
    for (size_t i = 0; i < 2; i++) {
        size_t len = 0, n = 0;
        void *in = NULL;
        char *msg = builds[i](&none, &len);
        nng_socket s = dial_for(r, TO_WORK, 10000);
        assert_int_equal(nng_send(s, msg, len, 0), 0);
        free(msg);
        assert_int_equal(nng_recv(s, &in, &n, NNG_FLAG_ALLOC), 0);
        nng_free(in, n);
        nng_close(s);
    }
    char cmd[800];
    snprintf(cmd, sizeof cmd,
             "grep -q 'malformed message: message:1:65: nested deeper than 64 levels' '%s' && "
             "grep -q 'malformed message: message: %zu bytes exceed the limit of %zu' '%s'",
             r->env.log, (size_t)CS_PROTO_MAX_BYTES + 1, (size_t)CS_PROTO_MAX_BYTES, r->env.log);
    if (system(cmd) != 0) {
        dump_logs(r);
        fail_msg("the daemon log does not say why it refused a malformed message");
    }
}

/* ---- the test ---------------------------------------------------------------------------- */

/* The two runs: kept in the fixture so that teardown ends their processes when a test fails
 * half-way (an orphaned calsweepd would hold the test's output open). */
typedef struct fixture {
    run ref, adv;
    char *want, *got; /* the results of ref and adv */
} fixture;

static int setup(void **state)
{
    *state = calloc(1, sizeof(fixture));
    return *state != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    run_fini(&f->ref);
    run_fini(&f->adv);
    free(f->want);
    free(f->got);
    free(f);
    return 0;
}

static void test_adversaries_while_a_worker_runs(void **state)
{
    fixture *f = *state;
    run *ref = &f->ref, *adv = &f->adv;
    tally none = {0}, ty = {0};

    /* Without adversary: the results to compare with. */
    run_init(ref);
    int64_t jobs = run_sweep(ref, false, &none);
    char *want = f->want = results_of(ref);
    stop_daemon(ref);
    run_fini(ref);

    run_init(adv);
    assert_int_equal(run_sweep(adv, true, &ty), jobs);
    char *got = f->got = results_of(adv);

    /* The attacks ran while jobs ran (several rounds), and each was answered as its row says
     * every time, with calsweepd serving a STATUS right after each. */
    fprintf(stderr, "%zu rounds of %zu attacks; the slowest STATUS after one took %lld ms\n",
            ty.rounds, N_ATTACKS, (long long)ty.slowest_probe);
    for (size_t i = 0; i < N_ATTACKS; i++) {
        fprintf(stderr, "  %-50s answered %zu, dropped %zu, slowest reply %lld ms\n",
                ATTACKS[i].name, ty.answered[i], ty.dropped[i], (long long)ty.slowest[i]);
    }
    assert_true(ty.rounds >= 2);
    for (size_t i = 0; i < N_ATTACKS; i++) {
        assert_int_equal(ty.sent[i], ty.rounds);
        assert_int_equal(ty.answered[i] + ty.dropped[i], ty.sent[i]);
        if (!ATTACKS[i].may_drop) {
            assert_int_equal(ty.dropped[i], 0);
        }
    }
    /* The same results as without the adversary, each the real worker's, from its first attempt:
     * no forged result stored or cached, no forged failure, heartbeat or release took effect. */
    assert_string_equal(got, want);
    assert_int_equal(sql(adv, "SELECT count(*) FROM result"), jobs);
    assert_int_equal(sql(adv, "SELECT count(*) FROM result WHERE json LIKE '%forged%' OR json "
                              "LIKE '%evil%'"),
                     0);
    assert_int_equal(sql(adv, "SELECT count(*) FROM result WHERE json_extract(json, '$.worker') "
                              "= '" REAL "'"),
                     jobs);
    assert_int_equal(sql(adv, "SELECT count(*) FROM metric WHERE value < 0"), 0);
    assert_int_equal(sql(adv, "SELECT count(*) FROM result_cache"), jobs);
    assert_int_equal(sql(adv, "SELECT count(*) FROM result_cache c JOIN result r ON r.id = "
                              "c.result_id WHERE json_extract(r.json, '$.worker') = '" REAL "'"),
                     jobs);
    assert_int_equal(sql(adv, "SELECT count(*) FROM attempt WHERE job_id IN (SELECT id FROM job "
                              "WHERE " IN_HONEST ")"),
                     jobs);
    assert_int_equal(sql(adv, "SELECT count(*) FROM attempt WHERE worker = '" REAL
                              "' AND n = 1 AND outcome = 'done'"),
                     jobs);
    assert_int_equal(sql(adv, "SELECT count(*) FROM job WHERE progress LIKE '%forged%'"), 0);
    assert_int_equal(sql(adv, "SELECT count(*) FROM job_event WHERE job_id IN (SELECT id FROM "
                              "job WHERE " IN_HONEST ") AND (to_state IN ('failed', "
                              "'retry_wait', 'lost', 'cancelled') OR (to_state = 'queued' AND "
                              "from_state IS NOT NULL))"),
                     0);
    /* Out-of-range and oversize sweeps stored nothing; the hostile ones were stored once and
     * failed where the worker would have read the file. */
    assert_int_equal(sql(adv, "SELECT count(*) FROM sweep"), 3);
    check_hostile(adv);
    stop_worker(&adv->runner);
    /* The refusals were logged with the names the adversary claimed, and with the reasons. */
    char cmd[800];
    snprintf(cmd, sizeof cmd,
             "grep -q 'RESULT from worker \"" MALLORY "\" refused' '%s' && "
             "grep -q 'HEARTBEAT from worker \"" REAL "\" refused' '%s' && "
             "grep -q 'authentication failed' '%s'",
             adv->env.log, adv->env.log, adv->env.log);
    if (system(cmd) != 0) {
        dump_logs(adv);
        fail_msg("the refusals are not in the daemon log");
    }
    check_logged_reasons(adv);
    stop_daemon(adv);
    assert_true(dt_integrity_ok(adv->env.db));
    run_fini(adv);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_adversaries_while_a_worker_runs, setup, teardown),
    };
    return cmocka_run_group_tests_name("adversary", tests, NULL, NULL);
}
