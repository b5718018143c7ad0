/* cs_daemon.c - see cs_daemon.h. */
#include "cs_daemon.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_control.h"
#include "cs_dlog.h"
#include "cs_json.h"
#include "cs_log.h"
#include "cs_store.h"
#include "cs_time.h"
#include "cs_watch.h"

enum { EP_WORK = 0, EP_CONTROL = 1, EP_COUNT = 2 };
enum { ST_IDLE = 0, ST_RECV, ST_QUEUED, ST_HELD, ST_WORK, ST_SEND };
enum { AUTH_RING = 256, HOSTS = 1024 };

typedef struct dctx dctx;
struct dctx {
    struct cs_daemon *d;
    int ep;
    nng_ctx ctx;
    nng_aio *aio;
    _Atomic int state;
    nng_msg *in;        /* received, while queued */
    dctx *next;         /* queue link */
    dctx *hnext;        /* held-claim list link */
    cs_msg req;         /* decoded request (held claims keep it) */
    char *out;          /* encoded reply to send */
    size_t out_len;     /* its length */
    bool in_batch;      /* its reply depends on the commit of the batch */
    int64_t hold_until; /* monotonic ms, held claims */
    uint32_t pipe;      /* nng pipe id of the peer */
    int64_t t_recv;     /* monotonic ms when it arrived (slow-request warnings) */
    uv_work_t work;     /* a RESULTS or WATCH request on the thread pool (ST_WORK) */
    int64_t t_start;    /* monotonic ms when its work was queued */
};

struct cs_daemon {
    cs_daemon_opts o;
    char *token;
    cs_store *store;
    cs_watch *watch; /* WATCH's per-sweep cache, shared by the pool threads */
    uv_loop_t loop;
    uv_async_t async;
    uv_async_t stop_async;
    uv_timer_t reap_timer, hold_timer;
    uv_signal_t sig_term, sig_int;
    bool loop_ready, handles_open, sockets_open, torn_down;
    nng_socket sock[EP_COUNT];
    dctx *ctxs;
    size_t n_ctxs;
    pthread_mutex_t mu;
    dctx *q_head, *q_tail; /* received, waiting for the loop (under mu) */
    dctx *held;            /* held claims (loop thread) */
    _Atomic int n_sending;
    _Atomic bool closing;
    bool stopping;
    int n_work_running; /* RESULTS and WATCH requests on the thread pool (loop thread) */
    bool wake, reap_soon;
    cs_ratelog rl_bad, rl_auth, rl_db, rl_lease;
    uint64_t tls_failed[EP_COUNT]; /* failed TLS handshakes logged so far, per endpoint */
    int64_t pruned_at;             /* monotonic ms of the last worker prune */
    struct {
        char *worker, *host;
    } hosts[HOSTS]; /* worker -> host from HELLO, direct-mapped (a collision forgets one) */
    struct {
        char *worker;
        char instance[CS_PROTO_TOKEN_LEN + 1]; /* "" = none recorded */
        int64_t at;                            /* wall ms of the last store touch */
    } touched[HOSTS];           /* worker -> its last cs_store_worker_touch, direct-mapped */
    uint64_t n_work, n_commits; /* statistics, logged at the stop */
    uint64_t n_requests, n_requests_at_tick; /* any request; idle = none since the last tick */
    uint32_t auth_ring[AUTH_RING];
    size_t auth_pos;
};

/* ---- logging, rate-limited ----------------------------------------------------------------- */

static const char *ep_name(int ep)
{
    return ep == EP_WORK ? "work" : "control";
}

static void log_bad(cs_daemon *d, const dctx *c, const char *what, const char *detail)
{
    if (!cs_ratelog_ok(&d->rl_bad, "bad-message")) {
        return;
    }
    char peer[128], clean[300];
    cs_peer_name(c->pipe, peer, sizeof peer);
    cs_printable(clean, sizeof clean, detail, NULL); /* it may quote the peer's bytes */
    cs_log(CS_LOG_WARN, "%s endpoint, %s: %s: %s", ep_name(c->ep), peer, what, clean);
}

static void log_auth(cs_daemon *d, const dctx *c)
{
    for (size_t i = 0; i < AUTH_RING; i++) {
        if (d->auth_ring[i] == c->pipe) {
            return;
        }
    }
    d->auth_ring[d->auth_pos] = c->pipe;
    d->auth_pos = (d->auth_pos + 1) % AUTH_RING;
    if (!cs_ratelog_ok(&d->rl_auth, "authentication-failure")) {
        return;
    }
    char peer[128];
    cs_peer_name(c->pipe, peer, sizeof peer);
    cs_log(CS_LOG_WARN, "%s endpoint, %s: authentication failed", ep_name(c->ep), peer);
}

/* A report (HEARTBEAT, RESULT, FAIL, BYE.release_job) refused for its lease: one line per refused
 * message (rate-limited), naming the peer and the worker it claimed to be. */
static void log_refused(cs_daemon *d, const dctx *c, const char *worker, const cs_err *err)
{
    if (!cs_ratelog_ok(&d->rl_lease, "refused-report")) {
        return;
    }
    char peer[128], who[80], msg[300];
    cs_peer_name(c->pipe, peer, sizeof peer);
    cs_printable(who, sizeof who, worker, "\"");
    cs_printable(msg, sizeof msg, err->msg, NULL);
    cs_log(CS_LOG_WARN, "work endpoint, %s: %s from worker \"%s\" refused: %s", peer,
           cs_msg_type_name(c->req.type), who, msg);
}

/* ---- replies ------------------------------------------------------------------------------- */

/* Encodes rep as c's reply (replacing one already there). */
static void set_reply(dctx *c, const cs_msg *rep)
{
    cs_err err = {0};
    free(c->out);
    c->out = NULL;
    c->out_len = 0;
    if (cs_msg_encode(rep, &c->out, &c->out_len, &err) == CS_OK) {
        return;
    }
    cs_log(CS_LOG_ERROR, "encode %s reply: %s", cs_msg_type_name(rep->type), err.msg);
    cs_msg e;
    cs_msg_init(&e, CS_MSG_ERROR);
    e.error.code = CS_EINTERNAL;
    e.error.message = "internal error";
    if (cs_msg_encode(&e, &c->out, &c->out_len, &err) != CS_OK) {
        c->out = NULL;
    }
}

static void set_error(dctx *c, cs_rc code, const char *message)
{
    cs_msg e;
    cs_msg_init(&e, CS_MSG_ERROR);
    e.error.code = code;
    char buf[CS_PROTO_MAX_TEXT];
    snprintf(buf, sizeof buf, "%s", message != NULL ? message : "");
    e.error.message = buf;
    set_reply(c, &e);
}

static void set_simple(dctx *c, cs_msg_type t)
{
    cs_msg m;
    cs_msg_init(&m, t);
    set_reply(c, &m);
}

/* Sends c's reply (or nothing when there is none: the peer's REQ resends) and frees what c holds
 * of the request. */
