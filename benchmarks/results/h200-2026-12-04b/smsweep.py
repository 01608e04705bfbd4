"""Harness time (sustained, power-capped) vs the persistent grid size: does leaving SMs idle raise the clock enough
to pay for itself on dense 4x8192 (8192 forward tiles = 62.06 rounds of 132; 1024 backward tickets = 7.76)?"""
import sys
import jax
from benchmarks import impls, run, timing, workloads
from jax_fa4 import kernel_backend

names = sys.argv[1].split(",")
sms_list = [int(x) for x in sys.argv[2].split(",")]
rounds = int(sys.argv[3])
wls = {w.name: w for w in workloads.all_workloads()}
impl = next(i for i in impls.default_impls() if i.name == "jax_fa4")
orig = kernel_backend.device_info.sm_count
print("device:", jax.devices()[0].device_kind, flush=True)
for name in names:
    for backward in (False, True):
        wl = wls[name]
        fns = {}
        for n in sms_list:
            kernel_backend.device_info.sm_count = (lambda n=n: n)
            fn, arg_sets = run.workload_calls(wl, impl, backward)
            jax.block_until_ready(fn(*arg_sets[0]))
            kernel_backend.device_info.sm_count = orig
            fns[n] = (fn, arg_sets)
        res = {n: [] for n in sms_list}
        for r in range(rounds):
            order = sms_list if r % 2 == 0 else sms_list[::-1]
            for n in order:
                fn, arg_sets = fns[n]
                res[n].append(timing.measure(fn, arg_sets, max_seconds=1.0)["median_s"] * 1e3)
        for n in sms_list:
            print(f"{name} {'fwd+bwd' if backward else 'fwd'} ctas={n}: harness ms "
                  f"{' '.join(f'{x:.3f}' for x in res[n])}", flush=True)
