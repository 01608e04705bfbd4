"""Every GPU kernel one jitted call of a benchmark workload launches, with its profiler time (CUPTI): where the
milliseconds of `benchmarks.run` go. `python -m benchmarks.kernel_breakdown [--only packed-train ...]
[--fwd-only] [--head-dim 96] [--deterministic]` on an SM90 GPU; the kernel path, default options
(deterministic=False unless asked).

Back-to-back calls keep the GPU busy (as in `benchmarks.timing.measure`), so each line is a kernel's mean time
within such a run; the first line adds them up per call."""

import argparse

import jax

from benchmarks import impls, run, timing, workloads


def breakdown(wl, backward, calls=5, deterministic=False):
    """{"us": kernel microseconds per call, "kernels": {name: (launches per call, mean us)}} (timing.kernel_time)
    of the function `benchmarks.run` times for the jax_fa4 row (the jax_fa4-deterministic row if asked)."""
    name = "jax_fa4-deterministic" if deterministic else "jax_fa4"
    impl = next(i for i in impls.default_impls() if i.name == name)
    fn, arg_sets = run.workload_calls(wl, impl, backward)
    return timing.kernel_time(fn, arg_sets[0], calls=calls)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=["packed-train"], help="workload names or groups (prefix match)")
    ap.add_argument("--fwd-only", action="store_true", help="the forward call only, not forward + backward")
    ap.add_argument("--head-dim", type=int, help="run the workloads at this head dim instead (name gets -d<D>)")
    ap.add_argument("--deterministic", action="store_true", help="backward with deterministic=True (two kernels)")
    args = ap.parse_args(argv)
    print(f"device: {jax.devices()[0].device_kind}")
    for wl in workloads.select(workloads.all_workloads(), args.only, args.head_dim):
        for backward in ((False,) if args.fwd_only or not wl.backward else (False, True)):
            r = breakdown(wl, backward, deterministic=args.deterministic)
            if r is None:
                print(f"{wl.name}: no GPU kernel in the trace")
                continue
            print(f"{wl.name} {'fwd+bwd' if backward else 'fwd'}: {r['us']:.0f} us of kernels per call")
            for name, (n, us) in sorted(r["kernels"].items(), key=lambda kv: -kv[1][0] * kv[1][1]):
                print(f"    {n:4.0f} x {us:8.1f} us  {name[:100]}")


if __name__ == "__main__":
    main()
