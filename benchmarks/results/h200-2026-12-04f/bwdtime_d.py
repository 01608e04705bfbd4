"""bwdtime.py at a head dim: label, head dim, workload names (kernel time of each kernel of one fwd+bwd call)."""
import sys
from benchmarks import impls, run, timing, workloads
label, hd = sys.argv[1], int(sys.argv[2])
impl = next(i for i in impls.default_impls() if i.name == "jax_fa4")
for wl in workloads.select(workloads.all_workloads(), sys.argv[3].split(","), hd):
    fn, arg_sets = run.workload_calls(wl, impl, True)
    r = timing.kernel_time(fn, arg_sets[0], calls=8)
    top = sorted(r["kernels"].items(), key=lambda kv: -kv[1][0] * kv[1][1])[:2]
    print(f"{label} {wl.name}: total {r['us']:.0f} us; " + "; ".join(f"{n[:40]} {c * us:.0f}" for n, (c, us) in top),
          flush=True)
