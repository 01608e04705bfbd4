"""CPU tests of the benchmark harness: exact FLOP accounting, workload generators, and an end-to-end quick run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import masks, oracle, workloads

ROOT = Path(__file__).resolve().parents[1]


def brute_pairs(sq, sk, causal, window):
    """Independent count: build the full boolean mask from the bottom-right definition and sum it."""
    left, right = window
    i = np.arange(sq)[:, None]
    j = np.arange(sk)[None, :]
    ok = np.broadcast_to((j >= 0) & (j < sk), (sq, sk)).copy()
    if causal:
        ok &= j <= i + sk - sq
    if left >= 0:
        ok &= j >= i + sk - sq - left
    if right >= 0:
        ok &= j <= i + sk - sq + right
    return int(ok.sum())


@pytest.mark.parametrize("seed", range(6))
def test_pair_count_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        sq, sk = (int(x) for x in rng.integers(0, 70, size=2))
        causal = bool(rng.integers(2))
        window = tuple(int(x) for x in rng.integers(-1, 20, size=2))
        assert masks.attended_pairs(sq, sk, causal, window) == brute_pairs(sq, sk, causal, window), \
            (sq, sk, causal, window)


def test_pair_count_known_values():
    assert masks.attended_pairs(4, 4, True) == 10
    assert masks.attended_pairs(2, 5, True) == 4 + 5          # bottom-right: last row sees all keys
    assert masks.attended_pairs(5, 2, True) == 0 + 0 + 0 + 1 + 2  # first sq - sk rows see nothing
    assert masks.attended_pairs(3, 3, False, (1, 0)) == 1 + 2 + 2
    assert masks.attended_pairs(1, 1000, True) == 1000


def test_flops_and_bytes():
    # 4 * pairs * H * D forward, 3.5x with backward
    wl = workloads.Workload("t", "dense", (8, 8), (8, 8), True, num_heads=4, num_kv_heads=2, head_dim=16)
    assert wl.flops() == 4 * (2 * 36) * 4 * 16
    assert wl.flops(backward=True) == int(3.5 * wl.flops())
    assert wl.bytes() == (16 * 4 * 32 + 16 * 2 * 32) * 2


def test_packed_train_lengths():
    lens = workloads.lognormal_lengths(32768)
    assert sum(lens) == 32768
    assert all(16 <= n <= 8192 for n in lens[:-1]) and 1 <= lens[-1] <= 8192
    assert lens == workloads.lognormal_lengths(32768)            # deterministic
    assert len(set(lens)) > 10                                    # actually ragged
    # the clipping is applied: tiny totals are filled with documents of at least 16 tokens
    small = workloads.lognormal_lengths(1000, mean_log=1.0, sigma=0.1)
    assert all(n == 16 for n in small[:-1]) and sum(small) == 1000


def test_full_workloads_match_design():
    wls = {w.group + ":" + w.name: w for w in workloads.all_workloads()}
    dense = [w for w in wls.values() if w.group == "dense"]
    assert sorted((w.batch, w.seqlens_q[0], w.causal) for w in dense) == [(4, 8192, False), (4, 8192, True),
                                                                         (16, 2048, True)]
    for w in wls.values():
        assert (w.num_heads, w.num_kv_heads, w.head_dim, w.dtype) == (32, 8, 128, "bfloat16")
    packed = next(w for w in wls.values() if w.group == "packed-train")
    assert packed.total_q == packed.total_k == 32768 and packed.causal and packed.backward
    mixed = next(w for w in wls.values() if w.group == "mixed-serve")
    assert mixed.seqlens_q[:4] == (4096,) * 4 and mixed.seqlens_k[:4] == (4096,) * 4
    dec = np.asarray(mixed.seqlens_k[4:])
    assert len(dec) == 124 and set(mixed.seqlens_q[4:]) == {1} and dec.min() >= 1024 and dec.max() < 32768
    assert mixed.seqlens_k == next(w for w in workloads.all_workloads() if w.group == "mixed-serve").seqlens_k
    long = next(w for w in wls.values() if w.group == "long-decode")
    assert long.seqlens_q == (1,) * 32 and long.seqlens_k == (131072,) * 32 and long.memory_bound


def test_select_filters_by_prefix_and_overrides_the_head_dim():
    everything = workloads.all_workloads()
    chosen = workloads.select(everything, ["dense-4x8192", "packed"], head_dim=64)
    assert [w.name for w in chosen] == ["dense-4x8192-full-d64", "dense-4x8192-causal-d64", "packed-train-32768-d64"]
    assert {w.head_dim for w in chosen} == {64}
    assert chosen[2].flops() * 2 == workloads.select(everything, ["packed"])[0].flops()  # FLOPs scale with D
    assert workloads.select(everything, []) == everything


def test_oracle_detects_wrong_output():
    """The gate must fail a wrong result (here: keys shifted by one) and pass the right one."""
    import jax.numpy as jnp
    wl = workloads.Workload("t", "packed-train", (5, 1, 9), (5, 7, 9), True, num_heads=4, num_kv_heads=2,
                            head_dim=8, dtype="float32")
    rng = np.random.default_rng(0)
    q = rng.standard_normal((wl.total_q, 4, 8)).astype(np.float32)
    k = rng.standard_normal((wl.total_k, 2, 8)).astype(np.float32)
    v = rng.standard_normal((wl.total_k, 2, 8)).astype(np.float32)
    sample = oracle.Sample(wl, jnp.asarray(q), jnp.asarray(k), jnp.asarray(v))
    cu_q, cu_k = wl.cu_seqlens()

    def dense(q, k, v):   # independent loop implementation in float64
        out = np.zeros_like(q, dtype=np.float64)
        for b in range(wl.batch):
            sq, sk = wl.seqlens_q[b], wl.seqlens_k[b]
            for h in range(4):
                s = q[cu_q[b]:cu_q[b + 1], h] @ k[cu_k[b]:cu_k[b + 1], h // 2].T / np.sqrt(8)
                s = np.where(np.arange(sk)[None] <= np.arange(sq)[:, None] + sk - sq, s, -np.inf)
                p = np.exp(s - s.max(1, keepdims=True))
                out[cu_q[b]:cu_q[b + 1], h] = (p / p.sum(1, keepdims=True)) @ v[cu_k[b]:cu_k[b + 1], h // 2]
        return out

    good = dense(q.astype(np.float64), k, v)
    assert oracle.verdict({"out": sample.check_output(good)}, "float32") == "ok"
    bad = dense(q.astype(np.float64), np.roll(k, 1, axis=0), v)
    assert oracle.verdict({"out": sample.check_output(bad)}, "float32") == "WRONG"
    nan = good.copy()
    nan[cu_q[2] + wl.seqlens_q[2] - 1] = np.nan   # the gate always samples the last row of a sequence
    assert oracle.verdict({"out": sample.check_output(nan)}, "float32") == "WRONG"


def test_quick_run_writes_outputs(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(tmp_path),
           "--only", "dense-4x128", "packed-train", "mixed-serve", "long-decode"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name in ("results.json", "results.md", "tflops.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    record = json.loads((tmp_path / "results.json").read_text())
    rows = record["results"]
    cudnn = [r for r in rows if r["impl"].startswith("cudnn")]
    assert cudnn and all(r["status"] == "not available" for r in cudnn)
    ref = [r for r in rows if r["impl"] == "reference-xla"]
    assert {r["workload"].split("-")[0] for r in ref} >= {"dense", "packed", "mixed", "long"}
    assert all(r["status"] == "ok" and r["ms"] > 0 and max(r["errors"].values()) < 2e-2 for r in ref), ref
    assert any(r["pass"] == "fwd+bwd" for r in ref)
    assert "| workload | pass | impl |" in proc.stdout


def test_kernel_time_reads_a_profiler_trace_and_reports_no_gpu_kernels_on_cpu():
    """benchmarks.timing.kernel_time traces the calls and sums only GPU kernels: on the CPU it must run the
    function under the profiler and return None (no GPU plane), not fail or invent a time."""
    import jax
    import jax.numpy as jnp

    from benchmarks import timing

    calls = []

    def fn(x):
        calls.append(1)
        return x * 2

    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("CPU behaviour")
    assert timing.kernel_time(jax.jit(fn), (jnp.ones(8),), calls=3) is None
    assert calls  # traced (the jit body ran at least once)


def test_kernel_time_and_sustained_timeline_read_the_same_events(monkeypatch):
    """timing.kernel_time and sustained.timeline both read timing.gpu_events: per-call busy time, the span from the
    first start to the last end (idle gaps included), and the biggest kernel's early / late means."""
    from benchmarks import sustained, timing

    # 10 calls: kernel "a" (100 us, then 120 us in the last five calls) and "b" (10 us), 5 us idle between them
    events, t = [], 0
    for call in range(10):
        for name, us in (("a", 100 if call < 5 else 120), ("b", 10)):
            events.append((t * 1000, us * 1000, name))
            t += us + 5
    monkeypatch.setattr(timing, "gpu_events", lambda fn, args, calls: events)
    k = timing.kernel_time(None, (), calls=10)
    assert k["us"] == pytest.approx(120) and k["kernels"]["a"] == (1, 110) and k["kernels"]["b"] == (1, 10)
    line = sustained.timeline(None, (), 10)
    assert line["busy_us"] == pytest.approx(120)
    assert line["span_us"] == pytest.approx((t - 5) / 10)
    assert (line["early_us"], line["late_us"]) == (100, 120)


