/* plot_fixture.c - writes the database of `calsweep plot`'s CLI test (tests/cli/plot_files.sh):
 * sweep "plotfx" through the store API, every job done with known numbers (those of
 * tests/unit/plot_test.c's fixture): model m, eval e; the baseline (t1 0.80, t2 0.60); gptq w4
 * for selectors random and kmeans at n_samples 16 and 32, seq_len 64 and 128, seeds 0..2, both
 * tasks 0.70 / 0.50 plus 0.01 for n_samples 32, 0.02 for seq_len 128, 0.03 for kmeans and
 * 0.01 x (seed - 1); zipcal with seed 0 at seq_len 64; and an RTN row (no selector, n_samples or
 * seq_len: 0.65 / 0.45).
 *
 * usage: plot_fixture DB (DB must not exist). Exit 0 when written. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cs_canon.h"
#include "cs_store.h"
#include "unit/store_synth.h"

#define NOW 1700000000000LL

typedef struct cells {
    char axes[64][200];
    char key[CS_SHA256_HEX_LEN + 1];
    size_t n, i;
} cells;

static void add(cells *c, const char *axes)
{
    snprintf(c->axes[c->n++], sizeof(c->axes[0]), "%s", axes);
}

static cs_rc next_cell(void *ctx, cs_cell *out, cs_err *err)
{
    cells *c = ctx;
    const char *a;
    if (c->i == c->n) {
        return CS_ENOENT;
    }
    a = c->axes[c->i];
    if (cs_sha256_hex(a, strlen(a), c->key, err) != CS_OK) {
        return CS_EINTERNAL;
    }
    memset(out, 0, sizeof(*out));
    out->key = c->key;
    out->config = a; /* the axes stand for the config: each cell's is distinct */
    out->axes = a;
    out->baseline = c->i == 0;
    c->i++;
    return CS_OK;
}

static void make_cells(cells *c)
{
    char axes[200];
    add(c, "{\"algorithm\":{\"name\":\"none\"},\"eval\":\"e\",\"model\":\"m\",\"n_samples\":null,"
           "\"selector\":null,\"seed\":null,\"seq_len\":null}");
    for (int sel = 0; sel < 3; sel++) {
        for (int n = 16; n <= 32; n += 16) {
            for (int len = 64; len <= (sel == 2 ? 64 : 128); len += 64) {
                for (int seed = 0; seed < (sel == 2 ? 1 : 3); seed++) {
                    snprintf(axes, sizeof(axes),
                             "{\"algorithm\":{\"bits\":4,\"name\":\"gptq\"},\"eval\":\"e\","
                             "\"model\":\"m\",\"n_samples\":%d,\"selector\":\"%s\",\"seed\":%d,"
                             "\"seq_len\":%d}",
                             n,
                             sel == 0   ? "random"
                             : sel == 1 ? "kmeans"
                                        : "zipcal",
                             seed, len);
                    add(c, axes);
                }
            }
        }
    }
    add(c, "{\"algorithm\":{\"bits\":4,\"name\":\"rtn\"},\"eval\":\"e\",\"model\":\"m\","
           "\"n_samples\":null,\"selector\":null,\"seed\":0,\"seq_len\":null}");
}

/* Both tasks' accuracy of the job with these axes. */
static void numbers(const char *axes, double *t1, double *t2)
{
    cJSON *a = cJSON_Parse(axes);
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(a, "algorithm"), "name");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(a, "n_samples");
    const cJSON *len = cJSON_GetObjectItemCaseSensitive(a, "seq_len");
    const cJSON *sel = cJSON_GetObjectItemCaseSensitive(a, "selector");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(a, "seed");
    double d;
    if (strcmp(alg->valuestring, "none") == 0) {
        *t1 = 0.80;
        *t2 = 0.60;
    } else if (strcmp(alg->valuestring, "rtn") == 0) {
        *t1 = 0.65;
        *t2 = 0.45;
    } else {
        d = (n->valuedouble == 32 ? 0.01 : 0) + (len->valuedouble == 128 ? 0.02 : 0) +
            (strcmp(sel->valuestring, "kmeans") == 0 ? 0.03 : 0) + 0.01 * (seed->valuedouble - 1);
        *t1 = 0.70 + d;
        *t2 = 0.50 + d;
    }
    cJSON_Delete(a);
}

int main(int argc, char **argv)
{
    static cells c;
    cs_store *s = NULL;
    cs_err err = {0};
    cs_sweep_meta m = cs_synth_meta("plotfx");
    cs_store_submit_counts counts;
    cs_store_caps caps = {.worker = "w1",
                          .instance = "00112233445566778899aabbccddeeff",
                          .host = "h",
                          .native = true,
                          .mem_mb = -1};
    cs_store_claim cl = {0};
    size_t done = 0;
    cs_rc rc;
    if (argc != 2) {
        fprintf(stderr, "usage: plot_fixture DB\n");
        return 2;
    }
    make_cells(&c);
    rc = cs_store_open(argv[1], &s, &err);
    rc = rc == CS_OK ? cs_store_submit(s, &m, next_cell, &c, false, NOW, &counts, &err) : rc;
    while (rc == CS_OK) {
        cs_store_metric mt[2] = {{"t1", "acc", 0, NAN, 100}, {"t2", "acc", 0, NAN, 100}};
        rc = cs_store_claim_job(s, &caps, 60000, NOW, &cl, &err);
        if (rc == CS_ENOENT) {
            rc = CS_OK;
            break;
        }
        if (rc == CS_OK) {
            numbers(cl.config, &mt[0].value, &mt[1].value);
            rc = cs_store_result(s, cl.job_id, cl.attempt, "w1", cl.lease_token, "{\"version\":1}",
                                 mt, 2, NULL, NOW + 1, NULL, &err);
            done++;
        }
        cs_store_claim_fini(&cl);
    }
    cs_store_close(s);
    if (rc != CS_OK || done != c.n) {
        fprintf(stderr, "plot_fixture: %s: %s (%zu of %zu jobs done)\n", argv[1], err.msg, done,
                c.n);
        return 1;
    }
    return 0;
}
