/* plot_test.c - `calsweep plot`'s figures (coordinator/results/cs_plot.h) from an aggregate of
 * known numbers (cs_agg_run over in-memory jobs): the numbers each figure shows (cell values, the
 * t-based 95 % error bars, the baseline line), the t quantiles, every format written (the PNG read
 * back and not blank, the PDF one page with its font embedded, the SVG well-formed XML by xmllint
 * when it is installed), and the errors: unknown metric, axis, --where value, rows that differ on
 * a hidden axis, an empty selection (no file), an existing file without --force, an unknown
 * extension. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "cs_agg.h"
#include "cs_plot.h"
#include "cs_plot_int.h"
#include "cs_test.h"

typedef struct fx_job {
    cs_agg_job job;
    cs_agg_metric m[2];
    char axes[160];
} fx_job;

static fx_job fx[48];
static cs_agg_job jobs[48];
static size_t n_fx;

static void add(bool baseline, const char *axes, double t1, double t2)
{
    fx_job *f = &fx[n_fx];
    memset(f, 0, sizeof(*f));
    snprintf(f->axes, sizeof(f->axes), "%s", axes);
    f->m[0] = (cs_agg_metric){"t1", "acc", t1, 0.0, 100};
    f->m[1] = (cs_agg_metric){"t2", "acc", t2, 0.0, 100};
    f->job = (cs_agg_job){.job_id = (int64_t)n_fx + 1,
                          .state = "done",
                          .baseline = baseline,
                          .axes = f->axes,
                          .model = "m",
                          .eval = "e",
                          .result_version = 1,
                          .metrics = f->m,
                          .n_metrics = 2};
    jobs[n_fx] = f->job;
    n_fx++;
}

/* The baseline (t1 0.80, t2 0.60); gptq w4 rows for selectors random and kmeans, n_samples 16
 * and 32, seq_len 64 and 128, seeds 0..2: both tasks 0.70 / 0.50 plus 0.01 for n_samples 32, 0.02
 * for seq_len 128, 0.03 for kmeans and 0.01 x (seed - 1), so the row averages are 0.60 plus the
 * first three; zipcal with seed 0 only at seq_len 64 (one seed: no interval); two RTN rows. */
static cJSON *fixture(void)
{
    char axes[160];
    cJSON *doc = NULL;
    cs_err err = {0};
    cs_agg_opts o;
    n_fx = 0;
    add(true,
        "{\"algorithm\":{\"name\":\"none\"},\"n_samples\":null,\"selector\":null,\"seed\":null,"
        "\"seq_len\":null}",
        0.80, 0.60);
    for (int sel = 0; sel < 3; sel++) {
        for (int n = 16; n <= 32; n += 16) {
            for (int len = 64; len <= 128; len += 64) {
                for (int seed = 0; seed < (sel == 2 ? 1 : 3); seed++) {
                    double d = (n == 32 ? 0.01 : 0) + (len == 128 ? 0.02 : 0) +
                               (sel == 1 ? 0.03 : 0) + 0.01 * (seed - 1);
                    if (sel == 2 && len == 128) {
                        continue;
                    }
                    snprintf(axes, sizeof(axes),
                             "{\"algorithm\":{\"bits\":4,\"name\":\"gptq\"},\"n_samples\":%d,"
                             "\"selector\":\"%s\",\"seed\":%d,\"seq_len\":%d}",
                             n,
                             sel == 0   ? "random"
                             : sel == 1 ? "kmeans"
                                        : "zipcal",
                             seed, len);
                    add(false, axes, 0.70 + d, 0.50 + d);
                }
            }
        }
    }
    /* two RTN variants at 4 bits (no selector, n_samples or seq_len): 0.65 / 0.45 and 0.66 / 0.46
     */
    add(false,
        "{\"algorithm\":{\"bits\":4,\"name\":\"rtn\"},\"n_samples\":null,\"selector\":null,"
        "\"seed\":0,\"seq_len\":null}",
        0.65, 0.45);
    add(false,
        "{\"algorithm\":{\"bits\":4,\"group_size\":64,\"name\":\"rtn\"},\"n_samples\":null,"
        "\"selector\":null,\"seed\":0,\"seq_len\":null}",
        0.66, 0.46);
    cs_agg_opts_init(&o);
    o.resamples = 0;
    if (cs_agg_run(jobs, n_fx, &o, &doc, &err) != CS_OK) {
        fail_msg("cs_agg_run: %s", err.msg);
    }
    return doc;
}

