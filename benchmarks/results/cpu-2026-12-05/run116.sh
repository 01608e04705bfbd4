#!/bin/bash
# session 44: one command for a device that is hard to get: run108.sh's forward kernel timing (FULLr / XTr / FEr /
# XFr), then one round of run105b.sh's backward timing (longest-first order / stream-K tail, from x_sk/, made by make_x_tree.sh,
# see its header), then run108.sh's sustained pass while time is left. Each part writes to $OUT as it goes.
# carry: .carry/FULLr .carry/XTr .carry/FEr .carry/XFr .carry/exp .carry/SK
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
root=$PWD; L=$root/.carry
nvidia-smi --query-gpu=name,clocks.sm,power.draw,power.limit --format=csv | tee $OUT/gpu.txt
kb() { JAX_FA4_LIBRARY=$L/$1/libjax_fa4_kernels.so timeout 100 python -m benchmarks.kernel_breakdown --fwd-only \
  --only dense-4x8192-full dense-4x8192-causal dense-16x2048-causal packed-train mixed-serve 2>&1 | grep "us of kernels" | sed "s/^/$1 /"; }
for x in FULLr XTr FEr XFr XFr FEr XTr FULLr; do kb $x; echo "t=$SECONDS" >&2; done | tee $OUT/kernel_fwd.txt
cd x_sk
for cfg in "0 0" "1 0" "1 1"; do set -- $cfg
  [ $SECONDS -gt 500 ] && break
  JAX_FA4_LIBRARY=$L/SK/libjax_fa4_kernels.so JAX_FA4_BWD_LONGEST_FIRST=$1 JAX_FA4_BWD_STREAM_K=$2 timeout 80 \
    python benchmarks/results/h200-2026-12-04b/bwdtime.py "lf=$1 sk=$2" \
    dense-4x8192-full,dense-4x8192-causal,packed-train-32768 2>&1 | grep total | tee -a $OUT/bwdtime_sk.txt
done
cd $root
for x in XFr FEr XTr FULLr; do
  [ $SECONDS -gt 530 ] && break
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/sustime.py $x \
    dense-4x8192-full,dense-4x8192-causal,packed-train 1.0 fwd 2>&1 | grep -v Warn | tee -a $OUT/sustained_fwd.txt
done
echo "elapsed $SECONDS s"
