#!/bin/bash
# session 43, prepared, not run: the backward GPU tests at D = 64 (every D = 64 variant, both backward paths,
# against float64) and the training example's kernel-vs-reference losses, on KR (branch wip/bwd-d64-kv-regs's
# full library; its forward kernels are SASS-identical to main's, README here). Run only if run110.sh shows KR64r
# faster. carry: .carry/KR
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/KR/libjax_fa4_kernels.so
timeout 400 python -m pytest -n 12 -m gpu -rA tests/test_bwd_gpu.py \
  tests/test_train_example.py -k "64 or deterministic or kernel_path" \
  -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" | tee $OUT/gpu_tests_bwd_kr.txt | tail -5
