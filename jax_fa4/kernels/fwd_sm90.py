"""SM90 (Hopper) varlen forward attention kernel in CuTe DSL, with the dynamic persistent tile scheduler.

Why: packed variable-length batches leave most of a one-CTA-per-tile grid idle on skewed batches; here ~one CTA per SM
pulls tiles (longest first, heads swept L at a time for L2 reuse) from a per-call atomic counter, decoded through the
scheduler metadata (jax_fa4/metadata.py: the fields, and `decode_tile`, the host twin of `decode_tile` here).

Host-function arguments, in order (= SIGNATURE(variant); tensors compact row-major, every extent dynamic except D/Dv):
    q [total_q, H, D] in, k [total_k, Hk, D] in, v [total_k, Hk, Dv] in,
    cu_seqlens_q [B+1] in, cu_seqlens_k [B+1] in, seqlen_q [B] in, seqlen_k [B] in (used lengths, always passed),
    num_m_blocks [B] in, num_splits [B] in, virtual_batch_idx [B] in, num_heads_in_l2 [B] in, tile_prefix [B+1] in,
    o [total_q, H, Dv] out, lse [H, total_q] f32 out (natural log), o_partial [S, total_q, H, Dv] f32 out,
    lse_partial [S, H, total_q] f32 out (split-KV partials; S = 0 turns splitting off), tile_counter [1] i32
    scratch_zero,
    softmax_scale f32, softcap f32 (0 = off), window_left i32, window_right i32 (-1 = unbounded; read only by the
    "local" variants: "causal" is right = 0 / left unbounded, "none" ignores both), num_ctas i32 (grid size),
    scheduler_mode i32 (0 = static: CTA c takes tiles c, c + num_ctas, ... ; with num_ctas >= total tiles this is the
    one-CTA-per-tile scheduler of the ablation. 1 = dynamic: tiles pulled with atomicAdd on tile_counter.
    2 = dynamic two-ended: even CTAs pull tiles from the front of the order, odd CTAs from the back, through one
    counter with a 16-bit half per end, until the ends meet; so the longest tiles (front: long decodes) stream
    on about half the SMs while the other half computes the shortest (back: prefill tiles), instead of the two
    kinds running one after the other. Falls back to mode 1 when total tiles + CTAs >= 2**16),
    pack_gqa i32 (1, or the query heads per KV head packed into one tile; see below), stream.
H and Hk are runtime (q.shape[1], k.shape[1]); D = Dv and the dtype are compile-time (the variant).

Metadata contract (MetadataConfig): tile_m = TILE_M, tile_n = tile_config(variant)["tile_n"], head_dim =
head_dim_v = D, causal / window as the variant, pack_gqa as the call's `pack_gqa` scalar (1 = off, else
H // Hk, with TILE_M / pack_gqa a multiple of Q_CHUNK). Packed tiles are numbered by KV head and are head-major:
row r of m-block m is query m * R + r % R of query head kv_head * pack_gqa + r // R, R = TILE_M / pack_gqa, so
K/V of one KV head is read once for all its query heads (decode-shaped batches). Splits: sequence b runs in
n = min(num_splits[b], max(S, 1)) pieces, piece s over the s-th of n equal shares of its key blocks; with n > 1
each piece writes its normalised output and LSE to o_partial[s] / lse_partial[s] (an empty share writes 0 and
-inf) and the combine kernel merges them into o / lse; tiles of pieces >= n are skipped.

Pair variants (ctas = 2, handler suffix "_pair"; kernel_backend runs them for unpacked metadata with an even number
of query heads per KV head): a cluster of two CTAs takes tile pairs, query heads 2 j and 2 j + 1 of one sequence,
m-block and split (decode_tile; metadata.decode_pair is the host twin), so both read the same K/V blocks. Each
CTA's producer loads half of every K and V block and multicasts it to both CTAs; a stage's full barrier expects
the whole block, and a stage is free once the consumer warps of both CTAs have released it (tma_pipeline). The
first CTA's scheduler warp claims each ticket for both and hands it to the second with a 4-byte st.async into a
2-slot mailbox (pair_ticket); the static stride needs no hand-off. Every tile is computed as in the one-CTA kernel
(same bits). Why: the forward reads each K/V block once per 128-row tile (34 GB of L2 reads for dense 4x8192, 32 / 8
heads, D = 128), and in back-to-back calls, with the H200 at its power limit, those reads cost clock: leaving V's
loads out (wrong results, same math) made the harness 4 % faster, though a short profile's kernel time only 2 %.
The pairs halve the K/V reads. Measured on an H200 (bf16, D = 128, harness time, pairs on / off in alternate
processes, benchmarks/results/h200-2026-12-04c/): dense 4x8192 full -2.9 %, causal -4.0 %, 16x2048 causal -2.8 %,
packed-train -2.0 %. (Dropping the evict-last hint on K/V let L2 merge 9 % of the CTAs' identical requests, as it
does for FlashAttention-4's lockstep grid, but the time moved within 1 %.)

Output coverage: every row inside [cu_q[b], cu_q[b] + seqlen_q[b]) is written by its tile (rows >= seqlen_q[b] of a
tile are never written, so sequences never clobber each other). Rows between cu_q[b] + seqlen_q[b] and cu_q[b+1],
and rows past cu_q[B], get o = 0 and lse = -inf from the producer warpgroup's warps 2 and 3 at kernel start.
A row with no visible key gets o = 0, lse = -inf.

Design notes
- CTA = 3 warpgroups (384 threads). WG0 = producer (setmaxnreg 24): warp 1 runs the scheduler (takes a tile's
  ticket from the atomic counter, decodes it through the metadata with a warp-wide search of the prefix sums, and
  posts it to a 2-slot shared-memory mailbox guarded by an mbarrier pipeline, with the sequence's offsets and
  lengths, the tile's rows per head and its key block range); warp 0 reads the mailbox and issues all TMA loads;
  warps 2 and 3 zero the padding rows. WG1/WG2 = consumers (setmaxnreg 240), rows 0..63 / 64..127 of the 128-row
  Q tile; both read the same K/V stages and the mailbox. Measured on an H200 (bf16, D = 128; timeline and
  interleaved kernel times): with the scheduling in the loading warp (ticket round trip, binary search, metadata
  loads) and the consumers computing the tile's bounds themselves (loads and run-time divisions), every tile
  waited ~0.44 us between its start and its inputs; here 0.15 us, and a tile's fixed cost fell from 2.39 to
  1.96 us. Packed-train 850 -> 821 us, 16x2048 causal 953 -> 940, 4x8192 causal and full level; mixed-serve and
  long-decode +0.6-0.7 %, because the scheduler claimed tickets further ahead of the consumers and the last long
  decode tiles spread unevenly. So the scheduler now claims a ticket only once a mailbox slot is free, and the
  consumers free a tile's slot at its end: a CTA holds at most one tile beyond the one it computes (mixed-serve's
  tail idle 144 -> 56 us per CTA; 16x2048 causal -1.5 %, mixed-serve -1.1 %, long-decode -0.8 %, packed-train
  -0.7 %).
- Tiles: tile_m = 128 (2 x wgmma m64), tile_n by head dim (TILE_N; TILE_N_UNMASKED for mask "none": 192 / 160
  keys at D = 64 / 96), D = Dv. smem: Q (2 stages for masked variants and D = 128 where they fit, so the next
  tile's Q loads under this tile's work; else 1), K and V in separate
  TMA pipelines of `stages` stages each (K of block n can land while V of block n is still in flight; QK^T starts on
  K alone). Budget: see tile_config(); e.g. D=128: 2 x Q 32 KiB + 2 x (K 32 + V 32) KiB = 192 KiB.
- Varlen TMA: one descriptor over the whole packed tensor; each tile offsets the coordinate tensor by cu_seqlens
  (cute.domain_offset). Rows beyond the sequence read the neighbour's rows (or TMA zero fill past the end); they are
  masked (keys: col >= seqlen_k -> -inf; queries: rows >= seqlen_q are not stored).
- Per KV block (visited from the last to the first): S = Q K^T (wgmma SS, fp32), softcap (tanh) if on, mask only on
  blocks that cross a boundary (seqlen_k, causal diagonal, window edges; decided per block at run time), online
  softmax with exp2 and the scale folded into one FFMA, O rescale, P converted to bf16/fp16 in registers and fed to
  O += P V as the register A operand (wgmma RS). Fully masked blocks are never visited: the block range is the
  spec's n-block range of the tile.
- Overlap: for D <= 128 the two consumer warpgroups ping-pong their GEMMs through named barriers 1/2 (one
  warpgroup's softmax runs under the other's GEMMs). The code issues block j's PV GEMM with block j+1's S GEMM and
  waits for it after block j+1's softmax (P of block j kept in its own registers while S of block j+1 fills), but
  ptxas hoists that wait to the top of the softmax (SASS of every variant, 2026-12-03), so inside a warpgroup the
  softmax follows the PV GEMM and the overlap is the other warpgroup's. The full tiles at D >= 128 keep the
  softmax ahead of the wait (order_pv: a shared-memory store that needs every exponential; at D = 128 and in
  masked D >= 192 variants with the lazy O rescale of score_block): measured on an H200 (kernel time, interleaved
  processes): D = 128 4x8192 causal 3182 -> 3070 us, 16x2048 causal 935 -> 912, packed-train 806 -> 788, 4x8192
  full 5960 -> 5828 (with 128-key tiles), mixed-serve +0.6 %; D = 256 4x8192 causal 5704 -> 5553, full 11314 ->
  11161; D = 192 causal 4405 -> 4256; at D = 64 it lost 4-6 % (benchmarks/results/h200-2026-12-03g/, -03h/).
  P is converted two values per instruction into 32-bit registers (_sm90.convert_packed): converted element by
  element, bf16 pairs sat in 16-bit registers that were repacked between the wgmmas, and ptxas serialised every
  wgmma of the D = 128 variants (C7512); the mask compares each score with an immediate (thread 0's column plus one
  per-row shift), so no per-column coordinates stay live. Measured on an H100 (bf16, same process): dense 4x8192
  full 8.18 -> 7.60 ms, causal 4.35 -> 3.91 ms, packed-train 1.36 -> 1.14 ms.
- Half tiles (tile_rows: an m-block with at most 64 real rows, sq * pack_gqa <= 64 as for decodes or the last m-block
  of a longer sequence): the tile's real rows sit in the first consumer warpgroup's 64 and are repeated in the
  second's, so the warpgroups take alternate key blocks (visit wg, wg + 2, ...) on the same rows, each with the
  intra-warpgroup overlap and no ping-pong, and waiting for and releasing the other's stages in order. At the end the
  second writes its O accumulator (float32, over the tile's Q stage), row maxima and sums to shared memory; the first
  rescales both to the larger maximum, adds them, and writes the output. Measured on an H200 (bf16, D = 128, 32 / 8
  heads): with the second warpgroup idle, a CTA streamed ~52 GB/s of decode K/V (mixed-serve's decodes on 44-66 CTAs);
  split, 61-68 GB/s. Kernel time, interleaved runs: mixed-serve 2599 -> 2430 us; long-decode unchanged (3.83 ms: its
  132 CTAs already saturate the memory); packed-train and 16x2048 causal 0.6-1.0 % slower (no half tiles there then;
  code placement). A longer sequence's last m-block runs as a half tile too when it holds at most 64 rows (the
  scheduler warp posts it with half the rows per head and twice the m-block index, so its first query row is
  unchanged): packed-train 825 / 826 -> 808 / 807 us (H200, interleaved kernel times; 22 of its 39 documents end in
  such a block), the dense, serving and decode workloads level.
- Epilogue: O normalised by the row sum; LSE stored by the thread holding column 0 of each row. Variants with two
  Q stages (masked, D <= 128) stage O in the tile's own Q stage (each consumer warpgroup its 64 rows, which only
  its own GEMMs read) and copy whole rows out with 16-byte loads and stores (per-row predicate row < seqlen_q),
  then release the stage; the others, and split-KV partials, store from the accumulator layout (one 32-bit store
  per column pair). Measured on an H200 (bf16, D = 128, kernel time): packed-train 900 -> 881 us, 16x2048 causal
  1003 -> 994 us, 4x8192 causal unchanged. An ncu profile of packed-train before this showed the consumer warps
  spending about a third of their samples in per-tile work (first block, last PV, epilogue), the store queue
  stalling the epilogue.
- O by TMA store (every staged variant; the staging writes the Q stage's own swizzle, 128-byte at D = 64 / 128 and
  64-byte at D = 96, so the TMA reads back what was written): where a consumer warpgroup's 64 rows all lie inside
  the sequence (one query head per tile), its first thread issues one TMA store of them after the staging barrier
  and the warpgroup goes on to the next tile; that thread waits for the store to have read the stage (bulk
  wait_group.read) after the next tile's first S GEMM and then releases the Q stage. The last m-block of a
  sequence, GQA-packed and half tiles keep the row copy. Measured on an H200 (bf16, kernel time, interleaved
  processes): D = 128 packed-train 899 -> 854 us, 16x2048 causal 1008 -> 967 us, 4x8192 causal 3283 -> 3204 us;
  D = 96 (once the staging followed its 64-byte swizzle) packed-train 827 -> 781 us, 16x2048 causal 924 -> 879 us.
- Packed Q: GQA-packed and half tiles load Q in one TMA box per query head's rows (load_packed_q, D <= 128; the
  rows per head are 64, 32, 16 or 8). Measured on an H200 (bf16, D = 128, kernel time, interleaved processes):
  mixed-serve 2447 -> 2396 us against sixteen 8-row chunks addressed with run-time divisions (load_q_chunks,
  kept at D >= 192, where the box code spilled the 24-register producer).
- Timeline builds (FWD_SM90_TIMELINE=1; common_timeline.py, benchmarks/tile_timeline.py): the first consumer thread
  stamps each tile's phases into the tile-counter buffer. Measured on an H200 (bf16, D = 128): a tile costs ~2.6-2.9
  us plus ~1.55 us per key block; the fixed part (the first block's softmax, ~1.45 us with both warpgroups at once,
  and the epilogue, ~2 us) is 18-22 % of packed-train's and 16x2048 causal's tile time.
Not yet done: issuing the next tile's first S GEMM under this tile's epilogue (tried three times: with a wgmma in
flight across the tile loop's back edge ptxas serialised every wgmma; without that, slower, BUILD.md; and on
2026-12-05 with the next tile's inputs arriving earlier, packed-train +4.6 %), tile_n tuning, splitting only the
sequences that need it without partial buffers for every query row. Tried and dropped
(H200, interleaved kernel times): the first S GEMM taking its ping-pong turn too (no change: the first softmax is
exp2-bound and nothing overlaps it), and balanced-tree row max / sum in score_block (-1 % to +7 % by workload,
scheduling noise); where a warpgroup's rows see none of the first (diagonal) block's second half of keys, only its
first half softmaxed (packed-train +0.5 %) or also computed by a half-width S GEMM (+1.0 %; branches
wip/fwd-diag-narrow*, benchmarks/results/h200-2026-12-03d/).
"""

