/* jobspec_test.c - the typed job spec (common/cs_jobspec.h) against the expander's fast path: for
 * every cell of every sweep the repository ships (the sweeps of tests/unit/jobkeys_pin_test.c),
 * parsing its config into a cs_jobspec and writing it back with cs_jobspec_write gives the config
 * byte for byte, so what the runner reads is exactly what the key was computed over. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_expand.h"
#include "cs_jobspec.h"
#include "cs_sweep.h"
#include "cs_test.h"

static const char *const sweep_dirs[] = {"sweeps", "tests/data/sweeps", "tests/data/sweeps-e2e",
                                         "tests/data/sweeps-ctl"};

/* Every cell of the sweep at path; returns the number of configs checked. */
static size_t check_sweep(const char *path)
{
    cs_sweep *s = NULL;
    cs_expander *e = NULL;
    cs_err err = {0};
    cs_cell cell;
    size_t n = 0;
    cs_rc rc;
    cs_buf b;

    cs_buf_init(&b);
    if (cs_sweep_load(path, &s, NULL, &err) != CS_OK) {
        fail_msg("%s: %s", path, err.msg);
    }
    assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_OK);
    while ((rc = cs_expand_next(e, &cell, &err)) == CS_OK) {
        cs_jobspec js;
        if (cs_jobspec_parse(cell.config, strlen(cell.config), path, &js, &err) != CS_OK) {
            fail_msg("%s: the runner refuses a cell: %s\n%s", path, err.msg, cell.config);
        }
        b.len = 0;
        assert_int_equal(cs_jobspec_write(&js, &b, &err), CS_OK);
        if (strcmp(b.data, cell.config) != 0) {
            fail_msg("%s: written back\n%s\nexpanded\n%s", path, b.data, cell.config);
        }
        cs_jobspec_fini(&js);
        n++;
    }
    assert_int_equal(rc, CS_ENOENT);
    cs_expand_destroy(e);
    cs_sweep_destroy(s);
    cs_buf_fini(&b);
    return n;
}

static void test_shipped_cells_round_trip(void **state)
{
    size_t n_sweeps = 0, n_cells = 0;
    (void)state;
    for (size_t d = 0; d < sizeof(sweep_dirs) / sizeof(sweep_dirs[0]); d++) {
        DIR *dir = opendir(sweep_dirs[d]);
        struct dirent *ent;
        assert_non_null(dir);
        while ((ent = readdir(dir)) != NULL) {
            size_t len = strlen(ent->d_name);
            char path[512];
            if (len > 5 && strcmp(ent->d_name + len - 5, ".json") == 0) {
                snprintf(path, sizeof(path), "%s/%s", sweep_dirs[d], ent->d_name);
                n_cells += check_sweep(path);
                n_sweeps++;
            }
        }
        closedir(dir);
    }
    print_message("# %zu cells of %zu sweeps: parse -> write gives the config byte for byte\n",
                  n_cells, n_sweeps);
    assert_true(n_sweeps >= 5 && n_cells >= 100);
}

/* Fail-fast parsing names the field, as the sweep validator would. */
static void test_errors_name_the_path(void **state)
{
    static const struct {
        const char *json, *want;
    } bad[] = {
            {"{\"algorithm\":\"gptq\"}", "(root): missing required key \"model\""},
            {"{\"model\":{\"folder\":\"m\"},\"algorithm\":{\"name\":\"gptq\",\"bits\":9}}",
             "algorithm.bits: expected an integer in 2..8, got 9"},
            {"{\"model\":{\"folder\":\"m\"},\"algorithm\":\"gptq\",\"calibration\":{\"selector\":"
             "{\"name\":\"zipcal\",\"cap\":3},\"source\":null}}",
             "calibration.selector.cap: unknown key"},
            {"{\"model\":{\"folder\":\"m\"},\"algorithm\":{\"name\":\"awq\",\"sym\":true}}",
             "algorithm.sym: unknown key"},
            {"{\"model\":{\"folder\":\"m\"},\"algorithm\":{\"name\":\"gptq\",\"trajectory\":\"fp\"}"
             "}",
             "algorithm.trajectory: unknown key"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cs_jobspec js;
        cs_err err = {0};
        assert_int_equal(cs_jobspec_parse(bad[i].json, strlen(bad[i].json), "job.json", &js, &err),
                         CS_ESCHEMA);
        if (!strstr(err.msg, bad[i].want)) {
            fail_msg("%s: got \"%s\", want \"%s\"", bad[i].json, err.msg, bad[i].want);
        }
    }
}

int main(void)
{
    const char *src = getenv("CS_SOURCE_DIR");
    if (!src || chdir(src) != 0) {
        fprintf(stderr, "jobspec_test: CS_SOURCE_DIR must name the source tree\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_shipped_cells_round_trip),
            cmocka_unit_test(test_errors_name_the_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
