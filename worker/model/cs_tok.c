/* cs_tok.c - byte-level BPE from a Hugging Face tokenizer.json (Llama-3/3.1, Qwen2/2.5/3).
 *
 * Pipeline of one encode, as in Hugging Face tokenizers:
 *   1. added tokens with normalized=false are cut out of the raw text (leftmost-longest, with
 *      lstrip/rstrip/single_word), then each remaining segment is NFC-normalised (Qwen) and the
 *      added tokens with normalized=true are cut out of it;
 *   2. each remaining piece is split by the pre-tokenizer regex (Llama-3, Qwen2 or GPT-2 pattern,
 *      matched by hand below over utf8proc's general categories);
 *   3. each pre-token is mapped to bytes (ByteLevel) and merged by BPE. We work on raw bytes: a
 *      vocab string made only of the 256 byte-level characters is stored decoded ("Ġthe" -> " the")
 *      in a second map, so step 3 never builds byte-level strings. With ignore_merges a pre-token
 *      found whole in that map is one token. Otherwise the bytes become single-byte tokens merged
 *      with a binary heap of (rank, position) over a linked list, O(n log n) per pre-token;
 *   4. the post-processor's special tokens are added around the ids (CS_TOK_ADD_SPECIAL).
 *
 * Memory: every string lives in one arena (tok->arena); tokens hold offsets into it. The maps
 * are open-addressing tables of ids. Nothing is mutated after loading except bos/eos.
 */
#include "cs_tok.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <utf8proc.h>

#include "cs_alloc.h"
#include "cs_path.h"

/* Ids are limited so a hostile file cannot ask for a 2^31-entry table. */
#define MAX_ID ((int32_t)1 << 24)
/* Ids not used by any token allowed in the table (holes), so memory follows the token count. */
#define MAX_HOLES ((size_t)1 << 20)

/* ---- the two split patterns, exactly as tokenizer.json spells them ---------------------- */

static const char PAT_LLAMA3_STR[] =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char PAT_QWEN2_STR[] =
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
        "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char PAT_GPT2_STR[] =
        "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef enum pattern { PAT_NONE = 0, PAT_LLAMA3, PAT_QWEN2, PAT_GPT2 } pattern;

/* ---- types -------------------------------------------------------------------------------- */

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

/* ---- small helpers ----------------------------------------------------------------------- */

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n) {
        c <<= 1;
    }
    return c;
}

/* Decodes one UTF-8 character of s[0..n) (n > 0) with Rust's rules (no overlongs, surrogates or
 * values above U+10FFFF). Returns its length, or 0 when invalid. */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint32_t c = s[0];
    size_t len, i;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        c &= 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        c &= 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        return 0;
    }
    *cp = c;
    return len;
}

/* Character classes of the split patterns. */
enum { C_L = 1, C_N = 2, C_S = 4, C_RN = 8 };

/* White_Space (Oniguruma's \s and Rust's char::is_whitespace): the separators Zs/Zl/Zp plus the
 * controls TAB..CR and NEL. */
static bool is_ws(uint32_t c)
{
    if ((c >= 0x09 && c <= 0x0D) || c == 0x85) {
        return true;
    }
    if (c < 0x20) {
        return false;
    }
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

static uint8_t char_class(uint32_t c)
{
    if (c < 0x80) {
        /* ASCII fast path, same answers as utf8proc. */
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            return C_L;
        }
        if (c >= '0' && c <= '9') {
            return C_N;
        }
        if (c == '\r' || c == '\n') {
            return C_S | C_RN;
        }
        return (c == ' ' || (c >= 0x09 && c <= 0x0D)) ? C_S : 0;
    }
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return C_L;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return C_N;
    default:
        return is_ws(c) ? C_S : 0;
    }
}

/* The byte-level alphabet (GPT-2): bytes 33..126, 161..172 and 174..255 stand for themselves; the
 * other 68 bytes, in order, are U+0100 + n. */
static bool byte_is_self(unsigned b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
}

/* Byte of byte-level character c, or -1 when c is not in the alphabet. */
static int byte_of_char(uint32_t c)
{
    if (c < 256) {
        return byte_is_self(c) ? (int)c : -1;
    }
    if (c >= 256 && c < 256 + 68) {
        unsigned n = c - 256;
        for (unsigned b = 0; b < 256; b++) {
            if (!byte_is_self(b)) {
                if (n == 0) {
                    return (int)b;
                }
                n--;
            }
        }
    }
    return -1;
}

/* ---- id maps ----------------------------------------------------------------------------- */

static const char *ent_str(const cs_tok *t, int32_t id, bool raw, size_t *len)
{
    const entry *e = &t->ents[id];
    if (raw) {
        *len = e->piece_len;
        return t->arena.data + e->piece_off;
    }
    *len = e->str_len;
    return t->arena.data + e->str_off;
}

static cs_rc idmap_init(idmap *m, size_t n)
{
    size_t cap = pow2_at_least(n * 2 + 1);
    m->slots = cs_alloc_array(cap, sizeof(slot));
    if (!m->slots) {
        return CS_ENOMEM;
    }
    for (size_t i = 0; i < cap; i++) {
        m->slots[i].id = -1;
    }
    m->mask = cap - 1;
    return CS_OK;
}

static int32_t idmap_get(const cs_tok *t, const idmap *m, bool raw, const char *s, size_t n)
{
    uint32_t h = hash_bytes(s, n);
    size_t i = h & m->mask;
    if (!m->slots) {
        return -1;
    }
    for (;; i = (i + 1) & m->mask) {
        const slot *sl = &m->slots[i];
        size_t kl;
        const char *k;
        if (sl->id < 0) {
            return -1;
        }
        if (sl->hash != h) {
            continue;
        }
        k = ent_str(t, sl->id, raw, &kl);
        if (kl == n && memcmp(k, s, n) == 0) {
            return sl->id;
        }
    }
}

/* Inserts id under its own key; returns the id already there (-1 if none, then inserted). The map
 * is sized at init for every key it will get, so it never fills. */
static int32_t idmap_put(const cs_tok *t, idmap *m, bool raw, int32_t id)
{
    size_t n;
    const char *s = ent_str(t, id, raw, &n);
    uint32_t h = hash_bytes(s, n);
    size_t i = h & m->mask;
    for (;; i = (i + 1) & m->mask) {
        slot *sl = &m->slots[i];
        if (sl->id < 0) {
            sl->id = id;
            sl->hash = h;
            return -1;
        }
        if (sl->hash == h) {
            size_t kl;
            const char *k = ent_str(t, sl->id, raw, &kl);
            if (kl == n && memcmp(k, s, n) == 0) {
                return sl->id;
            }
        }
    }
}

