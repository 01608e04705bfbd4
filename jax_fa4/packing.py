"""From JAX-style `segment_ids` [batch, seq] to the packed varlen layout and back, inside jit.

Convention: segment id `pad_id` (default 0) marks padding; any other value is a segment label. A segment is a
maximal run of equal non-padding ids inside one row (runs never continue across rows; the same label appearing
twice in a row, separated by another label or padding, makes two segments). Segments are numbered in row-major
order of their first token.

Packed layout: `pack` moves every non-padding token, in row-major order, to the front of a [batch * seq, ...] array
and the padding tokens after them (as zeros), so segment s occupies rows cu_seqlens[s] .. cu_seqlens[s+1]-1 and
cu_seqlens[0] = 0. `unpack` inverts it, writing 0 at padding positions. The packed array keeps the static size
batch * seq, so shapes never depend on the data.

If the data hold more than `max_segments` segments, the extra segments fall after cu_seqlens[-1]: attention treats
their rows as outside every sequence (output 0). Unused entries of cu_seqlens repeat the token count (empty
sequences).
"""

from __future__ import annotations

import jax.numpy as jnp

from jax_fa4 import validation


def _flat_ids(segment_ids):
    validation._array("segment_ids", segment_ids, 2, "[batch, seq]")
    if not jnp.issubdtype(segment_ids.dtype, jnp.integer):
        raise TypeError(f"segment_ids must have an integer dtype, got {jnp.dtype(segment_ids.dtype).name}")
    return segment_ids.reshape(-1)


def _order(segment_ids, pad_id):
    """Packed row p holds token order[p] (flat index): tokens first, padding after, both in row-major order."""
    is_pad = (_flat_ids(segment_ids) == pad_id).astype(jnp.int32)
    return jnp.argsort(is_pad, stable=True).astype(jnp.int32)


def segment_ids_to_cu_seqlens(segment_ids, max_segments, *, pad_id=0):
    """cu_seqlens int32 [max_segments + 1] for `pack(x, segment_ids)`; `max_segments` must be a static int.

    Also usable as max_seqlen: sequence lengths are bounded by segment_ids.shape[1].
    """
    max_segments = validation.static_int("max_segments", max_segments, minimum=1)
    ids = _flat_ids(segment_ids)
    seq = segment_ids.shape[1]
    is_tok = ids != pad_id
    col = jnp.arange(ids.shape[0], dtype=jnp.int32) % max(seq, 1)
    prev = jnp.concatenate([jnp.full((1,), pad_id, ids.dtype), ids[:-1]])
    prev_tok = jnp.concatenate([jnp.zeros((1,), bool), is_tok[:-1]])
    start = is_tok & ((col == 0) | ~prev_tok | (ids != prev))
    segment = jnp.cumsum(start.astype(jnp.int32)) - 1                  # segment number of each token
    packed_pos = jnp.cumsum(is_tok.astype(jnp.int32)) - 1               # row of each token in the packed array
    n_tokens = jnp.sum(is_tok.astype(jnp.int32))
    target = jnp.where(start, segment, max_segments + 1)                # non-starts: out of bounds -> dropped
    cu = jnp.full((max_segments + 1,), n_tokens, jnp.int32)
    cu = cu.at[target].set(packed_pos, mode="drop")
    return cu.at[0].set(0)


def pack(x, segment_ids, *, pad_id=0):
    """x [batch, seq, ...] -> [batch * seq, ...] in the packed order (tokens first, padding rows zeroed)."""
    validation._array("segment_ids", segment_ids, 2, "[batch, seq]")
    if x.shape[:2] != segment_ids.shape:
        raise ValueError(f"x.shape[:2]={tuple(x.shape[:2])} must equal segment_ids.shape={tuple(segment_ids.shape)}")
    order = _order(segment_ids, pad_id)
    flat = x.reshape((-1,) + x.shape[2:])
    rows = jnp.take(flat, order, axis=0)
    is_tok = (_flat_ids(segment_ids) != pad_id)[order]
    return jnp.where(is_tok.reshape((-1,) + (1,) * (x.ndim - 2)), rows, jnp.zeros((), x.dtype))


def unpack(y, segment_ids, *, pad_id=0):
    """Inverse of pack: y [batch * seq, ...] -> [batch, seq, ...], 0 at padding positions."""
    validation._array("segment_ids", segment_ids, 2, "[batch, seq]")
    batch, seq = segment_ids.shape
    if y.shape[0] != batch * seq:
        raise ValueError(f"y.shape[0]={y.shape[0]} must equal batch * seq = {batch * seq}")
    order = _order(segment_ids, pad_id)
    inverse = jnp.zeros_like(order).at[order].set(jnp.arange(order.shape[0], dtype=jnp.int32))
    rows = jnp.take(y, inverse, axis=0)
    is_tok = _flat_ids(segment_ids) != pad_id
    rows = jnp.where(is_tok.reshape((-1,) + (1,) * (y.ndim - 1)), rows, jnp.zeros((), y.dtype))
    return rows.reshape((batch, seq) + y.shape[1:])
