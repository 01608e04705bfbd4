"""Per-tile timeline of the SM90 forward kernel: what a tile costs, fixed part and per key block, and in which phase.

`python -m benchmarks.tile_timeline [--only packed-train dense-16x2048 ...] [--out DIR]` on an SM90 GPU, with a
kernel library built with FWD_SM90_TIMELINE=1 (BUILD.md; e.g. `FWD_SM90_TIMELINE=1 python -m jax_fa4.build
--reduced --out-dir /tmp/timeline` and JAX_FA4_LIBRARY=/tmp/timeline/libjax_fa4_kernels.so). Prints, per
workload: the kernel's span, each CTA's idle tail and the gaps between its tiles, a least-squares fit of tile time
= fixed + per-block * key blocks, and for full tiles of 1/2/4/8/16 key blocks the mean time of each phase
(jax_fa4/kernels/common_timeline.py names them); for a batch of decodes and prefills (mixed-serve), what each kind
cost per key block and how many CTAs worked on each over the call. With --out, the raw records go to
DIR/<workload>.npy.

Why: profiler kernel times say how long a call took, not whether a short-tile workload loses its time per tile or
per block. On the H200 (2026-12-02) this showed each tile costing ~2.9 us beyond ~1.55 us per key block: 18-22 %
of packed-train's and 16x2048 causal's forward.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from benchmarks import workloads
from jax_fa4.kernels.common_timeline import STAMPS, TILE_FIELDS, TIMELINE_FIELDS, TIMELINE_SLOTS, counter_elements

NAMES = ("cta",) + TILE_FIELDS + STAMPS


def records(counter, num_ctas):
    """{field: array over recorded tiles} from a timeline call's tile-counter buffer; stamps in microseconds since
    the earliest tile start (the 32-bit nanosecond stamps are unwrapped against it)."""
    raw = np.asarray(counter, dtype=np.int64)[1:1 + num_ctas * TIMELINE_SLOTS * TIMELINE_FIELDS]
    raw = raw.reshape(num_ctas, TIMELINE_SLOTS, TIMELINE_FIELDS) & 0xFFFFFFFF
    start = len(TILE_FIELDS) + STAMPS.index("start")
    taken = raw[:, :, start] != 0  # slots never written stay zero (the buffer is zeroed per call)
    cta = np.broadcast_to(np.arange(num_ctas)[:, None], taken.shape)[taken]
    rows = raw[taken]
    out = {"cta": cta}
    for i, name in enumerate(TILE_FIELDS):
        out[name] = np.where(rows[:, i] >= 1 << 31, rows[:, i] - (1 << 32), rows[:, i])
    ref = rows[0, start] if len(rows) else 0

    def since_ref(x):  # signed ns from the first record's start: exact across one 2**32 wrap (calls << 2 s)
        return (x - ref + (1 << 31)) % (1 << 32) - (1 << 31)

    base = since_ref(rows[:, start]).min() if len(rows) else 0
    for i, name in enumerate(STAMPS):
        out[name] = (since_ref(rows[:, len(TILE_FIELDS) + i]) - base) / 1e3
    return out


def summarize(rec, num_ctas):
    """Span, idle and the per-tile cost model of one call's records (see the module docstring)."""
    start, end, blocks, cta = rec["start"], rec["end"], rec["key_blocks"], rec["cta"]
    dur = end - start
    span = float(end.max())
    last = np.array([end[cta == c].max() if (cta == c).any() else 0.0 for c in range(num_ctas)])
    gaps = []
    for c in range(num_ctas):
        order = np.argsort(start[cta == c])
        s, e = start[cta == c][order], end[cta == c][order]
        gaps.append(float((s[1:] - e[:-1]).sum()))
    fit = np.linalg.lstsq(np.vstack([np.ones_like(dur), blocks]).T, dur, rcond=None)[0] if len(dur) > 1 else (0, 0)
    phases = {}
    for n in (1, 2, 4, 8, 16):
        m = (blocks == n) & (rec["first_s"] > start)  # full tiles stamp every phase; others repeat "start"
        if m.any():
            phases[n] = {f"{a}->{b}": float((rec[b] - rec[a])[m].mean()) for a, b in zip(STAMPS, STAMPS[1:])}
    return {"tiles": int(len(dur)), "span_us": span, "tail_idle_us": float((span - last).mean()),
            "gaps_us": float(np.mean(gaps)), "fixed_us": float(fit[0]), "per_block_us": float(fit[1]),
            "fixed_share": float(fit[0] * len(dur) / max(dur.sum(), 1e-9)), "phases": phases}


