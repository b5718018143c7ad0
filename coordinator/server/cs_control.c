/* cs_control.c - see cs_control.h. Reply shapes: step 3 contract ("Control replies"). */
#include "cs_control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_expand.h"
#include "cs_json.h"
#include "cs_plan_report.h"
#include "cs_prefetch.h"
#include "cs_sweep.h"
#include "cs_watch.h"

/* A worker heard from within this long (any message: heartbeats every few seconds, long-poll
 * claims every 10 s) and that has not said BYE since counts as active (STATUS.workers,
 * WORKERS[].active). */
#define CTL_WORKER_ALIVE_MS ((int64_t)120000)
/* The most log bytes LOGS sends (well below CS_PROTO_MAX_BYTES after JSON escaping). */
#define CTL_MAX_LOG       ((size_t)1 << 20)
#define CTL_PLAN_EXAMPLES 5
/* The most characters of a job's last error that JOBS sends (its whole text: calsweep logs). */
#define CTL_MAX_JOB_ERROR 512

/* ---- replies --------------------------------------------------------------------------------- */

static cs_rc reply_error(cs_msg *rep, cs_rc code, const char *message, cs_err *err)
{
    size_t n = strlen(message);
    cs_msg_init(rep, CS_MSG_ERROR);
    rep->error.code = code == CS_OK ? CS_EINTERNAL : code;
    if (n >= CS_PROTO_MAX_TEXT) {
        n = CS_PROTO_MAX_TEXT - 1;
        while (n > 0 && ((unsigned char)message[n] & 0xC0u) == 0x80u) {
            n--; /* do not cut a UTF-8 sequence */
        }
    }
    rep->error.message = cs_strndup(message, n);
    if (rep->error.message == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "control reply");
    }
    return CS_OK;
}

/* Takes root (deleted here) and makes it the canonical data of an OK reply. */
static cs_rc reply_ok(cs_msg *rep, cJSON *root, cs_err *err)
{
    char *text = NULL;
    size_t len = 0;
    cs_rc rc;
    if (root == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "control reply");
    }
    rc = cs_canon_string(root, &text, &len, err);
    cJSON_Delete(root);
    if (rc != CS_OK) {
        return rc;
    }
    cs_msg_init(rep, CS_MSG_OK);
    rep->ok.data = text;
    return CS_OK;
}

/* Answers an error of a request: expected failures become an ERROR reply, out of memory is
 * passed on. */
static cs_rc reply_from_err(cs_msg *rep, cs_rc rc, const cs_err *e, cs_err *err)
{
    if (rc == CS_ENOMEM) {
        return cs_err_set(err, CS_ENOMEM, 0, "%s", e->msg);
    }
    return reply_error(rep, rc, e->msg[0] ? e->msg : cs_rc_str(rc), err);
}

static bool add_num(cJSON *o, const char *key, double v)
{
    return cJSON_AddNumberToObject(o, key, v) != NULL;
}

static bool add_ms_or_null(cJSON *o, const char *key, int64_t ms)
{
    return ms > 0 ? add_num(o, key, (double)ms) : cJSON_AddNullToObject(o, key) != NULL;
}

/* ---- sweep references ------------------------------------------------------------------------ */

/* A name or a decimal id; CS_ENOENT naming the reference. */
static cs_rc resolve_sweep(cs_store *s, const char *ref, int64_t *id, cs_err *err)
{
    cs_store_sweep_info info;
    cs_err e = {0};
    bool digits = ref[0] != '\0' && strlen(ref) <= 15;
    cs_rc rc;

    for (const char *p = ref; digits && *p; p++) {
        digits = *p >= '0' && *p <= '9';
    }
    if (digits) {
        int64_t v = strtoll(ref, NULL, 10);
        rc = cs_store_sweep_get(s, v, &info, &e);
        if (rc == CS_OK) {
            *id = v;
            return CS_OK;
        }
        if (rc != CS_ENOENT) {
            return cs_err_set(err, rc, 0, "%s", e.msg);
        }
    }
    rc = cs_store_sweep_find(s, ref, id, &e);
    if (rc == CS_ENOENT) {
        return cs_err_set(err, CS_ENOENT, 0, "no sweep '%s' (see calsweep status)", ref);
    }
    if (rc != CS_OK) {
        return cs_err_set(err, rc, 0, "%s", e.msg);
    }
    return CS_OK;
}

/* ---- SUBMIT, PLAN, EXTEND: a sweep document ---------------------------------------------------
 */

/* Parses a sweep document. On a validation failure fills *msg (owned) with every error, one
 * "path: reason" per line, and returns CS_ESCHEMA. Warnings go to warnings (may be NULL) as
 * "path: reason" strings. */
