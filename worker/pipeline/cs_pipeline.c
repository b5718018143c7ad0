/* quant: the model-level pipeline (cs_pipeline.h). */
#include "cs_pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "cs_alloc.h"
#include "cs_hessian.h"
#include "cs_imatrix.h"
#include "cs_json.h"
#include "cs_kernels.h"
#include "cs_log.h"
#include "cs_pass.h"
#include "cs_path.h"
#include "cs_smooth.h"
#include "cs_sparsegpt.h"
#include "cs_time.h"
#include "cs_wanda.h"

/* The groups of linears that share an input, in true-sequential order; the first of each group
 * is the one whose input the hooks accumulate. */
static const cs_lin group_lins[4][3] = {
        {CS_LIN_Q, CS_LIN_K, CS_LIN_V},
        {CS_LIN_O, CS_LIN_COUNT, CS_LIN_COUNT},
        {CS_LIN_GATE, CS_LIN_UP, CS_LIN_COUNT},
        {CS_LIN_DOWN, CS_LIN_COUNT, CS_LIN_COUNT},
};
#define N_GROUPS 4

#define IMX_MIN_TOKENS 16 /* llama.cpp's imatrix ignores products of fewer tokens */

/* ---- parameters ------------------------------------------------------------------------------ */

const char *cs_pipe_algo_name(cs_pipe_algo a)
{
    static const char *const names[] = {"rtn",   "gptq",        "awq",    "sparsegpt",
                                        "wanda", "smoothquant", "imatrix"};
    return (unsigned)a < sizeof names / sizeof names[0] ? names[a] : "?";
}

/* The algorithm's pattern as N:M (0:0 unstructured), by its index in the table's choices. */
static void pattern_nm(int pattern, size_t *n, size_t *m)
{
    static const size_t nm[][2] = {{0, 0}, {2, 4}, {4, 8}};
    *n = nm[pattern][0];
    *m = nm[pattern][1];
}

/* GPTQ's settings, shared by gptq, smoothquant (weights "gptq") and sparsegpt. */
static void gptq_settings(cs_pipe_params *p, const cs_algo_params *a)
{
    p->q.family = CS_QF_GPTQ;
    p->gptq.act_order = a->act_order;
    p->gptq.static_groups = a->static_groups;
    p->true_sequential = a->kind == CS_ALGO_GPTQ && a->true_sequential;
    if (a->kind == CS_ALGO_SMOOTHQUANT) {
        p->alpha = a->alpha;
        p->smooth = a->smooth;
        p->act_bits = (int)a->act_bits;
        if (a->weights == 0) {
            /* the original SmoothQuant: Q-SQ weights, symmetric, max|w| / (2^(b-1) - 1); every
             * statistic comes from the unmodified model, and the record says so */
            p->sq_rtn = true;
            p->q.family = CS_QF_SQ;
            p->q.sym = true;
            p->fp_trajectory = true;
        }
    }
    p->gptq.q = p->q;
    p->gptq.group_size = p->group_size;
    p->gptq.percdamp = a->damp;
    p->gptq.blocksize = (size_t)a->block_size;
}

cs_rc cs_pipe_params_from_algo(cs_pipe_params *p, const cs_algo_params *a, cs_err *err)
{
    static const cs_pipe_algo algo_of[] = {[CS_ALGO_RTN] = CS_PIPE_RTN,
                                           [CS_ALGO_GPTQ] = CS_PIPE_GPTQ,
                                           [CS_ALGO_AWQ] = CS_PIPE_AWQ,
                                           [CS_ALGO_SMOOTHQUANT] = CS_PIPE_SMOOTHQUANT,
                                           [CS_ALGO_SPARSEGPT] = CS_PIPE_SPARSEGPT,
                                           [CS_ALGO_WANDA] = CS_PIPE_WANDA,
                                           [CS_ALGO_IMATRIX] = CS_PIPE_IMATRIX};
    bool prune = a->kind == CS_ALGO_SPARSEGPT || a->kind == CS_ALGO_WANDA;

    memset(p, 0, sizeof(*p));
    cs_gptq_params_default(&p->gptq);
    cs_awq_params_default(&p->awq);
    p->fault_nonpd_layer = -1;
    if (a->kind == CS_ALGO_NONE || (size_t)a->kind >= sizeof algo_of / sizeof algo_of[0]) {
        return cs_err_set(err, CS_ENOTSUP, 0,
                          "algorithm.name: \"none\" leaves the model as it is: nothing to "
                          "quantize");
    }
    p->algo = algo_of[a->kind];
    p->fp_trajectory = a->trajectory == 1 || a->kind == CS_ALGO_IMATRIX;
    p->q.bits = prune ? 4 : (int)a->bits;
    p->q.sym = a->kind == CS_ALGO_AWQ ? !a->zero_point : a->sym;
    p->group_size = prune ? 128 : (long)a->group_size;
    switch (a->kind) {
    case CS_ALGO_RTN:
        p->q.family = a->grid == 0 ? CS_QF_AWQ : CS_QF_GPTQ;
        break;
    case CS_ALGO_AWQ:
        p->q.family = CS_QF_AWQ;
        p->awq.duo_scaling = a->duo_scaling;
        p->awq_clip = a->clip;
        p->awq.q = p->q;
        p->awq.group_size = p->group_size > 0 ? (size_t)p->group_size : 0;
        p->awq.n_grid = (size_t)a->n_grid;
        break;
    case CS_ALGO_GPTQ:
    case CS_ALGO_SPARSEGPT:
    case CS_ALGO_SMOOTHQUANT:
        gptq_settings(p, a);
        break;
    case CS_ALGO_IMATRIX:
        p->imx_type = a->type == 0 ? CS_IMX_Q4_0 : CS_IMX_Q4_K;
        p->imx_chunk = (size_t)a->chunk;
        return CS_OK;
    default:
        break;
    }
    if (prune) {
        p->sparsity = a->sparsity;
        pattern_nm(a->pattern, &p->prune_n, &p->prune_m);
        if (p->prune_m && p->algo == CS_PIPE_SPARSEGPT && p->gptq.blocksize % p->prune_m != 0) {
            return cs_err_set(err, CS_ESCHEMA, 0,
                              "algorithm.pattern: M = %zu does not divide block_size %zu",
                              p->prune_m, p->gptq.blocksize);
        }
        return CS_OK; /* pruning only: bits and group_size are not used */
    }
    return cs_qspec_check(&p->q, err);
}

cs_rc cs_pipe_params_from_json(cs_pipe_params *p, const cJSON *algo, cs_err *err)
{
    cs_algo_params a;
    cs_mresolve r = {.engine = true, .dst = &a};
    cs_rc rc = cs_method_check(algo, CS_MF_ALGORITHM, "algorithm", &r, err);
    if (rc != CS_OK) {
        return rc;
    }
    return cs_pipe_params_from_algo(p, &a, err);
}

bool cs_pipe_needs_calib(const cs_pipe_params *p)
{
    return p->algo != CS_PIPE_RTN;
}

static double secs_since(uint64_t t0)
{
    return (double)(cs_time_mono_ns() - t0) / 1e9;
}

cJSON *cs_pipe_timing_json(const cs_pipe_timing *t)
{
    const struct {
        const char *k;
        double v;
    } f[] = {{"embed", t->embed},   {"forward", t->forward}, {"stats", t->stats},
             {"solve", t->solve},   {"search", t->search},   {"clip", t->clip},
             {"smooth", t->smooth}, {"rtn", t->rtn},         {"imatrix", t->imatrix}};
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < sizeof f / sizeof f[0]; i++) {
        if (!cJSON_AddNumberToObject(o, f[i].k, f[i].v)) {
            cJSON_Delete(o);
            o = NULL;
        }
    }
    return o;
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
    uint64_t t0 = cs_time_mono_ns();
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
    rep->t.rtn += secs_since(t0);
    return CS_OK;
}

typedef struct hook_ctx {
    cs_hessian *h[CS_LIN_COUNT];   /* for the first linear of each group being collected */
    cs_actstats *st[CS_LIN_COUNT]; /* the same for Wanda, which needs only sum_t x_tj^2 */
    cs_lin stop_at; /* the pass ends after this linear's input (CS_LIN_COUNT: runs to the end) */
    bool stopped;   /* it did: the CS_ECANCELED of cs_model_block is ours, not an error */
    double stats_s; /* time spent in cs_hessian_add */
} hook_ctx;

