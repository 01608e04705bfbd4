"""Device-synchronised timing and the device ceilings every result is read against.

Calls are dispatched asynchronously, so each sample times `inner` back-to-back calls and ends with
`block_until_ready` on the last output (one stream: all earlier calls are done too). `inner` is at least 3 and
chosen so a sample lasts about 20 ms: the host dispatches call i+1 while the GPU runs call i, so a sample measures
what a training or serving loop sees, the GPU's time per call. (With one call per sample, as before 2026-12-02,
every millisecond-scale call also paid the dispatch and the wake-up after it: on the H200, 1.24-1.35 ms per
packed-train forward whose kernels took 0.90 ms.) When a workload's inputs fit in L2, calls rotate through several
input sets so repeated calls do not run from a hot cache.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np


def measure(fn, arg_sets, *, warmup=2, min_reps=5, max_reps=30, max_seconds=2.0, sample_seconds=20e-3,
            min_inner=3):
    """Median seconds per call of `fn(*args)` over rotating `arg_sets` (fn already compiled for them)."""
    n = len(arg_sets)
    for i in range(warmup * n):
        jax.block_until_ready(fn(*arg_sets[i % n]))
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*arg_sets[0]))
    estimate = max(time.perf_counter() - t0, 1e-7)
    inner = int(min(64, max(min_inner, sample_seconds / estimate)))
    samples, k = [], 0
    deadline = time.perf_counter() + max_seconds
    while len(samples) < min_reps or (len(samples) < max_reps and time.perf_counter() < deadline):
        t0 = time.perf_counter()
        out = None
        for _ in range(inner):
            out = fn(*arg_sets[k % n])
            k += 1
        jax.block_until_ready(out)
        samples.append((time.perf_counter() - t0) / inner)
    return {"median_s": statistics.median(samples), "min_s": min(samples), "max_s": max(samples),
            "reps": len(samples), "calls_per_sample": inner}


def matmul_ceiling(n=8192, dtype=jnp.bfloat16):
    """bf16 dense matmul throughput (TFLOP/s) on an n^3 product: the compute roofline to compare against."""
    ka, kb = jax.random.split(jax.random.PRNGKey(123))
    sets = [(jax.random.normal(ka, (n, n), dtype), jax.random.normal(kb, (n, n), dtype))]
    fn = jax.jit(jnp.dot)
    t = measure(fn, sets)["median_s"]
    return {"n": n, "ms": t * 1e3, "tflops": 2 * n ** 3 / t / 1e12}


def bandwidth_ceiling(nbytes=2 << 30, dtype=jnp.bfloat16):
    """Streaming throughput (TB/s): an elementwise copy (bytes read + written) and a reduction (bytes read)."""
    n = nbytes // np.dtype(jnp.bfloat16).itemsize
    x = jax.random.normal(jax.random.PRNGKey(7), (n,), dtype)
    copy = measure(jax.jit(lambda a: -a), [(x,)])["median_s"]
    read = measure(jax.jit(lambda a: jnp.sum(a, dtype=jnp.float32)), [(x,)])["median_s"]
    return {"bytes": int(nbytes), "copy_ms": copy * 1e3, "copy_tbps": 2 * nbytes / copy / 1e12,
            "read_ms": read * 1e3, "read_tbps": nbytes / read / 1e12}


_DERIVED_LINES = {"XLA Modules", "XLA Ops", "Steps", "Framework Ops", "Framework Name Scope", "Source code",
                  "XLA TraceMe", "Launch Stats"}


def gpu_events(fn, args, *, calls=20):
    """(start ns, duration ns, name) of every GPU kernel that `calls` back-to-back calls of `fn(*args)` launch, in
    start order, from a profiler trace (CUPTI); None when the trace holds no GPU kernel (e.g. on a CPU)."""
    import glob
    import os
    import tempfile

    jax.block_until_ready(fn(*args))
    with tempfile.TemporaryDirectory() as tmp:
        jax.profiler.start_trace(tmp)
        out = None
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        jax.profiler.stop_trace()
        paths = glob.glob(os.path.join(tmp, "**", "*.xplane.pb"), recursive=True)
        if not paths:
            return None
        data = jax.profiler.ProfileData.from_file(paths[0])
    events = []
    for plane in data.planes:
        if not plane.name.startswith("/device:GPU"):
            continue
        for line in plane.lines:
            if line.name in _DERIVED_LINES:  # these re-list the stream's kernels by XLA op / module / step
                continue
            events.extend((event.start_ns, event.duration_ns, event.name) for event in line.events)
    return sorted(events) or None


def kernel_time(fn, args, *, calls=20, match=None):
    """Device time per call of the GPU kernels `fn(*args)` launches, from a profiler trace (CUPTI): what the kernels
    cost on the GPU without the host's dispatch, which dominates for kernels of a few microseconds.

    Returns {"us": summed kernel microseconds per call, "kernels": {name: (launches per call, mean us)}}, counting
    kernels whose name contains `match` (all when None), or None when the trace holds no GPU kernel (e.g. CPU)."""
    durations = {}
    for _, duration_ns, name in gpu_events(fn, args, calls=calls) or ():
        if match is None or match in name:
            durations.setdefault(name, []).append(duration_ns / 1e3)
    if not durations:
        return None
    return {"us": sum(sum(v) for v in durations.values()) / calls,
            "kernels": {name: (len(v) / calls, statistics.mean(v)) for name, v in durations.items()}}
