"""Command line: `python -m jax_fa4 <command>`. Commands live in COMMANDS so others can be added (e.g. `build`)."""

from __future__ import annotations

import argparse
import sys


def _demo(argv):
    parser = argparse.ArgumentParser(prog="python -m jax_fa4 demo",
                                     description="Run varlen attention on a built-in packed batch and check it "
                                                 "against a float64 NumPy computation.")
    parser.add_argument("--implementation", choices=("auto", "xla", "kernel"), default="auto",
                        help="auto: kernels when available, else the pure-JAX reference")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per case")
    args = parser.parse_args(argv)
    from jax_fa4 import demo

    demo.run(None if args.implementation == "auto" else args.implementation, repeats=args.repeats)
    return 0


def _info(argv):
    argparse.ArgumentParser(prog="python -m jax_fa4 info",
                            description="Versions, the GPU, the kernel library, and whether calls here run on "
                                        "the kernels (and if not, why).").parse_args(argv)
    from jax_fa4 import info

    print("\n".join(info.report()))
    return 0


# name -> (one-line help, function(argv) -> exit code)
COMMANDS = {
    "demo": ("run the packed-attention demo and check it against float64", _demo),
    "info": ("versions, GPU, kernel library, and why calls use the kernels or the reference", _info),
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    usage = "usage: python -m jax_fa4 <command> [options]\n\ncommands:\n" + "\n".join(
        f"  {name:<10} {help_}" for name, (help_, _) in COMMANDS.items())
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"unknown command {name!r}\n\n{usage}", file=sys.stderr)
        return 2
    return COMMANDS[name][1](rest)


if __name__ == "__main__":
    sys.exit(main())
