/* canon_test.c - canonical JSON and its hash: invariance under key order and whitespace,
 * sensitivity to every change of meaning, the number rule, unicode, refusals, SHA-256 vectors, and
 * an idempotence/permutation property over seeded random trees. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_canon.h"
#include "cs_json.h"
#include "cs_test.h"

/* Canonical text of JSON text (parsed with raw cJSON, so duplicates reach cs_canon). */
static char *canon_of(const char *text)
{
    cJSON *t = cJSON_Parse(text);
    char *out = NULL;
    cs_err err = {0};
    if (!t) {
        print_error("cJSON could not parse: %s\n", text);
    }
    assert_non_null(t);
    if (cs_canon_string(t, &out, NULL, &err) != CS_OK) {
        print_error("canon failed for %s: %s\n", text, err.msg);
    }
    assert_non_null(out);
    cJSON_Delete(t);
    return out;
}

static void assert_canon(const char *text, const char *want)
{
    char *got = canon_of(text);
    if (strcmp(got, want) != 0) {
        print_error("input %s\n  got  %s\n  want %s\n", text, got, want);
    }
    assert_string_equal(got, want);
    free(got);
}

static void hash_of(const char *text, const char *salt, char out[CS_SHA256_HEX_LEN + 1])
{
    cJSON *t = cJSON_Parse(text);
    cs_err err = {0};
    assert_non_null(t);
    assert_int_equal(cs_canon_hash(t, salt, out, &err), CS_OK);
    assert_int_equal(strlen(out), 64);
    cJSON_Delete(t);
}

static const char *const base_doc =
        "{\"model\": {\"name\": \"llama-tiny\", \"dtype\": \"f32\"},"
        " \"quant\": {\"algorithm\": \"gptq\", \"bits\": 4, \"group\": 128, \"sym\": true,"
        "            \"damp\": 0.01, \"layers\": [0, 1, 2]},"
        " \"calib\": {\"selector\": \"random\", \"n_samples\": 128, \"seed\": 0, \"flag\": false},"
        " \"tags\": [\"a\", \"b\"], \"note\": null}";

static void test_order_and_whitespace_invariant(void **state)
{
    char h1[65], h2[65], h3[65];
    char *c1, *c3;
    const char *reordered =
            "{\"tags\":[\"a\",\"b\"],\"note\":null,\"calib\":{\"seed\":0,\"flag\":false,"
            "\"n_samples\":128,\"selector\":\"random\"},\"quant\":{\"layers\":[0,1,2],\"sym\":true,"
            "\"group\":128,\"damp\":0.01,\"bits\":4,\"algorithm\":\"gptq\"},"
            "\"model\":{\"dtype\":\"f32\",\"name\":\"llama-tiny\"}}";
    /* Same meaning, other spellings of the numbers and lots of whitespace. */
    const char *respelled =
            "\n\t{ \"model\" : { \"dtype\" : \"f32\" , \"name\" : \"llama-tiny\" } ,\r\n"
            "  \"quant\" : { \"bits\" : 4.0, \"group\": 1.28e2, \"algorithm\": \"gptq\","
            " \"sym\": true, \"damp\": 1e-2, \"layers\": [0.0, 10e-1, 2E0] },"
            "  \"calib\": {\"n_samples\": 128, \"selector\": \"\\u0072andom\", \"seed\": -0,"
            " \"flag\": false}, \"note\": null, \"tags\": [\"a\", \"\\u0062\"] }  ";
    (void)state;
    hash_of(base_doc, "0.1.0", h1);
    hash_of(reordered, "0.1.0", h2);
    hash_of(respelled, "0.1.0", h3);
    assert_string_equal(h1, h2);
    assert_string_equal(h1, h3);
    c1 = canon_of(base_doc);
    c3 = canon_of(respelled);
    assert_string_equal(c1, c3);
    assert_string_equal(c1, "{\"calib\":{\"flag\":false,\"n_samples\":128,\"seed\":0,\"selector\":"
                            "\"random\"},\"model\":{\"dtype\":\"f32\",\"name\":\"llama-tiny\"},"
                            "\"note\":null,\"quant\":{\"algorithm\":\"gptq\",\"bits\":4,\"damp\":"
                            "0.01,\"group\":128,\"layers\":[0,1,2],\"sym\":true},\"tags\":[\"a\","
                            "\"b\"]}");
    free(c1);
    free(c3);
}

