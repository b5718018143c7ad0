/* methods_walk_test.c - the parameter walk: the sweep validator (`calsweep plan`, cs_sweep_parse)
 * and the runner's job-spec parser (cs_jobspec_parse, what calsweep-run reads job.json with)
 * agree on every parameter of every algorithm and selector of the table (common/cs_methods.h).
 *
 * For each parameter a job config can hold, sweeps and job configs are built from the table:
 * - every default, bound (min, max, just inside an exclusive min) and choice that the sweep
 *   validator accepts gives job configs that the runner accepts, and that the runner's canonical
 *   writer gives back byte for byte;
 * - every value the runner refuses (min - 1, max + 1, an exclusive bound itself, a non-integer for
 *   an integer, a wrong type, an unknown choice, a group size that is no power of two, an unknown
 *   key) the sweep validator refuses too, with the same message at the same JSON path (the
 *   sweep's path starts at grid.algorithm[0] / grid.selector[0] where the job's starts at
 *   algorithm / calibration.selector).
 * Also the cases by name: SmoothQuant's act_bits 16 and n_samples 2,000,000.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_expand.h"
#include "cs_jobspec.h"
#include "cs_json.h"
#include "cs_methods.h"
#include "cs_sweep.h"
#include "cs_test.h"

static const char base_sweep[] =
        "{\"name\":\"walk\",\"models\":{\"m\":{\"folder\":\"no/such/model\"}},"
        "\"data\":{\"sources\":{\"corpus\":{\"kind\":\"jsonl\",\"path\":\"c.jsonl\"},"
        "\"arith\":{\"kind\":\"task\",\"path\":\"arith.train.jsonl\"}},"
        "\"eval\":{\"default\":{\"tasks\":{\"arith\":{\"path\":\"arith.eval.jsonl\"}},"
        "\"perplexity\":{\"held\":{\"path\":\"h.txt\",\"seq_len\":64}}}}},"
        "\"grid\":{\"algorithm\":[\"gptq\"],\"selector\":[\"random\"],\"source\":[\"corpus\"],"
        "\"n_samples\":[16],\"seq_len\":[64]}}";

/* The sweep of base_sweep with grid.<axis> = [value] (value owned by the caller). */
static char *sweep_with(const char *axis, const cJSON *value)
{
    cJSON *s = cJSON_Parse(base_sweep), *arr = cJSON_CreateArray();
    assert_non_null(s);
    assert_true(cJSON_AddItemToArray(arr, cJSON_Duplicate(value, true)));
    assert_true(cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItem(s, "grid"), axis, arr));
    char *text = cJSON_PrintUnformatted(s);
    cJSON_Delete(s);
    return text;
}

/* The first non-baseline job config of the sweep text (owned), or NULL with *diag (owned) the
 * first error as "<path>: <message>". */
static char *plan(const char *text, char **diag)
{
    cs_sweep *s = NULL;
    cs_diags d;
    cs_err err = {0};
    cs_expander *e = NULL;
    cs_cell cell;
    char *config = NULL;
    cs_diags_init(&d);
    *diag = NULL;
    if (cs_sweep_parse(text, strlen(text), "walk", &s, &d, &err) != CS_OK) {
        size_t i = 0;
        while (i < d.len && d.items[i].severity != CS_DIAG_ERROR) {
            i++;
        }
        assert_true(i < d.len);
        size_t n = strlen(d.items[i].path) + strlen(d.items[i].message) + 3;
        *diag = malloc(n);
        snprintf(*diag, n, "%s: %s", d.items[i].path, d.items[i].message);
        cs_diags_fini(&d);
        return NULL;
    }
    assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_OK);
    while (!config && cs_expand_next(e, &cell, &err) == CS_OK) {
        if (!cell.baseline) {
            config = cs_strdup(cell.config);
        }
    }
    assert_non_null(config);
    cs_expand_destroy(e);
    cs_sweep_destroy(s);
    cs_diags_fini(&d);
    return config;
}

