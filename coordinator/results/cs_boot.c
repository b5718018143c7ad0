/* cs_boot.c - the paired bootstrap of a row against its reference, the p-value and
 * Holm-Bonferroni of the results module (cs_agg.h; the definitions are in docs/results.md).
 *
 * Why counts and not indices: for binary outcomes a resample's mean difference depends only on
 * how many of the drawn items fall in each category of paired outcome (-1, 0, +1), and drawing N
 * indices with replacement gives exactly a multinomial(N, observed frequencies) vector of those
 * counts, whose sum has a law that can be tabulated once and drawn with one random number
 * (cs_boot_law.c). The random streams differ from an index bootstrap's, so the results agree
 * with one within Monte Carlo error.
 *
 * Why histograms: with laws on a common lattice, every statistic of a resample is an integer
 * number of lattice units, so the 10,000 resamples of a statistic are counted in a histogram of
 * its (few hundred) possible values, and the percentiles and the p-value are read off it, instead
 * of being selected from 10,000 doubles. Statistics off a common lattice (cells without a law,
 * tasks with different item counts in the average) keep their values and select the
 * percentiles from them.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cs_agg.h"
#include "cs_alloc.h"
#include "cs_boot_int.h"
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

static uint64_t cell_n(const cs_agg_hist *c)
{
    uint64_t n = 0;
    for (size_t k = 0; k < c->n_cat; k++) {
        n += c->count[k];
    }
    return n;
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

/* The resamples of one statistic: a histogram of integer sums (lat), or the values. */
typedef struct stat_acc {
    bool lat;
    double scale;  /* lat: the statistic of a sum S is S * scale */
    int64_t lo;    /* lat: the sum counted in hist[0..3] */
    size_t n_bins; /* lat */
    /* [4 * n_bins]: sum lo + i in hist[4 i + (b & 3)] for resample b. Four counts per bin, so
     * that consecutive resamples with equal sums (the common case) do not wait on each other's
     * increment of one counter. */
    uint32_t *hist;
    double *v; /* !lat: [resamples] */
    size_t le, ge;
} stat_acc;

/* The two order statistics k1 <= k2 (1-based) of v[0..b), reordering v: the values are counted
 * in 1,024 equal intervals of [min, max], and each is selected among the values of its interval
 * only (a monotone bucketing keeps the order between intervals). */
static void two_quantiles(double *v, size_t b, size_t k1, size_t k2, double *scratch, double *q1,
                          double *q2)
{
    enum { NB = 1024 };
    size_t cnt[NB] = {0};
    double mn = v[0], mx = v[0];
    for (size_t i = 1; i < b; i++) {
        mn = v[i] < mn ? v[i] : mn;
        mx = v[i] > mx ? v[i] : mx;
    }
    if (!(mx > mn)) {
        *q1 = *q2 = mn;
        return;
    }
    double w = (double)NB / (mx - mn);
    for (size_t i = 0; i < b; i++) {
        size_t k = (size_t)((v[i] - mn) * w);
        cnt[k < NB ? k : NB - 1]++;
    }
    size_t want[2] = {k1, k2};
    double *got[2] = {q1, q2};
    for (int z = 0; z < 2; z++) {
        size_t bucket = 0, before = 0;
        while (before + cnt[bucket] < want[z]) {
            before += cnt[bucket++];
        }
        size_t m = 0;
        for (size_t i = 0; i < b; i++) {
            size_t k = (size_t)((v[i] - mn) * w);
            if ((k < NB ? k : NB - 1) == bucket) {
                scratch[m++] = v[i];
            }
        }
        *got[z] = select_kth(scratch, m, want[z] - before - 1);
    }
}

/* The interval and p-value of a statistic's resamples (docs/results.md). */
static void finish(stat_acc *s, size_t b, double *scratch, cs_agg_ci *out)
{
    size_t klo = (size_t)ceil(0.025 * (double)b), khi = (size_t)ceil(0.975 * (double)b);
    klo = klo == 0 ? 1 : klo;
    khi = khi == 0 ? 1 : khi;
    if (!s->lat) {
        two_quantiles(s->v, b, klo, khi, scratch, &out->lo, &out->hi);
        out->p = cs_agg_pvalue(s->le, s->ge, b);
        return;
    }
    size_t cum = 0, le = 0, ge = 0;
    bool lo_set = false, hi_set = false;
    for (size_t i = 0; i < s->n_bins; i++) {
        int64_t sum = s->lo + (int64_t)i;
        const uint32_t *h = &s->hist[4 * i];
        size_t n = (size_t)h[0] + h[1] + h[2] + h[3];
        cum += n;
        le += sum <= 0 ? n : 0;
        ge += sum >= 0 ? n : 0;
        if (!lo_set && cum >= klo) {
            out->lo = (double)sum * s->scale;
            lo_set = true;
        }
        if (!hi_set && cum >= khi) {
            out->hi = (double)sum * s->scale;
            hi_set = true;
        }
    }
    out->p = cs_agg_pvalue(le, ge, b);
}

