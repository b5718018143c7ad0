/* testbed_test.c - the committed testbed (sweeps/testbed) is well formed: every task file follows
 * the task format of selectors-and-metrics.md, each task's train-side split is disjoint from its
 * eval split (checked again here, on the committed files, independently of the generator), the
 * model folders hold what a Hugging Face loader expects (config keys, bf16 safetensors whose
 * tensors have the shapes the config implies, widths that allow group sizes 32 and 64, at most
 * 24 MB together), and the reference logits have the size their index says. The default eval
 * suite (data/suite) follows the same format, with ids that end in the item's unit. */
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

typedef struct tb_task {
    const char *name;
    bool gen;
    size_t n_eval, n_train;
} tb_task;

static const tb_task k_tasks[] = {
        {"prose_cause", false, 200, 100}, {"prose_work", false, 200, 100},
        {"arith_mc", false, 200, 100},    {"code_mc", false, 200, 100},
        {"facts_mc", false, 200, 100},    {"arith_gen", true, 100, 64},
};

typedef struct tb_model {
    const char *name;
    const char *arch;
    bool tied;
    bool qkv_bias;
} tb_model;

static const tb_model k_models[] = {
        {"tb-llama", "LlamaForCausalLM", false, false},
        {"tb-qwen", "Qwen2ForCausalLM", true, true},
};

/* $CS_SOURCE_DIR/sweeps/testbed/ followed by the parts; returns owned, free with free(). */
static char *testbed_path(const char *a, const char *b, const char *c, const char *d)
{
    cs_buf p = {0};
    const char *src = getenv("CS_SOURCE_DIR");
    assert_non_null(src);
    assert_int_equal(cs_buf_printf(&p, "%s/sweeps/testbed/%s%s%s%s", src, a, b, c, d), CS_OK);
    return cs_buf_take(&p);
}

static char *read_all(const char *path, size_t *len)
{
    char *data = NULL;
    cs_err err = {0};
    if (cs_path_read_file(path, (size_t)64 << 20, &data, len, &err) != CS_OK) {
        fail_msg("%s", err.msg);
    }
    return data;
}

static cJSON *parse_file(const char *path)
{
    cJSON *j = NULL;
    cs_err err = {0};
    if (cs_json_parse_file(path, (size_t)32 << 20, &j, &err) != CS_OK) {
        fail_msg("%s", err.msg);
    }
    return j;
}

static const char *str_field(const cJSON *o, const char *key, const char *where)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) {
        fail_msg("%s: \"%s\" is not a string", where, key);
    }
    return v->valuestring;
}

static double num_field(const cJSON *o, const char *key, const char *where)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) {
        fail_msg("%s: \"%s\" is not a number", where, key);
    }
    return v->valuedouble;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* Parses one split file (DIR/<task> and the suffix ".eval.jsonl" or ".train.jsonl"), checks every
 * line, stores the ids in ids[0..want) and returns the contexts, sorted (owned: free_strs). */
static char **read_split(const char *dir, const tb_task *t, const char *split, size_t want,
                         char **ids)
{
    char *path = testbed_path(dir, t->name, split, "");
    size_t len = 0, n = 0;
    char *text = read_all(path, &len);
    char **ctx = cs_calloc_array(want + 1, sizeof(char *));
    assert_non_null(ctx);
    for (char *line = text; line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
        char where[128];
        cJSON *o = NULL;
        cs_err err = {0};
        snprintf(where, sizeof(where), "%s line %zu", path, n + 1);
        if (cs_json_parse(line, ll, where, &o, &err) != CS_OK) {
            fail_msg("%s", err.msg);
        }
        assert_true(n < want);
        assert_string_equal(str_field(o, "task", where), t->name);
        ids[n] = cs_strdup(str_field(o, "id", where));
        const char *c = str_field(o, t->gen ? "prompt" : "context", where);
        assert_true(strlen(c) > 0);
        if (is_space(c[strlen(c) - 1])) {
            fail_msg("%s: context ends with whitespace", where);
        }
        ctx[n] = cs_strdup(c);
        if (t->gen) {
            const char *ans = str_field(o, "answer", where);
            assert_true(strlen(ans) > 0);
            const cJSON *stop = cJSON_GetObjectItemCaseSensitive(o, "stop");
            assert_true(cJSON_IsArray(stop) && cJSON_GetArraySize(stop) == 1);
            assert_string_equal(cJSON_GetArrayItem(stop, 0)->valuestring, "Question:");
        } else {
            const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "choices");
            double gold = num_field(o, "gold", where);
            assert_true(cJSON_IsArray(ch));
            assert_int_equal(cJSON_GetArraySize(ch), 4);
            assert_true(gold >= 0 && gold <= 3 && gold == floor(gold));
            for (int i = 0; i < 4; i++) {
                const cJSON *a = cJSON_GetArrayItem(ch, i);
                assert_true(cJSON_IsString(a) && strlen(a->valuestring) > 0);
                if (is_space(a->valuestring[0])) {
                    fail_msg("%s: choice %d starts with whitespace", where, i);
                }
                for (int j = 0; j < i; j++) {
                    if (strcmp(cJSON_GetArrayItem(ch, j)->valuestring, a->valuestring) == 0) {
                        fail_msg("%s: choices %d and %d are equal", where, j, i);
                    }
                }
            }
        }
        cJSON_Delete(o);
        n++;
        line += ll + 1;
    }
    assert_int_equal(n, want);
    qsort(ctx, n, sizeof(char *), cmp_str);
    free(text);
    free(path);
    return ctx;
}

