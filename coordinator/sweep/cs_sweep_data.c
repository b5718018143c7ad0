/* cs_sweep_data.c - the sections a sweep's grid refers to: models, data (sources and eval
 * suites), policy, and the algorithm and selector values (resolved with the table of
 * common/cs_methods.h). Part of the sweep parser (cs_sweep.c; shared state in cs_sweep_int.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_limits.h"
#include "cs_methods.h"
#include "cs_sweep.h"
#include "cs_sweep_int.h"

/* ---- models, data, policy ------------------------------------------------------------------- */

bool sw_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || (i > 0 && ch == '.');
        if (!ok) {
            return false;
        }
    }
    return true;
}

static void check_member_name(parser *p, const cJSON *item, const char *what)
{
    if (!sw_valid_name(item->string)) {
        cs_jctx_error(&p->c, item, item->string,
                      "%s names use letters, digits, '_', '-' and '.' (at most 64), got \"%s\"",
                      what, item->string);
    }
}

void sw_parse_models(parser *p, const cJSON *models)
{
    static const char *const keys[] = {"folder", "arch", "backend", "requires"};
    static const char *const req_keys[] = {"mem_mb", "gpus"};
    static const char *const archs[] = {"auto", "llama", "qwen2"};
    cs_sweep *s = p->s;
    size_t n = (size_t)cJSON_GetArraySize(models), i = 0;
    const cJSON *m;

    if (n == 0) {
        cs_jctx_error(&p->c, models, NULL, "expected at least one model");
        return;
    }
    s->models = cs_calloc_array(n, sizeof(*s->models));
    if (!s->models) {
        p->oom = CS_ENOMEM;
        return;
    }
    cJSON_ArrayForEach(m, models)
    {
        cs_sweep_model *md = &s->models[i++];
        const char *folder = NULL, *arch = "auto";
        const cJSON *backend, *req = NULL;
        cJSON *o = NULL;
        struct stat st;

        s->n_models = i;
        md->name = sw_dup(p, m->string);
        check_member_name(p, m, "model");
        cs_jpath_push_key(&p->c.path, m->string);
        if (cs_json_as_object(&p->c, m) != CS_OK) {
            cs_jpath_pop(&p->c.path);
            continue;
        }
        cs_json_check_keys(&p->c, m, keys, 4, CS_DIAG_ERROR);
        cs_json_req_string(&p->c, m, "folder", &folder);
        if (cs_json_opt_string(&p->c, m, "arch", "auto", &arch) == CS_OK &&
            strcmp(arch, "auto") != 0 && strcmp(arch, "llama") != 0 && strcmp(arch, "qwen2") != 0) {
            cs_jpath_push_key(&p->c.path, "arch");
            sw_unknown_name(p, cJSON_GetObjectItemCaseSensitive(m, "arch"), "architecture", arch,
                            archs, 3);
            cs_jpath_pop(&p->c.path);
        }
        md->arch = sw_dup(p, arch);
        md->folder = sw_dup(p, folder);
        if (folder && folder[0] == '\0') {
            cs_jctx_error(&p->c, m, "folder", "expected a folder, got an empty string");
        } else if (folder && (stat(folder, &st) != 0 || !S_ISDIR(st.st_mode))) {
            cs_jctx_warn(&p->c, m, NULL, "folder does not exist: %s", folder);
        }
        backend = cJSON_GetObjectItemCaseSensitive(m, "backend");
        if (backend && !cJSON_IsNull(backend)) {
            /* One contract: the sweep names the backend, the worker brings the command (its
             * --exec-template). A command template in the sweep would let anyone who can
             * submit run code on every worker. */
            cs_jpath_push_key(&p->c.path, "backend");
            if (cJSON_IsString(backend) && strcmp(backend->valuestring, "exec") == 0) {
                md->exec = true;
            } else if (cJSON_IsObject(backend)) {
                cs_jctx_error(&p->c, backend, NULL,
                              "expected \"native\" or \"exec\", got an object: a command "
                              "template in a sweep file is not run (anyone who can submit would "
                              "run it on every worker); write \"exec\" to run the command each "
                              "worker was started with (--exec-template)");
            } else if (!cJSON_IsString(backend) || strcmp(backend->valuestring, "native") != 0) {
                char d[64];
                cs_jctx_error(&p->c, backend, NULL, "expected \"native\" or \"exec\", got %s",
                              cs_json_describe(backend, d, sizeof(d)));
            }
            cs_jpath_pop(&p->c.path);
        }
        if (cs_json_opt_object(&p->c, m, "requires", &req) == CS_OK && req) {
            cs_jpath_push_key(&p->c.path, "requires");
            cs_json_check_keys(&p->c, req, req_keys, 2, CS_DIAG_ERROR);
            cs_json_opt_int(&p->c, req, "mem_mb", 0, 0, CS_LIMIT_MEM_MB, &md->mem_mb);
            cs_json_opt_int(&p->c, req, "gpus", 0, 0, CS_LIMIT_GPUS, &md->gpus);
            cs_jpath_pop(&p->c.path);
        }
        /* The model as it enters a job: what determines results, not scheduling hints. */
        o = cJSON_CreateObject();
        if (!o) {
            p->oom = CS_ENOMEM;
        } else {
            sw_add_or_oom(p, o, "folder", cJSON_CreateString(folder ? folder : ""));
            sw_add_or_oom(p, o, "arch", cJSON_CreateString(arch));
            sw_add_or_oom(p, o, "backend", cJSON_CreateString(md->exec ? "exec" : "native"));
            md->canon = sw_canon_of(p, o);
            cJSON_Delete(o);
        }
        cs_jpath_pop(&p->c.path);
    }
}

