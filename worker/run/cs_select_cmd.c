/* run: `calsweep-run select` (cs_select_cmd.h). */
#include "cs_select_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cs_alloc.h"
#include "cs_cache.h"
#include "cs_calib.h"
#include "cs_limits.h"
#include "cs_model.h"
#include "cs_opt.h"
#include "cs_path.h"
#include "cs_pstat.h"
#include "cs_select.h"
#include "cs_source.h"
#include "cs_tok.h"

enum {
    SEL_HELP,
    SEL_THREADS,
    SEL_SOURCE,
    SEL_SELECTOR,
    SEL_N,
    SEL_SEQ_LEN,
    SEL_SEED,
    SEL_EVAL,
    SEL_JSON,
    SEL_COMPOSE,
    SEL_POOL,
    SEL_FORMAT,
    SEL_NO_BOS,
    SEL_REFERENCE,
    SEL_CACHE_DIR,
};

static const cs_opt sel_options[] = {
        {"help", 'h', CS_OPT_NONE, SEL_HELP, NULL, "show this help and exit"},
        {"threads", 't', CS_OPT_VALUE, SEL_THREADS, "N", "threads (default 1)"},
        {"source", 's', CS_OPT_VALUE, SEL_SOURCE, "NAME[@Q]=FILE[:FIELD]",
         "a source (repeatable): .jsonl or .jsonl.gz (FIELD, default \"text\"; a task file when "
         "its lines "
         "have \"task\"), else plain text (documents separated by blank lines); @Q = quota"},
        {"selector", 'S', CS_OPT_VALUE, SEL_SELECTOR, "NAME|JSON",
         "random, self_calibration, self_gen, zipcal, ppl_rank, cola, acdm, covercal, or "
         "{\"name\":..., params} (default random)"},
        {"reference", 'r', CS_OPT_VALUE, SEL_REFERENCE, "NAME=FILE",
         "acdm: a task's reference items, a task file (.train.jsonl or .ref.jsonl; repeatable, "
         "one per task)"},
        {"cache-dir", 0, CS_OPT_VALUE, SEL_CACHE_DIR, "DIR",
         "cache of pool statistics (ppl, cola, acdm, covercal; default $CALSWEEP_CACHE_DIR, "
         "else none)"},
        {"n", 'n', CS_OPT_VALUE, SEL_N, "N", "items to select (default: the selector's, 128)"},
        {"seq-len", 'L', CS_OPT_VALUE, SEL_SEQ_LEN, "N",
         "tokens per pool item / generated sequence (default: zipcal 128, self_calibration and "
         "self_gen 2048, others 512)"},
        {"seed", 0, CS_OPT_VALUE, SEL_SEED, "N", "seed of the pool and the selector (default 0)"},
        {"pool", 'p', CS_OPT_VALUE, SEL_POOL, "N", "candidate pool size (default 1000)"},
        {"compose", 0, CS_OPT_VALUE, SEL_COMPOSE, "MODE",
         "random_windows (default), concat, per_doc, doc_windows (GPTQ's C4) or awq_concat (AWQ's "
         "pile-val)"},
        {"format", 0, CS_OPT_VALUE, SEL_FORMAT, "F", "task sources: text (default) or qa"},
        {"no-bos", 0, CS_OPT_NONE, SEL_NO_BOS, NULL, "do not start pool items with BOS"},
        {"eval", 'e', CS_OPT_VALUE, SEL_EVAL, "FILE",
         "evaluation task file (repeatable): refuse any overlap with the sources"},
        {"json", 0, CS_OPT_NONE, SEL_JSON, NULL,
         "print one JSON object: pool record, ids, diagnostics (and generated tokens)"},
};
#define N_SEL_OPTS (sizeof sel_options / sizeof sel_options[0])
#define SEL_PARAM  1000 /* and on: the selectors' parameters (sel_flags) */

/* select's options: sel_options, then --KEY V for every selector parameter of the table. */
static cs_mflags sel_flags;
#define MAX_SRC 32

