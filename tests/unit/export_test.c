/* export_test.c - coordinator/results/cs_export.h: the exports of a small aggregate built by
 * cs_agg_run from jobs with known numbers (a baseline, two selectors with two seeds each, one
 * calibration-free row): markdown and wide CSV compared byte for byte, the pivot (--cols AXIS),
 * --where, --percent and --digits, the JSON's rows and "export" member, the long CSV, the value
 * forms and matching, and every error: unknown axes list the valid ones, an empty selection. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_agg.h"
#include "cs_export.h"
#include "cs_test.h"

#define AX(alg, sel, seed) \
    "{\"algorithm\":" alg ",\"model\":\"m\",\"selector\":" sel ",\"seed\":" seed "}"

typedef struct fx_job {
    cs_agg_job job;
    cs_agg_metric m[2];
} fx_job;

static fx_job fx[6];

static void fx_set(size_t i, bool baseline, const char *axes, double a, double b)
{
    fx[i].m[0] = (cs_agg_metric){"t_a", "acc", a, 0.0, 100};
    fx[i].m[1] = (cs_agg_metric){"t_b", "acc", b, 0.0, 100};
    fx[i].job = (cs_agg_job){.job_id = (int64_t)i + 1,
                             .state = "done",
                             .baseline = baseline,
                             .axes = axes,
                             .model = "m",
                             .eval = "e",
                             .result_version = 1,
                             .metrics = fx[i].m,
                             .n_metrics = 2};
}

/* The aggregate of the fixture: baseline 0.8/0.6; gptq random 0.70,0.72 / 0.50,0.54;
 * gptq k|m,x 0.74,0.76 / 0.52,0.52; rtn 0.66/0.46. */
static cJSON *fx_agg(void)
{
    cs_agg_opts o;
    cJSON *agg = NULL;
    cs_err err = {0};
    fx_set(0, true, AX("{\"name\":\"none\"}", "null", "null"), 0.80, 0.60);
    fx_set(1, false, AX("{\"bits\":4,\"name\":\"gptq\"}", "\"random\"", "0"), 0.70, 0.50);
    fx_set(2, false, AX("{\"bits\":4,\"name\":\"gptq\"}", "\"random\"", "1"), 0.72, 0.54);
    fx_set(3, false, AX("{\"bits\":4,\"name\":\"gptq\"}", "\"k|m,x\"", "0"), 0.74, 0.52);
    fx_set(4, false, AX("{\"bits\":4,\"name\":\"gptq\"}", "\"k|m,x\"", "1"), 0.76, 0.52);
    fx_set(5, false, AX("{\"bits\":4,\"name\":\"rtn\"}", "null", "null"), 0.66, 0.46);
    cs_agg_opts_init(&o);
    cs_agg_job jobs[6];
    for (size_t i = 0; i < 6; i++) {
        jobs[i] = fx[i].job;
    }
    if (cs_agg_run(jobs, 6, &o, &agg, &err) != CS_OK) {
        fail_msg("cs_agg_run: %s", err.msg);
    }
    return agg;
}

static void opts(cs_export_opts *o, cs_export_format f)
{
    cs_export_opts_init(o);
    o->format = f;
    o->sweep = "s";
    o->sweep_id = 7;
    o->engine_version = "e/1";
    o->command = "calsweep export s";
}

/* Renders and returns the text (owned). */
static char *render(const cJSON *agg, const cs_export_opts *o, cs_rc want, const char *msg)
{
    cs_buf b = {0};
    cs_err err = {0};
    cs_rc rc = cs_export_render(agg, o, &b, &err);
    assert_int_equal(rc, want);
    if (msg) {
        assert_string_equal(err.msg, msg);
    }
    if (rc != CS_OK) {
        assert_true(b.len == 0);
    }
    return cs_buf_take(&b);
}

