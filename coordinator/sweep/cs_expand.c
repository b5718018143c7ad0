/* cs_expand.c - grid expansion as a stream (see cs_expand.h for the order and the config shape).
 *
 * create() walks the product once over value indices only, to count the cells exclude removes and
 * the (model, eval) pairs used, so limits are checked before any config is built. next() builds
 * one config at a time into reusable buffers, hashes it, and drops keys already seen (an open
 * addressing set of raw 32-byte keys sized from the upper bound, so it never grows).
 */
#include "cs_expand.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_limits.h"
#include "cs_version.h"

#define MAX_PRODUCT ((size_t)200000000) /* cells the counting pass may walk (about 1 s) */

typedef struct slot {
    cs_buf cfg;
    cs_buf axes;
    char key[CS_SHA256_HEX_LEN + 1];
    uint8_t raw[32];
    bool baseline;
    const cs_axis_value **vals; /* n_axes */
    /* The last build of this slot, so the next one rewrites only what changed: */
    const cs_axis_value **built; /* n_axes: the values cfg and axes were built from */
    bool built_ok;               /* cfg, axes, cfg_prefix and axes_end are valid */
    size_t cfg_prefix;           /* length of cfg up to the end of the "model" member */
    size_t *axes_end;            /* n_axes: length of axes after its i-th member (sorted order) */
} slot;

typedef enum phase { PH_GRID, PH_INCLUDE, PH_DONE } phase;

struct cs_expander {
    const cs_sweep *s;
    size_t max_jobs;
    cs_expand_counts counts;
    size_t *idx;               /* odometer over dims */
    size_t *dim_of;            /* dimension of each axis */
    const cs_axis_value **src; /* n_axes: scratch for the candidate's values */
    bool started;
    phase ph;
    size_t inc;    /* next include cell */
    size_t *order; /* axes sorted by name (memcmp), for the axes object */
    size_t *extra; /* extra axes sorted by name */
    size_t n_extra;
    bool *pair_seen; /* n_models * n_evals */
    uint8_t *set;    /* cap * 32 bytes */
    uint8_t *used;   /* cap */
    size_t cap;
    slot slots[2];
    int cur;     /* slot of the last cell returned, -1 before the first */
    int pending; /* slot waiting to be returned after a baseline, -1 if none */
    cs_axis_value none_value;
    cs_expander **subs; /* a union of grids: one expander per sub-grid, streamed in order */
    size_t n_subs, cur_sub;
    mbedtls_sha256_context mid; /* hash state after mid_text */
    cs_buf mid_text;            /* the config prefix hashed into mid */
    bool mid_ok;
};

/* ---- dedup set ------------------------------------------------------------------------------ */

/* Inserts raw; returns false when it was already present. */
static bool set_insert(cs_expander *e, const uint8_t raw[32])
{
    uint64_t h;
    size_t i;
    memcpy(&h, raw, sizeof(h));
    i = (size_t)h & (e->cap - 1);
    while (e->used[i]) {
        if (memcmp(e->set + i * 32, raw, 32) == 0) {
            return false;
        }
        i = (i + 1) & (e->cap - 1);
    }
    e->used[i] = 1;
    memcpy(e->set + i * 32, raw, 32);
    return true;
}

/* ---- counting ------------------------------------------------------------------------------- */

static bool excluded(const cs_sweep *s, const size_t *dim_of, const size_t *idx)
{
    for (size_t p = 0; p < s->n_excludes; p++) {
        const cs_exclude *ex = &s->excludes[p];
        bool all = ex->n_conds > 0;
        for (size_t c = 0; c < ex->n_conds && all; c++) {
            const cs_exclude_cond *ec = &ex->conds[c];
            all = ec->match[idx[dim_of[ec->axis]]];
        }
        if (all) {
            return true;
        }
    }
    return false;
}

/* Advances the odometer (last dimension fastest); false after the last tuple. */
static bool advance(const cs_sweep *s, size_t *idx)
{
    for (size_t d = s->n_dims; d-- > 0;) {
        if (++idx[d] < s->dims[d].len) {
            return true;
        }
        idx[d] = 0;
    }
    return false;
}

