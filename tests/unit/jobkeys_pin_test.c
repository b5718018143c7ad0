/* jobkeys_pin_test.c - the job keys of every sweep the repository ships, pinned.
 *
 * A job's key is the SHA-256 of its resolved config (and the engine version), and a database finds
 * its finished jobs by key: a refactoring that changes one default, one name or one byte of the
 * canonical config silently turns every stored result of that job into a stranger. This test
 * expands each shipped sweep (sweeps/, tests/data/sweeps*) and compares the stream of keys, in
 * order, with tests/data/jobkeys.txt. Sweeps of more than 400 jobs are pinned by count and digest.
 *
 * The file was written by the code before the step-9 refactoring; regenerate it only for a change
 * meant to change keys (CS_JOBKEYS_WRITE=1 rewrites it), and say so in the commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_expand.h"
#include "cs_path.h"
#include "cs_sweep.h"
#include "cs_test.h"

#define PIN_FILE      "tests/data/jobkeys.txt"
#define FULL_LIST_MAX 400

static const char *const sweep_dirs[] = {"sweeps", "tests/data/sweeps", "tests/data/sweeps-e2e",
                                         "tests/data/sweeps-ctl"};

typedef struct text {
    char *p;
    size_t len, cap;
} text;

static void text_add(text *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        assert_non_null(t->p);
    }
    memcpy(t->p + t->len, s, n + 1);
    t->len += n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends the pin lines of one sweep file: "# path N" then one key per line ("B:" for baselines),
 * or "# path N sha256:HEX" for a large sweep (the digest of its key lines). */
static void pin_sweep(const char *path, text *out)
{
    cs_sweep *s = NULL;
    cs_expander *e = NULL;
    cs_err err = {0};
    cs_cell cell;
    text keys = {0};
    size_t n = 0;
    cs_rc rc;
    char line[600];

    rc = cs_sweep_load(path, &s, NULL, &err);
    if (rc != CS_OK) {
        print_error("%s: %s\n", path, err.msg);
    }
    assert_int_equal(rc, CS_OK);
    assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_OK);
    while ((rc = cs_expand_next(e, &cell, &err)) == CS_OK) {
        snprintf(line, sizeof(line), "%s%s\n", cell.baseline ? "B:" : "", cell.key);
        text_add(&keys, line);
        n++;
    }
    assert_int_equal(rc, CS_ENOENT);
    cs_expand_destroy(e);
    cs_sweep_destroy(s);

    if (n > FULL_LIST_MAX) {
        char hex[CS_SHA256_HEX_LEN + 1];
        assert_int_equal(cs_sha256_hex(keys.p, keys.len, hex, &err), CS_OK);
        snprintf(line, sizeof(line), "# %s %zu sha256:%s\n", path, n, hex);
        text_add(out, line);
    } else {
        snprintf(line, sizeof(line), "# %s %zu\n", path, n);
        text_add(out, line);
        text_add(out, keys.p ? keys.p : "");
    }
    free(keys.p);
}

static void pin_all(text *out)
{
    for (size_t d = 0; d < sizeof(sweep_dirs) / sizeof(sweep_dirs[0]); d++) {
        DIR *dir = opendir(sweep_dirs[d]);
        struct dirent *ent;
        char **names = NULL;
        size_t n = 0;
        assert_non_null(dir);
        while ((ent = readdir(dir)) != NULL) {
            size_t len = strlen(ent->d_name);
            if (len > 5 && strcmp(ent->d_name + len - 5, ".json") == 0) {
                names = realloc(names, (n + 1) * sizeof(*names));
                assert_non_null(names);
                names[n++] = cs_strdup(ent->d_name);
            }
        }
        closedir(dir);
        qsort(names, n, sizeof(*names), cmp_str);
        for (size_t i = 0; i < n; i++) {
            char path[512];
            snprintf(path, sizeof(path), "%s/%s", sweep_dirs[d], names[i]);
            pin_sweep(path, out);
            free(names[i]);
        }
        free(names);
    }
}

/* The first line where a and b differ, 1-based; 0 when equal. */
static size_t first_diff_line(const char *a, const char *b, const char **at_a, const char **at_b)
{
    size_t line = 1;
    const char *la = a, *lb = b;
    for (; *a && *a == *b; a++, b++) {
        if (*a == '\n') {
            line++;
            la = a + 1;
            lb = b + 1;
        }
    }
    *at_a = la;
    *at_b = lb;
    return *a == *b ? 0 : line;
}

static void test_shipped_sweep_keys_unchanged(void **state)
{
    text got = {0};
    char *want = NULL;
    size_t want_len = 0;
    cs_err err = {0};
    (void)state;

    pin_all(&got);
    if (getenv("CS_JOBKEYS_WRITE") && strcmp(getenv("CS_JOBKEYS_WRITE"), "1") == 0) {
        FILE *f = fopen(PIN_FILE, "w");
        assert_non_null(f);
        assert_int_equal(fwrite(got.p, 1, got.len, f), got.len);
        assert_int_equal(fclose(f), 0);
        print_message("# wrote %s (%zu bytes)\n", PIN_FILE, got.len);
    }
    assert_int_equal(cs_path_read_file(PIN_FILE, 16u << 20, &want, &want_len, &err), CS_OK);
    {
        const char *at_got, *at_want;
        size_t line = first_diff_line(got.p, want, &at_got, &at_want);
        if (line != 0) {
            print_error("job keys differ from %s at line %zu:\n  pinned: %.80s\n  now:    %.80s\n"
                        "(a change that alters a job's resolved config changes its key, and stored"
                        " results are no longer found)\n",
                        PIN_FILE, line, at_want, at_got);
        }
        assert_int_equal(line, 0);
    }
    free(want);
    free(got.p);
}

/* The test can fail: one changed byte of a sweep's resolved config changes its keys. */
static void test_pin_detects_a_changed_default(void **state)
{
    static const char a[] = "# x 1\nB:aaaa\nbbbb\n";
    static const char b[] = "# x 1\nB:aaaa\nbbbc\n";
    const char *pa, *pb;
    (void)state;
    assert_int_equal(first_diff_line(a, b, &pa, &pb), 3);
    assert_int_equal(first_diff_line(a, a, &pa, &pb), 0);
}

int main(void)
{
    const char *src = getenv("CS_SOURCE_DIR");
    if (!src || chdir(src) != 0) {
        fprintf(stderr, "jobkeys_pin_test: CS_SOURCE_DIR must name the source tree\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_shipped_sweep_keys_unchanged),
            cmocka_unit_test(test_pin_detects_a_changed_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
