/* calib: calibration sources and the random-window composition (the GPTQ convention).
 *
 * A source is a file of documents: "jsonl" (one JSON object per line, the text in text_field,
 * default "text"), "text" (documents separated by a blank line) or "task" (a task file's items
 * as text: MC context + " " + the gold choice; generation prompt + " " + answer; reference
 * text). The documents are joined with "\n\n" and tokenized once, without special tokens, into
 * one stream; each sample is a window of seq_len tokens at a seeded random offset. A sample's id
 * is its offset in the stream, so the exact set is rebuilt from (source, seq_len, offsets).
 */
#ifndef CS_WORKER_CALIB_CS_SOURCE_H
#define CS_WORKER_CALIB_CS_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cs_calib.h"
#include "cs_docs.h"
#include "cs_err.h"
#include "cs_tok.h"

/* The composition of n samples x seq_len tokens (a named option, recorded in result.json):
 * - random_windows (default, the GPTQ convention): the documents in file order joined with
 *   "\n\n", tokenized once; each sample a window at a seeded random offset (distinct offsets);
 *   id "<name>:w<offset>".
 * - concat (the AWQ convention): the documents in a seeded shuffled order joined with "\n\n",
 *   tokenized, cut into consecutive samples; id "<name>:c<k>".
 * - per_doc: one document per sample in a seeded shuffled order, truncated to seq_len; a
 *   document shorter than seq_len is skipped; id "<name>:<document id>".
 * - doc_windows (GPTQ's C4 sampler): a random document longer than seq_len, a window at a random
 *   offset inside it; id "<name>:<document id>@<offset>".
 * - awq_concat (AWQ's pile-val recipe): documents in a seeded shuffled order, those longer than
 *   seq_len skipped, their tokens joined without separator and cut into samples; id "<name>:a<k>".
 * The last two follow the reference scripts' recipes with calsweep's seeded generator (the
 * scripts draw with Python's random module and torch, so the samples differ, not the method).
 * With add_bos and a model BOS, each sample is BOS + seq_len-1 text tokens. A plain-text source's
 * documents are separated by blank lines (id "p<k>", 1-based); a JSONL source's document id is its
 * "id" string when present, else "L<line>"; a task source's is the item id. */
typedef enum cs_calib_compose {
    CS_COMPOSE_RANDOM_WINDOWS = 0,
    CS_COMPOSE_CONCAT = 1,
    CS_COMPOSE_PER_DOC = 2,
    CS_COMPOSE_DOC_WINDOWS = 3,
    CS_COMPOSE_AWQ_CONCAT = 4,
} cs_calib_compose;

typedef struct cs_calib_compose_opts {
    cs_calib_compose mode;
    size_t n;       /* samples in all (split over the sources by quota) */
    size_t seq_len; /* tokens per sample */
    uint64_t seed;
    bool add_bos;
} cs_calib_compose_opts;

/* random_windows, n 128, seq_len 2048, seed 0, add_bos true. */
void cs_calib_compose_opts_default(cs_calib_compose_opts *o);
/* "random_windows", "concat", "per_doc", "doc_windows", "awq_concat". */
const char *cs_calib_compose_name(cs_calib_compose m);
/* CS_EINVAL naming the accepted names. */
cs_rc cs_calib_compose_parse(const char *name, cs_calib_compose *out, cs_err *err);

/* Builds *pool (zeroed first; free with cs_calib_pool_fini) of o->n items of exactly o->seq_len
 * tokens from the sources, each giving its quota (sources with quota 0 share the rest evenly, the
 * remainder to the first). CS_EINVAL when a source is too short for its share, naming it. */
cs_rc cs_calib_pool_build(const cs_calib_source *src, size_t n_src, const cs_tok *tok,
                          const cs_calib_compose_opts *o, cs_calib_pool *pool, cs_err *err);

/* The record of a pool for result.json: {"composition", "n", "seq_len", "seed", "add_bos",
 * "sources": [{"name", "kind", "path", "field", "format" (task sources), "items"}]}; NULL on
 * no memory. */
cJSON *cs_calib_pool_describe(const cs_calib_pool *pool, const cs_calib_source *src, size_t n_src,
                              const cs_calib_compose_opts *o);

/* ACDM's reference items: every document of each source, in file order (a task file's items as
 * text: an MC item as context + " " + gold choice, so a .train.jsonl split and its .ref.jsonl
 * rendering {"id","task","text"} give the same items), tokenized without special tokens, BOS
 * first with add_bos and a tokenizer BOS, cut to seq_len tokens; shorter items are kept whole.
 * One pool source per source (its name, or "ref<k>"), ids "<name>:<document id>". *pool zeroed
 * first; free with cs_calib_pool_fini. CS_EINVAL when a source has no item or two share a name;
 * errors of the source files name file:line. */
cs_rc cs_calib_ref_pool_build(const cs_calib_source *src, size_t n_src, const cs_tok *tok,
                              size_t seq_len, bool add_bos, cs_calib_pool *pool, cs_err *err);

/* ACDM's reference as a job and `calsweep-run select` take it: ref (n_ref task files) must be
 * disjoint from the evaluation files evals and from the calibration sources src (both checked
 * with cs_calib_check_disjoint), then cs_calib_ref_pool_build. */
cs_rc cs_calib_acdm_reference(const cs_calib_source *ref, size_t n_ref, const cs_calib_source *src,
                              size_t n_src, const char *const *evals, size_t n_evals,
                              const cs_tok *tok, size_t seq_len, bool add_bos, cs_calib_pool *pool,
                              cs_err *err);

/* The documents of src (cs_calib_source_docs) joined with a blank line and tokenized without
 * special tokens into *ids (owned) / *n: the stream of cs_calib_random_windows. */
cs_rc cs_calib_source_tokens(const cs_calib_source *src, const cs_tok *tok, int32_t **ids,
                             size_t *n, cs_err *err);

/* n windows of seq_len tokens from stream[0..n_stream): *tokens (owned, n * seq_len) and
 * *offsets (owned, n). CS_EINVAL when the stream is shorter than seq_len. */
cs_rc cs_calib_random_windows(const int32_t *stream, size_t n_stream, size_t n, size_t seq_len,
                              uint64_t seed, int32_t **tokens, size_t **offsets, cs_err *err);

#endif