static cs_rc count_cells(cs_expander *e, const size_t *dim_of, cs_err *err)
{
    const cs_sweep *s = e->s;
    size_t product = 1, kept = 0;
    size_t *idx = NULL;
    size_t ma = s->mission[CS_AXIS_MODEL], ea = s->mission[CS_AXIS_EVAL];
    bool walk;

    for (size_t d = 0; d < s->n_dims; d++) {
        if (!cs_mul_ok(product, s->dims[d].len, &product)) {
            return cs_err_set(err, CS_ETOOBIG, 0,
                              "the grid product overflows (limit %zu jobs): fewer values per axis",
                              e->max_jobs);
        }
    }
    if (s->n_excludes > 0 && product > MAX_PRODUCT) {
        return cs_err_set(err, CS_ETOOBIG, 0,
                          "the grid product has %zu cells; exclude patterns can be checked over "
                          "at most %zu (limit %zu jobs)",
                          product, MAX_PRODUCT, e->max_jobs);
    }
    if (s->n_excludes > 0 && product > (size_t)CS_LIMIT_EXCLUDE_WORK / s->n_excludes) {
        return cs_err_set(err, CS_ETOOBIG, 0,
                          "the grid has %zu cells and %zu exclude patterns: checking every cell "
                          "against every pattern is more than %lld tests; list values in fewer "
                          "patterns",
                          product, s->n_excludes, (long long)CS_LIMIT_EXCLUDE_WORK);
    }
    e->counts.product = product;
    /* Without exclude patterns only the pairs need the walk, and they are the product of the
     * model and eval axes; with patterns every tuple is checked. */
    walk = s->n_excludes > 0;
    if (!walk) {
        kept = product;
        for (size_t m = 0; m < s->axes[ma].n; m++) {
            for (size_t v = 0; v < s->axes[ea].n; v++) {
                e->pair_seen[s->axes[ma].values[m].ref * s->n_evals + s->axes[ea].values[v].ref] =
                        true;
            }
        }
    } else {
        idx = cs_calloc_array(s->n_dims ? s->n_dims : 1, sizeof(*idx));
        if (!idx) {
            return cs_err_set(err, CS_ENOMEM, 0, "expand: out of memory");
        }
        do {
            if (!excluded(s, dim_of, idx)) {
                const cs_axis_value *mv = &s->axes[ma].values[idx[dim_of[ma]]];
                const cs_axis_value *ev = &s->axes[ea].values[idx[dim_of[ea]]];
                kept++;
                e->pair_seen[mv->ref * s->n_evals + ev->ref] = true;
            }
        } while (s->n_dims > 0 && advance(s, idx));
        free(idx);
    }
    for (size_t i = 0; i < s->n_includes; i++) {
        const cs_axis_value *mv = &s->includes[i].values[ma];
        const cs_axis_value *ev = &s->includes[i].values[ea];
        e->pair_seen[mv->ref * s->n_evals + ev->ref] = true;
    }
    e->counts.excluded = product - kept;
    e->counts.included = s->n_includes;
    for (size_t i = 0; i < s->n_models * s->n_evals; i++) {
        e->counts.baselines_max += e->pair_seen[i];
        e->pair_seen[i] = false; /* reused by next() for "baseline returned" */
    }
    e->counts.upper = kept + s->n_includes + e->counts.baselines_max;
    if (kept + s->n_includes == 0) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "the sweep expands to 0 jobs: the grid has %zu cells and exclude "
                          "removes all %zu",
                          product, product - kept);
    }
    if (e->counts.upper > e->max_jobs) {
        return cs_err_set(err, CS_ETOOBIG, 0,
                          "the sweep expands to up to %zu jobs (%zu grid cells - %zu excluded + "
                          "%zu included + %zu baselines), more than the limit of %zu",
                          e->counts.upper, product, product - kept, s->n_includes,
                          e->counts.baselines_max, e->max_jobs);
    }
    return CS_OK;
}

/* ---- create / destroy ----------------------------------------------------------------------- */

