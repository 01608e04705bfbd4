"""Public API: varlen_attention dispatch and options, the padded `attention` entry, gradients under jit."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jax_fa4
import oracle
from jax_fa4 import api, kernel_backend, validation
from jax_fa4.api import attention, varlen_attention


def cu_of(lengths):
    return jnp.asarray(np.concatenate([[0], np.cumsum(lengths)]), jnp.int32)


def rand(rng, shape, dtype=jnp.float32):
    return jnp.asarray(rng.standard_normal(shape), dtype)


def f64(x):
    return np.asarray(jnp.asarray(x, jnp.float32), np.float64)


def test_varlen_matches_oracle_under_jit_with_lse():
    rng = np.random.default_rng(21)
    lq, lk = (9, 0, 33, 1), (12, 5, 33, 60)
    q, k, v = rand(rng, (sum(lq), 8, 32)), rand(rng, (sum(lk), 2, 32)), rand(rng, (sum(lk), 2, 24))
    fn = jax.jit(lambda *a: varlen_attention(*a, max_seqlen_q=33, max_seqlen_k=60, causal=True, softcap=3.0,
                                             window_size=(20, 0), return_lse=True))
    out, lse = fn(q, k, v, cu_of(lq), cu_of(lk))
    want = oracle.attention(f64(q), f64(k), f64(v), np.asarray(cu_of(lq)), np.asarray(cu_of(lk)), causal=True,
                            softcap=3.0, window=(20, 0))
    assert out.shape == (43, 8, 24) and out.dtype == jnp.float32
    assert oracle.rel_err(out, want["out"]) < 1e-5
    lse = np.asarray(lse)
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(want["lse"]))
    fin = np.isfinite(want["lse"])
    np.testing.assert_allclose(lse[fin], want["lse"][fin], rtol=1e-5)
    only_out = varlen_attention(q, k, v, cu_of(lq), cu_of(lk), max_seqlen_q=33, max_seqlen_k=60, causal=True,
                                softcap=3.0, window_size=(20, 0))
    np.testing.assert_array_equal(np.asarray(only_out), np.asarray(out))


def test_gradients_through_api_under_jit():
    rng = np.random.default_rng(22)
    lq = (7, 1, 20)
    q, k, v = rand(rng, (28, 4, 16)), rand(rng, (28, 1, 16)), rand(rng, (28, 1, 16))
    do = rng.standard_normal((28, 4, 16))

    def loss(q, k, v):
        return jnp.sum(varlen_attention(q, k, v, cu_of(lq), cu_of(lq), max_seqlen_q=20, max_seqlen_k=20,
                                        causal=True) * do)
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)
    want = oracle.attention(f64(q), f64(k), f64(v), np.asarray(cu_of(lq)), np.asarray(cu_of(lq)), causal=True,
                            dout=do)
    for g, n in zip(grads, ("dq", "dk", "dv")):
        assert oracle.rel_err(g, want[n]) < 1e-5, n


def test_cpu_dispatch():
    rng = np.random.default_rng(1)
    q = rand(rng, (6, 2, 8))
    args = (q, q, q, cu_of((6,)), cu_of((6,)))
    cfg = validation.check_varlen(*args, max_seqlen_q=6, max_seqlen_k=6)
    if kernel_backend.unavailable_reason() is None:
        pytest.skip("kernels are available here; CPU dispatch rules not applicable")
    assert api._select_backend(cfg, None) == ("xla", None)
    assert api._select_backend(cfg, "xla") == ("xla", None)
    with pytest.raises(ValueError, match=r"implementation='kernel' cannot run this call .*no CUDA GPU"):
        api._select_backend(cfg, "kernel")
    with pytest.raises(ValueError, match=r"implementation='kernel'"):
        varlen_attention(*args, max_seqlen_q=6, max_seqlen_k=6, implementation="kernel")
    a = varlen_attention(*args, max_seqlen_q=6, max_seqlen_k=6)
    b = varlen_attention(*args, max_seqlen_q=6, max_seqlen_k=6, implementation="xla")
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_dispatch_uses_kernel_backend_when_it_supports_the_call(monkeypatch):
    """With a (fake) kernel backend that supports the call, None and 'kernel' route to it; a refusal falls back."""
    rng = np.random.default_rng(2)
    q = rand(rng, (6, 2, 8))
    seen = {}

    def fake_forward(q, k, v, cu_q, cu_k, used_q, used_k, *, config, scheduler_metadata, scheduler_mode):
        seen["config"] = config
        seen["mode"] = scheduler_mode
        return jnp.full(q.shape, 7.0, q.dtype), jnp.zeros((q.shape[1], q.shape[0]), jnp.float32)

    monkeypatch.setattr(kernel_backend, "unavailable_reason", lambda: None)
    monkeypatch.setattr(kernel_backend, "supports", lambda cfg: None if cfg.head_dim == 8 else "head_dim",
                        raising=False)
    monkeypatch.setattr(kernel_backend, "varlen_forward", fake_forward, raising=False)
    out = varlen_attention(q, q, q, cu_of((6,)), cu_of((6,)), max_seqlen_q=6, max_seqlen_k=6, causal=True)
    assert np.all(np.asarray(out) == 7.0)
    assert seen["config"].causal and seen["config"].window_right == 0 and seen["config"].batch == 1
    assert seen["mode"] == "auto"
    out = varlen_attention(q, q, q, cu_of((6,)), cu_of((6,)), max_seqlen_q=6, max_seqlen_k=6, implementation="xla")
    assert not np.all(np.asarray(out) == 7.0)
    q16 = rand(rng, (6, 2, 16))
    out = varlen_attention(q16, q16, q16, cu_of((6,)), cu_of((6,)), max_seqlen_q=6, max_seqlen_k=6)
    assert not np.all(np.asarray(out) == 7.0)                # refused -> reference
    with pytest.raises(ValueError, match=r"cannot run this call.*: head_dim"):
        varlen_attention(q16, q16, q16, cu_of((6,)), cu_of((6,)), max_seqlen_q=6, max_seqlen_k=6,
                         implementation="kernel")


def reference_as_kernel_forward(q, k, v, cu_q, cu_k, used_q, used_k, *, config, scheduler_metadata,
                                scheduler_mode):
    """A stand-in for kernel_backend.varlen_forward that computes the reference's (out, lse), so the kernel path's
    dispatch and custom_vjp run on the CPU."""
    from jax_fa4.reference import varlen_attention_reference

    return varlen_attention_reference(q, k, v, cu_q, cu_k, max_seqlen_q=config.max_seqlen_q,
                                      max_seqlen_k=config.max_seqlen_k, causal=config.causal)


def fake_kernel_backend(monkeypatch):
    """kernel_backend made to accept every call and run it with reference_as_kernel_forward."""
    monkeypatch.setattr(kernel_backend, "unavailable_reason", lambda: None)
    monkeypatch.setattr(kernel_backend, "supports", lambda cfg: None, raising=False)
    monkeypatch.setattr(kernel_backend, "varlen_forward", reference_as_kernel_forward, raising=False)


def test_kernel_path_gradient_is_the_references(monkeypatch):
    """jax.grad through the kernel path (custom_vjp: kernel forward, reference backward) equals the reference's
    gradient; a fake forward stands in for the GPU kernel so this runs on the CPU."""
    rng = np.random.default_rng(5)
    q, k, v = rand(rng, (9, 4, 8)), rand(rng, (12, 2, 8)), rand(rng, (12, 2, 8))
    cu_q, cu_k = cu_of((4, 0, 5)), cu_of((7, 2, 3))
    fake_kernel_backend(monkeypatch)

    def loss(q, k, v, impl):
        o, lse = varlen_attention(q, k, v, cu_q, cu_k, max_seqlen_q=5, max_seqlen_k=7, causal=True,
                                  return_lse=True, implementation=impl)
        return jnp.sum(o * o) + jnp.sum(jnp.where(jnp.isfinite(lse), lse, 0.0))

    got = jax.jit(jax.grad(loss, argnums=(0, 1, 2)), static_argnums=3)(q, k, v, "kernel")
    want = jax.grad(loss, argnums=(0, 1, 2))(q, k, v, "xla")
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_reference_fallback_on_a_gpu_backend_warns(monkeypatch):
    """On a GPU backend, a call that falls back to the reference, or whose gradient does, warns
    ReferenceFallbackWarning with the reason; implementation='xla' and the CPU backend do not warn."""
    rng = np.random.default_rng(6)
    q = rand(rng, (6, 2, 8))
    cu = cu_of((6,))
    kw = dict(max_seqlen_q=6, max_seqlen_k=6)
    if jax.default_backend() == "cpu":
        with warnings.catch_warnings():
            warnings.simplefilter("error", jax_fa4.ReferenceFallbackWarning)
            varlen_attention(q, q, q, cu, cu, **kw)  # the expected path on a CPU
    monkeypatch.setattr(api, "_default_backend", lambda: "gpu")
    monkeypatch.setattr(kernel_backend, "unavailable_reason", lambda: "no prebuilt kernels for compute capability 8.0")
    with pytest.warns(jax_fa4.ReferenceFallbackWarning, match=r"this call runs on the pure-JAX reference .*8\.0") as w:
        out = jax.jit(lambda q: varlen_attention(q, q, q, cu, cu, **kw))(q)
    assert w[0].filename == __file__  # attributed to the caller, not to jax_fa4
    with pytest.warns(jax_fa4.ReferenceFallbackWarning) as w:
        attention(q[None], q[None], q[None])
    assert w[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", jax_fa4.ReferenceFallbackWarning)
        want = varlen_attention(q, q, q, cu, cu, **kw, implementation="xla")
    np.testing.assert_array_equal(np.asarray(out), np.asarray(want))
    # a kernel forward without a backward kernel for the call: the gradient is the reference's, with a warning
    fake_kernel_backend(monkeypatch)
    monkeypatch.setattr(kernel_backend, "supports_backward", lambda cfg: "no backward variant for D = 8",
                        raising=False)
    with pytest.warns(jax_fa4.ReferenceFallbackWarning, match=r"the gradient of this call .*no backward variant"):
        got = jax.grad(lambda q: jnp.sum(varlen_attention(q, q, q, cu, cu, **kw) ** 2))(q)
    want = jax.grad(lambda q: jnp.sum(varlen_attention(q, q, q, cu, cu, **kw, implementation="xla") ** 2))(q)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)


def test_scheduler_mode_is_validated():
    rng = np.random.default_rng(6)
    q = rand(rng, (6, 2, 8))
    with pytest.raises(ValueError, match="scheduler_mode"):
        varlen_attention(q, q, q, cu_of((6,)), cu_of((6,)), max_seqlen_q=6, max_seqlen_k=6, scheduler_mode="lpt")


# ------------------------------------------------------------------------------------------- padded entry
def test_padded_attention_matches_varlen_and_oracle():
    rng = np.random.default_rng(23)
    b, sq, sk, h, hk, d = 3, 11, 17, 4, 2, 16
    q, k, v = rand(rng, (b, sq, h, d)), rand(rng, (b, sk, hk, d)), rand(rng, (b, sk, hk, d))
    ql = jnp.asarray([11, 0, 4], jnp.int32)
    kl = jnp.asarray([17, 6, 2], jnp.int32)
    out, lse = jax.jit(lambda *a: attention(*a, q_lengths=ql, kv_lengths=kl, causal=True, return_lse=True))(q, k, v)
    assert out.shape == (b, sq, h, d) and lse.shape == (b, h, sq)
    want = oracle.attention(f64(q).reshape(b * sq, h, d), f64(k).reshape(b * sk, hk, d),
                            f64(v).reshape(b * sk, hk, d), np.arange(b + 1) * sq, np.arange(b + 1) * sk,
                            seqused_q=np.asarray(ql), seqused_k=np.asarray(kl), causal=True)
    assert oracle.rel_err(np.asarray(out).reshape(b * sq, h, d), want["out"]) < 1e-5
    wl = want["lse"].reshape(h, b, sq).transpose(1, 0, 2)
    np.testing.assert_array_equal(np.isneginf(np.asarray(lse)), np.isneginf(wl))
    assert np.all(np.asarray(out[2, 4:]) == 0) and np.all(np.asarray(out[1]) == 0)
    # no lengths: full rows, equal to varlen with uniform cu_seqlens
    full = attention(q, k, v, causal=True)
    ref = varlen_attention(q.reshape(b * sq, h, d), k.reshape(b * sk, hk, d), v.reshape(b * sk, hk, d),
                           cu_of((sq,) * b), cu_of((sk,) * b), max_seqlen_q=sq, max_seqlen_k=sk, causal=True)
    np.testing.assert_array_equal(np.asarray(full).reshape(b * sq, h, d), np.asarray(ref))


def test_padded_attention_gradients_and_errors():
    rng = np.random.default_rng(24)
    q = rand(rng, (2, 5, 2, 8))
    lens = jnp.asarray([5, 2], jnp.int32)
    g = jax.grad(lambda q: jnp.sum(attention(q, q, q, q_lengths=lens, kv_lengths=lens) ** 2))(q)
    assert np.all(np.isfinite(np.asarray(g))) and np.all(np.asarray(g[1, 2:]) == 0)
    with pytest.raises(ValueError, match=r"q must have rank 4"):
        attention(q[0], q, q)
    with pytest.raises(ValueError, match=r"k.shape\[0\]=1 must equal q.shape\[0\]=2 \(batch\)"):
        attention(q, q[:1], q)
    with pytest.raises(ValueError, match=r"v.shape\[1\]=4 must equal k.shape\[1\]=5"):
        attention(q, q, q[:, :4])
    with pytest.raises(ValueError, match=r"q_lengths must have shape \[batch\] = \(2,\)"):
        attention(q, q, q, q_lengths=jnp.asarray([1, 2, 3], jnp.int32))
    with pytest.raises(TypeError, match=r"kv_lengths must have dtype int32"):
        attention(q, q, q, kv_lengths=jnp.asarray([1.0, 2.0]))
