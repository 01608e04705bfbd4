#!/bin/bash
# How run122.sh's D = 128 forward + backward timing libraries were built on the CPU machine, each from its branch's
# worktree and build cache: KLBr (wip/bwd-kr-lf, /tmp/wtM), Q80r (wip/bwd-q80b, /tmp/wtQ), Q80Cr (wip/bwd-q80c,
# /tmp/wtQc: the causal pass at 80 queries too), Q80Kr (wip/bwd-q80-kfirst, /tmp/wtQB: dK's GEMM issued before dV's
# is awaited).
set -e
only=('fwd_sm90__bf16_d128_(none|causal)' 'bwd_.*bf16_d128_(none|causal)' 'bwd_dq_convert.*bf16_d128' prepare combine)
for x in KLBr:/tmp/wtM Q80r:/tmp/wtQ Q80Cr:/tmp/wtQc Q80Kr:/tmp/wtQB; do
  (cd ${x##*:} && PYTHONPATH=. /work/main/.venv/bin/python -m jax_fa4.build --out-dir /work/main/.carry/${x%%:*} \
    --cache-dir /tmp/cache_${x%%:*} --only "${only[@]}")
done