static int name_cmp(const cs_sweep *s, size_t a, size_t b)
{
    return strcmp(s->axes[a].name, s->axes[b].name);
}

/* Heap sort of axis indices by name (strcmp is memcmp order on these ASCII names): O(n log n)
 * whatever the order written (an insertion sort took minutes for 100,000 extra axes written in
 * reverse). Names are distinct, so stability does not matter. */
static void sift_down(const cs_sweep *s, size_t *v, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1, x;
        if (child >= n) {
            return;
        }
        if (child + 1 < n && name_cmp(s, v[child], v[child + 1]) < 0) {
            child++;
        }
        if (name_cmp(s, v[root], v[child]) >= 0) {
            return;
        }
        x = v[root];
        v[root] = v[child];
        v[child] = x;
        root = child;
    }
}

static void sort_axes(const cs_sweep *s, size_t *v, size_t n)
{
    for (size_t i = n / 2; i-- > 0;) {
        sift_down(s, v, i, n);
    }
    for (size_t end = n; end-- > 1;) {
        size_t x = v[0];
        v[0] = v[end];
        v[end] = x;
        sift_down(s, v, 0, end);
    }
}

/* A union of grids (cs_sweep.grids): an expander per sub-grid, and this one's set to drop the
 * jobs a later sub-grid shares with an earlier one. */
static cs_rc union_create(const cs_sweep *s, const cs_expand_opts *opts, cs_expander **out,
                          cs_err *err)
{
    cs_expander *e = calloc(1, sizeof(*e));
    size_t upper = 0;
    cs_rc rc = CS_OK;
    if (!e || !(e->subs = cs_calloc_array(s->n_grids, sizeof(*e->subs)))) {
        free(e);
        return cs_err_set(err, CS_ENOMEM, 0, "expand: out of memory");
    }
    e->s = s;
    e->cur = e->pending = -1;
    e->max_jobs = opts && opts->max_jobs ? opts->max_jobs : CS_EXPAND_DEFAULT_MAX;
    mbedtls_sha256_init(&e->mid);
    for (size_t i = 0; i < s->n_grids && rc == CS_OK; i++) {
        cs_err sub = {0};
        rc = cs_expand_create(s->grids[i], opts, &e->subs[i], &sub);
        if (rc != CS_OK) {
            rc = cs_err_set(err, rc, 0, "grids.%s: %s", s->grid_names[i], sub.msg);
            break;
        }
        e->n_subs++;
        upper += e->subs[i]->counts.upper;
    }
    if (rc == CS_OK && upper > e->max_jobs) {
        rc = cs_err_set(err, CS_ETOOBIG, 0,
                        "the sweep's %zu sub-grids expand to up to %zu jobs, more than the limit "
                        "of %zu",
                        s->n_grids, upper, e->max_jobs);
    }
    e->cap = 16;
    while (rc == CS_OK && e->cap < 2 * upper) {
        e->cap *= 2;
    }
    if (rc == CS_OK &&
        (!(e->set = cs_alloc_array(e->cap, 32)) || !(e->used = cs_calloc_array(e->cap, 1)))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "expand: out of memory for %zu keys", e->cap);
    }
    if (rc != CS_OK) {
        cs_expand_destroy(e);
        return rc;
    }
    *out = e;
    return CS_OK;
}

/* The next cell of a union: the sub-grids in order, a key once. */
static cs_rc union_next(cs_expander *e, cs_cell *out, cs_err *err)
{
    while (e->cur_sub < e->n_subs) {
        cs_rc rc = cs_expand_next(e->subs[e->cur_sub], out, err);
        uint8_t raw[32];
        if (rc == CS_ENOENT) {
            e->cur_sub++;
            continue;
        }
        if (rc != CS_OK) {
            return rc;
        }
        for (size_t i = 0; i < 32; i++) {
            unsigned hi = (unsigned)out->key[2 * i], lo = (unsigned)out->key[2 * i + 1];
            hi = hi <= '9' ? hi - '0' : hi - 'a' + 10;
            lo = lo <= '9' ? lo - '0' : lo - 'a' + 10;
            raw[i] = (uint8_t)(hi << 4 | lo);
        }
        if (!set_insert(e, raw)) {
            e->counts.duplicates++;
            continue;
        }
        e->counts.emitted++;
        e->counts.baselines += out->baseline;
        return CS_OK;
    }
    e->counts.done = true;
    return CS_ENOENT;
}