static void parse_sources(parser *p, const cJSON *sources)
{
    static const char *const keys[] = {"kind", "path", "text_field"};
    static const char *const kinds[] = {"jsonl", "text", "task"};
    cs_sweep *s = p->s;
    size_t n = (size_t)cJSON_GetArraySize(sources), i = 0;
    const cJSON *m;

    if (n == 0) {
        return;
    }
    s->sources = cs_calloc_array(n, sizeof(*s->sources));
    if (!s->sources) {
        p->oom = CS_ENOMEM;
        return;
    }
    cJSON_ArrayForEach(m, sources)
    {
        cs_sweep_source *src = &s->sources[i++];
        const char *kind = NULL, *path = NULL, *field = NULL;
        cJSON *o;

        s->n_sources = i;
        src->name = sw_dup(p, m->string);
        check_member_name(p, m, "source");
        cs_jpath_push_key(&p->c.path, m->string);
        if (cs_json_as_object(&p->c, m) != CS_OK) {
            cs_jpath_pop(&p->c.path);
            continue;
        }
        cs_json_check_keys(&p->c, m, keys, 3, CS_DIAG_ERROR);
        if (cs_json_req_string(&p->c, m, "kind", &kind) == CS_OK && strcmp(kind, "jsonl") != 0 &&
            strcmp(kind, "text") != 0 && strcmp(kind, "task") != 0) {
            cs_jpath_push_key(&p->c.path, "kind");
            sw_unknown_name(p, cJSON_GetObjectItemCaseSensitive(m, "kind"), "source kind", kind,
                            kinds, 3);
            cs_jpath_pop(&p->c.path);
            kind = NULL;
        }
        if (cs_json_req_string(&p->c, m, "path", &path) == CS_OK && path[0] == '\0') {
            cs_jctx_error(&p->c, m, "path", "expected a file, got an empty string");
        }
        cs_json_opt_string(&p->c, m, "text_field", NULL, &field);
        if (field && kind && strcmp(kind, "jsonl") != 0) {
            cs_jctx_error(&p->c, cJSON_GetObjectItemCaseSensitive(m, "text_field"), "text_field",
                          "only a \"jsonl\" source has a text field");
        }
        src->kind = sw_dup(p, kind ? kind : "");
        src->path = sw_dup(p, path ? path : "");
        o = cJSON_CreateObject();
        if (!o) {
            p->oom = CS_ENOMEM;
        } else {
            sw_add_or_oom(p, o, "kind", cJSON_CreateString(src->kind ? src->kind : ""));
            sw_add_or_oom(p, o, "path", cJSON_CreateString(src->path ? src->path : ""));
            if (kind && strcmp(kind, "jsonl") == 0) {
                sw_add_or_oom(p, o, "text_field", cJSON_CreateString(field ? field : "text"));
            }
            src->canon = sw_canon_of(p, o);
            cJSON_Delete(o);
        }
        cs_jpath_pop(&p->c.path);
    }
}

/* One eval suite: {"tasks": {name: {path, limit, fewshot, fewshot_path, headline}},
 * "perplexity": {name: {path, seq_len, max_windows}}, "limit", "fewshot"} -> canonical with the
 * limits folded in (ev->canon, what jobs get) and the tasks' headline metrics (ev->headline, a
 * reporting choice kept out of job configs so job keys do not depend on it). */