static uint64_t merge_key(int32_t a, int32_t b)
{
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

static const mslot *merge_get(const cs_tok *t, int32_t a, int32_t b)
{
    uint64_t key = merge_key(a, b);
    size_t i;
    if (!t->merges) {
        return NULL;
    }
    i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & t->merge_mask;
    for (;; i = (i + 1) & t->merge_mask) {
        const mslot *m = &t->merges[i];
        if (m->key == UINT64_MAX) {
            return NULL;
        }
        if (m->key == key) {
            return m;
        }
    }
}

/* Later duplicates overwrite earlier ones, as Hugging Face's HashMap collect does. */
static void merge_put(cs_tok *t, int32_t a, int32_t b, uint32_t rank, int32_t id)
{
    uint64_t key = merge_key(a, b);
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & t->merge_mask;
    for (;; i = (i + 1) & t->merge_mask) {
        mslot *m = &t->merges[i];
        if (m->key == UINT64_MAX || m->key == key) {
            m->key = key;
            m->rank = rank;
            m->id = id;
            return;
        }
    }
}

/* ---- loading ----------------------------------------------------------------------------- */

typedef struct loader {
    cs_tok *t;
    const char *name;
    cs_err *err;
} loader;

static cs_rc lerr(const loader *L, cs_rc rc, const char *fmt, ...) CS_PRINTF(3, 4);
static cs_rc lerr(const loader *L, cs_rc rc, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return cs_err_set(L->err, rc, 0, "%s: %s", L->name, msg);
}

static const char *json_type(const cJSON *v)
{
    if (!v) {
        return "nothing";
    }
    if (cJSON_IsNull(v)) {
        return "null";
    }
    if (cJSON_IsBool(v)) {
        return "a boolean";
    }
    if (cJSON_IsNumber(v)) {
        return "a number";
    }
    if (cJSON_IsString(v)) {
        return "a string";
    }
    if (cJSON_IsArray(v)) {
        return "an array";
    }
    return "an object";
}

/* Case-sensitive member lookup (cJSON_GetObjectItem ignores case). */
static const cJSON *member(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static const char *member_str(const cJSON *obj, const char *key)
{
    const cJSON *v = member(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Optional boolean member: absent or null gives def; another type is an error. */
static cs_rc member_bool(const loader *L, const cJSON *obj, const char *key, const char *where,
                         bool def, bool *out)
{
    const cJSON *v = member(obj, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return CS_OK;
    }
    if (!cJSON_IsBool(v)) {
        return lerr(L, CS_EPARSE, "%s.%s: expected a boolean, got %s", where, key, json_type(v));
    }
    *out = cJSON_IsTrue(v);
    return CS_OK;
}

static bool as_id(const cJSON *v, int32_t *out)
{
    double d;
    if (!cJSON_IsNumber(v)) {
        return false;
    }
    d = v->valuedouble;
    if (!isfinite(d) || d < 0 || d >= (double)MAX_ID || d != floor(d)) {
        return false;
    }
    *out = (int32_t)d;
    return true;
}

/* Appends s[0..n) and a NUL to the arena; *off = where it starts. */
static cs_rc arena_add(cs_tok *t, const char *s, size_t n, size_t *off)
{
    *off = t->arena.len;
    if (cs_buf_append(&t->arena, s, n) != CS_OK || cs_buf_putc(&t->arena, '\0') != CS_OK) {
        return CS_ENOMEM;
    }
    return CS_OK;
}

/* Sets the string of token id (vocab or added); fails on a different string already there. */
static cs_rc set_token(const loader *L, int32_t id, const char *s, uint8_t flags, const char *where)
{
    cs_tok *t = L->t;
    entry *e = &t->ents[id];
    size_t n = strlen(s), off;
    if (e->flags & F_PRESENT) {
        const char *old = t->arena.data + e->str_off;
        if (e->str_len != n || memcmp(old, s, n) != 0) {
            return lerr(L, CS_EPARSE, "%s: id %d is both \"%.40s\" and \"%.40s\"", where, (int)id,
                        old, s);
        }
        e->flags |= flags;
        return CS_OK;
    }
    if (n > UINT32_MAX / 2 || arena_add(t, s, n, &off) != CS_OK) {
        return cs_err_set(L->err, CS_ENOMEM, 0, "%s: out of memory", L->name);
    }
    e->str_off = off;
    e->str_len = (uint32_t)n;
    e->flags = (uint8_t)(flags | F_PRESENT);
    return CS_OK;
}

/* Byte-level decodes every token string into its piece; marks tokens made only of byte-level
 * characters F_RAW (their piece is the byte string BPE sees). */
static cs_rc build_pieces(cs_tok *t)
{
    cs_buf tmp = {0};
    cs_rc rc = CS_OK;
    for (size_t id = 0; id < t->n_ents; id++) {
        entry *e = &t->ents[id];
        bool all = true;
        size_t i = 0, off;
        if (!(e->flags & F_PRESENT)) {
            continue;
        }
        tmp.len = 0;
        while (i < e->str_len) {
            const uint8_t *s = (const uint8_t *)t->arena.data + e->str_off;
            uint32_t c;
            size_t k = utf8_next(s + i, e->str_len - i, &c);
            int b;
            if (k == 0) {
                /* Not UTF-8 (a hostile file): keep the byte. */
                rc = cs_buf_putc(&tmp, (char)s[i]);
                all = false;
                i++;
            } else {
                b = byte_of_char(c);
                if (b < 0) {
                    rc = cs_buf_append(&tmp, s + i, k);
                    all = false;
                } else {
                    rc = cs_buf_putc(&tmp, (char)b);
                }
                i += k;
            }
            if (rc != CS_OK) {
                goto out;
            }
        }
        rc = arena_add(t, tmp.data ? tmp.data : "", tmp.len, &off);
        if (rc != CS_OK) {
            goto out;
        }
        e->piece_off = off;
        e->piece_len = (uint32_t)tmp.len;
        if (all && (e->flags & F_VOCAB) && e->str_len > 0) {
            e->flags |= F_RAW;
        }
    }
out:
    cs_buf_fini(&tmp);
    return rc;
}

static cs_rc check_type(const loader *L, const cJSON *obj, const char *where, const char **type)
{
    *type = member_str(obj, "type");
    if (!cJSON_IsObject(obj)) {
        return lerr(L, CS_EPARSE, "%s: expected an object, got %s", where, json_type(obj));
    }
    if (!*type) {
        return lerr(L, CS_EPARSE, "%s.type: expected a string", where);
    }
    return CS_OK;
}

static cs_rc load_normalizer(const loader *L, const cJSON *n, const char *where)
{
    const char *type;
    cs_rc rc;
    if (!n || cJSON_IsNull(n)) {
        return CS_OK;
    }
    rc = check_type(L, n, where, &type);
    if (rc != CS_OK) {
        return rc;
    }
    if (strcmp(type, "NFC") == 0) {
        L->t->nfc = true;
        return CS_OK;
    }
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = member(n, "normalizers"), *it;
        char sub[64];
        size_t i = 0;
        if (!cJSON_IsArray(list)) {
            return lerr(L, CS_EPARSE, "%s.normalizers: expected an array", where);
        }
        cJSON_ArrayForEach(it, list)
        {
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", where, i++);
            rc = load_normalizer(L, it, sub);
            if (rc != CS_OK) {
                return rc;
            }
        }
        return CS_OK;
    }
    return lerr(L, CS_ENOTSUP, "%s: unsupported normalizer type %.40s (only NFC)", where, type);
}

static cs_rc load_byte_level(const loader *L, const cJSON *p, const char *where, bool *use_regex)
{
    cs_rc rc = member_bool(L, p, "add_prefix_space", where, true, &L->t->prefix_space);
    if (rc == CS_OK) {
        rc = member_bool(L, p, "use_regex", where, true, use_regex);
    }
    return rc;
}

static cs_rc load_split(const loader *L, const cJSON *p, const char *where)
{
    const cJSON *pat = member(p, "pattern");
    const char *re = member_str(pat, "Regex");
    const char *behavior = member_str(p, "behavior");
    bool invert;
    cs_rc rc;
    if (!re) {
        if (member_str(pat, "String")) {
            return lerr(L, CS_ENOTSUP,
                        "%s.pattern: a String pattern is not supported (only the "
                        "Llama-3 and Qwen2 Regex patterns)",
                        where);
        }
        return lerr(L, CS_EPARSE, "%s.pattern.Regex: expected a string", where);
    }
    if (strcmp(re, PAT_LLAMA3_STR) == 0) {
        L->t->pat = PAT_LLAMA3;
    } else if (strcmp(re, PAT_QWEN2_STR) == 0) {
        L->t->pat = PAT_QWEN2;
    } else if (strcmp(re, PAT_GPT2_STR) == 0) {
        L->t->pat = PAT_GPT2;
    } else {
        return lerr(L, CS_ENOTSUP,
                    "%s.pattern: unsupported split regex \"%.60s%s\" (only the "
                    "Llama-3 and Qwen2 patterns)",
                    where, re, strlen(re) > 60 ? "..." : "");
    }
    if (!behavior || strcmp(behavior, "Isolated") != 0) {
        return lerr(L, CS_ENOTSUP, "%s.behavior: unsupported split behavior %.30s (only Isolated)",
                    where, behavior ? behavior : "(missing)");
    }
    rc = member_bool(L, p, "invert", where, false, &invert);
    if (rc == CS_OK && invert) {
        rc = lerr(L, CS_ENOTSUP, "%s.invert: true is not supported", where);
    }
    return rc;
}

static cs_rc load_pre_tokenizer(const loader *L, const cJSON *p)
{
    const char *type;
    bool use_regex = false, seen_bl = false;
    cs_rc rc;
    if (!p || cJSON_IsNull(p)) {
        return lerr(L, CS_ENOTSUP, "pre_tokenizer: missing (a ByteLevel pre-tokenizer is needed)");
    }
    rc = check_type(L, p, "pre_tokenizer", &type);
    if (rc != CS_OK) {
        return rc;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        rc = load_byte_level(L, p, "pre_tokenizer", &use_regex);
        if (rc == CS_OK && !use_regex) {
            rc = lerr(L, CS_ENOTSUP,
                      "pre_tokenizer: ByteLevel without use_regex and no Split "
                      "before it is not supported");
        }
        L->t->pat = PAT_GPT2;
        return rc;
    }
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = member(p, "pretokenizers"), *it;
        char where[64];
        size_t i = 0;
        if (!cJSON_IsArray(list)) {
            return lerr(L, CS_EPARSE, "pre_tokenizer.pretokenizers: expected an array");
        }
        cJSON_ArrayForEach(it, list)
        {
            snprintf(where, sizeof where, "pre_tokenizer.pretokenizers[%zu]", i++);
            rc = check_type(L, it, where, &type);
            if (rc != CS_OK) {
                return rc;
            }
            if (strcmp(type, "Split") == 0) {
                if (seen_bl || L->t->pat != PAT_NONE) {
                    return lerr(L, CS_ENOTSUP,
                                "%s: only one Split, before ByteLevel, is "
                                "supported",
                                where);
                }
                rc = load_split(L, it, where);
            } else if (strcmp(type, "ByteLevel") == 0) {
                if (seen_bl) {
                    return lerr(L, CS_ENOTSUP, "%s: a second ByteLevel is not supported", where);
                }
                seen_bl = true;
                rc = load_byte_level(L, it, where, &use_regex);
                if (rc == CS_OK && use_regex) {
                    if (L->t->pat != PAT_NONE) {
                        return lerr(L, CS_ENOTSUP,
                                    "%s: ByteLevel with use_regex after a Split is "
                                    "not supported",
                                    where);
                    }
                    L->t->pat = PAT_GPT2;
                }
            } else {
                return lerr(L, CS_ENOTSUP, "%s: unsupported pre-tokenizer type %.40s", where, type);
            }
            if (rc != CS_OK) {
                return rc;
            }
        }
        if (!seen_bl) {
            return lerr(L, CS_ENOTSUP,
                        "pre_tokenizer: no ByteLevel step (only byte-level BPE is "
                        "supported)");
        }
        if (L->t->pat == PAT_NONE) {
            return lerr(L, CS_ENOTSUP, "pre_tokenizer: no split pattern");
        }
        return CS_OK;
    }
    return lerr(L, CS_ENOTSUP, "pre_tokenizer: unsupported pre-tokenizer type %.40s", type);
}

static cs_rc load_decoder(const loader *L, const cJSON *d, const char *where)
{
    const char *type;
    cs_rc rc;
    if (!d || cJSON_IsNull(d)) {
        return lerr(L, CS_ENOTSUP, "%s: missing (a ByteLevel decoder is needed)", where);
    }
    rc = check_type(L, d, where, &type);
    if (rc != CS_OK) {
        return rc;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        return CS_OK;
    }
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = member(d, "decoders"), *it;
        char sub[64];
        size_t i = 0;
        if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0) {
            return lerr(L, CS_EPARSE, "%s.decoders: expected a non-empty array", where);
        }
        cJSON_ArrayForEach(it, list)
        {
            snprintf(sub, sizeof sub, "%s.decoders[%zu]", where, i++);
            rc = load_decoder(L, it, sub);
            if (rc != CS_OK) {
                return rc;
            }
        }
        return CS_OK;
    }
    return lerr(L, CS_ENOTSUP, "%s: unsupported decoder type %.40s (only ByteLevel)", where, type);
}

