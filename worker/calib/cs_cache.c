/* calib: the content-addressed cache (cs_cache.h). */
#include "cs_cache.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_canon.h"
#include "cs_log.h"
#include "cs_path.h"

#define CACHE_MAGIC     "CSCACHE1"
#define CACHE_HDR       112
#define CACHE_MAX_ENTRY ((size_t)1 << 40)
#define ID_EDGE         ((size_t)1 << 20) /* bytes hashed at each end of a weights file */

struct cs_cache {
    char *dir;
    cs_cache_stats st;
};

cs_rc cs_cache_open(const char *dir, cs_cache **out, cs_err *err)
{
    *out = NULL;
    if (!dir || !dir[0]) {
        return cs_err_set(err, CS_EINVAL, 0, "cache: empty folder name");
    }
    cs_rc rc = cs_path_mkdir_p(dir, 0755, err);
    if (rc != CS_OK) {
        return rc;
    }
    cs_cache *c = calloc(1, sizeof(*c));
    if (!c || !(c->dir = cs_strdup(dir))) {
        free(c);
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    *out = c;
    return CS_OK;
}

void cs_cache_close(cs_cache *c)
{
    if (!c) {
        return;
    }
    free(c->dir);
    free(c);
}

const char *cs_cache_dir(const cs_cache *c)
{
    return c->dir;
}

void cs_cache_get_stats(const cs_cache *c, cs_cache_stats *out)
{
    *out = c->st;
}

static bool key_ok(const char *key)
{
    size_t i = 0;
    for (; key && key[i]; i++) {
        char ch = key[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            return false;
        }
    }
    return key && i == CS_CACHE_KEY_LEN;
}

char *cs_cache_path(const cs_cache *c, const char *key)
{
    cs_buf b;
    cs_buf_init(&b);
    if (cs_buf_printf(&b, "%s/%s.bin", c->dir, key) != CS_OK) {
        cs_buf_fini(&b);
        return NULL;
    }
    return cs_buf_take(&b);
}

bool cs_cache_has(const cs_cache *c, const char *key)
{
    struct stat st;
    char *path = key_ok(key) ? cs_cache_path(c, key) : NULL;
    bool yes = path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
    free(path);
    return yes;
}

cs_rc cs_cache_get(cs_cache *c, const char *key, void **data, size_t *len, cs_err *err)
{
    char *path = NULL, *buf = NULL;
    size_t n = 0;
    const char *why = NULL;
    cs_err rerr = {0};
    cs_rc rc;
    *data = NULL;
    *len = 0;
    if (!key_ok(key)) {
        return cs_err_set(err, CS_EINVAL, 0, "cache: malformed key '%s'", key ? key : "(null)");
    }
    if (!(path = cs_cache_path(c, key))) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    rc = cs_path_read_file(path, CACHE_MAX_ENTRY, &buf, &n, &rerr);
    if (rc == CS_ENOENT) {
        c->st.misses++;
        rc = cs_err_set(err, CS_ENOENT, 0, "cache: no entry %s", path);
        goto out;
    }
    if (rc == CS_ENOMEM) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "%s", rerr.msg);
        goto out;
    }
    if (rc != CS_OK) {
        why = rerr.msg;
    } else if (n < CACHE_HDR) {
        why = "truncated header";
    } else if (memcmp(buf, CACHE_MAGIC, 8) != 0) {
        why = "not a cache entry (bad magic)";
    } else if (memcmp(buf + 8, key, CS_CACHE_KEY_LEN) != 0) {
        why = "the entry holds another key";
    } else if (cs_get_le64((const uint8_t *)buf + 72) != (uint64_t)(n - CACHE_HDR)) {
        why = "truncated or extended payload (length does not match)";
    } else {
        uint8_t sum[32];
        if (cs_sha256(buf + CACHE_HDR, n - CACHE_HDR, sum, NULL) != CS_OK ||
            memcmp(sum, buf + 80, 32) != 0) {
            why = "checksum mismatch";
        }
    }
    if (why) {
        cs_log(CS_LOG_WARN, "cache: ignoring %s: %s (recomputing)", path, why);
        c->st.rejected++;
        c->st.misses++;
        rc = cs_err_set(err, CS_ENOENT, 0, "cache: rejected %s: %s", path, why);
        goto out;
    }
    memmove(buf, buf + CACHE_HDR, n - CACHE_HDR);
    *data = buf;
    *len = n - CACHE_HDR;
    buf = NULL;
    c->st.hits++;
    rc = CS_OK;
out:
    free(buf);
    free(path);
    return rc;
}

cs_rc cs_cache_put(cs_cache *c, const char *key, const void *data, size_t len, cs_err *err)
{
    if (!key_ok(key)) {
        return cs_err_set(err, CS_EINVAL, 0, "cache: malformed key '%s'", key ? key : "(null)");
    }
    if (len > CACHE_MAX_ENTRY) {
        return cs_err_set(err, CS_ETOOBIG, 0, "cache: an entry of %zu bytes is too large", len);
    }
    char *path = cs_cache_path(c, key);
    uint8_t *buf = cs_alloc_array(CACHE_HDR + len, 1);
    cs_rc rc;
    if (!path || !buf) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory for a cache entry of %zu bytes", len);
        goto out;
    }
    memcpy(buf, CACHE_MAGIC, 8);
    memcpy(buf + 8, key, CS_CACHE_KEY_LEN);
    cs_put_le64(buf + 72, (uint64_t)len);
    if ((rc = cs_sha256(data, len, buf + 80, err)) != CS_OK) {
        goto out;
    }
    if (len) {
        memcpy(buf + CACHE_HDR, data, len);
    }
    if ((rc = cs_path_mkdir_p(c->dir, 0755, err)) != CS_OK ||
        (rc = cs_path_write_atomic(path, buf, CACHE_HDR + len, 0644, err)) != CS_OK) {
        goto out;
    }
    c->st.writes++;
