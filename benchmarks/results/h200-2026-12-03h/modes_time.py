"""Kernel time of the dense-4x8192 forward (full, causal) per scheduler mode, interleaved rounds."""
import jax
from benchmarks import impls, run, timing, workloads
wls = [w for w in workloads.all_workloads() if w.name in ("dense-4x8192-full", "dense-4x8192-causal")]
calls = {}
for wl in wls:
    for mode in ("dynamic", "single-tile", "static"):
        impl = impls.Fa4("kernel", extra_kwargs={"scheduler_mode": mode})
        fn, sets = run.workload_calls(wl, impl, False)
        calls[(wl.name, mode)] = (fn, sets[0])
res = {k: [] for k in calls}
for r in range(2):
    for k, (fn, a) in calls.items():
        res[k].append(timing.kernel_time(fn, a, calls=10)["us"])
        res[k].append(timing.measure(fn, [a], max_seconds=0.3)["median_s"] * 1e6)
for k, v in res.items():
    print(k, "kernel us / harness us per round:", " ".join(f"{x:.0f}" for x in v), flush=True)
