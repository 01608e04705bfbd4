# H beside cuDNN at head dims 256 and 192 (dense 4x8192, packed-train; forward and forward + backward)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/H/libjax_fa4_kernels.so
date +%T
for d in 256 192; do
  timeout $(( (560 - SECONDS) / (d == 256 ? 2 : 1) )) python3 -m benchmarks.run --head-dim $d --only dense-4x8192 packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_h_d$d > $OUT/bench_h_d$d.log 2>&1
  echo d=$d rc=$?; grep -E "^\| " $OUT/bench_h_d$d.log | grep -v "skipped\|deterministic\|packed-gqa"
  date +%T
done
