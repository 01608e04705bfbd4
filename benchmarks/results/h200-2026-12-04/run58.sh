# A = D = 128 unmasked dQ pass at 80-query blocks (dQ^T); B = main e26482c. Backward GPU tests at D = 128 on A,
# interleaved kernel times B / A on dense 4x8192 full (forward kernels identical), then the harness beside cuDNN.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/A/libjax_fa4_kernels.so timeout 200 python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_bwd_gpu.py -k "128" > $OUT/gpu_tests_bwd_a.txt 2>&1
echo tests rc=$?; tail -3 $OUT/gpu_tests_bwd_a.txt
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 80 python3 -m benchmarks.kernel_breakdown --only "${@:2}" > $OUT/kb_$1_$(echo "${@:2}" | tr ' -' '__').txt 2>&1; grep "fwd+bwd: \|rror" $OUT/kb_$1_$(echo "${@:2}" | tr ' -' '__').txt | sed "s/^/$1 /"; }
for lib in B A B A; do bd $lib dense-4x8192-full; done | tee $OUT/interleaved_a_full.txt
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/A/libjax_fa4_kernels.so timeout 120 python3 -m benchmarks.run --only dense-4x8192-full --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_a > $OUT/bench_a.log 2>&1
tail -12 $OUT/bench_a.log
date +%T
