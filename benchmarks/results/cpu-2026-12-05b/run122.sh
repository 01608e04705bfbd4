#!/bin/bash
# session 46, prepared, not run (no device was lent). Backward kernel time of the D = 128 one-kernel pass at
# 80-query blocks against its base, interleaved processes, each library from its own tree (profiler, one fwd+bwd
# call per workload, benchmarks/results/h200-2026-12-04b/bwdtime.py): KLBr (wip/bwd-kr-lf), Q80r (wip/bwd-q80b:
# unmasked only), Q80Cr (wip/bwd-q80c: causal too), Q80Kr (wip/bwd-q80-kfirst: dK's GEMM issued before dV's is
# awaited); the Q80 ones share Q80r's host code. Dense full, dense causal, packed-train (causal). About 6 minutes on
# an H200 (8 processes, each cut at 70 s so that the command stays under 600 s). Libraries: build_reduced.sh.
# Before it, here: `bash benchmarks/results/cpu-2026-12-05/make_x_tree.sh x_m wip/bwd-kr-lf` and
# `bash benchmarks/results/cpu-2026-12-05/make_x_tree.sh x_q wip/bwd-q80b`.
# carry: .carry/KLBr .carry/Q80r .carry/Q80Cr .carry/Q80Kr
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONPATH=.
L=$PWD/.carry
for x in KLBr:x_m Q80r:x_q Q80Cr:x_q Q80Kr:x_q Q80Kr:x_q Q80Cr:x_q Q80r:x_q KLBr:x_m; do
  lib=${x%%:*}; tree=${x##*:}
  (cd $tree && JAX_FA4_LIBRARY=$L/$lib/libjax_fa4_kernels.so timeout 70 python \
    benchmarks/results/h200-2026-12-04b/bwdtime.py $lib dense-4x8192-full,dense-4x8192-causal,packed-train-32768 \
    2>&1 | grep total)
done | tee $OUT/bwdtime_q80.txt
