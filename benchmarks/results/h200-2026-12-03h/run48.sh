# H = main + order_pv at D >= 128 (128-key tiles without a mask at D = 128): forward / combine / FFI GPU tests and
# the training example; interleaved kernel times B / H; then the harness beside cuDNN on dense 4x8192.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/H/libjax_fa4_kernels.so timeout 320 python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_fwd_gpu.py tests/test_combine_gpu.py tests/test_ffi_gpu.py tests/test_train_example.py > $OUT/gpu_tests_fwd_h.txt 2>&1
echo tests rc=$?; tail -3 $OUT/gpu_tests_fwd_h.txt
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 60 python3 -m benchmarks.kernel_breakdown --fwd-only --only "${@:2}" 2>&1 | grep "us of kernels\|rror" | sed "s/^/$1 /"; }
for lib in B H B H; do bd $lib dense-4x8192; bd $lib dense-4x8192-causal --head-dim 256; done | tee $OUT/interleaved_h.txt
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/H/libjax_fa4_kernels.so timeout $(( 585 - SECONDS )) python3 -m benchmarks.run --only dense-4x8192 --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_h > $OUT/bench_h.log 2>&1
echo bench rc=$?; grep -E "jax_fa4|cudnn" $OUT/bench_h.log | head -30
date +%T
