/* bench_qwen05.h - a random-weight model shaped like Qwen2.5-0.5B (hidden 896, 24 layers, 14
 * heads, 2 kv heads, intermediate 4864, vocab 151936, tied embeddings, q/k/v biases), written as
 * f32 safetensors (~2 GB) at bench time, never committed: write_model(dir) makes dir/config.json
 * and dir/model.safetensors (weights uniform with the per-tensor scales below, seeded). Shared by
 * tests/bench/prefill_bench.c and select_bench.c; static, include once per program.
 *
 * write_model_as(dir, bf16, n_shards) writes the same weights (rounded to bf16 when asked) as
 * n_shards files model-0000K-of-0000N.safetensors and model.safetensors.index.json, the layout of
 * a real checkpoint (tests/bench/shards_bench.c).
 *
 * CS_BENCH_QWEN05_LAYERS=N (1..24) writes only the first N blocks (the same weights as the first N
 * blocks of the full model: one seeded stream, tensors in file order) into cs-bench-qwen05-LN/, so
 * that a slow whole-model benchmark can measure a few blocks at full size and scale the per-block
 * part (tests/bench/quant_qwen05.sh). */
#ifndef CS_TESTS_BENCH_QWEN05_H
#define CS_TESTS_BENCH_QWEN05_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
__attribute__((unused)) static void bench_model_dir(char *dir, size_t cap, const char *base)
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

/* Writes the config.json of the shape (layers blocks) into dir. */
static int write_config(const char *dir)
{
    char p[512];
    mkdir(dir, 0755);
    snprintf(p, sizeof(p), "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    if (!f) {
        perror(p);
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
    return fclose(f) == 0 ? 0 : -1;
}

/* Opens dir/name and writes the safetensors header of tensors t[b..e) (esz bytes per element,
 * dtype "F32" or "BF16"); NULL on failure. */
static FILE *open_shard(const char *dir, const char *name, const tdesc *t, size_t b, size_t e,
                        size_t esz)
{
    char p[512];
    cs_buf h;
    cs_buf_init(&h);
    cs_buf_putc(&h, '{');
    size_t off = 0;
    for (size_t i = b; i < e; i++) {
        size_t numel = t[i].rows * (t[i].cols ? t[i].cols : 1);
        cs_buf_printf(&h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%zu", i > b ? "," : "", t[i].name,
                      esz == 4 ? "F32" : "BF16", t[i].rows);
        if (t[i].cols) {
            cs_buf_printf(&h, ",%zu", t[i].cols);
        }
        cs_buf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + numel * esz);
        off += numel * esz;
    }
    cs_buf_putc(&h, '}');
    while (h.len % 8) {
        cs_buf_putc(&h, ' ');
    }
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        perror(p);
        cs_buf_fini(&h);
        return NULL;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) {
        len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    }
    fwrite(len8, 1, 8, f);
    fwrite(h.data, 1, h.len, f);
    cs_buf_fini(&h);
    return f;
}

/* The weights of tensor t, drawn from rng (one stream over the tensors in order), written as f32
 * or bf16 (round to nearest even; h16 holds 2^20 halves). */
static void write_tensor(FILE *f, const tdesc *t, cs_rng *rng, bool bf16, float *chunk,
                         uint16_t *h16)
{
    size_t numel = t->rows * (t->cols ? t->cols : 1);
    float a = t->scale * 1.7320508f;
    for (size_t done = 0; done < numel;) {
        size_t k = numel - done < (1u << 20) ? numel - done : (1u << 20);
        for (size_t j = 0; j < k; j++) {
            uint64_t u = cs_rng_u64(rng);
            chunk[j] = t->offset + a * ((float)(u >> 40) * (2.0f / 16777216.0f) - 1.0f);
        }
        if (bf16) {
            for (size_t j = 0; j < k; j++) {
                uint32_t x;
                memcpy(&x, &chunk[j], 4);
                x += 0x7fffu + ((x >> 16) & 1u);
                h16[j] = (uint16_t)(x >> 16);
            }
            fwrite(h16, 2, k, f);
        } else {
            fwrite(chunk, sizeof(float), k, f);
        }
        done += k;
    }
}

static int write_model_as(const char *dir, bool bf16, size_t n_shards)
{
    tdesc *t = calloc(2 + (size_t)bench_layers() * 12, sizeof(*t));
    size_t n = list_tensors(t), esz = bf16 ? 2 : 4, total = 0, *start = NULL;
    float *chunk = malloc((size_t)(1u << 20) * sizeof(float));
    uint16_t *h16 = malloc((size_t)(1u << 20) * sizeof(uint16_t));
    int bad = !t || !chunk || !h16 || write_config(dir) != 0;
    for (size_t i = 0; i < n; i++) {
        total += t[i].rows * (t[i].cols ? t[i].cols : 1) * esz;
    }
    n_shards = n_shards < 1 ? 1 : n_shards;
    start = calloc(n_shards + 1, sizeof(*start));
    bad = bad || !start;
    /* shard k holds the tensors whose running size passes k * total / n_shards */
    for (size_t i = 0, k = 1, run = 0; !bad && i < n; i++) {
        if (k < n_shards && run >= k * (total / n_shards)) {
            start[k++] = i;
        }
        run += t[i].rows * (t[i].cols ? t[i].cols : 1) * esz;
    }
    if (!bad) {
        start[n_shards] = n;
    }
    cs_rng rng;
    cs_rng_seed(&rng, 20261125);
    cs_buf idx;
    cs_buf_init(&idx);
    cs_buf_printf(&idx, "{\"metadata\":{\"total_size\":%zu},\"weight_map\":{", total);
    for (size_t k = 0; !bad && k < n_shards; k++) {
        char name[96];
        if (n_shards == 1) {
            snprintf(name, sizeof(name), "model.safetensors");
        } else {
            snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", k + 1, n_shards);
        }
        FILE *f = open_shard(dir, name, t, start[k], start[k + 1], esz);
        bad = !f;
        for (size_t i = start[k]; f && i < start[k + 1]; i++) {
            write_tensor(f, &t[i], &rng, bf16, chunk, h16);
            cs_buf_printf(&idx, "%s\"%s\":\"%s\"", i ? "," : "", t[i].name, name);
        }
        bad = bad || ferror(f) || fclose(f) != 0;
    }
    cs_buf_puts(&idx, "}}\n");
    if (!bad && n_shards > 1) {
        char p[512];
        snprintf(p, sizeof(p), "%s/model.safetensors.index.json", dir);
        FILE *f = fopen(p, "w");
        bad = !f || fwrite(idx.data, 1, idx.len, f) != idx.len;
        bad = (f && fclose(f) != 0) || bad;
    }
    cs_buf_fini(&idx);
    free(start);
    free(chunk);
    free(h16);
    free(t);
    return bad ? -1 : 0;
}

__attribute__((unused)) static int write_model(const char *dir)
{
    return write_model_as(dir, false, 1);
}

#endif
