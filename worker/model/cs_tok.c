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
 * This file encodes, decodes and looks up; cs_tok_load.c builds the cs_tok from tokenizer.json
 * (cs_tok_int.h is what the two share).
 */
#include "cs_tok.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "cs_alloc.h"
#include "cs_tok_int.h"

/* ---- small helpers ----------------------------------------------------------------------- */

size_t cs_tok_utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
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

/* ---- id maps ----------------------------------------------------------------------------- */

int32_t cs_tok_idmap_get(const cs_tok *t, const idmap *m, bool raw, const char *s, size_t n)
{
    uint32_t h = cs_tok_hash(s, n);
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
        k = cs_tok_ent_str(t, sl->id, raw, &kl);
        if (kl == n && memcmp(k, s, n) == 0) {
            return sl->id;
        }
    }
}

static const mslot *merge_get(const cs_tok *t, int32_t a, int32_t b)
{
    uint64_t key = cs_tok_merge_key(a, b);
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
        int32_t id = cs_tok_idmap_get(t, &t->rawmap, true, s, n);
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
        size_t k = cs_tok_utf8_next((const uint8_t *)text + i, len - i, &c);
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
    return cs_tok_utf8_next((const uint8_t *)s + i, n - i, &c) > 0 && word_char(c);
}

static bool starts_with_word(const char *s, size_t n)
{
    uint32_t c = 0;
    return n > 0 && cs_tok_utf8_next((const uint8_t *)s, n, &c) > 0 && word_char(c);
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
        if (cs_tok_utf8_next((const uint8_t *)s + j, i - j, &c) == 0 || !is_ws(c)) {
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
        size_t k = cs_tok_utf8_next((const uint8_t *)s + i, n - i, &c);
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
        size_t k = cs_tok_utf8_next((const uint8_t *)text + i, len - i, &c);
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
    return cs_tok_idmap_get(tok, &tok->strmap, false, s, strlen(s));
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
