/* cs_sweep.c - sweep file parser and validator.
 *
 * One pass over the document with a cs_jctx: every problem is reported with its path and the walk
 * goes on, so a user sees all mistakes at once. Method parameters (algorithms, selectors) come
 * from the table of common/cs_methods.h; a value is resolved into a cJSON object with every
 * default filled and then rendered canonically, so equal meanings give equal text (and equal job
 * keys). Models, data, policy and the method values are parsed in cs_sweep_data.c; this file
 * holds the grid, zips, excludes, includes and the top level.
 */
#include "cs_sweep.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_limits.h"
#include "cs_methods.h"
#include "cs_path.h"
#include "cs_sweep_int.h"

#define MAX_AXIS_VALUES CS_LIMIT_AXIS_VALUES

_Static_assert((unsigned)CS_VAL_NO_CALIB == (unsigned)CS_METHOD_NO_CALIB &&
                       (unsigned)CS_VAL_NONE == (unsigned)CS_METHOD_NONE &&
                       (unsigned)CS_VAL_NO_SOURCE == (unsigned)CS_METHOD_NO_SOURCE,
               "axis value flags are the table's method flags");

static const char *const mission_names[CS_AXIS_N_MISSION] = {
        "model", "algorithm", "selector", "n_samples", "seq_len", "source", "seed", "eval"};

const char *cs_axis_kind_name(cs_axis_kind kind)
{
    if ((size_t)kind < CS_AXIS_N_MISSION) {
        return mission_names[kind];
    }
    return kind == CS_AXIS_GRID ? "grid" : "extra";
}

char *sw_dup(parser *p, const char *str)
{
    char *r = cs_strdup(str ? str : "");
    if (!r) {
        p->oom = CS_ENOMEM;
    }
    return r;
}

/* Canonical text of v (owned) or NULL after reporting why at the current path. */
char *sw_canon_of(parser *p, const cJSON *v)
{
    char *out = NULL;
    cs_err e = {0};
    cs_rc rc = cs_canon_string(v, &out, NULL, &e);
    if (rc == CS_ENOMEM) {
        p->oom = CS_ENOMEM;
    } else if (rc != CS_OK) {
        cs_jctx_error(&p->c, v, NULL, "%s", e.msg);
    }
    return out;
}

char *sw_canon_string_value(parser *p, const char *str)
{
    cJSON *v = cJSON_CreateString(str);
    char *out = NULL;
    if (!v) {
        p->oom = CS_ENOMEM;
        return NULL;
    }
    out = sw_canon_of(p, v);
    cJSON_Delete(v);
    return out;
}

void sw_add_or_oom(parser *p, cJSON *obj, const char *key, cJSON *item)
{
    if (!item || !cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        p->oom = CS_ENOMEM;
    }
}

/* Reports "unknown <what> \"name\"" with a suggestion and the list of known names. */
void sw_unknown_name(parser *p, const cJSON *node, const char *what, const char *name,
                     const char *const *known, size_t n)
{
    cs_json_unknown_name(&p->c, node, what, name, known, n);
}

