#!/bin/bash
# prepared in session 41, not run. Run on main ead2dba (or later, if they still apply) with
# bwd_longest_first.patch and then bwd_stream_k.patch applied (git apply; both checked to apply cleanly on ead2dba
# and to reproduce the session's branches), and the full library built into .carry/SK
# (python -m jax_fa4.build --out-dir .carry/SK).
# 1. the backward GPU tests on it (the new stream-K tail test, every head dim on the default path);
# 2. backward kernel times with the tail / the longest-first order switched off and on, interleaved.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/SK/libjax_fa4_kernels.so
timeout 400 python -m pytest -q -n 12 -m gpu tests/test_bwd_gpu.py -k "stream or False" 2>&1 | tail -4 | tee $OUT/gpu_tests_bwd_sk.txt
for r in 1 2; do for cfg in "0 0" "1 0" "1 1"; do set -- $cfg
  JAX_FA4_BWD_LONGEST_FIRST=$1 JAX_FA4_BWD_STREAM_K=$2 timeout 60 python benchmarks/results/h200-2026-12-04b/bwdtime.py "lf=$1 sk=$2" \
    dense-4x8192-full,dense-4x8192-causal,packed-train-32768 2>&1 | grep total | tee -a $OUT/bwdtime_sk.txt
done; done
