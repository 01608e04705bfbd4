#!/bin/bash
# session 37, device run 4: dS^T by stmatrix (stsm), + dK's GEMM queued before the hand-off (dkfirst): tests, times
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
C=$PWD/.carry
for L in stsm dkfirst; do
  JAX_FA4_LIBRARY=$C/$L/libjax_fa4_kernels.so timeout 150 python -m pytest -q -m gpu -n 2 -p no:cacheprovider tests/test_bwd_gpu.py -k "bf16-128-none-False or bf16-128-causal-False" 2>&1 | tail -2 | sed "s/^/$L /"
done | tee $OUT/gpu_tests_bwd_stsm.txt
for r in 1 2; do for L in ab_base stsm dkfirst; do
  JAX_FA4_LIBRARY=$C/$L/libjax_fa4_kernels.so python .carry/exp/bwdtime.py $L dense-4x8192-full,dense-4x8192-causal,packed-train-32768 2>&1 | grep -v Warn
done; done | tee $OUT/interleaved_bwd_stsm.txt
