/* json_test.c - cs_json: parse errors with positions, JSON paths, typed getters, diagnostics in
 * document order, did-you-mean. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cs_json.h"
#include "cs_limits.h"
#include "cs_test.h"

static cJSON *parse_ok(const char *text)
{
    cJSON *t = NULL;
    cs_err err = {0};
    cs_rc rc = cs_json_parse(text, strlen(text), "t.json", &t, &err);
    if (rc != CS_OK) {
        print_error("parse failed: %s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    assert_non_null(t);
    return t;
}

/* Parses text expecting failure; returns the message. */
static void parse_fail(const char *text, size_t len, const char *want_msg)
{
    cJSON *t = (cJSON *)1;
    cs_err err = {0};
    cs_rc rc = cs_json_parse(text, len, "sweep.json", &t, &err);
    assert_int_equal(rc, CS_EPARSE);
    assert_null(t);
    if (strcmp(err.msg, want_msg) != 0) {
        print_error("got  \"%s\"\nwant \"%s\"\n", err.msg, want_msg);
    }
    assert_string_equal(err.msg, want_msg);
}

/* For literals: the length includes embedded NULs but not the terminator. */
#define PARSE_FAIL(lit, want) parse_fail((lit), sizeof(lit) - 1, (want))

static void test_parse_positions(void **state)
{
    (void)state;
    PARSE_FAIL("{\n  \"a\": 1,\n  \"b\": tru\n}", "sweep.json:3:8: syntax error near 'tru'");
    PARSE_FAIL("{\"a\": [1, 2,]}", "sweep.json:1:13: syntax error near ']}'");
    PARSE_FAIL("", "sweep.json:1:1: empty document");
    PARSE_FAIL("  \n ", "sweep.json:2:2: empty document");
    PARSE_FAIL("{\"a\":1} x", "sweep.json:1:9: syntax error near 'x'");
    PARSE_FAIL("{\"a\":", "sweep.json:1:6: unexpected end of JSON text");
    /* Columns count characters: two 3-byte CJK characters before the error. */
    PARSE_FAIL("[\"\xe6\x97\xa5\xe6\x9c\xac\", nul]", "sweep.json:1:8: syntax error near 'nul]'");
    PARSE_FAIL("{\"a\":1}\0{}", "sweep.json:1:8: NUL byte in JSON text");
    PARSE_FAIL("[\"a\xff\"]", "sweep.json:1:4: invalid UTF-8 in string");
    PARSE_FAIL("[\"\xed\xa0\x80\"]", "sweep.json:1:3: invalid UTF-8 in string"); /* surrogate */
    PARSE_FAIL("[\"\xc0\xaf\"]", "sweep.json:1:3: invalid UTF-8 in string");     /* overlong */
    PARSE_FAIL("[\"ab\\u0000c\"]", "sweep.json:1:5: the escape \\u0000 is not allowed in strings");
    PARSE_FAIL("{\"grid\": {\"bits\": 4, \"bits\": 8}}",
               "sweep.json: grid: duplicate key \"bits\"");
    PARSE_FAIL("{\"a\": [1, 1e999]}", "sweep.json: a[1]: number out of range of a double");
}

static void test_parse_accepts(void **state)
{
    cJSON *t;
    cs_err err = {0};
    (void)state;
    /* Not NUL-terminated: the length is what counts. */
    assert_int_equal(cs_json_parse("[1,2]garbage", 5, NULL, &t, &err), CS_OK);
    assert_int_equal(cJSON_GetArraySize(t), 2);
    cJSON_Delete(t);
    /* An escaped backslash followed by u0000 is just text. */
    t = parse_ok("[\"a\\\\u0000\"]");
    assert_string_equal(t->child->valuestring, "a\\u0000");
    cJSON_Delete(t);
    /* Keys differing only in case are distinct, not duplicates. */
    t = parse_ok("{\"Bits\": 1, \"bits\": 2}");
    cJSON_Delete(t);
    /* Errors name <input> when no name is given. */
    assert_int_equal(cs_json_parse("[", 1, NULL, &t, &err), CS_EPARSE);
    assert_non_null(strstr(err.msg, "<input>:1:2"));
}

