"""Running varlen attention on several devices without XLA inserting gathers.

Attention is independent across heads and across sequences, but XLA cannot see that through an opaque custom call
(the GPU kernels are FFI calls), so left alone it replicates the operands around it. Two mechanisms fix that:

* Head (tensor) parallel, `sharded_varlen_attention`: the forward and the backward are each wrapped in
  `jax.experimental.custom_partitioning` with a rule "axis 1 of q/k/v/out and axis 0 of lse are sharded together,
  everything else is replicated". Under `jax.jit` with head-sharded inputs every device then runs the ordinary
  single-device op on its own heads, with no collective. Query heads of one KV group stay on one device (the rule
  shards KV heads and carries the query heads of each group along), so num_kv_heads must be divisible by the
  number of head shards. The token axis is never sharded by this rule: if q/k/v arrive sharded over tokens, XLA
  all-gathers them first (correct, but it is communication; for token sharding use the data-parallel recipe below).
  `jax.grad` works through a `jax.custom_vjp` whose forward and backward are each custom-partitioned; the backward
  runs the GPU backward kernels on each shard's heads (the reference's gradient where the forward ran on the
  reference).
  Meshes with Explicit axes (jax.make_mesh's default) carry shardings in the types, which custom_partitioning's
  global-shape trace rejects; there the same op runs under `jax.shard_map` over the head axes instead.

* Data parallel over packed tokens, `shard_packed_batch` + `data_parallel_varlen_attention`: whole sequences are
  assigned to shards on the host (balanced by attention work, each shard padded to one static token count), every
  shard carries its own cu_seqlens, and attention runs inside `jax.shard_map` on each shard's tokens. Optionally
  heads are sharded over a second mesh axis at the same time (data x model meshes).

Scheduler metadata depends on the head count. For head parallel, pass metadata made for the per-shard head counts
(num_heads // n, num_kv_heads // n); metadata made for the global head counts is rebuilt per shard from its config
(correct, but one prepare per call). For data parallel, metadata is built per shard inside the shard_map.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec as P

from jax_fa4 import metadata as metadata_lib
from jax_fa4 import validation


# ------------------------------------------------------------------------------------------------- head parallel
@dataclasses.dataclass(frozen=True)
class _Static:
    """Everything static about one call (hashable: a custom_partitioning static argument)."""

    num_heads: int
    num_kv_heads: int
    max_seqlen_q: int
    max_seqlen_k: int
    softmax_scale: float
    causal: bool
    window_size: tuple
    softcap: float
    num_splits: int
    implementation: Optional[str]
    has_seqused_q: bool
    has_seqused_k: bool
    metadata_config: Optional[metadata_lib.MetadataConfig]
    deterministic: bool = False


def _local_metadata(st: _Static, md_leaves, heads, kv_heads, dtype, cu_q, cu_k, seqused_q, seqused_k):
    """Metadata for a shard holding `heads` / `kv_heads`: passed through if made for them, else rebuilt."""
    if st.metadata_config is None:
        return None
    cfg = st.metadata_config
    if (cfg.num_heads, cfg.num_kv_heads) == (heads, kv_heads):
        return metadata_lib.SchedulerMetadata(*md_leaves, config=cfg)
    return metadata_lib.prepare_scheduler_metadata(
        cu_q, cu_k, max_seqlen_q=st.max_seqlen_q, max_seqlen_k=st.max_seqlen_k, num_heads=heads,
        num_kv_heads=kv_heads, head_dim=cfg.head_dim, head_dim_v=cfg.head_dim_v, causal=cfg.causal,
        window_size=(cfg.window_left, cfg.window_right), seqused_q=seqused_q, seqused_k=seqused_k,
        num_splits=cfg.max_splits, dtype=dtype, pack_gqa=cfg.pack_gqa, tile_m=cfg.tile_m, tile_n=cfg.tile_n,
        num_sms=cfg.num_sms, l2_bytes=cfg.l2_bytes, arch=cfg.arch)


def _forward_local(st: _Static, q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves):
    """The single-device op on whatever heads this device holds: (out, lse)."""
    from jax_fa4 import api  # late: api may come to import this module

    # If api.varlen_attention ever routes through this module, its single-device body must be what runs here.
    varlen_attention = getattr(api, "_varlen_attention_single", api.varlen_attention)
    md = _local_metadata(st, md_leaves, q.shape[1], k.shape[1], q.dtype, cu_q, cu_k, seqused_q, seqused_k)
    return varlen_attention(
        q, k, v, cu_q, cu_k, max_seqlen_q=st.max_seqlen_q, max_seqlen_k=st.max_seqlen_k, seqused_q=seqused_q,
        seqused_k=seqused_k, softmax_scale=st.softmax_scale, causal=st.causal, window_size=st.window_size,
        softcap=st.softcap, num_splits=st.num_splits, scheduler_metadata=md, return_lse=True,
        implementation=st.implementation)


def _backward_local(st: _Static, q, k, v, cu_q, cu_k, seqused_q, seqused_k, out, lse, dout, dlse):
    """(dq, dk, dv) for this device's heads: the GPU backward kernels where the forward ran on the kernels and
    they cover the call (the same choice api.varlen_attention makes), else the reference's gradient, recomputed."""
    from jax_fa4 import api  # late: api may come to import this module

    config = validation.check_varlen(
        q, k, v, cu_q, cu_k, max_seqlen_q=st.max_seqlen_q, max_seqlen_k=st.max_seqlen_k, seqused_q=seqused_q,
        seqused_k=seqused_k, softmax_scale=st.softmax_scale, causal=st.causal, window_size=st.window_size,
        softcap=st.softcap, num_splits=st.num_splits, return_lse=True, implementation=st.implementation)
    backend, module = api._select_backend(config, st.implementation)
    return api._gradients(module if backend == "kernel" else None, config, q, k, v, out, lse, cu_q, cu_k, seqused_q,
                         seqused_k, dout, dlse, deterministic=st.deterministic)


