#!/bin/bash
# session 39, device run 6: is the cluster launch's grid all resident? Backward kernel time on dense 4x8192 full with
# the grid forced to N CTAs (bwdsms.py), for the cluster variant without multicast (nomc) and the one-CTA kernel (base).
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
for x in "nomc 132" "nomc 120" "base 132" "base 120" "nomc 104" "nomc 66"; do
  set -- $x
  JAX_FA4_LIBRARY=$L/$1/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdsms.py $1 $2 dense-4x8192-full 2>&1 | grep -v Warn | tee -a $OUT/bwdsms.txt
done
