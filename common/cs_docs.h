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
 * text). A path ending in ".gz" is decompressed by the system's gzip as it is read (C4 and
 * pile-val are published gzipped).
 */
#ifndef CS_COMMON_CS_DOCS_H
#define CS_COMMON_CS_DOCS_H

#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

/* How a task source's items become text: "text" (MC context + " " + gold choice; generation
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

/* The items each of n pool sources gives to a pool of `total` items: quota[i] items where
 * quota[i] > 0, and what the quotas leave split over the other sources in proportion to
 * weight[i] (largest remainders first, ties to the earlier source). out[n]. CS_EINVAL when the
 * quotas pass total, or leave items and no source has a weight ("quotas give 96 of 128 items and
 * no source has a weight"). The sweep compiler and the worker both use it, so a plan's checks
 * see the shares a job will build. */
cs_rc cs_calib_shares(const int64_t *quota, const double *weight, size_t n, size_t total,
                      size_t *out, cs_err *err);

/* An upper bound on the items of seq_len tokens that `compose` ("random_windows", "concat",
 * "per_doc", "doc_windows", "awq_concat") can cut from docs[0..n): a token is at least one byte, so
 * a document of fewer bytes than seq_len - 1 (one place may go to BOS) never fills an item. A pool
 * needing more than this can never be built; one needing less may still fail at the job, where the
 * tokens are known. */
size_t cs_calib_capacity(const cs_calib_doc *docs, size_t n, const char *compose, size_t seq_len);

#endif
