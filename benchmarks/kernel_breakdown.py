"""Every GPU kernel one jitted call of a benchmark workload launches, with its profiler time (CUPTI): where the
milliseconds of `benchmarks.run` go. `python -m benchmarks.kernel_breakdown [--only packed-train ...]
[--fwd-only]` on an SM90 GPU; the kernel path, default options (deterministic=False).

Back-to-back calls keep the GPU busy (as in `benchmarks.timing.measure`), so each line is a kernel's mean time
within such a run; the first line adds them up per call."""

import argparse

import jax
import jax.numpy as jnp

import jax_fa4
from benchmarks import run, timing, workloads


def breakdown(wl, backward, calls=5):
    """{"us": kernel microseconds per call, "kernels": {name: (launches per call, mean us)}} (timing.kernel_time)."""
    cu_q, cu_k = (jnp.asarray(c, jnp.int32) for c in wl.cu_seqlens())
    q, k, v, dout = run.inputs(wl, seed=0)

    def attn(q, k, v):
        return jax_fa4.varlen_attention(q, k, v, cu_q, cu_k, max_seqlen_q=max(wl.seqlens_q),
                                        max_seqlen_k=max(wl.seqlens_k), causal=wl.causal, window_size=wl.window,
                                        implementation="kernel")

    if backward:
        fn = jax.jit(jax.grad(lambda q, k, v: jnp.sum(attn(q, k, v) * dout, dtype=jnp.float32), argnums=(0, 1, 2)))
    else:
        fn = jax.jit(attn)
    return timing.kernel_time(fn, (q, k, v), calls=calls)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=["packed-train"], help="workload names or groups (prefix match)")
    ap.add_argument("--fwd-only", action="store_true", help="the forward call only, not forward + backward")
    args = ap.parse_args(argv)
    print(f"device: {jax.devices()[0].device_kind}")
    for wl in workloads.all_workloads():
        if not any(wl.name.startswith(p) or wl.group == p for p in args.only):
            continue
        for backward in ((False,) if args.fwd_only or not wl.backward else (False, True)):
            r = breakdown(wl, backward)
            if r is None:
                print(f"{wl.name}: no GPU kernel in the trace")
                continue
            print(f"{wl.name} {'fwd+bwd' if backward else 'fwd'}: {r['us']:.0f} us of kernels per call")
            for name, (n, us) in sorted(r["kernels"].items(), key=lambda kv: -kv[1][0] * kv[1][1]):
                print(f"    {n:4.0f} x {us:8.1f} us  {name[:100]}")


if __name__ == "__main__":
    main()
