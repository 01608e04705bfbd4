#!/bin/bash
# How run113.sh's D = 128 forward + backward libraries were built on the CPU machine: M128r from main 13b76ef, BSr
# from branch wip/bwd-store-pairs (= bwd_store_pairs.patch), each from its worktree and build cache.
set -e
only=('fwd_sm90__bf16_d128_(none|causal)' 'bwd_.*bf16_d128_(none|causal)' 'bwd_dq_convert.*bf16_d128' prepare combine)
(cd /work/main && .venv/bin/python -m jax_fa4.build --out-dir .carry/M128r --only "${only[@]}")
(cd /tmp/wtS && PYTHONPATH=. /work/main/.venv/bin/python -m jax_fa4.build --out-dir /work/main/.carry/BSr \
  --cache-dir /tmp/cache_S --only "${only[@]}")
