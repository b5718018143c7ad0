/* cs_boot.c - the paired bootstrap, the p-value and Holm-Bonferroni of the results module
 * (cs_agg.h; the definitions are in docs/results.md).
 *
 * Why counts and not indices: for binary outcomes a resample's mean difference depends only on
 * how many of the drawn items fall in each category of paired outcome (-1, 0, +1), and drawing N
 * indices with replacement gives exactly a multinomial(N, observed frequencies) vector of those
 * counts. So a resample costs a few binomial draws instead of N index draws: 10,000 resamples of
 * 1,000 items are 20,000 binomials, not 10,000,000 lookups. The binomials are exact (inversion,
 * searching outward from the mode), so the distribution is the one index resampling gives; the
 * random streams differ, so results agree with an index bootstrap only within Monte Carlo error.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cs_agg.h"
#include "cs_alloc.h"
#include "cs_rng.h"

double cs_agg_pvalue(size_t le, size_t ge, size_t b)
{
    size_t k = le < ge ? le : ge;
    double p = 2.0 * ((double)k + 1.0) / ((double)b + 1.0);
    return p < 1.0 ? p : 1.0;
}

typedef struct holm_key {
    double p;
    size_t i;
} holm_key;

static int holm_cmp(const void *a, const void *b)
{
    const holm_key *x = a, *y = b;
    if (x->p != y->p) {
        return x->p < y->p ? -1 : 1;
    }
    return x->i < y->i ? -1 : (x->i > y->i);
}

cs_rc cs_agg_holm(const double *p, size_t n, double *adj, cs_err *err)
{
    holm_key *k = cs_alloc_array(n, sizeof(*k));
    if (k == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "results: Holm adjustment of %zu p-values", n);
    }
    for (size_t i = 0; i < n; i++) {
        k[i] = (holm_key){p[i], i};
    }
    qsort(k, n, sizeof(*k), holm_cmp);
    double run = 0.0;
    for (size_t r = 0; r < n; r++) {
        double v = (double)(n - r) * k[r].p;
        run = v > run ? v : run;
        adj[k[r].i] = run < 1.0 ? run : 1.0;
    }
    free(k);
    return CS_OK;
}

/* One stage of a multinomial draw: the items left are Binomial(left, p) in this category. p is
 * fixed per stage (the category's count over the counts left), so its logarithms are computed
 * once per comparison, not per draw. flip: the stage draws the complement (p > 0.5). */
typedef struct stage {
    double p, lp, lq, ratio; /* p <= 0.5, log p, log(1 - p), p / (1 - p) */
    double value;
    uint64_t cnt;   /* the category's count */
    bool flip, all; /* all: the last category, it takes what is left */
} stage;

static stage make_stage(double p, double value, bool all)
{
    stage s = {.value = value, .all = all, .flip = p > 0.5};
    s.p = s.flip ? 1.0 - p : p;
    s.lp = s.p > 0.0 ? log(s.p) : 0.0;
    s.lq = log1p(-s.p);
    s.ratio = s.p / (1.0 - s.p);
    return s;
}

/* Binomial(n, s->p) by inversion. The support is enumerated from the mode outward (m, m-1, m+1,
 * m-2, ...): any fixed order of the outcomes gives an exact inversion sampler, and this one needs
 * about 1.6 standard deviations of steps. lf[i] = log(i!) for i <= n. */
