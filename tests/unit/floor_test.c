/* floor_test.c - the arithmetic floor of a job's stages (worker/pipeline/cs_floor.h): the counts
 * for a small shape written out by hand, term by term, for GPTQ (true-sequential and not), AWQ,
 * Wanda, RTN and evaluation; the JSON and the table; the peak measurement. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_floor.h"
#include "cs_test.h"

/* hidden 8, 2 heads of 4 (1 key/value head), intermediate 16, 2 layers, vocabulary 32 */
static cs_hfconfig shape(void)
{
    cs_hfconfig c;
    memset(&c, 0, sizeof(c));
    c.hidden = 8;
    c.n_heads = 2;
    c.n_kv_heads = 1;
    c.head_dim = 4;
    c.intermediate = 16;
    c.n_layers = 2;
    c.vocab = 32;
    return c;
}

static void params(cs_pipe_params *p, cs_pipe_algo algo)
{
    memset(p, 0, sizeof(*p));
    p->algo = algo;
    p->awq.n_grid = 20;
    p->awq.clip_grid = 20;
    p->awq.clip_tokens = 512;
}

#define CLOSE(a, b) assert_true(fabs((a) - (b)) <= 1e-9 * fmax(1.0, fabs(b)))

/* 3 samples of 5 tokens: N = 15 tokens, 3 * 15 = 45 causal pairs per head. Per block, in
 * multiply-adds: q,k,v 15*8*(8+4+4) = 1920, attention 2 * 45 * 4 * 2 heads = 720, o 15*8*8 = 960,
 * gate+up 2*15*8*16 = 3840, down 15*16*8 = 1920; each FLOP count is twice that. */
static const double qkv = 2 * 1920.0, att = 2 * 720.0, o = 2 * 960.0, gu = 2 * 3840.0,
                    down = 2 * 1920.0, full = 2 * (1920.0 + 720 + 960 + 3840 + 1920);

static void test_gptq(void **state)
{
    (void)state;
    cs_hfconfig c = shape();
    cs_pipe_params p;
    cs_floor f;

    params(&p, CS_PIPE_GPTQ);
    p.true_sequential = true;
    cs_floor_init(&f);
    cs_floor_quant(&f, &c, &p, 3, 5);
    /* the passes stop at o's input, gate's, down's; then one whole pass, per layer */
    double stats_passes = (qkv + att) + (qkv + att + o) + (qkv + att + o + gu);
    CLOSE(f.st[CS_STAGE_FORWARD].f32, 2 * (stats_passes + full));
    /* X^T X, one triangle: N d (d + 1) for d = 8, 8, 8, 16 */
    CLOSE(f.st[CS_STAGE_STATS].f64, 2 * 15.0 * (3 * 8 * 9 + 16 * 17));
    /* factors 2/3 d^3 per group; sweeps rows d^2 per linear */
    CLOSE(f.st[CS_STAGE_SOLVE].f64, 2 * 2.0 / 3.0 * (3 * 512.0 + 4096.0));
    CLOSE(f.st[CS_STAGE_SOLVE].f32,
          2 * ((8 + 4 + 4) * 64.0 + 8 * 64.0 + 2 * 16 * 64.0 + 8 * 256.0));
    CLOSE(f.st[CS_STAGE_EMBED].bytes, 8.0 * 15 * 8);
    assert_true(f.st[CS_STAGE_SEARCH].f32 == 0 && f.st[CS_STAGE_RTN].bytes == 0);
    assert_true(f.st[CS_STAGE_FORWARD].seconds < 0); /* not measured yet */

    /* not true-sequential: one pass to down's input, then the whole pass */
    p.true_sequential = false;
    cs_floor_init(&f);
    cs_floor_quant(&f, &c, &p, 3, 5);
    CLOSE(f.st[CS_STAGE_FORWARD].f32, 2 * ((qkv + att + o + gu) + full));

    /* Wanda: per-column sums of squares instead of Hessians, no factor */
    params(&p, CS_PIPE_WANDA);
    cs_floor_init(&f);
    cs_floor_quant(&f, &c, &p, 3, 5);
    CLOSE(f.st[CS_STAGE_STATS].f64, 2 * 2.0 * 15 * (8 + 8 + 8 + 16));
    assert_true(f.st[CS_STAGE_SOLVE].f64 == 0 && f.st[CS_STAGE_SOLVE].bytes > 0);
}

