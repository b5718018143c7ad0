/* cs_json.c - parsing with positions, JSON paths, diagnostics and checked getters over cJSON
 * (see cs_json.h). */
#include "cs_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cs_limits.h"
#include "cs_path.h"

#define MAX_INT_EXACT  9007199254740992.0 /* 2^53 */
#define DESCRIBE_CHARS 40
#define SUGGEST_MAX    64
#define DIAGS_DEFAULT  1000

/* CS_LIMIT_JSON_DEPTH as text, for messages. */
#define CS_JSON_STR(x)     #x
#define CS_JSON_XSTR(x)    CS_JSON_STR(x)
#define CS_JSON_DEPTH_TEXT CS_JSON_XSTR(CS_LIMIT_JSON_DEPTH)

/* ---- parsing ----------------------------------------------------------------------------- */

/* 1-based line and column (in code points) of text + off. */
static void line_col(const char *text, size_t off, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            (*line)++;
            *col = 1;
        } else if ((c & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid (overlong, surrogate, > 10FFFF,
 * truncated). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        return 0;
    }
    return len;
}

bool cs_utf8_valid(const char *s, size_t n, size_t *bad_off)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (k == 0) {
            if (bad_off) {
                *bad_off = i;
            }
            return false;
        }
        i += k;
    }
    return true;
}

/* Pre-scan for what cJSON accepts but we refuse: NUL bytes, invalid UTF-8 inside strings, the
 * \u0000 escape, and nesting deeper than CS_LIMIT_JSON_DEPTH (refused before any tree is built).
 * Returns the offset of the first problem and its description, or SIZE_MAX. Only what lies inside
 * string literals (as a JSON lexer sees them) is checked for UTF-8; anything malformed outside
 * strings is left to cJSON's syntax error. */
static size_t prescan(const char *text, size_t len, const char **what)
{
    const unsigned char *s = (const unsigned char *)text;
    bool in_str = false;
    size_t depth = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == 0) {
            *what = "NUL byte in JSON text";
            return i;
        }
        if (!in_str) {
            in_str = s[i] == '"';
            if (s[i] == '[' || s[i] == '{') {
                if (++depth > CS_LIMIT_JSON_DEPTH) {
                    *what = "nested deeper than " CS_JSON_DEPTH_TEXT " levels";
                    return i;
                }
            } else if ((s[i] == ']' || s[i] == '}') && depth > 0) {
                depth--;
            }
            continue;
        }
        if (s[i] == '"') {
            in_str = false;
        } else if (s[i] == '\\') {
            if (i + 5 < len && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0) {
                *what = "the escape \\u0000 is not allowed in strings";
                return i;
            }
            if (i + 1 < len) {
                i++; /* skip the escaped character (validated by cJSON) */
                if (s[i] == 0) {
                    *what = "NUL byte in JSON text";
                    return i;
                }
            }
        } else if (s[i] >= 0x80) {
            size_t n = utf8_seq(s + i, len - i);
            if (n == 0) {
                *what = "invalid UTF-8 in string";
                return i;
            }
            i += n - 1;
        }
    }
    return SIZE_MAX;
}

/* Writes up to 16 characters of text at off, non-printable bytes as '?', into buf. */
static void near_text(const char *text, size_t len, size_t off, char *buf, size_t n)
{
    size_t j = 0;
    for (size_t i = off; i < len && j + 1 < n && i < off + 16; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            break;
        }
        buf[j++] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    buf[j] = '\0';
}

/* ---- duplicate keys: O(n log n) in the members of an object ----------------------------- */

/* Objects up to this many members are checked pairwise (at most 28 comparisons, no allocation). */
#define DUP_PAIRWISE 8

typedef struct key_ref {
    const cJSON *item;
    size_t pos; /* index in the object */
} key_ref;

/* By key, then by position: equal keys end up adjacent, in document order. */
static int key_ref_cmp(const key_ref *a, const key_ref *b, size_t *n_cmp)
{
    int c = strcmp(a->item->string, b->item->string);
    (*n_cmp)++;
    if (c != 0) {
        return c;
    }
    return (a->pos > b->pos) - (a->pos < b->pos);
}

/* Bottom-up merge sort of a[0..n) using tmp[0..n); worst case n * ceil(log2 n) comparisons,
 * whatever the keys (no hash an attacker could flood). Returns the array holding the result. */
static key_ref *merge_sort(key_ref *a, key_ref *tmp, size_t n, size_t *n_cmp)
{
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                tmp[k++] = key_ref_cmp(&a[j], &a[i], n_cmp) < 0 ? a[j++] : a[i++];
            }
            while (i < mid) {
                tmp[k++] = a[i++];
            }
            while (j < hi) {
                tmp[k++] = a[j++];
            }
        }
        key_ref *t = a;
        a = tmp;
        tmp = t;
    }
    return a;
}

