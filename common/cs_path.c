/* cs_path.c - directories, joins, mkdir -p, bounded reads and atomic writes (see cs_path.h). */
#include "cs_path.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_alloc.h"

#define READ_DEFAULT_MAX ((size_t)64 << 20)

cs_rc cs_path_join(const char *a, const char *b, char **out, cs_err *err)
{
    size_t la, lb;
    char *p;
    if (!out) {
        return cs_err_set(err, CS_EINVAL, 0, "path join: NULL output");
    }
    *out = NULL;
    if (!a || !b) {
        return cs_err_set(err, CS_EINVAL, 0, "path join: NULL component");
    }
    la = strlen(a);
    lb = strlen(b);
    while (la > 1 && a[la - 1] == '/') {
        la--;
    }
    while (lb > 0 && b[0] == '/') {
        b++;
        lb--;
    }
    if (la == 0 || lb == 0) {
        p = la == 0 ? cs_strndup(b, lb) : cs_strndup(a, la);
        if (!p) {
            return cs_err_set(err, CS_ENOMEM, 0, "path join");
        }
        *out = p;
        return CS_OK;
    }
    p = malloc(la + lb + 2);
    if (!p) {
        return cs_err_set(err, CS_ENOMEM, 0, "path join");
    }
    memcpy(p, a, la);
    if (a[la - 1] != '/') { /* a == "/" keeps its one slash */
        p[la++] = '/';
    }
    memcpy(p + la, b, lb);
    p[la + lb] = '\0';
    *out = p;
    return CS_OK;
}

cs_rc cs_path_mkdir_p(const char *path, mode_t mode, cs_err *err)
{
    char *tmp = NULL;
    size_t n;
    struct stat st;
    cs_rc rc = CS_OK;
    if (!path || !path[0]) {
        return cs_err_set(err, CS_EINVAL, 0, "mkdir: empty path");
    }
    tmp = cs_strdup(path);
    if (!tmp) {
        return cs_err_set(err, CS_ENOMEM, 0, "mkdir %s", path);
    }
    n = strlen(tmp);
    /* Walk each prefix ending before a '/', then the whole path. */
    for (size_t i = 1; i <= n; i++) {
        if (i < n && tmp[i] != '/') {
            continue;
        }
        if (i < n && tmp[i - 1] == '/') {
            continue; /* "a//b" */
        }
        tmp[i] = '\0';
        if (mkdir(tmp, mode) != 0) {
            int e = errno;
            if (e != EEXIST) {
                rc = cs_err_errno(err, e, "mkdir %s", tmp);
                goto out;
            }
            if (stat(tmp, &st) != 0) {
                rc = cs_err_errno(err, errno, "mkdir %s", tmp);
                goto out;
            }
            if (!S_ISDIR(st.st_mode)) {
                rc = cs_err_set(err, CS_EEXIST, ENOTDIR, "mkdir %s: exists and is not a directory",
                                tmp);
                goto out;
            }
        }
        if (i < n) {
            tmp[i] = '/';
        }
    }
out:
    free(tmp);
    return rc;
}

/* An absolute environment value, or NULL. */
static const char *abs_env(const char *name)
{
    const char *v = getenv(name);
    return (v && v[0] == '/') ? v : NULL;
}

cs_rc cs_path_state_dir(bool create, char **out, cs_err *err)
{
    const char *base = abs_env("XDG_STATE_HOME");
    char *home_state = NULL;
    cs_rc rc;
    *out = NULL;
    if (base) {
        rc = cs_path_join(base, "calsweep", out, err);
    } else {
        const char *home = abs_env("HOME");
        if (!home) {
            struct passwd pw, *res = NULL;
            char pwbuf[4096];
            if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &res) != 0 || !res || !pw.pw_dir ||
                pw.pw_dir[0] != '/') {
                return cs_err_set(err, CS_ENOENT, 0,
                                  "state dir: neither XDG_STATE_HOME nor HOME is set and uid %lu "
                                  "has no home directory",
                                  (unsigned long)getuid());
            }
            rc = cs_path_join(pw.pw_dir, ".local/state", &home_state, err);
        } else {
            rc = cs_path_join(home, ".local/state", &home_state, err);
        }
        if (rc == CS_OK) {
            rc = cs_path_join(home_state, "calsweep", out, err);
        }
        free(home_state);
    }
    if (rc != CS_OK) {
        return rc;
    }
    if (create) {
        rc = cs_path_mkdir_p(*out, 0700, err);
        if (rc != CS_OK) {
            cs_err_prefix(err, "state dir");
            free(*out);
            *out = NULL;
        }
    }
    return rc;
}

