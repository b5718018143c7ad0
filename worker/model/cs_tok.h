/* cs_tok.h - the Hugging Face byte-level BPE tokenizer (tokenizer.json) of Llama-3/3.1 and
 * Qwen2/2.5/3.
 *
 * What is supported, and refused with a clear error otherwise:
 * - model: {"type": "BPE"} with vocab, merges as "a b" strings or ["a", "b"] pairs, ignore_merges
 *   (a pre-token that is itself in the vocab is emitted whole, as Llama-3 sets it). No byte
 *   fallback, no dropout, no continuing_subword_prefix/end_of_word_suffix.
 * - normalizer: null, NFC, or a Sequence of those.
 * - pre_tokenizer: Sequence[Split(pattern Regex, behavior Isolated), ByteLevel(use_regex false)],
 *   or ByteLevel(use_regex true) alone (the GPT-2 pattern). The Split pattern must be the Llama-3
 *   pattern or the Qwen2 pattern (the same with single digits); both are implemented by hand over
 *   utf8proc's Unicode categories. Any other pattern is CS_ENOTSUP naming it.
 * - added_tokens: matched in the text before pre-tokenisation (leftmost, then longest), honouring
 *   lstrip/rstrip (whitespace eaten to the left/right is part of the token), normalized (matched
 *   in the NFC text) and single_word (word characters approximated as letters, digits and '_').
 * - Regex semantics are Oniguruma's (what Hugging Face compiles the pattern with): \s is Unicode
 *   White_Space, and (?i:'s) also matches 'ſ (U+017F case-folds to s).
 * - post_processor: TemplateProcessing (or a Sequence containing it; ByteLevel members are no-ops
 *   here) gives the special ids added around a single sequence with CS_TOK_ADD_SPECIAL.
 * - decoder: ByteLevel (or a Sequence holding it); byte fallback is not needed.
 *
 * Ids are int32_t (Hugging Face vocabularies stay far below 2^31). A loaded cs_tok is immutable:
 * every function taking `const cs_tok *` is thread-safe and may run concurrently.
 */
#ifndef CS_WORKER_MODEL_CS_TOK_H
#define CS_WORKER_MODEL_CS_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

typedef struct cs_tok cs_tok; /* opaque */

/* Largest tokenizer.json accepted by cs_tok_load (bytes). */
#define CS_TOK_MAX_FILE ((size_t)256 << 20)

/* Loads path (a tokenizer.json file). Returns CS_OK and *out (owned, free with cs_tok_destroy),
 * or an error with *out = NULL and err->msg naming the file and the place:
 *   CS_ENOENT/CS_EIO/CS_ETOOBIG  the file cannot be read;
 *   CS_EPARSE   not JSON ("<path>:<line>:<col>: ..."), or a field of the wrong type, a missing
 *               vocab/merges, a merge naming an unknown token, a duplicate token or id;
 *   CS_ENOTSUP  "unsupported tokenizer type WordPiece", an unsupported normalizer,
 *               pre-tokenizer, split pattern, decoder or model option. */
cs_rc cs_tok_load(cs_tok **out, const char *path, cs_err *err);

/* Same from memory: json[0..len) need not be NUL-terminated; name labels errors (NULL =
 * "<tokenizer.json>"). Borrows json. */
cs_rc cs_tok_load_mem(cs_tok **out, const char *json, size_t len, const char *name, cs_err *err);

/* NULL-safe. */
void cs_tok_destroy(cs_tok *tok);

/* Flags of cs_tok_encode. */
enum {
    /* Add the post-processor's special tokens (Llama-3: <|begin_of_text|> first; Qwen: none). */
    CS_TOK_ADD_SPECIAL = 1u << 0,
    /* Treat the text of special tokens as ordinary text (no special-token matching); non-special
     * added tokens are still matched. Hugging Face's split_special_tokens=True. */
    CS_TOK_SPLIT_SPECIAL = 1u << 1,
};

