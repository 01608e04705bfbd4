"""The pure-JAX reference against the float64 oracle: values, LSE, gradients, chunking, length faults, memory."""

import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import oracle
from jax_fa4 import reference
from jax_fa4.reference import varlen_attention_reference

STATIC = ("max_seqlen_q", "max_seqlen_k", "softmax_scale", "causal", "window_size", "softcap")


def ref_attn(*args, **kw):
    """The reference under jit (tests run faster compiled than op by op)."""
    return jax.jit(varlen_attention_reference, static_argnames=STATIC)(*args, **kw)

TOL = {"float32": 1e-5, "bfloat16": 1e-2, "float16": 2e-3}
GRAD_TOL = {"float32": 1e-5}


def cu_of(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)


def make_inputs(seed, lq, lk, heads, kv_heads, dim, dim_v=None, dtype="float32", extra_q=0, extra_k=0):
    """Random q/k/v (standard normal, rounded to dtype) for packed lengths; extra rows after cu[-1]."""
    rng = np.random.default_rng(seed)
    dim_v = dim if dim_v is None else dim_v
    tq, tk = int(sum(lq)) + extra_q, int(sum(lk)) + extra_k
    q = jnp.asarray(rng.standard_normal((tq, heads, dim)), dtype)
    k = jnp.asarray(rng.standard_normal((tk, kv_heads, dim)), dtype)
    v = jnp.asarray(rng.standard_normal((tk, kv_heads, dim_v)), dtype)
    return q, k, v, jnp.asarray(cu_of(lq)), jnp.asarray(cu_of(lk))


def f64(x):
    return np.asarray(jnp.asarray(x, jnp.float32), np.float64)


def check_lse(lse, want, tol):
    lse, want = np.asarray(lse), np.asarray(want)
    assert lse.dtype == np.float32
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(want))
    fin = np.isfinite(want)
    assert np.all(np.isfinite(lse[fin]))
    np.testing.assert_allclose(lse[fin], want[fin], rtol=tol, atol=tol * 10)


# name: (lq, lk, heads, kv_heads, dim, dim_v, causal, window, softcap)
CASES = {
    "plain": ((5, 17, 33), None, 4, 4, 32, None, False, (-1, -1), 0.0),
    "empty_and_len1": ((0, 1, 9, 0, 1), (3, 1, 0, 4, 7), 4, 1, 16, None, False, (-1, -1), 0.0),
    "sq_ne_sk_causal": ((7, 30, 1, 12), (19, 30, 40, 3), 8, 2, 16, None, True, (-1, -1), 0.0),
    "gqa8_causal": ((129, 60), (129, 200), 8, 1, 32, None, True, (-1, -1), 0.0),
    "window_cut": ((50, 37), (70, 37), 4, 2, 16, None, False, (9, 4), 0.0),
    "window_causal_left": ((64, 31), (64, 45), 4, 4, 16, None, True, (7, -1), 0.0),
    "window_right_only": ((20, 13), (25, 13), 2, 1, 16, None, False, (-1, 3), 0.0),
    "softcap_causal": ((45, 3), (45, 20), 4, 1, 32, None, True, (-1, -1), 5.0),
    "dv_ne_d": ((11, 23), (16, 23), 4, 2, 32, 48, False, (-1, -1), 0.0),
}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_oracle(name, dtype):
    lq, lk, h, hk, d, dv, causal, window, softcap = CASES[name]
    lk = lq if lk is None else lk
    seed = zlib.crc32(f"{name}-{dtype}".encode())
    q, k, v, cu_q, cu_k = make_inputs(seed, lq, lk, h, hk, d, dv, dtype, extra_q=3)
    out, lse = ref_attn(q, k, v, cu_q, cu_k, max_seqlen_q=max(lq), max_seqlen_k=max(lk), causal=causal,
                        window_size=window, softcap=softcap)
    assert out.dtype == q.dtype and out.shape == (q.shape[0], h, v.shape[2]) and lse.shape == (h, q.shape[0])
    want = oracle.attention(f64(q), f64(k), f64(v), cu_q, cu_k, causal=causal, window=window, softcap=softcap)
    assert oracle.rel_err(f64(out), want["out"]) < TOL[dtype]
    check_lse(lse, want["lse"], 1e-5)   # LSE is computed in float32 from the dtype-rounded inputs
    tail = np.asarray(out[int(cu_q[-1]):], np.float32)
    assert np.all(tail == 0) and np.all(np.isneginf(np.asarray(lse[:, int(cu_q[-1]):])))