static cs_rc parse_sweep(const char *doc, const char *label, cs_sweep **out, cJSON *warnings,
                         char **msg, cs_err *err)
{
    cs_diags diags;
    cs_buf b = {0};
    cs_rc rc;

    *msg = NULL;
    cs_diags_init(&diags);
    rc = cs_sweep_parse(doc, strlen(doc), label, out, &diags, err);
    if (rc == CS_ENOMEM) {
        goto out;
    }
    for (size_t i = 0; i < diags.len; i++) {
        const cs_diag *d = &diags.items[i];
        const char *path = d->path[0] ? d->path : "(root)";
        if (d->severity == CS_DIAG_ERROR) {
            if (cs_buf_printf(&b, "%s%s: %s", b.len ? "\n" : "", path, d->message) != CS_OK) {
                rc = cs_err_set(err, CS_ENOMEM, 0, "control reply");
                goto out;
            }
        } else if (warnings) {
            char line[1024];
            snprintf(line, sizeof(line), "%s: %s", path, d->message);
            if (!cJSON_AddItemToArray(warnings, cJSON_CreateString(line))) {
                rc = cs_err_set(err, CS_ENOMEM, 0, "control reply");
                goto out;
            }
        }
    }
    if (rc != CS_OK) {
        if (diags.n_dropped > 0) {
            (void)cs_buf_printf(&b, "\n... and %zu more", diags.n_dropped);
        }
        if (b.len == 0 && cs_buf_puts(&b, err->msg) != CS_OK) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "control reply");
            goto out;
        }
        *msg = cs_buf_take(&b);
        rc = CS_ESCHEMA;
    }
out:
    cs_buf_fini(&b);
    cs_diags_fini(&diags);
    return rc;
}

/* Submits (sweep_id 0) or extends a sweep with the cells of e: the expansion runs on a second
 * thread, ahead of the insert (cs_prefetch.h), or in line when no thread can be started. */
static cs_rc insert_expanded(cs_store *s, int64_t sweep_id, const cs_sweep_meta *meta,
                             cs_expander *e, bool force, int64_t now, cs_store_submit_counts *c,
                             cs_err *err)
{
    cs_prefetch *pf = NULL;
    cs_cell_next_fn next = cs_expand_next;
    void *ctx = e;
    cs_rc rc;

    if (cs_prefetch_start(cs_expand_next, e, &pf, NULL) == CS_OK) {
        next = cs_prefetch_next;
        ctx = pf;
    }
    if (sweep_id == 0) {
        rc = cs_store_submit(s, meta, next, ctx, force, now, c, err);
    } else {
        rc = cs_store_extend(s, sweep_id, meta, next, ctx, force, now, c, err);
    }
    cs_prefetch_destroy(pf);
    return rc;
}

/* A resend of a SUBMIT that was stored (nng sends a request again on the new connection after
 * calsweepd restarts): a live sweep of that name whose spec has the same content hash. Sets
 * *found and adds the stored sweep's counts to root ("already_stored": true). A sweep of that
 * name with another spec is left to cs_store_submit, which refuses it (CS_EEXIST). */
static cs_rc find_stored(cs_store *s, const cs_sweep *sw, cJSON *root, bool *found, cs_err *err)
{
    cs_store_sweep_info info;
    int64_t id = 0;
    cs_rc rc;

    *found = false;
    rc = cs_store_sweep_find(s, sw->name, &id, err);
    if (rc == CS_ENOENT) {
        return CS_OK;
    }
    if (rc == CS_OK) {
        rc = cs_store_sweep_get(s, id, &info, err);
    }
    if (rc != CS_OK || strcmp(info.spec_hash, sw->spec_hash) != 0) {
        return rc;
    }
    *found = true;
    if (!add_num(root, "sweep_id", (double)id) ||
        !add_num(root, "jobs", (double)info.counts.total) ||
        !add_num(root, "queued", (double)info.counts.n[CS_JOB_QUEUED]) ||
        !add_num(root, "cached", (double)info.counts.n[CS_JOB_CACHED]) ||
        !cJSON_AddTrueToObject(root, "already_stored")) {
        return cs_err_set(err, CS_ENOMEM, 0, "control reply");
    }
    return CS_OK;
}

