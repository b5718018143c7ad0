/* cs_canon.c - canonical JSON and SHA-256 (see cs_canon.h for the rules). */
#include "cs_canon.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/sha256.h>
#include <mbedtls/version.h>

#include "cs_json.h"

#define MAX_INT_EXACT 9007199254740992.0 /* 2^53 */

cs_rc cs_canon_number(double v, char *buf, size_t n, cs_err *err)
{
    char t[48];
    const char *e;
    size_t mlen, w = 0;
    if (!isfinite(v)) {
        return cs_err_set(err, CS_ERANGE, 0, "number %s cannot be represented in JSON",
                          isnan(v) ? "NaN" : "Inf");
    }
    if (v == floor(v) && fabs(v) <= MAX_INT_EXACT) {
        /* The integer in plain decimal ("%.0f" gives the same digits; this is the common case of
         * every config and message, so without printf). -0 is 0. */
        uint64_t u = (uint64_t)fabs(v);
        char *d = t + sizeof(t) - 1;
        *d = '\0';
        do {
            *--d = (char)('0' + u % 10);
            u /= 10;
        } while (u > 0);
        if (v < 0) {
            *--d = '-';
        }
        memmove(t, d, (size_t)(t + sizeof(t) - d));
    } else {
        for (int p = 1; p <= 17; p++) {
            snprintf(t, sizeof(t), "%.*g", p, v);
            if (strtod(t, NULL) == v) {
                break;
            }
        }
        e = strchr(t, 'e');
        if (e) {
            /* mantissa, then "e", "-" if negative, exponent digits without leading zeros */
            char out[48];
            const char *d = e + 1;
            bool neg = false;
            mlen = (size_t)(e - t);
            memcpy(out, t, mlen);
            w = mlen;
            out[w++] = 'e';
            if (*d == '+' || *d == '-') {
                neg = *d == '-';
                d++;
            }
            while (d[0] == '0' && d[1] != '\0') {
                d++;
            }
            if (neg) {
                out[w++] = '-';
            }
            while (*d && w + 1 < sizeof(out)) {
                out[w++] = *d++;
            }
            out[w] = '\0';
            memcpy(t, out, w + 1);
        }
    }
    if (strlen(t) >= n) {
        return cs_err_set(err, CS_EINVAL, 0, "number buffer too small");
    }
    memcpy(buf, t, strlen(t) + 1);
    return CS_OK;
}

cs_rc cs_canon_put_string(cs_buf *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const char *run = s;
    cs_rc rc = cs_buf_putc(out, '"');
    for (const char *p = s; rc == CS_OK && *p; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[7];
        size_t elen = 2;
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        rc = cs_buf_append(out, run, (size_t)(p - run));
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (rc == CS_OK) {
            rc = cs_buf_append(out, esc, elen);
        }
        run = p + 1;
    }
    if (rc == CS_OK) {
        rc = cs_buf_puts(out, run);
    }
    if (rc == CS_OK) {
        rc = cs_buf_putc(out, '"');
    }
    return rc;
}

/* The functions below take path NULL for a quick pass that returns only the code: the caller
 * then walks again with a path to word the error (paths cost a copy of every key). */
#define PUSH_KEY(path, k)               \
    do {                                \
        if (path) {                     \
            cs_jpath_push_key(path, k); \
        }                               \
    } while (0)
#define PUSH_INDEX(path, i)               \
    do {                                  \
        if (path) {                       \
            cs_jpath_push_index(path, i); \
        }                                 \
    } while (0)
#define POP(path)               \
    do {                        \
        if (path) {             \
            cs_jpath_pop(path); \
        }                       \
    } while (0)

static cs_rc check_utf8(const char *s, const cs_jpath *path, const char *what, cs_err *err)
{
    size_t bad = 0;
    if (!cs_utf8_valid(s, strlen(s), &bad)) {
        return path ? cs_err_set(err, CS_EINVAL, 0, "%s: invalid UTF-8 in %s at byte %zu",
                                 cs_jpath_display(path), what, bad)
                    : CS_EINVAL;
    }
    return CS_OK;
}

static int member_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a;
    const cJSON *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string); /* compares as unsigned char: UTF-8 byte order */
}