static uint64_t binom(cs_rng *r, uint64_t n, const stage *s, const double *lf)
{
    double p = s->p, ratio = s->ratio;
    if (n == 0 || p <= 0.0) {
        return 0;
    }
    double u = cs_rng_uniform(r);
    if ((double)n * p < 10.0) {
        double f = exp((double)n * s->lq);
        for (uint64_t k = 0; k < n; k++) {
            if (u < f) {
                return k;
            }
            u -= f;
            f *= ratio * (double)(n - k) / (double)(k + 1);
        }
        return n;
    }
    uint64_t m = (uint64_t)((double)(n + 1) * p);
    m = m > n ? n : m;
    double pm = exp(lf[n] - lf[m] - lf[n - m] + (double)m * s->lp + (double)(n - m) * s->lq);
    double plo = pm, phi = pm;
    uint64_t lo = m, hi = m;
    u -= pm;
    while (u >= 0.0) {
        if (lo == 0 && hi == n) {
            return m; /* rounding left u >= 0 after the whole support */
        }
        if (lo > 0) {
            plo *= (double)lo / ((double)(n - lo + 1) * ratio);
            lo--;
            u -= plo;
            if (u < 0.0) {
                return lo;
            }
        }
        if (hi < n) {
            phi *= ratio * (double)(n - hi) / (double)(hi + 1);
            hi++;
            u -= phi;
        }
    }
    return hi;
}

/* A cell prepared for drawing: its categories with a count > 0 as stages, largest first. */
typedef struct plan {
    stage *st;
    size_t n_st;
    uint64_t n;
    /* A tabulated cell (two categories, or three with values -v, 0, +v: one job per side): the
     * resampled mean takes the values off + i * step, i < size, with the cumulative
     * probabilities cdf[i]; guide[j] is the first i with cdf[i] > j / size (inversion by a guide
     * table: one uniform and about one comparison per draw). NULL: draw by stages. */
    double *cdf;
    uint32_t *guide;
    size_t size;
    double off, step;
} plan;

/* One multinomial resample of a cell: the sum over categories of count * value, divided by n. */
static double draw_cell(cs_rng *r, const plan *c, const double *lf)
{
    if (c->cdf != NULL) {
        double u = cs_rng_uniform(r);
        size_t i = c->guide[(size_t)(u * (double)c->size)];
        while (i + 1 < c->size && c->cdf[i] <= u) {
            i++;
        }
        return c->off + (double)i * c->step;
    }
    uint64_t left = c->n;
    double sum = 0.0;
    for (size_t k = 0; k < c->n_st && left > 0; k++) {
        const stage *s = &c->st[k];
        uint64_t got = s->all ? left : binom(r, left, s, lf);
        got = s->flip && !s->all ? left - got : got;
        sum += (double)got * s->value;
        left -= got;
    }
    return sum / (double)c->n;
}

static uint64_t cell_n(const cs_agg_hist *c)
{
    uint64_t n = 0;
    for (size_t k = 0; k < c->n_cat; k++) {
        n += c->count[k];
    }
    return n;
}

/* The stages of cell c into st (room for c->n_cat): categories with equal values merged, empty
 * ones dropped, the largest count first (its draw then takes most of the items at once). */
static void make_plan(const cs_agg_hist *c, stage *st, plan *out)
{
    size_t m = 0;
    for (size_t k = 0; k < c->n_cat; k++) {
        if (c->count[k] == 0) {
            continue;
        }
        size_t at = m;
        for (size_t i = 0; i < m; i++) {
            at = st[i].value == c->value[k] ? i : at;
        }
        if (at == m) {
            st[m++] = (stage){.value = c->value[k]};
        }
        st[at].cnt += c->count[k];
    }
    for (size_t i = 1; i < m; i++) { /* insertion sort, descending counts */
        for (size_t k = i; k > 0 && st[k].cnt > st[k - 1].cnt; k--) {
            stage t = st[k];
            st[k] = st[k - 1];
            st[k - 1] = t;
        }
    }
    uint64_t left = 0;
    for (size_t i = 0; i < m; i++) {
        left += st[i].cnt;
    }
    out->n = left;
    for (size_t i = 0; i < m; i++) {
        uint64_t cnt = st[i].cnt;
        st[i] = make_stage((double)cnt / (double)left, st[i].value, i + 1 == m);
        st[i].cnt = cnt;
        left -= cnt;
    }
    *out = (plan){.st = st, .n_st = m, .n = out->n};
}

/* The probabilities of Binomial(n, p) at k = lo..hi into pmf[k] (room n + 1): the range where
 * they exceed 1e-18 of the mode's (what is left out is below 1e-15 in all). */
