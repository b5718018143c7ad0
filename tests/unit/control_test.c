/* control_test.c - cs_control_handle on a temporary store: every control request, its reply
 * shape (the step 3 contract) and its errors (unknown sweep, invalid sweep file, bad state). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_control.h"
#include "cs_store.h"
#include "cs_test.h"

typedef struct fixture {
    char dir[64];
    char db[128];
    cs_store *s;
    char *product; /* tests/data/sweeps/product.json: 8 cells + 1 baseline */
} fixture;

static char *read_text(const char *rel)
{
    const char *src = getenv("CS_SOURCE_DIR");
    char path[1024];
    cs_buf b = {0};
    char chunk[4096];
    size_t n;
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", src ? src : ".", rel);
    f = fopen(path, "rb");
    assert_non_null(f);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        assert_int_equal(cs_buf_append(&b, chunk, n), CS_OK);
    }
    fclose(f);
    return cs_buf_take(&b);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    cs_err err = {0};
    if (!f) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/cs-control-XXXXXX");
    if (!mkdtemp(f->dir)) {
        return -1;
    }
    snprintf(f->db, sizeof(f->db), "%s/calsweep.db", f->dir);
    if (cs_store_open(f->db, &f->s, &err) != CS_OK) {
        fprintf(stderr, "control_test: %s\n", err.msg);
        return -1;
    }
    f->product = read_text("tests/data/sweeps/product.json");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char path[256];
    static const char *const names[] = {"calsweep.db", "calsweep.db-wal", "calsweep.db-shm",
                                        "stderr.log", "other.log"};
    cs_store_close(f->s);
    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f->product);
    free(f);
    return 0;
}

/* Sends req; expects OK and returns its data parsed (owned). */
static cJSON *call_ok(fixture *f, cs_msg *req)
{
    cs_msg rep;
    cs_err err = {0};
    cJSON *data;
    assert_int_equal(cs_control_handle(f->s, req, 10000, &rep, &err), CS_OK);
    if (rep.type != CS_MSG_OK) {
        fail_msg("expected OK, got %s %s: %s", cs_msg_type_name(rep.type),
                 rep.type == CS_MSG_ERROR ? cs_rc_name(rep.error.code) : "",
                 rep.type == CS_MSG_ERROR ? rep.error.message : "");
    }
    assert_non_null(rep.ok.data);
    data = cJSON_Parse(rep.ok.data);
    assert_non_null(data);
    cs_msg_fini(&rep);
    return data;
}

/* Sends req; expects ERROR code and returns its message (owned). */
static char *call_err(fixture *f, cs_msg *req, cs_rc code)
{
    cs_msg rep;
    cs_err err = {0};
    char *msg;
    assert_int_equal(cs_control_handle(f->s, req, 10000, &rep, &err), CS_OK);
    if (rep.type != CS_MSG_ERROR) {
        fail_msg("expected ERROR %s, got %s %s", cs_rc_name(code), cs_msg_type_name(rep.type),
                 rep.type == CS_MSG_OK ? rep.ok.data : "");
    }
    if (rep.error.code != code) {
        fail_msg("expected %s, got %s: %s", cs_rc_name(code), cs_rc_name(rep.error.code),
                 rep.error.message);
    }
    msg = cs_strdup(rep.error.message);
    cs_msg_fini(&rep);
    return msg;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) {
        fail_msg("no number '%s'", key);
    }
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) {
        fail_msg("no string '%s'", key);
    }
    return v->valuestring;
}

/* Jobs in the store, whatever their state. */
static int count_jobs(fixture *f)
{
    cs_store_counts c;
    cs_err err = {0};
    assert_int_equal(cs_store_count(f->s, 0, &c, &err), CS_OK);
    return (int)c.total;
}

