/* cs_safetensors.c - see cs_safetensors.h. */
#include "cs_safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_json.h"

typedef struct cs_st_map {
    char *path;
    void *base; /* mmap base, or NULL for borrowed memory */
    size_t len;
} cs_st_map;

struct cs_st {
    cs_st_map *maps;
    size_t n_maps;
    cs_st_tensor *tensors;
    size_t n_tensors;
};

static const struct {
    const char *name;
    cs_st_dtype dtype;
    size_t size;
} dtypes[] = {
        {"F32", CS_ST_F32, 4},   {"F16", CS_ST_F16, 2}, {"BF16", CS_ST_BF16, 2},
        {"F64", CS_ST_F64, 8},   {"I64", CS_ST_I64, 8}, {"I32", CS_ST_I32, 4},
        {"I16", CS_ST_I16, 2},   {"I8", CS_ST_I8, 1},   {"U8", CS_ST_U8, 1},
        {"BOOL", CS_ST_BOOL, 1},
};

const char *cs_st_dtype_name(cs_st_dtype d)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++) {
        if (dtypes[i].dtype == d) {
            return dtypes[i].name;
        }
    }
    return "?";
}

size_t cs_st_dtype_size(cs_st_dtype d)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++) {
        if (dtypes[i].dtype == d) {
            return dtypes[i].size;
        }
    }
    return 0;
}

float cs_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

uint16_t cs_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float cs_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {
            /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while ((man & 0x400u) == 0);
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const cs_st_tensor *)a)->name, ((const cs_st_tensor *)b)->name);
}

/* A JSON integer in 0..9e15 (exact in a double). */
static bool st_count(const cJSON *x)
{
    return cJSON_IsNumber(x) && x->valuedouble >= 0 && x->valuedouble <= 9.0e15 &&
           x->valuedouble == (double)(int64_t)x->valuedouble;
}

/* Parses the header entry e of tensor tn into *t: dtype, shape, and its bytes, which must lie in
 * the dlen data bytes at dstart. */
static cs_rc parse_tensor(const cJSON *e, const char *tn, const uint8_t *dstart, size_t dlen,
                          const char *name, cs_st_tensor *t, cs_err *err)
{
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo)) {
        return cs_err_set(err, CS_EPARSE, 0,
                          "%s: tensor '%s': needs string dtype, array shape and array "
                          "data_offsets",
                          name, tn);
    }
    size_t esz = 0;
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++) {
        if (strcmp(dtypes[i].name, jd->valuestring) == 0) {
            t->dtype = dtypes[i].dtype;
            esz = dtypes[i].size;
        }
    }
    if (esz == 0) {
        return cs_err_set(err, CS_EPARSE, 0, "%s: tensor '%s': unknown dtype '%.32s'", name, tn,
                          jd->valuestring);
    }
    int nd = cJSON_GetArraySize(js);
    if (nd > CS_ST_MAX_DIMS) {
        return cs_err_set(err, CS_EPARSE, 0, "%s: tensor '%s': %d dimensions (at most %d)", name,
                          tn, nd, CS_ST_MAX_DIMS);
    }
    t->ndim = nd;
    size_t numel = 1;
    int d = 0;
    for (const cJSON *x = js->child; x; x = x->next, d++) {
        if (!st_count(x)) {
            return cs_err_set(err, CS_EPARSE, 0,
                              "%s: tensor '%s': shape[%d] is not a non-negative integer", name, tn,
                              d);
        }
        t->shape[d] = (int64_t)x->valuedouble;
        if (!cs_mul_ok(numel, (size_t)t->shape[d], &numel)) {
            return cs_err_set(err, CS_ERANGE, 0, "%s: tensor '%s': shape overflows", name, tn);
        }
    }
    double ob[2] = {-1, -1};
    if (cJSON_GetArraySize(jo) != 2) {
        return cs_err_set(err, CS_EPARSE, 0, "%s: tensor '%s': data_offsets needs 2 integers", name,
                          tn);
    }
    d = 0;
    for (const cJSON *x = jo->child; x; x = x->next, d++) {
        if (!st_count(x)) {
            return cs_err_set(err, CS_EPARSE, 0,
                              "%s: tensor '%s': data_offsets[%d] is not a non-negative integer",
                              name, tn, d);
        }
        ob[d] = x->valuedouble;
    }
    size_t b0 = (size_t)ob[0], b1 = (size_t)ob[1];
    if (b0 > b1 || b1 > dlen) {
        return cs_err_set(err, CS_ERANGE, 0,
                          "%s: tensor '%s': data_offsets [%zu, %zu] outside the %zu data bytes",
                          name, tn, b0, b1, dlen);
    }
    size_t nbytes;
    if (!cs_mul_ok(numel, esz, &nbytes) || nbytes != b1 - b0) {
        return cs_err_set(err, CS_EPARSE, 0,
                          "%s: tensor '%s': shape and dtype %s need %zu bytes but data_offsets "
                          "span %zu",
                          name, tn, jd->valuestring, numel * esz, b1 - b0);
    }
    t->numel = numel;
    t->nbytes = nbytes;
    t->data = dstart + b0;
    return CS_OK;
}

