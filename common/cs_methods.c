/* cs_methods.c - the table of algorithms and selectors and its one resolver (cs_methods.h).
 * Defaults and bounds: docs/specs/ptq-algorithms.md and docs/specs/selectors-and-metrics.md. */
#include "cs_methods.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cs_err.h"

/* ---- the table ------------------------------------------------------------------------------ */

static const char *const rtn_grids[] = {"awq", "gptq", NULL};
static const char *const sq_weights[] = {"rtn", "gptq", NULL};
static const char *const patterns[] = {"unstructured", "2:4", "4:8", NULL};
static const char *const imatrix_types[] = {"q4_0", "q4_k", NULL};
static const char *const trajectories[] = {"quantized", "fp", NULL};
static const char *const acdm_stats[] = {"mean", "absmean", NULL};
static const char *const acdm_modes[] = {"quota", "minimax", NULL};
static const char *const ppl_modes[] = {"low", "high", "mid", NULL};

#define A(f)  .ctype = CS_MC_I64, .off = offsetof(cs_algo_params, f)
#define AD(f) .ctype = CS_MC_DOUBLE, .off = offsetof(cs_algo_params, f)
#define AB(f) .ctype = CS_MC_BOOL, .off = offsetof(cs_algo_params, f)
#define AE(f) .ctype = CS_MC_ENUM, .off = offsetof(cs_algo_params, f)
#define S(f)  .ctype = CS_MC_SIZE, .off = offsetof(cs_select_params, f)
#define SD(f) .ctype = CS_MC_DOUBLE, .off = offsetof(cs_select_params, f)
#define SB(f) .ctype = CS_MC_BOOL, .off = offsetof(cs_select_params, f)
#define SE(f) .ctype = CS_MC_ENUM, .off = offsetof(cs_select_params, f)
/* ROW(key, type, default, min, max, exclusive min, choices, flags, landing) */
#define ROW(k, t, d, lo, hi, ex, ch, fl, ...)                                            \
    {                                                                                    \
        .key = (k), .type = (t), .def = (d), .min = (lo), .max = (hi), .excl_min = (ex), \
        .choices = (ch), .flags = (fl), __VA_ARGS__                                      \
    }
#define INT(k, d, lo, hi, ...)  ROW(k, CS_MT_INT, d, lo, hi, false, NULL, 0, __VA_ARGS__)
#define NUM(k, d, lo, hi, ...)  ROW(k, CS_MT_NUM, d, lo, hi, false, NULL, 0, __VA_ARGS__)
#define NUM_POS(k, d, hi, ...)  ROW(k, CS_MT_NUM, d, 0, hi, true, NULL, 0, __VA_ARGS__)
#define BOOL(k, d, ...)         ROW(k, CS_MT_BOOL, d, 0, 1, false, NULL, 0, __VA_ARGS__)
#define BOOL_E(k, d, ...)       ROW(k, CS_MT_BOOL, d, 0, 1, false, NULL, CS_MP_ENGINE, __VA_ARGS__)
#define ENUM(k, c, d, ...)      ROW(k, CS_MT_ENUM, d, 0, 0, false, c, 0, __VA_ARGS__)
#define GROUP(k, d, fl, ...)    ROW(k, CS_MT_GROUP, d, -1, 65536, false, NULL, fl, __VA_ARGS__)
#define POW2(k, d, hi, fl, ...) ROW(k, CS_MT_POW2, d, 1, hi, false, NULL, fl, __VA_ARGS__)
#define NPARAMS(a)              (sizeof(a) / sizeof((a)[0]))
#define METHOD(n, k, f, list, d)                  \
    {                                             \
        (n), (k), (f), (list), NPARAMS(list), (d) \
    }

/* The shared rows. */
#define BITS(d)       INT("bits", (d), 2, 8, A(bits), .desc = "weight bit width")
#define GROUP_SIZE(d) GROUP("group_size", (d), 0, A(group_size))
#define TRAJ_E(d) \
    ROW("trajectory", CS_MT_ENUM, (d), 0, 0, false, trajectories, CS_MP_ENGINE, AE(trajectory))