static cs_rc build(const cJSON *agg, cs_plot_kind k, const char *metric, const char *const *where,
                   size_t n_where, cs_plot_model *m, cs_err *err)
{
    cs_plot_opts o = {.kind = k, .metric = metric, .where = where, .n_where = n_where};
    memset(m, 0, sizeof(*m));
    return cs_plot_model_build(agg, &o, m, err);
}

static void expect(cs_rc want, cs_rc got, const cs_err *err, const char *part)
{
    assert_int_equal(got, want);
    if (!strstr(err->msg, part)) {
        fail_msg("message '%s' lacks '%s'", err->msg, part);
    }
}

static void test_t975(void **state)
{
    (void)state;
    assert_true(fabs(cs_plot_t975(1) - 12.706) < 1e-9);
    assert_true(fabs(cs_plot_t975(2) - 4.303) < 1e-9);
    assert_true(fabs(cs_plot_t975(30) - 2.042) < 1e-9);
    assert_true(fabs(cs_plot_t975(31) - 2.0395) < 1e-3); /* published tables */
    assert_true(fabs(cs_plot_t975(60) - 2.0003) < 1e-3);
    assert_true(fabs(cs_plot_t975(1000000) - 1.96) < 1e-3);
}

static void test_heatmap_numbers(void **state)
{
    static const char *const where[] = {"selector=random"};
    static const char *const where_km[] = {"selector=kmeans"};
    cs_plot_model *m = calloc(1, sizeof(*m));
    cJSON *agg = fixture();
    cs_err err = {0};
    (void)state;
    assert_int_equal(build(agg, CS_PLOT_HEATMAP, NULL, where, 1, m, &err), CS_OK);
    assert_int_equal(m->n_panels, 1);
    assert_string_equal(m->panel[0], "gptq w4, m");
    assert_int_equal(m->n_x, 2);
    assert_int_equal(m->n_y, 2);
    assert_true(m->x[0] == 64 && m->x[1] == 128 && m->y[0] == 16 && m->y[1] == 32);
    assert_true(fabs(m->cell[0][0][0] - 0.60) < 1e-9); /* n_samples 16, seq_len 64 */
    assert_true(fabs(m->cell[0][0][1] - 0.62) < 1e-9); /* seq_len 128 */
    assert_true(fabs(m->cell[0][1][0] - 0.61) < 1e-9); /* n_samples 32 */
    assert_true(fabs(m->cell[0][1][1] - 0.63) < 1e-9);
    assert_int_equal(build(agg, CS_PLOT_HEATMAP, "std_ret", where_km, 1, m, &err), CS_OK);
    /* kmeans at 16 / 64: both tasks 0.73 / 0.53 against 0.80 / 0.60: retentions 0.9125 and
     * 0.88333, population std = half their difference. */
    assert_true(fabs(m->cell[0][0][0] - (0.73 / 0.80 - 0.53 / 0.60) / 2) < 1e-9);
    cJSON_Delete(agg);
    free(m);
}

