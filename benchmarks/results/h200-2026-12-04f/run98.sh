#!/bin/bash
# session 41, device run 2: main 81f9723's full library: the backward, sharding and training GPU tests (both paths, every head dim)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/FULL/libjax_fa4_kernels.so
timeout 570 python -m pytest -n 12 -m gpu -rA tests/test_bwd_gpu.py tests/test_sharding_gpu.py tests/test_train_example.py -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" | tee $OUT/gpu_tests_bwd_all.txt | tail -5
