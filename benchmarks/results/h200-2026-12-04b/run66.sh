#!/bin/bash
# session 37, device run 5: main + stmatrix dS^T stores (full library S): D <= 128 backward / training tests, harness
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/S/libjax_fa4_kernels.so
timeout 330 python -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_bwd_gpu.py tests/test_train_example.py -k "not 192 and not 256" > $OUT/gpu_tests_bwd_d128_stsm.txt 2>&1
tail -3 $OUT/gpu_tests_bwd_d128_stsm.txt
timeout 200 python -m benchmarks.run --only dense-4x8192 packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench > $OUT/bench.log 2>&1
grep -E "jax_fa4 |cudnn" $OUT/bench.log | head -30
