/* quant_pipeline_test.c - model-level invariants of the quantization pipeline (cs_pipeline.h) on
 * the testbed models: SmoothQuant's smoothing + folding leaves the float logits unchanged; W8A8
 * with smoothing beats W8A8 without on a model with injected outlier channels (norm weights scaled
 * up, the following linears' columns scaled down: the float model is unchanged), with GPTQ weights
 * and with the original SmoothQuant's Q-SQ weights (on their per-row grid); on the same model,
 * GPTQ and AWQ end closer to the float logits than RTN on their grids; a quantized model
 * saved and reloaded gives identical logits; Wanda's 50% per row and the N:M patterns of Wanda and
 * SparseGPT hold on every pruned layer; a non-positive-definite Hessian (injected) falls back to
 * RTN, is recorded, and gives exactly the RTN weights; true-sequential GPTQ, whose statistics
 * passes stop at the input of the group they collect, gives bit for bit the weights of a naive
 * twin that runs every pass through the whole block, and the report's stage times add up.
 * Calibration: 16 windows of 64 tokens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_gptq.h"
#include "cs_hessian.h"
#include "cs_json.h"
#include "cs_model.h"
#include "cs_path.h"
#include "cs_pipeline.h"
#include "cs_source.h"
#include "cs_test.h"
#include "cs_tok.h"

#define N_CAL 16
#define T_CAL 64

static char *src_path(const char *rel)
{
    const char *root = getenv("CS_SOURCE_DIR");
    cs_buf b;
    cs_buf_init(&b);
    assert_int_equal(cs_buf_printf(&b, "%s/%s", root ? root : ".", rel), CS_OK);
    return cs_buf_take(&b);
}

static void check_rc(cs_rc rc, const cs_err *err)
{
    if (rc != CS_OK) {
        print_error("%s\n", err->msg);
    }
    assert_int_equal(rc, CS_OK);
}

static cs_model *load_model(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "sweeps/testbed/models/%s", name);
    char *dir = src_path(rel);
    cs_model *m = NULL;
    cs_err err = {0};
    check_rc(cs_model_load(&m, dir, 2, &err), &err);
    free(dir);
    return m;
}

/* n windows of T tokens from the prose corpus (seed 0). */
static int32_t *calib_windows(const char *name, size_t n, size_t T)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "sweeps/testbed/models/%s/tokenizer.json", name);
    char *tp = src_path(rel), *cp = src_path("sweeps/testbed/data/corpus/prose.jsonl");
    cs_tok *tok = NULL;
    cs_err err = {0};
    int32_t *stream = NULL, *out = NULL;
    size_t nw = n, *offs = NULL;
    n = 0;
    check_rc(cs_tok_load(&tok, tp, &err), &err);
    cs_calib_source src = {.kind = "jsonl", .path = cp};
    check_rc(cs_calib_source_tokens(&src, tok, &stream, &n, &err), &err);
    check_rc(cs_calib_random_windows(stream, n, nw, T, 0, &out, &offs, &err), &err);
    free(stream);
    free(offs);
    free(tp);
    free(cp);
    cs_tok_destroy(tok);
    return out;
}

/* N_CAL windows of T_CAL tokens. */
static int32_t *calib_tokens(const char *name)
{
    return calib_windows(name, N_CAL, T_CAL);
}

/* The held-out text's ids (owned; *n of them). */
static int32_t *heldout_ids(const char *name, size_t *n_out)
{
    char rel[128];
    snprintf(rel, sizeof(rel), "sweeps/testbed/models/%s/tokenizer.json", name);
    char *tp = src_path(rel), *hp = src_path("sweeps/testbed/data/heldout.txt"), *text = NULL;
    cs_tok *tok = NULL;
    cs_err err = {0};
    int32_t *ids = NULL;
    size_t len = 0, n = 0;
    check_rc(cs_tok_load(&tok, tp, &err), &err);
    check_rc(cs_path_read_file(hp, 0, &text, &len, &err), &err);
    check_rc(cs_tok_encode(tok, text, len, CS_TOK_ADD_SPECIAL, &ids, &n, &err), &err);
    free(tp);
    free(hp);
    free(text);
    cs_tok_destroy(tok);
    *n_out = n;
    return ids;
}

