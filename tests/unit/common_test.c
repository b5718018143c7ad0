/* common_test.c - the core of common/: codes, errors, allocation, buffers, options, rng. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"
#include "cs_err.h"
#include "cs_opt.h"
#include "cs_rng.h"
#include "cs_test.h"

static void test_rc_strings(void **state)
{
    (void)state;
    assert_string_equal(cs_rc_str(CS_OK), "ok");
    assert_string_equal(cs_rc_name(CS_EINVAL), "CS_EINVAL");
    assert_string_equal(cs_rc_str((cs_rc)-999), "unknown error");
    assert_true(CS_EINTERNAL < 0);
}

static void test_err_set_and_prefix(void **state)
{
    cs_err err = {0};
    (void)state;
    assert_int_equal(cs_err_set(&err, CS_ERANGE, 7, "k=%d > n", 5), CS_ERANGE);
    assert_int_equal(err.rc, CS_ERANGE);
    assert_int_equal(err.cause, 7);
    assert_string_equal(err.msg, "k=5 > n");
    cs_err_prefix(&err, "grid.%s", "n_samples");
    assert_string_equal(err.msg, "grid.n_samples: k=5 > n");
    assert_int_equal(cs_err_set(NULL, CS_EIO, 0, "ignored"), CS_EIO);
    cs_err_clear(&err);
    assert_int_equal(err.rc, CS_OK);
    assert_string_equal(err.msg, "");
}

static void test_err_errno_mapping(void **state)
{
    cs_err err = {0};
    (void)state;
    assert_int_equal(cs_err_errno(&err, ENOSPC, "write %s", "db"), CS_ENOSPC);
    assert_non_null(strstr(err.msg, "write db: "));
    assert_int_equal(err.cause, ENOSPC);
    assert_int_equal(cs_err_errno(&err, ENOENT, "open"), CS_ENOENT);
    assert_int_equal(cs_err_errno(&err, EPIPE, "x"), CS_EIO);
}

static void test_alloc_overflow(void **state)
{
    size_t out;
    void *p;
    (void)state;
    assert_null(cs_alloc_array(SIZE_MAX / 2 + 2, 2));
    assert_null(cs_calloc_array(SIZE_MAX, 16));
    assert_false(cs_mul_ok(SIZE_MAX, 2, &out));
    assert_true(cs_mul_ok(3, 5, &out));
    assert_int_equal(out, 15);
    p = cs_alloc_array(0, 8); /* defined: a valid pointer */
    assert_non_null(p);
    free(p);
    p = cs_alloc_array(4, 8);
    assert_non_null(p);
    assert_null(cs_realloc_array(p, SIZE_MAX, 8)); /* p still owned */
    free(p);
}

static void test_buf(void **state)
{
    cs_buf b = {0};
    char *s;
    (void)state;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(cs_buf_printf(&b, "%d,", i), CS_OK);
    }
    assert_int_equal(b.len, strlen(b.data));
    assert_memory_equal(b.data, "0,1,2,", 6);
    assert_int_equal(cs_buf_putc(&b, 'x'), CS_OK);
    assert_int_equal(b.data[b.len - 1], 'x');
    s = cs_buf_take(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
    s = cs_buf_take(&b); /* empty buffer gives "" */
    assert_string_equal(s, "");
    free(s);
    cs_buf_fini(NULL);
}

enum { O_THREADS, O_VERBOSE, O_NAME };
static const cs_opt opts[] = {
        {"threads", 't', CS_OPT_VALUE, O_THREADS, "N", "threads"},
        {"verbose", 'v', CS_OPT_NONE, O_VERBOSE, NULL, "more output"},
        {"name", 0, CS_OPT_VALUE, O_NAME, "S", "a name"},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void test_opt_forms(void **state)
{
    char *argv[] = {"prog", "-t4", "--name=x", "pos1", "-v",        "--threads",
                    "8",    "-vt", "2",        "--",   "--verbose", NULL};
    int argc = 11, id;
    const char *arg;
    cs_opt_parser p;
    cs_err err = {0};
    (void)state;
    cs_opt_init(&p, argc, argv, 1);
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_OK);
    assert_int_equal(id, O_THREADS);
    assert_string_equal(arg, "4");
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_OK);
    assert_int_equal(id, O_NAME);
    assert_string_equal(arg, "x");
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_OK);
    assert_int_equal(id, CS_OPT_POSITIONAL);
    assert_string_equal(arg, "pos1");
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_OK);
    assert_int_equal(id, O_VERBOSE);
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_OK);
    assert_int_equal(id, O_THREADS);
    assert_string_equal(arg, "8");
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_OK);
    assert_int_equal(id, O_VERBOSE);
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_OK);
    assert_int_equal(id, O_THREADS);
    assert_string_equal(arg, "2");
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_OK);
    assert_int_equal(id, CS_OPT_POSITIONAL);
    assert_string_equal(arg, "--verbose");
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_ENOENT);
}

