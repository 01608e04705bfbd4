#!/usr/bin/env bash
# Sets up a fresh machine for jax_fa4: a virtual environment in .venv with the package (editable), the build and
# test tools, and the prebuilt kernel library (CuTe DSL -> XLA FFI). Needs python3 (3.10+), g++ and the CUDA headers
# and static runtime under $CUDA_HOME (default /usr/local/cuda); no GPU. JAX_FA4_KERNELS="all" builds every kernel
# variant instead of the reduced CI set.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[build,dev]"
if [ -d "${CUDA_HOME:-/usr/local/cuda}/include" ]; then
  if [ "${JAX_FA4_KERNELS:-reduced}" = "all" ]; then
    .venv/bin/python -m jax_fa4.build
  else
    .venv/bin/python -m jax_fa4.build --reduced
  fi
else
  echo "[setup] no CUDA toolkit at ${CUDA_HOME:-/usr/local/cuda}: skipping the kernel build (the reference path still works)"
fi
