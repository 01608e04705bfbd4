"""What `python -m jax_fa4 info` prints: versions, the GPU, the kernel library and whether calls here run on the
kernels. Why: it answers the first questions of a bug report, and says in one line why `implementation=None`
took the reference path on this machine."""

from __future__ import annotations

import collections
import re

_FWD_TAG = re.compile(r"(?P<dtype>bf16|fp16)_d(?P<d>\d+)_(?P<mask>none|causal|local)(?P<pair>_pair)?$")


def _forward_coverage(tags):
    """One line per dtype: the head dims and masks the library's forward variants cover, and how many of them also
    come as pair variants (a cluster of two CTAs sharing K/V)."""
    single, pair = collections.defaultdict(set), collections.defaultdict(set)
    for tag in tags:
        m = _FWD_TAG.match(tag)
        if m:
            (pair if m["pair"] else single)[m["dtype"]].add((int(m["d"]), m["mask"]))
    lines = []
    for dtype in sorted(single.keys() | pair.keys()):
        combos = single[dtype]
        dims, masks = sorted({d for d, _ in combos}), sorted({mk for _, mk in combos})
        if len(combos) == len(dims) * len(masks):
            what = f"D = {' / '.join(map(str, dims))} x {' / '.join(masks)}"
        else:
            what = ", ".join(f"D = {d} {mk}" for d, mk in sorted(combos))
        lines.append(f"    {dtype}: {what}; {len(pair[dtype])} of them also as pair variants")
    return lines


def report() -> list[str]:
    """The lines `python -m jax_fa4 info` prints."""
    import jax
    import jaxlib

    import jax_fa4
    from jax_fa4 import device_info, ffi, kernel_backend

    lines = [f"jax_fa4 {jax_fa4.__version__}; jax {jax.__version__}, jaxlib {jaxlib.__version__}"]
    try:
        lines.append(f"JAX default backend: {jax.default_backend()}; devices: {jax.devices()}")
    except RuntimeError as exc:
        lines.append(f"JAX default backend: none ({exc})")
    count = device_info.device_count()
    if count:
        cc, l2 = device_info.compute_capability(), device_info.l2_cache_bytes()
        lines.append(f"CUDA device 0 of {count}: {device_info.name()}, compute capability "
                     f"{'.'.join(map(str, cc)) if cc else '?'}, {device_info.sm_count() or '?'} SMs, L2 "
                     f"{f'{l2 / 2**20:.0f} MiB' if l2 else '?'}; prebuilt kernel arch: "
                     f"{device_info.kernel_arch() or 'none'}")
    else:
        lines.append("CUDA devices: none visible to cuda-python")
    manifest = ffi.load()
    if manifest is None:
        lines.append(f"kernel library: {ffi.load_error()}")
    else:
        handlers = manifest["handlers"].values()
        lines.append(f"kernel library: {ffi.library_path()} ({len(manifest['handlers'])} kernel variants)")
        per_module = collections.Counter((e["module"], e["arch"]) for e in handlers)
        for (module, arch), n in sorted(per_module.items()):
            lines.append(f"  {module} [{arch}]: {n}")
        for arch in sorted({e["arch"] for e in handlers if e["module"] == "fwd_sm90"}):
            lines.append(f"  forward variants [{arch}]:")
            lines += _forward_coverage(ffi.built_variants("fwd_sm90", arch))
    reason = kernel_backend.unavailable_reason()
    lines.append("calls here run on the GPU kernels (where the library holds the variant)" if reason is None
                 else f"calls here use the pure-JAX reference: {reason}")
    return lines
