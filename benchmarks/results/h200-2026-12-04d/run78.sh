#!/bin/bash
# session 39, device run 4: backward pair variant with 3 Q / dO stages (p3; 24 producer registers as main). (Run 3's
# 32-register producer hung: setmaxnreg's pool is the launch's 168 registers per thread, 24 / 240 uses all of it.)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
W=dense-4x8192-full,dense-4x8192-causal,packed-train-32768
JAX_FA4_LIBRARY=$L/p3/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py p3 dense-4x8192-full 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
for x in base p3; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py $x $W 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
done
