/* proto_test.c - the protocol codec (common/cs_proto.h): every message type round-trips field by
 * field and byte for byte, a table of malformed messages each fails with the expected code and a
 * message naming the place, the encoder refuses what the decoder would refuse, log tails are cut
 * and cleaned, and the committed examples under schemas/examples/protocol/ agree with the codec.
 *
 * Examples: schemas/examples/protocol/good/<sample>.json is the encoder's output for the sample of
 * the same name below (plus a newline); this test fails when they differ. To regenerate them after
 * a deliberate change:  CS_PROTO_WRITE_EXAMPLES=1 meson test -C build proto  */
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

#include "cs_alloc.h"
#include "cs_path.h"
#include "cs_proto.h"
#include "cs_result.h"
#include "cs_test.h"

/* ---- samples: one or more filled messages per type (borrowed strings; never fini'd) --------- */

static char *BACKENDS[] = {"native", "exec"};
static char *MODELS[] = {"tb-llama", "tb-qwen"};
static cs_gpu GPUS[] = {{0, "NVIDIA H100 80GB HBM3", 81559}, {1, "NVIDIA H100 80GB HBM3", 81559}};

static void fill_caps(cs_caps *c)
{
    c->backends = BACKENDS;
    c->n_backends = 2;
    c->models = MODELS;
    c->n_models = 2;
    c->threads = 16;
    c->mem_mb = 131072;
    c->gpus = GPUS;
    c->n_gpus = 2;
}

/* JSON payloads as a sender might write them, and their canonical form after decoding. */
#define CONFIG_IN                                                                              \
    "{ \"model\": {\"folder\": \"sweeps/testbed/models/tb-qwen\"}, \"algorithm\": {\"name\": " \
    "\"gptq\", \"bits\": 4}, \"seed\": 0, \"n_samples\": 128, \"seq_len\": 2.048e3 }"
#define CONFIG_CANON                                                                               \
    "{\"algorithm\":{\"bits\":4,\"name\":\"gptq\"},\"model\":{\"folder\":\"sweeps/testbed/models/" \
    "tb-qwen\"},\"n_samples\":128,\"seed\":0,\"seq_len\":2048}"
#define SWEEP_CANON "{\"grid\":{\"bits\":[3,4]},\"name\":\"demo\"}"
#define LEASE       "5f0c2a9be13d47a8c6f1e0d2b3a49587"
#define INSTANCE    "0123456789abcdef0123456789abcdef"

static void fill_hello(cs_msg *m)
{
    m->hello.worker = "node7:gpu0";
    m->hello.host = "node7";
    fill_caps(&m->hello.caps);
    m->token = "s3cret";
    m->req_id = 1;
}
static void fill_claim(cs_msg *m)
{
    m->claim.worker = "node7:gpu0";
    m->claim.instance = INSTANCE;
    fill_caps(&m->claim.caps);
    m->claim.caps.gpus = NULL; /* a CPU-only worker */
    m->claim.caps.n_gpus = 0;
    m->claim.caps.n_backends = 1;
}
static void fill_job(cs_msg *m)
{
    m->job.job_id = 9007199254740992; /* 2^53: the largest exact id */
    m->job.attempt = 2;
    m->job.lease_token = LEASE;
    m->job.lease_s = 60;
    m->job.timeout_s = 3600;
    m->job.config = CONFIG_IN;
}
static void fill_no_work(cs_msg *m)
{
    m->no_work.retry_ms = 2500;
}
static void fill_heartbeat(cs_msg *m)
{
    m->heartbeat.worker = "node7:gpu0";
    m->heartbeat.job_id = 42;
    m->heartbeat.attempt = 1;
    m->heartbeat.lease_token = LEASE;
    m->heartbeat.stage = "quantize";
    m->heartbeat.done = 7;
    m->heartbeat.total = 24;
    m->heartbeat.log_tail = "layer 6: err 0.0123\nlayer 7: err 0.0131 \xc3\xa9\t\"q\"\n";
    m->req_id = 77;
}
static void fill_heartbeat_detail(cs_msg *m)
{
    fill_heartbeat(m);
    m->heartbeat.stage = "evaluate";
    m->heartbeat.detail = "arith_mc";
    m->heartbeat.done = 300;
    m->heartbeat.total = 1000;
    m->heartbeat.stage_ms = 41250;
}
static void fill_ack(cs_msg *m)
{
    m->ack.cancel = true;
}
static void fill_result(cs_msg *m)
{
    m->result.worker = "node7:gpu0";
    m->result.job_id = 42;
    m->result.attempt = 1;
    m->result.lease_token = LEASE;
    static cs_result_value arith[] = {{"acc", 0.62}, {"acc_norm", 0.6}};
    static cs_result_value wiki[] = {{"ppl", 14.25}};
    static cs_result_task tasks[] = {{"arith_mc", true, 200, arith, 2},
                                     {"wikitext", false, 0, wiki, 1}};
    cs_result *r = &m->result.result;
    r->tasks = tasks;
    r->n_tasks = 2;
    r->host = "node7";
    r->has_peak_rss_mb = true;
    r->peak_rss_mb = 812;
    r->engine_version = "calsweep-engine/0.1.0";
    r->calibration = "{\"n\":3,\"sample_ids\":[3,17,42],\"selector\":\"random\"}";
}
static void fill_result_claim(cs_msg *m)
{
    fill_result(m);
    m->result.claim.worker = "node7:gpu0";
    m->result.claim.instance = INSTANCE;
    fill_caps(&m->result.claim.caps);
}
static void fill_fail(cs_msg *m)
{
    m->fail.worker = "node7:gpu0";
    m->fail.job_id = 43;
    m->fail.attempt = 3;
    m->fail.lease_token = LEASE;
    m->fail.kind = CS_FAIL_OOM;
    m->fail.reason = "out of memory while allocating the Hessian (4096 x 4096)";
    m->fail.exit_status = 1;
    m->fail.signal = 0;
    m->fail.log_tail = "";
}
static void fill_fail_signal(cs_msg *m)
{
    m->fail.worker = "node7:gpu1";
    m->fail.job_id = 44;
    m->fail.attempt = 1;
    m->fail.lease_token = LEASE;
    m->fail.kind = CS_FAIL_CRASH;
    m->fail.reason = "killed by signal 9";
    m->fail.exit_status = -1;
    m->fail.signal = 9;
    m->fail.log_tail = "calibrate: 12/128\n";
    m->fail.log_path = "/home/u/.local/state/calsweep/work/44-1/stderr.log";
}
static void fill_fail_claim(cs_msg *m)
{
    fill_fail(m);
    m->fail.claim.worker = "node7:gpu0";
    m->fail.claim.instance = INSTANCE;
    fill_caps(&m->fail.claim.caps);
    m->fail.claim.caps.gpus = NULL;
    m->fail.claim.caps.n_gpus = 0;
}
static void fill_bye(cs_msg *m)
{
    m->bye.worker = "node7:gpu0";
    m->bye.instance = INSTANCE;
}
static void fill_bye_release(cs_msg *m)
{
    m->bye.worker = "node7:gpu0";
    m->bye.instance = INSTANCE;
    m->bye.release_job_id = 42;
    m->bye.release_attempt = 1;
    m->bye.release_lease_token = LEASE;
}
static void fill_submit(cs_msg *m)
{
    m->submit.sweep = SWEEP_CANON;
    m->submit.force = false;
}
static void fill_plan(cs_msg *m)
{
    m->plan.sweep = SWEEP_CANON;
}
static void fill_status(cs_msg *m)
{
    m->status.sweep = "demo";
}
static void fill_status_all(cs_msg *m)
{
    (void)m;
}
static void fill_cancel_sweep(cs_msg *m)
{
    m->cancel.sweep = "demo";
}
static void fill_cancel_job(cs_msg *m)
{
    m->cancel.job = 42;
}
static void fill_cancel_filter(cs_msg *m)
{
    m->cancel.filter = "{\"state\":\"queued\",\"sweep\":\"demo\"}";
}
static void fill_pause(cs_msg *m)
{
    m->pause.sweep = "demo";
}
static void fill_resume(cs_msg *m)
{
    m->resume.sweep = "12";
}
static void fill_retry(cs_msg *m)
{
    m->retry.sweep = "demo";
    m->retry.failed = true;
    m->retry.lost = false;
}
static void fill_extend(cs_msg *m)
{
    m->extend.sweep_id = "demo";
    m->extend.sweep = SWEEP_CANON;
}
static void fill_jobs(cs_msg *m)
{
    m->jobs.sweep = "demo";
    m->jobs.state = "retry_wait";
    m->jobs.limit = 50;
    m->jobs.offset = 100;
}
static void fill_workers(cs_msg *m)
{
    (void)m;
}
static void fill_logs(cs_msg *m)
{
    m->logs.job_id = 42;
    m->logs.attempt = 2;
    m->logs.tail = 4096;
}
static char *RESULTS_BY[] = {"algorithm", "selector"};
static char *RESULTS_TASKS[] = {"arith", "ppl:general"};
static void fill_results(cs_msg *m)
{
    m->results.sweep = "demo";
    m->results.by = RESULTS_BY;
    m->results.n_by = 2;
    m->results.metric = "acc_norm";
    m->results.reference = "algorithm=rtn";
    m->results.tasks = RESULTS_TASKS;
    m->results.n_tasks = 2;
    m->results.resamples = 10000;
    m->results.item_resamples = 2000;
    m->results.seed = 7;
    m->results.slim = true;
}
static void fill_results_min(cs_msg *m)
{
    m->results.sweep = "12";
}
static void fill_watch(cs_msg *m)
{
    m->watch.sweep = "demo";
    m->watch.top = 10;
    m->watch.problems = 50;
}
static void fill_watch_all(cs_msg *m)
{
    (void)m;
}
static void fill_job_info(cs_msg *m)
{
    m->job_info.job_id = 42;
}
static void fill_ok(cs_msg *m)
{
    m->ok.data = "{\"cached\":3,\"jobs\":120,\"sweep_id\":12}";
}
static void fill_ok_empty(cs_msg *m)
{
    (void)m;
}
static void fill_error(cs_msg *m)
{
    m->error.code = CS_ESTALE;
    m->error.message = "job 42: attempt 1 is stale (current attempt 2)";
}

