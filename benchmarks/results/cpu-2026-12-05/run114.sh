#!/bin/bash
# session 43, prepared, not run: the whole backward GPU suite (every bwd_dkdv_sm90 variant changed its epilogue) and
# the training example on BS, branch wip/bwd-store-pairs's full library. Run only if run113.sh shows BSr faster.
# carry: .carry/BS
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
export JAX_FA4_LIBRARY=$PWD/.carry/BS/libjax_fa4_kernels.so
timeout 560 python -m pytest -n 12 -m gpu -rA tests/test_bwd_gpu.py tests/test_train_example.py -p no:cacheprovider \
  2>&1 | grep -E "PASSED|FAILED|ERROR|passed|failed|error" | tee $OUT/gpu_tests_bwd_bs.txt | tail -5