/* raw_ok: cJSON_Raw items are copied as they are (cs_canon_append_trusted). */
static cs_rc canon(const cJSON *v, cs_buf *out, cs_jpath *path, size_t depth, bool raw_ok,
                   cs_err *err)
{
    const cJSON *small[16];
    const cJSON **members = small;
    size_t n = 0, i;
    char num[48];
    cs_rc rc = CS_OK;

    if (!v) {
        return path ? cs_err_set(err, CS_EINVAL, 0, "%s: missing value", cs_jpath_display(path))
                    : CS_EINVAL;
    }
    if (depth > CS_CANON_MAX_DEPTH) {
        return path ? cs_err_set(err, CS_ERANGE, 0, "%s: nested deeper than %d levels",
                                 cs_jpath_display(path), CS_CANON_MAX_DEPTH)
                    : CS_ERANGE;
    }
    switch (v->type & 0xFF) {
    case cJSON_False:
        return cs_buf_append(out, "false", 5);
    case cJSON_True:
        return cs_buf_append(out, "true", 4);
    case cJSON_NULL:
        return cs_buf_append(out, "null", 4);
    case cJSON_Number:
        rc = cs_canon_number(v->valuedouble, num, sizeof(num), path ? err : NULL);
        if (rc != CS_OK) {
            if (path) {
                cs_err_prefix(err, "%s", cs_jpath_display(path));
            }
            return rc;
        }
        return cs_buf_puts(out, num);
    case cJSON_String:
        if (!v->valuestring) {
            return path ? cs_err_set(err, CS_EINVAL, 0, "%s: string without text",
                                     cs_jpath_display(path))
                        : CS_EINVAL;
        }
        rc = check_utf8(v->valuestring, path, "string", err);
        return rc == CS_OK ? cs_canon_put_string(out, v->valuestring) : rc;
    case cJSON_Array:
        rc = cs_buf_putc(out, '[');
        i = 0;
        for (const cJSON *c = v->child; c && rc == CS_OK; c = c->next, i++) {
            if (i > 0) {
                rc = cs_buf_putc(out, ',');
            }
            PUSH_INDEX(path, i);
            if (rc == CS_OK) {
                rc = canon(c, out, path, depth + 1, raw_ok, err);
            }
            POP(path);
        }
        return rc == CS_OK ? cs_buf_putc(out, ']') : rc;
    case cJSON_Object:
        for (const cJSON *c = v->child; c; c = c->next) {
            if (!c->string) {
                return path ? cs_err_set(err, CS_EINVAL, 0, "%s: object member without a key",
                                         cs_jpath_display(path))
                            : CS_EINVAL;
            }
            rc = check_utf8(c->string, path, "key", err);
            if (rc != CS_OK) {
                return rc;
            }
            n++;
        }
        if (n > sizeof(small) / sizeof(small[0])) {
            members = cs_alloc_array(n, sizeof(*members));
            if (!members) {
                return path ? cs_err_set(err, CS_ENOMEM, 0, "canonical JSON") : CS_ENOMEM;
            }
        }
        i = 0;
        for (const cJSON *c = v->child; c; c = c->next) {
            members[i++] = c;
        }
        qsort(members, n, sizeof(*members), member_cmp);
        rc = cs_buf_putc(out, '{');
        for (i = 0; i < n && rc == CS_OK; i++) {
            if (i > 0 && strcmp(members[i - 1]->string, members[i]->string) == 0) {
                rc = path ? cs_err_set(err, CS_EINVAL, 0, "%s: duplicate key \"%.60s\"",
                                       cs_jpath_display(path), members[i]->string)
                          : CS_EINVAL;
                break;
            }
            if (i > 0) {
                rc = cs_buf_putc(out, ',');
            }
            if (rc == CS_OK) {
                rc = cs_canon_put_string(out, members[i]->string);
            }
            if (rc == CS_OK) {
                rc = cs_buf_putc(out, ':');
            }
            PUSH_KEY(path, members[i]->string);
            if (rc == CS_OK) {
                rc = canon(members[i], out, path, depth + 1, raw_ok, err);
            }
            POP(path);
        }
        if (members != small) {
            free(members);
        }
        return rc == CS_OK ? cs_buf_putc(out, '}') : rc;
    case cJSON_Raw:
        if (raw_ok && v->valuestring) {
            return cs_buf_puts(out, v->valuestring);
        }
        return path ? cs_err_set(err, CS_EINVAL, 0, "%s: raw JSON items cannot be canonicalised",
                                 cs_jpath_display(path))
                    : CS_EINVAL;
    default:
        return path ? cs_err_set(err, CS_EINVAL, 0, "%s: invalid item (type %d)",
                                 cs_jpath_display(path), v->type)
                    : CS_EINVAL;
    }
}

static cs_rc canon_append(const cJSON *tree, cs_buf *out, bool raw_ok, cs_err *err)
{
    size_t old = out->len;
    cs_jpath path;
    cs_rc rc = canon(tree, out, NULL, 0, raw_ok, NULL);
    if (rc != CS_OK && rc != CS_ENOMEM) {
        /* Again with a path, for the message. */
        if (out->data) {
            out->len = old;
            out->data[old] = '\0';
        }
        cs_jpath_init(&path);
        rc = canon(tree, out, &path, 0, raw_ok, err);
    }
    if (rc == CS_ENOMEM && (!err || err->rc != CS_ENOMEM)) {
        cs_err_set(err, CS_ENOMEM, 0, "canonical JSON: out of memory");
    }
    if (rc != CS_OK && out->data) {
        out->len = old;
        out->data[old] = '\0';
    }
    return rc;
}

