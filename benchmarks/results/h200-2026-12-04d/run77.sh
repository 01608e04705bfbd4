#!/bin/bash
# session 39, device run 3: backward pair variant with 32 producer registers (p2r) and also 3 Q stages (p3r), against
# main's kernels (base) and the first pair build (pairs). Profiler kernel times.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
W=dense-4x8192-full,dense-4x8192-causal,packed-train-32768
JAX_FA4_LIBRARY=$L/p3r/libjax_fa4_kernels.so timeout 200 python -m pytest -m gpu -n 4 -q -p no:cacheprovider tests/test_bwd_gpu.py -k "pair_backward and bf16" > $OUT/gpu_tests_p3r.txt 2>&1
tail -1 $OUT/gpu_tests_p3r.txt
for x in base p2r p3r pairs base p3r; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 100 python .carry/exp/bwdtime.py $x $W 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
done
