"""The GPU kernel path: decides whether a call can run on the prebuilt kernels and issues the FFI calls.

Everything here is host-side JAX; the kernels themselves were compiled ahead of time (jax_fa4.build). A call runs
on kernels only when the default JAX backend is CUDA, the device's architecture has a prebuilt variant, and the
library holds the variant the call needs; `unavailable_reason()` says which of these failed.
"""

from __future__ import annotations

import functools
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jax_fa4 import device_info, ffi, metadata
from jax_fa4.kernels import common_timeline
from jax_fa4.reference import clipped_cu_seqlens, effective_lengths, token_slots

DTYPE_TAGS = {jnp.dtype(jnp.bfloat16): "bf16", jnp.dtype(jnp.float16): "fp16", jnp.dtype(jnp.float32): "f32"}


@functools.lru_cache(maxsize=None)
def _platform_reason():
    try:
        backend = jax.default_backend()
    except RuntimeError as exc:
        return f"no JAX backend: {exc}"
    if backend != "gpu":
        return f"the default JAX backend is {backend!r}, not a CUDA GPU"
    if device_info.kernel_arch() is None:
        return f"no prebuilt kernels for compute capability {device_info.compute_capability()}"
    if ffi.load() is None:
        return ffi.load_error()
    return None


def unavailable_reason():
    """None when kernels can run here, else a sentence saying why not."""
    return _platform_reason()


def arch():
    return device_info.kernel_arch()


def _require_target(module: str, tag: str) -> str:
    reason = unavailable_reason()
    if reason is not None:
        raise ValueError(f"jax_fa4 {module} kernel unavailable: {reason}")
    name = ffi.target(module, tag, arch())
    if name is None:
        built = ffi.built_variants(module, arch())
        raise ValueError(f"jax_fa4 {module} kernel has no variant {tag!r} for {arch()}; built: {built}")
    return name


