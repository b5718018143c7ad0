/* agent_test.c - the worker agent (cs_agent, cs_child) against a scripted coordinator: a thread
 * with an nng REP socket answers HELLO/CLAIM/HEARTBEAT/RESULT/FAIL/BYE as each test asks (JOB,
 * ACK{cancel}, ERROR CS_ESTALE, a transient error, a restart), and records what the agent sent.
 * The job runners are small shell scripts written by the tests, plus calsweep-testrun. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_agent.h"
#include "cs_alloc.h"
#include "cs_child.h"
#include "cs_net.h"
#include "cs_path.h"
#include "cs_proto.h"
#include "cs_test.h"
#include "cs_time.h"

enum peer_mode {
    MODE_PLAIN = 0,
    MODE_CANCEL,       /* ACK{cancel} to heartbeats */
    MODE_STALE,        /* ERROR CS_ESTALE to heartbeats */
    MODE_RESULT_RETRY, /* the first RESULT/FAIL gets ERROR CS_EDB */
    MODE_RESTART,      /* the first heartbeat: no reply, close and reopen the socket */
    MODE_AUTH,         /* every request: ERROR CS_EAUTH, as calsweepd answers a wrong token */
};

typedef struct peer {
    char url[256];
    nng_socket sock;
    pthread_t th;
    pthread_mutex_t mu;
    volatile bool stop;
    enum peer_mode mode;
    int jobs_to_give;
    const char *config;
    int64_t timeout_s;
    int64_t lease_s; /* 0 = 30 */
    /* records (under mu) */
    int n[CS_MSG_TYPE_COUNT];
    int jobs_given;
    int report_claims; /* RESULTs/FAILs that carried a claim */
    bool restarted, first_report_refused;
    char hb_stage[64];
    int64_t hb_done, hb_total;
    char hb_detail[64];         /* the latest heartbeat's detail, "" = absent */
    int64_t hb_stage_ms;        /* the latest heartbeat's stage_ms */
    int64_t hb_plain_ms_max;    /* the largest stage_ms of a heartbeat without detail */
    int64_t hb_detail_first_ms; /* stage_ms of the first heartbeat with a detail, -1 = none */
    char hb_tail[4096];
    char metrics[1024], provenance[4096];
    char result_wire[8192]; /* the last RESULT as it came over the wire */
    cs_fail_kind fail_kind;
    int64_t fail_exit, fail_signal;
    char fail_reason[2048], fail_tail[4096];
    int64_t bye_release_id, bye_release_attempt;
    char token_seen[64];
    /* protocol v3: the lease token of each job handed out (job 41 + i), the instance of the
     * first CLAIM, and every report that named the wrong worker, lease or instance */
    char leases[8][CS_PROTO_TOKEN_LEN + 1];
    char instance[CS_PROTO_TOKEN_LEN + 1];
    int lease_mismatch;
} peer;

typedef struct fixture {
    char dir[256];
    char work[300];
    char runner[300];
    peer p;
    cs_agent_cfg cfg;
    cs_agent *agent;
    pthread_t th;
    cs_rc run_rc;
    volatile bool run_done; /* cs_agent_run returned */
} fixture;

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* The lease token of job id, as this peer hands it out (NULL for a job it never gave). */
static const char *lease_of(peer *p, int64_t id)
{
    int64_t i = id - 41;
    if (i < 0 || i >= 8 || i >= p->jobs_given) {
        return NULL;
    }
    return p->leases[i];
}

/* A JOB reply for the next job, with a fresh lease token. */
static void give_job(peer *p, cs_msg *rep)
{
    int i = p->jobs_given;
    cs_msg_init(rep, CS_MSG_JOB);
    rep->job.job_id = 41 + i;
    rep->job.attempt = 1;
    assert_true(i < 8);
    assert_int_equal(cs_proto_new_token(p->leases[i], NULL), CS_OK);
    rep->job.lease_token = p->leases[i];
    rep->job.lease_s = p->lease_s > 0 ? p->lease_s : 30;
    rep->job.timeout_s = p->timeout_s;
    rep->job.config = p->config;
    p->jobs_given++;
}

/* Checks that a report about job names this worker and the job's lease token. */
static void check_lease(peer *p, const char *worker, int64_t job, const char *lease)
{
    const char *want = lease_of(p, job);
    if (worker == NULL || strcmp(worker, "w1") != 0 || want == NULL ||
        !cs_proto_token_eq(want, lease)) {
        fprintf(stderr, "peer: report for job %lld by %s names the wrong lease\n", (long long)job,
                worker ? worker : "(none)");
        p->lease_mismatch++;
    }
}

/* Checks that a CLAIM (or BYE) names the instance of the agent's first CLAIM. */
static void check_instance(peer *p, const char *instance)
{
    if (!cs_proto_token_ok(instance)) {
        p->lease_mismatch++;
    } else if (p->instance[0] == '\0') {
        copy(p->instance, sizeof p->instance, instance);
    } else if (strcmp(p->instance, instance) != 0) {
        p->lease_mismatch++;
    }
}

