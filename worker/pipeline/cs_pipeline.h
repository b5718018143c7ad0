/* quant: the model-level pipeline (docs/architecture.md "The native engine";
 * docs/specs/ptq-algorithms.md).
 *
 * Simulated quantization of every linear layer of every block, block by block, in place in a
 * loaded cs_model: the calibration batch is embedded once; for each block the statistics its
 * algorithm needs are streamed through the forward hooks of cs_model_block (Hessians in double,
 * cs_hessian), its linears are quantized, and the block's output becomes the next block's input.
 * Every pass of a block runs the batch a chunk of whole sequences at a time (about 4,096 rows, a
 * multiple of the Hessian's 256-row batches, so the statistics are those of one whole-batch pass
 * to the bit), and the forward pass's workspace, sized to a chunk, is kept from pass to pass and
 * block to block (cs_model_release_workspace at the end). Memory: the batch's hidden states once,
 * a chunk's working copy and workspace, plus one Hessian per group of linears that share an input
 * (Wanda: only per-column sums of squares, sum_t x_tj^2; imatrix: the hidden states of its chunks
 * once, and four per-column sums); no activation of another block is kept. AWQ (whose passes run
 * the whole batch) adds a copy of the hidden states, this block's cached inputs of q, o, gate and
 * down and two module outputs; SmoothQuant a second copy of the hidden states (its FP trajectory
 * for the smoothing statistics).
 *
 * Trajectory: "quantized" (the default, as the GPTQ reference: block i+1 sees the output of the
 * already quantized block i) or "fp" (statistics from the unmodified model). With
 * true_sequential (GPTQ's default) the groups of a block {q,k,v}, {o}, {gate,up}, {down} are
 * quantized in that order, each group's Hessian taken after the groups before it were
 * quantized (each of these passes stops once the group's input is seen: the rest of the block
 * cannot change it); without it all four Hessians come from one pass.
 *
 * Algorithms built: "rtn" (no calibration), "gptq", "awq" (four scaling groups searched on the
 * unmodified block with the module losses, duo scaling, folded into the norms / up_proj, clip
 * search, Q-AWQ; FP trajectory by default), "sparsegpt" and "wanda" (unstructured or N:M; all
 * statistics of a block from one forward, quantized trajectory), "imatrix" (llama.cpp's
 * importance-matrix Q4_0 / Q4_K, cs_imatrix.h: per-column mean squares of each linear's input from
 * the unmodified model, chunked as cs_pipe_imatrix_collect says). A layer whose Hessian is not
 * positive definite after the damping retries is quantized with RTN and listed in the report.
 */
#ifndef CS_WORKER_PIPELINE_CS_PIPELINE_H
#define CS_WORKER_PIPELINE_CS_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cs_awq.h"
#include "cs_err.h"
#include "cs_gptq.h"
#include "cs_imatrix.h"
#include "cs_methods.h"
#include "cs_model.h"
#include "cs_quantizer.h"

typedef enum cs_pipe_algo {
    CS_PIPE_RTN = 0,
    CS_PIPE_GPTQ = 1,
    CS_PIPE_AWQ = 2,
    CS_PIPE_SPARSEGPT = 3,
    CS_PIPE_WANDA = 4,
    CS_PIPE_SMOOTHQUANT = 5, /* smoothing (input_layernorm -> q,k,v; post_attention -> gate,up),
                              * then GPTQ W8 per row, all Hessians of a block from one forward
                              * (or, weights "rtn", Q-SQ per row as the original SmoothQuant);
                              * sets m->act_bits (per-token dynamic activation fake quant) */
    CS_PIPE_IMATRIX = 6,     /* llama.cpp imatrix: FP-trajectory statistics, Q4_0 or Q4_K (Q5_0
                              * for a Q4_K layer whose input width is not a multiple of 256) */
} cs_pipe_algo;

/* "rtn", "gptq", "awq", "sparsegpt", "wanda", "smoothquant", "imatrix". */
const char *cs_pipe_algo_name(cs_pipe_algo a);

typedef struct cs_pipe_params {
    cs_pipe_algo algo;
    cs_qspec q;      /* bits, sym, quantizer family */
    long group_size; /* -1: one set of parameters per output row */
    cs_gptq_params gptq;
    cs_awq_params awq; /* awq: q, group_size copied from above */
    bool awq_clip;     /* awq: the clip search (default true) */
    double sparsity;   /* sparsegpt, wanda: 0.5 */
    size_t prune_n;    /* N:M (0 = unstructured) */
    size_t prune_m;
    double alpha; /* smoothquant: migration strength (0.5) */
    bool smooth;  /* smoothquant: false = W8A8 GPTQ without smoothing */
    bool sq_rtn;  /* smoothquant "weights": "rtn": the original SmoothQuant (Q-SQ weights per row,
                   * no GPTQ; statistics from the FP trajectory); default "gptq" */
    int act_bits; /* smoothquant: 8 */
    cs_imx_type imx_type; /* imatrix "type": q4_0 (default) or q4_k */
    size_t imx_chunk;     /* imatrix "chunk": tokens per chunk (512), 16..65536 */
    bool true_sequential;
    bool fp_trajectory;
    long fault_nonpd_layer; /* tests only (not from JSON): -1 off; else that block's Hessians are
                             * negated (not positive definite) to exercise the RTN fallback */
} cs_pipe_params;

/* The pipeline's parameters from an algorithm resolved by the table (common/cs_methods.h): no
 * checks but those between parameters that only the engine knows (an N:M pattern's M must
 * divide block_size; cs_qspec_check). CS_ENOTSUP for "none" (nothing to quantize). */
