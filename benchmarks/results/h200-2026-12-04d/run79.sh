#!/bin/bash
# session 39, device run 5: the pair variant's cluster, tickets and union walk WITHOUT the multicast (nomc: each CTA
# of the cluster loads its own Q / dO through its own pipeline), against base and pairs. Host code: wip/bwd-pairs.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
W=dense-4x8192-full,dense-4x8192-causal,packed-train-32768
for x in nomc base pairs nomc; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py $x $W 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
done
