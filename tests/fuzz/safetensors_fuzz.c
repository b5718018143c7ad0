/* safetensors_fuzz.c - libFuzzer target for the safetensors header parser (cs_st_open_mem):
 * arbitrary bytes in. A parse either succeeds, and then every tensor lies inside the input with
 * numel * dtype size == nbytes and converts to f32 when its dtype is a float, or fails with a
 * message. Any broken property abort()s. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "safetensors_fuzz: %s: %s\n", what, detail ? detail : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_st *st = NULL;
    cs_err err = {0};
    cs_rc rc = cs_st_open_mem(&st, data, size, "fuzz", &err);
    if (rc != CS_OK) {
        if (st || !err.msg[0]) {
            fail("failed without a message or left an object", err.msg);
        }
        return 0;
    }
    for (size_t i = 0; i < cs_st_count(st); i++) {
        const cs_st_tensor *t = cs_st_at(st, i);
        const uint8_t *p = t->data;
        if (p < data || p + t->nbytes > data + size) {
            fail("tensor outside the input", t->name);
        }
        if (t->numel * cs_st_dtype_size(t->dtype) != t->nbytes) {
            fail("size mismatch", t->name);
        }
        if (cs_st_find(st, t->name) != t) {
            fail("find does not return the tensor", t->name);
        }
        if ((t->dtype == CS_ST_F32 || t->dtype == CS_ST_F16 || t->dtype == CS_ST_BF16) &&
            t->numel < (1u << 20)) {
            float *f = malloc(t->numel ? t->numel * sizeof(float) : 1);
            if (!f || cs_st_to_f32(t, f, &err) != CS_OK) {
                fail("conversion failed", err.msg);
            }
            free(f);
        }
    }
    cs_st_close(st);
    return 0;
}
