/* watch_daemon_test.c - WATCH and JOB_INFO from the real calsweepd binary (ipc:// sockets in a
 * temp folder), on a database with a big synthetic sweep and a small one: the document's counts
 * and workers, WATCH of one sweep answered while a RESULTS of the big sweep aggregates (both on
 * the thread pool), work requests answered while a WATCH aggregates the big sweep for its best
 * rows (the loop thread is never held), the cached second WATCH, JOB_INFO and the errors. Every
 * wait is bounded. */
#include <cjson/cJSON.h>
#include <pthread.h>

#include "cs_test.h"
#include "integration/daemon_util.h"

#define BIG_JOBS 150000

typedef struct fixture {
    dt_env e;
    nng_socket w, c;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    dt_env_init(&f->e);
    dt_submit(f->e.db, "big", 0, BIG_JOBS, 3);
    dt_submit(f->e.db, "small", 1000000, 20, 3);
    dt_start(&f->e, NULL);
    f->w = dt_dial(f->e.work, NULL);
    f->c = dt_dial(f->e.control, NULL);
    if (!dt_ready(f->w, NULL, 20000)) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nng_close(f->w);
    nng_close(f->c);
    dt_kill(&f->e);
    dt_env_fini(&f->e);
    free(f);
    return 0;
}

/* WATCH (sweep may be NULL) on s; returns the document (owned) and its round trip in *ms. */
static cJSON *watch(nng_socket s, const char *sweep, int64_t *ms)
{
    cs_msg m, rep;
    cs_msg_init(&m, CS_MSG_WATCH);
    m.watch.sweep = sweep ? dt_mut(sweep) : NULL;
    int64_t t0 = cs_time_mono_ms();
    assert_int_equal(dt_call(s, &m, &rep, 120000), CS_OK);
    *ms = cs_time_mono_ms() - t0;
    if (rep.type != CS_MSG_OK) {
        fail_msg("WATCH: %s %s", cs_msg_type_name(rep.type),
                 rep.type == CS_MSG_ERROR ? rep.error.message : "");
    }
    cJSON *d = cJSON_Parse(rep.ok.data);
    cs_msg_fini(&rep);
    assert_non_null(d);
    return d;
}

static const cJSON *get(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v == NULL) {
        fail_msg("no member '%s'", key);
    }
    return v;
}

static int64_t num(const cJSON *o, const char *key)
{
    const cJSON *v = get(o, key);
    if (!cJSON_IsNumber(v)) {
        fail_msg("'%s' is not a number", key);
    }
    return (int64_t)v->valuedouble;
}

typedef struct bg {
    const char *url;
    cs_msg req;
    int64_t ms;  /* round trip */
    int64_t end; /* monotonic ms when the reply came */
    cs_msg_type type;
    char error[256]; /* an ERROR reply's code and message */
} bg;

/* Sends b->req on a socket of its own and records when its reply came. */
static void *bg_call(void *arg)
{
    bg *b = arg;
    nng_socket s = dt_dial(b->url, NULL);
    cs_msg rep;
    int64_t t0 = cs_time_mono_ms();
    b->type = dt_call(s, &b->req, &rep, 120000) == CS_OK ? rep.type : CS_MSG_NONE;
    b->end = cs_time_mono_ms();
    b->ms = b->end - t0;
    if (b->type == CS_MSG_ERROR) {
        snprintf(b->error, sizeof b->error, "%s: %s", cs_rc_name(rep.error.code),
                 rep.error.message);
    }
    if (b->type != CS_MSG_NONE) {
        cs_msg_fini(&rep);
    }
    nng_close(s);
    return NULL;
}

/* Fails with msg after printing the tail of calsweepd's log. */
static void fail_with_log(const fixture *f, const char *what, const char *msg)
{
    char line[512];
    FILE *log = fopen(f->e.log, "r");
    while (log != NULL && fgets(line, sizeof line, log) != NULL) {
        print_message("# calsweepd: %s", line);
    }
    if (log != NULL) {
        fclose(log);
    }
    fail_msg("%s: %s", what, msg);
}