static void peer_reply(peer *p, const cs_msg *req, cs_msg *rep, bool *drop)
{
    *drop = false;
    p->n[req->type]++;
    copy(p->token_seen, sizeof p->token_seen, req->token);
    if (p->mode == MODE_AUTH) {
        cs_msg_init(rep, CS_MSG_ERROR);
        rep->error.code = CS_EAUTH;
        rep->error.message = "authentication failed";
        return;
    }
    switch (req->type) {
    case CS_MSG_HELLO:
    case CS_MSG_BYE:
        if (req->type == CS_MSG_BYE) {
            p->bye_release_id = req->bye.release_job_id;
            p->bye_release_attempt = req->bye.release_attempt;
            check_instance(p, req->bye.instance);
            if (req->bye.release_job_id > 0) {
                check_lease(p, req->bye.worker, req->bye.release_job_id,
                            req->bye.release_lease_token);
            }
        }
        cs_msg_init(rep, CS_MSG_OK);
        break;
    case CS_MSG_CLAIM:
        check_instance(p, req->claim.instance);
        if (p->jobs_given < p->jobs_to_give) {
            give_job(p, rep);
        } else {
            cs_msg_init(rep, CS_MSG_NO_WORK);
            rep->no_work.retry_ms = 50;
        }
        break;
    case CS_MSG_HEARTBEAT:
        check_lease(p, req->heartbeat.worker, req->heartbeat.job_id, req->heartbeat.lease_token);
        copy(p->hb_stage, sizeof p->hb_stage, req->heartbeat.stage);
        copy(p->hb_tail, sizeof p->hb_tail, req->heartbeat.log_tail);
        p->hb_done = req->heartbeat.done;
        p->hb_total = req->heartbeat.total;
        copy(p->hb_detail, sizeof p->hb_detail, req->heartbeat.detail ? req->heartbeat.detail : "");
        p->hb_stage_ms = req->heartbeat.stage_ms;
        if (req->heartbeat.detail == NULL && req->heartbeat.stage_ms > p->hb_plain_ms_max) {
            p->hb_plain_ms_max = req->heartbeat.stage_ms;
        }
        if (req->heartbeat.detail != NULL && p->hb_detail_first_ms < 0) {
            p->hb_detail_first_ms = req->heartbeat.stage_ms;
        }
        if (p->mode == MODE_STALE) {
            cs_msg_init(rep, CS_MSG_ERROR);
            rep->error.code = CS_ESTALE;
            rep->error.message = "stale attempt";
        } else if (p->mode == MODE_RESTART && !p->restarted) {
            *drop = true;
        } else {
            cs_msg_init(rep, CS_MSG_ACK);
            rep->ack.cancel = p->mode == MODE_CANCEL;
        }
        break;
    case CS_MSG_RESULT:
    case CS_MSG_FAIL:
        if (req->type == CS_MSG_RESULT) {
            check_lease(p, req->result.worker, req->result.job_id, req->result.lease_token);
        } else {
            check_lease(p, req->fail.worker, req->fail.job_id, req->fail.lease_token);
        }
        if (req->type == CS_MSG_RESULT) {
            /* metrics: the canonical text of the metrics alone; provenance: of the whole */
            const cs_result *r = &req->result.result;
            cs_result only = {.tasks = r->tasks, .n_tasks = r->n_tasks};
            char *t = NULL;
            assert_int_equal(cs_result_encode(&only, &t, NULL, NULL), CS_OK);
            assert_true(strncmp(t, "{\"metrics\":", 11) == 0);
            t[strlen(t) - 1] = '\0';
            copy(p->metrics, sizeof p->metrics, t + 11);
            free(t);
            assert_int_equal(cs_result_encode(r, &t, NULL, NULL), CS_OK);
            copy(p->provenance, sizeof p->provenance, t);
            free(t);
        } else {
            p->fail_kind = req->fail.kind;
            p->fail_exit = req->fail.exit_status;
            p->fail_signal = req->fail.signal;
            copy(p->fail_reason, sizeof p->fail_reason, req->fail.reason);
            copy(p->fail_tail, sizeof p->fail_tail, req->fail.log_tail);
        }
        {
            const cs_msg_claim *cl =
                    req->type == CS_MSG_RESULT ? &req->result.claim : &req->fail.claim;
            if (cl->worker != NULL) {
                p->report_claims++;
                assert_string_equal(cl->worker, "w1");
                assert_int_equal(cl->caps.threads, 1);
                check_instance(p, cl->instance);
            }
            if (p->mode == MODE_RESULT_RETRY && !p->first_report_refused) {
                p->first_report_refused = true;
                cs_msg_init(rep, CS_MSG_ERROR);
                rep->error.code = CS_EDB;
                rep->error.message = "database busy";
            } else if (cl->worker != NULL && p->jobs_given < p->jobs_to_give) {
                /* As calsweepd: the report is stored and the claim gets the next job. */
                give_job(p, rep);
            } else if (cl->worker != NULL) {
                cs_msg_init(rep, CS_MSG_NO_WORK);
                rep->no_work.retry_ms = 50;
            } else {
                cs_msg_init(rep, CS_MSG_ACK);
            }
        }
        break;
    default:
        cs_msg_init(rep, CS_MSG_ERROR);
        rep->error.code = CS_EPROTO;
        rep->error.message = "unexpected";
        break;
    }
}

