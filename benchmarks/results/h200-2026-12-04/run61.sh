# T144 / T160 = main + D = 128 forward without a mask at 144 / 160-key tiles with two Q stages (branches
# wip/fwd-d128-t144, wip/fwd-d128-t160), each run with its own Python package (metadata.default_tiles) from
# .carry/X/pkg. Forward tests at D = 128 without a mask, then interleaved forward kernel times B / T144 / T160.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
for X in T144 T160; do
  PYTHONPATH=.carry/$X/pkg:. JAX_FA4_LIBRARY=$PWD/.carry/$X/libjax_fa4_kernels.so timeout 100 python3 -m pytest -m gpu -n 8 -q -p no:cacheprovider tests/test_fwd_gpu.py -k "(128 and none) or last_m_block or caller_metadata" > $OUT/gpu_tests_fwd_$X.txt 2>&1
  echo $X tests rc=$?; tail -2 $OUT/gpu_tests_fwd_$X.txt
done
date +%T
bf() { pp=.; [ -d .carry/$1/pkg ] && pp=.carry/$1/pkg:.; PYTHONPATH=$pp JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 60 python3 -m benchmarks.kernel_breakdown --fwd-only --only "${@:2}" > $OUT/kbf_$1_$(echo "${@:2}" | tr ' -' '__').txt 2>&1; grep "fwd: \|rror" $OUT/kbf_$1_$(echo "${@:2}" | tr ' -' '__').txt | sed "s/^/$1 /"; }
for lib in B T144 T160 B T144 T160; do bf $lib dense-4x8192-full; done | tee $OUT/interleaved_fwd_t144_t160.txt
date +%T
