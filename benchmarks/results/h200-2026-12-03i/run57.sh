# The final library: backward GPU tests at D = 64 / 96 / 128 (their bwd_dq_convert_sm90 kernels changed), the
# training example.
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_FA4_LIBRARY=$PWD/.carry/F/libjax_fa4_kernels.so
date +%T
timeout 250 python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_bwd_gpu.py tests/test_train_example.py -k "not 192 and not 256" > $OUT/gpu_tests_bwd_final.txt 2>&1
echo tests rc=$?; tail -3 $OUT/gpu_tests_bwd_final.txt
date +%T
