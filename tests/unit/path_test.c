/* path_test.c - cs_path: join, mkdir -p, XDG directories, bounded reads with named errors, and
 * atomic writes that keep the old file when the disk is "full" (RLIMIT_FSIZE in a child). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cs_path.h"
#include "cs_test.h"

typedef struct fixture {
    char dir[64];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/cs_path_test_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return 0;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        chmod(path, 0700);
        while (d && (e = readdir(d)) != NULL) {
            char sub[512];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_rf(sub);
        }
        if (d) {
            closedir(d);
        }
        return rmdir(path);
    }
    return unlink(path);
}

static int teardown(void **state)
{
    fixture *f = *state;
    rm_rf(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static void test_join(void **state)
{
    static const char *const cases[][3] = {
            {"a", "b", "a/b"},
            {"a/", "b", "a/b"},
            {"a//", "/b", "a/b"},
            {"/", "b", "/b"},
            {"", "b", "b"},
            {"a", "", "a"},
            {"/x/y", "z/w", "/x/y/z/w"},
            {"a", "/abs", "a/abs"},
            {"/", "/", "/"},
    };
    char *out = NULL;
    cs_err err = {0};
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(cs_path_join(cases[i][0], cases[i][1], &out, &err), CS_OK);
        assert_string_equal(out, cases[i][2]);
        free(out);
    }
    assert_int_equal(cs_path_join(NULL, "b", &out, &err), CS_EINVAL);
    assert_null(out);
}

static void test_mkdir_p(void **state)
{
    fixture *f = *state;
    char path[256], file[256];
    struct stat st;
    cs_err err = {0};
    snprintf(path, sizeof(path), "%s/a/b//c/", f->dir);
    assert_int_equal(cs_path_mkdir_p(path, 0750, &err), CS_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(cs_path_mkdir_p(path, 0750, &err), CS_OK); /* exists: fine */
    snprintf(file, sizeof(file), "%s/a/file", f->dir);
    write_file(file, "x");
    snprintf(path, sizeof(path), "%s/a/file/sub", f->dir);
    assert_int_equal(cs_path_mkdir_p(path, 0750, &err), CS_EEXIST);
    assert_non_null(strstr(err.msg, file));
    assert_int_equal(cs_path_mkdir_p("", 0700, &err), CS_EINVAL);
}

