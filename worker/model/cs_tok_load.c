/* cs_tok_load.c - builds a cs_tok from a Hugging Face tokenizer.json (cs_tok.h says what is
 * supported): the vocab and added tokens into the id table and its maps, the merges into the merge
 * table, the normalizer, pre-tokenizer, post-processor and decoder checked and recorded.
 *
 * Memory: every string lives in one arena (tok->arena); tokens hold offsets into it. The maps
 * are open-addressing tables of ids. Nothing is mutated after loading except bos/eos.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <utf8proc.h>

#include "cs_alloc.h"
#include "cs_path.h"
#include "cs_tok_int.h"

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

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n) {
        c <<= 1;
    }
    return c;
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

/* Inserts id under its own key; returns the id already there (-1 if none, then inserted). The map
 * is sized at init for every key it will get, so it never fills. */
static int32_t idmap_put(const cs_tok *t, idmap *m, bool raw, int32_t id)
{
    size_t n;
    const char *s = cs_tok_ent_str(t, id, raw, &n);
    uint32_t h = cs_tok_hash(s, n);
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
            const char *k = cs_tok_ent_str(t, sl->id, raw, &kl);
            if (kl == n && memcmp(k, s, n) == 0) {
                return sl->id;
            }
        }
    }
}

/* Later duplicates overwrite earlier ones, as Hugging Face's HashMap collect does. */
static void merge_put(cs_tok *t, int32_t a, int32_t b, uint32_t rank, int32_t id)
{
    uint64_t key = cs_tok_merge_key(a, b);
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
            size_t k = cs_tok_utf8_next(s + i, e->str_len - i, &c);
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

/* A step of tokenizer.json that may be a Sequence of steps (normalizer, decoder, post-processor).
 */
typedef cs_rc (*step_fn)(const loader *L, const cJSON *step, const char *where);

/* Loads each member of seq[key] (an array, non-empty when nonempty) with load, naming it
 * where.key[i]. */
static cs_rc load_sequence(const loader *L, const cJSON *seq, const char *key, const char *where,
                           bool nonempty, step_fn load)
{
    const cJSON *list = member(seq, key), *it;
    char sub[64];
    size_t i = 0;
    if (!cJSON_IsArray(list) || (nonempty && cJSON_GetArraySize(list) == 0)) {
        return lerr(L, CS_EPARSE, "%s.%s: expected %s", where, key,
                    nonempty ? "a non-empty array" : "an array");
    }
    cJSON_ArrayForEach(it, list)
    {
        cs_rc rc;
        snprintf(sub, sizeof sub, "%s.%s[%zu]", where, key, i++);
        rc = load(L, it, sub);
        if (rc != CS_OK) {
            return rc;
        }
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
        return load_sequence(L, n, "normalizers", where, false, load_normalizer);
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
        return load_sequence(L, d, "decoders", where, true, load_decoder);
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
        return load_sequence(L, p, "processors", where, false, load_post_processor);
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
    int32_t id = cs_tok_idmap_get(t, &t->strmap, false, s, n);
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
        t->byte_id[b] = cs_tok_idmap_get(t, &t->rawmap, true, &c, 1);
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
