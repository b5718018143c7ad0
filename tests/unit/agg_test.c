/* agg_test.c - the results module (coordinator/results/cs_agg.h) on hand-built jobs with known
 * per-item outcomes.
 *
 * The deterministic numbers (means, std, se, M4, M5, retention, Holm) are checked against values
 * worked out by hand in the comments, or computed here by a second, plain implementation, to
 * 1e-12. The bootstrap is checked against a naive bootstrap written here (draw item indices, and
 * seed pairs, with replacement): the two use different random streams, so the CI bounds and the
 * p-value are compared within a tolerance derived from the resample count (Monte Carlo error of a
 * percentile and of a proportion), see boot_tolerance().
 */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_agg.h"
#include "cs_canon.h"
#include "cs_rng.h"
#include "cs_test.h"

#define MAX_ITEMS 1000

typedef struct fx_job {
    cs_agg_job job;
    cs_agg_metric m[16];
    cs_agg_outcome o[8];
    uint8_t bits[8][MAX_ITEMS / 8];
} fx_job;

static fx_job fx[64];
static cs_agg_job jobs[64];
static size_t n_fx;

static fx_job *fx_add(const char *state, bool baseline, const char *axes)
{
    fx_job *f = &fx[n_fx];
    memset(f, 0, sizeof(*f));
    f->job = (cs_agg_job){.job_id = (int64_t)n_fx + 1,
                          .state = state,
                          .baseline = baseline,
                          .axes = axes,
                          .model = "m",
                          .eval = "e",
                          .result_version = strcmp(state, "done") == 0 ? 2 : 0,
                          .metrics = f->m,
                          .outcomes = f->o};
    n_fx++;
    return f;
}

static void fx_metric(fx_job *f, const char *task, const char *metric, double v, int64_t n)
{
    f->m[f->job.n_metrics++] = (cs_agg_metric){task, metric, v, 0.0, n};
}

/* Per-item outcomes (0/1) of task.metric, and the metric as their mean. */
static void fx_items(fx_job *f, const char *task, const char *metric, const char *sample, size_t n,
                     const int *y)
{
    size_t k = f->job.n_outcomes++;
    size_t sum = 0;
    memset(f->bits[k], 0, sizeof(f->bits[k]));
    for (size_t i = 0; i < n; i++) {
        if (y[i]) {
            f->bits[k][i >> 3] |= (uint8_t)(1u << (i & 7));
            sum++;
        }
    }
    f->o[k] = (cs_agg_outcome){task, metric, sample, n, f->bits[k], NULL};
    fx_metric(f, task, metric, (double)sum / (double)n, (int64_t)n);
}

static size_t fx_jobs(void)
{
    for (size_t i = 0; i < n_fx; i++) {
        jobs[i] = fx[i].job;
    }
    return n_fx;
}

static cJSON *run_ok(const cs_agg_opts *o)
{
    cJSON *doc = NULL;
    cs_err err = {0};
    cs_rc rc = cs_agg_run(jobs, fx_jobs(), o, &doc, &err);
    if (rc != CS_OK) {
        print_error("cs_agg_run: %s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    assert_non_null(doc);
    return doc;
}

static const cJSON *row_by_label(const cJSON *doc, const char *label)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(doc, "rows"))
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(r, "label")->valuestring, label) == 0) {
            return r;
        }
    }
    print_error("no row labelled [%s]\n", label);
    fail();
    return NULL;
}

/* The object at a path of member names ("tasks.t1.value"; "" is o itself). */
static const cJSON *at(const cJSON *o, const char *path)
{
    const char *p = path;
    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
        char key[128];
        snprintf(key, sizeof(key), "%.*s", (int)len, p);
        o = cJSON_GetObjectItemCaseSensitive(o, key);
        if (o == NULL) {
            print_error("no member %s of %s\n", key, path);
            fail();
        }
        p += len + (dot != NULL);
    }
    return o;
}

static double num(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);
    if (!cJSON_IsNumber(v)) {
        print_error("%s is not a number\n", path);
        fail();
    }
    return v->valuedouble;
}

static bool has_flag(const cJSON *row, const char *flag)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(row, "flags"))
    {
        if (strcmp(f->valuestring, flag) == 0) {
            return true;
        }
    }
    return false;
}

#define EXACT                     1e-12
#define assert_num(o, path, want) assert_true(fabs(num((o), (path)) - (want)) <= EXACT)

#define A_BASE "{\"algorithm\":{\"name\":\"none\"},\"selector\":null,\"seed\":null}"
#define A_RND(s) \
    "{\"algorithm\":{\"bits\":4,\"name\":\"gptq\"},\"selector\":\"random\",\"seed\":" s "}"
#define A_KM(s) \
    "{\"algorithm\":{\"bits\":4,\"name\":\"gptq\"},\"selector\":\"kmeans\",\"seed\":" s "}"
#define L_RND  "algorithm=gptq(bits=4) selector=random"
#define L_KM   "algorithm=gptq(bits=4) selector=kmeans"
#define L_BASE "baseline algorithm=none"

/* Metrics only (version 1 style numbers): the aggregates, M4, M5 worked out by hand. */
static void build_metrics_sweep(void)
{
    n_fx = 0;
    fx_job *b = fx_add("done", true, A_BASE);
    fx_metric(b, "t1", "acc", 0.8, 100);
    fx_metric(b, "t1", "acc_stderr", 0.04, 100);
    fx_metric(b, "t2", "acc", 0.5, 50);
    fx_metric(b, "t2", "acc_norm", 0.6, 50);
    fx_metric(b, "ppl:w", "ppl", 10.0, 8);
    const char *rnd[3] = {A_RND("0"), A_RND("1"), A_RND("2")};
    const double t1[3] = {0.70, 0.74, 0.72}, t2n[3] = {0.50, 0.56, 0.53}, ppl[3] = {12, 13, 14};
    for (int s = 0; s < 3; s++) {
        fx_job *f = fx_add("done", false, rnd[s]);
        fx_metric(f, "t1", "acc", t1[s], 100);
        fx_metric(f, "t2", "acc", 0.4, 50);
        fx_metric(f, "t2", "acc_norm", t2n[s], 50);
        fx_metric(f, "ppl:w", "ppl", ppl[s], 8);
    }
    const char *km[2] = {A_KM("0"), A_KM("1")};
    for (int s = 0; s < 2; s++) {
        fx_job *f = fx_add("done", false, km[s]);
        fx_metric(f, "t1", "acc", 0.75, 100);
        fx_metric(f, "t2", "acc", 0.45, 50);
        fx_metric(f, "t2", "acc_norm", 0.55, 50);
        fx_metric(f, "ppl:w", "ppl", 11.0, 8);
        f->job.result_version = 1;
    }
    fx_add("failed", false, A_KM("2"));
}

static void test_aggregates(void **state)
{
    (void)state;
    build_metrics_sweep();
    cs_agg_opts o;
    cs_agg_opts_init(&o);
    const char *ht[] = {"t2"}, *hm[] = {"acc_norm"};
    o.headline_task = ht;
    o.headline_metric = hm;
    o.n_headline = 1;
    cJSON *doc = run_ok(&o);
    assert_int_equal(cJSON_GetArraySize(at(doc, "rows")), 3);
    assert_int_equal(num(doc, "max_seeds"), 3);
    const cJSON *r = row_by_label(doc, L_RND);
    /* t1 acc: 0.70 0.74 0.72: mean 0.72, deviations -0.02 +0.02 0 */
    assert_num(r, "tasks.t1.value", 0.72);
    assert_num(r, "tasks.t1.metrics.acc.mean", (0.70 + 0.74 + 0.72) / 3);
    assert_num(r, "tasks.t1.metrics.acc.std", sqrt(0.0008 / 3));
    assert_num(r, "tasks.t1.metrics.acc.se", sqrt(0.0008 / 6));
    assert_num(r, "tasks.t1.metrics.acc.n", 3);
    assert_num(r, "tasks.t1.n_seeds", 3);
    assert_int_equal(cJSON_GetArraySize(at(r, "tasks.t1.items")), 3);
    assert_num(cJSON_GetArrayItem(at(r, "tasks.t1.items"), 0), "", 100);
    /* t2 headline acc_norm: 0.50 0.56 0.53 -> 0.53; acc constant 0.4: std 0 */
    assert_string_equal(at(r, "tasks.t2.headline")->valuestring, "acc_norm");
    assert_num(r, "tasks.t2.value", (0.50 + 0.56 + 0.53) / 3);
    assert_num(r, "tasks.t2.metrics.acc.std", 0.0);
    assert_num(r, "tasks.ppl:w.value", 13.0);
    /* M4: (0.72 + 0.53) / 2; the perplexity task is not in it */
    double q1 = (0.70 + 0.74 + 0.72) / 3, q2 = (0.50 + 0.56 + 0.53) / 3;
    assert_num(r, "average.value", (q1 + q2) / 2);
    /* per-seed averages 0.60 0.65 0.625: std sqrt((0.025^2 * 2) / 3) */
    assert_true(fabs(num(r, "average.std") - sqrt(0.00125 / 3)) < 1e-12);
    /* M5 against the baseline (f1 0.8, f2 0.6): ret 0.9 and 0.8833.. */
    double r1 = q1 / 0.8, r2 = q2 / 0.6;
    assert_num(r, "vs_baseline.tasks.t1.delta", q1 - 0.8);
    assert_num(r, "vs_baseline.tasks.t1.retention", r1);
    assert_num(r, "vs_baseline.balance.std_ret", fabs(r1 - r2) / 2);
    assert_num(r, "vs_baseline.balance.worst_drop", fmax(0.8 - q1, 0.6 - q2));
    assert_num(r, "vs_baseline.balance.min_ret", fmin(r1, r2));
    assert_num(r, "vs_baseline.balance.std_acc", fabs(q1 - q2) / 2);
    assert_num(r, "vs_baseline.average.delta", (q1 + q2) / 2 - 0.7);
    assert_num(r, "vs_baseline.average.retention", ((q1 + q2) / 2) / 0.7);
    assert_int_equal(cJSON_GetArraySize(at(r, "flags")), 0);
    const cJSON *b = row_by_label(doc, L_BASE);
    assert_true(cJSON_IsTrue(at(b, "baseline")));
    assert_true(cJSON_IsNull(at(b, "vs_baseline")));
    assert_num(b, "average.value", 0.7);
    /* kmeans: 2 of 3 seeds done (version 1), one failed */
    const cJSON *k = row_by_label(doc, L_KM);
    assert_true(has_flag(k, "missing_seeds"));
    assert_true(has_flag(k, "failed_jobs"));
    assert_true(has_flag(k, "no_items"));
    assert_false(has_flag(k, "partial"));
    assert_num(k, "jobs.failed", 1);
    assert_num(k, "n_seeds", 2);
    assert_num(doc, "flags.missing_seeds", 1);
    cJSON_Delete(doc);
}

