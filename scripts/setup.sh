#!/usr/bin/env bash
# Sets up a fresh machine for jax_fa4: a virtual environment in .venv with the package (editable), the build and
# test tools, and the prebuilt kernel library (CuTe DSL -> XLA FFI). Needs python3 (3.10+), g++ and the CUDA headers
# and static runtime under $CUDA_HOME (default /usr/local/cuda); no GPU. Builds every kernel variant (about eleven
# minutes on 2 cores, cold); JAX_FA4_KERNELS=reduced builds only each kernel's CI_VARIANTS.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[build,dev]"
if [ -d "${CUDA_HOME:-/usr/local/cuda}/include" ]; then
  if [ "${JAX_FA4_KERNELS:-all}" = "reduced" ]; then
    .venv/bin/python -m jax_fa4.build --reduced
  else
    .venv/bin/python -m jax_fa4.build
  fi
else
  echo "[setup] no CUDA toolkit at ${CUDA_HOME:-/usr/local/cuda}: skipping the kernel build (the reference path still works)"
fi