cs_rc cs_expand_create(const cs_sweep *s, const cs_expand_opts *opts, cs_expander **out,
                       cs_err *err)
{
    cs_expander *e = NULL;
    size_t *dim_of = NULL;
    cs_rc rc = CS_OK;

    *out = NULL;
    if (s->n_grids > 0) {
        return union_create(s, opts, out, err);
    }
    if (s->n_axes == 0 || s->n_models == 0 || s->n_evals == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "expand: the sweep has no axes, models or evals");
    }
    e = calloc(1, sizeof(*e));
    if (!e) {
        return cs_err_set(err, CS_ENOMEM, 0, "expand: out of memory");
    }
    e->s = s;
    e->max_jobs = opts && opts->max_jobs ? opts->max_jobs : CS_EXPAND_DEFAULT_MAX;
    e->cur = e->pending = -1;
    mbedtls_sha256_init(&e->mid);
    e->idx = cs_calloc_array(s->n_dims ? s->n_dims : 1, sizeof(*e->idx));
    e->order = cs_alloc_array(s->n_axes, sizeof(*e->order));
    e->extra = cs_alloc_array(s->n_axes, sizeof(*e->extra));
    e->pair_seen = cs_calloc_array(s->n_models * s->n_evals, sizeof(*e->pair_seen));
    dim_of = cs_alloc_array(s->n_axes, sizeof(*dim_of));
    e->src = cs_calloc_array(s->n_axes, sizeof(*e->src));
    e->none_value.canon = cs_strdup("{\"name\":\"none\"}");
    e->none_value.label = cs_strdup("{\"name\":\"none\"}");
    e->none_value.text = cs_strdup("none");
    e->none_value.flags = CS_VAL_NONE | CS_VAL_NO_CALIB;
    for (int k = 0; k < 2; k++) {
        e->slots[k].vals = cs_calloc_array(s->n_axes, sizeof(*e->slots[k].vals));
        e->slots[k].built = cs_calloc_array(s->n_axes, sizeof(*e->slots[k].built));
        e->slots[k].axes_end = cs_calloc_array(s->n_axes, sizeof(*e->slots[k].axes_end));
        if (!e->slots[k].vals || !e->slots[k].built || !e->slots[k].axes_end) {
            rc = CS_ENOMEM;
        }
    }
    if (rc != CS_OK || !e->idx || !e->order || !e->extra || !e->pair_seen || !dim_of || !e->src ||
        !e->none_value.canon || !e->none_value.label || !e->none_value.text) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "expand: out of memory");
        goto out;
    }
    for (size_t d = 0; d < s->n_dims; d++) {
        for (size_t k = 0; k < s->dims[d].n_axes; k++) {
            dim_of[s->dims[d].axes[k]] = d;
        }
    }
    for (size_t a = 0; a < s->n_axes; a++) {
        e->order[a] = a;
        if (s->axes[a].kind == CS_AXIS_EXTRA) {
            e->extra[e->n_extra++] = a;
        }
    }
    sort_axes(s, e->order, s->n_axes);
    sort_axes(s, e->extra, e->n_extra);
    rc = count_cells(e, dim_of, err);
    if (rc != CS_OK) {
        goto out;
    }
    /* The set holds at most `upper` keys; keep the load at or below one half. */
    e->cap = 16;
    while (e->cap < 2 * e->counts.upper) {
        e->cap *= 2;
    }
    e->set = cs_alloc_array(e->cap, 32);
    e->used = cs_calloc_array(e->cap, 1);
    if (!e->set || !e->used) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "expand: out of memory for %zu keys", e->cap);
        goto out;
    }
    e->dim_of = dim_of;
    dim_of = NULL;
    *out = e;
    e = NULL;
out:
    free(dim_of);
    cs_expand_destroy(e);
    return rc;
}

