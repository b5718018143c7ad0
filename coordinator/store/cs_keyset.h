/* cs_keyset.h - the job keys of one sweep in memory, while the store inserts into it.
 *
 * Keys are unique within a sweep. Schema version 2 has no index on them (a random B-tree insert
 * per job was a quarter of the time of a 10^6-job submit), so cs_store_submit and cs_store_extend
 * keep the keys of the sweep here: a 64-bit fingerprint of each key (a hash of all its digits)
 * with its job id. A fingerprint match is only a candidate: the store compares the whole key,
 * read back by job id, and goes on with cs_keyset_next on a mismatch.
 *
 * 16 bytes per key at a load of at most 1/2: ~32 MB for 10^6 keys, freed when the insert ends.
 * Not thread-safe.
 */
#ifndef CS_COORDINATOR_STORE_CS_KEYSET_H
#define CS_COORDINATOR_STORE_CS_KEYSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

typedef struct cs_keyset {
    struct cs_keyset_slot *slot; /* cap slots; id 0 = empty */
    size_t cap;                  /* a power of two, or 0 */
    size_t n;
} cs_keyset;

#define CS_KEYSET_END ((size_t)-1)

void cs_keyset_fini(cs_keyset *k); /* NULL-safe; leaves k zeroed */

/* The fingerprint of a key of 64 lowercase hex digits (the store checks keys first). Pure. */
uint64_t cs_keyset_fingerprint(const char *hex_key);

/* The first slot holding fp, or CS_KEYSET_END; cs_keyset_next continues after slot i. */
size_t cs_keyset_first(const cs_keyset *k, uint64_t fp);
size_t cs_keyset_next(const cs_keyset *k, uint64_t fp, size_t i);
int64_t cs_keyset_id(const cs_keyset *k, size_t i);

/* Adds (fp, id), id > 0; a fingerprint may be added more than once (two keys that collide).
 * CS_ENOMEM (the set is then unchanged). */
cs_rc cs_keyset_add(cs_keyset *k, uint64_t fp, int64_t id, cs_err *err);

#endif
