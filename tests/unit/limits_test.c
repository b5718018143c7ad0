/* limits_test.c - the one table of limits (common/cs_limits.h) end to end: what the sweep
 * validator accepts, the protocol codec carries and the runner (worker/run/cs_job.c, compiled in)
 * accepts, up to each limit; one past it is refused where it is written, naming the JSON path.
 * Sizes: a sweep over the file limit, or whose canonical text is, is refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cs_expand.h"
#include "cs_job.h"
#include "cs_limits.h"
#include "cs_proto.h"
#include "cs_sweep.h"
#include "cs_test.h"

/* ---- the table of limits (cs_limits.h) --------------------------------------------------- */

static const char limits_base[] =
        "{\"name\":\"lim\",\"models\":{\"m\":{\"folder\":\"sweeps/testbed/models/tb-llama\","
        "\"requires\":{}}},\"data\":{\"sources\":{\"prose\":{\"kind\":\"jsonl\",\"path\":\"p."
        "jsonl\"}},"
        "\"eval\":{\"default\":{\"tasks\":{\"t\":{\"path\":\"t.jsonl\",\"fewshot_path\":\"s."
        "jsonl\"}},"
        "\"perplexity\":{\"g\":{\"path\":\"h.txt\"}}}}},\"grid\":{\"algorithm\":[\"gptq\"],"
        "\"n_samples\":[128],\"seq_len\":[256],\"seed\":[0]},\"policy\":{}}";

/* The sweep of limits_base with the field at tmpl (a CS_LIMIT_FIELDS path, "S" standing for the
 * names m, default, t and g) set to v; *concrete = the path as the validator names it. Owned. */
static char *limits_sweep(const char *tmpl, int64_t v, char *concrete, size_t cap)
{
    cJSON *root = cJSON_Parse(limits_base), *cur = root;
    char comp[64], prev[64] = "", *text;
    const char *p = tmpl;
    size_t used = 0;
    assert_non_null(root);
    concrete[0] = '\0';
    while (*p) {
        size_t n = strcspn(p, ".");
        bool index0 = n > 3 && strncmp(p + n - 3, "[0]", 3) == 0;
        snprintf(comp, sizeof(comp), "%.*s", (int)(index0 ? n - 3 : n), p);
        if (strcmp(comp, "S") == 0) {
            snprintf(comp, sizeof(comp), "%s",
                     strcmp(prev, "models") == 0  ? "m"
                     : strcmp(prev, "eval") == 0  ? "default"
                     : strcmp(prev, "tasks") == 0 ? "t"
                                                  : "g");
        }
        used += (size_t)snprintf(concrete + used, cap - used, "%s%s%s", used ? "." : "", comp,
                                 index0 ? "[0]" : "");
        p += n + (p[n] == '.');
        if (*p) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, comp);
            assert_non_null(cur);
        } else {
            char digits[32];
            cJSON *num;
            snprintf(digits, sizeof(digits), "%lld", (long long)v); /* cJSON prints 15 digits */
            num = cJSON_CreateRaw(digits);
            if (index0) {
                cJSON *arr = cJSON_CreateArray();
                cJSON_AddItemToArray(arr, num);
                num = arr;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(cur, comp);
            cJSON_AddItemToObject(cur, comp, num);
        }
        memcpy(prev, comp, sizeof(prev));
    }
    /* backoff_max_s must be at least backoff_s: give it room when backoff_s is pushed. */
    if (strcmp(tmpl, "policy.backoff_s") == 0) {
        cJSON *pol = cJSON_GetObjectItemCaseSensitive(root, "policy");
        cJSON_AddNumberToObject(pol, "backoff_max_s", CS_LIMIT_BACKOFF_MAX_S);
    }
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    assert_non_null(text);
    return text;
}

/* Every job of s encodes into a JOB message (with the longest lease and the sweep's timeout),
 * decodes back to the same config, and passes the runner's checks; the sweep fits in SUBMIT. */
