"""Public entry points: packed (varlen) attention, padded attention, and the choice between kernels and reference.

Why one seam (`_select_backend`): every call is validated once, then runs either the prebuilt GPU kernels (through
jax_fa4.kernel_backend, imported lazily so a CPU install never touches the FFI library) or the pure-JAX reference,
which defines the semantics the kernels are tested against.
"""

from __future__ import annotations

import functools
import sys
import warnings

import jax
import jax.numpy as jnp

from jax_fa4 import validation
from jax_fa4.validation import SCHEDULER_MODES
from jax_fa4.reference import varlen_attention_reference


class ReferenceFallbackWarning(UserWarning):
    """A call made on a GPU backend runs, or is differentiated, on the pure-JAX reference instead of the kernels:
    correct, but many times slower. Silence it with
    `warnings.filterwarnings("ignore", category=jax_fa4.ReferenceFallbackWarning)`, or choose the reference
    explicitly with implementation="xla"."""


def _default_backend():
    try:
        return jax.default_backend()
    except RuntimeError:
        return None


def _warn_reference_on_gpu(what: str, reason: str):
    """Warn (at trace time) when `what` falls back to the reference while JAX runs on a GPU. Why: on a GPU without
    our kernels (another architecture, a library built without the variant) the fallback is silent otherwise, and
    a model can run many times slower without a sign; on a CPU the reference is the expected path."""
    if _default_backend() == "gpu":
        # attribute the warning to the first caller outside jax_fa4 (the user's model code, or JAX's autodiff)
        frame, level = sys._getframe(0), 1
        while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("jax_fa4"):
            frame, level = frame.f_back, level + 1
        warnings.warn(f"jax_fa4: {what} runs on the pure-JAX reference on this GPU, not on the kernels: {reason}. "
                      f"That is correct but many times slower; `python -m jax_fa4 info` shows what this machine "
                      f"runs. implementation='xla' selects the reference without this warning, and "
                      f"implementation='kernel' raises instead.", ReferenceFallbackWarning, stacklevel=level)


def _select_backend(config: validation.CallConfig, implementation):
    """("kernel", kernel_backend module) or ("xla", None).

    implementation None: kernels when they support this call here, else the reference; "xla": the reference;
    "kernel": kernels, or ValueError saying why they cannot run this call.
    """
    validation.check_implementation(implementation)
    if implementation == "xla":
        return "xla", None
    try:
        from jax_fa4 import kernel_backend
    except Exception as exc:  # noqa: BLE001 - any import failure means "no kernels here"
        kernel_backend, reason = None, f"the kernel backend cannot be imported ({exc})"
    else:
        reason = None
        if hasattr(kernel_backend, "unavailable_reason"):
            reason = kernel_backend.unavailable_reason()
        if reason is None:
            if not (hasattr(kernel_backend, "supports") and hasattr(kernel_backend, "varlen_forward")):
                reason = "no varlen attention kernel is built into this jax_fa4"
            else:
                reason = kernel_backend.supports(config)
    if reason is None:
        return "kernel", kernel_backend
    if implementation == "kernel":
        raise ValueError(f"implementation='kernel' cannot run this call (no kernel library built / no CUDA GPU / "
                         f"unsupported configuration): {reason}. Use implementation=None or 'xla' for the "
                         f"pure-JAX reference.")
    _warn_reference_on_gpu("this call", reason)
    return "xla", None


def _kernel_backward_reason(module, config):
    """None when `module` has backward kernels for `config`, else why not (then the reference's gradient)."""
    if not hasattr(module, "supports_backward"):
        return "this kernel backend has no backward"
    return module.supports_backward(config)


def _gradients(module, config, q, k, v, out, lse, cu_q, cu_k, used_q, used_k, dout, dlse, deterministic=True):
    """(dq, dk, dv) of a call whose forward gave (out, lse): the GPU backward kernels when `module` (the kernel
    backend the forward ran on, or None for the reference path) has them for `config`, else the reference's
    gradient, recomputed from (q, k, v)."""
    if module is not None:
        reason = _kernel_backward_reason(module, config)
        if reason is None:
            return module.varlen_backward(q, k, v, out, lse, dout, dlse, cu_q, cu_k, used_q, used_k, config=config,
                                          deterministic=deterministic)
        _warn_reference_on_gpu("the gradient of this call", reason)

    def reference(q_, k_, v_):
        return varlen_attention_reference(
            q_, k_, v_, cu_q, cu_k, max_seqlen_q=config.max_seqlen_q, max_seqlen_k=config.max_seqlen_k,
            seqused_q=used_q, seqused_k=used_k, softmax_scale=config.softmax_scale, causal=config.causal,
            window_size=(config.window_left, config.window_right), softcap=config.softcap)

    _, vjp = jax.vjp(reference, q, k, v)
    return vjp((dout, dlse))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _kernel_attention(module, static, q, k, v, cu_q, cu_k, used_q, used_k, md):
    """The GPU forward kernel; its gradient comes from the GPU backward kernels where they cover the call
    (`supports_backward`), else from the reference, recomputed."""
    config, scheduler_mode, _ = static
    return module.varlen_forward(q, k, v, cu_q, cu_k, used_q, used_k, config=config, scheduler_metadata=md,
                                 scheduler_mode=scheduler_mode)