/* A stream of 32-bit numbers, two per 64-bit number of r (high word first). */
typedef struct halves {
    cs_rng r;
    uint64_t x;
    bool odd; /* the low word of x is next */
} halves;

static inline uint32_t half_next(halves *h)
{
    if (h->odd) {
        h->odd = false;
        return (uint32_t)h->x;
    }
    h->x = cs_rng_u64(&h->r);
    h->odd = true;
    return (uint32_t)(h->x >> 32);
}

/* The memory of one row's bootstrap. */
typedef struct row_boot {
    size_t n_units, n_tasks, n_out, resamples;
    bool with_avg;
    bt_plan *plans; /* [t * n_units + u] */
    bt_stage *st;
    cs_rng *streams;
    stat_acc *acc; /* [n_out] */
    /* in the cache's buffer: */
    uint32_t *drawn;       /* [resamples * n_units] */
    int32_t *v0, *v1;      /* [resamples * n_units]: draws of two tasks */
    double *scratch, *avg; /* [resamples] */
    int64_t *total;        /* [resamples] */
} row_boot;

static void row_boot_fini(row_boot *w)
{
    for (size_t i = 0; w->plans != NULL && i < w->n_units * w->n_tasks; i++) {
        bt_plan_fini(&w->plans[i]);
    }
    for (size_t k = 0; w->acc != NULL && k < w->n_out; k++) {
        free(w->acc[k].hist);
        free(w->acc[k].v);
    }
    cs_free_each((void *const[]){w->plans, w->st, w->streams, w->acc}, 4);
}

/* Whether task t's cells all have laws on one lattice; then its sums' range into a. */
static bool task_lattice(const row_boot *w, size_t t, stat_acc *a)
{
    const bt_plan *p = &w->plans[t * w->n_units];
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    if (w->n_units > 64) {
        return false; /* lat_draws keeps the laws of 64 units at most */
    }
    for (size_t u = 0; u < w->n_units; u++) {
        if (p[u].lw == NULL || p[u].lattice != p[0].lattice) {
            return false;
        }
        lo = p[u].lw->lmin < lo ? p[u].lw->lmin : lo;
        hi = p[u].lw->lmax > hi ? p[u].lw->lmax : hi;
    }
    a->lo = lo * (int64_t)w->n_units;
    a->n_bins = (size_t)((hi - lo) * (int64_t)w->n_units + 1);
    a->scale = p[0].unit / (double)w->n_units;
    return a->n_bins <= (1u << 22);
}