static void *peer_main(void *arg)
{
    peer *p = arg;
    while (!p->stop) {
        void *buf = NULL;
        size_t len = 0;
        int rv = nng_recv(p->sock, &buf, &len, NNG_FLAG_ALLOC);
        if (rv == NNG_ETIMEDOUT) {
            continue;
        }
        if (rv != 0) {
            break;
        }
        cs_msg req, rep;
        cs_err err = {0};
        bool drop = false;
        if (cs_msg_decode(buf, len, &req, &err) != CS_OK) {
            fprintf(stderr, "peer: bad request: %s\n", err.msg);
            nng_free(buf, len);
            continue;
        }
        pthread_mutex_lock(&p->mu);
        if (req.type == CS_MSG_RESULT && len < sizeof p->result_wire) {
            memcpy(p->result_wire, buf, len);
            p->result_wire[len] = '\0';
        }
        nng_free(buf, len);
        peer_reply(p, &req, &rep, &drop);
        bool restart = drop && p->mode == MODE_RESTART && !p->restarted;
        pthread_mutex_unlock(&p->mu);
        if (restart) {
            /* the coordinator "crashes" with the heartbeat unanswered and comes back */
            nng_close(p->sock);
            cs_time_sleep_ms(300);
            assert_int_equal(cs_net_listen(&p->sock, p->url, NULL, &err), CS_OK);
            nng_socket_set_ms(p->sock, NNG_OPT_RECVTIMEO, 50);
            pthread_mutex_lock(&p->mu);
            p->restarted = true;
            pthread_mutex_unlock(&p->mu);
        } else if (!drop) {
            char *out = NULL;
            size_t out_len = 0;
            assert_int_equal(cs_msg_encode(&rep, &out, &out_len, &err), CS_OK);
            nng_send(p->sock, out, out_len, 0);
            free(out);
        }
        cs_msg_fini(&req);
    }
    return NULL;
}

static int write_script(const char *path, const char *body)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f, "#!/bin/sh\n%s", body);
    fclose(f);
    return chmod(path, 0755);
}

static void *agent_thread(void *arg)
{
    fixture *f = arg;
    cs_err err = {0};
    f->run_rc = cs_agent_run(f->agent, &err);
    if (f->run_rc != CS_OK) {
        fprintf(stderr, "agent: %s\n", err.msg);
    }
    f->run_done = true;
    return NULL;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/cs-agent-test-XXXXXX");
    if (f == NULL || mkdtemp(f->dir) == NULL) {
        return -1;
    }
    snprintf(f->work, sizeof f->work, "%s/work", f->dir);
    snprintf(f->runner, sizeof f->runner, "%s/runner.sh", f->dir);
    snprintf(f->p.url, sizeof f->p.url, "ipc://%s/work.sock", f->dir);
    pthread_mutex_init(&f->p.mu, NULL);
    f->p.jobs_to_give = 1;
    f->p.hb_detail_first_ms = -1;
    f->p.config = "{\"extra\":{\"test_sleep_ms\":100},\"model\":{\"folder\":\"m\"}}";
    f->cfg.coordinator = f->p.url;
    f->cfg.name = "w1";
    f->cfg.host = "testhost";
    f->cfg.threads = 1;
    f->cfg.mem_mb = 100;
    f->cfg.runner = f->runner;
    f->cfg.work_dir = f->work;
    f->cfg.heartbeat_ms = 50;
    f->cfg.kill_grace_ms = 200;
    f->cfg.resend_ms = 1000;
    f->cfg.request_timeout_ms = 2000;
    f->cfg.claim_timeout_ms = 3000;
    f->cfg.max_jobs = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot remove %s\n", f->dir);
    }
    pthread_mutex_destroy(&f->p.mu);
    free(f);
    return 0;
}

static void start(fixture *f)
{
    cs_err err = {0};
    assert_int_equal(cs_net_listen(&f->p.sock, f->p.url, NULL, &err), CS_OK);
    nng_socket_set_ms(f->p.sock, NNG_OPT_RECVTIMEO, 50);
    assert_int_equal(pthread_create(&f->p.th, NULL, peer_main, &f->p), 0);
    assert_int_equal(cs_agent_create(&f->cfg, &f->agent, &err), CS_OK);
    assert_int_equal(pthread_create(&f->th, NULL, agent_thread, f), 0);
}

/* Waits for the agent to end (at most limit_ms, then asks it to release and fails). */
static void finish(fixture *f, int64_t limit_ms)
{
    int64_t t0 = cs_time_mono_ms();
    bool late = false;
    for (;;) {
        pthread_mutex_lock(&f->p.mu);
        bool bye = f->p.n[CS_MSG_BYE] > 0;
        pthread_mutex_unlock(&f->p.mu);
        if (bye) {
            break;
        }
        if (cs_time_mono_ms() - t0 > limit_ms) {
            late = true;
            cs_agent_request_stop(f->agent, CS_AGENT_RELEASE);
            break;
        }
        cs_time_sleep_ms(10);
    }
    pthread_join(f->th, NULL);
    f->p.stop = true;
    pthread_join(f->p.th, NULL);
    nng_close(f->p.sock);
    assert_false(late);
    assert_int_equal(f->run_rc, CS_OK);
    /* Every report named this worker and the lease token of its job (protocol v3). */
    assert_int_equal(f->p.lease_mismatch, 0);
}

