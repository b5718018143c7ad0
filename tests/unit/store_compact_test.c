/* store_compact_test.c - the compact job rows of schema version 2 (0002_fragments.sql): every
 * reader gets back exactly the config and axes text that was submitted (the `job` view, the C
 * accessors, claims, read-only handles), whatever its shape; a version-1 database converts with
 * every job, result, metric, attempt and event intact; the fragment cache survives rollbacks;
 * keys stay unique in a sweep without an index, for unique and for repeating streams. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_migrations.h"
#include "cs_store_testing.h"
#include "cs_test.h"
#include "store_synth.h"

#define T0 1700000000000LL

typedef struct fixture {
    char dir[64];
    char path[96];
    cs_store *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/cs_store_compact.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/db.sqlite", f->dir);
    *state = f;
    return 0;
}

static void remove_db(const char *path)
{
    char p[256];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
}

static int teardown(void **state)
{
    fixture *f = *state;
    cs_store_close(f->s);
    remove_db(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static cs_store *open_store(fixture *f)
{
    cs_err err = {0};
    if (cs_store_open(f->path, &f->s, &err) != CS_OK) {
        fail_msg("open: %s", err.msg);
    }
    return f->s;
}

static int64_t q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fail_msg("%s: %s", sql, msg);
    }
}

/* Every row of a query, each column quote()d, as one string (owned). */
static char *dump(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    cs_buf b = {0};
    int src;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
    }
    cs_buf_puts(&b, "");
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const char *t = (const char *)sqlite3_column_text(st, i);
            cs_buf_printf(&b, "%s%s", i ? "|" : "", t ? t : "NULL");
        }
        cs_buf_putc(&b, '\n');
    }
    assert_int_equal(src, SQLITE_DONE);
    sqlite3_finalize(st);
    return cs_buf_take(&b);
}

/* ---- exact texts ----------------------------------------------------------------------------- */

/* A stream over lists of configs and axes (keys: the index in hex). */
typedef struct text_cells {
    const char *const *configs;
    const char *const *axes;
    size_t n, i, first;
    bool unique;
    char key[65];
} text_cells;

static cs_rc text_next(void *ctx, cs_cell *out, cs_err *err)
{
    text_cells *l = ctx;
    (void)err;
    if (l->i >= l->n) {
        return CS_ENOENT;
    }
    memset(out, 0, sizeof(*out));
    snprintf(l->key, sizeof(l->key), "%064zx", l->first + l->i + 1);
    out->key = l->key;
    out->config = l->configs[l->i];
    out->axes = l->axes[l->i];
    out->unique = l->unique;
    l->i++;
    return CS_OK;
}

static char many_members[4096];

static const char *const tricky_configs[] = {
        "{\"algorithm\":{\"bits\":4,\"name\":\"gptq\"},\"model\":{\"folder\":\"m\"},\"seed\":1}",
        "{\"algorithm\":{\"bits\":4,\"name\":\"gptq\"},\"model\":{\"folder\":\"m\"},\"seed\":2}",
        "{\"algorithm\":{\"bits\":3,\"name\":\"gptq\"},\"model\":{\"folder\":\"m\"},\"seed\":2}",
        "{}",
        "{ }",
        "{ \"model\" : {\"folder\":\"w\"} ,\n\t\"seed\" : 3 }",
        "{\"s\":\"a,b}{\\\"\\\\\",\"t\":\"\\u00e9\\n\",\"u\":[1,[2,{\"v\":\"]\"}]]}",
        "[1,2]",
        "42",
        "\"a string\"",
        "{\"model\":{\"folder\":\"m\"},\"x\":1.5e-7,\"y\":-0,\"z\":true,\"n\":null}",
        many_members, /* more members than a job splits: kept whole */
};
static const char *const tricky_axes[] = {
        "{\"algorithm\":{\"bits\":4,\"name\":\"gptq\"},\"seed\":1}",
        "{\"algorithm\":{\"bits\":4,\"name\":\"gptq\"},\"seed\":2}",
        "{\"algorithm\":{\"bits\":3,\"name\":\"gptq\"},\"seed\":2}",
        "{}",
        "{\"seed\":null}",
        "{ \"seed\" : 3 }",
        "{\"s\":\"a,b}{\"}",
        "{}",
        "[]",
        "{\"a\":\"\"}",
        "{\"seed\":1}",
        "{\"seed\":1,\"x\":[]}",
};
#define N_TRICKY (sizeof(tricky_configs) / sizeof(tricky_configs[0]))

