#!/usr/bin/env bash
# The CPU tests (reference path, API checks, metadata, sharding, training example, loading the kernel library) on
# Python 3.12 with the newest JAX we support, beside the main run's Python 3.11 / JAX 0.10.2. Why: JAX changes its
# internals from release to release, and a binding that only ever ran on one version can break silently on the next.
# Makes .venv-newest-jax; needs a Python 3.12 (on PATH, pyenv's, or $PYTHON312) and skips (exit 0) without one.
set -euo pipefail
cd "$(dirname "$0")/.."
JAX_VERSION=0.12.0.1
PY=${PYTHON312:-}
if [ -z "$PY" ]; then
  for candidate in python3.12 "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.12*/bin/python3.12; do
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then
      PY=$candidate
      break
    fi
  done
fi
if [ -z "$PY" ]; then
  echo "[newest-jax] no Python 3.12 found: skipped"
  exit 0
fi
if [ ! -x .venv-newest-jax/bin/python ]; then
  "$PY" -m venv .venv-newest-jax
fi
# the package's own runtime and test dependencies (pyproject.toml), with JAX pinned to the version under test
.venv-newest-jax/bin/python -m pip install -q "jax==$JAX_VERSION" -e ".[dev]"
echo "[newest-jax] $(.venv-newest-jax/bin/python -c 'import sys, jax; print("Python", sys.version.split()[0], "jax", jax.__version__)')"
PYTHONPATH=. .venv-newest-jax/bin/python -m pytest -q -m "not slow and not build" tests -p no:cacheprovider
