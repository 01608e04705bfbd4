#!/bin/bash
# session 42, prepared, not run: the timing half of run103.sh (see run105a.sh for the tree and library). Backward
# kernel times with the longest-first order (lf) and the stream-K tail (sk) switched off and on, interleaved.
# carry: .carry/SK
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/SK/libjax_fa4_kernels.so
for r in 1 2; do for cfg in "0 0" "1 0" "1 1"; do set -- $cfg
  JAX_FA4_BWD_LONGEST_FIRST=$1 JAX_FA4_BWD_STREAM_K=$2 timeout 80 python benchmarks/results/h200-2026-12-04b/bwdtime.py \
    "lf=$1 sk=$2" dense-4x8192-full,dense-4x8192-causal,packed-train-32768 2>&1 | grep total | tee -a $OUT/bwdtime_sk.txt
done; done
