"""Writes what a run measured: results.json (everything), results.md (the table) and PNG plots."""

from __future__ import annotations

import json
import math
from pathlib import Path


def add_cudnn_ratios(rows):
    """ratio_vs_cudnn = best cuDNN ms / this row's ms for the same workload and pass (>1: faster than cuDNN)."""
    best = {}
    for r in rows:
        if r.get("family") == "cudnn" and r["status"] == "ok":
            key = (r["workload"], r["pass"])
            if key not in best or r["ms"] < best[key][0]:
                best[key] = (r["ms"], r["impl"])
    for r in rows:
        b = best.get((r["workload"], r["pass"]))
        if b is not None and r["status"] == "ok":
            r["ratio_vs_cudnn"] = b[0] / r["ms"]
            r["cudnn_baseline"] = b[1]
    return rows


def _fmt(x, digits=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-" if x is None else "nan"
    return f"{x:.{digits}g}"


def markdown(record):
    dev = record["device"]
    ceil = record.get("ceilings", {})
    lines = [f"# jax_fa4 benchmark ({dev['kind']}, jax {record['jax_version']}, {record['mode']})", ""]
    if ceil:
        mm, bw = ceil.get("matmul", {}), ceil.get("bandwidth", {})
        lines += [f"Device ceilings measured in this run: bf16 matmul {_fmt(mm.get('tflops'))} TFLOP/s "
                  f"(n={mm.get('n')}); copy {_fmt(bw.get('copy_tbps'))} TB/s (read+write), "
                  f"read {_fmt(bw.get('read_tbps'))} TB/s.", ""]
    lines += ["| workload | pass | impl | status | ms | TFLOP/s | TB/s | vs best cuDNN | rel err | note |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in record["results"]:
        err = max(r["errors"].values()) if r.get("errors") else None
        note = r.get("reason") or (f"baseline {r['cudnn_baseline']}" if r.get("cudnn_baseline") else "")
        lines.append("| " + " | ".join([
            r["workload"], r["pass"], r["impl"], r["status"], _fmt(r.get("ms")), _fmt(r.get("tflops")),
            _fmt(r.get("tbps")), (_fmt(r["ratio_vs_cudnn"]) + "x") if r.get("ratio_vs_cudnn") else "-",
            _fmt(err, 2), note.replace("|", "/")]) + " |")
    lines += ["", "TFLOP/s count exactly the (query, key) pairs the mask lets through (4 * pairs * H * D forward, "
              "3.5x that for fwd+bwd). TB/s = minimum bytes (Q, K, V read + O written) / time. "
              "vs best cuDNN = best cuDNN time / this time (>1 is faster)."]
    return "\n".join(lines) + "\n"


def plots(record, out_dir):
    """TFLOP/s (and TB/s for memory-bound workloads) by workload and implementation; ablation if measured."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    ok = [r for r in record["results"] if r["status"] == "ok" and not r["workload"].startswith("ablation")]
    for metric, unit, fname, ceiling in (("tflops", "TFLOP/s", "tflops.png", ("matmul", "tflops")),
                                          ("tbps", "TB/s", "bandwidth.png", ("bandwidth", "copy_tbps"))):
        rows = [r for r in ok if r.get(metric) is not None and (metric == "tflops") != r.get("memory_bound", False)]
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * max(1, len({(r['workload'], r['pass']) for r in rows}))), 4.5))
        cases = list(dict.fromkeys((r["workload"], r["pass"]) for r in rows))
        impls = list(dict.fromkeys(r["impl"] for r in rows))
        width = 0.8 / max(1, len(impls))
        for j, impl in enumerate(impls):
            xs, ys = [], []
            for i, case in enumerate(cases):
                for r in rows:
                    if (r["workload"], r["pass"]) == case and r["impl"] == impl:
                        xs.append(i + j * width)
                        ys.append(r[metric])
            ax.bar(xs, ys, width, label=impl)
        ceil = record.get("ceilings", {}).get(ceiling[0], {}).get(ceiling[1])
        if ceil:
            ax.axhline(ceil, color="k", ls="--", lw=1, label=f"measured {ceiling[0]} ceiling")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(cases))])
        ax.set_xticklabels([f"{w}\n{p}" for w, p in cases], fontsize=7, rotation=20)
        ax.set_ylabel(unit)
        ax.set_title(f"{unit} by workload ({record['device']['kind']})" + ("" if rows else ": no timed results"))
        if impls or ceil:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(Path(out_dir) / fname, dpi=120)
        plt.close(fig)
        written.append(fname)
    modes = [r for r in record["results"] if r["impl"].startswith("jax_fa4[") and r["status"] == "ok"
             and r["pass"] == "fwd"]
    extra = [r for r in record["results"] if r["workload"].startswith("ablation") and r["status"] == "ok"]
    panels = [(w, [r for r in modes if r["workload"] == w]) for w in dict.fromkeys(r["workload"] for r in modes)]
    if extra:
        panels.append(("metadata: prepare, 32 layers", extra))
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4.5), squeeze=False)
        for ax, (title, rows) in zip(axes[0], panels):
            labels = [r["impl"] if r in modes else f"{r['workload'][9:]}\n{r['impl']}" for r in rows]
            ax.bar(range(len(rows)), [r["ms"] for r in rows])
            ax.set_xticks(range(len(rows)))
            ax.set_xticklabels(labels, fontsize=6, rotation=30, ha="right")
            ax.set_ylabel("ms (forward)" if rows[0] in modes else "ms")
            ax.set_title(title, fontsize=8)
        fig.suptitle(f"scheduler ablation ({record['device']['kind']})")
        fig.tight_layout()
        fig.savefig(Path(out_dir) / "ablation.png", dpi=120)
        plt.close(fig)
        written.append("ablation.png")
    return written


def write(record, out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    add_cudnn_ratios(record["results"])
    record["plots"] = plots(record, out)
    (out / "results.json").write_text(json.dumps(record, indent=1, default=float))
    md = markdown(record)
    (out / "results.md").write_text(md)
    return md
