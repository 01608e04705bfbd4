#!/bin/bash
# session 46, prepared, not run. After run122.sh, if Q80 gained on dense full: on the full library .carry/Q80
# (wip/bwd-q80b, tree x_q) the D = 128 unmasked default-path oracle tests and the dQ conversion tests (every chunk
# height, _q80 included), then Q80 beside cuDNN. About 4 minutes on an H200. carry: .carry/Q80
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONPATH=. JAX_FA4_LIBRARY=$PWD/.carry/Q80/libjax_fa4_kernels.so
cd x_q
timeout 200 python -m pytest -n 12 -m gpu -rA tests/test_bwd_gpu.py -k "(128 and none and False) or convert" \
  -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" | tee $OUT/gpu_tests_q80.txt | tail -4
timeout 150 python -m benchmarks.run --only dense-4x8192 packed-train --impl jax_fa4 cudnn --no-ablation \
  --max-seconds 0.3 > $OUT/bench_q80.txt 2>&1
grep "| jax_fa4 |" $OUT/bench_q80.txt
