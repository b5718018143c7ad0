/* tokenizer_fuzz.c - libFuzzer target for the tokenizer.json loader (cs_tok_load_mem): arbitrary
 * bytes in. A load either succeeds or fails with a message and no tokenizer; what loads then
 * encodes a few short texts (fixed ones and the input's own tail) and must give ids inside the
 * vocab that decode without error; an encode error must be CS_EINVAL (invalid UTF-8) with a
 * message. Any broken property abort()s, so the fuzzer checks behaviour and not only crashes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "tokenizer_fuzz: %s: %s\n", what, detail ? detail : "");
    abort();
}

static void check_text(const cs_tok *tok, const char *text, size_t len)
{
    int32_t *ids = NULL;
    size_t n = 0, dlen = 0;
    char *dec = NULL;
    cs_err err = {0};
    cs_rc rc = cs_tok_encode(tok, text, len, CS_TOK_ADD_SPECIAL, &ids, &n, &err);
    if (rc != CS_OK) {
        if (rc != CS_EINVAL || !err.msg[0]) {
            fail("encode failed without a reason", err.msg);
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= cs_tok_vocab_size(tok) || !cs_tok_token(tok, ids[i])) {
            fail("id outside the vocab", text);
        }
    }
    if (cs_tok_decode(tok, ids, n, true, &dec, &dlen, &err) != CS_OK) {
        fail("decode of encoded ids failed", err.msg);
    }
    free(dec);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const texts[] = {"Hello world", "I'LL  be\n\nthere 12345!",
                                        "caf\xc3\xa9 \xe4\xbd\xa0", "<|endoftext|> \t x", ""};
    cs_tok *tok = NULL;
    cs_err err = {0};
    size_t tail;
    cs_rc rc = cs_tok_load_mem(&tok, (const char *)data, size, "fuzz", &err);
    if (rc != CS_OK) {
        if (tok || !err.msg[0] || err.rc != rc) {
            fail("load failed without a message, or left a tokenizer", err.msg);
        }
        return 0;
    }
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        check_text(tok, texts[i], strlen(texts[i]));
    }
    tail = size < 48 ? size : 48;
    check_text(tok, (const char *)data + size - tail, tail);
    cs_tok_destroy(tok);
    return 0;
}