/* Index of the entry called name among n entries of stride bytes whose first member is a name. */
static size_t find_named(const void *base, size_t n, size_t stride, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        const char *nm = *(char *const *)(const void *)((const char *)base + i * stride);
        if (nm && strcmp(nm, name) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

static int name_ref_cmp(const void *a, const void *b)
{
    return strcmp(((const name_ref *)a)->name, ((const name_ref *)b)->name);
}

/* Index of the entry called name among the n entries of stride bytes at base (whose first member
 * is the name) of table which, or SIZE_MAX: O(log n) after one sort per table. */
size_t sw_lookup_name(parser *p, int which, const void *base, size_t n, size_t stride,
                      const char *name)
{
    name_index *ix = &p->names[which];
    if (!ix->built || ix->n != n) {
        free(ix->refs);
        ix->refs = cs_calloc_array(n + 1, sizeof(*ix->refs));
        ix->built = ix->refs != NULL;
        ix->len = 0;
        if (!ix->refs) {
            p->oom = CS_ENOMEM;
            return find_named(base, n, stride, name);
        }
        for (size_t i = 0; i < n; i++) {
            const char *nm = *(char *const *)(const void *)((const char *)base + i * stride);
            if (nm) {
                ix->refs[ix->len++] = (name_ref){nm, i};
            }
        }
        qsort(ix->refs, ix->len, sizeof(*ix->refs), name_ref_cmp);
        ix->n = n;
    }
    for (size_t lo = 0, hi = ix->len; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, ix->refs[mid].name);
        p->s->n_name_cmp++;
        if (c == 0) {
            return ix->refs[mid].idx;
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return SIZE_MAX;
}

/* ---- axis values ---------------------------------------------------------------------------- */

/* Resolves a name of models / data.sources / data.eval. */
static bool resolve_ref(parser *p, const cJSON *v, cs_axis_kind kind, cs_axis_value *val)
{
    const cs_sweep *s = p->s;
    const char *name = NULL, *names[64];
    const void *base;
    size_t n, stride, idx, nn = 0;
    const char *what;
    const char *canon;

    if (cs_json_as_string(&p->c, v, &name) != CS_OK) {
        return false;
    }
    if (kind == CS_AXIS_MODEL) {
        base = s->models, n = s->n_models, stride = sizeof(*s->models), what = "model";
    } else if (kind == CS_AXIS_SOURCE) {
        base = s->sources, n = s->n_sources, stride = sizeof(*s->sources), what = "source";
    } else {
        base = s->evals, n = s->n_evals, stride = sizeof(*s->evals), what = "eval suite";
    }
    idx = sw_lookup_name(p,
                         kind == CS_AXIS_MODEL    ? NAMES_MODELS
                         : kind == CS_AXIS_SOURCE ? NAMES_SOURCES
                                                  : NAMES_EVALS,
                         base, n, stride, name);
    if (idx == SIZE_MAX) {
        for (size_t i = 0; i < n && nn < 64; i++) {
            names[nn++] = *(char *const *)(const void *)((const char *)base + i * stride);
        }
        sw_unknown_name(p, v, what, name, names, nn);
        return false;
    }
    if (kind == CS_AXIS_MODEL) {
        canon = s->models[idx].canon;
    } else if (kind == CS_AXIS_SOURCE) {
        canon = s->sources[idx].canon;
    } else {
        canon = s->evals[idx].canon;
    }
    val->ref = idx;
    val->canon = sw_dup(p, canon ? canon : "null");
    val->label = sw_canon_string_value(p, name);
    val->text = sw_dup(p, name);
    return true;
}

static bool resolve_int(parser *p, const cJSON *v, cs_axis_kind kind, cs_axis_value *val)
{
    int64_t x = 0;
    char buf[32];
    int64_t min = kind == CS_AXIS_SEED ? 0 : kind == CS_AXIS_SEQ_LEN ? 2 : 1;
    int64_t max = kind == CS_AXIS_SEED        ? CS_LIMIT_SEED
                  : kind == CS_AXIS_N_SAMPLES ? CS_LIMIT_N_SAMPLES
                                              : CS_LIMIT_SEQ_LEN;
    if (cs_json_as_int(&p->c, v, min, max, &x) != CS_OK) {
        return false;
    }
    snprintf(buf, sizeof(buf), "%lld", (long long)x);
    val->num = x;
    val->canon = sw_dup(p, buf);
    val->label = sw_dup(p, buf);
    val->text = sw_dup(p, buf);
    return true;
}

/* Resolves one value v of an axis of kind kind at the current path. */
static bool resolve_value(parser *p, const cJSON *v, cs_axis_kind kind, cs_axis_value *val)
{
    memset(val, 0, sizeof(*val));
    switch (kind) {
    case CS_AXIS_MODEL:
    case CS_AXIS_SOURCE:
    case CS_AXIS_EVAL:
        return resolve_ref(p, v, kind, val);
    case CS_AXIS_ALGORITHM:
        return sw_resolve_method(p, v, CS_MF_ALGORITHM, val);
    case CS_AXIS_SELECTOR:
        return sw_resolve_method(p, v, CS_MF_SELECTOR, val);
    case CS_AXIS_N_SAMPLES:
    case CS_AXIS_SEQ_LEN:
    case CS_AXIS_SEED:
        return resolve_int(p, v, kind, val);
    case CS_AXIS_EXTRA:
    case CS_AXIS_GRID:
        val->canon = sw_canon_of(p, v);
        val->label = val->canon ? sw_dup(p, val->canon) : NULL;
        val->text = val->canon ? sw_dup(p, val->canon) : NULL;
        return val->canon != NULL;
    }
    return false;
}

static void value_fini(cs_axis_value *v)
{
    free(v->canon);
    free(v->label);
    free(v->text);
    v->canon = v->label = v->text = NULL;
}

static bool value_copy(parser *p, cs_axis_value *dst, const cs_axis_value *src)
{
    *dst = *src;
    dst->canon = sw_dup(p, src->canon);
    dst->label = sw_dup(p, src->label);
    dst->text = sw_dup(p, src->text);
    return dst->canon && dst->label && dst->text;
}

/* Expands {"range": [lo, hi], "scale": "linear"|"log2", "step": s} into numbers (owned array). */
static cJSON *expand_range(parser *p, const cJSON *r, cs_axis_kind kind)
{
    static const char *const keys[] = {"range", "scale", "step"};
    const cJSON *range = NULL;
    const char *scale = "linear";
    bool ints = kind != CS_AXIS_EXTRA;
    double lo = 0, hi = 0, step = 1;
    int64_t ilo = 0, ihi = 0, istep = 1;
    int64_t min = kind == CS_AXIS_SEED ? 0 : (ints ? 1 : INT64_MIN);
    size_t before = p->c.n_errors;
    cJSON *out = NULL;

    cs_json_check_keys(&p->c, r, keys, 3, CS_DIAG_ERROR);
    cs_json_opt_string(&p->c, r, "scale", "linear", &scale);
    if (strcmp(scale, "linear") != 0 && strcmp(scale, "log2") != 0) {
        cs_jctx_error(&p->c, cJSON_GetObjectItemCaseSensitive(r, "scale"), "scale",
                      "expected \"linear\" or \"log2\", got \"%s\"", scale);
        return NULL;
    }
    if (cs_json_req_array(&p->c, r, "range", &range) != CS_OK) {
        return NULL;
    }
    cs_jpath_push_key(&p->c.path, "range");
    if (cJSON_GetArraySize(range) != 2) {
        cs_jctx_error(&p->c, range, NULL, "expected [low, high], got %d values",
                      cJSON_GetArraySize(range));
    } else {
        cs_jpath_push_index(&p->c.path, 0);
        if (ints) {
            cs_json_as_int(&p->c, cJSON_GetArrayItem(range, 0), min, INT64_MAX, &ilo);
        } else {
            cs_json_as_number(&p->c, cJSON_GetArrayItem(range, 0), -INFINITY, INFINITY, &lo);
        }
        cs_jpath_pop(&p->c.path);
        cs_jpath_push_index(&p->c.path, 1);
        if (ints) {
            cs_json_as_int(&p->c, cJSON_GetArrayItem(range, 1), min, INT64_MAX, &ihi);
        } else {
            cs_json_as_number(&p->c, cJSON_GetArrayItem(range, 1), -INFINITY, INFINITY, &hi);
        }
        cs_jpath_pop(&p->c.path);
    }
    cs_jpath_pop(&p->c.path);
    if (ints) {
        lo = (double)ilo;
        hi = (double)ihi;
    }
    if (cJSON_GetObjectItemCaseSensitive(r, "step")) {
        if (strcmp(scale, "log2") == 0) {
            cs_jctx_error(&p->c, cJSON_GetObjectItemCaseSensitive(r, "step"), "step",
                          "a log2 range doubles each value and takes no step");
        } else if (ints) {
            cs_json_opt_int(&p->c, r, "step", 1, 1, INT64_MAX, &istep);
            step = (double)istep;
        } else if (cs_json_opt_number(&p->c, r, "step", 1, 0, INFINITY, &step) == CS_OK &&
                   step <= 0) {
            cs_jctx_error(&p->c, cJSON_GetObjectItemCaseSensitive(r, "step"), "step",
                          "expected a positive step, got %g", step);
        }
    }
    if (p->c.n_errors != before) {
        return NULL;
    }
    if (lo > hi) {
        cs_jctx_error(&p->c, range, "range", "low %g is above high %g", lo, hi);
        return NULL;
    }
    if (strcmp(scale, "log2") == 0 && lo <= 0) {
        cs_jctx_error(&p->c, range, "range", "a log2 range needs a positive low value, got %g", lo);
        return NULL;
    }
    out = cJSON_CreateArray();
    if (!out) {
        p->oom = CS_ENOMEM;
        return NULL;
    }
    for (size_t i = 0;; i++) {
        double x;
        cJSON *num;
        if (strcmp(scale, "log2") == 0) {
            if (ints && (i >= 62 || ilo > (INT64_MAX >> i))) {
                break;
            }
            x = ints ? (double)(ilo << i) : lo * ldexp(1.0, (int)(i < 2000 ? i : 2000));
        } else if (ints) {
            if (i > 0 && (uint64_t)(ihi - ilo) / (uint64_t)istep < i) {
                break;
            }
            x = (double)(ilo + (int64_t)i * istep);
        } else {
            x = lo + (double)i * step;
        }
        if (x > hi + (ints ? 0 : 1e-9 * fabs(step))) {
            break;
        }
        if (i >= MAX_AXIS_VALUES) {
            cs_jctx_error(&p->c, r, NULL, "the range gives more than %d values", MAX_AXIS_VALUES);
            cJSON_Delete(out);
            return NULL;
        }
        num = cJSON_CreateNumber(x);
        if (!num || !cJSON_AddItemToArray(out, num)) {
            cJSON_Delete(num);
            p->oom = CS_ENOMEM;
            break;
        }
    }
    return out;
}

/* Fills ax->values from v (a list, or a range object) at the current path. */
static void parse_axis_values(parser *p, const cJSON *v, cs_axis *ax)
{
    cJSON *expanded = NULL;
    const cJSON *list = v, *e;
    size_t n, i = 0;
    char d[64];

    if (cJSON_IsObject(v) && cJSON_GetObjectItemCaseSensitive(v, "range")) {
        expanded = expand_range(p, v, ax->kind);
        if (!expanded) {
            return;
        }
        list = expanded;
    } else if (!cJSON_IsArray(v)) {
        cs_jctx_error(&p->c, v, NULL,
                      "expected a list of values or {\"range\": [low, high]}, got %s",
                      cs_json_describe(v, d, sizeof(d)));
        return;
    }
    n = (size_t)cJSON_GetArraySize(list);
    if (n == 0) {
        cs_jctx_error(&p->c, v, NULL, "expected at least one value");
        goto out;
    }
    if (n > MAX_AXIS_VALUES) {
        cs_jctx_error(&p->c, v, NULL, "expected at most %d values, got %zu", MAX_AXIS_VALUES, n);
        goto out;
    }
    ax->values = cs_calloc_array(n, sizeof(*ax->values));
    if (!ax->values) {
        p->oom = CS_ENOMEM;
        goto out;
    }
    cJSON_ArrayForEach(e, list)
    {
        if (!expanded) {
            cs_jpath_push_index(&p->c.path, i);
        }
        if (resolve_value(p, e, ax->kind, &ax->values[ax->n])) {
            ax->n++;
        } else {
            value_fini(&ax->values[ax->n]);
        }
        if (!expanded) {
            cs_jpath_pop(&p->c.path);
        }
        i++;
    }
out:
    cJSON_Delete(expanded);
}

static bool valid_axis_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_')) {
            return false;
        }
    }
    return true;
}