import cutlass
import cutlass.cute as cute
import cutlass.pipeline as pipeline
import cutlass.utils as utils
import cutlass.utils.hopper_helpers as sm90_utils
from cutlass import Float32, Int32, Int64, const_expr
from cutlass.cute.nvgpu import cpasync, warpgroup
from cutlass.cute.runtime import make_fake_stream
from cutlass.tensor_utils import LayoutEnum
import cuda.bindings.driver as cuda

from jax_fa4.kernels._abi import row_major
from jax_fa4.kernels.common_timeline import STAMPS, TILE_FIELDS, TIMELINE_ENV, TIMELINE_FIELDS, TIMELINE_SLOTS
from jax_fa4.kernels._sm90 import (acc_as_a_layout, acc_mn, convert_packed, copy_shared_to_global_16b,
                                   dim_major, gemm_rs, gemm_ss, globaltimer_lo, key_block_range, make_mma_rs,
                                   make_mma_ss, mask_scores, pack_pair, seq_major, softmax_scales, st_async_peer_b32,
                                   stmatrix_x4, swizzled_address, thread0_coords, thread_coords, tma_pipeline)

DTYPES = {"bf16": cutlass.BFloat16, "fp16": cutlass.Float16}
HEAD_DIMS = (64, 96, 128, 192, 256)
MASKS = ("none", "causal", "local")
# CTAs per tile pair: 1, or 2 for the "_pair" variants (a cluster of two CTAs on two query heads of one KV head, which
# share each K/V block: each CTA loads half of it and multicasts it to both; see the Design notes).
CTAS = (1, 2)
VARIANTS = tuple((dt, d, mk, c) for dt in DTYPES for d in HEAD_DIMS for mk in MASKS for c in CTAS)
CI_VARIANTS = (("bf16", 128, "causal", 1), ("bf16", 128, "causal", 2))

TILE_M = 128
LN2 = 0.6931471805599453  # ln 2: the LSE is ln(sum) = log2(sum) * ln 2
TILE_N = {64: 128, 96: 128, 128: 128, 192: 96, 256: 80}
# Wider KV tiles where no mask needs the square diagonal. D = 128 had 176 keys (FlashAttention-3's shape) until its
# loop kept the softmax ahead of the PV wait (order_pv): then 128 keys with two Q stages ran dense 4x8192 full in
# 5822 / 5834 us against 5959 / 5962 (H200, kernel time; benchmarks/results/h200-2026-12-03h/). 144 / 160 keys with
# two Q stages were level with 128: -0.5 / +0.4 % (benchmarks/results/h200-2026-12-04/).
TILE_N_UNMASKED = {64: 192, 96: 160}
SMEM_BUDGET = 200 * 1024  # bytes of Q + K/V stages; H100 allows 227 KiB per CTA
SMEM_LIMIT = 227 * 1024  # opt-in shared memory per block on SM90 (D = 256 uses all of it)
MAX_STAGES = 3
TILE_STAGES = 2  # mailbox slots for scheduled tiles
# L2 eviction priorities for TMA loads (createpolicy encodings, as CUTLASS's CacheHintSm90).
L2_EVICT_FIRST = 0x12F0000000000000
L2_EVICT_LAST = 0x14F0000000000000
TWO_ENDED_LIMIT = 1 << 16  # scheduler mode 2 needs total tiles + CTAs below this (16-bit counter halves)
# Mailbox fields: valid, sequence, head, m-block, split, splits of the sequence, then (for the producer warp) the
# sequence's first query row and first key row, its query and key lengths, 1 if its K/V streams (a decode), the
# tile's query rows per head (tile_rows) and its split's key block range [n_min, n_max).
TILE_INFO = 14
FILL_WARPS = 2  # warps 2 and 3 of the producer warpgroup write the padding rows
Q_CHUNK = 8  # fewest rows per query head in a GQA-packed or half tile (one 128-byte swizzle atom high)
Q_BOXES = (64, 32, 16, Q_CHUNK)  # every rows-per-head of such a tile (TILE_M / pack_gqa, or half that; powers of 2)
_DEBUG = bool(int(__import__('os').environ.get('FWD_SM90_DEBUG', '0')))
TIMELINE = bool(int(__import__('os').environ.get(TIMELINE_ENV, '0')))  # per-tile records (common_timeline.py)
BUILD_ENV = (TIMELINE_ENV,)  # environment variables that change the compiled code: part of the build key
NUM_THREADS = 384
CONSUMER_WARPS = (NUM_THREADS - 128) // 32  # two consumer warpgroups after the producer's
PRODUCER_REGS = 24
SCHED_BARRIER = True  # ping-pong the two consumer warpgroups' GEMMs (head dims <= 128, as FlashAttention-3)
SCHED_BARRIER_ID = 1  # named barriers 1 and 2 (0 is __syncthreads)
EPILOGUE_BARRIER_ID = 3  # named barriers 3 and 4: a consumer warpgroup's staged O rows are all written
MERGE_BARRIER_ID = 5  # named barriers 5 and 6: a half tile's two softmax states meet in its Q stage
MERGE_ROWS = 2  # accumulator rows per consumer thread (two m64 warpgroup atoms: rows r and r + 8 of its warp)
CONSUMER_REGS = 240
RESCALE_LOG2 = 8.0  # a row's max moves (and O is rescaled) only when a block raises it by more than 2**8 in P
HALF_TILE_MAX_PACK = 8  # half tiles need (TILE_M / 2) / pack_gqa >= Q_CHUNK rows per head


def staged_o_lane_row(t):
    """(row, column) within its warpgroup's 64 x Dv O tile of the 8 bf16 / fp16 that consumer thread t (0..127 in
    its warpgroup) addresses in the staged epilogue's first stmatrix .x4 store: row t % 8 of matrix (t % 32) // 8,
    i.e. rows 16 (t // 32) + 8 (m % 2) + t % 8, columns 8 (m // 2) for m = (t % 32) // 8. Store s is 16 columns
    further on. The m64 accumulator holds, for thread t, rows 16 (t // 32) + (t % 32) // 4 + 8 h and columns
    8 j + 2 (t % 4) + {0, 1}: its pair (h, j) is row (t % 32) // 4 of matrix (h, j % 2) in store j // 2, as
    stmatrix expects (check_staged_o_layout asserts the accumulator side; tests/test_staged_epilogue.py the whole).
    Plain integer arithmetic: host and kernel."""
    lane = t & 31
    m = lane >> 3
    return 16 * (t >> 5) + 8 * (m & 1) + (lane & 7), 8 * (m >> 1)