cs_rc cs_json_find_duplicate(const cJSON *obj, const cJSON **dup, size_t *n_cmp)
{
    size_t n = 0, pos = 0, cmp = 0, best = SIZE_MAX;
    key_ref *refs = NULL, *sorted;
    const cJSON *a, *b;

    *dup = NULL;
    if (!cJSON_IsObject(obj)) {
        return CS_OK;
    }
    for (a = obj->child; a; a = a->next) {
        n++;
    }
    if (n <= DUP_PAIRWISE) {
        for (a = obj->child; a && !*dup; a = a->next) {
            for (b = obj->child; b != a; b = b->next) {
                cmp++;
                if (strcmp(a->string, b->string) == 0) {
                    *dup = a;
                    break;
                }
            }
        }
        goto out;
    }
    refs = cs_alloc_array(2 * n, sizeof(*refs));
    if (!refs) {
        return CS_ENOMEM;
    }
    for (a = obj->child; a; a = a->next, pos++) {
        refs[pos] = (key_ref){a, pos};
    }
    sorted = merge_sort(refs, refs + n, n, &cmp);
    /* The first duplicate in document order: the smallest position that follows an equal key. */
    for (size_t i = 1; i < n; i++) {
        if (sorted[i].pos < best &&
            strcmp(sorted[i].item->string, sorted[i - 1].item->string) == 0) {
            best = sorted[i].pos;
            *dup = sorted[i].item;
        }
    }
    cmp += n - 1;
    free(refs);
out:
    if (n_cmp) {
        *n_cmp += cmp;
    }
    return CS_OK;
}

/* Refuses numbers beyond a double and duplicate keys. path NULL: a quick pass that only returns
 * the code; the caller walks again with a path for the message (errors are rare, paths are not
 * free: every key of every message would be formatted). The depth is bounded by prescan. */
static cs_rc check_tree(const cJSON *v, cs_jpath *path, const char *name, cs_err *err)
{
    const cJSON *a, *dup = NULL;
    size_t i = 0;
    cs_rc rc;
    if (cJSON_IsNumber(v) && !isfinite(v->valuedouble)) {
        return path ? cs_err_set(err, CS_EPARSE, 0, "%s: %s: number out of range of a double", name,
                                 cs_jpath_display(path))
                    : CS_EPARSE;
    }
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) {
        return CS_OK;
    }
    if (cs_json_find_duplicate(v, &dup, NULL) != CS_OK) {
        return cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory", name);
    }
    if (dup) {
        return path ? cs_err_set(err, CS_EPARSE, 0, "%s: %s: duplicate key \"%.60s\"", name,
                                 cs_jpath_display(path), dup->string)
                    : CS_EPARSE;
    }
    for (a = v->child; a; a = a->next, i++) {
        if (path && cJSON_IsObject(v)) {
            cs_jpath_push_key(path, a->string);
        } else if (path) {
            cs_jpath_push_index(path, i);
        }
        rc = check_tree(a, path, name, err);
        if (path) {
            cs_jpath_pop(path);
        }
        if (rc != CS_OK) {
            return rc;
        }
    }
    return CS_OK;
}

