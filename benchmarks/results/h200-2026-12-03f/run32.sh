# forward D = 128 "none": main (B, 176 keys, 1 Q stage) vs 128 keys (T128) vs 128 keys + 2 Q stages (T128Q2), interleaved
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv | tee $OUT/gpu.txt
bd() { JAX_FA4_LIBRARY=$PWD/.carry/$1/libjax_fa4_kernels.so timeout 60 python3 -m benchmarks.kernel_breakdown --fwd-only --only dense-4x8192-full "${@:2}" 2>&1 | grep "fwd: .* us of kernels" | sed "s/^/$1 $2 $3 /"; }
for lib in B T128 T128Q2 B T128 T128Q2; do bd $lib; done | tee $OUT/interleaved_fwd_none.txt
for lib in B T128 T128Q2; do
  JAX_FA4_LIBRARY=$PWD/.carry/$lib/libjax_fa4_kernels.so timeout 150 python3 -m benchmarks.run --fwd-only --only dense-4x8192-full --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_$lib > $OUT/bench_$lib.log 2>&1; tail -5 $OUT/bench_$lib.log
done