static void test_parse_file(void **state)
{
    char dir[] = "/tmp/cs_json_test_XXXXXX";
    char path[64];
    FILE *f;
    cJSON *t = NULL;
    cs_err err = {0};
    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/x.json", dir);
    assert_int_equal(cs_json_parse_file(path, 0, &t, &err), CS_ENOENT);
    assert_non_null(strstr(err.msg, path));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\n\"a\": [1,\n 2,,]}\n", f);
    fclose(f);
    assert_int_equal(cs_json_parse_file(path, 0, &t, &err), CS_EPARSE);
    assert_null(t);
    assert_non_null(strstr(err.msg, "x.json:3:4: syntax error"));
    assert_int_equal(cs_json_parse_file(path, 4, &t, &err), CS_ETOOBIG);
    assert_non_null(strstr(err.msg, path));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"a\": [1, 2]}", f);
    fclose(f);
    assert_int_equal(cs_json_parse_file(path, 0, &t, &err), CS_OK);
    assert_true(cJSON_IsObject(t));
    cJSON_Delete(t);
    unlink(path);
    rmdir(dir);
}

static void test_jpath(void **state)
{
    cs_jpath p;
    cs_buf b = {0};
    (void)state;
    cs_jpath_init(&p);
    assert_string_equal(cs_jpath_str(&p), "");
    assert_string_equal(cs_jpath_display(&p), "(root)");
    cs_jpath_push_key(&p, "grid");
    cs_jpath_push_key(&p, "algorithm");
    cs_jpath_push_index(&p, 2);
    cs_jpath_push_key(&p, "bits");
    assert_string_equal(cs_jpath_str(&p), "grid.algorithm[2].bits");
    cs_jpath_pop(&p);
    cs_jpath_pop(&p);
    assert_string_equal(cs_jpath_str(&p), "grid.algorithm");
    cs_jpath_pop(&p);
    cs_jpath_push_key(&p, "qwen2.5");
    cs_jpath_push_key(&p, "a\"b");
    assert_string_equal(cs_jpath_str(&p), "grid[\"qwen2.5\"][\"a\\\"b\"]");
    cs_jpath_pop(&p);
    cs_jpath_pop(&p);
    cs_jpath_pop(&p);
    cs_jpath_pop(&p); /* popping the root is a no-op */
    assert_string_equal(cs_jpath_str(&p), "");
    cs_jpath_push_index(&p, 0);
    assert_string_equal(cs_jpath_str(&p), "[0]");
    cs_jpath_pop(&p);

    /* Deep and long paths truncate with "..." and still pop back exactly. */
    for (size_t i = 0; i < 200; i++) {
        cs_jpath_push_key(&p, "component");
    }
    assert_true(p.len <= CS_JPATH_MAX);
    assert_non_null(strstr(cs_jpath_str(&p), "..."));
    for (size_t i = 0; i < 199; i++) {
        cs_jpath_pop(&p);
    }
    assert_string_equal(cs_jpath_str(&p), "component");
    cs_jpath_pop(&p);
    assert_string_equal(cs_jpath_str(&p), "");

    assert_int_equal(cs_jpath_append_key(&b, "models"), CS_OK);
    assert_int_equal(cs_jpath_append_key(&b, "qwen"), CS_OK);
    assert_int_equal(cs_jpath_append_key(&b, "a b"), CS_OK);
    assert_string_equal(b.data, "models.qwen[\"a b\"]");
    cs_buf_fini(&b);
}

