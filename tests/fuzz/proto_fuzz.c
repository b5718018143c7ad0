/* proto_fuzz.c - libFuzzer target for the protocol codec (common/cs_proto.h): arbitrary bytes go
 * to cs_msg_decode. A refusal must carry one of the documented codes and a message. A message that
 * decodes must encode (the encoder accepts whatever the decoder produced), the encoding must
 * decode again, and re-encoding that must give the same text byte for byte; anything else
 * abort()s, so the fuzzer checks a property and not only crashes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *a, const char *b)
{
    fprintf(stderr, "proto_fuzz: %s\n  first:  %s\n  second: %s\n", what, a ? a : "(null)",
            b ? b : "(null)");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_msg m, back;
    cs_err err = {0};
    char *t1 = NULL, *t2 = NULL;
    size_t n1 = 0, n2 = 0;
    cs_rc rc;
    if (size > 65536) {
        return 0;
    }
    rc = cs_msg_decode(data, size, &m, &err);
    if (rc != CS_OK) {
        if ((rc != CS_EPARSE && rc != CS_EPROTO && rc != CS_EVERSION && rc != CS_ENOMEM) ||
            err.rc != rc || !err.msg[0]) {
            fail("unexpected decode error", cs_rc_name(rc), err.msg);
        }
        if (m.type != CS_MSG_NONE) {
            fail("message not zeroed after a refusal", err.msg, NULL);
        }
        return 0;
    }
    if (cs_msg_encode(&m, &t1, &n1, &err) != CS_OK) {
        fail("a decoded message does not encode", err.msg, NULL);
    }
    if (strlen(t1) != n1) {
        fail("encoding has an embedded NUL", t1, NULL);
    }
    if (cs_msg_decode(t1, n1, &back, &err) != CS_OK) {
        fail("an encoded message does not decode", t1, err.msg);
    }
    if (back.type != m.type) {
        fail("the type changed", cs_msg_type_name(m.type), cs_msg_type_name(back.type));
    }
    if (cs_msg_encode(&back, &t2, &n2, &err) != CS_OK) {
        fail("a re-decoded message does not encode", t1, err.msg);
    }
    if (n1 != n2 || strcmp(t1, t2) != 0) {
        fail("the round trip changed the message", t1, t2);
    }
    cs_msg_fini(&m);
    cs_msg_fini(&back);
    free(t1);
    free(t2);
    return 0;
}
