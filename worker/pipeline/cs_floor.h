/* cs_floor.h - the arithmetic floor of a job's stages (docs/engine.md "Profile").
 *
 * For each stage of a job (the calibration batch's embedding, the block forwards over it, the
 * statistics they feed, the solves, AWQ's scale and clip searches, SmoothQuant's smoothing, RTN,
 * evaluation) the floating-point operations and the bytes of memory traffic that the published
 * algorithm must do on this model's shape and this job's config, counted from the shape alone:
 * a block forward counts its seven linears and causal attention (half of the T x T products),
 * a pass that only needs a linear's input stops there, a Hessian is X^T X of one input shared by
 * its group (symmetric: half of the products), GPTQ factors each group's Hessian once (Cholesky
 * and triangular inverse, 2/3 d^3) and sweeps each linear's columns once (rows d^2), AWQ's search
 * runs the inspected module once per grid point and once for the reference. Operations are in the
 * precision the engine uses: float32 for forwards and sweeps, float64 for Hessians and factors.
 *
 * The floor of a stage is the time the count takes at the peaks measured on this machine, in
 * this process, with the job's threads: max(f32 / sgemm peak + f64 / dgemm peak, bytes / copy
 * bandwidth). A stage's ratio is its measured time over its floor.
 */
#ifndef CS_WORKER_PIPELINE_CS_FLOOR_H
#define CS_WORKER_PIPELINE_CS_FLOOR_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "cs_err.h"
#include "cs_hfconfig.h"
#include "cs_pipeline.h"

/* The peaks the floors are taken at: the best of a few square sgemm and dgemm products (sizes a
 * large model's linears reach) and of a large memcpy (bytes read + written per second). */
typedef struct cs_peak {
    double sgemm, dgemm; /* FLOP/s */
    double copy;         /* bytes/s */
    int threads;
} cs_peak;

/* Measures *p on the current OpenBLAS threads (about 0.05-0.2 s). */
cs_rc cs_peak_measure(cs_peak *p, cs_err *err);

/* The stages, in job order; their names are cs_pipe_timing's fields' (result.json's). */
typedef enum cs_stage {
    CS_STAGE_EMBED,
    CS_STAGE_FORWARD,
    CS_STAGE_STATS,
    CS_STAGE_SOLVE,
    CS_STAGE_SEARCH,
    CS_STAGE_CLIP,
    CS_STAGE_SMOOTH,
    CS_STAGE_RTN,
    CS_STAGE_IMATRIX,
    CS_STAGE_EVAL,
    CS_STAGE_COUNT
} cs_stage;

/* "embed", "forward", "statistics", "solve", "search", "clip", "smoothing", "rtn", "imatrix",
 * "evaluate". */
const char *cs_stage_name(cs_stage s);

typedef struct cs_stage_work {
    double f32, f64; /* floating-point operations (a multiply-add is two) */
    double bytes;    /* memory traffic the stage cannot avoid */
    double seconds;  /* measured; < 0 when not measured */
} cs_stage_work;

typedef struct cs_floor {
    cs_stage_work st[CS_STAGE_COUNT];
} cs_floor;

/* Everything zero, no stage measured. */
void cs_floor_init(cs_floor *f);

/* Adds the quantization stages of algorithm p on a model of shape c over n_samples x seq_len
 * calibration tokens (RTN: none are needed). */
void cs_floor_quant(cs_floor *f, const cs_hfconfig *c, const cs_pipe_params *p, size_t n_samples,
                    size_t seq_len);

/* The work of a forward pass, as evaluation counts it: tokens through every block, head_rows
 * through the final norm and the output head, attn_pairs (query, key) pairs of causal attention
 * per layer and head. */
typedef struct cs_fwd_count {
    double tokens, head_rows, attn_pairs;
} cs_fwd_count;

/* Adds n's work to the evaluation stage. */
void cs_floor_eval(cs_floor *f, const cs_hfconfig *c, const cs_fwd_count *n);

/* Sets the measured seconds of every quantization stage from t (those that took no time and
 * have no work stay unmeasured). */
void cs_floor_set_times(cs_floor *f, const cs_pipe_timing *t);

/* The floor of stage s at the peaks, seconds (0 when it has no work). */
double cs_floor_seconds(const cs_stage_work *s, const cs_peak *p);

/* {"peak":{"sgemm_gflops","dgemm_gflops","copy_gbps","threads"},"stages":[{"stage","seconds",
 * "gflop_f32","gflop_f64","gbytes","floor_s","ratio"}]}: the stages that have work or a measured
 * time; ratio null where the floor is 0. NULL on no memory. */
cJSON *cs_floor_json(const cs_floor *f, const cs_peak *p);

/* The same as a table, one line per stage, to out. */
void cs_floor_print(FILE *out, const cs_floor *f, const cs_peak *p);

#endif
