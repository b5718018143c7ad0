/* sweep_test.c - sweep file validation: every broken file in tests/data/sweeps-bad/NAME.json gives
 * the messages listed in NAME.expected (each line must appear; the error and warning counts must
 * match), defaults of the references are filled in, and the sweeps shipped in sweeps/ are valid. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_expand.h"
#include "cs_limits.h"
#include "cs_path.h"
#include "cs_sweep.h"
#include "cs_test.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names (without ".json") of the JSON files in dir, sorted; owned. */
static size_t list_json(const char *dir_path, char **names, size_t cap)
{
    DIR *dir = opendir(dir_path);
    struct dirent *de;
    size_t n = 0;
    assert_non_null(dir);
    while ((de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 5 && strcmp(de->d_name + len - 5, ".json") == 0 && n < cap) {
            names[n++] = cs_strndup(de->d_name, len - 5);
        }
    }
    closedir(dir);
    qsort(names, n, sizeof(*names), cmp_str);
    return n;
}

static void check_bad(const char *name)
{
    char json_path[512], exp_path[512];
    char *expected = NULL, *line, *next;
    size_t want_errors = 0, want_warnings = 0;
    cs_sweep *s = NULL;
    cs_diags d;
    cs_err err = {0};
    cs_buf out = {0};
    cs_rc rc;

    snprintf(json_path, sizeof(json_path), "tests/data/sweeps-bad/%s.json", name);
    snprintf(exp_path, sizeof(exp_path), "tests/data/sweeps-bad/%s.expected", name);
    if (cs_path_read_file(exp_path, 0, &expected, NULL, &err) != CS_OK) {
        fail_msg("%s: %s", name, err.msg);
    }
    cs_diags_init(&d);
    rc = cs_sweep_load(json_path, &s, &d, &err);
    assert_null(s);
    assert_true(rc == CS_ESCHEMA || rc == CS_EPARSE);
    assert_int_equal(cs_diags_format(&d, NULL, NULL, &out), CS_OK);
    for (line = expected; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        if (*line == '\0') {
            continue;
        }
        want_errors += strncmp(line, "error: ", 7) == 0;
        want_warnings += strncmp(line, "warning: ", 9) == 0;
        if (!out.data || !strstr(out.data, line)) {
            fail_msg("%s: expected the line\n  %s\nin\n%s", name, line,
                     out.data ? out.data : "(nothing)");
        }
    }
    if (d.n_errors != want_errors || d.n_warnings != want_warnings) {
        fail_msg("%s: %zu errors and %zu warnings, expected %zu and %zu:\n%s", name, d.n_errors,
                 d.n_warnings, want_errors, want_warnings, out.data ? out.data : "");
    }
    assert_true(want_errors > 0);
    /* err carries the first error and the count. */
    assert_true(err.msg[0] != '\0');
    cs_buf_fini(&out);
    cs_diags_fini(&d);
    free(expected);
}

static void test_bad_sweeps(void **state)
{
    char *names[128];
    size_t n = list_json("tests/data/sweeps-bad", names, 128);
    (void)state;
    assert_true(n >= 25);
    for (size_t i = 0; i < n; i++) {
        check_bad(names[i]);
        free(names[i]);
    }
}

static const char header[] =
        "{\"name\":\"d\",\"models\":{\"m\":{\"folder\":\"tests/data\"}},"
        "\"data\":{\"sources\":{\"c4\":{\"kind\":\"jsonl\",\"path\":\"c4.jsonl\"},"
        "\"arc_train\":{\"kind\":\"task\",\"path\":\"arc-train.jsonl\"}},"
        "\"eval\":{\"default\":{\"tasks\":{\"arc\":{\"path\":\"arc.jsonl\"}}}}},";

