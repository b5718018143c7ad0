/* cs_plan_report.c - the plan report (see cs_plan_report.h). */
#include "cs_plan_report.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"

/* ---- counting per axis value ------------------------------------------------------------- */

typedef struct value_count {
    const cs_axis_value *val; /* NULL: the axis does not apply to the job */
    size_t count;
} value_count;

/* One slot of an axis's label table: where the value with that label is counted. */
typedef struct label_slot {
    const char *label; /* borrowed from the sweep or the expander's include values; NULL = free */
    size_t at;         /* < n_grid: grid[at]; else other[at - n_grid] */
} label_slot;

typedef struct axis_counts {
    value_count *grid; /* one per grid value, in order */
    size_t n_grid;
    value_count *other; /* include-only values and n/a, in first-seen order */
    size_t n_other, cap_other;
    size_t na;         /* index in other of "does not apply", SIZE_MAX until seen */
    label_slot *table; /* open addressing by label: a value is found in O(1), not by a scan
                          (100,000 include cells took minutes) */
    size_t cap, used;  /* table slots (a power of two), slots in use */
} axis_counts;

static size_t label_hash(const char *s)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h = (h ^ *p) * 1099511628211u;
    }
    return (size_t)h;
}

/* The slot of label, or the free slot where it goes. */
static label_slot *label_find(const axis_counts *ac, const char *label)
{
    size_t i = label_hash(label) & (ac->cap - 1);
    while (ac->table[i].label && strcmp(ac->table[i].label, label) != 0) {
        i = (i + 1) & (ac->cap - 1);
    }
    return &ac->table[i];
}

/* Records that label is counted at `at` (the first value with a label keeps it). */
static cs_rc label_put(axis_counts *ac, const char *label, size_t at)
{
    label_slot *sl;
    if (2 * (ac->used + 1) > ac->cap) {
        size_t cap = ac->cap ? 2 * ac->cap : 64;
        label_slot *old = ac->table, *grown = cs_calloc_array(cap, sizeof(*grown));
        size_t old_cap = ac->cap;
        if (!grown) {
            return CS_ENOMEM;
        }
        ac->table = grown;
        ac->cap = cap;
        for (size_t i = 0; i < old_cap; i++) {
            if (old[i].label) {
                *label_find(ac, old[i].label) = old[i];
            }
        }
        free(old);
    }
    sl = label_find(ac, label);
    if (!sl->label) {
        sl->label = label;
        sl->at = at;
        ac->used++;
    }
    return CS_OK;
}

static cs_rc count_value(axis_counts *ac, const cs_axis *ax, const cs_axis_value *v)
{
    value_count *grown;
    label_slot *sl;
    if (v && v >= ax->values && v < ax->values + ax->n) {
        ac->grid[v - ax->values].count++;
        return CS_OK;
    }
    if (!v && ac->na != SIZE_MAX) {
        ac->other[ac->na].count++;
        return CS_OK;
    }
    if (v) { /* an include value equal to a grid value counts with it */
        sl = label_find(ac, v->label);
        if (sl->label) {
            if (sl->at < ac->n_grid) {
                ac->grid[sl->at].count++;
            } else {
                ac->other[sl->at - ac->n_grid].count++;
            }
            return CS_OK;
        }
    }
    if (ac->n_other == ac->cap_other) {
        size_t cap = ac->cap_other ? 2 * ac->cap_other : 4;
        grown = cs_realloc_array(ac->other, cap, sizeof(*grown));
        if (!grown) {
            return CS_ENOMEM;
        }
        ac->other = grown;
        ac->cap_other = cap;
    }
    ac->other[ac->n_other].val = v;
    ac->other[ac->n_other].count = 1;
    if (!v) {
        ac->na = ac->n_other;
    } else if (label_put(ac, v->label, ac->n_grid + ac->n_other) != CS_OK) {
        return CS_ENOMEM;
    }
    ac->n_other++;
    return CS_OK;
}

/* Sets up the counts of every axis: its grid values first, at count 0. */
static cs_rc counts_init(const cs_sweep *sw, axis_counts **out)
{
    axis_counts *ac = cs_calloc_array(sw->n_axes ? sw->n_axes : 1, sizeof(*ac));
    *out = ac;
    if (!ac) {
        return CS_ENOMEM;
    }
    for (size_t a = 0; a < sw->n_axes; a++) {
        ac[a].n_grid = sw->axes[a].n;
        ac[a].na = SIZE_MAX;
        ac[a].grid = cs_calloc_array(sw->axes[a].n ? sw->axes[a].n : 1, sizeof(*ac[a].grid));
        if (!ac[a].grid) {
            return CS_ENOMEM;
        }
        for (size_t i = 0; i < sw->axes[a].n; i++) {
            ac[a].grid[i].val = &sw->axes[a].values[i];
            if (label_put(&ac[a], sw->axes[a].values[i].label, i) != CS_OK) {
                return CS_ENOMEM;
            }
        }
    }
    return CS_OK;
}