def test_sustained_reports_harness_times_and_failures_per_implementation(capsys):
    """benchmarks.sustained on the CPU: the reference is timed (no GPU timeline to add), the kernel path fails with
    its reason on one line instead of stopping the run."""
    import jax

    from benchmarks import sustained

    if any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("CPU behaviour")
    sustained.main(["--quick", "--only", "packed-train", "--impl", "jax_fa4", "reference-xla"])
    out = capsys.readouterr().out
    assert "jax_fa4: failed: ValueError" in out
    assert "reference-xla fwd: harness" in out and "busy" not in out


def test_a_skipped_forward_gates_the_backward_without_a_timed_row():
    """An implementation that skips its forward pass (jax_fa4-deterministic: deterministic= changes only the
    backward) still runs the forward as the backward's correctness gate, but reports only the skip for it."""
    import argparse

    from benchmarks import impls, run

    wl = next(w for w in workloads.all_workloads(quick=True) if w.backward)
    q, k, v, do = run.inputs(wl, seed=0)
    sample = oracle.Sample(wl, q, k, v, do)
    impl = impls.Fa4("xla", name="reference-deterministic", extra_kwargs={"deterministic": True})
    args = argparse.Namespace(fwd_only=False, max_seconds=0.05, min_reps=1, verbose=False)
    rows = []
    run.run_impl(wl, impl, [(q, k, v, do)], sample, args, rows)
    assert [(r["pass"], r["status"]) for r in rows] == [("fwd", "skipped"), ("fwd+bwd", "ok")], rows