/* Holm against a plain O(n^2) implementation: adj(i) = min(1, max over j with p_j <= p_i (ties by
 * index) of (n - rank(j)) * p_j). */
static void holm_plain(const double *p, size_t n, double *adj)
{
    for (size_t i = 0; i < n; i++) {
        double best = 0.0;
        for (size_t j = 0; j < n; j++) {
            bool before = p[j] < p[i] || (p[j] == p[i] && j <= i);
            if (!before) {
                continue;
            }
            size_t rank = 0; /* how many come before j */
            for (size_t k = 0; k < n; k++) {
                rank += p[k] < p[j] || (p[k] == p[j] && k < j);
            }
            double v = (double)(n - rank) * p[j];
            best = v > best ? v : best;
        }
        adj[i] = best < 1.0 ? best : 1.0;
    }
}

static void test_holm(void **state)
{
    (void)state;
    /* by hand: sorted 0.005 0.01 0.03 0.04 -> 0.02 0.03 0.06 max(0.04, 0.06) */
    const double p[4] = {0.01, 0.04, 0.03, 0.005};
    double adj[4];
    assert_int_equal(cs_agg_holm(p, 4, adj, NULL), CS_OK);
    const double want[4] = {0.03, 0.06, 0.06, 0.02};
    for (int i = 0; i < 4; i++) {
        assert_true(fabs(adj[i] - want[i]) < 1e-15);
    }
    cs_rng r;
    cs_rng_seed(&r, 7);
    double q[50], a1[50], a2[50];
    for (int i = 0; i < 50; i++) {
        q[i] = i % 7 == 0 ? 0.02 : cs_rng_uniform(&r) * 0.1; /* with ties */
    }
    assert_int_equal(cs_agg_holm(q, 50, a1, NULL), CS_OK);
    holm_plain(q, 50, a2);
    for (int i = 0; i < 50; i++) {
        assert_true(a1[i] == a2[i]);
    }
    /* the p-value of a distribution entirely on one side */
    assert_true(fabs(cs_agg_pvalue(0, 10000, 10000) - 2.0 / 10001.0) < 1e-15);
    assert_true(cs_agg_pvalue(10000, 10000, 10000) == 1.0);
}

/* ---- the bootstrap against a naive one ---- */

typedef struct naive {
    double lo, hi, p, sd;
} naive;

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The percentile interval, p-value and standard deviation of b bootstrap statistics v
 * (sorted here), as docs/results.md defines them. */
static naive naive_summary(double *v, size_t b)
{
    size_t le = 0, ge = 0;
    double s1 = 0, s2 = 0;
    for (size_t k = 0; k < b; k++) {
        le += v[k] <= 1e-12;
        ge += v[k] >= -1e-12;
        s1 += v[k];
        s2 += v[k] * v[k];
    }
    qsort(v, b, sizeof(*v), dcmp);
    naive out = {v[(size_t)ceil(0.025 * (double)b) - 1], v[(size_t)ceil(0.975 * (double)b) - 1], 0,
                 sqrt(s2 / (double)b - (s1 / (double)b) * (s1 / (double)b))};
    size_t m = le < ge ? le : ge;
    out.p = fmin(1.0, 2.0 * ((double)m + 1) / ((double)b + 1));
    return out;
}

/* units u = 0..nu-1 of paired outcome vectors x[u][i], y[u][i], i < n: draw nu units with
 * replacement (nu > 1), then n item indices of each with replacement; statistic: the mean over the
 * drawn units of mean(x - y) (several tasks: their mean, each drawn independently). */
static naive naive_boot(const int *const *x, const int *const *y, size_t nu, size_t n_tasks,
                        size_t n, size_t b, uint64_t seed)
{
    cs_rng r;
    cs_rng_seed(&r, seed);
    double *v = malloc(b * sizeof(*v));
    for (size_t k = 0; k < b; k++) {
        double tot = 0;
        for (size_t j = 0; j < nu; j++) {
            size_t u = nu > 1 ? (size_t)cs_rng_below(&r, nu) : j;
            for (size_t t = 0; t < n_tasks; t++) {
                long d = 0;
                for (size_t i = 0; i < n; i++) {
                    size_t idx = (size_t)cs_rng_below(&r, n);
                    d += x[u * n_tasks + t][idx] - y[u * n_tasks + t][idx];
                }
                tot += (double)d / (double)n;
            }
        }
        v[k] = tot / (double)(nu * n_tasks);
    }
    naive out = naive_summary(v, b);
    free(v);
    return out;
}

/* Two independent estimates of the 2.5 % point of the same distribution each have the standard
 * error sd * sqrt(q (1 - q) / B) / phi(1.96) (phi the normal density, 0.0584): allow 5 of those
 * for the difference (sqrt 2 of them), plus one item's step (1/n) for the discreteness. */
static double boot_tolerance(double sd, size_t b, size_t n)
{
    return 5.0 * sqrt(2.0) * sd * sqrt(0.025 * 0.975 / (double)b) / 0.0584 + 1.0 / (double)n;
}

static double p_tolerance(double p, size_t b)
{
    return 5.0 * sqrt(2.0 * p * (1.0 - p) / (double)b) + 4.0 / (double)b;
}

static int xa[3][MAX_ITEMS], ya[3][MAX_ITEMS], xb[3][MAX_ITEMS], yb[3][MAX_ITEMS];

/* Outcomes with success rate p (deterministic: the test's own stream). */
static void fill(int *v, size_t n, double p, uint64_t seed)
{
    cs_rng r;
    cs_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        v[i] = cs_rng_uniform(&r) < p;
    }
}

#define A_RTN    "{\"algorithm\":{\"bits\":4,\"name\":\"rtn\"},\"selector\":null,\"seed\":null}"
#define A_RTN3   "{\"algorithm\":{\"bits\":3,\"name\":\"rtn\"},\"selector\":null,\"seed\":null}"
#define L_RTN    "algorithm=rtn(bits=4)"
#define SAMPLE   "aa00000000000000000000000000000000000000000000000000000000000000"
#define SAMPLE_B "bb00000000000000000000000000000000000000000000000000000000000000"

/* One gptq job against one rtn job, 500 items of t1 (and t2 for the average). */
static void build_pair(double px, double py, size_t n)
{
    n_fx = 0;
    fx_job *b = fx_add("done", true, A_BASE);
    fx_metric(b, "t1", "acc", 0.9, (int64_t)n);
    fx_metric(b, "t2", "acc", 0.9, (int64_t)n);
    fill(xa[0], n, px, 11);
    fill(ya[0], n, py, 12);
    fill(xb[0], n, px, 13);
    fill(yb[0], n, py, 14);
    fx_job *g = fx_add("done", false, A_RND("null"));
    fx_items(g, "t1", "acc", SAMPLE, n, xa[0]);
    fx_items(g, "t2", "acc", SAMPLE_B, n, xb[0]);
    fx_job *r = fx_add("done", false, A_RTN);
    fx_items(r, "t1", "acc", SAMPLE, n, ya[0]);
    fx_items(r, "t2", "acc", SAMPLE_B, n, yb[0]);
}

static cs_agg_opts ref_opts(const char *axis, const char *value)
{
    cs_agg_opts o;
    cs_agg_opts_init(&o);
    o.ref_axis = axis;
    o.ref_value = value;
    o.seed = 42;
    return o;
}

