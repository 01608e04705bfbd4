"""Ahead-of-time build: CuTe DSL kernels -> exported objects -> one plain C++ shared library of XLA FFI handlers.

Runs on a machine without a GPU. Each kernel variant is compiled in its own process (CUTE_DSL_ARCH must be set
before cutlass is imported), cached by content hash; the handlers are generated from the exported headers and
linked with CuTe DSL's static CUDA-dialect runtime and static cudart, so the library needs nothing from Python
at run time. See BUILD.md.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from jax_fa4.build.plan import Job, plan
from jax_fa4.build.shim_codegen import write_handlers

PACKAGE_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = PACKAGE_DIR.parent
SHIM_DIR = REPO_DIR / "csrc_shim"
LIB_DIR = PACKAGE_DIR / "_lib"
LIBRARY_NAME = "libjax_fa4_kernels.so"
MANIFEST_NAME = "manifest.json"


def default_cache_dir() -> Path:
    return Path(os.environ.get("JAX_FA4_BUILD_CACHE", Path.home() / ".cache" / "jax_fa4" / "build"))


def cuda_home() -> Path:
    return Path(os.environ.get("CUDA_HOME", "/usr/local/cuda"))


def _log(message: str) -> None:
    print(f"[jax_fa4.build] {message}", flush=True)


def _object_dir(cache: Path, job: Job) -> Path:
    return cache / "objects" / f"{job.name}-{job.key}"


def _compile(job: Job, cache: Path) -> tuple[Job, float, str]:
    """Compiles one job unless its object is cached. Returns (job, seconds, 'cached'|'built')."""
    out = _object_dir(cache, job)
    if (out / "signature.json").exists() and (out / f"{job.name}.o").exists():
        return job, 0.0, "cached"
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    env = dict(os.environ, CUTE_DSL_ARCH=job.arch, PYTHONPATH=os.pathsep.join(
        [str(REPO_DIR)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "jax_fa4.build.compile_one", job.module, str(job.variant_index), job.arch, job.name,
         str(tmp)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"compiling {job.name} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return job, time.perf_counter() - start, "built"


def _cutlass_runtime_library() -> Path:
    proc = subprocess.run([sys.executable, "-m", "cutlass.cute.export.aot_config", "--libdir"],
                          capture_output=True, text=True, check=True)
    lib = Path(proc.stdout.strip()) / "libcuda_dialect_runtime_static.a"
    if not lib.exists():
        raise FileNotFoundError(f"{lib} not found: is nvidia-cutlass-dsl installed?")
    return lib


def _jax_ffi_include() -> str:
    import jax.ffi

    return jax.ffi.include_dir()


def _link(jobs: list[Job], cache: Path, out_dir: Path, jobs_parallel: int) -> str:
    """Generates the handlers and links the library; returns 'cached' or 'linked'."""
    shim_sources = sorted(SHIM_DIR.glob("*.cc")) + sorted(SHIM_DIR.glob("*.h")) + [SHIM_DIR / "exports.map"]
    digest = hashlib.sha256()
    for job in jobs:
        digest.update(f"{job.name}:{job.key};".encode())
    for path in shim_sources + [Path(__file__).parent / "shim_codegen.py", Path(__file__)]:
        digest.update(path.read_bytes())
    link_key = digest.hexdigest()[:20]
    library = out_dir / LIBRARY_NAME
    manifest_path = out_dir / MANIFEST_NAME
    if library.exists() and manifest_path.exists():
        if json.loads(manifest_path.read_text()).get("link_key") == link_key:
            return "cached"

    work = cache / "link" / link_key
    work.mkdir(parents=True, exist_ok=True)
    entries = []
    manifest = {"link_key": link_key, "handlers": {}}
    for job in jobs:
        obj_dir = _object_dir(cache, job)
        info = json.loads((obj_dir / "signature.json").read_text())
        entries.append((job.name, job.prefix, obj_dir / f"{job.name}.h", info["signature"]))
        module = importlib.import_module(f"jax_fa4.kernels.{job.module}")
        manifest["handlers"][job.name] = {
            "symbol": f"jaxfa4_ffi_{job.name}", "target": f"jax_fa4_{job.name}", "module": job.module,
            "variant": info["variant"], "arch": job.arch, "signature": info["signature"],
            # What the host needs to know about a variant without importing CuTe DSL (e.g. the forward kernel's
            # tile shape, which the scheduler metadata must be made with).
            "config": module.tile_config(job.variant) if hasattr(module, "tile_config") else None}
    write_handlers(entries, work / "handlers.cc")

    cuda = cuda_home()
    includes = [f"-I{SHIM_DIR}", "-isystem", _jax_ffi_include(), "-isystem", str(cuda / "include")]
    includes += sorted({f"-I{_object_dir(cache, job)}" for job in jobs})
    flags = ["-std=c++17", "-O2", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wno-unused-function"]
    sources = sorted(SHIM_DIR.glob("*.cc")) + [work / "handlers.cc"]
    objects = []

    def compile_source(src: Path) -> Path:
        obj = work / (src.stem + ".o")
        subprocess.run(["g++", *flags, *includes, "-c", str(src), "-o", str(obj)], check=True)
        return obj

    with concurrent.futures.ThreadPoolExecutor(max(1, jobs_parallel)) as pool:
        objects = list(pool.map(compile_source, sources))
    kernel_objects = [str(_object_dir(cache, job) / f"{job.name}.o") for job in jobs]
    tmp_library = work / LIBRARY_NAME
    subprocess.run(
        ["g++", "-shared", "-o", str(tmp_library), *map(str, objects), *kernel_objects,
         str(_cutlass_runtime_library()), str(cuda / "lib64" / "libcudart_static.a"),
         "-Wl,--exclude-libs,ALL", f"-Wl,--version-script={SHIM_DIR / 'exports.map'}", "-Wl,--no-undefined", "-lpthread", "-ldl", "-lrt"], check=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(tmp_library, library)
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return "linked"


@dataclasses.dataclass
class BuildResult:
    library: Path
    built: list      # names of variants compiled in this run (the rest came from the cache)
    cached: list
    link: str        # "linked" or "cached"


def build(kernel_names=None, archs=None, reduced=False, jobs_parallel=None, cache_dir=None, out_dir=None, only=None):
    """Builds (or reuses) every planned kernel (plan: `only` filters job names by regular expression) and the FFI
    library; returns a BuildResult."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    out = Path(out_dir) if out_dir else LIB_DIR
    jobs_parallel = jobs_parallel or os.cpu_count() or 1
    start = time.perf_counter()
    jobs = plan(kernel_names, archs, reduced, only)
    if not jobs:
        raise ValueError("nothing to build: no kernel matches the requested kernels/architectures/--only patterns")
    _log(f"{len(jobs)} kernel variants, {jobs_parallel} parallel compiles, cache {cache}")
    outcome = {"built": [], "cached": []}
    with concurrent.futures.ThreadPoolExecutor(jobs_parallel) as pool:
        for job, seconds, how in pool.map(lambda j: _compile(j, cache), jobs):
            outcome[how].append(job.name)
            _log(f"[{len(outcome['built']) + len(outcome['cached'])}/{len(jobs)}] {job.name}: {how}"
                 + (f" in {seconds:.1f} s" if how == "built" else ""))
    how = _link(jobs, cache, out, jobs_parallel)
    library = out / LIBRARY_NAME
    _log(f"library {library} ({how}, {library.stat().st_size / 2**20:.1f} MiB) "
         f"in {time.perf_counter() - start:.1f} s total")
    return BuildResult(library, outcome["built"], outcome["cached"], how)