#define DAMP      NUM_POS("damp", 0.01, 1, AD(damp), .desc = "dampening, relative to mean(diag(H))")
#define BLOCK(fl) POW2("block_size", 128, 4096, (fl), A(block_size))
#define PATTERN   ENUM("pattern", patterns, 0, AE(pattern))
#define SPARSITY  NUM("sparsity", 0.5, 0, 0.99, AD(sparsity))
#define BATCH_E   ROW("batch", CS_MT_INT, 8, 1, 4096, false, NULL, CS_MP_ENGINE, S(batch))

static const cs_mparam p_rtn[] = {BITS(4), GROUP_SIZE(128), BOOL("sym", 0, AB(sym)),
                                  ENUM("grid", rtn_grids, 0, AE(grid),
                                       .desc = "quantizer family: AWQ's min/max grid or GPTQ's "
                                               "zero-including grid")};
static const cs_mparam p_gptq[] = {BITS(4),
                                   GROUP_SIZE(128),
                                   BOOL("sym", 1, AB(sym)),
                                   BOOL("act_order", 1, AB(act_order)),
                                   DAMP,
                                   BLOCK(0),
                                   BOOL("true_sequential", 1, AB(true_sequential)),
                                   BOOL("static_groups", 0, AB(static_groups)),
                                   TRAJ_E(0)};
static const cs_mparam p_awq[] = {
        BITS(4),
        GROUP_SIZE(128),
        BOOL("zero_point", 1, AB(zero_point)),
        BOOL("duo_scaling", 1, AB(duo_scaling)),
        INT("n_grid", 20, 1, 1000, A(n_grid), .desc = "scale-search ratios tried"),
        BOOL("clip", 1, AB(clip)),
        TRAJ_E(1)};
/* SmoothQuant+GPTQ by default (weights "gptq"); "rtn" is the original SmoothQuant (Q-SQ weights
 * per row, every statistic from the unmodified model). */
static const cs_mparam p_sq[] = {NUM("alpha", 0.5, 0, 1, AD(alpha)),
                                 BITS(8),
                                 INT("act_bits", 8, 2, 8, A(act_bits)),
                                 ENUM("weights", sq_weights, 1, AE(weights),
                                      .desc = "how the smoothed weights are quantized"),
                                 DAMP,
                                 GROUP("group_size", -1, CS_MP_ENGINE, A(group_size)),
                                 BOOL_E("sym", 1, AB(sym)),
                                 BOOL_E("smooth", 1, AB(smooth)),
                                 BOOL_E("act_order", 1, AB(act_order)),
                                 BLOCK(CS_MP_ENGINE),
                                 TRAJ_E(0)};
static const cs_mparam p_sparsegpt[] = {SPARSITY, PATTERN, DAMP, BLOCK(0), TRAJ_E(0)};
static const cs_mparam p_wanda[] = {SPARSITY, PATTERN, TRAJ_E(0)};
static const cs_mparam p_imatrix[] = {ENUM("type", imatrix_types, 0, AE(type)),
                                      INT("chunk", 512, 16, 65536, A(chunk))};

static const cs_method algorithms[] = {
        {"none", CS_ALGO_NONE, CS_METHOD_NONE | CS_METHOD_NO_CALIB, NULL, 0,
         "the unquantized model (what every baseline job runs)"},
        METHOD("rtn", CS_ALGO_RTN, CS_METHOD_NO_CALIB, p_rtn, "round to nearest, data-free"),
        METHOD("gptq", CS_ALGO_GPTQ, 0, p_gptq, "GPTQ (IST-DASLab / AutoGPTQ defaults)"),
        METHOD("awq", CS_ALGO_AWQ, 0, p_awq, "AWQ (AutoAWQ defaults)"),
        METHOD("smoothquant", CS_ALGO_SMOOTHQUANT, 0, p_sq,
               "SmoothQuant W8A8, its weights quantized by GPTQ (default) or rounded (rtn)"),
        METHOD("sparsegpt", CS_ALGO_SPARSEGPT, 0, p_sparsegpt, "SparseGPT pruning"),
        METHOD("wanda", CS_ALGO_WANDA, 0, p_wanda, "Wanda pruning"),
        METHOD("imatrix", CS_ALGO_IMATRIX, 0, p_imatrix,
               "llama.cpp importance-matrix quantization"),
};