static cs_rc handle_submit(cs_store *s, const cs_msg_submit *m, int64_t now, cs_msg *rep,
                           cs_err *err)
{
    cs_sweep *sw = NULL;
    cs_expander *e = NULL;
    cs_sweep_meta meta;
    cs_store_submit_counts c = {0};
    cJSON *warnings = cJSON_CreateArray(), *root = NULL;
    char *msg = NULL;
    cs_err e2 = {0};
    bool stored = false;
    cs_rc rc;

    if (!warnings) {
        return cs_err_set(err, CS_ENOMEM, 0, "control reply");
    }
    rc = parse_sweep(m->sweep, "SUBMIT.sweep", &sw, warnings, &msg, err);
    if (rc == CS_ESCHEMA) {
        rc = reply_error(rep, CS_ESCHEMA, msg, err);
        goto out;
    }
    if (rc != CS_OK) {
        goto out;
    }
    root = cJSON_CreateObject();
    if (!root) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "control reply");
        goto out;
    }
    rc = find_stored(s, sw, root, &stored, &e2);
    if (rc == CS_OK && stored) {
        if (!cJSON_AddStringToObject(root, "name", sw->name) ||
            !cJSON_AddItemToObject(root, "warnings", warnings)) {
            cJSON_Delete(root);
            root = NULL;
        } else {
            warnings = NULL;
        }
        rc = reply_ok(rep, root, err);
        root = NULL;
        goto out;
    }
    cJSON_Delete(root);
    root = NULL;
    if (rc == CS_OK) {
        rc = cs_expand_create(sw, NULL, &e, &e2);
    }
    if (rc == CS_OK) {
        cs_sweep_get_meta(sw, &meta);
        rc = insert_expanded(s, 0, &meta, e, m->force, now, &c, &e2);
    }
    if (rc != CS_OK) {
        rc = reply_from_err(rep, rc, &e2, err);
        goto out;
    }
    root = cJSON_CreateObject();
    if (!root || !add_num(root, "sweep_id", (double)c.sweep_id) ||
        !cJSON_AddStringToObject(root, "name", sw->name) ||
        !add_num(root, "jobs", (double)c.inserted) || !add_num(root, "queued", (double)c.queued) ||
        !add_num(root, "cached", (double)c.cached) ||
        !add_num(root, "baselines", (double)c.baselines) ||
        !cJSON_AddItemToObject(root, "warnings", warnings)) {
        cJSON_Delete(root);
        root = NULL;
    } else {
        warnings = NULL;
    }
    rc = reply_ok(rep, root, err);
out:
    cJSON_Delete(warnings);
    free(msg);
    cs_expand_destroy(e);
    cs_sweep_destroy(sw);
    return rc;
}

static cs_rc plan_cached(void *ctx, const char *key, bool *hit, cs_err *err)
{
    return cs_store_key_cached(ctx, key, hit, err);
}

/* PLAN: the object `calsweep plan --json` prints (cs_plan_report.h), cached counted in this
 * store. */
static cs_rc handle_plan(cs_store *s, const cs_msg_plan *m, cs_msg *rep, cs_err *err)
{
    cs_plan_report_opts ro = {
            .n_examples = CTL_PLAN_EXAMPLES, .cached = plan_cached, .cached_ctx = s};
    cs_sweep *sw = NULL;
    cs_expander *e = NULL;
    cJSON *root = NULL;
    char *msg = NULL;
    cs_err e2 = {0};
    cs_rc rc;

    rc = parse_sweep(m->sweep, "PLAN.sweep", &sw, NULL, &msg, err);
    if (rc == CS_ESCHEMA) {
        rc = reply_error(rep, CS_ESCHEMA, msg, err);
        goto out;
    }
    if (rc != CS_OK) {
        goto out;
    }
    rc = cs_expand_create(sw, NULL, &e, &e2);
    if (rc == CS_OK) {
        rc = cs_plan_report_build(sw, e, &ro, &root, &e2);
    }
    rc = rc == CS_OK ? reply_ok(rep, root, err) : reply_from_err(rep, rc, &e2, err);
out:
    free(msg);
    cs_expand_destroy(e);
    cs_sweep_destroy(sw);
    return rc;
}