typedef struct sel_args {
    const char *model, *selector, *cache_dir;
    cs_calib_source src[MAX_SRC];
    char *src_buf[MAX_SRC];
    size_t n_src;
    cs_calib_source ref[MAX_SRC];
    char *ref_buf[MAX_SRC];
    size_t n_ref;
    const char *eval[MAX_SRC];
    size_t n_eval;
    int64_t threads, n, seq_len, seed, pool;
    bool json, has_n, has_seed, has_seq_len;
    cs_calib_compose compose;
    cs_calib_format format;
    bool no_bos;
} sel_args;

/* NAME[@Q]=FILE[:FIELD] */
static cs_rc parse_source(sel_args *a, const char *arg, cs_err *err)
{
    if (a->n_src == MAX_SRC) {
        return cs_err_set(err, CS_ERANGE, 0, "at most %d --source", MAX_SRC);
    }
    char *s = cs_strdup(arg), *eq = s ? strchr(s, '=') : NULL;
    if (!s) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    a->src_buf[a->n_src] = s;
    if (!eq || eq == s || !eq[1]) {
        return cs_err_set(err, CS_EINVAL, 0, "--source '%s': expected NAME=FILE[:FIELD]", arg);
    }
    *eq = '\0';
    cs_calib_source *c = &a->src[a->n_src++];
    memset(c, 0, sizeof(*c));
    char *at = strchr(s, '@');
    if (at) {
        int64_t q;
        *at = '\0';
        cs_rc rc = cs_parse_i64(at + 1, 1, 1 << 24, &q, "--source quota", err);
        if (rc != CS_OK) {
            return rc;
        }
        c->quota = (size_t)q;
    }
    c->name = s;
    c->path = eq + 1;
    char *colon = strrchr(eq + 1, ':');
    if (colon && strchr(colon, '/') == NULL && colon[1]) {
        *colon = '\0';
        c->text_field = colon + 1;
    }
    size_t n = strlen(c->path);
    bool gz = n > 3 && strcmp(c->path + n - 3, ".gz") == 0; /* read through gzip (cs_docs.h) */
    n -= gz ? 3 : 0;
    if (n > 6 && strncmp(c->path + n - 6, ".jsonl", 6) == 0) {
        c->kind = "jsonl";
        if (!c->text_field && !gz) {
            /* a task file when its first line has "task" */
            FILE *f = fopen(c->path, "r");
            char line[4096];
            if (f && fgets(line, sizeof line, f) && strstr(line, "\"task\"")) {
                c->kind = "task";
            }
            if (f) {
                fclose(f);
            }
        }
    } else {
        c->kind = "text";
    }
    return CS_OK;
}

/* NAME=FILE, a task file */
static cs_rc parse_reference(sel_args *a, const char *arg, cs_err *err)
{
    if (a->n_ref == MAX_SRC) {
        return cs_err_set(err, CS_ERANGE, 0, "at most %d --reference", MAX_SRC);
    }
    char *s = cs_strdup(arg), *eq = s ? strchr(s, '=') : NULL;
    if (!s) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    a->ref_buf[a->n_ref] = s;
    if (!eq || eq == s || !eq[1]) {
        return cs_err_set(err, CS_EINVAL, 0, "--reference '%s': expected NAME=FILE", arg);
    }
    *eq = '\0';
    a->ref[a->n_ref++] = (cs_calib_source){.kind = "task", .path = eq + 1, .name = s};
    return CS_OK;
}

static void sel_usage(void)
{
    printf("usage: calsweep-run select MODEL --source NAME=FILE[:FIELD] ... [--selector "
           "NAME|JSON]\n       [--n N] [--seq-len L] [--seed S] [--eval FILE ...] "
           "[--reference NAME=FILE ...]\n       [--cache-dir DIR] [--json]\n\nBuilds a "
           "candidate pool of --pool items of --seq-len tokens from the sources and runs\n"
           "a calibration-data selector on it; prints the chosen ids, one a line "
           "(generated\nsequences: \"gen:K\" and their tokens). Progress goes to standard "
           "error.\nacdm needs --reference (one per task); the reference files must be "
           "disjoint from\nthe sources and from the --eval files.\n\noptions:\n");
    cs_opt_print_help(stdout, sel_flags.opts, sel_flags.n_opts);
}

