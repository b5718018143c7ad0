/* store_results_test.c - the store's side of results (schema versions 4 and 5): item outcomes
 * stored with a result (raw bytes: bitsets in item_outcome, float arrays in item_value; the
 * (task, metric) pairs checked before anything is written), the migration from version 4, a cached
 * job reading the outcomes of the result it reuses, and cs_store_agg_load: states, metrics,
 * outcomes (floats decoded from little endian), headline metrics from the sweep document, an
 * unknown sweep; axes as fragment members or axes_raw text, and the headline outcomes only. Each
 * test works on its own database in a fresh temporary directory. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_agg.h"
#include "cs_result.h"
#include "cs_store.h"
#include "cs_store_testing.h"
#include "cs_test.h"
#include "store_synth.h"

#define T0       1700000000000LL
#define LEASE    60000LL
#define WORKER   "w1"
#define INSTANCE "00112233445566778899aabbccddeeff"
#define SAMPLE   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

typedef struct fixture {
    char dir[64];
    char path[96];
    cs_store *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    cs_err err = {0};
    if (!f) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/cs_store_results.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/db.sqlite", f->dir);
    if (cs_store_open(f->path, &f->s, &err) != CS_OK) {
        fprintf(stderr, "open: %s\n", err.msg);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char p[160];
    cs_store_close(f->s);
    unlink(f->path);
    snprintf(p, sizeof(p), "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", f->path);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int64_t q_int(cs_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(cs_store_test_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(cs_store_test_db(s)));
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

/* The text of a one-value query, copied into out. */
static void q_text(cs_store *s, const char *sql, char *out, size_t n)
{
    sqlite3_stmt *st = NULL;
    out[0] = '\0';
    if (sqlite3_prepare_v2(cs_store_test_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(cs_store_test_db(s)));
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
        snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
}

static int64_t submit(cs_store *s, const char *name, const char *spec, size_t n)
{
    cs_synth g;
    cs_sweep_meta m = cs_synth_meta(name);
    cs_store_submit_counts c;
    cs_err err = {0};
    cs_synth_init(&g, 1, n); /* from index 1: no baseline (index 0 is one) */
    if (spec) {
        m.spec = spec;
    }
    if (cs_store_submit(s, &m, cs_synth_next, &g, false, T0, &c, &err) != CS_OK) {
        fail_msg("submit %s: %s", name, err.msg);
    }
    return c.sweep_id;
}

static cs_store_claim claim(cs_store *s)
{
    cs_store_caps caps = {
            .worker = WORKER, .instance = INSTANCE, .host = "h", .native = true, .mem_mb = -1};
    cs_store_claim c = {0};
    cs_err err = {0};
    if (cs_store_claim_job(s, &caps, LEASE, T0, &c, &err) != CS_OK) {
        fail_msg("claim: %s", err.msg);
    }
    return c;
}

/* 10 items: acc bits 1,0,1,1,0,0,0,0,1,1 -> bytes 0x0d 0x03; margins 0.5, -1.25, 2 (LE). */
static const uint8_t ACC[2] = {0x0d, 0x03};
static const uint8_t MARGIN[12] = {0x00, 0x00, 0x00, 0x3f, 0x00, 0x00,
                                   0xa0, 0xbf, 0x00, 0x00, 0x00, 0x40};

static cs_rc report(cs_store *s, const cs_store_claim *c, const cs_store_outcome *o, size_t n)
{
    cs_store_metric m[2] = {{"arith", "acc", 0.5, 0.1, 10}, {"arith", "acc_norm", 0.4, NAN, 10}};
    cs_err err = {0};
    bool dup = false;
    return cs_store_result_items(s, c->job_id, c->attempt, WORKER, c->lease_token,
                                 "{\"version\":2}", m, 2, o, n, NULL, T0 + 1, &dup, &err);
}

static const cs_store_outcome OUTCOMES[2] = {
        {"arith", "acc", SAMPLE, 10, ACC, sizeof(ACC)},
        {"arith", "margin", SAMPLE, 3, MARGIN, sizeof(MARGIN)},
};

static void test_schema_has_items(void **state)
{
    fixture *f = *state;
    assert_int_equal(cs_store_schema_version(), 6);
    assert_int_equal(q_int(f->s, "PRAGMA user_version"), 6);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND"
                                 " name IN ('item_outcome', 'item_value')"),
                     2);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
                                 " name IN ('item_outcome_job', 'item_value_job')"),
                     2);
}

