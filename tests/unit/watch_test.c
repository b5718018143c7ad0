/* watch_test.c - WATCH and JOB_INFO (coordinator/server/cs_watch.h) on a temporary store with a
 * clock the test sets: counts, the rate over its window, the ETA from durations per (algorithm,
 * model), workers and their states, problems with kind and log lines, the best rows against the
 * aggregate of RESULTS, the cache (no recomputation while the counts stay), and the errors. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <unistd.h>

#include "cs_agg.h"
#include "cs_alloc.h"
#include "cs_control.h"
#include "cs_store.h"
#include "cs_test.h"
#include "cs_watch.h"

/* The test's clock: every store operation and request takes one of these (ms). */
#define T0    ((int64_t)100000000)
#define LEASE ((int64_t)3600000)

typedef struct fixture {
    char dir[64];
    char db[128];
    cs_store *s;
    cs_watch *w;
    int64_t sweep_id;
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

static const cJSON *get(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL) {
        fail_msg("no member '%s'", key);
    }
    return v;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    if (!cJSON_IsNumber(v)) {
        fail_msg("'%s' is not a number", key);
    }
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    if (!cJSON_IsString(v)) {
        fail_msg("'%s' is not a string", key);
    }
    return v->valuestring;
}

/* The reply's data parsed (owned); fails unless rep is OK. Finis rep. */
static cJSON *ok_data(cs_msg *rep)
{
    if (rep->type != CS_MSG_OK) {
        fail_msg("expected OK, got %s %s: %s", cs_msg_type_name(rep->type),
                 rep->type == CS_MSG_ERROR ? cs_rc_name(rep->error.code) : "",
                 rep->type == CS_MSG_ERROR ? rep->error.message : "");
    }
    cJSON *d = cJSON_Parse(rep->ok.data);
    assert_non_null(d);
    cs_msg_fini(rep);
    return d;
}

static cJSON *watch(fixture *f, const char *sweep, int64_t now)
{
    cs_msg_watch m = {.sweep = sweep};
    cs_msg rep;
    cs_err err = {0};
    assert_int_equal(cs_watch_handle(f->w, f->s, &m, now, &rep, &err), CS_OK);
    return ok_data(&rep);
}

/* Sends req through cs_control_handle; expects ERROR code; returns its message (owned). */
static char *control_err(fixture *f, const cs_msg *req, cs_rc code)
{
    cs_msg rep;
    cs_err err = {0};
    assert_int_equal(cs_control_handle(f->s, req, T0, &rep, &err), CS_OK);
    if (rep.type != CS_MSG_ERROR || rep.error.code != code) {
        fail_msg("expected ERROR %s, got %s", cs_rc_name(code), cs_msg_type_name(rep.type));
    }
    char *msg = cs_strdup(rep.error.message);
    cs_msg_fini(&rep);
    return msg;
}