def test_backward_balance_model():
    """The schedule model: equal tiles balance either way; a causal sequence's falling tile sizes leave a static
    stride's busiest CTA well above the average, and tickets bring it back (a greedy list schedule is within
    the largest tile of the average). Pairs of key blocks N - 1 - p and p make every ticket of a causal sequence
    equal."""
    from benchmarks import backward_balance as bb

    st, dyn = bb.imbalance([128] * 132 * 4, num_kv_heads=1, qhead_per_kv=1, paired=False)  # equal tiles
    assert st == dyn == 1.0
    work = bb.tile_work([2048] * 16, 8, 4, paired=False)
    assert work[0] == 32 * 4 + 1 and work[8] == 30 * 4 + 1  # key block 1 is seen from query block 2 on
    st, dyn = bb.imbalance([2048] * 16, paired=False)
    assert st > 1.3 and dyn < 1.05
    assert bb.dynamic_makespan(work, 132) <= work.sum() / 132 + work.max()
    pairs = bb.tile_work([2048] * 16, 8, 4)
    assert len(pairs) == len(work) // 2 and pairs.sum() == work.sum()
    assert set(pairs) == {(32 + 2) * 4 + 2}  # blocks 15 - p and p: (32 - 2 (15 - p)) + (32 - 2 p) query blocks
    odd = bb.tile_work([3 * 128], 1, 1)  # blocks (2, 0) and 1 alone
    assert list(odd) == [(2 + 1) + (6 + 1), 4 + 1]
    # a long sequence last in the batch: its tickets come at the end in batch order, first when longest first
    lens = [256] * 300 + [16384]
    assert bb.imbalance(lens, longest_first=True)[1] < 1.01 < bb.imbalance(lens)[1]


def test_mixed_serve_parts_plans_for_the_overridden_sm_count():
    """benchmarks.mixed_serve_parts times the decode part on fewer CTAs by overriding device_info.sm_count while a
    call is traced: the metadata's split policy must see the override, and the device's own count must come back."""
    import jax.numpy as jnp

    import jax_fa4
    from benchmarks import mixed_serve_parts

    def planned_sms():
        md = jax_fa4.prepare_scheduler_metadata(jnp.array([0, 1], jnp.int32), jnp.array([0, 4096], jnp.int32),
                                                max_seqlen_q=1, max_seqlen_k=4096, num_heads=4, num_kv_heads=1,
                                                head_dim=64)
        return md.config.num_sms

    before = planned_sms()
    with mixed_serve_parts.sm_count(66):
        assert planned_sms() == 66
    assert planned_sms() == before