static void free_strs(char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        free(s[i]);
    }
    free(s);
}

static void test_tasks_well_formed_and_disjoint(void **state)
{
    (void)state;
    for (size_t t = 0; t < N_ELEMS(k_tasks); t++) {
        const tb_task *tk = &k_tasks[t];
        size_t n_ids = tk->n_eval + tk->n_train;
        char **ids = cs_calloc_array(n_ids, sizeof(char *));
        assert_non_null(ids);
        char **ev = read_split("data/tasks/", tk, ".eval.jsonl", tk->n_eval, ids);
        char **tr = read_split("data/tasks/", tk, ".train.jsonl", tk->n_train, ids + tk->n_eval);
        size_t shared = 0;
        for (size_t i = 0, j = 0; i < tk->n_eval && j < tk->n_train;) {
            int c = strcmp(ev[i], tr[j]);
            shared += c == 0;
            i += c <= 0;
            j += c >= 0;
        }
        if (shared) {
            fail_msg("%s: %zu contexts in both splits", tk->name, shared);
        }
        qsort(ids, n_ids, sizeof(char *), cmp_str);
        for (size_t i = 1; i < n_ids; i++) {
            if (strcmp(ids[i - 1], ids[i]) == 0) {
                fail_msg("%s: duplicate id %s", tk->name, ids[i]);
            }
        }
        free_strs(ev, tk->n_eval);
        free_strs(tr, tk->n_train);
        free_strs(ids, n_ids);
    }
}

/* The default eval suite (data/suite/, README "The default eval suite"): its five multiple-choice
 * tasks hold the default limit of items each, well formed as above, ids "<task>-<5 digits>-<unit>"
 * and unique; contexts are unique but in facts_recall, whose 360 prompts repeat (its items differ
 * by their choices, which the generator checks). */
static const tb_task k_suite[] = {
        {"prose_state", false, 6000, 0},  {"prose_role", false, 6000, 0},
        {"arith_chain", false, 6000, 0},  {"code_output", false, 6000, 0},
        {"facts_recall", false, 6000, 0},
};

static void test_suite_well_formed(void **state)
{
    (void)state;
    for (size_t t = 0; t < N_ELEMS(k_suite); t++) {
        const tb_task *tk = &k_suite[t];
        char **ids = cs_calloc_array(tk->n_eval, sizeof(char *));
        assert_non_null(ids);
        char **ctx = read_split("data/suite/", tk, ".eval.jsonl", tk->n_eval, ids);
        size_t same_ctx = 0;
        for (size_t i = 0; i < tk->n_eval; i++) {
            size_t k = strlen(tk->name);
            const char *s = ids[i];
            bool ok = strncmp(s, tk->name, k) == 0 && s[k] == '-' && strlen(s) > k + 7 &&
                      s[k + 6] == '-';
            for (size_t j = 1; ok && j <= 5; j++) {
                ok = s[k + j] >= '0' && s[k + j] <= '9';
            }
            if (!ok) {
                fail_msg("%s: id \"%s\" is not <task>-<5 digits>-<unit>", tk->name, s);
            }
            same_ctx += i > 0 && strcmp(ctx[i - 1], ctx[i]) == 0;
        }
        if (strcmp(tk->name, "facts_recall") != 0 && same_ctx) {
            fail_msg("%s: %zu repeated contexts", tk->name, same_ctx);
        }
        qsort(ids, tk->n_eval, sizeof(char *), cmp_str);
        for (size_t i = 1; i < tk->n_eval; i++) {
            if (strcmp(ids[i - 1], ids[i]) == 0) {
                fail_msg("%s: duplicate id %s", tk->name, ids[i]);
            }
        }
        free_strs(ctx, tk->n_eval);
        free_strs(ids, tk->n_eval);
    }
}

