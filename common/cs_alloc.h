/* cs_alloc.h - checked allocation and a growable byte buffer.
 *
 * Array allocations check n*size for overflow (docs/style.md R9): a product that does not fit in
 * size_t returns NULL exactly like an exhausted heap. Every pointer returned here is freed with
 * free().
 */
#ifndef CS_COMMON_CS_ALLOC_H
#define CS_COMMON_CS_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

#include "cs_err.h"

/* true and *out = a*b when the product fits in size_t; false otherwise. */
bool cs_mul_ok(size_t a, size_t b, size_t *out);

/* malloc(n*size); NULL on overflow or exhaustion. n == 0 returns a valid unique pointer. */
void *cs_alloc_array(size_t n, size_t size);
/* calloc(n, size); NULL on overflow or exhaustion. */
void *cs_calloc_array(size_t n, size_t size);
/* realloc(p, n*size); NULL on overflow or exhaustion, and then p is still valid and owned. */
void *cs_realloc_array(void *p, size_t n, size_t size);
/* Returns owned copies, free with free(); NULL on exhaustion or NULL input. */
char *cs_strdup(const char *s);
char *cs_strndup(const char *s, size_t n);
/* free()s each of the n pointers at p (NULL ones too): a workspace of separate buffers. */
void cs_free_each(void *const *p, size_t n);

/* A growable, always NUL-terminated byte buffer. Zero-initialise, or cs_buf_init; free with
 * cs_buf_fini. Appends return CS_ENOMEM and leave the buffer unchanged on failure. */
typedef struct cs_buf {
    char *data; /* NUL-terminated when non-NULL; may contain NULs before len */
    size_t len; /* bytes used, not counting the terminator */
    size_t cap; /* bytes allocated */
} cs_buf;

void cs_buf_init(cs_buf *b);
void cs_buf_fini(cs_buf *b); /* NULL-safe; leaves b zeroed */
cs_rc cs_buf_reserve(cs_buf *b, size_t extra);
cs_rc cs_buf_append(cs_buf *b, const void *data, size_t n);
cs_rc cs_buf_puts(cs_buf *b, const char *s);
cs_rc cs_buf_putc(cs_buf *b, char c);
cs_rc cs_buf_printf(cs_buf *b, const char *fmt, ...) CS_PRINTF(2, 3);
/* Returns the data, owned by the caller (free with free()), and resets b. Never NULL unless OOM. */
char *cs_buf_take(cs_buf *b);

#endif
