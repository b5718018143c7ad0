#!/usr/bin/env python3
"""Writes the hand-made tokenizer.json fixtures of tests/unit/tok_test.c (development tool; the
build and the tests only read its committed output).

  tiny-llama.json  Llama-3 flavour: Split(Llama-3 regex) + ByteLevel, merges as "a b" strings,
                   ignore_merges, special tokens and a TemplateProcessing that adds
                   <|begin_of_text|>, added tokens with lstrip ([L]) and rstrip ([R]).
  tiny-qwen.json   Qwen2 flavour: NFC normalizer, Split(Qwen2 regex) + ByteLevel, merges as
                   ["a", "b"] pairs, a normalized added token ("café!").

Both have the 256 byte tokens (ids 0..255 in byte-level alphabet order) and a few merges.
Run from this folder: python3 make_fixtures.py
"""
import json


def bytes_to_unicode():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B = bytes_to_unicode()
LLAMA = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
         r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN = LLAMA.replace(r"\p{N}{1,3}", r"\p{N}")
G = "Ġ"


def make(merges, extra_vocab, pattern, nfc=False, ignore_merges=False, added=(),
         pair_format=False):
    vocab = {}
    for b in range(256):
        vocab[B[b]] = b
    nid = 256
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = nid
            nid += 1
    for t in extra_vocab:
        if t not in vocab:
            vocab[t] = nid
            nid += 1
    added_tokens = []
    for i, (content, special, lstrip, rstrip, normalized) in enumerate(added):
        added_tokens.append({"id": nid + i, "content": content, "single_word": False,
                             "lstrip": lstrip, "rstrip": rstrip, "normalized": normalized,
                             "special": special})
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added_tokens,
        "normalizer": {"type": "NFC"} if nfc else None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated",
             "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False,
                           "trim_offsets": False, "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                    "use_regex": False},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": ignore_merges,
                  "vocab": vocab,
                  "merges": [[a, b] if pair_format else a + " " + b for a, b in merges]},
    }


llama_merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), (G, "w"), (G + "w", "o"),
                ("r", "l"), (G + "wo", "rl"), (G + "worl", "d"), ("1", "2"), ("12", "3"),
                ("'", "s"), ("'", "ll"), ("l", "o"), ("lo", "w"), ("e", "r"), ("low", "er"),
                ("n", "e"), ("ne", "w"), ("e", "s"), ("es", "t")]
d = make(llama_merges, ["newest", "abc"], LLAMA, ignore_merges=True,
         added=[("<|begin_of_text|>", True, False, False, False),
                ("<|end_of_text|>", True, False, False, False),
                ("<tool>", False, False, False, False),
                ("[L]", False, True, False, False),
                ("[R]", False, False, True, False)])
bos = d["added_tokens"][0]["id"]
d["post_processor"] = {"type": "Sequence", "processors": [
    {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
    {"type": "TemplateProcessing",
     "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}}],
     "pair": [],
     "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [bos],
                                              "tokens": ["<|begin_of_text|>"]}}}]}
with open("tiny-llama.json", "w", encoding="utf-8") as f:
    json.dump(d, f, ensure_ascii=False, indent=1)

qwen_merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), (G, "w"), ("1", "2"),
               ("Ã", "©"), ("c", "af"), ("a", "f"), ("caf", "Ã©")]
d = make(qwen_merges, [], QWEN, nfc=True, pair_format=True,
         added=[("<|endoftext|>", True, False, False, False),
                ("<|im_start|>", True, False, False, False),
                ("<think>", False, False, False, False),
                ("caf\u00e9!", False, False, False, True)])
with open("tiny-qwen.json", "w", encoding="utf-8") as f:
    json.dump(d, f, ensure_ascii=False, indent=1)
