/* cs_proto.c - protocol v4 codec (see cs_proto.h).
 *
 * One table describes the fields of every message type (key, kind, offset in cs_msg, bounds); the
 * decoder, the encoder and cs_msg_fini all walk it, so a field added to the table is decoded,
 * encoded and freed alike. Decoding goes through cs_json's checked getters in fail-fast mode, with
 * the type name pushed as the first path component, so errors read "HEARTBEAT.attempt: ...".
 * The encoder builds a cJSON tree, prints it canonically (cs_canon) and decodes its own output
 * once: what it returns is, by construction, accepted by the decoder.
 */
#include "cs_proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sys/random.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_json.h"

#define INT_EXACT ((int64_t)1 << 53) /* integers a double holds exactly */

/* ---- names ------------------------------------------------------------------------------- */

typedef struct type_info {
    const char *name;
    char endpoint;
} type_info;

static const type_info TYPES[CS_MSG_TYPE_COUNT] = {[CS_MSG_NONE] = {"?", 'R'},
#define CS_MSG_TYPE_INFO(e, n, ep) [e] = {n, ep},
                                                   CS_MSG_TYPE_LIST(CS_MSG_TYPE_INFO)
#undef CS_MSG_TYPE_INFO
};

static const char *const FAIL_KINDS[CS_FAIL_KIND_COUNT] = {[CS_FAIL_NONE] = "?",
#define CS_FAIL_KIND_NAME(e, n) [e] = n,
                                                           CS_FAIL_KIND_LIST(CS_FAIL_KIND_NAME)
#undef CS_FAIL_KIND_NAME
};

typedef struct rc_name {
    cs_rc rc;
    const char *name;
} rc_name;

static const rc_name RC_NAMES[] = {
#define CS_RC_NAME_ENTRY(e, v, text) {e, #e},
        CS_RC_LIST(CS_RC_NAME_ENTRY)
#undef CS_RC_NAME_ENTRY
};

/* The job states of schemas/migrations (JOBS.state). */
static const char *const JOB_STATES[] = {"queued", "running", "retry_wait", "done",
                                         "failed", "lost",    "cancelled",  "cached"};

const char *cs_msg_type_name(cs_msg_type t)
{
    if ((int)t <= (int)CS_MSG_NONE || (int)t >= (int)CS_MSG_TYPE_COUNT) {
        return "?";
    }
    return TYPES[t].name;
}

cs_msg_type cs_msg_type_from_name(const char *name)
{
    for (int t = CS_MSG_NONE + 1; name && t < CS_MSG_TYPE_COUNT; t++) {
        if (strcmp(TYPES[t].name, name) == 0) {
            return (cs_msg_type)t;
        }
    }
    return CS_MSG_NONE;
}

cs_msg_endpoint cs_msg_type_endpoint(cs_msg_type t)
{
    if ((int)t <= (int)CS_MSG_NONE || (int)t >= (int)CS_MSG_TYPE_COUNT) {
        return CS_EP_REPLY;
    }
    return (cs_msg_endpoint)TYPES[t].endpoint;
}

const char *cs_fail_kind_name(cs_fail_kind k)
{
    if ((int)k <= (int)CS_FAIL_NONE || (int)k >= (int)CS_FAIL_KIND_COUNT) {
        return "?";
    }
    return FAIL_KINDS[k];
}

cs_fail_kind cs_fail_kind_from_name(const char *name)
{
    for (int k = CS_FAIL_NONE + 1; name && k < CS_FAIL_KIND_COUNT; k++) {
        if (strcmp(FAIL_KINDS[k], name) == 0) {
            return (cs_fail_kind)k;
        }
    }
    return CS_FAIL_NONE;
}

bool cs_rc_from_name(const char *name, cs_rc *out)
{
    for (size_t i = 0; name && i < sizeof(RC_NAMES) / sizeof(RC_NAMES[0]); i++) {
        if (strcmp(RC_NAMES[i].name, name) == 0) {
            *out = RC_NAMES[i].rc;
            return true;
        }
    }
    return false;
}

/* ---- the field table --------------------------------------------------------------------- */

typedef enum fkind {
    F_NAME,     /* char *: 1..CS_PROTO_MAX_NAME bytes; with enums: one of them */
    F_TEXT,     /* char *: 0..CS_PROTO_MAX_TEXT bytes */
    F_INT,      /* int64_t in [min, max]; optional ones use 0 for absent (min >= 1) */
    F_BOOL,     /* bool; optional ones: absent = false, and false is not written */
    F_OBJ,      /* char *: JSON object text */
    F_DOC,      /* char *: JSON object text kept as written (compact, members in their order) */
    F_ANY,      /* char *: any JSON value as text */
    F_CAPS,     /* cs_caps */
    F_JOBREF,   /* int64_t job_id at off, attempt at off2: {"job_id":..,"attempt":..} */
    F_RC,       /* cs_rc by name, not CS_OK */
    F_KIND,     /* cs_fail_kind by name */
    F_CLAIMREQ, /* cs_msg_claim: {"worker":..,"instance":..,"capabilities":..}; worker NULL =
                   absent */
    F_TOKEN,    /* char *: CS_PROTO_TOKEN_LEN lowercase hex digits */
    F_RESDOC,   /* cs_result: result.json (cs_result.h) */
    F_NAMES,    /* char ** at off, size_t count at off2: a list of at most max names; optional
                   (absent = 0 items) */
} fkind;

typedef struct field {
    const char *key;
    fkind kind;
    bool required;
    size_t off, off2;
    int64_t min, max;
    const char *const *enums; /* F_NAME: allowed values, or NULL */
    size_t n_enums;
    size_t off3; /* F_JOBREF: the char * lease_token */
} field;

#define FLD(key, kind, req, member)                                   \
    {                                                                 \
        key, kind, req, offsetof(cs_msg, member), 0, 0, 0, NULL, 0, 0 \
    }
#define FINT(key, req, member, lo, hi)                                   \
    {                                                                    \
        key, F_INT, req, offsetof(cs_msg, member), 0, lo, hi, NULL, 0, 0 \
    }
#define ID(key, member) FINT(key, true, member, 1, INT64_MAX)

static const field ENVELOPE[] = {
        FLD("token", F_NAME, false, token),
        FINT("req_id", false, req_id, 1, INT64_MAX),
};

