/* testbed_ref_test.c - a naive C twin of the testbed models' forward pass (docs/style.md R11)
 * checks the committed reference figures in sweeps/testbed/ref against the committed weights.
 *
 * The twin reads config.json and model.safetensors (bf16, upcast to float32) the way a Hugging
 * Face loader does and runs Llama / Qwen2 decoding one token at a time with a key/value cache:
 * RMSNorm, rotary embedding in the rotate-half layout, grouped-query attention, SwiGLU, Qwen2's
 * q/k/v biases and tied output layer. Sums run in double. It must reproduce, within stated
 * tolerances:
 *   - the reference logits of ref/<model>.logits.{json,bin} (atol 1e-4);
 *   - the mean NLL of the first 256-token window of the held-out text (ref/<model>.heldout.json,
 *     metrics.json "window_mean_nll"[0], atol 1e-4);
 *   - the per-choice log-likelihoods of the first items of every MC task (ref/<model>.mc.jsonl,
 *     atol 1e-3) and the same argmax.
 * This proves the files are self-consistent and gives calsweep's engine a known-good target: its
 * own forward must meet the same figures (see sweeps/testbed/README.md). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_err.h"
#include "cs_json.h"
#include "cs_path.h"
#include "cs_test.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

enum { MAX_T = 512, MC_ITEMS_PER_TASK = 2, N_MC_TASKS = 5 };

typedef struct tw_layer {
    float *wq, *wk, *wv, *wo, *bq, *bk, *bv;
    float *wg, *wu, *wd, *ln1, *ln2;
} tw_layer;

typedef struct tw_net {
    size_t hidden, inter, layers, nh, nkv, hd, vocab;
    double eps, theta;
    bool tied, bias;
    float *emb, *norm, *head;
    tw_layer *l;
    float **owned; /* every tensor, for freeing */
    size_t n_owned;
    /* state */
    float *kc, *vc; /* [layers][MAX_T][nkv*hd] */
    float *x, *h, *q, *k, *v, *att, *g, *u, *sc;
} tw_net;

static char *ref_path(const char *a, const char *b, const char *c)
{
    cs_buf p = {0};
    const char *src = getenv("CS_SOURCE_DIR");
    assert_non_null(src);
    assert_int_equal(cs_buf_printf(&p, "%s/sweeps/testbed/%s%s%s", src, a, b, c), CS_OK);
    return cs_buf_take(&p);
}

static cJSON *parse_path(const char *path)
{
    cJSON *j = NULL;
    cs_err err = {0};
    if (cs_json_parse_file(path, (size_t)32 << 20, &j, &err) != CS_OK) {
        fail_msg("%s", err.msg);
    }
    return j;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) {
        fail_msg("\"%s\" is not a number", key);
    }
    return v->valuedouble;
}

/* Copies tensor `name` (bf16) into a new float array after checking its element count. */
static float *tensor(tw_net *n, const cJSON *hdr, const unsigned char *data, const char *name,
                     size_t count)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(hdr, name);
    if (!t) {
        fail_msg("tensor %s missing", name);
    }
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    size_t a = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble;
    size_t b = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    if (b - a != count * 2) {
        fail_msg("tensor %s: %zu bytes, want %zu", name, b - a, count * 2);
    }
    float *f = cs_alloc_array(count, sizeof(float));
    assert_non_null(f);
    for (size_t i = 0; i < count; i++) {
        uint32_t u = ((uint32_t)data[a + 2 * i] | (uint32_t)data[a + 2 * i + 1] << 8) << 16;
        memcpy(&f[i], &u, sizeof(float));
    }
    n->owned[n->n_owned++] = f;
    return f;
}

