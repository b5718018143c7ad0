/* result_test.c - the result codec (common/cs_result.h): encode -> decode -> encode gives the same
 * bytes, a document's canonical text is what the encoder writes, and every refusal (null, NaN or
 * infinite metrics, too many metrics, wrong types) names its JSON path; version 2's per-item
 * outcomes ("items") round-trip and every malformed one is refused naming its path. */
#include <stdlib.h>
#include <string.h>

#include <dirent.h>

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
    refused("{\"metrics\":{},\"version\":3}", CS_ESCHEMA, "version");
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
 * schema is generated): a changed limit without a regenerated schema fails here; so does a
 * changed CS_LIMIT_RESULT_ITEMS without result.schema.json edited. */
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
    /* result.schema.json (hand-written) bounds each task's items by CS_LIMIT_RESULT_ITEMS */
    snprintf(path, sizeof path, "%s/schemas/result.schema.json", src ? src : ".");
    assert_int_equal(cs_json_parse_file(path, 0, &doc, &err), CS_OK);
    const cJSON *kinds = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "$defs"),
                                             "task_items"),
            "oneOf");
    assert_int_equal(cJSON_GetArraySize(kinds), 3);
    for (const cJSON *k = kinds->child; k != NULL; k = k->next) {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(k, "properties"), "n");
        max = cJSON_GetObjectItemCaseSensitive(n, "maximum");
        assert_true(cJSON_IsNumber(max));
        assert_int_equal((size_t)max->valuedouble, CS_LIMIT_RESULT_ITEMS);
    }
    cJSON_Delete(doc);
}

/* ---- per-item outcomes (version 2) ---------------------------------------------------------- */

/* A version 2 result with one task of each kind; the base64 texts were computed independently
 * (Python's base64 and struct modules): acc bits 1,0,1,1,0,0,0,0,1,1,1 are bytes 0x0d 0x07;
 * margins 1.0, -0.5 are the float32 LE bytes 00 00 80 3f 00 00 00 bf. */
#define ITEMS_DOC                                                                                  \
    "{\"items\":{\"gen\":{\"exact_match\":\"WQ==\",\"n\":7,\"sample\":\"" SAMPLE_AB "\"},"         \
    "\"mc\":{\"acc\":\"DQc=\",\"margin\":\"" MARGIN11 "\",\"n\":11,\"sample\":\"" SAMPLE_AB "\"}," \
    "\"ppl:w\":{\"n\":2,\"sample\":\"" SAMPLE_AB "\",\"window_loss\":\"AACAPwAAAL8=\"}},"          \
    "\"metrics\":{\"gen\":{\"n\":7},\"mc\":{\"n\":11},\"ppl:w\":{\"n\":2}},\"version\":2}"
/* margins 1.0, -0.5 and nine 0.0 (Python: base64.b64encode(struct.pack("<11f", ...))) */
#define MARGIN11 "AACAPwAAAL8AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
/* sha256("arith-0003\narith-0001"), from sha256sum */
#define SAMPLE_AB "9c6256ce8ce481115c1cb9d760bb60b4aba40522861f1006835ae455800bc6e5"

