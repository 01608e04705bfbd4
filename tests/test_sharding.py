"""Multi-device sharding of varlen attention on CPU host devices: results equal one device, HLO has no collectives.

Why a subprocess: XLA reads --xla_force_host_platform_device_count once, when the first JAX backend starts. Any
earlier test module in this pytest process has started it with one device, so the multi-device checks run in a
fresh interpreter (this file executed as a script, which sets the flag on its first lines, before importing jax).
One worker runs every check and reports per check; the pytest tests below assert on those reports. The packing
planner is host NumPy and is tested in-process.
"""

import os
import sys

if __name__ == "__main__":  # the worker: the flag must be in place before jax is imported
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    os.environ["JAX_PLATFORMS"] = "cpu"

import json
import re
import subprocess
import traceback

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIVE = re.compile(r"\b(all-gather|all-to-all|collective-permute|all-reduce|reduce-scatter)")
CHECKS = {}


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


# ------------------------------------------------------------------------------------------- worker-side helpers
def collectives(compiled_text):
    return sorted(set(COLLECTIVE.findall(compiled_text)))


def _problem(seed=0, lengths=(5, 9, 0, 14, 1, 7), heads=8, kv_heads=4, dim=16, dim_v=None):
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    total = int(sum(lengths)) + 3                       # 3 trailing rows outside every sequence
    q = jnp.asarray(rng.standard_normal((total, heads, dim)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((total, kv_heads, dim)), jnp.float32)
    v = jnp.asarray(rng.standard_normal((total, kv_heads, dim_v or dim)), jnp.float32)
    cu = jnp.asarray(np.concatenate([[0], np.cumsum(lengths)]), jnp.int32)
    return q, k, v, cu, max(max(lengths), 1)


def _close(a, b, what, tol=2e-5):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shape {a.shape} != {b.shape}")
    same_inf = np.isinf(a) == np.isinf(b)
    if not same_inf.all() or not (a[np.isinf(a)] == b[np.isinf(b)]).all():
        raise AssertionError(f"{what}: infinities differ")
    fin = np.isfinite(b)
    np.testing.assert_allclose(a[fin], b[fin], rtol=tol, atol=tol, err_msg=what)


def _mesh(shape, names):
    import jax

    return jax.sharding.Mesh(np.array(jax.devices()[:int(np.prod(shape))]).reshape(shape), names)


def _no_collectives(fn, args, what, allow=()):
    found = [c for c in collectives(fn.lower(*args).compile().as_text()) if c not in allow]
    if found:
        raise AssertionError(f"{what}: compiled HLO contains collectives {found}")


def _lse_safe_loss(o, l):
    import jax.numpy as jnp

    return jnp.sum(o * o) + jnp.sum(jnp.where(jnp.isfinite(l), l, 0.0) * 0.1)


# ---------------------------------------------------------------------------------------------- head parallel
HEAD_CASES = {
    "causal_gqa": dict(causal=True),
    "window_softcap_seqused": dict(window_size=(3, 2), softcap=5.0, seqused=True),
    "noncausal_mha": dict(kv_heads=8),
}


def _head_parallel(case, mesh_shape=(4,), names=("model",), axis="model"):
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec as P

    from jax_fa4 import varlen_attention
    from jax_fa4.sharding import sharded_varlen_attention

    opts = dict(HEAD_CASES[case])
    q, k, v, cu, mx = _problem(kv_heads=opts.pop("kv_heads", 4), dim_v=8)
    kw = dict(max_seqlen_q=mx, max_seqlen_k=mx, return_lse=True, **{k_: v_ for k_, v_ in opts.items()
                                                                      if k_ != "seqused"})
    if opts.get("seqused"):
        kw["seqused_q"] = jnp.asarray([3, 9, 0, 10, 1, 2], jnp.int32)
        kw["seqused_k"] = jnp.asarray([5, 4, 0, 14, 0, 7], jnp.int32)
    mesh = _mesh(mesh_shape, names)
    hs = NamedSharding(mesh, P(None, axis, None))
    qs, ks, vs = (jax.device_put(x, hs) for x in (q, k, v))
    f = jax.jit(lambda q, k, v: sharded_varlen_attention(q, k, v, cu, cu, **kw))
    out, lse = f(qs, ks, vs)
    ref_out, ref_lse = varlen_attention(q, k, v, cu, cu, **kw)
    _close(out, ref_out, f"{case} out")
    _close(lse, ref_lse, f"{case} lse")
    if out.sharding.spec[1] != axis or lse.sharding.spec[0] != axis:
        raise AssertionError(f"outputs not head-sharded: {out.sharding.spec}, {lse.sharding.spec}")
    text = f.lower(qs, ks, vs).compile().as_text()
    if collectives(text):
        raise AssertionError(f"head-parallel forward HLO has collectives {collectives(text)}")
    if f"f32[{q.shape[0]},{q.shape[1]},{q.shape[2]}]" in text:
        raise AssertionError("a device materialises q with all heads")

    def loss(fn):
        return lambda q, k, v: _lse_safe_loss(*fn(q, k, v, cu, cu, **kw))

    g = jax.jit(jax.grad(loss(sharded_varlen_attention), argnums=(0, 1, 2)))
    grads = g(qs, ks, vs)
    ref_grads = jax.grad(loss(varlen_attention), argnums=(0, 1, 2))(q, k, v)
    for name, a, b in zip("qkv", grads, ref_grads):
        _close(a, b, f"{case} d{name}", tol=5e-5)
        if a.sharding.spec[1] != axis:
            raise AssertionError(f"d{name} not head-sharded: {a.sharding.spec}")
    _no_collectives(g, (qs, ks, vs), "head-parallel grad")


@check
def head_parallel_causal_gqa():
    _head_parallel("causal_gqa")


@check
def head_parallel_window_softcap_seqused():
    _head_parallel("window_softcap_seqused")


@check
def head_parallel_noncausal_mha():
    _head_parallel("noncausal_mha")


@check
def head_parallel_on_data_model_mesh():
    _head_parallel("causal_gqa", mesh_shape=(2, 4), names=("data", "model"))


@check
def head_parallel_on_explicit_mesh():
    """jax.make_mesh with Explicit axes: the shard_map route, same results, no collective, grad included."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

    from jax_fa4 import varlen_attention
    from jax_fa4.sharding import sharded_varlen_attention

    q, k, v, cu, mx = _problem()
    kw = dict(max_seqlen_q=mx, max_seqlen_k=mx, causal=True, return_lse=True)
    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Explicit,) * 2)
    args = tuple(jax.device_put(x, NamedSharding(mesh, P(None, "model", None))) for x in (q, k, v))
    f = jax.jit(lambda q, k, v: sharded_varlen_attention(q, k, v, cu, cu, **kw))
    out, lse = f(*args)
    ref_out, ref_lse = varlen_attention(q, k, v, cu, cu, **kw)
    _close(out, ref_out, "explicit out")
    _close(lse, ref_lse, "explicit lse")
    _no_collectives(f, args, "explicit-mesh forward")

    def loss(fn):
        return lambda q, k, v: _lse_safe_loss(*fn(q, k, v, cu, cu, **kw))

    g = jax.jit(jax.grad(loss(sharded_varlen_attention), argnums=(0, 1, 2)))
    for name, a, b in zip("qkv", g(*args), jax.grad(loss(varlen_attention), argnums=(0, 1, 2))(q, k, v)):
        _close(a, b, f"explicit d{name}", tol=5e-5)
    _no_collectives(g, args, "explicit-mesh grad")


@check
def head_parallel_metadata_global_and_per_shard():
    import jax
    from jax.sharding import NamedSharding, PartitionSpec as P

    from jax_fa4 import prepare_scheduler_metadata, varlen_attention
    from jax_fa4.sharding import sharded_varlen_attention

    q, k, v, cu, mx = _problem()
    kw = dict(max_seqlen_q=mx, max_seqlen_k=mx, causal=True)
    mesh = _mesh((4,), ("model",))
    hs = NamedSharding(mesh, P(None, "model", None))
    qs, ks, vs = (jax.device_put(x, hs) for x in (q, k, v))
    ref = varlen_attention(q, k, v, cu, cu, **kw)
    f = jax.jit(lambda q, k, v, md: sharded_varlen_attention(q, k, v, cu, cu, scheduler_metadata=md, **kw))
    for heads, kv_heads in ((8, 4), (2, 1)):                # global heads (rebuilt per shard), per-shard heads
        md = prepare_scheduler_metadata(cu, cu, max_seqlen_q=mx, max_seqlen_k=mx, num_heads=heads,
                                        num_kv_heads=kv_heads, head_dim=16, causal=True, dtype=q.dtype)
        _close(f(qs, ks, vs, md), ref, f"metadata for {heads}/{kv_heads} heads")
        _no_collectives(f, (qs, ks, vs, md), "head-parallel with metadata")


@check
def head_parallel_token_sharded_input_is_gathered():
    """Documented behaviour, and the control that shows the HLO check can see a collective."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec as P

    from jax_fa4 import varlen_attention
    from jax_fa4.sharding import sharded_varlen_attention

    q, k, v, cu, mx = _problem(lengths=(5, 9, 0, 14, 1, 8))   # 40 rows: divisible by 4
    kw = dict(max_seqlen_q=mx, max_seqlen_k=mx, causal=True)
    ts = NamedSharding(_mesh((4,), ("model",)), P("model", None, None))
    args = tuple(jax.device_put(x, ts) for x in (q, k, v))
    f = jax.jit(lambda q, k, v: sharded_varlen_attention(q, k, v, cu, cu, **kw))
    _close(f(*args), varlen_attention(q, k, v, cu, cu, **kw), "token-sharded input")
    found = collectives(f.lower(*args).compile().as_text())
    if "all-gather" not in found:
        raise AssertionError(f"expected the token axis to be all-gathered, HLO collectives: {found}")


@check
def head_parallel_indivisible_kv_heads_raise():
    import jax
    from jax.sharding import NamedSharding, PartitionSpec as P

    from jax_fa4.sharding import sharded_varlen_attention

    q, k, v, cu, mx = _problem(kv_heads=2)
    mesh = _mesh((4,), ("model",))
    qs = jax.device_put(q, NamedSharding(mesh, P(None, "model", None)))
    f = jax.jit(lambda q, k, v: sharded_varlen_attention(q, k, v, cu, cu, max_seqlen_q=mx, max_seqlen_k=mx))
    try:
        f(qs, k, v).block_until_ready()
    except Exception as exc:  # noqa: BLE001 - XLA wraps the partitioner's error
        if "must both be divisible by 4" not in str(exc):
            raise AssertionError(f"unexpected error: {exc}") from exc
    else:
        raise AssertionError("q sharded 4 ways with 2 KV heads did not raise")


# ---------------------------------------------------------------------------------------------- data parallel
def _data_parallel(mesh_shape, names, head_axis, metadata_options, causal, seed):
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec as P

    from jax_fa4 import varlen_attention
    from jax_fa4.sharding import data_parallel_varlen_attention, shard_packed_batch, shard_tokens, unshard_tokens

    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 24, 13)
    q, k, v, cu, _ = _problem(seed, lengths=tuple(int(x) for x in lengths), heads=4, kv_heads=2, dim=8)
    total = q.shape[0]
    n = mesh_shape[0]
    plan = shard_packed_batch(lengths, n, causal=causal)
    mesh = _mesh(mesh_shape, names)
    tok = NamedSharding(mesh, P("data", head_axis, None))
    row = NamedSharding(mesh, P("data", None))
    qs = jax.device_put(shard_tokens(q, plan.q_index), tok)
    ks = jax.device_put(shard_tokens(k, plan.k_index), tok)
    vs = jax.device_put(shard_tokens(v, plan.k_index), tok)
    cq, ck = jax.device_put(plan.cu_seqlens_q, row), jax.device_put(plan.cu_seqlens_k, row)
    kw = dict(max_seqlen_q=plan.max_seqlen_q, max_seqlen_k=plan.max_seqlen_k, causal=causal)

    def sharded(q, k, v, cq, ck):
        return data_parallel_varlen_attention(mesh, "data", q, k, v, cq, ck, return_lse=True, head_axis=head_axis,
                                              metadata_options=metadata_options, **kw)

    f = jax.jit(sharded)
    out, lse = f(qs, ks, vs, cq, ck)
    ref_out, ref_lse = varlen_attention(q, k, v, cu, cu, return_lse=True, **kw)
    _close(unshard_tokens(out, plan.q_index, total), ref_out, "data-parallel out")
    _close(unshard_tokens(lse.T, plan.q_index, total).T,
           jnp.where(jnp.asarray(np.isin(np.arange(total), plan.q_index))[None], ref_lse, 0.0), "data-parallel lse")
    _no_collectives(f, (qs, ks, vs, cq, ck), "data-parallel forward")

    g = jax.jit(jax.grad(lambda q, k, v, cq, ck: _lse_safe_loss(*sharded(q, k, v, cq, ck)), argnums=(0, 1, 2)))
    grads = g(qs, ks, vs, cq, ck)
    ref = jax.grad(lambda q, k, v: _lse_safe_loss(*varlen_attention(q, k, v, cu, cu, return_lse=True, **kw)),
                   argnums=(0, 1, 2))(q, k, v)
    for name, a, b, index in zip("qkv", grads, ref, (plan.q_index, plan.k_index, plan.k_index)):
        _close(unshard_tokens(a, index, total), b, f"data-parallel d{name}", tol=5e-5)
    _no_collectives(g, (qs, ks, vs, cq, ck), "data-parallel grad")


