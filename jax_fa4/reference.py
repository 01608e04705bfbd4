"""Pure-JAX varlen attention: the semantics every kernel must match, and the path used without a GPU kernel.

Why this shape: a dense [total_q, total_k] score matrix would make memory grow with the square of the packed batch.
Instead each sequence is gathered into a padded [B, max_seqlen, ...] view through cu_seqlens, attention runs per
sequence (sequences in groups, queries in chunks, under `lax.map` with `jax.checkpoint` so the backward pass
recomputes scores chunk by chunk), and the result is gathered back into the packed layout. Peak memory is bounded by a
fixed score budget plus O(B * max_seqlen * heads * dim); total work scales with B * max_seqlen_q * max_seqlen_k.

Length rules (how out-of-contract data is read; no data-dependent error is raised here):
  * cu_seqlens is read as its running maximum clipped to [0, total], so a decrease makes that sequence empty and a
    final entry past the end is cut at the end of the array;
  * seqused, when given, is clipped to [0, slot length];
  * a length above max_seqlen is cut to max_seqlen: only the first max_seqlen tokens of that sequence take part (the
    mask is aligned to the cut lengths) and its remaining query rows are written as 0.
Rows covered by no sequence's used range are 0; their LSE is -inf.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax

# Score-tensor elements (float32) one lax.map step may hold; the softmax keeps a few tensors of this size alive.
SCORE_BUDGET = 1 << 23


def clipped_cu_seqlens(cu_seqlens, total):
    """cu_seqlens as the length rules read it: its running maximum clipped to [0, total] (int32 [B + 1])."""
    return jnp.clip(lax.cummax(cu_seqlens.astype(jnp.int32), axis=0), 0, total)


def effective_lengths(cu_seqlens, seqused, total, max_seqlen):
    """(starts [B], lengths [B]) after the length rules of the module doc; int32."""
    cu = clipped_cu_seqlens(cu_seqlens, total)
    starts = cu[:-1]
    lengths = cu[1:] - starts
    if seqused is not None:
        lengths = jnp.clip(seqused.astype(jnp.int32), 0, lengths)
    return starts, jnp.minimum(lengths, max_seqlen)


def _gather_padded(x, starts, lengths, width):
    """x [total, ...] -> [B, width, ...]; slot positions beyond each length hold 0."""
    pos = jnp.arange(width, dtype=jnp.int32)
    idx = starts[:, None] + pos[None, :]
    valid = pos[None, :] < lengths[:, None]
    rows = jnp.take(x, jnp.clip(idx, 0, max(x.shape[0] - 1, 0)), axis=0, mode="clip") if x.shape[0] else \
        jnp.zeros(idx.shape + x.shape[1:], x.dtype)
    return jnp.where(valid.reshape(valid.shape + (1,) * (x.ndim - 1)), rows, jnp.zeros((), x.dtype))


def token_slots(starts, lengths, total):
    """For each packed row t < total: (owner, pos, valid) [total] — the sequence whose range starts last at or
    before t (starts are non-decreasing), t's position in it, and whether that position is
    inside the sequence's used length (rows no sequence uses are not)."""
    t = jnp.arange(total, dtype=jnp.int32)
    # The number of starts <= t, as a prefix sum of start marks. (jnp.searchsorted's default lowers to a while loop,
    # and a GPU while loop makes the host wait for each step's predicate: the calls after it could not be queued.)
    marks = jnp.zeros((total + 1,), jnp.int32).at[jnp.clip(starts, 0, total)].add(1)
    owner = jnp.clip(jnp.cumsum(marks[:total], dtype=jnp.int32) - 1, 0, starts.shape[0] - 1)
    pos = t - starts[owner]
    return owner, pos, (pos >= 0) & (pos < lengths[owner])


def _scatter_packed(padded, starts, lengths, total, fill=0.0):
    """padded [B, W, ...] -> packed [total, ...]: row t takes the sequence whose used range covers it, else `fill`.

    Written as a gather (token_slots), so overlapping writes cannot happen.
    """
    batch, width = padded.shape[:2]
    owner, pos, valid = token_slots(starts, lengths, total)
    flat = padded.reshape((batch * width,) + padded.shape[2:])
    rows = jnp.take(flat, jnp.clip(owner * width + pos, 0, batch * width - 1), axis=0)
    return jnp.where(valid.reshape(valid.shape + (1,) * (padded.ndim - 2)), rows, jnp.asarray(fill, padded.dtype))


def _chunk_attention(q, k, v, q0, sq, sk, *, scale, softcap, left, right, causal):
    """One group of sequences, one chunk of queries, in float32.

    q [G, C, Hk, R, D] (query rows q0 .. q0+C-1 of each sequence), k [G, N, Hk, D], v [G, N, Hk, Dv], q0 scalar,
    sq/sk [G]. Returns (out [G, C, Hk, R, Dv] f32, lse [G, Hk, R, C] f32).
    """
    hi = lax.Precision.HIGHEST
    s = jnp.einsum("gchrd,gnhd->ghrcn", q, k, precision=hi)
    if softcap > 0:
        s = softcap * jnp.tanh(s * (scale / softcap))
    else:
        s = s * scale
    i = q0 + jnp.arange(q.shape[1], dtype=jnp.int32)[None, :, None]        # [1, C, 1]
    j = jnp.arange(k.shape[1], dtype=jnp.int32)[None, None, :]             # [1, 1, N]
    sq_ = sq[:, None, None]
    sk_ = sk[:, None, None]
    diag = i + sk_ - sq_                                                    # key aligned with query i (bottom-right)
    mask = (i < sq_) & (j < sk_)
    if causal or right >= 0:
        mask &= j <= diag + (0 if causal else right)
    if left >= 0:
        mask &= j >= diag - left
    mask = mask[:, None, None]                                              # [G, 1, 1, C, N]
    s = jnp.where(mask, s, -jnp.inf)
    m = jnp.max(s, axis=-1, keepdims=True)
    m = lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))               # shift only; no -inf - -inf
    p = jnp.where(mask, jnp.exp(s - m), 0.0)
    l = jnp.sum(p, axis=-1, keepdims=True)
    nonempty = l > 0
    l_safe = jnp.where(nonempty, l, 1.0)                                    # keeps log/1/l gradients finite
    out = jnp.einsum("ghrcn,gnhe->gchre", p / l_safe, v, precision=hi)
    lse = jnp.where(nonempty, m + jnp.log(l_safe), -jnp.inf)[..., 0]
    return out, lse


