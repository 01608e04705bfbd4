#!/bin/bash
# session 38, device run 7: the pair variants (branch wip/fwd-pairs, reduced library pr: bf16 D=128 none/causal,
# one-CTA and pair forward variants): GPU tests on its Python (.carry/pyG), then sustained time pairs on / off.
export PYTHONPATH=$PWD/.carry/pyG XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/pr/libjax_fa4_kernels.so
cd .carry/pyG
timeout 300 python -m pytest -m gpu -n 8 -q -p no:cacheprovider tests/test_fwd_gpu.py -k "pair or bf16-128-none or bf16-128-causal or scheduler_modes or caller_metadata or half_tiles and 128" > $OUT/tests_pr.txt 2>&1
tail -15 $OUT/tests_pr.txt
cd ../..
W=dense-4x8192-full,dense-4x8192-causal,dense-16x2048-causal,packed-train-32768
for r in 1 2; do
  JAX_FA4_PAIRED_TILES=0 timeout 100 python .carry/exp/sustime.py single $W 1.0 2>&1 | grep -v Warn | tee -a $OUT/sustained.txt
  JAX_FA4_PAIRED_TILES=1 timeout 100 python .carry/exp/sustime.py pairs $W 1.0 2>&1 | grep -v Warn | tee -a $OUT/sustained.txt
done
