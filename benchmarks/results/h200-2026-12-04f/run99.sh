#!/bin/bash
# session 41, device run 3: main 81f9723's full library: forward, combine, FFI and prepare GPU tests; then D = 256 beside cuDNN
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/FULL/libjax_fa4_kernels.so
timeout 420 python -m pytest -n 12 -m gpu -rA tests/test_fwd_gpu.py tests/test_combine_gpu.py tests/test_ffi_gpu.py tests/test_prepare_gpu.py -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" | tee $OUT/gpu_tests_fwd_all.txt | tail -5
timeout 160 python -m benchmarks.run --head-dim 256 --only dense-4x8192 packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_d256 > $OUT/bench_d256.log 2>&1; tail -20 $OUT/bench_d256.log
