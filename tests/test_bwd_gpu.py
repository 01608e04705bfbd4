"""The SM90 backward kernels (dQ; dK, dV) against the float64 oracle's gradients on fresh random ragged batches
(needs an SM90 GPU + library).

Each case draws a new batch from the forward tests' distribution (tests/ragged_cases.py) and random cotangents on
both outputs (out and lse), so the LSE's gradient path is exercised too. Outputs are poisoned (0xFF = NaN before
every launch), so a gradient element the kernels do not write fails the test.

Error bound: within MAX_REL of the float64 oracle and within 2x the reference path (which differentiates in float32)
+ 1e-3. FlashAttention's algorithm rounds P and dS to the input dtype and takes D = rowsum(dO * O) from the
rounded output; where dP - D cancels (rows that see one or two keys) that alone can exceed 2x the reference path.
Such a case must then match the float64 oracle run with exactly those roundings (oracle `rounding=`) to within 25 %,
which still fails on any kernel bug (a wrong element, mask, scale or sum moves the error far more) while allowing
the algorithm's own rounding.
"""

import os

os.environ["JAX_FA4_POISON_OUTPUTS"] = "1"  # read by the handlers on every call

import itertools

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import jax_fa4
from jax_fa4 import kernel_backend, validation

from oracle import attention as oracle_attention, rel_err
from ragged_cases import cu_seqlens, draw_case

DTYPES = {"bf16": jnp.bfloat16, "fp16": jnp.float16}
HEAD_DIMS = (64, 96, 128, 192, 256)
MASKS = ("none", "causal", "local")
CASES_PER_VARIANT = 7  # 48 variant runs x 7 = 336 batches
MAX_REL = {"bf16": 1e-2, "fp16": 2e-3}  # as the forward tests

_FNS = {}


def _grad_fn(static):
    """jit(q, k, v, ..., dout, dlse) -> (dq, dk, dv) through varlen_attention's VJP on the chosen path."""
    if static not in _FNS:
        max_q, max_k, causal, window, softcap, seqused, deterministic, impl = static

        def grads(q, k, v, cu_q, cu_k, used_q, used_k, dout, dlse):
            def f(q, k, v):
                return jax_fa4.varlen_attention(
                    q, k, v, cu_q, cu_k, max_seqlen_q=max_q, max_seqlen_k=max_k, causal=causal,
                    window_size=window, softcap=softcap, seqused_q=used_q if seqused else None,
                    seqused_k=used_k if seqused else None, return_lse=True, implementation=impl,
                    deterministic=deterministic)

            _, vjp = jax.vjp(f, q, k, v)
            return vjp((dout, dlse))

        _FNS[static] = jax.jit(grads)
    return _FNS[static]


def _case(rng, dtype_name, d, mask, deterministic=False):
    dtype = DTYPES[dtype_name]
    c = draw_case(rng, mask)
    sq, sk, causal, window, softcap, seqused = c.seqlen_q, c.seqlen_k, c.causal, c.window, c.softcap, c.seqused
    cu_q, cu_k, total_q, total_k, h, hk = c.cu_q, c.cu_k, c.total_q, c.total_k, c.num_heads, c.num_kv_heads
    q, k, v = (jnp.asarray(rng.standard_normal(shape).astype(np.float32), dtype)
               for shape in ((total_q, h, d), (total_k, hk, d), (total_k, hk, d)))
    dout = jnp.asarray(rng.standard_normal((total_q, h, d)).astype(np.float32), dtype)
    dlse = jnp.asarray(rng.standard_normal((h, total_q)).astype(np.float32))
    args = (q, k, v, jnp.asarray(cu_q), jnp.asarray(cu_k), jnp.asarray(sq), jnp.asarray(sk), dout, dlse)
    static = (1024, 1024, causal, window, softcap, seqused, deterministic)
    got = _grad_fn(static + ("kernel",))(*args)
    ref = _grad_fn(static + ("xla",))(*args)
    f32 = lambda x: np.asarray(jnp.asarray(x, jnp.float32))  # noqa: E731
    oracle_args = (f32(q), f32(k), f32(v), cu_q, cu_k)
    oracle_kw = dict(seqused_q=sq if seqused else None, seqused_k=sk if seqused else None, causal=causal,
                     window=window, softcap=softcap, dout=f32(dout), dlse=f32(dlse))
    want = oracle_attention(*oracle_args, **oracle_kw)

    def emulated():  # the oracle with FlashAttention's roundings (see the module docstring)
        rounded = oracle_attention(*oracle_args, **oracle_kw, rounding=lambda x: f32(jnp.asarray(x, dtype)))
        return [rounded["dq"], rounded["dk"], rounded["dv"]]

    return dict(got=[f32(g) for g in got], ref=[f32(g) for g in ref], want=[want["dq"], want["dk"], want["dv"]],
                emulated=emulated,
                desc=f"{dtype_name} d={d} {mask} deterministic={deterministic} {c.describe()}")


