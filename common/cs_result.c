/* cs_result.c - result.json's struct, decoder and canonical encoder (see cs_result.h).
 *
 * The decoder walks the document with cs_json's checked getters (fail fast, the path in every
 * message); the encoder builds a cJSON tree and prints it with cs_canon, so the text of a result
 * is one function of the struct wherever it is made.
 */
#include "cs_result.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/base64.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_path.h"

/* The members result.schema.json names, and the two calsweep-worker adds. */
static const char *const KNOWN[] = {"version", "job_key",     "metrics",        "calibration",
                                    "timings", "peak_rss_mb", "engine_version", "host",
                                    "threads", "started_ms",  "ended_ms",       "extra",
                                    "worker",  "log_path",    "items"};
#define N_KNOWN (sizeof(KNOWN) / sizeof(KNOWN[0]))

/* The outcomes of "items": bitsets, then float32 arrays; FIELD_KEYS[k] is bit k of a mask. */
static const char *const FIELD_KEYS[] = {
        "acc", "acc_norm", "acc_bytes", "exact_match", "exact_match_flex", "margin", "window_loss"};
#define N_BITSETS 5
#define N_FIELDS  (sizeof(FIELD_KEYS) / sizeof(FIELD_KEYS[0]))
enum {
    F_ACC = 1u << 0,
    F_ACC_NORM = 1u << 1,
    F_ACC_BYTES = 1u << 2,
    F_EM = 1u << 3,
    F_EM_FLEX = 1u << 4,
    F_MARGIN = 1u << 5,
    F_WLOSS = 1u << 6
};

/* The task kinds: the outcomes each requires and those it may have. */
static const struct {
    unsigned need, allow;
} KINDS[] = {
        {F_ACC | F_MARGIN, F_ACC | F_MARGIN | F_ACC_NORM | F_ACC_BYTES}, /* multiple choice */
        {F_EM, F_EM | F_EM_FLEX},                                        /* generation */
        {F_WLOSS, F_WLOSS},                                              /* perplexity */
};

/* Field k of it (k < N_BITSETS: a bitset, else a float array, as a byte pointer's address). */
static void **field(cs_result_items *it, size_t k)
{
    void **f[] = {
            (void **)&it->acc,         (void **)&it->acc_norm,         (void **)&it->acc_bytes,
            (void **)&it->exact_match, (void **)&it->exact_match_flex, (void **)&it->margin,
            (void **)&it->window_loss};
    return f[k];
}

static const void *field_c(const cs_result_items *it, size_t k)
{
    const void *f[] = {it->acc,         it->acc_norm,         it->acc_bytes,
                       it->exact_match, it->exact_match_flex, it->margin,
                       it->window_loss};
    return f[k];
}

/* ---- fini ---------------------------------------------------------------------------------- */

static void values_free(cs_result_value *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        free(v[i].name);
    }
    free(v);
}

void cs_result_items_fini(cs_result_items *it)
{
    if (it == NULL) {
        return;
    }
    for (size_t k = 0; k < N_FIELDS; k++) {
        free(*field(it, k));
    }
    memset(it, 0, sizeof *it);
}

void cs_result_fini(cs_result *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; r->items != NULL && i < r->n_items; i++) {
        cs_result_items_fini(&r->items[i]);
    }
    free(r->items);
    for (size_t i = 0; r->tasks != NULL && i < r->n_tasks; i++) {
        free(r->tasks[i].name);
        values_free(r->tasks[i].metrics, r->tasks[i].n_metrics);
    }
    free(r->tasks);
    values_free(r->timings, r->n_timings);
    char **strs[] = {&r->job_key, &r->calibration, &r->engine_version, &r->host,
                     &r->extra,   &r->worker,      &r->log_path,       &r->others};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        free(*strs[i]);
    }
    memset(r, 0, sizeof *r);
}

/* ---- decoding ------------------------------------------------------------------------------ */

static cs_rc oom(cs_jctx *c)
{
    return cs_err_set(c->err, CS_ENOMEM, 0, "result: out of memory");
}

static cs_rc dup_str(cs_jctx *c, const char *s, char **dst)
{
    *dst = cs_strdup(s);
    return *dst != NULL ? CS_OK : oom(c);
}

/* A member name of metrics or timings: 1..CS_LIMIT_NAME_BYTES bytes. */
static cs_rc check_name(cs_jctx *c, const cJSON *v)
{
    size_t n = strlen(v->string);
    if (n == 0 || n > CS_LIMIT_NAME_BYTES) {
        return cs_jctx_error(c, v, NULL, "a name of 1..%d bytes, got %zu bytes",
                             CS_LIMIT_NAME_BYTES, n);
    }
    return CS_OK;
}