static cs_rc push_id(int32_t **arr, size_t *n, int32_t id)
{
    int32_t *p = cs_realloc_array(*arr, *n + 1, sizeof(int32_t));
    if (!p) {
        return CS_ENOMEM;
    }
    p[(*n)++] = id;
    *arr = p;
    return CS_OK;
}

static cs_rc load_template(const loader *L, const cJSON *p, const char *where)
{
    const cJSON *single = member(p, "single"), *specials = member(p, "special_tokens"), *it;
    bool after = false;
    size_t i = 0;
    cs_tok *t = L->t;
    if (t->pre_ids || t->post_ids) {
        return lerr(L, CS_ENOTSUP, "%s: a second TemplateProcessing is not supported", where);
    }
    if (!cJSON_IsArray(single)) {
        return lerr(L, CS_EPARSE, "%s.single: expected an array", where);
    }
    cJSON_ArrayForEach(it, single)
    {
        const cJSON *sp = member(it, "SpecialToken"), *ids, *idv;
        const char *name;
        if (member(it, "Sequence")) {
            after = true;
            i++;
            continue;
        }
        name = member_str(sp, "id");
        if (!name) {
            return lerr(L, CS_EPARSE,
                        "%s.single[%zu]: expected {\"SpecialToken\": {\"id\": ...}} "
                        "or {\"Sequence\": ...}",
                        where, i);
        }
        ids = member(member(specials, name), "ids");
        if (!cJSON_IsArray(ids)) {
            return lerr(L, CS_EPARSE, "%s.special_tokens[\"%.40s\"].ids: expected an array", where,
                        name);
        }
        cJSON_ArrayForEach(idv, ids)
        {
            int32_t id;
            if (!as_id(idv, &id) || (size_t)id >= t->n_ents || !(t->ents[id].flags & F_PRESENT)) {
                return lerr(L, CS_EPARSE, "%s.special_tokens[\"%.40s\"].ids: not a token id", where,
                            name);
            }
            if (push_id(after ? &t->post_ids : &t->pre_ids, after ? &t->n_post : &t->n_pre, id) !=
                CS_OK) {
                return cs_err_set(L->err, CS_ENOMEM, 0, "%s: out of memory", L->name);
            }
        }
        i++;
    }
    return CS_OK;
}

static cs_rc load_post_processor(const loader *L, const cJSON *p, const char *where)
{
    const char *type;
    cs_rc rc;
    if (!p || cJSON_IsNull(p)) {
        return CS_OK;
    }
    rc = check_type(L, p, where, &type);
    if (rc != CS_OK) {
        return rc;
    }
    if (strcmp(type, "ByteLevel") == 0) {
        return CS_OK; /* only trims offsets */
    }
    if (strcmp(type, "TemplateProcessing") == 0) {
        return load_template(L, p, where);
    }
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = member(p, "processors"), *it;
        char sub[64];
        size_t i = 0;
        if (!cJSON_IsArray(list)) {
            return lerr(L, CS_EPARSE, "%s.processors: expected an array", where);
        }
        cJSON_ArrayForEach(it, list)
        {
            snprintf(sub, sizeof sub, "%s.processors[%zu]", where, i++);
            rc = load_post_processor(L, it, sub);
            if (rc != CS_OK) {
                return rc;
            }
        }
        return CS_OK;
    }
    return lerr(L, CS_ENOTSUP, "%s: unsupported post-processor type %.40s", where, type);
}

static cs_rc check_model_options(const loader *L, const cJSON *model)
{
    static const char *const empty_ok[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    const cJSON *v = member(model, "dropout");
    bool b;
    cs_rc rc;
    if (v && !cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble == 0.0)) {
        return lerr(L, CS_ENOTSUP, "model.dropout: BPE dropout is not supported");
    }
    for (size_t i = 0; i < sizeof empty_ok / sizeof empty_ok[0]; i++) {
        v = member(model, empty_ok[i]);
        if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && v->valuestring[0] == '\0')) {
            return lerr(L, CS_ENOTSUP, "model.%s: not supported (must be null or \"\")",
                        empty_ok[i]);
        }
    }
    rc = member_bool(L, model, "byte_fallback", "model", false, &b);
    if (rc == CS_OK && b) {
        rc = lerr(L, CS_ENOTSUP, "model.byte_fallback: true is not supported");
    }
    if (rc == CS_OK) {
        rc = member_bool(L, model, "ignore_merges", "model", false, &L->t->ignore_merges);
    }
    return rc;
}