static void send_reply(cs_daemon *d, dctx *c)
{
    nng_msg *m = NULL;
    cs_msg_fini(&c->req);
    c->in_batch = false;
    if (c->out == NULL || nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, c->out, c->out_len) != 0) {
        if (m != NULL) {
            nng_msg_free(m);
        }
        free(c->out);
        c->out = NULL;
        atomic_store(&c->state, ST_RECV);
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    free(c->out);
    c->out = NULL;
    atomic_fetch_add(&d->n_sending, 1);
    atomic_store(&c->state, ST_SEND);
    nng_aio_set_msg(c->aio, m);
    nng_ctx_send(c->ctx, c->aio);
}

/* ---- the nng side (nng's threads) ---------------------------------------------------------- */

static void on_aio(void *arg)
{
    dctx *c = arg;
    cs_daemon *d = c->d;
    int rv = nng_aio_result(c->aio);
    if (atomic_load(&c->state) == ST_SEND) {
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio));
        }
        atomic_fetch_sub(&d->n_sending, 1);
        if (atomic_load(&d->closing)) {
            atomic_store(&c->state, ST_IDLE);
            return;
        }
        atomic_store(&c->state, ST_RECV);
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    if (rv != 0) {
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED || atomic_load(&d->closing)) {
            atomic_store(&c->state, ST_IDLE);
            return;
        }
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    nng_msg *m = nng_aio_get_msg(c->aio);
    c->in = m;
    c->pipe = nng_msg_get_pipe(m).id;
    c->t_recv = cs_time_mono_ms();
    atomic_store(&c->state, ST_QUEUED);
    pthread_mutex_lock(&d->mu);
    c->next = NULL;
    if (d->q_tail != NULL) {
        d->q_tail->next = c;
    } else {
        d->q_head = c;
    }
    d->q_tail = c;
    pthread_mutex_unlock(&d->mu);
    uv_async_send(&d->async);
}

/* ---- the work protocol (loop thread) ------------------------------------------------------- */

static size_t host_slot(const char *worker)
{
    uint64_t h = 1469598103934665603u;
    for (const unsigned char *p = (const unsigned char *)worker; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211u;
    }
    return (size_t)(h % HOSTS);
}

static void host_set(cs_daemon *d, const char *worker, const char *host)
{
    size_t i = host_slot(worker);
    char *w = cs_strdup(worker), *h = cs_strdup(host);
    if (w == NULL || h == NULL) {
        free(w);
        free(h);
        return;
    }
    free(d->hosts[i].worker);
    free(d->hosts[i].host);
    d->hosts[i].worker = w;
    d->hosts[i].host = h;
}

/* The host a worker named in its HELLO, or NULL. */
static const char *host_get(const cs_daemon *d, const char *worker)
{
    size_t i = host_slot(worker);
    if (d->hosts[i].worker != NULL && strcmp(d->hosts[i].worker, worker) == 0) {
        return d->hosts[i].host;
    }
    return NULL;
}

static bool has_str(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], s) == 0) {
            return true;
        }
    }
    return false;
}

/* JSON of caps (the wire shape), owned; NULL on OOM. */
static char *caps_json(const cs_caps *caps)
{
    cJSON *o = cJSON_CreateObject(), *a;
    char *out = NULL;
    if (o == NULL) {
        return NULL;
    }
    if ((a = cJSON_AddArrayToObject(o, "backends")) == NULL) {
        goto cleanup;
    }
    for (size_t i = 0; i < caps->n_backends; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateString(caps->backends[i]));
    }
    if ((a = cJSON_AddArrayToObject(o, "models")) == NULL) {
        goto cleanup;
    }
    for (size_t i = 0; i < caps->n_models; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateString(caps->models[i]));
    }
    cJSON_AddNumberToObject(o, "threads", (double)caps->threads);
    cJSON_AddNumberToObject(o, "mem_mb", (double)caps->mem_mb);
    if ((a = cJSON_AddArrayToObject(o, "gpus")) == NULL) {
        goto cleanup;
    }
    for (size_t i = 0; i < caps->n_gpus; i++) {
        cJSON *g = cJSON_CreateObject();
        if (g == NULL) {
            goto cleanup;
        }
        cJSON_AddItemToArray(a, g);
        cJSON_AddNumberToObject(g, "index", (double)caps->gpus[i].index);
        cJSON_AddStringToObject(g, "name", caps->gpus[i].name);
        cJSON_AddNumberToObject(g, "mem_mb", (double)caps->gpus[i].mem_mb);
    }
    out = cJSON_PrintUnformatted(o);
cleanup:
    cJSON_Delete(o);
    return out;
}

/* A claimed job whose JOB message cannot be encoded (e.g. a limit of an older database beyond
 * the protocol's) can never run: it fails at once, for good, with the reason, logged once. So it
 * neither blocks its sweep nor comes back at every claim with a renewed lease. */
static void fail_unsendable(cs_daemon *d, const char *worker, const cs_store_claim *job,
                            const cs_err *why, int64_t now)
{
    cs_err err = {0};
    char reason[CS_PROTO_MAX_TEXT];
    cs_store_exit ex = {.permanent = true};
    cs_job_state next = CS_JOB_FAILED;
    snprintf(reason, sizeof reason, "internal: calsweepd cannot send this job to a worker: %s",
             why->msg);
    cs_log(CS_LOG_ERROR, "job %lld: %s", (long long)job->job_id, reason);
    if (cs_store_fail(d->store, job->job_id, job->attempt, worker, job->lease_token, reason, &ex,
                      now, &next, &err) != CS_OK &&
        cs_ratelog_ok(&d->rl_db, "database-error")) {
        cs_log(CS_LOG_ERROR, "job %lld: %s", (long long)job->job_id, err.msg);
    }
    d->reap_soon = true;
}

/* Jobs failed as unsendable within one claim before it answers NO_WORK (the rest wait for the next
 * claim): bounds the work of one request. */
#define CLAIM_MAX_UNSENDABLE 16

/* Claims a job for cl (c's CLAIM, or the claim riding on its RESULT or FAIL). CS_OK with c's JOB
 * reply set, CS_ENOENT when nothing fits, another code with c's ERROR reply set. */
