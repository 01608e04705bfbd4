#!/bin/bash
# session 38, device run 9: main f3ec33e's kernels (library G): backward GPU tests at D <= 128 (their forward now
# runs the pair variants where heads allow) and the sharding GPU tests.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/G/libjax_fa4_kernels.so
timeout 400 python -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_bwd_gpu.py tests/test_sharding_gpu.py -k "not 192 and not 256" > $OUT/gpu_tests_bwd_G.txt 2>&1
tail -3 $OUT/gpu_tests_bwd_G.txt
