/* shards_bench.c - a real checkpoint's layout on the 24 GB machine: the random-weight model of the
 * Qwen2.5-0.5B shape (bench_qwen05.h) written as bf16 in several shards with
 * model.safetensors.index.json, then loaded, a prefill run, and block 0 quantized with GPTQ;
 * peak RSS against the f32 weights the engine holds (goal: below 1.3x).
 *
 * Usage: shards_bench [DIR] [THREADS] [SHARDS] [keep]
 *   DIR (default /tmp) receives DIR/cs-bench-qwen05-bf16/ (about 1 GB), written when absent and
 *   removed at the end unless "keep" is given.
 * Prints "bench: key value unit" lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_qwen05.h"
#include "cs_model.h"
#include "cs_pipeline.h"
#include "cs_rng.h"
#include "cs_time.h"

static double rss_peak(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp";
    int threads = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 2;
    size_t shards = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 4;
    int keep = argc > 4 && strcmp(argv[4], "keep") == 0;
    char dir[512], p[600];
    snprintf(dir, sizeof(dir), "%s/cs-bench-qwen05-bf16", base);
    snprintf(p, sizeof(p), "%s/model.safetensors.index.json", dir);
    struct stat sb;
    if (stat(p, &sb) != 0) {
        uint64_t t0 = cs_time_mono_ns();
        if (write_model_as(dir, true, shards) != 0) {
            fprintf(stderr, "shards_bench: cannot write %s\n", dir);
            return 1;
        }
        printf("bench: write_shards %.1f s (%zu shards, bf16)\n",
               (double)(cs_time_mono_ns() - t0) / 1e9, shards);
    }
    openblas_set_num_threads(threads);
    cs_model *m = NULL;
    cs_err err = {0};
    uint64_t t0 = cs_time_mono_ns();
    if (cs_model_load(&m, dir, threads, &err) != CS_OK) {
        fprintf(stderr, "shards_bench: %s\n", err.msg);
        return 1;
    }
    double wbytes = (double)cs_model_weight_bytes(m), after_load = rss_peak();
    printf("bench: load %.2f s\n", (double)(cs_time_mono_ns() - t0) / 1e9);
    printf("bench: f32_weight_bytes %.0f (%.2f GB)\n", wbytes, wbytes / 1e9);
    printf("bench: peak_rss_after_load %.2f GB = %.3f x f32 weights\n", after_load / 1e9,
           after_load / wbytes);

    /* a prefill of 128 tokens, logits of the last position */
    enum { SEQ = 128, N_CAL = 8 };
    int32_t *ids = malloc((size_t)N_CAL * SEQ * sizeof(int32_t));
    float *logits = malloc((size_t)SEQ * VOCAB * sizeof(float));
    cs_rng rng;
    cs_rng_seed(&rng, 7);
    for (size_t i = 0; i < (size_t)N_CAL * SEQ; i++) {
        ids[i] = (int32_t)cs_rng_below(&rng, VOCAB);
    }
    t0 = cs_time_mono_ns();
    if (cs_model_forward(m, ids, 1, SEQ, NULL, NULL, NULL, logits, &err) != CS_OK) {
        fprintf(stderr, "shards_bench: %s\n", err.msg);
        return 1;
    }
    int finite = 1;
    for (size_t i = 0; i < (size_t)SEQ * VOCAB; i++) {
        finite = finite && logits[i] == logits[i] && logits[i] - logits[i] == 0.0f;
    }
    printf("bench: prefill_%d %.2f s, logits %s; peak_rss %.2f GB\n", SEQ,
           (double)(cs_time_mono_ns() - t0) / 1e9, finite ? "finite" : "NOT FINITE",
           rss_peak() / 1e9);
    free(logits);

    /* GPTQ (4 bits, group 128) on block 0 only: the pipeline walks cfg.n_layers blocks, so the
     * model is shown one for the time of the call (a benchmark's shortcut, never the engine's) */
    cs_pipe_params pp;
    cJSON *algo = cJSON_Parse("{\"name\":\"gptq\",\"bits\":4,\"group_size\":128}");
    if (!algo || cs_pipe_params_from_json(&pp, algo, &err) != CS_OK) {
        fprintf(stderr, "shards_bench: %s\n", err.msg);
        return 1;
    }
    cJSON_Delete(algo);
    size_t layers = m->cfg.n_layers;
    cs_pipe_report rep = {0};
    m->cfg.n_layers = 1;
    t0 = cs_time_mono_ns();
    cs_rc rc = cs_pipe_quantize(m, ids, N_CAL, SEQ, &pp, NULL, NULL, &rep, &err);
    m->cfg.n_layers = layers;
    if (rc != CS_OK) {
        fprintf(stderr, "shards_bench: %s\n", err.msg);
        return 1;
    }
    printf("bench: gptq_block0 %.2f s (%d x %d calibration tokens)\n",
           (double)(cs_time_mono_ns() - t0) / 1e9, N_CAL, SEQ);
    cs_pipe_report_fini(&rep);
    double peak = rss_peak();
    printf("bench: peak_rss %.2f GB\n", peak / 1e9);
    printf("bench: peak_rss_over_f32_weights %.3f (goal < 1.3)\n", peak / wbytes);
    cs_model_destroy(m);
    free(ids);
    if (!keep) { /* config.json, the index and the shards */
        snprintf(p, sizeof(p), "%s/config.json", dir);
        unlink(p);
        snprintf(p, sizeof(p), "%s/model.safetensors.index.json", dir);
        unlink(p);
        for (size_t k = 1; k <= shards; k++) {
            snprintf(p, sizeof(p), "%s/model-%05zu-of-%05zu.safetensors", dir, k, shards);
            unlink(p);
        }
        rmdir(dir);
    }
    return finite ? 0 : 1;
}
