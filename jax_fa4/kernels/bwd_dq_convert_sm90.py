"""dQ of the atomic backward: bwd_dkdv_sm90's float32 accumulator, unpermuted, scaled and cast (SM90 layout).

Why a kernel: bwd_dkdv_sm90's "dkdvdq" / "dkdq" passes add dQ (or dQ^T) into dq_accum in wgmma register
order (each thread's four floats of one column block side by side, so its vector reductions fill whole cache
lines). Undone by an XLA fusion (kernel_backend.dq_from_accum, still the host twin the tests compare against), the
read of 4 bytes per element scattered over 16-byte groups ran at 2.5 TB/s: 322 us of packed-train's 4.4 ms
forward + backward (H200). Here each CTA reads one chunk (one query block of one head: 64 rows, 32 at D >= 192)
in 16-byte pieces as it was written, moves it through shared memory as 16-bit values (in pairs where the four
floats hold two column pairs, one by one for dQ^T), and writes whole rows of dq in 16-byte pieces.

Host-function arguments, in order (= SIGNATURE(variant); tensors compact row-major, extents dynamic except D):
    dq_accum [H, rows, D] f32 in (chunk k of head h = the T * D floats at row k T, T = TILE_Q[D]; within it,
    warpgroup u's half (T D / 2 floats) holds its register 4 c + 2 e + j of thread t = 32 w + 4 r + l at float
    u T D / 2 + 512 c + 4 t + 2 e + j: accum_cells says which row and column that is),
    chunk_start [rows / TILE_Q] i32 in (packed row of the chunk's row 0), chunk_used [rows / TILE_Q] i32 in (rows of
    the chunk that belong to a sequence, 0 for padding chunks), cu_q [B+1] i32 in, seq_q [B] i32 in (used lengths),
    dq [total_q, H, D] out (rows no sequence uses are zeroed), softmax_scale f32 (dq = scale * accumulator),
    num_ctas i32 (grid; CTAs stride over the (chunk, head) items).
"""

import cutlass
import cutlass.cute as cute
import cutlass.utils as utils
from cutlass import Float32, Int32, Int64
from cutlass.cute.runtime import make_fake_stream
import cuda.bindings.driver as cuda

from jax_fa4.kernels import bwd_dkdv_sm90
from jax_fa4.kernels._abi import dynamic_dims, row_major
from jax_fa4.kernels._sm90 import copy_shared_to_global_16b, ld_global_f32x4, pack_pair, st_shared_b16, \
    st_shared_b32, zero_unused_rows

DTYPES = {"bf16": cutlass.BFloat16, "fp16": cutlass.Float16}
# whose dQ it converts: the head dims with a pass that adds dQ
HEAD_DIMS = tuple(d for d, passes in bwd_dkdv_sm90.PASSES.items() if set(passes) & set(bwd_dkdv_sm90.DQ_PASSES))
VARIANTS = tuple((dt, d) for dt in DTYPES for d in HEAD_DIMS)
CI_VARIANTS = (("bf16", 128),)
TILE_Q = {d: bwd_dkdv_sm90.TILE_Q[d] for d in HEAD_DIMS}  # rows per chunk: the backward's query block
THREADS = 256


def SIGNATURE(variant):
    return [
        ("dq_accum", "in"), ("chunk_start", "in"), ("chunk_used", "in"), ("cu_q", "in"), ("seq_q", "in"),
        ("dq", "out"), ("softmax_scale", "f32"), ("num_ctas", "i32"),
    ]


def variant_name(variant):
    dtype, d = variant
    return f"{dtype}_d{d}"


