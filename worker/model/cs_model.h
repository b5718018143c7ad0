/* cs_model.h - a loaded causal LM (Llama or Qwen2) and its forward pass.
 *
 * Weights are f32 in memory: f32 tensors whose data is 4-byte aligned are used in place in the
 * private (copy-on-write) mapping of the safetensors file; f16/bf16 tensors are converted once at
 * load, and a file none of whose tensors is used in place is unmapped after loading. Every weight
 * is writable: a consumer may edit or replace a linear layer in place (cs_model_linear).
 *
 * Layout: a linear layer is w[out][in] (Hugging Face's), y = x w^T + b. Hidden states are
 * x[B*T][hidden], sequence b's token t at row b*T + t. Batched input uses right padding: sequence b
 * has lens[b] real tokens, positions 0..lens[b]-1; rows past lens[b] are computed but never
 * attended to by real tokens (causal mask), so real rows do not depend on padding.
 *
 * Hooks (cs_hooks) see, during a forward pass, the input of every linear layer (q, k and v share
 * one input buffer: three calls with the same pointer), the output of every MLP (before the
 * residual add) and of every block (after it). The buffers are the engine's own (no copy) and are
 * valid only during the call; `valid[r]` says whether row r is a real token. A hook may not modify
 * x, except through the CS_HOOK_BLOCK_OUT event, whose buffer is the residual stream the next
 * block reads.
 */
#ifndef CS_WORKER_MODEL_CS_MODEL_H
#define CS_WORKER_MODEL_CS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_hfconfig.h"

typedef enum cs_lin {
    CS_LIN_Q,
    CS_LIN_K,
    CS_LIN_V,
    CS_LIN_O,
    CS_LIN_GATE,
    CS_LIN_UP,
    CS_LIN_DOWN,
    CS_LIN_COUNT
} cs_lin;

/* "q_proj", "k_proj", ... "down_proj". */
const char *cs_lin_name(cs_lin l);

typedef struct cs_linear {
    float *w; /* [out][in], writable */
    float *b; /* [out] or NULL */
    size_t out, in;
} cs_linear;

typedef struct cs_layer {
    float *attn_norm; /* input_layernorm [hidden] */
    float *mlp_norm;  /* post_attention_layernorm [hidden] */
    cs_linear lin[CS_LIN_COUNT];
} cs_layer;

typedef struct cs_model {
    cs_hfconfig cfg;
    float *embed;      /* [vocab][hidden] */
    float *final_norm; /* [hidden] */
    cs_linear lm_head; /* w == embed when tied */
    cs_layer *layers;
    float *inv_freq; /* [head_dim/2], llama3 scaling applied */
    int n_threads;
    /* 0 (default): float activations. 2..8: the input of every linear of every block is fake
     * quantized per token, symmetric, dynamic (SmoothQuant's Q-SQ: scale = max(absmax, 1e-5) /
     * (2^(bits-1) - 1), x = round(x / scale) scale) on each forward, after the hooks saw it. */
    int act_bits;
    /* private */
    void *priv;
    void *fwd_ws; /* the forward passes' workspace, kept between passes (cs_forward.c) */
} cs_model;

/* Loads config.json and the safetensors weights of a model folder. Errors name the file and the
 * tensor: CS_ENOENT "missing tensor model.layers.0.mlp.up_proj.weight", CS_EPARSE "shape [..]
 * does not match config.json [..]", CS_ENOTSUP for a dtype other than f32/f16/bf16. */
cs_rc cs_model_load(cs_model **out, const char *dir, int n_threads, cs_err *err);

/* NULL-safe. */
void cs_model_destroy(cs_model *m);

/* The linear layer lin of layer i (NULL if out of range). Writable in place: edit w/b, or point w
 * (and b) at a buffer of the same shape that the caller owns and keeps alive until the model is
 * freed or the pointer restored (the model frees only what it allocated at load). */
cs_linear *cs_model_linear(cs_model *m, size_t layer, cs_lin lin);

/* Frees the workspace the forward passes keep from pass to pass (it grows to the largest pass,
 * e.g. a block over a whole calibration batch; freed with the model). NULL-safe. */
void cs_model_release_workspace(cs_model *m);

/* Bytes of f32 weights the model holds (tied embedding counted once). */
size_t cs_model_weight_bytes(const cs_model *m);

/* Total parameter count. */
size_t cs_model_params(const cs_model *m);

/* ---- hooks ---- */

typedef enum cs_hook_kind {
    CS_HOOK_LINEAR_IN, /* x = input of linear `lin` of `layer`, [rows][in] */
    CS_HOOK_MLP_OUT,   /* x = output of the MLP (down_proj) of `layer`, [rows][hidden] */
    CS_HOOK_BLOCK_OUT, /* x = residual stream after block `layer`, [rows][hidden] (writable) */
} cs_hook_kind;

