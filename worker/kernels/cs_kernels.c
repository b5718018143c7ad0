/* cs_kernels.c - see cs_kernels.h. */
#include "cs_kernels.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

/* ---- exp, eight lanes at a time ---------------------------------------------------------------
 * Cephes' expf (range reduction by ln 2 in two parts, a degree-6 polynomial, 2^n put in the
 * exponent bits), written with the compiler's vector types so that it runs on SSE2 everywhere and
 * on AVX2 with FMA where the CPU has them (chosen once at run time): a relative error below
 * 2e-7 against exp in double (tests/unit/engine_kernels_test.c). Below -87.3 (where expf is
 * subnormal or 0), and for -INFINITY, the result is exactly 0. */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

#define v8_set(a) ((v8f){(a), (a), (a), (a), (a), (a), (a), (a)})

/* *px = exp(*px), lane by lane (in place: no vector crosses a call boundary, whose ABI would
 * depend on the target). */
static inline __attribute__((always_inline)) void v8_exp(v8f *px)
{
    v8f x = *px;
    const v8f hi = v8_set(88.3762626647949f), lo = v8_set(-87.3365447505531f);
    v8i under = x < lo;
    v8i over = x > hi;
    x = (v8f)(((v8i)x & ~over) | ((v8i)hi & over));
    x = (v8f)(((v8i)x & ~under) | ((v8i)lo & under));
    v8f fx = x * v8_set(1.44269504088896341f) + v8_set(0.5f);
    v8i n = __builtin_convertvector(fx, v8i); /* truncation: floor for fx >= 0 */
    v8f t = __builtin_convertvector(n, v8f);
    v8i neg = t > fx; /* floor for negative fx */
    t = t - (v8f)((v8i)v8_set(1.0f) & neg);
    n = __builtin_convertvector(t, v8i);
    x = x - t * v8_set(0.693359375f) - t * v8_set(-2.12194440e-4f);
    v8f p = v8_set(1.9875691500e-4f);
    p = p * x + v8_set(1.3981999507e-3f);
    p = p * x + v8_set(8.3334519073e-3f);
    p = p * x + v8_set(4.1665795894e-2f);
    p = p * x + v8_set(1.6666665459e-1f);
    p = p * x + v8_set(5.0000001201e-1f);
    p = p * x * x + x + v8_set(1.0f);
    v8i e = (n + 127) << 23;
    *px = (v8f)((v8i)(p * (v8f)e) & ~under);
}

/* x[i] = exp(x[i]) for i in [0, n), in place. */
static inline __attribute__((always_inline)) void exp_body(float *x, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f v;
        memcpy(&v, x + i, sizeof v);
        v8_exp(&v);
        memcpy(x + i, &v, sizeof v);
    }
    if (i < n) {
        v8f v = v8_set(-INFINITY);
        memcpy(&v, x + i, (n - i) * sizeof(float));
        v8_exp(&v);
        memcpy(x + i, &v, (n - i) * sizeof(float));
    }
}

__attribute__((target("avx2,fma"))) static void exp_avx2(float *x, size_t n)
{
    exp_body(x, n);
}

static void exp_base(float *x, size_t n)
{
    exp_body(x, n);
}

static void (*exp_impl)(float *, size_t);
static void (*silu_impl)(float *, const float *, size_t);
static pthread_once_t exp_once = PTHREAD_ONCE_INIT;
static void silu_avx2(float *g, const float *u, size_t n);
static void silu_base(float *g, const float *u, size_t n);

static void exp_pick(void)
{
    __builtin_cpu_init();
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    exp_impl = avx2 ? exp_avx2 : exp_base;
    silu_impl = avx2 ? silu_avx2 : silu_base;
}

void cs_exp_inplace(float *x, size_t n)
{
    pthread_once(&exp_once, exp_pick);
    exp_impl(x, n);
}

/* max of x[0..n) (-INFINITY for n == 0), eight independent lanes (no serial dependency). */
static float max_of(const float *x, size_t n)
{
    float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                  -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; k++) {
            m[k] = x[i + k] > m[k] ? x[i + k] : m[k];
        }
    }
    for (; i < n; i++) {
        m[0] = x[i] > m[0] ? x[i] : m[0];
    }
    for (int k = 1; k < 8; k++) {
        m[0] = m[k] > m[0] ? m[k] : m[0];
    }
    return m[0];
}

