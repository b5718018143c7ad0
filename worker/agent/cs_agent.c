/* cs_agent.c - see cs_agent.h. */
#include "cs_agent.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <nng/nng.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_child.h"
#include "cs_json.h"
#include "cs_log.h"
#include "cs_net.h"
#include "cs_path.h"
#include "cs_proto.h"
#include "cs_rng.h"
#include "cs_time.h"

#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define HB_TAIL_BYTES  2048
#define FAIL_TAIL      8192

enum { PH_IDLE = 0, PH_SEND, PH_RECV };
enum { STOP_NONE = 0, STOP_DRAIN = 1, STOP_RELEASE = 2 };

typedef struct agent_job {
    int64_t id, attempt, timeout_s;
    char lease_token[CS_PROTO_TOKEN_LEN + 1]; /* JOB.lease_token: named in every report */
    char *dir;
    cs_child *child;
    bool exited;
    bool drop;            /* stale or released: no report */
    bool cancel_seen;     /* ACK.cancel arrived */
    char *report;         /* encoded RESULT/FAIL, owned; NULL until the child ended */
    cs_msg_type rep_type; /* CS_MSG_RESULT or CS_MSG_FAIL */
} agent_job;

struct cs_agent {
    cs_agent_cfg cfg;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t delay;
    uv_timer_t hb;
    uv_timer_t drain; /* --drain-s: the deadline of a drain */
    uv_signal_t sigterm, sigint;
    bool loop_init;
    nng_socket sock;
    nng_ctx ctx;
    nng_aio *aio;
    bool sock_open, ctx_open;

    pthread_mutex_t mu; /* guards the fields up to stats */
    bool reply_ready;
    int reply_rv;
    nng_msg *reply_msg;
    bool cancel_pending;
    int stop_req;
    bool wake_closed;
    cs_agent_stats stats;

    /* loop thread only */
    int phase; /* also read by the aio callback, which runs strictly after the send */
    cs_msg_type inflight;
    int64_t req_id;
    bool registered, waiting, hb_due;
    int64_t backoff_ms;
    cs_rng rng;
    int stop_mode;
    int64_t first_signal_ms; /* when the first SIGTERM/SIGINT came */
    bool claims_done, bye_sent, finished;
    int64_t jobs_ended;
    agent_job *job;
    int64_t release_id, release_attempt;
    char release_token[CS_PROTO_TOKEN_LEN + 1];
    char instance[CS_PROTO_TOKEN_LEN + 1]; /* CLAIM.instance: this process's secret id */
    cs_rc fatal;                           /* a refusal that retrying cannot fix; CS_OK = none */
    char fatal_msg[256];
    char **models;
    size_t n_models;
    char *backends[2];
    size_t n_backends;
    cs_rc last_err_code; /* the last ERROR code logged, to log repeats at debug level */
};

static void step(cs_agent *a);

/* ---- models ---------------------------------------------------------------------------- */

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

cs_rc cs_agent_scan_models(const char *const *roots, size_t n_roots, char ***out, size_t *n,
                           cs_err *err)
{
    char **list = NULL;
    size_t len = 0, cap = 0;
    cs_rc rc = CS_OK;
    *out = NULL;
    *n = 0;
    for (size_t r = 0; r < n_roots; r++) {
        DIR *d = opendir(roots[r]);
        struct dirent *e;
        if (d == NULL) {
            cs_log(CS_LOG_WARN, "--model-root %s: %s (skipped)", roots[r], strerror(errno));
            continue;
        }
        while ((e = readdir(d)) != NULL) {
            char path[4096];
            struct stat st;
            if (e->d_name[0] == '.' || strlen(e->d_name) > CS_PROTO_MAX_NAME) {
                continue;
            }
            int w = snprintf(path, sizeof path, "%s/%s/config.json", roots[r], e->d_name);
            if (w < 0 || (size_t)w >= sizeof path || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
                continue;
            }
            /* The coordinator matches a job's model folder as written in the sweep
             * (models.X.folder) against this list, so each model is advertised by its name,
             * by <root>/<name> as the root was given, and by its absolute path. */
            char rel[4096], absp[4096];
            const char *forms[3] = {e->d_name, NULL, NULL};
            int wr = snprintf(rel, sizeof rel, "%s%s%s", roots[r],
                              roots[r][0] && roots[r][strlen(roots[r]) - 1] == '/' ? "" : "/",
                              e->d_name);
            if (wr > 0 && (size_t)wr < sizeof rel && strlen(rel) <= CS_PROTO_MAX_NAME) {
                forms[1] = rel;
            }
            if (realpath(rel, absp) != NULL && strlen(absp) <= CS_PROTO_MAX_NAME) {
                forms[2] = absp;
            }
            for (size_t f = 0; f < 3; f++) {
                if (forms[f] == NULL) {
                    continue;
                }
                if (len == cap) {
                    size_t ncap = cap ? cap * 2 : 8;
                    char **nl = cs_realloc_array(list, ncap, sizeof *nl);
                    if (nl == NULL) {
                        closedir(d);
                        rc = cs_err_set(err, CS_ENOMEM, 0, "model list");
                        goto fail;
                    }
                    list = nl;
                    cap = ncap;
                }
                list[len] = cs_strdup(forms[f]);
                if (list[len] == NULL) {
                    closedir(d);
                    rc = cs_err_set(err, CS_ENOMEM, 0, "model list");
                    goto fail;
                }
                len++;
            }
        }
        closedir(d);
    }
    if (len > 1) {
        qsort(list, len, sizeof *list, cmp_str);
    }
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        if (k > 0 && strcmp(list[k - 1], list[i]) == 0) {
            free(list[i]);
            continue;
        }
        list[k++] = list[i];
    }
    if (k > CS_PROTO_MAX_LIST) {
        cs_log(CS_LOG_WARN, "%zu models found; advertising the first %d", k, CS_PROTO_MAX_LIST);
        for (size_t i = CS_PROTO_MAX_LIST; i < k; i++) {
            free(list[i]);
        }
        k = CS_PROTO_MAX_LIST;
    }
    *out = list;
    *n = k;
    return CS_OK;
fail:
    for (size_t i = 0; i < len; i++) {
        free(list[i]);
    }
    free(list);
    return rc;
}

/* ---- nng requests ---------------------------------------------------------------------- */

static void post(cs_agent *a, int rv, nng_msg *m)
{
    pthread_mutex_lock(&a->mu);
    a->reply_ready = true;
    a->reply_rv = rv;
    a->reply_msg = m;
    if (!a->wake_closed) {
        uv_async_send(&a->wake);
    }
    pthread_mutex_unlock(&a->mu);
}

