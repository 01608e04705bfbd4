#!/bin/bash
# session 46, prepared, not run (no device was lent). The D = 128 backward at 80-query blocks without a mask (branch
# wip/bwd-q80b, library .carry/Q80) against its base (wip/bwd-kr-lf, .carry/KLB), each from its own tree: first
# backward kernel time, interleaved processes, then the D = 128 unmasked default-path oracle tests and the dQ
# conversion tests on Q80, then Q80 beside cuDNN. About 6-7 minutes on an H200.
# Before it, here: `bash benchmarks/results/cpu-2026-12-05/make_x_tree.sh x_m wip/bwd-kr-lf` and
# `bash benchmarks/results/cpu-2026-12-05/make_x_tree.sh x_q wip/bwd-q80b`. carry: .carry/KLB .carry/Q80
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONPATH=.
L=$PWD/.carry
for x in KLB:x_m Q80:x_q Q80:x_q KLB:x_m; do
  lib=${x%%:*}; tree=${x##*:}
  (cd $tree && JAX_FA4_LIBRARY=$L/$lib/libjax_fa4_kernels.so timeout 90 python \
    benchmarks/results/h200-2026-12-04b/bwdtime.py $lib dense-4x8192-full,dense-4x8192-causal,packed-train-32768 \
    2>&1 | grep total)
done | tee $OUT/bwdtime_q80.txt
cd x_q && export JAX_FA4_LIBRARY=$L/Q80/libjax_fa4_kernels.so
timeout 200 python -m pytest -n 12 -m gpu -rA tests/test_bwd_gpu.py -k "(128 and none and False) or convert" \
  -p no:cacheprovider 2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" | tee $OUT/gpu_tests_q80.txt | tail -4
timeout 120 python -m benchmarks.run --only dense-4x8192 packed-train --impl jax_fa4 cudnn --no-ablation \
  --max-seconds 0.3 > $OUT/bench_q80.txt 2>&1
grep "| jax_fa4 |" $OUT/bench_q80.txt