static const cs_mparam p_random[] = {
        BOOL("stratified", 0, SB(stratified), .desc = "split n evenly over sources")};
static const cs_mparam p_self_calibration[] = {NUM("t_init", 1.0, 0, 10, SD(t_init)),
                                               NUM("t_final", 1.0, 0, 10, SD(t_final)),
                                               INT("n_sched", 10, 0, 1000000, S(n_sched))};
static const cs_mparam p_self_gen[] = {
        INT("prefix_texts", 5000, 1, 10000000, S(prefix_texts)),
        INT("prefix_tokens", 2, 1, 4096, S(prefix_tokens)),
        NUM("temperature", 0.6, 0, 10, SD(temperature)),
        NUM_POS("top_p", 0.95, 1, SD(top_p)),
        INT("top_k", 50, 0, 1000000, S(top_k)),
        NUM_POS("repetition_penalty", 1.2, 10, SD(repetition_penalty)),
        NUM("ppl_quantile", 0.8, 0, 1, SD(ppl_quantile)),
        BATCH_E};
static const cs_mparam p_zipcal[] = {INT("search_limit", 2000, 1, 100000000, S(search_limit))};
static const cs_mparam p_cola[] = {
        INT("proj_dim", 64, 1, 4096, S(proj_dim)), INT("n_init", 10, 1, 1000, S(n_init)),
        INT("max_iter", 300, 1, 1000000, S(max_iter)), NUM_POS("tol", 1e-4, 1, SD(tol)), BATCH_E};
static const cs_mparam p_acdm[] = {INT("n_ref", 64, 1, 1000000, S(n_ref)),
                                   ENUM("stat", acdm_stats, 0, SE(acdm_stat)),
                                   ENUM("mode", acdm_modes, 0, SE(acdm_mode)),
                                   {.key = "reference",
                                    .type = CS_MT_TASKS,
                                    .desc = "names of data.sources of kind task; default: all "
                                            "of them"},
                                   BATCH_E};
static const cs_mparam p_ppl[] = {ENUM("mode", ppl_modes, 0, SE(mode)), BATCH_E};
static const cs_mparam p_covercal[] = {NUM_POS("outlier_factor", 6, 1000, SD(outlier_factor)),
                                       NUM_POS("cover_frac", 0.5, 1, SD(cover_frac)), BATCH_E};

static const cs_method selectors[] = {
        METHOD("random", CS_SEL_RANDOM, 0, p_random, "uniform random samples"),
        METHOD("self_calibration", CS_SEL_SELF_CALIBRATION, CS_METHOD_NO_SOURCE, p_self_calibration,
               "the model generates its own calibration data from BOS (needs no source)"),
        METHOD("self_gen", CS_SEL_SELF_GEN, 0, p_self_gen,
               "Self-Gen: generations from short source prefixes, perplexity-filtered"),
        METHOD("zipcal", CS_SEL_ZIPCAL, 0, p_zipcal, "ZipCal greedy lexical coverage"),
        METHOD("cola", CS_SEL_COLA, 0, p_cola, "COLA stage 3: k-means in activation space"),
        METHOD("acdm", CS_SEL_ACDM, 0, p_acdm,
               "ACDM: activation statistics matched to task reference centroids"),
        METHOD("ppl_rank", CS_SEL_PPL_RANK, 0, p_ppl, "rank by FP-model perplexity"),
        METHOD("covercal", CS_SEL_COVERCAL, 0, p_covercal,
               "CoverCal: greedy cover of outlier channels"),
};

const cs_method *cs_methods(cs_mfamily f, size_t *n)
{
    if (f == CS_MF_ALGORITHM) {
        *n = NPARAMS(algorithms);
        return algorithms;
    }
    *n = NPARAMS(selectors);
    return selectors;
}