static void net_load(tw_net *n, const char *model)
{
    char *path = ref_path("models/", model, "/config.json");
    cJSON *cfg = parse_path(path);
    memset(n, 0, sizeof(*n));
    n->hidden = (size_t)num(cfg, "hidden_size");
    n->inter = (size_t)num(cfg, "intermediate_size");
    n->layers = (size_t)num(cfg, "num_hidden_layers");
    n->nh = (size_t)num(cfg, "num_attention_heads");
    n->nkv = (size_t)num(cfg, "num_key_value_heads");
    n->vocab = (size_t)num(cfg, "vocab_size");
    n->eps = num(cfg, "rms_norm_eps");
    n->theta = num(cfg, "rope_theta");
    n->hd = n->hidden / n->nh;
    n->tied = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "tie_word_embeddings"));
    const cJSON *arch =
            cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cfg, "architectures"), 0);
    n->bias = strcmp(arch->valuestring, "Qwen2ForCausalLM") == 0;
    cJSON_Delete(cfg);
    free(path);

    path = ref_path("models/", model, "/model.safetensors");
    char *raw = NULL;
    size_t len = 0;
    cs_err err = {0};
    if (cs_path_read_file(path, (size_t)64 << 20, &raw, &len, &err) != CS_OK) {
        fail_msg("%s", err.msg);
    }
    const unsigned char *st = (const unsigned char *)raw;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) {
        hlen = hlen << 8 | st[i];
    }
    cJSON *hdr = NULL;
    assert_int_equal(cs_json_parse(raw + 8, (size_t)hlen, path, &hdr, &err), CS_OK);
    const unsigned char *data = st + 8 + hlen;
    const size_t d = n->hidden, kvd = n->nkv * n->hd, qd = n->nh * n->hd;
    char name[128];
    n->owned = cs_calloc_array(3 + 12 * n->layers, sizeof(float *));
    n->l = cs_calloc_array(n->layers, sizeof(tw_layer));
    assert_non_null(n->owned);
    assert_non_null(n->l);
    n->emb = tensor(n, hdr, data, "model.embed_tokens.weight", n->vocab * d);
    n->norm = tensor(n, hdr, data, "model.norm.weight", d);
    n->head = n->tied ? n->emb : tensor(n, hdr, data, "lm_head.weight", n->vocab * d);
    for (size_t l = 0; l < n->layers; l++) {
        tw_layer *y = &n->l[l];
        struct {
            float **dst;
            const char *fmt;
            size_t count;
            bool want;
        } parts[] = {
                {&y->wq, "self_attn.q_proj.weight", qd * d, true},
                {&y->wk, "self_attn.k_proj.weight", kvd * d, true},
                {&y->wv, "self_attn.v_proj.weight", kvd * d, true},
                {&y->wo, "self_attn.o_proj.weight", d * qd, true},
                {&y->bq, "self_attn.q_proj.bias", qd, n->bias},
                {&y->bk, "self_attn.k_proj.bias", kvd, n->bias},
                {&y->bv, "self_attn.v_proj.bias", kvd, n->bias},
                {&y->wg, "mlp.gate_proj.weight", n->inter * d, true},
                {&y->wu, "mlp.up_proj.weight", n->inter * d, true},
                {&y->wd, "mlp.down_proj.weight", d * n->inter, true},
                {&y->ln1, "input_layernorm.weight", d, true},
                {&y->ln2, "post_attention_layernorm.weight", d, true},
        };
        for (size_t i = 0; i < N_ELEMS(parts); i++) {
            if (parts[i].want) {
                snprintf(name, sizeof(name), "model.layers.%zu.%s", l, parts[i].fmt);
                *parts[i].dst = tensor(n, hdr, data, name, parts[i].count);
            }
        }
    }
    cJSON_Delete(hdr);
    free(raw);
    free(path);
    size_t cache = n->layers * MAX_T * kvd;
    n->kc = cs_calloc_array(cache, sizeof(float));
    n->vc = cs_calloc_array(cache, sizeof(float));
    n->x = cs_calloc_array(d, sizeof(float));
    n->h = cs_calloc_array(d, sizeof(float));
    n->q = cs_calloc_array(qd, sizeof(float));
    n->k = cs_calloc_array(kvd, sizeof(float));
    n->v = cs_calloc_array(kvd, sizeof(float));
    n->att = cs_calloc_array(qd, sizeof(float));
    n->g = cs_calloc_array(n->inter, sizeof(float));
    n->u = cs_calloc_array(n->inter, sizeof(float));
    n->sc = cs_calloc_array(MAX_T, sizeof(float));
    assert_true(n->kc && n->vc && n->x && n->h && n->q && n->k && n->v && n->att && n->g && n->u &&
                n->sc);
}

