/* engine_model_test.c - loading errors (config.json and corrupted copies of a safetensors file
 * made at test time), sharded loading, padded batches, the key/value cache, the block-by-block
 * interface, hooks and in-place weight edits, on the testbed's tb-qwen (small, biases, tied
 * embeddings) and tb-llama. */
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cs_alloc.h"
#include "cs_hfconfig.h"
#include "cs_kernels.h"
#include "cs_model.h"
#include "cs_path.h"
#include "cs_safetensors.h"
#include "cs_test.h"

static char *model_dir(const char *name)
{
    const char *root = getenv("CS_SOURCE_DIR");
    cs_buf b;
    cs_buf_init(&b);
    assert_int_equal(cs_buf_printf(&b, "%s/sweeps/testbed/models/%s", root ? root : ".", name),
                     CS_OK);
    return cs_buf_take(&b);
}

static cs_model *load(const char *name)
{
    char *dir = model_dir(name);
    cs_model *m = NULL;
    cs_err err = {0};
    cs_rc rc = cs_model_load(&m, dir, 2, &err);
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    free(dir);
    return m;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static char *read_model_file(const char *model, const char *name, size_t *len)
{
    char *dir = model_dir(model);
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    char *out = NULL;
    cs_err err = {0};
    assert_int_equal(cs_path_read_file(p, 0, &out, len, &err), CS_OK);
    free(dir);
    return out;
}

static void rm_dir(const char *dir)
{
    const char *names[] = {"config.json", "model.safetensors", "model.safetensors.index.json",
                           "a.safetensors", "b.safetensors"};
    char p[512];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Loads a copy of tb-qwen whose config and weights file are given (NULL = the original). */
static cs_rc load_variant(const char *config, size_t config_len, const char *st, size_t st_len,
                          cs_err *err)
{
    char dir[] = "/tmp/cs_engine_XXXXXX";
    assert_non_null(mkdtemp(dir));
    size_t cl, sl;
    char *c0 = read_model_file("tb-qwen", "config.json", &cl);
    char *s0 = read_model_file("tb-qwen", "model.safetensors", &sl);
    write_file(dir, "config.json", config ? config : c0, config ? config_len : cl);
    write_file(dir, "model.safetensors", st ? st : s0, st ? st_len : sl);
    cs_model *m = NULL;
    memset(err, 0, sizeof(*err));
    cs_rc rc = cs_model_load(&m, dir, 1, err);
    cs_model_destroy(m);
    free(c0);
    free(s0);
    rm_dir(dir);
    return rc;
}

static void expect_error(cs_rc rc, const cs_err *err, cs_rc want, const char *needle)
{
    if (rc != want || !strstr(err->msg, needle)) {
        print_error("got %s '%s', want %s with '%s'\n", cs_rc_name(rc), err->msg, cs_rc_name(want),
                    needle);
        fail();
    }
}

static char *replace(const char *s, const char *from, const char *to, size_t *len)
{
    const char *p = strstr(s, from);
    assert_non_null(p);
    cs_buf b;
    cs_buf_init(&b);
    assert_int_equal(cs_buf_append(&b, s, (size_t)(p - s)), CS_OK);
    assert_int_equal(cs_buf_puts(&b, to), CS_OK);
    assert_int_equal(cs_buf_puts(&b, p + strlen(from)), CS_OK);
    *len = b.len;
    return cs_buf_take(&b);
}

static void test_config_errors(void **state)
{
    (void)state;
    cs_hfconfig c;
    cs_err err = {0};
    const char *ok = "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
                     "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                     "\"intermediate_size\":128,\"vocab_size\":100,\"rms_norm_eps\":1e-5,"
                     "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,"
                     "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
                     "\"original_max_position_embeddings\":8192},\"eos_token_id\":[5,7],"
                     "\"bos_token_id\":1}";
    assert_int_equal(cs_hfconfig_parse(&c, ok, strlen(ok), "c.json", &err), CS_OK);
    assert_int_equal(c.head_dim, 16);
    assert_int_equal(c.n_kv_heads, 2);
    assert_true(c.rope_llama3);
    assert_int_equal(c.n_eos, 2);
    assert_int_equal(c.eos[1], 7);
    assert_false(c.tie_embeddings);
    assert_false(c.attn_bias);
    const struct {
        const char *from, *to;
        cs_rc rc;
        const char *needle;
    } cases[] = {
            {"LlamaForCausalLM", "GPT2LMHeadModel", CS_ENOTSUP, "GPT2LMHeadModel"},
            {"\"hidden_size\":64,", "", CS_EPARSE, "hidden_size: missing"},
            {"\"num_key_value_heads\":2", "\"num_key_value_heads\":3", CS_EPARSE,
             "num_key_value_heads"},
            {"\"intermediate_size\":128", "\"intermediate_size\":\"x\"", CS_EPARSE,
             "intermediate_size"},
            {"llama3", "yarn", CS_ENOTSUP, "rope_type"},
            {"\"high_freq_factor\":4.0,", "", CS_EPARSE, "high_freq_factor: missing"},
            {"[5,7]", "[5,700]", CS_EPARSE, "eos_token_id[1]"},
            {"1e-5", "-1", CS_EPARSE, "rms_norm_eps"},
            {"{\"arch", "[\"arch", CS_EPARSE, "c.json"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        char *bad = replace(ok, cases[i].from, cases[i].to, &len);
        cs_rc rc = cs_hfconfig_parse(&c, bad, len, "c.json", &err);
        expect_error(rc, &err, cases[i].rc, cases[i].needle);
        free(bad);
    }
}

static void test_safetensors_errors(void **state)
{
    (void)state;
    cs_err err = {0};
    size_t cl, sl;
    char *cfg = read_model_file("tb-qwen", "config.json", &cl);
    char *st = read_model_file("tb-qwen", "model.safetensors", &sl);
    assert_int_equal(load_variant(NULL, 0, NULL, 0, &err), CS_OK);

    /* truncated data: the last tensors' offsets fall outside the file */
    expect_error(load_variant(NULL, 0, st, sl - 1000, &err), &err, CS_ERANGE, "outside");
    /* truncated inside the header */
    expect_error(load_variant(NULL, 0, st, 100, &err), &err, CS_EPARSE, "truncated");
    expect_error(load_variant(NULL, 0, st, 5, &err), &err, CS_EPARSE, "truncated");
    /* oversized header length */
    char *big = malloc(sl);
    memcpy(big, st, sl);
    memset(big, 0xff, 7);
    big[7] = 0;
    expect_error(load_variant(NULL, 0, big, sl, &err), &err, CS_ETOOBIG, "header");
    /* a header that is not JSON */
    memcpy(big, st, sl);
    big[8] = '#';
    expect_error(load_variant(NULL, 0, big, sl, &err), &err, CS_EPARSE, "model.safetensors");
    /* unknown dtype */
    memcpy(big, st, sl);
    char *bf = strstr(big + 8, "\"BF16\"");
    assert_non_null(bf);
    memcpy(bf, "\"XF16\"", 6);
    expect_error(load_variant(NULL, 0, big, sl, &err), &err, CS_EPARSE, "unknown dtype");
    /* dtype that is not a float of the right size: BF16 -> I16 keeps the byte count */
    memcpy(bf, "\"I16\" ", 6);
    expect_error(load_variant(NULL, 0, big, sl, &err), &err, CS_ENOTSUP, "dtype I16");
    free(big);

    size_t len;
    /* a config with more layers: missing tensor */
    char *c2 = replace(cfg, "\"num_hidden_layers\": 3", "\"num_hidden_layers\": 4", &len);
    expect_error(load_variant(c2, len, NULL, 0, &err), &err, CS_ENOENT,
                 "missing tensor model.layers.3.");
    free(c2);
    /* shape mismatch with config */
    c2 = replace(cfg, "\"intermediate_size\": 256", "\"intermediate_size\": 128", &len);
    expect_error(load_variant(c2, len, NULL, 0, &err), &err, CS_EPARSE, "config.json implies");
    free(c2);
    /* untied: lm_head.weight is missing */
    c2 = replace(cfg, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false", &len);
    expect_error(load_variant(c2, len, NULL, 0, &err), &err, CS_ENOENT, "lm_head.weight");
    free(c2);
    /* no weights at all */
    cs_model *m = NULL;
    assert_int_equal(cs_model_load(&m, "/nonexistent-model", 1, &err), CS_ENOENT);
    assert_null(m);
    free(cfg);
    free(st);
}

/* Shards: the same file twice (a.safetensors, b.safetensors) and an index mapping the embedding to
 * b and everything else to a; the forward pass equals the single-file one. */
static void test_sharded(void **state)
{
    (void)state;
    char dir[] = "/tmp/cs_engine_XXXXXX";
    assert_non_null(mkdtemp(dir));
    size_t cl, sl;
    char *cfg = read_model_file("tb-qwen", "config.json", &cl);
    char *st = read_model_file("tb-qwen", "model.safetensors", &sl);
    write_file(dir, "config.json", cfg, cl);
    write_file(dir, "a.safetensors", st, sl);
    write_file(dir, "b.safetensors", st, sl);
    cs_st *s = NULL;
    cs_err err = {0};
    assert_int_equal(cs_st_open_mem(&s, st, sl, "x", &err), CS_OK);
    cs_buf idx;
    cs_buf_init(&idx);
    assert_int_equal(cs_buf_puts(&idx, "{\"metadata\":{},\"weight_map\":{"), CS_OK);
    for (size_t i = 0; i < cs_st_count(s); i++) {
        const char *n = cs_st_at(s, i)->name;
        assert_int_equal(cs_buf_printf(&idx, "%s\"%s\":\"%s\"", i ? "," : "", n,
                                       strstr(n, "embed") ? "b.safetensors" : "a.safetensors"),
                         CS_OK);
    }
    assert_int_equal(cs_buf_puts(&idx, "}}"), CS_OK);
    write_file(dir, "model.safetensors.index.json", idx.data, idx.len);
    cs_model *m = NULL;
    assert_int_equal(cs_model_load(&m, dir, 1, &err), CS_OK);
    cs_model *ref = load("tb-qwen");
    const int32_t ids[] = {10, 200, 33, 1000, 5, 77};
    const size_t V = m->cfg.vocab;
    float *a = calloc(6 * V, sizeof(float)), *b = calloc(6 * V, sizeof(float));
    assert_int_equal(cs_model_forward(m, ids, 1, 6, NULL, NULL, NULL, a, &err), CS_OK);
    assert_int_equal(cs_model_forward(ref, ids, 1, 6, NULL, NULL, NULL, b, &err), CS_OK);
    cs_assert_close(a, b, 6 * V, 0.0, 0.0);
    cs_model_destroy(m);
    /* an index naming a tensor absent from its shard */
    idx.len = 0;
    assert_int_equal(cs_buf_puts(&idx, "{\"weight_map\":{\"nope.weight\":\"a.safetensors\"}}"),
                     CS_OK);
    write_file(dir, "model.safetensors.index.json", idx.data, idx.len);
    m = NULL;
    expect_error(cs_model_load(&m, dir, 1, &err), &err, CS_ENOENT, "nope.weight");
    /* an index naming a file outside the folder */
    idx.len = 0;
    assert_int_equal(cs_buf_puts(&idx, "{\"weight_map\":{\"x\":\"../a.safetensors\"}}"), CS_OK);
    write_file(dir, "model.safetensors.index.json", idx.data, idx.len);
    expect_error(cs_model_load(&m, dir, 1, &err), &err, CS_EPARSE, "weight_map");
    cs_buf_fini(&idx);
    cs_st_close(s);
    cs_model_destroy(ref);
    free(a);
    free(b);
    free(cfg);
    free(st);
    rm_dir(dir);
}

/* Two sequences of lengths 7 and 4 padded to 7 give the rows of the two single runs. */
static void test_padded_batch(void **state)
{
    (void)state;
    const char *names[] = {"tb-qwen", "tb-llama"};
    for (size_t k = 0; k < 2; k++) {
        cs_model *m = load(names[k]);
        const size_t V = m->cfg.vocab;
        const int32_t batch[14] = {1, 50, 300, 22, 8, 900, 12, 40, 41, 42, 43, 0, 0, 0};
        const size_t lens[2] = {7, 4};
        float *lb = calloc(14 * V, sizeof(float)), *l1 = calloc(7 * V, sizeof(float));
        cs_err err = {0};
        assert_int_equal(cs_model_forward(m, batch, 2, 7, lens, NULL, NULL, lb, &err), CS_OK);
        for (size_t b = 0; b < 2; b++) {
            assert_int_equal(
                    cs_model_forward(m, batch + 7 * b, 1, lens[b], NULL, NULL, NULL, l1, &err),
                    CS_OK);
            cs_assert_close(lb + 7 * b * V, l1, lens[b] * V, 1e-5, 0.0);
        }
        /* log-probs agree with the logits */
        double lp[14];
        assert_int_equal(cs_model_logprobs(m, batch, 2, 7, lens, lp, &err), CS_OK);
        double want = cs_log_softmax_at(lb + 7 * V, V, 41);
        cs_assert_close_d(&lp[7], &want, 1, 1e-9, 0.0);
        assert_true(lp[10] == 0.0 && lp[6] == 0.0);
        /* a token outside the vocabulary is an error */
        int32_t badtok[2] = {1, (int32_t)V};
        assert_int_equal(cs_model_forward(m, badtok, 1, 2, NULL, NULL, NULL, l1, &err), CS_ERANGE);
        assert_non_null(strstr(err.msg, "position 1"));
        free(lb);
        free(l1);
        cs_model_destroy(m);
    }
}

/* Prefill 5 tokens into a cache then decode 4 more one at a time: the logits equal a full pass. */
static void test_kv_cache(void **state)
{
    (void)state;
    cs_model *m = load("tb-llama");
    const size_t V = m->cfg.vocab;
    const int32_t ids[9] = {1534, 100, 200, 300, 400, 500, 600, 700, 800};
    float *full = calloc(9 * V, sizeof(float)), *step = calloc(9 * V, sizeof(float));
    cs_err err = {0};
    assert_int_equal(cs_model_forward(m, ids, 1, 9, NULL, NULL, NULL, full, &err), CS_OK);
    cs_kvcache kv;
    assert_int_equal(cs_kvcache_init(&kv, m, 1, 9, &err), CS_OK);
    assert_int_equal(cs_model_forward(m, ids, 1, 5, NULL, &kv, NULL, step, &err), CS_OK);
    for (size_t t = 5; t < 9; t++) {
        assert_int_equal(cs_model_forward(m, ids + t, 1, 1, NULL, &kv, NULL, step + t * V, &err),
                         CS_OK);
    }
    assert_int_equal(kv.pos, 9);
    cs_assert_close(step, full, 9 * V, 1e-4, 0.0);
    /* full cache */
    assert_int_equal(cs_model_forward(m, ids, 1, 1, NULL, &kv, NULL, step, &err), CS_ERANGE);
    cs_kvcache_fini(&kv);
    free(full);
    free(step);
    cs_model_destroy(m);
}

/* Two sequences at their own places in one cache (cs_model_forward_at): sequence 0 has 6 tokens
 * cached, sequence 1 has 2 (copied from another cache with cs_kvcache_copy); each continues with
 * its own tokens (sequence 1 padded), and the real rows' logits, packed, equal full passes of the
 * whole sequences. Errors: past the capacity, more sequences than the cache. */
static void test_ragged_cache(void **state)
{
    (void)state;
    cs_model *m = load("tb-llama");
    const size_t V = m->cfg.vocab;
    const int32_t a[9] = {1534, 100, 200, 300, 400, 500, 600, 700, 800};
    const int32_t b[5] = {1534, 900, 901, 902, 903};
    float *fa = calloc(9 * V, sizeof(float)), *fb = calloc(5 * V, sizeof(float));
    float *got = calloc(6 * V, sizeof(float));
    cs_err err = {0};
    assert_int_equal(cs_model_forward(m, a, 1, 9, NULL, NULL, NULL, fa, &err), CS_OK);
    assert_int_equal(cs_model_forward(m, b, 1, 5, NULL, NULL, NULL, fb, &err), CS_OK);
    cs_kvcache one, kv;
    assert_int_equal(cs_kvcache_init(&one, m, 1, 8, &err), CS_OK);
    assert_int_equal(cs_kvcache_init(&kv, m, 3, 12, &err), CS_OK);
    /* b's first 2 tokens into a one-sequence cache, copied to sequence 1 of kv */
    assert_int_equal(cs_model_forward(m, b, 1, 2, NULL, &one, NULL, NULL, &err), CS_OK);
    assert_int_equal(cs_kvcache_copy(&one, 0, 2, &kv, 1, &err), CS_OK);
    /* a's first 6 tokens straight into sequence 0 (sequence 1 rides along as padding) */
    int32_t first[2 * 6] = {0};
    memcpy(first, a, 6 * sizeof(int32_t));
    size_t past0[2] = {0, 6}, lens0[2] = {6, 0}; /* sequence 1's padding lands after its prefix */
    assert_int_equal(cs_model_forward_at(m, first, 2, 6, lens0, past0, &kv, NULL, &err), CS_OK);
    /* continue: sequence 0 with a[6..9), sequence 1 with b[2..5) minus one: 3 and 2 real rows */
    int32_t next[2 * 3] = {a[6], a[7], a[8], b[2], b[3], 0};
    size_t past[2] = {6, 2}, lens[2] = {3, 2};
    assert_int_equal(cs_model_forward_at(m, next, 2, 3, lens, past, &kv, got, &err), CS_OK);
    cs_assert_close(got, fa + 6 * V, 3 * V, 1e-4, 0.0);
    cs_assert_close(got + 3 * V, fb + 2 * V, 2 * V, 1e-4, 0.0);
    assert_int_equal(kv.pos, 0); /* not used */
    /* errors */
    size_t far[2] = {10, 0};
    assert_int_equal(cs_model_forward_at(m, next, 2, 3, lens, far, &kv, got, &err), CS_ERANGE);
    size_t p4[4] = {0}, l4[4] = {1, 1, 1, 1};
    int32_t t4[4] = {1, 2, 3, 4};
    assert_int_equal(cs_model_forward_at(m, t4, 4, 1, l4, p4, &kv, NULL, &err), CS_EINVAL);
    assert_int_equal(cs_kvcache_copy(&one, 0, 9, &kv, 0, &err), CS_EINVAL);
    assert_int_equal(cs_kvcache_copy(&one, 1, 1, &kv, 0, &err), CS_EINVAL);
    cs_kvcache_fini(&one);
    cs_kvcache_fini(&kv);
    free(fa);
    free(fb);
    free(got);
    cs_model_destroy(m);
}

typedef struct hook_stats {
    size_t n_lin[8][CS_LIN_COUNT], n_mlp[8], n_block[8];
    size_t bad_shape;
    double *colsq; /* sum over real rows of x^2, per column, of layer 1's up_proj input */
    size_t dim;
    float *block0; /* copy of block 0's output */
    float *mlp_last;
} hook_stats;

static cs_rc stats_hook(void *ctx, const cs_hook_event *ev, cs_err *err)
{
    (void)err;
    hook_stats *s = ctx;
    switch (ev->kind) {
    case CS_HOOK_LINEAR_IN:
        s->n_lin[ev->layer][ev->lin]++;
        if (ev->cols != ev->linear->in) {
            s->bad_shape++;
        }
        if (ev->layer == 1 && ev->lin == CS_LIN_UP) {
            for (size_t r = 0; r < ev->rows; r++) {
                for (size_t c = 0; ev->valid[r] && c < ev->cols; c++) {
                    s->colsq[c] += (double)ev->x[r * ev->cols + c] * ev->x[r * ev->cols + c];
                }
            }
        }
        break;
    case CS_HOOK_MLP_OUT:
        s->n_mlp[ev->layer]++;
        if (s->mlp_last) {
            memcpy(s->mlp_last, ev->x, ev->rows * ev->cols * sizeof(float));
        }
        break;
    case CS_HOOK_BLOCK_OUT:
        s->n_block[ev->layer]++;
        if (ev->layer == 0 && s->block0) {
            memcpy(s->block0, ev->x, ev->rows * ev->cols * sizeof(float));
        }
        break;
    }
    return CS_OK;
}

static cs_rc failing_hook(void *ctx, const cs_hook_event *ev, cs_err *err)
{
    (void)ctx;
    if (ev->kind == CS_HOOK_BLOCK_OUT && ev->layer == 1) {
        return cs_err_set(err, CS_ECANCELED, 0, "stop at block 1");
    }
    return CS_OK;
}

static void test_hooks_and_blocks(void **state)
{
    (void)state;
    cs_model *m = load("tb-qwen");
    const size_t H = m->cfg.hidden, V = m->cfg.vocab, L = m->cfg.n_layers;
    const size_t B = 2, T = 6, rows = B * T;
    const int32_t ids[12] = {5, 6, 7, 8, 9, 10, 100, 200, 300, 0, 0, 0};
    const size_t lens[2] = {6, 3};
    hook_stats s;
    memset(&s, 0, sizeof(s));
    s.dim = H;
    s.colsq = calloc(H, sizeof(double));
    s.block0 = calloc(rows * H, sizeof(float));
    cs_hooks hooks = {stats_hook, &s, 0};
    float *logits = calloc(rows * V, sizeof(float));
    cs_err err = {0};
    assert_int_equal(cs_model_forward(m, ids, B, T, lens, NULL, &hooks, logits, &err), CS_OK);
    for (size_t l = 0; l < L; l++) {
        for (int k = 0; k < CS_LIN_COUNT; k++) {
            assert_int_equal(s.n_lin[l][k], 1);
        }
        assert_int_equal(s.n_mlp[l], 1);
        assert_int_equal(s.n_block[l], 1);
    }
    assert_int_equal(s.bad_shape, 0);

    /* block by block: embed, blocks, head give the same logits; block 0's output equals the
     * hook's copy; the hook statistic equals a direct computation of layer 1's MLP input norm */
    float *x = calloc(rows * H, sizeof(float)), *h = calloc(rows * H, sizeof(float));
    float *l2 = calloc(rows * V, sizeof(float));
    assert_int_equal(cs_model_embed(m, ids, rows, x, &err), CS_OK);
    for (size_t l = 0; l < L; l++) {
        if (l == 1) {
            /* direct: run layer 1's attention half by hand is not exposed, so compare through a
             * hook that only looks at up_proj with the stats cleared */
            hook_stats s2;
            memset(&s2, 0, sizeof(s2));
            s2.colsq = calloc(H, sizeof(double));
            float *before = calloc(rows * H, sizeof(float));
            memcpy(before, x, rows * H * sizeof(float));
            s2.mlp_last = calloc(rows * H, sizeof(float));
            cs_hooks h2 = {stats_hook, &s2, (1u << CS_HOOK_LINEAR_IN) | (1u << CS_HOOK_MLP_OUT)};
            assert_int_equal(cs_model_block(m, l, x, B, T, lens, &h2, &err), CS_OK);
            cs_assert_close_d(s2.colsq, s.colsq, H, 1e-6, 1e-6);
            /* direct statistic: the MLP input is rmsnorm(x_out - mlp_out) */
            for (size_t i = 0; i < rows * H; i++) {
                before[i] = x[i] - s2.mlp_last[i];
            }
            cs_rmsnorm(1, h, before, m->layers[l].mlp_norm, rows, H, (float)m->cfg.rms_eps);
            double *direct = calloc(H, sizeof(double));
            for (size_t r = 0; r < rows; r++) {
                for (size_t c = 0; c < H && (r % T) < lens[r / T]; c++) {
                    direct[c] += (double)h[r * H + c] * h[r * H + c];
                }
            }
            cs_assert_close_d(s.colsq, direct, H, 1e-4, 1e-4);
            free(direct);
            free(before);
            free(s2.mlp_last);
            free(s2.colsq);
        } else {
            assert_int_equal(cs_model_block(m, l, x, B, T, lens, NULL, &err), CS_OK);
        }
        if (l == 0) {
            cs_assert_close(x, s.block0, rows * H, 0.0, 0.0);
        }
    }
    assert_int_equal(cs_model_head(m, x, rows, l2, &err), CS_OK);
    for (size_t b = 0; b < B; b++) {
        cs_assert_close(l2 + b * T * V, logits + b * T * V, lens[b] * V, 1e-5, 0.0);
    }
    assert_int_equal(cs_model_block(m, L, x, B, T, lens, NULL, &err), CS_ERANGE);

    /* a failing hook aborts the pass with its code */
    cs_hooks hf = {failing_hook, NULL, 0};
    assert_int_equal(cs_model_forward(m, ids, B, T, lens, NULL, &hf, logits, &err), CS_ECANCELED);
    assert_non_null(strstr(err.msg, "block 1"));

    /* editing a weight in place: zero the last layer's down_proj, its MLP output becomes 0 */
    cs_linear *down = cs_model_linear(m, L - 1, CS_LIN_DOWN);
    assert_non_null(down);
    assert_null(cs_model_linear(m, L, CS_LIN_DOWN));
    memset(down->w, 0, down->out * down->in * sizeof(float));
    hook_stats s3;
    memset(&s3, 0, sizeof(s3));
    s3.colsq = calloc(H, sizeof(double));
    s3.mlp_last = calloc(rows * H, sizeof(float));
    for (size_t i = 0; i < rows * H; i++) {
        s3.mlp_last[i] = 1.0f;
    }
    cs_hooks h3 = {stats_hook, &s3, 1u << CS_HOOK_MLP_OUT};
    assert_int_equal(cs_model_forward(m, ids, B, T, lens, NULL, &h3, logits, &err), CS_OK);
    float *zeros = calloc(rows * H, sizeof(float));
    cs_assert_close(s3.mlp_last, zeros, rows * H, 0.0, 0.0);
    free(zeros);
    free(s3.mlp_last);
    free(s3.colsq);
    free(x);
    free(h);
    free(l2);
    free(logits);
    free(s.colsq);
    free(s.block0);
    cs_model_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_config_errors), cmocka_unit_test(test_safetensors_errors),
            cmocka_unit_test(test_sharded),       cmocka_unit_test(test_padded_batch),
            cmocka_unit_test(test_kv_cache),      cmocka_unit_test(test_hooks_and_blocks),
            cmocka_unit_test(test_ragged_cache),
    };
    return cmocka_run_group_tests_name("engine_model", tests, NULL, NULL);
}
