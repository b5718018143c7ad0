/* cs_pass.h - a block's pass over the calibration batch, a chunk of whole sequences at a time.
 *
 * The pipeline's statistics passes and next-input passes run the batch in chunks of about 4,096
 * rows, so that the forward pass's workspace (the MLP's intermediate above all) is sized to a
 * chunk and stays mapped from pass to pass (cs_model.h: the model keeps it), instead of a
 * batch-sized one mapped and faulted in on every pass. A chunk is whole sequences (attention
 * stays within a sequence) and a multiple of cs_hessian's 256-row batches, so the statistics the
 * hooks accumulate chunk after chunk (Hessians batch by batch, sums and maxima row after row) are
 * those of one pass over the whole batch, to the bit.
 */
#ifndef CS_WORKER_PIPELINE_CS_PASS_H
#define CS_WORKER_PIPELINE_CS_PASS_H

#include <stdbool.h>
#include <stddef.h>

#include "cs_err.h"
#include "cs_model.h"

/* Sequences per chunk of a pass over n sequences of T tokens (at least one, at most n). */
size_t cs_pass_seqs(size_t n, size_t T);

/* One pass of block `layer` over the n sequences of x[n*T][hidden] (right padding by lens, or
 * NULL), cs_pass_seqs at a time. With scratch (room for a chunk) each chunk is copied there and x
 * is unchanged; without, x becomes the block's output. The hooks see each chunk as a batch of its
 * own. A CS_ECANCELED with *stopped set (a hook that has seen all it needs of this chunk) ends the
 * chunk, not the pass. */
cs_rc cs_pass_block(cs_model *m, size_t layer, float *x, float *scratch, size_t n, size_t T,
                    const size_t *lens, const cs_hooks *hooks, const bool *stopped, cs_err *err);

#endif