static void test_getters_messages(void **state)
{
    cJSON *t = parse_ok("{\"grid\": {\"n_samples\": [128, 256, 0.5, -8], \"bits\": 16,"
                        " \"dampening\": 1.5, \"name\": 42, \"flag\": 0, \"list\": {}},"
                        " \"models\": {\"qwen\": {\"folder\": 42}}}");
    const cJSON *grid = NULL, *ns = NULL, *models = NULL, *qwen = NULL, *it;
    cs_err err = {0};
    cs_jctx c;
    const char *s;
    int64_t i64;
    double d;
    bool b;
    size_t idx = 0;
    (void)state;
    cs_jctx_init(&c, NULL, &err);
    assert_int_equal(cs_json_req_object(&c, t, "grid", &grid), CS_OK);
    cs_jpath_push_key(&c.path, "grid");
    assert_int_equal(cs_json_req_array(&c, grid, "n_samples", &ns), CS_OK);
    cs_jpath_push_key(&c.path, "n_samples");
    cJSON_ArrayForEach(it, ns)
    {
        cs_rc rc;
        cs_jpath_push_index(&c.path, idx);
        rc = cs_json_as_int(&c, it, 1, INT64_MAX, &i64);
        cs_jpath_pop(&c.path);
        if (idx < 2) {
            assert_int_equal(rc, CS_OK);
            assert_int_equal(i64, idx == 0 ? 128 : 256);
        } else {
            assert_int_equal(rc, CS_ESCHEMA);
            assert_int_equal(i64, 0);
        }
        idx++;
    }
    /* Fail-fast mode: err keeps the FIRST error. */
    assert_string_equal(err.msg, "grid.n_samples[2]: expected a positive integer, got 0.5");
    assert_int_equal(c.n_errors, 2);
    cs_jpath_pop(&c.path);
    /* With a diagnostics list every error is kept. */
    {
        cs_diags dg;
        cs_diags_init(&dg);
        c.diags = &dg;
        cs_jpath_push_key(&c.path, "n_samples");
        cs_jpath_push_index(&c.path, 3);
        assert_int_equal(cs_json_as_int(&c, cJSON_GetArrayItem(ns, 3), 1, INT64_MAX, &i64),
                         CS_ESCHEMA);
        cs_jpath_pop(&c.path);
        cs_jpath_pop(&c.path);
        assert_int_equal(dg.len, 1);
        assert_string_equal(dg.items[0].path, "grid.n_samples[3]");
        assert_string_equal(dg.items[0].message, "expected a positive integer, got -8");
        assert_ptr_equal(dg.items[0].node, cJSON_GetArrayItem(ns, 3));
        assert_int_equal(dg.items[0].severity, CS_DIAG_ERROR);
        c.diags = NULL;
        cs_diags_fini(&dg);
    }

    cs_err_clear(&err);
    cs_jctx_init(&c, NULL, &err);
    cs_jpath_push_key(&c.path, "grid");
    assert_int_equal(cs_json_req_int(&c, grid, "bits", 2, 8, &i64), CS_ESCHEMA);
    assert_string_equal(err.msg, "grid.bits: expected an integer in 2..8, got 16");

#define EXPECT_ERR(call, want)                \
    do {                                      \
        cs_err_clear(&err);                   \
        c.n_errors = 0;                       \
        assert_int_equal((call), CS_ESCHEMA); \
        assert_string_equal(err.msg, (want)); \
    } while (0)

    EXPECT_ERR(cs_json_req_number(&c, grid, "dampening", 0, 1, &d),
               "grid.dampening: expected a number in 0..1, got 1.5");
    EXPECT_ERR(cs_json_req_number(&c, grid, "dampening", 0.01, 0.1, &d),
               "grid.dampening: expected a number in 0.01..0.1, got 1.5");
    EXPECT_ERR(cs_json_req_string(&c, grid, "name", &s), "grid.name: expected a string, got 42");
    assert_null(s);
    EXPECT_ERR(cs_json_req_bool(&c, grid, "flag", &b), "grid.flag: expected a boolean, got 0");
    EXPECT_ERR(cs_json_req_array(&c, grid, "list", &ns), "grid.list: expected an array, got an "
                                                         "object");
    EXPECT_ERR(cs_json_req_int(&c, grid, "missing", 0, 10, &i64),
               "grid: missing required key \"missing\"");
    cs_err_clear(&err);
    assert_int_equal(cs_json_req_int(&c, grid, "bits", 0, INT64_MAX, &i64), CS_OK);
    assert_int_equal(i64, 16);
    EXPECT_ERR(cs_json_req_int(&c, grid, "bits", INT64_MIN, 5, &i64),
               "grid.bits: expected an integer <= 5, got 16");
    EXPECT_ERR(cs_json_req_int(&c, grid, "bits", 20, INT64_MAX, &i64),
               "grid.bits: expected an integer >= 20, got 16");
    EXPECT_ERR(cs_json_req_int(&c, grid, "dampening", 0, INT64_MAX, &i64),
               "grid.dampening: expected a non-negative integer, got 1.5");
    cs_jpath_pop(&c.path);

    /* The example of the brief, through nested objects. */
    cs_jctx_init(&c, NULL, &err);
    assert_int_equal(cs_json_req_object(&c, t, "models", &models), CS_OK);
    cs_jpath_push_key(&c.path, "models");
    assert_int_equal(cs_json_req_object(&c, models, "qwen", &qwen), CS_OK);
    cs_jpath_push_key(&c.path, "qwen");
    EXPECT_ERR(cs_json_req_string(&c, qwen, "folder", &s), "models.qwen.folder: expected a string, "
                                                           "got 42");
    /* A getter on something that is not an object says so. */
    EXPECT_ERR(cs_json_req_string(&c, qwen->child, "x", &s),
               "models.qwen: expected an object with key \"x\", got a number");
#undef EXPECT_ERR
    cJSON_Delete(t);
}