static void test_markdown(void **state)
{
    (void)state;
    cJSON *agg = fx_agg();
    cs_export_opts o;
    opts(&o, CS_EXPORT_MARKDOWN);
    o.percent = true;
    char *t = render(agg, &o, CS_OK, NULL);
    assert_string_equal(
            t,
            "<!-- calsweep export: sweep s (id 7), engine e/1, 6 jobs; command: calsweep export s"
            " -->\n"
            "<!-- all rows: model=m -->\n"
            "<!-- cells: mean ± std across seeds; accuracies in percent -->\n"
            "| algorithm | selector | seeds | t_a acc ↑ | t_b acc ↑ | average ↑ | std_ret ↓ |\n"
            "|---|---|---:|---:|---:|---:|---:|\n"
            "| none | - | 1 | 80.0 | 60.0 | 70.0 | - |\n"
            "| gptq(bits=4) | random | 2 | 71.0 ± 1.0 | 52.0 ± 2.0 | 61.5 ± 1.5 | 0.010 |\n"
            "| gptq(bits=4) | k\\|m,x | 2 | 75.0 ± 1.0 | 52.0 ± 0.0 | 63.5 ± 0.5 | 0.035 |\n"
            "| rtn(bits=4) | - | 1 | 66.0 | 46.0 | 56.0 | 0.029 |\n");
    free(t);
    cJSON_Delete(agg);
}

static void test_csv_where_digits(void **state)
{
    (void)state;
    cJSON *agg = fx_agg();
    cs_export_opts o;
    cs_export_where w[1] = {{"algorithm", "gptq"}};
    opts(&o, CS_EXPORT_CSV);
    o.where = w;
    o.n_where = 1;
    char *t = render(agg, &o, CS_OK, NULL);
    assert_string_equal(t,
                        "# calsweep export: sweep s (id 7), engine e/1, 4 jobs; command: calsweep"
                        " export s\n"
                        "# all rows: algorithm=gptq(bits=4) model=m\n"
                        "selector,seeds,t_a.acc,t_a.acc.std,t_b.acc,t_b.acc.std,average,"
                        "average.std,std_ret\n"
                        "random,2,0.71,0.01,0.52,0.02,0.615,0.015,0.01041666667\n"
                        "\"k|m,x\",2,0.75,0.01,0.52,0,0.635,0.005,0.03541666667\n");
    free(t);
    /* markdown with 3 decimals of fractions, the delta-free pivot over selector */
    opts(&o, CS_EXPORT_MARKDOWN);
    o.where = w;
    o.n_where = 1;
    o.digits = 3;
    o.cols = "selector";
    t = render(agg, &o, CS_OK, NULL);
    assert_non_null(strstr(t, "| selector=random ↑ | selector=k\\|m,x ↑ |\n|---:|---:|\n"
                              "| 0.615 ± 0.015 | 0.635 ± 0.005 |\n"));
    free(t);
    cJSON_Delete(agg);
}

static void test_json(void **state)
{
    (void)state;
    cJSON *agg = fx_agg(), *doc;
    cs_export_opts o;
    cs_export_where w[1] = {{"selector", "random"}};
    opts(&o, CS_EXPORT_JSON);
    o.where = w;
    o.n_where = 1;
    char *t = render(agg, &o, CS_OK, NULL);
    doc = cJSON_Parse(t);
    assert_non_null(doc);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "rows")), 1);
    cJSON *note = cJSON_GetObjectItem(doc, "export");
    assert_string_equal(cJSON_GetObjectItem(note, "sweep")->valuestring, "s");
    assert_int_equal(cJSON_GetObjectItem(note, "sweep_id")->valueint, 7);
    assert_int_equal(cJSON_GetObjectItem(note, "jobs")->valueint, 2);
    assert_string_equal(cJSON_GetObjectItem(note, "command")->valuestring, "calsweep export s");
    assert_string_equal(cJSON_GetObjectItem(note, "engine_version")->valuestring, "e/1");
    cJSON_Delete(doc);
    free(t);
    cJSON_Delete(agg);
}

