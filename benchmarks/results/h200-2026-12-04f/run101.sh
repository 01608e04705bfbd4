#!/bin/bash
# session 41, device run 5: main's full library beside cuDNN at D = 64 and D = 96 (forward and forward + backward)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/FULL/libjax_fa4_kernels.so
for d in 64 96; do
  timeout 150 python -m benchmarks.run --head-dim $d --only dense-4x8192 packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_d$d > $OUT/bench_d$d.log 2>&1
  grep "^| " $OUT/bench_d$d/results.md | grep -v "skipped\|deterministic\|packed-gqa"
done