static int64_t submit_product(fixture *f)
{
    cs_msg req;
    cJSON *d;
    int64_t id;
    cs_msg_init(&req, CS_MSG_SUBMIT);
    req.submit.sweep = f->product;
    d = call_ok(f, &req);
    assert_string_equal(str(d, "name"), "product");
    assert_int_equal((int)num(d, "jobs"), 9);
    assert_int_equal((int)num(d, "baselines"), 1);
    assert_int_equal((int)num(d, "cached"), 0);
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(d, "warnings")));
    id = (int64_t)num(d, "sweep_id");
    assert_true(id >= 1);
    cJSON_Delete(d);
    return id;
}

static void test_submit_and_status(void **state)
{
    fixture *f = *state;
    cs_msg req;
    cJSON *d, *sw;
    char *msg, ref[32];
    int64_t id = submit_product(f);

    /* The same document again (nng resends a SUBMIT after calsweepd restarted): the stored
     * sweep, nothing added. */
    cs_msg_init(&req, CS_MSG_SUBMIT);
    req.submit.sweep = f->product;
    d = call_ok(f, &req);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "already_stored")));
    assert_int_equal((int64_t)num(d, "sweep_id"), id);
    assert_string_equal(str(d, "name"), "product");
    assert_int_equal((int)num(d, "jobs"), 9);
    assert_int_equal((int)num(d, "queued"), 9);
    cJSON_Delete(d);
    assert_int_equal(count_jobs(f), 9);

    /* Another document under the same name is refused. */
    {
        char *other = cs_strdup(f->product);
        char *seed = strstr(other, "\"seed\": [0, 1]");
        assert_non_null(seed);
        seed[strlen("\"seed\": [0, ")] = '2';
        req.submit.sweep = other;
        msg = call_err(f, &req, CS_EEXIST);
        assert_non_null(strstr(msg, "already exists"));
        free(msg);
        free(other);
    }
    assert_int_equal(count_jobs(f), 9);

    cs_msg_init(&req, CS_MSG_STATUS);
    d = call_ok(f, &req);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "sweeps")), 1);
    assert_int_equal((int)num(d, "workers"), 0);
    sw = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "sweeps"), 0);
    assert_string_equal(str(sw, "name"), "product");
    assert_string_equal(str(sw, "state"), "active");
    assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(sw, "counts"), "queued"), 9);
    assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(sw, "counts"), "running"), 0);
    cJSON_Delete(d);

    /* By name and by decimal id. */
    req.status.sweep = "product";
    d = call_ok(f, &req);
    sw = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "sweeps"), 0);
    assert_int_equal((int64_t)num(sw, "id"), id);
    cJSON_Delete(d);
    snprintf(ref, sizeof(ref), "%lld", (long long)id);
    req.status.sweep = ref;
    d = call_ok(f, &req);
    sw = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "sweeps"), 0);
    assert_string_equal(str(sw, "name"), "product");
    cJSON_Delete(d);

    req.status.sweep = "nosuch";
    msg = call_err(f, &req, CS_ENOENT);
    assert_non_null(strstr(msg, "nosuch"));
    free(msg);
    req.status.sweep = "999";
    free(call_err(f, &req, CS_ENOENT));
}

static void test_submit_invalid(void **state)
{
    fixture *f = *state;
    cs_msg req;
    char *msg;
    cs_msg_init(&req, CS_MSG_SUBMIT);
    req.submit.sweep = "{\"name\":5,\"models\":{},\"grid\":{\"n_samples\":[\"x\"]},\"bogus\":1}";
    msg = call_err(f, &req, CS_ESCHEMA);
    /* One diagnostic per line, each naming its path. */
    assert_non_null(strchr(msg, '\n'));
    assert_non_null(strstr(msg, "name"));
    assert_non_null(strstr(msg, "bogus"));
    free(msg);
    /* Nothing was stored. */
    cs_msg_init(&req, CS_MSG_STATUS);
    {
        cJSON *d = call_ok(f, &req);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "sweeps")), 0);
        cJSON_Delete(d);
    }
    cs_msg_init(&req, CS_MSG_PLAN);
    req.plan.sweep = "{\"name\":\"x\"}";
    free(call_err(f, &req, CS_ESCHEMA));
}

