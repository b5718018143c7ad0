/* calib: the worker's content-addressed cache of expensive intermediate products
 * (docs/architecture.md "The native engine": candidate activation statistics), so a sweep computes
 * them once.
 *
 * An entry is a file <dir>/<key>.bin, key = 64 lowercase hex digits (a SHA-256 the caller derives
 * from everything the content depends on). File layout (little-endian):
 *   0  "CSCACHE1"          magic, 8 bytes
 *   8  key                 64 hex digits, the file's own key
 *   72 payload length      u64
 *   80 SHA-256 of payload  32 bytes
 *   112 payload
 * Writes are atomic (a temporary file in dir, fsync, rename: cs_path_write_atomic), so readers
 * never see half an entry, and several workers may share one folder. A read verifies magic, key,
 * length and checksum: a file that fails (truncated, corrupt, foreign) is never trusted; it is
 * reported with a warning (cs_log) and counted as rejected, and the caller recomputes and
 * overwrites it. Entries are never evicted (remove the folder to reclaim the space).
 *
 * A cs_cache is used from one thread at a time.
 */
#ifndef CS_WORKER_CALIB_CS_CACHE_H
#define CS_WORKER_CALIB_CS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

#define CS_CACHE_KEY_LEN 64 /* hex digits; buffers are CS_CACHE_KEY_LEN + 1 */

/* Little-endian u64 at p: the byte order of every cache entry's header and of the keys' inputs. */
static inline void cs_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint64_t cs_get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

typedef struct cs_cache cs_cache;

/* Counters since cs_cache_open. */
typedef struct cs_cache_stats {
    size_t hits;     /* verified entries returned */
    size_t misses;   /* no entry (rejected ones included) */
    size_t rejected; /* entries that failed verification */
    size_t writes;   /* entries written */
} cs_cache_stats;

/* Opens (and creates, mkdir -p 0755) the cache folder dir (copied). *out owned: cs_cache_close.
 * Errors name the folder. */
cs_rc cs_cache_open(const char *dir, cs_cache **out, cs_err *err);

/* NULL-safe. */
void cs_cache_close(cs_cache *c);

/* Returns borrowed, valid until cs_cache_close. */
const char *cs_cache_dir(const cs_cache *c);

/* The entry of key: CS_OK with *data (owned, free with free()) and *len on a verified hit;
 * CS_ENOENT on a miss, including an entry that failed verification (warned and counted).
 * CS_EINVAL for a malformed key; CS_ENOMEM. */
cs_rc cs_cache_get(cs_cache *c, const char *key, void **data, size_t *len, cs_err *err);

/* Whether key has an entry file (not verified: cs_cache_get verifies). */
bool cs_cache_has(const cs_cache *c, const char *key);

/* Writes (replaces) the entry of key with data[0..len) atomically. Errors name the file
 * (CS_ENOSPC for a full disk, ...). */
cs_rc cs_cache_put(cs_cache *c, const char *key, const void *data, size_t len, cs_err *err);

void cs_cache_get_stats(const cs_cache *c, cs_cache_stats *out);

/* The path of key's entry (owned, free with free()); NULL on no memory. For tests and logs. */
char *cs_cache_path(const cs_cache *c, const char *key);

/* The identity of the model folder dir as 64 hex digits: SHA-256 over config.json's bytes,
 * model.safetensors.index.json's bytes when present, and for each *.safetensors file (sorted by
 * name): its name, size, modification time (ns), and the SHA-256 of its first and last MiB. So a
 * retrained, converted or replaced model gets a new identity without hashing gigabytes. Errors
 * name the file (CS_ENOENT when config.json or every weights file is missing). */
cs_rc cs_cache_model_id(const char *dir, char out[CS_CACHE_KEY_LEN + 1], cs_err *err);

#endif
