/* tok_test.c - the byte-level BPE tokenizer (worker/model/cs_tok.c) on hand-made tokenizer.json
 * fixtures (tests/data/tokenizer/tiny-*.json, made by make_fixtures.py there): merges in both
 * formats, added and special tokens with lstrip/rstrip/normalized, ignore_merges, every branch of
 * the split patterns, NFC, the post-processor template, decoding, and every loader error path.
 * The real Llama-3.1 and Qwen3 tokenizers are checked against Hugging Face by
 * tests/node/tokenizer-ref.mjs. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cs_alloc.h"
#include "cs_test.h"
#include "cs_tok.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static char *fixture_path(const char *name)
{
    const char *src = getenv("CS_SOURCE_DIR");
    cs_buf b = {0};
    assert_non_null(src);
    assert_int_equal(cs_buf_printf(&b, "%s/tests/data/tokenizer/%s", src, name), CS_OK);
    return cs_buf_take(&b);
}

static cs_tok *load(const char *name)
{
    char *path = fixture_path(name);
    cs_tok *tok = NULL;
    cs_err err = {0};
    cs_rc rc = cs_tok_load(&tok, path, &err);
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    free(path);
    assert_int_equal(rc, CS_OK);
    return tok;
}

static cJSON *fixture_json(const char *name)
{
    char *path = fixture_path(name);
    FILE *f = fopen(path, "rb");
    cs_buf b = {0};
    char chunk[4096];
    size_t n;
    cJSON *j;
    assert_non_null(f);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        assert_int_equal(cs_buf_append(&b, chunk, n), CS_OK);
    }
    fclose(f);
    j = cJSON_Parse(b.data);
    assert_non_null(j);
    cs_buf_fini(&b);
    free(path);
    return j;
}

/* Loads a modified fixture from memory. */
static cs_rc load_json(const cJSON *j, cs_tok **tok, cs_err *err)
{
    char *text = cJSON_PrintUnformatted(j);
    cs_rc rc;
    assert_non_null(text);
    rc = cs_tok_load_mem(tok, text, strlen(text), "fixture", err);
    cJSON_free(text);
    return rc;
}

/* The tokens of encode(text) as "tok tok ..." (the fixtures' tokens hold no spaces: byte-level
 * writes a space as Ġ). Returns owned text. */