const cs_method *cs_method_find(cs_mfamily f, const char *name)
{
    size_t n;
    const cs_method *t = cs_methods(f, &n);
    for (size_t i = 0; name && i < n; i++) {
        if (strcmp(t[i].name, name) == 0) {
            return &t[i];
        }
    }
    return NULL;
}

const cs_method *cs_method_of_kind(cs_mfamily f, int kind)
{
    size_t n;
    const cs_method *t = cs_methods(f, &n);
    for (size_t i = 0; i < n; i++) {
        if (t[i].kind == kind) {
            return &t[i];
        }
    }
    return NULL;
}

const char *cs_mfamily_name(cs_mfamily f)
{
    return f == CS_MF_ALGORITHM ? "algorithm" : "selector";
}

/* ---- landing -------------------------------------------------------------------------------- */

static void land(const cs_mparam *p, void *dst, double num, int choice)
{
    char *at = (char *)dst + p->off;
    switch (p->ctype) {
    case CS_MC_I64:
        *(int64_t *)(void *)at = (int64_t)num;
        break;
    case CS_MC_SIZE:
        *(size_t *)(void *)at = (size_t)num;
        break;
    case CS_MC_U64:
        *(uint64_t *)(void *)at = (uint64_t)num;
        break;
    case CS_MC_DOUBLE:
        *(double *)(void *)at = num;
        break;
    case CS_MC_BOOL:
        *(bool *)(void *)at = num != 0;
        break;
    case CS_MC_ENUM:
        *(int *)(void *)at = choice;
        break;
    case CS_MC_NONE:
        break;
    }
}

static double landed(const cs_mparam *p, const void *src, int *choice)
{
    const char *at = (const char *)src + p->off;
    *choice = 0;
    switch (p->ctype) {
    case CS_MC_I64:
        return (double)*(const int64_t *)(const void *)at;
    case CS_MC_SIZE:
        return (double)*(const size_t *)(const void *)at;
    case CS_MC_U64:
        return (double)*(const uint64_t *)(const void *)at;
    case CS_MC_DOUBLE:
        return *(const double *)(const void *)at;
    case CS_MC_BOOL:
        return *(const bool *)(const void *)at ? 1 : 0;
    case CS_MC_ENUM:
        *choice = *(const int *)(const void *)at;
        return 0;
    case CS_MC_NONE:
        break;
    }
    return 0;
}

void cs_method_defaults(const cs_method *md, void *dst)
{
    for (size_t i = 0; i < md->n_params; i++) {
        const cs_mparam *p = &md->params[i];
        land(p, dst, p->def, (int)p->def);
    }
}

/* ---- messages ------------------------------------------------------------------------------- */

void cs_join_names(const char *const *names, size_t n, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0) {
            break;
        }
        used += (size_t)w;
    }
    if (used >= cap) {
        buf[cap - 1] = '\0';
    }
}

void cs_json_unknown_name(cs_jctx *c, const cJSON *node, const char *what, const char *name,
                          const char *const *known, size_t n)
{
    char list[512];
    const char *sugg = cs_json_suggest(name, known, n);
    cs_join_names(known, n, list, sizeof(list));
    if (sugg) {
        cs_jctx_error(c, node, NULL, "unknown %s \"%s\" (did you mean \"%s\"?)", what, name, sugg);
    } else if (n == 0) {
        cs_jctx_error(c, node, NULL, "unknown %s \"%s\" (none are defined)", what, name);
    } else {
        cs_jctx_error(c, node, NULL, "unknown %s \"%s\" (known: %s)", what, name, list);
    }
}

static size_t n_choices(const cs_mparam *p)
{
    size_t n = 0;
    while (p->choices && p->choices[n]) {
        n++;
    }
    return n;
}

static bool is_pow2(int64_t v)
{
    return v > 0 && (v & (v - 1)) == 0;
}

/* ---- resolving ------------------------------------------------------------------------------ */

static void add_item(cs_mresolve *r, const char *key, cJSON *item)
{
    if (!r->out) {
        cJSON_Delete(item);
        return;
    }
    if (!item || !cJSON_AddItemToObject(r->out, key, item)) {
        cJSON_Delete(item);
        r->oom = true;
    }
}

