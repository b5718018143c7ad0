/* cs_agg_item.c - the bootstrap over items of a row's own average (average.item_ci), for rows of
 * one done job: with one seed there is no spread across seeds to draw an error bar from, but the
 * tasks' items are a sample, and resampling them gives the interval that `calsweep plot` draws
 * (docs/results.md "Intervals over items"). Asked for with cs_agg_opts.item_resamples. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_agg_int.h"

static uint64_t fnv(const char *s, uint64_t h)
{
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    }
    return h;
}

/* The ones of the first n bits of b (bit i of byte i / 8, least significant first). */
static size_t ones(const uint8_t *b, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n / 8; i++) {
        k += (size_t)__builtin_popcount(b[i]);
    }
    if (n % 8 != 0) {
        k += (size_t)__builtin_popcount(b[n / 8] & ((1u << (n % 8)) - 1u));
    }
    return k;
}

/* The item interval of row r (one done job): per accuracy task of the average, the job's headline
 * outcomes as a two-category cell (n - k items 0, k items 1); the statistic is the mean over the
 * tasks of the resampled accuracy, M4. Leaves the row's interval NAN when a task lacks items. */
static cs_rc row_items(ag *a, ag_row *r, cs_agg_hist *cells, const cs_agg_hist **pc,
                       uint32_t *counts, uint64_t *seeds, cs_agg_ci *out, cs_agg_boot_cache *cache)
{
    static const double VALUES[2] = {0.0, 1.0};
    const cs_agg_job *j = NULL;
    size_t n = 0;
    for (size_t i = 0; i < r->n_jobs && j == NULL; i++) {
        j = ag_is_done(&a->jobs[r->jobs[i]]) ? &a->jobs[r->jobs[i]] : NULL;
    }
    for (size_t t = 0; t < a->n_tasks; t++) {
        if (!a->tasks[t].in_avg) {
            continue;
        }
        const cs_agg_outcome *o = ag_outcome(j, a->tasks[t].name, a->tasks[t].headline);
        if (o == NULL || o->bits == NULL || o->n == 0 || o->n > UINT32_MAX) {
            return CS_OK;
        }
        size_t k = ones(o->bits, o->n);
        counts[2 * n] = (uint32_t)(o->n - k);
        counts[2 * n + 1] = (uint32_t)k;
        cells[n] = (cs_agg_hist){.n_cat = 2, .count = &counts[2 * n], .value = VALUES};
        pc[n] = &cells[n];
        seeds[n] = fnv(a->tasks[t].name, fnv(r->key, 0x84222325cbf29ce4ull ^ a->o.seed));
        n++;
    }
    if (n == 0) {
        return CS_OK;
    }
    cs_rc rc = cs_agg_boot_tasks(pc, 1, n, n > 1, a->o.item_resamples, seeds[0], seeds, cache, out,
                                 a->err);
    if (rc == CS_OK) {
        r->item_lo = out[n > 1 ? n : 0].lo;
        r->item_hi = out[n > 1 ? n : 0].hi;
    }
    return rc;
}

cs_rc ag_item_cis(ag *a)
{
    for (size_t r = 0; r < a->n_rows; r++) {
        a->rows[r].item_lo = a->rows[r].item_hi = NAN;
    }
    if (a->o.item_resamples == 0 || a->o.slim || a->n_avg == 0) {
        return CS_OK;
    }
    size_t na = a->n_avg;
    cs_agg_hist *cells = cs_alloc_array(na, sizeof(*cells));
    const cs_agg_hist **pc = cs_alloc_array(na, sizeof(*pc));
    uint32_t *counts = cs_alloc_array(2 * na, sizeof(*counts));
    uint64_t *seeds = cs_alloc_array(na, sizeof(*seeds));
    cs_agg_ci *out = cs_alloc_array(na + 1, sizeof(*out));
    cs_agg_boot_cache *cache = cs_agg_boot_cache_new();
    cs_rc rc = cells && pc && counts && seeds && out && cache ? CS_OK : CS_ENOMEM;
    for (size_t r = 0; r < a->n_rows && rc == CS_OK; r++) {
        if (a->rows[r].n_done == 1 && !(a->rows[r].flags & AG_F_UNTESTABLE)) {
            rc = row_items(a, &a->rows[r], cells, pc, counts, seeds, out, cache);
        }
    }
    cs_agg_boot_cache_destroy(cache);
    cs_free_each((void *const[]){cells, (void *)pc, counts, seeds, out}, 5);
    return rc == CS_ENOMEM ? cs_err_set(a->err, CS_ENOMEM, 0, "results: bootstrap over items") : rc;
}