/* sum of x[0..n) in double, four independent partial sums. */
static double sum_of(const float *x, size_t n)
{
    double s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        for (int k = 0; k < 4; k++) {
            s[k] += (double)x[i + k];
        }
    }
    for (; i < n; i++) {
        s[0] += (double)x[i];
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* ---- SwiGLU, eight lanes at a time ---------------------------------------------------------
 * g / (1 + exp(-g)) * u, element by element, the same operations in the same order as the scalar
 * loop it replaced (so the same results to the bit), without a round trip through a buffer. */

static inline __attribute__((always_inline)) void silu8(v8f *g, const v8f *u)
{
    v8f t = -*g;
    v8_exp(&t);
    *g = *g / (v8_set(1.0f) + t) * *u;
}

static inline __attribute__((always_inline)) void silu_body(float *g, const float *u, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f gv, uv;
        memcpy(&gv, g + i, sizeof gv);
        memcpy(&uv, u + i, sizeof uv);
        silu8(&gv, &uv);
        memcpy(g + i, &gv, sizeof gv);
    }
    if (i < n) {
        v8f gv = v8_set(0.0f), uv = v8_set(0.0f);
        memcpy(&gv, g + i, (n - i) * sizeof(float));
        memcpy(&uv, u + i, (n - i) * sizeof(float));
        silu8(&gv, &uv);
        memcpy(g + i, &gv, (n - i) * sizeof(float));
    }
}

__attribute__((target("avx2,fma"))) static void silu_avx2(float *g, const float *u, size_t n)
{
    silu_body(g, u, n);
}

static void silu_base(float *g, const float *u, size_t n)
{
    silu_body(g, u, n);
}

/* The least work a chunk of cs_par_for is given, in elements touched: handing a chunk to another
 * thread costs a wake-up, and OpenBLAS's own threads, spinning between products, compete with it
 * for the cores, so a small kernel runs faster on the calling thread alone. */
#define PAR_MIN_WORK ((size_t)1 << 18)

/* Rows of `width` elements per chunk for at least PAR_MIN_WORK elements. */
static size_t rows_for(size_t width)
{
    size_t r = PAR_MIN_WORK / (width ? width : 1);
    return r ? r : 1;
}

typedef struct par_job {
    cs_range_fn fn;
    void *ctx;
    size_t begin, end;
} par_job;

static void *par_main(void *arg)
{
    par_job *j = arg;
    j->fn(j->ctx, j->begin, j->end);
    return NULL;
}

/* The pool: workers started on first use and kept for the life of the process, each waiting for
 * the next generation of jobs. One cs_par_for at a time uses it (a call made while it is busy, from
 * another thread or from inside a job, starts threads of its own, as every call once did). */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    bool busy;
    size_t n_workers;
    unsigned long gen;
    par_job *jobs; /* jobs[1..n_jobs): jobs[i] runs on worker i - 1 */
    size_t n_jobs, pending;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .go = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER};

static void *pool_main(void *arg)
{
    const size_t id = (size_t)(uintptr_t)arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.gen == seen) {
            pthread_cond_wait(&pool.go, &pool.mu);
        }
        seen = pool.gen;
        if (id + 1 < pool.n_jobs) {
            par_job *j = &pool.jobs[id + 1];
            pthread_mutex_unlock(&pool.mu);
            j->fn(j->ctx, j->begin, j->end);
            pthread_mutex_lock(&pool.mu);
            if (--pool.pending == 0) {
                pthread_cond_signal(&pool.done);
            }
        }
    }
    return NULL;
}

/* A child of fork() has none of the parent's workers: it starts its own. */
static void pool_after_fork(void)
{
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.go, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.busy = false;
    pool.n_workers = 0;
}

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_init(void)
{
    pthread_atfork(NULL, NULL, pool_after_fork);
}

/* Runs jobs[0..nt) on the pool (jobs[0] on the caller); false when the pool is busy or cannot
 * start enough workers. */