static void test_any_change_changes_hash(void **state)
{
    /* Each variant changes one thing of base_doc. */
    static const char *const variants[] = {
            /* a number deep inside */
            "{\"model\": {\"name\": \"llama-tiny\", \"dtype\": \"f32\"}, \"quant\": {\"algorithm\":"
            " \"gptq\", \"bits\": 4, \"group\": 128, \"sym\": true, \"damp\": 0.01, \"layers\":"
            " [0, 1, 3]}, \"calib\": {\"selector\": \"random\", \"n_samples\": 128, \"seed\": 0,"
            " \"flag\": false}, \"tags\": [\"a\", \"b\"], \"note\": null}",
            /* one character of a string */
            "{\"model\": {\"name\": \"llama-tinY\", \"dtype\": \"f32\"}, \"quant\": {\"algorithm\":"
            " \"gptq\", \"bits\": 4, \"group\": 128, \"sym\": true, \"damp\": 0.01, \"layers\":"
            " [0, 1, 2]}, \"calib\": {\"selector\": \"random\", \"n_samples\": 128, \"seed\": 0,"
            " \"flag\": false}, \"tags\": [\"a\", \"b\"], \"note\": null}",
            /* bool vs 0 */
            "{\"model\": {\"name\": \"llama-tiny\", \"dtype\": \"f32\"}, \"quant\": {\"algorithm\":"
            " \"gptq\", \"bits\": 4, \"group\": 128, \"sym\": true, \"damp\": 0.01, \"layers\":"
            " [0, 1, 2]}, \"calib\": {\"selector\": \"random\", \"n_samples\": 128, \"seed\": 0,"
            " \"flag\": 0}, \"tags\": [\"a\", \"b\"], \"note\": null}",
            /* array order */
            "{\"model\": {\"name\": \"llama-tiny\", \"dtype\": \"f32\"}, \"quant\": {\"algorithm\":"
            " \"gptq\", \"bits\": 4, \"group\": 128, \"sym\": true, \"damp\": 0.01, \"layers\":"
            " [0, 1, 2]}, \"calib\": {\"selector\": \"random\", \"n_samples\": 128, \"seed\": 0,"
            " \"flag\": false}, \"tags\": [\"b\", \"a\"], \"note\": null}",
            /* a tiny change of a fraction */
            "{\"model\": {\"name\": \"llama-tiny\", \"dtype\": \"f32\"}, \"quant\": {\"algorithm\":"
            " \"gptq\", \"bits\": 4, \"group\": 128, \"sym\": true, \"damp\": 0.010000000000000002,"
            " \"layers\": [0, 1, 2]}, \"calib\": {\"selector\": \"random\", \"n_samples\": 128,"
            " \"seed\": 0, \"flag\": false}, \"tags\": [\"a\", \"b\"], \"note\": null}",
            /* null vs missing */
            "{\"model\": {\"name\": \"llama-tiny\", \"dtype\": \"f32\"}, \"quant\": {\"algorithm\":"
            " \"gptq\", \"bits\": 4, \"group\": 128, \"sym\": true, \"damp\": 0.01, \"layers\":"
            " [0, 1, 2]}, \"calib\": {\"selector\": \"random\", \"n_samples\": 128, \"seed\": 0,"
            " \"flag\": false}, \"tags\": [\"a\", \"b\"]}",
            /* a key renamed */
            "{\"model\": {\"name\": \"llama-tiny\", \"dtype\": \"f32\"}, \"quant\": {\"algorithm\":"
            " \"gptq\", \"bits\": 4, \"groups\": 128, \"sym\": true, \"damp\": 0.01, \"layers\":"
            " [0, 1, 2]}, \"calib\": {\"selector\": \"random\", \"n_samples\": 128, \"seed\": 0,"
            " \"flag\": false}, \"tags\": [\"a\", \"b\"], \"note\": null}",
            /* a string "4" instead of the number 4 */
            "{\"model\": {\"name\": \"llama-tiny\", \"dtype\": \"f32\"}, \"quant\": {\"algorithm\":"
            " \"gptq\", \"bits\": \"4\", \"group\": 128, \"sym\": true, \"damp\": 0.01, \"layers\":"
            " [0, 1, 2]}, \"calib\": {\"selector\": \"random\", \"n_samples\": 128, \"seed\": 0,"
            " \"flag\": false}, \"tags\": [\"a\", \"b\"], \"note\": null}",
            /* an array wrapped in one more level */
            "{\"model\": {\"name\": \"llama-tiny\", \"dtype\": \"f32\"}, \"quant\": {\"algorithm\":"
            " \"gptq\", \"bits\": 4, \"group\": 128, \"sym\": true, \"damp\": 0.01, \"layers\":"
            " [[0, 1, 2]]}, \"calib\": {\"selector\": \"random\", \"n_samples\": 128, \"seed\": 0,"
            " \"flag\": false}, \"tags\": [\"a\", \"b\"], \"note\": null}",
    };
    const size_t n = sizeof(variants) / sizeof(variants[0]);
    char hashes[16][65];
    (void)state;
    hash_of(base_doc, "0.1.0", hashes[0]);
    for (size_t i = 0; i < n; i++) {
        hash_of(variants[i], "0.1.0", hashes[i + 1]);
    }
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i + 1; j <= n; j++) {
            if (strcmp(hashes[i], hashes[j]) == 0) {
                print_error("documents %zu and %zu hash the same\n", i, j);
            }
            assert_string_not_equal(hashes[i], hashes[j]);
        }
    }
    /* The salt (engine version) changes the hash too; NULL salt == empty salt. */
    {
        char a[65], b[65], c[65];
        hash_of(base_doc, "0.1.1", a);
        assert_string_not_equal(a, hashes[0]);
        hash_of(base_doc, NULL, b);
        hash_of(base_doc, "", c);
        assert_string_equal(b, c);
    }
}