static void test_getters_values_and_defaults(void **state)
{
    cJSON *t = parse_ok("{\"s\": \"hi\", \"b\": true, \"i\": 1e2, \"j\": 3.0, \"n\": -0.25,"
                        " \"o\": {\"k\": 1}, \"a\": [], \"z\": null, \"big\": 9007199254740994}");
    cs_err err = {0};
    cs_jctx c;
    const char *s;
    const cJSON *o;
    int64_t i;
    double d;
    bool b;
    (void)state;
    cs_jctx_init(&c, NULL, &err);
    assert_int_equal(cs_json_req_string(&c, t, "s", &s), CS_OK);
    assert_string_equal(s, "hi");
    assert_int_equal(cs_json_opt_string(&c, t, "nope", "dflt", &s), CS_OK);
    assert_string_equal(s, "dflt");
    assert_int_equal(cs_json_opt_string(&c, t, "z", "null-is-absent", &s), CS_OK);
    assert_string_equal(s, "null-is-absent");
    assert_int_equal(cs_json_req_bool(&c, t, "b", &b), CS_OK);
    assert_true(b);
    assert_int_equal(cs_json_opt_bool(&c, t, "nope", true, &b), CS_OK);
    assert_true(b);
    assert_int_equal(cs_json_req_int(&c, t, "i", 0, 1000, &i), CS_OK);
    assert_int_equal(i, 100);
    assert_int_equal(cs_json_req_int(&c, t, "j", 0, 1000, &i), CS_OK);
    assert_int_equal(i, 3);
    assert_int_equal(cs_json_opt_int(&c, t, "nope", 7, 0, 10, &i), CS_OK);
    assert_int_equal(i, 7);
    assert_int_equal(cs_json_req_number(&c, t, "n", -INFINITY, INFINITY, &d), CS_OK);
    assert_true(d == -0.25);
    assert_int_equal(cs_json_opt_number(&c, t, "nope", 0.5, 0, 1, &d), CS_OK);
    assert_true(d == 0.5);
    assert_int_equal(cs_json_req_object(&c, t, "o", &o), CS_OK);
    assert_true(cJSON_IsObject(o));
    assert_int_equal(cs_json_opt_object(&c, t, "nope", &o), CS_OK);
    assert_null(o);
    assert_int_equal(cs_json_opt_array(&c, t, "a", &o), CS_OK);
    assert_true(cJSON_IsArray(o));
    assert_int_equal(c.n_errors, 0);
    assert_int_equal(err.rc, CS_OK);
    /* Wrong optional value: default returned, error reported. */
    assert_int_equal(cs_json_opt_int(&c, t, "s", 5, 0, 10, &i), CS_ESCHEMA);
    assert_int_equal(i, 5);
    assert_string_equal(err.msg, "s: expected an integer in 0..10, got \"hi\"");
    /* Beyond 2^53 an integer is not exact in a double: refused. */
    cs_err_clear(&err);
    cs_jctx_init(&c, NULL, &err);
    assert_int_equal(cs_json_req_int(&c, t, "big", INT64_MIN, INT64_MAX, &i), CS_ESCHEMA);
    assert_non_null(strstr(err.msg, "2^53"));
    /* A NULL value to the as_* checks. */
    assert_int_equal(cs_json_as_string(&c, NULL, &s), CS_ESCHEMA);
    cJSON_Delete(t);
}

