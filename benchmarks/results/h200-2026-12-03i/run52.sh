# D = main + the "dkdq" pass at D = 192 / 256 (dK and atomic dQ^T = K^T dS^T in one launch, dV in another):
# backward GPU tests at D = 192 / 256 (both paths) and the dQ conversion; interleaved kernel times H (main) / D.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/D/libjax_fa4_kernels.so timeout 300 python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_bwd_gpu.py -k "192 or 256 or convert or default" > $OUT/gpu_tests_bwd_d.txt 2>&1
echo tests rc=$?; tail -3 $OUT/gpu_tests_bwd_d.txt
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 80 python3 -m benchmarks.kernel_breakdown --only "${@:2}" > $OUT/kb_$1_$(echo "${@:2}" | tr ' -' '__').txt 2>&1; grep "us of kernels\|rror" $OUT/kb_$1_$(echo "${@:2}" | tr ' -' '__').txt | sed "s/^/$1 /"; }
for lib in H D H D; do bd $lib dense-4x8192-causal --head-dim 256; done | tee $OUT/interleaved_d256_causal.txt
date +%T
for lib in H D; do bd $lib dense-4x8192-full --head-dim 256; bd $lib packed-train --head-dim 256; bd $lib dense-4x8192-causal --head-dim 192; done | tee $OUT/interleaved_other.txt
date +%T
