#!/bin/bash
# session 43, prepared, not run: `bash run109.sh FE` (or XF). The forward, combine, FFI and prepare GPU tests (112,
# ~5.5 min with -n 12) on a full forward-experiment library, .carry/$1: FE is branch wip/fwd-fast-epilogue's, XF
# branch wip/fwd-cross-tile-fast-epilogue's (the cross-tile forward on top of it). Only kernel sources and CPU tests
# differ from main, so main's working tree runs them. Then the backward cases with deterministic=True: mask_scores'
# `r % rows` became `r & (rows - 1)`, which changed bwd_dq_sm90's SASS too (its rows is the constant tile height).
# Run for the library run108.sh shows fastest, if it beats FULLr. carry: .carry/$1
lib=${1:?library name under .carry, e.g. FE or XF}
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/$lib/libjax_fa4_kernels.so
timeout 500 python -m pytest -n 12 -m gpu -rA tests/test_fwd_gpu.py tests/test_combine_gpu.py tests/test_ffi_gpu.py \
  tests/test_prepare_gpu.py -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" \
  | tee $OUT/gpu_tests_fwd_$lib.txt | tail -5
timeout 300 python -m pytest -n 12 -m gpu -rA tests/test_bwd_gpu.py -k "True or deterministic" -p no:cacheprovider \
  2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" | tee $OUT/gpu_tests_bwd_dq_$lib.txt | tail -5
