"""Prepare kernel: SchedulerMetadata on the device from cu_seqlens / seqused (CuTe DSL, any architecture).

Why on the device: the metadata depends on sequence lengths that live on the GPU; computing it there keeps
`prepare_scheduler_metadata` inside jit with no host synchronisation. The definition is the shared spec's, as
implemented by jax_fa4.metadata.compute_metadata; this kernel must equal it bit for bit (tests/test_prepare_gpu.py).

Work is cut into chunks of CHUNK = 1024 sequences, one CTA of 1024 threads per chunk, in four phases:
  1 stats  : num_m_blocks per sequence, then every (sequence, m-block) pair's mask-aware n-block count, the pairs
             split evenly over the CTA's threads (a prefix sum numbers them), so a few long sequences do not
             serialise; per sequence the max n-blocks (shared-memory atomic max) and num_heads_in_l2 (lookup in a
             divisor table); per chunk the n-block sum.
  2 splits : the global sum -> split target; per sequence num_splits, tiles and the LPT key; then the chunk is
             bitonic-sorted in shared memory by (key descending, index ascending).
  3 rank   : a sequence's place in the virtual order = number of sequences ordered before it = sum over chunks of a
             binary search in that chunk's sorted list; scatter virtual_batch_idx and tiles in virtual order.
  4 scan   : tile_prefix = exclusive prefix sum of tiles in virtual order (chunk offset + block scan).
Variant "small" (batch <= CHUNK) runs all four phases in one CTA and one launch; variant "large" launches one
kernel per phase (grid = number of chunks), so phases see each other's global writes.

heads_eff must be below THREADS (the divisor table has one entry per thread; jax_fa4.metadata checks it).
Every configuration value is a runtime i32 scalar, so one compiled kernel per variant serves all configurations.
seqused_q/k are always passed; when use_seqused_* is 0 they are not read (pass any int32 array, e.g. cu_seqlens).
`workspace` is an int32 output of WORKSPACE_ARRAYS * ceil(batch / CHUNK) * CHUNK elements that the caller discards.
All integer divisions here have non-negative operands, so truncating and flooring division agree with jnp's.
"""

import cutlass
import cutlass.cute as cute
from cutlass import const_expr
import cuda.bindings.driver as cuda
from cutlass.cute.runtime import make_fake_stream

from jax_fa4.kernels._abi import row_major

CHUNK = 1024          # sequences per CTA (== threads per CTA); kept equal to jax_fa4.metadata.PREPARE_CHUNK
THREADS = CHUNK
WARPS = THREADS // 32
SORT_STEPS_LOG = 10   # log2(CHUNK)
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
    """The runtime scalars, bundled so phase functions take one argument (a plain Python holder, traced inline)."""

    def __init__(self, *values):
        for name, value in zip(SCALARS, values):
            setattr(self, name, value)


# ------------------------------------------------------------------------------------------------ phase helpers
def _before(key_a, idx_a, key_b, idx_b):
    """LPT order: larger key first, ties by smaller sequence index."""
    return (key_a > key_b) | ((key_a == key_b) & (idx_a < idx_b))


@cute.jit
def _block_sum(value, red, tidx):
    """Sum of `value` over the CTA (value may differ per thread); every thread gets the result."""
    warp = tidx // 32
    lane = tidx % 32
    wsum = cute.arch.warp_redux_sync(value, "add")
    if lane == 0:
        red[warp] = wsum
    cute.arch.barrier()
    if warp == 0:
        total = cute.arch.warp_redux_sync(red[lane], "add")
        if lane == 0:
            red[WARPS] = total
    cute.arch.barrier()
    result = red[WARPS]
    cute.arch.barrier()  # red may be reused right after
    return result


