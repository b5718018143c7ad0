/* cs_watch.h - the live view's requests: WATCH (one document for every pane of `calsweep watch`)
 * and JOB_INFO (one job whole). The WATCH document is specified in docs/watch.md.
 *
 * Threads: calsweepd answers WATCH on libuv's thread pool, each request with a read-only store
 * connection of its own (like RESULTS), so several threads may call cs_watch_handle at once on
 * one cs_watch. The cs_watch is the per-sweep cache they share (under its mutex): each sweep's
 * ETA and average duration, recomputed only when the sweep's job counts changed (and at most once
 * per 50 x the last computation's time), its "best so far" rows (the aggregate of
 * cs_store_results, full form, no bootstrap), recomputed only when the counts changed and at most
 * once per max(10 s, 50 x the last computation's time), and the times of its jobs' recent ends
 * (the rate; each request reads only the events after the last one read). The ETA and the best
 * rows are computed by the cache's own thread, at the lowest priority (nice 19), with a read-only
 * connection of its own; a request answers from the cached copy, and waits (at most 600 ms each)
 * only for a sweep's first ETA and first best rows. With db NULL there is no thread and the
 * request that finds a value due computes it (the tests' mode).
 * JOB_INFO keeps nothing and runs wherever the daemon calls it (its loop thread).
 */
#ifndef CS_COORDINATOR_SERVER_CS_WATCH_H
#define CS_COORDINATOR_SERVER_CS_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cs_err.h"
#include "cs_proto.h"
#include "cs_store.h"

typedef struct cs_watch cs_watch;

/* Counters of the cache's work (tests; the daemon logs nothing of them). */
typedef struct cs_watch_stats {
    uint64_t eta_runs;  /* ETA and average-duration computations started (one per sweep each) */
    uint64_t best_runs; /* aggregates started for "best so far" */
    uint64_t requests;  /* WATCH requests answered */
} cs_watch_stats;

/* A cache for a daemon whose lease is lease_ms (the document's lease_ms; heartbeat_ms is a
 * third of it). db (borrowed; may be NULL) is the database its thread reads for recomputations;
 * without one there is no thread and every recomputation is done by the request that finds it
 * due (the tests' mode). *out owned (cs_watch_destroy). CS_ENOMEM (also when the thread cannot
 * be started), CS_EINVAL for lease_ms < 1. */
cs_rc cs_watch_create(int64_t lease_ms, const char *db, cs_watch **out, cs_err *err);
/* Stops and joins the thread (after the recomputation it is in, if any). NULL-safe. No
 * cs_watch_handle may be running. */
void cs_watch_destroy(cs_watch *w);

/* Answers WATCH m from store s (any thread; s is used by this thread alone during the call) into
 * rep (owned: cs_msg_fini): OK with the document, or ERROR CS_ENOENT naming an unknown m->sweep
 * and the known sweeps. now: ms since the epoch. A non-OK return means no reply could be built
 * (out of memory, a failed query): the daemon answers ERROR CS_EINTERNAL itself. w may be NULL:
 * then everything is computed afresh and nothing is kept (lease_ms CS_WATCH_LEASE_MS). */
cs_rc cs_watch_handle(cs_watch *w, cs_store *s, const cs_msg_watch *m, int64_t now, cs_msg *rep,
                      cs_err *err);

/* The lease the document reports when cs_watch_handle has no cache (calsweepd's default). */
#define CS_WATCH_LEASE_MS ((int64_t)60000)

/* Answers JOB_INFO m into rep (owned): OK with {id, sweep_id, sweep, key, state, attempt,
 * max_attempts, axes, config, progress, last_error, created_ms, updated_ms, attempts,
 * reproduce} (docs/watch.md), or ERROR CS_ENOENT "no job N". Errors as cs_watch_handle. */
cs_rc cs_watch_job_info(cs_store *s, const cs_msg_job_info *m, cs_msg *rep, cs_err *err);

/* Adds to o, under key, the progress object of a job's stored progress (the JSON do_heartbeat
 * writes): {stage, detail, done, total, stage_ms}, detail and stage_ms null when the heartbeat
 * had none, never the log tail; null when json is NULL or not an object with a stage. The one
 * reading of stored progress, for WATCH, JOB_INFO, JOBS and WORKERS. false: out of memory. */
bool cs_watch_add_progress(cJSON *o, const char *key, const char *json);

/* The counters so far (under the cache's mutex). */
void cs_watch_stats_get(cs_watch *w, cs_watch_stats *out);

#endif
