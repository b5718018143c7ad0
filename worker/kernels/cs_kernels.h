/* cs_kernels.h - the engine's non-BLAS kernels (f32), multi-threaded through cs_par_for.
 *
 * cs_par_for splits [0, n) into n_threads contiguous chunks and runs fn on each in its own
 * thread (the calling thread takes the first chunk). The other chunks go to a pool of workers
 * started on first use and kept for the life of the process (a child of fork() starts its own);
 * a call made while the pool is busy (from another thread, or from inside a chunk) starts
 * threads of its own for the time of the call. Every chunk boundary is the same either way, so
 * the results are too. */
#ifndef CS_WORKER_KERNELS_CS_KERNELS_H
#define CS_WORKER_KERNELS_CS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* The most threads cs_par_for runs (a larger n_threads is clamped to it). */
#define CS_MAX_THREADS 256

typedef void (*cs_range_fn)(void *ctx, size_t begin, size_t end);

/* Runs fn over [0, n) on up to n_threads threads (1 or fewer = inline). Chunks smaller than
 * min_chunk are not split further. */
void cs_par_for(int n_threads, size_t n, size_t min_chunk, cs_range_fn fn, void *ctx);

/* y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, for rows r in [0, rows); y may equal x. */
void cs_rmsnorm(int n_threads, float *y, const float *x, const float *w, size_t rows, size_t dim,
                float eps);

/* Rotary embedding, Hugging Face rotate-half layout, in place on x[rows][n_heads * head_dim]
 * (row stride ld floats); row r has position pos[r]. inv_freq[head_dim/2]. */
void cs_rope(int n_threads, float *x, size_t rows, size_t ld, size_t n_heads, size_t head_dim,
             const int32_t *pos, const float *inv_freq);

/* Causal softmax of x[rows][width] in place: row r's first n0 + r entries (at most width) are
 * its scores, the rest are set to 0 (probability 0, never read as scores). */
void cs_softmax_causal(int n_threads, float *x, size_t rows, size_t width, size_t n0);

/* g[i] = silu(g[i]) * u[i] for i in [0, n). */
void cs_silu_mul(int n_threads, float *g, const float *u, size_t n);

/* y[i] += x[i]. */
void cs_add(int n_threads, float *y, const float *x, size_t n);

/* x[i] = exp(x[i]) in place for i in [0, n): eight lanes at a time (AVX2 and FMA where the CPU
 * has them, else SSE2), relative error below 2e-7; exactly 0 below -87.3 and for -INFINITY. */
void cs_exp_inplace(float *x, size_t n);

/* Row-wise log-softmax value of column col: returns log p(col) for x[0..n) (the exponentials by
 * cs_exp_inplace, their sum in double). */
double cs_log_softmax_at(const float *x, size_t n, size_t col);

#endif