static bool pool_run(par_job *jobs, size_t nt)
{
    pthread_once(&pool_once, pool_init);
    pthread_mutex_lock(&pool.mu);
    if (pool.busy) {
        pthread_mutex_unlock(&pool.mu);
        return false;
    }
    while (pool.n_workers + 1 < nt) {
        pthread_t tid;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int e = pthread_create(&tid, &at, pool_main, (void *)(uintptr_t)pool.n_workers);
        pthread_attr_destroy(&at);
        if (e != 0) {
            pthread_mutex_unlock(&pool.mu);
            return false;
        }
        pool.n_workers++;
    }
    pool.busy = true;
    pool.jobs = jobs;
    pool.n_jobs = nt;
    pool.pending = nt - 1;
    pool.gen++;
    pthread_cond_broadcast(&pool.go);
    pthread_mutex_unlock(&pool.mu);
    jobs[0].fn(jobs[0].ctx, jobs[0].begin, jobs[0].end);
    pthread_mutex_lock(&pool.mu);
    while (pool.pending > 0) {
        pthread_cond_wait(&pool.done, &pool.mu);
    }
    pool.busy = false;
    pool.jobs = NULL;
    pool.n_jobs = 0;
    pthread_mutex_unlock(&pool.mu);
    return true;
}

void cs_par_for(int n_threads, size_t n, size_t min_chunk, cs_range_fn fn, void *ctx)
{
    if (n == 0) {
        return;
    }
    if (min_chunk == 0) {
        min_chunk = 1;
    }
    size_t nt = n_threads < 1 ? 1 : (size_t)n_threads;
    if (nt > CS_MAX_THREADS) {
        nt = CS_MAX_THREADS;
    }
    if (nt > (n + min_chunk - 1) / min_chunk) {
        nt = (n + min_chunk - 1) / min_chunk;
    }
    if (nt <= 1) {
        fn(ctx, 0, n);
        return;
    }
    par_job jobs[CS_MAX_THREADS];
    pthread_t tids[CS_MAX_THREADS];
    int started[CS_MAX_THREADS] = {0};
    for (size_t i = 0; i < nt; i++) {
        jobs[i].fn = fn;
        jobs[i].ctx = ctx;
        jobs[i].begin = n * i / nt;
        jobs[i].end = n * (i + 1) / nt;
    }
    if (pool_run(jobs, nt)) {
        return;
    }
    for (size_t i = 1; i < nt; i++) {
        started[i] = pthread_create(&tids[i], NULL, par_main, &jobs[i]) == 0;
        if (!started[i]) {
            par_main(&jobs[i]); /* no thread: run inline, the result is the same */
        }
    }
    par_main(&jobs[0]);
    for (size_t i = 1; i < nt; i++) {
        if (started[i]) {
            pthread_join(tids[i], NULL);
        }
    }
}

typedef struct rms_ctx {
    float *y;
    const float *x, *w;
    size_t dim;
    float eps;
} rms_ctx;

static void rms_range(void *c, size_t b, size_t e)
{
    const rms_ctx *k = c;
    for (size_t r = b; r < e; r++) {
        const float *x = k->x + r * k->dim;
        float *y = k->y + r * k->dim;
        double p[4] = {0, 0, 0, 0}; /* four independent partial sums */
        size_t i = 0;
        for (; i + 4 <= k->dim; i += 4) {
            for (int q = 0; q < 4; q++) {
                p[q] += (double)x[i + q] * (double)x[i + q];
            }
        }
        for (; i < k->dim; i++) {
            p[0] += (double)x[i] * (double)x[i];
        }
        double ss = (p[0] + p[1]) + (p[2] + p[3]);
        float inv = (float)(1.0 / sqrt(ss / (double)k->dim + (double)k->eps));
        for (i = 0; i < k->dim; i++) {
            y[i] = k->w[i] * (x[i] * inv);
        }
    }
}

void cs_rmsnorm(int n_threads, float *y, const float *x, const float *w, size_t rows, size_t dim,
                float eps)
{
    rms_ctx c = {y, x, w, dim, eps};
    cs_par_for(n_threads, rows, rows_for(dim), rms_range, &c);
}

