"""`python -m jax_fa4 demo`: one packed ragged batch, run under jit, checked against a float64 NumPy loop.

Why its own float64 check: the demo must show on any machine that the selected backend computes attention, so it
compares with a tiny independent float64 computation rather than with the library's own reference.
"""

from __future__ import annotations

import math
import time

import numpy as np

# (name, lengths_q, lengths_k, heads, kv_heads, head_dim, dtype, causal, window)
CASES = (
    ("packed causal GQA", (37, 1, 0, 130, 64, 300), None, 8, 2, 64, "bfloat16", True, (-1, -1)),
    ("cross-attn sq!=sk", (5, 17, 1, 64), (40, 3, 9, 64), 4, 4, 64, "float32", False, (-1, -1)),
    ("sliding window", (200, 77), None, 4, 1, 128, "float16", True, (32, 0)),
)
TOLERANCE = {"float32": 1e-5, "bfloat16": 1e-2, "float16": 2e-3}


def _oracle(q, k, v, cu_q, cu_k, causal, window):
    """Float64 loop: out [Tq, H, Dv]."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    heads, rep = q.shape[1], q.shape[1] // k.shape[1]
    out = np.zeros(q.shape[:2] + v.shape[2:])
    left, right = window
    right = 0 if causal else right
    for b in range(len(cu_q) - 1):
        q0, q1, k0, k1 = cu_q[b], cu_q[b + 1], cu_k[b], cu_k[b + 1]
        sq, sk = q1 - q0, k1 - k0
        i, j = np.arange(sq)[:, None], np.arange(sk)[None, :]
        ok = np.ones((sq, sk), bool)
        if right >= 0:
            ok &= j <= i + sk - sq + right
        if left >= 0:
            ok &= j >= i + sk - sq - left
        for h in range(heads):
            s = np.where(ok, q[q0:q1, h] @ k[k0:k1, h // rep].T / math.sqrt(q.shape[2]), -np.inf)
            m = np.max(s, axis=1, initial=-np.inf, keepdims=True)
            p = np.where(ok, np.exp(s - np.where(np.isfinite(m), m, 0)), 0)
            den = p.sum(axis=1, keepdims=True)
            out[q0:q1, h] = (p / np.where(den > 0, den, 1)) @ v[k0:k1, h // rep]
    return out


def run(implementation=None, repeats=3, printer=print):
    """Runs every case; returns a list of result dicts and prints a table. Raises if an error exceeds tolerance."""
    import jax
    import jax.numpy as jnp

    from jax_fa4 import api

    rng = np.random.default_rng(1234)
    rows = []
    for name, lq, lk, heads, kv_heads, dim, dtype, causal, window in CASES:
        lk = lq if lk is None else lk
        cu_q = np.concatenate([[0], np.cumsum(lq)]).astype(np.int32)
        cu_k = np.concatenate([[0], np.cumsum(lk)]).astype(np.int32)
        q = rng.standard_normal((cu_q[-1], heads, dim)).astype(np.float32)
        k = rng.standard_normal((cu_k[-1], kv_heads, dim)).astype(np.float32)
        v = rng.standard_normal((cu_k[-1], kv_heads, dim)).astype(np.float32)
        jq, jk, jv = (jnp.asarray(x, dtype) for x in (q, k, v))
        call = dict(max_seqlen_q=int(max(lq)), max_seqlen_k=int(max(lk)), causal=causal, window_size=window)
        config = api.validation.check_varlen(jq, jk, jv, jnp.asarray(cu_q), jnp.asarray(cu_k),
                                             implementation=implementation, **call)
        backend, _ = api._select_backend(config, implementation)
        fn = jax.jit(lambda a, b, c, d, e: api.varlen_attention(a, b, c, d, e, implementation=implementation,
                                                                **call))
        args = (jq, jk, jv, jnp.asarray(cu_q), jnp.asarray(cu_k))
        out = fn(*args).block_until_ready()
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(*args).block_until_ready()
        ms = (time.perf_counter() - t0) / repeats * 1e3
        # Compare against the oracle on the inputs as the backend saw them (rounded to dtype).
        ref = _oracle(np.asarray(jq, np.float32), np.asarray(jk, np.float32), np.asarray(jv, np.float32),
                      cu_q, cu_k, causal, window)
        err = float(np.linalg.norm(np.asarray(out, np.float64) - ref) / np.linalg.norm(ref))
        rows.append(dict(case=name, backend=backend, dtype=dtype, shape=f"q{tuple(q.shape)} k{tuple(k.shape)}",
                         batch=len(lq), rel_err=err, tol=TOLERANCE[dtype], ms=ms, ok=err <= TOLERANCE[dtype]))
    header = f"{'case':<20} {'backend':<7} {'dtype':<8} {'B':>2} {'shapes':<30} {'rel err':>9} {'tol':>7} {'ms':>8}"
    printer(f"jax {jax.__version__}, device: {jax.devices()[0].device_kind}")
    printer(header)
    printer("-" * len(header))
    for r in rows:
        printer(f"{r['case']:<20} {r['backend']:<7} {r['dtype']:<8} {r['batch']:>2} {r['shape']:<30} "
                f"{r['rel_err']:>9.2e} {r['tol']:>7.0e} {r['ms']:>8.2f}{'' if r['ok'] else '  FAIL'}")
    bad = [r["case"] for r in rows if not r["ok"]]
    if bad:
        raise SystemExit(f"demo: error above tolerance in {bad}")
    printer("all cases within tolerance of the float64 check")
    return rows
