#!/bin/bash
# session 43, prepared, not run. D = 64 forward + backward kernel time (profiler, interleaved processes) of M64r
# (main) and KR64r (branch wip/bwd-d64-kv-regs: K / V rows as register operands of S^T and dP^T; README here),
# then the benchmark beside cuDNN for KR64r (main's: ../h200-2026-12-04f/, dense full / causal / packed-train
# forward + backward 1.01x / 1.04x / 1.85x). About 6 minutes. carry: .carry/M64r .carry/KR64r .carry/exp
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
W=dense-4x8192-full,dense-4x8192-causal,packed-train
for x in M64r KR64r KR64r M64r; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 120 python .carry/exp/bwdtime_d.py $x 64 $W 2>&1 | grep -v Warn
done | tee $OUT/bwd_d64_kernel_time.txt
JAX_FA4_LIBRARY=$L/KR64r/libjax_fa4_kernels.so timeout 200 python -m benchmarks.run --head-dim 64 \
  --only dense-4x8192-full dense-4x8192-causal packed-train --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 \
  --out $OUT/bench_d64_kr 2>&1 | tail -12
