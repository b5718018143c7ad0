/* frag_test.c - the pure helpers of the compact job store: splitting objects into members
 * (cs_frag_split: joining them gives the text back byte for byte), id lists, the bounded fragment
 * map and the key set. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_frag.h"
#include "cs_keyset.h"
#include "cs_test.h"

/* '{' + join(spans, ",") + '}' of text. */
static void join(const char *text, const cs_frag_span *sp, size_t n, cs_buf *out)
{
    out->len = 0;
    assert_int_equal(cs_buf_putc(out, '{'), CS_OK);
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            assert_int_equal(cs_buf_putc(out, ','), CS_OK);
        }
        assert_int_equal(cs_buf_append(out, text + sp[i].off, sp[i].len), CS_OK);
    }
    assert_int_equal(cs_buf_putc(out, '}'), CS_OK);
}

static void test_split_round_trip(void **state)
{
    static const struct {
        const char *text;
        size_t members;
    } ok[] = {
            {"{}", 0},
            {"{\"a\":1}", 1},
            {"{\"a\":1,\"b\":[1,2,{\"c\":3}],\"d\":{\"e\":\"x,y}\"}}", 3},
            {"{\"s\":\"a\\\"b,c\",\"t\":\"\\\\\",\"u\":null}", 3},
            {"{ \"a\" : 1 , \"b\":{ } }", 2},
            {"{\"x\":[1,{\"model\":2},\"]\"], \"model\" : {\"folder\":\"d}\\\"\"}}", 2},
            {"{\"k\":\"\\u00e9\",\"e\":\"}\"}", 2},
    };
    static const char *const bad[] = {
            "",
            "{",
            "}",
            "[1,2]",
            "{\"a\":1",
            " {\"a\":1}",
            "{\"a\":1} ",
            "{ }",
            "{,}",
            "{\"a\":1,}",
            "{,\"a\":1}",
            "{\"a\":1,,\"b\":2}",
            "{\"a\":[1}",
            "{\"a\":1]}",
            "{\"a\":\"x}",
            "{\"a\":\"\\\"}",
            "{\"a\":{\"b\":1}}}",
    };
    cs_frag_span sp[CS_FRAG_MAX_MEMBERS];
    cs_buf b = {0};
    size_t n = 0;
    (void)state;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t len = strlen(ok[i].text);
        if (!cs_frag_split(ok[i].text, len, sp, CS_FRAG_MAX_MEMBERS, &n)) {
            fail_msg("split refused %s", ok[i].text);
        }
        assert_int_equal(n, ok[i].members);
        join(ok[i].text, sp, n, &b);
        assert_string_equal(b.data, ok[i].text);
        /* Resuming after the first member finds the rest. */
        if (n > 1) {
            size_t m = 0;
            assert_true(cs_frag_split_from(ok[i].text, len, sp[0].off + sp[0].len + 1, sp + 1,
                                           CS_FRAG_MAX_MEMBERS - 1, &m));
            assert_int_equal(m, n - 1);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cs_frag_split(bad[i], strlen(bad[i]), sp, CS_FRAG_MAX_MEMBERS, &n)) {
            fail_msg("split accepted '%s'", bad[i]);
        }
    }
    /* More members than the caller has room for. */
    assert_false(cs_frag_split("{\"a\":1,\"b\":2,\"c\":3}", 19, sp, 2, &n));
    assert_true(cs_frag_split("{\"a\":1,\"b\":2,\"c\":3}", 19, sp, 3, &n));
    cs_buf_fini(&b);
}

static void test_common_prefix_and_ids(void **state)
{
    int64_t ids[4], big[1] = {INT64_MAX};
    cs_buf b = {0};
    size_t n = 0;
    (void)state;

    assert_int_equal(cs_frag_common_prefix("abcdefghijkl", 12, "abcdefghijXl", 12), 10);
    assert_int_equal(cs_frag_common_prefix("abc", 3, "abcdef", 6), 3);
    assert_int_equal(cs_frag_common_prefix("", 0, "a", 1), 0);
    assert_int_equal(cs_frag_common_prefix("same-16-bytes!!!", 16, "same-16-bytes!!!", 16), 16);

    assert_true(cs_frag_parse_ids("[1,22,333]", ids, 4, &n));
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], 22);
    assert_true(cs_frag_parse_ids("[]", ids, 4, &n));
    assert_int_equal(n, 0);
    assert_int_equal(cs_frag_format_ids(&b, ids, 0), CS_OK);
    assert_string_equal(b.data, "[]");
    ids[0] = 7;
    ids[1] = 1234567890123LL;
    b.len = 0;
    assert_int_equal(cs_frag_format_ids(&b, ids, 2), CS_OK);
    assert_string_equal(b.data, "[7,1234567890123]");
    b.len = 0;
    assert_int_equal(cs_frag_format_ids(&b, big, 1), CS_OK);
    assert_string_equal(b.data, "[9223372036854775807]");
    assert_true(cs_frag_parse_ids(b.data, ids, 4, &n));
    assert_true(ids[0] == INT64_MAX);
    /* Not an id list: spaces, zero, signs, leading zeros, junk, too many, overflow. */
    static const char *const bad[] = {
            "",     "[",    "[1",          "[1,]", "[ 1]", "[0]",   "[-1]",
            "[01]", "[1]x", "[1,2,3,4,5]", "1,2",  "[a]",  "[1;2]", "[92233720368547758070]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cs_frag_parse_ids(bad[i], ids, 4, &n)) {
            fail_msg("parsed '%s'", bad[i]);
        }
    }
    assert_false(cs_frag_parse_ids(NULL, ids, 4, &n));
    cs_buf_fini(&b);
}

