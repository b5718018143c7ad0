/* canon_fuzz.c - libFuzzer target for cs_json_parse and cs_canon: arbitrary bytes in; when they
 * parse, the canonical text must re-parse, canonicalise to the same text (idempotence), and hash
 * the same; anything else abort()s, so the fuzzer checks a property and not only crashes.
 *
 * A text cs_canon_is_canonical accepts must parse and canonicalise to itself.
 *
 * Each input goes through both parsers: cJSON directly (which lets duplicate keys, invalid UTF-8
 * and infinities reach cs_canon, exercising its refusals) and cs_json_parse (with its positions,
 * pre-scan and tree checks). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_canon.h"
#include "cs_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *a, const char *b)
{
    fprintf(stderr, "canon_fuzz: %s\n  first:  %s\n  second: %s\n", what, a ? a : "(null)",
            b ? b : "(null)");
    abort();
}

/* The property on one parsed tree. */
static void check_tree(const cJSON *t)
{
    char *c1 = NULL, *c2 = NULL;
    size_t len1 = 0;
    cJSON *back = NULL;
    cs_err err = {0};
    char h1[CS_SHA256_HEX_LEN + 1], h2[CS_SHA256_HEX_LEN + 1];
    cs_rc rc = cs_canon_string(t, &c1, &len1, &err);
    if (rc != CS_OK) {
        /* Only the documented refusals are allowed, with a message. */
        if ((rc != CS_EINVAL && rc != CS_ERANGE && rc != CS_ENOMEM) || !err.msg[0]) {
            fail("unexpected canon error", err.msg, cs_rc_name(rc));
        }
        return;
    }
    if (strlen(c1) != len1) {
        fail("canonical text has an embedded NUL", c1, NULL);
    }
    rc = cs_json_parse(c1, len1, "canonical", &back, &err);
    if (rc == CS_EPARSE && strstr(err.msg, "nested deeper than") != NULL) {
        /* cJSON builds trees deeper than the reader's bound (CS_LIMIT_JSON_DEPTH): their text
         * is refused on the way back in, by design. */
        free(c1);
        return;
    }
    if (rc != CS_OK) {
        fail("canonical text does not re-parse", c1, err.msg);
    }
    if (cs_canon_string(back, &c2, NULL, &err) != CS_OK) {
        fail("re-parsed canonical text does not canonicalise", c1, err.msg);
    }
    if (strcmp(c1, c2) != 0) {
        fail("canonicalisation is not idempotent", c1, c2);
    }
    if (cs_canon_hash(t, "fuzz", h1, &err) != CS_OK || cs_canon_hash(back, "fuzz", h2, &err) != 0 ||
        strcmp(h1, h2) != 0) {
        fail("hashes differ", h1, h2);
    }
    cJSON_Delete(back);
    free(c1);
    free(c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *t = NULL;
    cs_err err = {0};
    cs_rc rc;
    if (size > 65536) {
        return 0;
    }
    t = cJSON_ParseWithLength((const char *)data, size);
    if (t) {
        check_tree(t);
        cJSON_Delete(t);
    }
    rc = cs_json_parse((const char *)data, size, "fuzz.json", &t, &err);
    if (rc == CS_OK) {
        check_tree(t);
        cJSON_Delete(t);
    } else if (rc != CS_EPARSE && rc != CS_ENOMEM) {
        fail("unexpected parse error", err.msg, cs_rc_name(rc));
    } else if (strncmp(err.msg, "fuzz.json", 9) != 0) {
        fail("parse error does not name the input", err.msg, NULL);
    }
    /* The scanner never calls a text canonical that is not what cs_canon makes of it. */
    if (cs_canon_is_canonical((const char *)data, size)) {
        char *c = NULL;
        char *copy = malloc(size + 1);
        if (!copy) {
            return 0;
        }
        memcpy(copy, data, size);
        copy[size] = '\0';
        if (cs_json_parse(copy, size, "canonical", &t, &err) != CS_OK) {
            fail("a text the scanner calls canonical does not parse", copy, err.msg);
        }
        if (cs_canon_string(t, &c, NULL, &err) != CS_OK || strcmp(c, copy) != 0) {
            fail("a text the scanner calls canonical is not", copy, c);
        }
        free(c);
        free(copy);
        cJSON_Delete(t);
    }
    return 0;
}