typedef struct sample {
    const char *name; /* example file name without .json */
    cs_msg_type type;
    void (*fill)(cs_msg *m);
} sample;

static const sample SAMPLES[] = {
        {"hello", CS_MSG_HELLO, fill_hello},
        {"claim", CS_MSG_CLAIM, fill_claim},
        {"job", CS_MSG_JOB, fill_job},
        {"no_work", CS_MSG_NO_WORK, fill_no_work},
        {"heartbeat", CS_MSG_HEARTBEAT, fill_heartbeat},
        {"ack", CS_MSG_ACK, fill_ack},
        {"result", CS_MSG_RESULT, fill_result},
        {"result_claim", CS_MSG_RESULT, fill_result_claim},
        {"fail", CS_MSG_FAIL, fill_fail},
        {"fail_signal", CS_MSG_FAIL, fill_fail_signal},
        {"fail_claim", CS_MSG_FAIL, fill_fail_claim},
        {"bye", CS_MSG_BYE, fill_bye},
        {"bye_release", CS_MSG_BYE, fill_bye_release},
        {"submit", CS_MSG_SUBMIT, fill_submit},
        {"plan", CS_MSG_PLAN, fill_plan},
        {"status", CS_MSG_STATUS, fill_status},
        {"status_all", CS_MSG_STATUS, fill_status_all},
        {"cancel_sweep", CS_MSG_CANCEL, fill_cancel_sweep},
        {"cancel_job", CS_MSG_CANCEL, fill_cancel_job},
        {"cancel_filter", CS_MSG_CANCEL, fill_cancel_filter},
        {"pause", CS_MSG_PAUSE, fill_pause},
        {"resume", CS_MSG_RESUME, fill_resume},
        {"retry", CS_MSG_RETRY, fill_retry},
        {"extend", CS_MSG_EXTEND, fill_extend},
        {"jobs", CS_MSG_JOBS, fill_jobs},
        {"workers", CS_MSG_WORKERS, fill_workers},
        {"logs", CS_MSG_LOGS, fill_logs},
        {"results", CS_MSG_RESULTS, fill_results},
        {"results_min", CS_MSG_RESULTS, fill_results_min},
        {"watch", CS_MSG_WATCH, fill_watch},
        {"watch_all", CS_MSG_WATCH, fill_watch_all},
        {"job_info", CS_MSG_JOB_INFO, fill_job_info},
        {"heartbeat_detail", CS_MSG_HEARTBEAT, fill_heartbeat_detail},
        {"ok", CS_MSG_OK, fill_ok},
        {"ok_empty", CS_MSG_OK, fill_ok_empty},
        {"error", CS_MSG_ERROR, fill_error},
};
#define N_SAMPLES (sizeof(SAMPLES) / sizeof(SAMPLES[0]))

static void make_sample(const sample *s, cs_msg *m)
{
    cs_msg_init(m, s->type);
    s->fill(m);
}

/* ---- field-by-field comparison ----------------------------------------------------------- */

static void assert_str_eq(const char *a, const char *b)
{
    if (!a || !b) {
        assert_ptr_equal(a, b);
    } else {
        assert_string_equal(a, b);
    }
}

static void assert_caps_eq(const cs_caps *a, const cs_caps *b)
{
    assert_int_equal(a->n_backends, b->n_backends);
    for (size_t i = 0; i < a->n_backends; i++) {
        assert_string_equal(a->backends[i], b->backends[i]);
    }
    assert_int_equal(a->n_models, b->n_models);
    for (size_t i = 0; i < a->n_models; i++) {
        assert_string_equal(a->models[i], b->models[i]);
    }
    assert_int_equal(a->threads, b->threads);
    assert_int_equal(a->mem_mb, b->mem_mb);
    assert_int_equal(a->n_gpus, b->n_gpus);
    for (size_t i = 0; i < a->n_gpus; i++) {
        assert_int_equal(a->gpus[i].index, b->gpus[i].index);
        assert_string_equal(a->gpus[i].name, b->gpus[i].name);
        assert_int_equal(a->gpus[i].mem_mb, b->gpus[i].mem_mb);
    }
}

/* Equality of a sample (want) and what decoding its encoding gave (got). JSON payloads compare
 * with their canonical text: want_json maps the sample's payload text to it. */
static const char *canon_of(const char *text)
{
    return text && strcmp(text, CONFIG_IN) == 0 ? CONFIG_CANON : text;
}

/* Results are equal when their canonical texts are. */
static void assert_result_eq(const cs_result *want, const cs_result *got)
{
    char *a = NULL, *b = NULL;
    assert_int_equal(cs_result_encode(want, &a, NULL, NULL), CS_OK);
    assert_int_equal(cs_result_encode(got, &b, NULL, NULL), CS_OK);
    assert_string_equal(a, b);
    free(a);
    free(b);
}