static void test_lines_numbers(void **state)
{
    static const char *const where[] = {"seq_len=64"};
    cs_plot_model *m = calloc(1, sizeof(*m));
    cJSON *agg = fixture();
    cs_err err = {0};
    (void)state;
    assert_int_equal(build(agg, CS_PLOT_NSAMPLES, NULL, where, 1, m, &err), CS_OK);
    assert_int_equal(m->n_series, 3);
    assert_string_equal(m->series[0], "random");
    assert_string_equal(m->series[1], "kmeans");
    assert_string_equal(m->series[2], "zipcal");
    assert_int_equal(m->n_x, 2);
    /* random at 16: per-job averages 0.59, 0.60, 0.61: SE 0.01 / sqrt(3), t(2) = 4.303 */
    assert_true(fabs(m->mean[0][0] - 0.60) < 1e-9);
    assert_true(fabs(m->ehi[0][0] - 0.60 - 4.303 * 0.01 / sqrt(3.0)) < 1e-9);
    assert_true(fabs(0.60 - m->elo[0][0] - 4.303 * 0.01 / sqrt(3.0)) < 1e-9);
    assert_true(fabs(m->mean[1][1] - 0.64) < 1e-9);
    assert_false(m->no_interval[0]);
    assert_true(m->no_interval[2]);
    assert_false(m->item_interval[2]);
    assert_true(isnan(m->elo[2][0]) && isnan(m->ehi[2][0]));
    assert_true(fabs(m->mean[2][0] - 0.59) < 1e-9);
    /* with the bootstrap over items of its one job (average.item_ci), a one-seed point has that
     * interval, and the series says so */
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(agg, "rows"))
    {
        cJSON *avg = cJSON_GetObjectItemCaseSensitive(r, "average");
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(avg, "n");
        cJSON *ci = cJSON_CreateArray();
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(0.55));
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(0.62));
        if (cJSON_IsNumber(n) && n->valuedouble == 1) {
            cJSON_AddItemToObject(avg, "item_ci", ci);
        } else {
            cJSON_Delete(ci);
        }
    }
    assert_int_equal(build(agg, CS_PLOT_NSAMPLES, NULL, where, 1, m, &err), CS_OK);
    assert_false(m->no_interval[2]);
    assert_true(m->item_interval[2]);
    assert_false(m->item_interval[0]);
    assert_true(m->elo[2][0] == 0.55 && m->ehi[2][0] == 0.62);
    cJSON_Delete(agg);
    free(m);
}

static void test_bars_numbers(void **state)
{
    static const char *const where[] = {"seq_len=64", "n_samples=32"};
    cs_plot_model *m = calloc(1, sizeof(*m));
    cJSON *agg = fixture();
    cs_err err = {0};
    (void)state;
    assert_int_equal(build(agg, CS_PLOT_TASKS, NULL, where, 2, m, &err), CS_OK);
    assert_int_equal(m->n_tasks, 2);
    assert_string_equal(m->task[0], "t1");
    assert_int_equal(m->n_series, 3);
    assert_true(fabs(m->base[0] - 0.80) < 1e-9);
    assert_true(fabs(m->base[1] - 0.60) < 1e-9);
    assert_true(fabs(m->mean[0][0] - 0.71) < 1e-9);
    assert_true(fabs(m->mean[1][1] - 0.54) < 1e-9);

    /* --series n_samples: the random rows at seq_len 64, one bar per n_samples */
    static const char *const where_n[] = {"seq_len=64", "selector=random"};
    cs_plot_opts o = {.kind = CS_PLOT_TASKS, .series = "n_samples", .where = where_n, .n_where = 2};
    memset(m, 0, sizeof(*m));
    assert_int_equal(cs_plot_model_build(agg, &o, m, &err), CS_OK);
    assert_int_equal(m->n_series, 2);
    assert_string_equal(m->series[0], "16");
    assert_string_equal(m->series[1], "32");
    assert_true(fabs(m->mean[1][0] - 0.71) < 1e-9);
    /* --series algorithm: gptq w4 and the RTN rows, which have no selector, n_samples or
     * seq_len and so pass those filters; the two RTN variants are told apart */
    static const char *const where_a[] = {"seq_len=64", "selector=random", "n_samples=16"};
    o = (cs_plot_opts){
            .kind = CS_PLOT_TASKS, .series = "algorithm", .where = where_a, .n_where = 3};
    memset(m, 0, sizeof(*m));
    assert_int_equal(cs_plot_model_build(agg, &o, m, &err), CS_OK);
    assert_int_equal(m->n_series, 3);
    assert_string_equal(m->series[0], "gptq w4");
    assert_string_equal(m->series[1], "rtn w4"); /* no member of its own tells it apart */
    assert_string_equal(m->series[2], "rtn w4 (group_size=64)");
    assert_true(fabs(m->mean[0][0] - 0.70) < 1e-9);
    assert_true(fabs(m->mean[2][1] - 0.46) < 1e-9);
    assert_true(fabs(m->base[1] - 0.60) < 1e-9);
    o.series = "sel";
    expect(CS_EINVAL, cs_plot_model_build(agg, &o, m, &err), &err, "the sweep has no axis sel");
    cJSON_Delete(agg);
    free(m);
}

