/* cs_prefetch.h - a cell stream run ahead of its consumer, on a thread of its own.
 *
 * Why: expanding a sweep (canonical JSON and SHA-256 per cell, cs_expand) and inserting its jobs
 * (cs_store) are both CPU-bound and independent of each other. Run one after the other a
 * 10^6-job submit costs their sum; with the expansion on a second core it costs about the longer
 * of the two. cs_prefetch_start runs any cs_cell_next_fn on a new thread, which copies each cell
 * into chunks of a small ring (CS_PREFETCH_CHUNKS of CS_PREFETCH_CELLS cells, ~1 MB for cells of
 * ~1 KB); cs_prefetch_next, itself a cs_cell_next_fn, hands them out in the same order, and the
 * stream's end or error at its place, so a consumer sees exactly what it would have seen calling
 * the producer itself.
 *
 * Threads: the producer (next, ctx) runs only on the prefetch thread between cs_prefetch_start
 * and cs_prefetch_destroy: the caller must not use ctx in between. cs_prefetch_next is for one
 * consumer thread.
 */
#ifndef CS_COORDINATOR_SWEEP_CS_PREFETCH_H
#define CS_COORDINATOR_SWEEP_CS_PREFETCH_H

#include "cs_err.h"
#include "cs_plan.h"

#define CS_PREFETCH_CHUNKS 4
#define CS_PREFETCH_CELLS  256

typedef struct cs_prefetch cs_prefetch;

/* Starts the thread producing from next(ctx). *out is owned (cs_prefetch_destroy); NULL on error
 * (CS_ENOMEM, CS_EINTERNAL when no thread can be started; next was then never called). */
cs_rc cs_prefetch_start(cs_cell_next_fn next, void *ctx, cs_prefetch **out, cs_err *err);

/* A cs_cell_next_fn: ctx is the cs_prefetch. The producer's next cell (strings borrowed, valid
 * until the next call or cs_prefetch_destroy), or its CS_ENOENT or error with its message, then
 * that same outcome again on every later call. Blocks while the producer is behind. */
cs_rc cs_prefetch_next(void *ctx, cs_cell *out, cs_err *err);

/* Stops the producer if it is still running (it stops before its next cell), waits for the
 * thread, frees. Afterwards ctx belongs to the caller again. NULL-safe. */
void cs_prefetch_destroy(cs_prefetch *p);

#endif
