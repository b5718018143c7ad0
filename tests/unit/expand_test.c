/* expand_test.c - grid expansion: the exact cells of hand-written sweeps
 * (tests/data/sweeps/NAME.json against NAME.cells), job keys (canonical, order- and
 * whitespace-blind, sensitive to every value), shared baselines, refusals with counts, and a larger
 * stream. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_expand.h"
#include "cs_path.h"
#include "cs_sweep.h"
#include "cs_test.h"
#include "cs_version.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static cs_sweep *parse_ok(const char *text)
{
    cs_sweep *s = NULL;
    cs_diags d;
    cs_err err = {0};
    cs_rc rc;
    cs_diags_init(&d);
    rc = cs_sweep_parse(text, strlen(text), "inline", &s, &d, &err);
    if (rc != CS_OK) {
        cs_diags_print(&d, NULL, "inline", stderr);
    }
    assert_int_equal(rc, CS_OK);
    cs_diags_fini(&d);
    return s;
}

/* All keys of a sweep's stream, "B:" prefixed for baselines; owned array of owned strings. */
static char **stream_keys(const cs_sweep *s, size_t *n)
{
    cs_expander *e = NULL;
    cs_err err = {0};
    cs_cell cell;
    char **keys = NULL;
    size_t len = 0;
    cs_rc rc;
    assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_OK);
    while ((rc = cs_expand_next(e, &cell, &err)) == CS_OK) {
        char buf[80];
        keys = cs_realloc_array(keys, len + 1, sizeof(*keys));
        assert_non_null(keys);
        snprintf(buf, sizeof(buf), "%s%s", cell.baseline ? "B:" : "", cell.key);
        keys[len++] = cs_strdup(buf);
    }
    assert_int_equal(rc, CS_ENOENT);
    cs_expand_destroy(e);
    *n = len;
    return keys;
}

static void free_keys(char **k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(k[i]);
    }
    free(k);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- the hand-written sweeps --------------------------------------------------------------- */

/* The display line of a cell for the axes named in `axes` (space separated). */
static void cell_line(const cs_sweep *s, const cs_axis_value *const *vals, bool baseline,
                      char *const *axes, size_t n_axes, cs_buf *out)
{
    out->len = 0;
    if (out->data) {
        out->data[0] = '\0';
    }
    if (baseline) {
        assert_int_equal(cs_buf_puts(out, "B "), CS_OK);
    }
    for (size_t i = 0; i < n_axes; i++) {
        size_t a;
        for (a = 0; a < s->n_axes; a++) {
            if (strcmp(s->axes[a].name, axes[i]) == 0) {
                break;
            }
        }
        if (a == s->n_axes) {
            fail_msg("unknown axis %s in a .cells file", axes[i]);
        }
        assert_int_equal(cs_buf_printf(out, "%s%s", i ? " " : "", vals[a] ? vals[a]->text : "-"),
                         CS_OK);
    }
}

/* Checks the canonical form and the key of one cell independently of the expander. */
static void check_cell_identity(const cs_cell *cell)
{
    cs_err err = {0};
    cJSON *tree = cJSON_Parse(cell->config);
    char *canon = NULL, hex[CS_SHA256_HEX_LEN + 1];
    cs_buf b = {0};
    assert_non_null(tree);
    assert_int_equal(cs_canon_string(tree, &canon, NULL, &err), CS_OK);
    assert_string_equal(canon, cell->config);
    assert_int_equal(cs_buf_puts(&b, cell->config), CS_OK);
    assert_int_equal(cs_buf_puts(&b, CS_ENGINE_VERSION), CS_OK);
    assert_int_equal(cs_sha256_hex(b.data, b.len, hex, &err), CS_OK);
    assert_string_equal(hex, cell->key);
    if (cell->baseline) {
        const cJSON *alg = cJSON_GetObjectItemCaseSensitive(tree, "algorithm");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(alg, "name")->valuestring, "none");
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(tree, "calibration")));
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(tree, "seed")));
    }
    /* axes must be canonical too */
    cJSON_Delete(tree);
    free(canon);
    tree = cJSON_Parse(cell->axes);
    assert_non_null(tree);
    assert_int_equal(cs_canon_string(tree, &canon, NULL, &err), CS_OK);
    assert_string_equal(canon, cell->axes);
    cJSON_Delete(tree);
    free(canon);
    cs_buf_fini(&b);
}

