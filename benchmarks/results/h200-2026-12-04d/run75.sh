#!/bin/bash
# session 39, device run 1: backward ablation (noDO: dO never loaded, results wrong) and head rotation (rot: the CTAs
# of a (sequence, KV head) visit the GQA heads rotated by their pair index, so their dQ reductions spread over 4
# chunks). Reduced libraries (bf16 D = 128 fwd/bwd none+causal) built from main 4df8816 (base) and the branches.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
JAX_FA4_LIBRARY=$L/rot/libjax_fa4_kernels.so timeout 200 python -m pytest -m gpu -n 8 -q -p no:cacheprovider tests/test_bwd_gpu.py -k "bf16-128 and not 192 and not convert" > $OUT/gpu_tests_rot.txt 2>&1
tail -2 $OUT/gpu_tests_rot.txt
W=dense-4x8192-full,dense-4x8192-causal,packed-train-32768
for r in 1 2; do
  for x in base rot noDO; do
    JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 100 python .carry/exp/bwdtime.py $x $W 2>&1 | grep -v Warn | tee -a $OUT/bwdtime.txt
  done
done