@check
def data_parallel_8_shards_causal():
    _data_parallel((8,), ("data",), None, None, True, 1)


@check
def data_parallel_data_x_model_with_metadata():
    _data_parallel((4, 2), ("data", "model"), "model", {}, False, 2)


# --------------------------------------------------------------------------------------------------- the runner
def _run_checks(names):
    import jax

    results = {}
    if len(jax.devices()) < 8:
        raise SystemExit(f"worker needs 8 host devices, got {jax.devices()}")
    for name in names:
        try:
            CHECKS[name]()
            results[name] = {"ok": True}
        except Exception:  # noqa: BLE001 - reported to the pytest side
            results[name] = {"ok": False, "error": traceback.format_exc()[-4000:]}
    return results


@pytest.fixture(scope="module")
def worker_results():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    if proc.returncode or not lines:
        pytest.fail(f"sharding worker failed (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return json.loads(lines[-1][len("RESULTS "):])


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_multi_device(worker_results, name):
    result = worker_results[name]
    assert result["ok"], result.get("error")


# ------------------------------------------------------------------------------------- host-side packing planner
def test_attended_pairs_match_brute_force():
    from jax_fa4.sharding import attended_pairs

    rng = np.random.default_rng(0)
    sq, sk = rng.integers(0, 12, 30), rng.integers(0, 12, 30)
    for causal, window in ((False, (-1, -1)), (True, (-1, -1)), (False, (2, 1)), (True, (3, -1))):
        got = attended_pairs(sq, sk, causal, window)
        left, right = window
        right = 0 if causal else right
        for b in range(30):
            i, j = np.meshgrid(np.arange(sq[b]), np.arange(sk[b]), indexing="ij")
            d = i + sk[b] - sq[b]
            ok = np.ones(i.shape, bool)
            if right >= 0:
                ok &= j <= d + right
            if left >= 0:
                ok &= j >= d - left
            assert got[b] == ok.sum(), (causal, window, b)


@pytest.mark.parametrize("n_shards", [1, 3, 8])
def test_shard_packed_batch_plan_is_consistent_and_balanced(n_shards):
    from jax_fa4.sharding import attended_pairs, shard_packed_batch

    rng = np.random.default_rng(n_shards)
    lengths = rng.integers(0, 50, 37)
    plan = shard_packed_batch(lengths, n_shards, causal=True, token_multiple=16)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    assert plan.q_index.shape[1] % 16 == 0 and plan.q_index.shape[1] >= 1
    seen = []
    for s in range(n_shards):
        ids = plan.sequence_ids[s][plan.sequence_ids[s] >= 0]
        cu = plan.cu_seqlens_q[s]
        assert cu[0] == 0 and (np.diff(cu) >= 0).all()
        np.testing.assert_array_equal(np.diff(cu)[:len(ids)], lengths[ids])
        assert (np.diff(cu)[len(ids):] == 0).all()
        for j, b in enumerate(ids):                       # the rows of slot j are sequence b's global rows
            np.testing.assert_array_equal(plan.q_index[s, cu[j]:cu[j + 1]], np.arange(starts[b], starts[b + 1]))
        assert (plan.q_index[s, cu[-1]:] == -1).all()
        seen.extend(ids.tolist())
    assert sorted(seen) == list(range(len(lengths)))       # every sequence exactly once
    work = attended_pairs(lengths, lengths, True)
    np.testing.assert_array_equal(np.sort(plan.work), np.sort([work[plan.sequence_ids[s][plan.sequence_ids[s] >= 0]]
                                                               .sum() for s in range(n_shards)]))
    # Longest-processing-time bound: no shard exceeds the mean by more than the largest single sequence.
    assert plan.work.max() <= work.sum() / n_shards + work.max()
    assert plan.max_seqlen_q == lengths.max()


def test_shard_packed_batch_rejects_too_small_static_sizes():
    from jax_fa4.sharding import shard_packed_batch

    with pytest.raises(ValueError, match="needs"):
        shard_packed_batch([10, 10, 10], 2, tokens_q=8)


if __name__ == "__main__":
    selected = sys.argv[1:] or sorted(CHECKS)
    print("RESULTS " + json.dumps(_run_checks(selected)), flush=True)
