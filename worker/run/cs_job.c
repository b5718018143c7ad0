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
#include "cs_canon.h"
#include "cs_err.h"
#include "cs_floor.h"
#include "cs_jobspec.h"
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

/* Perplexity windows per forward pass. */
#define PPL_BATCH 4
/* Largest perplexity text read into memory. */
#define JOB_MAX_TEXT   ((size_t)256 << 20)
#define JOB_MAX_CONFIG CS_LIMIT_JOB_CONFIG_BYTES

typedef struct job {
    cs_jobspec js;         /* the job config, parsed once */
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
    cs_result_items *items; /* result.json's "items", in evaluation order; owned, n_items */
    char **item_names;      /* owned, n_names: the task names items[i].task borrows */
    size_t n_items, n_names;
    cs_floor floor;         /* each stage's work and time (result.json extra.profile) */
    cs_fwd_count eval_work; /* what evaluation must compute, summed over its tasks */
    double eval_s;          /* the evaluate stage's seconds */
    bool profile;           /* print the profile to stderr */
} job;

/* ---- small helpers --------------------------------------------------------------------------- */

/* One progress line: {"stage", what: name (a task's name escaped as JSON), "done", "total"}. */
static void progress(job *j, const char *what, const char *name, size_t done, size_t total)
{
    cs_buf q;
    if (!j->progress) {
        return;
    }
    cs_buf_init(&q);
    if (name && cs_canon_put_string(&q, name) != CS_OK) {
        cs_buf_fini(&q);
        return;
    }
    fprintf(j->progress, "{\"stage\":\"%s\"", j->stage);
    if (name) {
        fprintf(j->progress, ",\"%s\":%s", what, q.data);
    }
    fprintf(j->progress, ",\"done\":%zu,\"total\":%zu}\n", done, total);
    fflush(j->progress);
    cs_buf_fini(&q);
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
    if (strcmp(j->stage, "evaluate") == 0) {
        j->eval_s = s;
    }
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
    char *text = NULL;
    size_t len = 0;
    cs_rc rc = cs_path_read_file(path, JOB_MAX_CONFIG, &text, &len, err);
    if (rc == CS_OK) {
        rc = cs_jobspec_parse(text, len, path, &j->js, err);
    }
    free(text);
    return rc;
}

cs_rc cs_job_check_limits(const cJSON *cfg, cs_err *err)
{
    cs_jobspec js;
    cs_rc rc = cs_jobspec_from_json(cfg, &js, err);
    cs_jobspec_fini(&js);
    return rc;
}