static void test_number_rule(void **state)
{
    static const struct {
        const char *in, *want;
    } cases[] = {
            {"1", "1"},
            {"1.0", "1"},
            {"1e0", "1"},
            {"10e-1", "1"},
            {"1.5", "1.5"},
            {"-0", "0"},
            {"-0.0", "0"},
            {"0.1", "0.1"},
            {"-2.5", "-2.5"},
            {"1e20", "1e20"},
            {"-1e21", "-1e21"},
            {"12345678901234567890", "1.2345678901234567e19"},
            {"1.5e-7", "1.5e-7"},
            {"0.001", "0.001"},
            {"0.00001", "1e-5"},
            {"1e300", "1e300"},
            {"-1.25e-300", "-1.25e-300"},
            {"9007199254740992", "9007199254740992"},
            {"-9007199254740992", "-9007199254740992"},
            {"9007199254740994", "9007199254740994"},
            {"9007199254740993", "9007199254740992"}, /* not a double: read as its neighbour */
            {"123456.789", "123456.789"},
            {"0.30000000000000004", "0.30000000000000004"},
            {"5e-324", "5e-324"},
            {"1.7976931348623157e308", "1.7976931348623157e308"},
            {"2.5e+2", "250"},
            {"1E+2", "100"},
    };
    char buf[48];
    cs_err err = {0};
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char in[64];
        char *got;
        snprintf(in, sizeof(in), "[%s]", cases[i].in);
        got = canon_of(in);
        snprintf(in, sizeof(in), "[%s]", cases[i].want);
        if (strcmp(got, in) != 0) {
            print_error("number %s: got %s want %s\n", cases[i].in, got, in);
        }
        assert_string_equal(got, in);
        free(got);
    }
    /* Integral but above 2^53: the shortest round-trip form, not the integer digits. */
    assert_int_equal(cs_canon_number(1e17, buf, sizeof(buf), &err), CS_OK);
    assert_string_equal(buf, "1e17");
    assert_int_equal(cs_canon_number(1.5, buf, sizeof(buf), &err), CS_OK);
    assert_string_equal(buf, "1.5");
    assert_int_equal(cs_canon_number(NAN, buf, sizeof(buf), &err), CS_ERANGE);
    assert_int_equal(cs_canon_number(-INFINITY, buf, sizeof(buf), &err), CS_ERANGE);
    assert_int_equal(cs_canon_number(0.1, buf, 3, &err), CS_EINVAL);
    /* Every spelling of one agrees; 1.5 does not. */
    {
        char h1[65], h2[65], h3[65], h4[65];
        hash_of("{\"x\": 1}", "v", h1);
        hash_of("{\"x\": 1.0}", "v", h2);
        hash_of("{\"x\": 1e0}", "v", h3);
        hash_of("{\"x\": 1.5}", "v", h4);
        assert_string_equal(h1, h2);
        assert_string_equal(h1, h3);
        assert_string_not_equal(h1, h4);
    }
}