static void run_cells_file(const char *name)
{
    char json_path[512], cells_path[512];
    char *text = NULL, *save = NULL, *line;
    char *axes[16];
    size_t n_axes = 0, n_expected = 0, want_dups = SIZE_MAX, got = 0;
    char *expected[256];
    cs_sweep *s = NULL;
    cs_diags d;
    cs_err err = {0};
    cs_expander *e = NULL;
    cs_expand_counts counts;
    cs_cell cell;
    cs_buf b = {0};
    char **keys = NULL;
    cs_rc rc;

    snprintf(json_path, sizeof(json_path), "tests/data/sweeps/%s.json", name);
    snprintf(cells_path, sizeof(cells_path), "tests/data/sweeps/%s.cells", name);
    assert_int_equal(cs_path_read_file(cells_path, 0, &text, NULL, &err), CS_OK);
    for (line = text; line && *line; line = save) {
        save = strchr(line, '\n');
        if (save) {
            *save++ = '\0';
        }
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        if (strncmp(line, "axes:", 5) == 0) {
            char *tok = line + 5;
            while (*tok && n_axes < 16) {
                char *sp;
                while (*tok == ' ') {
                    tok++;
                }
                if (!*tok) {
                    break;
                }
                axes[n_axes++] = tok;
                sp = strchr(tok, ' ');
                if (!sp) {
                    break;
                }
                *sp = '\0';
                tok = sp + 1;
            }
        } else if (strncmp(line, "duplicates:", 11) == 0) {
            want_dups = (size_t)strtoul(line + 11, NULL, 10);
        } else {
            assert_true(n_expected < 256);
            expected[n_expected++] = line;
        }
    }
    assert_true(n_axes > 0);

    cs_diags_init(&d);
    rc = cs_sweep_load(json_path, &s, &d, &err);
    if (rc != CS_OK || d.len != 0) {
        cs_diags_print(&d, NULL, json_path, stderr);
    }
    assert_int_equal(rc, CS_OK);
    assert_int_equal(d.len, 0); /* neither errors nor warnings */
    assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_OK);
    keys = cs_calloc_array(n_expected + 1, sizeof(*keys));
    assert_non_null(keys);
    while ((rc = cs_expand_next(e, &cell, &err)) == CS_OK) {
        /* a union of grids: the values are those of the current sub-grid's axes */
        cell_line(s->n_grids ? s->grids[cs_expand_current_grid(e)] : s, cs_expand_cell_values(e),
                  cell.baseline, axes, n_axes, &b);
        if (got >= n_expected) {
            fail_msg("%s: more cells than expected; extra cell %zu: %s", name, got + 1, b.data);
        }
        if (strcmp(b.data, expected[got]) != 0) {
            fail_msg("%s: cell %zu is '%s', expected '%s'", name, got + 1, b.data, expected[got]);
        }
        check_cell_identity(&cell);
        keys[got] = cs_strdup(cell.key);
        got++;
    }
    assert_int_equal(rc, CS_ENOENT);
    if (got != n_expected) {
        fail_msg("%s: %zu cells, expected %zu", name, got, n_expected);
    }
    /* A second expansion gives the same stream, in the same order (determinism). */
    {
        size_t n2 = 0;
        char **k2 = stream_keys(s, &n2);
        assert_int_equal(n2, got);
        for (size_t i = 0; i < n2; i++) {
            assert_string_equal(strncmp(k2[i], "B:", 2) == 0 ? k2[i] + 2 : k2[i], keys[i]);
        }
        free_keys(k2, n2);
    }
    /* Keys unique within the stream (naively, apart from the expander's hash set). */
    qsort(keys, got, sizeof(*keys), cmp_str);
    for (size_t i = 1; i < got; i++) {
        assert_string_not_equal(keys[i - 1], keys[i]);
    }
    cs_expand_get_counts(e, &counts);
    assert_true(counts.done);
    assert_int_equal(counts.emitted, got);
    assert_true(counts.emitted <= counts.upper);
    if (want_dups != SIZE_MAX) {
        assert_int_equal(counts.duplicates, want_dups);
    }
    free_keys(keys, got);
    cs_buf_fini(&b);
    cs_expand_destroy(e);
    cs_sweep_destroy(s);
    cs_diags_fini(&d);
    free(text);
}

static void test_hand_written_sweeps(void **state)
{
    DIR *dir = opendir("tests/data/sweeps");
    struct dirent *de;
    char *names[64];
    size_t n = 0;
    (void)state;
    assert_non_null(dir);
    while ((de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len > 5 && strcmp(de->d_name + len - 5, ".json") == 0 && n < 64) {
            names[n++] = cs_strndup(de->d_name, len - 5);
        }
    }
    closedir(dir);
    qsort(names, n, sizeof(*names), cmp_str);
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        print_message("# sweep %s\n", names[i]);
        run_cells_file(names[i]);
        free(names[i]);
    }
}

