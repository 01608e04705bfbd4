#!/bin/bash
# session 40, device run 1: forward with Q in registers (Q) against main (M): tests, kernel time, sustained time.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
nvidia-smi --query-gpu=name,clocks.sm,power.draw,power.limit --format=csv | tee $OUT/gpu.txt
JAX_FA4_LIBRARY=$L/Q/libjax_fa4_kernels.so timeout 200 python -m pytest -q -m gpu tests/test_fwd_gpu.py -x 2>&1 | tail -4 | tee $OUT/gpu_tests_fwd_q.txt
kb() { JAX_FA4_LIBRARY=$L/$1/libjax_fa4_kernels.so timeout 90 python -m benchmarks.kernel_breakdown --fwd-only --only dense-4x8192-full dense-4x8192-causal dense-16x2048-causal packed-train 2>&1 | grep "us of kernels" | sed "s/^/$1 /"; }
for x in M Q M Q; do kb $x; done | tee $OUT/kernel_fwd_q.txt
for x in Q M Q M; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/sustime.py $x dense-4x8192-full,dense-4x8192-causal,packed-train 1.0 fwd 2>&1 | grep -v Warn | tee -a $OUT/sustained_fwd_q.txt
done