static cs_rc stage_load(job *j, cs_err *err)
{
    const char *backend = j->js.model.backend;
    char *dir = NULL, *tokpath = NULL;
    cs_rc rc;

    /* calsweep-run is the native backend: it never runs a job meant for another engine */
    if (backend && strcmp(backend, "native") != 0) {
        return cs_err_set(err, CS_ENOTSUP, 0,
                          "model.backend is \"%s\": calsweep-run runs only \"native\" jobs (an "
                          "exec job runs the worker's --exec-template)",
                          backend);
    }
    if ((rc = resolve_model(j, j->js.model.folder, &dir, err)) != CS_OK) {
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

/* ACDM's reference sources (the job's resolved sources of kind "task"), resolved and each named
 * after its file ("arith_mc.train" for .../arith_mc.train.jsonl). *src (owned array) and *paths
 * (owned strings: [path, name] per source) / *n. */
static cs_rc reference_sources(job *j, cs_calib_source **src, char ***paths, size_t *n, cs_err *err)
{
    const cs_jobspec *js = &j->js;
    *src = cs_calloc_array(js->n_reference + 1, sizeof(cs_calib_source));
    *paths = cs_calloc_array(2 * js->n_reference + 1, sizeof(char *));
    *n = 0;
    if (!*src || !*paths) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    for (size_t k = 0; k < js->n_reference; k++) {
        const char *path = js->reference[k].path;
        cs_rc rc = resolve(j, "calibration.selector.reference", path, &(*paths)[2 * k], err);
        if (rc != CS_OK) {
            return rc;
        }
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t bl = strlen(base);
        if (bl > 6 && strcmp(base + bl - 6, ".jsonl") == 0) {
            bl -= 6;
        }
        if (!((*paths)[2 * k + 1] = cs_strndup(base, bl))) {
            return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
        (*src)[k] = (cs_calib_source){
                .kind = "task", .path = (*paths)[2 * k], .name = (*paths)[2 * k + 1]};
        *n = k + 1;
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
    size_t k = 0;
    char **paths = cs_calloc_array(j->js.n_tasks + 1, sizeof(char *));
    if (!paths) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < j->js.n_tasks; i++) {
        if (resolve(j, "eval.tasks", j->js.tasks[i].path, &paths[k], err) == CS_OK) {
            k++;
        }
    }
    *out = paths;
    *n = k;
    return CS_OK;
}

/* What stage_calibrate builds and frees. */
typedef struct calib_run {
    char *file, **evals, **ref_strs;
    size_t n_evals, n_ref;
    cs_calib_source *ref_src;
    cs_calib_source *src; /* the pool's sources (one for a plain source) */
    char **src_paths;     /* resolved paths of a mixed pool's sources */
    size_t n_src;
    cs_calib_compose_opts co;
    cJSON *pool_record; /* a mixed pool's record for result.json */
    cs_calib_pool pool, ref;
    cs_calib_selection selection;
    cs_pstat_ctx stats;
    char model_id[CS_CACHE_KEY_LEN + 1];
} calib_run;

static void calib_run_fini(calib_run *cr)
{
    free_strings(cr->evals, cr->n_evals);
    free(cr->file);
    free(cr->ref_src);
    free_strings(cr->ref_strs, 2 * cr->n_ref);
    free(cr->src);
    free_strings(cr->src_paths, cr->n_src);
    cJSON_Delete(cr->pool_record);
    cs_cache_close(cr->stats.cache);
    cs_calib_pool_fini(&cr->pool);
    cs_calib_pool_fini(&cr->ref);
    cs_calib_selection_fini(&cr->selection);
}

/* ACDM's reference: disjoint from the evaluation split and from the pool's source, read whole. */
static cs_rc calib_reference(job *j, calib_run *cr, const cs_calib_source *src, size_t n_src,
                             cs_err *err)
{
    cs_rc rc;
    if (j->js.n_reference == 0) {
        return cs_err_set(err, CS_ESCHEMA, 0,
                          "calibration.selector.reference: acdm needs its task reference sources");
    }
    if ((rc = reference_sources(j, &cr->ref_src, &cr->ref_strs, &cr->n_ref, err)) != CS_OK) {
        return rc;
    }
    return cs_calib_acdm_reference(cr->ref_src, cr->n_ref, src, n_src,
                                   (const char *const *)cr->evals, cr->n_evals, j->tok,
                                   (size_t)j->js.seq_len, false, &cr->ref, err);
}

/* A mixed pool's sources (calibration.source of kind "pool"): each source's share of the pool's
 * items (cs_calib_shares, as `calsweep plan` computed it), its item format, its resolved path;
 * sources whose share is 0 are left out. The pool's keep_out files join the evaluation files of
 * the leak check. */
static cs_rc mixed_sources(job *j, calib_run *cr, cs_err *err)
{
    const cs_jobspec_pool *pl = &j->js.pool;
    size_t n = pl->n_srcs, total, *share = cs_calloc_array(n + 1, sizeof(size_t));
    int64_t *quota = cs_calloc_array(n + 1, sizeof(int64_t));
    double *weight = cs_calloc_array(n + 1, sizeof(double));
    char **ev = NULL;
    cs_rc rc = CS_OK;
    cr->src = cs_calloc_array(n + 1, sizeof(*cr->src));
    cr->src_paths = cs_calloc_array(n + 1, sizeof(char *));
    if (!share || !quota || !weight || !cr->src || !cr->src_paths) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    total = pl->multiple > 0 ? (size_t)(pl->multiple * j->js.n_samples) : (size_t)pl->size;
    for (size_t i = 0; i < n; i++) {
        quota[i] = pl->srcs[i].quota;
        weight[i] = pl->srcs[i].weight;
    }
    if ((rc = cs_calib_shares(quota, weight, n, total, share, err)) != CS_OK) {
        goto out;
    }
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        const cs_jobspec_pool_src *ps = &pl->srcs[i];
        if (share[i] == 0) {
            continue;
        }
        rc = resolve(j, "calibration.source.sources", ps->src.path, &cr->src_paths[cr->n_src], err);
        cr->src[cr->n_src] = (cs_calib_source){.kind = ps->src.kind,
                                               .path = cr->src_paths[cr->n_src],
                                               .text_field = ps->src.text_field,
                                               .name = ps->name,
                                               .format = ps->format && strcmp(ps->format, "qa") == 0
                                                                 ? CS_CALIB_FMT_QA
                                                                 : CS_CALIB_FMT_PLAIN,
                                               .quota = share[i]};
        cr->n_src += rc == CS_OK;
    }
    if (rc == CS_OK && (rc = cs_calib_compose_parse(pl->composition, &cr->co.mode, err)) == CS_OK) {
        cr->co.n = total;
    }
    ev = rc == CS_OK ? realloc(cr->evals, (cr->n_evals + pl->n_keep_out + 1) * sizeof(char *))
                     : NULL;
    if (rc == CS_OK && !ev) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    for (size_t i = 0; ev && i < pl->n_keep_out; i++) {
        cr->evals = ev;
        cs_err e = {0};
        if (resolve(j, "calibration.source.keep_out", pl->keep_out[i], &ev[cr->n_evals], &e) ==
            CS_OK) {
            cr->n_evals++;
        }
    }
    if (ev) {
        cr->evals = ev;
    }
out:
    free(share);
    free(quota);
    free(weight);
    return rc;
}

/* A mixed pool's record for result.json, with its sources' paths as the job names them. */
static cs_rc pool_record(job *j, calib_run *cr, cs_err *err)
{
    cs_calib_source *shown = cs_calloc_array(cr->n_src + 1, sizeof(*shown));
    if (!shown) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < cr->n_src; i++) {
        shown[i] = cr->src[i];
        for (size_t k = 0; k < j->js.pool.n_srcs; k++) {
            if (strcmp(j->js.pool.srcs[k].name, cr->src[i].name) == 0) {
                shown[i].path = j->js.pool.srcs[k].src.path;
            }
        }
    }
    cr->pool_record = cs_calib_pool_describe(&cr->pool, shown, cr->n_src, &cr->co);
    free(shown);
    return cr->pool_record ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
}

/* The candidate pool: random windows of the source (n_samples for random, 4 x n_samples for the
 * selectors that choose), or the job's mixed pool; checked against the evaluation files for
 * overlap. */
static cs_rc calib_pool(job *j, calib_run *cr, cs_err *err)
{
    const cs_jobspec *js = &j->js;
    cs_rc rc;
    if (!js->has_source) {
        return cs_err_set(err, CS_ESCHEMA, 0, "calibration.source: %s needs a source",
                          js->sel_md->name);
    }
    cs_calib_compose_opts_default(&cr->co);
    cr->co.mode = CS_COMPOSE_RANDOM_WINDOWS;
    cr->co.n = js->sel.kind == CS_SEL_RANDOM ? (size_t)js->n_samples : 4 * (size_t)js->n_samples;
    cr->co.seq_len = (size_t)js->seq_len;
    cr->co.seed = (uint64_t)js->seed;
    cr->co.add_bos = false;
    if ((rc = eval_paths(j, &cr->evals, &cr->n_evals, err)) != CS_OK) {
        return rc;
    }
    if (js->is_pool) {
        rc = mixed_sources(j, cr, err);
    } else if ((rc = resolve(j, "calibration.source.path", js->source.path, &cr->file, err)) ==
                       CS_OK &&
               !(cr->src = calloc(1, sizeof(*cr->src)))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    } else if (rc == CS_OK) {
        *cr->src = (cs_calib_source){.kind = js->source.kind,
                                     .path = cr->file,
                                     .text_field = js->source.text_field,
                                     .name = "source"};
        cr->n_src = 1;
    }
    if (rc != CS_OK ||
        (rc = cs_calib_check_overlap(cr->src, cr->n_src, (const char *const *)cr->evals,
                                     cr->n_evals, err)) != CS_OK) {
        return rc;
    }
    if (js->sel.kind == CS_SEL_ACDM &&
        (rc = calib_reference(j, cr, cr->src, cr->n_src, err)) != CS_OK) {
        return rc;
    }
    rc = cs_calib_pool_build(cr->src, cr->n_src, j->tok, &cr->co, &cr->pool, err);
    return rc == CS_OK && js->is_pool ? pool_record(j, cr, err) : rc;
}

/* The pool statistics go through the cache of $CALSWEEP_CACHE_DIR when it is set. */
static void calib_cache(job *j, calib_run *cr)
{
    cs_sel_kind k = j->js.sel.kind;
    bool uses_stats =
            k == CS_SEL_PPL_RANK || k == CS_SEL_COLA || k == CS_SEL_ACDM || k == CS_SEL_COVERCAL;
    cs_err cerr = {0};
    if (!uses_stats || !j->cache_dir) {
        return;
    }
    if (cs_cache_open(j->cache_dir, &cr->stats.cache, &cerr) != CS_OK ||
        cs_cache_model_id(j->model_dir, cr->model_id, &cerr) != CS_OK) {
        cs_log(CS_LOG_WARN, "cache: not used: %s", cerr.msg);
        cs_cache_close(cr->stats.cache);
        cr->stats.cache = NULL;
    } else {
        cr->stats.model_id = cr->model_id;
    }
}

/* The chosen samples into j->calib and their ids into result.json's calibration. */
static cs_rc calib_take(job *j, calib_run *cr, cJSON *ids, cs_err *err)
{
    size_t n = (size_t)j->js.n_samples, seq = (size_t)j->js.seq_len;
    const cs_calib_selection *sel = &cr->selection;
    if (!(j->calib = cs_calloc_array(n * seq, sizeof(int32_t)))) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < sel->n && i < n; i++) {
        const cs_calib_item *it =
                sel->generated ? &sel->generated[i] : &cr->pool.items[sel->index[i]];
        if (it->n_tokens < seq) {
            return cs_err_set(err, CS_EINVAL, 0,
                              "calibration: sample %s has %zu tokens, fewer than seq_len %zu",
                              it->id, it->n_tokens, seq);
        }
        memcpy(j->calib + i * seq, it->tokens, seq * sizeof(int32_t));
        cJSON *v = cJSON_CreateString(it->id);
        if (!v || !cJSON_AddItemToArray(ids, v)) {
            cJSON_Delete(v);
            return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
    }
    if (sel->n < n) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "calibration: the selector returned %zu of %zu samples", sel->n, n);
    }
    return CS_OK;
}

