#!/usr/bin/python3
"""Trains the testbed's two byte-level BPE tokenizers and writes them in Hugging Face format.

Development tool only (the build and the tests never run Python). Reads the four corpora written
by testbed-gen (sweeps/testbed/data/corpus/*.jsonl) and writes, for each model folder:
  tokenizer.json         the exact layout of Llama-3's (tb-llama) or Qwen2's (tb-qwen) tokenizer
  tokenizer_config.json  bos/eos, the tokenizer class, add_bos_token
It also offers encode()/decode() for train_models.py, which must tokenize exactly as the
Hugging Face "tokenizers" library would with these files.

  tb-llama: Split(Llama-3 regex, digits in groups of 1-3) + ByteLevel(add_prefix_space=false,
            use_regex=false); no normalizer; ignore_merges=true; merges as "a b" strings;
            <|begin_of_text|> prepended by a TemplateProcessing post-processor; vocab 1536.
  tb-qwen:  NFC normalizer; Split(Qwen2 regex, single digits) + ByteLevel; ignore_merges=false;
            merges as ["a", "b"] pairs; no BOS; <|endoftext|> is the eos; vocab 1280.

Usage: /usr/bin/python3 sweeps/testbed/train/train_tokenizer.py [--root sweeps/testbed]
Deterministic: ties between pairs of equal count are broken by the pair's lexical order.
"""
import argparse
import collections
import json
import os
import sys
import unicodedata

try:
    import regex
except ImportError:  # Debian: apt-get install python3-regex
    sys.exit("train_tokenizer.py needs the regex module (Debian package python3-regex)")

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                 r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

SPECS = {
    "tb-llama": {
        "pattern": LLAMA3_PATTERN,
        "vocab_size": 1536,
        "specials": ["<|begin_of_text|>", "<|end_of_text|>"],
        "bos": "<|begin_of_text|>",
        "eos": "<|end_of_text|>",
        "nfc": False,
        "ignore_merges": True,
        "merges_as_pairs": False,
    },
    "tb-qwen": {
        "pattern": QWEN2_PATTERN,
        "vocab_size": 1280,
        "specials": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        "bos": None,
        "eos": "<|endoftext|>",
        "nfc": True,
        "ignore_merges": False,
        "merges_as_pairs": True,
    },
}