static bool wait_for(peer *p, cs_msg_type t, int count, int64_t limit_ms)
{
    int64_t t0 = cs_time_mono_ms();
    while (cs_time_mono_ms() - t0 < limit_ms) {
        pthread_mutex_lock(&p->mu);
        int n = p->n[t];
        pthread_mutex_unlock(&p->mu);
        if (n >= count) {
            return true;
        }
        cs_time_sleep_ms(10);
    }
    return false;
}

static cs_agent_stats stats_of(fixture *f)
{
    cs_agent_stats st;
    cs_agent_get_stats(f->agent, &st);
    return st;
}

static void test_result(void **state)
{
    fixture *f = *state;
    char path[400], *text = NULL;
    cs_err err = {0};
    assert_int_equal(
            write_script(f->runner,
                         "echo \"runner start job=$CALSWEEP_JOB_ID attempt=$CALSWEEP_ATTEMPT "
                         "arg=$1 threads=$CALSWEEP_THREADS\" >&2\n"
                         "echo \"cache=${CALSWEEP_CACHE_DIR-unset}\" >&2\n"
                         "echo '{\"stage\":\"work\",\"done\":1,\"total\":4}' >&3\n"
                         "sleep 0.4\n"
                         "echo 'not json' >&3\n"
                         "echo '{\"stage\":\"work\",\"task\":\"arith_mc\",\"done\":2,"
                         "\"total\":4}' >&3\n"
                         "sleep 0.3\n"
                         "printf '{\"metrics\":{\"t\":{\"acc\":0.5}},\"host\":\"h\","
                         "\"env_job\":\"%s\"}' \"$CALSWEEP_JOB_ID\" > result.json\n"),
            0);
    f->cfg.token = "sekrit";
    f->cfg.cache_dir = "rel-cache"; /* relative to the worker's folder */
    start(f);
    finish(f, 10000);
    char cwd[300], want_cache[400];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(want_cache, sizeof want_cache, "cache=%s/rel-cache", cwd);
    assert_non_null(strstr(f->p.hb_tail, want_cache));
    assert_int_equal(f->p.n[CS_MSG_HELLO], 1);
    assert_int_equal(f->p.n[CS_MSG_RESULT], 1);
    assert_int_equal(f->p.n[CS_MSG_FAIL], 0);
    assert_true(f->p.n[CS_MSG_HEARTBEAT] >= 2);
    assert_string_equal(f->p.token_seen, "sekrit");
    assert_string_equal(f->p.hb_stage, "work");
    assert_true(f->p.hb_done >= 1);
    assert_int_equal(f->p.hb_total, 4);
    /* detail and stage_ms (cs_child.h): the task names the detail, and the stage clock restarts
     * with a new (stage, detail). */
    assert_string_equal(f->p.hb_detail, "arith_mc");
    assert_true(f->p.hb_stage_ms >= 1);
    assert_true(f->p.hb_plain_ms_max >= 200); /* "work" without detail for 0.4 s */
    assert_true(f->p.hb_detail_first_ms >= 1);
    assert_true(f->p.hb_detail_first_ms < f->p.hb_plain_ms_max);
    assert_non_null(strstr(f->p.hb_tail, "runner start job=41 attempt=1 arg=job.json threads=1"));
    assert_string_equal(f->p.metrics, "{\"t\":{\"acc\":0.5}}");
    assert_non_null(strstr(f->p.provenance, "\"env_job\":\"41\""));
    assert_non_null(strstr(f->p.provenance, "\"log_path\":\""));
    assert_non_null(strstr(f->p.provenance, "/work/41-1/stderr.log\""));
    assert_non_null(strstr(f->p.provenance, "\"worker\":\"w1\""));
    assert_non_null(strstr(f->p.provenance, "\"host\":\"h\""));
    snprintf(path, sizeof path, "%s/41-1/job.json", f->work);
    assert_int_equal(cs_path_read_file(path, 0, &text, NULL, &err), CS_OK);
    assert_string_equal(text, f->p.config);
    free(text);
    assert_int_equal(stats_of(f).results, 1);
    assert_int_equal(f->p.bye_release_id, 0);
    cs_agent_destroy(f->agent);
}

static void test_fail_error_json(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner,
                                  "echo \"about to fail, cache=${CALSWEEP_CACHE_DIR-unset}\" >&2\n"
                                  "echo '{\"kind\":\"bad_input\",\"message\":\"nope: "
                                  "bits\"}' > error.json\nexit 3\n"),
                     0);
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_FAIL], 1);
    assert_int_equal(f->p.fail_kind, CS_FAIL_BAD_INPUT);
    assert_int_equal(f->p.fail_exit, 3);
    assert_int_equal(f->p.fail_signal, 0);
    assert_string_equal(f->p.fail_reason, "nope: bits");
    assert_non_null(strstr(f->p.fail_tail, "about to fail, cache=unset")); /* no cache_dir */
    assert_int_equal(stats_of(f).fails, 1);
    cs_agent_destroy(f->agent);
}