static cs_rc on_linear_in(void *ctx, const cs_hook_event *ev, cs_err *err)
{
    hook_ctx *hc = ctx;
    if (ev->kind != CS_HOOK_LINEAR_IN) {
        return CS_OK;
    }
    if (hc->h[ev->lin] || hc->st[ev->lin]) {
        uint64_t t0 = cs_time_mono_ns();
        cs_rc rc = hc->h[ev->lin] ? cs_hessian_add(hc->h[ev->lin], ev->x, ev->rows, err)
                                  : cs_actstats_add(hc->st[ev->lin], ev->x, ev->rows, err);
        hc->stats_s += secs_since(t0);
        if (rc != CS_OK) {
            return rc;
        }
    }
    if (ev->lin == hc->stop_at) {
        hc->stopped = true; /* nothing after this input can change the statistics collected */
        return CS_ECANCELED;
    }
    return CS_OK;
}

/* GPTQ, SparseGPT or Wanda of the groups [g0, g1) of one block: one forward pass of the block,
 * chunk by chunk on copies in work (x is unchanged), collects their Hessians (each chunk stops at
 * the input of group g1 - 1, whose statistics are the last it needs), then each of their
 * linears is quantized. */
static cs_rc gptq_groups(cs_model *m, size_t layer, float *x, float *work, size_t n, size_t T,
                         const size_t *lens, int g0, int g1, const cs_pipe_params *p,
                         cs_pipe_report *rep, cs_err *err)
{
    hook_ctx hc = {.stop_at = group_lins[g1 - 1][0]};
    cs_hooks hooks = {.fn = on_linear_in, .ctx = &hc, .mask = 1u << CS_HOOK_LINEAR_IN};
    uint64_t t0;
    float *h = NULL;
    cs_actstats st[CS_LIN_COUNT];
    cs_rc rc = CS_OK;

    memset(st, 0, sizeof(st));
    for (int g = g0; g < g1 && rc == CS_OK; g++) {
        cs_lin first = group_lins[g][0];
        if (p->algo == CS_PIPE_WANDA) {
            rc = cs_actstats_init(&st[first], m->layers[layer].lin[first].in, err);
            hc.st[first] = &st[first];
        } else {
            rc = cs_hessian_create(&hc.h[first], m->layers[layer].lin[first].in, err);
        }
    }
    if (rc != CS_OK) {
        goto out;
    }
    t0 = cs_time_mono_ns();
    rc = cs_pass_block(m, layer, x, work, n, T, lens, &hooks, &hc.stopped, err);
    rep->t.forward += secs_since(t0) - hc.stats_s;
    rep->t.stats += hc.stats_s;
    if (rc != CS_OK) {
        goto out;
    }
    t0 = cs_time_mono_ns();
    for (int g = g0; g < g1; g++) {
        cs_lin first = group_lins[g][0];
        size_t cols = m->layers[layer].lin[first].in;
        const double *sumsq = st[first].sum_sq;
        if (p->algo != CS_PIPE_WANDA) {
            free(h);
            if (!(h = cs_alloc_array(cols * cols, sizeof(float)))) {
                rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory (Hessian of %zu columns)", cols);
                goto out;
            }
            if ((rc = cs_hessian_get(hc.h[first], h, err)) != CS_OK) {
                goto out;
            }
            /* the float copy is all the solves read: the accumulator (doubles, twice its size)
             * goes before them, not after the block */
            cs_hessian_destroy(hc.h[first]);
            hc.h[first] = NULL;
        }
        if (h && p->fault_nonpd_layer >= 0 && (size_t)p->fault_nonpd_layer == layer) {
            for (size_t i = 0; i < cols * cols; i++) {
                h[i] = -h[i];
            }
        }
        for (int k = 0; k < 3 && group_lins[g][k] != CS_LIN_COUNT; k++) {
            cs_lin l = group_lins[g][k];
            cs_linear *lin = &m->layers[layer].lin[l];
            cs_gptq_result res;
            memset(&res, 0, sizeof(res));
            if (p->algo == CS_PIPE_GPTQ || p->algo == CS_PIPE_SMOOTHQUANT) {
                if ((rc = check_group(p, layer, l, lin->in, err)) == CS_OK) {
                    rc = cs_gptq_quantize(lin->w, lin->out, lin->in, h, &p->gptq, &res, err);
                }
            } else if (p->algo == CS_PIPE_SPARSEGPT) {
                cs_sparsegpt_params sp;
                cs_sparsegpt_params_default(&sp);
                sp.sparsity = p->sparsity;
                sp.prune_n = p->prune_n;
                sp.prune_m = p->prune_m;
                sp.blocksize = p->gptq.blocksize;
                sp.percdamp = p->gptq.percdamp;
                rc = cs_sparsegpt_prune(lin->w, lin->out, lin->in, h, &sp, NULL, &res, err);
            } else {
                rc = cs_wanda_prune(lin->w, lin->out, lin->in, sumsq, p->sparsity, p->prune_n,
                                    p->prune_m, NULL, err);
            }
            if (rc != CS_OK || (rc = record(rep, layer, l, p->algo == CS_PIPE_WANDA ? NULL : &res,
                                            err)) != CS_OK) {
                goto out;
            }
        }
    }
    rep->t.solve += secs_since(t0);
out:
    free(h);
    for (int l = 0; l < CS_LIN_COUNT; l++) {
        cs_hessian_destroy(hc.h[l]);
        cs_actstats_fini(&st[l]);
    }
    return rc;
}

/* ---- AWQ ------------------------------------------------------------------------------------- */

/* The cached inputs of one block (FP): X_q (attention norm output), X_o, X_gate (MLP norm output),
 * X_down; and, for the attention loss, where the o_proj input of a trial forward goes. */
typedef struct awq_ctx {
    cs_model *m;
    size_t layer, n, T, rows;
    const size_t *lens;
    const cs_pipe_params *p;
    float *xin;               /* the block input (borrowed) */
    float *work;              /* a copy of it the trial forwards overwrite */
    float *cap[CS_LIN_COUNT]; /* capture targets (Q, O, GATE, DOWN) */
    bool stop_at_o;           /* abort the trial forward once o_proj's input is captured */
    float *yref, *ybuf;       /* reference and trial outputs [rows][max width] */
    float *g, *u;             /* MLP scratch [rows][inter] */
    float *wsave;             /* saved weights of one scaling group */
    const cs_lin *lins;       /* the scaled linears of the current search */
    size_t n_lins;
    int kind; /* 0 attention, 1 mlp, 2 down */
} awq_ctx;

static cs_rc awq_capture(void *ctx, const cs_hook_event *ev, cs_err *err)
{
    awq_ctx *c = ctx;
    if (ev->kind != CS_HOOK_LINEAR_IN || !c->cap[ev->lin]) {
        return CS_OK;
    }
    memcpy(c->cap[ev->lin], ev->x, ev->rows * ev->cols * sizeof(float));
    if (c->stop_at_o && ev->lin == CS_LIN_O) {
        return cs_err_set(err, CS_ECANCELED, 0, "awq: trial forward stopped at o_proj");
    }
    return CS_OK;
}

/* y[rows][lin->out] = x lin^T + b */
static void awq_linear(const cs_linear *l, const float *x, size_t rows, float *y)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)l->out, (int)l->in, 1.0f,
                x, (int)l->in, l->w, (int)l->in, 0.0f, y, (int)l->out);
    if (l->b) {
        for (size_t r = 0; r < rows; r++) {
            for (size_t j = 0; j < l->out; j++) {
                y[r * l->out + j] += l->b[j];
            }
        }
    }
}

/* The module output of the current search into y: attention = o_proj(attention(X)) by a trial
 * block forward stopped at o_proj; mlp = down(silu(gate X) * up X); down = down_proj(X_down). */