@cute.jit
def _divisor_table(heads_eff, table, tidx):
    """table[x] = largest divisor of heads_eff that is <= x (0 for x = 0), for x <= heads_eff (< THREADS).

    Built by a max-scan over "x if x divides heads_eff", so a sequence's L2 group width is one lookup.
    """
    value = cutlass.Int32(0)
    if tidx >= 1:
        if tidx <= heads_eff:
            if heads_eff % tidx == 0:
                value = tidx
    table[tidx] = value
    for d_log in cutlass.range_constexpr(SORT_STEPS_LOG):
        d = 1 << d_log
        if d <= heads_eff:  # lookups are at x <= heads_eff: longer offsets change nothing there (uniform branch)
            cute.arch.barrier()
            x = table[tidx]
            if tidx >= d:
                x = cutlass.max(x, table[tidx - d])
            cute.arch.barrier()
            table[tidx] = x
    cute.arch.barrier()


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
def _step_bound(raw, q, r, step, step_q, step_r, tn):
    """Advance a bound raw = q * tn + r (0 <= r < tn) by step = step_q * tn + step_r, keeping q = floor(raw / tn)."""
    raw += step
    q += step_q
    r += step_r
    if r >= tn:
        r -= tn
        q += 1
    return raw, q, r


@cute.jit
def _n_blocks_sum_max(m, m_end, sq, sk, cfg):
    """(sum, max) of _n_blocks over query tiles m .. m_end - 1 of one (sq, sk) sequence.

    Why not call _n_blocks per tile: its four integer divisions dominated the prepare kernel. When a tile's query
    rows per head, step = tile_m / qpk, is whole (always without GQA packing, and for every packable ratio), the
    raw window bounds of consecutive tiles, first row + offset - left and last row + offset + right, move by
    `step`, so their quotients by tile_n are carried from tile to tile with adds and one compare each. The clamps
    commute with the floor division: lo = max(0, raw_lo) and hi = min(sk - 1, raw_hi) (with right >= 0, the clamp
    of the last row to sq - 1 only ever lowers raw_hi to sk - 1 + right >= sk - 1). Other ratios use _n_blocks.
    """
    total = cutlass.Int32(0)
    most = cutlass.Int32(0)
    tn = cfg.tile_n
    if cfg.tile_m % cfg.qpk == 0:
        step = cfg.tile_m // cfg.qpk
        step_q = step // tn
        step_r = step - step_q * tn
        off = sk - sq
        top = sk - 1
        q_top = _floor_div(top, tn)
        raw_lo = m * step + off - cfg.window_left
        raw_hi = (m + 1) * step - 1 + off + cfg.window_right
        q_lo = _floor_div(raw_lo, tn)
        r_lo = raw_lo - q_lo * tn
        q_hi = _floor_div(raw_hi, tn)
        r_hi = raw_hi - q_hi * tn
        while m < m_end:
            lo = cutlass.Int32(0)
            lo_blk = cutlass.Int32(0)
            if cfg.window_left >= 0:
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
            raw_lo, q_lo, r_lo = _step_bound(raw_lo, q_lo, r_lo, step, step_q, step_r, tn)
            raw_hi, q_hi, r_hi = _step_bound(raw_hi, q_hi, r_hi, step, step_q, step_r, tn)
            m += 1
    else:
        while m < m_end:
            n = _n_blocks(m, sq, sk, cfg)
            total += n
            most = cutlass.max(most, n)
            m += 1
    return total, most


