# final library (FINAL = F with lazy_overlap at D = 128 only): harness beside cuDNN, D = 128 causal training shapes
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/FINAL/libjax_fa4_kernels.so
date +%T
timeout 200 python3 -m benchmarks.run --only dense-4x8192-causal dense-16x2048 packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_final > $OUT/bench_final.log 2>&1; grep "^| " $OUT/bench_final.log | grep -v "skipped\|deterministic\|packed-gqa"
date +%T
