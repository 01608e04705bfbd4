"""Combine kernel: merges split-KV partial outputs by their log-sum-exp (CuTe DSL, any architecture).

Why: a sequence whose keys are split across CTAs gets one fp32 partial output and LSE per split; the final row is
    lse = log(sum_s exp(lse_s)),  o = sum_s exp(lse_s - lse) * o_s.
Sequences with one split were written directly by the forward kernel, so their rows are skipped here (the forward's
output buffer is updated in place, aliased through the FFI call). The same kernel, with every row marked as split
into `n` pieces, is the merge step of ring / context-parallel attention.

Layouts: o_partial [S, total_q, H, Dv] f32, lse_partial [S, H, total_q] f32, o [total_q, H, Dv], lse [H, total_q] f32.
One warp merges one (token, head) row; lanes stride over Dv so loads are coalesced. A row whose partial LSEs are all
-inf (no visible key) gets o = 0 and lse = -inf.
"""

import math

import cutlass
import cutlass.cute as cute
from cutlass.cute.runtime import make_fake_stream
import cuda.bindings.driver as cuda

from jax_fa4.kernels._abi import dynamic_dims, row_major

DTYPES = {"bf16": cutlass.BFloat16, "fp16": cutlass.Float16, "f32": cutlass.Float32}
VARIANTS = ("bf16", "fp16", "f32")
CI_VARIANTS = ("bf16",)
WARPS_PER_CTA = 4
LOG2E = math.log2(math.e)


def SIGNATURE(variant):
    return [
        ("o_partial", "in"), ("lse_partial", "in"), ("cu_seqlens_q", "in"), ("seqlen_q", "in"),
        ("num_splits", "in"), ("o", "inout"), ("lse", "inout"), ("num_ctas", "i32"),
    ]


def variant_name(variant):
    return variant


@cute.kernel
def _combine_kernel(o_partial: cute.Tensor, lse_partial: cute.Tensor, cu_seqlens_q: cute.Tensor,
                    seqlen_q: cute.Tensor, num_splits: cute.Tensor, o: cute.Tensor, lse: cute.Tensor):
    tidx, _, _ = cute.arch.thread_idx()
    bidx, _, _ = cute.arch.block_idx()
    gdim, _, _ = cute.arch.grid_dim()
    warp = tidx // 32
    lane = tidx % 32
    num_heads = o.shape[1]
    head_dim_v = o.shape[2]
    batch = seqlen_q.shape[0]
    total_rows = o.shape[0] * num_heads
    valid_tokens = cu_seqlens_q[batch]

    for row in cutlass.range(bidx * WARPS_PER_CTA + warp, total_rows, gdim * WARPS_PER_CTA):
        token = row // num_heads
        head = row % num_heads
        if token < valid_tokens:
            # Sequence of this token: the largest b with cu_seqlens_q[b] <= token (skips empty sequences).
            lo = cutlass.Int32(0)
            hi = batch
            for _ in cutlass.range(32):
                if hi - lo > 1:
                    mid = (lo + hi) // 2
                    if cu_seqlens_q[mid] <= token:
                        lo = mid
                    else:
                        hi = mid
            splits = num_splits[lo]
            if splits > 1 and token - cu_seqlens_q[lo] < seqlen_q[lo]:
                lse_max = cutlass.Float32(-math.inf)
                for s in cutlass.range(splits):
                    lse_max = cute.arch.fmax(lse_max, lse_partial[s, head, token])
                if lse_max == cutlass.Float32(-math.inf):
                    for d in cutlass.range(lane, head_dim_v, 32):
                        o[token, head, d] = cutlass.Float32(0.0).to(o.element_type)
                    if lane == 0:
                        lse[head, token] = cutlass.Float32(-math.inf)
                else:
                    total = cutlass.Float32(0.0)
                    for s in cutlass.range(splits):
                        total += cute.math.exp2((lse_partial[s, head, token] - lse_max) * LOG2E)
                    lse_final = lse_max + cute.math.log(total)
                    for d in cutlass.range(lane, head_dim_v, 32):
                        acc = cutlass.Float32(0.0)
                        for s in cutlass.range(splits):
                            weight = cute.math.exp2((lse_partial[s, head, token] - lse_final) * LOG2E)
                            acc += weight * o_partial[s, token, head, d]
                        o[token, head, d] = acc.to(o.element_type)
                    if lane == 0:
                        lse[head, token] = lse_final


@cute.jit
def _combine(o_partial: cute.Tensor, lse_partial: cute.Tensor, cu_seqlens_q: cute.Tensor, seqlen_q: cute.Tensor,
             num_splits: cute.Tensor, o: cute.Tensor, lse: cute.Tensor, num_ctas: cutlass.Int32,
             stream: cuda.CUstream):
    _combine_kernel(o_partial, lse_partial, cu_seqlens_q, seqlen_q, num_splits, o, lse).launch(
        grid=[num_ctas, 1, 1], block=[32 * WARPS_PER_CTA, 1, 1], stream=stream)


def compile_variant(variant, arch):
    dtype = DTYPES[variant]
    splits, total_q, heads, dv, batch, batch1 = dynamic_dims(6)
    f32 = cutlass.Float32
    i32 = cutlass.Int32
    args = (
        row_major(f32, (splits, total_q, heads, dv), 4),
        row_major(f32, (splits, heads, total_q), 4),
        row_major(i32, (batch1,), 4),
        row_major(i32, (batch,), 4),
        row_major(i32, (batch,), 4),
        row_major(dtype, (total_q, heads, dv), 2),
        row_major(f32, (heads, total_q), 4),
        i32(1),
        make_fake_stream(),
    )
    return cute.compile(_combine, *args, options=f"--gpu-arch {arch}")
