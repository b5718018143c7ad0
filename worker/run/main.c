/* calsweep-run - the engine's command line: model info, tokenization, perplexity and generation.
 * The runner contract mode (`calsweep-run job.json`: calibrate, quantize, evaluate, result.json)
 * arrives with a later step and answers "not built yet". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <fcntl.h>
#include <unistd.h>
#include <utf8proc.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_config.h"
#include "cs_convert_cmd.h"
#include "cs_floor.h"
#include "cs_generate.h"
#include "cs_job.h"
#include "cs_json.h"
#include "cs_limits.h"
#include "cs_methods.h"
#include "cs_model.h"
#include "cs_opt.h"
#include "cs_path.h"
#include "cs_pipeline.h"
#include "cs_score.h"
#include "cs_select_cmd.h"
#include "cs_source.h"
#include "cs_task.h"
#include "cs_time.h"
#include "cs_tok.h"

enum {
    OPT_HELP,
    OPT_VERSION,
    OPT_THREADS,
    OPT_TEXT,
    OPT_DATA,
    OPT_SEQ_LEN,
    OPT_BATCH,
    OPT_PROMPT,
    OPT_MAX_NEW,
    OPT_TEMP,
    OPT_TOP_K,
    OPT_TOP_P,
    OPT_REP,
    OPT_SEED,
    OPT_NO_SPECIAL,
    OPT_TASK,
    OPT_LIMIT,
    OPT_FIRST,
    OPT_JSON,
    OPT_ALGO,
    OPT_CALIB,
    OPT_N_SAMPLES,
    OPT_PPL,
    OPT_FEWSHOT,
    OPT_SHOTS,
    OPT_SAVE,
    OPT_PROFILE,
    OPT_PARAM = 1000, /* and on: the algorithms' parameters (quant_flags) */
};

#define OPT_HELP_ROW                                                        \
    {                                                                       \
        "help", 'h', CS_OPT_NONE, OPT_HELP, NULL, "show this help and exit" \
    }
#define OPT_THREADS_ROW                                                               \
    {                                                                                 \
        "threads", 't', CS_OPT_VALUE, OPT_THREADS, "N",                               \
                "threads for BLAS and the kernels (default: BLAS default, kernels 1)" \
    }

static const cs_opt main_options[] = {
        OPT_HELP_ROW,
        {"version", 'V', CS_OPT_NONE, OPT_VERSION, NULL, "show versions and exit"},
        {"profile", 0, CS_OPT_NONE, OPT_PROFILE, NULL,
         "print each stage's time next to its arithmetic floor (result.json has it always)"},
};
static const cs_opt info_options[] = {OPT_HELP_ROW};
static const cs_opt tok_options[] = {
        OPT_HELP_ROW,
        {"text", 0, CS_OPT_VALUE, OPT_TEXT, "S", "text to encode (default: standard input)"},
        {"no-special", 0, CS_OPT_NONE, OPT_NO_SPECIAL, NULL, "do not add BOS / special tokens"},
};
static const cs_opt ppl_options[] = {
        OPT_HELP_ROW,
        OPT_THREADS_ROW,
        {"data", 'd', CS_OPT_VALUE, OPT_DATA, "FILE", "text file, tokenized once (required)"},
        {"seq-len", 'n', CS_OPT_VALUE, OPT_SEQ_LEN, "N", "window length in tokens (required)"},
        {"batch", 'b', CS_OPT_VALUE, OPT_BATCH, "N", "windows per forward pass (default 1)"},
};
static const cs_opt gen_options[] = {
        OPT_HELP_ROW,
        OPT_THREADS_ROW,
        {"prompt", 'p', CS_OPT_VALUE, OPT_PROMPT, "S", "prompt text (required)"},
        {"max-new", 'm', CS_OPT_VALUE, OPT_MAX_NEW, "N", "tokens to generate (default 32)"},
        {"temperature", 0, CS_OPT_VALUE, OPT_TEMP, "T", "0 = greedy (default 0)"},
        {"top-k", 0, CS_OPT_VALUE, OPT_TOP_K, "K", "sample among the K best (0 = off)"},
        {"top-p", 0, CS_OPT_VALUE, OPT_TOP_P, "P", "nucleus sampling (1 = off)"},
        {"repetition-penalty", 0, CS_OPT_VALUE, OPT_REP, "R", "1 = off"},
        {"seed", 0, CS_OPT_VALUE, OPT_SEED, "N", "sampling seed (default 0)"},
};

static const cs_opt eval_options[] = {
        OPT_HELP_ROW,
        OPT_THREADS_ROW,
        {"task", 'T', CS_OPT_VALUE, OPT_TASK, "FILE", "task JSONL file (repeatable; required)"},
        {"limit", 'l', CS_OPT_VALUE, OPT_LIMIT, "N",
         "score a fixed-seed sample of N items per task (default: all)"},
        {"first", 0, CS_OPT_VALUE, OPT_FIRST, "N", "score only the first N items of each task"},
        {"max-new", 'm', CS_OPT_VALUE, OPT_MAX_NEW, "N",
         "generation tasks: at most N new tokens (default 256)"},
        {"json", 0, CS_OPT_NONE, OPT_JSON, NULL, "print one JSON object (result.json's metrics)"},
        {"seed", 0, CS_OPT_VALUE, OPT_SEED, "S",
         "the --limit sample's seed (default: the fixed one)"},
        {"fewshot", 'k', CS_OPT_VALUE, OPT_FEWSHOT, "K",
         "prefix each item with K shots joined by blank lines (needs --shots)"},
        {"shots", 0, CS_OPT_VALUE, OPT_SHOTS, "FILE",
         "few-shot file of the same schema, one per --task in order (repeatable)"},
};