static void assert_msg_eq(const cs_msg *want, const cs_msg *got)
{
    assert_int_equal(want->type, got->type);
    assert_str_eq(want->token, got->token);
    assert_int_equal(want->req_id, got->req_id);
    switch (want->type) {
    case CS_MSG_HELLO:
        assert_str_eq(want->hello.worker, got->hello.worker);
        assert_str_eq(want->hello.host, got->hello.host);
        assert_caps_eq(&want->hello.caps, &got->hello.caps);
        break;
    case CS_MSG_CLAIM:
        assert_str_eq(want->claim.worker, got->claim.worker);
        assert_str_eq(want->claim.instance, got->claim.instance);
        assert_caps_eq(&want->claim.caps, &got->claim.caps);
        break;
    case CS_MSG_JOB:
        assert_int_equal(want->job.job_id, got->job.job_id);
        assert_int_equal(want->job.attempt, got->job.attempt);
        assert_str_eq(want->job.lease_token, got->job.lease_token);
        assert_int_equal(want->job.lease_s, got->job.lease_s);
        assert_int_equal(want->job.timeout_s, got->job.timeout_s);
        assert_str_eq(canon_of(want->job.config), got->job.config);
        break;
    case CS_MSG_NO_WORK:
        assert_int_equal(want->no_work.retry_ms, got->no_work.retry_ms);
        break;
    case CS_MSG_HEARTBEAT:
        assert_int_equal(want->heartbeat.job_id, got->heartbeat.job_id);
        assert_int_equal(want->heartbeat.attempt, got->heartbeat.attempt);
        assert_str_eq(want->heartbeat.worker, got->heartbeat.worker);
        assert_str_eq(want->heartbeat.lease_token, got->heartbeat.lease_token);
        assert_str_eq(want->heartbeat.stage, got->heartbeat.stage);
        assert_int_equal(want->heartbeat.done, got->heartbeat.done);
        assert_int_equal(want->heartbeat.total, got->heartbeat.total);
        assert_str_eq(want->heartbeat.log_tail, got->heartbeat.log_tail);
        assert_str_eq(want->heartbeat.detail, got->heartbeat.detail);
        assert_int_equal(want->heartbeat.stage_ms, got->heartbeat.stage_ms);
        break;
    case CS_MSG_ACK:
        assert_int_equal(want->ack.cancel, got->ack.cancel);
        break;
    case CS_MSG_RESULT:
        assert_int_equal(want->result.job_id, got->result.job_id);
        assert_int_equal(want->result.attempt, got->result.attempt);
        assert_str_eq(want->result.worker, got->result.worker);
        assert_str_eq(want->result.lease_token, got->result.lease_token);
        assert_str_eq(want->result.claim.instance, got->result.claim.instance);
        assert_result_eq(&want->result.result, &got->result.result);
        assert_str_eq(want->result.claim.worker, got->result.claim.worker);
        assert_caps_eq(&want->result.claim.caps, &got->result.claim.caps);
        break;
    case CS_MSG_FAIL:
        assert_int_equal(want->fail.job_id, got->fail.job_id);
        assert_int_equal(want->fail.attempt, got->fail.attempt);
        assert_str_eq(want->fail.worker, got->fail.worker);
        assert_str_eq(want->fail.lease_token, got->fail.lease_token);
        assert_str_eq(want->fail.claim.instance, got->fail.claim.instance);
        assert_int_equal(want->fail.kind, got->fail.kind);
        assert_str_eq(want->fail.reason, got->fail.reason);
        assert_int_equal(want->fail.exit_status, got->fail.exit_status);
        assert_int_equal(want->fail.signal, got->fail.signal);
        assert_str_eq(want->fail.log_tail, got->fail.log_tail);
        assert_str_eq(want->fail.claim.worker, got->fail.claim.worker);
        assert_caps_eq(&want->fail.claim.caps, &got->fail.claim.caps);
        break;
    case CS_MSG_BYE:
        assert_str_eq(want->bye.worker, got->bye.worker);
        assert_int_equal(want->bye.release_job_id, got->bye.release_job_id);
        assert_int_equal(want->bye.release_attempt, got->bye.release_attempt);
        assert_str_eq(want->bye.instance, got->bye.instance);
        assert_str_eq(want->bye.release_lease_token, got->bye.release_lease_token);
        break;
    case CS_MSG_SUBMIT:
        assert_str_eq(want->submit.sweep, got->submit.sweep);
        assert_int_equal(want->submit.force, got->submit.force);
        break;
    case CS_MSG_PLAN:
        assert_str_eq(want->plan.sweep, got->plan.sweep);
        break;
    case CS_MSG_STATUS:
        assert_str_eq(want->status.sweep, got->status.sweep);
        break;
    case CS_MSG_CANCEL:
        assert_str_eq(want->cancel.sweep, got->cancel.sweep);
        assert_int_equal(want->cancel.job, got->cancel.job);
        assert_str_eq(want->cancel.filter, got->cancel.filter);
        break;
    case CS_MSG_PAUSE:
        assert_str_eq(want->pause.sweep, got->pause.sweep);
        break;
    case CS_MSG_RESUME:
        assert_str_eq(want->resume.sweep, got->resume.sweep);
        break;
    case CS_MSG_RETRY:
        assert_str_eq(want->retry.sweep, got->retry.sweep);
        assert_int_equal(want->retry.failed, got->retry.failed);
        assert_int_equal(want->retry.lost, got->retry.lost);
        break;
    case CS_MSG_EXTEND:
        assert_str_eq(want->extend.sweep_id, got->extend.sweep_id);
        assert_str_eq(want->extend.sweep, got->extend.sweep);
        break;
    case CS_MSG_JOBS:
        assert_str_eq(want->jobs.sweep, got->jobs.sweep);
        assert_str_eq(want->jobs.state, got->jobs.state);
        assert_int_equal(want->jobs.limit, got->jobs.limit);
        assert_int_equal(want->jobs.offset, got->jobs.offset);
        break;
    case CS_MSG_WORKERS:
        break;
    case CS_MSG_LOGS:
        assert_int_equal(want->logs.job_id, got->logs.job_id);
        assert_int_equal(want->logs.attempt, got->logs.attempt);
        assert_int_equal(want->logs.tail, got->logs.tail);
        break;
    case CS_MSG_RESULTS:
        assert_str_eq(want->results.sweep, got->results.sweep);
        assert_str_eq(want->results.metric, got->results.metric);
        assert_str_eq(want->results.reference, got->results.reference);
        assert_int_equal(want->results.n_by, got->results.n_by);
        for (size_t i = 0; i < want->results.n_by; i++) {
            assert_string_equal(want->results.by[i], got->results.by[i]);
        }
        assert_int_equal(want->results.n_tasks, got->results.n_tasks);
        for (size_t i = 0; i < want->results.n_tasks; i++) {
            assert_string_equal(want->results.tasks[i], got->results.tasks[i]);
        }
        assert_int_equal(want->results.resamples, got->results.resamples);
        assert_int_equal(want->results.item_resamples, got->results.item_resamples);
        assert_int_equal(want->results.seed, got->results.seed);
        break;
    case CS_MSG_WATCH:
        assert_str_eq(want->watch.sweep, got->watch.sweep);
        assert_int_equal(want->watch.top, got->watch.top);
        assert_int_equal(want->watch.problems, got->watch.problems);
        break;
    case CS_MSG_JOB_INFO:
        assert_int_equal(want->job_info.job_id, got->job_info.job_id);
        break;
    case CS_MSG_OK:
        assert_str_eq(want->ok.data, got->ok.data);
        break;
    case CS_MSG_ERROR:
        assert_int_equal(want->error.code, got->error.code);
        assert_str_eq(want->error.message, got->error.message);
        break;
    case CS_MSG_NONE:
    case CS_MSG_TYPE_COUNT:
        fail_msg("bad sample type %d", (int)want->type);
    }
}

/* ---- round trips ------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    bool seen[CS_MSG_TYPE_COUNT] = {false};
    (void)state;
    for (size_t i = 0; i < N_SAMPLES; i++) {
        cs_msg m, back;
        char *t1 = NULL, *t2 = NULL;
        size_t n1 = 0, n2 = 0;
        cs_err err = {0};
        make_sample(&SAMPLES[i], &m);
        if (cs_msg_encode(&m, &t1, &n1, &err) != CS_OK) {
            fail_msg("%s: encode: %s", SAMPLES[i].name, err.msg);
        }
        assert_int_equal(strlen(t1), n1);
        if (cs_msg_decode(t1, n1, &back, &err) != CS_OK) {
            fail_msg("%s: decode: %s\n%s", SAMPLES[i].name, err.msg, t1);
        }
        assert_msg_eq(&m, &back);
        assert_int_equal(cs_msg_encode(&back, &t2, &n2, &err), CS_OK);
        assert_string_equal(t1, t2);
        assert_int_equal(n1, n2);
        assert_int_equal(cs_msg_type_from_name(cs_msg_type_name(m.type)), m.type);
        seen[m.type] = true;
        cs_msg_fini(&back);
        assert_int_equal(back.type, CS_MSG_NONE);
        free(t1);
        free(t2);
    }
    for (int t = CS_MSG_NONE + 1; t < CS_MSG_TYPE_COUNT; t++) {
        if (!seen[t]) {
            fail_msg("no sample of type %s", cs_msg_type_name((cs_msg_type)t));
        }
    }
}

/* The wire text is canonical: keys sorted, no whitespace, envelope included. */
static void test_wire_form(void **state)
{
    cs_msg m;
    char *t = NULL;
    (void)state;
    cs_msg_init(&m, CS_MSG_HEARTBEAT);
    m.heartbeat.worker = "w";
    m.heartbeat.job_id = 5;
    m.heartbeat.attempt = 1;
    m.heartbeat.lease_token = LEASE;
    m.heartbeat.stage = "load";
    m.heartbeat.total = 3;
    m.heartbeat.log_tail = "";
    assert_int_equal(cs_msg_encode(&m, &t, NULL, NULL), CS_OK);
    assert_string_equal(t, "{\"attempt\":1,\"done\":0,\"job_id\":5,\"lease_token\":\"" LEASE
                           "\",\"log_tail\":\"\",\"stage\":\"load\",\"total\":3,\"type\":"
                           "\"HEARTBEAT\",\"v\":4,\"worker\":\"w\"}");
    free(t);
    cs_msg_init(&m, CS_MSG_WORKERS);
    m.token = "t";
    assert_int_equal(cs_msg_encode(&m, &t, NULL, NULL), CS_OK);
    assert_string_equal(t, "{\"token\":\"t\",\"type\":\"WORKERS\",\"v\":4}");
    free(t);
}

