/* cs_boot_law.c - how the paired bootstrap draws one cell: exact binomial stages, or a tabulated
 * law drawn by an alias table and kept in a cache (cs_boot_int.h explains both).
 *
 * Why a law and a cache: a table of 30,000 rows against their references, 5 tasks and 3 seed
 * pairs each, resamples 450,000 cells 10,000 times. Drawing each cell by binomial stages costs
 * ~20 steps of a search per draw; a tabulated law costs one random number and one table lookup,
 * and its table (the exact distribution of the resampled sum, ~200 entries for 1,000 items) is
 * built once per distinct (n, counts): cells of different rows with equal counts share it.
 * The alias method quantises each probability to a multiple of 2^-32 (and the index draw's
 * multiply-shift biases an index by at most size / 2^32): far below the Monte Carlo error of any
 * number of resamples that fits in memory.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_agg.h"
#include "cs_alloc.h"
#include "cs_boot_int.h"

/* The laws a cache holds at most (each ~2 KB for 1,000 items): past it, plans own theirs. */
#define CACHE_MAX_LAWS (1u << 15)

typedef struct law_key {
    uint64_t n;
    uint64_t n_st;
    int64_t w[3];  /* the categories' lattice values, ascending */
    uint64_t c[3]; /* their counts */
} law_key;

typedef struct law_slot {
    law_key key;
    bt_law *law; /* NULL: empty */
} law_slot;

struct cs_agg_boot_cache {
    law_slot *slot; /* open addressing, CACHE_MAX_LAWS * 2 slots */
    size_t n;
    double *lf; /* lf[i] = log(i!) for i <= n_lf */
    size_t n_lf;
    double *pa, *pk, *dist, *q; /* tabulation scratch, room for scratch_n items */
    uint32_t *work;
    size_t scratch_n;
    void *buf; /* bt_cache_buffer's */
    size_t buf_bytes;
};

cs_agg_boot_cache *cs_agg_boot_cache_new(void)
{
    cs_agg_boot_cache *c = calloc(1, sizeof(*c));
    if (c != NULL) {
        c->slot = cs_calloc_array(2 * CACHE_MAX_LAWS, sizeof(*c->slot));
        if (c->slot == NULL) {
            free(c);
            return NULL;
        }
    }
    return c;
}

static void law_destroy(bt_law *l)
{
    if (l != NULL) {
        free(l->tab);
        free(l);
    }
}

void cs_agg_boot_cache_destroy(cs_agg_boot_cache *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < 2 * CACHE_MAX_LAWS; i++) {
        law_destroy(c->slot[i].law);
    }
    cs_free_each((void *const[]){c->slot, c->lf, c->pa, c->pk, c->dist, c->q, c->work, c->buf}, 8);
    free(c);
}

/* Room for cells of n items: log-factorials and the tabulation scratch. */
static bool cache_reserve(cs_agg_boot_cache *c, uint64_t n)
{
    if (n + 1 > c->n_lf) {
        double *lf = cs_realloc_array(c->lf, n + 1, sizeof(*lf));
        if (lf == NULL) {
            return false;
        }
        lf[0] = 0.0;
        for (size_t i = c->n_lf > 0 ? c->n_lf : 1; i <= n; i++) {
            lf[i] = lf[i - 1] + log((double)i);
        }
        c->lf = lf;
        c->n_lf = n + 1;
    }
    if (n + 1 > c->scratch_n) {
        size_t m = 2 * n + 2;
        cs_free_each((void *const[]){c->pa, c->pk, c->dist, c->q, c->work}, 5);
        c->pa = cs_alloc_array(m, sizeof(*c->pa));
        c->pk = cs_alloc_array(m, sizeof(*c->pk));
        c->dist = cs_alloc_array(m, sizeof(*c->dist));
        c->q = cs_alloc_array(m, sizeof(*c->q));
        c->work = cs_alloc_array(2 * m, sizeof(*c->work));
        c->scratch_n = c->pa && c->pk && c->dist && c->q && c->work ? n + 1 : 0;
    }
    return c->scratch_n > n;
}

