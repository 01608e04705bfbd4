# FA4's SM90 kernels (AOT, torch) beside jax_fa4 and cuDNN (JAX harness), interleaved processes
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/B/libjax_fa4_kernels.so
timeout 200 python3 .carry/fa4cmp.py --check dense packed-train 2>&1 | tee $OUT/fa4_1.txt
timeout 240 python3 -m benchmarks.run --only dense packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out $OUT/bench_main > $OUT/bench_main.log 2>&1; grep "^| " $OUT/bench_main.log | grep -v skipped
timeout 150 python3 .carry/fa4cmp.py dense packed-train 2>&1 | tee $OUT/fa4_2.txt