/* result.json's calibration: selector, source, sizes, sample ids and the selector's details. */
static cs_rc calib_record(job *j, calib_run *cr, cs_err *err)
{
    const cs_jobspec *js = &j->js;
    cJSON *r = j->calibration = cJSON_CreateObject(), *ids = NULL, *det = NULL;
    cs_rc rc;
    if (!r || !cJSON_AddStringToObject(r, "selector", js->sel_md->name) ||
        (js->has_source && !js->is_pool &&
         !cJSON_AddStringToObject(r, "source", js->source.path)) ||
        !cJSON_AddNumberToObject(r, "n", (double)js->n_samples) ||
        !cJSON_AddNumberToObject(r, "seq_len", (double)js->seq_len) ||
        !cJSON_AddNumberToObject(r, "tokens", (double)(js->n_samples * js->seq_len)) ||
        !(ids = cJSON_AddArrayToObject(r, "sample_ids"))) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if ((rc = calib_take(j, cr, ids, err)) != CS_OK) {
        return rc;
    }
    det = cr->selection.diag ? cr->selection.diag : cJSON_CreateObject();
    cr->selection.diag = NULL;
    if (cr->pool_record && !cJSON_AddItemToObject(r, "pool", cr->pool_record)) {
        cr->pool_record = NULL;
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cr->pool_record = NULL;
    if (!det || !cJSON_AddItemToObject(r, "details", det) ||
        !cJSON_AddStringToObject(det, "composition",
                                 !js->has_source ? "generated"
                                                 : cs_calib_compose_name(cr->co.mode)) ||
        !cJSON_AddNumberToObject(det, "pool", (double)cr->pool.n)) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cJSON *rs = cr->n_ref > 0 ? cJSON_AddArrayToObject(det, "reference_sources") : det;
    for (size_t i = 0; rs && i < cr->n_ref; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(rs, o) ||
            !cJSON_AddStringToObject(o, "name", cr->ref_src[i].name) ||
            !cJSON_AddStringToObject(o, "path", js->reference[i].path)) {
            rs = NULL;
        }
    }
    return rs ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
}