def _kernel_attention_fwd(module, static, q, k, v, cu_q, cu_k, used_q, used_k, md):
    out, lse = _kernel_attention(module, static, q, k, v, cu_q, cu_k, used_q, used_k, md)
    return (out, lse), (q, k, v, out, lse, cu_q, cu_k, used_q, used_k)


def _kernel_attention_bwd(module, static, residuals, cotangents):
    config, _, deterministic = static
    q, k, v, out, lse, cu_q, cu_k, used_q, used_k = residuals
    dq, dk, dv = _gradients(module, config, q, k, v, out, lse, cu_q, cu_k, used_q, used_k, *cotangents,
                            deterministic=deterministic)
    return dq, dk, dv, None, None, None, None, None


_kernel_attention.defvjp(_kernel_attention_fwd, _kernel_attention_bwd)


def varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, *, max_seqlen_q, max_seqlen_k, seqused_q=None,
                     seqused_k=None, softmax_scale=None, causal=False, window_size=(-1, -1), softcap=0.0,
                     num_splits=0, scheduler_metadata=None, return_lse=False, implementation=None,
                     debug_checks=False, scheduler_mode="auto", deterministic=False):
    """Attention over a packed batch of variable-length sequences (FlashAttention's varlen conventions).

    Args:
      q: [total_q, num_heads, head_dim]; k: [total_k, num_kv_heads, head_dim]; v: [total_k, num_kv_heads,
        head_dim_v]. bfloat16, float16 or float32 (all the same); accumulation is float32, output has q's dtype.
        num_heads must be a multiple of num_kv_heads (GQA / MQA).
      cu_seqlens_q, cu_seqlens_k: int32 [batch + 1], cu[0] = 0, non-decreasing: sequence b owns rows
        cu[b] .. cu[b+1]-1.
      max_seqlen_q, max_seqlen_k: static Python ints, upper bounds of the per-sequence lengths.
      seqused_q, seqused_k: optional int32 [batch]: only the first seqused[b] rows of slot b take part.
      softmax_scale: default 1/sqrt(head_dim).
      causal: bottom-right aligned: query i of a (sq, sk) sequence sees key j iff j <= i + sk - sq.
      window_size: (left, right), -1 = unbounded: i + sk - sq - left <= j <= i + sk - sq + right.
        With causal=True, right must be -1 or 0 and is taken as 0.
      softcap: > 0 applies softcap * tanh(scale * s / softcap) to the scores.
      num_splits: 0 = let the kernel choose; 1 = no split-KV; n = at most n (kernel path only).
      scheduler_metadata: optional SchedulerMetadata from prepare_scheduler_metadata, checked against this call.
      return_lse: also return the log-sum-exp.
      implementation: None (kernels when available for this call, else the reference), "xla", "kernel".
      debug_checks: check the length data (see below) with a host callback; raises at run time when violated.
      scheduler_mode: how the forward kernel hands out tiles, one of SCHEDULER_MODES: "auto" (default:
        "dynamic-two-ended" when the call packs GQA heads - decode-shaped or mostly short sequences - else
        "dynamic"), "dynamic" (~one CTA per SM pulling tiles from an atomic counter, longest sequences first),
        "dynamic-fifo" (same, packed order), "dynamic-two-ended" (half the CTAs walk the longest-first order from
        the front, half from the back, one head at a time: long decodes stream beside prefill tiles), "static"
        (CTA c takes tiles c, c + grid, ...), "single-tile" (one CTA per tile). Kernel path only.
      deterministic: gradients bit-identical from run to run on the kernel path. False (default): for
        head_dim 64, 96 and 128 one backward kernel makes dK, dV and dQ, adding dQ's pieces into a float32
        buffer with atomics (faster; dQ's last bits depend on their order); for 192 and 256 one kernel makes dK
        and adds dQ that way, another makes dV; unless the sequences average under ~128 tokens (the buffer would
        outgrow q, out and dout). True, and those cases: two kernels (three at head_dim 192 / 256) that each sum
        in a fixed order. The reference path is deterministic either way.

    Gradients: on the kernel path the backward runs on the SM90 backward kernels (every forward variant).
    A kernel library without the backward variant (a reduced build) gives the reference's gradient, recomputed
    from (q, k, v) (correct, but at reference speed).

    Returns:
      out [total_q, num_heads, head_dim_v], and with return_lse also lse [num_heads, total_q] float32, natural log.
      A row that sees no key (empty sequence, fully masked row) gets out 0 and lse -inf; rows outside every
      sequence's used range (after seqused, beyond cu[-1]) get out 0 and lse -inf.

    Faults in the length data are not detected unless debug_checks=True (they are values, often traced). The
    reference path reads them deterministically: cu_seqlens as its running maximum clipped to [0, total] (a decrease
    makes that sequence empty), seqused clipped to [0, slot length], and a length above max_seqlen cut to max_seqlen
    (the first max_seqlen tokens take part, masks align to the cut lengths, the remaining query rows are 0). The
    kernel path gives no such guarantee for out-of-contract data.
    """
    config = validation.check_varlen(
        q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k,
        seqused_q=seqused_q, seqused_k=seqused_k, softmax_scale=softmax_scale, causal=causal,
        window_size=window_size, softcap=softcap, num_splits=num_splits, return_lse=return_lse,
        implementation=implementation)
    if scheduler_metadata is not None:
        validation.check_metadata(scheduler_metadata, config)
    if scheduler_mode not in SCHEDULER_MODES:
        raise ValueError(f"scheduler_mode must be one of {SCHEDULER_MODES}, got {scheduler_mode!r}")
    validation.check_flags(debug_checks=debug_checks, deterministic=deterministic)
    if debug_checks:
        jax.debug.callback(
            functools.partial(validation.check_lengths, total_q=config.total_q, total_k=config.total_k,
                              max_seqlen_q=config.max_seqlen_q, max_seqlen_k=config.max_seqlen_k),
            cu_seqlens_q, cu_seqlens_k, seqused_q, seqused_k)
    backend, module = _select_backend(config, implementation)
    if backend == "kernel":
        out, lse = _kernel_attention(module, (config, scheduler_mode, deterministic), q, k, v, cu_seqlens_q,
                                     cu_seqlens_k, seqused_q, seqused_k, scheduler_metadata)
    else:
        out, lse = varlen_attention_reference(
            q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=config.max_seqlen_q,
            max_seqlen_k=config.max_seqlen_k, seqused_q=seqused_q, seqused_k=seqused_k,
            softmax_scale=config.softmax_scale, causal=config.causal,
            window_size=(config.window_left, config.window_right), softcap=config.softcap)
    return (out, lse) if config.return_lse else out