/* A fresh temporary directory for the written figures. */
static void tmpdir(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/cs_plot_test.XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Pixels of the PNG at path that are not white. */
static size_t png_ink(const char *path, int *w, int *h)
{
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    size_t ink = 0;
    assert_int_equal(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    cairo_surface_flush(s);
    *w = cairo_image_surface_get_width(s);
    *h = cairo_image_surface_get_height(s);
    for (int y = 0; y < *h; y++) {
        const uint32_t *row =
                (const uint32_t *)(const void *)(cairo_image_surface_get_data(s) +
                                                 y * cairo_image_surface_get_stride(s));
        for (int x = 0; x < *w; x++) {
            ink += (row[x] & 0xffffffu) != 0xffffffu;
        }
    }
    cairo_surface_destroy(s);
    return ink;
}

/* The first occurrence of the n bytes of needle in buf[0..len), or NULL. */
static const char *find(const char *buf, size_t len, const char *needle, size_t n)
{
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(buf + i, needle, n) == 0) {
            return buf + i;
        }
    }
    return NULL;
}

/* "/Type /Page" objects that are not "/Type /Pages". */
static size_t pdf_pages(const char *buf, size_t len)
{
    size_t n = 0;
    for (const char *p = buf; (p = find(p, len - (size_t)(p - buf), "/Type /Page", 11)); p += 11) {
        n += p[11] != 's';
    }
    return n;
}

static void check_files(const char *dir, const char *name, int width_px)
{
    char path[160], cmd[256];
    size_t len;
    char *buf;
    int w, h;
    snprintf(path, sizeof(path), "%s/%s.png", dir, name);
    size_t ink = png_ink(path, &w, &h);
    assert_int_equal(w, width_px);
    assert_true(ink > (size_t)w * (size_t)h / 50); /* not blank: > 2 % of the pixels inked */
    assert_true(ink < (size_t)w * (size_t)h);      /* nor solid */
    snprintf(path, sizeof(path), "%s/%s.pdf", dir, name);
    buf = slurp(path, &len);
    assert_true(len > 4 && memcmp(buf, "%PDF", 4) == 0);
    assert_int_equal(pdf_pages(buf, len), 1);
    assert_non_null(find(buf, len, "/FontFile", 9)); /* the font is embedded */
    free(buf);
    snprintf(path, sizeof(path), "%s/%s.svg", dir, name);
    buf = slurp(path, &len);
    assert_non_null(strstr(buf, "<svg"));
    assert_non_null(strstr(buf, "</svg>"));
    free(buf);
    if (system("xmllint --version >/dev/null 2>&1") == 0) { /* on PATH (libxml2-utils) */
        snprintf(cmd, sizeof(cmd), "xmllint --noout '%s'", path);
        assert_int_equal(system(cmd), 0);
    } else {
        print_message("# xmllint not installed: the SVG is checked for its tags only\n");
    }
    for (const char *ext = "svg\0pdf\0png\0"; *ext; ext += 4) {
        snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
        unlink(path);
    }
}

static void write_three(const cJSON *agg, const cs_plot_opts *o, const char *dir, const char *name)
{
    char path[160];
    cs_err err = {0};
    for (const char *ext = "svg\0pdf\0png\0"; *ext; ext += 4) {
        snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
        if (cs_plot_write(agg, o, path, &err) != CS_OK) {
            fail_msg("%s: %s", path, err.msg);
        }
    }
}

static void test_files(void **state)
{
    static const char *const w_heat[] = {"selector=random"};
    static const char *const w_lines[] = {"seq_len=64"};
    static const char *const w_bars[] = {"seq_len=64", "n_samples=32"};
    char dir[64];
    cJSON *agg = fixture();
    cs_plot_opts o = {.kind = CS_PLOT_HEATMAP, .where = w_heat, .n_where = 1};
    (void)state;
    tmpdir(dir, sizeof(dir));
    write_three(agg, &o, dir, "heatmap");
    check_files(dir, "heatmap", 990); /* 3.3 in at 300 dpi */
    o = (cs_plot_opts){.kind = CS_PLOT_NSAMPLES, .where = w_lines, .n_where = 1, .width_in = 6.8};
    write_three(agg, &o, dir, "nsamples");
    check_files(dir, "nsamples", 2040);
    o = (cs_plot_opts){.kind = CS_PLOT_TASKS, .where = w_bars, .n_where = 2, .dpi = 100};
    write_three(agg, &o, dir, "tasks");
    check_files(dir, "tasks", 330);
    assert_int_equal(rmdir(dir), 0); /* no temporary file left behind */
    cJSON_Delete(agg);
}

