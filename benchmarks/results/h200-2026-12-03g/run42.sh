# forward: B (main) vs LAZY (lazy O rescale), interleaved kernel times; forward / combine / FFI GPU tests on LAZY
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 80 python3 -m benchmarks.kernel_breakdown --fwd-only --only dense-4x8192 packed-train dense-16x2048 mixed-serve long-decode "${@:2}" 2>&1 | grep "us of kernels" | sed "s/^/$1 $2 $3 /"; }
for lib in B LAZY B LAZY; do bd $lib; done | tee $OUT/interleaved_fwd_lazy.txt
for lib in B LAZY; do bd $lib --head-dim 64; bd $lib --head-dim 256; done | tee $OUT/interleaved_fwd_lazy_d64_d256.txt
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/LAZY/libjax_fa4_kernels.so timeout $(( 580 - SECONDS )) python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_fwd_gpu.py tests/test_combine_gpu.py tests/test_ffi_gpu.py > $OUT/gpu_tests_fwd_lazy.txt 2>&1
echo tests rc=$?
tail -3 $OUT/gpu_tests_fwd_lazy.txt
date +%T