static const cs_opt quant_options[] = {
        OPT_HELP_ROW,
        OPT_THREADS_ROW,
        {"algo", 'a', CS_OPT_VALUE, OPT_ALGO, "NAME|JSON",
         "rtn, gptq, awq, smoothquant, sparsegpt, wanda or imatrix, or a job config's algorithm "
         "object (required)"},
        {"calib", 'c', CS_OPT_VALUE, OPT_CALIB, "FILE",
         "calibration text: .jsonl (field \"text\") or plain text"},
        {"n-samples", 0, CS_OPT_VALUE, OPT_N_SAMPLES, "N", "calibration samples (default 128)"},
        {"seq-len", 'n', CS_OPT_VALUE, OPT_SEQ_LEN, "N", "tokens per sample (default 512)"},
        {"seed", 0, CS_OPT_VALUE, OPT_SEED, "N", "calibration seed (default 0)"},
        {"ppl", 0, CS_OPT_VALUE, OPT_PPL, "FILE",
         "after quantizing: perplexity of FILE, windows of 256"},
        {"task", 'T', CS_OPT_VALUE, OPT_TASK, "FILE", "after quantizing: score a task file"},
        {"save", 0, CS_OPT_VALUE, OPT_SAVE, "DIR",
         "write the quantized model (F32 safetensors) and quantization_config.json"},
        {"profile", 0, CS_OPT_NONE, OPT_PROFILE, NULL,
         "print each stage's time next to its arithmetic floor at the peaks measured here"},
};

#define N_OPTS(t)     (sizeof(t) / sizeof((t)[0]))
#define RUN_MAX_TASKS 64

/* quantize's options: quant_options, then --KEY V for every algorithm parameter of the table
 * (common/cs_methods.h), from OPT_PARAM on. */
static cs_mflags quant_flags;

typedef struct run_args {
    const char *model;
    const char *text, *data, *prompt;
    int64_t threads, seq_len, batch, limit, first;
    bool no_special, json, profile;
    cs_gen_params gen;
    const char *tasks[RUN_MAX_TASKS];
    size_t n_tasks;
    const char *shots[RUN_MAX_TASKS];
    size_t n_shots;
    int64_t fewshot;
    bool has_seed;
    const char *algo, *calib, *ppl, *save;
    int64_t n_samples;
} run_args;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: calsweep-run [OPTIONS] job.json\n"
            "       calsweep-run info MODEL\n"
            "       calsweep-run tokenize MODEL [--text S]\n"
            "       calsweep-run ppl MODEL --data FILE --seq-len N [--threads N]\n"
            "       calsweep-run generate MODEL --prompt S [--max-new N] [--threads N]\n"
            "       calsweep-run quantize MODEL --algo NAME [--calib FILE] [--save DIR] [--ppl "
            "FILE]\n"
            "       calsweep-run eval MODEL --task FILE [--task FILE ...] [--limit N] [--seed S]\n"
            "                         [--fewshot K --shots FILE ...] [--json]\n"
            "       calsweep-run select MODEL --source NAME=FILE[:field] ... --selector "
            "NAME|JSON\n"
            "       calsweep-run convert-task FORMAT IN OUT [--task NAME] [--split-train N]\n\n"
            "Runs one calsweep job in this process and writes result.json, or runs one engine\n"
            "command on a Hugging Face model folder (COMMAND --help for its options);\n"
            "convert-task turns a benchmark's published rows into a task file.\n"
            "A job writes result.json (or error.json and exit 1) in the current folder and its\n"
            "progress to fd 3; relative paths are resolved against $CALSWEEP_BASE_DIR, model\n"
            "folders also under $CALSWEEP_MODEL_ROOTS (':'-separated); model folders must lie\n"
            "inside $CALSWEEP_MODEL_ROOTS and data files inside $CALSWEEP_DATA_ROOTS (each the\n"
            "base folder when unset); threads from $CALSWEEP_THREADS.\n\n"
            "options:\n");
    cs_opt_print_help(out, main_options, N_OPTS(main_options));
}