static void test_diags_collect_all_sorted(void **state)
{
    cJSON *t = parse_ok("{\"models\": {\"qwen\": {\"folder\": 42}},\n"
                        " \"grid\": {\"n_sample\": [1], \"bits\": [4, 16, 3.5],\n"
                        "          \"algorithm\": \"gptq\"},\n"
                        " \"seed\": \"x\"}");
    static const char *const grid_keys[] = {"n_samples", "bits", "algorithm", "seq_len"};
    cs_diags d;
    cs_err err = {0};
    cs_buf out = {0};
    cs_jctx c;
    const cJSON *grid = NULL, *bits = NULL, *it, *models = NULL, *qwen = NULL;
    const char *s;
    int64_t i;
    size_t idx = 0;
    (void)state;
    cs_diags_init(&d);
    cs_jctx_init(&c, &d, &err);
    /* Walk in an order different from the document's: seed first, then grid, then models. */
    cs_json_req_int(&c, t, "seed", 0, INT64_MAX, &i);
    assert_int_equal(cs_json_req_object(&c, t, "grid", &grid), CS_OK);
    cs_jpath_push_key(&c.path, "grid");
    cs_json_req_array(&c, grid, "n_samples", &bits); /* missing: reported on grid */
    cs_json_check_keys(&c, grid, grid_keys, 4, CS_DIAG_ERROR);
    assert_int_equal(cs_json_req_array(&c, grid, "bits", &bits), CS_OK);
    cs_jpath_push_key(&c.path, "bits");
    cJSON_ArrayForEach(it, bits)
    {
        cs_jpath_push_index(&c.path, idx++);
        cs_json_as_int(&c, it, 2, 8, &i);
        cs_jpath_pop(&c.path);
    }
    cs_jpath_pop(&c.path);
    cs_jctx_warn(&c, cJSON_GetObjectItemCaseSensitive(grid, "algorithm"), "algorithm",
                 "gptq is slow on CPU");
    cs_jpath_pop(&c.path);
    cs_json_req_object(&c, t, "models", &models);
    cs_jpath_push_key(&c.path, "models");
    cs_json_req_object(&c, models, "qwen", &qwen);
    cs_jpath_push_key(&c.path, "qwen");
    cs_json_req_string(&c, qwen, "folder", &s);
    cs_jpath_pop(&c.path);
    cs_jpath_pop(&c.path);
    /* A diagnostic added with a path only (no node) is placed by resolving the path. */
    cs_diags_add(&d, CS_DIAG_ERROR, NULL, "grid.bits[0]", "added by path");

    assert_int_equal(d.n_errors, 7);
    assert_int_equal(d.n_warnings, 1);
    assert_int_equal(c.n_errors, 6);
    /* The first error found in the walk went to err. */
    assert_string_equal(err.msg, "seed: expected a non-negative integer, got \"x\"");

    assert_int_equal(cs_diags_format(&d, t, "sweep.json", &out), CS_OK);
    assert_string_equal(out.data,
                        "sweep.json: error: models.qwen.folder: expected a string, got 42\n"
                        "sweep.json: error: grid: missing required key \"n_samples\"\n"
                        "sweep.json: error: grid.n_sample: unknown key (did you mean "
                        "\"n_samples\"?)\n"
                        "sweep.json: error: grid.bits[0]: added by path\n"
                        "sweep.json: error: grid.bits[1]: expected an integer in 2..8, got 16\n"
                        "sweep.json: error: grid.bits[2]: expected an integer in 2..8, got 3.5\n"
                        "sweep.json: warning: grid.algorithm: gptq is slow on CPU\n"
                        "sweep.json: error: seed: expected a non-negative integer, got \"x\"\n");
    assert_int_equal(cs_diags_to_err(&d, &err), CS_ESCHEMA);
    assert_string_equal(err.msg, "models.qwen.folder: expected a string, got 42 (and 6 more "
                                 "errors)");
    cs_buf_fini(&out);

    /* print to a file gives the same text; sorting twice is stable. */
    {
        char buf[2048] = {0};
        FILE *f = tmpfile();
        size_t n;
        assert_non_null(f);
        assert_int_equal(cs_diags_print(&d, t, NULL, f), CS_OK);
        rewind(f);
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        assert_true(n > 0);
        assert_true(strncmp(buf, "error: models.qwen.folder: expected a string, got 42\n", 53) ==
                    0);
    }
    cs_diags_fini(&d);
    assert_int_equal(d.len, 0);
    assert_int_equal(cs_diags_to_err(&d, &err), CS_OK);
    cJSON_Delete(t);
}

