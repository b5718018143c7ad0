/* cs_alloc.c - checked allocation and cs_buf. */
#include "cs_alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cs_mul_ok(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) {
        return false;
    }
    *out = a * b;
    return true;
}

void *cs_alloc_array(size_t n, size_t size)
{
    size_t total;
    if (!cs_mul_ok(n, size, &total)) {
        return NULL;
    }
    return malloc(total ? total : 1);
}

void *cs_calloc_array(size_t n, size_t size)
{
    size_t total;
    if (!cs_mul_ok(n, size, &total)) {
        return NULL;
    }
    return calloc(total ? n : 1, total ? size : 1);
}

void *cs_realloc_array(void *p, size_t n, size_t size)
{
    size_t total;
    if (!cs_mul_ok(n, size, &total)) {
        return NULL;
    }
    return realloc(p, total ? total : 1);
}

char *cs_strdup(const char *s)
{
    return s ? cs_strndup(s, strlen(s)) : NULL;
}

char *cs_strndup(const char *s, size_t n)
{
    char *p;
    if (!s || n == SIZE_MAX) {
        return NULL;
    }
    p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

void cs_free_each(void *const *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i]);
    }
}

void cs_buf_init(cs_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void cs_buf_fini(cs_buf *b)
{
    if (b) {
        free(b->data);
        cs_buf_init(b);
    }
}

cs_rc cs_buf_reserve(cs_buf *b, size_t extra)
{
    size_t need, cap;
    char *p;
    if (extra > SIZE_MAX - b->len - 1) {
        return CS_ENOMEM;
    }
    need = b->len + extra + 1;
    if (need <= b->cap) {
        return CS_OK;
    }
    cap = b->cap ? b->cap : 64;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    p = realloc(b->data, cap);
    if (!p) {
        return CS_ENOMEM;
    }
    if (!b->data) {
        p[0] = '\0';
    }
    b->data = p;
    b->cap = cap;
    return CS_OK;
}

cs_rc cs_buf_append(cs_buf *b, const void *data, size_t n)
{
    if (cs_buf_reserve(b, n) != CS_OK) {
        return CS_ENOMEM;
    }
    if (n) {
        memcpy(b->data + b->len, data, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return CS_OK;
}

cs_rc cs_buf_puts(cs_buf *b, const char *s)
{
    return cs_buf_append(b, s, strlen(s));
}

cs_rc cs_buf_putc(cs_buf *b, char c)
{
    return cs_buf_append(b, &c, 1);
}

cs_rc cs_buf_printf(cs_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    int n;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || cs_buf_reserve(b, (size_t)n) != CS_OK) {
        va_end(ap2);
        return CS_ENOMEM;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
    return CS_OK;
}

char *cs_buf_take(cs_buf *b)
{
    char *p = b->data;
    if (!p) {
        p = calloc(1, 1);
    }
    cs_buf_init(b);
    return p;
}
