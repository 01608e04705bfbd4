"""Hopper (SM90) building blocks shared by the forward and backward kernels: warpgroup GEMMs and their register
views, TMA views and pipelines, masks and the softcap scales, the static persistent tile walk of the backward
kernels, zeroing rows no sequence owns, and the backward kernels' compile-time arguments.

Why here: every SM90 attention kernel issues the same two kinds of wgmma (both operands from shared memory, or A
from registers with an MN-major B) and reads its accumulators as (rows, cols); keeping those in one place keeps
their register layouts identical across kernels.
"""

import math

import cutlass
import cutlass.cute as cute
import cutlass.pipeline as pipeline
import cutlass.utils.hopper_helpers as sm90_utils
from cutlass import Float32, Int32, Int64
from cutlass._mlir.dialects import llvm
from cutlass.cute.nvgpu import warpgroup
from cutlass.cute.runtime import make_fake_stream
from cutlass.cutlass_dsl import T, dsl_user_op
from cutlass.experimental.primitives.nvvm_wrapper import cp_async_bulk_shared_cluster_global

from jax_fa4.kernels._abi import row_major

LOG2E = math.log2(math.e)


def acc_mn(t):
    """View a wgmma accumulator fragment ((2, 2, N/8), M, N) as (rows, cols) = ((2, M), (2, N/8, N))."""
    s, d = t.layout.shape, t.layout.stride
    layout = cute.make_layout(((s[0][1], s[1]), (s[0][0], s[0][2], s[2])),
                              stride=((d[0][1], d[1]), (d[0][0], d[0][2], d[2])))
    return cute.make_tensor(t.iterator, layout)


def thread_coords(tiled_mma, shape, thread):
    """(rows, cols) coordinates that `thread` holds in a `shape` accumulator of `tiled_mma`: compile-time values."""
    return acc_mn(tiled_mma.get_slice(thread).partition_C(cute.make_identity_tensor(shape)))


def thread0_coords(tiled_mma, shape):
    """thread_coords of thread 0. Any thread's column c is its own column 0 plus thread 0's column c, which lets
    masks compare with immediates."""
    return thread_coords(tiled_mma, shape, 0)


