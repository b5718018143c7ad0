/* store_synth.h - a synthetic cell stream for the store's tests, crash helper and benchmark.
 *
 * Cell i of a generator has a realistic job config (about 450 bytes of canonical JSON, shaped like
 * cs_expand's output) and key SHA-256(config): two generators that produce the same index with the
 * same model and variant produce the same key, so cached reuse across sweeps can be tested.
 */
#ifndef CS_TESTS_UNIT_STORE_SYNTH_H
#define CS_TESTS_UNIT_STORE_SYNTH_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cs_canon.h"
#include "cs_err.h"
#include "cs_plan.h"

typedef struct cs_synth {
    size_t first;        /* first cell index */
    size_t n;            /* cells to produce */
    size_t i;            /* cells produced so far */
    const char *model;   /* model folder; NULL "models/testbed" */
    bool exec;           /* exec backend instead of native */
    const char *backend; /* the model's backend as JSON text; NULL: by exec */
    int64_t mem_mb;      /* model requirement; 0 = none */
    int variant;         /* changes every key */
    size_t fail_at;      /* > 0: the stream fails with CS_EIO at this cell (1-based) */
    size_t dup_every;    /* > 0: every dup_every-th cell repeats the previous index */
    char key[CS_SHA256_HEX_LEN + 1];
    char config[768];
    char axes[256];
} cs_synth;

static inline void cs_synth_init(cs_synth *g, size_t first, size_t n)
{
    memset(g, 0, sizeof(*g));
    g->first = first;
    g->n = n;
}

/* A cs_cell_next_fn over a cs_synth. */
static inline cs_rc cs_synth_next(void *ctx, cs_cell *out, cs_err *err)
{
    static const char *const algos[] = {
            "{\"act_order\":true,\"bits\":4,\"damp\":0.01,\"group_size\":128,\"name\":\"gptq\"}",
            "{\"bits\":3,\"group_size\":128,\"grid\":20,\"name\":\"awq\"}",
            "{\"bits\":4,\"group_size\":32,\"name\":\"rtn\"}",
    };
    static const char *const selectors[] = {"random", "cola", "acdm", "zipcal"};
    cs_synth *g = ctx;
    size_t idx;
    const char *model = g->model ? g->model : "models/testbed";
    char req[64] = "";
    int w;

    if (g->i >= g->n) {
        return CS_ENOENT;
    }
    if (g->fail_at && g->i + 1 == g->fail_at) {
        return cs_err_set(err, CS_EIO, 0, "synthetic stream failure at cell %zu", g->fail_at);
    }
    idx = g->first + g->i;
    if (g->dup_every && g->i > 0 && g->i % g->dup_every == 0) {
        idx--;
    }
    g->i++;
    if (g->mem_mb > 0) {
        snprintf(req, sizeof(req), ",\"requires\":{\"mem_mb\":%lld}", (long long)g->mem_mb);
    }
    w = snprintf(g->config, sizeof(g->config),
                 "{\"algorithm\":%s,\"calibration\":{\"n_samples\":%zu,\"selector\":{\"name\":"
                 "\"%s\"},\"seq_len\":%zu,\"source\":{\"kind\":\"jsonl\",\"path\":"
                 "\"sweeps/testbed/corpora/general.jsonl\",\"text_field\":\"text\"}},"
                 "\"eval\":{\"limit\":200,\"perplexity\":{\"general\":{\"path\":"
                 "\"sweeps/testbed/corpora/general-test.txt\",\"seq_len\":256}},\"tasks\":{"
                 "\"arith\":{\"path\":\"sweeps/testbed/tasks/arith.jsonl\"}}},\"extra\":{},"
                 "\"model\":{\"arch\":\"llama\",\"backend\":%s,\"folder\":\"%s\"%s},"
                 "\"seed\":%zu,\"variant\":%d}",
                 algos[idx % 3], (size_t)16 << (idx / 3 % 5), selectors[idx / 15 % 4],
                 (size_t)64 << (idx / 60 % 3),
                 g->backend ? g->backend
                 : g->exec  ? "{\"exec\":\"run {job}\"}"
                            : "\"native\"",
                 model, req, idx / 180, g->variant);
    if (w < 0 || (size_t)w >= sizeof(g->config)) {
        return cs_err_set(err, CS_ETOOBIG, 0, "synthetic config too long");
    }
    snprintf(g->axes, sizeof(g->axes), "{\"i\":%zu,\"seed\":%zu}", idx, idx / 180);
    if (cs_sha256_hex(g->config, (size_t)w, g->key, err) != CS_OK) {
        return CS_EINTERNAL;
    }
    out->key = g->key;
    out->config = g->config;
    out->axes = g->axes;
    out->baseline = idx % 97 == 0;
    return CS_OK;
}

/* A sweep meta with the parser's default policy. */
static inline cs_sweep_meta cs_synth_meta(const char *name)
{
    cs_sweep_meta m;
    memset(&m, 0, sizeof(m));
    m.name = name;
    m.spec = "{\"synthetic\":true}";
    m.spec_hash = "0000000000000000000000000000000000000000000000000000000000000000";
    m.policy.max_attempts = 3;
    m.policy.backoff_base_s = 30;
    m.policy.backoff_max_s = 3600;
    return m;
}

#endif
