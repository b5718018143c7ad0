/* cs_json.h - helpers over cJSON: parsing with line:column errors, JSON paths, typed getters that
 * name the path of what is wrong, a diagnostics list that collects every error of a document, and
 * "did you mean" suggestions for unknown keys.
 *
 * Why: a sweep file is written by hand. Its validator must report every mistake at once, each as
 * `grid.algorithm[2].bits: expected an integer in 2..8, got 16`, in the order they appear in the
 * file. The protocol codec uses the same getters in fail-fast mode (first error into a cs_err).
 *
 * Rules shared by every function here:
 * - Object members are looked up case-sensitively (cJSON_GetObjectItem is case-INsensitive; never
 *   use it on user input).
 * - Paths are written `grid.algorithm[2].bits`. A key made only of [A-Za-z0-9_-] is written bare;
 *   any other key is quoted, `models["qwen2.5"].folder`. The document root is the empty path and is
 *   printed as `(root)` in messages.
 * - cJSON stores every number as a double: integers beyond 2^53 are not exact (see cs_canon.h).
 * - Nothing here keeps global state; cJSON_GetErrorPtr() (a global) is never used.
 */
#ifndef CS_COMMON_CS_JSON_H
#define CS_COMMON_CS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "cs_alloc.h"
#include "cs_err.h"

/* ---- parsing ----------------------------------------------------------------------------- */

/* Default size cap of cs_json_parse_file (bytes). */
#define CS_JSON_MAX_FILE ((size_t)16 << 20)

/* Parses text[0..len) (need not be NUL-terminated) as one JSON document. name labels the text in
 * errors (a file name; NULL = "<input>").
 * Returns CS_OK and *out = an owned tree (free with cJSON_Delete), or CS_EPARSE with *out = NULL
 * and err->msg = "<name>:<line>:<col>: <what>" for: a syntax error (with the text near it), empty
 * input, trailing data after the value, a NUL byte, invalid UTF-8 inside a string, and the escape
 * \u0000 (cJSON strings are NUL-terminated, so it would silently cut the string). Lines and columns
 * are 1-based; columns count characters (UTF-8 code points), not bytes. After a successful syntax
 * parse the tree is checked too, with the JSON path instead of line:col: a duplicate key in one
 * object ("<name>: grid: duplicate key \"bits\"") and a number that overflows a double ("1e999")
 * are CS_EPARSE as well. Nesting deeper than CS_LIMIT_JSON_DEPTH (64) levels is refused before
 * any tree is built ("<name>:<line>:<col>: nested deeper than 64 levels"). The work is linear in
 * the text (the duplicate-key check sorts each object's keys: O(n log n) comparisons for n
 * members, whatever the keys), so a message with 150,000 keys costs milliseconds, not minutes.
 * Callers bound the size before calling (cs_msg_decode, cs_json_parse_file). CS_ENOMEM on OOM. */
cs_rc cs_json_parse(const char *text, size_t len, const char *name, cJSON **out, cs_err *err);

/* Reads path (at most max_bytes; 0 = CS_JSON_MAX_FILE) and parses it like cs_json_parse with the
 * path as name. File errors are those of cs_path_read_file (CS_ENOENT, CS_ETOOBIG, CS_EIO, ...),
 * each naming the file. *out is an owned tree (cJSON_Delete) on CS_OK, NULL otherwise. */
cs_rc cs_json_parse_file(const char *path, size_t max_bytes, cJSON **out, cs_err *err);

/* ---- JSON paths -------------------------------------------------------------------------- */

#define CS_JPATH_MAX   256 /* bytes of text kept; deeper components are shown as "..." */
#define CS_JPATH_DEPTH 64  /* components remembered; deeper pushes still pop correctly */

/* A path under construction while walking a tree: push a key or index before descending, pop after.
 * Push and pop are O(length of the component) and never allocate or fail; a path longer than
 * CS_JPATH_MAX or deeper than CS_JPATH_DEPTH is shown truncated with a trailing "...". Embed it by
 * value; zero-initialised or cs_jpath_init'ed it is the root. Not thread-safe (one walk, one path).
 */
