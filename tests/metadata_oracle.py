"""Independent plain-Python oracle for the scheduler metadata, written straight from the spec text.

Deliberately naive (per sequence, per m-block, per token loops; Python integers, so no overflow) and sharing no
code with jax_fa4.metadata beyond reading the configuration's plain fields.
"""

from __future__ import annotations


def _ceil_div(a, b):
    return -(-a // b)


def _mask_range(i, sq, sk, causal, left, right):
    """Keys token i may see, as an inclusive (lo, hi) before clipping; None bounds are unbounded."""
    diag = i + sk - sq
    lo = None if left < 0 else diag - left
    hi = None if right < 0 else diag + right
    if causal:
        hi = diag if hi is None else min(hi, diag)
    return lo, hi


def oracle(cfg, sq_list, sk_list):
    """Returns dict of Python lists: num_m_blocks, num_splits, virtual_batch_idx, num_heads_in_l2, tile_prefix,
    plus blocks and max_tile_blocks (intermediate, for diagnosis)."""
    H, Hk = cfg.num_heads, cfg.num_kv_heads
    qpk = H // Hk if cfg.pack_gqa else 1
    h_eff = Hk if cfg.pack_gqa else H
    tm, tn = cfg.tile_m, cfg.tile_n
    B = len(sq_list)
    num_m, blocks, max_tile = [], [], []
    for b in range(B):
        sq, sk = int(sq_list[b]), int(sk_list[b])
        M = _ceil_div(sq * qpk, tm) if sq > 0 else 0
        per_m = []
        for m in range(M):
            first = m * tm // qpk
            last = min(sq - 1, ((m + 1) * tm - 1) // qpk)
            visible = set()
            for i in range(first, last + 1):
                lo, hi = _mask_range(i, sq, sk, cfg.causal, cfg.window_left, cfg.window_right)
                lo = 0 if lo is None else max(lo, 0)
                hi = sk - 1 if hi is None else min(hi, sk - 1)
                if lo <= hi:
                    visible.add(lo)
                    visible.add(hi)
            if not visible or sk == 0:
                per_m.append(0)
            else:
                per_m.append(max(visible) // tn - min(visible) // tn + 1)
        num_m.append(M)
        blocks.append(sum(per_m))
        max_tile.append(max(per_m) if per_m else 0)

    total = sum(blocks) * h_eff
    target = max(cfg.min_split_blocks, _ceil_div(total, 2 * cfg.num_sms))
    splits = []
    for b in range(B):
        hi = min(cfg.max_splits, max(1, max_tile[b] // cfg.min_split_blocks))
        splits.append(min(max(_ceil_div(max_tile[b], target), 1), hi))
    tiles = [num_m[b] * h_eff * splits[b] for b in range(B)]
    keys = [_ceil_div(max_tile[b], splits[b]) for b in range(B)]
    order = sorted(range(B), key=lambda b: (-keys[b], b))
    prefix = [0]
    for b in order:
        prefix.append(prefix[-1] + tiles[b])

    budget = cfg.l2_bytes // 2
    in_l2 = []
    for b in range(B):
        bytes_kv_head = int(sk_list[b]) * (cfg.head_dim + cfg.head_dim_v) * cfg.itemsize
        cost = bytes_kv_head * Hk // h_eff
        best = 1
        for L in range(1, h_eff + 1):
            if h_eff % L == 0 and L * cost <= budget:
                best = L
        in_l2.append(best)
    return {"num_m_blocks": num_m, "num_splits": splits, "virtual_batch_idx": order, "num_heads_in_l2": in_l2,
            "tile_prefix": prefix, "blocks": blocks, "max_tile_blocks": max_tile}


def all_tiles(cfg, sq_list, num_splits, num_heads_in_l2=None):
    """The set of (b, head, m_block, split) the forward kernel must visit: every one exactly once."""
    h_eff = cfg.num_kv_heads if cfg.pack_gqa else cfg.num_heads
    qpk = cfg.num_heads // cfg.num_kv_heads if cfg.pack_gqa else 1
    out = []
    for b, sq in enumerate(sq_list):
        M = _ceil_div(int(sq) * qpk, cfg.tile_m)
        for h in range(h_eff):
            for m in range(M):
                for s in range(int(num_splits[b])):
                    out.append((b, h, m, s))
    return out