static bool add_implicit(parser *p, cs_axis_kind kind)
{
    cs_sweep *s = p->s;
    cs_axis *ax = &s->axes[s->n_axes];
    size_t n = 1;

    if (kind == CS_AXIS_MODEL) {
        n = s->n_models;
    } else if (kind == CS_AXIS_EVAL) {
        n = s->n_evals;
    }
    if (n == 0) {
        return false; /* already reported: no models / no eval suites */
    }
    ax->name = sw_dup(p, mission_names[kind]);
    ax->kind = kind;
    ax->implicit = true;
    ax->values = cs_calloc_array(n, sizeof(*ax->values));
    if (!ax->values) {
        p->oom = CS_ENOMEM;
        return false;
    }
    s->mission[kind] = s->n_axes++;
    for (size_t i = 0; i < n; i++) {
        cs_axis_value *v = &ax->values[i];
        switch (kind) {
        case CS_AXIS_MODEL:
            v->ref = i;
            v->canon = sw_dup(p, s->models[i].canon ? s->models[i].canon : "null");
            v->label = sw_canon_string_value(p, s->models[i].name);
            break;
        case CS_AXIS_EVAL:
            v->ref = i;
            v->canon = sw_dup(p, s->evals[i].canon ? s->evals[i].canon : "null");
            v->label = sw_canon_string_value(p, s->evals[i].name);
            break;
        case CS_AXIS_SELECTOR:
            v->canon = sw_dup(p, "{\"name\":\"random\",\"stratified\":false}");
            v->label = sw_dup(p, v->canon);
            break;
        case CS_AXIS_N_SAMPLES:
            v->num = 128;
            v->canon = sw_dup(p, "128");
            v->label = sw_dup(p, "128");
            break;
        case CS_AXIS_SEQ_LEN:
            v->num = 2048;
            v->canon = sw_dup(p, "2048");
            v->label = sw_dup(p, "2048");
            break;
        case CS_AXIS_SEED:
            v->canon = sw_dup(p, "0");
            v->label = sw_dup(p, "0");
            break;
        case CS_AXIS_SOURCE:
            v->ref = SIZE_MAX;
            v->canon = sw_dup(p, "null");
            v->label = sw_dup(p, "null");
            break;
        default:
            break;
        }
        if (kind == CS_AXIS_MODEL || kind == CS_AXIS_EVAL) {
            v->text = sw_dup(p, kind == CS_AXIS_MODEL ? s->models[i].name : s->evals[i].name);
        } else if (kind == CS_AXIS_SELECTOR) {
            v->text = sw_dup(p, "random");
        } else {
            v->text = sw_dup(p, v->label ? v->label : "null");
        }
        ax->n++;
    }
    return true;
}

/* The default of grid.source when absent: the only text corpus, or null when nothing needs one. */
static void default_source(parser *p, const cJSON *grid)
{
    cs_sweep *s = p->s;
    size_t n_corpora = 0, which = 0;
    bool needed = false;
    const cs_axis *alg, *sel;
    char list[512];
    const char *names[64];

    for (size_t i = 0; i < s->n_sources; i++) {
        if (s->sources[i].kind && strcmp(s->sources[i].kind, "task") != 0 &&
            strcmp(s->sources[i].kind, "pool") != 0) {
            if (n_corpora < 64) {
                names[n_corpora] = s->sources[i].name;
            }
            n_corpora++;
            which = i;
        }
    }
    if (!add_implicit(p, CS_AXIS_SOURCE)) {
        return;
    }
    if (n_corpora == 1) {
        cs_axis_value *v = &s->axes[s->mission[CS_AXIS_SOURCE]].values[0];
        free(v->canon);
        free(v->label);
        free(v->text);
        v->ref = which;
        v->canon = sw_dup(p, s->sources[which].canon ? s->sources[which].canon : "null");
        v->label = sw_canon_string_value(p, s->sources[which].name);
        v->text = sw_dup(p, s->sources[which].name);
        return;
    }
    alg = &s->axes[s->mission[CS_AXIS_ALGORITHM]];
    sel = &s->axes[s->mission[CS_AXIS_SELECTOR]];
    for (size_t a = 0; a < alg->n; a++) {
        for (size_t k = 0; k < sel->n; k++) {
            if (!(alg->values[a].flags & CS_VAL_NO_CALIB) &&
                !(sel->values[k].flags & CS_VAL_NO_SOURCE)) {
                needed = true;
            }
        }
    }
    if (!needed) {
        return;
    }
    cs_join_names(names, n_corpora < 64 ? n_corpora : 64, list, sizeof(list));
    if (n_corpora == 0) {
        cs_jctx_error(&p->c, grid, NULL,
                      "no \"source\" axis, and data.sources has no text corpus to calibrate on");
    } else {
        cs_jctx_error(&p->c, grid, NULL,
                      "no \"source\" axis, and data.sources has %zu corpora (%s): list the ones "
                      "to calibrate on in grid.source",
                      n_corpora, list);
    }
}

