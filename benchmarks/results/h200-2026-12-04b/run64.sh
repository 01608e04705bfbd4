#!/bin/bash
# session 37, device run 3: which part of the dS hand-off costs (fence / barrier), and REDG + dS together
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
C=$PWD/.carry
for r in 1 2; do for L in base nofence nobar ds red red_ds; do
  JAX_FA4_LIBRARY=$C/ab_$L/libjax_fa4_kernels.so python .carry/exp/bwdtime.py $L dense-4x8192-full,dense-4x8192-causal 2>&1 | grep -v Warn
done; done | tee $OUT/ablation_bwd2.txt