/* ---- keys ---------------------------------------------------------------------------------- */

static const char one_cell[] =
        "{\"name\":\"k\",\"models\":{\"m\":{\"folder\":\"tests/data\",\"arch\":\"llama\"}},"
        "\"data\":{\"sources\":{\"c4\":{\"kind\":\"jsonl\",\"path\":\"c4.jsonl\"}},"
        "\"eval\":{\"default\":{\"tasks\":{\"arc\":{\"path\":\"arc.jsonl\"}},\"limit\":100}}},"
        "\"grid\":{\"algorithm\":[{\"name\":\"gptq\",\"bits\":4,\"damp\":0.01}],"
        "\"n_samples\":[16],\"seq_len\":[128],\"seed\":[0],\"tag\":[\"x\"]}}";

static void test_key_ignores_order_and_whitespace(void **state)
{
    static const char shuffled[] =
            "{\n  \"grid\": {\"tag\": [\"x\"], \"seed\": [0],  \"seq_len\": [128],\n"
            "     \"n_samples\": [16.0], \"algorithm\": [{\"damp\": 1e-2, \"bits\": 4, \"name\": "
            "\"gptq\"}]},\n"
            "  \"data\": {\"eval\": {\"default\": {\"limit\": 100, \"tasks\": {\"arc\": "
            "{\"path\": \"arc.jsonl\"}}}},\n"
            "           \"sources\": {\"c4\": {\"path\": \"c4.jsonl\", \"kind\": \"jsonl\"}}},\n"
            "  \"models\": {\"m\": {\"arch\": \"llama\", \"folder\": \"tests/data\"}},\n"
            "  \"name\": \"other-name\"\n}\n";
    cs_sweep *a = parse_ok(one_cell), *b = parse_ok(shuffled);
    size_t na, nb;
    char **ka = stream_keys(a, &na), **kb = stream_keys(b, &nb);
    (void)state;
    assert_int_equal(na, 2); /* baseline + the cell */
    assert_int_equal(nb, 2);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(ka[i], kb[i]);
    }
    /* The sweep specs differ (names), the job keys do not. */
    assert_string_not_equal(a->spec_hash, b->spec_hash);
    free_keys(ka, na);
    free_keys(kb, nb);
    cs_sweep_destroy(a);
    cs_sweep_destroy(b);
}

/* Replaces the first occurrence of from by to in one_cell (owned). */
static char *mutate(const char *from, const char *to)
{
    const char *at = strstr(one_cell, from);
    cs_buf b = {0};
    assert_non_null(at);
    assert_int_equal(cs_buf_append(&b, one_cell, (size_t)(at - one_cell)), CS_OK);
    assert_int_equal(cs_buf_puts(&b, to), CS_OK);
    assert_int_equal(cs_buf_puts(&b, at + strlen(from)), CS_OK);
    return cs_buf_take(&b);
}

static void test_key_changes_with_any_value(void **state)
{
    static const struct {
        const char *from, *to;
        bool baseline_changes; /* model or eval changed */
    } muts[] = {
            {"\"bits\":4", "\"bits\":3", false},
            {"\"damp\":0.01", "\"damp\":0.02", false},
            {"\"name\":\"gptq\",\"bits\":4,\"damp\":0.01", "\"name\":\"awq\",\"bits\":4", false},
            {"\"n_samples\":[16]", "\"n_samples\":[17]", false},
            {"\"seq_len\":[128]", "\"seq_len\":[256]", false},
            {"\"seed\":[0]", "\"seed\":[1]", false},
            {"\"tag\":[\"x\"]", "\"tag\":[\"y\"]", false},
            {"\"path\":\"c4.jsonl\"", "\"path\":\"c4-v2.jsonl\"", false},
            {"\"kind\":\"jsonl\",", "\"kind\":\"jsonl\",\"text_field\":\"body\",", false},
            {"\"seed\":[0]", "\"seed\":[0],\"selector\":[\"zipcal\"]", false},
            {"\"folder\":\"tests/data\"", "\"folder\":\"tests/data/sweeps\"", true},
            {"\"arch\":\"llama\"", "\"arch\":\"qwen2\"", true},
            {"\"arch\":\"llama\"", "\"arch\":\"llama\",\"backend\":\"exec\"", true},
            {"\"limit\":100", "\"limit\":101", true},
            {"\"path\":\"arc.jsonl\"", "\"path\":\"arc2.jsonl\"", true},
    };
    cs_sweep *base = parse_ok(one_cell);
    size_t nb;
    char **kb = stream_keys(base, &nb);
    (void)state;
    assert_int_equal(nb, 2);
    assert_true(strncmp(kb[0], "B:", 2) == 0);
    for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
        char *text = mutate(muts[i].from, muts[i].to);
        cs_sweep *s = parse_ok(text);
        size_t n;
        char **k = stream_keys(s, &n);
        assert_int_equal(n, 2);
        if (strcmp(k[1], kb[1]) == 0) {
            fail_msg("mutation %zu (%s -> %s) kept the key", i, muts[i].from, muts[i].to);
        }
        if (muts[i].baseline_changes) {
            assert_string_not_equal(k[0], kb[0]);
        } else {
            assert_string_equal(k[0], kb[0]); /* the baseline is shared */
        }
        free_keys(k, n);
        cs_sweep_destroy(s);
        free(text);
    }
    free_keys(kb, nb);
    cs_sweep_destroy(base);
}

