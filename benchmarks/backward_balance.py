"""Load-balance model of bwd_dkdv_sm90's tile schedule: `python -m benchmarks.backward_balance`.

A ticket is (sequence, KV head, pair of key blocks of 128: N - 1 - p and p; the kernel's) or, as before it,
(sequence, KV head, one key block); its work is taken as the query blocks (64 rows) that see its key blocks under a
causal mask, times the query heads per KV head, plus one per key block. The model compares the busiest CTA's work
with the average for a static stride (CTA c takes tiles c, c + grid, ...) and for tickets from an atomic counter
(the next ticket goes to the CTA that is free first). It ignores memory effects; it says how much
a dynamic scheduler can at most recover, not what it does on a GPU.
"""

import heapq

import numpy as np

from benchmarks import workloads

TILE_K, TILE_Q = 128, 64


def block_work(s, n, qhead_per_kv):
    """Work of key block n of a causal sequence of s tokens (seqlen_q = seqlen_k = s)."""
    return (-(-s // TILE_Q) - n * TILE_K // TILE_Q) * qhead_per_kv + 1


def tile_work(seqlens, num_kv_heads, qhead_per_kv, paired=True):
    """Work of each ticket in the kernel's order: sequence-major, then KV head, then pair p (key blocks N - 1 - p
    and p; the middle block of an odd N alone); paired=False: one key block per ticket, block 0 first, KV heads
    innermost (the schedule before pairs)."""
    work = []
    for s in seqlens:
        n_blocks = -(-s // TILE_K)
        if not paired:
            for n in range(n_blocks):
                work += [block_work(s, n, qhead_per_kv)] * num_kv_heads
            continue
        pairs = [block_work(s, n_blocks - 1 - p, qhead_per_kv) + (block_work(s, p, qhead_per_kv)
                                                                 if p != n_blocks - 1 - p else 0)
                 for p in range(-(-n_blocks // 2))]
        work += pairs * num_kv_heads
    return np.asarray(work, np.float64)


def static_makespan(work, grid):
    loads = np.zeros(grid)
    np.add.at(loads, np.arange(len(work)) % grid, work)
    return loads.max()


def dynamic_makespan(work, grid):
    free = [(0.0, c) for c in range(grid)]
    for w in work:
        t, c = heapq.heappop(free)
        heapq.heappush(free, (t + w, c))
    return max(t for t, _ in free)


def imbalance(seqlens, num_kv_heads=8, qhead_per_kv=4, grid=132, paired=True, longest_first=False):
    """(static, dynamic): busiest CTA's work over the average. longest_first: the sequences take their tickets
    longest first (the kernel's ticket_order) instead of in batch order."""
    if longest_first:
        seqlens = sorted(seqlens, reverse=True)
    work = tile_work(seqlens, num_kv_heads, qhead_per_kv, paired)
    mean = work.sum() / grid
    return static_makespan(work, grid) / mean, dynamic_makespan(work, grid) / mean


def main():
    cases = {"dense 4x8192 causal": [8192] * 4, "dense 16x2048 causal": [2048] * 16,
             "packed-train (39 documents)": workloads.lognormal_lengths(32768)}
    print("busiest CTA / average work (32 query / 8 KV heads, 132 CTAs)")
    for name, lens in cases.items():
        st, dyn = imbalance(list(lens), paired=False)
        _, pair = imbalance(list(lens))
        _, first = imbalance(list(lens), longest_first=True)
        print(f"  {name:28s} one block per tile: static stride {st:.3f}x, atomic tickets {dyn:.3f}x; "
              f"paired tickets {pair:.3f}x, longest first {first:.3f}x")


if __name__ == "__main__":
    main()
