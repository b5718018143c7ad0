/* run: the runner contract (docs/architecture.md "The job runner contract").
 *
 * `calsweep-run job.json` reads the resolved job config, loads the model, selects the
 * calibration data, quantizes, evaluates, and writes result.json (schemas/result.schema.json) in
 * the current folder; on failure it writes error.json {kind, message, stage} and exits 1.
 * Metrics that are not finite (NaN or infinite) are a failure: error.json kind bad_input, the
 * message naming the metric ("metrics.ppl:heldout.ppl is NaN: ...").
 * Progress goes to fd 3 when it is open, one JSON object per line:
 * {"stage":"evaluate","task":"arith_mc","done":3,"total":7}. Logs go to stderr.
 *
 * Relative paths in the config are resolved against $CALSWEEP_BASE_DIR (the folder the worker
 * runs in; default: the current folder); a model folder that is not found there is looked up
 * in each folder of $CALSWEEP_MODEL_ROOTS (':'-separated, the worker's --model-root folders).
 * Every path is resolved (realpath) and confined: model folders to $CALSWEEP_MODEL_ROOTS, data
 * files to $CALSWEEP_DATA_ROOTS (':'-separated, the worker's --data-root folders), each the base
 * folder when unset or empty; a path outside fails bad_input naming it and the roots.
 * Threads: $CALSWEEP_THREADS (default 1). Cache: $CALSWEEP_CACHE_DIR (the worker's --cache-dir;
 * unset or empty: nothing is cached) holds the pool statistics of the selectors ppl_rank, cola,
 * acdm and covercal (worker/calib/cs_pstat.h), so another job with the same model and pool reads
 * them instead of running the forward passes again; result.json's calibration.details.stats says
 * what this job forwarded and what it read from the cache.
 *
 * Calibration: the candidate pool of a selector that chooses (every one but random and the
 * generating ones) is 4 x n_samples random windows of seq_len tokens of calibration.source
 * (seeded by the job's seed); random takes n_samples windows; self_calibration makes its own.
 */
#ifndef CS_WORKER_RUN_CS_JOB_H
#define CS_WORKER_RUN_CS_JOB_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "cs_err.h"

/* Checks a job config (cfg borrowed) as the runner does before it loads anything: the whole
 * config is parsed into a cs_jobspec (common/cs_jobspec.h), every number against the table of
 * limits (cs_limits.h; the bounds the sweep validator used) and the algorithm and selector against
 * the table of methods (cs_methods.h). CS_OK, or CS_ESCHEMA with err naming the field
 * ("eval.tasks.arith.limit: expected an integer in 0..16777216, got ..."). */
cs_rc cs_job_check_limits(const cJSON *cfg, cs_err *err);

/* Runs the job of `job_path`; returns the process exit code (0, or 1 with error.json written).
 * result.json's extra.profile always has each stage's time next to its arithmetic floor
 * (cs_floor.h); profile also prints that table to stderr. */
int cs_run_job(const char *job_path, bool profile);

#endif