def _head_factors(st: _Static):
    """Rule strings for the head axes: KV heads `g`, query heads `(g r)` (r = queries per KV head, replicated)."""
    qpk = st.num_heads // st.num_kv_heads
    return ("g", "g", {}) if qpk == 1 else ("(g r)", "g", {"r": qpk})


def _replicated_operands(st: _Static, with_metadata: bool):
    ops = ["c", "c"]                                    # cu_seqlens_q, cu_seqlens_k [B+1]
    ops += ["b"] * (int(st.has_seqused_q) + int(st.has_seqused_k))
    if with_metadata and st.metadata_config is not None:
        ops += ["b", "b", "b", "b", "c"]                # num_m_blocks, num_splits, vbi, heads_in_l2, tile_prefix
    return ops


def _rule(operands, results, sizes):
    """Einsum-like Shardy rule in which every factor except the KV-head factor `g` must stay replicated."""
    rule = f"{', '.join(operands)} -> {', '.join(results)}"
    order = list(dict.fromkeys(re.findall(r"[a-z]", rule)))   # Shardy wants special factors in rule order
    replicate = tuple(f for f in order if f != "g")
    return rule, dict(need_replication_factors=replicate, **sizes)


def _forward_rule(st: _Static, mesh, value_types, result_types):
    del mesh, value_types, result_types
    hq, hk, sizes = _head_factors(st)
    ops = [f"t {hq} d", f"s {hk} d", f"s {hk} e"] + _replicated_operands(st, True)
    return _rule(ops, [f"t {hq} e", f"{hq} t"], sizes)


def _backward_rule(st: _Static, mesh, value_types, result_types):
    del mesh, value_types, result_types
    hq, hk, sizes = _head_factors(st)
    ops = ([f"t {hq} d", f"s {hk} d", f"s {hk} e"] + _replicated_operands(st, False)
           + [f"t {hq} e", f"{hq} t", f"t {hq} e", f"{hq} t"])
    return _rule(ops, [f"t {hq} d", f"s {hk} d", f"s {hk} e"], sizes)