cs_rc cs_json_parse(const char *text, size_t len, const char *name, cJSON **out, cs_err *err)
{
    char *copy = NULL;
    const char *end = NULL, *what = NULL;
    cJSON *tree = NULL;
    cs_jpath path;
    size_t off, line, col, ws = 0;
    char near[20];
    cs_rc rc = CS_OK;

    *out = NULL;
    if (!name) {
        name = "<input>";
    }
    if (!text && len > 0) {
        return cs_err_set(err, CS_EINVAL, 0, "%s: no text", name);
    }
    while (ws < len &&
           (text[ws] == ' ' || text[ws] == '\t' || text[ws] == '\n' || text[ws] == '\r')) {
        ws++;
    }
    if (ws == len) {
        line_col(text, len, &line, &col);
        return cs_err_set(err, CS_EPARSE, 0, "%s:%zu:%zu: empty document", name, line, col);
    }
    off = prescan(text, len, &what);
    if (off != SIZE_MAX) {
        line_col(text, off, &line, &col);
        return cs_err_set(err, CS_EPARSE, 0, "%s:%zu:%zu: %s", name, line, col, what);
    }
    /* cJSON's require_null_terminated needs the terminator inside buffer_length. */
    copy = malloc(len + 1);
    if (!copy) {
        return cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory", name);
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    tree = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
    if (!tree) {
        off = (end && end >= copy && end <= copy + len) ? (size_t)(end - copy) : len;
        line_col(copy, off, &line, &col);
        if (off >= len) {
            rc = cs_err_set(err, CS_EPARSE, 0, "%s:%zu:%zu: unexpected end of JSON text", name,
                            line, col);
        } else {
            near_text(copy, len, off, near, sizeof(near));
            rc = cs_err_set(err, CS_EPARSE, 0, "%s:%zu:%zu: syntax error near '%s'", name, line,
                            col, near);
        }
        goto out;
    }
    rc = check_tree(tree, NULL, name, err);
    if (rc == CS_EPARSE) {
        cs_jpath_init(&path);
        rc = check_tree(tree, &path, name, err);
    }
    if (rc != CS_OK) {
        cJSON_Delete(tree);
        tree = NULL;
        goto out;
    }
    *out = tree;
out:
    free(copy);
    return rc;
}

cs_rc cs_json_parse_file(const char *path, size_t max_bytes, cJSON **out, cs_err *err)
{
    char *text = NULL;
    size_t len = 0;
    cs_rc rc;
    *out = NULL;
    rc = cs_path_read_file(path, max_bytes ? max_bytes : CS_JSON_MAX_FILE, &text, &len, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = cs_json_parse(text, len, path, out, err);
    free(text);
    return rc;
}

/* ---- JSON paths -------------------------------------------------------------------------- */

static bool key_is_bare(const char *key)
{
    if (!key[0]) {
        return false;
    }
    for (const char *k = key; *k; k++) {
        char c = *k;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

cs_rc cs_jpath_append_key(cs_buf *out, const char *key)
{
    cs_buf t = {0};
    cs_rc rc = CS_OK;
    if (!key) {
        key = "";
    }
    if (key_is_bare(key)) {
        if (out->len > 0) {
            rc = cs_buf_putc(&t, '.');
        }
        if (rc == CS_OK) {
            rc = cs_buf_puts(&t, key);
        }
    } else {
        rc = cs_buf_puts(&t, "[\"");
        for (const unsigned char *k = (const unsigned char *)key; *k && rc == CS_OK; k++) {
            if (*k == '"' || *k == '\\') {
                rc = cs_buf_printf(&t, "\\%c", *k);
            } else if (*k < 0x20) {
                rc = cs_buf_printf(&t, "\\u%04x", *k);
            } else {
                rc = cs_buf_putc(&t, (char)*k);
            }
        }
        if (rc == CS_OK) {
            rc = cs_buf_puts(&t, "\"]");
        }
    }
    if (rc == CS_OK) {
        rc = cs_buf_append(out, t.data, t.len);
    }
    cs_buf_fini(&t);
    return rc;
}

void cs_jpath_init(cs_jpath *p)
{
    p->buf[0] = '\0';
    p->len = 0;
    p->depth = 0;
    p->hidden = 0;
}

static void jpath_terminate(cs_jpath *p)
{
    if (p->hidden > 0) {
        memcpy(p->buf + p->len, "...", 4);
    } else {
        p->buf[p->len] = '\0';
    }
}

/* Pushes the component text[0..n): shown if it fits and nothing before it is hidden. */
static void jpath_push(cs_jpath *p, const char *text, size_t n)
{
    if (p->depth < CS_JPATH_DEPTH) {
        p->marks[p->depth] = p->len;
    }
    p->depth++;
    if (p->hidden > 0 || p->depth > CS_JPATH_DEPTH || n == 0 || p->len + n > CS_JPATH_MAX) {
        p->hidden++;
    } else {
        memcpy(p->buf + p->len, text, n);
        p->len += n;
    }
    jpath_terminate(p);
}

void cs_jpath_push_key(cs_jpath *p, const char *key)
{
    char tmp[CS_JPATH_MAX + 1];
    size_t n = 0;
    if (!key) {
        key = "";
    }
    if (key_is_bare(key)) {
        size_t kl = strlen(key);
        if (p->len > 0) {
            tmp[n++] = '.';
        }
        if (kl + n <= CS_JPATH_MAX) {
            memcpy(tmp + n, key, kl);
            n += kl;
        } else {
            n = 0; /* too long to show */
        }
    } else {
        /* Quoted form, built with the same escaping as cs_jpath_append_key. */
        tmp[n++] = '[';
        tmp[n++] = '"';
        for (const unsigned char *k = (const unsigned char *)key; *k; k++) {
            if (n + 8 > CS_JPATH_MAX) {
                n = 0;
                break;
            }
            if (*k == '"' || *k == '\\') {
                tmp[n++] = '\\';
                tmp[n++] = (char)*k;
            } else if (*k < 0x20) {
                n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "\\u%04x", *k);
            } else {
                tmp[n++] = (char)*k;
            }
        }
        if (n > 0) {
            tmp[n++] = '"';
            tmp[n++] = ']';
        }
    }
    jpath_push(p, tmp, n);
}

void cs_jpath_push_index(cs_jpath *p, size_t index)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "[%zu]", index);
    jpath_push(p, tmp, n > 0 ? (size_t)n : 0);
}

void cs_jpath_pop(cs_jpath *p)
{
    size_t d;
    if (p->depth == 0) {
        return;
    }
    d = --p->depth;
    if (p->hidden > 0 && (d >= CS_JPATH_DEPTH || p->marks[d] == p->len)) {
        p->hidden--; /* the popped component was not shown */
    } else if (d < CS_JPATH_DEPTH) {
        p->len = p->marks[d];
    }
    jpath_terminate(p);
}

const char *cs_jpath_str(const cs_jpath *p)
{
    return p->buf;
}

const char *cs_jpath_display(const cs_jpath *p)
{
    return p->buf[0] ? p->buf : "(root)";
}

/* ---- diagnostics ------------------------------------------------------------------------- */

void cs_diags_init(cs_diags *d)
{
    memset(d, 0, sizeof(*d));
}

void cs_diags_fini(cs_diags *d)
{
    size_t max;
    if (!d) {
        return;
    }
    for (size_t i = 0; i < d->len; i++) {
        free(d->items[i].path);
        free(d->items[i].message);
    }
    free(d->items);
    max = d->max_items;
    memset(d, 0, sizeof(*d));
    d->max_items = max;
}

static cs_rc diags_vadd(cs_diags *d, cs_diag_severity sev, const cJSON *node, const char *path,
                        const char *fmt, va_list ap) CS_PRINTF(5, 0);
static cs_rc diags_vadd(cs_diags *d, cs_diag_severity sev, const cJSON *node, const char *path,
                        const char *fmt, va_list ap)
{
    size_t max = d->max_items ? d->max_items : DIAGS_DEFAULT;
    cs_buf msg = {0};
    cs_diag *it;
    char *p = NULL;
    if (sev == CS_DIAG_ERROR) {
        d->n_errors++;
    } else {
        d->n_warnings++;
    }
    if (d->len >= max) {
        d->n_dropped++;
        return CS_OK;
    }
    if (d->len == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        cs_diag *items = cs_realloc_array(d->items, cap, sizeof(*items));
        if (!items) {
            d->n_dropped++;
            return CS_ENOMEM;
        }
        d->items = items;
        d->cap = cap;
    }
    {
        va_list cp;
        char first[256];
        int n;
        va_copy(cp, ap);
        n = vsnprintf(first, sizeof(first), fmt, cp);
        va_end(cp);
        if (n < 0) {
            first[0] = '\0';
            n = 0;
        }
        if ((size_t)n < sizeof(first)) {
            if (cs_buf_puts(&msg, first) != CS_OK) {
                goto oom;
            }
        } else {
            if (cs_buf_reserve(&msg, (size_t)n + 1) != CS_OK) {
                goto oom;
            }
            vsnprintf(msg.data, (size_t)n + 1, fmt, ap);
            msg.len = (size_t)n;
        }
        if (!msg.data && cs_buf_reserve(&msg, 1) != CS_OK) {
            goto oom;
        }
    }
    p = cs_strdup(path ? path : "");
    if (!p) {
        goto oom;
    }
    it = &d->items[d->len];
    it->severity = sev;
    it->path = p;
    it->message = cs_buf_take(&msg);
    it->node = node;
    it->seq = d->n_errors + d->n_warnings;
    d->len++;
    return CS_OK;
oom:
    cs_buf_fini(&msg);
    free(p);
    d->n_dropped++;
    return CS_ENOMEM;
}

cs_rc cs_diags_add(cs_diags *d, cs_diag_severity sev, const cJSON *node, const char *path,
                   const char *fmt, ...)
{
    va_list ap;
    cs_rc rc;
    va_start(ap, fmt);
    rc = diags_vadd(d, sev, node, path, fmt, ap);
    va_end(ap);
    return rc;
}

/* Pre-order position of each node, found by one walk of the document. */
typedef struct node_pos {
    const cJSON *node;
    size_t pos;
} node_pos;

static int node_pos_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const node_pos *)a)->node;
    uintptr_t y = (uintptr_t)((const node_pos *)b)->node;
    return (x > y) - (x < y);
}