static void test_numbers_round_trip(void **state)
{
    /* Every canonical number reads back as the same double, for many magnitudes. */
    cs_rng r;
    char buf[48];
    (void)state;
    cs_rng_seed(&r, 12345);
    for (int i = 0; i < 20000; i++) {
        double v;
        uint64_t bits = cs_rng_u64(&r);
        memcpy(&v, &bits, sizeof(v));
        if (!isfinite(v)) {
            continue;
        }
        if (i % 3 == 0) {
            v = (double)(int64_t)(cs_rng_u64(&r) >> (cs_rng_below(&r, 60) + 4)) * (i % 2 ? 1 : -1);
        }
        assert_int_equal(cs_canon_number(v, buf, sizeof(buf), NULL), CS_OK);
        if (strtod(buf, NULL) != v && !(v == 0)) {
            print_error("%.17g -> %s\n", v, buf);
            fail();
        }
        /* exponent form: no '+', no leading zero */
        assert_null(strchr(buf, '+'));
        assert_null(strstr(buf, "e0"));
        assert_null(strstr(buf, "e-0"));
    }
}

static void test_unicode(void **state)
{
    char *a, *b, *c;
    (void)state;
    /* CJK raw vs escaped */
    a = canon_of("[\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"]");
    b = canon_of("[\"\\u65e5\\u672c\\u8a9e\"]");
    c = canon_of("[\"\\u65E5\\u672C\\u8A9E\"]");
    assert_string_equal(a, "[\"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\"]");
    assert_string_equal(a, b);
    assert_string_equal(a, c);
    free(a);
    free(b);
    free(c);
    /* emoji raw vs surrogate pair escape */
    a = canon_of("{\"\xf0\x9f\x98\x80\": \"x\xf0\x9f\x98\x80y\"}");
    b = canon_of("{\"\\ud83d\\ude00\": \"x\\uD83D\\uDE00y\"}");
    assert_string_equal(a, "{\"\xf0\x9f\x98\x80\":\"x\xf0\x9f\x98\x80y\"}");
    assert_string_equal(a, b);
    free(a);
    free(b);
    /* Latin-1 range */
    assert_canon("[\"\\u00e9\", \"\\u00E9\", \"\xc3\xa9\"]",
                 "[\"\xc3\xa9\",\"\xc3\xa9\",\"\xc3\xa9\"]");
    /* Minimal escaping: quotes, backslash and control characters only. */
    assert_canon("[\"a\\\"b\\\\c\\/d\"]", "[\"a\\\"b\\\\c/d\"]");
    assert_canon("[\"\\b\\f\\n\\r\\t\"]", "[\"\\b\\f\\n\\r\\t\"]");
    assert_canon("[\"\\u0001\\u001F\\u000a\\u0008\\u007f\"]", "[\"\\u0001\\u001f\\n\\b\x7f\"]");
    /* Keys sort by UTF-8 bytes: "" < "Z" < "a" < "ab" < "b" < "z" < e-acute < CJK < emoji. */
    assert_canon(
            "{\"\\ud83d\\ude00\":1,\"\xe6\x97\xa5\":2,\"\xc3\xa9\":3,\"z\":4,\"b\":5,"
            "\"ab\":6,\"a\":7,\"Z\":8,\"\":9}",
            "{\"\":9,\"Z\":8,\"a\":7,\"ab\":6,\"b\":5,\"z\":4,\"\xc3\xa9\":3,\"\xe6\x97\xa5\":2,"
            "\"\xf0\x9f\x98\x80\":1}");
}

