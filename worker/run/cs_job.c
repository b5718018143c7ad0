/* run: `calsweep-run job.json`, the runner contract (cs_job.h).
 *
 * Stages, in order: load (model and tokenizer), calibrate and quantize (algorithm != "none"),
 * evaluate (perplexity texts and task files of config.eval), then result.json. Every stage's
 * wall time goes into result.timings. A failure anywhere writes error.json with the stage and a
 * kind the coordinator can act on (bad_input and model_missing are not retried usefully; oom and
 * internal may be).
 */
#include "cs_job.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_cache.h"
#include "cs_err.h"
#include "cs_json.h"
#include "cs_limits.h"
#include "cs_log.h"
#include "cs_model.h"
#include "cs_opt.h"
#include "cs_path.h"
#include "cs_pipeline.h"
#include "cs_pstat.h"
#include "cs_result.h"
#include "cs_score.h"
#include "cs_select.h"
#include "cs_source.h"
#include "cs_task.h"
#include "cs_time.h"
#include "cs_tok.h"
#include "cs_version.h"

/* Largest perplexity text read into memory. */
#define JOB_MAX_TEXT   ((size_t)256 << 20)
#define JOB_MAX_CONFIG CS_LIMIT_JOB_CONFIG_BYTES

typedef struct job {
    cJSON *cfg;
    const char *base;      /* relative paths are resolved against this folder */
    const char *roots;     /* ':'-separated model roots, or NULL */
    const char *model_ok;  /* ':'-separated folders model folders must lie in (roots, else base) */
    const char *data_ok;   /* ':'-separated folders data files must lie in ($CALSWEEP_DATA_ROOTS,
                              else base) */
    const char *cache_dir; /* $CALSWEEP_CACHE_DIR, or NULL: no cache */
    char *model_dir;       /* the resolved model folder, owned */
    int threads;
    FILE *progress; /* fd 3, or NULL */
    const char *stage;
    cs_model *model;
    cs_tok *tok;
    cJSON *metrics, *timings;
    cJSON *calibration, *extra; /* result.json's, or NULL */
    int32_t *calib;             /* n_samples * seq_len tokens */
    size_t n_samples, seq_len;
    int64_t started_ms;
    uint64_t t_job, t_stage;
} job;

/* ---- small helpers --------------------------------------------------------------------------- */

static void progress(job *j, const char *what, const char *name, size_t done, size_t total)
{
    if (!j->progress) {
        return;
    }
    fprintf(j->progress, "{\"stage\":\"%s\"", j->stage);
    if (name) {
        fprintf(j->progress, ",\"%s\":\"%s\"", what, name);
    }
    fprintf(j->progress, ",\"done\":%zu,\"total\":%zu}\n", done, total);
    fflush(j->progress);
}

static void stage_begin(job *j, const char *stage)
{
    j->stage = stage;
    j->t_stage = cs_time_mono_ns();
    progress(j, NULL, NULL, 0, 1);
}

static cs_rc stage_end(job *j, cs_err *err)
{
    double s = (double)(cs_time_mono_ns() - j->t_stage) / 1e9;
    if (!cJSON_AddNumberToObject(j->timings, j->stage, s)) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cs_log(CS_LOG_INFO, "%s: %.2f s", j->stage, s);
    return CS_OK;
}

static bool is_file(const char *path)
{
    return access(path, R_OK) == 0;
}

/* *out = path if absolute, else base/path, resolved (realpath) and confined to the data roots:
 * a file outside them (by "..", a symlink or an absolute path) is refused naming what and path. */
static cs_rc resolve(const job *j, const char *what, const char *path, char **out, cs_err *err)
{
    char *joined = NULL;
    cs_rc rc = path[0] == '/' ? ((joined = cs_strdup(path)) != NULL
                                         ? CS_OK
                                         : cs_err_set(err, CS_ENOMEM, 0, "out of memory"))
                              : cs_path_join(j->base, path, &joined, err);
    if (rc == CS_OK) {
        rc = cs_path_confine(joined, j->data_ok, what, out, err);
    }
    free(joined);
    return rc;
}

/* The model folder: base/folder, else <root>/folder or <root>/<last part of folder> for each
 * model root (the worker matched the job to one of its models by either form); resolved
 * (realpath) and confined to the model roots (else the base folder). */
