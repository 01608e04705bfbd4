"""Harness time against kernel time, in a short burst and under sustained load: where the milliseconds of
`benchmarks.run` go beyond the sum of the kernels.

`python -m benchmarks.sustained [--only dense-4x8192-causal packed-train] [--impl jax_fa4 cudnn-padded]
[--backward]` on a GPU prints, per workload and implementation: the harness median (`timing.measure`, before and
after the traces), and for a burst of 20 and a run of 200 back-to-back calls the profiler's busy time per call,
the timeline span per call (first kernel start to last kernel end: busy plus idle) and the mean duration of the
biggest kernel over the first and the last fifth of its launches (a drift there is the clock, not the code).

On the H200 (2026-12-02) spans equal busy times within 1 %, so calls leave the GPU no idle gaps, while the biggest
kernel ran 4-8 % longer late in a 200-call run than early: the GPU sat at its 700 W power limit (nvidia-smi
throttle reason 0x4, SM clock 1.6-1.7 GHz instead of 1.98 GHz), for jax_fa4 and cuDNN alike. That is why
harness times exceed a short profile's kernel sum (`benchmarks.kernel_breakdown`) by 5-10 %. To watch the clock
meanwhile: `nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_throttle_reasons.active --format=csv
-lms 200` in the background (results/h200-2026-12-02e/nvidia-smi-during-sustained.csv)."""

import argparse

import jax

from benchmarks import impls, run, timing, workloads


def timeline(fn, args, calls):
    """{"busy_us", "span_us"} per call and the biggest kernel's early / late mean (us), or None without GPU kernels."""
    events = timing.gpu_events(fn, args, calls=calls)
    if events is None:
        return None
    total = {}
    for _, duration, name in events:
        total[name] = total.get(name, 0) + duration
    top = max(total, key=total.get)
    biggest = [duration / 1e3 for _, duration, name in events if name == top]
    fifth = max(1, len(biggest) // 5)
    return {"busy_us": sum(total.values()) / calls / 1e3,
            "span_us": (max(start + duration for start, duration, _ in events) - events[0][0]) / calls / 1e3,
            "early_us": sum(biggest[:fifth]) / fifth, "late_us": sum(biggest[-fifth:]) / fifth}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=["dense-4x8192-causal", "packed-train"],
                    help="workload names or groups (prefix match)")
    ap.add_argument("--impl", nargs="*", default=["jax_fa4", "cudnn-padded", "cudnn-packed"],
                    help="implementation names (exact)")
    ap.add_argument("--backward", action="store_true", help="time forward + backward (jax.grad) instead")
    ap.add_argument("--quick", action="store_true", help="toy sizes (smoke test)")
    args = ap.parse_args(argv)
    known = {impl.name: impl for impl in impls.default_impls()}
    print(f"device: {jax.devices()[0].device_kind}")
    for wl in workloads.select(workloads.all_workloads(quick=args.quick), args.only):
        for name in args.impl:
            impl = known[name]
            reason = impl.unavailable(wl, args.backward)
            if reason:
                print(f"{wl.name} {name}: {reason}")
                continue
            try:
                fn, arg_sets = run.workload_calls(wl, impl, args.backward, num_sets=2)
                before = timing.measure(fn, arg_sets, max_seconds=0.5)["median_s"] * 1e3
            except Exception as exc:  # e.g. the kernel path on a machine without a GPU
                print(f"{wl.name} {name}: failed: {run._short(exc)}")
                continue
            burst, sustained = (timeline(fn, arg_sets[0], n) for n in (20, 200))
            after = timing.measure(fn, arg_sets, max_seconds=0.5)["median_s"] * 1e3
            line = f"{wl.name} {name} {'fwd+bwd' if args.backward else 'fwd'}: harness {before:.3f} / {after:.3f} ms"
            for label, t in (("20 calls", burst), ("200 calls", sustained)):
                if t is not None:
                    line += (f" | {label}: busy {t['busy_us']:.0f} us, span {t['span_us']:.0f} us, biggest kernel "
                             f"{t['early_us']:.0f} -> {t['late_us']:.0f} us")
            print(line, flush=True)


if __name__ == "__main__":
    main()