static void test_crash_signal(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "kill -SEGV $$\nsleep 5\n"), 0);
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_FAIL], 1);
    assert_int_equal(f->p.fail_kind, CS_FAIL_CRASH);
    assert_int_equal(f->p.fail_exit, -1);
    assert_int_equal(f->p.fail_signal, SIGSEGV);
    assert_non_null(strstr(f->p.fail_reason, "signal 11"));
    cs_agent_destroy(f->agent);
}

/* Under the guard (calsweep-worker --child-guard, cs_child.h) the worker sees the outcome it would
 * see without it: the same signal, the runner's log. */
static void test_guard_transparent(void **state)
{
    fixture *f = *state;
    const char *bd = getenv("CS_BUILD_DIR");
    char guard[512];
    snprintf(guard, sizeof guard, "%s/worker/calsweep-worker", bd ? bd : "build");
    assert_int_equal(write_script(f->runner, "echo \"guarded runner\" >&2\nkill -SEGV $$\n"), 0);
    f->cfg.guard = guard;
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_FAIL], 1);
    assert_int_equal(f->p.fail_kind, CS_FAIL_CRASH);
    assert_int_equal(f->p.fail_exit, -1);
    assert_int_equal(f->p.fail_signal, SIGSEGV);
    assert_non_null(strstr(f->p.fail_tail, "guarded runner"));
    cs_agent_destroy(f->agent);
}

static void test_exit_without_error_json(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "exit 7\n"), 0);
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.fail_kind, CS_FAIL_CRASH);
    assert_int_equal(f->p.fail_exit, 7);
    assert_non_null(strstr(f->p.fail_reason, "status 7"));
    cs_agent_destroy(f->agent);
}

static void test_exit0_without_result(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "exit 0\n"), 0);
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_RESULT], 0);
    assert_int_equal(f->p.fail_kind, CS_FAIL_INTERNAL);
    assert_int_equal(f->p.fail_exit, 0);
    assert_non_null(strstr(f->p.fail_reason, "result.json"));
    cs_agent_destroy(f->agent);
}

/* A runner (an exec command, say) that writes a metric it could not compute as null: the job
 * fails bad_input naming the metric, it is never reported as a result (issue 17). */
static void test_result_null_metric(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "printf '{\"metrics\":{\"wiki\":{\"ppl\":null},"
                                             "\"t\":{\"acc\":0.5}}}' > result.json\n"),
                     0);
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_RESULT], 0);
    assert_int_equal(f->p.n[CS_MSG_FAIL], 1);
    assert_int_equal(f->p.fail_kind, CS_FAIL_BAD_INPUT);
    assert_non_null(strstr(f->p.fail_reason, "metrics.wiki.ppl: not a finite number"));
    cs_agent_destroy(f->agent);
}

static void test_timeout(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "exec sleep 20\n"), 0);
    f->p.timeout_s = 1;
    int64_t t0 = cs_time_mono_ms();
    start(f);
    finish(f, 10000);
    assert_true(cs_time_mono_ms() - t0 < 5000);
    assert_int_equal(f->p.fail_kind, CS_FAIL_TIMEOUT);
    assert_int_equal(f->p.fail_signal, SIGTERM);
    cs_agent_destroy(f->agent);
}

static void test_cancel_with_kill(void **state)
{
    fixture *f = *state;
    /* ignores SIGTERM, so the worker must escalate to SIGKILL after the grace */
    assert_int_equal(write_script(f->runner, "trap '' TERM\nsleep 20\n"), 0);
    f->p.mode = MODE_CANCEL;
    int64_t t0 = cs_time_mono_ms();
    start(f);
    finish(f, 10000);
    assert_true(cs_time_mono_ms() - t0 < 5000);
    assert_int_equal(f->p.fail_kind, CS_FAIL_CANCELLED);
    assert_int_equal(f->p.fail_signal, SIGKILL);
    assert_int_equal(stats_of(f).cancels, 1);
    cs_agent_destroy(f->agent);
}

static void test_stale_drops(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "exec sleep 20\n"), 0);
    f->p.mode = MODE_STALE;
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_RESULT] + f->p.n[CS_MSG_FAIL], 0);
    assert_int_equal(stats_of(f).dropped, 1);
    assert_int_equal(f->p.bye_release_id, 0);
    cs_agent_destroy(f->agent);
}

static void test_result_resent(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "echo '{\"metrics\":{}}' > result.json\n"), 0);
    f->p.mode = MODE_RESULT_RETRY;
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_RESULT], 2);
    assert_int_equal(stats_of(f).results, 1);
    cs_agent_destroy(f->agent);
}

static void test_restart(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "sleep 1.2\necho '{\"metrics\":{\"a\":{\"b\":1}}}' > "
                                             "result.json\n"),
                     0);
    f->p.mode = MODE_RESTART;
    start(f);
    finish(f, 15000);
    assert_true(f->p.restarted);
    assert_int_equal(f->p.n[CS_MSG_RESULT], 1);
    assert_string_equal(f->p.metrics, "{\"a\":{\"b\":1}}");
    cs_agent_destroy(f->agent);
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