/* A number parameter (INT, NUM, GROUP, POW2) at the current path; *x keeps the default on error. */
static void resolve_number(cs_jctx *c, const cJSON *v, const cs_mparam *p, double *x)
{
    char d[64];
    int64_t i = (int64_t)p->def;
    double n = p->def;
    switch (p->type) {
    case CS_MT_INT:
        if (cs_json_as_int(c, v, (int64_t)p->min, (int64_t)p->max, &i) == CS_OK) {
            *x = (double)i;
        }
        break;
    case CS_MT_NUM:
        if (cs_json_as_number(c, v, p->min, p->max, &n) == CS_OK) {
            if (p->excl_min && n <= p->min) {
                cs_jctx_error(c, v, NULL, "expected a number > %g and <= %g, got %s", p->min,
                              p->max, cs_json_describe(v, d, sizeof(d)));
            } else {
                *x = n;
            }
        }
        break;
    default: /* GROUP, POW2 */
        if (cs_json_as_int(c, v, p->type == CS_MT_GROUP ? -1 : 1, (int64_t)p->max, &i) == CS_OK) {
            if (!is_pow2(i) && !(p->type == CS_MT_GROUP && i == -1)) {
                cs_jctx_error(c, v, NULL, "expected %sa positive power of two, got %lld",
                              p->type == CS_MT_GROUP ? "-1 (one group per row) or " : "",
                              (long long)i);
            } else {
                *x = (double)i;
            }
        }
        break;
    }
}

/* A TASKS value in a job config: a non-empty list of source objects, kept as written. */
static void resolve_tasks_plain(cs_jctx *c, const cJSON *obj, const cJSON *v, const cs_mparam *p,
                                cs_mresolve *r)
{
    if (!v && r->engine) {
        return; /* calsweep-run select takes the reference sources as options */
    }
    if (!v) {
        cs_jctx_error(c, obj, NULL,
                      "needs task reference sets: add a source of kind \"task\" to "
                      "data.sources");
        return;
    }
    if (cs_json_as_array(c, v) != CS_OK) {
        return;
    }
    if (cJSON_GetArraySize(v) == 0) {
        cs_jctx_error(c, v, NULL,
                      "needs task reference sets: add a source of kind \"task\" to "
                      "data.sources");
        return;
    }
    add_item(r, p->key, cJSON_Duplicate(v, true));
}

/* One parameter of md from obj (NULL for a bare name) into r. */
static void resolve_param(cs_jctx *c, const cJSON *obj, const cs_mparam *p, cs_mresolve *r)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, p->key) : NULL;
    bool job = !(p->flags & CS_MP_ENGINE);
    double x = p->def;
    int choice = (int)p->def;

    if (v && cJSON_IsNull(v)) {
        v = NULL;
    }
    cs_jpath_push_key(&c->path, p->key);
    if (p->type == CS_MT_TASKS) {
        if (r->tasks) {
            if (!r->tasks(r->tasks_ctx, c, obj, v, p->key, r->out)) {
                r->oom |= c->oom != CS_OK;
            }
        } else {
            resolve_tasks_plain(c, obj, v, p, r);
        }
        cs_jpath_pop(&c->path);
        return;
    }
    if (p->type == CS_MT_BOOL) {
        bool b = p->def != 0;
        if (v) {
            cs_json_as_bool(c, v, &b);
        }
        x = b ? 1 : 0;
        if (job) {
            add_item(r, p->key, cJSON_CreateBool(b));
        }
    } else if (p->type == CS_MT_ENUM) {
        const char *s = NULL;
        size_t nc = n_choices(p);
        if (v && cs_json_as_string(c, v, &s) == CS_OK) {
            size_t k = 0;
            while (k < nc && strcmp(p->choices[k], s) != 0) {
                k++;
            }
            if (k == nc) {
                cs_json_unknown_name(c, v, "value", s, p->choices, nc);
            } else {
                choice = (int)k;
            }
        }
        if (job) {
            add_item(r, p->key, cJSON_CreateString(p->choices[choice]));
        }
    } else {
        if (v) {
            resolve_number(c, v, p, &x);
        }
        if (job) {
            add_item(r, p->key, cJSON_CreateNumber(x));
        }
    }
    if (r->dst) {
        land(p, r->dst, x, choice);
    }
    cs_jpath_pop(&c->path);
}

