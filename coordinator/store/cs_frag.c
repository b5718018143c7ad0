/* cs_frag.c - splitting objects into members, id lists and the bounded fragment map (cs_frag.h).
 */
#include "cs_frag.h"

#include <stdlib.h>
#include <string.h>

typedef struct cs_frag_entry {
    int64_t id;
    uint64_t hash;
    size_t off; /* in the arena */
    size_t len;
} cs_frag_entry;

static bool blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') {
            return false;
        }
    }
    return true;
}

bool cs_frag_split_from(const char *text, size_t len, size_t from, cs_frag_span *spans, size_t max,
                        size_t *n)
{
    size_t depth = 0, start = from, k = 0;
    bool in_str = false;

    if (len < 2 || from < 1 || from > len - 1) {
        return false;
    }
    for (size_t i = from; i < len - 1; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_str = false;
            }
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) {
                return false;
            }
            depth--;
        } else if (c == ',' && depth == 0) {
            if (k == max || blank(text + start, i - start)) {
                return false;
            }
            spans[k].off = start;
            spans[k].len = i - start;
            k++;
            start = i + 1;
        }
    }
    /* An escape as the last inner byte skipped the closing brace: that string is unterminated. */
    if (in_str || depth != 0 || k == max || blank(text + start, len - 1 - start)) {
        return false;
    }
    spans[k].off = start;
    spans[k].len = len - 1 - start;
    *n = k + 1;
    return true;
}

bool cs_frag_split(const char *text, size_t len, cs_frag_span *spans, size_t max, size_t *n)
{
    if (len < 2 || text[0] != '{' || text[len - 1] != '}') {
        return false;
    }
    if (len == 2) {
        *n = 0;
        return true;
    }
    return cs_frag_split_from(text, len, 1, spans, max, n);
}

size_t cs_frag_common_prefix(const char *a, size_t na, const char *b, size_t nb)
{
    size_t n = na < nb ? na : nb, i = 0;
    while (i + 8 <= n) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) {
            break;
        }
        i += 8;
    }
    while (i < n && a[i] == b[i]) {
        i++;
    }
    return i;
}

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t cs_frag_hash(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)len;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    if (len > 0) {
        uint64_t w = 0;
        memcpy(&w, p, len);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    return mix64(h);
}

bool cs_frag_parse_ids(const char *text, int64_t *ids, size_t max, size_t *n)
{
    const char *p = text;
    size_t k = 0;
    if (!p || *p++ != '[') {
        return false;
    }
    if (*p == ']') {
        *n = 0;
        return p[1] == '\0';
    }
    for (;;) {
        int64_t v = 0;
        if (*p < '1' || *p > '9' || k == max) {
            return false;
        }
        while (*p >= '0' && *p <= '9') {
            int d = *p++ - '0';
            if (v > (INT64_MAX - d) / 10) {
                return false;
            }
            v = v * 10 + d;
        }
        ids[k++] = v;
        if (*p == ']') {
            *n = k;
            return p[1] == '\0';
        }
        if (*p++ != ',') {
            return false;
        }
    }
}

cs_rc cs_frag_format_ids(cs_buf *out, const int64_t *ids, size_t n)
{
    /* 20 digits and a separator per id, the brackets and the NUL. */
    char tmp[24];
    cs_rc rc = cs_buf_reserve(out, n * 21 + 3);
    if (rc != CS_OK) {
        return rc;
    }
    out->data[out->len++] = '[';
    for (size_t i = 0; i < n; i++) {
        char *end = tmp + sizeof(tmp);
        char *d = end;
        uint64_t v = (uint64_t)ids[i];
        if (i > 0) {
            out->data[out->len++] = ',';
        }
        do {
            *--d = (char)('0' + v % 10);
            v /= 10;
        } while (v > 0);
        memcpy(out->data + out->len, d, (size_t)(end - d));
        out->len += (size_t)(end - d);
    }
    out->data[out->len++] = ']';
    out->data[out->len] = '\0';
    return CS_OK;
}

/* ---- the map ------------------------------------------------------------------------------- */

void cs_frag_map_fini(cs_frag_map *m)
{
    if (!m) {
        return;
    }
    free(m->e);
    free(m->by_text);
    free(m->by_id);
    free(m->arena);
    memset(m, 0, sizeof(*m));
}

