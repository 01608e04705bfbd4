#!/bin/bash
# session 39, device run 11: which half of the pair code path slows the one-CTA backward: stA = the pair path's
# producer loop only, stB = the pair path's consumer only (both one-CTA variants), struct1 = both, base = main.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_PAIRED_TILES=0
L=$PWD/.carry
for x in stA stB base struct1 stA stB; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py $x dense-4x8192-full,packed-train-32768 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
done