static void test_result_stores_outcomes(void **state)
{
    fixture *f = *state;
    char text[128];
    submit(f->s, "a", NULL, 1);
    cs_store_claim c = claim(f->s);
    assert_int_equal(report(f->s, &c, OUTCOMES, 2), CS_OK);
    /* the bitset in item_outcome, the float array in item_value */
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM item_outcome"), 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM item_value"), 1);
    q_text(f->s,
           "SELECT hex(data) || ' ' || n || ' ' || sample FROM item_outcome WHERE metric = 'acc'",
           text, sizeof(text));
    assert_string_equal(text, "0D03 10 " SAMPLE);
    q_text(f->s, "SELECT hex(data) FROM item_value WHERE metric = 'margin'", text, sizeof(text));
    assert_string_equal(text, "0000003F0000A0BF00000040");
    assert_int_equal(q_int(f->s, "SELECT (SELECT count(*) FROM item_outcome o JOIN job j ON"
                                 " j.result_id = o.result_id AND j.id = o.job_id) + (SELECT"
                                 " count(*) FROM item_value o JOIN job j ON j.result_id ="
                                 " o.result_id AND j.id = o.job_id)"),
                     2);
    cs_store_claim_fini(&c);
}

static void test_outcome_twice_refused(void **state)
{
    fixture *f = *state;
    cs_store_outcome o[2] = {OUTCOMES[0], OUTCOMES[0]};
    cs_store_outcome bad = {"arith", "acc", NULL, 10, ACC, sizeof(ACC)};
    submit(f->s, "a", NULL, 1);
    cs_store_claim c = claim(f->s);
    assert_int_equal(report(f->s, &c, o, 2), CS_EINVAL);
    assert_int_equal(report(f->s, &c, &bad, 1), CS_EINVAL);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM result"), 0);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE state = 'running'"), 1);
    assert_int_equal(report(f->s, &c, OUTCOMES, 2), CS_OK);
    cs_store_claim_fini(&c);
}

static const cs_agg_job *job_of(const cs_store_agg *a, int64_t id)
{
    for (size_t i = 0; i < a->n_jobs; i++) {
        if (a->jobs[i].job_id == id) {
            return &a->jobs[i];
        }
    }
    fail_msg("job %lld not loaded", (long long)id);
    return NULL;
}

/* Whether job j's axes members include text. */
static bool has_member(const cs_agg_job *j, const char *text)
{
    for (size_t i = 0; i < j->n_members; i++) {
        if (strcmp(j->members[i], text) == 0) {
            return true;
        }
    }
    return false;
}