static void parse_eval_suite(parser *p, const cJSON *m, cs_sweep_eval *ev)
{
    static const char *const keys[] = {"tasks", "perplexity", "limit", "fewshot"};
    static const char *const task_keys[] = {"path", "limit", "fewshot", "fewshot_path", "headline"};
    static const char *const headlines[] = {"acc", "acc_norm", "acc_bytes", "exact_match",
                                            "exact_match_flex"};
    static const char *const ppl_keys[] = {"path", "seq_len", "max_windows"};
    const cJSON *tasks = NULL, *ppl = NULL, *t;
    int64_t limit = 0, fewshot = 0;
    cJSON *o = NULL, *ot = NULL, *op = NULL, *oh = cJSON_CreateObject();

    cs_json_check_keys(&p->c, m, keys, 4, CS_DIAG_ERROR);
    cs_json_opt_int(&p->c, m, "limit", 0, 0, CS_LIMIT_EVAL_ITEMS, &limit);
    cs_json_opt_int(&p->c, m, "fewshot", 0, 0, CS_LIMIT_FEWSHOT, &fewshot);
    cs_json_opt_object(&p->c, m, "tasks", &tasks);
    cs_json_opt_object(&p->c, m, "perplexity", &ppl);
    if (cJSON_GetArraySize(tasks) == 0 && cJSON_GetArraySize(ppl) == 0) {
        cs_jctx_error(&p->c, m, NULL, "an eval suite needs at least one task or perplexity text");
    }
    o = cJSON_CreateObject();
    ot = cJSON_CreateObject();
    op = cJSON_CreateObject();
    if (!o || !ot || !op) {
        p->oom = CS_ENOMEM;
        goto out;
    }
    if (tasks) {
        cs_jpath_push_key(&p->c.path, "tasks");
        cJSON_ArrayForEach(t, tasks)
        {
            const char *path = NULL, *fpath = NULL, *head = NULL;
            int64_t tl = limit, tf = fewshot;
            cJSON *x = cJSON_CreateObject();
            check_member_name(p, t, "task");
            cs_jpath_push_key(&p->c.path, t->string);
            if (cs_json_as_object(&p->c, t) == CS_OK) {
                cs_json_check_keys(&p->c, t, task_keys, 5, CS_DIAG_ERROR);
                cs_json_req_string(&p->c, t, "path", &path);
                cs_json_opt_int(&p->c, t, "limit", limit, 0, CS_LIMIT_EVAL_ITEMS, &tl);
                cs_json_opt_int(&p->c, t, "fewshot", fewshot, 0, CS_LIMIT_FEWSHOT, &tf);
                cs_json_opt_string(&p->c, t, "fewshot_path", NULL, &fpath);
                /* "headline": a reporting choice (calsweep results), never part of the job */
                if (cs_json_opt_string(&p->c, t, "headline", NULL, &head) == CS_OK && head) {
                    bool known = false;
                    for (size_t k = 0; k < sizeof(headlines) / sizeof(*headlines); k++) {
                        known = known || strcmp(head, headlines[k]) == 0;
                    }
                    if (!known) {
                        cs_jctx_error(&p->c, t, "headline",
                                      "unknown headline metric \"%s\"; one of acc, acc_norm, "
                                      "acc_bytes, exact_match, exact_match_flex",
                                      head);
                        head = NULL;
                    }
                }
                if (tf > 0 && !fpath) {
                    cs_jctx_error(&p->c, t, NULL,
                                  "fewshot is %lld but no \"fewshot_path\" gives the shots",
                                  (long long)tf);
                }
            }
            if (x) {
                sw_add_or_oom(p, x, "path", cJSON_CreateString(path ? path : ""));
                sw_add_or_oom(p, x, "limit", cJSON_CreateNumber((double)tl));
                sw_add_or_oom(p, x, "fewshot", cJSON_CreateNumber((double)tf));
                sw_add_or_oom(p, x, "fewshot_path",
                              fpath ? cJSON_CreateString(fpath) : cJSON_CreateNull());
            }
            sw_add_or_oom(p, ot, t->string, x);
            if (head && oh) {
                sw_add_or_oom(p, oh, t->string, cJSON_CreateString(head));
            }
            cs_jpath_pop(&p->c.path);
        }
        cs_jpath_pop(&p->c.path);
    }
    if (ppl) {
        cs_jpath_push_key(&p->c.path, "perplexity");
        cJSON_ArrayForEach(t, ppl)
        {
            const char *path = NULL;
            int64_t sl = 2048, mw = 0;
            cJSON *x = cJSON_CreateObject();
            check_member_name(p, t, "perplexity text");
            cs_jpath_push_key(&p->c.path, t->string);
            if (cs_json_as_object(&p->c, t) == CS_OK) {
                cs_json_check_keys(&p->c, t, ppl_keys, 3, CS_DIAG_ERROR);
                cs_json_req_string(&p->c, t, "path", &path);
                cs_json_opt_int(&p->c, t, "seq_len", 2048, 2, CS_LIMIT_SEQ_LEN, &sl);
                cs_json_opt_int(&p->c, t, "max_windows", 0, 0, CS_LIMIT_PPL_WINDOWS, &mw);
            }
            if (x) {
                sw_add_or_oom(p, x, "path", cJSON_CreateString(path ? path : ""));
                sw_add_or_oom(p, x, "seq_len", cJSON_CreateNumber((double)sl));
                sw_add_or_oom(p, x, "max_windows", cJSON_CreateNumber((double)mw));
            }
            sw_add_or_oom(p, op, t->string, x);
            cs_jpath_pop(&p->c.path);
        }
        cs_jpath_pop(&p->c.path);
    }
    sw_add_or_oom(p, o, "tasks", ot);
    sw_add_or_oom(p, o, "perplexity", op);
    ot = op = NULL;
    ev->canon = sw_canon_of(p, o);
    if (oh) {
        ev->headline = sw_canon_of(p, oh);
    } else {
        p->oom = CS_ENOMEM;
    }
out:
    cJSON_Delete(oh);
    cJSON_Delete(o);
    cJSON_Delete(ot);
    cJSON_Delete(op);
}

