#!/bin/bash
# session 38, device run 8: main fe4235a (pair variants) with its full library G: forward / combine / FFI GPU tests
# and the training example, then the harness beside cuDNN (forward and forward + backward).
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/G/libjax_fa4_kernels.so
timeout 330 python -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_fwd_gpu.py tests/test_combine_gpu.py tests/test_ffi_gpu.py tests/test_train_example.py > $OUT/gpu_tests_fwd_G.txt 2>&1
tail -4 $OUT/gpu_tests_fwd_G.txt
timeout 250 python -m benchmarks.run --only dense-4x8192 dense-16x2048 packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench > $OUT/bench.log 2>&1
grep -E "^  (jax_fa4|cudnn)" $OUT/bench.log | head -40
