"""The GPU kernel path: decides whether a call can run on the prebuilt kernels and issues the FFI calls.

Everything here is host-side JAX; the kernels themselves were compiled ahead of time (jax_fa4.build). A call runs
on kernels only when the default JAX backend is CUDA, the device's architecture has a prebuilt variant, and the
library holds the variant the call needs; `unavailable_reason()` says which of these failed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jax_fa4 import device_info, ffi

DTYPE_TAGS = {jnp.dtype(jnp.bfloat16): "bf16", jnp.dtype(jnp.float16): "fp16", jnp.dtype(jnp.float32): "f32"}


@functools.lru_cache(maxsize=None)
def _platform_reason():
    try:
        backend = jax.default_backend()
    except RuntimeError as exc:
        return f"no JAX backend: {exc}"
    if backend != "gpu":
        return f"the default JAX backend is {backend!r}, not a CUDA GPU"
    if device_info.kernel_arch() is None:
        return f"no prebuilt kernels for compute capability {device_info.compute_capability()}"
    if ffi.load() is None:
        return ffi.load_error()
    return None


def unavailable_reason():
    """None when kernels can run here, else a sentence saying why not."""
    return _platform_reason()


def arch():
    return device_info.kernel_arch()


def _require_target(module: str, tag: str) -> str:
    reason = unavailable_reason()
    if reason is not None:
        raise ValueError(f"jax_fa4 {module} kernel unavailable: {reason}")
    name = ffi.target(module, tag, arch())
    if name is None:
        built = ffi.built_variants(module, arch())
        raise ValueError(f"jax_fa4 {module} kernel has no variant {tag!r} for {arch()}; built: {built}")
    return name


def _grid_ctas(rows: int, rows_per_cta: int, waves: int = 8) -> int:
    sms = device_info.sm_count() or 132
    return int(max(1, min(-(-rows // rows_per_cta), sms * waves)))


def combine(o_partial, lse_partial, cu_seqlens_q, seqlen_q, num_splits, out, lse):
    """Merges split partials into `out`/`lse` in place (aliased) for sequences with num_splits > 1.

    o_partial [S, total_q, H, Dv] f32, lse_partial [S, H, total_q] f32; out [total_q, H, Dv]; lse [H, total_q] f32.
    Rows of sequences with one split keep what `out`/`lse` already hold.
    """
    tag = DTYPE_TAGS.get(jnp.dtype(out.dtype))
    if tag is None:
        raise ValueError(f"combine: out dtype {out.dtype} unsupported (bf16, fp16, f32)")
    target = _require_target("combine", tag)
    rows = out.shape[0] * out.shape[1]
    call = jax.ffi.ffi_call(
        target, (jax.ShapeDtypeStruct(out.shape, out.dtype), jax.ShapeDtypeStruct(lse.shape, jnp.float32)),
        input_output_aliases={5: 0, 6: 1}, vmap_method="sequential")
    return call(o_partial.astype(jnp.float32), lse_partial.astype(jnp.float32), cu_seqlens_q.astype(jnp.int32),
                seqlen_q.astype(jnp.int32), num_splits.astype(jnp.int32), out, lse.astype(jnp.float32),
                num_ctas=np.int32(_grid_ctas(rows, 4)))
