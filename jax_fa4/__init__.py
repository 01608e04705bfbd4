"""jax_fa4: FlashAttention-4-class variable-length (packed) attention for JAX on NVIDIA GPUs.

Public API:
- `varlen_attention` / `attention`: packed and padded attention (GPU kernels where built and supported, a pure-JAX
  reference everywhere else).
- `prepare_scheduler_metadata` / `SchedulerMetadata`: the tile scheduler's per-step metadata, made once and passed
  to every layer.
- `segment_ids_to_cu_seqlens`, `pack`, `unpack`: from JAX-style segment ids to the packed layout and back.
- `merge_attention_states`: the log-sum-exp merge of attention over disjoint key sets (split-KV, ring attention).
- `export_safety_checks`: what `jax.export` needs to serialise programs that call our kernels.
- `ReferenceFallbackWarning`: warned when a call on a GPU runs on the reference instead of the kernels.
"""

from jax_fa4.api import ReferenceFallbackWarning, attention, varlen_attention
from jax_fa4.ffi import export_safety_checks, load as _load_kernel_library
from jax_fa4.validation import SCHEDULER_MODES
from jax_fa4.merge import merge_attention_states
from jax_fa4.metadata import SchedulerMetadata, prepare_scheduler_metadata
from jax_fa4.packing import pack, segment_ids_to_cu_seqlens, unpack

__version__ = "0.1.0"

# Register the prebuilt kernels' FFI targets now (cheap, no GPU needed), so programs deserialised from the
# persistent compilation cache or jax.export find them. A missing library is not an error: the reference path
# still works and `jax_fa4.kernel_backend.unavailable_reason()` says why kernels are off.
_load_kernel_library()

__all__ = [
    "attention", "varlen_attention", "prepare_scheduler_metadata", "SchedulerMetadata", "segment_ids_to_cu_seqlens",
    "pack", "unpack", "merge_attention_states", "export_safety_checks",
    "SCHEDULER_MODES", "ReferenceFallbackWarning",
]
