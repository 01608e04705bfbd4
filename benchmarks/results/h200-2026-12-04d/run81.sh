#!/bin/bash
# session 39, device run 7: main's one-CTA backward launched as clusters of two with nothing shared (clul), against
# main (base): does the cluster launch alone cost the pair variants' 10 %?
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
W=dense-4x8192-full,dense-4x8192-causal,packed-train-32768
for x in clul base clul base; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py $x $W 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
done
