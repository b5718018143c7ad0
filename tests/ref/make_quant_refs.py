#!/usr/bin/python3
"""Reference outputs for calsweep's PTQ algorithms (tests/unit/quant_ref_test.c).

Written for calsweep from the published algorithms as docs/specs/ptq-algorithms.md describes them
(IST-DASLab gptq fasterquant + quant.py, IST-DASLab sparsegpt fasterprune, locuslab wanda
prune_wanda, mit-han-lab smoothquant smooth_ln_fcs, AutoAWQ's scale formula and auto_clip), in
PyTorch fp32 as the references run. One deliberate choice, shared with calsweep (the spec's
suggestion for C): damping, Cholesky and inverse run in float64 and U is rounded to float32.

Run with Debian's torch:  /usr/bin/python3 tests/ref/make_quant_refs.py [OUTDIR]
Writes OUTDIR (default tests/data/quant) /<name>.bin (little-endian f32, or u8 for masks) and
index.json. Deterministic: fixed seeds, one thread.
"""
import json
import os
import sys

import torch

torch.set_num_threads(1)
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'quant')

ROWS, COLS, TOKENS = 32, 256, 384


def make_inputs():
    g = torch.Generator().manual_seed(20261125)
    z = torch.randn(TOKENS, COLS, generator=g, dtype=torch.float64)
    a = torch.randn(COLS, COLS, generator=g, dtype=torch.float64) / COLS ** 0.5
    a += 0.4 * torch.eye(COLS, dtype=torch.float64)
    x = z @ a
    x[:, 1::9] = 0.97 * x[:, 0:-1:9] + 0.03 * x[:, 1::9]   # near-collinear pairs
    x[:, 5::37] *= 25.0                                      # outlier channels
    x[:, 200] = 0.0                                          # a dead input feature
    x = x.float()
    w = (torch.randn(ROWS, COLS, generator=g, dtype=torch.float64) * 0.05).float()
    xd = x.double()
    h = (2.0 * xd.t() @ xd / TOKENS).float()                 # H = 2 X^T X / n
    return w, x, h


# ---- Q-GPTQ (quant.py) ---------------------------------------------------------------------
def find_params(x, bits, sym):
    maxq = float(2 ** bits - 1)
    tmp = torch.zeros(x.shape[0])
    xmin = torch.minimum(x.min(1)[0], tmp)
    xmax = torch.maximum(x.max(1)[0], tmp)
    if sym:
        xmax = torch.maximum(torch.abs(xmin), xmax)
        neg = xmin < 0
        xmin[neg] = -xmax[neg]
    both = (xmin == 0) & (xmax == 0)
    xmin[both] = -1
    xmax[both] = +1
    scale = (xmax - xmin) / maxq
    if sym:
        zero = torch.full_like(scale, (maxq + 1) / 2)
    else:
        zero = torch.round(-xmin / scale)
    return scale, zero, maxq


def quantize(x, scale, zero, maxq):
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def hinv_upper(h, percdamp):
    h64 = h.double()
    damp = percdamp * torch.mean(torch.diag(h64))
    h64 += damp * torch.eye(h64.shape[0], dtype=torch.float64)
    l = torch.linalg.cholesky(h64)
    hinv = torch.cholesky_inverse(l)
    return torch.linalg.cholesky(hinv, upper=True).float()