void sw_parse_data(parser *p, const cJSON *data)
{
    static const char *const keys[] = {"sources", "pools", "eval"};
    const cJSON *sources = NULL, *eval = NULL, *pools = NULL, *m;
    cs_sweep *s = p->s;
    size_t i = 0, n;

    cs_json_check_keys(&p->c, data, keys, 3, CS_DIAG_ERROR);
    if (cs_json_opt_object(&p->c, data, "sources", &sources) == CS_OK && sources) {
        cs_jpath_push_key(&p->c.path, "sources");
        parse_sources(p, sources);
        cs_jpath_pop(&p->c.path);
    }
    if (cs_json_req_object(&p->c, data, "eval", &eval) != CS_OK) {
        return;
    }
    cs_jpath_push_key(&p->c.path, "eval");
    n = (size_t)cJSON_GetArraySize(eval);
    if (n == 0) {
        cs_jctx_error(&p->c, eval, NULL,
                      "expected at least one named eval suite, e.g. {\"default\": {\"tasks\": "
                      "{...}}}");
    } else {
        s->evals = cs_calloc_array(n, sizeof(*s->evals));
        if (!s->evals) {
            p->oom = CS_ENOMEM;
            n = 0;
        }
    }
    if (n > 0) {
        cJSON_ArrayForEach(m, eval)
        {
            cs_sweep_eval *ev = &s->evals[i++];
            s->n_evals = i;
            ev->name = sw_dup(p, m->string);
            check_member_name(p, m, "eval suite");
            cs_jpath_push_key(&p->c.path, m->string);
            if (cs_json_as_object(&p->c, m) == CS_OK) {
                parse_eval_suite(p, m, ev);
            }
            cs_jpath_pop(&p->c.path);
        }
    }
    cs_jpath_pop(&p->c.path);
    if (cs_json_opt_object(&p->c, data, "pools", &pools) == CS_OK && pools) {
        cs_jpath_push_key(&p->c.path, "pools");
        sw_parse_pools(p, pools, eval);
        cs_jpath_pop(&p->c.path);
    }
}

