/* cs_hfconfig.h - the config.json of a Hugging Face causal LM (LlamaForCausalLM,
 * Qwen2ForCausalLM). Named cs_hfconfig because cs_config.h is meson's generated build header. */
#ifndef CS_WORKER_MODEL_CS_HFCONFIG_H
#define CS_WORKER_MODEL_CS_HFCONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

typedef enum cs_arch { CS_ARCH_LLAMA, CS_ARCH_QWEN2 } cs_arch;

#define CS_HF_MAX_EOS 8

typedef struct cs_hfconfig {
    cs_arch arch;
    size_t hidden;       /* hidden_size */
    size_t n_layers;     /* num_hidden_layers */
    size_t n_heads;      /* num_attention_heads */
    size_t n_kv_heads;   /* num_key_value_heads (default n_heads); divides n_heads */
    size_t head_dim;     /* head_dim (default hidden / n_heads) */
    size_t intermediate; /* intermediate_size */
    size_t vocab;        /* vocab_size */
    size_t max_pos;      /* max_position_embeddings */
    double rms_eps;      /* rms_norm_eps */
    double rope_theta;   /* rope_theta (default 10000) */
    bool rope_llama3;    /* rope_scaling.rope_type == "llama3" */
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    size_t rope_orig_max_pos;
    bool attn_bias; /* q/k/v biases: Qwen2 always, Llama when attention_bias */
    bool tie_embeddings;
    int32_t bos;                /* -1 if none */
    int32_t eos[CS_HF_MAX_EOS]; /* eos_token_id (int or list) */
    size_t n_eos;
} cs_hfconfig;

/* Parses config.json text. Errors (CS_EPARSE, CS_ENOTSUP for another architecture or an unsupported
 * rope_scaling or hidden_act) name the file and the key. */
cs_rc cs_hfconfig_parse(cs_hfconfig *cfg, const char *json, size_t len, const char *name,
                        cs_err *err);

/* Reads <dir>/config.json. */
cs_rc cs_hfconfig_load(cs_hfconfig *cfg, const char *dir, cs_err *err);

const char *cs_arch_name(cs_arch a);

#endif
