#!/bin/bash
# session 43, prepared, not run. Forward kernel time (profiler, interleaved processes) and sustained harness time of
# four D = 128 libraries (build_reduced.sh): FULLr (main), XTr (the cross-tile forward of ../h200-2026-12-04g/;
# this replaces that folder's run104b.sh), FEr (the staged epilogue by stmatrix with approximate 1/sum and log2, and
# shift/mask row arithmetic; README here) and XFr (both). About 6 minutes (session 44: the sustained pass once per library). carry: .carry/FULLr .carry/XTr
# .carry/FEr .carry/XFr .carry/exp (sustime.py, also in ../h200-2026-12-04e/)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
nvidia-smi --query-gpu=name,clocks.sm,power.draw,power.limit --format=csv | tee $OUT/gpu.txt
kb() { JAX_FA4_LIBRARY=$L/$1/libjax_fa4_kernels.so timeout 100 python -m benchmarks.kernel_breakdown --fwd-only \
  --only dense-4x8192-full dense-4x8192-causal dense-16x2048-causal packed-train mixed-serve 2>&1 | grep "us of kernels" | sed "s/^/$1 /"; }
for x in FULLr XTr FEr XFr XFr FEr XTr FULLr; do kb $x; done | tee $OUT/kernel_fwd.txt
for x in XFr FEr XTr FULLr; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/sustime.py $x \
    dense-4x8192-full,dense-4x8192-causal,packed-train 1.0 fwd 2>&1 | grep -v Warn | tee -a $OUT/sustained_fwd.txt
done
