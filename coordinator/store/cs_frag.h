/* cs_frag.h - fragments: the shared pieces of the job store's compact configs and axes.
 *
 * Schema version 2 (schemas/migrations/0002_fragments.sql) stores each distinct top-level member
 * of a config or axes object once, in the table `fragment`, and each job as a list of fragment ids
 * (JSON array text, "[3,1,7]"); the text is '{' + the members joined by ',' + '}'. This module
 * holds the pure parts of that: splitting an object's text into members so that joining them
 * gives the text back byte for byte, the id lists, a 64-bit hash, and a bounded in-memory map
 * text <-> id that spares the store a query per member. No SQLite here (cs_store.c does the I/O).
 *
 * Not thread-safe; a map belongs to one cs_store.
 */
#ifndef CS_COORDINATOR_STORE_CS_FRAG_H
#define CS_COORDINATOR_STORE_CS_FRAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_alloc.h"
#include "cs_err.h"

/* Members an object may have to be split; one with more is stored whole (config_raw). */
#define CS_FRAG_MAX_MEMBERS 64

/* One member: text[off .. off+len). */
typedef struct cs_frag_span {
    size_t off;
    size_t len;
} cs_frag_span;

/* Splits text[0..len) into the top-level members of a JSON object: text must start with '{' and
 * end with '}', and the spans are the pieces between the braces cut at the commas outside strings
 * and brackets, so that '{' + join(spans, ",") + '}' is text again (whitespace stays inside the
 * members). "{}" gives 0 members. Returns false, *n undefined, when text does not have that
 * shape: not braced, unbalanced brackets or an unterminated string, an empty or blank member, or
 * more than max members. The members are not validated as JSON (the store does that once per
 * distinct member). Pure. */
bool cs_frag_split(const char *text, size_t len, cs_frag_span *spans, size_t max, size_t *n);

/* The same from offset `from` on, where a member of an object split before with the same bytes
 * up to `from` started (so the scan starts outside strings and brackets): the members from there
 * to the end. cs_frag_split is cs_frag_split_from(text, len, 1, ...) plus the shape checks. */
bool cs_frag_split_from(const char *text, size_t len, size_t from, cs_frag_span *spans, size_t max,
                        size_t *n);

/* The length of the common prefix of a[0..na) and b[0..nb). Pure. */
size_t cs_frag_common_prefix(const char *a, size_t na, const char *b, size_t nb);

/* A 64-bit hash of data[0..len) for hash tables (not cryptographic). Pure. */
uint64_t cs_frag_hash(const void *data, size_t len);

/* Parses an id list "[1,22,3]" (no spaces, ids > 0) into ids[0..*n). false when the text is not
 * such a list or has more than max ids. Pure. */
bool cs_frag_parse_ids(const char *text, int64_t *ids, size_t max, size_t *n);

/* Appends the id list of ids[0..n) ("[1,22,3]", "[]" when n == 0) to out. CS_ENOMEM. */
cs_rc cs_frag_format_ids(cs_buf *out, const int64_t *ids, size_t n);

/* The bounded map. Zero-initialise; fini frees. It forgets everything once it holds
 * CS_FRAG_MAP_MAX entries or CS_FRAG_MAP_BYTES of text (the store then asks SQLite again), so its
 * memory stays under ~12 MB whatever the sweeps look like. */
#define CS_FRAG_MAP_MAX   65536
#define CS_FRAG_MAP_BYTES ((size_t)8 << 20)

typedef struct cs_frag_map {
    struct cs_frag_entry *e; /* entries[0..n) */
    size_t n;
    size_t cap_e;
    uint32_t *by_text; /* open addressing over hash: entry index + 1, 0 = empty */
    uint32_t *by_id;   /* open addressing over id: entry index + 1, 0 = empty */
    size_t cap;        /* slots of each table, a power of two, >= 2n */
    char *arena;       /* the texts, back to back */
    size_t arena_len;
    size_t arena_cap;
} cs_frag_map;

void cs_frag_map_fini(cs_frag_map *m); /* NULL-safe; leaves m zeroed */
void cs_frag_map_clear(cs_frag_map *m);

/* The id of text[0..len) (hash = cs_frag_hash of it), 0 when not in the map. */
int64_t cs_frag_map_find_text(const cs_frag_map *m, const char *text, size_t len, uint64_t hash);

/* The text of id, *len its length; NULL when not in the map. Returns borrowed, valid until the
 * next cs_frag_map_add or cs_frag_map_clear. */
const char *cs_frag_map_find_id(const cs_frag_map *m, int64_t id, size_t *len);

/* Adds (id, text); the caller makes sure neither is in the map yet. CS_ENOMEM (the map is then
 * unchanged), CS_EINVAL for id <= 0. */
cs_rc cs_frag_map_add(cs_frag_map *m, int64_t id, const char *text, size_t len, uint64_t hash,
                      cs_err *err);

#endif