/* The value v of a metric at the current path: a finite number. */
static cs_rc metric_value(cs_jctx *c, const cJSON *v, double *out)
{
    if (cJSON_IsNull(v) || (cJSON_IsNumber(v) && !isfinite(v->valuedouble))) {
        cs_jctx_error(c, v, NULL,
                      "not a finite number (null: the runner computed NaN or "
                      "infinity)");
        if (c->err != NULL) {
            c->err->rc = CS_ERANGE;
        }
        return CS_ERANGE;
    }
    if (!cJSON_IsNumber(v)) {
        char d[64];
        return cs_jctx_error(c, v, NULL, "expected a finite number, got %s",
                             cs_json_describe(v, d, sizeof d));
    }
    *out = v->valuedouble;
    return CS_OK;
}

static int value_cmp(const void *a, const void *b)
{
    return strcmp(((const cs_result_value *)a)->name, ((const cs_result_value *)b)->name);
}

static int value_key_cmp(const void *key, const void *b)
{
    return strcmp(key, ((const cs_result_value *)b)->name);
}

/* One task's object: "n" and the metrics, counted into *budget (metric values left). */
static cs_rc decode_task(cs_jctx *c, const cJSON *v, cs_result_task *t, size_t *budget)
{
    cs_rc rc = cs_json_as_object(c, v);
    size_t n = 0;
    if (rc == CS_OK) {
        rc = check_name(c, v);
    }
    if (rc == CS_OK) {
        rc = dup_str(c, v->string, &t->name);
    }
    for (const cJSON *m = v != NULL ? v->child : NULL; rc == CS_OK && m != NULL; m = m->next) {
        n += strcmp(m->string, "n") != 0;
    }
    if (rc != CS_OK) {
        return rc;
    }
    if (n > *budget) {
        cs_jctx_error(c, v, NULL, "more than %d metric values in one result",
                      CS_LIMIT_RESULT_METRICS);
        if (c->err != NULL) {
            c->err->rc = CS_ETOOBIG;
        }
        return CS_ETOOBIG;
    }
    *budget -= n;
    t->metrics = cs_calloc_array(n > 0 ? n : 1, sizeof *t->metrics);
    if (t->metrics == NULL) {
        return oom(c);
    }
    for (const cJSON *m = v->child; rc == CS_OK && m != NULL; m = m->next) {
        cs_jpath_push_key(&c->path, m->string);
        if (strcmp(m->string, "n") == 0) {
            t->has_n = true;
            rc = cs_json_as_int(c, m, 0, CS_LIMIT_INT_EXACT, &t->n);
        } else {
            cs_result_value *out = &t->metrics[t->n_metrics];
            rc = check_name(c, m);
            if (rc == CS_OK) {
                rc = metric_value(c, m, &out->value);
            }
            if (rc == CS_OK && (rc = dup_str(c, m->string, &out->name)) == CS_OK) {
                t->n_metrics++;
            }
        }
        cs_jpath_pop(&c->path);
    }
    if (rc == CS_OK) {
        qsort(t->metrics, t->n_metrics, sizeof *t->metrics, value_cmp);
    }
    return rc;
}

static cs_rc decode_metrics(cs_jctx *c, const cJSON *doc, cs_result *r)
{
    const cJSON *mo = NULL;
    size_t budget = CS_LIMIT_RESULT_METRICS, n = 0;
    cs_rc rc = cs_json_req_object(c, doc, "metrics", &mo);
    if (rc != CS_OK) {
        return rc;
    }
    for (const cJSON *t = mo->child; t != NULL; t = t->next) {
        n++;
    }
    if (n > CS_LIMIT_RESULT_METRICS) {
        n = CS_LIMIT_RESULT_METRICS + 1; /* the budget refuses it below */
    }
    r->tasks = cs_calloc_array(n > 0 ? n : 1, sizeof *r->tasks);
    if (r->tasks == NULL) {
        return oom(c);
    }
    cs_jpath_push_key(&c->path, "metrics");
    for (const cJSON *t = mo->child; rc == CS_OK && t != NULL; t = t->next) {
        if (r->n_tasks == n) {
            rc = cs_jctx_error(c, mo, NULL, "more than %d tasks", CS_LIMIT_RESULT_METRICS);
            break;
        }
        cs_jpath_push_key(&c->path, t->string);
        r->n_tasks++;
        rc = decode_task(c, t, &r->tasks[r->n_tasks - 1], &budget);
        cs_jpath_pop(&c->path);
    }
    cs_jpath_pop(&c->path);
    return rc;
}