static void check_against_naive(const cJSON *cmp, const naive *nv, size_t b, size_t n)
{
    double tol = boot_tolerance(nv->sd, b, n);
    const cJSON *ci = at(cmp, "ci");
    double lo = cJSON_GetArrayItem(ci, 0)->valuedouble, hi = cJSON_GetArrayItem(ci, 1)->valuedouble;
    if (fabs(lo - nv->lo) > tol || fabs(hi - nv->hi) > tol ||
        fabs(num(cmp, "p") - nv->p) > p_tolerance(nv->p, b)) {
        print_error("CI [%g, %g] p %g; naive [%g, %g] p %g (tol %g, p tol %g)\n", lo, hi,
                    num(cmp, "p"), nv->lo, nv->hi, nv->p, tol, p_tolerance(nv->p, b));
        fail();
    }
}

static void test_bootstrap_vs_naive(void **state)
{
    (void)state;
    const size_t n = 500, b = 10000;
    build_pair(0.62, 0.58, n);
    cs_agg_opts o = ref_opts("algorithm", "rtn");
    cJSON *doc = run_ok(&o);
    const cJSON *g = row_by_label(doc, L_RND);
    assert_int_equal(num(g, "reference_row"), num(row_by_label(doc, L_RTN), "id"));
    const cJSON *c1 = at(g, "vs_reference.tasks.t1");
    assert_true(cJSON_IsTrue(at(c1, "tested")));
    const int *x[1] = {xa[0]}, *y[1] = {ya[0]};
    naive nv = naive_boot(x, y, 1, 1, n, b, 99);
    /* the observed delta is the difference of the means, exactly */
    long d = 0;
    for (size_t i = 0; i < n; i++) {
        d += xa[0][i] - ya[0][i];
    }
    assert_true(fabs(num(c1, "delta") - (double)d / (double)n) < 1e-12);
    check_against_naive(c1, &nv, b, n);
    /* the average: items resampled within each task */
    const int *x2[2] = {xa[0], xb[0]}, *y2[2] = {ya[0], yb[0]};
    naive na = naive_boot(x2, y2, 1, 2, n, b, 98);
    check_against_naive(at(g, "vs_reference.average"), &na, b, n);
    /* Holm over the table's tested comparisons (t1, t2, average), by the plain implementation */
    double p[3] = {num(c1, "p"), num(g, "vs_reference.tasks.t2.p"),
                   num(g, "vs_reference.average.p")};
    double adj[3];
    holm_plain(p, 3, adj);
    assert_true(num(c1, "p_holm") == adj[0]);
    assert_true(num(g, "vs_reference.tasks.t2.p_holm") == adj[1]);
    assert_true(num(g, "vs_reference.average.p_holm") == adj[2]);
    assert_int_equal(num(doc, "comparisons.tested"), 3);
    /* a task's interval does not depend on the other tasks (each has its own stream) */
    const char *only[] = {"t1"};
    o.tasks = only;
    o.n_tasks = 1;
    cJSON *alone = run_ok(&o);
    const cJSON *c1a = at(row_by_label(alone, L_RND), "vs_reference.tasks.t1");
    assert_true(cJSON_Compare(at(c1a, "ci"), at(c1, "ci"), true));
    assert_true(num(c1a, "p") == num(c1, "p"));
    cJSON_Delete(alone);
    o.tasks = NULL;
    o.n_tasks = 0;
    /* the same seed gives the same numbers; 1 thread gives what 2 give */
    o.threads = 1;
    cJSON *again = run_ok(&o);
    assert_true(cJSON_Compare(doc, again, true));
    cJSON_Delete(again);
    cJSON_Delete(doc);
}

/* Three seeds on each side: seed pairs, then items within each. */
static void test_bootstrap_seeds(void **state)
{
    (void)state;
    const size_t n = 300, b = 10000;
    n_fx = 0;
    fx_job *base = fx_add("done", true, A_BASE);
    fx_metric(base, "t1", "acc", 0.9, (int64_t)n);
    const char *rnd[3] = {A_RND("0"), A_RND("1"), A_RND("2")};
    const char *km[3] = {A_KM("0"), A_KM("1"), A_KM("2")};
    /* seeds that differ a lot: resampling them widens the interval well past the tolerance */
    const double px[3] = {0.50, 0.72, 0.62}, py[3] = {0.58, 0.57, 0.60};
    for (int s = 0; s < 3; s++) {
        fill(xa[s], n, px[s], 100 + (uint64_t)s);
        fill(ya[s], n, py[s], 200 + (uint64_t)s);
        fx_items(fx_add("done", false, km[s]), "t1", "acc", SAMPLE, n, xa[s]);
    }
    for (int s = 2; s >= 0; s--) { /* another job order: pairs go by seed, not by position */
        fx_items(fx_add("done", false, rnd[s]), "t1", "acc", SAMPLE, n, ya[s]);
    }
    cs_agg_opts o = ref_opts("selector", "random");
    cJSON *doc = run_ok(&o);
    const cJSON *c = at(row_by_label(doc, L_KM), "vs_reference.tasks.t1");
    assert_true(cJSON_IsTrue(at(c, "tested")));
    const int *x[3] = {xa[0], xa[1], xa[2]}, *y[3] = {ya[0], ya[1], ya[2]};
    naive nv = naive_boot(x, y, 3, 1, n, b, 5);
    check_against_naive(c, &nv, b, n);
    cJSON_Delete(doc);
}

static void test_identical_and_large(void **state)
{
    (void)state;
    const size_t n = 500;
    n_fx = 0;
    fx_add("done", true, A_BASE);
    fill(xa[0], n, 0.6, 1);
    fx_items(fx_add("done", false, A_RND("null")), "t1", "acc", SAMPLE, n, xa[0]);
    fx_items(fx_add("done", false, A_RTN), "t1", "acc", SAMPLE, n, xa[0]);
    cs_agg_opts o = ref_opts("algorithm", "rtn");
    cJSON *doc = run_ok(&o);
    const cJSON *c = at(row_by_label(doc, L_RND), "vs_reference.tasks.t1");
    const cJSON *ci = at(c, "ci");
    assert_true(cJSON_GetArrayItem(ci, 0)->valuedouble <= 0.0);
    assert_true(cJSON_GetArrayItem(ci, 1)->valuedouble >= 0.0);
    assert_true(num(c, "p") > 0.99);
    assert_string_equal(at(c, "mark")->valuestring, "");
    cJSON_Delete(doc);
    /* 70 % against 50 %: 20 points on 500 items */
    for (size_t i = 0; i < n; i++) {
        xa[0][i] = i % 10 < 7;
        ya[0][i] = i % 10 < 5;
    }
    n_fx = 0;
    fx_add("done", true, A_BASE);
    fx_items(fx_add("done", false, A_RND("null")), "t1", "acc", SAMPLE, n, xa[0]);
    fx_items(fx_add("done", false, A_RTN), "t1", "acc", SAMPLE, n, ya[0]);
    doc = run_ok(&o);
    c = at(row_by_label(doc, L_RND), "vs_reference.tasks.t1");
    assert_true(fabs(num(c, "delta") - 0.2) < 1e-12);
    assert_true(num(c, "p") < 0.001);
    assert_string_equal(at(c, "mark")->valuestring, "***");
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(cs_agg_print_text(doc, f, NULL), CS_OK);
    fclose(f);
    /* short labels: the selector is the same wherever it is set, the gptq and rtn rows are alone
     * with their names */
    assert_non_null(strstr(text, "\nall rows: selector=random\nrow "));
    assert_non_null(strstr(text, "\nalgorithm=gptq "));
    assert_non_null(strstr(text, "\nbaseline "));
    assert_non_null(strstr(text, "+20.0***"));
    assert_non_null(strstr(text, "reference algorithm=rtn"));
    free(text);
    /* the document travels in a message: it has a canonical text (no raw items, no NaN) */
    cs_buf canon = {0};
    assert_int_equal(cs_canon_append(doc, &canon, NULL), CS_OK);
    cs_buf_fini(&canon);
    cJSON_Delete(doc);
}

static void test_flags(void **state)
{
    (void)state;
    const size_t n = 40;
    fill(xa[0], n, 0.5, 3);
    n_fx = 0;
    fx_add("done", true, A_BASE);
    fx_items(fx_add("done", false, A_RND("0")), "t1", "acc", SAMPLE, n, xa[0]);
    fx_items(fx_add("done", false, A_RND("1")), "t1", "acc", SAMPLE, n, xa[0]);
    fx_items(fx_add("done", false, A_KM("0")), "t1", "acc", SAMPLE_B, n, xa[0]); /* other sample */
    fx_items(fx_add("done", false, A_KM("1")), "t1", "acc", SAMPLE_B, n, xa[0]);
    cs_agg_opts o = ref_opts("selector", "random");
    cJSON *doc = run_ok(&o);
    const cJSON *k = row_by_label(doc, L_KM);
    assert_true(has_flag(k, "unpaired"));
    assert_false(cJSON_IsTrue(at(k, "vs_reference.tasks.t1.tested")));
    assert_string_equal(at(k, "vs_reference.tasks.t1.reason")->valuestring, "unpaired");
    assert_true(cJSON_IsNull(at(k, "vs_reference.tasks.t1.p")));
    assert_int_equal(num(doc, "comparisons.tested"), 0);
    cJSON_Delete(doc);
    /* a pending job: partial, and the comparison is not tested */
    fx_add("pending", false, A_KM("2"));
    fx[3].o[0].sample = SAMPLE;
    fx[4].o[0].sample = SAMPLE;
    doc = run_ok(&o);
    k = row_by_label(doc, L_KM);
    assert_true(has_flag(k, "partial"));
    assert_true(has_flag(k, "missing_seeds"));
    assert_string_equal(at(k, "vs_reference.tasks.t1.reason")->valuestring, "flagged");
    /* the random row has 2 of the sweep's 3 seeds too */
    assert_true(has_flag(row_by_label(doc, L_RND), "missing_seeds"));
    cJSON_Delete(doc);
}