/* Sizes the id table from the vocab and added tokens. */
static cs_rc size_ids(const loader *L, const cJSON *vocab, const cJSON *addl, size_t *n_ids,
                      size_t *n_keys)
{
    const cJSON *it;
    int32_t id, max = -1;
    size_t i = 0;
    *n_keys = 0;
    cJSON_ArrayForEach(it, vocab)
    {
        if (!as_id(it, &id)) {
            return lerr(L, CS_EPARSE,
                        "model.vocab[\"%.40s\"]: expected an integer id in 0..%d, "
                        "got %s",
                        it->string ? it->string : "", (int)MAX_ID - 1, json_type(it));
        }
        max = id > max ? id : max;
        (*n_keys)++;
    }
    cJSON_ArrayForEach(it, addl)
    {
        if (!as_id(member(it, "id"), &id)) {
            return lerr(L, CS_EPARSE, "added_tokens[%zu].id: expected an integer id in 0..%d", i,
                        (int)MAX_ID - 1);
        }
        max = id > max ? id : max;
        (*n_keys)++;
        i++;
    }
    *n_ids = (size_t)(max + 1);
    /* Real vocabularies are dense; a few stray huge ids must not cost a 2^24-entry table. */
    if (*n_ids > *n_keys + MAX_HOLES) {
        return lerr(L, CS_EPARSE, "ids are too sparse: largest id %d for %zu tokens", (int)max,
                    *n_keys);
    }
    return CS_OK;
}

static cs_rc load_vocab(const loader *L, const cJSON *vocab)
{
    cs_tok *t = L->t;
    const cJSON *it;
    cs_rc rc;
    cJSON_ArrayForEach(it, vocab)
    {
        int32_t id = 0, other;
        (void)as_id(it, &id); /* checked by size_ids */
        if (!it->string) {
            return lerr(L, CS_EPARSE, "model.vocab: a member without a key");
        }
        if (t->ents[id].flags & F_PRESENT) {
            return lerr(L, CS_EPARSE, "model.vocab[\"%.40s\"]: id %d is also \"%.40s\"", it->string,
                        (int)id, t->arena.data + t->ents[id].str_off);
        }
        rc = set_token(L, id, it->string, F_VOCAB, "model.vocab");
        if (rc != CS_OK) {
            return rc;
        }
        other = idmap_put(t, &t->strmap, false, id);
        if (other >= 0) {
            return lerr(L, CS_EPARSE, "model.vocab: duplicate token \"%.40s\"", it->string);
        }
    }
    return CS_OK;
}

static cs_rc load_added(const loader *L, const cJSON *addl)
{
    cs_tok *t = L->t;
    const cJSON *it;
    size_t i = 0;
    cs_rc rc;
    if (!addl || cJSON_IsNull(addl)) {
        return CS_OK;
    }
    t->added = cs_calloc_array((size_t)cJSON_GetArraySize(addl) + 1, sizeof(added));
    if (!t->added) {
        return cs_err_set(L->err, CS_ENOMEM, 0, "%s: out of memory", L->name);
    }
    cJSON_ArrayForEach(it, addl)
    {
        char where[48];
        added *a = &t->added[t->n_added];
        const char *content = member_str(it, "content");
        int32_t id = 0, other;
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        (void)as_id(member(it, "id"), &id); /* checked by size_ids */
        if (!content || !content[0]) {
            return lerr(L, CS_EPARSE, "%s.content: expected a non-empty string", where);
        }
        rc = member_bool(L, it, "special", where, false, &a->special);
        if (rc == CS_OK) {
            rc = member_bool(L, it, "lstrip", where, false, &a->lstrip);
        }
        if (rc == CS_OK) {
            rc = member_bool(L, it, "rstrip", where, false, &a->rstrip);
        }
        if (rc == CS_OK) {
            rc = member_bool(L, it, "single_word", where, false, &a->single_word);
        }
        if (rc == CS_OK) {
            rc = member_bool(L, it, "normalized", where, !a->special, &a->normalized);
        }
        if (rc == CS_OK) {
            rc = set_token(L, id, content, (uint8_t)(F_ADDED | (a->special ? F_SPECIAL : 0)),
                           where);
        }
        if (rc != CS_OK) {
            return rc;
        }
        other = idmap_put(t, &t->strmap, false, id);
        if (other >= 0 && other != id) {
            return lerr(L, CS_EPARSE, "%s: \"%.40s\" has id %d but the vocab gives it %d", where,
                        content, (int)id, (int)other);
        }
        for (size_t j = 0; j < t->n_added; j++) {
            if (t->added[j].id == id) {
                return lerr(L, CS_EPARSE, "%s: id %d is added twice", where, (int)id);
            }
        }
        a->id = id;
        t->n_added++;
        i++;
    }
    return CS_OK;
}

/* Splits merge i into its two token strings: "a b" (exactly one space) or ["a", "b"]. */
static cs_rc merge_parts(const loader *L, const cJSON *m, size_t i, char **a, char **b)
{
    *a = *b = NULL;
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring, *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' ')) {
            return lerr(L, CS_EPARSE,
                        "model.merges[%zu]: expected \"left right\" with one space, "
                        "got \"%.40s\"",
                        i, s);
        }
        *a = cs_strndup(s, (size_t)(sp - s));
        *b = cs_strdup(sp + 1);
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
               cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
               cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
        *a = cs_strdup(cJSON_GetArrayItem(m, 0)->valuestring);
        *b = cs_strdup(cJSON_GetArrayItem(m, 1)->valuestring);
    } else {
        return lerr(L, CS_EPARSE,
                    "model.merges[%zu]: expected \"left right\" or [\"left\", "
                    "\"right\"], got %s",
                    i, json_type(m));
    }
    if (!*a || !*b) {
        free(*a);
        free(*b);
        *a = *b = NULL;
        return cs_err_set(L->err, CS_ENOMEM, 0, "%s: out of memory", L->name);
    }
    return CS_OK;
}

/* Looks up a vocab token by its string (added tokens that are not in the vocab do not count:
 * the BPE model only knows its vocab). */
static int32_t vocab_find(const cs_tok *t, const char *s, size_t n)
{
    int32_t id = idmap_get(t, &t->strmap, false, s, n);
    return (id >= 0 && (t->ents[id].flags & F_VOCAB)) ? id : -1;
}

static cs_rc load_merges(const loader *L, const cJSON *merges)
{
    cs_tok *t = L->t;
    const cJSON *m;
    size_t n = (size_t)cJSON_GetArraySize(merges), i = 0, cap;
    cs_buf cat = {0};
    char *a = NULL, *b = NULL;
    cs_rc rc = CS_OK;
    cap = pow2_at_least(n * 2 + 1);
    t->merges = cs_alloc_array(cap, sizeof(mslot));
    if (!t->merges) {
        return cs_err_set(L->err, CS_ENOMEM, 0, "%s: out of memory", L->name);
    }
    t->merge_mask = cap - 1;
    for (size_t k = 0; k < cap; k++) {
        t->merges[k].key = UINT64_MAX;
    }
    cJSON_ArrayForEach(m, merges)
    {
        int32_t ia, ib, ic;
        rc = merge_parts(L, m, i, &a, &b);
        if (rc != CS_OK) {
            goto out;
        }
        ia = vocab_find(t, a, strlen(a));
        ib = vocab_find(t, b, strlen(b));
        if (ia < 0 || ib < 0) {
            rc = lerr(L, CS_EPARSE, "model.merges[%zu]: unknown token \"%.40s\"", i,
                      ia < 0 ? a : b);
            goto out;
        }
        cat.len = 0;
        if (cs_buf_puts(&cat, a) != CS_OK || cs_buf_puts(&cat, b) != CS_OK) {
            rc = cs_err_set(L->err, CS_ENOMEM, 0, "%s: out of memory", L->name);
            goto out;
        }
        ic = vocab_find(t, cat.data, cat.len);
        if (ic < 0) {
            rc = lerr(L, CS_EPARSE,
                      "model.merges[%zu]: the merged token \"%.40s\" is not in the "
                      "vocab",
                      i, cat.data);
            goto out;
        }
        merge_put(t, ia, ib, (uint32_t)i, ic);
        free(a);
        free(b);
        a = b = NULL;
        i++;
    }
out:
    free(a);
    free(b);
    cs_buf_fini(&cat);
    return rc;
}

