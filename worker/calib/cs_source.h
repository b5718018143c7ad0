/* calib: calibration sources and the random-window composition (the GPTQ convention).
 *
 * A source is a file of documents: "jsonl" (one JSON object per line, the text in text_field,
 * default "text"), "text" (documents separated by a blank line) or "task" (a task file's items
 * as text: MC context + " " + the gold choice; generation prompt + " " + answer; reference
 * text). The documents are joined with "\n\n" and tokenized once, without special tokens, into
 * one stream; each sample is a window of seq_len tokens at a seeded random offset. A sample's id
 * is its offset in the stream, so the exact set is rebuilt from (source, seq_len, offsets).
 */
#ifndef CS_CALIB_CS_SOURCE_H
#define CS_CALIB_CS_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_tok.h"

typedef struct cs_calib_source {
    const char *kind;       /* "jsonl", "text" or "task" */
    const char *path;       /* resolved */
    const char *text_field; /* jsonl: NULL = "text" */
} cs_calib_source;

/* Reads the documents of src and tokenizes them into *ids (owned) / *n. Errors name file:line. */
cs_rc cs_calib_source_tokens(const cs_calib_source *src, const cs_tok *tok, int32_t **ids,
                             size_t *n, cs_err *err);

/* n windows of seq_len tokens from stream[0..n_stream): *tokens (owned, n * seq_len) and
 * *offsets (owned, n). CS_EINVAL when the stream is shorter than seq_len. */
cs_rc cs_calib_random_windows(const int32_t *stream, size_t n_stream, size_t n, size_t seq_len,
                              uint64_t seed, int32_t **tokens, size_t **offsets, cs_err *err);

#endif