def gptq(w, h, bits, sym, groupsize=-1, actorder=False, static_groups=False, percdamp=.01,
         blocksize=128):
    W = w.clone()
    H = h.clone()
    C = W.shape[1]
    params = find_params(W, bits, sym) if groupsize == -1 else None
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    groups = []
    if static_groups:
        for i in range(0, C, groupsize):
            groups.append(find_params(W[:, i:i + groupsize], bits, sym))
    if actorder:
        perm = torch.argsort(torch.diag(H), descending=True, stable=True)
        W = W[:, perm]
        H = H[perm][:, perm]
        invperm = torch.argsort(perm)
    U = hinv_upper(H, percdamp)
    Q = torch.zeros_like(W)
    loss = torch.zeros(W.shape[0], dtype=torch.float64)
    for i1 in range(0, C, blocksize):
        i2 = min(i1 + blocksize, C)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        E1 = torch.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        for i in range(i2 - i1):
            c = i1 + i
            w_ = W1[:, i]
            d = U1[i, i]
            if groupsize != -1:
                if static_groups:
                    params = groups[(perm[c].item() if actorder else c) // groupsize]
                elif c % groupsize == 0:
                    params = find_params(W[:, c:c + groupsize], bits, sym)
            s, z, mq = params
            q = quantize(w_, s, z, mq)
            Q1[:, i] = q
            loss += ((w_ - q) ** 2 / d ** 2).double() / 2
            e = (w_ - q) / d
            W1[:, i:] -= e.unsqueeze(1).matmul(U1[i, i:].unsqueeze(0))
            E1[:, i] = e
        Q[:, i1:i2] = Q1
        W[:, i2:] -= E1.matmul(U[i1:i2, i2:])
    if actorder:
        Q = Q[:, invperm]
    return Q, float(loss.sum())


# ---- SparseGPT (fasterprune) -----------------------------------------------------------------
def sparsegpt(w, h, sparsity=0.5, prunen=0, prunem=0, percdamp=.01, blocksize=128):
    W = w.clone()
    H = h.clone()
    C = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    U = hinv_upper(H, percdamp)
    M = torch.zeros(W.shape, dtype=torch.bool)
    for i1 in range(0, C, blocksize):
        i2 = min(i1 + blocksize, C)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        E1 = torch.zeros_like(W1)
        U1 = U[i1:i2, i1:i2]
        if prunen == 0:
            tmp = W1 ** 2 / (torch.diag(U1).reshape((1, -1))) ** 2
            thresh = torch.sort(tmp.flatten())[0][int(tmp.numel() * sparsity)]
            mask1 = tmp <= thresh
        else:
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
        for i in range(i2 - i1):
            w_ = W1[:, i]
            d = U1[i, i]
            if prunen != 0 and i % prunem == 0:
                tmp = W1[:, i:i + prunem] ** 2 / (torch.diag(U1)[i:i + prunem].reshape((1, -1))) ** 2
                # N smallest per row; ties to the lowest index (stable sort)
                idx = torch.sort(tmp, dim=1, stable=True)[1][:, :prunen]
                mask1.scatter_(1, i + idx, True)
            q = w_.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            e = (w_ - q) / d
            W1[:, i:] -= e.unsqueeze(1).matmul(U1[i, i:].unsqueeze(0))
            E1[:, i] = e
        W[:, i1:i2] = Q1
        M[:, i1:i2] = mask1
        W[:, i2:] -= E1.matmul(U[i1:i2, i2:])
    return W, M


# ---- Wanda ---------------------------------------------------------------------------------
def wanda(w, sumsq, sparsity=0.5, prune_n=0, prune_m=0):
    metric = torch.abs(w) * torch.sqrt(sumsq.float().reshape((1, -1)))
    mask = torch.zeros_like(metric, dtype=torch.bool)
    if prune_n != 0:
        for ii in range(metric.shape[1]):
            if ii % prune_m == 0:
                tmp = metric[:, ii:ii + prune_m]
                idx = torch.sort(tmp, dim=1, stable=True)[1][:, :prune_n]
                mask.scatter_(1, ii + idx, True)
    else:
        idx = torch.sort(metric, dim=-1, stable=True)[1][:, :int(metric.shape[1] * sparsity)]
        mask.scatter_(1, idx, True)
    out = w.clone()
    out[mask] = 0
    return out, mask


# ---- SmoothQuant (smooth_ln_fcs) and AWQ's pure parts -----------------------------------------
def smooth_scales(act_max, ws, alpha):
    weight_scales = torch.cat([fc.abs().max(dim=0, keepdim=True)[0] for fc in ws], dim=0)
    weight_scales = weight_scales.max(dim=0)[0].clamp(min=1e-5)
    return (act_max.pow(alpha) / weight_scales.pow(1 - alpha)).clamp(min=1e-5)


def awq_w_mean(ws, group):
    weight = torch.cat(ws, dim=0)
    shape = weight.shape
    weight = weight.view(-1, group)
    w_scale = weight.abs() / (weight.abs().amax(dim=1, keepdim=True) + 1e-6)
    return w_scale.view(shape).mean(0)


def awq_scales(x_mean, w_mean, ratio, duo):
    if duo:
        s = (x_mean.pow(ratio) / (w_mean.pow(1 - ratio) + 1e-4)).clamp(min=1e-4)
    else:
        s = x_mean.pow(ratio).clamp(min=1e-4)
    s = s / (s.max() * s.min()).sqrt()
    s[torch.isinf(s)] = 1
    s[torch.isnan(s)] = 1
    return s


def awq_pseudo_quantize(w, bits, group):
    shape = w.shape
    w = w.reshape(-1, group)
    mx = w.amax(dim=1, keepdim=True)
    mn = w.amin(dim=1, keepdim=True)
    max_int = 2 ** bits - 1
    scales = (mx - mn).clamp(min=1e-5) / max_int
    zeros = (-torch.round(mn / scales)).clamp_(0, max_int)
    w = (torch.clamp(torch.round(w / scales) + zeros, 0, max_int) - zeros) * scales
    return w.reshape(shape)


def awq_clip(w, x, bits, group, n_grid=20, max_shrink=0.5, n_sample_token=512):
    co, ci = w.shape
    x = x.view(-1, ci).reshape(1, x.shape[0], -1, group)
    x = x[:, 0::max(1, x.shape[1] // n_sample_token)]
    w4 = w.reshape(co, 1, -1, group)
    org_max = w4.abs().amax(dim=-1, keepdim=True)
    best_max = org_max.clone()
    min_errs = torch.ones_like(org_max) * 1e9
    org_out = (x * w4).sum(dim=-1)
    for i_s in range(int(max_shrink * n_grid)):
        max_val = org_max * (1 - i_s / n_grid)
        cur_w = torch.clamp(w4, -max_val, max_val)
        q_w = awq_pseudo_quantize(cur_w, bits, group)
        cur_out = (x * q_w).sum(dim=-1)
        err = (cur_out - org_out).pow(2).mean(dim=1).view(min_errs.shape)
        better = err < min_errs
        min_errs[better] = err[better]
        best_max[better] = max_val[better]
    return best_max.reshape(co, -1)


def main():
    os.makedirs(OUT, exist_ok=True)
    w, x, h = make_inputs()
    arrays = {}
    cases = []

    def put(name, t):
        t = t.contiguous()
        dtype = 'u8' if t.dtype == torch.bool else 'f32'
        data = t.to(torch.uint8).numpy().tobytes() if dtype == 'u8' else \
            t.float().numpy().astype('<f4').tobytes()
        with open(os.path.join(OUT, name + '.bin'), 'wb') as f:
            f.write(data)
        arrays[name] = {'file': name + '.bin', 'dtype': dtype, 'shape': list(t.shape)}

    put('W', w)
    put('X', x)
    put('H', h)
    gptq_cases = [
        ('gptq_asym4_gm1', 4, False, -1, False, False),
        ('gptq_asym4_g64', 4, False, 64, False, False),
        ('gptq_sym4_g128', 4, True, 128, False, False),
        ('gptq_asym3_g48', 3, False, 48, False, False),
        ('gptq_sym4_gm1_act', 4, True, -1, True, False),
        ('gptq_asym4_g64_act', 4, False, 64, True, False),
        ('gptq_sym4_g64_act_static', 4, True, 64, True, True),
        ('gptq_asym2_g32_static', 2, False, 32, False, True),
    ]
    for name, bits, sym, gs, act, static in gptq_cases:
        q, loss = gptq(w, h, bits, sym, gs, act, static)
        put(name, q)
        cases.append({'name': name, 'algo': 'gptq', 'bits': bits, 'sym': sym, 'group_size': gs,
                      'act_order': act, 'static_groups': static, 'percdamp': 0.01,
                      'blocksize': 128, 'loss': loss, 'output': name})
    for name, sp, n, m in [('sparsegpt_50', 0.5, 0, 0), ('sparsegpt_2_4', 0.5, 2, 4),
                           ('sparsegpt_4_8', 0.5, 4, 8)]:
        q, mask = sparsegpt(w, h, sp, n, m)
        put(name, q)
        put(name + '_mask', mask)
        cases.append({'name': name, 'algo': 'sparsegpt', 'sparsity': sp, 'prune_n': n,
                      'prune_m': m, 'output': name, 'mask': name + '_mask'})
    sumsq = (x.double() ** 2).sum(0)
    for name, sp, n, m in [('wanda_50', 0.5, 0, 0), ('wanda_2_4', 0.5, 2, 4)]:
        q, mask = wanda(w, sumsq, sp, n, m)
        put(name + '_mask', mask)
        cases.append({'name': name, 'algo': 'wanda', 'sparsity': sp, 'prune_n': n, 'prune_m': m,
                      'mask': name + '_mask'})
    act_max = x.abs().max(dim=0)[0]
    w2 = w[:16] * 1.7
    for alpha in (0.5, 0.85):
        name = 'smooth_a%02d' % round(alpha * 100)
        put(name, smooth_scales(act_max, [w, w2], alpha))
        cases.append({'name': name, 'algo': 'smoothquant', 'alpha': alpha, 'output': name})
    x_mean = x.abs().mean(0)
    put('awq_x_mean', x_mean)
    put('awq_w_mean', awq_w_mean([w, w2], 128))
    for ratio in (0.0, 0.35, 0.95):
        for duo in (True, False):
            name = 'awq_s_r%02d_%s' % (round(ratio * 100), 'duo' if duo else 'x')
            put(name, awq_scales(x_mean, awq_w_mean([w, w2], 128), ratio, duo))
            cases.append({'name': name, 'algo': 'awq_scales', 'ratio': ratio, 'duo': duo,
                          'output': name})
    put('awq_clip_g128', awq_clip(w, x, 4, 128))
    cases.append({'name': 'awq_clip_g128', 'algo': 'awq_clip', 'bits': 4, 'group_size': 128,
                  'output': 'awq_clip_g128'})
    index = {'generator': 'tests/ref/make_quant_refs.py', 'torch': torch.__version__,
             'rows': ROWS, 'cols': COLS, 'tokens': TOKENS, 'arrays': arrays, 'cases': cases}
    with open(os.path.join(OUT, 'index.json'), 'w') as f:
        json.dump(index, f, indent=1, sort_keys=True)
        f.write('\n')


if __name__ == '__main__':
    main()
