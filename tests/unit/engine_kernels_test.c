/* engine_kernels_test.c - the threaded kernels equal naive double-precision versions, and give the
 * same result with 1, 2 and 7 threads; cs_par_for's pool covers every range once when calls nest,
 * come from two threads at once, or from a forked child. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cs_kernels.h"
#include "cs_test.h"

static void fill(float *x, size_t n, uint64_t seed)
{
    cs_rng r;
    cs_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(cs_rng_uniform(&r) * 4.0 - 2.0);
    }
}

static void test_rmsnorm_silu(void **state)
{
    (void)state;
    enum { R = 37, D = 96 };
    float x[R * D], w[D], y[R * D], y1[R * D], want[R * D];
    fill(x, R * D, 1);
    fill(w, D, 2);
    for (size_t r = 0; r < R; r++) {
        double ss = 0;
        for (size_t i = 0; i < D; i++) {
            ss += (double)x[r * D + i] * x[r * D + i];
        }
        for (size_t i = 0; i < D; i++) {
            want[r * D + i] = (float)(w[i] * x[r * D + i] / sqrt(ss / D + 1e-5));
        }
    }
    cs_rmsnorm(1, y1, x, w, R, D, 1e-5f);
    cs_assert_close(y1, want, R * D, 1e-6, 1e-5);
    for (int t = 2; t <= 7; t += 5) {
        cs_rmsnorm(t, y, x, w, R, D, 1e-5f);
        cs_assert_close(y, y1, R * D, 0, 0);
    }
    /* silu(g) * u */
    float g[R * D], u[R * D];
    fill(g, R * D, 3);
    fill(u, R * D, 4);
    for (size_t i = 0; i < R * D; i++) {
        want[i] = (float)(g[i] / (1.0 + exp(-(double)g[i])) * u[i]);
    }
    cs_silu_mul(2, g, u, R * D);
    cs_assert_close(g, want, R * D, 1e-6, 1e-5);
}

static void test_rope(void **state)
{
    (void)state;
    enum { R = 5, NH = 3, HD = 8 };
    float x[R * NH * HD], want[R * NH * HD], inv[HD / 2];
    int32_t pos[R] = {0, 1, 7, 100, 511};
    fill(x, R * NH * HD, 5);
    for (size_t i = 0; i < HD / 2; i++) {
        inv[i] = (float)pow(10000.0, -(double)(2 * i) / HD);
    }
    for (size_t r = 0; r < R; r++) {
        for (size_t h = 0; h < NH; h++) {
            const float *v = x + r * NH * HD + h * HD;
            float *o = want + r * NH * HD + h * HD;
            for (size_t i = 0; i < HD / 2; i++) {
                double a = (double)pos[r] * inv[i];
                o[i] = (float)(v[i] * cos(a) - v[i + HD / 2] * sin(a));
                o[i + HD / 2] = (float)(v[i + HD / 2] * cos(a) + v[i] * sin(a));
            }
        }
    }
    cs_rope(2, x, R, NH * HD, NH, HD, pos, inv);
    cs_assert_close(x, want, R * NH * HD, 2e-4, 1e-4);
}

typedef struct cover {
    int hits[1000];
} cover;

static void mark(void *ctx, size_t b, size_t e)
{
    cover *c = ctx;
    for (size_t i = b; i < e; i++) {
        c->hits[i]++;
    }
}

static void test_par_for_covers_once(void **state)
{
    (void)state;
    const int threads[] = {0, 1, 2, 3, 16, 300};
    for (size_t k = 0; k < sizeof(threads) / sizeof(threads[0]); k++) {
        cover c;
        memset(&c, 0, sizeof(c));
        cs_par_for(threads[k], 1000, 7, mark, &c);
        for (int i = 0; i < 1000; i++) {
            assert_int_equal(c.hits[i], 1);
        }
    }
    cs_par_for(4, 0, 1, mark, NULL); /* empty range: fn not called */
}

/* cs_exp_inplace against exp in double over the whole float range, tails of every length
 * included: a relative error below 2e-7 down to -87.3, exactly 0 below and for -INFINITY. */