/* No jobs (a sweep just submitted with nothing stored yet): an aggregate with no rows, printable.
 */
static void test_empty(void **state)
{
    (void)state;
    cJSON *doc = NULL;
    assert_int_equal(cs_agg_run(jobs, 0, NULL, &doc, NULL), CS_OK);
    assert_int_equal(cJSON_GetArraySize(at(doc, "rows")), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(cs_agg_print_text(doc, f, NULL), CS_OK);
    fclose(f);
    assert_non_null(strstr(text, "row"));
    free(text);
    cJSON_Delete(doc);
    /* a job without a state or axes counts as unfinished */
    n_fx = 0;
    fx_job *j = fx_add("done", false, NULL);
    j->job.state = NULL;
    doc = run_ok(NULL);
    assert_true(has_flag(cJSON_GetArrayItem(at(doc, "rows"), 0), "partial"));
    cJSON_Delete(doc);
    assert_int_equal(cs_agg_print_text(at(doc = cJSON_CreateObject(), ""), stderr, NULL),
                     CS_EINVAL);
    cJSON_Delete(doc);
}

static void expect_einval(const cs_agg_opts *o, const char *want)
{
    cJSON *doc = NULL;
    cs_err err = {0};
    assert_int_equal(cs_agg_run(jobs, fx_jobs(), o, &doc, &err), CS_EINVAL);
    assert_null(doc);
    if (strstr(err.msg, want) == NULL) {
        print_error("message [%s] lacks [%s]\n", err.msg, want);
        fail();
    }
}

static void test_bad_input(void **state)
{
    (void)state;
    build_pair(0.6, 0.5, 50);
    fx_items(fx_add("done", false, A_RTN3), "t1", "acc", SAMPLE, 50, xa[0]);
    cs_agg_opts o;
    cs_agg_opts_init(&o);
    const char *by[] = {"algoritm"};
    o.by = by;
    o.n_by = 1;
    expect_einval(&o, "--by algoritm: no such axis; axes: algorithm, seed, selector");
    cs_agg_opts_init(&o);
    const char *tasks[] = {"t3"};
    o.tasks = tasks;
    o.n_tasks = 1;
    expect_einval(&o, "--task t3: no such task; tasks: t1, t2");
    cs_agg_opts_init(&o);
    o.metric = "acc_nrm";
    expect_einval(&o, "--metric acc_nrm: no task has it; metrics: acc");
    o = ref_opts("selectr", "random");
    expect_einval(&o, "--reference selectr=random: no such axis; axes: algorithm, seed, selector");
    o = ref_opts("algorithm", "awq");
    expect_einval(&o, "--reference algorithm=awq: no row has algorithm=awq; values: none, "
                      "gptq(bits=4), rtn(bits=4), rtn(bits=3)");
    /* the label form the table shows is a value --reference takes */
    o = ref_opts("algorithm", "rtn(bits=3)");
    cJSON *by_label = run_ok(&o);
    assert_int_equal(num(row_by_label(by_label, L_RND), "reference_row"),
                     num(row_by_label(by_label, "algorithm=rtn(bits=3)"), "id"));
    cJSON_Delete(by_label);
    /* rtn with bits 4 and 3 both match "rtn": gptq bits 4 prefers rtn bits 4, so that works */
    o = ref_opts("algorithm", "rtn");
    cJSON *doc = run_ok(&o);
    assert_int_equal(num(row_by_label(doc, L_RND), "reference_row"),
                     num(row_by_label(doc, L_RTN), "id"));
    cJSON_Delete(doc);
    /* the baseline can be the reference (its null axes match every row of its model) */
    o = ref_opts("algorithm", "none");
    doc = run_ok(&o);
    assert_int_equal(num(row_by_label(doc, L_RND), "reference_row"),
                     num(row_by_label(doc, L_BASE), "id"));
    assert_string_equal(at(row_by_label(doc, L_RND), "vs_reference.tasks.t1.reason")->valuestring,
                        "no_items");
    cJSON_Delete(doc);
    /* a JSON value matches too (any member order): then gptq bits 4 is compared with rtn bits 3 */
    o = ref_opts("algorithm", "{\"name\":\"rtn\",\"bits\":3}");
    doc = run_ok(&o);
    assert_int_equal(num(row_by_label(doc, L_RND), "reference_row"),
                     num(row_by_label(doc, "algorithm=rtn(bits=3)"), "id"));
    cJSON_Delete(doc);
    /* without the shared parameter, two rtn rows are ambiguous: that row is flagged, no error */
    fx[1].job.axes = "{\"algorithm\":{\"name\":\"gptq\"},\"selector\":\"random\",\"seed\":null}";
    o = ref_opts("algorithm", "rtn");
    doc = run_ok(&o);
    const cJSON *g = row_by_label(doc, "algorithm=gptq selector=random");
    assert_true(has_flag(g, "no_reference"));
    assert_true(cJSON_IsNull(at(g, "reference_row")));
    assert_true(cJSON_IsNull(at(g, "vs_reference")));
    assert_string_equal(at(g, "no_reference.reason")->valuestring, "several_candidates");
    assert_string_equal(
            at(g, "no_reference.message")->valuestring,
            "several rows match algorithm=rtn: rtn(bits=4) (row 2), rtn(bits=3) (row 3)");
    assert_int_equal(num(doc, "flags.no_reference"), 1);
    cJSON_Delete(doc);
}

/* The demo's shape: RTN at 4 and 3 bits, each per-row (group_size -1, grid gptq) and with groups
 * of 64 (grid awq); GPTQ per-row, AWQ g64 and SmoothQuant W8 against --reference algorithm=rtn.
 * Each calibrated row gets the RTN row with its bits and group_size; SmoothQuant (bits 8: no RTN
 * row shares it) is flagged no_reference and the table still comes out. */
#define D_AX(alg, sel) "{\"algorithm\":" alg ",\"model\":\"m\",\"selector\":" sel ",\"seed\":null}"
#define D_RTN(b, grid, g)                                          \
    D_AX("{\"bits\":" b ",\"grid\":\"" grid "\",\"group_size\":" g \
         ",\"name\":\"rtn\",\"sym\":false}",                       \
         "null")
#define D_SEL "{\"name\":\"random\",\"stratified\":false}"

static void build_demo(void)
{
    n_fx = 0;
    static const char *const axes[] = {
            D_AX("{\"name\":\"none\"}", "null"),
            D_RTN("4", "gptq", "-1"),
            D_RTN("3", "gptq", "-1"),
            D_RTN("4", "awq", "64"),
            D_RTN("3", "awq", "64"),
            D_AX("{\"bits\":4,\"group_size\":-1,\"name\":\"gptq\",\"sym\":false}", D_SEL),
            D_AX("{\"bits\":3,\"group_size\":-1,\"name\":\"gptq\",\"sym\":false}", D_SEL),
            D_AX("{\"bits\":4,\"group_size\":64,\"name\":\"awq\",\"zero_point\":true}", D_SEL),
            D_AX("{\"act_bits\":8,\"bits\":8,\"name\":\"smoothquant\"}", D_SEL),
    };
    for (size_t i = 0; i < sizeof(axes) / sizeof(*axes); i++) {
        fill(xa[0], 40, 0.5 + 0.02 * (double)i, 300 + i);
        fx_items(fx_add("done", i == 0, axes[i]), "t1", "acc", SAMPLE, 40, xa[0]);
    }
}

static void test_demo_reference(void **state)
{
    (void)state;
    build_demo();
    cs_agg_opts o = ref_opts("algorithm", "rtn");
    o.resamples = 200;
    cJSON *doc = run_ok(&o);
    const cJSON *rows = at(doc, "rows");
    /* rows in job order: 0 baseline, 1-4 rtn (4/-1, 3/-1, 4/64, 3/64), 5 gptq 4, 6 gptq 3,
     * 7 awq 4 g64, 8 smoothquant */
    const int want_ref[9] = {-1, -1, -1, -1, -1, 1, 2, 3, -1};
    for (int r = 0; r < 9; r++) {
        const cJSON *row = cJSON_GetArrayItem(rows, r);
        if (want_ref[r] < 0) {
            assert_true(cJSON_IsNull(at(row, "reference_row")));
            assert_true(cJSON_IsNull(at(row, "vs_reference")));
        } else {
            assert_int_equal(num(row, "reference_row"), want_ref[r]);
            assert_true(cJSON_IsTrue(at(row, "vs_reference.tasks.t1.tested")));
        }
        assert_int_equal(has_flag(row, "no_reference"), r == 8);
    }
    const cJSON *sq = cJSON_GetArrayItem(rows, 8);
    assert_string_equal(at(sq, "no_reference.reason")->valuestring, "several_candidates");
    const cJSON *cand = at(sq, "no_reference.candidates");
    assert_int_equal(cJSON_GetArraySize(cand), 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cJSON_GetArrayItem(cand, i)->valueint, i + 1);
    }
    assert_non_null(strstr(at(sq, "no_reference.message")->valuestring,
                           "rtn(bits=4,grid=\"gptq\",group_size=-1,sym=false) (row 1)"));
    assert_int_equal(num(doc, "comparisons.tested"), 6); /* 3 rows x (t1, average) */
    /* the JSON keeps the full label */
    assert_string_equal(at(cJSON_GetArrayItem(rows, 5), "label")->valuestring,
                        "algorithm=gptq(bits=4,group_size=-1,sym=false) model=m "
                        "selector=random(stratified=false)");
    cJSON_Delete(doc);
}

