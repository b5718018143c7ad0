/* cs_result.h - the result of one job attempt (schemas/result.schema.json): a typed struct, its
 * one decoder and its one canonical encoder.
 *
 * Why: the runner writes result.json, the worker reads it and sends it in RESULT, calsweepd
 * stores it. Each of them printed and parsed it its own way, and each checked the metrics (or did
 * not) differently. Now all three go through this file: the runner writes result.json with
 * cs_result_write_file, the worker reads it with cs_result_read_file and puts the struct into
 * RESULT (cs_proto.h encodes and decodes it with cs_result_to_json / cs_result_from_json), and
 * calsweepd stores cs_result_encode's text and the metrics of the struct.
 *
 * What the decoder accepts: a JSON object with "metrics" (required): task name -> object of
 * metric name -> finite number, where the member "n" (items scored) is an integer >= 0. A metric
 * written as null (a runner's NaN or infinity: JSON has neither) is refused with CS_ERANGE, any
 * other wrong type with CS_ESCHEMA, more than CS_LIMIT_RESULT_METRICS metric values in all with
 * CS_ETOOBIG; each message names the JSON path ("metrics.wiki.ppl: ..."). The other members of
 * the runner contract (version, job_key, calibration, timings, peak_rss_mb, engine_version, host,
 * threads, started_ms, ended_ms, extra) are typed and checked when present; calsweep-run writes
 * them all, an exec backend may write only "metrics". "worker" and "log_path" are what
 * calsweep-worker adds (provenance). Members the contract does not name are kept as they are
 * ("others"), so an exec backend's own keys reach the store as before.
 *
 * Version 2 adds "items": per task (the names of "metrics"), the outcome of every scored item in
 * the order of the job's (seeded) item sample, so that two jobs that scored the same sample can be
 * compared item by item (issue 19; docs/architecture.md, the runner contract):
 *   multiple choice:  {"n", "sample", "acc", "margin"[, "acc_norm", "acc_bytes"]}
 *   generation:       {"n", "sample", "exact_match"[, "exact_match_flex"]}
 *   perplexity:       {"n", "sample", "window_loss"}
 * "sample" is the hex SHA-256 of what was scored (cs_result_sample); a bitset is the base64
 * (RFC 4648, padded) of ceil(n/8) bytes, item i being bit (i & 7) of byte i >> 3, the bits past
 * item n-1 zero; a float array ("margin": LL(gold) - max LL of the other choices; "window_loss":
 * a perplexity window's mean loss in nats) is the base64 of n little-endian IEEE float32, each
 * finite. A base64 text that is not the canonical one of its bytes, a bitset or array of the
 * wrong length, a member the task kind does not have, items whose task has no metrics, items in
 * a document whose version is not 2, more than CS_LIMIT_RESULT_ITEMS items in all: refused,
 * naming the path ("items.arith_mc.acc: ..."). Version 1 documents decode with n_items 0.
 *
 * The canonical text (cs_result_encode) is cs_canon's form of the document: sorted keys, no
 * whitespace, the canonical number rule. Encoding a decoded result gives the canonical text of
 * the input; decoding that and encoding again gives the same bytes.
 */
#ifndef CS_COMMON_CS_RESULT_H
#define CS_COMMON_CS_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cs_err.h"
#include "cs_json.h"
#include "cs_limits.h"

/* One named number: a metric of a task, or a stage's seconds in timings. */
typedef struct cs_result_value {
    char *name;
    double value; /* finite */
} cs_result_value;

/* The metrics of one task ("arith_mc", "ppl:heldout"). */
typedef struct cs_result_task {
    char *name;
    bool has_n;
    int64_t n;                /* items, windows or tokens scored; when has_n */
    cs_result_value *metrics; /* sorted by name (strcmp), so "acc_stderr" is a bsearch away */
    size_t n_metrics;
} cs_result_task;

/* The per-item outcomes of one task (version 2, "items"). */
typedef struct cs_result_items {
    const char *task; /* borrowed: the decoder points it at the cs_result_task's name */
    char sample[65];  /* hex SHA-256 of the ordered item sample (cs_result_sample) */
    size_t n;         /* items, or windows for perplexity */
    /* NULL where the task kind has no such outcome; bitsets hold ceil(n/8) bytes */
    uint8_t *acc, *acc_norm, *acc_bytes, *exact_match, *exact_match_flex; /* owned */
    float *margin, *window_loss;                                          /* owned, n */
} cs_result_items;

/* result.json. Strings are owned and NULL when absent; JSON texts are canonical. A zeroed struct
 * is a valid result with no metrics. */
