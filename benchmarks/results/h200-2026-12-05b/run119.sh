#!/bin/bash
# session 45: `bash run119.sh LIB TREE False|True` from the repository root. The backward GPU tests on the default
# (False) or deterministic (True) path, plus (with False) the sharding tests and the training example, run from the
# untracked tree TREE/ (../cpu-2026-12-05/make_x_tree.sh TREE BRANCH) against .carry/LIB. Each path takes 3.5-4.5
# minutes on an H200. carry: .carry/LIB
lib=${1:?library folder under .carry}; tree=${2:?tree}; path=${3:?False (default path) or True (deterministic)}
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/$lib/libjax_fa4_kernels.so
cd "$tree" && export PYTHONPATH=.
extra=(); [ "$path" = False ] && extra=(tests/test_sharding_gpu.py tests/test_train_example.py)
expr="not True"; [ "$path" = True ] && expr="True"  # the oracle cases' ids end in -True / -False
timeout 560 python -m pytest -n 12 -m gpu -rA tests/test_bwd_gpu.py "${extra[@]}" -k "$expr" \
  -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" \
  | tee $OUT/gpu_tests_bwd_${lib}_$path.txt | tail -5