static void counts_free(const cs_sweep *sw, axis_counts *ac)
{
    for (size_t a = 0; ac && a < sw->n_axes; a++) {
        free(ac[a].grid);
        free(ac[a].other);
        free(ac[a].table);
    }
    free(ac);
}

static cJSON *text_item(const char *json, bool raw)
{
    cJSON *v = NULL;
    if (json) {
        v = raw ? cJSON_CreateRaw(json) : cJSON_Parse(json);
    }
    return v ? v : cJSON_CreateNull();
}

/* Appends an example cell to arr. */
static bool add_example(cJSON *arr, const cs_cell *cell, bool raw)
{
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddItemToArray(arr, e)) {
        cJSON_Delete(e);
        return false;
    }
    return cJSON_AddStringToObject(e, "key", cell->key) &&
           cJSON_AddBoolToObject(e, "baseline", cell->baseline) &&
           cJSON_AddItemToObject(e, "axes", text_item(cell->axes, raw)) &&
           cJSON_AddItemToObject(e, "config", text_item(cell->config, raw));
}

/* The "axes" member: per axis, its values with their job counts. */
static bool add_axes(cJSON *root, const cs_sweep *sw, const axis_counts *ac, bool raw)
{
    cJSON *axes = cJSON_AddObjectToObject(root, "axes");
    bool ok = axes != NULL;
    for (size_t a = 0; ok && a < sw->n_axes; a++) {
        cJSON *arr = cJSON_AddArrayToObject(axes, sw->axes[a].name);
        ok = arr != NULL;
        for (size_t i = 0; ok && i < ac[a].n_grid + ac[a].n_other; i++) {
            const value_count *vc =
                    i < ac[a].n_grid ? &ac[a].grid[i] : &ac[a].other[i - ac[a].n_grid];
            cJSON *e = cJSON_CreateObject();
            ok = e && cJSON_AddItemToArray(arr, e);
            if (!ok) {
                cJSON_Delete(e);
                break;
            }
            ok = cJSON_AddItemToObject(e, "value",
                                       text_item(vc->val ? vc->val->label : NULL, raw)) &&
                 cJSON_AddStringToObject(e, "text", vc->val ? vc->val->text : "n/a") &&
                 cJSON_AddNumberToObject(e, "jobs", (double)vc->count);
        }
    }
    return ok;
}

/* The members before "axes", in the order `calsweep plan --json` prints them. */
static bool add_totals(cJSON *root, const cs_sweep *sw, const cs_expand_counts *c, bool checked,
                       size_t cached)
{
    return cJSON_AddStringToObject(root, "sweep", sw->name) &&
           cJSON_AddStringToObject(root, "spec_hash", sw->spec_hash) &&
           cJSON_AddNumberToObject(root, "jobs", (double)c->emitted) &&
           cJSON_AddNumberToObject(root, "baselines", (double)c->baselines) &&
           cJSON_AddNumberToObject(root, "grid_cells", (double)c->product) &&
           cJSON_AddNumberToObject(root, "excluded", (double)c->excluded) &&
           cJSON_AddNumberToObject(root, "included", (double)c->included) &&
           cJSON_AddNumberToObject(root, "duplicates", (double)c->duplicates) &&
           (checked ? cJSON_AddNumberToObject(root, "cached", (double)cached)
                    : cJSON_AddNullToObject(root, "cached"));
}

/* The sweep whose axes the cells of e come from now: s, or the current sub-grid of a union. */
static const cs_sweep *grid_of(const cs_sweep *sw, const cs_expander *e, size_t *g)
{
    *g = sw->n_grids ? cs_expand_current_grid(e) : 0;
    return sw->n_grids ? sw->grids[*g] : sw;
}

/* Reads every cell of e: counts its axis values (per sub-grid in a union: ac[g], jobs[g]), asks
 * whether it is cached, keeps the first examples in examples. */
static cs_rc read_cells(const cs_sweep *sw, cs_expander *e, const cs_plan_report_opts *o,
                        axis_counts **ac, size_t *jobs, cJSON *examples, size_t *cached,
                        cs_err *err)
{
    size_t n_ex = 0;
    cs_cell cell;
    cs_rc rc;
    while ((rc = cs_expand_next(e, &cell, err)) == CS_OK) {
        const cs_axis_value *const *vals = cs_expand_cell_values(e);
        size_t g;
        const cs_sweep *gs = grid_of(sw, e, &g);
        bool hit = false;
        jobs[g]++;
        for (size_t a = 0; a < gs->n_axes; a++) {
            if (count_value(&ac[g][a], &gs->axes[a], vals[a]) != CS_OK) {
                return cs_err_set(err, CS_ENOMEM, 0, "plan report: out of memory");
            }
        }
        if (o->cached) {
            rc = o->cached(o->cached_ctx, cell.key, &hit, err);
            if (rc != CS_OK) {
                return rc;
            }
            *cached += hit;
        }
        if (n_ex < o->n_examples) {
            if (!add_example(examples, &cell, o->raw_texts)) {
                return cs_err_set(err, CS_ENOMEM, 0, "plan report: out of memory");
            }
            n_ex++;
        }
    }
    if (rc == CS_ENOENT) {
        cs_err_clear(err);
        return CS_OK;
    }
    return rc;
}