out:
    free(buf);
    free(path);
    return rc;
}

/* ---- model identity ---- */

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends name, size, mtime and the hashes of both ends of file path to b. */
static cs_rc id_weights(cs_buf *b, const char *path, const char *name, cs_err *err)
{
    struct stat st;
    uint8_t *chunk = NULL;
    uint8_t sum[32];
    char hex[CS_SHA256_HEX_LEN + 1];
    cs_rc rc = CS_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return cs_err_errno(err, errno, "%s", path);
    }
    if (fstat(fd, &st) != 0) {
        rc = cs_err_errno(err, errno, "%s", path);
        goto out;
    }
    size_t size = (size_t)st.st_size, edge = size < ID_EDGE ? size : ID_EDGE;
    if (cs_buf_printf(b, "file %s size %zu mtime %lld.%09ld\n", name, size,
                      (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec) != CS_OK ||
        !(chunk = cs_alloc_array(edge ? edge : 1, 1))) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto out;
    }
    for (int end = 0; end < 2; end++) {
        off_t off = end ? (off_t)(size - edge) : 0;
        size_t got = 0;
        while (got < edge) {
            ssize_t r = pread(fd, chunk + got, edge - got, off + (off_t)got);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                rc = r < 0 ? cs_err_errno(err, errno, "%s", path)
                           : cs_err_set(err, CS_EIO, 0, "%s: shorter than its size", path);
                goto out;
            }
            got += (size_t)r;
        }
        if ((rc = cs_sha256(chunk, edge, sum, err)) != CS_OK) {
            goto out;
        }
        cs_hex_encode(sum, 32, hex);
        if (cs_buf_printf(b, "%s %s\n", end ? "tail" : "head", hex) != CS_OK) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            goto out;
        }
    }
out:
    free(chunk);
    close(fd);
    return rc;
}

cs_rc cs_cache_model_id(const char *dir, char out[CS_CACHE_KEY_LEN + 1], cs_err *err)
{
    cs_buf b;
    char *path = NULL, *text = NULL, **names = NULL;
    size_t n_names = 0, cap = 0, len = 0;
    DIR *d = NULL;
    cs_rc rc;
    out[0] = '\0';
    cs_buf_init(&b);
    if ((rc = cs_buf_puts(&b, "calsweep model identity v1\n")) != CS_OK) {
        goto out;
    }
    static const char *const texts[] = {"config.json", "model.safetensors.index.json"};
    for (size_t t = 0; t < 2; t++) {
        free(path);
        path = NULL;
        if ((rc = cs_path_join(dir, texts[t], &path, err)) != CS_OK) {
            goto out;
        }
        rc = cs_path_read_file(path, (size_t)64 << 20, &text, &len, err);
        if (rc == CS_ENOENT && t == 1) {
            continue;
        }
        if (rc != CS_OK) {
            goto out;
        }
        if (cs_buf_printf(&b, "%s %zu\n", texts[t], len) != CS_OK ||
            cs_buf_append(&b, text, len) != CS_OK) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            goto out;
        }
        free(text);
        text = NULL;
    }
    if (!(d = opendir(dir))) {
        rc = cs_err_errno(err, errno, "%s", dir);
        goto out;
    }
    for (struct dirent *e = readdir(d); e; e = readdir(d)) {
        size_t nl = strlen(e->d_name);
        if (nl <= 12 || strcmp(e->d_name + nl - 12, ".safetensors") != 0) {
            continue;
        }
        if (n_names == cap) {
            size_t nc = cap ? 2 * cap : 8;
            char **nn = cs_realloc_array(names, nc, sizeof(char *));
            if (!nn) {
                rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
                goto out;
            }
            names = nn;
            cap = nc;
        }
        if (!(names[n_names] = cs_strdup(e->d_name))) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            goto out;
        }
        n_names++;
    }
    if (n_names == 0) {
        rc = cs_err_set(err, CS_ENOENT, 0, "%s: no *.safetensors weights", dir);
        goto out;
    }
    qsort(names, n_names, sizeof(char *), str_cmp);
    for (size_t i = 0; i < n_names; i++) {
        free(path);
        path = NULL;
        if ((rc = cs_path_join(dir, names[i], &path, err)) != CS_OK ||
            (rc = id_weights(&b, path, names[i], err)) != CS_OK) {
            goto out;
        }
    }
    rc = cs_sha256_hex(b.data, b.len, out, err);
out:
    if (d) {
        closedir(d);
    }
    for (size_t i = 0; i < n_names; i++) {
        free(names[i]);
    }
    free(names);
    free(text);
    free(path);
    cs_buf_fini(&b);
    return rc;
}
