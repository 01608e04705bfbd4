"""The pure-JAX LSE merge on the CPU: it must equal attention over the union of the key sets."""

import numpy as np
import pytest

import jax.numpy as jnp

from jax_fa4.merge import merge_attention_states


def _attend(q, k, v):
    s = q @ k.T
    m = s.max(axis=1, keepdims=True)
    p = np.exp(s - m)
    lse = (m + np.log(p.sum(axis=1, keepdims=True)))[:, 0]
    return (p / p.sum(axis=1, keepdims=True)) @ v, lse


@pytest.mark.parametrize("parts", [1, 2, 5])
def test_merge_of_key_shards_equals_full_attention(parts):
    rng = np.random.default_rng(parts)
    q, k, v = rng.standard_normal((7, 16)), rng.standard_normal((40, 16)), rng.standard_normal((40, 8))
    full_out, full_lse = _attend(q, k, v)
    bounds = np.linspace(0, 40, parts + 1).astype(int)
    outs, lses = zip(*[_attend(q, k[a:b], v[a:b]) for a, b in zip(bounds[:-1], bounds[1:])])
    outs = jnp.asarray(np.stack(outs)[:, :, None, :], jnp.float32)   # [n, total, H=1, D]
    lses = jnp.asarray(np.stack(lses)[:, None, :], jnp.float32)       # [n, H=1, total]
    out, lse = merge_attention_states(outs, lses, implementation="xla")
    np.testing.assert_allclose(np.asarray(out)[:, 0], full_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(lse)[0], full_lse, rtol=1e-5, atol=1e-5)


def test_parts_without_keys_are_ignored_and_empty_rows_are_zero():
    outs = jnp.asarray(np.random.default_rng(0).standard_normal((3, 2, 1, 4)), jnp.float32)
    lses = jnp.asarray([[[0.5, -np.inf]], [[-np.inf, -np.inf]], [[1.5, -np.inf]]], jnp.float32)
    out, lse = merge_attention_states(outs, lses, implementation="xla")
    w = np.exp(np.array([0.5, 1.5]) - np.logaddexp(0.5, 1.5))
    np.testing.assert_allclose(np.asarray(out)[0, 0], w[0] * outs[0, 0, 0] + w[1] * outs[2, 0, 0], rtol=1e-6)
    assert np.isneginf(np.asarray(lse)[0, 1]) and (np.asarray(out)[1] == 0).all()
    assert np.isfinite(np.asarray(out)).all()


def test_merge_rejects_bad_shapes_and_implementation():
    outs, lses = jnp.zeros((2, 3, 4, 8)), jnp.zeros((2, 4, 3))
    with pytest.raises(ValueError, match="lses has shape"):
        merge_attention_states(outs, jnp.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"outs must be \[n, total, H, Dv\]"):
        merge_attention_states(outs[0], lses)
    with pytest.raises(ValueError, match="implementation"):
        merge_attention_states(outs, lses, implementation="cuda")
    from jax_fa4 import kernel_backend

    if kernel_backend.unavailable_reason() is not None:
        with pytest.raises(ValueError, match="kernel unavailable"):
            merge_attention_states(outs, lses, implementation="kernel")