static int cmp_added(const cs_tok *t, size_t x, size_t y)
{
    const added *a = &t->added[x], *b = &t->added[y];
    uint8_t fa = (uint8_t)t->arena.data[a->match_off], fb = (uint8_t)t->arena.data[b->match_off];
    if (fa != fb) {
        return fa < fb ? -1 : 1;
    }
    if (a->match_len != b->match_len) {
        return a->match_len > b->match_len ? -1 : 1;
    }
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* Builds the two match sets (insertion sort: a few hundred tokens at most in practice). */
static cs_rc build_added_sets(const loader *L)
{
    cs_tok *t = L->t;
    for (size_t k = 0; k < t->n_added; k++) {
        added *a = &t->added[k];
        const entry *e = &t->ents[a->id];
        const char *content = t->arena.data + e->str_off;
        if (a->normalized && t->nfc) {
            utf8proc_uint8_t *nfc = NULL;
            utf8proc_ssize_t r =
                    utf8proc_map((const utf8proc_uint8_t *)content, (utf8proc_ssize_t)e->str_len,
                                 &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (r < 0) {
                free(nfc);
                return lerr(L, CS_EPARSE, "added_tokens: \"%.40s\" is not valid UTF-8", content);
            }
            if (arena_add(t, (const char *)nfc, (size_t)r, &a->match_off) != CS_OK) {
                free(nfc);
                return cs_err_set(L->err, CS_ENOMEM, 0, "%s: out of memory", L->name);
            }
            a->match_len = (size_t)r;
            free(nfc);
        } else {
            a->match_off = e->str_off;
            a->match_len = e->str_len;
        }
        if (a->match_len == 0) {
            return lerr(L, CS_EPARSE, "added_tokens: \"%.40s\" normalises to nothing", content);
        }
    }
    for (int s = 0; s < 2; s++) {
        added_set *set = &t->sets[s];
        set->idx = cs_alloc_array(t->n_added + 1, sizeof(size_t));
        if (!set->idx) {
            return cs_err_set(L->err, CS_ENOMEM, 0, "%s: out of memory", L->name);
        }
        for (size_t k = 0; k < t->n_added; k++) {
            if (t->added[k].normalized == (s == 1)) {
                size_t j = set->n++;
                while (j > 0 && cmp_added(t, set->idx[j - 1], k) > 0) {
                    set->idx[j] = set->idx[j - 1];
                    j--;
                }
                set->idx[j] = k;
            }
        }
        for (size_t b = 0, j = 0; b <= 256; b++) {
            while (j < set->n &&
                   (uint8_t)t->arena.data[t->added[set->idx[j]].match_off] < (unsigned)b) {
                j++;
            }
            set->bucket[b] = j;
        }
    }
    return CS_OK;
}

static cs_rc load_tree(const loader *L, const cJSON *root)
{
    cs_tok *t = L->t;
    const cJSON *model, *vocab, *merges, *addl;
    const char *type;
    size_t n_keys = 0;
    cs_rc rc;

    if (!cJSON_IsObject(root)) {
        return lerr(L, CS_EPARSE, "(root): expected an object, got %s", json_type(root));
    }
    model = member(root, "model");
    if (!cJSON_IsObject(model)) {
        return lerr(L, CS_EPARSE, "model: expected an object, got %s", json_type(model));
    }
    type = member_str(model, "type");
    if (type && strcmp(type, "BPE") != 0) {
        return lerr(L, CS_ENOTSUP, "unsupported tokenizer type %.40s (only BPE)", type);
    }
    if (!type && member(model, "type")) {
        return lerr(L, CS_EPARSE, "model.type: expected a string");
    }
    vocab = member(model, "vocab");
    merges = member(model, "merges");
    if (!cJSON_IsObject(vocab)) {
        return lerr(L, CS_EPARSE, "model.vocab: expected an object, got %s", json_type(vocab));
    }
    if (!cJSON_IsArray(merges)) {
        return lerr(L, CS_EPARSE, "model.merges: expected an array, got %s", json_type(merges));
    }
    addl = member(root, "added_tokens");
    if (addl && !cJSON_IsNull(addl) && !cJSON_IsArray(addl)) {
        return lerr(L, CS_EPARSE, "added_tokens: expected an array, got %s", json_type(addl));
    }
    rc = check_model_options(L, model);
    if (rc != CS_OK) {
        return rc;
    }
    rc = size_ids(L, vocab, cJSON_IsArray(addl) ? addl : NULL, &t->n_ents, &n_keys);
    if (rc != CS_OK) {
        return rc;
    }
    t->ents = cs_calloc_array(t->n_ents + 1, sizeof(entry));
    if (!t->ents || idmap_init(&t->strmap, n_keys) != CS_OK ||
        idmap_init(&t->rawmap, n_keys) != CS_OK) {
        return cs_err_set(L->err, CS_ENOMEM, 0, "%s: out of memory", L->name);
    }
    rc = load_vocab(L, vocab);
    if (rc == CS_OK) {
        rc = load_added(L, cJSON_IsArray(addl) ? addl : NULL);
    }
    if (rc == CS_OK) {
        rc = load_merges(L, merges);
    }
    if (rc == CS_OK) {
        rc = load_normalizer(L, member(root, "normalizer"), "normalizer");
    }
    if (rc == CS_OK) {
        rc = load_pre_tokenizer(L, member(root, "pre_tokenizer"));
    }
    if (rc == CS_OK) {
        rc = load_post_processor(L, member(root, "post_processor"), "post_processor");
    }
    if (rc == CS_OK) {
        rc = load_decoder(L, member(root, "decoder"), "decoder");
    }
    if (rc != CS_OK) {
        return rc;
    }
    if (build_pieces(t) != CS_OK) {
        return cs_err_set(L->err, CS_ENOMEM, 0, "%s: out of memory", L->name);
    }
    for (size_t id = 0; id < t->n_ents; id++) {
        if (t->ents[id].flags & F_RAW) {
            (void)idmap_put(t, &t->rawmap, true, (int32_t)id);
        }
    }
    for (unsigned b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = idmap_get(t, &t->rawmap, true, &c, 1);
    }
    rc = build_added_sets(L);
    if (rc != CS_OK) {
        return rc;
    }
    t->bos = t->n_pre > 0 ? t->pre_ids[0] : cs_tok_find(t, "<|begin_of_text|>");
    t->eos = cs_tok_find(t, "<|end_of_text|>");
    if (t->eos < 0) {
        t->eos = cs_tok_find(t, "<|endoftext|>");
    }
    return CS_OK;
}

/* Line and column (1-based, columns in bytes) of offset off in text. */
static void line_col(const char *text, size_t off, size_t *line, size_t *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

cs_rc cs_tok_load_mem(cs_tok **out, const char *json, size_t len, const char *name, cs_err *err)
{
    cs_tok *t = NULL;
    cJSON *root = NULL;
    const char *end = NULL;
    loader L;
    cs_rc rc = CS_OK;

    *out = NULL;
    if (!name) {
        name = "<tokenizer.json>";
    }
    if (!json || len == 0) {
        return cs_err_set(err, CS_EPARSE, 0, "%s: empty input, expected JSON", name);
    }
    root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (root && end) {
        while ((size_t)(end - json) < len &&
               (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) {
            end++;
        }
    }
    if (!root || !end || (size_t)(end - json) != len) {
        size_t off = end && end >= json ? (size_t)(end - json) : 0, line, col;
        off = off > len ? len : off;
        line_col(json, off, &line, &col);
        rc = cs_err_set(err, CS_EPARSE, 0, "%s:%zu:%zu: %s", name, line, col,
                        root ? "trailing data after the JSON value" : "not valid JSON");
        goto out;
    }
    t = calloc(1, sizeof *t);
    if (!t) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory", name);
        goto out;
    }
    t->bos = t->eos = -1;
    L.t = t;
    L.name = name;
    L.err = err;
    rc = load_tree(&L, root);
out:
    cJSON_Delete(root);
    if (rc != CS_OK) {
        cs_tok_destroy(t);
        return rc;
    }
    *out = t;
    return CS_OK;
}

cs_rc cs_tok_load(cs_tok **out, const char *path, cs_err *err)
{
    char *text = NULL;
    size_t len = 0;
    cs_rc rc;
    *out = NULL;
    rc = cs_path_read_file(path, CS_TOK_MAX_FILE, &text, &len, err);
    if (rc == CS_OK) {
        rc = cs_tok_load_mem(out, text, len, path, err);
    }
    free(text);
    return rc;
}

void cs_tok_destroy(cs_tok *tok)
{
    if (!tok) {
        return;
    }
    free(tok->ents);
    cs_buf_fini(&tok->arena);
    free(tok->strmap.slots);
    free(tok->rawmap.slots);
    free(tok->merges);
    free(tok->added);
    free(tok->sets[0].idx);
    free(tok->sets[1].idx);
    free(tok->pre_ids);
    free(tok->post_ids);
    free(tok);
}

/* ---- encoding ---------------------------------------------------------------------------- */

typedef struct seg {
    size_t start, end; /* bytes of the text it was cut from */
    int32_t id;        /* added token id, or -1 for text */
} seg;

typedef struct sym {
    int32_t id;
    int32_t prev, next; /* -1 = none */
    bool alive;
} sym;

typedef struct hent {
    uint32_t rank;
    uint32_t pos;
    int32_t id;
} hent;

/* Scratch space of one encode call; every array grows on demand and is freed at the end. */
typedef struct enc {
    const cs_tok *t;
    cs_err *err;
    int32_t *ids;
    size_t n_ids, cap_ids;
    uint32_t *cp; /* code points of the current piece */
    uint8_t *cls; /* their classes (C_*) */
    size_t *off;  /* their byte offsets; off[n] = byte length */
    size_t cap_cp, cap_cls, cap_off;
    sym *syms;
    size_t cap_sym;
    hent *heap;
    size_t cap_heap;
    char *tmp; /* prefix-space copies */
    size_t cap_tmp;
} enc;

/* Returns p grown to at least need elements of size bytes (p itself when it holds them already),
 * or NULL on exhaustion with p still valid and owned. */
static void *grow_to(void *p, size_t *cap, size_t need, size_t size)
{
    size_t c = *cap ? *cap : 64;
    void *q;
    if (need <= *cap) {
        return p;
    }
    while (c < need) {
        if (c > SIZE_MAX / 2) {
            return NULL;
        }
        c *= 2;
    }
    q = cs_realloc_array(p, c, size);
    if (q) {
        *cap = c;
    }
    return q;
}

/* Grows array p (an lvalue) to need elements; runs fail (a statement) on exhaustion. */
#define GROW_OR(p, cap, need, fail)                               \
    do {                                                          \
        void *grown_ = grow_to((p), &(cap), (need), sizeof *(p)); \
        if (!grown_) {                                            \
            fail;                                                 \
        }                                                         \
        (p) = grown_;                                             \
    } while (0)

static void enc_free(enc *E)
{
    free(E->cp);
    free(E->cls);
    free(E->off);
    free(E->syms);
    free(E->heap);
    free(E->tmp);
}

static cs_rc emit(enc *E, int32_t id)
{
    GROW_OR(E->ids, E->cap_ids, E->n_ids + 1, return CS_ENOMEM);
    E->ids[E->n_ids++] = id;
    return CS_OK;
}

static bool heap_less(const hent *a, const hent *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(hent *h, size_t *n, hent v)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&v, &h[p])) {
            break;
        }
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static hent heap_pop(hent *h, size_t *n)
{
    hent top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const hent *mv = &last;
        if (l < *n && heap_less(&h[l], mv)) {
            m = l;
            mv = &h[l];
        }
        if (r < *n && heap_less(&h[r], mv)) {
            m = r;
        }
        if (m == i) {
            break;
        }
        h[i] = h[m];
        i = m;
    }
    if (*n > 0) {
        h[i] = last;
    }
    return top;
}

static void push_pair(const cs_tok *t, hent *heap, size_t *nh, const sym *s, int32_t pos)
{
    const mslot *m;
    if (pos < 0 || s[pos].next < 0) {
        return;
    }
    m = merge_get(t, s[pos].id, s[s[pos].next].id);
    if (m) {
        hent h = {m->rank, (uint32_t)pos, m->id};
        heap_push(heap, nh, h);
    }
}

/* BPE over the bytes of one pre-token. */
static cs_rc bpe(enc *E, const char *s, size_t n)
{
    const cs_tok *t = E->t;
    size_t ns = 0, nh = 0;
    sym *sy;
    if (n == 0) {
        return CS_OK;
    }
    if (t->ignore_merges || n == 1) {
        int32_t id = idmap_get(t, &t->rawmap, true, s, n);
        if (id >= 0) {
            return emit(E, id);
        }
    }
    if (n > INT32_MAX / 4) {
        return cs_err_set(E->err, CS_ETOOBIG, 0, "tokenize: a pre-token of %zu bytes", n);
    }
    /* n-1 initial pairs, then each merge pops one entry and pushes at most two: < 3n pushes. */
    GROW_OR(E->syms, E->cap_sym, n, return CS_ENOMEM);
    GROW_OR(E->heap, E->cap_heap, 3 * n, return CS_ENOMEM);
    sy = E->syms;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[(uint8_t)s[i]];
        if (id < 0) {
            continue; /* no token for this byte: dropped, as Hugging Face does without unk */
        }
        sy[ns].id = id;
        sy[ns].prev = (int32_t)ns - 1;
        sy[ns].next = (int32_t)ns + 1;
        sy[ns].alive = true;
        ns++;
    }
    if (ns == 0) {
        return CS_OK;
    }
    sy[ns - 1].next = -1;
    for (size_t i = 0; i + 1 < ns; i++) {
        push_pair(t, E->heap, &nh, sy, (int32_t)i);
    }
    while (nh > 0) {
        hent top = heap_pop(E->heap, &nh);
        sym *a = &sy[top.pos];
        const mslot *m;
        int32_t nx;
        if (!a->alive || a->next < 0) {
            continue;
        }
        nx = a->next;
        m = merge_get(t, a->id, sy[nx].id);
        if (!m || m->id != top.id) {
            continue; /* stale entry */
        }
        a->id = top.id;
        sy[nx].alive = false;
        a->next = sy[nx].next;
        if (a->next >= 0) {
            sy[a->next].prev = (int32_t)top.pos;
        }
        push_pair(t, E->heap, &nh, sy, a->prev);
        push_pair(t, E->heap, &nh, sy, (int32_t)top.pos);
    }
    for (int32_t i = 0; i >= 0; i = sy[i].next) {
        cs_rc rc = emit(E, sy[i].id);
        if (rc != CS_OK) {
            return rc;
        }
    }
    return CS_OK;
}