static cs_rc resolve_model(const job *j, const char *folder, char **out, cs_err *err)
{
    char *dir = NULL, *cfg = NULL;
    cs_rc rc = CS_OK;
    if (folder[0] == '/') {
        dir = cs_strdup(folder);
    } else if ((rc = cs_path_join(j->base, folder, &dir, err)) != CS_OK) {
        return rc;
    }
    if (!dir || (rc = cs_path_join(dir, "config.json", &cfg, err)) != CS_OK) {
        free(dir);
        return rc != CS_OK ? rc : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    bool found = is_file(cfg);
    free(cfg);
    const char *last = strrchr(folder, '/');
    last = last && last[1] ? last + 1 : folder;
    for (const char *r = j->roots; !found && r && *r && folder[0] != '/';) {
        const char *colon = strchr(r, ':');
        size_t n = colon ? (size_t)(colon - r) : strlen(r);
        for (int form = 0; form < 2 && n > 0 && !found; form++) {
            cs_buf p;
            cs_buf_init(&p);
            if (cs_buf_printf(&p, "%.*s/%s/config.json", (int)n, r, form ? last : folder) !=
                CS_OK) {
                cs_buf_fini(&p);
                free(dir);
                return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            }
            if (is_file(p.data)) {
                p.data[p.len - strlen("/config.json")] = '\0';
                free(dir);
                dir = cs_buf_take(&p);
                found = true;
            }
            cs_buf_fini(&p);
        }
        r = colon ? colon + 1 : NULL;
    }
    if (found) {
        rc = dir ? cs_path_confine(dir, j->model_ok, "model.folder", out, err)
                 : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    } else {
        rc = cs_err_set(err, CS_ENOENT, 0,
                        "model.folder: '%s': no config.json there (relative to %s)%s%s", folder,
                        j->base, j->roots ? " nor under the model roots " : "",
                        j->roots ? j->roots : "");
    }
    free(dir);
    return rc;
}

static const char *error_kind(const char *stage, cs_rc rc)
{
    switch (rc) {
    case CS_ENOMEM:
        return "oom";
    case CS_ENOENT:
        return strcmp(stage, "load") == 0 ? "model_missing" : "bad_input";
    case CS_EINVAL:
    case CS_EPARSE:
    case CS_ESCHEMA:
    case CS_ERANGE:
    case CS_ETOOBIG:
    case CS_ENOTSUP:
    case CS_ENUMERIC: /* a non-finite metric: the same again on a retry */
        return "bad_input";
    default:
        return "internal";
    }
}

/* ---- stages ---------------------------------------------------------------------------------- */

static cs_rc load_config(job *j, const char *path, cs_err *err)
{
    cs_rc rc = cs_json_parse_file(path, JOB_MAX_CONFIG, &j->cfg, err);
    if (rc != CS_OK) {
        return rc;
    }
    if (!cJSON_IsObject(j->cfg)) {
        return cs_err_set(err, CS_ESCHEMA, 0, "%s: expected a JSON object", path);
    }
    return CS_OK;
}

cs_rc cs_job_check_limits(const cJSON *cfg, cs_err *err)
{
    const cJSON *eval = NULL, *tasks = NULL, *ppl = NULL, *e;
    int64_t v;
    cs_jctx c;
    cs_rc rc;

    cs_jctx_init(&c, NULL, err);
    if (!cJSON_IsObject(cfg)) {
        return cs_err_set(err, CS_ESCHEMA, 0, "job config: expected a JSON object");
    }
    if ((rc = cs_json_opt_int(&c, cfg, "n_samples", 1, 1, CS_LIMIT_N_SAMPLES, &v)) != CS_OK ||
        (rc = cs_json_opt_int(&c, cfg, "seq_len", 2, 2, CS_LIMIT_SEQ_LEN, &v)) != CS_OK ||
        (rc = cs_json_opt_int(&c, cfg, "seed", 0, 0, CS_LIMIT_SEED, &v)) != CS_OK ||
        (rc = cs_json_opt_object(&c, cfg, "eval", &eval)) != CS_OK || !eval) {
        return rc;
    }
    cs_jpath_push_key(&c.path, "eval");
    if ((rc = cs_json_opt_object(&c, eval, "tasks", &tasks)) != CS_OK ||
        (rc = cs_json_opt_object(&c, eval, "perplexity", &ppl)) != CS_OK) {
        return rc;
    }
    cs_jpath_push_key(&c.path, "tasks");
    cJSON_ArrayForEach(e, tasks)
    {
        cs_jpath_push_key(&c.path, e->string);
        if ((rc = cs_json_as_object(&c, e)) != CS_OK ||
            (rc = cs_json_opt_int(&c, e, "limit", 0, 0, CS_LIMIT_EVAL_ITEMS, &v)) != CS_OK ||
            (rc = cs_json_opt_int(&c, e, "fewshot", 0, 0, CS_LIMIT_FEWSHOT, &v)) != CS_OK) {
            return rc;
        }
        cs_jpath_pop(&c.path);
    }
    cs_jpath_pop(&c.path);
    cs_jpath_push_key(&c.path, "perplexity");
    cJSON_ArrayForEach(e, ppl)
    {
        cs_jpath_push_key(&c.path, e->string);
        if ((rc = cs_json_as_object(&c, e)) != CS_OK ||
            (rc = cs_json_opt_int(&c, e, "seq_len", 2, 2, CS_LIMIT_SEQ_LEN, &v)) != CS_OK ||
            (rc = cs_json_opt_int(&c, e, "max_windows", 0, 0, CS_LIMIT_PPL_WINDOWS, &v)) != CS_OK) {
            return rc;
        }
        cs_jpath_pop(&c.path);
    }
    return CS_OK;
}

static cs_rc stage_load(job *j, cs_err *err)
{
    cs_jctx c = {0};
    const cJSON *model = NULL;
    const char *folder = NULL;
    char *dir = NULL, *tokpath = NULL;
    cs_rc rc;

    cs_jctx_init(&c, NULL, err);
    if ((rc = cs_json_req_object(&c, j->cfg, "model", &model)) != CS_OK) {
        goto out;
    }
    cs_jpath_push_key(&c.path, "model");
    if ((rc = cs_json_req_string(&c, model, "folder", &folder)) != CS_OK) {
        goto out;
    }
    /* calsweep-run is the native backend: it never runs a job meant for another engine */
    const cJSON *backend = cJSON_GetObjectItemCaseSensitive(model, "backend");
    if (backend && !cJSON_IsNull(backend) &&
        !(cJSON_IsString(backend) && strcmp(backend->valuestring, "native") == 0)) {
        char d[64];
        rc = cs_err_set(err, CS_ENOTSUP, 0,
                        "model.backend is %s: calsweep-run runs only \"native\" jobs (an exec "
                        "job runs the worker's --exec-template)",
                        cs_json_describe(backend, d, sizeof d));
        goto out;
    }
    if ((rc = resolve_model(j, folder, &dir, err)) != CS_OK) {
        goto out;
    }
    cs_log(CS_LOG_INFO, "model %s", dir);
    if ((rc = cs_path_join(dir, "tokenizer.json", &tokpath, err)) != CS_OK ||
        (rc = cs_tok_load(&j->tok, tokpath, err)) != CS_OK ||
        (rc = cs_model_load(&j->model, dir, j->threads, err)) != CS_OK) {
        goto out;
    }
    j->model_dir = dir;
    dir = NULL;
out:
    free(tokpath);
    free(dir);
    return rc;
}

/* The sweep's selector object (coordinator/sweep/cs_sweep.c names) as worker/calib parameters. ACDM's
 * "reference" (the resolved task sources, a list of source objects) is not a parameter of
 * worker/calib: *reference points at it (borrowed from sel; NULL when absent). */
static cs_rc selector_params(const cJSON *sel, size_t n, size_t seq_len, uint64_t seed,
                             cs_select_params *p, const cJSON **reference, cs_err *err)
{
    static const struct {
        const char *sweep, *calib;
    } names[] = {{"self_calibration", "selfcal"}, {"self_gen", "selfgen"}, {"ppl_rank", "ppl"}},
      keys[] = {{"search_limit", "cap"}, {"prefix_texts", "m"}, {"prefix_tokens", "prefix_len"}};
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(sel, "name"), *v;
    cJSON *o = cJSON_CreateObject();
    cs_rc rc = CS_OK;

    *reference = NULL;
    if (!cJSON_IsString(name)) {
        cJSON_Delete(o);
        return cs_err_set(err, CS_ESCHEMA, 0, "calibration.selector.name: expected a string");
    }
    if (!o) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cJSON_ArrayForEach(v, sel)
    {
        const char *key = v->string;
        cJSON *copy = NULL;
        if (strcmp(key, "reference") == 0 && strcmp(name->valuestring, "acdm") == 0) {
            *reference = v;
            continue;
        }
        if (strcmp(key, "name") == 0) {
            const char *nm = v->valuestring;
            for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
                if (strcmp(nm, names[i].sweep) == 0) {
                    nm = names[i].calib;
                }
            }
            copy = cJSON_CreateString(nm);
        } else {
            for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
                if (strcmp(key, keys[i].sweep) == 0) {
                    key = keys[i].calib;
                }
            }
            copy = cJSON_Duplicate(v, true);
        }
        if (!copy || !cJSON_AddItemToObject(o, key, copy)) {
            cJSON_Delete(copy);
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            break;
        }
    }
    const char *nm = cJSON_GetObjectItemCaseSensitive(o, "name")->valuestring;
    bool gen = strcmp(nm, "selfcal") == 0 || strcmp(nm, "selfgen") == 0;
    if (rc == CS_OK && (!cJSON_AddNumberToObject(o, "n", (double)n) ||
                        !cJSON_AddNumberToObject(o, "seed", (double)seed) ||
                        (gen && !cJSON_AddNumberToObject(o, "seq_len", (double)seq_len)))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if (rc == CS_OK) {
        rc = cs_select_params_parse(o, "calibration.selector", p, err);
    }
    cJSON_Delete(o);
    return rc;
}