static void binom_pmf(uint64_t n, double p, const double *lf, double *pmf, uint64_t *lo,
                      uint64_t *hi)
{
    if (p <= 0.0 || p >= 1.0 || n == 0) {
        *lo = *hi = p >= 1.0 ? n : 0;
        pmf[*lo] = 1.0;
        return;
    }
    uint64_t m = (uint64_t)((double)(n + 1) * p);
    m = m > n ? n : m;
    double ratio = p / (1.0 - p);
    double pm = exp(lf[n] - lf[m] - lf[n - m] + (double)m * log(p) + (double)(n - m) * log1p(-p));
    double cut = pm * 1e-18;
    pmf[m] = pm;
    uint64_t k = m;
    while (k > 0 && pmf[k] > cut) {
        pmf[k - 1] = pmf[k] * (double)k / ((double)(n - k + 1) * ratio);
        k--;
    }
    *lo = k;
    k = m;
    while (k < n && pmf[k] > cut) {
        pmf[k + 1] = pmf[k] * ratio * (double)(n - k) / (double)(k + 1);
        k++;
    }
    *hi = k;
}

/* Tabulates plan c when it has two categories (one binomial) or three with values -v, 0, +v (the
 * difference of two counts, summed exactly over both). Leaves c->cdf NULL otherwise, for cells
 * of more than 100,000 items, and when memory runs out: the stages then draw it, with the same
 * distribution. */
static void tabulate(plan *c, const double *lf)
{
    const stage *st = c->st;
    uint64_t n = c->n;
    if (n > 100000 || c->n_st < 2 || c->n_st > 3) {
        return;
    }
    double v = 0.0, x = st[0].value, y = st[1].value;
    size_t im = 0, ip = 0;
    for (size_t k = 0; c->n_st == 3 && k < 3; k++) {
        v = st[k].value > 0 ? st[k].value : v;
        im = st[k].value < 0 ? k : im;
        ip = st[k].value > 0 ? k : ip;
    }
    if (c->n_st == 3 && (v == 0.0 || st[im].value != -v || st[3 - im - ip].value != 0.0)) {
        return;
    }
    double *pa = cs_alloc_array(n + 1, sizeof(*pa)), *pk = cs_alloc_array(n + 1, sizeof(*pk));
    double *dist = cs_calloc_array(2 * n + 1, sizeof(*dist));
    c->guide = NULL;
    if (pa == NULL || pk == NULL || dist == NULL) {
        cs_free_each((void *const[]){pa, pk, dist}, 3);
        return;
    }
    uint64_t alo, ahi, klo, khi;
    if (c->n_st == 2) { /* the count of x: value (g x + (n - g) y) / n */
        binom_pmf(n, (double)st[0].cnt / (double)n, lf, pa, &alo, &ahi);
        for (uint64_t g = alo; g <= ahi; g++) {
            dist[n + g] = pa[g];
        }
        c->step = (x - y) / (double)n;
        c->off = y - (double)n * c->step; /* index n + g */
    } else {
        /* m = items with a nonzero difference ~ Binomial(n, p_nz), k of them +v ~ Binomial(m, q)
         * for every m with the same q, so the conditional law of m + 1 follows from that of m by
         * Pascal's rule (no division, no exp): D = k - (m - k). */
        uint64_t nz = st[im].cnt + st[ip].cnt;
        double q = (double)st[ip].cnt / (double)nz;
        binom_pmf(n, (double)nz / (double)n, lf, pa, &alo, &ahi);
        binom_pmf(alo, q, lf, pk, &klo, &khi);
        double tiny = pk[(klo + khi) / 2] * 1e-18;
        for (uint64_t m = alo;; m++) {
            for (uint64_t k = klo; k <= khi; k++) {
                dist[n + 2 * k - m] += pa[m] * pk[k];
            }
            if (m == ahi) {
                break;
            }
            pk[khi + 1] = 0.0; /* law of m + 1: P(k) = P_m(k) (1 - q) + P_m(k - 1) q */
            for (uint64_t k = khi + 1; k > klo; k--) {
                pk[k] = pk[k] * (1.0 - q) + pk[k - 1] * q;
            }
            pk[klo] *= 1.0 - q;
            khi = khi + 1 > m + 1 ? m + 1 : khi + 1;
            while (klo < khi && pk[klo] < tiny) {
                klo++;
            }
            while (khi > klo && pk[khi] < tiny) {
                khi--;
            }
        }
        c->step = v / (double)n;
        c->off = -(double)n * c->step; /* index n + d */
    }
    size_t lo = 0, hi = 2 * n;
    while (lo < hi && dist[lo] == 0.0) {
        lo++;
    }
    while (hi > lo && dist[hi] == 0.0) {
        hi--;
    }
    c->size = hi - lo + 1;
    c->off += (double)lo * c->step;
    c->cdf = cs_alloc_array(c->size, sizeof(*c->cdf));
    c->guide = cs_alloc_array(c->size, sizeof(*c->guide));
    if (c->cdf != NULL && c->guide != NULL) {
        double total = 0.0, run = 0.0;
        for (size_t i = lo; i <= hi; i++) {
            total += dist[i];
        }
        for (size_t i = 0; i < c->size; i++) {
            run += dist[lo + i];
            c->cdf[i] = i + 1 == c->size ? 1.0 : run / total;
        }
        for (size_t j = 0, i = 0; j < c->size; j++) {
            while (i + 1 < c->size && c->cdf[i] <= (double)j / (double)c->size) {
                i++;
            }
            c->guide[j] = (uint32_t)i;
        }
    } else {
        free(c->cdf);
        free(c->guide);
        c->cdf = NULL;
        c->guide = NULL;
    }
    cs_free_each((void *const[]){pa, pk, dist}, 3);
}