/* The plans of every cell and the accumulators of every statistic. */
static cs_rc row_boot_init(row_boot *w, const cs_agg_hist *const *cells, cs_agg_boot_cache *cache)
{
    size_t n_cat = 0, n_cells = w->n_units * w->n_tasks;
    for (size_t t = 0; t < w->n_tasks; t++) {
        for (size_t u = 0; u < w->n_units; u++) {
            n_cat += cells[t][u].n_cat;
        }
    }
    w->plans = cs_calloc_array(n_cells, sizeof(*w->plans));
    w->st = cs_calloc_array(n_cat, sizeof(*w->st));
    w->streams = cs_alloc_array(w->n_tasks, sizeof(*w->streams));
    w->acc = cs_calloc_array(w->n_out, sizeof(*w->acc));
    /* the resample-sized arrays, in the thread's buffer (pages not faulted in again per row) */
    size_t nb = w->resamples, nu = w->n_units;
    unsigned char *buf = NULL;
    if (nb <= SIZE_MAX / 8 / (3 + 3 * nu)) {
        buf = bt_cache_buffer(cache, nb * 8 * 3 + nb * nu * 4 * 3);
    }
    if (!w->plans || !w->st || !w->streams || !w->acc || buf == NULL) {
        return CS_ENOMEM;
    }
    w->scratch = (double *)buf;
    w->avg = (double *)(buf + nb * 8);
    w->total = (int64_t *)(buf + nb * 16);
    w->drawn = (uint32_t *)(buf + nb * 24);
    w->v0 = (int32_t *)(buf + nb * 24 + nb * nu * 4);
    w->v1 = (int32_t *)(buf + nb * 24 + nb * nu * 8);
    memset(w->avg, 0, nb * sizeof(*w->avg));
    memset(w->total, 0, nb * sizeof(*w->total));
    for (size_t t = 0, at = 0; t < w->n_tasks; t++) {
        for (size_t u = 0; u < w->n_units; u++) {
            cs_rc rc = bt_plan_make(&cells[t][u], &w->st[at], cache, &w->plans[t * w->n_units + u]);
            if (rc != CS_OK) {
                return rc;
            }
            at += cells[t][u].n_cat;
        }
    }
    bool all_lat = true;
    uint64_t lattice = w->plans[0].lattice;
    stat_acc *avg = w->with_avg ? &w->acc[w->n_tasks] : NULL;
    for (size_t t = 0; t < w->n_tasks; t++) {
        w->acc[t].lat = task_lattice(w, t, &w->acc[t]);
        all_lat = all_lat && w->acc[t].lat && w->plans[t * w->n_units].lattice == lattice;
        if (avg != NULL && w->acc[t].lat) {
            avg->lo += w->acc[t].lo;
            avg->n_bins += w->acc[t].n_bins - 1;
        }
    }
    if (avg != NULL) {
        avg->lat = all_lat && avg->n_bins + 1 <= (1u << 22);
        avg->n_bins += 1;
        avg->scale = w->acc[0].scale / (double)w->n_tasks;
    }
    for (size_t k = 0; k < w->n_out; k++) {
        stat_acc *a = &w->acc[k];
        if (a->lat) {
            a->hist = cs_calloc_array(4 * a->n_bins, sizeof(*a->hist));
        } else {
            a->v = cs_alloc_array(w->resamples, sizeof(*a->v));
        }
        if (a->hist == NULL && a->v == NULL) {
            return CS_ENOMEM;
        }
    }
    return CS_OK;
}

static void count_value(stat_acc *a, size_t b, double x)
{
    a->v[b] = x;
    /* differences of sums of counts over n: exact zeros stay exact; 1e-12 absorbs rounding */
    a->le += x <= 1e-12;
    a->ge += x >= -1e-12;
}

/* The units of every resample into drawn[b * n_units + j] (stream units), drawn first so that
 * each task then runs through all of its resamples at once: the task's stream and its cells'
 * tables stay in registers and L1, and the streams are consumed in the same order as resample by
 * resample (each stream belongs to one task), so the numbers are those of that order. A unit is
 * a base-n digit of a 32-bit number (x n: the high word is the digit, the low word the rest);
 * a number gives the k digits with n^k <= 256, whose n^k combinations are then equally likely
 * to within a relative 2^-24. */
static void draw_units(row_boot *w, cs_rng *units)
{
    uint32_t nu = (uint32_t)w->n_units, *drawn = w->drawn;
    size_t n = w->n_units * w->resamples, per = 1;
    if (nu == 1) {
        memset(drawn, 0, n * sizeof(*drawn));
        return;
    }
    for (uint64_t pw = nu; pw * nu <= 256; pw *= nu) {
        per++;
    }
    halves h = {.r = *units};
    for (size_t k = 0; k < n;) {
        uint32_t x = half_next(&h);
        for (size_t d = 0; d < per && k < n; d++) {
            uint64_t m = (uint64_t)x * nu;
            drawn[k++] = (uint32_t)(m >> 32);
            x = (uint32_t)m;
        }
    }
}

/* Task t's laws by unit, for the loop below. */
typedef struct lat_laws {
    const bt_alias *tab[64];
    uint64_t size[64];
} lat_laws;

static void lat_open(const row_boot *w, size_t t, lat_laws *l)
{
    for (size_t u = 0; u < w->n_units; u++) {
        const bt_law *lw = w->plans[t * w->n_units + u].lw;
        l->tab[u] = lw->tab;
        l->size[u] = lw->size;
    }
}

/* The draw of the law at l[u] from 32 random bits (bt_law_draw32). */
static inline int32_t lat_draw(const lat_laws *l, uint32_t u, uint32_t bits)
{
    uint64_t x = (uint64_t)bits * l->size[u];
    const bt_alias *e = &l->tab[u][x >> 32];
    int32_t keep = -(int32_t)((uint32_t)x < e->thr);
    return (e->keep & keep) | (e->other & ~keep);
}