/* ACDM's reference sources from the job's selector.reference (resolved source objects of kind
 * "task", coordinator/sweep/cs_sweep.c), each named after its file ("arith_mc.train" for
 * .../arith_mc.train.jsonl). *src (owned array) and *paths (owned strings) / *n. */
static cs_rc reference_sources(job *j, const cJSON *ref, cs_calib_source **src, char ***paths,
                               size_t *n, cs_err *err)
{
    const cJSON *e;
    size_t k = 0, cap = (size_t)cJSON_GetArraySize(ref);
    *src = NULL;
    *paths = NULL;
    *n = 0;
    if (!cJSON_IsArray(ref) || cap == 0) {
        return cs_err_set(err, CS_ESCHEMA, 0,
                          "calibration.selector.reference: expected a non-empty list of task "
                          "sources");
    }
    *src = cs_calloc_array(cap, sizeof(cs_calib_source));
    *paths = cs_calloc_array(2 * cap, sizeof(char *)); /* [path, name] per source */
    if (!*src || !*paths) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cJSON_ArrayForEach(e, ref)
    {
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(e, "kind");
        const cJSON *path = cJSON_GetObjectItemCaseSensitive(e, "path");
        if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "task") != 0 ||
            !cJSON_IsString(path)) {
            return cs_err_set(err, CS_ESCHEMA, 0,
                              "calibration.selector.reference[%zu]: expected a source of kind "
                              "\"task\" with a path",
                              k);
        }
        cs_rc rc = resolve(j, "calibration.selector.reference", path->valuestring, &(*paths)[2 * k],
                           err);
        if (rc != CS_OK) {
            return rc;
        }
        const char *base = strrchr(path->valuestring, '/');
        base = base ? base + 1 : path->valuestring;
        size_t bl = strlen(base);
        if (bl > 6 && strcmp(base + bl - 6, ".jsonl") == 0) {
            bl -= 6;
        }
        if (!((*paths)[2 * k + 1] = cs_strndup(base, bl))) {
            return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
        (*src)[k] = (cs_calib_source){
                .kind = "task", .path = (*paths)[2 * k], .name = (*paths)[2 * k + 1]};
        *n = ++k;
    }
    return CS_OK;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static void on_select(void *ctx, const char *stage, size_t done, size_t total)
{
    job *j = ctx;
    if (done == total || done % 8 == 0) {
        progress(j, "step", stage, done, total);
    }
}

/* The task files of config.eval.tasks, resolved (owned array of owned strings). */
static cs_rc eval_paths(job *j, char ***out, size_t *n, cs_err *err)
{
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(j->cfg, "eval"), "tasks");
    const cJSON *it;
    size_t k = 0, cap = (size_t)cJSON_GetArraySize(tasks);
    char **paths = cs_calloc_array(cap ? cap : 1, sizeof(char *));
    if (!paths) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cJSON_ArrayForEach(it, tasks)
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(it, "path");
        if (cJSON_IsString(p) &&
            resolve(j, "eval.tasks", p->valuestring, &paths[k], err) == CS_OK) {
            k++;
        }
    }
    *out = paths;
    *n = k;
    return CS_OK;
}

