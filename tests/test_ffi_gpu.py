"""FFI plumbing on the GPU: programs survive the persistent compilation cache and jax.export in fresh processes,
and two host threads calling kernels concurrently get correct results."""

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import jax
import jax.numpy as jnp

REPO = Path(__file__).resolve().parent.parent

PROGRAM = textwrap.dedent("""
    import sys, numpy as np, jax, jax.numpy as jnp
    from jax_fa4.merge import merge_attention_states, merge_reference
    rng = np.random.default_rng(7)
    outs = jnp.asarray(rng.standard_normal((3, 257, 4, 128)), jnp.float32)
    lses = jnp.asarray(rng.normal(1.0, 2.0, (3, 4, 257)), jnp.float32)
    fn = jax.jit(lambda a, b: merge_attention_states(a, b, implementation="kernel"))
    mode = sys.argv[1]
    if mode == "export-save":
        exported = jax.export.export(fn, disabled_checks=__import__("jax_fa4").export_safety_checks())(outs, lses)
        open(sys.argv[2], "wb").write(exported.serialize())
        got = fn(outs, lses)
    elif mode == "export-load":
        import jax_fa4  # registers the FFI targets the deserialised program calls
        got = jax.export.deserialize(open(sys.argv[2], "rb").read()).call(outs, lses)
    else:
        got = fn(outs, lses)
    want = merge_reference(outs, lses)
    err = float(jnp.linalg.norm(got[0] - want[0]) / jnp.linalg.norm(want[0]))
    assert err < 1e-5, err
    print("OK", err)
""")


def _run(args, env_extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), **env_extra)
    proc = subprocess.run([sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.gpu
def test_program_runs_after_reload_from_persistent_compilation_cache(tmp_path):
    cache = tmp_path / "jax_cache"
    env = {"JAX_COMPILATION_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    assert "OK" in _run(["cache"], env)
    entries = list(cache.rglob("*"))
    assert entries, "the first process wrote nothing to the persistent cache"
    assert "OK" in _run(["cache"], env)          # the second process loads the compiled program from the cache


@pytest.mark.gpu
def test_program_survives_jax_export_round_trip(tmp_path):
    blob = tmp_path / "merge.jax_exported"
    assert "OK" in _run(["export-save", str(blob)], {})
    assert "OK" in _run(["export-load", str(blob)], {})


@pytest.mark.gpu
def test_concurrent_host_threads_get_correct_results():
    from jax_fa4.merge import merge_attention_states, merge_reference

    fn = jax.jit(lambda a, b: merge_attention_states(a, b, implementation="kernel"))
    results, errors = {}, []

    def worker(seed):
        try:
            rng = np.random.default_rng(seed)
            outs = jnp.asarray(rng.standard_normal((4, 300 + seed, 2, 64)), jnp.float32)
            lses = jnp.asarray(rng.normal(0.0, 2.0, (4, 2, 300 + seed)), jnp.float32)
            for _ in range(20):
                got = fn(outs, lses)
            want = merge_reference(outs, lses)
            results[seed] = float(jnp.linalg.norm(got[0] - want[0]) / jnp.linalg.norm(want[0]))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all(e < 1e-5 for e in results.values()), results