cs_rc cs_path_check_private_dir(const char *dir, cs_err *err)
{
    struct stat st;
    if (lstat(dir, &st) != 0) {
        return cs_err_errno(err, errno, "%s", dir);
    }
    if (S_ISLNK(st.st_mode)) {
        return cs_err_set(err, CS_EAUTH, 0, "%s: is a symbolic link, refusing to use it", dir);
    }
    if (!S_ISDIR(st.st_mode)) {
        return cs_err_set(err, CS_EAUTH, 0, "%s: is not a directory", dir);
    }
    if (st.st_uid != getuid()) {
        return cs_err_set(err, CS_EAUTH, 0, "%s: owned by uid %lu, not by us (uid %lu)", dir,
                          (unsigned long)st.st_uid, (unsigned long)getuid());
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        return cs_err_set(err, CS_EAUTH, 0, "%s: is group or world writable (mode %03o)", dir,
                          (unsigned)(st.st_mode & 0777));
    }
    return CS_OK;
}

cs_rc cs_path_runtime_dir(char **out, cs_err *err)
{
    const char *base = abs_env("XDG_RUNTIME_DIR");
    char name[64];
    cs_rc rc;
    *out = NULL;
    if (base) {
        rc = cs_path_join(base, "calsweep", out, err);
    } else {
        snprintf(name, sizeof(name), "/tmp/calsweep-%lu", (unsigned long)getuid());
        *out = cs_strdup(name);
        rc = *out ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "runtime dir");
    }
    if (rc != CS_OK) {
        return rc;
    }
    if (mkdir(*out, 0700) != 0 && errno != EEXIST) {
        rc = cs_err_errno(err, errno, "runtime dir: mkdir %s", *out);
    } else {
        rc = cs_path_check_private_dir(*out, err);
        if (rc != CS_OK) {
            cs_err_prefix(err, "runtime dir");
        }
    }
    if (rc != CS_OK) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

cs_rc cs_path_read_file(const char *path, size_t max_bytes, char **out, size_t *len, cs_err *err)
{
    int fd = -1;
    struct stat st;
    cs_buf b = {0};
    cs_rc rc = CS_OK;
    *out = NULL;
    if (len) {
        *len = 0;
    }
    if (max_bytes == 0) {
        max_bytes = READ_DEFAULT_MAX;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return cs_err_errno(err, errno, "%s", path);
    }
    if (fstat(fd, &st) != 0) {
        rc = cs_err_errno(err, errno, "%s", path);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = cs_err_set(err, CS_EIO, EISDIR, "%s: is a directory, not a file", path);
        goto out;
    }
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > (uintmax_t)max_bytes) {
        rc = cs_err_set(err, CS_ETOOBIG, EFBIG, "%s: %jd bytes is larger than the limit of %zu",
                        path, (intmax_t)st.st_size, max_bytes);
        goto out;
    }
    if (cs_buf_reserve(&b, S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096) != CS_OK) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        ssize_t r;
        if (b.cap - b.len < 2 && cs_buf_reserve(&b, b.cap) != CS_OK) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory", path);
            goto out;
        }
        r = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = cs_err_errno(err, errno, "%s: read", path);
            goto out;
        }
        if (r == 0) {
            break;
        }
        b.len += (size_t)r;
        b.data[b.len] = '\0';
        if (b.len > max_bytes) { /* grew while reading, or not a regular file */
            rc = cs_err_set(err, CS_ETOOBIG, EFBIG, "%s: larger than the limit of %zu bytes", path,
                            max_bytes);
            goto out;
        }
    }
    if (!b.data && cs_buf_reserve(&b, 1) != CS_OK) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory", path);
        goto out;
    }
    b.data[b.len] = '\0';
    if (len) {
        *len = b.len;
    }
    *out = cs_buf_take(&b);
out:
    if (fd >= 0) {
        close(fd);
    }
    cs_buf_fini(&b);
    return rc;
}