static void parse_grid(parser *p, const cJSON *grid)
{
    cs_sweep *s = p->s;
    size_t n = (size_t)cJSON_GetArraySize(grid);
    const cJSON *a;

    for (size_t k = 0; k < CS_AXIS_N_MISSION; k++) {
        s->mission[k] = SIZE_MAX;
    }
    s->axes = cs_calloc_array(n + CS_AXIS_N_MISSION, sizeof(*s->axes));
    if (!s->axes) {
        p->oom = CS_ENOMEM;
        return;
    }
    cs_jpath_push_key(&p->c.path, "grid");
    cJSON_ArrayForEach(a, grid)
    {
        cs_axis *ax = &s->axes[s->n_axes];
        size_t k;
        for (k = 0; k < CS_AXIS_N_MISSION; k++) {
            if (strcmp(a->string, mission_names[k]) == 0) {
                break;
            }
        }
        ax->kind = (cs_axis_kind)k;
        if (k == CS_AXIS_N_MISSION) {
            const char *sugg = cs_json_suggest(a->string, mission_names, CS_AXIS_N_MISSION);
            ax->kind = CS_AXIS_EXTRA;
            if (!valid_axis_name(a->string)) {
                cs_jctx_error(&p->c, a, a->string,
                              "axis names use letters, digits and '_' and do not start with a "
                              "digit");
                continue;
            }
            if (sugg) {
                cs_jctx_warn(&p->c, a, a->string,
                             "not a mission axis: passed to the job as an extra axis (did you "
                             "mean \"%s\"?)",
                             sugg);
            }
        }
        ax->name = sw_dup(p, a->string);
        if (k < CS_AXIS_N_MISSION) {
            s->mission[k] = s->n_axes;
        }
        s->n_axes++;
        cs_jpath_push_key(&p->c.path, a->string);
        parse_axis_values(p, a, ax);
        cs_jpath_pop(&p->c.path);
    }
    cs_jpath_pop(&p->c.path);
    if (s->mission[CS_AXIS_ALGORITHM] == SIZE_MAX) {
        cs_jctx_error(&p->c, grid, "grid", "missing the \"algorithm\" axis (e.g. [\"gptq\"])");
        return;
    }
    for (size_t k = 0; k < CS_AXIS_N_MISSION; k++) {
        if (s->mission[k] == SIZE_MAX && k != CS_AXIS_SOURCE) {
            add_implicit(p, (cs_axis_kind)k);
        }
    }
    if (s->mission[CS_AXIS_SOURCE] == SIZE_MAX) {
        cs_jpath_push_key(&p->c.path, "grid");
        default_source(p, grid);
        cs_jpath_pop(&p->c.path);
    }
}

static size_t find_axis(parser *p, const char *name, size_t len)
{
    char buf[128];
    if (len >= sizeof(buf)) {
        return SIZE_MAX; /* axis names have at most 64 bytes */
    }
    memcpy(buf, name, len);
    buf[len] = '\0';
    return sw_lookup_name(p, NAMES_AXES, p->s->axes, p->s->n_axes, sizeof(*p->s->axes), buf);
}

/* Reports an unknown axis name with a suggestion among the axes. */
static void unknown_axis(parser *p, const cJSON *node, const char *key, const char *name)
{
    const char *names[128];
    size_t nn = 0;
    const char *sugg;
    for (size_t i = 0; i < p->s->n_axes && nn < 128; i++) {
        names[nn++] = p->s->axes[i].name;
    }
    sugg = cs_json_suggest(name, names, nn);
    if (sugg) {
        cs_jctx_error(&p->c, node, key, "unknown axis \"%s\" (did you mean \"%s\"?)", name, sugg);
    } else {
        cs_jctx_error(&p->c, node, key, "unknown axis \"%s\"", name);
    }
}

static void parse_zip(parser *p, const cJSON *zip)
{
    cs_sweep *s = p->s;
    size_t *group_of = NULL, n_groups = (size_t)cJSON_GetArraySize(zip), gi = 0;
    const cJSON *g;

    group_of = cs_alloc_array(s->n_axes, sizeof(*group_of));
    s->dims = cs_calloc_array(s->n_axes, sizeof(*s->dims));
    if (!group_of || !s->dims) {
        p->oom = CS_ENOMEM;
        free(group_of);
        return;
    }
    for (size_t i = 0; i < s->n_axes; i++) {
        group_of[i] = SIZE_MAX;
    }
    cs_jpath_push_key(&p->c.path, "zip");
    cJSON_ArrayForEach(g, zip)
    {
        const cJSON *e;
        size_t i = 0, first_len = 0;
        const char *first_name = NULL;
        cs_jpath_push_index(&p->c.path, gi);
        if (cs_json_as_array(&p->c, g) != CS_OK) {
            cs_jpath_pop(&p->c.path);
            gi++;
            continue;
        }
        if (cJSON_GetArraySize(g) < 2) {
            cs_jctx_error(&p->c, g, NULL, "a zip group needs at least two axes");
        }
        cJSON_ArrayForEach(e, g)
        {
            const char *nm = NULL;
            size_t ax;
            cs_jpath_push_index(&p->c.path, i++);
            if (cs_json_as_string(&p->c, e, &nm) == CS_OK) {
                ax = find_axis(p, nm, strlen(nm));
                if (ax == SIZE_MAX) {
                    unknown_axis(p, e, NULL, nm);
                } else if (s->axes[ax].implicit) {
                    cs_jctx_error(&p->c, e, NULL, "axis \"%s\" is not in the grid", nm);
                } else if (group_of[ax] != SIZE_MAX) {
                    cs_jctx_error(&p->c, e, NULL, "axis \"%s\" is already in zip group %zu", nm,
                                  group_of[ax]);
                } else if (first_name && s->axes[ax].n != first_len) {
                    cs_jctx_error(&p->c, e, NULL,
                                  "axes zipped together need as many values each: \"%s\" has "
                                  "%zu, \"%s\" has %zu",
                                  first_name, first_len, nm, s->axes[ax].n);
                } else {
                    group_of[ax] = gi;
                    if (!first_name) {
                        first_name = s->axes[ax].name;
                        first_len = s->axes[ax].n;
                    }
                }
            }
            cs_jpath_pop(&p->c.path);
        }
        cs_jpath_pop(&p->c.path);
        gi++;
    }
    cs_jpath_pop(&p->c.path);
    (void)n_groups;
    /* Dimensions in axis order: a lone axis, or a whole zip group at its first member. */
    for (size_t i = 0; i < s->n_axes; i++) {
        cs_dim *d = &s->dims[s->n_dims];
        size_t members = 0;
        if (group_of[i] != SIZE_MAX) {
            bool first = true;
            for (size_t j = 0; j < i; j++) {
                if (group_of[j] == group_of[i]) {
                    first = false;
                }
            }
            if (!first) {
                continue;
            }
            for (size_t j = i; j < s->n_axes; j++) {
                members += group_of[j] == group_of[i];
            }
        } else {
            members = 1;
        }
        d->axes = cs_alloc_array(members, sizeof(*d->axes));
        if (!d->axes) {
            p->oom = CS_ENOMEM;
            break;
        }
        for (size_t j = i; j < s->n_axes; j++) {
            if (j == i || (group_of[i] != SIZE_MAX && group_of[j] == group_of[i])) {
                d->axes[d->n_axes++] = j;
            }
        }
        d->len = s->axes[i].n;
        s->n_dims++;
    }
    free(group_of);
}

