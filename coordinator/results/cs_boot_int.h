/* cs_boot_int.h - the samplers of the paired bootstrap, shared by cs_boot.c (the resampling of a
 * row, the intervals and p-values) and cs_boot_law.c (how one cell is drawn). Not for other
 * modules: the interface is cs_agg.h.
 *
 * A cell (cs_agg_hist: n items, count[c] of them with the difference value[c]) is resampled as a
 * multinomial draw of n items over its categories with the observed frequencies, which is what
 * drawing n item indices with replacement gives. Two ways to draw it:
 *   - a law: when the values are integers on a common lattice (value * m integral for a small m:
 *     one job per side gives -1, 0, +1) and the cell has two categories, or three with values
 *     -v, 0, +v, the law of the resampled sum L (in lattice units: the cell's mean is
 *     L / (n * m)) is tabulated once, exactly, and drawn by an alias table (one category, all
 *     items equal, is a law of one value): one 64-bit random
 *     number per draw. Laws are kept in a cache keyed by the cell's counts, so the cells that
 *     many rows share (equal counts) are tabulated once;
 *   - stages: otherwise, a chain of exact binomial draws (one per category but the last).
 */
#ifndef CS_COORDINATOR_RESULTS_CS_BOOT_INT_H
#define CS_COORDINATOR_RESULTS_CS_BOOT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_agg.h"
#include "cs_rng.h"

/* One entry of an alias table: drawn (uniformly), it gives L = keep with probability
 * thr / 2^32, else L = other. */
typedef struct bt_alias {
    uint32_t thr;
    int32_t keep, other;
} bt_alias;

/* The tabulated law of a cell's resampled sum L (the alias method over size entries). lmin,
 * lmax: the smallest and largest L with a probability > 0. */
typedef struct bt_law {
    int64_t lmin, lmax;
    uint32_t size;
    bt_alias *tab;
} bt_law;

/* One stage of a multinomial draw: the items left are Binomial(left, p) in this category. */
typedef struct bt_stage {
    double p, lp, lq, ratio; /* p <= 0.5, log p, log(1 - p), p / (1 - p) */
    double value;
    uint64_t cnt;   /* the category's count */
    bool flip, all; /* flip: the stage draws the complement; all: the last category */
} bt_stage;

/* A cell prepared for drawing. With a law (lw != NULL) a draw is L * unit; own: the law is the
 * plan's (the cache was full), freed by bt_plan_fini. Otherwise the stages draw it. */
typedef struct bt_plan {
    bt_stage *st;
    size_t n_st;
    uint64_t n;
    const bt_law *lw;
    bt_law *own;
    double unit;      /* 1 / (n * m) */
    uint64_t lattice; /* n * m: cells of equal lattice sum their L exactly */
} bt_plan;

/* The per-thread state of the bootstraps: the cache of laws and scratch buffers. */
struct cs_agg_boot_cache;

/* A buffer of at least bytes (max_align_t aligned), the cache's: valid until the next call.
 * NULL when memory runs out. */
void *bt_cache_buffer(struct cs_agg_boot_cache *c, size_t bytes);

/* Prepares cell c (st: room for c->n_cat stages): its stages, and its law when it has one
 * (from the cache, or the plan's own when the cache is full). CS_ENOMEM. */
cs_rc bt_plan_make(const cs_agg_hist *c, bt_stage *st, struct cs_agg_boot_cache *cache,
                   bt_plan *out);
void bt_plan_fini(bt_plan *p);

/* One draw of the cell's resampled mean difference by its stages. */
double bt_draw_stages(cs_rng *r, const bt_plan *c);

/* One draw of a law from 32 random bits u: u * size splits into the entry (the high word) and
 * a uniform fraction (the low word) compared with the entry's threshold. The fraction of entry i
 * runs over 2^32 / size values spaced by size, so each outcome's probability is off by at most
 * 2^-32 from the table's (a total variation of at most 2 size 2^-32: 1.2e-7 for 256 entries),
 * far below the Monte Carlo error of any number of resamples. Two draws per 64-bit number. */
static inline int32_t bt_law_draw32(const bt_law *l, uint32_t u)
{
    uint64_t x = (uint64_t)u * l->size;
    const bt_alias *e = &l->tab[x >> 32];
    /* a mask, not a branch: the comparison is a coin flip, mispredicted half of the time */
    int32_t keep = -(int32_t)((uint32_t)x < e->thr);
    return (e->keep & keep) | (e->other & ~keep);
}

/* One draw of a law, from the high 32 bits of the next number of r. */
static inline int64_t bt_law_draw(const bt_law *l, cs_rng *r)
{
    return bt_law_draw32(l, (uint32_t)(cs_rng_u64(r) >> 32));
}

/* One draw of the cell's resampled mean difference, by its law or its stages. */
static inline double bt_draw(cs_rng *r, const bt_plan *c)
{
    return c->lw != NULL ? (double)bt_law_draw(c->lw, r) * c->unit : bt_draw_stages(r, c);
}

#endif