def _head_axes(st: _Static, mesh, q_sharding):
    """Mesh axes that shard q's head axis (a tuple, maybe empty), checked against the head counts."""
    spec = getattr(q_sharding, "spec", None)
    entry = spec[1] if spec is not None and len(spec) > 1 else None
    axes = () if entry is None else (tuple(entry) if isinstance(entry, (tuple, list)) else (entry,))
    n = math.prod(mesh.shape[a] for a in axes) if axes else 1
    if st.num_kv_heads % n or st.num_heads % n:
        raise ValueError(
            f"sharded_varlen_attention: heads are sharded {n} ways over mesh axes {axes}, but num_heads="
            f"{st.num_heads} and num_kv_heads={st.num_kv_heads} must both be divisible by {n} (query heads of one "
            f"KV head stay on one device). Shard heads over fewer devices or replicate k/v.")
    return axes if axes else None


def _shardings(mesh, head, n_replicated):
    heads3 = NamedSharding(mesh, P(None, head, None))
    rep = NamedSharding(mesh, P())
    return heads3, NamedSharding(mesh, P(head, None)), [rep] * n_replicated


def _partition_forward(st: _Static, mesh, arg_shapes, result_shape):
    q_shape = arg_shapes[0]
    head = _head_axes(st, mesh, q_shape.sharding)
    heads3, lse_sh, rep = _shardings(mesh, head, len(jax.tree_util.tree_leaves(arg_shapes)) - 3)
    arg_sh = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(arg_shapes), [heads3] * 3 + rep)

    def lower(q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves):
        return _forward_local(st, q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves)

    return mesh, lower, (heads3, lse_sh), arg_sh


def _partition_backward(st: _Static, mesh, arg_shapes, result_shape):
    head = _head_axes(st, mesh, arg_shapes[0].sharding)
    heads3, lse_sh, _ = _shardings(mesh, head, 0)
    rep = NamedSharding(mesh, P())
    n_rep = int(st.has_seqused_q) + int(st.has_seqused_k)
    flat = [heads3] * 3 + [rep] * (2 + n_rep) + [heads3, lse_sh, heads3, lse_sh]
    arg_sh = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(arg_shapes), flat)

    def lower(q, k, v, cu_q, cu_k, seqused_q, seqused_k, out, lse, dout, dlse):
        return _backward_local(st, q, k, v, cu_q, cu_k, seqused_q, seqused_k, out, lse, dout, dlse)

    return mesh, lower, (heads3, heads3, heads3), arg_sh


def _infer_forward(st, mesh, arg_shapes, result_shape):   # GSPMD (non-Shardy) propagation
    head = _head_axes(st, mesh, arg_shapes[0].sharding)
    heads3, lse_sh, _ = _shardings(mesh, head, 0)
    return heads3, lse_sh


def _infer_backward(st, mesh, arg_shapes, result_shape):
    head = _head_axes(st, mesh, arg_shapes[0].sharding)
    heads3, _, _ = _shardings(mesh, head, 0)
    return heads3, heads3, heads3


@functools.partial(custom_partitioning, static_argnums=(0,))
def _forward_cp(st, q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves):
    return _forward_local(st, q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves)


@functools.partial(custom_partitioning, static_argnums=(0,))
def _backward_cp(st, q, k, v, cu_q, cu_k, seqused_q, seqused_k, out, lse, dout, dlse):
    return _backward_local(st, q, k, v, cu_q, cu_k, seqused_q, seqused_k, out, lse, dout, dlse)


_forward_cp.def_partition(partition=_partition_forward, infer_sharding_from_operands=_infer_forward,
                          sharding_rule=_forward_rule)
_backward_cp.def_partition(partition=_partition_backward, infer_sharding_from_operands=_infer_backward,
                           sharding_rule=_backward_rule)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _attend(st, q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves):
    return _forward_cp(st, q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves)