static double heldout_ppl(cs_model *m, const char *name)
{
    size_t n = 0, nw = 0;
    double ppl = 0;
    cs_err err = {0};
    int32_t *ids = heldout_ids(name, &n);
    check_rc(cs_model_ppl(m, ids, n, 256, 4, NULL, &nw, &ppl, &err), &err);
    free(ids);
    return ppl;
}

static double mse(const float *a, const float *b, size_t n)
{
    double acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    return acc / (double)n;
}

/* logits of the first 2 windows of T_CAL tokens of tokens */
static float *logits_of(cs_model *m, const int32_t *tokens)
{
    float *lg = malloc(2 * T_CAL * m->cfg.vocab * sizeof(float));
    cs_err err = {0};
    assert_non_null(lg);
    check_rc(cs_model_forward(m, tokens, 2, T_CAL, NULL, NULL, NULL, lg, &err), &err);
    return lg;
}

static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double mx = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs((double)a[i]));
        d = fmax(d, fabs((double)a[i] - (double)b[i]));
    }
    return d / (mx > 0 ? mx : 1);
}

static void params(cs_pipe_params *p, const char *json)
{
    cJSON *j = cJSON_Parse(json);
    cs_err err = {0};
    assert_non_null(j);
    check_rc(cs_pipe_params_from_json(p, j, &err), &err);
    cJSON_Delete(j);
}

static void quantize(cs_model *m, const int32_t *tok, const cs_pipe_params *p, cs_pipe_report *rep)
{
    cs_err err = {0};
    check_rc(cs_pipe_quantize(m, tok, N_CAL, T_CAL, p, NULL, NULL, rep, &err), &err);
}

static void smooth_invariant(const char *name)
{
    cs_model *m = load_model(name);
    int32_t *tok = calib_tokens(name);
    size_t H = m->cfg.hidden, rows = N_CAL * T_CAL;
    float *before = logits_of(m, tok), *x = malloc(rows * H * sizeof(float));
    float norm0 = m->layers[0].attn_norm[0];
    bool changed = false;
    cs_err err = {0};
    assert_non_null(x);
    check_rc(cs_model_embed(m, tok, rows, x, &err), &err);
    for (size_t l = 0; l < m->cfg.n_layers; l++) {
        float n1 = m->layers[l].mlp_norm[1];
        check_rc(cs_pipe_smooth_block(m, l, x, N_CAL, T_CAL, NULL, 0.5, &err), &err);
        changed = changed || m->layers[l].mlp_norm[1] != n1;
    }
    assert_true(changed && m->layers[0].attn_norm[0] != norm0);
    float *after = logits_of(m, tok);
    double d = max_rel_diff(before, after, 2 * T_CAL * m->cfg.vocab);
    print_message("# %s: smoothing changes the logits by %.3g (relative to max |logit|)\n", name,
                  d);
    assert_true(d < 1e-4);
    free(before);
    free(after);
    free(x);
    free(tok);
    cs_model_destroy(m);
}

static void test_smooth_invariant_llama(void **state)
{
    (void)state;
    smooth_invariant("tb-llama");
}

static void test_smooth_invariant_qwen(void **state)
{
    (void)state;
    smooth_invariant("tb-qwen");
}

/* Channels j of both norms of every block times f, the columns j of q,k,v and gate,up over f. */
static void inject_outliers(cs_model *m, float f)
{
    static const size_t ch[] = {3, 37, 77, 110}; /* < hidden (128) */
    static const cs_lin after_attn[] = {CS_LIN_Q, CS_LIN_K, CS_LIN_V};
    for (size_t l = 0; l < m->cfg.n_layers; l++) {
        cs_layer *ly = &m->layers[l];
        for (size_t c = 0; c < sizeof ch / sizeof ch[0]; c++) {
            size_t j = ch[c];
            ly->attn_norm[j] *= f;
            ly->mlp_norm[j] *= f;
            for (int k = 0; k < 3; k++) {
                cs_linear *lin = &ly->lin[after_attn[k]];
                for (size_t r = 0; r < lin->out; r++) {
                    lin->w[r * lin->in + j] /= f;
                }
            }
            for (int k = CS_LIN_GATE; k <= CS_LIN_UP; k++) {
                cs_linear *lin = &ly->lin[k];
                for (size_t r = 0; r < lin->out; r++) {
                    lin->w[r * lin->in + j] /= f;
                }
            }
        }
    }
}