/* nng thread: finish the send, start the receive, hand the outcome to the loop. */
static void on_aio(void *arg)
{
    cs_agent *a = arg;
    int rv = nng_aio_result(a->aio);
    if (a->phase == PH_SEND) {
        if (rv == 0) {
            pthread_mutex_lock(&a->mu);
            if (a->cancel_pending) {
                pthread_mutex_unlock(&a->mu);
                post(a, NNG_ECANCELED, NULL);
                return;
            }
            a->phase = PH_RECV;
            nng_ctx_recv(a->ctx, a->aio);
            pthread_mutex_unlock(&a->mu);
            return;
        }
        nng_msg *m = nng_aio_get_msg(a->aio);
        if (m != NULL) {
            nng_msg_free(m);
        }
        nng_aio_set_msg(a->aio, NULL);
        post(a, rv, NULL);
        return;
    }
    post(a, rv, rv == 0 ? nng_aio_get_msg(a->aio) : NULL);
}

static void cancel_inflight(cs_agent *a)
{
    if (a->inflight == CS_MSG_NONE) {
        return;
    }
    pthread_mutex_lock(&a->mu);
    a->cancel_pending = true;
    nng_aio_cancel(a->aio);
    pthread_mutex_unlock(&a->mu);
}

static const cs_net_tls *agent_tls(const cs_agent *a)
{
    const cs_net_tls *tls = &a->cfg.tls;
    return tls->ca || tls->cert || tls->key ? tls : NULL;
}

static int64_t timeout_for(const cs_agent *a, cs_msg_type t)
{
    if (t == CS_MSG_CLAIM) {
        return a->cfg.claim_timeout_ms > 0 ? a->cfg.claim_timeout_ms : 45000;
    }
    int64_t ms = a->cfg.request_timeout_ms > 0 ? a->cfg.request_timeout_ms : 15000;
    /* A HELLO over TLS that gets no answer may be a failed handshake: find out soon. */
    if ((t == CS_MSG_BYE || (t == CS_MSG_HELLO && agent_tls(a) != NULL)) && ms > 5000) {
        ms = 5000;
    }
    return ms;
}

/* Sends text (borrowed) as a request of type t. */
static void send_text(cs_agent *a, cs_msg_type t, const char *text, size_t len)
{
    nng_msg *m = NULL;
    int rv = nng_msg_alloc(&m, 0);
    if (rv == 0) {
        rv = nng_msg_append(m, text, len);
    }
    if (rv != 0) {
        if (m != NULL) {
            nng_msg_free(m);
        }
        cs_log(CS_LOG_ERROR, "%s: %s", cs_msg_type_name(t), nng_strerror(rv));
        return;
    }
    pthread_mutex_lock(&a->mu);
    a->cancel_pending = false;
    a->stats.requests++;
    pthread_mutex_unlock(&a->mu);
    a->inflight = t;
    a->phase = PH_SEND;
    nng_aio_set_msg(a->aio, m);
    nng_aio_set_timeout(a->aio, (nng_duration)timeout_for(a, t));
    cs_log(CS_LOG_DEBUG, "-> %s", cs_msg_type_name(t));
    nng_ctx_send(a->ctx, a->aio);
}

static void send_msg(cs_agent *a, cs_msg *m)
{
    char *text = NULL;
    size_t len = 0;
    cs_err err = {0};
    m->token = a->cfg.token;
    m->req_id = ++a->req_id;
    if (cs_msg_encode(m, &text, &len, &err) != CS_OK) {
        cs_log(CS_LOG_ERROR, "cannot encode %s: %s", cs_msg_type_name(m->type), err.msg);
        return;
    }
    send_text(a, m->type, text, len);
    free(text);
}

static void fill_caps(cs_agent *a, cs_caps *caps)
{
    memset(caps, 0, sizeof *caps);
    caps->backends = a->backends;
    caps->n_backends = a->n_backends;
    caps->models = a->models;
    caps->n_models = a->n_models;
    caps->threads = a->cfg.threads;
    caps->mem_mb = a->cfg.mem_mb;
}

static void send_hello(cs_agent *a)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_HELLO);
    m.hello.worker = a->cfg.name;
    m.hello.host = a->cfg.host;
    fill_caps(a, &m.hello.caps);
    send_msg(a, &m);
}

static void send_claim(cs_agent *a)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_CLAIM);
    m.claim.worker = a->cfg.name;
    m.claim.instance = a->instance;
    fill_caps(a, &m.claim.caps);
    send_msg(a, &m);
}

static void send_bye(cs_agent *a)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_BYE);
    m.bye.worker = a->cfg.name;
    m.bye.instance = a->instance;
    m.bye.release_job_id = a->release_id;
    m.bye.release_attempt = a->release_attempt;
    m.bye.release_lease_token = a->release_id > 0 ? a->release_token : NULL;
    a->bye_sent = true;
    if (a->release_id > 0) {
        cs_log(CS_LOG_INFO, "BYE, releasing job %" PRId64 " attempt %" PRId64, a->release_id,
               a->release_attempt);
    } else {
        cs_log(CS_LOG_INFO, "BYE");
    }
    send_msg(a, &m);
}

static void send_heartbeat(cs_agent *a)
{
    agent_job *j = a->job;
    cs_msg m;
    char *tail = cs_child_log_tail(cs_child_log_path(j->child), HB_TAIL_BYTES);
    if (tail == NULL) {
        return;
    }
    cs_msg_init(&m, CS_MSG_HEARTBEAT);
    m.heartbeat.worker = a->cfg.name;
    m.heartbeat.job_id = j->id;
    m.heartbeat.attempt = j->attempt;
    m.heartbeat.lease_token = j->lease_token;
    m.heartbeat.stage = cs_child_stage(j->child);
    m.heartbeat.done = cs_child_done(j->child);
    m.heartbeat.total = cs_child_total(j->child);
    m.heartbeat.detail = cs_child_detail(j->child);
    m.heartbeat.stage_ms = cs_child_stage_ms(j->child);
    m.heartbeat.log_tail = tail;
    send_msg(a, &m);
    free(tail);
}

/* ---- timers ---------------------------------------------------------------------------- */

static void on_delay(uv_timer_t *t)
{
    cs_agent *a = t->data;
    a->waiting = false;
    step(a);
}

static void delay(cs_agent *a, int64_t ms)
{
    if (ms < 0) {
        ms = 0;
    }
    a->waiting = true;
    uv_timer_start(&a->delay, on_delay, (uint64_t)ms, 0);
}

static int64_t next_backoff(cs_agent *a)
{
    int64_t ms = a->backoff_ms;
    a->backoff_ms = ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2;
    return ms / 2 + (int64_t)cs_rng_below(&a->rng, (uint64_t)(ms / 2) + 1);
}

static void on_hb(uv_timer_t *t)
{
    cs_agent *a = t->data;
    a->hb_due = true;
    step(a);
}

/* ---- jobs ------------------------------------------------------------------------------ */

static void job_free(agent_job *j)
{
    if (j == NULL) {
        return;
    }
    cs_child_destroy(j->child);
    free(j->dir);
    free(j->report);
    free(j);
}