static void test_plan(void **state)
{
    fixture *f = *state;
    cs_msg req;
    cJSON *d, *axes;
    cs_msg_init(&req, CS_MSG_PLAN);
    req.plan.sweep = f->product;
    d = call_ok(f, &req);
    assert_string_equal(str(d, "sweep"), "product");
    assert_int_equal((int)num(d, "jobs"), 9);
    assert_int_equal((int)num(d, "grid_cells"), 8);
    assert_int_equal((int)num(d, "cached"), 0);
    axes = cJSON_GetObjectItemCaseSensitive(d, "axes");
    /* seed 0, seed 1 (4 jobs each) and "n/a" for the baseline, as `calsweep plan --json`. */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(axes, "seed")), 3);
    assert_int_equal(
            (int)num(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(axes, "seed"), 0), "jobs"),
            4);
    assert_string_equal(
            str(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(axes, "seed"), 2), "text"),
            "n/a");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "examples")), 5);
    cJSON_Delete(d);
    /* PLAN writes nothing. */
    cs_msg_init(&req, CS_MSG_STATUS);
    d = call_ok(f, &req);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "sweeps")), 0);
    cJSON_Delete(d);
}

static void test_jobs_workers_logs(void **state)
{
    fixture *f = *state;
    cs_store_caps caps = {.worker = "w1", .host = "h1", .native = true, .mem_mb = -1};
    cs_store_claim claim = {0};
    cs_store_exit ex = {0};
    cs_msg req, r2;
    cJSON *d, *j;
    cs_err err = {0};
    bool cancel = false;
    char logpath[256];
    FILE *lf;
    int64_t id = submit_product(f);
    (void)id;

    assert_int_equal(cs_store_worker_seen(f->s, "w1", "h1", "{\"threads\":2}", 9000, &err), CS_OK);
    assert_int_equal(cs_store_claim_job(f->s, &caps, 60000, 9000, &claim, &err), CS_OK);

    cs_msg_init(&req, CS_MSG_JOBS);
    req.jobs.limit = 100;
    d = call_ok(f, &req);
    assert_int_equal((int)num(d, "total"), 9);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "jobs")), 9);
    cJSON_Delete(d);

    req.jobs.sweep = "product";
    req.jobs.state = "running";
    d = call_ok(f, &req);
    assert_int_equal((int)num(d, "total"), 1);
    j = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "jobs"), 0);
    assert_int_equal((int64_t)num(j, "id"), claim.job_id);
    assert_string_equal(str(j, "worker"), "w1");
    assert_string_equal(str(j, "state"), "running");
    assert_int_equal((int)num(j, "attempt"), 1);
    assert_int_equal(strlen(str(j, "key")), 64);
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "axes")));
    cJSON_Delete(d);

    req.jobs.state = "queued";
    req.jobs.limit = 3;
    req.jobs.offset = 2;
    d = call_ok(f, &req);
    assert_int_equal((int)num(d, "total"), 8);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "jobs")), 3);
    j = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "jobs"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "worker")));
    cJSON_Delete(d);

    req.jobs.state = "sleeping";
    {
        char *msg = call_err(f, &req, CS_EINVAL);
        assert_non_null(strstr(msg, "sleeping"));
        free(msg);
    }
    req.jobs.state = NULL;
    req.jobs.sweep = "nosuch";
    free(call_err(f, &req, CS_ENOENT));

    cs_msg_init(&req, CS_MSG_WORKERS);
    d = call_ok(f, &req);
    j = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "workers"), 0);
    assert_string_equal(str(j, "name"), "w1");
    assert_string_equal(str(j, "host"), "h1");
    assert_int_equal((int64_t)num(j, "job_id"), claim.job_id);
    assert_int_equal((int)num(cJSON_GetObjectItemCaseSensitive(j, "capabilities"), "threads"), 2);
    cJSON_Delete(d);

    /* STATUS counts workers heard from lately. */
    cs_msg_init(&req, CS_MSG_STATUS);
    d = call_ok(f, &req);
    assert_int_equal((int)num(d, "workers"), 1);
    cJSON_Delete(d);

    /* LOGS before a log file: the heartbeat's log_tail. */
    assert_int_equal(
            cs_store_heartbeat(f->s, claim.job_id, claim.attempt, caps.worker, claim.lease_token,
                               60000, "{\"log_tail\":\"step 1\\nstep 2\\n\"}", 9500, &cancel, &err),
            CS_OK);
    /* A stored progress without a stage (an older daemon's, or damaged) shows as null. */
    cs_msg_init(&req, CS_MSG_JOBS);
    req.jobs.state = "running";
    req.jobs.limit = 10;
    d = call_ok(f, &req);
    j = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "jobs"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "progress")));
    assert_int_equal((int64_t)num(j, "heartbeat_at_ms"), 9500);
    cJSON_Delete(d);

    cs_msg_init(&req, CS_MSG_LOGS);
    req.logs.job_id = claim.job_id;
    d = call_ok(f, &req);
    assert_string_equal(str(d, "source"), "heartbeat");
    assert_string_equal(str(d, "log"), "step 1\nstep 2\n");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(d, "path")));
    assert_int_equal((int)num(d, "attempt"), 1);
    cJSON_Delete(d);

    /* Progress as do_heartbeat stores it: JOBS and WORKERS show it without the log tail; a
     * heartbeat of an older worker (detail and stage_ms null) keeps them null. (r2: req stays
     * the LOGS request.) */
    assert_int_equal(cs_store_heartbeat(f->s, claim.job_id, claim.attempt, caps.worker,
                                        claim.lease_token, 60000,
                                        "{\"stage\":\"evaluate\",\"detail\":\"arith_mc\","
                                        "\"done\":300,\"total\":1000,\"stage_ms\":41250,"
                                        "\"log_tail\":\"item 300\\n\"}",
                                        9600, &cancel, &err),
                     CS_OK);
    cs_msg_init(&r2, CS_MSG_JOBS);
    r2.jobs.state = "running";
    r2.jobs.limit = 10;
    d = call_ok(f, &r2);
    j = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "jobs"), 0), "progress");
    {
        char *t = cJSON_PrintUnformatted(j);
        assert_string_equal(t, "{\"detail\":\"arith_mc\",\"done\":300,\"stage\":\"evaluate\","
                               "\"stage_ms\":41250,\"total\":1000}");
        free(t);
    }
    cJSON_Delete(d);
    assert_int_equal(cs_store_heartbeat(f->s, claim.job_id, claim.attempt, caps.worker,
                                        claim.lease_token, 60000,
                                        "{\"stage\":\"load\",\"detail\":null,\"done\":0,"
                                        "\"total\":1,\"stage_ms\":null,\"log_tail\":\"\"}",
                                        9700, &cancel, &err),
                     CS_OK);
    cs_msg_init(&r2, CS_MSG_WORKERS);
    d = call_ok(f, &r2);
    j = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "workers"), 0);
    assert_int_equal((int64_t)num(j, "heartbeat_at_ms"), 9700);
    j = cJSON_GetObjectItemCaseSensitive(j, "progress");
    assert_string_equal(str(j, "stage"), "load");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "detail")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "stage_ms")));
    assert_int_equal((int)num(j, "total"), 1);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "log_tail"));
    cJSON_Delete(d);

    /* With a result naming the log file: read from the file, at most tail bytes. */
    snprintf(logpath, sizeof(logpath), "%s/stderr.log", f->dir);
    lf = fopen(logpath, "wb");
    assert_non_null(lf);
    fputs("line one\nline two\nlast line\n", lf);
    fclose(lf);
    ex.log_path = logpath;
    assert_int_equal(cs_store_result(f->s, claim.job_id, claim.attempt, caps.worker,
                                     claim.lease_token, "{\"metrics\":{}}", NULL, 0, &ex, 9800,
                                     NULL, &err),
                     CS_OK);
    req.logs.tail = 10;
    d = call_ok(f, &req);
    assert_string_equal(str(d, "source"), "file");
    assert_string_equal(str(d, "path"), logpath);
    assert_string_equal(str(d, "log"), "last line\n");
    cJSON_Delete(d);

    req.logs.attempt = 2;
    free(call_err(f, &req, CS_ENOENT));
    req.logs.attempt = 0;
    req.logs.job_id = 12345;
    free(call_err(f, &req, CS_ENOENT));
    cs_store_claim_fini(&claim);
}