/* The text table of the demo's shape: the common axes once, short labels, aligned columns, and
 * the no_reference row's candidates below. */
static void test_text_labels(void **state)
{
    (void)state;
    build_demo();
    cs_agg_opts o = ref_opts("algorithm", "rtn");
    o.resamples = 200;
    cJSON *doc = run_ok(&o);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(cs_agg_print_text(doc, f, NULL), CS_OK);
    fclose(f);
    /* line 0: the reference; 1: the common axes; 2: the header; 3..11: the rows; 12: the note */
    char *lines[16];
    size_t n = 0;
    for (char *p = text, *nl; n < 16 && (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        *nl = '\0';
        lines[n++] = p;
    }
    assert_int_equal(n, 13);
    assert_string_equal(lines[1], "all rows: model=m selector=random");
    const char *want[9] = {"baseline ",
                           "algorithm=rtn(bits=4,grid=gptq,group_size=-1) ",
                           "algorithm=rtn(bits=3,grid=gptq,group_size=-1) ",
                           "algorithm=rtn(bits=4,grid=awq,group_size=64) ",
                           "algorithm=rtn(bits=3,grid=awq,group_size=64) ",
                           "algorithm=gptq(bits=4) ",
                           "algorithm=gptq(bits=3) ",
                           "algorithm=awq ",
                           "algorithm=smoothquant "};
    for (size_t r = 0; r < 9; r++) {
        if (strncmp(lines[3 + r], want[r], strlen(want[r])) != 0) {
            print_error("row %zu: [%s], want [%s...]\n", r, lines[3 + r], want[r]);
            fail();
        }
    }
    assert_non_null(strstr(lines[11], "  no_reference"));
    /* aligned: the flags column starts at the same place on the header and every row */
    size_t col = (size_t)(strstr(lines[2], "  flags") - lines[2]);
    for (size_t r = 3; r < 12; r++) {
        assert_true(strlen(lines[r]) > col + 2);
        assert_true(lines[r][col] == ' ' && lines[r][col + 1] == ' ' && lines[r][col + 2] != ' ');
        assert_true(lines[r][col - 1] != ' ');
    }
    assert_string_equal(lines[12], "no_reference [algorithm=smoothquant]: several rows match "
                                   "algorithm=rtn: rtn(bits=4,grid=gptq,group_size=-1), "
                                   "rtn(bits=3,grid=gptq,group_size=-1), "
                                   "rtn(bits=4,grid=awq,group_size=64), "
                                   "rtn(bits=3,grid=awq,group_size=64)");
    free(text);
    cJSON_Delete(doc);
}

/* *text = cs_agg_print_text's table of an aggregate (owned, free); *len its length. */
static void table(const cJSON *doc, char **text, size_t *len)
{
    FILE *f = open_memstream(text, len);
    assert_non_null(f);
    assert_int_equal(cs_agg_print_text(doc, f, NULL), CS_OK);
    assert_int_equal(fclose(f), 0);
}

/* Whether every member of slim is in full with an equal value (slim is full minus members). */
static bool is_part(const cJSON *slim, const cJSON *full)
{
    if (cJSON_IsArray(slim) && cJSON_IsArray(full)) {
        const cJSON *f = full->child, *m;
        cJSON_ArrayForEach(m, slim)
        {
            if (f == NULL || !is_part(m, f)) {
                return false;
            }
            f = f->next;
        }
        return f == NULL;
    }
    if (cJSON_IsObject(slim) && cJSON_IsObject(full)) {
        const cJSON *m;
        cJSON_ArrayForEach(m, slim)
        {
            if (!is_part(m, cJSON_GetObjectItemCaseSensitive(full, m->string))) {
                print_error("member %s differs\n", m->string);
                return false;
            }
        }
        return true;
    }
    return cJSON_Compare(slim, full, true);
}

/* The slim aggregate (opts.slim) prints the same table as the full one, on every fixture shape:
 * with and without a reference, baseline rows, no_reference rows, flags and several tasks. */
static void test_slim_text(void **state)
{
    (void)state;
    for (int c = 0; c < 5; c++) {
        cs_agg_opts o;
        if (c < 2) {
            build_demo();
            o = c == 0 ? ref_opts("algorithm", "rtn") : ref_opts(NULL, NULL);
            o.resamples = 200;
        } else if (c < 4) {
            build_pair(0.7, 0.6, 200);
            o = c == 2 ? ref_opts("selector", "random") : ref_opts(NULL, NULL);
            o.resamples = 100;
        } else {
            build_pair(0.7, 0.6, 40);
            fx_add("failed", false, A_RTN3);
            fx_add("pending", false, A_RND("1"));
            o = ref_opts("selector", "random");
            o.resamples = 100;
        }
        cJSON *full = run_ok(&o);
        o.slim = true;
        cJSON *slim = run_ok(&o);
        char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        table(full, &a, &la);
        table(slim, &b, &lb);
        if (strcmp(a, b) != 0) {
            print_error("case %d: full\n%s\nslim\n%s\n", c, a, b);
            fail();
        }
        assert_true(strlen(a) > 100);
        assert_true(is_part(slim, full));
        /* slim leaves the jobs, the metrics' moments and vs_baseline.tasks out */
        const cJSON *r = cJSON_GetArrayItem(at(slim, "rows"), 1);
        assert_null(cJSON_GetObjectItemCaseSensitive(r, "jobs"));
        assert_null(cJSON_GetObjectItemCaseSensitive(at(r, "tasks.t1"), "metrics"));
        assert_null(cJSON_GetObjectItemCaseSensitive(at(r, "average"), "mean"));
        assert_non_null(cJSON_GetObjectItemCaseSensitive(at(r, "tasks.t1"), "value"));
        char *js = cJSON_PrintUnformatted(slim), *jf = cJSON_PrintUnformatted(full);
        assert_true(strlen(js) < strlen(jf));
        cs_free_each((void *const[]){a, b, js, jf}, 4);
        cJSON_Delete(full);
        cJSON_Delete(slim);
    }
}

/* The table's numbers against printf's: a document with one row per value x, whose cells show x
 * as "%.1f" of 100 x (accuracy), "%.3f" (perplexity, retentions) and "%+.1f" (the delta): random
 * values of every size, values next to and on rounding ties, negative zero. */
static void test_text_numbers(void **state)
{
    (void)state;
    enum { N = 6000 };
    static double xs[N];
    cs_rng r;
    cs_rng_seed(&r, 77);
    for (size_t i = 0; i < N; i++) {
        double u = cs_rng_uniform(&r), e = pow(10.0, (double)(i % 14) - 6.0);
        switch (i % 4) {
        case 0: /* random, 1e-6 .. 1e7, either sign */
            xs[i] = (u - 0.5) * e;
            break;
        case 1: /* exact binary ties at 3 and (x100) 1 decimals: k / 2^j */
            xs[i] = (double)(i % 4096) / (double)(1u << (3 + i % 9)) * (u < 0.5 ? -1 : 1);
            break;
        case 2: /* decimal ties, not exact in binary: (k + 0.5) / 1000 */
            xs[i] = ((double)(i % 20000) + 0.5) / (i % 8 < 4 ? 1000.0 : 10.0);
            break;
        default: /* one ulp around them */
            xs[i] = nextafter(((double)(i % 20000) + 0.5) / 1000.0, u < 0.5 ? 0.0 : 1e9);
            break;
        }
    }
    xs[3] = -0.0;
    xs[7] = -0.0004;
    xs[11] = 1e9 + 0.25;
    cJSON *doc = cJSON_Parse("{\"by\":[],\"tasks\":[{\"name\":\"a\",\"headline\":\"acc\","
                             "\"kind\":\"accuracy\"},{\"name\":\"p\",\"headline\":\"ppl\","
                             "\"kind\":\"perplexity\"}],\"rows\":[]}");
    cJSON *rows = cJSON_GetObjectItemCaseSensitive(doc, "rows");
    for (size_t i = 0; i < N; i++) {
        char row[512];
        double x = xs[i];
        snprintf(row, sizeof(row),
                 "{\"n_seeds\":1,\"tasks\":{\"a\":{\"value\":%.17g},\"p\":{\"value\":%.17g}},"
                 "\"vs_baseline\":{\"average\":{\"delta\":%.17g},\"balance\":{\"std_ret\":%.17g,"
                 "\"worst_drop\":%.17g,\"min_ret\":%.17g}},\"flags\":[]}",
                 x, x, x, x, x, x);
        cJSON *o = cJSON_Parse(row); /* %.17g reads back as x, -0 included */
        assert_non_null(o);
        assert_true(memcmp(&at(o, "tasks.a.value")->valuedouble, &x, sizeof(x)) == 0);
        cJSON_AddItemToArray(rows, o);
    }
    char *text = NULL;
    size_t len = 0;
    table(doc, &text, &len);
    char *p = strchr(text, '\n') + 1; /* after the header */
    for (size_t i = 0; i < N; i++) {
        double x = xs[i];
        char want[6][64], got[11][64];
        snprintf(want[0], 64, "%.1f", 100.0 * x);
        snprintf(want[1], 64, "%.3f", x);
        snprintf(want[2], 64, "%+.1f", 100.0 * x);
        snprintf(want[3], 64, "%.3f", x);
        snprintf(want[4], 64, "%.1f", 100.0 * x);
        snprintf(want[5], 64, "%.3f", x);
        /* label, seeds, a, p, avg, d_base, std_ret, worst_drop, min_ret, d_ref, flags */
        assert_int_equal(sscanf(p, "%63s %63s %63s %63s %63s %63s %63s %63s %63s %63s %63s", got[0],
                                got[1], got[2], got[3], got[4], got[5], got[6], got[7], got[8],
                                got[9], got[10]),
                         11);
        const int col[6] = {2, 3, 5, 6, 7, 8};
        for (size_t k = 0; k < 6; k++) {
            if (strcmp(got[col[k]], want[k]) != 0) {
                print_error("x %.17g: cell %d [%s], printf [%s]\n", x, col[k], got[col[k]],
                            want[k]);
                fail();
            }
        }
        assert_string_equal(got[1], "1");
        p = strchr(p, '\n') + 1;
    }
    free(text);
    cJSON_Delete(doc);
}

/* cs_agg_print_json's text of doc must be cJSON_PrintUnformatted's and a newline. */
static void same_as_cjson(const cJSON *doc)
{
    char *text = NULL, *want = cJSON_PrintUnformatted(doc);
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_non_null(want);
    assert_int_equal(cs_agg_print_json(doc, f, NULL), CS_OK);
    assert_int_equal(fclose(f), 0);
    if (len != strlen(want) + 1 || memcmp(text, want, len - 1) != 0 || text[len - 1] != '\n') {
        size_t i = 0;
        while (text[i] == want[i]) {
            i++;
        }
        print_error("differs at %zu: [%.60s] cJSON [%.60s]\n", i, text + i, want + i);
        fail();
    }
    cs_free_each((void *const[]){text, want}, 2);
}

/* --json's writer against cJSON's printer: the fixtures' aggregates, full and slim, and a
 * document of numbers of every kind (integers, ints past INT_MAX, values that need 17 digits,
 * tiny, huge, -0, NaN) and strings with every escape. */
static void test_print_json(void **state)
{
    (void)state;
    for (int c = 0; c < 4; c++) {
        cs_agg_opts o;
        if (c < 2) {
            build_demo();
            o = ref_opts("algorithm", "rtn");
        } else {
            build_pair(0.7, 0.6, 200);
            o = ref_opts(NULL, NULL);
        }
        o.resamples = 100;
        o.slim = c % 2 == 1;
        cJSON *doc = run_ok(&o);
        same_as_cjson(doc);
        cJSON_Delete(doc);
    }
    cJSON *doc = cJSON_CreateObject(), *nums = cJSON_CreateArray();
    cs_rng r;
    cs_rng_seed(&r, 5);
    for (int i = 0; i < 20000; i++) {
        double u = cs_rng_uniform(&r), x;
        switch (i % 5) {
        case 0:
            x = floor((u - 0.5) * 1e6);
            break;
        case 1:
            x = (u - 0.5) * pow(10.0, (double)(i % 40) - 20.0);
            break;
        case 2:
            x = floor(u * 1e15) / 1e3;
            break;
        case 3:
            x = ldexp(u, i % 2000 - 1000);
            break;
        default:
            x = (double)(i % 1000) / 1000.0 + 1.0 / 3.0;
            break;
        }
        cJSON_AddItemToArray(nums, cJSON_CreateNumber(x));
    }
    const double special[] = {0.0,
                              -0.0,
                              1.0,
                              -1.0,
                              2147483647.0,
                              2147483648.0,
                              -2147483648.0,
                              -2147483649.0,
                              1e300,
                              -1e-300,
                              5e-324,
                              DBL_MAX,
                              0.1,
                              1.0 / 3.0,
                              NAN,
                              INFINITY,
                              9007199254740993.0};
    for (size_t i = 0; i < sizeof(special) / sizeof(*special); i++) {
        cJSON_AddItemToArray(nums, cJSON_CreateNumber(special[i]));
    }
    cJSON_AddItemToObject(doc, "nums", nums);
    cJSON_AddItemToObject(doc, "s\"k\\",
                          cJSON_CreateString("q\" b\\ \b\f\n\r\t \x01\x1f\x7f \xc3\xa9 / end"));
    cJSON_AddItemToObject(doc, "e", cJSON_CreateString(""));
    cJSON_AddItemToObject(doc, "o", cJSON_CreateObject());
    cJSON_AddItemToObject(doc, "a", cJSON_CreateArray());
    cJSON_AddItemToObject(doc, "raw", cJSON_CreateRaw("{\"x\":1}"));
    cJSON_AddItemToObject(doc, "t", cJSON_CreateTrue());
    cJSON_AddItemToObject(doc, "n", cJSON_CreateNull());
    same_as_cjson(doc);
    cJSON_Delete(doc);
    /* jobs.seeds: each seed as cJSON_Parse reads its canonical text */
    static const char *const seeds[] = {
            "0",     "7",     "-3",  "-12", "1.5", "123456789012345", "1234567890123456789",
            "\"s\"", "[1,2]", "null"};
    n_fx = 0;
    for (size_t i = 0; i < sizeof(seeds) / sizeof(*seeds); i++) {
        static char axes[10][128];
        snprintf(axes[i], sizeof(axes[i]), "{\"selector\":\"random\",\"seed\":%s}", seeds[i]);
        fx_add("done", false, axes[i]);
    }
    doc = run_ok(NULL);
    const cJSON *got = at(cJSON_GetArrayItem(at(doc, "rows"), 0), "jobs.seeds");
    assert_int_equal(cJSON_GetArraySize(got), 10);
    for (size_t i = 0; i < sizeof(seeds) / sizeof(*seeds); i++) {
        cJSON *want = cJSON_Parse(seeds[i]);
        const cJSON *g = cJSON_GetArrayItem(got, (int)i);
        char *pg = cJSON_PrintUnformatted(g), *pw = cJSON_PrintUnformatted(want);
        assert_string_equal(pg, pw);
        assert_true(g->valueint == want->valueint && g->type == want->type);
        cs_free_each((void *const[]){pg, pw}, 2);
        cJSON_Delete(want);
    }
    cJSON_Delete(doc);
    /* what cJSON refuses to print, refused */
    cJSON bad = {0};
    bad.type = cJSON_Raw;
    cs_err err = {0};
    FILE *f = fopen("/dev/null", "w");
    assert_non_null(f);
    assert_int_equal(cs_agg_print_json(&bad, f, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "raw without text"));
    assert_int_equal(cs_agg_print_json(NULL, f, NULL), CS_EINVAL);
    fclose(f);
}

/* The sampler against exact probabilities: with one pair of jobs, the resampled difference is
 * D / n with (n-, n0, n+) ~ multinomial(n; observed frequencies) and D = n+ - n-. The test sums
 * the trinomial probabilities (log space) for P(D <= 0) and P(D >= 0), and compares the
 * product's p-value, 2 min(P) with the +1 correction, at 100,000 resamples within 5 Monte Carlo
 * standard deviations. The counts exercise both branches of the binomial sampler (n p < 10 and
 * the search from the mode) and both tails. */
static double lfact(int k)
{
    return lgamma((double)k + 1.0);
}

static void test_sampler_exact(void **state)
{
    (void)state;
    /* {minus, zero, plus} counts; the value of "plus" (1: the tabulated path; 2: the stages) */
    const struct {
        uint32_t count[3];
        double plus;
    } cases[] = {{{20, 150, 30}, 1}, {{4, 180, 16}, 1}, {{70, 60, 70}, 1},
                 {{45, 120, 35}, 1}, {{2, 55, 3}, 1},   {{0, 90, 10}, 1},
                 {{30, 140, 30}, 2}, {{3, 150, 2}, 2},  {{60, 80, 25}, 2}};
    const size_t b = 100000;
    for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
        const double values[3] = {-1.0, 0.0, cases[c].plus};
        int nm = (int)cases[c].count[0], n0 = (int)cases[c].count[1], np = (int)cases[c].count[2];
        int n = nm + n0 + np;
        double pm = (double)nm / n, p0 = (double)n0 / n, pp = (double)np / n;
        double le = 0.0, ge = 0.0;
        for (int a = 0; a <= n; a++) {
            for (int k = 0; a + k <= n; k++) { /* a minus, k plus */
                if ((a > 0 && pm == 0) || (k > 0 && pp == 0) || (n - a - k > 0 && p0 == 0)) {
                    continue;
                }
                double lp = lfact(n) - lfact(a) - lfact(k) - lfact(n - a - k);
                lp += (a ? a * log(pm) : 0) + (k ? k * log(pp) : 0) +
                      (n - a - k ? (n - a - k) * log(p0) : 0);
                double pr = exp(lp), stat = (double)k * cases[c].plus - (double)a;
                le += stat <= 0 ? pr : 0;
                ge += stat >= 0 ? pr : 0;
            }
        }
        double pl = fmin(le, ge), want = fmin(1.0, 2.0 * pl);
        cs_agg_hist cell = {3, cases[c].count, values};
        cs_agg_ci ci;
        assert_int_equal(cs_agg_boot(&cell, 1, 1, b, 1234 + c, &ci, NULL), CS_OK);
        double tol = 5.0 * 2.0 * sqrt(pl * (1.0 - pl) / (double)b) + 4.0 / (double)b;
        if (fabs(ci.p - want) > tol) {
            print_error("case %zu: p %g, exact %g (tol %g)\n", c, ci.p, want, tol);
            fail();
        }
        assert_true(fabs(ci.delta - ((double)np * cases[c].plus - nm) / n) < 1e-15);
        assert_true(ci.lo <= ci.delta && ci.delta <= ci.hi);
    }
}

