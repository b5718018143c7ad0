/* quant: the model-level pipeline (cs_pipeline.h). */
#include "cs_pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_hessian.h"
#include "cs_json.h"
#include "cs_log.h"
#include "cs_time.h"

/* The groups of linears that share an input, in true-sequential order; the first of each group
 * is the one whose input the hooks accumulate. */
static const cs_lin group_lins[4][3] = {
        {CS_LIN_Q, CS_LIN_K, CS_LIN_V},
        {CS_LIN_O, CS_LIN_COUNT, CS_LIN_COUNT},
        {CS_LIN_GATE, CS_LIN_UP, CS_LIN_COUNT},
        {CS_LIN_DOWN, CS_LIN_COUNT, CS_LIN_COUNT},
};
#define N_GROUPS 4

/* ---- parameters ------------------------------------------------------------------------------ */

cs_rc cs_pipe_params_from_json(cs_pipe_params *p, const cJSON *algo, cs_err *err)
{
    static const char *const rtn_keys[] = {"name", "bits", "group_size", "sym", "grid"};
    static const char *const gptq_keys[] = {"name",         "bits", "group_size", "sym",
                                            "act_order",    "damp", "block_size", "true_sequential",
                                            "static_groups"};
    cs_jctx c;
    const char *name = NULL, *grid = NULL;
    int64_t bits = 4, group = 128, block = 128;
    double damp = 0.01;
    cs_rc rc;

    memset(p, 0, sizeof(*p));
    cs_gptq_params_default(&p->gptq);
    cs_jctx_init(&c, NULL, err);
    cs_jpath_push_key(&c.path, "algorithm");
    if ((rc = cs_json_as_object(&c, algo)) != CS_OK ||
        (rc = cs_json_req_string(&c, algo, "name", &name)) != CS_OK) {
        return rc;
    }
    bool rtn = strcmp(name, "rtn") == 0, gptq = strcmp(name, "gptq") == 0;
    if (!rtn && !gptq) {
        return cs_err_set(err, CS_ENOTSUP, 0,
                          "algorithm.name: '%s' is not built into this engine yet (rtn, gptq)",
                          name);
    }
    p->algo = rtn ? CS_PIPE_RTN : CS_PIPE_GPTQ;
    if ((rc = cs_json_check_keys(&c, algo, rtn ? rtn_keys : gptq_keys,
                                 rtn ? sizeof rtn_keys / sizeof rtn_keys[0]
                                     : sizeof gptq_keys / sizeof gptq_keys[0],
                                 CS_DIAG_ERROR)) != CS_OK ||
        (rc = cs_json_opt_int(&c, algo, "bits", 4, 2, 8, &bits)) != CS_OK ||
        (rc = cs_json_opt_int(&c, algo, "group_size", 128, -1, 65536, &group)) != CS_OK ||
        (rc = cs_json_opt_bool(&c, algo, "sym", gptq, &p->q.sym)) != CS_OK) {
        return rc;
    }
    if (group == 0) {
        return cs_err_set(err, CS_ESCHEMA, 0, "algorithm.group_size: 0 (use -1 for per row)");
    }
    p->q.bits = (int)bits;
    p->group_size = group;
    p->true_sequential = true;
    if (rtn) {
        if ((rc = cs_json_opt_string(&c, algo, "grid", "awq", &grid)) != CS_OK) {
            return rc;
        }
        if (strcmp(grid, "awq") != 0 && strcmp(grid, "gptq") != 0) {
            return cs_err_set(err, CS_ESCHEMA, 0, "algorithm.grid: '%s' (awq or gptq)", grid);
        }
        p->q.family = strcmp(grid, "awq") == 0 ? CS_QF_AWQ : CS_QF_GPTQ;
        return cs_qspec_check(&p->q, err);
    }
    p->q.family = CS_QF_GPTQ;
    if ((rc = cs_json_opt_bool(&c, algo, "act_order", true, &p->gptq.act_order)) != CS_OK ||
        (rc = cs_json_opt_number(&c, algo, "damp", 0.01, 1e-9, 1, &damp)) != CS_OK ||
        (rc = cs_json_opt_int(&c, algo, "block_size", 128, 1, 4096, &block)) != CS_OK ||
        (rc = cs_json_opt_bool(&c, algo, "true_sequential", true, &p->true_sequential)) != CS_OK ||
        (rc = cs_json_opt_bool(&c, algo, "static_groups", false, &p->gptq.static_groups)) !=
                CS_OK) {
        return rc;
    }
    p->gptq.q = p->q;
    p->gptq.group_size = group;
    p->gptq.percdamp = damp;
    p->gptq.blocksize = (size_t)block;
    return cs_qspec_check(&p->q, err);
}