/* One option of select (not --help, not the MODEL) into a. */
static cs_rc take_sel_option(sel_args *a, int id, const char *arg, cs_err *err)
{
    cs_rc rc = CS_OK;
    switch (id) {
    case SEL_THREADS:
        rc = cs_parse_i64(arg, 1, 256, &a->threads, "--threads", err);
        break;
    case SEL_SOURCE:
        rc = parse_source(a, arg, err);
        break;
    case SEL_SELECTOR:
        a->selector = arg;
        break;
    case SEL_N:
        rc = cs_parse_i64(arg, 1, 1 << 24, &a->n, "--n", err);
        a->has_n = true;
        break;
    case SEL_SEQ_LEN:
        rc = cs_parse_i64(arg, 2, CS_LIMIT_SEQ_LEN, &a->seq_len, "--seq-len", err);
        a->has_seq_len = true;
        break;
    case SEL_SEED:
        rc = cs_parse_i64(arg, 0, INT64_MAX, &a->seed, "--seed", err);
        a->has_seed = true;
        break;
    case SEL_POOL:
        rc = cs_parse_i64(arg, 1, 1 << 24, &a->pool, "--pool", err);
        break;
    case SEL_COMPOSE:
        rc = cs_calib_compose_parse(arg, &a->compose, err);
        break;
    case SEL_FORMAT:
        if (strcmp(arg, "text") == 0 || strcmp(arg, "plain") == 0 || strcmp(arg, "qa") == 0) {
            a->format = arg[0] == 'q' ? CS_CALIB_FMT_QA : CS_CALIB_FMT_PLAIN;
        } else {
            rc = cs_err_set(err, CS_EINVAL, 0, "--format '%s': expected text or qa", arg);
        }
        break;
    case SEL_NO_BOS:
        a->no_bos = true;
        break;
    case SEL_REFERENCE:
        rc = parse_reference(a, arg, err);
        break;
    case SEL_CACHE_DIR:
        a->cache_dir = arg;
        break;
    case SEL_EVAL:
        rc = cs_opt_append(a->eval, &a->n_eval, MAX_SRC, arg, "--eval", err);
        break;
    case SEL_JSON:
        a->json = true;
        break;
    default:
        cs_mflags_take(&sel_flags, id, arg);
        break;
    }
    return rc;
}

