#!/bin/bash
# session 43, prepared, not run: the forward, combine, FFI and prepare GPU tests (112) on XF, branch
# wip/fwd-cross-tile-fast-epilogue's full library (the cross-tile forward on top of the fast staged epilogue; only
# kernel sources and CPU tests differ from main), then the deterministic backward cases (bwd_dq_sm90's mask changed,
# as in run109.sh). Run instead of run109.sh / ../h200-2026-12-04g/run104a.sh if run108.sh shows XFr fastest.
# carry: .carry/XF
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/XF/libjax_fa4_kernels.so
timeout 500 python -m pytest -n 12 -m gpu -rA tests/test_fwd_gpu.py tests/test_combine_gpu.py tests/test_ffi_gpu.py \
  tests/test_prepare_gpu.py -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" \
  | tee $OUT/gpu_tests_fwd_xf.txt | tail -5
timeout 300 python -m pytest -n 12 -m gpu -rA tests/test_bwd_gpu.py -k "True or deterministic" -p no:cacheprovider \
  2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" | tee $OUT/gpu_tests_bwd_dq_xf.txt | tail -5
