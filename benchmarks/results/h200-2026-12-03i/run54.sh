# O = D + the softmax ahead of the PV wait at D = 96 (with the lazy rescale) and D = 64 (without); branch
# wip/fwd-order-d96. Interleaved forward kernel times D / O at D = 64 and 96, then O's forward GPU tests at those dims.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 70 python3 -m benchmarks.kernel_breakdown --fwd-only --only "${@:2}" 2>&1 | grep "us of kernels\|rror" | sed "s/^/$1 /"; }
for lib in D O D O; do bd $lib dense-4x8192 dense-16x2048 packed-train mixed-serve --head-dim 64; bd $lib dense-4x8192 dense-16x2048 packed-train mixed-serve --head-dim 96; done | tee $OUT/interleaved_fwd_order_d64_d96.txt
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/O/libjax_fa4_kernels.so timeout $(( 585 - SECONDS )) python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_fwd_gpu.py -k "d64 or d96 or 64 or 96" > $OUT/gpu_tests_fwd_o.txt 2>&1
echo tests rc=$?; tail -3 $OUT/gpu_tests_fwd_o.txt
date +%T
