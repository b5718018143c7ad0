/* cs_methods.h - the one table of algorithms and selectors: every parameter's key, type, default,
 * bounds, choices, and where it lands in the engine's parameter struct.
 *
 * Why: the parameters of a method used to be described in five places (the sweep validator, the
 * JSON Schemas, the pipeline, the selectors, calsweep-run's flags) in two dialects, and values
 * that `calsweep plan` accepted were refused by every worker. Now the sweep validator
 * (coordinator/sweep/cs_sweep.c), the runner's job spec (cs_jobspec.c), the engine (worker/
 * pipeline, worker/calib), calsweep-run's flags and `calsweep methods --json` (from which
 * schemas/gen_schemas.py builds the JSON Schemas) all read this table, and cs_method_resolve is
 * the one function that checks a value against it: equal input gives equal messages wherever it
 * is checked (tests/unit/methods_walk_test.c walks every parameter).
 *
 * A method value is a name ("gptq") or an object with "name" and parameters. Resolving it fills
 * every default: the canonical object (what enters a job config, and so its key) holds the name
 * and every parameter that is not engine-only; the landing struct (cs_algo_params or
 * cs_select_params) receives every parameter, engine-only ones included.
 */
#ifndef CS_COMMON_CS_METHODS_H
#define CS_COMMON_CS_METHODS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cs_json.h"
#include "cs_opt.h"

/* ---- what the engine reads: the landing structs --------------------------------------------- */

typedef enum cs_algo_kind {
    CS_ALGO_NONE = 0,
    CS_ALGO_RTN,
    CS_ALGO_GPTQ,
    CS_ALGO_AWQ,
    CS_ALGO_SMOOTHQUANT,
    CS_ALGO_SPARSEGPT,
    CS_ALGO_WANDA,
    CS_ALGO_IMATRIX,
} cs_algo_kind;

/* An algorithm's parameters (sweep names). An enum parameter lands as the index of its choice. */
typedef struct cs_algo_params {
    cs_algo_kind kind;
    int64_t bits, group_size;
    bool sym, zero_point;
    int grid; /* rtn: 0 awq, 1 gptq */
    bool act_order, true_sequential, static_groups;
    double damp;
    int64_t block_size;
    bool duo_scaling, clip;
    int64_t n_grid;
    double alpha;
    int64_t act_bits;
    int weights; /* smoothquant: 0 rtn, 1 gptq */
    bool smooth; /* smoothquant, engine only */
    double sparsity;
    int pattern; /* 0 unstructured, 1 2:4, 2 4:8 */
    int type;    /* imatrix: 0 q4_0, 1 q4_k */
    int64_t chunk;
    int trajectory; /* engine only: 0 quantized, 1 fp */
} cs_algo_params;

/* Selector kinds in the engine's order (the table lists them in the sweep's order). */
typedef enum cs_sel_kind {
    CS_SEL_RANDOM = 0,
    CS_SEL_SELF_CALIBRATION,
    CS_SEL_SELF_GEN,
    CS_SEL_ZIPCAL,
    CS_SEL_PPL_RANK,
    CS_SEL_COLA,
    CS_SEL_ACDM,
    CS_SEL_COVERCAL,
    CS_SEL_COUNT
} cs_sel_kind;

/* The choices of ppl_rank's "mode", acdm's "stat" and "mode", in the table's order. */
typedef enum cs_ppl_mode { CS_PPL_LOW = 0, CS_PPL_HIGH, CS_PPL_MID } cs_ppl_mode;
typedef enum cs_acdm_stat { CS_ACDM_MEAN = 0, CS_ACDM_ABSMEAN } cs_acdm_stat;
typedef enum cs_acdm_mode { CS_ACDM_QUOTA = 0, CS_ACDM_MINIMAX } cs_acdm_mode;

/* Every parameter of the selectors (worker/calib/cs_select.h describes each). n, seed and seq_len
 * come from the job (n_samples, seed, seq_len), batch is engine only. */
