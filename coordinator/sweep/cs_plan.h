/* cs_plan.h - the contract between sweep expansion (cs_sweep, cs_expand) and the job store
 * (cs_store): a sweep's metadata and policy, and a stream of resolved cells.
 *
 * Expansion is a stream, not an array, so a 1,000,000-job sweep is inserted without holding every
 * config in memory: the store pulls cells one at a time inside its insert transaction.
 */
#ifndef CS_COORDINATOR_SWEEP_CS_PLAN_H
#define CS_COORDINATOR_SWEEP_CS_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "cs_err.h"

/* What a sweep asks of the scheduler; defaults in parentheses are the parser's. */
typedef struct cs_policy {
    int max_attempts;      /* attempts per job before failed/lost (3) */
    double backoff_base_s; /* first retry delay; doubles per attempt (30) */
    double backoff_max_s;  /* cap on the retry delay (3600) */
    int64_t timeout_s;     /* wall-clock limit per attempt, 0 = none (0) */
    int priority;          /* higher runs first (0) */
    int max_running;       /* concurrent running jobs of this sweep, 0 = no cap (0) */
    bool stop_on_failure;  /* on_failure: "stop" pauses the sweep at the first failed job */
} cs_policy;

/* One resolved cell of a sweep. Strings are borrowed, valid until the next call of the iterator.
 * A producer that zeroes the struct first (as it should) leaves the optional fields unset. */
typedef struct cs_cell {
    const char *key;    /* 64 lowercase hex: SHA-256(canonical config + engine version) */
    const char *config; /* canonical JSON of the fully resolved job config */
    const char *axes;   /* canonical JSON object of this cell's axis values (display, grouping) */
    bool baseline;      /* the automatic unquantized baseline (algorithm "none") */
    /* Optional: */
    size_t config_len; /* strlen(config) when the producer knows it, else 0 */
    size_t axes_len;   /* strlen(axes) likewise */
    bool unique;       /* the producer guarantees that no earlier cell of this stream had this key
                        * (cs_expand drops repeats itself), so the store need not check it against
                        * the stream again (it still checks it against the sweep's stored jobs) */
} cs_cell;

/* Produces the next cell: CS_OK with *out filled, CS_ENOENT after the last cell, another code
 * with err filled on failure. Deterministic: the same sweep always streams the same cells in the
 * same order. */
typedef cs_rc (*cs_cell_next_fn)(void *ctx, cs_cell *out, cs_err *err);

/* A sweep ready for the store. Strings borrowed from the producer. */
typedef struct cs_sweep_meta {
    const char *name;      /* the sweep's name from its file */
    const char *spec;      /* canonical JSON of the whole sweep file as submitted */
    const char *spec_hash; /* 64 hex of spec */
    cs_policy policy;
} cs_sweep_meta;

#endif
