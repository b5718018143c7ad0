/* cs_docs.h - the documents of a calibration source, and the checks that keep calibration data
 * apart from evaluation data.
 *
 * Shared by the worker (worker/calib builds candidate pools from these documents) and the
 * coordinator (a sweep's pools are checked for leaks into its evaluation files, and against the
 * size of their sources, before any job runs), so both read a source the same way.
 *
 * A source is a file of documents: "jsonl" (one JSON object per line, the text in text_field,
 * default "text"), "text" (documents separated by a blank line) or "task" (a task file's items
 * as text: MC context + " " + the gold choice; generation prompt + " " + answer; reference
 * text).
 */
#ifndef CS_COMMON_CS_DOCS_H
#define CS_COMMON_CS_DOCS_H

#include <stddef.h>

#include "cs_err.h"

/* How a task source's items become text: "plain" (MC context + " " + gold choice; generation
 * prompt + " " + answer; reference text) or "qa" (COLA stage 2: "Question: ...\nReasoning:
 * ...\nAnswer: ...", the reasoning chain kept: a generation answer "chain #### final" is split at
 * "####"; an MC context already holding "Answer: chain" keeps it as the reasoning). */
typedef enum cs_calib_format {
    CS_CALIB_FMT_PLAIN = 0,
    CS_CALIB_FMT_QA = 1,
} cs_calib_format;

typedef struct cs_calib_source {
    const char *kind;       /* "jsonl", "text" or "task" */
    const char *path;       /* resolved */
    const char *text_field; /* jsonl: NULL = "text" */
    const char *name;       /* pool source name (ids "<name>:..."); NULL = "src<k>" */
    cs_calib_format format; /* task sources only */
    size_t quota;           /* pool items from this source; 0 = an even share of the rest */
} cs_calib_source;

/* One document of a source (text already formatted). */
typedef struct cs_calib_doc {
    char *id;   /* document id (see cs_calib_compose) */
    char *text; /* the document's text */
    char *key;  /* normalized text used by the overlap check (task sources: the question) */
    size_t line;
} cs_calib_doc;

/* Reads the documents of src into *docs (owned) / *n. Errors name file:line. */
cs_rc cs_calib_source_docs(const cs_calib_source *src, cs_calib_doc **docs, size_t *n, cs_err *err);
void cs_calib_docs_destroy(cs_calib_doc *docs, size_t n);

/* "<a>:<b>" (an item id under its source's name), owned; NULL on no memory. */
char *cs_calib_join_id(const char *a, const char *b);

/* Lowercase ASCII, whitespace runs collapsed to one space, trimmed; owned (NULL on no memory). */
char *cs_calib_normalize(const char *text);

/* Refuses a calibration source that shares an item with an evaluation file (a task file): the
 * same item id, or the same normalized text (task sources: the question/context; other sources:
 * the whole document, against the eval item's text and its text + gold answer). CS_EINVAL with
 * "calibration overlaps evaluation (same id|same text): <file>:<line> '<id>' = <eval file>:<line>
 * '<id>'" for the first overlapping item (a calibration item may never come from an evaluation
 * split). */
cs_rc cs_calib_check_overlap(const cs_calib_source *src, size_t n_src,
                             const char *const *eval_paths, size_t n_eval, cs_err *err);

/* cs_calib_check_overlap with other words: refuses a document of src that shares an id or a
 * normalized text with an item of the task files paths, saying "<what> overlaps <other> (same
 * id|same text): ..." (e.g. "ACDM reference overlaps evaluation"). */
cs_rc cs_calib_check_disjoint(const cs_calib_source *src, size_t n_src, const char *const *paths,
                              size_t n_paths, const char *what, const char *other, cs_err *err);

#endif
