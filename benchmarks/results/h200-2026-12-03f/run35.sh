# leaner bwd_dkdv_sm90 loop (LEAN: softcap branch outside the element loop, dS^T stores by XOR offsets) against main (B):
# interleaved kernel times at D = 128 / 64 / 96, harness fwd+bwd beside cuDNN, then the backward GPU tests on LEAN
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 50 python3 -m benchmarks.kernel_breakdown --only packed-train dense-4x8192 "${@:2}" 2>&1 | grep "us of kernels" | sed "s/^/$1 $2 $3 /"; }
for lib in B LEAN B LEAN; do bd $lib; done > $OUT/interleaved_d128.txt
for lib in B LEAN; do bd $lib --head-dim 64; bd $lib --head-dim 96; done > $OUT/interleaved_d64_d96.txt
cat $OUT/interleaved_d128.txt $OUT/interleaved_d64_d96.txt
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/LEAN/libjax_fa4_kernels.so timeout $(( 590 - SECONDS )) python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_bwd_gpu.py tests/test_train_example.py tests/test_sharding_gpu.py > $OUT/gpu_tests_bwd_lean.txt 2>&1
echo tests rc=$?
tail -3 $OUT/gpu_tests_bwd_lean.txt
date +%T