static void test_agg_load(void **state)
{
    fixture *f = *state;
    cs_store_agg a = {0};
    cs_err err = {0};
    static const char *spec =
            "{\"data\":{\"eval\":{\"default\":{\"tasks\":{\"arith\":{\"headline\":\"acc_norm\","
            "\"path\":\"x\"},\"facts\":{\"path\":\"y\"}}},\"other\":{\"tasks\":{\"arith\":{"
            "\"headline\":\"acc\",\"path\":\"x\"},\"code\":{\"headline\":\"acc_bytes\"}}}}}}";
    int64_t sw = submit(f->s, "a", spec, 3);
    cs_store_claim c = claim(f->s);
    assert_int_equal(report(f->s, &c, OUTCOMES, 2), CS_OK);
    cs_store_claim d = claim(f->s); /* left running */

    assert_int_equal(cs_store_agg_load(f->s, sw, true, &a, &err), CS_OK);
    assert_int_equal(a.n_jobs, 3);
    const cs_agg_job *j = job_of(&a, c.job_id);
    assert_string_equal(j->state, "done");
    assert_int_equal(j->result_version, 2);
    assert_false(j->baseline);
    assert_string_equal(j->model, "");
    assert_null(j->axes); /* the axes' members, as the fragment table holds them */
    assert_true(has_member(j, "\"seed\":0"));
    assert_int_equal(j->n_metrics, 2);
    assert_string_equal(j->metrics[0].task, "arith");
    assert_true(j->metrics[0].value == 0.5 || j->metrics[1].value == 0.5);
    assert_int_equal(j->n_outcomes, 2);
    for (size_t i = 0; i < 2; i++) {
        const cs_agg_outcome *o = &j->outcomes[i];
        assert_string_equal(o->sample, SAMPLE);
        if (strcmp(o->metric, "acc") == 0) {
            assert_int_equal(o->n, 10);
            assert_null(o->values);
            assert_memory_equal(o->bits, ACC, 2);
        } else {
            assert_string_equal(o->metric, "margin");
            assert_null(o->bits);
            assert_true(o->values[0] == 0.5f && o->values[1] == -1.25f && o->values[2] == 2.0f);
        }
    }
    assert_string_equal(job_of(&a, d.job_id)->state, "running");
    assert_int_equal(job_of(&a, d.job_id)->n_metrics, 0);
    assert_int_equal(job_of(&a, d.job_id)->result_version, 0);
    /* headlines: the first suite naming a task wins; tasks without one are left out */
    assert_int_equal(a.n_headline, 2);
    assert_string_equal(a.headline_task[0], "arith");
    assert_string_equal(a.headline_metric[0], "acc_norm");
    assert_string_equal(a.headline_task[1], "code");
    assert_string_equal(a.headline_metric[1], "acc_bytes");
    cs_store_agg_fini(&a);

    /* without margins */
    assert_int_equal(cs_store_agg_load(f->s, sw, false, &a, &err), CS_OK);
    assert_int_equal(job_of(&a, c.job_id)->n_outcomes, 1);
    assert_string_equal(job_of(&a, c.job_id)->outcomes[0].metric, "acc");
    cs_store_agg_fini(&a);
    cs_store_agg_fini(&a); /* twice: zeroed */
    cs_store_claim_fini(&c);
    cs_store_claim_fini(&d);
}

