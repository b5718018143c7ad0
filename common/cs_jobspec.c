/* cs_jobspec.c - a job config parsed once into a struct, and written back canonically
 * (cs_jobspec.h). */
#include "cs_jobspec.h"

#include <stdlib.h>
#include <string.h>

#include "cs_canon.h"
#include "cs_limits.h"

/* ---- parsing -------------------------------------------------------------------------------- */

/* n_samples, seq_len, seed (null or absent for the baseline). */
static cs_rc parse_sizes(cs_jctx *c, const cJSON *cfg, cs_jobspec *js)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(cfg, "n_samples");
    cs_rc rc;
    js->has_sizes = n && !cJSON_IsNull(n);
    if ((rc = cs_json_opt_int(c, cfg, "n_samples", 0, 1, CS_LIMIT_N_SAMPLES, &js->n_samples)) !=
                CS_OK ||
        (rc = cs_json_opt_int(c, cfg, "seq_len", 0, 2, CS_LIMIT_SEQ_LEN, &js->seq_len)) != CS_OK ||
        (rc = cs_json_opt_int(c, cfg, "seed", 0, 0, CS_LIMIT_SEED, &js->seed)) != CS_OK) {
        return rc;
    }
    return CS_OK;
}

static cs_rc parse_task(cs_jctx *c, const cJSON *e, cs_jobspec_task *t)
{
    cs_rc rc;
    t->name = e->string;
    if ((rc = cs_json_as_object(c, e)) != CS_OK ||
        (rc = cs_json_opt_int(c, e, "limit", 0, 0, CS_LIMIT_EVAL_ITEMS, &t->limit)) != CS_OK ||
        (rc = cs_json_opt_int(c, e, "fewshot", 0, 0, CS_LIMIT_FEWSHOT, &t->fewshot)) != CS_OK ||
        (rc = cs_json_req_string(c, e, "path", &t->path)) != CS_OK ||
        (rc = cs_json_opt_string(c, e, "fewshot_path", NULL, &t->fewshot_path)) != CS_OK) {
        return rc;
    }
    return CS_OK;
}

static cs_rc parse_ppl(cs_jctx *c, const cJSON *e, cs_jobspec_ppl *p)
{
    cs_rc rc;
    p->name = e->string;
    if ((rc = cs_json_as_object(c, e)) != CS_OK ||
        (rc = cs_json_opt_int(c, e, "seq_len", 2048, 2, CS_LIMIT_SEQ_LEN, &p->seq_len)) != CS_OK ||
        (rc = cs_json_opt_int(c, e, "max_windows", 0, 0, CS_LIMIT_PPL_WINDOWS, &p->max_windows)) !=
                CS_OK ||
        (rc = cs_json_req_string(c, e, "path", &p->path)) != CS_OK) {
        return rc;
    }
    return CS_OK;
}

/* eval: {"tasks": {...}, "perplexity": {...}}, each member checked in order. */
static cs_rc parse_eval(cs_jctx *c, const cJSON *cfg, cs_jobspec *js, cs_err *err)
{
    const cJSON *eval = NULL, *tasks = NULL, *ppl = NULL, *e;
    cs_rc rc;
    if ((rc = cs_json_opt_object(c, cfg, "eval", &eval)) != CS_OK || !eval) {
        return rc;
    }
    cs_jpath_push_key(&c->path, "eval");
    if ((rc = cs_json_opt_object(c, eval, "tasks", &tasks)) != CS_OK ||
        (rc = cs_json_opt_object(c, eval, "perplexity", &ppl)) != CS_OK) {
        return rc;
    }
    js->tasks = cs_calloc_array((size_t)cJSON_GetArraySize(tasks) + 1, sizeof(*js->tasks));
    js->ppl = cs_calloc_array((size_t)cJSON_GetArraySize(ppl) + 1, sizeof(*js->ppl));
    if (!js->tasks || !js->ppl) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cs_jpath_push_key(&c->path, "tasks");
    cJSON_ArrayForEach(e, tasks)
    {
        cs_jpath_push_key(&c->path, e->string);
        if ((rc = parse_task(c, e, &js->tasks[js->n_tasks++])) != CS_OK) {
            return rc;
        }
        cs_jpath_pop(&c->path);
    }
    cs_jpath_pop(&c->path);
    cs_jpath_push_key(&c->path, "perplexity");
    cJSON_ArrayForEach(e, ppl)
    {
        cs_jpath_push_key(&c->path, e->string);
        if ((rc = parse_ppl(c, e, &js->ppl[js->n_ppl++])) != CS_OK) {
            return rc;
        }
        cs_jpath_pop(&c->path);
    }
    cs_jpath_pop(&c->path);
    cs_jpath_pop(&c->path);
    return CS_OK;
}

