"""Independent float64 NumPy oracle for packed attention: a plain loop over sequences and heads.

Written from the conventions in the spec (not from jax_fa4.reference) so the two can disagree when one is wrong.
Gradients are derived by hand (softmax backward), including the gradient that flows in through the LSE.
Only meant for in-contract inputs (non-decreasing cu_seqlens, lengths <= max_seqlen).
"""

from __future__ import annotations

import math

import numpy as np


def _lengths(cu, seqused):
    cu = np.asarray(cu, np.int64)
    lens = cu[1:] - cu[:-1]
    if seqused is not None:
        lens = np.asarray(seqused, np.int64)
    return cu[:-1], lens


def _mask(sq, sk, causal, window):
    left, right = window
    if causal:
        right = 0
    i = np.arange(sq)[:, None]
    j = np.arange(sk)[None, :]
    diag = i + sk - sq
    ok = np.ones((sq, sk), bool)
    if right >= 0:
        ok &= j <= diag + right
    if left >= 0:
        ok &= j >= diag - left
    return ok


def attention(q, k, v, cu_q, cu_k, *, seqused_q=None, seqused_k=None, scale=None, causal=False,
              window=(-1, -1), softcap=0.0, dout=None, dlse=None, rounding=None):
    """Returns dict(out [Tq,H,Dv], lse [H,Tq]) and, when dout is given, dq/dk/dv (float64).

    dlse [H, Tq] optionally adds a cotangent on the LSE. `rounding` (a function, e.g. to bfloat16 and back)
    emulates FlashAttention's roundings: the forward's P before P V and its output, and the backward's D taken
    from that rounded output, P before dV = P^T dO and dS before dQ = dS K / dK = dS^T Q; everything else stays
    float64. None = exact.
    """
    rnd = (lambda x: x) if rounding is None else rounding
    q = np.asarray(q, np.float64)
    k = np.asarray(k, np.float64)
    v = np.asarray(v, np.float64)
    tq, h, d = q.shape
    hk, dv = k.shape[1], v.shape[2]
    rep = h // hk
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    out = np.zeros((tq, h, dv))
    lse = np.full((h, tq), -np.inf)
    grads = dout is not None
    if grads:
        dout = np.asarray(dout, np.float64)
        dlse = np.zeros((h, tq)) if dlse is None else np.asarray(dlse, np.float64)
        dq, dk, dvv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    qs, sqs = _lengths(cu_q, seqused_q)
    ks, sks = _lengths(cu_k, seqused_k)
    for b in range(len(sqs)):
        sq, sk, q0, k0 = int(sqs[b]), int(sks[b]), int(qs[b]), int(ks[b])
        if sq == 0:
            continue
        ok = _mask(sq, sk, causal, window)
        for hh in range(h):
            g = hh // rep
            Q = q[q0:q0 + sq, hh]
            K = k[k0:k0 + sk, g]
            V = v[k0:k0 + sk, g]
            x = scale * (Q @ K.T)
            if softcap > 0:
                t = np.tanh(x / softcap)
                s = softcap * t
            else:
                s = x
            s = np.where(ok, s, -np.inf)
            m = s.max(axis=1, keepdims=True) if sk else np.full((sq, 1), -np.inf)
            live = np.isfinite(m)
            m = np.where(live, m, 0.0)
            p = np.where(ok, np.exp(s - m), 0.0)
            l = p.sum(axis=1, keepdims=True)
            o = rnd(np.where(l > 0, (rnd(p) @ V) / np.where(l > 0, l, 1.0), 0.0))
            p = np.where(l > 0, p / np.where(l > 0, l, 1.0), 0.0)
            out[q0:q0 + sq, hh] = o
            lse[hh, q0:q0 + sq] = np.where(l[:, 0] > 0, m[:, 0] + np.log(np.where(l[:, 0] > 0, l[:, 0], 1.0)),
                                           -np.inf)
            if grads:
                do = dout[q0:q0 + sq, hh]
                dvv[k0:k0 + sk, g] += rnd(p).T @ do
                dp = do @ V.T
                delta = (do * o).sum(axis=1, keepdims=True)
                ds = p * (dp - delta + dlse[hh, q0:q0 + sq][:, None])
                dx = rnd(ds * (1.0 - t * t) if softcap > 0 else ds)
                dx = dx * scale
                dq[q0:q0 + sq, hh] += dx @ K
                dk[k0:k0 + sk, g] += dx.T @ Q
    res = {"out": out, "lse": lse}
    if grads:
        res.update(dq=dq, dk=dk, dv=dvv)
    return res


def rel_err(x, ref):
    """Relative Frobenius error; rows where ref is -inf must match exactly (checked by the caller)."""
    x = np.asarray(x, np.float64)
    ref = np.asarray(ref, np.float64)
    den = np.linalg.norm(ref)
    return float(np.linalg.norm(x - ref) / (den if den > 0 else 1.0))