static void test_reference_items(void **state)
{
    (void)state;
    for (size_t t = 0; t < N_ELEMS(k_tasks); t++) {
        char *path = testbed_path("data/tasks/", k_tasks[t].name, ".ref", ".jsonl");
        size_t len = 0, n = 0;
        char *text = read_all(path, &len);
        for (size_t i = 0; i < len; i++) {
            n += text[i] == '\n';
        }
        assert_int_equal(n, k_tasks[t].n_train);
        cs_err err = {0};
        cJSON *o = NULL;
        assert_int_equal(cs_json_parse(text, (size_t)(strchr(text, '\n') - text), path, &o, &err),
                         CS_OK);
        assert_string_equal(str_field(o, "task", path), k_tasks[t].name);
        assert_true(strlen(str_field(o, "text", path)) > 10);
        cJSON_Delete(o);
        free(text);
        free(path);
    }
}

/* bf16 (upper half of a float32) -> float */
static float bf16_to_f32(const unsigned char *p)
{
    uint32_t u = ((uint32_t)p[0] | (uint32_t)p[1] << 8) << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static void expect_tensor(const cJSON *hdr, const char *name, size_t d0, size_t d1,
                          const char *where)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(hdr, name);
    if (!t) {
        fail_msg("%s: tensor %s missing", where, name);
    }
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    assert_string_equal(str_field(t, "dtype", name), "BF16");
    assert_int_equal(cJSON_GetArraySize(shape), d1 ? 2 : 1);
    if ((size_t)cJSON_GetArrayItem(shape, 0)->valuedouble != d0 ||
        (d1 && (size_t)cJSON_GetArrayItem(shape, 1)->valuedouble != d1)) {
        fail_msg("%s: %s has the wrong shape (want [%zu, %zu])", where, name, d0, d1);
    }
}