static cs_rc awq_module(awq_ctx *c, float *y, cs_err *err)
{
    cs_layer *ly = &c->m->layers[c->layer];
    size_t rows = c->rows, ni = ly->lin[CS_LIN_GATE].out;
    if (c->kind == 0) {
        cs_hooks hooks = {.fn = awq_capture, .ctx = c, .mask = 1u << CS_HOOK_LINEAR_IN};
        float *save_q = c->cap[CS_LIN_Q], *save_g = c->cap[CS_LIN_GATE];
        float *save_d = c->cap[CS_LIN_DOWN], *save_o = c->cap[CS_LIN_O];
        c->cap[CS_LIN_Q] = c->cap[CS_LIN_GATE] = c->cap[CS_LIN_DOWN] = NULL;
        c->cap[CS_LIN_O] = c->g; /* scratch, rows x q_dim fits in rows x inter? checked by caller */
        c->stop_at_o = true;
        memcpy(c->work, c->xin, rows * c->m->cfg.hidden * sizeof(float));
        cs_rc rc = cs_model_block(c->m, c->layer, c->work, c->n, c->T, c->lens, &hooks, err);
        c->stop_at_o = false;
        c->cap[CS_LIN_Q] = save_q;
        c->cap[CS_LIN_GATE] = save_g;
        c->cap[CS_LIN_DOWN] = save_d;
        c->cap[CS_LIN_O] = save_o;
        if (rc != CS_ECANCELED) {
            return rc == CS_OK ? cs_err_set(err, CS_EINTERNAL, 0, "awq: o_proj was not reached")
                               : rc;
        }
        awq_linear(&ly->lin[CS_LIN_O], c->g, rows, y);
        return CS_OK;
    }
    if (c->kind == 1) {
        awq_linear(&ly->lin[CS_LIN_GATE], c->cap[CS_LIN_GATE], rows, c->g);
        awq_linear(&ly->lin[CS_LIN_UP], c->cap[CS_LIN_GATE], rows, c->u);
        cs_silu_mul(c->m->n_threads, c->g, c->u, rows * ni); /* the block forward's SwiGLU */
        awq_linear(&ly->lin[CS_LIN_DOWN], c->g, rows, y);
        return CS_OK;
    }
    awq_linear(&ly->lin[CS_LIN_DOWN], c->cap[CS_LIN_DOWN], rows, y);
    return CS_OK;
}

static cs_rc awq_loss(void *ctx, const float *s, double *loss, cs_err *err)
{
    awq_ctx *c = ctx;
    cs_layer *ly = &c->m->layers[c->layer];
    size_t off = 0, hidden = c->m->cfg.hidden;
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < c->n_lins && rc == CS_OK; i++) {
        cs_linear *l = &ly->lin[c->lins[i]];
        memcpy(c->wsave + off, l->w, l->out * l->in * sizeof(float));
        off += l->out * l->in;
        rc = cs_awq_quant_scaled(l->w, l->out, l->in, s, &c->p->awq.q, c->p->awq.group_size, err);
    }
    if (rc == CS_OK) {
        rc = awq_module(c, c->ybuf, err);
    }
    off = 0;
    for (size_t i = 0; i < c->n_lins; i++) {
        cs_linear *l = &ly->lin[c->lins[i]];
        memcpy(l->w, c->wsave + off, l->out * l->in * sizeof(float));
        off += l->out * l->in;
    }
    if (rc != CS_OK) {
        return rc;
    }
    double acc = 0.0;
    size_t nel = c->rows * hidden;
    for (size_t i = 0; i < nel; i++) {
        double d = (double)c->yref[i] - (double)c->ybuf[i];
        acc += d * d;
    }
    *loss = acc / (double)nel;
    return CS_OK;
}

static void col_abs_mean(float *mean, const float *x, size_t rows, size_t cols)
{
    double *acc = cs_calloc_array(cols, sizeof(double));
    if (!acc) {
        return; /* the caller checked memory before; keeps mean as is */
    }
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < cols; j++) {
            acc[j] += fabs((double)x[r * cols + j]);
        }
    }
    for (size_t j = 0; j < cols; j++) {
        mean[j] = (float)(acc[j] / (double)rows);
    }
    free(acc);
}

/* One scaling group's search: s receives the best scales. */
static cs_rc awq_search(awq_ctx *c, int kind, const cs_lin *lins, size_t n_lins, const float *x,
                        size_t cols, float *s, size_t layer, cs_pipe_report *rep, cs_err *err)
{
    cs_layer *ly = &c->m->layers[c->layer];
    const float *w[3];
    size_t wr[3];
    float *x_mean = cs_alloc_array(cols, sizeof(float));
    float *w_mean = cs_alloc_array(cols, sizeof(float));
    cs_awq_search_result res;
    cs_rc rc = CS_OK;
    if (!x_mean || !w_mean) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_lins; i++) {
        w[i] = ly->lin[lins[i]].w;
        wr[i] = ly->lin[lins[i]].out;
        if ((rc = check_group(c->p, layer, lins[i], cols, err)) != CS_OK) {
            goto out;
        }
    }
    col_abs_mean(x_mean, x, c->rows, cols);
    if ((rc = cs_awq_w_mean(w_mean, cols, w, wr, n_lins, c->p->awq.group_size, err)) != CS_OK) {
        goto out;
    }
    c->kind = kind;
    c->lins = lins;
    c->n_lins = n_lins;
    if ((rc = awq_module(c, c->yref, err)) != CS_OK ||
        (rc = cs_awq_search_scale(s, x_mean, w_mean, cols, &c->p->awq, awq_loss, c, &res, err)) !=
                CS_OK) {
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(rep->layers, o) ||
        !cJSON_AddNumberToObject(o, "layer", (double)layer) ||
        !cJSON_AddStringToObject(o, "scale_group", cs_lin_name(lins[0])) ||
        !cJSON_AddNumberToObject(o, "ratio", res.best_ratio) ||
        !cJSON_AddNumberToObject(o, "loss", res.best_loss) ||
        !cJSON_AddNumberToObject(o, "loss_r0", res.loss_r0)) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    if (isfinite(res.best_loss)) {
        rep->loss += res.best_loss;
    }
out:
    free(x_mean);
    free(w_mean);
    return rc;
}

static cs_rc awq_clip(awq_ctx *c, cs_lin l, const float *x, cs_err *err)
{
    cs_linear *lin = &c->m->layers[c->layer].lin[l];
    size_t g = c->p->awq.group_size ? c->p->awq.group_size : lin->in;
    float *mv = cs_alloc_array(lin->out * (lin->in / g), sizeof(float));
    if (!mv) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cs_rc rc = cs_awq_clip_search(mv, lin->w, lin->out, lin->in, x, c->rows, &c->p->awq, err);
    if (rc == CS_OK) {
        cs_awq_apply_clip(lin->w, lin->out, lin->in, mv, c->p->awq.group_size);
    }
    free(mv);
    return rc;
}

/* Folds the searched scales into the block: 1/s into the norm (or up_proj) before each group, s
 * into the group's weight columns and the cached inputs. */
static void awq_fold(awq_ctx *c, const float *s_qkv, const float *s_gu, const float *s_d)
{
    static const cs_lin qkv[] = {CS_LIN_Q, CS_LIN_K, CS_LIN_V};
    static const cs_lin gu[] = {CS_LIN_GATE, CS_LIN_UP};
    cs_layer *ly = &c->m->layers[c->layer];
    size_t rows = c->rows, H = c->m->cfg.hidden, ni = ly->lin[CS_LIN_GATE].out;
    cs_smooth_fold_norm(ly->attn_norm, NULL, s_qkv, H);
    for (int k = 0; k < 3; k++) {
        cs_smooth_scale_cols(ly->lin[qkv[k]].w, ly->lin[qkv[k]].out, H, s_qkv);
    }
    cs_smooth_scale_inputs(c->cap[CS_LIN_Q], rows, H, s_qkv);
    cs_smooth_fold_norm(ly->mlp_norm, NULL, s_gu, H);
    for (int k = 0; k < 2; k++) {
        cs_smooth_scale_cols(ly->lin[gu[k]].w, ly->lin[gu[k]].out, H, s_gu);
    }
    cs_smooth_scale_inputs(c->cap[CS_LIN_GATE], rows, H, s_gu);
    cs_smooth_fold_prev_linear(ly->lin[CS_LIN_UP].w, ly->lin[CS_LIN_UP].b, ni, H, s_d);
    cs_smooth_scale_cols(ly->lin[CS_LIN_DOWN].w, ly->lin[CS_LIN_DOWN].out, ni, s_d);
    cs_smooth_scale_inputs(c->cap[CS_LIN_DOWN], rows, ni, s_d);
}

