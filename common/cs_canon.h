/* cs_canon.h - canonical JSON text of a cJSON tree, and SHA-256 (mbedTLS) over it.
 *
 * Why: a job is identified by the hash of its fully resolved config. Two configs that mean the same
 * thing must hash the same whatever their key order, whitespace or number spelling, and any change
 * of meaning must change the hash. The engine version is mixed in (cs_canon_hash's salt), so job
 * keys, and so cached results, change with the engine.
 *
 * The canonical form (stable: changing it changes every job key):
 * - No whitespace anywhere. Object members sorted by key, comparing the keys' UTF-8 bytes as
 *   unsigned (memcmp order). Array order is kept.
 * - Two members with the same key in one object are an error (CS_EINVAL naming the path).
 * - Strings (keys and values) must be valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF) and
 *   are written as-is except for minimal escaping: \" and \\, control characters U+0000..U+001F as
 *   \b \f \n \r \t, or \u00XX with lowercase hex for the others. Everything else, including "/",
 *   DEL and non-ASCII, is written raw (so "\u00e9", "\u00E9" and a raw e-acute are equal, and so
 *   are a surrogate pair escape and the raw 4-byte character).
 * - Literals: true, false, null.
 * - THE NUMBER RULE. A number whose value v is integral and |v| <= 2^53 is written as an integer in
 *   plain decimal ("%.0f"): 1, 1.0, 1e0 and 10e-1 all give "1"; -0 gives "0". Every other number is
 *   written in the shortest "%.<p>g" form, p = 1..17, that reads back (strtod) as the same double,
 *   with the exponent rewritten as "e", a "-" only when negative, and no leading zeros:
 *   0.1 -> "0.1", 1.5e-7 -> "1.5e-7", 1e300 -> "1e300", 2^53+2 -> "9007199254740994".
 *   NaN and infinities are refused (CS_ERANGE) - cJSON can hold an infinity after parsing "1e999".
 *   NOTE: cJSON keeps every number as a double, so integers beyond 2^53 have already lost
 *   precision when parsed (9007199254740993 reads as ...992); configs must not rely on them.
 *   Printing and strtod use the "C" locale's '.'; never setlocale(LC_NUMERIC) to anything else.
 * - Raw items (cJSON_Raw) and invalid items are refused (CS_EINVAL). Nesting deeper than
 *   CS_CANON_MAX_DEPTH is refused (CS_ERANGE).
 * Canonical text re-parsed by cJSON gives the same canonical text again (idempotence; fuzzed).
 *
 * All functions are pure (no globals) and thread-safe on distinct or read-only trees.
 */
#ifndef CS_COMMON_CS_CANON_H
#define CS_COMMON_CS_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cs_alloc.h"
#include "cs_err.h"

#define CS_CANON_MAX_DEPTH 1000
#define CS_SHA256_HEX_LEN  64 /* hex digits; buffers are CS_SHA256_HEX_LEN + 1 */

/* Appends the canonical text of tree (borrowed) to out. Returns CS_OK; CS_EINVAL (duplicate key,
 * invalid UTF-8, raw/invalid item, NULL tree), CS_ERANGE (NaN/Inf, too deep), each naming the JSON
 * path; CS_ENOMEM. On error out holds its old content. */
cs_rc cs_canon_append(const cJSON *tree, cs_buf *out, cs_err *err);

/* The same, except that raw items (cJSON_Raw) are copied as they are: the caller vouches that each
 * is canonical JSON text (cs_canon_is_canonical), e.g. a payload spliced into a message. */
cs_rc cs_canon_append_trusted(const cJSON *tree, cs_buf *out, cs_err *err);

/* Whether text[0..len) is exactly the canonical text of a JSON value: what cs_canon_append gives
 * for what cs_json_parse reads from it. Conservative: it may say false for a canonical text with
 * an escaped character in an object key or a \u escape in a string (callers then canonicalise
 * the slow way); it never says true for a text that is not canonical. Pure; no allocation. */
bool cs_canon_is_canonical(const char *text, size_t len);

/* Returns the canonical text as an owned NUL-terminated string in *out (free with free()) and its
 * length in *len (may be NULL). Errors as cs_canon_append; *out = NULL on error. */
cs_rc cs_canon_string(const cJSON *tree, char **out, size_t *len, cs_err *err);

/* Appends s as a JSON string with minimal escaping, the way cJSON prints strings: '"' and '\\'
 * escaped, \b \f \n \r \t by name, other bytes below 0x20 as \u00xx (lowercase hex), every other
 * byte (UTF-8 included) as it is. CS_ENOMEM. */
cs_rc cs_canon_put_string(cs_buf *out, const char *s);

/* Writes the canonical number text of v into buf (n >= 32 always suffices); the rule above.
 * Returns CS_ERANGE for NaN/Inf, CS_EINVAL when n is too small. */
cs_rc cs_canon_number(double v, char *buf, size_t n, cs_err *err);

/* SHA-256 of data[0..len) as 32 bytes or as 64 lowercase hex digits plus NUL. CS_EINTERNAL if
 * mbedTLS fails (it does not for in-memory input). */
cs_rc cs_sha256(const void *data, size_t len, uint8_t out[32], cs_err *err);
cs_rc cs_sha256_hex(const void *data, size_t len, char out_hex[CS_SHA256_HEX_LEN + 1], cs_err *err);

/* Writes n bytes as 2n lowercase hex digits plus NUL into out (2n + 1 bytes). */
void cs_hex_encode(const uint8_t *bytes, size_t n, char *out);

/* out_hex = lowercase hex of SHA-256(canonical(tree) || salt), salt being the bytes of the string
 * salt without its NUL (NULL = empty). The salt is the engine version, so job keys change with the
 * engine. Errors as cs_canon_append; out_hex is "" on error. */
cs_rc cs_canon_hash(const cJSON *tree, const char *salt, char out_hex[CS_SHA256_HEX_LEN + 1],
                    cs_err *err);

#endif