static void cmd_usage(FILE *out, const char *cmd, const cs_opt *t, size_t n)
{
    static const struct {
        const char *cmd, *line;
    } lines[] = {
            {"info", "info MODEL\n\nPrints the configuration and size of a model folder."},
            {"tokenize", "tokenize MODEL [--text S]\n\nPrints the token ids of the text (or of "
                         "standard input), one line."},
            {"ppl", "ppl MODEL --data FILE --seq-len N\n\nPerplexity over non-overlapping windows "
                    "(GPTQ protocol): the file is tokenized once,\ncut into floor(N_tokens/N) "
                    "windows, PPL = exp(mean of the window mean NLLs)."},
            {"generate", "generate MODEL --prompt S\n\nGenerates a continuation of the prompt "
                         "(greedy unless --temperature > 0)."},
            {"quantize", "quantize MODEL --algo NAME|JSON [--calib FILE]\n\nQuantizes every "
                         "linear layer block by block (simulated: quantized then\ndequantized), "
                         "with per-layer progress, then optionally evaluates (--ppl, --task)."},
            {"eval", "eval MODEL --task FILE [--task FILE ...]\n\nScores task files: multiple "
                     "choice by log-likelihood (acc, acc_norm, acc_bytes),\ngeneration by greedy "
                     "decoding and exact match; prints one line per task and the\nmean accuracy."},
    };
    for (size_t i = 0; i < N_OPTS(lines); i++) {
        if (strcmp(lines[i].cmd, cmd) == 0) {
            fprintf(out, "usage: calsweep-run %s\n\noptions:\n", lines[i].line);
        }
    }
    cs_opt_print_help(out, t, n);
}

/* One option of a subcommand (not --help, not the MODEL) into a. */
static cs_rc take_option(run_args *a, int id, const char *arg, cs_err *err)
{
    cs_rc rc = CS_OK;
    double d;
    switch (id) {
    case OPT_THREADS:
        rc = cs_parse_i64(arg, 1, 256, &a->threads, "--threads", err);
        break;
    case OPT_TEXT:
        a->text = arg;
        break;
    case OPT_NO_SPECIAL:
        a->no_special = true;
        break;
    case OPT_DATA:
        a->data = arg;
        break;
    case OPT_SEQ_LEN:
        rc = cs_parse_i64(arg, 2, CS_LIMIT_SEQ_LEN, &a->seq_len, "--seq-len", err);
        break;
    case OPT_BATCH:
        rc = cs_parse_i64(arg, 1, 4096, &a->batch, "--batch", err);
        break;
    case OPT_PROMPT:
        a->prompt = arg;
        break;
    case OPT_TASK:
        rc = cs_opt_append(a->tasks, &a->n_tasks, RUN_MAX_TASKS, arg, "--task files", err);
        break;
    case OPT_LIMIT:
        rc = cs_parse_i64(arg, 1, INT64_MAX, &a->limit, "--limit", err);
        break;
    case OPT_SHOTS:
        rc = cs_opt_append(a->shots, &a->n_shots, RUN_MAX_TASKS, arg, "--shots files", err);
        break;
    case OPT_FEWSHOT:
        rc = cs_parse_i64(arg, 0, 1000, &a->fewshot, "--fewshot", err);
        break;
    case OPT_FIRST:
        rc = cs_parse_i64(arg, 1, INT64_MAX, &a->first, "--first", err);
        break;
    case OPT_JSON:
        a->json = true;
        break;
    case OPT_ALGO:
        a->algo = arg;
        break;
    case OPT_CALIB:
        a->calib = arg;
        break;
    case OPT_N_SAMPLES:
        rc = cs_parse_i64(arg, 1, CS_LIMIT_N_SAMPLES, &a->n_samples, "--n-samples", err);
        break;
    case OPT_PPL:
        a->ppl = arg;
        break;
    case OPT_SAVE:
        a->save = arg;
        break;
    case OPT_PROFILE:
        a->profile = true;
        break;
    case OPT_MAX_NEW: {
        int64_t v;
        rc = cs_parse_i64(arg, 0, 1 << 20, &v, "--max-new", err);
        a->gen.max_new = (size_t)v;
        break;
    }
    case OPT_TOP_K: {
        int64_t v;
        rc = cs_parse_i64(arg, 0, 1 << 24, &v, "--top-k", err);
        a->gen.top_k = (size_t)v;
        break;
    }
    case OPT_SEED: {
        int64_t v;
        rc = cs_parse_i64(arg, 0, INT64_MAX, &v, "--seed", err);
        a->gen.seed = (uint64_t)v;
        a->has_seed = true;
        break;
    }
    case OPT_TEMP:
    case OPT_TOP_P:
    case OPT_REP:
        rc = cs_parse_double(arg, &d, "option value", err);
        if (id == OPT_TEMP) {
            a->gen.temperature = d;
        } else if (id == OPT_TOP_P) {
            a->gen.top_p = d;
        } else {
            a->gen.rep_penalty = d;
        }
        break;
    default:
        cs_mflags_take(&quant_flags, id, arg);
        break;
    }
    return rc;
}