/* The runner parses config and writes it back canonically: the same bytes. */
static void runner_accepts(const char *config, const char *what)
{
    cs_jobspec js;
    cs_err err = {0};
    cs_buf b;
    cs_buf_init(&b);
    if (cs_jobspec_parse(config, strlen(config), "job.json", &js, &err) != CS_OK) {
        fail_msg("%s: plan accepts it, the runner refuses: %s", what, err.msg);
    }
    assert_int_equal(cs_jobspec_write(&js, &b, &err), CS_OK);
    if (strcmp(b.data, config) != 0) {
        fail_msg("%s: written back\n%s\nnot\n%s", what, b.data, config);
    }
    cs_buf_fini(&b);
    cs_jobspec_fini(&js);
}

typedef struct walk {
    cs_mfamily f;
    const char *axis;       /* "algorithm" / "selector" */
    const char *job_path;   /* "algorithm" / "calibration.selector" */
    const char *sweep_path; /* "grid.algorithm[0]" / "grid.selector[0]" */
    char *good_config;      /* a job config of the method with its defaults (owned) */
    size_t n_accepted, n_refused;
} walk;

/* The method object {"name": md->name, key: value} (value NULL: just the name). */
static cJSON *method_obj(const cs_method *md, const char *key, const cJSON *value)
{
    cJSON *o = cJSON_CreateObject();
    assert_non_null(cJSON_AddStringToObject(o, "name", md->name));
    if (key) {
        assert_true(cJSON_AddItemToObject(o, key, cJSON_Duplicate(value, true)));
    }
    return o;
}

static void accept_value(walk *w, const cs_method *md, const cs_mparam *p, const cJSON *value)
{
    char what[256], *diag = NULL;
    char *vtext = cJSON_PrintUnformatted(value);
    cJSON *o = method_obj(md, p->key, value);
    char *text = sweep_with(w->axis, o);
    char *config = plan(text, &diag);
    snprintf(what, sizeof what, "%s %s.%s = %s", w->axis, md->name, p->key, vtext);
    if (!config) {
        fail_msg("%s: plan refuses a value the table allows: %s", what, diag);
    }
    runner_accepts(config, what);
    w->n_accepted++;
    free(config);
    free(text);
    free(vtext);
    cJSON_Delete(o);
}

/* The method's object inside a job config (borrowed from cfg). */
static cJSON *job_method(walk *w, cJSON *cfg)
{
    if (w->f == CS_MF_ALGORITHM) {
        return cJSON_GetObjectItem(cfg, "algorithm");
    }
    return cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "calibration"), "selector");
}

static void refuse_value(walk *w, const cs_method *md, const char *key, const cJSON *value)
{
    cJSON *cfg = cJSON_Parse(w->good_config), *o = method_obj(md, key, value);
    char what[256], runner[512], *diag = NULL, *vtext = cJSON_PrintUnformatted(value);
    cs_jobspec js;
    cs_err err = {0};
    snprintf(what, sizeof what, "%s %s.%s = %s", w->axis, md->name, key, vtext);
    /* the runner: the good config with this one value replaced */
    cJSON *m = job_method(w, cfg);
    cJSON_DeleteItemFromObjectCaseSensitive(m, key);
    assert_true(cJSON_AddItemToObject(m, key, cJSON_Duplicate(value, true)));
    char *job = cJSON_PrintUnformatted(cfg);
    if (cs_jobspec_parse(job, strlen(job), "job.json", &js, &err) == CS_OK) {
        fail_msg("%s: the runner accepts it", what);
    }
    assert_true(strncmp(err.msg, w->job_path, strlen(w->job_path)) == 0);
    snprintf(runner, sizeof runner, "%s", err.msg + strlen(w->job_path));
    /* plan: the same value in the grid */
    char *text = sweep_with(w->axis, o);
    char *config = plan(text, &diag);
    if (config) {
        fail_msg("%s: the runner refuses it (%s), plan accepts it", what, err.msg);
    }
    if (strncmp(diag, w->sweep_path, strlen(w->sweep_path)) != 0 ||
        strcmp(diag + strlen(w->sweep_path), runner) != 0) {
        fail_msg("%s: plan says \"%s\", the runner \"%s\"", what, diag, err.msg);
    }
    w->n_refused++;
    free(diag);
    free(text);
    free(job);
    free(vtext);
    cJSON_Delete(o);
    cJSON_Delete(cfg);
}

