#!/bin/bash
# session 39, device run 8: one-CTA backward variants running the pair variant's code path (struct1: union walk,
# per-block guard, ticket_half) against main (base); both with JAX_FA4_PAIRED_TILES=0. Host code: wip/bwd-pairs.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_PAIRED_TILES=0
L=$PWD/.carry
W=dense-4x8192-full,dense-4x8192-causal,packed-train-32768
for x in struct1 base struct1 base; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py $x $W 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
done
