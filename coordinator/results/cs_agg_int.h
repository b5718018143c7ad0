/* cs_agg_int.h - the state shared by the files of the results module (cs_agg.c: grouping and
 * statistics; cs_agg_cmp.c: references and significance; cs_agg_out.c: the JSON). Not installed,
 * not for other modules: the interface is cs_agg.h. */
#ifndef CS_COORDINATOR_RESULTS_CS_AGG_INT_H
#define CS_COORDINATOR_RESULTS_CS_AGG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cs_agg.h"
#include "cs_alloc.h"
#include "cs_err.h"

#define AG_NONE SIZE_MAX

/* Row flags (docs/results.md "Flags"); the names are ag_flag_names[bit]. */
enum {
    AG_F_MISSING_SEEDS = 1u << 0, /* fewer seeds done than the sweep's most */
    AG_F_FAILED = 1u << 1,        /* a job failed */
    AG_F_LOST = 1u << 2,          /* a job was lost */
    AG_F_CANCELLED = 1u << 3,     /* a job was cancelled */
    AG_F_PARTIAL = 1u << 4,       /* a job is not finished yet */
    AG_F_NO_ITEMS = 1u << 5,      /* a done job's result has no per-item outcomes (version 1) */
    AG_F_NO_RESULT = 1u << 6,     /* a done job has no result */
    AG_F_MIXED = 1u << 7,         /* the row's jobs span several models or eval suites */
    AG_F_NO_BASELINE = 1u << 8,   /* no baseline row for the row's model and eval suite */
    AG_F_UNPAIRED = 1u << 9,      /* a comparison's samples differ: not tested */
    AG_F_NO_REF = 1u << 10,       /* no single reference row for the row: no delta, no test */
    AG_N_FLAGS = 11
};
extern const char *const ag_flag_names[AG_N_FLAGS];
/* The flags that keep a row's comparisons from being tested. */
#define AG_F_UNTESTABLE                                                             \
    (AG_F_MISSING_SEEDS | AG_F_FAILED | AG_F_LOST | AG_F_CANCELLED | AG_F_PARTIAL | \
     AG_F_NO_ITEMS | AG_F_NO_RESULT)

typedef struct ag_task {
    char *name;           /* owned */
    const char *headline; /* borrowed: opts, a metric name of `metrics`, or a literal */
    bool ppl;             /* a perplexity task ("ppl:NAME"): not in the average or M5 */
    bool in_avg;          /* counted in M4 */
    char **metrics;       /* owned, sorted: every metric name seen for the task */
    size_t n_metrics;
} ag_task;

typedef struct ag_row {
    char *key;   /* owned: the grouping key */
    cJSON *axes; /* owned: the axes object of the row's first job (values shown, reference) */
    char *label; /* owned: "algorithm=gptq selector=random" */
    bool baseline;
    const char *model, *eval; /* borrowed from the jobs; NULL when AG_F_MIXED */
    size_t *jobs;             /* owned: job indices, by job id */
    size_t n_jobs, cap;
    size_t n_done, n_failed, n_lost, n_cancelled, n_unfinished, n_noresult, n_v1;
    size_t n_seeds;          /* distinct seeds among all the row's jobs */
    size_t n_seeds_ok;       /* distinct seeds among done jobs with a result */
    bool seeded;             /* a job has a non-null seed */
    double *head;            /* owned [n_tasks]: mean of the headline metric, NAN where none */
    double avg;              /* M4 of the means, NAN unless every average task has a value */
    double item_lo, item_hi; /* the bootstrap over items of a one-job row's M4 (cs_agg_item.c) */
    size_t base;             /* baseline row, AG_NONE */
    size_t ref;              /* reference row, AG_NONE */
    /* AG_F_NO_REF: why ("no_candidate", "several_candidates": a literal) and the candidates */
    const char *no_ref;
    size_t *no_ref_cand; /* owned [n_no_ref_cand], row indices */
    size_t n_no_ref_cand;
    unsigned flags;
} ag_row;

/* One comparison against the reference row: task < n_tasks, or task == n_tasks for the average. */
typedef struct ag_cmp {
    size_t row, ref, task;
    double delta;       /* row minus reference, of the means */
    const char *reason; /* why not tested (a literal), NULL when tested */
    cs_agg_ci ci;
    double p_holm;
    uint64_t seed;
    cs_agg_hist *cells; /* owned [n_units * n_tasks]; counts and values owned by buf */
    size_t n_units, n_cells_tasks;
    uint32_t *counts;
    double *values;
} ag_cmp;

/* One distinct member of the jobs' axes (a job's '"name":value' pointer, parsed once, or a member
 * of a job's axes text). */
typedef struct ag_member {
    cJSON *value; /* owned: the value, its name in value->string */
    char *vtext;  /* owned: the canonical text of the value; NULL when it has none (the error is
                     reported where the value is needed: a seed or a grouping axis) */
    size_t axis;  /* index into axes */
    uint32_t cls; /* equal for equal canonical values; AG_NULL_CLS for null */
} ag_member;

#define AG_NULL_CLS 0u /* the class of a null or absent value */

typedef struct ag {
    const cs_agg_job *jobs;
    size_t n_jobs;
    cs_agg_opts o;
    ag_member *mem; /* owned [n_mem]: the distinct members */
    size_t n_mem;
    uint32_t *jm;   /* owned: job j's members, in its axes' order, are jm[jm_off[j]..jm_off[j+1]) */
    size_t *jm_off; /* owned [n_jobs + 1] */
    const char **seed; /* owned [n_jobs] (the texts are mem's): canonical seed, NULL when null */
    char **axes;       /* owned, sorted: every axis name */
    size_t n_axes;
    size_t *gax; /* owned: grouping axes (indices into axes) */
    size_t n_gax;
    ag_task *tasks;
    size_t n_tasks, n_avg;
    ag_row *rows;
    size_t n_rows;
    size_t max_seeds;
    size_t ref_axis; /* index into axes, AG_NONE */
    ag_cmp *cmps;
    size_t n_cmps;
    cs_err *err;
} ag;

static inline bool ag_is_done(const cs_agg_job *j)
{
    return j->state != NULL && strcmp(j->state, "done") == 0;
}

/* cs_agg.c */
const cs_agg_metric *ag_metric(const cs_agg_job *j, const char *task, const char *metric);
const cs_agg_outcome *ag_outcome(const cs_agg_job *j, const char *task, const char *metric);
/* The display name of an axis value: a string itself, an object's "name", else its JSON text
 * (written to buf, size n). */
const char *ag_value_name(const cJSON *v, char *buf, size_t n);
/* Appends an axis value as the labels show it: its name, and an object's other members in
 * parentheses ("gptq(bits=4,group_size=128)"). */
cs_rc ag_value_text(const cJSON *v, cs_buf *b);

/* cs_agg_cmp.c: references, pairing, the bootstrap on threads and Holm. */
cs_rc ag_find_refs(ag *a);
cs_rc ag_compare(ag *a);
void ag_cmps_fini(ag *a);

/* cs_agg_item.c: average.item_ci of the rows of one done job (o.item_resamples > 0). */
cs_rc ag_item_cis(ag *a);

/* cs_agg_out.c: the aggregate document. */
cs_rc ag_output(const ag *a, cJSON **out);

#endif