/* Repeated --where on one axis keeps the rows that match any; more series than colours, and two
 * rows on one bar, are refused. */
static void test_where_any_and_colours(void **state)
{
    static const char *const two[] = {"seq_len=64", "n_samples=16", "selector=random",
                                      "selector=zipcal"};
    char axes[160];
    cs_plot_model *m = calloc(1, sizeof(*m));
    cJSON *agg = fixture(), *many = NULL;
    cs_plot_opts o = {.kind = CS_PLOT_TASKS, .where = two, .n_where = 4};
    cs_agg_opts ao;
    cs_err err = {0};
    (void)state;
    assert_int_equal(cs_plot_model_build(agg, &o, m, &err), CS_OK);
    assert_int_equal(m->n_series, 2);
    assert_string_equal(m->series[0], "random");
    assert_string_equal(m->series[1], "zipcal");

    n_fx = 0;
    for (int i = 0; i < 9; i++) {
        snprintf(axes, sizeof(axes), "{\"algorithm\":\"gptq\",\"selector\":\"s%d\"}", i);
        add(false, axes, 0.5, 0.5);
    }
    cs_agg_opts_init(&ao);
    ao.resamples = 0;
    assert_int_equal(cs_agg_run(jobs, n_fx, &ao, &many, &err), CS_OK);
    memset(m, 0, sizeof(*m));
    o = (cs_plot_opts){.kind = CS_PLOT_TASKS};
    expect(CS_EINVAL, cs_plot_model_build(many, &o, m, &err), &err,
           "9 values of selector, more than the 8 colours of the palette");
    cJSON_Delete(many);

    /* two rows on one bar: each lacks an axis the other has, so neither hidden axis differs */
    n_fx = 0;
    add(false, "{\"algorithm\":\"gptq\",\"selector\":null,\"x\":1}", 0.5, 0.5);
    add(false, "{\"algorithm\":\"gptq\",\"selector\":\"random\",\"x\":null}", 0.6, 0.6);
    assert_int_equal(cs_agg_run(jobs, n_fx, &ao, &many, &err), CS_OK);
    memset(m, 0, sizeof(*m));
    o = (cs_plot_opts){.kind = CS_PLOT_TASKS, .series = "algorithm"};
    expect(CS_EINVAL, cs_plot_model_build(many, &o, m, &err), &err,
           "two rows have algorithm gptq; narrow with --where");
    cJSON_Delete(many);
    /* the same in a heatmap cell and on a line's point */
    n_fx = 0;
    add(false, "{\"algorithm\":\"gptq\",\"n_samples\":16,\"selector\":null,\"seq_len\":64,\"x\":1}",
        0.5, 0.5);
    add(false,
        "{\"algorithm\":\"gptq\",\"n_samples\":16,\"selector\":\"random\",\"seq_len\":64,"
        "\"x\":null}",
        0.6, 0.6);
    assert_int_equal(cs_agg_run(jobs, n_fx, &ao, &many, &err), CS_OK);
    memset(m, 0, sizeof(*m));
    o = (cs_plot_opts){.kind = CS_PLOT_HEATMAP};
    expect(CS_EINVAL, cs_plot_model_build(many, &o, m, &err), &err,
           "two rows have gptq, m, n_samples=16, seq_len=64; narrow with --where");
    memset(m, 0, sizeof(*m));
    o = (cs_plot_opts){.kind = CS_PLOT_NSAMPLES, .series = "algorithm"};
    expect(CS_EINVAL, cs_plot_model_build(many, &o, m, &err), &err,
           "two rows have algorithm gptq and n_samples=16; narrow with --where");
    cJSON_Delete(many);
    cJSON_Delete(agg);
    free(m);
}