/* config.calibration = {selector: {name, params...}, source: {kind, path, text_field}} with
 * n_samples, seq_len and seed at the top level. The pool: random windows of the source (the GPTQ
 * convention): n_samples of them for random, 4 x n_samples candidates for the selectors that
 * choose among them; checked against the evaluation task files for overlap; then the selector
 * picks n of them (or generates n). ACDM's reference sources are checked against the evaluation
 * files and the calibration source, and read whole (cs_calib_ref_pool_build). The pool
 * statistics go through the cache of $CALSWEEP_CACHE_DIR when it is set. */
static cs_rc stage_calibrate(job *j, cs_err *err)
{
    const cJSON *cal = NULL, *sel = NULL, *src = NULL, *refj = NULL;
    const char *kind = NULL, *path = NULL, *field = NULL;
    int64_t n = 0, seq = 0, seed = 0;
    char *file = NULL, **evals = NULL, **ref_strs = NULL;
    size_t n_evals = 0, n_ref = 0;
    cs_calib_source *ref_src = NULL;
    cs_select_params sp;
    cs_calib_pool pool = {0}, ref = {0};
    cs_calib_selection selection = {0};
    cs_pstat_ctx stats = {0};
    char model_id[CS_CACHE_KEY_LEN + 1];
    cs_jctx c;
    cs_rc rc;

    cs_jctx_init(&c, NULL, err);
    if ((rc = cs_json_req_int(&c, j->cfg, "n_samples", 1, CS_LIMIT_N_SAMPLES, &n)) != CS_OK ||
        (rc = cs_json_req_int(&c, j->cfg, "seq_len", 2, CS_LIMIT_SEQ_LEN, &seq)) != CS_OK ||
        (rc = cs_json_opt_int(&c, j->cfg, "seed", 0, 0, CS_LIMIT_SEED, &seed)) != CS_OK ||
        (rc = cs_json_req_object(&c, j->cfg, "calibration", &cal)) != CS_OK) {
        return rc;
    }
    cs_jpath_push_key(&c.path, "calibration");
    if ((rc = cs_json_req_object(&c, cal, "selector", &sel)) != CS_OK) {
        return rc;
    }
    if ((rc = selector_params(sel, (size_t)n, (size_t)seq, (uint64_t)seed, &sp, &refj, err)) !=
        CS_OK) {
        return rc;
    }
    bool generates = sp.kind == CS_SEL_SELFCAL;
    if (!generates) {
        if ((rc = cs_json_req_object(&c, cal, "source", &src)) != CS_OK) {
            return rc;
        }
        cs_jpath_push_key(&c.path, "source");
        if ((rc = cs_json_req_string(&c, src, "kind", &kind)) != CS_OK ||
            (rc = cs_json_req_string(&c, src, "path", &path)) != CS_OK ||
            (rc = cs_json_opt_string(&c, src, "text_field", NULL, &field)) != CS_OK ||
            (rc = resolve(j, "calibration.source.path", path, &file, err)) != CS_OK) {
            goto out;
        }
        cs_calib_source cs = {.kind = kind, .path = file, .text_field = field, .name = "source"};
        cs_calib_compose_opts co;
        cs_calib_compose_opts_default(&co);
        co.mode = CS_COMPOSE_RANDOM_WINDOWS;
        co.n = sp.kind == CS_SEL_RANDOM ? (size_t)n : 4 * (size_t)n;
        co.seq_len = (size_t)seq;
        co.seed = (uint64_t)seed;
        co.add_bos = false;
        if ((rc = eval_paths(j, &evals, &n_evals, err)) != CS_OK ||
            (rc = cs_calib_check_overlap(&cs, 1, (const char *const *)evals, n_evals, err)) !=
                    CS_OK) {
            goto out;
        }
        if (sp.kind == CS_SEL_ACDM) {
            if (!refj) {
                rc = cs_err_set(err, CS_ESCHEMA, 0,
                                "calibration.selector.reference: acdm needs its task reference "
                                "sources");
                goto out;
            }
            const char **rp = NULL;
            if ((rc = reference_sources(j, refj, &ref_src, &ref_strs, &n_ref, err)) != CS_OK) {
                goto out;
            }
            if (!(rp = cs_calloc_array(n_ref, sizeof(char *)))) {
                rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
                goto out;
            }
            for (size_t i = 0; i < n_ref; i++) {
                rp[i] = ref_src[i].path;
            }
            /* the reference: disjoint from the evaluation split and from the pool's source */
            rc = cs_calib_check_disjoint(ref_src, n_ref, (const char *const *)evals, n_evals,
                                         "ACDM reference", "evaluation", err);
            if (rc == CS_OK) {
                rc = cs_calib_check_disjoint(&cs, 1, rp, n_ref, "calibration", "ACDM reference",
                                             err);
            }
            free(rp);
            if (rc != CS_OK || (rc = cs_calib_ref_pool_build(ref_src, n_ref, j->tok, (size_t)seq,
                                                             co.add_bos, &ref, err)) != CS_OK) {
                goto out;
            }
        }
        if ((rc = cs_calib_pool_build(&cs, 1, j->tok, &co, &pool, err)) != CS_OK) {
            goto out;
        }
    }
    bool uses_stats = sp.kind == CS_SEL_PPL || sp.kind == CS_SEL_COLA || sp.kind == CS_SEL_ACDM ||
                      sp.kind == CS_SEL_COVERCAL;
    if (uses_stats && j->cache_dir) {
        cs_err cerr = {0};
        if (cs_cache_open(j->cache_dir, &stats.cache, &cerr) != CS_OK ||
            cs_cache_model_id(j->model_dir, model_id, &cerr) != CS_OK) {
            cs_log(CS_LOG_WARN, "cache: not used: %s", cerr.msg);
            cs_cache_close(stats.cache);
            stats.cache = NULL;
        } else {
            stats.model_id = model_id;
        }
    }
    cs_select_env env = {.reference = ref.n ? &ref : NULL, .stats = &stats};
    if ((rc = cs_select_run_env(&sp, &pool, j->model, j->tok, &env, on_select, j, &selection,
                                err)) != CS_OK) {
        goto out;
    }
    if (!(j->calib = cs_calloc_array((size_t)(n * seq), sizeof(int32_t)))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    cJSON *r = j->calibration = cJSON_CreateObject(), *ids = NULL, *det = NULL;
    if (!r ||
        !cJSON_AddStringToObject(r, "selector", cJSON_GetObjectItem(sel, "name")->valuestring) ||
        (path && !cJSON_AddStringToObject(r, "source", path)) ||
        !cJSON_AddNumberToObject(r, "n", (double)n) ||
        !cJSON_AddNumberToObject(r, "seq_len", (double)seq) ||
        !cJSON_AddNumberToObject(r, "tokens", (double)(n * seq)) ||
        !(ids = cJSON_AddArrayToObject(r, "sample_ids"))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < selection.n && i < (size_t)n; i++) {
        const cs_calib_item *it =
                selection.generated ? &selection.generated[i] : &pool.items[selection.index[i]];
        if (it->n_tokens < (size_t)seq) {
            rc = cs_err_set(err, CS_EINVAL, 0,
                            "calibration: sample %s has %zu tokens, fewer than seq_len %lld",
                            it->id, it->n_tokens, (long long)seq);
            goto out;
        }
        memcpy(j->calib + i * (size_t)seq, it->tokens, (size_t)seq * sizeof(int32_t));
        cJSON *v = cJSON_CreateString(it->id);
        if (!v || !cJSON_AddItemToArray(ids, v)) {
            cJSON_Delete(v);
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            goto out;
        }
    }
    if (selection.n < (size_t)n) {
        rc = cs_err_set(err, CS_EINVAL, 0, "calibration: the selector returned %zu of %lld samples",
                        selection.n, (long long)n);
        goto out;
    }
    det = selection.diag ? selection.diag : cJSON_CreateObject();
    selection.diag = NULL;
    if (!det || !cJSON_AddItemToObject(r, "details", det) ||
        !cJSON_AddStringToObject(det, "composition", generates ? "generated" : "random_windows") ||
        !cJSON_AddNumberToObject(det, "pool", (double)pool.n)) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    if (n_ref > 0) {
        cJSON *rs = cJSON_AddArrayToObject(det, "reference_sources");
        for (size_t i = 0; rs && i < n_ref; i++) {
            cJSON *o = cJSON_CreateObject();
            if (!o || !cJSON_AddItemToArray(rs, o) ||
                !cJSON_AddStringToObject(o, "name", ref_src[i].name) ||
                !cJSON_AddStringToObject(
                        o, "path",
                        cJSON_GetObjectItem(cJSON_GetArrayItem(refj, (int)i), "path")
                                ->valuestring)) {
                rs = NULL;
            }
        }
        if (!rs) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            goto out;
        }
    }
    j->n_samples = (size_t)n;
    j->seq_len = (size_t)seq;
    cs_log(CS_LOG_INFO, "calibration: %s picked %lld of %zu candidates of %lld tokens",
           cJSON_GetObjectItem(sel, "name")->valuestring, (long long)n, pool.n, (long long)seq);
out:
    for (size_t i = 0; i < n_evals; i++) {
        free(evals[i]);
    }
    free(evals);
    free(file);
    free(ref_src);
    free_strings(ref_strs, refj ? 2 * (size_t)cJSON_GetArraySize(refj) : 0);
    cs_cache_close(stats.cache);
    cs_calib_pool_free(&pool);
    cs_calib_pool_free(&ref);
    cs_calib_selection_free(&selection);
    return rc;
}

