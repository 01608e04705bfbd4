#!/bin/bash
# session 38, device run 2: forward with V never loaded (noV: half the K/V L2 traffic, same math; wrong results):
# does the L2 traffic cost time under the sustained (power-capped) harness?
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
for round in 1 2; do
  for lib in S noV; do
    export JAX_FA4_LIBRARY=$PWD/.carry/$lib/libjax_fa4_kernels.so
    timeout 150 python -m benchmarks.run --only dense-4x8192 mixed-serve --impl jax_fa4 --no-ablation --fwd-only --max-seconds 0.5 --out $OUT/bench_${lib}_$round > $OUT/bench_${lib}_$round.log 2>&1
    echo "$lib round $round harness:"; grep -E "jax_fa4" $OUT/bench_${lib}_$round.log | head -6
    timeout 100 python -m benchmarks.kernel_breakdown --only dense-4x8192 --fwd-only 2>&1 | grep -E "fwd:" | sed "s/^/$lib kernel /"
  done
done