/* Accepted values of p: default, bounds, choices. */
static void accepted_values(walk *w, const cs_method *md, const cs_mparam *p)
{
    cJSON *v[8] = {0};
    size_t n = 0;
    switch (p->type) {
    case CS_MT_INT:
    case CS_MT_GROUP:
    case CS_MT_POW2:
        v[n++] = cJSON_CreateNumber(p->def);
        v[n++] = cJSON_CreateNumber(p->min);
        v[n++] = cJSON_CreateNumber(p->max);
        break;
    case CS_MT_NUM:
        v[n++] = cJSON_CreateNumber(p->def);
        v[n++] = cJSON_CreateNumber(p->excl_min ? p->min + 1e-6 : p->min);
        v[n++] = cJSON_CreateNumber(p->max);
        break;
    case CS_MT_BOOL:
        v[n++] = cJSON_CreateTrue();
        v[n++] = cJSON_CreateFalse();
        break;
    case CS_MT_ENUM:
        for (size_t i = 0; p->choices[i] && n < 8; i++) {
            v[n++] = cJSON_CreateString(p->choices[i]);
        }
        break;
    case CS_MT_TASKS:
        v[n++] = cJSON_Parse("[\"arith\"]");
        break;
    }
    /* one parameter at a time: sparsity is walked with the default pattern (unstructured), the
     * N:M patterns with the default sparsity (0.5, what they prune) */
    for (size_t i = 0; i < n; i++) {
        accept_value(w, md, p, v[i]);
        cJSON_Delete(v[i]);
    }
}

/* Refused values of p: past each bound, the wrong type, an unknown choice. */
static void refused_values(walk *w, const cs_method *md, const cs_mparam *p)
{
    const char *texts[8] = {0};
    char buf[8][64];
    size_t n = 0;
    switch (p->type) {
    case CS_MT_INT:
        snprintf(buf[n], 64, "%.0f", p->min - 1), texts[n] = buf[n], n++;
        snprintf(buf[n], 64, "%.0f", p->max + 1), texts[n] = buf[n], n++;
        snprintf(buf[n], 64, "%.1f", p->min + 0.5), texts[n] = buf[n], n++;
        texts[n++] = "\"8\"";
        break;
    case CS_MT_NUM:
        snprintf(buf[n], 64, "%.17g", p->excl_min ? p->min : p->min - 0.5), texts[n] = buf[n], n++;
        snprintf(buf[n], 64, "%.17g", p->max + 0.5), texts[n] = buf[n], n++;
        texts[n++] = "true";
        break;
    case CS_MT_BOOL:
        texts[n++] = "1";
        texts[n++] = "\"true\"";
        break;
    case CS_MT_ENUM:
        texts[n++] = "\"no-such-choice\"";
        texts[n++] = "3";
        break;
    case CS_MT_GROUP:
    case CS_MT_POW2:
        texts[n++] = "0";
        texts[n++] = "3";
        texts[n++] = "-2";
        snprintf(buf[n], 64, "%.0f", p->max * 2), texts[n] = buf[n], n++;
        texts[n++] = "64.5";
        break;
    case CS_MT_TASKS:
        break;
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *v = cJSON_Parse(texts[i]);
        assert_non_null(v);
        refuse_value(w, md, p->key, v);
        cJSON_Delete(v);
    }
}

