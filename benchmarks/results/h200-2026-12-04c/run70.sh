#!/bin/bash
# session 38, device run 5: K/V cache hints. S = main (evict-last on prefill K/V, evict-first on decode streams);
# nohint = no hint on any K/V load; nh2 = evict-first on decode streams only. Sustained harness timing, 3 rounds.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
W=dense-4x8192-full,dense-4x8192-causal,dense-16x2048-causal,packed-train-32768,mixed-serve-4x4096+124dec,long-decode-32x131072
for r in 1 2 3; do for lib in S nohint nh2; do
  JAX_FA4_LIBRARY=$PWD/.carry/$lib/libjax_fa4_kernels.so timeout 120 python .carry/exp/sustime.py $lib $W 1.0 2>&1 | grep -v Warn | tee -a $OUT/sustained.txt
done; done
