#!/bin/bash
# session 46, prepared, not run: `bash run124.sh LIB TREE` = ../h200-2026-12-05b/run120.sh for any library: the whole
# backward GPU file on both paths side by side (plus the sharding tests and the training example on the default
# path), from the untracked tree TREE/ against .carry/LIB, then the D = 128 table. About 6-7 minutes on an H200.
# With LIB = Q80 and TREE = x_q (wip/bwd-q80b, which contains wip/bwd-kr-lf) it tests the paired stores and the
# 80-query blocks together, in place of run120.sh (KLB) + run123.sh. carry: .carry/LIB
lib=${1:?library folder under .carry}; tree=${2:?tree}
R=benchmarks/results/h200-2026-12-05b/run119.sh
bash $R $lib $tree True > $OUT/t_true.log 2>&1 &
bash $R $lib $tree False
wait
tail -3 $OUT/t_true.log
cd $tree && PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/../.carry/$lib/libjax_fa4_kernels.so \
  timeout 120 python -m benchmarks.run --only dense-4x8192 dense-16x2048 packed-train --impl jax_fa4 cudnn \
  --no-ablation --max-seconds 0.3 > $OUT/bench_$lib.txt 2>&1
grep "| jax_fa4 |" $OUT/bench_$lib.txt