static void items_round_trip(void **state)
{
    (void)state;
    cs_result r, again;
    cs_err err = {0};
    if (cs_result_decode(ITEMS_DOC, strlen(ITEMS_DOC), &r, &err) != CS_OK) {
        print_error("%s\n", err.msg);
        fail();
    }
    assert_int_equal(r.version, 2);
    assert_int_equal(r.n_items, 3);
    const cs_result_items *mc = cs_result_find_items(&r, "mc");
    assert_non_null(mc);
    assert_ptr_equal(mc->task, r.tasks[1].name); /* borrowed from the task */
    assert_int_equal(mc->n, 11);
    assert_string_equal(mc->sample, SAMPLE_AB);
    const int want[] = {1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    for (size_t i = 0; i < 11; i++) {
        assert_int_equal(cs_result_bit(mc->acc, i), want[i]);
    }
    assert_null(mc->acc_norm);
    assert_null(mc->window_loss);
    assert_true(mc->margin[0] == 1.0f && mc->margin[1] == -0.5f && mc->margin[10] == 0.0f);
    const cs_result_items *w = cs_result_find_items(&r, "ppl:w");
    assert_true(w->window_loss[0] == 1.0f && w->window_loss[1] == -0.5f);
    assert_int_equal(cs_result_find_items(&r, "gen")->exact_match[0], 0x59);
    assert_null(cs_result_find_items(&r, "nope"));
    assert_int_equal(cs_result_count_items(&r), 20);
    char *one = encode(&r);
    assert_string_equal(one, ITEMS_DOC);
    assert_int_equal(cs_result_decode(one, strlen(one), &again, &err), CS_OK);
    char *two = encode(&again);
    assert_string_equal(one, two);
    free(one);
    free(two);
    cs_result_fini(&r);
    cs_result_fini(&again);
}

/* Built in memory (as the runner does), encoded, decoded: the same outcomes; n = 0 is "". */
static void items_built(void **state)
{
    (void)state;
    cs_result_value v = {"acc", 0.5};
    cs_result_task t[2] = {{"a", true, 13, &v, 1}, {"b", true, 0, &v, 1}};
    cs_result_items it[2] = {{.task = "a", .n = 13}, {.task = "b", .n = 0}};
    cs_result r = {.version = 2, .tasks = t, .n_tasks = 2, .items = it, .n_items = 2};
    cs_result back;
    cs_err err = {0};
    uint8_t acc[2] = {0}, em[1] = {0};
    float margin[13];
    for (size_t i = 0; i < 13; i++) {
        cs_result_bit_set(acc, i, i % 3 == 0);
        margin[i] = (float)i * 0.25f - 1.0f;
    }
    cs_result_bit_set(acc, 3, false);
    it[0].acc = acc;
    it[0].margin = margin;
    it[1].exact_match = em;
    memset(it[0].sample, 'a', 64);
    memset(it[1].sample, 'b', 64);
    assert_int_equal(cs_result_bits_bytes(13), 2);
    assert_int_equal(cs_result_bits_bytes(16), 2);
    assert_int_equal(cs_result_bits_bytes(0), 0);
    char *text = encode(&r);
    assert_non_null(strstr(text, "\"exact_match\":\"\""));
    assert_int_equal(cs_result_decode(text, strlen(text), &back, &err), CS_OK);
    for (size_t i = 0; i < 13; i++) {
        assert_int_equal(cs_result_bit(back.items[0].acc, i), i % 3 == 0 && i != 3);
        assert_true(back.items[0].margin[i] == margin[i]);
    }
    free(text);
    cs_result_fini(&back);
    /* items of a version 1 result, NaN margins, a task without metrics: refused */
    r.version = 1;
    assert_int_equal(cs_result_encode(&r, &text, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "items: per-item outcomes need \"version\": 2"));
    r.version = 2;
    margin[4] = NAN;
    assert_int_equal(cs_result_encode(&r, &text, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "items.a.margin: value 4 is not finite"));
    margin[4] = 0;
    it[1].task = "c";
    assert_int_equal(cs_result_encode(&r, &text, NULL, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "items.c: no task of this name"));
}

/* Version 1 documents still decode, with no items. */
static void items_version_1(void **state)
{
    (void)state;
    cs_result r;
    cs_err err = {0};
    assert_int_equal(cs_result_decode(RUNNER_DOC, strlen(RUNNER_DOC), &r, &err), CS_OK);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.n_items, 0);
    assert_null(r.items);
    cs_result_fini(&r);
}

/* ITEMS_DOC with the text `from` replaced by `to` (once). */
static char *items_doc_with(const char *from, const char *to)
{
    const char *p = strstr(ITEMS_DOC, from);
    cs_buf b = {0};
    assert_non_null(p);
    assert_int_equal(cs_buf_append(&b, ITEMS_DOC, (size_t)(p - ITEMS_DOC)), CS_OK);
    assert_int_equal(cs_buf_puts(&b, to), CS_OK);
    assert_int_equal(cs_buf_puts(&b, p + strlen(from)), CS_OK);
    return b.data;
}

static void items_refused(const char *from, const char *to, cs_rc want, const char *msg)
{
    char *doc = items_doc_with(from, to);
    refused(doc, want, msg);
    free(doc);
}