void sw_parse_policy(parser *p, const cJSON *pol)
{
    static const char *const keys[] = {"max_attempts", "backoff_s",   "backoff_max_s", "timeout_s",
                                       "priority",     "max_running", "on_failure"};
    cs_policy *po = &p->s->policy;
    int64_t v;
    const char *onf = "continue";

    if (!pol) {
        return;
    }
    cs_jpath_push_key(&p->c.path, "policy");
    cs_json_check_keys(&p->c, pol, keys, 7, CS_DIAG_ERROR);
    cs_json_opt_int(&p->c, pol, "max_attempts", 3, 1, CS_LIMIT_ATTEMPTS, &v);
    po->max_attempts = (int)v;
    cs_json_opt_number(&p->c, pol, "backoff_s", 30, 0, CS_LIMIT_BACKOFF_S, &po->backoff_base_s);
    cs_json_opt_number(&p->c, pol, "backoff_max_s", 3600, 0, CS_LIMIT_BACKOFF_MAX_S,
                       &po->backoff_max_s);
    if (po->backoff_max_s < po->backoff_base_s) {
        cs_jctx_error(&p->c, cJSON_GetObjectItemCaseSensitive(pol, "backoff_max_s"),
                      "backoff_max_s", "must be at least backoff_s (%g), got %g",
                      po->backoff_base_s, po->backoff_max_s);
    }
    cs_json_opt_int(&p->c, pol, "timeout_s", 0, 0, CS_LIMIT_TIMEOUT_S, &po->timeout_s);
    cs_json_opt_int(&p->c, pol, "priority", 0, -CS_LIMIT_PRIORITY, CS_LIMIT_PRIORITY, &v);
    po->priority = (int)v;
    cs_json_opt_int(&p->c, pol, "max_running", 0, 0, CS_LIMIT_MAX_RUNNING, &v);
    po->max_running = (int)v;
    if (cs_json_opt_string(&p->c, pol, "on_failure", "continue", &onf) == CS_OK) {
        if (strcmp(onf, "stop") == 0) {
            po->stop_on_failure = true;
        } else if (strcmp(onf, "continue") != 0) {
            cs_jctx_error(&p->c, cJSON_GetObjectItemCaseSensitive(pol, "on_failure"), "on_failure",
                          "expected \"continue\" or \"stop\", got \"%s\"", onf);
        }
    }
    cs_jpath_pop(&p->c.path);
}

/* ---- algorithm and selector values ------------------------------------------------------- */

static int source_ref_cmp(const void *a, const void *b)
{
    const cs_sweep_source *x = *(const cs_sweep_source *const *)a;
    const cs_sweep_source *y = *(const cs_sweep_source *const *)b;
    int c = strcmp(x->name ? x->name : "", y->name ? y->name : "");
    return c != 0 ? c : (x > y) - (x < y);
}

/* Indices of s->sources sorted by name (bytes, as canonical JSON sorts keys): owned, or NULL on
 * OOM (then p->oom is set). */
static size_t *sources_by_name(parser *p)
{
    const cs_sweep *s = p->s;
    const cs_sweep_source **refs = cs_calloc_array(s->n_sources + 1, sizeof(*refs));
    size_t *idx = cs_calloc_array(s->n_sources + 1, sizeof(*idx));
    if (!refs || !idx) {
        free(refs);
        free(idx);
        p->oom = CS_ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < s->n_sources; i++) {
        refs[i] = &s->sources[i];
    }
    qsort(refs, s->n_sources, sizeof(*refs), source_ref_cmp);
    for (size_t i = 0; i < s->n_sources; i++) {
        idx[i] = (size_t)(refs[i] - s->sources);
    }
    free(refs);
    return idx;
}

/* acdm's "reference" (a TASKS parameter of the table): the named sources of kind "task", or all
 * of them, as resolved source objects into o under key. */
