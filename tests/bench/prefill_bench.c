/* prefill_bench.c - prefill throughput of the engine on a random-weight model shaped like
 * Qwen2.5-0.5B (hidden 896, 24 layers, 14 heads, 2 kv heads, intermediate 4864, vocab 151936,
 * tied embeddings, q/k/v biases), written as f32 safetensors at bench time (never committed).
 *
 * Usage: prefill_bench [DIR] [THREADS] [SEQ] [REPS] [keep|write]
 *   DIR (default /tmp) receives DIR/cs-bench-qwen05/ (config.json + model.safetensors, ~2 GB);
 *   it is reused when present and removed at the end unless "keep" is given (so
 *   tests/bench/prefill_torch.py can run on the same weights); "write" only writes the folder
 *   (tests/bench/quant_qwen05.sh) and exits.
 * Prints "bench: key value unit" lines: the sgemm peak measured in this process (the largest of a
 * few shapes, including the model's own), prefill tokens/s at SEQ, the achieved GFLOP/s and its
 * fraction of the peak, and the peak RSS against the f32 weight size.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_qwen05.h"
#include "cs_alloc.h"
#include "cs_model.h"
#include "cs_rng.h"
#include "cs_time.h"

static double sgemm_gflops(int M, int N, int K, int reps)
{
    float *a = calloc((size_t)M * K, sizeof(float)), *b = calloc((size_t)N * K, sizeof(float));
    float *c = calloc((size_t)M * N, sizeof(float));
    for (size_t i = 0; i < (size_t)M * K; i++) {
        a[i] = (float)(i % 7) * 0.1f;
    }
    for (size_t i = 0; i < (size_t)N * K; i++) {
        b[i] = (float)(i % 5) * 0.1f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
    double best = 0;
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = cs_time_mono_ns();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        double s = (double)(cs_time_mono_ns() - t0) / 1e9;
        double g = 2.0 * M * N * K / s / 1e9;
        best = g > best ? g : best;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp";
    int threads = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 2;
    size_t seq = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 512;
    int reps = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 2;
    int keep = argc > 5 && strcmp(argv[5], "keep") == 0;
    int write_only = argc > 5 && strcmp(argv[5], "write") == 0;
    char dir[512], p[600];
    bench_model_dir(dir, sizeof(dir), base);
    snprintf(p, sizeof(p), "%s/model.safetensors", dir);
    struct stat sb;
    if (stat(p, &sb) != 0) {
        uint64_t t0 = cs_time_mono_ns();
        if (write_model(dir) != 0) {
            return 1;
        }
        printf("bench: write_model %.1f s\n", (double)(cs_time_mono_ns() - t0) / 1e9);
    }
    if (write_only) {
        return 0;
    }
    openblas_set_num_threads(threads);
    printf("bench: openblas %s threads %d\n", openblas_get_config(), openblas_get_num_threads());
    double peak = 0, g;
    const int shapes[][3] = {
            {(int)seq, INTER, HID}, {(int)seq, HID, INTER}, {1024, 1024, 1024}, {2048, 2048, 2048}};
    for (size_t i = 0; i < 4; i++) {
        g = sgemm_gflops(shapes[i][0], shapes[i][1], shapes[i][2], 3);
        printf("bench: sgemm_%dx%dx%d %.1f GFLOP/s\n", shapes[i][0], shapes[i][1], shapes[i][2], g);
        peak = g > peak ? g : peak;
    }
    printf("bench: sgemm_peak %.1f GFLOP/s\n", peak);

    cs_model *m = NULL;
    cs_err err = {0};
    uint64_t t0 = cs_time_mono_ns();
    if (cs_model_load(&m, dir, threads, &err) != CS_OK) {
        fprintf(stderr, "prefill_bench: %s\n", err.msg);
        return 1;
    }
    printf("bench: load %.2f s\n", (double)(cs_time_mono_ns() - t0) / 1e9);
    int32_t *ids = malloc(seq * sizeof(int32_t));
    cs_rng rng;
    cs_rng_seed(&rng, 1);
    for (size_t i = 0; i < seq; i++) {
        ids[i] = (int32_t)cs_rng_below(&rng, VOCAB);
    }
    float *logits = malloc(seq * (size_t)VOCAB * sizeof(float));
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        t0 = cs_time_mono_ns();
        if (cs_model_forward(m, ids, 1, seq, NULL, NULL, NULL, logits, &err) != CS_OK) {
            fprintf(stderr, "prefill_bench: %s\n", err.msg);
            return 1;
        }
        double s = (double)(cs_time_mono_ns() - t0) / 1e9;
        printf("bench: prefill_run%d %.3f s%s\n", r, s, r == 0 ? " (warm-up)" : "");
        if (r > 0 && s < best) {
            best = s;
        }
    }
    /* FLOPs of the linear layers and lm_head (2*params*seq) plus causal attention (QK^T and PV
     * over the seq (seq + 1) / 2 query-key pairs: the floor's count, worker/pipeline/cs_floor.h;
     * the engine multiplies blocks of 64 queries by the keys up to the block's last one). */
    double lin = 0;
    for (size_t l = 0; l < m->cfg.n_layers; l++) {
        for (int k = 0; k < CS_LIN_COUNT; k++) {
            lin += (double)m->layers[l].lin[k].out * (double)m->layers[l].lin[k].in;
        }
    }
    lin += (double)VOCAB * HID;
    double flops = 2.0 * lin * (double)seq +
                   4.0 * (double)m->cfg.n_layers * HEADS * (double)seq * ((double)seq + 1) / 2 * HD;
    double gf = flops / best / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss = (double)ru.ru_maxrss * 1024.0;
    double wbytes = (double)cs_model_weight_bytes(m);
    printf("bench: prefill_seq %zu\n", seq);
    printf("bench: prefill_best %.3f s\n", best);
    printf("bench: prefill_tokens_per_s %.1f tok/s\n", (double)seq / best);
    printf("bench: prefill_gflops %.1f GFLOP/s\n", gf);
    printf("bench: fraction_of_sgemm_peak %.3f\n", gf / peak);
    printf("bench: f32_weight_bytes %.0f (%.2f GB)\n", wbytes, wbytes / 1e9);
    printf("bench: peak_rss %.0f (%.2f GB)\n", rss, rss / 1e9);
    printf("bench: peak_rss_over_weights %.3f\n", rss / wbytes);
    free(ids);
    free(logits);
    cs_model_destroy(m);
    if (!keep) {
        snprintf(p, sizeof(p), "%s/model.safetensors", dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/config.json", dir);
        unlink(p);
        rmdir(dir);
    }
    return 0;
}