/* ---- exclude patterns ----------------------------------------------------------------------- */

/* Glob with '*' only (any run of bytes). */
static bool glob_match(const char *pat, const char *str)
{
    const char *star = NULL, *resume = NULL;
    while (*str) {
        if (*pat == '*') {
            star = pat++;
            resume = str;
        } else if (*pat == *str) {
            pat++;
            str++;
        } else if (star) {
            pat = star + 1;
            str = ++resume;
        } else {
            return false;
        }
    }
    while (*pat == '*') {
        pat++;
    }
    return *pat == '\0';
}

/* Does value v (a resolved label, may be NULL = missing) match pattern pat? */
static bool pattern_match(parser *p, const cJSON *pat, const cJSON *v)
{
    if (!v) {
        return false;
    }
    if (cJSON_IsArray(pat)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, pat)
        {
            if (pattern_match(p, e, v)) {
                return true;
            }
        }
        return false;
    }
    if (cJSON_IsString(pat)) {
        if (cJSON_IsObject(v)) { /* "gptq" stands for {"name": "gptq", ...} */
            v = cJSON_GetObjectItemCaseSensitive(v, "name");
            if (!v) {
                return false;
            }
        }
        if (strcmp(pat->valuestring, "*") == 0) {
            return true;
        }
        if (cJSON_IsString(v)) {
            return glob_match(pat->valuestring, v->valuestring);
        }
        if (strchr(pat->valuestring, '*') && !cJSON_IsObject(v) && !cJSON_IsArray(v)) {
            char *txt = cJSON_PrintUnformatted(v);
            bool m = txt && glob_match(pat->valuestring, txt);
            free(txt);
            return m;
        }
        return false;
    }
    if (cJSON_IsNumber(pat)) {
        return cJSON_IsNumber(v) && v->valuedouble == pat->valuedouble;
    }
    if (cJSON_IsBool(pat)) {
        return cJSON_IsBool(v) && cJSON_IsTrue(v) == cJSON_IsTrue(pat);
    }
    if (cJSON_IsNull(pat)) {
        return cJSON_IsNull(v);
    }
    /* Objects compare by canonical text. */
    {
        char *a = sw_canon_of(p, pat), *b = sw_canon_of(p, v);
        bool m = a && b && strcmp(a, b) == 0;
        free(a);
        free(b);
        return m;
    }
}

/* Follows a dotted path ("name", "a.b") into v; NULL when missing. */
static const cJSON *follow(const cJSON *v, const char *path)
{
    char part[128];
    while (v && *path) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        if (len >= sizeof(part) || !cJSON_IsObject(v)) {
            return NULL;
        }
        memcpy(part, path, len);
        part[len] = '\0';
        v = cJSON_GetObjectItemCaseSensitive(v, part);
        path = dot ? dot + 1 : path + len;
    }
    return v;
}

/* The label of value i of axis ax as a tree, parsed once (owned by p), or NULL (OOM set). */
static const cJSON *parsed_label(parser *p, size_t ax, size_t i)
{
    const cs_sweep *s = p->s;
    if (!p->labels) {
        p->labels = cs_calloc_array(s->n_axes, sizeof(*p->labels));
    }
    if (p->labels && !p->labels[ax]) {
        p->labels[ax] = cs_calloc_array(s->axes[ax].n + 1, sizeof(**p->labels));
    }
    if (!p->labels || !p->labels[ax]) {
        p->oom = CS_ENOMEM;
        return NULL;
    }
    if (!p->labels[ax][i]) {
        p->labels[ax][i] = cJSON_Parse(s->axes[ax].values[i].label);
        if (!p->labels[ax][i]) {
            p->oom = CS_ENOMEM;
        }
    }
    return p->labels[ax][i];
}

static void parse_excludes(parser *p, const cJSON *excl)
{
    cs_sweep *s = p->s;
    size_t n = (size_t)cJSON_GetArraySize(excl), pi = 0;
    const cJSON *pat;

    s->excludes = cs_calloc_array(n, sizeof(*s->excludes));
    if (!s->excludes) {
        p->oom = CS_ENOMEM;
        return;
    }
    cs_jpath_push_key(&p->c.path, "exclude");
    cJSON_ArrayForEach(pat, excl)
    {
        cs_exclude *ex = &s->excludes[s->n_excludes];
        const cJSON *cond;
        bool ok = true, empty_match = false, over = false;
        cs_jpath_push_index(&p->c.path, pi++);
        if (cs_json_as_object(&p->c, pat) != CS_OK) {
            cs_jpath_pop(&p->c.path);
            continue;
        }
        if (cJSON_GetArraySize(pat) == 0) {
            cs_jctx_error(&p->c, pat, NULL,
                          "an empty pattern would exclude every cell; name at least one axis");
            cs_jpath_pop(&p->c.path);
            continue;
        }
        ex->conds = cs_calloc_array((size_t)cJSON_GetArraySize(pat), sizeof(*ex->conds));
        if (!ex->conds) {
            p->oom = CS_ENOMEM;
            cs_jpath_pop(&p->c.path);
            break;
        }
        s->n_excludes++;
        cJSON_ArrayForEach(cond, pat)
        {
            const char *dot = strchr(cond->string, '.');
            size_t len = dot ? (size_t)(dot - cond->string) : strlen(cond->string);
            size_t ax = find_axis(p, cond->string, len);
            cs_exclude_cond *ec = &ex->conds[ex->n_conds];
            size_t hits = 0;
            if (ax == SIZE_MAX) {
                char nm[128];
                snprintf(nm, sizeof(nm), "%.*s", (int)(len < 100 ? len : 100), cond->string);
                unknown_axis(p, cond, cond->string, nm);
                ok = false;
                continue;
            }
            if (dot && (dot[1] == '\0' || strstr(dot, ".."))) {
                cs_jctx_error(&p->c, cond, cond->string, "a dotted path needs names between dots");
                ok = false;
                continue;
            }
            ec->axis = ax;
            /* Each condition tests every value of its axis: bound the total, so that validating
             * (and the walk over the grid) stays fast whatever the file holds. */
            p->exclude_tests += s->axes[ax].n;
            if (p->exclude_tests > CS_LIMIT_EXCLUDE_TESTS) {
                cs_jctx_error(&p->c, cond, cond->string,
                              "the exclude patterns test more than %lld axis values in all; "
                              "list values in fewer patterns (the patterns after this one were "
                              "not checked)",
                              (long long)CS_LIMIT_EXCLUDE_TESTS);
                ok = false;
                over = true;
                break;
            }
            ec->match = cs_calloc_array(s->axes[ax].n ? s->axes[ax].n : 1, sizeof(bool));
            if (!ec->match) {
                p->oom = CS_ENOMEM;
                ok = false;
                break;
            }
            ex->n_conds++;
            for (size_t i = 0; i < s->axes[ax].n; i++) {
                const cJSON *lv = parsed_label(p, ax, i);
                if (!lv) {
                    continue;
                }
                ec->match[i] = pattern_match(p, cond, follow(lv, dot ? dot + 1 : ""));
                hits += ec->match[i];
            }
            if (hits == 0) {
                empty_match = true;
            }
        }
        if (ok && empty_match) {
            cs_jctx_warn(&p->c, pat, NULL, "matches no cell of the grid");
        }
        cs_jpath_pop(&p->c.path);
        if (over) {
            break;
        }
    }
    cs_jpath_pop(&p->c.path);
}