/* The draws of tasks t0 and t1 (on their lattices, at most 64 units) for every resample, in
 * resample order, into v0 and v1 (room resamples * units): two per 64-bit number of the task's
 * stream (high word first). The draws of one task do not depend on each other, and the two
 * tasks' streams interleave, so the processor overlaps them. t0 == t1 draws one task (v1 is then
 * not written). */
static void lat_draws(row_boot *w, size_t t0, size_t t1, int32_t *v0, int32_t *v1)
{
    size_t n = w->n_units * w->resamples, k = 0;
    const uint32_t *drawn = w->drawn;
    lat_laws a, c;
    cs_rng r0 = w->streams[t0], r1 = w->streams[t1];
    lat_open(w, t0, &a);
    lat_open(w, t1, &c);
    if (t1 != t0) {
        for (; k + 1 < n; k += 2) {
            uint64_t x = cs_rng_u64(&r0), y = cs_rng_u64(&r1);
            uint32_t u = drawn[k], z = drawn[k + 1];
            v0[k] = lat_draw(&a, u, (uint32_t)(x >> 32));
            v1[k] = lat_draw(&c, u, (uint32_t)(y >> 32));
            v0[k + 1] = lat_draw(&a, z, (uint32_t)x);
            v1[k + 1] = lat_draw(&c, z, (uint32_t)y);
        }
        if (k < n) {
            v1[k] = lat_draw(&c, drawn[k], (uint32_t)(cs_rng_u64(&r1) >> 32));
        }
        w->streams[t1] = r1;
    } else {
        for (; k + 1 < n; k += 2) {
            uint64_t x = cs_rng_u64(&r0);
            v0[k] = lat_draw(&a, drawn[k], (uint32_t)(x >> 32));
            v0[k + 1] = lat_draw(&a, drawn[k + 1], (uint32_t)x);
        }
    }
    if (k < n) {
        v0[k] = lat_draw(&a, drawn[k], (uint32_t)(cs_rng_u64(&r0) >> 32));
    }
    w->streams[t0] = r0;
}

/* Task t's sums of its draws v per resample: counted, and added to the average's. */
static void lat_fold(row_boot *w, size_t t, const int32_t *v)
{
    const stat_acc *a = &w->acc[t], *avg = w->with_avg ? &w->acc[w->n_tasks] : NULL;
    size_t nb = w->resamples, nu = w->n_units;
    uint32_t *hist = a->hist;
    int64_t lo = a->lo, *total = avg != NULL && avg->lat ? w->total : NULL;
    double *vals = avg != NULL && !avg->lat ? w->avg : NULL, scale = a->scale;
    for (size_t b = 0; b < nb; b++) {
        int64_t sum = 0;
        if (nu == 3) {
            sum = (int64_t)v[3 * b] + v[3 * b + 1] + v[3 * b + 2];
        } else {
            for (size_t j = 0; j < nu; j++) {
                sum += v[b * nu + j];
            }
        }
        hist[(size_t)(sum - lo) * 4 + (b & 3)]++; /* 4 interleaved counts: see stat_acc */
        if (total != NULL) {
            total[b] += sum;
        } else if (vals != NULL) {
            vals[b] += (double)sum * scale;
        }
    }
}

/* Task t's resamples off a lattice: values kept; avg[b] += the value. */
static void task_values(row_boot *w, size_t t, double *avg)
{
    size_t nu = w->n_units;
    const bt_plan *p = &w->plans[t * nu];
    for (size_t b = 0; b < w->resamples; b++) {
        double sum = 0.0;
        for (size_t j = 0; j < nu; j++) {
            sum += bt_draw(&w->streams[t], &p[w->drawn[b * nu + j]]);
        }
        count_value(&w->acc[t], b, sum / (double)nu);
        avg[b] += sum / (double)nu;
    }
}

/* Every task's resamples (the tasks on a lattice two at a time), then the average's: its sum
 * over the tasks on their common lattice, or its value. */