/* The sampler's three paths against a naive bootstrap of item indices: a cell whose values have
 * no law (five categories: the stages), an average over tasks of different sizes (off a common
 * lattice: values and selection instead of a histogram), and one unit. A cell is given as its
 * histogram; the naive one expands it into n items and draws n indices. */
static naive naive_cells(const cs_agg_hist *cells, size_t n_tasks, size_t b, uint64_t seed)
{
    cs_rng r;
    cs_rng_seed(&r, seed);
    double *v = malloc(b * sizeof(*v)), *items[4];
    size_t n[4];
    for (size_t t = 0; t < n_tasks; t++) {
        n[t] = 0;
        items[t] = malloc(MAX_ITEMS * sizeof(double));
        for (size_t c = 0; c < cells[t].n_cat; c++) {
            for (uint32_t k = 0; k < cells[t].count[c]; k++) {
                items[t][n[t]++] = cells[t].value[c];
            }
        }
    }
    for (size_t k = 0; k < b; k++) {
        double tot = 0;
        for (size_t t = 0; t < n_tasks; t++) {
            double d = 0;
            for (size_t i = 0; i < n[t]; i++) {
                d += items[t][cs_rng_below(&r, n[t])];
            }
            tot += d / (double)n[t];
        }
        v[k] = tot / (double)n_tasks;
    }
    naive out = naive_summary(v, b);
    for (size_t t = 0; t < n_tasks; t++) {
        free(items[t]);
    }
    free(v);
    return out;
}