def _attend_fwd(st, q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves):
    out, lse = _forward_cp(st, q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves)
    return (out, lse), (q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves, out, lse)


def _attend_bwd(st, res, cts):
    q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves, out, lse = res
    dout, dlse = cts
    dq, dk, dv = _backward_cp(st, q, k, v, cu_q, cu_k, seqused_q, seqused_k, out, lse,
                              dout.astype(out.dtype), dlse.astype(jnp.float32))
    zeros = jax.tree_util.tree_map(lambda _: None, (cu_q, cu_k, seqused_q, seqused_k, md_leaves))
    return (dq, dk, dv) + zeros


_attend.defvjp(_attend_fwd, _attend_bwd)


def sharded_varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, *, max_seqlen_q, max_seqlen_k, seqused_q=None,
                             seqused_k=None, softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                             num_splits=0, scheduler_metadata=None, return_lse=False, implementation=None,
                             deterministic=False):
    """`jax_fa4.varlen_attention` that partitions over heads under `jax.jit` (see the module doc).

    Same arguments and results as varlen_attention. Shard q/k/v over axis 1 (e.g. NamedSharding(mesh,
    P(None, "model", None))); out comes back sharded the same way and lse over its axis 0. On one device, or
    inside shard_map, it is exactly varlen_attention. Differentiable (jax.grad / jax.vjp) in q, k, v.
    """
    config = validation.check_varlen(
        q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k,
        seqused_q=seqused_q, seqused_k=seqused_k, softmax_scale=softmax_scale, causal=causal,
        window_size=window_size, softcap=softcap, num_splits=num_splits, return_lse=return_lse,
        implementation=implementation)
    validation.check_flags(deterministic=deterministic)
    md_config, md_leaves = None, None
    if scheduler_metadata is not None:
        if not isinstance(scheduler_metadata, metadata_lib.SchedulerMetadata):
            raise TypeError(f"scheduler_metadata must be a jax_fa4.SchedulerMetadata, got "
                            f"{type(scheduler_metadata).__name__}")
        cfg = scheduler_metadata.config
        # Heads are checked per shard; everything else must match the call now.
        metadata_lib.check_matches(
            scheduler_metadata, num_heads=cfg.num_heads, num_kv_heads=cfg.num_kv_heads, head_dim=config.head_dim,
            head_dim_v=config.head_dim_v, causal=config.causal,
            window_size=(config.window_left, config.window_right), dtype=jnp.dtype(config.dtype),
            batch=config.batch)
        md_config = cfg
        md_leaves = tuple(getattr(scheduler_metadata, name) for name in metadata_lib.LEAVES)
    st = _Static(num_heads=config.num_heads, num_kv_heads=config.num_kv_heads, max_seqlen_q=config.max_seqlen_q,
                 max_seqlen_k=config.max_seqlen_k, softmax_scale=config.softmax_scale, causal=config.causal,
                 window_size=(config.window_left, config.window_right), softcap=config.softcap,
                 num_splits=config.num_splits, implementation=implementation,
                 has_seqused_q=seqused_q is not None, has_seqused_k=seqused_k is not None,
                 metadata_config=md_config, deterministic=deterministic)
    explicit = _explicit_head_sharding(q)
    if explicit is None:
        out, lse = _attend(st, q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, md_leaves)
    else:
        out, lse = _attend_explicit(st, explicit, q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k,
                                    md_leaves)
    return (out, lse) if return_lse else out