/* A RESULT carries the metrics once (protocol 3 sent them as RESULT.metrics and again inside
 * RESULT.provenance, the whole result.json). */
static void test_result_metrics_once(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "echo '{\"metrics\":{\"wiki\":{\"zz_ppl\":12.5,"
                                             "\"n\":3}},\"host\":\"h\"}' > result.json\n"),
                     0);
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_RESULT], 1);
    assert_int_equal(count_of(f->p.result_wire, "\"zz_ppl\""), 1);
    assert_int_equal(count_of(f->p.result_wire, "12.5"), 1);
    assert_int_equal(count_of(f->p.result_wire, "\"metrics\""), 1);
    cs_agent_destroy(f->agent);
}

static void test_once_no_work(void **state)
{
    fixture *f = *state;
    f->p.jobs_to_give = 0;
    f->cfg.once = true;
    f->cfg.max_jobs = 0;
    assert_int_equal(write_script(f->runner, "exit 0\n"), 0);
    start(f);
    finish(f, 5000);
    assert_int_equal(f->p.n[CS_MSG_CLAIM], 1);
    assert_int_equal(stats_of(f).jobs_started, 0);
    cs_agent_destroy(f->agent);
}

/* Issue 17: calsweepd answers a wrong token with ERROR CS_EAUTH. That is permanent: the agent
 * says so once, naming the endpoint, and ends with CS_EAUTH (calsweep-worker exits 1) instead of
 * retrying forever. */
static void test_auth_refusal_is_final(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "exit 0\n"), 0);
    f->p.mode = MODE_AUTH;
    f->cfg.token = "a-wrong-token";
    start(f);
    int64_t t0 = cs_time_mono_ms();
    while (!f->run_done && cs_time_mono_ms() - t0 < 5000) {
        cs_time_sleep_ms(10);
    }
    int64_t took = cs_time_mono_ms() - t0;
    if (!f->run_done) {
        cs_agent_request_stop(f->agent, CS_AGENT_RELEASE); /* it kept retrying */
    }
    pthread_join(f->th, NULL);
    f->p.stop = true;
    pthread_join(f->p.th, NULL);
    nng_close(f->p.sock);
    assert_int_equal(f->run_rc, CS_EAUTH);
    assert_true(took < 5000);
    assert_int_equal(f->p.n[CS_MSG_HELLO], 1); /* no retry */
    assert_int_equal(f->p.n[CS_MSG_CLAIM], 0);
    assert_int_equal(f->p.n[CS_MSG_BYE], 0);
    assert_string_equal(f->p.token_seen, "a-wrong-token");
    cs_agent_destroy(f->agent);
}

static void test_release(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "exec sleep 20\n"), 0);
    f->cfg.max_jobs = 0;
    start(f);
    assert_true(wait_for(&f->p, CS_MSG_HEARTBEAT, 1, 5000));
    cs_agent_request_stop(f->agent, CS_AGENT_RELEASE);
    finish(f, 5000);
    assert_int_equal(f->p.bye_release_id, 41);
    assert_int_equal(f->p.bye_release_attempt, 1);
    assert_int_equal(f->p.n[CS_MSG_FAIL] + f->p.n[CS_MSG_RESULT], 0);
    cs_agent_destroy(f->agent);
}

static void test_drain(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "sleep 0.5\necho '{\"metrics\":{}}' > result.json\n"),
                     0);
    f->cfg.max_jobs = 0;
    f->p.jobs_to_give = 5;
    start(f);
    assert_true(wait_for(&f->p, CS_MSG_HEARTBEAT, 1, 5000));
    cs_agent_request_stop(f->agent, CS_AGENT_DRAIN);
    finish(f, 5000);
    assert_int_equal(f->p.n[CS_MSG_RESULT], 1);
    assert_int_equal(f->p.jobs_given, 1);
    assert_int_equal(f->p.bye_release_id, 0);
    cs_agent_destroy(f->agent);
}

/* Protocol v2: each report but the last carries a claim and its JOB reply is the next job, so the
 * agent sends one CLAIM for three jobs; the last report (max_jobs) carries none. */
static void test_report_claims_next(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "echo '{\"metrics\":{}}' > result.json\n"), 0);
    f->cfg.max_jobs = 3;
    f->p.jobs_to_give = 5;
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_CLAIM], 1);
    assert_int_equal(f->p.n[CS_MSG_RESULT], 3);
    assert_int_equal(f->p.report_claims, 2);
    assert_int_equal(f->p.jobs_given, 3);
    assert_int_equal(stats_of(f).jobs_started, 3);
    assert_int_equal(stats_of(f).results, 3);
    assert_int_equal(f->p.bye_release_id, 0);
    cs_agent_destroy(f->agent);
}

/* A FAIL carries the claim too; NO_WORK to it means the report is stored and the agent CLAIMs
 * (long poll) after retry_ms. */
