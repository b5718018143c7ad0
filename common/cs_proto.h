/* cs_proto.h - protocol version 4 between calsweep-worker, calsweep (CLI) and calsweepd: typed
 * messages, their encoding to JSON text and their strict decoding.
 *
 * Why: every byte that crosses an nng socket comes from another process, maybe another machine,
 * maybe an older or newer build. The codec turns it into a typed struct or into a clear error that
 * names the field ("HEARTBEAT.attempt: expected a positive integer, got \"x\""), and never crashes.
 * Nothing outside this file sees a cJSON tree of a message (docs/style.md R7).
 *
 * Wire format: one JSON object per nng message, in canonical form (cs_canon.h: sorted keys, no
 * whitespace), so an encoded message is a pure function of the struct (one exception: a sweep
 * document keeps its members in the order written, see below):
 *
 *   {"v":4,"type":"CLAIM","token":"...","req_id":7, <the fields of the type>}
 *
 * "v" (the protocol version, 4) and "type" are required; "token" (a shared secret, when the
 * coordinator asks for one) and "req_id" (an integer >= 1 the sender may use to match replies in
 * logs) are optional. Every other key must be a field of the type: unknown keys are refused, so a
 * typo or a newer peer is noticed at once. JSON null counts as absent for optional fields.
 *
 * Endpoints and the expected reply of each request:
 *   work (worker REQ -> coordinator REP)
 *     HELLO     {worker, host, capabilities}                       -> OK | ERROR
 *     CLAIM     {worker, instance, capabilities}
 *                 -> JOB {job_id, attempt, lease_token, lease_s, timeout_s?, config}
 *                  | NO_WORK {retry_ms} | ERROR
 *     HEARTBEAT {worker, job_id, attempt, lease_token, stage, done, total, log_tail, detail?,
 *                stage_ms?}                                        -> ACK | ERROR (CS_ESTALE)
 *     RESULT    {worker, job_id, attempt, lease_token, result, claim?}  -> ACK | ERROR
 *               result = result.json as the worker read it, plus its "worker" and "log_path"
 *               (cs_result.h): the metrics travel once, inside it
 *     FAIL      {worker, job_id, attempt, lease_token, kind, reason, exit_status, signal,
 *                log_tail, claim?}                                 -> ACK | ERROR
 *               claim = {worker, instance, capabilities}, a CLAIM riding along: the report is
 *               stored as without it, and then the coordinator claims the worker's next job at
 *               once, so one round trip ends a job and starts the next. The reply is then JOB
 *               (report stored, here is the next job), NO_WORK {retry_ms} (report stored,
 *               nothing to run now: CLAIM after retry_ms, that one long-polls) or ERROR (report
 *               not stored or refused, e.g. CS_ESTALE; nothing was claimed). A resent report
 *               with claim gets the same job again, as a resent CLAIM does.
 *     BYE       {worker, instance, release_job?: {job_id, attempt, lease_token}} -> OK | ERROR
 *   control (CLI REQ -> coordinator REP); every reply is OK {data?} or ERROR {code, message}
 *     SUBMIT {sweep, force}  PLAN {sweep}  STATUS {sweep?}  CANCEL {sweep? | job? | filter?}
 *     PAUSE {sweep}  RESUME {sweep}  RETRY {sweep?, failed, lost}  EXTEND {sweep_id, sweep}
 *     JOBS {sweep?, state?, limit, offset}  WORKERS {}  LOGS {job_id, attempt?, tail?}
 *     RESULTS {sweep, by?, metric?, reference?, tasks?, resamples, item_resamples?, seed,
 *       slim?}: OK's data is the
 *       sweep's aggregate, with slim its slim form (coordinator/results/cs_agg.h,
 *       docs/results.md)
 *     WATCH {sweep?, top?, problems?}: OK's data is the live view's document (docs/watch.md)
 *     JOB_INFO {job_id}: OK's data is the job whole (config, attempts, reproduce command)
 *
 * Leases (version 3): JOB.lease_token is a secret the coordinator draws for each attempt it
 * leases (CS_PROTO_TOKEN_LEN lowercase hex digits, 128 random bits). Every message about a job
 * (HEARTBEAT, RESULT, FAIL, BYE.release_job) names the worker and that token; the coordinator
 * refuses it (ERROR CS_ESTALE) unless both match the attempt's lease holder, so nobody can report
 * for, renew or hand back another worker's job by guessing its job id and attempt. instance
 * (same form) is drawn by the worker once per process and kept secret: a resent CLAIM of the same
 * worker and instance gets the job that worker already holds, with its token, and nobody else's
 * CLAIM ever does. BYE's instance ends the long-poll CLAIM that worker process still has pending.
 *
 * Version 4 replaced RESULT.metrics and RESULT.provenance (which held the metrics a second time,
 * in the whole result.json) by RESULT.result, decoded by the result codec (cs_result.h); version
 * 3 added the lease tokens and instance; version 2 added RESULT.claim and FAIL.claim. A peer
 * speaking another version is refused (CS_EVERSION), so calsweepd and its workers are upgraded
 * together.
 *
 * Field types: a "sweep reference" (STATUS.sweep, EXTEND.sweep_id, ...) is a string, the sweep's
 * name or its decimal id. Where the field is a sweep DOCUMENT (SUBMIT, PLAN, EXTEND.sweep) it is a
 * JSON object. RESULT.result is a typed cs_result (cs_result.h: its refusals, e.g. a null metric,
 * are CS_EPROTO naming "RESULT.result.metrics.<task>.<metric>"). JSON documents of their own
 * (JOB.config, the sweep documents, CANCEL.filter, OK.data) are carried in the structs as owned
 * canonical JSON text,
 * except the sweep documents: they travel as written, only without whitespace, because the order
 * of a sweep's grid axes, models and eval suites is the order of its jobs (calsweep plan's order,
 * which calsweepd follows when it hands jobs out); sorted keys would lose it. The decoder gives
 * their text as it came (checked to mean the same as the parsed value), or canonical text when
 * the sender spelled it otherwise.
 * job_id, attempt and the other integers are int64 limited to +-2^53 (exact in a double).
 *
 * Limits: a whole message is at most CS_PROTO_MAX_BYTES; log_tail, FAIL.reason and ERROR.message
 * at most CS_PROTO_MAX_TEXT bytes (senders cut logs with cs_proto_log_tail); names (worker, host,
 * stage, models, ...) 1..CS_PROTO_MAX_NAME bytes; lists at most CS_PROTO_MAX_LIST items; a
 * RESULT at most CS_LIMIT_RESULT_METRICS metric values. Strings are valid UTF-8 without NUL
 * (cs_json_parse refuses anything else).
 *
 * All functions are pure (no globals) and thread-safe on distinct messages.
 */
