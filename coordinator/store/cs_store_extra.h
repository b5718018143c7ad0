/* cs_store_extra.h - store operations of the daemon that cs_store.h does not have. */
#ifndef CS_COORDINATOR_STORE_CS_STORE_EXTRA_H
#define CS_COORDINATOR_STORE_CS_STORE_EXTRA_H

#include <stdbool.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_store.h"

/* A worker hands back the job it holds (BYE.release_job): the lease of (job, attempt) expires
 * now, so the next cs_store_reap puts the job back to queued (the attempt counts as used). Only
 * the lease holder may: CS_ESTALE when worker and token are not the attempt's
 * (cs_store_lease_check) and nothing changes. *released (may be NULL) says whether a running
 * lease of that attempt existed. Joins an open batch like the cs_store.h operations. */
cs_rc cs_store_release(cs_store *s, int64_t job_id, int attempt, const char *worker,
                       const char *token, int64_t now, bool *released, cs_err *err);

/* A worker said BYE: marks it gone (bye_at = now) unless its row records another instance (a newer
 * process of the same name). *marked (may be NULL) says whether a row changed. */
cs_rc cs_store_worker_bye(cs_store *s, const char *worker, const char *instance, int64_t now,
                          bool *marked, cs_err *err);

/* Deletes the workers not seen since now - idle_ms that run no job (their rows only; attempts
 * keep the names). *n (may be NULL) = rows deleted. */
cs_rc cs_store_worker_prune(cs_store *s, int64_t now, int64_t idle_ms, size_t *n, cs_err *err);

/* Whether a worker counts as active: seen within window_ms of now and no BYE since. The SQL
 * condition for the worker table (bind ?1 = now - window_ms), for cs_control's STATUS and
 * WORKERS. */
#define CS_STORE_WORKER_ACTIVE_SQL "(last_seen >= ?1 AND bye_at IS NULL)"

#endif