def accum_cells(f, d):
    """(row, column) in the chunk of floats f .. f + 3 (f a multiple of 4) of dq_accum's register order. Works
    on ints and DSL integers. Warpgroup u's thread t = 32 w + 4 r + l holds, in registers 4 c .. 4 c + 3 of an
    m64 wgmma accumulator, its rows 16 w + r and + 8 at columns 8 c + 2 l and + 1. For dQ (D <= 128) the rows
    are queries and warpgroup u has columns [u D / 2, (u + 1) D / 2); for dQ^T they are head dims, with the
    warpgroups on alternate 64-row blocks where D is a multiple of 128 (c = 4 m + n: block 2 m + u, query
    column block n), else on the two 16-query halves (c = 2 m + n: block m, query column block 2 u + n)."""
    tq = TILE_Q[d]
    u = f // (tq * d // 2)
    g = f % (tq * d // 2)
    c = g // 512
    t = (g % 512) // 4
    r = 16 * (t // 32) + (t % 32) // 4
    col = 2 * (t % 4)
    if not bwd_dkdv_sm90.dq_transposed(d):  # d is a Python int: decided at trace time
        col = col + u * (d // 2) + 8 * c
        return [(r, col), (r, col + 1), (r + 8, col), (r + 8, col + 1)]
    if bwd_dkdv_sm90.dq_atoms(d)[0] == 2:
        dim = 128 * (c // (tq // 8)) + 64 * u + r
        q = col + 8 * (c % (tq // 8))
    else:
        dim = 64 * (c // (tq // 16)) + r
        q = col + (tq // 2) * u + 8 * (c % (tq // 16))
    return [(q, dim), (q + 1, dim), (q, dim + 8), (q + 1, dim + 8)]


def stage_word(base, row, pair, d):
    """Shared byte address of 16-bit pair `pair` of chunk row `row` (D / 2 words a row). The pair's 16-byte group
    is XORed with row % 8 (D / 8 groups a row, a multiple of 8), or with (row % 8) // 2 at D = 96 (12 groups: odd
    rows already sit 16 banks over, and the XOR stays within aligned blocks of 4 groups), so the eight rows one
    warp's store touches fall in different banks."""
    shift = 0 if (d // 8) % 8 == 0 else 1
    return base + (row * (d // 2) + (pair ^ (((row % 8) >> shift) * 4))) * 4


@cute.kernel
def _convert_kernel(acc: cute.Tensor, chunk_start: cute.Tensor, chunk_used: cute.Tensor, cu_q: cute.Tensor,
                    seq_q: cute.Tensor, dq: cute.Tensor, softmax_scale: Float32):
    tidx, _, _ = cute.arch.thread_idx()
    bidx, _, _ = cute.arch.block_idx()
    gdim, _, _ = cute.arch.grid_dim()
    d = cutlass.const_expr(dq.shape[2])
    heads = acc.shape[0]
    rows = acc.shape[1]
    chunks = chunk_start.shape[0]
    smem = utils.SmemAllocator()
    tq = cutlass.const_expr(TILE_Q[d])
    stage = smem.allocate_tensor(Int32, cute.make_layout(tq * d // 2), byte_alignment=16)
    base = stage.iterator.toint()
    loads = tq * d // 4 // THREADS  # 16-byte pieces a thread reads per chunk
    pieces = d // 8  # 16-byte pieces of one dq row
    for item in cutlass.range(bidx, chunks * heads, gdim, unroll=1):
        chunk = item // heads
        head = item % heads
        used = chunk_used[chunk]
        if used > 0:
            src = (acc.iterator + (Int64(head) * rows + chunk * tq) * d).toint()
            values = [ld_global_f32x4(src + (j * THREADS + tidx) * 16) for j in range(loads)]
            for j in cutlass.range_constexpr(loads):
                cells = accum_cells((j * THREADS + tidx) * 4, d)
                a = values[j]
                if cutlass.const_expr(bwd_dkdv_sm90.dq_transposed(d)):  # four rows, one column: 16-bit stores
                    for i in cutlass.range_constexpr(4):
                        row, col = cells[i]
                        st_shared_b16(stage_word(base, row, col // 2, d) + 2 * (col % 2),
                                      pack_pair(a[i] * softmax_scale, Float32(0.0), dq.element_type))
                else:  # two rows, a column pair each
                    for i in cutlass.range_constexpr(0, 4, 2):
                        row, col = cells[i]
                        st_shared_b32(stage_word(base, row, col // 2, d),
                                      pack_pair(a[i] * softmax_scale, a[i + 1] * softmax_scale, dq.element_type))
            cute.arch.sync_threads()
            start = chunk_start[chunk]
            for k in cutlass.range_constexpr(tq * pieces // THREADS):
                p = k * THREADS + tidx
                row = p // pieces
                piece = p % pieces
                if row < used:
                    dst = (dq.iterator + (Int64(start + row) * heads + head) * d + piece * 8).toint()
                    copy_shared_to_global_16b(stage_word(base, row, 4 * piece, d), dst)
            cute.arch.sync_threads()
    warps = THREADS // 32
    zero_unused_rows(dq, cu_q, seq_q, bidx * warps + tidx // 32, gdim * warps)


@cute.jit
def _convert(dq_accum: cute.Tensor, chunk_start: cute.Tensor, chunk_used: cute.Tensor, cu_q: cute.Tensor,
             seq_q: cute.Tensor, dq: cute.Tensor, softmax_scale: Float32, num_ctas: Int32, stream: cuda.CUstream):
    _convert_kernel(dq_accum, chunk_start, chunk_used, cu_q, seq_q, dq, softmax_scale).launch(
        grid=[num_ctas, 1, 1], block=[THREADS, 1, 1], stream=stream)


def compile_variant(variant, arch):
    dtype, d = variant
    heads, rows, chunks, total_q, batch, batch1 = dynamic_dims(6)
    args = (
        row_major(Float32, (heads, rows, d), 16),
        row_major(Int32, (chunks,), 4),
        row_major(Int32, (chunks,), 4),
        row_major(Int32, (batch1,), 4),
        row_major(Int32, (batch,), 4),
        row_major(DTYPES[dtype], (total_q, heads, d), 16),
        Float32(1.0),
        Int32(1),
        make_fake_stream(),
    )
    return cute.compile(_convert, *args, options=f"--gpu-arch {arch}")
