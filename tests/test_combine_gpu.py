"""The combine kernel against a float64 NumPy merge, on the GPU (skips elsewhere)."""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from jax_fa4 import kernel_backend
from jax_fa4.merge import merge_attention_states, merge_reference


def merge_oracle(o_parts, lse_parts):
    """float64 merge of [n, total, H, D] partials with [n, H, total] LSEs."""
    lse_parts = lse_parts.astype(np.float64)
    m = lse_parts.max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.exp(lse_parts - np.where(np.isfinite(m), m, 0.0))
        s = w.sum(axis=0)
        lse = np.where(s > 0, np.where(np.isfinite(m), m, 0.0) + np.log(np.where(s > 0, s, 1.0)), -np.inf)
        wn = np.where(np.isfinite(lse), np.exp(lse_parts - np.where(np.isfinite(lse), lse, 0.0)), 0.0)
    out = np.einsum("nht,nthd->thd", wn, o_parts.astype(np.float64))
    return out, lse


def _partials(rng, n, total, heads, dv, dead_fraction=0.2):
    o = rng.standard_normal((n, total, heads, dv)).astype(np.float32)
    lse = rng.normal(2.0, 3.0, (n, heads, total)).astype(np.float32)
    lse[rng.random(lse.shape) < dead_fraction] = -np.inf  # splits that saw no key
    lse[:, 0, 0] = -np.inf                                 # a row that saw no key at all
    return o, lse


DTYPE_TOL = {jnp.bfloat16: 1e-2, jnp.float16: 2e-3, jnp.float32: 1e-5}


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
@pytest.mark.parametrize("seed", range(4))
def test_combine_ragged_per_sequence_splits(dtype, seed):
    rng = np.random.default_rng(1000 + seed)
    batch = int(rng.integers(1, 40))
    lengths = rng.integers(0, 70, batch)
    lengths[rng.random(batch) < 0.2] = 0
    lengths[0] = 1
    cu = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    total = int(cu[-1]) + 3                                 # trailing rows outside every sequence
    seqlen = lengths.copy()
    seqlen[1::3] = np.maximum(seqlen[1::3] - 2, 0)          # seqused shorter than the slot
    splits = rng.integers(1, 9, batch).astype(np.int32)
    heads, dv = int(rng.choice([1, 4, 8])), int(rng.choice([64, 128, 256]))
    s_max = int(splits.max())
    o_parts, lse_parts = _partials(rng, s_max, total, heads, dv)

    sentinel_out = rng.standard_normal((total, heads, dv)).astype(np.float32)
    sentinel_lse = rng.standard_normal((heads, total)).astype(np.float32)
    must_write = np.zeros(total, bool)
    for b in range(batch):
        if splits[b] > 1:
            must_write[cu[b]:cu[b] + seqlen[b]] = True
    out0 = np.where(must_write[:, None, None], np.nan, sentinel_out)
    lse0 = np.where(must_write[None, :], np.nan, sentinel_lse)

    fn = jax.jit(kernel_backend.combine)
    out, lse = fn(jnp.asarray(o_parts), jnp.asarray(lse_parts), jnp.asarray(cu), jnp.asarray(seqlen),
                  jnp.asarray(splits), jnp.asarray(out0, dtype), jnp.asarray(lse0))
    out = np.asarray(out.astype(jnp.float32))
    lse = np.asarray(lse)

    assert not np.isnan(out[must_write]).any() and not np.isnan(lse[:, must_write]).any()
    np.testing.assert_array_equal(out[~must_write], np.asarray(jnp.asarray(sentinel_out, dtype).astype(jnp.float32))
                                  [~must_write])
    np.testing.assert_array_equal(lse[:, ~must_write], sentinel_lse[:, ~must_write])
    for b in range(batch):
        if splits[b] <= 1 or seqlen[b] == 0:
            continue
        rows = slice(cu[b], cu[b] + seqlen[b])
        ref_out, ref_lse = merge_oracle(o_parts[:splits[b], rows], lse_parts[:splits[b], :, rows])
        err = np.linalg.norm(out[rows] - ref_out) / max(np.linalg.norm(ref_out), 1e-30)
        assert err < DTYPE_TOL[dtype], (b, err)
        np.testing.assert_allclose(lse[:, rows], ref_lse, rtol=1e-5, atol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("n", [2, 3, 17, 64])
def test_merge_attention_states_kernel_matches_reference(n):
    rng = np.random.default_rng(n)
    o_parts, lse_parts = _partials(rng, n, 300, 4, 128)
    outs, lses = jnp.asarray(o_parts, jnp.bfloat16), jnp.asarray(lse_parts)
    out_k, lse_k = jax.jit(lambda a, b: merge_attention_states(a, b, implementation="kernel"))(outs, lses)
    ref_out, ref_lse = merge_oracle(np.asarray(outs.astype(jnp.float32)), lse_parts)
    out_k = np.asarray(out_k.astype(jnp.float32))
    assert np.linalg.norm(out_k - ref_out) / np.linalg.norm(ref_out) < 1e-2
    np.testing.assert_allclose(np.asarray(lse_k), ref_lse, rtol=1e-5, atol=1e-5)
    assert (out_k[0, 0] == 0).all() and np.isneginf(np.asarray(lse_k)[0, 0])