static cs_rc handle_extend(cs_store *s, const cs_msg_extend *m, int64_t now, cs_msg *rep,
                           cs_err *err)
{
    cs_sweep *sw = NULL;
    cs_expander *e = NULL;
    cs_sweep_meta meta;
    cs_store_sweep_info info;
    cs_store_submit_counts c = {0};
    char *msg = NULL;
    cJSON *root;
    int64_t id = 0;
    cs_err e2 = {0};
    cs_rc rc;

    rc = resolve_sweep(s, m->sweep_id, &id, &e2);
    if (rc == CS_OK) {
        rc = cs_store_sweep_get(s, id, &info, &e2);
    }
    if (rc != CS_OK) {
        return reply_from_err(rep, rc, &e2, err);
    }
    rc = parse_sweep(m->sweep, "EXTEND.sweep", &sw, NULL, &msg, err);
    if (rc == CS_ESCHEMA) {
        rc = reply_error(rep, CS_ESCHEMA, msg, err);
        goto out;
    }
    if (rc != CS_OK) {
        goto out;
    }
    if (strcmp(sw->name, info.name) != 0) {
        cs_err_set(&e2, CS_EINVAL, 0,
                   "the file's sweep is named '%s', not '%s': extend adds cells to the same sweep",
                   sw->name, info.name);
        rc = reply_from_err(rep, CS_EINVAL, &e2, err);
        goto out;
    }
    rc = cs_expand_create(sw, NULL, &e, &e2);
    if (rc == CS_OK) {
        cs_sweep_get_meta(sw, &meta);
        rc = insert_expanded(s, id, &meta, e, false, now, &c, &e2);
    }
    if (rc != CS_OK) {
        rc = reply_from_err(rep, rc, &e2, err);
        goto out;
    }
    root = cJSON_CreateObject();
    if (root &&
        (!add_num(root, "sweep_id", (double)id) || !add_num(root, "added", (double)c.inserted) ||
         !add_num(root, "cached", (double)c.cached) ||
         !add_num(root, "existing", (double)c.existing))) {
        cJSON_Delete(root);
        root = NULL;
    }
    rc = reply_ok(rep, root, err);
out:
    free(msg);
    cs_expand_destroy(e);
    cs_sweep_destroy(sw);
    return rc;
}

/* ---- STATUS ---------------------------------------------------------------------------------- */

static cs_rc sweep_json(const cs_store_sweep_info *info, cJSON *list, cs_err *err)
{
    cJSON *o = cJSON_CreateObject(), *counts;
    if (!o || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return cs_err_set(err, CS_ENOMEM, 0, "control reply");
    }
    counts = cJSON_AddObjectToObject(o, "counts");
    if (!counts || !add_num(o, "id", (double)info->id) ||
        !cJSON_AddStringToObject(o, "name", info->name) ||
        !cJSON_AddStringToObject(o, "state", cs_sweep_state_name(info->state)) ||
        !add_num(o, "priority", info->policy.priority) ||
        !add_num(o, "created_ms", (double)info->created) ||
        !add_num(o, "total", (double)info->counts.total)) {
        return cs_err_set(err, CS_ENOMEM, 0, "control reply");
    }
    for (int st = 0; st < CS_JOB_NSTATES; st++) {
        if (!add_num(counts, cs_job_state_name((cs_job_state)st), (double)info->counts.n[st])) {
            return cs_err_set(err, CS_ENOMEM, 0, "control reply");
        }
    }
    return CS_OK;
}

static cs_rc sweep_list_cb(void *ctx, const cs_store_sweep_info *info, cs_err *err)
{
    return sweep_json(info, ctx, err);
}

static cs_rc handle_status(cs_store *s, const cs_msg_status *m, int64_t now, cs_msg *rep,
                           cs_err *err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *list = root ? cJSON_AddArrayToObject(root, "sweeps") : NULL;
    cs_store_sweep_info info;
    size_t workers = 0;
    int64_t id = 0;
    cs_err e2 = {0};
    cs_rc rc;

    if (!list) {
        cJSON_Delete(root);
        return cs_err_set(err, CS_ENOMEM, 0, "control reply");
    }
    if (m->sweep) {
        rc = resolve_sweep(s, m->sweep, &id, &e2);
        if (rc == CS_OK) {
            rc = cs_store_sweep_get(s, id, &info, &e2);
        }
        if (rc == CS_OK) {
            rc = sweep_json(&info, list, &e2);
        }
    } else {
        rc = cs_store_sweep_list(s, sweep_list_cb, list, &e2);
    }
    if (rc == CS_OK) {
        rc = cs_store_worker_count_active(s, now - CTL_WORKER_ALIVE_MS, &workers, &e2);
    }
    if (rc != CS_OK) {
        cJSON_Delete(root);
        return reply_from_err(rep, rc, &e2, err);
    }
    if (!add_num(root, "workers", (double)workers)) {
        cJSON_Delete(root);
        root = NULL;
    }
    return reply_ok(rep, root, err);
}

/* ---- JOBS, WORKERS, LOGS ------------------------------------------------------------------- */

static cs_rc job_row_cb(void *ctx, const cs_store_job_row *j, cs_err *err)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(ctx, o) || !add_num(o, "id", (double)j->id) ||
        !add_num(o, "sweep_id", (double)j->sweep_id) ||
        !cJSON_AddStringToObject(o, "state", j->state) ||
        !add_num(o, "attempt", (double)j->attempt) || !cJSON_AddStringToObject(o, "key", j->key) ||
        !cs_json_add_str_or_null(o, "worker", j->worker) ||
        !add_num(o, "updated_ms", (double)j->state_at) || !cs_json_add_parsed(o, "axes", j->axes) ||
        !cs_json_add_str_or_null(o, "last_error", j->last_error) ||
        !cs_watch_add_progress(o, "progress", j->progress) ||
        !add_ms_or_null(o, "heartbeat_at_ms", j->heartbeat_at)) {
        return cs_err_set(err, CS_ENOMEM, 0, "control reply");
    }
    return CS_OK;
}