static void test_baseline_shared_across_sweeps(void **state)
{
    cs_sweep *a = NULL, *b = NULL;
    cs_err err = {0};
    size_t na, nb;
    char **ka, **kb;
    (void)state;
    assert_int_equal(cs_sweep_load("tests/data/sweeps/product.json", &a, NULL, &err), CS_OK);
    assert_int_equal(cs_sweep_load("tests/data/sweeps/seeds.json", &b, NULL, &err), CS_OK);
    ka = stream_keys(a, &na);
    kb = stream_keys(b, &nb);
    assert_true(strncmp(ka[0], "B:", 2) == 0);
    assert_string_equal(ka[0], kb[0]);
    assert_string_not_equal(a->spec_hash, b->spec_hash);
    free_keys(ka, na);
    free_keys(kb, nb);
    cs_sweep_destroy(a);
    cs_sweep_destroy(b);
}

/* ---- refusals and counts ------------------------------------------------------------------- */

static void test_zero_jobs_refused(void **state)
{
    char *text = mutate("\"tag\":[\"x\"]}", "\"tag\":[\"x\"]},\"exclude\":[{\"model\":\"*\"}]");
    cs_sweep *s = parse_ok(text);
    cs_expander *e = NULL;
    cs_err err = {0};
    (void)state;
    assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_EINVAL);
    assert_null(e);
    assert_non_null(strstr(err.msg, "0 jobs"));
    assert_non_null(strstr(err.msg, "the grid has 1 cells and exclude removes all 1"));
    cs_sweep_destroy(s);
    free(text);
}

static void test_limit_refused_with_counts(void **state)
{
    cs_sweep *s = NULL;
    cs_expander *e = NULL;
    cs_err err = {0};
    cs_expand_opts o = {.max_jobs = 8};
    (void)state;
    assert_int_equal(cs_sweep_load("tests/data/sweeps/product.json", &s, NULL, &err), CS_OK);
    assert_int_equal(cs_expand_create(s, &o, &e, &err), CS_ETOOBIG);
    assert_null(e);
    assert_non_null(strstr(err.msg, "up to 9 jobs (8 grid cells - 0 excluded + 0 included + 1 "
                                    "baselines), more than the limit of 8"));
    o.max_jobs = 9;
    assert_int_equal(cs_expand_create(s, &o, &e, &err), CS_OK);
    cs_expand_destroy(e);
    cs_sweep_destroy(s);
}

static void test_counts_before_streaming(void **state)
{
    cs_sweep *s = NULL;
    cs_expander *e = NULL;
    cs_err err = {0};
    cs_expand_counts c;
    cs_cell cell;
    (void)state;
    assert_int_equal(cs_sweep_load("tests/data/sweeps/exclude.json", &s, NULL, &err), CS_OK);
    assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_OK);
    cs_expand_get_counts(e, &c);
    assert_int_equal(c.product, 6);
    assert_int_equal(c.excluded, 3);
    assert_int_equal(c.baselines_max, 1);
    assert_int_equal(c.upper, 4);
    assert_int_equal(c.emitted, 0);
    assert_false(c.done);
    assert_null(cs_expand_cell_values(e));
    while (cs_expand_next(e, &cell, &err) == CS_OK) {
    }
    cs_expand_get_counts(e, &c);
    assert_true(c.done);
    assert_int_equal(c.emitted, 4);
    assert_int_equal(c.baselines, 1);
    /* After the end the stream stays ended. */
    assert_int_equal(cs_expand_next(e, &cell, &err), CS_ENOENT);
    cs_expand_destroy(e);
    cs_sweep_destroy(s);
}

