/* cs_agent.h - the calsweep worker agent: registers with calsweepd over an nng REQ socket, claims
 * jobs, runs each in a child (cs_child.h), heartbeats, reports RESULT or FAIL, and survives
 * coordinator restarts.
 *
 * Threads: one libuv loop of its own does everything. Requests go out one at a time on an nng
 * REQ context with an asynchronous aio; the aio callback (an nng thread) only stores the reply
 * under a mutex and wakes the loop (uv_async_send), so the loop keeps supervising the child and
 * its timers while a CLAIM long poll is outstanding (docs/style.md R13).
 *
 * Each job runs under cfg.guard when it is set (cs_child.h), so it dies with the worker.
 *
 * Protocol (cs_proto.h): HELLO until OK, then CLAIM; JOB -> the job runs in
 * <work_dir>/<job_id>-<attempt>/ (job.json = JOB.config, argv [runner, "job.json"], env
 * CALSWEEP_JOB_ID, CALSWEEP_ATTEMPT, CALSWEEP_THREADS = cfg.threads, CALSWEEP_BASE_DIR,
 * CALSWEEP_MODEL_ROOTS (the model roots, absolute; the runner confines model folders to them, or to
 * the base folder when there are none), CALSWEEP_DATA_ROOTS (the data roots, absolute, else the
 * worker's folder; the runner confines data files to them), and CALSWEEP_CACHE_DIR = cfg.cache_dir,
 * absolute, when set, where the runner keeps what jobs can share: the selectors' pool statistics);
 * HEARTBEAT every heartbeat_ms (at most lease_s/3) with stage, progress and the log tail;
 * ACK.cancel stops the child (FAIL kind cancelled); ERROR CS_ESTALE on a heartbeat stops it and
 * drops the job. When the child ends: exit 0 with a result.json the result codec accepts
 * (cs_result.h) -> RESULT (result = the document plus "log_path", "worker", and "host" when it
 * names none; a null metric is FAIL bad_input instead); otherwise FAIL with the exit
 * status, signal, kind (error.json's kind, else crash/timeout/cancelled/oom/spawn), the log
 * tail and the log's path. Unless the agent is stopping, runs --once or ends its max_jobs with this
 * job, the RESULT or FAIL carries a claim for the next job (protocol v2), so one round trip reports
 * a job and starts the next. A RESULT or FAIL is resent (with backoff) until the coordinator
 * answers: ACK or OK -> done; JOB -> done, and that is the next job; NO_WORK -> done, CLAIM after
 * retry_ms; ERROR CS_ESTALE -> dropped (another attempt owns the job). NO_WORK to a CLAIM -> CLAIM
 * again after retry_ms. Protocol v3: every HEARTBEAT, RESULT, FAIL and BYE.release_job names the
 * worker and the JOB's lease_token; CLAIM and BYE name the agent's instance (drawn at create).
 * ERROR CS_EAUTH (a wrong token) or CS_EVERSION to any request is final: logged once with the
 * endpoint, no BYE, and cs_agent_run returns that code. Lost replies (the coordinator restarting)
 * are resent by nng's REQ resend and by the agent's own timeouts with exponential backoff (200 ms
 * doubling to 5 s, with jitter).
 *
 * Stopping (cs_agent_request_stop, or SIGTERM/SIGINT when handle_signals): drain = finish and
 * report the current job, then BYE; release = stop the child and BYE with release_job. A second
 * signal while draining (at least 1 s after the first) switches to release, and so does the end
 * of drain_s after the first signal. A released job is queued again at once by calsweepd, its
 * attempt not counted against max_attempts. --once (once): one
 * CLAIM answer, at most one job, then BYE. max_jobs: BYE after that many jobs ended (reported or
 * dropped).
 */
#ifndef CS_WORKER_AGENT_CS_AGENT_H
#define CS_WORKER_AGENT_CS_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_net.h"

typedef struct cs_agent cs_agent;