static void test_diags_cap_and_root(void **state)
{
    cs_diags d;
    cs_buf out = {0};
    (void)state;
    cs_diags_init(&d);
    d.max_items = 3;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(cs_diags_add(&d, CS_DIAG_ERROR, NULL, "", "problem %d", i), CS_OK);
    }
    assert_int_equal(d.len, 3);
    assert_int_equal(d.n_dropped, 2);
    assert_int_equal(d.n_errors, 5);
    assert_int_equal(cs_diags_format(&d, NULL, NULL, &out), CS_OK);
    assert_string_equal(out.data, "error: (root): problem 0\nerror: (root): problem 1\n"
                                  "error: (root): problem 2\n... and 2 more\n");
    cs_buf_fini(&out);
    cs_diags_fini(&d);
}

static void test_suggest(void **state)
{
    static const char *const keys[] = {"n_samples", "seq_len", "algorithm",
                                       "bits",      "seed",    "selector"};
    (void)state;
    assert_string_equal(cs_json_suggest("n_sample", keys, 6), "n_samples");
    assert_string_equal(cs_json_suggest("seqlen", keys, 6), "seq_len");
    assert_string_equal(cs_json_suggest("algoritm", keys, 6), "algorithm");
    assert_string_equal(cs_json_suggest("algorihtm", keys, 6), "algorithm"); /* transposition */
    assert_string_equal(cs_json_suggest("bist", keys, 6), "bits");
    assert_string_equal(cs_json_suggest("sed", keys, 6), "seed");
    assert_null(cs_json_suggest("bits", keys, 6));        /* exact: not a suggestion */
    assert_null(cs_json_suggest("temperature", keys, 6)); /* nothing close */
    assert_null(cs_json_suggest("x", keys, 6));           /* too short to guess */
    assert_null(cs_json_suggest("zzzz", keys, 6));
    assert_int_equal(cs_json_edit_distance("kitten", "sitting"), 3);
    assert_int_equal(cs_json_edit_distance("", "abc"), 3);
    assert_int_equal(cs_json_edit_distance("ab", "ba"), 1);
}

