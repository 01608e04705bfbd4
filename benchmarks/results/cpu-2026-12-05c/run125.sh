#!/bin/bash
# session 47, prepared, not run (no device was lent): issue 6's H100 targets and the H100 forward / backward table, on
# main's library (.carry/KRLF = the kernels of main a3dae21, which later commits did not change). Only worth running on
# an H100 (`kind: nvidia-h100-x1`); it stops at once elsewhere. About 4-5 minutes. carry: .carry/KRLF
#   1. mixed-serve and long-decode beside cuDNN with the scheduler ablation (longest first on / off) and the device
#      ceilings (read / copy bandwidth) measured in the same process: issue 6's mixed-serve <= 3.4 ms, long-decode
#      >= 3.0 TB/s and the longest-first effect;
#   2. dense 4x8192 full / causal, 16x2048 causal and packed-train, forward and forward + backward, beside cuDNN:
#      issue 5's and issue 7's targets, which are stated for an H100.
# The results come back as one archive (the device tool returns at most 8 files).
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/${LIB:-KRLF}/libjax_fa4_kernels.so
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
echo "$gpu"
case "$gpu" in *H100*) ;; *) echo "not an H100: nothing run"; exit 0;; esac
mkdir -p /tmp/r
timeout 240 python -m benchmarks.run --fwd-only --only mixed-serve long-decode --impl jax_fa4 cudnn \
  --max-seconds 0.3 --out /tmp/r/serve > /tmp/r/serve.log 2>&1
echo "serve rc=$?"
timeout $(( 560 - SECONDS )) python -m benchmarks.run --only dense-4x8192 dense-16x2048 packed-train \
  --impl jax_fa4 cudnn --no-ablation --max-seconds 0.3 --out /tmp/r/train > /tmp/r/train.log 2>&1
echo "train rc=$?"
tar -czf $OUT/h100_run125.tgz -C /tmp r
grep -h "| jax_fa4\|| cudnn\|ceilings\|matmul" /tmp/r/serve/results.md /tmp/r/train/results.md 2>/dev/null | head -60