static void limits_codec_round_trip(const cs_sweep *s)
{
    cs_expander *e = NULL;
    cs_cell cell;
    cs_err err = {0};
    cs_msg m, back;
    char *text = NULL;
    size_t len = 0, n = 0;
    cJSON *cfg = NULL;
    cs_rc rc;
    assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_OK);
    while ((rc = cs_expand_next(e, &cell, &err)) == CS_OK) {
        cs_msg_init(&m, CS_MSG_JOB);
        m.job.job_id = 1;
        m.job.attempt = 1;
        m.job.lease_token = (char *)(uintptr_t) "0123456789abcdef0123456789abcdef";
        m.job.lease_s = CS_LIMIT_LEASE_S;
        m.job.timeout_s = s->policy.timeout_s;
        char *config = cs_strdup(cell.config);
        m.job.config = config;
        if (cs_msg_encode(&m, &text, &len, &err) != CS_OK) {
            fail_msg("JOB of %s: %s", cell.axes, err.msg);
        }
        assert_int_equal(cs_msg_decode(text, len, &back, &err), CS_OK);
        assert_string_equal(back.job.config, cell.config);
        assert_int_equal(back.job.timeout_s, s->policy.timeout_s);
        /* The runner reads what it received and checks it against the same table. */
        assert_int_equal(cs_json_parse(back.job.config, strlen(back.job.config), "job", &cfg, &err),
                         CS_OK);
        if (cs_job_check_limits(cfg, &err) != CS_OK) {
            fail_msg("the runner refuses %s: %s", cell.axes, err.msg);
        }
        cJSON_Delete(cfg);
        cs_msg_fini(&back);
        free(config);
        free(text);
        n++;
    }
    assert_int_equal(rc, CS_ENOENT);
    assert_true(n >= 2); /* the baseline and the gptq cell */
    cs_expand_destroy(e);
    cs_msg_init(&m, CS_MSG_SUBMIT);
    m.submit.sweep = s->spec;
    assert_int_equal(cs_msg_encode(&m, &text, &len, &err), CS_OK);
    free(text);
}

/* A walk over the table: the largest value of each field validates, and every job and the sweep
 * pass through the codec and the runner's checks; one more is refused by the validator naming the
 * field's path. */
static void test_limits_table(void **state)
{
    static const struct {
        const char *name, *path;
        int64_t min, max;
    } fields[] = {
#define LIMIT_ROW(n, path, lo, hi) {#n, path, lo, hi},
            CS_LIMIT_FIELDS(LIMIT_ROW)
#undef LIMIT_ROW
    };
    (void)state;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        char where[256], *text;
        cs_sweep *s = NULL;
        cs_diags d;
        cs_err err = {0};
        bool named = false;

        text = limits_sweep(fields[i].path, fields[i].max, where, sizeof(where));
        cs_diags_init(&d);
        if (cs_sweep_parse(text, strlen(text), "lim", &s, &d, &err) != CS_OK) {
            fail_msg("%s = %lld (the max) is refused: %s", where, (long long)fields[i].max,
                     err.msg);
        }
        limits_codec_round_trip(s);
        cs_sweep_destroy(s);
        cs_diags_fini(&d);
        free(text);

        text = limits_sweep(fields[i].path, fields[i].max + 1, where, sizeof(where));
        cs_diags_init(&d);
        if (cs_sweep_parse(text, strlen(text), "lim", &s, &d, &err) != CS_ESCHEMA) {
            fail_msg("%s = %lld (max + 1) is not refused", where, (long long)fields[i].max + 1);
        }
        assert_null(s);
        for (size_t k = 0; k < d.len; k++) {
            named |= d.items[k].severity == CS_DIAG_ERROR && strcmp(d.items[k].path, where) == 0;
        }
        if (!named) {
            fail_msg("%s = %lld (max + 1): no error at %s (first: %s)", fields[i].name,
                     (long long)fields[i].max + 1, where, err.msg);
        }
        cs_diags_fini(&d);
        free(text);
    }
}

/* Sizes: a file above CS_LIMIT_SWEEP_BYTES is refused before parsing; a smaller file whose
 * canonical text (numbers written out in full) is above it is refused at the root. */
static void test_limits_sweep_size(void **state)
{
    cs_buf b = {0};
    cs_sweep *s = NULL;
    cs_diags d;
    cs_err err = {0};
    char want[128];
    const char *grid_end = strstr(limits_base, "\"seed\":[0]") + strlen("\"seed\":[0]");
    (void)state;
    /* An extra axis with one value: a list of 1e15, 4 bytes each in the file and 16 in canonical
     * JSON. */
    assert_int_equal(cs_buf_append(&b, limits_base, (size_t)(grid_end - limits_base)), CS_OK);
    assert_int_equal(cs_buf_puts(&b, ",\"x\":[["), CS_OK);
    for (size_t i = 0; b.len < CS_LIMIT_SWEEP_BYTES - 64; i++) {
        assert_int_equal(cs_buf_puts(&b, i ? ",1e15" : "1e15"), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "]]"), CS_OK);
    assert_int_equal(cs_buf_puts(&b, grid_end), CS_OK);
    assert_true(b.len <= CS_LIMIT_SWEEP_BYTES);
    cs_diags_init(&d);
    if (cs_sweep_parse(b.data, b.len, "big", &s, &d, &err) != CS_ESCHEMA) {
        fail_msg("%s", err.msg);
    }
    assert_null(s);
    assert_int_equal(d.n_errors, 1);
    assert_string_equal(d.items[0].path, "");
    assert_non_null(strstr(d.items[0].message, "canonical JSON is"));
    cs_diags_fini(&d);
    while (b.len <= CS_LIMIT_SWEEP_BYTES) {
        assert_int_equal(cs_buf_putc(&b, ' '), CS_OK);
    }
    cs_diags_init(&d);
    assert_int_equal(cs_sweep_parse(b.data, b.len, "big", &s, &d, &err), CS_ETOOBIG);
    snprintf(want, sizeof(want), "big: %zu bytes, above the limit of %zu for a sweep", b.len,
             CS_LIMIT_SWEEP_BYTES);
    assert_string_equal(err.msg, want);
    cs_diags_fini(&d);
    cs_buf_fini(&b);
}

