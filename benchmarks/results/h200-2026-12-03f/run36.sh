# main with the lean backward loops (NEW: bwd_dkdv as LEAN, bwd_dq_sm90's element loop compiled per softcap case)
# against B: interleaved kernel times (deterministic D = 128, D = 256), tests of the paths bwd_dq_sm90 serves,
# then harness D = 128 dense + packed-train beside cuDNN and FA4's SM90 kernels
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 50 python3 -m benchmarks.kernel_breakdown --only packed-train dense-4x8192-causal "${@:2}" 2>&1 | grep "fwd+bwd: .* us of kernels" | sed "s/^/$1 $2 $3 /"; }
for lib in B NEW B NEW; do bd $lib --deterministic; done > $OUT/interleaved_det.txt
for lib in B NEW; do bd $lib --head-dim 256; done > $OUT/interleaved_d256.txt
cat $OUT/interleaved_det.txt $OUT/interleaved_d256.txt
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/NEW/libjax_fa4_kernels.so timeout 280 python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_bwd_gpu.py -k "True or 192 or 256 or deterministic" > $OUT/gpu_tests_bwd_dq.txt 2>&1
echo tests rc=$?
tail -3 $OUT/gpu_tests_bwd_dq.txt
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/NEW/libjax_fa4_kernels.so timeout 150 python3 -m benchmarks.run --only dense packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_new > $OUT/bench_new.log 2>&1; grep "^| " $OUT/bench_new.log | grep -v "skipped\|deterministic\|packed-gqa"
timeout 100 python3 .carry/fa4cmp.py dense packed-train 2>&1 | tee $OUT/fa4_3.txt
date +%T
