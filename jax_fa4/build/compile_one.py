"""Compiles and exports one kernel variant; run as its own process so `CUTE_DSL_ARCH` is set before cutlass loads.

Usage (by jax_fa4.build only): python -m jax_fa4.build.compile_one MODULE VARIANT_INDEX ARCH NAME OUT_DIR
Writes OUT_DIR/NAME.h, OUT_DIR/NAME.o and OUT_DIR/signature.json, and the compiler's resource report when it can.
"""

import importlib
import json
import os
import sys
import time
from pathlib import Path


def main(argv):
    module_name, index, arch, name, out_dir = argv
    if os.environ.get("CUTE_DSL_ARCH") != arch:
        raise SystemExit(f"CUTE_DSL_ARCH must be {arch} in this process (it is {os.environ.get('CUTE_DSL_ARCH')!r})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(f"jax_fa4.kernels.{module_name}")
    variant = module.VARIANTS[int(index)]
    start = time.perf_counter()
    compiled = module.compile_variant(variant, arch)
    compiled.export_to_c(str(out), name, f"jaxfa4_{name}")
    signature = [list(item) for item in module.SIGNATURE(variant)]
    (out / "signature.json").write_text(
        json.dumps({"module": module_name, "variant": repr(variant), "arch": arch, "name": name,
                    "signature": signature, "compile_seconds": round(time.perf_counter() - start, 2)}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
