#!/bin/bash
# session 39, device run 2: backward pair variant (wip/bwd-pairs, reduced library "pairs": bf16 D = 128 none/causal,
# dkdvdq with ctas 1 and 2) against main's kernels (base): GPU tests, then profiler and sustained times.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
JAX_FA4_LIBRARY=$L/pairs/libjax_fa4_kernels.so timeout 240 python -m pytest -m gpu -n 8 -q -p no:cacheprovider tests/test_bwd_gpu.py -k "pair_backward or bf16-128-none-False or bf16-128-causal-False" > $OUT/gpu_tests_pairs.txt 2>&1
tail -3 $OUT/gpu_tests_pairs.txt
W=dense-4x8192-full,dense-4x8192-causal,packed-train-32768
for r in 1 2; do
  for x in base pairs; do
    JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 100 python .carry/exp/bwdtime.py $x $W 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
  done
done
for r in 1 2; do
  for x in base pairs; do
    JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 100 python .carry/exp/sustime.py $x dense-4x8192-full,dense-4x8192-causal 1.0 bwd 2>&1 | grep -v Warn | tee -a $OUT/sustained.txt
  done
done