def test_gqa_ratios():
    for hk in (8, 2, 1):                                    # ratios 1, 4, 8
        q, k, v, cu_q, cu_k = make_inputs(hk, (13, 40), (20, 40), 8, hk, 16)
        out, lse = ref_attn(q, k, v, cu_q, cu_k, max_seqlen_q=40, max_seqlen_k=40, causal=True)
        want = oracle.attention(f64(q), f64(k), f64(v), cu_q, cu_k, causal=True)
        assert oracle.rel_err(f64(out), want["out"]) < 1e-5
        check_lse(lse, want["lse"], 1e-5)


def test_seqused_and_scale():
    lq, lk = (10, 20, 7), (12, 25, 9)
    used_q, used_k = np.array([4, 20, 0], np.int32), np.array([12, 3, 9], np.int32)
    q, k, v, cu_q, cu_k = make_inputs(7, lq, lk, 4, 2, 16)
    out, lse = ref_attn(q, k, v, cu_q, cu_k, max_seqlen_q=20, max_seqlen_k=25, seqused_q=jnp.asarray(used_q),
                        seqused_k=jnp.asarray(used_k), causal=True, softmax_scale=0.3)
    want = oracle.attention(f64(q), f64(k), f64(v), cu_q, cu_k, seqused_q=used_q, seqused_k=used_k, scale=0.3,
                            causal=True)
    assert oracle.rel_err(f64(out), want["out"]) < 1e-5
    check_lse(lse, want["lse"], 1e-5)
    # rows after seqused inside a slot are 0 / -inf
    assert np.all(np.asarray(out[4:10]) == 0) and np.all(np.isneginf(np.asarray(lse[:, 4:10])))
    assert np.all(np.asarray(out[30:37]) == 0)


def _loss_and_grads(q, k, v, cu_q, cu_k, do, dl, **kw):
    def loss(q, k, v):
        out, lse = ref_attn(q, k, v, cu_q, cu_k, **kw)
        return jnp.sum(out * do) + jnp.sum(jnp.where(jnp.isfinite(lse), lse, 0.0) * dl)
    return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(q, k, v)


@pytest.mark.parametrize("name", ["empty_and_len1", "sq_ne_sk_causal", "window_cut", "softcap_causal", "dv_ne_d",
                                  "gqa8_causal"])
def test_gradients_match_oracle(name):
    lq, lk, h, hk, d, dv, causal, window, softcap = CASES[name]
    lk = lq if lk is None else lk
    q, k, v, cu_q, cu_k = make_inputs(zlib.crc32(name.encode()), lq, lk, h, hk, d, dv, extra_q=2, extra_k=2)
    rng = np.random.default_rng(5)
    do = rng.standard_normal((q.shape[0], h, v.shape[2])).astype(np.float32)
    dl = rng.standard_normal((h, q.shape[0])).astype(np.float32)
    kw = dict(max_seqlen_q=max(lq), max_seqlen_k=max(lk), causal=causal, window_size=window, softcap=softcap)
    grads = _loss_and_grads(q, k, v, cu_q, cu_k, do, dl, **kw)
    want = oracle.attention(f64(q), f64(k), f64(v), cu_q, cu_k, causal=causal, window=window, softcap=softcap,
                            dout=do, dlse=dl)
    for g, n in zip(grads, ("dq", "dk", "dv")):
        assert np.all(np.isfinite(np.asarray(g))), n
        assert oracle.rel_err(g, want[n]) < GRAD_TOL["float32"], n
    # rows outside every sequence (the extra rows) get zero gradient
    assert np.all(np.asarray(grads[0][int(cu_q[-1]):]) == 0)
    assert np.all(np.asarray(grads[1][int(cu_k[-1]):]) == 0)