static cs_rc try_claim(cs_daemon *d, dctx *c, const cs_msg_claim *cl, int64_t now)
{
    cs_err err = {0};
    char *models = NULL;
    cs_store_claim job = {0};
    cs_rc rc;
    int unsendable = 0;
    cJSON *a = cJSON_CreateArray();
    if (a == NULL) {
        return CS_ENOMEM;
    }
    for (size_t i = 0; i < cl->caps.n_models; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateString(cl->caps.models[i]));
    }
    models = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    if (models == NULL) {
        set_error(c, CS_EINTERNAL, "out of memory");
        return CS_ENOMEM;
    }
    cs_store_caps caps = {
            .worker = cl->worker,
            .instance = cl->instance,
            .host = host_get(d, cl->worker),
            .models = models,
            .native = has_str(cl->caps.backends, cl->caps.n_backends, "native"),
            .exec = has_str(cl->caps.backends, cl->caps.n_backends, "exec"),
            .mem_mb = cl->caps.mem_mb > 0 ? cl->caps.mem_mb : -1,
            .gpus = (int64_t)cl->caps.n_gpus,
    };
    for (;;) {
        rc = cs_store_claim_job(d->store, &caps, d->o.lease_s * 1000, now, &job, &err);
        if (rc != CS_OK) {
            break;
        }
        cs_msg rep;
        char *text = NULL;
        size_t len = 0;
        cs_msg_init(&rep, CS_MSG_JOB);
        rep.job.job_id = job.job_id;
        rep.job.attempt = job.attempt;
        rep.job.lease_token = job.lease_token;
        rep.job.lease_s = d->o.lease_s;
        rep.job.timeout_s = job.timeout_ms > 0 ? (job.timeout_ms + 999) / 1000 : 0;
        rep.job.config = job.config;
        rc = cs_msg_encode(&rep, &text, &len, &err);
        if (rc == CS_OK) {
            free(c->out);
            c->out = text;
            c->out_len = len;
            cs_log(CS_LOG_DEBUG, "job %lld attempt %d -> %s%s", (long long)job.job_id, job.attempt,
                   cl->worker, job.again ? " (again)" : "");
            cs_store_claim_fini(&job);
            break;
        }
        if (rc == CS_ENOMEM) {
            cs_store_claim_fini(&job);
            break;
        }
        fail_unsendable(d, cl->worker, &job, &err, now);
        cs_store_claim_fini(&job);
        if (++unsendable >= CLAIM_MAX_UNSENDABLE) {
            rc = CS_ENOENT;
            break;
        }
    }
    free(models);
    if (rc == CS_OK || rc == CS_ENOENT) {
        return rc;
    }
    if (cs_ratelog_ok(&d->rl_db, "database-error")) {
        cs_log(CS_LOG_ERROR, "claim for %s: %s", cl->worker, err.msg);
    }
    set_error(c, rc, err.msg);
    return rc;
}

static void hold_reschedule(cs_daemon *d);

static void hold_claim(cs_daemon *d, dctx *c)
{
    c->hold_until = cs_time_mono_ms() + d->o.claim_hold_ms;
    atomic_store(&c->state, ST_HELD);
    c->hnext = d->held;
    d->held = c;
    hold_reschedule(d);
}

static void no_work(dctx *c, int64_t retry_ms)
{
    cs_msg m;
    cs_msg_init(&m, CS_MSG_NO_WORK);
    m.no_work.retry_ms = retry_ms;
    set_reply(c, &m);
}

/* Records that worker (with instance, or NULL) was heard from; a store error is only logged: the
 * request it came with goes on. A worker heard from in the last second under the same instance
 * costs no statement (the store writes last_seen at most once a second anyway). */
static void worker_touch(cs_daemon *d, const char *worker, const char *instance, int64_t now)
{
    cs_err err = {0};
    size_t i = host_slot(worker);
    if (d->touched[i].worker != NULL && strcmp(d->touched[i].worker, worker) == 0 &&
        now - d->touched[i].at < 1000 && now >= d->touched[i].at &&
        (instance == NULL || strcmp(instance, d->touched[i].instance) == 0)) {
        return;
    }
    if (cs_store_worker_touch(d->store, worker, instance, now, &err) != CS_OK) {
        if (cs_ratelog_ok(&d->rl_db, "database-error")) {
            cs_log(CS_LOG_ERROR, "worker %s: %s", worker, err.msg);
        }
        return;
    }
    if (d->touched[i].worker == NULL || strcmp(d->touched[i].worker, worker) != 0) {
        char *w = cs_strdup(worker);
        if (w == NULL) {
            return;
        }
        free(d->touched[i].worker);
        d->touched[i].worker = w;
        d->touched[i].instance[0] = '\0';
    }
    if (instance != NULL) {
        snprintf(d->touched[i].instance, sizeof d->touched[i].instance, "%s", instance);
    }
    d->touched[i].at = now;
}

/* Forgets the last touch of worker (its BYE: the next message must reach the store). */
static void worker_untouch(cs_daemon *d, const char *worker)
{
    size_t i = host_slot(worker);
    if (d->touched[i].worker != NULL && strcmp(d->touched[i].worker, worker) == 0) {
        d->touched[i].at = 0;
    }
}

/* Reply for a store error: the store's message, logged (rate-limited) when it is the database's
 * fault rather than the request's. */
static void store_error(cs_daemon *d, dctx *c, cs_rc rc, const cs_err *err)
{
    if (rc == CS_EDB || rc == CS_ENOSPC || rc == CS_EIO || rc == CS_EBUSY || rc == CS_ENOMEM) {
        if (cs_ratelog_ok(&d->rl_db, "database-error")) {
            cs_log(CS_LOG_ERROR, "%s: %s", cs_msg_type_name(c->req.type), err->msg);
        }
    }
    set_error(c, rc, err->msg);
}

/* The metrics of r in the store's long form (task, metric, value, stderr, n), borrowed from r:
 * a metric "<m>_stderr" is the stderr of "<m>" when the task has "<m>", else a metric of its own.
 * O(n log n) in the n metrics (at most CS_LIMIT_RESULT_METRICS): the codec keeps each task's
 * metrics sorted, so a partner is a bsearch away. */
static cs_rc long_form(const cs_result *r, cs_store_metric **out, size_t *n_out, cs_err *err)
{
    size_t n = 0, total = cs_result_count_metrics(r);
    cs_store_metric *m = cs_alloc_array(total > 0 ? total : 1, sizeof *m);
    if (m == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "RESULT.result.metrics");
    }
    for (size_t i = 0; i < r->n_tasks; i++) {
        const cs_result_task *t = &r->tasks[i];
        for (size_t k = 0; k < t->n_metrics; k++) {
            const char *name = t->metrics[k].name;
            size_t len = strlen(name);
            if (len > 7 && strcmp(name + len - 7, "_stderr") == 0) {
                char base[CS_LIMIT_NAME_BYTES + 1];
                memcpy(base, name, len - 7);
                base[len - 7] = '\0';
                if (cs_result_metric(t, base) != NULL) {
                    continue;
                }
            }
            char key[CS_LIMIT_NAME_BYTES + 16];
            snprintf(key, sizeof key, "%s_stderr", name);
            const cs_result_value *se = cs_result_metric(t, key);
            m[n++] = (cs_store_metric){.task = t->name,
                                       .metric = name,
                                       .value = t->metrics[k].value,
                                       .stderr_ = se != NULL ? se->value : NAN,
                                       .n = t->has_n ? t->n : -1};
        }
    }
    *out = m;
    *n_out = n;
    return CS_OK;
}