static char *enc_str(const cs_tok *tok, const char *text, unsigned flags)
{
    int32_t *ids = NULL;
    size_t n = 0;
    cs_err err = {0};
    cs_buf b = {0};
    cs_rc rc = cs_tok_encode(tok, text, strlen(text), flags, &ids, &n, &err);
    if (rc != CS_OK) {
        print_error("encode: %s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    assert_non_null(ids);
    assert_int_equal(cs_buf_puts(&b, ""), CS_OK);
    for (size_t i = 0; i < n; i++) {
        const char *t = cs_tok_token(tok, ids[i]);
        assert_non_null(t);
        assert_int_equal(cs_buf_printf(&b, "%s%s", i ? " " : "", t), CS_OK);
    }
    free(ids);
    return cs_buf_take(&b);
}

#define assert_enc(tok, text, flags, want)            \
    do {                                              \
        char *got_ = enc_str((tok), (text), (flags)); \
        if (strcmp(got_, (want)) != 0) {              \
            print_error("encode(\"%s\")\n", (text));  \
        }                                             \
        assert_string_equal(got_, (want));            \
        free(got_);                                   \
    } while (0)

/* The pre-tokenizer split of text as "piece|piece|...". Returns owned text. */
static char *split_str(const cs_tok *tok, const char *text)
{
    size_t *ends = NULL, n = 0, from = 0;
    cs_err err = {0};
    cs_buf b = {0};
    assert_int_equal(cs_tok_split(tok, text, strlen(text), &ends, &n, &err), CS_OK);
    assert_int_equal(cs_buf_puts(&b, ""), CS_OK);
    for (size_t i = 0; i < n; i++) {
        assert_true(ends[i] > from);
        if (i) {
            assert_int_equal(cs_buf_putc(&b, '|'), CS_OK);
        }
        assert_int_equal(cs_buf_append(&b, text + from, ends[i] - from), CS_OK);
        from = ends[i];
    }
    assert_int_equal(from, strlen(text));
    free(ends);
    return cs_buf_take(&b);
}

#define assert_split(tok, text, want)               \
    do {                                            \
        char *got_ = split_str((tok), (text));      \
        if (strcmp(got_, (want)) != 0) {            \
            print_error("split(\"%s\")\n", (text)); \
        }                                           \
        assert_string_equal(got_, (want));          \
        free(got_);                                 \
    } while (0)

/* decode(encode(text)) == want. */
static void assert_roundtrip(const cs_tok *tok, const char *text, const char *want)
{
    int32_t *ids = NULL;
    size_t n = 0, len = 0;
    char *dec = NULL;
    cs_err err = {0};
    assert_int_equal(cs_tok_encode(tok, text, strlen(text), 0, &ids, &n, &err), CS_OK);
    assert_int_equal(cs_tok_decode(tok, ids, n, false, &dec, &len, &err), CS_OK);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(dec, want, len);
    free(dec);
    free(ids);
}

/* ---- encoding ---------------------------------------------------------------------------- */

static void test_merges_string_format(void **state)
{
    cs_tok *tok = load("tiny-llama.json");
    (void)state;
    assert_string_equal(cs_tok_pattern_name(tok), "llama3");
    assert_enc(tok, "hello world", 0, "hello Ġworld");
    assert_enc(tok, "hello", 0, "hello");
    assert_enc(tok, "helo", 0, "he lo");
    assert_enc(tok, "lower", 0, "lower");
    assert_enc(tok, "", 0, "");
    cs_tok_destroy(tok);
}

static void test_merges_pair_format(void **state)
{
    cs_tok *tok = load("tiny-qwen.json");
    (void)state;
    assert_string_equal(cs_tok_pattern_name(tok), "qwen2");
    assert_enc(tok, "hello", 0, "hello");
    /* caf\xc3\xa9: rank order Ã© (6), then a f (8) lets c+af (7) and caf+Ã© (9) happen. */
    assert_enc(tok, "caf\xc3\xa9", 0, "cafÃ©");
    assert_enc(tok, "12", 0, "1 2"); /* Qwen splits digits one by one: 12 never merges */
    cs_tok_destroy(tok);
}

/* The merge list order decides, not the order pairs appear in the word. */
static void test_merge_priority(void **state)
{
    cs_tok *tok = load("tiny-llama.json");
    (void)state;
    assert_enc(tok, "hell", 0, "hell"); /* h e l l: he (0) and ll (1), then he+ll (2) */
    assert_enc(tok, "lllll", 0, "ll ll l");
    cs_tok_destroy(tok);
}

static void test_ignore_merges(void **state)
{
    cJSON *j = fixture_json("tiny-llama.json");
    cs_tok *tok = load("tiny-llama.json");
    cs_err err = {0};
    (void)state;
    /* "newest" is in the vocab but no merge chain builds it: whole only with ignore_merges. */
    assert_enc(tok, "newest", 0, "newest");
    cs_tok_destroy(tok);
    tok = NULL;
    cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "model"),
                                           "ignore_merges", cJSON_CreateFalse());
    assert_int_equal(load_json(j, &tok, &err), CS_OK);
    assert_enc(tok, "newest", 0, "new est");
    cs_tok_destroy(tok);
    cJSON_Delete(j);
}

static void test_added_tokens(void **state)
{
    cs_tok *tok = load("tiny-llama.json");
    int32_t eot = cs_tok_find(tok, "<|end_of_text|>"), tool = cs_tok_find(tok, "<tool>");
    (void)state;
    assert_true(eot >= 0 && tool >= 0);
    assert_true(cs_tok_is_special(tok, eot));
    assert_true(cs_tok_is_added(tok, eot));
    assert_false(cs_tok_is_special(tok, tool));
    assert_true(cs_tok_is_added(tok, tool));
    assert_false(cs_tok_is_added(tok, cs_tok_find(tok, "hello")));
    assert_enc(tok, "<tool>hello<|end_of_text|>", 0, "<tool> hello <|end_of_text|>");
    /* Matched before pre-tokenisation: the space stays with the next word, not the token. */
    assert_enc(tok, "a <tool> b", 0, "a Ġ <tool> Ġ b");
    /* split_special: special tokens are text, non-special added tokens still match. */
    assert_enc(tok, "<|end_of_text|><tool>", CS_TOK_SPLIT_SPECIAL,
               "< | e n d _ o f _ t e x t | > <tool>");
    /* lstrip eats the whitespace on its left; rstrip on its right. */
    assert_enc(tok, "a  [L]b", 0, "a [L] b");
    assert_enc(tok, "a[R]  \nb", 0, "a [R] b");
    assert_enc(tok, "a  [R]", 0, "a Ġ Ġ [R]");
    /* Not a token: "<|end_of_text|" without its closing ">". */
    assert_enc(tok, "<|end_of_text|", 0, "< | e n d _ o f _ t e x t |");
    cs_tok_destroy(tok);
}