typedef struct cs_select_params {
    cs_sel_kind kind;
    size_t n;      /* 128 */
    uint64_t seed; /* 0 */
    /* random */
    bool stratified; /* false */
    /* self_calibration (seq_len is shared with self_gen) */
    double t_init, t_final; /* 1.0, 1.0 */
    size_t n_sched;         /* 10 */
    size_t seq_len;         /* self_calibration / self_gen: tokens per sequence, 2048 */
    /* self_gen */
    size_t prefix_texts;                           /* 5000 prefixes */
    size_t prefix_tokens;                          /* 2 */
    double temperature, top_p, repetition_penalty; /* 0.6, 0.95, 1.2 */
    size_t top_k;                                  /* 50 */
    double ppl_quantile;                           /* 0.8 */
    /* zipcal */
    size_t search_limit; /* 2000 */
    /* ppl_rank */
    cs_ppl_mode mode; /* low */
    /* cola */
    size_t proj_dim; /* 64 */
    size_t n_init;   /* 10 k-means restarts */
    size_t max_iter; /* 300 */
    double tol;      /* 1e-4 */
    /* acdm ("stat" and "mode" in JSON) */
    size_t n_ref;           /* 64 reference items per task */
    cs_acdm_stat acdm_stat; /* mean */
    cs_acdm_mode acdm_mode; /* quota */
    /* covercal */
    double outlier_factor; /* 6 */
    double cover_frac;     /* 0.5 */
    /* forward passes (ppl_rank, cola, acdm, covercal, self_gen scoring): sequences per pass */
    size_t batch; /* 8 */
} cs_select_params;

/* ---- the table ------------------------------------------------------------------------------ */

typedef enum cs_mtype {
    CS_MT_INT,   /* integer in [min, max] */
    CS_MT_NUM,   /* number in [min, max], or (min, max] with excl_min */
    CS_MT_BOOL,  /* true or false */
    CS_MT_ENUM,  /* one of choices; choices[def] is the default */
    CS_MT_GROUP, /* -1 (one group per row) or a positive power of two <= max */
    CS_MT_POW2,  /* a positive power of two <= max */
    CS_MT_TASKS, /* acdm's reference: names of data.sources of kind "task" in a sweep, the
                  * resolved source objects in a job config (never lands in the struct) */
} cs_mtype;

/* How a parameter lands in its struct. */
typedef enum cs_mctype {
    CS_MC_NONE,
    CS_MC_I64,
    CS_MC_SIZE,
    CS_MC_U64,
    CS_MC_DOUBLE,
    CS_MC_BOOL,
    CS_MC_ENUM
} cs_mctype;

enum {
    CS_MP_ENGINE = 1u << 0, /* engine only: calsweep-run quantize / select take it; a sweep file
                             * and a job config do not (it is not part of a job key) */
};

typedef struct cs_mparam {
    const char *key;
    cs_mtype type;
    double def; /* INT, NUM, BOOL (0/1), GROUP, POW2; ENUM: index of the default choice */
    double min, max;
    bool excl_min;
    const char *const *choices; /* ENUM, NULL-terminated */
    cs_mctype ctype;
    size_t off; /* offsetof in cs_algo_params or cs_select_params */
    unsigned flags;
    const char *desc; /* a short phrase for help and the schemas, or NULL */
} cs_mparam;

/* Flags of a method (the same bits as the sweep's CS_VAL_*). */
enum {
    CS_METHOD_NO_CALIB = 1u << 0,  /* uses no calibration data (none, rtn) */
    CS_METHOD_NONE = 1u << 1,      /* "none": the unquantized model */
    CS_METHOD_NO_SOURCE = 1u << 2, /* generates its own data (self_calibration) */
};

typedef struct cs_method {
    const char *name;
    int kind; /* cs_algo_kind or cs_sel_kind */
    unsigned flags;
    const cs_mparam *params;
    size_t n_params;
    const char *desc;
} cs_method;

typedef enum cs_mfamily { CS_MF_ALGORITHM = 0, CS_MF_SELECTOR = 1 } cs_mfamily;

/* The methods of a family in table order (the sweep's order); *n their count. */
const cs_method *cs_methods(cs_mfamily f, size_t *n);

/* The method called name, or NULL. */
const cs_method *cs_method_find(cs_mfamily f, const char *name);

/* The method of a kind (cs_algo_kind / cs_sel_kind), or NULL. */
const cs_method *cs_method_of_kind(cs_mfamily f, int kind);

/* "algorithm" or "selector". */
const char *cs_mfamily_name(cs_mfamily f);

/* The landing struct of f filled with the defaults of md (engine-only parameters included). */
void cs_method_defaults(const cs_method *md, void *dst);

/* Resolves a TASKS parameter: v (NULL when absent) at the current path of c; adds the resolved
 * value to out under key. Returns false after reporting. */
typedef bool (*cs_mtasks_fn)(void *ctx, cs_jctx *c, const cJSON *obj, const cJSON *v,
                             const char *key, cJSON *out);