/* Accepted variations: key order, whitespace, null for optional fields, 1.0 for 1, a trailing
 * newline; the decoded message re-encodes canonically. */
static void test_lenient_forms(void **state)
{
    static const struct {
        const char *in, *canon;
    } cases[] = {
            {" { \"type\" : \"ACK\", \"cancel\" : false, \"v\" : 4.0 }\n",
             "{\"cancel\":false,\"type\":\"ACK\",\"v\":4}"},
            {"{\"v\":4,\"type\":\"STATUS\",\"sweep\":null,\"token\":null,\"req_id\":null}",
             "{\"type\":\"STATUS\",\"v\":4}"},
            {"{\"v\":4,\"type\":\"OK\",\"data\":null}", "{\"data\":null,\"type\":\"OK\",\"v\":4}"},
            {"{\"v\":4,\"type\":\"OK\",\"data\":[1,\"\\u00e9\",{\"b\":1,\"a\":2}]}",
             "{\"data\":[1,\"\xc3\xa9\",{\"a\":2,\"b\":1}],\"type\":\"OK\",\"v\":4}"},
            {"{\"v\":4,\"type\":\"LOGS\",\"job_id\":3e0,\"attempt\":null}",
             "{\"job_id\":3,\"type\":\"LOGS\",\"v\":4}"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cs_msg m;
        cs_err err = {0};
        char *t = NULL;
        if (cs_msg_decode(cases[i].in, strlen(cases[i].in), &m, &err) != CS_OK) {
            fail_msg("case %zu: %s", i, err.msg);
        }
        assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_OK);
        assert_string_equal(t, cases[i].canon);
        free(t);
        cs_msg_fini(&m);
    }
}

/* ---- malformed messages ------------------------------------------------------------------ */

typedef struct bad_case {
    const char *what;
    const char *text;
    size_t len; /* 0 = strlen(text) */
    cs_rc rc;
    const char *fragment; /* must appear in err.msg */
} bad_case;

#define LEASE_KV "\"lease_token\":\"" LEASE "\","
#define HB_HEAD0 \
    "{\"v\":4,\"type\":\"HEARTBEAT\",\"worker\":\"w\"," LEASE_KV "\"job_id\":1,\"attempt\":1,"
#define HB_HEAD HB_HEAD0 "\"stage\":\"load\","
#define SHA64   "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define RESULT_HEAD_NR \
    "{\"v\":4,\"type\":\"RESULT\",\"worker\":\"w\"," LEASE_KV "\"job_id\":1,\"attempt\":1,"
#define RESULT_HEAD                                                                         \
    "{\"v\":4,\"type\":\"RESULT\",\"worker\":\"w\"," LEASE_KV "\"job_id\":1,\"attempt\":1," \
    "\"result\":{\"metrics\":{}},"