typedef struct cs_jpath {
    char buf[CS_JPATH_MAX + 4];   /* NUL-terminated text; +4 for "..." */
    size_t len;                   /* bytes of buf in use */
    size_t depth;                 /* components pushed, including those not shown */
    size_t marks[CS_JPATH_DEPTH]; /* len before push i (i < CS_JPATH_DEPTH) */
    size_t hidden;                /* pushes since the text stopped growing (truncated) */
} cs_jpath;

void cs_jpath_init(cs_jpath *p);
void cs_jpath_push_key(cs_jpath *p, const char *key);
void cs_jpath_push_index(cs_jpath *p, size_t index);
/* Pops the last component; popping the root is a no-op. */
void cs_jpath_pop(cs_jpath *p);
/* Returns borrowed text, valid until the next push/pop: "" at the root. */
const char *cs_jpath_str(const cs_jpath *p);
/* Like cs_jpath_str but "(root)" at the root: what messages print. */
const char *cs_jpath_display(const cs_jpath *p);

/* Appends key as one path component to out, which holds a path (empty = root): ".key", "key" at
 * the root, or ["k.e\"y"] when the key needs quoting. CS_ENOMEM on OOM (out unchanged). */
cs_rc cs_jpath_append_key(cs_buf *out, const char *key);

/* ---- diagnostics ------------------------------------------------------------------------- */

typedef enum cs_diag_severity {
    CS_DIAG_ERROR = 0,
    CS_DIAG_WARNING = 1,
} cs_diag_severity;

typedef struct cs_diag {
    cs_diag_severity severity;
    char *path;        /* owned; "" = the document root */
    char *message;     /* owned; without the path, e.g. "expected a string, got 42" */
    const cJSON *node; /* borrowed, may be NULL: the value concerned (for a missing key, the
                          object it is missing from); only used to sort in document order */
    size_t seq;        /* insertion order, the tie-breaker of the sort */
} cs_diag;

/* A list of diagnostics about one document. Zero-initialise or cs_diags_init; free with
 * cs_diags_fini. At most max_items (default 1000) are kept; further ones are only counted in
 * n_dropped (and in n_errors/n_warnings). Not thread-safe. */
typedef struct cs_diags {
    cs_diag *items;
    size_t len, cap;
    size_t n_errors, n_warnings; /* all added, kept or dropped */
    size_t n_dropped;
    size_t max_items; /* 0 = 1000 */
} cs_diags;

void cs_diags_init(cs_diags *d);
void cs_diags_fini(cs_diags *d); /* NULL-safe; leaves d empty and reusable */

/* Adds one diagnostic at path (NULL = root) about node (may be NULL; see cs_diag.node). Copies
 * path and message. Returns CS_OK, or CS_ENOMEM (the counters are still updated). */
cs_rc cs_diags_add(cs_diags *d, cs_diag_severity sev, const cJSON *node, const char *path,
                   const char *fmt, ...) CS_PRINTF(5, 6);

/* Sorts the items stably in document order of doc (borrowed, may be NULL): by the pre-order
 * position of each item's node in doc, then by insertion order. An item whose node is NULL or not
 * in doc is placed by resolving its path in doc (the deepest existing node on the path); one that
 * cannot be placed at all goes last. With doc NULL the insertion order is kept. */
void cs_diags_sort(cs_diags *d, const cJSON *doc);

/* Sorts (as cs_diags_sort) and appends one line per item to out:
 * "[<source>: ]error: <path>: <message>\n" ("warning: ..." for warnings; "(root)" for the root
 * path), then, if any were dropped, "[<source>: ]... and N more\n". source may be NULL. */
cs_rc cs_diags_format(cs_diags *d, const cJSON *doc, const char *source, cs_buf *out);
/* Same, written to f. CS_EIO if the write fails. */
cs_rc cs_diags_print(cs_diags *d, const cJSON *doc, const char *source, FILE *f);

/* CS_OK if d holds no errors (warnings allowed). Otherwise fills err with CS_ESCHEMA and
 * "<path>: <message>" of the first error in the current order, followed by " (and N more errors)"
 * when there are others, and returns CS_ESCHEMA. Call cs_diags_sort first for document order. */
cs_rc cs_diags_to_err(const cs_diags *d, cs_err *err);

