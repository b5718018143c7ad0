/* sweep_fuzz.c - libFuzzer target for the sweep parser and the expander: arbitrary bytes in. A
 * refused input must come with at least one error diagnostic and a message; an accepted one must
 * expand (or be refused with a message) into cells whose configs are canonical JSON and whose
 * counts add up. Anything else abort()s, so the fuzzer checks properties, not only crashes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_canon.h"
#include "cs_expand.h"
#include "cs_json.h"
#include "cs_sweep.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "sweep_fuzz: %s: %s\n", what, detail ? detail : "(null)");
    abort();
}

static void check_expansion(const cs_sweep *s)
{
    cs_expand_opts o = {.max_jobs = 5000};
    cs_expander *e = NULL;
    cs_expand_counts c;
    cs_err err = {0};
    cs_cell cell;
    size_t n = 0;
    cs_rc rc = cs_expand_create(s, &o, &e, &err);
    if (rc != CS_OK) {
        if ((rc != CS_EINVAL && rc != CS_ETOOBIG && rc != CS_ENOMEM) || !err.msg[0]) {
            fail("unexpected expand refusal", err.msg);
        }
        return;
    }
    while ((rc = cs_expand_next(e, &cell, &err)) == CS_OK) {
        cJSON *t = cJSON_Parse(cell.config);
        char *canon = NULL;
        cs_err e2 = {0};
        if (!t || cs_canon_string(t, &canon, NULL, &e2) != CS_OK || strcmp(canon, cell.config)) {
            fail("config not canonical", cell.config);
        }
        if (strlen(cell.key) != CS_SHA256_HEX_LEN) {
            fail("bad key", cell.key);
        }
        free(canon);
        cJSON_Delete(t);
        n++;
    }
    if (rc != CS_ENOENT) {
        fail("stream failed", err.msg);
    }
    cs_expand_get_counts(e, &c);
    if (!c.done || c.emitted != n || n > c.upper || n == 0) {
        fail("counts do not add up", "");
    }
    cs_expand_destroy(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_diags d;
    cs_sweep *s = NULL;
    cs_err err = {0};
    cs_rc rc;

    cs_diags_init(&d);
    rc = cs_sweep_parse((const char *)data, size, "fuzz", &s, &d, &err);
    if (rc == CS_OK) {
        if (!s || d.n_errors != 0) {
            fail("accepted with errors", err.msg);
        }
        check_expansion(s);
    } else if (rc != CS_ENOMEM && (s || d.n_errors == 0 || !err.msg[0])) {
        fail("refused without an error diagnostic", err.msg);
    }
    cs_sweep_destroy(s);
    cs_diags_fini(&d);
    return 0;
}
