"""SM90 (Hopper) varlen attention backward, part 1 of 2: dQ.

Why two kernels: this one owns a block of query rows and streams the key blocks it sees (dQ = sum_n dS_n K_n),
bwd_dkdv_sm90 owns a block of keys and streams the query blocks that see it. Each output is summed inside one CTA
in a fixed order: no atomics, no fp32 dQ accumulator in global memory, and gradients are bit-identical from run
to run (deterministic by construction). The price is recomputing S = Q K^T and dP = dO V^T in both kernels
(7 GEMMs instead of FlashAttention's 5).

Host-function arguments, in order (= SIGNATURE(variant); tensors compact row-major, extents dynamic except D):
    q [total_q, H, D], k [total_k, Hk, D], v [total_k, Hk, D], dout [total_q, H, D] in (dtype of the variant),
    lse2 [H, total_q] f32 in (forward LSE * log2(e); +inf where the forward LSE is -inf, so P = 0 there),
    dsum [H, total_q] f32 in (rowsum(dO * O) minus the LSE cotangent),
    cu_seqlens_q [B+1], cu_seqlens_k [B+1], seqlen_q [B], seqlen_k [B] (used lengths), block_prefix [B+1] in
    (block_prefix[b] = sum over b' < b of ceil(seqlen_q[b'] / TILE_Q)),
    dq [total_q, H, D] out,
    softmax_scale f32, softcap f32 (0 = off), window_left i32, window_right i32 (as the forward), num_ctas i32.

Math per key block (P and dS never leave registers):
    S = Q K^T, dP = dO V^T (SS wgmma);  t = tanh(S * scale / cap) with softcap, else S;
    P = exp2(t * c - lse2) with c = (cap or scale) * log2(e), 0 on masked keys;
    dS = P * (dP - dsum) * (1 - t^2 with softcap);  dQ += dS K (RS wgmma; K, loaded once K-major, is read
    MN-major through a transposed view of the same shared memory).
    Epilogue: dq = scale * dQ, rows < seqlen_q; rows no sequence uses are zeroed by the producer's idle warps.

Schedule: a static persistent grid (num_ctas CTAs, CTA c takes tiles c, c + num_ctas, ...); tile t -> (sequence,
head, m-block) through block_prefix (_sm90.decode_block_tile), the last m-block of a sequence first (under a causal
mask it sees the most keys). Producer warp 0 issues the TMA loads, consumers (2 warpgroups, 64 query rows each)
compute; both walk the same tile list, so no mailbox is needed.
"""

import cutlass
import cutlass.cute as cute
import cutlass.pipeline as pipeline
import cutlass.utils as utils
import cutlass.utils.hopper_helpers as sm90_utils
from cutlass import Float32, Int32, const_expr
from cutlass.cute.nvgpu import cpasync, warpgroup
from cutlass.tensor_utils import LayoutEnum
import cuda.bindings.driver as cuda

from jax_fa4.kernels._sm90 import (acc_as_a_layout, acc_mn, backward_compile_args, convert_packed, decode_block_tile,
                                   gemm_rs, gemm_ss, key_block_range, make_mma_rs, make_mma_ss, mask_scores, seq_major,
                                   softmax_scales, swap_first_modes, thread0_coords, tma_pipeline, zero_unused_rows)

DTYPES = {"bf16": cutlass.BFloat16, "fp16": cutlass.Float16}
HEAD_DIMS = (64, 96, 128, 192, 256)
MASKS = ("none", "causal", "local")
VARIANTS = tuple((dt, d, mk) for dt in DTYPES for d in HEAD_DIMS for mk in MASKS)
CI_VARIANTS = (("bf16", 128, "causal"),)

TILE_Q = 128  # query rows per tile (2 consumer warpgroups x 64)
TILE_K = {64: 64, 96: 64, 128: 64, 192: 32, 256: 32}  # keys per streamed block (smem: Q + dO take 128 KiB at D=256)
SMEM_BUDGET = 226 * 1024  # of the 227 KiB a CTA may use; the rest holds the barriers
MAX_STAGES = 3
NUM_THREADS = 384
PRODUCER_REGS = 24
CONSUMER_REGS = 240