/* The k-th smallest (0-based) of v[0..n), reordering v (Hoare's selection). */
static double select_kth(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        double pivot = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) {
                i++;
            }
            while (v[j] > pivot) {
                j--;
            }
            if (i <= j) {
                double t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0) {
                    break;
                }
                j--;
            }
        }
        if (k <= j) {
            hi = j;
        } else if (k >= i) {
            lo = i;
        } else {
            return v[k];
        }
    }
    return v[k];
}

/* Observed statistic, and the largest n (for the log-factorial table); CS_EINVAL for an empty
 * cell. */
static cs_rc observe(const cs_agg_hist *cells, size_t n_units, size_t n_tasks, double *delta,
                     uint64_t *max_n, cs_err *err)
{
    double total = 0.0;
    *max_n = 0;
    for (size_t t = 0; t < n_tasks; t++) {
        double s = 0.0;
        for (size_t u = 0; u < n_units; u++) {
            const cs_agg_hist *c = &cells[u * n_tasks + t];
            uint64_t n = cell_n(c);
            if (n == 0) {
                return cs_err_set(err, CS_EINVAL, 0, "results: bootstrap cell %zu has no items",
                                  u * n_tasks + t);
            }
            double d = 0.0;
            for (size_t k = 0; k < c->n_cat; k++) {
                d += (double)c->count[k] * c->value[k];
            }
            s += d / (double)n;
            *max_n = n > *max_n ? n : *max_n;
        }
        total += s / (double)n_units;
    }
    *delta = total / (double)n_tasks;
    return CS_OK;
}

/* The percentile interval and p-value of the b statistics v (reordered) with le of them <= 0
 * and ge >= 0. */
static void finish(double *v, size_t b, size_t le, size_t ge, cs_agg_ci *out)
{
    size_t klo = (size_t)ceil(0.025 * (double)b), khi = (size_t)ceil(0.975 * (double)b);
    klo = klo == 0 ? 1 : klo;
    khi = khi == 0 ? 1 : khi;
    out->lo = select_kth(v, b, klo - 1);
    out->hi = select_kth(v, b, khi - 1);
    out->p = cs_agg_pvalue(le, ge, b);
}

