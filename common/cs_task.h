/* eval: task files (docs/specs/selectors-and-metrics.md, "Task JSONL format").
 *
 * One JSON object per line; every item of a file has the same kind:
 *   MC          {"id","task","context","choices":[..],"gold":int}
 *   multi-input {"id","task","contexts":[..],"continuation","gold":int}   (WinoGrande style)
 *   generation  {"id","task","prompt","answer","stop":[..]}
 *   reference   {"id","task","text"}                                      (ACDM's train side)
 * Errors name the file and line: "tasks/x.jsonl:12: choices[2]: expected a string, got 3".
 */
#ifndef CS_COMMON_CS_TASK_H
#define CS_COMMON_CS_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"
#include "cs_json.h"

typedef enum cs_task_kind {
    CS_TASK_MC = 0,
    CS_TASK_MULTI = 1,
    CS_TASK_GEN = 2,
    CS_TASK_REF = 3,
} cs_task_kind;

typedef struct cs_task_item {
    char *id;
    char *text;     /* MC: context; multi-input: continuation; generation: prompt; ref: text */
    char **options; /* MC: choices; multi-input: contexts; generation: stop strings */
    size_t n_options;
    char *answer; /* generation only */
    int gold;     /* MC and multi-input: index into options */
    size_t line;  /* 1-based line in the file */
} cs_task_item;

typedef struct cs_task {
    char *path;
    char *name; /* the items' "task" */
    cs_task_kind kind;
    cs_task_item *items;
    size_t n;
} cs_task;

/* The fixed seed of `limit` subsampling: every job of every sweep scores the same items. */
#define CS_TASK_LIMIT_SEED UINT64_C(0x5eed0f7a5c)

/* Loads path. limit > 0 keeps a subset of `limit` items chosen with CS_TASK_LIMIT_SEED, in file
 * order (all items when the file has no more than limit). CS_EPARSE / CS_ESCHEMA name file:line;
 * CS_ENOENT for a missing file; an empty file is CS_EINVAL. */
cs_rc cs_task_load(cs_task *t, const char *path, size_t limit, cs_err *err);

/* cs_task_load with another sampling seed. The `limit` rule: the indices 0..n-1 are shuffled by
 * cs_rng_shuffle (Fisher-Yates) under cs_rng_seed(seed); the first `limit` of them are kept and
 * scored in file order. */
cs_rc cs_task_load_seeded(cs_task *t, const char *path, size_t limit, uint64_t seed, cs_err *err);

/* Parses one line p[0..n) of a JSON-lines data file like cs_json_parse; name is "<file>:<line>".
 * Errors give the position and the kind of mistake but never the text of the file (a data file
 * may hold anything, and its errors travel to the coordinator and its logs):
 * "<file>:<line>:<line>:<col>: syntax error", not "... near 'root:x:0:0'". */
cs_rc cs_task_parse_line(const char *p, size_t n, const char *name, cJSON **out, cs_err *err);

/* cs_task_load_seeded on text[0..len) in memory (need not be NUL-terminated); path names it in
 * errors and becomes t->path. */
cs_rc cs_task_parse(cs_task *t, const char *path, const char *text, size_t len, size_t limit,
                    uint64_t seed, cs_err *err);

/* Few-shot prompts (specs E1 "Few-shot", Task JSONL format): loads the shot file shots_path (the
 * same kind of items as t: MC, multi-input or generation) and prefixes every item of t with
 *   description + shot_1 + "\n\n" + ... + shot_k + "\n\n"
 * (description verbatim, may be NULL; give it its own trailing "\n\n" as MMLU's header has).
 * A shot is rendered as its gold answer would be scored: MC  context + " " + choices[gold];
 * multi-input  contexts[gold] + " " + continuation; generation  prompt + " " + answer.
 * The shots of an item are the first k items of the shot file whose id differs from the item's
 * (so a file never shows an item its own answer). The prefix goes before the MC context, before
 * every multi-input context and before the generation prompt. k = 0 changes nothing. Errors:
 * the shot file's own load errors (file:line), CS_ESCHEMA when its kind differs from t's,
 * CS_EINVAL when it has fewer than k usable shots. */
cs_rc cs_task_fewshot(cs_task *t, const char *shots_path, size_t k, const char *description,
                      cs_err *err);

/* Keeps the first n items (tests and quick runs). */
void cs_task_truncate(cs_task *t, size_t n);

void cs_task_fini(cs_task *t); /* NULL-safe; leaves *t zeroed */

const char *cs_task_kind_name(cs_task_kind k);

#endif