static void fill_many_members(void)
{
    size_t o = 0;
    o += (size_t)snprintf(many_members + o, sizeof(many_members) - o, "{");
    for (int i = 0; i < 70; i++) {
        o += (size_t)snprintf(many_members + o, sizeof(many_members) - o, "%s\"m%02d\":%d",
                              i ? "," : "", i, i);
    }
    snprintf(many_members + o, sizeof(many_members) - o, "}");
}

static void test_exact_texts(void **state)
{
    fixture *f = *state;
    cs_store *s = open_store(f), *ro = NULL;
    text_cells l = {.configs = tricky_configs, .axes = tricky_axes, .n = N_TRICKY};
    cs_sweep_meta m = cs_synth_meta("tricky");
    cs_store_submit_counts c;
    cs_store_caps caps = {.native = true, .exec = true, .mem_mb = -1};
    cs_store_job j;
    cs_store_claim cl;
    cs_err err = {0};
    sqlite3_stmt *st = NULL;
    size_t i = 0;

    fill_many_members();
    assert_int_equal(cs_store_submit(s, &m, text_next, &l, false, T0, &c, &err), CS_OK);
    assert_int_equal(c.inserted, N_TRICKY);
    /* The view, as sqlite3 users and the control API read it. */
    assert_int_equal(sqlite3_prepare_v2(cs_store_test_db(s),
                                        "SELECT config, axes FROM job ORDER BY id", -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        assert_string_equal((const char *)sqlite3_column_text(st, 0), tricky_configs[i]);
        assert_string_equal((const char *)sqlite3_column_text(st, 1), tricky_axes[i]);
        i++;
    }
    sqlite3_finalize(st);
    assert_int_equal(i, N_TRICKY);
    /* Only what fragments cannot hold is kept whole: the five configs that are not an object a
     * job splits ("{ }", an array, a number, a string, 70 members) and the axes "[]". */
    assert_int_equal(q_int(cs_store_test_db(s),
                           "SELECT count(*) FROM job_row WHERE config_raw IS NOT "
                           "NULL"),
                     5);
    assert_int_equal(q_int(cs_store_test_db(s),
                           "SELECT count(*) FROM job_row WHERE axes_raw IS NOT "
                           "NULL"),
                     1);
    /* Members shared by the cells are stored once. */
    assert_int_equal(q_int(cs_store_test_db(s), "SELECT count(*) FROM fragment WHERE text = "
                                                "'\"model\":{\"folder\":\"m\"}'"),
                     1);
    /* The C accessors, on the writer and on a read-only handle. */
    assert_int_equal(cs_store_open_ro(f->path, &ro, &err), CS_OK);
    for (i = 0; i < N_TRICKY; i++) {
        for (int h = 0; h < 2; h++) {
            assert_int_equal(cs_store_job_get(h ? ro : s, (int64_t)i + 1, &j, &err), CS_OK);
            assert_string_equal(j.config, tricky_configs[i]);
            assert_string_equal(j.axes, tricky_axes[i]);
            cs_store_job_fini(&j);
        }
    }
    cs_store_close(ro);
    /* Claims hand out the exact text, one job per worker. */
    for (i = 0; i <= N_TRICKY; i++) {
        char w[16];
        snprintf(w, sizeof(w), "w%zu", i);
        caps.worker = w;
        assert_int_equal(cs_store_claim_job(s, &caps, 60000, T0, &cl, &err),
                         i < N_TRICKY ? CS_OK : CS_ENOENT);
        if (i < N_TRICKY) {
            assert_int_equal(cl.job_id, (int64_t)i + 1);
            assert_string_equal(cl.config, tricky_configs[i]);
            cs_store_claim_fini(&cl);
        }
    }
    /* A malformed member is refused with the place named; nothing of that sweep stays. */
    {
        static const char *const bad_cfg[] = {"{\"a\":1}", "{\"a\":1,\"b\":tru}"};
        static const char *const bad_axes[] = {"{}", "{}"};
        text_cells b = {.configs = bad_cfg, .axes = bad_axes, .n = 2, .first = 100};
        m.name = "bad";
        assert_int_equal(cs_store_submit(s, &m, text_next, &b, false, T0, &c, &err), CS_EINVAL);
        assert_non_null(strstr(err.msg, "cell 2"));
        assert_non_null(strstr(err.msg, "malformed JSON"));
        assert_non_null(strstr(err.msg, "\"b\":tru"));
        assert_int_equal(
                q_int(cs_store_test_db(s), "SELECT count(*) FROM sweep WHERE name = 'bad'"), 0);
    }
}

/* ---- migration from version 1 ------------------------------------------------------------ */

/* The version-1 columns of job, for dumps before and after. */
#define V1_JOB_COLS                                                                               \
    "id, sweep_id, key, config, axes, baseline, state, state_at, state_why, priority, attempt, "  \
    "max_attempts, worker, lease_until, heartbeat_at, not_before, cancel_requested, last_error, " \
    "progress, result_id, req_model, req_backend, req_mem_mb, req_gpus, created"

static const char *const v1_tables[] = {
        "SELECT " V1_JOB_COLS " FROM job ORDER BY id",
        "SELECT * FROM sweep ORDER BY id",
        "SELECT id, job_id, n, worker, host, started, ended, exit_status, signal, log_path, "
        "outcome,"
        " error FROM attempt ORDER BY id",
        "SELECT * FROM result ORDER BY id",
        "SELECT * FROM metric ORDER BY result_id, task, metric",
        "SELECT * FROM job_event ORDER BY id",
        "SELECT id, host, capabilities, first_seen, last_seen FROM worker ORDER BY id",
        "SELECT * FROM result_cache ORDER BY key",
};
#define N_V1_TABLES (sizeof(v1_tables) / sizeof(v1_tables[0]))

static void make_v1_db(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    char key[65];
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    exec(db, "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; BEGIN");
    exec(db, cs_store_migrations[0]);
    exec(db,
         "INSERT INTO sweep (id, name, spec, spec_hash, max_attempts, backoff_base_ms,"
         " backoff_max_ms, created, updated) VALUES (1, 'old', '{}', 'h', 3, 1000, 60000, 1, 1),"
         " (2, 'other', '{}', 'h2', 2, 0, 0, 2, 2)");
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "INSERT INTO job (id, sweep_id, key, config, axes, "
                                        "baseline, state, state_at, state_why, priority, attempt,"
                                        " max_attempts, worker, lease_until, req_model, "
                                        "req_backend, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                                        "?7, 10, 'why', 0, ?8, 3, ?9, ?10, ?11, 'native', 5)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    for (size_t i = 0; i < N_TRICKY; i++) {
        /* A mix of states; job 2 done (a result below), job 3 running. */
        static const char *const states[] = {"queued", "done", "running", "failed"};
        const char *state = i < 4 ? states[i] : "queued";
        snprintf(key, sizeof(key), "%064zx", i + 1);
        sqlite3_bind_int64(st, 1, (int64_t)i + 1);
        sqlite3_bind_int64(st, 2, i < 10 ? 1 : 2);
        sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, tricky_configs[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, tricky_axes[i], -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 6, i == 3);
        sqlite3_bind_text(st, 7, state, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 8, i == 1 || i == 2 || i == 3);
        if (i == 1 || i == 2) {
            sqlite3_bind_text(st, 9, "w-old", -1, SQLITE_STATIC);
        } else {
            sqlite3_bind_null(st, 9);
        }
        if (i == 2) {
            sqlite3_bind_int64(st, 10, T0 + 1000000);
        } else {
            sqlite3_bind_null(st, 10);
        }
        sqlite3_bind_text(st, 11, i == 6 ? NULL : "m", -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_DONE);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec(db, "INSERT INTO attempt (job_id, n, worker, host, started, ended, outcome) VALUES"
             " (2, 1, 'w-old', 'h', 20, 30, 'done'), (3, 1, 'w-old', 'h', 40, NULL, NULL),"
             " (4, 1, 'w-old', NULL, 50, 60, 'failed')");
    exec(db, "INSERT INTO result (id, job_id, attempt, json, created) VALUES"
             " (1, 2, 1, '{\"metrics\":{\"a\":{\"acc\":0.5}}}', 30)");
    exec(db, "UPDATE job SET result_id = 1 WHERE id = 2");
    exec(db, "INSERT INTO metric VALUES (1, 2, 'a', 'acc', 0.5, 0.01, 100),"
             " (1, 2, 'ppl:x', 'ppl', 12.5, NULL, NULL)");
    exec(db, "INSERT INTO result_cache VALUES ('" /* job 2's key */
             "0000000000000000000000000000000000000000000000000000000000000002', 1, 30)");
    exec(db, "INSERT INTO worker VALUES ('w-old', 'h', '{\"gpus\":0}', 1, 60)");
    exec(db, "INSERT INTO job_event (time, sweep_id, to_state, why) VALUES (1, 1, 'active', 's')");
    exec(db, "UPDATE job SET state = 'lost', state_at = 70, state_why = 'test' WHERE id = 5");
    exec(db, "PRAGMA user_version = 1; COMMIT");
    sqlite3_close(db);
}

static void test_migrate_v1(void **state)
{
    fixture *f = *state;
    char *before[N_V1_TABLES];
    sqlite3 *db = NULL;
    cs_store *s;
    cs_store_caps caps = {.worker = "w-new", .native = true, .mem_mb = -1};
    cs_store_claim cl;
    cs_store_job j;
    cs_err err = {0};
    bool dup = true;

    fill_many_members();
    make_v1_db(f->path);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    for (size_t i = 0; i < N_V1_TABLES; i++) {
        before[i] = dump(db, v1_tables[i]);
    }
    assert_int_equal(q_int(db, "SELECT count(*) FROM job"), N_TRICKY);
    sqlite3_close(db);

    /* A read-only open refuses the old schema; the writer migrates it. */
    assert_int_equal(cs_store_open_ro(f->path, &s, &err), CS_EVERSION);
    s = open_store(f);
    db = cs_store_test_db(s);
    assert_int_equal(q_int(db, "PRAGMA user_version"), cs_store_schema_version());
    assert_true(cs_store_schema_version() >= 2);
    for (size_t i = 0; i < N_V1_TABLES; i++) {
        char *after = dump(db, v1_tables[i]);
        if (strcmp(after, before[i]) != 0) {
            fail_msg("%s differs after the migration:\nbefore:\n%s\nafter:\n%s", v1_tables[i],
                     before[i], after);
        }
        free(after);
        free(before[i]);
    }
    assert_int_equal(q_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM pragma_integrity_check WHERE "
                               "integrity_check <> 'ok'"),
                     0);
    assert_int_equal(q_int(db, "PRAGMA foreign_keys"), 1);
    /* The converted rows are compact where the text allowed it. */
    assert_int_equal(q_int(db, "SELECT count(*) FROM job_row WHERE id = 1 AND config_raw IS NULL "
                               "AND cfg = '[1,2,3]'"),
                     1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM job_row WHERE id = 11 AND config_raw IS NOT "
                               "NULL"),
                     1); /* 1.5e-7 and -0 are not SQLite's spelling: kept whole */

    /* The store works on it. Sweep 1 has a job running (w-old's), so fair sharing gives w-new
     * the first queued job of sweep 2 (11, a config kept whole), and then w-new2 the oldest
     * queued job (1); its result goes through the trigger and the cache. */
    assert_int_equal(cs_store_claim_job(s, &caps, 60000, T0, &cl, &err), CS_OK);
    assert_int_equal(cl.job_id, 11);
    assert_string_equal(cl.config, tricky_configs[10]);
    cs_store_claim_fini(&cl);
    caps.worker = "w-new2";
    assert_int_equal(cs_store_claim_job(s, &caps, 60000, T0, &cl, &err), CS_OK);
    assert_int_equal(cl.job_id, 1);
    assert_string_equal(cl.config, tricky_configs[0]);
    assert_int_equal(cs_store_result(s, cl.job_id, cl.attempt, caps.worker, cl.lease_token,
                                     "{\"ok\":1}", NULL, 0, NULL, T0, &dup, &err),
                     CS_OK);
    cs_store_claim_fini(&cl);
    assert_int_equal(q_int(db, "SELECT count(*) FROM job_event WHERE job_id = 1 AND "
                               "to_state = 'done'"),
                     1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM result_cache"), 2);
    assert_int_equal(cs_store_job_get(s, 11, &j, &err), CS_OK);
    assert_string_equal(j.config, tricky_configs[10]);
    cs_store_job_fini(&j);
    /* Job 3 is still running under w-old's lease, which has no lease token (schema version 3
     * added them): no report can name it, so nobody can report for it; the lease runs out. */
    assert_int_equal(q_int(db, "SELECT count(*) FROM attempt WHERE lease_token IS NULL"), 3);
    assert_int_equal(cs_store_lease_check(s, 3, 1, "w-old", "0123456789abcdef0123456789abcdef",
                                          "result", &err),
                     CS_ESTALE);
    assert_int_equal(cs_store_lease_check(s, 3, 1, "w-old", NULL, "result", &err), CS_ESTALE);
    assert_int_equal(q_int(db, "SELECT count(*) FROM job WHERE id = 3 AND state = 'running'"), 1);

    /* Hand edits through the view, as sqlite3 users make them: plain columns only. */
    exec(db, "UPDATE job SET state = 'failed', state_at = 99 WHERE id = 6");
    assert_int_equal(q_int(db, "SELECT count(*) FROM job_event WHERE job_id = 6 AND "
                               "to_state = 'failed' AND time = 99"),
                     1);
    assert_int_not_equal(
            sqlite3_exec(db, "UPDATE job SET config = '{}' WHERE id = 6", NULL, NULL, NULL),
            SQLITE_OK);
    assert_non_null(strstr(sqlite3_errmsg(db), "cannot be changed"));
    assert_int_equal(cs_store_job_get(s, 6, &j, &err), CS_OK);
    assert_string_equal(j.config, tricky_configs[5]);
    assert_int_equal(j.state, CS_JOB_FAILED);
    cs_store_job_fini(&j);

    /* Reopened, it is not migrated again. */
    cs_store_close(s);
    f->s = NULL;
    s = open_store(f);
    assert_int_equal(q_int(cs_store_test_db(s), "SELECT count(*) FROM job"), N_TRICKY);
}

