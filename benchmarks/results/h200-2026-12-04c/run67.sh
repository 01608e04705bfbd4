#!/bin/bash
# session 38, device run 1: dV's GEMM issued before the dS^T math (dvA), + P^T computed under dP^T's GEMM (dvB)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
W=dense-4x8192-full,dense-4x8192-causal,packed-train
for round in 1 2; do
  for lib in S dvA dvB; do
    JAX_FA4_LIBRARY=$PWD/.carry/$lib/libjax_fa4_kernels.so timeout 120 python .carry/exp/bwdtime.py $lib $W 2>&1 | grep -v Warn | tee -a $OUT/interleaved.txt
  done
done
for lib in dvA dvB; do
  JAX_FA4_LIBRARY=$PWD/.carry/$lib/libjax_fa4_kernels.so timeout 200 python -m pytest -m gpu -n 8 -q -p no:cacheprovider tests/test_bwd_gpu.py -k "bf16-128-none or bf16-128-causal or atomically and 128" > $OUT/tests_$lib.txt 2>&1
  echo "$lib tests: $(tail -1 $OUT/tests_$lib.txt)"
done