static void test_describe_and_utf8(void **state)
{
    cJSON *t = parse_ok("[\"0123456789012345678901234567890123456789XYZ\", 1.5, 1e300, null, "
                        "{}, [], false]");
    char buf[64];
    size_t bad = 0;
    const cJSON *v = t->child;
    (void)state;
    assert_string_equal(cs_json_describe(v, buf, sizeof(buf)),
                        "\"0123456789012345678901234567890123456789...\"");
    v = v->next;
    assert_string_equal(cs_json_describe(v, buf, sizeof(buf)), "1.5");
    v = v->next;
    assert_string_equal(cs_json_describe(v, buf, sizeof(buf)), "1e+300");
    v = v->next;
    assert_string_equal(cs_json_describe(v, buf, sizeof(buf)), "null");
    v = v->next;
    assert_string_equal(cs_json_describe(v, buf, sizeof(buf)), "an object");
    v = v->next;
    assert_string_equal(cs_json_describe(v, buf, sizeof(buf)), "an array");
    v = v->next;
    assert_string_equal(cs_json_describe(v, buf, sizeof(buf)), "false");
    assert_string_equal(cs_json_describe(NULL, buf, sizeof(buf)), "nothing");
    cJSON_Delete(t);
    assert_true(cs_utf8_valid("h\xc3\xa9llo \xf0\x9f\x98\x80", 11, &bad));
    assert_false(cs_utf8_valid("ab\xf0\x9f\x98", 5, &bad)); /* truncated */
    assert_int_equal(bad, 2);
    assert_false(cs_utf8_valid("\xf4\x90\x80\x80", 4, &bad)); /* > U+10FFFF */
}

/* The duplicate-key check counts its comparisons: with 150,000 keys it makes O(n log n) of them
 * (the old pairwise check made n^2/2 = 1.1e10 and took 78 s of CPU for a 2.9 MB message), and it
 * still finds the first duplicate in document order, wherever it is. */
static void test_duplicates_linearithmic(void **state)
{
    enum { N = 150000 };
    cJSON *o = cJSON_CreateObject();
    const cJSON *dup = (const cJSON *)1;
    size_t n_cmp = 0, bound = 0;
    char key[32];
    (void)state;
    assert_non_null(o);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "k%07d", (i * 7919) % N); /* distinct, not in order */
        assert_non_null(cJSON_AddNumberToObject(o, key, i));
    }
    for (size_t n = 1; n < N; n *= 2) {
        bound += N; /* N per merge pass: N * ceil(log2 N) */
    }
    bound += N; /* the final scan */
    assert_int_equal(cs_json_find_duplicate(o, &dup, &n_cmp), CS_OK);
    assert_null(dup);
    assert_true(n_cmp > 0);
    assert_true(n_cmp <= bound);
    assert_true(n_cmp < (size_t)N * 100); /* far below N^2 / 2 */
    /* Two duplicates: the one later in the document is not reported first. */
    assert_non_null(cJSON_AddNumberToObject(o, "k0000005", 1));
    assert_non_null(cJSON_AddNumberToObject(o, "k0000003", 2));
    n_cmp = 0;
    assert_int_equal(cs_json_find_duplicate(o, &dup, &n_cmp), CS_OK);
    assert_non_null(dup);
    assert_string_equal(dup->string, "k0000005");
    assert_ptr_equal(dup, cJSON_GetArrayItem(o, N));
    assert_true(n_cmp <= bound + 2 * 20 + 2);
    cJSON_Delete(o);
    /* Small objects: pairwise, and the same answer. */
    o = cJSON_Parse("{\"a\":1,\"b\":2,\"c\":3,\"b\":4,\"a\":5}");
    assert_non_null(o);
    assert_int_equal(cs_json_find_duplicate(o, &dup, NULL), CS_OK);
    assert_string_equal(dup->string, "b");
    assert_ptr_equal(dup, cJSON_GetArrayItem(o, 3));
    cJSON_Delete(o);
    assert_int_equal(cs_json_find_duplicate(NULL, &dup, NULL), CS_OK);
    assert_null(dup);
}