def bytes_to_unicode():
    """GPT-2's reversible map from bytes to printable unicode characters (id order = list order)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) +
          list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return bs, [chr(c) for c in cs]


BYTE_ORDER, BYTE_CHARS = bytes_to_unicode()
BYTE_ENCODER = dict(zip(BYTE_ORDER, BYTE_CHARS))
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}


def read_corpus_texts(root):
    texts = []
    for dom in ("prose", "arith", "code", "facts"):
        with open(os.path.join(root, "data", "corpus", dom + ".jsonl"), encoding="utf-8") as f:
            for line in f:
                texts.append(json.loads(line)["text"])
    return texts


def pretokenize(text, spec):
    if spec["nfc"]:
        text = unicodedata.normalize("NFC", text)
    return regex.findall(spec["pattern"], text)


def train_bpe(texts, spec):
    words = collections.Counter()
    for t in texts:
        for w in pretokenize(t, spec):
            words["".join(BYTE_ENCODER[b] for b in w.encode("utf-8"))] += 1
    vocab = list(BYTE_CHARS)
    n_merges = spec["vocab_size"] - len(spec["specials"]) - 256
    seqs = {w: list(w) for w in words}
    merges = []
    for _ in range(n_merges):
        pairs = collections.Counter()
        for w, c in words.items():
            s = seqs[w]
            for i in range(len(s) - 1):
                pairs[(s[i], s[i + 1])] += c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        new = best[0] + best[1]
        vocab.append(new)
        for w in words:
            s = seqs[w]
            if len(s) < 2:
                continue
            i = 0
            out = []
            while i < len(s):
                if i + 1 < len(s) and s[i] == best[0] and s[i + 1] == best[1]:
                    out.append(new)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return vocab, merges


class Tokenizer:
    """Encodes like Hugging Face tokenizers with the files written below."""

    def __init__(self, tokenizer_json_path):
        with open(tokenizer_json_path, encoding="utf-8") as f:
            tj = json.load(f)
        self.vocab = tj["model"]["vocab"]
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        merges = tj["model"]["merges"]
        self.ranks = {}
        for r, m in enumerate(merges):
            a, b = m if isinstance(m, list) else m.split(" ")
            self.ranks[(a, b)] = r
        self.ignore_merges = tj["model"].get("ignore_merges", False)
        self.nfc = tj["normalizer"] is not None
        self.pattern = regex.compile(tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"])
        self.special = {t["content"]: t["id"] for t in tj["added_tokens"]}
        for t in tj["added_tokens"]:
            self.ids_to_tokens[t["id"]] = t["content"]
        self.bos_id = None
        pp = tj.get("post_processor")
        if pp and pp["type"] == "Sequence":
            for p in pp["processors"]:
                if p["type"] == "TemplateProcessing":
                    first = p["single"][0]
                    if "SpecialToken" in first:
                        self.bos_id = self.special[first["SpecialToken"]["id"]]
        self.cache = {}

    def _bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        if self.ignore_merges and word in self.vocab:
            out = [self.vocab[word]]
            self.cache[word] = out
            return out
        parts = list(word)
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]
        out = [self.vocab[p] for p in parts]
        self.cache[word] = out
        return out

    def encode(self, text, add_bos=True):
        """Token ids of text; add_bos applies the post-processor (BOS for tb-llama only)."""
        if self.nfc:
            text = unicodedata.normalize("NFC", text)
        ids = [self.bos_id] if (add_bos and self.bos_id is not None) else []
        for w in self.pattern.findall(text):
            ids.extend(self._bpe("".join(BYTE_ENCODER[b] for b in w.encode("utf-8"))))
        return ids

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            t = self.ids_to_tokens[i]
            if t in self.special:
                continue
            out.extend(BYTE_DECODER[c] for c in t)
        return out.decode("utf-8", errors="replace")


def tokenizer_json(spec, vocab, merges):
    v = {t: i for i, t in enumerate(vocab)}
    base = len(vocab)
    added = [{"id": base + k, "content": s, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False, "special": True}
             for k, s in enumerate(spec["specials"])]
    pre = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": spec["pattern"]}, "behavior": "Isolated",
         "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
         "use_regex": False}]}
    if spec["bos"]:
        bos_id = base + spec["specials"].index(spec["bos"])
        post = {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
             "use_regex": True},
            {"type": "TemplateProcessing",
             "single": [{"SpecialToken": {"id": spec["bos"], "type_id": 0}},
                        {"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"SpecialToken": {"id": spec["bos"], "type_id": 0}},
                      {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": spec["bos"], "type_id": 1}},
                      {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {spec["bos"]: {"id": spec["bos"], "ids": [bos_id],
                                              "tokens": [spec["bos"]]}}}]}
    else:
        post = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                "use_regex": False}
    model = {"type": "BPE", "dropout": None, "unk_token": None,
             "continuing_subword_prefix": None if spec["bos"] else "",
             "end_of_word_suffix": None if spec["bos"] else "",
             "fuse_unk": False, "byte_fallback": False, "ignore_merges": spec["ignore_merges"],
             "vocab": v,
             "merges": ([[a, b] for a, b in merges] if spec["merges_as_pairs"]
                        else [a + " " + b for a, b in merges])}
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": {"type": "NFC"} if spec["nfc"] else None,
            "pre_tokenizer": pre, "post_processor": post,
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                        "use_regex": True},
            "model": model}


def tokenizer_config(spec, base):
    dec = {}
    for k, s in enumerate(spec["specials"]):
        dec[str(base + k)] = {"content": s, "lstrip": False, "normalized": False,
                              "rstrip": False, "single_word": False, "special": True}
    if spec["bos"]:
        return {"added_tokens_decoder": dec, "bos_token": spec["bos"], "eos_token": spec["eos"],
                "clean_up_tokenization_spaces": True, "model_max_length": 512,
                "model_input_names": ["input_ids", "attention_mask"],
                "tokenizer_class": "PreTrainedTokenizerFast"}
    return {"add_prefix_space": False, "added_tokens_decoder": dec, "bos_token": None,
            "eos_token": spec["eos"], "pad_token": spec["eos"], "unk_token": None,
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "clean_up_tokenization_spaces": False, "errors": "replace",
            "model_max_length": 512, "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    args = ap.parse_args()
    texts = read_corpus_texts(args.root)
    for name, spec in SPECS.items():
        vocab, merges = train_bpe(texts, spec)
        if len(vocab) + len(spec["specials"]) != spec["vocab_size"]:
            sys.exit(f"{name}: only {len(vocab)} tokens could be learned")
        out = os.path.join(args.root, "models", name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer_json(spec, vocab, merges), f, ensure_ascii=False, indent=1)
            f.write("\n")
        with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer_config(spec, len(vocab)), f, indent=2)
            f.write("\n")
        tok = Tokenizer(os.path.join(out, "tokenizer.json"))
        n_bytes = sum(len(t.encode("utf-8")) for t in texts)
        n_tok = sum(len(tok.encode(t, add_bos=False)) for t in texts)
        for t in texts[:50]:
            assert tok.decode(tok.encode(t)) == t, "round trip"
        print(f"{name}: vocab {spec['vocab_size']}, {len(merges)} merges, corpus {n_bytes} bytes "
              f"-> {n_tok} tokens ({n_bytes / n_tok:.2f} bytes/token)")


if __name__ == "__main__":
    main()
