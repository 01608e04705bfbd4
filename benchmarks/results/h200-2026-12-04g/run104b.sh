#!/bin/bash
# session 42, prepared, not run. Forward kernel time (profiler, interleaved processes) and sustained harness time of
# XT (see run104a.sh) against FULL (main 81f9723's full library, whose forward kernels are SASS-identical to those
# of main at the time of writing). carry: .carry/XT .carry/FULL .carry/exp (sustime.py: also in
# benchmarks/results/h200-2026-12-04e/).
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
nvidia-smi --query-gpu=name,clocks.sm,power.draw,power.limit --format=csv | tee $OUT/gpu.txt
kb() { JAX_FA4_LIBRARY=$L/$1/libjax_fa4_kernels.so timeout 100 python -m benchmarks.kernel_breakdown --fwd-only \
  --only dense-4x8192-full dense-4x8192-causal dense-16x2048-causal packed-train mixed-serve 2>&1 | grep "us of kernels" | sed "s/^/$1 /"; }
for x in FULL XT FULL XT; do kb $x; done | tee $OUT/kernel_fwd_xt.txt
for x in XT FULL XT FULL; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/sustime.py $x \
    dense-4x8192-full,dense-4x8192-causal,packed-train 1.0 fwd 2>&1 | grep -v Warn | tee -a $OUT/sustained_fwd_xt.txt
done