/* ---- checked walks: context + typed getters ---------------------------------------------- */

/* One walk over a document: the current path and where problems go. Every problem is added to
 * diags (when non-NULL) and the FIRST error is also written to err (when non-NULL), so the same
 * validation code serves "collect everything" (diags) and "fail fast" (err only: stop at the first
 * non-OK return). Embed by value; cs_jctx_init before use. */
typedef struct cs_jctx {
    cs_jpath path;   /* where the walk is: push before descending into a value, pop after */
    cs_diags *diags; /* borrowed, may be NULL */
    cs_err *err;     /* borrowed, may be NULL */
    size_t n_errors; /* errors reported through this context */
    cs_rc oom;       /* CS_ENOMEM once adding a diagnostic failed, else CS_OK */
} cs_jctx;

void cs_jctx_init(cs_jctx *c, cs_diags *diags, cs_err *err);

/* Reports an error at the current path (with child_key appended when non-NULL) about node (may
 * be NULL). Returns CS_ESCHEMA. */
cs_rc cs_jctx_error(cs_jctx *c, const cJSON *node, const char *child_key, const char *fmt, ...)
        CS_PRINTF(4, 5);
/* Reports a warning (diags only; err and n_errors untouched). Returns CS_OK. */
cs_rc cs_jctx_warn(cs_jctx *c, const cJSON *node, const char *child_key, const char *fmt, ...)
        CS_PRINTF(4, 5);

/* Getters of member `key` of object obj (obj must be a cJSON object; the current path of c is the
 * path of obj). They push key while checking and pop it before returning.
 *
 * - req_*: the key must be present. Missing: error "<obj path>: missing required key \"key\"".
 * - opt_*: a missing key, or a JSON null value, yields the default and CS_OK.
 * - A value of the wrong type: "<path>: expected a string, got 42" ("got" shows the value, cut at
 *   40 characters, or "an object", "an array").
 * Return CS_OK, or CS_ESCHEMA after reporting the problem through c. On any error *out is set to
 * the default (opt_*) or to 0/false/NULL (req_*), so a collecting walk can go on.
 * Strings and trees are returned borrowed, valid as long as the tree. */
cs_rc cs_json_req_string(cs_jctx *c, const cJSON *obj, const char *key, const char **out);
cs_rc cs_json_opt_string(cs_jctx *c, const cJSON *obj, const char *key, const char *def,
                         const char **out);
cs_rc cs_json_req_bool(cs_jctx *c, const cJSON *obj, const char *key, bool *out);
cs_rc cs_json_opt_bool(cs_jctx *c, const cJSON *obj, const char *key, bool def, bool *out);

/* Integers: a JSON number with an integral value in [min, max] (1, 1.0 and 1e0 are all 1; 1.5 is
 * refused: "expected an integer, got 1.5"). Out of range reads, depending on the bounds:
 * "expected a positive integer" (min 1, max INT64_MAX), "expected a non-negative integer" (min 0),
 * "expected an integer in 2..8", "expected an integer >= 3", "expected an integer <= 5".
 * Values beyond +-2^53 are refused (not exact in a double). */
cs_rc cs_json_req_int(cs_jctx *c, const cJSON *obj, const char *key, int64_t min, int64_t max,
                      int64_t *out);
cs_rc cs_json_opt_int(cs_jctx *c, const cJSON *obj, const char *key, int64_t def, int64_t min,
                      int64_t max, int64_t *out);

/* Numbers: any finite JSON number in [min, max] (inclusive; -INFINITY/INFINITY for none):
 * "expected a number in 0..1, got 1.5". */
cs_rc cs_json_req_number(cs_jctx *c, const cJSON *obj, const char *key, double min, double max,
                         double *out);
cs_rc cs_json_opt_number(cs_jctx *c, const cJSON *obj, const char *key, double def, double min,
                         double max, double *out);

/* Building: a new array of n numbers (NULL on no memory). */
cJSON *cs_json_size_array(const size_t *v, size_t n);
cJSON *cs_json_double_array(const double *v, size_t n);