static const field F_HELLO[] = {
        FLD("worker", F_NAME, true, hello.worker),
        FLD("host", F_NAME, true, hello.host),
        FLD("capabilities", F_CAPS, true, hello.caps),
};
static const field F_CLAIM[] = {
        FLD("worker", F_NAME, true, claim.worker),
        FLD("instance", F_TOKEN, true, claim.instance),
        FLD("capabilities", F_CAPS, true, claim.caps),
};
static const field F_JOB[] = {
        ID("job_id", job.job_id),
        ID("attempt", job.attempt),
        FLD("lease_token", F_TOKEN, true, job.lease_token),
        FINT("lease_s", true, job.lease_s, 1, CS_LIMIT_LEASE_S),
        FINT("timeout_s", false, job.timeout_s, 1, CS_LIMIT_TIMEOUT_S),
        FLD("config", F_OBJ, true, job.config),
};
static const field F_NO_WORK[] = {
        FINT("retry_ms", true, no_work.retry_ms, 0, 86400000),
};
static const field F_HEARTBEAT[] = {
        FLD("worker", F_NAME, true, heartbeat.worker),
        ID("job_id", heartbeat.job_id),
        ID("attempt", heartbeat.attempt),
        FLD("lease_token", F_TOKEN, true, heartbeat.lease_token),
        FLD("stage", F_NAME, true, heartbeat.stage),
        FINT("done", true, heartbeat.done, 0, INT64_MAX),
        FINT("total", true, heartbeat.total, 0, INT64_MAX),
        FLD("log_tail", F_TEXT, true, heartbeat.log_tail),
        FLD("detail", F_NAME, false, heartbeat.detail),
        FINT("stage_ms", false, heartbeat.stage_ms, 1, INT64_MAX),
};
static const field F_ACK[] = {
        FLD("cancel", F_BOOL, true, ack.cancel),
};
static const field F_RESULT[] = {
        FLD("worker", F_NAME, true, result.worker),
        ID("job_id", result.job_id),
        ID("attempt", result.attempt),
        FLD("lease_token", F_TOKEN, true, result.lease_token),
        FLD("result", F_RESDOC, true, result.result),
        FLD("claim", F_CLAIMREQ, false, result.claim),
};
static const field F_FAIL[] = {
        FLD("worker", F_NAME, true, fail.worker),
        ID("job_id", fail.job_id),
        ID("attempt", fail.attempt),
        FLD("lease_token", F_TOKEN, true, fail.lease_token),
        FLD("kind", F_KIND, true, fail.kind),
        FLD("reason", F_TEXT, true, fail.reason),
        FINT("exit_status", true, fail.exit_status, -1, 255),
        FINT("signal", true, fail.signal, 0, 127),
        FLD("log_tail", F_TEXT, true, fail.log_tail),
        FLD("log_path", F_TEXT, false, fail.log_path),
        FLD("claim", F_CLAIMREQ, false, fail.claim),
};
static const field F_BYE[] = {
        FLD("worker", F_NAME, true, bye.worker),
        FLD("instance", F_TOKEN, true, bye.instance),
        {"release_job", F_JOBREF, false, offsetof(cs_msg, bye.release_job_id),
         offsetof(cs_msg, bye.release_attempt), 1, INT64_MAX, NULL, 0,
         offsetof(cs_msg, bye.release_lease_token)},
};
static const field F_SUBMIT[] = {
        FLD("sweep", F_DOC, true, submit.sweep),
        FLD("force", F_BOOL, true, submit.force),
};
static const field F_PLAN[] = {
        FLD("sweep", F_DOC, true, plan.sweep),
};
static const field F_STATUS[] = {
        FLD("sweep", F_NAME, false, status.sweep),
};
static const field F_CANCEL[] = {
        FLD("sweep", F_NAME, false, cancel.sweep),
        FINT("job", false, cancel.job, 1, INT64_MAX),
        FLD("filter", F_OBJ, false, cancel.filter),
};
static const field F_PAUSE[] = {
        FLD("sweep", F_NAME, true, pause.sweep),
};
static const field F_RESUME[] = {
        FLD("sweep", F_NAME, true, resume.sweep),
};
static const field F_RETRY[] = {
        FLD("sweep", F_NAME, false, retry.sweep),
        FLD("failed", F_BOOL, true, retry.failed),
        FLD("lost", F_BOOL, true, retry.lost),
};
static const field F_EXTEND[] = {
        FLD("sweep_id", F_NAME, true, extend.sweep_id),
        FLD("sweep", F_DOC, true, extend.sweep),
};
static const field F_JOBS[] = {
        FLD("sweep", F_NAME, false, jobs.sweep),
        {"state", F_NAME, false, offsetof(cs_msg, jobs.state), 0, 0, 0, JOB_STATES,
         sizeof(JOB_STATES) / sizeof(JOB_STATES[0]), 0},
        FINT("limit", true, jobs.limit, 1, 100000),
        FINT("offset", true, jobs.offset, 0, INT64_MAX),
};
static const field F_LOGS[] = {
        ID("job_id", logs.job_id),
        FINT("attempt", false, logs.attempt, 1, INT64_MAX),
        FINT("tail", false, logs.tail, 1, INT64_MAX),
};
static const field F_RESULTS[] = {
        FLD("sweep", F_NAME, true, results.sweep),
        {"by", F_NAMES, false, offsetof(cs_msg, results.by), offsetof(cs_msg, results.n_by), 0,
         CS_PROTO_MAX_RESULTS_LIST, NULL, 0, 0},
        FLD("metric", F_NAME, false, results.metric),
        FLD("reference", F_NAME, false, results.reference),
        {"tasks", F_NAMES, false, offsetof(cs_msg, results.tasks),
         offsetof(cs_msg, results.n_tasks), 0, CS_PROTO_MAX_RESULTS_LIST, NULL, 0, 0},
        {"resamples", F_INT, true, offsetof(cs_msg, results.resamples), 0, 0, CS_LIMIT_RESAMPLES,
         NULL, 0, 0},
        {"item_resamples", F_INT, false, offsetof(cs_msg, results.item_resamples), 0, 0,
         CS_LIMIT_RESAMPLES, NULL, 0, 0},
        {"seed", F_INT, true, offsetof(cs_msg, results.seed), 0, 0, INT64_MAX, NULL, 0, 0},
        FLD("slim", F_BOOL, false, results.slim),
};
static const field F_WATCH[] = {
        FLD("sweep", F_NAME, false, watch.sweep),
        FINT("top", false, watch.top, 1, 100),
        FINT("problems", false, watch.problems, 1, 1000),
};
static const field F_JOB_INFO[] = {
        ID("job_id", job_info.job_id),
};
static const field F_OK[] = {
        FLD("data", F_ANY, false, ok.data),
};
static const field F_ERROR[] = {
        FLD("code", F_RC, true, error.code),
        FLD("message", F_TEXT, true, error.message),
};

typedef struct type_fields {
    const field *fields;
    size_t n;
} type_fields;

#define TF(arr)                           \
    {                                     \
        arr, sizeof(arr) / sizeof(arr[0]) \
    }

static const type_fields FIELDS[CS_MSG_TYPE_COUNT] = {
        [CS_MSG_NONE] = {NULL, 0},        [CS_MSG_HELLO] = TF(F_HELLO),
        [CS_MSG_CLAIM] = TF(F_CLAIM),     [CS_MSG_JOB] = TF(F_JOB),
        [CS_MSG_NO_WORK] = TF(F_NO_WORK), [CS_MSG_HEARTBEAT] = TF(F_HEARTBEAT),
        [CS_MSG_ACK] = TF(F_ACK),         [CS_MSG_RESULT] = TF(F_RESULT),
        [CS_MSG_FAIL] = TF(F_FAIL),       [CS_MSG_BYE] = TF(F_BYE),
        [CS_MSG_SUBMIT] = TF(F_SUBMIT),   [CS_MSG_PLAN] = TF(F_PLAN),
        [CS_MSG_STATUS] = TF(F_STATUS),   [CS_MSG_CANCEL] = TF(F_CANCEL),
        [CS_MSG_PAUSE] = TF(F_PAUSE),     [CS_MSG_RESUME] = TF(F_RESUME),
        [CS_MSG_RETRY] = TF(F_RETRY),     [CS_MSG_EXTEND] = TF(F_EXTEND),
        [CS_MSG_JOBS] = TF(F_JOBS),       [CS_MSG_WORKERS] = {NULL, 0},
        [CS_MSG_LOGS] = TF(F_LOGS),       [CS_MSG_OK] = TF(F_OK),
        [CS_MSG_ERROR] = TF(F_ERROR),     [CS_MSG_RESULTS] = TF(F_RESULTS),
        [CS_MSG_WATCH] = TF(F_WATCH),     [CS_MSG_JOB_INFO] = TF(F_JOB_INFO),
};

