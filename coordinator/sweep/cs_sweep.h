/* cs_sweep.h - a sweep file parsed and validated into typed structs.
 *
 * The parser is the only place that sees cJSON (docs/style.md R7): it checks the whole file,
 * reports every problem at once (each with its JSON path and a reason a person understands),
 * fills the defaults of every algorithm and selector from the table of common/cs_methods.h, and
 * pre-renders every axis value as canonical JSON, so grid expansion (cs_expand) only
 * concatenates strings.
 *
 * Paths in a sweep file (model folders, corpora, task files) are kept as written: relative paths
 * are relative to the directory calsweep and the workers run in (the repository root for the
 * testbed), so job keys do not depend on where a file was checked out. A model folder that does
 * not exist here is only a warning, since workers may see other file systems.
 */
#ifndef CS_COORDINATOR_SWEEP_CS_SWEEP_H
#define CS_COORDINATOR_SWEEP_CS_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_canon.h"
#include "cs_err.h"
#include "cs_json.h"
#include "cs_plan.h"

/* The axes every sweep has (the mission axes), and CS_AXIS_EXTRA for any other name. A mission
 * axis the grid leaves out takes its default as a one-value implicit axis. */
typedef enum cs_axis_kind {
    CS_AXIS_MODEL = 0, /* names of `models`; default: every model */
    CS_AXIS_ALGORITHM, /* required: "gptq" or {"name":"gptq","bits":4,...} */
    CS_AXIS_SELECTOR,  /* default "random" */
    CS_AXIS_N_SAMPLES, /* default 128 */
    CS_AXIS_SEQ_LEN,   /* default 2048 */
    CS_AXIS_SOURCE,    /* names of data.sources; default: the only text corpus */
    CS_AXIS_SEED,      /* default 0 */
    CS_AXIS_EVAL,      /* names of data.eval; default: every eval suite */
    CS_AXIS_EXTRA,     /* any other name: passed to the job under "extra" */
    CS_AXIS_GRID,      /* "grid": the sub-grid's name (a union of "grids"): a label for results,
                          never part of a job's config, so sub-grids that share a cell share
                          its job */
} cs_axis_kind;

#define CS_AXIS_N_MISSION 8

/* Flags of an axis value. */
enum {
    CS_VAL_NO_CALIB = 1u << 0,  /* algorithm uses no calibration data (none, rtn) */
    CS_VAL_NONE = 1u << 1,      /* algorithm "none": the unquantized model */
    CS_VAL_NO_SOURCE = 1u << 2, /* selector generates its own data (self_calibration) */
};

/* One resolved value of an axis. */
typedef struct cs_axis_value {
    char *canon;    /* owned: canonical JSON as it enters the job config (defaults filled) */
    char *label;    /* owned: canonical JSON shown in a cell's axes (names for model/source/eval) */
    char *text;     /* owned: short text for people: "gptq(bits=3)", "c4", "128" */
    size_t ref;     /* MODEL, SOURCE, EVAL: index into models/sources/evals */
    int64_t num;    /* N_SAMPLES, SEQ_LEN, SEED: the number */
    unsigned flags; /* CS_VAL_* */
} cs_axis_value;

typedef struct cs_axis {
    char *name; /* owned */
    cs_axis_kind kind;
    bool implicit;         /* filled in by default: not written in the grid */
    size_t n;              /* values, >= 1 */
    cs_axis_value *values; /* owned, n entries, in the order written (ranges expanded) */
} cs_axis;

/* A dimension of the product: one axis, or a zip group of axes of equal length varying together. */
typedef struct cs_dim {
    size_t n_axes;
    size_t *axes; /* owned: indices into cs_sweep.axes */
    size_t len;   /* values along this dimension */
} cs_dim;

/* One condition of an exclude pattern: the value of axis `axis` matches (pre-computed per value).
 */
typedef struct cs_exclude_cond {
    size_t axis;
    bool *match; /* owned: match[i] for axes[axis].values[i] */
} cs_exclude_cond;

/* A cell is excluded when every condition of some pattern holds. */
typedef struct cs_exclude {
    size_t n_conds;
    cs_exclude_cond *conds; /* owned */
} cs_exclude;

/* An extra cell from `include`: one resolved value per axis (in axis order). */
typedef struct cs_include {
    cs_axis_value *values; /* owned, n_axes entries */
} cs_include;

typedef struct cs_sweep_model {
    char *name;   /* owned: the key in `models` */
    char *folder; /* owned: as written */
    char *arch;   /* owned: "auto", "llama" or "qwen2" */
    bool exec;    /* backend "exec" (each worker's --exec-template), else "native" */
    int64_t mem_mb;
    int64_t gpus;
    char *canon; /* owned: canonical {"arch","backend","folder"} as it enters the job config */
} cs_sweep_model;

/* One source of a pool: its share (a quota of items, or a weight of what the quotas leave) and
 * the format of a task source's items. */
typedef struct cs_sweep_pool_src {
    size_t source; /* index into cs_sweep.sources (a plain source) */
    int64_t quota; /* items, or 0 when the source has a weight */
    double weight; /* > 0 when quota is 0 */
    bool qa;       /* task sources: "qa" (COLA's question/reasoning/answer), else "text" */
} cs_sweep_pool_src;

/* A candidate pool of data.pools: several sources with quotas or weights, its size (items, or a
 * multiple of the job's n_samples), how items are cut (cs_calib_compose), and the evaluation
 * task files it must not share an item with (the leak check). */