static void test_state_dir(void **state)
{
    fixture *f = *state;
    char want[256];
    char *out = NULL;
    char *old_xdg = getenv("XDG_STATE_HOME") ? strdup(getenv("XDG_STATE_HOME")) : NULL;
    char *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    struct stat st;
    cs_err err = {0};
    setenv("XDG_STATE_HOME", f->dir, 1);
    assert_int_equal(cs_path_state_dir(true, &out, &err), CS_OK);
    snprintf(want, sizeof(want), "%s/calsweep", f->dir);
    assert_string_equal(out, want);
    assert_int_equal(stat(out, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    free(out);
    /* relative XDG_STATE_HOME is ignored: HOME is used */
    setenv("XDG_STATE_HOME", "relative/dir", 1);
    setenv("HOME", f->dir, 1);
    assert_int_equal(cs_path_state_dir(false, &out, &err), CS_OK);
    snprintf(want, sizeof(want), "%s/.local/state/calsweep", f->dir);
    assert_string_equal(out, want);
    assert_int_not_equal(stat(out, &st), 0); /* create == false made nothing */
    free(out);
    unsetenv("XDG_STATE_HOME");
    assert_int_equal(cs_path_state_dir(true, &out, &err), CS_OK);
    assert_string_equal(out, want);
    assert_int_equal(stat(out, &st), 0);
    free(out);
    if (old_xdg) {
        setenv("XDG_STATE_HOME", old_xdg, 1);
    }
    if (old_home) {
        setenv("HOME", old_home, 1);
    } else {
        unsetenv("HOME");
    }
    free(old_xdg);
    free(old_home);
}

static void test_runtime_dir(void **state)
{
    fixture *f = *state;
    char want[256], lnk[256], base[128];
    char *out = NULL;
    char *old = getenv("XDG_RUNTIME_DIR") ? strdup(getenv("XDG_RUNTIME_DIR")) : NULL;
    struct stat st;
    cs_err err = {0};
    snprintf(base, sizeof(base), "%s/run", f->dir);
    assert_int_equal(mkdir(base, 0700), 0);
    setenv("XDG_RUNTIME_DIR", base, 1);
    assert_int_equal(cs_path_runtime_dir(&out, &err), CS_OK);
    snprintf(want, sizeof(want), "%s/calsweep", base);
    assert_string_equal(out, want);
    assert_int_equal(lstat(out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    free(out);
    /* group/world writable: refused, naming the directory */
    assert_int_equal(chmod(want, 0777), 0);
    assert_int_equal(cs_path_runtime_dir(&out, &err), CS_EAUTH);
    assert_null(out);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "writable"));
    assert_int_equal(chmod(want, 0700), 0);
    /* owned by someone else (only root can arrange that) */
    if (geteuid() == 0) {
        assert_int_equal(chown(want, 65534, 65534), 0);
        assert_int_equal(cs_path_runtime_dir(&out, &err), CS_EAUTH);
        assert_non_null(strstr(err.msg, "owned by uid 65534"));
        assert_int_equal(chown(want, getuid(), getgid()), 0);
    }
    /* a symlink planted in its place */
    assert_int_equal(rmdir(want), 0);
    snprintf(lnk, sizeof(lnk), "%s/elsewhere", f->dir);
    assert_int_equal(mkdir(lnk, 0700), 0);
    assert_int_equal(symlink(lnk, want), 0);
    assert_int_equal(cs_path_runtime_dir(&out, &err), CS_EAUTH);
    assert_non_null(strstr(err.msg, "symbolic link"));
    /* fallback without XDG_RUNTIME_DIR: /tmp/calsweep-<uid> (may already exist, maybe not ours
     * to fix; only the name is checked) */
    unsetenv("XDG_RUNTIME_DIR");
    snprintf(want, sizeof(want), "/tmp/calsweep-%lu", (unsigned long)getuid());
    if (cs_path_runtime_dir(&out, &err) == CS_OK) {
        assert_string_equal(out, want);
        free(out);
    } else {
        assert_non_null(strstr(err.msg, want));
    }
    if (old) {
        setenv("XDG_RUNTIME_DIR", old, 1);
    }
    free(old);
}

static void test_read_file(void **state)
{
    fixture *f = *state;
    char path[256];
    char *data = NULL;
    size_t len = 99;
    cs_err err = {0};
    FILE *fp;
    snprintf(path, sizeof(path), "%s/missing.json", f->dir);
    assert_int_equal(cs_path_read_file(path, 0, &data, &len, &err), CS_ENOENT);
    assert_null(data);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "No such file"));
    /* too big */
    snprintf(path, sizeof(path), "%s/big", f->dir);
    write_file(path, "0123456789");
    assert_int_equal(cs_path_read_file(path, 9, &data, &len, &err), CS_ETOOBIG);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "limit of 9"));
    assert_int_equal(cs_path_read_file(path, 10, &data, &len, &err), CS_OK);
    assert_int_equal(len, 10);
    assert_string_equal(data, "0123456789");
    free(data);
    /* a directory */
    assert_int_equal(cs_path_read_file(f->dir, 0, &data, &len, &err), CS_EIO);
    assert_non_null(strstr(err.msg, "is a directory"));
    assert_non_null(strstr(err.msg, f->dir));
    /* empty file and embedded NUL */
    snprintf(path, sizeof(path), "%s/empty", f->dir);
    write_file(path, "");
    assert_int_equal(cs_path_read_file(path, 0, &data, &len, &err), CS_OK);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);
    snprintf(path, sizeof(path), "%s/nul", f->dir);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fwrite("a\0b", 1, 3, fp);
    fclose(fp);
    assert_int_equal(cs_path_read_file(path, 0, &data, &len, &err), CS_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "a\0b", 4);
    free(data);
    /* a non-regular file is capped while reading */
    assert_int_equal(cs_path_read_file("/dev/zero", 1000, &data, &len, &err), CS_ETOOBIG);
    assert_non_null(strstr(err.msg, "/dev/zero"));
    /* permission denied (root reads anything, so only as a normal user) */
    if (geteuid() != 0) {
        snprintf(path, sizeof(path), "%s/secret", f->dir);
        write_file(path, "x");
        chmod(path, 0);
        assert_int_equal(cs_path_read_file(path, 0, &data, &len, &err), CS_EAUTH);
        assert_non_null(strstr(err.msg, path));
    }
}

static void test_atomic_write(void **state)
{
    fixture *f = *state;
    char path[256];
    char *data = NULL;
    size_t len;
    struct stat st;
    cs_err err = {0};
    snprintf(path, sizeof(path), "%s/result.json", f->dir);
    assert_int_equal(cs_path_write_atomic(path, "{\"v\":1}", 7, 0640, &err), CS_OK);
    assert_int_equal(cs_path_read_file(path, 0, &data, &len, &err), CS_OK);
    assert_string_equal(data, "{\"v\":1}");
    free(data);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0640);
    assert_int_equal(cs_path_write_atomic(path, "{\"v\":2}", 7, 0600, &err), CS_OK);
    assert_int_equal(cs_path_read_file(path, 0, &data, &len, &err), CS_OK);
    assert_string_equal(data, "{\"v\":2}");
    free(data);
    assert_int_equal(cs_path_write_atomic(path, NULL, 0, 0600, &err), CS_OK); /* empty */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(count_entries(f->dir), 1); /* no temporary files left */
    /* missing directory: named, nothing created */
    snprintf(path, sizeof(path), "%s/nodir/x.json", f->dir);
    assert_int_equal(cs_path_write_atomic(path, "x", 1, 0600, &err), CS_ENOENT);
    assert_non_null(strstr(err.msg, path));
    /* the target is a directory: rename fails, directory intact, temp removed */
    snprintf(path, sizeof(path), "%s/adir", f->dir);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_not_equal(cs_path_write_atomic(path, "x", 1, 0600, &err), CS_OK);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(count_entries(f->dir), 2);
}