static void test_opt_errors(void **state)
{
    char *a1[] = {"prog", "--nope"};
    char *a2[] = {"prog", "--threads"};
    char *a3[] = {"prog", "--verbose=1"};
    char *a4[] = {"prog", "-q"};
    int id;
    const char *arg;
    cs_opt_parser p;
    cs_err err = {0};
    (void)state;
    cs_opt_init(&p, 2, a1, 1);
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_EINVAL);
    assert_string_equal(err.msg, "unknown option --nope");
    cs_opt_init(&p, 2, a2, 1);
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_EINVAL);
    assert_string_equal(err.msg, "option --threads needs a value");
    cs_opt_init(&p, 2, a3, 1);
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_EINVAL);
    assert_string_equal(err.msg, "option --verbose takes no value");
    cs_opt_init(&p, 2, a4, 1);
    assert_int_equal(cs_opt_next(&p, opts, NOPTS, &id, &arg, &err), CS_EINVAL);
    assert_string_equal(err.msg, "unknown option -q");
}

static void test_parse_numbers(void **state)
{
    int64_t v;
    double d;
    cs_err err = {0};
    (void)state;
    assert_int_equal(cs_parse_i64("42", 0, 100, &v, "n", &err), CS_OK);
    assert_int_equal(v, 42);
    assert_int_equal(cs_parse_i64("42x", 0, 100, &v, "n", &err), CS_EINVAL);
    assert_int_equal(cs_parse_i64("", 0, 100, &v, "n", &err), CS_EINVAL);
    assert_int_equal(cs_parse_i64("101", 0, 100, &v, "--threads", &err), CS_ERANGE);
    assert_string_equal(err.msg, "--threads: expected 0..100, got 101");
    assert_int_equal(cs_parse_i64("99999999999999999999", INT64_MIN, INT64_MAX, &v, "n", &err),
                     CS_ERANGE);
    assert_int_equal(cs_parse_double("0.25", &d, "t", &err), CS_OK);
    assert_true(d == 0.25);
    assert_int_equal(cs_parse_double("nan", &d, "t", &err), CS_EINVAL);
    assert_int_equal(cs_parse_double("1e999", &d, "t", &err), CS_EINVAL);
}

static void test_opt_append(void **state)
{
    const char *list[2];
    size_t n = 0;
    cs_err err = {0};
    (void)state;
    assert_int_equal(cs_opt_append(list, &n, 2, "a.jsonl", "--task files", &err), CS_OK);
    assert_int_equal(cs_opt_append(list, &n, 2, "b.jsonl", "--task files", &err), CS_OK);
    assert_int_equal(cs_opt_append(list, &n, 2, "c.jsonl", "--task files", &err), CS_ERANGE);
    assert_string_equal(err.msg, "at most 2 --task files");
    assert_int_equal(n, 2);
    assert_string_equal(list[1], "b.jsonl");
}

static void test_rng_determinism(void **state)
{
    cs_rng a, b, c;
    int same = 0;
    double sum = 0, sum2 = 0;
    (void)state;
    cs_rng_seed(&a, 42);
    cs_rng_seed(&b, 42);
    cs_rng_seed(&c, 43);
    for (int i = 0; i < 100; i++) {
        uint64_t x = cs_rng_u64(&a);
        assert_true(x == cs_rng_u64(&b));
        same += x == cs_rng_u64(&c);
    }
    assert_int_equal(same, 0);
    for (int i = 0; i < 20000; i++) {
        double z = cs_rng_normal(&a);
        sum += z;
        sum2 += z * z;
        assert_true(cs_rng_below(&a, 7) < 7);
    }
    assert_true(fabs(sum / 20000) < 0.05);
    assert_true(fabs(sum2 / 20000 - 1.0) < 0.05);
    assert_int_equal(cs_rng_below(&a, 0), 0);
}

static void test_rng_shuffle_is_permutation(void **state)
{
    size_t idx[50];
    int seen[50] = {0};
    cs_rng r;
    (void)state;
    for (size_t i = 0; i < 50; i++) {
        idx[i] = i;
    }
    cs_rng_seed(&r, 1);
    cs_rng_shuffle(&r, idx, 50);
    for (size_t i = 0; i < 50; i++) {
        seen[idx[i]]++;
    }
    for (size_t i = 0; i < 50; i++) {
        assert_int_equal(seen[i], 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_rc_strings),
            cmocka_unit_test(test_err_set_and_prefix),
            cmocka_unit_test(test_err_errno_mapping),
            cmocka_unit_test(test_alloc_overflow),
            cmocka_unit_test(test_buf),
            cmocka_unit_test(test_opt_forms),
            cmocka_unit_test(test_opt_errors),
            cmocka_unit_test(test_parse_numbers),
            cmocka_unit_test(test_opt_append),
            cmocka_unit_test(test_rng_determinism),
            cmocka_unit_test(test_rng_shuffle_is_permutation),
    };
    return CS_RUN_TESTS(tests);
}