/* 8-bit quantization moves the testbed's perplexity by only 0.2-0.7 % (BENCHMARKS.md), so the
 * comparison here is the finer one: the held-out logits' mean squared error to the float model,
 * with stronger outliers injected on top of the testbed's own. */
static void w8a8_outliers(const char *weights)
{
    const char *name = "tb-llama";
    int32_t *tok = calib_tokens(name);
    cs_model *a = load_model(name), *b = load_model(name);
    double fp = heldout_ppl(a, name);
    inject_outliers(a, 64.0f);
    inject_outliers(b, 64.0f);
    double fp_inj = heldout_ppl(a, name);
    assert_true(fabs(fp_inj - fp) / fp < 1e-4); /* the float model is unchanged */
    size_t nh = 0, nl = 2 * T_CAL * a->cfg.vocab;
    int32_t *held = heldout_ids(name, &nh);
    assert_true(nh >= 2 * T_CAL);
    float *lf = logits_of(a, held);
    cs_pipe_params ps, pn;
    cs_pipe_report ra, rb;
    char js[128], jn[128];
    snprintf(js, sizeof js, "{\"name\":\"smoothquant\",\"alpha\":0.5,\"weights\":\"%s\"}", weights);
    snprintf(jn, sizeof jn, "{\"name\":\"smoothquant\",\"smooth\":false,\"weights\":\"%s\"}",
             weights);
    params(&ps, js);
    params(&pn, jn);
    quantize(a, tok, &ps, &ra);
    quantize(b, tok, &pn, &rb);
    assert_int_equal(a->act_bits, 8);
    double pa = heldout_ppl(a, name), pb = heldout_ppl(b, name);
    float *la = logits_of(a, held), *lb = logits_of(b, held);
    double ea = mse(la, lf, nl), eb = mse(lb, lf, nl);
    print_message("# W8A8 (%s weights) on %s with outliers: held-out logits MSE to float: smoothed "
                  "%.4g, not smoothed %.4g (ppl float %.6f, smoothed %.6f, not smoothed %.6f)\n",
                  weights, name, ea, eb, fp_inj, pa, pb);
    assert_true(ea < eb);
    if (strcmp(weights, "rtn") == 0) {
        /* Q-SQ: every row is a multiple of its scale max|w| / 127, and max|w| is 127 steps */
        for (size_t l = 0; l < a->cfg.n_layers; l++) {
            for (int k = 0; k < CS_LIN_COUNT; k++) {
                const cs_linear *lin = &a->layers[l].lin[k];
                for (size_t r = 0; r < lin->out; r++) {
                    const float *w = lin->w + r * lin->in;
                    float mx = 0.0f;
                    for (size_t j = 0; j < lin->in; j++) {
                        mx = fmaxf(mx, fabsf(w[j]));
                    }
                    const float scale = mx / 127.0f;
                    for (size_t j = 0; j < lin->in; j++) {
                        const float q = w[j] / scale;
                        assert_true(fabsf(q - rintf(q)) < 1e-3f && fabsf(q) <= 127.001f);
                    }
                }
            }
        }
    }
    free(la);
    free(lb);
    free(lf);
    free(held);
    cs_pipe_report_fini(&ra);
    cs_pipe_report_fini(&rb);
    cs_model_destroy(a);
    cs_model_destroy(b);
    free(tok);
}

static void test_w8a8_outliers(void **state)
{
    (void)state;
    w8a8_outliers("gptq");
}

/* The original SmoothQuant: Q-SQ weights per row. */
static void test_w8a8_outliers_rtn(void **state)
{
    (void)state;
    w8a8_outliers("rtn");
}

/* docs/specs/ptq-algorithms.md section 8's smoke test on the model with injected outlier channels:
 * GPTQ and AWQ (4 bits, groups of 64) end closer to the float model than RTN on the same grid
 * (held-out logits MSE). */
