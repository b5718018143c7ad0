#!/usr/bin/python3
"""Writes two small random-weight models as Hugging Face folders under tests/data/models/ and
reference outputs from an independent PyTorch implementation (float64) written here:

  ref-llama/  LlamaForCausalLM, GQA (4 heads, 2 kv heads), llama3 rope_scaling, untied lm_head,
              float32 weights in two shards with model.safetensors.index.json
  ref-qwen/   Qwen2ForCausalLM, q/k/v biases, tied embeddings, 1 kv head, bfloat16 weights,
              one model.safetensors
  <name>.ref.json  inputs: "single" ids, "batch" (right-padded ids, lens), "prompt" and the greedy
                   "generated" ids; logits in <name>.ref.bin (float32 LE): single [T][V], then
                   batch [B][T][V] (padding rows included but never compared)

Run: /usr/bin/python3 tests/ref/make_ref_models.py  (Debian python3-torch; no transformers).
"""
import json
import math
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "models")

MODELS = {
    "ref-llama": dict(arch="LlamaForCausalLM", model_type="llama", hidden=64, layers=2, heads=4,
                      kv=2, inter=160, vocab=256, eps=1e-5, theta=500000.0, bias=False, tie=False,
                      dtype="F32", shards=2, seed=11,
                      rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                    "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 16}),
    "ref-qwen": dict(arch="Qwen2ForCausalLM", model_type="qwen2", hidden=48, layers=2, heads=3,
                     kv=1, inter=96, vocab=200, eps=1e-6, theta=10000.0, bias=True, tie=True,
                     dtype="BF16", shards=1, seed=12, rope_scaling=None),
}


def make_weights(c, g):
    h, hd = c["hidden"], c["hidden"] // c["heads"]
    qd, kvd = c["heads"] * hd, c["kv"] * hd
    w = {}

    def mat(o, i):
        return torch.randn(o, i, generator=g) / math.sqrt(i)

    w["model.embed_tokens.weight"] = torch.randn(c["vocab"], h, generator=g)
    for l in range(c["layers"]):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(h, generator=g)
        w[p + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(h, generator=g)
        for n, (o, i) in {"q_proj": (qd, h), "k_proj": (kvd, h), "v_proj": (kvd, h),
                          "o_proj": (h, qd)}.items():
            w[p + "self_attn." + n + ".weight"] = mat(o, i)
            if c["bias"] and n != "o_proj":
                w[p + "self_attn." + n + ".bias"] = 0.1 * torch.randn(o, generator=g)
        for n, (o, i) in {"gate_proj": (c["inter"], h), "up_proj": (c["inter"], h),
                          "down_proj": (h, c["inter"])}.items():
            w[p + "mlp." + n + ".weight"] = mat(o, i)
    w["model.norm.weight"] = 1 + 0.1 * torch.randn(h, generator=g)
    if not c["tie"]:
        w["lm_head.weight"] = mat(c["vocab"], h)
    if c["dtype"] == "BF16":
        w = {k: v.to(torch.bfloat16) for k, v in w.items()}
    return w


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
            dt = "BF16"
        else:
            raw = t.to(torch.float32).numpy().tobytes()
            dt = "F32"
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = {"format": "pt"}
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


def inv_freq(c):
    hd = c["hidden"] // c["heads"]
    inv = 1.0 / (c["theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rs = c["rope_scaling"]
    if rs:
        old = rs["original_max_position_embeddings"]
        lo, hi, fac = rs["low_freq_factor"], rs["high_freq_factor"], rs["factor"]
        out = []
        for f in inv.tolist():
            wl = 2 * math.pi / f
            if wl < old / hi:
                out.append(f)
            elif wl > old / lo:
                out.append(f / fac)
            else:
                s = (old / wl - lo) / (hi - lo)
                out.append((1 - s) * f / fac + s * f)
        inv = torch.tensor(out, dtype=torch.float64)
    return inv


def forward(c, w, ids):
    """Independent float64 reference: ids [T] -> logits [T][V]."""
    W = {k: v.to(torch.float64) for k, v in w.items()}
    h, nh, nkv = c["hidden"], c["heads"], c["kv"]
    hd = h // nh
    T = len(ids)

    def rms(x, g):
        return g * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + c["eps"]))

    def rot(x, cos, sin):  # x [T][n][hd], rotate-half
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)

    ang = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq(c))
    cos, sin = ang.cos()[:, None, :], ang.sin()[:, None, :]
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    for l in range(c["layers"]):
        p = f"model.layers.{l}."

        def lin(n, v):
            y = v @ W[p + n + ".weight"].T
            b = W.get(p + n + ".bias")
            return y + b if b is not None else y

        a = rms(x, W[p + "input_layernorm.weight"])
        q = rot(lin("self_attn.q_proj", a).view(T, nh, hd), cos, sin)
        k = rot(lin("self_attn.k_proj", a).view(T, nkv, hd), cos, sin)
        v = lin("self_attn.v_proj", a).view(T, nkv, hd)
        rep = nh // nkv
        k = k.repeat_interleave(rep, 1)
        v = v.repeat_interleave(rep, 1)
        s = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd)
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        s = s.masked_fill(mask, float("-inf")).softmax(-1)
        o = torch.einsum("hts,shd->thd", s, v).reshape(T, nh * hd)
        x = x + lin("self_attn.o_proj", o)
        m = rms(x, W[p + "post_attention_layernorm.weight"])
        x = x + lin("mlp.down_proj",
                    torch.nn.functional.silu(lin("mlp.gate_proj", m)) * lin("mlp.up_proj", m))
    x = rms(x, W["model.norm.weight"])
    head = W["model.embed_tokens.weight"] if c["tie"] else W["lm_head.weight"]
    return x @ head.T