typedef struct cs_sweep_pool {
    cs_sweep_pool_src *srcs; /* owned */
    size_t n_srcs;
    int64_t size;     /* items; 0 when sized by multiple */
    int64_t multiple; /* size = multiple x n_samples; 0 when size is absolute */
    char *compose;    /* owned: "random_windows", "concat" or "per_doc" */
    char **keep_out;  /* owned: task files, sorted, unique */
    size_t n_keep_out;
} cs_sweep_pool;

/* A calibration source of data.sources, or a pool of data.pools: one namespace, since both are
 * values of the source axis (pools follow the plain sources in cs_sweep.sources). */
typedef struct cs_sweep_source {
    char *name;          /* owned: the key in data.sources or data.pools */
    char *kind;          /* owned: "jsonl", "text", "task", or "pool" */
    char *path;          /* owned: as written ("" for a pool) */
    char *canon;         /* owned: canonical {"kind","path",...} as it enters a job */
    cs_sweep_pool *pool; /* owned: kind "pool" only */
} cs_sweep_source;

typedef struct cs_sweep_eval {
    char *name;     /* owned: the key in data.eval */
    char *canon;    /* owned: canonical {"perplexity":{...},"tasks":{...}} with limits folded in */
    char *headline; /* owned: canonical {"task":"metric",...} of the tasks that name a "headline"
                       (`calsweep results`; acc when absent); never part of a job's config */
} cs_sweep_eval;

typedef struct cs_sweep {
    char *name;        /* owned */
    char *description; /* owned, "" when absent */
    char **tags;       /* owned */
    size_t n_tags;
    cs_sweep_model *models;
    size_t n_models;
    cs_sweep_source *sources;
    size_t n_sources;
    cs_sweep_eval *evals;
    size_t n_evals;
    cs_axis *axes; /* grid axes in file order, then implicit mission axes */
    size_t n_axes;
    size_t mission[CS_AXIS_N_MISSION]; /* index in axes of each mission axis (all present) */
    cs_dim *dims; /* product dimensions in axis order (a zip group sits at its first axis) */
    size_t n_dims;
    cs_exclude *excludes;
    size_t n_excludes;
    cs_include *includes;
    size_t n_includes;
    cs_policy policy;
    size_t n_name_cmp; /* name comparisons made resolving references to models, sources and
                          eval suites: O(log n) each (tests count them) */
    /* A union of named sub-grids ("grids"): each a cs_sweep with its own axes, dims, excludes
     * and includes that shares models, sources, evals and policy with this one (which then has
     * no axes of its own). cs_expand streams them in order, a job once. */
    struct cs_sweep **grids; /* owned, n_grids; NULL for a single grid */
    char **grid_names;       /* owned, n_grids */
    size_t n_grids;
    bool shared; /* a sub-grid: models, sources, evals belong to the parent */
    char *spec;  /* owned: canonical JSON of the whole file */
    char spec_hash[CS_SHA256_HEX_LEN + 1]; /* hex SHA-256 of spec */
} cs_sweep;

/* Parses and validates text[0..len) (a sweep file; name labels it in messages, NULL "<input>").
 * Every problem goes to diags (may be NULL), sorted in document order, errors and warnings alike
 * (the diags' node pointers are cleared: the tree is gone when this returns; print the list with
 * a NULL doc). On CS_OK, *out is an owned sweep (cs_sweep_destroy); warnings may be present.
 * Errors: CS_ETOOBIG (len above CS_LIMIT_SWEEP_BYTES; a canonical text above it is a validation
 * error at the root: every sweep that validates fits in a SUBMIT message), CS_EPARSE (not JSON: one
 * diagnostic with line:col), CS_ESCHEMA (invalid: err holds the first error and the count; every
 * numeric field is bounded by cs_limits.h), CS_ENOMEM. *out is NULL on error. */
cs_rc cs_sweep_parse(const char *text, size_t len, const char *name, cs_sweep **out,
                     cs_diags *diags, cs_err *err);

/* Reads the file at path (at most CS_LIMIT_SWEEP_BYTES, else CS_ETOOBIG) and parses it as
 * cs_sweep_parse (file errors name the file). */
cs_rc cs_sweep_load(const char *path, cs_sweep **out, cs_diags *diags, cs_err *err);

/* NULL-safe. */
void cs_sweep_destroy(cs_sweep *s);

/* Adds a warning to d for every data and eval file of s (sources, eval tasks, few-shot files,
 * perplexity texts) that does not exist on this machine, at its JSON path ("data.sources.c4.path:
 * file does not exist on this machine: c4.jsonl"). `calsweep plan` runs it; the daemon does not
 * (workers may see other file systems). */
void cs_sweep_check_files(const cs_sweep *s, cs_diags *d);

/* Fills *out for the store; the strings are borrowed from s, valid until cs_sweep_destroy. */
void cs_sweep_get_meta(const cs_sweep *s, cs_sweep_meta *out);

/* The model called name, or NULL. Borrowed. The store finds a job's requirements (mem_mb, gpus,
 * which are not part of the job key) through the "model" entry of its axes. */
const cs_sweep_model *cs_sweep_find_model(const cs_sweep *s, const char *name);

/* Name of a mission axis kind ("model", ..., "eval"); "extra" for CS_AXIS_EXTRA. */
const char *cs_axis_kind_name(cs_axis_kind kind);

#endif