static void test_errors(void **state)
{
    (void)state;
    cJSON *agg = fx_agg();
    cs_export_opts o;
    cs_export_where bad_axis[1] = {{"selectr", "random"}}, bad_val[1] = {{"selector", "x"}},
                    none[2] = {{"selector", "random"}, {"algorithm", "rtn"}};
    opts(&o, CS_EXPORT_MARKDOWN);
    o.where = bad_axis;
    o.n_where = 1;
    free(render(agg, &o, CS_EINVAL,
                "--where selectr=random: no such axis; axes: algorithm, model, "
                "selector"));
    o.where = bad_val;
    free(render(agg, &o, CS_ENOENT, "--where selector=x: no row has it; values: random, k|m,x"));
    o.where = none;
    o.n_where = 2;
    free(render(agg, &o, CS_ENOENT, "no row matches every --where"));
    o.format = CS_EXPORT_JSON;
    free(render(agg, &o, CS_ENOENT, "no row matches every --where"));
    o.n_where = 0;
    o.format = CS_EXPORT_CSV;
    o.cols = "seed";
    free(render(agg, &o, CS_EINVAL, "--cols seed: no such axis; axes: algorithm, model, selector"));
    free(render(cJSON_GetObjectItem(agg, "rows"), &o, CS_EINVAL,
                "export: not an aggregate (docs/results.md)"));
    cJSON_Delete(agg);
}

static void test_long(void **state)
{
    (void)state;
    cJSON *agg = fx_agg();
    cs_agg_job jobs[6];
    cs_export_opts o;
    cs_export_where w[1] = {{"seed", "1"}}, bad[1] = {{"sed", "1"}};
    cs_buf b = {0};
    cs_err err = {0};
    for (size_t i = 0; i < 6; i++) {
        jobs[i] = fx[i].job;
    }
    opts(&o, CS_EXPORT_CSV_LONG);
    o.where = w;
    o.n_where = 1;
    assert_int_equal(cs_export_render_long(jobs, 6, NULL, &o, &b, &err), CS_OK);
    assert_string_equal(b.data, "# calsweep export: sweep s (id 7), engine e/1, 2 jobs; command: "
                                "calsweep export s\n"
                                "job_id,baseline,algorithm.bits,algorithm.name,model,seed,selector,"
                                "task,metric,value,n\n"
                                "3,0,4,gptq,m,1,random,t_a,acc,0.72,100\n"
                                "3,0,4,gptq,m,1,random,t_b,acc,0.54,100\n"
                                "5,0,4,gptq,m,1,\"k|m,x\",t_a,acc,0.76,100\n"
                                "5,0,4,gptq,m,1,\"k|m,x\",t_b,acc,0.52,100\n");
    cs_buf_fini(&b);
    /* Every config member, at every depth, after the axes; null and absent empty, arrays whole;
     * the configs of jobs not written (ids 1, 2, 4, 6) add no column. */
    const char *configs[6] = {"{\"unused\":1}",
                              NULL,
                              "{\"calib\":{\"selector\":{\"name\":\"random\",\"k\":2}},"
                              "\"tasks\":[\"a\",\"b\"],\"extra\":{},\"x\":null}",
                              NULL,
                              "{\"calib\":{\"selector\":{\"name\":\"k,m\"}},\"x\":1.5}",
                              NULL};
    assert_int_equal(cs_export_render_long(jobs, 6, configs, &o, &b, &err), CS_OK);
    assert_non_null(strstr(b.data,
                           "job_id,baseline,algorithm.bits,algorithm.name,model,seed,selector,"
                           "config.calib.selector.k,config.calib.selector.name,config.tasks,"
                           "config.x,task,metric,value,n\n"
                           "3,0,4,gptq,m,1,random,2,random,\"[\"\"a\"\",\"\"b\"\"]\",,t_a,acc,"
                           "0.72,100\n"));
    assert_non_null(strstr(b.data, "\n5,0,4,gptq,m,1,\"k|m,x\",,\"k,m\",,1.5,t_b,acc,0.52,100\n"));
    cs_buf_fini(&b);
    configs[2] = "[1]";
    assert_int_equal(cs_export_render_long(jobs, 6, configs, &o, &b, &err), CS_EINVAL);
    assert_string_equal(err.msg, "export: job 3: config is not a JSON object");
    cs_buf_fini(&b);
    o.where = bad;
    assert_int_equal(cs_export_render_long(jobs, 6, NULL, &o, &b, &err), CS_EINVAL);
    assert_string_equal(err.msg,
                        "--where sed=1: no such axis; axes: algorithm, model, selector, seed");
    jobs[0].state = jobs[1].state = jobs[2].state = jobs[3].state = jobs[4].state = jobs[5].state =
            "failed";
    o.n_where = 0;
    assert_int_equal(cs_export_render_long(jobs, 6, NULL, &o, &b, &err), CS_ENOENT);
    assert_string_equal(err.msg, "no done job");
    assert_true(b.len == 0);
    cs_buf_fini(&b);
    cJSON_Delete(agg);
}

