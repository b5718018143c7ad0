#!/usr/bin/python3
"""Reference outputs for calsweep's llama.cpp imatrix quantization (tests/unit/quant_imatrix_test.c).

Written for calsweep from the published algorithm (llama.cpp's ggml-quants.c: quantize_q4_0,
quantize_q5_0 and quantize_q4_K with and without quant_weights, make_qx_quants,
make_qkx2_quants / make_qkx3_quants, make_qp_quants, and the dequantize_row_* functions, as
docs/specs/ptq-algorithms.md section 7 describes them), in numpy float32, one operation at a time in
the order of the C code: every binary operation's result is rounded to float32 (np.float32(...)
around each one; numpy may widen a mix of float32 and Python numbers to float64, and a float64
result of one +, -, *, / or sqrt of float32 operands rounds to the correctly rounded float32
result), sums run left to right, and rounding to integers is half to even (ggml's nearest_int).
fp16 is numpy's float16 (round to nearest even).

Run with Debian's numpy:  /usr/bin/python3 tests/ref/make_imatrix_refs.py [OUTDIR]
Writes OUTDIR (default tests/data/imatrix) /<name>.bin (little-endian f32, or u16 / u32) and
index.json. Deterministic (fixed seed). Takes about ten seconds.
"""
import json
import os
import sys

import numpy as np

F = np.float32
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'imatrix')

ROWS, COLS = 24, 512      # two Q4_K super-blocks, 16 Q4_0 blocks per row
ROWS_F, COLS_F = 12, 192  # Q5_0 (the Q4_K fallback width of tb-qwen)
QK, QK_K = 32, 256
EPS = F(1e-15)


def nint(v):
    """ggml's nearest_int: round half to even."""
    return int(np.rint(F(v)))


