"""Scheduler ablation (DESIGN.md section 6): scheduler modes, prepare latency, metadata once vs per layer.

These need hooks from jax_fa4 that may not exist yet; each piece checks for its hook and otherwise yields a
"not available" row saying what is missing, so the table shows the gap rather than hiding it.
Hooks looked for: `jax_fa4.SCHEDULER_MODES` (names accepted by `varlen_attention(..., scheduler_mode=...)`),
`jax_fa4.prepare_scheduler_metadata(..., implementation="xla"|"kernel")`, and
`varlen_attention(..., scheduler_metadata=md, implementation="kernel")`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks import impls as impls_mod
from benchmarks import timing

LAYERS = 32


def _short(exc):
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]


def _fa4():
    try:
        import jax_fa4
        return jax_fa4, None
    except Exception as exc:
        return None, f"import jax_fa4 failed: {_short(exc)}"


def mode_impls():
    """(implementations, reason): jax_fa4 kernels under each scheduler mode the package exposes."""
    fa4, reason = _fa4()
    if fa4 is None:
        return [], reason
    modes = getattr(fa4, "SCHEDULER_MODES", None)
    if not modes:
        return [], "jax_fa4 exposes no SCHEDULER_MODES (varlen_attention(..., scheduler_mode=...)) yet"
    return [impls_mod.Fa4("kernel", extra_kwargs={"scheduler_mode": m}, name=f"jax_fa4[{m}]") for m in modes], None


def _row(wl, impl, pass_, status, **kw):
    r = {"workload": "ablation:" + wl.name, "group": "ablation", "impl": impl, "family": "jax_fa4", "pass": pass_,
         "status": status}
    r.update(kw)
    return r


def _md_kwargs(wl):
    return dict(max_seqlen_q=int(max(wl.seqlens_q)), max_seqlen_k=int(max(wl.seqlens_k)), num_heads=wl.num_heads,
                num_kv_heads=wl.num_kv_heads, head_dim=wl.head_dim, causal=wl.causal, window_size=tuple(wl.window),
                total_q=wl.total_q)


def prepare_latency(wl, args):
    """Time making the scheduler metadata (jnp path and prepare kernel) for this workload's cu_seqlens."""
    fa4, reason = _fa4()
    prep = getattr(fa4, "prepare_scheduler_metadata", None) if fa4 else None
    rows = []
    for impl in ("xla", "kernel"):
        name = f"prepare_scheduler_metadata[{impl}]"
        if prep is None:
            rows.append(_row(wl, name, "prepare", "not available", reason=reason or "no prepare_scheduler_metadata"))
            continue
        cu_q, cu_k = (jnp.asarray(c) for c in wl.cu_seqlens())
        fn = jax.jit(lambda a, b, impl=impl: prep(a, b, implementation=impl, **_md_kwargs(wl)))
        try:
            jax.block_until_ready(fn(cu_q, cu_k))
        except Exception as exc:
            rows.append(_row(wl, name, "prepare", "not available", reason=_short(exc)))
            continue
        t = timing.measure(fn, [(cu_q, cu_k)], max_seconds=args.max_seconds, min_reps=args.min_reps)
        rows.append(_row(wl, name, "prepare", "ok", ms=t["median_s"] * 1e3, timing=t))
    return rows


def layers(wl, q, k, v, args):
    """32 chained forward calls with metadata made once per step vs once per layer (inside the layer loop)."""
    fa4, reason = _fa4()
    if fa4 is None or not hasattr(fa4, "prepare_scheduler_metadata"):
        return [_row(wl, f"{LAYERS} layers", "fwd", "not available", reason=reason or "no metadata API")]
    cu_q, cu_k = (jnp.asarray(c) for c in wl.cu_seqlens())
    kw = _md_kwargs(wl)
    attn_kw = dict(max_seqlen_q=kw["max_seqlen_q"], max_seqlen_k=kw["max_seqlen_k"], causal=wl.causal,
                   window_size=kw["window_size"], implementation="kernel")

    def make(per_layer):
        def f(q, k, v, cu_q, cu_k):
            md_once = None if per_layer else fa4.prepare_scheduler_metadata(cu_q, cu_k, **kw)

            def body(o, _):
                if per_layer:   # depend on the carry so XLA cannot hoist the prepare out of the loop
                    bump = (o[0, 0, 0] != o[0, 0, 0]).astype(jnp.int32)
                    md = fa4.prepare_scheduler_metadata(cu_q + bump, cu_k + bump, **kw)
                else:
                    md = md_once
                return fa4.varlen_attention(o, k, v, cu_q, cu_k, scheduler_metadata=md, **attn_kw), None
            return jax.lax.scan(body, q, None, length=LAYERS)[0]
        return jax.jit(f)

    rows = []
    for per_layer in (False, True):
        name = f"{LAYERS} layers, metadata {'per layer' if per_layer else 'once'}"
        fn = make(per_layer)
        try:
            jax.block_until_ready(fn(q, k, v, cu_q, cu_k))
        except Exception as exc:
            rows.append(_row(wl, name, "fwd", "not available", reason=_short(exc)))
            continue
        t = timing.measure(fn, [(q, k, v, cu_q, cu_k)], max_seconds=args.max_seconds, min_reps=args.min_reps)
        rows.append(_row(wl, name, "fwd", "ok", ms=t["median_s"] * 1e3, timing=t))
    return rows