bool cs_pipe_needs_calib(const cs_pipe_params *p)
{
    return p->algo != CS_PIPE_RTN;
}

void cs_pipe_report_fini(cs_pipe_report *r)
{
    if (r) {
        cJSON_Delete(r->layers);
        memset(r, 0, sizeof(*r));
    }
}

/* ---- per layer ------------------------------------------------------------------------------- */

static cs_rc check_group(const cs_pipe_params *p, size_t layer, cs_lin l, size_t cols, cs_err *err)
{
    if (p->group_size > 0 && cols % (size_t)p->group_size != 0) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "algorithm.group_size: %ld does not divide the %zu inputs of "
                          "layers.%zu.%s",
                          p->group_size, cols, layer, cs_lin_name(l));
    }
    return CS_OK;
}

static cs_rc record(cs_pipe_report *rep, size_t layer, cs_lin l, const cs_gptq_result *g,
                    cs_err *err)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(rep->layers, o) ||
        !cJSON_AddNumberToObject(o, "layer", (double)layer) ||
        !cJSON_AddStringToObject(o, "linear", cs_lin_name(l)) ||
        (g && (!cJSON_AddNumberToObject(o, "loss", g->loss) ||
               !cJSON_AddNumberToObject(o, "damp", g->percdamp) ||
               !cJSON_AddNumberToObject(o, "retries", g->retries) ||
               !cJSON_AddBoolToObject(o, "rtn_fallback", g->rtn_fallback)))) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if (g) {
        rep->loss += g->loss;
        if (g->rtn_fallback) {
            rep->n_fallback++;
            cs_log(CS_LOG_WARN,
                   "layers.%zu.%s: the Hessian is not positive definite even with damping %.3g; "
                   "quantized with RTN",
                   layer, cs_lin_name(l), g->percdamp);
        }
    }
    return CS_OK;
}

static cs_rc rtn_layer(cs_model *m, size_t layer, const cs_pipe_params *p, cs_pipe_report *rep,
                       cs_err *err)
{
    for (int l = 0; l < CS_LIN_COUNT; l++) {
        cs_linear *lin = &m->layers[layer].lin[l];
        cs_rc rc = check_group(p, layer, (cs_lin)l, lin->in, err);
        if (rc == CS_OK) {
            rc = cs_quant_rtn(lin->w, lin->out, lin->in, &p->q,
                              p->group_size > 0 ? (size_t)p->group_size : 0, err);
        }
        if (rc == CS_OK) {
            rc = record(rep, layer, (cs_lin)l, NULL, err);
        }
        if (rc != CS_OK) {
            return rc;
        }
    }
    return CS_OK;
}

typedef struct hook_ctx {
    cs_hessian *h[CS_LIN_COUNT]; /* for the first linear of each group being collected */
} hook_ctx;

static cs_rc on_linear_in(void *ctx, const cs_hook_event *ev, cs_err *err)
{
    hook_ctx *hc = ctx;
    if (ev->kind != CS_HOOK_LINEAR_IN || !hc->h[ev->lin]) {
        return CS_OK;
    }
    return cs_hessian_add(hc->h[ev->lin], ev->x, ev->rows, err);
}

/* GPTQ of the groups [g0, g1) of one block: one forward pass of the block on a copy of x collects
 * their Hessians, then each of their linears is quantized. */
