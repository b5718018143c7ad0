/* cs_hfconfig.c - see cs_hfconfig.h. */
#include "cs_hfconfig.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_json.h"
#include "cs_path.h"

const char *cs_arch_name(cs_arch a)
{
    return a == CS_ARCH_QWEN2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
}

/* Reads an integer field; missing uses def (def < 0: required). */
static cs_rc get_int(const cJSON *root, const char *key, int64_t def, int64_t min, int64_t max,
                     int64_t *out, const char *name, cs_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (def < 0) {
            return cs_err_set(err, CS_EPARSE, 0, "%s: %s: missing", name, key);
        }
        *out = def;
        return CS_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        v->valuedouble < (double)min || v->valuedouble > (double)max) {
        return cs_err_set(err, CS_EPARSE, 0, "%s: %s: expected an integer in [%lld, %lld]", name,
                          key, (long long)min, (long long)max);
    }
    *out = (int64_t)v->valuedouble;
    return CS_OK;
}

static cs_rc get_num(const cJSON *root, const char *key, double def, bool required, double *out,
                     const char *name, cs_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        if (required) {
            return cs_err_set(err, CS_EPARSE, 0, "%s: %s: missing", name, key);
        }
        *out = def;
        return CS_OK;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite(v->valuedouble)) {
        return cs_err_set(err, CS_EPARSE, 0, "%s: %s: expected a positive number", name, key);
    }
    *out = v->valuedouble;
    return CS_OK;
}

static cs_rc get_bool(const cJSON *root, const char *key, bool def, bool *out, const char *name,
                      cs_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return CS_OK;
    }
    if (!cJSON_IsBool(v)) {
        return cs_err_set(err, CS_EPARSE, 0, "%s: %s: expected true or false", name, key);
    }
    *out = cJSON_IsTrue(v);
    return CS_OK;
}

#define TRY(x)             \
    do {                   \
        rc = (x);          \
        if (rc != CS_OK) { \
            goto cleanup;  \
        }                  \
    } while (0)

/* architectures[0]: LlamaForCausalLM or Qwen2ForCausalLM. */
static cs_rc parse_arch(cs_hfconfig *cfg, const cJSON *root, const char *name, cs_err *err)
{
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!cJSON_IsString(a0)) {
        return cs_err_set(err, CS_EPARSE, 0, "%s: architectures: expected a list of names", name);
    }
    if (strcmp(a0->valuestring, "LlamaForCausalLM") == 0) {
        cfg->arch = CS_ARCH_LLAMA;
    } else if (strcmp(a0->valuestring, "Qwen2ForCausalLM") == 0) {
        cfg->arch = CS_ARCH_QWEN2;
    } else {
        return cs_err_set(err, CS_ENOTSUP, 0,
                          "%s: architectures[0]: unsupported architecture '%.64s' (supported: "
                          "LlamaForCausalLM, Qwen2ForCausalLM)",
                          name, a0->valuestring);
    }
    return CS_OK;
}

/* The sizes: hidden, layers, heads, head_dim, intermediate, vocab, positions, norm eps, rope
 * theta and the activation. */
static cs_rc parse_shape(cs_hfconfig *cfg, const cJSON *root, const char *name, cs_err *err)
{
    const int64_t big = (int64_t)1 << 24;
    int64_t v;
    cs_rc rc;
    TRY(get_int(root, "hidden_size", -1, 1, big, &v, name, err));
    cfg->hidden = (size_t)v;
    TRY(get_int(root, "num_hidden_layers", -1, 1, 4096, &v, name, err));
    cfg->n_layers = (size_t)v;
    TRY(get_int(root, "num_attention_heads", -1, 1, 4096, &v, name, err));
    cfg->n_heads = (size_t)v;
    TRY(get_int(root, "num_key_value_heads", (int64_t)cfg->n_heads, 1, 4096, &v, name, err));
    cfg->n_kv_heads = (size_t)v;
    if (cfg->n_heads % cfg->n_kv_heads != 0) {
        return cs_err_set(err, CS_EPARSE, 0,
                          "%s: num_key_value_heads: %zu does not divide num_attention_heads %zu",
                          name, cfg->n_kv_heads, cfg->n_heads);
    }
    if (cfg->hidden % cfg->n_heads != 0 && !cJSON_GetObjectItemCaseSensitive(root, "head_dim")) {
        return cs_err_set(err, CS_EPARSE, 0,
                          "%s: hidden_size %zu is not a multiple of num_attention_heads %zu", name,
                          cfg->hidden, cfg->n_heads);
    }
    TRY(get_int(root, "head_dim", (int64_t)(cfg->hidden / cfg->n_heads), 2, 65536, &v, name, err));
    cfg->head_dim = (size_t)v;
    if (cfg->head_dim % 2 != 0) {
        return cs_err_set(err, CS_EPARSE, 0, "%s: head_dim: %zu is odd", name, cfg->head_dim);
    }
    TRY(get_int(root, "intermediate_size", -1, 1, big, &v, name, err));
    cfg->intermediate = (size_t)v;
    TRY(get_int(root, "vocab_size", -1, 1, big, &v, name, err));
    cfg->vocab = (size_t)v;
    TRY(get_int(root, "max_position_embeddings", 4096, 1, big * 64, &v, name, err));
    cfg->max_pos = (size_t)v;
    TRY(get_num(root, "rms_norm_eps", 1e-6, true, &cfg->rms_eps, name, err));
    TRY(get_num(root, "rope_theta", 10000.0, false, &cfg->rope_theta, name, err));
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !(cJSON_IsString(act) && strcmp(act->valuestring, "silu") == 0)) {
        return cs_err_set(err, CS_ENOTSUP, 0, "%s: hidden_act: only \"silu\" is supported", name);
    }