def _plan(batch, heads, max_seqlen_q, max_seqlen_k):
    """Static (sequences per step, query chunk) so one step's scores stay within SCORE_BUDGET."""
    per_row = max(1, heads * max_seqlen_k)
    chunk = max(1, min(max_seqlen_q, SCORE_BUDGET // per_row))
    if chunk < max_seqlen_q:
        return 1, chunk
    group = max(1, min(batch, SCORE_BUDGET // (per_row * max(1, max_seqlen_q))))
    return group, chunk


def varlen_attention_reference(q, k, v, cu_seqlens_q, cu_seqlens_k, *, max_seqlen_q, max_seqlen_k,
                               seqused_q=None, seqused_k=None, softmax_scale=None, causal=False,
                               window_size=(-1, -1), softcap=0.0):
    """Packed attention in pure JAX. Arguments are assumed validated (see jax_fa4.validation).

    q [total_q, H, D], k [total_k, Hk, D], v [total_k, Hk, Dv]; returns (out [total_q, H, Dv] in q's dtype,
    lse [H, total_q] float32, natural log, -inf where a row sees no key).
    """
    total_q, heads, dim = q.shape
    total_k, kv_heads, dim_v = k.shape[0], k.shape[1], v.shape[2]
    batch = cu_seqlens_q.shape[0] - 1
    rep = heads // kv_heads
    scale = 1.0 / math.sqrt(dim) if softmax_scale is None else float(softmax_scale)
    left, right = int(window_size[0]), int(window_size[1])
    if causal:
        right = 0
    max_seqlen_q, max_seqlen_k = int(max_seqlen_q), int(max_seqlen_k)

    if batch == 0 or max_seqlen_q == 0 or total_q == 0:
        return (jnp.zeros((total_q, heads, dim_v), q.dtype),
                jnp.full((heads, total_q), -jnp.inf, jnp.float32))

    q_start, sq = effective_lengths(cu_seqlens_q, seqused_q, total_q, max_seqlen_q)
    k_start, sk = effective_lengths(cu_seqlens_k, seqused_k, total_k, max_seqlen_k)
    width_k = max(max_seqlen_k, 1)

    group, chunk = _plan(batch, heads, max_seqlen_q, width_k)
    n_chunks = -(-max_seqlen_q // chunk)
    width_q = n_chunks * chunk

    f32 = jnp.float32
    qp = _gather_padded(q, q_start, sq, width_q).astype(f32).reshape(batch, width_q, kv_heads, rep, dim)
    kp = _gather_padded(k, k_start, sk, width_k).astype(f32)
    vp = _gather_padded(v, k_start, sk, width_k).astype(f32)

    body = functools.partial(_chunk_attention, scale=scale, softcap=float(softcap), left=left, right=right,
                             causal=bool(causal))

    @jax.checkpoint
    def one_chunk(qc, kg, vg, q0, sqg, skg):
        return body(qc, kg, vg, q0, sqg, skg)

    def one_group(args):
        qg, kg, vg, sqg, skg = args                                         # one sequence group, all chunks
        qg = qg.reshape(qg.shape[0], n_chunks, chunk, kv_heads, rep, dim).swapaxes(0, 1)
        starts = jnp.arange(n_chunks, dtype=jnp.int32) * chunk
        o, l = lax.map(lambda xs: one_chunk(xs[0], kg, vg, xs[1], sqg, skg), (qg, starts))
        # o [n_chunks, G, C, Hk, R, Dv], l [n_chunks, G, Hk, R, C]
        o = o.swapaxes(0, 1).reshape(o.shape[1], width_q, heads, dim_v)
        l = jnp.moveaxis(l, 0, 3).reshape(l.shape[1], heads, width_q)
        return o, l

    n_groups = -(-batch // group)
    pad_b = n_groups * group - batch

    def grouped(x):
        x = jnp.pad(x, [(0, pad_b)] + [(0, 0)] * (x.ndim - 1)) if pad_b else x
        return x.reshape((n_groups, group) + x.shape[1:])

    o, l = lax.map(one_group, tuple(grouped(x) for x in (qp, kp, vp, sq, sk)))
    o = o.reshape((n_groups * group,) + o.shape[2:])[:batch]                # [B, width_q, H, Dv]
    l = l.reshape((n_groups * group,) + l.shape[2:])[:batch]                # [B, H, width_q]

    out = _scatter_packed(o, q_start, sq, total_q).astype(q.dtype)
    lse = _scatter_packed(jnp.moveaxis(l, 1, 2), q_start, sq, total_q, fill=-jnp.inf).T  # [H, total_q]
    return out, lse