/* errno of a failed write/fsync/rename, with file-size limits counted as a full disk. */
static cs_rc write_errno(cs_err *err, int e, const char *what, const char *path)
{
    if (e == EFBIG || e == ENOSPC
#ifdef EDQUOT
        || e == EDQUOT
#endif
    ) {
        return cs_err_set(err, CS_ENOSPC, e, "%s %s: %s (no space)", what, path, strerror(e));
    }
    return cs_err_errno(err, e, "%s %s", what, path);
}

cs_rc cs_path_write_atomic(const char *path, const void *data, size_t len, mode_t mode, cs_err *err)
{
    char *dir_copy = NULL, *base_copy = NULL, *tmp = NULL;
    const char *dir, *base;
    const unsigned char *p = data;
    size_t left = len, tlen;
    int fd = -1, dfd = -1;
    bool tmp_exists = false;
    cs_rc rc = CS_OK;

    if (!path || !path[0] || (!data && len > 0)) {
        return cs_err_set(err, CS_EINVAL, 0, "atomic write: no path or no data");
    }
    dir_copy = cs_strdup(path);
    base_copy = cs_strdup(path);
    if (!dir_copy || !base_copy) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "write %s", path);
        goto out;
    }
    dir = dirname(dir_copy);
    base = basename(base_copy);
    tlen = strlen(dir) + strlen(base) + 16;
    tmp = malloc(tlen);
    if (!tmp) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "write %s", path);
        goto out;
    }
    snprintf(tmp, tlen, "%s/.%s.XXXXXX", dir, base);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = write_errno(err, errno, "create temporary file for", path);
        goto out;
    }
    tmp_exists = true;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = write_errno(err, errno, "write", path);
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, mode) != 0) {
        rc = cs_err_errno(err, errno, "chmod %s", path);
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = write_errno(err, errno, "fsync", path);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = write_errno(err, errno, "close", path);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = write_errno(err, errno, "rename into", path);
        goto out;
    }
    tmp_exists = false;
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        /* The new content is in place; only its durability across a crash is in doubt. */
        rc = write_errno(err, errno, "fsync directory of", path);
        goto out;
    }
out:
    if (fd >= 0) {
        close(fd);
    }
    if (dfd >= 0) {
        close(dfd);
    }
    if (tmp_exists) {
        unlink(tmp);
    }
    free(tmp);
    free(dir_copy);
    free(base_copy);
    return rc;
}

/* Whether the resolved path p is root or lies inside it (root resolved, without a trailing '/'
 * except "/" itself). */
static bool inside(const char *p, const char *root)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/') {
        return p[0] == '/';
    }
    return strncmp(p, root, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

cs_rc cs_path_confine(const char *path, const char *roots, const char *what, char **out,
                      cs_err *err)
{
    char *real = NULL;
    cs_buf list;
    cs_rc rc = CS_OK;
    *out = NULL;
    if (path == NULL || path[0] == '\0') {
        return cs_err_set(err, CS_EINVAL, 0, "%s: empty path", what);
    }
    real = realpath(path, NULL);
    if (real == NULL) {
        return cs_err_errno(err, errno, "%s: %s", what, path);
    }
    cs_buf_init(&list);
    for (const char *r = roots; r != NULL && *r != '\0';) {
        const char *colon = strchr(r, ':');
        size_t n = colon ? (size_t)(colon - r) : strlen(r);
        char *one = n > 0 ? cs_strndup(r, n) : NULL;
        char *rr = one != NULL ? realpath(one, NULL) : NULL;
        free(one);
        r = colon ? colon + 1 : NULL;
        if (rr == NULL) {
            continue;
        }
        bool in = inside(real, rr);
        if (cs_buf_printf(&list, "%s%s", list.len ? ", " : "", rr) != CS_OK) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
        free(rr);
        if (rc != CS_OK) {
            goto out;
        }
        if (in) {
            *out = real;
            real = NULL;
            goto out;
        }
    }
    if (list.len == 0) {
        rc = cs_err_set(err, CS_EINVAL, 0, "%s: %s is outside the allowed roots: there are none",
                        what, path);
    } else {
        rc = cs_err_set(err, CS_EINVAL, 0, "%s: %s is outside the allowed roots (%s)", what, path,
                        list.data);
    }
out:
    cs_buf_fini(&list);
    free(real);
    return rc;
}