@cute.jit
def _write_sequence(b, sk, num_m, most, cfg, table, num_m_blocks, num_heads_in_l2, ws, bc):
    """Per-sequence outputs of phase 1: num_m_blocks, num_heads_in_l2 (a divisor-table lookup) and the max n-blocks."""
    # L2 group width: the largest divisor d of heads_eff with cost <= budget // d, i.e. d <= budget // cost; cost
    # computed without int32 overflow (jax_fa4.metadata._heads_in_l2).
    quot = cutlass.min(sk // cfg.l2_group, cfg.l2_budget // cfg.kv_bytes_per_token + 1)
    cost = quot * cfg.kv_bytes_per_token + ((sk % cfg.l2_group) * cfg.kv_bytes_per_token) // cfg.l2_group
    limit = cfg.heads_eff
    if cost > 0:
        limit = cutlass.min(cfg.heads_eff, cfg.l2_budget // cost)
    num_heads_in_l2[b] = cutlass.max(cutlass.Int32(1), table[limit])
    num_m_blocks[b] = num_m
    ws[WS_MAX_TILE * bc + b] = most


@cute.jit
def _phase_stats(c, cfg, cu_q, cu_k, used_q, used_k, num_m_blocks, num_heads_in_l2, ws, bc, batch, red, table,
                 s_sq, s_sk, s_pref, s_most, tidx):
    """Phase 1 for chunk c: per-sequence fields; returns the chunk's sum of n-blocks (every thread).

    Balanced: the chunk's (sequence, m-block) pairs are numbered through a prefix sum of num_m_blocks and every
    thread takes an equal contiguous share, so one long sequence does not serialise on one thread. A thread walks
    its share sequence by sequence and merges its max into s_most[b] with one shared-memory atomic per sequence.
    """
    _divisor_table(cfg.heads_eff, table, tidx)
    first_seq = c * CHUNK
    count = cutlass.min(batch - first_seq, cutlass.Int32(CHUNK))
    sq = cutlass.Int32(0)
    sk = cutlass.Int32(0)
    if tidx < count:
        sq, sk = _lengths(first_seq + tidx, cfg, cu_q, cu_k, used_q, used_k)
    num_m = _m_blocks(sq, cfg)
    s_sq[tidx] = sq
    s_sk[tidx] = sk
    s_most[tidx] = cutlass.Int32(0)
    # Pairs are counted with num_m clamped at 0 (out-of-contract negative lengths then enumerate nothing, and the
    # walk below stays inside the chunk); num_m_blocks itself is written unclamped, as jax_fa4.metadata computes it.
    _block_scan(cutlass.max(num_m, cutlass.Int32(0)), s_pref, count, tidx)
    total_m = cutlass.Int32(0)
    if count > 0:
        total_m = s_pref[count - 1]
    share = (total_m + THREADS - 1) // THREADS
    f = tidx * share
    f_end = cutlass.min(total_m, f + share)
    blocks = cutlass.Int32(0)
    if f < f_end:
        lo = cutlass.Int32(0)            # first sequence whose pairs end after f
        hi = count - 1
        for _ in cutlass.range_constexpr(SORT_STEPS_LOG + 1):
            if lo < hi:
                mid = (lo + hi) // 2
                if s_pref[mid] > f:
                    hi = mid
                else:
                    lo = mid + 1
        b = lo
        while f < f_end and b < count:
            sq_b = s_sq[b]
            sk_b = s_sk[b]
            end_b = s_pref[b]
            base = end_b - cutlass.max(_m_blocks(sq_b, cfg), cutlass.Int32(0))
            stop = cutlass.min(f_end, end_b)
            if f < stop:
                total, most = _n_blocks_sum_max(f - base, stop - base, sq_b, sk_b, cfg)
                blocks += total
                if most > 0:
                    cute.arch.atomic_max(s_most.iterator + b, most)
                f = stop
            b += 1
    cute.arch.barrier()
    if tidx < count:
        _write_sequence(first_seq + tidx, sk, num_m, s_most[tidx], cfg, table, num_m_blocks, num_heads_in_l2, ws, bc)
    return _block_sum(blocks, red, tidx)


@cute.jit
def _phase_splits_and_sort(c, cfg, total_blocks, num_m_blocks, num_splits, ws, bc, batch, s_key, s_idx, tidx):
    """Phase 2 for chunk c: splits, tiles, key; leaves the chunk sorted in (s_key, s_idx)."""
    total = total_blocks * cfg.heads_eff
    target = cutlass.max(cfg.min_split_blocks, (total + 2 * cfg.num_sms - 1) // (2 * cfg.num_sms))
    b = c * CHUNK + tidx
    key = cutlass.Int32(-1)  # padding sorts after every real sequence (real keys are >= 0)
    if b < batch:
        most = ws[WS_MAX_TILE * bc + b]
        cap = cutlass.min(cfg.max_splits, cutlass.max(cutlass.Int32(1), most // cfg.min_split_blocks))
        splits = cutlass.min(cutlass.max((most + target - 1) // target, cutlass.Int32(1)), cap)
        key = (most + splits - 1) // splits
        num_splits[b] = splits
        ws[WS_TILES * bc + b] = num_m_blocks[b] * cfg.heads_eff * splits
        ws[WS_KEY * bc + b] = key
    # Bitonic sort of (key, idx) pairs into LPT order, over the first `active` positions only: `active` is the
    # smallest power of two >= the chunk's real sequences, and every position past it holds padding, which sorts
    # after every real sequence anyway. The stages of size <= active leave positions [0, active) in ascending
    # "before" order, so the chunk is ordered, and small batches skip most of the network's steps.
    # Each thread keeps its position's pair in registers and, at every step, takes its partner's pair when the
    # network says so: partners closer than a warp are read with shuffles (no barrier), farther ones through
    # shared memory.
    real = cutlass.min(batch - c * CHUNK, cutlass.Int32(CHUNK))
    active = cutlass.Int32(2)
    for _ in cutlass.range_constexpr(SORT_STEPS_LOG - 1):
        if active < real:
            active = active * 2
    idx = b
    for size_log in cutlass.range_constexpr(1, SORT_STEPS_LOG + 1):
        size = 1 << size_log
        if size <= active:  # uniform over the CTA
            for stride_log in cutlass.range_constexpr(size_log - 1, -1, -1):
                stride = 1 << stride_log
                if const_expr(stride < 32):
                    key_p = cute.arch.shuffle_sync_bfly(key, offset=stride)
                    idx_p = cute.arch.shuffle_sync_bfly(idx, offset=stride)
                else:
                    s_key[tidx] = key
                    s_idx[tidx] = idx
                    cute.arch.barrier()
                    key_p = s_key[tidx ^ stride]
                    idx_p = s_idx[tidx ^ stride]
                    cute.arch.barrier()
                # The lower position of an ascending run (or the upper of a descending one) keeps the pair that
                # comes first; pairs are unique (distinct idx), so exactly one of the two takes its partner's.
                keep_first = ((tidx & stride) == 0) == ((tidx & size) == 0)
                partner_first = _before(key_p, idx_p, key, idx)
                if partner_first == keep_first:
                    key = key_p
                    idx = idx_p
    s_key[tidx] = key
    s_idx[tidx] = idx
    cute.arch.barrier()


@cute.jit
def _block_scan(value, s_scan, real, tidx):
    """s_scan[p] = inclusive sum of `value` over positions 0..p, exact for p < real (uniform); ends on a barrier."""
    s_scan[tidx] = value
    for d_log in cutlass.range_constexpr(SORT_STEPS_LOG):
        d = 1 << d_log
        if d < real:  # positions < real need offsets below real only; uniform over the CTA
            cute.arch.barrier()
            x = s_scan[tidx]
            if tidx >= d:
                x += s_scan[tidx - d]
            cute.arch.barrier()
            s_scan[tidx] = x
    cute.arch.barrier()


@cute.jit
def _phase_scan(c, value, tile_prefix, batch, s_scan, red, tidx, offset):
    """Phase 4 for chunk c: tile_prefix[p + 1] = offset + inclusive scan of `value` (value at position p)."""
    _block_scan(value, s_scan, cutlass.min(batch - c * CHUNK, cutlass.Int32(CHUNK)), tidx)
    p = c * CHUNK + tidx
    if p < batch:
        tile_prefix[p + 1] = offset + s_scan[tidx]
    if c == 0:
        if tidx == 0:
            tile_prefix[0] = cutlass.Int32(0)


def _smem(extra=0):
    """s_key, s_idx, red, then `extra` more CHUNK-long int32 arrays."""
    alloc = cutlass.memory.SmemAllocator()
    arrays = [alloc.allocate_tensor(cutlass.Int32, cute.make_layout(CHUNK), byte_alignment=16) for _ in range(2)]
    red = alloc.allocate_tensor(cutlass.Int32, cute.make_layout(WARPS + 1), byte_alignment=16)
    arrays += [alloc.allocate_tensor(cutlass.Int32, cute.make_layout(CHUNK), byte_alignment=16)
               for _ in range(extra)]
    return (arrays[0], arrays[1], red, *arrays[2:])


# ------------------------------------------------------------------------------------------------------ kernels
@cute.kernel
def _small_kernel(cu_q: cute.Tensor, cu_k: cute.Tensor, used_q: cute.Tensor, used_k: cute.Tensor,
                  num_m_blocks: cute.Tensor, num_splits: cute.Tensor, vbi: cute.Tensor, num_heads_in_l2: cute.Tensor,
                  tile_prefix: cute.Tensor, ws: cute.Tensor, tile_m: cutlass.Int32, tile_n: cutlass.Int32, qpk: cutlass.Int32, heads_eff: cutlass.Int32,
                  window_left: cutlass.Int32, window_right: cutlass.Int32, kv_bytes_per_token: cutlass.Int32,
                  l2_group: cutlass.Int32, l2_budget: cutlass.Int32, num_sms: cutlass.Int32,
                  max_splits: cutlass.Int32, min_split_blocks: cutlass.Int32, use_seqused_q: cutlass.Int32,
                  use_seqused_k: cutlass.Int32):
    """Every phase in one CTA (batch <= CHUNK)."""
    cfg = _Cfg(tile_m, tile_n, qpk, heads_eff, window_left, window_right, kv_bytes_per_token, l2_group, l2_budget,
               num_sms, max_splits, min_split_blocks, use_seqused_q, use_seqused_k)
    tidx, _, _ = cute.arch.thread_idx()
    batch = num_m_blocks.shape[0]
    bc = CHUNK
    s_key, s_idx, red, s_sq, s_sk, s_pref, s_most = _smem(extra=4)
    total_blocks = _phase_stats(cutlass.Int32(0), cfg, cu_q, cu_k, used_q, used_k, num_m_blocks, num_heads_in_l2, ws,
                                bc, batch, red, s_idx, s_sq, s_sk, s_pref, s_most, tidx)
    cute.arch.barrier()  # s_idx (the divisor table) is rewritten by the sort
    _phase_splits_and_sort(cutlass.Int32(0), cfg, total_blocks, num_m_blocks, num_splits, ws, bc, batch, s_key,
                           s_idx, tidx)
    value = cutlass.Int32(0)
    if tidx < batch:
        b = s_idx[tidx]
        vbi[tidx] = b
        value = ws[WS_TILES * bc + b]
    cute.arch.barrier()  # s_key is reused as the scan buffer
    _phase_scan(cutlass.Int32(0), value, tile_prefix, batch, s_key, red, tidx, cutlass.Int32(0))


@cute.kernel
def _stats_kernel(cu_q: cute.Tensor, cu_k: cute.Tensor, used_q: cute.Tensor, used_k: cute.Tensor,
                  num_m_blocks: cute.Tensor, num_heads_in_l2: cute.Tensor, ws: cute.Tensor, tile_m: cutlass.Int32, tile_n: cutlass.Int32, qpk: cutlass.Int32, heads_eff: cutlass.Int32,
                  window_left: cutlass.Int32, window_right: cutlass.Int32, kv_bytes_per_token: cutlass.Int32,
                  l2_group: cutlass.Int32, l2_budget: cutlass.Int32, num_sms: cutlass.Int32,
                  max_splits: cutlass.Int32, min_split_blocks: cutlass.Int32, use_seqused_q: cutlass.Int32,
                  use_seqused_k: cutlass.Int32):
    cfg = _Cfg(tile_m, tile_n, qpk, heads_eff, window_left, window_right, kv_bytes_per_token, l2_group, l2_budget,
               num_sms, max_splits, min_split_blocks, use_seqused_q, use_seqused_k)
    tidx, _, _ = cute.arch.thread_idx()
    c, _, _ = cute.arch.block_idx()
    batch = num_m_blocks.shape[0]
    bc = ((batch + CHUNK - 1) // CHUNK) * CHUNK
    _, table, red, s_sq, s_sk, s_pref, s_most = _smem(extra=4)
    chunk_blocks = _phase_stats(c, cfg, cu_q, cu_k, used_q, used_k, num_m_blocks, num_heads_in_l2, ws, bc, batch,
                                red, table, s_sq, s_sk, s_pref, s_most, tidx)
    if tidx == 0:
        ws[WS_CHUNK_SUM * bc + c] = chunk_blocks


@cute.kernel
def _splits_kernel(num_m_blocks: cute.Tensor, num_splits: cute.Tensor, ws: cute.Tensor, tile_m: cutlass.Int32, tile_n: cutlass.Int32, qpk: cutlass.Int32, heads_eff: cutlass.Int32,
                  window_left: cutlass.Int32, window_right: cutlass.Int32, kv_bytes_per_token: cutlass.Int32,
                  l2_group: cutlass.Int32, l2_budget: cutlass.Int32, num_sms: cutlass.Int32,
                  max_splits: cutlass.Int32, min_split_blocks: cutlass.Int32, use_seqused_q: cutlass.Int32,
                  use_seqused_k: cutlass.Int32):
    cfg = _Cfg(tile_m, tile_n, qpk, heads_eff, window_left, window_right, kv_bytes_per_token, l2_group, l2_budget,
               num_sms, max_splits, min_split_blocks, use_seqused_q, use_seqused_k)
    tidx, _, _ = cute.arch.thread_idx()
    c, _, _ = cute.arch.block_idx()
    nchunks, _, _ = cute.arch.grid_dim()
    batch = num_m_blocks.shape[0]
    bc = ((batch + CHUNK - 1) // CHUNK) * CHUNK
    s_key, s_idx, red = _smem()[:3]
    part = cutlass.Int32(0)
    for j in cutlass.range(tidx, nchunks, THREADS):
        part += ws[WS_CHUNK_SUM * bc + j]
    total_blocks = _block_sum(part, red, tidx)
    _phase_splits_and_sort(c, cfg, total_blocks, num_m_blocks, num_splits, ws, bc, batch, s_key, s_idx, tidx)
    ws[WS_SORT_KEY * bc + c * CHUNK + tidx] = s_key[tidx]
    ws[WS_SORT_IDX * bc + c * CHUNK + tidx] = s_idx[tidx]


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
    s_key, _, red = _smem()[:3]
    part = cutlass.Int32(0)
    for p in cutlass.range(tidx, c * CHUNK, THREADS):
        part += ws[WS_VIRT_TILES * bc + p]
    offset = _block_sum(part, red, tidx)
    value = cutlass.Int32(0)
    p = c * CHUNK + tidx
    if p < batch:
        value = ws[WS_VIRT_TILES * bc + p]
    _phase_scan(c, value, tile_prefix, batch, s_key, red, tidx, offset)


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
    _small_kernel(cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, num_m_blocks, num_splits, virtual_batch_idx,
                  num_heads_in_l2, tile_prefix, workspace, *scalars).launch(
        grid=[1, 1, 1], block=[THREADS, 1, 1], stream=stream)


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
    block = [THREADS, 1, 1]
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
