#!/bin/bash
# session 40, device run 3: backward D = 128 no mask: rotated query-block start per key block (R), no dQ reductions (N, ablation, wrong dQ), main (B)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
JAX_FA4_LIBRARY=$L/R/libjax_fa4_kernels.so timeout 150 python -m pytest -q -m gpu tests/test_bwd_gpu.py -k "bf16-128-none" 2>&1 | tail -3 | tee $OUT/gpu_tests_bwd_rot.txt
for x in B R N B R N; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py $x dense-4x8192-full 2>&1 | grep total | tee -a $OUT/bwdtime_rot_nored.txt
done
for x in R B R B; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/sustime.py $x dense-4x8192-full 1.0 bwd 2>&1 | grep -v Warn | tee -a $OUT/sustained_rot.txt
done