def by_kind(rec, seqlens_q, decode_rows=8, bins=10):
    """Decode-shaped tiles (their sequence has at most `decode_rows` queries) beside the others: per kind the tiles,
    CTA time, key blocks and CTA time per block, and the CTAs busy with each kind in `bins` equal slices of the span
    (mean over the slice). None unless both kinds are present. Why: in a mixed batch the decodes stream K/V on part
    of the GPU while the rest computes prefill tiles; this shows the split and what each side paid per block."""
    decode = np.asarray(seqlens_q)[rec["sequence"].astype(int)] <= decode_rows
    if decode.all() or not decode.any():
        return None
    start, end = rec["start"], rec["end"]
    span = float(end.max())
    edges = np.linspace(0.0, span, bins + 1)
    kinds = {}
    for kind, sel in (("decode", decode), ("other", ~decode)):
        busy = [float(np.clip(np.minimum(end[sel], hi) - np.maximum(start[sel], lo), 0, None).sum() / (hi - lo))
                for lo, hi in zip(edges[:-1], edges[1:])]
        time = float((end - start)[sel].sum())
        blocks = int(rec["key_blocks"][sel].sum())
        kinds[kind] = {"tiles": int(sel.sum()), "cta_us": time, "blocks": blocks,
                       "us_per_block": time / max(blocks, 1), "busy_ctas": busy}
    return kinds


def report_kinds(kinds):
    lines = []
    for kind, k in kinds.items():
        lines.append(f"  {kind}: {k['tiles']} tiles, {k['cta_us']:.0f} CTA-us, {k['blocks']} key blocks, "
                     f"{k['us_per_block']:.3f} CTA-us per block; CTAs busy per tenth of the span: "
                     + " ".join(f"{b:.0f}" for b in k["busy_ctas"]))
    return "\n".join(lines)


def report(name, s):
    lines = [f"{name}: {s['tiles']} tiles, span {s['span_us']:.1f} us, tail idle {s['tail_idle_us']:.1f} us/CTA, "
             f"gaps {s['gaps_us']:.1f} us/CTA; tile = {s['fixed_us']:.2f} + {s['per_block_us']:.3f} * blocks us "
             f"(fixed part {100 * s['fixed_share']:.1f} % of tile time)"]
    for n, p in s["phases"].items():
        lines.append(f"  {n:2d} blocks: " + " ".join(f"{k} {v:.2f}" for k, v in p.items()))
    return "\n".join(lines)


def timeline_call(wl, num_ctas, mode="auto"):
    """Records of one forward call of workload `wl` (fresh random bf16 inputs) on the kernel path."""
    import jax

    from jax_fa4 import kernel_backend, validation

    lens_q, lens_k = np.asarray(wl.seqlens_q), np.asarray(wl.seqlens_k)
    cu_q, cu_k, q, k, v = workloads.packed_inputs(wl, lens_q, lens_k)

    def call(q, k, v):
        config = validation.check_varlen(q, k, v, cu_q, cu_k, max_seqlen_q=int(lens_q.max()),
                                         max_seqlen_k=int(lens_k.max()), causal=wl.causal, implementation="kernel")
        return kernel_backend.varlen_forward(q, k, v, cu_q, cu_k, None, None, config=config, scheduler_mode=mode,
                                             tile_timeline=True)[2]

    fn = jax.jit(call)
    for _ in range(3):  # warm: compiled, clocks up
        counter = fn(q, k, v)
    return records(jax.block_until_ready(counter), num_ctas)


def main(argv=None):
    from jax_fa4 import device_info

    ap = argparse.ArgumentParser(prog="python -m benchmarks.tile_timeline", description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=["packed-train", "dense-16x2048-causal", "dense-4x8192-causal",
                                                  "mixed-serve"])
    ap.add_argument("--out", default=None, help="directory for the raw records (.npy per workload)")
    args = ap.parse_args(argv)
    num_ctas = device_info.sm_count()
    if not num_ctas:
        raise SystemExit("no GPU: run this on an SM90 GPU with a FWD_SM90_TIMELINE=1 kernel library")
    for wl in workloads.select(workloads.all_workloads(), args.only):
        rec = timeline_call(wl, num_ctas)
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in wl.name)  # no '+' in file names
            np.save(os.path.join(args.out, f"{safe}.npy"), np.stack([rec[n] for n in NAMES]))
        print(report(wl.name, summarize(rec, num_ctas)), flush=True)
        kinds = by_kind(rec, wl.seqlens_q)
        if kinds:
            print(report_kinds(kinds), flush=True)


if __name__ == "__main__":
    main()