/* A job of a second sweep with the same key is cached and reads the first job's outcomes. */
static void test_cached_outcomes_follow_result(void **state)
{
    fixture *f = *state;
    cs_store_agg a = {0};
    cs_err err = {0};
    submit(f->s, "a", NULL, 1);
    cs_store_claim c = claim(f->s);
    assert_int_equal(report(f->s, &c, OUTCOMES, 2), CS_OK);
    int64_t sw = submit(f->s, "b", NULL, 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM job WHERE state = 'cached'"), 1);
    assert_int_equal(cs_store_agg_load(f->s, sw, true, &a, &err), CS_OK);
    assert_int_equal(a.n_jobs, 1);
    assert_true(a.jobs[0].job_id != c.job_id);
    assert_string_equal(a.jobs[0].state, "done");
    assert_int_equal(a.jobs[0].result_version, 2);
    assert_int_equal(a.jobs[0].n_metrics, 2);
    assert_int_equal(a.jobs[0].n_outcomes, 2);
    cs_store_agg_fini(&a);
    cs_store_claim_fini(&c);
}

static void test_agg_load_errors(void **state)
{
    fixture *f = *state;
    cs_store_agg a = {0};
    cs_err err = {0};
    int64_t sw = submit(f->s, "a", NULL, 1);
    assert_int_equal(cs_store_agg_load(f->s, sw + 7, false, &a, &err), CS_ENOENT);
    assert_non_null(strstr(err.msg, "no sweep"));
    assert_null(a.jobs);
    /* a blob of the wrong length is a database error naming the job and task */
    cs_store_claim c = claim(f->s);
    assert_int_equal(report(f->s, &c, OUTCOMES, 1), CS_OK);
    sqlite3_exec(cs_store_test_db(f->s), "UPDATE item_outcome SET n = 30", NULL, NULL, NULL);
    assert_int_equal(cs_store_agg_load(f->s, sw, false, &a, &err), CS_EDB);
    assert_non_null(strstr(err.msg, "arith/acc"));
    cs_store_claim_fini(&c);
}

/* A version 1 result (no outcomes) loads with result_version 1. */
static void test_version1_result(void **state)
{
    fixture *f = *state;
    cs_store_agg a = {0};
    cs_err err = {0};
    int64_t sw = submit(f->s, "a", NULL, 1);
    cs_store_claim c = claim(f->s);
    assert_int_equal(report(f->s, &c, NULL, 0), CS_OK);
    assert_int_equal(cs_store_agg_load(f->s, sw, false, &a, &err), CS_OK);
    assert_int_equal(a.jobs[0].result_version, 1);
    assert_int_equal(a.jobs[0].n_outcomes, 0);
    assert_int_equal(a.jobs[0].n_metrics, 2);
    cs_store_agg_fini(&a);
    cs_store_claim_fini(&c);
}

/* A decoded result's items become one outcome per array present: bitsets as they are, floats as
 * little-endian bytes; stored and loaded back. */
static void test_outcomes_of_result(void **state)
{
    fixture *f = *state;
    uint8_t acc[2] = {0x0d, 0x03}, em[1] = {0x05};
    float margin[3] = {0.5f, -1.25f, 2.0f}, loss[2] = {1.5f, 0.25f};
    cs_result_task tasks[3] = {{.name = "arith"}, {.name = "gen"}, {.name = "ppl:x"}};
    cs_result_items items[3] = {
            {.task = "arith", .n = 10, .acc = acc, .margin = margin},
            {.task = "gen", .n = 3, .exact_match = em},
            {.task = "ppl:x", .n = 2, .window_loss = loss},
    };
    cs_result r = {.version = 2, .tasks = tasks, .n_tasks = 3, .items = items, .n_items = 3};
    cs_store_outcomes o;
    cs_store_agg a = {0};
    cs_err err = {0};
    char text[64];
    memcpy(items[0].sample, SAMPLE, 65);
    memcpy(items[1].sample, SAMPLE, 65);
    memcpy(items[2].sample, SAMPLE, 65);
    items[0].n = 3; /* margins: 3 items; acc then holds 1 byte's worth */
    assert_int_equal(cs_store_outcomes_of(&r, &o, &err), CS_OK);
    assert_int_equal(o.n, 4);
    assert_string_equal(o.v[0].metric, "acc");
    assert_int_equal(o.v[0].bytes, 1);
    assert_string_equal(o.v[1].metric, "margin");
    assert_int_equal(o.v[1].bytes, 12);
    assert_memory_equal(o.v[1].data, MARGIN, 12);
    assert_string_equal(o.v[2].metric, "exact_match");
    assert_string_equal(o.v[3].metric, "window_loss");
    int64_t sw = submit(f->s, "a", NULL, 1);
    cs_store_claim c = claim(f->s);
    bool dup = false;
    assert_int_equal(cs_store_result_items(f->s, c.job_id, c.attempt, WORKER, c.lease_token, "{}",
                                           NULL, 0, o.v, o.n, NULL, T0 + 1, &dup, &err),
                     CS_OK);
    cs_store_outcomes_fini(&o);
    q_text(f->s, "SELECT hex(data) FROM item_value WHERE metric = 'window_loss'", text,
           sizeof(text));
    assert_string_equal(text, "0000C03F0000803E");
    assert_int_equal(cs_store_agg_load(f->s, sw, true, &a, &err), CS_OK);
    assert_int_equal(a.jobs[0].n_outcomes, 4);
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(a.jobs[0].outcomes[i].metric, "window_loss") == 0) {
            assert_true(a.jobs[0].outcomes[i].values[0] == 1.5f);
            assert_true(a.jobs[0].outcomes[i].values[1] == 0.25f);
        }
    }
    cs_store_agg_fini(&a);
    cs_store_claim_fini(&c);
}

