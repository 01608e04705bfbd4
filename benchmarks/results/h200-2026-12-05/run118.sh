#!/bin/bash
# session 44, prepared, not run: `bash run118.sh False` then `bash run118.sh True` (each within one 600 s command).
# The backward GPU tests on the default (False) or deterministic (True) path, plus (with False) the sharding tests
# and the training example, for branch wip/bwd-longest-first-2 (the backward's tickets longest first; it changes
# host code, so it runs from x_lf/: `bash benchmarks/results/cpu-2026-12-05/make_x_tree.sh x_lf
# wip/bwd-longest-first-2` first). Its full library is .carry/LF. carry: .carry/LF
path=${1:?False (default path) or True (deterministic)}
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/LF/libjax_fa4_kernels.so
cd x_lf && export PYTHONPATH=.
extra=(); [ "$path" = False ] && extra=(tests/test_sharding_gpu.py tests/test_train_example.py)
expr="not True"; [ "$path" = True ] && expr="True"  # the oracle cases' ids end in -True / -False
timeout 560 python -m pytest -n 12 -m gpu -rA tests/test_bwd_gpu.py "${extra[@]}" -k "$expr" \
  -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" | tee $OUT/gpu_tests_bwd_lf_$path.txt \
  | tail -5
