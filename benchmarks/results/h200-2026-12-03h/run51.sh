# H (main): backward GPU tests through the changed forward (D = 128 / 192 / 256), within the device time left
export PYTHONPATH=. XLA_PYTHON_CLIENT_PREALLOCATE=false
date +%T
JAX_FA4_LIBRARY=$PWD/.carry/H/libjax_fa4_kernels.so timeout -s INT 250 python3 -m pytest -m gpu -n 14 -q -p no:cacheprovider tests/test_bwd_gpu.py -k "128 or 192 or 256" > $OUT/gpu_tests_bwd_h.txt 2>&1
echo tests rc=$?; tail -4 $OUT/gpu_tests_bwd_h.txt
date +%T
