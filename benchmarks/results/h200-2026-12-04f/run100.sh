#!/bin/bash
# session 41, device run 4: forward with and without GQA packing (jax_fa4 vs jax_fa4-packed-gqa) on short causal sequences at D = 128 / 192 / 256, two rounds
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/FULL/libjax_fa4_kernels.so
for r in 1 2; do for d in 256 192 128; do
  timeout 80 python -m benchmarks.run --fwd-only --head-dim $d --only packed-train dense-16x2048 --impl jax_fa4 --no-ablation --max-seconds 0.3 --out $OUT/pack_d${d}_r$r 2>&1 | grep -E "^  jax_fa4" | sed "s/^/r$r d$d /" | tee -a $OUT/pack_gqa_by_dim.txt
done; done