static bool type_valid(cs_msg_type t)
{
    return (int)t > (int)CS_MSG_NONE && (int)t < (int)CS_MSG_TYPE_COUNT;
}

/* Typed access to a field's storage. */
#define AT(m, off, T) ((T *)(void *)((char *)(m) + (off)))
typedef char *str_ptr;   /* so that const str_ptr * is char *const * */
typedef char **str_list; /* so that const str_list * is char **const * */
#define CAT(m, off, T) ((const T *)(const void *)((const char *)(m) + (off)))

/* ---- init / fini ------------------------------------------------------------------------- */

static void str_list_free(char **items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        free(items[i]);
    }
    free(items);
}

static void caps_fini(cs_caps *c)
{
    str_list_free(c->backends, c->n_backends);
    str_list_free(c->models, c->n_models);
    for (size_t i = 0; c->gpus && i < c->n_gpus; i++) {
        free(c->gpus[i].name);
    }
    free(c->gpus);
    memset(c, 0, sizeof(*c));
}

/* A decoded message's strings are const for its readers and owned by the message: the codec,
 * which allocated them, frees them. */
static void free_owned(const char **s)
{
    free((void *)(uintptr_t)*s);
    *s = NULL;
}

static void fields_fini(cs_msg *m, const field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (f[i].kind) {
        case F_NAME:
        case F_TEXT:
        case F_OBJ:
        case F_DOC:
        case F_ANY:
        case F_TOKEN:
            free(*AT(m, f[i].off, char *));
            *AT(m, f[i].off, char *) = NULL;
            break;
        case F_CAPS:
            caps_fini(AT(m, f[i].off, cs_caps));
            break;
        case F_CLAIMREQ:
            free_owned(&AT(m, f[i].off, cs_msg_claim)->worker);
            free_owned(&AT(m, f[i].off, cs_msg_claim)->instance);
            caps_fini(&AT(m, f[i].off, cs_msg_claim)->caps);
            break;
        case F_JOBREF:
            free(*AT(m, f[i].off3, char *));
            *AT(m, f[i].off3, char *) = NULL;
            break;
        case F_RESDOC:
            cs_result_fini(AT(m, f[i].off, cs_result));
            break;
        case F_NAMES:
            str_list_free(*AT(m, f[i].off, char **), *AT(m, f[i].off2, size_t));
            *AT(m, f[i].off, char **) = NULL;
            *AT(m, f[i].off2, size_t) = 0;
            break;
        case F_INT:
        case F_BOOL:
        case F_RC:
        case F_KIND:
            break;
        }
    }
}

void cs_msg_init(cs_msg *m, cs_msg_type type)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
}

void cs_msg_fini(cs_msg *m)
{
    if (!m) {
        return;
    }
    fields_fini(m, ENVELOPE, sizeof(ENVELOPE) / sizeof(ENVELOPE[0]));
    if (type_valid(m->type)) {
        fields_fini(m, FIELDS[m->type].fields, FIELDS[m->type].n);
    }
    memset(m, 0, sizeof(*m));
}

/* ---- decoding ---------------------------------------------------------------------------- */

/* A string that is a name: 1..CS_PROTO_MAX_NAME bytes, and one of enums when given. */
static cs_rc check_name(cs_jctx *c, const cJSON *v, const char *s, const field *f)
{
    size_t n = strlen(s);
    if (n == 0) {
        return cs_jctx_error(c, v, NULL, "expected a non-empty string, got \"\"");
    }
    if (n > CS_PROTO_MAX_NAME) {
        return cs_jctx_error(c, v, NULL, "longer than %d bytes (%zu)", CS_PROTO_MAX_NAME, n);
    }
    if (f && f->enums) {
        for (size_t i = 0; i < f->n_enums; i++) {
            if (strcmp(s, f->enums[i]) == 0) {
                return CS_OK;
            }
        }
        return cs_jctx_error(c, v, NULL, "unknown value \"%s\"", s);
    }
    return CS_OK;
}

/* A string that is a token (lease_token, instance). */
static cs_rc check_token(cs_jctx *c, const cJSON *v, const char *s)
{
    if (!cs_proto_token_ok(s)) {
        return cs_jctx_error(c, v, NULL, "expected %d lowercase hex digits, got %zu characters",
                             CS_PROTO_TOKEN_LEN, strlen(s));
    }
    return CS_OK;
}

/* Owned copy of s into *dst; CS_ENOMEM (reported in err) on exhaustion. */
static cs_rc dup_into(char **dst, const char *s, cs_err *err)
{
    *dst = cs_strdup(s);
    if (!*dst) {
        return cs_err_set(err, CS_ENOMEM, 0, "decode: out of memory");
    }
    return CS_OK;
}

/* Array member key of obj as a list of names into *items / *n. */
static cs_rc decode_name_list(cs_jctx *c, const cJSON *obj, const char *key, char ***items,
                              size_t *n)
{
    const cJSON *arr = NULL;
    size_t count, i = 0;
    cs_rc rc = cs_json_req_array(c, obj, key, &arr);
    if (rc != CS_OK) {
        return rc;
    }
    cs_jpath_push_key(&c->path, key);
    count = (size_t)cJSON_GetArraySize(arr);
    if (count > CS_PROTO_MAX_LIST) {
        rc = cs_jctx_error(c, arr, NULL, "more than %d items (%zu)", CS_PROTO_MAX_LIST, count);
        goto out;
    }
    *items = cs_calloc_array(count ? count : 1, sizeof(char *));
    if (!*items) {
        rc = cs_err_set(c->err, CS_ENOMEM, 0, "decode: out of memory");
        goto out;
    }
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        const char *s = NULL;
        cs_jpath_push_index(&c->path, i);
        rc = cs_json_as_string(c, e, &s);
        if (rc == CS_OK) {
            rc = check_name(c, e, s, NULL);
        }
        if (rc == CS_OK) {
            rc = dup_into(&(*items)[i], s, c->err);
        }
        cs_jpath_pop(&c->path);
        if (rc != CS_OK) {
            goto out;
        }
        *n = i + 1;
    }
out:
    cs_jpath_pop(&c->path);
    return rc;
}

static const char *const CAPS_KEYS[] = {"backends", "models", "threads", "mem_mb", "gpus"};
static const char *const CLAIM_KEYS[] = {"worker", "instance", "capabilities"};
static const char *const GPU_KEYS[] = {"index", "name", "mem_mb"};
static const char *const JOBREF_KEYS[] = {"job_id", "attempt", "lease_token"};

