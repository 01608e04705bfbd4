"""Facts about the local CUDA devices, read through cuda-python's runtime bindings (no JAX backend needed).

The scheduler sizes its persistent grid by the SM count and its head swizzle by the L2 size; kernels are chosen by
compute capability. Every function returns None when there is no usable CUDA device, so callers can fall back.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def _runtime():
    try:
        from cuda.bindings import runtime
    except ImportError:  # cuda-python missing or too old
        return None
    err, count = runtime.cudaGetDeviceCount()
    if err != runtime.cudaError_t.cudaSuccess or count == 0:
        return None
    return runtime


def device_count() -> int:
    runtime = _runtime()
    return 0 if runtime is None else runtime.cudaGetDeviceCount()[1]


@functools.lru_cache(maxsize=None)
def _attribute(name: str, device: int):
    runtime = _runtime()
    if runtime is None:
        return None
    err, value = runtime.cudaDeviceGetAttribute(getattr(runtime.cudaDeviceAttr, name), device)
    return value if err == runtime.cudaError_t.cudaSuccess else None


def name(device: int = 0):
    """The device's name (e.g. "NVIDIA H100 80GB HBM3"), or None without a GPU."""
    runtime = _runtime()
    if runtime is None:
        return None
    err, props = runtime.cudaGetDeviceProperties(device)
    if err != runtime.cudaError_t.cudaSuccess:
        return None
    raw = props.name
    return (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)).rstrip("\x00")


def sm_count(device: int = 0):
    """Streaming multiprocessors on `device`, or None without a GPU."""
    return _attribute("cudaDevAttrMultiProcessorCount", device)


def l2_cache_bytes(device: int = 0):
    """L2 cache size in bytes, or None without a GPU."""
    return _attribute("cudaDevAttrL2CacheSize", device)


def compute_capability(device: int = 0):
    """(major, minor), or None without a GPU."""
    major = _attribute("cudaDevAttrComputeCapabilityMajor", device)
    minor = _attribute("cudaDevAttrComputeCapabilityMinor", device)
    return None if major is None or minor is None else (major, minor)


def kernel_arch(device: int = 0):
    """The architecture tag our prebuilt kernels use for this device ("sm_90a", "sm_100a"), or None."""
    cc = compute_capability(device)
    if cc is None:
        return None
    return {(9, 0): "sm_90a", (10, 0): "sm_100a"}.get(tuple(cc))