/* Parses a subcommand's options; returns -1 to continue, else an exit code. */
static int parse_cmd(int argc, char **argv, const char *cmd, const cs_opt *t, size_t n, run_args *a)
{
    cs_opt_parser p;
    cs_err err = {0};
    int id;
    const char *arg;
    cs_rc rc;
    cs_opt_init(&p, argc, argv, 2);
    while ((rc = cs_opt_next(&p, t, n, &id, &arg, &err)) == CS_OK) {
        if (id == OPT_HELP) {
            cmd_usage(stdout, cmd, t, n);
            return CS_EXIT_OK;
        }
        if (id == CS_OPT_POSITIONAL && a->model) {
            fprintf(stderr, "calsweep-run %s: unexpected argument '%s' (see --help)\n", cmd, arg);
            return CS_EXIT_USAGE;
        }
        if (id == CS_OPT_POSITIONAL) {
            a->model = arg;
        } else if ((rc = take_option(a, id, arg, &err)) != CS_OK) {
            break;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep-run %s: %s (see --help)\n", cmd, err.msg);
        return CS_EXIT_USAGE;
    }
    if (!a->model) {
        fprintf(stderr, "calsweep-run %s: missing MODEL (a Hugging Face model folder)\n", cmd);
        return CS_EXIT_USAGE;
    }
    return -1;
}

static int fail(const char *cmd, const cs_err *err)
{
    fprintf(stderr, "calsweep-run %s: %s\n", cmd, err->msg);
    return CS_EXIT_FAIL;
}

static cs_rc load_tok(cs_tok **tok, const char *model, cs_err *err)
{
    cs_buf p;
    cs_buf_init(&p);
    if (cs_buf_printf(&p, "%s/tokenizer.json", model) != CS_OK) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cs_rc rc = cs_tok_load(tok, p.data, err);
    cs_buf_fini(&p);
    return rc;
}

static int cmd_info(const run_args *a)
{
    cs_model *m = NULL;
    cs_err err = {0};
    if (cs_model_load(&m, a->model, 1, &err) != CS_OK) {
        return fail("info", &err);
    }
    const cs_hfconfig *c = &m->cfg;
    printf("architecture: %s\nlayers: %zu\nhidden: %zu\nheads: %zu\nkv_heads: %zu\n"
           "head_dim: %zu\nintermediate: %zu\nvocab: %zu\nrms_norm_eps: %g\nrope_theta: %g\n"
           "rope_scaling: %s\nattention_bias: %s\ntie_word_embeddings: %s\nbos: %d\n",
           cs_arch_name(c->arch), c->n_layers, c->hidden, c->n_heads, c->n_kv_heads, c->head_dim,
           c->intermediate, c->vocab, c->rms_eps, c->rope_theta, c->rope_llama3 ? "llama3" : "none",
           c->attn_bias ? "true" : "false", c->tie_embeddings ? "true" : "false", c->bos);
    printf("eos:");
    for (size_t i = 0; i < c->n_eos; i++) {
        printf(" %d", c->eos[i]);
    }
    printf("\nparameters: %zu\nf32_bytes: %zu\n", cs_model_params(m), cs_model_weight_bytes(m));
    cs_model_destroy(m);
    return CS_EXIT_OK;
}

static cs_rc read_stdin(char **out, size_t *len, cs_err *err)
{
    cs_buf b;
    char chunk[4096];
    size_t n;
    cs_buf_init(&b);
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
        if (cs_buf_append(&b, chunk, n) != CS_OK) {
            cs_buf_fini(&b);
            return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
    }
    if (ferror(stdin)) {
        cs_buf_fini(&b);
        return cs_err_errno(err, errno, "standard input");
    }
    *len = b.len;
    if (!b.data && cs_buf_putc(&b, 0) == CS_OK) {
        b.len = 0;
    }
    *out = cs_buf_take(&b);
    return *out ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
}

static int cmd_tokenize(const run_args *a)
{
    cs_tok *tok = NULL;
    cs_err err = {0};
    char *text = NULL;
    size_t len = 0, n = 0;
    int32_t *ids = NULL;
    int code = CS_EXIT_FAIL;
    if (load_tok(&tok, a->model, &err) != CS_OK) {
        return fail("tokenize", &err);
    }
    if (a->text) {
        text = cs_strdup(a->text);
        len = strlen(a->text);
    } else if (read_stdin(&text, &len, &err) != CS_OK) {
        code = fail("tokenize", &err);
        goto cleanup;
    }
    if (cs_tok_encode(tok, text, len, a->no_special ? 0 : CS_TOK_ADD_SPECIAL, &ids, &n, &err) !=
        CS_OK) {
        code = fail("tokenize", &err);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        printf(i ? " %d" : "%d", ids[i]);
    }
    printf("\n");
    code = CS_EXIT_OK;
cleanup:
    free(ids);
    free(text);
    cs_tok_destroy(tok);
    return code;
}

static int cmd_ppl(const run_args *a)
{
    cs_tok *tok = NULL;
    cs_model *m = NULL;
    cs_err err = {0};
    char *text = NULL;
    size_t len = 0, n = 0, nw = 0;
    int32_t *ids = NULL;
    double *nll = NULL, ppl = 0;
    int code = CS_EXIT_FAIL;
    if (!a->data || a->seq_len == 0) {
        fprintf(stderr, "calsweep-run ppl: --data FILE and --seq-len N are required\n");
        return CS_EXIT_USAGE;
    }
    if (load_tok(&tok, a->model, &err) != CS_OK ||
        cs_model_load(&m, a->model, (int)a->threads, &err) != CS_OK ||
        cs_path_read_file(a->data, (size_t)1 << 30, &text, &len, &err) != CS_OK ||
        cs_tok_encode(tok, text, len, CS_TOK_ADD_SPECIAL, &ids, &n, &err) != CS_OK) {
        code = fail("ppl", &err);
        goto cleanup;
    }
    nll = cs_alloc_array(n / (size_t)a->seq_len + 1, sizeof(double));
    uint64_t t0 = cs_time_mono_ns();
    if (!nll || cs_model_ppl(m, ids, n, (size_t)a->seq_len, (size_t)a->batch, nll, &nw, &ppl,
                             &err) != CS_OK) {
        if (!nll) {
            cs_err_set(&err, CS_ENOMEM, 0, "out of memory");
        }
        code = fail("ppl", &err);
        goto cleanup;
    }
    double secs = (double)(cs_time_mono_ns() - t0) / 1e9;
    printf("tokens: %zu\nwindows: %zu\nseq_len: %lld\nppl: %.6f\nseconds: %.3f\ntokens_per_s: "
           "%.1f\n",
           n, nw, (long long)a->seq_len, ppl, secs, (double)(nw * (size_t)a->seq_len) / secs);
    code = CS_EXIT_OK;
cleanup:
    free(nll);
    free(ids);
    free(text);
    cs_model_destroy(m);
    cs_tok_destroy(tok);
    return code;
}

static int cmd_generate(run_args *a)
{
    cs_tok *tok = NULL;
    cs_model *m = NULL;
    cs_err err = {0};
    size_t n = 0, n_out = 0;
    int32_t *ids = NULL, *out = NULL;
    char *dec = NULL;
    size_t dlen = 0;
    int code = CS_EXIT_FAIL;
    if (!a->prompt) {
        fprintf(stderr, "calsweep-run generate: --prompt S is required\n");
        return CS_EXIT_USAGE;
    }
    if (load_tok(&tok, a->model, &err) != CS_OK ||
        cs_model_load(&m, a->model, (int)a->threads, &err) != CS_OK ||
        cs_tok_encode(tok, a->prompt, strlen(a->prompt), CS_TOK_ADD_SPECIAL, &ids, &n, &err) !=
                CS_OK) {
        code = fail("generate", &err);
        goto cleanup;
    }
    a->gen.stop = m->cfg.eos;
    a->gen.n_stop = m->cfg.n_eos;
    if (cs_generate(m, ids, n, &a->gen, &out, &n_out, &err) != CS_OK ||
        cs_tok_decode(tok, out, n_out, true, &dec, &dlen, &err) != CS_OK) {
        code = fail("generate", &err);
        goto cleanup;
    }
    fwrite(dec, 1, dlen, stdout);
    printf("\n");
    code = CS_EXIT_OK;
cleanup:
    free(dec);
    free(out);
    free(ids);
    cs_model_destroy(m);
    cs_tok_destroy(tok);
    return code;
}

static void eval_progress(void *ctx, size_t done, size_t total)
{
    const char *name = ctx;
    if (done == total || done % 20 == 0) {
        fprintf(stderr, "\r%s: %zu/%zu", name, done, total);
        if (done == total) {
            fputc('\n', stderr);
        }
    }
}

static int cmd_eval(const run_args *a)
{
    cs_tok *tok = NULL;
    cs_model *m = NULL;
    cs_err err = {0};
    cJSON *all = cJSON_CreateObject(), *tasks = all ? cJSON_AddObjectToObject(all, "tasks") : NULL;
    double sum = 0;
    size_t n_acc = 0;
    int code = CS_EXIT_FAIL;

    if (a->n_tasks == 0) {
        fprintf(stderr, "calsweep-run eval: at least one --task FILE is required\n");
        cJSON_Delete(all);
        return CS_EXIT_USAGE;
    }
    if ((a->fewshot > 0 || a->n_shots > 0) && a->n_shots != a->n_tasks) {
        fprintf(stderr,
                "calsweep-run eval: --fewshot needs one --shots FILE per --task (%zu --task, "
                "%zu --shots)\n",
                a->n_tasks, a->n_shots);
        cJSON_Delete(all);
        return CS_EXIT_USAGE;
    }
    if (!tasks) {
        cs_err_set(&err, CS_ENOMEM, 0, "out of memory");
        code = fail("eval", &err);
        goto out;
    }
    if (load_tok(&tok, a->model, &err) != CS_OK ||
        cs_model_load(&m, a->model, (int)a->threads, &err) != CS_OK) {
        code = fail("eval", &err);
        goto out;
    }
    if (!a->json) {
        printf("%-16s %6s %8s %8s %8s %8s\n", "task", "n", "acc", "stderr", "acc_norm", "exact");
    }
    for (size_t i = 0; i < a->n_tasks; i++) {
        cs_task t;
        cs_score s;
        cs_score_opts o = {.max_new = a->gen.max_new, .progress = a->json ? NULL : eval_progress};
        if (cs_task_load_seeded(&t, a->tasks[i], (size_t)a->limit,
                                a->has_seed ? a->gen.seed : CS_TASK_LIMIT_SEED, &err) != CS_OK) {
            code = fail("eval", &err);
            goto out;
        }
        if (a->first > 0) {
            cs_task_truncate(&t, (size_t)a->first);
        }
        if (a->fewshot > 0 &&
            cs_task_fewshot(&t, a->shots[i], (size_t)a->fewshot, NULL, &err) != CS_OK) {
            cs_task_fini(&t);
            code = fail("eval", &err);
            goto out;
        }
        o.progress_ctx = t.name;
        if (cs_score_task(m, tok, &t, &o, &s, &err) != CS_OK) {
            cs_task_fini(&t);
            code = fail("eval", &err);
            goto out;
        }
        cJSON *obj = cJSON_AddObjectToObject(tasks, t.name);
        if (!obj) {
            cs_err_set(&err, CS_ENOMEM, 0, "out of memory");
        }
        if (!obj || cs_score_to_json(&s, t.kind, obj, &err) != CS_OK) {
            cs_score_fini(&s);
            cs_task_fini(&t);
            code = fail("eval", &err);
            goto out;
        }
        double headline = t.kind == CS_TASK_GEN ? s.exact_strict : s.acc;
        sum += headline;
        n_acc++;
        if (!a->json) {
            if (t.kind == CS_TASK_GEN) {
                printf("%-16s %6zu %8s %8.4f %8s %8.4f\n", t.name, s.n, "-",
                       cs_score_stderr(s.exact_strict, s.n), "-", s.exact_strict);
            } else {
                printf("%-16s %6zu %8.4f %8.4f %8.4f %8s\n", t.name, s.n, s.acc,
                       cs_score_stderr(s.acc, s.n), s.acc_norm, "-");
            }
        }
        cs_score_fini(&s);
        cs_task_fini(&t);
    }
    if (a->json) {
        char *text;
        if (!cJSON_AddNumberToObject(all, "mean_accuracy", sum / (double)n_acc) ||
            !(text = cJSON_PrintUnformatted(all))) {
            cs_err_set(&err, CS_ENOMEM, 0, "out of memory");
            code = fail("eval", &err);
            goto out;
        }
        printf("%s\n", text);
        free(text);
    } else {
        printf("mean accuracy (acc, or exact match for generation): %.4f over %zu tasks\n",
               sum / (double)n_acc, n_acc);
    }
    code = CS_EXIT_OK;
out:
    cJSON_Delete(all);
    cs_model_destroy(m);
    cs_tok_destroy(tok);
    return code;
}

static void quant_progress(void *ctx, size_t layer, size_t n_layers, double secs)
{
    FILE *fd3 = ctx;
    fprintf(stderr, "quantize: layer %zu/%zu done in %.2f s\n", layer + 1, n_layers, secs);
    if (fd3) {
        fprintf(fd3, "{\"stage\":\"quantize\",\"layer\":%zu,\"done\":%zu,\"total\":%zu}\n", layer,
                layer + 1, n_layers);
        fflush(fd3);
    }
}

/* quantization_config.json: the parsed parameters, the calibration and the report. */
static cJSON *quant_config(const run_args *a, const cJSON *algo, const cs_pipe_params *pp,
                           const cs_pipe_report *rep, const char *calib_sha)
{
    cJSON *o = cJSON_CreateObject(), *fb = NULL;
    if (!o || !cJSON_AddStringToObject(o, "quantizer", "calsweep-run quantize") ||
        !cJSON_AddItemToObject(o, "algorithm", cJSON_Duplicate(algo, true)) ||
        !cJSON_AddItemToObject(o, "parameters", cs_pipe_params_to_json(pp)) ||
        !cJSON_AddStringToObject(o, "source_model", a->model) ||
        !cJSON_AddStringToObject(o, "weights_dtype", "F32 (dequantized)") ||
        !(fb = cJSON_AddArrayToObject(o, "rtn_fallback_layers"))) {
        cJSON_Delete(o);
        return NULL;
    }
    if (a->calib) {
        cJSON *c = cJSON_AddObjectToObject(o, "calibration");
        if (!c || !cJSON_AddStringToObject(c, "file", a->calib) ||
            !cJSON_AddStringToObject(c, "sha256", calib_sha) ||
            !cJSON_AddNumberToObject(c, "n_samples", (double)a->n_samples) ||
            !cJSON_AddNumberToObject(c, "seq_len", (double)a->seq_len) ||
            !cJSON_AddNumberToObject(c, "seed", (double)a->gen.seed)) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    const cJSON *l;
    cJSON_ArrayForEach(l, rep->layers)
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "rtn_fallback"))) {
            cJSON *e = cJSON_Duplicate(l, true);
            if (!e ||
                !cJSON_AddStringToObject(e, "reason",
                                         "Hessian not positive definite after damping") ||
                !cJSON_AddItemToArray(fb, e)) {
                cJSON_Delete(e);
                cJSON_Delete(o);
                return NULL;
            }
        }
    }
    if (!cJSON_AddItemToObject(o, "layers", cJSON_Duplicate(rep->layers, true)) ||
        !cJSON_AddNumberToObject(o, "seconds", rep->seconds) ||
        !cJSON_AddItemToObject(o, "timing", cs_pipe_timing_json(&rep->t))) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cs_rc algo_json(const run_args *a, cJSON **out, cs_err *err)
{
    return cs_mflags_apply(&quant_flags, a->algo, "--algo", out, err);
}

