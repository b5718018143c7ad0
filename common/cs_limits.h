/* cs_limits.h - the one table of limits (sizes, counts, durations) that the sweep validator, the
 * protocol codec, calsweepd, the worker and the runner all read.
 *
 * Why: a limit checked in several places with different bounds lets a value pass the first check
 * and fail at a later one, where nobody can tell the user which field was wrong (a timeout that
 * validated but could not be encoded in a JOB message stalled a whole daemon). Each bound is
 * defined here once; the compile-time checks at the end make the chain hold: whatever the
 * validator accepts fits in a message, and every message fits what the receiver accepts.
 *
 * Chain of sizes: a sweep file of at most CS_LIMIT_SWEEP_BYTES, whose canonical text is at most
 * the same, travels in SUBMIT/EXTEND/PLAN with at most CS_LIMIT_MSG_ENVELOPE bytes around it; a
 * job config (at most CS_LIMIT_JOB_CONFIG_BYTES, checked at expansion) travels in JOB the same
 * way; a message is at most CS_LIMIT_MSG_BYTES (encoder and decoder), and sockets accept
 * CS_LIMIT_MSG_RECV_BYTES (NNG_OPT_RECVMAXSZ: the message plus nng's own header), so nng never
 * drops a message the encoder produced.
 *
 * Numeric fields of a sweep file: CS_LIMIT_FIELDS lists each with its JSON path (as the validator
 * reports it), its smallest and largest accepted value. The validator refuses anything outside
 * with that path; the codec (JOB.timeout_s) and the runner (cs_job_check_limits, before it loads
 * anything) accept the same range, and tests walk the table (tests/unit/limits_test.c: the max
 * validates, every job round-trips through JOB and passes the runner's check; max + 1 is refused
 * naming the path).
 */
#ifndef CS_COMMON_CS_LIMITS_H
#define CS_COMMON_CS_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* ---- sizes (bytes) ----------------------------------------------------------------------- */

#define CS_LIMIT_MSG_BYTES      ((size_t)8 << 20)           /* one protocol message, encoded */
#define CS_LIMIT_MSG_RECV_BYTES (CS_LIMIT_MSG_BYTES + 4096) /* NNG_OPT_RECVMAXSZ */
#define CS_LIMIT_MSG_ENVELOPE   ((size_t)64 << 10) /* a message's fields around one document */
#define CS_LIMIT_SWEEP_BYTES    ((size_t)4 << 20)  /* a sweep file, and its canonical text */
#define CS_LIMIT_JOB_CONFIG_BYTES                                       \
    (CS_LIMIT_MSG_BYTES - CS_LIMIT_MSG_ENVELOPE)      /* one job config \
                                                       */
#define CS_LIMIT_TEXT_BYTES        ((size_t)16 << 10) /* log_tail, FAIL.reason, ERROR.message */
#define CS_LIMIT_NAME_BYTES        256                /* worker, host, stage, token, sweep refs */
#define CS_LIMIT_LIST_ITEMS        1024               /* items of a capabilities list */
#define CS_LIMIT_JSON_DEPTH        64    /* nesting of any JSON text cs_json_parse reads */
#define CS_LIMIT_RESULT_METRICS    16384 /* metric values of a result (all tasks), and its tasks */
#define CS_LIMIT_RESULT_ITEMS      ((size_t)1 << 19) /* item outcomes, one result */
#define CS_LIMIT_RESULT_ITEM_BYTES 6 /* base64 of one item at most: 3 bits + a float32 */

/* ---- counts, durations and amounts: the numeric fields of a sweep file -------------------- */

#define CS_LIMIT_INT_EXACT      (INT64_C(1) << 53) /* integers beyond are not exact in a double */
#define CS_LIMIT_N_SAMPLES      (INT64_C(1) << 20) /* calibration samples of a job */
#define CS_LIMIT_SEQ_LEN        (INT64_C(1) << 20) /* tokens per sample or perplexity window */
#define CS_LIMIT_SEED           (CS_LIMIT_INT_EXACT - 1) /* every seed below is exact */
#define CS_LIMIT_EVAL_ITEMS     (INT64_C(1) << 24)       /* eval "limit": items scored per task */
#define CS_LIMIT_PPL_WINDOWS    (INT64_C(1) << 24)       /* perplexity max_windows */
#define CS_LIMIT_FEWSHOT        64                       /* shots before each eval item */
#define CS_LIMIT_MEM_MB         (INT64_C(1) << 24)       /* requires.mem_mb: 16 TiB */
#define CS_LIMIT_GPUS           1024               /* requires.gpus (= GPUs a worker can list) */
#define CS_LIMIT_TIMEOUT_S      (30 * 86400)       /* policy.timeout_s and JOB.timeout_s */
#define CS_LIMIT_LEASE_S        (7 * 86400)        /* calsweepd --lease-s and JOB.lease_s */
#define CS_LIMIT_BACKOFF_S      86400              /* policy.backoff_s */
#define CS_LIMIT_BACKOFF_MAX_S  (7 * 86400)        /* policy.backoff_max_s */
#define CS_LIMIT_RESAMPLES      1000000            /* RESULTS.resamples (bootstrap) */
#define CS_LIMIT_ATTEMPTS       100                /* policy.max_attempts */
#define CS_LIMIT_PRIORITY       1000000            /* policy.priority in -this..this */
#define CS_LIMIT_MAX_RUNNING    1000000            /* policy.max_running */
#define CS_LIMIT_AXIS_VALUES    100000             /* values of one axis after ranges expand */
#define CS_LIMIT_EXCLUDE_TESTS  (INT64_C(1) << 24) /* exclude conditions x values of their axes */
#define CS_LIMIT_EXCLUDE_WORK   (INT64_C(1) << 31) /* grid cells x exclude patterns to check */
#define CS_LIMIT_INCLUDE_VALUES (INT64_C(1) << 24) /* include cells x axes */