/* ---- the fragment cache and rollbacks ------------------------------------------------------ */

/* The configs of sweep `name` read back through the view equal what a synth stream gives. */
static void configs_are(cs_store *s, const char *name, size_t first, size_t n, int variant)
{
    sqlite3_stmt *st = NULL;
    cs_synth g;
    cs_cell c;
    cs_err err = {0};
    size_t k = 0;
    cs_synth_init(&g, first, n);
    g.variant = variant;
    assert_int_equal(sqlite3_prepare_v2(cs_store_test_db(s),
                                        "SELECT j.config, j.key, j.id FROM job j JOIN sweep s ON "
                                        "s.id = j.sweep_id WHERE s.name = ?1 ORDER BY j.id",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    while (sqlite3_step(st) == SQLITE_ROW) {
        cs_store_job j;
        assert_int_equal(cs_synth_next(&g, &c, &err), CS_OK);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), c.config);
        assert_string_equal((const char *)sqlite3_column_text(st, 1), c.key);
        assert_int_equal(cs_store_job_get(s, sqlite3_column_int64(st, 2), &j, &err), CS_OK);
        assert_string_equal(j.config, c.config);
        cs_store_job_fini(&j);
        k++;
    }
    sqlite3_finalize(st);
    assert_int_equal(k, n);
}

