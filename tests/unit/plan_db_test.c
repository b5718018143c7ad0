/* plan_db_test.c - `calsweep plan --db` against a real store: a sweep is submitted, one of its
 * jobs receives a result, and plan (run as a child process) reports that job as cached for the same
 * sweep file and for another sweep sharing the baseline, while leaving the database untouched. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_expand.h"
#include "cs_store.h"
#include "cs_sweep.h"
#include "cs_test.h"

typedef struct fixture {
    char dir[64];
    char db[128];
} fixture;

/* Runs calsweep with args; returns its stdout (owned) and exit status. */
static char *run_plan(const char *args, int *status)
{
    const char *build = getenv("CS_BUILD_DIR");
    char cmd[1024];
    cs_buf out = {0};
    char chunk[4096];
    size_t n;
    FILE *p;
    assert_non_null(build);
    snprintf(cmd, sizeof(cmd), "'%s/coordinator/calsweep' plan %s 2>&1", build, args);
    p = popen(cmd, "r");
    assert_non_null(p);
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
        assert_int_equal(cs_buf_append(&out, chunk, n), CS_OK);
    }
    *status = pclose(p);
    if (!out.data) {
        assert_int_equal(cs_buf_puts(&out, ""), CS_OK);
    }
    return cs_buf_take(&out);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    cs_store *st = NULL;
    cs_sweep *s = NULL;
    cs_expander *e = NULL;
    cs_sweep_meta meta;
    cs_store_submit_counts counts;
    cs_store_caps caps = {.worker = "w1", .native = true, .mem_mb = -1, .gpus = 0};
    cs_store_claim claim;
    cs_err err = {0};
    cs_rc rc;

    if (!f) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/cs-plan-db-XXXXXX");
    if (!mkdtemp(f->dir)) {
        return -1;
    }
    snprintf(f->db, sizeof(f->db), "%s/calsweep.db", f->dir);
    rc = cs_store_open(f->db, &st, &err);
    if (rc == CS_OK) {
        rc = cs_sweep_load("tests/data/sweeps/product.json", &s, NULL, &err);
    }
    if (rc == CS_OK) {
        rc = cs_expand_create(s, NULL, &e, &err);
    }
    if (rc == CS_OK) {
        cs_sweep_get_meta(s, &meta);
        rc = cs_store_submit(st, &meta, cs_expand_next, e, false, 1000, &counts, &err);
    }
    /* The first job claimed receives a result: its key is now cached for every sweep. */
    if (rc == CS_OK) {
        memset(&claim, 0, sizeof(claim));
        rc = cs_store_claim_job(st, &caps, 60000, 2000, &claim, &err);
    }
    if (rc == CS_OK) {
        rc = cs_store_result(st, claim.job_id, claim.attempt, caps.worker, claim.lease_token,
                             "{\"metrics\":{}}", NULL, 0, NULL, 3000, NULL, &err);
        cs_store_claim_fini(&claim);
    }
    if (rc != CS_OK) {
        fprintf(stderr, "plan_db_test setup: %s\n", err.msg);
    }
    cs_expand_destroy(e);
    cs_sweep_destroy(s);
    cs_store_close(st);
    *state = f;
    return rc == CS_OK ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char path[256];
    static const char *const names[] = {"calsweep.db", "calsweep.db-wal", "calsweep.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void test_plan_counts_cached(void **state)
{
    fixture *f = *state;
    char args[512];
    struct stat before, after;
    int status = 0;
    char *out;

    assert_int_equal(stat(f->db, &before), 0);
    snprintf(args, sizeof(args), "--db '%s' tests/data/sweeps/product.json", f->db);
    out = run_plan(args, &status);
    assert_int_equal(status, 0);
    if (!strstr(out, "cached: 1 of 9 (in ")) {
        fail_msg("expected 1 of 9 cached in:\n%s", out);
    }
    free(out);
    snprintf(args, sizeof(args), "--json --db '%s' tests/data/sweeps/product.json", f->db);
    out = run_plan(args, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(out, "\"cached\":1,"));
    free(out);
    assert_int_equal(stat(f->db, &after), 0);
    assert_int_equal(before.st_size, after.st_size);
    assert_true(before.st_mtime == after.st_mtime);
}

/* The first job stored is the shared baseline: another sweep with the same model and eval suite
 * finds it cached too. */
static void test_baseline_cached_for_other_sweeps(void **state)
{
    fixture *f = *state;
    char args[512];
    int status = 0;
    char *out;
    snprintf(args, sizeof(args), "--db '%s' tests/data/sweeps/seeds.json", f->db);
    out = run_plan(args, &status);
    assert_int_equal(status, 0);
    if (!strstr(out, "cached: 1 of 5 (in ")) {
        fail_msg("expected 1 of 5 cached in:\n%s", out);
    }
    free(out);
}

static void test_plan_refuses_a_non_database(void **state)
{
    int status = 0;
    char *out =
            run_plan("--db tests/data/sweeps/product.json tests/data/sweeps/product.json", &status);
    (void)state;
    assert_int_not_equal(status, 0);
    assert_non_null(strstr(out, "calsweep plan: --db tests/data/sweeps/product.json: "));
    free(out);
}

int main(void)
{
    const char *src = getenv("CS_SOURCE_DIR");
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_plan_counts_cached, setup, teardown),
            cmocka_unit_test_setup_teardown(test_baseline_cached_for_other_sweeps, setup, teardown),
            cmocka_unit_test(test_plan_refuses_a_non_database),
    };
    if (!src || chdir(src) != 0) {
        fprintf(stderr, "plan_db_test: CS_SOURCE_DIR must name the source tree\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
