# D beside cuDNN at D = 256 and D = 192 (dense 4x8192 full / causal, packed-train; forward and forward + backward).
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/D/libjax_fa4_kernels.so
date +%T
for d in 256 192; do
  timeout $(( (585 - SECONDS) / 2 + 20 )) python3 -m benchmarks.run --head-dim $d --only dense-4x8192 packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_d_d$d > $OUT/bench_d_d$d.log 2>&1
  echo bench $d rc=$?; grep -E "jax_fa4|cudnn" $OUT/bench_d_d$d.log | head -20
  date +%T
done