static void job_end(cs_agent *a)
{
    /* the lease ends once the runner has ended (its report answered, or the job dropped) */
    assert(a->job != NULL && a->job->exited);
    job_free(a->job);
    a->job = NULL;
    a->jobs_ended++;
    a->hb_due = false;
    uv_timer_stop(&a->hb);
    if (a->cfg.once || (a->cfg.max_jobs > 0 && a->jobs_ended >= a->cfg.max_jobs)) {
        a->claims_done = true;
    }
}

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGKILL:
        return "SIGKILL";
    case SIGTERM:
        return "SIGTERM";
    case SIGSEGV:
        return "SIGSEGV";
    case SIGABRT:
        return "SIGABRT";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGILL:
        return "SIGILL";
    case SIGINT:
        return "SIGINT";
    default:
        return "signal";
    }
}

/* Whether the report of the job now ending should carry a claim for the next one (protocol v2):
 * not when the agent stops, runs once, or reaches max_jobs with this job. */
static bool claim_next(const cs_agent *a)
{
    return a->stop_mode == STOP_NONE && !a->claims_done && !a->cfg.once &&
           !(a->cfg.max_jobs > 0 && a->jobs_ended + 1 >= a->cfg.max_jobs);
}

static void set_report_claim(cs_agent *a, cs_msg_claim *cl)
{
    if (claim_next(a)) {
        cl->worker = a->cfg.name;
        cl->instance = a->instance;
        fill_caps(a, &cl->caps);
    }
}

/* The worker's provenance on the result: its name, its log file, and its host when the runner
 * named none. */
static cs_rc add_provenance(const cs_agent *a, const agent_job *j, cs_result *r, cs_err *err)
{
    free(r->worker);
    free(r->log_path);
    r->log_path = NULL;
    r->worker = cs_strdup(a->cfg.name);
    if (r->host == NULL) {
        r->host = cs_strdup(a->cfg.host);
    }
    if (r->worker == NULL || r->host == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    return cs_path_join(j->dir, "stderr.log", &r->log_path, err);
}

/* RESULT from result.json, or NULL text with reason and *kind set when it is unusable. A metric
 * that is not a finite number (JSON has no NaN or infinity: a runner that computed one writes
 * null) makes the result unusable: the job failed, and running it again gives the same. */
static char *build_result(cs_agent *a, agent_job *j, char *reason, size_t reason_cap,
                          cs_fail_kind *kind)
{
    char *path = NULL, *text = NULL;
    cs_err err = {0};
    cs_msg m;
    cs_msg_init(&m, CS_MSG_RESULT);
    cs_rc rc = cs_path_join(j->dir, "result.json", &path, &err);
    if (rc == CS_OK) {
        rc = cs_result_read_file(path, &m.result.result, &err);
    }
    if (rc == CS_ERANGE) {
        snprintf(reason, reason_cap, "exited 0 but result.json is unusable: %s", err.msg);
        *kind = CS_FAIL_BAD_INPUT;
        goto cleanup;
    }
    if (rc != CS_OK) {
        snprintf(reason, reason_cap, "exited 0 but result.json is unusable: %s", err.msg);
        goto cleanup;
    }
    if (add_provenance(a, j, &m.result.result, &err) != CS_OK) {
        snprintf(reason, reason_cap, "result.json cannot be sent: %s", err.msg);
        goto cleanup;
    }
    m.token = a->cfg.token;
    m.req_id = ++a->req_id;
    m.result.worker = a->cfg.name;
    m.result.job_id = j->id;
    m.result.attempt = j->attempt;
    m.result.lease_token = j->lease_token;
    set_report_claim(a, &m.result.claim);
    if (cs_msg_encode(&m, &text, NULL, &err) != CS_OK) {
        snprintf(reason, reason_cap, "result.json cannot be sent: %s", err.msg);
        text = NULL;
    }
cleanup:
    cs_result_fini(&m.result.result); /* the rest of m is borrowed */
    free(path);
    return text;
}

/* error.json's kind and message, when there is one. */
static void read_error_json(const agent_job *j, cs_fail_kind *kind, char *msg, size_t cap)
{
    char *path = NULL;
    cJSON *doc = NULL;
    *kind = CS_FAIL_NONE;
    msg[0] = '\0';
    if (cs_path_join(j->dir, "error.json", &path, NULL) != CS_OK) {
        return;
    }
    if (cs_json_parse_file(path, 1 << 20, &doc, NULL) == CS_OK && cJSON_IsObject(doc)) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(doc, "kind");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "message");
        if (cJSON_IsString(k)) {
            *kind = cs_fail_kind_from_name(k->valuestring);
            if (*kind == CS_FAIL_NONE || *kind > CS_FAIL_INTERNAL) {
                *kind = CS_FAIL_INTERNAL;
            }
        } else {
            *kind = CS_FAIL_INTERNAL;
        }
        snprintf(msg, cap, "%s",
                 cJSON_IsString(m) ? m->valuestring : "(error.json has no message)");
    }
    cJSON_Delete(doc);
    free(path);
}

static char *build_fail(cs_agent *a, agent_job *j, const cs_child_outcome *o,
                        const char *result_reason, cs_fail_kind result_kind)
{
    char reason[2048], emsg[1536];
    cs_fail_kind kind = CS_FAIL_CRASH, ekind;
    char *text = NULL, *tail = NULL;
    cs_err err = {0};
    cs_msg m;

    read_error_json(j, &ekind, emsg, sizeof emsg);
    if (result_reason != NULL) {
        kind = result_kind;
        snprintf(reason, sizeof reason, "%s", result_reason);
    } else if (o->stopped_by == CS_CHILD_STOP_TIMEOUT) {
        kind = CS_FAIL_TIMEOUT;
        snprintf(reason, sizeof reason, "stopped after the job timeout of %" PRId64 " s",
                 j->timeout_s);
    } else if (o->stopped_by == CS_CHILD_STOP_CANCEL) {
        kind = CS_FAIL_CANCELLED;
        snprintf(reason, sizeof reason, "cancelled by the coordinator");
    } else if (o->oom) {
        kind = CS_FAIL_OOM;
        snprintf(reason, sizeof reason,
                 "killed by the kernel OOM killer (cgroup memory.events oom_kill %" PRId64
                 " -> %" PRId64 ")",
                 o->oom_before, o->oom_after);
    } else if (ekind != CS_FAIL_NONE) {
        kind = ekind;
        snprintf(reason, sizeof reason, "%s", emsg);
    } else if (o->signal == SIGKILL && !o->sigkill_sent) {
        snprintf(reason, sizeof reason, "%s",
                 o->oom_before < 0 ? "killed by SIGKILL, not sent by the worker: possibly the "
                                     "kernel OOM killer (no cgroup oom_kill counter to check)"
                                   : "killed by SIGKILL from outside the worker (the cgroup "
                                     "oom_kill counter did not grow)");
    } else if (o->signal != 0) {
        snprintf(reason, sizeof reason, "killed by signal %d (%s)", o->signal,
                 signal_name(o->signal));
    } else {
        snprintf(reason, sizeof reason, "exited with status %" PRId64 " without error.json",
                 o->exit_status);
    }
    tail = cs_child_log_tail(j->child ? cs_child_log_path(j->child) : NULL, FAIL_TAIL);
    cs_msg_init(&m, CS_MSG_FAIL);
    m.token = a->cfg.token;
    m.req_id = ++a->req_id;
    m.fail.worker = a->cfg.name;
    m.fail.job_id = j->id;
    m.fail.attempt = j->attempt;
    m.fail.lease_token = j->lease_token;
    m.fail.kind = kind;
    m.fail.reason = reason;
    m.fail.exit_status = o->exit_status >= 0 && o->exit_status <= 255 ? o->exit_status : -1;
    m.fail.signal = o->signal > 0 && o->signal <= 127 ? o->signal : 0;
    m.fail.log_tail = tail != NULL ? tail : "";
    /* the log stays in the attempt folder: calsweep logs reads it on this machine */
    m.fail.log_path = j->child ? cs_child_log_path(j->child) : NULL;
    set_report_claim(a, &m.fail.claim);
    if (cs_msg_encode(&m, &text, NULL, &err) != CS_OK) {
        cs_log(CS_LOG_ERROR, "cannot encode FAIL: %s", err.msg);
        text = NULL;
    }
    cs_log(CS_LOG_INFO, "job %" PRId64 " attempt %" PRId64 " failed (%s): %s", j->id, j->attempt,
           cs_fail_kind_name(kind), reason);
    free(tail);
    return text;
}