static void test_fragments_after_rollback(void **state)
{
    fixture *f = *state;
    cs_store *s = open_store(f);
    cs_sweep_meta m = cs_synth_meta("a");
    cs_synth g;
    cs_err err = {0};

    /* A submit that fails after it stored new fragments: they are rolled back with it. */
    cs_synth_init(&g, 0, 300);
    g.variant = 1;
    g.fail_at = 250;
    assert_int_equal(cs_store_submit(s, &m, cs_synth_next, &g, false, T0, NULL, &err), CS_EIO);
    assert_int_equal(q_int(cs_store_test_db(s), "SELECT count(*) FROM fragment"), 0);
    /* The same cells again must store them again (not take ids the cache remembered). */
    cs_synth_init(&g, 0, 200);
    g.variant = 1;
    assert_int_equal(cs_store_submit(s, &m, cs_synth_next, &g, false, T0, NULL, &err), CS_OK);
    configs_are(s, "a", 0, 200, 1);

    /* In a batch: b commits, c fails inside it (its savepoint is undone), d reuses c's cells. */
    assert_int_equal(cs_store_begin(s, &err), CS_OK);
    cs_synth_init(&g, 1000, 100);
    g.variant = 2;
    m.name = "b";
    assert_int_equal(cs_store_submit(s, &m, cs_synth_next, &g, false, T0, NULL, &err), CS_OK);
    cs_synth_init(&g, 2000, 100);
    g.variant = 3;
    g.fail_at = 90;
    m.name = "c";
    assert_int_equal(cs_store_submit(s, &m, cs_synth_next, &g, false, T0, NULL, &err), CS_EIO);
    cs_synth_init(&g, 2000, 80);
    g.variant = 3;
    m.name = "d";
    assert_int_equal(cs_store_submit(s, &m, cs_synth_next, &g, false, T0, NULL, &err), CS_OK);
    assert_int_equal(cs_store_commit(s, &err), CS_OK);
    configs_are(s, "b", 1000, 100, 2);
    configs_are(s, "d", 2000, 80, 3);

    /* A whole batch rolled back, then its cells again outside a batch. */
    assert_int_equal(cs_store_begin(s, &err), CS_OK);
    cs_synth_init(&g, 3000, 50);
    g.variant = 4;
    m.name = "e";
    assert_int_equal(cs_store_submit(s, &m, cs_synth_next, &g, false, T0, NULL, &err), CS_OK);
    cs_store_rollback(s);
    cs_synth_init(&g, 3000, 50);
    g.variant = 4;
    assert_int_equal(cs_store_submit(s, &m, cs_synth_next, &g, false, T0, NULL, &err), CS_OK);
    configs_are(s, "e", 3000, 50, 4);
    assert_int_equal(q_int(cs_store_test_db(s), "SELECT count(*) FROM pragma_foreign_key_check"),
                     0);
}

