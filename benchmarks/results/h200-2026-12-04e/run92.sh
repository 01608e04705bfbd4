#!/bin/bash
# session 40, device run 5: backward D = 128 no mask, dQ one block late through a 2-slot dS^T mbarrier pipeline (DL), against main (B)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
JAX_FA4_LIBRARY=$L/DL/libjax_fa4_kernels.so timeout 150 python -m pytest -q -m gpu tests/test_bwd_gpu.py -k "bf16-128-none" 2>&1 | tail -3 | tee $OUT/gpu_tests_bwd_delay.txt
for x in B DL B DL; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py $x dense-4x8192-full 2>&1 | grep total | tee -a $OUT/bwdtime_delay.txt
done