static void test_template_and_bos(void **state)
{
    cs_tok *tok = load("tiny-llama.json");
    int32_t bos = cs_tok_find(tok, "<|begin_of_text|>");
    cs_err err = {0};
    (void)state;
    assert_true(bos >= 0);
    assert_int_equal(cs_tok_bos(tok), bos);
    assert_int_equal(cs_tok_eos(tok), cs_tok_find(tok, "<|end_of_text|>"));
    assert_enc(tok, "hello", CS_TOK_ADD_SPECIAL, "<|begin_of_text|> hello");
    assert_enc(tok, "", CS_TOK_ADD_SPECIAL, "<|begin_of_text|>");
    assert_int_equal(cs_tok_set_bos_eos(tok, -1, 5, &err), CS_OK);
    assert_int_equal(cs_tok_bos(tok), -1);
    assert_int_equal(cs_tok_eos(tok), 5);
    assert_int_equal(cs_tok_set_bos_eos(tok, (int32_t)cs_tok_vocab_size(tok), 5, &err), CS_ERANGE);
    assert_int_equal(cs_tok_set_bos_eos(tok, -2, 5, &err), CS_ERANGE);
    cs_tok_destroy(tok);

    tok = load("tiny-qwen.json");
    assert_enc(tok, "hello", CS_TOK_ADD_SPECIAL, "hello"); /* no template: nothing added */
    assert_int_equal(cs_tok_bos(tok), -1);
    assert_int_equal(cs_tok_eos(tok), cs_tok_find(tok, "<|endoftext|>"));
    cs_tok_destroy(tok);
}

/* Every branch of the Llama-3 pattern:
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+ */
static void test_split_llama3(void **state)
{
    cs_tok *tok = load("tiny-llama.json");
    (void)state;
    /* contractions, any case, and ſ that case-folds to s */
    assert_split(tok, "I'LL we're he'S it'd you'Ve I'm don'T",
                 "I|'LL| we|'re| he|'S| it|'d| you|'Ve| I|'m| don|'T");
    assert_split(tok, "x'\xc5\xbfy", "x|'\xc5\xbf|y");
    assert_split(tok, "'x", "'x"); /* not a contraction: ' leads the letters */
    /* optional non-letter/digit/newline before letters */
    assert_split(tok, " hello\tworld", " hello|\tworld");
    assert_split(tok, "\nword", "\n|word");
    assert_split(tok, "caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd",
                 "caf\xc3\xa9| \xe4\xbd\xa0\xe5\xa5\xbd");
    /* digits in threes, any script (Nd, Nl, No) */
    assert_split(tok, "1234567", "123|456|7");
    assert_split(tok, "\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6", "\xd9\xa3\xd9\xa4\xd9\xa5|\xd9\xa6");
    assert_split(tok, "x\xe2\x85\xab\xc2\xb2", "x|\xe2\x85\xab\xc2\xb2");
    /* punctuation with an optional space and trailing newlines */
    assert_split(tok, "a ...\n\nb", "a| ...\n\n|b");
    assert_split(tok, "a!?", "a|!?");
    assert_split(tok, "  !", " | !");
    /* whitespace ending in newlines */
    assert_split(tok, "a \n \n b", "a| \n \n| b");
    assert_split(tok, "\r\n\r\n", "\r\n\r\n");
    /* whitespace not followed by non-space, then the plain \s+ */
    assert_split(tok, "a   b", "a|  | b");
    assert_split(tok, "a   ", "a|   ");
    assert_split(tok,
                 "a \xc2\xa0\xe3\x80\x80"
                 "b",
                 "a| \xc2\xa0|\xe3\x80\x80"
                 "b");
    assert_split(tok, "\t1", "\t|1");
    cs_tok_destroy(tok);
}