/* Parses one file image into st (appending tensors). */
static cs_rc parse_image(cs_st *st, const uint8_t *data, size_t len, const char *name,
                         size_t file_index, cs_err *err)
{
    cJSON *root = NULL;
    cs_rc rc = CS_OK;
    if (len < 8) {
        return cs_err_set(err, CS_EPARSE, 0,
                          "%s: truncated safetensors file (%zu bytes, need at least 8)", name, len);
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) {
        hlen = (hlen << 8) | data[i];
    }
    if (hlen > CS_ST_MAX_HEADER) {
        return cs_err_set(err, CS_ETOOBIG, 0,
                          "%s: safetensors header of %llu bytes is larger than the limit of %llu",
                          name, (unsigned long long)hlen, (unsigned long long)CS_ST_MAX_HEADER);
    }
    if (hlen > len - 8) {
        return cs_err_set(err, CS_EPARSE, 0,
                          "%s: truncated safetensors header (header says %llu bytes, file has %zu "
                          "after the length)",
                          name, (unsigned long long)hlen, len - 8);
    }
    const uint8_t *dstart = data + 8 + hlen;
    size_t dlen = len - 8 - (size_t)hlen;
    rc = cs_json_parse((const char *)data + 8, (size_t)hlen, name, &root, err);
    if (rc != CS_OK) {
        rc = CS_EPARSE;
        goto cleanup;
    }
    if (!cJSON_IsObject(root)) {
        rc = cs_err_set(err, CS_EPARSE, 0, "%s: safetensors header is not a JSON object", name);
        goto cleanup;
    }
    size_t n = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        n++;
    }
    cs_st_tensor *grown = cs_realloc_array(st->tensors, st->n_tensors + n + 1, sizeof(*grown));
    if (!grown) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory", name);
        goto cleanup;
    }
    st->tensors = grown;
    for (const cJSON *e = root->child; e; e = e->next) {
        const char *tn = e->string ? e->string : "";
        if (strcmp(tn, "__metadata__") == 0) {
            continue;
        }
        if (!cJSON_IsObject(e)) {
            rc = cs_err_set(err, CS_EPARSE, 0, "%s: tensor '%s': expected an object", name, tn);
            goto cleanup;
        }
        cs_st_tensor t = {0};
        rc = parse_tensor(e, tn, dstart, dlen, name, &t, err);
        if (rc != CS_OK) {
            goto cleanup;
        }
        t.file_index = file_index;
        t.name = cs_strdup(tn);
        if (!t.name) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory", name);
            goto cleanup;
        }
        st->tensors[st->n_tensors++] = t;
    }
cleanup:
    cJSON_Delete(root);
    return rc;
}

static cs_rc finish(cs_st *st, const char *name, cs_err *err)
{
    if (st->n_tensors > 1) {
        qsort(st->tensors, st->n_tensors, sizeof(*st->tensors), cmp_tensor);
        for (size_t i = 1; i < st->n_tensors; i++) {
            if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0) {
                return cs_err_set(err, CS_EPARSE, 0, "%s: tensor '%s' appears twice", name,
                                  st->tensors[i].name);
            }
        }
    }
    return CS_OK;
}

