/* prefetch_test.c - cs_prefetch: the same cells in the same order as the stream it runs ahead of
 * (strings, lengths and flags), its end and errors at their place and then again on every call,
 * and a consumer that stops early (the producer stops and is joined, the ring is bounded). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_prefetch.h"
#include "cs_test.h"
#include "store_synth.h"

static void test_prefetch_same_stream(void **state)
{
    cs_synth direct, ahead;
    cs_prefetch *pf = NULL;
    cs_cell a, b;
    cs_err err = {0};
    size_t n = 0;
    cs_rc ra, rb;
    (void)state;

    /* Several chunks and a partial one; the repeats of dup_every pass through as they are. */
    cs_synth_init(&direct, 5, 3 * CS_PREFETCH_CELLS * CS_PREFETCH_CHUNKS + 17);
    direct.dup_every = 50;
    ahead = direct;
    assert_int_equal(cs_prefetch_start(cs_synth_next, &ahead, &pf, &err), CS_OK);
    for (;;) {
        memset(&a, 0, sizeof(a));
        ra = cs_synth_next(&direct, &a, &err);
        rb = cs_prefetch_next(pf, &b, &err);
        assert_int_equal(rb, ra);
        if (ra != CS_OK) {
            break;
        }
        assert_string_equal(b.key, a.key);
        assert_string_equal(b.config, a.config);
        assert_string_equal(b.axes, a.axes);
        assert_int_equal(b.config_len, strlen(a.config));
        assert_int_equal(b.axes_len, strlen(a.axes));
        assert_int_equal(b.baseline, a.baseline);
        assert_false(b.unique);
        n++;
    }
    assert_int_equal(ra, CS_ENOENT);
    assert_int_equal(n, direct.n);
    /* The end again, as often as asked. */
    assert_int_equal(cs_prefetch_next(pf, &b, &err), CS_ENOENT);
    cs_prefetch_destroy(pf);
    cs_prefetch_destroy(NULL);
}

static void test_prefetch_error_and_early_stop(void **state)
{
    cs_synth g;
    cs_prefetch *pf = NULL;
    cs_cell c;
    cs_err err = {0};
    size_t n = 0;
    cs_rc rc;
    (void)state;

    cs_synth_init(&g, 0, 5000);
    g.fail_at = 700;
    assert_int_equal(cs_prefetch_start(cs_synth_next, &g, &pf, &err), CS_OK);
    while ((rc = cs_prefetch_next(pf, &c, &err)) == CS_OK) {
        n++;
    }
    assert_int_equal(rc, CS_EIO);
    assert_int_equal(n, 699);
    assert_non_null(strstr(err.msg, "cell 700"));
    cs_err_clear(&err);
    assert_int_equal(cs_prefetch_next(pf, &c, &err), CS_EIO);
    assert_non_null(strstr(err.msg, "cell 700"));
    cs_prefetch_destroy(pf);

    /* The consumer stops after a few cells: destroy stops and joins the producer, which has not
     * run far ahead (the ring is bounded). */
    cs_synth_init(&g, 0, 1000000);
    assert_int_equal(cs_prefetch_start(cs_synth_next, &g, &pf, &err), CS_OK);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(cs_prefetch_next(pf, &c, &err), CS_OK);
    }
    cs_prefetch_destroy(pf);
    assert_true(g.i <= (CS_PREFETCH_CHUNKS + 1) * CS_PREFETCH_CELLS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_prefetch_same_stream),
            cmocka_unit_test(test_prefetch_error_and_early_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