static cs_rc decode_gpu(cs_jctx *c, const cJSON *v, cs_gpu *g)
{
    const char *name = NULL;
    cs_rc rc = cs_json_as_object(c, v);
    if (rc == CS_OK) {
        rc = cs_json_check_keys(c, v, GPU_KEYS, 3, CS_DIAG_ERROR);
    }
    if (rc == CS_OK) {
        rc = cs_json_req_int(c, v, "index", 0, 65535, &g->index);
    }
    if (rc == CS_OK) {
        rc = cs_json_req_string(c, v, "name", &name);
    }
    if (rc == CS_OK) {
        cs_jpath_push_key(&c->path, "name");
        rc = check_name(c, cJSON_GetObjectItemCaseSensitive(v, "name"), name, NULL);
        cs_jpath_pop(&c->path);
    }
    if (rc == CS_OK) {
        rc = cs_json_req_int(c, v, "mem_mb", 0, INT64_MAX, &g->mem_mb);
    }
    if (rc == CS_OK) {
        rc = dup_into(&g->name, name, c->err);
    }
    return rc;
}

static cs_rc decode_caps(cs_jctx *c, const cJSON *obj, const char *key, cs_caps *caps)
{
    const cJSON *v = NULL, *gpus = NULL;
    size_t count, i = 0;
    cs_rc rc = cs_json_req_object(c, obj, key, &v);
    if (rc != CS_OK) {
        return rc;
    }
    cs_jpath_push_key(&c->path, key);
    rc = cs_json_check_keys(c, v, CAPS_KEYS, sizeof(CAPS_KEYS) / sizeof(CAPS_KEYS[0]),
                            CS_DIAG_ERROR);
    if (rc == CS_OK) {
        rc = decode_name_list(c, v, "backends", &caps->backends, &caps->n_backends);
    }
    if (rc == CS_OK) {
        rc = decode_name_list(c, v, "models", &caps->models, &caps->n_models);
    }
    if (rc == CS_OK) {
        rc = cs_json_req_int(c, v, "threads", 1, 1 << 20, &caps->threads);
    }
    if (rc == CS_OK) {
        rc = cs_json_req_int(c, v, "mem_mb", 0, INT64_MAX, &caps->mem_mb);
    }
    if (rc == CS_OK) {
        rc = cs_json_req_array(c, v, "gpus", &gpus);
    }
    if (rc != CS_OK) {
        goto out;
    }
    cs_jpath_push_key(&c->path, "gpus");
    count = (size_t)cJSON_GetArraySize(gpus);
    if (count > CS_PROTO_MAX_LIST) {
        rc = cs_jctx_error(c, gpus, NULL, "more than %d items (%zu)", CS_PROTO_MAX_LIST, count);
    } else {
        caps->gpus = cs_calloc_array(count ? count : 1, sizeof(cs_gpu));
        if (!caps->gpus) {
            rc = cs_err_set(c->err, CS_ENOMEM, 0, "decode: out of memory");
        }
    }
    for (const cJSON *e = gpus->child; rc == CS_OK && e; e = e->next, i++) {
        cs_jpath_push_index(&c->path, i);
        caps->n_gpus = i + 1;
        rc = decode_gpu(c, e, &caps->gpus[i]);
        cs_jpath_pop(&c->path);
    }
    cs_jpath_pop(&c->path);
out:
    cs_jpath_pop(&c->path);
    return rc;
}

/* The text of the message being decoded. When it is canonical (cs_canon_is_canonical: what
 * cs_msg_encode sends), a payload's canonical text is its own bytes in it, found by member_span
 * without rendering the tree again. */
typedef struct msg_src {
    const char *text;
    size_t len;
    bool canonical;
} msg_src;

/* p at a JSON value of a canonical text ending before end: the position after it. */
static const char *skip_json_value(const char *p, const char *end)
{
    size_t depth = 0;
    bool in_str = false;
    for (; p < end; p++) {
        char ch = *p;
        if (in_str) {
            if (ch == '\\') {
                p++;
            } else if (ch == '"') {
                in_str = false;
                if (depth == 0) {
                    return p + 1;
                }
            }
        } else if (ch == '"') {
            in_str = true;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (depth == 0) {
                return p; /* the end of a scalar at the end of its container */
            }
            if (--depth == 0) {
                return p + 1;
            }
        } else if (ch == ',' && depth == 0) {
            return p;
        }
    }
    return end;
}

/* The value of the top-level member key of a canonical object text (keys without escapes, no
 * whitespace): its offset and length. false when there is no such member. */
static bool member_span(const msg_src *src, const char *key, size_t *off, size_t *n)
{
    const char *p = src->text + 1, *end = src->text + src->len;
    size_t kl = strlen(key);
    if (src->len < 2 || src->text[0] != '{') {
        return false;
    }
    while (p < end && *p == '"') {
        const char *k = p + 1, *kend = memchr(k, '"', (size_t)(end - k)), *v, *vend;
        if (!kend || kend + 1 >= end || kend[1] != ':') {
            return false;
        }
        v = kend + 2;
        vend = skip_json_value(v, end);
        if ((size_t)(kend - k) == kl && memcmp(k, key, kl) == 0) {
            *off = (size_t)(v - src->text);
            *n = (size_t)(vend - v);
            return true;
        }
        if (vend >= end || *vend != ',') {
            return false;
        }
        p = vend + 1;
    }
    return false;
}

/* Canonical text of v (a node of the message) into *dst. */
static cs_rc canon_into(cs_jctx *c, const cJSON *v, char **dst)
{
    cs_err e = {0};
    cs_rc rc = cs_canon_string(v, dst, NULL, &e);
    if (rc == CS_ENOMEM) {
        return cs_err_set(c->err, CS_ENOMEM, 0, "decode: out of memory");
    }
    if (rc != CS_OK) {
        return cs_jctx_error(c, v, NULL, "%s", e.msg);
    }
    return CS_OK;
}

/* A payload field's canonical text into *dst: its bytes in a canonical message, else rendered. */
static cs_rc payload_into(cs_jctx *c, const msg_src *src, const char *key, const cJSON *v,
                          char **dst)
{
    size_t off = 0, n = 0;
    if (src && src->canonical && member_span(src, key, &off, &n)) {
        *dst = cs_strndup(src->text + off, n);
        return *dst ? CS_OK : cs_err_set(c->err, CS_ENOMEM, 0, "decode: out of memory");
    }
    return canon_into(c, v, dst);
}

/* A sweep document's text into *dst as it was written: its bytes in the message (compact, as
 * cs_msg_encode sends it), checked to mean the same as the parsed value v. A message that spells
 * it otherwise (whitespace, escaped keys) gives the canonical text: the same sweep, its object
 * members sorted. */
static cs_rc doc_into(cs_jctx *c, const msg_src *src, const char *key, const cJSON *v, char **dst)
{
    size_t off = 0, n = 0;
    char *canon = NULL, *again = NULL, *text = NULL;
    cJSON *t = NULL;
    cs_rc rc = canon_into(c, v, &canon);
    if (rc != CS_OK || !src || !member_span(src, key, &off, &n) || src->text[off] != '{') {
        *dst = canon;
        return rc;
    }
    text = cs_strndup(src->text + off, n);
    if (text && cs_json_parse(text, n, key, &t, NULL) == CS_OK &&
        cs_canon_string(t, &again, NULL, NULL) == CS_OK && strcmp(again, canon) == 0) {
        *dst = text;
        text = NULL;
    } else {
        *dst = canon;
        canon = NULL;
    }
    cJSON_Delete(t);
    free(again);
    free(canon);
    free(text);
    return *dst ? CS_OK : cs_err_set(c->err, CS_ENOMEM, 0, "decode: out of memory");
}

