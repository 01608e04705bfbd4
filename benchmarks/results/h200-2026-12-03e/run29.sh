# harness beside cuDNN at head dims 192 and 256 (main library)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/B/libjax_fa4_kernels.so
date +%T
for d in 192 256; do
  timeout $(( (d == 192 ? 280 : 560) - SECONDS )) python3 -m benchmarks.run --head-dim $d --only dense-4x8192 packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_d$d > $OUT/bench_d${d}_log.txt 2>&1
  echo rc=$?
  rm -f $OUT/bench_d$d/*.png
  date +%T
done