static void net_free(tw_net *n)
{
    for (size_t i = 0; i < n->n_owned; i++) {
        free(n->owned[i]);
    }
    free(n->owned);
    free(n->l);
    free(n->kc);
    free(n->vc);
    free(n->x);
    free(n->h);
    free(n->q);
    free(n->k);
    free(n->v);
    free(n->att);
    free(n->g);
    free(n->u);
    free(n->sc);
}

/* out(rows) = W(rows, cols) @ x(cols) + b; double sums. */
static void matvec(float *out, const float *w, const float *x, const float *b, size_t rows,
                   size_t cols)
{
    for (size_t r = 0; r < rows; r++) {
        double s = b ? b[r] : 0.0;
        const float *wr = w + r * cols;
        for (size_t c = 0; c < cols; c++) {
            s += (double)wr[c] * x[c];
        }
        out[r] = (float)s;
    }
}

static void rmsnorm(float *out, const float *x, const float *w, size_t d, double eps)
{
    double ss = 0.0;
    for (size_t i = 0; i < d; i++) {
        ss += (double)x[i] * x[i];
    }
    float r = (float)(1.0 / sqrt(ss / (double)d + eps));
    for (size_t i = 0; i < d; i++) {
        out[i] = w[i] * (x[i] * r);
    }
}

/* Rotates each head of v (n_heads * hd) in place for position pos (rotate-half layout). */
static void rope(float *v, size_t n_heads, size_t hd, size_t pos, double theta)
{
    size_t half = hd / 2;
    for (size_t i = 0; i < half; i++) {
        float inv = (float)(1.0 / pow(theta, (double)(2 * i) / (double)hd));
        float ang = (float)pos * inv;
        float c = (float)cos((double)ang), s = (float)sin((double)ang);
        for (size_t h = 0; h < n_heads; h++) {
            float *p = v + h * hd;
            float x1 = p[i], x2 = p[i + half];
            p[i] = x1 * c - x2 * s;
            p[i + half] = x2 * c + x1 * s;
        }
    }
}

/* Runs token id at position pos (the cache holds positions < pos) and writes logits(vocab). */
static void step(tw_net *n, int id, size_t pos, float *logits)
{
    const size_t d = n->hidden, kvd = n->nkv * n->hd, qd = n->nh * n->hd, hd = n->hd;
    assert_true(pos < MAX_T && id >= 0 && (size_t)id < n->vocab);
    memcpy(n->x, n->emb + (size_t)id * d, d * sizeof(float));
    for (size_t l = 0; l < n->layers; l++) {
        const tw_layer *y = &n->l[l];
        float *kc = n->kc + l * MAX_T * kvd, *vc = n->vc + l * MAX_T * kvd;
        rmsnorm(n->h, n->x, y->ln1, d, n->eps);
        matvec(n->q, y->wq, n->h, y->bq, qd, d);
        matvec(n->k, y->wk, n->h, y->bk, kvd, d);
        matvec(n->v, y->wv, n->h, y->bv, kvd, d);
        rope(n->q, n->nh, hd, pos, n->theta);
        rope(n->k, n->nkv, hd, pos, n->theta);
        memcpy(kc + pos * kvd, n->k, kvd * sizeof(float));
        memcpy(vc + pos * kvd, n->v, kvd * sizeof(float));
        for (size_t h = 0; h < n->nh; h++) {
            size_t kh = h / (n->nh / n->nkv);
            const float *q = n->q + h * hd;
            double mx = -INFINITY, sum = 0.0;
            for (size_t t = 0; t <= pos; t++) {
                double s = 0.0;
                for (size_t i = 0; i < hd; i++) {
                    s += (double)q[i] * kc[t * kvd + kh * hd + i];
                }
                n->sc[t] = (float)(s / sqrt((double)hd));
                mx = n->sc[t] > mx ? n->sc[t] : mx;
            }
            for (size_t t = 0; t <= pos; t++) {
                sum += exp(n->sc[t] - mx);
            }
            for (size_t i = 0; i < hd; i++) {
                double o = 0.0;
                for (size_t t = 0; t <= pos; t++) {
                    o += exp(n->sc[t] - mx) / sum * vc[t * kvd + kh * hd + i];
                }
                n->att[h * hd + i] = (float)o;
            }
        }
        matvec(n->h, y->wo, n->att, NULL, d, qd);
        for (size_t i = 0; i < d; i++) {
            n->x[i] += n->h[i];
        }
        rmsnorm(n->h, n->x, y->ln2, d, n->eps);
        matvec(n->g, y->wg, n->h, NULL, n->inter, d);
        matvec(n->u, y->wu, n->h, NULL, n->inter, d);
        for (size_t i = 0; i < n->inter; i++) {
            n->g[i] = (float)((double)n->g[i] / (1.0 + exp(-(double)n->g[i]))) * n->u[i];
        }
        matvec(n->h, y->wd, n->g, NULL, d, n->inter);
        for (size_t i = 0; i < d; i++) {
            n->x[i] += n->h[i];
        }
    }
    rmsnorm(n->h, n->x, n->norm, d, n->eps);
    matvec(logits, n->head, n->h, NULL, n->vocab, d);
}