static void items_refusals(void **state)
{
    (void)state;
    items_refused("\"DQc=\"", "\"DQ==\"", CS_ESCHEMA,
                  "items.mc.acc: a bitset of 11 items takes 2 bytes (4 base64 characters), got 1 "
                  "bytes");
    items_refused("\"DQc=\"", "\"DQcA\"", CS_ESCHEMA, "items.mc.acc: a bitset of 11 items");
    items_refused("\"DQc=\"", "\"DQcAAA==\"", CS_ESCHEMA,
                  "items.mc.acc: a bitset of 11 items takes 2 bytes");
    items_refused("\"DQc=\"", "\"D*c=\"", CS_ESCHEMA, "items.mc.acc: not base64");
    items_refused("\"DQc=\"", "\"DQ c\"", CS_ESCHEMA, "items.mc.acc: not");
    items_refused("\"DQc=\"", "\"DQd=\"", CS_ESCHEMA, "items.mc.acc: not the canonical base64");
    items_refused("\"DQc=\"", "\"DQ8=\"", CS_ESCHEMA, "items.mc.acc: bits past item 10 are set");
    items_refused("\"DQc=\"", "7", CS_ESCHEMA, "items.mc.acc: expected a string");
    items_refused("\"AACAPwAAAL8=\"", "\"AACAPw==\"", CS_ESCHEMA,
                  "items[\"ppl:w\"].window_loss: 2 float32 takes 8 bytes (12 base64 characters), "
                  "got 4 bytes");
    items_refused("\"AACAPwAAAL8=\"", "\"AADAfwAAAL8=\"", CS_ERANGE,
                  "items[\"ppl:w\"].window_loss: value 0 is not finite"); /* 0x7fc00000: NaN */
    items_refused("\"version\":2", "\"version\":1", CS_ESCHEMA,
                  "items: per-item outcomes need \"version\": 2");
    items_refused("\"version\":2", "\"version\":3", CS_ESCHEMA, "version");
    items_refused("\"ppl:w\":{\"n\":2}", "\"ppl:x\":{\"n\":2}", CS_ESCHEMA,
                  "items[\"ppl:w\"]: no task of this name in \"metrics\"");
    items_refused("\"n\":7,\"sample\":", "\"n\":7,\"margin\":\"\",\"sample\":", CS_ESCHEMA,
                  "items.gen.margin: 7 float32 takes 28 bytes");
    items_refused("\"exact_match\":\"WQ==\"", "\"exact_match\":\"WQ==\",\"acc\":\"WQ==\"",
                  CS_ESCHEMA, "items.gen: outcomes of no task kind");
    items_refused("\"exact_match\":\"WQ==\"", "\"exact_matsh\":\"WQ==\"", CS_ESCHEMA,
                  "items.gen.exact_matsh: unknown key");
    items_refused("\"exact_match\":\"WQ==\",", "", CS_ESCHEMA, "items.gen: outcomes of no task");
    items_refused("\"n\":7,\"sample\":\"9c", "\"n\":7,\"sample\":\"9C", CS_ESCHEMA,
                  "items.gen.sample: expected 64 lowercase hex digits");
    items_refused("\"n\":7,", "", CS_ESCHEMA, "items.gen: missing required key \"n\"");
    items_refused("\"n\":7,", "\"n\":-1,", CS_ESCHEMA, "items.gen.n");
    items_refused("\"n\":7,", "\"n\":524289,", CS_ESCHEMA, "items.gen.n");
    items_refused("\"items\":{", "\"items\":[],\"x\":{", CS_ESCHEMA, "items: expected an object");
}

/* At most CS_LIMIT_RESULT_ITEMS items in all: each task within the bound, their sum over it. */
static void items_too_many(void **state)
{
    (void)state;
    cs_buf b = {0};
    size_t half = CS_LIMIT_RESULT_ITEMS / 2 + 1, bytes = (half + 7) / 8;
    assert_int_equal(
            cs_buf_printf(&b, "{\"version\":2,\"metrics\":{\"a\":{},\"b\":{}},\"items\":{"), CS_OK);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(cs_buf_printf(&b,
                                       "%s\"%c\":{\"n\":%zu,\"sample\":\"" SAMPLE_AB
                                       "\",\"exact_match\":\"",
                                       t ? "," : "", 'a' + t, half),
                         CS_OK);
        for (size_t i = 0; i < (bytes + 2) / 3; i++) {
            assert_int_equal(cs_buf_puts(&b, "AAAA"), CS_OK);
        }
        assert_int_equal(cs_buf_puts(&b, "\"}"), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "}}"), CS_OK);
    refused(b.data, CS_ETOOBIG, "items.b.n: more than 524288 items in one result");
    cs_buf_fini(&b);
}