void cs_frag_map_clear(cs_frag_map *m)
{
    m->n = 0;
    m->arena_len = 0;
    if (m->by_text) {
        memset(m->by_text, 0, m->cap * sizeof(*m->by_text));
        memset(m->by_id, 0, m->cap * sizeof(*m->by_id));
    }
}

int64_t cs_frag_map_find_text(const cs_frag_map *m, const char *text, size_t len, uint64_t hash)
{
    if (m->n == 0) {
        return 0;
    }
    for (size_t i = (size_t)hash & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        uint32_t slot = m->by_text[i];
        const cs_frag_entry *e;
        if (slot == 0) {
            return 0;
        }
        e = &m->e[slot - 1];
        if (e->hash == hash && e->len == len && memcmp(m->arena + e->off, text, len) == 0) {
            return e->id;
        }
    }
}

const char *cs_frag_map_find_id(const cs_frag_map *m, int64_t id, size_t *len)
{
    if (m->n == 0) {
        return NULL;
    }
    for (size_t i = (size_t)mix64((uint64_t)id) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        uint32_t slot = m->by_id[i];
        const cs_frag_entry *e;
        if (slot == 0) {
            return NULL;
        }
        e = &m->e[slot - 1];
        if (e->id == id) {
            *len = e->len;
            return m->arena + e->off;
        }
    }
}

static void place(cs_frag_map *m, uint32_t idx)
{
    const cs_frag_entry *e = &m->e[idx];
    size_t i = (size_t)e->hash & (m->cap - 1);
    while (m->by_text[i]) {
        i = (i + 1) & (m->cap - 1);
    }
    m->by_text[i] = idx + 1;
    i = (size_t)mix64((uint64_t)e->id) & (m->cap - 1);
    while (m->by_id[i]) {
        i = (i + 1) & (m->cap - 1);
    }
    m->by_id[i] = idx + 1;
}

/* Makes room for one more entry: entries, tables (rehashed at load 1/2) and len arena bytes. */
static cs_rc reserve(cs_frag_map *m, size_t len)
{
    if (m->n == m->cap_e) {
        size_t ncap = m->cap_e ? 2 * m->cap_e : 64;
        cs_frag_entry *e = cs_realloc_array(m->e, ncap, sizeof(*e));
        if (!e) {
            return CS_ENOMEM;
        }
        m->e = e;
        m->cap_e = ncap;
    }
    if (2 * (m->n + 1) > m->cap) {
        size_t ncap = m->cap ? 2 * m->cap : 128;
        uint32_t *bt = cs_calloc_array(ncap, sizeof(*bt));
        uint32_t *bi = cs_calloc_array(ncap, sizeof(*bi));
        if (!bt || !bi) {
            free(bt);
            free(bi);
            return CS_ENOMEM;
        }
        free(m->by_text);
        free(m->by_id);
        m->by_text = bt;
        m->by_id = bi;
        m->cap = ncap;
        for (size_t i = 0; i < m->n; i++) {
            place(m, (uint32_t)i);
        }
    }
    if (m->arena_len + len + 1 > m->arena_cap) {
        size_t ncap = m->arena_cap ? m->arena_cap : 4096;
        char *a;
        while (ncap < m->arena_len + len + 1) {
            ncap *= 2;
        }
        a = realloc(m->arena, ncap);
        if (!a) {
            return CS_ENOMEM;
        }
        m->arena = a;
        m->arena_cap = ncap;
    }
    return CS_OK;
}

cs_rc cs_frag_map_add(cs_frag_map *m, int64_t id, const char *text, size_t len, uint64_t hash,
                      cs_err *err)
{
    cs_frag_entry *e;
    if (id <= 0) {
        return cs_err_set(err, CS_EINVAL, 0, "fragment map: id %lld", (long long)id);
    }
    if (m->n >= CS_FRAG_MAP_MAX || m->arena_len + len > CS_FRAG_MAP_BYTES) {
        cs_frag_map_clear(m);
    }
    if (reserve(m, len) != CS_OK) {
        return cs_err_set(err, CS_ENOMEM, 0, "fragment map: out of memory");
    }
    e = &m->e[m->n];
    e->id = id;
    e->hash = hash;
    e->off = m->arena_len;
    e->len = len;
    memcpy(m->arena + m->arena_len, text, len);
    m->arena[m->arena_len + len] = '\0';
    m->arena_len += len + 1;
    place(m, (uint32_t)m->n);
    m->n++;
    return CS_OK;
}