typedef struct cs_mresolve {
    bool engine;         /* accept engine-only parameters (calsweep-run's own commands) */
    cs_mtasks_fn tasks;  /* NULL: a TASKS value must be a non-empty list, kept as it is */
    void *tasks_ctx;     /* for tasks */
    cJSON *out;          /* NULL, or receives the canonical object (owned by the caller) */
    void *dst;           /* NULL, or the landing struct (cs_algo_params / cs_select_params) */
    const cs_method *md; /* out: the method, or NULL when the name was not found */
    bool oom;            /* out: an allocation failed */
} cs_mresolve;

/* Checks v (a name, or an object with "name" and parameters) against family f at the current
 * path of c, reporting every problem there as the sweep validator does ("bits: expected an
 * integer in 2..8, got 16", "unknown algorithm \"gptx\" (did you mean \"gptq\"?)", unknown
 * keys, the cross-parameter rules). Fills r->out and r->dst (defaults included) as far as it
 * got. Returns true when nothing was reported. */
bool cs_method_resolve(cs_jctx *c, const cJSON *v, cs_mfamily f, cs_mresolve *r);

/* cs_method_resolve failing fast: the first problem goes to err as "<path>.<key>: <message>"
 * (path: dotted components, e.g. "calibration.selector"). CS_OK, CS_ESCHEMA or CS_ENOMEM. */
cs_rc cs_method_check(const cJSON *v, cs_mfamily f, const char *path, cs_mresolve *r, cs_err *err);

/* Writes the landing struct src of method md back as its canonical object (the parameters that
 * are not engine-only; a TASKS parameter is left out): NULL on no memory. */
cJSON *cs_method_to_json(const cs_method *md, const void *src, bool engine);

/* "a, b, c" of names[0..n) into buf (cut at cap). */
void cs_join_names(const char *const *names, size_t n, char *buf, size_t cap);

/* Reports "unknown <what> \"name\"" at the current path with a suggestion or the known names. */
void cs_json_unknown_name(cs_jctx *c, const cJSON *node, const char *what, const char *name,
                          const char *const *known, size_t n);

/* The whole table as JSON ({"algorithms":[...],"selectors":[...]}, each method with its name,
 * description, flags and parameters): what `calsweep methods --json` prints and
 * schemas/methods.json holds. NULL on no memory. */
cJSON *cs_methods_json(void);

/* A readable table of f (or of one method when name is non-NULL) to out: one line per parameter
 * with type, default, bounds and choices. CS_ENOENT for an unknown name. */
cs_rc cs_methods_print(FILE *out, const char *name);

/* "integer in 2..8", "number in (0, 1]", "one of awq, gptq", ... for help texts. */
void cs_mparam_describe(const cs_mparam *p, char *buf, size_t cap);

/* The default of p as text ("128", "0.01", "true", "gptq"; "all task sources" for TASKS). */
void cs_mparam_default_text(const cs_mparam *p, char *buf, size_t cap);

/* ---- command-line flags (cs_methods_flags.c) ------------------------------------------------ */

#define CS_MFLAGS_MAX      64 /* distinct parameter keys of a family */
#define CS_MFLAGS_BASE_MAX 48 /* the command's own options */

typedef struct cs_mflag {
    const cs_mparam *p; /* the first row with this key */
    char lng[48], no[52], help[320];
    const char *value; /* what the command line gave ("true" / "false" for a boolean), or NULL */
} cs_mflag;

/* A command's option table: its own options, then --KEY V for every parameter key of a family
 * (the key's '_' written '-'; a boolean is --KEY or --no-KEY), the help naming each method that
 * takes it with its default. Ids id_base + i (and id_base + CS_MFLAGS_MAX + i for --no-KEY). */
typedef struct cs_mflags {
    cs_mfamily family;
    int id_base;
    cs_opt opts[CS_MFLAGS_BASE_MAX + 2 * CS_MFLAGS_MAX];
    size_t n_opts;
    cs_mflag keys[CS_MFLAGS_MAX];
    size_t n_keys;
} cs_mflags;

void cs_mflags_init(cs_mflags *fl, cs_mfamily f, const cs_opt *base, size_t n_base, int id_base);

/* Records the flag of option id (true), or returns false for an id that is not a parameter. */
bool cs_mflags_take(cs_mflags *fl, int id, const char *arg);

/* *out (owned) = the method value (a name or JSON text; what labels its parse errors) as an
 * object with the flags given applied; the table checks it afterwards. */
cs_rc cs_mflags_apply(const cs_mflags *fl, const char *value, const char *what, cJSON **out,
                      cs_err *err);

#endif
