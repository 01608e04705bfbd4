"""The main job: `python -m jax_fa4 demo` runs and checks itself; the command line lists its commands."""

import collections
import os
import pathlib
import subprocess
import sys

import numpy as np

from jax_fa4 import __main__ as cli
from jax_fa4 import demo

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_demo_oracle_is_attention():
    """The demo's own float64 check agrees with the tests' oracle (so the demo's comparison means something)."""
    import oracle

    rng = np.random.default_rng(4)
    cu_q, cu_k = np.array([0, 3, 3, 12]), np.array([0, 5, 6, 20])
    q, k, v = rng.standard_normal((12, 4, 8)), rng.standard_normal((20, 2, 8)), rng.standard_normal((20, 2, 8))
    got = demo._oracle(q, k, v, cu_q, cu_k, True, (4, 0))
    want = oracle.attention(q, k, v, cu_q, cu_k, causal=True, window=(4, 0))["out"]
    assert oracle.rel_err(got, want) < 1e-12


def test_demo_runs_in_process():
    lines = []
    rows = demo.run(repeats=1, printer=lines.append)
    assert len(rows) == len(demo.CASES) and all(r["ok"] for r in rows)
    assert all(r["rel_err"] > 0 for r in rows)             # a real comparison, not a copy
    assert "all cases within tolerance" in lines[-1]


def test_cli_help_and_demo_subprocess():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-m", "jax_fa4", "--help"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0 and "demo" in res.stdout
    res = subprocess.run([sys.executable, "-m", "jax_fa4", "demo", "--repeats", "1"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "backend" in res.stdout and "all cases within tolerance" in res.stdout
    assert cli.main(["nope"]) == 2
    assert set(cli.COMMANDS) >= {"demo", "info"}
    res = subprocess.run([sys.executable, "-m", "jax_fa4", "info"], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)
    assert res.returncode == 0 and "kernel library" in res.stdout, res.stderr


def test_info_reports_the_library_and_why_calls_use_the_reference():
    from jax_fa4 import ffi, info, kernel_backend

    lines = info.report()
    text = "\n".join(lines)
    manifest = ffi.load()
    if manifest is None:
        assert f"kernel library: {ffi.load_error()}" in text
    else:
        assert f"({len(manifest['handlers'])} kernel variants)" in text
        per_module = collections.Counter((e["module"], e["arch"]) for e in manifest["handlers"].values())
        for (module, arch), n in per_module.items():
            assert f"  {module} [{arch}]: {n}" in lines
    reason = kernel_backend.unavailable_reason()
    if reason is None:
        assert "run on the GPU kernels" in lines[-1]
    else:
        assert lines[-1] == f"calls here use the pure-JAX reference: {reason}"


def test_info_describes_a_gpu_even_when_some_attributes_are_unknown(monkeypatch):
    """The GPU line, as on a CUDA machine (faked here), tolerates attributes the runtime does not answer."""
    from jax_fa4 import device_info, info

    monkeypatch.setattr(device_info, "device_count", lambda: 2)
    monkeypatch.setattr(device_info, "name", lambda device=0: "NVIDIA H200")
    monkeypatch.setattr(device_info, "compute_capability", lambda device=0: (9, 0))
    monkeypatch.setattr(device_info, "sm_count", lambda device=0: 132)
    monkeypatch.setattr(device_info, "l2_cache_bytes", lambda device=0: 50 * 2**20)
    assert ("CUDA device 0 of 2: NVIDIA H200, compute capability 9.0, 132 SMs, L2 50 MiB; prebuilt kernel arch: "
            "sm_90a") in info.report()
    monkeypatch.setattr(device_info, "l2_cache_bytes", lambda device=0: None)
    monkeypatch.setattr(device_info, "compute_capability", lambda device=0: None)
    assert any(line.startswith("CUDA device 0 of 2: NVIDIA H200, compute capability ?, 132 SMs, L2 ?")
               for line in info.report())


def test_info_forward_coverage_lines():
    from jax_fa4 import info

    full = [f"{dt}_d{d}_{mk}" for dt in ("bf16", "fp16") for d in (64, 128) for mk in ("none", "causal")]
    assert info._forward_coverage(full + ["bf16_d128_causal_pair", "bf16_d64_none_pair"]) == [
        "    bf16: D = 64 / 128 x causal / none; 2 of them also as pair variants",
        "    fp16: D = 64 / 128 x causal / none; 0 of them also as pair variants"]
    # a reduced build lists its combinations one by one
    assert info._forward_coverage(["bf16_d128_causal", "bf16_d64_none", "bf16_d128_causal_pair"]) == [
        "    bf16: D = 64 none, D = 128 causal; 1 of them also as pair variants"]
