/* cs_generate.h - autoregressive generation with a key/value cache.
 *
 * Each step's logits go through, in Hugging Face's order: repetition penalty (every token in the
 * prompt or generated so far: logit < 0 ? logit * p : logit / p), then greedy argmax when
 * temperature == 0 (the lowest id among equal maxima, as torch.argmax), otherwise temperature,
 * top-k, top-p (smallest set whose probability reaches top_p, always at least one token) and a draw
 * from the seeded cs_rng. Generation ends after max_new tokens, at a stop token (which is
 * included in the output) or when the `until` callback says so. */
#ifndef CS_WORKER_MODEL_CS_GENERATE_H
#define CS_WORKER_MODEL_CS_GENERATE_H

#include <stdbool.h>

#include "cs_model.h"
#include "cs_rng.h"

typedef struct cs_gen_params {
    size_t max_new;
    double temperature; /* 0 = greedy */
    size_t top_k;       /* 0 = off */
    double top_p;       /* 1 = off */
    double rep_penalty; /* 1 = off */
    uint64_t seed;
    const int32_t *stop; /* stop token ids */
    size_t n_stop;
    /* NULL, or called after each new token with the new tokens so far; true ends generation
     * there (the token stays in the output), e.g. when the text holds a stop string. */
    bool (*until)(void *ctx, const int32_t *gen, size_t n_gen);
    void *until_ctx;
} cs_gen_params;

/* Defaults: greedy, max_new 32, no top-k/top-p/penalty, seed 0, no stop tokens. */
void cs_gen_params_default(cs_gen_params *p);

/* Generates from prompt[0..n_prompt) (n_prompt >= 1). *out (owned, free()) receives the new
 * tokens, *n_out their count. CS_EINVAL for bad parameters (temperature < 0, top_p outside (0, 1],
 * penalty <= 0). */
cs_rc cs_generate(cs_model *m, const int32_t *prompt, size_t n_prompt, const cs_gen_params *p,
                  int32_t **out, size_t *n_out, cs_err *err);

/* Picks the next token from logits[0..V) (modified in place) given the history; exposed for
 * tests. */
int32_t cs_gen_pick(float *logits, size_t V, const int32_t *hist, size_t n_hist,
                    const cs_gen_params *p, cs_rng *rng);

#endif