typedef struct cs_result {
    int64_t version;       /* 1 or 2 (with items); 0 = absent */
    char *job_key;         /* 64 lowercase hex digits */
    cs_result_task *tasks; /* "metrics", in the order read */
    size_t n_tasks;
    char *calibration; /* an object's text, or "null" (calibration-free algorithms) */
    bool has_timings;
    cs_result_value *timings; /* seconds per stage, >= 0 */
    size_t n_timings;
    bool has_peak_rss_mb;
    double peak_rss_mb; /* >= 0 */
    char *engine_version, *host;
    int64_t threads; /* >= 1; 0 = absent */
    bool has_started_ms, has_ended_ms;
    int64_t started_ms, ended_ms; /* ms since the epoch, >= 0 */
    char *extra;                  /* an object's text: free-form details */
    char *worker;                 /* the worker that ran it (calsweep-worker adds it) */
    char *log_path;               /* the attempt's stderr.log on the worker's machine (idem) */
    char *others;                 /* an object's text: members the contract does not name */
    cs_result_items *items;       /* owned, n_items; version 2 only, in the order read */
    size_t n_items;
} cs_result;

/* Frees everything r owns and zeroes it. NULL-safe; safe on zeroed memory. */
void cs_result_fini(cs_result *r);

/* Decodes the JSON value v into *r (overwritten; zeroed on error). The path of c is the path of
 * v (push "RESULT.result" before, for example); errors are reported through c and returned:
 * CS_ESCHEMA, CS_ERANGE (a metric that is null or not finite), CS_ETOOBIG (more than
 * CS_LIMIT_RESULT_METRICS metric values), CS_ENOMEM. */
cs_rc cs_result_from_json(cs_jctx *c, const cJSON *v, cs_result *r);

/* Decodes JSON text (len bytes, need not be NUL-terminated); errors as cs_result_from_json plus
 * CS_EPARSE, each message naming the path below the document ("metrics.wiki.ppl: ..."). */
cs_rc cs_result_decode(const char *text, size_t len, cs_result *r, cs_err *err);

/* Reads and decodes the file at path (at most CS_LIMIT_MSG_BYTES): errors as cs_result_decode,
 * plus CS_EIO / CS_ENOENT / CS_ETOOBIG reading it. */
cs_rc cs_result_read_file(const char *path, cs_result *r, cs_err *err);

/* The document as a new cJSON tree (*out, owned). CS_EINVAL naming the member for a struct the
 * decoder would refuse (NULL name, non-finite value, JSON text that is not an object...). */
cs_rc cs_result_to_json(const cs_result *r, cJSON **out, cs_err *err);

/* The canonical text (owned, NUL-terminated; *len may be NULL). Errors as cs_result_to_json. */
cs_rc cs_result_encode(const cs_result *r, char **out, size_t *len, cs_err *err);

/* Writes the canonical text and a newline to path, atomically (temporary file + rename). */
cs_rc cs_result_write_file(const char *path, const cs_result *r, cs_err *err);

/* The metric name of task t, or NULL (O(log n)). */
const cs_result_value *cs_result_metric(const cs_result_task *t, const char *name);

/* Metric values in all tasks (the number CS_LIMIT_RESULT_METRICS bounds). */
size_t cs_result_count_metrics(const cs_result *r);

/* ---- per-item outcomes ----------------------------------------------------------------------- */

/* Bytes of a bitset of n items: ceil(n / 8). */
size_t cs_result_bits_bytes(size_t n);

/* Item i of a bitset (bit i & 7 of byte i >> 3), and setting it. */
bool cs_result_bit(const uint8_t *bits, size_t i);
void cs_result_bit_set(uint8_t *bits, size_t i, bool v);

/* The items of task in r, or NULL (linear: a result has few tasks). */
const cs_result_items *cs_result_find_items(const cs_result *r, const char *task);

/* Items in all tasks (the number CS_LIMIT_RESULT_ITEMS bounds). */
size_t cs_result_count_items(const cs_result *r);

/* The "sample" of n scored items: hex SHA-256 of ids[0..n) joined by "\n" (no final newline)
 * into out. Two jobs pair item by item iff their samples are equal. CS_EINTERNAL on a hashing
 * failure. */
cs_rc cs_result_sample(const char *const *ids, size_t n, char out[65], cs_err *err);

/* Frees the outcomes one cs_result_items owns and zeroes it (task is borrowed). NULL-safe. */
void cs_result_items_fini(cs_result_items *it);

#endif