/* After a RESULT or FAIL was stored: the claim riding on it, if any, gets the worker's next job
 * (JOB) or NO_WORK; the report stands either way (a store error of the claim is logged and
 * answered NO_WORK, so the worker does not resend a report that is stored). */
static void claim_after_report(cs_daemon *d, dctx *c, const cs_msg_claim *cl, int64_t now)
{
    cs_rc rc;
    if (cl->worker == NULL) {
        return;
    }
    if (strcmp(cl->worker,
               c->req.type == CS_MSG_RESULT ? c->req.result.worker : c->req.fail.worker) != 0) {
        no_work(c, 1000); /* the report stands; a claim for another name is not served */
        return;
    }
    worker_touch(d, cl->worker, cl->instance, now);
    rc = try_claim(d, c, cl, now);
    if (rc == CS_ENOENT) {
        no_work(c, 0);
    } else if (rc != CS_OK) {
        no_work(c, 1000);
    }
}

static void do_result(cs_daemon *d, dctx *c, int64_t now)
{
    const cs_msg_result *r = &c->req.result;
    cs_store_metric *metrics = NULL;
    size_t n_metrics = 0;
    char *text = NULL;
    cs_err err = {0};
    bool dup = false;
    /* The codec refused non-finite metrics and oversize results when the message was decoded;
     * what is stored is the result's canonical text, the same bytes wherever it is encoded. */
    cs_store_outcomes items = {0};
    cs_result doc = r->result; /* stored without "items": they go to table item_outcome */
    doc.items = NULL;
    doc.n_items = 0;
    cs_rc rc = long_form(&r->result, &metrics, &n_metrics, &err);
    if (rc == CS_OK) {
        rc = cs_result_encode(&doc, &text, NULL, &err);
    }
    if (rc == CS_OK) {
        rc = cs_store_outcomes_of(&r->result, &items, &err);
    }
    if (rc != CS_OK) {
        log_bad(d, c, "RESULT refused", err.msg);
        set_error(c, rc, err.msg);
        goto cleanup;
    }
    cs_store_exit ex = {.log_path = r->result.log_path};
    if (r->attempt > INT32_MAX) {
        set_error(c, CS_ESTALE, "stale attempt");
        goto cleanup;
    }
    rc = cs_store_result_items(d->store, r->job_id, (int)r->attempt, r->worker, r->lease_token,
                               text, metrics, n_metrics, items.v, items.n, &ex, now, &dup, &err);
    if (rc == CS_ESTALE) {
        log_refused(d, c, r->worker, &err);
        set_error(c, rc, err.msg);
    } else if (rc == CS_OK) {
        if (r->claim.worker == NULL) {
            worker_touch(d, r->worker, NULL, now); /* else claim_after_report touches */
        }
        cs_msg ack;
        cs_msg_init(&ack, CS_MSG_ACK);
        set_reply(c, &ack);
        if (!dup) {
            d->wake = true;
        }
        claim_after_report(d, c, &r->claim, now);
    } else {
        store_error(d, c, rc, &err);
    }
cleanup:
    cs_store_outcomes_fini(&items);
    free(metrics);
    free(text);
}