static cs_rc add_map(cs_st *st, const char *path, cs_err *err)
{
    int fd = -1;
    cs_rc rc = CS_OK;
    cs_st_map *m = cs_realloc_array(st->maps, st->n_maps + 1, sizeof(*m));
    if (!m) {
        return cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory", path);
    }
    st->maps = m;
    m = &st->maps[st->n_maps];
    memset(m, 0, sizeof(*m));
    m->path = cs_strdup(path);
    if (!m->path) {
        return cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory", path);
    }
    st->n_maps++;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return cs_err_errno(err, errno, "%s", path);
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        rc = cs_err_errno(err, errno, "%s", path);
        goto cleanup;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = cs_err_set(err, CS_EIO, 0, "%s: not a regular file", path);
        goto cleanup;
    }
    m->len = (size_t)sb.st_size;
    if (m->len < 8) {
        rc = cs_err_set(err, CS_EPARSE, 0,
                        "%s: truncated safetensors file (%zu bytes, need at least 8)", path,
                        m->len);
        goto cleanup;
    }
    /* Private writable mapping: copy-on-write, so a consumer may edit f32 weights in place. */
    void *p = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        rc = cs_err_errno(err, errno, "%s: mmap", path);
        goto cleanup;
    }
    m->base = p;
    rc = parse_image(st, p, m->len, path, st->n_maps - 1, err);
cleanup:
    close(fd);
    return rc;
}

void cs_st_drop(cs_st *st, const cs_st_tensor *t)
{
    const cs_st_map *m = st && t && t->file_index < st->n_maps ? &st->maps[t->file_index] : NULL;
    long pg = sysconf(_SC_PAGESIZE);
    if (!m || !m->base || pg <= 0 || t->nbytes == 0) {
        return; /* borrowed memory: never advised away */
    }
    uintptr_t b = (uintptr_t)t->data, e = b + t->nbytes, ps = (uintptr_t)pg;
    b = (b + ps - 1) / ps * ps; /* only whole pages of this tensor: a neighbour's stay */
    e = e / ps * ps;
    if (e > b) {
        (void)madvise((void *)b, e - b, MADV_DONTNEED);
    }
}

cs_rc cs_st_open_file(cs_st **out, const char *path, cs_err *err)
{
    *out = NULL;
    cs_st *st = calloc(1, sizeof(*st));
    if (!st) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cs_rc rc = add_map(st, path, err);
    if (rc == CS_OK) {
        rc = finish(st, path, err);
    }
    if (rc != CS_OK) {
        cs_st_close(st);
        return rc;
    }
    *out = st;
    return CS_OK;
}

cs_rc cs_st_open_mem(cs_st **out, const void *data, size_t len, const char *name, cs_err *err)
{
    *out = NULL;
    if (!name) {
        name = "<safetensors>";
    }
    cs_st *st = calloc(1, sizeof(*st));
    if (!st) {
        return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    cs_rc rc = parse_image(st, data, len, name, 0, err);
    if (rc == CS_OK) {
        rc = finish(st, name, err);
    }
    if (rc != CS_OK) {
        cs_st_close(st);
        return rc;
    }
    *out = st;
    return CS_OK;
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

cs_rc cs_st_open_dir(cs_st **out, const char *dir, cs_err *err)
{
    cs_buf path;
    cJSON *idx = NULL;
    cs_st *st = NULL;
    cs_rc rc = CS_OK;
    *out = NULL;
    cs_buf_init(&path);
    if (cs_buf_printf(&path, "%s/model.safetensors.index.json", dir) != CS_OK) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto cleanup;
    }
    if (!file_exists(path.data)) {
        path.len = 0;
        if (cs_buf_printf(&path, "%s/model.safetensors", dir) != CS_OK) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            goto cleanup;
        }
        if (!file_exists(path.data)) {
            rc = cs_err_set(err, CS_ENOENT, 0,
                            "%s: neither model.safetensors nor model.safetensors.index.json", dir);
            goto cleanup;
        }
        rc = cs_st_open_file(out, path.data, err);
        goto cleanup;
    }
    rc = cs_json_parse_file(path.data, 0, &idx, err);
    if (rc != CS_OK) {
        goto cleanup;
    }
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
    if (!cJSON_IsObject(wm)) {
        rc = cs_err_set(err, CS_EPARSE, 0, "%s: weight_map: expected an object", path.data);
        goto cleanup;
    }
    st = calloc(1, sizeof(*st));
    if (!st) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        goto cleanup;
    }
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || e->valuestring[0] == '.') {
            rc = cs_err_set(err, CS_EPARSE, 0,
                            "%s: weight_map.%s: expected a file name in the model folder",
                            path.data, e->string);
            goto cleanup;
        }
        bool seen = false;
        for (const cJSON *p = wm->child; p != e; p = p->next) {
            if (strcmp(p->valuestring, e->valuestring) == 0) {
                seen = true;
                break;
            }
        }
        if (seen) {
            continue;
        }
        cs_buf sp;
        cs_buf_init(&sp);
        if (cs_buf_printf(&sp, "%s/%s", dir, e->valuestring) != CS_OK) {
            cs_buf_fini(&sp);
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            goto cleanup;
        }
        rc = add_map(st, sp.data, err);
        cs_buf_fini(&sp);
        if (rc != CS_OK) {
            goto cleanup;
        }
    }
    /* The index is authoritative: keep each tensor only from the shard it names. */
    size_t kept = 0;
    for (size_t i = 0; i < st->n_tensors; i++) {
        cs_st_tensor *t = &st->tensors[i];
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(wm, t->name);
        const char *base = strrchr(st->maps[t->file_index].path, '/');
        if (f && strcmp(f->valuestring, base + 1) == 0) {
            st->tensors[kept++] = *t;
        } else {
            free(t->name);
        }
    }
    st->n_tensors = kept;
    rc = finish(st, path.data, err);
    if (rc != CS_OK) {
        goto cleanup;
    }
    for (const cJSON *e = wm->child; e; e = e->next) {
        const cs_st_tensor *t = cs_st_find(st, e->string);
        const char *file = t ? strrchr(st->maps[t->file_index].path, '/') : NULL;
        if (!t || strcmp(file + 1, e->valuestring) != 0) {
            rc = cs_err_set(err, CS_ENOENT, 0, "%s: tensor '%s' is not in %s", path.data, e->string,
                            e->valuestring);
            goto cleanup;
        }
    }
    *out = st;
    st = NULL;