def _explicit_head_sharding(q):
    """(mesh, head axes) when q's type carries an explicit-mode sharding (jax.make_mesh's default), else None.

    custom_partitioning traces its body with global types, which explicit sharding types reject; on such meshes
    the same per-head op runs under jax.shard_map over the head axes instead (same result, no collective)."""
    typeof = getattr(jax, "typeof", None)
    axis_type = getattr(jax.sharding, "AxisType", None)
    if typeof is None or axis_type is None:
        return None
    sharding = getattr(typeof(q), "sharding", None)
    mesh = getattr(sharding, "mesh", None)
    if mesh is None or getattr(mesh, "empty", True):
        return None
    if not any(t == axis_type.Explicit for t in getattr(mesh, "axis_types", ())):
        return None
    spec = tuple(sharding.spec) + (None,) * 3
    if spec[0] is not None:
        raise ValueError(f"sharded_varlen_attention: q's token axis is sharded ({spec[0]!r}) on an explicit mesh; "
                         f"shard heads only, or use data_parallel_varlen_attention for token shards")
    return mesh, spec[1]


def _attend_explicit(st, explicit, q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves):
    mesh, head = explicit
    axes = () if head is None else (tuple(head) if isinstance(head, (tuple, list)) else (head,))
    n = math.prod(mesh.shape[a] for a in axes) if axes else 1
    if st.num_kv_heads % n or st.num_heads % n:
        raise ValueError(f"sharded_varlen_attention: heads are sharded {n} ways over mesh axes {axes}, but "
                         f"num_heads={st.num_heads} and num_kv_heads={st.num_kv_heads} must both be divisible by {n}")
    heads3 = P(None, head, None)

    def local(q_, k_, v_, cu_q_, cu_k_, used_q, used_k, leaves):
        return _attend(st, q_, k_, v_, cu_q_, cu_k_, used_q, used_k, leaves)

    rep = jax.tree_util.tree_map(lambda _: P(), (cu_q, cu_k, seqused_q, seqused_k, md_leaves))
    fn = jax.shard_map(local, mesh=mesh, in_specs=(heads3, heads3, heads3) + rep,
                       out_specs=(heads3, P(head, None)))
    return fn(q, k, v, cu_q, cu_k, seqused_q, seqused_k, md_leaves)


# ------------------------------------------------------------------------------- data parallel over packed tokens
@dataclasses.dataclass(frozen=True)
class ShardedPacking:
    """Host-side plan that puts whole sequences on shards.

    q_index / k_index [n_shards, tokens_q / tokens_k] int64: global packed row held by each shard slot (-1 =
    padding). cu_seqlens_q / cu_seqlens_k [n_shards, max_batch + 1] int32: per-shard packing (unused slots are empty
    sequences). sequence_ids [n_shards, max_batch]: global sequence in each slot (-1 = none). work [n_shards]:
    attended query-key pairs per shard (the balance achieved).
    """

    q_index: np.ndarray
    k_index: np.ndarray
    cu_seqlens_q: np.ndarray
    cu_seqlens_k: np.ndarray
    sequence_ids: np.ndarray
    max_seqlen_q: int
    max_seqlen_k: int
    work: np.ndarray

    @property
    def n_shards(self) -> int:
        return int(self.q_index.shape[0])


def attended_pairs(seqlen_q, seqlen_k, causal=False, window_size=(-1, -1)) -> np.ndarray:
    """Exact (query, key) pairs each sequence attends under the bottom-right aligned mask (int64 per sequence)."""
    seqlen_q = np.asarray(seqlen_q, np.int64)
    seqlen_k = np.asarray(seqlen_k, np.int64)
    left, right = metadata_lib.normalize_window(causal, window_size)
    pairs = np.zeros(seqlen_q.shape, np.int64)
    for b, (sq, sk) in enumerate(zip(seqlen_q, seqlen_k)):
        if sq == 0 or sk == 0:
            continue
        diag = np.arange(sq) + sk - sq
        hi = np.minimum(sk - 1, diag + right) if right >= 0 else np.full(sq, sk - 1)
        lo = np.maximum(0, diag - left) if left >= 0 else np.zeros(sq, np.int64)
        pairs[b] = np.maximum(hi - lo + 1, 0).sum()
    return pairs