static cs_sweep *parse_with(const char *rest, cs_diags *d)
{
    cs_buf b = {0};
    cs_sweep *s = NULL;
    cs_err err = {0};
    cs_rc rc;
    assert_int_equal(cs_buf_puts(&b, header), CS_OK);
    assert_int_equal(cs_buf_puts(&b, rest), CS_OK);
    rc = cs_sweep_parse(b.data, b.len, "inline", &s, d, &err);
    if (rc != CS_OK) {
        cs_diags_print(d, NULL, "inline", stderr);
    }
    assert_int_equal(rc, CS_OK);
    cs_buf_fini(&b);
    return s;
}

static const cs_axis *axis(const cs_sweep *s, cs_axis_kind k)
{
    return &s->axes[s->mission[k]];
}

/* Written by hand from docs/specs: the references' defaults. */
static void test_defaults_filled(void **state)
{
    cs_diags d;
    cs_sweep *s;
    const cs_axis *a, *sel;
    (void)state;
    cs_diags_init(&d);
    s = parse_with("\"grid\":{\"algorithm\":[\"gptq\",\"awq\",\"rtn\",\"smoothquant\","
                   "\"sparsegpt\",\"wanda\",\"none\"],"
                   "\"selector\":[\"random\",\"self_calibration\",\"self_gen\",\"zipcal\","
                   "\"cola\",\"acdm\",\"ppl_rank\",\"covercal\"]}}",
                   &d);
    assert_int_equal(d.len, 0);
    a = axis(s, CS_AXIS_ALGORITHM);
    assert_int_equal(a->n, 7);
    assert_string_equal(a->values[0].canon,
                        "{\"act_order\":true,\"bits\":4,\"block_size\":128,\"damp\":0.01,"
                        "\"group_size\":128,\"name\":\"gptq\",\"static_groups\":false,\"sym\":true,"
                        "\"true_sequential\":true}");
    assert_string_equal(a->values[1].canon,
                        "{\"bits\":4,\"clip\":true,\"duo_scaling\":true,\"group_size\":128,"
                        "\"n_grid\":20,\"name\":\"awq\",\"zero_point\":true}");
    assert_string_equal(a->values[2].canon,
                        "{\"bits\":4,\"grid\":\"awq\",\"group_size\":128,\"name\":\"rtn\","
                        "\"sym\":false}");
    assert_string_equal(a->values[3].canon,
                        "{\"act_bits\":8,\"alpha\":0.5,\"bits\":8,\"damp\":0.01,"
                        "\"name\":\"smoothquant\",\"weights\":\"gptq\"}");
    assert_string_equal(a->values[5].canon,
                        "{\"name\":\"wanda\",\"pattern\":\"unstructured\",\"sparsity\":0.5}");
    assert_string_equal(a->values[6].canon, "{\"name\":\"none\"}");
    assert_true(a->values[2].flags & CS_VAL_NO_CALIB);
    assert_true(a->values[6].flags & CS_VAL_NONE);
    assert_false(a->values[0].flags & CS_VAL_NO_CALIB);
    sel = axis(s, CS_AXIS_SELECTOR);
    assert_string_equal(sel->values[1].canon, "{\"n_sched\":10,\"name\":\"self_calibration\","
                                              "\"t_final\":1,\"t_init\":1}");
    assert_true(sel->values[1].flags & CS_VAL_NO_SOURCE);
    assert_string_equal(sel->values[2].canon,
                        "{\"name\":\"self_gen\",\"ppl_quantile\":0.8,\"prefix_texts\":5000,"
                        "\"prefix_tokens\":2,\"repetition_penalty\":1.2,\"temperature\":0.6,"
                        "\"top_k\":50,\"top_p\":0.95}");
    assert_string_equal(sel->values[4].canon, "{\"max_iter\":300,\"n_init\":10,\"name\":\"cola\","
                                              "\"proj_dim\":64,\"tol\":0.0001}");
    assert_string_equal(sel->values[5].canon,
                        "{\"mode\":\"quota\",\"n_ref\":64,\"name\":\"acdm\",\"reference\":"
                        "[{\"kind\":\"task\",\"path\":\"arc-train.jsonl\"}],\"stat\":\"mean\"}");
    /* Implicit mission axes and their defaults. */
    assert_true(axis(s, CS_AXIS_N_SAMPLES)->implicit);
    assert_int_equal(axis(s, CS_AXIS_N_SAMPLES)->values[0].num, 128);
    assert_int_equal(axis(s, CS_AXIS_SEQ_LEN)->values[0].num, 2048);
    assert_int_equal(axis(s, CS_AXIS_SEED)->values[0].num, 0);
    assert_string_equal(axis(s, CS_AXIS_SOURCE)->values[0].text, "c4"); /* the only corpus */
    assert_string_equal(axis(s, CS_AXIS_MODEL)->values[0].text, "m");
    /* Policy defaults. */
    assert_int_equal(s->policy.max_attempts, 3);
    assert_true(s->policy.backoff_base_s == 30.0);
    assert_true(s->policy.backoff_max_s == 3600.0);
    assert_int_equal(s->policy.timeout_s, 0);
    assert_false(s->policy.stop_on_failure);
    cs_sweep_destroy(s);
    cs_diags_fini(&d);
}