cs_rc cs_pipe_params_from_algo(cs_pipe_params *p, const cs_algo_params *a, cs_err *err);

/* Resolves an algorithm value ("gptq" or {"name":"gptq","bits":4,...}) with the table, engine-only
 * parameters allowed (calsweep-run quantize), then cs_pipe_params_from_algo. CS_ESCHEMA naming
 * "algorithm.<key>" as the sweep validator words it. */
cs_rc cs_pipe_params_from_json(cs_pipe_params *p, const cJSON *algo, cs_err *err);

/* SmoothQuant's smoothing of block `layer` in place (the float model is unchanged): runs the
 * block on x[n*T][hidden] (in place: x becomes its output) collecting act_max at the inputs of
 * q_proj and gate_proj, then s = cs_smooth_scales(ABSMAX, alpha) is folded into input_layernorm /
 * q,k,v and post_attention_layernorm / gate,up. */
cs_rc cs_pipe_smooth_block(cs_model *m, size_t layer, float *x, size_t n, size_t T,
                           const size_t *lens, double alpha, cs_err *err);

/* Every resolved parameter (defaults included), for quantization_config.json; NULL on ENOMEM. */
cJSON *cs_pipe_params_to_json(const cs_pipe_params *p);

/* Whether the algorithm needs calibration data. */
bool cs_pipe_needs_calib(const cs_pipe_params *p);

typedef void (*cs_pipe_progress_fn)(void *ctx, size_t layer, size_t n_layers, double seconds);

/* Where the time went, in seconds (wall clock of the calling thread; they add up to about
 * cs_pipe_report.seconds). */
typedef struct cs_pipe_timing {
    double embed;   /* embedding the calibration batch */
    double forward; /* block forwards: statistics passes (true-sequential passes stop at the
                     * input of the group they collect), the next block's input, AWQ's FP pass */
    double stats;   /* accumulating Hessians / activation statistics inside those forwards */
    double solve;   /* GPTQ / SparseGPT / Wanda per linear (H^-1 factor, column sweeps, masks) */
    double search;  /* AWQ scale search (its trial forwards included) */
    double clip;    /* AWQ clip search */
    double smooth;  /* SmoothQuant: the FP-trajectory pass collecting act_max, and the folding */
    double rtn;     /* round-to-nearest of whole layers (RTN, AWQ's final quantization) */
    double imatrix; /* imatrix: the llama.cpp scale searches, encoding and decoding per row */
} cs_pipe_timing;

typedef struct cs_pipe_report {
    cJSON *layers; /* [{"layer","linear","loss","damp","retries","rtn_fallback"}], owned; imatrix:
                    * [{"layer","linear","type","fallback","tokens","loss"}] with loss =
                    * sum_j imp_j sum_r (W_rj - Q_rj)^2 */
    size_t n_fallback;
    double seconds; /* total */
    double loss;    /* sum of the GPTQ losses */
    cs_pipe_timing t;
} cs_pipe_report;

/* rep->t as {"embed":s,"forward":s,...}; NULL on no memory. */
cJSON *cs_pipe_timing_json(const cs_pipe_timing *t);

/* Quantizes m in place. tokens: n_samples sequences of seq_len ids (ignored, may be NULL, when the
 * algorithm needs no calibration). CS_EINVAL for a group size that does not divide a layer's
 * input width. */
cs_rc cs_pipe_quantize(cs_model *m, const int32_t *tokens, size_t n_samples, size_t seq_len,
                       const cs_pipe_params *p, cs_pipe_progress_fn progress, void *progress_ctx,
                       cs_pipe_report *rep, cs_err *err);

void cs_pipe_report_fini(cs_pipe_report *r); /* NULL-safe */

/* The importance matrix of llama.cpp's imatrix tool for every linear of m, which is not modified:
 * each of the n_samples calibration sequences (seq_len tokens) is cut into consecutive chunks of
 * `chunk` tokens, the last one shorter, and a chunk of fewer than 16 tokens is dropped (llama.cpp
 * collects no product of fewer than 16 tokens); every chunk is its own sequence (positions from
 * 0, causal attention within the chunk), the tokens used as given (llama.cpp also puts BOS first
 * in each chunk for vocabularies that add one). The chunks run through the unquantized model
 * block by block (FP trajectory), and the input of each linear gives sum2[j] += x_j^2 over the
 * real tokens (padding excluded), in double; imp[j] = sum2[j] / count. q, k and v (and gate and up)
 * share one input and get identical entries. Memory: the chunks' hidden states once.
 * *out (owned, free) receives, layer by layer and within a layer in cs_lin order (q, k, v, o,
 * gate, up, down), lin->in floats per linear; *n_out their total; *count the tokens counted.
 * CS_EINVAL when no chunk has 16 tokens, or on a non-finite activation (named). */
cs_rc cs_pipe_imatrix_collect(cs_model *m, const int32_t *tokens, size_t n_samples, size_t seq_len,
                              size_t chunk, float **out, size_t *n_out, size_t *count, cs_err *err);

/* Writes m as a Hugging Face folder dst_dir (created): model.safetensors with every weight in
 * F32 (the dequantized values exactly; the source's bf16 would round them), config.json and
 * tokenizer.json copied from src_dir (required), generation_config.json, tokenizer_config.json,
 * special_tokens_map.json, vocab.json, merges.txt when present, and quantization_config.json =
 * qconfig (not written if NULL). The folder loads back with cs_model_load. */
cs_rc cs_pipe_save(const cs_model *m, const char *src_dir, const char *dst_dir,
                   const cJSON *qconfig, cs_err *err);

#endif