#ifndef CS_COMMON_CS_PROTO_H
#define CS_COMMON_CS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_limits.h"
#include "cs_result.h"

/* The sizes are those of the one table of limits (cs_limits.h). */
#define CS_PROTO_VERSION   4
#define CS_PROTO_TOKEN_LEN 32 /* lease_token, instance: lowercase hex digits (128 bits) */
#define CS_PROTO_MAX_BYTES \
    CS_LIMIT_MSG_BYTES /* whole message; sockets take CS_LIMIT_MSG_RECV_BYTES */
#define CS_PROTO_MAX_TEXT         CS_LIMIT_TEXT_BYTES /* log_tail, FAIL.reason, ERROR.message */
#define CS_PROTO_MAX_NAME         CS_LIMIT_NAME_BYTES /* worker, host, stage, token, sweep refs, ... */
#define CS_PROTO_MAX_LIST         CS_LIMIT_LIST_ITEMS /* items of capabilities lists */
#define CS_PROTO_MAX_RESULTS_LIST 64                  /* RESULTS.by and RESULTS.tasks items */

/* X(enum, wire name, endpoint): the one list of message types. Endpoint: 'W' work request,
 * 'C' control request, 'R' reply (on either endpoint). */
#define CS_MSG_TYPE_LIST(X)               \
    X(CS_MSG_HELLO, "HELLO", 'W')         \
    X(CS_MSG_CLAIM, "CLAIM", 'W')         \
    X(CS_MSG_JOB, "JOB", 'R')             \
    X(CS_MSG_NO_WORK, "NO_WORK", 'R')     \
    X(CS_MSG_HEARTBEAT, "HEARTBEAT", 'W') \
    X(CS_MSG_ACK, "ACK", 'R')             \
    X(CS_MSG_RESULT, "RESULT", 'W')       \
    X(CS_MSG_FAIL, "FAIL", 'W')           \
    X(CS_MSG_BYE, "BYE", 'W')             \
    X(CS_MSG_SUBMIT, "SUBMIT", 'C')       \
    X(CS_MSG_PLAN, "PLAN", 'C')           \
    X(CS_MSG_STATUS, "STATUS", 'C')       \
    X(CS_MSG_CANCEL, "CANCEL", 'C')       \
    X(CS_MSG_PAUSE, "PAUSE", 'C')         \
    X(CS_MSG_RESUME, "RESUME", 'C')       \
    X(CS_MSG_RETRY, "RETRY", 'C')         \
    X(CS_MSG_EXTEND, "EXTEND", 'C')       \
    X(CS_MSG_JOBS, "JOBS", 'C')           \
    X(CS_MSG_WORKERS, "WORKERS", 'C')     \
    X(CS_MSG_LOGS, "LOGS", 'C')           \
    X(CS_MSG_OK, "OK", 'R')               \
    X(CS_MSG_ERROR, "ERROR", 'R')         \
    X(CS_MSG_RESULTS, "RESULTS", 'C')     \
    X(CS_MSG_WATCH, "WATCH", 'C')         \
    X(CS_MSG_JOB_INFO, "JOB_INFO", 'C')