static cs_rc decode_timings(cs_jctx *c, const cJSON *doc, cs_result *r)
{
    const cJSON *to = NULL;
    size_t n = 0;
    cs_rc rc = cs_json_opt_object(c, doc, "timings", &to);
    if (rc != CS_OK || to == NULL) {
        return rc;
    }
    r->has_timings = true;
    for (const cJSON *t = to->child; t != NULL; t = t->next) {
        n++;
    }
    if (n > CS_LIMIT_RESULT_METRICS) {
        cs_jpath_push_key(&c->path, "timings");
        rc = cs_jctx_error(c, to, NULL, "more than %d stages", CS_LIMIT_RESULT_METRICS);
        cs_jpath_pop(&c->path);
        return rc;
    }
    r->timings = cs_calloc_array(n > 0 ? n : 1, sizeof *r->timings);
    if (r->timings == NULL) {
        return oom(c);
    }
    cs_jpath_push_key(&c->path, "timings");
    for (const cJSON *t = to->child; rc == CS_OK && t != NULL; t = t->next) {
        cs_result_value *out = &r->timings[r->n_timings];
        cs_jpath_push_key(&c->path, t->string);
        rc = check_name(c, t);
        if (rc == CS_OK) {
            rc = cs_json_as_number(c, t, 0, INFINITY, &out->value);
        }
        if (rc == CS_OK && (rc = dup_str(c, t->string, &out->name)) == CS_OK) {
            r->n_timings++;
        }
        cs_jpath_pop(&c->path);
    }
    cs_jpath_pop(&c->path);
    return rc;
}

/* Canonical text of member key (an object, or also null when null_ok) into *dst; NULL when
 * absent. */
static cs_rc decode_json(cs_jctx *c, const cJSON *doc, const char *key, bool null_ok, char **dst)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    cs_err e = {0};
    if (v == NULL || (cJSON_IsNull(v) && !null_ok)) {
        return CS_OK;
    }
    if (!cJSON_IsObject(v) && !cJSON_IsNull(v)) {
        char d[64];
        return cs_jctx_error(c, v, key, "expected an object%s, got %s", null_ok ? " or null" : "",
                             cs_json_describe(v, d, sizeof d));
    }
    cs_rc rc = cs_canon_string(v, dst, NULL, &e);
    if (rc == CS_ENOMEM) {
        return oom(c);
    }
    return rc == CS_OK ? CS_OK : cs_jctx_error(c, v, key, "%s", e.msg);
}

/* An optional string member of 1..max bytes into *dst. */
static cs_rc decode_string(cs_jctx *c, const cJSON *doc, const char *key, size_t max, char **dst)
{
    const char *s = NULL;
    cs_rc rc = cs_json_opt_string(c, doc, key, NULL, &s);
    if (rc != CS_OK || s == NULL) {
        return rc;
    }
    if (s[0] == '\0' || strlen(s) > max) {
        return cs_jctx_error(c, cJSON_GetObjectItemCaseSensitive(doc, key), key,
                             "expected a string of 1..%zu bytes", max);
    }
    return dup_str(c, s, dst);
}