static void on_layer(void *ctx, size_t layer, size_t n_layers, double secs)
{
    job *j = ctx;
    if (j->progress) {
        fprintf(j->progress, "{\"stage\":\"quantize\",\"layer\":%zu,\"done\":%zu,\"total\":%zu}\n",
                layer, layer + 1, n_layers);
        fflush(j->progress);
    }
    cs_log(CS_LOG_INFO, "quantize: layer %zu/%zu in %.2f s", layer + 1, n_layers, secs);
}

/* The job config's algorithm object (coordinator/sweep/cs_sweep.c names) in the pipeline's terms:
 * awq.zero_point -> sym = !zero_point; sparsegpt/wanda pattern "N:M" -> nm ("unstructured":
 * none); smoothquant.weights ("gptq": SmoothQuant+GPTQ, "rtn": the original SmoothQuant) and
 * imatrix's type ("q4_0", "q4_k") and chunk pass through unchanged. */
static cs_rc algo_for_pipeline(const cJSON *algo, cJSON **out, cs_err *err)
{
    cJSON *o = cJSON_Duplicate(algo, true);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    cJSON *v;
    if (!o) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if (cJSON_IsString(name) && strcmp(name->valuestring, "awq") == 0 &&
        (v = cJSON_DetachItemFromObjectCaseSensitive(o, "zero_point")) != NULL) {
        bool zp = cJSON_IsTrue(v);
        cJSON_Delete(v);
        cJSON_DeleteItemFromObjectCaseSensitive(o, "sym");
        cJSON_AddBoolToObject(o, "sym", !zp);
    }
    if ((v = cJSON_DetachItemFromObjectCaseSensitive(o, "pattern")) != NULL) {
        if (cJSON_IsString(v) && strcmp(v->valuestring, "unstructured") != 0) {
            cJSON_AddStringToObject(o, "nm", v->valuestring);
        }
        cJSON_Delete(v);
    }
    *out = o;
    return CS_OK;
}