static void test_policy_and_meta(void **state)
{
    cs_diags d;
    cs_sweep *s;
    cs_sweep_meta meta;
    (void)state;
    cs_diags_init(&d);
    s = parse_with("\"grid\":{\"algorithm\":[\"rtn\"]},\"policy\":{\"max_attempts\":5,"
                   "\"backoff_s\":2,\"backoff_max_s\":60,\"timeout_s\":900,\"priority\":-3,"
                   "\"max_running\":4,\"on_failure\":\"stop\"},\"tags\":[\"a\",\"b\"],"
                   "\"description\":\"text\"}",
                   &d);
    cs_sweep_get_meta(s, &meta);
    assert_string_equal(meta.name, "d");
    assert_int_equal(strlen(meta.spec_hash), 64);
    assert_non_null(strstr(meta.spec, "\"max_running\":4"));
    assert_int_equal(meta.policy.max_attempts, 5);
    assert_true(meta.policy.backoff_base_s == 2.0);
    assert_true(meta.policy.backoff_max_s == 60.0);
    assert_int_equal(meta.policy.timeout_s, 900);
    assert_int_equal(meta.policy.priority, -3);
    assert_int_equal(meta.policy.max_running, 4);
    assert_true(meta.policy.stop_on_failure);
    assert_int_equal(s->n_tags, 2);
    assert_string_equal(s->description, "text");
    assert_non_null(cs_sweep_find_model(s, "m"));
    assert_null(cs_sweep_find_model(s, "x"));
    cs_sweep_destroy(s);
    cs_diags_fini(&d);
}

static void test_folder_warning_only(void **state)
{
    static const char text[] =
            "{\"name\":\"w\",\"models\":{\"gone\":{\"folder\":\"no/such/dir\",\"requires\":"
            "{\"mem_mb\":512,\"gpus\":1}}},"
            "\"data\":{\"sources\":{\"c4\":{\"kind\":\"jsonl\",\"path\":\"c4.jsonl\"}},"
            "\"eval\":{\"default\":{\"tasks\":{\"arc\":{\"path\":\"arc.jsonl\"}}}}},"
            "\"grid\":{\"algorithm\":[\"gptq\"]}}";
    cs_diags d;
    cs_sweep *s = NULL;
    cs_err err = {0};
    cs_buf out = {0};
    (void)state;
    cs_diags_init(&d);
    assert_int_equal(cs_sweep_parse(text, strlen(text), "w", &s, &d, &err), CS_OK);
    assert_int_equal(d.n_errors, 0);
    assert_int_equal(d.n_warnings, 1);
    assert_int_equal(cs_diags_format(&d, NULL, NULL, &out), CS_OK);
    assert_string_equal(out.data, "warning: models.gone: folder does not exist: no/such/dir\n");
    assert_int_equal(s->models[0].mem_mb, 512);
    assert_int_equal(s->models[0].gpus, 1);
    cs_buf_fini(&out);
    cs_sweep_destroy(s);
    cs_diags_fini(&d);
}