static void test_split_qwen2_and_gpt2(void **state)
{
    cs_tok *tok = load("tiny-qwen.json");
    cJSON *j = fixture_json("tiny-qwen.json");
    cs_err err = {0};
    (void)state;
    assert_split(tok, "1234 I'LL", "1|2|3|4| I|'LL");
    cs_tok_destroy(tok);
    tok = NULL;
    /* ByteLevel with its own GPT-2 regex (case-sensitive contractions, digits in runs). */
    cJSON_ReplaceItemInObjectCaseSensitive(
            j, "pre_tokenizer",
            cJSON_Parse("{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}"));
    assert_int_equal(load_json(j, &tok, &err), CS_OK);
    assert_string_equal(cs_tok_pattern_name(tok), "gpt2");
    assert_split(tok, "I'LL it's 1234 ab  !!", "I|'|LL| it|'s| 1234| ab| | !!");
    assert_enc(tok, "hello", 0, "hello");
    cs_tok_destroy(tok);
    tok = NULL;
    cJSON_ReplaceItemInObjectCaseSensitive(
            j, "pre_tokenizer",
            cJSON_Parse("{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true}"));
    assert_int_equal(load_json(j, &tok, &err), CS_OK);
    assert_enc(tok, "wo", 0, "Ġw o"); /* the prefix space joins the first word */
    cs_tok_destroy(tok);
    cJSON_Delete(j);
}

static void test_nfc(void **state)
{
    cs_tok *tok = load("tiny-qwen.json");
    (void)state;
    /* e + COMBINING ACUTE is composed to U+00E9 first, so the merges of é apply. */
    assert_enc(tok, "cafe\xcc\x81", 0, "cafÃ©");
    assert_roundtrip(tok, "cafe\xcc\x81", "caf\xc3\xa9");
    /* A normalized added token matches the NFC form of the text; a non-normalized one the raw text.
     */
    assert_enc(tok, "cafe\xcc\x81!", 0, "café!");
    assert_enc(tok, "<think>x", 0, "<think> x");
    cs_tok_destroy(tok);

    /* Llama has no normalizer: the combining mark stays separate. */
    tok = load("tiny-llama.json");
    assert_roundtrip(tok, "cafe\xcc\x81", "cafe\xcc\x81");
    cs_tok_destroy(tok);
}

static void test_decode_and_lookups(void **state)
{
    cs_tok *tok = load("tiny-llama.json");
    int32_t hello = cs_tok_find(tok, "hello"), gw = cs_tok_find(tok, "Ġworld");
    int32_t ids[3], bad = -1;
    char *text = NULL;
    size_t len = 0;
    const char *piece;
    cs_err err = {0};
    (void)state;
    assert_true(hello >= 0 && gw >= 0);
    assert_int_equal(cs_tok_find(tok, "nope"), -1);
    piece = cs_tok_piece(tok, gw, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(piece, " world", 6);
    assert_string_equal(cs_tok_token(tok, gw), "Ġworld");
    assert_null(cs_tok_token(tok, -1));
    assert_null(cs_tok_piece(tok, (int32_t)cs_tok_vocab_size(tok), &len));
    assert_int_equal(len, 0);
    assert_int_equal(cs_tok_vocab_size(tok), (size_t)cs_tok_find(tok, "[R]") + 1);

    ids[0] = cs_tok_bos(tok);
    ids[1] = hello;
    ids[2] = gw;
    assert_int_equal(cs_tok_decode(tok, ids, 3, false, &text, &len, &err), CS_OK);
    assert_string_equal(text, "<|begin_of_text|>hello world");
    free(text);
    assert_int_equal(cs_tok_decode(tok, ids, 3, true, &text, &len, &err), CS_OK);
    assert_string_equal(text, "hello world");
    free(text);
    assert_int_equal(cs_tok_decode(tok, ids, 0, true, &text, &len, &err), CS_OK);
    assert_string_equal(text, "");
    assert_int_equal(len, 0);
    free(text);
    assert_int_equal(cs_tok_decode(tok, &bad, 1, false, &text, &len, &err), CS_ERANGE);
    assert_null(text);
    assert_non_null(strstr(err.msg, "ids[0] = -1"));

    /* Byte-level: every byte survives, including control bytes and 4-byte characters. */
    assert_roundtrip(tok, "\x01\x7f tab\t\r\n \xf0\x9f\x98\x80 \xe4\xbd\xa0",
                     "\x01\x7f tab\t\r\n \xf0\x9f\x98\x80 \xe4\xbd\xa0");
    assert_roundtrip(tok, "<tool>a  [L]b", "<tool>a[L]b"); /* lstrip ate the spaces */
    cs_tok_destroy(tok);
}

static void test_invalid_utf8_and_long_words(void **state)
{
    cs_tok *tok = load("tiny-llama.json");
    int32_t *ids = NULL;
    size_t n = 0, len = 100000;
    char *big = malloc(len + 1);
    cs_err err = {0};
    static const char *const bad[] = {"ab\xff", "\xc0\xaf", "\xed\xa0\x80", "abc\xe4\xbd",
                                      "\xf4\x90\x80\x80"};
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cs_tok_encode(tok, bad[i], strlen(bad[i]), 0, &ids, &n, &err), CS_EINVAL);
        assert_null(ids);
        assert_non_null(strstr(err.msg, "invalid UTF-8"));
    }
    assert_non_null(strstr(err.msg, "byte 0"));
    /* One pre-token of 100000 letters: BPE must stay fast (heap, not quadratic) and correct. */
    assert_non_null(big);
    memset(big, 'l', len);
    big[len] = '\0';
    assert_int_equal(cs_tok_encode(tok, big, len, 0, &ids, &n, &err), CS_OK);
    assert_int_equal(n, len / 2);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ids[i], cs_tok_find(tok, "ll"));
    }
    free(ids);
    free(big);
    cs_tok_destroy(tok);
}