/* The same through cs_json_parse: a text of 150,000 keys parses (in milliseconds; the old check
 * needed minutes, past this test's meson timeout), and one duplicate among them is named. */
static void test_parse_many_keys(void **state)
{
    enum { N = 150000 };
    cs_buf b = {0};
    cJSON *t = NULL;
    cs_err err = {0};
    (void)state;
    assert_int_equal(cs_buf_putc(&b, '{'), CS_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(cs_buf_printf(&b, "%s\"k%07d\":%d", i ? "," : "", i, i), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "}"), CS_OK);
    assert_int_equal(cs_json_parse(b.data, b.len, "many", &t, &err), CS_OK);
    assert_int_equal(cJSON_GetArraySize(t), N);
    cJSON_Delete(t);
    b.len--; /* drop the '}' */
    assert_int_equal(cs_buf_puts(&b, ",\"k0123456\":0}"), CS_OK);
    assert_int_equal(cs_json_parse(b.data, b.len, "many", &t, &err), CS_EPARSE);
    assert_null(t);
    assert_string_equal(err.msg, "many: (root): duplicate key \"k0123456\"");
    cs_buf_fini(&b);
}

/* Nesting is bounded before cJSON builds anything: CS_LIMIT_JSON_DEPTH levels parse, one more is
 * refused with its position. */
static void test_parse_depth(void **state)
{
    char text[4 * CS_LIMIT_JSON_DEPTH + 8];
    size_t n = 0;
    cJSON *t = NULL;
    cs_err err = {0};
    char want[96];
    (void)state;
    for (int i = 0; i < CS_LIMIT_JSON_DEPTH; i++) {
        text[n++] = i % 2 ? '[' : '{';
        if (i % 2 == 0) {
            memcpy(text + n, "\"a\":", 4);
            n += 4;
        }
    }
    text[n++] = '1';
    for (int i = CS_LIMIT_JSON_DEPTH - 1; i >= 0; i--) {
        text[n++] = i % 2 ? ']' : '}';
    }
    assert_int_equal(cs_json_parse(text, n, "deep", &t, &err), CS_OK);
    cJSON_Delete(t);
    /* Strings do not count: brackets inside them are text. */
    t = parse_ok("{\"[[[[\": \"{{{{\"}");
    cJSON_Delete(t);
    n = 0;
    for (int i = 0; i <= CS_LIMIT_JSON_DEPTH; i++) {
        text[n++] = '[';
    }
    for (int i = 0; i <= CS_LIMIT_JSON_DEPTH; i++) {
        text[n++] = ']';
    }
    assert_int_equal(cs_json_parse(text, n, "deep", &t, &err), CS_EPARSE);
    assert_null(t);
    snprintf(want, sizeof(want), "deep:1:%d: nested deeper than %d levels", CS_LIMIT_JSON_DEPTH + 1,
             CS_LIMIT_JSON_DEPTH);
    assert_string_equal(err.msg, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_positions),
            cmocka_unit_test(test_parse_accepts),
            cmocka_unit_test(test_parse_file),
            cmocka_unit_test(test_jpath),
            cmocka_unit_test(test_getters_messages),
            cmocka_unit_test(test_getters_values_and_defaults),
            cmocka_unit_test(test_diags_collect_all_sorted),
            cmocka_unit_test(test_diags_cap_and_root),
            cmocka_unit_test(test_suggest),
            cmocka_unit_test(test_describe_and_utf8),
            cmocka_unit_test(test_duplicates_linearithmic),
            cmocka_unit_test(test_parse_many_keys),
            cmocka_unit_test(test_parse_depth),
    };
    return CS_RUN_TESTS(tests);
}
