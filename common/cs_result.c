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

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_path.h"

/* The members result.schema.json names, and the two calsweep-worker adds. */
static const char *const KNOWN[] = {"version", "job_key",     "metrics",        "calibration",
                                    "timings", "peak_rss_mb", "engine_version", "host",
                                    "threads", "started_ms",  "ended_ms",       "extra",
                                    "worker",  "log_path"};
#define N_KNOWN (sizeof(KNOWN) / sizeof(KNOWN[0]))

/* ---- fini ---------------------------------------------------------------------------------- */

static void values_free(cs_result_value *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        free(v[i].name);
    }
    free(v);
}

void cs_result_fini(cs_result *r)
{
    if (r == NULL) {
        return;
    }
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
    cs_rc rc = cs_json_opt_int(c, doc, "version", 0, 1, 1, &r->version);
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
