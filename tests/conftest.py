"""Markers: `gpu` tests need a CUDA GPU with the built kernel library and skip cleanly elsewhere; `build` tests need
nvidia-cutlass-dsl (they compile kernels); `slow` tests are left out of the default CI run with -m 'not slow'."""

import functools
import os

import pytest

# GPU tests compile many small programs (one per random case); XLA's GEMM autotuning would dominate their run time
# and changes nothing they check.
if "--xla_gpu_autotune_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_gpu_autotune_level=0").strip()


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU and the built kernel library")
    config.addinivalue_line("markers", "build: compiles CuTe DSL kernels (needs nvidia-cutlass-dsl)")
    config.addinivalue_line("markers", "slow: long-running; excluded from the default CI selection")


@functools.lru_cache(maxsize=None)
def _gpu_skip_reason():
    try:
        from jax_fa4 import kernel_backend
    except Exception as exc:  # pragma: no cover - import problems show up in other tests
        return f"jax_fa4 import failed: {exc}"
    return kernel_backend.unavailable_reason()


@functools.lru_cache(maxsize=None)
def _build_skip_reason():
    import importlib.util

    return None if importlib.util.find_spec("cutlass") else "nvidia-cutlass-dsl is not installed"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "gpu" in item.keywords:
            reason = _gpu_skip_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"GPU kernels unavailable: {reason}"))
        if "build" in item.keywords:
            reason = _build_skip_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))