/* ---- include cells -------------------------------------------------------------------------- */

static void parse_includes(parser *p, const cJSON *incl)
{
    cs_sweep *s = p->s;
    size_t n = (size_t)cJSON_GetArraySize(incl), ii = 0;
    const cJSON *cell;

    /* Each include cell holds a value of every axis: bound the total, or a file of many axes
     * and many cells would ask for gigabytes. */
    if (n > 0 && s->n_axes > (size_t)CS_LIMIT_INCLUDE_VALUES / n) {
        cs_jctx_error(&p->c, incl, "include",
                      "%zu include cells x %zu axes is more than %lld cell values; use fewer "
                      "include cells or axes",
                      n, s->n_axes, (long long)CS_LIMIT_INCLUDE_VALUES);
        return;
    }
    s->includes = cs_calloc_array(n, sizeof(*s->includes));
    if (!s->includes) {
        p->oom = CS_ENOMEM;
        return;
    }
    cs_jpath_push_key(&p->c.path, "include");
    cJSON_ArrayForEach(cell, incl)
    {
        cs_include *inc = &s->includes[s->n_includes];
        const cJSON *kv;
        bool *given = NULL;
        cs_jpath_push_index(&p->c.path, ii++);
        if (cs_json_as_object(&p->c, cell) != CS_OK) {
            cs_jpath_pop(&p->c.path);
            continue;
        }
        inc->values = cs_calloc_array(s->n_axes, sizeof(*inc->values));
        given = cs_calloc_array(s->n_axes, sizeof(*given));
        if (!inc->values || !given) {
            p->oom = CS_ENOMEM;
            free(inc->values);
            inc->values = NULL;
            free(given);
            cs_jpath_pop(&p->c.path);
            break;
        }
        s->n_includes++;
        cJSON_ArrayForEach(kv, cell)
        {
            size_t ax = find_axis(p, kv->string, strlen(kv->string));
            if (ax == SIZE_MAX) {
                unknown_axis(p, kv, kv->string, kv->string);
                continue;
            }
            cs_jpath_push_key(&p->c.path, kv->string);
            if (cJSON_IsArray(kv) && s->axes[ax].kind != CS_AXIS_EXTRA) {
                cs_jctx_error(&p->c, kv, NULL,
                              "an included cell takes one value per axis, got a list");
            } else if (resolve_value(p, kv, s->axes[ax].kind, &inc->values[ax])) {
                given[ax] = true;
            } else {
                value_fini(&inc->values[ax]);
            }
            cs_jpath_pop(&p->c.path);
        }
        for (size_t ax = 0; ax < s->n_axes; ax++) {
            if (given[ax]) {
                continue;
            }
            if (s->axes[ax].n == 1) {
                value_copy(p, &inc->values[ax], &s->axes[ax].values[0]);
            } else if (s->axes[ax].n > 1) {
                cs_jctx_error(&p->c, cell, NULL,
                              "missing axis \"%s\" (the grid has %zu values for it: name one)",
                              s->axes[ax].name, s->axes[ax].n);
            }
        }
        free(given);
        cs_jpath_pop(&p->c.path);
    }
    cs_jpath_pop(&p->c.path);
}

/* ---- top level ------------------------------------------------------------------------------ */

/* Drops what the parser keeps per grid (the axis name index, exclude labels) before it moves to
 * another grid of a union. */
static void reset_grid_state(parser *p)
{
    free(p->names[NAMES_AXES].refs);
    memset(&p->names[NAMES_AXES], 0, sizeof(p->names[NAMES_AXES]));
    for (size_t a = 0; p->labels && a < p->s->n_axes; a++) {
        for (size_t i = 0; p->labels[a] && i < p->s->axes[a].n; i++) {
            cJSON_Delete(p->labels[a][i]);
        }
        free(p->labels[a]);
    }
    free(p->labels);
    p->labels = NULL;
    p->exclude_tests = 0;
}

/* The label axis "grid" of a sub-grid: one value, its name. */
static void add_grid_label(parser *p, const char *name)
{
    cs_sweep *s = p->s;
    cs_axis *grown = realloc(s->axes, (s->n_axes + 1) * sizeof(*s->axes));
    if (!grown) {
        p->oom = CS_ENOMEM;
        return;
    }
    s->axes = grown;
    cs_axis *ax = &s->axes[s->n_axes];
    memset(ax, 0, sizeof(*ax));
    ax->values = calloc(1, sizeof(*ax->values));
    if (!ax->values) {
        p->oom = CS_ENOMEM;
        return;
    }
    ax->name = sw_dup(p, "grid");
    ax->kind = CS_AXIS_GRID;
    ax->implicit = true;
    ax->n = 1;
    ax->values[0].canon = sw_canon_string_value(p, name);
    ax->values[0].label = sw_canon_string_value(p, name);
    ax->values[0].text = sw_dup(p, name);
    s->n_axes++;
}

/* grid, zip, exclude and include of obj (the top level, or a sub-grid called name), then the
 * pools against this grid's sizes. */
