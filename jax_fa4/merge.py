"""Merging attention computed over disjoint key sets by log-sum-exp: the split-KV combine, exposed.

Attention over keys K = K_1 ∪ ... ∪ K_n equals the merge of the attentions over each part:
    lse = log(sum_i exp(lse_i)),  out = sum_i exp(lse_i - lse) * out_i.
This is how split-KV partials are combined, and the merge step of ring / context-parallel attention (each device
attends its queries to one key shard per step, then merges). Parts whose lse is -inf (saw no key) contribute
nothing; a row that saw no key in any part gets out = 0 and lse = -inf.
"""

from __future__ import annotations

import jax.numpy as jnp


def merge_reference(outs, lses):
    """Pure-JAX merge. outs [n, total, H, Dv], lses [n, H, total] -> (out [total, H, Dv] in outs' dtype, lse f32)."""
    lses = lses.astype(jnp.float32)
    lse_max = jnp.max(lses, axis=0)
    safe_max = jnp.where(jnp.isfinite(lse_max), lse_max, 0.0)
    weights_sum = jnp.sum(jnp.exp(lses - safe_max), axis=0)
    lse = jnp.where(weights_sum > 0, safe_max + jnp.log(jnp.where(weights_sum > 0, weights_sum, 1.0)), -jnp.inf)
    weights = jnp.where(jnp.isfinite(lse), jnp.exp(lses - jnp.where(jnp.isfinite(lse), lse, 0.0)), 0.0)
    out = jnp.einsum("nht,nthd->thd", weights, outs.astype(jnp.float32))
    return out.astype(outs.dtype), lse


def merge_attention_states(outs, lses, *, implementation=None):
    """Merges n partial attention results by LSE (see module doc).

    outs: [n, total, H, Dv] (any float dtype), lses: [n, H, total] natural-log LSE.
    implementation: None (kernel on a supported GPU, else JAX), "xla" or "kernel".
    Returns (out [total, H, Dv] in outs' dtype, lse [H, total] float32).
    """
    if outs.ndim != 4 or lses.ndim != 3:
        raise ValueError(f"merge_attention_states: outs must be [n, total, H, Dv] and lses [n, H, total]; "
                         f"got outs {outs.shape}, lses {lses.shape}")
    n, total, heads, _ = outs.shape
    if lses.shape != (n, heads, total):
        raise ValueError(f"merge_attention_states: lses has shape {lses.shape}, expected {(n, heads, total)}")
    if implementation not in (None, "xla", "kernel"):
        raise ValueError(f"merge_attention_states: implementation must be None, 'xla' or 'kernel', "
                         f"got {implementation!r}")
    if n == 1:
        return outs[0], lses[0].astype(jnp.float32)
    if implementation != "xla":
        from jax_fa4 import kernel_backend

        reason = kernel_backend.unavailable_reason()
        if reason is None:
            # One "sequence" spanning every row, split n ways: the combine kernel merges all of it.
            return kernel_backend.combine(
                outs, lses, jnp.array([0, total], jnp.int32), jnp.array([total], jnp.int32),
                jnp.array([n], jnp.int32), jnp.zeros(outs.shape[1:], outs.dtype),
                jnp.full(lses.shape[1:], -jnp.inf, jnp.float32))
        if implementation == "kernel":
            raise ValueError(f"merge_attention_states: kernel unavailable: {reason}")
    return merge_reference(outs, lses)