/* The clipping search of v, o, gate, up and down on their cached inputs. */
static cs_rc awq_clip_block(awq_ctx *c, cs_err *err)
{
    cs_rc rc;
    if ((rc = awq_clip(c, CS_LIN_V, c->cap[CS_LIN_Q], err)) != CS_OK ||
        (rc = awq_clip(c, CS_LIN_O, c->cap[CS_LIN_O], err)) != CS_OK ||
        (rc = awq_clip(c, CS_LIN_GATE, c->cap[CS_LIN_GATE], err)) != CS_OK ||
        (rc = awq_clip(c, CS_LIN_UP, c->cap[CS_LIN_GATE], err)) != CS_OK ||
        (rc = awq_clip(c, CS_LIN_DOWN, c->cap[CS_LIN_DOWN], err)) != CS_OK) {
        return rc;
    }
    return CS_OK;
}

/* Round-to-nearest of every linear of the block, each recorded in rep. */
static cs_rc awq_rtn_block(awq_ctx *c, cs_pipe_report *rep, cs_err *err)
{
    const cs_pipe_params *p = c->p;
    cs_layer *ly = &c->m->layers[c->layer];
    cs_rc rc;
    for (int l = 0; l < CS_LIN_COUNT; l++) {
        cs_linear *lin = &ly->lin[l];
        if ((rc = check_group(p, c->layer, (cs_lin)l, lin->in, err)) != CS_OK ||
            (rc = cs_quant_rtn(lin->w, lin->out, lin->in, &p->awq.q, p->awq.group_size, err)) !=
                    CS_OK ||
            (rc = record(rep, c->layer, (cs_lin)l, NULL, err)) != CS_OK) {
            return rc;
        }
    }
    return CS_OK;
}

/* AWQ of block `layer`: x (the block input) becomes the next block's input. */
static cs_rc awq_layer(cs_model *m, size_t layer, float *x, float *work, size_t n, size_t T,
                       const size_t *lens, const cs_pipe_params *p, cs_pipe_report *rep,
                       cs_err *err)
{
    static const cs_lin qkv[] = {CS_LIN_Q, CS_LIN_K, CS_LIN_V};
    static const cs_lin gu[] = {CS_LIN_GATE, CS_LIN_UP};
    static const cs_lin dn[] = {CS_LIN_DOWN};
    cs_layer *ly = &m->layers[layer];
    size_t rows = n * T, H = m->cfg.hidden, qd = ly->lin[CS_LIN_O].in;
    size_t ni = ly->lin[CS_LIN_GATE].out, wmax = 0, ymax = H > ni ? H : ni;
    awq_ctx c = {.m = m,
                 .layer = layer,
                 .n = n,
                 .T = T,
                 .rows = rows,
                 .lens = lens,
                 .p = p,
                 .xin = x,
                 .work = work};
    float *s_qkv = NULL, *s_gu = NULL, *s_d = NULL, *next = NULL;
    uint64_t t0;
    cs_rc rc = CS_OK;

    for (int l = 0; l < CS_LIN_COUNT; l++) {
        size_t e = ly->lin[l].out * ly->lin[l].in;
        wmax += l == CS_LIN_Q || l == CS_LIN_GATE ? e : 0; /* the largest groups: q+k+v, gate+up */
        wmax += l == CS_LIN_K || l == CS_LIN_V || l == CS_LIN_UP ? e : 0;
    }
    c.cap[CS_LIN_Q] = cs_alloc_array(rows * H, sizeof(float));
    c.cap[CS_LIN_O] = cs_alloc_array(rows * qd, sizeof(float));
    c.cap[CS_LIN_GATE] = cs_alloc_array(rows * H, sizeof(float));
    c.cap[CS_LIN_DOWN] = cs_alloc_array(rows * ni, sizeof(float));
    c.yref = cs_alloc_array(rows * ymax, sizeof(float));
    c.ybuf = cs_alloc_array(rows * ymax, sizeof(float));
    c.g = cs_alloc_array(rows * (ni > qd ? ni : qd), sizeof(float));
    c.u = cs_alloc_array(rows * ni, sizeof(float));
    c.wsave = cs_alloc_array(wmax, sizeof(float));
    s_qkv = cs_alloc_array(H, sizeof(float));
    s_gu = cs_alloc_array(H, sizeof(float));
    s_d = cs_alloc_array(ni, sizeof(float));
    next = cs_alloc_array(rows * H, sizeof(float));
    if (!c.cap[CS_LIN_Q] || !c.cap[CS_LIN_O] || !c.cap[CS_LIN_GATE] || !c.cap[CS_LIN_DOWN] ||
        !c.yref || !c.ybuf || !c.g || !c.u || !c.wsave || !s_qkv || !s_gu || !s_d || !next) {
        rc = cs_err_set(err, CS_ENOMEM, 0,
                        "out of memory (AWQ caches of layer %zu for %zu calibration tokens)", layer,
                        rows);
        goto out;
    }
    /* one FP forward caches the inputs; its output is the FP trajectory's next input */
    t0 = cs_time_mono_ns();
    {
        cs_hooks hooks = {.fn = awq_capture, .ctx = &c, .mask = 1u << CS_HOOK_LINEAR_IN};
        memcpy(next, x, rows * H * sizeof(float));
        if ((rc = cs_model_block(m, layer, next, n, T, lens, &hooks, err)) != CS_OK) {
            goto out;
        }
    }
    /* the trial forwards of the attention search stop at o_proj's input: a workspace of their
     * own leaves the MLP's intermediate, which this whole pass filled, unmapped */
    cs_model_release_workspace(m);
    rep->t.forward += secs_since(t0);
    t0 = cs_time_mono_ns();
    /* the four searches on the unmodified block (v -> o only for multi-head attention with
     * v and o of the same shape: never for the GQA models; skipped) */
    rc = awq_search(&c, 0, qkv, 3, c.cap[CS_LIN_Q], H, s_qkv, layer, rep, err);
    cs_model_release_workspace(m); /* the MLP searches run no block forward */
    if (rc != CS_OK ||
        (rc = awq_search(&c, 1, gu, 2, c.cap[CS_LIN_GATE], H, s_gu, layer, rep, err)) != CS_OK ||
        (rc = awq_search(&c, 2, dn, 1, c.cap[CS_LIN_DOWN], ni, s_d, layer, rep, err)) != CS_OK) {
        goto out;
    }
    awq_fold(&c, s_qkv, s_gu, s_d);
    rep->t.search += secs_since(t0);
    /* clip v, o, gate, up, down */
    t0 = cs_time_mono_ns();
    if (p->awq_clip && (rc = awq_clip_block(&c, err)) != CS_OK) {
        goto out;
    }
    rep->t.clip += secs_since(t0);
    t0 = cs_time_mono_ns();
    if ((rc = awq_rtn_block(&c, rep, err)) != CS_OK) {
        goto out;
    }
    rep->t.rtn += secs_since(t0);
    t0 = cs_time_mono_ns();
    if (p->fp_trajectory) {
        memcpy(x, next, rows * H * sizeof(float));
    } else {
        rc = cs_model_block(m, layer, x, n, T, lens, NULL, err);
    }
    rep->t.forward += secs_since(t0);
out:
    for (int l = 0; l < CS_LIN_COUNT; l++) {
        free(c.cap[l]);
    }
    free(c.yref);
    free(c.ybuf);
    free(c.g);
    free(c.u);
    free(c.wsave);
    free(s_qkv);
    free(s_gu);
    free(s_d);
    free(next);
    return rc;
}

/* ---- SmoothQuant ----------------------------------------------------------------------------- */

typedef struct sq_ctx {
    cs_actstats st[2]; /* q_proj input, gate_proj input */
} sq_ctx;

static cs_rc sq_stats(void *ctx, const cs_hook_event *ev, cs_err *err)
{
    sq_ctx *c = ctx;
    if (ev->kind != CS_HOOK_LINEAR_IN || (ev->lin != CS_LIN_Q && ev->lin != CS_LIN_GATE)) {
        return CS_OK;
    }
    return cs_actstats_add(&c->st[ev->lin == CS_LIN_Q ? 0 : 1], ev->x, ev->rows, err);
}

