/* cs_daemon.h - calsweepd's engine: a libuv loop serving the work and control endpoints.
 *
 * nng REP sockets, each served by a pool of contexts with asynchronous I/O. The nng callbacks
 * never touch SQLite: they queue the received message and wake the loop (uv_async_send). The loop
 * drains the whole queue, decodes, runs every work-endpoint request of the drain in one store
 * batch (group commit), and replies only after the commit. CLAIM is a long poll: with nothing to
 * run the context is held and answered NO_WORK before claim_hold_ms, or with a JOB as soon as one
 * appears (after a submit, retry, resume, extend, result, fail or reap). A claim riding on a
 * RESULT or FAIL (protocol v2) is tried once, after the report, and answered JOB or NO_WORK at
 * once (not held). Every report about a job must come from its lease holder (worker and lease
 * token, protocol v3): others are refused with CS_ESTALE and logged. A BYE answers the claim its
 * worker process still has held NO_WORK, without a lease. Every message of a worker moves its
 * last_seen; workers not seen for worker_prune_s that run nothing are deleted by the reaper timer.
 * Control requests go to
 * cs_control_handle, each in its own transaction. The reaper runs at startup and on a timer.
 *
 * Threads: cs_daemon_run blocks on the calling thread; cs_daemon_stop may be called from any
 * thread (or a SIGTERM/SIGINT when opts.signals) and makes run return after the batch under way.
 */
#ifndef CS_COORDINATOR_SERVER_CS_DAEMON_H
#define CS_COORDINATOR_SERVER_CS_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_net.h"

typedef struct cs_daemon_opts {
    const char *db;          /* database path, required */
    const char *work_url;    /* required */
    const char *control_url; /* required */
    const char *token;       /* shared token; NULL = none */
    cs_net_tls tls;          /* for tls+tcp:// listeners */
    bool insecure;           /* allow a non-loopback tcp:// listener without token or TLS */
    int64_t lease_s;         /* lease of a handed-out job (60) */
    int64_t claim_hold_ms;   /* long poll of a CLAIM with nothing to run (10000) */
    int64_t reap_ms;         /* reaper period (5000) */
    int64_t max_batch;       /* work messages per transaction (1024) */
    int n_work_ctx;          /* contexts of the work endpoint (256) */
    int n_control_ctx;       /* contexts of the control endpoint (8) */
    int64_t worker_prune_s;  /* forget workers not seen this long that run nothing (3600); 0 =
                                never */
    bool signals;            /* stop on SIGTERM/SIGINT */
} cs_daemon_opts;

typedef struct cs_daemon cs_daemon;

/* Fills the defaults above (strings NULL). */
void cs_daemon_opts_default(cs_daemon_opts *o);

/* Opens the store (runs the reaper once), checks and opens both listeners. *out owned. */
cs_rc cs_daemon_open(const cs_daemon_opts *o, cs_daemon **out, cs_err *err);

/* Serves until cs_daemon_stop or a signal; then finishes the batch under way, answers held
 * claims NO_WORK and closes the sockets. CS_OK on a clean stop. */
cs_rc cs_daemon_run(cs_daemon *d, cs_err *err);

/* Asks run to return; any thread. */
void cs_daemon_stop(cs_daemon *d);

/* Closes the store and frees d. NULL-safe. Call after run returned (or instead of it). */
void cs_daemon_close(cs_daemon *d);

#endif
