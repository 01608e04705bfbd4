"""Looks inside the built library: which GPU architectures it carries, and each kernel's registers, spills and
tensor-core instructions, read from its SASS.

CuTe DSL embeds each kernel's fatbinary as plain data (not an .nv_fatbin section), so cuobjdump cannot find it in
the .so by itself; we carve the fatbinaries out by their header and hand each to cuobjdump.
Usage: python -m jax_fa4.build.inspect [LIBRARY] [--sass]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

FATBIN_MAGIC = b"\x50\xed\x55\xba"


def fatbins(data: bytes) -> list[bytes]:
    """Every fatbinary embedded in `data` (header: magic u32, version u16, header size u16, payload size u64)."""
    found = []
    start = data.find(FATBIN_MAGIC)
    while start >= 0:
        _, version, header_size, payload = struct.unpack_from("<IHHQ", data, start)
        end = start + header_size + payload
        if version == 1 and header_size == 16 and end <= len(data):
            found.append(data[start:end])
            start = data.find(FATBIN_MAGIC, end)
        else:
            start = data.find(FATBIN_MAGIC, start + 4)
    return found


def tool(name: str) -> str:
    """Path of cuobjdump/nvdisasm: PATH, then $CUDA_HOME/bin, then the nvidia-cuda-* wheels."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(os.environ.get("CUDA_HOME", "/usr/local/cuda")) / "bin" / name
    if candidate.exists():
        return str(candidate)
    try:
        import nvidia

        for root in nvidia.__path__:
            for path in Path(root).glob(f"*/bin/{name}"):
                return str(path)
    except ImportError:
        pass
    raise FileNotFoundError(f"{name} not found (pip install nvidia-cuda-{name})")


def kernel_reports(library: Path, with_sass: bool = True) -> list[dict]:
    """One dict per GPU function: arch, function name, registers, stack, local bytes, and SASS opcode counts."""
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, blob in enumerate(fatbins(Path(library).read_bytes())):
            path = Path(tmp) / f"k{index}.fatbin"
            path.write_bytes(blob)
            usage = subprocess.run([tool("cuobjdump"), "-res-usage", str(path)], capture_output=True, text=True,
                                   check=True).stdout
            arch = re.search(r"arch = (\S+)", usage)
            sass = ""
            if with_sass:
                sass = subprocess.run([tool("cuobjdump"), "-sass", str(path)], capture_output=True, text=True,
                                      check=True).stdout
            for fn, regs, stack, local in re.findall(
                    r"Function (\S+):\s*REG:(\d+) STACK:(\d+) SHARED:\d+ LOCAL:(\d+)", usage):
                reports.append({
                    "arch": arch.group(1) if arch else "?", "function": fn, "registers": int(regs),
                    "stack": int(stack), "local": int(local),
                    "hgmma": len(re.findall(r"\bHGMMA\b", sass)), "utcmma": len(re.findall(r"\bUTC\w*MMA\b", sass)),
                    "ldl_stl": len(re.findall(r"\b(?:LDL|STL)\b", sass)),
                })
    return reports


def main(argv=None):
    from jax_fa4.build import LIB_DIR, LIBRARY_NAME

    parser = argparse.ArgumentParser(prog="python -m jax_fa4.build.inspect", description=__doc__)
    parser.add_argument("library", nargs="?", default=str(LIB_DIR / LIBRARY_NAME))
    args = parser.parse_args(argv)
    print(f"{'arch':8} {'regs':>4} {'stack':>5} {'local':>5} {'HGMMA':>5} {'LDL/STL':>7}  function")
    for r in kernel_reports(Path(args.library)):
        print(f"{r['arch']:8} {r['registers']:4} {r['stack']:5} {r['local']:5} {r['hgmma']:5} {r['ldl_stl']:7}  "
              f"{r['function'][:90]}")


if __name__ == "__main__":
    main()