#define CAPS_MIN "{\"backends\":[\"native\"],\"models\":[],\"threads\":1,\"mem_mb\":0,\"gpus\":[]}"
static const bad_case BAD[] = {
        {"not JSON", "hello", 0, CS_EPARSE, "message:1:1"},
        {"empty", "", 0, CS_EPARSE, "empty"},
        {"truncated", "{\"v\":4,\"type\":", 0, CS_EPARSE, "message:1:"},
        {"trailing data", "{\"v\":4,\"type\":\"WORKERS\"} x", 0, CS_EPARSE, "message:1:"},
        {"array", "[1,2]", 0, CS_EPROTO, "expected a JSON object, got an array"},
        {"string", "\"CLAIM\"", 0, CS_EPROTO, "expected a JSON object, got a string"},
        {"no version", "{\"type\":\"WORKERS\"}", 0, CS_EPROTO, "missing required key \"v\""},
        {"version as string", "{\"v\":\"1\",\"type\":\"WORKERS\"}", 0, CS_EPROTO, "v: expected"},
        {"version 1", "{\"v\":1,\"type\":\"WORKERS\"}", 0, CS_EVERSION, "protocol version 1"},
        {"version 2", "{\"v\":2,\"type\":\"WORKERS\"}", 0, CS_EVERSION, "protocol version 2"},
        {"version 3", "{\"v\":3,\"type\":\"WORKERS\"}", 0, CS_EVERSION,
         "protocol version 3 is not supported (this build speaks version 4)"},
        /* RESULT.result goes through the result codec (version 4) */
        {"result null metric", RESULT_HEAD_NR "\"result\":{\"metrics\":{\"wiki\":{\"ppl\":null}}}}",
         0, CS_EPROTO, "RESULT.result.metrics.wiki.ppl: not a finite number"},
        {"result metric a string",
         RESULT_HEAD_NR "\"result\":{\"metrics\":{\"t\":{\"acc\":\"1\"}}}}", 0, CS_EPROTO,
         "RESULT.result.metrics.t.acc: expected a finite number"},
        {"result items bad base64",
         RESULT_HEAD_NR "\"result\":{\"version\":2,\"metrics\":{\"t\":{}},\"items\":{\"t\":{"
                        "\"n\":3,\"sample\":\"" SHA64 "\",\"exact_match\":\"*A==\"}}}}",
         0, CS_EPROTO, "RESULT.result.items.t.exact_match: not base64"},
        {"result without metrics", RESULT_HEAD_NR "\"result\":{\"host\":\"h\"}}", 0, CS_EPROTO,
         "RESULT.result: missing required key \"metrics\""},
        {"result metrics twice over (version 3)",
         RESULT_HEAD_NR "\"result\":{\"metrics\":{}},"
                        "\"metrics\":{}}",
         0, CS_EPROTO, "RESULT.metrics: unknown key"},
        {"version 0", "{\"v\":0,\"type\":\"WORKERS\"}", 0, CS_EVERSION, "protocol version 0"},
        /* RESULTS: bounded lists of names, bounded resamples */
        {"results by not a list",
         "{\"v\":4,\"type\":\"RESULTS\",\"sweep\":\"d\",\"by\":\"seed\",\"resamples\":0,"
         "\"seed\":0}",
         0, CS_EPROTO, "RESULTS.by: expected an array"},
        {"results empty task name",
         "{\"v\":4,\"type\":\"RESULTS\",\"sweep\":\"d\",\"tasks\":[\"\"],\"resamples\":0,"
         "\"seed\":0}",
         0, CS_EPROTO, "RESULTS.tasks[0]: expected a non-empty string"},
        {"results resamples too many",
         "{\"v\":4,\"type\":\"RESULTS\",\"sweep\":\"d\",\"resamples\":1000001,\"seed\":0}", 0,
         CS_EPROTO, "RESULTS.resamples"},
        {"results item_resamples negative",
         "{\"v\":4,\"type\":\"RESULTS\",\"sweep\":\"d\",\"resamples\":0,\"item_resamples\":-1,"
         "\"seed\":0}",
         0, CS_EPROTO, "RESULTS.item_resamples"},
        /* WATCH and JOB_INFO: bounded counts, a job id */
        {"watch top too many", "{\"v\":4,\"type\":\"WATCH\",\"top\":101}", 0, CS_EPROTO,
         "WATCH.top"},
        {"watch problems zero", "{\"v\":4,\"type\":\"WATCH\",\"problems\":0}", 0, CS_EPROTO,
         "WATCH.problems"},
        {"job_info without id", "{\"v\":4,\"type\":\"JOB_INFO\"}", 0, CS_EPROTO,
         "JOB_INFO: missing required key \"job_id\""},
        {"heartbeat empty detail",
         HB_HEAD "\"done\":0,\"total\":1,\"log_tail\":\"\",\"detail\":\"\"}", 0, CS_EPROTO,
         "HEARTBEAT.detail"},
        {"results without seed", "{\"v\":4,\"type\":\"RESULTS\",\"sweep\":\"d\",\"resamples\":0}",
         0, CS_EPROTO, "RESULTS: missing required key \"seed\""},
        {"version 1.5", "{\"v\":1.5,\"type\":\"WORKERS\"}", 0, CS_EPROTO, "got 1.5"},
        {"no type", "{\"v\":4}", 0, CS_EPROTO, "missing required key \"type\""},
        {"type not a string", "{\"v\":4,\"type\":3}", 0, CS_EPROTO, "type: expected a string"},
        {"unknown type", "{\"v\":4,\"type\":\"GIMME\"}", 0, CS_EPROTO,
         "unknown message type \"GIMME\""},
        {"type case", "{\"v\":4,\"type\":\"claim\"}", 0, CS_EPROTO, "unknown message type"},
        {"unknown field", "{\"v\":4,\"type\":\"WORKERS\",\"verbose\":true}", 0, CS_EPROTO,
         "WORKERS.verbose: unknown key"},
        {"typo suggestion", "{\"v\":4,\"type\":\"ACK\",\"cancle\":true}", 0, CS_EPROTO,
         "did you mean \"cancel\""},
        {"missing required", "{\"v\":4,\"type\":\"ACK\"}", 0, CS_EPROTO,
         "ACK: missing required key \"cancel\""},
        {"duplicate attempt", HB_HEAD "\"done\":0,\"total\":1,\"log_tail\":\"\",\"attempt\":\"x\"}",
         0, CS_EPARSE, "duplicate key \"attempt\""},
        {"attempt wrong type",
         "{\"v\":4,\"type\":\"HEARTBEAT\",\"worker\":\"w\",\"job_id\":1,\"attempt\":\"x\","
         "\"stage\":\"load\",\"done\":0,\"total\":1,\"log_tail\":\"\"}",
         0, CS_EPROTO, "HEARTBEAT.attempt: expected a positive integer, got \"x\""},
        {"negative job id",
         "{\"v\":4,\"type\":\"RESULT\",\"worker\":\"w\",\"job_id\":-4,\"attempt\":1,"
         "\"result\":{\"metrics\":{}}}",
         0, CS_EPROTO, "RESULT.job_id: expected a positive integer, got -4"},
        {"zero attempt",
         "{\"v\":4,\"type\":\"JOB\",\"job_id\":1,\"attempt\":0,\"lease_s\":60,\"config\":{}}", 0,
         CS_EPROTO, "JOB.attempt: expected a positive integer, got 0"},
        {"fractional id",
         "{\"v\":4,\"type\":\"JOB\",\"job_id\":1.5,\"attempt\":1,\"lease_s\":60,\"config\":{}}", 0,
         CS_EPROTO, "JOB.job_id"},
        {"id beyond 2^53",
         "{\"v\":4,\"type\":\"JOB\",\"job_id\":1e17,\"attempt\":1,\"lease_s\":60,\"config\":{}}", 0,
         CS_EPROTO, "2^53"},
        {"config not an object",
         "{\"v\":4,\"type\":\"JOB\",\"job_id\":1,\"attempt\":1," LEASE_KV "\"lease_s\":60,"
         "\"config\":\"{}\"}",
         0, CS_EPROTO, "JOB.config: expected an object"},
        {"negative done", HB_HEAD "\"done\":-1,\"total\":1,\"log_tail\":\"\"}", 0, CS_EPROTO,
         "HEARTBEAT.done: expected a non-negative integer"},
        {"log_tail not a string", HB_HEAD "\"done\":0,\"total\":1,\"log_tail\":[\"a\"]}", 0,
         CS_EPROTO, "HEARTBEAT.log_tail: expected a string, got an array"},
        {"empty stage", HB_HEAD0 "\"stage\":\"\",\"done\":0,\"total\":1,\"log_tail\":\"\"}", 0,
         CS_EPROTO, "HEARTBEAT.stage: expected a non-empty string"},
        {"bool as int", "{\"v\":4,\"type\":\"ACK\",\"cancel\":1}", 0, CS_EPROTO,
         "ACK.cancel: expected a boolean, got 1"},
        {"embedded NUL", "{\"v\":4,\"type\":\"WORKERS\"}\0", 26, CS_EPARSE, "NUL"},
        {"NUL inside string", "{\"v\":4,\"type\":\"BYE\",\"worker\":\"a\0b\"}", 35, CS_EPARSE,
         "NUL"},
        {"escaped NUL", "{\"v\":4,\"type\":\"BYE\",\"worker\":\"a\\u0000b\"}", 0, CS_EPARSE,
         "\\u0000"},
        {"invalid UTF-8", "{\"v\":4,\"type\":\"BYE\",\"worker\":\"a\xff\"}", 0, CS_EPARSE, "UTF-8"},
        {"overlong UTF-8", "{\"v\":4,\"type\":\"BYE\",\"worker\":\"\xc0\xaf\"}", 0, CS_EPARSE,
         "UTF-8"},
        {"lone surrogate", "{\"v\":4,\"type\":\"BYE\",\"worker\":\"\\udc00\"}", 0, CS_EPARSE,
         "message:1:"},
        {"duplicate key", "{\"v\":4,\"type\":\"ACK\",\"cancel\":true,\"cancel\":false}", 0,
         CS_EPARSE, "duplicate key \"cancel\""},
        {"unknown fail kind",
         "{\"v\":4,\"type\":\"FAIL\",\"worker\":\"w\"," LEASE_KV "\"job_id\":1,\"attempt\":1,"
         "\"kind\":\"segv\",\"reason\":\"\","
         "\"exit_status\":1,\"signal\":0,\"log_tail\":\"\"}",
         0, CS_EPROTO, "FAIL.kind: unknown failure kind \"segv\""},
        {"signal out of range",
         "{\"v\":4,\"type\":\"FAIL\",\"worker\":\"w\"," LEASE_KV "\"job_id\":1,\"attempt\":1,"
         "\"kind\":\"crash\",\"reason\":\"\","
         "\"exit_status\":-1,\"signal\":300,\"log_tail\":\"\"}",
         0, CS_EPROTO, "FAIL.signal: expected an integer in 0..127, got "},
        {"unknown error code", "{\"v\":4,\"type\":\"ERROR\",\"code\":\"EBAD\",\"message\":\"\"}", 0,
         CS_EPROTO, "ERROR.code: unknown error code \"EBAD\""},
        {"CS_OK as error code", "{\"v\":4,\"type\":\"ERROR\",\"code\":\"CS_OK\",\"message\":\"\"}",
         0, CS_EPROTO, "ERROR.code"},
        {"unknown job state",
         "{\"v\":4,\"type\":\"JOBS\",\"state\":\"zombie\",\"limit\":1,"
         "\"offset\":0}",
         0, CS_EPROTO, "JOBS.state: unknown value \"zombie\""},
        {"jobs limit 0", "{\"v\":4,\"type\":\"JOBS\",\"limit\":0,\"offset\":0}", 0, CS_EPROTO,
         "JOBS.limit: expected an integer in 1..100000"},
        {"cancel with two targets", "{\"v\":4,\"type\":\"CANCEL\",\"sweep\":\"demo\",\"job\":3}", 0,
         CS_EPROTO, "CANCEL: expected exactly one of"},
        {"cancel with nothing", "{\"v\":4,\"type\":\"CANCEL\"}", 0, CS_EPROTO,
         "expected exactly one of \"sweep\", \"job\", \"filter\", got 0"},
        {"capabilities missing key",
         "{\"v\":4,\"type\":\"CLAIM\",\"worker\":\"w\",\"instance\":\"" INSTANCE
         "\",\"capabilities\":{\"backends\":[],"
         "\"models\":[],\"threads\":1,\"mem_mb\":0}}",
         0, CS_EPROTO, "CLAIM.capabilities: missing required key \"gpus\""},
        {"capabilities bad item",
         "{\"v\":4,\"type\":\"CLAIM\",\"worker\":\"w\",\"instance\":\"" INSTANCE
         "\",\"capabilities\":{\"backends\":[\"native\","
         "7],\"models\":[],\"threads\":1,\"mem_mb\":0,\"gpus\":[]}}",
         0, CS_EPROTO, "CLAIM.capabilities.backends[1]: expected a string, got 7"},
        {"gpu unknown key",
         "{\"v\":4,\"type\":\"HELLO\",\"worker\":\"w\",\"host\":\"h\",\"capabilities\":{"
         "\"backends\":[],\"models\":[],\"threads\":1,\"mem_mb\":0,\"gpus\":[{\"index\":0,"
         "\"name\":\"g\",\"mem_mb\":1,\"uuid\":\"x\"}]}}",
         0, CS_EPROTO, "HELLO.capabilities.gpus[0].uuid: unknown key"},
        {"zero threads",
         "{\"v\":4,\"type\":\"CLAIM\",\"worker\":\"w\",\"instance\":\"" INSTANCE
         "\",\"capabilities\":{\"backends\":[],"
         "\"models\":[],\"threads\":0,\"mem_mb\":0,\"gpus\":[]}}",
         0, CS_EPROTO, "CLAIM.capabilities.threads"},
        {"release_job half",
         "{\"v\":4,\"type\":\"BYE\",\"worker\":\"w\",\"instance\":\"" INSTANCE
         "\",\"release_job\":{\"job_id\":3}}",
         0, CS_EPROTO, "BYE.release_job: missing required key \"attempt\""},
        {"token empty", "{\"v\":4,\"type\":\"WORKERS\",\"token\":\"\"}", 0, CS_EPROTO,
         "WORKERS.token: expected a non-empty string"},
        {"req_id negative", "{\"v\":4,\"type\":\"WORKERS\",\"req_id\":-1}", 0, CS_EPROTO,
         "WORKERS.req_id"},
        {"submit force missing", "{\"v\":4,\"type\":\"SUBMIT\",\"sweep\":{}}", 0, CS_EPROTO,
         "SUBMIT: missing required key \"force\""},
        {"infinite number", "{\"v\":4,\"type\":\"NO_WORK\",\"retry_ms\":1e999}", 0, CS_EPARSE,
         "message"},
        {"retry_ms too big", "{\"v\":4,\"type\":\"NO_WORK\",\"retry_ms\":1e12}", 0, CS_EPROTO,
         "NO_WORK.retry_ms"},
        /* The claim that rides on a RESULT or FAIL (version 2), as strict as a CLAIM. */
        {"result claim not an object", RESULT_HEAD "\"claim\":\"w\"}", 0, CS_EPROTO,
         "RESULT.claim: expected an object, got \"w\""},
        {"result claim unknown key",
         RESULT_HEAD "\"claim\":{\"worker\":\"w\",\"instance\":\"" INSTANCE
                     "\",\"capabilities\":" CAPS_MIN ",\"priority\":1}}",
         0, CS_EPROTO, "RESULT.claim.priority: unknown key"},
        {"result claim without worker",
         RESULT_HEAD "\"claim\":{\"instance\":\"" INSTANCE "\",\"capabilities\":" CAPS_MIN "}}", 0,
         CS_EPROTO, "RESULT.claim: missing required key \"worker\""},
        {"result claim empty worker",
         RESULT_HEAD "\"claim\":{\"worker\":\"\",\"capabilities\":" CAPS_MIN "}}", 0, CS_EPROTO,
         "RESULT.claim.worker: expected a non-empty string"},
        {"result claim worker not a string",
         RESULT_HEAD "\"claim\":{\"worker\":7,\"capabilities\":" CAPS_MIN "}}", 0, CS_EPROTO,
         "RESULT.claim.worker: expected a string, got 7"},
        {"result claim without capabilities",
         RESULT_HEAD "\"claim\":{\"worker\":\"w\",\"instance\":\"" INSTANCE "\"}}", 0, CS_EPROTO,
         "RESULT.claim: missing required key \"capabilities\""},
        {"result claim bad capabilities",
         RESULT_HEAD "\"claim\":{\"worker\":\"w\",\"instance\":\"" INSTANCE
                     "\",\"capabilities\":{\"backends\":[],"
                     "\"models\":[],\"threads\":0,\"mem_mb\":0,\"gpus\":[]}}}",
         0, CS_EPROTO, "RESULT.claim.capabilities.threads"},
        {"fail claim typo",
         "{\"v\":4,\"type\":\"FAIL\",\"worker\":\"w\"," LEASE_KV "\"job_id\":1,\"attempt\":1,"
         "\"kind\":\"oom\",\"reason\":\"\",\"exit_status\":1,\"signal\":0,\"log_tail\":\"\","
         "\"claim\":{\"worker\":\"w\",\"instance\":\"" INSTANCE "\","
         "\"capabilites\":" CAPS_MIN "}}",
         0, CS_EPROTO, "did you mean \"capabilities\""},
        /* Version 3: every report names the worker and the lease token of its JOB. */
        {"heartbeat without lease_token",
         "{\"v\":4,\"type\":\"HEARTBEAT\",\"worker\":\"w\",\"job_id\":1,\"attempt\":1,"
         "\"stage\":\"load\",\"done\":0,\"total\":1,\"log_tail\":\"\"}",
         0, CS_EPROTO, "HEARTBEAT: missing required key \"lease_token\""},
        {"result without worker",
         "{\"v\":4,\"type\":\"RESULT\"," LEASE_KV "\"job_id\":1,\"attempt\":1,"
         "\"result\":{\"metrics\":{}}}",
         0, CS_EPROTO, "RESULT: missing required key \"worker\""},
        {"lease_token too short",
         HB_HEAD0 "\"stage\":\"x\",\"done\":0,\"total\":1,\"log_tail\":"
                  "\"\",\"lease_token\":\"abc\"}",
         0, CS_EPARSE, "duplicate key \"lease_token\""},
        {"lease_token upper case",
         "{\"v\":4,\"type\":\"FAIL\",\"worker\":\"w\",\"lease_token\":"
         "\"5F0C2A9BE13D47A8C6F1E0D2B3A49587\",\"job_id\":1,\"attempt\":1,\"kind\":\"oom\","
         "\"reason\":\"\",\"exit_status\":1,\"signal\":0,\"log_tail\":\"\"}",
         0, CS_EPROTO, "FAIL.lease_token: expected 32 lowercase hex digits"},
        {"lease_token one digit long",
         "{\"v\":4,\"type\":\"JOB\",\"job_id\":1,\"attempt\":1,\"lease_token\":\"" LEASE
         "0\",\"lease_s\":60,\"config\":{}}",
         0, CS_EPROTO, "JOB.lease_token: expected 32 lowercase hex digits, got 33 characters"},
        {"lease_token not a string",
         "{\"v\":4,\"type\":\"RESULT\",\"worker\":\"w\",\"lease_token\":7,\"job_id\":1,"
         "\"attempt\":1,\"result\":{\"metrics\":{}}}",
         0, CS_EPROTO, "RESULT.lease_token: expected a string, got 7"},
        {"claim without instance",
         "{\"v\":4,\"type\":\"CLAIM\",\"worker\":\"w\",\"capabilities\":" CAPS_MIN "}", 0,
         CS_EPROTO, "CLAIM: missing required key \"instance\""},
        {"result claim without instance",
         RESULT_HEAD "\"claim\":{\"worker\":\"w\",\"capabilities\":" CAPS_MIN "}}", 0, CS_EPROTO,
         "RESULT.claim: missing required key \"instance\""},
        {"release_job without lease_token",
         "{\"v\":4,\"type\":\"BYE\",\"worker\":\"w\",\"instance\":\"" INSTANCE
         "\",\"release_job\":{\"job_id\":3,\"attempt\":1}}",
         0, CS_EPROTO, "BYE.release_job: missing required key \"lease_token\""},
        {"release_job short lease_token",
         "{\"v\":4,\"type\":\"BYE\",\"worker\":\"w\",\"instance\":\"" INSTANCE
         "\",\"release_job\":{\"job_id\":3,\"attempt\":1,\"lease_token\":\"00\"}}",
         0, CS_EPROTO, "BYE.release_job.lease_token: expected 32 lowercase hex digits"},
        {"claim on a heartbeat",
         HB_HEAD "\"done\":0,\"total\":1,\"log_tail\":\"\",\"claim\":{"
                 "\"worker\":\"w\",\"capabilities\":" CAPS_MIN "}}",
         0, CS_EPROTO, "HEARTBEAT.claim: unknown key"},
};

