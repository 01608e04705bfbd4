# forward: B (main) vs ORDER (softmax kept ahead of the PV wait) vs BOTH (ORDER + lazy rescale), interleaved kernel
# times; then the forward / combine / FFI GPU tests on BOTH
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 80 python3 -m benchmarks.kernel_breakdown --fwd-only --only dense-4x8192 packed-train dense-16x2048 mixed-serve long-decode 2>&1 | grep "us of kernels" | sed "s/^/$1 /"; }
for lib in B ORDER BOTH B ORDER BOTH; do bd $lib; done | tee $OUT/interleaved_fwd.txt
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/BOTH/libjax_fa4_kernels.so timeout $(( 560 - SECONDS )) python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_fwd_gpu.py tests/test_combine_gpu.py tests/test_ffi_gpu.py > $OUT/gpu_tests_fwd_both.txt 2>&1
echo tests rc=$?
tail -3 $OUT/gpu_tests_fwd_both.txt
date +%T
