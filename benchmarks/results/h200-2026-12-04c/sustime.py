"""Sustained harness timing (timing.measure, no oracle check) of jax_fa4 forward [+backward] calls: label, workloads,
max seconds, then optionally 'bwd' (time forward + backward) or 'fwd', and a scheduler_mode."""
import sys
from benchmarks import impls, run, timing, workloads
label, names, secs = sys.argv[1], sys.argv[2].split(","), float(sys.argv[3])
backward = len(sys.argv) > 4 and sys.argv[4] == "bwd"
extra = {"scheduler_mode": sys.argv[5]} if len(sys.argv) > 5 else None
wls = {w.name: w for w in workloads.all_workloads()}
impl = impls.Fa4("kernel", extra_kwargs=extra)
for name in names:
    fn, arg_sets = run.workload_calls(wls[name], impl, backward, num_sets=2)
    r = timing.measure(fn, arg_sets, max_seconds=secs)
    print(f"{label} {name} {'fwd+bwd' if backward else 'fwd'}: median {r['median_s'] * 1e3:.3f} ms "
          f"(min {r['min_s'] * 1e3:.3f}, max {r['max_s'] * 1e3:.3f}, {r['reps']} x {r['calls_per_sample']})", flush=True)