cs_rc cs_canon_append(const cJSON *tree, cs_buf *out, cs_err *err)
{
    return canon_append(tree, out, false, err);
}

cs_rc cs_canon_append_trusted(const cJSON *tree, cs_buf *out, cs_err *err)
{
    return canon_append(tree, out, true, err);
}

/* ---- is a text canonical? --------------------------------------------------------------------
 *
 * A single pass over the text, no tree: the structure must be JSON without whitespace, object keys
 * strictly increasing (byte order; so no duplicates), strings valid UTF-8 with exactly the
 * canonical escapes, numbers spelled as cs_canon_number spells them. Keys with an escape and
 * \uXXXX escapes make it answer false (conservative: the slow path decides). */

typedef struct cscan {
    const unsigned char *p, *end;
} cscan;

static bool scan_value(cscan *s, size_t depth);

static bool hex_lower(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* A string at s->p ('"'); *k / *kn receive its raw bytes (between the quotes). */
static bool scan_string(cscan *s, bool key, const unsigned char **k, size_t *kn)
{
    const unsigned char *run;
    if (s->p >= s->end || *s->p != '"') {
        return false;
    }
    run = ++s->p;
    *k = run;
    for (;;) {
        unsigned char c;
        if (s->p >= s->end) {
            return false;
        }
        c = *s->p;
        if (c == '"' || c == '\\') {
            if (!cs_utf8_valid((const char *)run, (size_t)(s->p - run), NULL)) {
                return false;
            }
            if (c == '"') {
                *kn = (size_t)(s->p - *k);
                s->p++;
                return true;
            }
            if (key || s->p + 1 >= s->end) {
                return false;
            }
            c = s->p[1];
            if (c == 'u') {
                /* Only the control characters without a short escape, as \u00xx lowercase. */
                unsigned v;
                if (s->end - s->p < 6 || s->p[2] != '0' || s->p[3] != '0' || !hex_lower(s->p[4]) ||
                    !hex_lower(s->p[5])) {
                    return false;
                }
                v = (unsigned)((s->p[4] <= '9' ? s->p[4] - '0' : s->p[4] - 'a' + 10) * 16 +
                               (s->p[5] <= '9' ? s->p[5] - '0' : s->p[5] - 'a' + 10));
                if (v == 0 || v >= 0x20 || v == '\b' || v == '\f' || v == '\n' || v == '\r' ||
                    v == '\t') {
                    return false;
                }
                s->p += 6;
            } else if (c == '"' || c == '\\' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
                       c == 't') {
                s->p += 2;
            } else {
                return false;
            }
            run = s->p;
            continue;
        }
        if (c < 0x20) {
            return false;
        }
        s->p++;
    }
}

static bool scan_number(cscan *s)
{
    const unsigned char *start = s->p;
    bool integral = true;
    char text[48], canon_text[48];
    size_t n;
    double v;
    if (s->p < s->end && *s->p == '-') {
        s->p++;
    }
    if (s->p >= s->end || *s->p < '0' || *s->p > '9') {
        return false;
    }
    if (*s->p == '0') {
        s->p++;
    } else {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            s->p++;
        }
    }
    if (s->p < s->end && *s->p == '.') {
        integral = false;
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') {
            return false;
        }
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            s->p++;
        }
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        integral = false;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) {
            s->p++;
        }
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') {
            return false;
        }
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            s->p++;
        }
    }
    n = (size_t)(s->p - start);
    if (integral && n <= 16 && !(n == 2 && start[0] == '-' && start[1] == '0')) {
        /* Plain decimal without leading zeros, |v| < 10^15 (or the 16 digits checked below). */
        if (n < 16 || start[0] == '-') {
            return true;
        }
    }
    if (n >= sizeof(text)) {
        return false;
    }
    memcpy(text, start, n);
    text[n] = '\0';
    v = strtod(text, NULL);
    return cs_canon_number(v, canon_text, sizeof(canon_text), NULL) == CS_OK &&
           strcmp(text, canon_text) == 0;
}

static bool scan_literal(cscan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) {
        return false;
    }
    s->p += n;
    return true;
}

