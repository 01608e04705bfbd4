#!/bin/bash
# How the small timing libraries of run108.sh were built on the CPU machine (D = 128 bf16 forward variants, one-CTA
# and pair, plus what every call needs): FULLr from main 13b76ef, XTr from branch wip/fwd-cross-tile (b5ba12d,
# = ../h200-2026-12-04g/fwd_cross_tile.patch), FEr from branch wip/fwd-fast-epilogue. Each from its own worktree
# and a copy of the build cache that already holds its objects, so this only links.
set -e
only=('fwd_sm90__bf16_d128_(none|causal)' prepare combine)
(cd /work/main && .venv/bin/python -m jax_fa4.build --out-dir .carry/FULLr --only "${only[@]}")
(cd /tmp/wtX && PYTHONPATH=. /work/main/.venv/bin/python -m jax_fa4.build --out-dir /work/main/.carry/XTr \
  --cache-dir /tmp/cache_X --only "${only[@]}")
(cd /tmp/wtF && PYTHONPATH=. /work/main/.venv/bin/python -m jax_fa4.build --out-dir /work/main/.carry/FEr \
  --cache-dir /tmp/cache_F --only "${only[@]}")
(cd /tmp/wtXF && PYTHONPATH=. /work/main/.venv/bin/python -m jax_fa4.build --out-dir /work/main/.carry/XFr \
  --cache-dir /tmp/cache_XF --only "${only[@]}")