/* BPE of one pre-token, with ByteLevel's add_prefix_space. */
static cs_rc bpe_piece(enc *E, const char *s, size_t n)
{
    if (E->t->prefix_space && n > 0 && s[0] != ' ') {
        GROW_OR(E->tmp, E->cap_tmp, n + 1, return CS_ENOMEM);
        E->tmp[0] = ' ';
        memcpy(E->tmp + 1, s, n);
        return bpe(E, E->tmp, n + 1);
    }
    return bpe(E, s, n);
}

static uint32_t fold_ascii(uint32_t c)
{
    if (c >= 'A' && c <= 'Z') {
        return c + 32;
    }
    if (c == 0x17F) { /* LATIN SMALL LETTER LONG S case-folds to s */
        return 's';
    }
    return c;
}

/* 's|'t|'re|'ve|'m|'ll|'d at i (case-insensitive with icase); returns its length or 0. */
static size_t match_contraction(const uint32_t *cp, size_t n, size_t i, bool icase)
{
    uint32_t a, b;
    if (cp[i] != '\'' || i + 1 >= n) {
        return 0;
    }
    a = icase ? fold_ascii(cp[i + 1]) : cp[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        return 2;
    }
    if (i + 2 >= n) {
        return 0;
    }
    b = icase ? fold_ascii(cp[i + 2]) : cp[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        return 3;
    }
    return 0;
}

static size_t run_of(const uint8_t *cls, size_t n, size_t i, uint8_t mask)
{
    while (i < n && (cls[i] & mask)) {
        i++;
    }
    return i;
}

static size_t run_of_other(const uint8_t *cls, size_t n, size_t i)
{
    while (i < n && !(cls[i] & (C_L | C_N | C_S))) {
        i++;
    }
    return i;
}

/* The whitespace branches shared by all patterns: \s+(?!\S)|\s+ ; returns the end. */
static size_t match_spaces(const uint8_t *cls, size_t n, size_t i)
{
    size_t j = run_of(cls, n, i, C_S);
    if (j < n && j - i >= 2) {
        return j - 1; /* leave one space to lead the next word */
    }
    return j;
}

/* End (in code points) of the match of the Llama-3/Qwen2 pattern at i (< n). max_digits is 3
 * (Llama-3: \p{N}{1,3}) or 1 (Qwen2: \p{N}). Every position matches something, so the result is
 * always > i. */