cs_rc cs_agg_boot(const cs_agg_hist *cells, size_t n_units, size_t n_tasks, size_t resamples,
                  uint64_t seed, cs_agg_ci *out, cs_err *err)
{
    if (cells == NULL || n_units == 0 || n_tasks == 0 || resamples == 0) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "results: bootstrap of %zu units x %zu tasks, %zu "
                          "resamples",
                          n_units, n_tasks, resamples);
    }
    uint64_t max_n = 0;
    cs_rc rc = observe(cells, n_units, n_tasks, &out->delta, &max_n, err);
    if (rc != CS_OK) {
        return rc;
    }
    size_t n_cells = n_units * n_tasks, n_cat = 0;
    for (size_t i = 0; i < n_cells; i++) {
        n_cat += cells[i].n_cat;
    }
    double *lf = cs_alloc_array((size_t)max_n + 1, sizeof(*lf));
    double *v = cs_alloc_array(resamples, sizeof(*v));
    plan *plans = cs_alloc_array(n_cells, sizeof(*plans));
    stage *st = cs_alloc_array(n_cat, sizeof(*st));
    if (lf == NULL || v == NULL || plans == NULL || st == NULL) {
        cs_free_each((void *const[]){lf, v, plans, st}, 4);
        return cs_err_set(err, CS_ENOMEM, 0, "results: bootstrap of %zu resamples", resamples);
    }
    lf[0] = 0.0;
    for (uint64_t i = 1; i <= max_n; i++) {
        lf[i] = lf[i - 1] + log((double)i);
    }
    for (size_t i = 0, at = 0; i < n_cells; i++) {
        make_plan(&cells[i], &st[at], &plans[i]);
        tabulate(&plans[i], lf);
        at += cells[i].n_cat;
    }
    cs_rng r;
    cs_rng_seed(&r, seed);
    size_t le = 0, ge = 0;
    for (size_t b = 0; b < resamples; b++) {
        double total = 0.0;
        for (size_t j = 0; j < n_units; j++) {
            size_t u = n_units > 1 ? (size_t)cs_rng_below(&r, n_units) : j;
            for (size_t t = 0; t < n_tasks; t++) {
                total += draw_cell(&r, &plans[u * n_tasks + t], lf);
            }
        }
        double s = total / (double)(n_units * n_tasks);
        /* differences of sums of counts over n: exact zeros stay exact; 1e-12 absorbs rounding */
        le += s <= 1e-12;
        ge += s >= -1e-12;
        v[b] = s;
    }
    finish(v, resamples, le, ge, out);
    for (size_t i = 0; i < n_cells; i++) {
        free(plans[i].cdf);
        free(plans[i].guide);
    }
    cs_free_each((void *const[]){lf, v, plans, st}, 4);
    return CS_OK;
}

/* The plans of cells[t][u] (t < n_tasks, u < n_units) into plans[t * n_units + u]; st and lf
 * sized by the caller. */
static void plan_tasks(const cs_agg_hist *const *cells, size_t n_units, size_t n_tasks, stage *st,
                       const double *lf, plan *plans)
{
    size_t at = 0;
    for (size_t t = 0; t < n_tasks; t++) {
        for (size_t u = 0; u < n_units; u++) {
            make_plan(&cells[t][u], &st[at], &plans[t * n_units + u]);
            tabulate(&plans[t * n_units + u], lf);
            at += cells[t][u].n_cat;
        }
    }
}

/* One resample of every task (and the average) into v[t * b_total + b]. */
static void resample_tasks(const plan *plans, size_t n_units, size_t n_tasks, bool with_avg,
                           cs_rng *units, cs_rng *streams, size_t *drawn, const double *lf,
                           double *stat)
{
    for (size_t j = 0; j < n_units; j++) {
        drawn[j] = n_units > 1 ? (size_t)cs_rng_below(units, n_units) : j;
    }
    double avg = 0.0;
    for (size_t t = 0; t < n_tasks; t++) {
        double sum = 0.0;
        for (size_t j = 0; j < n_units; j++) {
            sum += draw_cell(&streams[t], &plans[t * n_units + drawn[j]], lf);
        }
        stat[t] = sum / (double)n_units;
        avg += stat[t];
    }
    if (with_avg) {
        stat[n_tasks] = avg / (double)n_tasks;
    }
}

