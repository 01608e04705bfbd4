#!/bin/bash
# session 42, prepared, not run: run103.sh of ../h200-2026-12-04f/ split in two, since its tests and its timing
# together may pass the device's 600 s per command. Needs the working tree of main with
# ../h200-2026-12-04f/bwd_longest_first.patch and then ../h200-2026-12-04f/bwd_stream_k.patch applied (git apply;
# both apply cleanly to main 57617a0) and the full library of that tree in .carry/SK (built in session 42 from
# exactly that: python -m jax_fa4.build --out-dir .carry/SK, 21.1 MiB). carry: .carry/SK
# The backward GPU tests on the default path (every variant) and the new stream-K tail test.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/SK/libjax_fa4_kernels.so
timeout 560 python -m pytest -n 12 -m gpu -rA tests/test_bwd_gpu.py -k "stream or False" -p no:cacheprovider 2>&1 \
  | grep -E "PASSED|FAILED|ERROR|passed|failed|error" | tee $OUT/gpu_tests_bwd_sk.txt | tail -5
