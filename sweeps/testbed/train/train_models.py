#!/usr/bin/python3
"""Trains the testbed's two small models and saves them as Hugging Face folders.

Development tool only (the build and the tests never run Python; Debian's python3-torch).
The two architectures are written here from their published descriptions:
  Llama (LlamaForCausalLM): RMSNorm, rotary position embedding (rotate-half layout, as Hugging
    Face stores q/k), grouped-query attention, SwiGLU MLP, untied lm_head, no biases.
  Qwen2 (Qwen2ForCausalLM): the same blocks plus biases on the q/k/v projections and an output
    layer tied to the token embedding.
Training: next-token cross-entropy on the four testbed corpora (every document is one sequence of
tokens; tb-llama starts each with <|begin_of_text|> and ends it with <|end_of_text|>, tb-qwen ends
each with <|endoftext|>), packed into one stream per model, random windows of --seq tokens,
AdamW, linear warm-up then cosine decay, one thread, fixed seed. A checkpoint is kept under
--ckpt (default /tmp/testbed-ckpt) every 100 steps; --resume continues from it, and creating the
file STOP in the checkpoint folder ends training early (the model is then exported as is).

After training the weights are rounded to bfloat16 and written (model.safetensors, written by
hand: the safetensors module is not in Debian 12), and everything below is computed from the
SAVED weights upcast to float32, i.e. exactly what calsweep's loader sees:
  ref/<model>.logits.json + .logits.bin   logits of fixed token sequences (float32 LE, [T][V])
  ref/<model>.tokens.jsonl                reference tokenizations (text -> ids)
  ref/<model>.heldout.json, .mc.jsonl     the held-out text and the first 40 items of every MC
                                          task, tokenized (for checks that bypass the tokenizer),
                                          with each choice's log-likelihood
  ref/<model>.metrics.json                MC accuracy (acc, acc_norm) per task, on all items
                                          and on the first 40, arith_gen exact match, held-out
                                          perplexity, the training curve
Outlier channels: before the export, add_outlier_channels() moves magnitude into a few fixed
channels of every block, as in the activations of real LLMs (LLM.int8()'s outlier features, the
"massive activations" of Llama-class models): 4 hidden channels of both RMSNorm gains times
OUTLIER_SCALE with the matching input columns of q/k/v and gate/up divided by it, 1/32 of the
MLP's channels (up rows times it, down columns over it) and 2 v channels (v rows and bias times it,
the o columns that read them over it). OUTLIER_SCALE is a power of two, so every product in the
forward pass is unchanged bit for bit and so are all the float figures; only the distribution of
weights and activations that quantizers see changes. Networks this small, trained this briefly,
do not grow such channels themselves, and without them 4-bit RTN is nearly lossless here.
Usage: /usr/bin/python3 sweeps/testbed/train/train_models.py --model tb-qwen|tb-llama
       [--steps N] [--resume] [--export-only] [--from-saved [--add-outliers]]
  --from-saved re-exports the weights already in models/<model>/ (no checkpoint, no training);
  with --add-outliers it applies the outlier channels to them (how the 2026-12-03 models, exported
  before the outlier channels existed, were converted on 2026-12-04).
"""
import argparse
import json
import math
import os
import re
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_tokenizer import Tokenizer  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

CONFIGS = {
    "tb-llama": dict(arch="llama", hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                     num_key_value_heads=2, intermediate_size=384, vocab_size=1536,
                     rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=512,
                     tie_word_embeddings=False, bos="<|begin_of_text|>", eos="<|end_of_text|>",
                     steps=1000, batch=8, seq=256, lr=2e-3, weight_decay=0.0, seed=1234),
    "tb-qwen": dict(arch="qwen2", hidden_size=128, num_hidden_layers=3, num_attention_heads=4,
                    num_key_value_heads=2, intermediate_size=256, vocab_size=1280,
                    rms_norm_eps=1e-6, rope_theta=10000.0, max_position_embeddings=512,
                    tie_word_embeddings=True, bos=None, eos="<|endoftext|>",
                    steps=1000, batch=8, seq=256, lr=2e-3, weight_decay=0.0, seed=4321),
}
MC_TASKS = ["prose_cause", "prose_work", "arith_mc", "code_mc", "facts_mc"]
SUBSET = 40  # items per task that calsweep's C test scores
OUTLIER_SCALE = 32.0  # a power of two: the reparametrization below is exact
PPL_WINDOW = 256


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


