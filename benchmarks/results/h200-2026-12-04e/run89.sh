#!/bin/bash
# session 40, device run 2: Q in registers after the tile's first S GEMM (Q2) against main (M): tests, kernel time, sustained.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
JAX_FA4_LIBRARY=$L/Q2/libjax_fa4_kernels.so timeout 200 python -m pytest -q -m gpu tests/test_fwd_gpu.py -k "128 or scheduler or poisoning or caller" 2>&1 | tail -4 | tee $OUT/gpu_tests_fwd_q2.txt
kb() { JAX_FA4_LIBRARY=$L/$1/libjax_fa4_kernels.so timeout 90 python -m benchmarks.kernel_breakdown --fwd-only --only dense-4x8192-full dense-4x8192-causal dense-16x2048-causal packed-train 2>&1 | grep "us of kernels" | sed "s/^/$1 /"; }
for x in M Q2 M Q2; do kb $x; done | tee $OUT/kernel_fwd_q2.txt
for x in Q2 M Q2 M; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/sustime.py $x dense-4x8192-full,dense-4x8192-causal,packed-train-32768 1.0 fwd 2>&1 | grep -v Warn | tee -a $OUT/sustained_fwd_q2.txt
done
