"""examples/ring_attention.py on 4 CPU host devices: ring (context-parallel) attention equals one-device attention.

Runs in a subprocess for the same reason as test_sharding.py: the host device count is fixed when JAX's backend
starts, which an earlier test module may already have done with one device.
"""

import os
import sys

if __name__ == "__main__":  # the worker: the flag must be in place before jax is imported
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    os.environ["JAX_PLATFORMS"] = "cpu"

import json
import re
import subprocess
import traceback

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _check(causal, seed):
    import importlib.util

    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    from jax_fa4 import varlen_attention

    spec = importlib.util.spec_from_file_location("ring_attention", os.path.join(REPO, "examples",
                                                                                 "ring_attention.py"))
    ring = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ring)

    rng = np.random.default_rng(seed)
    n, chunk = 4, 12
    total = n * chunk
    lengths = [17, 0, 1, 13, 9, 5]                     # sequences cross chunk boundaries; 3 rows belong to none
    assert sum(lengths) == total - 3
    cu = jnp.asarray(np.concatenate([[0], np.cumsum(lengths)]), jnp.int32)
    q = jnp.asarray(rng.standard_normal((total, 4, 16)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((total, 2, 16)), jnp.float32)
    v = jnp.asarray(rng.standard_normal((total, 2, 8)), jnp.float32)
    mesh = Mesh(np.array(jax.devices()[:n]), ("ctx",))
    sh = NamedSharding(mesh, P("ctx", None, None))
    args = tuple(jax.device_put(x, sh) for x in (q, k, v))
    f = jax.jit(lambda q, k, v: ring.ring_attention(q, k, v, cu, mesh=mesh, axis="ctx", causal=causal))
    out, lse = f(*args)
    kw = dict(max_seqlen_q=max(lengths), max_seqlen_k=max(lengths), causal=causal)
    ref_out, ref_lse = varlen_attention(q, k, v, cu, cu, return_lse=True, **kw)
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref_out), rtol=2e-5, atol=2e-5)
    lse, ref_lse = np.asarray(lse), np.asarray(ref_lse)
    assert (np.isfinite(lse) == np.isfinite(ref_lse)).all()
    fin = np.isfinite(ref_lse)
    np.testing.assert_allclose(lse[fin], ref_lse[fin], rtol=2e-5, atol=2e-5)
    # The ring passes K/V chunks (collective-permute) and nothing is gathered.
    found = set(re.findall(r"\b(all-gather|all-to-all|collective-permute|all-reduce)", f.lower(*args).compile()
                           .as_text()))
    assert found == {"collective-permute"}, found

    def loss(fn):
        return lambda q, k, v: jnp.sum(fn(q, k, v) ** 2)

    grads = jax.jit(jax.grad(loss(lambda q, k, v: ring.ring_attention(q, k, v, cu, mesh=mesh, axis="ctx",
                                                                      causal=causal)[0]), argnums=(0, 1, 2)))(*args)
    ref = jax.grad(loss(lambda q, k, v: varlen_attention(q, k, v, cu, cu, **kw)), argnums=(0, 1, 2))(q, k, v)
    for a, b in zip(grads, ref):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=5e-5, atol=5e-5)


CASES = {"noncausal": (False, 0), "causal": (True, 1)}


@pytest.fixture(scope="module")
def worker_results():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    if proc.returncode or not lines:
        pytest.fail(f"ring worker failed (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return json.loads(lines[-1][len("RESULTS "):])


@pytest.mark.parametrize("name", sorted(CASES))
def test_ring_attention_matches_single_device(worker_results, name):
    result = worker_results[name]
    assert result["ok"], result.get("error")


if __name__ == "__main__":
    results = {}
    for name, (causal, seed) in CASES.items():
        try:
            _check(causal, seed)
            results[name] = {"ok": True}
        except Exception:  # noqa: BLE001 - reported to the pytest side
            results[name] = {"ok": False, "error": traceback.format_exc()[-4000:]}
    print("RESULTS " + json.dumps(results), flush=True)