def _grid_ctas(rows: int, rows_per_cta: int, waves: int = 8) -> int:
    sms = device_info.sm_count() or 132
    return int(max(1, min(-(-rows // rows_per_cta), sms * waves)))


def combine(o_partial, lse_partial, cu_seqlens_q, seqlen_q, num_splits, out, lse):
    """Merges split partials into `out`/`lse` in place (aliased) for sequences with num_splits > 1.

    o_partial [S, total_q, H, Dv] f32, lse_partial [S, H, total_q] f32; out [total_q, H, Dv]; lse [H, total_q] f32.
    Rows of sequences with one split keep what `out`/`lse` already hold.
    """
    tag = DTYPE_TAGS.get(jnp.dtype(out.dtype))
    if tag is None:
        raise ValueError(f"combine: out dtype {out.dtype} unsupported (bf16, fp16, f32)")
    target = _require_target("combine", tag)
    rows = out.shape[0] * out.shape[1]
    call = jax.ffi.ffi_call(
        target, (jax.ShapeDtypeStruct(out.shape, out.dtype), jax.ShapeDtypeStruct(lse.shape, jnp.float32)),
        input_output_aliases={5: 0, 6: 1}, vmap_method="sequential")
    return call(o_partial.astype(jnp.float32), lse_partial.astype(jnp.float32), cu_seqlens_q.astype(jnp.int32),
                seqlen_q.astype(jnp.int32), num_splits.astype(jnp.int32), out, lse.astype(jnp.float32),
                num_ctas=np.int32(_grid_ctas(rows, 4)))


# ------------------------------------------------------------------------------------------------ prepare kernel
def prepare_metadata(cfg, cu_q, cu_k, seqused_q, seqused_k):
    """SchedulerMetadata from the prepare kernel (one launch for <= 1024 sequences, four beyond)."""
    batch = int(cu_q.shape[0]) - 1
    target = _require_target("prepare", metadata.prepare_kernel_variant(batch))
    return metadata.prepare_ffi_call(target, cfg, cu_q, cu_k, seqused_q, seqused_k)


# ------------------------------------------------------------------------------------------------ forward kernel


# fwd_sm90's and bwd_dkdv_sm90's per-call tile counter (zeroed by the FFI handler; CTAs take tiles with atomics)
_TILE_COUNTER = jax.ShapeDtypeStruct((1,), jnp.int32)


def _fwd_mask(config) -> str:
    """Compiled mask variant: "local" for any window (causal with a left window included)."""
    if config.window_left >= 0 or (config.window_right >= 0 and not config.causal):
        return "local"
    return "causal" if config.causal else "none"


def _fwd_tag(config) -> str:
    dtype = DTYPE_TAGS.get(jnp.dtype(config.dtype))
    return f"{dtype}_d{config.head_dim}_{_fwd_mask(config)}"


def _variant_entry(module, config, suffix=""):
    """(target, manifest entry) of `module`'s SM90 variant for this call (tag + `suffix`), or (None, reason)."""
    arch_name = arch()
    if arch_name is None:
        return None, "no CUDA GPU with prebuilt kernels here"
    if arch_name != "sm_90a":
        return None, f"no {module} kernel for {arch_name} (SM90 only; SM100 kernels are not written yet)"
    tag = _fwd_tag(config) + suffix
    manifest = ffi.load() or {"handlers": {}}
    entry = manifest["handlers"].get(f"{module}__{tag}__sm90a")
    if entry is None:
        built = ffi.built_variants(module, arch_name)
        return None, f"the library holds no {module} variant {tag!r} (built: {built})"
    return entry["target"], entry


def _fwd_entry(config):
    """(target, manifest entry) of the forward variant for this call, or (None, reason); `_fwd_variant` raises."""
    return _variant_entry("fwd_sm90", config)


# Whether unpacked calls with an even number of query heads per KV head run the forward's "_pair" variants (two CTAs
# of a cluster on two query heads of one KV head, sharing each K/V block by TMA multicast). JAX_FA4_PAIRED_TILES=0
# turns them off, for comparisons.
PAIRED_TILES = os.environ.get("JAX_FA4_PAIRED_TILES", "1") != "0"


def _pair_target(config, need):
    """The FFI target of the forward's pair variant when this call can run it, else None: the metadata
    must leave GQA heads unpacked and every KV head must serve an even number of query heads, so that consecutive
    tiles pair up on one KV head (fwd_sm90.decode_tile).

    Why: the dense forward reads each K/V block once per 128-query tile, 34 GB of L2 reads for dense 4x8192 (32 / 8
    heads, D = 128), and under the power cap of back-to-back calls those reads cost clock. Leaving V's loads out
    (results wrong, same math) made that forward 4 % faster in the harness; the pairs halve the reads and made it
    2.5-2.9 % faster (H200, benchmarks/results/h200-2026-12-04c/)."""
    qpk = config.num_heads // config.num_kv_heads
    if not PAIRED_TILES or need.qpk != 1 or qpk % 2:
        return None
    return _variant_entry("fwd_sm90", config, "_pair")[0]


def supports(config):
    """None when the forward kernel can run `config`, else a sentence saying why not."""
    if jnp.dtype(config.dtype) not in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16)):
        return f"the forward kernel takes bfloat16 or float16, not {config.dtype}"
    if config.head_dim != config.head_dim_v:
        return f"the forward kernel needs head_dim_v == head_dim (got {config.head_dim_v} and {config.head_dim})"
    if config.total_q == 0 or config.total_k == 0 or config.batch == 0:
        return "empty inputs"
    target, entry = _fwd_entry(config)
    return entry if target is None else None


def _fwd_variant(config):
    """(target, manifest entry) of the forward variant for this call; ValueError naming why there is none."""
    target, entry = _fwd_entry(config)
    if target is None:
        raise ValueError(f"jax_fa4 forward kernel unavailable: {entry}")
    return target, entry


def resolve_scheduler_mode(scheduler_mode, metadata_config):
    """"auto" -> the two-ended walk when GQA heads are packed (decode-shaped or mostly short sequences), else the
    longest-first dynamic order; any other mode as given.

    Why: in a packed call the long tiles at the front of the order are typically decodes, memory-bound, and the
    short ones at the back prefill tiles, compute-bound; walked from both ends they overlap. Measured on an H200
    (bf16, D=128, 32/8 heads, 2026-12-01, benchmarks/results/h200-2026-12-01): mixed-serve (4 prefills of 4096 +
    124 decodes, packed) 3.45 ms dynamic vs 3.13 ms two-ended (min of three interleaved rounds); unpacked calls
    are as fast or faster with "dynamic" (packed-train 1.23 vs 1.25 ms, dense 16x2048 causal 1.32 vs 1.35 ms), so
    they keep it."""
    if scheduler_mode != "auto":
        return scheduler_mode
    return "dynamic-two-ended" if metadata_config.qpk > 1 else "dynamic"


# fp32 partial outputs of split-KV may take up to this much memory per call (they are [splits, total_q, H, Dv]).
SPLIT_PARTIAL_BYTES = 64 << 20


def split_capacity(config):
    """How many KV splits per sequence the partial buffers of this call can hold: 0 when split-KV is off (the
    caller asked for num_splits=1, or even two splits of every query row exceed SPLIT_PARTIAL_BYTES), else at most
    the caller's num_splits (0 = metadata.DEFAULT_MAX_SPLITS). Sized statically from total_q, so decode-shaped
    calls (few query rows) split and large prefill / training calls never allocate partials."""
    per_split = config.total_q * config.num_heads * (config.head_dim_v + 1) * 4
    cap = min(metadata.DEFAULT_MAX_SPLITS if config.num_splits == 0 else config.num_splits,
              SPLIT_PARTIAL_BYTES // max(per_split, 1))
    return cap if cap >= 2 else 0


def fwd_metadata_config(config, entry=None, pack_gqa=None):
    """The MetadataConfig the forward kernel needs for `config`: its variant's tile shape, GQA packing as given
    (else metadata.default_pack_gqa's rule, which sees the call's token count), and at most `split_capacity` KV
    splits."""
    tiles = (entry or _fwd_variant(config)[1])["config"]
    return metadata.make_config(
        num_heads=config.num_heads, num_kv_heads=config.num_kv_heads, head_dim=config.head_dim,
        head_dim_v=config.head_dim_v, causal=config.causal, window_size=(config.window_left, config.window_right),
        num_splits=max(1, split_capacity(config)), dtype=config.dtype, pack_gqa=pack_gqa,
        max_seqlen_q=config.max_seqlen_q, total_q=config.total_q, batch=config.batch, tile_m=tiles["tile_m"],
        tile_n=tiles["tile_n"], arch=arch())


def _check_kernel_metadata(md, need):
    """The caller's metadata must have the tile shape the kernel runs with (packing follows the metadata, where
    the kernel can pack this head ratio)."""
    for name in ("tile_m", "tile_n", "pack_gqa"):
        made, wanted = getattr(md.config, name), getattr(need, name)
        if made != wanted:
            raise ValueError(
                f"scheduler_metadata was made with {name}={made}, but the SM90 forward kernel for this call runs "
                f"with {name}={wanted}; make it with prepare_scheduler_metadata's defaults (or {name}={wanted})")


def _warn_if_left_unpacked(made, config):
    """Warn (at trace time) when caller metadata is unpacked only because its packing rule could not see the token
    count, and this call's tokens say pack: a batch of decodes beside a few prefills, about 2.7x slower unpacked."""
    if made.pack_gqa or not made.pack_gqa_by_rule:
        return
    if metadata.default_pack_gqa(config.max_seqlen_q, config.num_heads, config.num_kv_heads, made.tile_m,
                                 total_q=config.total_q, batch=config.batch):
        warnings.warn(
            f"scheduler_metadata does not pack GQA heads, but this call's {config.batch} sequences average under "
            f"two tiles of query rows ({config.total_q} tokens), which run faster packed (about 2.7x on a mixed "
            f"prefill/decode batch). Make the metadata with total_q=q.shape[0] (or pack_gqa=True); "
            f"pack_gqa=False keeps it unpacked without this warning.", stacklevel=4)


def _fifo_order(md):
    """The same tiles in the packed order of the sequences (the ablation's "no longest-first")."""
    tiles = md.num_m_blocks * md.config.heads_eff * md.num_splits
    order = jnp.arange(md.num_m_blocks.shape[0], dtype=jnp.int32)
    prefix = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(tiles, dtype=jnp.int32)])
    return order, prefix


def _max_tiles(config, need):
    """A static upper bound on the number of (sequence, head, m-block) tiles, for the one-CTA-per-tile grid."""
    rows_q, rows_total = config.max_seqlen_q * need.qpk, config.total_q * need.qpk
    m_blocks = min(config.batch * -(-rows_q // need.tile_m), -(-rows_total // need.tile_m) + config.batch)
    return max(1, m_blocks * need.heads_eff)


def _read_lengths(config, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k):
    """(cu_q, cu_k, len_q, len_k) as the kernels get them: the length data read by the reference path's rules."""
    cu_q = clipped_cu_seqlens(cu_seqlens_q, config.total_q)
    cu_k = clipped_cu_seqlens(cu_seqlens_k, config.total_k)
    _, len_q = effective_lengths(cu_seqlens_q, seqused_q, config.total_q, config.max_seqlen_q)
    _, len_k = effective_lengths(cu_seqlens_k, seqused_k, config.total_k, config.max_seqlen_k)
    return cu_q, cu_k, len_q, len_k


def varlen_forward(q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, *, config, scheduler_metadata=None,
                   scheduler_mode="auto", tile_timeline=False):
    """(out [total_q, H, Dv], lse [H, total_q] f32) from the SM90 forward kernel (scheduler_mode: one of
    jax_fa4.SCHEDULER_MODES, validated by the caller; "auto" resolved by `resolve_scheduler_mode`).

    Length data is read by the reference path's rules (jax_fa4.reference.effective_lengths: cu_seqlens as a
    clipped running maximum, seqused clipped to the slot, lengths cut to max_seqlen), so out-of-contract lengths
    give the reference's result instead of out-of-bounds accesses. Metadata made by the caller must come from the
    same lengths; without it, the prepare kernel makes it here.

    Split-KV: sequences the metadata splits (at most `split_capacity(config)` ways; more in caller metadata are
    merged into that many) write fp32 partials that the combine kernel merges by LSE; unsplit sequences are
    written directly and the combine kernel skips them.

    tile_timeline: also return the tile-counter buffer, sized for the per-tile records of a library built with
    FWD_SM90_TIMELINE=1 (jax_fa4/kernels/common_timeline.py; read by benchmarks/tile_timeline.py).
    """
    target, entry = _fwd_variant(config)
    pack = None if scheduler_metadata is None else scheduler_metadata.config.pack_gqa
    qpk = config.num_heads // config.num_kv_heads
    if pack and qpk > 1 and not metadata.packable_qpk(qpk, entry["config"]["tile_m"]):
        raise ValueError(f"scheduler_metadata packs GQA heads, but the forward kernel cannot pack "
                         f"{qpk} query heads per KV head into a "
                         f"{entry['config']['tile_m']}-row tile; make it with pack_gqa=False")
    need = fwd_metadata_config(config, entry, pack)
    cu_q, cu_k, len_q, len_k = _read_lengths(config, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k)
    if scheduler_metadata is None:
        md = prepare_metadata(need, cu_q, cu_k, len_q, len_k)
    else:
        _check_kernel_metadata(scheduler_metadata, need)
        _warn_if_left_unpacked(scheduler_metadata.config, config)
        md = scheduler_metadata
    vbatch, prefix = md.virtual_batch_idx, md.tile_prefix
    scheduler_mode = resolve_scheduler_mode(scheduler_mode, need)
    if scheduler_mode == "dynamic-fifo":
        vbatch, prefix = _fifo_order(md)
    sms = device_info.sm_count() or metadata.DEFAULT_NUM_SMS
    num_ctas = _max_tiles(config, need) if scheduler_mode == "single-tile" else sms
    pair = _pair_target(config, need)
    if pair is not None:  # clusters of two CTAs: an even grid, rounded up to a CTA per tile, else down to the SMs
        target = pair
        num_ctas = num_ctas + num_ctas % 2 if scheduler_mode == "single-tile" else max(2, num_ctas - num_ctas % 2)
    kernel_mode = {"static": 0, "single-tile": 0, "dynamic": 1, "dynamic-fifo": 1, "dynamic-two-ended": 2}
    splits = split_capacity(config)
    results = (jax.ShapeDtypeStruct((config.total_q, config.num_heads, config.head_dim_v), q.dtype),
               jax.ShapeDtypeStruct((config.num_heads, config.total_q), jnp.float32),
               jax.ShapeDtypeStruct((splits, config.total_q, config.num_heads, config.head_dim_v), jnp.float32),
               jax.ShapeDtypeStruct((splits, config.num_heads, config.total_q), jnp.float32),
               jax.ShapeDtypeStruct((common_timeline.counter_elements(num_ctas),), jnp.int32) if tile_timeline
               else _TILE_COUNTER)
    call = jax.ffi.ffi_call(target, results, vmap_method="sequential")
    out, lse, o_partial, lse_partial, counter = call(
        q, k, v, cu_q, cu_k, len_q, len_k, md.num_m_blocks, md.num_splits, vbatch, md.num_heads_in_l2, prefix,
        softmax_scale=np.float32(config.softmax_scale), softcap=np.float32(config.softcap),
        window_left=np.int32(config.window_left), window_right=np.int32(config.window_right),
        num_ctas=np.int32(num_ctas), scheduler_mode=np.int32(kernel_mode[scheduler_mode]),
        pack_gqa=np.int32(need.qpk))
    if splits:
        # The kernel ran each sequence in min(num_splits[b], splits) pieces; the combine kernel merges them.
        out, lse = combine(o_partial, lse_partial, cu_q, len_q, jnp.minimum(md.num_splits, splits), out, lse)
    return (out, lse, counter) if tile_timeline else (out, lse)


# ------------------------------------------------------------------------------------------------ backward kernels
LOG2E = float(np.log2(np.e))


def _chunk_layout_rows(config, tile_q):
    """Rows per head of bwd_dkdv_sm90's chunk layout (its lse2 / dsum inputs and the one-kernel backward's float32
    dQ buffer): a chunk of tile_q rows per query block, each sequence's chunks apart from the others' (block m of
    sequence b at chunk (cu_q[b] + b tile_q) // tile_q + m)."""
    return (config.total_q // tile_q + config.batch + 1) * tile_q


def _one_kernel_backward_pays(config, tile_q):
    """Whether the one-kernel backward is used when deterministic=False: where its float32 dQ buffer stays within
    1.5 x total_q rows (no larger than q, out and dout together: sequences averaging over ~128 tokens).
    Profiler kernel times on the H200 since bwd_dkdv_sm90 takes tiles from an atomic counter (32 / 8 heads, D =
    128, causal): packed-train 2514 us + 338 us dQ conversion vs 1620 + 1331 us for the two kernels; 16 heads
    4x8192: 4.98 + 0.16 ms vs 3.56 + 2.55 ms. (With the static tile stride it had, grouped-KV causal batches ran
    faster on the two kernels.)"""
    return 2 * _chunk_layout_rows(config, tile_q) <= 3 * config.total_q


def _backward_launches(config, deterministic=True):
    """[(target, entry, outputs)] of the backward kernels for this call, or a sentence saying why there are none.
    Not deterministic, where built and where it pays (`_one_kernel_backward_pays`): one launch makes dK, dV and dQ
    (D = 64 / 96 / 128; dQ atomically added in float32), or at D = 192 / 256 one makes dK and dQ and one dV.
    Otherwise dQ is one launch; dK and dV are one launch up to D = 128 and one each beyond
    (bwd_dkdv_sm90.PASSES)."""
    if not deterministic:
        fused = _variant_entry("bwd_dkdv_sm90", config, "_dkdvdq")
        if fused[0] is not None and _one_kernel_backward_pays(config, fused[1]["config"]["tile_q"]):
            return [fused + ("dkdvdq",)]
        dkdq, dv = (_variant_entry("bwd_dkdv_sm90", config, "_" + name) for name in ("dkdq", "dv"))
        if dkdq[0] is not None and dv[0] is not None and \
                _one_kernel_backward_pays(config, dkdq[1]["config"]["tile_q"]):
            return [dkdq + ("dkdq",), dv + ("dv",)]
    dq = _variant_entry("bwd_dq_sm90", config)
    if dq[0] is None:
        return dq[1]
    both = _variant_entry("bwd_dkdv_sm90", config)
    if both[0] is not None:
        return [dq + ("dq",), both + ("dkdv",)]
    dk, dv = (_variant_entry("bwd_dkdv_sm90", config, "_" + name) for name in ("dk", "dv"))
    if dk[0] is None or dv[0] is None:
        return both[1]
    return [dq + ("dq",), dk + ("dk",), dv + ("dv",)]


def supports_backward(config):
    """None when the backward kernels can differentiate `config` (given that the forward kernel runs it), else a
    sentence saying why not (the caller then recomputes the reference's gradient)."""
    launches = _backward_launches(config)
    return launches if isinstance(launches, str) else None


def _block_prefix(lengths, tile):
    """[B+1] int32: blocks of `tile` rows before each sequence (the backward kernels' tile space)."""
    blocks = (lengths + (tile - 1)) // tile
    return jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(blocks, dtype=jnp.int32)])


def _ticket_order(len_q, len_k, ticket_keys):
    """(order [B], block_prefix [B+1]) of bwd_dkdv_sm90's tickets: sequences longest first (by query rows, which a
    ticket's work follows under every mask; ties in batch order), and the pairs of key blocks before each in that
    order. Why: its CTAs take tickets from an atomic counter, and with the long sequences' tickets last the CTAs
    that draw them finish late: in benchmarks.backward_balance's model of packed-train the busiest CTA holds 4.7 %
    more work than the average in batch order and 1.3 % longest first."""
    order = jnp.argsort(-len_q, stable=True).astype(jnp.int32)
    return order, _block_prefix(len_k[order], ticket_keys)


def _first_chunk_rows(cu_q, tile_q):
    """[B]: row of bwd_dkdv_sm90's chunk layout where sequence b's query block 0 starts (query block m of sequence
    b is the chunk of tile_q rows at chunk (cu_q[b] + b tile_q) // tile_q + m; bwd_dkdv_sm90.first_chunk)."""
    batch = cu_q.shape[0] - 1
    return (cu_q[:-1] + jnp.arange(batch, dtype=jnp.int32) * tile_q) // tile_q * tile_q


def _chunk_rows(cu_q, len_q, tile_q, total_q):
    """(row, valid) [total_q]: each packed query row's row in the chunk layout, and whether a sequence uses it."""
    b, r, valid = token_slots(cu_q[:-1], len_q, total_q)
    return _first_chunk_rows(cu_q, tile_q)[b] + r, valid


def to_chunk_rows(x, cu_q, len_q, tile_q, rows, fill):
    """x [H, total_q] -> [H, rows] in the chunk layout, `fill` where no used query row lands: how bwd_dkdv_sm90
    reads lse2 and dsum, one aligned chunk of tile_q floats per query block (a bulk copy each). Written as a
    gather: row rho belongs to the sequence whose chunks start last at or before it (token_slots)."""
    b, r, valid = token_slots(_first_chunk_rows(cu_q, tile_q), len_q, rows)
    return jnp.where(valid[None], jnp.take(x, jnp.where(valid, cu_q[b] + r, 0), axis=1), jnp.asarray(fill, x.dtype))


def dq_from_accum(acc, cu_q, len_q, tile_q, total_q):
    """dQ [total_q, H, D] (float32, unscaled) from the accumulator acc [H, rows, D] of bwd_dkdv_sm90's dQ passes,
    in XLA (what bwd_dq_convert_sm90 does, its tests' twin and the fallback where that kernel is not built): chunks
    of tile_q * D floats, query block m of sequence b at row (cu_q[b] + b tile_q) // tile_q * tile_q + m tile_q,
    each stored as the two consumer warpgroups' wgmma accumulators (one half each) in register order: float
    512 c + 4 t + 2 h + k of a half is thread t's register 4 c + 2 h + k, which wgmma's m64 accumulator puts, for
    thread t = 32 w + 4 r + l, at row 16 w + 8 h + r, column 8 c' + 2 l + k of its c'-th column block.
    tile_q = 64 ("dkdvdq", dQ): rows are queries, half u has columns [u D/2, (u+1) D/2), c' = c.
    tile_q = 32 ("dkdq", dQ^T): rows are head dims; D a multiple of 128: half u has row blocks 2 m + u and every
    query (c = 4 m + query // 8), else the queries [16 u, 16 u + 16) of every row block m (c = 2 m + query % 16 // 8).
    Rows no sequence uses (past cu_q[B], or past seqused) get 0."""
    heads, rows, d = acc.shape
    chunks = rows // tile_q
    if tile_q == 64:
        # [H, chunk, half, c, w, r, l, h, k] -> [H, chunk, w, h, r, half, c, l, k] = [H, rows, D]
        acc = acc.reshape(heads, chunks, 2, d // 16, 4, 8, 4, 2, 2).transpose(0, 1, 4, 7, 5, 2, 3, 6, 8)
    elif d % 128 == 0:
        assert tile_q == 32, tile_q
        # [H, chunk, half, m, n, w, r, l, h, k] -> [H, chunk, (n, l, k) = query, (m, half, w, h, r) = dim]
        acc = acc.reshape(heads, chunks, 2, d // 128, 4, 4, 8, 4, 2, 2).transpose(0, 1, 4, 7, 9, 3, 2, 5, 8, 6)
    else:
        assert tile_q == 32 and d % 64 == 0, (tile_q, d)
        # [H, chunk, half, m, n, w, r, l, h, k] -> [H, chunk, (half, n, l, k) = query, (m, w, h, r) = dim]
        acc = acc.reshape(heads, chunks, 2, d // 64, 2, 4, 8, 4, 2, 2).transpose(0, 1, 2, 4, 7, 9, 3, 5, 8, 6)
    acc = acc.reshape(heads, rows, d)
    row, valid = _chunk_rows(cu_q, len_q, tile_q, total_q)
    dq = jnp.take(acc, jnp.where(valid, row, 0), axis=1)  # [H, total_q, D]
    return jnp.where(valid[None, :, None], dq, 0.0).transpose(1, 0, 2)


def _chunk_table(cu_q, len_q, tile_q, rows):
    """(start, used) [rows // tile_q]: the packed row of each chunk's row 0 and how many of its rows a sequence
    uses (0 for chunks between sequences): query block m of sequence b is chunk first_chunk(b) + m."""
    chunks = rows // tile_q
    blocks = (len_q + (tile_q - 1)) // tile_q
    b, m, valid = token_slots(_first_chunk_rows(cu_q, tile_q) // tile_q, blocks, chunks)
    return cu_q[b] + m * tile_q, jnp.where(valid, jnp.minimum(tile_q, len_q[b] - m * tile_q), 0)


def _dq_from_accum_kernel(acc, cu_q, len_q, tile_q, config, dtype):
    """dq [total_q, H, D] in `dtype` = softmax_scale * the accumulator of a dQ pass, by bwd_dq_convert_sm90 where
    its variant is built (dq_from_accum, the XLA twin, otherwise)."""
    tag = f"{DTYPE_TAGS.get(jnp.dtype(dtype))}_d{acc.shape[2]}"
    target = ffi.target("bwd_dq_convert_sm90", tag, arch())
    if target is None:
        return (dq_from_accum(acc, cu_q, len_q, tile_q, config.total_q) * np.float32(config.softmax_scale)
                ).astype(dtype)
    start, used = _chunk_table(cu_q, len_q, tile_q, acc.shape[1])
    call = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct((config.total_q,) + acc.shape[::2], dtype),
                            vmap_method="sequential")
    return call(acc, start, used, cu_q, len_q, softmax_scale=np.float32(config.softmax_scale),
                num_ctas=np.int32(_grid_ctas(start.shape[0] * acc.shape[0], 1)))  # a CTA per (chunk, head)


def varlen_backward(q, k, v, out, lse, dout, dlse, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, *, config,
                    deterministic=True):
    """(dq, dk, dv) from the SM90 backward kernels, given the forward's out and lse [H, total_q] (natural log) and
    the cotangents dout and dlse (None when lse was not used).

    Lengths are read by the same rules as `varlen_forward`. deterministic=True: bwd_dq_sm90, then bwd_dkdv_sm90,
    each summing its gradient inside one CTA in a fixed order, so the result is bit-identical from run to run.
    deterministic=False: where its variant is built, one bwd_dkdv_sm90 "dkdvdq" launch that also adds dQ into a
    float32 accumulator with atomics (fewer GEMMs; dQ's last bits vary between runs), at D = 192 / 256 a "dkdq"
    launch that does so beside dK and a "dv" launch; else as True.
    Gradients of rows no sequence uses are 0.
    """
    launches = _backward_launches(config, deterministic)
    if isinstance(launches, str):
        raise ValueError(f"jax_fa4 backward kernel unavailable: {launches}")
    cu_q, cu_k, len_q, len_k = _read_lengths(config, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k)
    # P = exp2(logits * log2(e) - lse2); +inf for rows that saw no key makes their P exactly 0.
    lse2 = jnp.where(jnp.isneginf(lse), jnp.inf, lse * LOG2E).astype(jnp.float32)
    # dS = P (dP - dsum): dsum = rowsum(dO * O), less the LSE cotangent (d lse / d logits = P).
    dsum = jnp.einsum("thd,thd->ht", dout.astype(jnp.float32), out.astype(jnp.float32))
    if dlse is not None:
        dsum = dsum - jnp.where(jnp.isneginf(lse), 0.0, dlse.astype(jnp.float32))
    sms = device_info.sm_count() or metadata.DEFAULT_NUM_SMS
    operands = (q, k, v, dout.astype(q.dtype), lse2, dsum, cu_q, cu_k, len_q, len_k)
    scalars = dict(softmax_scale=np.float32(config.softmax_scale), softcap=np.float32(config.softcap),
                   window_left=np.int32(config.window_left), window_right=np.int32(config.window_right),
                   num_ctas=np.int32(sms))
    grads = {}
    for target, entry, outputs in launches:
        if outputs == "dq":
            call = jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(q.shape, q.dtype), vmap_method="sequential")
            grads["dq"] = call(*operands, _block_prefix(len_q, entry["config"]["tile_q"]), **scalars)
            continue
        # bwd_dkdv_sm90 reads lse2 / dsum per query block, in the chunk layout
        tile_q = entry["config"]["tile_q"]
        rows = _chunk_layout_rows(config, tile_q)
        chunked = operands[:4] + (to_chunk_rows(lse2, cu_q, len_q, tile_q, rows, np.inf),
                                  to_chunk_rows(dsum, cu_q, len_q, tile_q, rows, 0.0)) + operands[6:]
        ticket_order, block_prefix = _ticket_order(len_q, len_k, entry["config"]["ticket_keys"])
        if outputs in ("dkdvdq", "dkdq"):  # "dkdq" leaves dv unwritten: the "dv" launch makes it
            dk, dv, dq_accum, _ = jax.ffi.ffi_call(
                target, (jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype),
                         jax.ShapeDtypeStruct((q.shape[1], rows, q.shape[2]), jnp.float32), _TILE_COUNTER),
                vmap_method="sequential")(*chunked, block_prefix, ticket_order, **scalars)
            grads.update(dq=_dq_from_accum_kernel(dq_accum, cu_q, len_q, tile_q, config, q.dtype), dk=dk)
            if outputs == "dkdvdq":
                grads["dv"] = dv
            continue
        dk, dv, _ = jax.ffi.ffi_call(
            target, (jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype), _TILE_COUNTER),
            vmap_method="sequential")(*chunked, block_prefix, ticket_order, **scalars)
        grads.update({name: g for name, g in (("dk", dk), ("dv", dv)) if name in outputs})
    return grads["dq"], grads["dk"], grads["dv"]
