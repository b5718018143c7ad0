/* eval: scoring a task with a model (docs/specs/selectors-and-metrics.md E1, E2, M1, M2).
 *
 * Multiple choice, lm-eval's rule as sweeps/testbed/README.md writes it down:
 *   ctx  = encode(context without trailing whitespace) (with the model's special prefix, e.g.
 *          BOS; an empty one without BOS is the EOS token, E1 "Empty context"),
 *   cont = encode(context + " " + choice)[len(ctx):],
 *   LL   = sum of log p(cont[i] | ctx + cont[..i]);
 *   acc = [argmax LL == gold], acc_norm divides LL by the choice's length in characters (code
 *   points), acc_bytes by its length in bytes; ties go to the lowest index (numpy argmax).
 * Multiple input (WinoGrande): the one continuation is scored after each context, LL as above.
 * Generation: greedy decoding of at most max_new tokens, cut at the first stop string (the item's
 * "stop" list plus a blank line) or EOS; strict = the first "#### <number>", flexible = the last
 * number of the output; numbers are compared after removing "," and "$" and a trailing ".", with
 * the item's answer: its "#### <number>" when it has one (a GSM8K solution), else all of it.
 * Standard errors: sqrt(p (1 - p) / (N - 1)) (N = 1: 0).
 * Per item (result.json version 2's "items"): each item's 1/0 outcome of every metric, and the
 * gold margin LL(gold) - max over the other options of LL (raw log-likelihoods, M1; > 0 iff the
 * gold option wins outright). The means of the outcomes are the metrics, exactly.
 */
#ifndef CS_WORKER_EVAL_CS_SCORE_H
#define CS_WORKER_EVAL_CS_SCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cs_model.h"
#include "cs_task.h"
#include "cs_tok.h"

typedef struct cs_score {
    size_t n;
    double acc, acc_norm, acc_bytes; /* MC and multi-input (acc_norm/bytes: MC only) */
    double exact_strict, exact_flex; /* generation */
    double *ll; /* MC: per item the LL of each option, n_ll values in item order; owned */
    size_t n_ll;
    int *pred; /* per item the argmax of LL (MC) or 1/0 strict match (generation); owned */
    /* Per item, n values in item order, owned; NULL where the kind has no such outcome. */
    uint8_t *ok_acc;              /* 1 = argmax LL is gold (MC, multi-input) */
    uint8_t *ok_norm, *ok_bytes;  /* the same with LL per character / per byte (MC) */
    uint8_t *ok_strict, *ok_flex; /* exact match, strict and flexible (generation) */
    double *margin; /* LL(gold) - max LL of the other options, nats (MC, multi-input) */
    /* The work the scoring must do, whatever path ran it (the floor of worker/pipeline/cs_floor.h):
     * tokens through the blocks, rows through the output head, causal (query, key) pairs. An MC
     * item's context counts once, each option's continuation after it; a generation counts its
     * prompt and every generated token. */
    double work_tokens, work_head_rows, work_attn_pairs;
} cs_score;

/* Called after each item (may be NULL). */
typedef void (*cs_score_progress_fn)(void *ctx, size_t done, size_t total);

typedef struct cs_score_opts {
    size_t max_new;    /* generation: 0 = 256 */
    size_t batch_rows; /* MC / multi-input: sequences per forward pass, whole items; 0 = one item
                          per pass (fastest on CPU). MC with 0: the context once per item, the
                          options as continuations of its key/value cache */
    bool unshared;     /* MC: every option's whole sequence (context + option) run on its own, as
                          batch_rows > 0 does; the reference path of the shared-context one */
    size_t items_per_pass; /* MC, shared context: items whose contexts run as one batch, then
                              all their options as another; 0 = 16 */
    size_t cache_bytes;    /* MC, shared context: the most the two passes' key/value caches may
                              take (fewer items run together when their contexts are long); 0 =
                              256 MiB */
    cs_score_progress_fn progress;
    void *progress_ctx;
} cs_score_opts;

/* Scores every item of t (MC, multi-input or generation; a reference file is CS_EINVAL). */
cs_rc cs_score_task(cs_model *m, const cs_tok *tok, const cs_task *t, const cs_score_opts *o,
                    cs_score *out, cs_err *err);

void cs_score_fini(cs_score *s); /* NULL-safe */

/* Adds the metrics of s to obj, as result.json writes them: n, then acc, acc_stderr, acc_norm,
 * acc_norm_stderr, acc_bytes (MC), acc, acc_stderr (multi-input) or exact_match,
 * exact_match_stderr, exact_match_flex (generation). */
cs_rc cs_score_to_json(const cs_score *s, cs_task_kind kind, cJSON *obj, cs_err *err);

/* The ids of a (b NULL) or of a + " " + b, with the tokenizer's special prefix (BOS where the
 * model has one): the scorer's tokenization. MC: ctx = cs_score_encode(context, NULL), the
 * continuation = cs_score_encode(context, choice) minus its first len(ctx) ids. Owned *ids. */
cs_rc cs_score_encode(const cs_tok *tok, const char *a, const char *b, int32_t **ids, size_t *n,
                      cs_err *err);

/* The E1 split of one (context, continuation) pair, as the scorer does it: *full = the ids of
 * context + " " + continuation; its first *n_ctx ids are the context's = the ids of the context
 * without its trailing whitespace (lm-eval moves that to the continuation). When those are none
 * (an empty context, no BOS) stand_in (the EOS id; < 0: none, an error) is put before full and
 * counts as the context. The continuation's ids are (*full)[*n_ctx..*n_full). Owned *full. */
cs_rc cs_score_split(const cs_tok *tok, int32_t stand_in, const char *context,
                     const char *continuation, int32_t **full, size_t *n_full, size_t *n_ctx,
                     cs_err *err);

/* sqrt(p (1 - p) / (n - 1)), 0 for n < 2. */
double cs_score_stderr(double p, size_t n);

/* Generation answers: the strict "#### number" (NULL if none) and the last number (NULL if none)
 * of text, normalized; owned strings. */
cs_rc cs_score_extract(const char *text, char **strict, char **flex, cs_err *err);

/* The number a generation item's answer asks for, normalized as cs_score_extract's: the strict
 * "#### <number>" of answer when it has one (a worked solution, as GSM8K's answers are), else the
 * whole answer ("12"). Owned *want. */
cs_rc cs_score_gold(const char *answer, char **want, cs_err *err);

#endif