/* The calibration batch of quantize: --n-samples random windows of --seq-len tokens of --calib
 * (seeded), *calib owned; calib_sha the file's SHA-256 for quantization_config.json. */
static cs_rc quant_calib(const run_args *a, const cs_tok *tok, int32_t **calib,
                         char calib_sha[CS_SHA256_HEX_LEN + 1], cs_err *err)
{
    size_t n = strlen(a->calib), n_stream = 0, *offsets = NULL, rlen = 0;
    int32_t *stream = NULL;
    char *raw = NULL;
    cs_calib_source src = {.kind = n > 6 && strcmp(a->calib + n - 6, ".jsonl") == 0 ? "jsonl"
                                                                                    : "text",
                           .path = a->calib};
    cs_rc rc = cs_calib_source_tokens(&src, tok, &stream, &n_stream, err);
    if (rc == CS_OK) {
        rc = cs_calib_random_windows(stream, n_stream, (size_t)a->n_samples, (size_t)a->seq_len,
                                     a->gen.seed, calib, &offsets, err);
    }
    if (rc == CS_OK) {
        fprintf(stderr, "calibration: %lld windows of %lld tokens from %s (%zu tokens)\n",
                (long long)a->n_samples, (long long)a->seq_len, a->calib, n_stream);
        rc = cs_path_read_file(a->calib, (size_t)1 << 34, &raw, &rlen, err);
    }
    if (rc == CS_OK) {
        rc = cs_sha256_hex(raw, rlen, calib_sha, err);
    }
    free(raw);
    free(stream);
    free(offsets);
    return rc;
}