static void test_malformed(void **state)
{
    (void)state;
    assert_true(sizeof(BAD) / sizeof(BAD[0]) >= 25);
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        const bad_case *b = &BAD[i];
        size_t len = b->len ? b->len : strlen(b->text);
        cs_msg m;
        cs_err err = {0};
        cs_rc rc = cs_msg_decode(b->text, len, &m, &err);
        if (rc != b->rc || err.rc != b->rc || !strstr(err.msg, b->fragment)) {
            fail_msg("%s: got %s \"%s\" (err.rc %s), want %s containing \"%s\"", b->what,
                     cs_rc_name(rc), err.msg, cs_rc_name(err.rc), cs_rc_name(b->rc), b->fragment);
        }
        assert_int_equal(m.type, CS_MSG_NONE); /* zeroed on error */
        cs_msg_fini(&m);
    }
}

/* Oversize messages and fields, built at run time. */
static void test_oversize(void **state)
{
    cs_buf b = {0};
    cs_msg m;
    cs_err err = {0};
    char *big = NULL, *t = NULL;
    (void)state;

    /* A whole message over the cap is refused before parsing. */
    assert_int_equal(cs_buf_puts(&b, "{\"v\":4,\"type\":\"OK\",\"data\":\""), CS_OK);
    while (b.len <= CS_PROTO_MAX_BYTES) {
        assert_int_equal(
                cs_buf_puts(&b, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "\"}"), CS_OK);
    assert_int_equal(cs_msg_decode(b.data, b.len, &m, &err), CS_ETOOBIG);
    assert_non_null(strstr(err.msg, "exceed the limit"));
    cs_buf_fini(&b);

    /* log_tail: exactly the cap is fine, one byte more is not. */
    big = malloc(CS_PROTO_MAX_TEXT + 2);
    assert_non_null(big);
    memset(big, 'a', CS_PROTO_MAX_TEXT + 1);
    big[CS_PROTO_MAX_TEXT] = '\0';
    cs_msg_init(&m, CS_MSG_HEARTBEAT);
    m.heartbeat.worker = "w";
    m.heartbeat.job_id = 1;
    m.heartbeat.attempt = 1;
    m.heartbeat.lease_token = LEASE;
    m.heartbeat.stage = "load";
    m.heartbeat.log_tail = big;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_OK);
    free(t);
    big[CS_PROTO_MAX_TEXT] = 'a';
    big[CS_PROTO_MAX_TEXT + 1] = '\0';
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_null(t);
    assert_non_null(strstr(err.msg, "HEARTBEAT.log_tail: longer than 16384 bytes"));

    /* The same on the decoding side. */
    assert_int_equal(cs_buf_printf(&b, HB_HEAD "\"done\":0,\"total\":1,\"log_tail\":\"%s\"}", big),
                     CS_OK);
    assert_int_equal(cs_msg_decode(b.data, b.len, &m, &err), CS_EPROTO);
    assert_non_null(strstr(err.msg, "HEARTBEAT.log_tail: longer than"));
    cs_buf_fini(&b);

    /* A name over CS_PROTO_MAX_NAME. */
    big[CS_PROTO_MAX_NAME + 1] = '\0';
    assert_int_equal(cs_buf_printf(&b, "{\"v\":4,\"type\":\"BYE\",\"worker\":\"%s\"}", big), CS_OK);
    assert_int_equal(cs_msg_decode(b.data, b.len, &m, &err), CS_EPROTO);
    assert_non_null(strstr(err.msg, "BYE.worker: longer than 256 bytes"));
    cs_buf_fini(&b);

    /* A list over CS_PROTO_MAX_LIST. */
    assert_int_equal(
            cs_buf_puts(&b, "{\"v\":4,\"type\":\"CLAIM\",\"worker\":\"w\",\"instance\":\"" INSTANCE
                            "\",\"capabilities\":"
                            "{\"threads\":1,\"mem_mb\":0,\"gpus\":[],\"backends\":[],"
                            "\"models\":["),
            CS_OK);
    for (int i = 0; i <= CS_PROTO_MAX_LIST; i++) {
        assert_int_equal(cs_buf_puts(&b, i ? ",\"m\"" : "\"m\""), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "]}}"), CS_OK);
    assert_int_equal(cs_msg_decode(b.data, b.len, &m, &err), CS_EPROTO);
    assert_non_null(strstr(err.msg, "CLAIM.capabilities.models: more than 1024 items"));
    cs_buf_fini(&b);
    free(big);
}

