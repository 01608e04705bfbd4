# one-kernel backward at D = 64 / 96: kernel times (one kernel vs the two fixed-order kernels), then the backward GPU tests
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/D64/libjax_fa4_kernels.so
date +%T
for d in 64 96; do
  timeout 50 python3 -m benchmarks.kernel_breakdown --only packed-train dense-4x8192-causal --head-dim $d > $OUT/breakdown_d$d.txt 2>&1
  timeout 50 python3 -m benchmarks.kernel_breakdown --only packed-train dense-4x8192-causal --head-dim $d --deterministic > $OUT/breakdown_d${d}_det.txt 2>&1
  date +%T
done
timeout $(( 590 - SECONDS )) python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_bwd_gpu.py tests/test_train_example.py tests/test_sharding_gpu.py > $OUT/gpu_tests_bwd.txt 2>&1
echo tests rc=$?
tail -3 $OUT/gpu_tests_bwd.txt
date +%T