static void test_report_claim_no_work(void **state)
{
    fixture *f = *state;
    assert_int_equal(write_script(f->runner, "exit 5\n"), 0);
    f->cfg.max_jobs = 0;
    f->p.jobs_to_give = 1;
    start(f);
    assert_true(wait_for(&f->p, CS_MSG_FAIL, 1, 5000));
    assert_true(wait_for(&f->p, CS_MSG_CLAIM, 2, 5000));
    cs_agent_request_stop(f->agent, CS_AGENT_DRAIN);
    finish(f, 5000);
    assert_int_equal(f->p.n[CS_MSG_FAIL], 1);
    assert_int_equal(f->p.report_claims, 1);
    assert_int_equal(stats_of(f).fails, 1);
    assert_int_equal(stats_of(f).jobs_started, 1);
    cs_agent_destroy(f->agent);
}

static void test_spawn_failure(void **state)
{
    fixture *f = *state;
    f->cfg.runner = "/nonexistent/calsweep-run";
    start(f);
    finish(f, 5000);
    assert_int_equal(f->p.fail_kind, CS_FAIL_SPAWN);
    assert_non_null(strstr(f->p.fail_reason, "/nonexistent/calsweep-run"));
    cs_agent_destroy(f->agent);
}

static void test_testrun_runner(void **state)
{
    fixture *f = *state;
    const char *bd = getenv("CS_BUILD_DIR");
    char runner[512];
    snprintf(runner, sizeof runner, "%s/tests/calsweep-testrun", bd ? bd : "build");
    f->cfg.runner = runner;
    f->cfg.max_jobs = 2;
    f->p.jobs_to_give = 2;
    f->p.config = "{\"extra\":{\"test_fail\":\"signal\",\"test_fail_attempts\":1,"
                  "\"test_sleep_ms\":200}}";
    start(f);
    finish(f, 10000);
    /* both jobs are attempt 1, so both die of SIGKILL (not sent by the worker) */
    assert_int_equal(f->p.n[CS_MSG_FAIL], 2);
    assert_int_equal(f->p.fail_kind, CS_FAIL_CRASH);
    assert_int_equal(f->p.fail_signal, SIGKILL);
    assert_non_null(strstr(f->p.fail_reason, "SIGKILL"));
    assert_non_null(strstr(f->p.fail_tail, "killing myself"));
    cs_agent_destroy(f->agent);
}

static void test_testrun_result(void **state)
{
    fixture *f = *state;
    const char *bd = getenv("CS_BUILD_DIR");
    char runner[512];
    snprintf(runner, sizeof runner, "%s/tests/calsweep-testrun", bd ? bd : "build");
    f->cfg.runner = runner;
    f->p.config = "{\"extra\":{\"test_fail\":\"exit\",\"test_fail_attempts\":0,"
                  "\"test_sleep_ms\":300}}";
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_RESULT], 1);
    assert_string_equal(f->p.metrics, "{\"test\":{\"attempt\":1,\"value\":41}}");
    assert_string_equal(f->p.hb_stage, "test");
    cs_agent_destroy(f->agent);
}

static void test_heartbeat_follows_lease(void **state)
{
    fixture *f = *state;
    /* a 5 s heartbeat would lose a 1 s lease: the worker beats at least 3 times per lease */
    assert_int_equal(write_script(f->runner, "sleep 1.3\necho '{\"metrics\":{}}' > result.json\n"),
                     0);
    f->cfg.heartbeat_ms = 5000;
    f->p.lease_s = 1;
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_RESULT], 1);
    assert_true(f->p.n[CS_MSG_HEARTBEAT] >= 3);
    cs_agent_destroy(f->agent);
}

static void test_exec_backend(void **state)
{
    fixture *f = *state;
    /* the runner would fail: an exec-backend job must run the template instead */
    assert_int_equal(write_script(f->runner, "exit 9\n"), 0);
    f->cfg.exec_template = "echo \"exec ran $0 $1 job=$CALSWEEP_JOB_ID\" >&2; "
                           "echo '{\"metrics\":{\"e\":{\"x\":2}}}' > result.json";
    f->p.config = "{\"model\":{\"backend\":\"exec\",\"folder\":\"m\"}}";
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_RESULT], 1);
    assert_string_equal(f->p.metrics, "{\"e\":{\"x\":2}}");
    char path[400], *log = NULL;
    cs_err err = {0};
    snprintf(path, sizeof path, "%s/41-1/stderr.log", f->work);
    assert_int_equal(cs_path_read_file(path, 0, &log, NULL, &err), CS_OK);
    assert_non_null(strstr(log, "exec ran calsweep-exec job.json job=41"));
    free(log);
    cs_agent_destroy(f->agent);
}

/* The worker runs exactly the job's backend: an exec job on a worker without --exec-template, or
 * a backend it does not know (a command template from an old sweep), is refused with FAIL, kind
 * and reason, and neither the native runner (which would succeed) nor the exec template runs
 * (both are a script that leaves a mark). */
static void expect_backend_refused(fixture *f, const char *config, bool with_template,
                                   cs_fail_kind kind, const char *reason)
{
    char mark[400], script[600];
    snprintf(mark, sizeof mark, "%s/ran", f->work);
    snprintf(script, sizeof script, "touch %s\necho '{\"metrics\":{}}' > result.json\n", mark);
    assert_int_equal(write_script(f->runner, script), 0);
    if (with_template) {
        f->cfg.exec_template = script;
    }
    f->p.config = config;
    start(f);
    finish(f, 10000);
    assert_int_equal(f->p.n[CS_MSG_RESULT], 0);
    assert_int_equal(f->p.n[CS_MSG_FAIL], 1);
    assert_int_equal(f->p.fail_kind, kind);
    assert_non_null(strstr(f->p.fail_reason, reason));
    assert_int_equal(access(mark, F_OK), -1);
    cs_agent_destroy(f->agent);
}