static void test_errors(void **state)
{
    static const char *const bad_axis[] = {"selectr=random"};
    static const char *const bad_value[] = {"selector=randm"};
    static const char *const none[] = {"selector=zipcal", "seq_len=128"};
    static const char *const random[] = {"selector=random"};
    static const char *const no_eq[] = {"selector"};
    cs_plot_model *m = calloc(1, sizeof(*m));
    cJSON *agg = fixture(), *junk = cJSON_CreateObject();
    cs_plot_opts o = {.kind = CS_PLOT_HEATMAP, .where = random, .n_where = 1};
    cs_err err = {0};
    char dir[64], path[128];
    struct stat st;
    (void)state;
    expect(CS_EINVAL, build(agg, CS_PLOT_HEATMAP, "ppl", random, 1, m, &err), &err,
           "--metric ppl: not for the heatmap figure; metrics: accuracy, std_ret");
    expect(CS_EINVAL, build(agg, CS_PLOT_NSAMPLES, "std_ret", NULL, 0, m, &err), &err,
           "metrics: accuracy");
    expect(CS_EINVAL, build(agg, CS_PLOT_HEATMAP, NULL, bad_axis, 1, m, &err), &err,
           "no axis selectr; axes: algorithm, n_samples, seed, selector, seq_len, model");
    expect(CS_EINVAL, build(agg, CS_PLOT_HEATMAP, NULL, bad_value, 1, m, &err), &err,
           "no row has selector=randm; values: random, kmeans, zipcal");
    expect(CS_EINVAL, build(agg, CS_PLOT_HEATMAP, NULL, no_eq, 1, m, &err), &err,
           "expected AXIS=VALUE");
    expect(CS_EINVAL, build(agg, CS_PLOT_HEATMAP, NULL, NULL, 0, m, &err), &err,
           "differ in selector (values: random, kmeans, zipcal); choose one with --where "
           "selector=VALUE");
    expect(CS_EINVAL, build(agg, CS_PLOT_NSAMPLES, NULL, NULL, 0, m, &err), &err,
           "differ in seq_len (values: 64, 128)");
    expect(CS_EINVAL, build(junk, CS_PLOT_HEATMAP, NULL, NULL, 0, m, &err), &err,
           "expected rows, axes, by and tasks");

    tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/empty.svg", dir);
    o.where = none;
    o.n_where = 2;
    expect(CS_ENOENT, cs_plot_write(agg, &o, path, &err), &err, "no rows to plot");
    assert_int_not_equal(stat(path, &st), 0); /* no empty file */
    o.where = random;
    o.n_where = 1;
    snprintf(path, sizeof(path), "%s/fig.gif", dir);
    expect(CS_EINVAL, cs_plot_write(agg, &o, path, &err), &err, "use .svg, .pdf or .png");
    snprintf(path, sizeof(path), "%s/fig.svg", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("keep", f);
    fclose(f);
    expect(CS_EEXIST, cs_plot_write(agg, &o, path, &err), &err, "exists; --force overwrites it");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 4); /* untouched */
    o.force = true;
    assert_int_equal(cs_plot_write(agg, &o, path, &err), CS_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 1000);
    unlink(path);
    o.format = CS_PLOT_PNG; /* --format wins over the extension */
    assert_int_equal(cs_plot_write(agg, &o, path, &err), CS_OK);
    int w, h;
    assert_true(png_ink(path, &w, &h) > 0);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
    cs_plot_kind k;
    cs_plot_format fmt;
    expect(CS_EINVAL, cs_plot_kind_parse("bars", &k, &err), &err,
           "figures: heatmap, nsamples, tasks");
    expect(CS_EINVAL, cs_plot_format_parse("eps", &fmt, &err), &err, "formats: svg, pdf, png");
    cJSON_Delete(junk);
    cJSON_Delete(agg);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_t975),          cmocka_unit_test(test_heatmap_numbers),
            cmocka_unit_test(test_lines_numbers), cmocka_unit_test(test_bars_numbers),
            cmocka_unit_test(test_files),         cmocka_unit_test(test_where_any_and_colours),
            cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