/* F_CLAIMREQ: {"worker":..,"instance":..,"capabilities":..} into *cl. */
static cs_rc decode_claimreq(cs_jctx *c, const cJSON *obj, const field *f, cs_msg_claim *cl)
{
    const cJSON *o = NULL;
    const char *s = NULL;
    cs_rc rc = f->required ? cs_json_req_object(c, obj, f->key, &o)
                           : cs_json_opt_object(c, obj, f->key, &o);
    if (rc != CS_OK || !o) {
        return rc;
    }
    cs_jpath_push_key(&c->path, f->key);
    rc = cs_json_check_keys(c, o, CLAIM_KEYS, 3, CS_DIAG_ERROR);
    if (rc == CS_OK) {
        rc = cs_json_req_string(c, o, "worker", &s);
    }
    if (rc == CS_OK) {
        cs_jpath_push_key(&c->path, "worker");
        rc = check_name(c, cJSON_GetObjectItemCaseSensitive(o, "worker"), s, NULL);
        cs_jpath_pop(&c->path);
    }
    if (rc == CS_OK) {
        char *w = NULL;
        rc = dup_into(&w, s, c->err);
        cl->worker = w;
    }
    if (rc == CS_OK) {
        rc = cs_json_req_string(c, o, "instance", &s);
    }
    if (rc == CS_OK) {
        cs_jpath_push_key(&c->path, "instance");
        rc = check_token(c, cJSON_GetObjectItemCaseSensitive(o, "instance"), s);
        cs_jpath_pop(&c->path);
    }
    if (rc == CS_OK) {
        char *inst = NULL;
        rc = dup_into(&inst, s, c->err);
        cl->instance = inst;
    }
    if (rc == CS_OK) {
        rc = decode_caps(c, o, "capabilities", &cl->caps);
    }
    cs_jpath_pop(&c->path);
    return rc;
}

/* F_JOBREF: {"job_id":..,"attempt":..,"lease_token":..} into the three members of f. */
static cs_rc decode_jobref(cs_jctx *c, const cJSON *obj, const field *f, cs_msg *m)
{
    const cJSON *o = NULL;
    const char *s = NULL;
    cs_rc rc = f->required ? cs_json_req_object(c, obj, f->key, &o)
                           : cs_json_opt_object(c, obj, f->key, &o);
    if (rc != CS_OK || !o) {
        return rc;
    }
    cs_jpath_push_key(&c->path, f->key);
    rc = cs_json_check_keys(c, o, JOBREF_KEYS, 3, CS_DIAG_ERROR);
    if (rc == CS_OK) {
        rc = cs_json_req_int(c, o, "job_id", f->min, f->max, AT(m, f->off, int64_t));
    }
    if (rc == CS_OK) {
        rc = cs_json_req_int(c, o, "attempt", f->min, f->max, AT(m, f->off2, int64_t));
    }
    if (rc == CS_OK) {
        rc = cs_json_req_string(c, o, "lease_token", &s);
    }
    if (rc == CS_OK) {
        cs_jpath_push_key(&c->path, "lease_token");
        rc = check_token(c, cJSON_GetObjectItemCaseSensitive(o, "lease_token"), s);
        cs_jpath_pop(&c->path);
    }
    if (rc == CS_OK) {
        rc = dup_into(AT(m, f->off3, char *), s, c->err);
    }
    cs_jpath_pop(&c->path);
    return rc;
}

/* F_RESDOC: the result codec's decoder; its refusals (a null metric is CS_ERANGE there, too
 * many metrics CS_ETOOBIG) are protocol errors here. */
static cs_rc decode_result(cs_jctx *c, const cJSON *obj, const field *f, cs_result *r)
{
    const cJSON *o = NULL;
    cs_rc rc = cs_json_req_object(c, obj, f->key, &o);
    if (rc != CS_OK) {
        return rc;
    }
    cs_jpath_push_key(&c->path, f->key);
    rc = cs_result_from_json(c, o, r);
    cs_jpath_pop(&c->path);
    return rc == CS_OK || rc == CS_ENOMEM ? rc : CS_ESCHEMA;
}

static cs_rc decode_field(cs_jctx *c, const cJSON *obj, const field *f, cs_msg *m,
                          const msg_src *src)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->key);
    const char *s = NULL;
    cs_rc rc = CS_OK;
    switch (f->kind) {
    case F_NAME:
    case F_TEXT:
    case F_TOKEN:
        rc = f->required ? cs_json_req_string(c, obj, f->key, &s)
                         : cs_json_opt_string(c, obj, f->key, NULL, &s);
        if (rc != CS_OK || !s) {
            return rc;
        }
        cs_jpath_push_key(&c->path, f->key);
        if (f->kind == F_NAME) {
            rc = check_name(c, v, s, f);
        } else if (f->kind == F_TOKEN) {
            rc = check_token(c, v, s);
        } else if (strlen(s) > CS_PROTO_MAX_TEXT) {
            rc = cs_jctx_error(c, v, NULL, "longer than %zu bytes (%zu)", CS_PROTO_MAX_TEXT,
                               strlen(s));
        }
        cs_jpath_pop(&c->path);
        return rc == CS_OK ? dup_into(AT(m, f->off, char *), s, c->err) : rc;
    case F_INT:
        return f->required
                       ? cs_json_req_int(c, obj, f->key, f->min, f->max, AT(m, f->off, int64_t))
                       : cs_json_opt_int(c, obj, f->key, 0, f->min, f->max, AT(m, f->off, int64_t));
    case F_BOOL:
        return f->required ? cs_json_req_bool(c, obj, f->key, AT(m, f->off, bool))
                           : cs_json_opt_bool(c, obj, f->key, false, AT(m, f->off, bool));
    case F_OBJ:
    case F_DOC: {
        const cJSON *o = NULL;
        rc = f->required ? cs_json_req_object(c, obj, f->key, &o)
                         : cs_json_opt_object(c, obj, f->key, &o);
        if (rc != CS_OK || !o) {
            return rc;
        }
        cs_jpath_push_key(&c->path, f->key);
        rc = f->kind == F_DOC ? doc_into(c, src, f->key, o, AT(m, f->off, char *))
                              : payload_into(c, src, f->key, o, AT(m, f->off, char *));
        cs_jpath_pop(&c->path);
        return rc;
    }
    case F_ANY:
        if (!v) {
            return f->required ? cs_jctx_error(c, obj, NULL, "missing required key \"%s\"", f->key)
                               : CS_OK;
        }
        cs_jpath_push_key(&c->path, f->key);
        rc = payload_into(c, src, f->key, v, AT(m, f->off, char *));
        cs_jpath_pop(&c->path);
        return rc;
    case F_CAPS:
        return decode_caps(c, obj, f->key, AT(m, f->off, cs_caps));
    case F_CLAIMREQ:
        return decode_claimreq(c, obj, f, AT(m, f->off, cs_msg_claim));
    case F_JOBREF:
        return decode_jobref(c, obj, f, m);
    case F_RESDOC:
        return decode_result(c, obj, f, AT(m, f->off, cs_result));
    case F_NAMES:
        if (!v || cJSON_IsNull(v)) {
            return CS_OK;
        }
        rc = decode_name_list(c, obj, f->key, AT(m, f->off, char **), AT(m, f->off2, size_t));
        if (rc == CS_OK && *AT(m, f->off2, size_t) > (size_t)f->max) {
            rc = cs_jctx_error(c, v, f->key, "more than %lld items (%zu)", (long long)f->max,
                               *AT(m, f->off2, size_t));
        }
        return rc;
    case F_RC:
    case F_KIND:
        rc = cs_json_req_string(c, obj, f->key, &s);
        if (rc != CS_OK) {
            return rc;
        }
        if (f->kind == F_RC) {
            cs_rc code = CS_OK;
            if (!cs_rc_from_name(s, &code) || code == CS_OK) {
                return cs_jctx_error(c, v, f->key, "unknown error code \"%.64s\"", s);
            }
            *AT(m, f->off, cs_rc) = code;
        } else {
            cs_fail_kind k = cs_fail_kind_from_name(s);
            if (k == CS_FAIL_NONE) {
                return cs_jctx_error(c, v, f->key, "unknown failure kind \"%.64s\"", s);
            }
            *AT(m, f->off, cs_fail_kind) = k;
        }
        return CS_OK;
    }
    return cs_jctx_error(c, v, f->key, "internal: unknown field kind");
}

