/* cs_store_extra.h - store operations of the daemon that cs_store.h does not have. */
#ifndef CS_COORDINATOR_CS_STORE_EXTRA_H
#define CS_COORDINATOR_CS_STORE_EXTRA_H

#include <stdbool.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_store.h"

/* A worker hands back the job it holds (BYE.release_job): the lease of (job, attempt) expires
 * now, so the next cs_store_reap puts the job back to queued (the attempt counts as used).
 * *released (may be NULL) says whether a running lease of that attempt existed. Joins an open
 * batch like the cs_store.h operations. */
cs_rc cs_store_release(cs_store *s, int64_t job_id, int attempt, int64_t now, bool *released,
                       cs_err *err);

#endif