static bool hex64(const char *s)
{
    size_t i = 0;
    for (; s[i] != '\0'; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return i == 64;
}

/* The members the contract does not name, as one object's canonical text (NULL when none). */
static cs_rc decode_others(cs_jctx *c, const cJSON *doc, cs_result *r)
{
    cJSON *o = NULL;
    cs_rc rc = CS_OK;
    for (const cJSON *m = doc->child; rc == CS_OK && m != NULL; m = m->next) {
        bool known = false;
        for (size_t i = 0; i < N_KNOWN && !known; i++) {
            known = strcmp(m->string, KNOWN[i]) == 0;
        }
        if (known) {
            continue;
        }
        cJSON *dup = cJSON_Duplicate(m, true);
        if ((o == NULL && (o = cJSON_CreateObject()) == NULL) || dup == NULL ||
            !cJSON_AddItemToObject(o, m->string, dup)) {
            cJSON_Delete(dup);
            rc = oom(c);
        }
    }
    if (rc == CS_OK && o != NULL) {
        cs_err e = {0};
        rc = cs_canon_string(o, &r->others, NULL, &e);
        rc = rc == CS_OK       ? CS_OK
             : rc == CS_ENOMEM ? oom(c)
                               : cs_jctx_error(c, doc, NULL, "%s", e.msg);
    }
    cJSON_Delete(o);
    return rc;
}

/* The scalar members of the runner contract. */
static cs_rc decode_scalars(cs_jctx *c, const cJSON *doc, cs_result *r)
{
    const cJSON *v;
    cs_rc rc = cs_json_opt_int(c, doc, "version", 0, 1, 2, &r->version);
    if (rc == CS_OK) {
        rc = decode_string(c, doc, "job_key", 64, &r->job_key);
    }
    if (rc == CS_OK && r->job_key != NULL && !hex64(r->job_key)) {
        rc = cs_jctx_error(c, cJSON_GetObjectItemCaseSensitive(doc, "job_key"), "job_key",
                           "expected 64 lowercase hex digits");
    }
    if (rc == CS_OK && (v = cJSON_GetObjectItemCaseSensitive(doc, "peak_rss_mb")) != NULL &&
        !cJSON_IsNull(v)) {
        r->has_peak_rss_mb = true;
        rc = cs_json_req_number(c, doc, "peak_rss_mb", 0, INFINITY, &r->peak_rss_mb);
    }
    if (rc == CS_OK) {
        rc = decode_string(c, doc, "engine_version", CS_LIMIT_NAME_BYTES, &r->engine_version);
    }
    if (rc == CS_OK) {
        rc = decode_string(c, doc, "host", CS_LIMIT_NAME_BYTES, &r->host);
    }
    if (rc == CS_OK) {
        rc = cs_json_opt_int(c, doc, "threads", 0, 1, 1 << 20, &r->threads);
    }
    if (rc == CS_OK && (v = cJSON_GetObjectItemCaseSensitive(doc, "started_ms")) != NULL &&
        !cJSON_IsNull(v)) {
        r->has_started_ms = true;
        rc = cs_json_req_int(c, doc, "started_ms", 0, CS_LIMIT_INT_EXACT, &r->started_ms);
    }
    if (rc == CS_OK && (v = cJSON_GetObjectItemCaseSensitive(doc, "ended_ms")) != NULL &&
        !cJSON_IsNull(v)) {
        r->has_ended_ms = true;
        rc = cs_json_req_int(c, doc, "ended_ms", 0, CS_LIMIT_INT_EXACT, &r->ended_ms);
    }
    if (rc == CS_OK) {
        rc = decode_string(c, doc, "worker", CS_LIMIT_NAME_BYTES, &r->worker);
    }
    if (rc == CS_OK) {
        rc = decode_string(c, doc, "log_path", CS_LIMIT_TEXT_BYTES, &r->log_path);
    }
    return rc;
}

/* ---- per-item outcomes ("items", version 2) ------------------------------------------------ */

size_t cs_result_bits_bytes(size_t n)
{
    return n / 8 + (n % 8 != 0);
}

bool cs_result_bit(const uint8_t *bits, size_t i)
{
    return (bits[i >> 3] >> (i & 7)) & 1u;
}

void cs_result_bit_set(uint8_t *bits, size_t i, bool v)
{
    uint8_t m = (uint8_t)(1u << (i & 7));
    bits[i >> 3] = v ? (uint8_t)(bits[i >> 3] | m) : (uint8_t)(bits[i >> 3] & ~m);
}

/* Characters of the padded base64 of n bytes. */
static size_t b64_len(size_t n)
{
    return 4 * (n / 3 + (n % 3 != 0));
}

/* The base64 text at the current path: exactly the canonical encoding of want bytes, decoded
 * into *out (owned, want bytes, at least 1 allocated). what says what the bytes hold. */
static cs_rc decode_b64(cs_jctx *c, const cJSON *v, size_t want, const char *what, uint8_t **out)
{
    const char *s = NULL;
    char *again = NULL;
    size_t olen = 0, len, cap;
    cs_rc rc = cs_json_as_string(c, v, &s);
    if (rc != CS_OK) {
        return rc;
    }
    len = strlen(s);
    cap = len / 4 * 3 + 3;
    *out = cs_alloc_array(cap, 1);
    again = cs_alloc_array(len + 1, 1);
    if (*out == NULL || again == NULL) {
        free(again);
        return oom(c);
    }
    again[0] = '\0';
    if (mbedtls_base64_decode(*out, cap, &olen, (const unsigned char *)s, len) != 0) {
        rc = cs_jctx_error(c, v, NULL, "not base64 (RFC 4648, padded)");
    } else if (olen != want) {
        rc = cs_jctx_error(c, v, NULL, "%s takes %zu bytes (%zu base64 characters), got %zu bytes",
                           what, want, b64_len(want), olen);
    } else if ((olen > 0 &&
                mbedtls_base64_encode((unsigned char *)again, len + 1, &olen, *out, want) != 0) ||
               strcmp(again, s) != 0) {
        rc = cs_jctx_error(c, v, NULL, "not the canonical base64 of its bytes");
    }
    free(again);
    return rc;
}

/* Outcome k of it from v (the current path): a bitset with no bit past item n-1, or n finite
 * little-endian float32. */
static cs_rc decode_field(cs_jctx *c, const cJSON *v, size_t k, cs_result_items *it)
{
    char what[96];
    uint8_t *b = NULL;
    size_t bytes = k < N_BITSETS ? cs_result_bits_bytes(it->n) : 4 * it->n;
    snprintf(what, sizeof what, k < N_BITSETS ? "a bitset of %zu items" : "%zu float32", it->n);
    cs_rc rc = decode_b64(c, v, bytes, what, &b);
    if (rc != CS_OK) {
        free(b);
        return rc;
    }
    *field(it, k) = b;
    if (k < N_BITSETS) {
        if (it->n % 8 != 0 && (b[bytes - 1] >> (it->n % 8)) != 0) {
            return cs_jctx_error(c, v, NULL, "bits past item %zu are set", it->n - 1);
        }
        return CS_OK;
    }
    float *f = (float *)b; /* malloc's alignment suits float; converted in place */
    for (size_t i = 0; i < it->n; i++) {
        const uint8_t *p = b + 4 * i;
        uint32_t u =
                (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&f[i], &u, sizeof u);
        if (!isfinite(f[i])) {
            cs_jctx_error(c, v, NULL, "value %zu is not finite", i);
            if (c->err != NULL) {
                c->err->rc = CS_ERANGE;
            }
            return CS_ERANGE;
        }
    }
    return CS_OK;
}

/* The mask of outcomes present must be one task kind's. */
static cs_rc check_kind(cs_jctx *c, const cJSON *v, unsigned mask)
{
    for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++) {
        if ((mask & KINDS[i].need) == KINDS[i].need && (mask & ~KINDS[i].allow) == 0) {
            return CS_OK;
        }
    }
    return cs_jctx_error(c, v, NULL,
                         "outcomes of no task kind (multiple choice: acc and margin, with "
                         "acc_norm and acc_bytes or not; generation: exact_match, with "
                         "exact_match_flex or not; perplexity: window_loss)");
}