static void check_ci(const cs_agg_ci *ci, const naive *nv, size_t b, size_t n)
{
    double tol = boot_tolerance(nv->sd, b, n);
    if (fabs(ci->lo - nv->lo) > tol || fabs(ci->hi - nv->hi) > tol ||
        fabs(ci->p - nv->p) > p_tolerance(nv->p, b)) {
        print_error("CI [%g, %g] p %g; naive [%g, %g] p %g (tol %g)\n", ci->lo, ci->hi, ci->p,
                    nv->lo, nv->hi, nv->p, tol);
        fail();
    }
}

static void test_sampler_paths(void **state)
{
    (void)state;
    const size_t b = 10000;
    /* five categories (three seeds against one job: values s / 3 - t), 300 items */
    static const double v5[5] = {-1.0, -1.0 / 3.0, 0.0, 1.0 / 3.0, 2.0 / 3.0};
    static const uint32_t c5[5] = {30, 45, 150, 50, 25};
    cs_agg_hist five = {5, c5, v5};
    cs_agg_ci ci;
    assert_int_equal(cs_agg_boot(&five, 1, 1, b, 7, &ci, NULL), CS_OK);
    naive nv = naive_cells(&five, 1, b, 70);
    check_ci(&ci, &nv, b, 300);
    /* two tasks of 500 and 300 items: the average is off a common lattice */
    static const double v3[3] = {-1.0, 0.0, 1.0};
    static const uint32_t ca[3] = {40, 400, 60}, cb[3] = {45, 220, 35};
    cs_agg_hist two[2] = {{3, ca, v3}, {3, cb, v3}};
    assert_int_equal(cs_agg_boot(two, 1, 2, b, 8, &ci, NULL), CS_OK);
    nv = naive_cells(two, 2, b, 80);
    check_ci(&ci, &nv, b, 300);
    assert_true(fabs(ci.delta - (20.0 / 500.0 - 10.0 / 300.0) / 2.0) < 1e-15);
    /* a warm cache (the laws of these cells already built) gives what a fresh one gives */
    const cs_agg_hist *by_task[2] = {&two[0], &two[1]};
    const uint64_t seeds[2] = {11, 12};
    cs_agg_ci fresh[3], warm[3];
    cs_agg_boot_cache *c = cs_agg_boot_cache_new();
    assert_non_null(c);
    assert_int_equal(cs_agg_boot_tasks(by_task, 1, 2, true, 2000, 5, seeds, c, fresh, NULL), CS_OK);
    assert_int_equal(cs_agg_boot_tasks(by_task, 1, 2, true, 2000, 5, seeds, c, warm, NULL), CS_OK);
    assert_memory_equal(fresh, warm, sizeof(fresh));
    /* no cache, no bootstrap */
    assert_int_equal(cs_agg_boot_tasks(by_task, 1, 2, true, 2000, 5, seeds, NULL, warm, NULL),
                     CS_EINVAL);
    cs_agg_boot_cache_destroy(c);
}

/* Members (cs_agg_job.members) instead of axes texts: each job's axes split into canonical
 * '"name":value' texts, kept in pool (shared: equal texts share one pointer, as the store gives
 * them; else one copy per job). */
static char *pool[1024];
static const char *mptr[64][16];
static size_t n_pool;

static const char *pool_add(const char *text, bool shared)
{
    for (size_t i = 0; shared && i < n_pool; i++) {
        if (strcmp(pool[i], text) == 0) {
            return pool[i];
        }
    }
    assert_true(n_pool < sizeof(pool) / sizeof(*pool));
    pool[n_pool] = strdup(text);
    assert_non_null(pool[n_pool]);
    return pool[n_pool++];
}

static void pool_free(void)
{
    for (size_t i = 0; i < n_pool; i++) {
        free(pool[i]);
    }
    n_pool = 0;
}

/* jobs[] from fx with members: every job (odd = false: only the odd ones). The axes text is
 * replaced by one that cannot be read, so only the members count. */
static void to_members(size_t n, bool shared, bool all)
{
    for (size_t j = 0; j < n; j++) {
        if (!all && j % 2 == 0) {
            continue;
        }
        cJSON *ax = cJSON_Parse(jobs[j].axes);
        const cJSON *c;
        size_t k = 0;
        assert_non_null(ax);
        cJSON_ArrayForEach(c, ax)
        {
            cJSON *name = cJSON_CreateString(c->string);
            cs_buf b = {0};
            assert_int_equal(cs_canon_append(name, &b, NULL), CS_OK);
            assert_int_equal(cs_buf_putc(&b, ':'), CS_OK);
            assert_int_equal(cs_canon_append(c, &b, NULL), CS_OK);
            mptr[j][k++] = pool_add(b.data, shared);
            cs_buf_fini(&b);
            cJSON_Delete(name);
        }
        cJSON_Delete(ax);
        jobs[j].members = mptr[j];
        jobs[j].n_members = k;
        jobs[j].axes = "not read";
    }
}

/* The aggregate of the fixture as text: mode 0 axes texts, 1 shared members, 2 a copy of each
 * member per job, 3 every other job with members. */
