/* cs_jobspec.h - a job config (job.json) as a typed struct, parsed once, and its canonical writer.
 *
 * Why: the config of one job was read piecemeal by every stage of the runner, each with its own
 * checks; the runner now parses it once here (every number against common/cs_limits.h, the
 * algorithm and the selector against common/cs_methods.h, with the messages and JSON paths of
 * the sweep validator), and its stages read the struct. cs_jobspec_write gives the canonical
 * bytes the expander's fast path (coordinator/sweep/cs_expand.c) writes, so parse -> write is the
 * identity on every config a sweep produces (tests/unit/jobspec_test.c checks each cell of every
 * shipped sweep).
 *
 * The shape (job.schema.json): {"algorithm": {...}, "calibration": {"selector": {...}, "source":
 * {...}|null}|null, "eval": {"perplexity": {name: {path, seq_len, max_windows}}, "tasks": {name:
 * {path, limit, fewshot, fewshot_path}}}, "extra": {...}, "model": {"arch", "backend", "folder"},
 * "n_samples", "seed", "seq_len"} (null for the baseline "none").
 */
#ifndef CS_COMMON_CS_JOBSPEC_H
#define CS_COMMON_CS_JOBSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_alloc.h"
#include "cs_err.h"
#include "cs_json.h"
#include "cs_methods.h"

typedef struct cs_jobspec_source {
    const char *kind, *path; /* borrowed from cs_jobspec.doc */
    const char *text_field;  /* NULL when absent (only "jsonl" sources have one) */
} cs_jobspec_source;

/* One source of a pool (calibration.source of kind "pool"). */
typedef struct cs_jobspec_pool_src {
    const char *name;      /* its name in the pool (item ids "<name>:...") */
    cs_jobspec_source src; /* kind, path, text_field */
    int64_t quota;         /* items, or 0 when weighted */
    double weight;         /* share of what the quotas leave, when quota is 0 */
    const char *format;    /* "text" or "qa" (task sources), NULL for other kinds */
} cs_jobspec_pool_src;

/* calibration.source {"kind": "pool", "composition", "keep_out", "size", "sources"}: a candidate
 * pool mixed from several sources (coordinator/sweep/cs_sweep_pool.c writes it). */
typedef struct cs_jobspec_pool {
    const char *composition;   /* "random_windows", "concat" or "per_doc" */
    int64_t size;              /* items, or 0 when sized by multiple */
    int64_t multiple;          /* items = multiple x n_samples, or 0 */
    cs_jobspec_pool_src *srcs; /* owned, sorted by name (as the canonical text) */
    size_t n_srcs;
    const char **keep_out; /* owned array of borrowed strings: eval task files to keep out */
    size_t n_keep_out;
} cs_jobspec_pool;

typedef struct cs_jobspec_task {
    const char *name, *path;
    int64_t limit, fewshot;
    const char *fewshot_path; /* NULL: null */
} cs_jobspec_task;

typedef struct cs_jobspec_ppl {
    const char *name, *path;
    int64_t seq_len, max_windows;
} cs_jobspec_ppl;

typedef struct cs_jobspec {
    cJSON *doc; /* owned: the parsed config; every string below is borrowed from it */
    struct {
        const char *folder, *arch, *backend; /* arch, backend: NULL when absent */
    } model;
    const cs_method *algo_md; /* the algorithm's row in the table */
    cs_algo_params algo;      /* every parameter, defaults filled */
    bool has_calibration;     /* false: calibration is null (the baseline, rtn) */
    const cs_method *sel_md;
    cs_select_params sel;     /* n, seed, seq_len from the job */
    bool has_source;          /* false: calibration.source is null (self_calibration) */
    cs_jobspec_source source; /* kind "pool": path "", and the pool in `pool` */
    bool is_pool;
    cs_jobspec_pool pool;
    cs_jobspec_source *reference; /* owned: acdm's reference sources */
    size_t n_reference;
    cs_jobspec_task *tasks; /* owned */
    size_t n_tasks;
    cs_jobspec_ppl *ppl; /* owned */
    size_t n_ppl;
    const cJSON *extra; /* the "extra" object (borrowed), or NULL */
    bool has_sizes;     /* false: n_samples, seed and seq_len are null */
    int64_t n_samples, seed, seq_len;
} cs_jobspec;

/* Parses text[0..len) (a job config; name labels it in messages) into *out (cs_jobspec_fini).
 * Fail-fast: the first problem is CS_ESCHEMA naming its JSON path ("algorithm.act_bits: expected
 * an integer in 2..8, got 16"), CS_EPARSE for text that is not JSON, CS_ENOMEM. */
cs_rc cs_jobspec_parse(const char *text, size_t len, const char *name, cs_jobspec *out,
                       cs_err *err);

/* Same for a tree the caller keeps (duplicated into out->doc). */
cs_rc cs_jobspec_from_json(const cJSON *cfg, cs_jobspec *out, cs_err *err);

/* Appends the canonical config of js to out: the bytes cs_expand writes for the same job. */
cs_rc cs_jobspec_write(const cs_jobspec *js, cs_buf *out, cs_err *err);

void cs_jobspec_fini(cs_jobspec *js); /* NULL-safe */

#endif