/* ---- loader errors ----------------------------------------------------------------------- */

static void expect_mem_error(const char *json, cs_rc want, const char *msg)
{
    cs_tok *tok = (cs_tok *)&tok;
    cs_err err = {0};
    cs_rc rc = cs_tok_load_mem(&tok, json, strlen(json), "t.json", &err);
    if (rc != want || !strstr(err.msg, msg)) {
        print_error("input %.80s: got %s \"%s\", want %s \"%s\"\n", json, cs_rc_name(rc), err.msg,
                    cs_rc_name(want), msg);
    }
    assert_int_equal(rc, want);
    assert_null(tok);
    assert_non_null(strstr(err.msg, msg));
}

static void test_errors_basic(void **state)
{
    cs_tok *tok = NULL;
    cs_err err = {0};
    (void)state;
    expect_mem_error("", CS_EPARSE, "empty input");
    expect_mem_error("not json", CS_EPARSE, "t.json:1:1: not valid JSON");
    expect_mem_error("{\"model\":\n {\"type\": }", CS_EPARSE, "t.json:2:");
    expect_mem_error("{} x", CS_EPARSE, "trailing data");
    expect_mem_error("[1,2]", CS_EPARSE, "(root): expected an object");
    expect_mem_error("{}", CS_EPARSE, "model: expected an object");
    expect_mem_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", CS_ENOTSUP,
                     "unsupported tokenizer type WordPiece");
    expect_mem_error("{\"model\":{\"type\":\"Unigram\"}}", CS_ENOTSUP,
                     "unsupported tokenizer type Unigram");
    expect_mem_error("{\"model\":{\"type\":7}}", CS_EPARSE, "model.type: expected a string");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"merges\":[]}}", CS_EPARSE,
                     "model.vocab: expected an object");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{}}}", CS_EPARSE,
                     "model.merges: expected an array");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":1.5},\"merges\":[]}}",
                     CS_EPARSE, "model.vocab[\"a\"]: expected an integer id");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1},\"merges\":[]}}", CS_EPARSE,
                     "expected an integer id");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":99999999999},\"merges\":[]}}",
                     CS_EPARSE, "expected an integer id");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":16000000},\"merges\":[]}}",
                     CS_EPARSE, "ids are too sparse: largest id 16000000 for 1 tokens");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}}",
                     CS_EPARSE, "id 0 is also \"a\"");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"a\":1},\"merges\":[]}}",
                     CS_EPARSE, "duplicate token \"a\"");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b\"]}}",
                     CS_EPARSE, "model.merges[0]: unknown token \"b\"");
    expect_mem_error(
            "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[\"a\",\"a\"]]}}",
            CS_EPARSE, "merged token \"aa\" is not in the vocab");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a a a\"]}}",
                     CS_EPARSE, "model.merges[0]: expected \"left right\" with one space");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"aa\"]}}",
                     CS_EPARSE, "with one space");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[[\"a\"]]}}",
                     CS_EPARSE, "model.merges[0]: expected \"left right\" or");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[3]}}", CS_EPARSE,
                     "got a number");
    expect_mem_error(
            "{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[],\"byte_fallback\":true}}",
            CS_ENOTSUP, "model.byte_fallback");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[],\"dropout\":0.1}}",
                     CS_ENOTSUP, "model.dropout");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[],"
                     "\"continuing_subword_prefix\":\"##\"}}",
                     CS_ENOTSUP, "model.continuing_subword_prefix");
    expect_mem_error(
            "{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[],\"ignore_merges\":1}}",
            CS_EPARSE, "model.ignore_merges: expected a boolean");
    expect_mem_error(
            "{\"added_tokens\":{},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
            CS_EPARSE, "added_tokens: expected an array");
    expect_mem_error("{\"added_tokens\":[{\"content\":\"x\"}],\"model\":{\"type\":\"BPE\","
                     "\"vocab\":{},\"merges\":[]}}",
                     CS_EPARSE, "added_tokens[0].id: expected an integer id");
    expect_mem_error("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}", CS_ENOTSUP,
                     "pre_tokenizer: missing");

    assert_int_equal(cs_tok_load(&tok, "/nonexistent/tokenizer.json", &err), CS_ENOENT);
    assert_null(tok);
    assert_non_null(strstr(err.msg, "/nonexistent/tokenizer.json"));
}