typedef enum cs_msg_type {
    CS_MSG_NONE = 0, /* a zeroed message; never encoded */
#define CS_MSG_TYPE_ENUM(e, name, ep) e,
    CS_MSG_TYPE_LIST(CS_MSG_TYPE_ENUM)
#undef CS_MSG_TYPE_ENUM
            CS_MSG_TYPE_COUNT
} cs_msg_type;

typedef enum cs_msg_endpoint {
    CS_EP_WORK = 'W',    /* a request on the work endpoint */
    CS_EP_CONTROL = 'C', /* a request on the control endpoint */
    CS_EP_REPLY = 'R',   /* a reply */
} cs_msg_endpoint;

/* FAIL.kind. The first four are error.json's kinds (the runner said why); the others are what the
 * worker saw: crash (non-zero exit or a signal without error.json), timeout (the worker killed it),
 * cancelled (the coordinator asked), spawn (the runner could not be started). */
#define CS_FAIL_KIND_LIST(X)                  \
    X(CS_FAIL_BAD_INPUT, "bad_input")         \
    X(CS_FAIL_OOM, "oom")                     \
    X(CS_FAIL_MODEL_MISSING, "model_missing") \
    X(CS_FAIL_INTERNAL, "internal")           \
    X(CS_FAIL_CRASH, "crash")                 \
    X(CS_FAIL_TIMEOUT, "timeout")             \
    X(CS_FAIL_CANCELLED, "cancelled")         \
    X(CS_FAIL_SPAWN, "spawn")

typedef enum cs_fail_kind {
    CS_FAIL_NONE = 0,
#define CS_FAIL_KIND_ENUM(e, name) e,
    CS_FAIL_KIND_LIST(CS_FAIL_KIND_ENUM)
#undef CS_FAIL_KIND_ENUM
            CS_FAIL_KIND_COUNT
} cs_fail_kind;

/* One GPU a worker advertises. */
typedef struct cs_gpu {
    int64_t index; /* device index as the worker numbers them, >= 0 */
    char *name;    /* e.g. "NVIDIA H100 80GB HBM3" */
    int64_t mem_mb;
} cs_gpu;

/* What a worker can run. Wire: {"backends":[..],"models":[..],"threads":n,"mem_mb":n,"gpus":[
 * {"index":0,"name":"..","mem_mb":n}, ..]}; every key required, lists may be empty. */
typedef struct cs_caps {
    char **backends; /* "native", "exec" */
    size_t n_backends;
    char **models; /* model folder names the worker has */
    size_t n_models;
    int64_t threads; /* >= 1 */
    int64_t mem_mb;  /* >= 0, memory the worker may use */
    cs_gpu *gpus;
    size_t n_gpus;
} cs_caps;

