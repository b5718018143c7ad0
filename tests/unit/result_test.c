/* result_test.c - the result codec (common/cs_result.h): encode -> decode -> encode gives the same
 * bytes, a document's canonical text is what the encoder writes, and every refusal (null, NaN or
 * infinite metrics, too many metrics, wrong types) names its JSON path. */
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_result.h"
#include "cs_test.h"

/* What calsweep-run writes (pretty, in its own order) and its canonical text. */
#define RUNNER_DOC                                                                                 \
    "{\n  \"version\": 1,\n  \"metrics\": {\"wiki\": {\"ppl\": 14.25, \"n\": 14, \"ppl_stderr\": " \
    "0.5}, \"arith_mc\": {\"n\": 40, \"acc\": 0.625, \"acc_stderr\": 0.077, \"acc_norm\": "        \
    "0.6}},\n"                                                                                     \
    "  \"calibration\": {\"selector\": \"random\", \"n\": 2, \"sample_ids\": [3, "                 \
    "\"gen-0001\"]},\n"                                                                            \
    "  \"timings\": {\"load\": 0.25, \"total\": 1.5},\n  \"peak_rss_mb\": 812.5,\n"                \
    "  \"engine_version\": \"calsweep-engine/0.1.0\",\n  \"host\": \"node7\",\n"                   \
    "  \"threads\": 4,\n  \"started_ms\": 1700000000000,\n  \"ended_ms\": 1700000001500,\n"        \
    "  \"extra\": {\"quant_loss\": 0.125, \"layers\": [1, 2]},\n  \"env_job\": \"41\"\n}\n"
#define RUNNER_CANON                                                                               \
    "{\"calibration\":{\"n\":2,\"sample_ids\":[3,\"gen-0001\"],\"selector\":\"random\"},"          \
    "\"ended_ms\":1700000001500,\"engine_version\":\"calsweep-engine/0.1.0\",\"env_job\":\"41\","  \
    "\"extra\":{\"layers\":[1,2],\"quant_loss\":0.125},\"host\":\"node7\",\"metrics\":{"           \
    "\"arith_mc\":{\"acc\":0.625,\"acc_norm\":0.6,\"acc_stderr\":0.077,\"n\":40},\"wiki\":{\"n\":" \
    "14,\"ppl\":14.25,\"ppl_stderr\":0.5}},\"peak_rss_mb\":812.5,\"started_ms\":1700000000000,"    \
    "\"threads\":4,\"timings\":{\"load\":0.25,\"total\":1.5},\"version\":1}"