/* Constraints between fields. */
static cs_rc check_message(cs_jctx *c, const cJSON *obj, const cs_msg *m)
{
    if (m->type == CS_MSG_CANCEL) {
        int n = (m->cancel.sweep != NULL) + (m->cancel.job != 0) + (m->cancel.filter != NULL);
        if (n != 1) {
            return cs_jctx_error(c, obj, NULL,
                                 "expected exactly one of \"sweep\", \"job\", \"filter\", got %d",
                                 n);
        }
    }
    return CS_OK;
}

/* Walks the fields of an already-parsed message object. */
static cs_rc decode_tree(const cJSON *root, const msg_src *src, cs_msg *m, cs_err *err)
{
    cs_jctx c;
    const char *type_name = NULL;
    const char *known[32];
    size_t n_known = 0;
    int64_t version = 0;
    cs_msg_type type;
    const type_fields *tf;
    cs_rc rc;

    cs_jctx_init(&c, NULL, err);
    if (!cJSON_IsObject(root)) {
        return cs_err_set(err, CS_EPROTO, 0, "message: expected a JSON object, got %s",
                          cs_json_type_name(root));
    }
    rc = cs_json_req_int(&c, root, "v", INT64_MIN, INT64_MAX, &version);
    if (rc != CS_OK) {
        return CS_EPROTO;
    }
    if (version != CS_PROTO_VERSION) {
        return cs_err_set(err, CS_EVERSION, 0,
                          "v: protocol version %" PRId64
                          " is not supported (this build speaks version %d)",
                          version, CS_PROTO_VERSION);
    }
    rc = cs_json_req_string(&c, root, "type", &type_name);
    if (rc != CS_OK) {
        return CS_EPROTO;
    }
    type = cs_msg_type_from_name(type_name);
    if (type == CS_MSG_NONE) {
        return cs_err_set(err, CS_EPROTO, 0, "type: unknown message type \"%.64s\"", type_name);
    }
    m->type = type;
    tf = &FIELDS[type];

    /* Everything below names the place as TYPE.field. */
    cs_jpath_push_key(&c.path, type_name);
    known[n_known++] = "v";
    known[n_known++] = "type";
    for (size_t i = 0; i < sizeof(ENVELOPE) / sizeof(ENVELOPE[0]); i++) {
        known[n_known++] = ENVELOPE[i].key;
    }
    for (size_t i = 0; i < tf->n && n_known < sizeof(known) / sizeof(known[0]); i++) {
        known[n_known++] = tf->fields[i].key;
    }
    rc = cs_json_check_keys(&c, root, known, n_known, CS_DIAG_ERROR);
    for (size_t i = 0; rc == CS_OK && i < sizeof(ENVELOPE) / sizeof(ENVELOPE[0]); i++) {
        rc = decode_field(&c, root, &ENVELOPE[i], m, src);
    }
    for (size_t i = 0; rc == CS_OK && i < tf->n; i++) {
        rc = decode_field(&c, root, &tf->fields[i], m, src);
    }
    if (rc == CS_OK) {
        rc = check_message(&c, root, m);
    }
    return rc == CS_ESCHEMA ? CS_EPROTO : rc;
}

cs_rc cs_msg_decode(const void *data, size_t len, cs_msg *m, cs_err *err)
{
    cJSON *root = NULL;
    msg_src src;
    cs_rc rc;
    memset(m, 0, sizeof(*m));
    if (len > CS_PROTO_MAX_BYTES) {
        return cs_err_set(err, CS_ETOOBIG, 0, "message: %zu bytes exceed the limit of %zu", len,
                          CS_PROTO_MAX_BYTES);
    }
    rc = cs_json_parse(data ? (const char *)data : "", data ? len : 0, "message", &root, err);
    if (rc != CS_OK) {
        return rc;
    }
    src.text = data;
    src.len = len;
    src.canonical = data && cs_canon_is_canonical(data, len);
    rc = decode_tree(root, &src, m, err);
    if (rc == CS_EPROTO && err) {
        err->rc = CS_EPROTO; /* the getters report CS_ESCHEMA */
    }
    if (rc != CS_OK) {
        cs_msg_fini(m);
    }
    cJSON_Delete(root);
    return rc;
}

/* ---- encoding ---------------------------------------------------------------------------- */

static cs_rc enc_fail(cs_err *err, const char *type, const char *key, const char *what)
{
    return cs_err_set(err, CS_EINVAL, 0, "encode %s.%s: %s", type, key, what);
}

/* Adds a string array; a NULL item is an error. */
static cs_rc add_name_list(cJSON *obj, const char *key, char *const *items, size_t n,
                           const char *type, cs_err *err)
{
    cJSON *arr = cJSON_AddArrayToObject(obj, key);
    if (!arr) {
        return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
    }
    if (n > 0 && !items) {
        return enc_fail(err, type, key, "list is NULL but its count is not 0");
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *s;
        if (!items[i]) {
            return enc_fail(err, type, key, "NULL item in list");
        }
        s = cJSON_CreateString(items[i]);
        if (!s || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
        }
    }
    return CS_OK;
}

static bool add_int(cJSON *obj, const char *key, int64_t v)
{
    return cJSON_AddNumberToObject(obj, key, (double)v) != NULL;
}

