/* store_crash_test.c - crash safety of submit: a child process inserting a 20,000-job sweep is
 * killed with SIGKILL at random moments (22 times); after each kill the database must pass
 * PRAGMA integrity_check and foreign_key_check and hold each sweep either whole or not at all.
 *
 * The child is store_crash_child, found at $CS_BUILD_DIR/tests/ (set by meson). The first run is
 * not killed: it measures how long an insert takes, and the kills are spread uniformly over
 * 0..1.2 times that (the seed is printed, so a failure replays).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cs_store_testing.h"
#include "cs_test.h"
#include "cs_time.h"

#define CELLS      20000 /* large enough for an insert of ~0.3 s, small enough under ASan */
#define KILLS      22
#define SEED       20240501u
#define CS_STR2(x) #x
#define CS_STR(x)  CS_STR2(x)

typedef struct crash_env {
    char child[512];
    char dir[64];
    char db[128];
} crash_env;

/* Starts the child; returns its pid and the read end of its stdout in *fd. */
static pid_t spawn(crash_env *e, const char *name, int *fd)
{
    int p[2];
    pid_t pid;
    char cells[16], name_buf[32];
    snprintf(cells, sizeof(cells), "%d", CELLS);
    snprintf(name_buf, sizeof(name_buf), "%s", name);
    if (pipe(p) != 0) {
        fail_msg("pipe: %s", strerror(errno));
    }
    pid = fork();
    if (pid < 0) {
        fail_msg("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        char *const argv[] = {e->child, e->db, name_buf, cells, NULL};
        dup2(p[1], STDOUT_FILENO);
        close(p[0]);
        close(p[1]);
        execv(e->child, argv);
        _exit(127);
    }
    close(p[1]);
    *fd = p[0];
    return pid;
}

static char read_byte(int fd)
{
    char c = 0;
    ssize_t n;
    do {
        n = read(fd, &c, 1);
    } while (n < 0 && errno == EINTR);
    return n == 1 ? c : 0;
}

static int64_t q_int(sqlite3 *db, const char *sql, const char *arg)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("prepare %s: %s", sql, sqlite3_errmsg(db));
    }
    if (arg) {
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

/* Opens the database as the coordinator would after a crash and checks it. Returns the number of
 * jobs of sweep `name` (0 or CELLS). */
static int64_t check_db(const crash_env *e, const char *name)
{
    cs_store *s = NULL;
    cs_err err = {0};
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    int64_t jobs, sweeps;
    if (cs_store_open(e->db, &s, &err) != CS_OK) {
        fail_msg("reopen after kill: %s", err.msg);
    }
    db = cs_store_test_db(s);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sweeps = q_int(db, "SELECT count(*) FROM sweep WHERE name = ?1", name);
    jobs = q_int(db,
                 "SELECT count(*) FROM job j JOIN sweep s ON s.id = j.sweep_id WHERE s.name = ?1",
                 name);
    /* Whole or nothing, and no job without its sweep anywhere. */
    assert_true((sweeps == 0 && jobs == 0) || (sweeps == 1 && jobs == CELLS));
    assert_int_equal(q_int(db,
                           "SELECT count(*) FROM job WHERE sweep_id NOT IN (SELECT id FROM "
                           "sweep)",
                           NULL),
                     0);
    assert_int_equal(q_int(db,
                           "SELECT count(*) FROM sweep s WHERE (SELECT count(*) FROM job j "
                           "WHERE j.sweep_id = s.id) <> " CS_STR(CELLS),
                           NULL),
                     0);
    cs_store_close(s);
    return jobs;
}

static void test_kill_during_submit(void **state)
{
    crash_env e;
    const char *build = getenv("CS_BUILD_DIR");
    cs_rng rng;
    int fd, status, whole = 0, none = 0;
    int64_t t0, t_insert;
    pid_t pid;
    char name[32];
    (void)state;

    if (!build) {
        fail_msg("CS_BUILD_DIR is not set (run through meson test)");
    }
    snprintf(e.child, sizeof(e.child), "%s/tests/store_crash_child", build);
    snprintf(e.dir, sizeof(e.dir), "/tmp/cs_store_crash.XXXXXX");
    assert_non_null(mkdtemp(e.dir));
    snprintf(e.db, sizeof(e.db), "%s/db.sqlite", e.dir);
    cs_rng_seed(&rng, SEED);
    printf("# seed %u, %d cells, %d kills\n", SEED, CELLS, KILLS);

    /* Calibration run, not killed. */
    pid = spawn(&e, "calibrate", &fd);
    assert_int_equal(read_byte(fd), 'R');
    t0 = cs_time_mono_ms();
    assert_int_equal(read_byte(fd), 'D');
    t_insert = cs_time_mono_ms() - t0;
    close(fd);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(check_db(&e, "calibrate"), CELLS);
    printf("# one insert takes %lld ms\n", (long long)t_insert);

    for (int i = 0; i < KILLS; i++) {
        int64_t delay_us = (int64_t)(cs_rng_uniform(&rng) * 1.2 * (double)t_insert * 1000.0);
        struct timespec ts = {(time_t)(delay_us / 1000000), (long)(delay_us % 1000000) * 1000};
        int64_t jobs;
        snprintf(name, sizeof(name), "crash-%d", i);
        pid = spawn(&e, name, &fd);
        assert_int_equal(read_byte(fd), 'R');
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        close(fd);
        jobs = check_db(&e, name);
        if (jobs == CELLS) {
            whole++;
        } else {
            none++;
        }
        printf("# kill %d after %.1f ms: %s\n", i, (double)delay_us / 1000.0,
               jobs ? "whole sweep" : "nothing");
    }
    printf("# %d kills: %d whole, %d nothing\n", KILLS, whole, none);
    assert_int_equal(whole + none, KILLS);
    assert_true(none >= 1); /* some kills did land inside the transaction */
    {
        char p[160];
        unlink(e.db);
        snprintf(p, sizeof(p), "%s-wal", e.db);
        unlink(p);
        snprintf(p, sizeof(p), "%s-shm", e.db);
        unlink(p);
        rmdir(e.dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_kill_during_submit),
    };
    return CS_RUN_TESTS(tests);
}