def _check(res, dtype_name):
    problems = []
    emulated = None
    for index, (name, got, ref, want) in enumerate(zip(("dq", "dk", "dv"), res["got"], res["ref"], res["want"])):
        if not np.all(np.isfinite(got)):
            problems.append(f"{name}: {np.sum(~np.isfinite(got))} non-finite elements (unwritten or NaN)")
            continue
        err, ref_err = rel_err(got, want), rel_err(ref, want)
        ok = err <= MAX_REL[dtype_name] and err <= 2 * ref_err + 1e-3
        if not ok and err <= MAX_REL[dtype_name]:
            emulated = emulated or res["emulated"]()
            flash_err = rel_err(emulated[index], want)
            ok = err <= 1.25 * flash_err + 1e-4
            if ok:
                print(f"{res['desc']}: {name} rel err {err:.2e} > 2x reference path ({ref_err:.2e}); "
                      f"FlashAttention's roundings in float64 give {flash_err:.2e}")
        if not ok:
            problems.append(f"{name} rel err {err:.2e} (reference path in the same dtype: {ref_err:.2e})")
        if np.any(got[np.all(want == 0, axis=(1, 2))] != 0):
            problems.append(f"{name}: rows with no gradient are not 0")
    return problems


# Every variant on the default path (deterministic=False: dQ added atomically, at D = 64 / 96 / 128 by the one-kernel
# backward, at D = 192 / 256 by the dK pass beside a dV pass), and once more with deterministic=True (the fixed-order
# kernels: dQ, then dK and dV in one launch up to D = 128 and in two beyond).
ONE_KERNEL_HEAD_DIMS = (64, 96, 128)
BACKWARD_CASES = ([(dt, d, mk, False) for dt, d, mk in itertools.product(DTYPES, HEAD_DIMS, MASKS)]
                  + [(dt, d, mk, True) for dt, d, mk in itertools.product(DTYPES, HEAD_DIMS, MASKS)])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype_name,d,mask,deterministic", BACKWARD_CASES)
def test_backward_matches_oracle(dtype_name, d, mask, deterministic):
    rng = np.random.default_rng([7, len(dtype_name), d, MASKS.index(mask), deterministic])
    failures = []
    for _ in range(CASES_PER_VARIANT):
        res = _case(rng, dtype_name, d, mask, deterministic)
        problems = _check(res, dtype_name)
        if problems:
            failures.append(res["desc"] + ": " + "; ".join(problems))
    assert not failures, f"{len(failures)}/{CASES_PER_VARIANT} cases failed:\n" + "\n".join(failures)


@pytest.mark.gpu
@pytest.mark.parametrize("d", HEAD_DIMS)
def test_default_backward_adds_dq_atomically(d):
    """deterministic=False (the default) runs the dkdvdq pass alone at D = 64 / 96 / 128 and the dkdq and dv passes
    at D = 192 / 256, masked or not, grouped KV heads or not; True runs the fixed-order kernels (two, or three at
    D = 192 / 256)."""
    def launches(num_kv_heads, causal, deterministic=False):
        q = jnp.zeros((300, 8, d), jnp.bfloat16)
        k = jnp.zeros((300, num_kv_heads, d), jnp.bfloat16)
        cu = jnp.asarray([0, 300], jnp.int32)
        config = validation.check_varlen(q, k, k, cu, cu, max_seqlen_q=300, max_seqlen_k=300, causal=causal)
        return [launch[2] for launch in kernel_backend._backward_launches(config, deterministic=deterministic)]

    fixed_order = ["dq", "dkdv"] if d in ONE_KERNEL_HEAD_DIMS else ["dq", "dk", "dv"]
    default = ["dkdvdq"] if d in ONE_KERNEL_HEAD_DIMS else ["dkdq", "dv"]
    assert launches(8, True) == default
    assert launches(2, False) == default
    assert launches(2, True) == default
    assert launches(8, True, deterministic=True) == fixed_order


