"""Trace-time argument checks for the attention entry points, and an opt-in check of the length data.

Why: shapes, dtypes and static options are known while tracing, so a wrong call fails there, before any kernel is
chosen, with a message naming the argument. Values inside cu_seqlens / seqused are data (possibly traced), so they
are not checked by default; `check_lengths` checks concrete values on the host (used by `debug_checks=True`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

SUPPORTED_DTYPES = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16), jnp.dtype(jnp.float32))
IMPLEMENTATIONS = (None, "xla", "kernel")
# How the forward kernel hands out tiles (varlen_attention's scheduler_mode; the scheduler ablation's knob).
SCHEDULER_MODES = ("auto", "dynamic", "dynamic-fifo", "dynamic-two-ended", "static", "single-tile")


@dataclasses.dataclass(frozen=True)
class CallConfig:
    """Everything static about one varlen attention call; hashable, so backends can key compiled variants on it.

    window_left/right are normalised: -1 = unbounded, and causal=True sets window_right = 0.
    """

    batch: int
    total_q: int
    total_k: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    head_dim_v: int
    dtype: str
    max_seqlen_q: int
    max_seqlen_k: int
    causal: bool
    window_left: int
    window_right: int
    softcap: float
    softmax_scale: float
    has_seqused_q: bool
    has_seqused_k: bool
    num_splits: int
    return_lse: bool

    @property
    def is_local(self) -> bool:
        return self.window_left >= 0 or (self.window_right >= 0 and not self.causal)


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


def _array(name, x, rank, what):
    if not _is_array(x):
        raise TypeError(f"{name} must be an array {what}, got {type(x).__name__}")
    if x.ndim != rank:
        raise ValueError(f"{name} must have rank {rank} {what}, got shape {tuple(x.shape)}")
    return x


_TRACER = getattr(jax.core, "Tracer", None)


def _is_traced(x) -> bool:
    # Tracers are also caught by the array checks below; this only sharpens the message where jax exposes the type.
    return _TRACER is not None and isinstance(x, _TRACER)


def static_int(name, x, minimum=0):
    """x as a Python int; rejects traced values, bools, floats and values below `minimum`."""
    if _is_traced(x) or (_is_array(x) and not isinstance(x, np.generic)):
        raise TypeError(f"{name} must be a static Python int (it sizes the computation), got an array/traced "
                        f"value; pass a Python int or mark it static (static_argnames)")
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be a static Python int, got {type(x).__name__} {x!r}")
    if int(x) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {int(x)}")
    return int(x)


def _static_float(name, x):
    if _is_traced(x) or (_is_array(x) and not isinstance(x, np.generic)):
        raise TypeError(f"{name} must be a static Python float, got an array/traced value")
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a Python float, got {type(x).__name__} {x!r}")
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    return x


def _int32_vector(name, x, length=None, length_desc=""):
    x = _array(name, x, 1, length_desc or "[batch]")
    if jnp.dtype(x.dtype) != jnp.dtype(jnp.int32):
        raise TypeError(f"{name} must have dtype int32, got {jnp.dtype(x.dtype).name}")
    if length is not None and x.shape[0] != length:
        raise ValueError(f"{name} must have shape {length_desc} = ({length},), got {tuple(x.shape)}")
    return x


def check_flags(**flags):
    """Each keyword must be a Python bool (not a NumPy or traced value); TypeError naming it otherwise."""
    for name, flag in flags.items():
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a Python bool, got {flag!r}")


def _bool(name, x):
    if _is_traced(x) or not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be a Python bool, got {type(x).__name__} {x!r}")
    return bool(x)


def window(window_size, causal):
    """Normalised (left, right); raises ValueError naming window_size."""
    if not isinstance(window_size, (tuple, list)) or len(window_size) != 2:
        raise ValueError(f"window_size must be a pair (left, right) of ints, got {window_size!r}")
    left, right = window_size
    for side, val in (("left", left), ("right", right)):
        if _is_traced(val) or isinstance(val, bool) or not isinstance(val, numbers.Integral):
            raise TypeError(f"window_size {side} must be a static Python int, got {val!r}")
        if val < -1:
            raise ValueError(f"window_size {side} must be -1 (unbounded) or >= 0, got {val}")
    left, right = int(left), int(right)
    if causal:
        if right > 0:
            raise ValueError(f"window_size right must be -1 or 0 when causal=True, got {right}")
        right = 0
    return left, right


def check_implementation(implementation):
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of None, 'xla', 'kernel'; got {implementation!r}")
    return implementation


def check_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, *, max_seqlen_q, max_seqlen_k, seqused_q=None,
                 seqused_k=None, softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                 num_splits=0, return_lse=False, implementation=None) -> CallConfig:
    """Validates a varlen_attention call at trace time and returns its CallConfig."""
    _array("q", q, 3, "[total_q, num_heads, head_dim]")
    _array("k", k, 3, "[total_k, num_kv_heads, head_dim]")
    _array("v", v, 3, "[total_k, num_kv_heads, head_dim_v]")
    dtype = jnp.dtype(q.dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"q dtype {dtype.name} is not supported; use bfloat16, float16 or float32")
    for name, x in (("k", k), ("v", v)):
        if jnp.dtype(x.dtype) != dtype:
            raise TypeError(f"{name} dtype {jnp.dtype(x.dtype).name} must equal q dtype {dtype.name}")
    total_q, heads, dim = q.shape
    total_k, kv_heads, dim_k = k.shape
    if kv_heads == 0 or heads == 0:
        raise ValueError(f"num_heads (q.shape[1]={heads}) and num_kv_heads (k.shape[1]={kv_heads}) must be > 0")
    if heads % kv_heads:
        raise ValueError(f"num_heads (q.shape[1]={heads}) must be a multiple of num_kv_heads "
                         f"(k.shape[1]={kv_heads})")
    if dim_k != dim:
        raise ValueError(f"head_dim mismatch: q.shape[2]={dim} but k.shape[2]={dim_k}")
    if dim == 0 or v.shape[2] == 0:
        raise ValueError(f"head_dim must be > 0 (q.shape[2]={dim}, v.shape[2]={v.shape[2]})")
    if v.shape[0] != total_k:
        raise ValueError(f"v.shape[0]={v.shape[0]} must equal k.shape[0]={total_k} (total_k)")
    if v.shape[1] != kv_heads:
        raise ValueError(f"v.shape[1]={v.shape[1]} must equal k.shape[1]={kv_heads} (num_kv_heads)")

    _int32_vector("cu_seqlens_q", cu_seqlens_q, length_desc="[batch + 1]")
    if cu_seqlens_q.shape[0] < 1:
        raise ValueError("cu_seqlens_q must have shape [batch + 1] with at least one entry, got (0,)")
    batch = cu_seqlens_q.shape[0] - 1
    _int32_vector("cu_seqlens_k", cu_seqlens_k, batch + 1, "[batch + 1]")
    if seqused_q is not None:
        _int32_vector("seqused_q", seqused_q, batch, "[batch]")
    if seqused_k is not None:
        _int32_vector("seqused_k", seqused_k, batch, "[batch]")

    max_q = static_int("max_seqlen_q", max_seqlen_q)
    max_k = static_int("max_seqlen_k", max_seqlen_k)
    causal = _bool("causal", causal)
    left, right = window(window_size, causal)
    softcap = _static_float("softcap", softcap)
    if softcap < 0:
        raise ValueError(f"softcap must be >= 0 (0 disables it), got {softcap}")
    scale = 1.0 / math.sqrt(dim) if softmax_scale is None else _static_float("softmax_scale", softmax_scale)
    splits = static_int("num_splits", num_splits)
    return_lse = _bool("return_lse", return_lse)
    check_implementation(implementation)
    return CallConfig(batch=batch, total_q=total_q, total_k=total_k, num_heads=heads, num_kv_heads=kv_heads,
                      head_dim=dim, head_dim_v=v.shape[2], dtype=dtype.name, max_seqlen_q=max_q,
                      max_seqlen_k=max_k, causal=causal, window_left=left, window_right=right, softcap=softcap,
                      softmax_scale=scale, has_seqused_q=seqused_q is not None,
                      has_seqused_k=seqused_k is not None, num_splits=splits, return_lse=return_lse)


def check_metadata(md, config: CallConfig):
    """Raises ValueError when scheduler_metadata was made for another call configuration."""
    try:
        from jax_fa4 import metadata
    except ImportError as exc:  # pragma: no cover - metadata ships with the package
        raise ValueError(f"scheduler_metadata given but jax_fa4.metadata cannot be imported: {exc}") from exc
    if not isinstance(md, metadata.SchedulerMetadata):
        raise TypeError(f"scheduler_metadata must be a jax_fa4.SchedulerMetadata "
                        f"(from prepare_scheduler_metadata), got {type(md).__name__}")
    metadata.check_matches(
        md, batch=config.batch, num_heads=config.num_heads, num_kv_heads=config.num_kv_heads,
        head_dim=config.head_dim, head_dim_v=config.head_dim_v, causal=config.causal,
        window_size=(config.window_left, config.window_right), dtype=jnp.dtype(config.dtype))


def check_lengths(cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k, *, total_q, total_k, max_seqlen_q,
                  max_seqlen_k):
    """Host-side check of concrete length data; raises ValueError describing the first fault found.

    In-contract data: cu[0] == 0, non-decreasing, cu[-1] <= total; seqused within [0, slot length];
    every used length <= max_seqlen.
    """
    for side, cu, used, total, mx in (("q", cu_seqlens_q, seqused_q, total_q, max_seqlen_q),
                                      ("k", cu_seqlens_k, seqused_k, total_k, max_seqlen_k)):
        cu = np.asarray(cu, np.int64)
        name = f"cu_seqlens_{side}"
        if cu[0] != 0:
            raise ValueError(f"{name}[0] must be 0, got {cu[0]}")
        drops = np.nonzero(np.diff(cu) < 0)[0]
        if drops.size:
            b = int(drops[0])
            raise ValueError(f"{name} must be non-decreasing: {name}[{b + 1}]={cu[b + 1]} < {name}[{b}]={cu[b]}")
        if cu[-1] > total:
            raise ValueError(f"{name}[-1]={cu[-1]} exceeds the number of rows {total}")
        lens = np.diff(cu)
        if used is not None:
            used = np.asarray(used, np.int64)
            bad = np.nonzero((used < 0) | (used > lens))[0]
            if bad.size:
                b = int(bad[0])
                raise ValueError(f"seqused_{side}[{b}]={used[b]} must lie in [0, {lens[b]}] (its slot length)")
            lens = used
        over = np.nonzero(lens > mx)[0]
        if over.size:
            b = int(over[0])
            raise ValueError(f"sequence {b} has {side} length {lens[b]} > max_seqlen_{side}={mx}")