static void test_extra_axis_near_mission_name_warns(void **state)
{
    cs_diags d;
    cs_sweep *s;
    cs_buf out = {0};
    (void)state;
    cs_diags_init(&d);
    s = parse_with("\"grid\":{\"algorithm\":[\"gptq\"],\"n_sample\":[16,32]}}", &d);
    assert_int_equal(d.n_warnings, 1);
    assert_int_equal(cs_diags_format(&d, NULL, NULL, &out), CS_OK);
    assert_non_null(strstr(out.data, "grid.n_sample: not a mission axis: passed to the job as an "
                                     "extra axis (did you mean \"n_samples\"?)"));
    cs_buf_fini(&out);
    cs_sweep_destroy(s);
    cs_diags_fini(&d);
}

/* The sweeps shipped in sweeps/ validate (warnings allowed: the testbed may not be built) and
 * expand under the default limit. */
static void test_shipped_sweeps(void **state)
{
    char *names[64];
    char path[512];
    size_t n = list_json("sweeps", names, 64);
    (void)state;
    assert_true(n >= 2);
    for (size_t i = 0; i < n; i++) {
        cs_diags d;
        cs_sweep *s = NULL;
        cs_expander *e = NULL;
        cs_err err = {0};
        cs_rc rc;
        cs_diags_init(&d);
        snprintf(path, sizeof(path), "sweeps/%s.json", names[i]);
        rc = cs_sweep_load(path, &s, &d, &err);
        if (rc != CS_OK) {
            cs_diags_print(&d, NULL, path, stderr);
            fail_msg("%s: %s", path, err.msg);
        }
        assert_int_equal(d.n_errors, 0);
        assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_OK);
        cs_expand_destroy(e);
        cs_sweep_destroy(s);
        cs_diags_fini(&d);
        free(names[i]);
    }
}

/* References are looked up, not scanned: a grid naming 100,000 models (the most one axis may
 * have) resolves with O(log n) name comparisons each; the scan made 5e9 (62 s for this file),
 * and an ACDM reference list naming every task source as well. */
static void test_many_references_resolve_fast(void **state)
{
    enum { N = 100000 };
    cs_buf b = {0};
    cs_sweep *s = NULL;
    cs_err err = {0};
    const cs_axis *ax;
    (void)state;
    assert_int_equal(cs_buf_puts(&b, "{\"name\":\"many\",\"models\":{"), CS_OK);
    for (int i = 0; i < N; i++) {
        assert_int_equal(cs_buf_printf(&b, "%s\"m%06d\":{\"folder\":\"f\"}", i ? "," : "", i),
                         CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "},\"data\":{\"sources\":{"), CS_OK);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(cs_buf_printf(&b, "\"t%04d\":{\"kind\":\"task\",\"path\":\"t\"},", i),
                         CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "\"prose\":{\"kind\":\"jsonl\",\"path\":\"p\"}},\"eval\":{"
                                     "\"default\":{\"perplexity\":{\"g\":{\"path\":\"h\"}}}}},"
                                     "\"grid\":{\"algorithm\":[\"gptq\"],\"selector\":[{\"name\":"
                                     "\"acdm\",\"reference\":["),
                     CS_OK);
    for (int i = 999; i >= 0; i--) {
        assert_int_equal(cs_buf_printf(&b, "\"t%04d\"%s", i, i ? "," : ""), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "]}],\"model\":["), CS_OK);
    for (int i = N - 1; i >= 0; i--) {
        assert_int_equal(cs_buf_printf(&b, "\"m%06d\"%s", i, i ? "," : ""), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "]}}"), CS_OK);
    assert_int_equal(cs_sweep_parse(b.data, b.len, "many", &s, NULL, &err), CS_OK);
    ax = axis(s, CS_AXIS_MODEL);
    assert_int_equal(ax->n, N);
    assert_int_equal(ax->values[0].ref, N - 1); /* written last to first */
    assert_int_equal(ax->values[N - 1].ref, 0);
    /* 101,000 lookups, at most 17 comparisons each in 100,000 sorted names. */
    assert_true(s->n_name_cmp > 0);
    assert_true(s->n_name_cmp <= (size_t)(N + 1000) * 17);
    cs_sweep_destroy(s);
    cs_buf_fini(&b);
}

