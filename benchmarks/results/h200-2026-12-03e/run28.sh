# harness beside cuDNN at head dims 64 and 96 (one-kernel backward library D64)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/D64/libjax_fa4_kernels.so
date +%T
timeout 330 python3 -m benchmarks.run --head-dim 64 --only dense packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_d64 > $OUT/bench_d64_log.txt 2>&1
echo rc=$?
date +%T
timeout $(( 570 - SECONDS )) python3 -m benchmarks.run --head-dim 96 --only packed-train dense-4x8192-causal --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_d96 > $OUT/bench_d96_log.txt 2>&1
echo rc=$?
rm -f $OUT/bench_d64/*.png $OUT/bench_d96/*.png
date +%T