static void on_child_exit(cs_child *c, const cs_child_outcome *o, void *data)
{
    cs_agent *a = data;
    agent_job *j = a->job;
    (void)c;
    if (j == NULL) {
        return;
    }
    assert(!j->exited && j->report == NULL); /* a runner ends once, and only then is reported */
    j->exited = true;
    a->hb_due = false;
    uv_timer_stop(&a->hb);
    if (o->stopped_by == CS_CHILD_STOP_RELEASE) {
        j->drop = true;
        a->release_id = j->id;
        a->release_attempt = j->attempt;
        memcpy(a->release_token, j->lease_token, sizeof a->release_token);
    } else if (o->stopped_by == CS_CHILD_STOP_STALE) {
        j->drop = true;
    } else {
        char reason[512];
        char *text = NULL;
        cs_fail_kind rkind = CS_FAIL_INTERNAL;
        if (o->stopped_by == CS_CHILD_STOP_NONE && o->exit_status == 0) {
            text = build_result(a, j, reason, sizeof reason, &rkind);
            if (text != NULL) {
                j->rep_type = CS_MSG_RESULT;
                cs_log(CS_LOG_INFO, "job %" PRId64 " attempt %" PRId64 " done in %" PRId64 " ms",
                       j->id, j->attempt, o->elapsed_ms);
            }
        }
        if (text == NULL) {
            text = build_fail(a, j, o,
                              o->stopped_by == CS_CHILD_STOP_NONE && o->exit_status == 0 ? reason
                                                                                         : NULL,
                              rkind);
            j->rep_type = CS_MSG_FAIL;
        }
        j->report = text;
        if (text == NULL) {
            j->drop = true;
        }
    }
    if (a->inflight == CS_MSG_HEARTBEAT) {
        cancel_inflight(a);
    }
    step(a);
}

/* The job names its backend (job.schema.json: model.backend); the worker runs exactly that one
 * and refuses a job whose backend it cannot run, never falling back to another. Fills argv (at
 * least 6 entries; borrowed strings). CS_ENOTSUP with *kind spawn (an exec job, no template:
 * another worker may run it) or bad_input (a backend no worker runs). */
static cs_rc backend_argv(const cs_agent *a, const char *config, const char **argv,
                          cs_fail_kind *kind, cs_err *err)
{
    char bdesc[64] = "";
    const char *backend = "native";
    cJSON *cfg = NULL;
    cs_rc rc = CS_OK;
    if (cs_json_parse(config, strlen(config), "job", &cfg, NULL) == CS_OK) {
        const cJSON *mo = cJSON_GetObjectItemCaseSensitive(cfg, "model");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(mo, "backend");
        if (cJSON_IsString(b)) {
            backend = b->valuestring;
        } else if (b != NULL && !cJSON_IsNull(b)) {
            backend = cs_json_describe(b, bdesc, sizeof bdesc);
        }
    }
    if (strcmp(backend, "exec") == 0 && a->cfg.exec_template != NULL) {
        argv[0] = "/bin/sh";
        argv[1] = "-c";
        argv[2] = a->cfg.exec_template;
        argv[3] = "calsweep-exec";
        argv[4] = "job.json";
        argv[5] = NULL;
    } else if (strcmp(backend, "native") == 0) {
        argv[0] = a->cfg.runner;
        argv[1] = "job.json";
        argv[2] = NULL;
    } else if (strcmp(backend, "exec") == 0) {
        *kind = CS_FAIL_SPAWN;
        rc = cs_err_set(err, CS_ENOTSUP, 0,
                        "model.backend is \"exec\" but this worker has no --exec-template: it "
                        "runs only the native backend and does not run this job with another");
    } else {
        *kind = CS_FAIL_BAD_INPUT;
        rc = cs_err_set(err, CS_ENOTSUP, 0,
                        "model.backend is %s%s%s: this worker runs \"native\"%s; a sweep names "
                        "\"native\" or \"exec\" (the worker's --exec-template)",
                        bdesc[0] ? "" : "\"", backend, bdesc[0] ? "" : "\"",
                        a->cfg.exec_template != NULL ? " and \"exec\"" : "");
    }
    cJSON_Delete(cfg);
    return rc;
}

/* The runner's environment: the job's ids and threads, and the folders it resolves paths
 * against. */
typedef struct runner_env {
    char id[64], att[64], thr[64];
    cs_buf base, roots, data, cache;
    const char *env[8];
} runner_env;

static void runner_env_fini(runner_env *e)
{
    cs_buf_fini(&e->base);
    cs_buf_fini(&e->roots);
    cs_buf_fini(&e->data);
    cs_buf_fini(&e->cache);
}

/* "NAME=" and the roots, each made absolute when it exists, joined by ':'. */
static bool put_roots(cs_buf *b, const char *name, const char *const *roots, size_t n)
{
    char abs[4096];
    bool ok = cs_buf_printf(b, "%s=", name) == CS_OK;
    for (size_t r = 0; ok && r < n; r++) {
        const char *root = roots[r];
        if (realpath(root, abs) != NULL) {
            root = abs;
        }
        ok = cs_buf_printf(b, "%s%s", r ? ":" : "", root) == CS_OK;
    }
    return ok;
}

/* The runner works in the job's folder: it resolves the config's relative paths against the
 * folder this worker runs in, and looks for model folders under the worker's model roots. */