void cs_expand_destroy(cs_expander *e)
{
    if (!e) {
        return;
    }
    for (size_t i = 0; i < e->n_subs; i++) {
        cs_expand_destroy(e->subs[i]);
    }
    free(e->subs);
    free(e->idx);
    free(e->dim_of);
    free(e->src);
    free(e->order);
    free(e->extra);
    free(e->pair_seen);
    free(e->set);
    free(e->used);
    for (int k = 0; k < 2; k++) {
        cs_buf_fini(&e->slots[k].cfg);
        cs_buf_fini(&e->slots[k].axes);
        free(e->slots[k].vals);
        free(e->slots[k].built);
        free(e->slots[k].axes_end);
    }
    free(e->none_value.canon);
    free(e->none_value.label);
    free(e->none_value.text);
    mbedtls_sha256_free(&e->mid);
    cs_buf_fini(&e->mid_text);
    free(e);
}

/* ---- building one cell ---------------------------------------------------------------------- */

static cs_rc put(cs_buf *b, const char *s)
{
    return cs_buf_puts(b, s);
}

/* SHA-256 wrappers over mbedTLS 2 (the _ret names) and 3. */
#if MBEDTLS_VERSION_MAJOR >= 3
#define SHA_STARTS(c)       mbedtls_sha256_starts((c), 0)
#define SHA_UPDATE(c, p, n) mbedtls_sha256_update((c), (const unsigned char *)(p), (n))
#define SHA_FINISH(c, out)  mbedtls_sha256_finish((c), (out))
#else
#define SHA_STARTS(c)       mbedtls_sha256_starts_ret((c), 0)
#define SHA_UPDATE(c, p, n) mbedtls_sha256_update_ret((c), (const unsigned char *)(p), (n))
#define SHA_FINISH(c, out)  mbedtls_sha256_finish_ret((c), (out))
#endif

/* raw = SHA-256(text[0..len)), where text[0..prefix) is often the same as for the previous cell:
 * the hash state after the prefix is kept and reused (the product varies the small scalars at
 * the end of the config, so most cells hash one or two 64-byte blocks instead of ten). */
static cs_rc hash_cell(cs_expander *e, const char *text, size_t prefix, size_t len, uint8_t raw[32],
                       cs_err *err)
{
    mbedtls_sha256_context ctx;
    int r = 0;

    if (!(e->mid_ok && e->mid_text.len == prefix && memcmp(e->mid_text.data, text, prefix) == 0)) {
        e->mid_ok = false;
        e->mid_text.len = 0;
        if (cs_buf_append(&e->mid_text, text, prefix) != CS_OK) {
            return cs_err_set(err, CS_ENOMEM, 0, "expand: out of memory");
        }
        mbedtls_sha256_free(&e->mid);
        mbedtls_sha256_init(&e->mid);
        r = SHA_STARTS(&e->mid);
        if (r == 0) {
            r = SHA_UPDATE(&e->mid, text, prefix);
        }
        if (r != 0) {
            return cs_err_set(err, CS_EINTERNAL, r, "sha256: mbedTLS error -0x%04x", (unsigned)-r);
        }
        e->mid_ok = true;
    }
    mbedtls_sha256_init(&ctx);
    mbedtls_sha256_clone(&ctx, &e->mid);
    r = SHA_UPDATE(&ctx, text + prefix, len - prefix);
    if (r == 0) {
        r = SHA_FINISH(&ctx, raw);
    }
    mbedtls_sha256_free(&ctx);
    if (r != 0) {
        return cs_err_set(err, CS_EINTERNAL, r, "sha256: mbedTLS error -0x%04x", (unsigned)-r);
    }
    return CS_OK;
}

/* Whether the config up to the end of its "model" member depends only on values that are the same
 * as in the slot's last build (algorithm, selector, source, eval, extras, model). */