static void test_exp(void **state)
{
    (void)state;
    enum { N = 20000 };
    static float x[N], y[N];
    double worst = 0;
    for (size_t i = 0; i < N; i++) {
        x[i] = -87.3f + (float)i * (88.3f + 87.3f) / (float)N;
    }
    memcpy(y, x, sizeof(x));
    cs_exp_inplace(y, N);
    for (size_t i = 0; i < N; i++) {
        double want = exp((double)x[i]);
        worst = fmax(worst, fabs((double)y[i] - want) / want);
    }
    print_message("# cs_exp_inplace: largest relative error %.3g\n", worst);
    assert_true(worst < 2e-7);
    for (size_t n = 0; n <= 17; n++) { /* every tail length, and the lanes past it untouched */
        float v[24];
        for (size_t i = 0; i < 24; i++) {
            v[i] = i < n ? (float)i * 0.25f - 2.0f : 123.0f;
        }
        cs_exp_inplace(v, n);
        for (size_t i = 0; i < 24; i++) {
            double want = i < n ? exp((double)i * 0.25 - 2.0) : 123.0;
            assert_true(fabs(v[i] - want) <= 2e-7 * want);
        }
    }
    float z[4] = {-INFINITY, -88.0f, -1000.0f, 0.0f};
    cs_exp_inplace(z, 4);
    assert_true(z[0] == 0.0f && z[1] == 0.0f && z[2] == 0.0f && z[3] == 1.0f);
}

/* Causal softmax: row r keeps its first n0 + r entries (at most the width) as a softmax, equal to
 * one in double, and the rest 0; the same to the bit on any number of threads. */
static void test_softmax_causal(void **state)
{
    (void)state;
    enum { R = 37, W = 96, N0 = 40 };
    float x[R * W], y[R * W], y1[R * W], want[R * W];
    fill(x, R * W, 5);
    memcpy(y1, x, sizeof(x));
    cs_softmax_causal(1, y1, R, W, N0);
    for (size_t r = 0; r < R; r++) {
        size_t n = N0 + r < W ? N0 + r : W;
        double mx = -INFINITY, sum = 0;
        for (size_t i = 0; i < n; i++) {
            mx = x[r * W + i] > mx ? x[r * W + i] : mx;
        }
        for (size_t i = 0; i < n; i++) {
            sum += exp(x[r * W + i] - mx);
        }
        for (size_t i = 0; i < W; i++) {
            want[r * W + i] = i < n ? (float)(exp(x[r * W + i] - mx) / sum) : 0.0f;
            if (i >= n) {
                assert_true(y1[r * W + i] == 0.0f);
            }
        }
    }
    cs_assert_close(y1, want, R * W, 1e-7, 1e-5);
    for (int t = 2; t <= 7; t += 5) {
        memcpy(y, x, sizeof(x));
        cs_softmax_causal(t, y, R, W, N0);
        assert_memory_equal(y, y1, sizeof(y));
    }
}

typedef struct nest_ctx {
    cover inner[4];
    int bad;
} nest_ctx;

/* Each chunk runs a cs_par_for of its own while the pool is busy with the outer one. */
static void nest_chunk(void *ctx, size_t b, size_t e)
{
    nest_ctx *n = ctx;
    for (size_t i = b; i < e; i++) {
        cs_par_for(2, 1000, 7, mark, &n->inner[i]);
    }
}

static void *par_thread(void *arg)
{
    cover *c = arg;
    for (int k = 0; k < 50; k++) {
        cs_par_for(2, 1000, 7, mark, c);
    }
    return NULL;
}

/* The pool: nested calls, calls from two threads at once, and a forked child, each range still
 * covered exactly once. */
static void test_par_for_pool(void **state)
{
    (void)state;
    nest_ctx n;
    memset(&n, 0, sizeof(n));
    cs_par_for(2, 4, 1, nest_chunk, &n);
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 1000; i++) {
            assert_int_equal(n.inner[k].hits[i], 1);
        }
    }
    static cover c1, c2;
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, par_thread, &c1), 0);
    assert_int_equal(pthread_create(&t2, NULL, par_thread, &c2), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(c1.hits[i], 50);
        assert_int_equal(c2.hits[i], 50);
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) { /* the child has no workers of the parent's: it must start its own */
        cover c;
        memset(&c, 0, sizeof(c));
        cs_par_for(2, 1000, 7, mark, &c);
        for (int i = 0; i < 1000; i++) {
            if (c.hits[i] != 1) {
                _exit(1);
            }
        }
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_rmsnorm_silu),        cmocka_unit_test(test_rope),
            cmocka_unit_test(test_par_for_covers_once), cmocka_unit_test(test_softmax_causal),
            cmocka_unit_test(test_par_for_pool),        cmocka_unit_test(test_exp),
    };
    return cmocka_run_group_tests_name("engine_kernels", tests, NULL, NULL);
}