static cs_rc runner_env_make(const cs_agent *a, const agent_job *j, runner_env *e, cs_err *err)
{
    char cwd[4096];
    memset(e, 0, sizeof *e);
    snprintf(e->id, sizeof e->id, "CALSWEEP_JOB_ID=%" PRId64, j->id);
    snprintf(e->att, sizeof e->att, "CALSWEEP_ATTEMPT=%" PRId64, j->attempt);
    snprintf(e->thr, sizeof e->thr, "CALSWEEP_THREADS=%" PRId64, a->cfg.threads);
    bool ok =
            getcwd(cwd, sizeof cwd) != NULL &&
            cs_buf_printf(&e->base, "CALSWEEP_BASE_DIR=%s", cwd) == CS_OK &&
            put_roots(&e->roots, "CALSWEEP_MODEL_ROOTS", a->cfg.model_root, a->cfg.n_model_root) &&
            put_roots(&e->data, "CALSWEEP_DATA_ROOTS", a->cfg.data_root, a->cfg.n_data_root);
    if (ok && a->cfg.n_data_root == 0) {
        ok = cs_buf_printf(&e->data, "%s", cwd) == CS_OK;
    }
    if (ok && a->cfg.cache_dir != NULL) {
        const char *cd = a->cfg.cache_dir;
        if (cd[0] != '/') {
            ok = cs_buf_printf(&e->cache, "CALSWEEP_CACHE_DIR=%s/%s", cwd, cd) == CS_OK;
        } else {
            ok = cs_buf_printf(&e->cache, "CALSWEEP_CACHE_DIR=%s", cd) == CS_OK;
        }
    }
    if (!ok) {
        return cs_err_set(err, CS_ENOMEM, 0, "cannot set up the runner's environment");
    }
    const char *list[] = {e->id,         e->att,       e->thr,        e->base.data,
                          e->roots.data, e->data.data, e->cache.data, NULL};
    memcpy(e->env, list, sizeof list); /* cache.data NULL (the end) without a cache */
    return CS_OK;
}

/* The job's folder with job.json in it, and no result.json or error.json: a folder left by an
 * earlier run of this attempt must not lend it its outcome. */
static cs_rc job_dir_make(const cs_agent *a, agent_job *j, const char *config, cs_err *err)
{
    static const char *const stale[] = {"result.json", "error.json"};
    char name[64], *path = NULL;
    snprintf(name, sizeof name, "%" PRId64 "-%" PRId64, j->id, j->attempt);
    cs_rc rc = cs_path_join(a->cfg.work_dir, name, &j->dir, err);
    if (rc == CS_OK) {
        rc = cs_path_mkdir_p(j->dir, 0755, err);
    }
    for (size_t i = 0; rc == CS_OK && i < sizeof stale / sizeof stale[0]; i++) {
        if (cs_path_join(j->dir, stale[i], &path, NULL) == CS_OK) {
            unlink(path);
        }
        free(path);
        path = NULL;
    }
    if (rc == CS_OK) {
        rc = cs_path_join(j->dir, "job.json", &path, err);
    }
    if (rc == CS_OK) {
        rc = cs_path_write_atomic(path, config, strlen(config), 0644, err);
    }
    free(path);
    return rc;
}

/* The runner could not be started: the job's report is a FAIL of kind fkind. */
static void spawn_failed(cs_agent *a, agent_job *j, cs_fail_kind fkind, const cs_err *err)
{
    char *text = NULL;
    cs_msg m;
    cs_log(CS_LOG_ERROR, "job %" PRId64 ": %s", j->id, err->msg);
    cs_msg_init(&m, CS_MSG_FAIL);
    m.token = a->cfg.token;
    m.req_id = ++a->req_id;
    m.fail.worker = a->cfg.name;
    m.fail.job_id = j->id;
    m.fail.attempt = j->attempt;
    m.fail.lease_token = j->lease_token;
    m.fail.kind = fkind;
    m.fail.reason = err->msg;
    m.fail.exit_status = -1;
    m.fail.log_tail = "";
    set_report_claim(a, &m.fail.claim);
    if (cs_msg_encode(&m, &text, NULL, NULL) != CS_OK) {
        text = NULL;
    }
    j->exited = true;
    j->report = text;
    j->rep_type = CS_MSG_FAIL;
    j->drop = text == NULL;
}

static void start_job(cs_agent *a, const cs_msg_job *mj)
{
    agent_job *j = calloc(1, sizeof *j);
    const char *argv[6];
    runner_env env;
    cs_err err = {0};
    cs_fail_kind fkind = CS_FAIL_SPAWN;

    if (j == NULL) {
        cs_log(CS_LOG_ERROR, "out of memory starting job %" PRId64, mj->job_id);
        return;
    }
    assert(a->job == NULL); /* one job at a time: a JOB comes only in reply to a CLAIM */
    a->job = j;
    j->id = mj->job_id;
    j->attempt = mj->attempt;
    snprintf(j->lease_token, sizeof j->lease_token, "%s", mj->lease_token);
    assert(cs_proto_token_ok(j->lease_token)); /* the lease it holds (JOB was decoded) */
    j->timeout_s = mj->timeout_s;
    pthread_mutex_lock(&a->mu);
    a->stats.jobs_started++;
    pthread_mutex_unlock(&a->mu);
    cs_log(CS_LOG_INFO,
           "job %" PRId64 " attempt %" PRId64 " (lease %" PRId64 " s, timeout %" PRId64 " s)",
           j->id, j->attempt, mj->lease_s, mj->timeout_s);
    cs_rc rc = runner_env_make(a, j, &env, &err);
    if (rc == CS_OK) {
        rc = job_dir_make(a, j, mj->config, &err);
    }
    if (rc == CS_OK) {
        rc = backend_argv(a, mj->config, argv, &fkind, &err);
    }
    if (rc == CS_OK) {
        cs_child_spec spec = {.dir = j->dir,
                              .argv = argv,
                              .env = env.env,
                              .timeout_ms = mj->timeout_s > 0 ? mj->timeout_s * 1000 : 0,
                              .kill_grace_ms = a->cfg.kill_grace_ms,
                              .guard = a->cfg.guard};
        rc = cs_child_create(&a->loop, &j->child, &err);
        if (rc == CS_OK) {
            rc = cs_child_start(j->child, &spec, on_child_exit, a, &err);
        }
    }
    runner_env_fini(&env);
    if (rc != CS_OK) {
        spawn_failed(a, j, fkind, &err);
        return;
    }
    /* at least three heartbeats per lease, so one lost heartbeat never loses the lease */
    int64_t hb_ms = a->cfg.heartbeat_ms;
    if (mj->lease_s > 0 && mj->lease_s * 1000 / 3 < hb_ms) {
        hb_ms = mj->lease_s * 1000 / 3 > 100 ? mj->lease_s * 1000 / 3 : 100;
    }
    uv_timer_start(&a->hb, on_hb, (uint64_t)hb_ms, (uint64_t)hb_ms);
}

