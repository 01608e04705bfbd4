"""SM90 (Hopper) varlen attention backward: dK and dV, and in its "dkdvdq" / "dkdq" passes dQ too.

A CTA owns a block of TILE_K keys of one KV head and streams, for every query head sharing that KV head (GQA),
the query blocks that can see those keys; dK and dV are summed in registers over all of them in a fixed order and
written once. The "dkdv" / "dk" / "dv" passes leave dQ to bwd_dq_sm90 (no atomics: bit-identical gradients, at the
price of recomputing S and dP there, 7 GEMMs per block pair). The "dkdvdq" pass also computes dQ = dS K for each
query block and adds it into a zeroed float32 accumulator with vector reductions (5 GEMMs per block pair; the order
of the additions, so dQ's last bits, varies from run to run); the caller unpermutes, scales and casts it. At
D = 192 / 256, where dK and dV do not fit the registers together, the "dkdq" pass adds dQ beside dK and the "dv"
pass makes dV (6 GEMMs per block pair instead of the deterministic path's 8): fwd+bwd kernel time -8 to -10 % at
D = 256 (dense 4x8192 causal and full), -6 % on packed-train, -2.4 % at D = 192 causal (H200). The "dv" pass holds
only dV's accumulator and reads no V, so it streams 64-query blocks where the others take 32 (TILE_Q_DV): its kernel
time -18 % at D = 192, fwd+bwd -3 to -4 % more.

Host-function arguments, in order (= SIGNATURE(variant); tensors compact row-major, extents dynamic except D):
    q [total_q, H, D], k [total_k, Hk, D], v [total_k, Hk, D], dout [total_q, H, D] in,
    lse2 [H, rows] f32 in, dsum [H, rows] f32 in (bwd_dq_sm90's values in the chunk layout below: the TILE_Q
    values of query block m of sequence b at row (cu_q[b] + b TILE_Q) // TILE_Q * TILE_Q + m TILE_Q, +inf / 0
    where no used query row lands; kernel_backend.to_chunk_rows), so the producer brings them in with the block's
    Q and dO as two aligned bulk copies and the consumers read them from shared memory,
    cu_seqlens_q [B+1], cu_seqlens_k [B+1], seqlen_q [B], seqlen_k [B] (used lengths), block_prefix [B+1] in,
    ticket_order [B] in (the sequences in the order they take tickets, longest first; block_prefix[j] = sum over
    j' < j of ceil(seqlen_k[ticket_order[j']] / TICKET_KEYS): pairs of key blocks),
    dk [total_k, Hk, D] out, dv [total_k, Hk, D] out (a "dk" / "dv" pass variant writes only that one),
    "dkdvdq" / "dkdq" only: dq_accum [H, rows, D] f32, zeroed by the caller: query block m of sequence b is added to the
    TILE_Q * D floats at the same row of head h (chunks of different sequences never overlap), in register order
    (bwd_dq_convert_sm90 undoes it, scales and casts; kernel_backend.dq_from_accum is its XLA twin),
    tile_counter [1] i32, zeroed by the caller (the tile tickets),
    softmax_scale f32, softcap f32 (0 = off), window_left i32, window_right i32, num_ctas i32.

Math per query block, all transposed so that P^T and dS^T are register A operands:
    S^T = K Q^T, dP^T = V dO^T (SS wgmma); P^T = exp2(t c - lse2) (0 where masked; lse2 = +inf past seqlen_q).
    lse2 / dsum come from shared memory: loading them from global memory inside the loop (32 predicated loads per
    thread and block, held in 32 registers across the GEMMs) made the dkdvdq pass 23 % slower (6.91 vs 5.62 ms,
    causal 4x8192, H200);
    dS^T = P^T (dP^T - dsum) [(1 - t^2)]; dV += P^T dO, dK += dS^T Q (RS wgmma; Q and dO are loaded once,
    K-major, and read MN-major through a transposed view of the same shared memory).
    dkdvdq: dS^T goes to shared memory (two buffers), each warpgroup computes one half of D of dQ = dS K (SS
    wgmma; issued before dK's) and adds its accumulator registers to dq_accum with 16-byte vector reductions
    (red.global.add.v4.f32) while dK's GEMM runs. dQ runs one query block late: block m's GEMM is issued
    in block m + 1, and the buffers pass between the warpgroups through a two-slot mbarrier pipeline instead of a
    barrier of both warpgroups per block, so neither waits for the other unless one falls a block behind. Backward
    kernel time -1.8 to -2.8 %, fwd+bwd sustained -0.8 % (D = 128 dense 4x8192 full, H200,
    benchmarks/results/h200-2026-12-04e/). Taking the S^T / dP^T GEMMs in turns on top of that was level.
    dkdq: the same with dQ^T = K^T dS^T (32-query blocks are too short to be an m64 wgmma's rows), the warpgroups
    on alternate 64-row blocks of D (D = 256) or on the two 16-query halves (D = 192); dq_accum holds dQ^T's
    registers in the same register order (bwd_dq_convert_sm90.accum_cells). Only 8-10 % faster at D = 256 for a
    quarter fewer GEMMs; the likely limit (counted, not profiled): with 32-query blocks each SS wgmma re-reads a
    64-key operand for half the work of a 64-query block, ~38 bytes of shared memory per kFLOP against ~24 in the
    D = 128 dkdvdq pass, and the 16-query halves at D = 192 read K^T in both warpgroups (-2.4 % there). Its dQ^T
    runs one block late too: dkdq kernel time at D = 256 -2.6 % dense 4x8192 full, -5 % causal, -6 % packed-train;
    D = 192 level (H200, interleaved, benchmarks/results/h200-2026-12-04f/).
    Epilogue: dk = scale * dK, dv = dV for keys < seqlen_k; rows no sequence uses are zeroed by the producer's
    idle warps.
    Instruction count: the element loop is compiled once per softcap case (p_and_ds) and dS^T is stored with
    precomputed XOR offsets (store_ds). Before, a query block cost ~650 instructions per consumer warp at D = 128
    (FlashAttention-4's SM90 backward: ~370 for the same work), now ~450, and the D = 128 one-kernel variants lost
    their spills; kernel time per fwd+bwd call (H200, interleaved): D = 128 dense 4x8192 causal -5.9 %, full
    -2.9 %, packed-train -4.5 %; D = 64 -3.4 to -4.1 %; D = 96 -4.2 to -7.1 %.

Schedule: persistent grid; the producer warp takes tile tickets from a per-call atomic counter (tile_counter [1]
i32, zeroed by the caller) and hands them to the consumers through a 2-slot shared-memory mailbox. A ticket is a
pair of key blocks of one (sequence, KV head), N - 1 - p then p (tile_at): under a causal mask every ticket then
holds the same work, and the CTAs of one (sequence, KV head), which take adjacent tickets, step through its query
blocks together (visit_order), so each block's Q, dO and dQ chunk are fetched from DRAM about once instead of once
per CTA. (With one key block per ticket and the KV heads innermost, 132 CTAs spanned every query head of a
sequence: the kernel missed L2 on 40-48 % of its accesses, cuDNN's backward on 4 %.) Taking tickets rather than a
static stride matters under causal masks: a stride left the busiest CTA with up to 1.51x the average work.
Sequences take their tickets longest first (ticket_order): packed-train backward kernel time -2.1 %, dense level
(H200, benchmarks/results/h200-2026-12-05/).
"""

import cutlass
import cutlass.cute as cute
import cutlass.pipeline as pipeline
import cutlass.utils as utils
import cutlass.utils.hopper_helpers as sm90_utils
from cutlass import Float32, Int32, Int64, const_expr
from cutlass.cute.nvgpu import cpasync, warpgroup
from cutlass.tensor_utils import LayoutEnum
import cuda.bindings.driver as cuda

from jax_fa4.kernels._abi import row_major
from jax_fa4.kernels._sm90 import (acc_as_a_layout, acc_mn, backward_compile_args, convert_packed, gemm_rs, gemm_ss,
                                   make_mma_rs, make_mma_ss, owning_sequence, red_global_add_f32x4, seq_major,
                                   softmax_scales, st_shared_b32, stmatrix_x4, swap_first_modes, swizzled_address,
                                   thread0_coords, thread_coords, thread_idx_here, tma_pipeline, zero_unused_rows,
                                   bulk_load_f32)