cs_rc cs_pipe_smooth_block(cs_model *m, size_t layer, float *x, size_t n, size_t T,
                           const size_t *lens, double alpha, cs_err *err)
{
    static const cs_lin pairs[2][3] = {{CS_LIN_Q, CS_LIN_K, CS_LIN_V},
                                       {CS_LIN_GATE, CS_LIN_UP, CS_LIN_COUNT}};
    size_t H = m->cfg.hidden;
    sq_ctx c;
    cs_hooks hooks = {.fn = sq_stats, .ctx = &c, .mask = 1u << CS_HOOK_LINEAR_IN};
    cs_smooth_params sp;
    float *s = cs_alloc_array(H, sizeof(float));
    cs_rc rc;

    memset(&c, 0, sizeof(c));
    cs_smooth_params_default(&sp);
    sp.alpha = alpha;
    if (!s) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if ((rc = cs_actstats_init(&c.st[0], H, err)) != CS_OK ||
        (rc = cs_actstats_init(&c.st[1], H, err)) != CS_OK ||
        (rc = cs_pass_block(m, layer, x, NULL, n, T, lens, &hooks, NULL, err)) != CS_OK) {
        goto out;
    }
    for (int k = 0; k < 2; k++) {
        cs_layer *ly = &m->layers[layer];
        const float *w[3];
        size_t rows[3], nl = 0;
        for (; nl < 3 && pairs[k][nl] != CS_LIN_COUNT; nl++) {
            w[nl] = ly->lin[pairs[k][nl]].w;
            rows[nl] = ly->lin[pairs[k][nl]].out;
        }
        if ((rc = cs_smooth_scales(s, H, c.st[k].absmax, w, rows, nl, &sp, err)) != CS_OK) {
            goto out;
        }
        cs_smooth_fold_norm(k == 0 ? ly->attn_norm : ly->mlp_norm, NULL, s, H);
        for (size_t i = 0; i < nl; i++) {
            cs_smooth_scale_cols(ly->lin[pairs[k][i]].w, rows[i], H, s);
        }
    }
out:
    cs_actstats_fini(&c.st[0]);
    cs_actstats_fini(&c.st[1]);
    free(s);
    return rc;
}

static cs_rc imx_run(cs_model *m, const int32_t *tokens, size_t n_samples, size_t seq_len,
                     const cs_pipe_params *p, bool quantize, float *imp_out, size_t *count,
                     cs_pipe_progress_fn progress, void *progress_ctx, cs_pipe_report *rep,
                     cs_err *err);

/* One block of GPTQ, SparseGPT, Wanda or SmoothQuant+GPTQ: SmoothQuant's smoothing from the FP
 * trajectory xfp, the statistics passes of the groups, and x becomes the next block's input (the
 * quantized block's output, or with the FP trajectory this block's output before quantization,
 * kept in *next, one buffer for every block). */
static cs_rc hessian_layer(cs_model *m, size_t layer, float *x, float *work, float *xfp,
                           float **next, size_t n, size_t T, const size_t *lens,
                           const cs_pipe_params *p, cs_pipe_report *rep, cs_err *err)
{
    const size_t H = m->cfg.hidden, rows = n * T;
    cs_rc rc = CS_OK;
    uint64_t ts = cs_time_mono_ns();
    if (p->algo == CS_PIPE_SMOOTHQUANT && p->smooth) {
        /* statistics from the FP trajectory (xfp), which the smoothing leaves unchanged */
        rc = cs_pipe_smooth_block(m, layer, xfp, n, T, lens, p->alpha, err);
        rep->t.smooth += secs_since(ts);
    }
    ts = cs_time_mono_ns();
    if (rc == CS_OK && p->fp_trajectory) {
        if (!*next && !(*next = cs_alloc_array(rows * H, sizeof(float)))) {
            return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
        memcpy(*next, x, rows * H * sizeof(float));
        rc = cs_pass_block(m, layer, *next, NULL, n, T, lens, NULL, NULL, err);
    }
    rep->t.forward += secs_since(ts);
    for (int g = 0; g < N_GROUPS && rc == CS_OK; g += p->true_sequential ? 1 : N_GROUPS) {
        rc = gptq_groups(m, layer, x, work, n, T, lens, g, p->true_sequential ? g + 1 : N_GROUPS, p,
                         rep, err);
    }
    ts = cs_time_mono_ns();
    if (rc == CS_OK && *next) {
        memcpy(x, *next, rows * H * sizeof(float));
    } else if (rc == CS_OK) {
        rc = cs_pass_block(m, layer, x, NULL, n, T, lens, NULL, NULL, err);
    }
    rep->t.forward += secs_since(ts);
    return rc;
}

cs_rc cs_pipe_quantize(cs_model *m, const int32_t *tokens, size_t n_samples, size_t seq_len,
                       const cs_pipe_params *p, cs_pipe_progress_fn progress, void *progress_ctx,
                       cs_pipe_report *rep, cs_err *err)
{
    size_t L = m->cfg.n_layers, hidden = m->cfg.hidden, rows = n_samples * seq_len;
    float *x = NULL, *work = NULL, *xfp = NULL, *next = NULL;
    size_t *lens = NULL;
    uint64_t t0 = cs_time_mono_ns();
    cs_rc rc = CS_OK;

    memset(rep, 0, sizeof(*rep));
    if (!(rep->layers = cJSON_CreateArray())) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if (cs_pipe_needs_calib(p)) {
        if (!tokens || rows == 0) {
            rc = cs_err_set(err, CS_EINVAL, 0, "%s needs calibration data",
                            cs_pipe_algo_name(p->algo));
            goto out;
        }
        if (p->algo == CS_PIPE_IMATRIX) {
            size_t count = 0;
            rc = imx_run(m, tokens, n_samples, seq_len, p, true, NULL, &count, progress,
                         progress_ctx, rep, err);
            goto out;
        }
        x = cs_alloc_array(rows * hidden, sizeof(float));
        /* AWQ's trial forwards run on a copy of the whole batch; the others' passes, a chunk */
        work = cs_alloc_array(p->algo == CS_PIPE_AWQ ? rows
                                                     : cs_pass_seqs(n_samples, seq_len) * seq_len,
                              hidden * sizeof(float));
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
        uint64_t te = cs_time_mono_ns();
        if ((rc = cs_model_embed(m, tokens, rows, x, err)) != CS_OK) {
            goto out;
        }
        rep->t.embed += secs_since(te);
        if (p->algo == CS_PIPE_SMOOTHQUANT && p->smooth) {
            if (!(xfp = cs_alloc_array(rows * hidden, sizeof(float)))) {
                rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
                goto out;
            }
            memcpy(xfp, x, rows * hidden * sizeof(float));
        }
    }
    for (size_t layer = 0; layer < L; layer++) {
        uint64_t tl = cs_time_mono_ns();
        if (p->algo == CS_PIPE_RTN) {
            rc = rtn_layer(m, layer, p, rep, err);
        } else if (p->algo == CS_PIPE_AWQ) {
            rc = awq_layer(m, layer, x, work, n_samples, seq_len, lens, p, rep, err);
        } else if (p->algo == CS_PIPE_SMOOTHQUANT && p->sq_rtn) {
            /* the original SmoothQuant: smoothing statistics from the FP trajectory (xfp), then
             * Q-SQ weights, which need no activation */
            uint64_t ts = cs_time_mono_ns();
            if (p->smooth) {
                rc = cs_pipe_smooth_block(m, layer, xfp, n_samples, seq_len, lens, p->alpha, err);
            }
            rep->t.smooth += secs_since(ts);
            if (rc == CS_OK) {
                rc = rtn_layer(m, layer, p, rep, err);
            }
        } else {
            rc = hessian_layer(m, layer, x, work, xfp, &next, n_samples, seq_len, lens, p, rep,
                               err);
        }
        if (rc != CS_OK) {
            goto out;
        }
        if (progress) {
            progress(progress_ctx, layer, L, (double)(cs_time_mono_ns() - tl) / 1e9);
        }
    }
    if (p->algo == CS_PIPE_SMOOTHQUANT) {
        m->act_bits = p->act_bits;
    }
out:
    rep->seconds = (double)(cs_time_mono_ns() - t0) / 1e9;
    cs_model_release_workspace(m); /* the passes' buffers, sized for the calibration batch */
    free(next);
    free(xfp);
    free(x);
    free(work);
    free(lens);
    if (rc != CS_OK) {
        cs_pipe_report_fini(rep);
    }
    return rc;
}

/* ---- llama.cpp imatrix ----------------------------------------------------------------------- */

/* The chunks of cs_pipe_imatrix_collect: out[n_pieces][T] (T = min(chunk, seq_len); a shorter
 * piece is right-padded with its own first token) and lens[n_pieces]; owned, free both. */
static cs_rc imx_chunks(const int32_t *tokens, size_t n, size_t seq_len, size_t chunk,
                        int32_t **out, size_t **lens, size_t *n_pieces, size_t *t_out, cs_err *err)
{
    const size_t T = chunk < seq_len ? chunk : seq_len;
    size_t per = 0, np = 0;
    *out = NULL;
    *lens = NULL;
    for (size_t s0 = 0; T > 0 && s0 < seq_len; s0 += T) {
        per += seq_len - s0 >= IMX_MIN_TOKENS ? 1 : 0;
    }
    if (per == 0 || n == 0) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "imatrix: no chunk of at least %d tokens (seq_len %zu, chunk %zu)",
                          IMX_MIN_TOKENS, seq_len, chunk);
    }
    *out = cs_alloc_array(n * per * T, sizeof(int32_t));
    *lens = cs_alloc_array(n * per, sizeof(size_t));
    if (!*out || !*lens) {
        free(*out);
        free(*lens);
        *out = NULL;
        *lens = NULL;
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory (%zu imatrix chunks)", n * per);
    }
    for (size_t i = 0; i < n; i++) {
        const int32_t *seq = tokens + i * seq_len;
        for (size_t s0 = 0; s0 < seq_len; s0 += T) {
            const size_t len = seq_len - s0 < T ? seq_len - s0 : T;
            if (len < IMX_MIN_TOKENS) {
                continue;
            }
            int32_t *dst = *out + np * T;
            memcpy(dst, seq + s0, len * sizeof(int32_t));
            for (size_t t = len; t < T; t++) {
                dst[t] = seq[s0];
            }
            (*lens)[np++] = len;
        }
    }
    *n_pieces = np;
    *t_out = T;
    return CS_OK;
}