static void do_heartbeat(cs_daemon *d, dctx *c, int64_t now)
{
    const cs_msg_heartbeat *h = &c->req.heartbeat;
    cs_err err = {0};
    bool cancel = false;
    char *progress = NULL;
    cJSON *o = cJSON_CreateObject();
    if (o != NULL) {
        cJSON_AddStringToObject(o, "stage", h->stage);
        cJSON_AddNumberToObject(o, "done", (double)h->done);
        cJSON_AddNumberToObject(o, "total", (double)h->total);
        cJSON_AddStringToObject(o, "log_tail", h->log_tail != NULL ? h->log_tail : "");
        progress = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
    if (h->attempt > INT32_MAX) {
        set_error(c, CS_ESTALE, "stale attempt");
        free(progress);
        return;
    }
    cs_rc rc = cs_store_heartbeat(d->store, h->job_id, (int)h->attempt, h->worker, h->lease_token,
                                  d->o.lease_s * 1000, progress, now, &cancel, &err);
    free(progress);
    if (rc == CS_ESTALE) {
        log_refused(d, c, h->worker, &err);
    }
    if (rc != CS_OK) {
        store_error(d, c, rc, &err);
        return;
    }
    worker_touch(d, h->worker, NULL, now);
    cs_msg ack;
    cs_msg_init(&ack, CS_MSG_ACK);
    ack.ack.cancel = cancel;
    set_reply(c, &ack);
}

static void do_fail(cs_daemon *d, dctx *c, int64_t now)
{
    const cs_msg_fail *f = &c->req.fail;
    cs_err err = {0};
    cs_buf why;
    cs_buf_init(&why);
    if (cs_buf_printf(&why, "%s: %s", cs_fail_kind_name(f->kind),
                      f->reason != NULL ? f->reason : "") != CS_OK ||
        (f->log_tail != NULL && f->log_tail[0] != '\0' &&
         cs_buf_printf(&why, "\n--- log tail ---\n%s", f->log_tail) != CS_OK)) {
        cs_buf_fini(&why);
        set_error(c, CS_EINTERNAL, "out of memory");
        return;
    }
    char *reason = cs_buf_take(&why);
    cs_store_exit ex = {
            .has_status = f->exit_status >= 0,
            .exit_status = (int)(f->exit_status >= 0 ? f->exit_status : 0),
            .signal = (int)f->signal,
            .permanent = f->kind == CS_FAIL_BAD_INPUT || f->kind == CS_FAIL_MODEL_MISSING,
            .log_path = f->log_path,
    };
    cs_job_state next = CS_JOB_FAILED;
    cs_rc rc = f->attempt > INT32_MAX
                       ? cs_err_set(&err, CS_ESTALE, 0, "stale attempt")
                       : cs_store_fail(d->store, f->job_id, (int)f->attempt, f->worker,
                                       f->lease_token, reason, &ex, now, &next, &err);
    free(reason);
    if (rc == CS_ESTALE) {
        log_refused(d, c, f->worker, &err);
    }
    if (rc != CS_OK) {
        store_error(d, c, rc, &err);
        return;
    }
    if (f->claim.worker == NULL) {
        worker_touch(d, f->worker, NULL, now); /* else claim_after_report touches */
    }
    cs_log(CS_LOG_INFO, "job %lld attempt %lld failed (%s): now %s", (long long)f->job_id,
           (long long)f->attempt, cs_fail_kind_name(f->kind), cs_job_state_name(next));
    d->wake = true;
    d->reap_soon = true;
    set_simple(c, CS_MSG_ACK);
    claim_after_report(d, c, &f->claim, now);
}

static void do_hello(cs_daemon *d, dctx *c, int64_t now)
{
    const cs_msg_hello *h = &c->req.hello;
    cs_err err = {0};
    char *caps = caps_json(&h->caps);
    cs_rc rc = cs_store_worker_seen(d->store, h->worker, h->host, caps, now, &err);
    free(caps);
    if (rc != CS_OK) {
        store_error(d, c, rc, &err);
        return;
    }
    host_set(d, h->worker, h->host);
    cs_log(CS_LOG_INFO, "worker %s on %s says hello", h->worker, h->host);
    set_simple(c, CS_MSG_OK);
}

static void hold_reschedule(cs_daemon *d);

/* The long-poll CLAIMs still held for worker process (worker, instance) are answered NO_WORK at
 * once, without a lease: that process said BYE and will never run a job. Returns how many. */
static size_t drop_held_claims(cs_daemon *d, const char *worker, const char *instance)
{
    size_t n = 0;
    for (dctx **p = &d->held; *p != NULL;) {
        dctx *h = *p;
        if (strcmp(h->req.claim.worker, worker) != 0 ||
            !cs_proto_token_eq(h->req.claim.instance, instance)) {
            p = &h->hnext;
            continue;
        }
        *p = h->hnext;
        h->hnext = NULL;
        no_work(h, 1000);
        send_reply(d, h);
        n++;
    }
    if (n > 0) {
        hold_reschedule(d);
    }
    return n;
}

static void do_bye(cs_daemon *d, dctx *c, int64_t now)
{
    const cs_msg_bye *b = &c->req.bye;
    cs_err err = {0};
    bool released = false;
    if (b->release_job_id > 0) {
        cs_rc rc =
                b->release_attempt > INT32_MAX
                        ? cs_err_set(&err, CS_ESTALE, 0, "stale attempt")
                        : cs_store_release(d->store, b->release_job_id, (int)b->release_attempt,
                                           b->worker, b->release_lease_token, now, &released, &err);
        if (rc == CS_ESTALE) {
            log_refused(d, c, b->worker, &err);
        }
        if (rc != CS_OK) {
            store_error(d, c, rc, &err);
            return;
        }
        if (released) {
            d->reap_soon = true;
        }
    }
    size_t dropped = drop_held_claims(d, b->worker, b->instance);
    worker_untouch(d, b->worker);
    if (cs_store_worker_bye(d->store, b->worker, b->instance, now, NULL, &err) != CS_OK &&
        cs_ratelog_ok(&d->rl_db, "database-error")) {
        cs_log(CS_LOG_ERROR, "bye of %s: %s", b->worker, err.msg);
    }
    cs_log(CS_LOG_INFO, "worker %s says bye%s%s", b->worker,
           released ? ", handing back its job" : "",
           dropped > 0 ? ", its pending claim answered without a job" : "");
    set_simple(c, CS_MSG_OK);
}

/* One decoded work request, inside the batch. */
static void handle_work(cs_daemon *d, dctx *c, int64_t now)
{
    switch (c->req.type) {
    case CS_MSG_HELLO:
        do_hello(d, c, now);
        break;
    case CS_MSG_CLAIM: {
        worker_touch(d, c->req.claim.worker, c->req.claim.instance, now);
        cs_rc rc = try_claim(d, c, &c->req.claim, now);
        if (rc == CS_ENOENT) {
            if (d->o.claim_hold_ms > 0 && !d->stopping) {
                hold_claim(d, c);
                return;
            }
            no_work(c, 1000);
        }
        break;
    }
    case CS_MSG_HEARTBEAT:
        do_heartbeat(d, c, now);
        break;
    case CS_MSG_RESULT:
        do_result(d, c, now);
        break;
    case CS_MSG_FAIL:
        do_fail(d, c, now);
        break;
    case CS_MSG_BYE:
        do_bye(d, c, now);
        break;
    default:
        set_error(c, CS_EPROTO, "not a work request");
        break;
    }
    c->in_batch = true;
}

/* Decodes c's message and checks it: true when it is a request to serve; false with an error
 * reply (or none) set. */
static bool admit(cs_daemon *d, dctx *c)
{
    cs_err err = {0};
    size_t len = nng_msg_len(c->in);
    cs_rc rc = cs_msg_decode(nng_msg_body(c->in), len, &c->req, &err);
    nng_msg_free(c->in);
    c->in = NULL;
    if (rc != CS_OK) {
        log_bad(d, c, "malformed message", err.msg);
        if (d->token != NULL) {
            set_error(c, CS_EAUTH, "authentication failed");
        } else {
            set_error(c, rc, err.msg);
        }
        return false;
    }
    if (d->token != NULL && !cs_net_token_eq(d->token, c->req.token)) {
        log_auth(d, c);
        set_error(c, CS_EAUTH, "authentication failed");
        return false;
    }
    cs_msg_endpoint want = c->ep == EP_WORK ? CS_EP_WORK : CS_EP_CONTROL;
    if (cs_msg_type_endpoint(c->req.type) != want) {
        log_bad(d, c, "not a request of this endpoint", cs_msg_type_name(c->req.type));
        char msg[128];
        snprintf(msg, sizeof msg, "%s is not a request of the %s endpoint",
                 cs_msg_type_name(c->req.type), ep_name(c->ep));
        set_error(c, CS_EPROTO, msg);
        return false;
    }
    return true;
}

/* WATCH is answered with the daemon's cache (cs_watch.h), the others by cs_control. */
static cs_rc control_answer(cs_daemon *d, cs_store *s, const cs_msg *req, int64_t now, cs_msg *rep,
                            cs_err *err)
{
    return req->type == CS_MSG_WATCH ? cs_watch_handle(d->watch, s, &req->watch, now, rep, err)
                                     : cs_control_handle(s, req, now, rep, err);
}

static void handle_control(cs_daemon *d, dctx *c, int64_t now)
{
    cs_msg rep;
    cs_err err = {0};
    cs_msg_init(&rep, CS_MSG_NONE);
    cs_rc rc = control_answer(d, d->store, &c->req, now, &rep, &err);
    if (rc != CS_OK) {
        cs_log(CS_LOG_ERROR, "control %s: %s", cs_msg_type_name(c->req.type), err.msg);
        set_error(c, CS_EINTERNAL, "internal error");
    } else {
        set_reply(c, &rep);
        if (rep.type == CS_MSG_OK &&
            (c->req.type == CS_MSG_SUBMIT || c->req.type == CS_MSG_EXTEND ||
             c->req.type == CS_MSG_RETRY || c->req.type == CS_MSG_RESUME)) {
            d->wake = true;
        }
    }
    cs_msg_fini(&rep);
}

/* ---- held claims ----------------------------------------------------------------------------- */

static void on_hold_timer(uv_timer_t *t);

static void hold_reschedule(cs_daemon *d)
{
    if (!d->handles_open) {
        return;
    }
    if (d->held == NULL) {
        uv_timer_stop(&d->hold_timer);
        return;
    }
    int64_t first = INT64_MAX, now = cs_time_mono_ms();
    for (dctx *c = d->held; c != NULL; c = c->hnext) {
        if (c->hold_until < first) {
            first = c->hold_until;
        }
    }
    uv_timer_start(&d->hold_timer, on_hold_timer, (uint64_t)(first > now ? first - now : 0), 0);
}

static void on_hold_timer(uv_timer_t *t)
{
    cs_daemon *d = t->data;
    int64_t now = cs_time_mono_ms();
    dctx *due = NULL;
    for (dctx **p = &d->held; *p != NULL;) {
        dctx *c = *p;
        if (c->hold_until <= now + 1) {
            *p = c->hnext;
            c->hnext = due;
            due = c;
        } else {
            p = &c->hnext;
        }
    }
    while (due != NULL) {
        dctx *c = due;
        due = c->hnext;
        c->hnext = NULL;
        no_work(c, 0);
        send_reply(d, c);
    }
    hold_reschedule(d);
}

/* Offers jobs to the held claims, in one batch. */
static void wake_held(cs_daemon *d)
{
    cs_err err = {0};
    int64_t now = cs_time_wall_ms();
    dctx *got = NULL;
    if (d->held == NULL) {
        return;
    }
    bool batch = cs_store_begin(d->store, &err) == CS_OK;
    for (dctx **p = &d->held; *p != NULL;) {
        dctx *c = *p;
        cs_rc rc = try_claim(d, c, &c->req.claim, now);
        if (rc == CS_ENOENT) {
            p = &c->hnext;
            continue;
        }
        *p = c->hnext;
        c->hnext = got;
        got = c;
    }
    if (batch && cs_store_commit(d->store, &err) != CS_OK) {
        if (cs_ratelog_ok(&d->rl_db, "database-error")) {
            cs_log(CS_LOG_ERROR, "commit: %s", err.msg);
        }
        for (dctx *c = got; c != NULL; c = c->hnext) {
            set_error(c, err.rc, err.msg);
        }
    }
    while (got != NULL) {
        dctx *c = got;
        got = c->hnext;
        c->hnext = NULL;
        send_reply(d, c);
    }
    hold_reschedule(d);
}

static void reap(cs_daemon *d)
{
    cs_store_reap_counts n = {0};
    cs_err err = {0};
    cs_rc rc = cs_store_reap(d->store, cs_time_wall_ms(), &n, &err);
    if (rc != CS_OK) {
        if (cs_ratelog_ok(&d->rl_db, "database-error")) {
            cs_log(CS_LOG_ERROR, "reaper: %s", err.msg);
        }
        return;
    }
    if (n.requeued + n.lost + n.cancelled + n.retried > 0) {
        cs_log(CS_LOG_INFO, "reaper: %zu requeued, %zu lost, %zu cancelled, %zu retried",
               n.requeued, n.lost, n.cancelled, n.retried);
    }
    if (n.requeued + n.retried > 0) {
        d->wake = true;
    }
}

/* A control request that waited or ran for seconds: say so, since the client may have given up
 * (its --timeout-ms) and reported calsweepd as not answering. */
static void slow_request(cs_daemon *d, const dctx *c, int64_t t_start)
{
    int64_t now = cs_time_mono_ms(), wait = t_start - c->t_recv, run = now - t_start;
    if (wait + run >= 2000 && cs_ratelog_ok(&d->rl_bad, "slow-request")) {
        cs_log(CS_LOG_WARN, "control %s: waited %.1f s in the queue, ran %.1f s",
               cs_msg_type_name(c->req.type), (double)wait / 1000.0, (double)run / 1000.0);
    }
}

/* ---- RESULTS and WATCH off the loop thread ------------------------------------------------- */

/* Why (WATCH likewise: it reads every pane's rows and may aggregate, cs_watch.h): an aggregate
 * reads the whole sweep and may run a bootstrap (9 s for a 100,000-job sweep with 10,000 resamples,
 * docs/results.md); on the loop thread it would hold every worker's claim, result and heartbeat
 * that long. It runs on libuv's thread pool instead, with its own read-only connection (WAL: it
 * reads the last committed state while the loop writes), and its reply is sent from the loop thread
 * when it is done. */
static void results_work(uv_work_t *w)
{
    dctx *c = w->data;
    cs_store *ro = NULL;
    cs_err err = {0};
    cs_msg rep;
    cs_msg_init(&rep, CS_MSG_NONE);
    cs_rc rc = cs_store_open_ro(c->d->o.db, &ro, &err);
    if (rc == CS_OK) {
        rc = control_answer(c->d, ro, &c->req, cs_time_wall_ms(), &rep, &err);
    }
    cs_store_close(ro);
    if (rc != CS_OK) {
        cs_log(CS_LOG_ERROR, "control %s: %s", cs_msg_type_name(c->req.type), err.msg);
        set_error(c, CS_EINTERNAL, "internal error");
    } else {
        set_reply(c, &rep);
    }
    cs_msg_fini(&rep);
}

static void results_done(uv_work_t *w, int status)
{
    dctx *c = w->data;
    cs_daemon *d = c->d;
    d->n_work_running--;
    slow_request(d, c, c->t_start);
    if (status != 0 || d->stopping) { /* cancelled, or the sockets are closed: the REQ resends */
        free(c->out);
        c->out = NULL;
        cs_msg_fini(&c->req);
        atomic_store(&c->state, ST_IDLE);
        return;
    }
    send_reply(d, c);
}

/* Queues control request c on the thread pool; false when it cannot (then it runs here). */
static bool results_start(cs_daemon *d, dctx *c)
{
    c->work.data = c;
    c->t_start = cs_time_mono_ms();
    atomic_store(&c->state, ST_WORK);
    if (uv_queue_work(&d->loop, &c->work, results_work, results_done) != 0) {
        atomic_store(&c->state, ST_QUEUED);
        return false;
    }
    d->n_work_running++;
    return true;
}

/* ---- the drain ------------------------------------------------------------------------------- */

static dctx *take_queue(cs_daemon *d)
{
    pthread_mutex_lock(&d->mu);
    dctx *q = d->q_head;
    d->q_head = d->q_tail = NULL;
    pthread_mutex_unlock(&d->mu);
    return q;
}

static void drain(cs_daemon *d)
{
    dctx *q;
    while ((q = take_queue(d)) != NULL) {
        while (q != NULL) {
            dctx *done = NULL, *ctrl = NULL, **done_tail = &done, **ctrl_tail = &ctrl;
            int64_t now = cs_time_wall_ms();
            cs_err err = {0};
            bool batch = false;
            int64_t n = 0;
            for (;;) {
                /* Requests that came while this batch was being built join it (one fsync
                 * for all of them), up to max_batch. */
                if (q == NULL && n < d->o.max_batch) {
                    q = take_queue(d);
                }
                if (q == NULL || n >= d->o.max_batch) {
                    break;
                }
                dctx *c = q;
                q = c->next;
                c->next = NULL;
                d->n_requests++;
                if (!admit(d, c)) {
                    *done_tail = c;
                    done_tail = &c->next;
                    continue;
                }
                if (c->ep == EP_CONTROL) {
                    *ctrl_tail = c;
                    ctrl_tail = &c->next;
                    continue;
                }
                if (!batch && !cs_store_in_batch(d->store)) {
                    cs_err berr = {0};
                    batch = cs_store_begin(d->store, &berr) == CS_OK;
                    if (!batch && cs_ratelog_ok(&d->rl_db, "database-error")) {
                        cs_log(CS_LOG_ERROR, "begin: %s", berr.msg);
                    }
                }
                n++;
                handle_work(d, c, now);
                if (atomic_load(&c->state) == ST_HELD) {
                    continue;
                }
                *done_tail = c;
                done_tail = &c->next;
            }
            d->n_work += (uint64_t)n;
            d->n_commits += batch ? 1u : 0u;
            if (batch && cs_store_commit(d->store, &err) != CS_OK) {
                if (cs_ratelog_ok(&d->rl_db, "database-error")) {
                    cs_log(CS_LOG_ERROR, "commit: %s", err.msg);
                }
                for (dctx *c = done; c != NULL; c = c->next) {
                    if (c->in_batch) {
                        set_error(c, err.rc, err.msg);
                    }
                }
                d->wake = false;
            }
            while (done != NULL) {
                dctx *c = done;
                done = c->next;
                c->next = NULL;
                send_reply(d, c);
            }
            while (ctrl != NULL) {
                dctx *c = ctrl;
                ctrl = c->next;
                c->next = NULL;
                if ((c->req.type == CS_MSG_RESULTS || c->req.type == CS_MSG_WATCH) &&
                    !d->stopping && results_start(d, c)) {
                    continue;
                }
                int64_t t0 = cs_time_mono_ms();
                handle_control(d, c, cs_time_wall_ms());
                slow_request(d, c, t0);
                send_reply(d, c);
            }
        }
    }
    if (d->reap_soon) {
        d->reap_soon = false;
        reap(d);
    }
    if (d->wake) {
        d->wake = false;
        wake_held(d);
    }
}

static void on_async(uv_async_t *a)
{
    cs_daemon *d = a->data;
    drain(d);
}

/* After a bulk submit the store leaves the WAL checkpoint for later (cs_store_checkpoint): do it
 * when a whole reaper interval went by without a request, so it does not delay the workers. */
static void checkpoint_if_idle(cs_daemon *d)
{
    cs_err err = {0};
    bool idle = d->n_requests == d->n_requests_at_tick;
    d->n_requests_at_tick = d->n_requests;
    if (!idle || cs_store_in_batch(d->store) || !cs_store_checkpoint_owed(d->store)) {
        return;
    }
    int64_t t0 = cs_time_mono_ms();
    if (cs_store_checkpoint(d->store, &err) != CS_OK) {
        if (cs_ratelog_ok(&d->rl_db, "database-error")) {
            cs_log(CS_LOG_WARN, "checkpoint: %s", err.msg);
        }
        return;
    }
    cs_log(CS_LOG_INFO, "checkpointed the write-ahead log of a bulk submit in %.1f s",
           (double)(cs_time_mono_ms() - t0) / 1000.0);
}

/* Deletes the rows of workers not seen for worker_prune_s that run nothing, at most once a
 * minute (or once per prune period when that is shorter). */
static void prune_workers(cs_daemon *d)
{
    cs_err err = {0};
    size_t n = 0;
    int64_t mono = cs_time_mono_ms(), every = d->o.worker_prune_s * 1000;
    if (d->o.worker_prune_s <= 0) {
        return;
    }
    if (every > 60000) {
        every = 60000;
    }
    if (d->pruned_at != 0 && mono - d->pruned_at < every) {
        return;
    }
    d->pruned_at = mono;
    if (cs_store_worker_prune(d->store, cs_time_wall_ms(), d->o.worker_prune_s * 1000, &n, &err) !=
        CS_OK) {
        if (cs_ratelog_ok(&d->rl_db, "database-error")) {
            cs_log(CS_LOG_ERROR, "prune workers: %s", err.msg);
        }
        return;
    }
    if (n > 0) {
        cs_log(CS_LOG_INFO, "forgot %zu workers not seen for %lld s", n,
               (long long)d->o.worker_prune_s);
    }
}

static void on_reap_timer(uv_timer_t *t)
{
    cs_daemon *d = t->data;
    reap(d);
    prune_workers(d);
    checkpoint_if_idle(d);
    for (int i = 0; i < EP_COUNT && d->o.tls.cert != NULL; i++) {
        cs_net_tls_log_failures(d->sock[i], &d->tls_failed[i]);
    }
    if (d->wake) {
        d->wake = false;
        wake_held(d);
    }
}

/* ---- start and stop -------------------------------------------------------------------------- */

static void on_close_handle(uv_handle_t *h)
{
    (void)h;
}

static void shutdown_loop(cs_daemon *d)
{
    if (d->stopping) {
        return;
    }
    d->stopping = true;
    cs_log(CS_LOG_INFO, "stopping: finishing the requests under way");
    uv_timer_stop(&d->reap_timer);
    drain(d);
    /* Held claims: NO_WORK now, the worker asks again (and reaches the next daemon). */
    while (d->held != NULL) {
        dctx *c = d->held;
        d->held = c->hnext;
        c->hnext = NULL;
        no_work(c, 1000);
        send_reply(d, c);
    }
    uv_timer_stop(&d->hold_timer);
    /* Let the replies leave before the sockets close (bounded). */
    for (int i = 0; i < 100 && atomic_load(&d->n_sending) > 0; i++) {
        uv_sleep(5);
    }
    atomic_store(&d->closing, true);
    for (int e = 0; e < EP_COUNT; e++) {
        nng_close(d->sock[e]);
    }
    d->sockets_open = false;
    for (size_t i = 0; d->ctxs != NULL && i < d->n_ctxs; i++) {
        if (d->ctxs[i].aio != NULL) {
            nng_aio_stop(d->ctxs[i].aio);
        }
    }
    /* Requests that arrived during the stop are dropped (their REQ resends). */
    for (dctx *c = take_queue(d); c != NULL; c = c->next) {
        if (c->in != NULL) {
            nng_msg_free(c->in);
        }
        c->in = NULL;
    }
    uv_close((uv_handle_t *)&d->async, on_close_handle);
    uv_close((uv_handle_t *)&d->stop_async, on_close_handle);
    uv_close((uv_handle_t *)&d->reap_timer, on_close_handle);
    uv_close((uv_handle_t *)&d->hold_timer, on_close_handle);
    if (d->o.signals) {
        uv_close((uv_handle_t *)&d->sig_term, on_close_handle);
        uv_close((uv_handle_t *)&d->sig_int, on_close_handle);
        /* Closing restores the default action, which would kill the process on the copy of the
         * signal that timeout(1) and shells send the process group right after the first: the
         * stop is under way, so later ones are ignored. */
        signal(SIGTERM, SIG_IGN);
        signal(SIGINT, SIG_IGN);
    }
    d->handles_open = false;
}

static void on_stop_async(uv_async_t *a)
{
    shutdown_loop(a->data);
}

static void on_signal(uv_signal_t *s, int signum)
{
    cs_log(CS_LOG_INFO, "signal %d", signum);
    shutdown_loop(s->data);
}

void cs_daemon_opts_default(cs_daemon_opts *o)
{
    memset(o, 0, sizeof *o);
    o->lease_s = 60;
    o->claim_hold_ms = 10000;
    o->reap_ms = 5000;
    o->max_batch = 1024;
    o->n_work_ctx = 256;
    o->n_control_ctx = 8;
    o->worker_prune_s = 3600;
}

cs_rc cs_daemon_open(const cs_daemon_opts *o, cs_daemon **out, cs_err *err)
{
    cs_daemon *d = NULL;
    cs_rc rc;
    int rv;
    *out = NULL;
    if (o->db == NULL || o->work_url == NULL || o->control_url == NULL) {
        return cs_err_set(err, CS_EINVAL, 0, "the daemon needs a database and two endpoints");
    }
    if (o->lease_s < 1 || o->claim_hold_ms < 0 || o->reap_ms < 1 || o->max_batch < 1 ||
        o->n_work_ctx < 1 || o->n_control_ctx < 1 || o->worker_prune_s < 0) {
        return cs_err_set(err, CS_EINVAL, 0, "daemon options out of range");
    }
    if ((rc = cs_net_check_listen(o->work_url, o->token != NULL, &o->tls, o->insecure, err)) !=
                CS_OK ||
        (rc = cs_net_check_listen(o->control_url, o->token != NULL, &o->tls, o->insecure, err)) !=
                CS_OK) {
        return rc;
    }
    d = calloc(1, sizeof *d);
    if (d == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "daemon");
    }
    d->o = *o;
    d->sock[0] = d->sock[1] = (nng_socket)NNG_SOCKET_INITIALIZER;
    pthread_mutex_init(&d->mu, NULL);
    if (o->token != NULL && (d->token = cs_strdup(o->token)) == NULL) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "daemon");
        goto fail;
    }
    if ((rc = cs_store_open(o->db, &d->store, err)) != CS_OK ||
        (rc = cs_watch_create(o->lease_s * 1000, o->db, &d->watch, err)) != CS_OK) {
        goto fail;
    }
    reap(d);
    prune_workers(d);
    d->wake = false;
    if ((rv = uv_loop_init(&d->loop)) != 0) {
        rc = cs_err_uv(err, rv, "uv_loop_init");
        goto fail;
    }
    d->loop_ready = true;
    uv_async_init(&d->loop, &d->async, on_async);
    uv_async_init(&d->loop, &d->stop_async, on_stop_async);
    uv_timer_init(&d->loop, &d->reap_timer);
    uv_timer_init(&d->loop, &d->hold_timer);
    d->async.data = d->stop_async.data = d->reap_timer.data = d->hold_timer.data = d;
    if (o->signals) {
        uv_signal_init(&d->loop, &d->sig_term);
        uv_signal_init(&d->loop, &d->sig_int);
        d->sig_term.data = d->sig_int.data = d;
        uv_signal_start(&d->sig_term, on_signal, SIGTERM);
        uv_signal_start(&d->sig_int, on_signal, SIGINT);
    }
    d->handles_open = true;
    if ((rc = cs_net_listen(&d->sock[EP_WORK], o->work_url, &o->tls, err)) != CS_OK) {
        goto fail;
    }
    if ((rc = cs_net_listen(&d->sock[EP_CONTROL], o->control_url, &o->tls, err)) != CS_OK) {
        goto fail;
    }
    d->sockets_open = true;
    d->n_ctxs = (size_t)o->n_work_ctx + (size_t)o->n_control_ctx;
    d->ctxs = cs_calloc_array(d->n_ctxs, sizeof *d->ctxs);
    if (d->ctxs == NULL) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "daemon contexts");
        goto fail;
    }
    for (size_t i = 0; i < d->n_ctxs; i++) {
        dctx *c = &d->ctxs[i];
        c->d = d;
        c->ep = i < (size_t)o->n_work_ctx ? EP_WORK : EP_CONTROL;
        if ((rv = nng_ctx_open(&c->ctx, d->sock[c->ep])) != 0 ||
            (rv = nng_aio_alloc(&c->aio, on_aio, c)) != 0) {
            rc = cs_err_nng(err, rv, CS_ENET, "nng context");
            goto fail;
        }
    }
    for (size_t i = 0; i < d->n_ctxs; i++) {
        atomic_store(&d->ctxs[i].state, ST_RECV);
        nng_ctx_recv(d->ctxs[i].ctx, d->ctxs[i].aio);
    }
    cs_log(CS_LOG_INFO, "calsweepd listening: work %s, control %s, database %s%s", o->work_url,
           o->control_url, o->db, o->token != NULL ? ", token required" : "");
    *out = d;
    return CS_OK;
