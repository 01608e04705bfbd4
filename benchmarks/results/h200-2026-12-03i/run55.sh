# V = D + the dv pass (D = 192 / 256) at 64-query blocks without loading V (branch wip/bwd-dv-tile64): backward GPU
# tests at D = 192 / 256 on both paths (each runs the dv pass), then interleaved kernel times D / V.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/V/libjax_fa4_kernels.so timeout 280 python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_bwd_gpu.py -k "192 or 256" > $OUT/gpu_tests_bwd_v.txt 2>&1
echo tests rc=$?; tail -3 $OUT/gpu_tests_bwd_v.txt
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 80 python3 -m benchmarks.kernel_breakdown --only "${@:2}" > $OUT/kbv_$1_$(echo "${@:2}" | tr ' -' '__').txt 2>&1; grep "fwd+bwd: \|rror" $OUT/kbv_$1_$(echo "${@:2}" | tr ' -' '__').txt | sed "s/^/$1 /"; }
for lib in D V D V; do bd $lib dense-4x8192-causal --head-dim 256; done | tee $OUT/interleaved_dv_d256_causal.txt
date +%T
for lib in D V; do bd $lib dense-4x8192-full --head-dim 256; bd $lib packed-train --head-dim 256; bd $lib dense-4x8192-causal --head-dim 192; done | tee $OUT/interleaved_dv_other.txt
date +%T