static cs_rc handle_jobs(cs_store *s, const cs_msg_jobs *m, cs_msg *rep, cs_err *err)
{
    cs_store_job_query q = {.state = m->state,
                            .limit = m->limit > 0 ? m->limit : 100,
                            .offset = m->offset,
                            .error_chars = CTL_MAX_JOB_ERROR};
    cJSON *root = cJSON_CreateObject();
    cJSON *list = root ? cJSON_AddArrayToObject(root, "jobs") : NULL;
    cs_job_state state;
    int64_t total = 0;
    cs_err e2 = {0};
    cs_rc rc = CS_OK;

    if (!list) {
        cJSON_Delete(root);
        return cs_err_set(err, CS_ENOMEM, 0, "control reply");
    }
    if (m->sweep) {
        rc = resolve_sweep(s, m->sweep, &q.sweep_id, &e2);
    }
    if (rc == CS_OK && m->state && cs_job_state_parse(m->state, &state, &e2) != CS_OK) {
        rc = cs_err_set(&e2, CS_EINVAL, 0,
                        "JOBS.state: unknown job state '%s' (queued, running, retry_wait, done, "
                        "failed, lost, cancelled, cached)",
                        m->state);
    }
    if (rc == CS_OK) {
        rc = cs_store_job_list(s, &q, &total, job_row_cb, list, &e2);
    }
    if (rc != CS_OK) {
        cJSON_Delete(root);
        return reply_from_err(rep, rc, &e2, err);
    }
    if (!add_num(root, "total", (double)total)) {
        cJSON_Delete(root);
        root = NULL;
    }
    return reply_ok(rep, root, err);
}

static cs_rc worker_row_cb(void *ctx, const cs_store_worker_row *w, cs_err *err)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(ctx, o) || !cJSON_AddStringToObject(o, "name", w->name) ||
        !cs_json_add_str_or_null(o, "host", w->host) ||
        !add_num(o, "last_seen_ms", (double)w->last_seen) ||
        !cJSON_AddBoolToObject(o, "active", w->active) ||
        !cs_json_add_parsed(o, "capabilities", w->capabilities) ||
        !(w->job_id ? add_num(o, "job_id", (double)w->job_id)
                    : cJSON_AddNullToObject(o, "job_id") != NULL) ||
        !cs_watch_add_progress(o, "progress", w->progress) ||
        !add_ms_or_null(o, "heartbeat_at_ms", w->heartbeat_at)) {
        return cs_err_set(err, CS_ENOMEM, 0, "control reply");
    }
    return CS_OK;
}

static cs_rc handle_workers(cs_store *s, int64_t now, cs_msg *rep, cs_err *err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *list = root ? cJSON_AddArrayToObject(root, "workers") : NULL;
    cs_err e2 = {0};
    cs_rc rc;

    if (!list) {
        cJSON_Delete(root);
        return cs_err_set(err, CS_ENOMEM, 0, "control reply");
    }
    rc = cs_store_worker_list(s, now - CTL_WORKER_ALIVE_MS, worker_row_cb, list, &e2);
    if (rc != CS_OK) {
        cJSON_Delete(root);
        return reply_from_err(rep, rc, &e2, err);
    }
    return reply_ok(rep, root, err);
}

/* Replaces bytes that are not valid UTF-8 (and NUL) by '?', in place. */
static void utf8_scrub(char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)p[i];
        size_t len = c < 0x80               ? 1
                     : (c & 0xE0u) == 0xC0u ? 2
                     : (c & 0xF0u) == 0xE0u ? 3
                     : (c & 0xF8u) == 0xF0u ? 4
                                            : 0;
        if (c == 0 || len == 0 || i + len > n || !cs_utf8_valid(p + i, len, NULL)) {
            p[i++] = '?';
            continue;
        }
        i += len;
    }
}

/* Reads at most tail bytes (0 = all, capped at CTL_MAX_LOG) from the end of path. Only a regular
 * file named stderr.log (the worker's per-attempt log) is read: a log path comes from a worker,
 * and LOGS must not become a way to read any file of the coordinator's machine. */