void *bt_cache_buffer(cs_agg_boot_cache *c, size_t bytes)
{
    if (bytes > c->buf_bytes) {
        free(c->buf);
        c->buf = malloc(bytes);
        c->buf_bytes = c->buf != NULL ? bytes : 0;
    }
    return c->buf;
}

static bt_stage make_stage(double p, double value, bool all)
{
    bt_stage s = {.value = value, .all = all, .flip = p > 0.5};
    s.p = s.flip ? 1.0 - p : p;
    s.lp = s.p > 0.0 ? log(s.p) : 0.0;
    s.lq = log1p(-s.p);
    s.ratio = s.p / (1.0 - s.p);
    return s;
}

/* Binomial(n, s->p) by inversion. The support is enumerated from the mode outward (m, m-1, m+1,
 * m-2, ...): any fixed order of the outcomes gives an exact inversion sampler, and this one needs
 * about 1.6 standard deviations of steps. The mode's probability comes from lgamma: the stages
 * serve the rare cells without a law, so they keep no table. */
static uint64_t binom(cs_rng *r, uint64_t n, const bt_stage *s)
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
    double pm = exp(lgamma((double)n + 1.0) - lgamma((double)m + 1.0) -
                    lgamma((double)(n - m) + 1.0) + (double)m * s->lp + (double)(n - m) * s->lq);
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

