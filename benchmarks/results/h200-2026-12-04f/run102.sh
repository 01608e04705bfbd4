#!/bin/bash
# prepared in session 41, not run: bwd_longest_first.patch (branch wip/bwd-longest-first) built into .carry/LF,
# main's library in .carry/FULL. The backward tests on LF, then backward kernel times interleaved.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
JAX_FA4_LIBRARY=$L/LF/libjax_fa4_kernels.so timeout 420 python -m pytest -q -n 12 -m gpu tests/test_bwd_gpu.py -k "128 or bf16-64" 2>&1 | tail -3 | tee $OUT/gpu_tests_bwd_lf.txt
for x in FULL LF FULL LF; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python benchmarks/results/h200-2026-12-04b/bwdtime.py $x packed-train-32768,dense-16x2048-causal 2>&1 | grep total | tee -a $OUT/bwdtime_lf.txt
done
