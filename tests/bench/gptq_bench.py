#!/usr/bin/python3
"""The PyTorch side of tests/bench/gptq_bench.c: GPTQ fasterquant (IST-DASLab's structure, written
for calsweep) on one ROWS x COLS layer with the same given Hessian (AR(1) rho^|i-j| scaled by
d_i d_j), 4-bit asym, group 128, blocksize 128, percdamp 0.01.

Two variants are timed: 'fp32' factorizes H in float32 as the IST code does; 'fp64' in float64
as calsweep does (the variant the reference tests use).
Usage: /usr/bin/python3 tests/bench/gptq_bench.py [ROWS [COLS [THREADS]]]
"""
import math
import sys
import time

import torch


def hessian(c, rho=0.9):
    i = torch.arange(c, dtype=torch.float64)
    d = 0.5 + ((torch.arange(c) * 7919) % 97).double() / 97.0
    k = (i.view(-1, 1) - i.view(1, -1)).abs()
    return (d.view(-1, 1) * d.view(1, -1) * rho ** k).float()


def find_params(x, bits):
    maxq = float(2 ** bits - 1)
    tmp = torch.zeros(x.shape[0])
    xmin = torch.minimum(x.min(1)[0], tmp)
    xmax = torch.maximum(x.max(1)[0], tmp)
    both = (xmin == 0) & (xmax == 0)
    xmin[both] = -1
    xmax[both] = +1
    scale = (xmax - xmin) / maxq
    zero = torch.round(-xmin / scale)
    return scale.unsqueeze(1), zero.unsqueeze(1), maxq


def quantize(x, scale, zero, maxq):
    q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
    return scale * (q - zero)


def fasterquant(W, H, bits=4, groupsize=128, blocksize=128, percdamp=.01, fp64=False):
    W = W.clone()
    H = H.clone()
    C = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    Q = torch.zeros_like(W)
    Losses = torch.zeros_like(W)
    t0 = time.perf_counter()
    if fp64:
        H = H.double()
    damp = percdamp * torch.mean(torch.diag(H))
    diag = torch.arange(C)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    H = torch.linalg.cholesky(H, upper=True)
    Hinv = H.float()
    t_hinv = time.perf_counter() - t0
    params = None
    for i1 in range(0, C, blocksize):
        i2 = min(i1 + blocksize, C)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Losses1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            if (i1 + i) % groupsize == 0:
                params = find_params(W[:, (i1 + i):(i1 + i + groupsize)], bits)
            s, z, mq = params
            q = quantize(w.unsqueeze(1), s, z, mq).flatten()
            Q1[:, i] = q
            Losses1[:, i] = (w - q) ** 2 / d ** 2
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        Q[:, i1:i2] = Q1
        Losses[:, i1:i2] = Losses1 / 2
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return Q, float(Losses.sum()), t_hinv


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    cols = int(sys.argv[2]) if len(sys.argv) > 2 else 4096
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(1)
    W = 0.02 * torch.randn(rows, cols, generator=g)
    H = hessian(cols)
    for fp64 in (False, True):
        t0 = time.perf_counter()
        _, loss, t_hinv = fasterquant(W, H, fp64=fp64)
        t = time.perf_counter() - t0
        print('gptq_bench torch %s %s: rows %d cols %d group 128 threads %d: hinv %.2f s, '
              'total %.2f s (loss %.6g)' % (torch.__version__, 'fp64' if fp64 else 'fp32', rows,
                                             cols, threads, t_hinv, t, loss))


if __name__ == '__main__':
    main()