/* The method named by v, or NULL after reporting (name missing, not a string, unknown). */
static const cs_method *method_of(cs_jctx *c, const cJSON *v, cs_mfamily f)
{
    const char *name = NULL, *names[16];
    const cs_method *md;
    size_t n;
    const cs_method *t = cs_methods(f, &n);
    char d[64];

    for (size_t i = 0; i < n; i++) {
        names[i] = t[i].name;
    }
    if (cJSON_IsString(v)) {
        name = v->valuestring;
    } else if (cJSON_IsObject(v)) {
        if (cs_json_req_string(c, v, "name", &name) != CS_OK) {
            return NULL;
        }
    } else {
        cs_jctx_error(c, v, NULL,
                      "expected %s name or an object with \"name\" and parameters, got %s",
                      f == CS_MF_ALGORITHM ? "an algorithm" : "a selector",
                      cs_json_describe(v, d, sizeof(d)));
        return NULL;
    }
    md = cs_method_find(f, name);
    if (!md && cJSON_IsObject(v)) {
        cs_jpath_push_key(&c->path, "name");
        cs_json_unknown_name(c, cJSON_GetObjectItemCaseSensitive(v, "name"), cs_mfamily_name(f),
                             name, names, n);
        cs_jpath_pop(&c->path);
    } else if (!md) {
        cs_json_unknown_name(c, v, cs_mfamily_name(f), name, names, n);
    }
    return md;
}

/* Rules between parameters: an N:M pattern prunes exactly half. */
static void cross_rules(cs_jctx *c, const cJSON *v, const cs_method *md, const cJSON *o,
                        const cs_algo_params *a)
{
    if (md->kind == CS_ALGO_SPARSEGPT || md->kind == CS_ALGO_WANDA) {
        const cJSON *pat = o ? cJSON_GetObjectItemCaseSensitive(o, "pattern") : NULL;
        const cJSON *sp = o ? cJSON_GetObjectItemCaseSensitive(o, "sparsity") : NULL;
        int pattern = a ? a->pattern
                        : (cJSON_IsString(pat) && strcmp(pat->valuestring, "unstructured") != 0);
        double sparsity = a ? a->sparsity : (cJSON_IsNumber(sp) ? sp->valuedouble : 0.5);
        const char *pname =
                a ? patterns[a->pattern] : (cJSON_IsString(pat) ? pat->valuestring : "");
        if (pattern != 0 && sparsity != 0.5) {
            cs_jctx_error(c, v, "sparsity",
                          "pattern %s prunes exactly half of the weights: sparsity must be 0.5, "
                          "got %g",
                          pname, sparsity);
        }
    }
}

bool cs_method_resolve(cs_jctx *c, const cJSON *v, cs_mfamily f, cs_mresolve *r)
{
    size_t before = c->n_errors;
    const cs_method *md = method_of(c, v, f);
    const char *known[24];
    size_t nk = 0;

    r->md = md;
    if (!md) {
        return false;
    }
    if (r->dst) {
        if (f == CS_MF_ALGORITHM) {
            memset(r->dst, 0, sizeof(cs_algo_params));
            ((cs_algo_params *)r->dst)->kind = (cs_algo_kind)md->kind;
        } else {
            cs_select_params *sp = r->dst;
            size_t n = sp->n, seq = sp->seq_len;
            uint64_t seed = sp->seed;
            memset(sp, 0, sizeof(*sp));
            sp->kind = (cs_sel_kind)md->kind;
            sp->n = n;
            sp->seed = seed;
            sp->seq_len = seq;
            sp->batch = 8;
        }
    }
    if (cJSON_IsObject(v)) {
        known[nk++] = "name";
        for (size_t i = 0; i < md->n_params && nk < 24; i++) {
            if (r->engine || !(md->params[i].flags & CS_MP_ENGINE)) {
                known[nk++] = md->params[i].key;
            }
        }
        cs_json_check_keys(c, v, known, nk, CS_DIAG_ERROR);
    }
    add_item(r, "name", cJSON_CreateString(md->name));
    for (size_t i = 0; i < md->n_params; i++) {
        const cs_mparam *p = &md->params[i];
        bool take = r->engine || !(p->flags & CS_MP_ENGINE);
        resolve_param(c, take && cJSON_IsObject(v) ? v : NULL, p, r);
    }
    cross_rules(c, v, md, r->out, f == CS_MF_ALGORITHM ? r->dst : NULL);
    r->oom |= c->oom != CS_OK;
    return c->n_errors == before && !r->oom;
}

