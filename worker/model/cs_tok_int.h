/* cs_tok_int.h - what the tokenizer's two files share: the cs_tok struct and its tables.
 * cs_tok_load.c builds a cs_tok from a tokenizer.json; cs_tok.c encodes and decodes with it.
 * Internal to worker/model: everything else uses cs_tok.h.
 */
#ifndef CS_WORKER_MODEL_CS_TOK_INT_H
#define CS_WORKER_MODEL_CS_TOK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_alloc.h"
#include "cs_tok.h"

typedef enum pattern { PAT_NONE = 0, PAT_LLAMA3, PAT_QWEN2, PAT_GPT2 } pattern;

enum { F_PRESENT = 1, F_VOCAB = 2, F_ADDED = 4, F_SPECIAL = 8, F_RAW = 16 };

typedef struct entry {
    size_t str_off;   /* token string in the arena, NUL-terminated */
    size_t piece_off; /* decoded bytes in the arena, NUL-terminated */
    uint32_t str_len, piece_len;
    uint8_t flags; /* F_* */
} entry;

typedef struct slot {
    uint32_t hash;
    int32_t id; /* -1 = empty */
} slot;

typedef struct idmap {
    slot *slots;
    size_t mask; /* capacity - 1; capacity a power of two */
} idmap;

typedef struct mslot {
    uint64_t key; /* (left << 32) | right; UINT64_MAX = empty */
    uint32_t rank;
    int32_t id; /* the merged token */
} mslot;

typedef struct added {
    size_t match_off; /* text matched (content, NFC'd when normalized and NFC is on) in arena */
    size_t match_len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} added;

/* One set of added tokens to match: indices into tok->added sorted by first byte, then longest
 * first; bucket[b]..bucket[b+1] are those starting with byte b. */
typedef struct added_set {
    size_t *idx;
    size_t n;
    size_t bucket[257];
} added_set;

struct cs_tok {
    entry *ents;
    size_t n_ents; /* vocab size: max id + 1 */
    cs_buf arena;
    idmap strmap; /* token string -> id (vocab and added) */
    idmap rawmap; /* decoded bytes -> id (vocab tokens made of byte-level characters only) */
    mslot *merges;
    size_t merge_mask;
    int32_t byte_id[256]; /* single-byte token of each byte, -1 if none */
    added *added;
    size_t n_added;
    added_set sets[2]; /* [0] normalized=false, [1] normalized=true */
    bool nfc, ignore_merges, prefix_space;
    pattern pat;
    int32_t *pre_ids, *post_ids; /* post-processor, single sequence */
    size_t n_pre, n_post;
    int32_t bos, eos;
};

/* FNV-1a over s[0..n): the hash of the id maps. */
static inline uint32_t cs_tok_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

/* The key of token id in an id map: its string, or its decoded bytes when raw. */
static inline const char *cs_tok_ent_str(const cs_tok *t, int32_t id, bool raw, size_t *len)
{
    const entry *e = &t->ents[id];
    if (raw) {
        *len = e->piece_len;
        return t->arena.data + e->piece_off;
    }
    *len = e->str_len;
    return t->arena.data + e->str_off;
}

static inline uint64_t cs_tok_merge_key(int32_t a, int32_t b)
{
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

/* Decodes one UTF-8 character of s[0..n) (n > 0) with Rust's rules (no overlongs, surrogates or
 * values above U+10FFFF). Returns its length, or 0 when invalid. */
size_t cs_tok_utf8_next(const uint8_t *s, size_t n, uint32_t *cp);

/* The id whose key (cs_tok_ent_str) is s[0..n) in m, or -1. */
int32_t cs_tok_idmap_get(const cs_tok *t, const idmap *m, bool raw, const char *s, size_t n);

#endif