static bool cfg_prefix_same(const cs_expander *e, const slot *sl)
{
    const cs_sweep *s = e->s;
    const size_t *m = s->mission;
    static const cs_axis_kind kinds[] = {CS_AXIS_ALGORITHM, CS_AXIS_SELECTOR, CS_AXIS_SOURCE,
                                         CS_AXIS_EVAL, CS_AXIS_MODEL};
    if (!sl->built_ok) {
        return false;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (sl->vals[m[kinds[i]]] != sl->built[m[kinds[i]]]) {
            return false;
        }
    }
    for (size_t i = 0; i < e->n_extra; i++) {
        if (sl->vals[e->extra[i]] != sl->built[e->extra[i]]) {
            return false;
        }
    }
    return true;
}

/* Builds config, axes and key of the cell whose values are sl->vals (already nulled where an axis
 * does not apply). Keys in canonical (sorted) order; the scalars that vary most come last. Only
 * what changed since the slot's last build is written again: the config from its "n_samples"
 * member on when the members before it are unchanged, the axes from the first axis whose value
 * changed (consecutive cells of the product differ in the last axes). */
static cs_rc build(cs_expander *e, slot *sl, cs_err *err)
{
    const cs_sweep *s = e->s;
    const size_t *m = s->mission;
    const cs_axis_value *const *v = sl->vals;
    cs_buf *b = &sl->cfg, *x = &sl->axes;
    cs_rc rc = CS_OK;
    size_t cfg_len, prefix, first = 0;
    bool same_prefix = cfg_prefix_same(e, sl);

    if (sl->built_ok) {
        while (first < s->n_axes && v[e->order[first]] == sl->built[e->order[first]]) {
            first++;
        }
    }
    sl->built_ok = false;
    if (same_prefix) {
        b->len = sl->cfg_prefix;
    } else {
        b->len = 0;
        rc |= put(b, "{\"algorithm\":");
        rc |= put(b, v[m[CS_AXIS_ALGORITHM]]->canon);
        rc |= put(b, ",\"calibration\":");
        if (v[m[CS_AXIS_SELECTOR]]) {
            rc |= put(b, "{\"selector\":");
            rc |= put(b, v[m[CS_AXIS_SELECTOR]]->canon);
            rc |= put(b, ",\"source\":");
            rc |= put(b, v[m[CS_AXIS_SOURCE]] ? v[m[CS_AXIS_SOURCE]]->canon : "null");
            rc |= put(b, "}");
        } else {
            rc |= put(b, "null");
        }
        rc |= put(b, ",\"eval\":");
        rc |= put(b, v[m[CS_AXIS_EVAL]]->canon);
        rc |= put(b, ",\"extra\":{");
        for (size_t i = 0, n = 0; i < e->n_extra; i++) {
            const cs_axis_value *ev = v[e->extra[i]];
            if (!ev) {
                continue;
            }
            rc |= put(b, n++ ? ",\"" : "\"");
            rc |= put(b, s->axes[e->extra[i]].name);
            rc |= put(b, "\":");
            rc |= put(b, ev->canon);
        }
        rc |= put(b, "},\"model\":");
        rc |= put(b, v[m[CS_AXIS_MODEL]]->canon);
    }
    prefix = b->len;
    rc |= put(b, ",\"n_samples\":");
    rc |= put(b, v[m[CS_AXIS_N_SAMPLES]] ? v[m[CS_AXIS_N_SAMPLES]]->canon : "null");
    rc |= put(b, ",\"seed\":");
    rc |= put(b, v[m[CS_AXIS_SEED]] ? v[m[CS_AXIS_SEED]]->canon : "null");
    rc |= put(b, ",\"seq_len\":");
    rc |= put(b, v[m[CS_AXIS_SEQ_LEN]] ? v[m[CS_AXIS_SEQ_LEN]]->canon : "null");
    rc |= put(b, "}");
    /* Axes: every axis by name, null where it does not apply. */
    x->len = first > 0 ? sl->axes_end[first - 1] : 0;
    if (first == 0) {
        rc |= put(x, "{");
    }
    for (size_t i = first; i < s->n_axes; i++) {
        const cs_axis_value *av = v[e->order[i]];
        rc |= put(x, i ? ",\"" : "\"");
        rc |= put(x, s->axes[e->order[i]].name);
        rc |= put(x, "\":");
        rc |= put(x, av ? av->label : "null");
        sl->axes_end[i] = x->len;
    }
    rc |= put(x, "}");
    cfg_len = b->len;
    rc |= put(b, CS_ENGINE_VERSION);
    if (rc != CS_OK) {
        return cs_err_set(err, CS_ENOMEM, 0, "expand: out of memory");
    }
    /* A config travels in a JOB message: refuse it here, where the sweep is still being checked,
     * rather than at dispatch. */
    if (cfg_len > CS_LIMIT_JOB_CONFIG_BYTES) {
        return cs_err_set(err, CS_ETOOBIG, 0,
                          "a job config of this sweep is %zu bytes, above the limit of %zu",
                          cfg_len, (size_t)CS_LIMIT_JOB_CONFIG_BYTES);
    }
    rc = hash_cell(e, b->data, prefix, b->len, sl->raw, err);
    b->len = cfg_len;
    b->data[cfg_len] = '\0';
    if (rc != CS_OK) {
        return rc;
    }
    cs_hex_encode(sl->raw, 32, sl->key);
    sl->cfg_prefix = prefix;
    memcpy(sl->built, sl->vals, s->n_axes * sizeof(*sl->built));
    sl->built_ok = true;
    return CS_OK;
}