/* One task's outcomes v into *it; *budget: items left to CS_LIMIT_RESULT_ITEMS. */
static cs_rc decode_task_items(cs_jctx *c, const cJSON *v, const cs_result *r, cs_result_items *it,
                               size_t *budget)
{
    static const char *const keys[] = {
            "n",           "sample",           "acc",    "acc_norm",   "acc_bytes",
            "exact_match", "exact_match_flex", "margin", "window_loss"};
    const char *sample = NULL;
    int64_t n = 0;
    unsigned mask = 0;
    cs_rc rc = cs_json_as_object(c, v);
    for (size_t i = 0; rc == CS_OK && i < r->n_tasks && it->task == NULL; i++) {
        it->task = strcmp(r->tasks[i].name, v->string) == 0 ? r->tasks[i].name : NULL;
    }
    if (rc == CS_OK && it->task == NULL) {
        rc = cs_jctx_error(c, v, NULL, "no task of this name in \"metrics\"");
    }
    if (rc == CS_OK) {
        rc = cs_json_check_keys(c, v, keys, sizeof keys / sizeof keys[0], CS_DIAG_ERROR);
    }
    if (rc == CS_OK) {
        rc = cs_json_req_int(c, v, "n", 0, (int64_t)CS_LIMIT_RESULT_ITEMS, &n);
    }
    if (rc == CS_OK && (size_t)n > *budget) {
        cs_jctx_error(c, v, "n", "more than %zu items in one result", CS_LIMIT_RESULT_ITEMS);
        if (c->err != NULL) {
            c->err->rc = CS_ETOOBIG;
        }
        return CS_ETOOBIG;
    }
    *budget -= rc == CS_OK ? (size_t)n : 0;
    it->n = (size_t)n;
    if (rc == CS_OK) {
        rc = cs_json_req_string(c, v, "sample", &sample);
    }
    if (rc == CS_OK && !hex64(sample)) {
        rc = cs_jctx_error(c, v, "sample", "expected 64 lowercase hex digits (a SHA-256)");
    }
    if (rc == CS_OK) {
        memcpy(it->sample, sample, 65);
    }
    for (size_t k = 0; rc == CS_OK && k < N_FIELDS; k++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(v, FIELD_KEYS[k]);
        if (f != NULL) {
            mask |= 1u << k;
            cs_jpath_push_key(&c->path, FIELD_KEYS[k]);
            rc = decode_field(c, f, k, it);
            cs_jpath_pop(&c->path);
        }
    }
    return rc == CS_OK ? check_kind(c, v, mask) : rc;
}

static cs_rc decode_items(cs_jctx *c, const cJSON *doc, cs_result *r)
{
    const cJSON *io = NULL;
    size_t n = 0, budget = CS_LIMIT_RESULT_ITEMS;
    cs_rc rc = cs_json_opt_object(c, doc, "items", &io);
    if (rc != CS_OK || io == NULL) {
        return rc;
    }
    if (r->version != 2) {
        return cs_jctx_error(c, io, "items", "per-item outcomes need \"version\": 2");
    }
    for (const cJSON *t = io->child; t != NULL; t = t->next) {
        n++;
    }
    r->items = cs_calloc_array(n > 0 ? n : 1, sizeof *r->items);
    if (r->items == NULL) {
        return oom(c);
    }
    cs_jpath_push_key(&c->path, "items");
    for (const cJSON *t = io->child; rc == CS_OK && t != NULL; t = t->next) {
        cs_jpath_push_key(&c->path, t->string);
        r->n_items++;
        rc = decode_task_items(c, t, r, &r->items[r->n_items - 1], &budget);
        cs_jpath_pop(&c->path);
    }
    cs_jpath_pop(&c->path);
    return rc;
}