static char *agg_text(const cs_agg_opts *o, int mode)
{
    cJSON *doc = NULL;
    cs_err err = {0};
    size_t n = fx_jobs();
    if (mode > 0) {
        to_members(n, mode != 2, mode != 3);
    }
    cs_rc rc = cs_agg_run(jobs, n, o, &doc, &err);
    if (rc != CS_OK) {
        print_error("cs_agg_run: %s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    char *text = cJSON_PrintUnformatted(doc);
    assert_non_null(text);
    cJSON_Delete(doc);
    pool_free();
    return text;
}

/* Every mode of agg_text gives the same document (the rows' keys, and so the bootstrap's
 * streams, included). */
static void expect_same_with_members(const cs_agg_opts *o)
{
    char *want = agg_text(o, 0);
    for (int mode = 1; mode <= 3; mode++) {
        char *got = agg_text(o, mode);
        assert_string_equal(got, want);
        free(got);
    }
    free(want);
}

static void test_members(void **state)
{
    (void)state;
    cs_agg_opts o;
    cs_agg_opts_init(&o);
    build_metrics_sweep();
    expect_same_with_members(&o);
    const char *by[] = {"selector"};
    o.by = by;
    o.n_by = 1;
    expect_same_with_members(&o);
    build_demo();
    o = ref_opts("algorithm", "rtn");
    o.resamples = 200;
    expect_same_with_members(&o);
    /* null and absent group together; 1 and 1.0 are one value; an object value */
    n_fx = 0;
    const int y[4] = {1, 0, 1, 1};
    fx_items(fx_add("done", false, "{\"a\":\"x\",\"seed\":0,\"v\":null}"), "t1", "acc", SAMPLE, 4,
             y);
    fx_items(fx_add("done", false, "{\"a\":\"x\",\"seed\":1}"), "t1", "acc", SAMPLE, 4, y);
    fx_items(fx_add("done", false, "{\"a\":\"y\",\"seed\":0,\"v\":1}"), "t1", "acc", SAMPLE, 4, y);
    fx_items(fx_add("done", false, "{\"a\":\"y\",\"seed\":1,\"v\":1.0}"), "t1", "acc", SAMPLE, 4,
             y);
    fx_items(fx_add("done", false, "{\"a\":{\"k\":[1,2],\"name\":\"z\"},\"seed\":0}"), "t1", "acc",
             SAMPLE, 4, y);
    fx_items(fx_add("done", true, "{\"a\":\"x\",\"seed\":null}"), "t1", "acc", SAMPLE, 4, y);
    o = ref_opts("a", "x");
    o.resamples = 50;
    expect_same_with_members(&o);
    cJSON *doc = run_ok(&o);
    assert_int_equal(cJSON_GetArraySize(at(doc, "rows")), 4);
    assert_int_equal(num(cJSON_GetArrayItem(at(doc, "rows"), 0), "jobs.total"), 2);
    assert_int_equal(num(cJSON_GetArrayItem(at(doc, "rows"), 1), "jobs.total"), 2);
    cJSON_Delete(doc);
}

/* A member that is not '"name":value' is refused, naming the job. */
static void test_bad_member(void **state)
{
    (void)state;
    static const char *const bad[] = {"\"seed\":0,\"x\":1", "seed", "\"seed\":"};
    cs_agg_job job = {.job_id = 7, .state = "done", .model = "m", .eval = "e"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        cJSON *doc = NULL;
        cs_err err = {0};
        job.members = &bad[i];
        job.n_members = 1;
        assert_int_equal(cs_agg_run(&job, 1, NULL, &doc, &err), CS_EINVAL);
        assert_null(doc);
        assert_non_null(strstr(err.msg, "job 7: axes member"));
    }
}

/* The headline rule that cs_agg_run applies and the store's outcome filter shares. */
static void test_headline(void **state)
{
    (void)state;
    cs_agg_opts o;
    cs_agg_opts_init(&o);
    const char *ht[] = {"t1", "t2", "t1"}, *hm[] = {"acc_norm", "margin", "acc_bytes"};
    o.headline_task = ht;
    o.headline_metric = hm;
    o.n_headline = 3;
    assert_string_equal(cs_agg_headline(&o, "t1", true, false), "acc_bytes"); /* the last */
    assert_string_equal(cs_agg_headline(&o, "t2", true, true), "margin");
    assert_string_equal(cs_agg_headline(&o, "t3", true, true), "acc");
    assert_string_equal(cs_agg_headline(&o, "t3", false, true), "exact_match");
    assert_string_equal(cs_agg_headline(&o, "t3", false, false), "acc");
    assert_string_equal(cs_agg_headline(&o, "ppl:w", false, true), "ppl");
    o.metric = "acc_norm";
    assert_string_equal(cs_agg_headline(&o, "t2", true, true), "acc_norm");
    assert_string_equal(cs_agg_headline(&o, "ppl:w", false, false), "acc_norm");
}

/* average.item_ci: the bootstrap over items of the average of a row of one done job (asked for
 * with item_resamples). t1 600 of 1000 items right, t2 400 of 1000: M4 0.5, and the resampled M4
 * has standard error sqrt(0.24 / 1000 + 0.24 / 1000) / 2, a 95 % interval of +-1.96 of it (the
 * normal approximation is good at n 1000; Monte Carlo and the lattice of 1/2000 allow 0.004). */
static void test_item_ci(void **state)
{
    (void)state;
    static int y6[MAX_ITEMS], y4[MAX_ITEMS];
    for (size_t i = 0; i < MAX_ITEMS; i++) {
        y6[i] = i % 5 < 3;
        y4[i] = i % 5 < 2;
    }
    n_fx = 0;
    fx_job *f = fx_add("done", false, A_KM("0"));
    fx_items(f, "t1", "acc", "s1", MAX_ITEMS, y6);
    fx_items(f, "t2", "acc", "s2", MAX_ITEMS, y4);
    fx_metric(f, "ppl:w", "ppl", 11.0, 8);
    cs_agg_opts o;
    cs_agg_opts_init(&o);
    o.resamples = 0;
    cJSON *doc = run_ok(&o);
    assert_null(
            cJSON_GetObjectItemCaseSensitive(at(row_by_label(doc, L_KM), "average"), "item_ci"));
    cJSON_Delete(doc);
    o.item_resamples = 10000;
    doc = run_ok(&o);
    const cJSON *ci = at(row_by_label(doc, L_KM), "average.item_ci");
    assert_int_equal(cJSON_GetArraySize(ci), 2);
    double lo = cJSON_GetArrayItem(ci, 0)->valuedouble, hi = cJSON_GetArrayItem(ci, 1)->valuedouble;
    double half = 1.959964 * sqrt(0.24 / 1000 + 0.24 / 1000) / 2;
    assert_true(lo < 0.5 && hi > 0.5);
    assert_true(fabs((lo + hi) / 2 - 0.5) < 0.003);
    assert_true(fabs((hi - lo) / 2 - half) < 0.004);
    /* the same seed gives the same interval; another seed another one */
    cJSON *again = run_ok(&o);
    const cJSON *ci2 = at(row_by_label(again, L_KM), "average.item_ci");
    assert_true(cJSON_GetArrayItem(ci2, 0)->valuedouble == lo &&
                cJSON_GetArrayItem(ci2, 1)->valuedouble == hi);
    cJSON_Delete(again);
    cJSON_Delete(doc);
    /* the slim form has none */
    o.slim = true;
    doc = run_ok(&o);
    assert_null(
            cJSON_GetObjectItemCaseSensitive(at(row_by_label(doc, L_KM), "average"), "item_ci"));
    cJSON_Delete(doc);
    o.slim = false;
    /* two seeds: the interval across seeds applies (null here); the row of one seed is then
     * flagged missing_seeds and has none either; a job without items has none */
    fx_job *r0 = fx_add("done", false, A_RND("0")), *r1 = fx_add("done", false, A_RND("1"));
    fx_items(r0, "t1", "acc", "s1", MAX_ITEMS, y6);
    fx_items(r0, "t2", "acc", "s2", MAX_ITEMS, y4);
    fx_items(r1, "t1", "acc", "s1", MAX_ITEMS, y4);
    fx_items(r1, "t2", "acc", "s2", MAX_ITEMS, y6);
    fx_job *b = fx_add("done", true, A_BASE);
    fx_metric(b, "t1", "acc", 0.8, 100);
    fx_metric(b, "t2", "acc", 0.7, 100);
    b->job.result_version = 1;
    doc = run_ok(&o);
    assert_true(cJSON_IsNull(at(row_by_label(doc, L_RND), "average.item_ci")));
    assert_true(cJSON_IsNull(at(row_by_label(doc, L_KM), "average.item_ci")));
    assert_true(cJSON_IsNull(at(row_by_label(doc, L_BASE), "average.item_ci")));
    cJSON_Delete(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_aggregates),
            cmocka_unit_test(test_holm),
            cmocka_unit_test(test_bootstrap_vs_naive),
            cmocka_unit_test(test_bootstrap_seeds),
            cmocka_unit_test(test_identical_and_large),
            cmocka_unit_test(test_flags),
            cmocka_unit_test(test_bad_input),
            cmocka_unit_test(test_demo_reference),
            cmocka_unit_test(test_text_labels),
            cmocka_unit_test(test_slim_text),
            cmocka_unit_test(test_text_numbers),
            cmocka_unit_test(test_print_json),
            cmocka_unit_test(test_sampler_exact),
            cmocka_unit_test(test_sampler_paths),
            cmocka_unit_test(test_empty),
            cmocka_unit_test(test_members),
            cmocka_unit_test(test_bad_member),
            cmocka_unit_test(test_headline),
            cmocka_unit_test(test_item_ci),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