/* Replaces member key of the object at dotted path (from the root) with parsed value and expects
 * the load to fail with want and a message containing msg. value NULL deletes the member. */
static void expect_edit_error(const char *fixture, const char *obj_path, const char *key,
                              const char *value, cs_rc want, const char *msg)
{
    cJSON *j = fixture_json(fixture), *o = j;
    cs_tok *tok = NULL;
    cs_err err = {0};
    char path[128];
    cs_rc rc;
    if (obj_path) {
        char *save = NULL;
        snprintf(path, sizeof path, "%s", obj_path);
        for (char *p = path; p && *p; p = save) {
            save = strchr(p, '.');
            if (save) {
                *save++ = '\0';
            }
            o = cJSON_IsArray(o) ? cJSON_GetArrayItem(o, (int)strtol(p, NULL, 10))
                                 : cJSON_GetObjectItemCaseSensitive(o, p);
            assert_non_null(o);
        }
    }
    if (value) {
        cJSON *v = cJSON_Parse(value);
        assert_non_null(v);
        if (cJSON_GetObjectItemCaseSensitive(o, key)) {
            cJSON_ReplaceItemInObjectCaseSensitive(o, key, v);
        } else {
            cJSON_AddItemToObject(o, key, v);
        }
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    }
    rc = load_json(j, &tok, &err);
    if (rc != want || !strstr(err.msg, msg)) {
        print_error("%s %s.%s: got %s \"%s\", want %s \"%s\"\n", fixture, obj_path ? obj_path : "",
                    key, cs_rc_name(rc), err.msg, cs_rc_name(want), msg);
    }
    assert_int_equal(rc, want);
    assert_null(tok);
    assert_non_null(strstr(err.msg, msg));
    cJSON_Delete(j);
}