typedef struct imx_ctx {
    size_t layer;
    cs_imatrix_acc acc[CS_LIN_COUNT]; /* the first linear of each group (q, o, gate, down) */
    double stats_s;
} imx_ctx;

static cs_rc imx_hook(void *ctx, const cs_hook_event *ev, cs_err *err)
{
    imx_ctx *c = ctx;
    if (ev->kind != CS_HOOK_LINEAR_IN || !c->acc[ev->lin].sum2) {
        return CS_OK;
    }
    uint64_t t0 = cs_time_mono_ns();
    cs_err e = {0};
    cs_rc rc = cs_imatrix_acc_add(&c->acc[ev->lin], ev->x, ev->rows, ev->valid, &e);
    c->stats_s += secs_since(t0);
    if (rc != CS_OK) {
        return cs_err_set(err, rc, 0, "layers.%zu.%s: %s", c->layer, cs_lin_name(ev->lin), e.msg);
    }
    return CS_OK;
}

/* The type of one linear: Q4_K falls back to Q5_0 where cols is not a multiple of 256, as
 * llama.cpp's tensor_type_fallback; a width that is no multiple of 32 is refused. */
static cs_rc imx_type_for(const cs_pipe_params *p, size_t layer, cs_lin l, size_t cols,
                          cs_imx_type *t, bool *fallback, cs_err *err)
{
    *t = p->imx_type;
    *fallback = false;
    if (*t == CS_IMX_Q4_K && cols % cs_imatrix_block_size(CS_IMX_Q4_K) != 0) {
        *t = CS_IMX_Q5_0;
        *fallback = true;
    }
    if (cols % cs_imatrix_block_size(*t) != 0) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "algorithm.type: %s needs the input width of layers.%zu.%s, %zu, to be "
                          "a multiple of %zu",
                          cs_imatrix_type_name(p->imx_type), layer, cs_lin_name(l), cols,
                          cs_imatrix_block_size(*t));
    }
    return CS_OK;
}

/* Quantizes one linear with imp; records it (type, fallback, tokens, imp-weighted error). */
static cs_rc imx_linear(cs_model *m, size_t layer, cs_lin l, const float *imp, size_t count,
                        const cs_pipe_params *p, float *wsave, cs_pipe_report *rep, cs_err *err)
{
    cs_linear *lin = &m->layers[layer].lin[l];
    cs_imx_type t;
    bool fallback;
    cs_err e = {0};
    cs_rc rc = imx_type_for(p, layer, l, lin->in, &t, &fallback, err);
    if (rc != CS_OK) {
        return rc;
    }
    memcpy(wsave, lin->w, lin->out * lin->in * sizeof(float));
    if ((rc = cs_imatrix_quantize(lin->w, lin->out, lin->in, t, imp, &e)) != CS_OK) {
        return cs_err_set(err, rc, 0, "layers.%zu.%s: %s", layer, cs_lin_name(l), e.msg);
    }
    double loss = 0.0;
    for (size_t r = 0; r < lin->out; r++) {
        for (size_t j = 0; j < lin->in; j++) {
            double d = (double)wsave[r * lin->in + j] - (double)lin->w[r * lin->in + j];
            loss += (double)imp[j] * d * d;
        }
    }
    cJSON *o = cJSON_CreateObject();
    if (o && !cJSON_AddItemToArray(rep->layers, o)) {
        cJSON_Delete(o);
        o = NULL;
    }
    if (!o || !cJSON_AddNumberToObject(o, "layer", (double)layer) ||
        !cJSON_AddStringToObject(o, "linear", cs_lin_name(l)) ||
        !cJSON_AddStringToObject(o, "type", cs_imatrix_type_name(t)) ||
        !cJSON_AddBoolToObject(o, "fallback", fallback) ||
        !cJSON_AddNumberToObject(o, "tokens", (double)count) ||
        !cJSON_AddNumberToObject(o, "loss", loss)) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    rep->loss += loss;
    return CS_OK;
}

/* One block: x (its FP input, n x T) becomes its FP output; the statistics of its linears' inputs
 * give imp, copied to imp_out (if not NULL; cs_pipe_imatrix_collect's layout for this layer) and,
 * if quantize, used to quantize the block's linears (after the forward, so that the next block
 * sees the unmodified block's output). */
