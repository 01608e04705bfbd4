"""bwdtime.py with the SM count the library sees forced to N (so the backward's grid is N CTAs): label, N, workloads."""
import sys
import jax_fa4.device_info as di
N = int(sys.argv[2])
di.sm_count = lambda device=0: N
from benchmarks import impls, run, timing, workloads
label = sys.argv[1]
wls = {w.name: w for w in workloads.all_workloads()}
impl = next(i for i in impls.default_impls() if i.name == "jax_fa4")
for name in sys.argv[3].split(","):
    fn, arg_sets = run.workload_calls(wls[name], impl, True)
    r = timing.kernel_time(fn, arg_sets[0], calls=8)
    top = sorted(r["kernels"].items(), key=lambda kv: -kv[1][0] * kv[1][1])[:2]
    print(f"{label} grid {N} {name}: total {r['us']:.0f} us; " + "; ".join(f"{n[:40]} {c * us:.0f}" for n, (c, us) in top),
          flush=True)