/* Walks v in pre-order, numbering nodes; records the number of each node present in tab. */
static void number_nodes(const cJSON *v, size_t *counter, node_pos *tab, size_t n)
{
    node_pos key = {v, 0};
    node_pos *hit;
    size_t here = (*counter)++;
    hit = n ? bsearch(&key, tab, n, sizeof(*tab), node_pos_cmp) : NULL;
    if (hit) {
        /* Several diagnostics may name one node: bsearch finds one of the run; fill them all. */
        node_pos *lo = hit, *hi = hit;
        while (lo > tab && (lo - 1)->node == v) {
            lo--;
        }
        while (hi + 1 < tab + n && (hi + 1)->node == v) {
            hi++;
        }
        for (node_pos *q = lo; q <= hi; q++) {
            q->pos = here;
        }
    }
    for (const cJSON *c = v->child; c && (cJSON_IsObject(v) || cJSON_IsArray(v)); c = c->next) {
        number_nodes(c, counter, tab, n);
    }
}

/* The deepest node of doc on path (as cs_jpath writes it). */
static const cJSON *resolve_path(const cJSON *doc, const char *path)
{
    const cJSON *cur = doc;
    const char *p = path;
    char key[CS_JPATH_MAX + 1];
    while (*p && cur) {
        const cJSON *next = NULL;
        size_t n = 0;
        if (*p == '.') {
            p++;
        }
        if (p[0] == '[' && p[1] == '"') {
            p += 2;
            while (*p && *p != '"' && n < CS_JPATH_MAX) {
                if (*p == '\\' && p[1] == 'u') {
                    unsigned v = 0;
                    for (int i = 2; i < 6 && p[i]; i++) {
                        char h = p[i];
                        v = v * 16 + (unsigned)(h >= 'a' ? h - 'a' + 10 : h - '0');
                    }
                    key[n++] = (char)v;
                    p += 6;
                    continue;
                }
                if (*p == '\\' && p[1]) {
                    p++;
                }
                key[n++] = *p++;
            }
            key[n] = '\0';
            if (*p != '"' || p[1] != ']') {
                break;
            }
            p += 2;
            next = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, key) : NULL;
        } else if (p[0] == '[') {
            char *end = NULL;
            unsigned long long idx = strtoull(p + 1, &end, 10);
            if (!end || *end != ']') {
                break;
            }
            p = end + 1;
            if (cJSON_IsArray(cur) && idx <= (unsigned long long)INT32_MAX) {
                next = cJSON_GetArrayItem(cur, (int)idx);
            }
        } else {
            while (*p && *p != '.' && *p != '[' && n < CS_JPATH_MAX) {
                key[n++] = *p++;
            }
            key[n] = '\0';
            next = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, key) : NULL;
        }
        if (!next) {
            break;
        }
        cur = next;
    }
    return cur;
}

typedef struct sort_key {
    size_t pos; /* pre-order position, SIZE_MAX if unplaced */
    size_t seq; /* insertion order */
    size_t idx; /* index into items */
} sort_key;

static int sort_key_cmp(const void *a, const void *b)
{
    const sort_key *x = a, *y = b;
    if (x->pos != y->pos) {
        return x->pos < y->pos ? -1 : 1;
    }
    return (x->seq > y->seq) - (x->seq < y->seq);
}

