#!/bin/bash
# How run110.sh's D = 64 libraries were built on the CPU machine (bf16 D = 64 forward and backward variants without
# a mask and causal, and what every call needs): M64r from main 13b76ef, KR64r from branch wip/bwd-d64-kv-regs
# (= bwd_d64_kv_regs.patch), each from its worktree and a build cache that already holds its objects.
set -e
only=('fwd_sm90__bf16_d64_(none|causal)' 'bwd_.*bf16_d64_(none|causal)' 'bwd_dq_convert.*bf16_d64' prepare combine)
(cd /work/main && .venv/bin/python -m jax_fa4.build --out-dir .carry/M64r --only "${only[@]}")
(cd /tmp/wtR && PYTHONPATH=. /work/main/.venv/bin/python -m jax_fa4.build --out-dir /work/main/.carry/KR64r \
  --cache-dir /tmp/cache_R --only "${only[@]}")