static void run_tasks(row_boot *w)
{
    size_t nb = w->resamples, pending = SIZE_MAX;
    stat_acc *avg = w->with_avg ? &w->acc[w->n_tasks] : NULL;
    for (size_t t = 0; t < w->n_tasks; t++) {
        if (!w->acc[t].lat) {
            task_values(w, t, w->avg);
        } else if (pending == SIZE_MAX) {
            pending = t;
        } else {
            lat_draws(w, pending, t, w->v0, w->v1);
            lat_fold(w, pending, w->v0);
            lat_fold(w, t, w->v1);
            pending = SIZE_MAX;
        }
    }
    if (pending != SIZE_MAX) {
        lat_draws(w, pending, pending, w->v0, w->v0);
        lat_fold(w, pending, w->v0);
    }
    for (size_t b = 0; avg != NULL && b < nb; b++) {
        if (avg->lat) {
            avg->hist[(size_t)(w->total[b] - avg->lo) * 4 + (b & 3)]++;
        } else {
            count_value(avg, b, w->avg[b] / (double)w->n_tasks);
        }
    }
}

cs_rc cs_agg_boot_tasks(const cs_agg_hist *const *cells, size_t n_units, size_t n_tasks,
                        bool with_avg, size_t resamples, uint64_t unit_seed,
                        const uint64_t *task_seed, cs_agg_boot_cache *cache, cs_agg_ci *out,
                        cs_err *err)
{
    if (cells == NULL || n_units == 0 || n_units > UINT32_MAX || n_tasks == 0 || resamples == 0 ||
        cache == NULL) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "results: bootstrap of %zu units x %zu tasks, %zu "
                          "resamples",
                          n_units, n_tasks, resamples);
    }
    double avg = 0.0;
    for (size_t t = 0; t < n_tasks; t++) {
        uint64_t max_n;
        cs_rc rc = observe(cells[t], n_units, 1, &out[t].delta, &max_n, err);
        if (rc != CS_OK) {
            return rc;
        }
        avg += out[t].delta / (double)n_tasks;
    }
    row_boot w = {.n_units = n_units,
                  .n_tasks = n_tasks,
                  .n_out = n_tasks + with_avg,
                  .resamples = resamples,
                  .with_avg = with_avg};
    cs_rc rc = row_boot_init(&w, cells, cache);
    if (rc == CS_OK) {
        cs_rng units;
        cs_rng_seed(&units, unit_seed);
        for (size_t t = 0; t < n_tasks; t++) {
            cs_rng_seed(&w.streams[t], task_seed[t]);
        }
        draw_units(&w, &units);
        run_tasks(&w);
        if (with_avg) {
            out[n_tasks].delta = avg;
        }
        for (size_t k = 0; k < w.n_out; k++) {
            finish(&w.acc[k], resamples, w.scratch, &out[k]);
        }
    }
    row_boot_fini(&w);
    return rc == CS_OK ? CS_OK
                       : cs_err_set(err, CS_ENOMEM, 0, "results: bootstrap of %zu resamples",
                                    resamples);
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
    /* the cells by task (cells[u * n_tasks + t] -> by_task[t][u]), one stream per task */
    cs_agg_hist *tr = cs_alloc_array(n_units * n_tasks, sizeof(*tr));
    const cs_agg_hist **by_task = cs_alloc_array(n_tasks, sizeof(*by_task));
    uint64_t *seeds = cs_alloc_array(n_tasks, sizeof(*seeds));
    cs_agg_ci *all = cs_alloc_array(n_tasks + 1, sizeof(*all));
    cs_agg_boot_cache *cache = cs_agg_boot_cache_new();
    cs_rc rc = CS_ENOMEM;
    if (tr != NULL && by_task != NULL && seeds != NULL && all != NULL && cache != NULL) {
        for (size_t t = 0; t < n_tasks; t++) {
            for (size_t u = 0; u < n_units; u++) {
                tr[t * n_units + u] = cells[u * n_tasks + t];
            }
            by_task[t] = &tr[t * n_units];
            seeds[t] = seed ^ (0x9e3779b97f4a7c15ull * (t + 1));
        }
        rc = cs_agg_boot_tasks(by_task, n_units, n_tasks, n_tasks > 1, resamples, seed, seeds,
                               cache, all, err);
        if (rc == CS_OK) {
            *out = all[n_tasks > 1 ? n_tasks : 0];
        }
    }
    cs_agg_boot_cache_destroy(cache);
    cs_free_each((void *const[]){tr, (void *)by_task, seeds, all}, 4);
    if (rc == CS_ENOMEM && (err == NULL || err->rc != CS_ENOMEM)) {
        return cs_err_set(err, CS_ENOMEM, 0, "results: bootstrap of %zu resamples", resamples);
    }
    return rc;
}