static cJSON *control_ok(fixture *f, const cs_msg *req, int64_t now)
{
    cs_msg rep;
    cs_err err = {0};
    assert_int_equal(cs_control_handle(f->s, req, now, &rep, &err), CS_OK);
    return ok_data(&rep);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    cs_err err = {0};
    if (!f) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/cs-watch-XXXXXX");
    if (!mkdtemp(f->dir)) {
        return -1;
    }
    snprintf(f->db, sizeof(f->db), "%s/calsweep.db", f->dir);
    if (cs_store_open(f->db, &f->s, &err) != CS_OK ||
        cs_watch_create(LEASE, NULL, &f->w, &err) != CS_OK) {
        fprintf(stderr, "watch_test: %s\n", err.msg);
        return -1;
    }
    char *product = read_text("tests/data/sweeps/product.json");
    cs_msg req;
    cs_msg_init(&req, CS_MSG_SUBMIT);
    req.submit.sweep = product;
    cJSON *d = control_ok(f, &req, T0);
    f->sweep_id = (int64_t)num(d, "sweep_id");
    cJSON_Delete(d);
    free(product);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char path[256];
    static const char *const names[] = {"calsweep.db", "calsweep.db-wal", "calsweep.db-shm"};
    cs_store_close(f->s);
    cs_watch_destroy(f->w);
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* worker claims the next job at t; returns it (fini with cs_store_claim_fini). */
static cs_store_claim claim(fixture *f, const char *worker, int64_t t)
{
    cs_store_caps caps = {.worker = worker, .host = "h1", .native = true, .mem_mb = -1};
    cs_store_claim c = {0};
    cs_err err = {0};
    assert_int_equal(cs_store_claim_job(f->s, &caps, LEASE, t, &c, &err), CS_OK);
    return c;
}

/* The job of c is done at t with arc accuracy acc. */
static void finish(fixture *f, cs_store_claim *c, const char *worker, double acc, int64_t t)
{
    cs_store_metric m = {.task = "arc", .metric = "acc", .value = acc, .stderr_ = NAN, .n = 10};
    cs_store_exit ex = {.has_status = true};
    cs_err err = {0};
    assert_int_equal(cs_store_result(f->s, c->job_id, c->attempt, worker, c->lease_token,
                                     "{\"metrics\":{}}", &m, 1, &ex, t, NULL, &err),
                     CS_OK);
    cs_store_claim_fini(c);
}

/* The scene of the tests below (product.json: job 1 the baseline, algorithm none; jobs 2-5 gptq,
 * 6-9 awq; one model):
 *   job 1 (baseline) done long ago: claimed at T0, done at T0 + 10 s (outside the rate window);
 *   job 2 (gptq) 30 s, job 3 (gptq) 60 s, done at T1 - 60 s and T1;
 *   job 4 (gptq) running on w2 (gpu1) with a heartbeat's progress;
 *   job 5 (gptq) failed once with oom (retry_wait), its log tail in last_error;
 *   w3 last seen 10 min ago (lost), w4 said BYE (gone). The clock reads T1 + 1 s. */
#define T1       (T0 + 2000000)
#define W_WINDOW ((int64_t)600000) /* the rate's window */
static void scene(fixture *f)
{
    cs_err err = {0};
    bool cancel = false;
    cs_job_state next;
    assert_int_equal(cs_store_worker_seen(f->s, "w1", "h1", "{\"gpus\":[]}", T0, &err), CS_OK);
    cs_store_claim c = claim(f, "w1", T0);
    assert_int_equal(c.job_id, 1);
    finish(f, &c, "w1", 0.9, T0 + 10000);
    c = claim(f, "w1", T1 - 90000);
    assert_int_equal(c.job_id, 2);
    finish(f, &c, "w1", 0.6, T1 - 60000);
    c = claim(f, "w1", T1 - 60000);
    finish(f, &c, "w1", 0.7, T1);

    assert_int_equal(cs_store_worker_seen(f->s, "w2", "h2",
                                          "{\"gpus\":[{\"index\":1,\"name\":\"x\",\"mem_mb\":1}]}",
                                          T1, &err),
                     CS_OK);
    c = claim(f, "w2", T1 - 5000);
    assert_int_equal(c.job_id, 4);
    assert_int_equal(cs_store_heartbeat(f->s, c.job_id, c.attempt, "w2", c.lease_token, LEASE,
                                        "{\"stage\":\"evaluate\",\"detail\":\"arc\",\"done\":3,"
                                        "\"total\":10,\"stage_ms\":4100,\"log_tail\":\"x\"}",
                                        T1 - 2000, &cancel, &err),
                     CS_OK);
    cs_store_claim_fini(&c);

    c = claim(f, "w1", T1);
    assert_int_equal(c.job_id, 5);
    cs_store_exit ex = {.has_status = true, .exit_status = 1};
    assert_int_equal(cs_store_fail(f->s, c.job_id, c.attempt, "w1", c.lease_token,
                                   "oom: out of memory in layer 3\nsecond line\n--- log tail "
                                   "---\nl1\nl2\n\nl3\nl4\nl5\r\nl6\n\n",
                                   &ex, T1, &next, &err),
                     CS_OK);
    assert_int_equal(next, CS_JOB_RETRY_WAIT);
    cs_store_claim_fini(&c);
    assert_int_equal(cs_store_worker_touch(f->s, "w1", NULL, T1, &err), CS_OK);

    assert_int_equal(cs_store_worker_seen(f->s, "w3", NULL, NULL, T1 - 600000, &err), CS_OK);
    assert_int_equal(cs_store_worker_seen(f->s, "w4", "h4", NULL, T1 - 1000, &err), CS_OK);
    assert_int_equal(cs_store_worker_bye(f->s, "w4", NULL, T1 - 500, NULL, &err), CS_OK);
}

static void test_sweeps(void **state)
{
    fixture *f = *state;
    scene(f);
    cJSON *d = watch(f, NULL, T1 + 1000);
    assert_int_equal((int64_t)num(d, "now_ms"), T1 + 1000);
    assert_int_equal((int64_t)num(d, "lease_ms"), LEASE);
    assert_int_equal((int64_t)num(d, "heartbeat_ms"), LEASE / 3);
    const cJSON *sweeps = get(d, "sweeps");
    assert_int_equal(cJSON_GetArraySize(sweeps), 1);
    const cJSON *sw = cJSON_GetArrayItem(sweeps, 0);
    assert_string_equal(str(sw, "name"), "product");
    assert_string_equal(str(sw, "state"), "active");
    assert_int_equal((int64_t)num(sw, "created_ms"), T0);
    assert_int_equal((int)num(sw, "total"), 9);
    const cJSON *c = get(sw, "counts");
    assert_int_equal((int)num(c, "done"), 3);
    assert_int_equal((int)num(c, "running"), 1);
    assert_int_equal((int)num(c, "retry_wait"), 1);
    assert_int_equal((int)num(c, "queued"), 4);
    assert_int_equal(
            (int)num(c, "failed") + num(c, "lost") + num(c, "cancelled") + num(c, "cached"), 0);
    /* Jobs 2 and 3 finished within the 10 minutes; job 1 (T0 + 10 s) is older: 2 x 6 per hour. */
    assert_int_equal((int)num(sw, "rate_window_s"), 600);
    assert_float_equal(num(sw, "rate_per_h"), 12.0, 1e-9);
    /* Done attempts: 10 s (none), 30 s and 60 s (gptq): the sweep's mean is 33.3 s. Remaining:
     * gptq 2 (running 4, retry_wait 5) x 45 s; awq 4 (no done attempt: the sweep's mean); none 0.
     * One job runs: eta = 90 + 4 x 33.33 = 223.3 s. */
    assert_float_equal(num(sw, "avg_job_s"), 100.0 / 3.0, 1e-6);
    assert_float_equal(num(sw, "eta_s"), 90.0 + 4.0 * 100.0 / 3.0, 1e-6);
    cJSON_Delete(d);

    /* The rate's window moves on: at T1 + 9 min 30 s job 2 (T1 - 60 s) is out of it. */
    d = watch(f, "product", T1 + 570000);
    sw = cJSON_GetArrayItem(get(d, "sweeps"), 0);
    assert_float_equal(num(sw, "rate_per_h"), 6.0, 1e-9);
    cJSON_Delete(d);

    /* The cache reads only the events after the last one it read: job 6 finishing now counts
     * with job 3, as a fresh count (no cache) says too; 10 minutes on, both are out. */
    cs_store_claim c6 = claim(f, "w1", T1 + 571000);
    finish(f, &c6, "w1", 0.5, T1 + 572000);
    cs_msg_watch m = {.sweep = "product"};
    cs_msg rep;
    cs_err err = {0};
    for (int pass = 0; pass < 2; pass++) {
        int64_t now = pass == 0 ? T1 + 573000 : T1 + 572000 + W_WINDOW + 1;
        d = watch(f, "product", now);
        assert_int_equal(cs_watch_handle(NULL, f->s, &m, now, &rep, &err), CS_OK);
        cJSON *fresh = ok_data(&rep);
        sw = cJSON_GetArrayItem(get(d, "sweeps"), 0);
        assert_float_equal(num(sw, "rate_per_h"), pass == 0 ? 12.0 : 0.0, 1e-9);
        assert_float_equal(num(cJSON_GetArrayItem(get(fresh, "sweeps"), 0), "rate_per_h"),
                           num(sw, "rate_per_h"), 1e-9);
        cJSON_Delete(fresh);
        cJSON_Delete(d);
    }
}

static void test_workers_problems(void **state)
{
    fixture *f = *state;
    scene(f);
    cJSON *d = watch(f, NULL, T1 + 1000);
    const cJSON *ws = get(d, "workers");
    assert_int_equal(cJSON_GetArraySize(ws), 4);
    /* Busy first, then by name. */
    const cJSON *w = cJSON_GetArrayItem(ws, 0);
    assert_string_equal(str(w, "name"), "w2");
    assert_string_equal(str(w, "state"), "busy");
    assert_string_equal(str(w, "host"), "h2");
    assert_string_equal(str(w, "slot"), "gpu1");
    assert_int_equal((int64_t)num(w, "heartbeat_age_ms"), 3000);
    const cJSON *j = get(w, "job");
    assert_int_equal((int)num(j, "id"), 4);
    assert_string_equal(str(j, "sweep"), "product");
    assert_int_equal(strlen(str(j, "key")), 64);
    assert_int_equal((int)num(j, "attempt"), 1);
    assert_int_equal((int64_t)num(j, "started_ms"), T1 - 5000);
    assert_int_equal((int64_t)num(j, "heartbeat_at_ms"), T1 - 2000);
    assert_string_equal(str(get(get(j, "axes"), "algorithm"), "name"), "gptq");
    const cJSON *p = get(j, "progress");
    assert_string_equal(str(p, "stage"), "evaluate");
    assert_string_equal(str(p, "detail"), "arc");
    assert_int_equal((int)num(p, "done"), 3);
    assert_int_equal((int)num(p, "total"), 10);
    assert_int_equal((int)num(p, "stage_ms"), 4100);
    assert_null(cJSON_GetObjectItemCaseSensitive(p, "log_tail"));
    w = cJSON_GetArrayItem(ws, 1);
    assert_string_equal(str(w, "name"), "w1");
    assert_string_equal(str(w, "state"), "idle");
    assert_string_equal(str(w, "slot"), "cpu");
    assert_true(cJSON_IsNull(get(w, "job")));
    w = cJSON_GetArrayItem(ws, 2);
    assert_string_equal(str(w, "name"), "w3");
    assert_string_equal(str(w, "state"), "lost");
    assert_true(cJSON_IsNull(get(w, "host")));
    assert_true(cJSON_IsNull(get(w, "slot")));
    assert_int_equal((int64_t)num(w, "heartbeat_age_ms"), 601000);
    assert_string_equal(str(cJSON_GetArrayItem(ws, 3), "state"), "gone");

    assert_int_equal((int)num(d, "problems_total"), 1);
    const cJSON *pr = cJSON_GetArrayItem(get(d, "problems"), 0);
    assert_int_equal((int)num(pr, "id"), 5);
    assert_string_equal(str(pr, "state"), "retry_wait");
    assert_string_equal(str(pr, "kind"), "oom");
    assert_string_equal(str(pr, "error"), "oom: out of memory in layer 3");
    assert_int_equal((int)num(pr, "attempt"), 1);
    assert_true(num(pr, "max_attempts") >= 2);
    assert_int_equal((int64_t)num(pr, "updated_ms"), T1);
    const cJSON *log = get(pr, "log");
    assert_int_equal(cJSON_GetArraySize(log), 5);
    static const char *const want[] = {"l2", "l3", "l4", "l5", "l6"};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(cJSON_GetArrayItem(log, i)->valuestring, want[i]);
    }
    cJSON_Delete(d);

    /* The job is lost when its attempts run out: kind "lost", the log from its heartbeat. */
    cs_store_job job = {0};
    cs_err err = {0};
    bool cancel = false;
    int64_t t = T1 + 400000;
    for (int i = 0; i < 10 && job.state != CS_JOB_LOST; i++) {
        assert_int_equal(cs_store_reap(f->s, t, NULL, &err), CS_OK);
        cs_store_caps caps = {.worker = "w1", .host = "h1", .native = true, .mem_mb = -1};
        cs_store_claim c = {0};
        assert_int_equal(cs_store_claim_job(f->s, &caps, 1000, t, &c, &err), CS_OK);
        assert_int_equal(c.job_id, 5);
        assert_int_equal(cs_store_heartbeat(f->s, 5, c.attempt, "w1", c.lease_token, 1000,
                                            "{\"stage\":\"load\",\"done\":0,\"total\":1,"
                                            "\"log_tail\":\"p1\\np2\\n\"}",
                                            t, &cancel, &err),
                         CS_OK);
        /* The worker falls silent: its short lease expires (a job handed back by BYE.release_job
         * would not use up an attempt, 0006_released.sql). */
        cs_store_claim_fini(&c);
        t += 2000;
        assert_int_equal(cs_store_reap(f->s, t, NULL, &err), CS_OK);
        cs_store_job_fini(&job);
        assert_int_equal(cs_store_job_get(f->s, 5, &job, &err), CS_OK);
    }
    assert_int_equal(job.state, CS_JOB_LOST);
    cs_store_job_fini(&job);
    d = watch(f, NULL, t);
    assert_int_equal((int)num(d, "problems_total"), 1);
    pr = cJSON_GetArrayItem(get(d, "problems"), 0);
    assert_int_equal((int)num(pr, "id"), 5);
    assert_string_equal(str(pr, "state"), "lost");
    assert_string_equal(str(pr, "kind"), "lost");
    assert_string_equal(str(pr, "error"), "lease expired");
    log = get(pr, "log");
    assert_int_equal(cJSON_GetArraySize(log), 2);
    assert_string_equal(cJSON_GetArrayItem(log, 1)->valuestring, "p2");
    cJSON_Delete(d);
}

