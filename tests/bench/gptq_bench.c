/* gptq_bench.c - GPTQ on one R x C layer (default 4096 x 4096) with a given Hessian, the C side of
 * the comparison with tests/bench/gptq_bench.py (BENCHMARKS.md "Quantization").
 *
 * H is the AR(1) correlation rho^|i-j| scaled by per-column magnitudes d_i d_j (positive
 * definite, correlated, built in O(C^2) by the same formula in both programs); W ~ N(0, 0.02^2).
 * Times cs_gptq_hinv alone (damping, Cholesky, inverse, Cholesky in double) and the whole
 * cs_gptq_quantize (4-bit asym, group 128, blocksize 128, percdamp 0.01) with each way of
 * computing U (CS_GPTQ_HINV_REF, CS_GPTQ_HINV_UL).
 * Usage: gptq_bench [ROWS [COLS [GROUP [ACT_ORDER]]]]. Threads: OPENBLAS_NUM_THREADS.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_gptq.h"
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
        fprintf(stderr, "gptq_bench: argument %d: expected a positive integer\n", i);
        exit(2);
    }
    return (size_t)v;
}

static double now_s(void)
{
    return (double)cs_time_mono_ns() / 1e9;
}

int main(int argc, char **argv)
{
    const size_t R = arg(argc, argv, 1, 4096), C = arg(argc, argv, 2, 4096);
    const size_t G = arg(argc, argv, 3, 128), ACT = argc > 4 ? arg(argc, argv, 4, 1) : 0;
    float *w = malloc(R * C * sizeof(float)), *h = malloc(C * C * sizeof(float));
    float *u = malloc(C * C * sizeof(float));
    double *hd = malloc(C * C * sizeof(double));
    if (!w || !h || !u || !hd) {
        fprintf(stderr, "gptq_bench: out of memory\n");
        return 1;
    }
    const double rho = 0.9;
    for (size_t i = 0; i < C; i++) {
        const double di = 0.5 + (double)((i * 7919) % 97) / 97.0;
        for (size_t j = 0; j < C; j++) {
            const double dj = 0.5 + (double)((j * 7919) % 97) / 97.0;
            const size_t k = i > j ? i - j : j - i;
            h[i * C + j] = (float)(di * dj * pow(rho, (double)k));
        }
    }
    cs_rng rng;
    cs_rng_seed(&rng, 1);
    for (size_t i = 0; i < R * C; i++) {
        w[i] = 0.02f * (float)cs_rng_normal(&rng);
    }
    for (size_t i = 0; i < C * C; i++) {
        hd[i] = (double)h[i];
    }
    cs_gptq_result res = {0};
    cs_err err = {0};
    double t0 = now_s();
    if (cs_gptq_hinv(u, hd, C, 0.01, 0.01, 0.2, CS_GPTQ_HINV_REF, &res, &err) != CS_OK) {
        fprintf(stderr, "gptq_bench: %s\n", err.msg);
        return 1;
    }
    const double t_hinv = now_s() - t0;
    const char *thr = getenv("OPENBLAS_NUM_THREADS");
    float *w0 = malloc(R * C * sizeof(float));
    if (!w0) {
        fprintf(stderr, "gptq_bench: out of memory\n");
        return 1;
    }
    memcpy(w0, w, R * C * sizeof(float));
    for (int m = 0; m < 2; m++) {
        cs_gptq_params p;
        cs_gptq_params_default(&p);
        p.group_size = (long)G;
        p.act_order = ACT != 0;
        p.hinv = m ? CS_GPTQ_HINV_UL : CS_GPTQ_HINV_REF;
        memcpy(w, w0, R * C * sizeof(float));
        t0 = now_s();
        if (cs_gptq_quantize(w, R, C, h, &p, &res, &err) != CS_OK) {
            fprintf(stderr, "gptq_bench: %s\n", err.msg);
            return 1;
        }
        const double t_all = now_s() - t0;
        printf("gptq_bench C hinv=%s: rows %zu cols %zu group %zu act_order %d threads %s: "
               "total %.2f s (loss %.6g)\n",
               m ? "ul" : "ref", R, C, G, (int)ACT, thr ? thr : "(default)", t_all, res.loss);
        printf("  prep %.2f s, hinv %.2f s, sweep %.2f s, lazy updates %.2f s, rest %.2f s\n",
               res.t_prep, res.t_hinv, res.t_sweep, res.t_update,
               t_all - res.t_prep - res.t_hinv - res.t_sweep - res.t_update);
    }
    printf("gptq_bench C: cs_gptq_hinv (ref) alone %.2f s\n", t_hinv);
    free(w0);
    free(w);
    free(h);
    free(u);
    free(hd);
    return 0;
}