static cs_rc parse_source(cs_jctx *c, const cJSON *o, cs_jobspec_source *s)
{
    cs_rc rc;
    if ((rc = cs_json_as_object(c, o)) != CS_OK ||
        (rc = cs_json_req_string(c, o, "kind", &s->kind)) != CS_OK ||
        (rc = cs_json_req_string(c, o, "path", &s->path)) != CS_OK ||
        (rc = cs_json_opt_string(c, o, "text_field", NULL, &s->text_field)) != CS_OK) {
        return rc;
    }
    return CS_OK;
}

static cs_rc parse_pool_src(cs_jctx *c, const cJSON *o, cs_jobspec_pool_src *ps)
{
    cs_rc rc;
    ps->name = o->string;
    if ((rc = parse_source(c, o, &ps->src)) != CS_OK ||
        (rc = cs_json_opt_int(c, o, "quota", 0, 1, INT64_C(1) << 24, &ps->quota)) != CS_OK ||
        (rc = cs_json_opt_number(c, o, "weight", 0.0, 0.0, 1e6, &ps->weight)) != CS_OK ||
        (rc = cs_json_opt_string(c, o, "format", NULL, &ps->format)) != CS_OK) {
        return rc;
    }
    if (strcmp(ps->src.kind, "pool") == 0) {
        return cs_jctx_error(c, o, NULL, "a pool's source cannot be a pool");
    }
    if ((ps->quota > 0) == (ps->weight > 0.0)) {
        return cs_jctx_error(c, o, NULL, "expected a \"quota\" or a \"weight\"");
    }
    if (ps->format && strcmp(ps->format, "text") != 0 &&
        !(strcmp(ps->format, "qa") == 0 && strcmp(ps->src.kind, "task") == 0)) {
        return cs_jctx_error(c, o, "format", "format \"%s\" is not one of a %s source", ps->format,
                             ps->src.kind);
    }
    return CS_OK;
}

/* calibration.source of kind "pool". */
static cs_rc parse_pool(cs_jctx *c, const cJSON *o, cs_jobspec_pool *pl, cs_err *err)
{
    const cJSON *srcs = NULL, *ko = NULL, *size, *e;
    cs_rc rc;
    if ((rc = cs_json_req_string(c, o, "composition", &pl->composition)) != CS_OK ||
        (rc = cs_json_req_object(c, o, "sources", &srcs)) != CS_OK ||
        (rc = cs_json_req_array(c, o, "keep_out", &ko)) != CS_OK) {
        return rc;
    }
    size = cJSON_GetObjectItemCaseSensitive(o, "size");
    cs_jpath_push_key(&c->path, "size");
    if (cJSON_IsObject(size)) {
        rc = cs_json_req_int(c, size, "multiple", 1, 1024, &pl->multiple);
    } else {
        rc = cs_json_as_int(c, size, 1, INT64_C(1) << 24, &pl->size);
    }
    cs_jpath_pop(&c->path);
    if (rc != CS_OK) {
        return rc;
    }
    size_t n = (size_t)cJSON_GetArraySize(srcs), nk = (size_t)cJSON_GetArraySize(ko);
    if (n == 0) {
        return cs_jctx_error(c, srcs, "sources", "a pool needs at least one source");
    }
    pl->srcs = cs_calloc_array(n, sizeof(*pl->srcs));
    pl->keep_out = cs_calloc_array(nk + 1, sizeof(*pl->keep_out));
    if (!pl->srcs || !pl->keep_out) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cs_jpath_push_key(&c->path, "sources");
    cJSON_ArrayForEach(e, srcs)
    {
        cs_jpath_push_key(&c->path, e->string);
        if ((rc = parse_pool_src(c, e, &pl->srcs[pl->n_srcs++])) != CS_OK) {
            return rc;
        }
        cs_jpath_pop(&c->path);
    }
    cs_jpath_pop(&c->path);
    cs_jpath_push_key(&c->path, "keep_out");
    cJSON_ArrayForEach(e, ko)
    {
        cs_jpath_push_index(&c->path, pl->n_keep_out);
        if ((rc = cs_json_as_string(c, e, &pl->keep_out[pl->n_keep_out])) != CS_OK) {
            return rc;
        }
        pl->n_keep_out++;
        cs_jpath_pop(&c->path);
    }
    cs_jpath_pop(&c->path);
    return CS_OK;
}

