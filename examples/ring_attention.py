"""Ring (context-parallel) attention over the packed token axis, built on varlen_attention + the LSE merge.

Why it works: attention over a set of keys is the LSE-merge of attention over any partition of that set
(jax_fa4.merge_attention_states). Each of n devices holds one contiguous chunk of T packed tokens of q, k and v.
In n steps every device attends its query chunk to one key/value chunk and passes that chunk to its neighbour
(jax.lax.ppermute), merging as it goes; no device ever holds more than two K/V chunks.

Sequences may cross chunk boundaries. For query chunk i and key chunk j, sequence b's rows inside each chunk are
cu_seqlens clipped to the chunk, so one varlen call attends every sequence's local queries to its local keys.
Causal (self-attention, global cu_seqlens shared by q and k): step 0 is the diagonal chunk, causal with equal
local lengths (so the bottom-right mask is the global one); at later steps a key chunk before the query chunk is
seen in full and a later one is given empty key sequences (nothing visible). Run `python examples/ring_attention.py` for a check against single-device attention
(on a CPU it asks XLA for 4 host devices).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec as P

import jax_fa4


def ring_attention(q, k, v, cu_seqlens, *, mesh, axis, causal=False, softmax_scale=None, implementation=None):
    """Self-attention over a packed batch whose token axis is sharded in n equal chunks over mesh axis `axis`.

    q [total, H, D], k [total, Hk, D], v [total, Hk, Dv] with total = n * T, sharded P(axis); cu_seqlens int32
    [B+1] (replicated) describes the global packing, shared by queries and keys. Returns (out [total, H, Dv]
    sharded P(axis), lse [H, total] sharded P(None, axis)), equal to jax_fa4.varlen_attention on one device.
    """
    n = mesh.shape[axis]
    if q.shape[0] % n or k.shape[0] != q.shape[0]:
        raise ValueError(f"q and k must hold the same n * T tokens (n = {n}); got {q.shape[0]} and {k.shape[0]}")
    chunk = q.shape[0] // n
    shift = [(d, (d + 1) % n) for d in range(n)]

    def local(q_, k_, v_, cu):
        i = lax.axis_index(axis)
        cu_q = jnp.clip(cu - i * chunk, 0, chunk).astype(jnp.int32)
        out = lse = None
        for step in range(n):
            j = (i - step) % n                      # the device whose K/V chunk we hold at this step
            cu_k = jnp.clip(cu - j * chunk, 0, chunk).astype(jnp.int32)
            if causal and step > 0:
                cu_k = jnp.where(j < i, cu_k, 0)    # a later chunk: no visible key (empty key sequences)
            o, l = jax_fa4.varlen_attention(
                q_, k_, v_, cu_q, cu_k, max_seqlen_q=chunk, max_seqlen_k=chunk, softmax_scale=softmax_scale,
                causal=causal and step == 0, return_lse=True, implementation=implementation)
            if out is None:
                out, lse = o, l
            else:
                out, lse = jax_fa4.merge_attention_states(jnp.stack([out, o]), jnp.stack([lse, l]),
                                                          implementation=implementation)
            if step + 1 < n:
                k_, v_ = lax.ppermute((k_, v_), axis, shift)
        return out, lse

    tok = P(axis, None, None)
    fn = jax.shard_map(local, mesh=mesh, in_specs=(tok, tok, tok, P()), out_specs=(tok, P(None, axis)))
    return fn(q, k, v, cu_seqlens)


def _demo(n_devices=4, seed=0):
    import numpy as np
    from jax.sharding import Mesh, NamedSharding

    rng = np.random.default_rng(seed)
    chunk, heads, kv_heads, dim = 16, 4, 2, 32
    total = n_devices * chunk
    lengths = []
    while sum(lengths) < total - 3:
        lengths.append(int(rng.integers(1, min(40, total - sum(lengths)) + 1)))
    cu = jnp.asarray(np.concatenate([[0], np.cumsum(lengths)]), jnp.int32)   # the tail rows belong to no sequence
    q = jnp.asarray(rng.standard_normal((total, heads, dim)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((total, kv_heads, dim)), jnp.float32)
    v = jnp.asarray(rng.standard_normal((total, kv_heads, dim)), jnp.float32)
    mesh = Mesh(np.array(jax.devices()[:n_devices]), ("ctx",))
    sh = NamedSharding(mesh, P("ctx", None, None))
    for causal in (False, True):
        out, lse = jax.jit(lambda q, k, v, cu: ring_attention(q, k, v, cu, mesh=mesh, axis="ctx", causal=causal))(
            *(jax.device_put(x, sh) for x in (q, k, v)), cu)
        ref_out, ref_lse = jax_fa4.varlen_attention(q, k, v, cu, cu, max_seqlen_q=max(lengths),
                                                    max_seqlen_k=max(lengths), causal=causal, return_lse=True)
        lse, ref_lse = np.asarray(lse), np.asarray(ref_lse)
        finite = np.isfinite(ref_lse)
        same_empty = bool((np.isfinite(lse) == finite).all())
        print(f"causal={causal}: sequences {lengths}, max |out - ref| = {float(jnp.abs(out - ref_out).max()):.2e}, "
              f"max |lse - ref| = {float(np.abs(lse[finite] - ref_lse[finite]).max()):.2e}, "
              f"empty rows match: {same_empty}")


if __name__ == "__main__":
    import os

    # Read when the backend starts (first jax.devices()), not at import, so setting it here is still in time.
    os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    _demo()