const cs_result_items *cs_result_find_items(const cs_result *r, const char *task)
{
    for (size_t i = 0; i < r->n_items; i++) {
        if (r->items[i].task != NULL && strcmp(r->items[i].task, task) == 0) {
            return &r->items[i];
        }
    }
    return NULL;
}

size_t cs_result_count_items(const cs_result *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_items; i++) {
        n += r->items[i].n;
    }
    return n;
}

cs_rc cs_result_sample(const char *const *ids, size_t n, char out[65], cs_err *err)
{
    cs_buf b = {0};
    cs_rc rc = CS_OK;
    out[0] = '\0';
    for (size_t i = 0; rc == CS_OK && i < n; i++) {
        rc = i > 0 ? cs_buf_putc(&b, '\n') : CS_OK;
        if (rc == CS_OK) {
            rc = cs_buf_puts(&b, ids[i]);
        }
    }
    if (rc != CS_OK) {
        cs_buf_fini(&b);
        return cs_err_set(err, CS_ENOMEM, 0, "result sample: out of memory");
    }
    rc = cs_sha256_hex(b.len > 0 ? b.data : "", b.len, out, err);
    cs_buf_fini(&b);
    return rc;
}

cs_rc cs_result_from_json(cs_jctx *c, const cJSON *v, cs_result *r)
{
    memset(r, 0, sizeof *r);
    cs_rc rc = cs_json_as_object(c, v);
    if (rc == CS_OK) {
        rc = decode_metrics(c, v, r);
    }
    if (rc == CS_OK) {
        rc = decode_scalars(c, v, r);
    }
    if (rc == CS_OK) {
        rc = decode_timings(c, v, r);
    }
    if (rc == CS_OK) {
        rc = decode_json(c, v, "calibration", true, &r->calibration);
    }
    if (rc == CS_OK) {
        rc = decode_json(c, v, "extra", false, &r->extra);
    }
    if (rc == CS_OK) {
        rc = decode_items(c, v, r);
    }
    if (rc == CS_OK) {
        rc = decode_others(c, v, r);
    }
    if (rc != CS_OK) {
        cs_result_fini(r);
    }
    return rc;
}

cs_rc cs_result_decode(const char *text, size_t len, cs_result *r, cs_err *err)
{
    cJSON *doc = NULL;
    cs_jctx c;
    memset(r, 0, sizeof *r);
    cs_rc rc = cs_json_parse(text, len, "result", &doc, err);
    if (rc != CS_OK) {
        return rc;
    }
    cs_jctx_init(&c, NULL, err);
    rc = cs_result_from_json(&c, doc, r);
    cJSON_Delete(doc);
    return rc;
}

cs_rc cs_result_read_file(const char *path, cs_result *r, cs_err *err)
{
    char *text = NULL;
    size_t len = 0;
    memset(r, 0, sizeof *r);
    cs_rc rc = cs_path_read_file(path, CS_LIMIT_MSG_BYTES, &text, &len, err);
    if (rc == CS_OK) {
        rc = cs_result_decode(text, len, r, err);
    }
    free(text);
    return rc;
}

const cs_result_value *cs_result_metric(const cs_result_task *t, const char *name)
{
    if (t->n_metrics == 0) {
        return NULL;
    }
    return bsearch(name, t->metrics, t->n_metrics, sizeof *t->metrics, value_key_cmp);
}

size_t cs_result_count_metrics(const cs_result *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_tasks; i++) {
        n += r->tasks[i].n_metrics;
    }
    return n;
}

/* ---- encoding ------------------------------------------------------------------------------ */

static cs_rc enc_fail(cs_err *err, const char *what, const char *name)
{
    return cs_err_set(err, CS_EINVAL, 0, "encode result.%s%s%s", what, name ? "." : "",
                      name ? name : "");
}

static cs_rc add_values(cJSON *o, const cs_result_value *v, size_t n, const char *what, cs_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].name == NULL || v[i].name[0] == '\0') {
            return enc_fail(err, what, "(a NULL or empty name)");
        }
        if (!isfinite(v[i].value)) {
            return cs_err_set(err, CS_ERANGE, 0, "encode result.%s.%s: not a finite number", what,
                              v[i].name);
        }
        if (cJSON_AddNumberToObject(o, v[i].name, v[i].value) == NULL) {
            return cs_err_set(err, CS_ENOMEM, 0, "encode result: out of memory");
        }
    }
    return CS_OK;
}