/* acdm's reference: resolved source objects (the table checked it is a non-empty list). */
static cs_rc parse_reference(cs_jctx *c, const cJSON *sel, cs_jobspec *js, cs_err *err)
{
    const cJSON *ref = cJSON_GetObjectItemCaseSensitive(sel, "reference"), *e;
    size_t i = 0;
    cs_rc rc;
    if (!cJSON_IsArray(ref)) {
        return CS_OK;
    }
    js->reference = cs_calloc_array((size_t)cJSON_GetArraySize(ref) + 1, sizeof(*js->reference));
    if (!js->reference) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cs_jpath_push_key(&c->path, "reference");
    cJSON_ArrayForEach(e, ref)
    {
        cs_jpath_push_index(&c->path, i++);
        if ((rc = parse_source(c, e, &js->reference[js->n_reference])) != CS_OK) {
            return rc;
        }
        if (strcmp(js->reference[js->n_reference].kind, "task") != 0) {
            return cs_jctx_error(c, e, NULL, "expected a source of kind \"task\", got \"%s\"",
                                 js->reference[js->n_reference].kind);
        }
        js->n_reference++;
        cs_jpath_pop(&c->path);
    }
    cs_jpath_pop(&c->path);
    return CS_OK;
}

/* calibration: null, or {"selector": {...}, "source": {...}|null}. */
static cs_rc parse_calibration(cs_jctx *c, const cJSON *cfg, cs_jobspec *js, cs_err *err)
{
    const cJSON *cal = NULL, *sel = NULL, *src;
    cs_mresolve r = {.dst = &js->sel};
    cs_rc rc;
    if ((rc = cs_json_opt_object(c, cfg, "calibration", &cal)) != CS_OK || !cal) {
        return rc;
    }
    js->has_calibration = true;
    cs_jpath_push_key(&c->path, "calibration");
    if ((rc = cs_json_req_object(c, cal, "selector", &sel)) != CS_OK) {
        return rc;
    }
    js->sel.n = (size_t)js->n_samples;
    js->sel.seed = (uint64_t)js->seed;
    js->sel.seq_len = (size_t)js->seq_len;
    cs_jpath_push_key(&c->path, "selector");
    if (!cs_method_resolve(c, sel, CS_MF_SELECTOR, &r)) {
        return r.oom ? cs_err_set(err, CS_ENOMEM, 0, "out of memory") : CS_ESCHEMA;
    }
    js->sel_md = r.md;
    if ((rc = parse_reference(c, sel, js, err)) != CS_OK) {
        return rc;
    }
    cs_jpath_pop(&c->path);
    src = cJSON_GetObjectItemCaseSensitive(cal, "source");
    js->has_source = src && !cJSON_IsNull(src);
    if (js->has_source) {
        cs_jpath_push_key(&c->path, "source");
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(src, "kind");
        js->is_pool = cJSON_IsString(kind) && strcmp(kind->valuestring, "pool") == 0;
        if (js->is_pool) {
            js->source.kind = "pool";
            js->source.path = "";
            if ((rc = cs_json_as_object(c, src)) != CS_OK ||
                (rc = parse_pool(c, src, &js->pool, err)) != CS_OK) {
                return rc;
            }
        } else if ((rc = parse_source(c, src, &js->source)) != CS_OK) {
            return rc;
        }
        cs_jpath_pop(&c->path);
    }
    cs_jpath_pop(&c->path);
    return CS_OK;
}

static cs_rc parse_model(cs_jctx *c, const cJSON *cfg, cs_jobspec *js)
{
    const cJSON *model = NULL;
    cs_rc rc;
    if ((rc = cs_json_req_object(c, cfg, "model", &model)) != CS_OK) {
        return rc;
    }
    cs_jpath_push_key(&c->path, "model");
    if ((rc = cs_json_req_string(c, model, "folder", &js->model.folder)) != CS_OK ||
        (rc = cs_json_opt_string(c, model, "arch", NULL, &js->model.arch)) != CS_OK) {
        return rc;
    }
    /* backend is checked by the runner, which names what it runs instead */
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(model, "backend");
    js->model.backend = cJSON_IsString(b) ? b->valuestring : NULL;
    cs_jpath_pop(&c->path);
    return CS_OK;
}