def _lengths(name, lengths, batch, seq):
    if lengths is None:
        return None
    validation._int32_vector(name, lengths, batch, "[batch]")
    return jnp.clip(lengths, 0, seq)


def attention(q, k, v, *, q_lengths=None, kv_lengths=None, softmax_scale=None, causal=False,
              window_size=(-1, -1), softcap=0.0, num_splits=0, scheduler_metadata=None, return_lse=False,
              implementation=None, debug_checks=False, deterministic=False):
    """Attention on padded [batch, seq, heads, dim] input, via the varlen path.

    q [batch, seq_q, H, D], k [batch, seq_k, Hk, D], v [batch, seq_k, Hk, Dv]. q_lengths / kv_lengths: optional
    int32 [batch]: row b uses its first q_lengths[b] queries / kv_lengths[b] keys (values are clipped to
    [0, seq]); masks are bottom-right aligned to these lengths. Rows past q_lengths[b] get out 0 (lse -inf).
    Returns out [batch, seq_q, H, Dv] (and lse [batch, H, seq_q] float32 with return_lse). Other arguments: see
    varlen_attention; scheduler_metadata must be made with cu_seqlens = arange(batch + 1) * seq.
    """
    for name, x, what in (("q", q, "[batch, seq_q, num_heads, head_dim]"),
                          ("k", k, "[batch, seq_k, num_kv_heads, head_dim]"),
                          ("v", v, "[batch, seq_k, num_kv_heads, head_dim_v]")):
        validation._array(name, x, 4, what)
    batch, seq_q = q.shape[:2]
    seq_k = k.shape[1]
    for name, x in (("k", k), ("v", v)):
        if x.shape[0] != batch:
            raise ValueError(f"{name}.shape[0]={x.shape[0]} must equal q.shape[0]={batch} (batch)")
    if v.shape[1] != seq_k:
        raise ValueError(f"v.shape[1]={v.shape[1]} must equal k.shape[1]={seq_k} (seq_k)")
    seqused_q = _lengths("q_lengths", q_lengths, batch, seq_q)
    seqused_k = _lengths("kv_lengths", kv_lengths, batch, seq_k)
    cu_q = jnp.arange(batch + 1, dtype=jnp.int32) * seq_q
    cu_k = jnp.arange(batch + 1, dtype=jnp.int32) * seq_k
    res = varlen_attention(
        q.reshape((batch * seq_q,) + q.shape[2:]), k.reshape((batch * seq_k,) + k.shape[2:]),
        v.reshape((batch * seq_k,) + v.shape[2:]), cu_q, cu_k, max_seqlen_q=seq_q, max_seqlen_k=seq_k,
        seqused_q=seqused_q, seqused_k=seqused_k, softmax_scale=softmax_scale, causal=causal,
        window_size=window_size, softcap=softcap, num_splits=num_splits, scheduler_metadata=scheduler_metadata,
        return_lse=return_lse, implementation=implementation, debug_checks=debug_checks,
        deterministic=deterministic)
    out, lse = res if return_lse else (res, None)
    out = out.reshape((batch, seq_q) + out.shape[1:])
    if not return_lse:
        return out
    return out, lse.reshape(lse.shape[0], batch, seq_q).swapaxes(0, 1)