static cs_rc add_metrics(cJSON *doc, const cs_result *r, cs_err *err)
{
    cJSON *mo = cJSON_AddObjectToObject(doc, "metrics");
    if (mo == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "encode result: out of memory");
    }
    if (cs_result_count_metrics(r) > CS_LIMIT_RESULT_METRICS) {
        return cs_err_set(err, CS_ETOOBIG, 0, "encode result.metrics: more than %d metric values",
                          CS_LIMIT_RESULT_METRICS);
    }
    for (size_t i = 0; i < r->n_tasks; i++) {
        const cs_result_task *t = &r->tasks[i];
        cJSON *to;
        if (t->name == NULL || t->name[0] == '\0') {
            return enc_fail(err, "metrics", "(a NULL or empty task name)");
        }
        if ((to = cJSON_AddObjectToObject(mo, t->name)) == NULL ||
            (t->has_n && cJSON_AddNumberToObject(to, "n", (double)t->n) == NULL)) {
            return cs_err_set(err, CS_ENOMEM, 0, "encode result: out of memory");
        }
        cs_rc rc = add_values(to, t->metrics, t->n_metrics, "metrics", err);
        if (rc != CS_OK) {
            return rc;
        }
    }
    return CS_OK;
}

/* Adds the canonical JSON text under key; others (key NULL): merges its members into doc. */
static cs_rc add_text(cJSON *doc, const char *key, const char *text, cs_err *err)
{
    cJSON *t = NULL;
    cs_err e = {0};
    if (text == NULL) {
        return CS_OK;
    }
    cs_rc rc = cs_json_parse(text, strlen(text), key ? key : "others", &t, &e);
    if (rc == CS_ENOMEM) {
        return cs_err_set(err, CS_ENOMEM, 0, "encode result: out of memory");
    }
    if (rc != CS_OK ||
        (!cJSON_IsObject(t) && !(key && strcmp(key, "calibration") == 0 && cJSON_IsNull(t)))) {
        cJSON_Delete(t);
        return enc_fail(err, key ? key : "others", "(not a JSON object)");
    }
    if (key != NULL) {
        cJSON_AddItemToObject(doc, key, t);
        return CS_OK;
    }
    while (t->child != NULL) {
        cJSON *m = cJSON_DetachItemViaPointer(t, t->child);
        if (cJSON_GetObjectItemCaseSensitive(doc, m->string) != NULL) {
            rc = enc_fail(err, "others", m->string);
            cJSON_Delete(m);
            break;
        }
        cJSON_AddItemToObject(doc, m->string, m);
    }
    cJSON_Delete(t);
    return rc;
}

static bool add_str(cJSON *doc, const char *key, const char *s)
{
    return s == NULL || cJSON_AddStringToObject(doc, key, s) != NULL;
}

static bool add_scalars(cJSON *doc, const cs_result *r)
{
    return (r->version == 0 || cJSON_AddNumberToObject(doc, "version", (double)r->version)) &&
           add_str(doc, "job_key", r->job_key) &&
           (!r->has_peak_rss_mb || cJSON_AddNumberToObject(doc, "peak_rss_mb", r->peak_rss_mb)) &&
           add_str(doc, "engine_version", r->engine_version) && add_str(doc, "host", r->host) &&
           (r->threads == 0 || cJSON_AddNumberToObject(doc, "threads", (double)r->threads)) &&
           (!r->has_started_ms ||
            cJSON_AddNumberToObject(doc, "started_ms", (double)r->started_ms)) &&
           (!r->has_ended_ms || cJSON_AddNumberToObject(doc, "ended_ms", (double)r->ended_ms)) &&
           add_str(doc, "worker", r->worker) && add_str(doc, "log_path", r->log_path);
}

/* The base64 of bytes[0..n) under key in o. */
static cs_rc add_b64(cJSON *o, const char *key, const uint8_t *bytes, size_t n, cs_err *err)
{
    size_t len = b64_len(n), olen = 0;
    char *s = cs_alloc_array(len + 1, 1);
    cs_rc rc = CS_OK;
    if (s == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "encode result: out of memory");
    }
    s[0] = '\0';
    if (n > 0 && mbedtls_base64_encode((unsigned char *)s, len + 1, &olen, bytes, n) != 0) {
        rc = cs_err_set(err, CS_EINTERNAL, 0, "encode result.items.%s: base64 failed", key);
    } else if (cJSON_AddStringToObject(o, key, s) == NULL) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "encode result: out of memory");
    }
    free(s);
    return rc;
}

