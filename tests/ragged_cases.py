"""Random ragged batches for the GPU kernel tests (forward and backward draw from the same distribution)."""

import dataclasses

import numpy as np


def draw_lengths(rng, mask):
    """(seqlen_q, seqlen_k) int32 arrays of a random ragged batch: empty and length-1 sequences, sq != sk, lengths
    off tile multiples, decode-like rows next to a long one, and under causal sometimes sk < sq."""
    batch = int(rng.integers(1, 9))
    kind = rng.integers(3)
    if kind == 0:
        sq = rng.integers(0, 400, batch)
        sk = sq + rng.integers(0, 200, batch)
    elif kind == 1:
        sq = rng.integers(0, 300, batch)
        sk = rng.integers(0, 600, batch)
    else:  # decode-like rows next to a longer one
        sq = rng.integers(1, 4, batch)
        sk = rng.integers(1, 900, batch)
        sq[0] = rng.integers(129, 700)
        sk[0] = sq[0] + rng.integers(0, 50)
    sq[rng.random(batch) < 0.15] = 0
    sk[rng.random(batch) < 0.1] = 0
    sq[rng.random(batch) < 0.15] = 1
    if mask == "causal" and rng.random() < 0.2:
        sk = np.minimum(sk, sq)  # sk < sq: leading rows see no key
    return sq.astype(np.int32), sk.astype(np.int32)


def draw_window(rng, mask):
    """(causal, window_size) for a mask variant; window sizes cut through 64/80/96/128-row tiles."""
    if mask == "none":
        return False, (-1, -1)
    if mask == "causal":
        return True, (-1, -1)
    # Sizes from small sets (each is a static argument, so a compilation): all cut through 128/96/80-row tiles.
    choice = rng.integers(3)
    left = int(rng.choice([0, 37, 200]))
    if choice == 0:
        return True, (left, -1)                      # causal + left window
    if choice == 1:
        return False, (left, int(rng.choice([0, 61])))
    return False, (-1, int(rng.choice([5, 150])))


def cu_seqlens(lengths, pad=None):
    """cu_seqlens of slots of length `lengths` (+ `pad` unused rows each, for seqused)."""
    slots = lengths if pad is None else lengths + pad
    return np.concatenate([[0], np.cumsum(slots)]).astype(np.int32)



@dataclasses.dataclass(frozen=True)
class Case:
    """One drawn call: lengths, mask, softcap, head counts, seqused slots, packed row counts (bucketed)."""
    seqlen_q: np.ndarray
    seqlen_k: np.ndarray
    causal: bool
    window: tuple
    softcap: float
    num_heads: int
    num_kv_heads: int
    seqused: bool
    cu_q: np.ndarray
    cu_k: np.ndarray
    total_q: int
    total_k: int

    def describe(self):
        return (f"H={self.num_heads} Hk={self.num_kv_heads} sq={self.seqlen_q.tolist()} sk={self.seqlen_k.tolist()} "
                f"causal={self.causal} window={self.window} softcap={self.softcap} seqused={self.seqused}")


def draw_case(rng, mask):
    """A random call for a mask variant: ragged lengths, window, softcap on a third of the calls, 1 or 2 KV heads
    with 1/2/4/8 query heads each, seqused (with up to 2 unused rows per slot) on 30 %. Row counts are rounded up
    to a multiple of 1024 (fewer compilations); the rows past cu[-1] belong to no sequence."""
    sq, sk = draw_lengths(rng, mask)
    causal, window = draw_window(rng, mask)
    softcap = float(rng.choice([0.0, 0.0, 15.0]))
    hk = int(rng.choice([1, 2]))
    h = hk * int(rng.choice([1, 2, 4, 8]))
    seqused = bool(rng.random() < 0.3)
    pad_q = rng.integers(0, 3, len(sq)) if seqused else None
    pad_k = rng.integers(0, 3, len(sk)) if seqused else None
    cu_q, cu_k = cu_seqlens(sq, pad_q), cu_seqlens(sk, pad_k)
    total_q = -(-(int(cu_q[-1]) + 1) // 1024) * 1024
    total_k = -(-(int(cu_k[-1]) + 1) // 1024) * 1024
    return Case(sq, sk, causal, window, softcap, h, hk, seqused, cu_q, cu_k, total_q, total_k)
