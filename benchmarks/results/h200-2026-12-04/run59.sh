# A2 = run58's A with dV's GEMM waited for before dQ^T's (ptxas had serialized every wgmma of A: C7512, too few
# registers); C2 = A2 with 80-query blocks under the causal mask too. Backward GPU tests at D = 128 on C2 (it holds
# both 80-query variants), interleaved kernel times, then the harness beside cuDNN on A2.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/C2/libjax_fa4_kernels.so timeout 200 python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_bwd_gpu.py -k "128" > $OUT/gpu_tests_bwd_c2.txt 2>&1
echo tests rc=$?; tail -3 $OUT/gpu_tests_bwd_c2.txt
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 80 python3 -m benchmarks.kernel_breakdown --only "${@:2}" > $OUT/kb_$1_$(echo "${@:2}" | tr ' -' '__').txt 2>&1; grep "fwd+bwd: \|rror" $OUT/kb_$1_$(echo "${@:2}" | tr ' -' '__').txt | sed "s/^/$1 /"; }
for lib in B A2 B A2; do bd $lib dense-4x8192-full; done | tee $OUT/interleaved_a2_full.txt
for lib in B C2 B C2; do bd $lib dense-4x8192-causal; done | tee $OUT/interleaved_c2_causal.txt
for lib in B C2; do bd $lib packed-train; done | tee $OUT/interleaved_c2_packed.txt
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/A2/libjax_fa4_kernels.so timeout 120 python3 -m benchmarks.run --only dense-4x8192-full --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_a2 > $OUT/bench_a2.log 2>&1
grep "fwd+bwd | jax_fa4 |\|fwd+bwd | cudnn\|fwd | jax_fa4 |" $OUT/bench_a2.log
date +%T
