"""The correctness gate: a float64 NumPy recomputation on a sample of sequences, heads and query rows.

A benchmark number for a wrong kernel is worse than none, so every implementation's output (and gradients, for
forward+backward) is compared with this before it is timed. Only the sampled rows are recomputed, which keeps the
check cheap even for 131072-key decodes; gradients dK/dV need whole sequences and are checked on a short one.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from benchmarks import masks

TOLERANCE = {"bfloat16": 2e-2, "float16": 1e-2, "float32": 1e-4}
FULL_SEQUENCE_LIMIT = 1 << 25   # sq * sk * (q heads per kv head) above which dK/dV are not recomputed


def _softmax_rows(s, lo, hi):
    cols = np.arange(s.shape[1])
    allowed = (cols[None, :] >= lo[:, None]) & (cols[None, :] <= hi[:, None])
    s = np.where(allowed, s, -np.inf)
    m = np.max(s, axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    p = np.exp(s - m)
    denom = p.sum(axis=1, keepdims=True)
    return p / np.where(denom > 0, denom, 1.0)   # empty rows -> all-zero probabilities -> output 0


@dataclasses.dataclass
class _Piece:
    seq: int
    rows: np.ndarray      # query rows inside the sequence
    kv_head: int
    heads: list           # query heads checked (all in kv_head's group)


class Sample:
    """Host copies of the sampled inputs and their float64 reference results."""

    def __init__(self, wl, q, k, v, do=None, *, seed=0, max_seqs=3, max_rows=64):
        self.wl = wl
        self.scale = 1.0 / np.sqrt(wl.head_dim)
        self.cu_q, self.cu_k = wl.cu_seqlens()
        rng = np.random.default_rng(seed)
        sq = np.asarray(wl.seqlens_q)
        work = sq * np.asarray(wl.seqlens_k)
        seqs = [int(np.argmax(work)), int(np.argmin(work)), int(rng.integers(wl.batch))]
        seqs = list(dict.fromkeys(b for b in seqs if sq[b] > 0))[:max_seqs]
        qpk = wl.num_heads // wl.num_kv_heads
        kv_heads = sorted({0, wl.num_kv_heads - 1})
        self.pieces = []
        for b in seqs:
            n = int(sq[b])
            rows = np.arange(n) if n <= max_rows else np.unique(
                np.concatenate([rng.choice(n, max_rows - 1, replace=False), [n - 1]]))
            for g in kv_heads:
                heads = sorted({g * qpk, g * qpk + qpk - 1})
                self.pieces.append(_Piece(b, rows, g, heads))
        self._fetch(q, k, v, do)
        self._reference(do is not None)
        self.grad_seq = None
        if do is not None:
            fits = [b for b in seqs if work[b] * qpk <= FULL_SEQUENCE_LIMIT]
            if fits:
                self.grad_seq = min(fits, key=lambda b: -work[b])   # the largest one that is still cheap
                self._reference_kv_grads(q, k, v, do)

    def _kv(self, x, b, g):
        return np.asarray(x[int(self.cu_k[b]):int(self.cu_k[b + 1]), g], dtype=np.float64)

    def _fetch(self, q, k, v, do):
        self.inputs = []
        for p in self.pieces:
            rows = self.cu_q[p.seq] + p.rows
            qs = np.asarray(q[rows][:, p.heads], dtype=np.float64)
            dos = None if do is None else np.asarray(do[rows][:, p.heads], dtype=np.float64)
            self.inputs.append((qs, self._kv(k, p.seq, p.kv_head), self._kv(v, p.seq, p.kv_head), dos))

    def _mask(self, b, rows=None):
        lo, hi = masks.visible_range(int(self.wl.seqlens_q[b]), int(self.wl.seqlens_k[b]), self.wl.causal,
                                     self.wl.window)
        return (lo, hi) if rows is None else (lo[rows], hi[rows])

    def _reference(self, with_grads):
        self.ref_o, self.ref_dq = [], []
        for p, (qs, K, V, dos) in zip(self.pieces, self.inputs):
            lo, hi = self._mask(p.seq, p.rows)
            os_, dqs = [], []
            for j in range(len(p.heads)):
                prob = _softmax_rows(qs[:, j] @ K.T * self.scale, lo, hi)
                o = prob @ V
                os_.append(o)
                if with_grads:
                    dp = dos[:, j] @ V.T
                    ds = prob * (dp - np.sum(dos[:, j] * o, axis=1, keepdims=True))
                    dqs.append(self.scale * ds @ K)
            self.ref_o.append(np.stack(os_, 1))
            self.ref_dq.append(np.stack(dqs, 1) if with_grads else None)

    def _reference_kv_grads(self, q, k, v, do):
        b, wl = self.grad_seq, self.wl
        qpk = wl.num_heads // wl.num_kv_heads
        rows = slice(int(self.cu_q[b]), int(self.cu_q[b + 1]))
        lo, hi = self._mask(b)
        self.ref_dkv = {}
        for g in sorted({0, wl.num_kv_heads - 1}):
            K, V = self._kv(k, b, g), self._kv(v, b, g)
            heads = list(range(g * qpk, (g + 1) * qpk))
            qs = np.asarray(q[rows][:, heads], dtype=np.float64)
            dos = np.asarray(do[rows][:, heads], dtype=np.float64)
            dk, dv = np.zeros_like(K), np.zeros_like(V)
            for j in range(qpk):
                prob = _softmax_rows(qs[:, j] @ K.T * self.scale, lo, hi)
                o = prob @ V
                ds = prob * (dos[:, j] @ V.T - np.sum(dos[:, j] * o, axis=1, keepdims=True))
                dv += prob.T @ dos[:, j]
                dk += self.scale * ds.T @ qs[:, j]
            self.ref_dkv[g] = (dk, dv)

    def check_output(self, out):
        """Relative Frobenius error of `out` (packed [total_q, H, Dv]) over the sampled rows; NaN if non-finite."""
        pairs = []
        for p, ref in zip(self.pieces, self.ref_o):
            got = np.asarray(out[self.cu_q[p.seq] + p.rows][:, p.heads], dtype=np.float64)
            pairs.append((got, ref))
        return _rel_error(pairs)

    def check_grads(self, dq, dk, dv):
        errors = {"dq": _rel_error([(np.asarray(dq[self.cu_q[p.seq] + p.rows][:, p.heads], dtype=np.float64), r)
                                    for p, r in zip(self.pieces, self.ref_dq)])}
        if self.grad_seq is not None:
            b = self.grad_seq
            dks, dvs = [], []
            for g, (rk, rv) in self.ref_dkv.items():
                dks.append((self._kv(dk, b, g), rk))
                dvs.append((self._kv(dv, b, g), rv))
            errors["dk"] = _rel_error(dks)
            errors["dv"] = _rel_error(dvs)
        return errors


def _rel_error(pairs):
    num = den = 0.0
    for got, ref in pairs:
        if not np.all(np.isfinite(got)):
            return float("nan")
        num += float(np.sum((got - ref) ** 2))
        den += float(np.sum(ref ** 2))
    return float(np.sqrt(num / den)) if den > 0 else float(np.sqrt(num))


def verdict(errors, dtype):
    """'ok' when every error is finite and within the dtype's tolerance, else 'WRONG'."""
    tol = TOLERANCE[dtype]
    return "ok" if all(np.isfinite(e) and e <= tol for e in errors.values()) else "WRONG"