static void parse_grid_body(parser *p, const cJSON *obj, const cJSON *data, const char *name)
{
    const cJSON *grid = cJSON_GetObjectItemCaseSensitive(obj, "grid"), *zip = NULL, *excl = NULL;
    const cJSON *incl = NULL;
    parse_grid(p, grid);
    if (p->oom || !p->s->axes) {
        return;
    }
    if (name) {
        if (cJSON_GetObjectItemCaseSensitive(grid, "grid")) {
            cs_jpath_push_key(&p->c.path, "grid");
            cs_jctx_error(&p->c, cJSON_GetObjectItemCaseSensitive(grid, "grid"), "grid",
                          "\"grid\" names the sub-grid in a sweep of \"grids\": give the axis "
                          "another name");
            cs_jpath_pop(&p->c.path);
        }
        add_grid_label(p, name);
    }
    if (cs_json_opt_array(&p->c, obj, "zip", &zip) == CS_OK) {
        parse_zip(p, zip);
    }
    if (cs_json_opt_array(&p->c, obj, "exclude", &excl) == CS_OK && excl) {
        parse_excludes(p, excl);
    }
    if (cs_json_opt_array(&p->c, obj, "include", &incl) == CS_OK && incl) {
        parse_includes(p, incl);
    }
    if (!p->oom) {
        sw_check_pools(p, data);
    }
}

/* "grids": {name: {"grid", "zip", "include", "exclude"}}: a sub-grid per member, each parsed as
 * a grid of its own (paths "grids.<name>.grid...") that shares the parent's models, data and
 * policy. */
static void parse_grids(parser *p, const cJSON *doc, const cJSON *data)
{
    static const char *const keys[] = {"grid", "zip", "include", "exclude"};
    static const char *const single[] = {"grid", "zip", "include", "exclude"};
    cs_sweep *parent = p->s;
    const cJSON *grids = NULL, *g;
    size_t n;
    for (size_t k = 0; k < 4; k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(doc, single[k]);
        if (x) {
            cs_jctx_error(&p->c, x, single[k],
                          "a sweep has \"grid\" (with zip, include and exclude) or \"grids\", "
                          "not both: move it into a sub-grid");
        }
    }
    if (cs_json_req_object(&p->c, doc, "grids", &grids) != CS_OK) {
        return;
    }
    n = (size_t)cJSON_GetArraySize(grids);
    if (n == 0) {
        cs_jctx_error(&p->c, grids, "grids", "expected at least one named sub-grid");
        return;
    }
    parent->grids = cs_calloc_array(n, sizeof(*parent->grids));
    parent->grid_names = cs_calloc_array(n, sizeof(*parent->grid_names));
    if (!parent->grids || !parent->grid_names) {
        p->oom = CS_ENOMEM;
        return;
    }
    cs_jpath_push_key(&p->c.path, "grids");
    cJSON_ArrayForEach(g, grids)
    {
        cs_sweep *c = calloc(1, sizeof(*c));
        if (!c) {
            p->oom = CS_ENOMEM;
            break;
        }
        parent->grids[parent->n_grids] = c;
        parent->grid_names[parent->n_grids++] = sw_dup(p, g->string);
        c->shared = true;
        c->name = sw_dup(p, parent->name);
        c->models = parent->models, c->n_models = parent->n_models;
        c->sources = parent->sources, c->n_sources = parent->n_sources;
        c->evals = parent->evals, c->n_evals = parent->n_evals;
        c->policy = parent->policy;
        if (!sw_valid_name(g->string)) {
            cs_jctx_error(&p->c, g, g->string,
                          "sub-grid names use letters, digits, '_', '-' and '.' (at most 64), "
                          "got \"%s\"",
                          g->string);
        }
        cs_jpath_push_key(&p->c.path, g->string);
        if (cs_json_as_object(&p->c, g) == CS_OK) {
            const cJSON *grid = NULL;
            cs_json_check_keys(&p->c, g, keys, 4, CS_DIAG_ERROR);
            p->s = c;
            if (cs_json_req_object(&p->c, g, "grid", &grid) == CS_OK && !p->oom) {
                parse_grid_body(p, g, data, g->string);
            }
            reset_grid_state(p);
            p->s = parent;
        }
        cs_jpath_pop(&p->c.path);
    }
    cs_jpath_pop(&p->c.path);
}

static void parse_doc(parser *p, const cJSON *doc)
{
    static const char *const keys[] = {"$schema", "name",    "description", "tags",
                                       "models",  "data",    "grid",        "zip",
                                       "include", "exclude", "policy",      "grids"};
    cs_sweep *s = p->s;
    const char *name = NULL, *desc = "";
    const cJSON *tags = NULL, *models = NULL, *data = NULL, *grid = NULL, *pol = NULL;

    if (cs_json_as_object(&p->c, doc) != CS_OK) {
        return;
    }
    cs_json_check_keys(&p->c, doc, keys, sizeof(keys) / sizeof(keys[0]), CS_DIAG_ERROR);
    if (cs_json_req_string(&p->c, doc, "name", &name) == CS_OK && !sw_valid_name(name)) {
        cs_jctx_error(&p->c, cJSON_GetObjectItemCaseSensitive(doc, "name"), "name",
                      "a sweep name uses letters, digits, '_', '-' and '.' (at most 64), got "
                      "\"%s\"",
                      name);
    }
    s->name = sw_dup(p, name ? name : "");
    cs_json_opt_string(&p->c, doc, "description", "", &desc);
    s->description = sw_dup(p, desc);
    if (cs_json_opt_array(&p->c, doc, "tags", &tags) == CS_OK && tags) {
        const cJSON *t;
        size_t i = 0;
        s->tags = cs_calloc_array((size_t)cJSON_GetArraySize(tags), sizeof(*s->tags));
        if (!s->tags) {
            p->oom = CS_ENOMEM;
        } else {
            cs_jpath_push_key(&p->c.path, "tags");
            cJSON_ArrayForEach(t, tags)
            {
                const char *str = NULL;
                cs_jpath_push_index(&p->c.path, i++);
                if (cs_json_as_string(&p->c, t, &str) == CS_OK) {
                    s->tags[s->n_tags++] = sw_dup(p, str);
                }
                cs_jpath_pop(&p->c.path);
            }
            cs_jpath_pop(&p->c.path);
        }
    }
    if (cs_json_req_object(&p->c, doc, "models", &models) == CS_OK) {
        cs_jpath_push_key(&p->c.path, "models");
        sw_parse_models(p, models);
        cs_jpath_pop(&p->c.path);
    }
    if (cs_json_req_object(&p->c, doc, "data", &data) == CS_OK) {
        cs_jpath_push_key(&p->c.path, "data");
        sw_parse_data(p, data);
        cs_jpath_pop(&p->c.path);
    }
    s->policy = (cs_policy){.max_attempts = 3, .backoff_base_s = 30, .backoff_max_s = 3600};
    if (cs_json_opt_object(&p->c, doc, "policy", &pol) == CS_OK) {
        sw_parse_policy(p, pol);
    }
    if (cJSON_GetObjectItemCaseSensitive(doc, "grids")) {
        parse_grids(p, doc, data);
        return;
    }
    if (cs_json_req_object(&p->c, doc, "grid", &grid) != CS_OK || p->oom) {
        return;
    }
    parse_grid_body(p, doc, data, NULL);
}