/* After quantizing: --ppl FILE (windows of 256) and each --task. */
static cs_rc quant_eval(const run_args *a, cs_model *m, const cs_tok *tok, cs_err *err)
{
    if (a->ppl) {
        char *text = NULL;
        int32_t *ids = NULL;
        size_t len = 0, n = 0, nw = 0;
        double ppl = 0;
        double *nll = NULL;
        cs_rc rc = cs_path_read_file(a->ppl, (size_t)1 << 30, &text, &len, err);
        if (rc == CS_OK) {
            rc = cs_tok_encode(tok, text, len, CS_TOK_ADD_SPECIAL, &ids, &n, err);
        }
        if (rc == CS_OK && !(nll = cs_alloc_array(n / 256 + 1, sizeof(double)))) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
        if (rc == CS_OK) {
            rc = cs_model_ppl(m, ids, n, 256, 4, nll, &nw, &ppl, err);
        }
        free(text);
        free(ids);
        free(nll);
        if (rc != CS_OK) {
            return rc;
        }
        printf("ppl: %.6f (%zu windows of 256)\n", ppl, nw);
    }
    for (size_t i = 0; i < a->n_tasks; i++) {
        cs_task t;
        cs_score s;
        cs_rc rc = cs_task_load(&t, a->tasks[i], (size_t)a->limit, err);
        if (rc != CS_OK) {
            return rc;
        }
        if ((rc = cs_score_task(m, tok, &t, NULL, &s, err)) != CS_OK) {
            cs_task_fini(&t);
            return rc;
        }
        printf("%s: %s %.4f (%zu items)\n", t.name, t.kind == CS_TASK_GEN ? "exact_match" : "acc",
               t.kind == CS_TASK_GEN ? s.exact_strict : s.acc, s.n);
        cs_score_fini(&s);
        cs_task_fini(&t);
    }
    return CS_OK;
}

