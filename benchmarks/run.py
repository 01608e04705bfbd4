"""Entry point: `python -m benchmarks.run [--quick] [--out DIR] [--only WORKLOAD...] [--impl NAME...]`.

For each workload: fresh random bf16 inputs, then for each implementation in the same process: prepare its layout,
compile, pass the correctness gate (benchmarks.oracle), and only then time forward (and forward+backward where the
workload asks). Failures are recorded, never fatal, so one broken implementation cannot hide the others.
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import sys
import time
import traceback

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import impls as impls_mod
from benchmarks import ablation, oracle, report, timing, workloads

ABLATION_WORKLOADS = ("packed-train", "mixed-serve")


def _device_info():
    d = jax.devices()[0]
    stats = {}
    try:
        stats = d.memory_stats() or {}
    except Exception:
        pass
    return {"kind": getattr(d, "device_kind", str(d)), "platform": d.platform, "count": jax.device_count(),
            "memory_bytes": stats.get("bytes_limit")}


def _l2_bytes():
    try:
        from jax_fa4 import device_info
        return device_info.l2_cache_bytes() or 50 << 20
    except Exception:
        return 50 << 20


def inputs(wl, seed):
    """Fresh packed q, k, v and a cotangent do, generated on the device."""
    kq, kk, kv, kd = jax.random.split(jax.random.PRNGKey(seed), 4)
    dt = jnp.dtype(wl.dtype)
    q = jax.random.normal(kq, (wl.total_q, wl.num_heads, wl.head_dim), dt)
    k = jax.random.normal(kk, (wl.total_k, wl.num_kv_heads, wl.head_dim), dt)
    v = jax.random.normal(kv, (wl.total_k, wl.num_kv_heads, wl.head_dim), dt)
    do = jax.random.normal(kd, (wl.total_q, wl.num_heads, wl.head_dim), dt)
    return q, k, v, do


def _loss_grad(attn):
    def loss(d, s, do):
        out = attn(d, s)
        return sum(jnp.sum(o.astype(jnp.float32) * g.astype(jnp.float32))
                   for o, g in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(do)))
    return jax.jit(jax.grad(loss))


def timed_calls(prepared, sets, backward):
    """(fn, argument sets) the harness times: the jitted forward, or (backward) the gradient of sum(o * do), over
    `prepared` (one Prepared per input set of `sets`, in the same order)."""
    if backward:
        return _loss_grad(prepared[0].attn), [(p.diff_args, p.static_args, p.layout_do(do))
                                              for p, (_, _, _, do) in zip(prepared, sets)]
    return jax.jit(prepared[0].attn), [(p.diff_args, p.static_args) for p in prepared]


def workload_calls(wl, impl, backward, num_sets=1):
    """timed_calls on `num_sets` fresh input sets of a workload: for the tools that profile what the harness times
    (benchmarks.kernel_breakdown, sustained, ncu_call)."""
    sets = [inputs(wl, seed=seed) for seed in range(num_sets)]
    return timed_calls([impl.prepare(wl, q, k, v) for q, k, v, _ in sets], sets, backward)


def _short(exc):
    msg = f"{type(exc).__name__}: {exc}".strip().replace("\n", " ")
    return msg[:300]


def _row(wl, impl, pass_, status, **kw):
    backward = pass_ == "fwd+bwd"
    r = {"workload": wl.name, "group": wl.group, "impl": impl.name, "family": impl.family, "pass": pass_,
         "status": status, "flops": wl.flops(backward), "bytes": wl.bytes(), "memory_bound": wl.memory_bound,
         "describe": wl.describe()}
    r.update(kw)
    return r


def _passes(wl):
    return ["fwd", "fwd+bwd"] if wl.backward else ["fwd"]


def run_impl(wl, impl, sets, sample, args, rows):
    """Gate then time one implementation on one workload; appends rows (one per pass)."""
    passes = _passes(wl) if not args.fwd_only else ["fwd"]
    for pass_ in list(passes):
        reason = impl.unavailable(wl, pass_ == "fwd+bwd")
        if reason:
            status = "skipped" if reason.startswith("skipped") else "not available"
            rows.append(_row(wl, impl, pass_, status, reason=reason))
            passes.remove(pass_)
    if not passes:
        return
    try:
        prepared = [impl.prepare(wl, q, k, v) for q, k, v, _ in sets]
    except impls_mod.NotAvailable as exc:
        rows.extend(_row(wl, impl, p, "not available", reason=str(exc)) for p in passes)
        return
    except Exception as exc:
        rows.extend(_row(wl, impl, p, "failed", reason="prepare: " + _short(exc)) for p in passes)
        return
    p0 = prepared[0]
    fwd, arg_sets = timed_calls(prepared, sets, backward=False)
    # correctness gate on the forward output first: a wrong forward is never timed, in either pass
    try:
        out = fwd(*arg_sets[0])
        errors = {"out": sample.check_output(p0.to_packed_out(out))}
        del out
    except Exception as exc:
        kernel = impl.family == "jax_fa4" and getattr(impl, "implementation", "") == "kernel"
        status = "not available" if kernel or isinstance(exc, impls_mod.NotAvailable) else "failed"
        if args.verbose:
            traceback.print_exc()
        rows.extend(_row(wl, impl, p, status, reason=_short(exc)) for p in passes)
        return
    if oracle.verdict(errors, wl.dtype) != "ok":
        rows.extend(_row(wl, impl, p, "WRONG", errors=errors, reason="output differs from float64 oracle")
                    for p in passes)
        return
    if "fwd" in passes:  # a skipped forward still gates the backward, but is not timed or reported
        t = timing.measure(fwd, arg_sets, max_seconds=args.max_seconds, min_reps=args.min_reps)
        rows.append(_timed_row(wl, impl, "fwd", t, errors))
        print(f"  {impl.name:22s} fwd      {t['median_s'] * 1e3:9.3f} ms  err {errors['out']:.2e}", flush=True)
    if "fwd+bwd" not in passes:
        return
    try:
        grad, grad_sets = timed_calls(prepared, sets, backward=True)
        g = grad(*grad_sets[0])
        gerr = sample.check_grads(*p0.to_packed_grads(g))
        del g
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        rows.append(_row(wl, impl, "fwd+bwd", "failed", reason=_short(exc)))
        return
    gerr = {"out": errors["out"], **gerr}
    if oracle.verdict(gerr, wl.dtype) != "ok":
        rows.append(_row(wl, impl, "fwd+bwd", "WRONG", errors=gerr, reason="gradients differ from float64 oracle"))
        return
    t = timing.measure(grad, grad_sets, max_seconds=args.max_seconds, min_reps=args.min_reps)
    rows.append(_timed_row(wl, impl, "fwd+bwd", t, gerr))
    print(f"  {impl.name:22s} fwd+bwd  {t['median_s'] * 1e3:9.3f} ms  err {max(gerr.values()):.2e}", flush=True)


def _timed_row(wl, impl, pass_, t, errors):
    s = t["median_s"]
    flops = wl.flops(pass_ == "fwd+bwd")
    return _row(wl, impl, pass_, "ok", ms=s * 1e3, tflops=flops / s / 1e12,
                tbps=wl.bytes() / s / 1e12 if pass_ == "fwd" else None, errors=errors, timing=t)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="toy sizes (smoke test; used on CPU by the tests)")
    ap.add_argument("--out", default="bench_out", help="output directory (default bench_out/)")
    ap.add_argument("--only", nargs="*", default=[], help="workload names or groups (prefix match)")
    ap.add_argument("--impl", nargs="*", default=[], help="implementation names (prefix match)")
    ap.add_argument("--max-seconds", type=float, default=None, help="time budget per measurement")
    ap.add_argument("--min-reps", type=int, default=None)
    ap.add_argument("--fwd-only", action="store_true", help="skip forward+backward passes")
    ap.add_argument("--head-dim", type=int, help="run the workloads at this head dim instead (name gets -d<D>)")
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    on_cpu = jax.default_backend() == "cpu"
    if args.max_seconds is None:
        args.max_seconds = 0.2 if (args.quick or on_cpu) else 1.5
    if args.min_reps is None:
        args.min_reps = 3 if (args.quick or on_cpu) else 10
    start = time.time()
    dev = _device_info()
    budget = int(0.45 * dev["memory_bytes"]) if dev["memory_bytes"] else (8 << 30)
    impls = [i for i in impls_mod.default_impls(memory_budget=budget)
             if not args.impl or any(i.name.startswith(n) for n in args.impl)]
    print(f"device: {dev['kind']} ({dev['platform']}), jax {jax.__version__}, python {platform.python_version()}",
          flush=True)

    record = {"device": dev, "jax_version": jax.__version__, "python": platform.python_version(),
              "mode": "quick" if args.quick else "full", "argv": sys.argv[1:], "results": []}
    try:
        import jax_fa4.kernel_backend as kb
        record["jax_fa4_kernel_status"] = kb.unavailable_reason() or "available"
    except Exception as exc:
        record["jax_fa4_kernel_status"] = f"import failed: {_short(exc)}"

    big = not (args.quick or on_cpu)
    print("measuring device ceilings ...", flush=True)
    record["ceilings"] = {"matmul": timing.matmul_ceiling(8192 if big else 256),
                          "bandwidth": timing.bandwidth_ceiling((2 << 30) if big else (8 << 20))}
    print(f"  matmul {record['ceilings']['matmul']['tflops']:.1f} TFLOP/s, copy "
          f"{record['ceilings']['bandwidth']['copy_tbps']:.2f} TB/s", flush=True)

    rows = record["results"]
    l2 = _l2_bytes()
    abl_impls, abl_reason = ablation.mode_impls()
    for index, wl in enumerate(workloads.select(workloads.all_workloads(args.quick), args.only,
                                                            args.head_dim)):
        print(f"[{time.time() - start:6.1f}s] {wl.name}: {wl.describe()}", flush=True)
        per_set = wl.bytes() * (2 if wl.backward else 1)
        n_sets = 1 if (per_set > 2 * l2 or on_cpu) else 3   # rotate only when inputs would sit in L2
        sets = [inputs(wl, seed=1000 * index + i) for i in range(n_sets)]
        q, k, v, do = sets[0]
        sample = oracle.Sample(wl, q, k, v, do if wl.backward else None)
        candidates = [i for i in impls if impls_mod.applies(i, wl)]
        if not args.no_ablation and wl.group in ABLATION_WORKLOADS:
            candidates += abl_impls
        for impl in candidates:
            run_impl(wl, impl, [tuple(s) for s in sets], sample, args, rows)
            gc.collect()
        if not args.no_ablation and wl.group in ABLATION_WORKLOADS:
            if abl_reason:
                rows.append(ablation._row(wl, "jax_fa4 scheduler modes", "fwd", "not available", reason=abl_reason))
            rows.extend(ablation.prepare_latency(wl, args))
            rows.extend(ablation.layers(wl, q, k, v, args))
        del sets, q, k, v, do, sample
        gc.collect()
    record["elapsed_s"] = time.time() - start
    md = report.write(record, args.out)
    print()
    print(md)
    print(f"wrote {args.out}/results.json, results.md, {', '.join(record['plots'])} in {record['elapsed_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
