#!/bin/bash
# session 43, prepared, not run: the forward, combine, FFI and prepare GPU tests (112, ~5.5 min with -n 12) on FE,
# branch wip/fwd-fast-epilogue's full library (only kernel sources and a CPU test differ from main, so main's
# working tree runs it), then the backward cases with deterministic=True: mask_scores' `r % rows` became
# `r & (rows - 1)`, which changed bwd_dq_sm90's SASS too (its rows is the constant tile height). Run only if
# run108.sh shows FEr faster. carry: .carry/FE
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/FE/libjax_fa4_kernels.so
timeout 500 python -m pytest -n 12 -m gpu -rA tests/test_fwd_gpu.py tests/test_combine_gpu.py tests/test_ffi_gpu.py \
  tests/test_prepare_gpu.py -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" \
  | tee $OUT/gpu_tests_fwd_fe.txt | tail -5
timeout 300 python -m pytest -n 12 -m gpu -rA tests/test_bwd_gpu.py -k "True or deterministic" -p no:cacheprovider \
  2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" | tee $OUT/gpu_tests_bwd_dq_fe.txt | tail -5