static void test_refusals(void **state)
{
    cJSON *t;
    cs_buf out = {0};
    cs_err err = {0};
    (void)state;
    /* duplicate keys, named by path; out keeps its old content */
    t = cJSON_Parse("{\"grid\": {\"a\": [{\"bits\": 4, \"x\": 1, \"bits\": 8}]}}");
    assert_non_null(t);
    assert_int_equal(cs_buf_puts(&out, "keep"), CS_OK);
    assert_int_equal(cs_canon_append(t, &out, &err), CS_EINVAL);
    assert_string_equal(err.msg, "grid.a[0]: duplicate key \"bits\"");
    assert_string_equal(out.data, "keep");
    assert_int_equal(out.len, 4);
    cJSON_Delete(t);
    /* built by hand */
    t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "k", 1);
    cJSON_AddStringToObject(t, "k", "v");
    assert_int_equal(cs_canon_append(t, &out, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "duplicate key \"k\""));
    cJSON_Delete(t);
    /* NaN / Inf */
    t = cJSON_CreateObject();
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(t, "q"), "damp", INFINITY);
    assert_int_equal(cs_canon_append(t, &out, &err), CS_ERANGE);
    assert_non_null(strstr(err.msg, "q.damp"));
    cJSON_Delete(t);
    t = cJSON_CreateArray();
    cJSON_AddItemToArray(t, cJSON_CreateNumber(NAN));
    assert_int_equal(cs_canon_append(t, &out, &err), CS_ERANGE);
    assert_non_null(strstr(err.msg, "[0]"));
    cJSON_Delete(t);
    /* 1e999 parses to infinity in cJSON: refused */
    t = cJSON_Parse("[1e999]");
    assert_non_null(t);
    assert_int_equal(cs_canon_append(t, &out, &err), CS_ERANGE);
    cJSON_Delete(t);
    /* invalid UTF-8 in a value and in a key */
    t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "s", "ok\xc3(");
    assert_int_equal(cs_canon_append(t, &out, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "s: invalid UTF-8 in string"));
    cJSON_Delete(t);
    t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "\xed\xa0\x80", "surrogate key");
    assert_int_equal(cs_canon_append(t, &out, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "invalid UTF-8 in key"));
    cJSON_Delete(t);
    /* raw items and NULL */
    t = cJSON_CreateArray();
    cJSON_AddItemToArray(t, cJSON_CreateRaw("{\"a\":1}"));
    assert_int_equal(cs_canon_append(t, &out, &err), CS_EINVAL);
    cJSON_Delete(t);
    assert_int_equal(cs_canon_append(NULL, &out, &err), CS_EINVAL);
    assert_string_equal(out.data, "keep");
    cs_buf_fini(&out);
}

static void test_depth(void **state)
{
    cJSON *root = cJSON_CreateArray(), *cur = root;
    cs_buf out = {0};
    cs_err err = {0};
    (void)state;
    for (int i = 0; i < CS_CANON_MAX_DEPTH; i++) {
        cJSON *child = cJSON_CreateArray();
        cJSON_AddItemToArray(cur, child);
        cur = child;
    }
    assert_int_equal(cs_canon_append(root, &out, &err), CS_OK);
    assert_int_equal(out.len, 2 * (CS_CANON_MAX_DEPTH + 1));
    cJSON_AddItemToArray(cur, cJSON_CreateArray());
    assert_int_equal(cs_canon_append(root, &out, &err), CS_ERANGE);
    assert_non_null(strstr(err.msg, "nested deeper"));
    cs_buf_fini(&out);
    cJSON_Delete(root);
}

static void test_sha256_vectors(void **state)
{
    char hex[65];
    uint8_t raw[32];
    cs_err err = {0};
    cJSON *t;
    cs_buf b = {0};
    char want[65];
    (void)state;
    assert_int_equal(cs_sha256_hex("abc", 3, hex, &err), CS_OK);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(cs_sha256_hex("", 0, hex, &err), CS_OK);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(cs_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
                                   hex, &err),
                     CS_OK);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    assert_int_equal(cs_sha256("abc", 3, raw, &err), CS_OK);
    assert_int_equal(raw[0], 0xba);
    assert_int_equal(raw[31], 0xad);
    /* cs_canon_hash == SHA-256(canonical || salt) */
    t = cJSON_Parse("{\"b\": 2, \"a\": [1.0, \"x\"]}");
    assert_non_null(t);
    assert_int_equal(cs_canon_hash(t, "0.1.0", hex, &err), CS_OK);
    assert_int_equal(cs_buf_puts(&b, "{\"a\":[1,\"x\"],\"b\":2}0.1.0"), CS_OK);
    assert_int_equal(cs_sha256_hex(b.data, b.len, want, &err), CS_OK);
    assert_string_equal(hex, want);
    cs_buf_fini(&b);
    cJSON_Delete(t);
    /* error path leaves "" */
    assert_int_equal(cs_canon_hash(NULL, "v", hex, &err), CS_EINVAL);
    assert_string_equal(hex, "");
}