static const char exclude_head[] =
        "{\"name\":\"ex\",\"models\":{\"m\":{\"folder\":\"f\"}},\"data\":{\"sources\":{\"prose\":"
        "{\"kind\":\"jsonl\",\"path\":\"p\"}},\"eval\":{\"default\":{\"perplexity\":{\"g\":{"
        "\"path\":"
        "\"h\"}}}}},";

/* Exclude patterns cost (conditions x axis values) to validate and (cells x patterns) to apply:
 * both are bounded (cs_limits.h), so a file of many patterns is refused with the place named
 * instead of keeping calsweepd busy for hours. */
static void test_exclude_work_bounded(void **state)
{
    cs_buf b = {0};
    cs_sweep *s = NULL;
    cs_expander *e = NULL;
    cs_diags d;
    cs_err err = {0};
    size_t fit = (size_t)CS_LIMIT_EXCLUDE_TESTS / 100000, named = 0;
    char want[64];
    (void)state;
    /* 100,000 seeds; pattern i excludes seed i: the first `fit` patterns fit the budget. */
    assert_int_equal(cs_buf_puts(&b, exclude_head), CS_OK);
    assert_int_equal(cs_buf_puts(&b, "\"grid\":{\"algorithm\":[\"gptq\"],\"seed\":{\"range\":"
                                     "[1,100000]}},\"exclude\":["),
                     CS_OK);
    for (size_t i = 0; i < fit + 50; i++) {
        assert_int_equal(cs_buf_printf(&b, "%s{\"seed\":%zu}", i ? "," : "", i + 1), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "]}"), CS_OK);
    cs_diags_init(&d);
    assert_int_equal(cs_sweep_parse(b.data, b.len, "ex", &s, &d, &err), CS_ESCHEMA);
    snprintf(want, sizeof(want), "exclude[%zu].seed", fit);
    for (size_t i = 0; i < d.len; i++) {
        if (d.items[i].severity == CS_DIAG_ERROR) {
            assert_string_equal(d.items[i].path, want);
            assert_non_null(strstr(d.items[i].message, "list values in fewer patterns"));
            named++;
        }
    }
    assert_int_equal(named, 1); /* once, not once per pattern */
    cs_diags_fini(&d);
    /* 100,000,000 cells and 22 patterns: more than CS_LIMIT_EXCLUDE_WORK checks. */
    b.len = 0;
    assert_int_equal(cs_buf_puts(&b, exclude_head), CS_OK);
    assert_int_equal(cs_buf_puts(&b, "\"grid\":{\"algorithm\":[\"gptq\"],\"seed\":{\"range\":"
                                     "[1,10000]},\"x\":{\"range\":[1,10000]}},\"exclude\":["),
                     CS_OK);
    for (size_t i = 0; i < 22; i++) {
        assert_int_equal(cs_buf_printf(&b, "%s{\"seed\":%zu}", i ? "," : "", i + 1), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "]}"), CS_OK);
    assert_int_equal(cs_sweep_parse(b.data, b.len, "ex", &s, NULL, &err), CS_OK);
    assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_ETOOBIG);
    assert_null(e);
    assert_non_null(strstr(err.msg, "the grid has 100000000 cells and 22 exclude patterns"));
    cs_sweep_destroy(s);
    s = NULL;
    /* Include cells hold a value of every axis: 4,100 cells x 4,108 axes (4,100 extra ones and
     * the 8 mission axes) is over CS_LIMIT_INCLUDE_VALUES, refused before anything is allocated
     * (about 1 GB). */
    b.len = 0;
    assert_int_equal(cs_buf_puts(&b, exclude_head), CS_OK);
    assert_int_equal(cs_buf_puts(&b, "\"grid\":{\"algorithm\":[\"rtn\"]"), CS_OK);
    for (int i = 0; i < 4100; i++) {
        assert_int_equal(cs_buf_printf(&b, ",\"x%d\":[0]", i), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "},\"include\":["), CS_OK);
    for (int i = 0; i < 4100; i++) {
        assert_int_equal(cs_buf_printf(&b, "%s{\"algorithm\":\"rtn\"}", i ? "," : ""), CS_OK);
    }
    assert_int_equal(cs_buf_puts(&b, "]}"), CS_OK);
    cs_diags_init(&d);
    assert_int_equal(cs_sweep_parse(b.data, b.len, "in", &s, &d, &err), CS_ESCHEMA);
    assert_string_equal(err.msg, "include: 4100 include cells x 4108 axes is more than 16777216 "
                                 "cell values; use fewer include cells or axes");
    cs_diags_fini(&d);
    cs_buf_fini(&b);
}

