#!/bin/bash
# session 44, prepared, not run: ../cpu-2026-12-05/run111.sh on KR2 (branch wip/bwd-d64-kv-regs-dq: K / V as
# register operands only in the one-kernel pass at D = 64; its forward is main's before the staged-epilogue merge,
# its dkdv pass SASS-identical to main's). Every D = 64 backward variant on both paths against float64, the
# deterministic repeats and the training example's kernel-vs-reference losses; runs on main's working tree (the
# branch changes no host code). About 7 minutes. carry: .carry/KR2
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/KR2/libjax_fa4_kernels.so
timeout 560 python -m pytest -n 12 -m gpu -rA tests/test_bwd_gpu.py tests/test_train_example.py \
  -k "64 or deterministic or kernel_path" -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" \
  | tee $OUT/gpu_tests_bwd_kr2.txt | tail -5
