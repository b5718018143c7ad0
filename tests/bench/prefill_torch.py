#!/usr/bin/python3
"""PyTorch comparison for tests/bench/prefill_bench.c: the same f32 weights (DIR/cs-bench-qwen05,
written by `prefill_bench DIR THREADS SEQ REPS keep`), the same threads, the same sequence length;
a plain Qwen2 forward pass in float32 under torch.inference_mode (Debian python3-torch).

Usage: /usr/bin/python3 tests/bench/prefill_torch.py DIR THREADS SEQ REPS
Prints "torch: key value unit" lines: prefill tokens/s (best of REPS after one warm-up) and peak RSS.
"""
import json
import math
import mmap
import resource
import struct
import sys
import time

import torch


def load(path):
    f = open(path, "rb")
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    (n,) = struct.unpack("<Q", mm[:8])
    hdr = json.loads(mm[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b0, b1 = v["data_offsets"]
        t = torch.frombuffer(mm, dtype=torch.float32, offset=base + b0, count=(b1 - b0) // 4)
        out[k] = t.view(v["shape"])
    return out, mm


def main():
    d, threads, seq, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    cfg = json.load(open(f"{d}/cs-bench-qwen05/config.json"))
    W, _mm = load(f"{d}/cs-bench-qwen05/model.safetensors")
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, eps, L = H // nh, cfg["rms_norm_eps"], cfg["num_hidden_layers"]
    inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    ang = torch.outer(torch.arange(seq, dtype=torch.float32), inv)
    emb = torch.cat([ang, ang], -1)
    cos, sin = emb.cos()[None], emb.sin()[None]
    mask = torch.triu(torch.full((seq, seq), float("-inf")), 1)

    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def rot(x):
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return torch.cat([-x2, x1], -1)

    F = torch.nn.functional

    def forward(ids):
        x = W["model.embed_tokens.weight"][ids]
        for l in range(L):
            p = f"model.layers.{l}."
            a = rms(x, W[p + "input_layernorm.weight"])
            q = F.linear(a, W[p + "self_attn.q_proj.weight"], W[p + "self_attn.q_proj.bias"])
            k = F.linear(a, W[p + "self_attn.k_proj.weight"], W[p + "self_attn.k_proj.bias"])
            v = F.linear(a, W[p + "self_attn.v_proj.weight"], W[p + "self_attn.v_proj.bias"])
            q = q.view(seq, nh, hd).transpose(0, 1)
            k = k.view(seq, nkv, hd).transpose(0, 1)
            v = v.view(seq, nkv, hd).transpose(0, 1)
            q = q * cos + rot(q) * sin
            k = k * cos + rot(k) * sin
            k = k.repeat_interleave(nh // nkv, 0)
            v = v.repeat_interleave(nh // nkv, 0)
            s = (q @ k.transpose(1, 2)) / math.sqrt(hd) + mask
            o = (s.softmax(-1) @ v).transpose(0, 1).reshape(seq, nh * hd)
            x = x + F.linear(o, W[p + "self_attn.o_proj.weight"])
            m = rms(x, W[p + "post_attention_layernorm.weight"])
            x = x + F.linear(F.silu(F.linear(m, W[p + "mlp.gate_proj.weight"])) *
                             F.linear(m, W[p + "mlp.up_proj.weight"]), W[p + "mlp.down_proj.weight"])
        x = rms(x, W["model.norm.weight"])
        return F.linear(x, W["model.embed_tokens.weight"])

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg["vocab_size"], (seq,), generator=g)
    best = float("inf")
    with torch.inference_mode():
        for r in range(reps + 1):
            t0 = time.perf_counter()
            forward(ids)
            s = time.perf_counter() - t0
            print(f"torch: prefill_run{r} {s:.3f} s{' (warm-up)' if r == 0 else ''}", flush=True)
            if r > 0:
                best = min(best, s)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"torch: version {torch.__version__} threads {torch.get_num_threads()}")
    print(f"torch: prefill_best {best:.3f} s")
    print(f"torch: prefill_tokens_per_s {seq / best:.1f} tok/s")
    print(f"torch: peak_rss {rss} ({rss / 1e9:.2f} GB)")


if __name__ == "__main__":
    main()