static void test_awq_rtn(void **state)
{
    (void)state;
    cs_hfconfig c = shape();
    cs_pipe_params p;
    cs_floor f;
    params(&p, CS_PIPE_AWQ);
    p.awq_clip = true;
    cs_floor_init(&f);
    cs_floor_quant(&f, &c, &p, 3, 5);
    CLOSE(f.st[CS_STAGE_FORWARD].f32, 2 * full); /* the FP pass */
    /* 20 grid points + the reference, each running attention (to o's output), the MLP and
     * down_proj; no v -> o group (1 key/value head, 2 heads) */
    CLOSE(f.st[CS_STAGE_SEARCH].f32, 2 * 21 * ((qkv + att + o) + (gu + down) + down));
    /* clip: 11 outputs (10 candidates and the reference) of v, o, gate, up, down on all 15
     * tokens (fewer than 512) */
    CLOSE(f.st[CS_STAGE_CLIP].f32, 2 * 2 * 11 * 15.0 * (4 * 8 + 8 * 8 + 3 * 8 * 16));
    assert_true(f.st[CS_STAGE_RTN].bytes > 0 && f.st[CS_STAGE_STATS].f64 == 0);

    /* multi-head attention: the v -> o group is searched as well */
    c.n_kv_heads = 2;
    cs_floor g;
    cs_floor_init(&g);
    cs_floor_quant(&g, &c, &p, 3, 5);
    const double qkv2 = 2 * 15.0 * 8 * (8 + 8 + 8); /* k and v widen from 4 to 8 */
    CLOSE(g.st[CS_STAGE_SEARCH].f32, 2 * 21 * ((qkv2 + att + o) + (gu + down) + down + o));

    /* RTN needs no calibration: only the weights are read and written */
    params(&p, CS_PIPE_RTN);
    cs_floor_init(&f);
    cs_floor_quant(&f, &c, &p, 3, 5);
    for (int s = 0; s < CS_STAGE_COUNT; s++) {
        assert_true(f.st[s].f32 == 0 && f.st[s].f64 == 0);
        assert_true(s == CS_STAGE_RTN ? f.st[s].bytes > 0 : f.st[s].bytes == 0);
    }
}

static void test_eval_json(void **state)
{
    (void)state;
    cs_hfconfig c = shape();
    cs_floor f;
    cs_peak peak = {.sgemm = 1e9, .dgemm = 5e8, .copy = 1e9, .threads = 2};
    cs_fwd_count n = {.tokens = 10, .head_rows = 4, .attn_pairs = 30};
    cs_floor_init(&f);
    cs_floor_eval(&f, &c, &n);
    /* 10 tokens through 2 blocks (1280 + 640 + 2560 + 1280 multiply-adds per 10 tokens), 30
     * pairs of 4 dims x 2 heads, twice; 4 rows through the 8 x 32 head */
    double per_block = 2 * (10.0 * 8 * 16 + 2 * 30.0 * 4 * 2 + 10.0 * 8 * 8 + 2 * 10.0 * 8 * 16 +
                            10.0 * 16 * 8);
    CLOSE(f.st[CS_STAGE_EVAL].f32, 2 * per_block + 2 * 4.0 * 8 * 32);
    f.st[CS_STAGE_EVAL].seconds = 2 * f.st[CS_STAGE_EVAL].f32 / peak.sgemm;
    f.st[CS_STAGE_FORWARD].seconds = 0.5; /* measured, no work: no ratio */
    CLOSE(cs_floor_seconds(&f.st[CS_STAGE_EVAL], &peak), f.st[CS_STAGE_EVAL].f32 / 1e9);
    /* bytes win when the copy takes longer than the arithmetic */
    cs_stage_work w = {.f32 = 1e9, .f64 = 1e9, .bytes = 4e9, .seconds = 1};
    CLOSE(cs_floor_seconds(&w, &peak), 4.0);
    w.bytes = 1e9;
    CLOSE(cs_floor_seconds(&w, &peak), 3.0);

    cJSON *j = cs_floor_json(&f, &peak);
    assert_non_null(j);
    cJSON *pk = cJSON_GetObjectItem(j, "peak"), *st = cJSON_GetObjectItem(j, "stages");
    CLOSE(cJSON_GetObjectItem(pk, "sgemm_gflops")->valuedouble, 1.0);
    assert_int_equal(cJSON_GetObjectItem(pk, "threads")->valueint, 2);
    assert_int_equal(cJSON_GetArraySize(st), 2); /* forward (measured) and evaluate */
    cJSON *fw = cJSON_GetArrayItem(st, 0), *ev = cJSON_GetArrayItem(st, 1);
    assert_string_equal(cJSON_GetObjectItem(fw, "stage")->valuestring, "forward");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(fw, "ratio")));
    assert_string_equal(cJSON_GetObjectItem(ev, "stage")->valuestring, "evaluate");
    CLOSE(cJSON_GetObjectItem(ev, "ratio")->valuedouble, 2.0);
    cJSON_Delete(j);

    char buf[4096] = {0};
    FILE *out = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(out);
    cs_floor_print(out, &f, &peak);
    fclose(out);
    assert_non_null(strstr(buf, "sgemm 1.0 GFLOP/s"));
    assert_non_null(strstr(buf, "evaluate"));
    assert_non_null(strstr(buf, "2.00x"));
}

static void test_peak(void **state)
{
    (void)state;
    cs_peak p;
    cs_err err = {0};
    assert_int_equal(cs_peak_measure(&p, &err), CS_OK);
    assert_true(isfinite(p.sgemm) && p.sgemm > 1e8);
    assert_true(isfinite(p.dgemm) && p.dgemm > 1e7);
    assert_true(isfinite(p.copy) && p.copy > 1e8);
    assert_true(p.threads >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_gptq),
            cmocka_unit_test(test_awq_rtn),
            cmocka_unit_test(test_eval_json),
            cmocka_unit_test(test_peak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