static void test_map(void **state)
{
    cs_frag_map m = {0};
    char text[64];
    size_t len = 0;
    const char *t;
    cs_err err = {0};
    (void)state;

    assert_int_equal(cs_frag_map_find_text(&m, "x", 1, cs_frag_hash("x", 1)), 0);
    assert_null(cs_frag_map_find_id(&m, 1, &len));
    assert_int_equal(cs_frag_map_add(&m, 0, "x", 1, cs_frag_hash("x", 1), &err), CS_EINVAL);
    /* Enough entries to rehash several times; ids far from the insertion order. */
    for (int i = 0; i < 5000; i++) {
        int w = snprintf(text, sizeof(text), "\"seed\":%d", i);
        assert_int_equal(cs_frag_map_add(&m, 1000003LL * (i + 1), text, (size_t)w,
                                         cs_frag_hash(text, (size_t)w), &err),
                         CS_OK);
    }
    for (int i = 0; i < 5000; i += 7) {
        int w = snprintf(text, sizeof(text), "\"seed\":%d", i);
        assert_int_equal(cs_frag_map_find_text(&m, text, (size_t)w, cs_frag_hash(text, (size_t)w)),
                         1000003LL * (i + 1));
        t = cs_frag_map_find_id(&m, 1000003LL * (i + 1), &len);
        assert_non_null(t);
        assert_int_equal(len, (size_t)w);
        assert_memory_equal(t, text, len);
    }
    /* A text that differs in its last byte only. */
    assert_int_equal(
            cs_frag_map_find_text(&m, "\"seed\":49999", 12, cs_frag_hash("\"seed\":49999", 12)), 0);
    /* The map forgets everything at its limit instead of growing. */
    for (int i = 5000; i < CS_FRAG_MAP_MAX + 10; i++) {
        int w = snprintf(text, sizeof(text), "\"seed\":%d", i);
        assert_int_equal(
                cs_frag_map_add(&m, i + 1, text, (size_t)w, cs_frag_hash(text, (size_t)w), &err),
                CS_OK);
    }
    assert_true(m.n < CS_FRAG_MAP_MAX);
    assert_null(cs_frag_map_find_id(&m, 1000003LL, &len));
    t = cs_frag_map_find_id(&m, CS_FRAG_MAP_MAX + 10, &len);
    assert_non_null(t);
    cs_frag_map_clear(&m);
    assert_null(cs_frag_map_find_id(&m, CS_FRAG_MAP_MAX + 10, &len));
    cs_frag_map_fini(&m);
    cs_frag_map_fini(NULL);
}

static void test_keyset(void **state)
{
    cs_keyset k = {0};
    cs_err err = {0};
    char key[65];
    size_t i, hits = 0;
    (void)state;

    assert_int_equal(cs_keyset_first(&k, 42), CS_KEYSET_END);
    snprintf(key, sizeof(key), "%064x", 0);
    /* Keys that differ in their last digits only spread over the table. */
    for (int j = 1; j <= 20000; j++) {
        snprintf(key, sizeof(key), "%064x", j);
        assert_int_equal(cs_keyset_add(&k, cs_keyset_fingerprint(key), j, &err), CS_OK);
    }
    snprintf(key, sizeof(key), "%064x", 777);
    i = cs_keyset_first(&k, cs_keyset_fingerprint(key));
    assert_int_not_equal(i, CS_KEYSET_END);
    assert_int_equal(cs_keyset_id(&k, i), 777);
    snprintf(key, sizeof(key), "%064x", 20001);
    assert_int_equal(cs_keyset_first(&k, cs_keyset_fingerprint(key)), CS_KEYSET_END);
    /* A fingerprint held twice (two keys that collide): both are found. */
    assert_int_equal(cs_keyset_add(&k, 99, 1, &err), CS_OK);
    assert_int_equal(cs_keyset_add(&k, 99, 2, &err), CS_OK);
    for (i = cs_keyset_first(&k, 99); i != CS_KEYSET_END; i = cs_keyset_next(&k, 99, i)) {
        hits += (size_t)cs_keyset_id(&k, i);
    }
    assert_int_equal(hits, 3);
    assert_int_equal(cs_keyset_add(&k, 5, 0, &err), CS_EINVAL);
    assert_int_equal(k.n, 20002);
    cs_keyset_fini(&k);
    cs_keyset_fini(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_split_round_trip),
            cmocka_unit_test(test_common_prefix_and_ids),
            cmocka_unit_test(test_map),
            cmocka_unit_test(test_keyset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
