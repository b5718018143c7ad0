/* cs_expand.h - deterministic expansion of a parsed sweep into a stream of resolved job cells.
 *
 * Order: the grid product in axis order (the first axis varies slowest, as itertools.product; a
 * zip group is one dimension at the place of its first axis), cells matching an exclude pattern
 * skipped, then the include cells in file order. Before the first cell of each (model, eval suite)
 * pair comes that pair's automatic baseline job (algorithm "none", no calibration), whose config
 * mentions nothing sweep-specific, so its key is the same in every sweep that needs it.
 *
 * Each cell is a fully resolved job config in canonical JSON (cs_canon.h rules), assembled from
 * the canonical fragments the parser pre-rendered (no tree per cell):
 *   {"algorithm":{...},"calibration":{"selector":{...},"source":{...}},"eval":{...},
 *    "extra":{...},"model":{...},"n_samples":N,"seed":S,"seq_len":L}
 * (schemas/job.schema.json). A calibration-free algorithm (none, rtn) has "calibration", and
 * "n_samples", "seed", "seq_len" null, and a selector that generates its data (self_calibration)
 * has "source":null, so cells that differ only in axes that cannot change the result share one
 * key. key = hex SHA-256(config || CS_ENGINE_VERSION).
 * Within a stream a key appears once: later duplicates are dropped and counted.
 *
 * Memory: the dedup set holds 32 bytes per possible cell (about 70 MB for 1,000,000); configs are
 * built one at a time. Not thread-safe; one expander per thread.
 */
#ifndef CS_COORDINATOR_SWEEP_CS_EXPAND_H
#define CS_COORDINATOR_SWEEP_CS_EXPAND_H

#include <stdbool.h>
#include <stddef.h>

#include "cs_err.h"
#include "cs_plan.h"
#include "cs_sweep.h"

#define CS_EXPAND_DEFAULT_MAX ((size_t)1000000)

typedef struct cs_expand_opts {
    size_t max_jobs; /* refuse sweeps that may give more jobs; 0 = CS_EXPAND_DEFAULT_MAX */
} cs_expand_opts;

typedef struct cs_expand_counts {
    /* Known when the expander is created (one cheap pass over value indices, no configs): */
    size_t product;       /* cells of the grid product */
    size_t excluded;      /* of which removed by exclude patterns */
    size_t included;      /* include cells */
    size_t baselines_max; /* distinct (model, eval) pairs used: the most baseline jobs */
    size_t upper;         /* product - excluded + included + baselines_max */
    /* Grow while streaming; exact once done: */
    size_t emitted;    /* cells returned, baselines included */
    size_t baselines;  /* automatic baseline cells returned */
    size_t duplicates; /* candidates dropped because their key was returned before */
    bool done;         /* the stream has ended */
} cs_expand_counts;

typedef struct cs_expander cs_expander;

/* Prepares the stream over s (borrowed: must outlive the expander) and counts it. Refuses with
 * CS_EINVAL a sweep that gives no job ("... 0 jobs: the grid has 12 cells and exclude removes all
 * 12"), and with CS_ETOOBIG one that may give more than opts->max_jobs, both with the counts in
 * err. opts may be NULL. *out is owned (cs_expand_destroy); NULL on error. */
cs_rc cs_expand_create(const cs_sweep *s, const cs_expand_opts *opts, cs_expander **out,
                       cs_err *err);

/* A cs_cell_next_fn: ctx is the cs_expander. CS_OK with *out filled (strings borrowed, valid until
 * the next call or cs_expand_destroy), CS_ENOENT after the last cell, CS_ENOMEM/CS_EINTERNAL. */
cs_rc cs_expand_next(void *ctx, cs_cell *out, cs_err *err);

/* The axis values of the last cell returned, one per axis of the sweep (cs_sweep.axes order);
 * NULL where the axis does not apply (the calibration axes of a calibration-free algorithm, every
 * axis but model and eval of a baseline; for a baseline the algorithm entry is a "none" value).
 * Borrowed, valid until the next call of cs_expand_next. NULL before the first cell. */
const cs_axis_value *const *cs_expand_cell_values(const cs_expander *e);

void cs_expand_get_counts(const cs_expander *e, cs_expand_counts *out);

/* A union of grids (cs_sweep.grids): the sub-grids are streamed in order and a job a later
 * sub-grid shares with an earlier one is dropped (counted in duplicates; it keeps the label of
 * the first, its "grid" axis). get_counts sums the sub-grids' counts; cell_values gives the
 * values of the current sub-grid's axes (cs_sweep.grids[i]->axes). cs_expand_n_grids: the
 * sub-grids (0 for a single grid); cs_expand_grid: the expander of sub-grid i (borrowed), whose
 * own counts are that sub-grid's. A sub-grid that gives no job or too many is refused by create,
 * naming it ("grids.selectors: the sweep expands to 0 jobs: ..."). */
size_t cs_expand_n_grids(const cs_expander *e);
/* The sub-grid of the last cell returned (a union only). */
size_t cs_expand_current_grid(const cs_expander *e);
const cs_expander *cs_expand_grid(const cs_expander *e, size_t i);

/* NULL-safe. */
void cs_expand_destroy(cs_expander *e);

#endif
