#!/bin/bash
# session 40, device run 7: dQ one block late as landed (full library FULL): backward / training / sharding GPU tests;
# interleaved kernel times on masked workloads, DL2 (this tree) against B2 (main 60ed50b)
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
L=$PWD/.carry
JAX_FA4_LIBRARY=$L/FULL/libjax_fa4_kernels.so timeout 330 python -m pytest -q -m gpu tests/test_bwd_gpu.py tests/test_train_example.py tests/test_sharding_gpu.py 2>&1 | tail -5 | tee $OUT/gpu_tests_bwd_full.txt
for x in B2 DL2 B2 DL2; do
  JAX_FA4_LIBRARY=$L/$x/libjax_fa4_kernels.so timeout 60 python .carry/exp/bwdtime.py $x dense-4x8192-causal,dense-16x2048-causal,packed-train-32768 2>&1 | grep total | tee -a $OUT/bwdtime_late_masked.txt
done