cs_rc cs_method_check(const cJSON *v, cs_mfamily f, const char *path, cs_mresolve *r, cs_err *err)
{
    cs_jctx c;
    char comp[CS_JPATH_MAX];
    cs_jctx_init(&c, NULL, err);
    for (const char *s = path; s && *s;) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        snprintf(comp, sizeof comp, "%.*s", (int)n, s);
        cs_jpath_push_key(&c.path, comp);
        s = dot ? dot + 1 : NULL;
    }
    if (cs_method_resolve(&c, v, f, r)) {
        return CS_OK;
    }
    if (r->oom) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    return CS_ESCHEMA;
}

cJSON *cs_method_to_json(const cs_method *md, const void *src, bool engine)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "name", md->name);
    for (size_t i = 0; ok && i < md->n_params; i++) {
        const cs_mparam *p = &md->params[i];
        int choice;
        double x;
        if (p->type == CS_MT_TASKS || (!engine && (p->flags & CS_MP_ENGINE))) {
            continue;
        }
        x = landed(p, src, &choice);
        if (p->type == CS_MT_BOOL) {
            ok = cJSON_AddBoolToObject(o, p->key, x != 0) != NULL;
        } else if (p->type == CS_MT_ENUM) {
            ok = choice >= 0 && (size_t)choice < n_choices(p) &&
                 cJSON_AddStringToObject(o, p->key, p->choices[choice]) != NULL;
        } else {
            ok = cJSON_AddNumberToObject(o, p->key, x) != NULL;
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- describing the table ------------------------------------------------------------------- */

static const char *type_name(cs_mtype t)
{
    static const char *const names[] = {"integer",    "number",       "boolean",     "enum",
                                        "group_size", "power_of_two", "task_sources"};
    return names[t];
}

void cs_mparam_describe(const cs_mparam *p, char *buf, size_t cap)
{
    char list[256];
    switch (p->type) {
    case CS_MT_INT:
        snprintf(buf, cap, "integer in %.0f..%.0f", p->min, p->max);
        break;
    case CS_MT_NUM:
        snprintf(buf, cap, "number in %s%g, %g]", p->excl_min ? "(" : "[", p->min, p->max);
        break;
    case CS_MT_BOOL:
        snprintf(buf, cap, "true or false");
        break;
    case CS_MT_ENUM:
        cs_join_names(p->choices, n_choices(p), list, sizeof list);
        snprintf(buf, cap, "one of %s", list);
        break;
    case CS_MT_GROUP:
        snprintf(buf, cap, "-1 (per row) or a power of two <= %.0f", p->max);
        break;
    case CS_MT_POW2:
        snprintf(buf, cap, "a power of two <= %.0f", p->max);
        break;
    case CS_MT_TASKS:
        snprintf(buf, cap, "names of task sources");
        break;
    }
}

void cs_mparam_default_text(const cs_mparam *p, char *buf, size_t cap)
{
    if (p->type == CS_MT_BOOL) {
        snprintf(buf, cap, "%s", p->def != 0 ? "true" : "false");
    } else if (p->type == CS_MT_ENUM) {
        snprintf(buf, cap, "%s", p->choices[(int)p->def]);
    } else if (p->type == CS_MT_TASKS) {
        snprintf(buf, cap, "all task sources");
    } else {
        snprintf(buf, cap, "%g", p->def);
    }
}

static cJSON *param_json(const cs_mparam *p)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "key", p->key) &&
              cJSON_AddStringToObject(o, "type", type_name(p->type)) &&
              cJSON_AddBoolToObject(o, "engine_only", (p->flags & CS_MP_ENGINE) != 0);
    if (ok && p->type == CS_MT_ENUM) {
        cJSON *ch = cJSON_AddArrayToObject(o, "choices");
        for (size_t i = 0; ch && p->choices[i]; i++) {
            ok = ok && cJSON_AddItemToArray(ch, cJSON_CreateString(p->choices[i]));
        }
        ok = ok && ch && cJSON_AddStringToObject(o, "default", p->choices[(int)p->def]);
    } else if (ok && p->type == CS_MT_BOOL) {
        ok = cJSON_AddBoolToObject(o, "default", p->def != 0) != NULL;
    } else if (ok && p->type != CS_MT_TASKS) {
        ok = cJSON_AddNumberToObject(o, "default", p->def) &&
             cJSON_AddNumberToObject(o, "min", p->min) &&
             cJSON_AddNumberToObject(o, "max", p->max) &&
             cJSON_AddBoolToObject(o, "exclusive_min", p->excl_min);
    }
    if (ok && p->desc) {
        ok = cJSON_AddStringToObject(o, "description", p->desc) != NULL;
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *family_json(cs_mfamily f)
{
    size_t n;
    const cs_method *t = cs_methods(f, &n);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *m = cJSON_CreateObject(), *ps = NULL;
        if (!m || !cJSON_AddItemToArray(arr, m)) {
            cJSON_Delete(m);
            cJSON_Delete(arr);
            return NULL;
        }
        bool ok =
                cJSON_AddStringToObject(m, "name", t[i].name) &&
                cJSON_AddStringToObject(m, "description", t[i].desc) &&
                cJSON_AddBoolToObject(m, "needs_calibration", !(t[i].flags & CS_METHOD_NO_CALIB)) &&
                cJSON_AddBoolToObject(m, "needs_source", !(t[i].flags & CS_METHOD_NO_SOURCE)) &&
                (ps = cJSON_AddArrayToObject(m, "params")) != NULL;
        for (size_t k = 0; ok && k < t[i].n_params; k++) {
            cJSON *pj = param_json(&t[i].params[k]);
            ok = pj && cJSON_AddItemToArray(ps, pj);
            if (!ok) {
                cJSON_Delete(pj);
            }
        }
        if (!ok) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

cJSON *cs_methods_json(void)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cs_json_add(o, "algorithms", family_json(CS_MF_ALGORITHM)) ||
        !cs_json_add(o, "selectors", family_json(CS_MF_SELECTOR))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void print_method(FILE *out, const cs_method *md, const char *what)
{
    fprintf(out, "%s %s: %s\n", what, md->name, md->desc);
    if (md->n_params == 0) {
        fprintf(out, "    (no parameters)\n");
    }
    for (size_t k = 0; k < md->n_params; k++) {
        const cs_mparam *p = &md->params[k];
        char desc[320], def[64];
        cs_mparam_describe(p, desc, sizeof desc);
        cs_mparam_default_text(p, def, sizeof def);
        fprintf(out, "    %-20s %s (default %s)%s\n", p->key, desc, def,
                (p->flags & CS_MP_ENGINE) ? " [calsweep-run only]" : "");
    }
}

cs_rc cs_methods_print(FILE *out, const char *name)
{
    for (int f = 0; f < 2; f++) {
        size_t n;
        const cs_method *t = cs_methods((cs_mfamily)f, &n);
        for (size_t i = 0; i < n; i++) {
            if (!name || strcmp(name, t[i].name) == 0) {
                print_method(out, &t[i], cs_mfamily_name((cs_mfamily)f));
                if (name) {
                    return CS_OK;
                }
            }
        }
    }
    return name ? CS_ENOENT : CS_OK;
}
