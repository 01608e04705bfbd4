"""One call of a benchmark workload inside a CUDA profiler range, for Nsight Compute: compiling and warming up
happen outside it, so ncu profiles exactly the kernels of one call.

    ncu --profile-from-start off --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis \\
        [-k regex:BwdDkdv] --page details python -m benchmarks.ncu_call packed-train-32768 jax_fa4 [--backward]

`--clock-control none` keeps the GPU's own clocks (ncu otherwise locks them to base clocks). Workload and
implementation names are those of `benchmarks.run` (exact); `--scheduler-mode single-tile` (jax_fa4) profiles another
of the forward's schedulers."""

import argparse

import jax

from benchmarks import impls, run, workloads


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload")
    ap.add_argument("impl")
    ap.add_argument("--backward", action="store_true", help="forward + backward (jax.grad) instead of forward")
    ap.add_argument("--quick", action="store_true", help="toy sizes")
    ap.add_argument("--scheduler-mode", help="jax_fa4 only: the forward's scheduler_mode (e.g. single-tile)")
    args = ap.parse_args(argv)
    from cuda.bindings import runtime  # cuda-python: a dependency of jax_fa4's device queries

    wl = next(w for w in workloads.all_workloads(quick=args.quick) if w.name == args.workload)
    impl = next(i for i in impls.default_impls() if i.name == args.impl)
    if args.scheduler_mode:
        impl.extra_kwargs["scheduler_mode"] = args.scheduler_mode
    fn, arg_sets = run.workload_calls(wl, impl, args.backward)
    for _ in range(3):
        jax.block_until_ready(fn(*arg_sets[0]))
    runtime.cudaProfilerStart()
    jax.block_until_ready(fn(*arg_sets[0]))
    runtime.cudaProfilerStop()
    print(f"profiled one {'fwd+bwd' if args.backward else 'fwd'} call of {wl.name} ({impl.name})")


if __name__ == "__main__":
    main()