def rope_cos_sin(n, head_dim, theta):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    f = torch.outer(torch.arange(n, dtype=torch.float32), inv)
    emb = torch.cat([f, f], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Attention(nn.Module):
    def __init__(self, c, bias):
        super().__init__()
        d, self.nh, self.nkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = d // self.nh
        self.q_proj = nn.Linear(d, self.nh * self.hd, bias=bias)
        self.k_proj = nn.Linear(d, self.nkv * self.hd, bias=bias)
        self.v_proj = nn.Linear(d, self.nkv * self.hd, bias=bias)
        self.o_proj = nn.Linear(self.nh * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, self.nh * self.hd)
        return self.o_proj(y)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, f = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c, bias=c["arch"] == "qwen2")
        self.mlp = MLP(c)
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Inner(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Block(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class CausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Inner(c)
        self.lm_head = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        if c["tie_word_embeddings"]:
            self.lm_head.weight = self.model.embed_tokens.weight
        hd = c["hidden_size"] // c["num_attention_heads"]
        cos, sin = rope_cos_sin(c["max_position_embeddings"], hd, c["rope_theta"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for n, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)
            elif n.endswith("bias"):
                nn.init.zeros_(p)
        for blk in self.model.layers:  # scaled residual projections (GPT-2)
            nn.init.normal_(blk.self_attn.o_proj.weight, std=0.02 / math.sqrt(2 * len(self.model.layers)))
            nn.init.normal_(blk.mlp.down_proj.weight, std=0.02 / math.sqrt(2 * len(self.model.layers)))

    def forward(self, ids):
        t = ids.shape[1]
        x = self.model.embed_tokens(ids)
        cos, sin = self.cos[:t], self.sin[:t]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        for blk in self.model.layers:
            x = blk(x, cos, sin, mask)
        return self.lm_head(self.model.norm(x))


# ------------------------------------------------------------------ data


def load_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def token_stream(tok, c):
    """All corpus documents, interleaved across domains in a fixed order, as one id stream."""
    docs = []
    for dom in ("prose", "arith", "code", "facts"):
        docs.append([d["text"] for d in load_jsonl(os.path.join(ROOT, "data", "corpus", dom + ".jsonl"))])
    eos = tok.special[c["eos"]]
    ids = []
    n = max(len(d) for d in docs)
    for i in range(n):
        for d in docs:
            if i < len(d):
                ids.extend(tok.encode(d[i], add_bos=True))
                ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


# ------------------------------------------------------------------ export (bf16 safetensors)


def hf_state(model):
    sd = {}
    for n, p in model.state_dict().items():
        if model.c["tie_word_embeddings"] and n == "lm_head.weight":
            continue
        sd[n] = p.detach()
    return sd


def outlier_channels(c):
    """The fixed channels of add_outlier_channels(), drawn once from the model's seed."""
    g = torch.Generator().manual_seed(c["seed"])
    d, f = c["hidden_size"], c["intermediate_size"]
    nkv, hd = c["num_key_value_heads"], d // c["num_attention_heads"]
    return {"hidden": sorted(torch.randperm(d, generator=g)[:4].tolist()),
            "intermediate": sorted(torch.randperm(f, generator=g)[:f // 32].tolist()),
            "v": sorted(torch.randperm(nkv * hd, generator=g)[:2].tolist())}


@torch.no_grad()
def add_outlier_channels(sd, c, scale=OUTLIER_SCALE):
    """Exact function-preserving rescaling of the HF state dict sd (in place); see the docstring."""
    ch = outlier_channels(c)
    hid, inter, vch = (torch.tensor(ch[k]) for k in ("hidden", "intermediate", "v"))
    nh, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    hd, rep = c["hidden_size"] // nh, nh // nkv
    # q head h reads kv head h // rep (repeat_interleave), so v channel (kv, i) feeds o columns
    # (h, i) for the rep q heads of that kv head
    ocols = torch.tensor([h * hd + int(v) % hd for v in vch
                          for h in range(int(v) // hd * rep, (int(v) // hd + 1) * rep)])
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        for norm, lins in (("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj",
                                                "self_attn.v_proj")),
                           ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj"))):
            sd[p + norm + ".weight"][hid] *= scale
            for lin in lins:
                sd[p + lin + ".weight"][:, hid] /= scale
        sd[p + "mlp.up_proj.weight"][inter, :] *= scale
        sd[p + "mlp.down_proj.weight"][:, inter] /= scale
        sd[p + "self_attn.v_proj.weight"][vch, :] *= scale
        if p + "self_attn.v_proj.bias" in sd:
            sd[p + "self_attn.v_proj.bias"][vch] *= scale
        sd[p + "self_attn.o_proj.weight"][:, ocols] /= scale
    return {"scale": scale, **ch}


def save_safetensors(path, tensors):
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].to(torch.bfloat16).contiguous()
        raw = t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    import numpy as np
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        assert meta["dtype"] == "BF16"
        raw = np.frombuffer(data[a:b], dtype=np.int16).copy()
        out[name] = torch.from_numpy(raw).view(torch.bfloat16).float().reshape(meta["shape"])
    return out


def hf_config(c):
    arch = "LlamaForCausalLM" if c["arch"] == "llama" else "Qwen2ForCausalLM"
    cfg = {
        "architectures": [arch],
        "model_type": "llama" if c["arch"] == "llama" else "qwen2",
        "hidden_size": c["hidden_size"],
        "intermediate_size": c["intermediate_size"],
        "num_hidden_layers": c["num_hidden_layers"],
        "num_attention_heads": c["num_attention_heads"],
        "num_key_value_heads": c["num_key_value_heads"],
        "head_dim": c["hidden_size"] // c["num_attention_heads"],
        "hidden_act": "silu",
        "max_position_embeddings": c["max_position_embeddings"],
        "rms_norm_eps": c["rms_norm_eps"],
        "rope_theta": c["rope_theta"],
        "rope_scaling": None,
        "tie_word_embeddings": c["tie_word_embeddings"],
        "vocab_size": c["vocab_size"],
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "initializer_range": 0.02,
        "transformers_version": "4.44.0",
    }
    if c["arch"] == "llama":
        cfg.update(attention_bias=False, mlp_bias=False, attention_dropout=0.0,
                   pretraining_tp=1, bos_token_id=c["vocab_size"] - 2, eos_token_id=c["vocab_size"] - 1)
    else:
        cfg.update(attention_dropout=0.0, use_sliding_window=False, sliding_window=None,
                   max_window_layers=c["num_hidden_layers"], bos_token_id=c["vocab_size"] - 3,
                   eos_token_id=c["vocab_size"] - 3)
    return cfg


# ------------------------------------------------------------------ evaluation


@torch.no_grad()
def mc_eval(model, tok, task):
    items = load_jsonl(os.path.join(ROOT, "data", "tasks", task + ".eval.jsonl"))
    add_bos = model.c["bos"] is not None
    res = []
    for it in items:
        ctx = tok.encode(it["context"], add_bos=add_bos)
        lls = []
        for ch in it["choices"]:
            whole = tok.encode(it["context"] + " " + ch, add_bos=add_bos)
            cont = whole[len(ctx):]
            inp = torch.tensor([ctx + cont])
            logp = model(inp[:, :-1]).float().log_softmax(-1)[0]
            tgt = torch.tensor(cont)
            pos = torch.arange(len(ctx) - 1, len(ctx) - 1 + len(cont))
            lls.append(float(logp[pos, tgt].sum()))
        acc = max(range(4), key=lambda j: lls[j]) == it["gold"]
        norm = [lls[j] / len(it["choices"][j]) for j in range(4)]
        acc_n = max(range(4), key=lambda j: norm[j]) == it["gold"]
        res.append((acc, acc_n))

    def frac(rows, k):
        return sum(r[k] for r in rows) / len(rows)

    return {"n": len(res), "acc": frac(res, 0), "acc_norm": frac(res, 1),
            "subset_n": SUBSET, "subset_acc": frac(res[:SUBSET], 0),
            "subset_acc_norm": frac(res[:SUBSET], 1)}


@torch.no_grad()
def gen_eval(model, tok, max_new=48):
    items = load_jsonl(os.path.join(ROOT, "data", "tasks", "arith_gen.eval.jsonl"))
    add_bos = model.c["bos"] is not None
    eos = tok.special[model.c["eos"]]
    ok = 0
    for it in items:
        ids = tok.encode(it["prompt"], add_bos=add_bos)
        n0 = len(ids)
        for _ in range(max_new):
            nxt = int(model(torch.tensor([ids]))[0, -1].argmax())
            if nxt == eos:
                break
            ids.append(nxt)
            text = tok.decode(ids[n0:])
            if "Question:" in text or "\n\n" in text:
                break
        text = tok.decode(ids[n0:]).split("Question:")[0]
        m = re.search(r"#### (-?[0-9.,]+)", text)
        got = m.group(1).replace(",", "").rstrip(".") if m else None
        ok += got == it["answer"]
    return {"n": len(items), "exact_match": ok / len(items)}


@torch.no_grad()
def heldout_ppl(model, tok):
    with open(os.path.join(ROOT, "data", "heldout.txt"), encoding="utf-8") as f:
        text = f.read()
    ids = tok.encode(text, add_bos=model.c["bos"] is not None)
    n = len(ids) // PPL_WINDOW
    means = []
    for w in range(n):
        x = torch.tensor([ids[w * PPL_WINDOW:(w + 1) * PPL_WINDOW]])
        logits = model(x[:, :-1]).float()
        means.append(float(F.cross_entropy(logits[0], x[0, 1:])))
    return {"tokens": len(ids), "window": PPL_WINDOW, "windows": n,
            "ppl": math.exp(sum(means) / n), "window_mean_nll": means}


REF_TEXTS = [
    "Tom is a baker. Every morning he goes to the bakery, where he bakes fresh bread.",
    "Question: Mia has 7 pens. She buys 5 more pens. How many pens does Mia have now?\nAnswer:",
    "x = 4\ny = 9\nprint(x + y)\n# output: 13",
    "Caf\u00e9 na\u00efve \u2014 123456 apples,  they'll   go!\n\n\tend",
]


@torch.no_grad()
def write_refs(model, tok, name):
    refdir = os.path.join(ROOT, "ref")
    os.makedirs(refdir, exist_ok=True)
    add_bos = model.c["bos"] is not None
    with open(os.path.join(refdir, name + ".tokens.jsonl"), "w", encoding="utf-8") as f:
        for t in REF_TEXTS:
            f.write(json.dumps({"text": t, "add_bos": add_bos, "ids": tok.encode(t, add_bos=add_bos)},
                               ensure_ascii=False) + "\n")
    seqs = [tok.encode(REF_TEXTS[0], add_bos=add_bos)[:24], tok.encode(REF_TEXTS[2], add_bos=add_bos)[:16]]
    meta = {"model": name, "vocab_size": model.c["vocab_size"], "dtype": "float32-le",
            "layout": "sequence after sequence, [T][vocab] each", "sequences": []}
    with open(os.path.join(refdir, name + ".logits.bin"), "wb") as f:
        for s in seqs:
            logits = model(torch.tensor([s]))[0].float().contiguous()
            f.write(logits.numpy().astype("<f4").tobytes())
            meta["sequences"].append({"ids": s, "tokens": len(s)})
    with open(os.path.join(refdir, name + ".logits.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    # pre-tokenized inputs, so that calsweep's forward can be checked without its tokenizer
    with open(os.path.join(ROOT, "data", "heldout.txt"), encoding="utf-8") as f:
        held = tok.encode(f.read(), add_bos=add_bos)
    with open(os.path.join(refdir, name + ".heldout.json"), "w") as f:
        json.dump({"add_bos": add_bos, "window": PPL_WINDOW, "ids": held}, f, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(refdir, name + ".mc.jsonl"), "w") as f:
        for task in MC_TASKS:
            items = load_jsonl(os.path.join(ROOT, "data", "tasks", task + ".eval.jsonl"))[:SUBSET]
            for it in items:
                ctx = tok.encode(it["context"], add_bos=add_bos)
                conts = [tok.encode(it["context"] + " " + ch, add_bos=add_bos)[len(ctx):]
                         for ch in it["choices"]]
                lls = []
                for cont in conts:
                    logp = model(torch.tensor([ctx + cont])[:, :-1]).float().log_softmax(-1)[0]
                    pos = torch.arange(len(ctx) - 1, len(ctx) - 1 + len(cont))
                    lls.append(round(float(logp[pos, torch.tensor(cont)].sum()), 6))
                f.write(json.dumps({"id": it["id"], "task": task, "ctx": ctx, "conts": conts,
                                    "choice_chars": [len(ch) for ch in it["choices"]],
                                    "gold": it["gold"], "ll": lls}, separators=(",", ":")) + "\n")


# ------------------------------------------------------------------ training


def lr_at(step, c):
    warm = 100
    if step < warm:
        return c["lr"] * (step + 1) / warm
    p = (step - warm) / max(1, c["steps"] - warm)
    return c["lr"] * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def train(model, stream, c, ckdir, resume, log, no_train=False):
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    other = [p for n, p in model.named_parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": c["weight_decay"]},
                             {"params": other, "weight_decay": 0.0}], lr=c["lr"], betas=(0.9, 0.95))
    g = torch.Generator().manual_seed(c["seed"])
    step, curve, t_spent = 0, [], 0.0
    ck = os.path.join(ckdir, "ckpt.pt")
    if resume and os.path.exists(ck):
        st = torch.load(ck)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        g.set_state(st["gen"])
        step, curve, t_spent = st["step"], st["curve"], st["time"]
        log(f"resumed at step {step}")
    t0 = time.time() - t_spent
    acc_loss, acc_n = 0.0, 0
    while step < c["steps"] and not no_train:
        if os.path.exists(os.path.join(ckdir, "STOP")):
            log(f"STOP file found: ending at step {step}")
            break
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, c)
        starts = torch.randint(0, len(stream) - c["seq"] - 1, (c["batch"],), generator=g)
        x = torch.stack([stream[s:s + c["seq"] + 1] for s in starts.tolist()])
        logits = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        acc_loss += float(loss)
        acc_n += 1
        if step % 50 == 0 or step == c["steps"]:
            curve.append({"step": step, "loss": round(acc_loss / acc_n, 4),
                          "lr": round(lr_at(step - 1, c), 6), "seconds": round(time.time() - t0, 1)})
            log(f"step {step} loss {acc_loss / acc_n:.4f} lr {lr_at(step - 1, c):.2e} "
                f"t {time.time() - t0:.0f}s")
            acc_loss, acc_n = 0.0, 0
        if step % 100 == 0:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": g.get_state(),
                        "step": step, "curve": curve, "time": time.time() - t0}, ck + ".tmp")
            os.replace(ck + ".tmp", ck)
    if no_train:
        return step, curve, t_spent
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": g.get_state(),
                "step": step, "curve": curve, "time": time.time() - t0}, ck + ".tmp")
    os.replace(ck + ".tmp", ck)
    return step, curve, time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, choices=sorted(CONFIGS))
    ap.add_argument("--steps", type=int)
    ap.add_argument("--ckpt", default="/tmp/testbed-ckpt")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--from-saved", action="store_true",
                    help="re-export the weights in models/<model>/ (no checkpoint, no training)")
    ap.add_argument("--add-outliers", action="store_true",
                    help="with --from-saved: apply the outlier channels to those weights")
    args = ap.parse_args()
    if args.add_outliers and not args.from_saved:
        sys.exit("--add-outliers: only with --from-saved (training exports always add them)")
    torch.set_num_threads(1)
    c = dict(CONFIGS[args.model])
    if args.steps:
        c["steps"] = args.steps
    torch.manual_seed(c["seed"])
    ckdir = os.path.join(args.ckpt, args.model)
    os.makedirs(ckdir, exist_ok=True)
    if args.export_only and not args.from_saved and not os.path.exists(os.path.join(ckdir, "ckpt.pt")):
        sys.exit(f"--export-only: no checkpoint in {ckdir}")
    outdir = os.path.join(ROOT, "models", args.model)
    tok = Tokenizer(os.path.join(outdir, "tokenizer.json"))
    assert len(tok.vocab) + len(tok.special) == c["vocab_size"]

    def log(msg):
        print(f"[{args.model}] {msg}", flush=True)

    model = CausalLM(c)
    nparams = sum(p.numel() for p in model.parameters())
    log(f"{nparams} parameters, config {json.dumps({k: v for k, v in c.items()})}")
    stream = token_stream(tok, c)
    log(f"training stream {len(stream)} tokens")
    mpath = os.path.join(ROOT, "ref", args.model + ".metrics.json")
    if args.from_saved:
        state = load_safetensors(os.path.join(outdir, "model.safetensors"))
        with open(mpath) as f:
            old = json.load(f)
        step, curve, secs = old["steps"], old["curve"], old["train_seconds"]
        outliers = add_outlier_channels(state, c) if args.add_outliers else old.get("outliers")
    else:
        step, curve, secs = train(model, stream, c, ckdir, args.resume or args.export_only, log,
                                  no_train=args.export_only)
        state = {n: t.clone() for n, t in hf_state(model).items()}
        outliers = add_outlier_channels(state, c)
    log(f"outlier channels {json.dumps(outliers)}")

    # export: bf16 weights, then reload them (upcast to f32) for every figure below
    save_safetensors(os.path.join(outdir, "model.safetensors"), state)
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(hf_config(c), f, indent=2)
        f.write("\n")
    gen_cfg = {"bos_token_id": hf_config(c)["bos_token_id"], "eos_token_id": hf_config(c)["eos_token_id"],
               "do_sample": False, "transformers_version": "4.44.0"}
    with open(os.path.join(outdir, "generation_config.json"), "w") as f:
        json.dump(gen_cfg, f, indent=2)
        f.write("\n")
    saved = load_safetensors(os.path.join(outdir, "model.safetensors"))
    ev = CausalLM(c)
    missing, unexpected = ev.load_state_dict(saved, strict=False)
    assert not unexpected and all(m == "lm_head.weight" for m in missing), (missing, unexpected)
    ev.eval()
    metrics = {"model": args.model, "parameters": nparams, "steps": step,
               "train_seconds": round(secs, 1), "stream_tokens": len(stream), "config": c,
               "curve": curve, "outliers": outliers, "tasks": {}}
    for t in MC_TASKS:
        metrics["tasks"][t] = mc_eval(ev, tok, t)
        log(f"{t}: {metrics['tasks'][t]}")
    metrics["tasks"]["arith_gen"] = gen_eval(ev, tok)
    log(f"arith_gen: {metrics['tasks']['arith_gen']}")
    metrics["heldout"] = heldout_ppl(ev, tok)
    log(f"heldout ppl {metrics['heldout']['ppl']:.4f} over {metrics['heldout']['windows']} windows")
    write_refs(ev, tok, args.model)
    with open(mpath, "w") as f:
        json.dump(metrics, f, indent=1)
        f.write("\n")
    log("done")


if __name__ == "__main__":
    main()