/* The runner refuses what is past the table even in a hand-made job.json, naming the field. */
static void test_runner_refuses_past_limits(void **state)
{
    static const struct {
        const char *json, *want;
    } bad[] = {
            {"{\"n_samples\":1048577}", "n_samples: expected an integer in 1..1048576"},
            {"{\"seed\":9007199254740992}", "seed: expected an integer in 0..9007199254740991"},
            {"{\"eval\":{\"tasks\":{\"a\":{\"limit\":16777217}}}}",
             "eval.tasks.a.limit: expected an integer in 0..16777216"},
            {"{\"eval\":{\"perplexity\":{\"g\":{\"max_windows\":16777217}}}}",
             "eval.perplexity.g.max_windows: expected an integer in 0..16777216"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *cfg = cJSON_Parse(bad[i].json);
        cs_err err = {0};
        assert_non_null(cfg);
        assert_int_equal(cs_job_check_limits(cfg, &err), CS_ESCHEMA);
        if (strstr(err.msg, bad[i].want) == NULL) {
            fail_msg("got \"%s\", want \"%s\"", err.msg, bad[i].want);
        }
        cJSON_Delete(cfg);
    }
}

/* The largest per-item outcomes a result may hold (CS_LIMIT_RESULT_ITEMS multiple-choice items:
 * three bitsets and a float32 margin each, the worst case per item) travel in one RESULT, with
 * room to spare for the metrics (CS_LIMIT_RESULT_ITEM_BYTES, checked at compile time, is true). */
static void test_result_items_fit(void **state)
{
    (void)state;
    const size_t n = CS_LIMIT_RESULT_ITEMS;
    uint8_t *bits = calloc(n / 8, 1);
    float *margin = calloc(n, sizeof *margin);
    cs_result_value v = {"acc", 0.5};
    cs_result_task t = {"mc", true, (int64_t)n, &v, 1};
    cs_result_items it = {.task = "mc",
                          .n = n,
                          .acc = bits,
                          .acc_norm = bits,
                          .acc_bytes = bits,
                          .margin = margin};
    cs_msg m, back;
    cs_err err = {0};
    char *text = NULL;
    size_t len = 0;
    assert_non_null(bits);
    assert_non_null(margin);
    memset(it.sample, 'f', 64);
    cs_msg_init(&m, CS_MSG_RESULT);
    m.result.worker = "w";
    m.result.job_id = 1;
    m.result.attempt = 1;
    m.result.lease_token = (char *)(uintptr_t) "0123456789abcdef0123456789abcdef";
    m.result.result =
            (cs_result){.version = 2, .tasks = &t, .n_tasks = 1, .items = &it, .n_items = 1};
    if (cs_msg_encode(&m, &text, &len, &err) != CS_OK) {
        fail_msg("RESULT with %zu items: %s", n, err.msg);
    }
    assert_true(len <= n * CS_LIMIT_RESULT_ITEM_BYTES + 4096);
    assert_true(len < CS_LIMIT_MSG_BYTES / 2);
    assert_int_equal(cs_msg_decode(text, len, &back, &err), CS_OK);
    assert_int_equal(back.result.result.n_items, 1);
    assert_int_equal(back.result.result.items[0].n, n);
    cs_msg_fini(&back);
    free(text);
    free(bits);
    free(margin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_limits_table),
            cmocka_unit_test(test_limits_sweep_size),
            cmocka_unit_test(test_runner_refuses_past_limits),
            cmocka_unit_test(test_result_items_fit),
    };
    return CS_RUN_TESTS(tests);
}