static bool resolve_tasks(void *ctx, cs_jctx *c, const cJSON *obj, const cJSON *v, const char *key,
                          cJSON *o)
{
    parser *p = ctx;
    cs_sweep *s = p->s;
    size_t before = c->n_errors;
    cJSON *arr = NULL;
    size_t n_added = 0, *order = NULL;
    bool *named = NULL;
    if (v) {
        const cJSON *e;
        size_t i = 0;
        if (cs_json_as_array(&p->c, v) == CS_OK) {
            cJSON_ArrayForEach(e, v)
            {
                const char *nm = NULL;
                size_t k;
                cs_jpath_push_index(&p->c.path, i++);
                if (cs_json_as_string(&p->c, e, &nm) == CS_OK) {
                    k = sw_lookup_name(p, NAMES_SOURCES, s->sources, s->n_sources,
                                       sizeof(*s->sources), nm);
                    if (k == SIZE_MAX) {
                        const char *names[64];
                        size_t nn = 0;
                        for (size_t j = 0; j < s->n_sources && nn < 64; j++) {
                            names[nn++] = s->sources[j].name;
                        }
                        sw_unknown_name(p, e, "source", nm, names, nn);
                    } else if (strcmp(s->sources[k].kind, "task") != 0) {
                        cs_jctx_error(&p->c, e, NULL,
                                      "source \"%s\" is of kind \"%s\"; reference sets are "
                                      "sources of kind \"task\"",
                                      nm, s->sources[k].kind);
                    }
                }
                cs_jpath_pop(&p->c.path);
            }
        }
    }
    arr = cJSON_CreateArray();
    if (!arr) {
        p->oom = CS_ENOMEM;
        return false;
    }
    /* The sources named (or every task source) as resolved objects, in the order of their
     * names: the order calsweepd always used (it resolves the canonical text, whose members
     * are sorted), so the keys of stored jobs stay as they are, whatever order the file
     * writes data.sources or the list in. */
    order = sources_by_name(p);
    named = v && cJSON_IsArray(v) ? cs_calloc_array(s->n_sources + 1, sizeof(*named)) : NULL;
    if (v && cJSON_IsArray(v)) {
        const cJSON *e;
        if (!named) {
            p->oom = CS_ENOMEM;
        }
        cJSON_ArrayForEach(e, v)
        {
            size_t k = cJSON_IsString(e) && named
                               ? sw_lookup_name(p, NAMES_SOURCES, s->sources, s->n_sources,
                                                sizeof(*s->sources), e->valuestring)
                               : SIZE_MAX;
            if (k != SIZE_MAX) {
                named[k] = true;
            }
        }
    }
    for (size_t oi = 0; order && oi < s->n_sources; oi++) {
        size_t k = order[oi];
        bool take;
        if (!s->sources[k].kind || strcmp(s->sources[k].kind, "task") != 0) {
            continue;
        }
        take = !v || !cJSON_IsArray(v) || (named && named[k]);
        if (take && s->sources[k].canon) {
            cJSON *src = cJSON_Parse(s->sources[k].canon);
            if (!src || !cJSON_AddItemToArray(arr, src)) {
                cJSON_Delete(src);
                p->oom = CS_ENOMEM;
            }
            n_added++;
        }
    }
    free(order);
    free(named);
    if (n_added == 0 && (!v || cJSON_GetArraySize(v) == 0)) {
        cs_jctx_error(&p->c, v ? v : obj, NULL,
                      "needs task reference sets: add a source of kind \"task\" to "
                      "data.sources");
    }
    if (!cJSON_AddItemToObject(o, key, arr)) {
        cJSON_Delete(arr);
        p->oom = CS_ENOMEM;
    }
    return c->n_errors == before;
}

/* "gptq" or "gptq(bits=3,group_size=64)": the name and the parameters written in the file. */
static char *method_text(parser *p, const char *name, const cJSON *obj)
{
    cs_buf b = {0};
    const cJSON *kv;
    size_t n = 0;
    cs_rc rc = cs_buf_puts(&b, name);
    cJSON_ArrayForEach(kv, obj)
    {
        char *val;
        if (strcmp(kv->string, "name") == 0) {
            continue;
        }
        val = cJSON_PrintUnformatted(kv);
        rc |= cs_buf_printf(&b, "%s%s=%s", n++ ? "," : "(", kv->string, val ? val : "?");
        free(val);
    }
    if (n > 0) {
        rc |= cs_buf_putc(&b, ')');
    }
    if (rc != CS_OK || !b.data) {
        cs_buf_fini(&b);
        p->oom = CS_ENOMEM;
        return NULL;
    }
    return cs_buf_take(&b);
}

/* Resolves an algorithm or selector value (a name or an object with "name" and parameters) into
 * val with the table (common/cs_methods.h). Returns false after reporting a problem. */
bool sw_resolve_method(parser *p, const cJSON *v, cs_mfamily f, cs_axis_value *val)
{
    size_t n_before = p->c.n_errors;
    cs_mresolve r = {.tasks = resolve_tasks, .tasks_ctx = p, .out = cJSON_CreateObject()};

    if (!r.out) {
        p->oom = CS_ENOMEM;
        return false;
    }
    cs_method_resolve(&p->c, v, f, &r);
    if (r.oom) {
        p->oom = CS_ENOMEM;
    }
    if (r.md) {
        val->flags = r.md->flags;
    }
    if (r.md && p->c.n_errors == n_before) {
        val->canon = sw_canon_of(p, r.out);
        val->label = val->canon ? sw_dup(p, val->canon) : NULL;
        val->text = method_text(p, r.md->name, cJSON_IsObject(v) ? v : NULL);
    }
    cJSON_Delete(r.out);
    return r.md && p->c.n_errors == n_before;
}