double bt_draw_stages(cs_rng *r, const bt_plan *c)
{
    uint64_t left = c->n;
    double sum = 0.0;
    for (size_t k = 0; k < c->n_st && left > 0; k++) {
        const bt_stage *s = &c->st[k];
        uint64_t got = s->all ? left : binom(r, left, s);
        got = s->flip && !s->all ? left - got : got;
        sum += (double)got * s->value;
        left -= got;
    }
    return sum / (double)c->n;
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

/* The smallest m <= 64 that makes every stage's value an integer multiple of 1 / m (values
 * s / kr - t / kc are), 0 when there is none. */
static uint64_t lattice_m(const bt_stage *st, size_t n_st)
{
    for (uint64_t m = 1; m <= 64; m++) {
        bool ok = true;
        for (size_t k = 0; k < n_st && ok; k++) {
            double w = st[k].value * (double)m;
            ok = fabs(w - nearbyint(w)) < 1e-9 && fabs(w) < 1e6;
        }
        if (ok) {
            return m;
        }
    }
    return 0;
}

/* The key of a plan with lattice m; false when its shape has no law (more than three
 * categories, or three that are not -v, 0, +v). */
static bool law_key_of(const bt_plan *p, uint64_t m, law_key *k)
{
    memset(k, 0, sizeof(*k));
    if (p->n_st < 1 || p->n_st > 3) {
        return false;
    }
    k->n = p->n;
    k->n_st = p->n_st;
    for (size_t i = 0; i < p->n_st; i++) {
        int64_t w = (int64_t)nearbyint(p->st[i].value * (double)m);
        uint64_t c = p->st[i].cnt;
        size_t at = i;
        for (; at > 0 && k->w[at - 1] > w; at--) { /* insertion: ascending values */
            k->w[at] = k->w[at - 1];
            k->c[at] = k->c[at - 1];
        }
        k->w[at] = w;
        k->c[at] = c;
    }
    return p->n_st < 3 || (k->w[1] == 0 && k->w[0] == -k->w[2]);
}

/* The distribution of the resampled sum into c->dist as L = base + i * stride, i < *size. */
static void law_dist(const law_key *k, cs_agg_boot_cache *c, int64_t *base, int64_t *stride,
                     size_t *size)
{
    uint64_t n = k->n, alo, ahi, klo, khi;
    double *pa = c->pa, *pk = c->pk, *dist = c->dist;
    if (k->n_st == 1) { /* every item has the value w[0] */
        dist[0] = 1.0;
        *stride = 1;
        *base = (int64_t)n * k->w[0];
        *size = 1;
        return;
    }
    if (k->n_st == 2) { /* g items of value w[1]: L = n w[0] + g (w[1] - w[0]) */
        binom_pmf(n, (double)k->c[1] / (double)n, c->lf, pa, &alo, &ahi);
        memcpy(dist, &pa[alo], (ahi - alo + 1) * sizeof(*dist));
        *stride = k->w[1] - k->w[0];
        *base = (int64_t)n * k->w[0] + (int64_t)alo * *stride;
        *size = ahi - alo + 1;
        return;
    }
    /* m = items with a nonzero difference ~ Binomial(n, p_nz), j of them +v ~ Binomial(m, q)
     * for every m with the same q, so the conditional law of m + 1 follows from that of m by
     * Pascal's rule (no division, no exp): L / v = j - (m - j), at dist[n + 2 j - m]. */
    uint64_t nz = k->c[0] + k->c[2];
    double q = (double)k->c[2] / (double)nz;
    memset(dist, 0, (2 * n + 1) * sizeof(*dist));
    binom_pmf(n, (double)nz / (double)n, c->lf, pa, &alo, &ahi);
    binom_pmf(alo, q, c->lf, pk, &klo, &khi);
    double tiny = pk[(klo + khi) / 2] * 1e-18;
    for (uint64_t m = alo;; m++) {
        for (uint64_t j = klo; j <= khi; j++) {
            dist[n + 2 * j - m] += pa[m] * pk[j];
        }
        if (m == ahi) {
            break;
        }
        pk[khi + 1] = 0.0; /* law of m + 1: P(j) = P_m(j) (1 - q) + P_m(j - 1) q */
        for (uint64_t j = khi + 1; j > klo; j--) {
            pk[j] = pk[j] * (1.0 - q) + pk[j - 1] * q;
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
    size_t lo = 0, hi = 2 * n;
    while (lo < hi && dist[lo] == 0.0) {
        lo++;
    }
    while (hi > lo && dist[hi] == 0.0) {
        hi--;
    }
    memmove(dist, &dist[lo], (hi - lo + 1) * sizeof(*dist));
    *stride = k->w[2];
    *base = ((int64_t)lo - (int64_t)n) * k->w[2];
    *size = hi - lo + 1;
}

/* The alias table of the probabilities p[0..size) (not normalised) of L = base + i * stride
 * into tab (Vose's method); q and work: scratch of size and 2 * size. */
static void alias_build(const double *p, size_t size, int64_t base, int64_t stride, bt_alias *tab,
                        double *q, uint32_t *work)
{
    double total = 0.0;
    for (size_t i = 0; i < size; i++) {
        total += p[i];
    }
    uint32_t *small = work, *large = work + size;
    size_t ns = 0, nl = 0;
    for (size_t i = 0; i < size; i++) {
        q[i] = p[i] / total * (double)size;
        if (q[i] < 1.0) {
            small[ns++] = (uint32_t)i;
        } else {
            large[nl++] = (uint32_t)i;
        }
        int32_t li = (int32_t)(base + (int64_t)i * stride);
        tab[i] = (bt_alias){0xffffffffu, li, li}; /* keeps itself */
    }
    while (ns > 0 && nl > 0) {
        uint32_t s = small[--ns], l = large[nl - 1];
        double thr = ldexp(q[s], 32);
        tab[s].thr = thr < 4294967295.0 ? (uint32_t)thr : 0xffffffffu;
        tab[s].other = (int32_t)(base + (int64_t)l * stride);
        q[l] = (q[l] + q[s]) - 1.0;
        if (q[l] < 1.0) {
            nl--;
            small[ns++] = l;
        }
    }
    /* what is left has q 1 up to rounding: it keeps itself (set above) */
}

/* The law of the plan with key k, built; NULL when memory runs out. */
static bt_law *law_build(const law_key *k, cs_agg_boot_cache *c)
{
    int64_t base, stride;
    size_t size;
    law_dist(k, c, &base, &stride, &size);
    bt_law *l = malloc(sizeof(*l));
    bt_alias *tab = cs_alloc_array(size, sizeof(*tab));
    if (l == NULL || tab == NULL) {
        free(l);
        free(tab);
        return NULL;
    }
    alias_build(c->dist, size, base, stride, tab, c->q, c->work);
    size_t first = 0, last = size - 1;
    while (first < last && c->dist[first] == 0.0) {
        first++;
    }
    while (last > first && c->dist[last] == 0.0) {
        last--;
    }
    *l = (bt_law){.lmin = base + (int64_t)first * stride,
                  .lmax = base + (int64_t)last * stride,
                  .size = (uint32_t)size,
                  .tab = tab};
    return l;
}

static uint64_t key_hash(const law_key *k)
{
    const unsigned char *b = (const unsigned char *)k;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < sizeof(*k); i++) {
        h = (h ^ b[i]) * 0x100000001b3ull;
    }
    return h;
}

/* The law of plan p (its stages made), through the cache; sets p->lw (and p->own when the cache
 * is full). Leaves p->lw NULL when the shape has none or the scratch cannot grow. */
static cs_rc plan_law(bt_plan *p, cs_agg_boot_cache *c)
{
    uint64_t m = lattice_m(p->st, p->n_st);
    law_key k;
    if (m == 0 || p->n > 100000 || !law_key_of(p, m, &k)) {
        return CS_OK; /* |L| <= n * |w| < 100,000 * 64 * |value|: int32 for values <= 300 */
    }
    for (size_t i = 0; i < 3; i++) {
        if (k.w[i] > 64 * 300 || k.w[i] < -64 * 300) {
            return CS_OK;
        }
    }
    size_t mask = 2 * CACHE_MAX_LAWS - 1, slot = (size_t)(key_hash(&k) & mask);
    while (c->slot[slot].law != NULL && memcmp(&c->slot[slot].key, &k, sizeof(k)) != 0) {
        slot = (slot + 1) & mask;
    }
    if (c->slot[slot].law == NULL) {
        if (!cache_reserve(c, p->n)) {
            return CS_ENOMEM;
        }
        bt_law *l = law_build(&k, c);
        if (l == NULL) {
            return CS_ENOMEM;
        }
        if (c->n < CACHE_MAX_LAWS) {
            c->slot[slot] = (law_slot){k, l};
            c->n++;
        } else {
            p->own = l;
        }
        p->lw = l;
    } else {
        p->lw = c->slot[slot].law;
    }
    p->unit = 1.0 / ((double)p->n * (double)m);
    p->lattice = p->n * m;
    return CS_OK;
}

cs_rc bt_plan_make(const cs_agg_hist *c, bt_stage *st, cs_agg_boot_cache *cache, bt_plan *out)
{
    size_t m = 0;
    for (size_t k = 0; k < c->n_cat; k++) { /* equal values merged, empty categories dropped */
        if (c->count[k] == 0) {
            continue;
        }
        size_t at = m;
        for (size_t i = 0; i < m; i++) {
            at = st[i].value == c->value[k] ? i : at;
        }
        if (at == m) {
            st[m++] = (bt_stage){.value = c->value[k]};
        }
        st[at].cnt += c->count[k];
    }
    for (size_t i = 1; i < m; i++) { /* largest count first: its draw takes most items at once */
        for (size_t k = i; k > 0 && st[k].cnt > st[k - 1].cnt; k--) {
            bt_stage t = st[k];
            st[k] = st[k - 1];
            st[k - 1] = t;
        }
    }
    uint64_t left = 0;
    for (size_t i = 0; i < m; i++) {
        left += st[i].cnt;
    }
    *out = (bt_plan){.st = st, .n_st = m, .n = left};
    for (size_t i = 0; i < m; i++) {
        uint64_t cnt = st[i].cnt;
        st[i] = make_stage((double)cnt / (double)left, st[i].value, i + 1 == m);
        st[i].cnt = cnt;
        left -= cnt;
    }
    return plan_law(out, cache);
}

void bt_plan_fini(bt_plan *p)
{
    law_destroy(p->own);
    p->own = NULL;
    p->lw = NULL;
}