/* ---- uniqueness without an index ----------------------------------------------------------- */

/* A synth stream whose cells before unique_until say that they are unique (true: without
 * dup_every a synth stream has no repeats, and with it the repeats come after unique_until). */
typedef struct unique_synth {
    cs_synth g;
    size_t unique_until; /* cells before this index say unique */
} unique_synth;

static cs_rc unique_next(void *ctx, cs_cell *out, cs_err *err)
{
    unique_synth *u = ctx;
    size_t i = u->g.i;
    cs_rc rc = cs_synth_next(&u->g, out, err);
    if (rc == CS_OK) {
        out->unique = i < u->unique_until;
    }
    return rc;
}

static void test_keys_unique_without_index(void **state)
{
    fixture *f = *state;
    cs_store *s = open_store(f);
    cs_sweep_meta m = cs_synth_meta("u");
    cs_store_submit_counts c;
    unique_synth u;
    cs_err err = {0};
    int64_t sid;

    /* A unique stream: no check needed, all inserted. */
    cs_synth_init(&u.g, 0, 500);
    u.unique_until = SIZE_MAX;
    assert_int_equal(cs_store_submit(s, &m, unique_next, &u, false, T0, &c, &err), CS_OK);
    assert_int_equal(c.inserted, 500);
    sid = c.sweep_id;
    /* Extending with a unique stream that overlaps: the stored keys are found. */
    cs_synth_init(&u.g, 400, 300);
    assert_int_equal(cs_store_extend(s, sid, NULL, unique_next, &u, false, T0, &c, &err), CS_OK);
    assert_int_equal(c.existing, 100);
    assert_int_equal(c.inserted, 200);
    /* A stream unique at first, then repeating (dup_every): cell 25, the first not marked
     * unique, repeats cell 24, which was stored without a check; it is found all the same. */
    cs_synth_init(&u.g, 5000, 100);
    u.g.dup_every = 25;
    u.unique_until = 25;
    m.name = "mixed";
    assert_int_equal(cs_store_submit(s, &m, unique_next, &u, false, T0, &c, &err), CS_OK);
    assert_int_equal(c.cells, 100);
    assert_int_equal(c.existing, 3); /* cells 25, 50, 75 repeat their predecessors */
    assert_int_equal(c.inserted, 97);
    /* Never two jobs with one key in a sweep. */
    assert_int_equal(q_int(cs_store_test_db(s),
                           "SELECT count(*) FROM (SELECT sweep_id, key FROM "
                           "job_row GROUP BY sweep_id, key HAVING count(*) > 1)"),
                     0);
    assert_int_equal(q_int(cs_store_test_db(s), "SELECT count(*) FROM job_row WHERE sweep_id = 1"),
                     700);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
            T(test_exact_texts),
            T(test_migrate_v1),
            T(test_fragments_after_rollback),
            T(test_keys_unique_without_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
