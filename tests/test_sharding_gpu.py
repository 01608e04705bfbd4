"""Head-parallel sharded attention on the GPU kernels (one GPU: a one-device mesh; no 2-GPU machine is lent here).

The custom-partitioned backward of `sharded_varlen_attention` must run the same backward kernels as
`varlen_attention` (not the reference): with deterministic=True the gradients then agree bit for bit.
"""

import numpy as np
import pytest

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

import jax_fa4
from jax_fa4 import kernel_backend
from jax_fa4.sharding import sharded_varlen_attention

from ragged_cases import cu_seqlens


@pytest.mark.gpu
def test_head_parallel_gradient_runs_the_backward_kernels(monkeypatch):
    calls = []
    backward = kernel_backend.varlen_backward

    def spy(*args, **kwargs):
        calls.append(kwargs["config"])
        return backward(*args, **kwargs)

    monkeypatch.setattr(kernel_backend, "varlen_backward", spy)
    rng = np.random.default_rng(4)
    lengths = np.array([300, 0, 1, 129, 77], np.int32)
    cu = jnp.asarray(cu_seqlens(lengths))
    total = int(lengths.sum()) + 5
    q = jnp.asarray(rng.standard_normal((total, 8, 128)), jnp.bfloat16)
    k = jnp.asarray(rng.standard_normal((total, 2, 128)), jnp.bfloat16)
    v = jnp.asarray(rng.standard_normal((total, 2, 128)), jnp.bfloat16)
    weights = jnp.asarray(rng.standard_normal((total, 8, 128)), jnp.float32)
    kw = dict(max_seqlen_q=512, max_seqlen_k=512, causal=True, deterministic=True)
    mesh = Mesh(np.array(jax.devices()[:1]), ("model",))
    heads = NamedSharding(mesh, P(None, "model", None))

    def loss(attn):
        return lambda q, k, v: jnp.sum(attn(q, k, v, cu, cu, **kw).astype(jnp.float32) * weights)

    sharded = jax.jit(jax.grad(loss(sharded_varlen_attention), argnums=(0, 1, 2)))(
        *(jax.device_put(x, heads) for x in (q, k, v)))
    assert calls, "the sharded backward did not run the backward kernels"
    plain = jax.jit(jax.grad(loss(jax_fa4.varlen_attention), argnums=(0, 1, 2)))(q, k, v)
    for a, b in zip(sharded, plain):
        np.testing.assert_array_equal(np.asarray(a.astype(jnp.float32)), np.asarray(b.astype(jnp.float32)))
