/* cs_keyset.c - open addressing over key fingerprints (cs_keyset.h). */
#include "cs_keyset.h"

#include <stdlib.h>
#include <string.h>

#include "cs_alloc.h"

typedef struct cs_keyset_slot {
    uint64_t fp;
    int64_t id; /* 0 = empty */
} cs_keyset_slot;

void cs_keyset_fini(cs_keyset *k)
{
    if (k) {
        free(k->slot);
        memset(k, 0, sizeof(*k));
    }
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

uint64_t cs_keyset_fingerprint(const char *hex_key)
{
    uint64_t h = 0;
    for (int w = 0; w < 4; w++) {
        uint64_t v = 0;
        for (int i = 0; i < 16; i++) {
            char c = hex_key[16 * w + i];
            v = v << 4 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        h = mix64(h ^ v);
    }
    return h;
}

static size_t scan(const cs_keyset *k, uint64_t fp, size_t i)
{
    for (;; i = (i + 1) & (k->cap - 1)) {
        if (k->slot[i].id == 0) {
            return CS_KEYSET_END;
        }
        if (k->slot[i].fp == fp) {
            return i;
        }
    }
}

size_t cs_keyset_first(const cs_keyset *k, uint64_t fp)
{
    if (k->n == 0) {
        return CS_KEYSET_END;
    }
    return scan(k, fp, (size_t)fp & (k->cap - 1));
}

size_t cs_keyset_next(const cs_keyset *k, uint64_t fp, size_t i)
{
    return scan(k, fp, (i + 1) & (k->cap - 1));
}

int64_t cs_keyset_id(const cs_keyset *k, size_t i)
{
    return k->slot[i].id;
}

static void put(cs_keyset_slot *slot, size_t cap, uint64_t fp, int64_t id)
{
    size_t i = (size_t)fp & (cap - 1);
    while (slot[i].id != 0) {
        i = (i + 1) & (cap - 1);
    }
    slot[i].fp = fp;
    slot[i].id = id;
}

cs_rc cs_keyset_add(cs_keyset *k, uint64_t fp, int64_t id, cs_err *err)
{
    if (id <= 0) {
        return cs_err_set(err, CS_EINVAL, 0, "key set: job id %lld", (long long)id);
    }
    if (2 * (k->n + 1) > k->cap) {
        size_t ncap = k->cap ? 2 * k->cap : 4096;
        cs_keyset_slot *ns = cs_calloc_array(ncap, sizeof(*ns));
        if (!ns) {
            return cs_err_set(err, CS_ENOMEM, 0, "key set: out of memory for %zu keys", k->n);
        }
        for (size_t i = 0; i < k->cap; i++) {
            if (k->slot[i].id != 0) {
                put(ns, ncap, k->slot[i].fp, k->slot[i].id);
            }
        }
        free(k->slot);
        k->slot = ns;
        k->cap = ncap;
    }
    put(k->slot, k->cap, fp, id);
    k->n++;
    return CS_OK;
}
