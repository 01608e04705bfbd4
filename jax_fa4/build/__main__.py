"""python -m jax_fa4.build [--kernels ...] [--arch ...] [--reduced] [--only REGEX ...] [--jobs N] [--cache-dir D]
[--out-dir D]"""

import argparse
import os
import sys

from jax_fa4.build import build


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m jax_fa4.build", description=__doc__)
    parser.add_argument("--kernels", nargs="*", help="kernel modules to build (default: all in jax_fa4.kernels.KERNELS)")
    parser.add_argument("--arch", nargs="*", help="architectures, e.g. sm_90a sm_100a (default: each kernel's own)")
    parser.add_argument("--reduced", action="store_true", help="build each kernel's CI_VARIANTS only")
    parser.add_argument("--only", nargs="*", help="build only the jobs whose name (module__variant__arch, as in the "
                        "manifest) matches one of these regular expressions, e.g. for an experiment library")
    parser.add_argument("--jobs", type=int, default=None, help="parallel compiles (default: CPU count)")
    parser.add_argument("--cache-dir", default=None, help="object cache (default: $JAX_FA4_BUILD_CACHE or ~/.cache)")
    parser.add_argument("--out-dir", default=None, help="where the library goes (default: jax_fa4/_lib)")
    args = parser.parse_args(argv)
    build(args.kernels, args.arch, args.reduced, args.jobs, args.cache_dir, args.out_dir, args.only)
    # The plan imports the kernel modules (and so cutlass/MLIR) in this process to read their variant tables;
    # their native teardown can crash at interpreter exit after a successful build, so leave without it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