typedef struct rope_ctx {
    float *x;
    size_t ld, n_heads, head_dim;
    const int32_t *pos;
    const float *inv_freq;
} rope_ctx;

static void rope_range(void *c, size_t b, size_t e)
{
    const rope_ctx *k = c;
    size_t half = k->head_dim / 2;
    float cs[1024], sn[1024];
    for (size_t r = b; r < e; r++) {
        float p = (float)k->pos[r];
        float *row = k->x + r * k->ld;
        for (size_t i0 = 0; i0 < half; i0 += 1024) {
            size_t i1 = i0 + 1024 < half ? i0 + 1024 : half;
            for (size_t i = i0; i < i1; i++) {
                float a = p * k->inv_freq[i];
                cs[i - i0] = cosf(a);
                sn[i - i0] = sinf(a);
            }
            for (size_t h = 0; h < k->n_heads; h++) {
                float *v = row + h * k->head_dim;
                for (size_t i = i0; i < i1; i++) {
                    float x1 = v[i], x2 = v[i + half];
                    v[i] = x1 * cs[i - i0] - x2 * sn[i - i0];
                    v[i + half] = x2 * cs[i - i0] + x1 * sn[i - i0];
                }
            }
        }
    }
}

void cs_rope(int n_threads, float *x, size_t rows, size_t ld, size_t n_heads, size_t head_dim,
             const int32_t *pos, const float *inv_freq)
{
    rope_ctx c = {x, ld, n_heads, head_dim, pos, inv_freq};
    cs_par_for(n_threads, rows, rows_for(n_heads * head_dim), rope_range, &c);
}

/* x[0..n) = softmax(x[0..n)) in place (a row of -INFINITY becomes zeros). */
static void softmax_row(float *x, size_t n)
{
    float m = max_of(x, n);
    if (m == -INFINITY) {
        memset(x, 0, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        x[i] -= m;
    }
    cs_exp_inplace(x, n);
    float inv = (float)(1.0 / sum_of(x, n));
    for (size_t i = 0; i < n; i++) {
        x[i] *= inv;
    }
}

typedef struct smc_ctx {
    float *x;
    size_t width, n0;
} smc_ctx;

static void smc_range(void *c, size_t b, size_t e)
{
    const smc_ctx *k = c;
    for (size_t r = b; r < e; r++) {
        float *x = k->x + r * k->width;
        size_t n = k->n0 + r < k->width ? k->n0 + r : k->width;
        softmax_row(x, n);
        memset(x + n, 0, (k->width - n) * sizeof(float));
    }
}

void cs_softmax_causal(int n_threads, float *x, size_t rows, size_t width, size_t n0)
{
    smc_ctx c = {x, width, n0};
    cs_par_for(n_threads, rows, rows_for(width / 2), smc_range, &c);
}

typedef struct ew_ctx {
    float *g;
    const float *u;
} ew_ctx;

static void silu_range(void *c, size_t b, size_t e)
{
    const ew_ctx *k = c;
    pthread_once(&exp_once, exp_pick);
    silu_impl(k->g + b, k->u + b, e - b);
}

void cs_silu_mul(int n_threads, float *g, const float *u, size_t n)
{
    ew_ctx c = {g, u};
    cs_par_for(n_threads, n, PAR_MIN_WORK / 4, silu_range, &c);
}

static void add_range(void *c, size_t b, size_t e)
{
    const ew_ctx *k = c;
    for (size_t i = b; i < e; i++) {
        k->g[i] += k->u[i];
    }
}

void cs_add(int n_threads, float *y, const float *x, size_t n)
{
    ew_ctx c = {y, x};
    cs_par_for(n_threads, n, PAR_MIN_WORK * 4, add_range, &c);
}

double cs_log_softmax_at(const float *x, size_t n, size_t col)
{
    float m = max_of(x, n), t[256];
    double s = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += 256) {
        size_t k = n - i0 < 256 ? n - i0 : 256;
        for (size_t i = 0; i < k; i++) {
            t[i] = x[i0 + i] - m;
        }
        cs_exp_inplace(t, k);
        s += sum_of(t, k);
    }
    return (double)x[col] - (double)m - log(s);
}