static cs_rc encode_caps(cJSON *parent, const char *key, const cs_caps *caps, const char *type,
                         cs_err *err)
{
    cJSON *o = cJSON_AddObjectToObject(parent, key), *gpus = NULL;
    cs_rc rc;
    if (!o) {
        return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
    }
    rc = add_name_list(o, "backends", caps->backends, caps->n_backends, type, err);
    if (rc == CS_OK) {
        rc = add_name_list(o, "models", caps->models, caps->n_models, type, err);
    }
    if (rc != CS_OK) {
        return rc;
    }
    /* Range checks of the integers happen in the decode pass; these are small by contract, but a
     * value beyond 2^53 would change in the double, so refuse it here. */
    if (caps->threads > INT_EXACT || caps->mem_mb > INT_EXACT || caps->threads < -INT_EXACT ||
        caps->mem_mb < -INT_EXACT) {
        return enc_fail(err, type, key, "integer beyond +-2^53");
    }
    gpus = cJSON_AddArrayToObject(o, "gpus");
    if (!add_int(o, "threads", caps->threads) || !add_int(o, "mem_mb", caps->mem_mb) || !gpus) {
        return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
    }
    if (caps->n_gpus > 0 && !caps->gpus) {
        return enc_fail(err, type, key, "gpus is NULL but n_gpus is not 0");
    }
    for (size_t i = 0; i < caps->n_gpus; i++) {
        const cs_gpu *g = &caps->gpus[i];
        cJSON *go = cJSON_CreateObject();
        if (!go || !cJSON_AddItemToArray(gpus, go)) {
            cJSON_Delete(go);
            return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
        }
        if (!g->name) {
            return enc_fail(err, type, key, "a GPU name is NULL");
        }
        if (g->index > INT_EXACT || g->index < -INT_EXACT || g->mem_mb > INT_EXACT ||
            g->mem_mb < -INT_EXACT) {
            return enc_fail(err, type, key, "integer beyond +-2^53");
        }
        if (!add_int(go, "index", g->index) || !cJSON_AddStringToObject(go, "name", g->name) ||
            !add_int(go, "mem_mb", g->mem_mb)) {
            return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
        }
    }
    return CS_OK;
}

/* Adds a sweep document under key as written, only without whitespace: its member order is the
 * order of the sweep's axes and models, which canonical JSON would sort away. */
static cs_rc add_doc(cJSON *obj, const char *key, const char *text, const char *type, cs_err *err)
{
    cJSON *t = NULL, *raw;
    cs_err e = {0};
    size_t len = strlen(text), j = 0;
    bool in_str = false;
    char *compact;
    cs_rc rc = cs_json_parse(text, len, key, &t, &e);
    if (rc == CS_OK && !cJSON_IsObject(t)) {
        rc = cs_err_set(&e, CS_EINVAL, 0, "expected a JSON object, got %s", cs_json_type_name(t));
    }
    cJSON_Delete(t);
    if (rc == CS_ENOMEM) {
        return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
    }
    if (rc != CS_OK) {
        return cs_err_set(err, CS_EINVAL, 0, "encode %s.%s: %s", type, key, e.msg);
    }
    compact = malloc(len + 1);
    if (!compact) {
        return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
    }
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (in_str) {
            if (ch == '\\' && i + 1 < len) {
                compact[j++] = ch;
                ch = text[++i];
            } else if (ch == '"') {
                in_str = false;
            }
        } else if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
            continue;
        } else if (ch == '"') {
            in_str = true;
        }
        compact[j++] = ch;
    }
    compact[j] = '\0';
    raw = cJSON_CreateRaw(compact);
    free(compact);
    if (!raw || !cJSON_AddItemToObject(obj, key, raw)) {
        cJSON_Delete(raw);
        return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
    }
    return CS_OK;
}

/* Adds a JSON payload text under key: as it is when it is canonical already (what the decoder
 * hands out, and the store's configs; one scan, no tree), else parsed (and canonicalised with
 * the message). */
static cs_rc add_json(cJSON *obj, const char *key, const char *text, bool want_object,
                      const char *type, cs_err *err)
{
    cJSON *t = NULL;
    cs_err e = {0};
    size_t len = strlen(text);
    cs_rc rc;
    if ((!want_object || text[0] == '{') && cs_canon_is_canonical(text, len)) {
        t = cJSON_CreateRaw(text);
        if (!t || !cJSON_AddItemToObject(obj, key, t)) {
            cJSON_Delete(t);
            return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
        }
        return CS_OK;
    }
    rc = cs_json_parse(text, len, key, &t, &e);
    if (rc == CS_ENOMEM) {
        return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
    }
    if (rc != CS_OK) {
        return cs_err_set(err, CS_EINVAL, 0, "encode %s.%s: not valid JSON: %s", type, key, e.msg);
    }
    if (want_object && !cJSON_IsObject(t)) {
        rc = cs_err_set(err, CS_EINVAL, 0, "encode %s.%s: expected a JSON object, got %s", type,
                        key, cs_json_type_name(t));
        cJSON_Delete(t);
        return rc;
    }
    if (!cJSON_AddItemToObject(obj, key, t)) {
        cJSON_Delete(t);
        return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
    }
    return CS_OK;
}

static cs_rc encode_field(cJSON *obj, const field *f, const cs_msg *m, const char *type,
                          cs_err *err)
{
    bool ok = true;
    switch (f->kind) {
    case F_NAME:
    case F_TEXT:
    case F_OBJ:
    case F_DOC:
    case F_ANY:
    case F_TOKEN: {
        const char *s = *CAT(m, f->off, str_ptr);
        if (!s) {
            return f->required ? enc_fail(err, type, f->key, "required but NULL") : CS_OK;
        }
        if (f->kind == F_DOC) {
            return add_doc(obj, f->key, s, type, err);
        }
        if (f->kind == F_OBJ || f->kind == F_ANY) {
            return add_json(obj, f->key, s, f->kind == F_OBJ, type, err);
        }
        ok = cJSON_AddStringToObject(obj, f->key, s) != NULL;
        break;
    }
    case F_INT: {
        int64_t v = *CAT(m, f->off, int64_t);
        char buf[96];
        if (!f->required && v == 0) {
            return CS_OK;
        }
        if (v < f->min || v > f->max || v > INT_EXACT || v < -INT_EXACT) {
            snprintf(buf, sizeof(buf), "%" PRId64 " is out of range %" PRId64 "..%" PRId64, v,
                     f->min, f->max < INT_EXACT ? f->max : INT_EXACT);
            return enc_fail(err, type, f->key, buf);
        }
        ok = add_int(obj, f->key, v);
        break;
    }
    case F_BOOL:
        if (!f->required && !*CAT(m, f->off, bool)) {
            return CS_OK;
        }
        ok = cJSON_AddBoolToObject(obj, f->key, *CAT(m, f->off, bool)) != NULL;
        break;
    case F_CAPS:
        return encode_caps(obj, f->key, CAT(m, f->off, cs_caps), type, err);
    case F_CLAIMREQ: {
        const cs_msg_claim *cl = CAT(m, f->off, cs_msg_claim);
        cJSON *o;
        if (!cl->worker) {
            return f->required ? enc_fail(err, type, f->key, "required but NULL") : CS_OK;
        }
        if (!cl->instance) {
            return enc_fail(err, type, f->key, "instance is required but NULL");
        }
        o = cJSON_AddObjectToObject(obj, f->key);
        if (!o || !cJSON_AddStringToObject(o, "worker", cl->worker) ||
            !cJSON_AddStringToObject(o, "instance", cl->instance)) {
            return cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
        }
        return encode_caps(o, "capabilities", &cl->caps, type, err);
    }
    case F_NAMES: {
        char *const *items = *CAT(m, f->off, str_list);
        size_t n = *CAT(m, f->off2, size_t);
        if (n > (size_t)f->max) {
            return enc_fail(err, type, f->key, "too many items");
        }
        return n == 0 ? CS_OK : add_name_list(obj, f->key, items, n, type, err);
    }
    case F_RESDOC: {
        cJSON *t = NULL;
        cs_err e = {0};
        cs_rc rc = cs_result_to_json(CAT(m, f->off, cs_result), &t, &e);
        if (rc != CS_OK) {
            return rc == CS_ENOMEM ? cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory")
                                   : enc_fail(err, type, f->key, e.msg);
        }
        ok = cJSON_AddItemToObject(obj, f->key, t);
        if (!ok) {
            cJSON_Delete(t);
        }
        break;
    }
    case F_JOBREF: {
        int64_t id = *CAT(m, f->off, int64_t), at = *CAT(m, f->off2, int64_t);
        const char *tok = *CAT(m, f->off3, str_ptr);
        cJSON *o;
        if (id == 0 && at == 0 && !tok && !f->required) {
            return CS_OK;
        }
        if (id < f->min || id > INT_EXACT || at < f->min || at > INT_EXACT) {
            return enc_fail(err, type, f->key, "job_id and attempt must both be >= 1");
        }
        if (!tok) {
            return enc_fail(err, type, f->key, "lease_token is required but NULL");
        }
        o = cJSON_AddObjectToObject(obj, f->key);
        ok = o && add_int(o, "job_id", id) && add_int(o, "attempt", at) &&
             cJSON_AddStringToObject(o, "lease_token", tok) != NULL;
        break;
    }
    case F_RC: {
        cs_rc code = *CAT(m, f->off, cs_rc), back = CS_OK;
        const char *name = cs_rc_name(code);
        if (code == CS_OK || !cs_rc_from_name(name, &back) || back != code) {
            return enc_fail(err, type, f->key, "not an error code");
        }
        ok = cJSON_AddStringToObject(obj, f->key, name) != NULL;
        break;
    }
    case F_KIND: {
        cs_fail_kind k = *CAT(m, f->off, cs_fail_kind);
        if ((int)k <= (int)CS_FAIL_NONE || (int)k >= (int)CS_FAIL_KIND_COUNT) {
            return enc_fail(err, type, f->key, "not a failure kind");
        }
        ok = cJSON_AddStringToObject(obj, f->key, cs_fail_kind_name(k)) != NULL;
        break;
    }
    }
    return ok ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
}