@pytest.mark.parametrize("budget", [40, 700, 9000])
def test_chunked_paths_agree(monkeypatch, budget):
    """Small score budgets force query chunks (and sequence groups with batch padding); results must not change."""
    lq, lk = (17, 0, 5, 12, 1), (30, 4, 0, 12, 8)
    q, k, v, cu_q, cu_k = make_inputs(budget, lq, lk, 4, 2, 16)
    kw = dict(max_seqlen_q=17, max_seqlen_k=30, causal=True, window_size=(6, -1))
    monkeypatch.setattr(reference, "SCORE_BUDGET", budget)
    group, chunk = reference._plan(len(lq), 4, 17, 30)
    assert (group, chunk) != (len(lq), 17)
    out, lse = ref_attn(q, k, v, cu_q, cu_k, **kw)
    rng = np.random.default_rng(0)
    do = rng.standard_normal(out.shape).astype(np.float32)
    dl = rng.standard_normal(lse.shape).astype(np.float32)
    grads = _loss_and_grads(q, k, v, cu_q, cu_k, do, dl, **kw)
    want = oracle.attention(f64(q), f64(k), f64(v), cu_q, cu_k, causal=True, window=(6, -1), dout=do, dlse=dl)
    assert oracle.rel_err(f64(out), want["out"]) < 1e-5
    check_lse(lse, want["lse"], 1e-5)
    for g, n in zip(grads, ("dq", "dk", "dv")):
        assert oracle.rel_err(g, want[n]) < 1e-5, n


def test_degenerate_shapes():
    q, k, v, _, _ = make_inputs(1, (4,), (0,), 2, 1, 8)
    cu = jnp.asarray([0, 4], jnp.int32)
    out, lse = ref_attn(q, k, v, cu, jnp.asarray([0, 0], jnp.int32), max_seqlen_q=4, max_seqlen_k=0)
    assert np.all(np.asarray(out) == 0) and np.all(np.isneginf(np.asarray(lse)))
    g = jax.grad(lambda q: jnp.sum(ref_attn(q, k, v, cu, jnp.asarray([0, 0], jnp.int32), max_seqlen_q=4,
                                            max_seqlen_k=0)[0]))(q)
    assert np.all(np.asarray(g) == 0)
    out, lse = ref_attn(q, k, v, jnp.asarray([0], jnp.int32), jnp.asarray([0], jnp.int32), max_seqlen_q=4,
                        max_seqlen_k=4)
    assert out.shape == (4, 2, 8) and np.all(np.asarray(out) == 0) and np.all(np.isneginf(np.asarray(lse)))


def test_token_slots_owner_is_the_last_start_at_or_before_each_row():
    """token_slots' prefix sum of start marks agrees with a binary search (side="right") on sorted starts, with
    repeated starts (empty sequences), starts past the end and rows before the first start."""
    rng = np.random.default_rng(8)
    for _ in range(50):
        batch, total = int(rng.integers(1, 9)), int(rng.integers(0, 60))
        starts = np.sort(rng.integers(0, total + 5, batch)).astype(np.int32)
        lengths = rng.integers(0, 12, batch).astype(np.int32)
        owner, pos, valid = reference.token_slots(jnp.asarray(starts), jnp.asarray(lengths), total)
        t = np.arange(total)
        want = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, batch - 1)
        np.testing.assert_array_equal(np.asarray(owner), want)
        np.testing.assert_array_equal(np.asarray(pos), t - starts[want])
        np.testing.assert_array_equal(np.asarray(valid), (t >= starts[want]) & (t - starts[want] < lengths[want]))


# ----------------------------------------------------------------------------------- data-dependent faults
def _run(q, k, v, cu_q, cu_k, **kw):
    return ref_attn(q, k, v, jnp.asarray(cu_q, jnp.int32), jnp.asarray(cu_k, jnp.int32), **kw)


def test_fault_decreasing_cu_seqlens_reads_running_max():
    """cu = [0, 10, 6, 14] is read as [0, 10, 10, 14]: sequence 1 is empty, sequence 2 is rows 10..13."""
    q, k, v, _, _ = make_inputs(11, (14,), (14,), 2, 2, 8)
    cu_bad = [0, 10, 6, 14]
    out, lse = _run(q, k, v, cu_bad, cu_bad, max_seqlen_q=14, max_seqlen_k=14, causal=True)
    fixed = [0, 10, 10, 14]
    want = oracle.attention(f64(q), f64(k), f64(v), fixed, fixed, causal=True)
    assert oracle.rel_err(f64(out), want["out"]) < 1e-5
    check_lse(lse, want["lse"], 1e-5)