static bool scan_value(cscan *s, size_t depth)
{
    const unsigned char *k = NULL, *prev = NULL;
    size_t kn = 0, prevn = 0;
    bool first = true;
    if (s->p >= s->end || depth > CS_CANON_MAX_DEPTH) {
        return false;
    }
    switch (*s->p) {
    case '{':
        s->p++;
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            return true;
        }
        for (;;) {
            if (!scan_string(s, true, &k, &kn)) {
                return false;
            }
            if (!first) {
                size_t m = prevn < kn ? prevn : kn;
                int c = memcmp(prev, k, m);
                if (c > 0 || (c == 0 && prevn >= kn)) {
                    return false; /* not sorted, or a duplicate */
                }
            }
            first = false;
            prev = k;
            prevn = kn;
            if (s->p >= s->end || *s->p++ != ':' || !scan_value(s, depth + 1) || s->p >= s->end) {
                return false;
            }
            if (*s->p == '}') {
                s->p++;
                return true;
            }
            if (*s->p++ != ',') {
                return false;
            }
        }
    case '[':
        s->p++;
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return true;
        }
        for (;;) {
            if (!scan_value(s, depth + 1) || s->p >= s->end) {
                return false;
            }
            if (*s->p == ']') {
                s->p++;
                return true;
            }
            if (*s->p++ != ',') {
                return false;
            }
        }
    case '"':
        return scan_string(s, false, &k, &kn);
    case 't':
        return scan_literal(s, "true", 4);
    case 'f':
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4);
    default:
        return scan_number(s);
    }
}

bool cs_canon_is_canonical(const char *text, size_t len)
{
    cscan s;
    if (!text || len == 0) {
        return false;
    }
    s.p = (const unsigned char *)text;
    s.end = s.p + len;
    return scan_value(&s, 0) && s.p == s.end;
}

cs_rc cs_canon_string(const cJSON *tree, char **out, size_t *len, cs_err *err)
{
    cs_buf b = {0};
    cs_rc rc = cs_canon_append(tree, &b, err);
    *out = NULL;
    if (len) {
        *len = 0;
    }
    if (rc != CS_OK) {
        cs_buf_fini(&b);
        return rc;
    }
    if (len) {
        *len = b.len;
    }
    *out = cs_buf_take(&b);
    if (!*out) {
        return cs_err_set(err, CS_ENOMEM, 0, "canonical JSON: out of memory");
    }
    return CS_OK;
}

void cs_hex_encode(const uint8_t *bytes, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

/* SHA-256 over two pieces, a || b. */
static cs_rc sha256_2(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[32],
                      cs_err *err)
{
    mbedtls_sha256_context ctx;
    int r;
    mbedtls_sha256_init(&ctx);
#if MBEDTLS_VERSION_MAJOR >= 3
    r = mbedtls_sha256_starts(&ctx, 0);
    if (r == 0 && alen > 0) {
        r = mbedtls_sha256_update(&ctx, a, alen);
    }
    if (r == 0 && blen > 0) {
        r = mbedtls_sha256_update(&ctx, b, blen);
    }
    if (r == 0) {
        r = mbedtls_sha256_finish(&ctx, out);
    }
#else
    r = mbedtls_sha256_starts_ret(&ctx, 0);
    if (r == 0 && alen > 0) {
        r = mbedtls_sha256_update_ret(&ctx, a, alen);
    }
    if (r == 0 && blen > 0) {
        r = mbedtls_sha256_update_ret(&ctx, b, blen);
    }
    if (r == 0) {
        r = mbedtls_sha256_finish_ret(&ctx, out);
    }
#endif
    mbedtls_sha256_free(&ctx);
    if (r != 0) {
        return cs_err_set(err, CS_EINTERNAL, r, "sha256: mbedTLS error -0x%04x", (unsigned)-r);
    }
    return CS_OK;
}

cs_rc cs_sha256(const void *data, size_t len, uint8_t out[32], cs_err *err)
{
    return sha256_2(data, len, NULL, 0, out, err);
}

cs_rc cs_sha256_hex(const void *data, size_t len, char out_hex[CS_SHA256_HEX_LEN + 1], cs_err *err)
{
    uint8_t d[32];
    cs_rc rc = cs_sha256(data, len, d, err);
    out_hex[0] = '\0';
    if (rc == CS_OK) {
        cs_hex_encode(d, sizeof(d), out_hex);
    }
    return rc;
}

cs_rc cs_canon_hash(const cJSON *tree, const char *salt, char out_hex[CS_SHA256_HEX_LEN + 1],
                    cs_err *err)
{
    cs_buf b = {0};
    uint8_t d[32];
    cs_rc rc;
    out_hex[0] = '\0';
    rc = cs_canon_append(tree, &b, err);
    if (rc == CS_OK) {
        rc = sha256_2(b.data, b.len, salt, salt ? strlen(salt) : 0, d, err);
    }
    if (rc == CS_OK) {
        cs_hex_encode(d, sizeof(d), out_hex);
    }
    cs_buf_fini(&b);
    return rc;
}