/* The message bodies. Strings are const char *, NULL = absent (optional fields only): borrowed
 * from the caller when encoding, owned by the message after decoding (cs_msg_fini frees them).
 * Optional integers use 0 for absent (their wire values are >= 1). JSON documents (config, metrics,
 * ...) are JSON text; after decoding it is canonical (sweep documents: compact, in written order).
 */
typedef struct cs_msg_hello {
    const char *worker, *host;
    cs_caps caps; /* wire key "capabilities" */
} cs_msg_hello;
typedef struct cs_msg_claim {
    const char *worker;
    const char *instance; /* CS_PROTO_TOKEN_LEN hex digits: the worker process's secret id */
    cs_caps caps;
} cs_msg_claim;
typedef struct cs_msg_job {
    int64_t job_id, attempt; /* >= 1 */
    const char *lease_token; /* CS_PROTO_TOKEN_LEN hex digits: the lease's secret */
    int64_t lease_s;         /* >= 1 */
    int64_t timeout_s;       /* the sweep's policy.timeout_s; 0 = absent (no limit) */
    const char *config;      /* JSON object: the job config (schemas/job.schema.json) */
} cs_msg_job;
typedef struct cs_msg_no_work {
    int64_t retry_ms; /* >= 0: ask again after this long */
} cs_msg_no_work;
typedef struct cs_msg_heartbeat {
    const char *worker;
    int64_t job_id, attempt;
    const char *lease_token; /* JOB.lease_token of this attempt */
    const char *stage;       /* "load", "calibrate", "quantize", "evaluate", ... */
    int64_t done, total;     /* >= 0, progress within the stage */
    const char *log_tail;    /* may be "" */
    const char *detail;      /* optional, NULL = absent: what the stage works on ("arith_mc",
                                "layer", "cola:stats") */
    int64_t stage_ms;        /* optional, 0 = absent: time spent in the stage so far, ms */
} cs_msg_heartbeat;
typedef struct cs_msg_ack {
    bool cancel;
} cs_msg_ack;
typedef struct cs_msg_result {
    const char *worker;
    int64_t job_id, attempt;
    const char *lease_token; /* JOB.lease_token of this attempt */
    cs_result result;        /* result.json with the worker's provenance (cs_result.h) */
    cs_msg_claim claim;      /* optional: claim.worker NULL = absent */
} cs_msg_result;
typedef struct cs_msg_fail {
    const char *worker;
    int64_t job_id, attempt;
    const char *lease_token; /* JOB.lease_token of this attempt */
    cs_fail_kind kind;
    const char *reason;  /* may be "" */
    int64_t exit_status; /* -1 (did not exit) or 0..255 */
    int64_t signal;      /* 0 (none) or 1..127 */
    const char *log_tail;
    const char *log_path; /* optional: the attempt's log file on the worker's machine, NULL */
    cs_msg_claim claim;   /* optional: claim.worker NULL = absent */
} cs_msg_fail;
typedef struct cs_msg_bye {
    const char *worker;
    const char *instance; /* CLAIM.instance of this worker process */
    /* 0, 0, NULL = absent; wire: "release_job":{job_id,attempt,lease_token} */
    int64_t release_job_id, release_attempt;
    const char *release_lease_token;
} cs_msg_bye;
typedef struct cs_msg_submit {
    const char *sweep; /* JSON object: the sweep document */
    bool force;
} cs_msg_submit;
typedef struct cs_msg_plan {
    const char *sweep; /* JSON object */
} cs_msg_plan;
typedef struct cs_msg_status {
    const char *sweep; /* sweep reference, NULL = all sweeps */
} cs_msg_status;
typedef struct cs_msg_cancel {
    /* Exactly one of the three. */
    const char *sweep;  /* sweep reference */
    int64_t job;        /* job id, 0 = absent */
    const char *filter; /* JSON object, e.g. {"sweep":"x","state":"queued"} */
} cs_msg_cancel;
typedef struct cs_msg_sweep_ref {
    const char *sweep; /* sweep reference */
} cs_msg_sweep_ref;    /* PAUSE, RESUME */
typedef struct cs_msg_retry {
    const char *sweep; /* sweep reference, NULL = all sweeps */
    bool failed, lost;
} cs_msg_retry;
typedef struct cs_msg_extend {
    const char *sweep_id; /* sweep reference (name or decimal id) */
    const char *sweep;    /* JSON object: the extended sweep document */
} cs_msg_extend;
typedef struct cs_msg_jobs {
    const char *sweep; /* sweep reference, NULL = all */
    const char *state; /* a job state (queued, running, ...), NULL = all */
    int64_t limit;     /* 1..100000 */
    int64_t offset;    /* >= 0 */
} cs_msg_jobs;
typedef struct cs_msg_logs {
    int64_t job_id;
    int64_t attempt; /* 0 = the latest */
    int64_t tail;    /* bytes from the end, 0 = the whole log */
} cs_msg_logs;
/* The aggregate of a sweep (`calsweep results`; coordinator/results/cs_agg.h). */
typedef struct cs_msg_results {
    const char *sweep;      /* sweep reference */
    char **by;              /* axes to group by; n_by 0 = every axis but seed */
    size_t n_by;            /* at most CS_PROTO_MAX_RESULTS_LIST */
    const char *metric;     /* NULL = each task's headline */
    const char *reference;  /* "AXIS=VALUE", NULL = none */
    char **tasks;           /* tasks to report; n_tasks 0 = all */
    size_t n_tasks;         /* at most CS_PROTO_MAX_RESULTS_LIST */
    int64_t resamples;      /* bootstrap resamples, 0..CS_LIMIT_RESAMPLES (0 = no bootstrap) */
    int64_t item_resamples; /* resamples of average.item_ci, 0..CS_LIMIT_RESAMPLES; optional, 0 */
    int64_t seed;           /* bootstrap seed, >= 0 */
    bool slim;              /* the slim aggregate (the text table's fields); optional, false */
} cs_msg_results;
/* The live view's one request (`calsweep watch`): sweeps, workers, problems and the best groups
 * (docs/watch.md). */