static cs_rc gptq_groups(cs_model *m, size_t layer, const float *x, float *work, size_t n, size_t T,
                         const size_t *lens, int g0, int g1, const cs_pipe_params *p,
                         cs_pipe_report *rep, cs_err *err)
{
    hook_ctx hc = {0};
    cs_hooks hooks = {.fn = on_linear_in, .ctx = &hc, .mask = 1u << CS_HOOK_LINEAR_IN};
    size_t hidden = m->cfg.hidden;
    float *h = NULL;
    cs_rc rc = CS_OK;

    for (int g = g0; g < g1 && rc == CS_OK; g++) {
        cs_lin first = group_lins[g][0];
        rc = cs_hessian_create(&hc.h[first], m->layers[layer].lin[first].in, err);
    }
    if (rc != CS_OK) {
        goto out;
    }
    memcpy(work, x, n * T * hidden * sizeof(float));
    if ((rc = cs_model_block(m, layer, work, n, T, lens, &hooks, err)) != CS_OK) {
        goto out;
    }
    for (int g = g0; g < g1; g++) {
        cs_lin first = group_lins[g][0];
        size_t cols = m->layers[layer].lin[first].in;
        free(h);
        if (!(h = cs_alloc_array(cols * cols, sizeof(float)))) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory (Hessian of %zu columns)", cols);
            goto out;
        }
        if ((rc = cs_hessian_get(hc.h[first], h, err)) != CS_OK) {
            goto out;
        }
        for (int k = 0; k < 3 && group_lins[g][k] != CS_LIN_COUNT; k++) {
            cs_lin l = group_lins[g][k];
            cs_linear *lin = &m->layers[layer].lin[l];
            cs_gptq_result res;
            if ((rc = check_group(p, layer, l, lin->in, err)) != CS_OK ||
                (rc = cs_gptq_quantize(lin->w, lin->out, lin->in, h, &p->gptq, &res, err)) !=
                        CS_OK ||
                (rc = record(rep, layer, l, &res, err)) != CS_OK) {
                goto out;
            }
        }
    }
out:
    free(h);
    for (int l = 0; l < CS_LIN_COUNT; l++) {
        cs_hessian_destroy(hc.h[l]);
    }
    return rc;
}

cs_rc cs_pipe_quantize(cs_model *m, const int32_t *tokens, size_t n_samples, size_t seq_len,
                       const cs_pipe_params *p, cs_pipe_progress_fn progress, void *progress_ctx,
                       cs_pipe_report *rep, cs_err *err)
{
    size_t L = m->cfg.n_layers, hidden = m->cfg.hidden, rows = n_samples * seq_len;
    float *x = NULL, *work = NULL;
    size_t *lens = NULL;
    uint64_t t0 = cs_time_mono_ns();
    cs_rc rc = CS_OK;

    memset(rep, 0, sizeof(*rep));
    if (!(rep->layers = cJSON_CreateArray())) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if (cs_pipe_needs_calib(p)) {
        if (!tokens || rows == 0) {
            return cs_err_set(err, CS_EINVAL, 0, "%s needs calibration data",
                              p->algo == CS_PIPE_GPTQ ? "gptq" : "this algorithm");
        }
        x = cs_alloc_array(rows * hidden, sizeof(float));
        work = cs_alloc_array(rows * hidden, sizeof(float));
        lens = cs_alloc_array(n_samples, sizeof(size_t));
        if (!x || !work || !lens) {
            rc = cs_err_set(err, CS_ENOMEM, 0,
                            "out of memory (calibration activations: %zu x %zu x %zu floats)",
                            n_samples, seq_len, hidden);
            goto out;
        }
        for (size_t i = 0; i < n_samples; i++) {
            lens[i] = seq_len;
        }
        if ((rc = cs_model_embed(m, tokens, rows, x, err)) != CS_OK) {
            goto out;
        }
    }
    for (size_t layer = 0; layer < L; layer++) {
        uint64_t tl = cs_time_mono_ns();
        if (p->algo == CS_PIPE_RTN) {
            rc = rtn_layer(m, layer, p, rep, err);
        } else {
            float *next = NULL;
            if (p->fp_trajectory) {
                /* the next block's input is this block's output before quantization */
                if (!(next = cs_alloc_array(rows * hidden, sizeof(float)))) {
                    rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
                    goto out;
                }
                memcpy(next, x, rows * hidden * sizeof(float));
                rc = cs_model_block(m, layer, next, n_samples, seq_len, lens, NULL, err);
            }
            for (int g = 0; g < N_GROUPS && rc == CS_OK; g += p->true_sequential ? 1 : N_GROUPS) {
                rc = gptq_groups(m, layer, x, work, n_samples, seq_len, lens, g,
                                 p->true_sequential ? g + 1 : N_GROUPS, p, rep, err);
            }
            if (rc == CS_OK && next) {
                memcpy(x, next, rows * hidden * sizeof(float));
            } else if (rc == CS_OK) {
                rc = cs_model_block(m, layer, x, n_samples, seq_len, lens, NULL, err);
            }
            free(next);
        }
        if (rc != CS_OK) {
            goto out;
        }
        if (progress) {
            progress(progress_ctx, layer, L, (double)(cs_time_mono_ns() - tl) / 1e9);
        }
    }
out:
    rep->seconds = (double)(cs_time_mono_ns() - t0) / 1e9;
    free(x);
    free(work);
    free(lens);
    if (rc != CS_OK) {
        cs_pipe_report_fini(rep);
    }
    return rc;
}