/* ---- the state machine ----------------------------------------------------------------- */

static void log_error_reply(cs_agent *a, cs_msg_type t, const cs_msg *rep)
{
    cs_log_level lvl = rep->error.code == a->last_err_code ? CS_LOG_DEBUG : CS_LOG_WARN;
    a->last_err_code = rep->error.code;
    cs_log(lvl, "%s refused: %s: %s", cs_msg_type_name(t), cs_rc_name(rep->error.code),
           rep->error.message ? rep->error.message : "");
}

static void finish(cs_agent *a);

/* A refusal that no retry can fix (a wrong token, another protocol version): log it once, naming
 * the endpoint, and end the agent without BYE (calsweepd would refuse that too); cs_agent_run
 * returns code with the message, so calsweep-worker exits non-zero. A running job is stopped. */
static void fatal(cs_agent *a, cs_rc code, const char *fmt, ...) CS_PRINTF(3, 4);
static void fatal(cs_agent *a, cs_rc code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->fatal_msg, sizeof a->fatal_msg, fmt, ap);
    va_end(ap);
    a->fatal = code;
    cs_log(CS_LOG_ERROR, "%s", a->fatal_msg);
    finish(a);
}

/* A JOB answered a CLAIM or the claim of a report: run it, or hand it back in the BYE when the
 * agent is stopping. */
static void got_job(cs_agent *a, const cs_msg_job *job)
{
    if (a->stop_mode != STOP_NONE) {
        a->release_id = job->job_id;
        a->release_attempt = job->attempt;
        snprintf(a->release_token, sizeof a->release_token, "%s", job->lease_token);
    } else {
        start_job(a, job);
    }
}

/* The reply to request t as a message in *rep: CS_OK; another code when there is none (rv, or a
 * reply that does not decode); CS_ECANCELED when the agent gave up for good (fatal called). */
static cs_rc decode_reply(cs_agent *a, cs_msg_type t, int rv, nng_msg *nm, cs_msg *rep)
{
    cs_err err = {0};
    cs_rc rc = CS_EIO;
    if (rv == 0 && nm != NULL) {
        rc = cs_msg_decode(nng_msg_body(nm), nng_msg_len(nm), rep, &err);
        if (rc == CS_EVERSION) {
            fatal(a, CS_EVERSION,
                  "calsweepd at %s speaks another protocol version (%s): upgrade calsweepd and "
                  "the workers together",
                  a->cfg.coordinator, err.msg);
            return CS_ECANCELED;
        }
        if (rc != CS_OK) {
            cs_log(CS_LOG_WARN, "reply to %s: %s", cs_msg_type_name(t), err.msg);
        }
    } else if (rv != NNG_ECANCELED) {
        cs_log(t == CS_MSG_CLAIM || t == CS_MSG_HELLO ? CS_LOG_DEBUG : CS_LOG_INFO,
               "%s: no reply (%s)", cs_msg_type_name(t), nng_strerror(rv));
        /* Over tls+tcp:// an unanswered HELLO may be a handshake that failed (nng retries it
         * silently): probe it, and give up naming the cause, as for a wrong token. The probe
         * blocks the loop a few seconds at most, only while no job runs. */
        if (t == CS_MSG_HELLO && !a->registered && agent_tls(a) != NULL &&
            cs_net_tls_diagnose(a->cfg.coordinator, agent_tls(a), 3000, &err) != CS_OK) {
            fatal(a, CS_EAUTH, "%s", err.msg);
            return CS_ECANCELED;
        }
    }
    return rc;
}

/* No usable reply to t: BYE ends the agent, a heartbeat is only missed, anything else is sent
 * again after a backoff. */
static void no_reply(cs_agent *a, cs_msg_type t, int rv)
{
    pthread_mutex_lock(&a->mu);
    a->stats.request_errors++;
    pthread_mutex_unlock(&a->mu);
    if (t == CS_MSG_BYE) {
        finish(a);
    } else if (t != CS_MSG_HEARTBEAT && !(rv == NNG_ECANCELED && a->stop_mode != STOP_NONE)) {
        delay(a, next_backoff(a));
    }
}

/* calsweepd answers CS_EAUTH "authentication failed" to a wrong or missing token (and to
 * anything it cannot read when it has one), CS_EVERSION to another protocol: permanent, so the
 * agent gives up instead of retrying forever. Whether it did. */
static bool refused_for_good(cs_agent *a, cs_msg_type t, const cs_msg *rep)
{
    if (rep->type != CS_MSG_ERROR ||
        (rep->error.code != CS_EAUTH && rep->error.code != CS_EVERSION)) {
        return false;
    }
    char what[200];
    snprintf(what, sizeof what, "%s: %s", cs_msg_type_name(t),
             rep->error.message != NULL ? rep->error.message : "");
    fatal(a, rep->error.code,
          rep->error.code == CS_EAUTH
                  ? "calsweepd at %s refused this worker (%s): check --token-file "
                    "(or CALSWEEP_TOKEN_FILE) against calsweepd's token; not retrying"
                  : "calsweepd at %s refused this worker's protocol version (%s): upgrade "
                    "calsweepd and the workers together",
          a->cfg.coordinator, what);
    return true;
}

static void on_hello_reply(cs_agent *a, const cs_msg *rep)
{
    if (rep->type == CS_MSG_OK) {
        a->registered = true;
        a->last_err_code = CS_OK;
        cs_log(CS_LOG_INFO, "registered with %s as %s (%zu models)", a->cfg.coordinator,
               a->cfg.name, a->n_models);
        return;
    }
    if (rep->type == CS_MSG_ERROR) {
        log_error_reply(a, CS_MSG_HELLO, rep);
    }
    delay(a, next_backoff(a) + (rep->type == CS_MSG_ERROR ? 1000 : 0));
}

static void on_claim_reply(cs_agent *a, const cs_msg *rep)
{
    assert(a->job == NULL); /* a worker claims only while it holds no lease */
    if (rep->type == CS_MSG_JOB) {
        if (a->cfg.once) {
            a->claims_done = true;
        }
        got_job(a, &rep->job);
    } else if (rep->type == CS_MSG_NO_WORK) {
        if (a->cfg.once) {
            a->claims_done = true;
        } else {
            delay(a, rep->no_work.retry_ms > 60000 ? 60000 : rep->no_work.retry_ms);
        }
    } else {
        if (rep->type == CS_MSG_ERROR) {
            log_error_reply(a, CS_MSG_CLAIM, rep);
        }
        a->registered = false;
        delay(a, next_backoff(a));
    }
}