static void check_model(const tb_model *m, size_t *total_bytes)
{
    char *path = testbed_path("models/", m->name, "/", "config.json");
    cJSON *cfg = parse_file(path);
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(cfg, "architectures");
    assert_true(cJSON_IsArray(arch));
    assert_string_equal(cJSON_GetArrayItem(arch, 0)->valuestring, m->arch);
    size_t hidden = (size_t)num_field(cfg, "hidden_size", path);
    size_t inter = (size_t)num_field(cfg, "intermediate_size", path);
    size_t layers = (size_t)num_field(cfg, "num_hidden_layers", path);
    size_t nh = (size_t)num_field(cfg, "num_attention_heads", path);
    size_t nkv = (size_t)num_field(cfg, "num_key_value_heads", path);
    size_t vocab = (size_t)num_field(cfg, "vocab_size", path);
    size_t hd = hidden / nh;
    assert_int_equal(hidden % 64, 0);
    assert_int_equal(inter % 64, 0);
    assert_int_equal((nh * hd) % 64, 0);
    assert_true(nkv < nh && nh % nkv == 0);
    assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "tie_word_embeddings")),
                     m->tied);
    free(path);

    path = testbed_path("models/", m->name, "/", "model.safetensors");
    size_t len = 0;
    unsigned char *st = (unsigned char *)read_all(path, &len);
    uint64_t hlen = 0;
    assert_true(len > 8);
    for (int i = 7; i >= 0; i--) {
        hlen = hlen << 8 | st[i];
    }
    assert_true(hlen <= len - 8);
    cJSON *hdr = NULL;
    cs_err err = {0};
    if (cs_json_parse((const char *)st + 8, (size_t)hlen, path, &hdr, &err) != CS_OK) {
        fail_msg("%s", err.msg);
    }
    /* offsets tile the data area exactly, and every value is finite */
    size_t data_len = len - 8 - (size_t)hlen, covered = 0, n_tensors = 0;
    const unsigned char *data = st + 8 + hlen;
    const cJSON *t = NULL;
    cJSON_ArrayForEach(t, hdr)
    {
        if (strcmp(t->string, "__metadata__") == 0) {
            continue;
        }
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        size_t a = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble;
        size_t b = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
        assert_true(a <= b && b <= data_len && (b - a) % 2 == 0);
        covered += b - a;
        for (size_t i = a; i < b; i += 2) {
            if (!isfinite(bf16_to_f32(data + i))) {
                fail_msg("%s: %s holds a non-finite value", path, t->string);
            }
        }
        n_tensors++;
    }
    assert_int_equal(covered, data_len);
    char name[128];
    expect_tensor(hdr, "model.embed_tokens.weight", vocab, hidden, path);
    expect_tensor(hdr, "model.norm.weight", hidden, 0, path);
    if (m->tied) {
        assert_null(cJSON_GetObjectItemCaseSensitive(hdr, "lm_head.weight"));
    } else {
        expect_tensor(hdr, "lm_head.weight", vocab, hidden, path);
    }
    for (size_t l = 0; l < layers; l++) {
        static const char *const proj[] = {"q", "k", "v", "o"};
        for (size_t p = 0; p < 4; p++) {
            size_t rows = p == 0 ? nh * hd : p == 3 ? hidden : nkv * hd;
            size_t cols = p == 3 ? nh * hd : hidden;
            snprintf(name, sizeof(name), "model.layers.%zu.self_attn.%s_proj.weight", l, proj[p]);
            expect_tensor(hdr, name, rows, cols, path);
            snprintf(name, sizeof(name), "model.layers.%zu.self_attn.%s_proj.bias", l, proj[p]);
            if (m->qkv_bias && p < 3) {
                expect_tensor(hdr, name, rows, 0, path);
            } else {
                assert_null(cJSON_GetObjectItemCaseSensitive(hdr, name));
            }
        }
        snprintf(name, sizeof(name), "model.layers.%zu.mlp.gate_proj.weight", l);
        expect_tensor(hdr, name, inter, hidden, path);
        snprintf(name, sizeof(name), "model.layers.%zu.mlp.up_proj.weight", l);
        expect_tensor(hdr, name, inter, hidden, path);
        snprintf(name, sizeof(name), "model.layers.%zu.mlp.down_proj.weight", l);
        expect_tensor(hdr, name, hidden, inter, path);
        snprintf(name, sizeof(name), "model.layers.%zu.input_layernorm.weight", l);
        expect_tensor(hdr, name, hidden, 0, path);
        snprintf(name, sizeof(name), "model.layers.%zu.post_attention_layernorm.weight", l);
        expect_tensor(hdr, name, hidden, 0, path);
    }
    assert_int_equal(n_tensors, 2 + !m->tied + layers * (9 + (m->qkv_bias ? 3 : 0)));
    *total_bytes += len;
    cJSON_Delete(hdr);
    free(st);
    free(path);

    /* the tokenizer's vocabulary plus its added tokens is the model's vocabulary */
    path = testbed_path("models/", m->name, "/", "tokenizer.json");
    cJSON *tok = parse_file(path);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(tok, "model");
    assert_string_equal(str_field(model, "type", path), "BPE");
    size_t n_vocab = (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(model, "vocab"));
    size_t n_added =
            (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tok, "added_tokens"));
    assert_int_equal(n_vocab + n_added, vocab);
    cJSON_Delete(tok);
    free(path);

    /* reference logits: [T][vocab] float32 per listed sequence, all finite */
    path = testbed_path("ref/", m->name, ".logits.json", "");
    cJSON *meta = parse_file(path);
    size_t want = 0;
    const cJSON *seq = NULL;
    cJSON_ArrayForEach(seq, cJSON_GetObjectItemCaseSensitive(meta, "sequences"))
    {
        const cJSON *id = NULL;
        cJSON_ArrayForEach(id, cJSON_GetObjectItemCaseSensitive(seq, "ids"))
        {
            assert_true(id->valuedouble >= 0 && id->valuedouble < (double)vocab);
        }
        want += (size_t)num_field(seq, "tokens", path) * vocab * sizeof(float);
    }
    assert_true(want > 0);
    free(path);
    path = testbed_path("ref/", m->name, ".logits.bin", "");
    char *bin = read_all(path, &len);
    assert_int_equal(len, want);
    for (size_t i = 0; i < len; i += 4) {
        float f;
        memcpy(&f, bin + i, sizeof(f));
        assert_true(isfinite(f));
    }
    free(bin);
    cJSON_Delete(meta);
    cJSON_Delete(cfg);
    free(path);
}

static void test_model_folders(void **state)
{
    size_t total = 0;
    (void)state;
    for (size_t m = 0; m < N_ELEMS(k_models); m++) {
        check_model(&k_models[m], &total);
    }
    assert_true(total <= (size_t)24 << 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_tasks_well_formed_and_disjoint),
            cmocka_unit_test(test_suite_well_formed),
            cmocka_unit_test(test_reference_items),
            cmocka_unit_test(test_model_folders),
    };
    return cmocka_run_group_tests_name("testbed", tests, NULL, NULL);
}
