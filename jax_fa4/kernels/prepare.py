"""Prepare kernel: SchedulerMetadata on the device from cu_seqlens / seqused (CuTe DSL, any architecture).

Why on the device: the metadata depends on sequence lengths that live on the GPU; computing it there keeps
`prepare_scheduler_metadata` inside jit with no host synchronisation. The definition is the shared spec's, as
implemented by jax_fa4.metadata.compute_metadata; this kernel must equal it bit for bit (tests/test_prepare_gpu.py).

Work is cut into chunks of CHUNK = 1024 sequences, one CTA per chunk, thread t of chunk c owning sequence
c * CHUNK + t, in four phases:
  1 stats  : num_m_blocks per sequence, then every (sequence, m-block) pair's mask-aware n-block count, the pairs
             split evenly over the CTA's threads (a prefix sum numbers them), so a few long sequences do not
             serialise; per sequence the max n-blocks (shared-memory atomic max) and num_heads_in_l2 (lookup in a
             divisor table); per chunk the n-block sum.
  2 splits : the global sum -> split target; per sequence num_splits, tiles and the LPT key; then the chunk is
             bitonic-sorted by (key descending, index ascending).
  3 rank   : a sequence's place in the virtual order = number of sequences ordered before it = sum over chunks of a
             binary search in that chunk's sorted list; scatter virtual_batch_idx and tiles in virtual order.
  4 scan   : tile_prefix = exclusive prefix sum of tiles in virtual order (chunk offset + block scan).
Variant "small" (batch <= CHUNK) runs all four phases in one launch on one CTA of the fewest warps that cover the
batch, keeping every per-sequence value in registers or shared memory between phases; variant "large" launches
one kernel per phase (grid = number of chunks, CHUNK threads each), so phases see each other's global writes.

Why it is shaped this way: with 1024 sequences one CTA's 32 warps share one SM, so each instruction a thread runs
costs the SM eight issue cycles and each barrier waits for the slowest warp. Scans and sums therefore run in
registers with warp shuffles and exchange only warp totals through shared memory (two barriers each), the sort
swaps partners closer than a warp with shuffles and farther ones through alternating shared-memory buffers (one
barrier per step), and per-configuration quotients are computed once per thread, not per tile.

heads_eff must be below CHUNK (the divisor table has one entry per thread; jax_fa4.metadata checks it).
Every configuration value is a runtime i32 scalar, so one compiled kernel per variant serves all configurations.
seqused_q/k are always passed; when use_seqused_* is 0 they are not read (pass any int32 array, e.g. cu_seqlens).
`workspace` is an int32 output of WORKSPACE_ARRAYS * ceil(batch / CHUNK) * CHUNK elements that the caller discards.
All integer divisions here have non-negative operands unless noted, so truncating and flooring division agree
with jnp's.
"""

import cutlass
import cutlass.cute as cute
from cutlass import const_expr
import cuda.bindings.driver as cuda
from cutlass.cute.runtime import make_fake_stream

from jax_fa4.kernels._abi import row_major

CHUNK = 1024          # sequences per CTA (== threads of a large-variant CTA); == jax_fa4.metadata.PREPARE_CHUNK
WARP = 32
SORT_STEPS_LOG = 10   # log2(CHUNK)
SHUFFLE_STEPS_LOG = 5  # log2(WARP): sort partners closer than this many positions are in the same warp
# Workspace regions (each ceil(B / CHUNK) * CHUNK int32): per sequence b, per sorted position, per chunk.
WS_MAX_TILE, WS_KEY, WS_TILES, WS_SORT_KEY, WS_SORT_IDX, WS_VIRT_TILES, WS_CHUNK_SUM = range(7)
WORKSPACE_ARRAYS = 7

VARIANTS = ("small", "large")
CI_VARIANTS = VARIANTS
SCALARS = ("tile_m", "tile_n", "qpk", "heads_eff", "window_left", "window_right", "kv_bytes_per_token", "l2_group",
           "l2_budget", "num_sms", "max_splits", "min_split_blocks", "use_seqused_q", "use_seqused_k")


def SIGNATURE(variant):
    return ([("cu_seqlens_q", "in"), ("cu_seqlens_k", "in"), ("seqused_q", "in"), ("seqused_k", "in"),
             ("num_m_blocks", "out"), ("num_splits", "out"), ("virtual_batch_idx", "out"),
             ("num_heads_in_l2", "out"), ("tile_prefix", "out"), ("workspace", "out")]
            + [(name, "i32") for name in SCALARS])


def variant_name(variant):
    return variant


