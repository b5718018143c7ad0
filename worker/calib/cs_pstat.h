/* calib: per-item statistics of a candidate pool under the FP model, the expensive part of the
 * activation-based selectors, computed through the forward hooks (cs_model.h) and kept in the
 * worker's content-addressed cache (cs_cache.h).
 *
 * The statistics (item i of the pool, layer l, channel h; means over the item's tokens, BOS
 * included when the item has one; every array [n][n_layers][hidden] f32, NLL [n] f64):
 *   mlp_mean    COLA (S5): mean of block l's MLP output (down_proj, before the residual add)
 *   in_mean     ACDM (S6, stat=mean): mean of layer l's input hidden state as the quantizers
 *               observe it: the input of q/k/v (after input_layernorm)
 *   in_absmean  ACDM (stat=absmean): mean |x| of the same input (AWQ's activation statistic)
 *   in_absmax   CoverCal (S8): max |x| of the same input
 *   nll         ppl rank (S7): mean next-token negative log-likelihood over tokens 1..len-1
 * No activation of a layer is ever kept beyond the hook call that sees it: each hook folds its
 * rows into these per-item sums on the fly.
 *
 * One forward pass serves them all. A request computes what the cache does not hold; with a
 * cache, a pass that runs anyway also computes every other hook statistic (mlp_mean, in_*)
 * missing from the cache, since the hooks add little to the pass, so COLA, ACDM (both stats) and
 * CoverCal on one pool cost one pass in all. nll needs the output layer (final norm, lm_head,
 * log-softmax over the vocabulary), computed in row chunks of the last block's output, and is
 * only computed when asked for; a pass for nll computes the missing hook statistics too.
 *
 * Cache key: SHA-256 of "calsweep pool statistic v1", the engine version, the statistic's name
 * and format version, the model identity (cs_cache_model_id), the pool's seq_len and the SHA-256
 * of its exact token sequences (each item's length and ids, in pool order). The entry's payload
 * starts with the statistic and its dimensions, which are checked on read (a mismatch is
 * rejected like a corrupt file).
 */
#ifndef CS_WORKER_CALIB_CS_PSTAT_H
#define CS_WORKER_CALIB_CS_PSTAT_H

#include <stddef.h>
#include <stdint.h>

#include "cs_cache.h"
#include "cs_calib.h"
#include "cs_err.h"
#include "cs_model.h"

typedef enum cs_pstat_kind {
    CS_PSTAT_MLP_MEAN = 0,
    CS_PSTAT_IN_MEAN,
    CS_PSTAT_IN_ABSMEAN,
    CS_PSTAT_IN_ABSMAX,
    CS_PSTAT_NLL,
    CS_PSTAT_COUNT
} cs_pstat_kind;

#define CS_PSTAT_BIT(k) (1u << (k))
#define CS_PSTAT_HOOKED                                                 \
    (CS_PSTAT_BIT(CS_PSTAT_MLP_MEAN) | CS_PSTAT_BIT(CS_PSTAT_IN_MEAN) | \
     CS_PSTAT_BIT(CS_PSTAT_IN_ABSMEAN) | CS_PSTAT_BIT(CS_PSTAT_IN_ABSMAX))

/* "mlp_mean", "in_mean", "in_absmean", "in_absmax", "nll". */
const char *cs_pstat_name(cs_pstat_kind k);

/* The statistics asked for; the others NULL. */
typedef struct cs_pstats {
    size_t n, n_layers, hidden;
    float *v[CS_PSTAT_NLL]; /* [n][n_layers][hidden], owned */
    double *nll;            /* [n], owned */
} cs_pstats;

void cs_pstats_fini(cs_pstats *s); /* NULL-safe; leaves *s zeroed */

/* Counters, accumulated over every cs_pstat_get of a context. */
typedef struct cs_pstat_counters {
    size_t passes; /* forward passes (batches) */
    size_t items;  /* items forwarded */
    size_t tokens; /* tokens forwarded */
    size_t hits;   /* statistics read from the cache */
    size_t computed;
    size_t written; /* cache entries written */
} cs_pstat_counters;

/* What a caller (job, `calsweep-run select`) passes down. Zero-initialize; cache and model_id
 * borrowed; with either NULL nothing is cached. */
typedef struct cs_pstat_ctx {
    cs_cache *cache;
    const char *model_id;
    cs_pstat_counters count;
} cs_pstat_ctx;

typedef void (*cs_pstat_progress)(void *ctx, const char *stage, size_t done, size_t total);

/* Fills *out (zeroed first; free with cs_pstats_fini) with the statistics of `want` (a mask of
 * CS_PSTAT_BIT) for every item of pool: from the cache when it holds them, else from one forward
 * pass over the pool in batches of `batch` sequences (right-padded). ctx may be NULL (no cache, no
 * counters). A cache write that fails is a warning, never an error. CS_EINVAL for an empty want,
 * an empty pool or an item without tokens; the forward pass's errors; CS_ENOMEM. */
cs_rc cs_pstat_get(cs_pstat_ctx *ctx, cs_model *m, const cs_calib_pool *pool, unsigned want,
                   size_t batch, cs_pstat_progress progress, void *pctx, cs_pstats *out,
                   cs_err *err);

/* The cache key of statistic k of pool under model_id (64 hex digits + NUL). */
cs_rc cs_pstat_key(const char *model_id, const cs_calib_pool *pool, cs_pstat_kind k,
                   char key[CS_CACHE_KEY_LEN + 1], cs_err *err);

#endif