/* A "full disk": in a child with RLIMIT_FSIZE of 4 KiB, writing 64 KiB fails with EFBIG. The
 * child reports the code it got; the parent checks the old content and that no temp is left. */
static void test_atomic_write_full_disk(void **state)
{
    fixture *f = *state;
    char path[256];
    char *data = NULL;
    size_t len;
    pid_t pid;
    int status = 0;
    cs_err err = {0};
    snprintf(path, sizeof(path), "%s/state.json", f->dir);
    assert_int_equal(cs_path_write_atomic(path, "old content", 11, 0600, &err), CS_OK);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {4096, 4096};
        static char big[65536];
        cs_err cerr = {0};
        cs_rc rc;
        memset(big, 'x', sizeof(big));
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
            _exit(100);
        }
        rc = cs_path_write_atomic(path, big, sizeof(big), 0600, &cerr);
        if (rc != CS_ENOSPC || cerr.cause != EFBIG || !strstr(cerr.msg, path)) {
            fprintf(stderr, "child: rc %d cause %d msg %s\n", rc, cerr.cause, cerr.msg);
            _exit(101);
        }
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(cs_path_read_file(path, 0, &data, &len, &err), CS_OK);
    assert_string_equal(data, "old content");
    free(data);
    assert_int_equal(count_entries(f->dir), 1);
}

/* cs_path_confine: inside the roots after realpath, or refused naming the path and the roots;
 * "..", symlinks and absolute paths cannot escape. */
static void test_confine(void **state)
{
    fixture *f = *state;
    char root[128], other[128], file[192], link[192], esc[256], roots[300], *out = NULL;
    cs_err err = {0};
    snprintf(root, sizeof root, "%s/root", f->dir);
    snprintf(other, sizeof other, "%s/other", f->dir);
    assert_int_equal(mkdir(root, 0700), 0);
    assert_int_equal(mkdir(other, 0700), 0);
    snprintf(file, sizeof file, "%s/data.txt", root);
    assert_int_equal(cs_path_write_atomic(file, "x", 1, 0600, NULL), CS_OK);
    snprintf(link, sizeof link, "%s/passwd", root);
    assert_int_equal(symlink("/etc/passwd", link), 0);

    assert_int_equal(cs_path_confine(file, root, "data", &out, &err), CS_OK);
    assert_non_null(out);
    assert_string_equal(strrchr(out, '/'), "/data.txt");
    free(out);
    out = NULL;
    /* the root itself, and a second root in a list with a missing one */
    assert_int_equal(cs_path_confine(root, root, "data", &out, &err), CS_OK);
    free(out);
    out = NULL;
    snprintf(roots, sizeof roots, "/nonexistent:%s:%s", other, root);
    assert_int_equal(cs_path_confine(file, roots, "data", &out, &err), CS_OK);
    free(out);
    out = NULL;

    assert_int_equal(cs_path_confine("/etc/passwd", root, "data.sources.x.path", &out, &err),
                     CS_EINVAL);
    assert_null(out);
    assert_non_null(
            strstr(err.msg, "data.sources.x.path: /etc/passwd is outside the allowed roots"));
    assert_non_null(strstr(err.msg, "/root)"));
    assert_int_equal(cs_path_confine(link, root, "data", &out, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, link));
    snprintf(esc, sizeof esc, "%s/../other", root);
    assert_int_equal(cs_path_confine(esc, root, "data", &out, &err), CS_EINVAL);
    /* a root that is a prefix of the name but not a folder above it */
    snprintf(esc, sizeof esc, "%s/root2", f->dir);
    assert_int_equal(mkdir(esc, 0700), 0);
    assert_int_equal(cs_path_confine(esc, root, "data", &out, &err), CS_EINVAL);
    assert_int_equal(cs_path_confine(file, "/nonexistent", "data", &out, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "there are none"));
    snprintf(esc, sizeof esc, "%s/missing.txt", root);
    assert_int_equal(cs_path_confine(esc, root, "data", &out, &err), CS_ENOENT);
    assert_non_null(strstr(err.msg, "missing.txt"));
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_join),
            cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
            cmocka_unit_test_setup_teardown(test_state_dir, setup, teardown),
            cmocka_unit_test_setup_teardown(test_runtime_dir, setup, teardown),
            cmocka_unit_test_setup_teardown(test_read_file, setup, teardown),
            cmocka_unit_test_setup_teardown(test_atomic_write, setup, teardown),
            cmocka_unit_test_setup_teardown(test_atomic_write_full_disk, setup, teardown),
            cmocka_unit_test_setup_teardown(test_confine, setup, teardown),
    };
    return CS_RUN_TESTS(tests);
}