typedef struct cs_hook_event {
    cs_hook_kind kind;
    size_t layer;
    cs_lin lin;  /* CS_HOOK_LINEAR_IN only */
    float *x;    /* [rows][cols], row-major */
    size_t rows; /* B*T */
    size_t cols;
    const uint8_t *valid; /* [rows]: 1 for a real token, 0 for padding */
    cs_linear *linear;    /* CS_HOOK_LINEAR_IN: the layer about to be applied (writable) */
} cs_hook_event;

/* A non-CS_OK return aborts the forward pass with that code. */
typedef cs_rc (*cs_hook_fn)(void *ctx, const cs_hook_event *ev, cs_err *err);

typedef struct cs_hooks {
    cs_hook_fn fn;
    void *ctx;
    unsigned mask; /* bit (1u << kind) selects events; 0 = all */
} cs_hooks;

/* ---- key/value cache ---- */

typedef struct cs_kvcache {
    size_t n_layers, batch, cap, kv_dim;
    size_t pos;   /* tokens already in the cache (same for every sequence of the batch) */
    float *k, *v; /* [n_layers][batch][cap][kv_dim] */
} cs_kvcache;

cs_rc cs_kvcache_init(cs_kvcache *c, const cs_model *m, size_t batch, size_t cap, cs_err *err);
void cs_kvcache_fini(cs_kvcache *c); /* NULL-safe */
/* Copies the first n cached positions of sequence sb of src into sequence db of dst (the prefix
 * of multiple-choice scoring: an item's context once, continued by a sequence per option).
 * dst->pos is not changed. CS_EINVAL when the caches belong to different models, a sequence is out
 * of range or n exceeds either capacity. */
cs_rc cs_kvcache_copy(const cs_kvcache *src, size_t sb, size_t n, cs_kvcache *dst, size_t db,
                      cs_err *err);

/* ---- forward ---- */

/* Runs tokens[B][T] (right-padded, lens[b] real tokens; lens NULL = all T) through the model.
 * With cache: the tokens continue the cached ones at positions cache->pos..cache->pos+T-1 (lens
 * must then be NULL) and cache->pos grows by T. logits: NULL or [B*T][vocab]. Tokens outside the
 * vocabulary are CS_ERANGE naming the position. */
cs_rc cs_model_forward(cs_model *m, const int32_t *tokens, size_t B, size_t T, const size_t *lens,
                       cs_kvcache *cache, const cs_hooks *hooks, float *logits, cs_err *err);

/* A batch of sequences, each at its own place in the cache: sequence b's tokens[b][0..T) (right
 * padded, lens[b] real tokens; lens NULL = all T) continue the past[b] positions cached for it,
 * at positions past[b]..past[b]+T-1, and their keys and values are stored there (the padding's
 * too, past the real ones, where a later call overwrites them). cache->pos is neither read nor
 * changed. The batch uses the cache's first B sequences (B <= cache->batch). logits: NULL or
 * [sum of lens][vocab], the real rows only, sequence after sequence. CS_ERANGE when past[b] + T
 * exceeds the cache. */
cs_rc cs_model_forward_at(cs_model *m, const int32_t *tokens, size_t B, size_t T,
                          const size_t *lens, const size_t *past, cs_kvcache *cache, float *logits,
                          cs_err *err);

/* Block-by-block interface (for layer-wise quantization). x[B*T][hidden]. */
cs_rc cs_model_embed(const cs_model *m, const int32_t *tokens, size_t n, float *x, cs_err *err);

/* Runs block `layer` in place on x (positions 0..T-1, right padding by lens). No cache. */
cs_rc cs_model_block(cs_model *m, size_t layer, float *x, size_t B, size_t T, const size_t *lens,
                     const cs_hooks *hooks, cs_err *err);

/* Final norm and lm_head: logits[rows][vocab] from x[rows][hidden] (x is not modified). */
cs_rc cs_model_head(cs_model *m, const float *x, size_t rows, float *logits, cs_err *err);

/* Per-token log-probabilities of the next token: for each sequence b and t in [0, lens[b]-1),
 * out[b*T + t] = log p(tokens[b][t+1] | tokens[b][0..t]); other entries are 0. */
cs_rc cs_model_logprobs(cs_model *m, const int32_t *tokens, size_t B, size_t T, const size_t *lens,
                        double *out, cs_err *err);

/* Perplexity, WikiText/GPTQ protocol: ids[0..n) cut into floor(n/window) non-overlapping windows;
 * each window's mean negative log-likelihood over its window-1 targets; ppl = exp(mean of the
 * window means). window_nll (NULL or [n/window]) receives the window means; `batch` windows run per
 * forward pass. CS_EINVAL when n < window. */
cs_rc cs_model_ppl(cs_model *m, const int32_t *ids, size_t n, size_t window, size_t batch,
                   double *window_nll, size_t *n_windows, double *ppl, cs_err *err);

#endif
