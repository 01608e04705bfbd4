#!/bin/bash
# session 42, prepared, not run (optional, ~2 minutes). Per-tile timeline of the forward with and without the
# cross-tile S GEMM: .carry/TLM (main) and .carry/TLX (main + fwd_cross_tile.patch), both the reduced set built with
# FWD_SM90_TIMELINE=1 (BUILD.md). The fit's fixed cost per tile is what the patch should cut. carry: .carry/TLM
# .carry/TLX
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
for x in TLM TLX; do
  echo "== $x" | tee -a $OUT/timeline_xt.txt
  JAX_FA4_LIBRARY=$PWD/.carry/$x/libjax_fa4_kernels.so timeout 120 python -m benchmarks.tile_timeline \
    --only packed-train dense-16x2048 2>&1 | tee -a $OUT/timeline_xt.txt | tail -30
done
