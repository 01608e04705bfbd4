#!/bin/bash
# session 40, device run 6: delayed dQ with ping-pong S/dP issue (DP), with 3 dS slots (D3, DP3), against DL and main (B)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
for x in DP D3 DP3; do
JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 100 python -m pytest -q -m gpu tests/test_bwd_gpu.py -k "bf16-128-none-False" 2>&1 | tail -1 | sed "s/^/$x /" | tee -a $OUT/gpu_tests_bwd_dp.txt
done
for x in B DL DP D3 DP3 B DL DP D3 DP3; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py $x dense-4x8192-full 2>&1 | grep total | tee -a $OUT/bwdtime_dp.txt
done
for x in B DL DP B DL DP; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/sustime.py $x dense-4x8192-full 1.0 bwd 2>&1 | grep -v Warn | tee -a $OUT/sustained_dp.txt
done