static bool read_log_file(const char *path, int64_t tail, char **out, size_t *len)
{
    static const char base[] = "/stderr.log";
    size_t plen = strlen(path);
    struct stat st;
    FILE *f;
    long size;
    size_t want, got;
    char *buf;
    int fd;

    if (plen < sizeof(base) - 1 || strcmp(path + plen - (sizeof(base) - 1), base) != 0) {
        return false;
    }
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (f = fdopen(fd, "rb")) == NULL) {
        close(fd);
        return false;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0) {
        fclose(f);
        return false;
    }
    want = (size_t)size;
    if (tail > 0 && (uint64_t)tail < want) {
        want = (size_t)tail;
    }
    if (want > CTL_MAX_LOG) {
        want = CTL_MAX_LOG;
    }
    buf = malloc(want + 1);
    if (!buf || fseek(f, size - (long)want, SEEK_SET) != 0) {
        free(buf);
        fclose(f);
        return false;
    }
    got = fread(buf, 1, want, f);
    fclose(f);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return true;
}

/* A failed attempt has no log path (FAIL carries none), but the worker keeps every attempt's log
 * at <work-dir>/<job>-<attempt>/stderr.log: when another attempt of the job has a path of that
 * form, the same folder with this attempt's number is tried. Owned path, or NULL. */
static char *guess_log_path(cs_store *s, int64_t job, int64_t attempt)
{
    cs_buf b = {0};
    char needle[48];
    char *path = NULL, *out = NULL;
    const char *hit = NULL, *p, *end;

    if (cs_store_last_log_path(s, job, &path, NULL) != CS_OK || !path) {
        goto out;
    }
    snprintf(needle, sizeof(needle), "/%lld-", (long long)job);
    for (p = strstr(path, needle); p; p = strstr(p + 1, needle)) {
        hit = p;
    }
    if (!hit) {
        goto out;
    }
    end = hit + strlen(needle);
    if (*end < '0' || *end > '9') {
        goto out;
    }
    while (*end >= '0' && *end <= '9') {
        end++;
    }
    if (*end != '/' || cs_buf_printf(&b, "%.*s%s%lld%s", (int)(hit - path), path, needle,
                                     (long long)attempt, end) != CS_OK) {
        goto out;
    }
    out = cs_buf_take(&b);
out:
    cs_buf_fini(&b);
    free(path);
    return out;
}

/* The text LOGS shows when no log file can be read: the failure text of the attempt (reason and
 * the log tail the worker sent), else the last heartbeat's log_tail (latest attempt), else the
 * job's last error, cut to its last tail bytes (tail > 0). Owned, or NULL (out of memory). */
static char *log_fallback(const cs_store_attempt_log *l, bool latest, int64_t tail, size_t *len)
{
    const char *prog = latest ? l->progress : NULL;
    cJSON *p = prog ? cJSON_Parse(prog) : NULL;
    const cJSON *lt = p ? cJSON_GetObjectItemCaseSensitive(p, "log_tail") : NULL;
    char *text;
    if (l->error) {
        text = cs_strdup(l->error);
    } else if (cJSON_IsString(lt)) {
        text = cs_strdup(lt->valuestring);
    } else if (latest && l->last_error) {
        text = cs_strdup(l->last_error);
    } else {
        text = cs_strdup("");
    }
    cJSON_Delete(p);
    if (!text) {
        return NULL;
    }
    *len = strlen(text);
    if (tail > 0 && (uint64_t)tail < *len) {
        memmove(text, text + *len - (size_t)tail, (size_t)tail + 1);
        *len = (size_t)tail;
    }
    return text;
}

static cs_rc handle_logs(cs_store *s, const cs_msg_logs *m, cs_msg *rep, cs_err *err)
{
    cs_store_attempt_log l;
    cJSON *root = NULL;
    char *log = NULL, *path = NULL;
    size_t len = 0;
    int64_t attempt;
    bool latest, from_file = false;
    cs_err e2 = {0};
    cs_rc rc;

    rc = cs_store_attempt_log_get(s, m->job_id, m->attempt, &l, &e2);
    if (rc == CS_ENOENT) {
        cs_err_set(&e2, CS_ENOENT, 0, "no job %lld (see calsweep jobs)", (long long)m->job_id);
    }
    if (rc == CS_OK && m->attempt > 0 && (m->attempt > l.job_attempt || !l.has_attempt)) {
        rc = cs_err_set(&e2, CS_ENOENT, 0, "job %lld has no attempt %lld (it has %lld)",
                        (long long)m->job_id, (long long)m->attempt, (long long)l.job_attempt);
        cs_store_attempt_log_fini(&l);
    }
    if (rc != CS_OK) {
        return reply_from_err(rep, rc, &e2, err);
    }
    attempt = m->attempt > 0 ? m->attempt : l.job_attempt;
    latest = attempt == l.job_attempt;
    if (l.log_path) {
        path = l.log_path;
        l.log_path = NULL;
        from_file = read_log_file(path, m->tail, &log, &len);
    } else if (attempt > 0 && l.has_attempt) {
        path = guess_log_path(s, m->job_id, attempt);
        from_file = path && read_log_file(path, m->tail, &log, &len);
        if (!from_file) {
            free(path);
            path = NULL;
        }
    }
    if (!from_file) {
        log = log_fallback(&l, latest, m->tail, &len);
    }
    cs_store_attempt_log_fini(&l);
    if (log) {
        utf8_scrub(log, len);
        root = cJSON_CreateObject();
    }
    if (root && (!add_num(root, "job_id", (double)m->job_id) ||
                 !add_num(root, "attempt", (double)attempt) ||
                 !cs_json_add_str_or_null(root, "path", path) ||
                 !cJSON_AddStringToObject(root, "source", from_file ? "file" : "heartbeat") ||
                 !cJSON_AddStringToObject(root, "log", log))) {
        cJSON_Delete(root);
        root = NULL;
    }
    rc = reply_ok(rep, root, err);
    free(log);
    free(path);
    return rc;
}