/* config.calibration = {selector: {name, params...}, source: {kind, path, text_field}} with
 * n_samples, seq_len and seed at the top level: the pool (calib_pool; none for the generating
 * self_calibration), then the selector picks n_samples of them (or generates them). */
static cs_rc stage_calibrate(job *j, cs_err *err)
{
    const cs_jobspec *js = &j->js;
    calib_run cr = {0};
    cs_rc rc = CS_OK;

    if (!js->has_calibration || !js->has_sizes) {
        return cs_err_set(err, CS_ESCHEMA, 0,
                          "calibration: %s needs calibration data: the job has none",
                          js->algo_md->name);
    }
    progress(j, "step", "pool", 0, 1); /* the stage begins: reading the candidate pool */
    if (js->sel.kind != CS_SEL_SELF_CALIBRATION) {
        rc = calib_pool(j, &cr, err);
    }
    if (rc == CS_OK) {
        calib_cache(j, &cr);
        cs_select_env env = {.reference = cr.ref.n ? &cr.ref : NULL, .stats = &cr.stats};
        rc = cs_select_run_env(&js->sel, &cr.pool, j->model, j->tok, &env, on_select, j,
                               &cr.selection, err);
    }
    if (rc == CS_OK && (rc = calib_record(j, &cr, err)) == CS_OK) {
        j->n_samples = (size_t)js->n_samples;
        j->seq_len = (size_t)js->seq_len;
        cs_log(CS_LOG_INFO, "calibration: %s picked %lld of %zu candidates of %lld tokens",
               js->sel_md->name, (long long)js->n_samples, cr.pool.n, (long long)js->seq_len);
    }
    calib_run_fini(&cr);
    return rc;
}