/* The best rows are the aggregate's (RESULTS) rows ranked by average accuracy, no baseline. */
static void test_best(void **state)
{
    fixture *f = *state;
    scene(f);
    cJSON *d = watch(f, NULL, T1 + 1000);
    const cJSON *best = get(d, "best");
    assert_int_equal(cJSON_GetArraySize(best), 1);
    const cJSON *b = cJSON_GetArrayItem(best, 0);
    assert_int_equal((int64_t)num(b, "sweep_id"), f->sweep_id);
    assert_string_equal(str(b, "sweep"), "product");
    assert_string_equal(str(b, "source"), "results");
    assert_string_equal(str(b, "metric"), "average accuracy");
    assert_int_equal((int)num(b, "jobs"), 3);
    assert_int_equal((int64_t)num(b, "computed_ms"), T1 + 1000);
    const cJSON *rows = get(b, "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 1);
    const cJSON *r = cJSON_GetArrayItem(rows, 0);
    assert_float_equal(num(r, "mean"), 0.65, 1e-9);
    assert_float_equal(num(r, "std"), 0.05, 1e-9); /* over the two seeds' averages (cs_agg) */
    assert_int_equal((int)num(r, "n"), 2);
    assert_true(cJSON_IsTrue(get(r, "complete")));

    /* The same row in the aggregate of RESULTS, by the short label of its text table. */
    cs_msg req;
    cs_msg_init(&req, CS_MSG_RESULTS);
    req.results.sweep = "product";
    cJSON *agg = control_ok(f, &req, T1 + 1000);
    char *common = NULL, **labels = NULL;
    size_t n_labels = 0;
    cs_err lerr = {0};
    assert_int_equal(cs_agg_short_labels(agg, &common, &labels, &n_labels, &lerr), CS_OK);
    const cJSON *ar = NULL;
    for (size_t i = 0; i < n_labels; i++) {
        if (strcmp(labels[i], str(r, "label")) == 0) {
            assert_null(ar); /* one row has it */
            ar = cJSON_GetArrayItem(get(agg, "rows"), (int)i);
        }
    }
    assert_non_null(ar);
    assert_string_equal(str(r, "label"), "algorithm=gptq n_samples=16");
    cs_agg_labels_fini(common, labels, n_labels);
    assert_float_equal(num(get(ar, "average"), "value"), num(r, "mean"), 1e-12);
    assert_float_equal(num(get(ar, "average"), "std"), num(r, "std"), 1e-12);
    assert_int_equal((int)num(ar, "n_seeds"), 2);
    cJSON_Delete(agg);
    cJSON_Delete(d);

    /* Job 6 (awq, 16 samples, seed 0) scores better: its row ranks first, one of its two seeds
     * done (not complete). WATCH.top cuts the list. */
    cs_store_claim c = claim(f, "w1", T1 + 2000);
    assert_int_equal(c.job_id, 6);
    finish(f, &c, "w1", 0.9, T1 + 3000);
    cs_msg_watch m = {.top = 1};
    cs_msg rep;
    cs_err err = {0};
    assert_int_equal(cs_watch_handle(f->w, f->s, &m, T1 + 20000, &rep, &err), CS_OK);
    d = ok_data(&rep);
    rows = get(cJSON_GetArrayItem(get(d, "best"), 0), "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 1);
    r = cJSON_GetArrayItem(rows, 0);
    assert_non_null(strstr(str(r, "label"), "algorithm=awq"));
    assert_float_equal(num(r, "mean"), 0.9, 1e-9);
    assert_int_equal((int)num(r, "n"), 1);
    assert_true(cJSON_IsNull(get(r, "std"))); /* one seed: no spread to show */
    assert_true(cJSON_IsFalse(get(r, "complete")));
    cJSON_Delete(d);
    d = watch(f, NULL, T1 + 20000);
    rows = get(cJSON_GetArrayItem(get(d, "best"), 0), "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 2);
    assert_float_equal(num(cJSON_GetArrayItem(rows, 0), "mean"), 0.9, 1e-9);
    assert_float_equal(num(cJSON_GetArrayItem(rows, 1), "mean"), 0.65, 1e-9);
    assert_int_equal((int)num(cJSON_GetArrayItem(get(d, "best"), 0), "jobs"), 4);
    cJSON_Delete(d);
}

/* The cache: nothing is recomputed while the counts stay; the ETA when they change; the
 * aggregate when they changed and 10 s have passed since the last one. */
static void test_cache(void **state)
{
    fixture *f = *state;
    cs_watch_stats st;
    scene(f);
    cJSON_Delete(watch(f, NULL, T1 + 1000));
    cs_watch_stats_get(f->w, &st);
    assert_int_equal(st.eta_runs, 1);
    assert_int_equal(st.best_runs, 1);
    for (int i = 0; i < 5; i++) {
        cJSON_Delete(watch(f, NULL, T1 + 2000 + i * 1000));
    }
    cs_watch_stats_get(f->w, &st);
    assert_int_equal(st.eta_runs, 1);
    assert_int_equal(st.best_runs, 1);
    assert_int_equal(st.requests, 6);

    /* Job 6 starts: the counts change. */
    cs_store_claim c = claim(f, "w1", T1 + 8000);
    cJSON *d = watch(f, NULL, T1 + 8000);
    cs_watch_stats_get(f->w, &st);
    assert_int_equal(st.eta_runs, 2);
    assert_int_equal(st.best_runs, 1); /* 7 s after the last aggregate */
    /* Two jobs run now: the ETA halves its sum. */
    const cJSON *sw = cJSON_GetArrayItem(get(d, "sweeps"), 0);
    assert_float_equal(num(sw, "eta_s"), (90.0 + 4.0 * 100.0 / 3.0) / 2.0, 1e-6);
    assert_int_equal((int64_t)num(cJSON_GetArrayItem(get(d, "best"), 0), "computed_ms"), T1 + 1000);
    cJSON_Delete(d);
    cJSON_Delete(watch(f, NULL, T1 + 11000));
    cs_watch_stats_get(f->w, &st);
    assert_int_equal(st.eta_runs, 2);
    assert_int_equal(st.best_runs, 2);
    cJSON_Delete(watch(f, NULL, T1 + 30000));
    cs_watch_stats_get(f->w, &st);
    assert_int_equal(st.best_runs, 2);
    finish(f, &c, "w1", 0.5, T1 + 40000);
    cJSON_Delete(watch(f, NULL, T1 + 41000));
    cs_watch_stats_get(f->w, &st);
    assert_int_equal(st.eta_runs, 3);
    assert_int_equal(st.best_runs, 3);
}

/* With its thread (a database to read), the cache computes an entry the first time in the
 * request that needs it, and later in its thread while requests answer from the cached copy. */
static void test_background(void **state)
{
    fixture *f = *state;
    cs_watch *w = NULL;
    cs_watch_stats st;
    cs_err err = {0};
    scene(f);
    assert_int_equal(cs_watch_create(LEASE, f->db, &w, &err), CS_OK);
    cs_watch_destroy(f->w);
    f->w = w;
    cJSON *d = watch(f, NULL, T1 + 1000);
    const cJSON *sw = cJSON_GetArrayItem(get(d, "sweeps"), 0);
    assert_float_equal(num(sw, "avg_job_s"), 100.0 / 3.0, 1e-6);
    assert_int_equal((int64_t)num(cJSON_GetArrayItem(get(d, "best"), 0), "computed_ms"), T1 + 1000);
    cJSON_Delete(d);

    /* Job 6 takes 1 s: the counts change. The next request does not wait: it answers from the
     * cache, which holds the old entries unless the thread it woke was quicker than the rest of
     * the request (both are right; a loaded machine gives either). */
    cs_store_claim c = claim(f, "w1", T1 + 2000);
    finish(f, &c, "w1", 0.9, T1 + 3000);
    d = watch(f, NULL, T1 + 20000);
    sw = cJSON_GetArrayItem(get(d, "sweeps"), 0);
    assert_int_equal((int)num(get(sw, "counts"), "done"), 4);
    double avg = num(sw, "avg_job_s");
    assert_true(fabs(avg - 100.0 / 3.0) < 1e-6 || fabs(avg - 101.0 / 4.0) < 1e-6);
    int64_t at = (int64_t)num(cJSON_GetArrayItem(get(d, "best"), 0), "computed_ms");
    assert_true(at == T1 + 1000 || at == T1 + 20000);
    cJSON_Delete(d);

    /* The thread recomputes both, for that request's counts and time. */
    int64_t computed = 0;
    for (int i = 0; i < 1000 && computed != T1 + 20000; i++) {
        struct timespec ms10 = {0, 10 * 1000 * 1000};
        nanosleep(&ms10, NULL);
        d = watch(f, NULL, T1 + 20000);
        computed = (int64_t)num(cJSON_GetArrayItem(get(d, "best"), 0), "computed_ms");
        sw = cJSON_GetArrayItem(get(d, "sweeps"), 0);
        if (computed == T1 + 20000) {
            assert_float_equal(num(sw, "avg_job_s"), 101.0 / 4.0, 1e-6);
            assert_int_equal(cJSON_GetArraySize(get(cJSON_GetArrayItem(get(d, "best"), 0), "rows")),
                             2);
        }
        cJSON_Delete(d);
    }
    assert_int_equal(computed, T1 + 20000);
    cs_watch_stats_get(w, &st);
    assert_int_equal(st.eta_runs, 2);
    assert_int_equal(st.best_runs, 2);
}

static void test_errors(void **state)
{
    fixture *f = *state;
    cs_msg req;
    cs_msg_init(&req, CS_MSG_WATCH);
    req.watch.sweep = "nosuch";
    char *msg = control_err(f, &req, CS_ENOENT);
    assert_non_null(strstr(msg, "no sweep 'nosuch'; sweeps: product"));
    free(msg);
    cs_msg_init(&req, CS_MSG_JOB_INFO);
    req.job_info.job_id = 999;
    msg = control_err(f, &req, CS_ENOENT);
    assert_non_null(strstr(msg, "no job 999"));
    free(msg);

    /* Without the daemon's cache (cs_control_handle) WATCH answers the same document. */
    cs_msg_init(&req, CS_MSG_WATCH);
    req.watch.top = 1;
    req.watch.problems = 1;
    cJSON *d = control_ok(f, &req, T0);
    assert_int_equal((int64_t)num(d, "lease_ms"), CS_WATCH_LEASE_MS);
    assert_int_equal(cJSON_GetArraySize(get(d, "sweeps")), 1);
    assert_true(cJSON_IsNull(get(cJSON_GetArrayItem(get(d, "sweeps"), 0), "eta_s")));
    assert_int_equal(cJSON_GetArraySize(get(d, "best")), 0);
    cJSON_Delete(d);
}

static void test_job_info(void **state)
{
    fixture *f = *state;
    scene(f);
    cs_msg req;
    cs_msg_init(&req, CS_MSG_JOB_INFO);
    req.job_info.job_id = 5;
    cJSON *d = control_ok(f, &req, T1 + 1000);
    assert_int_equal((int)num(d, "id"), 5);
    assert_string_equal(str(d, "sweep"), "product");
    assert_string_equal(str(d, "state"), "retry_wait");
    assert_int_equal((int)num(d, "attempt"), 1);
    assert_true(cJSON_IsObject(get(d, "config")));
    assert_string_equal(str(get(get(d, "axes"), "algorithm"), "name"), "gptq");
    assert_non_null(strstr(str(d, "last_error"), "oom: out of memory"));
    assert_int_equal((int64_t)num(d, "updated_ms"), T1);
    const cJSON *atts = get(d, "attempts");
    assert_int_equal(cJSON_GetArraySize(atts), 1);
    const cJSON *a = cJSON_GetArrayItem(atts, 0);
    assert_int_equal((int)num(a, "n"), 1);
    assert_string_equal(str(a, "worker"), "w1");
    assert_string_equal(str(a, "outcome"), "failed");
    assert_int_equal((int)num(a, "exit_status"), 1);
    assert_true(cJSON_IsNull(get(a, "signal")));
    assert_int_equal((int64_t)num(a, "started_ms"), T1);
    assert_int_equal((int64_t)num(a, "ended_ms"), T1);

    /* The reproduce lines write the config out, byte for byte as JSON, and run it. */
    const char *rep = str(d, "reproduce");
    const char *head = "mkdir job-5 && cd job-5 && cat > job.json <<'EOF' && "
                       "CALSWEEP_BASE_DIR=\"${CALSWEEP_BASE_DIR:-$OLDPWD}\" calsweep-run "
                       "job.json\n";
    assert_int_equal(strncmp(rep, head, strlen(head)), 0);
    const char *end = strstr(rep, "\nEOF\n");
    assert_non_null(end);
    assert_string_equal(end, "\nEOF\n");
    char *body = cs_strndup(rep + strlen(head), (size_t)(end - rep) - strlen(head));
    cJSON *cfg = cJSON_Parse(body);
    assert_non_null(cfg);
    assert_true(cJSON_Compare(cfg, get(d, "config"), true));
    cJSON_Delete(cfg);
    free(body);
    cJSON_Delete(d);

    /* A running job: its progress as stored, its attempt not ended. */
    req.job_info.job_id = 4;
    d = control_ok(f, &req, T1 + 1000);
    assert_string_equal(str(get(d, "progress"), "stage"), "evaluate");
    a = cJSON_GetArrayItem(get(d, "attempts"), 0);
    assert_true(cJSON_IsNull(get(a, "ended_ms")));
    assert_true(cJSON_IsNull(get(a, "outcome")));
    cJSON_Delete(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_sweeps, setup, teardown),
            cmocka_unit_test_setup_teardown(test_workers_problems, setup, teardown),
            cmocka_unit_test_setup_teardown(test_best, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
            cmocka_unit_test_setup_teardown(test_background, setup, teardown),
            cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
            cmocka_unit_test_setup_teardown(test_job_info, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