static size_t match_llama(const uint32_t *cp, const uint8_t *cls, size_t n, size_t i,
                          size_t max_digits)
{
    size_t k, j;
    uint8_t c = cls[i];
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
    k = match_contraction(cp, n, i, true);
    if (k) {
        return i + k;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (!(c & (C_RN | C_L | C_N)) && i + 1 < n && (cls[i + 1] & C_L)) {
        return run_of(cls, n, i + 1, C_L);
    }
    if (c & C_L) {
        return run_of(cls, n, i, C_L);
    }
    /* \p{N}{1,3} */
    if (c & C_N) {
        for (j = i; j < n && j - i < max_digits && (cls[j] & C_N); j++) {
        }
        return j;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    if (cp[i] == ' ' && i + 1 < n && !(cls[i + 1] & (C_S | C_L | C_N))) {
        return run_of(cls, n, run_of_other(cls, n, i + 1), C_RN);
    }
    if (!(c & (C_S | C_L | C_N))) {
        return run_of(cls, n, run_of_other(cls, n, i), C_RN);
    }
    /* \s*[\r\n]+ : up to and including the last \r or \n of the whitespace run */
    j = run_of(cls, n, i, C_S);
    for (k = j; k > i; k--) {
        if (cls[k - 1] & C_RN) {
            return k;
        }
    }
    /* \s+(?!\S)|\s+ */
    return match_spaces(cls, n, i);
}

/* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t match_gpt2(const uint32_t *cp, const uint8_t *cls, size_t n, size_t i)
{
    size_t k = match_contraction(cp, n, i, false), s = i;
    uint8_t c;
    if (k) {
        return i + k;
    }
    if (cp[i] == ' ' && i + 1 < n && !(cls[i + 1] & C_S)) {
        s = i + 1; /* " ?" followed by the class of the next character */
    }
    c = cls[s];
    if (c & C_L) {
        return run_of(cls, n, s, C_L);
    }
    if (c & C_N) {
        return run_of(cls, n, s, C_N);
    }
    if (!(c & C_S)) {
        return run_of_other(cls, n, s);
    }
    return match_spaces(cls, n, i);
}

/* Decodes text[0..len) (valid UTF-8) into E->cp/cls/off; *n = number of code points. */
static cs_rc decode_cps(enc *E, const char *text, size_t len, size_t *n)
{
    size_t i = 0;
    GROW_OR(E->cp, E->cap_cp, len + 1, return CS_ENOMEM);
    GROW_OR(E->cls, E->cap_cls, len + 1, return CS_ENOMEM);
    GROW_OR(E->off, E->cap_off, len + 1, return CS_ENOMEM);
    *n = 0;
    while (i < len) {
        uint32_t c = 0;
        size_t k = utf8_next((const uint8_t *)text + i, len - i, &c);
        if (k == 0) {
            return cs_err_set(E->err, CS_EINVAL, 0, "tokenize: invalid UTF-8 at byte %zu", i);
        }
        E->cp[*n] = c;
        E->cls[*n] = char_class(c);
        E->off[*n] = i;
        (*n)++;
        i += k;
    }
    E->off[*n] = len;
    return CS_OK;
}

/* End (in code points) of the pattern's match at i < n. */
static size_t match_at(const enc *E, size_t n, size_t i)
{
    switch (E->t->pat) {
    case PAT_GPT2:
        return match_gpt2(E->cp, E->cls, n, i);
    case PAT_QWEN2:
        return match_llama(E->cp, E->cls, n, i, 1);
    default:
        return match_llama(E->cp, E->cls, n, i, 3);
    }
}

/* Splits text[0..len) (valid UTF-8) with the pattern and runs BPE on each piece. */
static cs_rc split_and_bpe(enc *E, const char *text, size_t len)
{
    size_t n = 0;
    cs_rc rc = decode_cps(E, text, len, &n);
    for (size_t i = 0; i < n && rc == CS_OK;) {
        size_t j = match_at(E, n, i);
        const char *s = text + E->off[i];
        size_t bl = E->off[j] - E->off[i];
        rc = E->t->pat == PAT_GPT2 ? bpe(E, s, bl) : bpe_piece(E, s, bl);
        i = j;
    }
    return rc;
}

/* Pre-tokenises text[0..len) and runs BPE on each piece. ByteLevel(use_regex) with
 * add_prefix_space puts the space before splitting; after a Split it goes on each piece. */
static cs_rc pretokenize(enc *E, const char *text, size_t len)
{
    char *copy;
    cs_rc rc;
    if (len == 0) {
        return CS_OK;
    }
    if (E->t->pat != PAT_GPT2 || !E->t->prefix_space || text[0] == ' ') {
        return split_and_bpe(E, text, len);
    }
    copy = malloc(len + 1);
    if (!copy) {
        return CS_ENOMEM;
    }
    copy[0] = ' ';
    memcpy(copy + 1, text, len);
    rc = split_and_bpe(E, copy, len + 1);
    free(copy);
    return rc;
}

/* Last character of s[0..n) is a word character (alphanumeric or '_'), for single_word. */
static bool word_char(uint32_t c)
{
    return c == '_' || (char_class(c) & (C_L | C_N));
}

static bool ends_with_word(const char *s, size_t n)
{
    size_t i = n;
    uint32_t c = 0;
    if (n == 0) {
        return false;
    }
    while (i > 0 && ((uint8_t)s[i - 1] & 0xC0) == 0x80) {
        i--;
    }
    if (i > 0) {
        i--;
    }
    return utf8_next((const uint8_t *)s + i, n - i, &c) > 0 && word_char(c);
}

static bool starts_with_word(const char *s, size_t n)
{
    uint32_t c = 0;
    return n > 0 && utf8_next((const uint8_t *)s, n, &c) > 0 && word_char(c);
}

/* Start of the whitespace run that ends s[0..n). */
static size_t ws_left(const char *s, size_t n)
{
    size_t i = n;
    while (i > 0) {
        size_t j = i - 1;
        uint32_t c = 0;
        while (j > 0 && ((uint8_t)s[j] & 0xC0) == 0x80) {
            j--;
        }
        if (utf8_next((const uint8_t *)s + j, i - j, &c) == 0 || !is_ws(c)) {
            break;
        }
        i = j;
    }
    return i;
}

/* Length of the whitespace run that starts s[0..n). */
static size_t ws_right(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = 0;
        size_t k = utf8_next((const uint8_t *)s + i, n - i, &c);
        if (k == 0 || !is_ws(c)) {
            break;
        }
        i += k;
    }
    return i;
}

/* The longest added token of set starting at text[i], or NULL. */
static const added *added_at(const cs_tok *t, const added_set *set, const char *text, size_t len,
                             size_t i, bool split_special)
{
    uint8_t b = (uint8_t)text[i];
    for (size_t k = set->bucket[b]; k < set->bucket[b + 1]; k++) {
        const added *a = &t->added[set->idx[k]];
        if (split_special && a->special) {
            continue;
        }
        if (a->match_len <= len - i &&
            memcmp(text + i, t->arena.data + a->match_off, a->match_len) == 0) {
            return a;
        }
    }
    return NULL;
}

/* Cuts text[0..len) into segments at the added tokens of set (Hugging Face's find_matches). */
static cs_rc split_added(enc *E, const added_set *set, const char *text, size_t len,
                         bool split_special, seg **segs, size_t *n, size_t *cap)
{
    size_t i = 0, from = 0;
    *n = 0;
    while (set->n > 0 && i < len) {
        const added *a = added_at(E->t, set, text, len, i, split_special);
        size_t start = i, stop;
        if (!a) {
            i++;
            continue;
        }
        stop = i + a->match_len;
        if (a->single_word && ((start > 0 && ends_with_word(text, start)) ||
                               (stop < len && starts_with_word(text + stop, len - stop)))) {
            i = stop; /* discarded; matching goes on after it */
            continue;
        }
        if (a->lstrip) {
            size_t ns = ws_left(text, start);
            start = ns > from ? ns : from;
        }
        if (a->rstrip) {
            stop += ws_right(text + stop, len - stop);
        }
        GROW_OR(*segs, *cap, *n + 2, return CS_ENOMEM);
        if (from < start) {
            (*segs)[(*n)++] = (seg){from, start, -1};
        }
        (*segs)[(*n)++] = (seg){start, stop, a->id};
        from = stop;
        i = stop;
    }
    if (from < len) {
        GROW_OR(*segs, *cap, *n + 1, return CS_ENOMEM);
        (*segs)[(*n)++] = (seg){from, len, -1};
    }
    return CS_OK;
}

/* ASCII text is already in NFC: the common case skips utf8proc. */
static bool all_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((uint8_t)s[i] >= 0x80) {
            return false;
        }
    }
    return true;
}