cs_rc cs_agg_boot_tasks(const cs_agg_hist *const *cells, size_t n_units, size_t n_tasks,
                        bool with_avg, size_t resamples, uint64_t unit_seed,
                        const uint64_t *task_seed, cs_agg_ci *out, cs_err *err)
{
    if (cells == NULL || n_units == 0 || n_tasks == 0 || resamples == 0) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "results: bootstrap of %zu units x %zu tasks, %zu "
                          "resamples",
                          n_units, n_tasks, resamples);
    }
    size_t n_out = n_tasks + with_avg, n_cat = 0;
    uint64_t max_n = 0;
    for (size_t t = 0; t < n_tasks; t++) {
        uint64_t task_max = 0;
        cs_rc rc = observe(cells[t], n_units, 1, &out[t].delta, &task_max, err);
        if (rc != CS_OK) {
            return rc;
        }
        for (size_t u = 0; u < n_units; u++) {
            n_cat += cells[t][u].n_cat;
            max_n = cell_n(&cells[t][u]) > max_n ? cell_n(&cells[t][u]) : max_n;
        }
    }
    double *lf = cs_alloc_array((size_t)max_n + 1, sizeof(*lf));
    double *v = cs_alloc_array(resamples * n_out, sizeof(*v));
    plan *plans = cs_calloc_array(n_units * n_tasks, sizeof(*plans));
    stage *st = cs_alloc_array(n_cat, sizeof(*st));
    cs_rng *streams = cs_alloc_array(n_tasks, sizeof(*streams));
    size_t *drawn = cs_alloc_array(n_units, sizeof(*drawn));
    double *stat = cs_alloc_array(n_out, sizeof(*stat));
    size_t *le = cs_calloc_array(n_out, sizeof(*le)), *ge = cs_calloc_array(n_out, sizeof(*ge));
    void *all[] = {lf, v, plans, st, streams, drawn, stat, le, ge};
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < sizeof(all) / sizeof(*all); i++) {
        rc = all[i] == NULL ? CS_ENOMEM : rc;
    }
    if (rc == CS_OK) {
        lf[0] = 0.0;
        for (uint64_t i = 1; i <= max_n; i++) {
            lf[i] = lf[i - 1] + log((double)i);
        }
        plan_tasks(cells, n_units, n_tasks, st, lf, plans);
        cs_rng units;
        cs_rng_seed(&units, unit_seed);
        for (size_t t = 0; t < n_tasks; t++) {
            cs_rng_seed(&streams[t], task_seed[t]);
        }
        for (size_t b = 0; b < resamples; b++) {
            resample_tasks(plans, n_units, n_tasks, with_avg, &units, streams, drawn, lf, stat);
            for (size_t k = 0; k < n_out; k++) {
                le[k] += stat[k] <= 1e-12;
                ge[k] += stat[k] >= -1e-12;
                v[k * resamples + b] = stat[k];
            }
        }
        double avg = 0.0;
        for (size_t t = 0; t < n_tasks; t++) {
            avg += out[t].delta / (double)n_tasks;
        }
        if (with_avg) {
            out[n_tasks].delta = avg;
        }
        for (size_t k = 0; k < n_out; k++) {
            finish(&v[k * resamples], resamples, le[k], ge[k], &out[k]);
        }
    }
    for (size_t i = 0; plans != NULL && i < n_units * n_tasks; i++) {
        free(plans[i].cdf);
        free(plans[i].guide);
    }
    cs_free_each(all, sizeof(all) / sizeof(*all));
    return rc == CS_OK ? CS_OK
                       : cs_err_set(err, CS_ENOMEM, 0, "results: bootstrap of %zu resamples",
                                    resamples);
}