static char *encode(const cs_result *r)
{
    char *text = NULL;
    cs_err err = {0};
    cs_rc rc = cs_result_encode(r, &text, NULL, &err);
    if (rc != CS_OK) {
        print_error("encode: %s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    return text;
}

static void round_trip(void **state)
{
    (void)state;
    cs_result r, again;
    cs_err err = {0};
    assert_int_equal(cs_result_decode(RUNNER_DOC, strlen(RUNNER_DOC), &r, &err), CS_OK);
    assert_int_equal(r.n_tasks, 2);
    assert_string_equal(r.tasks[0].name, "wiki");
    assert_true(r.tasks[0].has_n);
    assert_int_equal(r.tasks[0].n, 14);
    assert_int_equal(r.tasks[1].n_metrics, 3);
    const cs_result_value *se = cs_result_metric(&r.tasks[1], "acc_stderr");
    assert_non_null(se);
    assert_true(se->value == 0.077);
    assert_null(cs_result_metric(&r.tasks[1], "n"));
    assert_string_equal(r.others, "{\"env_job\":\"41\"}");
    char *one = encode(&r);
    assert_string_equal(one, RUNNER_CANON);
    assert_int_equal(cs_result_decode(one, strlen(one), &again, &err), CS_OK);
    char *two = encode(&again);
    assert_string_equal(one, two); /* byte-identical */
    free(one);
    free(two);
    cs_result_fini(&r);
    cs_result_fini(&again);
}

/* A zeroed struct is a result with no metrics; the worker's minimal exec results decode. */
static void minimal(void **state)
{
    (void)state;
    cs_result r = {0};
    cs_err err = {0};
    char *t = encode(&r);
    assert_string_equal(t, "{\"metrics\":{}}");
    free(t);
    const char *in = "{\"metrics\":{\"t\":{\"acc\":0.5}},\"calibration\":null}";
    assert_int_equal(cs_result_decode(in, strlen(in), &r, &err), CS_OK);
    t = encode(&r);
    assert_string_equal(t, "{\"calibration\":null,\"metrics\":{\"t\":{\"acc\":0.5}}}");
    free(t);
    cs_result_fini(&r);
}

static void refused(const char *doc, cs_rc want, const char *msg)
{
    cs_result r;
    cs_err err = {0};
    cs_rc rc = cs_result_decode(doc, strlen(doc), &r, &err);
    if (rc != want || strstr(err.msg, msg) == NULL) {
        print_error("%s\n  -> %s (%s), want %s with \"%s\"\n", doc, cs_rc_name(rc), err.msg,
                    cs_rc_name(want), msg);
        fail();
    }
    assert_int_equal(err.rc, want);
    assert_null(r.tasks); /* zeroed */
}

static void refusals(void **state)
{
    (void)state;
    refused("{\"metrics\":{\"wiki\":{\"ppl\":null}}}", CS_ERANGE,
            "metrics.wiki.ppl: not a finite number");
    /* An infinity spelled 1e999 never gets past the parser. */
    refused("{\"metrics\":{\"a\":{\"acc\":1e999}}}", CS_EPARSE,
            "metrics.a.acc: number out of range");
    refused("{\"metrics\":{\"a\":{\"acc\":-1e999}}}", CS_EPARSE,
            "metrics.a.acc: number out of range");
    refused("{\"metrics\":{\"a\":{\"acc\":\"0.5\"}}}", CS_ESCHEMA,
            "metrics.a.acc: expected a finite number, got \"0.5\"");
    refused("{\"metrics\":{\"a\":{\"acc\":{\"value\":1}}}}", CS_ESCHEMA,
            "metrics.a.acc: expected a finite number");
    refused("{\"metrics\":{\"a\":[1]}}", CS_ESCHEMA, "metrics.a: expected an object");
    refused("{\"metrics\":{\"a\":{\"n\":1.5}}}", CS_ESCHEMA, "metrics.a.n: expected an integer");
    refused("{\"metrics\":{\"a\":{\"n\":-1}}}", CS_ESCHEMA, "metrics.a.n");
    refused("{\"metrics\":[]}", CS_ESCHEMA, "metrics: expected an object");
    refused("{\"host\":\"h\"}", CS_ESCHEMA, "missing required key \"metrics\"");
    refused("{\"metrics\":{},\"timings\":{\"load\":-1}}", CS_ESCHEMA, "timings.load");
    refused("{\"metrics\":{},\"threads\":0}", CS_ESCHEMA, "threads");
    refused("{\"metrics\":{},\"version\":2}", CS_ESCHEMA, "version");
    refused("{\"metrics\":{},\"host\":7}", CS_ESCHEMA, "host: expected a string");
    refused("{\"metrics\":{},\"extra\":[1]}", CS_ESCHEMA, "extra: expected an object");
    refused("{\"metrics\":{},\"calibration\":1}", CS_ESCHEMA, "calibration: expected an object");
    refused("{\"metrics\":{},\"job_key\":\"abc\"}", CS_ESCHEMA, "job_key");
    refused("[1]", CS_ESCHEMA, "expected an object");
    refused("{\"metrics\":{}", CS_EPARSE, "");
}

/* A tree built in memory can hold NaN and infinities (text cannot): refused the same way. */
static void non_finite_tree(void **state)
{
    (void)state;
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *doc = cJSON_CreateObject();
        cJSON *t = cJSON_AddObjectToObject(cJSON_AddObjectToObject(doc, "metrics"), "arith");
        cJSON_AddNumberToObject(t, "n", 10);
        cJSON_AddNumberToObject(t, "acc", bad[i]);
        cs_result r;
        cs_err err = {0};
        cs_jctx c;
        cs_jctx_init(&c, NULL, &err);
        cs_jpath_push_key(&c.path, "RESULT");
        assert_int_equal(cs_result_from_json(&c, doc, &r), CS_ERANGE);
        assert_int_equal(err.rc, CS_ERANGE);
        assert_non_null(strstr(err.msg, "RESULT.metrics.arith.acc: not a finite number"));
        assert_null(r.tasks);
        cJSON_Delete(doc);
    }
}

/* At most CS_LIMIT_RESULT_METRICS metric values, in one task or spread over many. */
static void too_many(void **state)
{
    (void)state;
    cs_buf b = {0};
    for (int spread = 0; spread < 2; spread++) {
        b.len = 0;
        assert_int_equal(cs_buf_puts(&b, "{\"metrics\":{\"t\":{"), CS_OK);
        for (int i = 0; i <= CS_LIMIT_RESULT_METRICS; i++) {
            if (spread && i > 0 && i % 100 == 0) {
                assert_int_equal(cs_buf_printf(&b, "},\"t%d\":{", i), CS_OK);
            } else if (i > 0) {
                assert_int_equal(cs_buf_putc(&b, ','), CS_OK);
            }
            assert_int_equal(cs_buf_printf(&b, "\"m%d\":%d", i, i), CS_OK);
        }
        assert_int_equal(cs_buf_puts(&b, "}}}"), CS_OK);
        refused(b.data, CS_ETOOBIG, "more than 16384 metric values");
    }
    cs_buf_fini(&b);
}

/* The encoder refuses what the decoder would. */
static void encode_refusals(void **state)
{
    (void)state;
    cs_result_value v = {"ppl", NAN};
    cs_result_task t = {"wiki", false, 0, &v, 1};
    cs_result r = {.tasks = &t, .n_tasks = 1};
    char *out = NULL;
    cs_err err = {0};
    assert_int_equal(cs_result_encode(&r, &out, NULL, &err), CS_ERANGE);
    assert_non_null(strstr(err.msg, "metrics.ppl: not a finite number"));
    assert_null(out);
    v.value = 1;
    r.extra = "[1]";
    assert_int_equal(cs_result_encode(&r, &out, NULL, &err), CS_EINVAL);
    r.extra = NULL;
    r.others = "{\"metrics\":1}";
    assert_int_equal(cs_result_encode(&r, &out, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "others.metrics"));
}

/* schemas/protocol.schema.json states the C bound (schemas/limits.py reads cs_limits.h when the
 * schema is generated): a changed limit without a regenerated schema fails here. */
static void schema_in_step(void **state)
{
    (void)state;
    const char *src = getenv("CS_SOURCE_DIR");
    char path[4096];
    cJSON *doc = NULL;
    cs_err err = {0};
    snprintf(path, sizeof path, "%s/schemas/protocol.schema.json", src ? src : ".");
    assert_int_equal(cs_json_parse_file(path, 0, &doc, &err), CS_OK);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "$defs"),
                                                     "result"),
                    "properties"),
            "metrics");
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(m, "maxProperties");
    assert_true(cJSON_IsNumber(max));
    assert_int_equal((int64_t)max->valuedouble, CS_LIMIT_RESULT_METRICS);
    cJSON_Delete(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(round_trip),     cmocka_unit_test(minimal),
            cmocka_unit_test(refusals),       cmocka_unit_test(non_finite_tree),
            cmocka_unit_test(too_many),       cmocka_unit_test(encode_refusals),
            cmocka_unit_test(schema_in_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