/* ---- property: random trees --------------------------------------------------------------- */

static cJSON *random_tree(cs_rng *r, int depth)
{
    static const char *const strs[] = {"",
                                       "a",
                                       "b",
                                       "ab",
                                       "Z",
                                       "\xc3\xa9",
                                       "\xe6\x97\xa5",
                                       "\xf0\x9f\x98\x80",
                                       "q\"uote",
                                       "back\\slash",
                                       "tab\t",
                                       "ctl\x01",
                                       "n_samples",
                                       "bits"};
    const size_t ns = sizeof(strs) / sizeof(strs[0]);
    uint64_t kind = cs_rng_below(r, depth > 4 ? 6 : 8);
    switch (kind) {
    case 0:
        return cJSON_CreateNull();
    case 1:
        return cJSON_CreateBool(cs_rng_below(r, 2) == 1);
    case 2:
        return cJSON_CreateNumber((double)(int64_t)cs_rng_below(r, 2000) - 1000);
    case 3:
        return cJSON_CreateNumber(cs_rng_normal(r) * pow(10.0, (double)cs_rng_below(r, 40) - 20));
    case 4:
    case 5:
        return cJSON_CreateString(strs[cs_rng_below(r, ns)]);
    case 6: {
        cJSON *a = cJSON_CreateArray();
        uint64_t n = cs_rng_below(r, 5);
        for (uint64_t i = 0; i < n; i++) {
            cJSON_AddItemToArray(a, random_tree(r, depth + 1));
        }
        return a;
    }
    default: {
        cJSON *o = cJSON_CreateObject();
        uint64_t n = cs_rng_below(r, 6);
        for (uint64_t i = 0; i < n; i++) {
            const char *k = strs[cs_rng_below(r, ns)];
            if (!cJSON_GetObjectItemCaseSensitive(o, k)) {
                cJSON_AddItemToObject(o, k, random_tree(r, depth + 1));
            }
        }
        return o;
    }
    }
}

/* A deep copy of t with every object's members in a shuffled order. */
static cJSON *shuffled_copy(const cJSON *t, cs_rng *r)
{
    cJSON *c;
    size_t n = 0, idx[16];
    const cJSON *m[16];
    if (!cJSON_IsObject(t) && !cJSON_IsArray(t)) {
        return cJSON_Duplicate(t, 1);
    }
    c = cJSON_IsObject(t) ? cJSON_CreateObject() : cJSON_CreateArray();
    for (const cJSON *x = t->child; x && n < 16; x = x->next) {
        idx[n] = n;
        m[n++] = x;
    }
    if (cJSON_IsObject(t)) {
        cs_rng_shuffle(r, idx, n);
    }
    for (size_t i = 0; i < n; i++) {
        cJSON *k = shuffled_copy(m[idx[i]], r);
        if (cJSON_IsObject(t)) {
            cJSON_AddItemToObject(c, m[idx[i]]->string, k);
        } else {
            cJSON_AddItemToArray(c, k);
        }
    }
    return c;
}

static void test_property_random_trees(void **state)
{
    cs_rng r;
    (void)state;
    cs_rng_seed(&r, 20240501);
    for (int i = 0; i < 500; i++) {
        cJSON *t = random_tree(&r, 0), *back = NULL, *shuf;
        char *c1 = NULL, *c2 = NULL, *c3 = NULL;
        cs_err err = {0};
        size_t len = 0;
        assert_int_equal(cs_canon_string(t, &c1, &len, &err), CS_OK);
        assert_int_equal(len, strlen(c1));
        /* idempotent through our parser */
        assert_int_equal(cs_json_parse(c1, len, "canon", &back, &err), CS_OK);
        assert_int_equal(cs_canon_string(back, &c2, NULL, &err), CS_OK);
        assert_string_equal(c1, c2);
        /* invariant under member order */
        shuf = shuffled_copy(t, &r);
        assert_int_equal(cs_canon_string(shuf, &c3, NULL, &err), CS_OK);
        assert_string_equal(c1, c3);
        /* The scanner sees that the canonical text is canonical (when it has no escape: with
         * one in a key it may say false) and never calls a changed text canonical that the slow
         * path does not. */
        if (!strchr(c1, '\\')) {
            assert_true(cs_canon_is_canonical(c1, len));
        }
        if (len > 1) {
            char *mut = cs_strdup(c1);
            cJSON *mt = NULL;
            char *mc = NULL;
            bool same = false;
            assert_non_null(mut);
            mut[(size_t)i % len] = " x1,\"}0.e"[(size_t)i % 10];
            if (cs_json_parse(mut, len, "mut", &mt, NULL) == CS_OK &&
                cs_canon_string(mt, &mc, NULL, NULL) == CS_OK) {
                same = strcmp(mc, mut) == 0;
            }
            if (cs_canon_is_canonical(mut, len) && !same) {
                fail_msg("scanner calls '%s' canonical", mut);
            }
            free(mc);
            cJSON_Delete(mt);
            free(mut);
        }
        free(c1);
        free(c2);
        free(c3);
        cJSON_Delete(t);
        cJSON_Delete(back);
        cJSON_Delete(shuf);
    }
}