static cs_rc parse_tree(cs_jobspec *js, cs_err *err)
{
    const cJSON *cfg = js->doc, *extra = NULL;
    cs_mresolve r = {.dst = &js->algo};
    cs_jctx c;
    cs_rc rc;

    cs_jctx_init(&c, NULL, err);
    if (!cJSON_IsObject(cfg)) {
        return cs_err_set(err, CS_ESCHEMA, 0, "job config: expected a JSON object");
    }
    if ((rc = parse_sizes(&c, cfg, js)) != CS_OK || (rc = parse_eval(&c, cfg, js, err)) != CS_OK ||
        (rc = parse_model(&c, cfg, js)) != CS_OK) {
        return rc;
    }
    const cJSON *algo = cJSON_GetObjectItemCaseSensitive(cfg, "algorithm");
    if (!algo) {
        return cs_jctx_error(&c, cfg, NULL, "missing required key \"algorithm\"");
    }
    cs_jpath_push_key(&c.path, "algorithm");
    if (!cs_method_resolve(&c, algo, CS_MF_ALGORITHM, &r)) {
        return r.oom ? cs_err_set(err, CS_ENOMEM, 0, "out of memory") : CS_ESCHEMA;
    }
    js->algo_md = r.md;
    cs_jpath_pop(&c.path);
    if ((rc = parse_calibration(&c, cfg, js, err)) != CS_OK ||
        (rc = cs_json_opt_object(&c, cfg, "extra", &extra)) != CS_OK) {
        return rc;
    }
    js->extra = extra;
    return CS_OK;
}

static cs_rc parse_owned(cs_jobspec *js, cs_err *err)
{
    cs_rc rc = parse_tree(js, err);
    if (rc != CS_OK) {
        cs_jobspec_fini(js);
    }
    return rc;
}

cs_rc cs_jobspec_parse(const char *text, size_t len, const char *name, cs_jobspec *out, cs_err *err)
{
    cs_rc rc;
    memset(out, 0, sizeof(*out));
    if ((rc = cs_json_parse(text, len, name, &out->doc, err)) != CS_OK) {
        return rc;
    }
    return parse_owned(out, err);
}

cs_rc cs_jobspec_from_json(const cJSON *cfg, cs_jobspec *out, cs_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!(out->doc = cJSON_Duplicate(cfg, true))) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    return parse_owned(out, err);
}

void cs_jobspec_fini(cs_jobspec *js)
{
    if (!js) {
        return;
    }
    cJSON_Delete(js->doc);
    free(js->pool.srcs);
    free(js->pool.keep_out);
    free(js->reference);
    free(js->tasks);
    free(js->ppl);
    memset(js, 0, sizeof(*js));
}

/* ---- writing -------------------------------------------------------------------------------- */