static cs_rc imx_block(cs_model *m, size_t layer, float *x, size_t n, size_t T, const size_t *lens,
                       const cs_pipe_params *p, bool quantize, float *imp_out, size_t *count,
                       cs_pipe_report *rep, cs_err *err)
{
    cs_layer *ly = &m->layers[layer];
    imx_ctx c;
    cs_hooks hooks = {.fn = imx_hook, .ctx = &c, .mask = 1u << CS_HOOK_LINEAR_IN};
    float *imp = NULL, *wsave = NULL;
    size_t max_in = 0, max_w = 0;
    uint64_t t0;
    cs_rc rc = CS_OK;

    memset(&c, 0, sizeof(c));
    c.layer = layer;
    for (int l = 0; l < CS_LIN_COUNT; l++) {
        max_in = ly->lin[l].in > max_in ? ly->lin[l].in : max_in;
        max_w = ly->lin[l].in * ly->lin[l].out > max_w ? ly->lin[l].in * ly->lin[l].out : max_w;
    }
    for (int g = 0; g < N_GROUPS && rc == CS_OK; g++) {
        cs_lin first = group_lins[g][0];
        rc = cs_imatrix_acc_init(&c.acc[first], ly->lin[first].in, err);
    }
    imp = cs_alloc_array(max_in, sizeof(float));
    wsave = quantize ? cs_alloc_array(max_w, sizeof(float)) : NULL;
    if (rc == CS_OK && (!imp || (quantize && !wsave))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if (rc != CS_OK) {
        goto out;
    }
    t0 = cs_time_mono_ns();
    rc = cs_pass_block(m, layer, x, NULL, n, T, lens, &hooks, NULL, err);
    rep->t.forward += secs_since(t0) - c.stats_s;
    rep->t.stats += c.stats_s;
    if (rc != CS_OK) {
        goto out;
    }
    t0 = cs_time_mono_ns();
    for (int g = 0; g < N_GROUPS; g++) {
        const cs_imatrix_acc *acc = &c.acc[group_lins[g][0]];
        if ((rc = cs_imatrix_acc_get(acc, imp, err)) != CS_OK) {
            goto out;
        }
        *count = acc->count;
        for (int k = 0; k < 3 && group_lins[g][k] != CS_LIN_COUNT; k++) {
            cs_lin l = group_lins[g][k];
            if (imp_out) {
                /* cs_lin order inside the layer: q k v o gate up down */
                size_t off = 0;
                for (int i = 0; i < (int)l; i++) {
                    off += ly->lin[i].in;
                }
                memcpy(imp_out + off, imp, ly->lin[l].in * sizeof(float));
            }
            if (quantize &&
                (rc = imx_linear(m, layer, l, imp, acc->count, p, wsave, rep, err)) != CS_OK) {
                goto out;
            }
        }
    }
    rep->t.imatrix += secs_since(t0);
out:
    for (int l = 0; l < CS_LIN_COUNT; l++) {
        cs_imatrix_acc_fini(&c.acc[l]);
    }
    free(imp);
    free(wsave);
    return rc;
}

/* The imatrix algorithm over the whole model: chunks embedded once, then block by block on the
 * FP trajectory (collect, then quantize if asked). imp_out: NULL or the collect layout. */
static cs_rc imx_run(cs_model *m, const int32_t *tokens, size_t n_samples, size_t seq_len,
                     const cs_pipe_params *p, bool quantize, float *imp_out, size_t *count,
                     cs_pipe_progress_fn progress, void *progress_ctx, cs_pipe_report *rep,
                     cs_err *err)
{
    int32_t *ct = NULL;
    size_t *lens = NULL, np = 0, T = 0, off = 0;
    float *x = NULL;
    cs_rc rc = imx_chunks(tokens, n_samples, seq_len, p->imx_chunk, &ct, &lens, &np, &T, err);
    if (rc != CS_OK) {
        return rc;
    }
    if (!(x = cs_alloc_array(np * T * m->cfg.hidden, sizeof(float)))) {
        rc = cs_err_set(err, CS_ENOMEM, 0,
                        "out of memory (imatrix activations: %zu chunks x %zu x %zu floats)", np, T,
                        m->cfg.hidden);
        goto out;
    }
    uint64_t te = cs_time_mono_ns();
    if ((rc = cs_model_embed(m, ct, np * T, x, err)) != CS_OK) {
        goto out;
    }
    rep->t.embed += secs_since(te);
    for (size_t layer = 0; layer < m->cfg.n_layers; layer++) {
        uint64_t tl = cs_time_mono_ns();
        if ((rc = imx_block(m, layer, x, np, T, lens, p, quantize, imp_out ? imp_out + off : NULL,
                            count, rep, err)) != CS_OK) {
            goto out;
        }
        for (int l = 0; l < CS_LIN_COUNT; l++) {
            off += m->layers[layer].lin[l].in;
        }
        if (progress) {
            progress(progress_ctx, layer, m->cfg.n_layers, secs_since(tl));
        }
    }
    if (quantize && p->imx_type == CS_IMX_Q4_K) {
        size_t n_fb = 0, n_all = 0;
        const cJSON *r;
        cJSON_ArrayForEach(r, rep->layers)
        {
            n_fb += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "fallback"));
            n_all++;
        }
        if (n_fb) {
            cs_log(CS_LOG_WARN,
                   "imatrix: %zu of %zu linears have an input width that is not a multiple of 256 "
                   "and were quantized as q5_0 (llama.cpp's fallback for q4_k; listed in the "
                   "report)",
                   n_fb, n_all);
        }
    }
out:
    free(ct);
    free(lens);
    free(x);
    return rc;
}

cs_rc cs_pipe_imatrix_collect(cs_model *m, const int32_t *tokens, size_t n_samples, size_t seq_len,
                              size_t chunk, float **out, size_t *n_out, size_t *count, cs_err *err)
{
    cs_pipe_params p;
    cs_pipe_report rep;
    size_t total = 0;
    cs_rc rc;
    memset(&p, 0, sizeof(p));
    memset(&rep, 0, sizeof(rep));
    *out = NULL;
    *n_out = 0;
    *count = 0;
    p.algo = CS_PIPE_IMATRIX;
    p.imx_chunk = chunk;
    if (!tokens || chunk == 0) {
        return cs_err_set(err, CS_EINVAL, 0, "imatrix: no calibration tokens or chunk 0");
    }
    for (size_t layer = 0; layer < m->cfg.n_layers; layer++) {
        for (int l = 0; l < CS_LIN_COUNT; l++) {
            total += m->layers[layer].lin[l].in;
        }
    }
    if (!(*out = cs_alloc_array(total, sizeof(float)))) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    rc = imx_run(m, tokens, n_samples, seq_len, &p, false, *out, count, NULL, NULL, &rep, err);
    if (rc != CS_OK) {
        free(*out);
        *out = NULL;
        *count = 0;
        return rc;
    }
    *n_out = total;
    return CS_OK;
}

/* ---- saving ---------------------------------------------------------------------------------- */

typedef struct st_item {
    char name[96];
    const float *data;
    size_t d0, d1; /* d1 == 0: a vector */
} st_item;

static cs_rc copy_file(const char *src_dir, const char *dst_dir, const char *name, bool required,
                       cs_err *err)
{
    char *src = NULL, *dst = NULL, *data = NULL;
    size_t len = 0;
    cs_rc rc = cs_path_join(src_dir, name, &src, err);
    if (rc == CS_OK) {
        rc = cs_path_join(dst_dir, name, &dst, err);
    }
    if (rc == CS_OK) {
        rc = cs_path_read_file(src, (size_t)1 << 30, &data, &len, err);
        if (rc == CS_ENOENT && !required) {
            rc = CS_OK;
        } else if (rc == CS_OK) {
            rc = cs_path_write_atomic(dst, data, len, 0644, err);
        }
    }
    free(src);
    free(dst);
    free(data);
    return rc;
}