def acc_as_a_layout(acc_layout):
    """Register layout of the RS-wgmma A operand ((2, 2, 2), M, K/16) over the same storage order as the
    accumulator ((2, 2, N/8), M, N): a k16 slice of A is two consecutive n8 chunks of C."""
    s, d = acc_layout.shape, acc_layout.stride
    return cute.make_layout(((s[0][0], s[0][1], 2), s[1], (s[2], s[0][2] // 2)),
                            stride=((d[0][0], d[0][1], d[0][2]), d[1], (d[2], 2 * d[0][2])))


def pack_pair(lo, hi, dtype):
    """Two f32 -> one 32-bit register holding (lo, hi) as two `dtype` values (bf16 or fp16, round to nearest)."""
    return _cvt_pack(lo, hi, "bf16x2" if dtype == cutlass.BFloat16 else "f16x2")


@dsl_user_op
def _cvt_pack(lo, hi, ptx_type: str, *, loc=None, ip=None):
    return Int32(llvm.inline_asm(T.i32(), [Float32(hi).ir_value(loc=loc, ip=ip), Float32(lo).ir_value(loc=loc, ip=ip)],
                                 f"cvt.rn.{ptx_type}.f32 $0, $1, $2;", "=r,f,f", has_side_effects=False,
                                 is_align_stack=False, asm_dialect=llvm.AsmDialect.AD_ATT))


def convert_packed(src, dst):
    """dst (bf16 / fp16 register tensor, same storage order as src) = src (f32), two elements per instruction,
    written as 32-bit registers. Why: a plain element-wise conversion leaves bf16 pairs in 16-bit registers that
    are repacked right before the wgmma that reads them, and ptxas then serialises the pipelined wgmmas (C7512)."""
    packed = cute.recast_tensor(dst, Int32)
    for i in range(cute.size(packed)):
        packed[i] = pack_pair(src[2 * i], src[2 * i + 1], dst.element_type)


def swap_first_modes(t):
    """The same shared-memory tensor (rows, cols, stages) read as (cols, rows, stages): a K-major operand seen as
    the MN-major operand of another GEMM without a second copy (the swizzle stays a property of the addresses)."""
    rows, cols, stages = (cute.size(t, mode=[i]) for i in range(3))
    return cute.composition(t, cute.make_layout((cols, rows, stages), stride=(rows, 1, rows * cols)))


@dsl_user_op
def red_global_add_f32x4(address: Int64, a, b, c, d, *, loc=None, ip=None):
    """global[address .. +16 bytes] += (a, b, c, d) (float32, 16-byte aligned), one vector reduction, no result."""
    llvm.inline_asm(None, [Int64(address).ir_value(loc=loc, ip=ip)]
                    + [Float32(x).ir_value(loc=loc, ip=ip) for x in (a, b, c, d)],
                    "red.global.add.v4.f32 [$0], {$1, $2, $3, $4};", "l,f,f,f,f", has_side_effects=True,
                    is_align_stack=False, asm_dialect=llvm.AsmDialect.AD_ATT)


@dsl_user_op
def ld_global_f32x4(address: Int64, *, loc=None, ip=None):
    """global[address .. +16 bytes] as four float32 (16-byte aligned), one vector load (read-only data)."""
    result = llvm.inline_asm(llvm.StructType.get_literal([T.f32()] * 4), [Int64(address).ir_value(loc=loc, ip=ip)],
                             "ld.global.nc.v4.f32 {$0, $1, $2, $3}, [$4];", "=f,=f,=f,=f,l",
                             has_side_effects=False, is_align_stack=False, asm_dialect=llvm.AsmDialect.AD_ATT)
    return tuple(Float32(llvm.extractvalue(T.f32(), result, [i], loc=loc, ip=ip)) for i in range(4))


@dsl_user_op
def st_shared_b32(address: Int32, value: Int32, *, loc=None, ip=None):
    """shared[address .. +4 bytes] = value (a 32-bit shared-window address)."""
    llvm.inline_asm(None, [Int32(address).ir_value(loc=loc, ip=ip), Int32(value).ir_value(loc=loc, ip=ip)],
                    "st.shared.b32 [$0], $1;", "r,r", has_side_effects=True, is_align_stack=False,
                    asm_dialect=llvm.AsmDialect.AD_ATT)


@dsl_user_op
def st_async_peer_b32(address: Int32, value: Int32, mbar: Int32, peer: Int32, *, loc=None, ip=None):
    """shared[address] = value in cluster CTA `peer`, completing 4 bytes of transactions on that CTA's mbarrier at
    `mbar` (both 32-bit shared-window addresses of this CTA, mapped to the peer's; st.async)."""
    llvm.inline_asm(None, [Int32(x).ir_value(loc=loc, ip=ip) for x in (address, value, mbar, peer)],
                    "{ .reg .b32 ra, rb; mapa.shared::cluster.u32 ra, $0, $3; mapa.shared::cluster.u32 rb, $2, $3; "
                    "st.async.shared::cluster.mbarrier::complete_tx::bytes.b32 [ra], $1, [rb]; }",
                    "r,r,r,r", has_side_effects=True, is_align_stack=False, asm_dialect=llvm.AsmDialect.AD_ATT)


@dsl_user_op
def stmatrix_x4(address: Int32, r0, r1, r2, r3, *, loc=None, ip=None):
    """Four 8x8 b16 matrices to shared memory (stmatrix .x4): lane l gives the 16-byte row address of row l % 8 of
    matrix l // 8, and register i holds its two elements (row l // 4, columns 2 (l % 4) + {0, 1}) of matrix i."""
    llvm.inline_asm(None, [Int32(address).ir_value(loc=loc, ip=ip)]
                    + [Int32(x).ir_value(loc=loc, ip=ip) for x in (r0, r1, r2, r3)],
                    "stmatrix.sync.aligned.m8n8.x4.shared.b16 [$0], {$1, $2, $3, $4};", "r,r,r,r,r",
                    has_side_effects=True, is_align_stack=False, asm_dialect=llvm.AsmDialect.AD_ATT)


@dsl_user_op
def st_shared_b16(address: Int32, value: Int32, *, loc=None, ip=None):
    """shared[address .. +2 bytes] = the low 16 bits of value (a 32-bit shared-window address)."""
    llvm.inline_asm(None, [Int32(address).ir_value(loc=loc, ip=ip), Int32(value).ir_value(loc=loc, ip=ip)],
                    "{ .reg .b16 lo, hi; mov.b32 {lo, hi}, $1; st.shared.b16 [$0], lo; }", "r,r",
                    has_side_effects=True, is_align_stack=False, asm_dialect=llvm.AsmDialect.AD_ATT)


@dsl_user_op
def copy_shared_to_global_16b(src: Int32, dst: Int64, *, loc=None, ip=None):
    """global[dst .. +16] = shared[src .. +16] (both 16-byte aligned), one vector load and one vector store."""
    llvm.inline_asm(None, [Int32(src).ir_value(loc=loc, ip=ip), Int64(dst).ir_value(loc=loc, ip=ip)],
                    "{ .reg .b32 a, b, c, d; ld.shared.v4.b32 {a, b, c, d}, [$0]; "
                    "st.global.v4.b32 [$1], {a, b, c, d}; }", "r,l", has_side_effects=True, is_align_stack=False,
                    asm_dialect=llvm.AsmDialect.AD_ATT)


def swizzled_address(base, layout, coord, itemsize, swizzle):
    """Byte address of element `coord` of a swizzled shared tile: `layout` is the tile's unswizzled outer layout,
    `swizzle` its inner Swizzle (acting on byte offsets, base aligned to its period), e.g. 16-byte piece bits 4-6
    XOR row bits 7-9 for the 128-byte swizzle of make_smem_layout_a at D = 64 / 128, bits 4-5 XOR 7-8 for the
    64-byte one at D = 96. fwd_sm90's staged epilogue writes O through it, so what its TMA store (or row copy)
    reads through the real layout is what each thread wrote (tests/test_staged_epilogue.py)."""
    address = base + cute.crd2idx(coord, layout) * itemsize
    return address ^ ((address >> swizzle.num_shift) & (((1 << swizzle.num_bits) - 1) << swizzle.num_base))


@dsl_user_op
def globaltimer_lo(*, loc=None, ip=None):
    """Low 32 bits of the global nanosecond timer (timeline instrumentation)."""
    return Int32(llvm.inline_asm(T.i32(), [], "mov.u32 $0, %globaltimer_lo;", "=r", has_side_effects=True,
                                 is_align_stack=False, asm_dialect=llvm.AsmDialect.AD_ATT))


@dsl_user_op
def thread_idx_here(*, loc=None, ip=None):
    """threadIdx.x, read where it is used by an instruction the compiler may not hoist: addresses derived from it
    are then computed in place instead of being kept live (or spilled) across a loop."""
    return Int32(llvm.inline_asm(T.i32(), [], "mov.u32 $0, %tid.x;", "=r", has_side_effects=True,
                                 is_align_stack=False, asm_dialect=llvm.AsmDialect.AD_ATT))


def bulk_load_f32(dst, src, mbar, num_bytes):
    """One thread: copy num_bytes (a multiple of 16; both addresses 16-byte aligned) from global src to shared
    dst with the bulk-copy engine, completing its bytes on the transaction barrier mbar."""
    cp_async_bulk_shared_cluster_global(dst, src, mbar, num_bytes)


def make_mma_ss(dtype, tile_m, tile_n):
    """C[tile_m, tile_n] = A B^T with both operands K-major in shared memory; one m64 atom per warpgroup."""
    return sm90_utils.make_trivial_tiled_mma(
        dtype, dtype, warpgroup.OperandMajorMode.K, warpgroup.OperandMajorMode.K, Float32,
        (tile_m // 64, 1, 1), (64, tile_n))


def make_mma_rs(dtype, tile_m, tile_n, b_major=warpgroup.OperandMajorMode.MN):
    """C[tile_m, tile_n] += A B with A from registers (K-major) and B in shared memory, MN-major unless `b_major`
    says otherwise."""
    return sm90_utils.make_trivial_tiled_mma(
        dtype, dtype, warpgroup.OperandMajorMode.K, b_major, Float32,
        (tile_m // 64, 1, 1), (64, tile_n), warpgroup.OperandSource.RMEM)


def gemm_ss(tiled_mma, acc, tA, tB, a_stage, b_stage):
    """Issue acc = A B^T (zero-initialised) from smem stages; committed, not waited. Pass a freshly made
    `tiled_mma`: its ACCUMULATE field is mutable state that must not cross loop regions."""
    warpgroup.fence()
    for kb in range(cute.size(tA, mode=[2])):
        tiled_mma.set(warpgroup.Field.ACCUMULATE, kb != 0)
        cute.gemm(tiled_mma, acc, tA[None, None, kb, a_stage], tB[None, None, kb, b_stage], acc)
    warpgroup.commit_group()


def gemm_rs(tiled_mma, acc, tA, tB, b_stage, zero_init=False):
    """Issue acc += A B (zero_init: acc = A B) with A in registers, B from smem stage `b_stage`; committed, not
    waited."""
    warpgroup.fence()
    for kb in range(cute.size(tA, mode=[2])):
        tiled_mma.set(warpgroup.Field.ACCUMULATE, not zero_init or kb != 0)
        cute.gemm(tiled_mma, acc, tA[None, None, kb], tB[None, None, kb, b_stage], acc)
    warpgroup.commit_group()


@cute.jit
def owning_sequence(x: Int32, num_batch: Int32, prefix: cute.Tensor, scale: Int32):
    """Largest b < num_batch with prefix[b] * scale <= x: the sequence that owns item x of a tile space where
    sequence b's items start at prefix[b] * scale (binary search; empty sequences are skipped)."""
    lo = Int32(0)
    hi = num_batch
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if prefix[mid] * scale <= x:
            lo = mid
        else:
            hi = mid
    return lo


@cute.jit
def decode_block_tile(t: Int32, num_batch: Int32, num_heads: Int32, block_prefix: cute.Tensor):
    """Linear tile -> (sequence, head, block index r within the sequence) for bwd_dq_sm90's tile space:
    block_prefix[b] = blocks of the sequences before b, tiles = block_prefix[B] * num_heads, heads innermost."""
    head = t % num_heads
    j = t // num_heads
    b = owning_sequence(j, num_batch, block_prefix, 1)
    return b, head, j - block_prefix[b]


@cute.jit
def zero_unused_rows(m: cute.Tensor, cu: cute.Tensor, used: cute.Tensor, worker: Int32, num_workers: Int32):
    """Zero rows [cu[b] + used[b], cu[b+1]) of every slot b and rows [cu[B], total) of m [total, heads, dim];
    one warp per slot, `worker` of `num_workers` warps over the grid."""
    lane = cute.arch.lane_idx()
    num_batch = used.shape[0]
    heads, dim = m.shape[1], m.shape[2]
    row_elems = heads * dim
    zero = Float32(0.0).to(m.element_type)
    for s in cutlass.range(worker, num_batch + 1, num_workers, unroll=1):
        start = cu[num_batch]
        end = m.shape[0]
        if s < num_batch:
            start = cu[s] + used[s]
            end = cu[s + 1]
        for tok in cutlass.range(start, end, unroll=1):
            for e in cutlass.range(lane, row_elems, 32, unroll=1):
                m[tok, e // dim, e % dim] = zero


@cute.jit
def key_block_range(mask: cutlass.Constexpr, rows: Int32, tile_n: cutlass.Constexpr, m_block: Int32,
                    sq: Int32, sk: Int32, window_left: Int32, window_right: Int32):
    """[n_min, n_max) of the key blocks any query row of m-block `m_block` (queries [m_block * rows, + rows)) may
    see (the spec's n-block range; masks are bottom-right aligned, `mask` is "none", "causal" or "local")."""
    i_min = m_block * rows
    i_max = cutlass.min(sq - 1, (m_block + 1) * rows - 1)
    off = sk - sq
    lo = Int32(0)
    hi = sk - 1
    if cutlass.const_expr(mask == "causal"):
        hi = cutlass.min(hi, i_max + off)
    if cutlass.const_expr(mask == "local"):
        if window_right >= 0:
            hi = cutlass.min(hi, i_max + off + window_right)
        if window_left >= 0:
            lo = cutlass.max(lo, i_min + off - window_left)
    n_min = lo // tile_n
    n_max = n_min
    if hi >= lo:
        n_max = hi // tile_n + 1
    return n_min, n_max


@cute.jit
def mask_scores(mask: cutlass.Constexpr, rows: Int32, tile_n: cutlass.Constexpr,
                acc_S_mn: cute.Tensor, tScS_mn: cute.Tensor, n: Int32, row0: Int32, sq: Int32, sk: Int32,
                window_left: Int32, window_right: Int32, tScS0_mn: cute.Tensor):
    """-inf on the scores of keys a query row may not see (keys >= seqlen_k, the causal diagonal, window edges),
    for key block n and the tile whose row r is query row0 + r % rows (rows < tile height when GQA heads are packed
    head-major into the tile; always a power of two, so r % rows is r & (rows - 1): fwd_sm90.split_tile_row);
    skipped for blocks inside every bound (decided per block at run time).

    tScS0_mn: thread 0's coordinates (thread0_coords). A thread's column c is its column 0 plus thread 0's column c,
    so each bound is shifted once per row and every element compares against an immediate: no per-column registers
    stay live (they pushed the D=128 forward past its register budget)."""
    off = sk - sq
    col0 = n * tile_n
    need = col0 + tile_n > sk
    if cutlass.const_expr(mask == "causal"):
        need = need or (col0 + tile_n - 1 > row0 + off)
    if cutlass.const_expr(mask == "local"):
        need = need or (window_right >= 0 and col0 + tile_n - 1 > row0 + off + window_right)
        need = need or (window_left >= 0 and col0 < row0 + rows - 1 + off - window_left)
    if need:
        base = col0 + tScS_mn[0, 0][1] - tScS0_mn[0, 0][1]
        for r in cutlass.range_constexpr(cute.size(acc_S_mn, mode=[0])):
            i = row0 + (tScS_mn[r, 0][0] & (rows - 1))
            lim_hi = sk - base  # keys below lim_hi (and, for a left window, from lim_lo) of this row, from base
            if cutlass.const_expr(mask == "causal"):
                lim_hi = cutlass.min(lim_hi, i + off + 1 - base)
            if cutlass.const_expr(mask == "local"):
                if window_right >= 0:
                    lim_hi = cutlass.min(lim_hi, i + off + window_right + 1 - base)
                lim_lo = -base
                if window_left >= 0:
                    lim_lo = i + off - window_left - base
            for c in cutlass.range_constexpr(cute.size(acc_S_mn, mode=[1])):
                j = tScS0_mn[0, c][1]
                hidden = j >= lim_hi
                # Only a left window hides keys below the block's start (j >= 0): other masks skip that compare,
                # one per score on every diagonal block of causal tiles.
                if cutlass.const_expr(mask == "local"):
                    hidden = hidden or j < lim_lo
                if hidden:
                    acc_S_mn[r, c] = -Float32.inf


def tma_pipeline(barriers, stages, tx_count, ctas=1):
    """A TMA load pipeline: one producer thread issues the loads, the 8 consumer warps (2 warpgroups) release. With
    ctas = 2 the two CTAs of a cluster share every stage (each loads half of it and multicasts it to both), so a
    stage is free once the consumer warps of both have released it (lanes 0 and 1 of each warp signal one CTA
    each)."""
    return pipeline.PipelineTmaAsync.create(
        barrier_storage=barriers.data_ptr(), num_stages=stages,
        producer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, 1),
        consumer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, 8 * ctas), tx_count=tx_count,
        cta_layout_vmnk=cute.make_layout((1, ctas, 1, 1)), defer_sync=True)


def seq_major(x, d):
    """TMA view (seq, d, head) of a row-major [seq, head, d] tensor: d contiguous (a K-major operand)."""
    return cute.make_tensor(x.iterator, cute.make_layout((x.shape[0], d, x.shape[1]),
                                                         stride=(x.stride[0], 1, x.stride[1])))


def dim_major(x, d):
    """TMA view (d, seq, head) of a row-major [seq, head, d] tensor: the MN-major B operand of P V-like GEMMs."""
    return cute.make_tensor(x.iterator, cute.make_layout((d, x.shape[0], x.shape[1]),
                                                         stride=(1, x.stride[0], x.stride[1])))


@cute.jit
def softmax_scales(softmax_scale: Float32, softcap: Float32):
    """(logit_scale, tanh_in_scale, scale_log2): logits are t * logit_scale with t = tanh(s * tanh_in_scale) under
    softcap (the scale folded into tanh's argument), else t = s; exp2 takes t * scale_log2."""
    logit_scale = softmax_scale
    tanh_in_scale = Float32(1.0)
    if softcap > Float32(0.0):
        logit_scale = softcap
        tanh_in_scale = softmax_scale / softcap
    return logit_scale, tanh_in_scale, logit_scale * LOG2E


def backward_compile_args(dtype, d, grad_rows, chunked_rows=False, tile_counter=False):
    """Fake arguments of the backward kernels' host functions (bwd_dq_sm90 / bwd_dkdv_sm90 SIGNATURE):
    q, k, v, dout, lse2, dsum, cu_q, cu_k, seq_q, seq_k, block_prefix, then one gradient per entry of grad_rows
    ("q": [total_q, H, D], "k": [total_k, Hk, D], "q_accum": a float32 [H, rows, D] accumulator), then the scalars
    and the stream. lse2 / dsum are [H, total_q], or with chunked_rows [H, rows] (bwd_dkdv_sm90's chunk layout);
    tile_counter: an int32 [1] tile counter after the gradients."""
    total_q, total_k, heads, heads_kv, batch, batch1, acc_rows = (cute.sym_int() for _ in range(7))
    lse_rows = acc_rows if chunked_rows else total_q
    i32, f32 = cutlass.Int32, cutlass.Float32
    q_like = (total_q, heads, d)
    k_like = (total_k, heads_kv, d)
    shapes = {"q": (dtype, q_like), "k": (dtype, k_like), "q_accum": (f32, (heads, acc_rows, d))}
    grads = tuple(row_major(*shapes[rows], 16) for rows in grad_rows)
    return (
        row_major(dtype, q_like, 16), row_major(dtype, k_like, 16), row_major(dtype, k_like, 16),
        row_major(dtype, q_like, 16),
        row_major(f32, (heads, lse_rows), 4), row_major(f32, (heads, lse_rows), 4),
        row_major(i32, (batch1,), 4), row_major(i32, (batch1,), 4), row_major(i32, (batch,), 4),
        row_major(i32, (batch,), 4), row_major(i32, (batch1,), 4),
        *grads,
        *((row_major(i32, (1,), 4),) if tile_counter else ()),
        f32(1.0), f32(0.0), i32(-1), i32(-1), i32(1),
        make_fake_stream(),
    )
