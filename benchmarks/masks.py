"""Exact work accounting under the bottom-right aligned causal / sliding-window mask.

Throughput numbers are only honest if the FLOP count matches what the mask really lets through, so pairs are
counted row by row per sequence (no "half of the square" approximation, which is wrong whenever sq != sk).
"""

from __future__ import annotations

import numpy as np


def visible_range(sq: int, sk: int, causal: bool, window=(-1, -1)):
    """Per query row i of one sequence: the inclusive key range [lo[i], hi[i]] it may attend to.

    Bottom-right alignment: row i sits at key position i + sk - sq. A window side of -1 is unbounded; causal
    forces the right side to 0. Rows with hi < lo see nothing.
    """
    left, right = window
    if causal:
        right = 0
    i = np.arange(sq, dtype=np.int64)
    diag = i + (sk - sq)
    lo = np.zeros(sq, np.int64) if left < 0 else np.maximum(0, diag - left)
    hi = np.full(sq, sk - 1, np.int64) if right < 0 else np.minimum(sk - 1, diag + right)
    return lo, hi


def attended_pairs(sq: int, sk: int, causal: bool, window=(-1, -1)) -> int:
    """Number of (query, key) pairs the mask lets through in one sequence (one head)."""
    if sq <= 0 or sk <= 0:
        return 0
    lo, hi = visible_range(sq, sk, causal, window)
    return int(np.maximum(hi - lo + 1, 0).sum())


def total_pairs(seqlens_q, seqlens_k, causal: bool, window=(-1, -1)) -> int:
    return sum(attended_pairs(int(a), int(b), causal, window) for a, b in zip(seqlens_q, seqlens_k))


def forward_flops(seqlens_q, seqlens_k, causal, window, num_heads, head_dim, head_dim_v=None) -> int:
    """2 FLOPs per multiply-add for S = QK^T and for O = PV: 2*pairs*(D + Dv)*heads (= 4*pairs*D*heads)."""
    head_dim_v = head_dim if head_dim_v is None else head_dim_v
    return 2 * total_pairs(seqlens_q, seqlens_k, causal, window) * num_heads * (head_dim + head_dim_v)


BACKWARD_FACTOR = 3.5
"""Forward + backward counted as 3.5x the forward (FlashAttention convention: bwd has 5 matmuls to fwd's 2)."""


def io_bytes(seqlens_q, seqlens_k, num_heads, num_kv_heads, head_dim, itemsize, head_dim_v=None) -> int:
    """Minimum HBM traffic of a forward pass: read Q, K, V once and write O (what a decode is bound by)."""
    head_dim_v = head_dim if head_dim_v is None else head_dim_v
    total_q, total_k = int(np.sum(seqlens_q)), int(np.sum(seqlens_k))
    q_o = total_q * num_heads * (head_dim + head_dim_v)
    k_v = total_k * num_kv_heads * (head_dim + head_dim_v)
    return (q_o + k_v) * itemsize
