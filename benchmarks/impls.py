"""The implementations under test and how each one is called on a workload.

Every implementation receives the same packed inputs (q [total_q, H, D], k/v [total_k, Hk, D]) and turns them
into its own layout in `prepare` (not timed: a user keeps data in the layout their attention wants). The timed
function is `attn(diff_args, static_args)`; `to_packed_*` map results back for the correctness gate.

cuDNN is reached two ways, both shipped with JAX:
- padded: `jax.nn.dot_product_attention(..., implementation="cudnn")` with [B, S, H, D] arrays and
  `query_seq_lengths` / `key_value_seq_lengths` (GQA native: K/V keep Hk heads);
- packed (THD): `jax._src.cudnn.fused_attention_stablehlo.dot_product_attention` with `q_offsets` /
  `kv_offsets` [1, M+1] and `q_seqlen` / `kv_seqlen` [1, M] (M sequences in one batch row; Hopper or newer).
  `jax.nn.dot_product_attention` does not expose the offsets. cuDNN's causal mask is top-left aligned, so a
  call may only mix sequences where that agrees with the bottom-right mask (sq == sk, or sq == 1 without mask).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass
class Prepared:
    diff_args: tuple                 # arrays differentiated in fwd+bwd (q, k, v in the implementation's layout)
    static_args: tuple               # lengths / offsets
    attn: Callable                   # attn(diff_args, static_args) -> output pytree
    layout_do: Callable              # packed cotangent -> pytree shaped like the output
    to_packed_out: Callable          # output pytree -> [total_q, H, Dv]
    to_packed_grads: Callable        # grads of diff_args -> (dq, dk, dv) packed


class NotAvailable(Exception):
    """Raised by `prepare` (or at trace time) when an implementation cannot run a workload here."""


def _scale(wl):
    return 1.0 / float(np.sqrt(wl.head_dim))


# ----------------------------------------------------------------------------------------------- jax_fa4

def _fa4():
    try:
        return importlib.import_module("jax_fa4")
    except Exception as exc:  # the package is written concurrently; a broken import must not stop the harness
        raise NotAvailable(f"import jax_fa4 failed: {type(exc).__name__}: {exc}")


class Fa4:
    """`jax_fa4.varlen_attention` with `implementation` = "kernel" (our GPU kernels) or "xla" (pure-JAX reference)."""

    family = "jax_fa4"

    def __init__(self, implementation, memory_budget=None, extra_kwargs=None, name=None, pack_gqa=None):
        self.implementation = implementation
        self.name = name or ("jax_fa4" if implementation == "kernel" else "reference-xla")
        self.memory_budget = memory_budget
        self.extra_kwargs = dict(extra_kwargs or {})
        self.pack_gqa = pack_gqa  # None: the library's choice; True / False: metadata made with that packing

    def unavailable(self, wl, backward):
        if "deterministic" in self.extra_kwargs and not backward:
            return "skipped: deterministic= only changes the backward (same forward as jax_fa4)"
        if self.implementation == "xla" and self.memory_budget is not None:
            # The reference materialises scores [B, H, max_sq, max_sk] in f32; fwd keeps ~3, fwd+bwd ~6 of them.
            need = wl.batch * wl.num_heads * max(wl.seqlens_q) * max(wl.seqlens_k) * 4 * (6 if backward else 3)
            if need > self.memory_budget:
                return f"skipped: reference needs ~{need / 2**30:.0f} GiB (> budget {self.memory_budget / 2**30:.0f})"
        return None

    def prepare(self, wl, q, k, v):
        fa4 = _fa4()
        fn = getattr(fa4, "varlen_attention", None)
        if fn is None:
            raise NotAvailable("jax_fa4 has no varlen_attention yet")
        cu_q, cu_k = (jnp.asarray(c) for c in wl.cu_seqlens())
        kwargs = dict(max_seqlen_q=int(max(wl.seqlens_q)), max_seqlen_k=int(max(wl.seqlens_k)), causal=wl.causal,
                      window_size=tuple(wl.window), implementation=self.implementation, **self.extra_kwargs)

        def attn(d, s):
            if self.pack_gqa is None:
                return fn(*d, *s, **kwargs)
            md = fa4.prepare_scheduler_metadata(
                *s, max_seqlen_q=kwargs["max_seqlen_q"], max_seqlen_k=kwargs["max_seqlen_k"],
                num_heads=wl.num_heads, num_kv_heads=wl.num_kv_heads, head_dim=wl.head_dim, causal=wl.causal,
                window_size=tuple(wl.window), num_splits=1, dtype=d[0].dtype, pack_gqa=self.pack_gqa)
            return fn(*d, *s, scheduler_metadata=md, **kwargs)

        ident = lambda x: x
        return Prepared((q, k, v), (cu_q, cu_k), attn, ident, ident, lambda g: tuple(g))


# ----------------------------------------------------------------------------------------------- cuDNN

def _cudnn_module():
    from jax._src.cudnn import fused_attention_stablehlo as fa
    return fa


def packed_gqa_offsets_bug():
    """True where JAX scales kv_offsets by the *query* head count (fixed upstream in 0.11.x): GQA reads out of bounds."""
    try:
        src = inspect.getsource(_cudnn_module()._fix_seqlen_offsets)
    except (OSError, TypeError, AttributeError):
        return True   # cannot tell: an out-of-bounds read would take the whole process down, so stay safe
    return "kv_offsets * N * H" in src


def _mask_mode(wl, seqs):
    """cuDNN mask for a subset of sequences, or raise NotAvailable when top-left cuDNN masks cannot express it."""
    if tuple(wl.window) != (-1, -1):
        raise NotAvailable("sliding windows are not benchmarked through cuDNN")
    if not wl.causal:
        return False
    sq = np.asarray(wl.seqlens_q)[seqs]
    sk = np.asarray(wl.seqlens_k)[seqs]
    if np.all(sq == sk):
        return True                     # top-left == bottom-right
    if np.all(sq == 1):
        return False                    # a single query sees every key under bottom-right causal
    raise NotAvailable("mixes sequences with sq == sk and sq != sk: cuDNN's top-left causal mask would differ "
                       "(see the cudnn-split rows)")


class _CudnnCall:
    """One cuDNN call over a subset `seqs` of the workload's sequences, in padded or packed (THD) layout."""

    def __init__(self, wl, seqs, layout):
        self.wl, self.layout = wl, layout
        self.seqs = np.asarray(seqs)
        self.causal = _mask_mode(wl, self.seqs)
        cu_q, cu_k = wl.cu_seqlens()
        self.sq = np.asarray(wl.seqlens_q)[self.seqs]
        self.sk = np.asarray(wl.seqlens_k)[self.seqs]
        # packed rows (of the full workload) this call covers, in its own order
        self.q_rows = np.concatenate([np.arange(cu_q[b], cu_q[b + 1]) for b in self.seqs]).astype(np.int32)
        self.k_rows = np.concatenate([np.arange(cu_k[b], cu_k[b + 1]) for b in self.seqs]).astype(np.int32)
        if layout == "padded":
            self.tq, self.tk = int(self.sq.max()), int(self.sk.max())
            self.q_index, self.q_pos = self._pad_index(self.sq, cu_q, self.tq, wl.total_q)
            self.k_index, self.k_pos = self._pad_index(self.sk, cu_k, self.tk, wl.total_k)
            self.uniform = bool(np.all(self.sq == self.tq) and np.all(self.sk == self.tk))
        elif layout == "packed":
            if len(self.seqs) > 1 and wl.num_heads != wl.num_kv_heads and packed_gqa_offsets_bug():
                raise NotAvailable(f"jax {jax.__version__} scales kv_offsets by the query head count under GQA "
                                   "(out-of-bounds reads); needs a JAX with the upstream fix")
            self.q_pos = np.arange(len(self.q_rows), dtype=np.int32)
            self.k_pos = np.arange(len(self.k_rows), dtype=np.int32)
        else:
            raise ValueError(layout)

    def _pad_index(self, lengths, cu, width, total):
        """Gather index [B*width] into packed rows (`total` = out of range -> zero fill) and the inverse positions."""
        s = np.arange(width)[None, :]
        starts = cu[self.seqs][:, None]
        idx = np.where(s < lengths[:, None], starts + s, total).reshape(-1).astype(np.int32)
        pos = np.concatenate([b * width + np.arange(n) for b, n in enumerate(lengths)]).astype(np.int32)
        return idx, pos

    def gather(self, q, k, v):
        if self.layout == "padded":
            shape = lambda x, t: x.reshape(len(self.seqs), t, *x.shape[1:])
            take = lambda x, i: jnp.take(x, jnp.asarray(i), axis=0, mode="fill", fill_value=0)
            return (shape(take(q, self.q_index), self.tq), shape(take(k, self.k_index), self.tk),
                    shape(take(v, self.k_index), self.tk))
        take = lambda x, i: jnp.take(x, jnp.asarray(i), axis=0)[None]
        return take(q, self.q_rows), take(k, self.k_rows), take(v, self.k_rows)

    def gather_q(self, x):
        if self.layout == "padded":
            x = jnp.take(x, jnp.asarray(self.q_index), axis=0, mode="fill", fill_value=0)
            return x.reshape(len(self.seqs), self.tq, *x.shape[1:])
        return jnp.take(x, jnp.asarray(self.q_rows), axis=0)[None]

    def static(self):
        if self.layout == "padded":
            if self.uniform:
                return ()
            return (jnp.asarray(self.sq, jnp.int32), jnp.asarray(self.sk, jnp.int32))
        off = lambda n: jnp.asarray(np.concatenate([[0], np.cumsum(n)])[None], jnp.int32)
        return (jnp.asarray(self.sq[None], jnp.int32), jnp.asarray(self.sk[None], jnp.int32), off(self.sq),
                off(self.sk))

    def __call__(self, q, k, v, *static):
        scale = _scale(self.wl)
        if self.layout == "padded":
            lens = dict(query_seq_lengths=static[0], key_value_seq_lengths=static[1]) if static else {}
            return jax.nn.dot_product_attention(q, k, v, scale=scale, is_causal=self.causal,
                                                implementation="cudnn", **lens)
        fa = _cudnn_module()
        mask = fa.MaskType.PADDING_CAUSAL if self.causal else fa.MaskType.PADDING
        q_len, k_len, q_off, k_off = static
        return fa.dot_product_attention(q, k, v, None, None, q_len, k_len, q_off, k_off, scale=scale,
                                        mask_type=mask, qkv_layout="BTNH")

    def scatter(self, full, x, rows, pos):
        flat = x.reshape(-1, *x.shape[2:])
        return full.at[jnp.asarray(rows)].set(jnp.take(flat, jnp.asarray(pos), axis=0).astype(full.dtype))