static void test_gptq_awq_beat_rtn_outliers(void **state)
{
    (void)state;
    static const char *const pairs[2][2] = {
            {"{\"name\":\"gptq\",\"bits\":4,\"group_size\":64}",
             "{\"name\":\"rtn\",\"bits\":4,\"group_size\":64,\"grid\":\"gptq\",\"sym\":true}"},
            {"{\"name\":\"awq\",\"bits\":4,\"group_size\":64}",
             "{\"name\":\"rtn\",\"bits\":4,\"group_size\":64,\"grid\":\"awq\"}"}};
    const char *name = "tb-llama";
    int32_t *tok = calib_tokens(name);
    size_t nh = 0;
    int32_t *held = heldout_ids(name, &nh);
    cs_model *f = load_model(name);
    inject_outliers(f, 64.0f);
    const size_t nl = 2 * T_CAL * f->cfg.vocab;
    float *lf = logits_of(f, held);
    for (int k = 0; k < 2; k++) {
        double e[2];
        for (int i = 0; i < 2; i++) {
            cs_model *m = load_model(name);
            cs_pipe_params p;
            cs_pipe_report rep;
            inject_outliers(m, 64.0f);
            params(&p, pairs[k][i]);
            quantize(m, tok, &p, &rep);
            float *lg = logits_of(m, held);
            e[i] = mse(lg, lf, nl);
            free(lg);
            cs_pipe_report_fini(&rep);
            cs_model_destroy(m);
        }
        print_message(
                "# %s with outliers: held-out logits MSE to float %.4g, RTN on its grid %.4g\n",
                k == 0 ? "GPTQ" : "AWQ", e[0], e[1]);
        assert_true(e[0] < e[1]);
    }
    free(lf);
    free(held);
    free(tok);
    cs_model_destroy(f);
}

static void test_save_reload(void **state)
{
    (void)state;
    const char *name = "tb-qwen";
    int32_t *tok = calib_tokens(name);
    cs_model *m = load_model(name), *r = NULL;
    cs_pipe_params p;
    cs_pipe_report rep;
    cs_err err = {0};
    char tmpl[] = "/tmp/cs_qsave_XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *src = src_path("sweeps/testbed/models/tb-qwen"), *out = NULL;
    check_rc(cs_path_join(tmpl, "q", &out, &err), &err);
    params(&p, "{\"name\":\"gptq\",\"bits\":3,\"group_size\":32}");
    quantize(m, tok, &p, &rep);
    cJSON *qc = cJSON_CreateObject();
    check_rc(cs_pipe_save(m, src, out, qc, &err), &err);
    check_rc(cs_model_load(&r, out, 2, &err), &err);
    float *la = logits_of(m, tok), *lb = logits_of(r, tok);
    assert_memory_equal(la, lb, 2 * T_CAL * m->cfg.vocab * sizeof(float));
    free(la);
    free(lb);
    cJSON_Delete(qc);
    cs_model_destroy(r);
    cs_pipe_report_fini(&rep);
    cs_model_destroy(m);
    const char *files[] = {"model.safetensors",     "config.json",
                           "tokenizer.json",        "quantization_config.json",
                           "tokenizer_config.json", "generation_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *f = NULL;
        check_rc(cs_path_join(out, files[i], &f, &err), &err);
        remove(f);
        free(f);
    }
    remove(out);
    remove(tmpl);
    free(out);
    free(src);
    free(tok);
}

/* zeros of every pruned linear: n_of_m > 0 checks >= n zeros in each run of m columns; else each
 * row (per_row) or each layer has at least the fraction half. */