/* The LaTeX of the fixture, percent, after edit(agg) (may be NULL). Returns owned text. */
static char *latex(bool standalone, void (*edit)(cJSON *agg))
{
    cJSON *agg = fx_agg();
    cs_export_opts o;
    opts(&o, CS_EXPORT_LATEX);
    o.percent = true;
    o.standalone = standalone;
    if (edit) {
        edit(agg);
    }
    char *t = render(agg, &o, CS_OK, NULL);
    cJSON_Delete(agg);
    return t;
}

static void has(const char *text, const char *part)
{
    if (!strstr(text, part)) {
        fail_msg("missing '%s' in:\n%s", part, text);
    }
}

/* Row 1 (gptq random): a selector of every LaTeX special, and the flag missing_seeds. */
static void edit_specials(cJSON *agg)
{
    cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(agg, "rows"), 1);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(row, "values"), "selector",
                              cJSON_CreateString("a_b%&#${}~^\\z"));
    cJSON_AddItemToArray(cJSON_GetObjectItem(row, "flags"), cJSON_CreateString("missing_seeds"));
}

static void test_latex(void **state)
{
    (void)state;
    char *t = latex(false, NULL);
    /* booktabs, no vertical rules, arrows, the note as a comment, a fragment */
    has(t, "% calsweep export: sweep s (id 7), engine e/1, 6 jobs; command: calsweep export s\n");
    has(t, "\\begin{tabular}{llrrrrr}\n\\toprule\n");
    has(t, "algorithm & selector & seeds & t\\_a acc $\\uparrow$ & t\\_b acc $\\uparrow$ & "
           "average $\\uparrow$ & std\\_ret $\\downarrow$ \\\\\n\\midrule\n");
    has(t, "\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    has(t, "(2 seeds; rows with one job show its value), accuracies in percent.");
    assert_null(strstr(t, "\\documentclass"));
    /* the gptq rows grouped; best bold, second underlined, the baseline never ranked, the tie
     * on t_b (52.0 and 52.0) both bold and the next value (46.0) second */
    has(t, "\\multirow{2}{*}{gptq(bits=4)} & random & 2 & \\underline{71.0$\\pm$1.0} & "
           "\\textbf{52.0$\\pm$2.0} & \\underline{61.5$\\pm$1.5} & \\textbf{0.010} \\\\\n");
    has(t, " & k|m,x & 2 & \\textbf{75.0$\\pm$1.0} & \\textbf{52.0$\\pm$0.0} & "
           "\\textbf{63.5$\\pm$0.5} & 0.035 \\\\\n");
    has(t, "none & -- & 1 & 80.0 & 60.0 & 70.0 & -- \\\\\n");
    has(t, "rtn(bits=4) & -- & 1 & 66.0 & \\underline{46.0} & 56.0 & \\underline{0.029} \\\\\n");
    free(t);
    /* specials escaped; a row with missing seeds is never best or second */
    t = latex(true, edit_specials);
    has(t, "\\documentclass{article}\n");
    has(t, "\\end{document}\n");
    has(t, "a\\_b\\%\\&\\#\\$\\{\\}\\textasciitilde{}\\textasciicircum{}\\textbackslash{}z & "
           "2 & 71.0$\\pm$1.0 & 52.0$\\pm$2.0 & 61.5$\\pm$1.5 & 0.010 \\\\\n");
    has(t, "rtn(bits=4) & -- & 1 & \\underline{66.0} & \\underline{46.0} & \\underline{56.0} & "
           "\\textbf{0.029} \\\\\n");
    free(t);
}

/* One table per algorithm; in a pivot over selector the rows without one (none, rtn) leave
 * their tables out; a split whose every table is empty is CS_ENOENT. */
static void test_split(void **state)
{
    (void)state;
    cJSON *agg = fx_agg();
    const char *const split[] = {"algorithm"};
    cs_export_where w[1] = {{"algorithm", "rtn"}};
    cs_export_opts o;
    cs_buf b = {0};
    cs_err err = {0};
    opts(&o, CS_EXPORT_MARKDOWN);
    assert_int_equal(cs_export_render_split(agg, &o, split, 1, &b, &err), CS_OK);
    has(b.data, "### algorithm=none\n\n<!-- calsweep export: sweep s (id 7), engine e/1, 1 jobs;");
    has(b.data, "\n\n### algorithm=gptq(bits=4)\n\n<!-- calsweep export: sweep s (id 7), engine "
                "e/1, 4 jobs;");
    has(b.data, "\n\n### algorithm=rtn(bits=4)\n\n");
    cs_buf_fini(&b);
    o.cols = "selector";
    assert_int_equal(cs_export_render_split(agg, &o, split, 1, &b, &err), CS_OK);
    assert_true(strncmp(b.data, "### algorithm=gptq(bits=4)\n\n", 28) == 0);
    assert_null(strstr(b.data, "### algorithm=rtn"));
    cs_buf_fini(&b);
    o.where = w;
    o.n_where = 1;
    assert_int_equal(cs_export_render_split(agg, &o, split, 1, &b, &err), CS_ENOENT);
    cs_buf_fini(&b);
    o.format = CS_EXPORT_LATEX;
    o.cols = NULL;
    o.n_where = 0;
    o.standalone = true;
    assert_int_equal(cs_export_render_split(agg, &o, split, 1, &b, &err), CS_OK);
    assert_true(strncmp(b.data, "\\documentclass{article}\n", 24) == 0);
    assert_non_null(strstr(b.data, "\\end{table}\n\\end{document}\n"));
    assert_null(strstr(strstr(b.data, "\\begin{document}") + 1, "\\begin{document}"));
    cs_buf_fini(&b);
    cJSON_Delete(agg);
}

static void test_values(void **state)
{
    (void)state;
    cJSON *v = cJSON_Parse("{\"bits\":4,\"grid\":\"g\",\"name\":\"rtn\"}");
    cJSON *n = cJSON_Parse("16");
    cs_buf b = {0};
    assert_int_equal(cs_export_value_text(&b, v), CS_OK);
    assert_string_equal(b.data, "rtn(bits=4,grid=g)");
    assert_true(cs_export_value_matches(v, "rtn"));
    assert_true(cs_export_value_matches(v, "rtn(bits=4,grid=g)"));
    assert_true(cs_export_value_matches(v, "{\"bits\":4,\"grid\":\"g\",\"name\":\"rtn\"}"));
    assert_true(cs_export_value_matches(v, "{\"name\":\"rtn\",\"grid\":\"g\",\"bits\":4}"));
    assert_false(cs_export_value_matches(v, "rtn(bits=3)"));
    /* short labels: the name and some members, the others free */
    assert_true(cs_export_value_matches(v, "rtn(bits=4)"));
    assert_true(cs_export_value_matches(v, "rtn(grid=g)"));
    assert_false(cs_export_value_matches(v, "rtn(grid=h)"));
    assert_false(cs_export_value_matches(v, "rtn(size=4)"));
    assert_false(cs_export_value_matches(v, "gptq(bits=4)"));
    assert_false(cs_export_value_matches(v, "rtn()"));
    assert_false(cs_export_value_matches(v, "rtn(bits)"));
    assert_true(cs_export_value_matches(n, "16"));
    cJSON *str = cJSON_CreateString("tb");
    assert_true(cs_export_value_matches(str, "tb"));
    assert_true(cs_export_value_matches(str, "\"tb\""));
    assert_false(cs_export_value_matches(str, "tb2"));
    cJSON_Delete(str);
    assert_false(cs_export_value_matches(n, "32"));
    assert_false(cs_export_value_matches(NULL, "16"));
    cs_buf_fini(&b);
    cJSON_Delete(v);
    cJSON_Delete(n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_markdown), cmocka_unit_test(test_csv_where_digits),
            cmocka_unit_test(test_json),     cmocka_unit_test(test_errors),
            cmocka_unit_test(test_long),     cmocka_unit_test(test_values),
            cmocka_unit_test(test_latex),    cmocka_unit_test(test_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
