#!/bin/bash
# session 37, device run 1: forward 3 K/V stages (kv3) vs main (B); backward ablations (base/exp/red/ds)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
C=$PWD/.carry
for r in 1 2; do for L in B kv3; do
  JAX_FA4_LIBRARY=$C/$L/libjax_fa4_kernels.so python -m benchmarks.kernel_breakdown --only dense-4x8192-full --fwd-only 2>&1 | grep "us of kernels" | sed "s/^/$L /"
done; done | tee $OUT/interleaved_fwd_kv3.txt
for r in 1 2; do for L in base exp red ds; do
  JAX_FA4_LIBRARY=$C/ab_$L/libjax_fa4_kernels.so python .carry/exp/bwdtime.py $L dense-4x8192-full,dense-4x8192-causal 2>&1 | grep -v Warn
done; done | tee $OUT/ablation_bwd.txt
JAX_FA4_LIBRARY=$C/kv3/libjax_fa4_kernels.so timeout 200 python -m pytest -q -m gpu -n 8 tests/test_fwd_gpu.py -k "128 and none" 2>&1 | tail -5 | tee $OUT/gpu_tests_fwd_kv3.txt