/* Two jobs of the big sweep done (its baseline and one more), one of the small sweep running
 * with a heartbeat. */
static void run_two(fixture *f, int64_t *done_job)
{
    cs_msg j1, j2, rep;
    assert_int_equal(dt_claim(f->w, "w1", NULL, 5000, &j1), CS_OK);
    assert_int_equal(j1.type, CS_MSG_JOB);
    /* The big sweep runs a job now: this claim goes to the small one. */
    assert_int_equal(dt_claim(f->w, "w2", NULL, 5000, &j2), CS_OK);
    assert_int_equal(j2.type, CS_MSG_JOB);
    assert_int_equal(dt_result(f->w, "w1", j1.job.lease_token, j1.job.job_id, j1.job.attempt, NULL,
                               5000, &rep),
                     CS_OK);
    assert_int_equal(rep.type, CS_MSG_ACK);
    cs_msg_fini(&rep);
    /* The first job is the big sweep's baseline (no best row): one more. */
    cs_msg_fini(&j1);
    assert_int_equal(dt_claim(f->w, "w1", NULL, 5000, &j1), CS_OK);
    assert_int_equal(j1.type, CS_MSG_JOB);
    assert_int_equal(dt_result(f->w, "w1", j1.job.lease_token, j1.job.job_id, j1.job.attempt, NULL,
                               5000, &rep),
                     CS_OK);
    assert_int_equal(rep.type, CS_MSG_ACK);
    cs_msg_fini(&rep);
    assert_int_equal(
            dt_heartbeat(f->w, "w2", j2.job.lease_token, j2.job.job_id, j2.job.attempt, 5000, &rep),
            CS_OK);
    assert_int_equal(rep.type, CS_MSG_ACK);
    cs_msg_fini(&rep);
    *done_job = j1.job.job_id;
    cs_msg_fini(&j1);
    cs_msg_fini(&j2);
}

