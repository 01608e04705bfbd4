# H (main) / HH (H + the half tiles' loop keeps the softmax ahead of the PV wait, every head dim): interleaved
# forward kernel times, then the forward / combine / FFI GPU tests on HH
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 60 python3 -m benchmarks.kernel_breakdown --fwd-only --only "${@:2}" 2>&1 | grep "us of kernels\|rror" | sed "s/^/$1 /"; }
for lib in H HH H HH; do bd $lib mixed-serve long-decode packed-train dense-16x2048; done | tee $OUT/interleaved_half_d128.txt
for lib in H HH; do bd $lib mixed-serve packed-train --head-dim 64; bd $lib mixed-serve --head-dim 256; done | tee $OUT/interleaved_half_d64_d256.txt
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/HH/libjax_fa4_kernels.so timeout $(( 570 - SECONDS )) python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_fwd_gpu.py tests/test_combine_gpu.py tests/test_ffi_gpu.py > $OUT/gpu_tests_fwd_hh.txt 2>&1
echo tests rc=$?; tail -3 $OUT/gpu_tests_fwd_hh.txt
date +%T