/* The aggregate of sweep "a" as JSON text (owned). */
static char *results_text(cs_store *s, const char *reference)
{
    cs_store_results_req q = {.reference = reference, .resamples = 20, .seed = 1};
    cJSON *out = NULL;
    cs_err err = {0};
    if (cs_store_results(s, "a", &q, &out, &err) != CS_OK) {
        fail_msg("results: %s", err.msg);
    }
    char *text = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    assert_non_null(text);
    return text;
}

/* A job whose axes the fragments cannot represent keeps them whole in axes_raw: loaded as that
 * text (no members), it aggregates as the same job read through its fragments. */
static void test_agg_load_axes_raw(void **state)
{
    fixture *f = *state;
    cs_store_agg a = {0};
    cs_err err = {0};
    char sql[256];
    int64_t sw = submit(f->s, "a", NULL, 3);
    for (int i = 0; i < 3; i++) {
        cs_store_claim c = claim(f->s);
        assert_int_equal(report(f->s, &c, OUTCOMES, 2), CS_OK);
        cs_store_claim_fini(&c);
    }
    int64_t id = q_int(f->s, "SELECT min(id) FROM job_row");
    char *want = results_text(f->s, NULL), *want_ref = results_text(f->s, "i=2");
    snprintf(sql, sizeof(sql),
             "UPDATE job_row SET axes_raw = (SELECT axes FROM job WHERE id = %lld), axs = '[]'"
             " WHERE id = %lld",
             (long long)id, (long long)id);
    assert_int_equal(sqlite3_exec(cs_store_test_db(f->s), sql, NULL, NULL, NULL), SQLITE_OK);
    char *got = results_text(f->s, NULL), *got_ref = results_text(f->s, "i=2");
    assert_string_equal(got, want);
    assert_string_equal(got_ref, want_ref);
    free(want);
    free(want_ref);
    free(got);
    free(got_ref);
    /* the raw text as it is, model and eval from it; the other jobs have members */
    snprintf(sql, sizeof(sql),
             "UPDATE job_row SET axes_raw = '{\"model\":{\"n\":1},\"eval\":\"e\",\"seed\":0}'"
             " WHERE id = %lld",
             (long long)id);
    assert_int_equal(sqlite3_exec(cs_store_test_db(f->s), sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(cs_store_agg_load(f->s, sw, false, &a, &err), CS_OK);
    const cs_agg_job *j = job_of(&a, id);
    assert_null(j->members);
    assert_string_equal(j->axes, "{\"model\":{\"n\":1},\"eval\":\"e\",\"seed\":0}");
    assert_string_equal(j->model, "{\"n\":1}");
    assert_string_equal(j->eval, "e");
    j = job_of(&a, id + 1);
    assert_null(j->axes);
    assert_int_equal(j->n_members, 2);
    assert_true(has_member(j, "\"i\":2") && has_member(j, "\"seed\":0"));
    cs_store_agg_fini(&a);
    /* a fragment list that is not one, or names no fragment: a database error naming the job */
    snprintf(sql, sizeof(sql), "UPDATE job_row SET axs = '[1,' WHERE id = %lld", (long long)id + 1);
    assert_int_equal(sqlite3_exec(cs_store_test_db(f->s), sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(cs_store_agg_load(f->s, sw, false, &a, &err), CS_EDB);
    assert_non_null(strstr(err.msg, "is not an array of fragment ids"));
    snprintf(sql, sizeof(sql), "UPDATE job_row SET axs = '[ 99999 ]' WHERE id = %lld",
             (long long)id + 1);
    assert_int_equal(sqlite3_exec(cs_store_test_db(f->s), sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(cs_store_agg_load(f->s, sw, false, &a, &err), CS_EDB);
    assert_non_null(strstr(err.msg, "axes fragment 99999 is missing"));
}

/* cs_store_agg_load_headlines reads only the outcomes of each task's headline metric: the sweep's
 * choice, the default (acc), or --metric. */
static void test_agg_load_headlines(void **state)
{
    fixture *f = *state;
    cs_store_agg a = {0};
    cs_err err = {0};
    static const char *spec = "{\"data\":{\"eval\":{\"default\":{\"tasks\":{\"arith\":{"
                              "\"headline\":\"margin\",\"path\":\"x\"}}}}}}";
    int64_t sw = submit(f->s, "a", NULL, 1), sw2 = submit(f->s, "b", spec, 1);
    cs_store_claim c = claim(f->s);
    assert_int_equal(report(f->s, &c, OUTCOMES, 2), CS_OK);
    cs_store_claim d = claim(f->s);
    assert_int_equal(report(f->s, &d, OUTCOMES, 2), CS_OK);
    const struct {
        int64_t sweep;
        const char *metric, *want; /* want NULL: no outcome */
    } cases[] = {{sw, NULL, "acc"},
                 {sw, "margin", "margin"},
                 {sw, "acc_norm", NULL},
                 {sw2, NULL, "margin"},
                 {sw2, "acc", "acc"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        assert_int_equal(
                cs_store_agg_load_headlines(f->s, cases[i].sweep, cases[i].metric, &a, &err),
                CS_OK);
        assert_int_equal(a.n_jobs, 1);
        assert_int_equal(a.jobs[0].n_metrics, 2);
        assert_int_equal(a.jobs[0].result_version, 2);
        assert_int_equal(a.jobs[0].n_outcomes, cases[i].want ? 1 : 0);
        if (cases[i].want) {
            assert_string_equal(a.jobs[0].outcomes[0].metric, cases[i].want);
            assert_string_equal(a.jobs[0].outcomes[0].task, "arith");
        }
        cs_store_agg_fini(&a);
    }
    cs_store_claim_fini(&c);
    cs_store_claim_fini(&d);
}

/* A version-4 database (every outcome in item_outcome) migrates to version 5: the float arrays
 * move to item_value, the bitsets stay, nothing is lost, and the aggregator reads both. */
static void test_migrate_values(void **state)
{
    fixture *f = *state;
    cs_store_agg a = {0};
    cs_err err = {0};
    int64_t sw = submit(f->s, "a", NULL, 1);
    cs_store_claim c = claim(f->s);
    assert_int_equal(report(f->s, &c, OUTCOMES, 2), CS_OK);
    cs_store_claim_fini(&c);
    /* back to version 4: the margin row where version 4 kept it, item_value gone */
    sqlite3 *db = cs_store_test_db(f->s);
    assert_int_equal(sqlite3_exec(db,
                                  "BEGIN; INSERT INTO item_outcome SELECT * FROM item_value;"
                                  " DROP TABLE item_value; PRAGMA user_version = 4; COMMIT",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM item_outcome"), 2);
    cs_store_close(f->s);
    f->s = NULL;
    assert_int_equal(cs_store_open(f->path, &f->s, &err), CS_OK);
    assert_int_equal(q_int(f->s, "PRAGMA user_version"), 6);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM item_outcome WHERE metric = 'acc'"), 1);
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM item_outcome"), 1);
    char text[64];
    q_text(f->s, "SELECT hex(data) FROM item_value WHERE metric = 'margin'", text, sizeof(text));
    assert_string_equal(text, "0000003F0000A0BF00000040");
    assert_int_equal(q_int(f->s, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND"
                                 " name IN ('item_outcome_job', 'item_value_job')"),
                     2);
    assert_int_equal(cs_store_agg_load(f->s, sw, true, &a, &err), CS_OK);
    assert_int_equal(a.jobs[0].result_version, 2);
    assert_int_equal(a.jobs[0].n_outcomes, 2);
    cs_store_agg_fini(&a);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
            T(test_schema_has_items),
            T(test_result_stores_outcomes),
            T(test_outcome_twice_refused),
            T(test_agg_load),
            T(test_cached_outcomes_follow_result),
            T(test_agg_load_errors),
            T(test_version1_result),
            T(test_outcomes_of_result),
            T(test_agg_load_axes_raw),
            T(test_agg_load_headlines),
            T(test_migrate_values),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