/* Fills sl->vals from per-axis values (grid tuple or include), nulling what does not apply. */
static void set_values(const cs_expander *e, slot *sl, const cs_axis_value *const *src)
{
    const cs_sweep *s = e->s;
    const size_t *m = s->mission;
    for (size_t a = 0; a < s->n_axes; a++) {
        sl->vals[a] = src[a];
    }
    if (src[m[CS_AXIS_ALGORITHM]]->flags & CS_VAL_NO_CALIB) {
        sl->vals[m[CS_AXIS_SELECTOR]] = NULL;
        sl->vals[m[CS_AXIS_N_SAMPLES]] = NULL;
        sl->vals[m[CS_AXIS_SEQ_LEN]] = NULL;
        sl->vals[m[CS_AXIS_SOURCE]] = NULL;
        sl->vals[m[CS_AXIS_SEED]] = NULL;
    } else if (src[m[CS_AXIS_SELECTOR]]->flags & CS_VAL_NO_SOURCE) {
        sl->vals[m[CS_AXIS_SOURCE]] = NULL;
    }
    sl->baseline = false;
}

/* Next candidate from the grid or the includes into sl; false when there are no more. */
static bool next_candidate(cs_expander *e, slot *sl)
{
    const cs_sweep *s = e->s;

    while (e->ph == PH_GRID) {
        if (e->started && (s->n_dims == 0 || !advance(s, e->idx))) {
            e->ph = PH_INCLUDE;
            break;
        }
        e->started = true;
        if (s->n_excludes > 0 && excluded(s, e->dim_of, e->idx)) {
            continue;
        }
        for (size_t a = 0; a < s->n_axes; a++) {
            e->src[a] = &s->axes[a].values[e->idx[e->dim_of[a]]];
        }
        set_values(e, sl, e->src);
        return true;
    }
    if (e->ph == PH_INCLUDE && e->inc < s->n_includes) {
        for (size_t a = 0; a < s->n_axes; a++) {
            e->src[a] = &s->includes[e->inc].values[a];
        }
        e->inc++;
        set_values(e, sl, e->src);
        return true;
    }
    e->ph = PH_DONE;
    return false;
}

static void fill_cell(const slot *sl, cs_cell *out)
{
    memset(out, 0, sizeof(*out));
    out->key = sl->key;
    out->config = sl->cfg.data;
    out->axes = sl->axes.data;
    out->baseline = sl->baseline;
    out->config_len = sl->cfg.len;
    out->axes_len = sl->axes.len;
    out->unique = true; /* set_insert dropped every repeat */
}

