#!/bin/bash
# session 43, prepared, not run. Backward kernel time (profiler, interleaved processes) of M128r (main) and BSr
# (branch wip/bwd-store-pairs: dK / dV stored as 32-bit pairs; README here), D = 128, one fwd+bwd call each.
# About 3 minutes. carry: .carry/M128r .carry/BSr
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
for x in M128r BSr BSr M128r; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 80 python benchmarks/results/h200-2026-12-04b/bwdtime.py $x \
    dense-4x8192-full,dense-4x8192-causal,packed-train-32768 2>&1 | grep total
done | tee $OUT/bwdtime_store_pairs.txt
