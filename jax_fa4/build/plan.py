"""What the build makes: one job per (kernel module, variant, architecture), each named stably and keyed by content.

The name is what HLO refers to (FFI target `jax_fa4_<name>`), so it must not change between builds of the same
variant; the key decides whether a cached object can be reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import re
from pathlib import Path

import jax_fa4.kernels as kernels_pkg

KERNELS_DIR = Path(kernels_pkg.__file__).parent
# Bump when the export/codegen format changes so stale cache entries are not reused.
BUILD_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Job:
    module: str          # kernel module under jax_fa4/kernels
    variant_index: int   # index into the module's VARIANTS
    variant: object
    arch: str            # "sm_90a" / "sm_100a"
    name: str            # stable, e.g. "combine__bf16__sm90a"
    key: str             # content hash of everything that determines the object

    @property
    def prefix(self) -> str:
        """Symbol prefix of the exported C entry points."""
        return f"jaxfa4_{self.name}"


def variant_tag(module, variant) -> str:
    if hasattr(module, "variant_name"):
        tag = module.variant_name(variant)
    else:
        tag = repr(variant)
    tag = re.sub(r"[^A-Za-z0-9]+", "_", str(tag)).strip("_")
    return tag or "default"


def _shared_sources() -> list[Path]:
    """Kernel-package files every kernel may import (helpers named with a leading underscore or `common`)."""
    return sorted(p for p in KERNELS_DIR.glob("*.py") if p.name.startswith(("_", "common")))


def _cutlass_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("nvidia-cutlass-dsl")
    except metadata.PackageNotFoundError:
        return "unknown"


def plan(kernel_names=None, archs=None, reduced: bool = False, only=None) -> list[Job]:
    """Lists the jobs for `kernel_names` (default: all of KERNELS) on `archs` (default: each kernel's own); `only`:
    regular expressions, of which a job's name must match one (re.search), for quick experiment builds."""
    jobs = []
    shared = b"".join(p.read_bytes() for p in _shared_sources())
    version = _cutlass_version()
    for module_name, module_archs in kernels_pkg.KERNELS.items():
        if kernel_names and module_name not in kernel_names:
            continue
        module = importlib.import_module(f"jax_fa4.kernels.{module_name}")
        source = (KERNELS_DIR / f"{module_name}.py").read_bytes()
        variants = list(module.VARIANTS)
        chosen = set(map(repr, getattr(module, "CI_VARIANTS", variants))) if reduced else None
        for arch in module_archs:
            if archs and arch not in archs:
                continue
            for index, variant in enumerate(variants):
                if chosen is not None and repr(variant) not in chosen:
                    continue
                name = f"{module_name}__{variant_tag(module, variant)}__{arch.replace('_', '')}"
                if only and not any(re.search(pattern, name) for pattern in only):
                    continue
                digest = hashlib.sha256()
                for part in (str(BUILD_FORMAT), version, module_name, repr(variant), arch):
                    digest.update(part.encode() + b"\0")
                digest.update(source)
                digest.update(shared)
                for switch in getattr(module, "BUILD_ENV", ()):  # build-time switches of the module's code
                    digest.update(f"{switch}={os.environ.get(switch, '')}".encode() + b"\0")
                jobs.append(Job(module_name, index, variant, arch, name, digest.hexdigest()[:20]))
    names = [j.name for j in jobs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"kernel variant names collide: {sorted(duplicates)}; give the module a variant_name()")
    return jobs