static void test_watch_while_results(void **state)
{
    fixture *f = *state;
    int64_t done_job = 0, ms = 0;
    run_two(f, &done_job);

    /* A RESULTS of the big sweep runs on the thread pool; a WATCH of the small one meanwhile. */
    bg r = {.url = f->e.control};
    pthread_t th;
    cs_msg_init(&r.req, CS_MSG_RESULTS);
    r.req.results.sweep = dt_mut("big");
    static char *by[] = {"seed"}; /* each synthetic job is a row of its own otherwise */
    r.req.results.by = by;
    r.req.results.n_by = 1;
    r.req.results.slim = true;
    assert_int_equal(pthread_create(&th, NULL, bg_call, &r), 0);
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    cJSON *d = watch(f->c, "small", &ms);
    int64_t watched = cs_time_mono_ms();
    pthread_join(th, NULL);
    if (r.type != CS_MSG_OK) {
        fail_with_log(f, "RESULTS big", r.error);
    }
    print_message("# WATCH small: %lld ms; RESULTS big: %lld ms\n", (long long)ms, (long long)r.ms);
    assert_true(watched <= r.end || ms * 2 < r.ms);
    assert_int_equal(cJSON_GetArraySize(get(d, "sweeps")), 1);
    const cJSON *sw = cJSON_GetArrayItem(get(d, "sweeps"), 0);
    assert_string_equal(get(sw, "name")->valuestring, "small");
    assert_int_equal(num(sw, "total"), 20);
    assert_int_equal(num(get(sw, "counts"), "running"), 1);
    const cJSON *w = cJSON_GetArrayItem(get(d, "workers"), 0);
    assert_string_equal(get(w, "name")->valuestring, "w2");
    assert_string_equal(get(w, "state")->valuestring, "busy");
    assert_string_equal(get(get(get(w, "job"), "progress"), "stage")->valuestring, "load");
    assert_int_equal(num(d, "lease_ms"), 60000);
    cJSON_Delete(d);

    /* Every sweep: the big one's best rows need its aggregate (seconds), which the cache's
     * thread computes. The WATCH waits for it a little (first_wait, at most 2 x 600 ms) and
     * answers without those rows; work requests are answered meanwhile. */
    bg wa = {.url = f->e.control};
    cs_msg_init(&wa.req, CS_MSG_WATCH);
    assert_int_equal(pthread_create(&th, NULL, bg_call, &wa), 0);
    nanosleep(&pause, NULL);
    int64_t worst = 0;
    for (int i = 0; i < 5; i++) {
        cs_msg rep;
        int64_t t0 = cs_time_mono_ms();
        assert_int_equal(dt_hello(f->w, "w3", NULL, 10000, &rep), CS_OK);
        cs_msg_fini(&rep);
        int64_t took = cs_time_mono_ms() - t0;
        worst = took > worst ? took : worst;
    }
    pthread_join(th, NULL);
    if (wa.type != CS_MSG_OK) {
        fail_with_log(f, "WATCH", wa.error);
    }
    /* Later WATCHes answer from the cache at once until the thread has the rows. */
    int64_t ms2 = 0, slowest = 0, until = cs_time_mono_ms() + 120000;
    bool have_big = false;
    while (!have_big && cs_time_mono_ms() < until) {
        nanosleep(&pause, NULL);
        d = watch(f->c, NULL, &ms2);
        slowest = ms2 > slowest ? ms2 : slowest;
        const cJSON *b;
        cJSON_ArrayForEach(b, get(d, "best"))
        {
            have_big = have_big || strcmp(get(b, "sweep")->valuestring, "big") == 0;
        }
        cJSON_Delete(d);
    }
    print_message("# WATCH all: %lld ms; HELLO meanwhile: at most %lld ms; later WATCHes until "
                  "the big sweep's best rows came: at most %lld ms\n",
                  (long long)wa.ms, (long long)worst, (long long)slowest);
    assert_true(have_big);
    assert_true(worst < 1000);
    assert_true(wa.ms < 5000); /* 2 x 600 ms of waiting and the queries, on a loaded machine */
    assert_true(slowest < 5000);

    /* Again: nothing changed, everything comes from the cache. */
    d = watch(f->c, NULL, &ms);
    print_message("# WATCH all, cached: %lld ms\n", (long long)ms);
    assert_true(ms < 1000);
    const cJSON *big = cJSON_GetArrayItem(get(d, "sweeps"), 0);
    assert_int_equal(num(big, "total"), BIG_JOBS);
    assert_int_equal(num(get(big, "counts"), "done"), 2);
    assert_int_equal(num(get(big, "counts"), "queued"), BIG_JOBS - 2);
    assert_int_equal(cJSON_GetArraySize(get(d, "best")), 1);
    const cJSON *best = cJSON_GetArrayItem(get(d, "best"), 0);
    assert_string_equal(get(best, "sweep")->valuestring, "big");
    assert_int_equal(cJSON_GetArraySize(get(best, "rows")), 1); /* not the baseline's */
    const cJSON *row = cJSON_GetArrayItem(get(best, "rows"), 0);
    assert_float_equal(get(row, "mean")->valuedouble, 0.5, 1e-12);
    assert_int_equal(cJSON_GetArraySize(get(d, "workers")), 4); /* probe, w1, w2, w3 */
    cJSON_Delete(d);

    /* A job of the big sweep runs 0.3 s: the counts change. The next WATCH answers at once from
     * the cache (the old average) while the cache's thread computes the ETA again (not the
     * aggregate: at most once per max(10 s, 50 x its cost)); a later WATCH has the new average. */
    d = watch(f->c, "big", &ms);
    double avg0 = get(cJSON_GetArrayItem(get(d, "sweeps"), 0), "avg_job_s")->valuedouble;
    cJSON_Delete(d);
    cs_msg j3, rep3;
    assert_int_equal(dt_claim(f->w, "w3", NULL, 5000, &j3), CS_OK);
    assert_int_equal(j3.type, CS_MSG_JOB);
    struct timespec job_time = {0, 300 * 1000 * 1000};
    nanosleep(&job_time, NULL);
    assert_int_equal(dt_result(f->w, "w3", j3.job.lease_token, j3.job.job_id, j3.job.attempt, NULL,
                               5000, &rep3),
                     CS_OK);
    cs_msg_fini(&rep3);
    cs_msg_fini(&j3);
    /* The counts are read again once the last read is a second old (one read serves every
     * view for a second): within a few WATCHes the new job shows, each answered at once, while
     * the best rows stay those of the cached aggregate. */
    int64_t slow = 0, done3 = 0, count_until = cs_time_mono_ms() + 10000;
    while (done3 != 3 && cs_time_mono_ms() < count_until) {
        d = watch(f->c, NULL, &ms);
        slow = ms > slow ? ms : slow;
        big = cJSON_GetArrayItem(get(d, "sweeps"), 0);
        done3 = num(get(big, "counts"), "done");
        best = cJSON_GetArrayItem(get(d, "best"), 0);
        assert_int_equal(num(best, "jobs"), 2); /* the cached aggregate */
        cJSON_Delete(d);
        if (done3 != 3) {
            nanosleep(&pause, NULL);
        }
    }
    print_message("# WATCH all after a job finished: at most %lld ms\n", (long long)slow);
    assert_int_equal(done3, 3);
    assert_true(slow < 1000);
    double avg = avg0;
    until = cs_time_mono_ms() + 30000;
    while (avg == avg0 && cs_time_mono_ms() < until) {
        nanosleep(&pause, NULL);
        d = watch(f->c, "big", &ms);
        avg = get(cJSON_GetArrayItem(get(d, "sweeps"), 0), "avg_job_s")->valuedouble;
        cJSON_Delete(d);
    }
    print_message("# average job: %.3f s, then %.3f s\n", avg0, avg);
    assert_true(avg > avg0 + 0.05); /* (two jobs of ~0 s and one of 0.3 s) / 3 */

    /* JOB_INFO of the done job; an unknown job and an unknown sweep are CS_ENOENT. */
    cs_msg m, rep;
    cs_msg_init(&m, CS_MSG_JOB_INFO);
    m.job_info.job_id = done_job;
    assert_int_equal(dt_call(f->c, &m, &rep, 10000), CS_OK);
    assert_int_equal(rep.type, CS_MSG_OK);
    d = cJSON_Parse(rep.ok.data);
    cs_msg_fini(&rep);
    assert_string_equal(get(d, "state")->valuestring, "done");
    const cJSON *a = cJSON_GetArrayItem(get(d, "attempts"), 0);
    assert_string_equal(get(a, "outcome")->valuestring, "done");
    assert_string_equal(get(a, "worker")->valuestring, "w1");
    assert_string_equal(get(a, "log_path")->valuestring, "/tmp/x.log");
    cJSON_Delete(d);
    m.job_info.job_id = 99999999;
    assert_int_equal(dt_call(f->c, &m, &rep, 10000), CS_OK);
    assert_int_equal(rep.type, CS_MSG_ERROR);
    assert_int_equal(rep.error.code, CS_ENOENT);
    cs_msg_fini(&rep);
    cs_msg_init(&m, CS_MSG_WATCH);
    m.watch.sweep = dt_mut("nosuch");
    assert_int_equal(dt_call(f->c, &m, &rep, 10000), CS_OK);
    assert_int_equal(rep.type, CS_MSG_ERROR);
    assert_int_equal(rep.error.code, CS_ENOENT);
    assert_non_null(strstr(rep.error.message, "no sweep 'nosuch'; sweeps: big, small"));
    cs_msg_fini(&rep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_watch_while_results, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