static void layer_line(job *j, size_t layer, size_t done, size_t n_layers)
{
    if (j->progress) {
        fprintf(j->progress, "{\"stage\":\"quantize\",\"layer\":%zu,\"done\":%zu,\"total\":%zu}\n",
                layer, done, n_layers);
        fflush(j->progress);
    }
}

static void on_layer(void *ctx, size_t layer, size_t n_layers, double secs)
{
    job *j = ctx;
    layer_line(j, layer, layer + 1, n_layers);
    cs_log(CS_LOG_INFO, "quantize: layer %zu/%zu in %.2f s", layer + 1, n_layers, secs);
}

/* The algorithm (resolved by the table when the config was parsed); "none" (the baseline) leaves
 * the model as it is. */
static cs_rc stage_quantize(job *j, cs_err *err)
{
    cs_pipe_params pp;
    cs_pipe_report rep = {0};
    cs_rc rc;

    if (j->js.algo.kind == CS_ALGO_NONE) {
        return CS_OK;
    }
    if ((rc = cs_pipe_params_from_algo(&pp, &j->js.algo, err)) != CS_OK) {
        return rc;
    }
    if (cs_pipe_needs_calib(&pp)) {
        j->stage = "calibrate";
        if ((rc = stage_calibrate(j, err)) != CS_OK) {
            return rc;
        }
        j->stage = "quantize";
    }
    layer_line(j, 0, 0, j->model->cfg.n_layers); /* quantizing the first layer */
    if ((rc = cs_pipe_quantize(j->model, j->calib, j->n_samples, j->seq_len, &pp, on_layer, j, &rep,
                               err)) != CS_OK) {
        return rc;
    }
    cs_floor_quant(&j->floor, &j->model->cfg, &pp, j->n_samples, j->seq_len);
    cs_floor_set_times(&j->floor, &rep.t);
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

/* ---- per-item outcomes (result.json version 2, "items") ------------------------------------- */

/* Adds one task's outcomes (*it is taken and zeroed) under the name task. Outcomes that would
 * pass CS_LIMIT_RESULT_ITEMS in all are left out with a warning: the metrics still stand, and the
 * aggregator flags the task as unpaired. */
static cs_rc keep_items(job *j, const char *task, cs_result_items *it, cs_err *err)
{
    size_t used = 0;
    for (size_t i = 0; i < j->n_items; i++) {
        used += j->items[i].n;
    }
    if (it->n > CS_LIMIT_RESULT_ITEMS - used) {
        cs_log(CS_LOG_WARN,
               "%s: %zu item outcomes would pass the %zu of one result: result.json "
               "leaves them out",
               task, it->n, CS_LIMIT_RESULT_ITEMS);
        cs_result_items_fini(it);
        return CS_OK;
    }
    cs_result_items *items = cs_realloc_array(j->items, j->n_items + 1, sizeof *items);
    if (items != NULL) {
        j->items = items;
    }
    char **names = items ? cs_realloc_array(j->item_names, j->n_names + 1, sizeof *names) : NULL;
    if (names != NULL) {
        j->item_names = names;
        names[j->n_names] = cs_strdup(task);
    }
    if (names == NULL || names[j->n_names] == NULL) {
        cs_result_items_fini(it);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    items[j->n_items] = *it;
    items[j->n_items].task = names[j->n_names++];
    j->n_items++;
    memset(it, 0, sizeof *it);
    return CS_OK;
}

/* n 1/0 outcomes as a bitset (owned), or NULL on no memory. */
static uint8_t *pack_bits(const uint8_t *v, size_t n)
{
    uint8_t *b = cs_calloc_array(cs_result_bits_bytes(n) + 1, 1);
    for (size_t i = 0; b != NULL && i < n; i++) {
        cs_result_bit_set(b, i, v[i] != 0);
    }
    return b;
}

/* n doubles as float32 (owned), or NULL on no memory or when one is not finite (*finite false). */
static float *to_f32(const double *v, size_t n, bool *finite)
{
    float *f = cs_alloc_array(n + 1, sizeof *f);
    *finite = true;
    for (size_t i = 0; f != NULL && i < n; i++) {
        f[i] = (float)v[i];
        *finite = *finite && isfinite(f[i]);
    }
    return f;
}

/* The outcomes of task name, scored as s over the items of t in order: "sample" is the SHA-256 of
 * the item ids joined by "\n" (cs_result_sample). */
static cs_rc task_items(job *j, const char *name, const cs_task *t, const cs_score *s, cs_err *err)
{
    cs_result_items it = {.n = s->n};
    const char **ids = cs_alloc_array(t->n + 1, sizeof *ids);
    bool finite = true, gen = t->kind == CS_TASK_GEN;
    cs_rc rc = ids != NULL ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    for (size_t i = 0; rc == CS_OK && i < t->n; i++) {
        ids[i] = t->items[i].id;
    }
    if (rc == CS_OK) {
        rc = cs_result_sample(ids, t->n, it.sample, err);
    }
    free(ids);
    if (rc != CS_OK) {
        return rc;
    }
    if (gen) {
        it.exact_match = pack_bits(s->ok_strict, s->n);
        it.exact_match_flex = pack_bits(s->ok_flex, s->n);
    } else {
        it.acc = pack_bits(s->ok_acc, s->n);
        it.margin = to_f32(s->margin, s->n, &finite);
        it.acc_norm = s->ok_norm ? pack_bits(s->ok_norm, s->n) : NULL;
        it.acc_bytes = s->ok_bytes ? pack_bits(s->ok_bytes, s->n) : NULL;
    }
    if (gen ? !it.exact_match || !it.exact_match_flex
            : !it.acc || !it.margin || (s->ok_norm && (!it.acc_norm || !it.acc_bytes))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    } else if (!finite) {
        rc = cs_err_set(err, CS_ENUMERIC, 0,
                        "eval.tasks.%s: a log-likelihood margin is not finite (are the model's "
                        "weights finite?)",
                        name);
    }
    if (rc != CS_OK) {
        cs_result_items_fini(&it);
        return rc;
    }
    return keep_items(j, name, &it, err);
}

/* The outcomes of perplexity text key: each window's mean loss. Its "sample" identifies the
 * windows: cs_result_sample of "perplexity", seq_len, the window count and the hex SHA-256 of the
 * scored token ids (int32 little-endian), so two jobs pair iff they scored the same tokens in the
 * same windows (same text, tokenizer, seq_len and max_windows). */
static cs_rc ppl_items(job *j, const char *key, const int32_t *ids, size_t seq_len,
                       const double *nll, size_t nw, cs_err *err)
{
    cs_result_items it = {.n = nw};
    char sl[32], w[32], tok_hex[CS_SHA256_HEX_LEN + 1];
    const char *parts[] = {"perplexity", sl, w, tok_hex};
    size_t n = nw * seq_len;
    uint8_t *b = cs_alloc_array(4 * n + 1, 1);
    bool finite = true;
    cs_rc rc = CS_OK;
    if (b == NULL) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)ids[i];
        for (size_t k = 0; k < 4; k++) {
            b[4 * i + k] = (uint8_t)(u >> (8 * k));
        }
    }
    snprintf(sl, sizeof sl, "%zu", seq_len);
    snprintf(w, sizeof w, "%zu", nw);
    rc = cs_sha256_hex(b, 4 * n, tok_hex, err);
    free(b);
    if (rc == CS_OK) {
        rc = cs_result_sample(parts, 4, it.sample, err);
    }
    if (rc == CS_OK && (it.window_loss = to_f32(nll, nw, &finite)) == NULL) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if (rc != CS_OK || !finite) {
        /* A non-finite window loss makes the perplexity non-finite too: the metrics check fails
         * the job naming metrics.<key>.ppl, the message users and the worker know. */
        cs_result_items_fini(&it);
        return rc;
    }
    return keep_items(j, key, &it, err);
}