cs_rc cs_msg_encode(const cs_msg *m, char **out, size_t *len, cs_err *err)
{
    cJSON *root = NULL;
    cs_buf buf = {0};
    char *text = NULL;
    size_t n = 0;
    cs_msg check;
    cs_err e = {0};
    const char *type;
    cs_rc rc = CS_OK;

    *out = NULL;
    if (len) {
        *len = 0;
    }
    if (!type_valid(m->type)) {
        return cs_err_set(err, CS_EINVAL, 0, "encode: invalid message type %d", (int)m->type);
    }
    type = cs_msg_type_name(m->type);
    root = cJSON_CreateObject();
    if (!root || !add_int(root, "v", CS_PROTO_VERSION) ||
        !cJSON_AddStringToObject(root, "type", type)) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
        goto out;
    }
    for (size_t i = 0; rc == CS_OK && i < sizeof(ENVELOPE) / sizeof(ENVELOPE[0]); i++) {
        rc = encode_field(root, &ENVELOPE[i], m, type, err);
    }
    for (size_t i = 0; rc == CS_OK && i < FIELDS[m->type].n; i++) {
        rc = encode_field(root, &FIELDS[m->type].fields[i], m, type, err);
    }
    if (rc != CS_OK) {
        goto out;
    }
    /* Trusted: the only raw items are payloads add_json found canonical, and the sweep documents
     * add_doc checked and compacted (then the message is canonical but for their member order). */
    rc = cs_canon_append_trusted(root, &buf, &e);
    if (rc != CS_OK) {
        rc = cs_err_set(err, rc == CS_ENOMEM ? CS_ENOMEM : CS_EINVAL, 0, "encode %s: %s", type,
                        e.msg);
        goto out;
    }
    n = buf.len;
    text = cs_buf_take(&buf);
    if (!text) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "encode: out of memory");
        goto out;
    }
    if (n > CS_PROTO_MAX_BYTES) {
        rc = cs_err_set(err, CS_ETOOBIG, 0, "encode %s: %zu bytes exceed the limit of %zu", type, n,
                        CS_PROTO_MAX_BYTES);
        goto out;
    }
    /* The decoder is the one definition of a valid message: check our own output with it. */
    rc = cs_msg_decode(text, n, &check, &e);
    cs_msg_fini(&check);
    if (rc != CS_OK) {
        rc = cs_err_set(err, rc == CS_ENOMEM ? CS_ENOMEM : CS_EINVAL, 0, "encode %s", e.msg);
        goto out;
    }
    *out = text;
    text = NULL;
    if (len) {
        *len = n;
    }
out:
    free(text);
    cs_buf_fini(&buf);
    cJSON_Delete(root);
    return rc;
}

/* ---- tokens ------------------------------------------------------------------------------- */

cs_rc cs_proto_new_token(char out[CS_PROTO_TOKEN_LEN + 1], cs_err *err)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[CS_PROTO_TOKEN_LEN / 2];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            out[0] = '\0';
            return cs_err_errno(err, n < 0 ? errno : EIO, "getrandom (a lease token)");
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[CS_PROTO_TOKEN_LEN] = '\0';
    return CS_OK;
}

bool cs_proto_token_ok(const char *s)
{
    size_t i = 0;
    if (!s) {
        return false;
    }
    for (; s[i] != '\0' && i <= CS_PROTO_TOKEN_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return i == CS_PROTO_TOKEN_LEN;
}

bool cs_proto_token_eq(const char *a, const char *b)
{
    unsigned diff = 0;
    if (!cs_proto_token_ok(a) || !cs_proto_token_ok(b)) {
        return false;
    }
    for (size_t i = 0; i < CS_PROTO_TOKEN_LEN; i++) {
        diff |= (unsigned)((unsigned char)a[i] ^ (unsigned char)b[i]);
    }
    return diff == 0;
}

/* ---- log tails --------------------------------------------------------------------------- */

/* Length of the valid UTF-8 character at s[0..n), or 0 for an invalid byte or a NUL. */
static size_t char_len(const unsigned char *s, size_t n)
{
    if (s[0] == 0) {
        return 0;
    }
    if (s[0] < 0x80) {
        return 1;
    }
    for (size_t k = 2; k <= 4 && k <= n; k++) {
        if (cs_utf8_valid((const char *)s, k, NULL)) {
            return k;
        }
    }
    return 0;
}

char *cs_proto_log_tail(const char *log, size_t len)
{
    const unsigned char *s = (const unsigned char *)log;
    size_t start = 0, i, o = 0;
    char *out;
    if (len > CS_PROTO_MAX_TEXT) {
        start = len - CS_PROTO_MAX_TEXT;
        /* Skip continuation bytes so the tail starts at a character. */
        while (start < len && (s[start] & 0xC0) == 0x80) {
            start++;
        }
    }
    out = malloc(len - start + 1);
    if (!out) {
        return NULL;
    }
    for (i = start; i < len;) {
        size_t k = char_len(s + i, len - i);
        if (k == 0) {
            out[o++] = '?';
            i++;
        } else {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        }
    }
    out[o] = '\0';
    return out;
}