static double log_softmax_at(const float *logits, size_t v, int target)
{
    double mx = -INFINITY, s = 0.0;
    for (size_t i = 0; i < v; i++) {
        mx = logits[i] > mx ? logits[i] : mx;
    }
    for (size_t i = 0; i < v; i++) {
        s += exp(logits[i] - mx);
    }
    return logits[target] - mx - log(s);
}

static int *int_array(const cJSON *a, size_t *n)
{
    *n = (size_t)cJSON_GetArraySize(a);
    int *out = cs_alloc_array(*n ? *n : 1, sizeof(int));
    size_t i = 0;
    const cJSON *e = NULL;
    assert_non_null(out);
    cJSON_ArrayForEach(e, a)
    {
        out[i++] = (int)e->valuedouble;
    }
    return out;
}

static void check_logits(const char *model)
{
    tw_net n;
    net_load(&n, model);
    char *path = ref_path("ref/", model, ".logits.json");
    cJSON *meta = parse_path(path);
    char *bpath = ref_path("ref/", model, ".logits.bin");
    char *bin = NULL;
    size_t blen = 0, off = 0;
    cs_err err = {0};
    assert_int_equal(cs_path_read_file(bpath, (size_t)16 << 20, &bin, &blen, &err), CS_OK);
    float *got = cs_alloc_array(n.vocab, sizeof(float));
    float *want = cs_alloc_array(n.vocab, sizeof(float));
    assert_true(got && want);
    const cJSON *seq = NULL;
    cJSON_ArrayForEach(seq, cJSON_GetObjectItemCaseSensitive(meta, "sequences"))
    {
        size_t t_n = 0;
        int *ids = int_array(cJSON_GetObjectItemCaseSensitive(seq, "ids"), &t_n);
        for (size_t t = 0; t < t_n; t++) {
            step(&n, ids[t], t, got);
            assert_true(off + n.vocab * sizeof(float) <= blen);
            memcpy(want, bin + off, n.vocab * sizeof(float));
            off += n.vocab * sizeof(float);
            cs_assert_close(got, want, n.vocab, 1e-4, 0.0);
        }
        free(ids);
    }
    assert_int_equal(off, blen);
    free(got);
    free(want);
    free(bin);
    free(bpath);
    cJSON_Delete(meta);
    free(path);
    net_free(&n);
}

static void check_heldout_window(const char *model)
{
    tw_net n;
    net_load(&n, model);
    char *path = ref_path("ref/", model, ".heldout.json");
    cJSON *held = parse_path(path);
    char *mpath = ref_path("ref/", model, ".metrics.json");
    cJSON *metrics = parse_path(mpath);
    size_t n_ids = 0, window = (size_t)num(held, "window");
    int *ids = int_array(cJSON_GetObjectItemCaseSensitive(held, "ids"), &n_ids);
    assert_true(n_ids >= window && window <= MAX_T);
    float *logits = cs_alloc_array(n.vocab, sizeof(float));
    assert_non_null(logits);
    double nll = 0.0;
    for (size_t t = 0; t + 1 < window; t++) {
        step(&n, ids[t], t, logits);
        nll -= log_softmax_at(logits, n.vocab, ids[t + 1]);
    }
    nll /= (double)(window - 1);
    const cJSON *ho = cJSON_GetObjectItemCaseSensitive(metrics, "heldout");
    double want = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ho, "window_mean_nll"), 0)
                          ->valuedouble;
    cs_assert_close_d(&nll, &want, 1, 1e-4, 0.0);
    assert_true(exp(nll) < 4.0); /* far below the vocabulary size */
    free(logits);
    free(ids);
    cJSON_Delete(held);
    cJSON_Delete(metrics);
    free(path);
    free(mpath);
    net_free(&n);
}