static void check_sparse(const char *json, size_t n, size_t mm, bool per_row)
{
    const char *name = "tb-qwen";
    int32_t *tok = calib_tokens(name);
    cs_model *m = load_model(name);
    cs_pipe_params p;
    cs_pipe_report rep;
    params(&p, json);
    quantize(m, tok, &p, &rep);
    for (size_t l = 0; l < m->cfg.n_layers; l++) {
        for (int k = 0; k < CS_LIN_COUNT; k++) {
            const cs_linear *lin = &m->layers[l].lin[k];
            size_t total = 0;
            for (size_t r = 0; r < lin->out; r++) {
                const float *row = lin->w + r * lin->in;
                size_t zr = 0;
                for (size_t j = 0; j < lin->in; j++) {
                    zr += row[j] == 0.0f;
                }
                total += zr;
                if (mm) {
                    for (size_t j0 = 0; j0 < lin->in; j0 += mm) {
                        size_t z = 0;
                        for (size_t j = j0; j < j0 + mm; j++) {
                            z += row[j] == 0.0f;
                        }
                        assert_true(z >= n);
                    }
                } else if (per_row) {
                    assert_true(zr >= lin->in / 2 && zr <= lin->in / 2 + 2);
                }
            }
            assert_true(total * 2 >= lin->out * lin->in);
        }
    }
    cs_pipe_report_fini(&rep);
    cs_model_destroy(m);
    free(tok);
}

static void test_wanda_unstructured(void **state)
{
    (void)state;
    check_sparse("{\"name\":\"wanda\",\"sparsity\":0.5}", 0, 0, true);
}

static void test_wanda_2_4(void **state)
{
    (void)state;
    check_sparse("{\"name\":\"wanda\",\"pattern\":\"2:4\"}", 2, 4, false);
}

static void test_sparsegpt_unstructured(void **state)
{
    (void)state;
    check_sparse("{\"name\":\"sparsegpt\",\"sparsity\":0.5}", 0, 0, false);
}

static void test_sparsegpt_4_8(void **state)
{
    (void)state;
    check_sparse("{\"name\":\"sparsegpt\",\"pattern\":\"4:8\"}", 4, 8, false);
}

static void test_rtn_fallback(void **state)
{
    (void)state;
    const char *name = "tb-qwen";
    int32_t *tok = calib_tokens(name);
    cs_model *m = load_model(name), *ref = load_model(name);
    cs_pipe_params p;
    cs_pipe_report rep;
    cs_err err = {0};
    params(&p, "{\"name\":\"gptq\",\"bits\":4,\"group_size\":-1}");
    p.fault_nonpd_layer = 1;
    quantize(m, tok, &p, &rep);
    assert_int_equal(rep.n_fallback, CS_LIN_COUNT);
    const cJSON *e;
    size_t seen = 0;
    cJSON_ArrayForEach(e, rep.layers)
    {
        bool fb = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "rtn_fallback"));
        int layer = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "layer"));
        assert_int_equal(fb, layer == 1);
        seen += fb;
    }
    assert_int_equal(seen, CS_LIN_COUNT);
    for (int k = 0; k < CS_LIN_COUNT; k++) {
        cs_linear *lin = &ref->layers[1].lin[k];
        check_rc(cs_quant_rtn(lin->w, lin->out, lin->in, &p.q, 0, &err), &err);
        assert_memory_equal(lin->w, m->layers[1].lin[k].w, lin->out * lin->in * sizeof(float));
    }
    cs_pipe_report_fini(&rep);
    cs_model_destroy(m);
    cs_model_destroy(ref);
    free(tok);
}

/* The naive twin of true-sequential GPTQ: every statistics pass runs the whole block over the
 * whole batch at once (the pipeline's passes run chunks of it). */
typedef struct twin_ctx {
    cs_hessian *h;
    cs_lin lin;
} twin_ctx;

static cs_rc twin_hook(void *ctx, const cs_hook_event *ev, cs_err *err)
{
    twin_ctx *t = ctx;
    if (ev->kind == CS_HOOK_LINEAR_IN && ev->lin == t->lin) {
        return cs_hessian_add(t->h, ev->x, ev->rows, err);
    }
    return CS_OK;
}

