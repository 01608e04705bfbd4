#!/bin/bash
# session 40, device run 8: the rest of the dkdvdq oracle tests (fp16 D = 96 / 128) and the training example on the full
# library; then the harness beside cuDNN (dense 4x8192 full / causal, packed-train)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
export JAX_FA4_LIBRARY=$L/FULL/libjax_fa4_kernels.so
timeout 140 python -m pytest -q -m gpu tests/test_bwd_gpu.py tests/test_train_example.py -k "fp16-96-local-False or fp16-128-none-False or fp16-128-causal-False or fp16-128-local-False or train" 2>&1 | tail -3 | tee $OUT/gpu_tests_bwd_rest.txt
timeout 250 python -m benchmarks.run --only dense-4x8192 packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench 2>&1 | tee $OUT/bench.log | grep "^| " | grep -v skipped