static int parse_args(int argc, char **argv, sel_args *a)
{
    cs_opt_parser p;
    cs_err err = {0};
    int id;
    const char *arg;
    cs_rc rc;
    cs_opt_init(&p, argc, argv, 2);
    cs_mflags_init(&sel_flags, CS_MF_SELECTOR, sel_options, N_SEL_OPTS, SEL_PARAM);
    while ((rc = cs_opt_next(&p, sel_flags.opts, sel_flags.n_opts, &id, &arg, &err)) == CS_OK) {
        if (id == SEL_HELP) {
            sel_usage();
            return CS_EXIT_OK;
        }
        if (id == CS_OPT_POSITIONAL) {
            rc = a->model ? cs_err_set(&err, CS_EINVAL, 0, "unexpected argument '%s'", arg) : CS_OK;
            a->model = arg;
        } else {
            rc = take_sel_option(a, id, arg, &err);
        }
        if (rc != CS_OK) {
            break;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep-run select: %s (see --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    if (!a->model) {
        fprintf(stderr, "calsweep-run select: missing MODEL (a Hugging Face model folder)\n");
        return CS_EXIT_USAGE;
    }
    return -1;
}

static void progress(void *ctx, const char *stage, size_t done, size_t total)
{
    (void)ctx;
    if (done == total || done % 16 == 0) {
        fprintf(stderr, "select: %s %zu/%zu\n", stage, done, total);
    }
}

static cJSON *tokens_json(const cs_calib_item *it)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t t = 0; a && t < it->n_tokens; t++) {
        cJSON *x = cJSON_CreateNumber(it->tokens[t]);
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

static cs_rc print_json(const sel_args *a, const cs_calib_pool *pool,
                        const cs_calib_compose_opts *co, const cs_calib_selection *s, cs_err *err)
{
    cJSON *j = cJSON_CreateObject(), *ids = cJSON_CreateArray(), *gen = NULL;
    cJSON *pj = pool->n ? cs_calib_pool_describe(pool, a->src, a->n_src, co) : cJSON_CreateNull();
    bool ok = j && ids && pj && cJSON_AddItemToObject(j, "pool", pj);
    if (!ok) {
        cJSON_Delete(pj);
    }
    ok = ok && cJSON_AddItemToObject(j, "ids", ids);
    if (!ok) {
        cJSON_Delete(ids);
    }
    if (ok && s->generated) {
        gen = cJSON_AddArrayToObject(j, "generated");
        ok = gen != NULL;
    }
    for (size_t k = 0; ok && k < s->n; k++) {
        const char *id = s->generated ? s->generated[k].id : pool->items[s->index[k]].id;
        cJSON *x = cJSON_CreateString(id);
        ok = x && cJSON_AddItemToArray(ids, x);
        if (ok && gen) {
            cJSON *t = tokens_json(&s->generated[k]);
            ok = t && cJSON_AddItemToArray(gen, t);
        }
    }
    ok = ok && cJSON_AddItemReferenceToObject(j, "diag", s->diag);
    char *txt = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!txt) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    printf("%s\n", txt);
    free(txt);
    return CS_OK;
}

/* The selector's parameters from --selector, its parameter flags, --n, --seed and --seq-len; -1 to
 * go on, else an exit code (a usage error has been printed). */
static int select_params(sel_args *a, cs_select_params *sp)
{
    cs_err err = {0};
    cJSON *o = NULL;
    cs_rc rc = cs_mflags_apply(&sel_flags, a->selector ? a->selector : "random", "--selector", &o,
                               &err);
    cs_select_params_default(sp, CS_SEL_RANDOM);
    if (rc == CS_OK) {
        rc = cs_select_params_parse(o, "selector", true, sp, &err);
    }
    cJSON_Delete(o);
    if (rc != CS_OK) {
        fprintf(stderr, "calsweep-run select: %s\n", err.msg);
        return CS_EXIT_USAGE;
    }
    if (a->has_n) {
        sp->n = (size_t)a->n;
    }
    if (a->has_seed) {
        sp->seed = (uint64_t)a->seed;
    }
    /* --seq-len sets the pool's item length and the generated length; without it: ZipCal's
     * L = 128, the generating selectors' 2048, else 512 */
    if (a->has_seq_len) {
        sp->seq_len = (size_t)a->seq_len;
    } else if (sp->kind == CS_SEL_ZIPCAL) {
        a->seq_len = 128;
    } else if (sp->kind == CS_SEL_SELF_CALIBRATION || sp->kind == CS_SEL_SELF_GEN) {
        a->seq_len = (int64_t)sp->seq_len;
    }
    if (sp->kind != CS_SEL_SELF_CALIBRATION && a->n_src == 0) {
        fprintf(stderr, "calsweep-run select: selector %s needs at least one --source\n",
                cs_select_name(sp->kind));
        return CS_EXIT_USAGE;
    }
    return -1;
}

/* The chosen ids, one a line (generated sequences with their tokens), or --json's record. */
static cs_rc print_selection(const sel_args *a, const cs_calib_pool *pool,
                             const cs_calib_compose_opts *co, const cs_calib_selection *sel,
                             cs_err *err)
{
    if (a->json) {
        return print_json(a, pool, co, sel, err);
    }
    for (size_t k = 0; k < sel->n; k++) {
        if (sel->generated) {
            printf("%s", sel->generated[k].id);
            for (size_t t = 0; t < sel->generated[k].n_tokens; t++) {
                printf(" %d", (int)sel->generated[k].tokens[t]);
            }
            printf("\n");
        } else {
            printf("%s\n", pool->items[sel->index[k]].id);
        }
    }
    return CS_OK;
}

int cs_cmd_select(int argc, char **argv)
{
    sel_args a;
    cs_err err = {0};
    cs_tok *tok = NULL;
    cs_model *m = NULL;
    cs_calib_pool pool = {0}, ref = {0};
    cs_calib_selection sel = {0};
    cs_pstat_ctx stats = {0};
    char model_id[CS_CACHE_KEY_LEN + 1];
    cs_select_params sp;
    cs_calib_compose_opts co;
    int code = CS_EXIT_FAIL;
    cs_rc rc = CS_OK;
    memset(&a, 0, sizeof a);
    a.threads = 1;
    a.seq_len = 512;
    a.pool = 1000;
    int pc = parse_args(argc, argv, &a);
    if (pc >= 0) {
        code = pc;
        goto cleanup;
    }
    if ((pc = select_params(&a, &sp)) >= 0) {
        code = pc;
        goto cleanup;
    }
    for (size_t i = 0; i < a.n_src; i++) {
        a.src[i].format = a.format;
    }
    openblas_set_num_threads((int)a.threads);
    {
        cs_buf tp;
        cs_buf_init(&tp);
        rc = cs_buf_printf(&tp, "%s/tokenizer.json", a.model) == CS_OK
                     ? cs_tok_load(&tok, tp.data, &err)
                     : cs_err_set(&err, CS_ENOMEM, 0, "out of memory");
        cs_buf_fini(&tp);
    }
    bool need_model = sp.kind != CS_SEL_RANDOM && !(sp.kind == CS_SEL_ZIPCAL && a.n_src < 2);
    if (rc == CS_OK && need_model) {
        rc = cs_model_load(&m, a.model, (int)a.threads, &err);
    }
    if (rc == CS_OK && a.n_eval > 0) {
        rc = cs_calib_check_overlap(a.src, a.n_src, a.eval, a.n_eval, &err);
    }
    if (rc == CS_OK && sp.kind == CS_SEL_ACDM && a.n_ref == 0) {
        fprintf(stderr, "calsweep-run select: acdm needs --reference NAME=FILE (one per task)\n");
        code = CS_EXIT_USAGE;
        goto cleanup;
    }
    if (rc == CS_OK && a.n_ref > 0 && sp.kind != CS_SEL_ACDM) {
        fprintf(stderr, "calsweep-run select: --reference is for acdm only\n");
        code = CS_EXIT_USAGE;
        goto cleanup;
    }
    if (rc == CS_OK && a.n_ref > 0) {
        rc = cs_calib_acdm_reference(a.ref, a.n_ref, a.src, a.n_src, a.eval, a.n_eval, tok,
                                     (size_t)a.seq_len, !a.no_bos, &ref, &err);
    }
    if (!a.cache_dir) {
        a.cache_dir = getenv("CALSWEEP_CACHE_DIR");
    }
    if (rc == CS_OK && m && a.cache_dir && a.cache_dir[0]) {
        rc = cs_cache_open(a.cache_dir, &stats.cache, &err);
        if (rc == CS_OK) {
            rc = cs_cache_model_id(a.model, model_id, &err);
        }
        stats.model_id = model_id;
    }
    cs_calib_compose_opts_default(&co);
    co.mode = a.compose;
    co.n = (size_t)a.pool;
    co.seq_len = (size_t)a.seq_len;
    co.seed = (uint64_t)a.seed;
    co.add_bos = !a.no_bos;
    if (rc == CS_OK && a.n_src > 0) {
        fprintf(stderr, "select: building a pool of %zu x %zu tokens (%s)\n", co.n, co.seq_len,
                cs_calib_compose_name(co.mode));
        rc = cs_calib_pool_build(a.src, a.n_src, tok, &co, &pool, &err);
    }
    if (rc == CS_OK) {
        fprintf(stderr, "select: %s, n = %zu\n", cs_select_name(sp.kind), sp.n);
        cs_select_env env = {.reference = ref.n ? &ref : NULL, .stats = &stats};
        rc = cs_select_run_env(&sp, &pool, m, tok, &env, progress, NULL, &sel, &err);
    }
    if (rc == CS_OK) {
        rc = print_selection(&a, &pool, &co, &sel, &err);
    }
    if (rc != CS_OK) {
        fprintf(stderr, "calsweep-run select: %s\n", err.msg);
        goto cleanup;
    }
    code = CS_EXIT_OK;
cleanup:
    cs_calib_selection_fini(&sel);
    cs_calib_pool_fini(&pool);
    cs_calib_pool_fini(&ref);
    cs_cache_close(stats.cache);
    cs_model_destroy(m);
    cs_tok_destroy(tok);
    for (size_t i = 0; i < a.n_src || (i < MAX_SRC && a.src_buf[i]); i++) {
        free(a.src_buf[i]);
    }
    for (size_t i = 0; i < MAX_SRC; i++) {
        free(a.ref_buf[i]);
    }
    return code;
}