/* Float k of it as n little-endian float32 under its key in o. */
static cs_rc add_f32(cJSON *o, const char *key, const float *v, size_t n, cs_err *err)
{
    uint8_t *b = cs_alloc_array(n + 1, 4);
    if (b == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "encode result: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof u);
        for (size_t j = 0; j < 4; j++) {
            b[4 * i + j] = (uint8_t)(u >> (8 * j));
        }
    }
    cs_rc rc = add_b64(o, key, b, 4 * n, err);
    free(b);
    return rc;
}

static cs_rc add_items(cJSON *doc, const cs_result *r, cs_err *err)
{
    cJSON *io = r->n_items > 0 ? cJSON_AddObjectToObject(doc, "items") : NULL;
    cs_rc rc = CS_OK;
    if (r->n_items > 0 && io == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "encode result: out of memory");
    }
    for (size_t i = 0; rc == CS_OK && i < r->n_items; i++) {
        const cs_result_items *it = &r->items[i];
        cJSON *to;
        if (it->task == NULL || it->task[0] == '\0') {
            return enc_fail(err, "items", "(a NULL or empty task name)");
        }
        if ((to = cJSON_AddObjectToObject(io, it->task)) == NULL ||
            cJSON_AddNumberToObject(to, "n", (double)it->n) == NULL ||
            cJSON_AddStringToObject(to, "sample", it->sample) == NULL) {
            return cs_err_set(err, CS_ENOMEM, 0, "encode result: out of memory");
        }
        for (size_t k = 0; rc == CS_OK && k < N_FIELDS; k++) {
            const void *f = field_c(it, k);
            if (f != NULL) {
                rc = k < N_BITSETS ? add_b64(to, FIELD_KEYS[k], f, cs_result_bits_bytes(it->n), err)
                                   : add_f32(to, FIELD_KEYS[k], f, it->n, err);
            }
        }
    }
    return rc;
}

/* The tree of r, unchecked: cs_result_to_json checks it by decoding it. */
static cs_rc build_tree(const cs_result *r, cJSON *doc, cs_err *err)
{
    cs_rc rc = add_metrics(doc, r, err);
    if (rc == CS_OK && r->has_timings) {
        cJSON *to = cJSON_AddObjectToObject(doc, "timings");
        rc = to != NULL ? add_values(to, r->timings, r->n_timings, "timings", err)
                        : cs_err_set(err, CS_ENOMEM, 0, "encode result: out of memory");
    }
    if (rc == CS_OK && !add_scalars(doc, r)) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "encode result: out of memory");
    }
    if (rc == CS_OK) {
        rc = add_text(doc, "calibration", r->calibration, err);
    }
    if (rc == CS_OK) {
        rc = add_text(doc, "extra", r->extra, err);
    }
    if (rc == CS_OK) {
        rc = add_items(doc, r, err);
    }
    if (rc == CS_OK) {
        rc = add_text(doc, NULL, r->others, err);
    }
    return rc;
}

cs_rc cs_result_to_json(const cs_result *r, cJSON **out, cs_err *err)
{
    cJSON *doc = cJSON_CreateObject();
    cs_result check;
    cs_jctx c;
    cs_err e = {0};
    *out = NULL;
    if (doc == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "encode result: out of memory");
    }
    cs_rc rc = build_tree(r, doc, err);
    if (rc == CS_OK) {
        /* The decoder is the one definition of a valid result: check the tree with it. */
        cs_jctx_init(&c, NULL, &e);
        rc = cs_result_from_json(&c, doc, &check);
        cs_result_fini(&check);
        if (rc != CS_OK) {
            rc = cs_err_set(err, rc == CS_ENOMEM ? CS_ENOMEM : CS_EINVAL, 0, "encode result: %s",
                            e.msg);
        }
    }
    if (rc != CS_OK) {
        cJSON_Delete(doc);
        return rc;
    }
    *out = doc;
    return CS_OK;
}

cs_rc cs_result_encode(const cs_result *r, char **out, size_t *len, cs_err *err)
{
    cJSON *doc = NULL;
    *out = NULL;
    cs_rc rc = cs_result_to_json(r, &doc, err);
    if (rc == CS_OK) {
        rc = cs_canon_string(doc, out, len, err);
    }
    cJSON_Delete(doc);
    return rc;
}

cs_rc cs_result_write_file(const char *path, const cs_result *r, cs_err *err)
{
    char *text = NULL;
    size_t len = 0;
    cs_rc rc = cs_result_encode(r, &text, &len, err);
    if (rc != CS_OK) {
        return rc;
    }
    text[len] = '\n'; /* the terminator becomes the final newline */
    rc = cs_path_write_atomic(path, text, len + 1, 0644, err);
    free(text);
    return rc;
}