def main():
    for name, c in MODELS.items():
        g = torch.Generator().manual_seed(c["seed"])
        w = make_weights(c, g)
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
        cfg = {"architectures": [c["arch"]], "model_type": c["model_type"],
               "hidden_size": c["hidden"], "intermediate_size": c["inter"],
               "num_hidden_layers": c["layers"], "num_attention_heads": c["heads"],
               "num_key_value_heads": c["kv"], "hidden_act": "silu",
               "max_position_embeddings": 128, "rms_norm_eps": c["eps"],
               "rope_theta": c["theta"], "rope_scaling": c["rope_scaling"],
               "tie_word_embeddings": c["tie"], "vocab_size": c["vocab"],
               "torch_dtype": "float32" if c["dtype"] == "F32" else "bfloat16",
               "bos_token_id": 1, "eos_token_id": [2, 3] if c["tie"] else 2}
        if c["model_type"] == "llama":
            cfg["attention_bias"] = False
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        if c["shards"] == 1:
            save_safetensors(os.path.join(d, "model.safetensors"), w)
        else:
            names = sorted(w)
            wm = {}
            for s in range(c["shards"]):
                fn = f"model-{s + 1:05d}-of-{c['shards']:05d}.safetensors"
                part = {n: w[n] for n in names[s::c["shards"]]}
                save_safetensors(os.path.join(d, fn), part)
                wm.update({n: fn for n in part})
            with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {}, "weight_map": wm}, f, indent=2)

        g2 = torch.Generator().manual_seed(c["seed"] + 100)
        V = c["vocab"]
        single = torch.randint(4, V, (13,), generator=g2).tolist()
        lens = [11, 6]
        batch = [torch.randint(4, V, (11,), generator=g2).tolist()]
        batch.append(torch.randint(4, V, (6,), generator=g2).tolist() + [0] * 5)
        prompt = torch.randint(4, V, (5,), generator=g2).tolist()
        gen, margin = list(prompt), float("inf")
        stops = cfg["eos_token_id"] if isinstance(cfg["eos_token_id"], list) else [cfg["eos_token_id"]]
        for _ in range(20):
            lg = forward(c, w, gen)[-1]
            top = torch.topk(lg, 2).values
            margin = min(margin, float(top[0] - top[1]))
            t = int(lg.argmax())
            gen.append(t)
            if t in stops:
                break
        assert margin > 1e-3, (name, margin)
        logits = [forward(c, w, single)]
        for b in range(2):
            lg = torch.zeros(11, V, dtype=torch.float64)
            lg[: lens[b]] = forward(c, w, batch[b][: lens[b]])
            logits.append(lg)
        with open(os.path.join(OUT, name + ".ref.bin"), "wb") as f:
            for lg in logits:
                f.write(lg.to(torch.float32).numpy().astype("<f4").tobytes())
        ref = {"model": name, "vocab": V, "single": single, "batch": batch, "lens": lens,
               "prompt": prompt, "generated": gen[len(prompt):], "max_new": 20,
               "greedy_min_margin": margin,
               "layout": "float32 LE: single [T][V], then batch [B][T][V]"}
        with open(os.path.join(OUT, name + ".ref.json"), "w") as f:
            json.dump(ref, f, indent=1)
        print(name, "params", sum(v.numel() for v in w.values()), "margin", margin,
              "generated", gen[len(prompt):])


if __name__ == "__main__":
    main()