static void test_backend_refused(void **state)
{
    expect_backend_refused(*state, "{\"model\":{\"backend\":\"exec\",\"folder\":\"m\"}}", false,
                           CS_FAIL_SPAWN, "no --exec-template");
}

static void test_backend_unknown(void **state)
{
    expect_backend_refused(*state,
                           "{\"model\":{\"backend\":{\"exec\":\"false\"},\"folder\":\"m\"}}", true,
                           CS_FAIL_BAD_INPUT, "model.backend is an object");
}

static void test_scan_models(void **state)
{
    fixture *f = *state;
    char path[400], **models = NULL;
    size_t n = 0;
    cs_err err = {0};
    static const char *const names[] = {"b-model", "a-model", "no-config"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, names[i]);
        assert_int_equal(mkdir(path, 0755), 0);
        if (i < 2) {
            snprintf(path, sizeof path, "%s/%s/config.json", f->dir, names[i]);
            assert_int_equal(cs_path_write_atomic(path, "{}", 2, 0644, &err), CS_OK);
        }
    }
    const char *roots[] = {f->dir, f->dir, "/nonexistent-root"};
    assert_int_equal(cs_agent_scan_models(roots, 3, &models, &n, &err), CS_OK);
    /* each as "/tmp/.../a-model" (root form = absolute form here) and as "a-model" */
    assert_int_equal(n, 4);
    snprintf(path, sizeof path, "%s/a-model", f->dir);
    assert_string_equal(models[0], path);
    snprintf(path, sizeof path, "%s/b-model", f->dir);
    assert_string_equal(models[1], path);
    assert_string_equal(models[2], "a-model");
    assert_string_equal(models[3], "b-model");
    for (size_t i = 0; i < n; i++) {
        free(models[i]);
    }
    free(models);
}

static void test_log_tail(void **state)
{
    fixture *f = *state;
    char path[400];
    cs_buf b = {0};
    cs_err err = {0};
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(cs_buf_printf(&b, "line %d\n", i), CS_OK);
    }
    snprintf(path, sizeof path, "%s/log", f->dir);
    assert_int_equal(cs_path_write_atomic(path, b.data, b.len, 0644, &err), CS_OK);
    char *tail = cs_child_log_tail(path, 100);
    assert_non_null(tail);
    assert_true(strlen(tail) <= 100);
    assert_true(strncmp(tail, "line ", 5) == 0); /* starts at a line */
    assert_non_null(strstr(tail, "line 999\n"));
    free(tail);
    tail = cs_child_log_tail("/nonexistent/log", 100);
    assert_string_equal(tail, "");
    free(tail);
    cs_buf_fini(&b);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    alarm(240);
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_result, setup, teardown),
            cmocka_unit_test_setup_teardown(test_fail_error_json, setup, teardown),
            cmocka_unit_test_setup_teardown(test_crash_signal, setup, teardown),
            cmocka_unit_test_setup_teardown(test_exit_without_error_json, setup, teardown),
            cmocka_unit_test_setup_teardown(test_exit0_without_result, setup, teardown),
            cmocka_unit_test_setup_teardown(test_result_null_metric, setup, teardown),
            cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cancel_with_kill, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stale_drops, setup, teardown),
            cmocka_unit_test_setup_teardown(test_result_resent, setup, teardown),
            cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
            cmocka_unit_test_setup_teardown(test_result_metrics_once, setup, teardown),
            cmocka_unit_test_setup_teardown(test_once_no_work, setup, teardown),
            cmocka_unit_test_setup_teardown(test_release, setup, teardown),
            cmocka_unit_test_setup_teardown(test_auth_refusal_is_final, setup, teardown),
            cmocka_unit_test_setup_teardown(test_drain, setup, teardown),
            cmocka_unit_test_setup_teardown(test_report_claims_next, setup, teardown),
            cmocka_unit_test_setup_teardown(test_report_claim_no_work, setup, teardown),
            cmocka_unit_test_setup_teardown(test_spawn_failure, setup, teardown),
            cmocka_unit_test_setup_teardown(test_testrun_runner, setup, teardown),
            cmocka_unit_test_setup_teardown(test_testrun_result, setup, teardown),
            cmocka_unit_test_setup_teardown(test_exec_backend, setup, teardown),
            cmocka_unit_test_setup_teardown(test_guard_transparent, setup, teardown),
            cmocka_unit_test_setup_teardown(test_backend_refused, setup, teardown),
            cmocka_unit_test_setup_teardown(test_backend_unknown, setup, teardown),
            cmocka_unit_test_setup_teardown(test_heartbeat_follows_lease, setup, teardown),
            cmocka_unit_test_setup_teardown(test_scan_models, setup, teardown),
            cmocka_unit_test_setup_teardown(test_log_tail, setup, teardown),
    };
    return cmocka_run_group_tests_name("agent", tests, NULL, NULL);
}