fail:
    cs_daemon_close(d);
    return rc;
}

cs_rc cs_daemon_run(cs_daemon *d, cs_err *err)
{
    (void)err;
    uv_timer_start(&d->reap_timer, on_reap_timer, (uint64_t)d->o.reap_ms, (uint64_t)d->o.reap_ms);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_rusage_t ru;
    double cpu = 0;
    if (uv_getrusage(&ru) == 0) {
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
              (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    }
    cs_log(CS_LOG_INFO, "calsweepd stopped: %llu work requests in %llu transactions, %.2f s CPU",
           (unsigned long long)d->n_work, (unsigned long long)d->n_commits, cpu);
    return CS_OK;
}

void cs_daemon_stop(cs_daemon *d)
{
    uv_async_send(&d->stop_async);
}

void cs_daemon_close(cs_daemon *d)
{
    if (d == NULL) {
        return;
    }
    if (d->handles_open) {
        shutdown_loop(d);
    } else if (d->sockets_open || d->sock[0].id != 0 || d->sock[1].id != 0) {
        atomic_store(&d->closing, true);
        for (int e = 0; e < EP_COUNT; e++) {
            if (d->sock[e].id != 0) {
                nng_close(d->sock[e]);
            }
        }
    }
    if (d->loop_ready) {
        uv_run(&d->loop, UV_RUN_DEFAULT);
        uv_loop_close(&d->loop);
    }
    for (size_t i = 0; d->ctxs != NULL && i < d->n_ctxs; i++) {
        dctx *c = &d->ctxs[i];
        if (c->aio != NULL) {
            nng_aio_stop(c->aio);
            nng_aio_free(c->aio);
        }
        if (c->in != NULL) {
            nng_msg_free(c->in);
        }
        cs_msg_fini(&c->req);
        free(c->out);
    }
    free(d->ctxs);
    for (size_t i = 0; i < HOSTS; i++) {
        free(d->hosts[i].worker);
        free(d->hosts[i].host);
        free(d->touched[i].worker);
    }
    cs_store_close(d->store);
    cs_watch_destroy(d->watch);
    pthread_mutex_destroy(&d->mu);
    free(d->token);
    free(d);
}
