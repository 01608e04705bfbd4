#!/bin/bash
# session 40, device run 9: final build (dS^T pipeline barriers after the other fields): the dkdvdq oracle tests
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/FULL/libjax_fa4_kernels.so
timeout 300 python -m pytest -q -m gpu tests/test_bwd_gpu.py -k "(128 or bf16-64 or fp16-96) and False" 2>&1 | tail -3 | tee $OUT/gpu_tests_bwd_final.txt