/* cs_canon_is_canonical against cs_canon on hand-picked texts: true exactly for canonical ones,
 * except that keys with escapes and \u escapes may say false (never a wrong true). */
static void test_is_canonical(void **state)
{
    static const char *const yes[] = {
            "{}",
            "[]",
            "0",
            "-1",
            "1.5",
            "0.1",
            "1e300",
            "1.5e-7",
            "9007199254740992",
            "-9007199254740992",
            "9007199254740994",
            "true",
            "false",
            "null",
            "\"\"",
            "\"a\\\"b\\\\c\\n\\t\\b\\f\\r\\u0001\\u001f\x7f\"",
            "\"\xc3\xa9\xf0\x9f\x98\x80\"",
            "{\"a\":1,\"b\":[1,2,{\"c\":null}],\"bb\":\"x\"}",
            "{\"\":0,\"a\":{}}",
            "{\"A\":1,\"a\":2}",
            "[[[[]]]]",
            "{\"seed\":123456789012345}",
    };
    static const char *const no[] = {
            "",
            " ",
            "{} ",
            " {}",
            "{ }",
            "[1, 2]",
            "01",
            "-0",
            "1.0",
            "1e2",
            "1E5",
            "1.5e-07",
            "1e+300",
            "0.10",
            "+1",
            ".5",
            "1.",
            "1e",
            "9007199254740993",
            "tru",
            "nul",
            "\"",
            "\"a",
            "\"\\/\"",
            "\"\\u00e9\"",
            "\"\\u000a\"",
            "\"\\u0000\"",
            "\"\\U0001\"",
            "\"\x01\"",
            "\"\xc0\xaf\"",
            "\"\xff\"",
            "{\"b\":1,\"a\":2}",
            "{\"a\":1,\"a\":2}",
            "{\"a\":1,}",
            "{\"a\"1}",
            "[1,]",
            "{\"a\\\"b\":1}",
            "[1]x",
            "{\"a\":1}}",
            "1 ",
            "nan",
            "inf",
            "[-]",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        cJSON *t = NULL;
        char *c = NULL;
        size_t n = strlen(yes[i]);
        assert_int_equal(cs_json_parse(yes[i], n, "yes", &t, NULL), CS_OK);
        assert_int_equal(cs_canon_string(t, &c, NULL, NULL), CS_OK);
        assert_string_equal(c, yes[i]); /* the list itself is right */
        if (!cs_canon_is_canonical(yes[i], n)) {
            fail_msg("'%s' is canonical", yes[i]);
        }
        free(c);
        cJSON_Delete(t);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (cs_canon_is_canonical(no[i], strlen(no[i]))) {
            fail_msg("'%s' is not canonical", no[i]);
        }
    }
    /* NUL bytes inside and after. */
    assert_false(cs_canon_is_canonical("\"a\0b\"", 5));
    assert_false(cs_canon_is_canonical("{}\0", 3));
    assert_false(cs_canon_is_canonical(NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_order_and_whitespace_invariant),
            cmocka_unit_test(test_any_change_changes_hash),
            cmocka_unit_test(test_number_rule),
            cmocka_unit_test(test_numbers_round_trip),
            cmocka_unit_test(test_unicode),
            cmocka_unit_test(test_refusals),
            cmocka_unit_test(test_depth),
            cmocka_unit_test(test_sha256_vectors),
            cmocka_unit_test(test_property_random_trees),
            cmocka_unit_test(test_is_canonical),
    };
    return CS_RUN_TESTS(tests);
}
