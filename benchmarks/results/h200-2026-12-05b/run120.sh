#!/bin/bash
# session 45, prepared, not run: the first command of the next device session (about 6-7 minutes). The paired-store
# library .carry/KLB (branch wip/bwd-kr-lf) through both backward test paths side by side, then the D = 128 table.
# Before it, here: `bash benchmarks/results/cpu-2026-12-05/make_x_tree.sh x_m wip/bwd-kr-lf`. carry: .carry/KLB
R=benchmarks/results/h200-2026-12-05b/run119.sh
bash $R KLB x_m True > $OUT/t_true.log 2>&1 &
bash $R KLB x_m False
wait
tail -3 $OUT/t_true.log
cd x_m && PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/../.carry/KLB/libjax_fa4_kernels.so \
  timeout 120 python -m benchmarks.run --only dense-4x8192 dense-16x2048 packed-train --impl jax_fa4 cudnn \
  --no-ablation --max-seconds 0.3 > $OUT/bench_klb.txt 2>&1
grep "| jax_fa4 |" $OUT/bench_klb.txt