def _round_up(x: int, multiple: int) -> int:
    return max(multiple, -(-x // multiple) * multiple)


def shard_packed_batch(seqlens_q, n_shards, *, seqlens_k=None, causal=False, window_size=(-1, -1),
                       token_multiple=8, tokens_q=None, tokens_k=None, max_batch=None) -> ShardedPacking:
    """Assigns whole sequences of a global packing to `n_shards` shards (host-side, NumPy).

    seqlens_q (/ seqlens_k, default = seqlens_q): per-sequence lengths of the global packing, sequence b at rows
    cumsum(lengths)[b-1] ... Greedy longest-work-first onto the least-loaded shard (work = attended pairs under the
    mask), so shards get similar attention cost. Every shard is padded to the same static token count (the
    largest shard rounded up to `token_multiple`, or `tokens_q` / `tokens_k` if given) and the same number of
    sequence slots (`max_batch`, default the largest shard's), so one compiled program serves all shards.
    """
    seqlens_q = np.asarray(seqlens_q, np.int64).reshape(-1)
    seqlens_k = seqlens_q if seqlens_k is None else np.asarray(seqlens_k, np.int64).reshape(-1)
    if seqlens_k.shape != seqlens_q.shape:
        raise ValueError(f"seqlens_k has {seqlens_k.shape[0]} sequences, seqlens_q {seqlens_q.shape[0]}")
    if n_shards < 1 or (seqlens_q < 0).any() or (seqlens_k < 0).any():
        raise ValueError("n_shards must be >= 1 and lengths >= 0")
    work = attended_pairs(seqlens_q, seqlens_k, causal, window_size)
    order = sorted(range(len(seqlens_q)), key=lambda b: (-work[b], -(seqlens_q[b] + seqlens_k[b]), b))
    load = np.zeros(n_shards, np.int64)
    toks = np.zeros(n_shards, np.int64)
    members = [[] for _ in range(n_shards)]
    for b in order:
        s = min(range(n_shards), key=lambda i: (load[i], toks[i], i))
        members[s].append(b)
        load[s] += work[b]
        toks[s] += seqlens_q[b] + seqlens_k[b]
    for m in members:
        m.sort()                                        # keep the global order inside a shard
    starts_q = np.concatenate([[0], np.cumsum(seqlens_q)])
    starts_k = np.concatenate([[0], np.cumsum(seqlens_k)])
    need_q = max(int(sum(seqlens_q[b] for b in m)) for m in members)
    need_k = max(int(sum(seqlens_k[b] for b in m)) for m in members)
    tq = _round_up(need_q, token_multiple) if tokens_q is None else int(tokens_q)
    tk = _round_up(need_k, token_multiple) if tokens_k is None else int(tokens_k)
    nb = max(max(len(m) for m in members), 1) if max_batch is None else int(max_batch)
    if tq < need_q or tk < need_k or nb < max(len(m) for m in members):
        raise ValueError(f"a shard needs {need_q} query tokens, {need_k} key tokens and "
                         f"{max(len(m) for m in members)} sequence slots; got {tq}, {tk}, {nb}")
    q_index = np.full((n_shards, tq), -1, np.int64)
    k_index = np.full((n_shards, tk), -1, np.int64)
    cu_q = np.zeros((n_shards, nb + 1), np.int32)
    cu_k = np.zeros((n_shards, nb + 1), np.int32)
    ids = np.full((n_shards, nb), -1, np.int64)
    for s, m in enumerate(members):
        pq = pk = 0
        for j, b in enumerate(m):
            q_index[s, pq:pq + seqlens_q[b]] = np.arange(starts_q[b], starts_q[b + 1])
            k_index[s, pk:pk + seqlens_k[b]] = np.arange(starts_k[b], starts_k[b + 1])
            pq += seqlens_q[b]
            pk += seqlens_k[b]
            cu_q[s, j + 1], cu_k[s, j + 1] = pq, pk
            ids[s, j] = b
        cu_q[s, len(m) + 1:] = pq
        cu_k[s, len(m) + 1:] = pk
    mq = int(max(seqlens_q.max(initial=0), 1))
    mk = int(max(seqlens_k.max(initial=0), 1))
    return ShardedPacking(q_index, k_index, cu_q, cu_k, ids, mq, mk, load)


def shard_tokens(x, index):
    """Global packed x [total, ...] -> per-shard packed [n_shards * tokens, ...] (padding rows are 0).

    `index` is ShardedPacking.q_index or .k_index. Place the result with NamedSharding(mesh, P(axis)) so shard s
    holds rows s*tokens .. (s+1)*tokens-1.
    """
    flat = np.asarray(index).reshape(-1)
    return jnp.take(x, jnp.asarray(np.where(flat < 0, x.shape[0], flat)), axis=0, mode="fill", fill_value=0)


def unshard_tokens(y, index, total):
    """Inverse of shard_tokens: per-shard [n_shards * tokens, ...] -> global [total, ...] (unowned rows 0)."""
    flat = np.asarray(index).reshape(-1)
    dest = np.where(flat < 0, total, flat)
    return jnp.zeros((total,) + y.shape[1:], y.dtype).at[jnp.asarray(dest)].set(y, mode="drop")


def data_parallel_varlen_attention(mesh, axis, q, k, v, cu_seqlens_q, cu_seqlens_k, *, max_seqlen_q, max_seqlen_k,
                                   seqused_q=None, seqused_k=None, softmax_scale=None, causal=False,
                                   window_size=(-1, -1), softcap=0.0, num_splits=0, return_lse=False,
                                   implementation=None, head_axis=None, metadata_options=None):
    """varlen_attention on token shards: each device attends its own packed sequences, no communication.

    mesh / axis: the mesh and its axis (name or tuple of names) the token axis is sharded over (n shards).
    q [n * tokens_q, H, D], k / v [n * tokens_k, Hk, *]: shard s holds its own packing in rows s*tokens ..
    (s+1)*tokens-1 (see shard_packed_batch / shard_tokens). cu_seqlens_q / _k int32 [n, batch + 1]: row s is shard
    s's cu_seqlens; seqused_q / _k optionally [n, batch]. head_axis: optionally also shard heads over this mesh
    axis (data x model parallel; H and Hk divisible by its size). metadata_options: None = no scheduler metadata;
    a dict (possibly empty) = build metadata per shard inside the shard_map with prepare_scheduler_metadata(...,
    **metadata_options) for the per-shard lengths and heads. Returns out [n * tokens_q, H, Dv] (and lse
    [H, n * tokens_q]) sharded the same way. Differentiable (the backward is shard-local too).
    """
    from jax_fa4.api import varlen_attention

    tok = P(axis, head_axis, None)
    row = P(axis, None)
    in_specs = (tok, tok, tok, row, row, None if seqused_q is None else row, None if seqused_k is None else row)
    out_specs = (tok, P(head_axis, axis)) if return_lse else tok
    kwargs = dict(max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k, softmax_scale=softmax_scale, causal=causal,
                  window_size=window_size, softcap=softcap, num_splits=num_splits, return_lse=return_lse,
                  implementation=implementation)

    def local(q_, k_, v_, cu_q, cu_k, used_q, used_k):
        cu_q, cu_k = cu_q[0], cu_k[0]
        used_q = None if used_q is None else used_q[0]
        used_k = None if used_k is None else used_k[0]
        md = None
        if metadata_options is not None:
            md = metadata_lib.prepare_scheduler_metadata(
                cu_q, cu_k, max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k, num_heads=q_.shape[1],
                num_kv_heads=k_.shape[1], head_dim=q_.shape[2], head_dim_v=v_.shape[2], causal=causal,
                window_size=window_size, seqused_q=used_q, seqused_k=used_k, num_splits=num_splits,
                dtype=q_.dtype, **dict(metadata_options))
        return varlen_attention(q_, k_, v_, cu_q, cu_k, seqused_q=used_q, seqused_k=used_k,
                                scheduler_metadata=md, **kwargs)

    fn = jax.shard_map(local, mesh=mesh, in_specs=in_specs, out_specs=out_specs)
    return fn(q, k, v, cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k)