cs_rc cs_expand_next(void *ctx, cs_cell *out, cs_err *err)
{
    cs_expander *e = ctx;
    const cs_sweep *s = e->s;
    const size_t *m = s->mission;
    cs_rc rc;

    if (e->subs) {
        return union_next(e, out, err);
    }
    if (e->pending >= 0) {
        e->cur = e->pending;
        e->pending = -1;
        fill_cell(&e->slots[e->cur], out);
        e->counts.emitted++;
        return CS_OK;
    }
    for (;;) {
        int c = e->cur == 0 ? 1 : 0; /* never overwrite the cell the caller still holds */
        slot *sl = &e->slots[c];
        size_t pair;
        if (e->ph == PH_DONE || !next_candidate(e, sl)) {
            e->counts.done = true;
            return CS_ENOENT;
        }
        rc = build(e, sl, err);
        if (rc != CS_OK) {
            return rc;
        }
        if (!set_insert(e, sl->raw)) {
            e->counts.duplicates++;
            continue;
        }
        pair = sl->vals[m[CS_AXIS_MODEL]]->ref * s->n_evals + sl->vals[m[CS_AXIS_EVAL]]->ref;
        if (!e->pair_seen[pair] && (sl->vals[m[CS_AXIS_ALGORITHM]]->flags & CS_VAL_NONE)) {
            /* Is this cell the baseline itself (algorithm none and nothing else)? */
            slot *bl = &e->slots[1 - c];
            for (size_t a = 0; a < s->n_axes; a++) {
                bl->vals[a] = NULL;
            }
            bl->vals[m[CS_AXIS_MODEL]] = sl->vals[m[CS_AXIS_MODEL]];
            bl->vals[m[CS_AXIS_EVAL]] = sl->vals[m[CS_AXIS_EVAL]];
            bl->vals[m[CS_AXIS_ALGORITHM]] = &e->none_value;
            rc = build(e, bl, err);
            if (rc != CS_OK) {
                return rc;
            }
            if (memcmp(bl->raw, sl->raw, 32) == 0) {
                e->pair_seen[pair] = true;
                sl->baseline = true;
                e->counts.baselines++;
            }
        }
        if (!e->pair_seen[pair]) {
            slot *bl = &e->slots[1 - c];
            e->pair_seen[pair] = true;
            for (size_t a = 0; a < s->n_axes; a++) {
                bl->vals[a] = NULL;
            }
            bl->vals[m[CS_AXIS_MODEL]] = sl->vals[m[CS_AXIS_MODEL]];
            bl->vals[m[CS_AXIS_EVAL]] = sl->vals[m[CS_AXIS_EVAL]];
            bl->vals[m[CS_AXIS_ALGORITHM]] = &e->none_value;
            rc = build(e, bl, err);
            if (rc != CS_OK) {
                return rc;
            }
            bl->baseline = true;
            if (set_insert(e, bl->raw)) {
                e->cur = 1 - c;
                e->pending = c;
                e->counts.baselines++;
                e->counts.emitted++;
                fill_cell(bl, out);
                return CS_OK;
            }
        }
        e->cur = c;
        e->counts.emitted++;
        fill_cell(sl, out);
        return CS_OK;
    }
}

const cs_axis_value *const *cs_expand_cell_values(const cs_expander *e)
{
    if (e->subs) {
        return e->cur_sub < e->n_subs ? cs_expand_cell_values(e->subs[e->cur_sub]) : NULL;
    }
    if (e->cur < 0) {
        return NULL;
    }
    return (const cs_axis_value *const *)e->slots[e->cur].vals;
}

void cs_expand_get_counts(const cs_expander *e, cs_expand_counts *out)
{
    *out = e->counts;
    for (size_t i = 0; i < e->n_subs; i++) { /* a union: the sub-grids' counts, summed */
        const cs_expand_counts *c = &e->subs[i]->counts;
        out->product += c->product;
        out->excluded += c->excluded;
        out->included += c->included;
        out->baselines_max += c->baselines_max;
        out->upper += c->upper;
        out->duplicates += c->duplicates;
    }
}

size_t cs_expand_n_grids(const cs_expander *e)
{
    return e->n_subs;
}

size_t cs_expand_current_grid(const cs_expander *e)
{
    return e->cur_sub;
}

const cs_expander *cs_expand_grid(const cs_expander *e, size_t i)
{
    return i < e->n_subs ? e->subs[i] : NULL;
}