DTYPES = {"bf16": cutlass.BFloat16, "fp16": cutlass.Float16}
HEAD_DIMS = (64, 96, 128, 192, 256)
MASKS = ("none", "causal", "local")
# What one launch computes: both gradients where their two fp32 accumulators fit the registers (D <= 128);
# for D >= 192 they do not (2 x 64 x D / 128 threads >= 192 registers each), so one launch makes dK and
# another dV (dV's pass skips the dP^T GEMM and the dS math). "dkdvdq" adds dQ (D <= 128: its accumulator fits);
# "dkdq" adds dQ to dK's pass at D >= 192, as dQ^T = K^T dS^T (32-query blocks are too short for an m64 dQ).
PASSES = {64: ("dkdv", "dkdvdq"), 96: ("dkdv", "dkdvdq"), 128: ("dkdv", "dkdvdq"), 192: ("dk", "dv", "dkdq"),
          256: ("dk", "dv", "dkdq")}
DQ_PASSES = ("dkdvdq", "dkdq")  # the passes that add dQ into a float32 buffer (SIGNATURE's dq_accum)
VARIANTS = tuple((dt, d, mk, ps) for dt in DTYPES for d in HEAD_DIMS for mk in MASKS for ps in PASSES[d])
CI_VARIANTS = (("bf16", 128, "causal", "dkdv"), ("bf16", 128, "causal", "dkdvdq"))

TILE_K = 128  # keys per tile (2 consumer warpgroups x 64)
# queries per streamed block. 80 at D = 128 (FlashAttention-4's choice; dQ then transposed) measured slower (H200,
# benchmarks/results/h200-2026-12-04/): without a mask the backward kernel +3.2 %, under the causal mask fwd+bwd
# +7 %. S^T and dP^T at 40 registers each left ptxas too few to keep the wgmmas in flight, and once dV's GEMM was
# awaited before dQ's the element loop spilled.
TILE_Q = {64: 64, 96: 64, 128: 64, 192: 32, 256: 32}
# The "dv" pass holds one accumulator and reads no V, so its blocks can be 64 queries at every D: at 32 each SS wgmma
# re-reads its 64-key operand for half the work.
TILE_Q_DV = 64
TICKET_KEYS = 2 * TILE_K  # keys per tile ticket: a pair of key blocks (BwdDkdvSm90.tile_at)
SMEM_BUDGET = 200 * 1024
SMEM_LIMIT = 227 * 1024  # what an SM90 CTA may hold
NUM_THREADS = 384
PRODUCER_REGS = 24
CONSUMER_REGS = 240
TILE_STAGES = 2  # tile mailbox slots (the producer fetches the next ticket while consumers finish a tile)
DS_SLOTS = 2  # dS^T buffers of the dQ passes