static void gptq_twin(cs_model *m, const int32_t *tok, size_t n, size_t T, const cs_pipe_params *p)
{
    static const cs_lin groups[4][3] = {{CS_LIN_Q, CS_LIN_K, CS_LIN_V},
                                        {CS_LIN_O, CS_LIN_COUNT, CS_LIN_COUNT},
                                        {CS_LIN_GATE, CS_LIN_UP, CS_LIN_COUNT},
                                        {CS_LIN_DOWN, CS_LIN_COUNT, CS_LIN_COUNT}};
    const size_t H = m->cfg.hidden, rows = n * T;
    float *x = malloc(rows * H * sizeof(float)), *work = malloc(rows * H * sizeof(float));
    cs_err err = {0};
    assert_true(x && work);
    check_rc(cs_model_embed(m, tok, rows, x, &err), &err);
    for (size_t l = 0; l < m->cfg.n_layers; l++) {
        for (int g = 0; g < 4; g++) {
            const size_t cols = m->layers[l].lin[groups[g][0]].in;
            twin_ctx t = {.lin = groups[g][0]};
            cs_hooks hooks = {.fn = twin_hook, .ctx = &t, .mask = 1u << CS_HOOK_LINEAR_IN};
            float *h = malloc(cols * cols * sizeof(float));
            assert_non_null(h);
            check_rc(cs_hessian_create(&t.h, cols, &err), &err);
            memcpy(work, x, rows * H * sizeof(float));
            check_rc(cs_model_block(m, l, work, n, T, NULL, &hooks, &err), &err);
            check_rc(cs_hessian_get(t.h, h, &err), &err);
            for (int k = 0; k < 3 && groups[g][k] != CS_LIN_COUNT; k++) {
                cs_linear *lin = &m->layers[l].lin[groups[g][k]];
                cs_gptq_result res;
                check_rc(cs_gptq_quantize(lin->w, lin->out, lin->in, h, &p->gptq, &res, &err),
                         &err);
            }
            cs_hessian_destroy(t.h);
            free(h);
        }
        check_rc(cs_model_block(m, l, x, n, T, NULL, NULL, &err), &err);
    }
    free(x);
    free(work);
}

/* Every weight of a and b equal to the bit: the number of linears that differ. */
static size_t linears_differ(const cs_model *a, const cs_model *b)
{
    size_t differ = 0;
    for (size_t l = 0; l < a->cfg.n_layers; l++) {
        for (int k = 0; k < CS_LIN_COUNT; k++) {
            const cs_linear *la = &a->layers[l].lin[k], *lb = &b->layers[l].lin[k];
            differ += memcmp(la->w, lb->w, la->out * la->in * sizeof(float)) != 0;
        }
    }
    return differ;
}

static void test_gptq_early_stop_twin(void **state)
{
    (void)state;
    cs_model *a = load_model("tb-qwen"), *b = load_model("tb-qwen");
    int32_t *tok = calib_tokens("tb-qwen");
    cs_pipe_params p;
    cs_pipe_report rep;
    params(&p, "{\"name\":\"gptq\",\"bits\":3,\"group_size\":64}");
    assert_true(p.true_sequential);
    quantize(a, tok, &p, &rep);
    gptq_twin(b, tok, N_CAL, T_CAL, &p);
    assert_int_equal(linears_differ(a, b), 0);
    const cs_pipe_timing *t = &rep.t;
    double sum =
            t->embed + t->forward + t->stats + t->solve + t->search + t->clip + t->smooth + t->rtn;
    print_message("# gptq: %.3f s in all; forward %.3f, statistics %.3f, solve %.3f\n", rep.seconds,
                  t->forward, t->stats, t->solve);
    assert_true(t->forward > 0 && t->stats > 0 && t->solve > 0);
    assert_true(t->search == 0 && t->clip == 0 && t->smooth == 0 && t->rtn == 0);
    assert_true(sum <= rep.seconds * 1.001 && sum >= rep.seconds * 0.8);
    cs_pipe_report_fini(&rep);
    free(tok);
    cs_model_destroy(a);
    cs_model_destroy(b);
}

/* A batch larger than one chunk of a pass (72 windows of 96 tokens: chunks of 40 and 32 windows,
 * 3,840 and 3,072 rows, multiples of the Hessian's 256-row batches): the pipeline's chunked
 * passes give the twin's weights, whose passes run the whole batch at once, to the bit. */