/* The encoder refuses what the decoder would refuse, naming the field. */
static void test_encode_errors(void **state)
{
    static char *bad_models[] = {"ok", NULL};
    cs_msg m;
    cs_err err = {0};
    char *t = NULL;
    (void)state;

    cs_msg_init(&m, CS_MSG_NONE);
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_null(t);

    make_sample(&SAMPLES[2], &m); /* job */
    m.job.job_id = 0;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "JOB.job_id"));
    m.job.job_id = (int64_t)1 << 60; /* not exact in a double */
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    m.job.job_id = 1;
    m.job.config = "{\"a\":";
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "JOB.config: not valid JSON"));
    m.job.config = "[1]";
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "JOB.config: expected a JSON object"));
    m.job.config = NULL;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "JOB.config: required but NULL"));

    make_sample(&SAMPLES[0], &m); /* hello */
    m.hello.worker = "bad \xff byte";
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "worker"));
    m.hello.worker = "w";
    m.hello.caps.models = bad_models;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "NULL item"));
    m.hello.caps.models = MODELS;
    m.hello.caps.threads = 0;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "HELLO.capabilities.threads"));

    cs_msg_init(&m, CS_MSG_ERROR);
    m.error.code = CS_OK;
    m.error.message = "";
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    m.error.code = (cs_rc)-999;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);

    cs_msg_init(&m, CS_MSG_FAIL);
    m.fail.worker = "w";
    m.fail.job_id = 1;
    m.fail.attempt = 1;
    m.fail.lease_token = LEASE;
    m.fail.reason = "";
    m.fail.log_tail = "";
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL); /* kind NONE */
    assert_non_null(strstr(err.msg, "FAIL.kind"));

    cs_msg_init(&m, CS_MSG_CANCEL);
    m.cancel.sweep = "a";
    m.cancel.job = 2;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "exactly one"));

    cs_msg_init(&m, CS_MSG_BYE);
    m.bye.worker = "w";
    m.bye.instance = INSTANCE;
    m.bye.release_attempt = 1;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "BYE.release_job"));
    m.bye.release_job_id = 1;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "BYE.release_job: lease_token is required"));

    /* The lease fields of version 3: required, and well-formed. */
    make_sample(&SAMPLES[4], &m); /* heartbeat */
    m.heartbeat.lease_token = NULL;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "HEARTBEAT.lease_token: required but NULL"));
    m.heartbeat.lease_token = "not-hex-not-hex-not-hex-not-hex-";
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "HEARTBEAT.lease_token: expected 32 lowercase hex digits"));
    make_sample(&SAMPLES[7], &m); /* result_claim */
    m.result.claim.instance = NULL;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "RESULT.claim: instance is required"));
    m.result.claim.instance = INSTANCE;
    m.result.worker = NULL;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "RESULT.worker: required but NULL"));

    cs_msg_init(&m, CS_MSG_JOBS);
    m.jobs.state = "zombie";
    m.jobs.limit = 1;
    assert_int_equal(cs_msg_encode(&m, &t, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "JOBS.state"));
    assert_null(t);
}

