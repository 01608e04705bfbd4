"""segment_ids -> cu_seqlens, pack / unpack round trip, and attention over packed segments vs the oracle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import oracle
from jax_fa4 import packing
from jax_fa4.api import varlen_attention


def segments_loop(ids, pad_id=0):
    """Plain loop: list of (row, start, stop) for maximal runs of equal non-padding ids in each row."""
    out = []
    for r, row in enumerate(np.asarray(ids)):
        c = 0
        while c < len(row):
            if row[c] == pad_id:
                c += 1
                continue
            e = c
            while e < len(row) and row[e] == row[c]:
                e += 1
            out.append((r, c, e))
            c = e
    return out


def random_ids(rng, batch, seq, pad_prob=0.2):
    ids = np.zeros((batch, seq), np.int32)
    for r in range(batch):
        c = 0
        while c < seq:
            n = int(rng.integers(1, 9))
            ids[r, c:c + n] = 0 if rng.random() < pad_prob else int(rng.integers(1, 4))
            c += n
    return ids


@pytest.mark.parametrize("seed", range(4))
def test_cu_seqlens_and_round_trip(seed):
    rng = np.random.default_rng(seed)
    batch, seq = 3, 23
    ids = random_ids(rng, batch, seq)
    segs = segments_loop(ids)
    max_segments = len(segs) + 2
    cu = jax.jit(packing.segment_ids_to_cu_seqlens, static_argnums=1)(jnp.asarray(ids), max_segments)
    lens = [e - s for _, s, e in segs]
    want = np.concatenate([[0], np.cumsum(lens), [sum(lens)] * 2])
    np.testing.assert_array_equal(np.asarray(cu), want)
    x = rng.standard_normal((batch, seq, 2, 3)).astype(np.float32)
    packed = jax.jit(packing.pack)(jnp.asarray(x), jnp.asarray(ids))
    assert packed.shape == (batch * seq, 2, 3)
    for n, (r, s, e) in enumerate(segs):
        np.testing.assert_array_equal(np.asarray(packed[want[n]:want[n + 1]]), x[r, s:e])
    assert np.all(np.asarray(packed[sum(lens):]) == 0)
    back = jax.jit(packing.unpack)(packed, jnp.asarray(ids))
    np.testing.assert_array_equal(np.asarray(back), np.where((ids != 0)[..., None, None], x, 0))


def test_segments_split_at_row_edges_padding_and_label_changes():
    ids = jnp.asarray([[1, 1, 0, 1, 2, 2], [2, 2, 2, 2, 0, 0], [0, 0, 5, 5, 5, 5]], jnp.int32)
    cu = packing.segment_ids_to_cu_seqlens(ids, 6)
    np.testing.assert_array_equal(np.asarray(cu), [0, 2, 3, 5, 9, 13, 13])
    cu = packing.segment_ids_to_cu_seqlens(ids, 6, pad_id=-7)                 # no padding at all
    np.testing.assert_array_equal(np.asarray(cu), [0, 2, 3, 4, 6, 10, 12])


def test_too_many_segments_fall_outside():
    ids = jnp.asarray([[1, 2, 3, 4, 0, 0]], jnp.int32)
    cu = packing.segment_ids_to_cu_seqlens(ids, 2)
    np.testing.assert_array_equal(np.asarray(cu), [0, 1, 2])
    x = jnp.arange(6, dtype=jnp.float32).reshape(1, 6, 1, 1) + 1
    out = varlen_attention(packing.pack(x, ids), packing.pack(x, ids), packing.pack(x, ids), cu, cu,
                           max_seqlen_q=6, max_seqlen_k=6)
    assert np.all(np.asarray(out[2:]) == 0) and np.all(np.asarray(out[:2]) != 0)


def test_attention_over_segments_matches_oracle():
    """The usual JAX flow: segment ids -> pack -> varlen attention -> unpack; compare per segment in float64."""
    rng = np.random.default_rng(9)
    batch, seq, h, d = 2, 30, 4, 16
    ids = random_ids(rng, batch, seq)
    segs = segments_loop(ids)
    q = rng.standard_normal((batch, seq, h, d)).astype(np.float32)
    k = rng.standard_normal((batch, seq, 2, d)).astype(np.float32)
    v = rng.standard_normal((batch, seq, 2, d)).astype(np.float32)

    @jax.jit
    def f(q, k, v, ids):
        cu = packing.segment_ids_to_cu_seqlens(ids, 16)
        o = varlen_attention(packing.pack(q, ids), packing.pack(k, ids), packing.pack(v, ids), cu, cu,
                             max_seqlen_q=seq, max_seqlen_k=seq, causal=True)
        return packing.unpack(o, ids)
    out = np.asarray(f(q, k, v, jnp.asarray(ids)))
    for r, s, e in segs:
        cu = np.array([0, e - s])
        want = oracle.attention(q[r, s:e], k[r, s:e], v[r, s:e], cu, cu, causal=True)["out"]
        assert oracle.rel_err(out[r, s:e], want) < 1e-5
    assert np.all(out[ids == 0] == 0)


def test_packing_errors():
    with pytest.raises(ValueError, match=r"segment_ids must have rank 2 \[batch, seq\]"):
        packing.segment_ids_to_cu_seqlens(jnp.zeros((4,), jnp.int32), 2)
    with pytest.raises(TypeError, match=r"segment_ids must have an integer dtype"):
        packing.segment_ids_to_cu_seqlens(jnp.zeros((1, 4)), 2)
    with pytest.raises(TypeError, match=r"max_segments must be a static Python int"):
        jax.jit(packing.segment_ids_to_cu_seqlens)(jnp.zeros((1, 4), jnp.int32), 2)
    with pytest.raises(ValueError, match=r"max_segments must be >= 1"):
        packing.segment_ids_to_cu_seqlens(jnp.zeros((1, 4), jnp.int32), 0)
    with pytest.raises(ValueError, match=r"x.shape\[:2\]=\(1, 3\) must equal segment_ids.shape=\(1, 4\)"):
        packing.pack(jnp.zeros((1, 3, 2)), jnp.zeros((1, 4), jnp.int32))
    with pytest.raises(ValueError, match=r"y.shape\[0\]=3 must equal batch \* seq = 4"):
        packing.unpack(jnp.zeros((3, 2)), jnp.zeros((1, 4), jnp.int32))
