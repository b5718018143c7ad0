/* calib: calibration data for the quantizers (sources, composition, selectors).
 *
 * The shared vocabulary of worker/calib (docs/specs/selectors-and-metrics.md, S1-S8): a
 * candidate pool P of token sequences, each with a stable id that names where it came from, and a
 * selection = n indices into P (or n generated sequences) plus the selector's diagnostics. The
 * ids of a selection are written to result.json, so the exact calibration set of every job can be
 * rebuilt from the sources.
 */
#ifndef CS_WORKER_CALIB_CS_CALIB_H
#define CS_WORKER_CALIB_CS_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cs_err.h"

/* One candidate: token ids (BOS included when the model uses one), at most the pool's seq_len. */
typedef struct cs_calib_item {
    char *id;        /* "<source>:<item id or line>[:<window start>]", unique in the pool */
    int32_t *tokens; /* n_tokens ids, owned */
    size_t n_tokens;
    size_t source; /* index into cs_calib_pool.sources */
} cs_calib_item;

/* A candidate pool: the items of one or more named sources, tokenized and cut to seq_len. */
typedef struct cs_calib_pool {
    cs_calib_item *items;
    size_t n;
    char **sources; /* source names, n_sources of them, owned */
    size_t n_sources;
    size_t seq_len;
} cs_calib_pool;

/* What a selector returns: n indices into the pool (or, for the generating selectors, n token
 * sequences in `generated`, with `index` NULL), and its diagnostics as a JSON object (distances
 * to centroids, cluster sizes, coverage, ...), owned, written to result.json as is. */
typedef struct cs_calib_selection {
    size_t *index; /* n indices into the pool, in selection order; NULL for generated sets */
    cs_calib_item *generated; /* n generated items (id "gen:<k>"); NULL for pool selections */
    size_t n;
    cJSON *diag;
} cs_calib_selection;

/* Frees the items, sources and arrays; NULL-safe, leaves *p zeroed. */
void cs_calib_pool_fini(cs_calib_pool *p);
void cs_calib_selection_fini(cs_calib_selection *s);

#endif
