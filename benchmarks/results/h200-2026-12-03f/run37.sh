# harness at D = 64 / 96 on main c872b4a's library (NEW), beside cuDNN
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/NEW/libjax_fa4_kernels.so
date +%T
timeout 110 python3 -m benchmarks.run --head-dim 64 --only dense packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_d64 > $OUT/bench_d64.log 2>&1; grep "^| " $OUT/bench_d64.log | grep -v "skipped\|deterministic\|packed-gqa"
date +%T
timeout 80 python3 -m benchmarks.run --head-dim 96 --only dense-4x8192-causal packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_d96 > $OUT/bench_d96.log 2>&1; grep "^| " $OUT/bench_d96.log | grep -v "skipped\|deterministic\|packed-gqa"
date +%T