cleanup:
    return rc;
}

/* rope_scaling: absent, null, default or llama3 (with its factors). */
static cs_rc parse_rope_scaling(cs_hfconfig *cfg, const cJSON *root, const char *name, cs_err *err)
{
    const int64_t big = (int64_t)1 << 24;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    int64_t v;
    cs_rc rc = CS_OK;
    if (!rs || cJSON_IsNull(rs)) {
        return CS_OK;
    }
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!ty) {
        ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
    }
    if (!cJSON_IsObject(rs) || !cJSON_IsString(ty)) {
        return cs_err_set(err, CS_EPARSE, 0, "%s: rope_scaling: expected an object with rope_type",
                          name);
    }
    if (strcmp(ty->valuestring, "llama3") == 0) {
        cfg->rope_llama3 = true;
        TRY(get_num(rs, "factor", 0, true, &cfg->rope_factor, name, err));
        TRY(get_num(rs, "low_freq_factor", 0, true, &cfg->rope_low_freq_factor, name, err));
        TRY(get_num(rs, "high_freq_factor", 0, true, &cfg->rope_high_freq_factor, name, err));
        TRY(get_int(rs, "original_max_position_embeddings", -1, 1, big * 64, &v, name, err));
        cfg->rope_orig_max_pos = (size_t)v;
        if (!(cfg->rope_high_freq_factor > cfg->rope_low_freq_factor)) {
            return cs_err_set(err, CS_EPARSE, 0,
                              "%s: rope_scaling: high_freq_factor must exceed low_freq_factor",
                              name);
        }
    } else if (strcmp(ty->valuestring, "default") != 0) {
        return cs_err_set(err, CS_ENOTSUP, 0,
                          "%s: rope_scaling.rope_type: '%.32s' is not supported (llama3, default)",
                          name, ty->valuestring);
    }
cleanup:
    return rc;
}

/* bos_token_id (one id or none) and eos_token_id (one id, a list or none). */
static cs_rc parse_special_ids(cs_hfconfig *cfg, const cJSON *root, const char *name, cs_err *err)
{
    const cJSON *bos = cJSON_GetObjectItemCaseSensitive(root, "bos_token_id");
    int64_t v;
    cs_rc rc = CS_OK;
    cfg->bos = -1;
    if (bos && !cJSON_IsNull(bos)) {
        TRY(get_int(root, "bos_token_id", 0, 0, (int64_t)cfg->vocab - 1, &v, name, err));
        cfg->bos = (int32_t)v;
    }
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(root, "eos_token_id");
    if (cJSON_IsArray(eos)) {
        size_t i = 0;
        for (const cJSON *e = eos->child; e; e = e->next, i++) {
            if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= (double)cfg->vocab ||
                i >= CS_HF_MAX_EOS) {
                return cs_err_set(err, CS_EPARSE, 0,
                                  "%s: eos_token_id[%zu]: expected a token id below vocab_size",
                                  name, i);
            }
            cfg->eos[cfg->n_eos++] = (int32_t)e->valuedouble;
        }
    } else if (eos && !cJSON_IsNull(eos)) {
        TRY(get_int(root, "eos_token_id", 0, 0, (int64_t)cfg->vocab - 1, &v, name, err));
        cfg->eos[cfg->n_eos++] = (int32_t)v;
    }
cleanup:
    return rc;
}

cs_rc cs_hfconfig_parse(cs_hfconfig *cfg, const char *json, size_t len, const char *name,
                        cs_err *err)
{
    cJSON *root = NULL;
    cs_rc rc;
    memset(cfg, 0, sizeof(*cfg));
    if (!name) {
        name = "config.json";
    }
    TRY(cs_json_parse(json, len, name, &root, err));
    if (!cJSON_IsObject(root)) {
        rc = cs_err_set(err, CS_EPARSE, 0, "%s: expected a JSON object", name);
        goto cleanup;
    }
    TRY(parse_arch(cfg, root, name, err));
    TRY(parse_shape(cfg, root, name, err));
    TRY(parse_rope_scaling(cfg, root, name, err));
    TRY(get_bool(root, "attention_bias", cfg->arch == CS_ARCH_QWEN2, &cfg->attn_bias, name, err));
    if (cfg->arch == CS_ARCH_QWEN2) {
        cfg->attn_bias = true;
    }
    TRY(get_bool(root, "tie_word_embeddings", cfg->arch == CS_ARCH_QWEN2, &cfg->tie_embeddings,
                 name, err));
    TRY(parse_special_ids(cfg, root, name, err));
    rc = CS_OK;
cleanup:
    cJSON_Delete(root);
    return rc;
}

cs_rc cs_hfconfig_load(cs_hfconfig *cfg, const char *dir, cs_err *err)
{
    cs_buf path;
    char *text = NULL;
    size_t len = 0;
    cs_rc rc;
    cs_buf_init(&path);
    if (cs_buf_printf(&path, "%s/config.json", dir) != CS_OK) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto cleanup;
    }
    rc = cs_path_read_file(path.data, 1 << 20, &text, &len, err);
    if (rc != CS_OK) {
        goto cleanup;
    }
    rc = cs_hfconfig_parse(cfg, text, len, path.data, err);
cleanup:
    free(text);
    cs_buf_fini(&path);
    return rc;
}