void cs_diags_sort(cs_diags *d, const cJSON *doc)
{
    node_pos *tab = NULL;
    sort_key *keys = NULL;
    cs_diag *sorted = NULL;
    size_t counter = 0;
    if (!d || d->len < 2 || !doc) {
        return;
    }
    tab = cs_alloc_array(d->len * 2, sizeof(*tab));
    keys = cs_alloc_array(d->len, sizeof(*keys));
    sorted = cs_alloc_array(d->len, sizeof(*sorted));
    if (!tab || !keys || !sorted) {
        goto out; /* keep insertion order */
    }
    for (size_t i = 0; i < d->len; i++) {
        const cs_diag *it = &d->items[i];
        keys[i].idx = i;
        keys[i].seq = it->seq;
        tab[2 * i].node = it->node;
        tab[2 * i].pos = SIZE_MAX;
        tab[2 * i + 1].node = resolve_path(doc, it->path);
        tab[2 * i + 1].pos = SIZE_MAX;
    }
    {
        /* Sort a copy by pointer, number, then look each item's two candidates up. */
        node_pos *bynode = cs_alloc_array(d->len * 2, sizeof(*bynode));
        if (!bynode) {
            goto out;
        }
        memcpy(bynode, tab, d->len * 2 * sizeof(*tab));
        qsort(bynode, d->len * 2, sizeof(*bynode), node_pos_cmp);
        number_nodes(doc, &counter, bynode, d->len * 2);
        for (size_t i = 0; i < d->len; i++) {
            size_t pos = SIZE_MAX;
            for (int k = 0; k < 2 && pos == SIZE_MAX; k++) {
                node_pos q = {tab[2 * i + (size_t)k].node, 0};
                node_pos *hit =
                        q.node ? bsearch(&q, bynode, d->len * 2, sizeof(*bynode), node_pos_cmp)
                               : NULL;
                if (hit) {
                    pos = hit->pos;
                }
            }
            keys[i].pos = pos;
        }
        free(bynode);
    }
    qsort(keys, d->len, sizeof(*keys), sort_key_cmp);
    for (size_t i = 0; i < d->len; i++) {
        sorted[i] = d->items[keys[i].idx];
    }
    memcpy(d->items, sorted, d->len * sizeof(*sorted));
out:
    free(tab);
    free(keys);
    free(sorted);
}

cs_rc cs_diags_format(cs_diags *d, const cJSON *doc, const char *source, cs_buf *out)
{
    cs_rc rc = CS_OK;
    cs_diags_sort(d, doc);
    for (size_t i = 0; i < d->len && rc == CS_OK; i++) {
        const cs_diag *it = &d->items[i];
        rc = cs_buf_printf(out, "%s%s%s: %s: %s\n", source ? source : "", source ? ": " : "",
                           it->severity == CS_DIAG_ERROR ? "error" : "warning",
                           it->path[0] ? it->path : "(root)", it->message);
    }
    if (rc == CS_OK && d->n_dropped > 0) {
        rc = cs_buf_printf(out, "%s%s... and %zu more\n", source ? source : "", source ? ": " : "",
                           d->n_dropped);
    }
    return rc;
}

cs_rc cs_diags_print(cs_diags *d, const cJSON *doc, const char *source, FILE *f)
{
    cs_buf b = {0};
    cs_rc rc = cs_diags_format(d, doc, source, &b);
    if (rc == CS_OK && b.len > 0 && (fwrite(b.data, 1, b.len, f) != b.len || fflush(f) != 0)) {
        rc = CS_EIO;
    }
    cs_buf_fini(&b);
    return rc;
}

cs_rc cs_diags_to_err(const cs_diags *d, cs_err *err)
{
    size_t more;
    if (d->n_errors == 0) {
        return CS_OK;
    }
    more = d->n_errors - 1;
    for (size_t i = 0; i < d->len; i++) {
        const cs_diag *it = &d->items[i];
        if (it->severity != CS_DIAG_ERROR) {
            continue;
        }
        if (more > 0) {
            return cs_err_set(err, CS_ESCHEMA, 0, "%s: %s (and %zu more error%s)",
                              it->path[0] ? it->path : "(root)", it->message, more,
                              more == 1 ? "" : "s");
        }
        return cs_err_set(err, CS_ESCHEMA, 0, "%s: %s", it->path[0] ? it->path : "(root)",
                          it->message);
    }
    return cs_err_set(err, CS_ESCHEMA, 0, "%zu errors (details not kept)", d->n_errors);
}

/* ---- checked walks ----------------------------------------------------------------------- */

void cs_jctx_init(cs_jctx *c, cs_diags *diags, cs_err *err)
{
    cs_jpath_init(&c->path);
    c->diags = diags;
    c->err = err;
    c->n_errors = 0;
    c->oom = CS_OK;
}

static cs_rc jctx_vreport(cs_jctx *c, cs_diag_severity sev, const cJSON *node,
                          const char *child_key, const char *fmt, va_list ap) CS_PRINTF(5, 0);
static cs_rc jctx_vreport(cs_jctx *c, cs_diag_severity sev, const cJSON *node,
                          const char *child_key, const char *fmt, va_list ap)
{
    if (child_key) {
        cs_jpath_push_key(&c->path, child_key);
    }
    if (c->diags) {
        va_list cp;
        va_copy(cp, ap);
        if (diags_vadd(c->diags, sev, node, cs_jpath_str(&c->path), fmt, cp) != CS_OK) {
            c->oom = CS_ENOMEM;
        }
        va_end(cp);
    }
    if (sev == CS_DIAG_ERROR) {
        if (c->n_errors == 0 && c->err) {
            char msg[sizeof(c->err->msg)];
            vsnprintf(msg, sizeof(msg), fmt, ap);
            cs_err_set(c->err, CS_ESCHEMA, 0, "%s: %s", cs_jpath_display(&c->path), msg);
        }
        c->n_errors++;
    }
    if (child_key) {
        cs_jpath_pop(&c->path);
    }
    return sev == CS_DIAG_ERROR ? CS_ESCHEMA : CS_OK;
}