static void test_errors_pipeline(void **state)
{
    (void)state;
    expect_edit_error("tiny-llama.json", NULL, "pre_tokenizer", "{\"type\":\"Whitespace\"}",
                      CS_ENOTSUP, "pre_tokenizer: unsupported pre-tokenizer type Whitespace");
    expect_edit_error("tiny-llama.json", NULL, "pre_tokenizer", NULL, CS_ENOTSUP,
                      "pre_tokenizer: missing");
    expect_edit_error(
            "tiny-llama.json", "pre_tokenizer.pretokenizers.0.pattern", "Regex",
            "\"\\\\w+|\\\\s+\"", CS_ENOTSUP,
            "pre_tokenizer.pretokenizers[0].pattern: unsupported split regex \"\\w+|\\s+\"");
    expect_edit_error("tiny-llama.json", "pre_tokenizer.pretokenizers.0", "pattern",
                      "{\"String\":\" \"}", CS_ENOTSUP, "a String pattern is not supported");
    expect_edit_error("tiny-llama.json", "pre_tokenizer.pretokenizers.0", "behavior", "\"Removed\"",
                      CS_ENOTSUP, "unsupported split behavior Removed");
    expect_edit_error("tiny-llama.json", "pre_tokenizer.pretokenizers.0", "invert", "true",
                      CS_ENOTSUP, "invert: true is not supported");
    expect_edit_error("tiny-llama.json", "pre_tokenizer.pretokenizers.1", "type", "\"Digits\"",
                      CS_ENOTSUP, "pretokenizers[1]: unsupported pre-tokenizer type Digits");
    expect_edit_error("tiny-llama.json", "pre_tokenizer", "pretokenizers", "[]", CS_ENOTSUP,
                      "no ByteLevel step");
    expect_edit_error("tiny-llama.json", "pre_tokenizer", "pretokenizers", "{}", CS_EPARSE,
                      "pre_tokenizer.pretokenizers: expected an array");
    expect_edit_error("tiny-llama.json", "pre_tokenizer.pretokenizers.1", "use_regex", "true",
                      CS_ENOTSUP, "ByteLevel with use_regex after a Split");
    expect_edit_error("tiny-llama.json", NULL, "pre_tokenizer",
                      "{\"type\":\"ByteLevel\",\"use_regex\":false}", CS_ENOTSUP,
                      "ByteLevel without use_regex");
    expect_edit_error("tiny-llama.json", NULL, "pre_tokenizer", "[]", CS_EPARSE,
                      "pre_tokenizer: expected an object");
    expect_edit_error("tiny-llama.json", NULL, "normalizer", "{\"type\":\"NFKC\"}", CS_ENOTSUP,
                      "normalizer: unsupported normalizer type NFKC");
    expect_edit_error("tiny-llama.json", NULL, "normalizer",
                      "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":"
                      "\"Lowercase\"}]}",
                      CS_ENOTSUP,
                      "normalizer.normalizers[1]: unsupported normalizer type Lowercase");
    expect_edit_error("tiny-llama.json", NULL, "normalizer", "{\"kind\":\"NFC\"}", CS_EPARSE,
                      "normalizer.type: expected a string");
    expect_edit_error("tiny-llama.json", NULL, "decoder", "{\"type\":\"WordPiece\"}", CS_ENOTSUP,
                      "decoder: unsupported decoder type WordPiece");
    expect_edit_error("tiny-llama.json", NULL, "decoder", "null", CS_ENOTSUP, "decoder: missing");
    expect_edit_error("tiny-llama.json", NULL, "post_processor", "{\"type\":\"BertProcessing\"}",
                      CS_ENOTSUP, "post_processor: unsupported post-processor type BertProcessing");
    expect_edit_error("tiny-llama.json", "post_processor.processors.1", "special_tokens", "{}",
                      CS_EPARSE,
                      "post_processor.processors[1].special_tokens[\"<|begin_of_text|>\"].ids");
    expect_edit_error("tiny-llama.json", "post_processor.processors.1", "single", "[{\"X\":1}]",
                      CS_EPARSE, "post_processor.processors[1].single[0]: expected");
    expect_edit_error("tiny-llama.json", "added_tokens.0", "content", "\"\"", CS_EPARSE,
                      "added_tokens[0].content: expected a non-empty string");
    expect_edit_error("tiny-llama.json", "added_tokens.0", "content", "\"hello\"", CS_EPARSE,
                      "added_tokens[0]: \"hello\" has id");
    expect_edit_error("tiny-llama.json", "added_tokens.1", "id", "0", CS_EPARSE,
                      "added_tokens[1]: id 0 is both");
    expect_edit_error("tiny-llama.json", "added_tokens.1", "special", "\"yes\"", CS_EPARSE,
                      "added_tokens[1].special: expected a boolean");
    expect_edit_error("tiny-qwen.json", "model", "merges", "[[\"h\",\"e\"],[\"x\",\"zz\"]]",
                      CS_EPARSE, "model.merges[1]: unknown token \"zz\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_merges_string_format),
            cmocka_unit_test(test_merges_pair_format),
            cmocka_unit_test(test_merge_priority),
            cmocka_unit_test(test_ignore_merges),
            cmocka_unit_test(test_added_tokens),
            cmocka_unit_test(test_template_and_bos),
            cmocka_unit_test(test_split_llama3),
            cmocka_unit_test(test_split_qwen2_and_gpt2),
            cmocka_unit_test(test_nfc),
            cmocka_unit_test(test_decode_and_lookups),
            cmocka_unit_test(test_invalid_utf8_and_long_words),
            cmocka_unit_test(test_errors_basic),
            cmocka_unit_test(test_errors_pipeline),
    };
    return cmocka_run_group_tests_name("tok", tests, NULL, NULL);
}