static void check_mc(const char *model)
{
    tw_net n;
    net_load(&n, model);
    char *path = ref_path("ref/", model, ".mc.jsonl");
    char *text = NULL;
    size_t len = 0, per_task = 0, checked = 0;
    cs_err err = {0};
    char task[32] = "";
    assert_int_equal(cs_path_read_file(path, (size_t)16 << 20, &text, &len, &err), CS_OK);
    float *logits = cs_alloc_array(n.vocab, sizeof(float));
    float *last = cs_alloc_array(n.vocab, sizeof(float));
    assert_true(logits && last);
    for (char *line = text; line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
        cJSON *o = NULL;
        assert_int_equal(cs_json_parse(line, ll, path, &o, &err), CS_OK);
        const char *t = cJSON_GetObjectItemCaseSensitive(o, "task")->valuestring;
        per_task = strcmp(t, task) == 0 ? per_task + 1 : 0;
        snprintf(task, sizeof(task), "%s", t);
        line += ll + 1;
        if (per_task >= MC_ITEMS_PER_TASK) {
            cJSON_Delete(o);
            continue;
        }
        size_t n_ctx = 0;
        int *ctx = int_array(cJSON_GetObjectItemCaseSensitive(o, "ctx"), &n_ctx);
        for (size_t p = 0; p < n_ctx; p++) {
            step(&n, ctx[p], p, last);
        }
        const cJSON *conts = cJSON_GetObjectItemCaseSensitive(o, "conts");
        const cJSON *lls = cJSON_GetObjectItemCaseSensitive(o, "ll");
        double got[4], want[4];
        for (int j = 0; j < 4; j++) {
            size_t n_c = 0;
            int *c = int_array(cJSON_GetArrayItem(conts, j), &n_c);
            double s = log_softmax_at(last, n.vocab, c[0]);
            for (size_t p = 0; p + 1 < n_c; p++) {
                step(&n, c[p], n_ctx + p, logits); /* overwrites the cache past the context */
                s += log_softmax_at(logits, n.vocab, c[p + 1]);
            }
            got[j] = s;
            want[j] = cJSON_GetArrayItem(lls, j)->valuedouble;
            free(c);
        }
        cs_assert_close_d(got, want, 4, 1e-3, 0.0);
        int ag = 0, aw = 0;
        for (int j = 1; j < 4; j++) {
            ag = got[j] > got[ag] ? j : ag;
            aw = want[j] > want[aw] ? j : aw;
        }
        assert_int_equal(ag, aw);
        checked++;
        free(ctx);
        cJSON_Delete(o);
    }
    assert_int_equal(checked, MC_ITEMS_PER_TASK * N_MC_TASKS);
    free(logits);
    free(last);
    free(text);
    free(path);
    net_free(&n);
}

static void test_llama_logits(void **state)
{
    (void)state;
    check_logits("tb-llama");
}

static void test_qwen_logits(void **state)
{
    (void)state;
    check_logits("tb-qwen");
}

static void test_llama_heldout(void **state)
{
    (void)state;
    check_heldout_window("tb-llama");
}

static void test_qwen_heldout(void **state)
{
    (void)state;
    check_heldout_window("tb-qwen");
}

static void test_llama_mc(void **state)
{
    (void)state;
    check_mc("tb-llama");
}

static void test_qwen_mc(void **state)
{
    (void)state;
    check_mc("tb-qwen");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_llama_logits),  cmocka_unit_test(test_qwen_logits),
            cmocka_unit_test(test_llama_heldout), cmocka_unit_test(test_qwen_heldout),
            cmocka_unit_test(test_llama_mc),      cmocka_unit_test(test_qwen_mc),
    };
    return cmocka_run_group_tests_name("testbed_ref", tests, NULL, NULL);
}