/* Encodes text[0..len) (UTF-8; need not be NUL-terminated; may contain NUL bytes). Invalid
 * UTF-8 is CS_EINVAL naming the byte offset. Returns CS_OK with *ids (owned, free with free();
 * never NULL on CS_OK, even for 0 ids) and *n_ids; on error *ids = NULL and *n_ids = 0.
 * Gives the same ids as Hugging Face's tokenizer.encode(text, add_special_tokens=...). */
cs_rc cs_tok_encode(const cs_tok *tok, const char *text, size_t len, unsigned flags, int32_t **ids,
                    size_t *n_ids, cs_err *err);

/* The pre-tokenizer split alone (no added tokens, no normalisation, no prefix space) of
 * text[0..len): *ends (owned, free with free(); never NULL on CS_OK) receives the byte offset where
 * each piece ends, *n_ends their number. For tests and `calsweep-run tokenize`. CS_EINVAL on
 * invalid UTF-8. */
cs_rc cs_tok_split(const cs_tok *tok, const char *text, size_t len, size_t **ends, size_t *n_ends,
                   cs_err *err);

/* Decodes ids[0..n) to text: every token, added ones included, goes through the ByteLevel decoder
 * as in Hugging Face (the usual added tokens are ASCII and come back as written). skip_special
 * drops special tokens. Returns CS_OK with *text (owned, free with free(), NUL-terminated; *len
 * excludes the NUL). The bytes are what the tokens hold: a cut in the middle of a UTF-8 character
 * gives invalid UTF-8 (Hugging Face would write U+FFFD instead). An id outside
 * [0, cs_tok_vocab_size) or a hole is CS_ERANGE naming its index. */
cs_rc cs_tok_decode(const cs_tok *tok, const int32_t *ids, size_t n, bool skip_special, char **text,
                    size_t *len, cs_err *err);

/* The bytes token id stands for in decoded text (byte-level decoded), for streaming output. May be
 * a fragment of a UTF-8 character. Returns borrowed bytes valid until cs_tok_destroy
 * (NUL-terminated, *len excludes the NUL), or NULL with *len = 0 when id is out of range or has no
 * token (a hole in the ids). */
const char *cs_tok_piece(const cs_tok *tok, int32_t id, size_t *len);

/* The token string as written in tokenizer.json ("Ġhello", "<|endoftext|>"); borrowed, valid until
 * cs_tok_destroy; NULL when id is out of range or a hole. */
const char *cs_tok_token(const cs_tok *tok, int32_t id);

/* One more than the largest id of the vocab and the added tokens: the size logits need at least. */
size_t cs_tok_vocab_size(const cs_tok *tok);

/* The id of token string s (as written in tokenizer.json: vocab or added token), or -1. */
int32_t cs_tok_find(const cs_tok *tok, const char *s);

/* Begin/end-of-sequence ids, or -1 when unknown. Defaults: bos = the first special token the
 * post-processor adds before the text, else "<|begin_of_text|>" if present; eos = "<|end_of_text|>"
 * or "<|endoftext|>" if present. config.json/generation_config.json are authoritative: override
 * with cs_tok_set_bos_eos (the only mutation; not concurrently with other calls). */
int32_t cs_tok_bos(const cs_tok *tok);
int32_t cs_tok_eos(const cs_tok *tok);
/* Sets bos and eos (-1 = none). CS_ERANGE if an id is >= cs_tok_vocab_size or < -1. */
cs_rc cs_tok_set_bos_eos(cs_tok *tok, int32_t bos, int32_t eos, cs_err *err);

/* true when id is an added token marked "special": true in tokenizer.json. */
bool cs_tok_is_special(const cs_tok *tok, int32_t id);
/* true when id is any added token (special or not). */
bool cs_tok_is_added(const cs_tok *tok, int32_t id);

/* Which split pattern was recognised: "llama3", "qwen2" or "gpt2"; borrowed static text. */
const char *cs_tok_pattern_name(const cs_tok *tok);

#endif