static void test_gptq_chunks_twin(void **state)
{
    (void)state;
    cs_model *a = load_model("tb-qwen"), *b = load_model("tb-qwen");
    int32_t *tok = calib_windows("tb-qwen", 72, 96);
    cs_pipe_params p;
    cs_pipe_report rep;
    cs_err err = {0};
    params(&p, "{\"name\":\"gptq\",\"bits\":4,\"group_size\":64}");
    check_rc(cs_pipe_quantize(a, tok, 72, 96, &p, NULL, NULL, &rep, &err), &err);
    gptq_twin(b, tok, 72, 96, &p);
    assert_int_equal(linears_differ(a, b), 0);
    cs_pipe_report_fini(&rep);
    free(tok);
    cs_model_destroy(a);
    cs_model_destroy(b);
}

/* issue 18: the original SmoothQuant (weights "rtn") takes every statistic from the unmodified
 * model, and quantization_config.json says so ("trajectory": "fp"; it said "quantized"). The
 * default weights are "gptq" (SmoothQuant+GPTQ), in the table the sweep and the engine share. */
static void test_smoothquant_records_what_ran(void **state)
{
    static const struct {
        const char *json, *traj, *weights;
    } cases[] = {
            {"{\"name\":\"smoothquant\",\"weights\":\"rtn\"}", "fp", "rtn"},
            {"{\"name\":\"smoothquant\"}", "quantized", "gptq"},
            {"{\"name\":\"smoothquant\",\"weights\":\"gptq\"}", "quantized", "gptq"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cs_pipe_params p;
        params(&p, cases[i].json);
        cJSON *o = cs_pipe_params_to_json(&p);
        assert_non_null(o);
        assert_string_equal(cJSON_GetObjectItem(o, "trajectory")->valuestring, cases[i].traj);
        assert_string_equal(cJSON_GetObjectItem(o, "weights")->valuestring, cases[i].weights);
        cJSON_Delete(o);
    }
}

static void test_bad_params(void **state)
{
    (void)state;
    static const char *const bad[] = {
            "{\"name\":\"gptqx\"}",
            "{\"name\":\"gptq\",\"bits\":9}",
            "{\"name\":\"wanda\",\"pattern\":\"4:2\"}",
            "{\"name\":\"gptq\",\"group_size\":48}",
            "{\"name\":\"awq\",\"trajectory\":\"sideways\"}",
            "{\"name\":\"rtn\",\"alpha\":0.5}",
            "{\"name\":\"smoothquant\",\"alpha\":2}",
            "{\"name\":\"smoothquant\",\"weights\":\"awq\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = cJSON_Parse(bad[i]);
        cs_pipe_params p;
        cs_err err = {0};
        assert_int_not_equal(cs_pipe_params_from_json(&p, j, &err), CS_OK);
        assert_non_null(strstr(err.msg, "algorithm."));
        cJSON_Delete(j);
    }
    cs_model *m = load_model("tb-llama");
    cs_pipe_params p;
    cs_pipe_report rep;
    cs_err err = {0};
    params(&p, "{\"name\":\"gptq\",\"group_size\":256}");
    int32_t *tok = calib_tokens("tb-llama");
    assert_int_equal(cs_pipe_quantize(m, tok, N_CAL, T_CAL, &p, NULL, NULL, &rep, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "does not divide"));
    assert_int_equal(cs_pipe_quantize(m, NULL, 0, 0, &p, NULL, NULL, &rep, &err), CS_EINVAL);
    free(tok);
    cs_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_smoothquant_records_what_ran),
            cmocka_unit_test(test_smooth_invariant_llama),
            cmocka_unit_test(test_smooth_invariant_qwen),
            cmocka_unit_test(test_w8a8_outliers),
            cmocka_unit_test(test_w8a8_outliers_rtn),
            cmocka_unit_test(test_gptq_awq_beat_rtn_outliers),
            cmocka_unit_test(test_save_reload),
            cmocka_unit_test(test_wanda_unstructured),
            cmocka_unit_test(test_wanda_2_4),
            cmocka_unit_test(test_sparsegpt_unstructured),
            cmocka_unit_test(test_sparsegpt_4_8),
            cmocka_unit_test(test_rtn_fallback),
            cmocka_unit_test(test_gptq_early_stop_twin),
            cmocka_unit_test(test_gptq_chunks_twin),
            cmocka_unit_test(test_bad_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
