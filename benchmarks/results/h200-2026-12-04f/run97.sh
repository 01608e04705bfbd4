#!/bin/bash
# session 41, device run 1: dQ one block late in the dkdq pass (D = 192 / 256): oracle tests on DL, kernel times FULL (main) / DL interleaved
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
JAX_FA4_LIBRARY=$L/DL/libjax_fa4_kernels.so timeout 240 python -m pytest -q -n 8 -m gpu tests/test_bwd_gpu.py -k "192 or 256" 2>&1 | tail -15 | tee $OUT/gpu_tests_dkdq_late.txt
for x in FULL DL FULL DL; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 90 python benchmarks/results/h200-2026-12-04f/bwdtime_d.py $x 256 dense-4x8192-full,dense-4x8192-causal,packed-train 2>&1 | grep total | tee -a $OUT/bwdtime_dkdq_late.txt
done
for x in FULL DL; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python benchmarks/results/h200-2026-12-04f/bwdtime_d.py $x 192 dense-4x8192-causal,packed-train 2>&1 | grep total | tee -a $OUT/bwdtime_dkdq_late.txt
done
