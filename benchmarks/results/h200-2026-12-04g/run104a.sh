#!/bin/bash
# session 42, prepared, not run (no device was lent in session 42). The forward, combine, FFI and prepare GPU tests
# (112; 5.4 min with -n 12 in session 41) on XT: main with fwd_cross_tile.patch applied (the next tile's first S
# GEMM under the epilogue), full library built into .carry/XT. Runs on main's working tree: the patch changes only
# fwd_sm90.py and a CPU build test, no host code. carry: .carry/XT
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/XT/libjax_fa4_kernels.so
timeout 500 python -m pytest -n 12 -m gpu -rA tests/test_fwd_gpu.py tests/test_combine_gpu.py tests/test_ffi_gpu.py \
  tests/test_prepare_gpu.py -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" \
  | tee $OUT/gpu_tests_fwd_xt.txt | tail -5