/* 50,000 cells stream with bounded work per cell and no duplicates. */
static void test_large_stream(void **state)
{
    static const char text[] =
            "{\"name\":\"big\",\"models\":{\"m\":{\"folder\":\"tests/data\"}},"
            "\"data\":{\"sources\":{\"c4\":{\"kind\":\"jsonl\",\"path\":\"c4.jsonl\"}},"
            "\"eval\":{\"default\":{\"tasks\":{\"arc\":{\"path\":\"arc.jsonl\"}}}}},"
            "\"grid\":{\"algorithm\":[\"gptq\"],\"n_samples\":{\"range\":[1,50]},"
            "\"seq_len\":{\"range\":[10,1000],\"step\":10},\"seed\":{\"range\":[0,9]}},"
            "\"exclude\":[{\"n_samples\":1,\"seed\":0}]}";
    cs_sweep *s = parse_ok(text);
    cs_expander *e = NULL;
    cs_err err = {0};
    cs_expand_counts c;
    cs_cell cell;
    size_t n = 0;
    cs_rc rc;
    (void)state;
    assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_OK);
    while ((rc = cs_expand_next(e, &cell, &err)) == CS_OK) {
        n++;
    }
    assert_int_equal(rc, CS_ENOENT);
    cs_expand_get_counts(e, &c);
    assert_int_equal(c.product, 50000);
    assert_int_equal(c.excluded, 100);
    assert_int_equal(n, 50000 - 100 + 1);
    assert_int_equal(c.duplicates, 0);
    cs_expand_destroy(e);
    cs_sweep_destroy(s);
}

/* Grids far beyond the limit are refused from the counts alone, without walking them. */
static void test_huge_grids_refused(void **state)
{
    static const char big[] =
            "{\"name\":\"huge\",\"models\":{\"m\":{\"folder\":\"tests/data\"}},"
            "\"data\":{\"sources\":{\"c4\":{\"kind\":\"jsonl\",\"path\":\"c4.jsonl\"}},"
            "\"eval\":{\"default\":{\"tasks\":{\"arc\":{\"path\":\"arc.jsonl\"}}}}},"
            "\"grid\":{\"algorithm\":[\"gptq\"],\"n_samples\":{\"range\":[1,100000]},"
            "\"seed\":{\"range\":[0,99999]}";
    cs_buf b = {0};
    cs_sweep *s;
    cs_expander *e = NULL;
    cs_err err = {0};
    (void)state;
    assert_int_equal(cs_buf_puts(&b, big), CS_OK);
    assert_int_equal(cs_buf_puts(&b, "}}"), CS_OK);
    s = parse_ok(b.data);
    assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_ETOOBIG);
    assert_non_null(strstr(err.msg, "up to 10000000001 jobs (10000000000 grid cells - 0 excluded "
                                    "+ 0 included + 1 baselines), more than the limit of 1000000"));
    cs_sweep_destroy(s);
    /* Four such axes overflow a 64-bit count. */
    b.len = 0;
    assert_int_equal(cs_buf_puts(&b, big), CS_OK);
    assert_int_equal(
            cs_buf_puts(&b, ",\"a\":{\"range\":[1,100000]},\"b\":{\"range\":[1,100000]}}}"), CS_OK);
    s = parse_ok(b.data);
    assert_int_equal(cs_expand_create(s, NULL, &e, &err), CS_ETOOBIG);
    assert_non_null(strstr(err.msg, "the grid product overflows"));
    assert_null(e);
    cs_sweep_destroy(s);
    cs_buf_fini(&b);
}

int main(void)
{
    const char *src = getenv("CS_SOURCE_DIR");
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_hand_written_sweeps),
            cmocka_unit_test(test_key_ignores_order_and_whitespace),
            cmocka_unit_test(test_key_changes_with_any_value),
            cmocka_unit_test(test_baseline_shared_across_sweeps),
            cmocka_unit_test(test_zero_jobs_refused),
            cmocka_unit_test(test_limit_refused_with_counts),
            cmocka_unit_test(test_counts_before_streaming),
            cmocka_unit_test(test_large_stream),
            cmocka_unit_test(test_huge_grids_refused),
    };
    if (!src || chdir(src) != 0) {
        fprintf(stderr, "expand_test: CS_SOURCE_DIR must name the source tree\n");
        return 1;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