/* One perplexity text: config.eval.perplexity.<name> = {path, seq_len, max_windows}. */
static cs_rc eval_ppl(job *j, const cs_jobspec_ppl *spec, cs_err *err)
{
    const char *path = spec->path;
    int64_t seq_len = spec->seq_len, max_windows = spec->max_windows;
    char *file = NULL, *text = NULL, key[300];
    int32_t *ids = NULL;
    double *nll = NULL, ppl = 0;
    size_t len = 0, n = 0, nw = 0;
    char what[192];
    cs_rc rc;

    snprintf(what, sizeof what, "eval.perplexity.%s.path", spec->name);
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
                        spec->name, path, n, (long long)seq_len);
        goto out;
    }
    if (!(nll = cs_alloc_array(n / (size_t)seq_len + 1, sizeof(double)))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    /* PPL_BATCH windows per call, as cs_model_ppl batches them, so that the progress counts
     * windows; the window means add up in the same order, so ppl is the same to the bit */
    nw = n / (size_t)seq_len;
    progress(j, "task", spec->name, 0, nw);
    for (size_t w0 = 0; w0 < nw; w0 += PPL_BATCH) {
        size_t b = nw - w0 < PPL_BATCH ? nw - w0 : PPL_BATCH, got = 0;
        double part;
        if ((rc = cs_model_ppl(j->model, ids + w0 * (size_t)seq_len, b * (size_t)seq_len,
                               (size_t)seq_len, PPL_BATCH, nll + w0, &got, &part, err)) != CS_OK) {
            goto out;
        }
        progress(j, "task", spec->name, w0 + b, nw);
    }
    for (size_t w = 0; w < nw; w++) {
        ppl += nll[w];
    }
    j->eval_work.tokens += (double)(nw * (size_t)seq_len);
    j->eval_work.head_rows += (double)(nw * ((size_t)seq_len - 1));
    j->eval_work.attn_pairs += (double)nw * (double)seq_len * ((double)seq_len + 1) / 2;
    ppl = exp(ppl / (double)nw);
    snprintf(key, sizeof key, "ppl:%s", spec->name);
    cJSON *m = cJSON_AddObjectToObject(j->metrics, key);
    if (!m || !cJSON_AddNumberToObject(m, "n", (double)nw) ||
        !cJSON_AddNumberToObject(m, "ppl", ppl) ||
        !cJSON_AddNumberToObject(m, "tokens", (double)(nw * (size_t)seq_len))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    if ((rc = ppl_items(j, key, ids, (size_t)seq_len, nll, nw, err)) != CS_OK) {
        goto out;
    }
    cs_log(CS_LOG_INFO, "ppl:%s = %.4f (%zu windows of %lld)", spec->name, ppl, nw,
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
static cs_rc eval_task(job *j, const cs_jobspec_task *spec, cs_err *err)
{
    const char *path = spec->path;
    int64_t limit = spec->limit, fewshot = spec->fewshot;
    char *file = NULL, *shots = NULL;
    cs_task t = {0};
    cs_score s = {0};
    task_progress tp = {j, spec->name};
    cs_score_opts o = {.progress = on_item, .progress_ctx = &tp};
    char what[192];
    cs_rc rc;

    if (fewshot > 0) {
        const char *fp = spec->fewshot_path;
        if (!fp || !fp[0]) {
            return cs_err_set(err, CS_ESCHEMA, 0,
                              "eval.tasks.%s.fewshot_path: fewshot is %lld but no file gives "
                              "the shots",
                              spec->name, (long long)fewshot);
        }
        snprintf(what, sizeof what, "eval.tasks.%s.fewshot_path", spec->name);
        if ((rc = resolve(j, what, fp, &shots, err)) != CS_OK) {
            return rc;
        }
    }
    snprintf(what, sizeof what, "eval.tasks.%s.path", spec->name);
    if ((rc = resolve(j, what, path, &file, err)) != CS_OK ||
        (rc = cs_task_load(&t, file, (size_t)limit, err)) != CS_OK ||
        (shots && (rc = cs_task_fewshot(&t, shots, (size_t)fewshot, NULL, err)) != CS_OK)) {
        goto out;
    }
    progress(j, "task", spec->name, 0, t.n); /* scoring begins */
    if ((rc = cs_score_task(j->model, j->tok, &t, &o, &s, err)) != CS_OK) {
        goto out;
    }
    j->eval_work.tokens += s.work_tokens;
    j->eval_work.head_rows += s.work_head_rows;
    j->eval_work.attn_pairs += s.work_attn_pairs;
    cJSON *m = cJSON_AddObjectToObject(j->metrics, spec->name);
    if (!m) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    if ((rc = cs_score_to_json(&s, t.kind, m, err)) != CS_OK ||
        (rc = task_items(j, spec->name, &t, &s, err)) != CS_OK) {
        goto out;
    }
    cs_log(CS_LOG_INFO, "%s: %s %.4f over %zu items", spec->name,
           t.kind == CS_TASK_GEN ? "exact match" : "acc",
           t.kind == CS_TASK_GEN ? s.exact_strict : s.acc, s.n);
out:
    cs_score_fini(&s);
    cs_task_fini(&t);
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
    const cs_jobspec *js = &j->js;
    size_t total = js->n_ppl + js->n_tasks, done = 0;
    cs_rc rc;

    for (size_t i = 0; i < js->n_ppl; i++) {
        if ((rc = eval_ppl(j, &js->ppl[i], err)) != CS_OK) {
            return rc;
        }
        progress(j, NULL, NULL, ++done, total);
    }
    for (size_t i = 0; i < js->n_tasks; i++) {
        if ((rc = eval_task(j, &js->tasks[i], err)) != CS_OK) {
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

/* extra.profile: each stage's time next to its floor at the peaks measured now (cs_floor.h). */
static cs_rc add_profile(job *j, cs_err *err)
{
    cs_peak peak;
    cs_rc rc = cs_peak_measure(&peak, err);
    if (rc != CS_OK) {
        return rc;
    }
    if (j->eval_work.tokens > 0) {
        cs_floor_eval(&j->floor, &j->model->cfg, &j->eval_work);
        j->floor.st[CS_STAGE_EVAL].seconds = j->eval_s;
    }
    if (j->profile) {
        cs_floor_print(stderr, &j->floor, &peak);
    }
    cJSON *pj = cs_floor_json(&j->floor, &peak);
    if (!pj || (!j->extra && !(j->extra = cJSON_CreateObject())) ||
        !cJSON_AddItemToObject(j->extra, "profile", pj)) {
        cJSON_Delete(pj);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    return CS_OK;
}

static cs_rc write_result(job *j, cs_err *err)
{
    char host[256] = "unknown";
    cJSON *r = NULL;
    cs_rc rc = add_profile(j, err);

    if (rc != CS_OK || !(r = cJSON_CreateObject())) {
        return rc != CS_OK ? rc : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if (gethostname(host, sizeof host - 1) != 0) {
        snprintf(host, sizeof host, "unknown");
    }
    host[sizeof host - 1] = '\0';
    if (!cJSON_AddNumberToObject(j->timings, "total",
                                 (double)(cs_time_mono_ns() - j->t_job) / 1e9) ||
        !r || !cJSON_AddNumberToObject(r, "version", 2)) {
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
    if (rc == CS_OK) { /* the outcomes go in as they are: no detour through cJSON */
        res.items = j->items;
        res.n_items = j->n_items;
        j->items = NULL;
        j->n_items = 0;
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

static void items_fini(job *j)
{
    for (size_t i = 0; i < j->n_items; i++) {
        cs_result_items_fini(&j->items[i]);
    }
    free(j->items);
    for (size_t i = 0; i < j->n_names; i++) {
        free(j->item_names[i]);
    }
    free(j->item_names);
}

int cs_run_job(const char *job_path, bool profile)
{
    job j = {0};
    cs_err err = {0};
    cs_rc rc;
    const char *env;
    int64_t threads = 1;

    j.profile = profile;
    cs_floor_init(&j.floor);
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
    if ((rc = load_config(&j, job_path, &err)) != CS_OK) {
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
    cs_model_destroy(j.model);
    cs_tok_destroy(j.tok);
    cs_jobspec_fini(&j.js);
    items_fini(&j);
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
    cs_model_destroy(j.model);
    cs_tok_destroy(j.tok);
    cs_jobspec_fini(&j.js);
    cJSON_Delete(j.metrics);
    cJSON_Delete(j.timings);
    cJSON_Delete(j.calibration);
    cJSON_Delete(j.extra);
    items_fini(&j);
    free(j.calib);
    free(j.model_dir);
    if (j.progress) {
        fclose(j.progress);
    }
    return CS_EXIT_FAIL;
}