/* Adds item (owned) to obj under key; false, with item freed, when item is NULL or on no memory. */
bool cs_json_add(cJSON *obj, const char *key, cJSON *item);
/* Adds the string v, or null when v is NULL; false on no memory. */
bool cs_json_add_str_or_null(cJSON *obj, const char *key, const char *v);
/* Adds the JSON value that the text json holds (a stored document), or null when json is NULL
 * or does not parse; false on no memory. */
bool cs_json_add_parsed(cJSON *obj, const char *key, const char *json);

/* Objects and arrays: *out is the member (borrowed); opt_* gives NULL when missing or null. */
cs_rc cs_json_req_object(cs_jctx *c, const cJSON *obj, const char *key, const cJSON **out);
cs_rc cs_json_opt_object(cs_jctx *c, const cJSON *obj, const char *key, const cJSON **out);
cs_rc cs_json_req_array(cs_jctx *c, const cJSON *obj, const char *key, const cJSON **out);
cs_rc cs_json_opt_array(cs_jctx *c, const cJSON *obj, const char *key, const cJSON **out);

/* Checks of a value at the current path of c (for array elements: push the index first). Same
 * messages and rules as the getters; v NULL is reported as "expected ..., got nothing". */
cs_rc cs_json_as_string(cs_jctx *c, const cJSON *v, const char **out);
cs_rc cs_json_as_bool(cs_jctx *c, const cJSON *v, bool *out);
cs_rc cs_json_as_int(cs_jctx *c, const cJSON *v, int64_t min, int64_t max, int64_t *out);
cs_rc cs_json_as_number(cs_jctx *c, const cJSON *v, double min, double max, double *out);
cs_rc cs_json_as_object(cs_jctx *c, const cJSON *v);
cs_rc cs_json_as_array(cs_jctx *c, const cJSON *v);

/* Reports every member of obj whose key is not in known[0..n_known) as
 * "<path>.<key>: unknown key" plus " (did you mean \"<suggestion>\"?)" when cs_json_suggest finds
 * one, with the given severity. Returns CS_OK if all keys are known or sev is a warning,
 * CS_ESCHEMA otherwise. */
cs_rc cs_json_check_keys(cs_jctx *c, const cJSON *obj, const char *const *known, size_t n_known,
                         cs_diag_severity sev);

/* ---- small utilities --------------------------------------------------------------------- */

/* Finds the first member of obj (in document order) whose key an earlier member already has:
 * *dup = that member (borrowed), or NULL when the keys are distinct or obj is not an object.
 * O(n log n) key comparisons for n members (a merge sort of the keys; small objects pairwise);
 * when n_cmp is non-NULL the comparisons made are ADDED to *n_cmp, so tests can count the work.
 * Returns CS_OK, or CS_ENOMEM (*dup NULL). */
cs_rc cs_json_find_duplicate(const cJSON *obj, const cJSON **dup, size_t *n_cmp);

/* "a string", "a number", "a boolean", "null", "an object", "an array", "an invalid value". */
const char *cs_json_type_name(const cJSON *v);

/* Writes a short description of v into buf (always NUL-terminated when n > 0): the JSON text of
 * scalars (42, 1.5, true, null, "abc"; strings longer than 40 bytes cut with "..."), "an object",
 * "an array", or "nothing" for NULL. Returns buf. */
char *cs_json_describe(const cJSON *v, char *buf, size_t n);

/* The known key closest to word by edit distance (Damerau, optimal string alignment; bytes), when
 * it is close enough: distance <= 1 for words up to 4 bytes, <= 2 up to 8, else <= 3, and always
 * less than the word's length. Ties go to the earlier entry; an exact match is not a suggestion
 * (NULL). Words or keys longer than 64 bytes are never matched. Returns a borrowed entry of known
 * or NULL. Example: "n_sample" -> "n_samples". */
const char *cs_json_suggest(const char *word, const char *const *known, size_t n_known);

/* true when s[0..n) is valid UTF-8 (no overlongs, surrogates or code points above U+10FFFF);
 * otherwise false and *bad_off (may be NULL) = offset of the first invalid byte. */
bool cs_utf8_valid(const char *s, size_t n, size_t *bad_off);

/* Edit distance used by cs_json_suggest, or SIZE_MAX when a string is longer than 64 bytes. */
size_t cs_json_edit_distance(const char *a, const char *b);

#endif