@pytest.mark.gpu
@pytest.mark.parametrize("dtype_name,d", list(itertools.product(DTYPES, HEAD_DIMS)))
def test_dq_convert_kernel_equals_its_xla_twin(dtype_name, d):
    """bwd_dq_convert_sm90 (unpermute, scale, cast the float32 dQ buffer of the dkdvdq / dkdq pass) against
    kernel_backend.dq_from_accum on a random buffer: bit for bit, on a ragged batch with an empty sequence, a
    one-row one, seqused below the length and rows past cu_seqlens[-1] (those rows must come out 0, not poison)."""
    dtype = DTYPES[dtype_name]
    lens = np.array([70, 0, 1, 64, 130, 200], np.int32)
    used = np.array([70, 0, 1, 50, 129, 200], np.int32)
    cu = jnp.asarray(np.concatenate([[0], np.cumsum(lens)]), jnp.int32)
    total_q = int(lens.sum()) + 9
    tile_q = 64 if d in ONE_KERNEL_HEAD_DIMS else 32  # the query block of the pass that adds dQ
    rows = (total_q // tile_q + len(lens) + 1) * tile_q
    acc = jax.random.normal(jax.random.PRNGKey(4), (3, rows, d), jnp.float32)
    config = validation.check_varlen(jnp.zeros((total_q, 3, d), dtype), jnp.zeros((total_q, 1, d), dtype),
                                     jnp.zeros((total_q, 1, d), dtype), cu, cu, max_seqlen_q=256,
                                     max_seqlen_k=256)
    assert kernel_backend.ffi.target("bwd_dq_convert_sm90", f"{dtype_name}_d{d}", "sm_90a") is not None
    got = jax.jit(lambda a: kernel_backend._dq_from_accum_kernel(a, cu, jnp.asarray(used), tile_q, config,
                                                                  dtype))(acc)
    want = (kernel_backend.dq_from_accum(acc, cu, jnp.asarray(used), tile_q, total_q)
            * np.float32(config.softmax_scale)).astype(dtype)
    np.testing.assert_array_equal(np.asarray(got.astype(jnp.float32)), np.asarray(want.astype(jnp.float32)))


@pytest.mark.gpu
def test_backward_is_deterministic():
    """deterministic=True: every gradient is summed inside one CTA in a fixed order: 10 runs give the same bits."""
    rng = np.random.default_rng(5)
    sq = np.array([700, 1, 0, 333, 1024, 64], np.int32)
    cu = jnp.asarray(cu_seqlens(sq))
    total = int(sq.sum())
    q = jnp.asarray(rng.standard_normal((total, 8, 128)), jnp.bfloat16)
    k = jnp.asarray(rng.standard_normal((total, 2, 128)), jnp.bfloat16)
    v = jnp.asarray(rng.standard_normal((total, 2, 128)), jnp.bfloat16)
    config = validation.check_varlen(q, k, v, cu, cu, max_seqlen_q=1024, max_seqlen_k=1024, causal=True)
    assert kernel_backend.supports_backward(config) is None

    @jax.jit
    def grads(q, k, v):
        def loss(q, k, v):
            o = jax_fa4.varlen_attention(q, k, v, cu, cu, max_seqlen_q=1024, max_seqlen_k=1024, causal=True,
                                         implementation="kernel", deterministic=True)
            return jnp.sum(o.astype(jnp.float32) * jnp.cos(jnp.arange(o.size).reshape(o.shape)))
        return jax.grad(loss, argnums=(0, 1, 2))(q, k, v)

    first = [np.asarray(g.astype(jnp.float32)) for g in grads(q, k, v)]
    for _ in range(9):
        for a, b in zip(first, grads(q, k, v)):
            np.testing.assert_array_equal(a, np.asarray(b.astype(jnp.float32)))


@pytest.mark.gpu
def test_calls_without_backward_kernel_get_the_reference_gradient(monkeypatch):
    """A library without the backward variant (e.g. a reduced build) still differentiates: the kernel forward
    with the reference's gradient."""
    rng = np.random.default_rng(3)
    sq = np.array([200, 5], np.int32)
    cu = jnp.asarray(cu_seqlens(sq))
    q, k, v = (jnp.asarray(rng.standard_normal((205, 2, 256)), jnp.bfloat16) for _ in range(3))
    config = validation.check_varlen(q, k, v, cu, cu, max_seqlen_q=256, max_seqlen_k=256)
    assert kernel_backend.supports(config) is None
    monkeypatch.setattr(kernel_backend, "supports_backward", lambda config: "no backward variant (test)")
    monkeypatch.setattr(kernel_backend, "varlen_backward", None)  # would raise if called

    def loss(q, impl):
        o = jax_fa4.varlen_attention(q, k, v, cu, cu, max_seqlen_q=256, max_seqlen_k=256, implementation=impl)
        return jnp.sum(o.astype(jnp.float32) ** 2)

    g_kernel = jax.jit(jax.grad(loss), static_argnums=1)(q, "kernel")
    g_ref = jax.jit(jax.grad(loss), static_argnums=1)(q, "xla")
    assert rel_err(np.asarray(g_kernel.astype(jnp.float32)), np.asarray(g_ref.astype(jnp.float32))) < 2e-2