/* X(name, path as the validator reports it, min, max): every integer field of a sweep file with
 * a bound of this table. In paths, "S" stands for a name (of a model, eval suite, task or text). */
#define CS_LIMIT_FIELDS(X)                                                          \
    X(N_SAMPLES, "grid.n_samples[0]", 1, CS_LIMIT_N_SAMPLES)                        \
    X(SEQ_LEN, "grid.seq_len[0]", 2, CS_LIMIT_SEQ_LEN)                              \
    X(SEED, "grid.seed[0]", 0, CS_LIMIT_SEED)                                       \
    X(MEM_MB, "models.S.requires.mem_mb", 0, CS_LIMIT_MEM_MB)                       \
    X(GPUS, "models.S.requires.gpus", 0, CS_LIMIT_GPUS)                             \
    X(EVAL_LIMIT, "data.eval.S.limit", 0, CS_LIMIT_EVAL_ITEMS)                      \
    X(TASK_LIMIT, "data.eval.S.tasks.S.limit", 0, CS_LIMIT_EVAL_ITEMS)              \
    X(EVAL_FEWSHOT, "data.eval.S.fewshot", 0, CS_LIMIT_FEWSHOT)                     \
    X(TASK_FEWSHOT, "data.eval.S.tasks.S.fewshot", 0, CS_LIMIT_FEWSHOT)             \
    X(PPL_SEQ_LEN, "data.eval.S.perplexity.S.seq_len", 2, CS_LIMIT_SEQ_LEN)         \
    X(PPL_WINDOWS, "data.eval.S.perplexity.S.max_windows", 0, CS_LIMIT_PPL_WINDOWS) \
    X(TIMEOUT_S, "policy.timeout_s", 0, CS_LIMIT_TIMEOUT_S)                         \
    X(BACKOFF_S, "policy.backoff_s", 0, CS_LIMIT_BACKOFF_S)                         \
    X(BACKOFF_MAX_S, "policy.backoff_max_s", 0, CS_LIMIT_BACKOFF_MAX_S)             \
    X(ATTEMPTS, "policy.max_attempts", 1, CS_LIMIT_ATTEMPTS)                        \
    X(PRIORITY, "policy.priority", -CS_LIMIT_PRIORITY, CS_LIMIT_PRIORITY)           \
    X(MAX_RUNNING, "policy.max_running", 0, CS_LIMIT_MAX_RUNNING)

/* ---- the chain, checked at compile time ------------------------------------------------- */

_Static_assert(CS_LIMIT_SWEEP_BYTES + CS_LIMIT_MSG_ENVELOPE <= CS_LIMIT_MSG_BYTES,
               "a sweep document must fit in SUBMIT");
_Static_assert(CS_LIMIT_JOB_CONFIG_BYTES + CS_LIMIT_MSG_ENVELOPE <= CS_LIMIT_MSG_BYTES,
               "a job config must fit in JOB");
_Static_assert(CS_LIMIT_MSG_RECV_BYTES > CS_LIMIT_MSG_BYTES, "sockets must accept every message");
_Static_assert(3 * CS_LIMIT_TEXT_BYTES + 16 * CS_LIMIT_NAME_BYTES < CS_LIMIT_MSG_ENVELOPE,
               "texts and names fit in the envelope");
_Static_assert(CS_LIMIT_TIMEOUT_S <= CS_LIMIT_INT_EXACT / 1000, "timeouts in ms stay exact");
_Static_assert(CS_LIMIT_GPUS <= CS_LIMIT_LIST_ITEMS, "a worker can list as many GPUs");
_Static_assert(CS_LIMIT_RESULT_METRICS * 64 < CS_LIMIT_MSG_BYTES / 2,
               "a result of short-named metrics fits in RESULT");
_Static_assert(CS_LIMIT_MSG_BYTES / 2 - CS_LIMIT_MSG_ENVELOPE >
                       CS_LIMIT_RESULT_ITEMS * CS_LIMIT_RESULT_ITEM_BYTES,
               "a result's per-item outcomes fit in RESULT beside its metrics");

#endif