typedef struct cs_msg_watch {
    const char *sweep; /* sweep reference, NULL = all sweeps */
    int64_t top;       /* best groups per sweep, 1..100; 0 = absent (5) */
    int64_t problems;  /* failing and lost jobs, 1..1000; 0 = absent (20) */
} cs_msg_watch;
/* One job whole: config, axes, attempts, progress and the command that reproduces it. */
typedef struct cs_msg_job_info {
    int64_t job_id;
} cs_msg_job_info;
typedef struct cs_msg_ok {
    const char *data; /* any JSON value, NULL = absent */
} cs_msg_ok;
typedef struct cs_msg_error {
    cs_rc code;          /* wire: its name, "CS_ESTALE"; never CS_OK */
    const char *message; /* may be "" */
} cs_msg_error;

/* A decoded or to-be-encoded message: a tagged union on type.
 *
 * Ownership: after cs_msg_decode every pointer is owned by the message; free it all with
 * cs_msg_fini. cs_msg_encode only borrows, so a message built for sending may point at the
 * caller's own strings, in which case the caller must NOT call cs_msg_fini on it. */
typedef struct cs_msg {
    cs_msg_type type;
    const char *token; /* NULL = absent */
    int64_t req_id;    /* 0 = absent */
    union {
        cs_msg_hello hello;
        cs_msg_claim claim;
        cs_msg_job job;
        cs_msg_no_work no_work;
        cs_msg_heartbeat heartbeat;
        cs_msg_ack ack;
        cs_msg_result result;
        cs_msg_fail fail;
        cs_msg_bye bye;
        cs_msg_submit submit;
        cs_msg_plan plan;
        cs_msg_status status;
        cs_msg_cancel cancel;
        cs_msg_sweep_ref pause;
        cs_msg_sweep_ref resume;
        cs_msg_retry retry;
        cs_msg_extend extend;
        cs_msg_jobs jobs;
        cs_msg_logs logs;
        cs_msg_results results;
        cs_msg_watch watch;
        cs_msg_job_info job_info;
        cs_msg_ok ok;
        cs_msg_error error;
    };
} cs_msg;

