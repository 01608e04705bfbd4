"""Scheduler modes x GQA packing, interleaved: `python -m benchmarks.scheduler_modes` (GPU with the kernel library).

Why: the "auto" scheduler mode (jax_fa4.kernel_backend.resolve_scheduler_mode) picks the two-ended walk only for
calls that pack GQA heads; this measures that choice on packed-train, mixed-serve and dense 16x2048 causal. Each
(packing, mode) pair is timed in `--rounds` interleaved rounds (so drift hits every pair alike), the same inputs and
caller-made metadata throughout; the minimum of the round medians is reported.
"""

import argparse

import jax
import jax.numpy as jnp

import jax_fa4
from benchmarks import timing, workloads

MODES = ("dynamic", "dynamic-fifo", "dynamic-two-ended")
WORKLOADS = ("packed-train", "mixed-serve", "dense-16x2048")


def compiled_calls(wl):
    """{(pack_gqa, mode): (jitted call, its metadata)} for one workload, each compiled once."""
    cu_q, cu_k = (jnp.asarray(c) for c in wl.cu_seqlens())
    msq, msk = max(wl.seqlens_q), max(wl.seqlens_k)
    calls = {}
    for pack in (False, True):
        md = jax_fa4.prepare_scheduler_metadata(cu_q, cu_k, max_seqlen_q=msq, max_seqlen_k=msk,
                                                num_heads=wl.num_heads, num_kv_heads=wl.num_kv_heads,
                                                head_dim=wl.head_dim, causal=wl.causal, pack_gqa=pack)
        for mode in MODES:
            calls[(pack, mode)] = (jax.jit(lambda q, k, v, md, mode=mode: jax_fa4.varlen_attention(
                q, k, v, cu_q, cu_k, max_seqlen_q=msq, max_seqlen_k=msk, causal=wl.causal, scheduler_metadata=md,
                implementation="kernel", scheduler_mode=mode)), md)
    return calls


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scheduler_modes", description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    for wl in workloads.all_workloads():
        if not wl.name.startswith(WORKLOADS):
            continue
        key = jax.random.PRNGKey(0)
        q = jax.random.normal(key, (wl.total_q, wl.num_heads, wl.head_dim), jnp.bfloat16)
        k = jax.random.normal(key, (wl.total_k, wl.num_kv_heads, wl.head_dim), jnp.bfloat16)
        v = jax.random.normal(key, (wl.total_k, wl.num_kv_heads, wl.head_dim), jnp.bfloat16)
        calls = compiled_calls(wl)
        for fn, md in calls.values():
            jax.block_until_ready(fn(q, k, v, md))
        times = {name: [] for name in calls}
        for _ in range(args.rounds):
            for name, (fn, md) in calls.items():
                t = timing.measure(fn, [(q, k, v, md)], max_seconds=0.25, min_reps=8)
                times[name].append(t["median_s"] * 1e3)
        for (pack, mode), ts in times.items():
            print(f"{wl.name:28s} pack={pack!s:5s} {mode:18s} " + " ".join(f"{t:.3f}" for t in ts)
                  + f"  min {min(ts):.3f} ms", flush=True)


if __name__ == "__main__":
    main()