/* ---- CANCEL, PAUSE, RESUME, RETRY ------------------------------------------------------------ */

/* CANCEL.filter: {"sweep": ref?, "state": name?, "job": id?}. */
static cs_rc parse_cancel_filter(cs_store *s, const char *json, cs_store_filter *f, cs_err *err)
{
    static const char *const known[] = {"sweep", "state", "job"};
    cJSON *doc = NULL;
    const char *ref = NULL, *state = NULL;
    int64_t job = 0;
    cs_diags diags;
    cs_jctx c;
    cs_rc rc;

    cs_diags_init(&diags);
    rc = cs_json_parse(json, strlen(json), "CANCEL.filter", &doc, err);
    if (rc != CS_OK) {
        goto out;
    }
    cs_jctx_init(&c, &diags, err);
    (void)cs_json_check_keys(&c, doc, known, 3, CS_DIAG_ERROR);
    (void)cs_json_opt_string(&c, doc, "sweep", NULL, &ref);
    (void)cs_json_opt_string(&c, doc, "state", NULL, &state);
    (void)cs_json_opt_int(&c, doc, "job", 0, 0, INT64_C(9007199254740992), &job);
    if (diags.n_errors > 0) {
        cs_diags_sort(&diags, doc);
        rc = cs_diags_to_err(&diags, err);
        goto out;
    }
    if (ref && (rc = resolve_sweep(s, ref, &f->sweep_id, err)) != CS_OK) {
        goto out;
    }
    if (state) {
        cs_job_state js;
        if (cs_job_state_parse(state, &js, err) != CS_OK) {
            rc = cs_err_set(err, CS_EINVAL, 0, "CANCEL.filter.state: unknown job state '%s'",
                            state);
            goto out;
        }
        f->states = CS_JOB_MASK(js);
    }
    f->job_id = job;
    if (!ref && !state && job == 0) {
        rc = cs_err_set(err, CS_EINVAL, 0, "CANCEL.filter: name a sweep, a state or a job");
    }
out:
    cs_diags_fini(&diags);
    cJSON_Delete(doc);
    return rc;
}

static cs_rc handle_cancel(cs_store *s, const cs_msg_cancel *m, int64_t now, cs_msg *rep,
                           cs_err *err)
{
    cs_store_filter f = {0};
    cs_store_cancel_counts c = {0};
    cJSON *root;
    cs_err e2 = {0};
    cs_rc rc = CS_OK;

    if (m->sweep) {
        rc = resolve_sweep(s, m->sweep, &f.sweep_id, &e2);
    } else if (m->job > 0) {
        f.job_id = m->job;
    } else if (m->filter) {
        rc = parse_cancel_filter(s, m->filter, &f, &e2);
    } else {
        rc = cs_err_set(&e2, CS_EINVAL, 0, "CANCEL: name a sweep, a job or a filter");
    }
    if (rc == CS_OK) {
        rc = cs_store_cancel(s, &f, "cancelled by the user", now, &c, &e2);
    }
    if (rc != CS_OK) {
        return reply_from_err(rep, rc, &e2, err);
    }
    root = cJSON_CreateObject();
    if (root && (!add_num(root, "cancelled", (double)c.cancelled) ||
                 !add_num(root, "running", (double)c.signalled))) {
        cJSON_Delete(root);
        root = NULL;
    }
    return reply_ok(rep, root, err);
}

