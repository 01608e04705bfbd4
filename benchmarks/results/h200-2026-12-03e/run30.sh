# second K/V stage in bwd_dkdv_sm90 (library KV2) against main (B): interleaved kernel times, then backward GPU tests on KV2
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 40 python3 -m benchmarks.kernel_breakdown --only packed-train dense-4x8192-causal "${@:2}" 2>&1 | grep "us of kernels" | sed "s/^/$1 $2 $3 /"; }
for lib in B KV2 B KV2; do bd $lib; done > $OUT/interleaved_d128.txt
for lib in B KV2; do bd $lib --deterministic; bd $lib --head-dim 96; bd $lib --head-dim 256; done > $OUT/interleaved_other.txt
cat $OUT/interleaved_d128.txt $OUT/interleaved_other.txt | grep "fwd+bwd"
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/KV2/libjax_fa4_kernels.so timeout $(( 590 - SECONDS )) python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_bwd_gpu.py tests/test_train_example.py tests/test_sharding_gpu.py > $OUT/gpu_tests_bwd_kv2.txt 2>&1
echo tests rc=$?
tail -3 $OUT/gpu_tests_bwd_kv2.txt
date +%T
