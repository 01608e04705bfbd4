# forward: B (main) vs F (full tiles of masked D <= 128 variants: softmax ahead of the PV wait + lazy O rescale),
# interleaved kernel times; then forward / combine / FFI GPU tests and the training example on F
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 80 python3 -m benchmarks.kernel_breakdown --fwd-only --only dense-4x8192 packed-train dense-16x2048 mixed-serve "${@:2}" 2>&1 | grep "us of kernels" | sed "s/^/$1 $2 $3 /"; }
for lib in B F B F; do bd $lib; done | tee $OUT/interleaved_fwd_f.txt
for lib in B F; do bd $lib --head-dim 64; done | tee $OUT/interleaved_fwd_f_d64.txt
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/F/libjax_fa4_kernels.so timeout $(( 585 - SECONDS )) python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_fwd_gpu.py tests/test_combine_gpu.py tests/test_ffi_gpu.py tests/test_train_example.py > $OUT/gpu_tests_fwd_f.txt 2>&1
echo tests rc=$?
tail -3 $OUT/gpu_tests_fwd_f.txt
date +%T
