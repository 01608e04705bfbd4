"""Prepare-kernel latency by batch size: `python -m benchmarks.prepare_latency [--out FILE]`.

Times `prepare_scheduler_metadata` (the GPU prepare kernel and the jnp path) for batches of 8, 128, 1024 and 16384
sequences with log-normal lengths (32 query heads, 8 KV heads, head dim 128, causal) three ways: one jitted call at a
time (the harness's timer: includes host dispatch, which dominates for a kernel of a few microseconds), 32
dependent prepares chained inside one program (per prepare, plus one tiny add; still paced by the host's launch of
each op when the ops are shorter than that), and the GPU time of the kernels themselves from a profiler trace
(benchmarks.timing.kernel_time). Prints a table and optionally writes JSON.
"""

from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import timing

BATCHES = (8, 128, 1024, 16384)
CHAIN = 32  # prepares chained inside one program for the device-side time


def _cu_seqlens(rng, batch):
    lengths = np.clip(rng.lognormal(6.5, 1.2, batch), 1, 8192).astype(np.int64)
    return jnp.asarray(np.concatenate([[0], np.cumsum(lengths)]), jnp.int32), int(lengths.max())


def _step(cu, impl, longest):
    """One prepare whose input depends on the previous one's output (every leaf is >= 0, so the dependency adds 0,
    and it touches every leaf, so nothing is dead): a chain of them runs back to back on the device, and the time per
    link is the device-side cost."""
    import jax_fa4

    md = jax_fa4.prepare_scheduler_metadata(cu, cu, max_seqlen_q=longest, max_seqlen_k=longest, num_heads=32,
                                            num_kv_heads=8, head_dim=128, causal=True, implementation=impl)
    dep = sum(jnp.minimum(x, 0) for x in (md.num_m_blocks[0], md.num_splits[0], md.virtual_batch_idx[0],
                                          md.num_heads_in_l2[0], md.tile_prefix[-1]))
    return cu + dep


def _chain(cu, impl, longest):
    # Unrolled on purpose: an XLA while loop on the GPU reads its predicate back to the host every iteration,
    # which would add a synchronisation to every link.
    for _ in range(CHAIN):
        cu = _step(cu, impl, longest)
    return cu


def measure_all(batches=BATCHES):
    import jax_fa4

    rng = np.random.default_rng(0)
    rows = []
    for batch in batches:
        cu, longest = _cu_seqlens(rng, batch)
        for impl in ("kernel", "xla"):
            fn = jax.jit(lambda c, impl=impl: jax_fa4.prepare_scheduler_metadata(
                c, c, max_seqlen_q=longest, max_seqlen_k=longest, num_heads=32, num_kv_heads=8, head_dim=128,
                causal=True, implementation=impl))
            try:
                jax.block_until_ready(fn(cu))
            except Exception as exc:  # no kernel here: the row says so
                rows.append({"batch": batch, "impl": impl, "status": f"not available: {exc}"[:200]})
                continue
            t = timing.measure(fn, [(cu,)], min_reps=20, max_seconds=1.0)
            chained = jax.jit(lambda c, impl=impl: _chain(c, impl, longest))
            jax.block_until_ready(chained(cu))
            t_chain = timing.measure(chained, [(cu,)], min_reps=10, max_seconds=1.0)
            kernels = timing.kernel_time(fn, (cu,))
            rows.append({"batch": batch, "impl": impl, "status": "ok", "us": t["median_s"] * 1e6,
                         "in_graph_us": t_chain["median_s"] / CHAIN * 1e6,
                         "gpu_us": None if kernels is None else kernels["us"],
                         "gpu_kernels": None if kernels is None else kernels["kernels"]})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.prepare_latency", description=__doc__)
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args(argv)
    rows = measure_all()
    print(f"device: {jax.devices()[0].device_kind}")
    print("| batch | prepare kernel: per jit call (us) | in a chain of 32 (us) | GPU time (us) | "
          "jnp path: per jit call (us) | in a chain of 32 (us) | GPU time (us) |\n|---:|---:|---:|---:|---:|---:|---:|")
    for batch in BATCHES:
        cells = []
        for impl in ("kernel", "xla"):
            row = next(r for r in rows if r["batch"] == batch and r["impl"] == impl)
            gpu = "-" if row.get("gpu_us") is None else f"{row['gpu_us']:.1f}"
            cells += ([f"{row['us']:.1f}", f"{row['in_graph_us']:.1f}", gpu] if row["status"] == "ok"
                      else [row["status"][:40], "", ""])
        print(f"| {batch} | " + " | ".join(cells) + " |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": jax.devices()[0].device_kind, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