/* Reads the algorithm; "none" (the baseline) leaves the model as it is. */
static cs_rc stage_quantize(job *j, cs_err *err)
{
    const cJSON *algo = cJSON_GetObjectItemCaseSensitive(j->cfg, "algorithm");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(algo, "name");
    cs_pipe_params pp;
    cs_pipe_report rep = {0};
    cs_rc rc;

    if (!cJSON_IsObject(algo) || !cJSON_IsString(name)) {
        return cs_err_set(err, CS_ESCHEMA, 0, "algorithm: expected an object with a name");
    }
    if (strcmp(name->valuestring, "none") == 0) {
        return CS_OK;
    }
    cJSON *palgo = NULL;
    if ((rc = algo_for_pipeline(algo, &palgo, err)) != CS_OK) {
        return rc;
    }
    rc = cs_pipe_params_from_json(&pp, palgo, err);
    cJSON_Delete(palgo);
    if (rc != CS_OK) {
        return rc;
    }
    if (cs_pipe_needs_calib(&pp)) {
        j->stage = "calibrate";
        if ((rc = stage_calibrate(j, err)) != CS_OK) {
            return rc;
        }
        j->stage = "quantize";
    }
    if ((rc = cs_pipe_quantize(j->model, j->calib, j->n_samples, j->seq_len, &pp, on_layer, j, &rep,
                               err)) != CS_OK) {
        return rc;
    }
    if (!(j->extra = cJSON_CreateObject()) ||
        !cJSON_AddNumberToObject(j->extra, "quant_loss", rep.loss) ||
        !cJSON_AddNumberToObject(j->extra, "rtn_fallbacks", (double)rep.n_fallback) ||
        !cJSON_AddItemToObject(j->extra, "quant_timing", cs_pipe_timing_json(&rep.t))) {
        cs_pipe_report_fini(&rep);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cJSON_AddItemToObject(j->extra, "layers", rep.layers);
    rep.layers = NULL;
    cs_pipe_report_fini(&rep);
    return CS_OK;
}

/* One perplexity text: config.eval.perplexity.<name> = {path, seq_len, max_windows}. */
static cs_rc eval_ppl(job *j, const cJSON *spec, cs_err *err)
{
    cs_jctx c = {0};
    const char *path = NULL;
    int64_t seq_len = 0, max_windows = 0;
    char *file = NULL, *text = NULL, key[300];
    int32_t *ids = NULL;
    double *nll = NULL, ppl = 0;
    size_t len = 0, n = 0, nw = 0;
    char what[192];
    cs_rc rc;

    cs_jctx_init(&c, NULL, err);
    cs_jpath_push_key(&c.path, "eval");
    cs_jpath_push_key(&c.path, "perplexity");
    cs_jpath_push_key(&c.path, spec->string);
    if ((rc = cs_json_req_string(&c, spec, "path", &path)) != CS_OK ||
        (rc = cs_json_req_int(&c, spec, "seq_len", 2, CS_LIMIT_SEQ_LEN, &seq_len)) != CS_OK ||
        (rc = cs_json_opt_int(&c, spec, "max_windows", 0, 0, CS_LIMIT_PPL_WINDOWS, &max_windows)) !=
                CS_OK) {
        goto out;
    }
    snprintf(what, sizeof what, "eval.perplexity.%s.path", spec->string);
    if ((rc = resolve(j, what, path, &file, err)) != CS_OK ||
        (rc = cs_path_read_file(file, JOB_MAX_TEXT, &text, &len, err)) != CS_OK ||
        (rc = cs_tok_encode(j->tok, text, len, CS_TOK_ADD_SPECIAL, &ids, &n, err)) != CS_OK) {
        goto out;
    }
    if (max_windows > 0 && n > (size_t)max_windows * (size_t)seq_len) {
        n = (size_t)max_windows * (size_t)seq_len;
    }
    if (n < (size_t)seq_len) {
        rc = cs_err_set(err, CS_EINVAL, 0,
                        "eval.perplexity.%s: %s has %zu tokens, fewer than seq_len %lld",
                        spec->string, path, n, (long long)seq_len);
        goto out;
    }
    if (!(nll = cs_alloc_array(n / (size_t)seq_len + 1, sizeof(double)))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    progress(j, "task", spec->string, 0, 1);
    if ((rc = cs_model_ppl(j->model, ids, n, (size_t)seq_len, 4, nll, &nw, &ppl, err)) != CS_OK) {
        goto out;
    }
    snprintf(key, sizeof key, "ppl:%s", spec->string);
    cJSON *m = cJSON_AddObjectToObject(j->metrics, key);
    if (!m || !cJSON_AddNumberToObject(m, "n", (double)nw) ||
        !cJSON_AddNumberToObject(m, "ppl", ppl) ||
        !cJSON_AddNumberToObject(m, "tokens", (double)(nw * (size_t)seq_len))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    cs_log(CS_LOG_INFO, "ppl:%s = %.4f (%zu windows of %lld)", spec->string, ppl, nw,
           (long long)seq_len);
out:
    free(nll);
    free(ids);
    free(text);
    free(file);
    return rc;
}

typedef struct task_progress {
    job *j;
    const char *name;
} task_progress;

static void on_item(void *ctx, size_t done, size_t total)
{
    task_progress *tp = ctx;
    if (done == total || done % 10 == 0) {
        progress(tp->j, "task", tp->name, done, total);
    }
}

/* One task file: config.eval.tasks.<name> = {path, limit, fewshot, fewshot_path}. */
static cs_rc eval_task(job *j, const cJSON *spec, cs_err *err)
{
    cs_jctx c;
    const char *path = NULL;
    int64_t limit = 0, fewshot = 0;
    char *file = NULL, *shots = NULL;
    cs_task t = {0};
    cs_score s = {0};
    task_progress tp = {j, spec->string};
    cs_score_opts o = {.progress = on_item, .progress_ctx = &tp};
    char what[192];
    cs_rc rc;

    cs_jctx_init(&c, NULL, err);
    cs_jpath_push_key(&c.path, "eval");
    cs_jpath_push_key(&c.path, "tasks");
    cs_jpath_push_key(&c.path, spec->string);
    if ((rc = cs_json_req_string(&c, spec, "path", &path)) != CS_OK ||
        (rc = cs_json_opt_int(&c, spec, "limit", 0, 0, CS_LIMIT_EVAL_ITEMS, &limit)) != CS_OK ||
        (rc = cs_json_opt_int(&c, spec, "fewshot", 0, 0, CS_LIMIT_FEWSHOT, &fewshot)) != CS_OK) {
        return rc;
    }
    if (fewshot > 0) {
        const cJSON *fp = cJSON_GetObjectItemCaseSensitive(spec, "fewshot_path");
        if (!cJSON_IsString(fp) || !fp->valuestring[0]) {
            return cs_err_set(err, CS_ESCHEMA, 0,
                              "eval.tasks.%s.fewshot_path: fewshot is %lld but no file gives "
                              "the shots",
                              spec->string, (long long)fewshot);
        }
        snprintf(what, sizeof what, "eval.tasks.%s.fewshot_path", spec->string);
        if ((rc = resolve(j, what, fp->valuestring, &shots, err)) != CS_OK) {
            return rc;
        }
    }
    snprintf(what, sizeof what, "eval.tasks.%s.path", spec->string);
    if ((rc = resolve(j, what, path, &file, err)) != CS_OK ||
        (rc = cs_task_load(&t, file, (size_t)limit, err)) != CS_OK ||
        (shots && (rc = cs_task_fewshot(&t, shots, (size_t)fewshot, NULL, err)) != CS_OK) ||
        (rc = cs_score_task(j->model, j->tok, &t, &o, &s, err)) != CS_OK) {
        goto out;
    }
    cJSON *m = cJSON_AddObjectToObject(j->metrics, spec->string);
    if (!m) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    if ((rc = cs_score_to_json(&s, t.kind, m, err)) != CS_OK) {
        goto out;
    }
    cs_log(CS_LOG_INFO, "%s: %s %.4f over %zu items", spec->string,
           t.kind == CS_TASK_GEN ? "exact match" : "acc",
           t.kind == CS_TASK_GEN ? s.exact_strict : s.acc, s.n);
out:
    cs_score_free(&s);
    cs_task_free(&t);
    free(file);
    free(shots);
    return rc;
}

/* Every number in v (metrics, nested objects) is finite: a NaN or infinite perplexity or score
 * (a model whose weights are NaN, an overflow) fails the job naming the metric, instead of being
 * stored as null. CS_ENUMERIC. */
static cs_rc check_finite(const cJSON *v, const char *path, cs_err *err)
{
    const cJSON *it;
    if (cJSON_IsNumber(v) && !isfinite(v->valuedouble)) {
        return cs_err_set(err, CS_ENUMERIC, 0,
                          "%s is %s: the model or the data give no finite value (are the model's "
                          "weights finite?)",
                          path, isnan(v->valuedouble) ? "NaN" : "infinite");
    }
    cJSON_ArrayForEach(it, v)
    {
        char sub[256];
        if (cJSON_IsArray(v)) {
            snprintf(sub, sizeof sub, "%s[]", path);
        } else {
            snprintf(sub, sizeof sub, "%s.%s", path, it->string ? it->string : "?");
        }
        cs_rc rc = check_finite(it, sub, err);
        if (rc != CS_OK) {
            return rc;
        }
    }
    return CS_OK;
}

static cs_rc stage_evaluate(job *j, cs_err *err)
{
    const cJSON *eval = cJSON_GetObjectItemCaseSensitive(j->cfg, "eval");
    const cJSON *ppl = cJSON_GetObjectItemCaseSensitive(eval, "perplexity");
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(eval, "tasks");
    const cJSON *it;
    size_t total = (size_t)cJSON_GetArraySize(ppl) + (size_t)cJSON_GetArraySize(tasks), done = 0;
    cs_rc rc;

    if (!cJSON_IsObject(eval)) {
        return cs_err_set(err, CS_ESCHEMA, 0, "eval: expected an object");
    }
    if (ppl && !cJSON_IsNull(ppl) && !cJSON_IsObject(ppl)) {
        return cs_err_set(err, CS_ESCHEMA, 0, "eval.perplexity: expected an object");
    }
    cJSON_ArrayForEach(it, ppl)
    {
        if (!cJSON_IsObject(it)) {
            return cs_err_set(err, CS_ESCHEMA, 0, "eval.perplexity.%s: expected an object",
                              it->string);
        }
        if ((rc = eval_ppl(j, it, err)) != CS_OK) {
            return rc;
        }
        progress(j, NULL, NULL, ++done, total);
    }
    if (tasks && !cJSON_IsNull(tasks) && !cJSON_IsObject(tasks)) {
        return cs_err_set(err, CS_ESCHEMA, 0, "eval.tasks: expected an object");
    }
    cJSON_ArrayForEach(it, tasks)
    {
        if (!cJSON_IsObject(it)) {
            return cs_err_set(err, CS_ESCHEMA, 0, "eval.tasks.%s: expected an object", it->string);
        }
        if ((rc = eval_task(j, it, err)) != CS_OK) {
            return rc;
        }
        progress(j, NULL, NULL, ++done, total);
    }
    return check_finite(j->metrics, "metrics", err);
}

/* ---- result.json and error.json -------------------------------------------------------------- */

static cs_rc write_json(const char *path, cJSON *doc, cs_err *err)
{
    char *text = cJSON_Print(doc);
    if (!text) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    size_t n = strlen(text);
    text[n] = '\n'; /* cJSON_Print's terminator becomes the final newline */
    cs_rc rc = cs_path_write_atomic(path, text, n + 1, 0644, err);
    free(text);
    return rc;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0;
    }
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

static cs_rc write_result(job *j, cs_err *err)
{
    char host[256] = "unknown";
    cJSON *r = cJSON_CreateObject();
    cs_rc rc;

    if (gethostname(host, sizeof host - 1) != 0) {
        snprintf(host, sizeof host, "unknown");
    }
    host[sizeof host - 1] = '\0';
    if (!cJSON_AddNumberToObject(j->timings, "total",
                                 (double)(cs_time_mono_ns() - j->t_job) / 1e9) ||
        !r || !cJSON_AddNumberToObject(r, "version", 1)) {
        cJSON_Delete(r);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cJSON_AddItemToObject(r, "metrics", j->metrics);
    j->metrics = NULL;
    if (j->calibration) {
        cJSON_AddItemToObject(r, "calibration", j->calibration);
        j->calibration = NULL;
    } else {
        cJSON_AddNullToObject(r, "calibration");
    }
    cJSON_AddItemToObject(r, "timings", j->timings);
    j->timings = NULL;
    if (!cJSON_AddNumberToObject(r, "peak_rss_mb", peak_rss_mb()) ||
        !cJSON_AddStringToObject(r, "engine_version", CS_ENGINE_VERSION) ||
        !cJSON_AddStringToObject(r, "host", host) ||
        !cJSON_AddNumberToObject(r, "threads", j->threads) ||
        !cJSON_AddNumberToObject(r, "started_ms", (double)j->started_ms) ||
        !cJSON_AddNumberToObject(r, "ended_ms", (double)cs_time_wall_ms())) {
        cJSON_Delete(r);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if (j->extra) {
        cJSON_AddItemToObject(r, "extra", j->extra);
        j->extra = NULL;
    }
    /* One decoder checks it and one encoder writes it (cs_result.h): the worker reads the same
     * canonical text. */
    cs_result res;
    cs_jctx c;
    cs_jctx_init(&c, NULL, err);
    rc = cs_result_from_json(&c, r, &res);
    cJSON_Delete(r);
    if (rc == CS_OK) {
        rc = cs_result_write_file("result.json", &res, err);
    }
    cs_result_fini(&res);
    return rc;
}

static void write_error(const char *stage, const cs_err *e)
{
    cJSON *doc = cJSON_CreateObject();
    cs_err err2 = {0};
    const char *msg = e->msg[0] ? e->msg : cs_rc_str(e->rc);
    fprintf(stderr, "calsweep-run: %s: %s\n", stage, msg);
    if (!doc || !cJSON_AddStringToObject(doc, "kind", error_kind(stage, e->rc)) ||
        !cJSON_AddStringToObject(doc, "message", msg) ||
        !cJSON_AddStringToObject(doc, "stage", stage) ||
        write_json("error.json", doc, &err2) != CS_OK) {
        fprintf(stderr, "calsweep-run: cannot write error.json: %s\n",
                err2.msg[0] ? err2.msg : "out of memory");
    }
    cJSON_Delete(doc);
}

/* ---- the job --------------------------------------------------------------------------------- */

int cs_run_job(const char *job_path)
{
    job j = {0};
    cs_err err = {0};
    cs_rc rc;
    const char *env;
    int64_t threads = 1;

    j.t_job = cs_time_mono_ns();
    j.started_ms = cs_time_wall_ms();
    j.base = getenv("CALSWEEP_BASE_DIR");
    if (!j.base || !j.base[0]) {
        j.base = ".";
    }
    j.roots = getenv("CALSWEEP_MODEL_ROOTS");
    if (j.roots && !j.roots[0]) {
        j.roots = NULL;
    }
    j.model_ok = j.roots ? j.roots : j.base;
    j.data_ok = getenv("CALSWEEP_DATA_ROOTS");
    if (!j.data_ok || !j.data_ok[0]) {
        j.data_ok = j.base;
    }
    j.cache_dir = getenv("CALSWEEP_CACHE_DIR");
    if (j.cache_dir && !j.cache_dir[0]) {
        j.cache_dir = NULL;
    }
    env = getenv("CALSWEEP_THREADS");
    if (env && env[0] && cs_parse_i64(env, 1, 1024, &threads, "CALSWEEP_THREADS", &err) != CS_OK) {
        j.stage = "config";
        rc = err.rc;
        goto fail;
    }
    j.threads = (int)threads;
    if (fcntl(3, F_GETFD) != -1) {
        j.progress = fdopen(3, "w");
    }
    j.metrics = cJSON_CreateObject();
    j.timings = cJSON_CreateObject();
    if (!j.metrics || !j.timings) {
        j.stage = "config";
        rc = cs_err_set(&err, CS_ENOMEM, 0, "out of memory");
        goto fail;
    }

    j.stage = "config";
    if ((rc = load_config(&j, job_path, &err)) != CS_OK ||
        (rc = cs_job_check_limits(j.cfg, &err)) != CS_OK) {
        goto fail;
    }
    stage_begin(&j, "load");
    if ((rc = stage_load(&j, &err)) != CS_OK || (rc = stage_end(&j, &err)) != CS_OK) {
        goto fail;
    }
    stage_begin(&j, "quantize");
    if ((rc = stage_quantize(&j, &err)) != CS_OK || (rc = stage_end(&j, &err)) != CS_OK) {
        goto fail;
    }
    stage_begin(&j, "evaluate");
    if ((rc = stage_evaluate(&j, &err)) != CS_OK || (rc = stage_end(&j, &err)) != CS_OK) {
        goto fail;
    }
    j.stage = "result";
    if ((rc = write_result(&j, &err)) != CS_OK) {
        goto fail;
    }
    cs_model_free(j.model);
    cs_tok_destroy(j.tok);
    cJSON_Delete(j.cfg);
    free(j.calib);
    free(j.model_dir);
    if (j.progress) {
        fclose(j.progress);
    }
    return CS_EXIT_OK;

fail:
    if (rc == CS_OK) {
        rc = CS_EINTERNAL;
    }
    if (err.rc == CS_OK) {
        err.rc = rc;
    }
    write_error(j.stage, &err);
    cs_model_free(j.model);
    cs_tok_destroy(j.tok);
    cJSON_Delete(j.cfg);
    cJSON_Delete(j.metrics);
    cJSON_Delete(j.timings);
    cJSON_Delete(j.calibration);
    cJSON_Delete(j.extra);
    free(j.calib);
    free(j.model_dir);
    if (j.progress) {
        fclose(j.progress);
    }
    return CS_EXIT_FAIL;
}