/* "headline" is validated and exposed (cs_sweep_eval.headline) but never enters the eval suite's
 * canonical text, so job configs and keys are those of the same sweep without it. */
static void test_headline_kept_out_of_jobs(void **state)
{
    static const char *const docs[2] = {
            "{\"name\":\"h\",\"models\":{\"m\":{\"folder\":\"tests/data\"}},\"data\":{"
            "\"sources\":{\"c4\":{\"kind\":\"jsonl\",\"path\":\"c4.jsonl\"}},\"eval\":{"
            "\"default\":{\"tasks\":{\"arc\":{\"path\":\"arc.jsonl\",\"headline\":"
            "\"acc_norm\"},\"gsm\":{\"path\":\"g.jsonl\"}}}}},\"grid\":{\"algorithm\":["
            "\"rtn\"]}}",
            "{\"name\":\"h\",\"models\":{\"m\":{\"folder\":\"tests/data\"}},\"data\":{"
            "\"sources\":{\"c4\":{\"kind\":\"jsonl\",\"path\":\"c4.jsonl\"}},\"eval\":{"
            "\"default\":{\"tasks\":{\"arc\":{\"path\":\"arc.jsonl\"},\"gsm\":{\"path\":"
            "\"g.jsonl\"}}}}},\"grid\":{\"algorithm\":[\"rtn\"]}}",
    };
    cs_sweep *s[2] = {NULL, NULL};
    cs_err err = {0};
    (void)state;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cs_sweep_parse(docs[i], strlen(docs[i]), "h", &s[i], NULL, &err), CS_OK);
    }
    assert_string_equal(s[0]->evals[0].headline, "{\"arc\":\"acc_norm\"}");
    assert_string_equal(s[1]->evals[0].headline, "{}");
    assert_string_equal(s[0]->evals[0].canon, s[1]->evals[0].canon);
    assert_null(strstr(s[0]->evals[0].canon, "headline"));
    cs_sweep_destroy(s[0]);
    cs_sweep_destroy(s[1]);
}

int main(void)
{
    const char *src = getenv("CS_SOURCE_DIR");
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_bad_sweeps),
            cmocka_unit_test(test_defaults_filled),
            cmocka_unit_test(test_policy_and_meta),
            cmocka_unit_test(test_folder_warning_only),
            cmocka_unit_test(test_extra_axis_near_mission_name_warns),
            cmocka_unit_test(test_shipped_sweeps),
            cmocka_unit_test(test_many_references_resolve_fast),
            cmocka_unit_test(test_exclude_work_bounded),
            cmocka_unit_test(test_headline_kept_out_of_jobs),
    };
    if (!src || chdir(src) != 0) {
        fprintf(stderr, "sweep_test: CS_SOURCE_DIR must name the source tree\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
