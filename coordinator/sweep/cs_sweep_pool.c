/* cs_sweep_pool.c - data.pools: candidate pools mixed from several sources, as values of the
 * source axis, and the checks of a sweep's data files on this machine (part of the sweep parser;
 * shared state in cs_sweep_int.h).
 *
 * A pool: {"sources": {name: {"quota": N} | {"weight": W} | {}, "format": "text"|"qa"},
 *          "size": N | {"multiple": K}, "composition": "random_windows"|"concat"|"per_doc",
 *          "keep_out": [eval suite names]}
 * enters a job as calibration.source = {"kind": "pool", "composition", "keep_out": [task files],
 * "size", "sources": {name: {kind, path, text_field, quota|weight, format}}}: the whole
 * definition is in the job key, and the worker builds the pool from it (worker/run/cs_job.c).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cs_alloc.h"
#include "cs_docs.h"
#include "cs_limits.h"
#include "cs_sweep.h"
#include "cs_sweep_int.h"

#define POOL_MAX_WEIGHT   1e6
#define POOL_MAX_MULTIPLE 1024
#define POOL_MAX_ITEMS    (INT64_C(1) << 24)

static const char *const k_compose[] = {"random_windows", "concat", "per_doc", "doc_windows",
                                        "awq_concat"};

/* Index of the plain source called name among the first n_plain sources, or SIZE_MAX. */
static size_t plain_source(const cs_sweep *s, size_t n_plain, const char *name)
{
    for (size_t i = 0; i < n_plain; i++) {
        if (s->sources[i].name && strcmp(s->sources[i].name, name) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

static void unknown_source(parser *p, const cJSON *node, const char *name, size_t n_plain)
{
    const char *names[64];
    size_t nn = 0;
    for (size_t j = 0; j < n_plain && nn < 64; j++) {
        names[nn++] = p->s->sources[j].name;
    }
    sw_unknown_name(p, node, "source", name, names, nn);
}

/* One member of a pool's "sources" into ps and its canonical object into o. */
static void parse_pool_source(parser *p, const cJSON *m, size_t n_plain, cs_sweep_pool_src *ps,
                              cJSON *o)
{
    static const char *const keys[] = {"quota", "weight", "format"};
    const cs_sweep *s = p->s;
    const char *fmt = "text";
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(m, "quota");
    size_t k = plain_source(s, n_plain, m->string);

    ps->source = k;
    ps->weight = 1.0;
    if (k == SIZE_MAX) {
        unknown_source(p, m, m->string, n_plain);
    }
    if (cs_json_as_object(&p->c, m) != CS_OK) {
        return;
    }
    cs_json_check_keys(&p->c, m, keys, 3, CS_DIAG_ERROR);
    if (q && cJSON_GetObjectItemCaseSensitive(m, "weight")) {
        cs_jctx_error(&p->c, m, NULL, "give a \"quota\" (items) or a \"weight\", not both");
    }
    cs_json_opt_int(&p->c, m, "quota", 0, 1, POOL_MAX_ITEMS, &ps->quota);
    cs_json_opt_number(&p->c, m, "weight", 1.0, 1e-9, POOL_MAX_WEIGHT, &ps->weight);
    if (cs_json_opt_string(&p->c, m, "format", "text", &fmt) == CS_OK && strcmp(fmt, "text") != 0 &&
        strcmp(fmt, "qa") != 0) {
        static const char *const fmts[] = {"text", "qa"};
        cs_jpath_push_key(&p->c.path, "format");
        sw_unknown_name(p, cJSON_GetObjectItemCaseSensitive(m, "format"), "item format", fmt, fmts,
                        2);
        cs_jpath_pop(&p->c.path);
    }
    ps->qa = strcmp(fmt, "qa") == 0;
    const char *kind = k != SIZE_MAX ? s->sources[k].kind : NULL;
    bool task = kind && strcmp(kind, "task") == 0;
    if (ps->qa && kind && !task) {
        cs_jctx_error(&p->c, cJSON_GetObjectItemCaseSensitive(m, "format"), "format",
                      "format \"qa\" is for task sources (question, reasoning, answer); source "
                      "\"%s\" is of kind \"%s\"",
                      m->string, kind);
    }
    cJSON *src = k != SIZE_MAX && s->sources[k].canon ? cJSON_Parse(s->sources[k].canon) : NULL;
    if (src) {
        if (ps->quota > 0) {
            sw_add_or_oom(p, src, "quota", cJSON_CreateNumber((double)ps->quota));
        } else {
            sw_add_or_oom(p, src, "weight", cJSON_CreateNumber(ps->weight));
        }
        if (task) {
            sw_add_or_oom(p, src, "format", cJSON_CreateString(ps->qa ? "qa" : "text"));
        }
        sw_add_or_oom(p, o, m->string, src);
    }
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* keep_out: the task files of the named eval suites (every suite when absent), sorted, unique. */
static void parse_keep_out(parser *p, const cJSON *pool, cs_sweep_pool *pl, const cJSON *evals)
{
    const cJSON *ko = NULL, *e;
    size_t cap = 0;
    if (cs_json_opt_array(&p->c, pool, "keep_out", &ko) != CS_OK) {
        return;
    }
    cJSON_ArrayForEach(e, evals)
    {
        cap += (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(e, "tasks"));
    }
    pl->keep_out = cs_calloc_array(cap + 1, sizeof(char *));
    if (!pl->keep_out) {
        p->oom = CS_ENOMEM;
        return;
    }
    size_t i = 0;
    cs_jpath_push_key(&p->c.path, "keep_out");
    cJSON_ArrayForEach(e, ko)
    {
        const char *nm = NULL;
        cs_jpath_push_index(&p->c.path, i++);
        if (cs_json_as_string(&p->c, e, &nm) == CS_OK &&
            !cJSON_GetObjectItemCaseSensitive(evals, nm)) {
            const char *names[64];
            size_t nn = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, evals)
            {
                if (nn < 64) {
                    names[nn++] = x->string;
                }
            }
            sw_unknown_name(p, e, "eval suite", nm, names, nn);
        }
        cs_jpath_pop(&p->c.path);
    }
    cs_jpath_pop(&p->c.path);
    cJSON_ArrayForEach(e, evals)
    {
        bool take = !ko;
        const cJSON *t, *x;
        cJSON_ArrayForEach(x, ko)
        {
            take = take || (cJSON_IsString(x) && strcmp(x->valuestring, e->string) == 0);
        }
        const cJSON *tasks = take ? cJSON_GetObjectItemCaseSensitive(e, "tasks") : NULL;
        cJSON_ArrayForEach(t, tasks)
        {
            const cJSON *path = cJSON_GetObjectItemCaseSensitive(t, "path");
            if (cJSON_IsString(path) && pl->n_keep_out < cap) {
                pl->keep_out[pl->n_keep_out++] = sw_dup(p, path->valuestring);
            }
        }
    }
    qsort(pl->keep_out, pl->n_keep_out, sizeof(char *), str_cmp);
    size_t w = 0;
    for (size_t r = 0; r < pl->n_keep_out; r++) {
        if (!pl->keep_out[r]) {
            continue;
        }
        if (w > 0 && strcmp(pl->keep_out[w - 1], pl->keep_out[r]) == 0) {
            free(pl->keep_out[r]);
        } else {
            pl->keep_out[w++] = pl->keep_out[r];
        }
    }
    pl->n_keep_out = w;
}

/* "size": N items, or {"multiple": K} (K x the job's n_samples); absent: the sum of the quotas
 * when every source has one, else {"multiple": 4} (the candidates a selector chose from before
 * pools existed). */
static void parse_size(parser *p, const cJSON *pool, cs_sweep_pool *pl, int64_t quotas,
                       bool weighted)
{
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(pool, "size");
    cs_jpath_push_key(&p->c.path, "size");
    if (!sz || cJSON_IsNull(sz)) {
        pl->size = weighted ? 0 : quotas;
        pl->multiple = weighted ? 4 : 0;
    } else if (cJSON_IsObject(sz)) {
        static const char *const keys[] = {"multiple"};
        cs_json_check_keys(&p->c, sz, keys, 1, CS_DIAG_ERROR);
        cs_json_req_int(&p->c, sz, "multiple", 1, POOL_MAX_MULTIPLE, &pl->multiple);
    } else {
        cs_json_as_int(&p->c, sz, 1, POOL_MAX_ITEMS, &pl->size);
    }
    if (pl->size > 0 && quotas > pl->size) {
        cs_jctx_error(&p->c, sz, NULL,
                      "the sources' quotas ask for %lld items, more than the pool's %lld",
                      (long long)quotas, (long long)pl->size);
    } else if (pl->size > 0 && !weighted && quotas != pl->size) {
        cs_jctx_error(&p->c, sz, NULL,
                      "the quotas give %lld of %lld items and no source has a weight: give one "
                      "a weight, or leave \"size\" out",
                      (long long)quotas, (long long)pl->size);
    }
    cs_jpath_pop(&p->c.path);
}

/* The canonical pool object that enters a job (see the file comment). */
static char *pool_canon(parser *p, const cs_sweep_pool *pl, cJSON *srcs)
{
    cJSON *o = cJSON_CreateObject(), *ko = cJSON_CreateArray(), *size;
    char *canon = NULL;
    if (!o || !ko) {
        cJSON_Delete(o);
        cJSON_Delete(ko);
        cJSON_Delete(srcs);
        p->oom = CS_ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < pl->n_keep_out; i++) {
        cJSON_AddItemToArray(ko, cJSON_CreateString(pl->keep_out[i]));
    }
    if (pl->multiple > 0) {
        size = cJSON_CreateObject();
        sw_add_or_oom(p, size, "multiple", cJSON_CreateNumber((double)pl->multiple));
    } else {
        size = cJSON_CreateNumber((double)pl->size);
    }
    sw_add_or_oom(p, o, "kind", cJSON_CreateString("pool"));
    sw_add_or_oom(p, o, "composition", cJSON_CreateString(pl->compose ? pl->compose : ""));
    sw_add_or_oom(p, o, "keep_out", ko);
    sw_add_or_oom(p, o, "size", size);
    sw_add_or_oom(p, o, "sources", srcs);
    canon = sw_canon_of(p, o);
    cJSON_Delete(o);
    return canon;
}

static void parse_pool(parser *p, const cJSON *m, size_t n_plain, const cJSON *evals,
                       cs_sweep_source *dst)
{
    static const char *const keys[] = {"sources", "size", "composition", "keep_out"};
    const cJSON *srcs = NULL, *e;
    const char *compose = "random_windows";
    cs_sweep_pool *pl = calloc(1, sizeof(*pl));
    int64_t quotas = 0;
    bool weighted = false;
    size_t i = 0;

    dst->name = sw_dup(p, m->string);
    dst->kind = sw_dup(p, "pool");
    dst->path = sw_dup(p, "");
    dst->pool = pl;
    if (!pl) {
        p->oom = CS_ENOMEM;
        return;
    }
    if (plain_source(p->s, n_plain, m->string) != SIZE_MAX) {
        cs_jctx_error(&p->c, m, NULL,
                      "a pool and a source are both called \"%s\": the source axis names either",
                      m->string);
    }
    if (cs_json_as_object(&p->c, m) != CS_OK) {
        return;
    }
    cs_json_check_keys(&p->c, m, keys, 4, CS_DIAG_ERROR);
    if (cs_json_opt_string(&p->c, m, "composition", "random_windows", &compose) == CS_OK &&
        strcmp(compose, "random_windows") != 0 && strcmp(compose, "concat") != 0 &&
        strcmp(compose, "per_doc") != 0 && strcmp(compose, "doc_windows") != 0 &&
        strcmp(compose, "awq_concat") != 0) {
        cs_jpath_push_key(&p->c.path, "composition");
        sw_unknown_name(p, cJSON_GetObjectItemCaseSensitive(m, "composition"), "composition",
                        compose, k_compose, 5);
        cs_jpath_pop(&p->c.path);
    }
    pl->compose = sw_dup(p, compose);
    cJSON *osrc = cJSON_CreateObject();
    if (!osrc) {
        p->oom = CS_ENOMEM;
        return;
    }
    if (cs_json_req_object(&p->c, m, "sources", &srcs) == CS_OK && cJSON_GetArraySize(srcs) == 0) {
        cs_jctx_error(&p->c, srcs, "sources",
                      "a pool needs at least one source, e.g. {\"general\": {\"weight\": 1}}");
    }
    pl->srcs = cs_calloc_array((size_t)cJSON_GetArraySize(srcs) + 1, sizeof(*pl->srcs));
    if (!pl->srcs) {
        p->oom = CS_ENOMEM;
        cJSON_Delete(osrc);
        return;
    }
    cs_jpath_push_key(&p->c.path, "sources");
    cJSON_ArrayForEach(e, srcs)
    {
        cs_sweep_pool_src *ps = &pl->srcs[i++];
        pl->n_srcs = i;
        cs_jpath_push_key(&p->c.path, e->string);
        parse_pool_source(p, e, n_plain, ps, osrc);
        quotas += ps->quota;
        weighted = weighted || ps->quota == 0;
        cs_jpath_pop(&p->c.path);
    }
    cs_jpath_pop(&p->c.path);
    parse_size(p, m, pl, quotas, weighted);
    parse_keep_out(p, m, pl, evals);
    dst->canon = pool_canon(p, pl, osrc);
}

void sw_parse_pools(parser *p, const cJSON *pools, const cJSON *evals)
{
    cs_sweep *s = p->s;
    size_t n = (size_t)cJSON_GetArraySize(pools), n_plain = s->n_sources;
    const cJSON *m;
    if (n == 0) {
        return;
    }
    cs_sweep_source *grown = realloc(s->sources, (n_plain + n) * sizeof(*s->sources));
    if (!grown) {
        p->oom = CS_ENOMEM;
        return;
    }
    s->sources = grown;
    memset(s->sources + n_plain, 0, n * sizeof(*s->sources));
    cJSON_ArrayForEach(m, pools)
    {
        cs_sweep_source *dst = &s->sources[s->n_sources++];
        if (!sw_valid_name(m->string)) {
            cs_jctx_error(&p->c, m, m->string,
                          "pool names use letters, digits, '_', '-' and '.' (at most 64), got "
                          "\"%s\"",
                          m->string);
        }
        cs_jpath_push_key(&p->c.path, m->string);
        parse_pool(p, m, n_plain, evals, dst);
        cs_jpath_pop(&p->c.path);
    }
}

void sw_pool_free(cs_sweep_pool *pl)
{
    if (!pl) {
        return;
    }
    for (size_t i = 0; i < pl->n_keep_out; i++) {
        free(pl->keep_out[i]);
    }
    free(pl->keep_out);
    free(pl->srcs);
    free(pl->compose);
    free(pl);
}

/* ---- checks against the files on this machine ------------------------------------------- */

static bool file_exists(const char *path)
{
    struct stat st;
    return path && path[0] && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A warning at JSON path jp when the file path is missing here. */
static void warn_missing(cs_diags *d, const char *path, const char *jp)
{
    if (path && path[0] && !file_exists(path)) {
        cs_diags_add(d, CS_DIAG_WARNING, NULL, jp, "file does not exist on this machine: %s", path);
    }
}

void cs_sweep_check_files(const cs_sweep *s, cs_diags *d)
{
    for (size_t i = 0; i < s->n_sources; i++) {
        char jp[512];
        snprintf(jp, sizeof(jp), "data.sources.%s.path", s->sources[i].name);
        if (!s->sources[i].pool) {
            warn_missing(d, s->sources[i].path, jp);
        }
    }
    for (size_t i = 0; i < s->n_evals; i++) {
        static const char *const parts[] = {"tasks", "perplexity"};
        cJSON *ev = s->evals[i].canon ? cJSON_Parse(s->evals[i].canon) : NULL;
        const cJSON *t;
        for (size_t k = 0; ev && k < 2; k++) {
            cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(ev, parts[k]))
            {
                const cJSON *pa = cJSON_GetObjectItemCaseSensitive(t, "path");
                const cJSON *fs = cJSON_GetObjectItemCaseSensitive(t, "fewshot_path");
                char jp[512];
                snprintf(jp, sizeof(jp), "data.eval.%s.%s.%s.path", s->evals[i].name, parts[k],
                         t->string);
                warn_missing(d, cJSON_IsString(pa) ? pa->valuestring : NULL, jp);
                snprintf(jp, sizeof(jp), "data.eval.%s.%s.%s.fewshot_path", s->evals[i].name,
                         parts[k], t->string);
                warn_missing(d, cJSON_IsString(fs) ? fs->valuestring : NULL, jp);
            }
        }
        cJSON_Delete(ev);
    }
}

/* The distinct values of a numeric axis (the grid's and the include cells'), into out[cap]. */
static size_t axis_numbers(const cs_sweep *s, cs_axis_kind kind, int64_t *out, size_t cap)
{
    const size_t a = s->mission[kind];
    const cs_axis *ax = &s->axes[a];
    size_t n = 0;
    for (size_t i = 0; i < ax->n + s->n_includes; i++) {
        const cs_include *inc = i < ax->n ? NULL : &s->includes[i - ax->n];
        const cs_axis_value *v = inc ? (inc->values ? &inc->values[a] : NULL) : &ax->values[i];
        bool seen = !v || v->num <= 0;
        for (size_t j = 0; j < n && !seen; j++) {
            seen = out[j] == v->num;
        }
        if (!seen && n < cap) {
            out[n++] = v->num;
        }
    }
    return n;
}

typedef struct pool_docs {
    cs_calib_doc *d;
    size_t n;
} pool_docs;

/* A pool's sources against the sizes of the grid: for every n_samples x seq_len, the items each
 * source must give (cs_calib_shares) within what it can ever give (cs_calib_capacity). */
static void check_capacity(parser *p, const cJSON *node, const cs_sweep_pool *pl,
                           const pool_docs *docs)
{
    const cs_sweep *s = p->s;
    int64_t ns[64], sl[64];
    size_t n_ns = axis_numbers(s, CS_AXIS_N_SAMPLES, ns, 64);
    size_t n_sl = axis_numbers(s, CS_AXIS_SEQ_LEN, sl, 64);
    int64_t quota[256];
    double weight[256];
    size_t share[256];
    if (pl->n_srcs > 256) {
        return;
    }
    for (size_t k = 0; k < pl->n_srcs; k++) {
        quota[k] = pl->srcs[k].quota;
        weight[k] = pl->srcs[k].weight;
    }
    for (size_t a = 0; a < n_ns; a++) {
        size_t total = pl->multiple > 0 ? (size_t)(pl->multiple * ns[a]) : (size_t)pl->size;
        cs_err e = {0};
        if (cs_calib_shares(quota, weight, pl->n_srcs, total, share, &e) != CS_OK) {
            continue; /* reported by parse_size */
        }
        for (size_t b = 0; b < n_sl; b++) {
            for (size_t k = 0; k < pl->n_srcs; k++) {
                const cs_sweep_source *src = &s->sources[pl->srcs[k].source];
                size_t cap = cs_calib_capacity(docs[k].d, docs[k].n, pl->compose, (size_t)sl[b]);
                if (share[k] > cap) {
                    const cJSON *sn = cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(node, "sources"), src->name);
                    cs_jpath_push_key(&p->c.path, "sources");
                    cs_jpath_push_key(&p->c.path, src->name);
                    cs_jctx_error(&p->c, sn, NULL,
                                  "source \"%s\" (%s) must give %zu items of %lld tokens at "
                                  "n_samples %lld, but can give at most %zu (%s): lower its "
                                  "quota or weight, or the pool's size",
                                  src->name, src->path, share[k], (long long)sl[b],
                                  (long long)ns[a], cap, pl->compose);
                    cs_jpath_pop(&p->c.path);
                    cs_jpath_pop(&p->c.path);
                    return;
                }
            }
        }
    }
}

/* One pool: every file present, then capacity and the leak check. */
static void check_pool(parser *p, const cJSON *node, const cs_sweep_pool *pl)
{
    const cs_sweep *s = p->s;
    pool_docs *docs = cs_calloc_array(pl->n_srcs + 1, sizeof(*docs));
    cs_calib_source *cs = cs_calloc_array(pl->n_srcs + 1, sizeof(*cs));
    const char **ko = cs_calloc_array(pl->n_keep_out + 1, sizeof(*ko));
    bool ok = docs && cs && ko;
    size_t n_ko = 0;
    for (size_t k = 0; ok && k < pl->n_srcs; k++) {
        const cs_sweep_source *src =
                pl->srcs[k].source < s->n_sources ? &s->sources[pl->srcs[k].source] : NULL;
        ok = src && file_exists(src->path);
        if (ok) {
            cs[k] = (cs_calib_source){.kind = src->kind,
                                      .path = src->path,
                                      .name = src->name,
                                      .format = pl->srcs[k].qa ? CS_CALIB_FMT_QA
                                                               : CS_CALIB_FMT_PLAIN};
            cs_err e = {0};
            if (cs_calib_source_docs(&cs[k], &docs[k].d, &docs[k].n, &e) != CS_OK) {
                cs_jctx_error(&p->c, node, NULL, "source \"%s\": %s", src->name, e.msg);
                ok = false;
            }
        }
    }
    for (size_t i = 0; ok && i < pl->n_keep_out; i++) {
        if (file_exists(pl->keep_out[i])) {
            ko[n_ko++] = pl->keep_out[i];
        }
    }
    if (ok) {
        check_capacity(p, node, pl, docs);
        cs_err e = {0};
        if (cs_calib_check_overlap(cs, pl->n_srcs, ko, n_ko, &e) != CS_OK) {
            cs_jctx_error(&p->c, node, NULL, "%s", e.msg);
        }
    }
    for (size_t k = 0; docs && k < pl->n_srcs; k++) {
        cs_calib_docs_destroy(docs[k].d, docs[k].n);
    }
    free(docs);
    free(cs);
    free(ko);
}

void sw_check_pools(parser *p, const cJSON *data)
{
    const cJSON *pools = cJSON_GetObjectItemCaseSensitive(data, "pools");
    const cs_sweep *s = p->s;
    if (!cJSON_IsObject(pools) || !s->axes) {
        return;
    }
    cs_jpath_push_key(&p->c.path, "data");
    cs_jpath_push_key(&p->c.path, "pools");
    for (size_t i = 0; i < s->n_sources; i++) {
        const cs_sweep_pool *pl = s->sources[i].pool;
        const cJSON *node = cJSON_GetObjectItemCaseSensitive(pools, s->sources[i].name);
        if (pl && node && pl->n_srcs > 0) {
            cs_jpath_push_key(&p->c.path, s->sources[i].name);
            check_pool(p, node, pl);
            cs_jpath_pop(&p->c.path);
        }
    }
    cs_jpath_pop(&p->c.path);
    cs_jpath_pop(&p->c.path);
}