def tile_config(variant):
    """Tile shape and pipeline depth of a variant (the host's block_prefix must use the same TILE_Q)."""
    dtype_name, d, _ = variant
    itemsize = DTYPES[dtype_name].width // 8
    q_bytes = 2 * TILE_Q * d * itemsize               # Q and dO
    stage_bytes = 2 * TILE_K[d] * d * itemsize        # K and V
    stages = max(1, min(MAX_STAGES, (SMEM_BUDGET - q_bytes) // stage_bytes))
    return {"tile_q": TILE_Q, "tile_k": TILE_K[d], "stages": stages, "smem_bytes": q_bytes + stages * stage_bytes}


def variant_name(variant):
    dtype_name, d, mask = variant
    return f"{dtype_name}_d{d}_{mask}"


def SIGNATURE(variant):
    return [
        ("q", "in"), ("k", "in"), ("v", "in"), ("dout", "in"), ("lse2", "in"), ("dsum", "in"),
        ("cu_q", "in"), ("cu_k", "in"), ("seq_q", "in"), ("seq_k", "in"), ("block_prefix", "in"),
        ("dq", "out"),
        ("softmax_scale", "f32"), ("softcap", "f32"), ("window_left", "i32"), ("window_right", "i32"),
        ("num_ctas", "i32"),
    ]


class BwdDqSm90:
    def __init__(self, variant):
        dtype_name, d, mask = variant
        cfg = tile_config(variant)
        self.dtype = DTYPES[dtype_name]
        self.hdim = d
        self.mask = mask
        self.tile_m = cfg["tile_q"]
        self.tile_n = cfg["tile_k"]
        self.stages = cfg["stages"]

    def make_mma_s(self):
        """S = Q K^T and dP = dO V^T: [TILE_Q, TILE_K], both operands K-major in smem."""
        return make_mma_ss(self.dtype, self.tile_m, self.tile_n)

    def make_mma_dq(self):
        """dQ += dS K: dS from registers, K MN-major in smem."""
        return make_mma_rs(self.dtype, self.tile_m, self.hdim)

    # ------------------------------------------------------------------------------------------------ host side
    @cute.jit
    def __call__(self, q: cute.Tensor, k: cute.Tensor, v: cute.Tensor, dout: cute.Tensor, lse2: cute.Tensor,
                 dsum: cute.Tensor, cu_q: cute.Tensor, cu_k: cute.Tensor, seq_q: cute.Tensor, seq_k: cute.Tensor,
                 block_prefix: cute.Tensor, dq: cute.Tensor, softmax_scale: Float32, softcap: Float32,
                 window_left: Int32, window_right: Int32, num_ctas: Int32, stream: cuda.CUstream):
        tm, tn, d = self.tile_m, self.tile_n, self.hdim
        # TMA views (seq, d, head) with d contiguous.
        mQ, mdO, mK, mV = (seq_major(x, d) for x in (q, dout, k, v))

        sQ_layout = sm90_utils.make_smem_layout_a(LayoutEnum.ROW_MAJOR, (tm, tn, d), self.dtype, 1)
        sK_layout = sm90_utils.make_smem_layout_b(LayoutEnum.ROW_MAJOR, (tm, tn, d), self.dtype, self.stages)
        sQ_one = cute.slice_(sQ_layout, (None, None, 0))
        sK_one = cute.slice_(sK_layout, (None, None, 0))
        self.q_bytes = 2 * cute.size_in_bytes(self.dtype, sQ_one)
        self.kv_bytes = 2 * cute.size_in_bytes(self.dtype, sK_one)

        g2s = cpasync.CopyBulkTensorTileG2SOp()
        tma_q, tma_mQ = cpasync.make_tiled_tma_atom(g2s, mQ, sQ_one, (tm, d))
        tma_do, tma_mdO = cpasync.make_tiled_tma_atom(g2s, mdO, sQ_one, (tm, d))
        tma_k, tma_mK = cpasync.make_tiled_tma_atom(g2s, mK, sK_one, (tn, d))
        tma_v, tma_mV = cpasync.make_tiled_tma_atom(g2s, mV, sK_one, (tn, d))

        @cute.struct
        class SharedStorage:
            mbar_q: cute.struct.MemRange[cutlass.Int64, 2]
            mbar_kv: cute.struct.MemRange[cutlass.Int64, 2 * self.stages]
            sQ: cute.struct.Align[cute.struct.MemRange[self.dtype, cute.cosize(sQ_layout)], 1024]
            sdO: cute.struct.Align[cute.struct.MemRange[self.dtype, cute.cosize(sQ_layout)], 1024]
            sK: cute.struct.Align[cute.struct.MemRange[self.dtype, cute.cosize(sK_layout)], 1024]
            sV: cute.struct.Align[cute.struct.MemRange[self.dtype, cute.cosize(sK_layout)], 1024]

        self.shared_storage = SharedStorage
        self.kernel(tma_q, tma_mQ, tma_do, tma_mdO, tma_k, tma_mK, tma_v, tma_mV, lse2, dsum, dq, cu_q, cu_k,
                    seq_q, seq_k, block_prefix, softmax_scale, softcap, window_left, window_right,
                    self.make_mma_s(), self.make_mma_dq(), sQ_layout,
                    sK_layout).launch(grid=[num_ctas, 1, 1], block=[NUM_THREADS, 1, 1], stream=stream,
                                      min_blocks_per_mp=1)

    # ---------------------------------------------------------------------------------------------- device side
    @cute.kernel
    def kernel(self, tma_q: cute.CopyAtom, mQ: cute.Tensor, tma_do: cute.CopyAtom, mdO: cute.Tensor,
               tma_k: cute.CopyAtom, mK: cute.Tensor, tma_v: cute.CopyAtom, mV: cute.Tensor, mLSE2: cute.Tensor,
               mDsum: cute.Tensor, mdQ: cute.Tensor, cu_q: cute.Tensor, cu_k: cute.Tensor, seq_q: cute.Tensor,
               seq_k: cute.Tensor, block_prefix: cute.Tensor, softmax_scale: Float32, softcap: Float32,
               window_left: Int32, window_right: Int32,
               tiled_mma_s: cute.TiledMma, tiled_mma_dq: cute.TiledMma, sQ_layout: cute.ComposedLayout,
               sK_layout: cute.ComposedLayout):
        tidx, _, _ = cute.arch.thread_idx()
        warp_idx = cute.arch.make_warp_uniform(cute.arch.warp_idx())
        if warp_idx == 0:
            for atom in (tma_q, tma_do, tma_k, tma_v):
                cpasync.prefetch_descriptor(atom)

        smem = utils.SmemAllocator()
        storage = smem.allocate(self.shared_storage)
        pipe_q = tma_pipeline(storage.mbar_q, 1, self.q_bytes)
        pipe_kv = tma_pipeline(storage.mbar_kv, self.stages, self.kv_bytes)
        cute.arch.mbarrier_init_fence()
        cute.arch.sync_threads()

        sQ = storage.sQ.get_tensor(sQ_layout.outer, swizzle=sQ_layout.inner)
        sdO = storage.sdO.get_tensor(sQ_layout.outer, swizzle=sQ_layout.inner)
        sK = storage.sK.get_tensor(sK_layout.outer, swizzle=sK_layout.inner)
        sV = storage.sV.get_tensor(sK_layout.outer, swizzle=sK_layout.inner)

        if warp_idx < 4:
            cute.arch.setmaxregister_decrease(PRODUCER_REGS)
            if warp_idx == 0:
                self.producer(tma_q, mQ, tma_do, mdO, tma_k, mK, tma_v, mV, sQ, sdO, sK, sV, pipe_q, pipe_kv, cu_q,
                              cu_k, seq_q, seq_k, block_prefix, window_left, window_right)
            else:
                zero_unused_rows(mdQ, cu_q, seq_q, cute.arch.block_idx()[0] * 3 + warp_idx - 1,
                                 cute.arch.grid_dim()[0] * 3)
        else:
            cute.arch.setmaxregister_increase(CONSUMER_REGS)
            self.consumer(tiled_mma_s, tiled_mma_dq, sQ, sdO, sK, sV, pipe_q, pipe_kv, mLSE2, mDsum, mdQ,
                          cu_q, seq_q, seq_k, block_prefix, softmax_scale, softcap, window_left, window_right,
                          tidx - 128)

    @cute.jit
    def tile_at(self, t: Int32, seq_q: cute.Tensor, num_heads: Int32, block_prefix: cute.Tensor):
        b, head, r = decode_block_tile(t, seq_q.shape[0], num_heads, block_prefix)
        m_block = block_prefix[b + 1] - block_prefix[b] - 1 - r
        return b, head, m_block

    # ---------------------------------------------------------------------------------------------- producer
    @cute.jit
    def producer(self, tma_q, mQ, tma_do, mdO, tma_k, mK, tma_v, mV, sQ, sdO, sK, sV, pipe_q, pipe_kv, cu_q, cu_k,
                 seq_q, seq_k, block_prefix, window_left, window_right):
        num_heads = mQ.shape[2]
        qhead_per_kv = num_heads // mK.shape[2]
        total_tiles = block_prefix[seq_q.shape[0]] * num_heads
        q_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, 1)
        kv_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, self.stages)
        for t in cutlass.range(cute.arch.block_idx()[0], total_tiles, cute.arch.grid_dim()[0], unroll=1):
            b, head, m_block = self.tile_at(t, seq_q, num_heads, block_prefix)
            off_q = cu_q[b]
            off_k = cu_k[b]
            n_min, n_max = key_block_range(self.mask, self.tile_m, self.tile_n, m_block, seq_q[b], seq_k[b],
                                           window_left, window_right)
            if n_max > n_min:
                head_kv = head // qhead_per_kv
                gQ = cute.local_tile(cute.domain_offset((off_q, 0, 0), mQ)[None, None, head],
                                     (self.tile_m, self.hdim), (m_block, 0))
                gdO = cute.local_tile(cute.domain_offset((off_q, 0, 0), mdO)[None, None, head],
                                      (self.tile_m, self.hdim), (m_block, 0))
                gK = cute.local_tile(cute.domain_offset((off_k, 0, 0), mK)[None, None, head_kv],
                                     (self.tile_n, self.hdim), (None, 0))
                gV = cute.local_tile(cute.domain_offset((off_k, 0, 0), mV)[None, None, head_kv],
                                     (self.tile_n, self.hdim), (None, 0))
                one = cute.make_layout(1)
                tQs, tQg = cpasync.tma_partition(tma_q, 0, one, cute.group_modes(sQ, 0, 2), cute.group_modes(gQ, 0, 2))
                tdOs, tdOg = cpasync.tma_partition(tma_do, 0, one, cute.group_modes(sdO, 0, 2),
                                                   cute.group_modes(gdO, 0, 2))
                tKs, tKg = cpasync.tma_partition(tma_k, 0, one, cute.group_modes(sK, 0, 2), cute.group_modes(gK, 0, 2))
                tVs, tVg = cpasync.tma_partition(tma_v, 0, one, cute.group_modes(sV, 0, 2), cute.group_modes(gV, 0, 2))
                pipe_q.producer_acquire(q_state)
                bar = pipe_q.producer_get_barrier(q_state)
                cute.copy(tma_q, tQg, tQs[None, 0], tma_bar_ptr=bar)
                cute.copy(tma_do, tdOg, tdOs[None, 0], tma_bar_ptr=bar)
                q_state.advance()
                for i in cutlass.range(n_max - n_min, unroll=1):
                    n = n_max - 1 - i
                    pipe_kv.producer_acquire(kv_state)
                    bar = pipe_kv.producer_get_barrier(kv_state)
                    cute.copy(tma_k, tKg[None, n], tKs[None, kv_state.index], tma_bar_ptr=bar)
                    cute.copy(tma_v, tVg[None, n], tVs[None, kv_state.index], tma_bar_ptr=bar)
                    kv_state.advance()

    # ---------------------------------------------------------------------------------------------- consumer
    @cute.jit
    def consumer(self, tiled_mma_s, tiled_mma_dq, sQ, sdO, sK, sV, pipe_q, pipe_kv, mLSE2, mDsum, mdQ, cu_q,
                 seq_q, seq_k, block_prefix, softmax_scale: Float32, softcap: Float32, window_left: Int32,
                 window_right: Int32, tidx: Int32):
        tm, tn = self.tile_m, self.tile_n
        num_heads = mdQ.shape[1]
        total_tiles = block_prefix[seq_q.shape[0]] * num_heads
        wg = cute.arch.make_warp_uniform(tidx // 128)
        wg_layout = cute.make_layout(tm // 64, stride=128)
        wg_s = tiled_mma_s.get_slice(wg_layout(wg))
        wg_dq = tiled_mma_dq.get_slice(wg_layout(wg))
        thr_s = tiled_mma_s.get_slice(tidx)
        thr_dq = tiled_mma_dq.get_slice(tidx)

        tSrQ = tiled_mma_s.make_fragment_A(wg_s.partition_A(sQ))
        tSrdO = tiled_mma_s.make_fragment_A(wg_s.partition_A(sdO))
        tSrK = tiled_mma_s.make_fragment_B(wg_s.partition_B(sK))
        tSrV = tiled_mma_s.make_fragment_B(wg_s.partition_B(sV))
        tdQrKt = tiled_mma_dq.make_fragment_B(wg_dq.partition_B(swap_first_modes(sK)))
        acc_S = thr_s.make_fragment_C(thr_s.partition_shape_C((tm, tn)))
        acc_dP = thr_s.make_fragment_C(thr_s.partition_shape_C((tm, tn)))
        acc_dQ = thr_dq.make_fragment_C(thr_dq.partition_shape_C((tm, self.hdim)))
        tdS = cute.make_rmem_tensor(acc_as_a_layout(acc_S.layout), self.dtype)
        acc_S_mn = acc_mn(acc_S)
        acc_dP_mn = acc_mn(acc_dP)
        acc_dQ_mn = acc_mn(acc_dQ)
        tScS_mn = acc_mn(thr_s.partition_C(cute.make_identity_tensor((tm, tn))))
        tdQcdQ_mn = acc_mn(thr_dq.partition_C(cute.make_identity_tensor((tm, self.hdim))))
        num_rows = cute.size(acc_S_mn, mode=[0])
        row_lse2 = cute.make_rmem_tensor(cute.make_layout(num_rows), Float32)
        row_dsum = cute.make_rmem_tensor(cute.make_layout(num_rows), Float32)

        logit_scale, tanh_in_scale, scale_log2 = softmax_scales(softmax_scale, softcap)

        q_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, 1)
        kv_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, self.stages)
        for t in cutlass.range(cute.arch.block_idx()[0], total_tiles, cute.arch.grid_dim()[0], unroll=1):
            b, head, m_block = self.tile_at(t, seq_q, num_heads, block_prefix)
            off_q = cu_q[b]
            sq = seq_q[b]
            sk = seq_k[b]
            row0 = m_block * tm
            n_min, n_max = key_block_range(self.mask, self.tile_m, self.tile_n, m_block, sq, sk, window_left,
                                           window_right)
            acc_dQ.fill(0.0)
            if n_max > n_min:
                for r in cutlass.range_constexpr(num_rows):
                    i = row0 + tScS_mn[r, 0][0]
                    row_lse2[r] = Float32.inf
                    row_dsum[r] = Float32(0.0)
                    if i < sq:
                        row_lse2[r] = mLSE2[head, off_q + i]
                        row_dsum[r] = mDsum[head, off_q + i]
                pipe_q.consumer_wait(q_state)
                for it in cutlass.range(n_max - n_min, unroll=1):
                    n = n_max - 1 - it
                    pipe_kv.consumer_wait(kv_state)
                    gemm_ss(self.make_mma_s(), acc_S, tSrQ, tSrK, 0, kv_state.index)
                    gemm_ss(self.make_mma_s(), acc_dP, tSrdO, tSrV, 0, kv_state.index)
                    warpgroup.wait_group(0)
                    self.scores_to_ds(acc_S, acc_S_mn, acc_dP_mn, tScS_mn, row_lse2, row_dsum, n, row0, sq, sk,
                                      window_left, window_right, softcap, tanh_in_scale, scale_log2)
                    convert_packed(acc_dP, tdS)
                    gemm_rs(self.make_mma_dq(), acc_dQ, tdS, tdQrKt, kv_state.index)
                    warpgroup.wait_group(0)
                    pipe_kv.consumer_release(kv_state)
                    kv_state.advance()
                pipe_q.consumer_release(q_state)
                q_state.advance()
            # dq = scale * dQ for rows < seqlen_q (zeros for rows that see no key).
            for r in cutlass.range_constexpr(cute.size(acc_dQ_mn, mode=[0])):
                i = row0 + tdQcdQ_mn[r, 0][0]
                if i < sq:
                    for c in cutlass.range_constexpr(cute.size(acc_dQ_mn, mode=[1])):
                        mdQ[off_q + i, head, tdQcdQ_mn[0, c][1]] = (acc_dQ_mn[r, c] * softmax_scale).to(
                            mdQ.element_type)

    @cute.jit
    def scores_to_ds(self, acc_S, acc_S_mn, acc_dP_mn, tScS_mn, row_lse2, row_dsum, n, row0, sq, sk, window_left,
                     window_right, softcap, tanh_in_scale, scale_log2):
        """acc_dP <- dS = P (dP - dsum) [(1 - t^2)], with P = exp2(t c - lse2) and 0 on masked keys."""
        if softcap > Float32(0.0):
            for e in cutlass.range_constexpr(cute.size(acc_S)):
                acc_S[e] = cute.math.tanh(acc_S[e] * tanh_in_scale)
        mask_scores(self.mask, self.tile_m, self.tile_n, acc_S_mn, tScS_mn, n, row0, sq, sk, window_left,
                    window_right, thread0_coords(self.make_mma_s(), (self.tile_m, self.tile_n)))
        if softcap > Float32(0.0):
            self.ds_elements(acc_S_mn, acc_dP_mn, row_lse2, row_dsum, scale_log2, True)
        else:
            self.ds_elements(acc_S_mn, acc_dP_mn, row_lse2, row_dsum, scale_log2, False)

    @cute.jit
    def ds_elements(self, acc_S_mn, acc_dP_mn, row_lse2, row_dsum, scale_log2: Float32,
                    softcapped: cutlass.Constexpr):
        """The element loop of scores_to_ds, compiled once per softcap case (with the softcap test inside it,
        ptxas computed the softcap factor for every element and applied it predicated; bwd_dkdv_sm90.p_and_ds)."""
        for r in cutlass.range_constexpr(cute.size(acc_S_mn, mode=[0])):
            for c in cutlass.range_constexpr(cute.size(acc_S_mn, mode=[1])):
                x = acc_S_mn[r, c]
                p = cute.math.exp2(x * scale_log2 - row_lse2[r], fastmath=True)
                ds = p * (acc_dP_mn[r, c] - row_dsum[r])
                if const_expr(softcapped):
                    tc = cute.arch.fmax(x, Float32(-1.0))  # masked keys hold -inf; tanh values lie in [-1, 1]
                    ds = ds * (Float32(1.0) - tc * tc)
                acc_dP_mn[r, c] = ds


def compile_variant(variant, arch):
    if variant not in VARIANTS:
        raise ValueError(f"unsupported bwd_dq_sm90 variant {variant!r}; supported: dtype in {tuple(DTYPES)}, "
                         f"head_dim in {HEAD_DIMS}, mask in {MASKS}")
    dtype_name, d, _ = variant
    args = backward_compile_args(DTYPES[dtype_name], d, ("q",))
    return cute.compile(BwdDqSm90(variant), *args, options=f"--gpu-arch {arch}")