def staged_o_register(st, m):
    """(accumulator row, column) of the pair, columns c and c + 1, that register m of the staged epilogue's
    stmatrix .x4 store st carries: matrix m = rows 8 (m % 2) + ..., columns 16 st + 8 (m // 2) + ... (acc_mn
    indexing: row r, column c = 2 j + k of 8-column block j)."""
    return m % 2, 4 * st + 2 * (m // 2)


def tile_config(variant):
    """Tile shape and pipeline depth of a variant (the metadata must use the same tile_m / tile_n)."""
    dtype_name, d, mask, ctas = variant
    itemsize = DTYPES[dtype_name].width // 8
    tile_n = TILE_N_UNMASKED.get(d, TILE_N[d]) if mask == "none" else TILE_N[d]
    q_bytes = TILE_M * d * itemsize
    stage_bytes = 2 * tile_n * d * itemsize
    stages = max(2, min(MAX_STAGES, (SMEM_BUDGET - q_bytes) // stage_bytes))
    # A second Q buffer lets the producer load the next tile's Q while this tile still computes. Measured on an H100
    # (bf16, D=128, same process): +5-8 % on causal dense / 16x2048 causal / packed-train (short tiles), but -6 % on
    # dense non-causal (long tiles gain nothing and lose L1), so variants with the masked tile shape get two where
    # they fit; that includes D = 128 without a mask since its 128-key tiles (there two Q stages were 1.3 % faster
    # than one, H200, before order_pv), but not the wider unmasked tiles.
    q_stages = 2 if tile_n == TILE_N[d] and 2 * q_bytes + stages * stage_bytes <= SMEM_BUDGET else 1
    return {"tile_m": TILE_M, "tile_n": tile_n, "stages": stages, "q_stages": q_stages, "pack_gqa": ctas == 1,
            "ctas": ctas, "smem_bytes": q_stages * q_bytes + stages * stage_bytes}


def variant_name(variant):
    dtype_name, d, mask, ctas = variant
    return f"{dtype_name}_d{d}_{mask}" + ("_pair" if ctas == 2 else "")


def SIGNATURE(variant):
    return [
        ("q", "in"), ("k", "in"), ("v", "in"),
        ("cu_q", "in"), ("cu_k", "in"), ("seq_q", "in"), ("seq_k", "in"),
        ("num_m_blocks", "in"), ("num_splits", "in"), ("vbatch", "in"), ("heads_l2", "in"),
        ("tile_prefix", "in"),
        ("o", "out"), ("lse", "out"), ("o_partial", "out"), ("lse_partial", "out"), ("tile_counter", "scratch_zero"),
        ("softmax_scale", "f32"), ("softcap", "f32"), ("window_left", "i32"), ("window_right", "i32"),
        ("num_ctas", "i32"), ("scheduler_mode", "i32"), ("pack_gqa", "i32"),
    ]


class FwdSm90:
    def __init__(self, variant):
        dtype_name, d, mask, ctas = variant
        cfg = tile_config(variant)
        self.ctas = ctas
        self.dtype = DTYPES[dtype_name]
        self.hdim = d
        self.hdim_v = d
        self.mask = mask
        self.tile_m = cfg["tile_m"]
        self.tile_n = cfg["tile_n"]
        self.stages = cfg["stages"]
        self.q_stages = cfg["q_stages"]
        self.sched_barrier = SCHED_BARRIER and d <= 128
        # Full tiles at D >= 128 keep each block's softmax ahead of the previous block's PV wait (order_pv,
        # overlapped_block) and, except at D >= 192 without a mask, rescale O lazily (lazy_rescale, score_block).
        # Measured on an H200 (kernel time, bf16, benchmarks/results/h200-2026-12-03g/ and -03h/): D = 128 causal /
        # packed 2-4 % faster, without a mask -2.2 % (with 128-key tiles); D = 192 / 256 causal -3.4 / -2.6 %, full
        # -0.6 / -1.3 % (there no ping-pong hides the softmax, so the hoisted wait cost them more); at D = 64 4-6 %
        # slower, either half alone slower at D = 128.
        self.order_pv = d >= 128
        self.lazy_rescale = d == 128 or (d >= 192 and mask != "none")
        # TMA box heights for GQA-packed and half-tile Q loads: one box per query head's rows (load_packed_q), or
        # at D >= 192 8-row chunks only (load_q_chunks).
        self.q_boxes = Q_BOXES if d <= 128 else (Q_CHUNK,)
        # O leaves through the tile's own Q stage (one TMA store of a warpgroup's 64 rows where all lie inside the
        # sequence, else 16-byte stores of whole rows) when a second Q stage keeps the next tile's Q loading
        # meanwhile.
        self.staged_epilogue = self.q_stages > 1

    # ------------------------------------------------------------------------------------------------ host side
    @cute.jit
    def __call__(self, q: cute.Tensor, k: cute.Tensor, v: cute.Tensor, cu_q: cute.Tensor, cu_k: cute.Tensor,
                 seq_q: cute.Tensor, seq_k: cute.Tensor, num_m_blocks: cute.Tensor, num_splits: cute.Tensor,
                 vbatch: cute.Tensor, heads_l2: cute.Tensor, tile_prefix: cute.Tensor, o: cute.Tensor,
                 lse: cute.Tensor, o_partial: cute.Tensor, lse_partial: cute.Tensor, tile_counter: cute.Tensor,
                 softmax_scale: Float32, softcap: Float32, window_left: Int32, window_right: Int32, num_ctas: Int32,
                 scheduler_mode: Int32, pack_gqa: Int32, stream: cuda.CUstream):
        tm, tn, d, dv = self.tile_m, self.tile_n, self.hdim, self.hdim_v
        # TMA views: Q/K as (seq, d, head) with d contiguous; V as (dv, seq, head) so that it is the N-major
        # B operand of O = P V.
        mQ, mK, mVt = seq_major(q, d), seq_major(k, d), dim_major(v, dv)

        tiled_mma_qk = self.make_mma_qk()
        tiled_mma_pv = self.make_mma_pv()

        sQ_layout = self.q_smem_layout()
        sK_layout = sm90_utils.make_smem_layout_b(LayoutEnum.ROW_MAJOR, (tm, tn, d), self.dtype, self.stages)
        sV_layout = sm90_utils.make_smem_layout_b(LayoutEnum.COL_MAJOR, (tm, dv, tn), self.dtype, self.stages)
        sQ_one = cute.slice_(sQ_layout, (None, None, 0))
        sK_one = cute.slice_(sK_layout, (None, None, 0))
        sV_one = cute.slice_(sV_layout, (None, None, 0))
        self.q_bytes = cute.size_in_bytes(self.dtype, sQ_one)
        self.k_bytes = cute.size_in_bytes(self.dtype, sK_one)
        self.v_bytes = cute.size_in_bytes(self.dtype, sV_one)

        g2s = cpasync.CopyBulkTensorTileG2SOp()
        tma_q, tma_mQ = cpasync.make_tiled_tma_atom(g2s, mQ, sQ_one, (tm, d))
        # GQA-packed and half tiles load Q in boxes of one query head's rows (load_packed_q; at D >= 192 8-row
        # chunks, load_q_chunks): one (atom, coordinate tensor) per box height in self.q_boxes.
        q_boxes = tuple(cpasync.make_tiled_tma_atom(
            g2s, mQ, cute.composition(sQ_one, cute.make_layout((rows, d), stride=(1, tm))), (rows, d))
            for rows in self.q_boxes)
        if const_expr(self.ctas == 2):  # each CTA of the pair loads half a K/V block and multicasts it to both
            kv_op = cpasync.CopyBulkTensorTileG2SMulticastOp()
            tma_k, tma_mK = cpasync.make_tiled_tma_atom(kv_op, mK, sK_one, (tn, d), num_multicast=2)
            tma_v, tma_mV = cpasync.make_tiled_tma_atom(kv_op, mVt, sV_one, (dv, tn), num_multicast=2)
        else:
            tma_k, tma_mK = cpasync.make_tiled_tma_atom(g2s, mK, sK_one, (tn, d))
            tma_v, tma_mV = cpasync.make_tiled_tma_atom(g2s, mVt, sV_one, (dv, tn))
        # The staged epilogue stores a consumer warpgroup's 64 O rows from its Q stage with one TMA when they all
        # lie inside the sequence.
        if const_expr(self.staged_epilogue):
            sO_half = cute.composition(sQ_one, cute.make_layout((tm // 2, dv), stride=(1, tm)))
            tma_o, tma_mO = cpasync.make_tiled_tma_atom(cpasync.CopyBulkTensorTileS2GOp(), seq_major(o, dv),
                                                        sO_half, (tm // 2, dv))
        else:  # no staged epilogue: the kernel never touches tma_o, so Q's atom fills the argument (nothing encoded)
            tma_o, tma_mO = tma_q, tma_mQ

        @cute.struct
        class SharedStorage:
            mbar_q: cute.struct.MemRange[cutlass.Int64, 2 * self.q_stages]
            mbar_k: cute.struct.MemRange[cutlass.Int64, 2 * self.stages]
            mbar_v: cute.struct.MemRange[cutlass.Int64, 2 * self.stages]
            mbar_tile: cute.struct.MemRange[cutlass.Int64, 2 * TILE_STAGES]
            tile_info: cute.struct.MemRange[Int32, TILE_INFO * TILE_STAGES]
            # pair variants: the tickets the first CTA of a cluster claims for both (pair_ticket), their slots'
            # full barriers (in the second CTA) and empty barriers (in the first)
            pair_full: cute.struct.MemRange[cutlass.Int64, TILE_STAGES]
            pair_empty: cute.struct.MemRange[cutlass.Int64, TILE_STAGES]
            pair_slot: cute.struct.MemRange[Int32, TILE_STAGES]
            # One word per consumer warp (overlapped_block's order_slot; in the padding before sQ's alignment).
            order_slots: cute.struct.MemRange[Float32, CONSUMER_WARPS]
            sQ: cute.struct.Align[cute.struct.MemRange[self.dtype, cute.cosize(sQ_layout)], 1024]
            sK: cute.struct.Align[cute.struct.MemRange[self.dtype, cute.cosize(sK_layout)], 1024]
            sV: cute.struct.Align[cute.struct.MemRange[self.dtype, cute.cosize(sV_layout)], 1024]
            merge_stats: cute.struct.MemRange[Float32, 2 * MERGE_ROWS * 128]

        # The launch fails (cudaErrorInvalidValue) past the per-block limit: catch it at build time instead.
        assert SharedStorage.size_in_bytes() <= SMEM_LIMIT, (
            f"D = {self.hdim}: {SharedStorage.size_in_bytes()} bytes of shared memory exceed the {SMEM_LIMIT} an"
            " SM90 block may have")
        self.shared_storage = SharedStorage

        self.kernel(tma_q, tma_mQ, q_boxes, tma_k, tma_mK, tma_v, tma_mV, tma_o, tma_mO, o, lse, o_partial,
                    lse_partial, cu_q, cu_k, seq_q, seq_k,
                    num_m_blocks, num_splits, vbatch, heads_l2, tile_prefix, tile_counter, softmax_scale, softcap,
                    window_left, window_right, scheduler_mode, pack_gqa, tiled_mma_qk, tiled_mma_pv, sQ_layout,
                    sK_layout,
                    sV_layout).launch(grid=[num_ctas, 1, 1], block=[NUM_THREADS, 1, 1], stream=stream,
                                      min_blocks_per_mp=1, cluster=[self.ctas, 1, 1])

    def q_smem_layout(self):
        """Q stages in shared memory: K-major, 128-byte swizzle (the staged epilogue writes O through it too)."""
        return sm90_utils.make_smem_layout_a(LayoutEnum.ROW_MAJOR, (self.tile_m, self.tile_n, self.hdim), self.dtype,
                                             self.q_stages)

    def merge_layout(self):
        """(accumulator element, thread rank in the warpgroup, Q stage) -> float32 index over the Q stages: a half
        tile's second-warpgroup O accumulator (64 x Dv floats) fills its tile's Q stage (128 x D halves) exactly."""
        acc_elems = self.hdim_v // 2
        return cute.make_layout((acc_elems, 128, self.q_stages), stride=(128, 1, acc_elems * 128))

    def make_mma_qk(self):
        """S = Q K^T: two m64 warpgroup atoms stacked along M, both operands K-major from smem."""
        return make_mma_ss(self.dtype, self.tile_m, self.tile_n)

    def make_mma_pv(self):
        """O = P V: P from registers (RS wgmma), V N-major from smem."""
        return make_mma_rs(self.dtype, self.tile_m, self.hdim_v)

    # ---------------------------------------------------------------------------------------------- device side
    @cute.kernel
    def kernel(self, tma_q: cute.CopyAtom, mQ: cute.Tensor, q_boxes,
               tma_k: cute.CopyAtom, mK: cute.Tensor,
               tma_v: cute.CopyAtom, mVt: cute.Tensor, tma_o: cute.CopyAtom, mOt: cute.Tensor, mO: cute.Tensor,
               mLSE: cute.Tensor, mOp: cute.Tensor, mLSEp: cute.Tensor, cu_q: cute.Tensor,
               cu_k: cute.Tensor, seq_q: cute.Tensor, seq_k: cute.Tensor, num_m_blocks: cute.Tensor,
               num_splits: cute.Tensor, vbatch: cute.Tensor, heads_l2: cute.Tensor, tile_prefix: cute.Tensor,
               tile_counter: cute.Tensor, softmax_scale: Float32, softcap: Float32, window_left: Int32,
               window_right: Int32, scheduler_mode: Int32, pack_gqa: Int32, tiled_mma_qk: cute.TiledMma,
               tiled_mma_pv: cute.TiledMma, sQ_layout: cute.ComposedLayout, sK_layout: cute.ComposedLayout,
               sV_layout: cute.ComposedLayout):
        tidx, _, _ = cute.arch.thread_idx()
        warp_idx = cute.arch.make_warp_uniform(cute.arch.warp_idx())
        if warp_idx == 0:
            cpasync.prefetch_descriptor(tma_q)
            for atom, _ in q_boxes:
                cpasync.prefetch_descriptor(atom)
            cpasync.prefetch_descriptor(tma_k)
            cpasync.prefetch_descriptor(tma_v)
            if const_expr(self.staged_epilogue):
                cpasync.prefetch_descriptor(tma_o)

        smem = utils.SmemAllocator()
        storage = smem.allocate(self.shared_storage)

        pipe_q = tma_pipeline(storage.mbar_q, self.q_stages, self.q_bytes)
        pipe_k = tma_pipeline(storage.mbar_k, self.stages, self.k_bytes, self.ctas)
        pipe_v = tma_pipeline(storage.mbar_v, self.stages, self.v_bytes, self.ctas)
        # Tile mailbox: the whole scheduler warp arrives (lane 0 wrote the slot); the producer warp and every
        # consumer thread release it.
        pipe_tile = pipeline.PipelineAsync.create(
            barrier_storage=storage.mbar_tile.data_ptr(), num_stages=TILE_STAGES,
            producer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, 32),
            consumer_group=pipeline.CooperativeGroup(pipeline.Agent.Thread, 32 + 256), defer_sync=True)
        if const_expr(self.ctas == 2):
            if tidx == 0:
                for i in cutlass.range_constexpr(TILE_STAGES):
                    cute.arch.mbarrier_init(storage.pair_full.data_ptr() + i, 1)
                    cute.arch.mbarrier_init(storage.pair_empty.data_ptr() + i, 1)
        cute.arch.mbarrier_init_fence()
        if const_expr(self.ctas == 2):  # the peer's barriers are ready before any multicast or remote arrive
            cute.arch.cluster_arrive_relaxed()
            cute.arch.cluster_wait()
        else:
            cute.arch.sync_threads()

        sQ = storage.sQ.get_tensor(sQ_layout.outer, swizzle=sQ_layout.inner)
        sK = storage.sK.get_tensor(sK_layout.outer, swizzle=sK_layout.inner)
        sV = storage.sV.get_tensor(sV_layout.outer, swizzle=sV_layout.inner)
        sTile = storage.tile_info.get_tensor(cute.make_layout((TILE_INFO, TILE_STAGES)))
        split_cap = cutlass.max(mOp.shape[0], 1)  # splits the partial buffers hold (1: no split-KV)

        if warp_idx < 4:
            cute.arch.setmaxregister_decrease(PRODUCER_REGS)
            if warp_idx == 0:
                self.producer(tma_q, mQ, q_boxes, tma_k, mK, tma_v, mVt, sQ, sK, sV, sTile, pipe_q, pipe_k,
                              pipe_v, pipe_tile, window_left, window_right, pack_gqa)
            elif warp_idx == 1:
                self.scheduler(sTile, pipe_tile, cu_q, cu_k, seq_q, seq_k, num_m_blocks, num_splits, vbatch,
                               heads_l2, tile_prefix, tile_counter, scheduler_mode, pack_gqa,
                               mQ.shape[2] // mK.shape[2], split_cap, window_left, window_right, storage)
            else:
                self.fill_padding(mO, mLSE, cu_q, seq_q, warp_idx - 2)
        else:
            cute.arch.setmaxregister_increase(CONSUMER_REGS)
            # A half tile's merge (merge_out / merge_in): the second warpgroup's O accumulator, as float32 over the
            # tile's Q stage (128 * Dv/2 floats = the stage's 128 * D bf16/fp16 values), its row maxima and sums.
            sMerge = cute.make_tensor(cute.recast_ptr(storage.sQ.data_ptr(), dtype=Float32), self.merge_layout())
            sStats = storage.merge_stats.get_tensor(cute.make_layout((2, MERGE_ROWS, 128)))
            sOrder = storage.order_slots.get_tensor(cute.make_layout(CONSUMER_WARPS))
            self.consumer(tiled_mma_qk, tiled_mma_pv, sQ, sK, sV, sTile, sMerge, sStats, sOrder, pipe_q, pipe_k,
                          pipe_v, pipe_tile, tma_o, mOt, mO, mLSE, mOp, mLSEp, softmax_scale,
                          softcap, window_left, window_right, pack_gqa, tidx - 128, tile_counter)
        if const_expr(self.ctas == 2):  # no CTA exits while its peer may still multicast into it or signal it
            cute.arch.cluster_arrive()
            cute.arch.cluster_wait()

    # ------------------------------------------------------------------------------------------- shared logic
    @cute.jit
    def decode_tile(self, t: Int32, num_batch: Int32, num_m_blocks: cute.Tensor, num_splits: cute.Tensor,
                    vbatch: cute.Tensor, heads_l2: cute.Tensor, tile_prefix: cute.Tensor, scheduler_mode: Int32,
                    rank: Int32):
        """Linear tile index -> (batch, head, m_block, split), exactly as the spec's "Tile decode", except that
        the two-ended walk (mode 2) sweeps one head at a time (num_heads_in_l2 read as 1): the decodes it streams
        beside the prefill tiles would evict a wide head group's K/V from L2 before the group's m-blocks reuse it.
        metadata.decode_tile(..., one_head_at_a_time=True) is the host twin of that mode.
        Pair variants: t numbers tile pairs, and CTA `rank` of the cluster takes query head 2 j + rank of pair j
        (metadata.decode_pair): the same sequence, m-block, split and KV head for both (the host runs them only
        unpacked, with an even number of query heads per KV head, so every sequence holds whole pairs)."""
        first = t
        if const_expr(self.ctas == 2):
            first = t * 2
        lo = Int32(0)
        hi = num_batch
        lane = cute.arch.lane_idx()
        # Largest p with tile_prefix[p] <= t (tile_prefix[0] = 0 <= t < tile_prefix[num_batch]), searched by the whole
        # warp: each lane probes one of 32 evenly spaced entries of [lo, hi), so a round narrows the range 32-fold
        # (two rounds for up to ~1000 sequences) where a binary search waits for log2(batch) dependent loads.
        while hi - lo > 1:
            step = (hi - lo + 31) // 32
            probe = lo + (lane + 1) * step
            below = probe < hi
            if below:
                below = tile_prefix[probe] <= first
            count = cute.arch.popc(cute.arch.vote_ballot_sync(below))  # probes <= t: a prefix of the lanes
            hi = cutlass.min(hi, lo + (count + 1) * step)
            lo = lo + count * step
        b = vbatch[lo]
        u = first - tile_prefix[lo]
        n_l2 = heads_l2[b]
        if scheduler_mode == 2:
            n_l2 = 1
        if const_expr(self.ctas == 2):  # head pairs: the swizzle's heads in pairs (a group of one for odd widths)
            u = u // 2
            if n_l2 % 2 == 0:
                n_l2 = n_l2 // 2
            else:
                n_l2 = 1
        n_split = num_splits[b]
        n_m = num_m_blocks[b]
        per_group = n_l2 * n_m * n_split
        g = u // per_group
        r = u - g * per_group
        m_block = n_m - 1 - r // (n_l2 * n_split)
        r2 = r % (n_l2 * n_split)
        head = g * n_l2 + r2 // n_split
        if const_expr(self.ctas == 2):
            head = head * 2 + rank
        split = r2 % n_split
        return b, head, m_block, split

    @cute.jit
    def split_range(self, n_min: Int32, n_max: Int32, split: Int32, n_split: Int32):
        """Key blocks of split `split` of `n_split`: consecutive, equal shares of [n_min, n_max) (the last ones may
        be short or empty)."""
        per = (n_max - n_min + n_split - 1) // n_split
        lo = cutlass.min(n_max, n_min + split * per)
        return lo, cutlass.min(n_max, lo + per)

    @cute.jit
    def cluster_rank(self):
        """This CTA's rank in its cluster: 0, or 0 / 1 in a pair variant."""
        rank = Int32(0)
        if const_expr(self.ctas == 2):
            rank = cute.arch.make_warp_uniform(cute.arch.block_idx_in_cluster())
        return rank

    @cute.jit
    def claim(self, t: Int32, tile_counter: cute.Tensor, scheduler_mode: Int32, total: Int32, rank: Int32, storage,
              slot: Int32, phase: Int32):
        """The CTA's next ticket (next_tile) and the pair-ticket slot state. Pair variants: the cluster's first CTA
        claims each ticket for both and hands it to the second through shared memory (pair_ticket); a static
        stride needs no hand-off."""
        nxt = t
        if const_expr(self.ctas == 1):
            nxt = self.next_tile(t, tile_counter, scheduler_mode, total)
        else:
            if scheduler_mode == 0:
                nxt = self.next_tile(t, tile_counter, scheduler_mode, total)
            else:
                if rank == 0:
                    nxt = self.next_tile(t, tile_counter, scheduler_mode, total)
                nxt = self.pair_ticket(nxt, rank, storage, slot, phase)
                slot = slot + 1
                if slot == TILE_STAGES:
                    slot = Int32(0)
                    phase = phase ^ 1
        return nxt, slot, phase

    @cute.jit
    def pair_ticket(self, t: Int32, rank: Int32, storage, slot: Int32, phase: Int32):
        """Ticket t of the cluster's first CTA, delivered to the second: a 4-byte st.async into the second's slot,
        completing on its full barrier; the second frees the slot by arriving on the first's empty barrier. Two
        slots, used in turn (phase: of the slot's current use). Returns the ticket in both."""
        lane = cute.arch.lane_idx()
        full = storage.pair_full.data_ptr() + slot
        empty = storage.pair_empty.data_ptr() + slot
        got = t
        if lane == 0:
            if rank == 0:
                cute.arch.mbarrier_wait(empty, phase ^ 1)  # the second read this slot's previous ticket
                st_async_peer_b32((storage.pair_slot.data_ptr() + slot).toint(), t, full.toint(), Int32(1))
            else:
                cute.arch.mbarrier_arrive_and_expect_tx(full, 4)
                cute.arch.mbarrier_wait(full, phase)
                got = storage.pair_slot.get_tensor(cute.make_layout(TILE_STAGES))[slot]
                cute.arch.mbarrier_arrive(empty, Int32(0))
        return cute.arch.shuffle_sync(got, 0)

    @cute.jit
    def next_tile(self, t: Int32, tile_counter: cute.Tensor, scheduler_mode: Int32, total_tiles: Int32):
        """The CTA's next tile of the order (>= total_tiles: none left): static stride, the next ticket of the
        per-call atomic counter, or (mode 2) the next tile from this CTA's end of the order."""
        grid = cute.arch.grid_dim()[0] // self.ctas  # CTAs, or clusters of a pair variant (t numbers pairs)
        nxt = t + grid
        two_ended = scheduler_mode == 2 and total_tiles + grid < TWO_ENDED_LIMIT
        if scheduler_mode == 1 or (scheduler_mode == 2 and not two_ended):
            ticket = Int32(0)
            if cute.arch.lane_idx() == 0:
                ticket = cute.arch.atomic_add(tile_counter.iterator, Int32(1), sem="relaxed", scope="gpu")
            nxt = cute.arch.shuffle_sync(ticket, 0)
        if two_ended:
            # One counter, two 16-bit halves: tiles taken from the front (low) and from the back (high; odd CTAs, or
            # odd clusters of a pair variant).
            # Every claim reads both at once, so the first total_tiles claims are the tiles, each taken once.
            from_back = (cute.arch.block_idx()[0] // self.ctas) % 2
            old = Int32(0)
            if cute.arch.lane_idx() == 0:
                old = cute.arch.atomic_add(tile_counter.iterator, Int32(1) + from_back * Int32(0xFFFF),
                                           sem="relaxed", scope="gpu")
            old = cute.arch.shuffle_sync(old, 0)
            front = old & 0xFFFF
            back = (old >> 16) & 0xFFFF
            nxt = total_tiles
            if front + back < total_tiles:
                nxt = front
                if from_back == 1:
                    nxt = total_tiles - 1 - back
        return nxt

    # ---------------------------------------------------------------------------------------------- producer
    @cute.jit
    def producer(self, tma_q, mQ, q_boxes, tma_k, mK, tma_v, mVt, sQ, sK, sV, sTile, pipe_q, pipe_k, pipe_v,
                 pipe_tile, window_left, window_right, pack_gqa):
        qhead_per_kv = mQ.shape[2] // mK.shape[2]
        rank = self.cluster_rank()
        tile_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, TILE_STAGES)
        q_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, self.q_stages)
        k_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, self.stages)
        v_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, self.stages)

        (valid, b, head, m_block, split, n_split, off_q, off_k, sq, sk, streams, rows, n_min,
         n_max) = self.read_mailbox(pipe_tile, tile_state, sTile)
        while valid != 0:
            if n_max > n_min:
                head_kv = head * pack_gqa // qhead_per_kv  # packed tiles are numbered by KV head
                # K/V that only this tile reads (one m-block holding every query head of the KV head: a
                # decode) stream through L2 marked evict-first, so they do not push out the K/V that the
                # m-blocks of prefill tiles share (evict-last); Q is read once.
                kv_policy = Int64(L2_EVICT_LAST)
                if streams != 0:
                    kv_policy = Int64(L2_EVICT_FIRST)
                gQ = cute.local_tile(cute.domain_offset((off_q, 0, 0), mQ)[None, None, head],
                                     (self.tile_m, self.hdim), (m_block, 0))
                gK = cute.local_tile(cute.domain_offset((off_k, 0, 0), mK)[None, None, head_kv],
                                     (self.tile_n, self.hdim), (None, 0))
                gV = cute.local_tile(cute.domain_offset((0, off_k, 0), mVt)[None, None, head_kv],
                                     (self.hdim_v, self.tile_n), (0, None))
                tQsQ, tQgQ = cpasync.tma_partition(tma_q, 0, cute.make_layout(1),
                                                   cute.group_modes(sQ, 0, 2), cute.group_modes(gQ, 0, 2))
                # pair variants: this CTA's half of each K / V block (multicast to both CTAs of the cluster)
                tKsK, tKgK = cpasync.tma_partition(tma_k, rank, cute.make_layout(self.ctas),
                                                   cute.group_modes(sK, 0, 2), cute.group_modes(gK, 0, 2))
                tVsV, tVgV = cpasync.tma_partition(tma_v, rank, cute.make_layout(self.ctas),
                                                   cute.group_modes(sV, 0, 2), cute.group_modes(gV, 0, 2))
                # Issue order = the consumers' order: K(last), Q, then K(n) before V(n+1), V(first) last.
                n = n_max - 1
                pipe_k.producer_acquire(k_state)
                self.load_kv(tma_k, tKgK[None, n], tKsK[None, k_state.index],
                             pipe_k.producer_get_barrier(k_state), kv_policy)
                k_state.advance()
                pipe_q.producer_acquire(q_state)
                if rows == self.tile_m:  # one query head, a full tile
                    cute.copy(tma_q, tQgQ, tQsQ[None, q_state.index],
                              tma_bar_ptr=pipe_q.producer_get_barrier(q_state),
                              cache_policy=Int64(L2_EVICT_FIRST))
                elif const_expr(len(self.q_boxes) > 1):
                    for i in cutlass.range_constexpr(len(self.q_boxes)):
                        if rows == self.q_boxes[i]:
                            self.load_packed_q(q_boxes[i], self.q_boxes[i], sQ, q_state, pipe_q, off_q, head,
                                               m_block, pack_gqa, rows)
                else:
                    self.load_q_chunks(q_boxes[0], sQ, q_state, pipe_q, off_q, head, m_block, pack_gqa, rows)
                q_state.advance()
                for i in cutlass.range(n_max - 1 - n_min, unroll=1):
                    n = n_max - 2 - i
                    pipe_k.producer_acquire(k_state)
                    self.load_kv(tma_k, tKgK[None, n], tKsK[None, k_state.index],
                                 pipe_k.producer_get_barrier(k_state), kv_policy)
                    k_state.advance()
                    pipe_v.producer_acquire(v_state)
                    self.load_kv(tma_v, tVgV[None, n + 1], tVsV[None, v_state.index],
                                 pipe_v.producer_get_barrier(v_state), kv_policy)
                    v_state.advance()
                pipe_v.producer_acquire(v_state)
                self.load_kv(tma_v, tVgV[None, n_min], tVsV[None, v_state.index],
                             pipe_v.producer_get_barrier(v_state), kv_policy)
                v_state.advance()
            tile_state.advance()
            (valid, b, head, m_block, split, n_split, off_q, off_k, sq, sk, streams, rows, n_min,
             n_max) = self.read_mailbox(pipe_tile, tile_state, sTile)

    @cute.jit
    def read_mailbox(self, pipe_tile, tile_state, sTile: cute.Tensor, release: cutlass.Constexpr = True):
        """The scheduler warp's next tile, for the producer warp and the consumers: the TILE_INFO fields in order
        (valid = 0: no tiles left). The caller advances tile_state; with release=False the caller also releases
        the slot (the consumers do, at the tile's end)."""
        pipe_tile.consumer_wait(tile_state)
        fields = [sTile[i, tile_state.index] for i in range(TILE_INFO)]
        if const_expr(release):
            pipe_tile.consumer_release(tile_state)
        return tuple(fields)

    @cute.jit
    def scheduler(self, sTile, pipe_tile, cu_q, cu_k, seq_q, seq_k, num_m_blocks, num_splits, vbatch, heads_l2,
                  tile_prefix, tile_counter, scheduler_mode, pack_gqa, qhead_per_kv, split_cap, window_left,
                  window_right, storage):
        """Warp 1: takes the CTA's tiles (atomic tickets or a static stride), decodes them through the metadata and
        posts each to the tile mailbox, with the sequence's offsets and lengths, the tile's rows per head and its
        key block range, for the producer warp and the consumers. Why a warp of its own: in the producer warp, the
        ticket's round trip, the search of the prefix sums and the metadata loads (a chain of dependent global
        loads) sat between one tile's last load and the next tile's first, so short tiles waited for their inputs
        (~0.4 us per tile, H200 timeline)."""
        lane = cute.arch.lane_idx()
        num_batch = seq_q.shape[0]
        total_tiles = tile_prefix[num_batch]
        tile_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Producer, TILE_STAGES)
        # A ticket is claimed only once a mailbox slot is free for it, and the consumers free a slot at their tile's
        # end: a CTA holds at most one tile beyond the one it computes, so at the end of a call the last long tiles
        # go to the CTAs about to need them (claiming ahead cost mixed-serve / long-decode 0.6-0.7 %, H200).
        pipe_tile.producer_acquire(tile_state)
        rank = self.cluster_rank()
        total = total_tiles  # tickets: tiles, or tile pairs of a pair variant
        if const_expr(self.ctas == 2):
            total = total_tiles // 2
        slot = Int32(0)  # pair variants: the ticket slot and its phase (pair_ticket)
        phase = Int32(0)
        t = cute.arch.block_idx()[0] // self.ctas
        if scheduler_mode >= 1:
            t, slot, phase = self.claim(t, tile_counter, scheduler_mode, total, rank, storage, slot, phase)
        while t < total:
            b, head, m_block, split = self.decode_tile(t, num_batch, num_m_blocks, num_splits, vbatch, heads_l2,
                                                       tile_prefix, scheduler_mode, rank)
            n_split = cutlass.min(num_splits[b], split_cap)
            if split < n_split:
                # K/V that only this tile reads (one m-block holding every query head of the KV head: a decode)
                # stream through L2 marked evict-first (the producer's kv_policy).
                streams = Int32(0)
                if num_m_blocks[b] == 1 and pack_gqa == qhead_per_kv:
                    streams = Int32(1)
                sq = seq_q[b]
                sk = seq_k[b]
                rows, m_block = self.tile_rows(sq, m_block, pack_gqa)
                n_min, n_max = key_block_range(self.mask, rows, self.tile_n, m_block, sq, sk, window_left,
                                               window_right)
                n_min, n_max = self.split_range(n_min, n_max, split, n_split)
                fields = (Int32(1), b, head, m_block, split, n_split, cu_q[b], cu_k[b], sq, sk, streams, rows,
                          n_min, n_max)
                if lane == 0:
                    for i in cutlass.range_constexpr(TILE_INFO):
                        sTile[i, tile_state.index] = fields[i]
                pipe_tile.producer_commit(tile_state)
                tile_state.advance()
                pipe_tile.producer_acquire(tile_state)
            t, slot, phase = self.claim(t, tile_counter, scheduler_mode, total, rank, storage, slot, phase)
        # End marker for the producer warp and the consumers, in the slot already acquired.
        if lane == 0:
            sTile[0, tile_state.index] = Int32(0)
        pipe_tile.producer_commit(tile_state)

    @cute.jit
    def load_packed_q(self, q_box, box: cutlass.Constexpr, sQ, q_state, pipe_q, off_q: Int32, head_kv: Int32,
                      m_block: Int32, pack_gqa: Int32, rows: Int32):
        """Q tile of a GQA-packed m-block or of a half tile (pack_gqa may be 1 there) whose rows per query head
        equal `box`: tile row r holds query m_block * rows + r % rows of query head head_kv * pack_gqa + r // rows
        (head-major), so each query head's rows are one TMA box (q_box). A half tile (tile_rows) fills rows
        0..TILE_M/2-1 and repeats them below (the barrier expects a full tile's bytes; the second consumer warpgroup
        computes on the copy). Why: as sixteen 8-row chunks (load_q_chunks), addressed with run-time divisions by
        the rows per head, mixed-serve's packed prefill tiles waited ~3 us for their Q (H200 timeline)."""
        atom, mQb = q_box
        boxes = cute.zipped_divide(sQ[None, None, q_state.index], (box, self.hdim))
        bar = pipe_q.producer_get_barrier(q_state)
        span = rows * pack_gqa  # TILE_M, or TILE_M / 2 for a half tile: a power of two either way
        for j in cutlass.range_constexpr(self.tile_m // box):
            h = head_kv * pack_gqa + ((j * box) & (span - 1)) // box
            self.load_q_rows(atom, mQb, boxes[None, (j, 0)], box, off_q, h, m_block, bar)

    @cute.jit
    def load_kv(self, atom, src, dst, bar, kv_policy: Int64):
        """One K or V block into its stage; in a pair variant this CTA's half, multicast to both CTAs."""
        if const_expr(self.ctas == 2):
            cute.copy(atom, src, dst, tma_bar_ptr=bar, mcast_mask=cutlass.Int16(3), cache_policy=kv_policy)
        else:
            cute.copy(atom, src, dst, tma_bar_ptr=bar, cache_policy=kv_policy)

    @cute.jit
    def load_q_chunks(self, q_box, sQ, q_state, pipe_q, off_q: Int32, head_kv: Int32, m_block: Int32,
                      pack_gqa: Int32, rows: Int32):
        """Q tile of a GQA-packed m-block or of a half tile (pack_gqa may be 1 there): tile row r holds query
        m_block * rows + r % rows of query head head_kv * pack_gqa + r // rows (head-major), loaded as
        TILE_M / Q_CHUNK chunks of Q_CHUNK rows (one TMA each; rows is a multiple of Q_CHUNK, so a chunk never
        straddles two heads). A half tile (tile_rows) fills rows 0..TILE_M/2-1 and repeats them below (the barrier
        expects a full tile's bytes; the second consumer warpgroup computes on the copy). D >= 192 only: with
        load_packed_q's code for four box heights their 24-register producer spilled."""
        tma_q8, mQ8 = q_box
        chunks = cute.zipped_divide(sQ[None, None, q_state.index], (Q_CHUNK, self.hdim))
        bar = pipe_q.producer_get_barrier(q_state)
        span = rows * pack_gqa  # TILE_M, or TILE_M / 2 for a half tile
        for c in cutlass.range_constexpr(self.tile_m // Q_CHUNK):
            r = (c * Q_CHUNK) % span
            h = head_kv * pack_gqa + r // rows
            i0 = m_block * rows + r % rows
            self.load_q_rows(tma_q8, mQ8, chunks[None, (c, 0)], Q_CHUNK, off_q, h, i0 // Q_CHUNK, bar)

    @cute.jit
    def load_q_rows(self, atom, mQb, dst, height: cutlass.Constexpr, off_q: Int32, h: Int32, block: Int32, bar):
        """One TMA load (atom, over the Q view mQb) of rows [block * height, + height) of query head h of the
        sequence at off_q into the shared-memory box dst; Q is read once, so it is marked evict-first in L2."""
        gQ = cute.local_tile(cute.domain_offset((off_q, 0, 0), mQb)[None, None, h], (height, self.hdim), (None, 0))
        tQs, tQg = cpasync.tma_partition(atom, 0, cute.make_layout(1), dst, cute.group_modes(gQ, 0, 2))
        cute.copy(atom, tQg[None, block], tQs, tma_bar_ptr=bar, cache_policy=Int64(L2_EVICT_FIRST))

    # ----------------------------------------------------------------------------------------- padding rows
    @cute.jit
    def fill_padding(self, mO: cute.Tensor, mLSE: cute.Tensor, cu_q: cute.Tensor, seq_q: cute.Tensor,
                     fill_warp: Int32):
        """o = 0, lse = -inf on rows no sequence uses: [cu_q[b] + seqlen_q[b], cu_q[b+1]) and [cu_q[B], total_q)."""
        lane = cute.arch.lane_idx()
        num_batch = seq_q.shape[0]
        total_q = mO.shape[0]
        num_heads = mO.shape[1]
        first = cute.arch.block_idx()[0] * FILL_WARPS + fill_warp
        stride = cute.arch.grid_dim()[0] * FILL_WARPS
        row_elems = num_heads * self.hdim_v
        zero = Float32(0.0).to(mO.element_type)
        for s in cutlass.range(first, num_batch + 1, stride, unroll=1):
            start = cu_q[num_batch]
            end = total_q
            if s < num_batch:
                start = cu_q[s] + seq_q[s]
                end = cu_q[s + 1]
            for tok in cutlass.range(start, end, unroll=1):
                for e in cutlass.range(lane, row_elems, 32, unroll=1):
                    mO[tok, e // self.hdim_v, e % self.hdim_v] = zero
                for h in cutlass.range(lane, num_heads, 32, unroll=1):
                    mLSE[h, tok] = -Float32.inf

    # ---------------------------------------------------------------------------------------------- consumer
    @cute.jit
    def consumer(self, tiled_mma_qk, tiled_mma_pv, sQ, sK, sV, sTile, sMerge, sStats, sOrder, pipe_q, pipe_k, pipe_v,
                 pipe_tile, tma_o, mOt, mO, mLSE, mOp, mLSEp, softmax_scale: Float32,
                 softcap: Float32, window_left: Int32, window_right: Int32, pack_gqa: Int32, tidx: Int32,
                 tile_counter: cute.Tensor):
        tm, tn = self.tile_m, self.tile_n
        stamps = cute.make_rmem_tensor(cute.make_layout(len(STAMPS)), Int32)  # timeline builds only
        slot = Int32(0)
        wg = cute.arch.make_warp_uniform(tidx // 128)
        wg_layout = cute.make_layout(tm // 64, stride=128)
        wg_qk = tiled_mma_qk.get_slice(wg_layout(wg))
        wg_pv = tiled_mma_pv.get_slice(wg_layout(wg))
        thr_qk = tiled_mma_qk.get_slice(tidx)
        thr_pv = tiled_mma_pv.get_slice(tidx)

        tSrQ = tiled_mma_qk.make_fragment_A(wg_qk.partition_A(sQ))  # (MMA, MMA_M, MMA_K, q_stages)
        tSrK = tiled_mma_qk.make_fragment_B(wg_qk.partition_B(sK))  # (MMA, MMA_N, MMA_K, stages)
        tOrV = tiled_mma_pv.make_fragment_B(wg_pv.partition_B(sV))  # (MMA, MMA_N, MMA_K, stages)
        acc_S = thr_qk.make_fragment_C(thr_qk.partition_shape_C((tm, tn)))
        acc_O = thr_pv.make_fragment_C(thr_pv.partition_shape_C((tm, self.hdim_v)))
        tOrP = cute.make_rmem_tensor(acc_as_a_layout(acc_S.layout), self.dtype)
        acc_S_mn = acc_mn(acc_S)
        acc_O_mn = acc_mn(acc_O)
        tScS_mn = acc_mn(thr_qk.partition_C(cute.make_identity_tensor((tm, tn))))
        tOcO_mn = acc_mn(thr_pv.partition_C(cute.make_identity_tensor((tm, self.hdim_v))))
        num_rows = cute.size(acc_S_mn, mode=[0])
        assert num_rows == MERGE_ROWS and cute.size(acc_O) == self.hdim_v // 2, "merge buffers sized for 2 x 64 rows"
        if const_expr(_DEBUG):
            print("acc_S", acc_S.layout, "acc_S_mn", acc_S_mn.layout, "tOrP", tOrP.layout)
            print("acc_O", acc_O.layout, "tScS_mn", tScS_mn, "tOcO_mn", tOcO_mn)
            print("tSrQ", tSrQ.layout, "tSrK", tSrK.layout, "tOrV", tOrV.layout)
            print("pv tv_layout_A", tiled_mma_pv.tv_layout_A, "qk tv_layout_C", tiled_mma_qk.tv_layout_C)
        row_max = cute.make_rmem_tensor(cute.make_layout(num_rows), Float32)
        row_sum = cute.make_rmem_tensor(cute.make_layout(num_rows), Float32)
        row_corr = cute.make_rmem_tensor(cute.make_layout(num_rows), Float32)
        order_slot = cute.make_tensor(sOrder.iterator + tidx // 32, cute.make_layout(1))  # this warp's word

        # Softcap folds the scale into tanh's argument; the exp2 scale is then softcap * log2(e).
        logit_scale, tanh_in_scale, scale_log2 = softmax_scales(softmax_scale, softcap)

        tile_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, TILE_STAGES)
        q_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, self.q_stages)
        k_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, self.stages)
        v_state = pipeline.make_pipeline_state(pipeline.PipelineUserType.Consumer, self.stages)
        if const_expr(self.sched_barrier):
            if wg == 0:  # warpgroup 1 issues its GEMMs first
                cute.arch.barrier_arrive(barrier_id=SCHED_BARRIER_ID, number_of_threads=256)

        # The Q stage whose O rows this warpgroup stored by TMA (stored = 1): released once the store has read it,
        # after the next tile's first S GEMM (the producer refills it for the tile after that).
        stored = Int32(0)
        stored_stage = Int32(0)
        # The scheduler warp posts each tile with its offsets, lengths, query rows per head (tile_rows) and key
        # block range (this split's), so a tile starts without a chain of loads and divisions.
        # A tile's mailbox slot is released at the tile's end, so the scheduler claims a ticket only when a tile
        # ends (the producer has the tile posted after it to load meanwhile).
        (valid, b, head, m_block, split, n_split, off_q, off_k, sq, sk, streams, rows, n_min,
         n_max) = self.read_mailbox(pipe_tile, tile_state, sTile, release=False)
        while valid != 0:
            self.stamp(stamps, "start")
            # A half tile's rows all lie in the first warpgroup's 64 (repeated in the second's): the two warpgroups
            # take alternate key blocks of it and merge their softmax states; the first writes the output.
            half = rows * pack_gqa <= tm // 2
            active = wg == 0 or not half
            row0 = m_block * rows
            if const_expr(self.staged_epilogue):
                if not (n_max > n_min and not half):
                    stored = self.release_stored(pipe_q, stored, stored_stage, tidx)
            for r in cutlass.range_constexpr(num_rows):
                row_max[r] = -Float32.inf
                row_sum[r] = Float32(0.0)
            acc_O.fill(0.0)
            if n_max > n_min and not half:
                pipe_q.consumer_wait(q_state)
                # Intra-warpgroup overlap as written: the PV GEMM of block j is issued with block j+1's S GEMM
                # (ptxas serialises it with the softmax unless order_pv; see Design notes). P of block j sits
                # in tOrP (its own registers), so acc_S can be refilled.
                pipe_k.consumer_wait(k_state)
                self.stamp(stamps, "inputs")
                self.gemm_qk(tiled_mma_qk, acc_S, tSrQ, tSrK, q_state.index, k_state.index)
                warpgroup.wait_group(0)
                if const_expr(self.staged_epilogue):
                    stored = self.release_stored(pipe_q, stored, stored_stage, tidx)
                self.stamp(stamps, "first_s")
                pipe_k.consumer_release(k_state)
                k_state.advance()
                self.score_block(acc_S, acc_S_mn, tScS_mn, row_max, row_sum, row_corr, n_max - 1, row0, sq,
                                 sk, window_left, window_right, softcap, tanh_in_scale, scale_log2, rows)
                convert_packed(acc_S, tOrP)
                self.stamp(stamps, "first_p")
                for i in cutlass.range(n_max - 1 - n_min, unroll=1):
                    n = n_max - 2 - i
                    self.overlapped_block(tiled_mma_qk, tiled_mma_pv, acc_S, acc_S_mn, tScS_mn, acc_O, tOrP, tSrQ,
                                          tSrK, tOrV, pipe_k, pipe_v, q_state, k_state, v_state, row_max, row_sum,
                                          row_corr, n, row0, sq, sk, window_left, window_right, softcap,
                                          tanh_in_scale, scale_log2, rows, wg, self.sched_barrier, order_slot,
                                          self.lazy_rescale, self.order_pv)
                    k_state.advance()
                    v_state.advance()
                    # O holds sum over blocks > n at the old max: rescale, then P of block n.
                    self.rescale_o(acc_O_mn, row_corr, self.lazy_rescale)
                    convert_packed(acc_S, tOrP)
                if const_expr(not self.staged_epilogue):
                    pipe_q.consumer_release(q_state)
                self.stamp(stamps, "loop_end")
                pipe_v.consumer_wait(v_state)
                self.gemm_pv(tiled_mma_pv, acc_O, tOrP, tOrV, v_state.index)
                warpgroup.wait_group(0)
                self.stamp(stamps, "last_pv")
                pipe_v.consumer_release(v_state)
                v_state.advance()
                if const_expr(not self.staged_epilogue):
                    q_state.advance()
            if n_max > n_min and half:
                # Warpgroup wg computes key-block visits wg, wg + 2, ... (block n_max - 1 - visit) on the same
                # query rows, with the intra-warpgroup overlap, and only waits for and releases the other's stages
                # (in visit order, so every release lands in its phase). No GEMM ping-pong: each warpgroup has
                # its own blocks. Why: a decode tile is memory-bound, but with one warpgroup doing all its tensor
                # and softmax work a CTA streamed only ~52 GB/s of K/V (H200), so decodes needed ~85 SMs to reach
                # the memory's rate and held back the prefill tiles of mixed batches.
                own = (n_max - n_min + 1 - wg) // 2
                pipe_q.consumer_wait(q_state)
                if wg == 1:  # K of visit 0 belongs to the first warpgroup
                    self.pass_stage(pipe_k, k_state)
                    k_state.advance()
                if own > 0:
                    pipe_k.consumer_wait(k_state)
                    self.gemm_qk(tiled_mma_qk, acc_S, tSrQ, tSrK, q_state.index, k_state.index)
                    warpgroup.wait_group(0)
                    pipe_k.consumer_release(k_state)
                    k_state.advance()
                    self.score_block(acc_S, acc_S_mn, tScS_mn, row_max, row_sum, row_corr, n_max - 1 - wg, row0,
                                     sq, sk, window_left, window_right, softcap, tanh_in_scale, scale_log2, rows)
                    convert_packed(acc_S, tOrP)
                    if wg == 1:  # V of visit 0
                        self.pass_stage(pipe_v, v_state)
                        v_state.advance()
                    for i in cutlass.range(own - 1, unroll=1):
                        n = n_max - 3 - wg - 2 * i  # this warpgroup's next block; the other's lies between
                        self.pass_stage(pipe_k, k_state)
                        k_state.advance()
                        self.overlapped_block(tiled_mma_qk, tiled_mma_pv, acc_S, acc_S_mn, tScS_mn, acc_O, tOrP,
                                              tSrQ, tSrK, tOrV, pipe_k, pipe_v, q_state, k_state, v_state, row_max,
                                              row_sum, row_corr, n, row0, sq, sk, window_left, window_right, softcap,
                                              tanh_in_scale, scale_log2, rows, wg, False, order_slot, False, False)
                        k_state.advance()
                        v_state.advance()
                        self.pass_stage(pipe_v, v_state)
                        v_state.advance()
                        self.rescale_o(acc_O_mn, row_corr)
                        convert_packed(acc_S, tOrP)
                    # The other warpgroup's block follows this one's last: the tile has visits past
                    # wg + 2 * (own - 1).
                    trailing = wg + 2 * own - 1 < n_max - n_min
                    if trailing:
                        self.pass_stage(pipe_k, k_state)
                        k_state.advance()
                    pipe_v.consumer_wait(v_state)
                    self.gemm_pv(tiled_mma_pv, acc_O, tOrP, tOrV, v_state.index)
                    warpgroup.wait_group(0)
                    pipe_v.consumer_release(v_state)
                    v_state.advance()
                    if trailing:
                        self.pass_stage(pipe_v, v_state)
                        v_state.advance()
                else:  # a one-block tile: the second warpgroup only releases V of visit 0
                    self.pass_stage(pipe_v, v_state)
                    v_state.advance()
                if n_max - n_min > 1:
                    if wg == 0:
                        cute.arch.barrier_arrive(barrier_id=MERGE_BARRIER_ID, number_of_threads=256)
                        cute.arch.barrier(barrier_id=MERGE_BARRIER_ID + 1, number_of_threads=256)
                        self.merge_in(acc_O_mn, row_max, row_sum, sMerge, sStats, q_state.index, scale_log2,
                                      tidx)
                        if const_expr(self.staged_epilogue):  # every state read before O is staged over it
                            cute.arch.barrier(barrier_id=EPILOGUE_BARRIER_ID, number_of_threads=128)
                    else:
                        cute.arch.barrier(barrier_id=MERGE_BARRIER_ID, number_of_threads=256)
                        self.merge_out(acc_O_mn, row_max, row_sum, sMerge, sStats, q_state.index, tidx)
                        cute.arch.barrier_arrive(barrier_id=MERGE_BARRIER_ID + 1, number_of_threads=256)
                if const_expr(self.staged_epilogue):  # the first warpgroup stages its O in it, then releases
                    if wg == 1:
                        pipe_q.consumer_release(q_state)
                        q_state.advance()
                else:
                    pipe_q.consumer_release(q_state)
                    q_state.advance()

            if const_expr(self.staged_epilogue):
                if n_max > n_min and active:
                    # O goes out through this tile's Q stage (its last GEMM has read it); released after.
                    if n_split == 1:
                        # All 64 rows of this warpgroup inside the sequence (one query head): one TMA store.
                        by_tma = rows == self.tile_m and row0 + (wg + 1) * (self.tile_m // 2) <= sq
                        self.epilogue_staged(acc_O_mn, tOcO_mn, row_max, row_sum, sQ, q_state.index, tma_o, mOt,
                                             mO, mLSE, off_q, row0, sq, head, logit_scale, pack_gqa, rows, wg, tidx,
                                             by_tma, stamps)
                        if by_tma:
                            stored = Int32(1)
                            stored_stage = q_state.index
                        else:
                            pipe_q.consumer_release(q_state)
                    else:
                        self.epilogue(acc_O_mn, tOcO_mn, row_max, row_sum, mO, mLSE, mOp, mLSEp, off_q, row0, sq,
                                      head, logit_scale, pack_gqa, rows, split, n_split)
                        pipe_q.consumer_release(q_state)
                    q_state.advance()
                if n_max <= n_min and active:
                    self.epilogue(acc_O_mn, tOcO_mn, row_max, row_sum, mO, mLSE, mOp, mLSEp, off_q, row0, sq, head,
                                  logit_scale, pack_gqa, rows, split, n_split)
            else:
                if active:
                    self.epilogue(acc_O_mn, tOcO_mn, row_max, row_sum, mO, mLSE, mOp, mLSEp, off_q, row0, sq, head,
                                  logit_scale, pack_gqa, rows, split, n_split)

            if const_expr(TIMELINE):
                self.stamp(stamps, "end")
                self.write_timeline(tile_counter, stamps, slot, tidx, b, head, m_block, split, n_split,
                                    n_max - n_min)
                slot += 1
            pipe_tile.consumer_release(tile_state)
            tile_state.advance()
            (valid, b, head, m_block, split, n_split, off_q, off_k, sq, sk, streams, rows, n_min,
             n_max) = self.read_mailbox(pipe_tile, tile_state, sTile, release=False)
        if const_expr(self.staged_epilogue):
            # The last stored Q stage is still being read: wait before the CTA (and its shared memory) goes. Stores
            # already waited for with read=True are like any store in flight; the kernel's end drains them.
            if stored != 0 and tidx % 128 == 0:
                cute.arch.cp_async_bulk_wait_group(0)

    @cute.jit
    def release_stored(self, pipe_q, stored: Int32, stored_stage: Int32, tidx: Int32):
        """Release the Q stage of this warpgroup's last TMA-stored O (if any) once the store has read it; returns
        the new `stored` (0). The issuing thread (lane 0 of the warpgroup's first warp) waits and is also that
        warp's releasing thread."""
        if stored != 0:
            if tidx % 128 == 0:
                cute.arch.cp_async_bulk_wait_group(0, read=True)
            pipe_q.consumer_release(pipeline.PipelineState(self.q_stages, Int32(0), stored_stage, Int32(0)))
        return Int32(0)

    def stamp(self, stamps: cute.Tensor, name: str):
        """Timeline builds: the global timer now as this tile's stamp `name` (common_timeline.STAMPS); "start" also
        fills the later stamps, so phases a tile does not pass (half tiles, empty tiles) read as zero time."""
        if const_expr(TIMELINE):
            now = globaltimer_lo()
            for i in range(STAMPS.index(name), len(STAMPS) if name == "start" else STAMPS.index(name) + 1):
                stamps[i] = now

    @cute.jit
    def write_timeline(self, tile_counter: cute.Tensor, stamps: cute.Tensor, slot: Int32, tidx: Int32, b: Int32,
                       head: Int32, m_block: Int32, split: Int32, n_split: Int32, blocks: Int32):
        """Timeline builds: the first consumer thread writes this tile's record (common_timeline layout) into the
        CTA's slot `slot` after the tile counter (the last slot takes every tile beyond the slots)."""
        if tidx == 0:
            e = 1 + (cute.arch.block_idx()[0] * TIMELINE_SLOTS + cutlass.min(slot, TIMELINE_SLOTS - 1)) * \
                TIMELINE_FIELDS
            tile_counter[e + 0] = b  # TILE_FIELDS, in order
            tile_counter[e + 1] = head
            tile_counter[e + 2] = m_block
            tile_counter[e + 3] = split
            tile_counter[e + 4] = n_split
            tile_counter[e + 5] = blocks
            for i in cutlass.range_constexpr(len(STAMPS)):
                tile_counter[e + len(TILE_FIELDS) + i] = stamps[i]

    @cute.jit
    def tile_rows(self, sq: Int32, m_block: Int32, pack_gqa: Int32):
        """(query rows per head, m-block) a tile runs as: TILE_M / pack_gqa rows, or half that where the m-block
        holds at most TILE_M / 2 real rows (a short or decode-shaped sequence, or the last m-block of a longer one;
        pack_gqa <= HALF_TILE_MAX_PACK), its index then doubled so its first query row stays the same. A half tile's
        real rows all lie in the first consumer warpgroup's 64, repeated in the second's, so the two warpgroups split
        its key blocks instead of both computing a full tile of mostly empty rows (decode tiles are memory-bound;
        that wasted tensor work held other SMs' prefill tiles back in mixed batches)."""
        rows = self.tile_m // pack_gqa
        if pack_gqa <= HALF_TILE_MAX_PACK and (sq - m_block * rows) * pack_gqa <= self.tile_m // 2:
            rows = rows // 2
            m_block = m_block * 2
        return rows, m_block

    def gemm_qk(self, tiled_mma: cute.TiledMma, acc_S: cute.Tensor, tSrQ: cute.Tensor, tSrK: cute.Tensor,
                q_stage: Int32, stage: Int32):
        """Issue S = Q K^T on K stage `stage` (the atom is rebuilt: see _sm90.gemm_ss)."""
        gemm_ss(self.make_mma_qk(), acc_S, tSrQ, tSrK, q_stage, stage)

    def gemm_pv(self, tiled_mma: cute.TiledMma, acc_O: cute.Tensor, tOrP: cute.Tensor, tOrV: cute.Tensor,
                stage: Int32):
        """Issue O += P V (P from registers) on V stage `stage`."""
        gemm_rs(self.make_mma_pv(), acc_O, tOrP, tOrV, stage)

    @cute.jit
    def overlapped_block(self, tiled_mma_qk, tiled_mma_pv, acc_S, acc_S_mn, tScS_mn, acc_O, tOrP, tSrQ, tSrK, tOrV,
                         pipe_k, pipe_v, q_state, k_state, v_state, row_max, row_sum, row_corr, n: Int32,
                         row0: Int32, sq: Int32, sk: Int32, window_left: Int32, window_right: Int32,
                         softcap: Float32, tanh_in_scale: Float32, scale_log2: Float32, rows: Int32, wg: Int32,
                         ping_pong: cutlass.Constexpr, order_slot: cute.Tensor,
                         lazy: cutlass.Constexpr, order: cutlass.Constexpr):
        """One step of the intra-warpgroup overlap: S = Q K^T of block n (K stage k_state) issued with O += P V of
        the previous block (V stage v_state, P in tOrP), block n's scores softmaxed (while the PV GEMM runs only
        with order: ptxas otherwise hoists the PV wait above the softmax), both stages released. The caller
        advances k_state and v_state (see BUILD.md) and rescales O.
        order: keep the softmax ahead of the PV wait (order_slot: this warp's word, written, never read).
        lazy: rescale O lazily (score_block).
        ping_pong: take the tensor cores in turn with the other consumer warpgroup (full tiles)."""
        pipe_k.consumer_wait(k_state)
        if const_expr(ping_pong):
            self.sched_wait(wg)
        self.gemm_qk(tiled_mma_qk, acc_S, tSrQ, tSrK, q_state.index, k_state.index)
        pipe_v.consumer_wait(v_state)
        self.gemm_pv(tiled_mma_pv, acc_O, tOrP, tOrV, v_state.index)
        if const_expr(ping_pong):
            self.sched_arrive(wg)
        warpgroup.wait_group(1)  # S of block n is ready; PV of the previous block may still run
        pipe_k.consumer_release(k_state)
        self.score_block(acc_S, acc_S_mn, tScS_mn, row_max, row_sum, row_corr, n, row0, sq, sk, window_left,
                         window_right, softcap, tanh_in_scale, scale_log2, rows, lazy)
        if const_expr(order):
            # ptxas hoists the wait below to the top of the softmax (it may: the softmax touches no register of the
            # PV GEMM). A shared-memory store of a value that needs every exponential of the block keeps the
            # softmax ahead of it: ptxas keeps stores before wgmma waits.
            order_slot[0] = row_sum[0] + row_sum[1]
        warpgroup.wait_group(0)
        pipe_v.consumer_release(v_state)

    def pass_stage(self, pipe, state):
        """A half tile's stage that the other consumer warpgroup computes on: wait for it and release it at once, so
        every release of the stage lands in its phase (the caller advances `state`)."""
        pipe.consumer_wait(state)
        pipe.consumer_release(state)

    def sched_wait(self, wg: Int32):
        """Ping-pong between the two consumer warpgroups: wait for this warpgroup's turn to issue GEMMs."""
        if self.sched_barrier:
            cute.arch.barrier(barrier_id=SCHED_BARRIER_ID + wg, number_of_threads=256)

    def sched_arrive(self, wg: Int32):
        """Hand the tensor cores to the other consumer warpgroup (its softmax overlapped our GEMMs)."""
        if self.sched_barrier:
            cute.arch.barrier_arrive(barrier_id=SCHED_BARRIER_ID + 1 - wg, number_of_threads=256)

    @cute.jit
    def score_block(self, acc_S: cute.Tensor, acc_S_mn: cute.Tensor, tScS_mn: cute.Tensor, row_max: cute.Tensor,
                    row_sum: cute.Tensor, row_corr: cute.Tensor, n: Int32, row0: Int32, sq: Int32, sk: Int32,
                    window_left: Int32, window_right: Int32, softcap: Float32, tanh_in_scale: Float32,
                    scale_log2: Float32, rows: Int32, lazy: cutlass.Constexpr = False):
        """Scores of block n -> unnormalised probabilities in acc_S: softcap, mask, online softmax.
        Online softmax: new row max (4 threads share a row), P = exp2(S * c - max * c) (one FFMA + EX2),
        row_corr = exp2((old max - new max) * c) applied to the running row sum here and to O by rescale_o.
        lazy: a row keeps its old max while the block raises it by at most RESCALE_LOG2 in exp2 units (row_corr = 1,
        P <= 2**RESCALE_LOG2: exact, as exp2 is shift-invariant, and far from overflow), so once the maxima
        settle rescale_o(lazy=True) skips O's multiplies.
        A row with no visible key so far keeps max -inf (treated as 0 in the exponent: P = 0, corr = 0)."""
        if softcap > Float32(0.0):
            for e in cutlass.range_constexpr(cute.size(acc_S)):
                acc_S[e] = cute.math.tanh(acc_S[e] * tanh_in_scale)
        mask_scores(self.mask, rows, self.tile_n, acc_S_mn, tScS_mn, n, row0, sq, sk, window_left, window_right,
                    thread0_coords(self.make_mma_qk(), (self.tile_m, self.tile_n)))
        for r in cutlass.range_constexpr(cute.size(acc_S_mn, mode=[0])):
            mx = acc_S_mn[r, 0]
            for c in cutlass.range_constexpr(1, cute.size(acc_S_mn, mode=[1])):
                mx = cute.arch.fmax(mx, acc_S_mn[r, c])
            mx = cute.arch.fmax(mx, cute.arch.shuffle_sync_bfly(mx, offset=1))
            mx = cute.arch.fmax(mx, cute.arch.shuffle_sync_bfly(mx, offset=2))
            new_max = cute.arch.fmax(mx, row_max[r])
            if const_expr(lazy):
                # Keep a finite old max unless the block raises it by more than RESCALE_LOG2.
                if row_max[r] != -Float32.inf:
                    if (new_max - row_max[r]) * scale_log2 <= Float32(RESCALE_LOG2):
                        new_max = row_max[r]
            max_scaled = self.exp2_offset(new_max, scale_log2)
            if const_expr(lazy):
                corr = Float32(1.0)  # exactly 1 for a row that kept its max (rescale_o tests for it)
                if new_max != row_max[r]:
                    corr = cute.math.exp2(row_max[r] * scale_log2 - max_scaled, fastmath=True)
            else:
                corr = cute.math.exp2(row_max[r] * scale_log2 - max_scaled, fastmath=True)
            row_max[r] = new_max
            row_corr[r] = corr
            s = Float32(0.0)
            for c in cutlass.range_constexpr(cute.size(acc_S_mn, mode=[1])):
                p = cute.math.exp2(acc_S_mn[r, c] * scale_log2 - max_scaled, fastmath=True)
                acc_S_mn[r, c] = p
                s += p
            row_sum[r] = row_sum[r] * corr + s

    @cute.jit
    def exp2_offset(self, row_max: Float32, scale_log2: Float32):
        """row_max * c, subtracted inside exp2 for a row whose running max is row_max; 0 for a row with no visible
        key yet (max -inf), so its P and correction factors come out 0 rather than NaN."""
        offset = row_max * scale_log2
        if row_max == -Float32.inf:
            offset = Float32(0.0)
        return offset

    @cute.jit
    def rescale_o(self, acc_O_mn: cute.Tensor, row_corr: cute.Tensor, lazy: cutlass.Constexpr = False):
        """O *= row_corr; lazy: skipped by a warp none of whose rows moved its max (score_block's lazy rescale)."""
        if const_expr(lazy):
            least = row_corr[0]  # row_corr is 1 for a row that kept its max, below 1 for one that moved it
            for r in cutlass.range_constexpr(1, cute.size(acc_O_mn, mode=[0])):
                least = cute.arch.fmin(least, row_corr[r])
            if cute.arch.vote_any_sync(least < Float32(1.0)):
                self.scale_rows(acc_O_mn, row_corr)
        else:
            self.scale_rows(acc_O_mn, row_corr)

    @cute.jit
    def scale_rows(self, acc_O_mn: cute.Tensor, row_corr: cute.Tensor):
        for r in cutlass.range_constexpr(cute.size(acc_O_mn, mode=[0])):
            for c in cutlass.range_constexpr(cute.size(acc_O_mn, mode=[1])):
                acc_O_mn[r, c] = acc_O_mn[r, c] * row_corr[r]

    @cute.jit
    def merge_out(self, acc_O_mn: cute.Tensor, row_max: cute.Tensor, row_sum: cute.Tensor, sMerge: cute.Tensor,
                  sStats: cute.Tensor, q_stage: Int32, tidx: Int32):
        """Second warpgroup of a half tile: its O accumulator, row maxima and partial row sums to shared memory,
        each thread's values where the first warpgroup's thread of the same rank (same rows and columns) reads
        them."""
        t = tidx % 128
        for r in cutlass.range_constexpr(cute.size(acc_O_mn, mode=[0])):
            sStats[0, r, t] = row_max[r]
            sStats[1, r, t] = row_sum[r]
            for c in cutlass.range_constexpr(cute.size(acc_O_mn, mode=[1])):
                sMerge[cute.crd2idx((r, c), acc_O_mn.layout), t, q_stage] = acc_O_mn[r, c]

    @cute.jit
    def merge_in(self, acc_O_mn: cute.Tensor, row_max: cute.Tensor, row_sum: cute.Tensor, sMerge: cute.Tensor,
                 sStats: cute.Tensor, q_stage: Int32, scale_log2: Float32, tidx: Int32):
        """First warpgroup of a half tile: folds the second's state (merge_out) into its own, both rescaled to the
        larger row maximum, as the online softmax does for a new block."""
        t = tidx % 128
        for r in cutlass.range_constexpr(cute.size(acc_O_mn, mode=[0])):
            other_max = sStats[0, r, t]
            new_max = cute.arch.fmax(row_max[r], other_max)
            max_scaled = self.exp2_offset(new_max, scale_log2)
            mine = cute.math.exp2(row_max[r] * scale_log2 - max_scaled, fastmath=True)
            other = cute.math.exp2(other_max * scale_log2 - max_scaled, fastmath=True)
            row_max[r] = new_max
            row_sum[r] = row_sum[r] * mine + sStats[1, r, t] * other
            for c in cutlass.range_constexpr(cute.size(acc_O_mn, mode=[1])):
                theirs = sMerge[cute.crd2idx((r, c), acc_O_mn.layout), t, q_stage]
                acc_O_mn[r, c] = acc_O_mn[r, c] * mine + theirs * other

    def check_staged_o_layout(self):
        """Trace-time check of what the staged epilogue's stmatrix stores rest on (staged_o_lane_row): consumer
        thread t's O accumulator value (r, c) is row 64 (t // 128) + 16 (t % 128 // 32) + (t % 32) // 4 + 8 r,
        column 8 (c // 2) + 2 (t % 4) + c % 2."""
        for t in range(self.tile_m * 2):
            coords = thread_coords(self.make_mma_pv(), (self.tile_m, self.hdim_v), t)
            for r in range(cute.size(coords, mode=[0])):
                for c in range(cute.size(coords, mode=[1])):
                    want = (64 * (t // 128) + 16 * (t % 128 // 32) + (t % 32) // 4 + 8 * r,
                            8 * (c // 2) + 2 * (t % 4) + c % 2)
                    assert tuple(coords[r, c]) == want, (t, r, c, tuple(coords[r, c]), want)

    @cute.jit
    def split_tile_row(self, row: Int32, rows: Int32):
        """(row % rows, row // rows) of tile row `row`: its query row within its head and its head within the tile.
        rows (query rows per head: TILE_M / pack_gqa, halved in half tiles) is a power of two, as only 2, 4, 8 or
        16 heads are packed (metadata.packable_qpk), so a mask and a shift replace the integer division (~20
        dependent instructions per row in every epilogue)."""
        return row & (rows - 1), row >> cute.arch.log2_of_pow2_int(rows)

    @cute.jit
    def row_scale_and_lse(self, partial_sum: Float32, row_max: Float32, logit_scale: Float32):
        """A row's 1 / sum and LSE = max * c + ln(sum), from this thread's share of the sum (4 threads hold a row);
        a row with no visible key gets 0 and -inf."""
        total = partial_sum
        total += cute.arch.shuffle_sync_bfly(total, offset=1)
        total += cute.arch.shuffle_sync_bfly(total, offset=2)
        # Approximate reciprocal and log2 (one MUFU each): the IEEE division and the library logarithm cost ~60
        # instructions and a branch per row in every tile's epilogue. rcp.approx is within 1 ulp, lg2.approx within
        # 2^-22 absolute; O is rounded to bf16 / fp16 and the LSE feeds exp2 in the backward.
        has_keys = total > Float32(0.0)
        inv = Float32(0.0)
        lse_val = -Float32.inf
        if has_keys:
            inv = cute.arch.rcp_approx(total)
            lse_val = row_max * logit_scale + cute.math.log2(total, fastmath=True) * Float32(LN2)
        return inv, lse_val

    @cute.jit
    def epilogue(self, acc_O_mn: cute.Tensor, tOcO_mn: cute.Tensor, row_max: cute.Tensor, row_sum: cute.Tensor,
                 mO: cute.Tensor, mLSE: cute.Tensor, mOp: cute.Tensor, mLSEp: cute.Tensor, off_q: Int32,
                 row0: Int32, sq: Int32, head: Int32, logit_scale: Float32, pack_gqa: Int32, rows: Int32,
                 split: Int32, n_split: Int32):
        """O / row_sum and LSE = max * c + ln(sum) for rows < seqlen_q; empty rows -> 0 and -inf."""
        for r in cutlass.range_constexpr(cute.size(acc_O_mn, mode=[0])):
            inv, lse_val = self.row_scale_and_lse(row_sum[r], row_max[r], logit_scale)
            i, hh = self.split_tile_row(tOcO_mn[r, 0][0], rows)
            i = row0 + i
            h = head * pack_gqa + hh
            if i < sq:
                tok = off_q + i
                if n_split == 1:
                    for c in cutlass.range_constexpr(cute.size(acc_O_mn, mode=[1])):
                        mO[tok, h, tOcO_mn[0, c][1]] = (acc_O_mn[r, c] * inv).to(mO.element_type)
                    if tOcO_mn[r, 0][1] == 0:
                        mLSE[h, tok] = lse_val
                else:  # this split's normalised partial; the combine kernel merges the splits by LSE
                    for c in cutlass.range_constexpr(cute.size(acc_O_mn, mode=[1])):
                        mOp[split, tok, h, tOcO_mn[0, c][1]] = acc_O_mn[r, c] * inv
                    if tOcO_mn[r, 0][1] == 0:
                        mLSEp[split, h, tok] = lse_val

    @cute.jit
    def epilogue_staged(self, acc_O_mn: cute.Tensor, tOcO_mn: cute.Tensor, row_max: cute.Tensor,
                        row_sum: cute.Tensor, sQ: cute.Tensor, q_stage: Int32, tma_o: cute.CopyAtom,
                        mOt: cute.Tensor, mO: cute.Tensor, mLSE: cute.Tensor, off_q: Int32, row0: Int32, sq: Int32,
                        head: Int32, logit_scale: Float32, pack_gqa: Int32, rows: Int32, wg: Int32, tidx: Int32,
                        by_tma, stamps: cute.Tensor):
        """epilogue() for a tile without splits, with O staged in shared memory: each thread writes its
        normalised (row, column pair) values into the tile's Q stage (same swizzled layout; this warpgroup's 64
        rows only, which its own GEMMs were the last to read), then the warpgroup copies whole rows out in
        16-byte pieces. Why: stored straight from the accumulator layout, every 32-bit store covered 8 rows x 4
        bytes, and on packed-train (short causal tiles) the store queue stalled the epilogue. With `by_tma` the
        warpgroup's first thread hands all 64 rows to one TMA store instead (the caller releases the stage later)."""
        base = sQ.iterator.toint()
        swizzle = self.q_smem_layout().inner
        num_rows = cute.size(acc_O_mn, mode=[0])
        inv = cute.make_rmem_tensor(cute.make_layout(num_rows), Float32)
        for r in cutlass.range_constexpr(num_rows):
            inv[r], lse_val = self.row_scale_and_lse(row_sum[r], row_max[r], logit_scale)
            row = tOcO_mn[r, 0][0]
            i, hh = self.split_tile_row(row, rows)
            i = row0 + i
            if i < sq and tOcO_mn[r, 0][1] == 0:
                mLSE[head * pack_gqa + hh, off_q + i] = lse_val
        # stmatrix .x4 store st writes the warp's 16 rows x columns [16 st, 16 st + 16): matrix m is rows
        # 8 (m % 2) + 0..7, columns 16 st + 8 (m // 2) + 0..7, its register this thread's pair staged_o_register;
        # lane l addresses row l % 8 of matrix l // 8 (staged_o_lane_row). Why: D / 16 stores, each addressed once,
        # instead of D / 4 32-bit stores each addressed through the swizzle (staged epilogue 488 -> 227
        # instructions per thread at D = 128, with row_scale_and_lse's approximations and split_tile_row).
        lane_row, lane_col = staged_o_lane_row(tidx % 128)
        lane_row = wg * (self.tile_m // 2) + lane_row
        self.check_staged_o_layout()
        for st in cutlass.range_constexpr(cute.size(acc_O_mn, mode=[1]) // 4):
            address = swizzled_address(base, sQ.layout, (lane_row, 16 * st + lane_col, q_stage), 2, swizzle)
            pairs = [staged_o_register(st, m) for m in range(4)]
            words = [pack_pair(acc_O_mn[r, c] * inv[r], acc_O_mn[r, c + 1] * inv[r], self.dtype) for r, c in pairs]
            stmatrix_x4(address, *words)
        self.stamp(stamps, "staged")
        cute.arch.fence_proxy("async.shared", space="cta")  # a TMA store reads what these stores wrote
        cute.arch.barrier(barrier_id=EPILOGUE_BARRIER_ID + wg, number_of_threads=128)
        self.stamp(stamps, "barrier")
        t = tidx % 128
        if by_tma:
            if t == 0:
                halves = cute.zipped_divide(sQ[None, None, q_stage], (self.tile_m // 2, self.hdim_v))
                gO = cute.local_tile(cute.domain_offset((off_q, 0, 0), mOt)[None, None, head],
                                     (self.tile_m // 2, self.hdim_v), (None, 0))
                tOs, tOg = cpasync.tma_partition(tma_o, 0, cute.make_layout(1), halves[None, (wg, 0)],
                                                 cute.group_modes(gO, 0, 2))
                cute.copy(tma_o, tOs, tOg[None, (row0 + wg * (self.tile_m // 2)) // (self.tile_m // 2)])
                cute.arch.cp_async_bulk_commit_group()
        else:
            chunks = self.hdim_v // 8  # 16-byte pieces per row
            for it in cutlass.range_constexpr(64 * chunks // 128):
                k = it * 128 + t
                row = wg * 64 + k // chunks
                col = (k % chunks) * 8
                i, hh = self.split_tile_row(row, rows)
                i = row0 + i
                if i < sq:
                    src = swizzled_address(base, sQ.layout, (row, col, q_stage), 2, swizzle)
                    dst = (mO.iterator + (Int64(off_q + i) * mO.shape[1] + head * pack_gqa + hh) *
                           self.hdim_v + col).toint()
                    copy_shared_to_global_16b(src, dst)
        self.stamp(stamps, "copied")


def compile_variant(variant, arch):
    if variant not in VARIANTS:
        raise ValueError(f"unsupported fwd_sm90 variant {variant!r}; supported: dtype in {tuple(DTYPES)}, "
                         f"head_dim in {HEAD_DIMS}, mask in {MASKS}, ctas in {CTAS}")
    dtype_name, d, _, _ = variant
    dtype = DTYPES[dtype_name]
    total_q, total_k, heads, heads_kv, batch, batch1, splits = (cute.sym_int() for _ in range(7))
    i32, f32 = cutlass.Int32, cutlass.Float32
    args = (
        row_major(dtype, (total_q, heads, d), 16),
        row_major(dtype, (total_k, heads_kv, d), 16),
        row_major(dtype, (total_k, heads_kv, d), 16),
        row_major(i32, (batch1,), 4), row_major(i32, (batch1,), 4),
        row_major(i32, (batch,), 4), row_major(i32, (batch,), 4),
        row_major(i32, (batch,), 4), row_major(i32, (batch,), 4),
        row_major(i32, (batch,), 4), row_major(i32, (batch,), 4),
        row_major(i32, (batch1,), 4),
        row_major(dtype, (total_q, heads, d), 16),
        row_major(f32, (heads, total_q), 4),
        row_major(f32, (splits, total_q, heads, d), 4),
        row_major(f32, (splits, heads, total_q), 4),
        row_major(i32, (1,), 4),
        f32(1.0), f32(0.0), i32(-1), i32(-1), i32(1), i32(1), i32(1),
        make_fake_stream(),
    )
    return cute.compile(FwdSm90(variant), *args, options=f"--gpu-arch {arch}")