/* cs_result_sample: SHA-256 of the ids joined by "\n" (references from sha256sum). */
static void items_sample(void **state)
{
    (void)state;
    const char *ids[] = {"arith-0003", "arith-0001"};
    char hex[65];
    cs_err err = {0};
    assert_int_equal(cs_result_sample(ids, 2, hex, &err), CS_OK);
    assert_string_equal(hex, SAMPLE_AB);
    assert_int_equal(cs_result_sample(ids, 0, hex, &err), CS_OK);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* The result examples of the schema: every good one decodes and re-encodes stably, every bad
 * one is refused: those named items_* (the other bad ones break rules of the schema that the
 * codec leaves to it, and rtn_no_calibration.json has a null metric, which the codec refuses and
 * the schema allows). tests/node/validate-schemas.js checks the same files against the schema. */
static void items_examples(void **state)
{
    (void)state;
    const char *src = getenv("CS_SOURCE_DIR");
    char dir[4096], path[4600];
    size_t n_good = 0, n_bad = 0;
    for (int good = 1; good >= 0; good--) {
        snprintf(dir, sizeof dir, "%s/schemas/examples/result/%s", src ? src : ".",
                 good ? "good" : "bad");
        DIR *d = opendir(dir);
        assert_non_null(d);
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (strstr(e->d_name, ".json") == NULL || strncmp(e->d_name, "items_", 6) != 0) {
                continue;
            }
            cs_result r;
            cs_err err = {0};
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            cs_rc rc = cs_result_read_file(path, &r, &err);
            if ((rc == CS_OK) != good) {
                print_error("%s: %s (%s)\n", path, cs_rc_name(rc), err.msg);
                fail();
            }
            if (good) {
                char *one = encode(&r), *two;
                cs_result again;
                assert_int_equal(cs_result_decode(one, strlen(one), &again, &err), CS_OK);
                two = encode(&again);
                assert_string_equal(one, two);
                free(one);
                free(two);
                cs_result_fini(&again);
            }
            cs_result_fini(&r);
            *(good ? &n_good : &n_bad) += 1;
        }
        closedir(d);
    }
    assert_true(n_good >= 1 && n_bad >= 5);
}

/* Compactness (issue 19): 5 multiple-choice tasks x 1,000 items stay about 6 KB per task (three
 * bitsets of 125 bytes and 4,000 bytes of float32 margins, in base64: 4 x 168 + 5,336 characters
 * plus the names and the sample), not one JSON object per item. */
static void items_compact(void **state)
{
    (void)state;
    enum { TASKS = 5, N = 1000 };
    static uint8_t bits[TASKS][3][N / 8];
    static float margin[TASKS][N];
    cs_result_value v = {"acc", 0.5};
    cs_result_task t[TASKS];
    cs_result_items it[TASKS];
    char names[TASKS][16];
    cs_rng rng;
    cs_rng_seed(&rng, 19);
    for (size_t k = 0; k < TASKS; k++) {
        snprintf(names[k], sizeof names[k], "task_%zu", k);
        t[k] = (cs_result_task){names[k], true, N, &v, 1};
        it[k] = (cs_result_items){.task = names[k], .n = N};
        memset(it[k].sample, 'c', 64);
        for (size_t i = 0; i < N; i++) {
            for (size_t b = 0; b < 3; b++) {
                cs_result_bit_set(bits[k][b], i, cs_rng_u64(&rng) & 1);
            }
            margin[k][i] = (float)cs_rng_uniform(&rng) * 8.0f - 4.0f;
        }
        it[k].acc = bits[k][0];
        it[k].acc_norm = bits[k][1];
        it[k].acc_bytes = bits[k][2];
        it[k].margin = margin[k];
    }
    cs_result r = {.version = 2, .tasks = t, .n_tasks = TASKS, .items = it, .n_items = TASKS};
    char *text = encode(&r);
    size_t len = strlen(text);
    print_message("# 5 tasks x 1000 items: %zu bytes (%zu per task)\n", len, len / TASKS);
    assert_true(len / TASKS < 6200);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(round_trip),     cmocka_unit_test(minimal),
            cmocka_unit_test(refusals),       cmocka_unit_test(non_finite_tree),
            cmocka_unit_test(too_many),       cmocka_unit_test(encode_refusals),
            cmocka_unit_test(schema_in_step), cmocka_unit_test(items_round_trip),
            cmocka_unit_test(items_built),    cmocka_unit_test(items_version_1),
            cmocka_unit_test(items_refusals), cmocka_unit_test(items_too_many),
            cmocka_unit_test(items_sample),   cmocka_unit_test(items_examples),
            cmocka_unit_test(items_compact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