/* Adds the values of axes (one sub-grid's "axes") into all: the same value (by its text) of the
 * same axis sums its jobs. */
static bool merge_axes(cJSON *all, const cJSON *axes)
{
    const cJSON *ax, *v;
    cJSON_ArrayForEach(ax, axes)
    {
        cJSON *dst = cJSON_GetObjectItemCaseSensitive(all, ax->string);
        if (!dst && !(dst = cJSON_AddArrayToObject(all, ax->string))) {
            return false;
        }
        cJSON_ArrayForEach(v, ax)
        {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "text");
            cJSON *hit = NULL, *d;
            cJSON_ArrayForEach(d, dst)
            {
                const cJSON *dt = cJSON_GetObjectItemCaseSensitive(d, "text");
                if (!hit && cJSON_IsString(t) && cJSON_IsString(dt) &&
                    strcmp(t->valuestring, dt->valuestring) == 0) {
                    hit = d;
                }
            }
            if (hit) {
                cJSON *n = cJSON_GetObjectItemCaseSensitive(hit, "jobs");
                cJSON_SetNumberValue(
                        n,
                        n->valuedouble + cJSON_GetObjectItemCaseSensitive(v, "jobs")->valuedouble);
            } else if (!cJSON_AddItemToArray(dst, cJSON_Duplicate(v, true))) {
                return false;
            }
        }
    }
    return true;
}

/* A union's "grids": per sub-grid its counts, the jobs it added, and its axes; and the merged
 * "axes" of all of them. */
static bool add_grids(cJSON *root, const cs_sweep *sw, const cs_expander *e, axis_counts **ac,
                      const size_t *jobs, bool raw)
{
    cJSON *grids = cJSON_AddObjectToObject(root, "grids");
    cJSON *all = cJSON_AddObjectToObject(root, "axes");
    bool ok = grids && all;
    for (size_t g = 0; ok && g < sw->n_grids; g++) {
        cs_expand_counts c;
        cJSON *o = cJSON_AddObjectToObject(grids, sw->grid_names[g]);
        cs_expand_get_counts(cs_expand_grid(e, g), &c);
        ok = o && cJSON_AddNumberToObject(o, "jobs", (double)jobs[g]) &&
             cJSON_AddNumberToObject(o, "shared", (double)(c.emitted - jobs[g])) &&
             cJSON_AddNumberToObject(o, "grid_cells", (double)c.product) &&
             cJSON_AddNumberToObject(o, "excluded", (double)c.excluded) &&
             cJSON_AddNumberToObject(o, "included", (double)c.included) &&
             cJSON_AddNumberToObject(o, "duplicates", (double)c.duplicates) &&
             add_axes(o, sw->grids[g], ac[g], raw) &&
             merge_axes(all, cJSON_GetObjectItemCaseSensitive(o, "axes"));
    }
    return ok;
}

cs_rc cs_plan_report_build(const cs_sweep *sw, cs_expander *e, const cs_plan_report_opts *o,
                           cJSON **out, cs_err *err)
{
    size_t n_g = sw->n_grids ? sw->n_grids : 1, cached = 0;
    axis_counts **ac = cs_calloc_array(n_g, sizeof(*ac));
    size_t *jobs = cs_calloc_array(n_g, sizeof(*jobs));
    cJSON *root = NULL, *examples = cJSON_CreateArray();
    cs_expand_counts c;
    cs_rc rc = examples && ac && jobs ? CS_OK : CS_ENOMEM;

    *out = NULL;
    for (size_t g = 0; rc == CS_OK && g < n_g; g++) {
        rc = counts_init(sw->n_grids ? sw->grids[g] : sw, &ac[g]);
    }
    if (rc == CS_OK) {
        rc = read_cells(sw, e, o, ac, jobs, examples, &cached, err);
    } else {
        cs_err_set(err, CS_ENOMEM, 0, "plan report: out of memory");
    }
    if (rc == CS_OK) {
        cs_expand_get_counts(e, &c);
        root = cJSON_CreateObject();
        if (!root || !add_totals(root, sw, &c, o->cached != NULL, cached) ||
            !(sw->n_grids ? add_grids(root, sw, e, ac, jobs, o->raw_texts)
                          : add_axes(root, sw, ac[0], o->raw_texts)) ||
            !cJSON_AddItemToObject(root, "examples", examples)) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "plan report: out of memory");
        } else {
            examples = NULL;
        }
    }
    for (size_t g = 0; ac && g < n_g; g++) {
        counts_free(sw->n_grids ? sw->grids[g] : sw, ac[g]);
    }
    free(ac);
    free(jobs);
    cJSON_Delete(examples);
    if (rc != CS_OK) {
        cJSON_Delete(root);
        return rc;
    }
    *out = root;
    return CS_OK;
}