class Cudnn:
    """cuDNN fused attention over the whole workload, or split into several calls (`groups`)."""

    family = "cudnn"

    def __init__(self, layout, split=None, name=None):
        self.layout = layout            # "padded" | "packed" | "split-padded" | "split-packed"
        self.split = split
        self.name = name or f"cudnn-{layout}"

    def unavailable(self, wl, backward):
        if jax.default_backend() != "gpu":
            return f"the JAX backend is {jax.default_backend()}; cuDNN needs a CUDA GPU"
        return None

    def _calls(self, wl):
        if self.split is None:
            return [_CudnnCall(wl, np.arange(wl.batch), self.layout)]
        sq, sk = np.asarray(wl.seqlens_q), np.asarray(wl.seqlens_k)
        prefill = np.nonzero(sq == sk)[0]
        decode = np.nonzero(sq != sk)[0]
        if len(prefill) == 0 or len(decode) == 0:
            raise NotAvailable("nothing to split: every sequence is of one kind")
        # Prefills of one length form a dense batch (no padding); decodes use the layout under test.
        return [_CudnnCall(wl, prefill, "padded"), _CudnnCall(wl, decode, self.split)]

    def prepare(self, wl, q, k, v):
        calls = self._calls(wl)
        diff = tuple(calls[i].gather(q, k, v) for i in range(len(calls)))
        static = tuple(c.static() for c in calls)

        def attn(d, s):
            return tuple(c(*di, *si) for c, di, si in zip(calls, d, s))

        def layout_do(do):
            return tuple(c.gather_q(do) for c in calls)

        def to_packed_out(outs):
            full = jnp.zeros((wl.total_q, wl.num_heads, wl.head_dim), outs[0].dtype)
            for c, o in zip(calls, outs):
                full = c.scatter(full, o, c.q_rows, c.q_pos)
            return full

        def to_packed_grads(grads):
            dq = jnp.zeros((wl.total_q, wl.num_heads, wl.head_dim), jnp.float32)
            dk = jnp.zeros((wl.total_k, wl.num_kv_heads, wl.head_dim), jnp.float32)
            dv = jnp.zeros_like(dk)
            for c, (gq, gk, gv) in zip(calls, grads):
                dq = c.scatter(dq, gq, c.q_rows, c.q_pos)
                dk = c.scatter(dk, gk, c.k_rows, c.k_pos)
                dv = c.scatter(dv, gv, c.k_rows, c.k_pos)
            return dq, dk, dv

        return Prepared(diff, static, attn, layout_do, to_packed_out, to_packed_grads)


def default_impls(memory_budget=None):
    """Every implementation the harness knows, in table order."""
    return [Fa4("kernel"), Fa4("kernel", name="jax_fa4-packed-gqa", pack_gqa=True),
            Fa4("kernel", name="jax_fa4-deterministic", extra_kwargs={"deterministic": True}),
            Cudnn("padded"), Cudnn("packed"),
            Cudnn("split", split="padded", name="cudnn-split-padded"),
            Cudnn("split", split="packed", name="cudnn-split-packed"), Fa4("xla", memory_budget=memory_budget)]


def applies(impl, wl):
    """Which implementations are worth listing for a workload (the split only exists for mixed batches)."""
    if getattr(impl, "split", None) is not None:
        return wl.group == "mixed-serve"
    if impl.family == "cudnn" and impl.layout == "packed":
        return len(set(wl.seqlens_q)) > 1 or len(set(wl.seqlens_k)) > 1 or wl.group == "long-decode"
    return True