static int cmd_quantize(run_args *a)
{
    cs_tok *tok = NULL;
    cs_model *m = NULL;
    cs_err err = {0};
    cJSON *algo = NULL;
    cs_pipe_params pp;
    cs_pipe_report rep = {0};
    int32_t *calib = NULL;
    int code = CS_EXIT_FAIL;
    char calib_sha[CS_SHA256_HEX_LEN + 1] = "";
    FILE *fd3 = NULL;

    if (!a->algo) {
        fprintf(stderr, "calsweep-run quantize: --algo is required (rtn, gptq, awq, smoothquant, "
                        "sparsegpt, wanda, imatrix)\n");
        return CS_EXIT_USAGE;
    }
    if (algo_json(a, &algo, &err) != CS_OK || cs_pipe_params_from_json(&pp, algo, &err) != CS_OK) {
        fprintf(stderr, "calsweep-run quantize: %s\n", err.msg);
        cJSON_Delete(algo);
        return err.rc == CS_ENOMEM ? CS_EXIT_FAIL : CS_EXIT_USAGE;
    }
    if (cs_pipe_needs_calib(&pp) && !a->calib) {
        fprintf(stderr, "calsweep-run quantize: %s needs --calib FILE\n", a->algo);
        cJSON_Delete(algo);
        return CS_EXIT_USAGE;
    }
    if (load_tok(&tok, a->model, &err) != CS_OK ||
        cs_model_load(&m, a->model, (int)a->threads, &err) != CS_OK) {
        code = fail("quantize", &err);
        goto out;
    }
    if (cs_pipe_needs_calib(&pp) && quant_calib(a, tok, &calib, calib_sha, &err) != CS_OK) {
        code = fail("quantize", &err);
        goto out;
    }
    fd3 = fcntl(3, F_GETFD) != -1 ? fdopen(dup(3), "w") : NULL;
    if (cs_pipe_quantize(m, calib, (size_t)a->n_samples, (size_t)a->seq_len, &pp, quant_progress,
                         fd3, &rep, &err) != CS_OK) {
        code = fail("quantize", &err);
        goto out;
    }
    printf("quantized %zu layers in %.2f s: loss %.6g, rtn fallbacks %zu\n", m->cfg.n_layers,
           rep.seconds, rep.loss, rep.n_fallback);
    printf("time: embed %.2f s, forward %.2f s, statistics %.2f s, solve %.2f s, search %.2f s, "
           "clip %.2f s, smoothing %.2f s, rtn %.2f s, imatrix %.2f s\n",
           rep.t.embed, rep.t.forward, rep.t.stats, rep.t.solve, rep.t.search, rep.t.clip,
           rep.t.smooth, rep.t.rtn, rep.t.imatrix);
    if (a->profile) {
        cs_peak peak;
        cs_floor fl;
        cs_floor_init(&fl);
        cs_floor_quant(&fl, &m->cfg, &pp, (size_t)a->n_samples, (size_t)a->seq_len);
        cs_floor_set_times(&fl, &rep.t);
        if (cs_peak_measure(&peak, &err) != CS_OK) {
            code = fail("quantize", &err);
            goto out;
        }
        cs_floor_print(stdout, &fl, &peak);
    }
    if (a->save) {
        cJSON *qc = quant_config(a, algo, &pp, &rep, calib_sha);
        if (!qc) {
            cs_err_set(&err, CS_ENOMEM, 0, "out of memory");
        }
        cs_rc rc = qc ? cs_pipe_save(m, a->model, a->save, qc, &err) : CS_ENOMEM;
        cJSON_Delete(qc);
        if (rc != CS_OK) {
            code = fail("quantize", &err);
            goto out;
        }
        printf("saved: %s\n", a->save);
    }
    if (quant_eval(a, m, tok, &err) != CS_OK) {
        code = fail("quantize", &err);
        goto out;
    }
    code = CS_EXIT_OK;
out:
    if (fd3) {
        fclose(fd3);
    }
    cs_pipe_report_fini(&rep);
    cJSON_Delete(algo);
    free(calib);
    cs_model_destroy(m);
    cs_tok_destroy(tok);
    return code;
}