static void on_heartbeat_reply(cs_agent *a, const cs_msg *rep)
{
    if (a->job == NULL || a->job->exited) {
        return;
    }
    if (rep->type == CS_MSG_ACK && rep->ack.cancel && !a->job->cancel_seen) {
        a->job->cancel_seen = true;
        pthread_mutex_lock(&a->mu);
        a->stats.cancels++;
        pthread_mutex_unlock(&a->mu);
        cs_log(CS_LOG_INFO, "job %" PRId64 ": cancel requested", a->job->id);
        cs_child_stop(a->job->child, CS_CHILD_STOP_CANCEL);
    } else if (rep->type == CS_MSG_ERROR && rep->error.code == CS_ESTALE) {
        cs_log(CS_LOG_WARN, "job %" PRId64 " attempt %" PRId64 " is stale: stopping it", a->job->id,
               a->job->attempt);
        cs_child_stop(a->job->child, CS_CHILD_STOP_STALE);
    } else if (rep->type == CS_MSG_ERROR) {
        log_error_reply(a, CS_MSG_HEARTBEAT, rep);
    }
}

/* The reply to the report t (RESULT or FAIL) of the job that ended. */
static void on_report_reply(cs_agent *a, cs_msg_type t, const cs_msg *rep)
{
    /* a report is sent only for a job that ended and is not dropped */
    assert(a->job != NULL && a->job->exited && a->job->report != NULL && a->job->rep_type == t);
    if (rep->type == CS_MSG_ACK || rep->type == CS_MSG_OK || rep->type == CS_MSG_JOB ||
        rep->type == CS_MSG_NO_WORK) {
        /* Stored. JOB and NO_WORK answer the claim that rode on the report. */
        pthread_mutex_lock(&a->mu);
        if (t == CS_MSG_RESULT) {
            a->stats.results++;
        } else {
            a->stats.fails++;
        }
        pthread_mutex_unlock(&a->mu);
        job_end(a);
        if (rep->type == CS_MSG_JOB) {
            got_job(a, &rep->job);
        } else if (rep->type == CS_MSG_NO_WORK && !a->claims_done) {
            delay(a, rep->no_work.retry_ms > 60000 ? 60000 : rep->no_work.retry_ms);
        }
    } else if (rep->type == CS_MSG_ERROR && rep->error.code == CS_ESTALE) {
        cs_log(CS_LOG_WARN, "%s of job %" PRId64 " refused as stale: dropped", cs_msg_type_name(t),
               a->job->id);
        pthread_mutex_lock(&a->mu);
        a->stats.dropped++;
        pthread_mutex_unlock(&a->mu);
        job_end(a);
    } else {
        if (rep->type == CS_MSG_ERROR) {
            log_error_reply(a, t, rep);
        }
        delay(a, next_backoff(a));
    }
}

static void handle_reply(cs_agent *a, cs_msg_type t, int rv, nng_msg *nm)
{
    cs_msg rep;
    cs_msg_init(&rep, CS_MSG_NONE);
    cs_rc rc = decode_reply(a, t, rv, nm, &rep);
    if (nm != NULL) {
        nng_msg_free(nm);
    }
    if (rc == CS_ECANCELED) {
        return;
    }
    if (rc != CS_OK) {
        no_reply(a, t, rv);
        return;
    }
    cs_log(CS_LOG_DEBUG, "<- %s", cs_msg_type_name(rep.type));
    if (refused_for_good(a, t, &rep)) {
        cs_msg_fini(&rep);
        return;
    }
    a->backoff_ms = BACKOFF_MIN_MS;
    switch (t) {
    case CS_MSG_HELLO:
        on_hello_reply(a, &rep);
        break;
    case CS_MSG_CLAIM:
        on_claim_reply(a, &rep);
        break;
    case CS_MSG_HEARTBEAT:
        on_heartbeat_reply(a, &rep);
        break;
    case CS_MSG_RESULT:
    case CS_MSG_FAIL:
        on_report_reply(a, t, &rep);
        break;
    case CS_MSG_BYE:
        finish(a);
        break;
    default:
        break;
    }
    cs_msg_fini(&rep);
}

static void step(cs_agent *a)
{
    if (a->finished || a->inflight != CS_MSG_NONE) {
        return;
    }
    agent_job *j = a->job;
    if (j != NULL) {
        if (!j->exited) {
            if (a->hb_due) {
                a->hb_due = false;
                send_heartbeat(a);
            }
            return;
        }
        if (!j->drop && j->report != NULL) {
            if (!a->waiting) {
                send_text(a, j->rep_type, j->report, strlen(j->report));
            }
            return;
        }
        if (j->drop && a->release_id != j->id) {
            pthread_mutex_lock(&a->mu);
            a->stats.dropped++;
            pthread_mutex_unlock(&a->mu);
        }
        job_end(a);
    }
    if (a->stop_mode != STOP_NONE || a->claims_done) {
        if (!a->bye_sent) {
            uv_timer_stop(&a->delay);
            a->waiting = false;
            send_bye(a);
        }
        return;
    }
    if (a->waiting) {
        return;
    }
    if (!a->registered) {
        send_hello(a);
    } else {
        send_claim(a);
    }
}

static void handle_stop(cs_agent *a, int mode)
{
    if (mode <= a->stop_mode) {
        return;
    }
    a->stop_mode = mode;
    cs_log(CS_LOG_INFO, "stopping (%s)", mode == STOP_RELEASE ? "release" : "drain");
    if (a->job != NULL && !a->job->exited && mode == STOP_RELEASE) {
        cs_child_stop(a->job->child, CS_CHILD_STOP_RELEASE);
    }
    if (a->job == NULL && (a->inflight == CS_MSG_CLAIM || a->inflight == CS_MSG_HELLO)) {
        cancel_inflight(a);
    }
    step(a);
}

static void on_wake(uv_async_t *h)
{
    cs_agent *a = h->data;
    pthread_mutex_lock(&a->mu);
    bool ready = a->reply_ready;
    int rv = a->reply_rv;
    nng_msg *m = a->reply_msg;
    int stop = a->stop_req;
    a->reply_ready = false;
    a->reply_msg = NULL;
    pthread_mutex_unlock(&a->mu);
    if (ready) {
        cs_msg_type t = a->inflight;
        a->inflight = CS_MSG_NONE;
        a->phase = PH_IDLE;
        handle_reply(a, t, rv, m);
    }
    if (stop > a->stop_mode) {
        handle_stop(a, stop);
    }
    step(a);
}

static void on_drain_deadline(uv_timer_t *t)
{
    cs_agent *a = t->data;
    if (a->job != NULL && !a->job->exited) {
        cs_log(CS_LOG_INFO, "drain: the job has not finished in %" PRId64 " s: handing it back",
               a->cfg.drain_s);
    }
    handle_stop(a, STOP_RELEASE);
}

static void on_signal(uv_signal_t *s, int signum)
{
    cs_agent *a = s->data;
    int mode = a->cfg.release_on_term ? STOP_RELEASE : STOP_DRAIN;
    int64_t now = cs_time_mono_ms();
    /* A second signal means: do not wait for the job. Copies of the first that arrive together
     * (timeout(1) and shells signal the child and then its process group) do not count. */
    if (a->stop_mode != STOP_NONE && now - a->first_signal_ms >= 1000) {
        mode = STOP_RELEASE;
    }
    if (a->stop_mode == STOP_NONE) {
        a->first_signal_ms = now;
    }
    cs_log(CS_LOG_INFO, "signal %d", signum);
    if (mode == STOP_DRAIN && a->stop_mode == STOP_NONE && a->cfg.drain_s > 0) {
        uv_timer_start(&a->drain, on_drain_deadline, (uint64_t)a->cfg.drain_s * 1000, 0);
    }
    handle_stop(a, mode);
}

