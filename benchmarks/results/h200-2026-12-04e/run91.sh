#!/bin/bash
# session 40, device run 4: backward D = 128 no mask, query-block start offset by (p & 3) (R2) / (p & 7) (R3) blocks, against main (B)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
for x in B R2 R3 B R2 R3; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py $x dense-4x8192-full 2>&1 | grep total | tee -a $OUT/bwdtime_rot_small.txt
done