static cs_rc handle_pause_resume(cs_store *s, const cs_msg_sweep_ref *m, bool pause, int64_t now,
                                 cs_msg *rep, cs_err *err)
{
    cs_store_sweep_info info;
    int64_t id = 0;
    cJSON *root;
    cs_err e2 = {0};
    cs_rc rc;

    rc = resolve_sweep(s, m->sweep, &id, &e2);
    if (rc == CS_OK) {
        rc = pause ? cs_store_pause(s, id, now, &e2) : cs_store_resume(s, id, now, &e2);
    }
    if (rc == CS_OK) {
        rc = cs_store_sweep_get(s, id, &info, &e2);
    }
    if (rc != CS_OK) {
        return reply_from_err(rep, rc, &e2, err);
    }
    root = cJSON_CreateObject();
    if (root && (!add_num(root, "sweep_id", (double)id) ||
                 !cJSON_AddStringToObject(root, "state", cs_sweep_state_name(info.state)))) {
        cJSON_Delete(root);
        root = NULL;
    }
    return reply_ok(rep, root, err);
}

static cs_rc handle_retry(cs_store *s, const cs_msg_retry *m, int64_t now, cs_msg *rep, cs_err *err)
{
    cs_store_filter f = {0};
    size_t n = 0;
    cJSON *root;
    cs_err e2 = {0};
    cs_rc rc = CS_OK;

    if (m->sweep) {
        rc = resolve_sweep(s, m->sweep, &f.sweep_id, &e2);
    }
    f.states = (m->failed ? CS_JOB_MASK(CS_JOB_FAILED) : 0u) |
               (m->lost ? CS_JOB_MASK(CS_JOB_LOST) : 0u);
    if (rc == CS_OK) {
        rc = cs_store_retry(s, &f, now, &n, &e2);
    }
    if (rc != CS_OK) {
        return reply_from_err(rep, rc, &e2, err);
    }
    root = cJSON_CreateObject();
    if (root && !add_num(root, "requeued", (double)n)) {
        cJSON_Delete(root);
        root = NULL;
    }
    return reply_ok(rep, root, err);
}

/* ---- RESULTS: the aggregate of a sweep (coordinator/results/cs_agg.h) ------------------------ */

static cs_rc handle_results(cs_store *s, const cs_msg_results *m, cs_msg *rep, cs_err *err)
{
    cs_store_results_req q = {
            .by = (const char *const *)m->by,
            .n_by = m->n_by,
            .metric = m->metric,
            .reference = m->reference,
            .tasks = (const char *const *)m->tasks,
            .n_tasks = m->n_tasks,
            .resamples = (size_t)m->resamples,
            .item_resamples = (size_t)m->item_resamples,
            .seed = (uint64_t)m->seed,
            .slim = m->slim,
    };
    cJSON *agg = NULL;
    cs_err e = {0};
    cs_rc rc = cs_store_results(s, m->sweep, &q, &agg, &e);
    if (rc != CS_OK) {
        return reply_from_err(rep, rc, &e, err);
    }
    /* The aggregate may hold raw JSON items (numbers printed by cs_agg), which canonical text
     * does not take: print it and parse it again into plain values. */
    char *text = cJSON_PrintUnformatted(agg);
    cJSON_Delete(agg);
    agg = text ? cJSON_Parse(text) : NULL;
    free(text);
    return reply_ok(rep, agg, err);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

cs_rc cs_control_handle(cs_store *s, const cs_msg *req, int64_t now, cs_msg *rep, cs_err *err)
{
    memset(rep, 0, sizeof(*rep));
    switch (req->type) {
    case CS_MSG_SUBMIT:
        return handle_submit(s, &req->submit, now, rep, err);
    case CS_MSG_PLAN:
        return handle_plan(s, &req->plan, rep, err);
    case CS_MSG_EXTEND:
        return handle_extend(s, &req->extend, now, rep, err);
    case CS_MSG_STATUS:
        return handle_status(s, &req->status, now, rep, err);
    case CS_MSG_JOBS:
        return handle_jobs(s, &req->jobs, rep, err);
    case CS_MSG_WORKERS:
        return handle_workers(s, now, rep, err);
    case CS_MSG_LOGS:
        return handle_logs(s, &req->logs, rep, err);
    case CS_MSG_CANCEL:
        return handle_cancel(s, &req->cancel, now, rep, err);
    case CS_MSG_PAUSE:
        return handle_pause_resume(s, &req->pause, true, now, rep, err);
    case CS_MSG_RESUME:
        return handle_pause_resume(s, &req->resume, false, now, rep, err);
    case CS_MSG_RETRY:
        return handle_retry(s, &req->retry, now, rep, err);
    case CS_MSG_RESULTS:
        return handle_results(s, &req->results, rep, err);
    case CS_MSG_WATCH: /* without the daemon's cache (calsweepd passes WATCH to cs_watch itself) */
        return cs_watch_handle(NULL, s, &req->watch, now, rep, err);
    case CS_MSG_JOB_INFO:
        return cs_watch_job_info(s, &req->job_info, rep, err);
    default:
        break;
    }
    return reply_error(rep, CS_EPROTO, "not a control request", err);
}
