# The final library (main: dkdq + the dv pass at 64-query blocks) beside cuDNN at D = 256 and 192.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/F/libjax_fa4_kernels.so
date +%T
for d in 256 192; do
  timeout $(( (400 - SECONDS) / 2 + 20 )) python3 -m benchmarks.run --head-dim $d --only dense-4x8192 packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_f_d$d > $OUT/bench_f_d$d.log 2>&1
  echo bench $d rc=$?; grep -E "jax_fa4 |cudnn" $OUT/bench_f_d$d.log | head -20
  date +%T
done