def test_fault_length_above_max_seqlen_is_cut():
    """A 12-token sequence with max_seqlen 8: its first 8 queries see its first 8 keys, rows 8..11 are 0."""
    q, k, v, _, _ = make_inputs(12, (12, 5), (12, 5), 2, 1, 8)
    cu = [0, 12, 17]
    out, lse = _run(q, k, v, cu, cu, max_seqlen_q=8, max_seqlen_k=8, causal=True)
    used = np.array([8, 5], np.int32)
    want = oracle.attention(f64(q), f64(k), f64(v), cu, cu, seqused_q=used, seqused_k=used, causal=True)
    assert oracle.rel_err(f64(out), want["out"]) < 1e-5
    assert np.all(np.asarray(out[8:12]) == 0) and np.all(np.isneginf(np.asarray(lse[:, 8:12])))
    assert np.all(np.isfinite(np.asarray(lse[:, 12:17])))


def test_fault_seqused_and_cu_past_end_are_clipped():
    q, k, v, _, _ = make_inputs(13, (6, 4), (6, 4), 2, 1, 8)
    out, lse = _run(q, k, v, [0, 6, 25], [0, 6, 25], max_seqlen_q=19, max_seqlen_k=19,
                    seqused_q=jnp.asarray([9, -3], jnp.int32), seqused_k=jnp.asarray([6, 40], jnp.int32))
    # read as cu [0, 6, 10], seqused_q [6, 0], seqused_k [6, 4]
    want = oracle.attention(f64(q), f64(k), f64(v), [0, 6, 10], [0, 6, 10], seqused_q=[6, 0], seqused_k=[6, 4])
    assert oracle.rel_err(f64(out), want["out"]) < 1e-5
    check_lse(lse, want["lse"], 1e-5)


# ----------------------------------------------------------------------------------------- memory scaling
LARGE_LENGTHS = (8192, 8192, 4096, 4096, 2048, 2048, 2048, 1024, 1000, 24)   # 32768 tokens


def _large_call(heads=1, dim=64):
    total = sum(LARGE_LENGTHS)
    q = jax.ShapeDtypeStruct((total, heads, dim), jnp.bfloat16)
    cu = jax.ShapeDtypeStruct((len(LARGE_LENGTHS) + 1,), jnp.int32)
    fn = jax.jit(lambda q, k, v, cq, ck: ref_attn(q, k, v, cq, ck, max_seqlen_q=8192, max_seqlen_k=8192,
                                                  causal=True))
    return fn, (q, q, q, cu, cu), total


def test_memory_scales_with_max_seqlen_not_total():
    """Compiled temp memory for a 32k-token packed batch stays far below a dense total_q x total_k score matrix."""
    fn, args, total = _large_call()
    stats = fn.lower(*args).compile().memory_analysis()
    if stats is None:
        pytest.skip("memory_analysis unavailable on this backend")
    dense = total * total * 4
    assert sum(LARGE_LENGTHS) == 32768
    assert stats.temp_size_in_bytes < dense / 8, (stats.temp_size_in_bytes, dense)
    assert stats.temp_size_in_bytes < 1 << 30
    # The backward pass recomputes scores chunk by chunk (jax.checkpoint), so it stays bounded too.
    def loss(q, k, v, cq, ck):
        return jnp.sum(varlen_attention_reference(q, k, v, cq, ck, max_seqlen_q=8192, max_seqlen_k=8192,
                                                  causal=True)[0].astype(jnp.float32))
    grad_stats = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(*args).compile().memory_analysis()
    assert grad_stats.temp_size_in_bytes < 1 << 30, grad_stats.temp_size_in_bytes


@pytest.mark.slow
def test_large_packed_batch_runs():
    """Actually runs the 32k-token packed batch (max_seqlen 8192) on CPU and spot-checks two rows."""
    fn, args, total = _large_call()
    rng = np.random.default_rng(3)
    q = jnp.asarray(rng.standard_normal((total, 1, 64)), jnp.bfloat16)
    k = jnp.asarray(rng.standard_normal((total, 1, 64)), jnp.bfloat16)
    v = jnp.asarray(rng.standard_normal((total, 1, 64)), jnp.bfloat16)
    cu = jnp.asarray(cu_of(LARGE_LENGTHS))
    out, lse = fn(q, k, v, cu, cu)
    out = np.asarray(out, np.float32)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(np.asarray(lse)))
    for row, (start, length) in ((8191, (0, 8192)), (32767 - 24 + 5, (32768 - 24, 24))):
        i = row - start
        s = f64(q[row, 0]) @ f64(k[start:start + i + 1, 0]).T / 8.0
        p = np.exp(s - s.max())
        o = p @ f64(v[start:start + i + 1, 0]) / p.sum()
        assert np.linalg.norm(out[row, 0] - o) / np.linalg.norm(o) < 1e-2