static void test_cancel_pause_resume_retry_extend(void **state)
{
    fixture *f = *state;
    cs_store_caps caps = {.worker = "w1", .native = true, .mem_mb = -1};
    cs_store_claim claim = {0};
    cs_store_exit ex = {.permanent = true};
    cs_msg req;
    cJSON *d;
    cs_err err = {0};
    char *doc, *p;
    int64_t id = submit_product(f);

    cs_msg_init(&req, CS_MSG_PAUSE);
    req.pause.sweep = "product";
    d = call_ok(f, &req);
    assert_string_equal(str(d, "state"), "paused");
    assert_int_equal((int64_t)num(d, "sweep_id"), id);
    cJSON_Delete(d);
    /* Paused: nothing handed out. */
    assert_int_equal(cs_store_claim_job(f->s, &caps, 60000, 10000, &claim, &err), CS_ENOENT);
    cs_msg_init(&req, CS_MSG_RESUME);
    req.resume.sweep = "product";
    d = call_ok(f, &req);
    assert_string_equal(str(d, "state"), "active");
    cJSON_Delete(d);
    free(call_err(f, &req, CS_ESTATE)); /* not paused any more */
    req.resume.sweep = "nosuch";
    free(call_err(f, &req, CS_ENOENT));

    /* A permanent failure, then RETRY --failed. */
    assert_int_equal(cs_store_claim_job(f->s, &caps, 60000, 10000, &claim, &err), CS_OK);
    assert_int_equal(cs_store_fail(f->s, claim.job_id, claim.attempt, caps.worker,
                                   claim.lease_token, "bad input", &ex, 10000, NULL, &err),
                     CS_OK);
    cs_msg_init(&req, CS_MSG_RETRY);
    req.retry.sweep = "product";
    req.retry.lost = true;
    d = call_ok(f, &req);
    assert_int_equal((int)num(d, "requeued"), 0);
    cJSON_Delete(d);
    req.retry.failed = true;
    d = call_ok(f, &req);
    assert_int_equal((int)num(d, "requeued"), 1);
    cJSON_Delete(d);
    cs_store_claim_fini(&claim);

    /* A log path that is not a worker's stderr.log is never read (LOGS reads files a worker
     * names): the reply falls back to what the store holds. */
    {
        char other[256];
        cs_store_exit ex2 = {0};
        FILE *of;
        snprintf(other, sizeof(other), "%s/other.log", f->dir);
        of = fopen(other, "wb");
        assert_non_null(of);
        fputs("secret\n", of);
        fclose(of);
        ex2.log_path = other;
        assert_int_equal(cs_store_claim_job(f->s, &caps, 60000, 10000, &claim, &err), CS_OK);
        assert_int_equal(cs_store_result(f->s, claim.job_id, claim.attempt, caps.worker,
                                         claim.lease_token, "{\"metrics\":{}}", NULL, 0, &ex2,
                                         10000, NULL, &err),
                         CS_OK);
        cs_msg_init(&req, CS_MSG_LOGS);
        req.logs.job_id = claim.job_id;
        d = call_ok(f, &req);
        assert_string_equal(str(d, "source"), "heartbeat");
        assert_null(strstr(str(d, "log"), "secret"));
        cJSON_Delete(d);
        cs_store_claim_fini(&claim);
    }

    /* CANCEL one job, then a filter, then the whole sweep. */
    cs_msg_init(&req, CS_MSG_CANCEL);
    req.cancel.job = 2;
    d = call_ok(f, &req);
    assert_int_equal((int)num(d, "cancelled"), 1);
    assert_int_equal((int)num(d, "running"), 0);
    cJSON_Delete(d);
    cs_msg_init(&req, CS_MSG_CANCEL);
    req.cancel.filter = "{\"sweep\":\"product\",\"state\":\"frozen\"}";
    free(call_err(f, &req, CS_EINVAL));

    /* EXTEND with one more seed: 4 new cells, 9 existing. */
    doc = cs_strdup(f->product);
    assert_non_null(doc);
    p = strstr(doc, "[0, 1]");
    assert_non_null(p);
    memcpy(p, "[0, 2]", 6);
    cs_msg_init(&req, CS_MSG_EXTEND);
    req.extend.sweep_id = "product";
    req.extend.sweep = doc;
    d = call_ok(f, &req);
    assert_int_equal((int)num(d, "added"), 4);
    assert_int_equal((int)num(d, "existing"), 5);
    cJSON_Delete(d);
    req.extend.sweep = "{\"name\":1}";
    free(call_err(f, &req, CS_ESCHEMA));
    req.extend.sweep_id = "nosuch";
    free(call_err(f, &req, CS_ENOENT));
    free(doc);

    cs_msg_init(&req, CS_MSG_CANCEL);
    req.cancel.sweep = "product";
    d = call_ok(f, &req);
    assert_int_equal((int)num(d, "cancelled"), 11);
    cJSON_Delete(d);
    cs_msg_init(&req, CS_MSG_STATUS);
    req.status.sweep = "1";
    d = call_ok(f, &req);
    assert_string_equal(
            str(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(d, "sweeps"), 0), "state"),
            "cancelled");
    cJSON_Delete(d);
    cs_msg_init(&req, CS_MSG_PAUSE);
    req.pause.sweep = "1";
    free(call_err(f, &req, CS_ESTATE));
}