cs_rc cs_jctx_error(cs_jctx *c, const cJSON *node, const char *child_key, const char *fmt, ...)
{
    va_list ap;
    cs_rc rc;
    va_start(ap, fmt);
    rc = jctx_vreport(c, CS_DIAG_ERROR, node, child_key, fmt, ap);
    va_end(ap);
    return rc;
}

cs_rc cs_jctx_warn(cs_jctx *c, const cJSON *node, const char *child_key, const char *fmt, ...)
{
    va_list ap;
    cs_rc rc;
    va_start(ap, fmt);
    rc = jctx_vreport(c, CS_DIAG_WARNING, node, child_key, fmt, ap);
    va_end(ap);
    return rc;
}

const char *cs_json_type_name(const cJSON *v)
{
    if (!v) {
        return "nothing";
    }
    switch (v->type & 0xFF) {
    case cJSON_String:
        return "a string";
    case cJSON_Number:
        return "a number";
    case cJSON_True:
    case cJSON_False:
        return "a boolean";
    case cJSON_NULL:
        return "null";
    case cJSON_Object:
        return "an object";
    case cJSON_Array:
        return "an array";
    default:
        return "an invalid value";
    }
}

char *cs_json_describe(const cJSON *v, char *buf, size_t n)
{
    if (n == 0) {
        return buf;
    }
    if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
        fabs(v->valuedouble) < 1e15) {
        snprintf(buf, n, "%.0f", v->valuedouble); /* an integer reads as one: 2000000, not 2e+06 */
    } else if (cJSON_IsNumber(v)) {
        snprintf(buf, n, "%.17g", v->valuedouble);
        /* Prefer the short spelling when it reads back the same. */
        for (int p = 1; p < 17; p++) {
            char t[40];
            snprintf(t, sizeof(t), "%.*g", p, v->valuedouble);
            if (strtod(t, NULL) == v->valuedouble) {
                snprintf(buf, n, "%s", t);
                break;
            }
        }
    } else if (cJSON_IsString(v) && v->valuestring) {
        size_t len = strlen(v->valuestring);
        if (len > DESCRIBE_CHARS) {
            size_t cut = DESCRIBE_CHARS;
            while (cut > 0 && ((unsigned char)v->valuestring[cut] & 0xC0) == 0x80) {
                cut--; /* do not split a UTF-8 sequence */
            }
            snprintf(buf, n, "\"%.*s...\"", (int)cut, v->valuestring);
        } else {
            snprintf(buf, n, "\"%s\"", v->valuestring);
        }
    } else if (cJSON_IsTrue(v)) {
        snprintf(buf, n, "true");
    } else if (cJSON_IsFalse(v)) {
        snprintf(buf, n, "false");
    } else {
        snprintf(buf, n, "%s", cJSON_IsNull(v) ? "null" : cs_json_type_name(v));
    }
    return buf;
}

static cs_rc wrong_type(cs_jctx *c, const cJSON *v, const char *want)
{
    char got[64];
    return cs_jctx_error(c, v, NULL, "expected %s, got %s", want,
                         cs_json_describe(v, got, sizeof(got)));
}

cs_rc cs_json_as_string(cs_jctx *c, const cJSON *v, const char **out)
{
    *out = NULL;
    if (!cJSON_IsString(v) || !v->valuestring) {
        return wrong_type(c, v, "a string");
    }
    *out = v->valuestring;
    return CS_OK;
}

cs_rc cs_json_as_bool(cs_jctx *c, const cJSON *v, bool *out)
{
    *out = false;
    if (!cJSON_IsBool(v)) {
        return wrong_type(c, v, "a boolean");
    }
    *out = cJSON_IsTrue(v);
    return CS_OK;
}

/* "a positive integer", "an integer in 2..8", ... for the bounds. */
static void int_want(int64_t min, int64_t max, char *buf, size_t n)
{
    bool lo = min > INT64_MIN, hi = max < INT64_MAX;
    if (min == 1 && !hi) {
        snprintf(buf, n, "a positive integer");
    } else if (min == 0 && !hi) {
        snprintf(buf, n, "a non-negative integer");
    } else if (lo && hi) {
        snprintf(buf, n, "an integer in %lld..%lld", (long long)min, (long long)max);
    } else if (lo) {
        snprintf(buf, n, "an integer >= %lld", (long long)min);
    } else if (hi) {
        snprintf(buf, n, "an integer <= %lld", (long long)max);
    } else {
        snprintf(buf, n, "an integer");
    }
}

cs_rc cs_json_as_int(cs_jctx *c, const cJSON *v, int64_t min, int64_t max, int64_t *out)
{
    char want[96];
    double x;
    int64_t i;
    *out = 0;
    int_want(min, max, want, sizeof(want));
    if (!cJSON_IsNumber(v)) {
        return wrong_type(c, v, want);
    }
    x = v->valuedouble;
    if (!isfinite(x) || floor(x) != x || fabs(x) > MAX_INT_EXACT) {
        return wrong_type(
                c, v, fabs(x) > MAX_INT_EXACT && floor(x) == x ? "an integer within +-2^53" : want);
    }
    i = (int64_t)x;
    if (i < min || i > max) {
        return wrong_type(c, v, want);
    }
    *out = i;
    return CS_OK;
}