class _Cfg:
    """The runtime scalars, bundled so phase functions take one argument (a plain Python holder, traced inline),
    plus the quotients of them that every thread needs (computed once per thread by `derive`)."""

    def __init__(self, *values):
        for name, value in zip(SCALARS, values):
            setattr(self, name, value)

    def derive(self):
        # A query tile's rows per head, step = tile_m / qpk, and its quotient and remainder by tile_n (used by
        # _n_blocks_sum_max when step is whole), and the L2 budget in tokens' worth of K/V bytes.
        self.whole_step = self.tile_m % self.qpk == 0
        self.step = cutlass.max(self.tile_m // self.qpk, cutlass.Int32(1))
        self.step_q = self.step // self.tile_n
        self.step_r = self.step - self.step_q * self.tile_n
        self.budget_tokens = self.l2_budget // self.kv_bytes_per_token
        # _closed_sum_max applies: no mask, or no left window with a whole step that is a multiple or a divisor
        # of tile_n (head dims <= 128 with their default tiles, packed or not; at 192 / 256 the 96 / 80-key tiles
        # against a 128-row step take the walk unless GQA packing shrinks the step to a divisor).
        self.step_mult = self.step_r == 0
        self.tn_mult = self.tile_n % self.step == 0
        self.closed = (self.window_left < 0) & ((self.window_right < 0)
                                                | (self.whole_step & (self.step_mult | self.tn_mult)))
        return self


class _Smem:
    """Shared memory of one CTA: warp totals (two slots per warp) and eight CHUNK-long int32 arrays. Phase 1 uses
    them as divisor table, lengths, walk start quotients, pair prefix and per-sequence max; the sort reuses four as
    its two alternating (key, index) buffers and the small kernel keeps tiles where the maxima were."""

    def __init__(self):
        alloc = cutlass.memory.SmemAllocator()
        self.warp = alloc.allocate_tensor(cutlass.Int32, cute.make_layout(2 * WARP), byte_alignment=16)
        (self.table, self.sq, self.sk, self.q_top, self.q_lo, self.q_hi, self.pref, self.most) = (
            alloc.allocate_tensor(cutlass.Int32, cute.make_layout(CHUNK), byte_alignment=16) for _ in range(8))
        self.sort_bufs = ((self.sq, self.sk), (self.q_top, self.q_lo))
        self.tiles = self.most


# ------------------------------------------------------------------------------------------------ CTA-wide steps
@cute.jit
def _block_scan(value, op: cutlass.Constexpr, s_warp, tidx, threads):
    """(inclusive scan of `value` in thread order, CTA-wide total) under op = "add", or "max" of values >= 0 (0 is
    the identity of both). Shuffles within each warp, then warp totals through s_warp. Every thread of the CTA
    calls it; it ends on a barrier, so s_warp is free again."""
    lane = tidx % WARP
    warp = tidx // WARP
    for d_log in cutlass.range_constexpr(SHUFFLE_STEPS_LOG):
        d = 1 << d_log
        other = cute.arch.shuffle_sync_up(value, offset=d)
        if lane >= d:
            if const_expr(op == "add"):
                value = value + other
            else:
                value = cutlass.max(value, other)
    if lane == WARP - 1:
        s_warp[warp] = value
    cute.arch.barrier()
    every = cutlass.Int32(0)
    before = cutlass.Int32(0)
    if lane < threads // WARP:
        every = s_warp[lane]
        if lane < warp:
            before = every
    before = cute.arch.warp_redux_sync(before, op)
    total = cute.arch.warp_redux_sync(every, op)
    if const_expr(op == "add"):
        value = value + before
    else:
        value = cutlass.max(value, before)
    cute.arch.barrier()
    return value, total


@cute.jit
def _block_sum_max(value, peak, s_warp, tidx, threads):
    """(sum of `value`, max of `peak` >= 0) over the CTA; every thread gets both. Ends on a barrier (s_warp free)."""
    lane = tidx % WARP
    warp = tidx // WARP
    wsum = cute.arch.warp_redux_sync(value, "add")
    wmax = cute.arch.warp_redux_sync(peak, "max")
    if lane == 0:
        s_warp[warp] = wsum
        s_warp[WARP + warp] = wmax
    cute.arch.barrier()
    part = cutlass.Int32(0)
    part_max = cutlass.Int32(0)
    if lane < threads // WARP:
        part = s_warp[lane]
        part_max = s_warp[WARP + lane]
    total = cute.arch.warp_redux_sync(part, "add")
    total_max = cute.arch.warp_redux_sync(part_max, "max")
    cute.arch.barrier()
    return total, total_max


@cute.jit
def _divisor_table(heads_eff, table, s_warp, tidx, threads):
    """table[x] = largest divisor of heads_eff that is <= x (0 for x = 0), for x <= heads_eff (< threads): a
    max-scan over "x if x divides heads_eff", so a sequence's L2 group width is one lookup. Readers need a barrier
    after it."""
    value = cutlass.Int32(0)
    if tidx >= 1:
        if tidx <= heads_eff:
            if heads_eff % tidx == 0:
                value = tidx
    best, _ = _block_scan(value, "max", s_warp, tidx, threads)
    table[tidx] = best


def _before(key_a, idx_a, key_b, idx_b):
    """LPT order: larger key first, ties by smaller sequence index."""
    return (key_a > key_b) | ((key_a == key_b) & (idx_a < idx_b))


PACK_SHIFT = SORT_STEPS_LOG    # bits of a chunk-local index in a packed sort word
PACK_KEY_LIMIT = 1 << (31 - PACK_SHIFT)  # keys + 1 below this pack into a non-negative int32


@cute.jit
def _sort(key, idx, real, bufs, tidx, packed: cutlass.Constexpr):
    """Bitonic sort of the CTA's (key, idx) pairs, thread t holding position t, into LPT order; returns the pair
    that ends at position tidx.

    packed: `key` is one word (key + 1) << PACK_SHIFT | (CHUNK - 1 - local index), unique, whose descending order
    is the LPT order, and `idx` is ignored; each step then moves one word and keeps a max or a min (the callers pack
    when every key + 1 < PACK_KEY_LIMIT and unpack after). Otherwise key and idx move separately.

    The network is the one-direction form of bitonic sort: each stage of size 2s first compares position i with
    its mirror i ^ (2s - 1), then with i ^ s/2, i ^ s/4, ..., 1, and the lower position of every pair keeps the pair
    that comes first, so a thread's role at a step is one bit of its index. Only the first `active` positions take
    part: `active` is the smallest power of two >= `real` (the chunk's real sequences); every position past it holds
    padding (key -1), which sorts after every real sequence anyway. The stages of size <= active leave positions
    [0, active) in "before" order, so small batches skip most of the network. Partners closer than a warp are
    read with shuffles (no barrier); farther ones through shared memory, each such step writing the other of two
    buffers than the step before, so one barrier per step suffices (a buffer is rewritten only after every thread
    has passed the barrier behind its last read).
    """
    active = cutlass.Int32(2)
    for _ in cutlass.range_constexpr(SORT_STEPS_LOG - 1):
        if active < real:
            active = active * 2
    for size_log in cutlass.range_constexpr(1, SORT_STEPS_LOG + 1):
        size = 1 << size_log
        # Shared-memory steps of the stages before this one (stride >= WARP), for the buffer parity.
        smem_steps_before = sum(max(0, s - SHUFFLE_STEPS_LOG) for s in range(1, size_log))
        if size <= active:  # uniform over the CTA
            for stride_log in cutlass.range_constexpr(size_log - 1, -1, -1):
                stride = 1 << stride_log
                mask = size - 1 if stride_log == size_log - 1 else stride  # mirror first, then halves
                idx_p = idx
                if const_expr(stride_log < SHUFFLE_STEPS_LOG):
                    key_p = cute.arch.shuffle_sync_bfly(key, offset=mask)
                    if const_expr(not packed):
                        idx_p = cute.arch.shuffle_sync_bfly(idx, offset=mask)
                else:
                    b_key, b_idx = bufs[(smem_steps_before + size_log - 1 - stride_log) % 2]
                    b_key[tidx] = key
                    if const_expr(not packed):
                        b_idx[tidx] = idx
                    cute.arch.barrier()
                    key_p = b_key[tidx ^ mask]
                    if const_expr(not packed):
                        idx_p = b_idx[tidx ^ mask]
                # The lower position keeps the pair that comes first; pairs are unique (distinct idx), so exactly
                # one of the two takes its partner's.
                keep_first = (tidx & stride) == 0
                if const_expr(packed):
                    if keep_first:
                        key = cutlass.max(key, key_p)
                    else:
                        key = cutlass.min(key, key_p)
                else:
                    partner_first = _before(key_p, idx_p, key, idx)
                    if partner_first == keep_first:
                        key = key_p
                        idx = idx_p
    return key, idx


@cute.jit
def _sort_chunk(key, local, real, most_max, bufs, tidx):
    """(key, chunk-local index) at position tidx after sorting the chunk's (key, local index) pairs into LPT order:
    packed into one word per pair when every key fits (keys are at most `most_max`), else two."""
    out_key = key
    out_local = local
    if most_max + 1 < PACK_KEY_LIMIT:  # uniform
        word, _ = _sort(((key + 1) << PACK_SHIFT) | (CHUNK - 1 - local), local, real, bufs, tidx, True)
        out_key = (word >> PACK_SHIFT) - 1
        out_local = CHUNK - 1 - (word & (CHUNK - 1))
    else:
        out_key, out_local = _sort(key, local, real, bufs, tidx, False)
    return out_key, out_local


# ----------------------------------------------------------------------------------------------- per sequence
@cute.jit
def _lengths(b, cfg, cu_q, cu_k, used_q, used_k):
    """(sq, sk) of sequence b (callers guarantee b < batch)."""
    sq = cu_q[b + 1] - cu_q[b]
    if cfg.use_seqused_q != 0:
        sq = used_q[b]
    sk = cu_k[b + 1] - cu_k[b]
    if cfg.use_seqused_k != 0:
        sk = used_k[b]
    return sq, sk


@cute.jit
def _m_blocks(sq, cfg):
    return (sq * cfg.qpk + cfg.tile_m - 1) // cfg.tile_m


@cute.jit
def _n_blocks(m, sq, sk, cfg):
    """KV blocks that query tile m of an (sq, sk) sequence visits under the mask (0 if none)."""
    offset = sk - sq
    first = (m * cfg.tile_m) // cfg.qpk
    last = cutlass.min(sq - 1, ((m + 1) * cfg.tile_m - 1) // cfg.qpk)
    lo = cutlass.Int32(0)
    if cfg.window_left >= 0:
        lo = cutlass.max(cutlass.Int32(0), first + offset - cfg.window_left)
    hi = sk - 1
    if cfg.window_right >= 0:
        hi = cutlass.min(sk - 1, last + offset + cfg.window_right)
    n = cutlass.Int32(0)
    if lo <= hi:
        n = hi // cfg.tile_n - lo // cfg.tile_n + 1
    return n


@cute.jit
def _floor_div(a, d):
    """floor(a / d) for d > 0 and a of either sign (integer division here truncates toward zero)."""
    q = a // d
    if q * d > a:
        q = q - 1
    return q


@cute.jit
def _step_bound(raw, q, r, cfg):
    """Advance a bound raw = q * tile_n + r (0 <= r < tile_n) by cfg.step, keeping q = floor(raw / tile_n)."""
    raw += cfg.step
    q += cfg.step_q
    r += cfg.step_r
    if r >= cfg.tile_n:
        r -= cfg.tile_n
        q += 1
    return raw, q, r


@cute.jit
def _walk_start(sq, sk, cfg):
    """(q_top, q_lo0, q_hi0): the quotients by tile_n of a sequence's last key row and of query tile 0's raw window
    bounds (see _n_blocks_sum_max), computed once per sequence by its owner thread so walks need no division."""
    off = sk - sq
    q_top = _floor_div(sk - 1, cfg.tile_n)
    q_lo0 = _floor_div(off - cfg.window_left, cfg.tile_n)
    q_hi0 = _floor_div(cfg.step - 1 + off + cfg.window_right, cfg.tile_n)
    return q_top, q_lo0, q_hi0


@cute.jit
def _n_blocks_sum_max(m, m_end, sq, sk, q_top, q_lo0, q_hi0, cfg):
    """(sum, max) of _n_blocks over query tiles m .. m_end - 1 (m < m_end) of one (sq, sk) sequence.

    For the masks _closed_sum_max does not cover (the walk never sees an unmasked sequence). Why not call
    _n_blocks per tile: its four integer divisions dominated the prepare kernel. When a tile's query rows per head,
    step = tile_m / qpk, is whole (always without GQA packing, and for every packable ratio), the raw window bounds of consecutive tiles, first row +
    offset - left and last row + offset + right, move by `step`, so their quotients by tile_n are carried from tile
    to tile with adds and one compare each (starting from _walk_start's quotients at tile 0). The clamps commute
    with the floor division: lo = max(0, raw_lo) and hi = min(sk - 1, raw_hi) (with right >= 0, the clamp of the
    last row to sq - 1 only ever lowers raw_hi to sk - 1 + right >= sk - 1). Without a left window, once raw_hi
    reaches the last key every later tile visits all blocks, so the rest is one multiply. Other ratios use
    _n_blocks.
    """
    total = cutlass.Int32(0)
    most = cutlass.Int32(0)
    tn = cfg.tile_n
    if cfg.whole_step:
        top = sk - 1
        raw_hi = (m + 1) * cfg.step - 1 + sk - sq + cfg.window_right
        q_hi = q_hi0
        if m > 0:
            q_hi = _floor_div(raw_hi, tn)
        r_hi = raw_hi - q_hi * tn
        if cfg.window_left < 0:      # lo = 0: n = hi_blk + 1 while 0 <= hi
            while m < m_end and raw_hi < top:
                n = cutlass.Int32(0)
                if raw_hi >= 0:
                    n = q_hi + 1
                total += n
                most = cutlass.max(most, n)
                raw_hi, q_hi, r_hi = _step_bound(raw_hi, q_hi, r_hi, cfg)
                m += 1
            if m < m_end:            # every later tile sees all keys
                n = q_top + 1
                total += (m_end - m) * n
                most = cutlass.max(most, n)
        else:
            raw_lo = m * cfg.step + sk - sq - cfg.window_left
            q_lo = q_lo0
            if m > 0:
                q_lo = _floor_div(raw_lo, tn)
            r_lo = raw_lo - q_lo * tn
            while m < m_end:
                lo = cutlass.Int32(0)
                lo_blk = cutlass.Int32(0)
                if raw_lo > 0:
                    lo = raw_lo
                    lo_blk = q_lo
                hi = top
                hi_blk = q_top
                if cfg.window_right >= 0:
                    if raw_hi < top:
                        hi = raw_hi
                        hi_blk = q_hi
                n = cutlass.Int32(0)
                if lo <= hi:
                    n = hi_blk - lo_blk + 1
                total += n
                most = cutlass.max(most, n)
                raw_lo, q_lo, r_lo = _step_bound(raw_lo, q_lo, r_lo, cfg)
                raw_hi, q_hi, r_hi = _step_bound(raw_hi, q_hi, r_hi, cfg)
                m += 1
    else:
        while m < m_end:
            n = _n_blocks(m, sq, sk, cfg)
            total += n
            most = cutlass.max(most, n)
            m += 1
    return total, most


@cute.jit
def _floor_sum_div(j, k):
    """sum of floor(i / k) for i in 0 .. j - 1 (j >= 0, k >= 1), modulo 2**32 like the int32 sums it feeds."""
    q = j // k
    r = j - q * k
    half = cutlass.Int32(0)  # q * (q - 1) / 2, halving the even factor first
    if q % 2 == 0:
        half = (q // 2) * (q - 1)
    else:
        half = q * ((q - 1) // 2)
    return k * half + q * r


@cute.jit
def _closed_sum_max(num_m, sq, sk, q_top, cfg):
    """(sum, max) of _n_blocks over all num_m >= 1 query tiles of an (sq, sk) sequence when cfg.closed holds.

    Why: the pair walk costs a thread a loop iteration per tile; the common masks have a closed form, so each
    thread counts its own sequence in a few divisions and the batch needs no pair balancing. Without a mask every
    tile visits q_top + 1 blocks. Without a left window, tile m's last visible key is raw = A + m * step with
    A = step - 1 + sk - sq + right, increasing in m: tiles below m_a (raw < 0) visit nothing, tiles from m_b
    (raw >= sk - 1) visit all q_top + 1 blocks, and tile m in between visits floor(raw / tile_n) + 1. That middle
    sum is an arithmetic series when step is a multiple of tile_n, and a sum of floor(j / k) over consecutive j
    (= floor(A / step) + m, k = tile_n / step) when step divides tile_n. Sums wrap modulo 2**32 exactly as the
    reference's int32 sums do.
    """
    total = cutlass.Int32(0)
    most = q_top + 1
    if cfg.window_right < 0:
        total = num_m * most
    else:
        step = cfg.step
        top = sk - 1
        base = step - 1 + sk - sq + cfg.window_right
        m_a = cutlass.Int32(0)
        if base < 0:
            m_a = (step - 1 - base) // step
        m_b = cutlass.Int32(0)
        if base < top:
            m_b = (top - base + step - 1) // step
        m_b = cutlass.min(m_b, num_m)
        m_a = cutlass.min(m_a, m_b)
        count = m_b - m_a
        part = cutlass.Int32(0)
        if count > 0:
            if cfg.step_mult:
                first_last = m_a + m_b - 1  # sum of m over [m_a, m_b) = first_last * count / 2
                tiles_sum = cutlass.Int32(0)
                if first_last % 2 == 0:
                    tiles_sum = (first_last // 2) * count
                else:
                    tiles_sum = first_last * (count // 2)
                part = count * (_floor_div(base, cfg.tile_n) + 1) + cfg.step_q * tiles_sum
            else:
                k = cfg.tile_n // step
                j0 = _floor_div(base, step)
                part = count + _floor_sum_div(j0 + m_b, k) - _floor_sum_div(j0 + m_a, k)
        total = part + (num_m - m_b) * (q_top + 1)
        last = num_m - 1
        if last < m_b:
            most = cutlass.Int32(0)
            if last >= m_a:
                most = _floor_div(base + last * step, cfg.tile_n) + 1
    return total, most


@cute.jit
def _heads_in_l2(sk, cfg, table):
    """num_heads_in_l2 of a sequence with sk keys: the largest divisor d of heads_eff with cost <= budget // d,
    i.e. d <= budget // cost, cost computed without int32 overflow (jax_fa4.metadata._heads_in_l2)."""
    g_quot = sk // cfg.l2_group
    g_rem = sk - g_quot * cfg.l2_group
    quot = cutlass.min(g_quot, cfg.budget_tokens + 1)
    cost = quot * cfg.kv_bytes_per_token + (g_rem * cfg.kv_bytes_per_token) // cfg.l2_group
    limit = cfg.heads_eff
    if cost > 0:
        limit = cutlass.min(cfg.heads_eff, cfg.l2_budget // cost)
    return cutlass.max(cutlass.Int32(1), table[limit])


@cute.jit
def _splits(most, num_m, total_blocks, cfg):
    """(num_splits, LPT key, tiles) of a sequence whose longest query tile visits `most` KV blocks, given the
    batch's total of n-blocks (summed over query tiles, per head)."""
    total = total_blocks * cfg.heads_eff
    target = cutlass.max(cfg.min_split_blocks, (total + 2 * cfg.num_sms - 1) // (2 * cfg.num_sms))
    cap = cutlass.min(cfg.max_splits, cutlass.max(cutlass.Int32(1), most // cfg.min_split_blocks))
    splits = cutlass.min(cutlass.max((most + target - 1) // target, cutlass.Int32(1)), cap)
    key = (most + splits - 1) // splits
    return splits, key, num_m * cfg.heads_eff * splits


# ------------------------------------------------------------------------------------------------------ phases
@cute.jit
def _phase_stats(c, cfg, cu_q, cu_k, used_q, used_k, num_m_blocks, num_heads_in_l2, batch, smem, tidx, threads):
    """Phase 1 for chunk c: writes num_m_blocks and num_heads_in_l2 of the chunk's sequences and returns
    (num_m, most, chunk total of n-blocks, chunk max of most): num_m and the max n-blocks of this thread's
    sequence (0 past the batch).

    When cfg.closed holds, each thread counts its own sequence in closed form (_closed_sum_max). Otherwise the
    count is balanced: the chunk's (sequence, m-block) pairs are numbered through a prefix sum of num_m_blocks and
    every thread takes an equal contiguous share, so one long sequence does not serialise on one thread. A thread
    walks its share sequence by sequence and merges its max into smem.most[b] with one shared-memory atomic per
    sequence.
    """
    _divisor_table(cfg.heads_eff, smem.table, smem.warp, tidx, threads)
    first_seq = c * CHUNK
    count = cutlass.min(batch - first_seq, cutlass.Int32(CHUNK))
    sq = cutlass.Int32(0)
    sk = cutlass.Int32(0)
    if tidx < count:
        sq, sk = _lengths(first_seq + tidx, cfg, cu_q, cu_k, used_q, used_k)
    num_m = _m_blocks(sq, cfg)
    # Pairs are counted with num_m clamped at 0 (out-of-contract negative lengths then enumerate nothing, and the
    # walk below stays inside the chunk); num_m_blocks itself is written unclamped, as jax_fa4.metadata computes it.
    pairs = cutlass.max(num_m, cutlass.Int32(0))
    blocks = cutlass.Int32(0)
    most = cutlass.Int32(0)
    if cfg.closed:  # uniform
        if pairs > 0:
            blocks, most = _closed_sum_max(pairs, sq, sk, _floor_div(sk - 1, cfg.tile_n), cfg)
    else:
        blocks, most = _walk_pairs(pairs, sq, sk, count, cfg, smem, tidx, threads)
    if tidx < count:
        num_m_blocks[first_seq + tidx] = num_m
        num_heads_in_l2[first_seq + tidx] = _heads_in_l2(sk, cfg, smem.table)
    chunk_blocks, chunk_most = _block_sum_max(blocks, most, smem.warp, tidx, threads)
    return num_m, most, chunk_blocks, chunk_most


@cute.jit
def _walk_pairs(pairs, sq, sk, count, cfg, smem, tidx, threads):
    """(n-blocks this thread counted, max n-blocks of its own sequence) by the balanced pair walk (phase 1)."""
    q_top, q_lo0, q_hi0 = _walk_start(sq, sk, cfg)
    pref, total_m = _block_scan(pairs, "add", smem.warp, tidx, threads)
    smem.sq[tidx] = sq
    smem.sk[tidx] = sk
    smem.q_top[tidx] = q_top
    smem.q_lo[tidx] = q_lo0
    smem.q_hi[tidx] = q_hi0
    smem.pref[tidx] = pref
    smem.most[tidx] = cutlass.Int32(0)
    cute.arch.barrier()
    share = (total_m + threads - 1) // threads
    f = tidx * share
    f_end = cutlass.min(total_m, f + share)
    blocks = cutlass.Int32(0)
    if f < f_end:
        lo = cutlass.Int32(0)            # first sequence whose pairs end after f
        hi = count - 1
        for _ in cutlass.range_constexpr(SORT_STEPS_LOG + 1):
            if lo < hi:
                mid = (lo + hi) // 2
                if smem.pref[mid] > f:
                    hi = mid
                else:
                    lo = mid + 1
        b = lo
        base = cutlass.Int32(0)          # pairs before sequence b
        if b > 0:
            base = smem.pref[b - 1]
        while f < f_end and b < count:
            end_b = smem.pref[b]
            stop = cutlass.min(f_end, end_b)
            if f < stop:
                total, most_b = _n_blocks_sum_max(f - base, stop - base, smem.sq[b], smem.sk[b], smem.q_top[b],
                                                  smem.q_lo[b], smem.q_hi[b], cfg)
                blocks += total
                if most_b > 0:
                    cute.arch.atomic_max(smem.most.iterator + b, most_b)
                f = stop
            base = end_b
            b += 1
    cute.arch.barrier()
    return blocks, smem.most[tidx]


@cute.jit
def _phase_scan(c, value, tile_prefix, batch, s_warp, tidx, threads, offset):
    """Phase 4 for chunk c: tile_prefix[p + 1] = offset + inclusive scan of `value` (value at position p)."""
    pref, _ = _block_scan(value, "add", s_warp, tidx, threads)
    p = c * CHUNK + tidx
    if p < batch:
        tile_prefix[p + 1] = offset + pref
    if c == 0:
        if tidx == 0:
            tile_prefix[0] = cutlass.Int32(0)


# ------------------------------------------------------------------------------------------------------ kernels
@cute.kernel
def _small_kernel(cu_q: cute.Tensor, cu_k: cute.Tensor, used_q: cute.Tensor, used_k: cute.Tensor,
                  num_m_blocks: cute.Tensor, num_splits: cute.Tensor, vbi: cute.Tensor, num_heads_in_l2: cute.Tensor,
                  tile_prefix: cute.Tensor, ws: cute.Tensor, tile_m: cutlass.Int32, tile_n: cutlass.Int32,
                  qpk: cutlass.Int32, heads_eff: cutlass.Int32, window_left: cutlass.Int32,
                  window_right: cutlass.Int32, kv_bytes_per_token: cutlass.Int32, l2_group: cutlass.Int32,
                  l2_budget: cutlass.Int32, num_sms: cutlass.Int32, max_splits: cutlass.Int32,
                  min_split_blocks: cutlass.Int32, use_seqused_q: cutlass.Int32, use_seqused_k: cutlass.Int32):
    """Every phase in one CTA (batch <= CHUNK); thread t owns sequence t and, after the sort, virtual position t."""
    cfg = _Cfg(tile_m, tile_n, qpk, heads_eff, window_left, window_right, kv_bytes_per_token, l2_group, l2_budget,
               num_sms, max_splits, min_split_blocks, use_seqused_q, use_seqused_k).derive()
    tidx, _, _ = cute.arch.thread_idx()
    threads, _, _ = cute.arch.block_dim()
    batch = num_m_blocks.shape[0]
    smem = _Smem()
    num_m, most, total_blocks, most_max = _phase_stats(cutlass.Int32(0), cfg, cu_q, cu_k, used_q, used_k,
                                                       num_m_blocks, num_heads_in_l2, batch, smem, tidx, threads)
    s_tiles = smem.tiles
    key = cutlass.Int32(-1)  # padding sorts after every real sequence (real keys are >= 0)
    if tidx < batch:
        splits, key, tiles = _splits(most, num_m, total_blocks, cfg)
        num_splits[tidx] = splits
        s_tiles[tidx] = tiles
    key, b = _sort_chunk(key, tidx, batch, most_max, smem.sort_bufs, tidx)
    cute.arch.barrier()  # smem.tiles complete (the sort has no barrier when the batch fits in one warp)
    value = cutlass.Int32(0)
    if tidx < batch:
        vbi[tidx] = b
        value = s_tiles[b]
    _phase_scan(cutlass.Int32(0), value, tile_prefix, batch, smem.warp, tidx, threads, cutlass.Int32(0))


@cute.kernel
def _stats_kernel(cu_q: cute.Tensor, cu_k: cute.Tensor, used_q: cute.Tensor, used_k: cute.Tensor,
                  num_m_blocks: cute.Tensor, num_heads_in_l2: cute.Tensor, ws: cute.Tensor, tile_m: cutlass.Int32,
                  tile_n: cutlass.Int32, qpk: cutlass.Int32, heads_eff: cutlass.Int32, window_left: cutlass.Int32,
                  window_right: cutlass.Int32, kv_bytes_per_token: cutlass.Int32, l2_group: cutlass.Int32,
                  l2_budget: cutlass.Int32, num_sms: cutlass.Int32, max_splits: cutlass.Int32,
                  min_split_blocks: cutlass.Int32, use_seqused_q: cutlass.Int32, use_seqused_k: cutlass.Int32):
    cfg = _Cfg(tile_m, tile_n, qpk, heads_eff, window_left, window_right, kv_bytes_per_token, l2_group, l2_budget,
               num_sms, max_splits, min_split_blocks, use_seqused_q, use_seqused_k).derive()
    tidx, _, _ = cute.arch.thread_idx()
    c, _, _ = cute.arch.block_idx()
    batch = num_m_blocks.shape[0]
    bc = ((batch + CHUNK - 1) // CHUNK) * CHUNK
    _, most, chunk_blocks, _ = _phase_stats(c, cfg, cu_q, cu_k, used_q, used_k, num_m_blocks, num_heads_in_l2, batch,
                                         _Smem(), tidx, cutlass.Int32(CHUNK))
    b = c * CHUNK + tidx
    if b < batch:
        ws[WS_MAX_TILE * bc + b] = most
    if tidx == 0:
        ws[WS_CHUNK_SUM * bc + c] = chunk_blocks


@cute.kernel
def _splits_kernel(num_m_blocks: cute.Tensor, num_splits: cute.Tensor, ws: cute.Tensor, tile_m: cutlass.Int32,
                   tile_n: cutlass.Int32, qpk: cutlass.Int32, heads_eff: cutlass.Int32, window_left: cutlass.Int32,
                   window_right: cutlass.Int32, kv_bytes_per_token: cutlass.Int32, l2_group: cutlass.Int32,
                   l2_budget: cutlass.Int32, num_sms: cutlass.Int32, max_splits: cutlass.Int32,
                   min_split_blocks: cutlass.Int32, use_seqused_q: cutlass.Int32, use_seqused_k: cutlass.Int32):
    cfg = _Cfg(tile_m, tile_n, qpk, heads_eff, window_left, window_right, kv_bytes_per_token, l2_group, l2_budget,
               num_sms, max_splits, min_split_blocks, use_seqused_q, use_seqused_k)
    tidx, _, _ = cute.arch.thread_idx()
    c, _, _ = cute.arch.block_idx()
    nchunks, _, _ = cute.arch.grid_dim()
    batch = num_m_blocks.shape[0]
    bc = ((batch + CHUNK - 1) // CHUNK) * CHUNK
    smem = _Smem()
    part = cutlass.Int32(0)
    for j in cutlass.range(tidx, nchunks, CHUNK):
        part += ws[WS_CHUNK_SUM * bc + j]
    b = c * CHUNK + tidx
    most = cutlass.Int32(0)
    if b < batch:
        most = ws[WS_MAX_TILE * bc + b]
    total_blocks, most_max = _block_sum_max(part, most, smem.warp, tidx, cutlass.Int32(CHUNK))
    key = cutlass.Int32(-1)  # padding sorts after every real sequence (real keys are >= 0)
    if b < batch:
        splits, key, tiles = _splits(most, num_m_blocks[b], total_blocks, cfg)
        num_splits[b] = splits
        ws[WS_TILES * bc + b] = tiles
        ws[WS_KEY * bc + b] = key
    key, local = _sort_chunk(key, tidx, cutlass.min(batch - c * CHUNK, cutlass.Int32(CHUNK)), most_max,
                             smem.sort_bufs, tidx)
    ws[WS_SORT_KEY * bc + c * CHUNK + tidx] = key
    ws[WS_SORT_IDX * bc + c * CHUNK + tidx] = c * CHUNK + local


@cute.kernel
def _rank_kernel(num_m_blocks: cute.Tensor, vbi: cute.Tensor, ws: cute.Tensor):
    tidx, _, _ = cute.arch.thread_idx()
    c, _, _ = cute.arch.block_idx()
    nchunks, _, _ = cute.arch.grid_dim()
    batch = num_m_blocks.shape[0]
    bc = ((batch + CHUNK - 1) // CHUNK) * CHUNK
    b = c * CHUNK + tidx
    if b < batch:
        key = ws[WS_KEY * bc + b]
        rank = cutlass.Int32(0)
        for j in cutlass.range(nchunks):
            base = j * CHUNK
            lo = cutlass.Int32(0)
            hi = cutlass.Int32(CHUNK)
            for _ in cutlass.range(SORT_STEPS_LOG + 1):
                if lo < hi:
                    mid = (lo + hi) // 2
                    if _before(ws[WS_SORT_KEY * bc + base + mid], ws[WS_SORT_IDX * bc + base + mid], key, b):
                        lo = mid + 1
                    else:
                        hi = mid
            rank += lo
        vbi[rank] = b
        ws[WS_VIRT_TILES * bc + rank] = ws[WS_TILES * bc + b]


@cute.kernel
def _scan_kernel(num_m_blocks: cute.Tensor, tile_prefix: cute.Tensor, ws: cute.Tensor):
    tidx, _, _ = cute.arch.thread_idx()
    c, _, _ = cute.arch.block_idx()
    batch = num_m_blocks.shape[0]
    bc = ((batch + CHUNK - 1) // CHUNK) * CHUNK
    smem = _Smem()
    part = cutlass.Int32(0)
    for p in cutlass.range(tidx, c * CHUNK, CHUNK):
        part += ws[WS_VIRT_TILES * bc + p]
    offset, _ = _block_sum_max(part, cutlass.Int32(0), smem.warp, tidx, cutlass.Int32(CHUNK))
    value = cutlass.Int32(0)
    p = c * CHUNK + tidx
    if p < batch:
        value = ws[WS_VIRT_TILES * bc + p]
    _phase_scan(c, value, tile_prefix, batch, smem.warp, tidx, cutlass.Int32(CHUNK), offset)


# ------------------------------------------------------------------------------------------------ host functions
@cute.jit
def _prepare_small(cu_seqlens_q: cute.Tensor, cu_seqlens_k: cute.Tensor, seqused_q: cute.Tensor,
                   seqused_k: cute.Tensor, num_m_blocks: cute.Tensor, num_splits: cute.Tensor,
                   virtual_batch_idx: cute.Tensor, num_heads_in_l2: cute.Tensor, tile_prefix: cute.Tensor,
                   workspace: cute.Tensor, tile_m: cutlass.Int32, tile_n: cutlass.Int32, qpk: cutlass.Int32,
                   heads_eff: cutlass.Int32, window_left: cutlass.Int32, window_right: cutlass.Int32,
                   kv_bytes_per_token: cutlass.Int32, l2_group: cutlass.Int32, l2_budget: cutlass.Int32,
                   num_sms: cutlass.Int32, max_splits: cutlass.Int32, min_split_blocks: cutlass.Int32,
                   use_seqused_q: cutlass.Int32, use_seqused_k: cutlass.Int32, stream: cuda.CUstream):
    scalars = (tile_m, tile_n, qpk, heads_eff, window_left, window_right, kv_bytes_per_token, l2_group, l2_budget,
               num_sms, max_splits, min_split_blocks, use_seqused_q, use_seqused_k)
    # Threads: the smallest power of two >= WARP covering the batch and the divisor table (heads_eff + 1 entries).
    need = cutlass.max(num_m_blocks.shape[0], heads_eff + 1)
    threads = cutlass.Int32(WARP)
    for _ in cutlass.range_constexpr(SORT_STEPS_LOG - SHUFFLE_STEPS_LOG):
        if threads < need:
            threads = threads * 2
    _small_kernel(cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, num_m_blocks, num_splits, virtual_batch_idx,
                  num_heads_in_l2, tile_prefix, workspace, *scalars).launch(
        grid=[1, 1, 1], block=[threads, 1, 1], stream=stream)


@cute.jit
def _prepare_large(cu_seqlens_q: cute.Tensor, cu_seqlens_k: cute.Tensor, seqused_q: cute.Tensor,
                   seqused_k: cute.Tensor, num_m_blocks: cute.Tensor, num_splits: cute.Tensor,
                   virtual_batch_idx: cute.Tensor, num_heads_in_l2: cute.Tensor, tile_prefix: cute.Tensor,
                   workspace: cute.Tensor, tile_m: cutlass.Int32, tile_n: cutlass.Int32, qpk: cutlass.Int32,
                   heads_eff: cutlass.Int32, window_left: cutlass.Int32, window_right: cutlass.Int32,
                   kv_bytes_per_token: cutlass.Int32, l2_group: cutlass.Int32, l2_budget: cutlass.Int32,
                   num_sms: cutlass.Int32, max_splits: cutlass.Int32, min_split_blocks: cutlass.Int32,
                   use_seqused_q: cutlass.Int32, use_seqused_k: cutlass.Int32, stream: cuda.CUstream):
    scalars = (tile_m, tile_n, qpk, heads_eff, window_left, window_right, kv_bytes_per_token, l2_group, l2_budget,
               num_sms, max_splits, min_split_blocks, use_seqused_q, use_seqused_k)
    nchunks = (num_m_blocks.shape[0] + CHUNK - 1) // CHUNK
    grid = [nchunks, 1, 1]
    block = [CHUNK, 1, 1]
    _stats_kernel(cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, num_m_blocks, num_heads_in_l2, workspace,
                  *scalars).launch(grid=grid, block=block, stream=stream)
    _splits_kernel(num_m_blocks, num_splits, workspace, *scalars).launch(grid=grid, block=block, stream=stream)
    _rank_kernel(num_m_blocks, virtual_batch_idx, workspace).launch(grid=grid, block=block, stream=stream)
    _scan_kernel(num_m_blocks, tile_prefix, workspace).launch(grid=grid, block=block, stream=stream)


def compile_variant(variant, arch):
    """AOT-compiles `variant` ("small" / "large") for `arch`; every dimension is a symbolic int."""
    host = {"small": _prepare_small, "large": _prepare_large}[variant]
    batch, batch1, used_q, used_k, work = (cute.sym_int() for _ in range(5))
    i32 = cutlass.Int32

    def vec(n):
        return row_major(i32, (n,), 4)

    args = (vec(batch1), vec(batch1), vec(used_q), vec(used_k), vec(batch), vec(batch), vec(batch), vec(batch),
            vec(batch1), vec(work)) + tuple(i32(1) for _ in SCALARS) + (make_fake_stream(),)
    return cute.compile(host, *args, options=f"--gpu-arch {arch}")
