#!/bin/bash
# session 39, device run 12: pair variant whose own blocks run in the one-CTA loop, the union's other blocks in
# separate wait-and-free loops (pairs2, wip/bwd-pairs): tests, then kernel times against main (base); "pairs2-off"
# is the same library with JAX_FA4_PAIRED_TILES=0 (its one-CTA variants).
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
JAX_FA4_LIBRARY=$L/pairs2/libjax_fa4_kernels.so timeout 150 python -m pytest -m gpu -n 8 -q -p no:cacheprovider tests/test_bwd_gpu.py -k "pair_backward or bf16-128-none-False or bf16-128-causal-False" > $OUT/gpu_tests_pairs2.txt 2>&1
tail -1 $OUT/gpu_tests_pairs2.txt
W=dense-4x8192-full,dense-4x8192-causal,packed-train-32768
JAX_FA4_LIBRARY=$L/pairs2/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py pairs2 $W 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
JAX_FA4_LIBRARY=$L/base/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py base $W 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
JAX_FA4_PAIRED_TILES=0 JAX_FA4_LIBRARY=$L/pairs2/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py pairs2-off $W 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
JAX_FA4_LIBRARY=$L/pairs2/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py pairs2 $W 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