def tile_config(variant):
    """Tile shape and pipeline depths of a variant (the host's block_prefix counts tickets of ticket_keys keys)."""
    dtype_name, d, _, pass_ = variant
    itemsize = DTYPES[dtype_name].width // 8
    tile_q = TILE_Q_DV if pass_ == "dv" else TILE_Q[d]
    kv_bytes = kv_tiles(pass_) * TILE_K * d * itemsize  # K and V of the tile (K only for dV)
    stage_bytes = 2 * tile_q * d * itemsize + 2 * tile_q * 4  # Q and dO, and their rows' lse2 and dsum
    # dQ passes: dS^T in two buffers; 2 Q/dO stages (3 measured 1.5 % slower on an H200, causal 4x8192)
    dq_bytes = DS_SLOTS * TILE_K * tile_q * itemsize if pass_ in DQ_PASSES else 0
    max_stages = 2 if pass_ in DQ_PASSES else 3
    # A second K/V stage loads the next key block while this one's last query blocks run: D = 96 dkdvdq 1-3 %
    # faster. Not past SMEM_BUDGET: the same at 225 KiB (D = 128) made that pass 5-9 % slower (H200).
    kv_stages = 2 if 2 * kv_bytes + max_stages * stage_bytes + dq_bytes <= SMEM_BUDGET else 1
    # dkdq at D = 256 needs 209 KiB for a second Q / dO stage; with one, every block's loads would wait for the
    # previous block's GEMMs
    budget = SMEM_LIMIT if pass_ == "dkdq" else SMEM_BUDGET
    stages = max(1, min(max_stages, (budget - kv_stages * kv_bytes - dq_bytes) // stage_bytes))
    return {"tile_k": TILE_K, "tile_q": tile_q, "ticket_keys": TICKET_KEYS, "kv_stages": kv_stages, "stages": stages,
            "smem_bytes": kv_stages * kv_bytes + stages * stage_bytes + dq_bytes}


def dq_transposed(d):
    """Whether a dQ pass at head dim d computes dQ^T = K^T dS^T: its query blocks are shorter than the 64 rows of one
    m64 wgmma (D >= 192). bwd_dq_convert_sm90 reads the same rule."""
    return TILE_Q[d] < 64


def dq_atoms(d):
    """Warpgroup layout (M, N, K) of the transposed dQ GEMM: alternate 64-row blocks of D where D is a multiple of
    128, else the two halves of the queries (see make_mma_dq; bwd_dq_convert_sm90 reads the same rule)."""
    return (2, 1, 1) if d % 128 == 0 else (1, 2, 1)


def kv_tiles(pass_):
    """Key-side tiles a pass loads per key block: K and V (V for dP^T = V dO^T), or K alone in the "dv" pass."""
    return 1 if pass_ == "dv" else 2


def variant_name(variant):
    dtype_name, d, mask, pass_ = variant
    return f"{dtype_name}_d{d}_{mask}" + ("" if pass_ == "dkdv" else f"_{pass_}")


def SIGNATURE(variant):
    dq = [("dq_accum", "scratch_zero")] if variant[3] in DQ_PASSES else []
    return [
        ("q", "in"), ("k", "in"), ("v", "in"), ("dout", "in"), ("lse2", "in"), ("dsum", "in"),
        ("cu_q", "in"), ("cu_k", "in"), ("seq_q", "in"), ("seq_k", "in"), ("block_prefix", "in"),
        ("ticket_order", "in"), ("dk", "out"), ("dv", "out"), *dq, ("tile_counter", "scratch_zero"),
        ("softmax_scale", "f32"), ("softcap", "f32"), ("window_left", "i32"), ("window_right", "i32"),
        ("num_ctas", "i32"),
    ]


STMATRIX_STEP = 32  # bytes between the rows of consecutive stmatrix .x4 stores of dS^T (16 queries, one row)


def warp_first_key(t):
    """First of the 16 keys (S^T rows) whose accumulator fragment consumer thread t's warp holds: 64 per warpgroup,
    16 per warp. Thread t's own first row is this + (t % 32) // 4 (check_ds_layout asserts it for every t). Plain
    integer arithmetic: host and kernel."""
    return (t >> 7) * 64 + ((t >> 5) & 3) * 16


def stmatrix_row(t):
    """(query, key) of the dS^T row that consumer thread t (0..255) addresses in the first stmatrix .x4 store of
    store_ds: row t % 8 of matrix t % 32 // 8, whose registers are fragment words 0..3 (keys 8 (p % 2) + 0..7 of
    the warp's 16, queries 8 (p // 2) + 0..7). Store i writes words 4 i .. 4 i + 3 at queries 16 i further on,
    which in the 128-byte-swizzled 128-byte row is the address XOR STMATRIX_STEP * i (tests/test_ds_store_layout.py
    checks every element against the fragment and the layout). Plain integer arithmetic: host and kernel."""
    lane = t & 31
    return 8 * (lane >> 4), warp_first_key(t) + 8 * ((lane >> 3) & 1) + (lane & 7)


class BwdDkdvSm90:
    def __init__(self, variant):
        dtype_name, d, mask, pass_ = variant
        cfg = tile_config(variant)
        self.want_dk = pass_ in ("dkdv", "dk", "dkdvdq", "dkdq")
        self.want_dv = pass_ in ("dkdv", "dv", "dkdvdq")
        self.want_dq = pass_ in DQ_PASSES
        self.loads_v = kv_tiles(pass_) == 2
        # dQ^T = K^T dS^T where a query block is shorter than one m64 wgmma (D >= 192)
        self.dq_transposed = self.want_dq and dq_transposed(d)
        self.dtype = DTYPES[dtype_name]
        self.hdim = d
        self.mask = mask
        self.tile_k = cfg["tile_k"]
        self.tile_q = cfg["tile_q"]
        self.kv_stages = cfg["kv_stages"]
        self.stages = cfg["stages"]
        # K and V rows of the key block as register A operands of S^T and dP^T (RS wgmma), loaded once per key block
        # with ldmatrix: the SS GEMMs read both operands from shared memory for every query block, which at D = 64
        # puts a block's shared-memory traffic (~176 KiB per CTA) above what its wgmma cycles can absorb at
        # 128 bytes per cycle (~160 KiB); from registers ~144 KiB. 2 x 16 registers; D = 64 only, as at D >= 96
        # the accumulators leave no room for them (benchmarks/results/cpu-2026-12-05/). Only in the one-kernel
        # (dkdvdq) pass: in the dkdv pass built this way ptxas packed P and dS^T into K's and V's registers after
        # the first query block, so the next S^T / dP^T read P / dS^T (wrong dK / dV on an H200, 2026-12-05,
        # benchmarks/results/h200-2026-12-05/; tests/test_bwd_build.py checks the SASS for it).
        self.kv_in_regs = d == 64 and self.want_dq and self.want_dk and self.want_dv

    def make_mma_s(self):
        """S^T = K Q^T and dP^T = V dO^T: [TILE_K, TILE_Q], both operands K-major in smem."""
        return make_mma_ss(self.dtype, self.tile_k, self.tile_q)

    def make_mma_s_rs(self):
        """S^T = K Q^T and dP^T = V dO^T with K / V from registers (kv_in_regs): A K-major in registers, B K-major
        in smem."""
        return make_mma_rs(self.dtype, self.tile_k, self.tile_q, b_major=warpgroup.OperandMajorMode.K)

    def make_mma_kv(self):
        """dV += P^T dO and dK += dS^T Q: A from registers, dO / Q MN-major in smem."""
        return make_mma_rs(self.dtype, self.tile_k, self.hdim)

    def make_mma_dq(self):
        """dQ = dS K: [TILE_Q, D], warpgroup w computes columns [w D/2, (w+1) D/2); dS (query index contiguous)
        and K (D contiguous) are both MN-major in smem. Transposed (dq_transposed): dQ^T = K^T dS^T [D, TILE_Q],
        the two warpgroups on alternate 64-row blocks of D where D is a multiple of 128, else on the two halves
        of the queries; K^T (D contiguous) and dS^T (query index contiguous) are again both MN-major."""
        mn = warpgroup.OperandMajorMode.MN
        if const_expr(self.dq_transposed):
            atoms = dq_atoms(self.hdim)
            return sm90_utils.make_trivial_tiled_mma(self.dtype, self.dtype, mn, mn, Float32, atoms,
                                                     (64, self.tile_q // atoms[1]))
        return sm90_utils.make_trivial_tiled_mma(self.dtype, self.dtype, mn, mn, Float32, (1, 2, 1),
                                                 (64, self.hdim // 2))

    def kv_smem_layout(self):
        """K and V stages [TILE_K, D, kv_stages], K-major. dkdvdq reads K once more as the MN-major operand of
        dQ = dS K, each warpgroup D/2 of its columns, so there the swizzle atom may be at most D/2 wide (a wgmma
        operand cannot start inside one): 128-byte at D = 128, 64-byte at D = 64, 32-byte at D = 96. Elsewhere
        the widest that D allows."""
        major = self.hdim // 2 if self.want_dq and not self.dq_transposed else self.hdim
        atom = warpgroup.make_smem_layout_atom(
            sm90_utils.get_smem_layout_atom(LayoutEnum.ROW_MAJOR, self.dtype, major), self.dtype)
        return cute.tile_to_shape(atom, (self.tile_k, self.hdim, self.kv_stages), order=(0, 1, 2))

    # ------------------------------------------------------------------------------------------------ host side
    @cute.jit
    def __call__(self, q: cute.Tensor, k: cute.Tensor, v: cute.Tensor, dout: cute.Tensor, lse2: cute.Tensor,
                 dsum: cute.Tensor, cu_q: cute.Tensor, cu_k: cute.Tensor, seq_q: cute.Tensor, seq_k: cute.Tensor,
                 block_prefix: cute.Tensor, ticket_order: cute.Tensor, dk: cute.Tensor,
                 dv: cute.Tensor, tile_counter: cute.Tensor,
                 softmax_scale: Float32, softcap: Float32, window_left: Int32, window_right: Int32, num_ctas: Int32,
                 stream: cuda.CUstream):
        # these passes never touch dq_accum; lse2 stands in for it in the kernel's argument list
        self.launch(q, k, v, dout, lse2, dsum, cu_q, cu_k, seq_q, seq_k, block_prefix, ticket_order, dk, dv, lse2,
                    tile_counter, softmax_scale, softcap, window_left, window_right, num_ctas, stream)

    def shared_storage(self, sK_layout, sQ_layout, sdS_layout):
        kv_stages, stages, dtype = self.kv_stages, self.stages, self.dtype
        ds_elems = cute.cosize(sdS_layout) if self.want_dq else 8
        v_elems = cute.cosize(sK_layout) if self.loads_v else 8
        cols = stages * self.tile_q

        @cute.struct
        class SharedStorage:
            mbar_kv: cute.struct.MemRange[cutlass.Int64, 2 * kv_stages]
            mbar_q: cute.struct.MemRange[cutlass.Int64, 2 * stages]
            mbar_tile: cute.struct.MemRange[cutlass.Int64, 2 * TILE_STAGES]
            tile_slot: cute.struct.MemRange[Int32, TILE_STAGES]
            sK: cute.struct.Align[cute.struct.MemRange[dtype, cute.cosize(sK_layout)], 1024]
            sV: cute.struct.Align[cute.struct.MemRange[dtype, v_elems], 1024]
            sQ: cute.struct.Align[cute.struct.MemRange[dtype, cute.cosize(sQ_layout)], 1024]
            sdO: cute.struct.Align[cute.struct.MemRange[dtype, cute.cosize(sQ_layout)], 1024]
            sdS: cute.struct.Align[cute.struct.MemRange[dtype, ds_elems], 1024]
            sLSE2: cute.struct.Align[cute.struct.MemRange[Float32, cols], 128]
            sDsum: cute.struct.Align[cute.struct.MemRange[Float32, cols], 128]
            # the dQ passes' dS^T pipeline; last, so that the other passes' layout (and SASS) stays as it was
            mbar_ds: cute.struct.MemRange[cutlass.Int64, 2 * DS_SLOTS]

        return SharedStorage

    def launch(self, q, k, v, dout, lse2, dsum, cu_q, cu_k, seq_q, seq_k, block_prefix, ticket_order, dk, dv, dq_accum,
               tile_counter, softmax_scale, softcap, window_left, window_right, num_ctas, stream):
        """Host side of every pass (traced inside the pass's __call__)."""
        tk, tq, d = self.tile_k, self.tile_q, self.hdim

        sK_layout = self.kv_smem_layout()
        sQ_layout = sm90_utils.make_smem_layout_b(LayoutEnum.ROW_MAJOR, (tk, tq, d), self.dtype, self.stages)
        sdS_layout = self.ds_smem_layout()
        sK_one = cute.slice_(sK_layout, (None, None, 0))
        sQ_one = cute.slice_(sQ_layout, (None, None, 0))
        self.kv_bytes = (2 if self.loads_v else 1) * cute.size_in_bytes(self.dtype, sK_one)
        self.q_bytes = 2 * cute.size_in_bytes(self.dtype, sQ_one) + 2 * tq * 4  # Q, dO, lse2, dsum

        g2s = cpasync.CopyBulkTensorTileG2SOp()
        tma_k, tma_mK = cpasync.make_tiled_tma_atom(g2s, seq_major(k, d), sK_one, (tk, d))
        tma_v, tma_mV = cpasync.make_tiled_tma_atom(g2s, seq_major(v, d), sK_one, (tk, d))
        tma_q, tma_mQ = cpasync.make_tiled_tma_atom(g2s, seq_major(q, d), sQ_one, (tq, d))
        tma_do, tma_mdO = cpasync.make_tiled_tma_atom(g2s, seq_major(dout, d), sQ_one, (tq, d))

        self.storage_type = self.shared_storage(sK_layout, sQ_layout, sdS_layout)
        self.kernel(tma_k, tma_mK, tma_v, tma_mV, tma_q, tma_mQ, tma_do, tma_mdO, lse2, dsum, dk, dv, dq_accum,
                    tile_counter, cu_q, cu_k, seq_q, seq_k, block_prefix, ticket_order, softmax_scale, softcap,
                    window_left, window_right, self.make_mma_s(), self.make_mma_kv(), sK_layout, sQ_layout,
                    sdS_layout).launch(grid=[num_ctas, 1, 1], block=[NUM_THREADS, 1, 1], stream=stream,
                                       min_blocks_per_mp=1)

    # ---------------------------------------------------------------------------------------------- device side
    @cute.kernel
    def kernel(self, tma_k: cute.CopyAtom, mK: cute.Tensor, tma_v: cute.CopyAtom, mV: cute.Tensor,
               tma_q: cute.CopyAtom, mQ: cute.Tensor, tma_do: cute.CopyAtom, mdO: cute.Tensor, mLSE2: cute.Tensor,
               mDsum: cute.Tensor, mdK: cute.Tensor, mdV: cute.Tensor, mdQ: cute.Tensor,
               tile_counter: cute.Tensor, cu_q: cute.Tensor,
               cu_k: cute.Tensor, seq_q: cute.Tensor, seq_k: cute.Tensor, block_prefix: cute.Tensor,
               ticket_order: cute.Tensor,
               softmax_scale: Float32, softcap: Float32, window_left: Int32, window_right: Int32,
               tiled_mma_s: cute.TiledMma, tiled_mma_kv: cute.TiledMma, sK_layout: cute.ComposedLayout,
               sQ_layout: cute.ComposedLayout, sdS_layout: cute.ComposedLayout):
        tidx, _, _ = cute.arch.thread_idx()
        warp_idx = cute.arch.make_warp_uniform(cute.arch.warp_idx())
        if warp_idx == 0:
            for atom in (tma_k, tma_v, tma_q, tma_do):
                cpasync.prefetch_descriptor(atom)

        smem = utils.SmemAllocator()
        storage = smem.allocate(self.storage_type)
        pipe_kv = tma_pipeline(storage.mbar_kv, self.kv_stages, self.kv_bytes)
        pipe_q = tma_pipeline(storage.mbar_q, self.stages, self.q_bytes)
        # Tile mailbox: the producer warp writes the next tile index (lane 0) and arrives; both consumer
        # warpgroups read it and release.
        pipe_tile = pipeline.PipelineAsync.create(
            barrier_storage=storage.mbar_tile.data_ptr(), num_stages=TILE_STAGES,
            producer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, 32),
            consumer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, 256), defer_sync=True)
        sTile = storage.tile_slot.get_tensor(cute.make_layout(TILE_STAGES))
        # dS^T buffers between the two consumer warpgroups (dQ passes): full = both warpgroups' rows written, empty =
        # both warpgroups' dQ GEMMs have read it.
        pipe_ds = None
        if const_expr(self.want_dq):
            pipe_ds = pipeline.PipelineAsync.create(
                barrier_storage=storage.mbar_ds.data_ptr(), num_stages=DS_SLOTS,
                producer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, 256),
                consumer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, 256), defer_sync=True)
        cute.arch.mbarrier_init_fence()
        cute.arch.sync_threads()

        smem_tensors = (
            storage.sK.get_tensor(sK_layout.outer, swizzle=sK_layout.inner),
            # V (the "dv" pass reads none: K's tile stands in, never read as V)
            storage.sV.get_tensor(sK_layout.outer, swizzle=sK_layout.inner) if const_expr(self.loads_v) else
            storage.sK.get_tensor(sK_layout.outer, swizzle=sK_layout.inner),
            storage.sQ.get_tensor(sQ_layout.outer, swizzle=sQ_layout.inner),
            storage.sdO.get_tensor(sQ_layout.outer, swizzle=sQ_layout.inner),
            # lse2 and dsum of each stage's query block: [tile_q, stages]
            storage.sLSE2.get_tensor(cute.make_layout((self.tile_q, self.stages))),
            storage.sDsum.get_tensor(cute.make_layout((self.tile_q, self.stages))),
        )

        if warp_idx < 4:
            cute.arch.setmaxregister_decrease(PRODUCER_REGS)
            if warp_idx == 0:
                self.producer((tma_k, tma_v, tma_q, tma_do), (mK, mV, mQ, mdO, mLSE2, mDsum),
                              smem_tensors, pipe_kv, pipe_q, pipe_tile, sTile, tile_counter, cu_q, cu_k, seq_q,
                              seq_k, block_prefix, ticket_order, window_left, window_right)
            else:
                worker = cute.arch.block_idx()[0] * 3 + warp_idx - 1
                workers = cute.arch.grid_dim()[0] * 3
                if const_expr(self.want_dk):
                    zero_unused_rows(mdK, cu_k, seq_k, worker, workers)
                if const_expr(self.want_dv):
                    zero_unused_rows(mdV, cu_k, seq_k, worker, workers)
        else:
            cute.arch.setmaxregister_increase(CONSUMER_REGS)
            dq_io = None
            if const_expr(self.want_dq):
                dq_io = (storage.sdS.get_tensor(sdS_layout.outer, swizzle=sdS_layout.inner), mdQ)
            self.consumer(tiled_mma_s, tiled_mma_kv, smem_tensors, dq_io, pipe_kv, pipe_q, pipe_tile, pipe_ds,
                          sTile, mLSE2.shape[0], mdK, mdV, cu_q, cu_k, seq_q, seq_k, block_prefix, ticket_order,
                          softmax_scale, softcap, window_left, window_right, tidx - 128)

    @cute.jit
    def query_block_range(self, n_block: Int32, sq: Int32, sk: Int32, window_left: Int32, window_right: Int32):
        """[m_min, m_max) of the query blocks with a row that sees any key of key block n_block."""
        off = sk - sq
        j_min = n_block * self.tile_k
        j_max = cutlass.min(sk, (n_block + 1) * self.tile_k) - 1
        lo = Int32(0)
        hi = sq - 1
        if const_expr(self.mask == "causal"):
            lo = cutlass.max(lo, j_min - off)
        if const_expr(self.mask == "local"):
            if window_right >= 0:
                lo = cutlass.max(lo, j_min - off - window_right)
            if window_left >= 0:
                hi = cutlass.min(hi, j_max - off + window_left)
        m_min = Int32(0)
        m_max = Int32(0)
        if hi >= lo:
            m_min = lo // self.tile_q
            m_max = hi // self.tile_q + 1
        return m_min, m_max

    def first_chunk(self, off_q, b):
        """Chunk (of TILE_Q rows of lse2 / dsum / dq_accum) of query block 0 of sequence b, which starts at packed
        row off_q = cu_q[b] (kernel_backend._first_chunk_rows is its host twin)."""
        return (off_q + b * self.tile_q) // self.tile_q

    @cute.jit
    def tile_at(self, t: Int32, seq_k: cute.Tensor, num_heads_kv: Int32, block_prefix: cute.Tensor,
                ticket_order: cute.Tensor):
        """Ticket t -> (sequence b, KV head, pair p, key blocks of b). Sequences take tickets in ticket_order
        (longest first, kernel_backend._ticket_order); block_prefix counts pairs of key blocks (ceil(seqlen_k /
        TICKET_KEYS) per sequence) in that order. A sequence's tickets are KV-head-major with the pair innermost, so
        the CTAs that read the same query rows (one sequence, one KV head) take adjacent tickets."""
        j = owning_sequence(t, seq_k.shape[0], block_prefix, num_heads_kv)
        b = ticket_order[j]
        pairs = block_prefix[j + 1] - block_prefix[j]
        r = t - block_prefix[j] * num_heads_kv
        head_kv = r // pairs
        return b, head_kv, r - head_kv * pairs, (seq_k[b] + self.tile_k - 1) // self.tile_k

    @cute.jit
    def pair_block(self, half: Int32, p: Int32, n_blocks: Int32):
        """Key block of half 0 / 1 of pair p: N - 1 - p, then p."""
        return n_blocks - 1 - p - half * (n_blocks - 1 - 2 * p)

    @cute.jit
    def pair_halves(self, p: Int32, n_blocks: Int32):
        """2, or 1 for the middle block of an odd count (it pairs with itself)."""
        halves = Int32(2)
        if n_blocks - 1 - p == p:
            halves = Int32(1)
        return halves

    @cute.jit
    def visit_order(self, half: Int32, m_min: Int32, m_max: Int32):
        """(first query block, step): half 0 walks its query blocks last to first, half 1 first to last. Under a
        causal mask with seqlen_q = seqlen_k, every CTA of a (sequence, KV head) then reads the same query block at
        the same step (half 0 starts at the last block; half 1 of pair p starts at block p TILE_K / TILE_Q right
        after half 0 ended at block (N - 1 - p) TILE_K / TILE_Q), so Q, dO and the dQ chunk of one block serve
        all of them from L2, and every ticket holds the same work."""
        desc = 1 - half
        return m_min + desc * (m_max - 1 - m_min), 1 - 2 * desc

    # ---------------------------------------------------------------------------------------------- producer
    def tma_rows(self, atom, m_x, s_x, off, head, rows, block):
        """TMA partitions (smem, gmem) of head `head` of packed tensor m_x [total, heads, D] from row off, in tiles of
        `rows` rows: tile `block`, or all of them (block None, indexed by the caller)."""
        g_x = cute.local_tile(cute.domain_offset((off, 0, 0), m_x)[None, None, head], (rows, self.hdim), (block, 0))
        return cpasync.tma_partition(atom, 0, cute.make_layout(1), cute.group_modes(s_x, 0, 2),
                                     cute.group_modes(g_x, 0, 2))

    @cute.jit
    def producer(self, atoms, gmem, smem_tensors, pipe_kv, pipe_q, pipe_tile, sTile, tile_counter, cu_q, cu_k,
                 seq_q, seq_k, block_prefix, ticket_order, window_left, window_right):
        tma_k, tma_v, tma_q, tma_do = atoms
        mK, mV, mQ, mdO, mLSE2, mDsum = gmem
        sK, sV, sQ, sdO, sLSE2, sDsum = smem_tensors
        rows_per_head = mLSE2.shape[1]
        num_heads_kv = mK.shape[2]
        qhead_per_kv = mQ.shape[2] // num_heads_kv
        total_tiles = block_prefix[seq_k.shape[0]] * num_heads_kv
        kv_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, self.kv_stages)
        q_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, self.stages)
        tile_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, TILE_STAGES)
        t = self.next_tile(tile_counter)
        while t < total_tiles:
            pipe_tile.producer_acquire(tile_state)
            if cute.arch.lane_idx() == 0:
                sTile[tile_state.index] = t
            pipe_tile.producer_commit(tile_state)
            tile_state.advance()
            b, head_kv, p, n_blocks = self.tile_at(t, seq_k, num_heads_kv, block_prefix, ticket_order)
            off_q = cu_q[b]
            off_k = cu_k[b]
            for half in cutlass.range(self.pair_halves(p, n_blocks), unroll=1):
                n_block = self.pair_block(half, p, n_blocks)
                m_min, m_max = self.query_block_range(n_block, seq_q[b], seq_k[b], window_left, window_right)
                if m_max > m_min:
                    tKs, tKg = self.tma_rows(tma_k, mK, sK, off_k, head_kv, self.tile_k, n_block)
                    tVs, tVg = self.tma_rows(tma_v, mV, sV, off_k, head_kv, self.tile_k, n_block)
                    pipe_kv.producer_acquire(kv_state)
                    bar = pipe_kv.producer_get_barrier(kv_state)
                    cute.copy(tma_k, tKg, tKs[None, kv_state.index], tma_bar_ptr=bar)
                    if const_expr(self.loads_v):
                        cute.copy(tma_v, tVg, tVs[None, kv_state.index], tma_bar_ptr=bar)
                    kv_state.advance()
                    m_first, m_step = self.visit_order(half, m_min, m_max)
                    for i in cutlass.range(m_max - m_min, unroll=1):
                        m = m_first + i * m_step
                        for hh in cutlass.range(qhead_per_kv, unroll=1):
                            head = head_kv * qhead_per_kv + hh
                            tQs, tQg = self.tma_rows(tma_q, mQ, sQ, off_q, head, self.tile_q, None)
                            tdOs, tdOg = self.tma_rows(tma_do, mdO, sdO, off_q, head, self.tile_q, None)
                            pipe_q.producer_acquire(q_state)
                            bar = pipe_q.producer_get_barrier(q_state)
                            s = q_state.index
                            cute.copy(tma_q, tQg[None, m], tQs[None, s], tma_bar_ptr=bar)
                            cute.copy(tma_do, tdOg[None, m], tdOs[None, s], tma_bar_ptr=bar)
                            # the block's lse2 and dsum: one aligned chunk of tile_q floats each
                            col0 = Int64(head) * rows_per_head + (self.first_chunk(off_q, b) + m) * self.tile_q
                            with cute.arch.elect_one():
                                bulk_load_f32(sLSE2[None, s].iterator, mLSE2.iterator + col0, bar, self.tile_q * 4)
                                bulk_load_f32(sDsum[None, s].iterator, mDsum.iterator + col0, bar, self.tile_q * 4)
                            q_state.advance()
            # The next ticket is taken once this one's loads are issued, so a CTA takes a ticket about when it
            # starts it: the CTAs of a (sequence, KV head) take adjacent tickets and so start them together, and
            # step through its query blocks in step (visit_order). The atomic's latency hides behind the loads in
            # flight.
            t = self.next_tile(tile_counter)
        # end marker for the consumers
        pipe_tile.producer_acquire(tile_state)
        if cute.arch.lane_idx() == 0:
            sTile[tile_state.index] = total_tiles
        pipe_tile.producer_commit(tile_state)

    @cute.jit
    def next_tile(self, tile_counter: cute.Tensor):
        """The next ticket of the per-call atomic tile counter (lane 0 takes it, the warp shares it): the CTA that
        is free first takes the next tile, so heavy tiles (key block 0 of a causal sequence is seen by all its
        query blocks) do not pile up on the CTAs that a static stride would give them to."""
        ticket = Int32(0)
        if cute.arch.lane_idx() == 0:
            ticket = cute.arch.atomic_add(tile_counter.iterator, Int32(1), sem="relaxed", scope="gpu")
        return cute.arch.shuffle_sync(ticket, 0)

    # ---------------------------------------------------------------------------------------------- consumer
    @cute.jit
    def consumer(self, tiled_mma_s, tiled_mma_kv, smem_tensors, dq_io, pipe_kv, pipe_q, pipe_tile, pipe_ds, sTile,
                 num_heads, mdK, mdV,
                 cu_q, cu_k, seq_q, seq_k, block_prefix, ticket_order, softmax_scale: Float32, softcap: Float32,
                 window_left: Int32, window_right: Int32, tidx: Int32):
        sK, sV, sQ, sdO, sLSE2, sDsum = smem_tensors
        tk, tq, d = self.tile_k, self.tile_q, self.hdim
        num_heads_kv = mdK.shape[1]
        qhead_per_kv = num_heads // num_heads_kv
        total_tiles = block_prefix[seq_k.shape[0]] * num_heads_kv
        wg = cute.arch.make_warp_uniform(tidx // 128)
        wg_layout = cute.make_layout(tk // 64, stride=128)
        wg_s = tiled_mma_s.get_slice(wg_layout(wg))
        wg_kv = tiled_mma_kv.get_slice(wg_layout(wg))
        thr_s = tiled_mma_s.get_slice(tidx)
        thr_kv = tiled_mma_kv.get_slice(tidx)

        tSrK = tiled_mma_s.make_fragment_A(wg_s.partition_A(sK))
        tSrV = tiled_mma_s.make_fragment_A(wg_s.partition_A(sV))
        tSrQ = tiled_mma_s.make_fragment_B(wg_s.partition_B(sQ))
        tSrdO = tiled_mma_s.make_fragment_B(wg_s.partition_B(sdO))
        if const_expr(self.kv_in_regs):
            # this thread's share of its warpgroup's 64 K / V rows in the RS A-operand layout, filled by ldmatrix
            # from each key block's stage
            thr_s_rs = self.make_mma_s_rs().get_slice(tidx)
            wg_s_rs = self.make_mma_s_rs().get_slice(wg_layout(wg))
            tSrQ = self.make_mma_s_rs().make_fragment_B(wg_s_rs.partition_B(sQ))
            tSrdO = self.make_mma_s_rs().make_fragment_B(wg_s_rs.partition_B(sdO))
            tSrK = cute.make_rmem_tensor(thr_s_rs.partition_shape_A((tk, d)), self.dtype)
            tSrV = cute.make_rmem_tensor(thr_s_rs.partition_shape_A((tk, d)), self.dtype)
            ldsm = cute.make_tiled_copy_A(
                cute.make_copy_atom(cute.nvgpu.warp.LdMatrix8x8x16bOp(transpose=False, num_matrices=4), self.dtype),
                self.make_mma_s_rs())
            thr_ldsm = ldsm.get_slice(tidx)
            tKs, tVs = thr_ldsm.partition_S(sK), thr_ldsm.partition_S(sV)
            tKr, tVr = thr_ldsm.retile(tSrK), thr_ldsm.retile(tSrV)
        tKVrQt = tiled_mma_kv.make_fragment_B(wg_kv.partition_B(swap_first_modes(sQ)))
        tKVrdOt = tiled_mma_kv.make_fragment_B(wg_kv.partition_B(swap_first_modes(sdO)))
        acc_S = thr_s.make_fragment_C(thr_s.partition_shape_C((tk, tq)))
        acc_dP = thr_s.make_fragment_C(thr_s.partition_shape_C((tk, tq)))
        acc_dK = thr_kv.make_fragment_C(thr_kv.partition_shape_C((tk, d)))
        acc_dV = thr_kv.make_fragment_C(thr_kv.partition_shape_C((tk, d)))
        tP = cute.make_rmem_tensor(acc_as_a_layout(acc_S.layout), self.dtype)
        tdS = cute.make_rmem_tensor(acc_as_a_layout(acc_S.layout), self.dtype)
        acc_S_mn = acc_mn(acc_S)
        acc_dP_mn = acc_mn(acc_dP)
        acc_dK_mn = acc_mn(acc_dK)
        acc_dV_mn = acc_mn(acc_dV)
        tScS_mn = acc_mn(thr_s.partition_C(cute.make_identity_tensor((tk, tq))))
        tKVcKV_mn = acc_mn(thr_kv.partition_C(cute.make_identity_tensor((tk, d))))
        if const_expr(self.want_dq):
            sdS, mdQ = dq_io
            tiled_mma_dq = self.make_mma_dq()
            thr_dq = tiled_mma_dq.get_slice(tidx)
            wg_dq = tiled_mma_dq.get_slice(wg * 128)
            if const_expr(self.dq_transposed):  # A = K^T [D, TILE_K], B = dS^T [TILE_Q, TILE_K]
                tdQrA = tiled_mma_dq.make_fragment_A(wg_dq.partition_A(swap_first_modes(sK)))
                tdQrB = tiled_mma_dq.make_fragment_B(wg_dq.partition_B(sdS))
                acc_dQ = thr_dq.make_fragment_C(thr_dq.partition_shape_C((d, tq)))
            else:  # A = dS [TILE_Q, TILE_K], B = K [D, TILE_K]
                tdQrA = tiled_mma_dq.make_fragment_A(wg_dq.partition_A(sdS))
                tdQrB = tiled_mma_dq.make_fragment_B(wg_dq.partition_B(swap_first_modes(sK)))
                acc_dQ = thr_dq.make_fragment_C(thr_dq.partition_shape_C((tq, d)))
            rows_per_head = mdQ.shape[1]

        logit_scale, tanh_in_scale, scale_log2 = softmax_scales(softmax_scale, softcap)

        kv_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, self.kv_stages)
        q_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, self.stages)
        ds_write = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, DS_SLOTS)
        ds_read = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, DS_SLOTS)
        dq_late_offset = Int64(0)  # dq_accum offset of the block whose dQ is still to be computed
        tile_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, TILE_STAGES)
        pipe_tile.consumer_wait(tile_state)
        t = sTile[tile_state.index]
        pipe_tile.consumer_release(tile_state)
        tile_state.advance()
        while t < total_tiles:
            b, head_kv, p, n_blocks = self.tile_at(t, seq_k, num_heads_kv, block_prefix, ticket_order)
            off_q = cu_q[b]
            off_k = cu_k[b]
            chunk0 = self.first_chunk(off_q, b)
            sq = seq_q[b]
            sk = seq_k[b]
            for half in cutlass.range(self.pair_halves(p, n_blocks), unroll=1):
                n_block = self.pair_block(half, p, n_blocks)
                m_min, m_max = self.query_block_range(n_block, sq, sk, window_left, window_right)
                if const_expr(self.want_dk):
                    acc_dK.fill(0.0)
                if const_expr(self.want_dv):
                    acc_dV.fill(0.0)
                if m_max > m_min:
                    pipe_kv.consumer_wait(kv_state)
                    if const_expr(self.kv_in_regs):
                        cute.copy(ldsm, tKs[None, None, None, kv_state.index], tKr)
                        cute.copy(ldsm, tVs[None, None, None, kv_state.index], tVr)
                    m_first, m_step = self.visit_order(half, m_min, m_max)
                    for i in cutlass.range(m_max - m_min, unroll=1):
                        m = m_first + i * m_step
                        for hh in cutlass.range(qhead_per_kv, unroll=1):
                            head = head_kv * qhead_per_kv + hh
                            pipe_q.consumer_wait(q_state)
                            if const_expr(self.kv_in_regs):
                                gemm_rs(self.make_mma_s_rs(), acc_S, tSrK, tSrQ, q_state.index, zero_init=True)
                                gemm_rs(self.make_mma_s_rs(), acc_dP, tSrV, tSrdO, q_state.index, zero_init=True)
                            else:
                                gemm_ss(self.make_mma_s(), acc_S, tSrK, tSrQ, kv_state.index, q_state.index)
                                if const_expr(self.want_dk):
                                    gemm_ss(self.make_mma_s(), acc_dP, tSrV, tSrdO, kv_state.index,
                                            q_state.index)
                            warpgroup.wait_group(0)
                            self.scores_to_p_ds(acc_S, acc_S_mn, acc_dP_mn, tScS_mn, sLSE2[None, q_state.index],
                                                sDsum[None, q_state.index], n_block, m, sq, sk, window_left,
                                                window_right, softcap, tanh_in_scale, scale_log2)
                            if const_expr(self.want_dv):
                                convert_packed(acc_S, tP)
                                gemm_rs(self.make_mma_kv(), acc_dV, tP, tKVrdOt, q_state.index)
                            if const_expr(self.want_dk):
                                convert_packed(acc_dP, tdS)
                            if const_expr(self.want_dq):
                                # dS^T into the next buffer; then the previous block's dQ (both warpgroups' rows of
                                # its dS^T written), issued before dK's GEMM and added while dK's runs. The key
                                # block's first block has no previous one: its dQ GEMM reads the buffer just written
                                # and is discarded, since a GEMM issued under a branch keeps acc_dQ live across the
                                # loop (ptxas spilled it).
                                first = i * qhead_per_kv + hh == 0
                                pipe_ds.producer_acquire(ds_write)
                                self.store_ds(tdS, sdS, ds_write.index)
                                cute.arch.fence_proxy("async.shared", space="cta")
                                pipe_ds.producer_commit(ds_write)
                                ds_write.advance()
                                if not first:
                                    pipe_ds.consumer_wait(ds_read)
                                self.gemm_dq(acc_dQ, tdQrA, tdQrB, ds_read.index, kv_state.index)
                                gemm_rs(self.make_mma_kv(), acc_dK, tdS, tKVrQt, q_state.index)
                                warpgroup.wait_group(1)  # dV's and dQ's GEMMs are done, dK's may run on
                                if not first:
                                    self.add_dq(acc_dQ, mdQ, dq_late_offset, wg, tidx)
                                    pipe_ds.consumer_release(ds_read)
                                    ds_read.advance()
                                dq_late_offset = self.dq_chunk_offset(head, rows_per_head, chunk0 + m)
                            if const_expr(self.want_dk and not self.want_dq):
                                gemm_rs(self.make_mma_kv(), acc_dK, tdS, tKVrQt, q_state.index)
                            warpgroup.wait_group(0)
                            pipe_q.consumer_release(q_state)
                            q_state.advance()
                    if const_expr(self.want_dq):  # the key block's last dQ (its K is still in this stage)
                        pipe_ds.consumer_wait(ds_read)
                        self.gemm_dq(acc_dQ, tdQrA, tdQrB, ds_read.index, kv_state.index)
                        warpgroup.wait_group(0)
                        self.add_dq(acc_dQ, mdQ, dq_late_offset, wg, tidx)
                        pipe_ds.consumer_release(ds_read)
                        ds_read.advance()
                    pipe_kv.consumer_release(kv_state)
                    kv_state.advance()
                # dk = scale * dK, dv = dV for keys < seqlen_k (zeros for keys no query sees).
                for r in cutlass.range_constexpr(cute.size(acc_dK_mn, mode=[0])):
                    j = n_block * tk + tKVcKV_mn[r, 0][0]
                    if j < sk:
                        for c in cutlass.range_constexpr(cute.size(acc_dK_mn, mode=[1])):
                            col = tKVcKV_mn[0, c][1]
                            if const_expr(self.want_dk):
                                mdK[off_k + j, head_kv, col] = (acc_dK_mn[r, c] * softmax_scale).to(
                                    mdK.element_type)
                            if const_expr(self.want_dv):
                                mdV[off_k + j, head_kv, col] = acc_dV_mn[r, c].to(mdV.element_type)
            pipe_tile.consumer_wait(tile_state)
            t = sTile[tile_state.index]
            pipe_tile.consumer_release(tile_state)
            tile_state.advance()

    def ds_smem_layout(self):
        """dS^T [TILE_Q, TILE_K] x 2 buffers, query index contiguous: the MN-major A operand of dQ = dS K, or the
        MN-major B operand of dQ^T = K^T dS^T, whose swizzle atom is then at most one warpgroup's queries wide."""
        if const_expr(self.dq_transposed):
            queries = self.tile_q // dq_atoms(self.hdim)[1]
            atom = warpgroup.make_smem_layout_atom(
                sm90_utils.get_smem_layout_atom(LayoutEnum.COL_MAJOR, self.dtype, queries), self.dtype)
            return cute.tile_to_shape(atom, (self.tile_q, self.tile_k, DS_SLOTS), order=(1, 0, 2))
        return sm90_utils.make_smem_layout_a(LayoutEnum.COL_MAJOR, (self.tile_q, self.hdim, self.tile_k),
                                             self.dtype, DS_SLOTS)

    def check_ds_layout(self, outer, swizzle):
        """Trace-time check of what store_ds's address formula rests on: (query, key) at element query + TILE_Q key,
        128-byte rows with the 128-byte swizzle, thread 0 holding keys 0 / 8 and query pairs 8 j + {0, 1}, and each
        consumer thread's first (key, query) as store_ds computes it."""
        tk, tq = self.tile_k, self.tile_q
        assert tq * self.dtype.width // 8 == 128, "store_ds assumes 128-byte dS^T rows"
        assert (swizzle.num_bits, swizzle.num_base, swizzle.num_shift) == (3, 4, 3), swizzle
        for q, k in ((1, 0), (0, 1), (tq - 1, 0), (0, tk - 1), (tq - 1, tk - 1)):
            assert cute.crd2idx((q, k, 0), outer) == q + tq * k, (q, k)
        t0 = thread0_coords(self.make_mma_s(), (tk, tq))
        for p in range(cute.size(t0) // 2):
            for v in range(2):
                assert tuple(t0[p % 2, 2 * (p // 2) + v]) == (8 * (p % 2), 8 * (p // 2) + v), (p, v)
        for t in range(2 * 128):
            first = tuple(thread_coords(self.make_mma_s(), (tk, tq), t)[0, 0])
            assert first == (warp_first_key(t) + ((t & 31) >> 2), (t & 3) * 2), (t, first)

    @cute.jit
    def store_ds(self, tdS: cute.Tensor, sdS: cute.Tensor, ds_buf: Int32):
        """Write this thread's dS^T (bf16 / fp16 pairs in tdS, accumulator order: 32-bit word p holds keys
        k0 + 8 (p % 2), queries q0 + 8 (p // 2) + {0, 1}) into buffer ds_buf of sdS, where (keys, queries) sits at
        byte 2 query + 128 key, 16-byte pieces (bits 4-6) XORed with the key's bits 0-2 (bits 7-9). 64-query blocks
        store with four stmatrix .x4 (stmatrix_row): 4 instructions instead of 16 32-bit stores, bwd kernel time
        -0.5 to -2 % on dense 4x8192 full, -0.6 % causal, packed-train level (H200, interleaved,
        benchmarks/results/h200-2026-12-04b/). Why the fixed offsets: addressing every store through the swizzled
        layout cost four instructions per store, ~80 per query block."""
        outer, swizzle = sdS.layout, self.ds_smem_layout().inner
        itemsize = self.dtype.width // 8
        if const_expr(not self.dq_transposed):
            self.check_ds_layout(outer, swizzle)
        buf_bytes = cute.crd2idx((0, 0, 1), outer) * itemsize
        # consumer thread t from a fresh read of the thread index: addresses computed here, not kept live across
        # the loop
        t = thread_idx_here() - 128
        base = sdS.iterator.toint() + ds_buf * buf_bytes
        words = cute.make_tensor(cute.recast_ptr(tdS.iterator, dtype=Int32), cute.make_layout(cute.size(tdS) // 2))
        if const_expr(self.dq_transposed):
            # 32-query blocks (D >= 192): each word through the swizzled layout, 8 a block; (k0, q0) as
            # check_ds_layout's formula
            k0 = warp_first_key(t) + ((t & 31) >> 2)
            q0 = (t & 3) * 2
            for p in cutlass.range_constexpr(cute.size(words)):
                st_shared_b32(swizzled_address(base, outer, (q0 + 8 * (p // 2), k0 + 8 * (p % 2), 0), itemsize,
                                               swizzle), words[p])
        else:
            query, key = stmatrix_row(t)
            b = swizzled_address(base, outer, (query, key, 0), itemsize, swizzle)
            for i in cutlass.range_constexpr(cute.size(words) // 4):
                stmatrix_x4(b ^ (STMATRIX_STEP * i), words[4 * i], words[4 * i + 1], words[4 * i + 2],
                            words[4 * i + 3])

    def gemm_dq(self, acc_dQ, tdQrA, tdQrB, ds_slot, kv_stage):
        """Issue dQ = dS K from dS^T buffer ds_slot and K stage kv_stage (transposed: dQ^T = K^T dS^T, A from the
        K stage); committed, not waited."""
        if const_expr(self.dq_transposed):
            gemm_ss(self.make_mma_dq(), acc_dQ, tdQrA, tdQrB, kv_stage, ds_slot)
        else:
            gemm_ss(self.make_mma_dq(), acc_dQ, tdQrA, tdQrB, ds_slot, kv_stage)

    def dq_chunk_offset(self, head, rows_per_head, chunk):
        """Element offset in dq_accum [H, rows, D] of chunk `chunk` (TILE_Q rows) of query head `head`."""
        return (Int64(head) * rows_per_head + chunk * self.tile_q) * self.hdim

    @cute.jit
    def add_dq(self, acc_dQ, mdQ, chunk_offset: Int64, wg: Int32, tidx: Int32):
        """Add this warpgroup's half of dQ (one query block) to the half at element chunk_offset + wg TILE_Q D / 2
        of dq_accum, in register order: registers 4 c .. 4 c + 3 of thread t at float 512 c + 4 t (a warp's
        16-byte reductions side by side, 512 contiguous bytes). The chunk is this sequence's alone, so rows past
        seqlen_q (exact zeros: P = 0 there) land in padding. Measured against staging the half in shared memory
        and adding it with one cp.reduce.async.bulk: 7.27 vs 7.73 ms (causal 4x8192, H200)."""
        base = (mdQ.iterator + chunk_offset + wg * (self.tile_q * self.hdim // 2) + (tidx % 128) * 4).toint()
        for c in cutlass.range_constexpr(cute.size(acc_dQ) // 4):
            red_global_add_f32x4(base + c * 2048, acc_dQ[4 * c], acc_dQ[4 * c + 1], acc_dQ[4 * c + 2],
                                 acc_dQ[4 * c + 3])

    @cute.jit
    def scores_to_p_ds(self, acc_S, acc_S_mn, acc_dP_mn, tScS_mn, sLSE2, sDsum, n_block, m_block, sq, sk,
                       window_left, window_right, softcap, tanh_in_scale, scale_log2):
        """acc_S <- P^T = exp2(t c - lse2) (0 where masked), acc_dP <- dS^T = P^T (dP^T - dsum) [(1 - t^2)];
        sLSE2 / sDsum: the block's lse2 / dsum in shared memory, by query column (+inf / 0 past seqlen_q)."""
        if softcap > Float32(0.0):
            for e in cutlass.range_constexpr(cute.size(acc_S)):
                acc_S[e] = cute.math.tanh(acc_S[e] * tanh_in_scale)
        self.mask_transposed(acc_S_mn, tScS_mn, n_block, m_block, sq, sk, window_left, window_right)
        if softcap > Float32(0.0):
            self.p_and_ds(acc_S_mn, acc_dP_mn, tScS_mn, sLSE2, sDsum, scale_log2, True)
        else:
            self.p_and_ds(acc_S_mn, acc_dP_mn, tScS_mn, sLSE2, sDsum, scale_log2, False)

    @cute.jit
    def p_and_ds(self, acc_S_mn, acc_dP_mn, tScS_mn, sLSE2, sDsum, scale_log2: Float32,
                 softcapped: cutlass.Constexpr):
        """The element loop of scores_to_p_ds, compiled once per softcap case. Why: with the softcap test inside
        the loop, ptxas computed its factor for every element and applied it predicated (4 of the loop's ~20
        instructions per element, softcap or not)."""
        for c in cutlass.range_constexpr(cute.size(acc_S_mn, mode=[1])):
            lse2 = sLSE2[tScS_mn[0, c][1]]
            dsum = sDsum[tScS_mn[0, c][1]]
            for r in cutlass.range_constexpr(cute.size(acc_S_mn, mode=[0])):
                x = acc_S_mn[r, c]
                p = cute.math.exp2(x * scale_log2 - lse2, fastmath=True)
                acc_S_mn[r, c] = p
                if const_expr(self.want_dk):
                    ds = p * (acc_dP_mn[r, c] - dsum)
                    if const_expr(softcapped):
                        tc = cute.arch.fmax(x, Float32(-1.0))  # masked entries hold -inf; tanh lies in [-1, 1]
                        ds = ds * (Float32(1.0) - tc * tc)
                    acc_dP_mn[r, c] = ds

    @cute.jit
    def mask_transposed(self, acc_S_mn: cute.Tensor, tScS_mn: cute.Tensor, n_block: Int32, m_block: Int32,
                        sq: Int32, sk: Int32, window_left: Int32, window_right: Int32):
        """-inf where query i (column) may not see key j (row) under the causal / window mask, and (dQ passes) on
        keys past seqlen_k: their rows hold the next sequence's keys, which dQ = dS K must not see. Queries past
        seqlen_q need nothing here (their lse2 is +inf, so P = 0); dK, dV of keys past seqlen_k are never stored."""
        if const_expr(self.mask != "none" or self.want_dq):
            tk, tq = self.tile_k, self.tile_q
            off = sk - sq
            j0 = n_block * tk
            i0 = m_block * tq
            need = False
            if const_expr(self.want_dq):
                need = j0 + tk > sk
            if const_expr(self.mask == "causal"):
                need = need or j0 + tk - 1 > i0 + off
            if const_expr(self.mask == "local"):
                need = need or (window_right >= 0 and j0 + tk - 1 > i0 + off + window_right)
                need = need or (window_left >= 0 and j0 < i0 + tq - 1 + off - window_left)
            if need:
                tScS0_mn = thread0_coords(self.make_mma_s(), (tk, tq))
                for r in cutlass.range_constexpr(cute.size(acc_S_mn, mode=[0])):
                    j = j0 + tScS_mn[r, 0][0]
                    # query columns [lo, hi) (absolute) that see key j; +-2**30 stand for unbounded (shifting
                    # them by the column base below cannot overflow)
                    lo = Int32(-(1 << 30))
                    hi = Int32(1 << 30)
                    if const_expr(self.mask == "causal"):
                        lo = j - off
                    if const_expr(self.mask == "local"):
                        if window_right >= 0:
                            lo = j - off - window_right
                        if window_left >= 0:
                            hi = j - off + window_left + 1
                    if const_expr(self.want_dq):
                        if j >= sk:
                            lo = hi
                    # column c of this thread = its column 0 + thread 0's column c (compile time): shift the
                    # bounds once per row, compare every element with an immediate
                    base = i0 + tScS_mn[0, 0][1] - tScS0_mn[0, 0][1]
                    lo = lo - base
                    hi = hi - base
                    for c in cutlass.range_constexpr(cute.size(acc_S_mn, mode=[1])):
                        i = tScS0_mn[0, c][1]
                        if i < lo or i >= hi:
                            acc_S_mn[r, c] = -Float32.inf


class BwdDkdvDqSm90(BwdDkdvSm90):
    """The "dkdvdq" / "dkdq" passes: the same kernel with the dq_accum argument (SIGNATURE)."""

    @cute.jit
    def __call__(self, q: cute.Tensor, k: cute.Tensor, v: cute.Tensor, dout: cute.Tensor, lse2: cute.Tensor,
                 dsum: cute.Tensor, cu_q: cute.Tensor, cu_k: cute.Tensor, seq_q: cute.Tensor, seq_k: cute.Tensor,
                 block_prefix: cute.Tensor, ticket_order: cute.Tensor, dk: cute.Tensor,
                 dv: cute.Tensor, dq_accum: cute.Tensor,
                 tile_counter: cute.Tensor, softmax_scale: Float32, softcap: Float32, window_left: Int32,
                 window_right: Int32, num_ctas: Int32, stream: cuda.CUstream):
        self.launch(q, k, v, dout, lse2, dsum, cu_q, cu_k, seq_q, seq_k, block_prefix, ticket_order, dk, dv, dq_accum,
                    tile_counter, softmax_scale, softcap, window_left, window_right, num_ctas, stream)


def compile_variant(variant, arch):
    if variant not in VARIANTS:
        raise ValueError(f"unsupported bwd_dkdv_sm90 variant {variant!r}; supported: dtype in {tuple(DTYPES)}, "
                         f"head_dim in {HEAD_DIMS}, mask in {MASKS}")
    dtype_name, d, _, pass_ = variant
    if pass_ in DQ_PASSES:
        args = backward_compile_args(DTYPES[dtype_name], d, ("k", "k", "q_accum"), chunked_rows=True,
                                     tile_counter=True)
        return cute.compile(BwdDkdvDqSm90(variant), *with_ticket_order(args), options=f"--gpu-arch {arch}")
    args = backward_compile_args(DTYPES[dtype_name], d, ("k", "k"), chunked_rows=True, tile_counter=True)
    return cute.compile(BwdDkdvSm90(variant), *with_ticket_order(args), options=f"--gpu-arch {arch}")


def with_ticket_order(args):
    """backward_compile_args' fake arguments with ticket_order [B] int32 after block_prefix (argument 11)."""
    return args[:11] + (row_major(cutlass.Int32, (cute.sym_int(),), 4),) + args[11:]