cs_rc cs_json_as_number(cs_jctx *c, const cJSON *v, double min, double max, double *out)
{
    char want[96];
    *out = 0;
    if (min > -INFINITY && max < INFINITY) {
        snprintf(want, sizeof(want), "a number in %.17g..%.17g", min, max);
    } else if (min > -INFINITY) {
        snprintf(want, sizeof(want), "a number >= %.17g", min);
    } else if (max < INFINITY) {
        snprintf(want, sizeof(want), "a number <= %.17g", max);
    } else {
        snprintf(want, sizeof(want), "a number");
    }
    /* %.17g spells 0.1 as 0.10000000000000001: use the short form for the bounds. */
    if (min > -INFINITY || max < INFINITY) {
        char a[40], b[40];
        cJSON lo = {0}, hi = {0};
        lo.type = hi.type = cJSON_Number;
        lo.valuedouble = min;
        hi.valuedouble = max;
        cs_json_describe(&lo, a, sizeof(a));
        cs_json_describe(&hi, b, sizeof(b));
        if (min > -INFINITY && max < INFINITY) {
            snprintf(want, sizeof(want), "a number in %s..%s", a, b);
        } else if (min > -INFINITY) {
            snprintf(want, sizeof(want), "a number >= %s", a);
        } else {
            snprintf(want, sizeof(want), "a number <= %s", b);
        }
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < min ||
        v->valuedouble > max) {
        return wrong_type(c, v, want);
    }
    *out = v->valuedouble;
    return CS_OK;
}

cs_rc cs_json_as_object(cs_jctx *c, const cJSON *v)
{
    return cJSON_IsObject(v) ? CS_OK : wrong_type(c, v, "an object");
}

cs_rc cs_json_as_array(cs_jctx *c, const cJSON *v)
{
    return cJSON_IsArray(v) ? CS_OK : wrong_type(c, v, "an array");
}

/* The member, or NULL: after reporting it (required and missing, or obj not an object) or
 * silently (optional and absent or null); *rc says which. Pushes key when it returns non-NULL. */
static const cJSON *member(cs_jctx *c, const cJSON *obj, const char *key, bool required, cs_rc *rc)
{
    const cJSON *v;
    *rc = CS_OK;
    if (!cJSON_IsObject(obj)) {
        *rc = cs_jctx_error(c, obj, NULL, "expected an object with key \"%s\", got %s", key,
                            cs_json_type_name(obj));
        return NULL;
    }
    v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || (!required && cJSON_IsNull(v))) {
        if (required) {
            *rc = cs_jctx_error(c, obj, NULL, "missing required key \"%s\"", key);
        }
        return NULL;
    }
    cs_jpath_push_key(&c->path, key);
    return v;
}

cs_rc cs_json_req_string(cs_jctx *c, const cJSON *obj, const char *key, const char **out)
{
    cs_rc rc;
    const cJSON *v = member(c, obj, key, true, &rc);
    *out = NULL;
    if (!v) {
        return rc;
    }
    rc = cs_json_as_string(c, v, out);
    cs_jpath_pop(&c->path);
    return rc;
}

cs_rc cs_json_opt_string(cs_jctx *c, const cJSON *obj, const char *key, const char *def,
                         const char **out)
{
    cs_rc rc;
    const cJSON *v = member(c, obj, key, false, &rc);
    *out = def;
    if (!v) {
        return rc;
    }
    rc = cs_json_as_string(c, v, out);
    cs_jpath_pop(&c->path);
    if (rc != CS_OK) {
        *out = def;
    }
    return rc;
}

/* The member key of obj as a boolean, integer or number: required or optional (absent or null
 * gives def); *out = def (0 for the required) when it is missing or wrong. */
static cs_rc get_bool(cs_jctx *c, const cJSON *obj, const char *key, bool required, bool def,
                      bool *out)
{
    cs_rc rc;
    const cJSON *v = member(c, obj, key, required, &rc);
    if (v) {
        rc = cs_json_as_bool(c, v, out);
        cs_jpath_pop(&c->path);
    }
    if (!v || rc != CS_OK) {
        *out = def;
    }
    return rc;
}

static cs_rc get_int(cs_jctx *c, const cJSON *obj, const char *key, bool required, int64_t def,
                     int64_t min, int64_t max, int64_t *out)
{
    cs_rc rc;
    const cJSON *v = member(c, obj, key, required, &rc);
    if (v) {
        rc = cs_json_as_int(c, v, min, max, out);
        cs_jpath_pop(&c->path);
    }
    if (!v || rc != CS_OK) {
        *out = def;
    }
    return rc;
}

static cs_rc get_number(cs_jctx *c, const cJSON *obj, const char *key, bool required, double def,
                        double min, double max, double *out)
{
    cs_rc rc;
    const cJSON *v = member(c, obj, key, required, &rc);
    if (v) {
        rc = cs_json_as_number(c, v, min, max, out);
        cs_jpath_pop(&c->path);
    }
    if (!v || rc != CS_OK) {
        *out = def;
    }
    return rc;
}

cs_rc cs_json_req_bool(cs_jctx *c, const cJSON *obj, const char *key, bool *out)
{
    return get_bool(c, obj, key, true, false, out);
}

cs_rc cs_json_opt_bool(cs_jctx *c, const cJSON *obj, const char *key, bool def, bool *out)
{
    return get_bool(c, obj, key, false, def, out);
}

