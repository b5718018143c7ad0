/* bench_qwen05.h - a random-weight model shaped like Qwen2.5-0.5B (hidden 896, 24 layers, 14
 * heads, 2 kv heads, intermediate 4864, vocab 151936, tied embeddings, q/k/v biases), written as
 * f32 safetensors (~2 GB) at bench time, never committed: write_model(dir) makes dir/config.json
 * and dir/model.safetensors (weights uniform with the per-tensor scales below, seeded). Shared by
 * tests/bench/prefill_bench.c and select_bench.c; static, include once per program.
 *
 * CS_BENCH_QWEN05_LAYERS=N (1..24) writes only the first N blocks (the same weights as the first N
 * blocks of the full model: one seeded stream, tensors in file order) into cs-bench-qwen05-LN/, so
 * that a slow whole-model benchmark can measure a few blocks at full size and scale the per-block
 * part (tests/bench/quant_qwen05.sh). */
#ifndef CS_TESTS_BENCH_QWEN05_H
#define CS_TESTS_BENCH_QWEN05_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <sys/stat.h>

#include "cs_alloc.h"
#include "cs_rng.h"

enum { HID = 896, LAYERS_FULL = 24, HEADS = 14, KV = 2, HD = 64, INTER = 4864, VOCAB = 151936 };

/* The number of blocks to write: CS_BENCH_QWEN05_LAYERS, else all 24. */
static int bench_layers(void)
{
    const char *v = getenv("CS_BENCH_QWEN05_LAYERS");
    long n = v && *v ? strtol(v, NULL, 10) : LAYERS_FULL;
    return n >= 1 && n <= LAYERS_FULL ? (int)n : LAYERS_FULL;
}

/* dir = base/cs-bench-qwen05, or base/cs-bench-qwen05-LN when fewer blocks are asked for. */
static void bench_model_dir(char *dir, size_t cap, const char *base)
{
    int n = bench_layers();
    if (n == LAYERS_FULL) {
        snprintf(dir, cap, "%s/cs-bench-qwen05", base);
    } else {
        snprintf(dir, cap, "%s/cs-bench-qwen05-L%d", base, n);
    }
}

typedef struct tdesc {
    char name[96];
    size_t rows, cols; /* cols 0: 1-D */
    float scale;
    float offset;
} tdesc;

static size_t list_tensors(tdesc *t)
{
    size_t n = 0;
    const float s_h = 1.0f / sqrtf((float)HID), s_i = 1.0f / sqrtf((float)INTER);
    snprintf(t[n].name, sizeof(t[n].name), "model.embed_tokens.weight");
    t[n].rows = VOCAB, t[n].cols = HID, t[n].scale = 1.0f, t[n].offset = 0, n++;
    snprintf(t[n].name, sizeof(t[n].name), "model.norm.weight");
    t[n].rows = HID, t[n].cols = 0, t[n].scale = 0.1f, t[n].offset = 1.0f, n++;
    for (int l = 0, layers = bench_layers(); l < layers; l++) {
        const struct {
            const char *n;
            size_t r, c;
            float s, o;
        } parts[] = {
                {"input_layernorm.weight", HID, 0, 0.1f, 1.0f},
                {"post_attention_layernorm.weight", HID, 0, 0.1f, 1.0f},
                {"self_attn.q_proj.weight", HEADS * HD, HID, s_h, 0},
                {"self_attn.q_proj.bias", HEADS * HD, 0, 0.1f, 0},
                {"self_attn.k_proj.weight", KV * HD, HID, s_h, 0},
                {"self_attn.k_proj.bias", KV * HD, 0, 0.1f, 0},
                {"self_attn.v_proj.weight", KV * HD, HID, s_h, 0},
                {"self_attn.v_proj.bias", KV * HD, 0, 0.1f, 0},
                {"self_attn.o_proj.weight", HID, HEADS * HD, s_h, 0},
                {"mlp.gate_proj.weight", INTER, HID, s_h, 0},
                {"mlp.up_proj.weight", INTER, HID, s_h, 0},
                {"mlp.down_proj.weight", HID, INTER, s_i, 0},
        };
        for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
            snprintf(t[n].name, sizeof(t[n].name), "model.layers.%d.%s", l, parts[k].n);
            t[n].rows = parts[k].r, t[n].cols = parts[k].c, t[n].scale = parts[k].s;
            t[n].offset = parts[k].o, n++;
        }
    }
    return n;
}

static int write_model(const char *dir)
{
    char p[512];
    tdesc *t = calloc(2 + (size_t)bench_layers() * 12, sizeof(*t));
    size_t n = list_tensors(t);
    mkdir(dir, 0755);
    snprintf(p, sizeof(p), "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    if (!f) {
        perror(p);
        free(t);
        return -1;
    }
    fprintf(f,
            "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":%d,\"intermediate_size\":%d,"
            "\"num_hidden_layers\":%d,\"num_attention_heads\":%d,\"num_key_value_heads\":%d,"
            "\"vocab_size\":%d,\"rms_norm_eps\":1e-6,\"rope_theta\":1000000.0,"
            "\"max_position_embeddings\":32768,\"tie_word_embeddings\":true,\"hidden_act\":"
            "\"silu\","
            "\"bos_token_id\":151643,\"eos_token_id\":151645}\n",
            HID, INTER, bench_layers(), HEADS, KV, VOCAB);
    fclose(f);
    cs_buf h;
    cs_buf_init(&h);
    cs_buf_putc(&h, '{');
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t numel = t[i].rows * (t[i].cols ? t[i].cols : 1);
        if (t[i].cols) {
            cs_buf_printf(
                    &h,
                    "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu,%zu],\"data_offsets\":[%zu,%zu]}",
                    i ? "," : "", t[i].name, t[i].rows, t[i].cols, off, off + numel * 4);
        } else {
            cs_buf_printf(&h,
                          "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}",
                          i ? "," : "", t[i].name, t[i].rows, off, off + numel * 4);
        }
        off += numel * 4;
    }
    cs_buf_putc(&h, '}');
    while (h.len % 8) {
        cs_buf_putc(&h, ' ');
    }
    snprintf(p, sizeof(p), "%s/model.safetensors", dir);
    f = fopen(p, "wb");
    if (!f) {
        perror(p);
        cs_buf_fini(&h);
        free(t);
        return -1;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) {
        len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    }
    fwrite(len8, 1, 8, f);
    fwrite(h.data, 1, h.len, f);
    cs_rng rng;
    cs_rng_seed(&rng, 20261125);
    float *chunk = malloc((size_t)(1u << 20) * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        size_t numel = t[i].rows * (t[i].cols ? t[i].cols : 1);
        float a = t[i].scale * 1.7320508f;
        for (size_t done = 0; done < numel;) {
            size_t k = numel - done < (1u << 20) ? numel - done : (1u << 20);
            for (size_t j = 0; j < k; j++) {
                uint64_t u = cs_rng_u64(&rng);
                chunk[j] = t[i].offset + a * ((float)(u >> 40) * (2.0f / 16777216.0f) - 1.0f);
            }
            fwrite(chunk, sizeof(float), k, f);
            done += k;
        }
    }
    int bad = ferror(f);
    fclose(f);
    free(chunk);
    cs_buf_fini(&h);
    free(t);
    return bad ? -1 : 0;
}

#endif