/* Every pointer is borrowed for the agent's lifetime. */
typedef struct cs_agent_cfg {
    const char *coordinator;       /* work endpoint URL, required */
    const char *name;              /* worker name, required */
    const char *host;              /* host name sent in HELLO and provenance, required */
    const char *const *model_root; /* folders whose subfolders with config.json are models */
    size_t n_model_root;
    const char *const *data_root; /* folders jobs may read data files from; none = the cwd */
    size_t n_data_root;
    int64_t threads;            /* >= 1 */
    int64_t mem_mb;             /* >= 0 */
    const char *runner;         /* the runner program, required */
    const char *exec_template;  /* a shell command for exec-backend jobs; NULL = no exec */
    const char *guard;          /* the program that guards each job (cs_child.h: calsweep-worker
                                   itself, so the job dies with the worker); NULL = none */
    const char *work_dir;       /* per-attempt folders go here (created), required */
    const char *cache_dir;      /* the runner's cache (created by it); NULL = no cache */
    const char *token;          /* shared token or NULL */
    cs_net_tls tls;             /* all NULL = no TLS */
    int64_t heartbeat_ms;       /* >= 10 */
    int64_t kill_grace_ms;      /* >= 0 */
    int64_t resend_ms;          /* nng REQ resend time; 0 = 30000 */
    int64_t request_timeout_ms; /* no reply to a HELLO/HEARTBEAT/RESULT/FAIL/BYE: 0 = 15000 */
    int64_t claim_timeout_ms;   /* no reply to a CLAIM: 0 = 45000 */
    bool once;                  /* one CLAIM answer, at most one job */
    int64_t max_jobs;           /* 0 = no limit */
    bool release_on_term;       /* SIGTERM: release (true) or drain (false) */
    int64_t drain_s;            /* draining: release the job still running this long after the
                                   first signal; 0 = wait for it */
    bool handle_signals;        /* SIGTERM/SIGINT stop the agent */
} cs_agent_cfg;

/* Counters for tests and the final log line. */
typedef struct cs_agent_stats {
    int64_t jobs_started;
    int64_t results; /* RESULT acknowledged */
    int64_t fails;   /* FAIL acknowledged */
    int64_t dropped; /* refused as stale */
    int64_t cancels; /* ACK.cancel received */
    int64_t requests, request_errors;
} cs_agent_stats;

typedef enum cs_agent_stop_mode {
    CS_AGENT_DRAIN = 0,
    CS_AGENT_RELEASE,
} cs_agent_stop_mode;

/* Scans the model roots and opens the socket (dialing asynchronously: the coordinator need not be
 * up). Errors name the option: CS_EINVAL for a bad cfg, CS_EIO/CS_ENOENT for the work folder,
 * the dial error of cs_net_dial. */
cs_rc cs_agent_create(const cs_agent_cfg *cfg, cs_agent **out, cs_err *err);

/* Runs the loop until the agent has said BYE (or could not). Calling thread only. */
cs_rc cs_agent_run(cs_agent *a, cs_err *err);

/* Asks the agent to stop. Thread-safe and async-signal-unsafe (uses uv_async_send and a mutex). */
void cs_agent_request_stop(cs_agent *a, cs_agent_stop_mode mode);

/* Copies the counters. Thread-safe. */
void cs_agent_get_stats(cs_agent *a, cs_agent_stats *out);

/* NULL-safe; only after cs_agent_run returned (or was never called). */
void cs_agent_destroy(cs_agent *a);

/* The models under the roots: every subfolder holding config.json, listed by its name, by
 * "<root>/<name>" (the root as given) and by its absolute path (the coordinator matches the
 * sweep's models.X.folder, as written, against this list). Sorted, without duplicates, at most
 * CS_PROTO_MAX_LIST. *out owned (free each and the array). Unreadable roots are skipped with a
 * warning. */
cs_rc cs_agent_scan_models(const char *const *roots, size_t n_roots, char ***out, size_t *n,
                           cs_err *err);

#endif