cs_rc cs_pipe_save(const cs_model *m, const char *src_dir, const char *dst_dir,
                   const cJSON *qconfig, cs_err *err)
{
    static const char *const part[CS_LIN_COUNT] = {
            "self_attn", "self_attn", "self_attn", "self_attn", "mlp", "mlp", "mlp"};
    static const char *const extra[] = {"generation_config.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "vocab.json", "merges.txt"};
    size_t L = m->cfg.n_layers, H = m->cfg.hidden, n = 0, cap = 3 + L * (2 + 2 * CS_LIN_COUNT);
    st_item *it = cs_alloc_array(cap, sizeof(st_item));
    cJSON *hdr = NULL;
    char *hjson = NULL, *path = NULL, *qtext = NULL;
    uint8_t *buf = NULL;
    cs_rc rc = CS_OK;

    if (!it || !(hdr = cJSON_CreateObject())) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
#define ADD(D, A, B, ...)                                     \
    do {                                                      \
        snprintf(it[n].name, sizeof it[n].name, __VA_ARGS__); \
        it[n].data = (D);                                     \
        it[n].d0 = (A);                                       \
        it[n].d1 = (B);                                       \
        n++;                                                  \
    } while (0)
    ADD(m->embed, m->cfg.vocab, H, "model.embed_tokens.weight");
    ADD(m->final_norm, H, 0, "model.norm.weight");
    if (m->lm_head.w != m->embed) {
        ADD(m->lm_head.w, m->cfg.vocab, H, "lm_head.weight");
    }
    for (size_t l = 0; l < L; l++) {
        const cs_layer *ly = &m->layers[l];
        ADD(ly->attn_norm, H, 0, "model.layers.%zu.input_layernorm.weight", l);
        ADD(ly->mlp_norm, H, 0, "model.layers.%zu.post_attention_layernorm.weight", l);
        for (int k = 0; k < CS_LIN_COUNT; k++) {
            const cs_linear *lin = &ly->lin[k];
            ADD(lin->w, lin->out, lin->in, "model.layers.%zu.%s.%s.weight", l, part[k],
                cs_lin_name((cs_lin)k));
            if (lin->b) {
                ADD(lin->b, lin->out, 0, "model.layers.%zu.%s.%s.bias", l, part[k],
                    cs_lin_name((cs_lin)k));
            }
        }
    }
#undef ADD
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t bytes = it[i].d0 * (it[i].d1 ? it[i].d1 : 1) * sizeof(float);
        cJSON *t = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        if (!t || !shape || !offs || !cJSON_AddItemToObject(hdr, it[i].name, t) ||
            !cJSON_AddStringToObject(t, "dtype", "F32") ||
            !cJSON_AddItemToObject(t, "shape", shape) ||
            !cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)it[i].d0)) ||
            (it[i].d1 && !cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)it[i].d1))) ||
            !cJSON_AddItemToObject(t, "data_offsets", offs) ||
            !cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off)) ||
            !cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + bytes)))) {
            cJSON_Delete(t);
            cJSON_Delete(shape);
            cJSON_Delete(offs);
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            goto out;
        }
        off += bytes;
    }
    cJSON *meta = cJSON_AddObjectToObject(hdr, "__metadata__");
    if (!meta || !cJSON_AddStringToObject(meta, "format", "pt") ||
        !(hjson = cJSON_PrintUnformatted(hdr))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    size_t hlen = strlen(hjson), pad = (8 - hlen % 8) % 8, total = 8 + hlen + pad + off;
    if (!(buf = malloc(total))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory (%zu bytes of safetensors)", total);
        goto out;
    }
    uint64_t hl = hlen + pad;
    for (int b = 0; b < 8; b++) {
        buf[b] = (uint8_t)(hl >> (8 * b));
    }
    memcpy(buf + 8, hjson, hlen);
    memset(buf + 8 + hlen, ' ', pad);
    off = 8 + hlen + pad;
    for (size_t i = 0; i < n; i++) {
        size_t bytes = it[i].d0 * (it[i].d1 ? it[i].d1 : 1) * sizeof(float);
        memcpy(buf + off, it[i].data, bytes); /* little-endian f32, as the host */
        off += bytes;
    }
    if ((rc = cs_path_mkdir_p(dst_dir, 0755, err)) != CS_OK ||
        (rc = cs_path_join(dst_dir, "model.safetensors", &path, err)) != CS_OK ||
        (rc = cs_path_write_atomic(path, buf, total, 0644, err)) != CS_OK ||
        (rc = copy_file(src_dir, dst_dir, "config.json", true, err)) != CS_OK ||
        (rc = copy_file(src_dir, dst_dir, "tokenizer.json", true, err)) != CS_OK) {
        goto out;
    }
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        if ((rc = copy_file(src_dir, dst_dir, extra[i], false, err)) != CS_OK) {
            goto out;
        }
    }
    if (qconfig) {
        free(path);
        path = NULL;
        if (!(qtext = cJSON_Print(qconfig))) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            goto out;
        }
        if ((rc = cs_path_join(dst_dir, "quantization_config.json", &path, err)) != CS_OK ||
            (rc = cs_path_write_atomic(path, qtext, strlen(qtext), 0644, err)) != CS_OK) {
            goto out;
        }
    }
out:
    free(it);
    cJSON_Delete(hdr);
    free(hjson);
    free(path);
    free(qtext);
    free(buf);
    return rc;
}

cJSON *cs_pipe_params_to_json(const cs_pipe_params *p)
{
    static const char *const fam[] = {"gptq", "awq", "sq", "ct"};
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddStringToObject(o, "name", cs_pipe_algo_name(p->algo)) &&
              cJSON_AddNumberToObject(o, "version", 1) &&
              cJSON_AddStringToObject(o, "trajectory", p->fp_trajectory ? "fp" : "quantized");
    if (ok && (p->algo == CS_PIPE_SPARSEGPT || p->algo == CS_PIPE_WANDA)) {
        char nm[32];
        snprintf(nm, sizeof nm, "%zu:%zu", p->prune_n, p->prune_m);
        ok = cJSON_AddNumberToObject(o, "sparsity", p->sparsity) &&
             cJSON_AddStringToObject(o, "nm", p->prune_m ? nm : "");
    } else if (ok && p->algo == CS_PIPE_IMATRIX) {
        bool k = p->imx_type == CS_IMX_Q4_K;
        ok = cJSON_AddStringToObject(o, "type", cs_imatrix_type_name(p->imx_type)) &&
             cJSON_AddNumberToObject(o, "chunk", (double)p->imx_chunk) &&
             cJSON_AddNumberToObject(o, "min_chunk_tokens", IMX_MIN_TOKENS) &&
             cJSON_AddNumberToObject(o, "bits", 4) &&
             cJSON_AddNumberToObject(o, "block_size", 32) &&
             cJSON_AddNumberToObject(o, "super_block", k ? 256 : 0) &&
             cJSON_AddBoolToObject(o, "sym", !k) &&
             cJSON_AddStringToObject(o, "scale_dtype",
                                     k ? "fp16 d, dmin; 6-bit scales, mins" : "fp16") &&
             cJSON_AddStringToObject(o, "fallback",
                                     k ? "q5_0 where the input width is not a "
                                         "multiple of 256"
                                       : "") &&
             cJSON_AddStringToObject(o, "statistics",
                                     "sum x^2 / count per input column, FP model, double") &&
             cJSON_AddStringToObject(o, "chunking",
                                     "each sequence cut into chunks of `chunk` tokens; chunks "
                                     "under min_chunk_tokens dropped") &&
             cJSON_AddStringToObject(o, "reference", "llama.cpp imatrix + ggml-quants.c");
    } else if (ok) {
        ok = cJSON_AddNumberToObject(o, "bits", p->q.bits) &&
             cJSON_AddNumberToObject(o, "group_size", (double)p->group_size) &&
             cJSON_AddBoolToObject(o, "sym", p->q.sym) &&
             cJSON_AddStringToObject(o, "grid", (unsigned)p->q.family < 4 ? fam[p->q.family] : "?");
    }
    if (ok && (p->algo == CS_PIPE_GPTQ || (p->algo == CS_PIPE_SMOOTHQUANT && !p->sq_rtn) ||
               p->algo == CS_PIPE_SPARSEGPT)) {
        ok = cJSON_AddNumberToObject(o, "damp", p->gptq.percdamp) &&
             cJSON_AddNumberToObject(o, "damp_step", p->gptq.damp_step) &&
             cJSON_AddNumberToObject(o, "damp_max", p->gptq.damp_max) &&
             cJSON_AddNumberToObject(o, "block_size", (double)p->gptq.blocksize) &&
             cJSON_AddBoolToObject(o, "act_order", p->gptq.act_order) &&
             cJSON_AddBoolToObject(o, "static_groups", p->gptq.static_groups) &&
             cJSON_AddBoolToObject(o, "true_sequential", p->true_sequential);
    }
    if (ok && p->algo == CS_PIPE_AWQ) {
        ok = cJSON_AddBoolToObject(o, "duo_scaling", p->awq.duo_scaling) &&
             cJSON_AddNumberToObject(o, "n_grid", (double)p->awq.n_grid) &&
             cJSON_AddBoolToObject(o, "clip", p->awq_clip) &&
             cJSON_AddNumberToObject(o, "clip_grid", (double)p->awq.clip_grid) &&
             cJSON_AddNumberToObject(o, "clip_tokens", (double)p->awq.clip_tokens);
    }
    if (ok && p->algo == CS_PIPE_SMOOTHQUANT) {
        ok = cJSON_AddNumberToObject(o, "alpha", p->alpha) &&
             cJSON_AddBoolToObject(o, "smooth", p->smooth) &&
             cJSON_AddStringToObject(o, "smooth_variant", "absmax") &&
             cJSON_AddStringToObject(o, "weights", p->sq_rtn ? "rtn" : "gptq") &&
             cJSON_AddNumberToObject(o, "act_bits", p->act_bits) &&
             cJSON_AddStringToObject(o, "act_quant", "per-token symmetric dynamic");
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