int main(int argc, char **argv)
{
    cs_opt_parser p;
    cs_err err = {0};
    int id;
    const char *arg;
    bool profile = false;
    cs_rc rc;

    if (argc >= 2 && argv[1][0] != '-') {
        run_args a;
        memset(&a, 0, sizeof(a));
        a.threads = 1;
        a.batch = 1;
        cs_gen_params_default(&a.gen);
        const char *cmd = argv[1];
        int code;
        /* --threads N also sets the BLAS threads (parsed again per command below) */
        for (int i = 2; i + 1 < argc; i++) {
            int64_t t;
            if ((strcmp(argv[i], "--threads") == 0 || strcmp(argv[i], "-t") == 0) &&
                cs_parse_i64(argv[i + 1], 1, 256, &t, "--threads", NULL) == CS_OK) {
                openblas_set_num_threads((int)t);
            }
        }
        if (strcmp(cmd, "info") == 0) {
            code = parse_cmd(argc, argv, cmd, info_options, N_OPTS(info_options), &a);
            return code >= 0 ? code : cmd_info(&a);
        }
        if (strcmp(cmd, "tokenize") == 0) {
            code = parse_cmd(argc, argv, cmd, tok_options, N_OPTS(tok_options), &a);
            return code >= 0 ? code : cmd_tokenize(&a);
        }
        if (strcmp(cmd, "ppl") == 0) {
            code = parse_cmd(argc, argv, cmd, ppl_options, N_OPTS(ppl_options), &a);
            return code >= 0 ? code : cmd_ppl(&a);
        }
        if (strcmp(cmd, "generate") == 0) {
            code = parse_cmd(argc, argv, cmd, gen_options, N_OPTS(gen_options), &a);
            return code >= 0 ? code : cmd_generate(&a);
        }
        if (strcmp(cmd, "quantize") == 0) {
            a.n_samples = 128;
            a.seq_len = 512;
            a.gen.seed = 0;
            cs_mflags_init(&quant_flags, CS_MF_ALGORITHM, quant_options, N_OPTS(quant_options),
                           OPT_PARAM);
            code = parse_cmd(argc, argv, cmd, quant_flags.opts, quant_flags.n_opts, &a);
            return code >= 0 ? code : cmd_quantize(&a);
        }
        if (strcmp(cmd, "select") == 0) {
            return cs_cmd_select(argc, argv);
        }
        if (strcmp(cmd, "convert-task") == 0) {
            return cs_cmd_convert(argc, argv);
        }
        if (strcmp(cmd, "eval") == 0) {
            a.gen.max_new = 0;
            code = parse_cmd(argc, argv, cmd, eval_options, N_OPTS(eval_options), &a);
            return code >= 0 ? code : cmd_eval(&a);
        }
    }
    cs_opt_init(&p, argc, argv, 1);
    while ((rc = cs_opt_next(&p, main_options, N_OPTS(main_options), &id, &arg, &err)) == CS_OK) {
        switch (id) {
        case OPT_HELP:
            usage(stdout);
            return CS_EXIT_OK;
        case OPT_VERSION:
            printf("calsweep-run %s (OpenBLAS %s, utf8proc %s)\n", CS_VERSION,
                   openblas_get_config(), utf8proc_version());
            return CS_EXIT_OK;
        case OPT_PROFILE:
            profile = true;
            break;
        case CS_OPT_POSITIONAL:
            return cs_run_job(arg, profile);
        default:
            fprintf(stderr, "calsweep-run: unexpected argument '%s' (see --help)\n", arg);
            return CS_EXIT_USAGE;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep-run: %s (see --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    fprintf(stderr, "calsweep-run: missing job.json or command (see --help)\n");
    return CS_EXIT_USAGE;
}
