/* imatrix_bench.c - llama.cpp's Q4_0 / Q5_0 / Q4_K quantization (cs_imatrix_quantize) of one
 * R x C layer, with and without an importance matrix (BENCHMARKS.md "llama.cpp imatrix").
 *
 * W ~ N(0, 0.02^2) with one weight in 97 six times larger; importances u^2 * 2 + 1e-3 (u uniform)
 * with one column in 40 fifty times larger. Each case quantizes a fresh copy of W (the copy is not
 * timed), best of REPS runs; prints weights per second. One thread (the kernels are scalar).
 * Usage: imatrix_bench [ROWS [COLS [REPS]]] (default 4864 x 896 x 3, Qwen2.5-0.5B's gate_proj;
 * 896 inputs is not a multiple of 256, so its Q4_K row is skipped: use 896 x 4864 for down_proj).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_imatrix.h"
#include "cs_rng.h"
#include "cs_time.h"

static size_t arg(int argc, char **argv, int i, size_t def)
{
    if (argc <= i) {
        return def;
    }
    char *end = NULL;
    const unsigned long long v = strtoull(argv[i], &end, 10);
    if (!end || *end != '\0' || v == 0) {
        fprintf(stderr, "imatrix_bench: argument %d: expected a positive integer\n", i);
        exit(2);
    }
    return (size_t)v;
}

int main(int argc, char **argv)
{
    const size_t R = arg(argc, argv, 1, 4864), C = arg(argc, argv, 2, 896);
    const size_t reps = arg(argc, argv, 3, 3);
    float *w = malloc(R * C * sizeof(float)), *q = malloc(R * C * sizeof(float));
    float *imp = malloc(C * sizeof(float));
    if (!w || !q || !imp) {
        fprintf(stderr, "imatrix_bench: out of memory\n");
        return 1;
    }
    cs_rng rng;
    cs_rng_seed(&rng, 1);
    for (size_t i = 0; i < R * C; i++) {
        w[i] = 0.02f * (float)cs_rng_normal(&rng) * (cs_rng_below(&rng, 97) == 0 ? 6.0f : 1.0f);
    }
    for (size_t j = 0; j < C; j++) {
        const double u = cs_rng_uniform(&rng);
        imp[j] = (float)(u * u * 2.0 + 1e-3) * (cs_rng_below(&rng, 40) == 0 ? 50.0f : 1.0f);
    }
    printf("| type | importance | %zu x %zu | best s | Mweights/s |\n|---|---|---|---|---|\n", R,
           C);
    const cs_imx_type types[] = {CS_IMX_Q4_0, CS_IMX_Q5_0, CS_IMX_Q4_K};
    for (int t = 0; t < 3; t++) {
        if (C % cs_imatrix_block_size(types[t]) != 0) {
            continue;
        }
        for (int with = 1; with >= 0; with--) {
            double best = 1e30;
            for (size_t r = 0; r < reps; r++) {
                memcpy(q, w, R * C * sizeof(float));
                cs_err err = {0};
                const uint64_t t0 = cs_time_mono_ns();
                if (cs_imatrix_quantize(q, R, C, types[t], with ? imp : NULL, &err) != CS_OK) {
                    fprintf(stderr, "imatrix_bench: %s\n", err.msg);
                    return 1;
                }
                const double s = (double)(cs_time_mono_ns() - t0) / 1e9;
                best = s < best ? s : best;
            }
            printf("| %s | %s | | %.3f | %.1f |\n", cs_imatrix_type_name(types[t]),
                   with ? "imatrix" : "none", best, (double)(R * C) / best / 1e6);
        }
    }
    free(w);
    free(q);
    free(imp);
    return 0;
}