/* RESULTS: the aggregate of a sweep that has not run yet (every row partial), by name or id;
 * an unknown sweep names the live ones; bad options are CS_EINVAL naming the value. */
static void test_results(void **state)
{
    fixture *f = *state;
    cs_msg req;
    cJSON *d;
    char *msg, ref[32];
    int64_t id = submit_product(f);
    static char *by[] = {"algorithm"};
    static char *bogus[] = {"bogus"};

    cs_msg_init(&req, CS_MSG_RESULTS);
    req.results.sweep = "product";
    d = call_ok(f, &req);
    assert_int_equal((int)num(d, "jobs"), 9);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "rows")), 5);
    cJSON_Delete(d);
    snprintf(ref, sizeof(ref), "%lld", (long long)id);
    req.results.sweep = ref;
    req.results.by = by;
    req.results.n_by = 1;
    d = call_ok(f, &req);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "rows")), 3);
    cJSON_Delete(d);

    req.results.sweep = "nosuch";
    msg = call_err(f, &req, CS_ENOENT);
    assert_non_null(strstr(msg, "no sweep 'nosuch'; sweeps: product"));
    free(msg);
    req.results.sweep = "product";
    req.results.by = bogus;
    msg = call_err(f, &req, CS_EINVAL);
    assert_non_null(strstr(msg, "bogus"));
    free(msg);
    req.results.by = NULL;
    req.results.n_by = 0;
    req.results.reference = "algorithm";
    msg = call_err(f, &req, CS_EINVAL);
    assert_non_null(strstr(msg, "expected AXIS=VALUE"));
    free(msg);
}

static void test_not_control(void **state)
{
    fixture *f = *state;
    cs_msg req;
    cs_msg_init(&req, CS_MSG_CLAIM);
    free(call_err(f, &req, CS_EPROTO));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_submit_and_status, setup, teardown),
            cmocka_unit_test_setup_teardown(test_submit_invalid, setup, teardown),
            cmocka_unit_test_setup_teardown(test_plan, setup, teardown),
            cmocka_unit_test_setup_teardown(test_jobs_workers_logs, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cancel_pause_resume_retry_extend, setup, teardown),
            cmocka_unit_test_setup_teardown(test_results, setup, teardown),
            cmocka_unit_test_setup_teardown(test_not_control, setup, teardown),
    };
    return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