cs_rc cs_tok_encode(const cs_tok *tok, const char *text, size_t len, unsigned flags, int32_t **ids,
                    size_t *n_ids, cs_err *err)
{
    enc E;
    seg *s1 = NULL, *s2 = NULL;
    size_t n1 = 0, c1 = 0, n2 = 0, c2 = 0;
    utf8proc_uint8_t *norm = NULL;
    bool split_special = (flags & CS_TOK_SPLIT_SPECIAL) != 0;
    cs_rc rc = CS_OK;

    memset(&E, 0, sizeof E);
    E.t = tok;
    E.err = err;
    *ids = NULL;
    *n_ids = 0;
    if (!text && len > 0) {
        return cs_err_set(err, CS_EINVAL, 0, "tokenize: NULL text");
    }
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t k = utf8_next((const uint8_t *)text + i, len - i, &c);
        if (k == 0) {
            return cs_err_set(err, CS_EINVAL, 0, "tokenize: invalid UTF-8 at byte %zu", i);
        }
        i += k;
    }
    if (flags & CS_TOK_ADD_SPECIAL) {
        for (size_t i = 0; i < tok->n_pre && rc == CS_OK; i++) {
            rc = emit(&E, tok->pre_ids[i]);
        }
    }
    if (rc == CS_OK && len > 0) {
        rc = split_added(&E, &tok->sets[0], text, len, split_special, &s1, &n1, &c1);
    }
    for (size_t a = 0; a < n1 && rc == CS_OK; a++) {
        const char *piece = text + s1[a].start;
        size_t plen = s1[a].end - s1[a].start;
        if (s1[a].id >= 0) {
            rc = emit(&E, s1[a].id);
            continue;
        }
        if (tok->nfc && !all_ascii(piece, plen)) {
            utf8proc_ssize_t r;
            free(norm);
            norm = NULL;
            r = utf8proc_map((const utf8proc_uint8_t *)piece, (utf8proc_ssize_t)plen, &norm,
                             UTF8PROC_STABLE | UTF8PROC_COMPOSE);
            if (r < 0) {
                rc = r == UTF8PROC_ERROR_NOMEM ? CS_ENOMEM
                                               : cs_err_set(err, CS_EINVAL, 0, "tokenize: NFC: %s",
                                                            utf8proc_errmsg(r));
                break;
            }
            piece = (const char *)norm;
            plen = (size_t)r;
        }
        rc = split_added(&E, &tok->sets[1], piece, plen, split_special, &s2, &n2, &c2);
        for (size_t b = 0; b < n2 && rc == CS_OK; b++) {
            rc = s2[b].id >= 0 ? emit(&E, s2[b].id)
                               : pretokenize(&E, piece + s2[b].start, s2[b].end - s2[b].start);
        }
    }
    if (flags & CS_TOK_ADD_SPECIAL) {
        for (size_t i = 0; i < tok->n_post && rc == CS_OK; i++) {
            rc = emit(&E, tok->post_ids[i]);
        }
    }
    if (rc == CS_OK && !E.ids) {
        E.ids = malloc(sizeof(int32_t));
        if (!E.ids) {
            rc = CS_ENOMEM;
        }
    }
    if (rc == CS_ENOMEM) {
        cs_err_set(err, CS_ENOMEM, 0, "tokenize: out of memory");
    }
    free(norm);
    free(s1);
    free(s2);
    enc_free(&E);
    if (rc != CS_OK) {
        free(E.ids);
        return rc;
    }
    *ids = E.ids;
    *n_ids = E.n_ids;
    return CS_OK;
}

cs_rc cs_tok_split(const cs_tok *tok, const char *text, size_t len, size_t **ends, size_t *n_ends,
                   cs_err *err)
{
    enc E;
    size_t n = 0, k = 0;
    size_t *out = NULL;
    cs_rc rc;
    memset(&E, 0, sizeof E);
    E.t = tok;
    E.err = err;
    *ends = NULL;
    *n_ends = 0;
    rc = decode_cps(&E, text ? text : "", text ? len : 0, &n);
    if (rc == CS_OK) {
        out = cs_alloc_array(n + 1, sizeof(size_t));
        if (!out) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "tokenize: out of memory");
        }
    }
    for (size_t i = 0; rc == CS_OK && i < n;) {
        i = match_at(&E, n, i);
        out[k++] = E.off[i];
    }
    if (rc == CS_ENOMEM && err && err->rc != CS_ENOMEM) {
        cs_err_set(err, CS_ENOMEM, 0, "tokenize: out of memory");
    }
    enc_free(&E);
    if (rc != CS_OK) {
        free(out);
        return rc;
    }
    *ends = out;
    *n_ends = k;
    return CS_OK;
}

/* ---- decoding and lookups ---------------------------------------------------------------- */

cs_rc cs_tok_decode(const cs_tok *tok, const int32_t *ids, size_t n, bool skip_special, char **text,
                    size_t *len, cs_err *err)
{
    cs_buf out = {0};
    *text = NULL;
    *len = 0;
    for (size_t i = 0; i < n; i++) {
        const entry *e;
        if (ids[i] < 0 || (size_t)ids[i] >= tok->n_ents || !(tok->ents[ids[i]].flags & F_PRESENT)) {
            cs_buf_fini(&out);
            return cs_err_set(err, CS_ERANGE, 0, "decode: ids[%zu] = %d is not a token id", i,
                              (int)ids[i]);
        }
        e = &tok->ents[ids[i]];
        if (skip_special && (e->flags & F_SPECIAL)) {
            continue;
        }
        if (cs_buf_append(&out, tok->arena.data + e->piece_off, e->piece_len) != CS_OK) {
            cs_buf_fini(&out);
            return cs_err_set(err, CS_ENOMEM, 0, "decode: out of memory");
        }
    }
    if (cs_buf_reserve(&out, 1) != CS_OK) {
        cs_buf_fini(&out);
        return cs_err_set(err, CS_ENOMEM, 0, "decode: out of memory");
    }
    *len = out.len;
    *text = cs_buf_take(&out);
    return CS_OK;
}

static const entry *get_entry(const cs_tok *tok, int32_t id)
{
    if (!tok || id < 0 || (size_t)id >= tok->n_ents || !(tok->ents[id].flags & F_PRESENT)) {
        return NULL;
    }
    return &tok->ents[id];
}

const char *cs_tok_piece(const cs_tok *tok, int32_t id, size_t *len)
{
    const entry *e = get_entry(tok, id);
    *len = e ? e->piece_len : 0;
    return e ? tok->arena.data + e->piece_off : NULL;
}

const char *cs_tok_token(const cs_tok *tok, int32_t id)
{
    const entry *e = get_entry(tok, id);
    return e ? tok->arena.data + e->str_off : NULL;
}

size_t cs_tok_vocab_size(const cs_tok *tok)
{
    return tok->n_ents;
}

int32_t cs_tok_find(const cs_tok *tok, const char *s)
{
    return idmap_get(tok, &tok->strmap, false, s, strlen(s));
}

int32_t cs_tok_bos(const cs_tok *tok)
{
    return tok->bos;
}

int32_t cs_tok_eos(const cs_tok *tok)
{
    return tok->eos;
}

cs_rc cs_tok_set_bos_eos(cs_tok *tok, int32_t bos, int32_t eos, cs_err *err)
{
    if (bos < -1 || eos < -1 || (bos >= 0 && (size_t)bos >= tok->n_ents) ||
        (eos >= 0 && (size_t)eos >= tok->n_ents)) {
        return cs_err_set(err, CS_ERANGE, 0, "tokenizer: bos %d / eos %d outside the vocab of %zu",
                          (int)bos, (int)eos, tok->n_ents);
    }
    tok->bos = bos;
    tok->eos = eos;
    return CS_OK;
}

bool cs_tok_is_special(const cs_tok *tok, int32_t id)
{
    const entry *e = get_entry(tok, id);
    return e && (e->flags & F_SPECIAL);
}

bool cs_tok_is_added(const cs_tok *tok, int32_t id)
{
    const entry *e = get_entry(tok, id);
    return e && (e->flags & F_ADDED);
}

const char *cs_tok_pattern_name(const cs_tok *tok)
{
    switch (tok->pat) {
    case PAT_LLAMA3:
        return "llama3";
    case PAT_QWEN2:
        return "qwen2";
    case PAT_GPT2:
        return "gpt2";
    default:
        return "none";
    }
}