cleanup:
    cs_st_close(st);
    cJSON_Delete(idx);
    cs_buf_fini(&path);
    return rc;
}

void cs_st_unmap(cs_st *st)
{
    if (!st) {
        return;
    }
    for (size_t i = 0; i < st->n_maps; i++) {
        if (st->maps[i].base) {
            munmap(st->maps[i].base, st->maps[i].len);
            st->maps[i].base = NULL;
        }
    }
    for (size_t i = 0; i < st->n_tensors; i++) {
        st->tensors[i].data = NULL;
    }
}

void cs_st_close(cs_st *st)
{
    if (!st) {
        return;
    }
    cs_st_unmap(st);
    for (size_t i = 0; i < st->n_maps; i++) {
        free(st->maps[i].path);
    }
    for (size_t i = 0; i < st->n_tensors; i++) {
        free(st->tensors[i].name);
    }
    free(st->maps);
    free(st->tensors);
    free(st);
}

size_t cs_st_count(const cs_st *st)
{
    return st->n_tensors;
}

const cs_st_tensor *cs_st_at(const cs_st *st, size_t i)
{
    return i < st->n_tensors ? &st->tensors[i] : NULL;
}

const cs_st_tensor *cs_st_find(const cs_st *st, const char *name)
{
    cs_st_tensor key = {0};
    key.name = (char *)(uintptr_t)name;
    if (st->n_tensors == 0) {
        return NULL;
    }
    return bsearch(&key, st->tensors, st->n_tensors, sizeof(*st->tensors), cmp_tensor);
}

cs_rc cs_st_to_f32(const cs_st_tensor *t, float *dst, cs_err *err)
{
    if (!t->data && t->numel) {
        return cs_err_set(err, CS_ESTATE, 0, "tensor '%s': file is no longer mapped", t->name);
    }
    const uint8_t *src = t->data;
    switch (t->dtype) {
    case CS_ST_F32:
        memcpy(dst, src, t->numel * 4);
        return CS_OK;
    case CS_ST_BF16:
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = cs_bf16_to_f32(h);
        }
        return CS_OK;
    case CS_ST_F16:
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = cs_f16_to_f32(h);
        }
        return CS_OK;
    default:
        return cs_err_set(err, CS_ENOTSUP, 0, "tensor '%s': dtype %s cannot be computed as f32",
                          t->name, cs_st_dtype_name(t->dtype));
    }
}
