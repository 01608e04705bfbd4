#!/bin/bash
# session 44 (make x_sk/ with make_x_tree.sh first, see its header): run105b.sh (the backward's longest-first order and stream-K tail, timing) from x_sk/, an untracked
# copy of main with ../h200-2026-12-04f/bwd_longest_first.patch and bwd_stream_k.patch applied (patch -p1), then as
# much of run110.sh's D = 64 kernel timing as fits in 560 s. carry: .carry/SK .carry/M64r .carry/KR64r .carry/exp
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
root=$PWD
(cd x_sk && mkdir -p .carry && ln -sfn $root/.carry/SK .carry/SK && OUT=$OUT bash benchmarks/results/h200-2026-12-04g/run105b.sh)
L=$root/.carry
for x in M64r KR64r KR64r M64r; do
  [ $SECONDS -gt 470 ] && break
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 90 python .carry/exp/bwdtime_d.py $x 64 \
    dense-4x8192-full,dense-4x8192-causal,packed-train 2>&1 | grep -v Warn
done | tee $OUT/bwd_d64_kernel_time.txt
echo "elapsed $SECONDS s"