cs_rc cs_json_req_int(cs_jctx *c, const cJSON *obj, const char *key, int64_t min, int64_t max,
                      int64_t *out)
{
    return get_int(c, obj, key, true, 0, min, max, out);
}

cs_rc cs_json_opt_int(cs_jctx *c, const cJSON *obj, const char *key, int64_t def, int64_t min,
                      int64_t max, int64_t *out)
{
    return get_int(c, obj, key, false, def, min, max, out);
}

cs_rc cs_json_req_number(cs_jctx *c, const cJSON *obj, const char *key, double min, double max,
                         double *out)
{
    return get_number(c, obj, key, true, 0, min, max, out);
}

cs_rc cs_json_opt_number(cs_jctx *c, const cJSON *obj, const char *key, double def, double min,
                         double max, double *out)
{
    return get_number(c, obj, key, false, def, min, max, out);
}

static cs_rc get_tree(cs_jctx *c, const cJSON *obj, const char *key, bool required, bool object,
                      const cJSON **out)
{
    cs_rc rc;
    const cJSON *v = member(c, obj, key, required, &rc);
    *out = NULL;
    if (!v) {
        return rc;
    }
    rc = object ? cs_json_as_object(c, v) : cs_json_as_array(c, v);
    cs_jpath_pop(&c->path);
    if (rc == CS_OK) {
        *out = v;
    }
    return rc;
}

cs_rc cs_json_req_object(cs_jctx *c, const cJSON *obj, const char *key, const cJSON **out)
{
    return get_tree(c, obj, key, true, true, out);
}

cs_rc cs_json_opt_object(cs_jctx *c, const cJSON *obj, const char *key, const cJSON **out)
{
    return get_tree(c, obj, key, false, true, out);
}

cs_rc cs_json_req_array(cs_jctx *c, const cJSON *obj, const char *key, const cJSON **out)
{
    return get_tree(c, obj, key, true, false, out);
}

cs_rc cs_json_opt_array(cs_jctx *c, const cJSON *obj, const char *key, const cJSON **out)
{
    return get_tree(c, obj, key, false, false, out);
}

cs_rc cs_json_check_keys(cs_jctx *c, const cJSON *obj, const char *const *known, size_t n_known,
                         cs_diag_severity sev)
{
    cs_rc rc = CS_OK;
    if (!cJSON_IsObject(obj)) {
        return cs_json_as_object(c, obj);
    }
    for (const cJSON *m = obj->child; m; m = m->next) {
        bool found = false;
        const char *hint;
        for (size_t i = 0; i < n_known && !found; i++) {
            found = strcmp(m->string, known[i]) == 0;
        }
        if (found) {
            continue;
        }
        hint = cs_json_suggest(m->string, known, n_known);
        if (sev == CS_DIAG_ERROR) {
            rc = hint ? cs_jctx_error(c, m, m->string, "unknown key (did you mean \"%s\"?)", hint)
                      : cs_jctx_error(c, m, m->string, "unknown key");
        } else if (hint) {
            cs_jctx_warn(c, m, m->string, "unknown key (did you mean \"%s\"?)", hint);
        } else {
            cs_jctx_warn(c, m, m->string, "unknown key");
        }
    }
    return rc;
}

/* ---- suggestions ------------------------------------------------------------------------- */

size_t cs_json_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t rows[3][SUGGEST_MAX + 1];
    size_t *pp, *prev, *cur;
    if (la > SUGGEST_MAX || lb > SUGGEST_MAX) {
        return SIZE_MAX;
    }
    pp = rows[0];
    prev = rows[1];
    cur = rows[2];
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t *t;
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = prev[j] + 1;
            if (cur[j - 1] + 1 < v) {
                v = cur[j - 1] + 1;
            }
            if (prev[j - 1] + cost < v) {
                v = prev[j - 1] + cost;
            }
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < v) {
                v = pp[j - 2] + 1; /* transposition */
            }
            cur[j] = v;
        }
        t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *cs_json_suggest(const char *word, const char *const *known, size_t n_known)
{
    size_t len, limit, best = SIZE_MAX;
    const char *hit = NULL;
    if (!word) {
        return NULL;
    }
    len = strlen(word);
    limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;
    for (size_t i = 0; i < n_known; i++) {
        size_t d;
        if (!known[i]) {
            continue;
        }
        d = cs_json_edit_distance(word, known[i]);
        if (d == 0) {
            return NULL; /* an exact match is not a suggestion */
        }
        if (d <= limit && d < len && d < best) {
            best = d;
            hit = known[i];
        }
    }
    return hit;
}

cJSON *cs_json_size_array(const size_t *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateNumber((double)v[i]);
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

cJSON *cs_json_double_array(const double *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateNumber(v[i]);
        if (!x || !cJSON_AddItemToArray(a, x)) {
            cJSON_Delete(x);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

bool cs_json_add(cJSON *obj, const char *key, cJSON *item)
{
    if (!item) {
        return false;
    }
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

bool cs_json_add_str_or_null(cJSON *obj, const char *key, const char *v)
{
    return cs_json_add(obj, key, v ? cJSON_CreateString(v) : cJSON_CreateNull());
}

bool cs_json_add_parsed(cJSON *obj, const char *key, const char *json)
{
    cJSON *v = json ? cJSON_Parse(json) : NULL;
    return cs_json_add(obj, key, v ? v : cJSON_CreateNull());
}
