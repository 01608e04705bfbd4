"""Loads the prebuilt kernel library and registers its handlers as XLA FFI targets for the CUDA platform.

Targets are registered under stable names (`jax_fa4_<kernel>__<variant>__<arch>`) so HLO never holds a pointer:
programs reloaded from the persistent compilation cache or `jax.export` find the same names after this module
registers them in the new process. Loading never needs a GPU; kernels load onto a device lazily in the shim.
"""

from __future__ import annotations

import ctypes
import json
import os
import threading
from pathlib import Path

LIB_DIR = Path(__file__).resolve().parent / "_lib"
LIBRARY_NAME = "libjax_fa4_kernels.so"

_lock = threading.Lock()
_state = {"manifest": None, "error": None, "library": None}


def library_path() -> Path:
    """Where the library is looked for: $JAX_FA4_LIBRARY, else jax_fa4/_lib/."""
    return Path(os.environ.get("JAX_FA4_LIBRARY", LIB_DIR / LIBRARY_NAME))


def load():
    """Registers every handler once. Returns the manifest dict, or None (then `load_error()` says why)."""
    with _lock:
        if _state["manifest"] is not None or _state["error"] is not None:
            return _state["manifest"]
        path = library_path()
        manifest_path = path.with_name("manifest.json")
        if not path.exists() or not manifest_path.exists():
            _state["error"] = f"no kernel library at {path} (build it with `python -m jax_fa4.build`, see BUILD.md)"
            return None
        try:
            import jax

            library = ctypes.CDLL(str(path))
            manifest = json.loads(manifest_path.read_text())
            for entry in manifest["handlers"].values():
                capsule = jax.ffi.pycapsule(getattr(library, entry["symbol"]))
                jax.ffi.register_ffi_target(entry["target"], capsule, platform="CUDA")
        except Exception as exc:  # a broken build must not break `import jax_fa4`
            _state["error"] = f"loading {path} failed: {type(exc).__name__}: {exc}"
            return None
        _state["library"] = library
        _state["manifest"] = manifest
        return manifest


def load_error():
    return _state["error"]


def target(module: str, variant_tag: str, arch: str):
    """FFI target name of a built kernel variant, or None if the library does not hold it."""
    manifest = load()
    if manifest is None:
        return None
    entry = manifest["handlers"].get(f"{module}__{variant_tag}__{arch.replace('_', '')}")
    return None if entry is None else entry["target"]


def built_variants(module: str, arch: str):
    """Variant tags of `module` built for `arch`."""
    manifest = load() or {"handlers": {}}
    suffix = "__" + arch.replace("_", "")
    return sorted(name[len(module) + 2:-len(suffix)] for name, e in manifest["handlers"].items()
                  if e["module"] == module and name.endswith(suffix))


def export_safety_checks():
    """`jax.export` refuses custom calls it does not know to be stable; pass this list as `disabled_checks` to
    export programs that call jax_fa4 kernels. The deserialising process must `import jax_fa4` (which registers
    the same stable target names) before calling the program."""
    import jax

    manifest = load() or {"handlers": {}}
    return [jax.export.DisabledSafetyCheck.custom_call(e["target"]) for e in manifest["handlers"].values()]
