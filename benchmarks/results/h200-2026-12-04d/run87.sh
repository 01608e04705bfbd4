#!/bin/bash
# session 39, device run 13: sustained (back-to-back, power-capped) fwd+bwd time, main (base) against pairs2.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
for x in pairs2 base pairs2 base; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 50 python .carry/exp/sustime.py $x dense-4x8192-full,dense-4x8192-causal 1.0 bwd 2>&1 | grep -v Warn | tee -a $OUT/sustained.txt
done