cs_rc cs_sweep_parse(const char *text, size_t len, const char *name, cs_sweep **out,
                     cs_diags *diags, cs_err *err)
{
    cs_diags local;
    cs_diags *d = diags ? diags : &local;
    cJSON *doc = NULL;
    cs_sweep *s = NULL;
    parser p;
    cs_rc rc;

    memset(&p, 0, sizeof(p));
    *out = NULL;
    cs_diags_init(&local);
    if (len > CS_LIMIT_SWEEP_BYTES) {
        rc = cs_err_set(err, CS_ETOOBIG, 0, "%s: %zu bytes, above the limit of %zu for a sweep",
                        name ? name : "<input>", len, CS_LIMIT_SWEEP_BYTES);
        cs_diags_add(d, CS_DIAG_ERROR, NULL, "", "%s", err ? err->msg : "too big");
        goto out;
    }
    rc = cs_json_parse(text, len, name, &doc, err);
    if (rc != CS_OK) {
        if (rc == CS_EPARSE) {
            cs_diags_add(d, CS_DIAG_ERROR, NULL, "", "%s", err ? err->msg : "not valid JSON");
        }
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "sweep: out of memory");
        goto out;
    }
    p.s = s;
    cs_jctx_init(&p.c, d, NULL);
    parse_doc(&p, doc);
    if (p.oom != CS_OK || p.c.oom != CS_OK) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "sweep: out of memory");
        goto out;
    }
    s->spec = NULL;
    if (p.c.n_errors == 0) {
        cs_err e = {0};
        size_t slen = 0;
        rc = cs_canon_string(doc, &s->spec, &slen, &e);
        if (rc == CS_OK) {
            rc = cs_sha256_hex(s->spec, slen, s->spec_hash, &e);
        }
        if (rc != CS_OK) {
            rc = cs_err_set(err, rc, 0, "%s", e.msg);
            goto out;
        }
        /* The canonical text travels in SUBMIT: it may be longer than the file (1e9 is written
         * out in full), so it has the limit of the file as well. */
        if (slen > CS_LIMIT_SWEEP_BYTES) {
            cs_jctx_error(&p.c, doc, NULL,
                          "the sweep's canonical JSON is %zu bytes, above the limit of %zu", slen,
                          CS_LIMIT_SWEEP_BYTES);
        }
    }
    cs_diags_sort(d, doc);
    for (size_t i = 0; i < d->len; i++) {
        d->items[i].node = NULL; /* the tree is freed below */
    }
    if (p.c.n_errors > 0) {
        rc = cs_diags_to_err(d, err);
        if (rc == CS_OK) {
            rc = cs_err_set(err, CS_ESCHEMA, 0, "the sweep is not valid");
        }
        goto out;
    }
    *out = s;
    s = NULL;
    rc = CS_OK;
out:
    for (int i = 0; i < NAMES_N; i++) {
        free(p.names[i].refs);
    }
    for (size_t a = 0; p.labels && a < p.s->n_axes; a++) {
        for (size_t i = 0; p.labels[a] && i < p.s->axes[a].n; i++) {
            cJSON_Delete(p.labels[a][i]);
        }
        free(p.labels[a]);
    }
    free(p.labels);
    cJSON_Delete(doc);
    cs_sweep_destroy(s);
    cs_diags_fini(&local);
    return rc;
}

cs_rc cs_sweep_load(const char *path, cs_sweep **out, cs_diags *diags, cs_err *err)
{
    char *text = NULL;
    size_t len = 0;
    cs_rc rc;

    *out = NULL;
    rc = cs_path_read_file(path, CS_LIMIT_SWEEP_BYTES, &text, &len, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = cs_sweep_parse(text, len, path, out, diags, err);
    free(text);
    return rc;
}

void cs_sweep_destroy(cs_sweep *s)
{
    if (!s) {
        return;
    }
    for (size_t i = 0; i < s->n_grids; i++) {
        cs_sweep *g = s->grids[i];
        if (g) { /* what it shares is the parent's */
            g->models = NULL, g->n_models = 0;
            g->sources = NULL, g->n_sources = 0;
            g->evals = NULL, g->n_evals = 0;
        }
        cs_sweep_destroy(g);
        free(s->grid_names[i]);
    }
    free(s->grids);
    free(s->grid_names);
    free(s->name);
    free(s->description);
    for (size_t i = 0; i < s->n_tags; i++) {
        free(s->tags[i]);
    }
    free(s->tags);
    for (size_t i = 0; i < s->n_models; i++) {
        free(s->models[i].name);
        free(s->models[i].folder);
        free(s->models[i].arch);
        free(s->models[i].canon);
    }
    free(s->models);
    for (size_t i = 0; i < s->n_sources; i++) {
        free(s->sources[i].name);
        free(s->sources[i].kind);
        free(s->sources[i].path);
        free(s->sources[i].canon);
        sw_pool_free(s->sources[i].pool);
    }
    free(s->sources);
    for (size_t i = 0; i < s->n_evals; i++) {
        free(s->evals[i].name);
        free(s->evals[i].canon);
        free(s->evals[i].headline);
    }
    free(s->evals);
    for (size_t i = 0; i < s->n_includes; i++) {
        for (size_t a = 0; a < s->n_axes && s->includes[i].values; a++) {
            value_fini(&s->includes[i].values[a]);
        }
        free(s->includes[i].values);
    }
    free(s->includes);
    for (size_t i = 0; i < s->n_axes; i++) {
        for (size_t k = 0; k < s->axes[i].n; k++) {
            value_fini(&s->axes[i].values[k]);
        }
        free(s->axes[i].values);
        free(s->axes[i].name);
    }
    free(s->axes);
    for (size_t i = 0; i < s->n_dims; i++) {
        free(s->dims[i].axes);
    }
    free(s->dims);
    for (size_t i = 0; i < s->n_excludes; i++) {
        for (size_t k = 0; k < s->excludes[i].n_conds; k++) {
            free(s->excludes[i].conds[k].match);
        }
        free(s->excludes[i].conds);
    }
    free(s->excludes);
    free(s->spec);
    free(s);
}

void cs_sweep_get_meta(const cs_sweep *s, cs_sweep_meta *out)
{
    out->name = s->name;
    out->spec = s->spec;
    out->spec_hash = s->spec_hash;
    out->policy = s->policy;
}

const cs_sweep_model *cs_sweep_find_model(const cs_sweep *s, const char *name)
{
    size_t i = find_named(s->models, s->n_models, sizeof(*s->models), name);
    return i == SIZE_MAX ? NULL : &s->models[i];
}
