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
        if (v == 0) {
            v = 0; /* -0 -> 0 */
        }
        snprintf(t, sizeof(t), "%.0f", v);
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

/* Appends s as a JSON string with minimal escaping. */
static cs_rc put_string(cs_buf *out, const char *s)
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

static cs_rc check_utf8(const char *s, const cs_jpath *path, const char *what, cs_err *err)
{
    size_t bad = 0;
    if (!cs_utf8_valid(s, strlen(s), &bad)) {
        return cs_err_set(err, CS_EINVAL, 0, "%s: invalid UTF-8 in %s at byte %zu",
                          cs_jpath_display(path), what, bad);
    }
    return CS_OK;
}

static int member_cmp(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a;
    const cJSON *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string); /* compares as unsigned char: UTF-8 byte order */
}

static cs_rc canon(const cJSON *v, cs_buf *out, cs_jpath *path, size_t depth, cs_err *err)
{
    const cJSON **members = NULL;
    size_t n = 0, i;
    char num[48];
    cs_rc rc = CS_OK;

    if (!v) {
        return cs_err_set(err, CS_EINVAL, 0, "%s: missing value", cs_jpath_display(path));
    }
    if (depth > CS_CANON_MAX_DEPTH) {
        return cs_err_set(err, CS_ERANGE, 0, "%s: nested deeper than %d levels",
                          cs_jpath_display(path), CS_CANON_MAX_DEPTH);
    }
    switch (v->type & 0xFF) {
    case cJSON_False:
        return cs_buf_puts(out, "false");
    case cJSON_True:
        return cs_buf_puts(out, "true");
    case cJSON_NULL:
        return cs_buf_puts(out, "null");
    case cJSON_Number:
        rc = cs_canon_number(v->valuedouble, num, sizeof(num), err);
        if (rc != CS_OK) {
            cs_err_prefix(err, "%s", cs_jpath_display(path));
            return rc;
        }
        return cs_buf_puts(out, num);
    case cJSON_String:
        if (!v->valuestring) {
            return cs_err_set(err, CS_EINVAL, 0, "%s: string without text", cs_jpath_display(path));
        }
        rc = check_utf8(v->valuestring, path, "string", err);
        return rc == CS_OK ? put_string(out, v->valuestring) : rc;
    case cJSON_Array:
        rc = cs_buf_putc(out, '[');
        i = 0;
        for (const cJSON *c = v->child; c && rc == CS_OK; c = c->next, i++) {
            if (i > 0) {
                rc = cs_buf_putc(out, ',');
            }
            cs_jpath_push_index(path, i);
            if (rc == CS_OK) {
                rc = canon(c, out, path, depth + 1, err);
            }
            cs_jpath_pop(path);
        }
        return rc == CS_OK ? cs_buf_putc(out, ']') : rc;
    case cJSON_Object:
        for (const cJSON *c = v->child; c; c = c->next) {
            if (!c->string) {
                return cs_err_set(err, CS_EINVAL, 0, "%s: object member without a key",
                                  cs_jpath_display(path));
            }
            rc = check_utf8(c->string, path, "key", err);
            if (rc != CS_OK) {
                return rc;
            }
            n++;
        }
        members = cs_alloc_array(n, sizeof(*members));
        if (!members) {
            return cs_err_set(err, CS_ENOMEM, 0, "canonical JSON");
        }
        i = 0;
        for (const cJSON *c = v->child; c; c = c->next) {
            members[i++] = c;
        }
        qsort(members, n, sizeof(*members), member_cmp);
        rc = cs_buf_putc(out, '{');
        for (i = 0; i < n && rc == CS_OK; i++) {
            if (i > 0 && strcmp(members[i - 1]->string, members[i]->string) == 0) {
                rc = cs_err_set(err, CS_EINVAL, 0, "%s: duplicate key \"%.60s\"",
                                cs_jpath_display(path), members[i]->string);
                break;
            }
            if (i > 0) {
                rc = cs_buf_putc(out, ',');
            }
            if (rc == CS_OK) {
                rc = put_string(out, members[i]->string);
            }
            if (rc == CS_OK) {
                rc = cs_buf_putc(out, ':');
            }
            cs_jpath_push_key(path, members[i]->string);
            if (rc == CS_OK) {
                rc = canon(members[i], out, path, depth + 1, err);
            }
            cs_jpath_pop(path);
        }
        free(members);
        return rc == CS_OK ? cs_buf_putc(out, '}') : rc;
    case cJSON_Raw:
        return cs_err_set(err, CS_EINVAL, 0, "%s: raw JSON items cannot be canonicalised",
                          cs_jpath_display(path));
    default:
        return cs_err_set(err, CS_EINVAL, 0, "%s: invalid item (type %d)", cs_jpath_display(path),
                          v->type);
    }
}

cs_rc cs_canon_append(const cJSON *tree, cs_buf *out, cs_err *err)
{
    size_t old = out->len;
    cs_jpath path;
    cs_rc rc;
    cs_jpath_init(&path);
    rc = canon(tree, out, &path, 0, err);
    if (rc == CS_ENOMEM && (!err || err->rc != CS_ENOMEM)) {
        cs_err_set(err, CS_ENOMEM, 0, "canonical JSON: out of memory");
    }
    if (rc != CS_OK && out->data) {
        out->len = old;
        out->data[old] = '\0';
    }
    return rc;
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
