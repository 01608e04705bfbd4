"""Scheduler metadata: what the persistent forward kernel needs to hand out (sequence, head, m-block, split) tiles.

Why a separate object: it depends only on the sequence lengths and the call's static configuration, so it is made
once per step and reused by every attention layer (DESIGN.md §2). It is a registered pytree: int32 leaves that
travel through `jax.jit`, and a hashable static part (`MetadataConfig`) recording what it was made for, so
`varlen_attention` can refuse metadata made for another call (`check_matches`).

The code below defines every field exactly (a traceable jnp implementation; tests/metadata_oracle.py is an
independent NumPy restatement it is tested against). The GPU prepare kernel (jax_fa4/kernels/prepare.py) must equal it bit
for bit. Choices the spec left open, fixed here:

* Tiles (`default_tiles`): sm90: tile_m = 128; tile_n = 128 for max(D, Dv) <= 128 (without a mask: 192 / 160
  up to D = 64 / 96), 96 for <= 192, 80 for <= 256 (the SM90 forward kernel's tiles: tests/test_fwd_build.py
  keeps them equal).
  sm100: 128 x 128 for every head dim.
* GQA packing (`default_pack_gqa`): only when H != Hk, and then when packing makes the query tile of the longest
  sequence markedly fuller: eff(rows) = rows / (ceil(rows / tile_m) * tile_m); pack iff
  eff(max_seqlen_q) < 0.9 * eff(max_seqlen_q * H // Hk)  (decode-shaped calls pack, long prefill does not), or,
  when the query token count is known (varlen_attention's own metadata; `total_q=` here), when the sequences
  average under two tiles of rows; only for H // Hk in `packable_qpk(tile_m)` (the kernels load a packed tile one
  query head's rows at a time, at least 8 of them).
  Packed tiles are head-major: row r of m-block m is query m * R + r % R of head r // R, R = tile_m // qpk (the
  same query range per m-block as the spec's (m * tile_m + r) // qpk).
* Masks: causal means window_right = 0 (window_left stays as given, -1 = unbounded).
* Inputs with sequence lengths above max_seqlen_q / max_seqlen_k are undefined behaviour here (the m-block loop is
  bounded by max_seqlen_q); nothing faults, but the fields may differ from the kernel's.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_NUM_SMS = 132                  # H100 SXM
DEFAULT_L2_BYTES = 50 * 1024 * 1024    # H100 SXM
DEFAULT_MAX_SPLITS = 64
# Whether the forward kernels pack GQA query heads into one tile (then pack_gqa defaults to default_pack_gqa's rule).
KERNELS_PACK_GQA = True
PACK_CHUNK_ROWS = 8  # fewest rows of one query head in a packed tile (the kernels' smallest Q load box)
MIN_SPLIT_BLOCKS = 4
# Elements of the [batch, m-block] work array materialised at once by the jnp path (bounds its memory).
_M_CHUNK_ELEMENTS = 1 << 22

# Prepare-kernel contract shared with jax_fa4/kernels/prepare.py (kept equal by tests/test_metadata.py).
PREPARE_CHUNK = 1024
PREPARE_WORKSPACE_ARRAYS = 7
LEAVES = ("num_m_blocks", "num_splits", "virtual_batch_idx", "num_heads_in_l2", "tile_prefix")


# --------------------------------------------------------------------------------------------------- static part
@dataclasses.dataclass(frozen=True)
class MetadataConfig:
    """The static configuration metadata was made for (hashable: it is the pytree's aux data)."""

    tile_m: int
    tile_n: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    head_dim_v: int
    itemsize: int
    causal: bool
    window_left: int       # -1 = unbounded
    window_right: int      # -1 = unbounded; 0 when causal
    pack_gqa: bool
    num_sms: int
    l2_bytes: int
    max_splits: int
    arch: str              # "sm90" / "sm100"
    min_split_blocks: int = MIN_SPLIT_BLOCKS
    # pack_gqa came from default_pack_gqa (the caller passed None); read only to warn, so not part of equality.
    pack_gqa_by_rule: bool = dataclasses.field(default=False, compare=False)

    @property
    def qpk(self) -> int:
        """Query heads packed into one tile row group (1 without GQA packing)."""
        return self.num_heads // self.num_kv_heads if self.pack_gqa else 1

    @property
    def heads_eff(self) -> int:
        """Heads the scheduler iterates over: KV heads when packed, query heads otherwise."""
        return self.num_kv_heads if self.pack_gqa else self.num_heads

    @property
    def l2_group(self) -> int:
        """g with per-head cost = bytes_kv_head // g (bytes_kv_head * Hk // H_eff, since H_eff is Hk or g*Hk)."""
        return 1 if self.pack_gqa else self.num_heads // self.num_kv_heads

    @property
    def kv_bytes_per_token(self) -> int:
        return (self.head_dim + self.head_dim_v) * self.itemsize


# ------------------------------------------------------------------------------------------------------- pytree
@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class SchedulerMetadata:
    """int32 leaves (per sequence b, except tile_prefix[B+1]) + the static `config` they were made for."""

    num_m_blocks: jax.Array
    num_splits: jax.Array
    virtual_batch_idx: jax.Array
    num_heads_in_l2: jax.Array
    tile_prefix: jax.Array
    config: MetadataConfig

    def tree_flatten(self):
        return tuple(getattr(self, name) for name in LEAVES), self.config

    @classmethod
    def tree_unflatten(cls, config, leaves):
        return cls(*leaves, config=config)

    @property
    def batch(self) -> int:
        return int(self.num_m_blocks.shape[0])

    def to_numpy(self) -> dict:
        """Host copies of every leaf (tests, debugging)."""
        return {name: np.asarray(getattr(self, name)) for name in LEAVES}


# ------------------------------------------------------------------------------------------------------ defaults
def _arch_tag(arch) -> str:
    if arch is None:
        try:
            from jax_fa4 import device_info

            arch = device_info.kernel_arch()
        except Exception:  # no cuda-python, no device: the H100 defaults
            arch = None
    if arch is None:
        return "sm90"
    tag = str(arch).lower().replace("_", "").rstrip("a")
    if tag not in ("sm90", "sm100"):
        raise ValueError(f"arch={arch!r} unsupported; expected 'sm90' or 'sm100' (or 'sm_90a' / 'sm_100a')")
    return tag


def default_tiles(head_dim: int, head_dim_v: Optional[int] = None, arch="sm90", masked=True) -> tuple[int, int]:
    """(tile_m, tile_n) the forward kernel uses; larger head dims get narrower KV tiles to fit shared memory, and
    unmasked attention up to head dim 96 wider ones (masked=False: no causal mask and no window)."""
    d = max(head_dim, head_dim_v or head_dim)
    if d > 256:
        raise ValueError(f"head_dim={d} unsupported (at most 256)")
    if _arch_tag(arch) == "sm100":
        return 128, 128
    if d <= 64:
        return 128, 128 if masked else 192
    if d <= 96:
        return 128, 128 if masked else 160
    if d <= 128:
        return 128, 128
    if d <= 192:
        return 128, 96
    return 128, 80


def _tile_efficiency(rows: int, tile_m: int) -> float:
    return rows / (-(-rows // tile_m) * tile_m) if rows > 0 else 1.0


def packable_qpk(qpk: int, tile_m: int) -> bool:
    """Whether a tile of tile_m rows can hold qpk query heads: tile_m // qpk rows each, a multiple of 8."""
    return qpk > 1 and tile_m % (qpk * PACK_CHUNK_ROWS) == 0


def default_pack_gqa(max_seqlen_q: int, num_heads: int, num_kv_heads: int, tile_m: int, total_q=None,
                     batch=None) -> bool:
    """Pack the query heads of one KV head into a tile when that fills query tiles markedly better: decode-shaped
    calls (by max_seqlen_q), and, when the token count is known, batches whose sequences average under two tiles
    of query rows (total_q < 2 * tile_m * batch: mostly decodes beside a few prefills).

    Why: a short sequence's tile is mostly empty rows and reads its KV head's keys once per query head; packed, it
    reads them once. Measured on an H100 (bf16, D=128, 32/8 heads): mixed prefill/decode batch 9.1 -> 4.2 ms
    (H200, 2026-12-01, both with the dynamic scheduler: 8.5 -> 3.5 ms), while on long sequences packing costs
    1-3 % (finer causal tiles; measured with 8-row Q loads), so those stay unpacked."""
    qpk = num_heads // num_kv_heads
    if not packable_qpk(qpk, tile_m):
        return False
    if _tile_efficiency(max_seqlen_q, tile_m) < 0.9 * _tile_efficiency(max_seqlen_q * qpk, tile_m):
        return True
    return total_q is not None and batch is not None and total_q < 2 * tile_m * batch


def _device_defaults(num_sms, l2_bytes):
    if num_sms is None or l2_bytes is None:
        try:
            from jax_fa4 import device_info

            sms, l2 = device_info.sm_count(), device_info.l2_cache_bytes()
        except Exception:
            sms = l2 = None
        num_sms = num_sms if num_sms is not None else (sms or DEFAULT_NUM_SMS)
        l2_bytes = l2_bytes if l2_bytes is not None else (l2 or DEFAULT_L2_BYTES)
    return int(num_sms), int(l2_bytes)


def normalize_window(causal: bool, window_size) -> tuple[int, int]:
    """(left, right) with -1 for unbounded; causal forces right = 0."""
    left, right = (int(w) for w in window_size)
    left = -1 if left < 0 else left
    right = -1 if right < 0 else right
    if causal:
        right = 0
    return left, right


def make_config(*, num_heads, num_kv_heads, head_dim, head_dim_v=None, causal=False, window_size=(-1, -1),
                num_splits=0, dtype=jnp.bfloat16, pack_gqa=None, max_seqlen_q=None, total_q=None, batch=None,
                tile_m=None, tile_n=None, num_sms=None, l2_bytes=None, arch=None) -> MetadataConfig:
    """The static part, with every default resolved (also used by the forward kernel's dispatch). total_q and
    batch only inform the default GQA packing (`default_pack_gqa`)."""
    head_dim_v = head_dim if head_dim_v is None else head_dim_v
    if num_heads <= 0 or num_kv_heads <= 0 or num_heads % num_kv_heads:
        raise ValueError(f"num_heads={num_heads} must be a positive multiple of num_kv_heads={num_kv_heads}")
    if num_splits < 0:
        raise ValueError(f"num_splits={num_splits} must be >= 0 (0 = auto, 1 = off, n = at most n)")
    tag = _arch_tag(arch)
    left, right = normalize_window(causal, window_size)
    dm, dn = default_tiles(head_dim, head_dim_v, tag, masked=left >= 0 or right >= 0)
    tile_m = dm if tile_m is None else int(tile_m)
    tile_n = dn if tile_n is None else int(tile_n)
    by_rule = pack_gqa is None
    if by_rule:
        pack_gqa = KERNELS_PACK_GQA and default_pack_gqa(int(max_seqlen_q or 1), num_heads, num_kv_heads, tile_m,
                                                         total_q=total_q, batch=batch)
    num_sms, l2_bytes = _device_defaults(num_sms, l2_bytes)
    return MetadataConfig(
        tile_m=tile_m, tile_n=tile_n, num_heads=int(num_heads), num_kv_heads=int(num_kv_heads),
        head_dim=int(head_dim), head_dim_v=int(head_dim_v), itemsize=jnp.dtype(dtype).itemsize, causal=bool(causal),
        window_left=left, window_right=right, pack_gqa=bool(pack_gqa), num_sms=num_sms, l2_bytes=l2_bytes,
        max_splits=DEFAULT_MAX_SPLITS if num_splits == 0 else int(num_splits), arch=tag, pack_gqa_by_rule=by_rule)


# --------------------------------------------------------------------------------------------- jnp computation
def _sequence_lengths(cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k):
    cu_q = jnp.asarray(cu_seqlens_q, jnp.int32)
    cu_k = jnp.asarray(cu_seqlens_k, jnp.int32)
    sq = jnp.asarray(seqused_q, jnp.int32) if seqused_q is not None else cu_q[1:] - cu_q[:-1]
    sk = jnp.asarray(seqused_k, jnp.int32) if seqused_k is not None else cu_k[1:] - cu_k[:-1]
    return sq, sk


def _block_counts(cfg: MetadataConfig, sq, sk, m_bound: int):
    """(blocks[b], max_tile_blocks[b]) summed over m-blocks 0..m_bound-1, in chunks so memory stays O(B * chunk)."""
    batch = sq.shape[0]
    qpk, tm, tn = cfg.qpk, cfg.tile_m, cfg.tile_n
    num_m = (sq * qpk + tm - 1) // tm
    offset = sk - sq

    def visit(m):  # m: [1, C] m-block indices -> n-blocks [B, C]
        s_q, s_k, off, n_m = sq[:, None], sk[:, None], offset[:, None], num_m[:, None]
        i0 = (m * tm) // qpk
        i1 = jnp.minimum(s_q - 1, ((m + 1) * tm - 1) // qpk)
        lo = jnp.zeros_like(i0 + off) if cfg.window_left < 0 else jnp.maximum(0, i0 + off - cfg.window_left)
        hi = (s_k - 1) + 0 * i1 if cfg.window_right < 0 else jnp.minimum(s_k - 1, i1 + off + cfg.window_right)
        ok = (m < n_m) & (lo <= hi)
        return jnp.where(ok, jnp.maximum(hi, 0) // tn - lo // tn + 1, 0)

    zeros = jnp.zeros((batch,), jnp.int32)
    if m_bound == 0 or batch == 0:
        return zeros, zeros
    chunk = max(1, min(m_bound, _M_CHUNK_ELEMENTS // max(batch, 1)))
    if chunk >= m_bound:
        nb = visit(jnp.arange(m_bound, dtype=jnp.int32)[None, :])
        return nb.sum(axis=1, dtype=jnp.int32), nb.max(axis=1)

    def body(step, carry):
        total, best = carry
        nb = visit((step * chunk + jnp.arange(chunk, dtype=jnp.int32))[None, :])
        return total + nb.sum(axis=1, dtype=jnp.int32), jnp.maximum(best, nb.max(axis=1))

    return jax.lax.fori_loop(0, -(-m_bound // chunk), body, (zeros, zeros))


def _heads_in_l2(cfg: MetadataConfig, sk):
    """Largest divisor L of H_eff with L * cost <= l2_bytes // 2 (at least 1), overflow-free in int32.

    cost = floor(sk * e / g) with e = (D + Dv) * itemsize; computed as (sk // g) * e + ((sk % g) * e) // g with
    sk // g clamped just above the point where cost exceeds the budget (beyond it L = 1 either way).
    """
    budget = cfg.l2_bytes // 2
    e, g = cfg.kv_bytes_per_token, cfg.l2_group
    q = jnp.minimum(sk // g, budget // e + 1)
    cost = q * e + ((sk % g) * e) // g
    best = jnp.ones_like(sk)
    for d in range(2, cfg.heads_eff + 1):
        if cfg.heads_eff % d == 0:
            best = jnp.where(cost <= budget // d, d, best)
    return best


def compute_metadata(cfg: MetadataConfig, sq, sk, m_bound: int) -> SchedulerMetadata:
    """All leaves from per-sequence lengths (traceable; `m_bound` = static bound on num_m_blocks)."""
    sq = jnp.asarray(sq, jnp.int32)
    sk = jnp.asarray(sk, jnp.int32)
    batch = sq.shape[0]
    num_m = (sq * cfg.qpk + cfg.tile_m - 1) // cfg.tile_m
    blocks, max_tile = _block_counts(cfg, sq, sk, m_bound)

    total = jnp.sum(blocks, dtype=jnp.int32) * cfg.heads_eff
    target = jnp.maximum(cfg.min_split_blocks, (total + 2 * cfg.num_sms - 1) // (2 * cfg.num_sms))
    cap = jnp.minimum(cfg.max_splits, jnp.maximum(1, max_tile // cfg.min_split_blocks))
    splits = jnp.clip((max_tile + target - 1) // target, 1, cap)

    tiles = num_m * cfg.heads_eff * splits
    key = (max_tile + splits - 1) // splits
    order = jnp.argsort(-key, stable=True).astype(jnp.int32)
    prefix = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(tiles[order], dtype=jnp.int32)])
    return SchedulerMetadata(num_m.astype(jnp.int32), splits.astype(jnp.int32), order,
                             _heads_in_l2(cfg, sk).astype(jnp.int32), prefix, config=cfg)


# ------------------------------------------------------------------------------------------------- public entry
def prepare_scheduler_metadata(cu_seqlens_q, cu_seqlens_k, *, max_seqlen_q, max_seqlen_k, num_heads, num_kv_heads,
                               head_dim, head_dim_v=None, causal=False, window_size=(-1, -1), seqused_q=None,
                               seqused_k=None, num_splits=0, dtype=jnp.bfloat16, pack_gqa=None, total_q=None,
                               tile_m=None, tile_n=None, num_sms=None, l2_bytes=None, arch=None,
                               implementation=None) -> SchedulerMetadata:
    """Scheduler metadata for varlen attention calls with this configuration (once per step, reused by layers).

    num_splits: 0 = automatic (at most 64 KV splits per sequence), 1 = never split, n = at most n.
    pack_gqa: None = `default_pack_gqa`'s rule. total_q: the calls' query token count (q.shape[0], a static int),
    optional; with it the rule also packs batches of mostly short sequences (decodes beside a few prefills), as
    varlen_attention does when it makes its own metadata. Without it such a batch stays unpacked: about 2.7x
    slower on a mixed prefill/decode batch (H200).
    implementation: None = the GPU prepare kernel when available, else the jnp path; "xla" = jnp path;
    "kernel" = the GPU kernel or an error. Works inside jit with traced cu_seqlens (no host synchronisation).
    """
    statics = [("max_seqlen_q", max_seqlen_q), ("max_seqlen_k", max_seqlen_k)]
    if total_q is not None:
        statics.append(("total_q", total_q))
    for name, value in statics:
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be a static Python int, got {type(value).__name__}")
    if implementation not in (None, "xla", "kernel"):
        raise ValueError(f"implementation={implementation!r}; expected None, 'xla' or 'kernel'")
    cu_q = jnp.asarray(cu_seqlens_q, jnp.int32)
    cu_k = jnp.asarray(cu_seqlens_k, jnp.int32)
    if cu_q.ndim != 1 or cu_k.shape != cu_q.shape or cu_q.shape[0] < 1:
        raise ValueError(f"cu_seqlens_q {cu_q.shape} and cu_seqlens_k {cu_k.shape} must both be [batch + 1]")
    batch = cu_q.shape[0] - 1
    cfg = make_config(num_heads=num_heads, num_kv_heads=num_kv_heads, head_dim=head_dim, head_dim_v=head_dim_v,
                      causal=causal, window_size=window_size, num_splits=num_splits, dtype=dtype, pack_gqa=pack_gqa,
                      max_seqlen_q=max_seqlen_q, total_q=total_q, batch=batch, tile_m=tile_m, tile_n=tile_n,
                      num_sms=num_sms, l2_bytes=l2_bytes, arch=arch)
    for name, used in (("seqused_q", seqused_q), ("seqused_k", seqused_k)):
        if used is not None and tuple(jnp.shape(used)) != (batch,):
            raise ValueError(f"{name} must have shape [{batch}], got {tuple(jnp.shape(used))}")
    if implementation != "xla":
        md = _prepare_on_gpu(cfg, cu_q, cu_k, seqused_q, seqused_k, required=implementation == "kernel")
        if md is not None:
            return md
    sq, sk = _sequence_lengths(cu_q, cu_k, seqused_q, seqused_k)
    m_bound = -(-int(max_seqlen_q) * cfg.qpk // cfg.tile_m)
    return compute_metadata(cfg, sq, sk, m_bound)


# ------------------------------------------------------------------------------------------- prepare kernel seam
def prepare_kernel_variant(batch: int) -> str:
    """Which compiled prepare variant serves `batch` sequences: one CTA up to PREPARE_CHUNK, else several launches."""
    return "small" if batch <= PREPARE_CHUNK else "large"


def prepare_workspace_size(batch: int) -> int:
    """int32 elements of the prepare kernel's `workspace` output (the caller allocates and discards it)."""
    return PREPARE_WORKSPACE_ARRAYS * max(1, -(-batch // PREPARE_CHUNK)) * PREPARE_CHUNK


def prepare_kernel_scalars(cfg: MetadataConfig, *, use_seqused_q: bool, use_seqused_k: bool) -> dict:
    """The prepare kernel's i32 scalar arguments (FFI attributes), by name, in SIGNATURE order."""
    if cfg.heads_eff >= PREPARE_CHUNK:
        raise ValueError(f"prepare kernel supports fewer than {PREPARE_CHUNK} scheduled heads, got {cfg.heads_eff}")
    return {
        "tile_m": cfg.tile_m, "tile_n": cfg.tile_n, "qpk": cfg.qpk, "heads_eff": cfg.heads_eff,
        "window_left": cfg.window_left, "window_right": cfg.window_right,
        "kv_bytes_per_token": cfg.kv_bytes_per_token, "l2_group": cfg.l2_group, "l2_budget": cfg.l2_bytes // 2,
        "num_sms": cfg.num_sms, "max_splits": cfg.max_splits, "min_split_blocks": cfg.min_split_blocks,
        "use_seqused_q": int(bool(use_seqused_q)), "use_seqused_k": int(bool(use_seqused_k)),
    }


def prepare_ffi_call(target: str, cfg: MetadataConfig, cu_q, cu_k, seqused_q=None, seqused_k=None):
    """Issues the prepare kernel's FFI call (target = the built variant `prepare_kernel_variant(batch)`).

    For jax_fa4.kernel_backend.prepare_metadata: it resolves the target name for this device and calls this.
    Absent seqused arrays are replaced by cu_seqlens (never read: use_seqused_* = 0).
    """
    cu_q = jnp.asarray(cu_q, jnp.int32)
    cu_k = jnp.asarray(cu_k, jnp.int32)
    batch = cu_q.shape[0] - 1
    used_q = cu_q if seqused_q is None else jnp.asarray(seqused_q, jnp.int32)
    used_k = cu_k if seqused_k is None else jnp.asarray(seqused_k, jnp.int32)
    per_seq = jax.ShapeDtypeStruct((batch,), jnp.int32)
    results = (per_seq, per_seq, per_seq, per_seq, jax.ShapeDtypeStruct((batch + 1,), jnp.int32),
               jax.ShapeDtypeStruct((prepare_workspace_size(batch),), jnp.int32))
    scalars = prepare_kernel_scalars(cfg, use_seqused_q=seqused_q is not None, use_seqused_k=seqused_k is not None)
    call = jax.ffi.ffi_call(target, results, vmap_method="sequential")
    *leaves, _workspace = call(cu_q, cu_k, used_q, used_k, **{k: np.int32(v) for k, v in scalars.items()})
    return SchedulerMetadata(*leaves, config=cfg)


def _prepare_on_gpu(cfg, cu_q, cu_k, seqused_q, seqused_k, *, required: bool):
    """Runs the prepare kernel through jax_fa4.kernel_backend.prepare_metadata when it can; None otherwise.

    The backend gets (config, cu_q, cu_k, seqused_q, seqused_k) and returns the five leaves (LEAVES order) or a
    SchedulerMetadata. With required=True every reason it cannot run becomes a ValueError.
    """
    try:
        from jax_fa4 import kernel_backend
    except Exception as exc:
        if required:
            raise ValueError(f"prepare kernel unavailable: importing jax_fa4.kernel_backend failed: {exc}") from exc
        return None
    reason = kernel_backend.unavailable_reason()
    if reason is None and not hasattr(kernel_backend, "prepare_metadata"):
        reason = "jax_fa4.kernel_backend has no prepare_metadata"
    if reason is not None:
        if required:
            raise ValueError(f"prepare kernel unavailable: {reason}")
        return None
    try:
        result = kernel_backend.prepare_metadata(cfg, cu_q, cu_k, seqused_q, seqused_k)
    except ValueError:
        if required:
            raise
        return None  # e.g. no prebuilt prepare variant for this architecture: the jnp path is exact too
    if isinstance(result, SchedulerMetadata):
        return result
    leaves = [jnp.asarray(x, jnp.int32) for x in result]
    return SchedulerMetadata(*leaves, config=cfg)


# ------------------------------------------------------------------------------------------ checks and decoding
def check_matches(md: SchedulerMetadata, *, num_heads, num_kv_heads, head_dim, head_dim_v=None, causal=False,
                  window_size=(-1, -1), dtype=None, batch=None) -> None:
    """Raises ValueError naming the first field where `md` was made for something other than this call."""
    if not isinstance(md, SchedulerMetadata):
        raise ValueError(f"scheduler_metadata must be a SchedulerMetadata (from prepare_scheduler_metadata), "
                         f"got {type(md).__name__}")
    cfg = md.config
    head_dim_v = head_dim if head_dim_v is None else head_dim_v
    left, right = normalize_window(causal, window_size)
    wanted = [("num_heads", cfg.num_heads, num_heads), ("num_kv_heads", cfg.num_kv_heads, num_kv_heads),
              ("head_dim", cfg.head_dim, head_dim), ("head_dim_v", cfg.head_dim_v, head_dim_v),
              ("causal", cfg.causal, bool(causal)), ("window_size", (cfg.window_left, cfg.window_right), (left, right))]
    if dtype is not None:
        wanted.append(("dtype itemsize", cfg.itemsize, jnp.dtype(dtype).itemsize))
    if batch is not None:
        wanted.append(("batch", md.batch, int(batch)))
    for name, made, call in wanted:
        if made != call:
            raise ValueError(f"scheduler_metadata was made for {name}={made} but the call has {name}={call}")


def decode_tile(md, t: int, one_head_at_a_time: bool = False) -> tuple[int, int, int, int]:
    """Linear tile t -> (b, head, m_block, split), exactly as the forward kernel decodes it (host-side, NumPy).

    `md` is a SchedulerMetadata or the dict from `to_numpy()`. `one_head_at_a_time` reads num_heads_in_l2 as 1, as
    the kernel does in its two-ended scheduler mode.
    """
    return _decode(md, t, 1, one_head_at_a_time)


def decode_pair(md, p: int, rank: int, one_head_at_a_time: bool = False) -> tuple[int, int, int, int]:
    """Tile pair p -> the (b, head, m_block, split) of CTA `rank` (0 or 1) of a cluster, exactly as the forward's
    pair variants decode it (host-side, NumPy): the pair's two tiles are query heads 2 j and 2 j + 1 of one
    sequence, m-block and split, with the head-swizzle width counted in head pairs (one pair for odd widths).
    Valid for unpacked metadata with an even number of query heads (every sequence then holds whole pairs)."""
    b, pair, m, split = _decode(md, 2 * p, 2, one_head_at_a_time)
    return b, 2 * pair + rank, m, split


def _decode(md, t: int, heads: int, one_head_at_a_time: bool) -> tuple[int, int, int, int]:
    """Tile t -> (b, head unit, m_block, split), the head counted in units of `heads` query heads (1: tiles, 2: the
    pair variants' tile pairs, whose swizzle width is num_heads_in_l2 / 2, or one pair for odd widths)."""
    f = md.to_numpy() if isinstance(md, SchedulerMetadata) else md
    prefix = np.asarray(f["tile_prefix"])
    p = int(np.searchsorted(prefix, t, side="right")) - 1  # largest p with prefix[p] <= t
    b = int(f["virtual_batch_idx"][p])
    u = (t - int(prefix[p])) // heads
    L = 1 if one_head_at_a_time else int(f["num_heads_in_l2"][b])
    L = L // heads if L % heads == 0 else 1
    S, M = int(f["num_splits"][b]), int(f["num_m_blocks"][b])
    g, r = divmod(u, L * M * S)
    m = M - 1 - r // (L * S)
    r2 = r % (L * S)
    return b, g * L + r2 // S, m, r2 % S