/* Zeroes m and sets its type. */
void cs_msg_init(cs_msg *m, cs_msg_type type);

/* Frees everything m owns and zeroes it. NULL-safe; safe on zeroed memory and after a failed
 * decode. Only for messages whose pointers are owned (see cs_msg). */
void cs_msg_fini(cs_msg *m);

/* Encodes m (borrowed) as canonical JSON text. Returns CS_OK and *out = owned NUL-terminated text
 * (free with free()), *len = its length (len may be NULL). Errors, with *out = NULL:
 * CS_EINVAL for a message the decoder would refuse (a required string NULL, an id out of range, a
 * JSON payload that does not parse or is not an object, a log_tail over CS_PROTO_MAX_TEXT, invalid
 * UTF-8, ...), naming the field ("encode HEARTBEAT.job_id: expected a positive integer, got 0");
 * CS_ETOOBIG when the text exceeds CS_PROTO_MAX_BYTES; CS_ENOMEM.
 * Anything this returns decodes to an equal message. */
cs_rc cs_msg_encode(const cs_msg *m, char **out, size_t *len, cs_err *err);

/* Decodes data[0..len) (need not be NUL-terminated) into *m, which is overwritten (not freed:
 * fini it first if it held something). On CS_OK *m holds owned fields; on error *m is zeroed.
 * Errors, each with a message naming the place:
 *   CS_ETOOBIG   len > CS_PROTO_MAX_BYTES
 *   CS_EPARSE    not JSON, NUL bytes, invalid UTF-8, duplicate keys (cs_json_parse's message)
 *   CS_EVERSION  "v" is an integer other than CS_PROTO_VERSION
 *   CS_EPROTO    not an object; "v" or "type" missing or of the wrong type; unknown type; a
 *                missing required field, a field of the wrong type or out of range, an unknown
 *                field, an oversize string ("HEARTBEAT.log_tail: longer than 16384 bytes")
 *   CS_ENOMEM */
cs_rc cs_msg_decode(const void *data, size_t len, cs_msg *m, cs_err *err);

/* Wire name of a type ("HEARTBEAT"); "?" for CS_MSG_NONE or out-of-range values. Never NULL. */
const char *cs_msg_type_name(cs_msg_type t);
/* The type of a wire name (exact, case-sensitive); CS_MSG_NONE when unknown. */
cs_msg_type cs_msg_type_from_name(const char *name);
/* Where the type travels; CS_EP_REPLY for replies. t must be a valid type (else CS_EP_REPLY). */
cs_msg_endpoint cs_msg_type_endpoint(cs_msg_type t);

/* Wire name of a fail kind ("oom"); "?" when out of range. Never NULL. */
const char *cs_fail_kind_name(cs_fail_kind k);
/* The kind of a wire name; CS_FAIL_NONE when unknown. */
cs_fail_kind cs_fail_kind_from_name(const char *name);

/* The code of a cs_rc name ("CS_ESTALE"); false when the name is unknown. */
bool cs_rc_from_name(const char *name, cs_rc *out);

/* Draws a fresh secret of CS_PROTO_TOKEN_LEN lowercase hex digits (128 bits from the kernel's
 * CSPRNG, getrandom(2)) into out, NUL-terminated: a lease_token or an instance. CS_EIO (named in
 * err) when the kernel gives no randomness. Thread-safe. */
cs_rc cs_proto_new_token(char out[CS_PROTO_TOKEN_LEN + 1], cs_err *err);

/* Whether s is a well-formed token (CS_PROTO_TOKEN_LEN lowercase hex digits). */
bool cs_proto_token_ok(const char *s);

/* Compares two tokens in time independent of where they differ (a wrong guess tells nothing
 * about the right one). false when either is NULL or malformed. */
bool cs_proto_token_eq(const char *a, const char *b);

/* Makes a log tail fit to send: the last at most CS_PROTO_MAX_TEXT bytes of log[0..len), starting
 * at a character boundary, with every NUL byte and invalid UTF-8 byte replaced by '?'. Returns
 * owned text (free with free()), or NULL on OOM. log may be NULL when len is 0. */
char *cs_proto_log_tail(const char *log, size_t len);

#endif