/* Lease tokens: fresh ones are well-formed and differ; comparison is exact. */
static void test_tokens(void **state)
{
    char a[CS_PROTO_TOKEN_LEN + 1], b[CS_PROTO_TOKEN_LEN + 1];
    (void)state;
    assert_int_equal(cs_proto_new_token(a, NULL), CS_OK);
    assert_int_equal(cs_proto_new_token(b, NULL), CS_OK);
    assert_int_equal(strlen(a), CS_PROTO_TOKEN_LEN);
    assert_true(cs_proto_token_ok(a));
    assert_true(cs_proto_token_ok(b));
    assert_string_not_equal(a, b); /* 2^-128 to fail by chance */
    assert_true(cs_proto_token_eq(a, a));
    assert_false(cs_proto_token_eq(a, b));
    assert_false(cs_proto_token_eq(a, NULL));
    assert_false(cs_proto_token_eq(NULL, NULL));
    assert_false(cs_proto_token_ok(NULL));
    assert_false(cs_proto_token_ok(""));
    assert_false(cs_proto_token_ok("0123456789abcdef0123456789abcde"));   /* 31 */
    assert_false(cs_proto_token_ok("0123456789abcdef0123456789abcdef0")); /* 33 */
    assert_false(cs_proto_token_ok("0123456789abcdef0123456789abcdeg"));
    assert_false(cs_proto_token_ok("0123456789ABCDEF0123456789abcdef"));
    assert_true(cs_proto_token_ok(LEASE));
    b[0] = a[0];
    memcpy(b, a, CS_PROTO_TOKEN_LEN - 1); /* differs in the last digit only */
    b[CS_PROTO_TOKEN_LEN - 1] = a[CS_PROTO_TOKEN_LEN - 1] == '0' ? '1' : '0';
    assert_false(cs_proto_token_eq(a, b));
    /* A malformed token never equals anything, not even itself. */
    assert_false(cs_proto_token_eq("x", "x"));
}

static void test_names(void **state)
{
    cs_rc rc = CS_OK;
    (void)state;
    assert_string_equal(cs_msg_type_name(CS_MSG_NO_WORK), "NO_WORK");
    assert_string_equal(cs_msg_type_name((cs_msg_type)999), "?");
    assert_int_equal(cs_msg_type_from_name("nope"), CS_MSG_NONE);
    assert_int_equal(cs_msg_type_from_name(NULL), CS_MSG_NONE);
    assert_int_equal(cs_msg_type_endpoint(CS_MSG_CLAIM), CS_EP_WORK);
    assert_int_equal(cs_msg_type_endpoint(CS_MSG_SUBMIT), CS_EP_CONTROL);
    assert_int_equal(cs_msg_type_endpoint(CS_MSG_JOB), CS_EP_REPLY);
    assert_int_equal(cs_msg_type_endpoint(CS_MSG_OK), CS_EP_REPLY);
    for (int k = CS_FAIL_NONE + 1; k < CS_FAIL_KIND_COUNT; k++) {
        assert_int_equal(cs_fail_kind_from_name(cs_fail_kind_name((cs_fail_kind)k)), k);
    }
    assert_int_equal(cs_fail_kind_from_name("model_missing"), CS_FAIL_MODEL_MISSING);
    assert_true(cs_rc_from_name("CS_EVERSION", &rc));
    assert_int_equal(rc, CS_EVERSION);
    assert_false(cs_rc_from_name("EVERSION", &rc));
}

static void test_log_tail(void **state)
{
    char *t;
    char *big;
    size_t n = CS_PROTO_MAX_TEXT + 100;
    (void)state;
    t = cs_proto_log_tail("ok\0bad\xff\xc3\xa9 \xe2\x82", 12);
    assert_non_null(t);
    assert_string_equal(t, "ok?bad?\xc3\xa9 ??");
    free(t);
    t = cs_proto_log_tail(NULL, 0);
    assert_string_equal(t, "");
    free(t);
    /* Long logs keep their end, cut at a character boundary. */
    big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i += 2) {
        big[i] = '\xc3';
        big[i + 1] = '\xa9';
    }
    big[n - 1] = 'Z'; /* n is even: this replaces the last continuation byte */
    big[n - 2] = 'Y';
    t = cs_proto_log_tail(big, n);
    assert_true(strlen(t) <= CS_PROTO_MAX_TEXT);
    assert_true(strlen(t) >= CS_PROTO_MAX_TEXT - 3);
    assert_int_equal((unsigned char)t[0], 0xc3);
    assert_string_equal(t + strlen(t) - 2, "YZ");
    assert_null(strchr(t, '?'));
    free(t);
    free(big);
}

/* ---- committed examples ------------------------------------------------------------------ */

static char *example_path(const char *sub, const char *name)
{
    const char *src = getenv("CS_SOURCE_DIR");
    cs_buf b = {0};
    if (cs_buf_printf(&b, "%s/schemas/examples/protocol/%s%s%s", src ? src : ".", sub,
                      name ? "/" : "", name ? name : "") != CS_OK) {
        return NULL;
    }
    return cs_buf_take(&b);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cs_buf b = {0};
    char chunk[4096];
    size_t n;
    if (!f) {
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (cs_buf_append(&b, chunk, n) != CS_OK) {
            break;
        }
    }
    fclose(f);
    *len = b.len;
    return b.data ? cs_buf_take(&b) : cs_strdup("");
}

/* Every good example is the encoding of its sample (or written when CS_PROTO_WRITE_EXAMPLES is
 * set); every file in good/ decodes and re-encodes to itself; every file in bad/ is refused. */
static void test_examples(void **state)
{
    const char *write = getenv("CS_PROTO_WRITE_EXAMPLES");
    static const char *const SUBS[] = {"good", "bad"};
    size_t n_files[2] = {0, 0};
    (void)state;
    for (size_t i = 0; i < N_SAMPLES; i++) {
        cs_msg m;
        char *t = NULL, *file = NULL, *path = NULL, *want = NULL;
        size_t len = 0;
        cs_buf name = {0};
        make_sample(&SAMPLES[i], &m);
        assert_int_equal(cs_msg_encode(&m, &t, &len, NULL), CS_OK);
        assert_int_equal(cs_buf_printf(&name, "%s.json", SAMPLES[i].name), CS_OK);
        path = example_path("good", name.data);
        assert_non_null(path);
        want = cs_strndup(t, len + 1);
        assert_non_null(want);
        want[len] = '\n';
        if (write && write[0]) {
            FILE *f = fopen(path, "wb");
            if (!f || fwrite(want, 1, len + 1, f) != len + 1 || fclose(f) != 0) {
                fail_msg("cannot write %s", path);
            }
        }
        file = read_all(path, &len);
        if (!file) {
            fail_msg("missing example %s (run with CS_PROTO_WRITE_EXAMPLES=1 to write it)", path);
        }
        if (strcmp(file, want) != 0) {
            fail_msg("%s differs from the encoder's output:\n  file: %s  want: %s", path, file,
                     want);
        }
        free(t);
        free(file);
        free(path);
        free(want);
        cs_buf_fini(&name);
    }
    for (size_t s = 0; s < 2; s++) {
        char *dir_path = example_path(SUBS[s], NULL);
        DIR *d = opendir(dir_path);
        struct dirent *e;
        if (!d) {
            fail_msg("cannot open %s", dir_path);
        }
        while ((e = readdir(d)) != NULL) {
            size_t nl = strlen(e->d_name), len = 0;
            char *path, *text, *again = NULL;
            cs_msg m;
            cs_err err = {0};
            cs_rc rc;
            if (nl < 6 || strcmp(e->d_name + nl - 5, ".json") != 0) {
                continue;
            }
            path = example_path(SUBS[s], e->d_name);
            text = read_all(path, &len);
            assert_non_null(text);
            rc = cs_msg_decode(text, len, &m, &err);
            if (s == 0 && rc != CS_OK) {
                fail_msg("%s: good example refused: %s", path, err.msg);
            }
            if (s == 1 && rc == CS_OK) {
                fail_msg("%s: bad example accepted", path);
            }
            if (rc == CS_OK) {
                assert_int_equal(cs_msg_encode(&m, &again, NULL, &err), CS_OK);
                if (strncmp(again, text, strlen(again)) != 0) {
                    fail_msg("%s: does not re-encode to itself: %s", path, again);
                }
            } else {
                assert_true(err.msg[0] != '\0');
            }
            cs_msg_fini(&m);
            free(again);
            free(text);
            free(path);
            n_files[s]++;
        }
        closedir(d);
        free(dir_path);
    }
    assert_true(n_files[0] >= N_SAMPLES);
    assert_true(n_files[1] >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_round_trip),    cmocka_unit_test(test_wire_form),
            cmocka_unit_test(test_lenient_forms), cmocka_unit_test(test_malformed),
            cmocka_unit_test(test_oversize),      cmocka_unit_test(test_encode_errors),
            cmocka_unit_test(test_names),         cmocka_unit_test(test_log_tail),
            cmocka_unit_test(test_tokens),        cmocka_unit_test(test_examples),
    };
    return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