static void finish(cs_agent *a)
{
    if (a->finished) {
        return;
    }
    a->finished = true;
    pthread_mutex_lock(&a->mu);
    a->wake_closed = true;
    pthread_mutex_unlock(&a->mu);
    nng_aio_stop(a->aio);
    if (a->job != NULL) {
        job_free(a->job);
        a->job = NULL;
    }
    uv_close((uv_handle_t *)&a->wake, NULL);
    uv_close((uv_handle_t *)&a->delay, NULL);
    uv_close((uv_handle_t *)&a->hb, NULL);
    uv_close((uv_handle_t *)&a->drain, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
}

/* ---- public ---------------------------------------------------------------------------- */

cs_rc cs_agent_create(const cs_agent_cfg *cfg, cs_agent **out, cs_err *err)
{
    cs_agent *a = NULL;
    cs_rc rc = CS_OK;
    int rv;
    *out = NULL;
    if (cfg->coordinator == NULL || cfg->name == NULL || cfg->host == NULL || cfg->runner == NULL ||
        cfg->work_dir == NULL) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "agent: coordinator, name, host, runner and "
                          "work dir are required");
    }
    if (strlen(cfg->name) == 0 || strlen(cfg->name) > CS_PROTO_MAX_NAME) {
        return cs_err_set(err, CS_EINVAL, 0, "--name: 1..%d bytes", CS_PROTO_MAX_NAME);
    }
    if (cfg->threads < 1 || cfg->mem_mb < 0 || cfg->heartbeat_ms < 10 || cfg->kill_grace_ms < 0) {
        return cs_err_set(err, CS_EINVAL, 0, "agent: threads >= 1, mem >= 0, heartbeat >= 10 ms");
    }
    a = calloc(1, sizeof *a);
    if (a == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "agent");
    }
    a->cfg = *cfg;
    a->backoff_ms = BACKOFF_MIN_MS;
    a->last_err_code = CS_OK;
    cs_rng_seed(&a->rng, (uint64_t)cs_time_wall_ms() ^ ((uint64_t)getpid() << 32));
    if ((rc = cs_proto_new_token(a->instance, err)) != CS_OK) {
        goto fail;
    }
    pthread_mutex_init(&a->mu, NULL);
    a->backends[a->n_backends++] = "native";
    if (cfg->exec_template != NULL) {
        a->backends[a->n_backends++] = "exec";
    }
    if ((rc = cs_path_mkdir_p(cfg->work_dir, 0755, err)) != CS_OK) {
        cs_err_prefix(err, "--work-dir");
        goto fail;
    }
    if ((rc = cs_agent_scan_models(cfg->model_root, cfg->n_model_root, &a->models, &a->n_models,
                                   err)) != CS_OK) {
        goto fail;
    }
    const cs_net_tls *tls = agent_tls(a);
    if ((rc = cs_net_dial(&a->sock, cfg->coordinator, tls,
                          cfg->resend_ms > 0 ? (int)cfg->resend_ms : 30000, err)) != CS_OK) {
        goto fail;
    }
    a->sock_open = true;
    if ((rv = nng_ctx_open(&a->ctx, a->sock)) != 0 ||
        (rv = nng_aio_alloc(&a->aio, on_aio, a)) != 0) {
        rc = cs_err_nng(err, rv, CS_ENET, "nng");
        goto fail;
    }
    a->ctx_open = true;
    if ((rv = uv_loop_init(&a->loop)) != 0) {
        rc = cs_err_uv(err, rv, "uv_loop_init");
        goto fail;
    }
    a->loop_init = true;
    uv_async_init(&a->loop, &a->wake, on_wake);
    uv_timer_init(&a->loop, &a->delay);
    uv_timer_init(&a->loop, &a->hb);
    uv_timer_init(&a->loop, &a->drain);
    uv_signal_init(&a->loop, &a->sigterm);
    uv_signal_init(&a->loop, &a->sigint);
    a->wake.data = a->delay.data = a->hb.data = a->drain.data = a->sigterm.data = a->sigint.data =
            a;
    *out = a;
    return CS_OK;
fail:
    cs_agent_destroy(a);
    return rc;
}

cs_rc cs_agent_run(cs_agent *a, cs_err *err)
{
    if (a->cfg.handle_signals) {
        uv_signal_start(&a->sigterm, on_signal, SIGTERM);
        uv_signal_start(&a->sigint, on_signal, SIGINT);
    }
    cs_log(CS_LOG_INFO, "worker %s: coordinator %s, %zu models, runner %s", a->cfg.name,
           a->cfg.coordinator, a->n_models, a->cfg.runner);
    step(a);
    int rv = uv_run(&a->loop, UV_RUN_DEFAULT);
    (void)rv;
    if (a->fatal != CS_OK) {
        return cs_err_set(err, a->fatal, 0, "%s", a->fatal_msg);
    }
    if (!a->finished) {
        return cs_err_set(err, CS_EINTERNAL, 0, "the loop ended before BYE");
    }
    return CS_OK;
}

void cs_agent_request_stop(cs_agent *a, cs_agent_stop_mode mode)
{
    pthread_mutex_lock(&a->mu);
    int m = mode == CS_AGENT_RELEASE ? STOP_RELEASE : STOP_DRAIN;
    if (m > a->stop_req) {
        a->stop_req = m;
    }
    if (!a->wake_closed) {
        uv_async_send(&a->wake);
    }
    pthread_mutex_unlock(&a->mu);
}

void cs_agent_get_stats(cs_agent *a, cs_agent_stats *out)
{
    pthread_mutex_lock(&a->mu);
    *out = a->stats;
    pthread_mutex_unlock(&a->mu);
}

void cs_agent_destroy(cs_agent *a)
{
    if (a == NULL) {
        return;
    }
    if (a->aio != NULL) {
        nng_aio_stop(a->aio);
    }
    if (a->loop_init) {
        if (!a->finished) {
            finish(a);
        }
        uv_run(&a->loop, UV_RUN_DEFAULT);
        uv_loop_close(&a->loop);
    }
    if (a->aio != NULL) {
        nng_aio_free(a->aio);
    }
    if (a->ctx_open) {
        nng_ctx_close(a->ctx);
    }
    if (a->sock_open) {
        nng_close(a->sock);
    }
    if (a->reply_msg != NULL) {
        nng_msg_free(a->reply_msg);
    }
    for (size_t i = 0; i < a->n_models; i++) {
        free(a->models[i]);
    }
    free(a->models);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