def clamp(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


def mul(a, b):
    return F(F(a) * F(b))


def add(a, b):
    return F(F(a) + F(b))


def sub(a, b):
    return F(F(a) - F(b))


def div(a, b):
    return F(F(a) / F(b))


def sqrt(a):
    return F(np.sqrt(F(a)))


def fp16(v):
    """GGML_FP32_TO_FP16 then GGML_FP16_TO_FP32."""
    return F(np.float16(F(v)))


# ---- Q4_0 / Q5_0 ------------------------------------------------------------------------------
def make_qx_quants(x, w, nmax):
    """make_qx_quants(32, nmax, x, L, rmse_type=1, qw=w): signed levels and the scale."""
    amax, mx = F(0), F(0)
    for v in x:
        if abs(v) > amax:
            amax, mx = F(abs(v)), v
    if amax < EPS:
        return [-nmax] * QK, F(0)
    iscale = div(F(-nmax), mx)
    q = []
    sumlx = suml2 = F(0)
    for i in range(QK):
        l = clamp(nint(mul(iscale, x[i])), -nmax, nmax - 1)
        q.append(l)
        sumlx = add(sumlx, mul(mul(w[i], x[i]), F(l)))
        suml2 = add(suml2, mul(mul(w[i], F(l)), F(l)))
    scale = div(sumlx, suml2) if suml2 != 0 else F(0)
    best = mul(scale, sumlx)
    for k in range(-9, 10):
        if k == 0:
            continue
        iscale = div(F(-add(F(nmax), mul(F(0.1), F(k)))), mx)
        sumlx = suml2 = F(0)
        for i in range(QK):
            l = clamp(nint(mul(iscale, x[i])), -nmax, nmax - 1)
            sumlx = add(sumlx, mul(mul(w[i], x[i]), F(l)))
            suml2 = add(suml2, mul(mul(w[i], F(l)), F(l)))
        if suml2 > 0 and mul(sumlx, sumlx) > mul(best, suml2):
            q = [clamp(nint(mul(iscale, x[i])), -nmax, nmax - 1) for i in range(QK)]
            scale = div(sumlx, suml2)
            best = mul(scale, sumlx)
    return q, scale


def qx0_row(x, imp, nmax):
    out = []
    if imp is None:   # quantize_row_q4_0_ref / q5_0_ref
        for b in range(len(x) // QK):
            xb = x[b * QK:(b + 1) * QK]
            amax, mx = F(0), F(0)
            for v in xb:
                if amax < abs(v):
                    amax, mx = F(abs(v)), v
            d = div(mx, F(-nmax))
            idd = div(F(1), d) if d != 0 else F(0)
            dh = fp16(d)
            for v in xb:
                t = add(mul(v, idd), F(nmax + 0.5))
                lv = min(2 * nmax - 1, int(t)) - nmax      # (int8_t) truncates
                out.append(mul(F(lv), dh))
        return out
    sum_x2 = F(0)
    for v in x:
        sum_x2 = add(sum_x2, mul(v, v))
    sigma2 = div(sum_x2, F(len(x)))
    for b in range(len(x) // QK):
        xb = x[b * QK:(b + 1) * QK]
        qw = imp[b * QK:(b + 1) * QK]
        w = [mul(qw[j], sqrt(add(sigma2, mul(xb[j], xb[j])))) for j in range(QK)]
        q, d = make_qx_quants(xb, w, nmax)
        dh = fp16(d)
        out.extend(mul(F(l), dh) for l in q)
    return out


# ---- Q4_K -------------------------------------------------------------------------------------
def qkx_fit(x, w, nmax, rmin, rdelta, nstep):
    """make_qkx2_quants / make_qkx3_quants (use_mad false): levels, scale, the_min."""
    n = len(x)
    mn, mx = x[0], x[0]
    sum_w = w[0]
    sum_x = mul(sum_w, x[0])
    for i in range(1, n):
        if x[i] < mn:
            mn = x[i]
        if x[i] > mx:
            mx = x[i]
        sum_w = add(sum_w, w[i])
        sum_x = add(sum_x, mul(w[i], x[i]))
    if mn > 0:
        mn = F(0)
    if mx <= mn:
        return [0] * n, F(0), F(-mn)
    iscale = div(F(nmax), sub(mx, mn))
    scale = div(F(1), iscale)
    L = []
    best = F(0)
    for i in range(n):
        l = clamp(nint(mul(iscale, sub(x[i], mn))), 0, nmax)
        L.append(l)
        diff = sub(add(mul(scale, F(l)), mn), x[i])
        best = add(best, mul(w[i], mul(diff, diff)))
    for k in range(nstep + 1):
        iscale = div(add(add(F(rmin), mul(F(rdelta), F(k))), F(nmax)), sub(mx, mn))
        sum_l = sum_l2 = sum_xl = F(0)
        laux = []
        for i in range(n):
            l = clamp(nint(mul(iscale, sub(x[i], mn))), 0, nmax)
            laux.append(l)
            sum_l = add(sum_l, mul(w[i], F(l)))
            sum_l2 = add(sum_l2, mul(mul(w[i], F(l)), F(l)))
            sum_xl = add(sum_xl, mul(mul(w[i], F(l)), x[i]))
        D = sub(mul(sum_w, sum_l2), mul(sum_l, sum_l))
        if D > 0:
            this_scale = div(sub(mul(sum_w, sum_xl), mul(sum_x, sum_l)), D)
            this_min = div(sub(mul(sum_l2, sum_x), mul(sum_l, sum_xl)), D)
            if this_min > 0:
                this_min = F(0)
                this_scale = div(sum_xl, sum_l2)
            mad = F(0)
            for i in range(n):
                diff = sub(add(mul(this_scale, F(laux[i])), this_min), x[i])
                mad = add(mad, mul(w[i], mul(diff, diff)))
            if mad < best:
                L, best, scale, mn = laux, mad, this_scale, this_min
    return L, scale, F(-mn)


def make_qp_quants(x, qw, nmax):
    """make_qp_quants(8, nmax, x, L, qw): levels (uint8) and the scale."""
    n = len(x)
    mx = F(0)
    for v in x:
        mx = mx if mx > v else v
    if mx < EPS:
        return [0] * n, F(0)
    iscale = div(F(nmax), mx)
    L = [nint(mul(iscale, v)) & 0xff for v in x]
    scale = div(F(1), iscale)
    best = F(0)
    for i in range(n):
        diff = sub(x[i], mul(scale, F(L[i])))
        best = add(best, mul(mul(qw[i], diff), diff))
    for k in range(-4, 5):
        if k == 0:
            continue
        iscale_is = div(add(mul(F(0.1), F(k)), F(nmax)), mx)
        scale_is = div(F(1), iscale_is)
        mse = F(0)
        for i in range(n):
            l = min(nmax, nint(mul(iscale_is, x[i])))
            diff = sub(x[i], mul(scale_is, F(l)))
            mse = add(mse, mul(mul(qw[i], diff), diff))
        if mse < best:
            best, iscale = mse, iscale_is
    sumlx = suml2 = F(0)
    L = []
    for i in range(n):
        l = min(nmax, nint(mul(iscale, x[i])))
        L.append(l & 0xff)
        sumlx = add(sumlx, mul(mul(qw[i], x[i]), F(l)))
        suml2 = add(suml2, mul(mul(qw[i], F(l)), F(l)))
    for _ in range(5):
        changed = 0
        for i in range(n):
            w = qw[i]
            slx = sub(sumlx, mul(mul(w, x[i]), F(L[i])))
            sl2 = sub(suml2, mul(mul(w, F(L[i])), F(L[i])))
            if slx > 0 and sl2 > 0:
                new_l = min(nmax, nint(div(mul(x[i], sl2), slx)))
                if new_l != L[i]:
                    slx = add(slx, mul(mul(w, x[i]), F(new_l)))
                    sl2 = add(sl2, mul(mul(w, F(new_l)), F(new_l)))
                    if mul(mul(slx, slx), suml2) > mul(mul(sumlx, sumlx), sl2):
                        L[i], sumlx, suml2 = new_l & 0xff, slx, sl2
                        changed += 1
        if not changed:
            break
    return L, div(sumlx, suml2) if suml2 > 0 else F(0)


def pack_unpack(ls, lm):
    """ggml's 12-byte packing of 8 six-bit scales and mins, then get_scale_min_k4."""
    s = [0] * 12
    for j in range(8):
        if j < 4:
            s[j] = ls[j] & 0xff
            s[j + 4] = lm[j] & 0xff
        else:
            s[j + 4] = ((ls[j] & 0xF) | ((lm[j] & 0xF) << 4)) & 0xff
            s[j - 4] = (s[j - 4] | ((ls[j] >> 4) << 6)) & 0xff
            s[j] = (s[j] | ((lm[j] >> 4) << 6)) & 0xff
    sc, m = [], []
    for j in range(8):
        if j < 4:
            sc.append(s[j] & 63)
            m.append(s[j + 4] & 63)
        else:
            sc.append((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4))
            m.append((s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    return sc, m


def q4k_row(x, imp):
    out = []
    for b in range(len(x) // QK_K):
        xs = x[b * QK_K:(b + 1) * QK_K]
        Ls, scales, mins = [], [], []
        if imp is not None:   # quantize_row_q4_K_impl
            qws = imp[b * QK_K:(b + 1) * QK_K]
            sum_x2 = F(0)
            for v in xs:
                sum_x2 = add(sum_x2, mul(v, v))
            sigma2 = div(mul(F(2), sum_x2), F(QK_K))
            sw = []
            for j in range(8):
                xb, qw = xs[j * QK:(j + 1) * QK], qws[j * QK:(j + 1) * QK]
                w = [mul(qw[l], sqrt(add(sigma2, mul(xb[l], xb[l])))) for l in range(QK)]
                sumw = F(0)
                for v in w:
                    sumw = add(sumw, v)
                sw.append(sumw)
                L, sc, mn = qkx_fit(xb, w, 15, -0.9, 0.05, 36)
                Ls.append(L)
                scales.append(sc)
                mins.append(mn)
            ls, d_block = make_qp_quants(scales, sw, 63)
            lm, m_block = make_qp_quants(mins, sw, 63)
        else:                 # quantize_row_q4_K_ref
            max_scale = max_min = F(0)
            for j in range(8):
                xb = xs[j * QK:(j + 1) * QK]
                sum_x2 = F(0)
                for v in xb:
                    sum_x2 = add(sum_x2, mul(v, v))
                av_x = sqrt(div(sum_x2, F(32)))
                w = [add(av_x, F(abs(v))) for v in xb]
                L, sc, mn = qkx_fit(xb, w, 15, -1.0, 0.1, 20)
                Ls.append(L)
                scales.append(sc)
                mins.append(mn)
                if sc > max_scale:
                    max_scale = sc
                if mn > max_min:
                    max_min = mn
            inv_scale = div(F(63), max_scale) if max_scale > 0 else F(0)
            inv_min = div(F(63), max_min) if max_min > 0 else F(0)
            ls = [min(63, nint(mul(inv_scale, s)) & 0xff) for s in scales]
            lm = [min(63, nint(mul(inv_min, s)) & 0xff) for s in mins]
            d_block = div(max_scale, F(63))
            m_block = div(max_min, F(63))
        sc6, m6 = pack_unpack(ls, lm)
        dh, dmh = fp16(d_block), fp16(m_block)
        for j in range(8):
            xb = xs[j * QK:(j + 1) * QK]
            d = mul(dh, F(sc6[j]))
            if d != 0:
                dm = mul(dmh, F(m6[j]))
                Ls[j] = [clamp(nint(div(add(v, dm), d)), 0, 15) for v in xb]
            d1, m1 = mul(dh, F(sc6[j])), mul(dmh, F(m6[j]))
            out.extend(sub(mul(d1, F(l)), m1) for l in Ls[j])
    return out


def quantize(w, imp, kind):
    rows = []
    for r in range(w.shape[0]):
        x = [F(v) for v in w[r]]
        qi = None if imp is None else [F(v) for v in imp]
        if kind == 'q4_0':
            rows.append(qx0_row(x, qi, 8))
        elif kind == 'q5_0':
            rows.append(qx0_row(x, qi, 16))
        else:
            rows.append(q4k_row(x, qi))
    return np.array(rows, dtype=np.float32)


def make_inputs(rng, rows, cols):
    w = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
    w[1, 3] = 0.9                      # an outlier weight
    w[2, 64:96] = 0.0                  # an all-zero block (and Q4_K sub-block)
    w[3, :] *= 1e-3                    # a row of small values
    w[4, 32:64] = -np.abs(w[4, 32:64])  # a block with no positive value
    w[5, 96:128] = 0.02                # a constant block
    w[6, 128:160] = np.float32(0.05) * np.arange(32, dtype=np.float32) / 31  # a ramp
    for r in range(7, rows):           # heavy tails, values on a grid (ties), sparse rows
        k = r % 4
        v = rng.laplace(size=cols) if k == 0 else rng.standard_t(2, size=cols) if k == 1 else \
            np.round(rng.standard_normal(cols) * 4) / 4 if k == 2 else \
            rng.standard_normal(cols) * (rng.random(cols) < 0.3)
        w[r] = (v * 10 ** rng.uniform(-3, 0)).astype(np.float32)
    imp = (rng.gamma(0.5, 2.0, cols) + 1e-3).astype(np.float32)
    imp[rng.choice(cols, 6, replace=False)] *= 40.0   # outlier channels
    imp[cols - 32:] = 0.0              # a block of dead columns (importance 0)
    return w, imp


def half_cases(rng):
    """float32 bit patterns and numpy's float16 of each: random, ties, boundaries, subnormals."""
    bits = list(rng.integers(0, 2 ** 32, 6000, dtype=np.uint64).astype(np.uint32))
    for h in range(0x7c00):               # every finite half, its neighbours and midpoints
        v = np.array([h], dtype=np.uint16).view(np.float16).astype(np.float32)[0]
        b = int(np.array([v], dtype=np.float32).view(np.uint32)[0])
        if h % 31 == 0 or h < 0x420 or h > 0x7bc0:
            bits.extend([b, b + 1, max(b - 1, 0), b + 0x1000 if h >= 0x400 else b, b | 0x80000000])
    for b in (0x33000000, 0x33000001, 0x32ffffff, 0x387fe000, 0x387ff000, 0x38800000,
              0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001, 0x7f800000, 0xff800000, 0x00000001,
              0x80000000, 0x3f800000, 0x3f801000, 0x3f803000, 0x3f802000):
        bits.append(b)
    f32 = np.array(bits, dtype=np.uint32)
    vals = f32.view(np.float32)
    keep = ~np.isnan(vals)
    f32 = f32[keep]
    with np.errstate(over='ignore'):
        h16 = f32.view(np.float32).astype(np.float16).view(np.uint16)
    return f32, h16


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261203)
    w, imp = make_inputs(rng, ROWS, COLS)
    wf, impf = make_inputs(rng, ROWS_F, COLS_F)
    arrays, cases = {}, []

    def put(name, a, dtype):
        a = np.ascontiguousarray(a.astype({'f32': '<f4', 'u16': '<u2', 'u32': '<u4'}[dtype]))
        with open(os.path.join(OUT, name + '.bin'), 'wb') as f:
            f.write(a.tobytes())
        arrays[name] = {'file': name + '.bin', 'dtype': dtype, 'shape': list(a.shape)}

    put('W', w, 'f32')
    put('imp', imp, 'f32')
    put('W_192', wf, 'f32')
    put('imp_192', impf, 'f32')
    for kind, wi, ii, wname in [('q4_0', w, imp, 'W'), ('q4_k', w, imp, 'W'),
                                ('q5_0', wf, impf, 'W_192'), ('q5_0', w, imp, 'W')]:
        for use_imp in (True, False):
            name = '%s_%s_%s' % (kind, wname, 'imatrix' if use_imp else 'plain')
            put(name, quantize(wi, ii if use_imp else None, kind), 'f32')
            cases.append({'name': name, 'type': kind, 'weights': wname,
                          'importance': ('imp' if wname == 'W' else 'imp_192') if use_imp else None,
                          'output': name})
    f32, h16 = half_cases(rng)
    put('half_in', f32, 'u32')
    put('half_out', h16, 'u16')
    index = {'generator': 'tests/ref/make_imatrix_refs.py', 'numpy': np.__version__,
             'arrays': arrays, 'cases': cases}
    with open(os.path.join(OUT, 'index.json'), 'w') as f:
        json.dump(index, f, indent=1, sort_keys=True)
        f.write('\n')


if __name__ == '__main__':
    main()