static void walk_family(cs_mfamily f)
{
    walk w = {.f = f};
    size_t n;
    const cs_method *t = cs_methods(f, &n);
    w.axis = f == CS_MF_ALGORITHM ? "algorithm" : "selector";
    w.job_path = f == CS_MF_ALGORITHM ? "algorithm" : "calibration.selector";
    w.sweep_path = f == CS_MF_ALGORITHM ? "grid.algorithm[0]" : "grid.selector[0]";
    for (size_t i = 0; i < n; i++) {
        const cs_method *md = &t[i];
        cJSON *name = cJSON_CreateString(md->name), *unk = cJSON_CreateNumber(1);
        char *text = sweep_with(w.axis, name), *diag = NULL;
        if (md->kind == CS_ALGO_NONE && f == CS_MF_ALGORITHM) {
            cJSON_Delete(name);
            cJSON_Delete(unk);
            free(text);
            continue; /* the baseline: no parameters, no calibration */
        }
        w.good_config = plan(text, &diag);
        assert_non_null(w.good_config);
        runner_accepts(w.good_config, md->name);
        for (size_t k = 0; k < md->n_params; k++) {
            const cs_mparam *p = &md->params[k];
            if (p->flags & CS_MP_ENGINE) {
                refuse_value(&w, md, p->key, unk); /* engine only: not in a sweep or a job */
                continue;
            }
            accepted_values(&w, md, p);
            refused_values(&w, md, p);
        }
        refuse_value(&w, md, "no_such_key", unk);
        free(w.good_config);
        free(text);
        cJSON_Delete(name);
        cJSON_Delete(unk);
    }
    print_message("# %s: %zu values accepted by both, %zu refused by both with the same message\n",
                  w.axis, w.n_accepted, w.n_refused);
    assert_true(w.n_accepted > 50 && w.n_refused > 50);
}

static void test_walk_algorithms(void **state)
{
    (void)state;
    walk_family(CS_MF_ALGORITHM);
}

static void test_walk_selectors(void **state)
{
    (void)state;
    walk_family(CS_MF_SELECTOR);
}

/* issue 18: {"name":"smoothquant","act_bits":16} passed plan and failed on every worker. */
static void test_smoothquant_act_bits_16(void **state)
{
    (void)state;
    cJSON *o = cJSON_Parse("{\"name\":\"smoothquant\",\"act_bits\":16}");
    char *text = sweep_with("algorithm", o), *diag = NULL;
    assert_null(plan(text, &diag));
    assert_string_equal(diag, "grid.algorithm[0].act_bits: expected an integer in 2..8, got 16");
    free(diag);
    free(text);
    cJSON_Delete(o);
}

/* issue 18: n_samples 2,000,000: plan and the runner refuse it with one message. */
static void test_n_samples_past_limit(void **state)
{
    (void)state;
    cJSON *v = cJSON_CreateNumber(2000000), *s = cJSON_Parse(base_sweep);
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItem(s, "grid"), "n_samples",
                                           cJSON_Parse("[2000000]"));
    char *text = cJSON_PrintUnformatted(s), *diag = NULL;
    assert_null(plan(text, &diag));
    assert_string_equal(diag, "grid.n_samples[0]: expected an integer in 1..1048576, got 2000000");
    free(diag);
    char *good = plan(base_sweep, &diag);
    cJSON *cfg = cJSON_Parse(good);
    cJSON_ReplaceItemInObjectCaseSensitive(cfg, "n_samples", v);
    char *job = cJSON_PrintUnformatted(cfg);
    cs_jobspec js;
    cs_err err = {0};
    assert_int_equal(cs_jobspec_parse(job, strlen(job), "job.json", &js, &err), CS_ESCHEMA);
    assert_string_equal(err.msg, "n_samples: expected an integer in 1..1048576, got 2000000");
    free(diag);
    free(job);
    free(good);
    free(text);
    cJSON_Delete(cfg);
    cJSON_Delete(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_walk_algorithms),
            cmocka_unit_test(test_walk_selectors),
            cmocka_unit_test(test_smoothquant_act_bits_16),
            cmocka_unit_test(test_n_samples_past_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