static cJSON *source_json(const cs_jobspec_source *s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "kind", s->kind) ||
        !cJSON_AddStringToObject(o, "path", s->path) ||
        (s->text_field && !cJSON_AddStringToObject(o, "text_field", s->text_field))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *pool_json(const cs_jobspec_pool *pl)
{
    cJSON *o = cJSON_CreateObject(), *srcs = NULL, *ko = NULL, *size = NULL;
    bool ok = o && cJSON_AddStringToObject(o, "kind", "pool") &&
              cJSON_AddStringToObject(o, "composition", pl->composition) &&
              (srcs = cJSON_AddObjectToObject(o, "sources")) &&
              (ko = cJSON_AddArrayToObject(o, "keep_out"));
    if (ok && pl->multiple > 0) {
        ok = (size = cJSON_AddObjectToObject(o, "size")) &&
             cJSON_AddNumberToObject(size, "multiple", (double)pl->multiple);
    } else if (ok) {
        ok = cJSON_AddNumberToObject(o, "size", (double)pl->size) != NULL;
    }
    for (size_t i = 0; ok && i < pl->n_keep_out; i++) {
        ok = cJSON_AddItemToArray(ko, cJSON_CreateString(pl->keep_out[i]));
    }
    for (size_t i = 0; ok && i < pl->n_srcs; i++) {
        const cs_jobspec_pool_src *ps = &pl->srcs[i];
        cJSON *s = source_json(&ps->src);
        ok = s && cJSON_AddItemToObject(srcs, ps->name, s) &&
             (ps->quota > 0 ? cJSON_AddNumberToObject(s, "quota", (double)ps->quota)
                            : cJSON_AddNumberToObject(s, "weight", ps->weight)) &&
             (!ps->format || cJSON_AddStringToObject(s, "format", ps->format));
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *calibration_json(const cs_jobspec *js)
{
    cJSON *cal = cJSON_CreateObject(), *sel, *ref;
    if (!cal || !js->sel_md) {
        cJSON_Delete(cal);
        return NULL;
    }
    sel = cs_method_to_json(js->sel_md, &js->sel, false);
    if (!cs_json_add(cal, "selector", sel) ||
        !cs_json_add(cal, "source",
                     !js->has_source ? cJSON_CreateNull()
                     : js->is_pool   ? pool_json(&js->pool)
                                     : source_json(&js->source))) {
        cJSON_Delete(cal);
        return NULL;
    }
    if (js->reference) {
        if (!cs_json_add(sel, "reference", ref = cJSON_CreateArray())) {
            cJSON_Delete(cal);
            return NULL;
        }
        for (size_t i = 0; i < js->n_reference; i++) {
            cJSON *s = source_json(&js->reference[i]);
            if (!s || !cJSON_AddItemToArray(ref, s)) {
                cJSON_Delete(s);
                cJSON_Delete(cal);
                return NULL;
            }
        }
    }
    return cal;
}

static cJSON *eval_json(const cs_jobspec *js)
{
    cJSON *o = cJSON_CreateObject(), *t = NULL, *p = NULL;
    bool ok = o && (t = cJSON_AddObjectToObject(o, "tasks")) &&
              (p = cJSON_AddObjectToObject(o, "perplexity"));
    for (size_t i = 0; ok && i < js->n_tasks; i++) {
        const cs_jobspec_task *k = &js->tasks[i];
        cJSON *x = cJSON_AddObjectToObject(t, k->name);
        ok = x && cJSON_AddStringToObject(x, "path", k->path) &&
             cJSON_AddNumberToObject(x, "limit", (double)k->limit) &&
             cJSON_AddNumberToObject(x, "fewshot", (double)k->fewshot) &&
             cs_json_add(x, "fewshot_path",
                         k->fewshot_path ? cJSON_CreateString(k->fewshot_path)
                                         : cJSON_CreateNull());
    }
    for (size_t i = 0; ok && i < js->n_ppl; i++) {
        const cs_jobspec_ppl *k = &js->ppl[i];
        cJSON *x = cJSON_AddObjectToObject(p, k->name);
        ok = x && cJSON_AddStringToObject(x, "path", k->path) &&
             cJSON_AddNumberToObject(x, "seq_len", (double)k->seq_len) &&
             cJSON_AddNumberToObject(x, "max_windows", (double)k->max_windows);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *model_json(const cs_jobspec *js)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "folder", js->model.folder) ||
        (js->model.arch && !cJSON_AddStringToObject(o, "arch", js->model.arch)) ||
        (js->model.backend && !cJSON_AddStringToObject(o, "backend", js->model.backend))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *size_json(const cs_jobspec *js, int64_t v)
{
    return js->has_sizes ? cJSON_CreateNumber((double)v) : cJSON_CreateNull();
}

cs_rc cs_jobspec_write(const cs_jobspec *js, cs_buf *out, cs_err *err)
{
    cJSON *o = cJSON_CreateObject();
    bool ok = o && js->algo_md &&
              cs_json_add(o, "algorithm", cs_method_to_json(js->algo_md, &js->algo, false)) &&
              cs_json_add(o, "calibration",
                          js->has_calibration ? calibration_json(js) : cJSON_CreateNull()) &&
              cs_json_add(o, "eval", eval_json(js)) &&
              cs_json_add(o, "extra",
                          js->extra ? cJSON_Duplicate(js->extra, true) : cJSON_CreateObject()) &&
              cs_json_add(o, "model", model_json(js)) &&
              cs_json_add(o, "n_samples", size_json(js, js->n_samples)) &&
              cs_json_add(o, "seed", size_json(js, js->seed)) &&
              cs_json_add(o, "seq_len", size_json(js, js->seq_len));
    cs_rc rc = ok ? cs_canon_append(o, out, err) : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    cJSON_Delete(o);
    return rc;
}
